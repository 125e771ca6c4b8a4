//! `desk-bench catalog`: submissions of a 30-field conditional form through gRPC with JWTs, to
//! `desk serve --target catalog` on PostgreSQL (synchronous commit on) and a real nats-server.
//! Half the submissions go to a pre-approved offering (straight to fulfillment: submitted,
//! approved and a task created in one transaction), half to one that waits for a named
//! approver. Prints one JSON object: `submissions_per_s`, `submit_p99_ms`, the lag from a
//! request's commit to its `request.submitted` event on NATS, and `ticket_lag_p99_ms` — null
//! while the tickets service does not yet make the request's ticket (see the catalog's docs).
//!
//! Two phases: full load (`--concurrency` workers as fast as they go), then half that rate, where
//! the lag floor applies.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use clap::Parser;
use desk_proto::catalog::v1::{self as pb, catalog_service_client::CatalogServiceClient};
use futures::StreamExt as _;
use hdrhistogram::Histogram;
use serde_json::json;
use tokio::sync::Mutex;
use tonic::transport::Channel;

use crate::{DeskLaunch, dev_token, parse_duration};

#[derive(Debug, Parser, Clone)]
pub struct CatalogArgs {
    #[arg(long, default_value = "20s", value_parser = parse_duration)]
    duration: Duration,
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Print JSON (the only output; kept for symmetry with the other suites).
    #[arg(long)]
    json: bool,
}

/// Ten groups of three: a choice, and a text and a number shown only for one of its choices.
fn form() -> pb::FormSchema {
    let mut fields = Vec::new();
    for group in 0..10 {
        let label = |key: &str| {
            vec![pb::LocalizedText {
                locale: "en".into(),
                text: key.into(),
            }]
        };
        let kind = format!("kind_{group}");
        fields.push(pb::FormField {
            key: kind.clone(),
            label: label(&kind),
            r#type: pb::FieldType::Choice as i32,
            required: true,
            choices: vec!["basic".into(), "custom".into()],
            ..Default::default()
        });
        let when = Some(pb::Condition {
            field: kind.clone(),
            test: Some(pb::condition::Test::AnyOf(pb::Texts {
                values: vec!["custom".into()],
            })),
        });
        fields.push(pb::FormField {
            key: format!("detail_{group}"),
            label: label("detail"),
            r#type: pb::FieldType::Text as i32,
            required: true,
            min: Some(3.0),
            max: Some(200.0),
            pattern: "[A-Za-z0-9 ,.-]+".into(),
            visible_when: when.clone(),
            ..Default::default()
        });
        fields.push(pb::FormField {
            key: format!("amount_{group}"),
            label: label("amount"),
            r#type: pb::FieldType::Number as i32,
            min: Some(0.0),
            max: Some(100_000.0),
            default_value: Some(pb::Value {
                kind: Some(pb::value::Kind::Number(1.0)),
            }),
            visible_when: when,
            ..Default::default()
        });
    }
    pb::FormSchema { fields }
}

fn definition(name: &str, approved: bool) -> pb::OfferingDefinition {
    let steps = if approved {
        Vec::new()
    } else {
        vec![pb::ApprovalStep {
            name: "owner".into(),
            approvers: Some(pb::Approvers {
                kind: pb::ApproverKind::People as i32,
                group_id: String::new(),
                subjects: vec!["bench-owner".into()],
            }),
            rule: pb::ApprovalRule::Any as i32,
            ..Default::default()
        }]
    };
    pb::OfferingDefinition {
        name: vec![pb::LocalizedText {
            locale: "en".into(),
            text: name.into(),
        }],
        category: "bench".into(),
        form: Some(form()),
        approval: Some(pb::ApprovalPolicy { steps }),
        fulfillment: Some(pb::FulfillmentPlan {
            stages: vec![pb::FulfillmentStage {
                tasks: vec![pb::TaskTemplate {
                    key: "do".into(),
                    name: "do it".into(),
                    group_id: "bench-team".into(),
                    automated: false,
                    automation: String::new(),
                }],
            }],
        }),
        target_fulfillment_minutes: 60,
        active: true,
        ..Default::default()
    }
}

