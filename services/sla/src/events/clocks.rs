//! Clocks from the tickets service's events. Every `ticket.*` event carries the ticket after
//! the change; it is reduced to a [`TicketFact`] and added to the ticket's history, and the
//! ticket's clocks are re-folded from the whole history ([`Engine::refresh`]): their rows, the
//! ticket's timer and one event per transition not yet published, all in the consumer's
//! transaction with the event's inbox row — so a redelivery changes nothing and publishes
//! nothing twice.

use std::{collections::HashMap, sync::Arc};

use chrono::{DateTime, Utc};
use desk_kit::events::{Effect, Handle, HandlerError, IncomingEvent, OutgoingEvent};
use desk_proto::{common::v1 as common, tickets::v1 as tickets};
use sea_orm::ConnectionTrait;

use crate::{
    api::convert,
    domain::{
        CalendarBook, ClockView, FactKind, Policy, PolicyKind, Recorded, TicketFact, TicketHistory,
        fold, select,
    },
    store::{ClockRow, SlaStore, StoreError, TicketRecord},
};

pub const DURABLE: &str = "sla-clocks";

/// Every ticket event: the fold decides what matters.
pub fn subjects(region: &str) -> Vec<String> {
    vec![format!("desk.{region}.tickets.*.ticket.>")]
}

/// The ce-types the consumer applies (those that carry the ticket).
pub const TICKET_EVENTS: [&str; 9] = [
    "desk.tickets.ticket.created.v1",
    "desk.tickets.ticket.updated.v1",
    "desk.tickets.ticket.assigned.v1",
    "desk.tickets.ticket.escalated.v1",
    "desk.tickets.ticket.status_changed.v1",
    "desk.tickets.ticket.resolved.v1",
    "desk.tickets.ticket.closed.v1",
    "desk.tickets.ticket.reopened.v1",
    "desk.tickets.ticket.rated.v1",
];

/// Re-folds tickets' clocks and stages what changed.
pub struct Engine {
    pub store: Arc<SlaStore>,
    pub region: String,
}

/// A ticket's clocks as of an instant, with their policies' names.
pub struct Folded {
    pub clocks: Vec<(ClockView, String)>,
}

impl Engine {
    /// The ticket's clocks folded as of `now`, from what the store holds.
    pub async fn fold_ticket<C: ConnectionTrait>(
        &self,
        conn: &C,
        record: &TicketRecord,
        policies: &HashMap<uuid::Uuid, Policy>,
        now: DateTime<Utc>,
    ) -> Result<Folded, StoreError> {
        let calendars = self.store.business_calendars(conn, &record.tenant).await?;
        let teams = self.store.team_calendars(conn, &record.tenant).await?;
        let book = CalendarBook {
            calendars: &calendars,
            team_calendars: &teams,
        };
        Ok(fold_all(record, policies, &book, now))
    }

    /// Re-folds `record`'s clocks as of `now`: saves their rows and the ticket's timer, and
    /// returns one event per transition not published before.
    pub async fn refresh<C: ConnectionTrait>(
        &self,
        conn: &C,
        record: &TicketRecord,
        now: DateTime<Utc>,
    ) -> Result<Vec<OutgoingEvent>, StoreError> {
        let mut policies = HashMap::new();
        for id in record.policy_ids() {
            if let Some(policy) = self.store.policy(conn, &record.tenant, id).await? {
                policies.insert(id, policy);
            }
        }
        let folded = self.fold_ticket(conn, record, &policies, now).await?;
        self.save(conn, record, &folded, now).await
    }

    /// Saves folded clocks (rows, timer) and returns the events of their new transitions.
    pub async fn save<C: ConnectionTrait>(
        &self,
        conn: &C,
        record: &TicketRecord,
        folded: &Folded,
        now: DateTime<Utc>,
    ) -> Result<Vec<OutgoingEvent>, StoreError> {
        let tenant = &record.tenant;
        let held: HashMap<(uuid::Uuid, crate::domain::Metric), ClockRow> = self
            .store
            .clocks(conn, tenant, &record.ticket_id)
            .await?
            .into_iter()
            .map(|row| ((row.policy_id, row.metric), row))
            .collect();
        let number = record
            .history
            .latest()
            .map(|t| t.number.clone())
            .unwrap_or_default();
        let mut events = Vec::new();
        let mut next_timer: Option<DateTime<Utc>> = None;
        for (view, name) in &folded.clocks {
            let mut published = held
                .get(&(view.policy_id, view.metric))
                .map(|row| row.published.clone())
                .unwrap_or_default();
            for entry in view.transitions() {
                let Some(key) = &entry.event_key else {
                    continue;
                };
                if published.contains(key) {
                    continue;
                }
                let version = i64::try_from(published.len()).unwrap_or(i64::MAX) + 1;
                if let Some(event) = super::transition_event(
                    &self.region,
                    tenant,
                    &record.ticket_id,
                    &number,
                    view,
                    name,
                    entry,
                    version,
                ) {
                    events.push(event);
                }
                published.push(key.clone());
            }
            if let Some(at) = view.next_timer {
                next_timer = Some(next_timer.map_or(at, |n| n.min(at)));
            }
            let row = ClockRow {
                ticket_id: record.ticket_id.clone(),
                policy_id: view.policy_id,
                metric: view.metric,
                kind: view.kind,
                state: view.state,
                due_at: view.due.filter(|_| view.stopped_at.is_none()),
                team_id: view.team_id.clone(),
                published,
            };
            self.store.save_clock(conn, tenant, &row, now).await?;
        }
        self.store
            .set_timer(conn, tenant, &record.ticket_id, next_timer)
            .await?;
        Ok(events)
    }
}

