//! What the directory publishes: `person.created/updated/deactivated`,
//! `team.created/updated/retired`, `membership.added/removed` and `presence.changed` on
//! `desk.<region>.directory.<tenant>.<aggregate>.<event>`, bodies from
//! `proto/desk/directory/v1/events.proto`, each carrying the aggregate after the change — one
//! event per change, written through the transactional outbox with the change itself.
//!
//! [`presence_expiry`] is the worker that records expired presences and publishes their
//! `presence.changed` to offline; [`team_follow`] keeps a replica's in-memory teams current from
//! the team events every replica publishes.

pub mod presence_expiry;
pub mod team_follow;

use desk_kit::events::OutgoingEvent;
use desk_proto::{common::v1 as common, directory::v1 as pb};
use prost::Message as _;

use crate::{
    api::convert,
    domain::{Fact, PersonView},
};

/// The actor of changes no caller made (a presence expiring).
pub fn directory_actor() -> common::Actor {
    common::Actor {
        subject: crate::SERVICE.to_owned(),
        name: "Directory".to_owned(),
        roles: vec![desk_kit::auth::SERVICE_ROLE.to_owned()],
    }
}

/// The event of `fact` in `tenant`, by `actor`; ids are rendered in `region`.
pub fn event_for(region: &str, tenant: &str, fact: &Fact, actor: &common::Actor) -> OutgoingEvent {
    let actor = Some(actor.clone());
    let person = |person| Some(convert::person_to_pb(region, person, PersonView::Full));
    let (aggregate, event) = fact.name();
    let (aggregate_id, payload) = match fact {
        Fact::PersonCreated { person: p, source } => (
            p.id,
            pb::PersonCreated {
                person: person(p),
                actor,
                source: source.clone(),
            }
            .encode_to_vec(),
        ),
        Fact::PersonUpdated {
            person: p,
            changes,
            source,
        } => (
            p.id,
            pb::PersonUpdated {
                person: person(p),
                actor,
                changes: convert::changes_to_pb(changes),
                source: source.clone(),
            }
            .encode_to_vec(),
        ),
        Fact::PersonDeactivated {
            person: p,
            reason,
            report,
            source,
        } => (
            p.id,
            pb::PersonDeactivated {
                person: person(p),
                actor,
                reason: reason.clone().unwrap_or_default(),
                report: Some(convert::report_to_pb(region, report)),
                source: source.clone(),
            }
            .encode_to_vec(),
        ),
        Fact::TeamCreated { team } => (
            team.id,
            pb::TeamCreated {
                team: Some(convert::team_to_pb(region, team)),
                actor,
            }
            .encode_to_vec(),
        ),
        Fact::TeamUpdated { team, changes } => (
            team.id,
            pb::TeamUpdated {
                team: Some(convert::team_to_pb(region, team)),
                actor,
                changes: convert::changes_to_pb(changes),
            }
            .encode_to_vec(),
        ),
        Fact::TeamRetired { team, reason } => (
            team.id,
            pb::TeamRetired {
                team: Some(convert::team_to_pb(region, team)),
                actor,
                reason: reason.clone().unwrap_or_default(),
            }
            .encode_to_vec(),
        ),
        Fact::MembershipAdded {
            membership,
            previous_role,
            source,
        } => (
            membership.id,
            pb::MembershipAdded {
                membership: Some(convert::membership_to_pb(region, membership)),
                actor,
                previous_role: convert::role_to_pb(*previous_role) as i32,
                source: source.clone(),
            }
            .encode_to_vec(),
        ),
        Fact::MembershipRemoved { membership, source } => (
            membership.id,
            pb::MembershipRemoved {
                membership: Some(convert::membership_to_pb(region, membership)),
                actor,
                source: source.clone(),
            }
            .encode_to_vec(),
        ),
        Fact::PresenceChanged { change } => (
            change.presence.person_id,
            pb::PresenceChanged {
                presence: Some(pb::Presence {
                    expired: change.expired,
                    ..convert::presence_change_to_pb(region, &change.presence)
                }),
                actor,
                previous_status: convert::presence_status_to_pb(change.previous) as i32,
                expired: change.expired,
            }
            .encode_to_vec(),
        ),
    };
    OutgoingEvent {
        aggregate,
        event,
        aggregate_id: desk_kit::ids::format_id(region, aggregate_id),
        tenant: tenant.to_owned(),
        payload,
    }
}

/// The events of `facts`, in order.
pub fn events_for(
    region: &str,
    tenant: &str,
    facts: &[Fact],
    actor: &common::Actor,
) -> Vec<OutgoingEvent> {
    facts
        .iter()
        .map(|fact| event_for(region, tenant, fact, actor))
        .collect()
}
