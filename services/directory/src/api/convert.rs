//! Between the wire (`desk.directory.v1`) and the domain.

use chrono::{DateTime, Utc};
use desk_kit::{
    history::{Changes, FieldChange},
    ids,
};
use desk_proto::{common::v1 as common, directory::v1 as pb};
use prost_types::Timestamp;
use uuid::Uuid;

use crate::domain::{
    AgentProfile, DeactivationReport, Membership, MembershipRole, Person, PersonStatus, PersonView,
    PlannedPerson, Presence, PresenceReading, PresenceStatus, ProvisioningAction,
    ProvisioningState, SkillCatalog, SupportTier, Team, TeamStatus, presence,
};

pub fn timestamp(at: DateTime<Utc>) -> Option<Timestamp> {
    Some(Timestamp {
        seconds: at.timestamp(),
        nanos: at.timestamp_subsec_nanos() as i32,
    })
}

fn id(region: &str, uuid: Uuid) -> String {
    ids::format_id(region, uuid)
}

fn opt_id(region: &str, uuid: Option<Uuid>) -> String {
    uuid.map(|uuid| id(region, uuid)).unwrap_or_default()
}

pub fn person_status_to_pb(status: PersonStatus) -> pb::PersonStatus {
    match status {
        PersonStatus::Active => pb::PersonStatus::Active,
        PersonStatus::Deactivated => pb::PersonStatus::Deactivated,
    }
}

pub fn person_status(value: i32) -> Option<Option<PersonStatus>> {
    match pb::PersonStatus::try_from(value).ok()? {
        pb::PersonStatus::Unspecified => Some(None),
        pb::PersonStatus::Active => Some(Some(PersonStatus::Active)),
        pb::PersonStatus::Deactivated => Some(Some(PersonStatus::Deactivated)),
    }
}

pub fn tier_to_pb(tier: Option<SupportTier>) -> pb::SupportTier {
    match tier {
        None => pb::SupportTier::Unspecified,
        Some(SupportTier::FirstLine) => pb::SupportTier::FirstLine,
        Some(SupportTier::SecondLine) => pb::SupportTier::SecondLine,
        Some(SupportTier::ThirdLine) => pb::SupportTier::ThirdLine,
    }
}

/// `Some(None)` for unspecified, `None` for a value the wire does not know.
pub fn tier(value: i32) -> Option<Option<SupportTier>> {
    match pb::SupportTier::try_from(value).ok()? {
        pb::SupportTier::Unspecified => Some(None),
        pb::SupportTier::FirstLine => Some(Some(SupportTier::FirstLine)),
        pb::SupportTier::SecondLine => Some(Some(SupportTier::SecondLine)),
        pb::SupportTier::ThirdLine => Some(Some(SupportTier::ThirdLine)),
    }
}

pub fn team_status_to_pb(status: TeamStatus) -> pb::TeamStatus {
    match status {
        TeamStatus::Active => pb::TeamStatus::Active,
        TeamStatus::Retired => pb::TeamStatus::Retired,
    }
}

pub fn team_status(value: i32) -> Option<Option<TeamStatus>> {
    match pb::TeamStatus::try_from(value).ok()? {
        pb::TeamStatus::Unspecified => Some(None),
        pb::TeamStatus::Active => Some(Some(TeamStatus::Active)),
        pb::TeamStatus::Retired => Some(Some(TeamStatus::Retired)),
    }
}

pub fn role_to_pb(role: Option<MembershipRole>) -> pb::MembershipRole {
    match role {
        None => pb::MembershipRole::Unspecified,
        Some(MembershipRole::Member) => pb::MembershipRole::Member,
        Some(MembershipRole::Lead) => pb::MembershipRole::Lead,
    }
}

pub fn role(value: i32) -> Option<Option<MembershipRole>> {
    match pb::MembershipRole::try_from(value).ok()? {
        pb::MembershipRole::Unspecified => Some(None),
        pb::MembershipRole::Member => Some(Some(MembershipRole::Member)),
        pb::MembershipRole::Lead => Some(Some(MembershipRole::Lead)),
    }
}

pub fn presence_status_to_pb(status: PresenceStatus) -> pb::PresenceStatus {
    match status {
        PresenceStatus::Available => pb::PresenceStatus::Available,
        PresenceStatus::Busy => pb::PresenceStatus::Busy,
        PresenceStatus::Away => pb::PresenceStatus::Away,
        PresenceStatus::Offline => pb::PresenceStatus::Offline,
    }
}

pub fn presence_status(value: i32) -> Option<Option<PresenceStatus>> {
    match pb::PresenceStatus::try_from(value).ok()? {
        pb::PresenceStatus::Unspecified => Some(None),
        pb::PresenceStatus::Available => Some(Some(PresenceStatus::Available)),
        pb::PresenceStatus::Busy => Some(Some(PresenceStatus::Busy)),
        pb::PresenceStatus::Away => Some(Some(PresenceStatus::Away)),
        pb::PresenceStatus::Offline => Some(Some(PresenceStatus::Offline)),
    }
}

