//! The desk's share of a conflict check, in this process: the estate goes into the change service's `DependencyGraph` as its projection
//! follower would put it, the scheduled changes are generated beside it, and each check is
//! `find_conflicts` for a random proposal (one or two CIs of the lower layers, a window of two
//! to six hours in the next 30 days). The database read that precedes a check in the service
//! (the booked changes overlapping the window, one index range) is not part of the figure.
//! Keys `in_process_conflict_check_*`, beside the same checks through the API.

use std::time::Instant;

use chrono::{DateTime, Duration, Utc};
use desk_change::domain::{
    Booked, CiNode, Criticality, DependencyGraph, Edge, Proposal, Relation, TimeRange,
    find_conflicts,
};
use desk_proto::cmdb::v1::RelationshipType as Rel;
use uuid::Uuid;

use super::ChangeArgs;
use crate::cmdb::estate::{Estate, Layer, Rng};

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

/// Builds the change service's graph from `estate` and times `find_conflicts` on it.
pub(super) fn measure(
    args: &ChangeArgs,
    estate: &Estate,
) -> anyhow::Result<serde_json::Map<String, serde_json::Value>> {
    let started = Instant::now();
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
        "in_process_graph_cis": graph.len(),
        "in_process_graph_relationships": graph.relationships(),
        "in_process_scheduled_changes": booked.len(),
        "in_process_graph_build_s": built_seconds,
        "in_process_conflict_check_p50_ms": ms(0.50),
        "in_process_conflict_check_p99_ms": ms(0.99),
        "in_process_conflict_check_max_ms": histogram.max() as f64 / 1000.0,
        "in_process_conflicts_found_avg": conflicts_found as f64 / args.checks.max(1) as f64,
    });
    Ok(report.as_object().cloned().unwrap_or_default())
}
