//! The impact phase: which CIs the timed `AnalyzeImpact` calls start from, the calls themselves
//! (untimed warm-up, then the kinds the report names `impact_full_*`, `impact_depth3_*`,
//! `impact_depth3_paths_*`, `impact_full_paths_*`, `impact_full_downstream_*`,
//! `impact_full_summary_*` and `impact_floor_*`), and the latency and shape of each kind.

use std::{collections::HashMap, time::Instant};

use desk_proto::cmdb::v1 as pb;
use hdrhistogram::Histogram;
use prost::Message as _;
use serde_json::json;
use tonic::metadata::{Ascii, MetadataValue};

use super::{
    CmdbArgs,
    client::{Client, request},
    estate::{Estate, Layer, Rng},
    report::{Errors, ms, round, truncate},
};
use crate::pid_cpu_seconds;

pub(super) const UP: pb::ImpactDirection = pb::ImpactDirection::Upstream;
pub(super) const DOWN: pb::ImpactDirection = pb::ImpactDirection::Downstream;
/// Untimed impact calls of each kind made before the timed ones.
const IMPACT_WARM_UP: usize = 50;

/// Latency and shape of one kind of impact query.
pub(super) struct ImpactStats {
    latency: Histogram<u64>,
    visited: u64,
    reported: u64,
    business_services: u64,
    max_visited: u32,
    truncated: HashMap<String, u64>,
    response_bytes: u64,
    answered: u64,
}

impl ImpactStats {
    pub(super) fn new() -> anyhow::Result<Self> {
        Ok(Self {
            latency: Histogram::new(3)?,
            visited: 0,
            reported: 0,
            business_services: 0,
            max_visited: 0,
            truncated: HashMap::new(),
            response_bytes: 0,
            answered: 0,
        })
    }

    pub(super) fn record(&mut self, micros: u64, response: &pb::AnalyzeImpactResponse) {
        let _ = self.latency.record(micros.max(1));
        self.answered += 1;
        self.visited += u64::from(response.visited);
        self.max_visited = self.max_visited.max(response.visited);
        // A SUMMARY answer lists no CIs: it counts them.
        match &response.summary {
            Some(summary) => {
                self.reported += u64::from(summary.cis_reached);
                self.business_services += summary.business_services.len() as u64;
            }
            None => {
                self.reported += response.cis.len() as u64;
                self.business_services += response.business_service_indexes.len() as u64;
            }
        }
        self.response_bytes += response.encoded_len() as u64;
        if !response.truncated_by.is_empty() {
            *self
                .truncated
                .entry(response.truncated_by.clone())
                .or_default() += 1;
        }
    }

    pub(super) fn json(
        &self,
        prefix: &str,
        object: &mut serde_json::Map<String, serde_json::Value>,
    ) {
        let n = self.answered.max(1) as f64;
        let mut put = |key: &str, value: serde_json::Value| {
            object.insert(format!("{prefix}_{key}"), value);
        };
        put("p50_ms", json!(ms(&self.latency, 0.50)));
        put("p90_ms", json!(ms(&self.latency, 0.90)));
        put("p99_ms", json!(ms(&self.latency, 0.99)));
        put(
            "max_ms",
            json!(round(self.latency.max() as f64 / 1000.0, 2)),
        );
        put("answered", json!(self.answered));
        put("avg_visited", json!(round(self.visited as f64 / n, 1)));
        put("max_visited", json!(self.max_visited));
        put("avg_cis", json!(round(self.reported as f64 / n, 1)));
        put(
            "avg_business_services",
            json!(round(self.business_services as f64 / n, 1)),
        );
        put(
            "avg_response_kb",
            json!(round(self.response_bytes as f64 / n / 1024.0, 1)),
        );
        put("truncated", json!(self.truncated.values().sum::<u64>()));
        put("truncated_by", json!(self.truncated));
    }
}

/// How an impact answer explains its CIs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Explain {
    /// `include_via`: one step per CI, and where it came from.
    Via,
    /// `include_paths`: every CI's whole path.
    Paths,
    /// The SUMMARY view: the business services reached and counts, no CI list.
    Summary,
}

