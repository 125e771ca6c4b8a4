//! Builders for the domain's unit tests: one ordinary ticket and callers around it.

use chrono::{DateTime, TimeZone, Utc};
use desk_kit::auth::{Caller, Role};
use uuid::Uuid;

use super::record::{ProblemDetails, Ticket};
use super::ticket::{Channel, Level, Priority, Status, SupportTier, TicketType};

/// 2025-03-03 at `hour`:00 UTC.
pub fn at(hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 3, hour, 0, 0)
        .single()
        .expect("a valid time")
}

/// A new, medium × medium incident at acme, raised by alice at 09:00, at version 1.
pub fn a_ticket() -> Ticket {
    Ticket {
        id: Uuid::from_u128(0x0195_c1f0_7a4e_7c3b_9a55_3f1d_2e4b_5c6d),
        tenant_id: "acme".into(),
        number: "INC-000001".into(),
        ticket_type: TicketType::Incident,
        title: "VPN drops every hour".into(),
        description: String::new(),
        requester_id: "alice".into(),
        channel: Channel::Portal,
        category: None,
        impact: Level::Medium,
        urgency: Level::Medium,
        priority: Priority::P3,
        status: Status::New,
        pending_reason: None,
        assignment_group_id: None,
        assignee_id: None,
        tier: SupportTier::Tier1,
        affected_service_ids: Vec::new(),
        affected_ci_ids: Vec::new(),
        major_incident: false,
        watcher_ids: Vec::new(),
        resolution: None,
        problem: ProblemDetails::default(),
        satisfaction: None,
        version: 1,
        created_by: "alice".into(),
        created_at: at(9),
        updated_at: at(9),
    }
}

/// `ticket` in `status`, one version on.
pub fn in_status(status: Status, ticket: Ticket) -> Ticket {
    Ticket {
        status,
        version: ticket.version + 1,
        ..ticket
    }
}

pub fn caller(subject: &str, roles: &[Role]) -> Caller {
    Caller {
        subject: subject.into(),
        tenant: "acme".into(),
        roles: roles.to_vec(),
        groups: Vec::new(),
        name: Some(format!("{subject} (display name)")),
        email: None,
        locale: None,
    }
}

pub fn agent() -> Caller {
    caller("agent-7", &[Role::Agent])
}

pub fn alice() -> Caller {
    caller("alice", &[Role::Requester])
}
