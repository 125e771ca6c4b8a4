//! `desk up --demo` as a newcomer runs it: the real binary as a child process, its own SQLite
//! files in a temporary folder, a real nats-server from the test kit. It must print its address
//! and development tokens, answer the gRPC health protocol and server reflection (v1 and v1alpha)
//! for every public service, take a ticket with the printed agent token and publish it as a
//! CloudEvent on `desk.<region>.tickets.ticket.created`, and stop cleanly on SIGTERM.
//!
//! Waits are bounded polls with a deadline; nothing here is a timing assertion.

use std::{
    process::Stdio,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail, ensure};
use desk_proto::tickets::v1::{self as pb, ticket_service_client::TicketServiceClient};
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
use tonic_reflection::pb::{v1, v1alpha};

#[path = "up/microservices.rs"]
mod microservices;

/// The first run builds nothing, but migrates and seeds two services on a cold SQLite.
const START_LIMIT: Duration = Duration::from_secs(120);

/// `desk up` as a child, with what it printed so far.
struct RunningDesk {
    child: Child,
    lines: mpsc::UnboundedReceiver<String>,
    printed: Vec<String>,
}

impl RunningDesk {
    fn start(data_dir: &std::path::Path, nats_url: &str) -> anyhow::Result<Self> {
        Self::start_with(data_dir, nats_url, &["--demo"])
    }

    fn start_with(
        data_dir: &std::path::Path,
        nats_url: &str,
        extra: &[&str],
    ) -> anyhow::Result<Self> {
        let mut child = Command::new(env!("CARGO_BIN_EXE_desk"))
            .args(["up", "--listen", "127.0.0.1:0", "--nats-url", nats_url])
            .args(extra)
            .arg("--data-dir")
            .arg(data_dir)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("starting desk up")?;
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
            child,
            lines,
            printed: Vec::new(),
        })
    }

    /// Reads output until a line satisfies `wanted`; returns it.
    async fn line_where(&mut self, wanted: impl Fn(&str) -> bool) -> anyhow::Result<String> {
        let deadline = Instant::now() + START_LIMIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.lines.recv()).await {
                Ok(Some(line)) => {
                    self.printed.push(line.clone());
                    if wanted(&line) {
                        return Ok(line);
                    }
                }
                Ok(None) => bail!(
                    "desk up exited before printing the expected line; it printed:\n{}",
                    self.printed.join("\n")
                ),
                Err(_) => bail!(
                    "desk up did not print the expected line within {START_LIMIT:?}; it printed:\n{}",
                    self.printed.join("\n")
                ),
            }
        }
    }

    /// The token printed after `label` (e.g. `agent alex:`).
    async fn token(&mut self, label: &str) -> anyhow::Result<String> {
        let line = self
            .line_where(|line| line.trim_start().starts_with(label))
            .await?;
        let token = line
            .trim_start()
            .trim_start_matches(label)
            .trim()
            .to_owned();
        ensure!(token.split('.').count() == 3, "not a JWT: {line}");
        Ok(token)
    }
}

async fn serving(channel: Channel, service: &str) -> anyhow::Result<ServingStatus> {
    let answer = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: service.to_owned(),
        })
        .await?
        .into_inner();
    Ok(answer.status())
}

/// `listed_by_<version>(channel)`: the services reflection lists, in that protocol version (the
/// two generated clients have the same shape but distinct types).
macro_rules! listed_by {
    ($name:ident, $version:ident) => {
        async fn $name(channel: Channel) -> anyhow::Result<Vec<String>> {
            use $version::{
                ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
                server_reflection_request::MessageRequest,
                server_reflection_response::MessageResponse,
            };
            let request = ServerReflectionRequest {
                host: String::new(),
                message_request: Some(MessageRequest::ListServices(String::new())),
            };
            let mut answers = ServerReflectionClient::new(channel)
                .server_reflection_info(futures::stream::iter([request]))
                .await?
                .into_inner();
            let mut names = Vec::new();
            if let Some(answer) = answers.next().await
                && let Some(MessageResponse::ListServicesResponse(list)) = answer?.message_response
            {
                names.extend(list.service.into_iter().map(|s| s.name));
            }
            Ok(names)
        }
    };
}

