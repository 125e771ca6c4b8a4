//! Provisioning batches: an identity provider's sync, upserting people by external id (with their
//! team memberships), deactivating those a complete sync no longer names, previewed before commit.
//!
//! A batch goes through three steps, each pure:
//! 1. [`check_batch`]: every person's fields, duplicate external ids and subjects, a person who
//!    would manage themselves — everything that needs nothing but the batch;
//! 2. [`plan`] (in [`plan`](self::plan)): against what the directory holds for it ([`Directory`]:
//!    the people it names by external id or subject, the tenant's teams and manager links, and
//!    for a complete sync the people of the source it no longer names), what each person's
//!    action is, what changes, and what exactly a commit writes and publishes; references that
//!    do not resolve and manager chains that would form a cycle are refused here;
//! 3. the plan is kept as it was previewed. A commit plans again against the directory as it is
//!    then and applies the result only when it is the plan that was previewed.
//!
//! Every refusal is a field violation named by its place in the request
//! (`people[3].manager_external_id`), and nothing is written.

mod plan;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};

use uuid::Uuid;

pub use plan::{
    Directory, PlannedPerson, ProvisioningCounts, ProvisioningPlan, ProvisioningWrites, plan,
};

use super::{
    membership::MembershipRole,
    person::{API_SOURCE, PersonFields, PersonFieldsInput, TOKEN_SOURCE, checked_identifier},
    string_enum::string_enum,
    validate::{self, Violations},
};

/// Most people in one batch: a tenant of this size syncs completely in one call.
pub const MAX_PROVISIONING_PEOPLE: usize = 100_000;
/// Most teams one person of a batch names.
pub const MAX_TEAMS_PER_PERSON: usize = 100;
/// Longest source name, in characters.
pub const SOURCE_MAX: usize = 100;

string_enum! {
    pub enum ProvisioningState {
        Staged => "staged",
        Committed => "committed",
        Discarded => "discarded",
    }
}

string_enum! {
    pub enum ProvisioningAction {
        Create => "create",
        Update => "update",
        Unchanged => "unchanged",
        Deactivate => "deactivate",
        Reactivate => "reactivate",
    }
}

/// A staged batch that is no longer open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the provisioning batch is already {0}")]
pub struct ProvisioningFinished(pub ProvisioningState);

/// `Ok` while the batch is staged: only then may it be committed or discarded.
pub fn check_open(state: ProvisioningState) -> Result<(), ProvisioningFinished> {
    match state {
        ProvisioningState::Staged => Ok(()),
        finished => Err(ProvisioningFinished(finished)),
    }
}

/// One person of a batch as the wire gives it.
#[derive(Debug, Clone, Default)]
pub struct ProvisionedPersonInput<'a> {
    pub external_id: &'a str,
    pub subject: &'a str,
    pub fields: PersonFieldsInput<'a>,
    pub manager_external_id: &'a str,
    /// `(team id or name, role)`; `None` for an unspecified role (member).
    pub teams: Vec<(&'a str, Option<MembershipRole>)>,
}

/// One person of a batch, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvisionedPerson {
    pub external_id: String,
    pub subject: String,
    pub fields: PersonFields,
    pub manager_external_id: Option<String>,
    /// `(team id or name, role)`, each team once.
    pub teams: Vec<(String, MembershipRole)>,
}

/// A batch, checked on its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedBatch {
    pub source: String,
    pub people: Vec<ProvisionedPerson>,
    pub deactivate_missing: bool,
    pub replace_memberships: bool,
}

impl CheckedBatch {
    /// Every external id a batch names: its people's and their managers'.
    pub fn external_ids(&self) -> Vec<String> {
        let mut seen = HashSet::new();
        self.people
            .iter()
            .flat_map(|p| std::iter::once(&p.external_id).chain(&p.manager_external_id))
            .filter(|id| seen.insert(id.as_str()))
            .cloned()
            .collect()
    }

    pub fn subjects(&self) -> Vec<String> {
        self.people.iter().map(|p| p.subject.clone()).collect()
    }

    /// Of the people a source manages (`(id, external id)`), those this batch does not name: the
    /// ones a complete sync deactivates.
    pub fn missing(&self, managed: &[(Uuid, Option<String>)]) -> Vec<Uuid> {
        if !self.deactivate_missing {
            return Vec::new();
        }
        let named: HashSet<&str> = self.people.iter().map(|p| p.external_id.as_str()).collect();
        managed
            .iter()
            .filter(|(_, external)| !external.as_deref().is_some_and(|e| named.contains(e)))
            .map(|(id, _)| *id)
            .collect()
    }
}

