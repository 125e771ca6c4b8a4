//! `desk-bench cmdb --cis 100000 --relations 500000 --json`: the CMDB at estate scale.
//!
//! Starts nats-server, a throwaway PostgreSQL with synchronous commit on and
//! `desk serve --target cmdb`, then:
//!
//! 1. generates a layered estate deterministically from `--seed` — business services, application
//!    services, applications, databases, virtual machines, servers and network devices, every
//!    one identifiable by the first rule of its class (serial number, cloud resource id, URL,
//!    unique name) — and relationships that mostly point down the layers (`provides`,
//!    `depends_on`, `runs_on`, `connects_to`), plus a few random cross-links that may close
//!    cycles; `runs_on` is given at most once per source;
//! 2. loads it through the import API as a discovery source would: `StageImport` then
//!    `CommitImport`, CIs first (batches of at most 10,000 items), then relationships between the
//!    committed CIs by id (batches of at most 20,000), every request kept under the CMDB's gRPC
//!    message limit;
//! 3. runs `VACUUM (ANALYZE)` and a `CHECKPOINT`, makes 50 untimed impact calls of each kind
//!    (the first calls after a load page in the index and the buffers), then times
//!    `AnalyzeImpact` upstream from random CIs of the lower layers, interleaved: the full
//!    closure (`max_depth` 0, the service maximum) and depth 3, both explained compactly
//!    (`include_via`; `impact_full_*` and `impact_depth3_*`), depth 3 with whole paths
//!    (`impact_depth3_paths_*`), and on a tenth of the starts the full closure with whole paths
//!    (`impact_full_paths_*`), and downstream the full closure from random CIs of the upper
//!    layers (`impact_full_downstream_*`), and the full closure upstream in the SUMMARY view
//!    (`impact_full_summary_*`: business services and counts only); then a one-CI answer
//!    (`impact_floor_*`: what a call itself
//!    costs); then the desk's share of the same queries in this process (`*_in_process_*`:
//!    walk, answer building, encoding, and a client's decoding), to tell it apart from transport;
//! 4. stops the desk with SIGTERM, starts it again on the same database and NATS, and reports how
//!    long the impact index rebuild took (from the desk's `impact index rebuilt` log line) and
//!    how long until a `ListClasses` call succeeded.
//!
//! Prints one JSON object. Nothing is asserted: numbers are reported.
//!
//! The client runs on one thread (`main` builds a current-thread runtime for this command): the
//! calls are sequential, and on a two-core machine a multi-threaded client put two more threads
//! in the desk's way and a cross-thread hand-off into every call (depth-3 p50 0.42 → 0.27 ms and
//! full-closure p99 16–22 → 10–19 ms when it went). The desk inherits this process's
//! environment, so `TOKIO_WORKER_THREADS=N desk-bench cmdb …` sets the desk's worker threads
//! (one and two gave the same impact latencies on two cores, within the noise between runs).
//!
//! # Layout
//! - this file: the command's arguments and [`run`], which goes through the phases in order;
//! - [`estate`]: step 1, the generated estate (pure, deterministic from `--seed`);
//! - [`client`]: the gRPC client of the CMDB and the wait for a started desk;
//! - [`import`]: step 2, batches staged and committed, split in half on a timeout;
//! - [`probes`]: what is read beside the calls (psql, CPU seconds, the desk's log), and the
//!   outbox drain, `VACUUM` and `CHECKPOINT` of step 3;
//! - [`impact`]: step 3, the start CIs and the timed `AnalyzeImpact` calls;
//! - [`in_process`]: the `*_in_process_*` stages and `--in-process-only`;
//! - [`restart`]: step 4;
//! - [`report`]: problems, rounding, and the JSON object printed.

mod client;
pub(crate) mod estate;
mod impact;
mod import;
mod in_process;
mod probes;
mod report;
mod restart;

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use clap::Parser;
use desk_cmdb::domain::identification::{MAX_IMPORT_ITEMS, MAX_IMPORT_RELATIONSHIPS};
use tonic::metadata::{Ascii, MetadataValue};

use super::{DeskLaunch, dev_token, pid_cpu_seconds, process_cpu_seconds};
use estate::{Layer, generate};
use report::Errors;

