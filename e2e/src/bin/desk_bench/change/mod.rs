//! `desk-bench change --json`: the conflict check of a proposed window against 10,000 scheduled
//! changes on the 100,000-CI estate of `desk-bench cmdb` (the same generator and seed), across
//! the whole closure.
//!
//! Two measurements of the same kind of check, in one JSON object:
//! - [`through_api`] (the figure the floor is about, `conflict_check_*`): nats-server, a
//!   throwaway PostgreSQL with synchronous commit on and `desk serve --target cmdb,change`; the
//!   estate is imported into the CMDB, the change service learns it from the CMDB's events, the
//!   scheduled changes are booked through `CreateChange`/`SubmitChange`/`ScheduleChange`, and
//!   each check is a `CheckConflicts` call with a JWT, `whole_closure` set;
//! - [`in_process`] (`in_process_conflict_check_*`): the change service's `find_conflicts` on
//!   the same estate in this process, without the database read or the wire, to tell the walk
//!   from the rest. `--in-process-only` runs only this (seconds instead of minutes).

mod in_process;
mod through_api;

use clap::Parser;

use crate::cmdb::estate;

#[derive(Debug, Parser, Clone)]
pub struct ChangeArgs {
    /// Configuration items of the generated estate.
    #[arg(long, default_value_t = 100_000)]
    cis: usize,
    /// Relationships of the generated estate.
    #[arg(long, default_value_t = 400_000)]
    relations: usize,
    /// Share of random cross-links (as in `desk-bench cmdb`).
    #[arg(long, default_value_t = 0.0005)]
    cross_links: f64,
    /// Scheduled changes the proposals are checked against.
    #[arg(long, default_value_t = 10_000)]
    scheduled: usize,
    /// Conflict checks timed (each way).
    #[arg(long, default_value_t = 500)]
    checks: usize,
    /// Booking calls in flight while the scheduled changes are created.
    #[arg(long, default_value_t = 16)]
    booking_concurrency: usize,
    #[arg(long, default_value_t = 20_240_601)]
    seed: u64,
    /// Only the in-process measurement: no desk, PostgreSQL or NATS.
    #[arg(long)]
    in_process_only: bool,
    /// Print JSON (the only output; kept for symmetry with the other suites).
    #[arg(long)]
    json: bool,
}

/// The floor of the issue: a whole-closure check answers within this, at the 99th percentile.
const FLOOR_P99_MS: f64 = 50.0;

pub async fn run(args: ChangeArgs) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let estate = estate::generate(args.cis, args.relations, args.cross_links, args.seed);
    let mut report = serde_json::Map::new();
    report.insert("suite".into(), "change".into());
    report.insert(
        "build_profile".into(),
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
        .into(),
    );
    report.insert("cis".into(), estate.items.len().into());
    report.insert("relationships".into(), estate.relations.len().into());
    report.insert("scheduled_changes".into(), args.scheduled.into());
    report.insert("checks".into(), args.checks.into());
    report.insert("depth".into(), "whole_closure".into());
    report.extend(in_process::measure(&args, &estate)?);
    if !args.in_process_only {
        report.extend(through_api::measure(&args, &estate).await?);
        let p99 = report
            .get("conflict_check_p99_ms")
            .and_then(serde_json::Value::as_f64);
        report.insert("floor_p99_ms".into(), FLOOR_P99_MS.into());
        report.insert(
            "meets_floor".into(),
            p99.is_some_and(|p99| p99 <= FLOOR_P99_MS).into(),
        );
    }
    report.insert("run_s".into(), started.elapsed().as_secs_f64().into());
    let _ = args.json;
    println!(
        "{}",
        serde_json::to_string_pretty(&serde_json::Value::Object(report))?
    );
    Ok(())
}
