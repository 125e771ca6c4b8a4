//! `UpdateTicket` and `UpdateProblem`: field edits, written only when something really changes.

use chrono::{DateTime, Utc};
use desk_kit::auth::Caller;

use super::{TicketApi, TicketResult};
use crate::domain::{
    Edit, access,
    edits::{UpdateProblem, UpdateTicket},
    record::Ticket,
};

impl TicketApi {
    pub(super) async fn update(
        &self,
        caller: &Caller,
        command: UpdateTicket,
        now: DateTime<Utc>,
    ) -> TicketResult<Ticket> {
        command.check_caller(caller)?;
        let txn = self.store.begin().await?;
        let ticket = self
            .load_for_write(
                &txn,
                caller,
                &command.ticket,
                Some(command.expected_version),
            )
            .await?;
        // Read inside the transaction, not from the cache: the priority derived here is stored.
        let settings = self.store.settings(&*txn, &caller.tenant).await?;
        match ticket.edit(&command, &settings.priority_matrix, now)? {
            Edit::NothingChanged => Ok(ticket),
            Edit::Changed(changed) => self.save_and_commit(txn, caller, *changed).await,
        }
    }

    pub(super) async fn update_problem(
        &self,
        caller: &Caller,
        command: UpdateProblem,
        now: DateTime<Utc>,
    ) -> TicketResult<Ticket> {
        access::check_requester_fields(caller, &command.requested_fields())?;
        let txn = self.store.begin().await?;
        let ticket = self
            .load_for_write(
                &txn,
                caller,
                &command.ticket,
                Some(command.expected_version),
            )
            .await?;
        match ticket.update_problem_details(&command, now)? {
            Edit::NothingChanged => Ok(ticket),
            Edit::Changed(changed) => self.save_and_commit(txn, caller, *changed).await,
        }
    }
}
