//! Imports on the wire: a staged request read into the domain's batch, and a plan written as the
//! preview (and, once committed, the record) a caller reads.

use std::collections::{BTreeMap, HashMap};

use base64::{Engine as _, engine::general_purpose::STANDARD as B64};
use desk_kit::ids;
use desk_proto::cmdb::v1 as pb;
use prost::Message as _;
use uuid::Uuid;

use super::{CmdbApi, CmdbResult, convert};
use crate::{
    domain::{
        self as d, Environment, ImportBatch, ImportItem, ImportRef, ImportRelationship,
        ImportState, InvalidItems, ItemAction, RelationshipAction, StageImport, Violations,
        identification::PlannedEnd,
    },
    store::{StoreError, entities},
};

impl CmdbApi {
    /// A `StageImport` request (as staged, or as stored to commit) as the domain's, with what
    /// is wrong on the wire.
    pub(super) fn parse_stage(
        &self,
        request: &pb::StageImportRequest,
    ) -> (StageImport, Violations) {
        let mut found = Violations::new();
        let violations = &mut found;
        let source = request.source.trim().to_owned();
        let items = request
            .items
            .iter()
            .enumerate()
            .map(|(index, item)| ImportItem {
                local_id: item.local_id.clone(),
                class: item.class.clone(),
                name: item.name.clone(),
                environment: convert::environment(item.environment)
                    .unwrap_or(Environment::Production),
                status: convert::status(item.status),
                attributes: convert::attributes_to_json(
                    &format!("items[{index}].attributes"),
                    &item.attributes,
                    violations,
                ),
                source: source.clone(),
            })
            .collect();
        let reference = |text: &str| match ids::parse_id(text) {
            Some(parsed) if parsed.region == self.region => ImportRef::Existing(parsed.uuid),
            _ => ImportRef::Local(text.to_owned()),
        };
        let relationships = request
            .relationships
            .iter()
            .enumerate()
            .filter_map(
                |(index, rel)| match convert::relationship_type(rel.r#type) {
                    Some(relationship) => Some(ImportRelationship {
                        source: reference(&rel.source),
                        relationship,
                        target: reference(&rel.target),
                    }),
                    None => {
                        violations.push(
                            format!("relationships[{index}].type"),
                            "required: one of the relationship types",
                        );
                        None
                    }
                },
            )
            .collect();
        let command = StageImport {
            source,
            batch: ImportBatch {
                items,
                relationships,
            },
            invalid: if request.skip_invalid {
                InvalidItems::Skip
            } else {
                InvalidItems::Reject
            },
        };
        (command, found)
    }

