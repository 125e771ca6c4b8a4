//! Persistence of offerings (and every version of them), requests with the rows that index them
//! (who an approval waits for, tasks by team), delegations, request numbers and the directory
//! projection. Every query is scoped by tenant; the store decides nothing.

pub mod migrations;

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use desk_kit::{
    db::{Db, WriteTxn},
    events::{OutgoingEvent, Publisher},
    idempotency::IdempotencyKeys,
};
use sea_orm::{
    ConnectionTrait, DbBackend, DbErr, QueryResult, Statement,
    sea_query::{Alias, Expr, ExprTrait, Func, JoinType, OnConflict, Order, Query},
};
use serde::{Serialize, de::DeserializeOwned};
use uuid::Uuid;

use crate::domain::{Delegation, Offering, fulfillment::TaskState, request::Request};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Db(#[from] DbErr),
    /// A row holds what the domain cannot read: a bug or a manual edit, never user input.
    #[error("corrupt row: {0}")]
    Corrupt(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Keys of `SubmitRequest`, kept 48 hours: a retried submit answers the first request.
pub const IDEMPOTENCY_KEYS: IdempotencyKeys =
    IdempotencyKeys::new("catalog_idempotency_keys", "request_id", "request");

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

fn insert_values(
    table: &str,
    values: Vec<(&'static str, Expr)>,
) -> StoreResult<sea_orm::sea_query::InsertStatement> {
    let mut insert = Query::insert();
    insert
        .into_table(Alias::new(table))
        .columns(values.iter().map(|(name, _)| Alias::new(*name)))
        .values(values.into_iter().map(|(_, value)| value))
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    Ok(insert)
}

/// A person as the directory's events told it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectedPerson {
    pub person_id: String,
    pub subject: String,
    pub manager_id: String,
    pub active: bool,
    pub version: i64,
}

pub struct CatalogStore {
    publisher: Publisher,
}

impl CatalogStore {
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

    pub async fn stage_many(
        &self,
        txn: &WriteTxn,
        events: Vec<OutgoingEvent>,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        Ok(self.publisher.stage_many(txn, events, now).await?)
    }

    // ---- offerings ----

    pub async fn insert_offering(&self, txn: &WriteTxn, offering: &Offering) -> StoreResult<()> {
        let insert = insert_values(
            "catalog_offerings",
            vec![
                ("id", Expr::value(offering.id)),
                ("tenant_id", Expr::value(offering.tenant.as_str())),
                ("version", Expr::value(offering.version)),
                (
                    "category",
                    Expr::value(offering.definition.category.as_str()),
                ),
                ("active", Expr::value(offering.definition.active)),
                ("created_at", Expr::value(offering.created_at)),
                ("updated_at", Expr::value(offering.updated_at)),
                ("record", Expr::value(json(offering)?)),
            ],
        )?;
        txn.execute(&insert).await?;
        self.insert_version(txn, offering).await
    }

    async fn insert_version(&self, txn: &WriteTxn, offering: &Offering) -> StoreResult<()> {
        let insert = insert_values(
            "catalog_offering_versions",
            vec![
                ("tenant_id", Expr::value(offering.tenant.as_str())),
                ("offering_id", Expr::value(offering.id)),
                ("version", Expr::value(offering.version)),
                ("record", Expr::value(json(offering)?)),
            ],
        )?;
        txn.execute(&insert).await?;
        Ok(())
    }

    /// Writes the new version over the one read at `read_version`, keeping it among the
    /// versions; false when another write came first.
    pub async fn update_offering(
        &self,
        txn: &WriteTxn,
        offering: &Offering,
        read_version: i64,
    ) -> StoreResult<bool> {
        let update = Query::update()
            .table(Alias::new("catalog_offerings"))
            .value(Alias::new("version"), offering.version)
            .value(
                Alias::new("category"),
                offering.definition.category.as_str(),
            )
            .value(Alias::new("active"), offering.definition.active)
            .value(Alias::new("updated_at"), offering.updated_at)
            .value(Alias::new("record"), json(offering)?)
            .and_where(col("tenant_id").eq(offering.tenant.as_str()))
            .and_where(col("id").eq(offering.id))
            .and_where(col("version").eq(read_version))
            .to_owned();
        if txn.execute(&update).await?.rows_affected() != 1 {
            return Ok(false);
        }
        self.insert_version(txn, offering).await?;
        Ok(true)
    }

    /// The current version.
    pub async fn offering(&self, tenant: &str, id: Uuid) -> StoreResult<Option<Offering>> {
        let select = Query::select()
            .column(Alias::new("record"))
            .from(Alias::new("catalog_offerings"))
            .and_where(col("tenant_id").eq(tenant))
            .and_where(col("id").eq(id))
            .to_owned();
        match self.db().connection().query_one(&select).await? {
            Some(row) => Ok(Some(from_json(&row, "record")?)),
            None => Ok(None),
        }
    }

    /// One version, as it was saved (what a request made against it reads).
    pub async fn offering_version<C: ConnectionTrait>(
        &self,
        conn: &C,
        tenant: &str,
        id: Uuid,
        version: i64,
    ) -> StoreResult<Option<Offering>> {
        let select = Query::select()
            .column(Alias::new("record"))
            .from(Alias::new("catalog_offering_versions"))
            .and_where(col("tenant_id").eq(tenant))
            .and_where(col("offering_id").eq(id))
            .and_where(col("version").eq(version))
            .to_owned();
        match conn.query_one(&select).await? {
            Some(row) => Ok(Some(from_json(&row, "record")?)),
            None => Ok(None),
        }
    }

    pub async fn offerings(
        &self,
        tenant: &str,
        category: Option<&str>,
    ) -> StoreResult<Vec<Offering>> {
        let mut select = Query::select();
        select
            .column(Alias::new("record"))
            .from(Alias::new("catalog_offerings"))
            .and_where(col("tenant_id").eq(tenant))
            .and_where(col("active").eq(true))
            .order_by(Alias::new("id"), Order::Asc);
        if let Some(category) = category {
            select.and_where(col("category").eq(category));
        }
        let rows = self.db().connection().query_all(&select).await?;
        rows.iter().map(|row| from_json(row, "record")).collect()
    }

    /// Requests per offering of the tenant.
    pub async fn popularity(&self, tenant: &str) -> StoreResult<HashMap<Uuid, i64>> {
        let select = Query::select()
            .column(Alias::new("offering_id"))
            .expr_as(Func::count(col("id")), Alias::new("requests"))
            .from(Alias::new("catalog_requests"))
            .and_where(col("tenant_id").eq(tenant))
            .group_by_col(Alias::new("offering_id"))
            .to_owned();
        let mut counts = HashMap::new();
        for row in self.db().connection().query_all(&select).await? {
            counts.insert(
                row.try_get("", "offering_id")?,
                row.try_get("", "requests")?,
            );
        }
        Ok(counts)
    }

    // ---- requests ----

    /// The tenant's next request number, `REQ-000001` on.
    pub async fn next_number<C: ConnectionTrait>(
        &self,
        conn: &C,
        tenant: &str,
    ) -> StoreResult<String> {
        let (sql, backend) = if self.db().is_postgres() {
            (
                "INSERT INTO catalog_counters (tenant_id, last_value) VALUES ($1, 1) \
                 ON CONFLICT (tenant_id) DO UPDATE SET last_value = catalog_counters.last_value + 1 \
                 RETURNING last_value",
                DbBackend::Postgres,
            )
        } else {
            (
                "INSERT INTO catalog_counters (tenant_id, last_value) VALUES (?, 1) \
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
        Ok(format!("REQ-{value:06}"))
    }

    fn request_values(request: &Request) -> StoreResult<Vec<(&'static str, Expr)>> {
        Ok(vec![
            ("state", Expr::value(request.state.as_str())),
            ("timer_at", Expr::value(request.next_timer())),
            ("version", Expr::value(request.version)),
            ("updated_at", Expr::value(request.updated_at)),
            ("record", Expr::value(json(request)?)),
        ])
    }

    pub async fn insert_request(&self, txn: &WriteTxn, request: &Request) -> StoreResult<()> {
        let mut values = vec![
            ("id", Expr::value(request.id)),
            ("tenant_id", Expr::value(request.tenant.as_str())),
            ("number", Expr::value(request.number.as_str())),
            ("offering_id", Expr::value(request.offering_id)),
            ("requester", Expr::value(request.requester.as_str())),
            ("created_at", Expr::value(request.created_at)),
        ];
        values.extend(Self::request_values(request)?);
        txn.execute(&insert_values("catalog_requests", values)?)
            .await?;
        self.replace_index(&**txn, request, true).await
    }

    /// Writes `request` over the row read at `read_version`; false when another write came
    /// first (the caller answers `ABORTED` or, for a worker, tries again later).
    pub async fn update_request<C: ConnectionTrait>(
        &self,
        conn: &C,
        request: &Request,
        read_version: i64,
    ) -> StoreResult<bool> {
        let mut update = Query::update();
        update.table(Alias::new("catalog_requests"));
        for (name, value) in Self::request_values(request)? {
            update.value(Alias::new(name), value);
        }
        update
            .and_where(col("tenant_id").eq(request.tenant.as_str()))
            .and_where(col("id").eq(request.id))
            .and_where(col("version").eq(read_version));
        if conn.execute(&update).await?.rows_affected() != 1 {
            return Ok(false);
        }
        self.replace_index(conn, request, false).await?;
        Ok(true)
    }

    /// The rows that find a request by approver and its tasks by team.
    async fn replace_index<C: ConnectionTrait>(
        &self,
        conn: &C,
        request: &Request,
        fresh: bool,
    ) -> StoreResult<()> {
        if !fresh {
            for table in ["catalog_approvers", "catalog_tasks"] {
                let delete = Query::delete()
                    .from_table(Alias::new(table))
                    .and_where(col("request_id").eq(request.id))
                    .to_owned();
                conn.execute(&delete).await?;
            }
        }
        let approvers = request.waiting_on();
        if !approvers.is_empty() {
            let mut insert = Query::insert();
            insert
                .into_table(Alias::new("catalog_approvers"))
                .columns(["tenant_id", "request_id", "subject"].map(Alias::new));
            for subject in approvers {
                insert
                    .values([
                        Expr::value(request.tenant.as_str()),
                        Expr::value(request.id),
                        Expr::value(subject),
                    ])
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            }
            conn.execute(&insert).await?;
        }
        let listed: Vec<_> = request
            .tasks
            .iter()
            .filter(|t| matches!(t.state, TaskState::Open | TaskState::Claimed))
            .collect();
        if !listed.is_empty() {
            let mut insert = Query::insert();
            insert.into_table(Alias::new("catalog_tasks")).columns(
                [
                    "tenant_id",
                    "request_id",
                    "task_key",
                    "group_id",
                    "automated",
                    "state",
                ]
                .map(Alias::new),
            );
            for task in listed {
                insert
                    .values([
                        Expr::value(request.tenant.as_str()),
                        Expr::value(request.id),
                        Expr::value(task.key.as_str()),
                        Expr::value(task.group.as_str()),
                        Expr::value(task.automated),
                        Expr::value(task.state.as_str()),
                    ])
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            }
            conn.execute(&insert).await?;
        }
        Ok(())
    }

    pub async fn request<C: ConnectionTrait>(
        &self,
        conn: &C,
        tenant: &str,
        id: Uuid,
    ) -> StoreResult<Option<Request>> {
        let select = Query::select()
            .column(Alias::new("record"))
            .from(Alias::new("catalog_requests"))
            .and_where(col("tenant_id").eq(tenant))
            .and_where(col("id").eq(id))
            .to_owned();
        match conn.query_one(&select).await? {
            Some(row) => Ok(Some(from_json(&row, "record")?)),
            None => Ok(None),
        }
    }

    /// A requester's requests, newest first, older than `before` (the page cursor).
    pub async fn requests_of(
        &self,
        tenant: &str,
        requester: &str,
        before: Option<Uuid>,
        limit: u64,
    ) -> StoreResult<Vec<Request>> {
        let mut select = Query::select();
        select
            .column(Alias::new("record"))
            .from(Alias::new("catalog_requests"))
            .and_where(col("tenant_id").eq(tenant))
            .and_where(col("requester").eq(requester))
            .order_by(Alias::new("id"), Order::Desc)
            .limit(limit);
        if let Some(before) = before {
            select.and_where(col("id").lt(before));
        }
        let rows = self.db().connection().query_all(&select).await?;
        rows.iter().map(|row| from_json(row, "record")).collect()
    }

    /// Requests whose pending approval waits for one of `subjects`.
    pub async fn awaiting(&self, tenant: &str, subjects: &[String]) -> StoreResult<Vec<Request>> {
        let select = Query::select()
            .column(Alias::new("record"))
            .from(Alias::new("catalog_requests"))
            .and_where(col("tenant_id").eq(tenant))
            .and_where(
                col("id").in_subquery(
                    Query::select()
                        .column(Alias::new("request_id"))
                        .from(Alias::new("catalog_approvers"))
                        .and_where(col("tenant_id").eq(tenant))
                        .and_where(col("subject").is_in(subjects.iter().map(String::as_str)))
                        .to_owned(),
                ),
            )
            .order_by(Alias::new("id"), Order::Asc)
            .limit(500)
            .to_owned();
        let rows = self.db().connection().query_all(&select).await?;
        rows.iter().map(|row| from_json(row, "record")).collect()
    }

    /// Requests with open or claimed tasks of `group` (or automated ones), oldest first.
    pub async fn with_tasks(
        &self,
        tenant: &str,
        group: Option<&str>,
        automated: bool,
    ) -> StoreResult<Vec<Request>> {
        let mut tasks = Query::select();
        tasks
            .column(Alias::new("request_id"))
            .from(Alias::new("catalog_tasks"))
            .and_where(col("tenant_id").eq(tenant));
        if let Some(group) = group {
            tasks.and_where(col("group_id").eq(group));
        }
        if automated {
            tasks.and_where(col("automated").eq(true));
        }
        let select = Query::select()
            .column(Alias::new("record"))
            .from(Alias::new("catalog_requests"))
            .and_where(col("tenant_id").eq(tenant))
            .and_where(col("id").in_subquery(tasks.to_owned()))
            .order_by(Alias::new("id"), Order::Asc)
            .limit(500)
            .to_owned();
        let rows = self.db().connection().query_all(&select).await?;
        rows.iter().map(|row| from_json(row, "record")).collect()
    }

    /// Requests with a timer due at `now`, oldest due first.
    pub async fn due(&self, now: DateTime<Utc>, limit: u64) -> StoreResult<Vec<(String, Uuid)>> {
        let select = Query::select()
            .columns(["tenant_id", "id"].map(Alias::new))
            .from(Alias::new("catalog_requests"))
            .and_where(col("timer_at").lte(now))
            .order_by(Alias::new("timer_at"), Order::Asc)
            .limit(limit)
            .to_owned();
        let mut due = Vec::new();
        for row in self.db().connection().query_all(&select).await? {
            due.push((row.try_get("", "tenant_id")?, row.try_get("", "id")?));
        }
        Ok(due)
    }

    // ---- delegations ----

    pub async fn set_delegation(&self, tenant: &str, delegation: &Delegation) -> StoreResult<()> {
        let mut insert = insert_values(
            "catalog_delegations",
            vec![
                ("tenant_id", Expr::value(tenant)),
                ("from_subject", Expr::value(delegation.from.as_str())),
                ("to_subject", Expr::value(delegation.to.as_str())),
                ("start_at", Expr::value(delegation.start)),
                ("end_at", Expr::value(delegation.end)),
            ],
        )?;
        insert.on_conflict(
            OnConflict::columns(["tenant_id", "from_subject"].map(Alias::new))
                .update_columns(["to_subject", "start_at", "end_at"].map(Alias::new))
                .to_owned(),
        );
        let txn = self.db().begin_write().await?;
        txn.execute(&insert).await?;
        txn.commit().await?;
        Ok(())
    }

    /// Who delegated their approvals to `to` at `now`.
    pub async fn delegators_of<C: ConnectionTrait>(
        &self,
        conn: &C,
        tenant: &str,
        to: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<String>> {
        let select = Query::select()
            .column(Alias::new("from_subject"))
            .from(Alias::new("catalog_delegations"))
            .and_where(col("tenant_id").eq(tenant))
            .and_where(col("to_subject").eq(to))
            .and_where(col("start_at").lte(now))
            .and_where(col("end_at").gt(now))
            .to_owned();
        let mut from = Vec::new();
        for row in conn.query_all(&select).await? {
            from.push(row.try_get("", "from_subject")?);
        }
        Ok(from)
    }

    // ---- the directory projection ----

    /// Keeps the person when the event is newer than what is kept.
    pub async fn project_person<C: ConnectionTrait>(
        &self,
        conn: &C,
        tenant: &str,
        person: &ProjectedPerson,
    ) -> StoreResult<()> {
        let mut insert = insert_values(
            "catalog_people",
            vec![
                ("tenant_id", Expr::value(tenant)),
                ("person_id", Expr::value(person.person_id.as_str())),
                ("subject", Expr::value(person.subject.as_str())),
                ("manager_id", Expr::value(person.manager_id.as_str())),
                ("active", Expr::value(person.active)),
                ("version", Expr::value(person.version)),
            ],
        )?;
        insert.on_conflict(
            OnConflict::columns(["tenant_id", "person_id"].map(Alias::new))
                .update_columns(["subject", "manager_id", "active", "version"].map(Alias::new))
                .action_and_where(
                    Expr::col((Alias::new("catalog_people"), Alias::new("version")))
                        .lt(Expr::col((Alias::new("excluded"), Alias::new("version")))),
                )
                .to_owned(),
        );
        conn.execute(&insert).await?;
        Ok(())
    }

    pub async fn project_membership<C: ConnectionTrait>(
        &self,
        conn: &C,
        tenant: &str,
        team: &str,
        person: &str,
        active: bool,
        version: i64,
    ) -> StoreResult<()> {
        let mut insert = insert_values(
            "catalog_memberships",
            vec![
                ("tenant_id", Expr::value(tenant)),
                ("team_id", Expr::value(team)),
                ("person_id", Expr::value(person)),
                ("active", Expr::value(active)),
                ("version", Expr::value(version)),
            ],
        )?;
        insert.on_conflict(
            OnConflict::columns(["tenant_id", "team_id", "person_id"].map(Alias::new))
                .update_columns(["active", "version"].map(Alias::new))
                .action_and_where(
                    Expr::col((Alias::new("catalog_memberships"), Alias::new("version")))
                        .lt(Expr::col((Alias::new("excluded"), Alias::new("version")))),
                )
                .to_owned(),
        );
        conn.execute(&insert).await?;
        Ok(())
    }

    /// The subject of the manager of the person whose token subject is `subject`.
    pub async fn manager_of<C: ConnectionTrait>(
        &self,
        conn: &C,
        tenant: &str,
        subject: &str,
    ) -> StoreResult<Option<String>> {
        let select = Query::select()
            .column((Alias::new("m"), Alias::new("subject")))
            .from_as(Alias::new("catalog_people"), Alias::new("p"))
            .join_as(
                JoinType::InnerJoin,
                Alias::new("catalog_people"),
                Alias::new("m"),
                Expr::col((Alias::new("m"), Alias::new("tenant_id")))
                    .equals((Alias::new("p"), Alias::new("tenant_id")))
                    .and(
                        Expr::col((Alias::new("m"), Alias::new("person_id")))
                            .equals((Alias::new("p"), Alias::new("manager_id"))),
                    ),
            )
            .and_where(Expr::col((Alias::new("p"), Alias::new("tenant_id"))).eq(tenant))
            .and_where(Expr::col((Alias::new("p"), Alias::new("subject"))).eq(subject))
            .and_where(Expr::col((Alias::new("p"), Alias::new("active"))).eq(true))
            .and_where(Expr::col((Alias::new("m"), Alias::new("active"))).eq(true))
            .to_owned();
        match conn.query_one(&select).await? {
            Some(row) => Ok(Some(row.try_get("", "subject")?)),
            None => Ok(None),
        }
    }

    /// The token subjects of a team's active members.
    pub async fn members_of<C: ConnectionTrait>(
        &self,
        conn: &C,
        tenant: &str,
        team: &str,
    ) -> StoreResult<Vec<String>> {
        let select = Query::select()
            .column((Alias::new("p"), Alias::new("subject")))
            .from_as(Alias::new("catalog_memberships"), Alias::new("t"))
            .join_as(
                JoinType::InnerJoin,
                Alias::new("catalog_people"),
                Alias::new("p"),
                Expr::col((Alias::new("p"), Alias::new("tenant_id")))
                    .equals((Alias::new("t"), Alias::new("tenant_id")))
                    .and(
                        Expr::col((Alias::new("p"), Alias::new("person_id")))
                            .equals((Alias::new("t"), Alias::new("person_id"))),
                    ),
            )
            .and_where(Expr::col((Alias::new("t"), Alias::new("tenant_id"))).eq(tenant))
            .and_where(Expr::col((Alias::new("t"), Alias::new("team_id"))).eq(team))
            .and_where(Expr::col((Alias::new("t"), Alias::new("active"))).eq(true))
            .and_where(Expr::col((Alias::new("p"), Alias::new("active"))).eq(true))
            .order_by((Alias::new("p"), Alias::new("subject")), Order::Asc)
            .to_owned();
        let mut members = Vec::new();
        for row in conn.query_all(&select).await? {
            members.push(row.try_get("", "subject")?);
        }
        Ok(members)
    }
}
