//! `AddComment`, `AddWorklog` and `AddLink`: what is added to a ticket, written with the ticket's
//! new version, its history entry and its event.

use chrono::{DateTime, Utc};
use desk_kit::{auth::Caller, ids};
use desk_proto::tickets::v1 as pb;

use super::{TicketApi, TicketResult, convert};
use crate::domain::{
    StaffWork, access,
    conversation::{
        AddComment, AddLink, AddWorklog, LinkTarget, LinkTargetReference, NewComment, NewLink,
        NewLinkIds, NewWorklogEntry,
    },
};

impl TicketApi {
    /// The comment and the ticket's version after it.
    pub(super) async fn add_comment(
        &self,
        caller: &Caller,
        command: AddComment,
        now: DateTime<Utc>,
    ) -> TicketResult<(pb::Comment, i64)> {
        let txn = self.store.begin().await?;
        let ticket = self
            .load_for_write(&txn, caller, &command.ticket, None)
            .await?;
        access::can_comment(caller, &ticket.access_facts(), command.visibility)?;
        let NewComment { comment, changed } =
            ticket.comment(caller, &command, ids::new_uuid(), now)?;
        self.store.insert_comment(&txn, &comment).await?;
        let ticket = self.save_and_commit(txn, caller, changed).await?;
        Ok((
            convert::comment_to_pb(&self.region, &comment),
            ticket.version,
        ))
    }

    /// The worklog entry and the ticket's version after it.
    pub(super) async fn add_worklog(
        &self,
        caller: &Caller,
        command: AddWorklog,
        now: DateTime<Utc>,
    ) -> TicketResult<(pb::WorklogEntry, i64)> {
        access::require_staff_for(caller, StaffWork::LogWork)?;
        let txn = self.store.begin().await?;
        let ticket = self
            .load_for_write(&txn, caller, &command.ticket, None)
            .await?;
        let NewWorklogEntry { entry, changed } =
            ticket.log_work(&caller.subject, &command, ids::new_uuid(), now)?;
        self.store.insert_worklog(&txn, &entry).await?;
        let ticket = self.save_and_commit(txn, caller, changed).await?;
        Ok((convert::worklog_to_pb(&self.region, &entry), ticket.version))
    }

    /// The link and the ticket's version after it. Adding a link that exists changes nothing.
    pub(super) async fn add_link(
        &self,
        caller: &Caller,
        command: AddLink,
        now: DateTime<Utc>,
    ) -> TicketResult<(pb::Link, i64)> {
        access::require_staff_for(caller, StaffWork::Link)?;
        let txn = self.store.begin().await?;
        let ticket = self
            .load_for_write(&txn, caller, &command.ticket, None)
            .await?;
        let target_ticket = match &command.target {
            LinkTargetReference::Ticket(reference) => {
                self.find_in_tenant(&*txn, &caller.tenant, reference)
                    .await?
            }
            LinkTargetReference::Elsewhere(_) => None,
        };
        let target = match (&command.target, &target_ticket) {
            (LinkTargetReference::Elsewhere(external), _) => LinkTarget::Elsewhere(external),
            (LinkTargetReference::Ticket(_), Some(target)) => LinkTarget::Ticket(target),
            (LinkTargetReference::Ticket(_), None) => LinkTarget::NoSuchTicket,
        };
        let new_ids = NewLinkIds {
            link: ids::new_uuid(),
            inverse: ids::new_uuid(),
        };
        let NewLink {
            link,
            inverse,
            changed,
        } = ticket.link(
            command.kind,
            target,
            &caller.subject,
            &self.region,
            new_ids,
            now,
        )?;
        let reply = convert::link_to_pb(&link);
        if !self.store.insert_link(&txn, &link).await? {
            // The same link already exists: nothing changes.
            return Ok((reply, ticket.version));
        }
        if let Some(inverse) = &inverse {
            // The other side sees the link too (problem ↔ incidents, parent ↔ child).
            self.store.insert_link(&txn, inverse).await?;
        }
        let ticket = self.save_and_commit(txn, caller, changed).await?;
        Ok((reply, ticket.version))
    }
}
