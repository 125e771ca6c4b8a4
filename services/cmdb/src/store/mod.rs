//! Persistence of the CMDB: CIs with their attribute index, relationships, history, tenant
//! classes and import batches. Every query is scoped by tenant.

pub mod entities;
pub mod migrations;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use desk_kit::{
    auth::Role,
    db::{Db, WriteTxn},
    events::{OutgoingEvent, Publisher},
    idempotency::IdempotencyKeys,
};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect,
    sea_query::{Expr, ExprTrait, Func, Query},
};
use uuid::Uuid;

use crate::domain::{
    AttrValue, Ci, CiStatus, ClassCatalog, Criticality, Environment, FieldChange, ImportState,
    Provenance, relationship::RelationshipType,
};
use entities::{ci, ci_attribute, class, history, import, relationship};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Db(#[from] DbErr),
    /// A row holds a value the domain does not know: a bug or a manual edit, never user input.
    #[error("corrupt row: {0}")]
    Corrupt(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Values per `IN (…)` list of a set-based lookup: well under SQLite's and PostgreSQL's limits on
/// bound parameters, and large enough that a batch of 10,000 items takes a few dozen queries.
const LOOKUP_CHUNK: usize = 500;

/// Create keys of `CreateCi` (created by `m20261125_000011_create_cmdb_idempotency_keys`), kept
/// 48 hours: a retried create with the same key and body answers the first CI.
pub const IDEMPOTENCY_KEYS: IdempotencyKeys =
    IdempotencyKeys::new("cmdb_idempotency_keys", "ci_id", "CI");

/// Rows per multi-row `INSERT` of an import: at most 16 columns × 200 rows of bound parameters,
/// well under SQLite's limit of 32,766 and PostgreSQL's of 65,535.
const WRITE_CHUNK: usize = 200;

fn corrupt(error: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(error.to_string())
}

/// A relationship as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRelationship {
    pub id: Uuid,
    pub source_id: Uuid,
    pub rel_type: RelationshipType,
    pub target_id: Uuid,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
}

/// One history entry, as read back.
#[derive(Debug, Clone)]
pub struct HistoryEntry {
    pub version: i64,
    pub actor_id: String,
    pub actor_roles: Vec<String>,
    pub source: String,
    pub action: String,
    pub changes: Vec<FieldChange>,
    pub note: Option<String>,
    pub at: DateTime<Utc>,
}

/// Filters of a CI list, validated.
#[derive(Debug, Clone, Default)]
pub struct CiFilter {
    /// The class and its subclasses; empty for all.
    pub classes: Vec<String>,
    pub statuses: Vec<CiStatus>,
    pub environment: Option<Environment>,
    /// `(attribute, value as text)`, all must match.
    pub attributes: Vec<(String, String)>,
    pub text: Option<String>,
}

/// The graph as stored, for rebuilding the in-memory index at start.
#[derive(Debug, Default)]
pub struct GraphRows {
    /// `(tenant, id, class, status, name, version)`
    pub nodes: Vec<(String, Uuid, String, CiStatus, String, i64)>,
    /// `(tenant, source, type, target)`
    pub edges: Vec<(String, Uuid, RelationshipType, Uuid)>,
}

/// One history entry to append: who changed `ci` (at its new version) how.
pub struct HistoryRecord<'a> {
    pub ci: &'a Ci,
    pub actor_id: &'a str,
    /// Kept as their claim names, comma-separated.
    pub actor_roles: &'a [Role],
    pub source: &'a str,
    pub action: &'a str,
    pub changes: &'a [FieldChange],
    pub note: Option<&'a str>,
    pub at: DateTime<Utc>,
}

pub struct CmdbStore {
    publisher: Publisher,
}

impl CmdbStore {
    pub fn new(publisher: Publisher) -> Self {
        Self { publisher }
    }

    pub fn db(&self) -> &Db {
        self.publisher.db()
    }

    pub async fn begin(&self) -> StoreResult<WriteTxn> {
        Ok(self.publisher.begin().await?)
    }

    pub async fn commit(&self, txn: WriteTxn) -> StoreResult<()> {
        Ok(self.publisher.commit(txn).await?)
    }

