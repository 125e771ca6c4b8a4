//! What the SLA service publishes — one event per clock transition, `sla.<event>` on
//! `desk.<region>.sla.<tenant>.sla.<event>` (bodies from `proto/desk/sla/v1/events.proto`,
//! `ce-subject` the ticket id) — and what it runs to make them:
//! - [`clocks`]: the engine that re-folds a ticket's clocks and publishes their new
//!   transitions, and the consumer of the tickets service's events (`sla-clocks`);
//! - [`teams`]: the directory's team events into the team → calendar projection (`sla-teams`);
//! - [`timers`]: the worker firing due warning and breach timers.

pub mod clocks;
pub mod teams;
pub mod timers;

use desk_kit::events::OutgoingEvent;
use desk_proto::sla::v1 as pb;

use crate::domain::{ClockView, EntryKind, TimelineEntry};

/// The aggregate every event is about.
pub const AGGREGATE: &str = "sla";

/// The event for one transition of `view`, or `None` for entries that are not published.
#[allow(clippy::too_many_arguments)]
pub fn transition_event(
    region: &str,
    tenant: &str,
    ticket_id: &str,
    ticket_number: &str,
    view: &ClockView,
    policy_name: &str,
    entry: &TimelineEntry,
    version: i64,
) -> Option<OutgoingEvent> {
    let transition = Some(pb::ClockTransition {
        ticket_id: ticket_id.to_owned(),
        ticket_number: ticket_number.to_owned(),
        team_id: view.team_id.clone().unwrap_or_default(),
        clock: Some(crate::api::convert::clock_to_pb(
            region,
            view,
            policy_name,
            false,
        )),
        version,
    });
    let event = |name: &'static str, message: &dyn Fn() -> Vec<u8>| OutgoingEvent {
        aggregate: AGGREGATE,
        event: name,
        aggregate_id: ticket_id.to_owned(),
        tenant: tenant.to_owned(),
        payload: message(),
    };
    use prost::Message;
    Some(match entry.kind {
        EntryKind::Started => event("started", &|| {
            pb::SlaStarted {
                transition: transition.clone(),
            }
            .encode_to_vec()
        }),
        EntryKind::Paused => event("paused", &|| {
            pb::SlaPaused {
                transition: transition.clone(),
                reason: entry.reason.clone(),
            }
            .encode_to_vec()
        }),
        EntryKind::Resumed => event("resumed", &|| {
            pb::SlaResumed {
                transition: transition.clone(),
            }
            .encode_to_vec()
        }),
        EntryKind::Warning => event("warning", &|| {
            pb::SlaWarning {
                transition: transition.clone(),
                threshold_percent: entry.threshold_percent.unwrap_or_default(),
            }
            .encode_to_vec()
        }),
        EntryKind::Breached => event("breached", &|| {
            pb::SlaBreached {
                transition: transition.clone(),
            }
            .encode_to_vec()
        }),
        EntryKind::Met => event("met", &|| {
            pb::SlaMet {
                transition: transition.clone(),
            }
            .encode_to_vec()
        }),
        EntryKind::Retargeted
        | EntryKind::CalendarChanged
        | EntryKind::Counted
        | EntryKind::Reset
        | EntryKind::Stopped => return None,
    })
}
