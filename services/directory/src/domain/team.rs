//! Teams (assignment groups): the record, its checks, and create, update and retire — with the
//! rule that a team hierarchy stays a tree and that follow-the-sun needs a time zone.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use desk_kit::{history::Changes, ids};
use uuid::Uuid;

use super::{
    agent::{SKILLS_MAX, SkillCatalog, checked_skill},
    hierarchy,
    string_enum::string_enum,
    validate::{self, DESCRIPTION_MAX, IDENTIFIER_MAX, NAME_MAX, Violations},
};

string_enum! {
    /// ITIL's lines of support.
    pub enum SupportTier {
        FirstLine => "first_line",
        SecondLine => "second_line",
        ThirdLine => "third_line",
    }
}

string_enum! {
    pub enum TeamStatus {
        Active => "active",
        /// Takes no new members; kept for history.
        Retired => "retired",
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Team {
    pub id: Uuid,
    pub tenant_id: String,
    pub fields: TeamFields,
    pub manager_id: Option<Uuid>,
    pub parent_id: Option<Uuid>,
    pub status: TeamStatus,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub retired_at: Option<DateTime<Utc>>,
}

impl Team {
    pub fn is_active(&self) -> bool {
        self.status == TeamStatus::Active
    }
}

/// The descriptive fields of a team, checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TeamFields {
    pub name: String,
    pub description: Option<String>,
    pub region: String,
    pub time_zone: Option<String>,
    /// Opaque: the SLA service owns calendars.
    pub calendar_id: Option<String>,
    pub tier: Option<SupportTier>,
    /// Sorted, each once.
    pub skills: Vec<String>,
    pub follow_the_sun: bool,
}

impl TeamFields {
    /// The rules across fields: follow-the-sun hands work over by the clock, so it needs a time zone.
    fn check_together(&self, violations: &mut Violations) {
        if self.follow_the_sun && self.time_zone.is_none() {
            violations.push("time_zone", "a follow-the-sun team needs a time zone");
        }
    }
}

/// Skill names of a team, checked against the catalog, sorted and each once.
pub fn checked_team_skills(
    field: &str,
    skills: &[String],
    catalog: &SkillCatalog,
    violations: &mut Violations,
) -> Vec<String> {
    if skills.len() > SKILLS_MAX {
        violations.push(field, format!("at most {SKILLS_MAX}"));
    }
    let mut kept: Vec<String> = Vec::new();
    for (index, skill) in skills.iter().enumerate() {
        let skill_field = format!("{field}[{index}]");
        if let Some(name) = checked_skill(&skill_field, skill, catalog, violations) {
            if kept.contains(&name) {
                violations.push(skill_field, format!("{name} is listed twice"));
            } else {
                kept.push(name);
            }
        }
    }
    kept.sort();
    kept
}

/// A team as `CreateTeam` gives it, before its references are known to exist.
#[derive(Debug, Clone, Default)]
pub struct TeamInput<'a> {
    pub name: &'a str,
    pub description: &'a str,
    pub region: &'a str,
    pub time_zone: &'a str,
    pub calendar_id: &'a str,
    pub tier: Option<SupportTier>,
    pub skills: &'a [String],
    pub follow_the_sun: bool,
}

impl TeamInput<'_> {
    /// Checks every field; an empty region is `default_region` (the directory's own).
    pub fn check(
        &self,
        default_region: &str,
        catalog: &SkillCatalog,
        violations: &mut Violations,
    ) -> Option<TeamFields> {
        let before = violations.len();
        let name = validate::required_line("name", self.name, NAME_MAX, violations);
        let region = if self.region.trim().is_empty() {
            Some(default_region.to_owned())
        } else {
            validate::region("region", self.region, violations)
        };
        let fields = TeamFields {
            name: name.unwrap_or_default(),
            description: validate::optional_text(
                "description",
                self.description,
                DESCRIPTION_MAX,
                violations,
            ),
            region: region.unwrap_or_default(),
            time_zone: validate::time_zone("time_zone", self.time_zone, violations),
            calendar_id: validate::optional_line(
                "calendar_id",
                self.calendar_id,
                IDENTIFIER_MAX,
                violations,
            ),
            tier: self.tier,
            skills: checked_team_skills("skills", self.skills, catalog, violations),
            follow_the_sun: self.follow_the_sun,
        };
        if !violations.names("time_zone") {
            fields.check_together(violations);
        }
        (violations.len() == before).then_some(fields)
    }
}

/// The stored parent links of a tenant's teams (team → parent).
pub type TeamLinks = HashMap<Uuid, Uuid>;

