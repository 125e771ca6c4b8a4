//! `AnalyzeImpact`'s answer, written in protobuf wire format straight from the walk.
//!
//! A full closure on a large estate reports tens of thousands of CIs. Built as generated
//! messages first, each CI cost three small strings allocated and filled (its id, name and
//! class), copied again into the wire format and freed: on 40,000 CIs that took longer than the
//! walk itself, on the call's path. Here each CI's id is formatted, and its name and class
//! copied from the index, once, into the one buffer that is sent ([`pb::EncodedAnalyzeImpactResponse`]).
//!
//! The bytes are exactly those prost writes for the same `pb::AnalyzeImpactResponse` (same
//! fields, by field number, defaults left out); the tests hold the two side by side.

use desk_proto::cmdb::v1 as pb;
use prost::encoding::{WireType, encode_key, encode_varint, encoded_len_varint};
use uuid::Uuid;

use super::convert::relationship_type_to_pb;
use crate::domain::impact::{
    GraphError, ImpactGraph, ImpactQuery, Label, PathStep, Reported, Truncation, Walked,
};

/// CIs whose labels are read together before they are written (see `Writer::cis`).
const BATCH: usize = 32;

/// Answers reporting at least this many CIs are written by two threads, half the CIs each.
/// Writing one CI waits mostly for its card and name to come from memory (a large closure's
/// CIs miss the cache), some 80 ns each: on 40,000 CIs that is 3 ms the caller waits for, and
/// two cores' reads overlap. Below this a second thread would cost more than it saves.
const WRITE_IN_TWO_FROM: usize = 8192;

/// Field numbers of `desk.cmdb.v1.AnalyzeImpactResponse`, `ImpactedCi` and `PathStep`.
mod field {
    pub const CIS: u32 = 1;
    pub const TRUNCATED_BY: u32 = 3;
    pub const MAX_DEPTH: u32 = 4;
    pub const MAX_NODES: u32 = 5;
    pub const VISITED: u32 = 6;
    pub const BUSINESS_SERVICE_INDEXES: u32 = 7;

    pub const CI_ID: u32 = 1;
    pub const CI_NAME: u32 = 2;
    pub const CI_CLASS: u32 = 3;
    pub const CI_DEPTH: u32 = 4;
    pub const CI_PATH: u32 = 5;
    pub const CI_REACHED_BY: u32 = 6;
    pub const CI_REACHED_FROM: u32 = 7;
    pub const CI_REACHED_AS_SOURCE: u32 = 8;

    pub const STEP_SOURCE_ID: u32 = 1;
    pub const STEP_TYPE: u32 = 2;
    pub const STEP_TARGET_ID: u32 = 3;
}

/// Why there is no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnswerError {
    #[error(transparent)]
    Graph(#[from] GraphError),
    /// The answer would not fit in a gRPC message the service may send.
    #[error("the answer would be {bytes} bytes, more than the {limit} a message may hold")]
    TooLarge { bytes: usize, limit: usize },
}

/// The answer to `query` over `graph`, encoded; ids are formatted for `region`.
pub fn encode_impact_answer(
    graph: &ImpactGraph,
    region: &str,
    query: &ImpactQuery,
) -> Result<pb::EncodedAnalyzeImpactResponse, AnswerError> {
    encode_in_parts(graph, region, query, usize::MAX, WRITE_IN_TWO_FROM)
}

/// [`encode_impact_answer`], refused with [`AnswerError::TooLarge`] when the answer would be more
/// than `limit` bytes: found after the walk and before a byte is written, so an answer too large
/// to send costs the walk only (and a count of its size when a cheap bound does not settle it).
pub fn encode_impact_answer_within(
    graph: &ImpactGraph,
    region: &str,
    query: &ImpactQuery,
    limit: usize,
) -> Result<pb::EncodedAnalyzeImpactResponse, AnswerError> {
    encode_in_parts(graph, region, query, limit, WRITE_IN_TWO_FROM)
}