    pub async fn stage(
        &self,
        txn: &WriteTxn,
        event: OutgoingEvent,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        Ok(self.publisher.stage(txn, event, now).await?)
    }

    /// Stages `events` in order, a few hundred per statement.
    pub async fn stage_many(
        &self,
        txn: &WriteTxn,
        events: Vec<OutgoingEvent>,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        Ok(self.publisher.stage_many(txn, events, now).await?)
    }

    // ---- classes ----

    pub async fn tenant_classes<C: ConnectionTrait>(
        &self,
        conn: &C,
        tenant: &str,
    ) -> StoreResult<Vec<String>> {
        Ok(class::Entity::find()
            .filter(class::Column::TenantId.eq(tenant))
            .order_by_asc(class::Column::CreatedAt)
            .all(conn)
            .await?
            .into_iter()
            .map(|row| row.definition)
            .collect())
    }

    pub async fn insert_class(
        &self,
        txn: &WriteTxn,
        tenant: &str,
        name: &str,
        definition: String,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        class::Entity::insert(class::ActiveModel {
            tenant_id: Set(tenant.to_owned()),
            name: Set(name.to_owned()),
            definition: Set(definition),
            created_at: Set(now),
        })
        .exec_without_returning(&**txn)
        .await?;
        Ok(())
    }

    // ---- CIs ----

    pub async fn find<C: ConnectionTrait>(
        &self,
        conn: &C,
        catalog: &ClassCatalog,
        tenant: &str,
        id: Uuid,
    ) -> StoreResult<Option<Ci>> {
        ci::Entity::find_by_id(id)
            .filter(ci::Column::TenantId.eq(tenant))
            .one(conn)
            .await?
            .map(|row| ci_from_model(catalog, row))
            .transpose()
    }

    pub async fn find_many<C: ConnectionTrait>(
        &self,
        conn: &C,
        catalog: &ClassCatalog,
        tenant: &str,
        ids: &[Uuid],
    ) -> StoreResult<Vec<Ci>> {
        let mut found = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(LOOKUP_CHUNK) {
            let rows = ci::Entity::find()
                .filter(ci::Column::TenantId.eq(tenant))
                .filter(ci::Column::Id.is_in(chunk.iter().copied()))
                .all(conn)
                .await?;
            for row in rows {
                found.push(ci_from_model(catalog, row)?);
            }
        }
        Ok(found)
    }

    /// CIs of `classes` whose attributes (or core `name`/`environment`) equal all of `keys`.
    pub async fn find_by_values<C: ConnectionTrait>(
        &self,
        conn: &C,
        tenant: &str,
        classes: &[String],
        keys: &[(String, String)],
    ) -> StoreResult<Vec<Uuid>> {
        let mut query = ci::Entity::find()
            .select_only()
            .column(ci::Column::Id)
            .filter(ci::Column::TenantId.eq(tenant));
        if !classes.is_empty() {
            query = query.filter(ci::Column::Class.is_in(classes.iter().map(String::as_str)));
        }
        query = query.filter(ci::Column::Status.ne(CiStatus::Retired.as_str()));
        for (name, value) in keys {
            query = match name.as_str() {
                "name" => query.filter(ci::Column::Name.eq(value.as_str())),
                "environment" => query.filter(ci::Column::Environment.eq(value.as_str())),
                attribute => query
                    .filter(ci::Column::Id.in_subquery(attribute_match(tenant, attribute, value))),
            };
        }
        Ok(query
            .order_by_asc(ci::Column::Id)
            .into_tuple::<Uuid>()
            .all(conn)
            .await?)
    }

    pub async fn insert(&self, txn: &WriteTxn, ci: &Ci, created_by: &str) -> StoreResult<()> {
        self.insert_many(txn, std::slice::from_ref(ci), created_by)
            .await
    }

