//! The harness of the CMDB's service tests: the CMDB exactly as production boots it — real
//! settings, `Platform::connect`, `desk_cmdb::build`, `host::serve` on a port-0 listener — against
//! a real nats-server and a fresh PostgreSQL or SQLite database. No mocks (ARCHITECTURE §13).
//!
//! # Layout
//! - [`spawn_desk`] / [`TestDesk`]: one running service per test, stopped when dropped;
//!   [`TestDesk::restart_service`] stops it and boots a new one on the same database and NATS.
//! - tokens and requests: [`TestDesk::token`], [`with_token`], [`anonymous`].
//! - reading what the service published: [`TestDesk::settled_events`],
//!   [`TestDesk::wait_for_events`], [`Event`].
//! - calls, request builders (attribute values, CIs, import items) and status checks.
//!
//! The crate has no `async-nats` dependency of its own (and these tests may not add one), so the
//! stream is read through the test's own [`Platform`] connection with direct reads by sequence
//! (`STREAM.MSG.GET`) from the first to the last sequence — every message from the start, in
//! stream order, like an ordered consumer would deliver them.

#![allow(dead_code)] // Each helper is used by some tests, not necessarily by every test binary.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context as _, anyhow, bail, ensure};
use desk_kit::{
    Platform,
    auth::{dev_claims, mint_dev_token},
    clock::SystemClock,
    db::Db,
    events::outbox::pending_count,
    host,
    settings::{Secret, Settings},
};
use desk_proto::cmdb::v1::{
    self as pb, attribute_value::Kind, cmdb_service_client::CmdbServiceClient,
};
use desk_testkit::{Backend, NatsServer, TestDatabase};
use sea_orm::ConnectionTrait as _;
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};
use tonic::{Code, Request, Status, transport::Channel};
use tonic_types::StatusExt as _;

/// The development HS256 secret the service trusts in these tests (at least 32 bytes).
pub const SECRET: &str = "desk-cmdb-service-tests-hs256-secret-0123456789";
/// The region every test desk runs as: subjects are `desk.test.cmdb.…`, ids `test-…`.
pub const REGION: &str = "test";
/// The stream the CMDB publishes to in region `test`.
pub const STREAM: &str = "DESK_TEST_CMDB";
/// The tenant most tests act in.
pub const TENANT: &str = "acme";
/// Another tenant, for isolation.
pub const OTHER_TENANT: &str = "globex";
/// Generous bound for anything asynchronous (relay, restarts) on a loaded 2-core machine.
pub const EVENTUALLY: Duration = Duration::from_secs(30);

/// One running CMDB with its own NATS server and database.
pub struct TestDesk {
    pub backend: Backend,
    pub settings: Settings,
    pub nats: NatsServer,
    pub addr: SocketAddr,
    /// A connected client with no token; add one per call with [`with_token`].
    pub client: CmdbServiceClient<Channel>,
    /// The test's own platform (a NATS connection separate from the service's), for the stream.
    pub observer: Platform,
    /// A separate pool on the service's database, for row counts and the outbox lag.
    pub db: Db,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<anyhow::Result<()>>>,
    /// Keeps the SQLite file alive for as long as the desk runs.
    _database: TestDatabase,
}

/// A running service: where it listens and how to stop it.
struct Running {
    addr: SocketAddr,
    client: CmdbServiceClient<Channel>,
    shutdown: oneshot::Sender<()>,
    server: JoinHandle<anyhow::Result<()>>,
}

/// Connects the platform, builds the CMDB and serves it on 127.0.0.1:0 — the production path.
async fn start_service(settings: &Settings) -> anyhow::Result<Running> {
    let platform = Platform::connect(settings.clone(), Arc::new(SystemClock))
        .await
        .context("connecting the platform")?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let mut routes = tonic::service::RoutesBuilder::default();
    let parts = desk_cmdb::build(&platform, &mut routes)
        .await
        .context("building the CMDB service")?;
    let (shutdown, stop) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        host::serve(listener, &platform, routes, vec![parts], async move {
            let _ = stop.await;
        })
        .await
    });
    let client = CmdbServiceClient::connect(format!("http://{addr}"))
        .await
        .context("connecting a client")?;
    Ok(Running {
        addr,
        client,
        shutdown,
        server,
    })
}

