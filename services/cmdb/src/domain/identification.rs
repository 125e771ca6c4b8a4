//! Identification and reconciliation: turning a batch of discovered items into a plan of
//! creates, updates and conflicts, without duplicating a CI or letting a weaker source overwrite
//! a stronger one.
//!
//! # Identification
//!
//! Each class has ordered [`IdentificationRule`]s (its own, or its nearest ancestor's). A rule
//! names the fields that together identify a CI — attributes such as `serial_number`, or the core
//! fields `name` and `environment` — and may be *dependent*: a `database` is identified by its
//! `name` *plus* the server it `runs_on`. The parent must itself be identified first (it may be
//! dependent too, to any depth), so items are identified parents first.
//!
//! For one item, the rules are tried in order. A rule *applies* when the item has every field it
//! names (and, for a dependent rule, exactly one relationship of the rule's type to a fitting
//! parent). The first applicable rule that finds existing CIs decides: one CI is a match, several
//! are an ambiguity (a conflict for a person to resolve). A rule that finds nothing hands over to
//! the next applicable one — a CI first recorded by name and environment is still found when a
//! discovery source later reports it with a serial number. When no rule applies, the item is
//! unidentifiable; when applicable rules find nothing, the item is new. A dependent rule whose
//! parent is new in this batch finds nothing, since no existing CI can hang off a CI that does
//! not exist yet.
//!
//! Only CIs that are not retired are found: a retired CI is history, and its identity (a host
//! name, even a serial number on a re-used chassis) may come back as a new CI. The search covers
//! the item's class and its subclasses, so a generic `server` report updates a CI already known
//! more precisely as a `virtual_machine`, which keeps its class.
//!
//! # Reconciliation
//!
//! A matched CI is updated field by field under [`SourcePrecedence`]: an incoming value from a
//! source ranked below the one that set the current value does not overwrite it and is reported
//! in `skipped_by_precedence`. Fields the item does not mention are left alone; `null` clears an
//! optional attribute.
//!
//! # Determinism
//!
//! [`reconcile`] reads only its arguments, visits items and relationships by index and sorts what
//! the store returns, so the same batch against the same CIs gives the same plan: a preview is
//! exactly what a commit will do (the commit names each CI's `expected_version`, so a CI changed
//! in between makes the commit fail rather than do something else).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use super::ci::{
    API_SOURCE, Ci, CiError, CiPatch, CiStatus, Criticality, Environment, NewCi, Provenance,
    attribute_field,
};
use super::class::{
    AttrValue, ClassCatalog, ValidatedAttributes, ValidationMode, check_attributes,
};
use super::history::FieldChange;
use super::relationship::{
    End, RelationshipError, RelationshipType, check_cardinality, check_classes, check_ends,
};
use super::validate::{self, FieldViolation, ID_MAX, NAME_MAX, SOURCE_MAX, Violations};

/// Most items in one import batch: a discovery run of ten thousand hosts is one batch.
pub const MAX_IMPORT_ITEMS: usize = 10_000;
/// Most relationships in one import batch.
pub const MAX_IMPORT_RELATIONSHIPS: usize = 20_000;

/// One way of recognising a CI of a class; see the module docs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentificationRule {
    /// snake_case, unique within the class; reported with matches and conflicts.
    pub name: String,
    /// All must be present and equal: attribute names, or [`Self::CORE_KEYS`].
    pub attributes: Vec<String>,
    /// For dependent identification: the relationship to the parent that completes the key.
    pub dependent: Option<DependentKey>,
}

/// The parent part of a dependent rule: the item has an outgoing `relationship` to a CI of
/// `parent_class` (or a subclass), and the match must have the same relationship to the same
/// parent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DependentKey {
    pub relationship: RelationshipType,
    pub parent_class: String,
}

impl IdentificationRule {
    /// Core CI fields a rule may name besides attributes.
    pub const CORE_KEYS: &'static [&'static str] = &["name", "environment"];

    pub fn new(name: &str, attributes: &[&str]) -> Self {
        Self {
            name: name.to_owned(),
            attributes: attributes.iter().map(|a| (*a).to_owned()).collect(),
            dependent: None,
        }
    }

    /// The same rule, completed by a relationship to a parent of `parent_class`.
    #[must_use]
    pub fn dependent_on(mut self, relationship: RelationshipType, parent_class: &str) -> Self {
        self.dependent = Some(DependentKey {
            relationship,
            parent_class: parent_class.to_owned(),
        });
        self
    }

    /// What an item must give for the rule to apply, for people: "name plus a runs_on
    /// relationship to a server".
    fn needs(&self) -> String {
        let fields = match self.attributes.as_slice() {
            [] => String::new(),
            [only] => only.clone(),
            [init @ .., last] => format!("{} and {last}", init.join(", ")),
        };
        match &self.dependent {
            Some(dependent) => format!(
                "{fields} plus a {} relationship to a {}",
                dependent.relationship, dependent.parent_class
            ),
            None => fields,
        }
    }
}

/// One field of an identification key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum KeyPart {
    Name(String),
    Environment(Environment),
    Attribute { name: String, value: AttrValue },
}

impl KeyPart {
    /// Whether `ci` has this field with this value.
    pub fn matches(&self, ci: &Ci) -> bool {
        match self {
            Self::Name(name) => ci.name == *name,
            Self::Environment(environment) => ci.environment == *environment,
            Self::Attribute { name, value } => ci.attributes.get(name) == Some(value),
        }
    }
}

/// The parent half of a dependent key: the match must have `relationship` to `parent_id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ParentKey {
    pub relationship: RelationshipType,
    pub parent_id: Uuid,
}

/// What the store is asked to find: CIs of one of `classes` with every part equal, and the
/// parent relationship when there is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentKey {
    /// The rule the key comes from, for logs.
    pub rule: String,
    /// The item's class and all of its subclasses, by name: the store needs no catalog.
    pub classes: Vec<String>,
    pub parts: Vec<KeyPart>,
    pub parent: Option<ParentKey>,
}

impl IdentKey {
    /// Whether `ci` has a class in scope and every part of the key. The parent relationship is
    /// not checked: only the store sees relationships.
    pub fn matches_fields(&self, ci: &Ci) -> bool {
        self.classes.contains(&ci.class) && self.parts.iter().all(|part| part.matches(ci))
    }
}

/// The CIs and relationships a tenant already has, as reconciliation needs to see them. The
/// store implements it with indexed queries, scoped to the tenant.
pub trait ExistingCis {
    /// Every CI matching `key` (see [`IdentKey::matches_fields`]) that, for a dependent key,
    /// has the relationship `ci --relationship--> parent_id`. Retired CIs may be included;
    /// reconciliation ignores them. Order does not matter.
    fn find_by_key(&self, key: &IdentKey) -> Vec<Ci>;

    /// The CI with this id, retired or not.
    fn get(&self, id: Uuid) -> Option<Ci>;

    /// Whether `source --relationship--> target` is stored, in exactly that direction.
    fn relationship_exists(
        &self,
        source: Uuid,
        relationship: RelationshipType,
        target: Uuid,
    ) -> bool;

    /// How many relationships of this type `source` has as their source.
    fn outgoing_count(&self, source: Uuid, relationship: RelationshipType) -> usize;
}

/// Which source's value wins, per field.
///
/// An order lists sources from highest to lowest rank. [`API_SOURCE`] — people and
/// integrations writing through the API — ranks above every source unless an order lists it
/// explicitly; any other source an order does not list ranks below all listed ones. A source
/// may always overwrite its own values, and a field without provenance (a default) is open to
/// all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourcePrecedence {
    /// For every field without an order of its own.
    pub default_order: Vec<String>,
    /// Keyed by `<field>` (`fqdn`, `name`) or `<class>.<field>` (`server.fqdn`); the
    /// class-qualified order wins. Fields are attribute names or core field names.
    pub by_field: BTreeMap<String, Vec<String>>,
}

impl SourcePrecedence {
    /// The order that governs `field` of a CI of `class`.
    pub fn order_for(&self, class: &str, field: &str) -> &[String] {
        self.by_field
            .get(&format!("{class}.{field}"))
            .or_else(|| self.by_field.get(field))
            .unwrap_or(&self.default_order)
    }

    /// The rank of `source` for `field` of a CI of `class`: 0 is the highest.
    pub fn rank(&self, class: &str, field: &str, source: &str) -> usize {
        let order = self.order_for(class, field);
        match order.iter().position(|listed| listed == source) {
            Some(position) => position + 1,
            None if source == API_SOURCE => 0,
            None => order.len() + 1,
        }
    }

    /// Whether a value from `incoming` may replace the current value set with `current`.
    pub fn may_overwrite(
        &self,
        class: &str,
        field: &str,
        incoming: &str,
        current: Option<&Provenance>,
    ) -> bool {
        match current {
            None => true,
            Some(current) if current.source == incoming => true,
            Some(current) => {
                self.rank(class, field, incoming) <= self.rank(class, field, &current.source)
            }
        }
    }
}

/// One discovered or imported CI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportItem {
    /// Unique within the batch; relationships refer to the item by it.
    pub local_id: String,
    pub class: String,
    pub name: String,
    pub environment: Environment,
    /// Left alone on a match when absent; `in_use` for a new CI.
    pub status: Option<CiStatus>,
    /// As JSON, checked against the class; `null` clears an optional attribute of a match.
    pub attributes: BTreeMap<String, Value>,
    /// The source the values come from, for precedence and provenance.
    pub source: String,
}

