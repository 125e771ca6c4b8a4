//! Health per upstream, reported through the gateway's own gRPC health service: each public
//! gRPC service under its own name (`desk.tickets.v1.TicketService`) and each peer region as
//! `peer.<region>`. A name is SERVING while the upstream's own health check says so and its
//! circuit is closed; an opening circuit is reported at once, without waiting for the next
//! check. The overall status (`""`) is the gateway's own: an upstream's absence must not get
//! the gateway's pods restarted.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use tokio_util::sync::CancellationToken;
use tonic_health::{
    ServingStatus,
    pb::{HealthCheckRequest, health_check_response, health_client::HealthClient},
    server::HealthReporter,
};

use super::Upstream;

/// The longest one health check may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// Checks `upstream` every `interval` and keeps its names in `health` up to date until
/// `shutdown`.
pub async fn report(
    upstream: Arc<Upstream>,
    health: HealthReporter,
    interval: Duration,
    shutdown: CancellationToken,
) {
    let mut circuit = upstream.watch_circuit();
    let mut ticker = tokio::time::interval(interval.max(Duration::from_millis(10)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut checked = vec![false; upstream.health_names.len()];
    let mut reported: Vec<Option<ServingStatus>> = vec![None; upstream.health_names.len()];
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticker.tick() => {
                checked = check(&upstream).await;
                if checked.iter().all(|serving| *serving) {
                    upstream.record_healthy_probe(Instant::now());
                }
            }
            changed = circuit.changed() => {
                if changed.is_err() {
                    return;
                }
            }
        }
        let open = *circuit.borrow_and_update();
        for (index, (_, reported_name)) in upstream.health_names.iter().enumerate() {
            let status = if checked[index] && !open {
                ServingStatus::Serving
            } else {
                ServingStatus::NotServing
            };
            // Only changes: a watcher of the gateway's health sees each change once.
            if reported[index] != Some(status) {
                if status == ServingStatus::NotServing {
                    tracing::warn!(upstream = %upstream.label, name = %reported_name, circuit_open = open, "upstream not serving");
                }
                health.set_service_status(reported_name, status).await;
                reported[index] = Some(status);
            }
        }
    }
}

/// Whether the upstream says SERVING for each of its names.
async fn check(upstream: &Upstream) -> Vec<bool> {
    let mut client = HealthClient::new(upstream.channel());
    let mut serving = Vec::with_capacity(upstream.health_names.len());
    for (checked_name, _) in &upstream.health_names {
        let request = HealthCheckRequest {
            service: checked_name.clone(),
        };
        let answer = tokio::time::timeout(CHECK_TIMEOUT, client.check(request)).await;
        serving.push(matches!(
            answer,
            Ok(Ok(response))
                if response.get_ref().status() == health_check_response::ServingStatus::Serving
        ));
    }
    serving
}
