//! A ticket and what hangs off it (comments, worklog, links) as the rules see them: typed fields,
//! no storage or wire concerns.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::access::TicketAccessFacts;
use super::lifecycle::ResolutionCode;
use super::ticket::{
    Channel, Level, LinkKind, PendingReason, Priority, Status, SupportTier, TicketType, Visibility,
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    pub id: Uuid,
    pub tenant_id: String,
    /// `INC-000123`: unique per tenant (and region, since each region has its own database).
    pub number: String,
    pub ticket_type: TicketType,
    pub title: String,
    pub description: String,
    pub requester_id: String,
    pub channel: Channel,
    pub category: Option<String>,
    pub impact: Level,
    pub urgency: Level,
    /// Derived from impact × urgency by the tenant's matrix at the time of the last change.
    pub priority: Priority,
    pub status: Status,
    pub pending_reason: Option<PendingReason>,
    pub assignment_group_id: Option<String>,
    pub assignee_id: Option<String>,
    pub tier: SupportTier,
    pub affected_service_ids: Vec<String>,
    pub affected_ci_ids: Vec<String>,
    pub major_incident: bool,
    pub watcher_ids: Vec<String>,
    pub resolution: Option<ResolutionRecord>,
    pub problem: ProblemDetails,
    pub satisfaction: Option<Satisfaction>,
    /// Bumped by every change; a write names the version it read.
    pub version: i64,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolutionRecord {
    pub code: ResolutionCode,
    pub notes: String,
    pub resolved_by: String,
    pub resolved_at: DateTime<Utc>,
}

/// Root cause analysis; only problems carry it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProblemDetails {
    pub root_cause: Option<String>,
    pub workaround: Option<String>,
    pub known_error: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Satisfaction {
    pub rating: i32,
    pub comment: Option<String>,
    pub rated_at: DateTime<Utc>,
}

impl Ticket {
    /// What access rules need to know about this ticket.
    pub fn access_facts(&self) -> TicketAccessFacts {
        TicketAccessFacts {
            tenant: self.tenant_id.clone(),
            requester_id: self.requester_id.clone(),
            watcher_ids: self.watcher_ids.clone(),
        }
    }
}

/// A comment on a ticket, as the rules see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comment {
    pub id: Uuid,
    pub tenant_id: String,
    pub ticket_id: Uuid,
    pub author_id: String,
    /// The author's display name from their token, kept as it was when they wrote.
    pub author_name: Option<String>,
    /// As written: a comment's line breaks and indentation are part of what it says.
    pub body: String,
    pub visibility: Visibility,
    pub created_at: DateTime<Utc>,
}

/// Time an agent spent on a ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorklogEntry {
    pub id: Uuid,
    pub tenant_id: String,
    pub ticket_id: Uuid,
    pub agent_id: String,
    pub minutes: i32,
    pub note: String,
    pub created_at: DateTime<Utc>,
}

/// One side of a link: "`ticket_id` has a `kind` `target_id`".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub id: Uuid,
    pub tenant_id: String,
    /// The ticket this side of the link belongs to.
    pub ticket_id: Uuid,
    pub kind: LinkKind,
    /// A ticket's public id (`emea-<uuid>`), or the external id or number of a change or article.
    pub target_id: String,
    /// The target ticket's number, when the target is a ticket.
    pub target_number: Option<String>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
}
