//! The walk: breadth-first from every start CI at once over the packed lists (see the module
//! docs of [`super`]), with its reusable working memory, and the finished walk read in place.

use std::sync::Mutex;

use uuid::Uuid;

use super::*;

/// Frontier states a walk reads ahead for at once (see [`ImpactGraph::walk`]).
const WALK_BATCH: usize = 16;

/// The parent of a start state.
const START: u32 = u32::MAX;
/// In [`Scratch::order`]: the state did not report its CI.
const NOT_REPORTED: u32 = u32::MAX;

/// The working memory of one walk, reused by the next. A state is `node * phases + phase` (a CI
/// in one walk direction); the per-state arrays are valid for the states whose `seen` entry
/// equals the current `generation`, so a new walk starts by bumping the generation, not by
/// clearing them.
#[derive(Debug, Default)]
struct Scratch {
    generation: u32,
    /// Per state, what the walk knows about it, together so that reaching a state costs one
    /// cache line.
    states: Vec<StateSlot>,
    /// Per CI, walking both directions: the generation that reported it.
    reported: Vec<u32>,
    /// Reported CIs in order.
    found: Vec<Found>,
    frontier: Vec<u32>,
    next: Vec<u32>,
    steps: Vec<Adjacent>,
}

/// A reported CI: the state that reached it first, its depth, and the step that reached it,
/// kept here when it is reached so that an answer reads the CIs in order without going back to
/// their scattered states.
#[derive(Debug, Clone, Copy)]
struct Found {
    state: u32,
    depth: u32,
    /// The position in `found` of the CI the step came from, or [`NOT_REPORTED`] for a start CI
    /// and for a step from a CI the other direction of a `Both` walk reported.
    from: u32,
    /// The kind byte of that step.
    kind: u8,
}

#[derive(Debug, Clone, Copy, Default)]
struct StateSlot {
    /// The generation that last reached the state; the rest is valid only when it is current.
    seen: u32,
    /// The state it was reached from, or [`START`].
    parent: u32,
    /// The position in `found` of the CI it reported, or [`NOT_REPORTED`].
    order: u32,
    /// The kind byte of the step that reached it.
    kind: u8,
}

impl Scratch {
    /// Makes room for `states` states and `cis` CIs and starts a new generation.
    fn begin(&mut self, states: usize, cis: usize) {
        if self.states.len() < states {
            self.states.resize(states, StateSlot::default());
        }
        if self.reported.len() < cis {
            self.reported.resize(cis, 0);
        }
        if self.generation == u32::MAX {
            self.states.fill(StateSlot::default());
            self.reported.fill(0);
            self.generation = 0;
        }
        self.generation += 1;
        self.found.clear();
        self.frontier.clear();
        self.next.clear();
    }

    fn is_seen(&self, state: usize) -> bool {
        self.states[state].seen == self.generation
    }

    fn mark(&mut self, state: usize, parent: u32, kind: u8) {
        self.states[state] = StateSlot {
            seen: self.generation,
            parent,
            order: NOT_REPORTED,
            kind,
        };
    }

    /// Reports `state`'s CI at `depth`, reached by a step of `kind` from the CI at position
    /// `from`.
    fn report(&mut self, state: usize, depth: u32, from: u32, kind: u8) {
        // `found` holds at most one entry per CI, and CIs number below `MAX_CIS`.
        self.states[state].order = self.found.len() as u32;
        self.found.push(Found {
            state: state as u32,
            depth,
            from,
            kind,
        });
    }

    /// Whether `node` has been reported (both directions), marking it reported.
    fn claim(&mut self, node: usize) -> bool {
        let fresh = self.reported[node] != self.generation;
        self.reported[node] = self.generation;
        fresh
    }
}

/// Scratch memory for concurrent queries; a clone of the graph starts with none.
#[derive(Debug, Default)]
pub(super) struct ScratchPool(Mutex<Vec<Scratch>>);

impl Clone for ScratchPool {
    fn clone(&self) -> Self {
        Self::default()
    }
}

impl ScratchPool {
    fn take(&self) -> Scratch {
        self.0
            .lock()
            .ok()
            .and_then(|mut pool| pool.pop())
            .unwrap_or_default()
    }

    fn give_back(&self, scratch: Scratch) {
        if let Ok(mut pool) = self.0.lock() {
            pool.push(scratch);
        }
    }
}

/// The types whose impact flow is one of `flows`, as a bit set.
fn mask_of(flows: &[ImpactFlow]) -> u8 {
    RelationshipType::ALL
        .iter()
        .filter(|relationship| flows.contains(&relationship.impact_flow()))
        .fold(0, |mask, relationship| mask | relationship.bit())
}

