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
//!
//! # Layout
//!
//! - this module: rules and keys, batches and plans — the types the rest of the CMDB sees;
//! - `precedence`: [`SourcePrecedence`], which source's value wins;
//! - `check`: the validation of a batch, whole, before anything is identified;
//! - `commit`: what committing a plan writes;
//! - `one_ci`: identifying one CI outside a batch, as a create through the API is;
//! - `planner`: [`reconcile`] — identification of each item, then the plan of each item and
//!   relationship.

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
use super::string_enum::string_enum;
use super::validate::{self, FieldViolation, ID_MAX, NAME_MAX, SOURCE_MAX, Violations};

mod check;
mod commit;
mod one_ci;
mod planner;
mod precedence;

pub use commit::{AddedRelationship, CommittedPlan, IMPORT_NOTE};
pub use one_ci::{Identification, identify_new_ci, keys_of_new_ci};
pub use planner::reconcile;
pub use precedence::{MAX_ORDERED_FIELDS, SourcePrecedence};

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

/// The key values `rule` needs from a CI with this name, environment and attribute values, or
/// `None` when one is missing.
pub(crate) fn key_parts(
    rule: &IdentificationRule,
    name: &str,
    environment: Environment,
    values: &BTreeMap<String, AttrValue>,
) -> Option<Vec<KeyPart>> {
    rule.attributes
        .iter()
        .map(|field| match field.as_str() {
            "name" => Some(KeyPart::Name(name.to_owned())),
            "environment" => Some(KeyPart::Environment(environment)),
            attribute => values.get(attribute).map(|value| KeyPart::Attribute {
                name: attribute.to_owned(),
                value: value.clone(),
            }),
        })
        .collect()
}

/// What one key's search decided, when it found anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Judged {
    Matched { ci: Box<Ci>, rule: String },
    Ambiguous { rule: String, ci_ids: Vec<Uuid> },
}

/// Judges what the store found for `key`: only CIs of a class in scope that are not retired
/// count; one is a match, several an ambiguity, none hands over to the next rule (`None`).
pub(crate) fn judge(key: &IdentKey, found: Vec<Ci>) -> Option<Judged> {
    let mut found: Vec<Ci> = found
        .into_iter()
        .filter(|ci| ci.status != CiStatus::Retired && key.classes.contains(&ci.class))
        .collect();
    found.sort_by_key(|ci| ci.id);
    found.dedup_by_key(|ci| ci.id);
    match found.len() {
        0 => None,
        1 => Some(Judged::Matched {
            ci: Box::new(found.remove(0)),
            rule: key.rule.clone(),
        }),
        _ => Some(Judged::Ambiguous {
            rule: key.rule.clone(),
            ci_ids: found.iter().map(|ci| ci.id).collect(),
        }),
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

string_enum! {
    /// Where a staged batch is in its life: staged, then committed or discarded, for good.
    pub enum ImportState {
        /// Previewed; a commit applies exactly the preview, if the CMDB has not changed since.
        Staged => "staged",
        Committed => "committed",
        Discarded => "discarded",
    }
}

/// A batch that was committed or discarded already: it takes neither again. The text is
/// user-facing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the import is already {0}")]
pub struct ImportFinished(pub ImportState);

impl ImportState {
    /// Whether a batch in this state may still be committed or discarded.
    pub fn check_open(self) -> Result<(), ImportFinished> {
        match self {
            Self::Staged => Ok(()),
            finished => Err(ImportFinished(finished)),
        }
    }
}

/// `StageImport`: a batch from one discovery source, and what to do with its invalid items.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageImport {
    /// The discovery source every item comes from, trimmed.
    pub source: String,
    pub batch: ImportBatch,
    pub invalid: InvalidItems,
}

impl StageImport {
    /// What the request gets wrong besides its batch (which [`reconcile`] checks), added to what
    /// parsing it found.
    pub fn check(&self, mut found: Violations) -> Result<(), Violations> {
        if self.source.trim().is_empty() {
            found.push("source", "required: the discovery source's name");
        }
        found.into_result()
    }
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

#[cfg(test)]
mod tests;
