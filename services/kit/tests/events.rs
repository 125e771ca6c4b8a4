//! The kit's event backbone (ARCHITECTURE §5, the event contract) against real servers: the
//! transactional outbox and its relay, stream set-up, and the idempotent inbox consumer.
//!
//! Every scenario that touches a database runs on PostgreSQL and on SQLite (`…_on_postgres`,
//! `…_on_sqlite`), each with its own nats-server (from `desk-testkit`) and its own fresh database.
//! Waits are bounded polls with a deadline; no sleep is an assertion.

// The kit's other scenarios against real servers share the crate's one test binary.
mod calls;
mod idempotency;
mod jwks;
mod migrations;

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use async_nats::{
    HeaderMap,
    jetstream::{
        self,
        consumer::{AckPolicy, PullConsumer, pull},
    },
};
use chrono::{DateTime, Utc};
use desk_kit::{
    db::Db,
    events::{
        envelope::{CloudEventAttributes, EventSource, OutgoingEvent},
        migrations::{inbox_migration, outbox_migration, outbox_unpublished_migration},
        outbox::{MAX_EVENT_PAYLOAD_BYTES, Outbox, OutboxRelay, RelayHandle, pending_count},
        streams::{connect, ensure_stream},
    },
    settings::{NatsSettings, OutboxSettings},
};
use desk_testkit::{Backend, NatsServer, TestDatabase, postgres_database, sqlite_database};
use futures::StreamExt as _;
use sea_orm_migration::{prelude::*, sea_orm::Statement};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

#[path = "events/nats_permissions.rs"]
mod nats_permissions;

// ---------------------------------------------------------------------------------------------
// Schema: the kit's outbox and inbox for a made-up service "kittest", plus a table for effects.
// ---------------------------------------------------------------------------------------------

const SERVICE: &str = "kittest";
const REGION: &str = "kt";
const EFFECTS: &str = "kittest_effects";
const OUTBOX: &str = "kittest_outbox";
const INBOX: &str = "kittest_inbox";
const WIDGET_CREATED: &str = "desk.kt.kittest.acme.widget.created";

struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            outbox_migration(SERVICE),
            inbox_migration(SERVICE),
            Box::new(CreateEffects),
            outbox_unpublished_migration(SERVICE),
        ]
    }

    fn migration_table_name() -> DynIden {
        Alias::new("kittest_migrations").into_iden()
    }
}

struct CreateEffects;

impl MigrationName for CreateEffects {
    fn name(&self) -> &str {
        "m20261125_000100_create_kittest_effects"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateEffects {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Alias::new(EFFECTS))
                    .if_not_exists()
                    // No key: a second effect of one event must show as a second row.
                    .col(ColumnDef::new(Alias::new("event_id")).uuid().not_null())
                    .col(ColumnDef::new(Alias::new("message")).string().not_null())
                    .to_owned(),
            )
            .await
    }
}

// ---------------------------------------------------------------------------------------------
// Fixture
// ---------------------------------------------------------------------------------------------

/// One scenario's world: a fresh database with the schema, its own nats-server, the stream.
struct Kit {
    db: Db,
    nats: NatsServer,
    jetstream: jetstream::Context,
    source: EventSource,
    outbox: Outbox,
    nats_settings: NatsSettings,
    _database: TestDatabase,
}

fn nats_settings(url: String) -> NatsSettings {
    NatsSettings {
        url,
        stream_max_age_hours: 1,
        stream_max_bytes: -1,
        duplicate_window_seconds: 120,
        user: None,
        password: None,
    }
}

fn outbox_settings() -> OutboxSettings {
    // A long poll: anything prompt in these tests comes from a wake, not from the fallback poll.
    OutboxSettings {
        batch_size: 256,
        poll_interval_ms: 60_000,
        retention_hours: 24,
    }
}

