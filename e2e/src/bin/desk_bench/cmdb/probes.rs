//! What the suite reads beside its calls: counts and maintenance through `psql`, the outbox
//! drain and the settling of the database before impact is timed, the CPU seconds of this
//! process, the desk and PostgreSQL, and the warnings in the desk's log.

use std::{
    path::Path,
    time::{Duration, Instant},
};

use super::{
    TENANT,
    report::{Errors, truncate},
};
use crate::{pid_cpu_seconds, process_cpu_seconds};

/// CPU seconds used so far by this process (the client), the desk and PostgreSQL.
pub(super) struct CpuSeconds {
    pub(super) client: f64,
    pub(super) desk: f64,
    pub(super) postgres: f64,
}

impl CpuSeconds {
    /// Read now: the desk by its pid, PostgreSQL by its postmaster's.
    pub(super) fn now(desk_pid: Option<&str>, postmaster: Option<&str>) -> Self {
        Self {
            client: process_cpu_seconds(),
            desk: desk_pid.map_or(0.0, |p| pid_cpu_seconds(p, false)),
            postgres: postgres_cpu_seconds(postmaster),
        }
    }
}

/// How many lines of a log are at WARN or ERROR level.
pub(super) fn log_problems(log: &Path) -> (usize, Vec<String>) {
    let Ok(text) = std::fs::read_to_string(log) else {
        return (0, Vec::new());
    };
    let mut samples = Vec::new();
    let mut count = 0;
    for line in text.lines() {
        let level = serde_json::from_str::<serde_json::Value>(line)
            .ok()
            .and_then(|entry| {
                entry
                    .get("level")
                    .and_then(|l| l.as_str().map(str::to_owned))
            });
        if matches!(level.as_deref(), Some("WARN" | "ERROR")) {
            count += 1;
            if samples.len() < 3 {
                samples.push(truncate(line));
            }
        }
    }
    (count, samples)
}

/// The postmaster's pid, from its data directory.
pub(super) fn postmaster_pid(cluster: &desk_testkit::PgCluster) -> Option<String> {
    let dir = cluster.dir()?;
    let text = std::fs::read_to_string(dir.join("data").join("postmaster.pid")).ok()?;
    text.lines().next().map(|line| line.trim().to_owned())
}

/// CPU seconds of the postmaster, its reaped backends and its live children.
fn postgres_cpu_seconds(postmaster: Option<&str>) -> f64 {
    let Some(postmaster) = postmaster else {
        return 0.0;
    };
    let mut total = pid_cpu_seconds(postmaster, true);
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(pid) = name
                .to_str()
                .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
            else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            let parent = stat
                .rsplit(')')
                .next()
                .and_then(|rest| rest.split_whitespace().nth(1));
            if parent == Some(postmaster) {
                total += pid_cpu_seconds(pid, false);
            }
        }
    }
    total
}

async fn psql_count(database_url: &str, sql: &str) -> Option<u64> {
    let psql = desk_testkit::psql_binary().ok()?;
    let output = tokio::process::Command::new(psql)
        .arg(database_url)
        .args(["-At", "-c", sql])
        .output()
        .await
        .ok()?;
    String::from_utf8_lossy(&output.stdout).trim().parse().ok()
}

/// The outbox after the import, and the database made ready for the impact calls.
pub(super) struct Settled {
    pub(super) outbox_unpublished: Option<u64>,
    pub(super) outbox_drain_s: f64,
    pub(super) outbox_largest_unpublished: Option<u64>,
    pub(super) events_stored: Option<u64>,
    pub(super) vacuum_s: f64,
    pub(super) checkpoint_s: f64,
}

/// Waits (at most 300 s) until the relay has published every import event, then runs
/// `VACUUM (ANALYZE)` and a `CHECKPOINT`.
pub(super) async fn settle(database_url: &str, errors: &mut Errors) -> Settled {
    // Impact queries touch neither: they are measured once the relay has published every
    // import event and autovacuum has nothing left to do, so they do not share the two cores
    // with that work. How long the drain took is reported.
    let drain_started = Instant::now();
    let drain_deadline = drain_started + Duration::from_secs(300);
    let unpublished_sql = "SELECT count(*) FROM cmdb_outbox WHERE published_at IS NULL";
    let mut outbox_unpublished = psql_count(database_url, unpublished_sql).await;
    while outbox_unpublished.is_some_and(|n| n > 0) && Instant::now() < drain_deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        outbox_unpublished = psql_count(database_url, unpublished_sql).await;
    }
    let outbox_drain_s = drain_started.elapsed().as_secs_f64();
    let outbox_largest_unpublished = psql_count(
        database_url,
        "SELECT coalesce(max(length(payload)), 0) FROM cmdb_outbox WHERE published_at IS NULL",
    )
    .await;
    if let Some(unpublished) = outbox_unpublished.filter(|n| *n > 0) {
        errors.add(format!(
            "{unpublished} events still unpublished in cmdb_outbox 300 s after the last write \
             (largest pending payload {} bytes)",
            outbox_largest_unpublished.unwrap_or(0)
        ));
    }
    let events_stored = psql_count(database_url, "SELECT count(*) FROM cmdb_outbox").await;
    let vacuum_started = Instant::now();
    let _ = psql_count(database_url, "VACUUM (ANALYZE)").await;
    let vacuum_s = vacuum_started.elapsed().as_secs_f64();
    // PostgreSQL shares the two cores with the desk and this client: without a checkpoint now its
    // background writer and checkpointer flush the import in bursts of tens of milliseconds
    // while the impact calls (which never touch the database) are timed.
    let checkpoint_started = Instant::now();
    let _ = psql_count(database_url, "CHECKPOINT").await;
    let checkpoint_s = checkpoint_started.elapsed().as_secs_f64();
    Settled {
        outbox_unpublished,
        outbox_drain_s,
        outbox_largest_unpublished,
        events_stored,
        vacuum_s,
        checkpoint_s,
    }
}

/// The CIs and the live relationships the database holds for the bench tenant at the end.
pub(super) async fn stored_counts(database_url: &str) -> (Option<u64>, Option<u64>) {
    let stored_cis = psql_count(
        database_url,
        &format!("SELECT count(*) FROM cis WHERE tenant_id = '{TENANT}'"),
    )
    .await;
    let stored_relations = psql_count(
        database_url,
        &format!(
            "SELECT count(*) FROM ci_relationships WHERE tenant_id = '{TENANT}' AND removed_at IS NULL"
        ),
    )
    .await;
    (stored_cis, stored_relations)
}
