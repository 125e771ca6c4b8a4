//! The desk's share of the impact queries, timed in this process (`*_in_process_*`): the walk,
//! the encoded answer `AnalyzeImpact` writes, and a client's decoding of it, over an index built
//! from the estate as imported, to tell the desk's work apart from transport; and
//! `--in-process-only`, which times only that, without a desk, PostgreSQL or NATS.

use std::time::Instant;

use desk_cmdb::domain::{
    CiStatus, RelationshipType,
    impact::{Direction, ImpactEdge, ImpactGraph, ImpactNode, ImpactQuery},
};
use desk_proto::cmdb::v1 as pb;
use hdrhistogram::Histogram;
use prost::Message as _;
use serde_json::json;

use super::{
    CmdbArgs,
    estate::{Estate, Layer, import_order},
    impact::{DOWN, Explain, ImpactStarts, UP},
    report::{Errors, ms, round},
};
use crate::process_cpu_seconds;

/// The region of the ids `--in-process-only` makes: the desk's default, so answers are as long.
const BENCH_REGION: &str = "local";

/// The server's share of the impact queries, measured in this process: the walk and the
/// encoded answer `AnalyzeImpact` writes (`desk_cmdb::api::encode_impact_answer`), over an index
/// built from the estate as imported (same ids), then the decoding a client does. Next to the gRPC latencies, this tells the desk's work apart from transport.
struct InProcess {
    graph: ImpactGraph,
    region: String,
}

/// Latencies of one kind of query in process, by stage: the walk alone; the answer, i.e. the
/// walk and the answer's wire format written from it (`AnalyzeImpact`'s whole share); and a
/// client's decoding of that answer.
struct StageStats {
    walk: Histogram<u64>,
    answer: Histogram<u64>,
    decode: Histogram<u64>,
}

impl StageStats {
    fn new() -> anyhow::Result<Self> {
        Ok(Self {
            walk: Histogram::new(3)?,
            answer: Histogram::new(3)?,
            decode: Histogram::new(3)?,
        })
    }

    fn json(&self, prefix: &str, object: &mut serde_json::Map<String, serde_json::Value>) {
        for (stage, histogram) in [
            ("walk", &self.walk),
            ("answer", &self.answer),
            ("decode", &self.decode),
        ] {
            object.insert(
                format!("{prefix}_{stage}_p50_ms"),
                json!(ms(histogram, 0.50)),
            );
            object.insert(
                format!("{prefix}_{stage}_p99_ms"),
                json!(ms(histogram, 0.99)),
            );
            // Steadier between runs than a p99 of the largest closures: for comparing builds.
            object.insert(
                format!("{prefix}_{stage}_mean_ms"),
                json!(round(histogram.mean() / 1000.0, 3)),
            );
        }
    }
}

/// The `*_in_process_*` stages of each kind of call.
pub(super) struct InProcessStats {
    full: StageStats,
    depth3: StageStats,
    depth3_paths: StageStats,
    full_down: StageStats,
}

impl InProcessStats {
    fn new() -> anyhow::Result<Self> {
        Ok(Self {
            full: StageStats::new()?,
            depth3: StageStats::new()?,
            depth3_paths: StageStats::new()?,
            full_down: StageStats::new()?,
        })
    }

    fn timed(mut self, index: &InProcess, starts: &[&str], down_starts: &[&str]) -> Self {
        for start in starts {
            index.time(start, UP, 0, Explain::Via, &mut self.full);
            index.time(start, UP, 3, Explain::Via, &mut self.depth3);
            index.time(start, UP, 3, Explain::Paths, &mut self.depth3_paths);
        }
        for start in down_starts {
            index.time(start, DOWN, 0, Explain::Via, &mut self.full_down);
        }
        self
    }

    pub(super) fn json(&self, result: &mut serde_json::Map<String, serde_json::Value>) {
        self.full.json("impact_full_in_process", result);
        self.depth3.json("impact_depth3_in_process", result);
        self.depth3_paths
            .json("impact_depth3_paths_in_process", result);
        self.full_down
            .json("impact_full_downstream_in_process", result);
    }
}

