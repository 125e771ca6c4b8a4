//! From an event's facts to durable deliveries, in the consumer's transaction: the plan (rules →
//! people → channels, narrowed by each person's preferences), each message rendered in the
//! person's language, scheduled around quiet hours, folded into a pending one to the same person
//! about the same ticket (coalescing), and one delivery per webhook endpoint that wants the event.
//! In-app notifications are written to the feed at once (and logged as delivered).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use desk_kit::events::{Effect, HandlerError};
use sea_orm::DatabaseTransaction;
use serde_json::{Value, json};
use tokio::sync::broadcast;
use uuid::Uuid;

use crate::{
    domain::{
        coalesce::{self, CoalesceKey, Pending},
        email,
        model::{Delivery, DeliveryStatus, EventFacts, Payload, Person, StoredTemplate},
        plan::{GroupFacts, plan},
        preferences::{Preferences, Schedule, parse_zone},
        rules::{Channel, Rule, default_rules},
        templates::{self, TemplateSource},
    },
    store::{FeedItem, NotificationStore, StoreError},
};

/// The tenant's default locale: the last step before English in every fallback chain.
pub const TENANT_DEFAULT_LOCALE: &str = "en";

fn retry(e: StoreError) -> HandlerError {
    HandlerError::Retry(e.to_string())
}

/// A new feed item: which person, which sequence.
#[derive(Debug, Clone)]
pub struct FeedSignal {
    pub tenant: String,
    pub person: String,
}

pub struct Notifier {
    pub store: Arc<NotificationStore>,
    /// The `Message-ID` domain.
    pub domain: String,
    /// Wakes the sender when a delivery is due now.
    pub wake: Arc<tokio::sync::Notify>,
    /// Wakes feed streams of this process.
    pub feed: broadcast::Sender<FeedSignal>,
    /// The coalescing window; zero sends every notification on its own.
    pub coalesce_window: chrono::Duration,
}

/// The rules of a tenant: its own when it wrote any, else the defaults.
pub async fn tenant_rules(
    store: &NotificationStore,
    conn: &DatabaseTransaction,
    tenant: &str,
) -> Result<Vec<Rule>, StoreError> {
    let stored = store.rules(conn, tenant).await?;
    Ok(if stored.is_empty() {
        default_rules()
    } else {
        stored.into_iter().map(|r| r.rule).collect()
    })
}

/// The template for an event type and channel in the chain's first locale that has one: the
/// tenant's own before the built-ins at the same locale; channels without templates of their own
/// use the e-mail ones.
pub fn choose_template(
    stored: &[StoredTemplate],
    event_type: &str,
    channel: Channel,
    locale: &str,
) -> Option<(String, TemplateSource)> {
    let chain = templates::fallback_chain(locale, TENANT_DEFAULT_LOCALE);
    let mut available: Vec<(String, TemplateSource)> = Vec::new();
    for c in [channel, Channel::Email] {
        available.extend(
            stored
                .iter()
                .filter(|t| t.event_type == event_type && t.channel == c)
                .map(|t| (t.locale.clone(), t.source.clone())),
        );
    }
    available.extend(templates::built_ins(event_type));
    templates::select(&available, &chain).map(|(l, t)| (l.to_owned(), t.clone()))
}

/// The variables one recipient's template sees.
pub fn recipient_variables(
    facts: &EventFacts,
    person: &Person,
    locale: &str,
    assignee_name: &str,
    group_name: &str,
) -> Value {
    let mut vars = facts.variables.clone();
    if let Some(ticket) = vars.get_mut("ticket").and_then(Value::as_object_mut) {
        let status = ticket
            .get("status")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let priority = ticket
            .get("priority")
            .and_then(Value::as_i64)
            .unwrap_or_default();
        ticket.insert(
            "status_label".into(),
            json!(templates::status_label(locale, &status)),
        );
        ticket.insert(
            "priority_label".into(),
            json!(templates::priority_label(locale, priority)),
        );
        ticket.insert("assignee_name".into(), json!(assignee_name));
        ticket.insert("group_name".into(), json!(group_name));
        let assigned_to = if assignee_name.is_empty() {
            group_name
        } else {
            assignee_name
        };
        ticket.insert("assigned_to".into(), json!(assigned_to));
        for key in [
            "number",
            "title",
            "description",
            "requester_name",
            "resolution",
        ] {
            ticket.entry(key).or_insert(json!(""));
        }
        ticket.entry("awaiting_you").or_insert(json!(false));
        ticket.entry("major_incident").or_insert(json!(false));
    }
    if let Some(obj) = vars.as_object_mut() {
        obj.insert("recipient".into(), json!({"name": person.display_name}));
        obj.insert("locale".into(), json!(locale));
        obj.entry("comment")
            .or_insert(json!({"author": "", "body": ""}));
    }
    vars
}

