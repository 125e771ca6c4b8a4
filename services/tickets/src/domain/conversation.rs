//! What is added to a ticket rather than changed on it: comments, worklog entries and links. Each
//! still bumps the ticket's version and is published, so a client following the ticket sees it.

use chrono::{DateTime, Utc};
use desk_kit::{auth::Caller, ids};
use uuid::Uuid;

use super::change::{ChangedTicket, HistoryAction, RuleError, TicketChange};
use super::commands::TicketReference;
use super::facts::Fact;
use super::history::FieldChange;
use super::lifecycle::{self, LifecycleError};
use super::record::{Comment, Link, Ticket, WorklogEntry};
use super::ticket::{LinkKind, Visibility};
use super::validate::Violations;

/// `AddComment`, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddComment {
    pub ticket: TicketReference,
    /// As written, never blank.
    pub body: String,
    /// Public unless the caller asked otherwise.
    pub visibility: Visibility,
}

/// A comment and the ticket's change that carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewComment {
    pub comment: Comment,
    pub changed: ChangedTicket,
}

/// `AddWorklog`, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddWorklog {
    pub ticket: TicketReference,
    /// 1 to [`super::validate::WORKLOG_MAX_MINUTES`].
    pub minutes: i32,
    pub note: String,
}

/// A worklog entry and the ticket's change that carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewWorklogEntry {
    pub entry: WorklogEntry,
    pub changed: ChangedTicket,
}

impl Ticket {
    /// `command`'s comment by `author`, with the id `comment_id`, written at `now`. Anyone may
    /// comment until the ticket is closed — a requester may still answer a resolution; internal
    /// comments are recorded under their own history action, since the history is staff-only but
    /// says who saw what.
    pub fn comment(
        &self,
        author: &Caller,
        command: &AddComment,
        comment_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<NewComment, LifecycleError> {
        lifecycle::check_comment(self.status)?;
        let comment = Comment {
            id: comment_id,
            tenant_id: self.tenant_id.clone(),
            ticket_id: self.id,
            author_id: author.subject.clone(),
            author_name: author.name.clone(),
            body: command.body.clone(),
            visibility: command.visibility,
            created_at: now,
        };
        let change = TicketChange {
            action: match command.visibility {
                Visibility::Internal => HistoryAction::CommentedInternally,
                Visibility::Public => HistoryAction::Commented,
            },
            field_changes: Vec::new(),
            note: None,
            facts: vec![Fact::Commented {
                comment: comment.clone(),
            }],
        };
        Ok(NewComment {
            comment,
            changed: ChangedTicket::next_version(self, self.clone(), now, change),
        })
    }

    /// `command`'s work by `agent_id`, as the entry `entry_id` at `now`: work is logged until the
    /// ticket is closed, as comments are.
    pub fn log_work(
        &self,
        agent_id: &str,
        command: &AddWorklog,
        entry_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<NewWorklogEntry, LifecycleError> {
        lifecycle::check_comment(self.status)?;
        let entry = WorklogEntry {
            id: entry_id,
            tenant_id: self.tenant_id.clone(),
            ticket_id: self.id,
            agent_id: agent_id.to_owned(),
            minutes: command.minutes,
            note: command.note.clone(),
            created_at: now,
        };
        let change = TicketChange {
            action: HistoryAction::Worklogged,
            field_changes: vec![FieldChange {
                field: "worklog_minutes".into(),
                old: None,
                new: Some(command.minutes.to_string()),
            }],
            note: None,
            facts: vec![Fact::Worklogged {
                entry: entry.clone(),
            }],
        };
        Ok(NewWorklogEntry {
            entry,
            changed: ChangedTicket::next_version(self, self.clone(), now, change),
        })
    }
}

/// What a link's target names, as parsed: a ticket of this service, or an id or number outside it
/// (a change, an article), depending on the kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkTargetReference {
    Ticket(TicketReference),
    Elsewhere(String),
}

/// `AddLink`, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddLink {
    pub ticket: TicketReference,
    pub kind: LinkKind,
    pub target: LinkTargetReference,
}

/// A link's target once looked up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkTarget<'a> {
    Ticket(&'a Ticket),
    /// The target names a ticket, but none of this tenant and region answers to it.
    NoSuchTicket,
    Elsewhere(&'a str),
}

/// The ids a new link needs: its own, and its inverse's on the target ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewLinkIds {
    pub link: Uuid,
    pub inverse: Uuid,
}

