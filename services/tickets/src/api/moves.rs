//! Moving a ticket along: `AssignTicket`, `TransitionTicket`, `ResolveTicket`, `ReopenTicket` and
//! `RateTicket`.

use chrono::{DateTime, Utc};
use desk_kit::auth::Caller;

use super::{TicketApi, TicketResult};
use crate::domain::{
    Edit, LinkKind, StaffWork, access,
    moves::{AssignTicket, RateTicket, ReopenTicket, ResolveTicket, TransitionTicket},
    record::Ticket,
};

impl TicketApi {
    pub(super) async fn assign(
        &self,
        caller: &Caller,
        command: AssignTicket,
        now: DateTime<Utc>,
    ) -> TicketResult<Ticket> {
        access::require_staff_for(caller, StaffWork::Assign)?;
        let txn = self.store.begin().await?;
        let ticket = self
            .load_for_write(
                &txn,
                caller,
                &command.ticket,
                Some(command.expected_version),
            )
            .await?;
        match ticket.assign(&command, now)? {
            Edit::NothingChanged => Ok(ticket),
            Edit::Changed(changed) => self.save_and_commit(txn, caller, *changed).await,
        }
    }

    pub(super) async fn transition(
        &self,
        caller: &Caller,
        command: TransitionTicket,
        now: DateTime<Utc>,
    ) -> TicketResult<Ticket> {
        let txn = self.store.begin().await?;
        let ticket = self
            .load_for_write(
                &txn,
                caller,
                &command.ticket,
                Some(command.expected_version),
            )
            .await?;
        // Closing is open to the requester, so who may move the ticket depends on the ticket.
        access::can_transition(caller, &ticket.access_facts(), command.target.status())?;
        let changed = ticket.transition(&command, now)?;
        self.save_and_commit(txn, caller, changed).await
    }

    pub(super) async fn resolve(
        &self,
        caller: &Caller,
        command: ResolveTicket,
        now: DateTime<Utc>,
    ) -> TicketResult<Ticket> {
        access::require_staff_for(caller, StaffWork::Resolve)?;
        let txn = self.store.begin().await?;
        let ticket = self
            .load_for_write(
                &txn,
                caller,
                &command.ticket,
                Some(command.expected_version),
            )
            .await?;
        let linked_incident_ids = if ticket.resolution_names_linked_incidents() {
            self.store
                .linked_targets(&*txn, &caller.tenant, ticket.id, LinkKind::Incident)
                .await?
        } else {
            Vec::new()
        };
        let changed = ticket.resolve(
            &command.resolution,
            &caller.subject,
            linked_incident_ids,
            now,
        )?;
        self.save_and_commit(txn, caller, changed).await
    }

    pub(super) async fn reopen(
        &self,
        caller: &Caller,
        command: ReopenTicket,
        now: DateTime<Utc>,
    ) -> TicketResult<Ticket> {
        let txn = self.store.begin().await?;
        let ticket = self
            .load_for_write(
                &txn,
                caller,
                &command.ticket,
                Some(command.expected_version),
            )
            .await?;
        access::can_reopen(caller, &ticket.access_facts())?;
        let settings = self.store.settings(&*txn, &caller.tenant).await?;
        let changed = ticket.reopen(&command.reason, settings.reopen_window(), now)?;
        self.save_and_commit(txn, caller, changed).await
    }

    pub(super) async fn rate(
        &self,
        caller: &Caller,
        command: RateTicket,
        now: DateTime<Utc>,
    ) -> TicketResult<Ticket> {
        let txn = self.store.begin().await?;
        let ticket = self
            .load_for_write(&txn, caller, &command.ticket, None)
            .await?;
        access::can_rate(caller, &ticket.access_facts())?;
        let changed = ticket.rate(command.rating, command.comment, now)?;
        self.save_and_commit(txn, caller, changed).await
    }
}
