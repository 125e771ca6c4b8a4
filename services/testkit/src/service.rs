//! The service tests' harness: a service exactly as production boots it — real settings, the
//! binary's own start-up ([`desk_kit::host::run`] with the crate's [`ServiceEntry`]) on a port-0
//! listener — against a real nats-server and a fresh PostgreSQL or SQLite database, with a clock
//! the test chooses. No mocks (ARCHITECTURE §13).
//!
//! Each service's `tests/support` wraps a [`ServiceUnderTest`] with its typed client and its own
//! request builders; everything that is the same for every service lives here:
//! - starting: [`ServiceUnderTest::start`], or [`Harness`] for a manual clock or other settings;
//!   [`ServiceUnderTest::restart`] (same database, same nats-server) and
//!   [`ServiceUnderTest::start_replica`] (a second process on both, as an HPA would run);
//! - tokens and requests: [`ServiceUnderTest::token`], [`with_token`], [`anonymous`];
//! - what the service wrote and published: [`ServiceUnderTest::rows_in`],
//!   [`ServiceUnderTest::settled_events`], [`ServiceUnderTest::wait_for_events`], [`Event`];
//! - status checks: [`expect_code`], [`violated_fields`], [`expect_violations`].

use std::{
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context as _, anyhow, bail, ensure};
use async_nats::jetstream::{self, consumer::DeliverPolicy, consumer::pull::OrderedConfig};
use chrono::{DateTime, Utc};
use desk_kit::{
    ServiceEntry,
    auth::{dev_claims, mint_dev_token},
    clock::{ManualClock, SharedClock, SystemClock},
    db::Db,
    events::{EventSource, outbox::pending_count},
    settings::{Secret, Settings},
};
use futures::StreamExt as _;
use sea_orm::ConnectionTrait as _;
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};
use tonic::{Code, Request, Status, transport::Channel};
use tonic_types::StatusExt as _;

use crate::{Backend, NatsServer, TestDatabase};

/// The development HS256 secret every service under test trusts (at least 32 bytes).
pub const SECRET: &str = "desk-service-tests-hs256-secret-0123456789";
/// The region every service under test runs as: subjects are `desk.test.<service>.…`.
pub const REGION: &str = "test";
/// The tenant most tests act in.
pub const TENANT: &str = "acme";
/// Another tenant, for isolation.
pub const OTHER_TENANT: &str = "globex";
/// Generous bound for anything asynchronous (relay, restarts) on a loaded 2-core machine.
pub const EVENTUALLY: Duration = Duration::from_secs(30);

/// A change to the test settings, applied before the service starts.
type ConfigureSettings = Box<dyn FnOnce(&mut Settings) + Send>;

/// How a service under test is started: its entry, then optionally a manual clock and settings.
pub struct Harness {
    entry: ServiceEntry,
    manual_clock: Option<ManualClock>,
    configure: Vec<ConfigureSettings>,
}

impl Harness {
    pub fn new(entry: ServiceEntry) -> Self {
        Self {
            entry,
            manual_clock: None,
            configure: Vec::new(),
        }
    }

    /// The service reads time from a [`ManualClock`] starting at `start`, which only moves when
    /// the test says so ([`ServiceUnderTest::clock`]). Timers, expiries and SLA clocks are then
    /// tested without sleeping.
    pub fn manual_clock(mut self, start: DateTime<Utc>) -> Self {
        self.manual_clock = Some(ManualClock::new(start));
        self
    }

    /// Changes the test settings before the service starts (the region, NATS and database are
    /// already set).
    pub fn settings(mut self, configure: impl FnOnce(&mut Settings) + Send + 'static) -> Self {
        self.configure.push(Box::new(configure));
        self
    }

    /// Starts nats-server and the service on `database`.
    pub async fn start(self, database: TestDatabase) -> anyhow::Result<ServiceUnderTest> {
        init_logs_when_asked();
        let nats = NatsServer::start().await.context("starting nats-server")?;

        let mut settings = Settings::defaults();
        settings.region = REGION.into();
        settings.database.url = Secret::new(database.url.clone());
        // Two cores run many tests at once: a few connections per test are plenty.
        settings.database.max_connections = 8;
        settings.nats.url = nats.url();
        settings.auth.dev_hs256_secret = Some(Secret::new(SECRET.into()));
        // The relay is woken on commit; the poll is only its fallback, kept short so tests are
        // quick.
        settings.outbox.poll_interval_ms = 50;
        for configure in self.configure {
            configure(&mut settings);
        }

        let clock: SharedClock = match &self.manual_clock {
            Some(manual) => Arc::new(manual.clone()),
            None => Arc::new(SystemClock),
        };
        let running = Running::start(self.entry, &settings, clock.clone()).await?;
        let test_nats = async_nats::ConnectOptions::new()
            .name("desk-service-tests")
            .retry_on_initial_connect()
            .connect(nats.url())
            .await
            .context("connecting the test's NATS client")?;
        let db = Db::connect(&database.url, 2)
            .await
            .context("opening the test's own database pool")?;
        let stream = EventSource::new(REGION, self.entry.name).stream_name();

        Ok(ServiceUnderTest {
            entry: self.entry,
            backend: database.backend,
            settings,
            nats,
            jetstream: jetstream::new(test_nats),
            db,
            stream,
            manual_clock: self.manual_clock,
            clock,
            running: Some(running),
            _database: database,
        })
    }
}

