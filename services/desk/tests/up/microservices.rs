//! Microservices mode as a Kubernetes deployment runs it: `desk serve --target tickets` and
//! `desk serve --target cmdb` as two processes of the real binary, on one throwaway PostgreSQL
//! database and one nats-server started on the shipped infra/nats/desk.conf, each service
//! connecting with its own NATS user. A client drives both through gRPC; a tenant's integrator,
//! with its own NATS credentials, sees their events with the tenant in the subject. Both
//! processes are stopped by PID.
//!
//! Waits are bounded polls with a deadline; nothing here is a timing assertion.

use std::{
    path::Path,
    process::Stdio,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail, ensure};
use desk_kit::{
    auth::{dev_claims, mint_dev_token},
    settings::Settings,
};
use desk_proto::{
    cmdb::v1::{self as cmdb_pb, cmdb_service_client::CmdbServiceClient},
    tickets::v1::{self as tickets_pb, ticket_service_client::TicketServiceClient},
};
use futures::StreamExt as _;
use prost::Message as _;
use tokio::{
    io::{AsyncBufReadExt as _, BufReader},
    process::{Child, Command},
    sync::mpsc,
};
use tonic::transport::Channel;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

/// A cold start migrates a fresh PostgreSQL database before the service serves.
const START_LIMIT: Duration = Duration::from_secs(120);
/// How long an event may take from commit to the integrator before the test fails.
const EVENT_LIMIT: Duration = Duration::from_secs(30);

/// The region infra/nats/desk.conf is generated for.
const REGION: &str = "emea";
const TENANT: &str = "acme";

const TICKETS_NATS_PASSWORD: &str = "tickets-e2e-password";
const CMDB_NATS_PASSWORD: &str = "cmdb-e2e-password";
const ACME_NATS_PASSWORD: &str = "acme-e2e-password";
/// Every `$VARIABLE` of infra/nats/desk.conf must be set, or nats-server does not start.
const NATS_SERVER_ENV: &[(&str, &str)] = &[
    ("DESK_NATS_TICKETS_PASSWORD", TICKETS_NATS_PASSWORD),
    ("DESK_NATS_CMDB_PASSWORD", CMDB_NATS_PASSWORD),
    ("DESK_NATS_OPERATOR_PASSWORD", "operator-e2e-password"),
    ("DESK_NATS_PROVISIONER_PASSWORD", "provisioner-e2e-password"),
    ("DESK_NATS_TENANT_ACME_PASSWORD", ACME_NATS_PASSWORD),
    ("DESK_NATS_TENANT_GLOBEX_PASSWORD", "globex-e2e-password"),
];

/// `desk serve --target <target>` as a child, with what it printed so far.
struct ServeProcess {
    target: &'static str,
    child: Child,
    lines: mpsc::UnboundedReceiver<String>,
    printed: Vec<String>,
}

