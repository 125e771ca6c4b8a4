//! The conflict check as a client sees it: `CheckConflicts` through gRPC with a JWT against
//! `desk serve --target cmdb,change` on PostgreSQL, after the estate was imported into the CMDB
//! and the change service learnt it from the CMDB's events.
//!
//! 1. nats-server, a throwaway PostgreSQL (synchronous commit on), the desk;
//! 2. the estate through the CMDB's import API, as `desk-bench cmdb` loads it
//!    ([`crate::cmdb::load_estate`]), then until the change service's durable projection consumer
//!    has nothing pending and its in-memory graph knows the last CIs imported;
//! 3. `--scheduled` standard changes from one template, each on one to three random CIs with a
//!    window of one to eight hours in the next 28 days and one of 200 implementers, booked through
//!    `CreateChange`, `SubmitChange` and `ScheduleChange` at `--booking-concurrency`;
//! 4. after 20 untimed calls, `--checks` sequential `CheckConflicts` calls for random proposals
//!    (one or two CIs of the lower layers, a window of two to six hours, an implementer) across
//!    the whole closure, each timed from send to decoded answer.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use desk_proto::change::v1::{self as pb, change_service_client::ChangeServiceClient};
use futures::{StreamExt as _, stream};
use hdrhistogram::Histogram;
use tonic::{
    Code, Request,
    metadata::{Ascii, MetadataValue},
    transport::Channel,
};

use super::ChangeArgs;
use crate::{
    DeskLaunch,
    cmdb::{
        self,
        estate::{Estate, Rng},
    },
    dev_token,
};

const TENANT: &str = "bench";
/// The durable consumer that writes the change service's CMDB projection
/// (`desk_change::events::projection::DURABLE`).
const PROJECTION_CONSUMER: &str = desk_change::events::projection::DURABLE;
/// Implementers the booked changes and the proposals are spread over.
const IMPLEMENTERS: usize = 200;

type Client = ChangeServiceClient<Channel>;

fn request<T>(message: T, token: &MetadataValue<Ascii>) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", token.clone());
    request
}

fn timestamp(time: DateTime<Utc>) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp {
        seconds: time.timestamp(),
        nanos: 0,
    })
}

/// A window of `hours.0..=hours.1` hours starting within 28 days of `base` (inside a standard
/// change's 30 days of pre-approval).
fn window(rng: &mut Rng, base: DateTime<Utc>, hours: (usize, usize)) -> pb::Window {
    let start = base + chrono::Duration::minutes(rng.below(28 * 24 * 60) as i64);
    let length = chrono::Duration::hours((hours.0 + rng.below(hours.1 - hours.0 + 1)) as i64);
    pb::Window {
        start_time: timestamp(start),
        end_time: timestamp(start + length),
        time_zone: "UTC".into(),
    }
}

pub(super) async fn measure(
    args: &ChangeArgs,
    estate: &Estate,
) -> anyhow::Result<serde_json::Map<String, serde_json::Value>> {
    let nats = desk_testkit::NatsServer::start().await?;
    let cluster = desk_testkit::start_cluster(false).await?;
    let database_url = cluster.create_database("bench").await?;
    let launch = DeskLaunch::new("cmdb,change", database_url.clone(), nats.url(), 48, "warn")?;
    let token: MetadataValue<Ascii> = format!(
        "Bearer {}",
        dev_token(
            &launch.secret,
            "bench-planner",
            TENANT,
            &["integrator", "change_manager"],
            24 * 3600
        )?
    )
    .parse()?;
    let log = std::env::temp_dir().join("desk-bench-change.log");
    let mut desk = launch.spawn(&log)?;
    let outcome = measure_on(args, estate, &launch, &token, &log, &database_url, &nats).await;
    let _ = desk.start_kill();
    let _ = desk.wait().await;
    cluster.stop().await;
    drop(nats);
    outcome
}