/// [`encode_impact_answer_within`], by two threads from `in_two_from` reported CIs on.
fn encode_in_parts(
    graph: &ImpactGraph,
    region: &str,
    query: &ImpactQuery,
    limit: usize,
    in_two_from: usize,
) -> Result<pb::EncodedAnalyzeImpactResponse, AnswerError> {
    graph
        .impact_with(query, |walked| {
            let bytes = answer_len_over(graph, region, query, walked, limit);
            if let Some(bytes) = bytes {
                return Err(AnswerError::TooLarge { bytes, limit });
            }
            let len = walked.len();
            let helper = (len >= in_two_from.max(2))
                .then(HelperThread::take)
                .flatten();
            let Some(_helper) = helper else {
                let mut whole = Writer::new(graph, region, len);
                whole.cis(walked, 0..len);
                whole.end(walked, query, &[]);
                return Ok(vec![whole.out]);
            };
            let middle = len / 2;
            // Captures references only, so it can be handed to a thread and still be called.
            let write_tail = || {
                let mut tail = Writer::new(graph, region, len - middle);
                tail.cis(walked, middle..len);
                tail
            };
            let mut head = Writer::new(graph, region, middle);
            let mut tail = std::thread::scope(|scope| {
                let tail = std::thread::Builder::new()
                    .name("impact-answer".into())
                    .spawn_scoped(scope, write_tail);
                head.cis(walked, 0..middle);
                match tail {
                    Ok(tail) => tail
                        .join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
                    // No thread to be had: this one writes the rest too.
                    Err(_) => write_tail(),
                }
            });
            tail.end(walked, query, &head.business);
            Ok(vec![head.out, tail.out])
        })?
        .map(pb::EncodedAnalyzeImpactResponse::from_parts)
}

/// A slot for a second thread writing half of a large answer. Slots are as many as the process
/// has cores less one, so concurrent large answers never start more threads than can run: an
/// answer that finds none taken writes both halves on its own thread.
struct HelperThread;

static HELPER_THREADS_IN_USE: std::sync::atomic::AtomicUsize =
    std::sync::atomic::AtomicUsize::new(0);

impl HelperThread {
    fn take() -> Option<HelperThread> {
        use std::sync::atomic::Ordering;
        static SLOTS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
        let slots = *SLOTS.get_or_init(|| {
            std::thread::available_parallelism()
                .map(|n| n.get().saturating_sub(1))
                .unwrap_or(0)
        });
        HELPER_THREADS_IN_USE
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                (used < slots).then_some(used + 1)
            })
            .ok()
            .map(|_| HelperThread)
    }
}