    /// Writes `ci` (already at its new version) if the stored one is still `expected_version`.
    pub async fn update(
        &self,
        txn: &WriteTxn,
        ci: &Ci,
        expected_version: i64,
    ) -> StoreResult<bool> {
        let mut row = ci_to_active(ci, "")?;
        row.created_by = sea_orm::ActiveValue::NotSet;
        let result = ci::Entity::update_many()
            .set(row)
            .filter(ci::Column::Id.eq(ci.id))
            .filter(ci::Column::TenantId.eq(ci.tenant_id.as_str()))
            .filter(ci::Column::Version.eq(expected_version))
            .exec(&**txn)
            .await?;
        if result.rows_affected != 1 {
            return Ok(false);
        }
        ci_attribute::Entity::delete_many()
            .filter(ci_attribute::Column::CiId.eq(ci.id))
            .exec(&**txn)
            .await?;
        self.index_attributes(txn, ci).await?;
        Ok(true)
    }

    async fn index_attributes(&self, txn: &WriteTxn, ci: &Ci) -> StoreResult<()> {
        if ci.attributes.is_empty() {
            return Ok(());
        }
        ci_attribute::Entity::insert_many(attribute_rows(ci))
            .exec_without_returning(&**txn)
            .await?;
        Ok(())
    }

    /// Inserts new CIs with their attribute index, a few hundred rows per statement (an import).
    pub async fn insert_many(
        &self,
        txn: &WriteTxn,
        cis: &[Ci],
        created_by: &str,
    ) -> StoreResult<()> {
        for chunk in cis.chunks(WRITE_CHUNK) {
            let rows = chunk
                .iter()
                .map(|ci| ci_to_active(ci, created_by))
                .collect::<StoreResult<Vec<_>>>()?;
            ci::Entity::insert_many(rows)
                .exec_without_returning(&**txn)
                .await?;
        }
        let attributes: Vec<ci_attribute::ActiveModel> =
            cis.iter().flat_map(attribute_rows).collect();
        for chunk in attributes.chunks(WRITE_CHUNK) {
            ci_attribute::Entity::insert_many(chunk.to_vec())
                .exec_without_returning(&**txn)
                .await?;
        }
        Ok(())
    }

    pub async fn list<C: ConnectionTrait>(
        &self,
        conn: &C,
        catalog: &ClassCatalog,
        tenant: &str,
        filter: &CiFilter,
        after: Option<Uuid>,
        limit: u64,
    ) -> StoreResult<(Vec<Ci>, u64)> {
        let mut query = ci::Entity::find().filter(ci::Column::TenantId.eq(tenant));
        if !filter.classes.is_empty() {
            query =
                query.filter(ci::Column::Class.is_in(filter.classes.iter().map(String::as_str)));
        }
        if !filter.statuses.is_empty() {
            query =
                query.filter(ci::Column::Status.is_in(filter.statuses.iter().map(|s| s.as_str())));
        }
        if let Some(environment) = filter.environment {
            query = query.filter(ci::Column::Environment.eq(environment.as_str()));
        }
        for (name, value) in &filter.attributes {
            query = query.filter(ci::Column::Id.in_subquery(attribute_match(tenant, name, value)));
        }
        if let Some(text) = &filter.text {
            let pattern = format!(
                "%{}%",
                text.to_lowercase()
                    .replace('\\', "\\\\")
                    .replace('%', "\\%")
                    .replace('_', "\\_")
            );
            query = query.filter(
                Expr::expr(Func::lower(Expr::col(ci::Column::Name)))
                    .like(sea_orm::sea_query::LikeExpr::new(pattern).escape('\\')),
            );
        }
        let total = query.clone().count(conn).await?;
        if let Some(after) = after {
            query = query.filter(ci::Column::Id.gt(after));
        }
        let rows = query
            .order_by_asc(ci::Column::Id)
            .limit(limit)
            .all(conn)
            .await?;
        let cis = rows
            .into_iter()
            .map(|row| ci_from_model(catalog, row))
            .collect::<StoreResult<Vec<_>>>()?;
        Ok((cis, total))
    }

    // ---- relationships ----

    pub async fn insert_relationship(
        &self,
        txn: &WriteTxn,
        tenant: &str,
        rel: &StoredRelationship,
    ) -> StoreResult<()> {
        self.insert_relationships(txn, tenant, std::slice::from_ref(rel))
            .await
    }