/// Why a team's parent cannot be `parent`: itself, or one of its own descendants.
pub fn check_parent(
    links: &TeamLinks,
    team: Uuid,
    parent: Uuid,
    region: &str,
    violations: &mut Violations,
) {
    if let Some(cycle) = hierarchy::cycle_through(links, &team, &parent) {
        let path = cycle
            .iter()
            .map(|id| ids::format_id(region, *id))
            .collect::<Vec<_>>()
            .join(" → ");
        violations.push(
            "parent_id",
            format!("would make a cycle in the team hierarchy: {path}"),
        );
    }
}

/// A checked new team, its references known to exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTeam {
    pub fields: TeamFields,
    pub manager_id: Option<Uuid>,
    pub parent_id: Option<Uuid>,
}

impl NewTeam {
    pub fn create(self, id: Uuid, tenant: &str, now: DateTime<Utc>) -> Team {
        Team {
            id,
            tenant_id: tenant.to_owned(),
            fields: self.fields,
            manager_id: self.manager_id,
            parent_id: self.parent_id,
            status: TeamStatus::Active,
            version: 1,
            created_at: now,
            updated_at: now,
            retired_at: None,
        }
    }
}

/// Which fields an update sets; `Some(None)` clears an optional one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TeamPatch {
    pub name: Option<String>,
    pub description: Option<Option<String>>,
    pub region: Option<String>,
    pub time_zone: Option<Option<String>>,
    pub calendar_id: Option<Option<String>>,
    pub tier: Option<SupportTier>,
    pub skills: Option<Vec<String>>,
    pub manager_id: Option<Option<Uuid>>,
    pub parent_id: Option<Option<Uuid>>,
    pub follow_the_sun: Option<bool>,
}

/// A team after a change, with what changed (never empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeamChange {
    pub team: Team,
    pub changes: Changes,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TeamError {
    #[error("the team is retired")]
    Retired,
    #[error("the team has active child teams: retire or move them first")]
    HasActiveChildren,
    #[error("{0}")]
    Invalid(Violations),
}

