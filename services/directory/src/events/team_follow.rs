//! Every directory replica follows the directory's own `team.*` events to keep its in-memory
//! [`TeamIndex`] (what `FindTeams` answers from) as current as the replica that wrote the change
//! (`desk_kit::events::follow`). Without this, replica B would not find a team created on A.
//!
//! Each event carries the whole team at its version, so the index applies it only when newer
//! than what it holds (see `api::team_index`).

use desk_kit::events::IncomingEvent;
use desk_proto::directory::v1 as pb;

use crate::api::{TeamIndex, convert};

/// What a replica follows: the team events of every tenant.
pub fn followed_subjects(region: &str) -> Vec<String> {
    vec![format!("desk.{region}.{}.*.team.>", crate::SERVICE)]
}

/// Applies followed events, in order, to `index`. An event that does not read is logged and
/// skipped: a follower has nowhere to park it, and the next write of that team carries it whole.
pub fn apply(index: &TeamIndex, region: &str, events: Vec<IncomingEvent>) {
    for event in events {
        let team = match event.attributes.ce_type.as_str() {
            "desk.directory.team.created.v1" => event.decode::<pb::TeamCreated>().map(|m| m.team),
            "desk.directory.team.updated.v1" => event.decode::<pb::TeamUpdated>().map(|m| m.team),
            "desk.directory.team.retired.v1" => event.decode::<pb::TeamRetired>().map(|m| m.team),
            _ => continue,
        };
        let team = team
            .map_err(|error| error.to_string())
            .and_then(|team| team.ok_or_else(|| "the event carries no team".to_owned()))
            .and_then(|team| convert::team_from_pb(region, &team));
        match team {
            Ok(team) if team.tenant_id == event.attributes.tenant => {
                index.apply(team);
            }
            Ok(team) => tracing::warn!(
                event.id = %event.attributes.id,
                event.tenant = %event.attributes.tenant,
                team.tenant = %team.tenant_id,
                "team follower skipped an event whose team is of another tenant"
            ),
            Err(reason) => tracing::warn!(
                event.id = %event.attributes.id,
                event.type = %event.attributes.ce_type,
                reason = %reason,
                "team follower skipped an event it cannot read"
            ),
        }
    }
}