    /// Inserts relationships a few hundred per statement (an import).
    pub async fn insert_relationships(
        &self,
        txn: &WriteTxn,
        tenant: &str,
        rels: &[StoredRelationship],
    ) -> StoreResult<()> {
        for chunk in rels.chunks(WRITE_CHUNK) {
            relationship::Entity::insert_many(
                chunk.iter().map(|rel| relationship_row(tenant, rel)),
            )
            .exec_without_returning(&**txn)
            .await?;
        }
        Ok(())
    }

    /// Ends a relationship (it stays in the database for history); `false` when it was not active.
    pub async fn end_relationship(
        &self,
        txn: &WriteTxn,
        tenant: &str,
        id: Uuid,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let result = relationship::Entity::update_many()
            .col_expr(relationship::Column::RemovedAt, Expr::value(now))
            .filter(relationship::Column::TenantId.eq(tenant))
            .filter(relationship::Column::Id.eq(id))
            .filter(relationship::Column::RemovedAt.is_null())
            .exec(&**txn)
            .await?;
        Ok(result.rows_affected == 1)
    }

    pub async fn relationship<C: ConnectionTrait>(
        &self,
        conn: &C,
        tenant: &str,
        id: Uuid,
    ) -> StoreResult<Option<StoredRelationship>> {
        relationship::Entity::find_by_id(id)
            .filter(relationship::Column::TenantId.eq(tenant))
            .filter(relationship::Column::RemovedAt.is_null())
            .one(conn)
            .await?
            .map(relationship_from_model)
            .transpose()
    }

    /// Active relationships where `ci` is the source or the target.
    pub async fn relationships_of<C: ConnectionTrait>(
        &self,
        conn: &C,
        tenant: &str,
        ci: Uuid,
    ) -> StoreResult<Vec<StoredRelationship>> {
        relationship::Entity::find()
            .filter(relationship::Column::TenantId.eq(tenant))
            .filter(relationship::Column::RemovedAt.is_null())
            .filter(
                sea_orm::Condition::any()
                    .add(relationship::Column::SourceId.eq(ci))
                    .add(relationship::Column::TargetId.eq(ci)),
            )
            .order_by_asc(relationship::Column::Id)
            .all(conn)
            .await?
            .into_iter()
            .map(relationship_from_model)
            .collect()
    }

    /// Serializes relationship changes from one source CI until `txn` ends (PostgreSQL; SQLite has
    /// one writer at a time anyway).
    pub async fn lock_source(&self, txn: &WriteTxn, tenant: &str, source: Uuid) -> StoreResult<()> {
        self.advisory_lock(txn, &format!("cmdb-relationships/{tenant}/{source}"))
            .await
    }

    /// Serializes the writes of a tenant that identify CIs — import commits and API creates —
    /// until `txn` ends (PostgreSQL; SQLite has one writer).
    pub async fn lock_identification(&self, txn: &WriteTxn, tenant: &str) -> StoreResult<()> {
        self.advisory_lock(txn, &format!("cmdb-imports/{tenant}"))
            .await
    }

    async fn advisory_lock(&self, txn: &WriteTxn, name: &str) -> StoreResult<()> {
        if self.db().is_postgres() {
            txn.execute_raw(sea_orm::Statement::from_sql_and_values(
                sea_orm::DbBackend::Postgres,
                "SELECT pg_advisory_xact_lock($1)",
                [(desk_kit::ids::stable_hash(name.as_bytes()) as i64).into()],
            ))
            .await?;
        }
        Ok(())
    }

    /// The active relationship `(source, type, target)`, if any.
    pub async fn find_relationship<C: ConnectionTrait>(
        &self,
        conn: &C,
        tenant: &str,
        source: Uuid,
        rel_type: RelationshipType,
        target: Uuid,
    ) -> StoreResult<Option<Uuid>> {
        Ok(relationship::Entity::find()
            .filter(relationship::Column::TenantId.eq(tenant))
            .filter(relationship::Column::RemovedAt.is_null())
            .filter(relationship::Column::SourceId.eq(source))
            .filter(relationship::Column::RelType.eq(rel_type.as_str()))
            .filter(relationship::Column::TargetId.eq(target))
            .one(conn)
            .await?
            .map(|row| row.id))
    }