impl Kit {
    async fn start(backend: Backend) -> anyhow::Result<Kit> {
        let database = match backend {
            Backend::Postgres => postgres_database().await?,
            Backend::Sqlite => sqlite_database()?,
        };
        let db = Db::connect(&database.url, 8)
            .await
            .with_context(|| format!("connecting to {}", database.url))?;
        Migrator::up(db.connection(), None)
            .await
            .context("migrating")?;
        let nats = NatsServer::start().await?;
        let client = connect(&nats.url(), "kittest").await?;
        let mut jetstream = jetstream::new(client);
        // Short enough that an outage fails a publish quickly, long enough for a loaded CI box.
        jetstream.set_timeout(Duration::from_secs(2));
        let source = EventSource::new(REGION, SERVICE);
        let nats_settings = nats_settings(nats.url());
        ensure_stream(&jetstream, &source, &nats_settings).await?;
        let outbox = Outbox::new(source.clone());
        Ok(Kit {
            db,
            nats,
            jetstream,
            source,
            outbox,
            nats_settings,
            _database: database,
        })
    }

    fn relay(&self, handle: &RelayHandle) -> OutboxRelay {
        OutboxRelay::new(
            self.db.clone(),
            self.jetstream.clone(),
            self.source.clone(),
            outbox_settings(),
            handle.clone(),
        )
    }

    /// Stages one `widget.created` event in its own transaction and commits it.
    async fn stage_committed(&self, aggregate_id: &str, payload: &[u8]) -> anyhow::Result<Uuid> {
        let txn = self.db.begin_write().await?;
        let id = self
            .outbox
            .stage(&*txn, widget_created(aggregate_id, payload), Utc::now())
            .await?;
        txn.commit().await?;
        Ok(id)
    }

    async fn stream(&self) -> anyhow::Result<jetstream::stream::Stream> {
        Ok(self.jetstream.get_stream(self.source.stream_name()).await?)
    }

    async fn stream_state(&self) -> anyhow::Result<jetstream::stream::State> {
        Ok(self.stream().await?.get_info().await?.state)
    }

    /// `(stream sequence, ce-id)` of every message in the stream, in stream order.
    async fn stream_event_ids(&self) -> anyhow::Result<Vec<(u64, String)>> {
        let stream = self.stream().await?;
        let state = stream.get_info().await?.state;
        let mut ids = Vec::new();
        if state.messages == 0 {
            return Ok(ids);
        }
        for sequence in state.first_sequence..=state.last_sequence {
            // A deleted sequence inside the range is simply absent.
            if let Ok(message) = stream.get_raw_message(sequence).await {
                ids.push((
                    sequence,
                    header(&message.headers, "ce-id").unwrap_or_default(),
                ));
            }
        }
        Ok(ids)
    }

    /// The outbox rows' `stream_seq`, in `seq` order.
    async fn outbox_stream_seqs(&self) -> anyhow::Result<Vec<Option<i64>>> {
        let rows = self
            .db
            .connection()
            .query_all_raw(Statement::from_string(
                self.db.backend(),
                format!("SELECT stream_seq FROM {OUTBOX} ORDER BY seq"),
            ))
            .await?;
        rows.iter()
            .map(|row| Ok(row.try_get::<Option<i64>>("", "stream_seq")?))
            .collect()
    }

    async fn count(&self, table: &str) -> anyhow::Result<i64> {
        let row = self
            .db
            .connection()
            .query_one_raw(Statement::from_string(
                self.db.backend(),
                format!("SELECT COUNT(*) AS n FROM {table}"),
            ))
            .await?
            .context("COUNT(*) returned no row")?;
        Ok(row.try_get::<i64>("", "n")?)
    }

    async fn pending(&self) -> anyhow::Result<i64> {
        Ok(pending_count(&self.db, SERVICE).await?)
    }

    /// Publishes a raw message straight to JetStream (not through the outbox) and waits for the ack.
    async fn publish_raw(
        &self,
        subject: &str,
        headers: HeaderMap,
        payload: &'static [u8],
    ) -> anyhow::Result<jetstream::publish::PublishAck> {
        Ok(self
            .jetstream
            .publish_with_headers(subject.to_owned(), headers, payload.into())
            .await?
            .await?)
    }
}

fn widget_created(aggregate_id: &str, payload: &[u8]) -> OutgoingEvent {
    OutgoingEvent {
        aggregate: "widget",
        event: "created",
        aggregate_id: aggregate_id.to_owned(),
        tenant: "acme".to_owned(),
        payload: payload.to_vec(),
    }
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get(name).map(|value| value.as_str().to_owned())
}