impl Drop for HelperThread {
    fn drop(&mut self) {
        HELPER_THREADS_IN_USE.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

/// `Some(bytes)` when the answer to `walked` would exceed `limit` bytes. A bound from the longest
/// label the graph holds settles most answers at once; only one near the limit is counted CI by
/// CI (as [`Writer::ci`] would write it).
fn answer_len_over(
    graph: &ImpactGraph,
    region: &str,
    query: &ImpactQuery,
    walked: &Walked<'_>,
    limit: usize,
) -> Option<usize> {
    let id_len = region.len() + 1 + uuid::fmt::Hyphenated::LENGTH;
    // Per CI: its framing, id, label, depth, the compact explanation, and its business position.
    let per_ci = 6 + delimited_len(id_len) + 6 + graph.longest_label() + 6 + 3 + 6 + 2 + 5;
    let step = delimited_len(2 * delimited_len(id_len) + 3);
    let mut bound = 64usize;
    for reported in walked.reported() {
        bound = bound.saturating_add(per_ci);
        if reported.whole_path {
            bound = bound.saturating_add(step.saturating_mul(reported.depth as usize));
        }
        if bound > limit {
            break;
        }
    }
    if bound <= limit {
        return None;
    }
    let mut exact = 0usize;
    let mut business = 0usize;
    for (position, reported) in walked.reported().enumerate() {
        let label = graph.label_at(reported.node);
        let path = walked.path(&reported);
        exact = exact.saturating_add(delimited_len(ci_len(id_len, &label, &reported, &path)));
        if label.business_service {
            business += encoded_len_varint(position as u64);
        }
    }
    // The fields after the CIs, as `Writer::end` writes them.
    let truncated_by = match walked.truncated() {
        Some(Truncation::Depth) => "depth",
        Some(Truncation::Nodes) => "nodes",
        None => "",
    };
    exact = exact
        + text_len(truncated_by)
        + varint_len(u64::from(query.max_depth))
        + varint_len(u64::from(query.max_nodes))
        + varint_len(u64::from(walked.visited()))
        + if business > 0 {
            delimited_len(business)
        } else {
            0
        };
    (exact > limit).then_some(exact)
}

/// The answer in brief (the SUMMARY view): counts, classes and the business services reached,
/// each without its path.
pub fn summarize_impact(
    graph: &ImpactGraph,
    region: &str,
    query: &ImpactQuery,
) -> Result<pb::AnalyzeImpactResponse, GraphError> {
    graph.impact_with(query, |walked| {
        let mut by_class: Vec<(usize, u32)> = Vec::new();
        let mut class_positions: std::collections::HashMap<&str, usize> =
            std::collections::HashMap::new();
        let mut business_services = Vec::new();
        let mut max_depth_reached = 0;
        for reported in walked.reported() {
            let label = graph.label_at(reported.node);
            max_depth_reached = max_depth_reached.max(reported.depth);
            let next = by_class.len();
            let at = *class_positions.entry(label.class).or_insert(next);
            if at == next {
                by_class.push((at, 0));
            }
            by_class[at].1 += 1;
            if label.business_service {
                business_services.push(pb::ImpactedCi {
                    id: desk_kit::ids::format_id(region, label.id),
                    name: label.name.to_owned(),
                    class: label.class.to_owned(),
                    depth: reported.depth,
                    ..Default::default()
                });
            }
        }
        let mut classes: Vec<(&str, usize)> = class_positions.into_iter().collect();
        classes.sort_by_key(|(_, at)| *at);
        let mut by_class: Vec<pb::ClassCount> = classes
            .into_iter()
            .map(|(class, at)| pb::ClassCount {
                class: class.to_owned(),
                count: by_class[at].1,
            })
            .collect();
        // Most common first; ties by name, so the same graph gives the same answer.
        by_class.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.class.cmp(&b.class)));
        pb::AnalyzeImpactResponse {
            truncated_by: match walked.truncated() {
                Some(Truncation::Depth) => "depth",
                Some(Truncation::Nodes) => "nodes",
                None => "",
            }
            .to_owned(),
            max_depth: query.max_depth,
            max_nodes: query.max_nodes,
            visited: walked.visited(),
            summary: Some(pb::ImpactSummary {
                cis_reached: u32::try_from(walked.len()).unwrap_or(u32::MAX),
                business_services,
                by_class,
                max_depth_reached,
            }),
            ..Default::default()
        }
    })
}

/// Bytes of one reported CI's `ImpactedCi` message (without its own key and length).
fn ci_len(id_len: usize, label: &Label<'_>, reported: &Reported, path: &[PathStep]) -> usize {
    let step_len = 2 * delimited_len(id_len);
    let (reached_by, reached_from, as_source) = match reported.reached {
        Some(reached) => (
            relationship_type_to_pb(reached.relationship) as u64,
            Some(u64::from(reached.from)),
            reached.as_source,
        ),
        None => (0, None, false),
    };
    delimited_len(id_len)
        + text_len(label.name)
        + text_len(label.class)
        + varint_len(u64::from(reported.depth))
        + path
            .iter()
            .map(|step| delimited_len(step_len + varint_len(relationship_number(step))))
            .sum::<usize>()
        + varint_len(reached_by)
        // `optional`: sent when set, zero included.
        + reached_from.map_or(0, |from| 1 + encoded_len_varint(from))
        + if as_source { 2 } else { 0 }
}

