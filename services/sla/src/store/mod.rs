//! Persistence of calendars, policies, ticket histories, clocks, timers and the directory's
//! teams. Every query is scoped by tenant; the store decides nothing.
//!
//! Writes go through one [`WriteTxn`] carrying the state change and its outbox events,
//! committed by [`SlaStore::commit`] (or by the consumer, for effects of events).

pub mod migrations;

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use desk_business_time::{BusinessCalendar, CalendarSpec};
use desk_kit::{
    db::{Db, WriteTxn},
    events::Publisher,
    idempotency::IdempotencyKeys,
};
use sea_orm::{
    ConnectionTrait, DbErr, QueryResult,
    sea_query::{Alias, Expr, ExprTrait, LockBehavior, LockType, OnConflict, Order, Query},
};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use uuid::Uuid;

use crate::domain::{ClockState, Metric, Policy, PolicyKind, TicketHistory};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Db(#[from] DbErr),
    /// A row holds what the domain cannot read: a bug or a manual edit, never user input.
    #[error("corrupt row: {0}")]
    Corrupt(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Create keys of `CreateCalendar` and `CreatePolicy`, kept 48 hours.
pub const IDEMPOTENCY_KEYS: IdempotencyKeys =
    IdempotencyKeys::new("sla_idempotency_keys", "created_id", "calendar or policy");

/// A business calendar as stored: the spec (validated when written) and its metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Calendar {
    pub id: Uuid,
    pub tenant: String,
    pub name: String,
    pub spec: CalendarSpec,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What the service keeps of a ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketRecord {
    pub tenant: String,
    pub ticket_id: String,
    pub history: TicketHistory,
    /// The policies chosen when the ticket was first seen; a later policy does not change a
    /// running ticket's agreement (an update of the same policy recomputes it).
    pub sla_policy: Option<Uuid>,
    pub ola_policy: Option<Uuid>,
}

impl TicketRecord {
    pub fn policy_ids(&self) -> Vec<Uuid> {
        self.sla_policy.into_iter().chain(self.ola_policy).collect()
    }

    pub fn is_open(&self) -> bool {
        self.history
            .latest()
            .is_some_and(|ticket| !ticket.status.is_done())
    }
}

/// A clock's last fold, as lists need it, and the transitions already published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClockRow {
    pub ticket_id: String,
    pub policy_id: Uuid,
    pub metric: Metric,
    pub kind: PolicyKind,
    pub state: ClockState,
    pub due_at: Option<DateTime<Utc>>,
    pub team_id: Option<String>,
    pub published: Vec<String>,
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

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

pub struct SlaStore {
    publisher: Publisher,
}

impl SlaStore {
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

    // ---- calendars and policies: JSON records with a version ----

    async fn insert_record<C: ConnectionTrait, T: Serialize>(
        conn: &C,
        table: &str,
        tenant: &str,
        id: Uuid,
        version: i64,
        at: DateTime<Utc>,
        record: &T,
    ) -> StoreResult<()> {
        let mut insert = Query::insert();
        insert
            .into_table(Alias::new(table))
            .columns(["id", "tenant_id", "version", "created_at", "record"].map(Alias::new))
            .values([
                Expr::value(id),
                Expr::value(tenant),
                Expr::value(version),
                Expr::value(at),
                Expr::value(json(record)?),
            ])
            .map_err(corrupt)?;
        conn.execute(&insert).await?;
        Ok(())
    }

    /// Writes `record` at `version` over the row at `read_version`; false when another write
    /// came first (or the row is not the tenant's).
    async fn update_record<C: ConnectionTrait, T: Serialize>(
        conn: &C,
        table: &str,
        tenant: &str,
        id: Uuid,
        read_version: i64,
        record: &T,
    ) -> StoreResult<bool> {
        let update = Query::update()
            .table(Alias::new(table))
            .value(Alias::new("version"), Expr::value(read_version + 1))
            .value(Alias::new("record"), Expr::value(json(record)?))
            .and_where(col("tenant_id").eq(tenant))
            .and_where(col("id").eq(id))
            .and_where(col("version").eq(read_version))
            .to_owned();
        Ok(conn.execute(&update).await?.rows_affected() == 1)
    }

    async fn record<C: ConnectionTrait, T: DeserializeOwned>(
        conn: &C,
        table: &str,
        tenant: &str,
        id: Uuid,
    ) -> StoreResult<Option<T>> {
        let select = Query::select()
            .column(Alias::new("record"))
            .from(Alias::new(table))
            .and_where(col("tenant_id").eq(tenant))
            .and_where(col("id").eq(id))
            .to_owned();
        match conn.query_one(&select).await? {
            Some(row) => Ok(Some(from_json(&row, "record")?)),
            None => Ok(None),
        }
    }

    /// A page of records in creation order, after `after` (an id) when given.
    async fn records<C: ConnectionTrait, T: DeserializeOwned>(
        conn: &C,
        table: &str,
        tenant: &str,
        after: Option<Uuid>,
        limit: Option<u64>,
    ) -> StoreResult<Vec<T>> {
        let mut select = Query::select();
        select
            .column(Alias::new("record"))
            .from(Alias::new(table))
            .and_where(col("tenant_id").eq(tenant))
            .order_by(Alias::new("id"), Order::Asc);
        if let Some(after) = after {
            select.and_where(col("id").gt(after));
        }
        if let Some(limit) = limit {
            select.limit(limit);
        }
        let rows = conn.query_all(&select).await?;
        rows.iter().map(|row| from_json(row, "record")).collect()
    }

    pub async fn insert_calendar<C: ConnectionTrait>(
        &self,
        conn: &C,
        calendar: &Calendar,
    ) -> StoreResult<()> {
        Self::insert_record(
            conn,
            "sla_calendars",
            &calendar.tenant,
            calendar.id,
            calendar.version,
            calendar.created_at,
            calendar,
        )
        .await
    }

    pub async fn update_calendar<C: ConnectionTrait>(
        &self,
        conn: &C,
        calendar: &Calendar,
        read_version: i64,
    ) -> StoreResult<bool> {
        Self::update_record(
            conn,
            "sla_calendars",
            &calendar.tenant,
            calendar.id,
            read_version,
            calendar,
        )
        .await
    }

    pub async fn calendar<C: ConnectionTrait>(
        &self,
        conn: &C,
        tenant: &str,
        id: Uuid,
    ) -> StoreResult<Option<Calendar>> {
        Self::record(conn, "sla_calendars", tenant, id).await
    }

    pub async fn list_calendars(
        &self,
        tenant: &str,
        after: Option<Uuid>,
        limit: u64,
    ) -> StoreResult<Vec<Calendar>> {
        Self::records(
            self.db().connection(),
            "sla_calendars",
            tenant,
            after,
            Some(limit),
        )
        .await
    }

    /// Every calendar of the tenant, validated (a stored spec that no longer validates — a
    /// newer tz database dropping a zone — is left out, and its clocks count around the clock).
    pub async fn business_calendars<C: ConnectionTrait>(
        &self,
        conn: &C,
        tenant: &str,
    ) -> StoreResult<HashMap<Uuid, BusinessCalendar>> {
        let calendars: Vec<Calendar> =
            Self::records(conn, "sla_calendars", tenant, None, None).await?;
        Ok(calendars
            .into_iter()
            .filter_map(|c| match BusinessCalendar::new(c.spec) {
                Ok(calendar) => Some((c.id, calendar)),
                Err(problems) => {
                    tracing::warn!(calendar = %c.id, problems = %problems, "stored calendar no longer validates");
                    None
                }
            })
            .collect())
    }

    pub async fn insert_policy<C: ConnectionTrait>(
        &self,
        conn: &C,
        policy: &Policy,
    ) -> StoreResult<()> {
        Self::insert_record(
            conn,
            "sla_policies",
            &policy.tenant,
            policy.id,
            policy.version,
            policy.created_at,
            policy,
        )
        .await
    }

    pub async fn update_policy<C: ConnectionTrait>(
        &self,
        conn: &C,
        policy: &Policy,
        read_version: i64,
    ) -> StoreResult<bool> {
        Self::update_record(
            conn,
            "sla_policies",
            &policy.tenant,
            policy.id,
            read_version,
            policy,
        )
        .await
    }

    pub async fn policy<C: ConnectionTrait>(
        &self,
        conn: &C,
        tenant: &str,
        id: Uuid,
    ) -> StoreResult<Option<Policy>> {
        Self::record(conn, "sla_policies", tenant, id).await
    }

    pub async fn list_policies(
        &self,
        tenant: &str,
        after: Option<Uuid>,
        limit: u64,
    ) -> StoreResult<Vec<Policy>> {
        Self::records(
            self.db().connection(),
            "sla_policies",
            tenant,
            after,
            Some(limit),
        )
        .await
    }

    pub async fn policies<C: ConnectionTrait>(
        &self,
        conn: &C,
        tenant: &str,
    ) -> StoreResult<Vec<Policy>> {
        Self::records(conn, "sla_policies", tenant, None, None).await
    }

    // ---- tickets ----

    pub async fn ticket<C: ConnectionTrait>(
        &self,
        conn: &C,
        tenant: &str,
        ticket_id: &str,
    ) -> StoreResult<Option<TicketRecord>> {
        let select = Query::select()
            .column(Alias::new("record"))
            .from(Alias::new("sla_tickets"))
            .and_where(col("tenant_id").eq(tenant))
            .and_where(col("ticket_id").eq(ticket_id))
            .to_owned();
        match conn.query_one(&select).await? {
            Some(row) => Ok(Some(from_json(&row, "record")?)),
            None => Ok(None),
        }
    }

    pub async fn save_ticket<C: ConnectionTrait>(
        &self,
        conn: &C,
        ticket: &TicketRecord,
    ) -> StoreResult<()> {
        let latest = ticket.history.latest();
        let created_at = ticket
            .history
            .first()
            .map(|f| f.ticket.created_at)
            .unwrap_or_default();
        let team = latest.and_then(|t| t.team_id.clone());
        let mut insert = Query::insert();
        insert
            .into_table(Alias::new("sla_tickets"))
            .columns(
                [
                    "tenant_id",
                    "ticket_id",
                    "created_at",
                    "open",
                    "team_id",
                    "record",
                ]
                .map(Alias::new),
            )
            .values([
                Expr::value(ticket.tenant.as_str()),
                Expr::value(ticket.ticket_id.as_str()),
                Expr::value(created_at),
                Expr::value(ticket.is_open()),
                Expr::value(team),
                Expr::value(json(ticket)?),
            ])
            .map_err(corrupt)?
            .on_conflict(
                OnConflict::columns(["tenant_id", "ticket_id"].map(Alias::new))
                    .update_columns(["open", "team_id", "record"].map(Alias::new))
                    .to_owned(),
            );
        conn.execute(&insert).await?;
        Ok(())
    }

    /// Tickets still open (their clocks may move), for recomputation.
    pub async fn open_tickets<C: ConnectionTrait>(
        &self,
        conn: &C,
        tenant: &str,
    ) -> StoreResult<Vec<TicketRecord>> {
        let select = Query::select()
            .column(Alias::new("record"))
            .from(Alias::new("sla_tickets"))
            .and_where(col("tenant_id").eq(tenant))
            .and_where(col("open").eq(true))
            .order_by(Alias::new("created_at"), Order::Asc)
            .to_owned();
        let rows = conn.query_all(&select).await?;
        rows.iter().map(|row| from_json(row, "record")).collect()
    }

    /// Tickets created in `[start, end)`, for KPIs.
    pub async fn tickets_created(
        &self,
        tenant: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> StoreResult<Vec<TicketRecord>> {
        let select = Query::select()
            .column(Alias::new("record"))
            .from(Alias::new("sla_tickets"))
            .and_where(col("tenant_id").eq(tenant))
            .and_where(col("created_at").gte(start))
            .and_where(col("created_at").lt(end))
            .to_owned();
        let rows = self.db().connection().query_all(&select).await?;
        rows.iter().map(|row| from_json(row, "record")).collect()
    }

    // ---- clocks ----

    pub async fn clocks<C: ConnectionTrait>(
        &self,
        conn: &C,
        tenant: &str,
        ticket_id: &str,
    ) -> StoreResult<Vec<ClockRow>> {
        let select = Query::select()
            .columns(
                [
                    "ticket_id",
                    "policy_id",
                    "metric",
                    "kind",
                    "state",
                    "due_at",
                    "team_id",
                    "published",
                ]
                .map(Alias::new),
            )
            .from(Alias::new("sla_clocks"))
            .and_where(col("tenant_id").eq(tenant))
            .and_where(col("ticket_id").eq(ticket_id))
            .to_owned();
        conn.query_all(&select)
            .await?
            .iter()
            .map(clock_row)
            .collect()
    }

    pub async fn save_clock<C: ConnectionTrait>(
        &self,
        conn: &C,
        tenant: &str,
        clock: &ClockRow,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let mut insert = Query::insert();
        insert
            .into_table(Alias::new("sla_clocks"))
            .columns(
                [
                    "tenant_id",
                    "ticket_id",
                    "policy_id",
                    "metric",
                    "kind",
                    "state",
                    "due_at",
                    "team_id",
                    "published",
                    "updated_at",
                ]
                .map(Alias::new),
            )
            .values([
                Expr::value(tenant),
                Expr::value(clock.ticket_id.as_str()),
                Expr::value(clock.policy_id),
                Expr::value(clock.metric.as_str()),
                Expr::value(clock.kind.as_str()),
                Expr::value(clock.state.as_str()),
                Expr::value(clock.due_at),
                Expr::value(clock.team_id.clone()),
                Expr::value(json(&clock.published)?),
                Expr::value(now),
            ])
            .map_err(corrupt)?
            .on_conflict(
                OnConflict::columns(
                    ["tenant_id", "ticket_id", "policy_id", "metric"].map(Alias::new),
                )
                .update_columns(
                    [
                        "kind",
                        "state",
                        "due_at",
                        "team_id",
                        "published",
                        "updated_at",
                    ]
                    .map(Alias::new),
                )
                .to_owned(),
            );
        conn.execute(&insert).await?;
        Ok(())
    }

    /// Running SLA/OLA clocks of `teams` due before `until` (breached ones included), soonest first.
    pub async fn clocks_due_before(
        &self,
        tenant: &str,
        teams: &[String],
        until: DateTime<Utc>,
        limit: u64,
    ) -> StoreResult<Vec<ClockRow>> {
        let select = Query::select()
            .columns(
                [
                    "ticket_id",
                    "policy_id",
                    "metric",
                    "kind",
                    "state",
                    "due_at",
                    "team_id",
                    "published",
                ]
                .map(Alias::new),
            )
            .from(Alias::new("sla_clocks"))
            .and_where(col("tenant_id").eq(tenant))
            .and_where(
                col("state").is_in([ClockState::Running.as_str(), ClockState::Breached.as_str()]),
            )
            .and_where(col("due_at").is_not_null())
            .and_where(col("due_at").lt(until))
            .and_where(col("team_id").is_in(teams.iter().map(String::as_str)))
            .order_by(Alias::new("due_at"), Order::Asc)
            .limit(limit)
            .to_owned();
        self.db()
            .connection()
            .query_all(&select)
            .await?
            .iter()
            .map(clock_row)
            .collect()
    }

    /// Every clock of the tenant (KPIs: compliance).
    pub async fn all_clocks(&self, tenant: &str) -> StoreResult<Vec<ClockRow>> {
        let select = Query::select()
            .columns(
                [
                    "ticket_id",
                    "policy_id",
                    "metric",
                    "kind",
                    "state",
                    "due_at",
                    "team_id",
                    "published",
                ]
                .map(Alias::new),
            )
            .from(Alias::new("sla_clocks"))
            .and_where(col("tenant_id").eq(tenant))
            .to_owned();
        self.db()
            .connection()
            .query_all(&select)
            .await?
            .iter()
            .map(clock_row)
            .collect()
    }

    // ---- timers ----

    /// Sets (or, with `None`, removes) the ticket's timer.
    pub async fn set_timer<C: ConnectionTrait>(
        &self,
        conn: &C,
        tenant: &str,
        ticket_id: &str,
        fire_at: Option<DateTime<Utc>>,
    ) -> StoreResult<()> {
        match fire_at {
            None => {
                let delete = Query::delete()
                    .from_table(Alias::new("sla_timers"))
                    .and_where(col("tenant_id").eq(tenant))
                    .and_where(col("ticket_id").eq(ticket_id))
                    .to_owned();
                conn.execute(&delete).await?;
            }
            Some(at) => {
                let mut insert = Query::insert();
                insert
                    .into_table(Alias::new("sla_timers"))
                    .columns(["tenant_id", "ticket_id", "fire_at"].map(Alias::new))
                    .values([Expr::value(tenant), Expr::value(ticket_id), Expr::value(at)])
                    .map_err(corrupt)?
                    .on_conflict(
                        OnConflict::columns(["tenant_id", "ticket_id"].map(Alias::new))
                            .update_column(Alias::new("fire_at"))
                            .to_owned(),
                    );
                conn.execute(&insert).await?;
            }
        }
        Ok(())
    }

    /// Timers due at `now`, oldest first, locked for this transaction: on PostgreSQL with
    /// `FOR UPDATE SKIP LOCKED`, so replicas take disjoint rows; SQLite has one writer, whose
    /// transaction already excludes every other.
    pub async fn take_due_timers(
        &self,
        txn: &WriteTxn,
        now: DateTime<Utc>,
        limit: u64,
    ) -> StoreResult<Vec<(String, String)>> {
        let mut select = Query::select();
        select
            .columns(["tenant_id", "ticket_id"].map(Alias::new))
            .from(Alias::new("sla_timers"))
            .and_where(col("fire_at").lte(now))
            .order_by(Alias::new("fire_at"), Order::Asc)
            .limit(limit);
        if self.db().is_postgres() {
            select.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
        }
        let rows = txn.query_all(&select).await?;
        rows.iter()
            .map(|row| Ok((row.try_get("", "tenant_id")?, row.try_get("", "ticket_id")?)))
            .collect()
    }

    /// How many timers are due at `now` (for metrics and tests).
    pub async fn due_timer_count(&self, now: DateTime<Utc>) -> StoreResult<i64> {
        let select = Query::select()
            .expr_as(Expr::col(Alias::new("ticket_id")).count(), Alias::new("n"))
            .from(Alias::new("sla_timers"))
            .and_where(col("fire_at").lte(now))
            .to_owned();
        let row = self.db().connection().query_one(&select).await?;
        Ok(row
            .map(|r| r.try_get::<i64>("", "n"))
            .transpose()?
            .unwrap_or(0))
    }

    // ---- teams ----

    pub async fn save_team<C: ConnectionTrait>(
        &self,
        conn: &C,
        tenant: &str,
        team_id: &str,
        calendar_id: Option<Uuid>,
        region: &str,
        version: i64,
    ) -> StoreResult<()> {
        let mut insert = Query::insert();
        insert
            .into_table(Alias::new("sla_teams"))
            .columns(["tenant_id", "team_id", "calendar_id", "region", "version"].map(Alias::new))
            .values([
                Expr::value(tenant),
                Expr::value(team_id),
                Expr::value(calendar_id.map(|c| c.to_string())),
                Expr::value(region),
                Expr::value(version),
            ])
            .map_err(corrupt)?
            .on_conflict(
                OnConflict::columns(["tenant_id", "team_id"].map(Alias::new))
                    .update_columns(["calendar_id", "region", "version"].map(Alias::new))
                    .action_and_where(
                        Expr::col((Alias::new("sla_teams"), Alias::new("version"))).lt(version),
                    )
                    .to_owned(),
            );
        conn.execute(&insert).await?;
        Ok(())
    }

    /// Team → calendar, for the tenant's folds.
    pub async fn team_calendars<C: ConnectionTrait>(
        &self,
        conn: &C,
        tenant: &str,
    ) -> StoreResult<HashMap<String, Uuid>> {
        let select = Query::select()
            .columns(["team_id", "calendar_id"].map(Alias::new))
            .from(Alias::new("sla_teams"))
            .and_where(col("tenant_id").eq(tenant))
            .to_owned();
        let mut map = HashMap::new();
        for row in conn.query_all(&select).await? {
            let team: String = row.try_get("", "team_id")?;
            let calendar: Option<String> = row.try_get("", "calendar_id")?;
            if let Some(calendar) = calendar.and_then(|c| Uuid::parse_str(&c).ok()) {
                map.insert(team, calendar);
            }
        }
        Ok(map)
    }

    /// Team → region, for KPIs by region.
    pub async fn team_regions(&self, tenant: &str) -> StoreResult<HashMap<String, String>> {
        let select = Query::select()
            .columns(["team_id", "region"].map(Alias::new))
            .from(Alias::new("sla_teams"))
            .and_where(col("tenant_id").eq(tenant))
            .to_owned();
        let mut map = HashMap::new();
        for row in self.db().connection().query_all(&select).await? {
            map.insert(row.try_get("", "team_id")?, row.try_get("", "region")?);
        }
        Ok(map)
    }
}

fn clock_row(row: &QueryResult) -> StoreResult<ClockRow> {
    let metric: String = row.try_get("", "metric")?;
    let kind: String = row.try_get("", "kind")?;
    let state: String = row.try_get("", "state")?;
    Ok(ClockRow {
        ticket_id: row.try_get("", "ticket_id")?,
        policy_id: row.try_get("", "policy_id")?,
        metric: Metric::parse(&metric).ok_or_else(|| corrupt(format!("metric {metric}")))?,
        kind: match kind.as_str() {
            "sla" => PolicyKind::Sla,
            "ola" => PolicyKind::Ola,
            other => return Err(corrupt(format!("kind {other}"))),
        },
        state: ClockState::parse(&state).ok_or_else(|| corrupt(format!("state {state}")))?,
        due_at: row.try_get("", "due_at")?,
        team_id: row.try_get("", "team_id")?,
        published: from_json(row, "published")?,
    })
}
