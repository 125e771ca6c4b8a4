//! Discovery imports: stage a batch and preview its plan, then commit or discard it.

use super::CmdbError;
use super::convert;
use super::lookup;
use super::{Caller, CmdbApi, CmdbResult};
use crate::domain as d;
use crate::domain::Ci;
use crate::domain::ClassCatalog;
use crate::domain::Environment;
use crate::domain::ImportBatch;
use crate::domain::ImportItem;
use crate::domain::ImportRef;
use crate::domain::ImportRelationship;
use crate::domain::InvalidItems;
use crate::domain::ItemAction;
use crate::domain::Provenance;
use crate::domain::RelationshipAction;
use crate::domain::Violations;
use crate::domain::identification::PlannedEnd;
use crate::domain::impact::ImpactEdge;
use crate::events::Fact;
use crate::store::HistoryRecord;
use crate::store::StoredRelationship;
use crate::store::entities;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use desk_kit::events::OutgoingEvent;
use desk_kit::ids;
use desk_kit::paging;
use desk_proto::cmdb::v1 as pb;
use prost::Message as _;
use std::collections::BTreeMap;
use std::collections::HashMap;
use uuid::Uuid;

/// A committed import that wrote at least this many CIs and relationships refreshes the
/// database's planner statistics (see `CmdbStore::refresh_statistics`).
const BULK_WRITE_ROWS: usize = 1_000;

impl CmdbApi {
    fn batch_from_pb(
        &self,
        request: &pb::StageImportRequest,
        violations: &mut Violations,
    ) -> ImportBatch {
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
        ImportBatch {
            items,
            relationships,
        }
    }

    /// Plans a batch against the current CMDB; the same input against the same CMDB gives the same plan.
    async fn plan<C: sea_orm::ConnectionTrait>(
        &self,
        conn: &C,
        caller: &Caller,
        catalog: &ClassCatalog,
        request: &pb::StageImportRequest,
    ) -> CmdbResult<(ImportBatch, d::ReconciliationPlan)> {
        let mut violations = Violations::new();
        if request.source.trim().is_empty() {
            violations.push("source", "required: the discovery source's name");
        }
        let batch = self.batch_from_pb(request, &mut violations);
        violations.into_result()?;
        let invalid = if request.skip_invalid {
            InvalidItems::Skip
        } else {
            InvalidItems::Reject
        };
        let precedence = self.precedence(&caller.tenant).await?;
        let prefetched = lookup::Prefetched::load(
            &self.store,
            conn,
            catalog,
            &caller.tenant,
            &precedence,
            &batch,
            invalid,
        )
        .await?;
        let lookup = lookup::StoreLookup::new(
            self.store.clone(),
            conn,
            catalog,
            &caller.tenant,
            prefetched,
        );
        let plan = tokio::task::block_in_place(|| {
            d::reconcile(catalog, &precedence, &batch, &lookup, invalid)
        })?;
        if let Some(error) = lookup.take_error() {
            return Err(error.into());
        }
        Ok((batch, plan))
    }

