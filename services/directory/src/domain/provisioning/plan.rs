//! Planning a checked batch against the directory: who each person is, what changes, what a
//! commit writes and publishes.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use desk_kit::{history::Changes, ids};
use uuid::Uuid;

use super::{CheckedBatch, ProvisioningAction};
use crate::domain::{
    facts::{DeactivationReport, Fact},
    hierarchy,
    membership::{self, Membership, MembershipChange, MembershipRole},
    person::{self, NewPerson, Person, PersonChange, PersonPatch, stamped},
    team::Team,
    validate::Violations,
};

/// What the directory holds that a batch touches, as the store read it.
#[derive(Debug, Clone, Default)]
pub struct Directory {
    pub tenant: String,
    /// The directory's region: team ids in a batch are read in it, changes render ids in it.
    pub region: String,
    /// The people the batch names, as people or as managers, by external id.
    pub by_external_id: HashMap<String, Person>,
    /// The people whose subject a person of the batch has.
    pub by_subject: HashMap<String, Person>,
    /// Every team of the tenant.
    pub teams: Vec<Team>,
    /// Every person's manager in the tenant (person → manager).
    pub manager_links: HashMap<Uuid, Uuid>,
    /// For a complete sync: the active people of the source that the batch does not name.
    pub missing: Vec<Person>,
    /// Memberships, active or not, of the people found above, by person.
    pub memberships: HashMap<Uuid, Vec<Membership>>,
}

/// What a batch does to one person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedPerson {
    pub external_id: String,
    pub action: ProvisioningAction,
    pub person_id: Uuid,
    pub changes: Changes,
    pub teams_added: Vec<Uuid>,
    pub teams_removed: Vec<Uuid>,
}

/// A batch's plan: every person it names in its order, then those it deactivates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProvisioningPlan {
    pub people: Vec<PlannedPerson>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProvisioningCounts {
    pub creates: usize,
    pub updates: usize,
    pub unchanged: usize,
    pub deactivations: usize,
    pub reactivations: usize,
    pub memberships_added: usize,
    pub memberships_removed: usize,
}

impl ProvisioningPlan {
    pub fn counts(&self) -> ProvisioningCounts {
        let mut counts = ProvisioningCounts::default();
        for planned in &self.people {
            match planned.action {
                ProvisioningAction::Create => counts.creates += 1,
                ProvisioningAction::Update => counts.updates += 1,
                ProvisioningAction::Unchanged => counts.unchanged += 1,
                ProvisioningAction::Deactivate => counts.deactivations += 1,
                ProvisioningAction::Reactivate => counts.reactivations += 1,
            }
            counts.memberships_added += planned.teams_added.len();
            counts.memberships_removed += planned.teams_removed.len();
        }
        counts
    }
}

/// What committing a plan writes, and the facts it publishes in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProvisioningWrites {
    pub created: Vec<Person>,
    /// At their new version, with the version they were read at.
    pub changed: Vec<(Person, i64)>,
    pub new_memberships: Vec<Membership>,
    /// At their new version, with the version they were read at.
    pub changed_memberships: Vec<(Membership, i64)>,
    pub facts: Vec<Fact>,
}

