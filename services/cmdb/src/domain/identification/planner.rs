//! Identification of each item of a checked batch, then the plan of each item and relationship.

use super::check::{CheckedBatch, Ref, check_batch};
use super::*;

/// Validates `batch`, identifies its items against `existing` and plans what a commit does.
///
/// Validation collects every violation, with fields such as `items[2].attributes.port`,
/// `items[4].local_id` (a duplicate), `relationships[0].target` (an unknown local id, a
/// self-loop, a class rule), `relationships[3]` (a repeat, a second host) and `items[1]` (a cycle
/// of dependent identification). With [`InvalidItems::Reject`] any violation is the error; with
/// [`InvalidItems::Skip`] the offending items and relationships are left out and reported in the
/// plan. Batch-level violations (too many items) are always the error.
pub fn reconcile(
    catalog: &ClassCatalog,
    precedence: &SourcePrecedence,
    batch: &ImportBatch,
    existing: &dyn ExistingCis,
    invalid_items: InvalidItems,
) -> Result<ReconciliationPlan, Violations> {
    let checked = check_batch(catalog, batch, invalid_items)?;
    if invalid_items == InvalidItems::Reject && !checked.problems.is_empty() {
        return Err(checked.problems);
    }
    let mut planner = Planner {
        catalog,
        precedence,
        batch,
        existing,
        checked: &checked,
        looked_up: HashMap::new(),
        resolutions: (0..batch.items.len())
            .map(|_| Resolution::Invalid)
            .collect(),
        identities: vec![Identities::default(); batch.items.len()],
    };
    for &index in &checked.order {
        planner.identities[index] = planner.keys_of(index);
        planner.resolutions[index] = planner.identify(index);
    }
    planner.mark_duplicates();
    planner.propagate_parent_conflicts();
    let items: Vec<PlannedItem> = (0..batch.items.len())
        .filter_map(|index| planner.plan_item(index))
        .collect();
    let actions: BTreeMap<usize, &ItemAction> = items
        .iter()
        .map(|item| (item.index, &item.action))
        .collect();
    let relationships = planner.plan_relationships(&actions);
    Ok(ReconciliationPlan {
        items,
        relationships,
        skipped: checked.problems,
    })
}

/// How identification ended for one item.
#[derive(Debug, Clone)]
enum Resolution {
    Invalid,
    Matched { ci: Box<Ci>, rule: String },
    New,
    Conflict(ItemConflict),
}

/// An item's key under one rule of one class's rule set, to catch two items of one batch that
/// describe the same CI.
///
/// `scope` is the class whose search the key is for: an item of class `server` searches servers
/// and their subclasses with the server's rules. A `virtual_machine` item is in that scope, so
/// its key under the *server's* rules matters too — a VM item and a server item with the same
/// serial number would otherwise both be created, and the server item would find two CIs next
/// time.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ScopedIdentity {
    scope: String,
    rule: String,
    parts: Vec<KeyPart>,
    parent: Option<(RelationshipType, Ref)>,
}

/// An item's keys: under its own class's rules (what its search uses), and under the rules of
/// each of its ancestors (what their searches would find it by).
#[derive(Debug, Clone, Default)]
struct Identities {
    own: Vec<ScopedIdentity>,
    in_ancestor_scopes: Vec<ScopedIdentity>,
}

/// The parent a dependent rule found for an item.
enum Parent {
    /// No relationship fits: the rule does not apply.
    Missing,
    Existing(Uuid),
    /// An item of the batch that will be created.
    New(usize),
    Conflict(ItemConflict),
}

struct Planner<'a> {
    catalog: &'a ClassCatalog,
    precedence: &'a SourcePrecedence,
    batch: &'a ImportBatch,
    existing: &'a dyn ExistingCis,
    checked: &'a CheckedBatch,
    /// Existing CIs named by id in the batch, looked up once.
    looked_up: HashMap<Uuid, Option<Ci>>,
    resolutions: Vec<Resolution>,
    /// Each valid item's keys, whatever its resolution: a conflict still describes a CI.
    identities: Vec<Identities>,
}

