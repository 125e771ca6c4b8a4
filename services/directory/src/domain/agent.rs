//! Agents: the skills (with a level), languages and capacity that make a person someone work can
//! be routed to, and the tenant's skill catalog that skill names are checked against.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};

use super::validate::{self, Violations};

/// Lowest and highest skill level.
pub const SKILL_LEVELS: std::ops::RangeInclusive<i32> = 1..=5;
/// Most open tickets an agent may be given at once: a sanity bound, not a policy.
pub const CAPACITY_MAX: i32 = 1_000;
/// Most skills on one agent or team, and most languages on one agent.
pub const SKILLS_MAX: usize = 100;
/// Most skills a catalog keeps.
pub const CATALOG_MAX: usize = 2_000;
/// Longest skill description, in characters.
pub const SKILL_DESCRIPTION_MAX: usize = 500;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skill {
    pub name: String,
    /// 1 (basic) to 5 (expert).
    pub level: u8,
}

/// What makes a person an agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentProfile {
    /// By name.
    pub skills: Vec<Skill>,
    /// BCP 47, canonical form, in the order given.
    pub languages: Vec<String>,
    /// Most open tickets at once; 0 takes none.
    pub capacity: u32,
}

impl AgentProfile {
    /// `networking:4, sql:2`: skills as history and events render them.
    pub fn skills_text(&self) -> String {
        self.skills
            .iter()
            .map(|s| format!("{}:{}", s.name, s.level))
            .collect::<Vec<_>>()
            .join(", ")
    }

    pub fn languages_text(&self) -> String {
        self.languages.join(", ")
    }
}

/// An agent profile as the wire gives it.
#[derive(Debug, Clone, Default)]
pub struct AgentProfileInput {
    pub skills: Vec<(String, i32)>,
    pub languages: Vec<String>,
    pub capacity: i32,
}

impl AgentProfileInput {
    /// Checks every part, against `catalog` when the tenant keeps one; field names under `prefix`
    /// (`agent.`).
    pub fn check(
        &self,
        prefix: &str,
        catalog: &SkillCatalog,
        violations: &mut Violations,
    ) -> Option<AgentProfile> {
        let before = violations.len();
        if self.skills.len() > SKILLS_MAX {
            violations.push(format!("{prefix}skills"), format!("at most {SKILLS_MAX}"));
        }
        let mut skills = Vec::new();
        let mut seen = BTreeSet::new();
        for (index, (name, level)) in self.skills.iter().enumerate() {
            let field = format!("{prefix}skills[{index}]");
            if let Some(name) = checked_skill(&format!("{field}.name"), name, catalog, violations) {
                if !seen.insert(name.clone()) {
                    violations.push(format!("{field}.name"), format!("{name} is listed twice"));
                }
                match u8::try_from(*level) {
                    Ok(level) if SKILL_LEVELS.contains(&i32::from(level)) => {
                        skills.push(Skill { name, level })
                    }
                    _ => violations.push(format!("{field}.level"), "must be 1 to 5"),
                }
            }
        }
        skills.sort_by(|a, b| a.name.cmp(&b.name));
        if self.languages.len() > SKILLS_MAX {
            violations.push(
                format!("{prefix}languages"),
                format!("at most {SKILLS_MAX}"),
            );
        }
        let mut languages: Vec<String> = Vec::new();
        for (index, language) in self.languages.iter().enumerate() {
            let field = format!("{prefix}languages[{index}]");
            if language.trim().is_empty() {
                violations.push(&field, "must not be empty");
            } else if let Some(tag) = validate::locale(&field, language, violations) {
                if languages.contains(&tag) {
                    violations.push(&field, format!("{tag} is listed twice"));
                } else {
                    languages.push(tag);
                }
            }
        }
        let capacity = match self.capacity {
            capacity if capacity < 0 => {
                violations.push(format!("{prefix}capacity"), "must not be below zero");
                0
            }
            capacity if capacity > CAPACITY_MAX => {
                violations.push(
                    format!("{prefix}capacity"),
                    format!("at most {CAPACITY_MAX}"),
                );
                0
            }
            capacity => capacity.unsigned_abs(),
        };
        (violations.len() == before).then_some(AgentProfile {
            skills,
            languages,
            capacity,
        })
    }
}

/// A skill name that is well formed and, when the tenant keeps a catalog, in it.
pub fn checked_skill(
    field: &str,
    name: &str,
    catalog: &SkillCatalog,
    violations: &mut Violations,
) -> Option<String> {
    let name = validate::skill_name(field, name, violations)?;
    if catalog.knows(&name) {
        Some(name)
    } else {
        violations.push(
            field,
            format!("unknown skill {name}: the tenant's skill catalog does not list it"),
        );
        None
    }
}

/// A tenant's list of known skills; empty when the tenant keeps none (any name is accepted).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SkillCatalog {
    /// Name → description.
    pub skills: BTreeMap<String, String>,
    /// 0 while never set.
    pub version: i64,
    pub updated_at: Option<DateTime<Utc>>,
}

impl SkillCatalog {
    /// Whether skill `name` may be used.
    pub fn knows(&self, name: &str) -> bool {
        self.skills.is_empty() || self.skills.contains_key(name)
    }