pub fn state_to_pb(state: ProvisioningState) -> pb::ProvisioningState {
    match state {
        ProvisioningState::Staged => pb::ProvisioningState::Staged,
        ProvisioningState::Committed => pb::ProvisioningState::Committed,
        ProvisioningState::Discarded => pb::ProvisioningState::Discarded,
    }
}

pub fn state(value: i32) -> Option<Option<ProvisioningState>> {
    match pb::ProvisioningState::try_from(value).ok()? {
        pb::ProvisioningState::Unspecified => Some(None),
        pb::ProvisioningState::Staged => Some(Some(ProvisioningState::Staged)),
        pb::ProvisioningState::Committed => Some(Some(ProvisioningState::Committed)),
        pb::ProvisioningState::Discarded => Some(Some(ProvisioningState::Discarded)),
    }
}

pub fn action_to_pb(action: ProvisioningAction) -> pb::ProvisioningAction {
    match action {
        ProvisioningAction::Create => pb::ProvisioningAction::Create,
        ProvisioningAction::Update => pb::ProvisioningAction::Update,
        ProvisioningAction::Unchanged => pb::ProvisioningAction::Unchanged,
        ProvisioningAction::Deactivate => pb::ProvisioningAction::Deactivate,
        ProvisioningAction::Reactivate => pb::ProvisioningAction::Reactivate,
    }
}

pub fn agent_to_pb(agent: &AgentProfile) -> pb::AgentProfile {
    pb::AgentProfile {
        skills: agent
            .skills
            .iter()
            .map(|s| pb::Skill {
                name: s.name.clone(),
                level: i32::from(s.level),
            })
            .collect(),
        languages: agent.languages.clone(),
        capacity: i32::try_from(agent.capacity).unwrap_or(i32::MAX),
    }
}

/// A person as `view` lets the caller see them.
pub fn person_to_pb(region: &str, person: &Person, view: PersonView) -> pb::Person {
    let id = id(region, person.id);
    if view == PersonView::DisplayNameOnly {
        return pb::Person {
            id,
            tenant_id: person.tenant_id.clone(),
            display_name: person.fields.display_name.clone(),
            display_name_only: true,
            ..pb::Person::default()
        };
    }
    let fields = &person.fields;
    pb::Person {
        id,
        tenant_id: person.tenant_id.clone(),
        subject: person.subject.clone(),
        external_id: person.external_id.clone().unwrap_or_default(),
        display_name: fields.display_name.clone(),
        email: fields.email.clone().unwrap_or_default(),
        phone: fields.phone.clone().unwrap_or_default(),
        locale: fields.locale.clone().unwrap_or_default(),
        time_zone: fields.time_zone.clone().unwrap_or_default(),
        manager_id: opt_id(region, person.manager_id),
        department: fields.department.clone().unwrap_or_default(),
        location: fields.location.clone().unwrap_or_default(),
        vip: fields.vip,
        status: person_status_to_pb(person.status) as i32,
        agent: person.agent.as_ref().map(agent_to_pb),
        source: person.source.clone(),
        version: person.version,
        create_time: timestamp(person.created_at),
        update_time: timestamp(person.updated_at),
        deactivate_time: person.deactivated_at.and_then(timestamp),
        display_name_only: false,
    }
}

pub fn team_to_pb(region: &str, team: &Team) -> pb::Team {
    let fields = &team.fields;
    pb::Team {
        id: id(region, team.id),
        tenant_id: team.tenant_id.clone(),
        name: fields.name.clone(),
        description: fields.description.clone().unwrap_or_default(),
        region: fields.region.clone(),
        time_zone: fields.time_zone.clone().unwrap_or_default(),
        calendar_id: fields.calendar_id.clone().unwrap_or_default(),
        tier: tier_to_pb(fields.tier) as i32,
        skills: fields.skills.clone(),
        manager_id: opt_id(region, team.manager_id),
        parent_id: opt_id(region, team.parent_id),
        follow_the_sun: fields.follow_the_sun,
        status: team_status_to_pb(team.status) as i32,
        version: team.version,
        create_time: timestamp(team.created_at),
        update_time: timestamp(team.updated_at),
        retire_time: team.retired_at.and_then(timestamp),
    }
}

