//! The harness of the service tests: the tickets service exactly as production boots it — real
//! settings, `Platform::connect`, `desk_tickets::build`, `host::serve` on a port-0 listener — against
//! a real nats-server and a fresh PostgreSQL or SQLite database. No mocks (ARCHITECTURE §13).
//!
//! # Layout
//! - [`spawn_desk`] / [`TestDesk`]: one running service per test, stopped when dropped.
//! - tokens and requests: [`TestDesk::token`], [`with_token`], [`anonymous`].
//! - reading what the service published: [`TestDesk::settled_events`], [`TestDesk::wait_for_events`],
//!   [`Event`].
//! - request builders and status checks used by many tests.

#![allow(dead_code)] // Each helper is used by some tests, not necessarily by every test binary.

use std::{
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context as _, anyhow, bail, ensure};
use async_nats::jetstream::{self, consumer::DeliverPolicy, consumer::pull::OrderedConfig};
use desk_kit::{
    Platform,
    auth::{dev_claims, mint_dev_token},
    clock::SystemClock,
    db::Db,
    events::outbox::pending_count,
    host,
    settings::{Secret, Settings},
};
use desk_proto::tickets::v1::{self as pb, ticket_service_client::TicketServiceClient};
use desk_testkit::{Backend, NatsServer, TestDatabase};
use futures::StreamExt as _;
use sea_orm::ConnectionTrait as _;
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};
use tonic::{Code, Request, Status, transport::Channel};
use tonic_types::StatusExt as _;

/// The development HS256 secret the service trusts in these tests (at least 32 bytes).
pub const SECRET: &str = "desk-service-tests-hs256-secret-0123456789";
/// The region every test desk runs as: subjects are `desk.test.tickets.…`.
pub const REGION: &str = "test";
/// The stream the tickets service publishes to in region `test`.
pub const STREAM: &str = "DESK_TEST_TICKETS";
/// The tenant most tests act in.
pub const TENANT: &str = "acme";
/// Generous bound for anything asynchronous (relay, reconnects) on a loaded 2-core machine.
pub const EVENTUALLY: Duration = Duration::from_secs(30);

/// One running tickets service with its own NATS server and database.
pub struct TestDesk {
    pub backend: Backend,
    pub settings: Settings,
    /// Owned so a test can kill and restart it (`stop` / `restart`).
    pub nats: NatsServer,
    pub addr: SocketAddr,
    /// A connected client with no token; add one per call with [`with_token`].
    pub client: TicketServiceClient<Channel>,
    /// The test's own JetStream view (a separate NATS connection from the service's).
    pub jetstream: jetstream::Context,
    /// A separate pool on the service's database, for the outbox lag and row counts.
    pub db: Db,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<anyhow::Result<()>>>,
    /// Keeps the SQLite file alive for as long as the desk runs.
    _database: TestDatabase,
}

/// Starts nats-server, connects the platform, builds the tickets service and serves it on
/// 127.0.0.1:0 — the production path, with test settings.
pub async fn spawn_desk(database: TestDatabase) -> anyhow::Result<TestDesk> {
    init_logs_when_asked();
    let nats = NatsServer::start().await.context("starting nats-server")?;

    let mut settings = Settings::defaults();
    settings.region = REGION.into();
    settings.database.url = Secret::new(database.url.clone());
    // Two cores run many tests at once: a few connections per test are plenty.
    settings.database.max_connections = 8;
    settings.nats.url = nats.url();
    settings.auth.dev_hs256_secret = Some(Secret::new(SECRET.into()));
    // The relay is woken on commit; the poll is only its fallback, kept short so tests are quick.
    settings.outbox.poll_interval_ms = 50;

    let platform = Platform::connect(settings.clone(), Arc::new(SystemClock))
        .await
        .context("connecting the platform")?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let mut routes = tonic::service::RoutesBuilder::default();
    let parts = desk_tickets::build(&platform, &mut routes)
        .await
        .context("building the tickets service")?;

    let (shutdown, stop) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        host::serve(listener, &platform, routes, vec![parts], async move {
            let _ = stop.await;
        })
        .await
    });

    let client = TicketServiceClient::connect(format!("http://{addr}"))
        .await
        .context("connecting a client")?;
    let test_nats = async_nats::ConnectOptions::new()
        .name("desk-service-tests")
        .retry_on_initial_connect()
        .connect(nats.url())
        .await
        .context("connecting the test's NATS client")?;
    let db = Db::connect(&database.url, 2)
        .await
        .context("opening the test's own database pool")?;

    Ok(TestDesk {
        backend: database.backend,
        settings,
        nats,
        addr,
        client,
        jetstream: jetstream::new(test_nats),
        db,
        shutdown: Some(shutdown),
        server: Some(server),
        _database: database,
    })
}

/// `DESK_TEST_LOGS=1` shows the service's own logs (the production subscriber; `RUST_LOG` filters,
/// `DESK_LOG_FORMAT=text` for a terminal), which is how a failing test is diagnosed.
fn init_logs_when_asked() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    if std::env::var_os("DESK_TEST_LOGS").is_some() {
        ONCE.call_once(|| {
            if let Ok(guard) = desk_kit::telemetry::init("desk-tickets-tests") {
                // Kept for the whole test process; exporters are off in tests anyway.
                std::mem::forget(guard);
            }
        });
    }
}

