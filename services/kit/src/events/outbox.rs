//! The transactional outbox (ARCHITECTURE §5, contract).
//!
//! A writer stages its events with [`Outbox::stage`] inside the transaction that changes state, and
//! wakes the relay after commit ([`RelayHandle::wake`]). The [`OutboxRelay`] publishes pending rows
//! in `seq` order with `Nats-Msg-Id = ce-id`, waits for JetStream's acks and records each row's
//! stream sequence. Nothing is lost by a crash between commit and publish (the row stays pending),
//! nothing is published for a rolled-back change (the row never existed), and a re-send after a
//! crash between publish and mark is dropped by JetStream's duplicate window.
//!
//! Published rows are kept for `retention_hours`: NATS acknowledges before it fsyncs, so a host
//! crash can lose acknowledged messages. Whenever the relay (re)connects it compares the stream's
//! last sequence with the highest sequence it recorded and re-publishes the gap.
//!
//! Several replicas may run a relay against the same database: on PostgreSQL each batch holds a
//! transaction-scoped advisory lock, so one relay publishes at a time and order is kept; SQLite is
//! single-process by construction.

use std::{sync::Arc, time::Duration};

use async_nats::jetstream::{self, message::PublishMessage};
use chrono::{DateTime, Utc};
use sea_orm::{
    ConnectionTrait, DbErr, QueryResult, TransactionTrait,
    sea_query::{Alias, CaseStatement, Expr, ExprTrait, Order, Query},
};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{
    backoff,
    envelope::{CloudEventAttributes, EventSource, OutgoingEvent},
    migrations::outbox_table,
};
use crate::{db::Db, settings::OutboxSettings};

/// The largest event body the outbox accepts: nats-server's default `max_payload` (1 MiB),
/// less room for the CloudEvents headers. A larger row could never be published and would stall
/// every event behind it, so [`Outbox::stage`] refuses it and the caller's transaction fails
/// instead: an aggregate that can grow this large publishes a summary.
pub const MAX_EVENT_PAYLOAD_BYTES: usize = 1024 * 1024 - 16 * 1024;

/// Writes events into the service's outbox table, inside the caller's transaction.
#[derive(Debug, Clone)]
pub struct Outbox {
    source: EventSource,
    table: String,
}

impl Outbox {
    pub fn new(source: EventSource) -> Self {
        let table = outbox_table(source.service);
        Self { source, table }
    }

    pub fn source(&self) -> &EventSource {
        &self.source
    }

    /// Stages `event` in `txn`; it is published only if `txn` commits. Returns the event id.
    pub async fn stage<C: ConnectionTrait>(
        &self,
        txn: &C,
        event: OutgoingEvent,
        now: DateTime<Utc>,
    ) -> Result<Uuid, DbErr> {
        let mut ids = self.stage_many(txn, vec![event], now).await?;
        ids.pop()
            .ok_or_else(|| DbErr::Custom("no event id for a staged event".into()))
    }

