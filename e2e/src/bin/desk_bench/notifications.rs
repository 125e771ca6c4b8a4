//! `desk-bench notifications --duration 20s --json`: ticket events → signed webhooks to a
//! loopback receiver that checks every signature, and e-mails to a loopback SMTP sink.
//!
//! Starts nats-server, a throwaway PostgreSQL with synchronous commit on, the testkit's SMTP sink
//! and webhook receiver, and `desk serve --target notifications` (coalescing off: every event is
//! its own message). One webhook endpoint and `--people` requesters (through directory events)
//! are set up, then `ticket.created` events are published to JetStream as the tickets service
//! would, at `--rate` per second (0: as fast as JetStream acknowledges) for `--duration`. Each
//! event yields one webhook and one e-mail. Lag is from the event's publication (acknowledged by
//! JetStream, as the tickets service's relay would have it) to the receiver or the sink having
//! it. `duplicates` counts webhook ids and Message-IDs seen twice; `bad_signatures` counts
//! requests the receiver could not verify. Nothing is asserted: numbers are reported.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
    time::{Duration, Instant},
};

use clap::Parser;
use desk_kit::events::{EventSource, envelope::CloudEventAttributes, streams};
use desk_proto::{
    directory::v1 as directory,
    notifications::v1::{self as pb, notification_service_client::NotificationServiceClient},
    tickets::v1 as tickets,
};
use desk_testkit::{smtp::SmtpSink, webhook::WebhookReceiver};
use hdrhistogram::Histogram;
use prost::Message as _;
use serde_json::json;
use tokio::sync::Mutex;
use tonic::{Request, transport::Channel};

use super::{DeskLaunch, dev_token, parse_duration};

const TENANT: &str = "bench";
const REGION: &str = "bench";

#[derive(Debug, Parser, Clone)]
pub struct NotificationArgs {
    /// How long to publish events, e.g. 20s.
    #[arg(long, default_value = "20s", value_parser = parse_duration)]
    duration: Duration,
    /// Events per second (0: as fast as JetStream acknowledges them).
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
    /// Publishers in flight at once.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Requesters the e-mails go to.
    #[arg(long, default_value_t = 50)]
    people: usize,
    /// Connections of the service's pool.
    #[arg(long, default_value_t = 32)]
    max_connections: u32,
    /// The result is JSON either way; kept for symmetry with the other suites.
    #[arg(long)]
    json: bool,
}

fn attributes(service: &str, aggregate: &str, event: &str) -> (CloudEventAttributes, String) {
    let id = uuid::Uuid::now_v7();
    (
        CloudEventAttributes {
            id,
            source: format!("/desk/{REGION}/{service}"),
            ce_type: format!("desk.{service}.{aggregate}.{event}.v1"),
            subject: id.to_string(),
            tenant: TENANT.into(),
            time: chrono::Utc::now(),
            traceparent: None,
        },
        format!("desk.{REGION}.{service}.{TENANT}.{aggregate}.{event}"),
    )
}

async fn publish(
    js: &async_nats::jetstream::Context,
    service: &str,
    aggregate: &str,
    event: &str,
    payload: Vec<u8>,
) -> anyhow::Result<()> {
    let (attrs, subject) = attributes(service, aggregate, event);
    js.publish_with_headers(subject, attrs.to_headers(), payload.into())
        .await?
        .await?;
    Ok(())
}

fn quantiles(h: &Histogram<u64>) -> serde_json::Value {
    let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    json!({"p50": ms(0.5), "p90": ms(0.9), "p99": ms(0.99), "max": h.max() as f64 / 1000.0})
}

