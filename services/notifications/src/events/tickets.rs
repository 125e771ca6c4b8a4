//! The tickets service's events into notifications. Each event that carries the ticket refreshes
//! the snapshot kept for those that carry only its id (comments, work logs).

use std::sync::Arc;

use desk_kit::events::{Effect, Handle, HandlerError, IncomingEvent};
use desk_proto::{common::v1 as common, tickets::v1 as tickets};
use serde_json::{Value, json};

use super::notify::Notifier;
use crate::domain::model::EventFacts;

pub const DURABLE: &str = "notifications-tickets";

pub fn subjects(region: &str) -> Vec<String> {
    vec![format!("desk.{region}.tickets.>")]
}

/// `TICKET_STATUS_IN_PROGRESS` → `in_progress`.
fn enum_name(full: &str, prefix: &str) -> String {
    full.strip_prefix(prefix)
        .unwrap_or(full)
        .to_ascii_lowercase()
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

/// The locale-neutral variables of a ticket.
pub fn ticket_json(t: &tickets::Ticket) -> Value {
    let status = tickets::TicketStatus::try_from(t.status)
        .map(|s| enum_name(s.as_str_name(), "TICKET_STATUS_"))
        .unwrap_or_default();
    let ticket_type = tickets::TicketType::try_from(t.r#type)
        .map(|s| enum_name(s.as_str_name(), "TICKET_TYPE_"))
        .unwrap_or_default();
    let pending = tickets::PendingReason::try_from(t.pending_reason)
        .map(|s| enum_name(s.as_str_name(), "PENDING_REASON_"))
        .unwrap_or_default();
    json!({
        "id": t.id,
        "number": t.number,
        "title": t.title,
        "description": t.description,
        "type": ticket_type,
        "status": status,
        "priority": t.priority,
        "tier": t.tier,
        "major_incident": t.major_incident,
        "requester_id": t.requester_id,
        "assignee_id": t.assignee_id,
        "assignment_group_id": t.assignment_group_id,
        "watcher_ids": t.watcher_ids,
        "awaiting_you": status == "pending" && pending == "customer",
        "resolution": t.resolution.as_ref().map(|r| r.notes.clone()).unwrap_or_default(),
        "version": t.version,
    })
}

fn actor_json(actor: Option<&common::Actor>) -> Value {
    match actor {
        Some(a) => {
            json!({"name": if a.name.is_empty() { &a.subject } else { &a.name }, "subject": a.subject})
        }
        None => json!({"name": "", "subject": ""}),
    }
}

fn str_field(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).and_then(non_empty)
}

/// Facts from a ticket snapshot and whatever else the event says.
fn facts(
    event: &IncomingEvent,
    ticket: Value,
    actor: Option<&common::Actor>,
    extra: Value,
) -> EventFacts {
    let attrs = &event.attributes;
    let watchers = ticket
        .get("watcher_ids")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let mut variables = json!({
        "ticket": ticket.clone(),
        "actor": actor_json(actor),
        "event": {"type": attrs.ce_type, "id": attrs.id.to_string()},
        "note": "",
        "changes": [],
    });
    if let (Some(vars), Value::Object(extra)) = (variables.as_object_mut(), extra) {
        vars.extend(extra);
    }
    EventFacts {
        event_id: attrs.id,
        event_type: attrs.ce_type.clone(),
        tenant: attrs.tenant.clone(),
        time: attrs.time,
        aggregate: str_field(&ticket, "id").unwrap_or_else(|| attrs.subject.clone()),
        ticket_id: str_field(&ticket, "id"),
        actor_subject: actor.map(|a| a.subject.clone()).filter(|s| !s.is_empty()),
        requester: str_field(&ticket, "requester_id"),
        assignee: str_field(&ticket, "assignee_id"),
        group: str_field(&ticket, "assignment_group_id"),
        watchers,
        variables,
    }
}

fn changes_json(changes: &[common::FieldChange]) -> Value {
    Value::Array(
        changes
            .iter()
            .map(|c| json!({"field": c.field, "old_value": c.old_value, "new_value": c.new_value}))
            .collect(),
    )
}

pub struct TicketHandler {
    pub notifier: Arc<Notifier>,
}

impl TicketHandler {
    async fn with_ticket(
        &self,
        effect: &Effect<'_>,
        event: &IncomingEvent,
        ticket: Option<tickets::Ticket>,
        actor: Option<&common::Actor>,
        extra: Value,
    ) -> Result<(), HandlerError> {
        let Some(ticket) = ticket else {
            return Err(HandlerError::Reject("no ticket in the event".into()));
        };
        let snapshot = ticket_json(&ticket);
        self.notifier
            .store
            .save_ticket(
                effect.txn(),
                &event.attributes.tenant,
                &ticket.id,
                ticket.version,
                &snapshot,
            )
            .await
            .map_err(|e| HandlerError::Retry(e.to_string()))?;
        self.notifier
            .notify(effect, facts(event, snapshot, actor, extra))
            .await
    }

    async fn by_id(
        &self,
        effect: &Effect<'_>,
        event: &IncomingEvent,
        ticket_id: &str,
        extra: Value,
        author: &str,
    ) -> Result<(), HandlerError> {
        let snapshot = self
            .notifier
            .store
            .ticket(effect.txn(), &event.attributes.tenant, ticket_id)
            .await
            .map_err(|e| HandlerError::Retry(e.to_string()))?
            // A ticket this service never saw (created before it started): its id is all we know.
            .unwrap_or_else(|| json!({"id": ticket_id, "number": ticket_id, "title": ""}));
        let mut facts = facts(event, snapshot, None, extra);
        facts.actor_subject = non_empty(author);
        self.notifier.notify(effect, facts).await
    }
}

macro_rules! ticket_events {
    ($($message:ty => |$m:ident| ($actor:expr, $extra:expr);)*) => {
        $(
            #[async_trait::async_trait]
            impl Handle<$message> for TicketHandler {
                async fn handle(&self, effect: &Effect<'_>, event: &IncomingEvent, $m: $message) -> Result<(), HandlerError> {
                    let actor = $actor;
                    let extra = $extra;
                    self.with_ticket(effect, event, $m.ticket.clone(), actor.as_ref(), extra).await
                }
            }
        )*
    };
}

ticket_events! {
    tickets::TicketCreated => |m| (m.actor.clone(), json!({}));
    tickets::TicketUpdated => |m| (m.actor.clone(), json!({"changes": changes_json(&m.changes)}));
    tickets::TicketAssigned => |m| (m.actor.clone(), json!({"note": m.note}));
    tickets::TicketEscalated => |m| (m.actor.clone(), json!({"note": m.note}));
    tickets::TicketStatusChanged => |m| (m.actor.clone(), json!({"note": m.note}));
    tickets::TicketResolved => |m| (m.actor.clone(), json!({}));
    tickets::TicketClosed => |m| (m.actor.clone(), json!({}));
    tickets::TicketReopened => |m| (m.actor.clone(), json!({"note": m.reason}));
}

#[async_trait::async_trait]
impl Handle<tickets::TicketCommented> for TicketHandler {
    async fn handle(
        &self,
        effect: &Effect<'_>,
        event: &IncomingEvent,
        message: tickets::TicketCommented,
    ) -> Result<(), HandlerError> {
        let Some(comment) = message.comment else {
            return Err(HandlerError::Reject("no comment in the event".into()));
        };
        // Internal notes are for agents: they reach no requester or watcher.
        if comment.visibility == tickets::Visibility::Internal as i32 {
            return Ok(());
        }
        let author = if comment.author_name.is_empty() {
            comment.author_id.clone()
        } else {
            comment.author_name.clone()
        };
        let extra = json!({
            "comment": {"author": author, "body": comment.body},
            "actor": {"name": author, "subject": comment.author_id},
        });
        self.by_id(effect, event, &message.ticket_id, extra, &comment.author_id)
            .await
    }
}
