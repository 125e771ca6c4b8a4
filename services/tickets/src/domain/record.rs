//! A ticket as the rules see it: typed fields, no storage or wire concerns.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::access::TicketAccessFacts;
use super::lifecycle::ResolutionCode;
use super::ticket::{Channel, Level, PendingReason, Priority, Status, SupportTier, TicketType};

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