/// `--in-process-only`: the index built from the generated estate under fresh ids, timed on
/// the starts a whole run would use, after untimed calls on the warm-up starts.
pub(super) fn in_process_only(
    estate: &Estate,
    args: &CmdbArgs,
    generate_s: f64,
) -> anyhow::Result<()> {
    let ids: Vec<Option<String>> = (0..estate.items.len())
        .map(|_| Some(desk_kit::ids::format_id(BENCH_REGION, uuid::Uuid::now_v7())))
        .collect();
    let ImpactStarts {
        starts,
        warm_up,
        down_starts,
        ..
    } = ImpactStarts::choose(estate, &ids, args)?;
    let built = Instant::now();
    let index = InProcess::new(estate, &ids, args.seed)
        .ok_or_else(|| anyhow::anyhow!("the in-process impact index could not be built"))?;
    let build_s = built.elapsed().as_secs_f64();
    let warm_down = &down_starts[..warm_up.len().min(down_starts.len())];
    InProcessStats::new()?.timed(&index, &warm_up, warm_down);
    eprintln!("desk-bench cmdb: timing the desk's share in process");
    let cpu_before = process_cpu_seconds();
    let stats = InProcessStats::new()?.timed(&index, &starts, &down_starts);
    let mut result = serde_json::Map::new();
    result.insert("cis".into(), json!(estate.items.len()));
    result.insert("relations".into(), json!(estate.relations.len()));
    result.insert("impact_queries".into(), json!(args.impact_queries));
    result.insert("in_process_only".into(), json!(true));
    result.insert("generate_s".into(), json!(round(generate_s, 2)));
    result.insert("index_build_s".into(), json!(round(build_s, 3)));
    stats.json(&mut result);
    result.insert(
        "in_process_cpu_s".into(),
        json!(round(process_cpu_seconds() - cpu_before, 2)),
    );
    println!(
        "{}",
        serde_json::to_string_pretty(&serde_json::Value::Object(result))?
    );
    Ok(())
}

impl InProcess {
    /// The index the desk would build from the imported estate; `None` when some CI has no id.
    fn new(estate: &Estate, ids: &[Option<String>], seed: u64) -> Option<Self> {
        let mut region = None;
        let mut uuids = Vec::with_capacity(ids.len());
        for id in ids {
            let parsed = desk_kit::ids::parse_id(id.as_deref()?)?;
            region.get_or_insert(parsed.region);
            uuids.push(parsed.uuid);
        }
        let nodes = import_order(estate.items.len(), seed)
            .into_iter()
            .map(|index| (&estate.items[index], uuids[index]))
            .map(|(item, id)| ImpactNode {
                id,
                class: item.class.clone(),
                name: item.name.clone(),
                status: if item.status == pb::CiStatus::Retired as i32 {
                    CiStatus::Retired
                } else {
                    CiStatus::InUse
                },
                business_service: item.class == Layer::BusinessService.class(),
            });
        let edges = estate
            .relations
            .iter()
            .map(|&(source, kind, target)| ImpactEdge {
                source: uuids[source as usize],
                relationship: desk_cmdb::api::convert::relationship_type(kind as i32)
                    .unwrap_or(RelationshipType::DependsOn),
                target: uuids[target as usize],
            });
        Some(Self {
            graph: ImpactGraph::build(nodes, edges).ok()?,
            region: region?,
        })
    }

    fn time(
        &self,
        start: &str,
        direction: pb::ImpactDirection,
        max_depth: u32,
        explain: Explain,
        stats: &mut StageStats,
    ) {
        let Some(start) = desk_kit::ids::parse_id(start) else {
            return;
        };
        let query = ImpactQuery {
            start: vec![start.uuid],
            direction: match direction {
                UP => Direction::Upstream,
                DOWN => Direction::Downstream,
                _ => Direction::Both,
            },
            max_depth: if max_depth == 0 {
                desk_cmdb::api::MAX_DEPTH
            } else {
                max_depth
            },
            max_nodes: desk_cmdb::api::MAX_NODES,
            relationship_types: None,
            include_paths: explain == Explain::Paths,
            include_via: explain == Explain::Via,
        };
        let micros = |since: Instant| (since.elapsed().as_micros() as u64).max(1);
        let began = Instant::now();
        if self.graph.impact_with(&query, |_| ()).is_err() {
            return;
        }
        let _ = stats.walk.record(micros(began));
        let began = Instant::now();
        let Ok(answer) = desk_cmdb::api::encode_impact_answer(&self.graph, &self.region, &query)
        else {
            return;
        };
        let _ = stats.answer.record(micros(began));
        let bytes = answer.encode_to_vec();
        drop(answer);
        let began = Instant::now();
        let decoded = pb::AnalyzeImpactResponse::decode(bytes.as_slice());
        let _ = stats.decode.record(micros(began));
        drop(decoded);
    }
}

/// The `*_in_process_*` stages on the starts the desk was timed on, over an index built from the
/// estate under the ids the import gave it; untimed (and an error) when some CI has no id.
pub(super) fn beside_the_desk(
    estate: &Estate,
    ids: &[Option<String>],
    args: &CmdbArgs,
    impact_starts: &ImpactStarts<'_>,
    errors: &mut Errors,
) -> anyhow::Result<InProcessStats> {
    let in_process = InProcessStats::new()?;
    Ok(match InProcess::new(estate, ids, args.seed) {
        Some(index) => {
            eprintln!("desk-bench cmdb: timing the desk's share in process");
            in_process.timed(&index, &impact_starts.starts, &impact_starts.down_starts)
        }
        None => {
            errors.add("the in-process impact index could not be built");
            in_process
        }
    })
}
