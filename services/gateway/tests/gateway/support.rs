//! Real processes for the gateway's tests: the tickets and CMDB services booted through the
//! binary's own start-up (`desk_kit::host::run` with each crate's `ENTRY`) on SQLite files, one
//! nats-server per test, and gateways started by `desk_gateway::local::start`, all on loopback
//! ports of their own. A region is a tickets service, a CMDB and a gateway that forwards to both.

#![allow(dead_code)] // Each helper is used by some tests, not necessarily by every module.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use anyhow::{Context as _, bail};
use desk_gateway::local::LocalGateway;
use desk_kit::{
    ServiceEntry,
    auth::{dev_claims, mint_dev_token},
    clock::SystemClock,
    settings::{Secret, Settings},
};
use desk_proto::{
    cmdb::v1::cmdb_service_client::CmdbServiceClient,
    tickets::v1::{self as tickets_pb, ticket_service_client::TicketServiceClient},
};
use desk_testkit::{NatsServer, TestDatabase};
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};
use tonic::transport::Channel;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

pub use desk_testkit::service::{EVENTUALLY, SECRET, TENANT, expect_code, with_token};

/// `DESK_TEST_LOGS=1` shows the processes' logs (the production subscriber; `RUST_LOG`
/// filters), which is how a failing test is diagnosed.
fn init_logs_when_asked() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    if std::env::var_os("DESK_TEST_LOGS").is_some() {
        ONCE.call_once(|| {
            if let Ok(guard) = desk_kit::telemetry::init("desk-gateway-tests") {
                // Kept for the whole test process.
                std::mem::forget(guard);
            }
        });
    }
}

/// A process's settings in `region`: the test's nats-server, the development secret.
pub fn settings(region: &str, nats: &NatsServer) -> Settings {
    init_logs_when_asked();
    let mut settings = Settings::defaults();
    settings.region = region.to_owned();
    settings.nats.url = nats.url();
    settings.auth.dev_hs256_secret = Some(Secret::new(SECRET.to_owned()));
    settings.outbox.poll_interval_ms = 50;
    settings.database.max_connections = 4;
    settings
}

/// A development token of `subject` in `tenant`, valid for an hour.
pub fn token(subject: &str, tenant: &str, roles: &[&str]) -> String {
    let auth = Settings::defaults().auth;
    mint_dev_token(SECRET, &dev_claims(&auth, subject, tenant, roles, 3600))
        .unwrap_or_else(|error| panic!("minting a development token: {error}"))
}

pub fn agent() -> String {
    token("agent-7", TENANT, &["agent"])
}

/// A channel to `addr`, connected on first use.
pub fn channel(addr: SocketAddr) -> Channel {
    match Channel::from_shared(format!("http://{addr}")) {
        Ok(endpoint) => endpoint.connect_lazy(),
        Err(error) => panic!("a loopback address is a valid URI: {error}"),
    }
}

/// One service process on its own SQLite file.
pub struct Process {
    pub addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<anyhow::Result<()>>>,
    _database: TestDatabase,
}

impl Process {
    /// `entry` as `desk serve --target <entry>` runs it, with `settings` and a fresh database.
    pub async fn start(entry: ServiceEntry, settings: Settings) -> anyhow::Result<Process> {
        Process::start_all(vec![entry], settings).await
    }

    /// `entries` in one process, as `desk up` runs them, on one fresh database.
    pub async fn start_all(
        entries: Vec<ServiceEntry>,
        mut settings: Settings,
    ) -> anyhow::Result<Process> {
        let database = desk_testkit::sqlite_database()?;
        settings.database.url = Secret::new(database.url.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (ready, is_ready) = oneshot::channel::<()>();
        let (shutdown, stop) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            desk_kit::host::run(
                listener,
                settings,
                Arc::new(SystemClock),
                &entries,
                move || {
                    let _ = ready.send(());
                },
                async move {
                    let _ = stop.await;
                },
            )
            .await
        });
        if is_ready.await.is_err() {
            server
                .await
                .context("the service task panicked")?
                .context("starting the process")?;
            bail!("the process stopped before it was ready");
        }
        Ok(Process {
            addr,
            shutdown: Some(shutdown),
            server: Some(server),
            _database: database,
        })
    }

    /// Stops the process and waits until it no longer listens.
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(server) = self.server.take() {
            tokio::time::timeout(EVENTUALLY, server)
                .await
                .context("the service did not stop in time")?
                .context("the service task panicked")??;
        }
        Ok(())
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

/// A region: tickets, CMDB, and a gateway forwarding to both.
pub struct Region {
    pub name: String,
    pub tickets: Process,
    pub cmdb: Process,
    pub gateway: LocalGateway,
}

impl Region {
    /// Starts the region's services, then its gateway with `configure` applied to its settings.
    pub async fn start(
        name: &str,
        nats: &NatsServer,
        configure: impl FnOnce(&mut Settings),
    ) -> anyhow::Result<Region> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        Region::start_on(listener, name, nats, configure).await
    }

    /// [`Region::start`] with the gateway on `listener`, bound beforehand.
    pub async fn start_on(
        listener: TcpListener,
        name: &str,
        nats: &NatsServer,
        configure: impl FnOnce(&mut Settings),
    ) -> anyhow::Result<Region> {
        let tickets = Process::start(desk_tickets::ENTRY, settings(name, nats))
            .await
            .context("starting tickets")?;
        let cmdb = Process::start(desk_cmdb::ENTRY, settings(name, nats))
            .await
            .context("starting the CMDB")?;
        let mut gateway_settings = settings(name, nats);
        configure(&mut gateway_settings);
        let gateway = desk_gateway::local::start_on(
            listener,
            gateway_settings,
            &[("tickets", tickets.addr), ("cmdb", cmdb.addr)],
        )
        .await
        .context("starting the gateway")?;
        Ok(Region {
            name: name.to_owned(),
            tickets,
            cmdb,
            gateway,
        })
    }

    pub fn gateway_channel(&self) -> Channel {
        channel(self.gateway.addr())
    }

    /// The tickets API through the gateway.
    pub fn tickets(&self) -> TicketServiceClient<Channel> {
        TicketServiceClient::new(self.gateway_channel())
    }

    /// The CMDB API through the gateway.
    pub fn cmdb(&self) -> CmdbServiceClient<Channel> {
        CmdbServiceClient::new(self.gateway_channel())
    }
}

pub fn new_incident(title: &str) -> tickets_pb::CreateTicketRequest {
    tickets_pb::CreateTicketRequest {
        r#type: tickets_pb::TicketType::Incident as i32,
        title: title.to_owned(),
        description: "seen through the gateway".to_owned(),
        ..Default::default()
    }
}

/// What the gateway's health service says of `service` now (`None`: not known to it).
pub async fn health_of(channel: Channel, service: &str) -> anyhow::Result<Option<ServingStatus>> {
    let answer = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: service.to_owned(),
        })
        .await;
    match answer {
        Ok(response) => Ok(Some(response.into_inner().status())),
        Err(status) if status.code() == tonic::Code::NotFound => Ok(None),
        Err(status) => bail!("health check of {service:?} failed: {status}"),
    }
}

/// Waits (bounded) until the gateway's health says `wanted` of `service`.
pub async fn wait_for_health(
    channel: Channel,
    service: &str,
    wanted: ServingStatus,
) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + EVENTUALLY;
    loop {
        let status = health_of(channel.clone(), service).await?;
        if status == Some(wanted) {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("health of {service:?} is {status:?}, not {wanted:?}, after {EVENTUALLY:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
