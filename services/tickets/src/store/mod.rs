//! Persistence of tickets and everything hanging off them. Every query is scoped by tenant.
//!
//! The store does not decide anything: the domain decides a change, and the API layer writes it
//! through one [`WriteTxn`] that carries the state change, its history entry and its outbox
//! events, and commits it with [`TicketStore::commit`], which wakes the outbox relay.

pub mod entities;
pub mod migrations;

use std::{collections::HashSet, sync::Mutex};

use chrono::{DateTime, Utc};
use desk_kit::{
    db::{Db, WriteTxn},
    events::{OutgoingEvent, Publisher},
    idempotency::IdempotencyKeys,
};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, Statement, TransactionTrait,
    sea_query::{Expr, ExprTrait, Func, Query},
};
use uuid::Uuid;

use crate::domain::{
    Channel, FieldChange, Level, LinkKind, PendingReason, Priority, ResolutionCode, Status,
    SupportTier, TicketType, Visibility,
    record::{Comment, Link, ProblemDetails, ResolutionRecord, Satisfaction, Ticket, WorklogEntry},
};
use entities::{comment, history, link, settings, ticket, watcher, worklog};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Db(#[from] DbErr),
    /// A row holds a value the domain does not know: a bug or a manual edit, never user input.
    #[error("corrupt row: {0}")]
    Corrupt(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Who did something, as the history records it.
#[derive(Debug, Clone)]
pub struct HistoryActor {
    pub subject: String,
    pub name: Option<String>,
    pub roles: Vec<String>,
}

/// One history entry, as read back.
#[derive(Debug, Clone)]
pub struct HistoryEntry {
    pub version: i64,
    pub actor: HistoryActor,
    pub action: String,
    pub changes: Vec<FieldChange>,
    pub note: Option<String>,
    pub at: DateTime<Utc>,
}

/// Settings are a domain value; the store keeps them per tenant.
pub use crate::domain::TicketSettings;

/// Filters of a list call, already validated.
#[derive(Debug, Clone, Default)]
pub struct TicketFilter {
    pub types: Vec<TicketType>,
    pub statuses: Vec<Status>,
    pub priorities: Vec<Priority>,
    pub assignment_group_id: Option<String>,
    pub assignee_id: Option<String>,
    pub requester_id: Option<String>,
    /// Only tickets this requester raised or watches: what they may read
    /// ([`crate::domain::access::can_read`]).
    pub readable_by_requester: Option<String>,
    pub text: Option<String>,
    pub open_only: bool,
}

pub struct TicketStore {
    publisher: Publisher,
    /// Number sequences known to exist (PostgreSQL), so each is created once per process.
    sequences: Mutex<HashSet<String>>,
    settings_cache:
        std::sync::RwLock<std::collections::HashMap<String, (TicketSettings, std::time::Instant)>>,
}

/// How long another replica's settings change may take to reach this one.
/// Create keys of `CreateTicket` (created by `m20261125_000010_create_tickets`), kept 48 hours:
/// a retried create with the same key and body answers the first ticket.
pub const IDEMPOTENCY_KEYS: IdempotencyKeys =
    IdempotencyKeys::new("ticket_idempotency_keys", "ticket_id", "ticket");

const SETTINGS_TTL: std::time::Duration = std::time::Duration::from_secs(10);

impl TicketStore {
    pub fn new(publisher: Publisher) -> Self {
        Self {
            publisher,
            sequences: Mutex::new(HashSet::new()),
            settings_cache: std::sync::RwLock::default(),
        }
    }

    pub fn db(&self) -> &Db {
        self.publisher.db()
    }

    pub async fn begin(&self) -> StoreResult<WriteTxn> {
        Ok(self.publisher.begin().await?)
    }

    /// Commits the change and its events together, then wakes the relay to publish them.
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

    // ---- tickets ----

    pub async fn find<C: ConnectionTrait>(
        &self,
        conn: &C,
        tenant: &str,
        id: Uuid,
    ) -> StoreResult<Option<Ticket>> {
        ticket::Entity::find_by_id(id)
            .filter(ticket::Column::TenantId.eq(tenant))
            .one(conn)
            .await?
            .map(ticket_from_model)
            .transpose()
    }

    pub async fn find_by_number<C: ConnectionTrait>(
        &self,
        conn: &C,
        tenant: &str,
        number: &str,
    ) -> StoreResult<Option<Ticket>> {
        ticket::Entity::find()
            .filter(ticket::Column::TenantId.eq(tenant))
            .filter(ticket::Column::Number.eq(number))
            .one(conn)
            .await?
            .map(ticket_from_model)
            .transpose()
    }

    /// Makes sure the number sequence of a tenant and type exists (PostgreSQL). Call it before
    /// opening the create's transaction: it uses a connection of its own, and a caller already
    /// holding one could deadlock the pool. Concurrent first creates serialize on an advisory lock,
    /// because `CREATE SEQUENCE IF NOT EXISTS` alone races.
    pub async fn prepare_numbering(
        &self,
        tenant: &str,
        ticket_type: TicketType,
    ) -> StoreResult<()> {
        if !self.db().is_postgres() {
            return Ok(());
        }
        let name = sequence_name(tenant, ticket_type);
        let known = self
            .sequences
            .lock()
            .map(|s| s.contains(&name))
            .unwrap_or(false);
        if known {
            return Ok(());
        }
        let txn = self.db().connection().begin().await?;
        txn.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT pg_advisory_xact_lock($1)",
            [(desk_kit::ids::stable_hash(name.as_bytes()) as i64).into()],
        ))
        .await?;
        txn.execute_unprepared(&format!("CREATE SEQUENCE IF NOT EXISTS {name}"))
            .await?;
        txn.commit().await?;
        if let Ok(mut set) = self.sequences.lock() {
            set.insert(name);
        }
        Ok(())
    }

    /// The next human number for a tenant and type. On PostgreSQL a sequence per tenant and type
    /// ([`Self::prepare_numbering`]) hands out numbers without a row lock that every create would
    /// queue on (a rolled-back create leaves a gap, as in every desk); on SQLite writers are
    /// serialized anyway, so a counter row is used.
    pub async fn next_number(
        &self,
        txn: &WriteTxn,
        tenant: &str,
        ticket_type: TicketType,
    ) -> StoreResult<String> {
        let seq = if self.db().is_postgres() {
            let name = sequence_name(tenant, ticket_type);
            let row = txn
                .query_one_raw(Statement::from_string(
                    DbBackend::Postgres,
                    format!("SELECT nextval('{name}') AS value"),
                ))
                .await?
                .ok_or_else(|| StoreError::Corrupt("nextval returned no row".into()))?;
            row.try_get::<i64>("", "value")?
        } else {
            let statement = Statement::from_sql_and_values(
                DbBackend::Sqlite,
                "INSERT INTO ticket_counters (tenant_id, ticket_type, last_value) VALUES (?, ?, 1) \
                 ON CONFLICT (tenant_id, ticket_type) DO UPDATE SET last_value = last_value + 1 RETURNING last_value",
                [tenant.into(), ticket_type.as_str().into()],
            );
            let row = txn
                .query_one_raw(statement)
                .await?
                .ok_or_else(|| StoreError::Corrupt("counter returned no row".into()))?;
            row.try_get::<i64>("", "last_value")?
        };
        Ok(ticket_type.format_number(seq))
    }

    pub async fn insert(&self, txn: &WriteTxn, ticket: &Ticket) -> StoreResult<()> {
        ticket::Entity::insert(ticket_to_active(ticket)?)
            .exec_without_returning(&**txn)
            .await?;
        self.insert_watchers(txn, ticket).await
    }

    /// Makes the watcher rows of `ticket` match its watcher list, after a change of the list.
    pub async fn replace_watchers(&self, txn: &WriteTxn, ticket: &Ticket) -> StoreResult<()> {
        watcher::Entity::delete_many()
            .filter(watcher::Column::TenantId.eq(ticket.tenant_id.as_str()))
            .filter(watcher::Column::TicketId.eq(ticket.id))
            .exec(&**txn)
            .await?;
        self.insert_watchers(txn, ticket).await
    }

    async fn insert_watchers(&self, txn: &WriteTxn, ticket: &Ticket) -> StoreResult<()> {
        if ticket.watcher_ids.is_empty() {
            return Ok(());
        }
        let rows = ticket
            .watcher_ids
            .iter()
            .map(|watcher_id| watcher::ActiveModel {
                tenant_id: Set(ticket.tenant_id.clone()),
                ticket_id: Set(ticket.id),
                watcher_id: Set(watcher_id.clone()),
            });
        watcher::Entity::insert_many(rows)
            .exec_without_returning(&**txn)
            .await?;
        Ok(())
    }

    /// Writes `ticket` (whose version is already the new one) only if the stored version is still
    /// `expected_version`. `false` means someone else changed it first.
    pub async fn update<C: ConnectionTrait>(
        &self,
        txn: &C,
        ticket: &Ticket,
        expected_version: i64,
    ) -> StoreResult<bool> {
        let result = ticket::Entity::update_many()
            .set(ticket_to_active(ticket)?)
            .filter(ticket::Column::Id.eq(ticket.id))
            .filter(ticket::Column::TenantId.eq(ticket.tenant_id.as_str()))
            .filter(ticket::Column::Version.eq(expected_version))
            .exec(txn)
            .await?;
        Ok(result.rows_affected == 1)
    }

    pub async fn list<C: ConnectionTrait>(
        &self,
        conn: &C,
        tenant: &str,
        filter: &TicketFilter,
        after: Option<Uuid>,
        limit: u64,
    ) -> StoreResult<(Vec<Ticket>, u64)> {
        let mut query = ticket::Entity::find().filter(ticket::Column::TenantId.eq(tenant));
        if !filter.types.is_empty() {
            query = query
                .filter(ticket::Column::TicketType.is_in(filter.types.iter().map(|t| t.as_str())));
        }
        if !filter.statuses.is_empty() {
            query = query
                .filter(ticket::Column::Status.is_in(filter.statuses.iter().map(|s| s.as_str())));
        }
        if filter.open_only {
            query = query.filter(
                ticket::Column::Status
                    .is_not_in([Status::Resolved.as_str(), Status::Closed.as_str()]),
            );
        }
        if !filter.priorities.is_empty() {
            query = query.filter(
                ticket::Column::Priority.is_in(filter.priorities.iter().map(|p| p.as_str())),
            );
        }
        if let Some(group) = &filter.assignment_group_id {
            query = query.filter(ticket::Column::AssignmentGroupId.eq(group.as_str()));
        }
        if let Some(assignee) = &filter.assignee_id {
            query = query.filter(ticket::Column::AssigneeId.eq(assignee.as_str()));
        }
        if let Some(requester) = &filter.requester_id {
            query = query.filter(ticket::Column::RequesterId.eq(requester.as_str()));
        }
        if let Some(reader) = &filter.readable_by_requester {
            let watched = Query::select()
                .column(watcher::Column::TicketId)
                .from(watcher::Entity)
                .and_where(watcher::Column::TenantId.eq(tenant))
                .and_where(watcher::Column::WatcherId.eq(reader.as_str()))
                .to_owned();
            query = query.filter(
                sea_orm::Condition::any()
                    .add(ticket::Column::RequesterId.eq(reader.as_str()))
                    .add(ticket::Column::Id.in_subquery(watched)),
            );
        }
        if let Some(text) = &filter.text {
            let pattern = format!("%{}%", escape_like(&text.to_lowercase()));
            let matches = |column: ticket::Column| {
                Expr::expr(Func::lower(Expr::col(column)))
                    .like(sea_orm::sea_query::LikeExpr::new(pattern.clone()).escape('\\'))
            };
            query = query.filter(
                sea_orm::Condition::any()
                    .add(matches(ticket::Column::Title))
                    .add(matches(ticket::Column::Description))
                    .add(matches(ticket::Column::Number)),
            );
        }
        let total = query.clone().count(conn).await?;
        if let Some(after) = after {
            query = query.filter(ticket::Column::Id.lt(after));
        }
        let rows = query
            .order_by_desc(ticket::Column::Id)
            .limit(limit)
            .all(conn)
            .await?;
        let tickets = rows
            .into_iter()
            .map(ticket_from_model)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok((tickets, total))
    }

    // ---- history ----

    #[allow(clippy::too_many_arguments)]
    pub async fn append_history<C: ConnectionTrait>(
        &self,
        txn: &C,
        ticket: &Ticket,
        actor: &HistoryActor,
        action: &str,
        changes: &[FieldChange],
        note: Option<&str>,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        let changes = serde_json::to_string(
            &changes
                .iter()
                .map(|c| serde_json::json!({"field": c.field, "old": c.old, "new": c.new}))
                .collect::<Vec<_>>(),
        )
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        history::Entity::insert(history::ActiveModel {
            id: Set(Uuid::now_v7()),
            tenant_id: Set(ticket.tenant_id.clone()),
            ticket_id: Set(ticket.id),
            version: Set(ticket.version),
            actor_id: Set(actor.subject.clone()),
            actor_name: Set(actor.name.clone()),
            actor_roles: Set(actor.roles.join(",")),
            action: Set(action.to_owned()),
            changes: Set(changes),
            note: Set(note.map(str::to_owned)),
            created_at: Set(at),
        })
        .exec_without_returning(txn)
        .await?;
        Ok(())
    }

    pub async fn history<C: ConnectionTrait>(
        &self,
        conn: &C,
        tenant: &str,
        ticket_id: Uuid,
    ) -> StoreResult<Vec<HistoryEntry>> {
        let rows = history::Entity::find()
            .filter(history::Column::TenantId.eq(tenant))
            .filter(history::Column::TicketId.eq(ticket_id))
            .order_by_asc(history::Column::Version)
            .order_by_asc(history::Column::Id)
            .all(conn)
            .await?;
        rows.into_iter()
            .map(|row| {
                let raw: Vec<serde_json::Value> = serde_json::from_str(&row.changes)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?;
                let text = |v: &serde_json::Value| v.as_str().map(str::to_owned);
                let changes = raw
                    .iter()
                    .map(|c| FieldChange {
                        field: c["field"].as_str().unwrap_or_default().to_owned(),
                        old: text(&c["old"]),
                        new: text(&c["new"]),
                    })
                    .collect();
                Ok(HistoryEntry {
                    version: row.version,
                    actor: HistoryActor {
                        subject: row.actor_id,
                        name: row.actor_name,
                        roles: row
                            .actor_roles
                            .split(',')
                            .filter(|r| !r.is_empty())
                            .map(str::to_owned)
                            .collect(),
                    },
                    action: row.action,
                    changes,
                    note: row.note,
                    at: row.created_at,
                })
            })
            .collect()
    }

    // ---- comments, worklog, links ----

    pub async fn insert_comment(&self, txn: &WriteTxn, value: &Comment) -> StoreResult<()> {
        comment::Entity::insert(comment::ActiveModel {
            id: Set(value.id),
            tenant_id: Set(value.tenant_id.clone()),
            ticket_id: Set(value.ticket_id),
            author_id: Set(value.author_id.clone()),
            author_name: Set(value.author_name.clone()),
            body: Set(value.body.clone()),
            visibility: Set(value.visibility.as_str().to_owned()),
            created_at: Set(value.created_at),
        })
        .exec_without_returning(&**txn)
        .await?;
        Ok(())
    }

    pub async fn comments<C: ConnectionTrait>(
        &self,
        conn: &C,
        tenant: &str,
        ticket_id: Uuid,
        include_internal: bool,
    ) -> StoreResult<Vec<Comment>> {
        let mut query = comment::Entity::find()
            .filter(comment::Column::TenantId.eq(tenant))
            .filter(comment::Column::TicketId.eq(ticket_id));
        if !include_internal {
            query = query.filter(comment::Column::Visibility.eq(Visibility::Public.as_str()));
        }
        query
            .order_by_asc(comment::Column::Id)
            .all(conn)
            .await?
            .into_iter()
            .map(comment_from_model)
            .collect()
    }

    pub async fn insert_worklog(&self, txn: &WriteTxn, value: &WorklogEntry) -> StoreResult<()> {
        worklog::Entity::insert(worklog::ActiveModel {
            id: Set(value.id),
            tenant_id: Set(value.tenant_id.clone()),
            ticket_id: Set(value.ticket_id),
            agent_id: Set(value.agent_id.clone()),
            minutes: Set(value.minutes),
            note: Set(value.note.clone()),
            created_at: Set(value.created_at),
        })
        .exec_without_returning(&**txn)
        .await?;
        Ok(())
    }

    pub async fn worklog<C: ConnectionTrait>(
        &self,
        conn: &C,
        tenant: &str,
        ticket_id: Uuid,
    ) -> StoreResult<Vec<WorklogEntry>> {
        Ok(worklog::Entity::find()
            .filter(worklog::Column::TenantId.eq(tenant))
            .filter(worklog::Column::TicketId.eq(ticket_id))
            .order_by_asc(worklog::Column::Id)
            .all(conn)
            .await?
            .into_iter()
            .map(|row| WorklogEntry {
                id: row.id,
                tenant_id: row.tenant_id,
                ticket_id: row.ticket_id,
                agent_id: row.agent_id,
                minutes: row.minutes,
                note: row.note,
                created_at: row.created_at,
            })
            .collect())
    }

    /// Inserts a link unless the same one exists; `false` when it already did.
    pub async fn insert_link(&self, txn: &WriteTxn, value: &Link) -> StoreResult<bool> {
        let exists = link::Entity::find()
            .filter(link::Column::TicketId.eq(value.ticket_id))
            .filter(link::Column::Kind.eq(value.kind.as_str()))
            .filter(link::Column::TargetId.eq(value.target_id.as_str()))
            .one(&**txn)
            .await?
            .is_some();
        if exists {
            return Ok(false);
        }
        link::Entity::insert(link::ActiveModel {
            id: Set(value.id),
            tenant_id: Set(value.tenant_id.clone()),
            ticket_id: Set(value.ticket_id),
            kind: Set(value.kind.as_str().to_owned()),
            target_id: Set(value.target_id.clone()),
            target_number: Set(value.target_number.clone()),
            created_by: Set(value.created_by.clone()),
            created_at: Set(value.created_at),
        })
        .exec_without_returning(&**txn)
        .await?;
        Ok(true)
    }

    pub async fn links<C: ConnectionTrait>(
        &self,
        conn: &C,
        tenant: &str,
        ticket_id: Uuid,
    ) -> StoreResult<Vec<Link>> {
        link::Entity::find()
            .filter(link::Column::TenantId.eq(tenant))
            .filter(link::Column::TicketId.eq(ticket_id))
            .order_by_asc(link::Column::Id)
            .all(conn)
            .await?
            .into_iter()
            .map(link_from_model)
            .collect()
    }

    /// The public ids of the incidents linked to a problem.
    pub async fn linked_targets<C: ConnectionTrait>(
        &self,
        conn: &C,
        tenant: &str,
        ticket_id: Uuid,
        kind: LinkKind,
    ) -> StoreResult<Vec<String>> {
        Ok(self
            .links(conn, tenant, ticket_id)
            .await?
            .into_iter()
            .filter(|l| l.kind == kind)
            .map(|l| l.target_id)
            .collect())
    }

    // ---- settings ----

    /// The tenant's settings, from a short-lived cache: every create needs the priority matrix,
    /// and a round trip per create for a value that changes a few times a year is waste. Writes
    /// through this process refresh the cache at once; another replica's write shows within
    /// [`SETTINGS_TTL`].
    pub async fn cached_settings(&self, tenant: &str) -> StoreResult<TicketSettings> {
        if let Ok(cache) = self.settings_cache.read()
            && let Some((value, read_at)) = cache.get(tenant)
            && read_at.elapsed() < SETTINGS_TTL
        {
            return Ok(value.clone());
        }
        let value = self.settings(self.db().connection(), tenant).await?;
        if let Ok(mut cache) = self.settings_cache.write() {
            cache.insert(
                tenant.to_owned(),
                (value.clone(), std::time::Instant::now()),
            );
        }
        Ok(value)
    }

    /// Forgets a tenant's cached settings (after this process changed them).
    pub fn forget_settings(&self, tenant: &str) {
        if let Ok(mut cache) = self.settings_cache.write() {
            cache.remove(tenant);
        }
    }

    pub async fn settings<C: ConnectionTrait>(
        &self,
        conn: &C,
        tenant: &str,
    ) -> StoreResult<TicketSettings> {
        match settings::Entity::find_by_id(tenant.to_owned())
            .one(conn)
            .await?
        {
            None => Ok(TicketSettings::default()),
            Some(row) => Ok(TicketSettings {
                priority_matrix: serde_json::from_str(&row.priority_matrix)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                reopen_window_hours: row.reopen_window_hours,
            }),
        }
    }

    pub async fn save_settings(
        &self,
        txn: &WriteTxn,
        tenant: &str,
        value: &TicketSettings,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let matrix = serde_json::to_string(&value.priority_matrix)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let row = settings::ActiveModel {
            tenant_id: Set(tenant.to_owned()),
            priority_matrix: Set(matrix),
            reopen_window_hours: Set(value.reopen_window_hours),
            updated_at: Set(now),
        };
        settings::Entity::insert(row)
            .on_conflict(
                sea_orm::sea_query::OnConflict::column(settings::Column::TenantId)
                    .update_columns([
                        settings::Column::PriorityMatrix,
                        settings::Column::ReopenWindowHours,
                        settings::Column::UpdatedAt,
                    ])
                    .to_owned(),
            )
            .exec_without_returning(&**txn)
            .await?;
        Ok(())
    }
}

