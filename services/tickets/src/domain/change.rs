//! What a rule returns when it changes a ticket: the ticket after the change, the version the
//! change was decided on, and what to record of it — the history entry's action, field changes and
//! note, and the facts to publish. The store writes all of it in one transaction, or nothing.

use chrono::{DateTime, Utc};

use super::access::AccessError;
use super::facts::Fact;
use super::history::FieldChange;
use super::lifecycle::LifecycleError;
use super::record::Ticket;
use super::string_enum::string_enum;
use super::validate::Violations;

string_enum! {
    /// What a history entry says happened; clients show these names.
    pub enum HistoryAction {
        Created => "created",
        Updated => "updated",
        Assigned => "assigned",
        /// An assignment that raised the support tier.
        Escalated => "escalated",
        StatusChanged => "status_changed",
        Resolved => "resolved",
        Reopened => "reopened",
        Commented => "commented",
        CommentedInternally => "commented_internally",
        Worklogged => "worklogged",
        Linked => "linked",
        ProblemUpdated => "problem_updated",
        Rated => "rated",
    }
}

/// What to record of one change: its history entry and the facts to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketChange {
    pub action: HistoryAction,
    pub field_changes: Vec<FieldChange>,
    /// The free text the caller gave with the change (an assignment note, a reopen reason).
    pub note: Option<String>,
    pub facts: Vec<Fact>,
}

/// A ticket after a change, ready to be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangedTicket {
    /// The version the change was decided on: the write succeeds only if it is still current.
    pub read_version: i64,
    /// The ticket after the change, already at its new version and update time.
    pub ticket: Ticket,
    pub change: TicketChange,
    /// Whether the watchers changed: the store keeps them apart too, for the lists of watchers.
    pub watchers_changed: bool,
}

impl ChangedTicket {
    /// `after` as the next version of `before`, changed at `now`. Every change bumps the version
    /// by one, so events and history entries of one ticket are ordered by it.
    pub fn next_version(
        before: &Ticket,
        mut after: Ticket,
        now: DateTime<Utc>,
        change: TicketChange,
    ) -> ChangedTicket {
        after.version = before.version + 1;
        after.updated_at = now;
        ChangedTicket {
            read_version: before.version,
            watchers_changed: after.watcher_ids != before.watcher_ids,
            ticket: after,
            change,
        }
    }
}

/// The outcome of an edit that may turn out to change nothing: asking for what a ticket already
/// has writes nothing, bumps no version and publishes nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Edit {
    NothingChanged,
    /// Boxed: a ticket is large, and most edits that change nothing are answered at once.
    Changed(Box<ChangedTicket>),
}

/// Why a rule refused a command: the ticket's state, the caller's rights, or a value that is
/// wrong only in the light of the ticket (a watcher list that would grow past its limit).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error(transparent)]
    Lifecycle(#[from] LifecycleError),
    #[error(transparent)]
    Access(#[from] AccessError),
    #[error("invalid request: {0}")]
    Invalid(Violations),
}

impl From<Violations> for RuleError {
    fn from(violations: Violations) -> Self {
        RuleError::Invalid(violations)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::testing::a_ticket;

    #[test]
    fn a_change_makes_the_next_version_at_the_time_it_was_made() {
        let before = a_ticket();
        let now = before.updated_at + chrono::Duration::minutes(5);
        let change = TicketChange {
            action: HistoryAction::Updated,
            field_changes: Vec::new(),
            note: None,
            facts: Vec::new(),
        };
        let changed = ChangedTicket::next_version(&before, before.clone(), now, change);
        assert_eq!(changed.read_version, before.version);
        assert_eq!(changed.ticket.version, before.version + 1);
        assert_eq!(changed.ticket.updated_at, now);
        assert_eq!(changed.ticket.created_at, before.created_at);
        assert!(!changed.watchers_changed);
    }

    #[test]
    fn a_change_says_when_the_watchers_changed() {
        let before = a_ticket();
        let after = Ticket {
            watcher_ids: vec!["walter".into()],
            ..before.clone()
        };
        let change = TicketChange {
            action: HistoryAction::Updated,
            field_changes: Vec::new(),
            note: None,
            facts: Vec::new(),
        };
        assert!(
            ChangedTicket::next_version(&before, after, before.updated_at, change).watchers_changed
        );
    }

    #[test]
    fn history_actions_keep_the_names_clients_show() {
        assert_eq!(
            HistoryAction::CommentedInternally.as_str(),
            "commented_internally"
        );
        assert_eq!(HistoryAction::ProblemUpdated.as_str(), "problem_updated");
    }
}
