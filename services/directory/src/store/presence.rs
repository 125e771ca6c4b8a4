//! Presence (and the scan the expiry worker runs), skill catalogs, and provisioning batches.

use std::collections::{BTreeMap, HashMap};

use base64::{Engine as _, engine::general_purpose::STANDARD as B64};
use chrono::{DateTime, Utc};
use desk_kit::db::{WriteTxn, is_unique_violation};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use uuid::Uuid;

use super::{
    DirectoryStore, LOOKUP_CHUNK, StoreError, StoreResult, corrupt,
    entities::{presence, provisioning, skill_catalog},
};
use crate::domain::{Presence, PresenceStatus, ProvisioningState, SkillCatalog};

/// A provisioning batch as stored: the request as staged and the plan as previewed, encoded.
#[derive(Debug, Clone)]
pub struct StoredBatch {
    pub id: Uuid,
    pub tenant_id: String,
    pub source: String,
    pub state: ProvisioningState,
    pub request: Vec<u8>,
    pub plan: Vec<u8>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

impl DirectoryStore {
    pub async fn presence<C: ConnectionTrait>(
        &self,
        conn: &C,
        tenant: &str,
        person: Uuid,
    ) -> StoreResult<Option<Presence>> {
        presence::Entity::find_by_id((tenant.to_owned(), person))
            .one(conn)
            .await?
            .map(presence_from_model)
            .transpose()
    }

    /// The presences of many people, by person.
    pub async fn presences<C: ConnectionTrait>(
        &self,
        conn: &C,
        tenant: &str,
        people: &[Uuid],
    ) -> StoreResult<HashMap<Uuid, Presence>> {
        let mut found = HashMap::with_capacity(people.len());
        for chunk in people.chunks(LOOKUP_CHUNK) {
            let rows = presence::Entity::find()
                .filter(presence::Column::TenantId.eq(tenant))
                .filter(presence::Column::PersonId.is_in(chunk.iter().copied()))
                .all(conn)
                .await?;
            for row in rows {
                let presence = presence_from_model(row)?;
                found.insert(presence.person_id, presence);
            }
        }
        Ok(found)
    }

    /// Writes `presence` if the stored row is still at `expected` (`None`: there is none yet).
    /// `false` when another write got there first; on PostgreSQL the transaction is then spoilt.
    pub async fn write_presence(
        &self,
        txn: &WriteTxn,
        presence: &Presence,
        expected: Option<i64>,
    ) -> StoreResult<bool> {
        let row = presence::ActiveModel {
            tenant_id: Set(presence.tenant_id.clone()),
            person_id: Set(presence.person_id),
            status: Set(presence.status.as_str().to_owned()),
            set_at: Set(presence.set_at),
            expires_at: Set(presence.expires_at),
            version: Set(presence.version),
        };
        match expected {
            None => match presence::Entity::insert(row)
                .exec_without_returning(&**txn)
                .await
            {
                Ok(_) => Ok(true),
                Err(error) if is_unique_violation(&error) => Ok(false),
                Err(error) => Err(StoreError::Db(error)),
            },
            Some(expected) => {
                let result = presence::Entity::update_many()
                    .set(row)
                    .filter(presence::Column::TenantId.eq(presence.tenant_id.as_str()))
                    .filter(presence::Column::PersonId.eq(presence.person_id))
                    .filter(presence::Column::Version.eq(expected))
                    .exec(&**txn)
                    .await?;
                Ok(result.rows_affected == 1)
            }
        }
    }

    /// Presences of every tenant that have expired by `now` without the expiry being recorded,
    /// soonest first, at most `limit`.
    pub async fn due_presences<C: ConnectionTrait>(
        &self,
        conn: &C,
        now: DateTime<Utc>,
        limit: u64,
    ) -> StoreResult<Vec<Presence>> {
        presence::Entity::find()
            .filter(presence::Column::ExpiresAt.lte(now))
            .filter(presence::Column::Status.ne(PresenceStatus::Offline.as_str()))
            .order_by_asc(presence::Column::ExpiresAt)
            .limit(limit)
            .all(conn)
            .await?
            .into_iter()
            .map(presence_from_model)
            .collect()
    }

    // ---- skill catalogs ----

    /// The tenant's catalog; an empty one at version 0 when it never set one.
    pub async fn skill_catalog<C: ConnectionTrait>(
        &self,
        conn: &C,
        tenant: &str,
    ) -> StoreResult<SkillCatalog> {
        let Some(row) = skill_catalog::Entity::find_by_id(tenant.to_owned())
            .one(conn)
            .await?
        else {
            return Ok(SkillCatalog::default());
        };
        let skills: BTreeMap<String, String> =
            serde_json::from_str(&row.skills).map_err(corrupt)?;
        Ok(SkillCatalog {
            skills,
            version: row.version,
            updated_at: Some(row.updated_at),
        })
    }