async fn measure_on(
    args: &ChangeArgs,
    estate: &Estate,
    launch: &DeskLaunch,
    token: &MetadataValue<Ascii>,
    log: &std::path::Path,
    database_url: &str,
    nats: &desk_testkit::NatsServer,
) -> anyhow::Result<serde_json::Map<String, serde_json::Value>> {
    // ---- the estate, into the CMDB and on into the change service ----
    let loaded = cmdb::load_estate(estate, launch.addr, token, log, database_url).await?;
    eprintln!(
        "desk-bench change: imported {} CIs and {} relationships in {:.1} s",
        loaded.cis_created, loaded.relations_created, loaded.load_s
    );
    let channel = Channel::from_shared(format!("http://{}", launch.addr))?
        .connect()
        .await?;
    let client = ChangeServiceClient::new(channel);
    let projected = Instant::now();
    wait_for_projection(nats, &client, token, &loaded.ids).await?;
    let projection_catch_up_s = projected.elapsed().as_secs_f64();
    eprintln!(
        "desk-bench change: the change service knows the estate ({projection_catch_up_s:.1} s after the import)"
    );

    // ---- the scheduled changes ----
    let all: Vec<String> = loaded.ids.iter().flatten().cloned().collect();
    let lower: Vec<String> = loaded
        .ids
        .iter()
        .enumerate()
        .filter(|(index, id)| id.is_some() && estate.layer_of[*index].is_lower())
        .filter_map(|(_, id)| id.clone())
        .collect();
    anyhow::ensure!(
        !all.is_empty() && !lower.is_empty(),
        "no CI was imported; see {}",
        log.display()
    );
    let base = Utc::now() + chrono::Duration::hours(1);
    let booking = Instant::now();
    let (booked, booking_errors) = book(args, &client, token, &all, base).await?;
    let booking_s = booking.elapsed().as_secs_f64();
    eprintln!("desk-bench change: booked {booked} changes in {booking_s:.1} s");

    // ---- the checks ----
    let mut rng = Rng::new(args.seed ^ 0x0A91_C4EC);
    let proposal = |rng: &mut Rng| pb::CheckConflictsRequest {
        affected_ci_ids: (0..1 + rng.below(2))
            .map(|_| lower[rng.below(lower.len())].clone())
            .collect(),
        window: Some(window(rng, base, (2, 6))),
        implementer_id: format!("implementer-{}", rng.below(IMPLEMENTERS)),
        whole_closure: true,
        ..Default::default()
    };
    let mut client = client;
    for _ in 0..20 {
        let _ = client
            .check_conflicts(request(proposal(&mut rng), token))
            .await;
    }
    let mut histogram = Histogram::<u64>::new(3)?;
    let (mut conflicts_found, mut check_errors) = (0usize, 0u64);
    let mut error_sample = None;
    for _ in 0..args.checks {
        let message = proposal(&mut rng);
        let timer = Instant::now();
        match client.check_conflicts(request(message, token)).await {
            Ok(answer) => {
                histogram.record(timer.elapsed().as_micros().max(1) as u64)?;
                conflicts_found += answer.into_inner().conflicts.len();
            }
            Err(status) => {
                check_errors += 1;
                error_sample.get_or_insert_with(|| status.to_string());
            }
        }
    }
    let ms = |quantile: f64| histogram.value_at_quantile(quantile) as f64 / 1000.0;
    let answered = histogram.len().max(1) as f64;
    let report = serde_json::json!({
        "scope": "check_conflicts_through_grpc_postgresql",
        "cis_imported": loaded.cis_created,
        "relationships_imported": loaded.relations_created,
        "estate_load_s": loaded.load_s,
        "import_errors": loaded.errors,
        "import_error_samples": loaded.error_samples,
        "projection_catch_up_s": projection_catch_up_s,
        "changes_booked": booked,
        "booking_s": booking_s,
        "booking_errors": booking_errors.0,
        "booking_error_sample": booking_errors.1,
        "conflict_check_p50_ms": ms(0.50),
        "conflict_check_p99_ms": ms(0.99),
        "conflict_check_max_ms": histogram.max() as f64 / 1000.0,
        "conflicts_found_avg": conflicts_found as f64 / answered,
        "check_errors": check_errors,
        "check_error_sample": error_sample,
    });
    Ok(report.as_object().cloned().unwrap_or_default())
}