/// Writes reported CIs, and the fields after them, into `out`.
struct Writer<'a> {
    graph: &'a ImpactGraph,
    region: &'a str,
    out: Vec<u8>,
    /// The positions of the business services among the CIs written.
    business: Vec<u64>,
}

/// Bytes of a length-delimited field holding `len` bytes, key included.
fn delimited_len(len: usize) -> usize {
    1 + encoded_len_varint(len as u64) + len
}

/// Bytes of a varint field, key included; prost leaves zeros out.
fn varint_len(value: u64) -> usize {
    if value == 0 {
        0
    } else {
        1 + encoded_len_varint(value)
    }
}

/// Bytes of a string field, key included; prost leaves empty strings out.
fn text_len(text: &str) -> usize {
    if text.is_empty() {
        0
    } else {
        delimited_len(text.len())
    }
}

fn relationship_number(step: &PathStep) -> u64 {
    relationship_type_to_pb(step.relationship) as u64
}

impl<'a> Writer<'a> {
    fn new(graph: &'a ImpactGraph, region: &'a str, cis: usize) -> Self {
        Self {
            graph,
            region,
            // Roughly a CI's id, name, class and a few numbers each: one allocation for most
            // answers, instead of doubling from small.
            out: Vec::with_capacity(cis * (region.len() + 90) + 64),
            business: Vec::new(),
        }
    }