fn sequence_name(tenant: &str, ticket_type: TicketType) -> String {
    // Tenant ids may hold characters identifiers may not; a stable hash keeps the name short and safe.
    let hash = desk_kit::ids::stable_hash(tenant.as_bytes());
    format!("ticket_number_{}_{hash:016x}", ticket_type.as_str())
}

fn escape_like(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

fn json_list(values: &[String]) -> StoreResult<String> {
    serde_json::to_string(values).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn parse_list(text: &str) -> StoreResult<Vec<String>> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("list column: {e}")))
}

fn parse<T>(value: &str, parser: fn(&str) -> Option<T>, column: &str) -> StoreResult<T> {
    parser(value).ok_or_else(|| StoreError::Corrupt(format!("{column} = {value:?}")))
}

fn comment_from_model(row: comment::Model) -> StoreResult<Comment> {
    Ok(Comment {
        visibility: parse(&row.visibility, Visibility::parse, "visibility")?,
        id: row.id,
        tenant_id: row.tenant_id,
        ticket_id: row.ticket_id,
        author_id: row.author_id,
        author_name: row.author_name,
        body: row.body,
        created_at: row.created_at,
    })
}

fn link_from_model(row: link::Model) -> StoreResult<Link> {
    Ok(Link {
        kind: parse(&row.kind, LinkKind::parse, "kind")?,
        id: row.id,
        tenant_id: row.tenant_id,
        ticket_id: row.ticket_id,
        target_id: row.target_id,
        target_number: row.target_number,
        created_by: row.created_by,
        created_at: row.created_at,
    })
}

