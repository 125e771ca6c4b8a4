//! `UpdateTicket` and `UpdateProblem`: field edits, written only when something really changes.

use chrono::{DateTime, Utc};

use super::{TicketApi, TicketResult};
use crate::domain::{
    Actor, Edit, access,
    edits::{UpdateProblem, UpdateTicket},
    record::Ticket,
};

impl TicketApi {
    pub(super) async fn update(
        &self,
        actor: &Actor,
        command: UpdateTicket,
        now: DateTime<Utc>,
    ) -> TicketResult<Ticket> {
        command.check_caller(actor)?;
        let txn = self.store.begin().await?;
        let ticket = self
            .load_for_write(&txn, actor, &command.ticket, Some(command.expected_version))
            .await?;
        // Read inside the transaction, not from the cache: the priority derived here is stored.
        let settings = self.store.settings(&*txn, &actor.tenant).await?;
        match ticket.edit(&command, &settings.priority_matrix, now)? {
            Edit::NothingChanged => Ok(ticket),
            Edit::Changed(changed) => self.save_and_commit(txn, actor, *changed).await,
        }
    }

    pub(super) async fn update_problem(
        &self,
        actor: &Actor,
        command: UpdateProblem,
        now: DateTime<Utc>,
    ) -> TicketResult<Ticket> {
        access::check_requester_fields(actor, &command.requested_fields())?;
        let txn = self.store.begin().await?;
        let ticket = self
            .load_for_write(&txn, actor, &command.ticket, Some(command.expected_version))
            .await?;
        match ticket.update_problem_details(&command, now)? {
            Edit::NothingChanged => Ok(ticket),
            Edit::Changed(changed) => self.save_and_commit(txn, actor, *changed).await,
        }
    }
}