    pub(super) fn plan_to_pb(
        &self,
        batch: &ImportBatch,
        plan: &d::ReconciliationPlan,
        created: &HashMap<String, Uuid>,
    ) -> (Vec<pb::PlannedItem>, Vec<pb::PlannedRelationship>) {
        let id = |uuid: Uuid| ids::format_id(&self.region, uuid);
        let wire_ref = |reference: &ImportRef| match reference {
            ImportRef::Local(local_id) => local_id.clone(),
            ImportRef::Existing(uuid) => id(*uuid),
        };
        // Skipped items and relationships, one entry each with every reason it was left out for.
        let mut skipped_items: BTreeMap<usize, Vec<String>> = BTreeMap::new();
        let mut skipped_relationships: BTreeMap<usize, Vec<String>> = BTreeMap::new();
        for violation in plan.skipped.iter() {
            let reason = format!("{}: {}", violation.field, violation.description);
            if let Some(index) = indexed(&violation.field, "items[") {
                skipped_items.entry(index).or_default().push(reason);
            } else if let Some(index) = indexed(&violation.field, "relationships[") {
                skipped_relationships.entry(index).or_default().push(reason);
            }
        }
        let items = plan
            .items
            .iter()
            .map(|item| {
                let mut out = pb::PlannedItem {
                    local_id: item.local_id.clone(),
                    ..Default::default()
                };
                match &item.action {
                    ItemAction::Create { ci } => {
                        out.action = pb::PlannedAction::Create as i32;
                        out.ci_id = created
                            .get(&item.local_id)
                            .map(|u| id(*u))
                            .unwrap_or_default();
                        out.reason = format!("new {}", ci.class);
                    }
                    ItemAction::Update {
                        ci_id,
                        changes,
                        skipped_by_precedence,
                        matched_by,
                        ..
                    } => {
                        out.action = pb::PlannedAction::Update as i32;
                        out.ci_id = id(*ci_id);
                        out.changes = convert::field_changes_to_pb(changes);
                        out.skipped_by_precedence = skipped_by_precedence
                            .iter()
                            .map(|s| s.field.clone())
                            .collect();
                        out.reason = format!("matched by {matched_by}");
                    }
                    ItemAction::Unchanged {
                        ci_id,
                        skipped_by_precedence,
                        matched_by,
                    } => {
                        out.action = pb::PlannedAction::Unchanged as i32;
                        out.ci_id = id(*ci_id);
                        out.skipped_by_precedence = skipped_by_precedence
                            .iter()
                            .map(|s| s.field.clone())
                            .collect();
                        out.reason = format!("matched by {matched_by}");
                    }
                    ItemAction::Conflict { reason } => {
                        out.action = pb::PlannedAction::Conflict as i32;
                        out.reason = reason.to_string();
                    }
                }
                out
            })
            .chain(skipped_items.iter().map(|(index, reasons)| {
                pb::PlannedItem {
                    local_id: batch
                        .items
                        .get(*index)
                        .map(|i| i.local_id.clone())
                        .unwrap_or_default(),
                    action: pb::PlannedAction::Skipped as i32,
                    reason: reasons.join("; "),
                    ..Default::default()
                }
            }))
            .collect();
        let end = |end: &PlannedEnd| match end {
            PlannedEnd::Existing(uuid) => id(*uuid),
            PlannedEnd::New { local_id } => created
                .get(local_id)
                .map_or_else(|| local_id.clone(), |u| id(*u)),
            PlannedEnd::Unresolved { local_id } => local_id.clone(),
        };
        let relationships = plan
            .relationships
            .iter()
            .map(|rel| {
                let (action, reason) = match &rel.action {
                    RelationshipAction::Add => (pb::PlannedAction::Create, String::new()),
                    RelationshipAction::Exists => {
                        (pb::PlannedAction::Unchanged, "already exists".to_owned())
                    }
                    RelationshipAction::Conflict { reason } => {
                        (pb::PlannedAction::Conflict, reason.to_string())
                    }
                };
                pb::PlannedRelationship {
                    source: end(&rel.source),
                    r#type: convert::relationship_type_to_pb(rel.relationship) as i32,
                    target: end(&rel.target),
                    action: action as i32,
                    reason,
                }
            })
            .chain(skipped_relationships.iter().map(|(index, reasons)| {
                let original = batch.relationships.get(*index);
                pb::PlannedRelationship {
                    source: original.map(|r| wire_ref(&r.source)).unwrap_or_default(),
                    r#type: original.map_or(0, |r| {
                        convert::relationship_type_to_pb(r.relationship) as i32
                    }),
                    target: original.map(|r| wire_ref(&r.target)).unwrap_or_default(),
                    action: pb::PlannedAction::Skipped as i32,
                    reason: reasons.join("; "),
                }
            }))
            .collect();
        (items, relationships)
    }

    pub(super) fn batch_pb(
        &self,
        row: &entities::import::Model,
        items: Vec<pb::PlannedItem>,
        relationships: Vec<pb::PlannedRelationship>,
    ) -> pb::ImportBatch {
        let count = |action: pb::PlannedAction| {
            items.iter().filter(|i| i.action == action as i32).count() as i32
        };
        let count_relationships = |action: pb::PlannedAction| {
            relationships
                .iter()
                .filter(|r| r.action == action as i32)
                .count() as i32
        };
        pb::ImportBatch {
            id: ids::format_id(&self.region, row.id),
            source: row.source.clone(),
            state: match ImportState::parse(&row.state) {
                Some(ImportState::Staged) => pb::ImportState::Staged,
                Some(ImportState::Committed) => pb::ImportState::Committed,
                Some(ImportState::Discarded) | None => pb::ImportState::Discarded,
            } as i32,
            creates: count(pb::PlannedAction::Create),
            updates: count(pb::PlannedAction::Update),
            unchanged: count(pb::PlannedAction::Unchanged),
            conflicts: count(pb::PlannedAction::Conflict),
            skipped: count(pb::PlannedAction::Skipped),
            relationship_creates: count_relationships(pb::PlannedAction::Create),
            relationship_unchanged: count_relationships(pb::PlannedAction::Unchanged),
            relationship_conflicts: count_relationships(pb::PlannedAction::Conflict),
            relationship_skipped: count_relationships(pb::PlannedAction::Skipped),
            items,
            relationships,
            created_by: row.created_by.clone(),
            create_time: convert::timestamp(row.created_at),
            commit_time: row.finished_at.and_then(convert::timestamp),
        }
    }

    pub(super) fn decode_plan(row: &entities::import::Model) -> CmdbResult<pb::ImportBatch> {
        let bytes = B64
            .decode(&row.plan)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        Ok(pb::ImportBatch::decode(bytes.as_slice())
            .map_err(|e| StoreError::Corrupt(e.to_string()))?)
    }
}

/// A batch without its items and relationships: what a list page and the `import.committed`
/// event carry, since a batch of thousands of items fits neither (the proto says so).
pub(super) fn summary(batch: &pb::ImportBatch) -> pb::ImportBatch {
    pb::ImportBatch {
        items: Vec::new(),
        relationships: Vec::new(),
        ..batch.clone()
    }
}

/// `items[3].attributes.os` with prefix `items[` → `Some(3)`.
fn indexed(field: &str, prefix: &str) -> Option<usize> {
    field.strip_prefix(prefix)?.split(']').next()?.parse().ok()
}
