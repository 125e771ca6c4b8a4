//! Reconciliation without a database: an in-memory [`ExistingCis`] whose commit does what the
//! real one does, and builders for items, batches and plans.

use std::collections::BTreeSet;

use chrono::TimeZone;
use proptest::prelude::*;
use serde_json::json;

use super::*;
use crate::domain::class::{AttributeDef, AttributeType, CiClass, ROOT_CLASS};

mod batches;
mod commit;
mod identify;
mod one_ci;
mod properties;
mod reconcile;
mod relationships;

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

    /// Commits `plan` as the service does ([`ReconciliationPlan::commit`]), checking that each
    /// update changes exactly what the preview said.
    fn commit(&mut self, plan: &ReconciliationPlan) {
        let current: HashMap<Uuid, Ci> = self.cis.iter().map(|ci| (ci.id, ci.clone())).collect();
        let mut next_id = self.next_id;
        let committed = plan
            .commit(&current, "acme", "tester", at(), &mut || {
                next_id += 1;
                Uuid::from_u128(next_id)
            })
            .expect("the plan commits");
        self.next_id = next_id;
        let previewed: HashMap<Uuid, &Vec<FieldChange>> = plan
            .items
            .iter()
            .filter_map(|item| match &item.action {
                ItemAction::Update { ci_id, changes, .. } => Some((*ci_id, changes)),
                _ => None,
            })
            .collect();
        for write in committed.cis {
            assert_eq!(write.note.as_deref(), Some(IMPORT_NOTE));
            match write.read_version {
                None => self.cis.push(write.ci),
                Some(version) => {
                    assert_eq!(
                        Some(&&write.changes),
                        previewed.get(&write.ci.id),
                        "preview equals commit"
                    );
                    let stored = self
                        .cis
                        .iter_mut()
                        .find(|ci| ci.id == write.ci.id)
                        .expect("planned CI exists");
                    assert_eq!(stored.version, version);
                    *stored = write.ci;
                }
            }
        }
        for added in committed.relationships {
            self.relationships
                .push((added.source, added.relationship, added.target));
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