/// Plans `batch` against `directory`. New people get their id from `new_person_id` (by external
/// id: a commit passes the ids its preview showed), new memberships from `new_membership_id`.
pub fn plan(
    batch: &CheckedBatch,
    directory: &Directory,
    now: DateTime<Utc>,
    new_person_id: &mut dyn FnMut(&str) -> Uuid,
    new_membership_id: &mut dyn FnMut() -> Uuid,
) -> Result<(ProvisioningPlan, ProvisioningWrites), Violations> {
    let mut violations = Violations::new();
    let teams = TeamIndex::new(&directory.teams, &directory.region);

    // Who each person of the batch is: found by external id, else adopted by subject.
    let mut matched: Vec<Option<&Person>> = Vec::with_capacity(batch.people.len());
    let mut person_ids: Vec<Uuid> = Vec::with_capacity(batch.people.len());
    let mut claimed: HashMap<Uuid, usize> = HashMap::new();
    let mut batch_ids: HashMap<&str, Uuid> = HashMap::new();
    for (index, wanted) in batch.people.iter().enumerate() {
        let field = format!("people[{index}].subject");
        let by_external = directory.by_external_id.get(&wanted.external_id);
        let by_subject = directory.by_subject.get(&wanted.subject);
        let found = match (by_external, by_subject) {
            (Some(found), Some(other)) if other.id != found.id => {
                violations.push(
                    field,
                    format!(
                        "{} is the subject of another person ({})",
                        wanted.subject,
                        ids::format_id(&directory.region, other.id)
                    ),
                );
                None
            }
            (Some(found), _) => Some(found),
            (None, Some(other)) if other.external_id.is_some() => {
                violations.push(
                    field,
                    format!(
                        "{} is the subject of a person with another external id ({})",
                        wanted.subject,
                        ids::format_id(&directory.region, other.id)
                    ),
                );
                None
            }
            (None, adopted) => adopted,
        };
        let id = found.map_or_else(|| new_person_id(&wanted.external_id), |p| p.id);
        if let Some(first) = claimed.insert(id, index)
            && found.is_some()
        {
            violations.push(
                format!("people[{index}].external_id"),
                format!("names the same person as people[{first}]"),
            );
        }
        matched.push(found);
        person_ids.push(id);
        batch_ids.insert(wanted.external_id.as_str(), id);
    }

    // Managers and teams, resolved; the manager chain as it would be.
    let mut managers: Vec<Option<Uuid>> = Vec::with_capacity(batch.people.len());
    let mut manager_changes: HashMap<Uuid, Option<Uuid>> = HashMap::new();
    let mut resolved_teams: Vec<Vec<(&Team, MembershipRole)>> =
        Vec::with_capacity(batch.people.len());
    for (index, wanted) in batch.people.iter().enumerate() {
        let manager = wanted.manager_external_id.as_deref().and_then(|external| {
            let found = batch_ids
                .get(external)
                .copied()
                .or_else(|| directory.by_external_id.get(external).map(|p| p.id));
            if found.is_none() {
                violations.push(
                    format!("people[{index}].manager_external_id"),
                    format!("no person has external id {external}, in the batch or the directory"),
                );
            }
            found
        });
        managers.push(manager);
        manager_changes.insert(person_ids[index], manager);
        let mut resolved = Vec::with_capacity(wanted.teams.len());
        for (team_index, (reference, role)) in wanted.teams.iter().enumerate() {
            let field = format!("people[{index}].teams[{team_index}].team");
            match teams.find(reference) {
                Some(team) if team.is_active() => resolved.push((team, *role)),
                Some(_) => violations.push(field, format!("team {reference} is retired")),
                None => violations.push(field, format!("no team has the id or name {reference}")),
            }
        }
        resolved_teams.push(resolved);
    }
    let on_cycles = hierarchy::changed_nodes_on_cycles(&directory.manager_links, &manager_changes);
    for (index, id) in person_ids.iter().enumerate() {
        if on_cycles.contains(id) {
            violations.push(
                format!("people[{index}].manager_external_id"),
                "would make a cycle in the manager chain",
            );
        }
    }
    violations.into_result()?;

    let mut planned = ProvisioningPlan::default();
    let mut writes = ProvisioningWrites::default();
    for (index, wanted) in batch.people.iter().enumerate() {
        let (person, action, changes) = match matched[index] {
            None => {
                let person = NewPerson {
                    subject: wanted.subject.clone(),
                    external_id: Some(wanted.external_id.clone()),
                    fields: wanted.fields.clone(),
                    manager_id: managers[index],
                    source: batch.source.clone(),
                }
                .create(person_ids[index], &directory.tenant, now);
                writes.facts.push(Fact::PersonCreated {
                    person: person.clone(),
                    source: batch.source.clone(),
                });
                writes.created.push(person.clone());
                (person, ProvisioningAction::Create, Changes::new())
            }
            Some(existing) => {
                match existing_change(existing, wanted, managers[index], batch, directory, now) {
                    None => (
                        existing.clone(),
                        ProvisioningAction::Unchanged,
                        Changes::new(),
                    ),
                    Some(change) => {
                        let action = if existing.is_active() {
                            ProvisioningAction::Update
                        } else {
                            ProvisioningAction::Reactivate
                        };
                        writes.facts.push(Fact::PersonUpdated {
                            person: change.person.clone(),
                            changes: change.changes.clone(),
                            source: batch.source.clone(),
                        });
                        writes
                            .changed
                            .push((change.person.clone(), existing.version));
                        (change.person, action, change.changes)
                    }
                }
            }
        };
        let memberships = directory
            .memberships
            .get(&person.id)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let (added, removed) = plan_memberships(
            &person,
            memberships,
            &resolved_teams[index],
            batch,
            &teams,
            now,
            new_membership_id,
            &mut writes,
        );
        let action = match action {
            ProvisioningAction::Unchanged if !added.is_empty() || !removed.is_empty() => {
                ProvisioningAction::Update
            }
            other => other,
        };
        planned.people.push(PlannedPerson {
            external_id: wanted.external_id.clone(),
            action,
            person_id: person.id,
            changes,
            teams_added: added,
            teams_removed: removed,
        });
    }

    let mut reports_of: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
    if !directory.missing.is_empty() {
        for (report, manager) in &directory.manager_links {
            reports_of.entry(*manager).or_default().push(*report);
        }
    }
    for gone in &directory.missing {
        let Ok(change) = person::deactivate(gone, now) else {
            continue;
        };
        let memberships = directory
            .memberships
            .get(&gone.id)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let mut reports = reports_of.get(&gone.id).cloned().unwrap_or_default();
        reports.sort();
        let report = DeactivationReport {
            team_ids: memberships
                .iter()
                .filter(|m| m.active)
                .map(|m| m.team_id)
                .collect(),
            led_team_ids: memberships
                .iter()
                .filter(|m| m.active && m.role == MembershipRole::Lead)
                .map(|m| m.team_id)
                .collect(),
            managed_team_ids: directory
                .teams
                .iter()
                .filter(|t| t.is_active() && t.manager_id == Some(gone.id))
                .map(|t| t.id)
                .collect(),
            direct_report_ids: reports,
        };
        writes.facts.push(Fact::PersonDeactivated {
            person: change.person.clone(),
            reason: Some(format!("no longer in {}'s complete sync", batch.source)),
            report,
            source: batch.source.clone(),
        });
        writes.changed.push((change.person.clone(), gone.version));
        planned.people.push(PlannedPerson {
            external_id: gone.external_id.clone().unwrap_or_default(),
            action: ProvisioningAction::Deactivate,
            person_id: gone.id,
            changes: change.changes,
            teams_added: Vec::new(),
            teams_removed: Vec::new(),
        });
    }
    Ok((planned, writes))
}