/// A team as an event carries it (`team_to_pb`'s output), back in the domain: how replicas
/// learn of the teams other replicas wrote. `Err` names what does not read.
pub fn team_from_pb(region: &str, team: &pb::Team) -> Result<Team, String> {
    let uuid = |field: &str, text: &str| -> Result<Option<Uuid>, String> {
        if text.is_empty() {
            return Ok(None);
        }
        ids::parse_id(text)
            .filter(|parsed| parsed.region == region)
            .map(|parsed| Some(parsed.uuid))
            .ok_or_else(|| format!("{field} {text:?} is no id of region {region}"))
    };
    let time = |field: &str, at: Option<&Timestamp>| -> Result<Option<DateTime<Utc>>, String> {
        at.map(|at| {
            u32::try_from(at.nanos)
                .ok()
                .and_then(|nanos| DateTime::from_timestamp(at.seconds, nanos))
                .ok_or_else(|| format!("{field} is out of range"))
        })
        .transpose()
    };
    let text = |value: &str| (!value.is_empty()).then(|| value.to_owned());
    let tier = tier(team.tier).ok_or_else(|| format!("tier {}", team.tier))?;
    let status = team_status(team.status)
        .flatten()
        .ok_or_else(|| format!("status {}", team.status))?;
    Ok(Team {
        id: uuid("id", &team.id)?.ok_or("the team has no id")?,
        tenant_id: team.tenant_id.clone(),
        fields: crate::domain::TeamFields {
            name: team.name.clone(),
            description: text(&team.description),
            region: team.region.clone(),
            time_zone: text(&team.time_zone),
            calendar_id: text(&team.calendar_id),
            tier,
            skills: team.skills.clone(),
            follow_the_sun: team.follow_the_sun,
        },
        manager_id: uuid("manager_id", &team.manager_id)?,
        parent_id: uuid("parent_id", &team.parent_id)?,
        status,
        version: team.version,
        created_at: time("create_time", team.create_time.as_ref())?
            .ok_or("the team has no create_time")?,
        updated_at: time("update_time", team.update_time.as_ref())?
            .ok_or("the team has no update_time")?,
        retired_at: time("retire_time", team.retire_time.as_ref())?,
    })
}

pub fn membership_to_pb(region: &str, membership: &Membership) -> pb::Membership {
    pb::Membership {
        id: id(region, membership.id),
        team_id: id(region, membership.team_id),
        person_id: id(region, membership.person_id),
        role: role_to_pb(Some(membership.role)) as i32,
        active: membership.active,
        version: membership.version,
        team_name: membership.team_name.clone(),
        person_display_name: membership.person_display_name.clone(),
        create_time: timestamp(membership.created_at),
        update_time: timestamp(membership.updated_at),
    }
}

/// A person's presence as it reads at `now` (never set: offline).
pub fn presence_to_pb(
    region: &str,
    person: Uuid,
    stored: Option<&Presence>,
    now: DateTime<Utc>,
) -> pb::Presence {
    let reading: PresenceReading = stored.map_or_else(presence::never_set, |p| p.as_of(now));
    pb::Presence {
        person_id: id(region, person),
        status: presence_status_to_pb(reading.status) as i32,
        set_time: stored.and_then(|p| {
            if reading.expired {
                p.expires_at.and_then(timestamp)
            } else {
                timestamp(p.set_at)
            }
        }),
        expire_time: stored
            .filter(|_| !reading.expired)
            .and_then(|p| p.expires_at)
            .and_then(timestamp),
        version: stored.map_or(0, |p| p.version),
        expired: reading.expired,
    }
}

/// A presence exactly as a change left it (for events).
pub fn presence_change_to_pb(region: &str, presence: &Presence) -> pb::Presence {
    pb::Presence {
        person_id: id(region, presence.person_id),
        status: presence_status_to_pb(presence.status) as i32,
        set_time: timestamp(presence.set_at),
        expire_time: presence.expires_at.and_then(timestamp),
        version: presence.version,
        expired: false,
    }
}

pub fn catalog_to_pb(catalog: &SkillCatalog) -> pb::SkillCatalog {
    pb::SkillCatalog {
        skills: catalog
            .skills
            .iter()
            .map(|(name, description)| pb::SkillDefinition {
                name: name.clone(),
                description: description.clone(),
            })
            .collect(),
        version: catalog.version,
        update_time: catalog.updated_at.and_then(timestamp),
    }
}

pub fn report_to_pb(region: &str, report: &DeactivationReport) -> pb::DeactivationReport {
    let ids = |list: &[Uuid]| list.iter().map(|uuid| id(region, *uuid)).collect();
    pb::DeactivationReport {
        team_ids: ids(&report.team_ids),
        led_team_ids: ids(&report.led_team_ids),
        managed_team_ids: ids(&report.managed_team_ids),
        direct_report_ids: ids(&report.direct_report_ids),
    }
}

pub fn field_change_to_pb(change: &FieldChange) -> common::FieldChange {
    common::FieldChange {
        field: change.field.clone(),
        old_value: change.old.clone().unwrap_or_default(),
        new_value: change.new.clone().unwrap_or_default(),
        old_present: change.old.is_some(),
        new_present: change.new.is_some(),
    }
}

pub fn changes_to_pb(changes: &Changes) -> Vec<common::FieldChange> {
    changes.iter().map(field_change_to_pb).collect()
}

pub fn planned_to_pb(region: &str, planned: &PlannedPerson) -> pb::PlannedPerson {
    pb::PlannedPerson {
        external_id: planned.external_id.clone(),
        action: action_to_pb(planned.action) as i32,
        person_id: id(region, planned.person_id),
        changes: changes_to_pb(&planned.changes),
        teams_added: planned.teams_added.iter().map(|t| id(region, *t)).collect(),
        teams_removed: planned
            .teams_removed
            .iter()
            .map(|t| id(region, *t))
            .collect(),
    }
}