    /// How many active relationships of `rel_type` leave `source` (for cardinality checks).
    pub async fn outgoing_count<C: ConnectionTrait>(
        &self,
        conn: &C,
        tenant: &str,
        source: Uuid,
        rel_type: RelationshipType,
    ) -> StoreResult<usize> {
        Ok(relationship::Entity::find()
            .filter(relationship::Column::TenantId.eq(tenant))
            .filter(relationship::Column::RemovedAt.is_null())
            .filter(relationship::Column::SourceId.eq(source))
            .filter(relationship::Column::RelType.eq(rel_type.as_str()))
            .count(conn)
            .await? as usize)
    }

    /// Refreshes PostgreSQL's planner statistics of the tables an import fills. Autovacuum does
    /// so only after a delay; until then a bulk load leaves the planner estimating the tables at
    /// their old size, and the next batch's lookups pick plans that read every row. (SQLite has
    /// no automatic statistics and plans these lookups by index regardless.)
    pub async fn refresh_statistics(&self) -> StoreResult<()> {
        if self.db().is_postgres() {
            self.db()
                .connection()
                .execute_unprepared("ANALYZE cis, ci_attributes, ci_relationships")
                .await?;
        }
        Ok(())
    }

    // ---- set-based lookups for import batches (see `api::lookup::Prefetched`) ----

    /// The active relationships leaving any of `sources`: `(source, type, target)`.
    pub async fn outgoing_of<C: ConnectionTrait>(
        &self,
        conn: &C,
        tenant: &str,
        sources: &[Uuid],
    ) -> StoreResult<Vec<(Uuid, RelationshipType, Uuid)>> {
        let mut found = Vec::new();
        for chunk in sources.chunks(LOOKUP_CHUNK) {
            let rows: Vec<(Uuid, String, Uuid)> = relationship::Entity::find()
                .select_only()
                .columns([
                    relationship::Column::SourceId,
                    relationship::Column::RelType,
                    relationship::Column::TargetId,
                ])
                .filter(relationship::Column::TenantId.eq(tenant))
                .filter(relationship::Column::RemovedAt.is_null())
                .filter(relationship::Column::SourceId.is_in(chunk.iter().copied()))
                .into_tuple()
                .all(conn)
                .await?;
            for (source, rel_type, target) in rows {
                let rel_type = RelationshipType::parse(&rel_type)
                    .ok_or_else(|| corrupt(format!("type {rel_type}")))?;
                found.push((source, rel_type, target));
            }
        }
        Ok(found)
    }

    /// `(ci id, value)` of the CIs whose attribute `name` has one of `values` (as stored: JSON).
    pub async fn with_attribute_values<C: ConnectionTrait>(
        &self,
        conn: &C,
        tenant: &str,
        name: &str,
        values: &[String],
    ) -> StoreResult<Vec<(Uuid, String)>> {
        let mut found = Vec::new();
        for chunk in values.chunks(LOOKUP_CHUNK) {
            let rows: Vec<(Uuid, String)> = ci_attribute::Entity::find()
                .select_only()
                .columns([ci_attribute::Column::CiId, ci_attribute::Column::Value])
                .filter(ci_attribute::Column::TenantId.eq(tenant))
                .filter(ci_attribute::Column::Name.eq(name))
                .filter(ci_attribute::Column::Value.is_in(chunk.iter().map(String::as_str)))
                .into_tuple()
                .all(conn)
                .await?;
            found.extend(rows);
        }
        Ok(found)
    }

    /// `(ci id, name)` of the CIs named one of `names`.
    pub async fn with_names<C: ConnectionTrait>(
        &self,
        conn: &C,
        tenant: &str,
        names: &[String],
    ) -> StoreResult<Vec<(Uuid, String)>> {
        let mut found = Vec::new();
        for chunk in names.chunks(LOOKUP_CHUNK) {
            let rows: Vec<(Uuid, String)> = ci::Entity::find()
                .select_only()
                .columns([ci::Column::Id, ci::Column::Name])
                .filter(ci::Column::TenantId.eq(tenant))
                .filter(ci::Column::Name.is_in(chunk.iter().map(String::as_str)))
                .into_tuple()
                .all(conn)
                .await?;
            found.extend(rows);
        }
        Ok(found)
    }