    fn plan_to_pb(
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

    fn batch_pb(
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
            state: match row.state.as_str() {
                "staged" => pb::ImportState::Staged,
                "committed" => pb::ImportState::Committed,
                _ => pb::ImportState::Discarded,
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

    pub async fn stage_import(
        &self,
        caller: &Caller,
        request: pb::StageImportRequest,
    ) -> CmdbResult<pb::ImportBatch> {
        Self::require_write(caller)?;
        let catalog = self.catalog(&caller.tenant).await?;
        let (batch, plan) = self
            .plan(self.store.db().connection(), caller, &catalog, &request)
            .await?;
        let (items, relationships) = self.plan_to_pb(&batch, &plan, &HashMap::new());
        let preview = pb::ImportBatch {
            items,
            relationships,
            ..Default::default()
        };
        let row = entities::import::Model {
            id: ids::new_uuid(),
            tenant_id: caller.tenant.clone(),
            source: request.source.trim().to_owned(),
            state: "staged".into(),
            request: B64.encode(request.encode_to_vec()),
            plan: B64.encode(preview.encode_to_vec()),
            created_by: caller.subject.clone(),
            created_at: self.now(),
            finished_at: None,
        };
        let txn = self.store.begin().await?;
        self.store.insert_import(&txn, row.clone()).await?;
        self.store.commit(txn).await?;
        Ok(self.batch_pb(&row, preview.items, preview.relationships))
    }

    async fn import_row(&self, caller: &Caller, id: &str) -> CmdbResult<entities::import::Model> {
        let id = ids::parse_id(id)
            .filter(|p| p.region == self.region)
            .map(|p| p.uuid)
            .ok_or(CmdbError::NotFound("import"))?;
        self.store
            .import(self.store.db().connection(), &caller.tenant, id)
            .await?
            .ok_or(CmdbError::NotFound("import"))
    }

    fn decode_plan(row: &entities::import::Model) -> CmdbResult<pb::ImportBatch> {
        let bytes = B64
            .decode(&row.plan)
            .map_err(|e| crate::store::StoreError::Corrupt(e.to_string()))?;
        Ok(pb::ImportBatch::decode(bytes.as_slice())
            .map_err(|e| crate::store::StoreError::Corrupt(e.to_string()))?)
    }

    pub async fn get_import(&self, caller: &Caller, id: &str) -> CmdbResult<pb::ImportBatch> {
        Self::require_read(caller)?;
        let row = self.import_row(caller, id).await?;
        let plan = Self::decode_plan(&row)?;
        Ok(self.batch_pb(&row, plan.items, plan.relationships))
    }

    pub async fn discard_import(&self, caller: &Caller, id: &str) -> CmdbResult<pb::ImportBatch> {
        Self::require_write(caller)?;
        let mut row = self.import_row(caller, id).await?;
        let txn = self.store.begin().await?;
        if !self
            .store
            .finish_import(
                &txn,
                &caller.tenant,
                row.id,
                "discarded",
                row.plan.clone(),
                self.now(),
            )
            .await?
        {
            return Err(CmdbError::Precondition(format!(
                "the import is already {}",
                row.state
            )));
        }
        self.store.commit(txn).await?;
        row.state = "discarded".into();
        row.finished_at = Some(self.now());
        let plan = Self::decode_plan(&row)?;
        Ok(self.batch_pb(&row, plan.items, plan.relationships))
    }

    /// Applies the staged plan atomically. The plan is computed again and must equal the preview,
    /// so what commit does is exactly what the caller saw; if the CMDB changed in between, the
    /// caller stages again.
    pub async fn commit_import(&self, caller: &Caller, id: &str) -> CmdbResult<pb::ImportBatch> {
        Self::require_write(caller)?;
        let catalog = self.catalog(&caller.tenant).await?;
        let mut row = self.import_row(caller, id).await?;
        if row.state != "staged" {
            return Err(CmdbError::Precondition(format!(
                "the import is already {}",
                row.state
            )));
        }
        let request_bytes = B64
            .decode(&row.request)
            .map_err(|e| crate::store::StoreError::Corrupt(e.to_string()))?;
        let request = pb::StageImportRequest::decode(request_bytes.as_slice())
            .map_err(|e| crate::store::StoreError::Corrupt(e.to_string()))?;
        // Plan again inside the transaction that applies the plan, with the tenant's import
        // commits serialized: two batches describing the same new CI cannot both create it.
        let txn = self.store.begin().await?;
        self.store.lock_imports(&txn, &caller.tenant).await?;
        let (batch, plan) = self.plan(&*txn, caller, &catalog, &request).await?;
        let staged = Self::decode_plan(&row)?;
        let (items, relationships) = self.plan_to_pb(&batch, &plan, &HashMap::new());
        if items != staged.items || relationships != staged.relationships {
            return Err(CmdbError::Precondition("the CMDB changed since this import was staged; stage it again to preview the new plan".into()));
        }

        // Updates are written one by one, as they come (each checks its version); new CIs,
        // relationships, history and events a few hundred rows per statement, in plan order.
        let now = self.now();
        let actor = caller.actor_pb();
        let mut created: HashMap<String, Uuid> = HashMap::new();
        let mut written: Vec<WrittenCi> = Vec::new();
        for item in &plan.items {
            let source = batch
                .items
                .get(item.index)
                .map_or(item.source.clone(), |i| i.source.clone());
            let provenance = Provenance {
                source: source.clone(),
                actor: caller.subject.clone(),
                set_at: now,
            };
            match &item.action {
                ItemAction::Create { ci } => {
                    let ci =
                        ci.clone()
                            .into_ci(ids::new_uuid(), caller.tenant.clone(), &provenance);
                    created.insert(item.local_id.clone(), ci.id);
                    written.push(WrittenCi {
                        ci,
                        source,
                        changes: Vec::new(),
                        created: true,
                    });
                }
                ItemAction::Update {
                    ci_id,
                    expected_version,
                    patch,
                    ..
                } => {
                    let mut ci = self
                        .store
                        .find(&*txn, &catalog, &caller.tenant, *ci_id)
                        .await?
                        .ok_or(CmdbError::NotFound("CI"))?;
                    if ci.version != *expected_version {
                        return Err(CmdbError::Stale {
                            expected: *expected_version,
                            current: ci.version,
                        });
                    }
                    let changes = ci.apply_patch(patch, &provenance)?.into_vec();
                    if !self.store.update(&txn, &ci, *expected_version).await? {
                        return Err(CmdbError::Stale {
                            expected: *expected_version,
                            current: expected_version + 1,
                        });
                    }
                    written.push(WrittenCi {
                        ci,
                        source,
                        changes,
                        created: false,
                    });
                }
                ItemAction::Unchanged { .. } | ItemAction::Conflict { .. } => {}
            }
        }
        let new_cis: Vec<Ci> = written
            .iter()
            .filter(|w| w.created)
            .map(|w| w.ci.clone())
            .collect();
        self.store
            .insert_many(&txn, &new_cis, &caller.subject)
            .await?;
        self.store
            .append_histories(
                &txn,
                written
                    .iter()
                    .map(|w| HistoryRecord {
                        ci: &w.ci,
                        actor_id: &caller.subject,
                        actor_roles: &caller.roles,
                        source: &w.source,
                        action: if w.created { "created" } else { "updated" },
                        changes: &w.changes,
                        note: Some("import"),
                        at: now,
                    })
                    .collect(),
            )
            .await?;
        let mut events: Vec<OutgoingEvent> = written
            .iter()
            .map(|w| {
                let fact = if w.created {
                    Fact::CiCreated {
                        source: w.source.clone(),
                    }
                } else {
                    Fact::CiUpdated {
                        changes: w.changes.clone(),
                        source: w.source.clone(),
                    }
                };
                self.ci_event(caller, &actor, &w.ci, fact)
            })
            .collect();

        let mut edges = Vec::new();
        let mut relationships = Vec::new();
        for rel in &plan.relationships {
            if rel.action != RelationshipAction::Add {
                continue;
            }
            let resolve = |end: &PlannedEnd| match end {
                PlannedEnd::Existing(uuid) => Some(*uuid),
                PlannedEnd::New { local_id } => created.get(local_id).copied(),
                PlannedEnd::Unresolved { .. } => None,
            };
            let (Some(source), Some(target)) = (resolve(&rel.source), resolve(&rel.target)) else {
                continue;
            };
            let stored = StoredRelationship {
                id: ids::new_uuid(),
                source_id: source,
                rel_type: rel.relationship,
                target_id: target,
                created_by: caller.subject.clone(),
                created_at: now,
            };
            let wire = self.relationship_to_pb(&stored, &HashMap::new());
            events.push(
                Fact::RelationshipAdded {
                    relationship: wire.clone(),
                }
                .into_event(
                    &caller.tenant,
                    &wire.id,
                    &pb::ConfigurationItem::default(),
                    &actor,
                ),
            );
            relationships.push(stored);
            edges.push(ImpactEdge {
                source,
                relationship: rel.relationship,
                target,
            });
        }
        self.store
            .insert_relationships(&txn, &caller.tenant, &relationships)
            .await?;
        self.store.stage_many(&txn, events, now).await?;
        let touched: Vec<Ci> = written.into_iter().map(|w| w.ci).collect();
        let (items, relationships) = self.plan_to_pb(&batch, &plan, &created);
        let committed = pb::ImportBatch {
            items,
            relationships,
            ..Default::default()
        };
        if !self
            .store
            .finish_import(
                &txn,
                &caller.tenant,
                row.id,
                "committed",
                B64.encode(committed.encode_to_vec()),
                now,
            )
            .await?
        {
            return Err(CmdbError::Precondition(
                "the import was committed or discarded meanwhile".into(),
            ));
        }
        row.state = "committed".into();
        row.finished_at = Some(now);
        let result = self.batch_pb(&row, committed.items, committed.relationships);
        self.store
            .stage(
                &txn,
                Fact::ImportCommitted {
                    batch: summary(&result),
                }
                .into_event(
                    &caller.tenant,
                    &result.id,
                    &pb::ConfigurationItem::default(),
                    &caller.actor_pb(),
                ),
                now,
            )
            .await?;
        self.store.commit(txn).await?;
        self.update_graph(&caller.tenant, &catalog, &touched, &edges, &[]);
        if touched.len() + edges.len() >= BULK_WRITE_ROWS {
            let store = self.store.clone();
            tokio::spawn(async move {
                if let Err(error) = store.refresh_statistics().await {
                    tracing::warn!(error = %error, "refreshing planner statistics failed");
                }
            });
        }
        Ok(result)
    }

    pub async fn list_imports(
        &self,
        caller: &Caller,
        request: pb::ListImportsRequest,
    ) -> CmdbResult<pb::ListImportsResponse> {
        Self::require_read(caller)?;
        let state = match pb::ImportState::try_from(request.state)
            .unwrap_or(pb::ImportState::Unspecified)
        {
            pb::ImportState::Unspecified => None,
            pb::ImportState::Staged => Some("staged"),
            pb::ImportState::Committed => Some("committed"),
            pb::ImportState::Discarded => Some("discarded"),
        };
        let mut violations = Violations::new();
        let before = if request.page_token.is_empty() {
            None
        } else {
            let cursor = paging::decode_cursor::<Uuid>(&request.page_token);
            if cursor.is_none() {
                violations.push(
                    "page_token",
                    "not a token from a previous page of this list",
                );
            }
            cursor
        };
        violations.into_result()?;
        let limit = paging::page_size(request.page_size, 20, 100);
        let rows = self
            .store
            .imports(
                self.store.db().connection(),
                &caller.tenant,
                state,
                before,
                limit,
            )
            .await?;
        let next_page_token = match rows.last() {
            Some(last) if rows.len() as u64 == limit => paging::encode_cursor(&last.id),
            _ => String::new(),
        };
        let mut batches = Vec::new();
        for row in &rows {
            let plan = Self::decode_plan(row)?;
            batches.push(summary(&self.batch_pb(row, plan.items, plan.relationships)));
        }
        Ok(pb::ListImportsResponse {
            batches,
            next_page_token,
        })
    }
}

/// A CI an import commit creates or updates, with what its history entry and event say.
struct WrittenCi {
    ci: Ci,
    source: String,
    changes: Vec<d::FieldChange>,
    created: bool,
}

/// A batch without its items and relationships: what a list page and the `import.committed`
/// event carry, since a batch of thousands of items fits neither (the proto says so).
fn summary(batch: &pb::ImportBatch) -> pb::ImportBatch {
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