    /// Replaces the catalog with `skills` (name, description) at `expected_version`.
    pub fn replaced(
        &self,
        skills: &[(String, String)],
        expected_version: i64,
        now: DateTime<Utc>,
    ) -> Result<SkillCatalog, CatalogError> {
        if expected_version != self.version {
            return Err(CatalogError::Stale {
                expected: expected_version,
                current: self.version,
            });
        }
        let mut violations = Violations::new();
        if skills.len() > CATALOG_MAX {
            violations.push("skills", format!("at most {CATALOG_MAX}"));
        }
        let mut kept = BTreeMap::new();
        for (index, (name, description)) in skills.iter().enumerate() {
            let name_field = format!("skills[{index}].name");
            let description = validate::optional_text(
                &format!("skills[{index}].description"),
                description,
                SKILL_DESCRIPTION_MAX,
                &mut violations,
            );
            if let Some(name) = validate::skill_name(&name_field, name, &mut violations)
                && kept
                    .insert(name.clone(), description.unwrap_or_default())
                    .is_some()
            {
                violations.push(name_field, format!("{name} is listed twice"));
            }
        }
        violations.into_result().map_err(CatalogError::Invalid)?;
        Ok(SkillCatalog {
            skills: kept,
            version: self.version + 1,
            updated_at: Some(now),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogError {
    #[error("the skill catalog is at version {current}, not {expected}: reload it")]
    Stale { expected: i64, current: i64 },
    #[error("{0}")]
    Invalid(Violations),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog(names: &[&str]) -> SkillCatalog {
        SkillCatalog {
            skills: names
                .iter()
                .map(|n| ((*n).to_owned(), String::new()))
                .collect(),
            version: 1,
            updated_at: None,
        }
    }

    fn input(skills: &[(&str, i32)], languages: &[&str], capacity: i32) -> AgentProfileInput {
        AgentProfileInput {
            skills: skills.iter().map(|(n, l)| ((*n).to_owned(), *l)).collect(),
            languages: languages.iter().map(|l| (*l).to_owned()).collect(),
            capacity,
        }
    }

    fn fields(violations: &Violations) -> Vec<&str> {
        violations.iter().map(|v| v.field.as_str()).collect()
    }

    #[test]
    fn a_profile_keeps_skills_by_name_and_languages_in_canonical_form() {
        let mut violations = Violations::new();
        let profile = input(&[("sql", 2), ("networking", 4)], &["en", "sv-se"], 8).check(
            "agent.",
            &SkillCatalog::default(),
            &mut violations,
        );
        assert!(violations.is_empty(), "{violations}");
        let profile = profile.expect("a valid profile");
        assert_eq!(profile.skills_text(), "networking:4, sql:2");
        assert_eq!(profile.languages, ["en", "sv-SE"]);
        assert_eq!(profile.capacity, 8);
    }

    #[test]
    fn a_negative_capacity_is_a_violation() {
        let mut violations = Violations::new();
        let profile =
            input(&[], &[], -1).check("agent.", &SkillCatalog::default(), &mut violations);
        assert_eq!(profile, None);
        assert_eq!(fields(&violations), ["agent.capacity"]);
        assert_eq!(
            violations.iter().next().map(|v| v.description.as_str()),
            Some("must not be below zero")
        );
    }

    #[test]
    fn unknown_skills_are_refused_only_when_the_tenant_keeps_a_list() {
        let wanted = input(&[("networking", 3), ("cobol", 5)], &[], 4);
        let mut violations = Violations::new();
        assert!(
            wanted
                .check("agent.", &SkillCatalog::default(), &mut violations)
                .is_some()
        );
        assert!(violations.is_empty());

        let mut violations = Violations::new();
        assert!(
            wanted
                .check("agent.", &catalog(&["networking"]), &mut violations)
                .is_none()
        );
        assert_eq!(fields(&violations), ["agent.skills[1].name"]);
    }

    #[test]
    fn every_bad_part_of_a_profile_is_reported_at_once() {
        let mut violations = Violations::new();
        let wanted = input(
            &[("sql", 0), ("sql", 3), ("Bad Name", 2)],
            &["english", "en", "en-us", "en"],
            1_001,
        );
        assert!(
            wanted
                .check("", &SkillCatalog::default(), &mut violations)
                .is_none()
        );
        assert_eq!(
            fields(&violations),
            [
                "skills[0].level",
                "skills[1].name",
                "skills[2].name",
                "languages[0]",
                "languages[3]",
                "capacity"
            ]
        );
    }

    #[test]
    fn a_catalog_is_replaced_at_its_version_and_names_must_be_unique() {
        let now = DateTime::<Utc>::UNIX_EPOCH;
        let empty = SkillCatalog::default();
        let skills = vec![
            ("networking".to_owned(), "LAN, WAN, VPN".to_owned()),
            ("sql".to_owned(), String::new()),
        ];
        let replaced = empty.replaced(&skills, 0, now).expect("a valid catalog");
        assert_eq!(replaced.version, 1);
        assert!(replaced.knows("sql") && !replaced.knows("cobol"));
        assert_eq!(
            replaced.replaced(&skills, 0, now),
            Err(CatalogError::Stale {
                expected: 0,
                current: 1
            })
        );
        let twice = vec![
            ("sql".to_owned(), String::new()),
            ("sql".to_owned(), String::new()),
        ];
        match replaced.replaced(&twice, 1, now) {
            Err(CatalogError::Invalid(violations)) => {
                assert_eq!(fields(&violations), ["skills[1].name"])
            }
            other => panic!("expected a violation, got {other:?}"),
        }
    }
}
