//! `desk-bench`: measures a desk and prints JSON. Never a timed assertion: numbers are reported.
//!
//! `desk-bench tickets --duration 20s --concurrency 32 --json` starts what it measures by itself
//! (nats-server, a throwaway PostgreSQL with synchronous commit on, `desk serve --target tickets`
//! from the same target folder), drives `CreateTicket` calls through gRPC with JWTs for the given
//! duration, times each call, and times each `ticket.created` event from its `ce-time` (stamped in
//! the committing transaction) to a core NATS subscriber. Given `--addr`, `--nats-url` and
//! `--secret`, it measures a running desk instead. It can also run pgbench beside it to show the
//! PostgreSQL-alone ceiling for one ticket row plus one outbox row per transaction.

#[path = "desk_bench/catalog.rs"]
mod catalog;
#[path = "desk_bench/change/mod.rs"]
mod change;
#[path = "desk_bench/cmdb/mod.rs"]
mod cmdb;
#[path = "desk_bench/directory.rs"]
mod directory;
#[path = "desk_bench/gateway.rs"]
mod gateway;

/// The same allocator as the desk: the client's decoding of impact answers (thousands of small
/// strings) is part of every latency measured, and so are the in-process timings of the desk's
/// share of a query.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::{
    net::SocketAddr,
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use desk_proto::tickets::v1::{self as pb, ticket_service_client::TicketServiceClient};
use futures::StreamExt as _;
use hdrhistogram::Histogram;
use serde_json::json;
use tokio::sync::Mutex;
use tonic::transport::Channel;

#[derive(Debug, Parser)]
#[command(name = "desk-bench", about = "Benchmarks a desk and prints JSON")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Ticket creates through gRPC, with the outbox relay and NATS delivery measured.
    Tickets(TicketArgs),
    /// CMDB: import of a generated estate, impact analysis latency, impact index rebuild.
    Cmdb(cmdb::CmdbArgs),
    /// Directory: provisioning of a large tenant, person and team lookups under concurrency.
    Directory(directory::DirectoryArgs),
    /// Gateway: ticket creates through the gateway and directly, and a burst over a limit.
    Gateway(gateway::GatewayArgs),
    /// Change: conflict checks across the whole closure of the cmdb suite's estate against
    /// scheduled changes, through the API and in process.
    Change(change::ChangeArgs),
    /// `catalog`: submissions of a 30-field conditional form through gRPC with JWTs (PostgreSQL),
    /// half pre-approved.
    Catalog(catalog::CatalogArgs),
}

#[derive(Debug, Parser, Clone)]
struct TicketArgs {
    /// How long to drive load, e.g. 20s, 500ms, 1m.
    #[arg(long, default_value = "20s", value_parser = parse_duration)]
    duration: Duration,
    /// Calls in flight at once.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Cap on creates per second across all workers (0: as fast as the desk answers).
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
    /// Print the result as one JSON object (the default output is JSON too; kept for symmetry with other tools).
    #[arg(long)]
    json: bool,
    /// Run the suite the issue asks for: concurrency 1, concurrency 32, then concurrency 16 at half
    /// the rate reached at 32; prints one JSON object per phase plus a summary.
    #[arg(long)]
    suite: bool,
    /// A running desk's gRPC address; with it nothing is started.
    #[arg(long)]
    addr: Option<SocketAddr>,
    /// The running desk's NATS URL (for delivery latency).
    #[arg(long)]
    nats_url: Option<String>,
    /// The running desk's development HS256 secret (to mint tokens).
    #[arg(long, env = "DESK_AUTH__DEV_HS256_SECRET")]
    secret: Option<String>,
    /// Also run pgbench on the throwaway cluster for the PostgreSQL-alone ceiling.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pg_ceiling: bool,
}

pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(text.len()),
    );
    let value: f64 = number
        .parse()
        .map_err(|_| format!("not a duration: {text}"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" | "" => value,
        "m" => value * 60.0,
        _ => return Err(format!("unknown unit in {text}: use ms, s or m")),
    };
    Ok(Duration::from_secs_f64(seconds))
}

