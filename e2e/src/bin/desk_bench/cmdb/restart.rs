//! The restart phase: the desk stopped with SIGTERM and started again on the same database and
//! NATS; how long it took to stop, to rebuild its impact index (from its `impact index rebuilt`
//! log line) and to answer `ListClasses`, then the full closures timed again on the rebuilt index,
//! which must answer as the live one did.

use std::{
    path::Path,
    time::{Duration, Instant},
};

use tonic::metadata::{Ascii, MetadataValue};

use super::{
    client::{request, wait_ready},
    impact::{Explain, ImpactStats, UP, impact_request},
    probes::log_problems,
    report::{Errors, truncate},
};
use crate::{DeskLaunch, pid_cpu_seconds};

/// The `seconds` of the last `impact index rebuilt` line of a JSON log.
fn rebuild_seconds(log: &Path) -> Option<f64> {
    let text = std::fs::read_to_string(log).ok()?;
    text.lines()
        .rev()
        .filter(|line| line.contains("impact index rebuilt"))
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter_map(|entry| {
            entry
                .get("seconds")
                .or_else(|| entry.get("fields").and_then(|f| f.get("seconds")))
                .and_then(serde_json::Value::as_f64)
        })
        .next()
}

/// What the restart took, and what the restarted desk answered.
pub(super) struct Restarted {
    pub(super) shutdown_s: f64,
    /// WARN and ERROR lines in the first run's log, and a few of them.
    pub(super) log_warnings: usize,
    pub(super) log_samples: Vec<String>,
    pub(super) restart_to_ready_s: f64,
    pub(super) index_rebuild_s: Option<f64>,
    pub(super) after_restart: ImpactStats,
    pub(super) restart_mismatches: usize,
    pub(super) desk_cpu_after_restart: f64,
}

/// Stops `desk` (its log is `log`), starts it again from `launch`, times the full closures
/// upstream from `starts` on the rebuilt index and checks the closures of `visited_before`.
/// Returns the desk as started again: the caller stops it.
pub(super) async fn measure(
    mut desk: tokio::process::Child,
    launch: &DeskLaunch,
    token: &MetadataValue<Ascii>,
    log: &Path,
    starts: &[&str],
    visited_before: &[(String, u32)],
    errors: &mut Errors,
) -> anyhow::Result<(tokio::process::Child, Restarted)> {
    let restart_log = std::env::temp_dir().join("desk-bench-cmdb-restart.log");
    // ---- restart: SIGTERM, wait, start again on the same database and NATS ----
    let stop_started = Instant::now();
    if let Some(pid) = desk.id() {
        desk_testkit::send_signal(pid, "TERM");
    }
    match tokio::time::timeout(Duration::from_secs(60), desk.wait()).await {
        Ok(_) => {}
        Err(_) => {
            errors.add("desk did not stop within 60 s of SIGTERM; killed");
            let _ = desk.start_kill();
            let _ = desk.wait().await;
        }
    }
    let shutdown_s = stop_started.elapsed().as_secs_f64();
    let (log_warnings, log_samples) = log_problems(log);
    let restart_started = Instant::now();
    let desk = launch.spawn(&restart_log)?;
    let mut restarted =
        wait_ready(launch.addr, token, &restart_log, Duration::from_secs(600)).await?;
    let restart_to_ready_s = restart_started.elapsed().as_secs_f64();
    let index_rebuild_s = rebuild_seconds(&restart_log);
    if index_rebuild_s.is_none() {
        errors.add(format!(
            "no \"impact index rebuilt\" line in {}",
            restart_log.display()
        ));
    }
    // The same full closures from the index rebuilt at start (packed in one go, where the live
    // one was packed again and again while the import went on).
    let mut after_restart = ImpactStats::new()?;
    for start in starts {
        let call = Instant::now();
        if let Ok(response) = restarted
            .analyze_impact(request(impact_request(start, UP, 0, Explain::Via), token))
            .await
        {
            after_restart.record(call.elapsed().as_micros() as u64, response.get_ref());
        }
    }
    // The rebuilt index must answer as the live one did.
    let mut restart_mismatches = 0;
    for (start, visited) in visited_before {
        match restarted
            .analyze_impact(request(impact_request(start, UP, 0, Explain::Via), token))
            .await
        {
            Ok(response) if response.get_ref().visited == *visited => {}
            Ok(response) => {
                restart_mismatches += 1;
                errors.add(format!(
                    "after the restart, the closure from {start} visits {} CIs, not {visited}",
                    response.get_ref().visited
                ));
            }
            Err(status) => {
                restart_mismatches += 1;
                errors.add(format!(
                    "after the restart, AnalyzeImpact from {start} failed: {:?} {}",
                    status.code(),
                    truncate(status.message())
                ));
            }
        }
    }
    let desk_cpu_after_restart = desk
        .id()
        .map_or(0.0, |p| pid_cpu_seconds(&p.to_string(), false));
    Ok((
        desk,
        Restarted {
            shutdown_s,
            log_warnings,
            log_samples,
            restart_to_ready_s,
            index_rebuild_s,
            after_restart,
            restart_mismatches,
            desk_cpu_after_restart,
        },
    ))
}
