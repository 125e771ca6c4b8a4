//! What the change service publishes — `change.<event>` on
//! `desk.<region>.change.<tenant>.change.<event>`, bodies from `proto/desk/change/v1/events.proto`,
//! each carrying the change after the fact — and the consumers it runs:
//! - [`projection`]: the CMDB's CI, relationship and class events into the projection tables
//!   (durable consumer `change-cmdb-projection`), and every replica's in-memory graph kept
//!   current by following the same stream;
//! - [`incidents`]: the tickets service's `ticket.created` into suspected change-caused
//!   incidents (`change-incident-suspects`);
//! - [`ci_updates`]: the service's own `change.implemented` into CMDB `UpdateCi` calls with a
//!   service token, the change as their provenance (`change-ci-updates`).

pub mod ci_updates;
pub mod incidents;
pub mod projection;

use desk_kit::events::OutgoingEvent;
use desk_proto::{change::v1 as pb, common::v1 as common};

use crate::{
    api::convert,
    domain::{Change, Conflict, Decision, SuspectedIncident},
};

/// The aggregate every event is about.
pub const AGGREGATE: &str = "change";

fn outgoing(
    region: &str,
    change: &Change,
    event: &'static str,
    payload: &impl prost::Message,
) -> OutgoingEvent {
    OutgoingEvent::new(
        AGGREGATE,
        event,
        desk_kit::ids::format_id(region, change.id),
        change.tenant.clone(),
        payload,
    )
}

/// A lifecycle fact: `created`, `submitted`, `assessed`, `approved`, ...
pub fn lifecycle(
    region: &str,
    change: &Change,
    event: &'static str,
    actor: &common::Actor,
    note: &str,
) -> OutgoingEvent {
    outgoing(
        region,
        change,
        event,
        &pb::ChangeEvent {
            change: Some(convert::change_pb(region, change)),
            actor: Some(actor.clone()),
            note: note.to_owned(),
        },
    )
}

pub fn decision_recorded(region: &str, change: &Change, decision: &Decision) -> OutgoingEvent {
    outgoing(
        region,
        change,
        "decision_recorded",
        &pb::ChangeDecisionRecorded {
            change: Some(convert::change_pb(region, change)),
            decision: Some(convert::decision_pb(decision)),
        },
    )
}

pub fn conflict_detected(region: &str, change: &Change, conflicts: &[Conflict]) -> OutgoingEvent {
    outgoing(
        region,
        change,
        "conflict_detected",
        &pb::ChangeConflictDetected {
            change: Some(convert::change_pb(region, change)),
            conflicts: conflicts
                .iter()
                .map(|c| convert::conflict_pb(region, c))
                .collect(),
        },
    )
}

pub fn incident_suspected(
    region: &str,
    change: &Change,
    incident: &SuspectedIncident,
) -> OutgoingEvent {
    outgoing(
        region,
        change,
        "incident_suspected",
        &pb::ChangeIncidentSuspected {
            change: Some(convert::change_pb(region, change)),
            incident: Some(convert::suspected_pb(region, incident)),
        },
    )
}