    /// Every CI and active relationship of every tenant, for rebuilding the impact index.
    pub async fn graph_rows(&self) -> StoreResult<GraphRows> {
        let conn = self.db().connection();
        let nodes: Vec<(String, Uuid, String, String, String, i64)> = ci::Entity::find()
            .select_only()
            .columns([
                ci::Column::TenantId,
                ci::Column::Id,
                ci::Column::Class,
                ci::Column::Status,
                ci::Column::Name,
                ci::Column::Version,
            ])
            .into_tuple()
            .all(conn)
            .await?;
        let edges: Vec<(String, Uuid, String, Uuid)> = relationship::Entity::find()
            .select_only()
            .columns([
                relationship::Column::TenantId,
                relationship::Column::SourceId,
                relationship::Column::RelType,
                relationship::Column::TargetId,
            ])
            .filter(relationship::Column::RemovedAt.is_null())
            .into_tuple()
            .all(conn)
            .await?;
        let mut rows = GraphRows::default();
        for (tenant, id, class, status, name, version) in nodes {
            rows.nodes.push((
                tenant,
                id,
                class,
                CiStatus::parse(&status).ok_or_else(|| corrupt(format!("status {status}")))?,
                name,
                version,
            ));
        }
        for (tenant, source, rel_type, target) in edges {
            rows.edges.push((
                tenant,
                source,
                RelationshipType::parse(&rel_type)
                    .ok_or_else(|| corrupt(format!("type {rel_type}")))?,
                target,
            ));
        }
        Ok(rows)
    }

    // ---- history ----

    #[allow(clippy::too_many_arguments)]
    pub async fn append_history(
        &self,
        txn: &WriteTxn,
        ci: &Ci,
        actor_id: &str,
        actor_roles: &[Role],
        source: &str,
        action: &str,
        changes: &[FieldChange],
        note: Option<&str>,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        self.append_histories(
            txn,
            vec![HistoryRecord {
                ci,
                actor_id,
                actor_roles,
                source,
                action,
                changes,
                note,
                at,
            }],
        )
        .await
    }

    /// Appends history entries a few hundred per statement.
    pub async fn append_histories(
        &self,
        txn: &WriteTxn,
        records: Vec<HistoryRecord<'_>>,
    ) -> StoreResult<()> {
        for chunk in records.chunks(WRITE_CHUNK) {
            let rows = chunk
                .iter()
                .map(|r| {
                    Ok(history::ActiveModel {
                        id: Set(Uuid::now_v7()),
                        tenant_id: Set(r.ci.tenant_id.clone()),
                        ci_id: Set(r.ci.id),
                        version: Set(r.ci.version),
                        actor_id: Set(r.actor_id.to_owned()),
                        actor_roles: Set(r
                            .actor_roles
                            .iter()
                            .map(|role| role.as_str())
                            .collect::<Vec<_>>()
                            .join(",")),
                        source: Set(r.source.to_owned()),
                        action: Set(r.action.to_owned()),
                        changes: Set(serde_json::to_string(r.changes).map_err(corrupt)?),
                        note: Set(r.note.map(str::to_owned)),
                        created_at: Set(r.at),
                    })
                })
                .collect::<StoreResult<Vec<_>>>()?;
            history::Entity::insert_many(rows)
                .exec_without_returning(&**txn)
                .await?;
        }
        Ok(())
    }

    pub async fn history<C: ConnectionTrait>(
        &self,
        conn: &C,
        tenant: &str,
        ci: Uuid,
    ) -> StoreResult<Vec<HistoryEntry>> {
        history::Entity::find()
            .filter(history::Column::TenantId.eq(tenant))
            .filter(history::Column::CiId.eq(ci))
            .order_by_asc(history::Column::Version)
            .order_by_asc(history::Column::Id)
            .all(conn)
            .await?
            .into_iter()
            .map(|row| {
                Ok(HistoryEntry {
                    version: row.version,
                    actor_id: row.actor_id,
                    actor_roles: row
                        .actor_roles
                        .split(',')
                        .filter(|r| !r.is_empty())
                        .map(str::to_owned)
                        .collect(),
                    source: row.source,
                    action: row.action,
                    changes: serde_json::from_str(&row.changes).map_err(corrupt)?,
                    note: row.note,
                    at: row.created_at,
                })
            })
            .collect()
    }