    /// The reported CIs at `positions`.
    fn cis(&mut self, walked: &Walked<'_>, positions: std::ops::Range<usize>) {
        let graph = self.graph;
        let mut position = positions.start as u64;
        let mut reported = walked.reported_in(positions);
        let mut batch: Vec<(Reported, Label<'_>)> = Vec::with_capacity(BATCH);
        loop {
            // The CIs of a closure lie anywhere in memory. Read one at a time between writes,
            // each card and each name waited for memory alone (four fifths of the writer's
            // time); read in a loop that does nothing else, the reads of a batch overlap.
            batch.extend(
                reported
                    .by_ref()
                    .take(BATCH)
                    .map(|reported| (reported, graph.label_at(reported.node))),
            );
            if batch.is_empty() {
                break;
            }
            let first_bytes = batch.iter().fold(0u8, |all, (_, label)| {
                all ^ label.name.as_bytes().first().copied().unwrap_or(0)
            });
            std::hint::black_box(first_bytes);
            for (reported, label) in batch.drain(..) {
                self.ci(walked, &reported, &label);
                if label.business_service {
                    self.business.push(position);
                }
                position += 1;
            }
        }
    }

    /// The fields after the CIs; the business services written by an earlier writer are
    /// `before`, ahead of this one's.
    fn end(&mut self, walked: &Walked<'_>, query: &ImpactQuery, before: &[u64]) {
        self.text(
            field::TRUNCATED_BY,
            match walked.truncated() {
                Some(Truncation::Depth) => "depth",
                Some(Truncation::Nodes) => "nodes",
                None => "",
            },
        );
        self.varint(field::MAX_DEPTH, u64::from(query.max_depth));
        self.varint(field::MAX_NODES, u64::from(query.max_nodes));
        self.varint(field::VISITED, u64::from(walked.visited()));
        // prost writes fields by number, and this one was added last.
        // Positions among the reported CIs, fewer than u32::MAX (MAX_NODES).
        let business = std::mem::take(&mut self.business);
        let len = before
            .iter()
            .chain(&business)
            .map(|&p| encoded_len_varint(p))
            .sum::<usize>();
        if len > 0 {
            self.key_and_len(field::BUSINESS_SERVICE_INDEXES, len);
            for &position in before.iter().chain(&business) {
                encode_varint(position, &mut self.out);
            }
        }
    }

    fn ci(&mut self, walked: &Walked<'_>, reported: &Reported, label: &Label<'_>) {
        let (name, class) = (label.name, label.class);
        let path = walked.path(reported);
        let id_len = self.id_len();
        let step_len = 2 * delimited_len(id_len);
        let (reached_by, reached_from, as_source) = match reported.reached {
            Some(reached) => (
                relationship_type_to_pb(reached.relationship) as u64,
                Some(u64::from(reached.from)),
                reached.as_source,
            ),
            None => (0, None, false),
        };
        let len = ci_len(id_len, label, reported, &path);

        self.key_and_len(field::CIS, len);
        self.id(field::CI_ID, label.id);
        self.text(field::CI_NAME, name);
        self.text(field::CI_CLASS, class);
        self.varint(field::CI_DEPTH, u64::from(reported.depth));
        for step in &path {
            let relationship = relationship_number(step);
            self.key_and_len(field::CI_PATH, step_len + varint_len(relationship));
            self.id(field::STEP_SOURCE_ID, step.source);
            self.varint(field::STEP_TYPE, relationship);
            self.id(field::STEP_TARGET_ID, step.target);
        }
        self.varint(field::CI_REACHED_BY, reached_by);
        if let Some(from) = reached_from {
            encode_key(field::CI_REACHED_FROM, WireType::Varint, &mut self.out);
            encode_varint(from, &mut self.out);
        }
        if as_source {
            self.varint(field::CI_REACHED_AS_SOURCE, 1);
        }
    }

    /// `<region>-<uuid>`, as `desk_kit::ids::format_id` writes it.
    fn id_len(&self) -> usize {
        self.region.len() + 1 + uuid::fmt::Hyphenated::LENGTH
    }

    fn id(&mut self, tag: u32, id: Uuid) {
        self.key_and_len(tag, self.id_len());
        self.out.extend_from_slice(self.region.as_bytes());
        self.out.push(b'-');
        let mut buffer = Uuid::encode_buffer();
        self.out
            .extend_from_slice(id.hyphenated().encode_lower(&mut buffer).as_bytes());
    }

    fn text(&mut self, tag: u32, text: &str) {
        if !text.is_empty() {
            self.key_and_len(tag, text.len());
            self.out.extend_from_slice(text.as_bytes());
        }
    }

    fn varint(&mut self, tag: u32, value: u64) {
        if value != 0 {
            encode_key(tag, WireType::Varint, &mut self.out);
            encode_varint(value, &mut self.out);
        }
    }

    fn key_and_len(&mut self, tag: u32, len: usize) {
        encode_key(tag, WireType::LengthDelimited, &mut self.out);
        encode_varint(len as u64, &mut self.out);
    }
}

#[cfg(test)]
mod tests {
    use desk_kit::ids;
    use proptest::prelude::*;
    use prost::Message as _;

    use super::*;
    use crate::domain::{
        CiStatus,
        impact::{Direction, ImpactEdge, ImpactNode},
        relationship::RelationshipType,
    };

    /// The answer as generated messages, the way `AnalyzeImpact` built it before: what the
    /// encoder must equal, byte for byte.
    fn as_messages(graph: &ImpactGraph, region: &str, query: &ImpactQuery) -> Vec<u8> {
        let result = graph.impact(query).expect("known start CIs");
        let step = |s: &PathStep| pb::PathStep {
            source_id: ids::format_id(region, s.source),
            r#type: relationship_type_to_pb(s.relationship) as i32,
            target_id: ids::format_id(region, s.target),
        };
        pb::AnalyzeImpactResponse {
            cis: result
                .nodes
                .iter()
                .map(|n| pb::ImpactedCi {
                    id: ids::format_id(region, n.id),
                    name: graph.name_at(n.node).to_owned(),
                    class: graph.class_at(n.node).to_owned(),
                    depth: n.depth,
                    path: n.via.iter().map(step).collect(),
                    reached_by: n
                        .reached
                        .as_ref()
                        .map_or(0, |(s, _)| relationship_type_to_pb(s.relationship) as i32),
                    reached_from: n.reached.as_ref().map(|&(_, from)| from as u32),
                    reached_as_source: n.reached.as_ref().is_some_and(|(s, _)| s.source == n.id),
                })
                .collect(),
            business_service_indexes: result
                .business_services
                .iter()
                .map(|&position| position as u32)
                .collect(),
            truncated_by: match result.truncated {
                Some(Truncation::Depth) => "depth".into(),
                Some(Truncation::Nodes) => "nodes".into(),
                None => String::new(),
            },
            max_depth: query.max_depth,
            max_nodes: query.max_nodes,
            visited: result.visited,
            summary: None,
        }
        .encode_to_vec()
    }