pub(super) fn impact_request(
    id: &str,
    direction: pb::ImpactDirection,
    max_depth: u32,
    explain: Explain,
) -> pb::AnalyzeImpactRequest {
    pb::AnalyzeImpactRequest {
        ci_ids: vec![id.to_owned()],
        direction: direction as i32,
        max_depth,
        max_nodes: 0,
        relationship_types: Vec::new(),
        include_paths: explain == Explain::Paths,
        include_via: explain == Explain::Via,
        view: if explain == Explain::Summary {
            pb::ImpactView::Summary as i32
        } else {
            pb::ImpactView::Full as i32
        },
    }
}

/// The start CIs of the timed impact calls, chosen by estate index, so that every run of one seed
/// (with the desk or `--in-process-only`) asks the same closures.
pub(super) struct ImpactStarts<'a> {
    /// Upstream, from random CIs of the lower layers.
    pub(super) starts: Vec<&'a str>,
    /// Untimed calls first: a desk that has just loaded an estate has not touched its index,
    /// its answer buffers or its HTTP/2 windows yet, and the first calls page all that in. They
    /// are made on other starts, as a desk that has been serving would be.
    pub(super) warm_up: Vec<&'a str>,
    /// Downstream, from the services and applications: what they depend on.
    pub(super) down_starts: Vec<&'a str>,
    /// The business services, in estate order: upstream, each one's closure is itself alone.
    pub(super) business: Vec<&'a str>,
}

impl<'a> ImpactStarts<'a> {
    pub(super) fn choose(
        estate: &Estate,
        ids: &'a [Option<String>],
        args: &CmdbArgs,
    ) -> anyhow::Result<Self> {
        let of_layers = |lower: bool| -> Vec<&'a str> {
            (0..estate.items.len())
                .filter(|&i| estate.layer_of[i].is_lower() == lower)
                .filter_map(|i| ids[i].as_deref())
                .collect()
        };
        let (lower, upper) = (of_layers(true), of_layers(false));
        anyhow::ensure!(!lower.is_empty(), "no CI of the lower layers was imported");
        anyhow::ensure!(!upper.is_empty(), "no CI of the upper layers was imported");
        let mut rng = Rng::new(args.seed.wrapping_add(2));
        let starts = (0..args.impact_queries).map(|_| rng.pick(&lower)).collect();
        let warm_up = (0..IMPACT_WARM_UP).map(|_| rng.pick(&lower)).collect();
        let down_starts = (0..args.impact_queries).map(|_| rng.pick(&upper)).collect();
        let business = estate.members[&Layer::BusinessService]
            .iter()
            .filter_map(|&i| ids[i as usize].as_deref())
            .collect();
        Ok(Self {
            starts,
            warm_up,
            down_starts,
            business,
        })
    }
}

/// What the timed impact calls measured, by kind.
pub(super) struct Timed {
    pub(super) full: ImpactStats,
    pub(super) full_down: ImpactStats,
    pub(super) depth3: ImpactStats,
    pub(super) depth3_paths: ImpactStats,
    pub(super) full_paths: ImpactStats,
    pub(super) full_summary: ImpactStats,
    /// A one-CI answer: what a call itself costs.
    pub(super) floor: ImpactStats,
    /// Failed calls by status code.
    pub(super) impact_errors: HashMap<String, u64>,
    /// CIs visited by the first full closures upstream, by start: what the rebuilt index must
    /// answer after the restart.
    pub(super) visited_before: Vec<(String, u32)>,
    pub(super) impact_s: f64,
    /// The desk's CPU seconds once the warm-up calls were made.
    pub(super) desk_cpu_before_impact: f64,
}