/// One service process: its address and how to stop it.
struct Running {
    addr: SocketAddr,
    channel: Channel,
    shutdown: oneshot::Sender<()>,
    server: JoinHandle<anyhow::Result<()>>,
}

impl Running {
    /// The binary's start-up on 127.0.0.1:0; returns once the service is built and a client has
    /// connected.
    async fn start(
        entry: ServiceEntry,
        settings: &Settings,
        clock: SharedClock,
    ) -> anyhow::Result<Running> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (ready_tx, ready_rx) = oneshot::channel::<()>();
        let (shutdown, stop) = oneshot::channel::<()>();
        let settings = settings.clone();
        let server = tokio::spawn(async move {
            desk_kit::host::run(
                listener,
                settings,
                clock,
                &[entry],
                move || {
                    let _ = ready_tx.send(());
                },
                async move {
                    let _ = stop.await;
                },
            )
            .await
        });
        if ready_rx.await.is_err() {
            // The process ended before it was ready: its error says why.
            let outcome = server.await.context("the service task panicked")?;
            outcome.with_context(|| format!("starting {}", entry.name))?;
            bail!("{} stopped before it was ready", entry.name);
        }
        let channel = Channel::from_shared(format!("http://{addr}"))?
            .connect()
            .await
            .context("connecting a client")?;
        Ok(Running {
            addr,
            channel,
            shutdown,
            server,
        })
    }

    /// The shutdown signal, then waits (bounded) for the drain.
    async fn stop(self) -> anyhow::Result<()> {
        let _ = self.shutdown.send(());
        tokio::time::timeout(EVENTUALLY, self.server)
            .await
            .context("the service did not stop within the bound")?
            .context("the server task panicked")?
            .context("the server ended with an error")
    }
}

/// One running service with its own nats-server and database, stopped when dropped.
pub struct ServiceUnderTest {
    entry: ServiceEntry,
    pub backend: Backend,
    pub settings: Settings,
    /// Owned so a test can kill and restart it (`nats.stop()` / `nats.restart()`).
    pub nats: NatsServer,
    /// The test's own JetStream view (a NATS connection separate from the service's).
    pub jetstream: jetstream::Context,
    /// A separate pool on the service's database, for the outbox lag and row counts.
    pub db: Db,
    /// The service's stream in region `test` (`DESK_TEST_TICKETS`).
    pub stream: String,
    manual_clock: Option<ManualClock>,
    clock: SharedClock,
    running: Option<Running>,
    /// Keeps the SQLite file alive for as long as the service runs.
    _database: TestDatabase,
}

impl Drop for ServiceUnderTest {
    fn drop(&mut self) {
        // Ordered shutdown of the service; the runtime ends with the test, so nobody waits.
        if let Some(running) = self.running.take() {
            let _ = running.shutdown.send(());
        }
    }
}

/// A second process of the same service on the same database and nats-server
/// ([`ServiceUnderTest::start_replica`]); it stops when dropped.
pub struct Replica {
    /// A connected channel; wrap it in the service's client.
    pub channel: Channel,
    shutdown: Option<oneshot::Sender<()>>,
    _server: JoinHandle<anyhow::Result<()>>,
}

impl Drop for Replica {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

impl ServiceUnderTest {
    /// The service on `database` with test settings and the wall clock.
    pub async fn start(entry: ServiceEntry, database: TestDatabase) -> anyhow::Result<Self> {
        Harness::new(entry).start(database).await
    }

    /// Where the service listens (it changes on [`ServiceUnderTest::restart`]).
    pub fn addr(&self) -> SocketAddr {
        self.running.as_ref().map_or_else(
            || SocketAddr::from(([127, 0, 0, 1], 0)),
            |running| running.addr,
        )
    }