    fn id(n: usize) -> Uuid {
        Uuid::from_u128(0xa000 + n as u128)
    }

    /// `n` CIs, some retired, some business services, some without a name, and `edges` as
    /// `(source, type, target)` positions (cycles and both directions included).
    fn graph(n: usize, edges: &[(usize, usize, usize)]) -> ImpactGraph {
        let nodes = (0..n).map(|i| ImpactNode {
            id: id(i),
            class: ["server", "application", "business_service", ""][i % 4].into(),
            name: if i % 5 == 4 {
                String::new()
            } else {
                format!("ci-{i}")
            },
            status: if i % 7 == 6 {
                CiStatus::Retired
            } else {
                CiStatus::InUse
            },
            business_service: i % 4 == 2,
        });
        let edges = edges
            .iter()
            .filter(|(s, _, t)| s != t)
            .map(|&(s, kind, t)| ImpactEdge {
                source: id(s % n),
                relationship: RelationshipType::ALL[kind % RelationshipType::ALL.len()],
                target: id(t % n),
            });
        ImpactGraph::build(nodes, edges).expect("valid graph")
    }

    fn query(start: Vec<Uuid>, direction: Direction, paths: bool, via: bool) -> ImpactQuery {
        ImpactQuery {
            start,
            direction,
            max_depth: 32,
            max_nodes: 200_000,
            relationship_types: None,
            include_paths: paths,
            include_via: via,
        }
    }

    fn assert_same(graph: &ImpactGraph, query: &ImpactQuery) {
        let encoded = encode_impact_answer(graph, "emea", query).expect("known start CIs");
        let expected = as_messages(graph, "emea", query);
        assert_eq!(encoded.encode_to_vec(), expected, "query {query:?}");
        // Written by two threads, split anywhere: the same bytes.
        for in_two_from in [2, 3, 7] {
            let in_two =
                encode_in_parts(graph, "emea", query, usize::MAX, in_two_from).expect("known");
            assert_eq!(
                in_two.encode_to_vec(),
                expected,
                "in two from {in_two_from}"
            );
        }
        // And a client reads it as the generated message.
        assert_eq!(
            pb::AnalyzeImpactResponse::decode(encoded.encode_to_vec().as_slice()),
            pb::AnalyzeImpactResponse::decode(expected.as_slice())
        );
    }

    #[test]
    fn a_chain_with_a_cycle_is_written_as_prost_writes_it() {
        // 0 depends on 1 on 2 on 0; 3 runs on 1; 2 connects to 4; 5 provides 2.
        let graph = graph(
            6,
            &[
                (0, 0, 1),
                (1, 0, 2),
                (2, 0, 0),
                (3, 1, 1),
                (2, 2, 4),
                (5, 4, 2),
            ],
        );
        for direction in [Direction::Upstream, Direction::Downstream, Direction::Both] {
            for (paths, via) in [(false, false), (true, false), (false, true), (true, true)] {
                assert_same(&graph, &query(vec![id(1)], direction, paths, via));
            }
        }
    }

