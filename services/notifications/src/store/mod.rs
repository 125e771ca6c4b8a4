//! Persistence: rules, templates, preferences, webhook endpoints, the directory and ticket
//! projections, deliveries (the durable work of the sender, and its log) and the in-app feed.
//! Every query is scoped by tenant except the sender's claim of due deliveries; the store decides
//! nothing.

pub mod migrations;

use chrono::{DateTime, Utc};
use desk_kit::{
    db::{Db, WriteTxn},
    events::Publisher,
};
use sea_orm::{
    ConnectionTrait, DbBackend, DbErr, QueryResult, Statement,
    sea_query::{Alias, Expr, ExprTrait, OnConflict, Order, Query, SelectStatement},
};
use serde::{Serialize, de::DeserializeOwned};
use uuid::Uuid;

use crate::domain::{
    model::{
        Delivery, DeliveryStatus, Endpoint, Person, StoredPreferences, StoredRule, StoredTemplate,
    },
    rules::Channel,
};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Db(#[from] DbErr),
    /// A row holds what the service cannot read: a bug or a manual edit, never user input.
    #[error("corrupt row: {0}")]
    Corrupt(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

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

/// One item of a person's in-app feed.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FeedItem {
    pub id: Uuid,
    pub sequence: i64,
    pub event_type: String,
    pub ticket_id: Option<String>,
    pub title: String,
    pub body: String,
    pub read: bool,
    pub created_at: DateTime<Utc>,
}

/// Which deliveries a log query wants.
#[derive(Debug, Clone)]
pub enum DeliveryFilter {
    Ticket(String),
    Person(String),
    Endpoint(Uuid),
    Dead,
}

pub struct NotificationStore {
    publisher: Publisher,
}

impl NotificationStore {
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

    async fn all<C: ConnectionTrait>(
        conn: &C,
        select: &SelectStatement,
    ) -> StoreResult<Vec<QueryResult>> {
        Ok(conn.query_all(select).await?)
    }

    // ---- versioned aggregates kept whole (rules, endpoints) ----

    async fn records<C: ConnectionTrait, T: DeserializeOwned>(
        &self,
        conn: &C,
        table: &str,
        tenant: &str,
    ) -> StoreResult<Vec<T>> {
        let select = Query::select()
            .column(Alias::new("record"))
            .from(Alias::new(table))
            .and_where(col("tenant_id").eq(tenant))
            .order_by(Alias::new("id"), Order::Asc)
            .to_owned();
        Self::all(conn, &select)
            .await?
            .iter()
            .map(|r| from_json(r, "record"))
            .collect()
    }

    async fn insert_record<C: ConnectionTrait, T: Serialize>(
        &self,
        conn: &C,
        table: &str,
        tenant: &str,
        id: Uuid,
        version: i64,
        record: &T,
    ) -> StoreResult<()> {
        let insert = Query::insert()
            .into_table(Alias::new(table))
            .columns(["id", "tenant_id", "version", "record"].map(Alias::new))
            .values_panic([
                Expr::value(id),
                Expr::value(tenant),
                Expr::value(version),
                Expr::value(json(record)?),
            ])
            .to_owned();
        conn.execute(&insert).await?;
        Ok(())
    }

    /// Writes over the row read at `read_version`; false when another write came first.
    #[allow(clippy::too_many_arguments)]
    async fn update_record<C: ConnectionTrait, T: Serialize>(
        &self,
        conn: &C,
        table: &str,
        tenant: &str,
        id: Uuid,
        read_version: i64,
        version: i64,
        record: &T,
    ) -> StoreResult<bool> {
        let update = Query::update()
            .table(Alias::new(table))
            .value(Alias::new("version"), version)
            .value(Alias::new("record"), json(record)?)
            .and_where(col("tenant_id").eq(tenant))
            .and_where(col("id").eq(id))
            .and_where(col("version").eq(read_version))
            .to_owned();
        Ok(conn.execute(&update).await?.rows_affected() == 1)
    }

    async fn delete_record<C: ConnectionTrait>(
        &self,
        conn: &C,
        table: &str,
        tenant: &str,
        id: Uuid,
        read_version: Option<i64>,
    ) -> StoreResult<bool> {
        let mut delete = Query::delete();
        delete
            .from_table(Alias::new(table))
            .and_where(col("tenant_id").eq(tenant))
            .and_where(col("id").eq(id));
        if let Some(v) = read_version {
            delete.and_where(col("version").eq(v));
        }
        Ok(conn.execute(&delete).await?.rows_affected() == 1)
    }

    pub async fn rules<C: ConnectionTrait>(
        &self,
        conn: &C,
        tenant: &str,
    ) -> StoreResult<Vec<StoredRule>> {
        self.records(conn, "notifications_rules", tenant).await
    }

    pub async fn insert_rule<C: ConnectionTrait>(
        &self,
        conn: &C,
        tenant: &str,
        rule: &StoredRule,
    ) -> StoreResult<()> {
        self.insert_record(
            conn,
            "notifications_rules",
            tenant,
            rule.id,
            rule.version,
            rule,
        )
        .await
    }

    pub async fn update_rule<C: ConnectionTrait>(
        &self,
        conn: &C,
        tenant: &str,
        rule: &StoredRule,
        read_version: i64,
    ) -> StoreResult<bool> {
        self.update_record(
            conn,
            "notifications_rules",
            tenant,
            rule.id,
            read_version,
            rule.version,
            rule,
        )
        .await
    }

    pub async fn delete_rule<C: ConnectionTrait>(
        &self,
        conn: &C,
        tenant: &str,
        id: Uuid,
        read_version: i64,
    ) -> StoreResult<bool> {
        self.delete_record(conn, "notifications_rules", tenant, id, Some(read_version))
            .await
    }

    pub async fn endpoints<C: ConnectionTrait>(
        &self,
        conn: &C,
        tenant: &str,
    ) -> StoreResult<Vec<Endpoint>> {
        self.records(conn, "notifications_endpoints", tenant).await
    }

    pub async fn insert_endpoint<C: ConnectionTrait>(
        &self,
        conn: &C,
        tenant: &str,
        e: &Endpoint,
    ) -> StoreResult<()> {
        self.insert_record(conn, "notifications_endpoints", tenant, e.id, e.version, e)
            .await
    }

    pub async fn update_endpoint<C: ConnectionTrait>(
        &self,
        conn: &C,
        tenant: &str,
        e: &Endpoint,
        read_version: i64,
    ) -> StoreResult<bool> {
        self.update_record(
            conn,
            "notifications_endpoints",
            tenant,
            e.id,
            read_version,
            e.version,
            e,
        )
        .await
    }

    pub async fn delete_endpoint<C: ConnectionTrait>(
        &self,
        conn: &C,
        tenant: &str,
        id: Uuid,
    ) -> StoreResult<bool> {
        self.delete_record(conn, "notifications_endpoints", tenant, id, None)
            .await
    }

    // ---- templates ----

    pub async fn templates<C: ConnectionTrait>(
        &self,
        conn: &C,
        tenant: &str,
        event_type: Option<&str>,
    ) -> StoreResult<Vec<StoredTemplate>> {
        let mut select = Query::select();
        select
            .column(Alias::new("record"))
            .from(Alias::new("notifications_templates"))
            .and_where(col("tenant_id").eq(tenant))
            .order_by(Alias::new("event_type"), Order::Asc)
            .order_by(Alias::new("channel"), Order::Asc)
            .order_by(Alias::new("locale"), Order::Asc);
        if let Some(t) = event_type {
            select.and_where(col("event_type").eq(t));
        }
        Self::all(conn, &select)
            .await?
            .iter()
            .map(|r| from_json(r, "record"))
            .collect()
    }

    /// Inserts or replaces the template of (event type, channel, locale).
    pub async fn put_template<C: ConnectionTrait>(
        &self,
        conn: &C,
        tenant: &str,
        t: &StoredTemplate,
    ) -> StoreResult<()> {
        let insert = Query::insert()
            .into_table(Alias::new("notifications_templates"))
            .columns(
                [
                    "id",
                    "tenant_id",
                    "event_type",
                    "channel",
                    "locale",
                    "version",
                    "record",
                ]
                .map(Alias::new),
            )
            .values_panic([
                Expr::value(t.id),
                Expr::value(tenant),
                Expr::value(t.event_type.as_str()),
                Expr::value(t.channel.as_str()),
                Expr::value(t.locale.as_str()),
                Expr::value(t.version),
                Expr::value(json(t)?),
            ])
            .on_conflict(
                OnConflict::columns(
                    ["tenant_id", "event_type", "channel", "locale"].map(Alias::new),
                )
                .update_columns(["version", "record"].map(Alias::new))
                .to_owned(),
            )
            .to_owned();
        conn.execute(&insert).await?;
        Ok(())
    }

    // ---- keyed by person ----

    async fn by_person<C: ConnectionTrait, T: DeserializeOwned>(
        &self,
        conn: &C,
        table: &str,
        tenant: &str,
        person: &str,
    ) -> StoreResult<Option<T>> {
        let select = Query::select()
            .column(Alias::new("record"))
            .from(Alias::new(table))
            .and_where(col("tenant_id").eq(tenant))
            .and_where(col("person_id").eq(person))
            .to_owned();
        match conn.query_one(&select).await? {
            Some(row) => Ok(Some(from_json(&row, "record")?)),
            None => Ok(None),
        }
    }

    /// Writes a person-keyed row unless the stored one is newer (`version` orders).
    async fn upsert_person_row<C: ConnectionTrait, T: Serialize>(
        &self,
        conn: &C,
        table: &str,
        tenant: &str,
        person: &str,
        version: i64,
        record: &T,
    ) -> StoreResult<()> {
        let text = json(record)?;
        let (sql, backend) = if self.db().is_postgres() {
            (
                format!(
                    "INSERT INTO {table} (tenant_id, person_id, version, record) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (tenant_id, person_id) DO UPDATE SET version = excluded.version, \
                     record = excluded.record WHERE {table}.version <= excluded.version"
                ),
                DbBackend::Postgres,
            )
        } else {
            (
                format!(
                    "INSERT INTO {table} (tenant_id, person_id, version, record) VALUES (?, ?, ?, ?) \
                     ON CONFLICT (tenant_id, person_id) DO UPDATE SET version = excluded.version, \
                     record = excluded.record WHERE {table}.version <= excluded.version"
                ),
                DbBackend::Sqlite,
            )
        };
        conn.execute_raw(Statement::from_sql_and_values(
            backend,
            sql,
            [tenant.into(), person.into(), version.into(), text.into()],
        ))
        .await?;
        Ok(())
    }

    pub async fn preferences<C: ConnectionTrait>(
        &self,
        conn: &C,
        tenant: &str,
        person: &str,
    ) -> StoreResult<Option<StoredPreferences>> {
        self.by_person(conn, "notifications_preferences", tenant, person)
            .await
    }

    /// Writes preferences read at `read_version` (0: none yet); false when another write came first.
    pub async fn set_preferences<C: ConnectionTrait>(
        &self,
        conn: &C,
        tenant: &str,
        prefs: &StoredPreferences,
        read_version: i64,
    ) -> StoreResult<bool> {
        if read_version == 0 {
            let insert = Query::insert()
                .into_table(Alias::new("notifications_preferences"))
                .columns(["tenant_id", "person_id", "version", "record"].map(Alias::new))
                .values_panic([
                    Expr::value(tenant),
                    Expr::value(prefs.person_id.as_str()),
                    Expr::value(prefs.version),
                    Expr::value(json(prefs)?),
                ])
                .on_conflict(
                    OnConflict::columns(["tenant_id", "person_id"].map(Alias::new))
                        .do_nothing()
                        .to_owned(),
                )
                .to_owned();
            return Ok(conn.execute(&insert).await?.rows_affected() == 1);
        }
        let update = Query::update()
            .table(Alias::new("notifications_preferences"))
            .value(Alias::new("version"), prefs.version)
            .value(Alias::new("record"), json(prefs)?)
            .and_where(col("tenant_id").eq(tenant))
            .and_where(col("person_id").eq(prefs.person_id.as_str()))
            .and_where(col("version").eq(read_version))
            .to_owned();
        Ok(conn.execute(&update).await?.rows_affected() == 1)
    }

    pub async fn person<C: ConnectionTrait>(
        &self,
        conn: &C,
        tenant: &str,
        person: &str,
    ) -> StoreResult<Option<Person>> {
        self.by_person(conn, "notifications_people", tenant, person)
            .await
    }

    /// Keyed by the person's id and by their token subject: tickets name people by either.
    pub async fn upsert_person<C: ConnectionTrait>(
        &self,
        conn: &C,
        tenant: &str,
        version: i64,
        person: &Person,
    ) -> StoreResult<()> {
        self.upsert_person_row(
            conn,
            "notifications_people",
            tenant,
            &person.id,
            version,
            person,
        )
        .await?;
        if !person.subject.is_empty() && person.subject != person.id {
            self.upsert_person_row(
                conn,
                "notifications_people",
                tenant,
                &person.subject,
                version,
                person,
            )
            .await?;
        }
        Ok(())
    }

    pub async fn upsert_team<C: ConnectionTrait>(
        &self,
        conn: &C,
        tenant: &str,
        team: &str,
        name: &str,
        manager: Option<&str>,
        version: i64,
    ) -> StoreResult<()> {
        let insert = Query::insert()
            .into_table(Alias::new("notifications_teams"))
            .columns(["tenant_id", "team_id", "name", "manager_id", "version"].map(Alias::new))
            .values_panic([
                Expr::value(tenant),
                Expr::value(team),
                Expr::value(name),
                Expr::value(manager.map(str::to_owned)),
                Expr::value(version),
            ])
            .on_conflict(
                OnConflict::columns(["tenant_id", "team_id"].map(Alias::new))
                    .update_columns(["name", "manager_id", "version"].map(Alias::new))
                    .to_owned(),
            )
            .to_owned();
        conn.execute(&insert).await?;
        Ok(())
    }

    pub async fn upsert_member<C: ConnectionTrait>(
        &self,
        conn: &C,
        tenant: &str,
        team: &str,
        person: &str,
        active: bool,
        version: i64,
    ) -> StoreResult<()> {
        let insert = Query::insert()
            .into_table(Alias::new("notifications_members"))
            .columns(["tenant_id", "team_id", "person_id", "version", "active"].map(Alias::new))
            .values_panic([
                Expr::value(tenant),
                Expr::value(team),
                Expr::value(person),
                Expr::value(version),
                Expr::value(i32::from(active)),
            ])
            .on_conflict(
                OnConflict::columns(["tenant_id", "team_id", "person_id"].map(Alias::new))
                    .update_columns(["active", "version"].map(Alias::new))
                    .to_owned(),
            )
            .to_owned();
        conn.execute(&insert).await?;
        Ok(())
    }

    /// A team's active members, its manager and its name.
    pub async fn team<C: ConnectionTrait>(
        &self,
        conn: &C,
        tenant: &str,
        team: &str,
    ) -> StoreResult<(Vec<String>, Option<String>, String)> {
        let members = Query::select()
            .column(Alias::new("person_id"))
            .from(Alias::new("notifications_members"))
            .and_where(col("tenant_id").eq(tenant))
            .and_where(col("team_id").eq(team))
            .and_where(col("active").eq(1))
            .order_by(Alias::new("person_id"), Order::Asc)
            .to_owned();
        let members = Self::all(conn, &members)
            .await?
            .iter()
            .map(|r| r.try_get::<String>("", "person_id"))
            .collect::<Result<Vec<_>, _>>()?;
        let manager = Query::select()
            .columns(["manager_id", "name"].map(Alias::new))
            .from(Alias::new("notifications_teams"))
            .and_where(col("tenant_id").eq(tenant))
            .and_where(col("team_id").eq(team))
            .to_owned();
        let (manager, name) = match conn.query_one(&manager).await? {
            Some(row) => (
                row.try_get::<Option<String>>("", "manager_id")?,
                row.try_get::<String>("", "name")?,
            ),
            None => (None, String::new()),
        };
        Ok((members, manager.filter(|m| !m.is_empty()), name))
    }

    // ---- ticket snapshots ----

    pub async fn ticket<C: ConnectionTrait>(
        &self,
        conn: &C,
        tenant: &str,
        ticket: &str,
    ) -> StoreResult<Option<serde_json::Value>> {
        let select = Query::select()
            .column(Alias::new("record"))
            .from(Alias::new("notifications_tickets"))
            .and_where(col("tenant_id").eq(tenant))
            .and_where(col("ticket_id").eq(ticket))
            .to_owned();
        match conn.query_one(&select).await? {
            Some(row) => Ok(Some(from_json(&row, "record")?)),
            None => Ok(None),
        }
    }

    pub async fn save_ticket<C: ConnectionTrait>(
        &self,
        conn: &C,
        tenant: &str,
        ticket: &str,
        version: i64,
        record: &serde_json::Value,
    ) -> StoreResult<()> {
        let insert = Query::insert()
            .into_table(Alias::new("notifications_tickets"))
            .columns(["tenant_id", "ticket_id", "version", "record"].map(Alias::new))
            .values_panic([
                Expr::value(tenant),
                Expr::value(ticket),
                Expr::value(version),
                Expr::value(json(record)?),
            ])
            .on_conflict(
                OnConflict::columns(["tenant_id", "ticket_id"].map(Alias::new))
                    .update_columns(["version", "record"].map(Alias::new))
                    .to_owned(),
            )
            .to_owned();
        conn.execute(&insert).await?;
        Ok(())
    }

    // ---- deliveries ----

    fn delivery_values(d: &Delivery) -> StoreResult<Vec<(&'static str, Expr)>> {
        Ok(vec![
            ("status", Expr::value(d.status.as_str())),
            ("coalesce_key", Expr::value(d.coalesce_key.clone())),
            ("due_at", Expr::value(d.due_at)),
            ("record", Expr::value(json(d)?)),
        ])
    }

    pub async fn insert_delivery<C: ConnectionTrait>(
        &self,
        conn: &C,
        d: &Delivery,
    ) -> StoreResult<()> {
        let mut values = vec![
            ("id", Expr::value(d.id)),
            ("tenant_id", Expr::value(d.tenant.as_str())),
            ("channel", Expr::value(d.channel.as_str())),
            ("person_id", Expr::value(d.person_id.clone())),
            (
                "endpoint_id",
                Expr::value(d.endpoint_id.map(|e| e.to_string())),
            ),
            ("ticket_id", Expr::value(d.ticket_id.clone())),
            ("aggregate", Expr::value(d.aggregate.as_str())),
            // Claimable at once: the epoch is before any now.
            ("claimed_until", Expr::value(DateTime::<Utc>::UNIX_EPOCH)),
            ("created_at", Expr::value(d.created_at)),
        ];
        values.extend(Self::delivery_values(d)?);
        let mut insert = Query::insert();
        insert
            .into_table(Alias::new("notifications_deliveries"))
            .columns(values.iter().map(|(n, _)| Alias::new(*n)))
            .values(values.into_iter().map(|(_, v)| v))
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        conn.execute(&insert).await?;
        Ok(())
    }

    pub async fn update_delivery<C: ConnectionTrait>(
        &self,
        conn: &C,
        d: &Delivery,
    ) -> StoreResult<()> {
        let mut update = Query::update();
        update.table(Alias::new("notifications_deliveries"));
        for (name, value) in Self::delivery_values(d)? {
            update.value(Alias::new(name), value);
        }
        update
            .value(Alias::new("claimed_until"), DateTime::<Utc>::UNIX_EPOCH)
            .and_where(col("tenant_id").eq(d.tenant.as_str()))
            .and_where(col("id").eq(d.id));
        conn.execute(&update).await?;
        Ok(())
    }

    /// The delivery still waiting to go that a new notification with `key` may fold into.
    pub async fn pending_with_key<C: ConnectionTrait>(
        &self,
        conn: &C,
        tenant: &str,
        key: &str,
    ) -> StoreResult<Option<Delivery>> {
        let select = Query::select()
            .column(Alias::new("record"))
            .from(Alias::new("notifications_deliveries"))
            .and_where(col("tenant_id").eq(tenant))
            .and_where(col("coalesce_key").eq(key))
            .and_where(col("status").is_in([
                DeliveryStatus::Pending.as_str(),
                DeliveryStatus::Held.as_str(),
            ]))
            .order_by(Alias::new("created_at"), Order::Desc)
            .limit(1)
            .to_owned();
        match conn.query_one(&select).await? {
            Some(row) => Ok(Some(from_json(&row, "record")?)),
            None => Ok(None),
        }
    }

    pub async fn delivery<C: ConnectionTrait>(
        &self,
        conn: &C,
        tenant: &str,
        id: Uuid,
    ) -> StoreResult<Option<Delivery>> {
        let select = Query::select()
            .column(Alias::new("record"))
            .from(Alias::new("notifications_deliveries"))
            .and_where(col("tenant_id").eq(tenant))
            .and_where(col("id").eq(id))
            .to_owned();
        match conn.query_one(&select).await? {
            Some(row) => Ok(Some(from_json(&row, "record")?)),
            None => Ok(None),
        }
    }

    /// The delivery log, newest first, ids before `before` (the page cursor).
    pub async fn deliveries(
        &self,
        tenant: &str,
        filter: &DeliveryFilter,
        before: Option<Uuid>,
        limit: u64,
    ) -> StoreResult<Vec<Delivery>> {
        let mut select = Query::select();
        select
            .column(Alias::new("record"))
            .from(Alias::new("notifications_deliveries"))
            .and_where(col("tenant_id").eq(tenant))
            .order_by(Alias::new("id"), Order::Desc)
            .limit(limit);
        match filter {
            DeliveryFilter::Ticket(t) => select.and_where(col("ticket_id").eq(t.as_str())),
            DeliveryFilter::Person(p) => select.and_where(col("person_id").eq(p.as_str())),
            DeliveryFilter::Endpoint(e) => select.and_where(col("endpoint_id").eq(e.to_string())),
            DeliveryFilter::Dead => {
                select.and_where(col("status").eq(DeliveryStatus::Dead.as_str()))
            }
        };
        if let Some(b) = before {
            select.and_where(col("id").lt(b));
        }
        Self::all(self.db().connection(), &select)
            .await?
            .iter()
            .map(|r| from_json(r, "record"))
            .collect()
    }

    /// Claims up to `limit` due deliveries until `lease_until`: pending ones whose time has come,
    /// not claimed by another sender, and — for webhooks — with no earlier unfinished delivery to
    /// the same endpoint about the same aggregate (per-endpoint ordering). Each claim is one
    /// conditional update, so two senders never take the same delivery.
    pub async fn claim_due(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u64,
    ) -> StoreResult<Vec<Delivery>> {
        let conn = self.db().connection();
        let select = Query::select()
            .columns(["id", "record"].map(Alias::new))
            .from(Alias::new("notifications_deliveries"))
            .and_where(col("status").eq(DeliveryStatus::Pending.as_str()))
            .and_where(col("due_at").lte(now))
            .and_where(col("claimed_until").lte(now))
            .order_by(Alias::new("id"), Order::Asc)
            .limit(limit)
            .to_owned();
        let candidates: Vec<Delivery> = Self::all(conn, &select)
            .await?
            .iter()
            .map(|r| from_json(r, "record"))
            .collect::<StoreResult<_>>()?;
        let mut claimed = Vec::new();
        for d in candidates {
            if let Some(endpoint) = d.endpoint_id {
                let earlier = Query::select()
                    .column(Alias::new("id"))
                    .from(Alias::new("notifications_deliveries"))
                    .and_where(col("tenant_id").eq(d.tenant.as_str()))
                    .and_where(col("endpoint_id").eq(endpoint.to_string()))
                    .and_where(col("aggregate").eq(d.aggregate.as_str()))
                    .and_where(col("status").is_in([
                        DeliveryStatus::Pending.as_str(),
                        DeliveryStatus::Held.as_str(),
                    ]))
                    .and_where(col("id").lt(d.id))
                    .limit(1)
                    .to_owned();
                if conn.query_one(&earlier).await?.is_some() {
                    continue;
                }
            }
            let update = Query::update()
                .table(Alias::new("notifications_deliveries"))
                .value(Alias::new("claimed_until"), lease_until)
                .and_where(col("id").eq(d.id))
                .and_where(col("status").eq(DeliveryStatus::Pending.as_str()))
                .and_where(col("claimed_until").lte(now))
                .to_owned();
            if conn.execute(&update).await?.rows_affected() == 1 {
                claimed.push(d);
            }
        }
        Ok(claimed)
    }

    /// Held deliveries whose time has come become pending.
    pub async fn release_held(&self, now: DateTime<Utc>) -> StoreResult<u64> {
        let conn = self.db().connection();
        let select = Query::select()
            .column(Alias::new("record"))
            .from(Alias::new("notifications_deliveries"))
            .and_where(col("status").eq(DeliveryStatus::Held.as_str()))
            .and_where(col("due_at").lte(now))
            .limit(500)
            .to_owned();
        let held: Vec<Delivery> = Self::all(conn, &select)
            .await?
            .iter()
            .map(|r| from_json(r, "record"))
            .collect::<StoreResult<_>>()?;
        let mut released = 0;
        for mut d in held {
            d.status = DeliveryStatus::Pending;
            self.update_delivery(conn, &d).await?;
            released += 1;
        }
        Ok(released)
    }

    // ---- the in-app feed ----

    pub async fn append_feed<C: ConnectionTrait>(
        &self,
        conn: &C,
        tenant: &str,
        person: &str,
        mut item: FeedItem,
    ) -> StoreResult<FeedItem> {
        let (sql, backend) = if self.db().is_postgres() {
            (
                "INSERT INTO notifications_feed_counters (tenant_id, person_id, last_value) VALUES ($1, $2, 1) \
                 ON CONFLICT (tenant_id, person_id) DO UPDATE SET last_value = notifications_feed_counters.last_value + 1 \
                 RETURNING last_value",
                DbBackend::Postgres,
            )
        } else {
            (
                "INSERT INTO notifications_feed_counters (tenant_id, person_id, last_value) VALUES (?, ?, 1) \
                 ON CONFLICT (tenant_id, person_id) DO UPDATE SET last_value = last_value + 1 \
                 RETURNING last_value",
                DbBackend::Sqlite,
            )
        };
        let row = conn
            .query_one_raw(Statement::from_sql_and_values(
                backend,
                sql,
                [tenant.into(), person.into()],
            ))
            .await?
            .ok_or_else(|| StoreError::Corrupt("the feed counter returned no row".into()))?;
        item.sequence = row.try_get("", "last_value")?;
        let insert = Query::insert()
            .into_table(Alias::new("notifications_feed"))
            .columns(["id", "tenant_id", "person_id", "sequence", "read", "record"].map(Alias::new))
            .values_panic([
                Expr::value(item.id),
                Expr::value(tenant),
                Expr::value(person),
                Expr::value(item.sequence),
                Expr::value(0),
                Expr::value(json(&item)?),
            ])
            .to_owned();
        conn.execute(&insert).await?;
        Ok(item)
    }

    /// A person's feed after `cursor`, oldest first.
    pub async fn feed_after(
        &self,
        tenant: &str,
        person: &str,
        cursor: i64,
        limit: u64,
    ) -> StoreResult<Vec<FeedItem>> {
        let select = Query::select()
            .columns(["record", "read"].map(Alias::new))
            .from(Alias::new("notifications_feed"))
            .and_where(col("tenant_id").eq(tenant))
            .and_where(col("person_id").eq(person))
            .and_where(col("sequence").gt(cursor))
            .order_by(Alias::new("sequence"), Order::Asc)
            .limit(limit)
            .to_owned();
        Self::all(self.db().connection(), &select)
            .await?
            .iter()
            .map(|r| {
                let mut item: FeedItem = from_json(r, "record")?;
                item.read = r.try_get::<i32>("", "read")? != 0;
                Ok(item)
            })
            .collect()
    }

    pub async fn mark_read(
        &self,
        tenant: &str,
        person: &str,
        ids: &[Uuid],
        read: bool,
    ) -> StoreResult<u64> {
        if ids.is_empty() {
            return Ok(0);
        }
        let update = Query::update()
            .table(Alias::new("notifications_feed"))
            .value(Alias::new("read"), i32::from(read))
            .and_where(col("tenant_id").eq(tenant))
            .and_where(col("person_id").eq(person))
            .and_where(col("id").is_in(ids.iter().copied()))
            .to_owned();
        Ok(self
            .db()
            .connection()
            .execute(&update)
            .await?
            .rows_affected())
    }
}

/// A channel's stored name back into the enum.
pub fn channel(text: &str) -> StoreResult<Channel> {
    Channel::parse(text).ok_or_else(|| StoreError::Corrupt(format!("unknown channel {text}")))
}
