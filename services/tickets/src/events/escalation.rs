//! Escalation by the SLA service's breaches: the SLA service publishes `sla.breached` when a
//! ticket's clock runs out, and this consumer (`tickets-sla-escalations`) escalates the ticket
//! by the one policy the desk has today: a breached **customer SLA** (not an internal OLA,
//! whose breach the owning team's manager sees through the SLA event itself) raises the
//! ticket's support tier by one and puts it back in its group's queue, publishing
//! `ticket.escalated` (with `assigned`/`status_changed` as the move says) so managers and
//! notifications hear of it. A ticket already at third line, done, unassigned or of another
//! region is left as it is. The effect, its history entry and its events commit with the
//! consumer's inbox row, so a redelivered breach escalates nothing twice.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use desk_kit::events::{Effect, Handle, HandlerError, IncomingEvent};
use desk_proto::{common::v1 as common, sla::v1 as sla};

use crate::{
    api::convert,
    domain::{
        Edit, ExpectedVersion, SupportTier, TicketReference, Violations,
        moves::{AssignTicket, AssignTo},
    },
    events,
    store::{HistoryActor, StoreError, TicketStore},
};

pub const DURABLE: &str = "tickets-sla-escalations";
pub const BREACHED: &str = "desk.sla.sla.breached.v1";

pub fn subjects(region: &str) -> Vec<String> {
    vec![format!("desk.{region}.sla.*.sla.breached")]
}

pub struct EscalationHandler {
    pub store: Arc<TicketStore>,
    pub region: String,
}

fn next_tier(tier: SupportTier) -> Option<SupportTier> {
    match tier {
        SupportTier::Tier1 => Some(SupportTier::Tier2),
        SupportTier::Tier2 => Some(SupportTier::Tier3),
        SupportTier::Tier3 => None,
    }
}

fn metric_name(metric: i32) -> &'static str {
    match sla::Metric::try_from(metric) {
        Ok(sla::Metric::FirstResponse) => "first response",
        Ok(sla::Metric::Resolution) => "resolution",
        _ => "service level",
    }
}

#[async_trait::async_trait]
impl Handle<sla::SlaBreached> for EscalationHandler {
    async fn handle(
        &self,
        effect: &Effect<'_>,
        event: &IncomingEvent,
        message: sla::SlaBreached,
    ) -> Result<(), HandlerError> {
        let Some(transition) = message.transition else {
            return Err(HandlerError::Reject("no transition in the breach".into()));
        };
        let Some(clock) = transition.clock else {
            return Err(HandlerError::Reject("no clock in the breach".into()));
        };
        if clock.kind != sla::PolicyKind::Sla as i32 {
            return Ok(());
        }
        let TicketReference::Id(id) = TicketReference::parse(&transition.ticket_id, &self.region)
        else {
            return Ok(());
        };
        let retry = |e: StoreError| HandlerError::Retry(e.to_string());
        let tenant = &event.attributes.tenant;
        let txn = effect.txn();
        let Some(ticket) = self.store.find(txn, tenant, id).await.map_err(retry)? else {
            return Ok(());
        };
        let (Some(tier), Some(group)) =
            (next_tier(ticket.tier), ticket.assignment_group_id.clone())
        else {
            return Ok(());
        };
        let mut ignored = Violations::new();
        let Some(expected_version) = ExpectedVersion::parse(ticket.version, &mut ignored) else {
            return Ok(());
        };
        let note = format!(
            "{} target of {} ran out ({}): escalated by the SLA",
            metric_name(clock.metric),
            clock.policy_name,
            clock
                .due_time
                .as_ref()
                .and_then(|t| DateTime::<Utc>::from_timestamp(t.seconds, 0))
                .map(|t| t.to_rfc3339())
                .unwrap_or_default()
        );
        let command = AssignTicket {
            ticket: TicketReference::Id(id),
            expected_version,
            to: AssignTo::Group(group),
            tier: Some(tier),
            note: Some(note),
        };
        let now = effect.now();
        // A ticket that can no longer be assigned (resolved meanwhile) is not escalated.
        let Ok(Edit::Changed(changed)) = ticket.assign(&command, now) else {
            return Ok(());
        };
        let changed = *changed;
        if !self
            .store
            .update(txn, &changed.ticket, changed.read_version)
            .await
            .map_err(retry)?
        {
            return Err(HandlerError::Retry(
                "the ticket was written meanwhile".into(),
            ));
        }
        let actor = HistoryActor {
            subject: "sla".into(),
            name: None,
            roles: vec!["service".into()],
        };
        let change = changed.change;
        self.store
            .append_history(
                txn,
                &changed.ticket,
                &actor,
                change.action.as_str(),
                &change.field_changes,
                change.note.as_deref(),
                now,
            )
            .await
            .map_err(retry)?;
        let snapshot = convert::ticket_to_pb(&self.region, &changed.ticket);
        let actor_pb = common::Actor {
            subject: "sla".into(),
            name: String::new(),
            roles: vec!["service".into()],
        };
        effect
            .publish_many(
                change
                    .facts
                    .into_iter()
                    .map(|fact| events::event_for(fact, &snapshot, &actor_pb))
                    .collect(),
            )
            .await?;
        Ok(())
    }
}