impl ServeProcess {
    /// Starts the process with the settings a Deployment's environment would give it.
    fn start(
        target: &'static str,
        database_url: &str,
        nats_url: &str,
        nats_password: &str,
        dev_secret: &str,
    ) -> anyhow::Result<Self> {
        let mut child = Command::new(env!("CARGO_BIN_EXE_desk"))
            .args(["serve", "--target", target, "--listen", "127.0.0.1:0"])
            .env("DESK_REGION", REGION)
            .env("DESK_DATABASE__URL", database_url)
            .env("DESK_NATS__URL", nats_url)
            .env("DESK_NATS__USER", format!("desk.{target}"))
            .env("DESK_NATS__PASSWORD", nats_password)
            .env("DESK_AUTH__DEV_HS256_SECRET", dev_secret)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting desk serve --target {target}"))?;
        let (sender, lines) = mpsc::unbounded_channel();
        let stdout = child.stdout.take().context("desk's stdout")?;
        let stderr = child.stderr.take().context("desk's stderr")?;
        for stream in [
            Box::new(stdout) as Box<dyn tokio::io::AsyncRead + Send + Unpin>,
            Box::new(stderr),
        ] {
            let sender = sender.clone();
            tokio::spawn(async move {
                let mut reader = BufReader::new(stream).lines();
                while let Ok(Some(line)) = reader.next_line().await {
                    if sender.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        Ok(Self {
            target,
            child,
            lines,
            printed: Vec::new(),
        })
    }

    /// The address from `desk listening on <address> (targets: <target>)`.
    async fn address(&mut self) -> anyhow::Result<String> {
        let deadline = Instant::now() + START_LIMIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.lines.recv()).await {
                Ok(Some(line)) => {
                    self.printed.push(line.clone());
                    if let Some(rest) = line.strip_prefix("desk listening on ") {
                        ensure!(
                            rest.ends_with(&format!("(targets: {})", self.target)),
                            "{line}"
                        );
                        return rest
                            .split_whitespace()
                            .next()
                            .map(str::to_owned)
                            .context("no address");
                    }
                }
                Ok(None) => bail!(
                    "desk serve --target {} exited before listening; it printed:\n{}",
                    self.target,
                    self.printed.join("\n")
                ),
                Err(_) => bail!(
                    "desk serve --target {} did not listen within {START_LIMIT:?}; it printed:\n{}",
                    self.target,
                    self.printed.join("\n")
                ),
            }
        }
    }

    /// Waits until the process reports `service` SERVING over gRPC health; its channel.
    async fn serving(&mut self, address: &str, service: &str) -> anyhow::Result<Channel> {
        let channel = Channel::from_shared(format!("http://{address}"))?
            .connect()
            .await?;
        let deadline = Instant::now() + START_LIMIT;
        loop {
            let status = HealthClient::new(channel.clone())
                .check(HealthCheckRequest {
                    service: service.to_owned(),
                })
                .await
                .map(|answer| answer.into_inner().status());
            if matches!(status, Ok(ServingStatus::Serving)) {
                return Ok(channel);
            }
            if let Ok(Some(exit)) = self.child.try_wait() {
                let target = self.target;
                bail!(
                    "desk serve --target {target} exited with {exit}; it printed:\n{}",
                    self.drain_printed()
                );
            }
            ensure!(
                Instant::now() < deadline,
                "{service} was not SERVING within {START_LIMIT:?} (last {status:?}); it printed:\n{}",
                self.drain_printed()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn drain_printed(&mut self) -> String {
        while let Ok(line) = self.lines.try_recv() {
            self.printed.push(line);
        }
        self.printed.join("\n")
    }

    /// SIGTERM by PID; the process must stop by itself, successfully.
    async fn stop(mut self) -> anyhow::Result<()> {
        let pid = self.child.id().context("desk has no pid")?;
        ensure!(
            desk_testkit::send_signal(pid, "TERM"),
            "SIGTERM to desk serve --target {} ({pid}) was not delivered",
            self.target
        );
        let status = tokio::time::timeout(Duration::from_secs(60), self.child.wait())
            .await
            .with_context(|| {
                format!(
                    "desk serve --target {} did not stop within 60 s of SIGTERM",
                    self.target
                )
            })??;
        let target = self.target;
        ensure!(
            status.success(),
            "desk serve --target {target} exited with {status} after SIGTERM; it printed:\n{}",
            self.drain_printed()
        );
        Ok(())
    }
}

fn bearer<T>(message: T, token: &str) -> anyhow::Result<tonic::Request<T>> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse()?);
    Ok(request)
}

/// Which message is wanted, and a name for it in errors.
type Wanted<'a> = (&'a str, &'a dyn Fn(&async_nats::Message) -> bool);

/// Receives from the integrator's subscription until one message satisfies each of `wanted`
/// (in any order); returns them in the order of `wanted`.
async fn receive_each(
    subscriber: &mut async_nats::Subscriber,
    wanted: &[Wanted<'_>],
) -> anyhow::Result<Vec<async_nats::Message>> {
    let mut found: Vec<Option<async_nats::Message>> = vec![None; wanted.len()];
    let deadline = Instant::now() + EVENT_LIMIT;
    while found.iter().any(Option::is_none) {
        let left = deadline.saturating_duration_since(Instant::now());
        let missing: Vec<&str> = wanted
            .iter()
            .zip(&found)
            .filter(|(_, found)| found.is_none())
            .map(|((what, _), _)| *what)
            .collect();
        let message = tokio::time::timeout(left, subscriber.next())
            .await
            .with_context(|| format!("no {missing:?} within {EVENT_LIMIT:?}"))?
            .context("the integrator's subscription ended")?;
        for ((_, matches), slot) in wanted.iter().zip(found.iter_mut()) {
            if slot.is_none() && matches(&message) {
                *slot = Some(message.clone());
            }
        }
    }
    Ok(found.into_iter().flatten().collect())
}

fn header(message: &async_nats::Message, name: &str) -> Option<String> {
    message
        .headers
        .as_ref()
        .and_then(|headers| headers.get(name))
        .map(|value| value.as_str().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tickets_and_cmdb_serve_as_separate_processes_with_their_own_nats_users()
-> anyhow::Result<()> {
    // Given one PostgreSQL database, a nats-server on the shipped config and a signing secret,
    let database = desk_testkit::postgres_database().await?;
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../infra/nats/desk.conf");
    let nats = desk_testkit::NatsServer::start_with_config(&config, NATS_SERVER_ENV).await?;
    let dev_secret = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    // and acme's integrator watching its tenant's events with its own credentials,
    let integrator = async_nats::ConnectOptions::with_user_and_password(
        TENANT.to_string(),
        ACME_NATS_PASSWORD.to_string(),
    )
    .connect(nats.url())
    .await
    .context("connecting as acme's integrator")?;
    let mut acme_events = integrator.subscribe(format!("desk.*.*.{TENANT}.>")).await?;
    // A round trip, so the subscription is in place before anything is published (flush only
    // writes the socket).
    integrator
        .request("$JS.API.INFO", "".into())
        .await
        .context("acme's integrator asking for its JetStream account info")?;

    // when the tickets and the cmdb service start as two processes,
    let mut tickets = ServeProcess::start(
        "tickets",
        &database.url,
        &nats.url(),
        TICKETS_NATS_PASSWORD,
        &dev_secret,
    )?;
    let mut cmdb = ServeProcess::start(
        "cmdb",
        &database.url,
        &nats.url(),
        CMDB_NATS_PASSWORD,
        &dev_secret,
    )?;
    let tickets_address = tickets.address().await?;
    let cmdb_address = cmdb.address().await?;
    ensure!(
        tickets_address != cmdb_address,
        "both listen on {tickets_address}"
    );
    let tickets_channel = tickets
        .serving(&tickets_address, "desk.tickets.v1.TicketService")
        .await?;
    let cmdb_channel = cmdb
        .serving(&cmdb_address, "desk.cmdb.v1.CmdbService")
        .await?;

    // and a client opens a ticket on the one and records a CI on the other,
    let auth = Settings::defaults().auth;
    let agent = mint_dev_token(
        &dev_secret,
        &dev_claims(&auth, "alex", TENANT, &["agent"], 3600),
    )?;
    let admin = mint_dev_token(
        &dev_secret,
        &dev_claims(&auth, "ada", TENANT, &["admin"], 3600),
    )?;
    let mut ticket_client = TicketServiceClient::new(tickets_channel.clone());
    let created_ticket = ticket_client
        .create_ticket(bearer(
            tickets_pb::CreateTicketRequest {
                r#type: tickets_pb::TicketType::Incident as i32,
                title: "Mail server rejects logins".into(),
                impact: tickets_pb::Level::High as i32,
                urgency: tickets_pb::Level::High as i32,
                ..Default::default()
            },
            &agent,
        )?)
        .await?
        .into_inner()
        .ticket
        .context("no ticket in the answer")?;
    let mut cmdb_client = CmdbServiceClient::new(cmdb_channel.clone());
    let created_ci = cmdb_client
        .create_ci(bearer(
            cmdb_pb::CreateCiRequest {
                name: "mail-01".into(),
                class: "server".into(),
                ..Default::default()
            },
            &admin,
        )?)
        .await?
        .into_inner()
        .ci
        .context("no CI in the answer")?;

    // then each reads back from its own process,
    let read_ticket = ticket_client
        .get_ticket(bearer(
            tickets_pb::GetTicketRequest {
                id: created_ticket.id.clone(),
            },
            &agent,
        )?)
        .await?
        .into_inner()
        .ticket
        .context("no ticket in the answer")?;
    assert_eq!(read_ticket.id, created_ticket.id);
    assert_eq!(read_ticket.title, "Mail server rejects logins");
    let read_ci = cmdb_client
        .get_ci(bearer(
            cmdb_pb::GetCiRequest {
                id: created_ci.id.clone(),
            },
            &agent,
        )?)
        .await?
        .into_inner()
        .ci
        .context("no CI in the answer")?;
    assert_eq!(read_ci.id, created_ci.id);
    assert_eq!(read_ci.name, "mail-01");
    // and neither process serves the other's API.
    let cmdb_on_tickets = CmdbServiceClient::new(tickets_channel)
        .get_ci(bearer(
            cmdb_pb::GetCiRequest {
                id: created_ci.id.clone(),
            },
            &agent,
        )?)
        .await;
    assert_eq!(
        cmdb_on_tickets.map(|_| ()).map_err(|status| status.code()),
        Err(tonic::Code::Unimplemented)
    );

    // And the integrator gets both events, each under its service and the tenant.
    let is_ticket_event = |m: &async_nats::Message| {
        m.subject.as_str() == format!("desk.{REGION}.tickets.{TENANT}.ticket.created")
            && tickets_pb::TicketCreated::decode(m.payload.as_ref())
                .ok()
                .and_then(|body| body.ticket)
                .is_some_and(|ticket| ticket.id == created_ticket.id)
    };
    let is_ci_event = |m: &async_nats::Message| {
        m.subject.as_str() == format!("desk.{REGION}.cmdb.{TENANT}.ci.created")
            && cmdb_pb::CiCreated::decode(m.payload.as_ref())
                .ok()
                .and_then(|body| body.ci)
                .is_some_and(|ci| ci.id == created_ci.id)
    };
    let events = receive_each(
        &mut acme_events,
        &[
            ("ticket.created of the new ticket", &is_ticket_event),
            ("ci.created of the new CI", &is_ci_event),
        ],
    )
    .await?;
    let [ticket_event, ci_event] = events.as_slice() else {
        bail!("expected two events, got {events:?}");
    };
    assert_eq!(header(ticket_event, "ce-tenant").as_deref(), Some(TENANT));
    assert_eq!(
        header(ticket_event, "ce-source"),
        Some(format!("/desk/{REGION}/tickets"))
    );
    assert_eq!(header(ci_event, "ce-tenant").as_deref(), Some(TENANT));
    assert_eq!(
        header(ci_event, "ce-source"),
        Some(format!("/desk/{REGION}/cmdb"))
    );

    // When both are sent SIGTERM, then both stop by themselves, successfully.
    tickets.stop().await?;
    cmdb.stop().await?;
    Ok(())
}