/// One end of an imported relationship.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ImportRef {
    /// An item of the same batch, by its local id.
    Local(String),
    /// A CI that already exists.
    Existing(Uuid),
}

impl fmt::Display for ImportRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Local(local_id) => write!(f, "item \"{local_id}\""),
            Self::Existing(id) => write!(f, "CI {id}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportRelationship {
    pub source: ImportRef,
    pub relationship: RelationshipType,
    pub target: ImportRef,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportBatch {
    pub items: Vec<ImportItem>,
    pub relationships: Vec<ImportRelationship>,
}

/// What to do with items and relationships that fail validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvalidItems {
    /// Any violation rejects the whole batch.
    Reject,
    /// Invalid items and relationships (and those that refer to them) are left out and reported
    /// in [`ReconciliationPlan::skipped`]; the rest is planned.
    Skip,
}

/// A field whose incoming value lost to the source that set the current one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedField {
    /// `name`, `status`, `attributes.fqdn`.
    pub field: String,
    /// The source of the value that stays.
    pub kept_source: String,
}

/// Why an item cannot be planned. The texts are user-facing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ItemConflict {
    #[error(
        "identification rule \"{rule}\" matches {} CIs ({}); merge or retire the duplicates first",
        .ci_ids.len(),
        id_list(.ci_ids)
    )]
    Ambiguous { rule: String, ci_ids: Vec<Uuid> },

    #[error("no identification rule of class {class} applies; give {}", .needs.join("; or "))]
    Unidentifiable { class: String, needs: Vec<String> },

    #[error(
        "identification rule \"{rule}\" needs exactly one {relationship} relationship to a \
         {parent_class}, and the item has {count}"
    )]
    AmbiguousParent {
        rule: String,
        relationship: RelationshipType,
        parent_class: String,
        count: usize,
    },

    #[error("its parent item \"{local_id}\" could not be reconciled")]
    ParentInConflict { local_id: String },

    #[error(
        "it describes the same CI as item \"{local_id}\"; the batch must say one thing about it"
    )]
    SameCiAsItem { local_id: String },

    #[error("a new {class} cannot be created: {}", violation_list(.problems))]
    CannotCreate {
        class: String,
        problems: Vec<FieldViolation>,
    },

    #[error("a CI cannot be created retired")]
    CreatedRetired,

    #[error("the matched CI {ci_id} cannot take the new status: {error}")]
    Status { ci_id: Uuid, error: CiError },
}

fn id_list(ids: &[Uuid]) -> String {
    const SHOWN: usize = 5;
    let mut text = ids
        .iter()
        .take(SHOWN)
        .map(Uuid::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    if ids.len() > SHOWN {
        text.push_str(&format!(" and {} more", ids.len() - SHOWN));
    }
    text
}

fn violation_list(problems: &[FieldViolation]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// What committing the plan does with one item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemAction {
    /// A new CI; the commit gives it an id and stamps provenance.
    Create {
        ci: NewCi,
    },
    /// `patch` applied to the CI at `expected_version` makes exactly `changes`.
    Update {
        ci_id: Uuid,
        expected_version: i64,
        /// The identification rule that found it.
        matched_by: String,
        patch: CiPatch,
        changes: Vec<FieldChange>,
        skipped_by_precedence: Vec<SkippedField>,
    },
    /// Found, and nothing to change (or nothing this source may change).
    Unchanged {
        ci_id: Uuid,
        matched_by: String,
        skipped_by_precedence: Vec<SkippedField>,
    },
    Conflict {
        reason: ItemConflict,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedItem {
    /// The item's position in the batch.
    pub index: usize,
    pub local_id: String,
    pub source: String,
    pub action: ItemAction,
}

/// One end of a planned relationship.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PlannedEnd {
    Existing(Uuid),
    /// Created by this plan; the commit knows its id.
    New {
        local_id: String,
    },
    /// An item in conflict.
    Unresolved {
        local_id: String,
    },
}

/// Why a relationship cannot be planned. The texts are user-facing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RelationshipConflict {
    #[error("its {end} item \"{local_id}\" could not be reconciled")]
    EndInConflict { end: End, local_id: String },

    #[error("its {end} CI {id} does not exist")]
    UnknownCi { end: End, id: Uuid },

    #[error(transparent)]
    Rule(#[from] RelationshipError),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RelationshipAction {
    Add,
    /// Already stored (for a symmetric type, in either direction).
    Exists,
    Conflict {
        reason: RelationshipConflict,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedRelationship {
    /// The relationship's position in the batch.
    pub index: usize,
    pub source: PlannedEnd,
    pub relationship: RelationshipType,
    pub target: PlannedEnd,
    pub action: RelationshipAction,
}

/// Everything a commit will do, in batch order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReconciliationPlan {
    /// Every valid item, by index.
    pub items: Vec<PlannedItem>,
    /// Every valid relationship, by index.
    pub relationships: Vec<PlannedRelationship>,
    /// With [`InvalidItems::Skip`]: what was left out, and why.
    pub skipped: Violations,
}

/// Counts for a preview's headline.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PlanSummary {
    pub create: usize,
    pub update: usize,
    pub unchanged: usize,
    pub item_conflicts: usize,
    pub add_relationships: usize,
    pub existing_relationships: usize,
    pub relationship_conflicts: usize,
    pub skipped: usize,
}

impl ReconciliationPlan {
    pub fn summary(&self) -> PlanSummary {
        let mut summary = PlanSummary {
            skipped: self.skipped.len(),
            ..PlanSummary::default()
        };
        for item in &self.items {
            match item.action {
                ItemAction::Create { .. } => summary.create += 1,
                ItemAction::Update { .. } => summary.update += 1,
                ItemAction::Unchanged { .. } => summary.unchanged += 1,
                ItemAction::Conflict { .. } => summary.item_conflicts += 1,
            }
        }
        for relationship in &self.relationships {
            match relationship.action {
                RelationshipAction::Add => summary.add_relationships += 1,
                RelationshipAction::Exists => summary.existing_relationships += 1,
                RelationshipAction::Conflict { .. } => summary.relationship_conflicts += 1,
            }
        }
        summary
    }
}

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

/// An end of a batch relationship after validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Ref {
    Local(usize),
    Existing(Uuid),
}

/// The batch after validation.
struct CheckedBatch {
    /// Typed attributes of each valid item; `None` for an invalid one.
    items: Vec<Option<ValidatedAttributes>>,
    /// The resolved ends of each valid relationship; `None` for an invalid one.
    relationships: Vec<Option<(Ref, Ref)>>,
    /// Valid relationships by their local source item.
    outgoing: Vec<Vec<usize>>,
    /// For each valid item, the valid items its dependent rules may identify it through.
    dependent_parents: Vec<Vec<usize>>,
    /// Valid items, parents before the children identified through them.
    order: Vec<usize>,
    problems: Violations,
}

fn item_field(index: usize, field: &str) -> String {
    format!("items[{index}].{field}")
}

fn relationship_field(index: usize, field: &str) -> String {
    format!("relationships[{index}].{field}")
}

fn check_batch(
    catalog: &ClassCatalog,
    batch: &ImportBatch,
    invalid_items: InvalidItems,
) -> Result<CheckedBatch, Violations> {
    let mut fatal = Violations::new();
    if batch.items.len() > MAX_IMPORT_ITEMS {
        fatal.push(
            "items",
            format!(
                "must have at most {MAX_IMPORT_ITEMS} items, not {}",
                batch.items.len()
            ),
        );
    }
    if batch.relationships.len() > MAX_IMPORT_RELATIONSHIPS {
        fatal.push(
            "relationships",
            format!(
                "must have at most {MAX_IMPORT_RELATIONSHIPS} relationships, not {}",
                batch.relationships.len()
            ),
        );
    }
    fatal.into_result()?;

    let mut problems = Violations::new();

    // Items, field by field.
    let mut items: Vec<Option<ValidatedAttributes>> = Vec::with_capacity(batch.items.len());
    let mut local: HashMap<&str, usize> = HashMap::new();
    for (index, item) in batch.items.iter().enumerate() {
        let mut found = Violations::new();
        validate::opaque(
            &item_field(index, "local_id"),
            &item.local_id,
            ID_MAX,
            &mut found,
        );
        validate::single_line(&item_field(index, "name"), &item.name, NAME_MAX, &mut found);
        validate::opaque(
            &item_field(index, "source"),
            &item.source,
            SOURCE_MAX,
            &mut found,
        );
        // Patch mode: typing only. Whether required attributes are missing depends on whether
        // the item turns out to be new, which identification decides.
        let validated = check_attributes(
            catalog,
            &item.class,
            &item.attributes,
            ValidationMode::Patch,
            &item_field(index, "class"),
            &item_field(index, "attributes."),
            &mut found,
        );
        match local.get(item.local_id.as_str()) {
            Some(first) => found.push(
                item_field(index, "local_id"),
                format!(
                    "\"{}\" is already the local id of items[{first}]",
                    item.local_id
                ),
            ),
            None => {
                local.insert(&item.local_id, index);
            }
        }
        items.push(found.is_empty().then_some(validated));
        problems.extend_prefixed("", found);
    }

    // Relationships: ends, self-loops, class rules between items, repeats, cardinality.
    let mut relationships: Vec<Option<(Ref, Ref)>> = Vec::with_capacity(batch.relationships.len());
    let mut seen: HashMap<(Ref, &str, Ref), usize> = HashMap::new();
    let mut outgoing_of_type: HashMap<(Ref, &str), Vec<usize>> = HashMap::new();
    for (index, relationship) in batch.relationships.iter().enumerate() {
        let mut found = Violations::new();
        let resolve = |end: &ImportRef, field: &str, found: &mut Violations| match end {
            ImportRef::Existing(id) => Some(Ref::Existing(*id)),
            ImportRef::Local(local_id) => match local.get(local_id.as_str()) {
                Some(&item) => Some(Ref::Local(item)),
                None => {
                    found.push(
                        relationship_field(index, field),
                        format!("no item has the local id \"{local_id}\""),
                    );
                    None
                }
            },
        };
        let source = resolve(&relationship.source, "source", &mut found);
        let target = resolve(&relationship.target, "target", &mut found);
        let kind = relationship.relationship;
        if let (Some(source), Some(target)) = (source, target) {
            if source == target {
                found.push(
                    relationship_field(index, "target"),
                    RelationshipError::SelfLoop.to_string(),
                );
            } else if let (Ref::Local(s), Ref::Local(t)) = (source, target)
                && let Err(error) =
                    check_classes(catalog, kind, &batch.items[s].class, &batch.items[t].class)
            {
                let field = match &error {
                    RelationshipError::ClassNotAllowed {
                        end: End::Source, ..
                    } => "source",
                    _ => "target",
                };
                found.push(relationship_field(index, field), error.to_string());
            }
        }
        let ends = match (source, target) {
            (Some(source), Some(target)) if found.is_empty() => Some((source, target)),
            _ => None,
        };
        if let Some((source, target)) = ends {
            // A symmetric pair is one relationship whichever way it is written.
            let key = if kind.is_symmetric() && target < source {
                (target, kind.as_str(), source)
            } else {
                (source, kind.as_str(), target)
            };
            if let Some(first) = seen.get(&key) {
                found.push(
                    format!("relationships[{index}]"),
                    format!("repeats relationships[{first}]"),
                );
            } else {
                seen.insert(key, index);
                if let Some(max) = kind.max_outgoing() {
                    let earlier = outgoing_of_type.entry((source, kind.as_str())).or_default();
                    if earlier.len() >= max as usize {
                        let others = earlier
                            .iter()
                            .map(|other| format!("relationships[{other}]"))
                            .collect::<Vec<_>>()
                            .join(", ");
                        found.push(
                            relationship_field(index, "source"),
                            format!(
                                "{} may be the source of at most {max} {kind} relationship{}, and \
                                 the batch already gives it {others}",
                                relationship.source,
                                if max == 1 { "" } else { "s" }
                            ),
                        );
                    } else {
                        earlier.push(index);
                    }
                }
            }
        }
        relationships.push(if found.is_empty() { ends } else { None });
        problems.extend_prefixed("", found);
    }

    // Dependent identification must not loop: a → b → a can never be identified.
    let parents = dependent_parents(catalog, batch, &items, &relationships);
    for cycle in cycles(&parents) {
        let names = cycle
            .iter()
            .map(|&item| format!("\"{}\"", batch.items[item].local_id))
            .collect::<Vec<_>>()
            .join(", ");
        for &item in &cycle {
            problems.push(
                format!("items[{item}]"),
                format!(
                    "items {names} are each identified through another of them: dependent \
                     identification forms a cycle"
                ),
            );
            items[item] = None;
        }
    }

    // Whatever refers to an invalid item goes too.
    for (index, ends) in relationships.iter_mut().enumerate() {
        let Some((source, target)) = *ends else {
            continue;
        };
        for (end, field) in [(source, "source"), (target, "target")] {
            if let Ref::Local(item) = end
                && items[item].is_none()
                && ends.is_some()
            {
                *ends = None;
                if invalid_items == InvalidItems::Skip {
                    problems.push(
                        relationship_field(index, field),
                        format!("left out because items[{item}] is invalid"),
                    );
                }
            }
        }
    }

    let mut outgoing = vec![Vec::new(); batch.items.len()];
    for (index, ends) in relationships.iter().enumerate() {
        if let Some((Ref::Local(source), _)) = ends {
            outgoing[*source].push(index);
        }
    }
    let parents = dependent_parents(catalog, batch, &items, &relationships);
    let order = parents_first(&items, &parents);
    Ok(CheckedBatch {
        items,
        relationships,
        outgoing,
        dependent_parents: parents,
        order,
        problems,
    })
}

/// For each valid item, the valid items it may be identified through: targets of its
/// relationships that fit one of its class's dependent rules.
fn dependent_parents(
    catalog: &ClassCatalog,
    batch: &ImportBatch,
    items: &[Option<ValidatedAttributes>],
    relationships: &[Option<(Ref, Ref)>],
) -> Vec<Vec<usize>> {
    let mut parents: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); batch.items.len()];
    for (index, ends) in relationships.iter().enumerate() {
        let Some((Ref::Local(child), Ref::Local(parent))) = *ends else {
            continue;
        };
        if items[child].is_none() || items[parent].is_none() {
            continue;
        }
        let kind = batch.relationships[index].relationship;
        let Some((_, rules)) = catalog.identification_rules(&batch.items[child].class) else {
            continue;
        };
        let fits = rules
            .iter()
            .filter_map(|rule| rule.dependent.as_ref())
            .any(|dependent| {
                dependent.relationship == kind
                    && catalog.is_subclass_of(&batch.items[parent].class, &dependent.parent_class)
            });
        if fits {
            parents[child].insert(parent);
        }
    }
    parents
        .into_iter()
        .map(|set| set.into_iter().collect())
        .collect()
}