/// A link, the inverse the target holds back (for two-way links between tickets), and the change
/// of the source ticket that carries them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLink {
    pub link: Link,
    pub inverse: Option<Link>,
    pub changed: ChangedTicket,
}

impl Ticket {
    /// A `kind` link from this ticket to `target`, created by `created_by` at `now`; public ids
    /// are written for `region`.
    ///
    /// Links are added until the ticket is closed. A target ticket that does not exist is a
    /// violation of `target_id` (the caller is staff and may see every ticket of the tenant). The
    /// kind decides what may be linked ([`lifecycle::check_link`]). Problem ↔ incident, parent ↔
    /// child and related links are kept on both tickets; only the source's version moves.
    pub fn link(
        &self,
        kind: LinkKind,
        target: LinkTarget<'_>,
        created_by: &str,
        region: &str,
        new_ids: NewLinkIds,
        now: DateTime<Utc>,
    ) -> Result<NewLink, RuleError> {
        lifecycle::check_comment(self.status)?;
        let (target_ticket, target_id) = match target {
            LinkTarget::Ticket(ticket) => (Some(ticket), ids::format_id(region, ticket.id)),
            LinkTarget::Elsewhere(external) => (None, external.to_owned()),
            LinkTarget::NoSuchTicket => {
                let mut violations = Violations::new();
                violations.push("target_id", "no such ticket");
                return Err(violations.into());
            }
        };
        lifecycle::check_link(
            self.ticket_type,
            kind,
            target_ticket.map(|t| t.ticket_type),
            target_ticket.is_some_and(|t| t.id == self.id),
        )?;
        let link = Link {
            id: new_ids.link,
            tenant_id: self.tenant_id.clone(),
            ticket_id: self.id,
            kind,
            target_id: target_id.clone(),
            target_number: target_ticket.map(|t| t.number.clone()),
            created_by: created_by.to_owned(),
            created_at: now,
        };
        let inverse = match (target_ticket, kind.inverse()) {
            (Some(target_ticket), Some(inverse_kind)) => Some(Link {
                id: new_ids.inverse,
                tenant_id: self.tenant_id.clone(),
                ticket_id: target_ticket.id,
                kind: inverse_kind,
                target_id: ids::format_id(region, self.id),
                target_number: Some(self.number.clone()),
                created_by: created_by.to_owned(),
                created_at: now,
            }),
            _ => None,
        };
        let change = TicketChange {
            action: HistoryAction::Linked,
            field_changes: vec![FieldChange {
                field: format!("link.{}", kind.as_str()),
                old: None,
                new: Some(target_id),
            }],
            note: None,
            facts: vec![Fact::Linked { link: link.clone() }],
        };
        Ok(NewLink {
            link,
            inverse,
            changed: ChangedTicket::next_version(self, self.clone(), now, change),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{
        Status, TicketType,
        testing::{a_ticket, agent, alice, at, in_status},
    };

    fn comment_on(ticket: &Ticket, visibility: Visibility) -> AddComment {
        AddComment {
            ticket: TicketReference::Id(ticket.id),
            body: "We are on it\n— the desk".into(),
            visibility,
        }
    }

    #[test]
    fn a_comment_bumps_the_version_and_is_published_with_its_author() {
        let ticket = a_ticket();
        let added = ticket
            .comment(
                &agent(),
                &comment_on(&ticket, Visibility::Public),
                Uuid::from_u128(1),
                at(10),
            )
            .expect("open");
        assert_eq!(added.comment.author_id, "agent-7");
        assert_eq!(
            added.comment.author_name.as_deref(),
            Some("agent-7 (display name)")
        );
        assert_eq!(added.comment.body, "We are on it\n— the desk");
        assert_eq!(added.changed.ticket.version, 2);
        assert_eq!(added.changed.change.action, HistoryAction::Commented);
        assert_eq!(
            added.changed.change.facts,
            [Fact::Commented {
                comment: added.comment.clone()
            }]
        );
    }

    #[test]
    fn an_internal_comment_has_its_own_history_action() {
        let ticket = a_ticket();
        let added = ticket
            .comment(
                &agent(),
                &comment_on(&ticket, Visibility::Internal),
                Uuid::from_u128(1),
                at(10),
            )
            .expect("open");
        assert_eq!(
            added.changed.change.action,
            HistoryAction::CommentedInternally
        );
    }

    #[test]
    fn a_resolved_ticket_takes_comments_and_a_closed_one_does_not() {
        let resolved = in_status(Status::Resolved, a_ticket());
        assert!(
            resolved
                .comment(
                    &alice(),
                    &comment_on(&resolved, Visibility::Public),
                    Uuid::from_u128(1),
                    at(10)
                )
                .is_ok()
        );
        let closed = in_status(Status::Closed, a_ticket());
        assert_eq!(
            closed
                .comment(
                    &alice(),
                    &comment_on(&closed, Visibility::Public),
                    Uuid::from_u128(1),
                    at(10)
                )
                .map(|_| ()),
            Err(LifecycleError::ClosedToComments)
        );
    }

    #[test]
    fn logged_work_is_recorded_in_minutes() {
        let ticket = a_ticket();
        let command = AddWorklog {
            ticket: TicketReference::Id(ticket.id),
            minutes: 25,
            note: "rebooted the router".into(),
        };
        let logged = ticket
            .log_work("agent-7", &command, Uuid::from_u128(2), at(10))
            .expect("open");
        assert_eq!(logged.entry.minutes, 25);
        assert_eq!(
            logged.changed.change.field_changes,
            [FieldChange {
                field: "worklog_minutes".into(),
                old: None,
                new: Some("25".into())
            }]
        );
        assert_eq!(logged.changed.change.facts.len(), 1);
    }

    fn ids_for_links() -> NewLinkIds {
        NewLinkIds {
            link: Uuid::from_u128(10),
            inverse: Uuid::from_u128(11),
        }
    }

    #[test]
    fn an_incident_linked_to_its_problem_is_linked_back_from_the_problem() {
        let incident = a_ticket();
        let problem = Ticket {
            id: Uuid::from_u128(99),
            number: "PRB-000001".into(),
            ticket_type: TicketType::Problem,
            ..a_ticket()
        };
        let linked = incident
            .link(
                LinkKind::Problem,
                LinkTarget::Ticket(&problem),
                "agent-7",
                "test",
                ids_for_links(),
                at(10),
            )
            .expect("allowed");
        assert_eq!(linked.link.target_id, ids::format_id("test", problem.id));
        assert_eq!(linked.link.target_number.as_deref(), Some("PRB-000001"));
        let inverse = linked.inverse.expect("kept on both tickets");
        assert_eq!(
            (inverse.ticket_id, inverse.kind, inverse.target_id.as_str()),
            (
                problem.id,
                LinkKind::Incident,
                ids::format_id("test", incident.id).as_str()
            )
        );
        assert_eq!(inverse.target_number.as_deref(), Some("INC-000001"));
        assert_eq!(linked.changed.change.field_changes[0].field, "link.problem");
        assert_eq!(linked.changed.ticket.version, incident.version + 1);
    }

    #[test]
    fn a_change_or_an_article_is_linked_by_its_own_id_one_way() {
        let ticket = a_ticket();
        let linked = ticket
            .link(
                LinkKind::CausedByChange,
                LinkTarget::Elsewhere("CHG-000042"),
                "agent-7",
                "test",
                ids_for_links(),
                at(10),
            )
            .expect("allowed");
        assert_eq!(linked.link.target_id, "CHG-000042");
        assert_eq!(linked.link.target_number, None);
        assert_eq!(linked.inverse, None);
    }

    #[test]
    fn a_missing_target_ticket_is_a_violation_of_target_id() {
        let ticket = a_ticket();
        let error = ticket
            .link(
                LinkKind::Related,
                LinkTarget::NoSuchTicket,
                "agent-7",
                "test",
                ids_for_links(),
                at(10),
            )
            .expect_err("missing");
        let RuleError::Invalid(violations) = error else {
            panic!("expected a violation, got {error:?}");
        };
        assert_eq!(violations.to_string(), "target_id: no such ticket");
    }

    #[test]
    fn a_closed_ticket_takes_no_links_whatever_the_target() {
        let closed = in_status(Status::Closed, a_ticket());
        assert_eq!(
            closed
                .link(
                    LinkKind::Related,
                    LinkTarget::NoSuchTicket,
                    "agent-7",
                    "test",
                    ids_for_links(),
                    at(10),
                )
                .map(|_| ()),
            Err(RuleError::Lifecycle(LifecycleError::ClosedToComments))
        );
    }

    #[test]
    fn a_ticket_is_not_linked_to_itself() {
        let ticket = a_ticket();
        assert_eq!(
            ticket
                .link(
                    LinkKind::Related,
                    LinkTarget::Ticket(&ticket),
                    "agent-7",
                    "test",
                    ids_for_links(),
                    at(10),
                )
                .map(|_| ()),
            Err(RuleError::Lifecycle(LifecycleError::SelfLink))
        );
    }
}