/// One walk direction, as the set of `kind` bytes it follows: bit `kind` of `follow`.
#[derive(Debug, Clone, Copy)]
struct Walk {
    follow: u16,
}

impl Walk {
    fn new(incoming: u8, outgoing: u8) -> Self {
        Self {
            follow: u16::from(incoming) | (u16::from(outgoing) << OUTGOING),
        }
    }

    fn upstream(types: u8) -> Self {
        use ImpactFlow::{Both, SourceImpactsTarget, TargetImpactsSource};
        // A failed target hits its sources: walk incoming edges of target-impacts-source types.
        Self::new(
            mask_of(&[TargetImpactsSource, Both]) & types,
            mask_of(&[SourceImpactsTarget, Both]) & types,
        )
    }

    fn downstream(types: u8) -> Self {
        use ImpactFlow::{Both, SourceImpactsTarget, TargetImpactsSource};
        Self::new(
            mask_of(&[SourceImpactsTarget, Both]) & types,
            mask_of(&[TargetImpactsSource, Both]) & types,
        )
    }

    fn follows(self, kind: u8) -> bool {
        self.follow & (1 << kind) != 0
    }
}

impl ImpactGraph {
    /// Walks the graph from `query.start`; see the module docs. Unknown start CIs are an error,
    /// so a typo is not mistaken for "no impact".
    pub fn impact(&self, query: &ImpactQuery) -> Result<ImpactResult, GraphError> {
        self.impact_with(query, |walked| walked.to_result())
    }

    /// Walks like [`ImpactGraph::impact`] and lets `read` read the walk where it lies, before
    /// the walk's memory goes back to the pool: an answer written straight from it copies each
    /// reported CI once, instead of into an [`ImpactResult`] and then into the answer.
    pub fn impact_with<R>(
        &self,
        query: &ImpactQuery,
        read: impl FnOnce(&Walked<'_>) -> R,
    ) -> Result<R, GraphError> {
        let mut starts: Vec<u32> = Vec::with_capacity(query.start.len());
        for id in &query.start {
            let index = self.position(*id)? as u32;
            if !starts.contains(&index) {
                starts.push(index);
            }
        }
        let mut scratch = self.scratch.take();
        let (phases, truncated, visited) = self.walk(query, &starts, &mut scratch);
        let read = read(&Walked {
            graph: self,
            scratch: &scratch,
            phases,
            include_paths: query.include_paths,
            include_via: query.include_via,
            truncated,
            visited,
        });
        self.scratch.give_back(scratch);
        Ok(read)
    }

    /// The breadth-first walk itself, leaving the reported CIs in `scratch.found`: returns the
    /// number of phases (walk directions), why it stopped short if it did, and the CIs visited.
    fn walk(
        &self,
        query: &ImpactQuery,
        starts: &[u32],
        scratch: &mut Scratch,
    ) -> (usize, Option<Truncation>, u32) {
        let types = query.relationship_types.as_ref().map_or(u8::MAX, |types| {
            types
                .iter()
                .fold(0, |mask, relationship| mask | relationship.bit())
        });
        let walks: &[Walk] = &match query.direction {
            Direction::Upstream => vec![Walk::upstream(types)],
            Direction::Downstream => vec![Walk::downstream(types)],
            Direction::Both => vec![Walk::upstream(types), Walk::downstream(types)],
        };
        let phases = walks.len();
        let max_nodes = query.max_nodes as usize;
        scratch.begin(self.nodes.len() * phases, self.nodes.len());
        // With one direction a CI is reported exactly when its state is first seen; with two, a
        // CI seen in one direction may still be walked in the other, so reports are kept apart.
        let both = phases > 1;
        let mut truncated = None;
        let mut visited: u32 = 0;

        for &start in starts {
            if scratch.found.len() >= max_nodes {
                truncated = Some(Truncation::Nodes);
                break;
            }
            if both {
                scratch.claim(start as usize);
            }
            for phase in 0..phases {
                let state = start as usize * phases + phase;
                scratch.mark(state, START, 0);
                scratch.frontier.push(state as u32);
            }
            scratch.report(start as usize * phases, 0, NOT_REPORTED, 0);
        }

        let mut depth = 0;
        let mut frontier = std::mem::take(&mut scratch.frontier);
        let mut next = std::mem::take(&mut scratch.next);
        // The steps a batch of the frontier follows, list after list.
        let mut steps = std::mem::take(&mut scratch.steps);
        'levels: while truncated.is_none() && !frontier.is_empty() {
            if depth >= query.max_depth {
                if self.reaches_beyond(&frontier, walks, scratch) {
                    truncated = Some(Truncation::Depth);
                }
                break;
            }
            // The frontier's CIs lie anywhere in memory, and so do their neighbours: taken one
            // at a time, every list and every neighbour's state waited for memory alone. A
            // batch first reads what it will need in loops that do nothing else, so that those
            // reads overlap, then walks exactly as one at a time would.
            for batch in frontier.chunks(WALK_BATCH) {
                let mut lists: [&[Adjacent]; WALK_BATCH] = [&[]; WALK_BATCH];
                let mut froms = [NOT_REPORTED; WALK_BATCH];
                let mut ends = [0usize; WALK_BATCH];
                for (at, &state) in batch.iter().enumerate() {
                    lists[at] = self.adjacent.list(state / phases as u32);
                    froms[at] = scratch.states[state as usize].order;
                }
                let mut touched = lists
                    .iter()
                    .fold(0u32, |all, list| all ^ list.first().map_or(0, |a| a.node()));
                steps.clear();
                for (at, &state) in batch.iter().enumerate() {
                    let walk = walks[state as usize % phases];
                    steps.extend(
                        lists[at]
                            .iter()
                            .filter(|adjacent| walk.follows(adjacent.kind()))
                            .copied(),
                    );
                    ends[at] = steps.len();
                }
                // The steps of the batch's `at`-th state.
                let span = |at: usize| (if at == 0 { 0 } else { ends[at - 1] })..ends[at];
                for (at, &state) in batch.iter().enumerate() {
                    let phase = state as usize % phases;
                    for adjacent in &steps[span(at)] {
                        let neighbour = adjacent.node() as usize;
                        touched ^= scratch.states[neighbour * phases + phase].seen
                            ^ u32::from(self.retired[neighbour]);
                    }
                }
                std::hint::black_box(touched);

                for (at, &state) in batch.iter().enumerate() {
                    let phase = state as usize % phases;
                    let from = froms[at];
                    visited = visited.saturating_add(1);
                    for adjacent in &steps[span(at)] {
                        let neighbour = adjacent.node() as usize;
                        let reached = neighbour * phases + phase;
                        if scratch.is_seen(reached) || self.retired[neighbour] {
                            continue;
                        }
                        let new_ci = !both || scratch.claim(neighbour);
                        if new_ci && scratch.found.len() >= max_nodes {
                            truncated = Some(Truncation::Nodes);
                            break 'levels;
                        }
                        scratch.mark(reached, state, adjacent.kind());
                        if new_ci {
                            scratch.report(reached, depth + 1, from, adjacent.kind());
                        }
                        next.push(reached as u32);
                    }
                }
            }
            std::mem::swap(&mut frontier, &mut next);
            next.clear();
            depth += 1;
        }
        scratch.frontier = frontier;
        scratch.next = next;
        scratch.steps = steps;

        (phases, truncated, visited)
    }