/// Makes the warm-up calls, then times each kind of call on `starts`, interleaved, and the
/// one-CI answers from the business services; `desk_pid` is read for the desk's CPU seconds.
pub(super) async fn measure(
    client: &Client,
    token: &MetadataValue<Ascii>,
    impact_starts: &ImpactStarts<'_>,
    args: &CmdbArgs,
    desk_pid: Option<&str>,
    errors: &mut Errors,
) -> anyhow::Result<Timed> {
    let ImpactStarts {
        starts,
        warm_up,
        down_starts,
        business,
    } = impact_starts;
    // Upstream, the full closure and depth 3 explained compactly (`include_via`, the form for
    // large answers; the targets of the issue are read on these), depth 3 with whole paths,
    // and, on a tenth of the starts, the full closure with whole paths, to show what repeating
    // every path costs; downstream, the full closure explained compactly.
    let mut full = ImpactStats::new()?;
    let mut full_down = ImpactStats::new()?;
    let mut depth3 = ImpactStats::new()?;
    let mut depth3_paths = ImpactStats::new()?;
    let mut full_paths = ImpactStats::new()?;
    let mut full_summary = ImpactStats::new()?;
    let mut impact_errors: HashMap<String, u64> = HashMap::new();
    let mut visited_before: Vec<(String, u32)> = Vec::new();
    let mut impact_client = client.clone();
    for (n, start) in warm_up.iter().enumerate() {
        let down = down_starts[n % down_starts.len()];
        for (start, direction, max_depth, explain) in [
            (*start, UP, 0, Explain::Via),
            (*start, UP, 3, Explain::Via),
            (*start, UP, 3, Explain::Paths),
            (down, DOWN, 0, Explain::Via),
        ] {
            let _ = impact_client
                .analyze_impact(request(
                    impact_request(start, direction, max_depth, explain),
                    token,
                ))
                .await;
        }
    }
    let desk_cpu_before_impact = desk_pid.map_or(0.0, |p| pid_cpu_seconds(p, false));
    let mut trace = match &args.trace_impact {
        Some(path) => Some(std::io::BufWriter::new(std::fs::File::create(path)?)),
        None => None,
    };
    eprintln!("desk-bench cmdb: timing impact analysis");
    let impact_started = Instant::now();
    for (n, start) in starts.iter().enumerate() {
        let mut kinds = vec![
            (*start, UP, 0, Explain::Via, &mut full),
            (*start, UP, 3, Explain::Via, &mut depth3),
            (*start, UP, 3, Explain::Paths, &mut depth3_paths),
            (down_starts[n], DOWN, 0, Explain::Via, &mut full_down),
            (*start, UP, 0, Explain::Summary, &mut full_summary),
        ];
        if n % 10 == 0 {
            kinds.push((*start, UP, 0, Explain::Paths, &mut full_paths));
        }
        for (start, direction, max_depth, explain, stats) in kinds {
            let call = Instant::now();
            match impact_client
                .analyze_impact(request(
                    impact_request(start, direction, max_depth, explain),
                    token,
                ))
                .await
            {
                Ok(response) => {
                    let micros = call.elapsed().as_micros() as u64;
                    let response = response.into_inner();
                    if let Some(trace) = trace.as_mut() {
                        use std::io::Write as _;
                        writeln!(
                            trace,
                            "{} {max_depth} {explain:?} {micros} {} {} {} {direction:?}",
                            impact_started.elapsed().as_micros(),
                            response.cis.len(),
                            response.encoded_len(),
                            response.visited
                        )?;
                    }
                    if direction == UP && max_depth == 0 && explain == Explain::Via && n < 20 {
                        visited_before.push((start.to_owned(), response.visited));
                    }
                    stats.record(micros, &response);
                }
                Err(status) => {
                    let key = format!("{:?}", status.code());
                    let first = !impact_errors.contains_key(&key);
                    *impact_errors.entry(key).or_default() += 1;
                    if first {
                        errors.add(format!(
                            "AnalyzeImpact (max_depth {max_depth}) from {start} failed: {:?} {}",
                            status.code(),
                            truncate(status.message())
                        ));
                    } else {
                        errors.count += 1;
                    }
                }
            }
        }
    }
    let impact_s = impact_started.elapsed().as_secs_f64();
    // The cost of a call itself (JWT, routing, HTTP/2 on loopback, both ends' protobuf): the
    // closure of a business service upstream is the business service alone.
    let mut floor = ImpactStats::new()?;
    for n in 0..args.impact_queries {
        let Some(start) = business.get(n % business.len().max(1)) else {
            break;
        };
        let call = Instant::now();
        if let Ok(response) = impact_client
            .analyze_impact(request(impact_request(start, UP, 1, Explain::Via), token))
            .await
        {
            floor.record(call.elapsed().as_micros() as u64, response.get_ref());
        }
    }
    Ok(Timed {
        full,
        full_down,
        depth3,
        depth3_paths,
        full_paths,
        full_summary,
        floor,
        impact_errors,
        visited_before,
        impact_s,
        desk_cpu_before_impact,
    })
}