    /// A connected channel to the service (cheap to clone: calls multiplex); a test wraps it in
    /// the service's generated client. After the service stopped for good it fails each call
    /// with `UNAVAILABLE`.
    pub fn channel(&self) -> Channel {
        match &self.running {
            Some(running) => running.channel.clone(),
            None => Channel::from_static("http://127.0.0.1:9").connect_lazy(),
        }
    }

    /// The manual clock the service reads, when the harness was given one.
    pub fn clock(&self) -> Option<&ManualClock> {
        self.manual_clock.as_ref()
    }

    /// The service's name (`tickets`).
    pub fn service(&self) -> &'static str {
        self.entry.name
    }

    /// Stops the service (the shutdown signal, then waits for it to drain) and boots a new
    /// process on the same database, nats-server and clock.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        if let Some(running) = self.running.take() {
            running.stop().await?;
        }
        self.running = Some(Running::start(self.entry, &self.settings, self.clock.clone()).await?);
        Ok(())
    }

    /// Starts another process of the service on the same database, nats-server and clock.
    pub async fn start_replica(&self) -> anyhow::Result<Replica> {
        let running = Running::start(self.entry, &self.settings, self.clock.clone()).await?;
        Ok(Replica {
            channel: running.channel,
            shutdown: Some(running.shutdown),
            _server: running.server,
        })
    }

    /// A development token for `subject` in `tenant`, valid for an hour (of wall-clock time:
    /// the verifier checks expiry against the real time).
    pub fn token(&self, subject: &str, tenant: &str, roles: &[&str]) -> String {
        mint_dev_token(
            SECRET,
            &dev_claims(&self.settings.auth, subject, tenant, roles, 3600),
        )
        .unwrap_or_else(|error| panic!("minting a development token: {error}"))
    }

    /// `desk.test.<service>.acme.<aggregate>.<event>`: an event of the test tenant.
    pub fn subject(&self, aggregate: &str, event: &str) -> String {
        format!(
            "desk.{REGION}.{}.{TENANT}.{aggregate}.{event}",
            self.entry.name
        )
    }

    // ---- what the service wrote ----

    /// Outbox rows not yet published (the relay's lag).
    pub async fn outbox_pending(&self) -> anyhow::Result<i64> {
        Ok(pending_count(&self.db, self.entry.name).await?)
    }

    /// Every row in a table: "nothing was written" checks.
    pub async fn rows_in(&self, table: &str) -> anyhow::Result<i64> {
        let statement = sea_orm::Statement::from_string(
            self.db.backend(),
            format!("SELECT COUNT(*) AS n FROM {table}"),
        );
        let row = self
            .db
            .connection()
            .query_one_raw(statement)
            .await?
            .context("COUNT(*) returned no row")?;
        Ok(row.try_get::<i64>("", "n")?)
    }

    // ---- what the service published ----

    /// Messages in the service's stream.
    pub async fn stream_messages(&self) -> anyhow::Result<u64> {
        let stream = self.jetstream.get_stream(&self.stream).await?;
        Ok(stream.get_info().await?.state.messages)
    }

    /// Waits (bounded) until the relay has published every committed event.
    pub async fn wait_until_outbox_drained(&self, within: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + within;
        loop {
            match self.outbox_pending().await {
                Ok(0) => return Ok(()),
                Ok(pending) if Instant::now() >= deadline => {
                    bail!("{pending} events still unpublished after {within:?}")
                }
                Err(error) if Instant::now() >= deadline => {
                    return Err(error.context("reading the outbox lag"));
                }
                _ => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    /// Every message in the stream, read from the start with a fresh ordered consumer.
    pub async fn all_events(&self) -> anyhow::Result<Vec<Event>> {
        let name = &self.stream;
        let stream = self.jetstream.get_stream(name).await?;
        let expected = stream.get_info().await?.state.messages;
        if expected == 0 {
            return Ok(Vec::new());
        }
        let consumer = stream
            .create_consumer(OrderedConfig {
                deliver_policy: DeliverPolicy::All,
                ..OrderedConfig::default()
            })
            .await
            .map_err(|e| anyhow!("creating an ordered consumer on {name}: {e}"))?;
        let mut messages = consumer
            .messages()
            .await
            .map_err(|e| anyhow!("reading {name}: {e}"))?;
        let mut events = Vec::with_capacity(usize::try_from(expected).unwrap_or_default());
        while (events.len() as u64) < expected {
            let next = tokio::time::timeout(Duration::from_secs(10), messages.next())
                .await
                .with_context(|| {
                    format!(
                        "read {} of {expected} messages of {name}, then nothing for 10 s",
                        events.len()
                    )
                })?;
            let message = next
                .context("the consumer's stream ended")?
                .map_err(|e| anyhow!("reading {name}: {e}"))?;
            let sequence = message
                .info()
                .map(|info| info.stream_sequence)
                .unwrap_or_default();
            events.push(Event {
                subject: message.subject.to_string(),
                headers: message.headers.clone().unwrap_or_default(),
                payload: message.payload.to_vec(),
                sequence,
            });
        }
        Ok(events)
    }

    /// The stream's events once the relay has published everything committed so far.
    pub async fn settled_events(&self) -> anyhow::Result<Vec<Event>> {
        self.wait_until_outbox_drained(EVENTUALLY).await?;
        self.all_events().await
    }

    /// The events on `subject` once there are at least `count` of them (bounded wait).
    pub async fn wait_for_events(
        &self,
        subject: &str,
        count: usize,
        within: Duration,
    ) -> anyhow::Result<Vec<Event>> {
        let deadline = Instant::now() + within;
        loop {
            let events: Vec<Event> = self
                .all_events()
                .await?
                .into_iter()
                .filter(|e| e.subject == subject)
                .collect();
            if events.len() >= count {
                return Ok(events);
            }
            if Instant::now() >= deadline {
                bail!(
                    "{} of {count} events on {subject} after {within:?}",
                    events.len()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// `DESK_TEST_LOGS=1` shows the services' own logs (the production subscriber; `RUST_LOG`
/// filters, `DESK_LOG_FORMAT=text` for a terminal), which is how a failing test is diagnosed.
fn init_logs_when_asked() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    if std::env::var_os("DESK_TEST_LOGS").is_some() {
        ONCE.call_once(|| {
            if let Ok(guard) = desk_kit::telemetry::init("desk-service-tests") {
                // Kept for the whole test process; exporters are off in tests anyway.
                std::mem::forget(guard);
            }
        });
    }
}

/// One event as read back from the stream.
#[derive(Debug, Clone)]
pub struct Event {
    pub subject: String,
    pub headers: async_nats::HeaderMap,
    pub payload: Vec<u8>,
    /// The stream sequence it got.
    pub sequence: u64,
}

impl Event {
    /// The value of header `name` (names compared without regard to case, as NATS does).
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).map(|v| v.as_str().to_owned())
    }

    pub fn decode<M: prost::Message + Default>(&self) -> anyhow::Result<M> {
        M::decode(self.payload.as_slice())
            .with_context(|| format!("decoding the body of an event on {}", self.subject))
    }
}

/// `request` with `authorization: Bearer <token>`.
pub fn with_token<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    match format!("Bearer {token}").parse() {
        Ok(value) => {
            request.metadata_mut().insert("authorization", value);
        }
        Err(error) => panic!("a token is not valid metadata: {error}"),
    }
    request
}

/// `request` without any token.
pub fn anonymous<T>(message: T) -> Request<T> {
    Request::new(message)
}

/// The error of `result`, which must have failed with `code`.
pub fn expect_code<T: std::fmt::Debug>(
    result: Result<T, Status>,
    code: Code,
) -> anyhow::Result<Status> {
    match result {
        Ok(value) => bail!("expected {code:?}, got a success: {value:?}"),
        Err(status) => {
            ensure!(
                status.code() == code,
                "expected {code:?}, got {:?}: {}",
                status.code(),
                status.message()
            );
            Ok(status)
        }
    }
}

/// The fields named by the `google.rpc.BadRequest` detail of an `INVALID_ARGUMENT` status.
pub fn violated_fields(status: &Status) -> anyhow::Result<Vec<String>> {
    ensure!(
        status.code() == Code::InvalidArgument,
        "expected INVALID_ARGUMENT, got {:?}: {}",
        status.code(),
        status.message()
    );
    let details = status.get_error_details();
    let bad_request = details
        .bad_request()
        .context("INVALID_ARGUMENT without a BadRequest detail")?;
    Ok(bad_request
        .field_violations
        .iter()
        .map(|v| v.field.clone())
        .collect())
}

/// Asserts an `INVALID_ARGUMENT` whose violations name (at least) every field in `fields`.
pub fn expect_violations<T: std::fmt::Debug>(
    result: Result<T, Status>,
    fields: &[&str],
) -> anyhow::Result<Vec<String>> {
    let status = expect_code(result, Code::InvalidArgument)?;
    let violated = violated_fields(&status)?;
    for field in fields {
        ensure!(
            violated.iter().any(|v| v == field),
            "no violation for {field:?}; got {violated:?} ({})",
            status.message()
        );
    }
    Ok(violated)
}