/// The strongly connected components with more than one node (Tarjan's algorithm, iterative so
/// a long chain cannot overflow the stack), each sorted, in order of their smallest node.
fn cycles(edges: &[Vec<usize>]) -> Vec<Vec<usize>> {
    let count = edges.len();
    let mut next_index = 0;
    let mut index: Vec<Option<usize>> = vec![None; count];
    let mut low = vec![0; count];
    let mut on_stack = vec![false; count];
    let mut stack = Vec::new();
    let mut components = Vec::new();
    for root in 0..count {
        if index[root].is_some() {
            continue;
        }
        let mut calls: Vec<(usize, usize)> = vec![(root, 0)];
        index[root] = Some(next_index);
        low[root] = next_index;
        next_index += 1;
        stack.push(root);
        on_stack[root] = true;
        while let Some(&(node, next)) = calls.last() {
            if let Some(&child) = edges[node].get(next) {
                if let Some(call) = calls.last_mut() {
                    call.1 += 1;
                }
                match index[child] {
                    None => {
                        index[child] = Some(next_index);
                        low[child] = next_index;
                        next_index += 1;
                        stack.push(child);
                        on_stack[child] = true;
                        calls.push((child, 0));
                    }
                    Some(child_index) if on_stack[child] => {
                        low[node] = low[node].min(child_index);
                    }
                    Some(_) => {}
                }
                continue;
            }
            calls.pop();
            if let Some(&(caller, _)) = calls.last() {
                low[caller] = low[caller].min(low[node]);
            }
            if Some(low[node]) == index[node] {
                let mut component = Vec::new();
                while let Some(member) = stack.pop() {
                    on_stack[member] = false;
                    component.push(member);
                    if member == node {
                        break;
                    }
                }
                if component.len() > 1 {
                    component.sort_unstable();
                    components.push(component);
                }
            }
        }
    }
    components.sort();
    components
}