    /// Whether a CI not yet reported lies one step beyond `frontier`: the depth limit cut
    /// something off.
    fn reaches_beyond(&self, frontier: &[u32], walks: &[Walk], scratch: &Scratch) -> bool {
        let phases = walks.len();
        frontier.iter().any(|&state| {
            let (node, phase) = (state as usize / phases, state as usize % phases);
            self.adjacent.list(node as u32).iter().any(|adjacent| {
                let neighbour = adjacent.node() as usize;
                walks[phase].follows(adjacent.kind())
                    && !self.retired[neighbour]
                    && if phases > 1 {
                        scratch.reported[neighbour] != scratch.generation
                    } else {
                        !scratch.is_seen(neighbour)
                    }
            })
        })
    }

    /// Follows parent pointers from `state` back to its start and returns the steps in walk
    /// order.
    fn path(&self, state: u32, depth: u32, phases: usize, scratch: &Scratch) -> Vec<PathStep> {
        let mut steps = Vec::with_capacity(depth as usize);
        let mut current = state;
        while let Some((step, previous)) = self.last_step(current, phases, scratch) {
            steps.push(step);
            current = previous;
        }
        steps.reverse();
        steps
    }

    /// The step that reached `state`, and the state it came from; `None` for a start state.
    fn last_step(&self, state: u32, phases: usize, scratch: &Scratch) -> Option<(PathStep, u32)> {
        let current = state as usize;
        let slot = scratch.states[current];
        let previous = slot.parent;
        if previous == START {
            return None;
        }
        let here = self.labels.card(current / phases).id;
        let there = self.labels.card(previous as usize / phases).id;
        let kind = slot.kind;
        // The step went from `there` to `here`; OUTGOING means `there` is the source.
        let (source, target) = if kind & OUTGOING != 0 {
            (there, here)
        } else {
            (here, there)
        };
        Some((
            PathStep {
                source,
                relationship: type_of(kind),
                target,
            },
            previous,
        ))
    }
}

