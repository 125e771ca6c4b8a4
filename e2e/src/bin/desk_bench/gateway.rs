//! `desk-bench gateway`: what the gateway adds to a call. Starts nats-server, a PostgreSQL
//! cluster with synchronous commit on, `desk serve --target tickets` and `desk serve --target
//! gateway` forwarding to it, then drives `CreateTicket` directly at the tickets service and
//! through the gateway in alternating slices of the same run (so both see the same machine,
//! database size and neighbours), and last a burst of reads over the tenant's read limit.
//!
//! JSON: `direct_per_s`, `via_gateway_per_s`, `ratio` (via / direct), `direct_p50_ms`,
//! `via_gateway_p50_ms` and the p99s, `added_p50_ms` and `added_p99_ms` (via minus direct), and
//! for the burst `burst_calls`, `limited_share` (the share answered `RESOURCE_EXHAUSTED`) and
//! `limited_with_retry_info` (how many of those carried `google.rpc.RetryInfo`). Floors the issue
//! sets (reported, never asserted): ratio ≥ 0.8, added p50 ≤ 0.5 ms.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::Context as _;
use clap::Parser;
use desk_proto::tickets::v1::{self as pb, ticket_service_client::TicketServiceClient};
use hdrhistogram::Histogram;
use serde_json::json;
use tokio::sync::Mutex;
use tonic::{Code, metadata::MetadataValue, transport::Channel};
use tonic_types::StatusExt as _;

use crate::{DeskLaunch, dev_token, parse_duration};

#[derive(Debug, Parser, Clone)]
pub struct GatewayArgs {
    /// Total time creating tickets, split evenly between the two paths.
    #[arg(long, default_value = "20s", value_parser = parse_duration)]
    duration: Duration,
    /// Calls in flight at once.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Length of one slice; the paths alternate slice by slice.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    slice: Duration,
    /// Reads in the burst over the tenant's read limit.
    #[arg(long, default_value_t = 1000)]
    burst: usize,
    /// Print the result as one JSON object (the default output is JSON too).
    #[arg(long)]
    json: bool,
}

/// The read limit the burst runs into: 100 at once, then 10 a second.
const BURST_TENANT_PER_MINUTE: u32 = 600;
const BURST_TENANT_BURST: u32 = 100;

struct Processes {
    _nats: desk_testkit::NatsServer,
    cluster: Option<desk_testkit::PgCluster>,
    tickets: tokio::process::Child,
    gateway: tokio::process::Child,
}

pub async fn run(args: GatewayArgs) -> anyhow::Result<()> {
    let nats = desk_testkit::NatsServer::start().await?;
    let cluster = desk_testkit::start_cluster(false).await?;
    let database_url = cluster.create_database("bench").await?;
    let tickets = DeskLaunch::new("tickets", database_url, nats.url(), 48, "warn")?;
    let tickets_log = std::env::temp_dir().join("desk-bench-gateway-tickets.log");
    let tickets_child = tickets.spawn(&tickets_log)?;
    let gateway_addr: SocketAddr = format!(
        "127.0.0.1:{}",
        std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port()
    )
    .parse()?;
    let gateway_log = std::env::temp_dir().join("desk-bench-gateway.log");
    let gateway_child = spawn_gateway(&tickets, gateway_addr, &gateway_log)?;
    let mut processes = Processes {
        _nats: nats,
        cluster: Some(cluster),
        tickets: tickets_child,
        gateway: gateway_child,
    };
    let pids = (processes.tickets.id(), processes.gateway.id());
    let outcome = measure(&args, &tickets, gateway_addr, pids).await;
    let _ = processes.tickets.start_kill();
    let _ = processes.gateway.start_kill();
    let _ = processes.tickets.wait().await;
    let _ = processes.gateway.wait().await;
    if let Some(cluster) = processes.cluster.take() {
        cluster.stop().await;
    }
    let result = outcome.with_context(|| {
        format!(
            "see {} and {}",
            tickets_log.display(),
            gateway_log.display()
        )
    })?;
    println!("{}", serde_json::to_string_pretty(&result)?);
    Ok(())
}

/// `desk serve --target gateway` forwarding to `tickets`, with writes unlimited (the creates
/// measure the forwarding, not the limiter's refusals) and the burst's read limit.
fn spawn_gateway(
    tickets: &DeskLaunch,
    addr: SocketAddr,
    log: &std::path::Path,
) -> anyhow::Result<tokio::process::Child> {
    let log = std::fs::File::create(log)?;
    tokio::process::Command::new(&tickets.binary)
        .args([
            "serve",
            "--target",
            "gateway",
            "--listen",
            &addr.to_string(),
        ])
        .env("DESK_REGION", "bench")
        .env("DESK_NATS__URL", &tickets.nats_url)
        .env("DESK_AUTH__DEV_HS256_SECRET", &tickets.secret)
        .env(
            "DESK_SERVICES__TICKETS__URL",
            format!("http://{}", tickets.addr),
        )
        .env("DESK_GATEWAY__LIMITS__WRITES__TENANT_PER_MINUTE", "0")
        .env("DESK_GATEWAY__LIMITS__WRITES__PERSON_PER_MINUTE", "0")
        .env(
            "DESK_GATEWAY__LIMITS__READS__TENANT_PER_MINUTE",
            BURST_TENANT_PER_MINUTE.to_string(),
        )
        .env(
            "DESK_GATEWAY__LIMITS__READS__TENANT_BURST",
            BURST_TENANT_BURST.to_string(),
        )
        .env("DESK_GATEWAY__LIMITS__READS__PERSON_PER_MINUTE", "0")
        .env("RUST_LOG", &tickets.rust_log)
        .stdout(log.try_clone()?)
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", tickets.binary.display()))
}