impl Planner<'_> {
    fn lookup(&mut self, id: Uuid) -> Option<Ci> {
        let existing = self.existing;
        self.looked_up
            .entry(id)
            .or_insert_with(|| existing.get(id))
            .clone()
    }

    fn identify(&mut self, index: usize) -> Resolution {
        let catalog = self.catalog;
        let item = &self.batch.items[index];
        let Some(validated) = &self.checked.items[index] else {
            return Resolution::Invalid;
        };
        let Some((_, rules)) = catalog.identification_rules(&item.class) else {
            return Resolution::Invalid;
        };
        let classes: Vec<String> = catalog
            .subclasses(&item.class)
            .into_iter()
            .map(ToOwned::to_owned)
            .collect();
        // Every applicable rule, in order, with its parent when dependent. All of them are
        // kept, not only the one that decides: two items of the batch that agree on any of
        // them describe the same CI (see `mark_duplicates`).
        let mut applicable: Vec<(&IdentificationRule, Vec<KeyPart>, Parent)> = Vec::new();
        for rule in rules {
            let Some(parts) = key_parts(rule, &item.name, item.environment, &validated.values)
            else {
                continue;
            };
            let parent = match &rule.dependent {
                None => Parent::Missing,
                Some(dependent) => match self.find_parent(index, rule, dependent) {
                    Parent::Missing => continue,
                    found => found,
                },
            };
            applicable.push((rule, parts, parent));
        }
        if applicable.is_empty() {
            return Resolution::Conflict(ItemConflict::Unidentifiable {
                class: item.class.clone(),
                needs: rules.iter().map(IdentificationRule::needs).collect(),
            });
        }
        for (rule, parts, parent) in applicable {
            let parent = match (parent, &rule.dependent) {
                (Parent::Conflict(conflict), _) => return Resolution::Conflict(conflict),
                // No existing CI hangs off a CI this batch has yet to create.
                (Parent::New(_), _) => continue,
                (Parent::Existing(parent_id), Some(dependent)) => Some(ParentKey {
                    relationship: dependent.relationship,
                    parent_id,
                }),
                (Parent::Existing(_) | Parent::Missing, _) => None,
            };
            let key = IdentKey {
                rule: rule.name.clone(),
                classes: classes.clone(),
                parts,
                parent,
            };
            match judge(&key, self.existing.find_by_key(&key)) {
                None => {}
                Some(Judged::Matched { ci, rule }) => return Resolution::Matched { ci, rule },
                Some(Judged::Ambiguous { rule, ci_ids }) => {
                    return Resolution::Conflict(ItemConflict::Ambiguous { rule, ci_ids });
                }
            }
        }
        Resolution::New
    }

    /// The keys of item `index` under its own class's rules and its ancestors' rules.
    fn keys_of(&mut self, index: usize) -> Identities {
        let catalog = self.catalog;
        let item = &self.batch.items[index];
        let mut identities = Identities::default();
        let Some(validated) = &self.checked.items[index] else {
            return identities;
        };
        for scope in catalog.ancestry(&item.class) {
            let Some((_, rules)) = catalog.identification_rules(&scope.name) else {
                continue;
            };
            for rule in rules {
                let Some(parts) = key_parts(rule, &item.name, item.environment, &validated.values)
                else {
                    continue;
                };
                let parent = match &rule.dependent {
                    None => None,
                    Some(dependent) => match self.find_parent(index, rule, dependent) {
                        Parent::Missing | Parent::Conflict(_) => continue,
                        Parent::Existing(id) => Some((dependent.relationship, Ref::Existing(id))),
                        Parent::New(parent) => Some((dependent.relationship, Ref::Local(parent))),
                    },
                };
                let identity = ScopedIdentity {
                    scope: scope.name.clone(),
                    rule: rule.name.clone(),
                    parts,
                    parent,
                };
                if scope.name == item.class {
                    identities.own.push(identity.clone());
                }
                identities.in_ancestor_scopes.push(identity);
            }
        }
        identities
    }

    /// The one parent `rule` identifies item `index` through, if the batch gives one.
    fn find_parent(
        &mut self,
        index: usize,
        rule: &IdentificationRule,
        dependent: &DependentKey,
    ) -> Parent {
        let mut candidates: BTreeSet<Ref> = BTreeSet::new();
        for &relationship in &self.checked.outgoing[index] {
            if self.batch.relationships[relationship].relationship != dependent.relationship {
                continue;
            }
            let Some((_, target)) = self.checked.relationships[relationship] else {
                continue;
            };
            let class = match target {
                Ref::Local(parent) => Some(self.batch.items[parent].class.clone()),
                Ref::Existing(id) => self
                    .lookup(id)
                    .filter(|ci| ci.status != CiStatus::Retired)
                    .map(|ci| ci.class),
            };
            if class
                .is_some_and(|class| self.catalog.is_subclass_of(&class, &dependent.parent_class))
            {
                candidates.insert(target);
            }
        }
        let parent = match candidates.len() {
            0 => return Parent::Missing,
            1 => match candidates.pop_first() {
                Some(parent) => parent,
                None => return Parent::Missing,
            },
            count => {
                return Parent::Conflict(ItemConflict::AmbiguousParent {
                    rule: rule.name.clone(),
                    relationship: dependent.relationship,
                    parent_class: dependent.parent_class.clone(),
                    count,
                });
            }
        };
        match parent {
            Ref::Existing(id) => Parent::Existing(id),
            Ref::Local(parent) => match &self.resolutions[parent] {
                Resolution::Matched { ci, .. } => Parent::Existing(ci.id),
                Resolution::New => Parent::New(parent),
                Resolution::Conflict(_) | Resolution::Invalid => {
                    Parent::Conflict(ItemConflict::ParentInConflict {
                        local_id: self.batch.items[parent].local_id.clone(),
                    })
                }
            },
        }
    }
}

