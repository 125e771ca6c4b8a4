//! The facts a change to a ticket establishes, which the service publishes as events. The rules
//! decide which facts a change makes (an assignment that raises the tier is also an escalation);
//! `events/` decides only how each one is written on the wire.

use super::history::FieldChange;
use super::record::{Comment, Link, WorklogEntry};
use super::ticket::{Status, SupportTier};

/// A fact about a ticket that integrators may want to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fact {
    Created,
    Updated {
        changes: Vec<FieldChange>,
    },
    Assigned {
        previous_group: Option<String>,
        previous_assignee: Option<String>,
        note: Option<String>,
    },
    Escalated {
        previous_tier: SupportTier,
        note: Option<String>,
    },
    StatusChanged {
        previous: Status,
        note: Option<String>,
    },
    Resolved,
    Closed,
    Reopened {
        reason: String,
    },
    Commented {
        comment: Comment,
    },
    Worklogged {
        entry: WorklogEntry,
    },
    Linked {
        link: Link,
    },
    Rated,
    ProblemUpdated {
        changes: Vec<FieldChange>,
    },
    ProblemResolved {
        /// The public ids of the incidents linked to the problem.
        incident_ids: Vec<String>,
    },
}

impl Fact {
    /// `(aggregate, event)`: the last two parts of the subject.
    pub fn name(&self) -> (&'static str, &'static str) {
        match self {
            Fact::Created => ("ticket", "created"),
            Fact::Updated { .. } => ("ticket", "updated"),
            Fact::Assigned { .. } => ("ticket", "assigned"),
            Fact::Escalated { .. } => ("ticket", "escalated"),
            Fact::StatusChanged { .. } => ("ticket", "status_changed"),
            Fact::Resolved => ("ticket", "resolved"),
            Fact::Closed => ("ticket", "closed"),
            Fact::Reopened { .. } => ("ticket", "reopened"),
            Fact::Commented { .. } => ("ticket", "commented"),
            Fact::Worklogged { .. } => ("ticket", "worklogged"),
            Fact::Linked { .. } => ("ticket", "linked"),
            Fact::Rated => ("ticket", "rated"),
            Fact::ProblemUpdated { .. } => ("problem", "updated"),
            Fact::ProblemResolved { .. } => ("problem", "resolved"),
        }
    }
}