/// Valid items in an order where every parent comes before its children; among items that are
/// ready at the same time, the lowest index first. The graph is acyclic by now.
fn parents_first(items: &[Option<ValidatedAttributes>], parents: &[Vec<usize>]) -> Vec<usize> {
    let mut waiting: Vec<usize> = parents.iter().map(Vec::len).collect();
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); parents.len()];
    for (child, its_parents) in parents.iter().enumerate() {
        for &parent in its_parents {
            children[parent].push(child);
        }
    }
    let mut ready: BTreeSet<usize> = (0..items.len())
        .filter(|&item| items[item].is_some() && waiting[item] == 0)
        .collect();
    let mut order = Vec::with_capacity(items.len());
    while let Some(item) = ready.pop_first() {
        order.push(item);
        for &child in &children[item] {
            waiting[child] -= 1;
            if waiting[child] == 0 && items[child].is_some() {
                ready.insert(child);
            }
        }
    }
    order
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
            let Some(parts) = key_parts(rule, item, &validated.values) else {
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
            let mut found: Vec<Ci> = self
                .existing
                .find_by_key(&key)
                .into_iter()
                .filter(|ci| ci.status != CiStatus::Retired && classes.contains(&ci.class))
                .collect();
            found.sort_by_key(|ci| ci.id);
            found.dedup_by_key(|ci| ci.id);
            match found.len() {
                0 => {}
                1 => {
                    let ci = found.remove(0);
                    return Resolution::Matched {
                        ci: Box::new(ci),
                        rule: rule.name.clone(),
                    };
                }
                _ => {
                    return Resolution::Conflict(ItemConflict::Ambiguous {
                        rule: rule.name.clone(),
                        ci_ids: found.iter().map(|ci| ci.id).collect(),
                    });
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
                let Some(parts) = key_parts(rule, item, &validated.values) else {
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

/// The key values `rule` needs from `item`, or `None` when the item lacks one.
fn key_parts(
    rule: &IdentificationRule,
    item: &ImportItem,
    values: &BTreeMap<String, AttrValue>,
) -> Option<Vec<KeyPart>> {
    rule.attributes
        .iter()
        .map(|field| match field.as_str() {
            "name" => Some(KeyPart::Name(item.name.clone())),
            "environment" => Some(KeyPart::Environment(item.environment)),
            attribute => values.get(attribute).map(|value| KeyPart::Attribute {
                name: attribute.to_owned(),
                value: value.clone(),
            }),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use chrono::TimeZone;
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;
    use crate::domain::class::{AttributeDef, AttributeType, CiClass, ROOT_CLASS};

    /// The store as reconciliation sees it, in memory, with a commit that does what the real one
    /// will: create, patch at the expected version, add relationships.
    #[derive(Debug, Clone, Default)]
    struct Memory {
        cis: Vec<Ci>,
        relationships: Vec<(Uuid, RelationshipType, Uuid)>,
        next_id: u128,
    }

    impl ExistingCis for Memory {
        fn find_by_key(&self, key: &IdentKey) -> Vec<Ci> {
            self.cis
                .iter()
                .filter(|ci| key.matches_fields(ci))
                .filter(|ci| {
                    key.parent.is_none_or(|parent| {
                        self.relationships
                            .contains(&(ci.id, parent.relationship, parent.parent_id))
                    })
                })
                .cloned()
                .collect()
        }

        fn get(&self, id: Uuid) -> Option<Ci> {
            self.cis.iter().find(|ci| ci.id == id).cloned()
        }

        fn relationship_exists(
            &self,
            source: Uuid,
            relationship: RelationshipType,
            target: Uuid,
        ) -> bool {
            self.relationships.contains(&(source, relationship, target))
        }

        fn outgoing_count(&self, source: Uuid, relationship: RelationshipType) -> usize {
            self.relationships
                .iter()
                .filter(|(s, r, _)| *s == source && *r == relationship)
                .count()
        }
    }

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 6, 1, 12, 0, 0)
            .single()
            .expect("valid time")
    }

    fn provenance(source: &str) -> Provenance {
        Provenance {
            source: source.to_owned(),
            actor: "tester".to_owned(),
            set_at: at(),
        }
    }

    impl Memory {
        fn add(&mut self, class: &str, name: &str, attributes: Value, source: &str) -> Uuid {
            let catalog = ClassCatalog::builtin();
            let attributes: BTreeMap<String, Value> = match attributes {
                Value::Object(map) => map.into_iter().collect(),
                _ => BTreeMap::new(),
            };
            let validated = crate::domain::class::validate_attributes(
                &catalog,
                class,
                &attributes,
                ValidationMode::Create,
            )
            .expect("valid attributes");
            self.next_id += 1;
            let id = Uuid::from_u128(self.next_id);
            let ci = NewCi {
                class: class.to_owned(),
                name: name.to_owned(),
                environment: Environment::Production,
                status: CiStatus::InUse,
                criticality: Criticality::Medium,
                owner_group: None,
                location: None,
                region: None,
                attributes: validated.values,
                defaulted: validated.defaulted,
            }
            .into_ci(id, "acme".into(), &provenance(source));
            self.cis.push(ci);
            id
        }

        fn relate(&mut self, source: Uuid, relationship: RelationshipType, target: Uuid) {
            self.relationships.push((source, relationship, target));
        }

        fn commit(&mut self, plan: &ReconciliationPlan) {
            let mut created: HashMap<String, Uuid> = HashMap::new();
            for item in &plan.items {
                match &item.action {
                    ItemAction::Create { ci } => {
                        self.next_id += 1;
                        let id = Uuid::from_u128(self.next_id);
                        self.cis.push(ci.clone().into_ci(
                            id,
                            "acme".into(),
                            &provenance(&item.source),
                        ));
                        created.insert(item.local_id.clone(), id);
                    }
                    ItemAction::Update {
                        ci_id,
                        expected_version,
                        patch,
                        changes,
                        ..
                    } => {
                        let ci = self
                            .cis
                            .iter_mut()
                            .find(|ci| ci.id == *ci_id)
                            .expect("planned CI exists");
                        assert_eq!(ci.version, *expected_version);
                        let applied = ci
                            .apply_patch(patch, &provenance(&item.source))
                            .expect("planned patch applies");
                        assert_eq!(&applied.into_vec(), changes, "preview equals commit");
                    }
                    ItemAction::Unchanged { .. } | ItemAction::Conflict { .. } => {}
                }
            }
            for relationship in &plan.relationships {
                if relationship.action != RelationshipAction::Add {
                    continue;
                }
                let end = |end: &PlannedEnd| match end {
                    PlannedEnd::Existing(id) => *id,
                    PlannedEnd::New { local_id } => created[local_id],
                    PlannedEnd::Unresolved { .. } => panic!("an added relationship has two ends"),
                };
                self.relationships.push((
                    end(&relationship.source),
                    relationship.relationship,
                    end(&relationship.target),
                ));
            }
        }
    }

    fn item(local_id: &str, class: &str, name: &str, attributes: Value) -> ImportItem {
        ImportItem {
            local_id: local_id.to_owned(),
            class: class.to_owned(),
            name: name.to_owned(),
            environment: Environment::Production,
            status: None,
            attributes: match attributes {
                Value::Object(map) => map.into_iter().collect(),
                _ => BTreeMap::new(),
            },
            source: "sccm".to_owned(),
        }
    }

    fn from(source: &str, item: ImportItem) -> ImportItem {
        ImportItem {
            source: source.to_owned(),
            ..item
        }
    }

    fn local(local_id: &str) -> ImportRef {
        ImportRef::Local(local_id.to_owned())
    }

    fn link(
        source: ImportRef,
        relationship: RelationshipType,
        target: ImportRef,
    ) -> ImportRelationship {
        ImportRelationship {
            source,
            relationship,
            target,
        }
    }

    fn batch(items: Vec<ImportItem>, relationships: Vec<ImportRelationship>) -> ImportBatch {
        ImportBatch {
            items,
            relationships,
        }
    }

    fn plan_with(
        catalog: &ClassCatalog,
        precedence: &SourcePrecedence,
        existing: &Memory,
        batch: &ImportBatch,
    ) -> ReconciliationPlan {
        reconcile(catalog, precedence, batch, existing, InvalidItems::Reject).expect("valid batch")
    }

    fn plan(existing: &Memory, batch: &ImportBatch) -> ReconciliationPlan {
        plan_with(
            &ClassCatalog::builtin(),
            &SourcePrecedence::default(),
            existing,
            batch,
        )
    }

    fn violations(existing: &Memory, batch: &ImportBatch) -> Vec<(String, String)> {
        reconcile(
            &ClassCatalog::builtin(),
            &SourcePrecedence::default(),
            batch,
            existing,
            InvalidItems::Reject,
        )
        .expect_err("invalid batch")
        .into_iter()
        .map(|v| (v.field, v.description))
        .collect()
    }

    fn action(plan: &ReconciliationPlan, local_id: &str) -> ItemAction {
        plan.items
            .iter()
            .find(|item| item.local_id == local_id)
            .map(|item| item.action.clone())
            .expect("planned item")
    }

    fn conflict(plan: &ReconciliationPlan, local_id: &str) -> String {
        match action(plan, local_id) {
            ItemAction::Conflict { reason } => reason.to_string(),
            other => panic!("expected a conflict, got {other:?}"),
        }
    }

    fn matched(plan: &ReconciliationPlan, local_id: &str) -> Uuid {
        match action(plan, local_id) {
            ItemAction::Update { ci_id, .. } | ItemAction::Unchanged { ci_id, .. } => ci_id,
            other => panic!("expected a match, got {other:?}"),
        }
    }

    #[test]
    fn a_new_server_is_planned_as_a_create_in_use_with_provenance_only_on_given_fields() {
        let plan = plan(
            &Memory::default(),
            &batch(
                vec![item(
                    "s1",
                    "server",
                    "web-01",
                    json!({"serial_number": "SN1", "os": "linux"}),
                )],
                vec![],
            ),
        );
        let ItemAction::Create { ci } = action(&plan, "s1") else {
            panic!("expected a create");
        };
        assert_eq!(ci.status, CiStatus::InUse);
        assert_eq!(ci.criticality, Criticality::Medium);
        assert_eq!(
            ci.defaulted,
            BTreeSet::from(["criticality".to_owned(), "status".to_owned()])
        );
        assert_eq!(
            ci.attributes["serial_number"],
            AttrValue::String("SN1".into())
        );
        assert_eq!(plan.summary().create, 1);
    }

    #[test]
    fn a_known_server_is_matched_by_serial_number_and_updated() {
        let mut existing = Memory::default();
        let server = existing.add(
            "server",
            "web-01",
            json!({"serial_number": "SN1", "os": "linux"}),
            "sccm",
        );
        let plan = plan(
            &existing,
            &batch(
                vec![item(
                    "s1",
                    "server",
                    "web-01",
                    json!({"serial_number": "SN1", "os": "windows", "cpu_count": 8}),
                )],
                vec![],
            ),
        );
        let ItemAction::Update {
            ci_id,
            expected_version,
            matched_by,
            changes,
            skipped_by_precedence,
            ..
        } = action(&plan, "s1")
        else {
            panic!("expected an update");
        };
        assert_eq!(ci_id, server);
        assert_eq!(expected_version, 1);
        assert_eq!(matched_by, "serial_number");
        assert_eq!(
            changes,
            [
                FieldChange {
                    field: "attributes.cpu_count".into(),
                    old: None,
                    new: Some("8".into())
                },
                FieldChange {
                    field: "attributes.os".into(),
                    old: Some("linux".into()),
                    new: Some("windows".into())
                },
            ]
        );
        assert!(skipped_by_precedence.is_empty());
    }

    #[test]
    fn the_same_values_again_are_unchanged() {
        let mut existing = Memory::default();
        let server = existing.add(
            "server",
            "web-01",
            json!({"fqdn": "web-01.example.com"}),
            "sccm",
        );
        let plan = plan(
            &existing,
            &batch(
                vec![item(
                    "s1",
                    "server",
                    "web-01",
                    json!({"fqdn": "web-01.example.com"}),
                )],
                vec![],
            ),
        );
        assert_eq!(
            action(&plan, "s1"),
            ItemAction::Unchanged {
                ci_id: server,
                matched_by: "fqdn".into(),
                skipped_by_precedence: vec![]
            }
        );
    }

    #[test]
    fn a_rule_that_finds_nothing_hands_over_to_the_next_applicable_rule() {
        let mut existing = Memory::default();
        let server = existing.add("server", "web-01", json!({}), API_SOURCE);
        let plan = plan(
            &existing,
            &batch(
                vec![item(
                    "s1",
                    "server",
                    "web-01",
                    json!({"serial_number": "SN-NEW"}),
                )],
                vec![],
            ),
        );
        let ItemAction::Update {
            ci_id, matched_by, ..
        } = action(&plan, "s1")
        else {
            panic!("expected an update");
        };
        assert_eq!(ci_id, server);
        assert_eq!(matched_by, "name_environment");
    }

    #[test]
    fn a_rule_that_matches_several_cis_is_an_ambiguity() {
        let mut existing = Memory::default();
        let first = existing.add(
            "server",
            "web-01",
            json!({"fqdn": "web.example.com"}),
            "sccm",
        );
        let second = existing.add(
            "server",
            "web-02",
            json!({"fqdn": "web.example.com"}),
            "sccm",
        );
        let plan = plan(
            &existing,
            &batch(
                vec![item(
                    "s1",
                    "server",
                    "web",
                    json!({"fqdn": "web.example.com"}),
                )],
                vec![],
            ),
        );
        assert_eq!(
            action(&plan, "s1"),
            ItemAction::Conflict {
                reason: ItemConflict::Ambiguous {
                    rule: "fqdn".into(),
                    ci_ids: vec![first, second]
                }
            }
        );
        assert!(conflict(&plan, "s1").starts_with("identification rule \"fqdn\" matches 2 CIs"));
    }

    #[test]
    fn an_item_no_rule_applies_to_is_unidentifiable() {
        let plan = plan(
            &Memory::default(),
            &batch(
                vec![item(
                    "c1",
                    "cloud_resource",
                    "bucket",
                    json!({"provider": "aws"}),
                )],
                vec![],
            ),
        );
        assert_eq!(
            conflict(&plan, "c1"),
            "no identification rule of class cloud_resource applies; give cloud_resource_id"
        );
        let plan = plan_with(
            &ClassCatalog::builtin(),
            &SourcePrecedence::default(),
            &Memory::default(),
            &batch(
                vec![item("b1", "business_service", "Shop", json!({}))],
                vec![],
            ),
        );
        assert!(matches!(action(&plan, "b1"), ItemAction::Create { .. }));
    }

    #[test]
    fn retired_cis_are_not_matched() {
        let mut existing = Memory::default();
        let old = existing.add("server", "web-01", json!({"serial_number": "SN1"}), "sccm");
        existing.cis[0].status = CiStatus::Retired;
        let plan = plan(
            &existing,
            &batch(
                vec![item(
                    "s1",
                    "server",
                    "web-01",
                    json!({"serial_number": "SN1"}),
                )],
                vec![],
            ),
        );
        assert!(
            matches!(action(&plan, "s1"), ItemAction::Create { .. }),
            "{old} is history"
        );
    }

    #[test]
    fn a_generic_server_report_matches_a_known_virtual_machine() {
        let mut existing = Memory::default();
        let vm = existing.add(
            "virtual_machine",
            "vm-01",
            json!({"fqdn": "vm-01.example.com"}),
            "vcenter",
        );
        let plan = plan(
            &existing,
            &batch(
                vec![item(
                    "s1",
                    "server",
                    "vm-01",
                    json!({"fqdn": "vm-01.example.com", "ram_gb": 16}),
                )],
                vec![],
            ),
        );
        assert_eq!(matched(&plan, "s1"), vm);
        let plan_the_other_way = plan_with(
            &ClassCatalog::builtin(),
            &SourcePrecedence::default(),
            &{
                let mut servers = Memory::default();
                servers.add(
                    "server",
                    "host-01",
                    json!({"fqdn": "host-01.example.com"}),
                    "sccm",
                );
                servers
            },
            &batch(
                vec![item(
                    "v1",
                    "virtual_machine",
                    "host-01",
                    json!({"fqdn": "host-01.example.com"}),
                )],
                vec![],
            ),
        );
        assert!(
            matches!(action(&plan_the_other_way, "v1"), ItemAction::Create { .. }),
            "a server is not a virtual machine"
        );
    }

    #[test]
    fn a_database_is_identified_by_its_name_on_its_server() {
        let mut existing = Memory::default();
        let host_a = existing.add("server", "db-host-a", json!({"serial_number": "A"}), "sccm");
        let host_b = existing.add("server", "db-host-b", json!({"serial_number": "B"}), "sccm");
        let orders_a = existing.add(
            "database",
            "orders",
            json!({"engine": "postgresql"}),
            "sccm",
        );
        let orders_b = existing.add(
            "database",
            "orders",
            json!({"engine": "postgresql"}),
            "sccm",
        );
        existing.relate(orders_a, RelationshipType::RunsOn, host_a);
        existing.relate(orders_b, RelationshipType::RunsOn, host_b);
        let plan = plan(
            &existing,
            &batch(
                vec![
                    item("db", "database", "orders", json!({"port": 5432})),
                    item("host", "server", "db-host-b", json!({"serial_number": "B"})),
                ],
                vec![link(local("db"), RelationshipType::RunsOn, local("host"))],
            ),
        );
        assert_eq!(matched(&plan, "host"), host_b);
        let ItemAction::Update {
            ci_id, matched_by, ..
        } = action(&plan, "db")
        else {
            panic!("expected an update");
        };
        assert_eq!((ci_id, matched_by.as_str()), (orders_b, "name_on_host"));
        assert_eq!(plan.relationships[0].action, RelationshipAction::Exists);
    }

    #[test]
    fn a_dependent_parent_may_be_named_by_its_id() {
        let mut existing = Memory::default();
        let host = existing.add("server", "db-host", json!({}), "sccm");
        let orders = existing.add("database", "orders", json!({}), "sccm");
        existing.relate(orders, RelationshipType::RunsOn, host);
        let plan = plan(
            &existing,
            &batch(
                vec![item("db", "database", "orders", json!({}))],
                vec![link(
                    local("db"),
                    RelationshipType::RunsOn,
                    ImportRef::Existing(host),
                )],
            ),
        );
        assert_eq!(matched(&plan, "db"), orders);
    }

    #[test]
    fn a_dependent_item_whose_parent_is_new_is_new_too() {
        let mut existing = Memory::default();
        // An "orders" database exists on another host; the new host's one is another database.
        let other_host = existing.add(
            "server",
            "old-host",
            json!({"serial_number": "OLD"}),
            "sccm",
        );
        let orders = existing.add("database", "orders", json!({}), "sccm");
        existing.relate(orders, RelationshipType::RunsOn, other_host);
        let mut database = item("db", "database", "orders", json!({}));
        database.environment = Environment::Staging;
        let plan = plan(
            &existing,
            &batch(
                vec![
                    database,
                    item(
                        "host",
                        "server",
                        "new-host",
                        json!({"serial_number": "NEW"}),
                    ),
                ],
                vec![link(local("db"), RelationshipType::RunsOn, local("host"))],
            ),
        );
        assert!(matches!(action(&plan, "host"), ItemAction::Create { .. }));
        assert!(matches!(action(&plan, "db"), ItemAction::Create { .. }));
        assert_eq!(
            plan.relationships[0].source,
            PlannedEnd::New {
                local_id: "db".into()
            }
        );
        assert_eq!(plan.relationships[0].action, RelationshipAction::Add);
    }

    /// A tenant catalog where a schema is identified within its database, itself identified on
    /// its server: dependent identification two levels deep.
    fn schema_catalog() -> ClassCatalog {
        ClassCatalog::with_tenant_classes(vec![CiClass {
            name: "db_schema".into(),
            label: "Database schema".into(),
            parent: Some(ROOT_CLASS.into()),
            attributes: vec![AttributeDef::new(
                "owner",
                AttributeType::String { max_len: 100 },
            )],
            identification: vec![
                IdentificationRule::new("name_in_database", &["name"])
                    .dependent_on(RelationshipType::MemberOf, "database"),
            ],
            abstract_class: false,
        }])
        .expect("valid tenant class")
    }

    #[test]
    fn dependent_identification_works_to_any_depth_whatever_the_batch_order() {
        let mut existing = Memory::default();
        let host = existing.add("server", "host", json!({"serial_number": "H"}), "sccm");
        let database = existing.add("database", "orders", json!({}), "sccm");
        existing.relate(database, RelationshipType::RunsOn, host);
        let mut schema = existing.add("server", "placeholder", json!({}), "sccm");
        // Turn the placeholder into a schema of the tenant class, member of the database.
        if let Some(ci) = existing.cis.iter_mut().find(|ci| ci.id == schema) {
            ci.class = "db_schema".into();
            ci.name = "billing".into();
        }
        existing.relate(schema, RelationshipType::MemberOf, database);
        let mut other_schema = existing.add("server", "placeholder-2", json!({}), "sccm");
        if let Some(ci) = existing.cis.iter_mut().find(|ci| ci.id == other_schema) {
            ci.class = "db_schema".into();
            ci.name = "billing".into();
        }
        std::mem::swap(&mut schema, &mut other_schema);
        std::mem::swap(&mut schema, &mut other_schema);

        let plan = plan_with(
            &schema_catalog(),
            &SourcePrecedence::default(),
            &existing,
            &batch(
                vec![
                    item(
                        "schema",
                        "db_schema",
                        "billing",
                        json!({"owner": "finance"}),
                    ),
                    item("db", "database", "orders", json!({})),
                    item("host", "server", "host", json!({"serial_number": "H"})),
                ],
                vec![
                    link(local("schema"), RelationshipType::MemberOf, local("db")),
                    link(local("db"), RelationshipType::RunsOn, local("host")),
                ],
            ),
        );
        assert_eq!(matched(&plan, "host"), host);
        assert_eq!(matched(&plan, "db"), database);
        assert_eq!(
            matched(&plan, "schema"),
            schema,
            "not the unattached one, {other_schema}"
        );
    }

    #[test]
    fn a_dependent_item_with_two_fitting_parents_is_a_conflict() {
        let plan = plan_with(
            &schema_catalog(),
            &SourcePrecedence::default(),
            &Memory::default(),
            &batch(
                vec![
                    item("schema", "db_schema", "billing", json!({})),
                    item("db1", "database", "orders", json!({"fqdn": "a", "port": 1})),
                    item("db2", "database", "orders", json!({"fqdn": "b", "port": 1})),
                ],
                vec![
                    link(local("schema"), RelationshipType::MemberOf, local("db1")),
                    link(local("schema"), RelationshipType::MemberOf, local("db2")),
                ],
            ),
        );
        assert_eq!(
            conflict(&plan, "schema"),
            "identification rule \"name_in_database\" needs exactly one member_of relationship to \
             a database, and the item has 2"
        );
        assert!(matches!(
            plan.relationships[0].action,
            RelationshipAction::Conflict { .. }
        ));
    }

    #[test]
    fn a_lower_ranked_source_does_not_overwrite_and_is_reported() {
        let mut existing = Memory::default();
        let server = existing.add(
            "server",
            "web-01",
            json!({"serial_number": "SN1", "os": "linux", "fqdn": "a.example"}),
            "sccm",
        );
        let precedence = SourcePrecedence {
            default_order: vec!["sccm".into(), "nmap".into()],
            by_field: BTreeMap::new(),
        };
        let incoming = from(
            "nmap",
            item(
                "s1",
                "server",
                "web-01",
                json!({"serial_number": "SN1", "os": "windows", "ram_gb": 32}),
            ),
        );
        let plan = plan_with(
            &ClassCatalog::builtin(),
            &precedence,
            &existing,
            &batch(vec![incoming.clone()], vec![]),
        );
        let ItemAction::Update {
            patch,
            skipped_by_precedence,
            ..
        } = action(&plan, "s1")
        else {
            panic!("expected an update");
        };
        assert_eq!(
            patch.attributes,
            BTreeMap::from([("ram_gb".to_owned(), Some(AttrValue::Int(32)))]),
            "ram_gb had no value yet"
        );
        assert_eq!(
            skipped_by_precedence,
            [SkippedField {
                field: "attributes.os".into(),
                kept_source: "sccm".into()
            }]
        );

        let only_os = from(
            "nmap",
            item(
                "s1",
                "server",
                "web-01",
                json!({"serial_number": "SN1", "os": "windows"}),
            ),
        );
        let plan = plan_with(
            &ClassCatalog::builtin(),
            &precedence,
            &existing,
            &batch(vec![only_os], vec![]),
        );
        assert_eq!(
            action(&plan, "s1"),
            ItemAction::Unchanged {
                ci_id: server,
                matched_by: "serial_number".into(),
                skipped_by_precedence: vec![SkippedField {
                    field: "attributes.os".into(),
                    kept_source: "sccm".into()
                }]
            }
        );
    }

    #[test]
    fn manual_edits_outrank_discovery_unless_configured_otherwise() {
        let mut existing = Memory::default();
        existing.add(
            "server",
            "web-01",
            json!({"serial_number": "SN1", "os": "linux"}),
            API_SOURCE,
        );
        let incoming = batch(
            vec![item(
                "s1",
                "server",
                "web-01",
                json!({"serial_number": "SN1", "os": "windows"}),
            )],
            vec![],
        );
        let by_default = plan(&existing, &incoming);
        assert!(matches!(
            action(&by_default, "s1"),
            ItemAction::Unchanged { ref skipped_by_precedence, .. } if skipped_by_precedence.len() == 1
        ));
        let discovery_first = SourcePrecedence {
            default_order: vec![],
            by_field: BTreeMap::from([(
                "server.os".to_owned(),
                vec!["sccm".to_owned(), API_SOURCE.to_owned()],
            )]),
        };
        let configured = plan_with(
            &ClassCatalog::builtin(),
            &discovery_first,
            &existing,
            &incoming,
        );
        assert!(matches!(
            action(&configured, "s1"),
            ItemAction::Update { .. }
        ));
    }

    #[test]
    fn precedence_ranks_by_class_field_then_field_then_default() {
        let precedence = SourcePrecedence {
            default_order: vec!["sccm".into(), "nmap".into()],
            by_field: BTreeMap::from([
                ("fqdn".to_owned(), vec!["dns".to_owned(), "sccm".to_owned()]),
                ("server.fqdn".to_owned(), vec!["vcenter".to_owned()]),
            ]),
        };
        assert_eq!(precedence.order_for("server", "fqdn"), ["vcenter"]);
        assert_eq!(precedence.order_for("database", "fqdn"), ["dns", "sccm"]);
        assert_eq!(precedence.order_for("database", "port"), ["sccm", "nmap"]);
        assert_eq!(precedence.rank("database", "port", API_SOURCE), 0);
        assert_eq!(precedence.rank("database", "port", "sccm"), 1);
        assert_eq!(precedence.rank("database", "port", "unheard_of"), 3);
        let by = |source: &str| provenance(source);
        assert!(precedence.may_overwrite("database", "port", "nmap", None));
        assert!(precedence.may_overwrite("database", "port", "nmap", Some(&by("nmap"))));
        assert!(!precedence.may_overwrite("database", "port", "nmap", Some(&by("sccm"))));
        assert!(precedence.may_overwrite("database", "port", "sccm", Some(&by("nmap"))));
        assert!(
            precedence.may_overwrite("database", "port", "x", Some(&by("y"))),
            "equals"
        );
    }

    #[test]
    fn null_clears_an_optional_attribute_of_a_match() {
        let mut existing = Memory::default();
        existing.add(
            "server",
            "web-01",
            json!({"serial_number": "SN1", "os": "linux"}),
            "sccm",
        );
        let plan = plan(
            &existing,
            &batch(
                vec![item(
                    "s1",
                    "server",
                    "web-01",
                    json!({"serial_number": "SN1", "os": null}),
                )],
                vec![],
            ),
        );
        let ItemAction::Update { changes, .. } = action(&plan, "s1") else {
            panic!("expected an update");
        };
        assert_eq!(
            changes,
            [FieldChange {
                field: "attributes.os".into(),
                old: Some("linux".into()),
                new: None
            }]
        );
    }

    #[test]
    fn a_status_move_the_lifecycle_forbids_is_a_conflict() {
        let mut existing = Memory::default();
        let server = existing.add("server", "web-01", json!({"serial_number": "SN1"}), "sccm");
        let mut planned = item("s1", "server", "web-01", json!({"serial_number": "SN1"}));
        planned.status = Some(CiStatus::Planned);
        let plan = plan(&existing, &batch(vec![planned], vec![]));
        assert_eq!(
            conflict(&plan, "s1"),
            format!(
                "the matched CI {server} cannot take the new status: a CI that is in_use cannot \
                 move to planned; allowed: maintenance, retired"
            )
        );
    }

    #[test]
    fn a_new_item_missing_a_required_attribute_is_a_conflict_but_a_match_is_fine() {
        let catalog = ClassCatalog::with_tenant_classes(vec![CiClass {
            name: "nas".into(),
            label: "NAS".into(),
            parent: Some(ROOT_CLASS.into()),
            attributes: vec![
                AttributeDef::new("serial", AttributeType::String { max_len: 50 }),
                AttributeDef::new(
                    "capacity_tb",
                    AttributeType::Int {
                        min: Some(1),
                        max: None,
                    },
                )
                .required(),
            ],
            identification: vec![IdentificationRule::new("serial", &["serial"])],
            abstract_class: false,
        }])
        .expect("valid");
        let incoming = batch(
            vec![item("n1", "nas", "nas-01", json!({"serial": "X"}))],
            vec![],
        );
        let new = plan_with(
            &catalog,
            &SourcePrecedence::default(),
            &Memory::default(),
            &incoming,
        );
        assert_eq!(
            conflict(&new, "n1"),
            "a new nas cannot be created: attributes.capacity_tb: is required"
        );
        let mut existing = Memory::default();
        let nas = existing.add("server", "nas-01", json!({}), "sccm");
        if let Some(ci) = existing.cis.iter_mut().find(|ci| ci.id == nas) {
            ci.class = "nas".into();
            ci.attributes = BTreeMap::from([
                ("serial".to_owned(), AttrValue::String("X".into())),
                ("capacity_tb".to_owned(), AttrValue::Int(4)),
            ]);
        }
        let known = plan_with(&catalog, &SourcePrecedence::default(), &existing, &incoming);
        assert_eq!(matched(&known, "n1"), nas);
    }

    #[test]
    fn a_new_ci_cannot_start_retired() {
        let mut retired = item("s1", "server", "web-01", json!({"serial_number": "SN1"}));
        retired.status = Some(CiStatus::Retired);
        let plan = plan(&Memory::default(), &batch(vec![retired], vec![]));
        assert_eq!(conflict(&plan, "s1"), "a CI cannot be created retired");
    }

    #[test]
    fn items_of_one_batch_that_describe_the_same_ci_are_all_conflicts() {
        let mut existing = Memory::default();
        existing.add("server", "web-01", json!({"serial_number": "SN1"}), "sccm");
        let plan = plan(
            &existing,
            &batch(
                vec![
                    item("a", "server", "web-01", json!({"serial_number": "SN1"})),
                    item("b", "server", "web-01", json!({"fqdn": "x"})),
                    item("c", "server", "new", json!({"serial_number": "SN2"})),
                    item("d", "server", "new-again", json!({"serial_number": "SN2"})),
                    item("e", "server", "other", json!({"serial_number": "SN3"})),
                ],
                vec![],
            ),
        );
        let same_as = |other: &str| {
            format!(
                "it describes the same CI as item \"{other}\"; the batch must say one thing about it"
            )
        };
        assert_eq!(conflict(&plan, "a"), same_as("b"));
        assert_eq!(conflict(&plan, "b"), same_as("a"));
        assert_eq!(conflict(&plan, "c"), same_as("d"));
        assert_eq!(conflict(&plan, "d"), same_as("c"));
        assert!(matches!(action(&plan, "e"), ItemAction::Create { .. }));
    }

    #[test]
    fn a_virtual_machine_item_and_a_server_item_with_one_serial_number_are_one_ci() {
        // A server's search by serial number covers virtual machines, so creating both would
        // leave the server item two candidates next time.
        let plan = plan(
            &Memory::default(),
            &batch(
                vec![
                    item("vm", "virtual_machine", "a", json!({"serial_number": "S"})),
                    item("srv", "server", "b", json!({"serial_number": "S"})),
                    item("sw", "network_device", "c", json!({"serial_number": "S"})),
                ],
                vec![],
            ),
        );
        assert!(matches!(action(&plan, "vm"), ItemAction::Conflict { .. }));
        assert!(matches!(action(&plan, "srv"), ItemAction::Conflict { .. }));
        assert!(
            matches!(action(&plan, "sw"), ItemAction::Create { .. }),
            "a switch is never found by a server's search"
        );
    }

    #[test]
    fn every_violation_of_a_batch_is_reported_with_its_path() {
        let found = violations(
            &Memory::default(),
            &batch(
                vec![
                    item(
                        "s1",
                        "server",
                        "web-01",
                        json!({"cpu_count": 0, "colour": "red"}),
                    ),
                    item("s2", "mainframe", " ", json!({})),
                    item("s1", "configuration_item", "x", json!({})),
                ],
                vec![
                    link(local("s1"), RelationshipType::DependsOn, local("nope")),
                    link(local("s2"), RelationshipType::DependsOn, local("s2")),
                ],
            ),
        );
        let fields: Vec<&str> = found.iter().map(|(field, _)| field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "items[0].attributes.colour",
                "items[0].attributes.cpu_count",
                "items[1].name",
                "items[1].class",
                "items[2].class",
                "items[2].local_id",
                "relationships[0].target",
                "relationships[1].target",
            ]
        );
        assert_eq!(found[5].1, "\"s1\" is already the local id of items[0]");
        assert_eq!(found[6].1, "no item has the local id \"nope\"");
        assert_eq!(found[7].1, "a CI cannot be related to itself");
    }

    #[test]
    fn a_batch_that_contradicts_itself_is_rejected() {
        let found = violations(
            &Memory::default(),
            &batch(
                vec![
                    item("vm", "virtual_machine", "vm", json!({})),
                    item("h1", "server", "h1", json!({})),
                    item("h2", "server", "h2", json!({})),
                    item("shop", "business_service", "Shop", json!({})),
                    item("sw", "network_device", "sw", json!({})),
                ],
                vec![
                    link(local("vm"), RelationshipType::RunsOn, local("h1")),
                    link(local("vm"), RelationshipType::RunsOn, local("h2")),
                    link(local("shop"), RelationshipType::RunsOn, local("h1")),
                    link(local("h1"), RelationshipType::ConnectsTo, local("sw")),
                    link(local("sw"), RelationshipType::ConnectsTo, local("h1")),
                    link(local("vm"), RelationshipType::Provides, local("h1")),
                ],
            ),
        );
        assert_eq!(
            found,
            [
                (
                    "relationships[1].source".to_owned(),
                    "item \"vm\" may be the source of at most 1 runs_on relationship, and the \
                     batch already gives it relationships[0]"
                        .to_owned()
                ),
                (
                    "relationships[2].source".to_owned(),
                    "a business_service cannot be the source of a runs_on relationship".to_owned()
                ),
                (
                    "relationships[4]".to_owned(),
                    "repeats relationships[3]".to_owned()
                ),
                (
                    "relationships[5].target".to_owned(),
                    "a provides relationship must point to a business_service, not a server"
                        .to_owned()
                ),
            ]
        );
    }

    #[test]
    fn a_cycle_of_dependent_identification_names_the_items() {
        let found = reconcile(
            &schema_catalog(),
            &SourcePrecedence::default(),
            &batch(
                vec![
                    item("a", "database", "a", json!({})),
                    item("b", "server", "b", json!({})),
                    item("c", "application", "c", json!({})),
                    item("d", "application", "d", json!({})),
                ],
                vec![
                    // The database is identified on the server... no cycle yet.
                    link(local("a"), RelationshipType::RunsOn, local("b")),
                    // Applications are identified on any host: c on d, d on c.
                    link(local("c"), RelationshipType::RunsOn, local("d")),
                    link(local("d"), RelationshipType::RunsOn, local("c")),
                ],
            ),
            &Memory::default(),
            InvalidItems::Reject,
        )
        .expect_err("cycle");
        let found: Vec<(String, String)> = found
            .into_iter()
            .map(|v| (v.field, v.description))
            .collect();
        let text = "items \"c\", \"d\" are each identified through another of them: dependent \
                    identification forms a cycle";
        assert_eq!(
            found,
            [
                ("items[2]".to_owned(), text.to_owned()),
                ("items[3]".to_owned(), text.to_owned())
            ]
        );
    }

    #[test]
    fn skipping_invalid_items_plans_the_rest_and_reports_what_was_left_out() {
        let plan = reconcile(
            &ClassCatalog::builtin(),
            &SourcePrecedence::default(),
            &batch(
                vec![
                    item("good", "server", "web-01", json!({"serial_number": "SN1"})),
                    item("bad", "server", "web-02", json!({"cpu_count": "many"})),
                    item("db", "database", "orders", json!({"port": 5432})),
                ],
                vec![
                    link(local("db"), RelationshipType::RunsOn, local("good")),
                    link(local("db"), RelationshipType::DependsOn, local("bad")),
                    link(local("good"), RelationshipType::DependsOn, local("ghost")),
                ],
            ),
            &Memory::default(),
            InvalidItems::Skip,
        )
        .expect("skipping");
        assert_eq!(
            plan.items
                .iter()
                .map(|i| i.local_id.as_str())
                .collect::<Vec<_>>(),
            ["good", "db"]
        );
        assert_eq!(
            plan.relationships
                .iter()
                .map(|r| r.index)
                .collect::<Vec<_>>(),
            [0]
        );
        let fields: Vec<&str> = plan.skipped.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "items[1].attributes.cpu_count",
                "relationships[2].target",
                "relationships[1].target"
            ]
        );
        assert_eq!(plan.summary().skipped, 3);
    }

    #[test]
    fn a_batch_too_large_is_rejected_even_when_skipping() {
        let items = (0..=MAX_IMPORT_ITEMS)
            .map(|n| {
                item(
                    &format!("i{n}"),
                    "business_service",
                    &format!("s{n}"),
                    json!({}),
                )
            })
            .collect();
        let error = reconcile(
            &ClassCatalog::builtin(),
            &SourcePrecedence::default(),
            &batch(items, vec![]),
            &Memory::default(),
            InvalidItems::Skip,
        )
        .expect_err("too large");
        assert_eq!(
            error.to_string(),
            "items: must have at most 10000 items, not 10001"
        );
    }

    #[test]
    fn relationships_between_known_cis_are_found_in_either_direction_when_symmetric() {
        let mut existing = Memory::default();
        let host = existing.add("server", "h", json!({"serial_number": "H"}), "sccm");
        let switch = existing.add(
            "network_device",
            "sw",
            json!({"serial_number": "S"}),
            "sccm",
        );
        existing.relate(switch, RelationshipType::ConnectsTo, host);
        let plan = plan(
            &existing,
            &batch(
                vec![item("h", "server", "h", json!({"serial_number": "H"}))],
                vec![
                    link(
                        local("h"),
                        RelationshipType::ConnectsTo,
                        ImportRef::Existing(switch),
                    ),
                    link(
                        local("h"),
                        RelationshipType::DependsOn,
                        ImportRef::Existing(switch),
                    ),
                    link(
                        ImportRef::Existing(host),
                        RelationshipType::DependsOn,
                        ImportRef::Existing(switch),
                    ),
                ],
            ),
        );
        assert_eq!(
            plan.relationships
                .iter()
                .map(|r| r.action.clone())
                .collect::<Vec<_>>(),
            [
                RelationshipAction::Exists,
                RelationshipAction::Add,
                RelationshipAction::Exists
            ],
            "the third is the second spelled with ids"
        );
    }

    #[test]
    fn a_second_host_for_a_known_ci_is_a_conflict() {
        let mut existing = Memory::default();
        let old_host = existing.add("server", "old", json!({"serial_number": "OLD"}), "sccm");
        let new_host = existing.add("server", "new", json!({"serial_number": "NEW"}), "sccm");
        let vm = existing.add(
            "virtual_machine",
            "vm",
            json!({"cloud_resource_id": "i-1"}),
            "sccm",
        );
        existing.relate(vm, RelationshipType::RunsOn, old_host);
        let plan = plan(
            &existing,
            &batch(
                vec![item(
                    "vm",
                    "virtual_machine",
                    "vm",
                    json!({"cloud_resource_id": "i-1"}),
                )],
                vec![link(
                    local("vm"),
                    RelationshipType::RunsOn,
                    ImportRef::Existing(new_host),
                )],
            ),
        );
        let RelationshipAction::Conflict { reason } = &plan.relationships[0].action else {
            panic!("expected a conflict");
        };
        assert_eq!(
            reason.to_string(),
            "a CI may be the source of at most 1 runs_on relationship, and this one already has 1"
        );
    }

    #[test]
    fn relationships_to_unknown_or_retired_cis_or_conflicting_items_are_conflicts() {
        let mut existing = Memory::default();
        let gone = existing.add("server", "gone", json!({"serial_number": "G"}), "sccm");
        existing.cis[0].status = CiStatus::Retired;
        let nowhere = Uuid::from_u128(999);
        let plan = plan(
            &existing,
            &batch(
                vec![
                    item("app", "application", "crm", json!({})),
                    item("c", "cloud_resource", "bucket", json!({})),
                ],
                vec![
                    link(
                        local("app"),
                        RelationshipType::DependsOn,
                        ImportRef::Existing(nowhere),
                    ),
                    link(
                        local("app"),
                        RelationshipType::DependsOn,
                        ImportRef::Existing(gone),
                    ),
                    link(local("app"), RelationshipType::DependsOn, local("c")),
                ],
            ),
        );
        let reasons: Vec<String> = plan
            .relationships
            .iter()
            .map(|r| match &r.action {
                RelationshipAction::Conflict { reason } => reason.to_string(),
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(
            reasons,
            [
                format!("its target CI {nowhere} does not exist"),
                "the target CI is retired; retired CIs take no new relationships".to_owned(),
                "its target item \"c\" could not be reconciled".to_owned(),
            ]
        );
    }

    #[test]
    fn committing_a_plan_and_reconciling_again_changes_nothing() {
        let mut existing = Memory::default();
        existing.add(
            "server",
            "h",
            json!({"serial_number": "H", "os": "linux"}),
            "sccm",
        );
        let incoming = batch(
            vec![
                item(
                    "h",
                    "server",
                    "h",
                    json!({"serial_number": "H", "os": "windows"}),
                ),
                item(
                    "db",
                    "database",
                    "orders",
                    json!({"port": 5432, "engine": "postgresql"}),
                ),
                item("app", "application", "crm", json!({"version": "2.1"})),
                item(
                    "svc",
                    "business_service",
                    "CRM",
                    json!({"sla_tier": "gold"}),
                ),
            ],
            vec![
                link(local("db"), RelationshipType::RunsOn, local("h")),
                link(local("app"), RelationshipType::RunsOn, local("h")),
                link(local("app"), RelationshipType::DependsOn, local("db")),
                link(local("svc"), RelationshipType::DependsOn, local("app")),
            ],
        );
        let first = plan(&existing, &incoming);
        assert_eq!(
            first.summary(),
            PlanSummary {
                create: 3,
                update: 1,
                add_relationships: 4,
                ..PlanSummary::default()
            }
        );
        existing.commit(&first);
        let second = plan(&existing, &incoming);
        assert_eq!(
            second.summary(),
            PlanSummary {
                unchanged: 4,
                existing_relationships: 4,
                ..PlanSummary::default()
            }
        );
    }

    fn random_item() -> impl Strategy<Value = ImportItem> {
        let names = prop::sample::select(vec!["a", "b", "c"]);
        let classes =
            prop::sample::select(vec!["server", "virtual_machine", "database", "application"]);
        let serials = prop::option::of(prop::sample::select(vec!["S1", "S2"]));
        let fqdns = prop::option::of(prop::sample::select(vec!["f1", "f2"]));
        let os = prop::option::of(prop::sample::select(vec!["linux", "windows"]));
        let sources = prop::sample::select(vec!["api", "sccm", "nmap"]);
        let environments = prop::sample::select(vec![Environment::Production, Environment::Test]);
        let statuses = prop::option::of(prop::sample::select(vec![
            CiStatus::InUse,
            CiStatus::Maintenance,
        ]));
        (
            names,
            classes,
            serials,
            fqdns,
            os,
            sources,
            environments,
            statuses,
        )
            .prop_map(
                |(name, class, serial, fqdn, os, source, environment, status)| {
                    let mut attributes = BTreeMap::new();
                    match class {
                        "server" | "virtual_machine" => {
                            if let Some(serial) = serial {
                                attributes.insert("serial_number".to_owned(), json!(serial));
                            }
                            if let Some(os) = os {
                                attributes.insert("os".to_owned(), json!(os));
                            }
                            if let Some(fqdn) = fqdn {
                                attributes.insert("fqdn".to_owned(), json!(fqdn));
                            }
                        }
                        "database" => {
                            if let Some(fqdn) = fqdn {
                                attributes.insert("fqdn".to_owned(), json!(fqdn));
                            }
                            attributes.insert("port".to_owned(), json!(5432));
                        }
                        _ => {
                            if let Some(os) = os {
                                attributes.insert("version".to_owned(), json!(os));
                            }
                        }
                    }
                    ImportItem {
                        local_id: String::new(),
                        class: class.to_owned(),
                        name: name.to_owned(),
                        environment,
                        status,
                        attributes,
                        source: source.to_owned(),
                    }
                },
            )
    }

    fn random_batch() -> impl Strategy<Value = ImportBatch> {
        (1_usize..7).prop_flat_map(|count| {
            (
                prop::collection::vec(random_item(), count),
                prop::collection::vec(
                    (
                        0..count,
                        prop::sample::select(RelationshipType::ALL.to_vec()),
                        0..count,
                    ),
                    0..6,
                ),
            )
                .prop_map(|(mut items, links)| {
                    for (index, item) in items.iter_mut().enumerate() {
                        item.local_id = format!("i{index}");
                    }
                    let relationships = links
                        .into_iter()
                        .map(|(source, relationship, target)| {
                            link(
                                local(&format!("i{source}")),
                                relationship,
                                local(&format!("i{target}")),
                            )
                        })
                        .collect();
                    batch(items, relationships)
                })
        })
    }

    fn precedence() -> SourcePrecedence {
        SourcePrecedence {
            default_order: vec!["sccm".into(), "nmap".into()],
            by_field: BTreeMap::new(),
        }
    }

    proptest! {
        #[test]
        fn the_same_batch_against_the_same_cis_gives_the_same_plan(
            earlier in random_batch(), batch in random_batch(),
        ) {
            let catalog = ClassCatalog::builtin();
            let mut existing = Memory::default();
            if let Ok(plan) = reconcile(&catalog, &precedence(), &earlier, &existing, InvalidItems::Skip) {
                existing.commit(&plan);
            }
            let first = reconcile(&catalog, &precedence(), &batch, &existing, InvalidItems::Skip);
            let second = reconcile(&catalog, &precedence(), &batch, &existing.clone(), InvalidItems::Skip);
            prop_assert_eq!(first, second);
        }

        #[test]
        fn running_a_committed_import_again_creates_nothing_twice_and_settles(
            earlier in random_batch(), batch in random_batch(),
        ) {
            let catalog = ClassCatalog::builtin();
            let mut existing = Memory::default();
            if let Ok(plan) = reconcile(&catalog, &precedence(), &earlier, &existing, InvalidItems::Skip) {
                existing.commit(&plan);
            }
            let plan = reconcile(&catalog, &precedence(), &batch, &existing, InvalidItems::Skip)
                .expect("skipping never rejects a small batch");
            existing.commit(&plan);
            let again = reconcile(&catalog, &precedence(), &batch, &existing, InvalidItems::Skip)
                .expect("skipping never rejects a small batch");
            // Nothing is ever created twice by running an import again.
            for (before, after) in plan.items.iter().zip(&again.items) {
                prop_assert_eq!(before.index, after.index);
                if matches!(before.action, ItemAction::Create { .. }) {
                    prop_assert!(
                        !matches!(after.action, ItemAction::Create { .. }),
                        "{:?} then {:?}", before, after
                    );
                }
            }
            // A plan without conflicts converges at once. (A conflict is left for a person, and
            // committing the rest can resolve it — an update that moves a serial number away
            // ends an ambiguity — after which the batch may read differently.)
            let conflicts = plan.items.iter().any(|i| matches!(i.action, ItemAction::Conflict { .. }))
                || plan.relationships.iter().any(|r| matches!(r.action, RelationshipAction::Conflict { .. }));
            if !conflicts {
                for after in &again.items {
                    prop_assert!(matches!(after.action, ItemAction::Unchanged { .. }), "{:?}", after);
                }
                for after in &again.relationships {
                    prop_assert_eq!(&after.action, &RelationshipAction::Exists, "{:?}", after);
                }
            }
        }
    }
}