/// Every clock of the ticket: each pinned policy's metrics.
pub fn fold_all(
    record: &TicketRecord,
    policies: &HashMap<uuid::Uuid, Policy>,
    book: &CalendarBook<'_>,
    now: DateTime<Utc>,
) -> Folded {
    let mut clocks = Vec::new();
    for id in record.policy_ids() {
        let Some(policy) = policies.get(&id) else {
            continue;
        };
        for metric in policy.rules.metrics() {
            if let Some(view) = fold(policy, metric, &record.history, book, now) {
                clocks.push((view, policy.rules.name.clone()));
            }
        }
    }
    Folded { clocks }
}

/// The consumer of ticket events.
pub struct TicketEvents {
    pub engine: Arc<Engine>,
}

/// What every ticket event offers: the ticket, who, and a note.
pub struct Carried {
    pub ticket: Option<tickets::Ticket>,
    pub actor: Option<common::Actor>,
    pub note: Option<String>,
    pub kind: FactKind,
}

macro_rules! carries {
    ($message:ty, $kind:expr, |$m:ident| $note:expr) => {
        impl From<$message> for Carried {
            fn from($m: $message) -> Carried {
                let note: Option<String> = $note;
                Carried {
                    note: note.filter(|n| !n.is_empty()),
                    ticket: $m.ticket,
                    actor: $m.actor,
                    kind: $kind,
                }
            }
        }
    };
}

carries!(tickets::TicketCreated, FactKind::Created, |m| None);
carries!(tickets::TicketUpdated, FactKind::Changed, |m| None);
carries!(tickets::TicketAssigned, FactKind::Changed, |m| Some(
    m.note.clone()
));
carries!(tickets::TicketEscalated, FactKind::Changed, |m| Some(
    m.note.clone()
));
carries!(tickets::TicketStatusChanged, FactKind::Changed, |m| Some(
    m.note.clone()
));
carries!(tickets::TicketResolved, FactKind::Changed, |m| None);
carries!(tickets::TicketClosed, FactKind::Changed, |m| None);
carries!(tickets::TicketReopened, FactKind::Reopened, |m| Some(
    m.reason.clone()
));

impl From<tickets::TicketRated> for Carried {
    fn from(m: tickets::TicketRated) -> Carried {
        Carried {
            ticket: m.ticket,
            actor: None,
            note: None,
            kind: FactKind::Changed,
        }
    }
}

#[async_trait::async_trait]
impl<M: Into<Carried> + Send + 'static> Handle<M> for TicketEvents {
    async fn handle(
        &self,
        effect: &Effect<'_>,
        event: &IncomingEvent,
        message: M,
    ) -> Result<(), HandlerError> {
        let carried: Carried = message.into();
        let Some(ticket) = carried.ticket else {
            return Err(HandlerError::Reject("no ticket in the event".into()));
        };
        let snapshot = convert::snapshot(&ticket).map_err(HandlerError::Reject)?;
        let tenant = event.attributes.tenant.as_str();
        if !ticket.tenant_id.is_empty() && ticket.tenant_id != tenant {
            return Err(HandlerError::Reject(
                "the ticket's tenant is not the event's".into(),
            ));
        }
        let at = convert::time_of(ticket.update_time.as_ref()).unwrap_or(event.attributes.time);
        let fact = TicketFact {
            version: ticket.version,
            at,
            kind: carried.kind,
            actor: carried.actor.map(|a| a.subject).filter(|s| !s.is_empty()),
            note: carried.note,
            ticket: snapshot,
        };
        let retry = |e: StoreError| HandlerError::Retry(e.to_string());
        let store = &self.engine.store;
        let txn = effect.txn();
        let mut record = match store.ticket(txn, tenant, &ticket.id).await.map_err(retry)? {
            Some(record) => record,
            None => {
                let policies = store.policies(txn, tenant).await.map_err(retry)?;
                TicketRecord {
                    tenant: tenant.to_owned(),
                    ticket_id: ticket.id.clone(),
                    history: TicketHistory::default(),
                    sla_policy: select(&policies, PolicyKind::Sla, &fact.ticket).map(|p| p.id),
                    ola_policy: select(&policies, PolicyKind::Ola, &fact.ticket).map(|p| p.id),
                }
            }
        };
        if record.history.record(fact) == Recorded::Unchanged {
            return Ok(());
        }
        store.save_ticket(txn, &record).await.map_err(retry)?;
        let events = self
            .engine
            .refresh(txn, &record, effect.now())
            .await
            .map_err(retry)?;
        effect.publish_many(events).await?;
        Ok(())
    }
}