/// The tenant the estate is imported into.
const TENANT: &str = "bench";

#[derive(Debug, Parser, Clone)]
pub struct CmdbArgs {
    /// Configuration items to generate and import.
    #[arg(long, default_value_t = 2_000)]
    cis: usize,
    /// Relationships to generate and import (fewer when the estate is too small to hold them).
    #[arg(long, default_value_t = 8_000)]
    relations: usize,
    /// Impact queries of each kind (full closure, depth 3).
    #[arg(long, default_value_t = 500)]
    impact_queries: usize,
    /// Items per import batch (at most the CMDB's MAX_IMPORT_ITEMS, 10,000).
    #[arg(long, default_value_t = MAX_IMPORT_ITEMS)]
    item_batch: usize,
    /// Relationships per import batch (at most the CMDB's MAX_IMPORT_RELATIONSHIPS, 20,000).
    #[arg(long, default_value_t = MAX_IMPORT_RELATIONSHIPS)]
    relation_batch: usize,
    /// Import batches in flight at once.
    #[arg(long, default_value_t = 1)]
    import_concurrency: usize,
    /// Share of the relationships that are random cross-links between any two CIs (these close
    /// cycles); each one widens every closure that reaches its target, so keep it small.
    #[arg(long, default_value_t = 0.0005)]
    cross_links: f64,
    /// Seed of the generated estate and of the choice of start CIs.
    #[arg(long, default_value_t = 20_240_601)]
    seed: u64,
    /// Database connections of the desk.
    #[arg(long, default_value_t = 48)]
    max_connections: u32,
    /// Also write one line per timed impact call to this file: microseconds since the first
    /// one, max_depth, explanation (Via or Paths), latency in microseconds, CIs, answer bytes,
    /// CIs visited, direction. For reading a tail: which calls were slow, and what came before them.
    #[arg(long)]
    trace_impact: Option<PathBuf>,
    /// Time only the desk's share, in this process: build the impact index from the generated
    /// estate under fresh ids and run the `*_in_process_*` stages on the same starts, without a
    /// desk, PostgreSQL or NATS. Seconds instead of minutes, for profiling the walk and the answer.
    #[arg(long)]
    in_process_only: bool,
    /// Print the result as one JSON object (the output is JSON either way).
    #[arg(long)]
    json: bool,
}

/// The estate loaded into a running desk as this suite loads it, for suites that need the CMDB
/// at scale (`desk-bench change`).
pub(crate) struct LoadedEstate {
    /// The committed CI's id by estate index; `None` where the CI was not imported.
    pub(crate) ids: Vec<Option<String>>,
    pub(crate) cis_created: usize,
    pub(crate) relations_created: usize,
    /// Import and outbox drain, wall-clock seconds.
    pub(crate) load_s: f64,
    pub(crate) errors: u64,
    pub(crate) error_samples: Vec<String>,
}

/// Imports `estate` into the desk at `addr` (whose CMDB answers `token`) through
/// `StageImport`/`CommitImport` in this suite's default batches, then waits until its outbox
/// has published every event and PostgreSQL has settled (`VACUUM`, `CHECKPOINT`).
pub(crate) async fn load_estate(
    estate: &estate::Estate,
    addr: std::net::SocketAddr,
    token: &MetadataValue<Ascii>,
    log: &std::path::Path,
    database_url: &str,
) -> anyhow::Result<LoadedEstate> {
    let started = Instant::now();
    let args = CmdbArgs::parse_from(["cmdb"]);
    let client = client::wait_ready(addr, token, log, Duration::from_secs(60)).await?;
    let mut errors = Errors::default();
    let imported = import::load(estate, &args, &client, token, (None, None), &mut errors).await;
    probes::settle(database_url, &mut errors).await;
    Ok(LoadedEstate {
        cis_created: imported.cis_created,
        relations_created: imported.relations_created,
        ids: imported.ids,
        load_s: started.elapsed().as_secs_f64(),
        errors: errors.count,
        error_samples: errors.samples,
    })
}