    // ---- settings ----

    pub async fn source_precedence<C: ConnectionTrait>(
        &self,
        conn: &C,
        tenant: &str,
    ) -> StoreResult<Option<String>> {
        Ok(entities::settings::Entity::find_by_id(tenant.to_owned())
            .one(conn)
            .await?
            .map(|row| row.source_precedence))
    }

    pub async fn save_source_precedence(
        &self,
        txn: &WriteTxn,
        tenant: &str,
        encoded: String,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let row = entities::settings::ActiveModel {
            tenant_id: Set(tenant.to_owned()),
            source_precedence: Set(encoded),
            updated_at: Set(now),
        };
        entities::settings::Entity::insert(row)
            .on_conflict(
                sea_orm::sea_query::OnConflict::column(entities::settings::Column::TenantId)
                    .update_columns([
                        entities::settings::Column::SourcePrecedence,
                        entities::settings::Column::UpdatedAt,
                    ])
                    .to_owned(),
            )
            .exec_without_returning(&**txn)
            .await?;
        Ok(())
    }

    // ---- imports ----

    pub async fn insert_import(&self, txn: &WriteTxn, row: import::Model) -> StoreResult<()> {
        import::Entity::insert(import::ActiveModel::from(row))
            .exec_without_returning(&**txn)
            .await?;
        Ok(())
    }

    pub async fn import<C: ConnectionTrait>(
        &self,
        conn: &C,
        tenant: &str,
        id: Uuid,
    ) -> StoreResult<Option<import::Model>> {
        Ok(import::Entity::find_by_id(id)
            .filter(import::Column::TenantId.eq(tenant))
            .one(conn)
            .await?)
    }

    /// Moves a staged batch to `state`; `false` when it was no longer staged (a concurrent commit or discard).
    pub async fn finish_import(
        &self,
        txn: &WriteTxn,
        tenant: &str,
        id: Uuid,
        state: &str,
        plan: String,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let result = import::Entity::update_many()
            .col_expr(import::Column::State, Expr::value(state))
            .col_expr(import::Column::Plan, Expr::value(plan))
            .col_expr(import::Column::FinishedAt, Expr::value(now))
            .filter(import::Column::TenantId.eq(tenant))
            .filter(import::Column::Id.eq(id))
            .filter(import::Column::State.eq(ImportState::Staged.as_str()))
            .exec(&**txn)
            .await?;
        Ok(result.rows_affected == 1)
    }

    pub async fn imports<C: ConnectionTrait>(
        &self,
        conn: &C,
        tenant: &str,
        state: Option<&str>,
        before: Option<Uuid>,
        limit: u64,
    ) -> StoreResult<Vec<import::Model>> {
        let mut query = import::Entity::find().filter(import::Column::TenantId.eq(tenant));
        if let Some(state) = state {
            query = query.filter(import::Column::State.eq(state));
        }
        if let Some(before) = before {
            query = query.filter(import::Column::Id.lt(before));
        }
        Ok(query
            .order_by_desc(import::Column::Id)
            .limit(limit)
            .all(conn)
            .await?)
    }
}

/// `SELECT ci_id FROM ci_attributes WHERE tenant_id = ? AND name = ? AND value = ?`
fn attribute_match(tenant: &str, name: &str, value: &str) -> sea_orm::sea_query::SelectStatement {
    Query::select()
        .column(ci_attribute::Column::CiId)
        .from(ci_attribute::Entity)
        .and_where(Expr::col(ci_attribute::Column::TenantId).eq(tenant))
        .and_where(Expr::col(ci_attribute::Column::Name).eq(name))
        .and_where(Expr::col(ci_attribute::Column::Value).eq(value))
        .to_owned()
}

fn relationship_row(tenant: &str, rel: &StoredRelationship) -> relationship::ActiveModel {
    relationship::ActiveModel {
        id: Set(rel.id),
        tenant_id: Set(tenant.to_owned()),
        source_id: Set(rel.source_id),
        rel_type: Set(rel.rel_type.as_str().to_owned()),
        target_id: Set(rel.target_id),
        created_by: Set(rel.created_by.clone()),
        created_at: Set(rel.created_at),
        removed_at: Set(None),
    }
}