/// Starts nats-server and the CMDB on `database`, with test settings.
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

    let running = start_service(&settings).await?;
    let observer = Platform::connect(settings.clone(), Arc::new(SystemClock))
        .await
        .context("connecting the test's own NATS client")?;
    let db = Db::connect(&database.url, 2)
        .await
        .context("opening the test's own database pool")?;

    Ok(TestDesk {
        backend: database.backend,
        settings,
        nats,
        addr: running.addr,
        client: running.client,
        observer,
        db,
        shutdown: Some(running.shutdown),
        server: Some(running.server),
        _database: database,
    })
}

/// `DESK_TEST_LOGS=1` shows the service's own logs (`RUST_LOG` filters).
fn init_logs_when_asked() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    if std::env::var_os("DESK_TEST_LOGS").is_some() {
        ONCE.call_once(|| {
            if let Ok(guard) = desk_kit::telemetry::init("desk-cmdb-tests") {
                std::mem::forget(guard);
            }
        });
    }
}

impl Drop for TestDesk {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        self.server.take();
    }
}

/// A second CMDB process on the same database and NATS ([`TestDesk::start_replica`]).
pub struct Replica {
    /// A connected client with no token.
    pub client: CmdbServiceClient<Channel>,
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

/// One event as read back from the stream.
#[derive(Debug, Clone)]
pub struct Event {
    pub subject: String,
    /// Header name → first value, names as sent.
    pub headers: Vec<(String, String)>,
    pub payload: Vec<u8>,
    pub sequence: u64,
}

impl Event {
    /// The first value of header `name` (names compared without regard to case).
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
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

    pub fn admin(&self) -> String {
        self.token("ada", TENANT, &["admin"])
    }

    /// The discovery robot: an integrator.
    pub fn integrator(&self) -> String {
        self.token("sccm-robot", TENANT, &["integrator"])
    }

    pub fn agent(&self) -> String {
        self.token("agent-7", TENANT, &["agent"])
    }

    pub fn requester(&self) -> String {
        self.token("rita", TENANT, &["requester"])
    }

    pub fn api(&self) -> CmdbServiceClient<Channel> {
        self.client.clone()
    }

    /// `desk.test.cmdb.acme.<aggregate>.<event>`: an event of the test tenant.
    pub fn subject(&self, aggregate: &str, event: &str) -> String {
        format!("desk.{REGION}.cmdb.{TENANT}.{aggregate}.{event}")
    }

    /// Starts another replica of the CMDB on the same database and nats-server, as a Helm HPA
    /// would; it stops when dropped.
    pub async fn start_replica(&self) -> anyhow::Result<Replica> {
        let running = start_service(&self.settings).await?;
        Ok(Replica {
            client: running.client,
            shutdown: Some(running.shutdown),
            _server: running.server,
        })
    }

    /// Stops the service (the shutdown signal, then waits for it to drain) and boots a new one on
    /// the same database and the same nats-server; the client is replaced.
    pub async fn restart_service(&mut self) -> anyhow::Result<()> {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(server) = self.server.take() {
            tokio::time::timeout(EVENTUALLY, server)
                .await
                .context("the service did not stop within the bound")?
                .context("the server task panicked")?
                .context("the server ended with an error")?;
        }
        let running = start_service(&self.settings).await?;
        self.addr = running.addr;
        self.client = running.client;
        self.shutdown = Some(running.shutdown);
        self.server = Some(running.server);
        Ok(())
    }

    // ---- calls ----

    pub async fn create_ci(
        &self,
        token: &str,
        request: pb::CreateCiRequest,
    ) -> Result<pb::ConfigurationItem, Status> {
        let response = self
            .api()
            .create_ci(with_token(request, token))
            .await?
            .into_inner();
        response
            .ci
            .ok_or_else(|| Status::internal("the response carries no CI"))
    }

    pub async fn get_ci(&self, token: &str, id: &str) -> Result<pb::ConfigurationItem, Status> {
        let response = self
            .api()
            .get_ci(with_token(pb::GetCiRequest { id: id.into() }, token))
            .await?
            .into_inner();
        response
            .ci
            .ok_or_else(|| Status::internal("the response carries no CI"))
    }