/// What the batch changes of a person the directory has: the batch's fields and manager, their
/// subject, external id and source, and their status when they were deactivated; stamped.
fn existing_change(
    existing: &Person,
    wanted: &super::ProvisionedPerson,
    manager: Option<Uuid>,
    batch: &CheckedBatch,
    directory: &Directory,
    now: DateTime<Utc>,
) -> Option<PersonChange> {
    let mut patch = PersonPatch::to_match(&wanted.fields, manager);
    patch.subject = (existing.subject != wanted.subject).then(|| wanted.subject.clone());
    patch.source = (existing.source != batch.source).then(|| batch.source.clone());
    patch.external_id = existing
        .external_id
        .is_none()
        .then(|| Some(wanted.external_id.clone()));
    let change = patch.apply(existing, &directory.region);
    if existing.is_active() {
        return change.map(|change| stamped(change, now));
    }
    let base = change.unwrap_or_else(|| PersonChange {
        person: existing.clone(),
        changes: Changes::new(),
    });
    let mut back = person::reactivate(&base.person, now).ok()?;
    let mut changes = base.changes;
    for recorded in back.changes.iter() {
        changes.record_opt(
            &recorded.field,
            recorded.old.as_deref(),
            recorded.new.as_deref(),
        );
    }
    back.changes = changes;
    Some(back)
}

/// The membership changes of one person; returns the teams added and removed.
#[allow(clippy::too_many_arguments)]
fn plan_memberships(
    person: &Person,
    current: &[Membership],
    wanted: &[(&Team, MembershipRole)],
    batch: &CheckedBatch,
    teams: &TeamIndex<'_>,
    now: DateTime<Utc>,
    new_membership_id: &mut dyn FnMut() -> Uuid,
    writes: &mut ProvisioningWrites,
) -> (Vec<Uuid>, Vec<Uuid>) {
    let mut added = Vec::new();
    let mut removed = Vec::new();
    for (team, role) in wanted {
        let existing = current.iter().find(|m| m.team_id == team.id);
        let Ok(Some(change)) =
            membership::add(existing, team, person, *role, new_membership_id(), now)
        else {
            continue;
        };
        if let MembershipChange::Added {
            membership,
            previous_role,
        } = change
        {
            added.push(team.id);
            match existing {
                Some(before) => writes
                    .changed_memberships
                    .push((membership.clone(), before.version)),
                None => writes.new_memberships.push(membership.clone()),
            }
            writes.facts.push(Fact::MembershipAdded {
                membership,
                previous_role,
                source: batch.source.clone(),
            });
        }
    }
    if batch.replace_memberships {
        let listed: HashSet<Uuid> = wanted.iter().map(|(team, _)| team.id).collect();
        for current in current
            .iter()
            .filter(|m| m.active && !listed.contains(&m.team_id))
        {
            let Ok(MembershipChange::Removed { mut membership }) =
                membership::remove(Some(current), now)
            else {
                continue;
            };
            membership.team_name = teams
                .by_id
                .get(&membership.team_id)
                .map(|t| t.fields.name.clone())
                .unwrap_or_default();
            membership
                .person_display_name
                .clone_from(&person.fields.display_name);
            removed.push(membership.team_id);
            writes
                .changed_memberships
                .push((membership.clone(), current.version));
            writes.facts.push(Fact::MembershipRemoved {
                membership,
                source: batch.source.clone(),
            });
        }
    }
    (added, removed)
}

/// The tenant's teams by id and by name (names compared without regard to case).
struct TeamIndex<'a> {
    region: &'a str,
    by_id: HashMap<Uuid, &'a Team>,
    by_name: HashMap<String, &'a Team>,
}

impl<'a> TeamIndex<'a> {
    fn new(teams: &'a [Team], region: &'a str) -> Self {
        Self {
            region,
            by_id: teams.iter().map(|t| (t.id, t)).collect(),
            by_name: teams
                .iter()
                .map(|t| (t.fields.name.to_lowercase(), t))
                .collect(),
        }
    }

    fn find(&self, reference: &str) -> Option<&'a Team> {
        if let Some(parsed) = ids::parse_id(reference)
            && parsed.region == self.region
            && let Some(team) = self.by_id.get(&parsed.uuid)
        {
            return Some(team);
        }
        self.by_name.get(&reference.to_lowercase()).copied()
    }
}