/// CloudEvents headers for a hand-made `widget.created` event with the given id.
fn cloud_event_headers(id: Uuid) -> HeaderMap {
    CloudEventAttributes {
        id,
        source: "/desk/kt/kittest".to_owned(),
        ce_type: "desk.kittest.widget.created.v1".to_owned(),
        subject: "w-1".to_owned(),
        tenant: "acme".to_owned(),
        time: Utc::now(),
        traceparent: None,
    }
    .to_headers()
}

/// Reads every message on `filter` through a fresh ephemeral pull consumer (no acks).
async fn read_with_consumer(kit: &Kit, filter: &str) -> anyhow::Result<Vec<jetstream::Message>> {
    let consumer: PullConsumer = kit
        .stream()
        .await?
        .create_consumer(pull::Config {
            filter_subject: filter.to_owned(),
            ack_policy: AckPolicy::None,
            ..Default::default()
        })
        .await?;
    let mut messages = Vec::new();
    loop {
        let mut batch = consumer.fetch().max_messages(100).messages().await?;
        let before = messages.len();
        while let Some(message) = batch.next().await {
            messages.push(message.map_err(|e| anyhow::anyhow!(e))?);
        }
        if messages.len() == before {
            return Ok(messages);
        }
    }
}

/// The next delivery for `consumer`, waiting at most until `deadline`.
async fn next_delivery(
    consumer: &PullConsumer,
    deadline: Instant,
) -> anyhow::Result<jetstream::Message> {
    loop {
        ensure!(Instant::now() < deadline, "no delivery before the deadline");
        let mut batch = consumer
            .batch()
            .max_messages(1)
            .expires(Duration::from_millis(500))
            .messages()
            .await?;
        if let Some(message) = batch.next().await {
            return message.map_err(|e| anyhow::anyhow!(e));
        }
    }
}

/// Waits until the consumer has nothing pending and nothing awaiting an ack (acks and terms are
/// fire-and-forget, so the server may see them a moment after `process` returns).
async fn settled(consumer: &PullConsumer) -> anyhow::Result<()> {
    eventually(
        Duration::from_secs(5),
        "the consumer settled (no pending, no ack pending)",
        || async {
            let info = consumer.get_info().await?;
            Ok((info.num_ack_pending == 0 && info.num_pending == 0).then_some(()))
        },
    )
    .await
}

