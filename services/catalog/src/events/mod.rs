//! What the catalog publishes — on `desk.<region>.catalog.<tenant>.<aggregate>.<event>`, bodies
//! from `proto/desk/catalog/v1/events.proto`, each carrying the request after the fact:
//! `request.submitted/approved/rejected/fulfilled/cancelled`, `approval.requested/decided/expired`,
//! `task.created/claimed/completed` — and the consumers it runs:
//! - [`directory`]: the directory's `person.*` and `membership.*` events into the tables that
//!   resolve a requester's manager and a team's members (durable consumer `catalog-directory`);
//! - [`tickets`]: the tickets service's `ticket.created` for a request's ticket, linked back
//!   (`catalog-tickets`).
//!
//! [`timers`] is the worker that fires reminders and expiry on the service's clock.

pub mod directory;
pub mod timers;

use desk_kit::events::OutgoingEvent;
use desk_proto::{catalog::v1 as pb, common::v1 as common};

use crate::{
    api::convert,
    domain::{Offering, request::Fact, request::Request},
};

fn outgoing(
    region: &str,
    request: &Request,
    aggregate: &'static str,
    event: &'static str,
    payload: &impl prost::Message,
) -> OutgoingEvent {
    OutgoingEvent::new(
        aggregate,
        event,
        desk_kit::ids::format_id(region, request.id),
        request.tenant.clone(),
        payload,
    )
}

/// The events of `facts`, in order, each carrying `request` as it is after them all (one
/// transaction: consumers see the state the facts led to, ordered by its version).
pub fn of_facts(
    region: &str,
    request: &Request,
    offering: &Offering,
    facts: &[Fact],
    actor: &common::Actor,
) -> Vec<OutgoingEvent> {
    let message = convert::request_pb(region, request);
    let request_event = |event: &'static str, note: &str| {
        let mut payload = pb::RequestEvent {
            request: Some(message.clone()),
            actor: Some(actor.clone()),
            note: note.to_owned(),
            offering_name: Vec::new(),
            target_fulfillment_minutes: 0,
        };
        if event == "submitted" {
            payload.offering_name = convert::localized_pb(&offering.definition.name);
            payload.target_fulfillment_minutes =
                offering.definition.target_fulfillment_minutes as i32;
        }
        outgoing(region, request, "request", event, &payload)
    };
    let approval = |step: u32| {
        request
            .approvals
            .get(step as usize)
            .map(convert::approval_pb)
    };
    facts
        .iter()
        .map(|fact| match fact {
            Fact::Submitted => request_event("submitted", ""),
            Fact::Approved => request_event("approved", ""),
            Fact::Rejected { note } => request_event("rejected", note),
            Fact::Fulfilled => request_event("fulfilled", ""),
            Fact::Cancelled { reason } => request_event("cancelled", reason),
            Fact::ApprovalRequested {
                step,
                reminder,
                escalated,
            } => outgoing(
                region,
                request,
                "approval",
                "requested",
                &pb::ApprovalEvent {
                    request: Some(message.clone()),
                    approval: approval(*step),
                    decision: None,
                    reminder: *reminder,
                    escalated: *escalated,
                },
            ),
            Fact::ApprovalDecided { step, decision } => outgoing(
                region,
                request,
                "approval",
                "decided",
                &pb::ApprovalEvent {
                    request: Some(message.clone()),
                    approval: approval(*step),
                    decision: Some(convert::decision_pb(decision)),
                    reminder: false,
                    escalated: false,
                },
            ),
            Fact::ApprovalExpired { step, escalated } => outgoing(
                region,
                request,
                "approval",
                "expired",
                &pb::ApprovalEvent {
                    request: Some(message.clone()),
                    approval: approval(*step),
                    decision: None,
                    reminder: false,
                    escalated: *escalated,
                },
            ),
            Fact::TaskCreated { key } | Fact::TaskClaimed { key } | Fact::TaskCompleted { key } => {
                let event = match fact {
                    Fact::TaskCreated { .. } => "created",
                    Fact::TaskClaimed { .. } => "claimed",
                    _ => "completed",
                };
                outgoing(
                    region,
                    request,
                    "task",
                    event,
                    &pb::TaskEvent {
                        request: Some(message.clone()),
                        task: request
                            .task(key)
                            .map(|t| convert::task_pb(region, request, t)),
                        actor: Some(actor.clone()),
                    },
                )
            }
        })
        .collect()
}