    /// Writes `catalog` (at its new version) over version `expected`; `false` when it moved.
    pub async fn write_skill_catalog(
        &self,
        txn: &WriteTxn,
        tenant: &str,
        catalog: &SkillCatalog,
        expected: i64,
    ) -> StoreResult<bool> {
        let row = skill_catalog::ActiveModel {
            tenant_id: Set(tenant.to_owned()),
            skills: Set(serde_json::to_string(&catalog.skills).map_err(corrupt)?),
            version: Set(catalog.version),
            updated_at: Set(catalog.updated_at.unwrap_or(DateTime::<Utc>::UNIX_EPOCH)),
        };
        if expected == 0 {
            return match skill_catalog::Entity::insert(row)
                .exec_without_returning(&**txn)
                .await
            {
                Ok(_) => Ok(true),
                Err(error) if is_unique_violation(&error) => Ok(false),
                Err(error) => Err(StoreError::Db(error)),
            };
        }
        let result = skill_catalog::Entity::update_many()
            .set(row)
            .filter(skill_catalog::Column::TenantId.eq(tenant))
            .filter(skill_catalog::Column::Version.eq(expected))
            .exec(&**txn)
            .await?;
        Ok(result.rows_affected == 1)
    }

    // ---- provisioning batches ----

    pub async fn insert_batch(&self, txn: &WriteTxn, batch: &StoredBatch) -> StoreResult<()> {
        provisioning::Entity::insert(provisioning::ActiveModel {
            id: Set(batch.id),
            tenant_id: Set(batch.tenant_id.clone()),
            source: Set(batch.source.clone()),
            state: Set(batch.state.as_str().to_owned()),
            request: Set(B64.encode(&batch.request)),
            plan: Set(B64.encode(&batch.plan)),
            created_by: Set(batch.created_by.clone()),
            created_at: Set(batch.created_at),
            finished_at: Set(batch.finished_at),
        })
        .exec_without_returning(&**txn)
        .await?;
        Ok(())
    }

    pub async fn batch<C: ConnectionTrait>(
        &self,
        conn: &C,
        tenant: &str,
        id: Uuid,
    ) -> StoreResult<Option<StoredBatch>> {
        provisioning::Entity::find_by_id(id)
            .filter(provisioning::Column::TenantId.eq(tenant))
            .one(conn)
            .await?
            .map(batch_from_model)
            .transpose()
    }

    /// Ends a staged batch as `state` with `plan`; `false` when it was no longer staged.
    pub async fn finish_batch(
        &self,
        txn: &WriteTxn,
        tenant: &str,
        id: Uuid,
        state: ProvisioningState,
        plan: &[u8],
        at: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let result = provisioning::Entity::update_many()
            .col_expr(provisioning::Column::State, state.as_str().into())
            .col_expr(provisioning::Column::Plan, B64.encode(plan).into())
            .col_expr(provisioning::Column::FinishedAt, Some(at).into())
            .filter(provisioning::Column::TenantId.eq(tenant))
            .filter(provisioning::Column::Id.eq(id))
            .filter(provisioning::Column::State.eq(ProvisioningState::Staged.as_str()))
            .exec(&**txn)
            .await?;
        Ok(result.rows_affected == 1)
    }

    /// A page of batches, newest first, before `before`; the request is left out.
    pub async fn list_batches<C: ConnectionTrait>(
        &self,
        conn: &C,
        tenant: &str,
        state: Option<ProvisioningState>,
        before: Option<Uuid>,
        limit: u64,
    ) -> StoreResult<Vec<StoredBatch>> {
        let mut query = provisioning::Entity::find()
            .select_only()
            .columns([
                provisioning::Column::Id,
                provisioning::Column::TenantId,
                provisioning::Column::Source,
                provisioning::Column::State,
                provisioning::Column::Plan,
                provisioning::Column::CreatedBy,
                provisioning::Column::CreatedAt,
                provisioning::Column::FinishedAt,
            ])
            .column_as(sea_orm::sea_query::Expr::value(""), "request")
            .filter(provisioning::Column::TenantId.eq(tenant));
        if let Some(state) = state {
            query = query.filter(provisioning::Column::State.eq(state.as_str()));
        }
        if let Some(before) = before {
            query = query.filter(provisioning::Column::Id.lt(before));
        }
        query
            .order_by_desc(provisioning::Column::Id)
            .limit(limit)
            .into_model::<provisioning::Model>()
            .all(conn)
            .await?
            .into_iter()
            .map(batch_from_model)
            .collect()
    }
}

pub(super) fn presence_from_model(row: presence::Model) -> StoreResult<Presence> {
    let status = PresenceStatus::parse(&row.status)
        .ok_or_else(|| corrupt(format!("presence status {:?}", row.status)))?;
    Ok(Presence {
        tenant_id: row.tenant_id,
        person_id: row.person_id,
        status,
        set_at: row.set_at,
        expires_at: row.expires_at,
        version: row.version,
    })
}

fn batch_from_model(row: provisioning::Model) -> StoreResult<StoredBatch> {
    let state = ProvisioningState::parse(&row.state)
        .ok_or_else(|| corrupt(format!("provisioning state {:?}", row.state)))?;
    Ok(StoredBatch {
        id: row.id,
        tenant_id: row.tenant_id,
        source: row.source,
        state,
        request: B64.decode(&row.request).map_err(corrupt)?,
        plan: B64.decode(&row.plan).map_err(corrupt)?,
        created_by: row.created_by,
        created_at: row.created_at,
        finished_at: row.finished_at,
    })
}