/// What was started for the run; stopped when dropped.
struct Started {
    _nats: desk_testkit::NatsServer,
    cluster: Option<desk_testkit::PgCluster>,
    desk: tokio::process::Child,
}

struct Target {
    addr: SocketAddr,
    nats_url: String,
    secret: String,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Tickets(args) => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
            .block_on(tickets(args)),
        // Sequential calls whose latency is the point: one thread, so the client neither takes
        // a second core from the desk nor hands each call from thread to thread.
        Command::Cmdb(args) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(cmdb::run(args)),
        // Lookups in flight are futures on one thread: the client takes one core at most.
        Command::Directory(args) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(directory::run(args)),
        Command::Gateway(args) => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
            .block_on(gateway::run(args)),
        // Sequential checks whose latency is the point, as for the CMDB: one thread.
        Command::Change(args) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(change::run(args)),
        Command::Catalog(args) => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
            .block_on(catalog::run(args)),
    }
}

async fn tickets(args: TicketArgs) -> anyhow::Result<()> {
    let (target, started) = match (&args.addr, &args.nats_url, &args.secret) {
        (Some(addr), Some(nats_url), Some(secret)) => (
            Target {
                addr: *addr,
                nats_url: nats_url.clone(),
                secret: secret.clone(),
            },
            None,
        ),
        (None, _, _) => {
            let (target, started) = start_desk().await?;
            (target, Some(started))
        }
        _ => anyhow::bail!("to measure a running desk give --addr, --nats-url and --secret"),
    };
    let mut phases = Vec::new();
    if args.suite {
        let single = run_phase(&target, 1, 0.0, args.duration).await?;
        let full = run_phase(&target, args.concurrency, 0.0, args.duration).await?;
        let half_rate = full["creates_per_s"].as_f64().unwrap_or(0.0) / 2.0;
        let half = run_phase(
            &target,
            (args.concurrency / 2).max(1),
            half_rate,
            args.duration,
        )
        .await?;
        phases.extend([
            ("concurrency_1", single),
            ("full_load", full),
            ("half_load", half),
        ]);
    } else {
        phases.push((
            "run",
            run_phase(&target, args.concurrency, args.rate, args.duration).await?,
        ));
    }
    let ceiling = match (&started, args.pg_ceiling) {
        (
            Some(Started {
                cluster: Some(cluster),
                ..
            }),
            true,
        ) => pg_ceiling(cluster, args.concurrency).await.ok(),
        _ => None,
    };
    let mut result = if args.suite {
        let mut object = serde_json::Map::new();
        for (name, phase) in &phases {
            object.insert((*name).to_owned(), phase.clone());
        }
        serde_json::Value::Object(object)
    } else {
        phases.remove(0).1
    };
    if let Some(object) = result.as_object_mut() {
        object.insert("benchmark".into(), json!("tickets"));
        object.insert("postgres_alone_tps".into(), json!(ceiling));
        object.insert(
            "synchronous_commit".into(),
            json!(started.is_some() || args.addr.is_some()),
        );
        object.insert(
            "cores".into(),
            json!(
                std::thread::available_parallelism()
                    .map(|n| n.get())
                    .unwrap_or(1)
            ),
        );
    }
    println!("{}", serde_json::to_string_pretty(&result)?);
    if let Some(mut started) = started {
        let _ = started.desk.start_kill();
        let _ = started.desk.wait().await;
        if let Some(cluster) = started.cluster.take() {
            cluster.stop().await;
        }
    }
    Ok(())
}

/// How to start `desk serve` for one target, kept so that a benchmark can stop the process and
/// start it again on the same database and NATS server.
pub(crate) struct DeskLaunch {
    pub binary: PathBuf,
    pub target: &'static str,
    pub addr: SocketAddr,
    pub database_url: String,
    pub nats_url: String,
    pub secret: String,
    pub max_connections: u32,
    pub rust_log: String,
}