impl Planner<'_> {
    /// Two items of one batch that find the same CI, or that one's search would find the
    /// other by, describe one CI — and the batch says two different things about it. All such
    /// items are conflicts, each naming another: picking one would make the outcome depend on
    /// item order, and committing it could turn the others into matches of it next time.
    /// Comparing every applicable key, not only the deciding one, is what makes a committed
    /// batch come back unchanged.
    fn mark_duplicates(&mut self) {
        let mut matched: HashMap<Uuid, Vec<usize>> = HashMap::new();
        // Keys of the items seen so far: what their own searches use, and what any search in
        // scope would find them by.
        let mut searched_by: HashMap<&ScopedIdentity, Vec<usize>> = HashMap::new();
        let mut found_by: HashMap<&ScopedIdentity, Vec<usize>> = HashMap::new();
        let mut partner: BTreeMap<usize, usize> = BTreeMap::new();
        for (index, resolution) in self.resolutions.iter().enumerate() {
            let ci_id = match resolution {
                Resolution::Matched { ci, .. } => Some(ci.id),
                Resolution::New | Resolution::Conflict(_) => None,
                Resolution::Invalid => continue,
            };
            let identities = &self.identities[index];
            let mut earlier: BTreeSet<usize> = BTreeSet::new();
            if let Some(indices) = ci_id.and_then(|id| matched.get(&id)) {
                earlier.extend(indices);
            }
            for identity in &identities.own {
                earlier.extend(found_by.get(identity).into_iter().flatten());
            }
            for identity in &identities.in_ancestor_scopes {
                earlier.extend(searched_by.get(identity).into_iter().flatten());
            }
            if let Some(&first) = earlier.first() {
                partner.insert(index, first);
                for other in earlier {
                    partner.entry(other).or_insert(index);
                }
            }
            if let Some(id) = ci_id {
                matched.entry(id).or_default().push(index);
            }
            for identity in &identities.own {
                searched_by.entry(identity).or_default().push(index);
            }
            for identity in &identities.in_ancestor_scopes {
                found_by.entry(identity).or_default().push(index);
            }
        }
        for (index, other) in partner {
            if matches!(self.resolutions[index], Resolution::Conflict(_)) {
                continue;
            }
            self.resolutions[index] = Resolution::Conflict(ItemConflict::SameCiAsItem {
                local_id: self.batch.items[other].local_id.clone(),
            });
        }
    }

    /// An item identified through a parent item that turned out to be a conflict cannot be
    /// trusted either (and would be created without its parent): it is a conflict too. Parents
    /// come first in the order, so a chain is followed to its end.
    fn propagate_parent_conflicts(&mut self) {
        for &index in &self.checked.order {
            if !matches!(
                self.resolutions[index],
                Resolution::New | Resolution::Matched { .. }
            ) {
                continue;
            }
            let conflicted_parent =
                self.checked.dependent_parents[index]
                    .iter()
                    .copied()
                    .find(|&parent| {
                        matches!(
                            self.resolutions[parent],
                            Resolution::Conflict(_) | Resolution::Invalid
                        )
                    });
            if let Some(parent) = conflicted_parent {
                self.resolutions[index] = Resolution::Conflict(ItemConflict::ParentInConflict {
                    local_id: self.batch.items[parent].local_id.clone(),
                });
            }
        }
    }

    fn plan_item(&self, index: usize) -> Option<PlannedItem> {
        let item = &self.batch.items[index];
        let action = match &self.resolutions[index] {
            Resolution::Invalid => return None,
            Resolution::Conflict(reason) => ItemAction::Conflict {
                reason: reason.clone(),
            },
            Resolution::New => self.plan_create(item),
            Resolution::Matched { ci, rule, .. } => {
                let validated = self.checked.items[index].as_ref()?;
                self.plan_update(item, validated, ci, rule)
            }
        };
        Some(PlannedItem {
            index,
            local_id: item.local_id.clone(),
            source: item.source.clone(),
            action,
        })
    }

    fn plan_create(&self, item: &ImportItem) -> ItemAction {
        let conflict = |reason| ItemAction::Conflict { reason };
        let status = item.status.unwrap_or(CiStatus::InUse);
        if status == CiStatus::Retired {
            return conflict(ItemConflict::CreatedRetired);
        }
        let mut problems = Violations::new();
        let validated = check_attributes(
            self.catalog,
            &item.class,
            &item.attributes,
            ValidationMode::Create,
            "class",
            "attributes.",
            &mut problems,
        );
        if !problems.is_empty() {
            return conflict(ItemConflict::CannotCreate {
                class: item.class.clone(),
                problems: problems.into_vec(),
            });
        }
        let mut defaulted = validated.defaulted;
        // Discovery knows nothing of business criticality: the neutral default is open to any
        // source, people included.
        defaulted.insert("criticality".to_owned());
        if item.status.is_none() {
            defaulted.insert("status".to_owned());
        }
        ItemAction::Create {
            ci: NewCi {
                class: item.class.clone(),
                name: item.name.clone(),
                environment: item.environment,
                status,
                criticality: Criticality::Medium,
                owner_group: None,
                location: None,
                region: None,
                attributes: validated.values,
                defaulted,
            },
        }
    }

    fn plan_update(
        &self,
        item: &ImportItem,
        validated: &ValidatedAttributes,
        ci: &Ci,
        rule: &str,
    ) -> ItemAction {
        let mut patch = CiPatch::default();
        let mut skipped = Vec::new();
        // Whether the item may change `field` (its provenance key), recording a refusal.
        let mut may_change = |field: &str, path: String, differs: bool| {
            if !differs {
                return false;
            }
            let current = ci.provenance.get(field);
            if self
                .precedence
                .may_overwrite(&ci.class, field, &item.source, current)
            {
                return true;
            }
            skipped.push(SkippedField {
                field: path,
                kept_source: current.map(|p| p.source.clone()).unwrap_or_default(),
            });
            false
        };
        if may_change("name", "name".to_owned(), item.name != ci.name) {
            patch.name = Some(item.name.clone());
        }
        if may_change(
            "environment",
            "environment".to_owned(),
            item.environment != ci.environment,
        ) {
            patch.environment = Some(item.environment);
        }
        if let Some(status) = item.status
            && may_change("status", "status".to_owned(), status != ci.status)
        {
            if let Err(error) = ci.status.check_transition(status) {
                return ItemAction::Conflict {
                    reason: ItemConflict::Status {
                        ci_id: ci.id,
                        error,
                    },
                };
            }
            patch.status = Some(status);
        }
        for (name, value) in &validated.values {
            if may_change(
                name,
                attribute_field(name),
                ci.attributes.get(name) != Some(value),
            ) {
                patch.attributes.insert(name.clone(), Some(value.clone()));
            }
        }
        for name in &validated.cleared {
            if may_change(
                name,
                attribute_field(name),
                ci.attributes.contains_key(name),
            ) {
                patch.attributes.insert(name.clone(), None);
            }
        }
        if patch.is_empty() {
            return ItemAction::Unchanged {
                ci_id: ci.id,
                matched_by: rule.to_owned(),
                skipped_by_precedence: skipped,
            };
        }
        // The changes come from the very code the commit runs, on a copy; who and when do not
        // affect them, so the preview needs no clock.
        let preview_provenance = Provenance {
            source: item.source.clone(),
            actor: String::new(),
            set_at: DateTime::<Utc>::UNIX_EPOCH,
        };
        match ci.clone().apply_patch(&patch, &preview_provenance) {
            Ok(changes) => ItemAction::Update {
                ci_id: ci.id,
                expected_version: ci.version,
                matched_by: rule.to_owned(),
                patch,
                changes: changes.into_vec(),
                skipped_by_precedence: skipped,
            },
            Err(error) => ItemAction::Conflict {
                reason: ItemConflict::Status {
                    ci_id: ci.id,
                    error,
                },
            },
        }
    }

    fn plan_relationships(
        &mut self,
        actions: &BTreeMap<usize, &ItemAction>,
    ) -> Vec<PlannedRelationship> {
        let mut planned = Vec::new();
        let mut added_from: HashMap<(PlannedEnd, RelationshipType), usize> = HashMap::new();
        let mut added: BTreeSet<(Ref, &'static str, Ref)> = BTreeSet::new();
        for index in 0..self.checked.relationships.len() {
            let Some((source, target)) = self.checked.relationships[index] else {
                continue;
            };
            let kind = self.batch.relationships[index].relationship;
            let (source_end, source_facts) = self.resolve_end(source, End::Source, actions);
            let (target_end, target_facts) = self.resolve_end(target, End::Target, actions);
            let action = match (source_facts, target_facts) {
                (Err(reason), _) | (_, Err(reason)) => RelationshipAction::Conflict { reason },
                (Ok(source_facts), Ok(target_facts)) => {
                    let decided = self.relationship_action(
                        kind,
                        (&source_end, source_facts),
                        (&target_end, target_facts),
                        (source, target),
                        &added_from,
                        &mut added,
                    );
                    if decided == RelationshipAction::Add {
                        *added_from.entry((source_end.clone(), kind)).or_default() += 1;
                    }
                    decided
                }
            };
            planned.push(PlannedRelationship {
                index,
                source: source_end,
                relationship: kind,
                target: target_end,
                action,
            });
        }
        planned
    }

    /// Where one end of a relationship lands after the items are planned, with the class and
    /// status the relationship rules check.
    fn resolve_end(
        &mut self,
        end: Ref,
        which: End,
        actions: &BTreeMap<usize, &ItemAction>,
    ) -> (PlannedEnd, Result<(String, CiStatus), RelationshipConflict>) {
        match end {
            Ref::Existing(id) => match self.lookup(id) {
                Some(ci) => (PlannedEnd::Existing(id), Ok((ci.class, ci.status))),
                None => (
                    PlannedEnd::Existing(id),
                    Err(RelationshipConflict::UnknownCi { end: which, id }),
                ),
            },
            Ref::Local(index) => {
                let local_id = self.batch.items[index].local_id.clone();
                let matched = match &self.resolutions[index] {
                    Resolution::Matched { ci, .. } => Some(ci),
                    _ => None,
                };
                match (actions.get(&index), matched) {
                    (Some(ItemAction::Create { ci }), _) => (
                        PlannedEnd::New { local_id },
                        Ok((ci.class.clone(), ci.status)),
                    ),
                    (Some(ItemAction::Update { patch, .. }), Some(ci)) => (
                        PlannedEnd::Existing(ci.id),
                        Ok((ci.class.clone(), patch.status.unwrap_or(ci.status))),
                    ),
                    (Some(ItemAction::Unchanged { .. }), Some(ci)) => (
                        PlannedEnd::Existing(ci.id),
                        Ok((ci.class.clone(), ci.status)),
                    ),
                    _ => (
                        PlannedEnd::Unresolved {
                            local_id: local_id.clone(),
                        },
                        Err(RelationshipConflict::EndInConflict {
                            end: which,
                            local_id,
                        }),
                    ),
                }
            }
        }
    }

    fn relationship_action(
        &self,
        kind: RelationshipType,
        (source, (source_class, source_status)): (&PlannedEnd, (String, CiStatus)),
        (target, (target_class, target_status)): (&PlannedEnd, (String, CiStatus)),
        refs: (Ref, Ref),
        added_from: &HashMap<(PlannedEnd, RelationshipType), usize>,
        added: &mut BTreeSet<(Ref, &'static str, Ref)>,
    ) -> RelationshipAction {
        let conflict = |error: RelationshipError| RelationshipAction::Conflict {
            reason: RelationshipConflict::Rule(error),
        };
        // Two refs of the batch (an item and an id) may turn out to be the same CI.
        if source == target {
            return conflict(RelationshipError::SelfLoop);
        }
        if let Err(error) = check_ends(
            self.catalog,
            kind,
            (&source_class, source_status),
            (&target_class, target_status),
        ) {
            return conflict(error);
        }
        // The same CI may be spelled as an item and as an id: compare what the ends became.
        let canonical = |end: &PlannedEnd, original: Ref| match end {
            PlannedEnd::Existing(id) => Ref::Existing(*id),
            PlannedEnd::New { .. } | PlannedEnd::Unresolved { .. } => original,
        };
        let (source_ref, target_ref) = (canonical(source, refs.0), canonical(target, refs.1));
        let key = if kind.is_symmetric() && target_ref < source_ref {
            (target_ref, kind.as_str(), source_ref)
        } else {
            (source_ref, kind.as_str(), target_ref)
        };
        // Already added by this plan under another spelling of the same ends.
        if added.contains(&key) {
            return RelationshipAction::Exists;
        }
        if let (PlannedEnd::Existing(source_id), PlannedEnd::Existing(target_id)) = (source, target)
        {
            let stored = self
                .existing
                .relationship_exists(*source_id, kind, *target_id)
                || (kind.is_symmetric()
                    && self
                        .existing
                        .relationship_exists(*target_id, kind, *source_id));
            if stored {
                return RelationshipAction::Exists;
            }
        }
        let stored_from_source = match source {
            PlannedEnd::Existing(source_id) if kind.max_outgoing().is_some() => {
                self.existing.outgoing_count(*source_id, kind)
            }
            _ => 0,
        };
        let planned_from_source = added_from
            .get(&(source.clone(), kind))
            .copied()
            .unwrap_or(0);
        if let Err(error) = check_cardinality(kind, stored_from_source + planned_from_source) {
            return conflict(error);
        }
        added.insert(key);
        RelationshipAction::Add
    }
}