/// Runs the steps above in order and prints the JSON object (with `--in-process-only`, only the
/// desk's share, in this process).
pub async fn run(args: CmdbArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        (1..=MAX_IMPORT_ITEMS).contains(&args.item_batch),
        "--item-batch must be between 1 and {MAX_IMPORT_ITEMS}"
    );
    anyhow::ensure!(
        (1..=MAX_IMPORT_RELATIONSHIPS).contains(&args.relation_batch),
        "--relation-batch must be between 1 and {MAX_IMPORT_RELATIONSHIPS}"
    );
    anyhow::ensure!(args.cis >= Layer::ALL.len(), "--cis must be at least 7");
    let run_started = Instant::now();
    let cpu_at_start = process_cpu_seconds();

    let started = Instant::now();
    let estate = generate(args.cis, args.relations, args.cross_links, args.seed);
    let generate_s = started.elapsed().as_secs_f64();
    eprintln!(
        "desk-bench cmdb: generated {} CIs and {} relationships ({} cross-links) in {:.1} s",
        estate.items.len(),
        estate.relations.len(),
        estate.cross_links,
        generate_s
    );
    if args.in_process_only {
        return in_process::in_process_only(&estate, &args, generate_s);
    }

    // What is measured: nats-server, PostgreSQL with synchronous commit, `desk serve --target cmdb`.
    let nats = desk_testkit::NatsServer::start().await?;
    let cluster = desk_testkit::start_cluster(false).await?;
    let database_url = cluster.create_database("bench").await?;
    let postmaster = probes::postmaster_pid(&cluster);
    let launch = DeskLaunch::new(
        "cmdb",
        database_url.clone(),
        nats.url(),
        args.max_connections,
        // The rebuild time is logged at INFO by the CMDB.
        "warn,desk_cmdb=info",
    )?;
    let token: MetadataValue<Ascii> = format!(
        "Bearer {}",
        dev_token(
            &launch.secret,
            "bench-loader",
            TENANT,
            &["integrator"],
            24 * 3600
        )?
    )
    .parse()?;
    let log = std::env::temp_dir().join("desk-bench-cmdb.log");
    let desk = launch.spawn(&log)?;
    let client = client::wait_ready(launch.addr, &token, &log, Duration::from_secs(60)).await?;
    eprintln!(
        "desk-bench cmdb: desk up at {} (log {})",
        launch.addr,
        log.display()
    );
    let desk_pid = desk.id().map(|pid| pid.to_string());

    // ---- import ----
    let mut errors = Errors::default();
    let processes = (desk_pid.as_deref(), postmaster.as_deref());
    let imported = import::load(&estate, &args, &client, &token, processes, &mut errors).await;

    // ---- the outbox drains, the database settles ----
    let settled = probes::settle(&database_url, &mut errors).await;

    // ---- impact ----
    let starts = impact::ImpactStarts::choose(&estate, &imported.ids, &args)?;
    let timed = impact::measure(
        &client,
        &token,
        &starts,
        &args,
        desk_pid.as_deref(),
        &mut errors,
    )
    .await?;
    let in_process =
        in_process::beside_the_desk(&estate, &imported.ids, &args, &starts, &mut errors)?;
    let desk_cpu_before_restart = desk_pid
        .as_deref()
        .map_or(0.0, |p| pid_cpu_seconds(p, false));

    // ---- restart: SIGTERM, wait, start again on the same database and NATS ----
    let (mut desk, restarted) = restart::measure(
        desk,
        &launch,
        &token,
        &log,
        &starts.starts,
        &timed.visited_before,
        &mut errors,
    )
    .await?;

    let stored = probes::stored_counts(&database_url).await;
    let client_cpu_s = process_cpu_seconds() - cpu_at_start;

    let result = report::result(report::Measured {
        args: &args,
        estate: &estate,
        generate_s,
        imported,
        settled,
        timed,
        in_process,
        desk_cpu_before_restart,
        restarted,
        stored,
        errors,
        client_cpu_s,
        run_started,
    });
    println!(
        "{}",
        serde_json::to_string_pretty(&serde_json::Value::Object(result))?
    );

    let _ = desk.start_kill();
    let _ = desk.wait().await;
    cluster.stop().await;
    drop(nats);
    Ok(())
}