/// A finished walk, read where it lies (see [`ImpactGraph::impact_with`]): the CIs it reported,
/// start CIs first, then in breadth-first order, as [`ImpactResult::nodes`] holds them.
pub struct Walked<'a> {
    graph: &'a ImpactGraph,
    scratch: &'a Scratch,
    phases: usize,
    include_paths: bool,
    include_via: bool,
    truncated: Option<Truncation>,
    visited: u32,
}

/// A CI as answers show it ([`ImpactGraph::label_at`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Label<'a> {
    pub id: Uuid,
    pub name: &'a str,
    pub class: &'a str,
    pub business_service: bool,
}

/// One reported CI of a [`Walked`], without copies: what an answer reads of it through the graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reported {
    pub node: NodeRef,
    pub depth: u32,
    /// What [`ImpactedNode::reached`] says, without the ids: the type of the step that reached
    /// the CI, the position of the CI it came from, and whether this CI is the step's source.
    pub reached: Option<ReachedBy>,
    /// Whether the whole path explains it ([`ImpactedNode::via`]): always with `include_paths`,
    /// and with `include_via` where `reached` cannot (see there).
    pub whole_path: bool,
    state: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReachedBy {
    pub relationship: RelationshipType,
    /// A position among the reported CIs, always an earlier one.
    pub from: u32,
    pub as_source: bool,
}

impl Walked<'_> {
    pub fn len(&self) -> usize {
        self.scratch.found.len()
    }

    pub fn is_empty(&self) -> bool {
        self.scratch.found.is_empty()
    }

    pub fn truncated(&self) -> Option<Truncation> {
        self.truncated
    }

    pub fn visited(&self) -> u32 {
        self.visited
    }

    /// The reported CIs in order.
    pub fn reported(&self) -> impl ExactSizeIterator<Item = Reported> + '_ {
        self.reported_in(0..self.len())
    }

    /// The reported CIs at `positions` (within `0..len()`), in order.
    pub fn reported_in(
        &self,
        positions: std::ops::Range<usize>,
    ) -> impl ExactSizeIterator<Item = Reported> + '_ {
        self.scratch.found[positions].iter().map(|found| {
            // The CI it came from is reported by the state it came through, except when a walk
            // in both directions passes through a CI reported by the other direction: chaining
            // there would mix the directions, so that CI gets its whole path.
            let reached = (self.include_via && found.from != NOT_REPORTED).then(|| ReachedBy {
                relationship: type_of(found.kind),
                from: found.from,
                // OUTGOING: the CI it came from is the relationship's source.
                as_source: found.kind & OUTGOING == 0,
            });
            let state = found.state;
            Reported {
                node: NodeRef(state / self.phases as u32),
                depth: found.depth,
                reached,
                whole_path: self.include_paths || (self.include_via && reached.is_none()),
                state,
            }
        })
    }

    /// The positions of the reported CIs that are business services, in order.
    pub fn business_services(&self) -> impl Iterator<Item = usize> + '_ {
        self.reported()
            .enumerate()
            .filter(|(_, reported)| self.graph.is_business_service_at(reported.node))
            .map(|(position, _)| position)
    }

    /// The whole path that explains `reported`, from its start CI; empty for a start CI and
    /// when it is not explained by a whole path.
    pub fn path(&self, reported: &Reported) -> Vec<PathStep> {
        if !reported.whole_path {
            return Vec::new();
        }
        self.graph
            .path(reported.state, reported.depth, self.phases, self.scratch)
    }

    /// Copies the walk out.
    pub fn to_result(&self) -> ImpactResult {
        let graph = self.graph;
        let nodes = self
            .reported()
            .map(|reported| ImpactedNode {
                id: graph.id_at(reported.node),
                node: reported.node,
                depth: reported.depth,
                via: self.path(&reported),
                reached: reported.reached.map(|reached| {
                    let (here, there) = (
                        graph.id_at(reported.node),
                        graph.id_at(NodeRef(
                            self.scratch.found[reached.from as usize].state / self.phases as u32,
                        )),
                    );
                    let (source, target) = if reached.as_source {
                        (here, there)
                    } else {
                        (there, here)
                    };
                    let step = PathStep {
                        source,
                        relationship: reached.relationship,
                        target,
                    };
                    (step, reached.from as usize)
                }),
            })
            .collect();
        ImpactResult {
            nodes,
            business_services: self.business_services().collect(),
            truncated: self.truncated,
            visited: self.visited,
        }
    }
}