fn ticket_to_active(t: &Ticket) -> StoreResult<ticket::ActiveModel> {
    Ok(ticket::ActiveModel {
        id: Set(t.id),
        tenant_id: Set(t.tenant_id.clone()),
        number: Set(t.number.clone()),
        ticket_type: Set(t.ticket_type.as_str().to_owned()),
        title: Set(t.title.clone()),
        description: Set(t.description.clone()),
        requester_id: Set(t.requester_id.clone()),
        channel: Set(t.channel.as_str().to_owned()),
        category: Set(t.category.clone()),
        impact: Set(t.impact.as_str().to_owned()),
        urgency: Set(t.urgency.as_str().to_owned()),
        priority: Set(t.priority.as_str().to_owned()),
        priority_rank: Set(i32::from(t.priority.rank())),
        status: Set(t.status.as_str().to_owned()),
        pending_reason: Set(t.pending_reason.map(|r| r.as_str().to_owned())),
        assignment_group_id: Set(t.assignment_group_id.clone()),
        assignee_id: Set(t.assignee_id.clone()),
        tier: Set(t.tier.as_str().to_owned()),
        affected_service_ids: Set(json_list(&t.affected_service_ids)?),
        affected_ci_ids: Set(json_list(&t.affected_ci_ids)?),
        major_incident: Set(t.major_incident),
        watcher_ids: Set(json_list(&t.watcher_ids)?),
        resolution_code: Set(t.resolution.as_ref().map(|r| r.code.as_str().to_owned())),
        resolution_notes: Set(t.resolution.as_ref().map(|r| r.notes.clone())),
        resolved_by: Set(t.resolution.as_ref().map(|r| r.resolved_by.clone())),
        resolved_at: Set(t.resolution.as_ref().map(|r| r.resolved_at)),
        root_cause: Set(t.problem.root_cause.clone()),
        workaround: Set(t.problem.workaround.clone()),
        known_error: Set(t.problem.known_error),
        csat_rating: Set(t.satisfaction.as_ref().map(|s| s.rating)),
        csat_comment: Set(t.satisfaction.as_ref().and_then(|s| s.comment.clone())),
        rated_at: Set(t.satisfaction.as_ref().map(|s| s.rated_at)),
        version: Set(t.version),
        created_by: Set(t.created_by.clone()),
        created_at: Set(t.created_at),
        updated_at: Set(t.updated_at),
    })
}