impl DeskLaunch {
    /// `desk serve --target <target>` from the same target folder, on a free local port.
    pub fn new(
        target: &'static str,
        database_url: String,
        nats_url: String,
        max_connections: u32,
        rust_log: &str,
    ) -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        Ok(Self {
            binary: sibling_binary("desk")?,
            target,
            addr: format!("127.0.0.1:{port}").parse()?,
            database_url,
            nats_url,
            secret: format!(
                "{}{}",
                uuid::Uuid::new_v4().simple(),
                uuid::Uuid::new_v4().simple()
            ),
            max_connections,
            rust_log: rust_log.to_owned(),
        })
    }

    /// Starts the process, its stdout (where the JSON log goes) and stderr going to `log`.
    pub fn spawn(&self, log: &std::path::Path) -> anyhow::Result<tokio::process::Child> {
        let log = std::fs::File::create(log)?;
        tokio::process::Command::new(&self.binary)
            .args([
                "serve",
                "--target",
                self.target,
                "--listen",
                &self.addr.to_string(),
            ])
            .env("DESK_REGION", "bench")
            .env("DESK_DATABASE__URL", &self.database_url)
            .env(
                "DESK_DATABASE__MAX_CONNECTIONS",
                self.max_connections.to_string(),
            )
            .env("DESK_NATS__URL", &self.nats_url)
            .env("DESK_AUTH__DEV_HS256_SECRET", &self.secret)
            .env("RUST_LOG", &self.rust_log)
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", self.binary.display()))
    }
}