listed_by!(listed_by_v1alpha, v1alpha);
listed_by!(listed_by_v1, v1);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn desk_up_without_the_demo_ends_with_ready_and_a_token_command_that_works()
-> anyhow::Result<()> {
    // Given a nats-server and an empty data folder
    let nats = desk_testkit::NatsServer::start().await?;
    let data = tempfile::tempdir()?;

    // when a newcomer runs `desk up` without the demo
    let mut desk = RunningDesk::start_with(data.path(), &nats.url(), &[])?;

    // then, once every service is up, it says it is ready where, and how to get a token
    let ready = desk.line_where(|l| l.starts_with("desk ready at ")).await?;
    let address = ready
        .trim_start_matches("desk ready at ")
        .split_whitespace()
        .next()
        .context("no address")?
        .to_owned();
    let hint = desk
        .line_where(|l| l.starts_with("a token: desk token "))
        .await?;

    // when they run the command it names
    let arguments: Vec<&str> = hint
        .trim_start_matches("a token: desk ")
        .split_whitespace()
        .collect();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_desk"))
        .args(&arguments)
        .output()?;
    ensure!(
        output.status.success(),
        "`desk {}` failed: {}",
        arguments.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    let token = String::from_utf8(output.stdout)?.trim().to_owned();

    // then the token it prints lists tickets at the address it said
    let mut request = tonic::Request::new(pb::ListTicketsRequest::default());
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse()?);
    let channel = Channel::from_shared(format!("http://{address}"))?
        .connect()
        .await?;
    let listed = TicketServiceClient::new(channel)
        .list_tickets(request)
        .await?
        .into_inner();
    assert_eq!(listed.total_size, 0);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn desk_up_demo_serves_health_reflection_tickets_and_cloudevents_then_stops_on_sigterm()
-> anyhow::Result<()> {
    // Given a nats-server and an empty data folder
    let nats = desk_testkit::NatsServer::start().await?;
    let data = tempfile::tempdir()?;

    // when a newcomer runs `desk up --demo`
    let mut desk = RunningDesk::start(data.path(), &nats.url())?;

    // then it says where it listens first, and prints tokens once the demo tenant is seeded
    let line = desk
        .line_where(|l| l.starts_with("desk listening on "))
        .await?;
    let address = line
        .trim_start_matches("desk listening on ")
        .split_whitespace()
        .next()
        .context("no address")?
        .to_owned();
    let agent = desk.token("agent alex:").await?;
    // with the change calendar seeded on the demo CMDB
    let ready = desk
        .printed
        .iter()
        .find(|l| l.starts_with("demo tenant "))
        .cloned()
        .unwrap_or_default();
    ensure!(ready.contains(" 3 scheduled changes "), "{ready:?}");
    ensure!(ready.contains(" a catalog of 5 offerings"), "{ready:?}");
    let channel = Channel::from_shared(format!("http://{address}"))?
        .connect()
        .await?;

    // and it answers health for the process and each public service
    for service in [
        "",
        "desk.tickets.v1.TicketService",
        "desk.cmdb.v1.CmdbService",
        "desk.directory.v1.DirectoryService",
        "desk.change.v1.ChangeService",
        "desk.sla.v1.SlaService",
        "desk.catalog.v1.CatalogService",
    ] {
        assert_eq!(
            serving(channel.clone(), service).await?,
            ServingStatus::Serving,
            "health of {service:?}"
        );
    }

    // and reflection, in both protocol versions, lists every public service
    for (version, listed) in [
        ("v1alpha", listed_by_v1alpha(channel.clone()).await?),
        ("v1", listed_by_v1(channel.clone()).await?),
    ] {
        for service in [
            "desk.tickets.v1.TicketService",
            "desk.cmdb.v1.CmdbService",
            "desk.directory.v1.DirectoryService",
            "desk.change.v1.ChangeService",
            "desk.sla.v1.SlaService",
        ] {
            ensure!(
                listed.iter().any(|name| name == service),
                "reflection {version} lists {listed:?}, not {service}"
            );
        }
    }

    // when an integrator watches ticket events and the agent opens an incident with the printed token
    let watcher = async_nats::connect(nats.url()).await?;
    let mut created = watcher.subscribe("desk.*.tickets.*.ticket.created").await?;
    watcher.flush().await?;
    let mut request = tonic::Request::new(pb::CreateTicketRequest {
        r#type: pb::TicketType::Incident as i32,
        title: "VPN drops every ten minutes".into(),
        impact: pb::Level::High as i32,
        urgency: pb::Level::Medium as i32,
        ..Default::default()
    });
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {agent}").parse()?);
    let ticket = TicketServiceClient::new(channel.clone())
        .create_ticket(request)
        .await?
        .into_inner()
        .ticket
        .context("no ticket in the answer")?;
    assert!(ticket.number.starts_with("INC-"), "{}", ticket.number);

    // then it arrives as a CloudEvent whose body is the created ticket
    let deadline = Instant::now() + Duration::from_secs(30);
    let event = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let message = tokio::time::timeout(left, created.next())
            .await
            .context("no ticket.created event for the new ticket within 30 s")?
            .context("the subscription ended")?;
        let body = pb::TicketCreated::decode(message.payload.as_ref())?;
        if body.ticket.as_ref().map(|t| t.id.as_str()) == Some(ticket.id.as_str()) {
            break message;
        }
    };
    let headers = event.headers.context("the event has no headers")?;
    let header = |name: &str| headers.get(name).map(|v| v.as_str().to_owned());
    assert_eq!(header("ce-specversion").as_deref(), Some("1.0"));
    assert_eq!(
        header("ce-type").as_deref(),
        Some("desk.tickets.ticket.created.v1")
    );
    assert_eq!(header("ce-subject"), Some(ticket.id.clone()));
    assert_eq!(header("ce-tenant").as_deref(), Some("demo"));
    let ce_id = header("ce-id").context("no ce-id")?;
    assert_eq!(header("Nats-Msg-Id"), Some(ce_id), "Nats-Msg-Id is ce-id");
    for name in ["ce-source", "ce-time", "Content-Type"] {
        ensure!(header(name).is_some(), "no {name} header");
    }

    // when it is sent SIGTERM, then it stops by itself, successfully
    let pid = desk.child.id().context("desk has no pid")?;
    ensure!(
        desk_testkit::send_signal(pid, "TERM"),
        "SIGTERM to desk ({pid}) was not delivered"
    );
    let status = tokio::time::timeout(Duration::from_secs(60), desk.child.wait())
        .await
        .context("desk did not stop within 60 s of SIGTERM")??;
    ensure!(status.success(), "desk exited with {status} after SIGTERM");
    Ok(())
}