    #[test]
    fn an_answer_over_the_message_limit_is_refused_before_it_is_written() {
        let edges: Vec<(usize, usize, usize)> = (0..299).map(|i| (i, 0, i + 1)).collect();
        let graph = graph(300, &edges);
        for (paths, via) in [(false, false), (true, false), (false, true)] {
            let full = query(vec![id(299)], Direction::Upstream, paths, via);
            let bytes = encode_impact_answer(&graph, "emea", &full)
                .expect("known")
                .encode_to_vec()
                .len();
            // The exact size fits; a byte less does not, and the error says how large it was.
            assert!(encode_impact_answer_within(&graph, "emea", &full, bytes).is_ok());
            assert_eq!(
                encode_impact_answer_within(&graph, "emea", &full, bytes - 1).err(),
                Some(AnswerError::TooLarge {
                    bytes,
                    limit: bytes - 1
                }),
                "paths {paths}, via {via}"
            );
        }
    }

    #[test]
    fn a_summary_counts_what_the_full_answer_lists() {
        let edges: Vec<(usize, usize, usize)> =
            (0..39).map(|i| (i, i % 3, (i * 7 + 1) % 40)).collect();
        let graph = graph(40, &edges);
        let walk = query(vec![id(1), id(9)], Direction::Both, false, false);
        let full = graph.impact(&walk).expect("known");
        let answer = summarize_impact(&graph, "emea", &walk).expect("known");
        let summary = answer.summary.clone().expect("a summary");
        assert!(answer.cis.is_empty());
        assert_eq!(summary.cis_reached as usize, full.nodes.len());
        assert_eq!(
            summary
                .by_class
                .iter()
                .map(|c| c.count as usize)
                .sum::<usize>(),
            full.nodes.len()
        );
        assert!(
            summary
                .by_class
                .windows(2)
                .all(|w| w[0].count >= w[1].count)
        );
        let expected: Vec<String> = full
            .business_services
            .iter()
            .map(|&at| ids::format_id("emea", full.nodes[at].id))
            .collect();
        let reported: Vec<String> = summary
            .business_services
            .iter()
            .map(|b| b.id.clone())
            .collect();
        assert_eq!(reported, expected);
        assert!(summary.business_services.iter().all(|b| b.path.is_empty()));
        assert_eq!(
            summary.max_depth_reached,
            full.nodes.iter().map(|n| n.depth).max().unwrap_or(0)
        );
        assert!(answer.encode_to_vec().len() < 2048, "a summary is small");
    }

    #[test]
    fn limits_show_in_the_answer() {
        let graph = graph(8, &[(0, 0, 1), (1, 0, 2), (2, 0, 3), (3, 0, 4)]);
        let mut limited = query(vec![id(4)], Direction::Upstream, false, true);
        limited.max_depth = 2;
        assert_same(&graph, &limited);
        let decoded = pb::AnalyzeImpactResponse::decode(
            encode_impact_answer(&graph, "emea", &limited)
                .expect("known")
                .encode_to_vec()
                .as_slice(),
        )
        .expect("decodes");
        assert_eq!(decoded.truncated_by, "depth");
        limited.max_depth = 32;
        limited.max_nodes = 2;
        assert_same(&graph, &limited);
    }

    #[test]
    fn an_unknown_start_is_an_error() {
        let graph = graph(3, &[]);
        let unknown = query(vec![id(99)], Direction::Upstream, false, false);
        assert!(encode_impact_answer(&graph, "emea", &unknown).is_err());
    }

    proptest! {
        #[test]
        fn random_graphs_are_written_as_prost_writes_them(
            n in 2usize..40,
            edges in prop::collection::vec((0usize..40, 0usize..8, 0usize..40), 0..120),
            starts in prop::collection::vec(0usize..40, 1..4),
            direction in 0usize..3,
            explain in 0usize..4,
            max_depth in 0u32..6,
            max_nodes in 1u32..50,
        ) {
            let graph = graph(n, &edges);
            let mut query = query(
                starts.iter().map(|&s| id(s % n)).collect(),
                [Direction::Upstream, Direction::Downstream, Direction::Both][direction],
                explain & 1 != 0,
                explain & 2 != 0,
            );
            query.max_depth = max_depth;
            query.max_nodes = max_nodes;
            assert_same(&graph, &query);
        }
    }
}