/// Starts nats-server, a PostgreSQL cluster with synchronous commit on, and `desk serve --target tickets`.
async fn start_desk() -> anyhow::Result<(Target, Started)> {
    let nats = desk_testkit::NatsServer::start().await?;
    let cluster = desk_testkit::start_cluster(false).await?;
    let database_url = cluster.create_database("bench").await?;
    let launch = DeskLaunch::new("tickets", database_url, nats.url(), 48, "warn")?;
    let addr = launch.addr;
    let log_path = std::env::temp_dir().join("desk-bench-desk.log");
    let desk = launch.spawn(&log_path)?;
    let target = Target {
        addr,
        nats_url: nats.url(),
        secret: launch.secret.clone(),
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(channel) = Channel::from_shared(format!("http://{addr}"))?
            .connect()
            .await
        {
            let mut health = tonic_health_probe(channel);
            if health.as_mut().await {
                break;
            }
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "desk did not become healthy in 60 s; see {}",
            log_path.display()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok((
        target,
        Started {
            _nats: nats,
            cluster: Some(cluster),
            desk,
        },
    ))
}

/// True once a ListTickets call answers (any status other than UNAVAILABLE means the service is up).
fn tonic_health_probe(
    channel: Channel,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send>> {
    Box::pin(async move {
        let mut client = TicketServiceClient::new(channel);
        match client.list_tickets(pb::ListTicketsRequest::default()).await {
            Ok(_) => true,
            Err(status) => status.code() != tonic::Code::Unavailable,
        }
    })
}

fn sibling_binary(name: &str) -> anyhow::Result<PathBuf> {
    let me = std::env::current_exe()?;
    let path = me.with_file_name(name);
    anyhow::ensure!(
        path.exists(),
        "{} not found: build it first (cargo build --release -p desk)",
        path.display()
    );
    Ok(path)
}

fn token(secret: &str) -> anyhow::Result<String> {
    dev_token(secret, "bench-agent", "bench", &["agent"], 3600)
}

/// A development HS256 token for `subject` of `tenant` with `roles`.
pub(crate) fn dev_token(
    secret: &str,
    subject: &str,
    tenant: &str,
    roles: &[&str],
    ttl_seconds: i64,
) -> anyhow::Result<String> {
    let mut auth = desk_kit::settings::Settings::defaults().auth;
    auth.dev_hs256_secret = Some(desk_kit::settings::Secret::new(secret.to_owned()));
    desk_kit::auth::mint_dev_token(
        secret,
        &desk_kit::auth::dev_claims(&auth, subject, tenant, roles, ttl_seconds),
    )
}

/// One load phase: `concurrency` workers for `duration`, optionally capped at `rate` creates/s.
async fn run_phase(
    target: &Target,
    concurrency: usize,
    rate: f64,
    duration: Duration,
) -> anyhow::Result<serde_json::Value> {
    let token: tonic::metadata::MetadataValue<_> =
        format!("Bearer {}", token(&target.secret)?).parse()?;
    let channel = Channel::from_shared(format!("http://{}", target.addr))?
        .connect()
        .await?;
    let nats = async_nats::connect(&target.nats_url).await?;
    let mut events = nats.subscribe("desk.*.tickets.*.ticket.created").await?;
    let delivery = Arc::new(Mutex::new(Histogram::<u64>::new(3)?));
    let delivered = Arc::new(AtomicU64::new(0));
    let (stop_events, mut stopped) = tokio::sync::oneshot::channel::<()>();
    let event_task = {
        let (delivery, delivered) = (delivery.clone(), delivered.clone());
        tokio::spawn(async move {
            loop {
                let message = tokio::select! {
                    message = events.next() => message,
                    _ = &mut stopped => break,
                };
                let Some(message) = message else { break };
                let received = chrono::Utc::now();
                let time = message
                    .headers
                    .as_ref()
                    .and_then(|h| h.get("ce-time"))
                    .and_then(|v| chrono::DateTime::parse_from_rfc3339(v.as_str()).ok());
                if let Some(time) = time {
                    let micros = (received - time.with_timezone(&chrono::Utc))
                        .num_microseconds()
                        .unwrap_or(0)
                        .max(0) as u64;
                    let _ = delivery.lock().await.record(micros);
                }
                delivered.fetch_add(1, Ordering::Relaxed);
            }
        })
    };

    let cpu_before = process_cpu_seconds();
    let latencies = Arc::new(Mutex::new(Histogram::<u64>::new(3)?));
    let created = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + duration;
    let per_worker_interval =
        (rate > 0.0).then(|| Duration::from_secs_f64(concurrency as f64 / rate));
    let mut workers = Vec::new();
    for worker in 0..concurrency {
        let mut client = TicketServiceClient::new(channel.clone());
        let (latencies, created, errors, token) = (
            latencies.clone(),
            created.clone(),
            errors.clone(),
            token.clone(),
        );
        workers.push(tokio::spawn(async move {
            let mut local = Histogram::<u64>::new(3).expect("histogram");
            let mut next = Instant::now() + Duration::from_micros((worker as u64 * 997) % 1000);
            let mut n = 0u64;
            while Instant::now() < deadline {
                if let Some(interval) = per_worker_interval {
                    tokio::time::sleep_until(next.into()).await;
                    next += interval;
                }
                n += 1;
                let mut request = tonic::Request::new(pb::CreateTicketRequest {
                    r#type: pb::TicketType::Incident as i32,
                    title: format!("bench ticket {worker}-{n}"),
                    description: "Created by desk-bench to measure the create path end to end."
                        .into(),
                    requester_id: format!("user-{}", n % 500),
                    channel: pb::Channel::Api as i32,
                    category: "bench".into(),
                    impact: pb::Level::Medium as i32,
                    urgency: pb::Level::High as i32,
                    ..Default::default()
                });
                request
                    .metadata_mut()
                    .insert("authorization", token.clone());
                let call = Instant::now();
                match client.create_ticket(request).await {
                    Ok(_) => {
                        let _ = local.record(call.elapsed().as_micros() as u64);
                        created.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(_) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            let _ = latencies.lock().await.add(&local);
        }));
    }
    for worker in workers {
        worker.await?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let client_cpu = process_cpu_seconds() - cpu_before;
    let created = created.load(Ordering::Relaxed);
    // Let the relay drain, then stop listening.
    let drain_deadline = Instant::now() + Duration::from_secs(15);
    while delivered.load(Ordering::Relaxed) < created && Instant::now() < drain_deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = stop_events.send(());
    let _ = event_task.await;
    let latencies = latencies.lock().await;
    let delivery = delivery.lock().await;
    let ms = |h: &Histogram<u64>, q: f64| {
        (h.value_at_quantile(q) as f64 / 1000.0 * 100.0).round() / 100.0
    };
    Ok(json!({
        "concurrency": concurrency,
        "target_rate_per_s": if rate > 0.0 { json!(rate.round()) } else { json!(null) },
        "duration_s": (elapsed * 10.0).round() / 10.0,
        "creates": created,
        "errors": errors.load(Ordering::Relaxed),
        "creates_per_s": (created as f64 / elapsed).round(),
        "p50_ms": ms(&latencies, 0.50),
        "p90_ms": ms(&latencies, 0.90),
        "p99_ms": ms(&latencies, 0.99),
        "max_ms": (latencies.max() as f64 / 1000.0 * 100.0).round() / 100.0,
        "delivery_p50_ms": ms(&delivery, 0.50),
        "delivery_p99_ms": ms(&delivery, 0.99),
        "events_published": delivered.load(Ordering::Relaxed),
        "client_cpu_s": (client_cpu * 100.0).round() / 100.0,
    }))
}

/// pgbench against the same cluster: one ticket-sized row plus one outbox-sized row per transaction.
async fn pg_ceiling(cluster: &desk_testkit::PgCluster, clients: usize) -> anyhow::Result<f64> {
    let url = cluster.create_database("ceiling").await?;
    let setup = "CREATE TABLE t (id uuid PRIMARY KEY, tenant text, title text, body text, created_at timestamptz); \
                 CREATE TABLE o (seq bigserial PRIMARY KEY, event_id uuid UNIQUE, subject text, payload bytea, created_at timestamptz, published_at timestamptz); \
                 CREATE INDEX ON o (published_at, seq);";
    let psql = desk_testkit::psql_binary()?;
    let status = tokio::process::Command::new(&psql)
        .arg(&url)
        .args(["-q", "-c", setup])
        .status()
        .await?;
    anyhow::ensure!(status.success(), "pgbench set-up failed");
    let script = std::env::temp_dir().join("desk-bench-pgbench.sql");
    std::fs::write(
        &script,
        "BEGIN;\nINSERT INTO t VALUES (gen_random_uuid(), 'bench', 'bench ticket', repeat('x', 300), now());\n\
         INSERT INTO o (event_id, subject, payload, created_at) VALUES (gen_random_uuid(), 'desk.bench.tickets.ticket.created', convert_to(repeat('y', 600), 'UTF8'), now());\nCOMMIT;\n",
    )?;
    let pgbench = desk_testkit::postgres_binaries_dir()?.join("pgbench");
    let output = tokio::process::Command::new(pgbench)
        .args([
            "-n",
            "-c",
            &clients.to_string(),
            "-j",
            "2",
            "-T",
            "10",
            "-f",
        ])
        .arg(&script)
        .arg(&url)
        .output()
        .await?;
    let text = String::from_utf8_lossy(&output.stdout);
    let tps = text
        .lines()
        .find(|l| l.starts_with("tps ="))
        .and_then(|l| l.split_whitespace().nth(2))
        .and_then(|v| v.parse::<f64>().ok())
        .context("pgbench printed no tps")?;
    Ok(tps.round())
}

/// User + system CPU seconds of this process (the client's own cost), from /proc.
pub(crate) fn process_cpu_seconds() -> f64 {
    pid_cpu_seconds("self", false)
}

/// User + system CPU seconds of a process (`self` or a pid), from /proc; with `children`, plus
/// what its exited and waited-for children used (a postmaster reaps its backends).
pub(crate) fn pid_cpu_seconds(pid: &str, children: bool) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // After the command name: utime is field 14 and stime 15 of the whole line, 11 and 12 here;
    // cutime and cstime follow.
    let own = ticks(11) + ticks(12);
    let reaped = if children { ticks(13) + ticks(14) } else { 0.0 };
    (own + reaped) / 100.0
}