pub async fn run(args: NotificationArgs) -> anyhow::Result<()> {
    let nats = desk_testkit::NatsServer::start().await?;
    let cluster = desk_testkit::start_cluster(false).await?;
    let database_url = cluster.create_database("bench").await?;
    let sink = SmtpSink::start().await?;
    let hooks = WebhookReceiver::start().await?;
    let launch = DeskLaunch::new(
        "notifications",
        database_url,
        nats.url(),
        args.max_connections,
        "warn",
    )?;
    let log = std::env::temp_dir().join("desk-bench-notifications.log");
    let log_file = std::fs::File::create(&log)?;
    // `DeskLaunch::spawn` plus the transports' settings.
    let _desk = tokio::process::Command::new(&launch.binary)
        .args([
            "serve",
            "--target",
            "notifications",
            "--listen",
            &launch.addr.to_string(),
        ])
        .env("DESK_REGION", REGION)
        .env("DESK_DATABASE__URL", &launch.database_url)
        .env(
            "DESK_DATABASE__MAX_CONNECTIONS",
            launch.max_connections.to_string(),
        )
        .env("DESK_NATS__URL", &launch.nats_url)
        .env("DESK_AUTH__DEV_HS256_SECRET", &launch.secret)
        .env("DESK_NOTIFICATIONS__SMTP_URL", sink.url())
        .env("DESK_NOTIFICATIONS__PRIVATE_WEBHOOK_TENANTS", TENANT)
        .env("DESK_NOTIFICATIONS__COALESCE_SECONDS", "0")
        .env("DESK_NOTIFICATIONS__POLL_INTERVAL_MS", "50")
        .env("DESK_NOTIFICATIONS__BATCH_SIZE", "256")
        .env("DESK_NOTIFICATIONS__MESSAGE_ID_DOMAIN", "bench.example")
        .env("DESK_CONSUMER__BATCH_SIZE", "256")
        .env("RUST_LOG", &launch.rust_log)
        .stdout(log_file.try_clone()?)
        .stderr(log_file)
        .kill_on_drop(true)
        .spawn()?;
    let admin = format!(
        "Bearer {}",
        dev_token(&launch.secret, "bench-admin", TENANT, &["admin"], 3600)?
    );
    let channel = Channel::from_shared(format!("http://{}", launch.addr))?.connect_lazy();
    let mut client = NotificationServiceClient::new(channel);
    let deadline = Instant::now() + Duration::from_secs(60);
    let endpoint = loop {
        let mut request = Request::new(pb::CreateWebhookEndpointRequest {
            endpoint: Some(pb::WebhookEndpoint {
                url: hooks.url("/bench"),
                enabled: true,
                ..Default::default()
            }),
        });
        request
            .metadata_mut()
            .insert("authorization", admin.parse()?);
        match client.create_webhook_endpoint(request).await {
            Ok(r) => break r.into_inner().endpoint.unwrap_or_default(),
            Err(e) => {
                anyhow::ensure!(
                    Instant::now() < deadline,
                    "the desk did not come up: {e}; see {}",
                    log.display()
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    hooks.trust(&[&endpoint.secret]);
    let client_nats = async_nats::connect(nats.url()).await?;
    let js = async_nats::jetstream::new(client_nats);
    let nats_settings = desk_kit::settings::Settings::defaults().nats;
    for source in ["tickets", "directory"] {
        streams::ensure_stream(&js, &EventSource::new(REGION, source), &nats_settings).await?;
    }
    for i in 0..args.people {
        let person = directory::Person {
            id: format!("{REGION}-person-{i}"),
            tenant_id: TENANT.into(),
            subject: format!("person-{i}"),
            display_name: format!("Person {i}"),
            email: format!("person-{i}@bench.example"),
            locale: ["en", "sv-SE", "id-ID", "zh-CN", "es-ES", "it-IT"][i % 6].into(),
            time_zone: "Europe/Stockholm".into(),
            status: directory::PersonStatus::Active as i32,
            version: 1,
            ..Default::default()
        };
        let payload = directory::PersonCreated {
            person: Some(person),
            ..Default::default()
        }
        .encode_to_vec();
        publish(&js, "directory", "person", "created", payload).await?;
    }
    // The people are projected before the load starts: a probe event's e-mail says so (the
    // directory and tickets consumers run independently, so probe until one arrives).
    let probe_deadline = Instant::now() + Duration::from_secs(60);
    while sink.messages().is_empty() {
        anyhow::ensure!(
            Instant::now() < probe_deadline,
            "no probe e-mail arrived; see {}",
            log.display()
        );
        let probe = tickets::Ticket {
            id: format!("{REGION}-probe-{}", uuid::Uuid::now_v7()),
            number: "PROBE".into(),
            requester_id: format!("person-{}", args.people - 1),
            status: tickets::TicketStatus::New as i32,
            priority: 3,
            version: 1,
            ..Default::default()
        };
        publish(
            &js,
            "tickets",
            "ticket",
            "created",
            tickets::TicketCreated {
                ticket: Some(probe),
                actor: None,
            }
            .encode_to_vec(),
        )
        .await?;
        sink.wait_for(1, Duration::from_secs(2)).await;
    }
    hooks.wait_for(1, Duration::from_secs(30)).await;
    let baseline_mails = sink.messages().len();
    let baseline_hooks = hooks.received().len();

    let published: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let started = Instant::now();
    let end = started + args.duration;
    let interval =
        (args.rate > 0.0).then(|| Duration::from_secs_f64(args.concurrency as f64 / args.rate));
    let workers = (0..args.concurrency).map(|w| {
        let js = js.clone();
        let published = published.clone();
        let people = args.people;
        async move {
            let mut n = 0usize;
            let mut next = Instant::now();
            while Instant::now() < end {
                if let Some(interval) = interval {
                    next += interval;
                    tokio::time::sleep_until(next.into()).await;
                }
                let number = format!("INC-{w:02}{n:07}");
                let ticket = tickets::Ticket {
                    id: format!("{REGION}-{}", uuid::Uuid::now_v7()),
                    number: number.clone(),
                    title: "Benchmark".into(),
                    requester_id: format!("person-{}", (w * 7919 + n) % people),
                    status: tickets::TicketStatus::New as i32,
                    priority: 3,
                    version: 1,
                    ..Default::default()
                };
                let payload = tickets::TicketCreated {
                    ticket: Some(ticket),
                    actor: None,
                }
                .encode_to_vec();
                if publish(&js, "tickets", "ticket", "created", payload)
                    .await
                    .is_ok()
                {
                    published.lock().await.insert(number, Instant::now());
                }
                n += 1;
            }
        }
    });
    futures::future::join_all(workers).await;
    let publish_wall = started.elapsed().as_secs_f64();
    let events = published.lock().await.len();
    // Drain: wait for everything (bounded).
    hooks
        .wait_for(baseline_hooks + events, Duration::from_secs(120))
        .await;
    sink.wait_for(baseline_mails + events, Duration::from_secs(120))
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    let published = published.lock().await;
    let number_in = |text: &str| -> Option<String> {
        let at = text.find("INC-")?;
        Some(text[at..at + 13.min(text.len() - at)].to_owned())
    };
    let received = hooks.received();
    let mut webhook_lag = Histogram::<u64>::new(3)?;
    let mut ids = HashSet::new();
    let (mut duplicates, mut bad_signatures, mut webhook_last) = (0u64, 0u64, started);
    let mut webhook_count = 0u64;
    for r in received.iter().skip(baseline_hooks) {
        if !ids.insert(r.id.clone()) {
            duplicates += 1;
        }
        if !r.verified {
            bad_signatures += 1;
        }
        if let Some(at) = number_in(&r.body).and_then(|n| published.get(&n)) {
            webhook_lag.record(r.at.saturating_duration_since(*at).as_micros() as u64)?;
            webhook_count += 1;
            webhook_last = webhook_last.max(r.at);
        }
    }
    let mails = sink.messages();
    let mut email_lag = Histogram::<u64>::new(3)?;
    let mut message_ids = HashSet::new();
    let (mut email_count, mut email_last) = (0u64, started);
    for m in mails.iter().skip(baseline_mails) {
        if !message_ids.insert(m.header("message-id").unwrap_or_default()) {
            duplicates += 1;
        }
        if let Some(at) = m
            .header("subject")
            .and_then(|s| number_in(&s))
            .and_then(|n| published.get(&n))
        {
            email_lag.record(m.at.saturating_duration_since(*at).as_micros() as u64)?;
            email_count += 1;
            email_last = email_last.max(m.at);
        }
    }
    let per_s = |count: u64, last: Instant| {
        count as f64
            / last
                .saturating_duration_since(started)
                .as_secs_f64()
                .max(publish_wall)
    };
    let result = json!({
        "suite": "notifications",
        "duration_s": args.duration.as_secs_f64(),
        "rate": args.rate,
        "events": events,
        "events_per_s": events as f64 / publish_wall,
        "webhook_deliveries": webhook_count,
        "webhook_deliveries_per_s": per_s(webhook_count, webhook_last),
        "webhook_lag_ms": quantiles(&webhook_lag),
        "webhook_lag_p99_ms": webhook_lag.value_at_quantile(0.99) as f64 / 1000.0,
        "emails": email_count,
        "emails_per_s": per_s(email_count, email_last),
        "email_lag_ms": quantiles(&email_lag),
        "email_lag_p99_ms": email_lag.value_at_quantile(0.99) as f64 / 1000.0,
        "duplicates": duplicates,
        "bad_signatures": bad_signatures,
        "missing_webhooks": events as u64 - webhook_count.min(events as u64),
        "missing_emails": events as u64 - email_count.min(events as u64),
    });
    println!("{}", serde_json::to_string_pretty(&result)?);
    Ok(())
}