/// Checks what a batch says on its own; every violation is named by its place in the request.
pub fn check_batch(
    source: &str,
    people: &[ProvisionedPersonInput<'_>],
    deactivate_missing: bool,
    replace_memberships: bool,
) -> Result<CheckedBatch, Violations> {
    let mut violations = Violations::new();
    let source = checked_source(source, &mut violations);
    if people.is_empty() {
        violations.push(
            "people",
            "must not be empty: a batch with nobody in it provisions nothing (and a complete one would deactivate everyone)",
        );
    }
    if people.len() > MAX_PROVISIONING_PEOPLE {
        violations.push(
            "people",
            format!("at most {MAX_PROVISIONING_PEOPLE} in one batch"),
        );
        return Err(violations);
    }
    let mut by_external_id: HashMap<&str, usize> = HashMap::new();
    let mut by_subject: HashMap<&str, usize> = HashMap::new();
    let mut checked = Vec::with_capacity(people.len());
    for (index, input) in people.iter().enumerate() {
        let prefix = format!("people[{index}].");
        let before = violations.len();
        let external_id = checked_identifier(
            &format!("{prefix}external_id"),
            input.external_id,
            true,
            &mut violations,
        );
        let mut duplicate = false;
        if let Some(external_id) = &external_id
            && let Some(first) = by_external_id.insert(input.external_id, index)
        {
            duplicate = true;
            violations.push(
                format!("{prefix}external_id"),
                format!("{external_id} is also people[{first}]'s: each person once per batch"),
            );
        }
        let subject = if input.subject.is_empty() {
            external_id.clone()
        } else {
            checked_identifier(
                &format!("{prefix}subject"),
                input.subject,
                true,
                &mut violations,
            )
        };
        // A duplicate person is one violation, not also one of the subject it defaults to.
        if let Some(subject) = &subject
            && let Some(first) = by_subject.insert(subject_key(input), index)
            && !duplicate
        {
            violations.push(
                format!("{prefix}subject"),
                format!("{subject} is also people[{first}]'s subject"),
            );
        }
        let fields = input.fields.check(&prefix, &mut violations);
        let manager_external_id = checked_identifier(
            &format!("{prefix}manager_external_id"),
            input.manager_external_id,
            false,
            &mut violations,
        );
        if manager_external_id.is_some() && manager_external_id == external_id {
            violations.push(
                format!("{prefix}manager_external_id"),
                "would make a cycle in the manager chain: a person cannot manage themselves",
            );
        }
        let teams = checked_teams(&prefix, &input.teams, &mut violations);
        if violations.len() == before
            && let (Some(external_id), Some(subject), Some(fields)) = (external_id, subject, fields)
        {
            checked.push(ProvisionedPerson {
                external_id,
                subject,
                fields,
                manager_external_id,
                teams,
            });
        }
    }
    violations.into_result()?;
    Ok(CheckedBatch {
        source: source.unwrap_or_default(),
        people: checked,
        deactivate_missing,
        replace_memberships,
    })
}

fn subject_key<'a>(input: &ProvisionedPersonInput<'a>) -> &'a str {
    if input.subject.is_empty() {
        input.external_id
    } else {
        input.subject
    }
}

/// A source name: an identifier, and not one of the directory's own sources.
pub fn checked_source(source: &str, violations: &mut Violations) -> Option<String> {
    if source.is_empty() {
        violations.push("source", "must not be empty: name the identity provider");
        return None;
    }
    if source.chars().count() > SOURCE_MAX {
        violations.push("source", format!("at most {SOURCE_MAX} characters"));
        return None;
    }
    let source = validate::identifier("source", source, violations)?;
    if source == TOKEN_SOURCE || source == API_SOURCE {
        violations.push(
            "source",
            format!("{source} is the directory's own source: name the identity provider"),
        );
        return None;
    }
    Some(source)
}

fn checked_teams(
    prefix: &str,
    teams: &[(&str, Option<MembershipRole>)],
    violations: &mut Violations,
) -> Vec<(String, MembershipRole)> {
    if teams.len() > MAX_TEAMS_PER_PERSON {
        violations.push(
            format!("{prefix}teams"),
            format!("at most {MAX_TEAMS_PER_PERSON}"),
        );
    }
    let mut kept: Vec<(String, MembershipRole)> = Vec::with_capacity(teams.len());
    for (index, (team, role)) in teams.iter().enumerate() {
        let field = format!("{prefix}teams[{index}].team");
        let team = team.trim();
        if team.is_empty() {
            violations.push(field, "must not be empty: a team id or name");
        } else if kept
            .iter()
            .any(|(named, _)| named.eq_ignore_ascii_case(team))
        {
            violations.push(field, format!("{team} is listed twice"));
        } else {
            kept.push((team.to_owned(), role.unwrap_or(MembershipRole::Member)));
        }
    }
    kept
}
