//! The worker that fires approval reminders and expiry: every request keeps its next timer in
//! `catalog_requests.timer_at`; the worker reads the due ones on the service's clock, lets the
//! domain fire them and writes each request with its events through [`CatalogApi::modify`].
//!
//! Several replicas may run it: each write names the version it read, so of two replicas firing
//! the same timer one writes and the other finds the request changed and moves on.

use std::time::Duration;

use desk_proto::common::v1 as common;
use tokio_util::sync::CancellationToken;

use crate::api::{ApiFailure, CatalogApi};

/// How often the worker looks for due timers (real time; "due" is read on the service's clock).
pub const POLL: Duration = Duration::from_millis(500);
/// The most requests one round fires.
const BATCH: u64 = 200;

/// The actor of what the timers do.
pub fn actor() -> common::Actor {
    common::Actor {
        subject: crate::SERVICE.to_owned(),
        name: "approval timers".to_owned(),
        roles: vec!["service".to_owned()],
    }
}

/// Fires every timer due now; returns how many requests changed.
pub async fn fire_due(api: &CatalogApi) -> Result<usize, ApiFailure> {
    let now = api.clock_now();
    let due = api.store().due(now, BATCH).await?;
    let mut fired = 0;
    for (tenant, id) in due {
        let result = api
            .modify_and_commit(&tenant, id, &actor(), |request, offering, resolved| {
                Ok(request.fire_timers(
                    &offering.definition.approval,
                    &|approvers| resolved.get(approvers),
                    now,
                ))
            })
            .await;
        match result {
            Ok(_) => fired += 1,
            Err(ApiFailure::Stale(_)) => {}
            Err(error) => {
                tracing::warn!(error = %error, request.id = %id, "approval timer failed");
            }
        }
    }
    Ok(fired)
}

pub async fn run(api: CatalogApi, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.cancelled() => return,
        }
        if let Err(error) = fire_due(&api).await {
            tracing::warn!(error = %error, "approval timers failed");
        }
    }
}