/// The webhook body: a CloudEvents-shaped JSON document with the event's variables as data.
pub fn webhook_body(facts: &EventFacts) -> String {
    json!({
        "specversion": "1.0",
        "id": facts.event_id.to_string(),
        "type": facts.event_type,
        "time": facts.time.to_rfc3339(),
        "tenant": facts.tenant,
        "subject": facts.aggregate,
        "data": facts.variables,
    })
    .to_string()
}

impl Notifier {
    pub async fn notify(&self, effect: &Effect<'_>, facts: EventFacts) -> Result<(), HandlerError> {
        let txn = effect.txn();
        let now = effect.now();
        let tenant = facts.tenant.clone();
        let rules = tenant_rules(&self.store, txn, &tenant)
            .await
            .map_err(retry)?;
        let (members, manager, group_name) = match &facts.group {
            Some(g) => self.store.team(txn, &tenant, g).await.map_err(retry)?,
            None => (Vec::new(), None, String::new()),
        };
        let group = GroupFacts { members, manager };
        let assignee_name = match &facts.assignee {
            Some(a) => self
                .store
                .person(txn, &tenant, a)
                .await
                .map_err(retry)?
                .map(|p| p.display_name)
                .unwrap_or_default(),
            None => String::new(),
        };
        // The actor may be named by person id or by token subject.
        let planned = plan(&rules, &facts, &group, facts.actor_subject.as_deref());
        let stored_templates = self
            .store
            .templates(txn, &tenant, Some(&facts.event_type))
            .await
            .map_err(retry)?;
        let mut wake = false;
        for p in planned {
            let Some(person) = self
                .store
                .person(txn, &tenant, &p.person_id)
                .await
                .map_err(retry)?
            else {
                // Not (yet) in the directory's projection: no address, no language; the feed
                // still reaches them.
                let person = Person {
                    id: p.person_id.clone(),
                    display_name: p.person_id.clone(),
                    active: true,
                    ..Person::default()
                };
                if p.channels.contains(&Channel::InApp) {
                    self.feed_item(
                        txn,
                        &facts,
                        &person,
                        &stored_templates,
                        &assignee_name,
                        &group_name,
                        now,
                    )
                    .await?;
                }
                continue;
            };
            if !person.active || facts.actor_subject.as_deref() == Some(person.subject.as_str()) {
                continue;
            }
            // People are known to the feed and to their preferences by their token subject.
            let person = Person {
                id: if person.subject.is_empty() {
                    person.id.clone()
                } else {
                    person.subject.clone()
                },
                ..person
            };
            let prefs = self
                .store
                .preferences(txn, &tenant, &person.id)
                .await
                .map_err(retry)?
                .map(|p| p.preferences)
                .unwrap_or_default();
            let address = prefs.email.clone().unwrap_or_else(|| person.email.clone());
            let locale = prefs
                .locale
                .clone()
                .filter(|l| !l.is_empty())
                .unwrap_or_else(|| person.locale.clone());
            let zone = parse_zone(&person.time_zone).unwrap_or(chrono_tz::UTC);
            for channel in prefs.channels_for(&facts.event_type, &p.channels) {
                if channel == Channel::InApp {
                    self.feed_item(
                        txn,
                        &facts,
                        &person,
                        &stored_templates,
                        &assignee_name,
                        &group_name,
                        now,
                    )
                    .await?;
                    continue;
                }
                let Some((found_locale, template)) =
                    choose_template(&stored_templates, &facts.event_type, channel, &locale)
                else {
                    continue;
                };
                let vars = recipient_variables(
                    &facts,
                    &person,
                    &found_locale,
                    &assignee_name,
                    &group_name,
                );
                let rendered = match templates::render(&template, &vars) {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::warn!(event_type = %facts.event_type, error = %e, "template did not render");
                        continue;
                    }
                };
                let id = Uuid::now_v7();
                let payload = match channel {
                    Channel::Email if email::valid_address(&address) => {
                        let thread = email::threading(
                            &id.to_string(),
                            facts.ticket_id.as_deref(),
                            &self.domain,
                        );
                        Payload::Email {
                            to: address.clone(),
                            subject: rendered.subject,
                            text: rendered.text,
                            html: rendered.html,
                            message_id: thread.message_id,
                            in_reply_to: thread.in_reply_to,
                            references: thread.references,
                        }
                    }
                    Channel::Sms if !person.phone.is_empty() => Payload::Sms {
                        to: person.phone.clone(),
                        body: rendered.subject,
                    },
                    _ => continue,
                };
                let schedule = prefs_schedule(&prefs, channel, p.urgent, now, zone);
                wake |= self
                    .stage(
                        txn,
                        &facts,
                        channel,
                        Some(&person.id),
                        None,
                        id,
                        payload,
                        schedule,
                        p.urgent,
                        now,
                    )
                    .await?;
            }
        }
        // Webhooks: every endpoint that wants the event, unless its own integrator caused it.
        let endpoints = self.store.endpoints(txn, &tenant).await.map_err(retry)?;
        let body = webhook_body(&facts);
        for endpoint in endpoints
            .iter()
            .filter(|e| e.wants(&facts.event_type, facts.actor_subject.as_deref()))
        {
            let payload = Payload::Webhook { body: body.clone() };
            wake |= self
                .stage(
                    txn,
                    &facts,
                    Channel::Webhook,
                    None,
                    Some(endpoint.id),
                    Uuid::now_v7(),
                    payload,
                    Schedule::Now,
                    true,
                    now,
                )
                .await?;
        }
        if wake {
            self.wake.notify_one();
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn feed_item(
        &self,
        txn: &DatabaseTransaction,
        facts: &EventFacts,
        person: &Person,
        stored: &[StoredTemplate],
        assignee_name: &str,
        group_name: &str,
        now: DateTime<Utc>,
    ) -> Result<(), HandlerError> {
        let locale = if person.locale.is_empty() {
            TENANT_DEFAULT_LOCALE
        } else {
            person.locale.as_str()
        };
        let (title, body) = match choose_template(stored, &facts.event_type, Channel::InApp, locale)
        {
            Some((found, template)) => {
                let vars = recipient_variables(facts, person, &found, assignee_name, group_name);
                match templates::render(&template, &vars) {
                    Ok(r) => (r.subject, r.text),
                    Err(_) => (facts.event_type.clone(), String::new()),
                }
            }
            None => (facts.event_type.clone(), String::new()),
        };
        let item = FeedItem {
            id: Uuid::now_v7(),
            sequence: 0,
            event_type: facts.event_type.clone(),
            ticket_id: facts.ticket_id.clone(),
            title: title.clone(),
            body: body.clone(),
            read: false,
            created_at: now,
        };
        let item = self
            .store
            .append_feed(txn, &facts.tenant, &person.id, item)
            .await
            .map_err(retry)?;
        let delivery = Delivery {
            id: item.id,
            tenant: facts.tenant.clone(),
            event_id: facts.event_id,
            event_type: facts.event_type.clone(),
            channel: Channel::InApp,
            person_id: Some(person.id.clone()),
            endpoint_id: None,
            ticket_id: facts.ticket_id.clone(),
            aggregate: facts.aggregate.clone(),
            coalesce_key: None,
            status: DeliveryStatus::Delivered,
            attempts: Vec::new(),
            due_at: now,
            burst_start: now,
            folded: 1,
            created_at: now,
            payload: Payload::InApp { title, body },
        };
        self.store
            .insert_delivery(txn, &delivery)
            .await
            .map_err(retry)?;
        // Streams re-read from their cursor; a lost signal only delays them to their next poll.
        let _ = self.feed.send(FeedSignal {
            tenant: facts.tenant.clone(),
            person: person.id.clone(),
        });
        Ok(())
    }

    /// Writes (or folds) one delivery; true when it is due now.
    #[allow(clippy::too_many_arguments)]
    async fn stage(
        &self,
        txn: &DatabaseTransaction,
        facts: &EventFacts,
        channel: Channel,
        person: Option<&str>,
        endpoint: Option<Uuid>,
        id: Uuid,
        payload: Payload,
        schedule: Schedule,
        urgent: bool,
        now: DateTime<Utc>,
    ) -> Result<bool, HandlerError> {
        let earliest = schedule.at(now);
        // Webhooks are never coalesced: integrators want every event, in order.
        let key = match (person, &facts.ticket_id) {
            (Some(p), Some(t)) if channel != Channel::Webhook => Some(coalesce_key(&CoalesceKey {
                recipient: p.to_owned(),
                channel: channel.as_str(),
                ticket_id: t.clone(),
            })),
            _ => None,
        };
        let pending = match &key {
            Some(key) => self
                .store
                .pending_with_key(txn, &facts.tenant, key)
                .await
                .map_err(retry)?,
            None => None,
        };
        {
            if let Some(mut pending) = pending {
                let decision = coalesce::decide(
                    Some(Pending {
                        burst_start: pending.burst_start,
                        due: pending.due_at,
                    }),
                    now,
                    earliest,
                    urgent,
                    self.coalesce_window,
                );
                if let coalesce::Decision::Fold { due } = decision {
                    // The newer message replaces the older (it describes the ticket as it is
                    // now); the thread headers and the delivery's id stay.
                    let payload = match (pending.payload.clone(), payload) {
                        (
                            Payload::Email {
                                message_id,
                                in_reply_to,
                                references,
                                ..
                            },
                            Payload::Email {
                                to,
                                subject,
                                text,
                                html,
                                ..
                            },
                        ) => Payload::Email {
                            to,
                            subject,
                            text,
                            html,
                            message_id,
                            in_reply_to,
                            references,
                        },
                        (_, newer) => newer,
                    };
                    pending.payload = payload;
                    pending.due_at = due;
                    pending.folded += 1;
                    pending.event_type = facts.event_type.clone();
                    pending.status = if due <= now {
                        DeliveryStatus::Pending
                    } else {
                        status_for(schedule, due, now)
                    };
                    self.store
                        .update_delivery(txn, &pending)
                        .await
                        .map_err(retry)?;
                    return Ok(due <= now);
                }
            }
        }
        let due = match &key {
            Some(_) => match coalesce::decide(None, now, earliest, urgent, self.coalesce_window) {
                coalesce::Decision::New { due } | coalesce::Decision::Fold { due } => due,
            },
            None => earliest,
        };
        let delivery = Delivery {
            id,
            tenant: facts.tenant.clone(),
            event_id: facts.event_id,
            event_type: facts.event_type.clone(),
            channel,
            person_id: person.map(str::to_owned),
            endpoint_id: endpoint,
            ticket_id: facts.ticket_id.clone(),
            aggregate: facts.aggregate.clone(),
            coalesce_key: key,
            status: status_for(schedule, due, now),
            attempts: Vec::new(),
            due_at: due,
            burst_start: now,
            folded: 1,
            created_at: now,
            payload,
        };
        self.store
            .insert_delivery(txn, &delivery)
            .await
            .map_err(retry)?;
        Ok(due <= now)
    }
}

/// Held (quiet hours, digest) or pending (coalescing window, or now).
fn status_for(schedule: Schedule, due: DateTime<Utc>, now: DateTime<Utc>) -> DeliveryStatus {
    match schedule {
        Schedule::HeldUntil(_) | Schedule::Digest(_) if due > now => DeliveryStatus::Held,
        _ => DeliveryStatus::Pending,
    }
}

fn prefs_schedule(
    prefs: &Preferences,
    channel: Channel,
    urgent: bool,
    now: DateTime<Utc>,
    zone: chrono_tz::Tz,
) -> Schedule {
    prefs.schedule(channel, urgent, now, zone)
}

fn coalesce_key(key: &CoalesceKey) -> String {
    format!("{}|{}|{}", key.recipient, key.channel, key.ticket_id)
}

/// Variables with sample values, for previews: what a template would show for a typical ticket.
pub fn sample_variables(locale: &str, event_type: &str) -> Value {
    json!({
        "ticket": {
            "id": "emea-00000000-0000-0000-0000-000000000000", "number": "INC-000123",
            "title": "VPN drops every few minutes", "description": "", "type": "incident",
            "status": "in_progress", "status_label": templates::status_label(locale, "in_progress"),
            "priority": 2, "priority_label": templates::priority_label(locale, 2), "tier": 1,
            "major_incident": false, "requester_name": "Anna Lind", "assignee_name": "Budi Santoso",
            "group_name": "Network", "assigned_to": "Budi Santoso", "awaiting_you": false,
            "resolution": "",
        },
        "actor": {"name": "Budi Santoso", "subject": "budi"},
        "recipient": {"name": "Anna Lind"},
        "comment": {"author": "Budi Santoso", "body": "Could you try again now?"},
        "event": {"type": event_type, "id": "00000000-0000-0000-0000-000000000000"},
        "note": "",
        "changes": [],
        "locale": locale,
    })
}