/// Waits (at most ten minutes) until the durable projection consumer has applied every CMDB
/// event and the in-memory graph of the desk's replica knows the last CIs imported.
async fn wait_for_projection(
    nats: &desk_testkit::NatsServer,
    client: &Client,
    token: &MetadataValue<Ascii>,
    ids: &[Option<String>],
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(600);
    let jetstream = async_nats::jetstream::new(async_nats::connect(nats.url()).await?);
    let stream = jetstream
        .get_stream("DESK_BENCH_CMDB")
        .await
        .context("the CMDB's stream")?;
    loop {
        let pending = match stream.consumer_info(PROJECTION_CONSUMER).await {
            Ok(info) => info.num_pending + info.num_ack_pending as u64,
            Err(_) => u64::MAX,
        };
        if pending == 0 {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the change service's projection consumer still had {pending} events pending after ten minutes"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // The follower of the replica's memory reads the same stream: an unknown CI is refused with
    // INVALID_ARGUMENT until it has arrived.
    let last: Vec<String> = ids.iter().rev().flatten().take(50).cloned().collect();
    let start = Utc::now() + chrono::Duration::days(400);
    let probe = pb::CheckConflictsRequest {
        affected_ci_ids: last,
        window: Some(pb::Window {
            start_time: timestamp(start),
            end_time: timestamp(start + chrono::Duration::hours(1)),
            time_zone: "UTC".into(),
        }),
        ..Default::default()
    };
    let mut client = client.clone();
    loop {
        match client.check_conflicts(request(probe.clone(), token)).await {
            Ok(_) => return Ok(()),
            Err(status) if status.code() == Code::InvalidArgument && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(status) => anyhow::bail!("the change service does not know the estate: {status}"),
        }
    }
}

/// Books `args.scheduled` standard changes; returns how many were scheduled and the errors
/// (count and a sample).
async fn book(
    args: &ChangeArgs,
    client: &Client,
    token: &MetadataValue<Ascii>,
    cis: &[String],
    base: DateTime<Utc>,
) -> anyhow::Result<(usize, (u64, Option<String>))> {
    let template = client
        .clone()
        .create_template(request(
            pb::CreateTemplateRequest {
                template: Some(pb::ChangeTemplate {
                    name: "Patch a node".into(),
                    summary: "Apply the monthly patches to a node".into(),
                    implementation_plan: "Drain, patch, reboot, check health, undrain.".into(),
                    backout_plan: "Boot the previous kernel; undrain.".into(),
                    test_plan: "Health checks pass.".into(),
                    duration_minutes: 60,
                    ..Default::default()
                }),
            },
            token,
        ))
        .await?
        .into_inner()
        .template
        .context("CreateTemplate answered no template")?;
    let mut rng = Rng::new(args.seed ^ 0x0B00_C4ED);
    let requests: Vec<pb::CreateChangeRequest> = (0..args.scheduled)
        .map(|n| pb::CreateChangeRequest {
            r#type: pb::ChangeType::Standard as i32,
            template_id: template.id.clone(),
            affected_ci_ids: (0..1 + rng.below(3))
                .map(|_| cis[rng.below(cis.len())].clone())
                .collect(),
            planned_window: Some(window(&mut rng, base, (1, 8))),
            implementer_id: format!("implementer-{}", rng.below(IMPLEMENTERS)),
            idempotency_key: format!("bench-change-{n}"),
            ..Default::default()
        })
        .collect();
    let errors = Arc::new(std::sync::Mutex::new((0u64, None::<String>)));
    let booked = stream::iter(requests)
        .map(|message| {
            let mut client = client.clone();
            let errors = errors.clone();
            async move {
                let outcome = book_one(&mut client, token, message).await;
                if let Err(error) = &outcome
                    && let Ok(mut errors) = errors.lock()
                {
                    errors.0 += 1;
                    errors.1.get_or_insert_with(|| error.to_string());
                }
                outcome.is_ok()
            }
        })
        .buffer_unordered(args.booking_concurrency.max(1))
        .filter(|scheduled| std::future::ready(*scheduled))
        .count()
        .await;
    let errors = errors.lock().map(|e| e.clone()).unwrap_or_default();
    Ok((booked, errors))
}

async fn book_one(
    client: &mut Client,
    token: &MetadataValue<Ascii>,
    message: pb::CreateChangeRequest,
) -> anyhow::Result<()> {
    let change = client
        .create_change(request(message, token))
        .await?
        .into_inner()
        .change
        .context("no change")?;
    let change = client
        .submit_change(request(
            pb::SubmitChangeRequest {
                id: change.id,
                expected_version: change.version,
            },
            token,
        ))
        .await?
        .into_inner()
        .change
        .context("no change")?;
    client
        .schedule_change(request(
            pb::ScheduleChangeRequest {
                id: change.id,
                expected_version: change.version,
                window: None,
            },
            token,
        ))
        .await?;
    Ok(())
}