fn attribute_rows(ci: &Ci) -> impl Iterator<Item = ci_attribute::ActiveModel> + '_ {
    ci.attributes
        .iter()
        .map(|(name, value)| ci_attribute::ActiveModel {
            ci_id: Set(ci.id),
            name: Set(name.clone()),
            tenant_id: Set(ci.tenant_id.clone()),
            class: Set(ci.class.clone()),
            value: Set(value.to_string()),
        })
}

fn ci_to_active(ci: &Ci, created_by: &str) -> StoreResult<ci::ActiveModel> {
    let attributes =
        serde_json::Value::Object(crate::domain::class::attributes_to_json(&ci.attributes));
    Ok(ci::ActiveModel {
        id: Set(ci.id),
        tenant_id: Set(ci.tenant_id.clone()),
        name: Set(ci.name.clone()),
        class: Set(ci.class.clone()),
        status: Set(ci.status.as_str().to_owned()),
        environment: Set(ci.environment.as_str().to_owned()),
        owner_group_id: Set(ci.owner_group.clone()),
        criticality: Set(ci.criticality.as_str().to_owned()),
        location: Set(ci.location.clone()),
        region: Set(ci.region.clone()),
        attributes: Set(attributes.to_string()),
        provenance: Set(serde_json::to_string(&ci.provenance).map_err(corrupt)?),
        version: Set(ci.version),
        created_by: Set(created_by.to_owned()),
        created_at: Set(ci.created_at),
        updated_at: Set(ci.updated_at),
    })
}

/// Reads a stored attribute with its class's type; an attribute the class no longer defines keeps
/// the plain JSON shape (string, integer or boolean) rather than failing the read.
fn stored_attribute(
    catalog: &ClassCatalog,
    class: &str,
    name: &str,
    value: &serde_json::Value,
) -> StoreResult<AttrValue> {
    if let Some(definition) = catalog.effective_attribute(class, name)
        && let Ok(parsed) = AttrValue::from_json(&definition.attr_type, value)
    {
        return Ok(parsed);
    }
    match value {
        serde_json::Value::String(text) => Ok(AttrValue::String(text.clone())),
        serde_json::Value::Bool(flag) => Ok(AttrValue::Bool(*flag)),
        serde_json::Value::Number(number) => number
            .as_i64()
            .map(AttrValue::Int)
            .ok_or_else(|| corrupt(format!("attribute {name}"))),
        other => Err(corrupt(format!("attribute {name} = {other}"))),
    }
}

fn ci_from_model(catalog: &ClassCatalog, row: ci::Model) -> StoreResult<Ci> {
    let raw: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&row.attributes).map_err(corrupt)?;
    let mut attributes = BTreeMap::new();
    for (name, value) in &raw {
        attributes.insert(
            name.clone(),
            stored_attribute(catalog, &row.class, name, value)?,
        );
    }
    let provenance: BTreeMap<String, Provenance> =
        serde_json::from_str(&row.provenance).map_err(corrupt)?;
    Ok(Ci {
        id: row.id,
        status: CiStatus::parse(&row.status)
            .ok_or_else(|| corrupt(format!("status {}", row.status)))?,
        environment: Environment::parse(&row.environment)
            .ok_or_else(|| corrupt(format!("environment {}", row.environment)))?,
        criticality: Criticality::parse(&row.criticality)
            .ok_or_else(|| corrupt(format!("criticality {}", row.criticality)))?,
        tenant_id: row.tenant_id,
        name: row.name,
        class: row.class,
        owner_group: row.owner_group_id,
        location: row.location,
        region: row.region,
        attributes,
        provenance,
        version: row.version,
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

fn relationship_from_model(row: relationship::Model) -> StoreResult<StoredRelationship> {
    Ok(StoredRelationship {
        id: row.id,
        source_id: row.source_id,
        rel_type: RelationshipType::parse(&row.rel_type)
            .ok_or_else(|| corrupt(format!("type {}", row.rel_type)))?,
        target_id: row.target_id,
        created_by: row.created_by,
        created_at: row.created_at,
    })
}