async fn connect_when_serving(
    addr: SocketAddr,
    token: &MetadataValue<tonic::metadata::Ascii>,
) -> anyhow::Result<Channel> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(channel) = Channel::from_shared(format!("http://{addr}"))?
            .tcp_nodelay(true)
            .connect()
            .await
        {
            let mut request = tonic::Request::new(pb::ListTicketsRequest {
                page_size: 1,
                ..Default::default()
            });
            request
                .metadata_mut()
                .insert("authorization", token.clone());
            if TicketServiceClient::new(channel.clone())
                .list_tickets(request)
                .await
                .is_ok()
            {
                return Ok(channel);
            }
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "{addr} did not serve tickets within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// CPU seconds of a child process so far (0 when it is gone).
fn cpu_seconds(pid: Option<u32>) -> f64 {
    pid.map_or(0.0, |pid| crate::pid_cpu_seconds(&pid.to_string(), false))
}

async fn measure(
    args: &GatewayArgs,
    tickets: &DeskLaunch,
    gateway_addr: SocketAddr,
    (tickets_pid, gateway_pid): (Option<u32>, Option<u32>),
) -> anyhow::Result<serde_json::Value> {
    let token: MetadataValue<_> = format!(
        "Bearer {}",
        dev_token(&tickets.secret, "bench-agent", "bench", &["agent"], 3600)?
    )
    .parse()?;
    let direct = connect_when_serving(tickets.addr, &token).await?;
    let via_gateway = connect_when_serving(gateway_addr, &token).await?;

    let mut direct_load = Load::new()?;
    let mut gateway_load = Load::new()?;
    // A short warm-up of each path: connections, pools and caches.
    let warm_up = Duration::from_millis(500);
    Load::new()?
        .drive(&direct, &token, args.concurrency, warm_up)
        .await?;
    Load::new()?
        .drive(&via_gateway, &token, args.concurrency, warm_up)
        .await?;
    let slices = (args.duration.as_secs_f64() / args.slice.as_secs_f64() / 2.0)
        .ceil()
        .max(1.0) as u32;
    let slice = args.duration / (slices * 2);
    let gateway_cpu_before = cpu_seconds(gateway_pid);
    let tickets_cpu_before = cpu_seconds(tickets_pid);
    let client_cpu_before = crate::process_cpu_seconds();
    for _ in 0..slices {
        direct_load
            .drive(&direct, &token, args.concurrency, slice)
            .await?;
        gateway_load
            .drive(&via_gateway, &token, args.concurrency, slice)
            .await?;
    }
    let gateway_cpu = cpu_seconds(gateway_pid) - gateway_cpu_before;
    let tickets_cpu = cpu_seconds(tickets_pid) - tickets_cpu_before;
    let client_cpu = crate::process_cpu_seconds() - client_cpu_before;
    let burst = burst(&via_gateway, &token, args.burst, args.concurrency).await?;
    let all_creates = (direct_load.created + gateway_load.created).max(1) as f64;

    let ms = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    let round = |v: f64| (v * 1000.0).round() / 1000.0;
    let direct_per_s = direct_load.per_second();
    let via_per_s = gateway_load.per_second();
    Ok(json!({
        "benchmark": "gateway",
        "concurrency": args.concurrency,
        "slices_per_path": slices,
        "direct_creates": direct_load.created,
        "via_gateway_creates": gateway_load.created,
        "direct_errors": direct_load.errors,
        "via_gateway_errors": gateway_load.errors,
        "direct_per_s": direct_per_s.round(),
        "via_gateway_per_s": via_per_s.round(),
        "ratio": if direct_per_s > 0.0 { json!(round(via_per_s / direct_per_s)) } else { json!(null) },
        "direct_p50_ms": round(ms(&direct_load.latencies, 0.50)),
        "via_gateway_p50_ms": round(ms(&gateway_load.latencies, 0.50)),
        "direct_p99_ms": round(ms(&direct_load.latencies, 0.99)),
        "via_gateway_p99_ms": round(ms(&gateway_load.latencies, 0.99)),
        "added_p50_ms": round(ms(&gateway_load.latencies, 0.50) - ms(&direct_load.latencies, 0.50)),
        "added_p99_ms": round(ms(&gateway_load.latencies, 0.99) - ms(&direct_load.latencies, 0.99)),
        // Where the CPU went while creating: the gateway's per call it forwarded, the tickets
        // service's and the client's per create on either path.
        "gateway_cpu_us_per_call": (gateway_cpu * 1e6 / gateway_load.created.max(1) as f64).round(),
        "tickets_cpu_us_per_create": (tickets_cpu * 1e6 / all_creates).round(),
        "client_cpu_us_per_create": (client_cpu * 1e6 / all_creates).round(),
        "burst_calls": burst.calls,
        "burst_tenant_limit": format!("{BURST_TENANT_BURST} at once, {BURST_TENANT_PER_MINUTE}/min"),
        "limited_share": if burst.calls > 0 { json!(round(burst.limited as f64 / burst.calls as f64)) } else { json!(null) },
        "limited_with_retry_info": burst.with_retry_info,
        "burst_other_errors": burst.other_errors,
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
    }))
}

/// Creates made on one path, over all its slices.
struct Load {
    latencies: Histogram<u64>,
    created: u64,
    errors: u64,
    elapsed: Duration,
}

impl Load {
    fn new() -> anyhow::Result<Load> {
        Ok(Load {
            latencies: Histogram::new(3)?,
            created: 0,
            errors: 0,
            elapsed: Duration::ZERO,
        })
    }

    fn per_second(&self) -> f64 {
        if self.elapsed.is_zero() {
            0.0
        } else {
            self.created as f64 / self.elapsed.as_secs_f64()
        }
    }

    /// `concurrency` workers creating tickets on `channel` for `duration`.
    async fn drive(
        &mut self,
        channel: &Channel,
        token: &MetadataValue<tonic::metadata::Ascii>,
        concurrency: usize,
        duration: Duration,
    ) -> anyhow::Result<()> {
        let latencies = Arc::new(Mutex::new(Histogram::<u64>::new(3)?));
        let created = Arc::new(AtomicU64::new(0));
        let errors = Arc::new(AtomicU64::new(0));
        let started = Instant::now();
        let deadline = started + duration;
        let mut workers = Vec::with_capacity(concurrency);
        for worker in 0..concurrency {
            let mut client = TicketServiceClient::new(channel.clone());
            let (latencies, created, errors, token) = (
                latencies.clone(),
                created.clone(),
                errors.clone(),
                token.clone(),
            );
            workers.push(tokio::spawn(async move {
                let mut local = Histogram::<u64>::new(3)?;
                let mut n = 0u64;
                while Instant::now() < deadline {
                    n += 1;
                    let mut request = tonic::Request::new(pb::CreateTicketRequest {
                        r#type: pb::TicketType::Incident as i32,
                        title: format!("gateway bench ticket {worker}-{n}"),
                        description: "Created by desk-bench to measure what the gateway adds."
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
                latencies.lock().await.add(&local)?;
                anyhow::Ok(())
            }));
        }
        for worker in workers {
            worker.await??;
        }
        self.elapsed += started.elapsed();
        self.created += created.load(Ordering::Relaxed);
        self.errors += errors.load(Ordering::Relaxed);
        self.latencies.add(&*latencies.lock().await)?;
        Ok(())
    }
}

struct Burst {
    calls: u64,
    limited: u64,
    with_retry_info: u64,
    other_errors: u64,
}

/// `calls` reads of one tenant at once (`concurrency` in flight), far over its read limit.
async fn burst(
    channel: &Channel,
    token: &MetadataValue<tonic::metadata::Ascii>,
    calls: usize,
    concurrency: usize,
) -> anyhow::Result<Burst> {
    let limited = Arc::new(AtomicU64::new(0));
    let with_retry_info = Arc::new(AtomicU64::new(0));
    let other_errors = Arc::new(AtomicU64::new(0));
    let next = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::with_capacity(concurrency);
    for _ in 0..concurrency.max(1) {
        let mut client = TicketServiceClient::new(channel.clone());
        let (limited, with_retry_info, other_errors, next, token) = (
            limited.clone(),
            with_retry_info.clone(),
            other_errors.clone(),
            next.clone(),
            token.clone(),
        );
        workers.push(tokio::spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < calls as u64 {
                let mut request = tonic::Request::new(pb::ListTicketsRequest {
                    page_size: 1,
                    ..Default::default()
                });
                request
                    .metadata_mut()
                    .insert("authorization", token.clone());
                match client.list_tickets(request).await {
                    Ok(_) => {}
                    Err(status) if status.code() == Code::ResourceExhausted => {
                        limited.fetch_add(1, Ordering::Relaxed);
                        if status.get_error_details().retry_info().is_some() {
                            with_retry_info.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Err(_) => {
                        other_errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    for worker in workers {
        worker.await?;
    }
    Ok(Burst {
        calls: calls as u64,
        limited: limited.load(Ordering::Relaxed),
        with_retry_info: with_retry_info.load(Ordering::Relaxed),
        other_errors: other_errors.load(Ordering::Relaxed),
    })
}
