//! Every tenant's teams in memory, for `FindTeams` ("the active teams with skill X in region Y"),
//! which routing asks on every assignment: a tenant has hundreds of teams, not millions, so the
//! answer is a scan of a small map instead of a database round trip.
//!
//! The index is loaded from the database at start and kept current from this replica's own
//! writes (applied once they commit, before the caller hears back, so a caller reads what they
//! wrote) and from the directory's `team.*` events (`events::team_follow`), so what another
//! replica wrote arrives within the event delivery time. Every team event carries the whole team
//! at its version, and teams are never deleted (they retire), so applying is idempotent and
//! order-proof: a team not newer than what the index holds is skipped (a replica sees its own
//! writes again as events; a follower that starts again re-reads what the load already held).

use std::{
    collections::HashMap,
    sync::{PoisonError, RwLock},
};

use uuid::Uuid;

use crate::domain::{SupportTier, Team};

#[derive(Debug, Default)]
pub struct TeamIndex {
    /// Tenant → team id → the team at the newest version seen. The lock is held only to look up
    /// or replace entries, never across an await.
    tenants: RwLock<HashMap<String, HashMap<Uuid, Team>>>,
}

impl TeamIndex {
    pub fn new(teams: Vec<Team>) -> Self {
        let index = Self::default();
        for team in teams {
            index.apply(team);
        }
        index
    }

    /// Keeps `team` unless the index holds it at this version or a later one. `true` when kept.
    pub fn apply(&self, team: Team) -> bool {
        let mut tenants = self.tenants.write().unwrap_or_else(PoisonError::into_inner);
        let teams = tenants.entry(team.tenant_id.clone()).or_default();
        match teams.get(&team.id) {
            Some(held) if held.version >= team.version => false,
            _ => {
                teams.insert(team.id, team);
                true
            }
        }
    }

    /// The active teams of `tenant` with `skill` (in `region` when given), by tier (teams without
    /// one last) then name.
    pub fn with_skill(&self, tenant: &str, skill: &str, region: Option<&str>) -> Vec<Team> {
        let mut found: Vec<Team> = {
            let tenants = self.tenants.read().unwrap_or_else(PoisonError::into_inner);
            let Some(teams) = tenants.get(tenant) else {
                return Vec::new();
            };
            teams
                .values()
                .filter(|team| {
                    team.is_active()
                        && region.is_none_or(|region| team.fields.region == region)
                        && team.fields.skills.iter().any(|s| s == skill)
                })
                .cloned()
                .collect()
        };
        found.sort_by(|a, b| order_key(a).cmp(&order_key(b)));
        found
    }

    /// The version of a team the index holds (for tests of replicas catching up).
    pub fn version_of(&self, tenant: &str, id: Uuid) -> Option<i64> {
        let tenants = self.tenants.read().unwrap_or_else(PoisonError::into_inner);
        tenants.get(tenant)?.get(&id).map(|team| team.version)
    }
}

fn order_key(team: &Team) -> (bool, Option<&'static str>, &str, Uuid) {
    (
        team.fields.tier.is_none(),
        team.fields.tier.map(SupportTier::as_str),
        &team.fields.name,
        team.id,
    )
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone as _, Utc};

    use super::*;
    use crate::domain::{TeamFields, TeamStatus};

    fn team(name: &str, region: &str, tier: Option<SupportTier>, skills: &[&str]) -> Team {
        let at = Utc.with_ymd_and_hms(2026, 12, 4, 9, 0, 0).unwrap();
        Team {
            id: Uuid::new_v4(),
            tenant_id: "acme".into(),
            fields: TeamFields {
                name: name.into(),
                description: None,
                region: region.into(),
                time_zone: None,
                calendar_id: None,
                tier,
                skills: skills.iter().map(|s| (*s).to_owned()).collect(),
                follow_the_sun: false,
            },
            manager_id: None,
            parent_id: None,
            status: TeamStatus::Active,
            version: 1,
            created_at: at,
            updated_at: at,
            retired_at: None,
        }
    }

    fn names(teams: &[Team]) -> Vec<&str> {
        teams.iter().map(|t| t.fields.name.as_str()).collect()
    }

    #[test]
    fn finds_active_teams_with_the_skill_in_the_region_by_tier_then_name() {
        let mut retired = team("Retired", "emea", Some(SupportTier::FirstLine), &["vpn"]);
        retired.status = TeamStatus::Retired;
        let index = TeamIndex::new(vec![
            team(
                "Zeta",
                "emea",
                Some(SupportTier::SecondLine),
                &["vpn", "wifi"],
            ),
            team("Untiered", "emea", None, &["vpn"]),
            team("Alpha", "emea", Some(SupportTier::SecondLine), &["vpn"]),
            team("Desk", "emea", Some(SupportTier::FirstLine), &["vpn"]),
            team("Elsewhere", "apac", Some(SupportTier::FirstLine), &["vpn"]),
            team(
                "Other skill",
                "emea",
                Some(SupportTier::FirstLine),
                &["sql"],
            ),
            retired,
        ]);
        assert_eq!(
            names(&index.with_skill("acme", "vpn", Some("emea"))),
            ["Desk", "Alpha", "Zeta", "Untiered"]
        );
        assert_eq!(
            names(&index.with_skill("acme", "vpn", None)),
            ["Desk", "Elsewhere", "Alpha", "Zeta", "Untiered"]
        );
        assert!(index.with_skill("acme", "printing", None).is_empty());
        assert!(index.with_skill("globex", "vpn", None).is_empty());
    }

    #[test]
    fn a_team_not_newer_than_the_one_held_is_skipped() {
        let first = team("Network", "emea", None, &["vpn"]);
        let index = TeamIndex::new(vec![first.clone()]);
        let mut second = first.clone();
        second.version = 2;
        second.fields.skills = vec!["wifi".into()];
        assert!(index.apply(second.clone()));
        // The first version comes back late (an event of an earlier write), and again the second.
        assert!(!index.apply(first.clone()));
        assert!(!index.apply(second));
        assert_eq!(index.version_of("acme", first.id), Some(2));
        assert!(index.with_skill("acme", "vpn", None).is_empty());
        assert_eq!(names(&index.with_skill("acme", "wifi", None)), ["Network"]);
    }

    #[test]
    fn a_retired_team_is_no_longer_found() {
        let active = team("Network", "emea", None, &["vpn"]);
        let index = TeamIndex::new(vec![active.clone()]);
        let mut retired = active;
        retired.version = 2;
        retired.status = TeamStatus::Retired;
        index.apply(retired);
        assert!(index.with_skill("acme", "vpn", None).is_empty());
    }
}
