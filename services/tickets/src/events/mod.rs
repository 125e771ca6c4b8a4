//! What the tickets service publishes: one CloudEvent per fact, on
//! `desk.<region>.tickets.<tenant>.<aggregate>.<event>`, each carrying the ticket as it is after the change
//! (so its `version` orders and de-duplicates them). The bodies are `desk.tickets.v1` event messages.
//!
//! It consumes the SLA service's `sla.breached` ([`escalation`]): a breached customer SLA raises
//! the ticket's tier.

pub mod escalation;

use desk_kit::events::OutgoingEvent;
use desk_proto::{common::v1 as common, tickets::v1 as pb};

use crate::api::convert;
use crate::domain::Fact;

/// How each [`Fact`] is written on the wire: the event for it about `ticket` (already at its new
/// version, rendered for the region that owns it), by `actor`.
pub fn event_for(fact: Fact, ticket: &pb::Ticket, actor: &common::Actor) -> OutgoingEvent {
    let (aggregate, event) = fact.name();
    let snapshot = Some(ticket.clone());
    let actor = Some(actor.clone());
    let text = |note: Option<String>| note.unwrap_or_default();
    let body: Vec<u8> = match fact {
        Fact::Created => encode(pb::TicketCreated {
            ticket: snapshot,
            actor,
        }),
        Fact::Updated { changes } => encode(pb::TicketUpdated {
            ticket: snapshot,
            actor,
            changes: convert::field_changes_to_pb(&changes),
        }),
        Fact::Assigned {
            previous_group,
            previous_assignee,
            note,
        } => encode(pb::TicketAssigned {
            ticket: snapshot,
            actor,
            previous_assignment_group_id: previous_group.unwrap_or_default(),
            previous_assignee_id: previous_assignee.unwrap_or_default(),
            note: text(note),
        }),
        Fact::Escalated {
            previous_tier,
            note,
        } => encode(pb::TicketEscalated {
            ticket: snapshot,
            actor,
            previous_tier: convert::tier_to_pb(previous_tier) as i32,
            note: text(note),
        }),
        Fact::StatusChanged { previous, note } => encode(pb::TicketStatusChanged {
            ticket: snapshot,
            actor,
            previous_status: convert::status_to_pb(previous) as i32,
            note: text(note),
        }),
        Fact::Resolved => encode(pb::TicketResolved {
            ticket: snapshot,
            actor,
        }),
        Fact::Closed => encode(pb::TicketClosed {
            ticket: snapshot,
            actor,
        }),
        Fact::Reopened { reason } => encode(pb::TicketReopened {
            ticket: snapshot,
            actor,
            reason,
        }),
        Fact::Commented { comment } => encode(pb::TicketCommented {
            ticket_id: ticket.id.clone(),
            version: ticket.version,
            comment: Some(convert::comment_to_pb(&ticket.region, &comment)),
        }),
        Fact::Worklogged { entry } => encode(pb::TicketWorklogged {
            ticket_id: ticket.id.clone(),
            version: ticket.version,
            entry: Some(convert::worklog_to_pb(&ticket.region, &entry)),
        }),
        Fact::Linked { link } => encode(pb::TicketLinked {
            ticket_id: ticket.id.clone(),
            version: ticket.version,
            link: Some(convert::link_to_pb(&link)),
        }),
        Fact::Rated => encode(pb::TicketRated { ticket: snapshot }),
        Fact::ProblemUpdated { changes } => encode(pb::ProblemUpdated {
            problem: snapshot,
            actor,
            changes: convert::field_changes_to_pb(&changes),
        }),
        Fact::ProblemResolved { incident_ids } => encode(pb::ProblemResolved {
            problem: snapshot,
            incident_ids,
        }),
    };
    OutgoingEvent {
        aggregate,
        event,
        aggregate_id: ticket.id.clone(),
        tenant: ticket.tenant_id.clone(),
        payload: body,
    }
}

fn encode(message: impl prost::Message) -> Vec<u8> {
    message.encode_to_vec()
}