    /// Stages `events` in `txn`, in order (they are published in that order), a few hundred
    /// rows per statement; all or none of them are published, as `txn` commits or not. Every
    /// event is checked against [`MAX_EVENT_PAYLOAD_BYTES`] before anything is written.
    pub async fn stage_many<C: ConnectionTrait>(
        &self,
        txn: &C,
        events: Vec<OutgoingEvent>,
        now: DateTime<Utc>,
    ) -> Result<Vec<Uuid>, DbErr> {
        if let Some(event) = events
            .iter()
            .find(|event| !crate::ids::is_tenant_id(&event.tenant))
        {
            return Err(DbErr::Custom(format!(
                "event {}.{} of {} names tenant {:?}, which cannot be a subject token",
                event.aggregate, event.event, event.aggregate_id, event.tenant
            )));
        }
        if let Some(event) = events
            .iter()
            .find(|event| event.payload.len() > MAX_EVENT_PAYLOAD_BYTES)
        {
            return Err(DbErr::Custom(format!(
                "event {}.{} of {} is {} bytes; at most {MAX_EVENT_PAYLOAD_BYTES} can be published",
                event.aggregate,
                event.event,
                event.aggregate_id,
                event.payload.len()
            )));
        }
        let traceparent = crate::telemetry::current_traceparent();
        let mut ids = Vec::with_capacity(events.len());
        let mut events = events.into_iter().peekable();
        while events.peek().is_some() {
            let mut statement = Query::insert();
            statement.into_table(Alias::new(&self.table)).columns(
                [
                    "event_id",
                    "nats_subject",
                    "ce_type",
                    "ce_source",
                    "ce_subject",
                    "tenant",
                    "ce_time",
                    "traceparent",
                    "payload",
                ]
                .map(Alias::new),
            );
            for event in events.by_ref().take(STAGE_CHUNK) {
                let id = Uuid::now_v7();
                statement
                    .values([
                        Expr::value(id),
                        Expr::value(self.source.subject(
                            &event.tenant,
                            event.aggregate,
                            event.event,
                        )),
                        Expr::value(self.source.ce_type(event.aggregate, event.event)),
                        Expr::value(self.source.ce_source()),
                        Expr::value(event.aggregate_id),
                        Expr::value(event.tenant),
                        Expr::value(now),
                        Expr::value(traceparent.clone()),
                        Expr::value(event.payload),
                    ])
                    .map_err(|e| DbErr::Custom(e.to_string()))?;
                ids.push(id);
            }
            txn.execute(&statement).await?;
        }
        Ok(ids)
    }
}

/// Rows per multi-row insert into the outbox: 9 bound parameters each, far below the backends'
/// limits.
const STAGE_CHUNK: usize = 500;

/// Wakes the relay after a commit. Cheap to clone; a wake while the relay is busy is remembered.
#[derive(Debug, Clone, Default)]
pub struct RelayHandle {
    notify: Arc<Notify>,
}

impl RelayHandle {
    pub fn wake(&self) {
        self.notify.notify_one();
    }
}

/// Publishes the outbox to JetStream. Run one per service process; see the module docs for replicas.
pub struct OutboxRelay {
    db: Db,
    jetstream: jetstream::Context,
    source: EventSource,
    table: String,
    settings: OutboxSettings,
    handle: RelayHandle,
    /// To re-create the stream when a NATS restart lost it.
    stream_config: async_nats::jetstream::stream::Config,
    /// The stream's creation time as last seen: a different one means the stream was re-created
    /// and everything kept must be published again.
    stream_created: std::sync::Mutex<Option<String>>,
    /// Stamps `published_at` and dates the purge (ARCHITECTURE §10: no wall-clock reads).
    clock: crate::clock::SharedClock,
}

struct PendingRow {
    seq: i64,
    subject: String,
    attributes: CloudEventAttributes,
    payload: Vec<u8>,
}

/// What one pass of the relay did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct BatchOutcome {
    pub published: usize,
    /// The batch was full: more rows may be waiting.
    pub full: bool,
    /// Another replica holds the relay lock.
    pub locked_out: bool,
}

impl OutboxRelay {
    pub fn new(
        db: Db,
        jetstream: jetstream::Context,
        source: EventSource,
        settings: OutboxSettings,
        handle: RelayHandle,
    ) -> Self {
        let table = outbox_table(source.service);
        let stream_config =
            super::streams::stream_config(&source, &crate::settings::Settings::defaults().nats);
        Self {
            db,
            jetstream,
            source,
            table,
            settings,
            handle,
            stream_config,
            stream_created: std::sync::Mutex::new(None),
            clock: std::sync::Arc::new(crate::clock::SystemClock),
        }
    }

