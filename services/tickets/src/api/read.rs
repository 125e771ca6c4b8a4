//! The reading calls: a ticket, a list of tickets, and what hangs off one ticket — its history,
//! comments, worklog and links. Each shows only what the caller may see.

use desk_kit::{auth::Caller, paging};
use desk_proto::{common::v1 as common, tickets::v1 as pb};

use super::{TicketApi, TicketResult, convert, parse::ListTickets};
use crate::domain::{ListScope, StaffWork, TicketReference, Visibility, access, record::Ticket};

impl TicketApi {
    pub(super) async fn get(
        &self,
        caller: &Caller,
        reference: &TicketReference,
    ) -> TicketResult<Ticket> {
        self.find_readable(self.store.db().connection(), caller, reference)
            .await
    }

    /// A page of the tickets the caller may list, narrowed by their filters, newest first.
    pub(super) async fn list(
        &self,
        caller: &Caller,
        query: ListTickets,
    ) -> TicketResult<pb::ListTicketsResponse> {
        let ListTickets {
            mut filter,
            mine,
            page_size,
            after,
        } = query;
        match access::list_scope(caller, mine) {
            ListScope::Tenant => {}
            ListScope::AssignedTo(assignee) => filter.assignee_id = Some(assignee),
            // The caller's own requester filter still narrows this (tickets of bob's they watch).
            ListScope::RaisedOrWatchedBy(reader) => filter.readable_by_requester = Some(reader),
        }
        let (tickets, total) = self
            .store
            .list(
                self.store.db().connection(),
                &caller.tenant,
                &filter,
                after,
                page_size,
            )
            .await?;
        let next_page_token = match tickets.last() {
            Some(last) if tickets.len() as u64 == page_size => paging::encode_cursor(&last.id),
            _ => String::new(),
        };
        Ok(pb::ListTicketsResponse {
            tickets: tickets.iter().map(|t| self.to_pb(t)).collect(),
            next_page_token,
            total_size: total as i64,
        })
    }

    pub(super) async fn history(
        &self,
        caller: &Caller,
        reference: &TicketReference,
    ) -> TicketResult<Vec<common::AuditEntry>> {
        let conn = self.store.db().connection();
        let ticket = self.find_readable(conn, caller, reference).await?;
        access::require_staff_for(caller, StaffWork::ReadHistory)?;
        Ok(self
            .store
            .history(conn, &caller.tenant, ticket.id)
            .await?
            .iter()
            .map(convert::history_to_pb)
            .collect())
    }

    /// The comments the caller may see, oldest first: internal ones only for staff.
    pub(super) async fn comments(
        &self,
        caller: &Caller,
        reference: &TicketReference,
    ) -> TicketResult<Vec<pb::Comment>> {
        let conn = self.store.db().connection();
        let ticket = self.find_readable(conn, caller, reference).await?;
        let include_internal = access::can_see_comment(caller, Visibility::Internal);
        let comments = self
            .store
            .comments(conn, &caller.tenant, ticket.id, include_internal)
            .await?;
        Ok(comments
            .iter()
            .map(|c| convert::comment_to_pb(&self.region, c))
            .collect())
    }

    pub(super) async fn worklog(
        &self,
        caller: &Caller,
        reference: &TicketReference,
    ) -> TicketResult<pb::ListWorklogResponse> {
        access::require_staff_for(caller, StaffWork::ReadWorklog)?;
        let conn = self.store.db().connection();
        let ticket = self.find_readable(conn, caller, reference).await?;
        let entries = self.store.worklog(conn, &caller.tenant, ticket.id).await?;
        Ok(pb::ListWorklogResponse {
            total_minutes: entries.iter().map(|w| w.minutes).sum(),
            entries: entries
                .iter()
                .map(|w| convert::worklog_to_pb(&self.region, w))
                .collect(),
        })
    }

    pub(super) async fn links(
        &self,
        caller: &Caller,
        reference: &TicketReference,
    ) -> TicketResult<Vec<pb::Link>> {
        let conn = self.store.db().connection();
        let ticket = self.find_readable(conn, caller, reference).await?;
        Ok(self
            .store
            .links(conn, &caller.tenant, ticket.id)
            .await?
            .iter()
            .map(convert::link_to_pb)
            .collect())
    }
}
