//! Loading the ticket a call names, and writing a change: the ticket at its new version, its
//! history entry and its events, in the caller's transaction, so they commit together or not at all.

use chrono::{DateTime, Utc};
use desk_kit::auth::Caller;
use desk_kit::db::WriteTxn;
use sea_orm::ConnectionTrait;

use super::{TicketApi, TicketError, TicketResult};
use crate::{
    domain::{
        ChangedTicket, ExpectedVersion, TicketChange, TicketReference, access, record::Ticket,
    },
    events,
    store::HistoryActor,
};

impl TicketApi {
    /// The ticket `reference` names, if the caller may read it. A ticket the caller may not see
    /// answers `NOT_FOUND` exactly like a missing one, so ids cannot be probed.
    pub(super) async fn find_readable<C: ConnectionTrait>(
        &self,
        conn: &C,
        caller: &Caller,
        reference: &TicketReference,
    ) -> TicketResult<Ticket> {
        let ticket = self
            .find_in_tenant(conn, &caller.tenant, reference)
            .await?
            .ok_or(TicketError::NotFound)?;
        if !access::can_read(caller, &ticket.access_facts()) {
            return Err(TicketError::NotFound);
        }
        Ok(ticket)
    }

    /// The tenant's ticket `reference` names, whoever may read it.
    pub(super) async fn find_in_tenant<C: ConnectionTrait>(
        &self,
        conn: &C,
        tenant: &str,
        reference: &TicketReference,
    ) -> TicketResult<Option<Ticket>> {
        Ok(match reference {
            TicketReference::Id(id) => self.store.find(conn, tenant, *id).await?,
            TicketReference::Number(number) => {
                self.store.find_by_number(conn, tenant, number).await?
            }
            TicketReference::NoTicketHere => None,
        })
    }

    /// Loads a ticket the caller may read for a write inside `txn`, and checks the version the
    /// caller read when the call names one (`ABORTED` when someone changed it since). Calls that
    /// add to a ticket (a comment, a rating) name none: they do not depend on its fields.
    pub(super) async fn load_for_write(
        &self,
        txn: &WriteTxn,
        caller: &Caller,
        reference: &TicketReference,
        expected_version: Option<ExpectedVersion>,
    ) -> TicketResult<Ticket> {
        let ticket = self.find_readable(&**txn, caller, reference).await?;
        if let Some(expected) = expected_version
            && expected.get() != ticket.version
        {
            return Err(TicketError::Stale {
                expected: expected.get(),
                current: ticket.version,
            });
        }
        Ok(ticket)
    }

    /// Writes `changed` if nobody else changed the ticket since it was read, with its history
    /// entry and events, and commits. `ABORTED` when someone was faster.
    pub(super) async fn save_and_commit(
        &self,
        txn: WriteTxn,
        caller: &Caller,
        changed: ChangedTicket,
    ) -> TicketResult<Ticket> {
        let ticket = self.save(&txn, caller, changed).await?;
        self.store.commit(txn).await?;
        Ok(ticket)
    }

    /// [`Self::save_and_commit`] without the commit, for calls that write more in the same
    /// transaction.
    pub(super) async fn save(
        &self,
        txn: &WriteTxn,
        caller: &Caller,
        changed: ChangedTicket,
    ) -> TicketResult<Ticket> {
        let ChangedTicket {
            read_version,
            ticket,
            change,
            watchers_changed,
        } = changed;
        if !self.store.update(&**txn, &ticket, read_version).await? {
            let current = self
                .store
                .find(&**txn, &ticket.tenant_id, ticket.id)
                .await?
                .map_or(0, |t| t.version);
            return Err(TicketError::Stale {
                expected: read_version,
                current,
            });
        }
        if watchers_changed {
            self.store.replace_watchers(txn, &ticket).await?;
        }
        self.record(txn, caller, &ticket, change, ticket.updated_at)
            .await?;
        Ok(ticket)
    }

    /// The history entry of `change` and its events, each carrying `ticket` as it is now.
    pub(super) async fn record(
        &self,
        txn: &WriteTxn,
        caller: &Caller,
        ticket: &Ticket,
        change: TicketChange,
        now: DateTime<Utc>,
    ) -> TicketResult<()> {
        let history_actor = HistoryActor {
            subject: caller.subject.clone(),
            name: caller.name.clone(),
            roles: caller.roles.iter().map(|r| r.as_str().to_owned()).collect(),
        };
        self.store
            .append_history(
                &**txn,
                ticket,
                &history_actor,
                change.action.as_str(),
                &change.field_changes,
                change.note.as_deref(),
                now,
            )
            .await?;
        let snapshot = self.to_pb(ticket);
        let actor_pb = caller.actor();
        for fact in change.facts {
            self.store
                .stage(txn, events::event_for(fact, &snapshot, &actor_pb), now)
                .await?;
        }
        Ok(())
    }
}