/// Answers to the form: the even groups "custom" (their detail and amount shown and answered).
fn answers(n: u64) -> Vec<pb::Answer> {
    let mut answers = Vec::new();
    for group in 0..10 {
        let custom = (group + n).is_multiple_of(2);
        answers.push(pb::Answer {
            field: format!("kind_{group}"),
            value: Some(pb::Value {
                kind: Some(pb::value::Kind::Text(
                    if custom { "custom" } else { "basic" }.into(),
                )),
            }),
        });
        if custom {
            answers.push(pb::Answer {
                field: format!("detail_{group}"),
                value: Some(pb::Value {
                    kind: Some(pb::value::Kind::Text(format!("detail number {n}"))),
                }),
            });
            answers.push(pb::Answer {
                field: format!("amount_{group}"),
                value: Some(pb::Value {
                    kind: Some(pb::value::Kind::Number((n % 1000) as f64)),
                }),
            });
        }
    }
    answers
}

fn bearer(token: &str) -> anyhow::Result<tonic::metadata::MetadataValue<tonic::metadata::Ascii>> {
    Ok(format!("Bearer {token}").parse()?)
}

pub async fn run(args: CatalogArgs) -> anyhow::Result<()> {
    let nats = desk_testkit::NatsServer::start().await?;
    let cluster = desk_testkit::start_cluster(false).await?;
    let database_url = cluster.create_database("bench").await?;
    let launch = DeskLaunch::new("catalog", database_url, nats.url(), 48, "warn")?;
    let log_path = std::env::temp_dir().join("desk-bench-catalog.log");
    let mut desk = launch.spawn(&log_path)?;
    let admin = dev_token(
        &launch.secret,
        "bench-admin",
        "bench",
        &["catalog_admin"],
        3600,
    )?;
    let channel = Channel::from_shared(format!("http://{}", launch.addr))?;
    let deadline = Instant::now() + Duration::from_secs(60);
    let channel = loop {
        if let Ok(channel) = channel.clone().connect().await {
            break channel;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "desk did not come up in 60 s; see {}",
            log_path.display()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let mut client = CatalogServiceClient::new(channel.clone());
    let mut offerings = Vec::new();
    for (name, approved) in [("pre-approved", true), ("with approval", false)] {
        let mut request = tonic::Request::new(pb::CreateOfferingRequest {
            definition: Some(definition(name, approved)),
        });
        request
            .metadata_mut()
            .insert("authorization", bearer(&admin)?);
        let offering = loop {
            let mut attempt = tonic::Request::new(request.get_ref().clone());
            attempt
                .metadata_mut()
                .insert("authorization", bearer(&admin)?);
            match client.create_offering(attempt).await {
                Ok(reply) => break reply.into_inner().offering,
                Err(status)
                    if status.code() == tonic::Code::Unavailable && Instant::now() < deadline =>
                {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(status) => anyhow::bail!("creating the bench offering: {status}"),
            }
        };
        offerings.push(
            offering
                .map(|o| o.id)
                .ok_or_else(|| anyhow::anyhow!("no offering answered"))?,
        );
    }

    let full = phase(
        &channel,
        &launch.secret,
        &nats.url(),
        &offerings,
        args.concurrency,
        0.0,
        args.duration,
    )
    .await?;
    let half_rate = full["submissions_per_s"].as_f64().unwrap_or(0.0) / 2.0;
    let half = phase(
        &channel,
        &launch.secret,
        &nats.url(),
        &offerings,
        (args.concurrency / 2).max(1),
        half_rate,
        args.duration,
    )
    .await?;
    let _ = args.json;
    let report = json!({
        "suite": "catalog",
        "build_profile": if cfg!(debug_assertions) { "debug" } else { "release" },
        "form_fields": 30,
        "pre_approved_share": 0.5,
        "submissions_per_s": full["submissions_per_s"],
        "submit_p99_ms": full["p99_ms"],
        "ticket_lag_p99_ms": null,
        "ticket_lag_note": "the tickets service does not consume request.submitted yet",
        "floor_submissions_per_s": 500,
        "meets_submission_floor": full["submissions_per_s"].as_f64().unwrap_or(0.0) >= 500.0,
        "full_load": full,
        "half_load": half,
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    let _ = desk.start_kill();
    let _ = desk.wait().await;
    cluster.stop().await;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn phase(
    channel: &Channel,
    secret: &str,
    nats_url: &str,
    offerings: &[String],
    concurrency: usize,
    rate: f64,
    duration: Duration,
) -> anyhow::Result<serde_json::Value> {
    let nats = async_nats::connect(nats_url).await?;
    let mut events = nats.subscribe("desk.*.catalog.*.request.submitted").await?;
    let lag = Arc::new(Mutex::new(Histogram::<u64>::new(3)?));
    let delivered = Arc::new(AtomicU64::new(0));
    let (stop_events, mut stopped) = tokio::sync::oneshot::channel::<()>();
    let event_task = {
        let (lag, delivered) = (lag.clone(), delivered.clone());
        tokio::spawn(async move {
            loop {
                let message = tokio::select! {
                    message = events.next() => message,
                    _ = &mut stopped => break,
                };
                let Some(message) = message else { break };
                let received = chrono::Utc::now();
                // ce-time is the commit's time on the service's clock (the same machine here).
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
                    let _ = lag.lock().await.record(micros);
                }
                delivered.fetch_add(1, Ordering::Relaxed);
            }
        })
    };

    let latencies = Arc::new(Mutex::new(Histogram::<u64>::new(3)?));
    let submitted = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + duration;
    let per_worker_interval =
        (rate > 0.0).then(|| Duration::from_secs_f64(concurrency as f64 / rate));
    let mut workers = Vec::new();
    for worker in 0..concurrency {
        let mut client = CatalogServiceClient::new(channel.clone());
        let token = bearer(&dev_token(
            secret,
            &format!("bench-user-{worker}"),
            "bench",
            &["requester"],
            3600,
        )?)?;
        let offerings = offerings.to_vec();
        let (latencies, submitted, errors) = (latencies.clone(), submitted.clone(), errors.clone());
        workers.push(tokio::spawn(async move {
            let mut local = Histogram::<u64>::new(3).ok();
            let mut next = Instant::now();
            let mut n = worker as u64;
            while Instant::now() < deadline {
                if let Some(interval) = per_worker_interval {
                    tokio::time::sleep_until(next.into()).await;
                    next += interval;
                }
                n += concurrency as u64;
                let mut request = tonic::Request::new(pb::SubmitRequestRequest {
                    offering_id: offerings[(n % 2) as usize].clone(),
                    offering_version: 0,
                    answers: answers(n),
                    idempotency_key: String::new(),
                });
                request
                    .metadata_mut()
                    .insert("authorization", token.clone());
                let call = Instant::now();
                match client.submit_request(request).await {
                    Ok(_) => {
                        if let Some(local) = local.as_mut() {
                            let _ = local.record(call.elapsed().as_micros() as u64);
                        }
                        submitted.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(_) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            if let Some(local) = local {
                let _ = latencies.lock().await.add(&local);
            }
        }));
    }
    for worker in workers {
        worker.await?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let submitted = submitted.load(Ordering::Relaxed);
    let drain_deadline = Instant::now() + Duration::from_secs(15);
    while delivered.load(Ordering::Relaxed) < submitted && Instant::now() < drain_deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = stop_events.send(());
    let _ = event_task.await;
    let latencies = latencies.lock().await;
    let lag = lag.lock().await;
    let ms = |h: &Histogram<u64>, q: f64| {
        (h.value_at_quantile(q) as f64 / 1000.0 * 100.0).round() / 100.0
    };
    Ok(json!({
        "concurrency": concurrency,
        "target_rate_per_s": if rate > 0.0 { json!(rate.round()) } else { json!(null) },
        "duration_s": (elapsed * 10.0).round() / 10.0,
        "submissions": submitted,
        "errors": errors.load(Ordering::Relaxed),
        "submissions_per_s": (submitted as f64 / elapsed).round(),
        "p50_ms": ms(&latencies, 0.50),
        "p99_ms": ms(&latencies, 0.99),
        "submitted_event_lag_p50_ms": ms(&lag, 0.50),
        "submitted_event_lag_p99_ms": ms(&lag, 0.99),
        "events_seen": delivered.load(Ordering::Relaxed),
    }))
}