/// Polls `probe` until it yields `Some`, failing with `what` after `within`.
async fn eventually<T, F, Fut>(within: Duration, what: &str, mut probe: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Option<T>>>,
{
    let deadline = Instant::now() + within;
    let mut last_error = None;
    loop {
        match probe().await {
            Ok(Some(value)) => return Ok(value),
            Ok(None) => {}
            Err(error) => last_error = Some(error),
        }
        if Instant::now() >= deadline {
            bail!("{what}: not within {within:?} (last error: {last_error:?})");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Backend variants
// ---------------------------------------------------------------------------------------------

/// Every scenario is bounded, so a hang fails with a message instead of stalling the suite.
const SCENARIO_LIMIT: Duration = Duration::from_secs(45);

macro_rules! on_both_backends {
    ($scenario:ident => $on_postgres:ident, $on_sqlite:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $on_postgres() -> anyhow::Result<()> {
            tokio::time::timeout(SCENARIO_LIMIT, $scenario(Backend::Postgres))
                .await
                .with_context(|| {
                    format!(
                        "{} did not finish within {SCENARIO_LIMIT:?}",
                        stringify!($on_postgres)
                    )
                })?
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $on_sqlite() -> anyhow::Result<()> {
            tokio::time::timeout(SCENARIO_LIMIT, $scenario(Backend::Sqlite))
                .await
                .with_context(|| {
                    format!(
                        "{} did not finish within {SCENARIO_LIMIT:?}",
                        stringify!($on_sqlite)
                    )
                })?
        }
    };
}

// ---------------------------------------------------------------------------------------------
// Outbox and relay
// ---------------------------------------------------------------------------------------------

on_both_backends!(committed_event_is_published_once =>
    an_event_staged_in_a_committed_transaction_is_published_once_with_cloudevents_headers_on_postgres,
    an_event_staged_in_a_committed_transaction_is_published_once_with_cloudevents_headers_on_sqlite);

async fn committed_event_is_published_once(backend: Backend) -> anyhow::Result<()> {
    // Given an event staged in a committed transaction,
    let kit = Kit::start(backend).await?;
    let relay = kit.relay(&RelayHandle::default());
    let payload: &[u8] = b"\x0a\x03w-1\x10\x01\x00\xff binary, not text";
    let now: DateTime<Utc> = Utc::now();
    let txn = kit.db.begin_write().await?;
    let id = kit
        .outbox
        .stage(&*txn, widget_created("w-1", payload), now)
        .await?;
    txn.commit().await?;
    assert_eq!(kit.pending().await?, 1, "the committed row is pending");

    // when the relay runs one pass,
    let outcome = relay.publish_batch().await?;

    // then it published exactly that event, with CloudEvents headers and the body unchanged.
    assert_eq!(outcome.published, 1, "{outcome:?}");
    assert!(!outcome.full && !outcome.locked_out, "{outcome:?}");
    let messages = read_with_consumer(&kit, WIDGET_CREATED).await?;
    assert_eq!(messages.len(), 1, "one message on {WIDGET_CREATED}");
    let message = &messages[0];
    assert_eq!(message.subject.as_str(), WIDGET_CREATED);
    let headers = message
        .headers
        .as_ref()
        .context("the message has headers")?;
    let id = id.to_string();
    assert_eq!(
        header(headers, "ce-id").as_deref(),
        Some(id.as_str()),
        "ce-id is the staged event id"
    );
    assert_eq!(
        header(headers, "Nats-Msg-Id").as_deref(),
        Some(id.as_str()),
        "Nats-Msg-Id equals ce-id"
    );
    assert_eq!(header(headers, "ce-specversion").as_deref(), Some("1.0"));
    assert_eq!(
        header(headers, "ce-type").as_deref(),
        Some("desk.kittest.widget.created.v1")
    );
    assert_eq!(
        header(headers, "ce-source").as_deref(),
        Some("/desk/kt/kittest")
    );
    assert_eq!(header(headers, "ce-subject").as_deref(), Some("w-1"));
    assert_eq!(header(headers, "ce-tenant").as_deref(), Some("acme"));
    assert_eq!(
        header(headers, "Content-Type").as_deref(),
        Some("application/protobuf")
    );
    let ce_time = header(headers, "ce-time").context("ce-time is set")?;
    let ce_time = DateTime::parse_from_rfc3339(&ce_time)
        .with_context(|| format!("ce-time {ce_time:?} is RFC 3339"))?;
    assert_eq!(
        ce_time.timestamp_micros(),
        now.timestamp_micros(),
        "ce-time is the staging time (to the microsecond)"
    );
    assert_eq!(
        message.payload.as_ref(),
        payload,
        "the body is the staged bytes, unchanged"
    );
    let attributes =
        CloudEventAttributes::from_headers(headers).context("the headers parse back")?;
    assert_eq!(attributes.id.to_string(), id);

    // and the row is marked with its stream sequence, so a second pass publishes nothing.
    assert_eq!(kit.pending().await?, 0, "nothing pending after the pass");
    assert_eq!(
        kit.outbox_stream_seqs().await?,
        vec![Some(1)],
        "the row records the JetStream sequence"
    );
    assert_eq!(
        relay.publish_batch().await?.published,
        0,
        "a second pass publishes nothing"
    );
    assert_eq!(
        kit.stream_state().await?.messages,
        1,
        "the stream holds the event once"
    );
    Ok(())
}

on_both_backends!(rolled_back_event_is_never_published =>
    an_event_staged_in_a_rolled_back_transaction_is_never_published_on_postgres,
    an_event_staged_in_a_rolled_back_transaction_is_never_published_on_sqlite);

async fn rolled_back_event_is_never_published(backend: Backend) -> anyhow::Result<()> {
    // Given an event staged in a transaction that is dropped without commit (a rollback),
    let kit = Kit::start(backend).await?;
    let relay = kit.relay(&RelayHandle::default());
    {
        let txn = kit.db.begin_write().await?;
        kit.outbox
            .stage(&*txn, widget_created("w-1", b"never"), Utc::now())
            .await?;
        drop(txn);
    }
    assert_eq!(kit.pending().await?, 0, "a rolled-back row does not exist");

    // when the relay runs a pass, then nothing is published and the stream stays empty.
    assert_eq!(relay.publish_batch().await?.published, 0);
    assert_eq!(kit.stream_state().await?.messages, 0, "the stream is empty");
    assert_eq!(kit.count(OUTBOX).await?, 0, "the outbox is empty");
    Ok(())
}

on_both_backends!(oversized_event_is_refused_when_staged =>
    an_event_too_large_for_nats_is_refused_when_staged_and_the_events_after_it_still_flow_on_postgres,
    an_event_too_large_for_nats_is_refused_when_staged_and_the_events_after_it_still_flow_on_sqlite);

async fn oversized_event_is_refused_when_staged(backend: Backend) -> anyhow::Result<()> {
    // Given a transaction that stages an event larger than nats-server's default max_payload,
    let kit = Kit::start(backend).await?;
    let relay = kit.relay(&RelayHandle::default());
    let huge = vec![7_u8; MAX_EVENT_PAYLOAD_BYTES + 1];
    let txn = kit.db.begin_write().await?;
    let refused = kit
        .outbox
        .stage(&*txn, widget_created("w-huge", &huge), Utc::now())
        .await;

    // then staging fails, naming the event and its size, so the writer's transaction fails too
    let error = match refused {
        Ok(id) => bail!("an event of {} bytes was staged as {id}", huge.len()),
        Err(error) => error.to_string(),
    };
    ensure!(
        error.contains("widget.created") && error.contains(&huge.len().to_string()),
        "the error names the event and its size: {error}"
    );
    drop(txn);

    // and an event at the limit, staged next, is published: nothing stalls the relay
    let at_limit = vec![8_u8; MAX_EVENT_PAYLOAD_BYTES];
    let txn = kit.db.begin_write().await?;
    kit.outbox
        .stage(&*txn, widget_created("w-big", &at_limit), Utc::now())
        .await?;
    txn.commit().await?;
    assert_eq!(relay.publish_batch().await?.published, 1);
    let messages = read_with_consumer(&kit, WIDGET_CREATED).await?;
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].payload.len(), MAX_EVENT_PAYLOAD_BYTES);
    Ok(())
}

on_both_backends!(running_relay_publishes_after_wake =>
    the_relay_run_loop_publishes_promptly_and_in_order_after_a_wake_and_stops_when_cancelled_on_postgres,
    the_relay_run_loop_publishes_promptly_and_in_order_after_a_wake_and_stops_when_cancelled_on_sqlite);

async fn running_relay_publishes_after_wake(backend: Backend) -> anyhow::Result<()> {
    // Given a running relay whose fallback poll is a minute away,
    let kit = Kit::start(backend).await?;
    let handle = RelayHandle::default();
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(kit.relay(&handle).run(shutdown.clone()));

    // when 20 events are committed one by one, each followed by a wake,
    let mut staged = Vec::new();
    for n in 0..20 {
        staged.push(
            kit.stage_committed(&format!("w-{n}"), format!("widget {n}").as_bytes())
                .await?
                .to_string(),
        );
        handle.wake();
    }

    // then all arrive promptly (long before the poll), in staging order,
    let published = eventually(
        Duration::from_secs(10),
        "20 events in the stream",
        || async {
            let ids = kit.stream_event_ids().await?;
            Ok((ids.len() >= 20).then_some(ids))
        },
    )
    .await?;
    let in_stream: Vec<String> = published.into_iter().map(|(_, id)| id).collect();
    assert_eq!(
        in_stream, staged,
        "the stream holds each event once, in outbox order"
    );
    eventually(Duration::from_secs(5), "the outbox drained", || async {
        Ok((kit.pending().await? == 0).then_some(()))
    })
    .await?;

    // and cancelling the token ends the run loop.
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), running)
        .await
        .context("the relay did not stop within 5 s of cancellation")?
        .context("the relay task failed")?;
    Ok(())
}

on_both_backends!(republished_row_is_deduplicated =>
    a_republished_row_is_dropped_by_the_jetstream_duplicate_window_on_postgres,
    a_republished_row_is_dropped_by_the_jetstream_duplicate_window_on_sqlite);

async fn republished_row_is_deduplicated(backend: Backend) -> anyhow::Result<()> {
    // Given a published event
    let kit = Kit::start(backend).await?;
    let relay = kit.relay(&RelayHandle::default());
    let id = kit.stage_committed("w-1", b"once").await?;
    assert_eq!(relay.publish_batch().await?.published, 1);
    let first_seq = kit.outbox_stream_seqs().await?;
    assert_eq!(first_seq, vec![Some(1)]);

    // whose row is marked unpublished again (a crash between the JetStream ack and the mark),
    kit.db
        .connection()
        .execute_unprepared(&format!(
            "UPDATE {OUTBOX} SET published_at = NULL, stream_seq = NULL"
        ))
        .await?;
    assert_eq!(kit.pending().await?, 1);

    // when the relay publishes it again,
    assert_eq!(
        relay.publish_batch().await?.published,
        1,
        "the relay re-sends the row"
    );

    // then JetStream drops the re-send: one message, and the row gets the original sequence back.
    assert_eq!(
        kit.stream_state().await?.messages,
        1,
        "the duplicate window dropped the re-send"
    );
    assert_eq!(
        kit.outbox_stream_seqs().await?,
        first_seq,
        "the duplicate's ack carries the original sequence"
    );
    assert_eq!(kit.pending().await?, 0);

    // (The relay does not expose the ack; the same Nats-Msg-Id sent by hand shows JetStream calls it a duplicate.)
    let ack = kit
        .publish_raw(WIDGET_CREATED, cloud_event_headers(id), b"once")
        .await?;
    assert!(ack.duplicate, "{ack:?}");
    assert_eq!(ack.sequence, 1, "{ack:?}");
    Ok(())
}

on_both_backends!(publishing_survives_a_nats_outage =>
    publishing_while_nats_is_down_fails_without_losing_the_row_and_succeeds_after_restart_on_postgres,
    publishing_while_nats_is_down_fails_without_losing_the_row_and_succeeds_after_restart_on_sqlite);

async fn publishing_survives_a_nats_outage(backend: Backend) -> anyhow::Result<()> {
    // Given a committed event and NATS down,
    let mut kit = Kit::start(backend).await?;
    let relay = kit.relay(&RelayHandle::default());
    let id = kit.stage_committed("w-1", b"survives").await?;
    kit.nats.stop().await;

    // when the relay tries to publish, then the pass fails and the row stays pending;
    let attempt = relay.publish_batch().await;
    assert!(
        attempt.is_err(),
        "publishing with NATS down must fail, got {attempt:?}"
    );
    assert_eq!(kit.pending().await?, 1, "the row is still pending");
    assert_eq!(kit.outbox_stream_seqs().await?, vec![None]);

    // and once NATS is back, a pass publishes it — once, whatever the client buffered meanwhile.
    kit.nats.restart().await?;
    eventually(
        Duration::from_secs(20),
        "a pass publishing the row after the restart",
        || async {
            match relay.publish_batch().await {
                Ok(outcome) if outcome.published == 1 => Ok(Some(())),
                Ok(outcome) => bail!("unexpected outcome {outcome:?}"),
                Err(error) => Err(error),
            }
        },
    )
    .await?;
    assert_eq!(kit.pending().await?, 0);
    let ids = kit.stream_event_ids().await?;
    assert_eq!(
        ids,
        vec![(1, id.to_string())],
        "the stream holds the event exactly once"
    );
    Ok(())
}

on_both_backends!(reconcile_republishes_the_lost_gap =>
    reconcile_republishes_what_the_stream_lost_on_postgres,
    reconcile_republishes_what_the_stream_lost_on_sqlite);

async fn reconcile_republishes_the_lost_gap(backend: Backend) -> anyhow::Result<()> {
    // Given three published events,
    let kit = Kit::start(backend).await?;
    let relay = kit.relay(&RelayHandle::default());
    let mut staged = Vec::new();
    for n in 0..3 {
        staged.push(
            kit.stage_committed(&format!("w-{n}"), b"kept")
                .await?
                .to_string(),
        );
    }
    assert_eq!(relay.publish_batch().await?.published, 3);
    assert_eq!(
        kit.outbox_stream_seqs().await?,
        vec![Some(1), Some(2), Some(3)]
    );

    // and a NATS host that lost its data (the stream deleted and re-created empty — a purge would
    // keep last_sequence at 3, so it does not model a lost store),
    kit.jetstream
        .delete_stream(kit.source.stream_name())
        .await?;
    ensure_stream(&kit.jetstream, &kit.source, &kit.nats_settings).await?;
    assert_eq!(kit.stream_state().await?.last_sequence, 0);

    // when the relay reconciles, then the rows beyond the stream's last sequence are pending again,
    assert_eq!(
        relay.reconcile_with_stream().await?,
        3,
        "all three rows are beyond the new stream's end"
    );
    assert_eq!(kit.pending().await?, 3);

    // and the next pass publishes them again, in order, on the new stream.
    assert_eq!(relay.publish_batch().await?.published, 3);
    let in_stream: Vec<String> = kit
        .stream_event_ids()
        .await?
        .into_iter()
        .map(|(_, id)| id)
        .collect();
    assert_eq!(in_stream, staged);
    assert_eq!(
        kit.outbox_stream_seqs().await?,
        vec![Some(1), Some(2), Some(3)]
    );
    assert_eq!(
        relay.reconcile_with_stream().await?,
        0,
        "nothing left to reconcile"
    );
    Ok(())
}

on_both_backends!(relay_recovers_lost_events_while_idle =>
    the_running_relay_republishes_what_nats_lost_across_a_restart_while_idle_on_postgres,
    the_running_relay_republishes_what_nats_lost_across_a_restart_while_idle_on_sqlite);

async fn relay_recovers_lost_events_while_idle(backend: Backend) -> anyhow::Result<()> {
    running_relay_republishes_after_nats_data_loss(backend, NextEvent::AfterRestart).await
}

on_both_backends!(relay_recovers_lost_events_with_an_event_waiting =>
    the_running_relay_republishes_what_nats_lost_across_a_restart_with_an_event_waiting_on_postgres,
    the_running_relay_republishes_what_nats_lost_across_a_restart_with_an_event_waiting_on_sqlite);

async fn relay_recovers_lost_events_with_an_event_waiting(backend: Backend) -> anyhow::Result<()> {
    running_relay_republishes_after_nats_data_loss(backend, NextEvent::DuringOutage).await
}

/// When the event after the crash is committed.
#[derive(Clone, Copy, PartialEq, Eq)]
enum NextEvent {
    /// After NATS is back: the relay never saw a failed publish.
    AfterRestart,
    /// While NATS is down: the relay's publishes fail until NATS (and the stream) are back.
    DuringOutage,
}

/// The module docs promise: "Whenever the relay (re)connects it compares the stream's last
/// sequence with the highest sequence it recorded and re-publishes the gap."
async fn running_relay_republishes_after_nats_data_loss(
    backend: Backend,
    next_event: NextEvent,
) -> anyhow::Result<()> {
    // Given a running relay that published three events,
    let mut kit = Kit::start(backend).await?;
    let handle = RelayHandle::default();
    let shutdown = CancellationToken::new();
    // (The production default poll, so nothing here waits on a minute-long fallback.)
    let relay = OutboxRelay::new(
        kit.db.clone(),
        kit.jetstream.clone(),
        kit.source.clone(),
        OutboxSettings {
            poll_interval_ms: 1000,
            ..outbox_settings()
        },
        handle.clone(),
    );
    let running = tokio::spawn(relay.run(shutdown.clone()));
    let mut staged = Vec::new();
    for n in 0..3 {
        staged.push(
            kit.stage_committed(&format!("w-{n}"), b"before the crash")
                .await?
                .to_string(),
        );
        handle.wake();
    }
    eventually(Duration::from_secs(10), "3 events published", || async {
        Ok((kit.stream_event_ids().await?.len() == 3).then_some(()))
    })
    .await?;
    eventually(Duration::from_secs(5), "3 rows marked", || async {
        Ok((kit.pending().await? == 0).then_some(()))
    })
    .await?;

    // when the NATS host crashes and comes back without its store (the stream re-created empty,
    // as a service start-up would), and one more event is committed (during or after the outage),
    kit.nats.stop().await;
    if next_event == NextEvent::DuringOutage {
        staged.push(
            kit.stage_committed("w-3", b"during the outage")
                .await?
                .to_string(),
        );
        handle.wake();
        // Not an assertion: gives the relay time to attempt (and fail) a publish while NATS is down.
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    std::fs::remove_dir_all(kit.nats.store_dir())?;
    std::fs::create_dir_all(kit.nats.store_dir())?;
    kit.nats.restart().await?;
    eventually(
        Duration::from_secs(15),
        "the stream re-created after the restart",
        || async {
            ensure_stream(&kit.jetstream, &kit.source, &kit.nats_settings).await?;
            Ok(Some(()))
        },
    )
    .await?;
    if next_event == NextEvent::AfterRestart {
        staged.push(
            kit.stage_committed("w-3", b"after the restart")
                .await?
                .to_string(),
        );
        handle.wake();
    }

    // then the relay re-publishes the three lost events as well: the stream holds all four.
    let result = eventually(
        Duration::from_secs(8),
        "all four events in the re-created stream",
        || async {
            let mut in_stream: Vec<String> = kit
                .stream_event_ids()
                .await?
                .into_iter()
                .map(|(_, id)| id)
                .collect();
            in_stream.sort();
            let mut expected = staged.clone();
            expected.sort();
            Ok((in_stream == expected).then_some(()))
        },
    )
    .await;
    let in_stream = kit.stream_event_ids().await?;
    shutdown.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(5), running).await;
    result.with_context(|| format!("the stream holds {in_stream:?}; staged (in order) {staged:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ensure_stream_is_idempotent_and_brings_limits_up_to_date() -> anyhow::Result<()> {
    // (NATS only: no database is involved, so there is no backend variant.)
    tokio::time::timeout(SCENARIO_LIMIT, async {
        // Given a nats-server and the stream settings of a service,
        let nats = NatsServer::start().await?;
        let jetstream = jetstream::new(connect(&nats.url(), "kittest").await?);
        let source = EventSource::new(REGION, SERVICE);
        let mut settings = nats_settings(nats.url());

        // when the stream is ensured twice, then it exists once, as configured, and keeps its messages;
        ensure_stream(&jetstream, &source, &settings).await?;
        jetstream
            .publish(WIDGET_CREATED, "kept".into())
            .await?
            .await?;
        ensure_stream(&jetstream, &source, &settings).await?;
        let mut names = jetstream.stream_names();
        let mut streams = Vec::new();
        while let Some(name) = names.next().await {
            streams.push(name?);
        }
        assert_eq!(streams, vec!["DESK_KT_KITTEST".to_owned()]);
        let info = jetstream
            .get_stream("DESK_KT_KITTEST")
            .await?
            .get_info()
            .await?;
        assert_eq!(info.config.subjects, vec!["desk.kt.kittest.>".to_owned()]);
        assert_eq!(info.config.storage, jetstream::stream::StorageType::File);
        assert_eq!(info.config.max_age, Duration::from_secs(3600));
        assert_eq!(info.config.duplicate_window, Duration::from_secs(120));
        assert_eq!(
            info.state.messages, 1,
            "ensuring again keeps the stream's messages"
        );

        // and when the configured limits change, ensuring again updates the existing stream;
        settings.stream_max_age_hours = 2;
        settings.stream_max_bytes = 64 * 1024 * 1024;
        settings.duplicate_window_seconds = 300;
        ensure_stream(&jetstream, &source, &settings).await?;
        let info = jetstream
            .get_stream("DESK_KT_KITTEST")
            .await?
            .get_info()
            .await?;
        assert_eq!(info.config.max_age, Duration::from_secs(2 * 3600));
        assert_eq!(info.config.max_bytes, 64 * 1024 * 1024);
        assert_eq!(info.config.duplicate_window, Duration::from_secs(300));
        assert_eq!(
            info.state.messages, 1,
            "updating limits keeps the stream's messages"
        );

        // and a duplicate window below the contract's two minutes is raised to two minutes.
        settings.duplicate_window_seconds = 10;
        ensure_stream(&jetstream, &source, &settings).await?;
        let info = jetstream
            .get_stream("DESK_KT_KITTEST")
            .await?
            .get_info()
            .await?;
        assert_eq!(info.config.duplicate_window, Duration::from_secs(120));
        anyhow::Ok(())
    })
    .await
    .context("the scenario did not finish in time")?
}

// ---------------------------------------------------------------------------------------------
// Consumers (inbox, dispatch, batches, dead letters, supervision): in their own module
// ---------------------------------------------------------------------------------------------

#[path = "events/consumer.rs"]
mod consumer;
