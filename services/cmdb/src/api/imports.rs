//! Discovery imports: stage a batch and preview its plan, then commit or discard it.
//!
//! A commit plans the batch again inside the transaction that writes it, with the tenant's
//! identifications taken in turn, and writes only if the plan is the preview the caller saw; what
//! it writes is the domain's (`ReconciliationPlan::commit`).

use std::collections::HashMap;

use base64::{Engine as _, engine::general_purpose::STANDARD as B64};
use desk_kit::{auth::Caller, events::OutgoingEvent, ids, paging};
use desk_proto::cmdb::v1 as pb;
use prost::Message as _;
use uuid::Uuid;

use super::{CmdbApi, CmdbError, CmdbResult, IndexChange, import_wire::summary, lookup};
use crate::{
    domain::{
        self as d, Ci, ClassCatalog, ImportState, Permission, StageImport, Violations, authorize,
        impact::ImpactEdge,
    },
    events::Fact,
    store::{HistoryRecord, StoreError, StoredRelationship, entities},
};

/// A committed import that wrote at least this many CIs and relationships refreshes the
/// database's planner statistics (see `CmdbStore::refresh_statistics`).
const BULK_WRITE_ROWS: usize = 1_000;

impl CmdbApi {
    /// Plans a batch against the current CMDB, read through `conn`; the same input against the
    /// same CMDB gives the same plan.
    async fn plan<C: sea_orm::ConnectionTrait>(
        &self,
        conn: &C,
        caller: &Caller,
        catalog: &ClassCatalog,
        command: &StageImport,
    ) -> CmdbResult<d::ReconciliationPlan> {
        let precedence = self.precedence(&caller.tenant).await?;
        let prefetched = lookup::Prefetched::load(
            &self.store,
            conn,
            catalog,
            &caller.tenant,
            &precedence,
            &command.batch,
            command.invalid,
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
            d::reconcile(
                catalog,
                &precedence,
                &command.batch,
                &lookup,
                command.invalid,
            )
        })?;
        if let Some(error) = lookup.take_error() {
            return Err(error.into());
        }
        Ok(plan)
    }

    pub async fn stage_import(
        &self,
        caller: &Caller,
        request: pb::StageImportRequest,
    ) -> CmdbResult<pb::ImportBatch> {
        let (command, found) = self.parse_stage(&request);
        authorize(&caller.roles, Permission::Write)?;
        command.check(found)?;
        let catalog = self.catalog(&caller.tenant).await?;
        let plan = self
            .plan(self.store.db().connection(), caller, &catalog, &command)
            .await?;
        let (items, relationships) = self.plan_to_pb(&command.batch, &plan, &HashMap::new());
        let preview = pb::ImportBatch {
            items,
            relationships,
            ..Default::default()
        };
        let row = entities::import::Model {
            id: ids::new_uuid(),
            tenant_id: caller.tenant.clone(),
            source: command.source.clone(),
            state: ImportState::Staged.as_str().into(),
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

    pub async fn get_import(&self, caller: &Caller, id: &str) -> CmdbResult<pb::ImportBatch> {
        authorize(&caller.roles, Permission::Read)?;
        let row = self.import_row(caller, id).await?;
        let plan = Self::decode_plan(&row)?;
        Ok(self.batch_pb(&row, plan.items, plan.relationships))
    }

    pub async fn discard_import(&self, caller: &Caller, id: &str) -> CmdbResult<pb::ImportBatch> {
        authorize(&caller.roles, Permission::Write)?;
        let mut row = self.import_row(caller, id).await?;
        import_state(&row)?.check_open()?;
        let txn = self.store.begin().await?;
        if !self
            .store
            .finish_import(
                &txn,
                &caller.tenant,
                row.id,
                ImportState::Discarded.as_str(),
                row.plan.clone(),
                self.now(),
            )
            .await?
        {
            return Err(CmdbError::Precondition(
                "the import was committed or discarded meanwhile".into(),
            ));
        }
        self.store.commit(txn).await?;
        row.state = ImportState::Discarded.as_str().into();
        row.finished_at = Some(self.now());
        let plan = Self::decode_plan(&row)?;
        Ok(self.batch_pb(&row, plan.items, plan.relationships))
    }

    /// Applies the staged plan atomically. The plan is computed again and must equal the preview,
    /// so what commit does is exactly what the caller saw; if the CMDB changed in between, the
    /// caller stages again.
    pub async fn commit_import(&self, caller: &Caller, id: &str) -> CmdbResult<pb::ImportBatch> {
        authorize(&caller.roles, Permission::Write)?;
        let catalog = self.catalog(&caller.tenant).await?;
        let mut row = self.import_row(caller, id).await?;
        import_state(&row)?.check_open()?;
        let request_bytes = B64
            .decode(&row.request)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let request = pb::StageImportRequest::decode(request_bytes.as_slice())
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let (command, found) = self.parse_stage(&request);
        command.check(found)?;

        // Plan again inside the transaction that applies the plan, with the tenant's
        // identifications serialized: two batches describing the same new CI cannot both create it.
        let txn = self.store.begin().await?;
        self.store.lock_identification(&txn, &caller.tenant).await?;
        let plan = self.plan(&*txn, caller, &catalog, &command).await?;
        let staged = Self::decode_plan(&row)?;
        let (items, relationships) = self.plan_to_pb(&command.batch, &plan, &HashMap::new());
        if items != staged.items || relationships != staged.relationships {
            return Err(CmdbError::Precondition("the CMDB changed since this import was staged; stage it again to preview the new plan".into()));
        }

        let current: HashMap<Uuid, Ci> = self
            .store
            .find_many(&*txn, &catalog, &caller.tenant, &plan.updated_cis())
            .await?
            .into_iter()
            .map(|ci| (ci.id, ci))
            .collect();
        let now = self.now();
        let committed = plan.commit(
            &current,
            &caller.tenant,
            &caller.subject,
            now,
            &mut ids::new_uuid,
        )?;

        // Updates are written one by one (each checks its version); new CIs, relationships,
        // history and events a few hundred rows per statement, in plan order.
        for write in &committed.cis {
            if let Some(expected) = write.read_version
                && !self.store.update(&txn, &write.ci, expected).await?
            {
                return Err(CmdbError::Stale {
                    expected,
                    current: expected + 1,
                });
            }
        }
        let new_cis: Vec<Ci> = committed
            .cis
            .iter()
            .filter(|write| write.read_version.is_none())
            .map(|write| write.ci.clone())
            .collect();
        self.store
            .insert_many(&txn, &new_cis, &caller.subject)
            .await?;
        self.store
            .append_histories(
                &txn,
                committed
                    .cis
                    .iter()
                    .map(|write| HistoryRecord {
                        ci: &write.ci,
                        actor_id: &caller.subject,
                        actor_roles: &caller.roles,
                        source: write.fact.source(),
                        action: write.fact.action(),
                        changes: &write.changes,
                        note: write.note.as_deref(),
                        at: now,
                    })
                    .collect(),
            )
            .await?;
        let actor = caller.actor();
        let mut events: Vec<OutgoingEvent> = committed
            .cis
            .iter()
            .map(|write| self.ci_event(caller, &actor, &write.ci, Fact::Ci(write.fact.clone())))
            .collect();
        let relationships: Vec<StoredRelationship> = committed
            .relationships
            .iter()
            .map(|added| StoredRelationship {
                id: added.id,
                source_id: added.source,
                rel_type: added.relationship,
                target_id: added.target,
                created_by: caller.subject.clone(),
                created_at: now,
            })
            .collect();
        for stored in &relationships {
            let wire = self.relationship_to_pb(stored, &HashMap::new());
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
        }
        self.store
            .insert_relationships(&txn, &caller.tenant, &relationships)
            .await?;
        self.store.stage_many(&txn, events, now).await?;

        let (items, relationships) = self.plan_to_pb(&command.batch, &plan, &committed.created);
        let record = pb::ImportBatch {
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
                ImportState::Committed.as_str(),
                B64.encode(record.encode_to_vec()),
                now,
            )
            .await?
        {
            return Err(CmdbError::Precondition(
                "the import was committed or discarded meanwhile".into(),
            ));
        }
        row.state = ImportState::Committed.as_str().into();
        row.finished_at = Some(now);
        let result = self.batch_pb(&row, record.items, record.relationships);
        let event = Fact::ImportCommitted {
            batch: summary(&result),
        }
        .into_event(
            &caller.tenant,
            &result.id,
            &pb::ConfigurationItem::default(),
            &caller.actor(),
        );
        self.store.stage(&txn, event, now).await?;
        self.store.commit(txn).await?;

        let touched: Vec<Ci> = committed.cis.into_iter().map(|write| write.ci).collect();
        let edges: Vec<IndexChange> = committed
            .relationships
            .iter()
            .map(|added| IndexChange::EdgeAdded {
                relationship: added.id,
                edge: ImpactEdge {
                    source: added.source,
                    relationship: added.relationship,
                    target: added.target,
                },
            })
            .collect();
        let written = touched.len() + edges.len();
        self.update_graph(&caller.tenant, &catalog, &touched, edges);
        if written >= BULK_WRITE_ROWS {
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
        authorize(&caller.roles, Permission::Read)?;
        let state = match pb::ImportState::try_from(request.state)
            .unwrap_or(pb::ImportState::Unspecified)
        {
            pb::ImportState::Unspecified => None,
            pb::ImportState::Staged => Some(ImportState::Staged.as_str()),
            pb::ImportState::Committed => Some(ImportState::Committed.as_str()),
            pb::ImportState::Discarded => Some(ImportState::Discarded.as_str()),
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

/// The state of a stored batch.
fn import_state(row: &entities::import::Model) -> Result<ImportState, StoreError> {
    ImportState::parse(&row.state)
        .ok_or_else(|| StoreError::Corrupt(format!("import state {:?}", row.state)))
}