impl TeamPatch {
    /// The team with the patch applied, stamped at `now`; `None` when nothing changes. The
    /// result is checked across fields and its parent against `links`.
    pub fn apply(
        &self,
        team: &Team,
        links: &TeamLinks,
        region: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<TeamChange>, TeamError> {
        if !team.is_active() {
            return Err(TeamError::Retired);
        }
        let mut next = team.clone();
        let mut changes = Changes::new();
        let (old, new) = (&team.fields, &mut next.fields);
        if let Some(name) = &self.name {
            changes.record("name", &old.name, name);
            new.name.clone_from(name);
        }
        record_optional(
            &mut changes,
            "description",
            &self.description,
            &mut new.description,
        );
        if let Some(team_region) = &self.region {
            changes.record("region", &old.region, team_region);
            new.region.clone_from(team_region);
        }
        record_optional(
            &mut changes,
            "time_zone",
            &self.time_zone,
            &mut new.time_zone,
        );
        record_optional(
            &mut changes,
            "calendar_id",
            &self.calendar_id,
            &mut new.calendar_id,
        );
        if let Some(tier) = self.tier {
            changes.record_opt(
                "tier",
                old.tier.map(SupportTier::as_str),
                Some(tier.as_str()),
            );
            new.tier = Some(tier);
        }
        if let Some(skills) = &self.skills {
            changes.record("skills", &old.skills.join(", "), &skills.join(", "));
            new.skills.clone_from(skills);
        }
        if let Some(follow) = self.follow_the_sun {
            changes.record("follow_the_sun", &old.follow_the_sun, &follow);
            new.follow_the_sun = follow;
        }
        let render = |id: Option<Uuid>| id.map(|id| ids::format_id(region, id));
        if let Some(manager_id) = self.manager_id {
            changes.record_opt(
                "manager_id",
                render(team.manager_id).as_deref(),
                render(manager_id).as_deref(),
            );
            next.manager_id = manager_id;
        }
        let mut violations = Violations::new();
        if let Some(parent_id) = self.parent_id {
            changes.record_opt(
                "parent_id",
                render(team.parent_id).as_deref(),
                render(parent_id).as_deref(),
            );
            if let Some(parent) = parent_id {
                check_parent(links, team.id, parent, region, &mut violations);
            }
            next.parent_id = parent_id;
        }
        next.fields.check_together(&mut violations);
        violations.into_result().map_err(TeamError::Invalid)?;
        if changes.is_empty() {
            return Ok(None);
        }
        next.version += 1;
        next.updated_at = now;
        Ok(Some(TeamChange {
            team: next,
            changes,
        }))
    }
}

fn record_optional(
    changes: &mut Changes,
    field: &str,
    wanted: &Option<Option<String>>,
    current: &mut Option<String>,
) {
    if let Some(wanted) = wanted {
        changes.record_opt(field, current.as_deref(), wanted.as_deref());
        current.clone_from(wanted);
    }
}

/// Retires an active team that has no active child teams (`active_children`).
pub fn retire(
    team: &Team,
    active_children: usize,
    now: DateTime<Utc>,
) -> Result<TeamChange, TeamError> {
    if !team.is_active() {
        return Err(TeamError::Retired);
    }
    if active_children > 0 {
        return Err(TeamError::HasActiveChildren);
    }
    let mut next = team.clone();
    next.status = TeamStatus::Retired;
    next.retired_at = Some(now);
    next.version += 1;
    next.updated_at = now;
    let mut changes = Changes::new();
    changes.record("status", &team.status.as_str(), &next.status.as_str());
    Ok(TeamChange {
        team: next,
        changes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::testing::{at, team};

    fn fields(violations: &Violations) -> Vec<&str> {
        violations.iter().map(|v| v.field.as_str()).collect()
    }

    #[test]
    fn a_team_takes_the_directory_region_when_none_is_given() {
        let mut violations = Violations::new();
        let input = TeamInput {
            name: "Service desk",
            ..TeamInput::default()
        };
        let fields = input
            .check("emea", &SkillCatalog::default(), &mut violations)
            .expect("valid");
        assert_eq!(fields.region, "emea");
    }

    #[test]
    fn every_bad_field_of_a_team_is_reported() {
        let mut violations = Violations::new();
        let skills = vec!["sql".to_owned(), "Not A Skill".to_owned(), "sql".to_owned()];
        let input = TeamInput {
            name: "",
            region: "EMEA",
            time_zone: "Moon/Base",
            skills: &skills,
            ..TeamInput::default()
        };
        assert!(
            input
                .check("emea", &SkillCatalog::default(), &mut violations)
                .is_none()
        );
        assert_eq!(
            fields(&violations),
            ["name", "region", "time_zone", "skills[1]", "skills[2]"]
        );
    }

    #[test]
    fn follow_the_sun_needs_a_time_zone() {
        let mut violations = Violations::new();
        let input = TeamInput {
            name: "Night shift",
            follow_the_sun: true,
            ..TeamInput::default()
        };
        assert!(
            input
                .check("emea", &SkillCatalog::default(), &mut violations)
                .is_none()
        );
        assert_eq!(fields(&violations), ["time_zone"]);
    }

    #[test]
    fn a_team_cannot_become_a_child_of_itself_or_of_its_descendants() {
        // network (1) ← network-emea (2) ← network-emea-core (3)
        let mut network = team("Network");
        network.id = Uuid::from_u128(1);
        let links: TeamLinks = [
            (Uuid::from_u128(2), Uuid::from_u128(1)),
            (Uuid::from_u128(3), Uuid::from_u128(2)),
        ]
        .into();
        for parent in [1, 3] {
            let patch = TeamPatch {
                parent_id: Some(Some(Uuid::from_u128(parent))),
                ..TeamPatch::default()
            };
            match patch.apply(&network, &links, "emea", at(1)) {
                Err(TeamError::Invalid(violations)) => {
                    assert_eq!(fields(&violations), ["parent_id"]);
                    assert!(
                        violations
                            .iter()
                            .all(|v| v.description.contains("cycle in the team hierarchy"))
                    );
                }
                other => panic!("parent {parent}: expected a cycle, got {other:?}"),
            }
        }
        let outside = TeamPatch {
            parent_id: Some(Some(Uuid::from_u128(9))),
            ..TeamPatch::default()
        };
        let change = outside
            .apply(&network, &links, "emea", at(1))
            .expect("allowed")
            .expect("a change");
        assert_eq!(change.team.parent_id, Some(Uuid::from_u128(9)));
        assert_eq!(change.team.version, network.version + 1);
    }

    #[test]
    fn an_update_that_changes_nothing_is_no_write() {
        let network = team("Network");
        let patch = TeamPatch {
            name: Some("Network".into()),
            ..TeamPatch::default()
        };
        assert_eq!(
            patch.apply(&network, &TeamLinks::new(), "emea", at(1)),
            Ok(None)
        );
    }

    #[test]
    fn a_team_with_active_children_is_not_retired_and_a_retired_team_not_changed() {
        let network = team("Network");
        assert_eq!(
            retire(&network, 1, at(1)),
            Err(TeamError::HasActiveChildren)
        );
        let retired = retire(&network, 0, at(1)).expect("retired").team;
        assert_eq!(retired.status, TeamStatus::Retired);
        assert_eq!(retired.retired_at, Some(at(1)));
        assert_eq!(
            TeamPatch::default().apply(&retired, &TeamLinks::new(), "emea", at(2)),
            Err(TeamError::Retired)
        );
    }
}
