//! Persistence of changes, templates, freezes, maintenance windows, the policy, delegations,
//! history and the CMDB projection. Every query is scoped by tenant; the store decides nothing.
//!
//! Records the service always reads whole are kept as JSON (`record` columns); the columns beside
//! them are what queries filter on. Writes go through one [`WriteTxn`] carrying the state change,
//! its history entry and its outbox events, committed by [`ChangeStore::commit`].

pub mod migrations;
pub mod projection;

use chrono::{DateTime, Utc};
use desk_kit::{
    db::{Db, WriteTxn},
    events::{OutgoingEvent, Publisher},
    history::FieldChange,
    idempotency::IdempotencyKeys,
};
use sea_orm::{
    ConnectionTrait, DbBackend, DbErr, QueryResult, Statement,
    sea_query::{Alias, Expr, ExprTrait, OnConflict, Order, Query},
};
use serde::{Serialize, de::DeserializeOwned};
use uuid::Uuid;

use crate::domain::{
    Booked, Change, ChangePolicy, ChangeState, ChangeType, Delegation, FreezeWindow,
    MaintenanceWindow, Outcome, PastChanges, Template, TimeRange, metrics::ChangeFacts,
    schedule::MAX_WINDOW,
};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Db(#[from] DbErr),
    /// A row holds what the domain cannot read: a bug or a manual edit, never user input.
    #[error("corrupt row: {0}")]
    Corrupt(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Create keys of `CreateChange`, kept 48 hours: a retried create answers the first change.
pub const IDEMPOTENCY_KEYS: IdempotencyKeys =
    IdempotencyKeys::new("change_idempotency_keys", "change_id", "change");

/// Who made a change, as the history records it.
#[derive(Debug, Clone)]
pub struct HistoryActor {
    pub subject: String,
    pub name: String,
    pub roles: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct HistoryEntry {
    pub version: i64,
    pub actor: HistoryActor,
    pub action: String,
    pub changes: Vec<FieldChange>,
    pub note: String,
    pub at: DateTime<Utc>,
}

/// Filters of a list, validated.
#[derive(Debug, Clone, Default)]
pub struct ChangeFilter {
    pub states: Vec<ChangeState>,
    pub change_type: Option<ChangeType>,
    pub ci: Option<Uuid>,
    /// Ids after this one (the page cursor).
    pub after: Option<Uuid>,
    pub limit: u64,
}

fn col(name: &str) -> Expr {
    Expr::col(Alias::new(name))
}

fn json<T: Serialize>(value: &T) -> StoreResult<String> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn from_json<T: DeserializeOwned>(row: &QueryResult, column: &str) -> StoreResult<T> {
    let text: String = row.try_get("", column)?;
    serde_json::from_str(&text).map_err(|e| StoreError::Corrupt(format!("{column}: {e}")))
}

pub struct ChangeStore {
    publisher: Publisher,
}

impl ChangeStore {
    pub fn new(publisher: Publisher) -> Self {
        Self { publisher }
    }

    pub fn db(&self) -> &Db {
        self.publisher.db()
    }

    pub fn publisher(&self) -> &Publisher {
        &self.publisher
    }

    pub async fn begin(&self) -> StoreResult<WriteTxn> {
        Ok(self.publisher.begin().await?)
    }

    pub async fn commit(&self, txn: WriteTxn) -> StoreResult<()> {
        Ok(self.publisher.commit(txn).await?)
    }

    pub async fn stage_many(
        &self,
        txn: &WriteTxn,
        events: Vec<OutgoingEvent>,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        Ok(self.publisher.stage_many(txn, events, now).await?)
    }

    // ---- changes ----

    /// The tenant's next change number, `CHG-000001` on.
    pub async fn next_number<C: ConnectionTrait>(
        &self,
        conn: &C,
        tenant: &str,
    ) -> StoreResult<String> {
        let (sql, backend) = if self.db().is_postgres() {
            (
                "INSERT INTO change_counters (tenant_id, last_value) VALUES ($1, 1) \
                 ON CONFLICT (tenant_id) DO UPDATE SET last_value = change_counters.last_value + 1 \
                 RETURNING last_value",
                DbBackend::Postgres,
            )
        } else {
            (
                "INSERT INTO change_counters (tenant_id, last_value) VALUES (?, 1) \
                 ON CONFLICT (tenant_id) DO UPDATE SET last_value = last_value + 1 \
                 RETURNING last_value",
                DbBackend::Sqlite,
            )
        };
        let row = conn
            .query_one_raw(Statement::from_sql_and_values(
                backend,
                sql,
                [tenant.into()],
            ))
            .await?
            .ok_or_else(|| StoreError::Corrupt("the counter returned no row".into()))?;
        let value: i64 = row.try_get("", "last_value")?;
        Ok(format!("CHG-{value:06}"))
    }

    fn change_values(change: &Change) -> StoreResult<Vec<(&'static str, Expr)>> {
        Ok(vec![
            ("state", Expr::value(change.state.as_str())),
            (
                "planned_start",
                Expr::value(change.window.as_ref().map(|w| w.range.start)),
            ),
            (
                "planned_end",
                Expr::value(change.window.as_ref().map(|w| w.range.end)),
            ),
            ("implementer_id", Expr::value(change.implementer.clone())),
            (
                "assignment_group_id",
                Expr::value(change.assignment_group.clone()),
            ),
            (
                "outcome",
                Expr::value(change.outcome.map(|o| o.as_str().to_owned())),
            ),
            ("implement_ended_at", Expr::value(change.implement_ended_at)),
            ("version", Expr::value(change.version)),
            ("updated_at", Expr::value(change.updated_at)),
            ("record", Expr::value(json(change)?)),
        ])
    }

    pub async fn insert_change(&self, txn: &WriteTxn, change: &Change) -> StoreResult<()> {
        let mut values = vec![
            ("id", Expr::value(change.id)),
            ("tenant_id", Expr::value(change.tenant.as_str())),
            ("number", Expr::value(change.number.as_str())),
            ("change_type", Expr::value(change.change_type.as_str())),
            ("created_at", Expr::value(change.created_at)),
        ];
        values.extend(Self::change_values(change)?);
        let mut insert = Query::insert();
        insert
            .into_table(Alias::new("change_changes"))
            .columns(values.iter().map(|(name, _)| Alias::new(*name)))
            .values(values.into_iter().map(|(_, value)| value))
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        txn.execute(&insert).await?;
        self.replace_affected(&**txn, change).await
    }

    /// Writes `change` over the row read at `read_version`; false when another write came first.
    pub async fn update_change<C: ConnectionTrait>(
        &self,
        conn: &C,
        change: &Change,
        read_version: i64,
    ) -> StoreResult<bool> {
        let mut update = Query::update();
        update.table(Alias::new("change_changes"));
        for (name, value) in Self::change_values(change)? {
            update.value(Alias::new(name), value);
        }
        update
            .and_where(col("tenant_id").eq(change.tenant.as_str()))
            .and_where(col("id").eq(change.id))
            .and_where(col("version").eq(read_version));
        Ok(conn.execute(&update).await?.rows_affected() == 1)
    }

    pub async fn replace_affected<C: ConnectionTrait>(
        &self,
        conn: &C,
        change: &Change,
    ) -> StoreResult<()> {
        let delete = Query::delete()
            .from_table(Alias::new("change_affected_cis"))
            .and_where(col("change_id").eq(change.id))
            .to_owned();
        conn.execute(&delete).await?;
        if change.affected_cis.is_empty() {
            return Ok(());
        }
        let mut insert = Query::insert();
        insert
            .into_table(Alias::new("change_affected_cis"))
            .columns(["tenant_id", "change_id", "ci_id"].map(Alias::new));
        for ci in &change.affected_cis {
            insert
                .values([
                    Expr::value(change.tenant.as_str()),
                    Expr::value(change.id),
                    Expr::value(*ci),
                ])
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        }
        conn.execute(&insert).await?;
        Ok(())
    }

    pub async fn find_change<C: ConnectionTrait>(
        &self,
        conn: &C,
        tenant: &str,
        id: Uuid,
    ) -> StoreResult<Option<Change>> {
        let select = Query::select()
            .column(Alias::new("record"))
            .from(Alias::new("change_changes"))
            .and_where(col("tenant_id").eq(tenant))
            .and_where(col("id").eq(id))
            .to_owned();
        match conn.query_one(&select).await? {
            Some(row) => Ok(Some(from_json(&row, "record")?)),
            None => Ok(None),
        }
    }

    pub async fn list_changes(
        &self,
        tenant: &str,
        filter: &ChangeFilter,
    ) -> StoreResult<Vec<Change>> {
        let mut select = Query::select();
        select
            .column((Alias::new("c"), Alias::new("record")))
            .from_as(Alias::new("change_changes"), Alias::new("c"))
            .and_where(Expr::col((Alias::new("c"), Alias::new("tenant_id"))).eq(tenant))
            .order_by((Alias::new("c"), Alias::new("id")), Order::Asc)
            .limit(filter.limit);
        if !filter.states.is_empty() {
            select.and_where(
                Expr::col((Alias::new("c"), Alias::new("state")))
                    .is_in(filter.states.iter().map(|s| s.as_str())),
            );
        }
        if let Some(change_type) = filter.change_type {
            select.and_where(
                Expr::col((Alias::new("c"), Alias::new("change_type"))).eq(change_type.as_str()),
            );
        }
        if let Some(after) = filter.after {
            select.and_where(Expr::col((Alias::new("c"), Alias::new("id"))).gt(after));
        }
        if let Some(ci) = filter.ci {
            select.and_where(
                Expr::col((Alias::new("c"), Alias::new("id"))).in_subquery(
                    Query::select()
                        .column(Alias::new("change_id"))
                        .from(Alias::new("change_affected_cis"))
                        .and_where(col("tenant_id").eq(tenant))
                        .and_where(col("ci_id").eq(ci))
                        .to_owned(),
                ),
            );
        }
        let rows = self.db().connection().query_all(&select).await?;
        rows.iter().map(|row| from_json(row, "record")).collect()
    }

    /// Changes holding their window (scheduled or implementing) that overlap `range`.
    pub async fn booked(&self, tenant: &str, range: TimeRange) -> StoreResult<Vec<Booked>> {
        let changes = self
            .windowed(
                tenant,
                range,
                &[ChangeState::Scheduled, ChangeState::Implementing],
            )
            .await?;
        Ok(changes
            .into_iter()
            .filter_map(|change| {
                let window = change.window?;
                Some(Booked {
                    id: change.id,
                    number: change.number,
                    cis: change.affected_cis,
                    range: window.range,
                    implementer: change.implementer,
                })
            })
            .collect())
    }

    /// Changes in `states` whose planned window overlaps `range`. Windows last at most
    /// [`MAX_WINDOW`], so only starts from `range.start - MAX_WINDOW` on are read (an index range).
    pub async fn windowed(
        &self,
        tenant: &str,
        range: TimeRange,
        states: &[ChangeState],
    ) -> StoreResult<Vec<Change>> {
        let select = Query::select()
            .column(Alias::new("record"))
            .from(Alias::new("change_changes"))
            .and_where(col("tenant_id").eq(tenant))
            .and_where(col("planned_start").gt(range.start - MAX_WINDOW))
            .and_where(col("planned_start").lt(range.end))
            .and_where(col("planned_end").gt(range.start))
            .and_where(col("state").is_in(states.iter().map(|s| s.as_str())))
            .order_by(Alias::new("planned_start"), Order::Asc)
            .to_owned();
        let rows = self.db().connection().query_all(&select).await?;
        rows.iter().map(|row| from_json(row, "record")).collect()
    }

    /// How past implementations on any of `cis` ended (the risk's failure history).
    pub async fn past_outcomes(&self, tenant: &str, cis: &[Uuid]) -> StoreResult<PastChanges> {
        if cis.is_empty() {
            return Ok(PastChanges::default());
        }
        let select = Query::select()
            .column(Alias::new("outcome"))
            .from(Alias::new("change_changes"))
            .and_where(col("tenant_id").eq(tenant))
            .and_where(col("outcome").is_not_null())
            .and_where(
                col("id").in_subquery(
                    Query::select()
                        .distinct()
                        .column(Alias::new("change_id"))
                        .from(Alias::new("change_affected_cis"))
                        .and_where(col("tenant_id").eq(tenant))
                        .and_where(col("ci_id").is_in(cis.iter().copied()))
                        .to_owned(),
                ),
            )
            .to_owned();
        let mut past = PastChanges::default();
        for row in self.db().connection().query_all(&select).await? {
            let outcome: String = row.try_get("", "outcome")?;
            past.completed += 1;
            if Outcome::parse(&outcome) == Some(Outcome::Failed) {
                past.failed += 1;
            }
        }
        Ok(past)
    }

    /// Changes implemented successfully since `since` (suspects for a new incident).
    pub async fn implemented_since(
        &self,
        tenant: &str,
        since: DateTime<Utc>,
    ) -> StoreResult<Vec<Change>> {
        let select = Query::select()
            .column(Alias::new("record"))
            .from(Alias::new("change_changes"))
            .and_where(col("tenant_id").eq(tenant))
            .and_where(col("implement_ended_at").gte(since))
            .and_where(col("outcome").eq(Outcome::Successful.as_str()))
            .to_owned();
        let rows = self.db().connection().query_all(&select).await?;
        rows.iter().map(|row| from_json(row, "record")).collect()
    }

    /// What metrics need of the changes created in `range`.
    pub async fn facts(&self, tenant: &str, range: TimeRange) -> StoreResult<Vec<ChangeFacts>> {
        let select = Query::select()
            .columns(
                [
                    "assignment_group_id",
                    "change_type",
                    "created_at",
                    "outcome",
                    "implement_ended_at",
                ]
                .map(Alias::new),
            )
            .from(Alias::new("change_changes"))
            .and_where(col("tenant_id").eq(tenant))
            .and_where(col("created_at").gte(range.start))
            .and_where(col("created_at").lt(range.end))
            .to_owned();
        let mut facts = Vec::new();
        for row in self.db().connection().query_all(&select).await? {
            let change_type: String = row.try_get("", "change_type")?;
            let outcome: Option<String> = row.try_get("", "outcome")?;
            facts.push(ChangeFacts {
                group: row.try_get("", "assignment_group_id")?,
                change_type: ChangeType::parse(&change_type)
                    .ok_or_else(|| StoreError::Corrupt(format!("change type {change_type:?}")))?,
                created_at: row.try_get("", "created_at")?,
                outcome: outcome.as_deref().and_then(Outcome::parse),
                implement_ended_at: row.try_get("", "implement_ended_at")?,
            });
        }
        Ok(facts)
    }

    // ---- history ----

    #[allow(clippy::too_many_arguments)]
    pub async fn append_history<C: ConnectionTrait>(
        &self,
        conn: &C,
        change: &Change,
        actor: &HistoryActor,
        action: &str,
        changes: &[FieldChange],
        note: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        let mut insert = Query::insert();
        insert
            .into_table(Alias::new("change_history"))
            .columns(
                [
                    "id",
                    "tenant_id",
                    "change_id",
                    "version",
                    "actor_id",
                    "actor_name",
                    "actor_roles",
                    "action",
                    "changes",
                    "note",
                    "at",
                ]
                .map(Alias::new),
            )
            .values([
                Expr::value(desk_kit::ids::new_uuid()),
                Expr::value(change.tenant.as_str()),
                Expr::value(change.id),
                Expr::value(change.version),
                Expr::value(actor.subject.as_str()),
                Expr::value(actor.name.as_str()),
                Expr::value(json(&actor.roles)?),
                Expr::value(action),
                Expr::value(json(&changes)?),
                Expr::value(note),
                Expr::value(at),
            ])
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        conn.execute(&insert).await?;
        Ok(())
    }

    pub async fn history(&self, tenant: &str, change: Uuid) -> StoreResult<Vec<HistoryEntry>> {
        let select = Query::select()
            .columns(
                [
                    "version",
                    "actor_id",
                    "actor_name",
                    "actor_roles",
                    "action",
                    "changes",
                    "note",
                    "at",
                ]
                .map(Alias::new),
            )
            .from(Alias::new("change_history"))
            .and_where(col("tenant_id").eq(tenant))
            .and_where(col("change_id").eq(change))
            .order_by(Alias::new("version"), Order::Asc)
            .order_by(Alias::new("at"), Order::Asc)
            .to_owned();
        let mut entries = Vec::new();
        for row in self.db().connection().query_all(&select).await? {
            entries.push(HistoryEntry {
                version: row.try_get("", "version")?,
                actor: HistoryActor {
                    subject: row.try_get("", "actor_id")?,
                    name: row.try_get("", "actor_name")?,
                    roles: from_json(&row, "actor_roles")?,
                },
                action: row.try_get("", "action")?,
                changes: from_json(&row, "changes")?,
                note: row.try_get("", "note")?,
                at: row.try_get("", "at")?,
            });
        }
        Ok(entries)
    }

    // ---- templates, freezes, maintenance windows ----

    async fn insert_record<T: Serialize>(
        &self,
        table: &str,
        tenant: &str,
        id: Uuid,
        range: Option<TimeRange>,
        at: DateTime<Utc>,
        record: &T,
    ) -> StoreResult<()> {
        let mut insert = Query::insert();
        insert
            .into_table(Alias::new(table))
            .columns(
                [
                    "id",
                    "tenant_id",
                    "starts_at",
                    "ends_at",
                    "created_at",
                    "record",
                ]
                .map(Alias::new),
            )
            .values([
                Expr::value(id),
                Expr::value(tenant),
                Expr::value(range.map(|r| r.start)),
                Expr::value(range.map(|r| r.end)),
                Expr::value(at),
                Expr::value(json(record)?),
            ])
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.db().connection().execute(&insert).await?;
        Ok(())
    }

    async fn records<T: DeserializeOwned>(
        &self,
        table: &str,
        tenant: &str,
        overlapping: Option<TimeRange>,
    ) -> StoreResult<Vec<T>> {
        let mut select = Query::select();
        select
            .column(Alias::new("record"))
            .from(Alias::new(table))
            .and_where(col("tenant_id").eq(tenant))
            .order_by(Alias::new("starts_at"), Order::Asc)
            .order_by(Alias::new("created_at"), Order::Asc);
        if let Some(range) = overlapping {
            select
                .and_where(col("starts_at").lt(range.end))
                .and_where(col("ends_at").gt(range.start));
        }
        let rows = self.db().connection().query_all(&select).await?;
        rows.iter().map(|row| from_json(row, "record")).collect()
    }

    pub async fn insert_template(&self, tenant: &str, template: &Template) -> StoreResult<()> {
        self.insert_record(
            "change_templates",
            tenant,
            template.id,
            None,
            template.created_at,
            template,
        )
        .await
    }

    pub async fn templates(&self, tenant: &str) -> StoreResult<Vec<Template>> {
        self.records("change_templates", tenant, None).await
    }

    pub async fn template(&self, tenant: &str, id: Uuid) -> StoreResult<Option<Template>> {
        Ok(self
            .templates(tenant)
            .await?
            .into_iter()
            .find(|t| t.id == id))
    }

    pub async fn insert_freeze(
        &self,
        tenant: &str,
        freeze: &FreezeWindow,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        self.insert_record(
            "change_freeze_windows",
            tenant,
            freeze.id,
            Some(freeze.range),
            at,
            freeze,
        )
        .await
    }

    /// Freezes overlapping `range` (every freeze with `None`).
    pub async fn freezes(
        &self,
        tenant: &str,
        range: Option<TimeRange>,
    ) -> StoreResult<Vec<FreezeWindow>> {
        self.records("change_freeze_windows", tenant, range).await
    }

    pub async fn insert_maintenance(
        &self,
        tenant: &str,
        window: &MaintenanceWindow,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        self.insert_record(
            "change_maintenance_windows",
            tenant,
            window.id,
            None,
            at,
            window,
        )
        .await
    }

    pub async fn maintenance_windows(&self, tenant: &str) -> StoreResult<Vec<MaintenanceWindow>> {
        self.records("change_maintenance_windows", tenant, None)
            .await
    }

    // ---- policy and delegations ----

    /// The tenant's policy and its version (the default at version 0 before the first set).
    pub async fn policy<C: ConnectionTrait>(
        &self,
        conn: &C,
        tenant: &str,
    ) -> StoreResult<(ChangePolicy, i64)> {
        let select = Query::select()
            .columns(["record", "version"].map(Alias::new))
            .from(Alias::new("change_policies"))
            .and_where(col("tenant_id").eq(tenant))
            .to_owned();
        match conn.query_one(&select).await? {
            Some(row) => Ok((from_json(&row, "record")?, row.try_get("", "version")?)),
            None => Ok((ChangePolicy::default(), 0)),
        }
    }

    /// Sets the policy if it is still at `expected`; false when another write came first.
    pub async fn set_policy(
        &self,
        txn: &WriteTxn,
        tenant: &str,
        policy: &ChangePolicy,
        expected: i64,
    ) -> StoreResult<bool> {
        if expected == 0 {
            let mut insert = Query::insert();
            insert
                .into_table(Alias::new("change_policies"))
                .columns(["tenant_id", "version", "record"].map(Alias::new))
                .values([
                    Expr::value(tenant),
                    Expr::value(1i64),
                    Expr::value(json(policy)?),
                ])
                .map_err(|e| StoreError::Corrupt(e.to_string()))?
                .on_conflict(
                    OnConflict::column(Alias::new("tenant_id"))
                        .do_nothing()
                        .to_owned(),
                );
            return Ok(txn.execute(&insert).await?.rows_affected() == 1);
        }
        let update = Query::update()
            .table(Alias::new("change_policies"))
            .value(Alias::new("version"), expected + 1)
            .value(Alias::new("record"), json(policy)?)
            .and_where(col("tenant_id").eq(tenant))
            .and_where(col("version").eq(expected))
            .to_owned();
        Ok(txn.execute(&update).await?.rows_affected() == 1)
    }

    pub async fn delegate(&self, tenant: &str, delegation: &Delegation) -> StoreResult<()> {
        let mut insert = Query::insert();
        insert
            .into_table(Alias::new("change_delegations"))
            .columns(["tenant_id", "member_id", "delegate_id", "until"].map(Alias::new))
            .values([
                Expr::value(tenant),
                Expr::value(delegation.member.as_str()),
                Expr::value(delegation.delegate.as_str()),
                Expr::value(delegation.until),
            ])
            .map_err(|e| StoreError::Corrupt(e.to_string()))?
            .on_conflict(
                OnConflict::columns(["tenant_id", "member_id", "delegate_id"].map(Alias::new))
                    .update_column(Alias::new("until"))
                    .to_owned(),
            );
        self.db().connection().execute(&insert).await?;
        Ok(())
    }

    /// The delegations to `delegate` still running at `now`.
    pub async fn delegations_to(
        &self,
        tenant: &str,
        delegate: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<Delegation>> {
        let select = Query::select()
            .columns(["member_id", "delegate_id", "until"].map(Alias::new))
            .from(Alias::new("change_delegations"))
            .and_where(col("tenant_id").eq(tenant))
            .and_where(col("delegate_id").eq(delegate))
            .and_where(col("until").gt(now))
            .to_owned();
        let mut found = Vec::new();
        for row in self.db().connection().query_all(&select).await? {
            found.push(Delegation {
                member: row.try_get("", "member_id")?,
                delegate: row.try_get("", "delegate_id")?,
                until: row.try_get("", "until")?,
            });
        }
        Ok(found)
    }
}