    /// The clock that stamps `published_at` and dates the purge of published rows.
    pub fn with_clock(mut self, clock: crate::clock::SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// The stream limits to use when the relay has to re-create the stream.
    pub fn with_stream_settings(mut self, nats: &crate::settings::NatsSettings) -> Self {
        self.stream_config = super::streams::stream_config(&self.source, nats);
        self
    }

    /// Publishes until `shutdown`, then returns at a batch boundary.
    pub async fn run(self, shutdown: CancellationToken) {
        let poll = Duration::from_millis(Ord::max(self.settings.poll_interval_ms, 10));
        let mut failures: u32 = 0;
        let mut needs_reconcile = true;
        let statistics = self.jetstream.client().statistics();
        let mut connects = statistics
            .connects
            .load(std::sync::atomic::Ordering::Relaxed);
        let mut last_purge = std::time::Instant::now();
        loop {
            if shutdown.is_cancelled() {
                break;
            }
            // A reconnect may mean a restarted server that lost what it had acknowledged.
            let now_connects = statistics
                .connects
                .load(std::sync::atomic::Ordering::Relaxed);
            if now_connects != connects {
                connects = now_connects;
                needs_reconcile = true;
            }
            // Reconcile before publishing anything new, or new events would take the sequence
            // numbers of lost ones and hide them.
            if needs_reconcile {
                match self.reconcile_with_stream().await {
                    Ok(republished) => {
                        needs_reconcile = false;
                        if republished > 0 {
                            tracing::warn!(rows = republished, stream = %self.source.stream_name(), "stream lost acknowledged events; re-publishing them");
                        }
                    }
                    Err(error) => {
                        failures = failures.saturating_add(1);
                        if failures == 1 || failures.is_multiple_of(50) {
                            tracing::warn!(error = %error, failures, "outbox relay cannot reach the stream; will retry");
                        }
                        tokio::select! {
                            _ = tokio::time::sleep(backoff(failures)) => {}
                            _ = shutdown.cancelled() => break,
                        }
                        continue;
                    }
                }
            }
            match self.publish_batch().await {
                Ok(outcome) => {
                    if failures > 0 {
                        tracing::info!(after_failures = failures, "outbox relay publishing again");
                        failures = 0;
                    }
                    if outcome.full {
                        continue;
                    }
                }
                Err(error) => {
                    failures = failures.saturating_add(1);
                    needs_reconcile = true;
                    if failures == 1 || failures.is_multiple_of(50) {
                        tracing::warn!(error = %error, failures, "outbox relay cannot publish; will retry");
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(backoff(failures)) => {}
                        _ = shutdown.cancelled() => break,
                    }
                    continue;
                }
            }
            if last_purge.elapsed() > Duration::from_secs(60) {
                last_purge = std::time::Instant::now();
                if let Err(error) = self.purge_published().await {
                    tracing::warn!(error = %error, "outbox purge failed");
                }
            }
            tokio::select! {
                _ = self.handle.notify.notified() => {}
                _ = tokio::time::sleep(poll) => {}
                _ = shutdown.cancelled() => break,
            }
        }
        tracing::info!(stream = %self.source.stream_name(), "outbox relay stopped");
    }

    /// One pass: publish up to `batch_size` pending rows in order and mark them.
    pub async fn publish_batch(&self) -> anyhow::Result<BatchOutcome> {
        if self.db.is_postgres() {
            // The advisory lock, held by this transaction, keeps other replicas' relays out while
            // this one publishes, so order is kept; it blocks no writer.
            let txn = self.db.connection().begin().await?;
            let locked = txn
                .query_one_raw(sea_orm::Statement::from_sql_and_values(
                    sea_orm::DbBackend::Postgres,
                    "SELECT pg_try_advisory_xact_lock($1) AS locked",
                    [lock_key(&self.table).into()],
                ))
                .await?
                .map(|row| row.try_get::<bool>("", "locked"))
                .transpose()?
                .unwrap_or(false);
            if !locked {
                return Ok(BatchOutcome {
                    locked_out: true,
                    ..BatchOutcome::default()
                });
            }
            let pending = self.select_pending(&txn).await?;
            let (acknowledged, error) = self.publish(&pending).await;
            self.mark_published(&txn, &acknowledged).await?;
            txn.commit().await?;
            self.outcome(&pending, acknowledged.len(), error)
        } else {
            // SQLite serves one process. Read and publish without the writer lock, so that writers
            // never wait on NATS, then mark in a short write transaction.
            let pending = self.select_pending(self.db.connection()).await?;
            let (acknowledged, error) = self.publish(&pending).await;
            if !acknowledged.is_empty() {
                let txn = self.db.begin_write().await?;
                self.mark_published(&*txn, &acknowledged).await?;
                txn.commit().await?;
            }
            self.outcome(&pending, acknowledged.len(), error)
        }
    }

    fn outcome(
        &self,
        pending: &[PendingRow],
        published: usize,
        error: Option<anyhow::Error>,
    ) -> anyhow::Result<BatchOutcome> {
        metrics().published.add(published as u64, &[]);
        match error {
            // What was acknowledged is marked; the rest stays pending for the next pass.
            Some(error) => {
                Err(error.context(format!("published {published} of {}", pending.len())))
            }
            None => Ok(BatchOutcome {
                published,
                full: pending.len() as u64 == Ord::max(self.settings.batch_size, 1),
                locked_out: false,
            }),
        }
    }

    async fn select_pending<C: ConnectionTrait>(&self, conn: &C) -> Result<Vec<PendingRow>, DbErr> {
        let select = Query::select()
            .columns(
                [
                    "seq",
                    "event_id",
                    "nats_subject",
                    "ce_type",
                    "ce_source",
                    "ce_subject",
                    "tenant",
                    "ce_time",
                    "traceparent",
                    "payload",
                ]
                .map(Alias::new),
            )
            .from(Alias::new(&self.table))
            .and_where(Expr::col(Alias::new("published_at")).is_null())
            .order_by(Alias::new("seq"), Order::Asc)
            .limit(Ord::max(self.settings.batch_size, 1))
            .to_owned();
        conn.query_all(&select)
            .await?
            .iter()
            .map(pending_row)
            .collect()
    }

    /// Publishes `pending` in order, pipelined: all messages go out, then the acks are collected
    /// in order. Stops at the first failure (each ack's timeout only starts when awaited, so
    /// waiting on the rest would stall the relay once per row); returns `(seq, stream sequence)`
    /// of the acknowledged prefix.
    async fn publish(&self, pending: &[PendingRow]) -> (Vec<(i64, i64)>, Option<anyhow::Error>) {
        let mut acks = Vec::with_capacity(pending.len());
        for row in pending {
            let message = PublishMessage::build()
                .payload(row.payload.clone().into())
                .headers(row.attributes.to_headers());
            match self
                .jetstream
                .send_publish(row.subject.clone(), message)
                .await
            {
                Ok(ack) => acks.push((row.seq, ack)),
                Err(error) => {
                    let acknowledged = self.collect(acks).await;
                    return match acknowledged {
                        (done, None) => (done, Some(error.into())),
                        other => other,
                    };
                }
            }
        }
        self.collect(acks).await
    }

    async fn collect(
        &self,
        acks: Vec<(i64, async_nats::jetstream::context::PublishAckFuture)>,
    ) -> (Vec<(i64, i64)>, Option<anyhow::Error>) {
        let mut acknowledged = Vec::with_capacity(acks.len());
        for (seq, ack) in acks {
            match ack.await {
                Ok(ack) => acknowledged.push((seq, ack.sequence as i64)),
                Err(error) => return (acknowledged, Some(error.into())),
            }
        }
        (acknowledged, None)
    }

    /// Records the stream sequence of each acknowledged row, in one statement.
    async fn mark_published<C: ConnectionTrait>(
        &self,
        conn: &C,
        acknowledged: &[(i64, i64)],
    ) -> Result<(), DbErr> {
        if acknowledged.is_empty() {
            return Ok(());
        }
        let mut stream_seq = CaseStatement::new();
        for (seq, sequence) in acknowledged {
            stream_seq = stream_seq.case(
                Expr::col(Alias::new("seq")).eq(*seq),
                Expr::value(*sequence),
            );
        }
        let update = Query::update()
            .table(Alias::new(&self.table))
            .values([
                (Alias::new("published_at"), Expr::value(self.clock.now())),
                (Alias::new("stream_seq"), stream_seq.into()),
            ])
            .and_where(Expr::col(Alias::new("seq")).is_in(acknowledged.iter().map(|(seq, _)| *seq)))
            .to_owned();
        conn.execute(&update).await?;
        Ok(())
    }

    /// Marks as pending again what the stream no longer has: rows whose stream sequence is beyond
    /// the stream's last one (NATS acknowledged them, then a host crash lost them before fsync), or
    /// every kept row when the stream was re-created (its creation time changed). Re-creates a
    /// missing stream first.
    pub async fn reconcile_with_stream(&self) -> anyhow::Result<u64> {
        let mut stream = self
            .jetstream
            .get_or_create_stream(self.stream_config.clone())
            .await?;
        let info = stream.info().await?;
        let last_sequence = info.state.last_sequence as i64;
        let created = info.created.to_string();
        let recreated = {
            let mut seen = self
                .stream_created
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let recreated = seen.as_ref().is_some_and(|previous| *previous != created);
            *seen = Some(created);
            recreated
        };
        let mut update = Query::update();
        update.table(Alias::new(&self.table)).values([
            (
                Alias::new("published_at"),
                Expr::value(Option::<DateTime<Utc>>::None),
            ),
            (Alias::new("stream_seq"), Expr::value(Option::<i64>::None)),
        ]);
        if recreated {
            update.and_where(Expr::col(Alias::new("stream_seq")).is_not_null());
        } else {
            update.and_where(Expr::col(Alias::new("stream_seq")).gt(last_sequence));
        }
        let txn = self.db.begin_write().await?;
        let result = txn.execute(&update).await?;
        txn.commit().await?;
        Ok(result.rows_affected())
    }

    async fn purge_published(&self) -> Result<u64, DbErr> {
        let cutoff =
            self.clock.now() - chrono::Duration::hours(self.settings.retention_hours as i64);
        let delete = Query::delete()
            .from_table(Alias::new(&self.table))
            .and_where(Expr::col(Alias::new("published_at")).lt(cutoff))
            .to_owned();
        let txn = self.db.begin_write().await?;
        let result = txn.execute(&delete).await?;
        txn.commit().await?;
        Ok(result.rows_affected())
    }
}

fn pending_row(row: &QueryResult) -> Result<PendingRow, DbErr> {
    Ok(PendingRow {
        seq: row.try_get("", "seq")?,
        subject: row.try_get("", "nats_subject")?,
        attributes: CloudEventAttributes {
            id: row.try_get("", "event_id")?,
            source: row.try_get("", "ce_source")?,
            ce_type: row.try_get("", "ce_type")?,
            subject: row.try_get("", "ce_subject")?,
            tenant: row.try_get("", "tenant")?,
            time: row.try_get("", "ce_time")?,
            traceparent: row.try_get("", "traceparent")?,
        },
        payload: row.try_get("", "payload")?,
    })
}

struct RelayMetrics {
    published: opentelemetry::metrics::Counter<u64>,
}

/// The relay's instruments (exported when OTLP metrics are configured).
fn metrics() -> &'static RelayMetrics {
    static METRICS: std::sync::OnceLock<RelayMetrics> = std::sync::OnceLock::new();
    METRICS.get_or_init(|| RelayMetrics {
        published: opentelemetry::global::meter("desk")
            .u64_counter("desk.outbox.published")
            .with_description("events the outbox relay published and JetStream acknowledged")
            .build(),
    })
}

/// A stable advisory-lock key per outbox table, so each service's relays exclude each other only.
fn lock_key(table: &str) -> i64 {
    crate::ids::stable_hash(table.as_bytes()) as i64
}

/// Counts rows not yet published: the outbox lag, for metrics and tests.
pub async fn pending_count(db: &Db, service: &str) -> Result<i64, DbErr> {
    let select = Query::select()
        .expr_as(Expr::col(Alias::new("seq")).count(), Alias::new("pending"))
        .from(Alias::new(outbox_table(service)))
        .and_where(Expr::col(Alias::new("published_at")).is_null())
        .to_owned();
    let row = db.connection().query_one(&select).await?;
    Ok(row
        .map(|r| r.try_get::<i64>("", "pending"))
        .transpose()?
        .unwrap_or(0))
}