    pub async fn update_ci(
        &self,
        token: &str,
        request: pb::UpdateCiRequest,
    ) -> Result<pb::ConfigurationItem, Status> {
        let response = self
            .api()
            .update_ci(with_token(request, token))
            .await?
            .into_inner();
        response
            .ci
            .ok_or_else(|| Status::internal("the response carries no CI"))
    }

    pub async fn retire_ci(
        &self,
        token: &str,
        ci: &pb::ConfigurationItem,
        reason: &str,
    ) -> Result<pb::ConfigurationItem, Status> {
        let request = pb::RetireCiRequest {
            id: ci.id.clone(),
            expected_version: ci.version,
            reason: reason.into(),
        };
        let response = self
            .api()
            .retire_ci(with_token(request, token))
            .await?
            .into_inner();
        response
            .ci
            .ok_or_else(|| Status::internal("the response carries no CI"))
    }

    pub async fn list_cis(
        &self,
        token: &str,
        request: pb::ListCisRequest,
    ) -> Result<pb::ListCisResponse, Status> {
        Ok(self
            .api()
            .list_cis(with_token(request, token))
            .await?
            .into_inner())
    }

    /// How many CIs the tenant of `token` has.
    pub async fn total(&self, token: &str) -> anyhow::Result<i64> {
        Ok(self
            .list_cis(token, pb::ListCisRequest::default())
            .await?
            .total_size)
    }

    pub async fn history(
        &self,
        token: &str,
        id: &str,
    ) -> Result<Vec<desk_proto::common::v1::AuditEntry>, Status> {
        let request = pb::GetCiHistoryRequest { id: id.into() };
        Ok(self
            .api()
            .get_ci_history(with_token(request, token))
            .await?
            .into_inner()
            .entries)
    }

    pub async fn relate(
        &self,
        token: &str,
        source: &str,
        kind: pb::RelationshipType,
        target: &str,
    ) -> Result<pb::Relationship, Status> {
        let request = pb::AddRelationshipRequest {
            source_id: source.into(),
            r#type: kind as i32,
            target_id: target.into(),
        };
        let response = self
            .api()
            .add_relationship(with_token(request, token))
            .await?
            .into_inner();
        response
            .relationship
            .ok_or_else(|| Status::internal("the response carries no relationship"))
    }

    pub async fn unrelate(&self, token: &str, id: &str) -> Result<(), Status> {
        let request = pb::RemoveRelationshipRequest { id: id.into() };
        self.api()
            .remove_relationship(with_token(request, token))
            .await?;
        Ok(())
    }

    pub async fn relationships_of(
        &self,
        token: &str,
        ci_id: &str,
    ) -> Result<Vec<pb::Relationship>, Status> {
        let request = pb::ListRelationshipsRequest {
            ci_id: ci_id.into(),
        };
        Ok(self
            .api()
            .list_relationships(with_token(request, token))
            .await?
            .into_inner()
            .relationships)
    }

    pub async fn impact(
        &self,
        token: &str,
        request: pb::AnalyzeImpactRequest,
    ) -> Result<pb::AnalyzeImpactResponse, Status> {
        Ok(self
            .api()
            .analyze_impact(with_token(request, token))
            .await?
            .into_inner())
    }

    pub async fn stage(
        &self,
        token: &str,
        request: pb::StageImportRequest,
    ) -> Result<pb::ImportBatch, Status> {
        let response = self
            .api()
            .stage_import(with_token(request, token))
            .await?
            .into_inner();
        response
            .batch
            .ok_or_else(|| Status::internal("the response carries no batch"))
    }

    pub async fn get_import(&self, token: &str, id: &str) -> Result<pb::ImportBatch, Status> {
        let response = self
            .api()
            .get_import(with_token(pb::GetImportRequest { id: id.into() }, token))
            .await?
            .into_inner();
        response
            .batch
            .ok_or_else(|| Status::internal("the response carries no batch"))
    }

    pub async fn commit(&self, token: &str, id: &str) -> Result<pb::ImportBatch, Status> {
        let response = self
            .api()
            .commit_import(with_token(pb::CommitImportRequest { id: id.into() }, token))
            .await?
            .into_inner();
        response
            .batch
            .ok_or_else(|| Status::internal("the response carries no batch"))
    }