fn ticket_from_model(m: ticket::Model) -> StoreResult<Ticket> {
    let resolution = match (m.resolution_code.as_deref(), m.resolved_at) {
        (Some(code), Some(resolved_at)) => Some(ResolutionRecord {
            code: parse(code, ResolutionCode::parse, "resolution_code")?,
            notes: m.resolution_notes.clone().unwrap_or_default(),
            resolved_by: m.resolved_by.clone().unwrap_or_default(),
            resolved_at,
        }),
        _ => None,
    };
    let satisfaction = match (m.csat_rating, m.rated_at) {
        (Some(rating), Some(rated_at)) => Some(Satisfaction {
            rating,
            comment: m.csat_comment.clone(),
            rated_at,
        }),
        _ => None,
    };
    Ok(Ticket {
        id: m.id,
        ticket_type: parse(&m.ticket_type, TicketType::parse, "ticket_type")?,
        channel: parse(&m.channel, Channel::parse, "channel")?,
        impact: parse(&m.impact, Level::parse, "impact")?,
        urgency: parse(&m.urgency, Level::parse, "urgency")?,
        priority: parse(&m.priority, Priority::parse, "priority")?,
        status: parse(&m.status, Status::parse, "status")?,
        pending_reason: m
            .pending_reason
            .as_deref()
            .map(|r| parse(r, PendingReason::parse, "pending_reason"))
            .transpose()?,
        tier: parse(&m.tier, SupportTier::parse, "tier")?,
        affected_service_ids: parse_list(&m.affected_service_ids)?,
        affected_ci_ids: parse_list(&m.affected_ci_ids)?,
        watcher_ids: parse_list(&m.watcher_ids)?,
        tenant_id: m.tenant_id,
        number: m.number,
        title: m.title,
        description: m.description,
        requester_id: m.requester_id,
        category: m.category,
        assignment_group_id: m.assignment_group_id,
        assignee_id: m.assignee_id,
        major_incident: m.major_incident,
        resolution,
        problem: ProblemDetails {
            root_cause: m.root_cause,
            workaround: m.workaround,
            known_error: m.known_error,
        },
        satisfaction,
        version: m.version,
        created_by: m.created_by,
        created_at: m.created_at,
        updated_at: m.updated_at,
    })
}
