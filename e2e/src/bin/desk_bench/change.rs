//! `desk-bench change`: the conflict check of a proposed window against 10,000 scheduled changes
//! on the 100,000-CI estate of `desk-bench cmdb` (the same generator and seed), across the whole
//! closure — the check the change service runs in memory over its projection of the CMDB.
//!
//! In process: the estate goes into the change service's `DependencyGraph` as its projection
//! follower would put it, the scheduled changes are generated beside it, and each check is
//! `find_conflicts` for a random proposal (one or two CIs of the lower layers, a window of two
//! to six hours in the next 30 days). The database read that precedes a check in the service
//! (the booked changes overlapping the window, one index range) is not part of the figure.
//! Prints one JSON object: `conflict_check_p50_ms`, `conflict_check_p99_ms`,
//! `conflicts_found_avg` and what was measured.

use std::time::Instant;

use chrono::{DateTime, Duration, Utc};
use clap::Parser;
use desk_change::domain::{
    Booked, CiNode, Criticality, DependencyGraph, Edge, Proposal, Relation, TimeRange,
    find_conflicts,
};
use desk_proto::cmdb::v1::RelationshipType as Rel;
use uuid::Uuid;

use crate::cmdb::estate::{self, Layer, Rng};

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
    /// Conflict checks timed.
    #[arg(long, default_value_t = 500)]
    checks: usize,
    #[arg(long, default_value_t = 20_240_601)]
    seed: u64,
    /// Print JSON (the only output; kept for symmetry with the other suites).
    #[arg(long)]
    json: bool,
}

fn id(index: u32) -> Uuid {
    Uuid::from_u128(u128::from(index) + 1)
}

fn relation(kind: Rel) -> Option<Relation> {
    Some(match kind {
        Rel::DependsOn => Relation::DependsOn,
        Rel::RunsOn => Relation::RunsOn,
        Rel::ConnectsTo => Relation::ConnectsTo,
        Rel::MemberOf => Relation::MemberOf,
        Rel::Provides => Relation::Provides,
        Rel::Unspecified => return None,
    })
}

fn window(rng: &mut Rng, start: DateTime<Utc>, hours: (usize, usize)) -> TimeRange {
    let offset = Duration::minutes(rng.below(30 * 24 * 60) as i64);
    let length = Duration::hours((hours.0 + rng.below(hours.1 - hours.0 + 1)) as i64);
    TimeRange {
        start: start + offset,
        end: start + offset + length,
    }
}

pub fn run(args: ChangeArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let estate = estate::generate(args.cis, args.relations, args.cross_links, args.seed);
    let mut graph = DependencyGraph::new();
    for (index, item) in estate.items.iter().enumerate() {
        let layer = estate.layer_of[index];
        graph.upsert_ci(CiNode {
            id: id(index as u32),
            name: item.name.clone(),
            class: layer.class().to_owned(),
            criticality: Criticality::Medium,
            business_service: layer == Layer::BusinessService,
            retired: false,
            version: 1,
        });
    }
    for (n, (source, kind, target)) in estate.relations.iter().enumerate() {
        if let Some(relation) = relation(*kind) {
            graph.add_relationship(
                Uuid::from_u128(u128::MAX - n as u128),
                Edge {
                    source: id(*source),
                    relation,
                    target: id(*target),
                },
            );
        }
    }
    let built_seconds = started.elapsed().as_secs_f64();

    let mut rng = Rng::new(args.seed ^ 0x00C4_A96E);
    let all: Vec<u32> = (0..estate.items.len() as u32).collect();
    let lower: Vec<u32> = all
        .iter()
        .copied()
        .filter(|i| estate.layer_of[*i as usize].is_lower())
        .collect();
    let base = DateTime::from_timestamp(1_900_000_000, 0).unwrap_or_default();
    let booked: Vec<Booked> = (0..args.scheduled)
        .map(|n| {
            let cis = (0..1 + rng.below(3)).map(|_| id(rng.pick(&all))).collect();
            Booked {
                id: Uuid::from_u128(1 << 100 | n as u128),
                number: format!("CHG-{:06}", n + 1),
                cis,
                range: window(&mut rng, base, (1, 8)),
                implementer: Some(format!("implementer-{}", rng.below(200))),
            }
        })
        .collect();

    let mut histogram = hdrhistogram::Histogram::<u64>::new(3)?;
    let mut conflicts_found = 0usize;
    for _ in 0..args.checks {
        let cis: Vec<Uuid> = (0..1 + rng.below(2))
            .map(|_| id(rng.pick(&lower)))
            .collect();
        let implementer = format!("implementer-{}", rng.below(200));
        let proposal = Proposal {
            change: None,
            cis: &cis,
            range: window(&mut rng, base, (2, 6)),
            implementer: Some(&implementer),
        };
        let timer = Instant::now();
        let found = find_conflicts(&graph, &proposal, &booked, &[], &[], None);
        histogram.record(timer.elapsed().as_micros().max(1) as u64)?;
        conflicts_found += found.len();
    }
    let ms = |quantile: f64| histogram.value_at_quantile(quantile) as f64 / 1000.0;
    let report = serde_json::json!({
        "suite": "change",
        "scope": "in_process_conflict_check",
        "build_profile": if cfg!(debug_assertions) { "debug" } else { "release" },
        "cis": graph.len(),
        "relationships": graph.relationships(),
        "scheduled_changes": booked.len(),
        "checks": args.checks,
        "depth": "whole_closure",
        "estate_build_seconds": built_seconds,
        "conflict_check_p50_ms": ms(0.50),
        "conflict_check_p99_ms": ms(0.99),
        "conflict_check_max_ms": histogram.max() as f64 / 1000.0,
        "conflicts_found_avg": conflicts_found as f64 / args.checks.max(1) as f64,
        "floor_p99_ms": 50.0,
        "meets_floor": ms(0.99) <= 50.0,
    });
    let _ = args.json;
    println!("{report}");
    Ok(())
}