    pub async fn discard(&self, token: &str, id: &str) -> Result<pb::ImportBatch, Status> {
        let response = self
            .api()
            .discard_import(with_token(
                pb::DiscardImportRequest { id: id.into() },
                token,
            ))
            .await?
            .into_inner();
        response
            .batch
            .ok_or_else(|| Status::internal("the response carries no batch"))
    }

    pub async fn list_imports(
        &self,
        token: &str,
        state: pb::ImportState,
    ) -> Result<Vec<pb::ImportBatch>, Status> {
        let request = pb::ListImportsRequest {
            state: state as i32,
            ..Default::default()
        };
        Ok(self
            .api()
            .list_imports(with_token(request, token))
            .await?
            .into_inner()
            .batches)
    }

    // ---- what the service wrote and published ----

    /// Outbox rows not yet published (the relay's lag).
    pub async fn outbox_pending(&self) -> anyhow::Result<i64> {
        Ok(pending_count(&self.db, desk_cmdb::SERVICE).await?)
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

    /// Every message in the stream from its first sequence to its last, in stream order.
    pub async fn all_events(&self) -> anyhow::Result<Vec<Event>> {
        let stream = self
            .observer
            .jetstream
            .get_stream(STREAM)
            .await
            .map_err(|e| anyhow!("looking up stream {STREAM}: {e}"))?;
        let info = stream
            .get_info()
            .await
            .map_err(|e| anyhow!("reading the info of {STREAM}: {e}"))?;
        if info.state.messages == 0 {
            return Ok(Vec::new());
        }
        let mut events = Vec::with_capacity(info.state.messages as usize);
        for sequence in info.state.first_sequence..=info.state.last_sequence {
            let message =
                tokio::time::timeout(Duration::from_secs(10), stream.get_raw_message(sequence))
                    .await
                    .with_context(|| {
                        format!("reading message {sequence} of {STREAM} took over 10 s")
                    })?
                    .map_err(|e| anyhow!("reading message {sequence} of {STREAM}: {e}"))?;
            let headers = message
                .headers
                .iter()
                .filter_map(|(name, values)| {
                    values
                        .first()
                        .map(|value| (name.to_string(), value.as_str().to_owned()))
                })
                .collect();
            events.push(Event {
                subject: message.subject.to_string(),
                headers,
                payload: message.payload.to_vec(),
                sequence: message.sequence,
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

// ---- values and builders ----

pub fn text(value: &str) -> pb::AttributeValue {
    pb::AttributeValue {
        kind: Some(Kind::StringValue(value.into())),
    }
}

pub fn int(value: i64) -> pb::AttributeValue {
    pb::AttributeValue {
        kind: Some(Kind::IntValue(value)),
    }
}

pub fn clear() -> pb::AttributeValue {
    pb::AttributeValue {
        kind: Some(Kind::Clear(true)),
    }
}

/// An attribute map from pairs.
pub fn attrs<const N: usize>(
    pairs: [(&str, pb::AttributeValue); N],
) -> HashMap<String, pb::AttributeValue> {
    pairs
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value))
        .collect()
}

/// A CreateCi request for a CI of `class` named `name`.
pub fn new_ci<const N: usize>(
    class: &str,
    name: &str,
    attributes: [(&str, pb::AttributeValue); N],
) -> pb::CreateCiRequest {
    pb::CreateCiRequest {
        name: name.into(),
        class: class.into(),
        attributes: attrs(attributes),
        ..Default::default()
    }
}

/// An import item (production, no status).
pub fn item<const N: usize>(
    local_id: &str,
    class: &str,
    name: &str,
    attributes: [(&str, pb::AttributeValue); N],
) -> pb::ImportItem {
    pb::ImportItem {
        local_id: local_id.into(),
        class: class.into(),
        name: name.into(),
        attributes: attrs(attributes),
        ..Default::default()
    }
}

pub fn import_rel(
    source: &str,
    kind: pb::RelationshipType,
    target: &str,
) -> pb::ImportRelationship {
    pb::ImportRelationship {
        source: source.into(),
        r#type: kind as i32,
        target: target.into(),
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