impl Drop for TestDesk {
    fn drop(&mut self) {
        // Ordered shutdown of the service; the runtime ends with the test, so nobody waits for it.
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        self.server.take();
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
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).map(|v| v.as_str().to_owned())
    }

    pub fn decode<M: prost::Message + Default>(&self) -> anyhow::Result<M> {
        M::decode(self.payload.as_slice())
            .with_context(|| format!("decoding the body of an event on {}", self.subject))
    }
}

impl TestDesk {
    /// A development token for `subject` in `tenant`, valid for an hour.
    pub fn token(&self, subject: &str, tenant: &str, roles: &[&str]) -> String {
        mint_dev_token(
            SECRET,
            &dev_claims(&self.settings.auth, subject, tenant, roles, 3600),
        )
        .expect("minting a development token")
    }

    pub fn agent(&self) -> String {
        self.token("agent-7", TENANT, &["agent"])
    }

    pub fn admin(&self) -> String {
        self.token("ada", TENANT, &["admin"])
    }

    pub fn requester(&self, subject: &str) -> String {
        self.token(subject, TENANT, &["requester"])
    }

    /// A clone of the connected client (cheap: channels multiplex).
    pub fn api(&self) -> TicketServiceClient<Channel> {
        self.client.clone()
    }

    /// `desk.test.tickets.acme.<aggregate>.<event>`: an event of the test tenant.
    pub fn subject(&self, aggregate: &str, event: &str) -> String {
        format!("desk.{REGION}.tickets.{TENANT}.{aggregate}.{event}")
    }

    // ---- common calls ----

    pub async fn create(
        &self,
        token: &str,
        request: pb::CreateTicketRequest,
    ) -> Result<pb::Ticket, Status> {
        let response = self.api().create_ticket(with_token(request, token)).await?;
        response
            .into_inner()
            .ticket
            .ok_or_else(|| Status::internal("the response carries no ticket"))
    }

    pub async fn get(&self, token: &str, id: &str) -> Result<pb::Ticket, Status> {
        let response = self
            .api()
            .get_ticket(with_token(pb::GetTicketRequest { id: id.into() }, token))
            .await?;
        response
            .into_inner()
            .ticket
            .ok_or_else(|| Status::internal("the response carries no ticket"))
    }

    pub async fn list(
        &self,
        token: &str,
        request: pb::ListTicketsRequest,
    ) -> Result<pb::ListTicketsResponse, Status> {
        Ok(self
            .api()
            .list_tickets(with_token(request, token))
            .await?
            .into_inner())
    }

    pub async fn total(&self, token: &str) -> anyhow::Result<i64> {
        Ok(self
            .list(token, pb::ListTicketsRequest::default())
            .await?
            .total_size)
    }

    // ---- what the service wrote and published ----

    /// Outbox rows not yet published (the relay's lag).
    pub async fn outbox_pending(&self) -> anyhow::Result<i64> {
        Ok(pending_count(&self.db, desk_tickets::SERVICE).await?)
    }

    /// Every row in a table, published or not: "nothing was written" checks.
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

    /// Messages in the service's stream.
    pub async fn stream_messages(&self) -> anyhow::Result<u64> {
        let stream = self.jetstream.get_stream(STREAM).await?;
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
        let stream = self.jetstream.get_stream(STREAM).await?;
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
            .map_err(|e| anyhow!("creating an ordered consumer on {STREAM}: {e}"))?;
        let mut messages = consumer
            .messages()
            .await
            .map_err(|e| anyhow!("reading {STREAM}: {e}"))?;
        let mut events = Vec::with_capacity(expected as usize);
        while (events.len() as u64) < expected {
            let next = tokio::time::timeout(Duration::from_secs(10), messages.next())
                .await
                .with_context(|| {
                    format!(
                        "read {} of {expected} messages of {STREAM}, then nothing for 10 s",
                        events.len()
                    )
                })?;
            let message = next
                .context("the consumer's stream ended")?
                .map_err(|e| anyhow!("reading {STREAM}: {e}"))?;
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

/// `request` with `authorization: Bearer <token>`.
pub fn with_token<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}")
            .parse()
            .expect("a token is valid metadata"),
    );
    request
}

/// `request` without any token.
pub fn anonymous<T>(message: T) -> Request<T> {
    Request::new(message)
}

// ---- request builders ----

pub fn incident(title: &str) -> pb::CreateTicketRequest {
    pb::CreateTicketRequest {
        r#type: pb::TicketType::Incident as i32,
        title: title.into(),
        ..Default::default()
    }
}

pub fn service_request(title: &str) -> pb::CreateTicketRequest {
    pb::CreateTicketRequest {
        r#type: pb::TicketType::ServiceRequest as i32,
        title: title.into(),
        ..Default::default()
    }
}

pub fn problem(title: &str) -> pb::CreateTicketRequest {
    pb::CreateTicketRequest {
        r#type: pb::TicketType::Problem as i32,
        title: title.into(),
        ..Default::default()
    }
}

// ---- status checks ----

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
