//! Impact analysis: which CIs — and which business services — a failure reaches, over an
//! in-memory index of the relationship graph.
//!
//! The service builds one [`ImpactGraph`] per tenant at start and keeps it current from its own
//! writes (`add_node`, `update_node`, `retire_node`, `add_edge`, `remove_edge`), so a query never
//! touches the database. The index is compact — CIs are numbered `0..n`, each keeps its
//! outgoing and incoming relationships in one list of `(neighbour, type)` pairs of 8 bytes, and
//! the lists sit packed in one array (see `Adjacency`) — because the target is 100,000 CIs and
//! 500,000 relationships with a full closure in 20 ms and a depth-3 query in 2 ms, and a walk
//! that large is bound by memory latency, not by instructions.
//!
//! # Directions
//!
//! - [`Direction::Upstream`]: *who is affected if the start CIs fail*. Along `A depends_on B`
//!   a failure of B reaches A, so the walk goes against `depends_on` and `runs_on` edges, along
//!   `provides` edges and both ways along `connects_to` (see
//!   [`super::relationship::ImpactFlow`]).
//! - [`Direction::Downstream`]: *what the start CIs depend on* — the exact reverse.
//! - [`Direction::Both`]: the union of the two walks. They are kept apart (a node reached
//!   upstream is not then walked downstream), because a sibling of a failed CI's dependant is
//!   neither affected by it nor needed by it.
//!
//! `member_of` never carries impact. Retired CIs are never entered (a start CI is always
//! reported and walked, retired or not: the caller asked about it).
//!
//! # Traversal
//!
//! Breadth-first from all start CIs at once, so each CI is reported once, at its shortest
//! distance from the nearest start, with one shortest explaining path. Paths are not copied while
//! walking: each visited state keeps a parent pointer, and only the reported CIs' paths are
//! rebuilt at the end, when asked for.
//!
//! The per-state arrays a walk needs are as long as the graph, but a walk touches only the
//! states it reaches: they are kept between queries ([`Scratch`]) and invalidated by a
//! generation number instead of being allocated and cleared each time, which cost more than the
//! walk itself for a depth-3 query on a 100,000-CI estate.

use std::{collections::HashMap, sync::Mutex};

use uuid::Uuid;

use super::ci::CiStatus;
use super::relationship::{ImpactFlow, RelationshipType};

/// What impact analysis needs to know about a CI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImpactNode {
    pub id: Uuid,
    pub class: String,
    pub name: String,
    pub status: CiStatus,
    /// Whether the CI's class is `business_service` or a subclass; the caller asks the catalog,
    /// so tenant subclasses count.
    pub business_service: bool,
}

/// A stored relationship, as it is written: `source relationship target`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ImpactEdge {
    pub source: Uuid,
    pub relationship: RelationshipType,
    pub target: Uuid,
}

/// Which way to walk; see the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    Upstream,
    Downstream,
    Both,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImpactQuery {
    /// The CIs that fail (upstream) or whose dependencies are wanted (downstream).
    pub start: Vec<Uuid>,
    pub direction: Direction,
    /// Relationships walked from a start CI at most; 0 reports the start CIs only.
    pub max_depth: u32,
    /// CIs reported at most, start CIs included.
    pub max_nodes: u32,
    /// Only these types are walked; `None` walks every type.
    pub relationship_types: Option<Vec<RelationshipType>>,
    /// Whether each CI comes with the path that explains it.
    pub include_paths: bool,
    /// Whether each CI comes with the one step that reached it and the index of the CI it was
    /// reached from ([`ImpactedNode::reached`]): the same explanation as the paths, at one step
    /// per CI instead of `depth` steps, for answers too large to repeat every path.
    pub include_via: bool,
}

/// One relationship on an explaining path, as stored (`source relationship target`). A path
/// starts at a start CI; each step shares a CI with the one before, and the walk may cross a
/// step from target to source (upstream along `runs_on`, for instance).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PathStep {
    pub source: Uuid,
    pub relationship: RelationshipType,
    pub target: Uuid,
}

/// A CI's place in the [`ImpactGraph`] that answered, to read what the graph knows about it
/// ([`ImpactGraph::name_at`], [`ImpactGraph::class_at`]) without a lookup by id. Valid until
/// the graph next changes: the graph numbers its CIs again now and then (see `renumber`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NodeRef(u32);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImpactedNode {
    pub id: Uuid,
    pub node: NodeRef,
    /// Relationships from the nearest start CI; 0 for a start CI.
    pub depth: u32,
    /// A shortest path from a start CI, `depth` steps long; empty for start CIs and when paths
    /// were not asked for.
    pub via: Vec<PathStep>,
    /// When asked for: the last step of that path and the index, in the result's `nodes`, of the
    /// CI it came from (always an earlier one). `None` for start CIs, and for a CI whose path
    /// runs through a CI reported by the other direction of a `Both` walk: that one gets its
    /// whole path in `via` instead, so following `reached` back to a CI without it, then that
    /// CI's `via`, always gives the path.
    pub reached: Option<(PathStep, usize)>,
}

/// Why the result may be incomplete.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Truncation {
    /// CIs lie beyond `max_depth`.
    Depth,
    /// More CIs were reachable than `max_nodes`.
    Nodes,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImpactResult {
    /// Start CIs first, then in breadth-first order.
    pub nodes: Vec<ImpactedNode>,
    /// The reported CIs that are business services, as positions in `nodes`, in order.
    pub business_services: Vec<usize>,
    pub truncated: Option<Truncation>,
    /// CIs whose relationships were examined (in [`Direction::Both`] a CI may count once per
    /// direction): the work the query cost.
    pub visited: u32,
}

/// Why the graph refused an update or a query. The texts are user-facing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GraphError {
    #[error("CI {id} is not in the impact graph")]
    UnknownCi { id: Uuid },

    #[error("CI {id} is already in the impact graph")]
    DuplicateCi { id: Uuid },

    #[error("the impact graph holds at most {MAX_CIS} CIs and 4 GiB of CI names")]
    Full,
}

/// One end of a relationship as seen from the other, in four bytes: the neighbour's position
/// above [`KIND_BITS`], and below them a `kind` holding the relationship type (bits 0–2) and
/// [`OUTGOING`] when the CI holding the list is the source. Ordered by neighbour, then kind.
///
/// Four bytes, not eight: a large closure reads the lists of tens of thousands of CIs, and on
/// a machine whose caches do not hold the index, each list is paid for by the cache line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Adjacent(u32);

const KIND_BITS: u32 = 4;

impl Adjacent {
    /// `node` is below [`MAX_CIS`], so it fits above the kind.
    fn new(node: u32, kind: u8) -> Self {
        Self(node << KIND_BITS | u32::from(kind))
    }

    fn node(self) -> u32 {
        self.0 >> KIND_BITS
    }

    fn kind(self) -> u8 {
        (self.0 & ((1 << KIND_BITS) - 1)) as u8
    }
}

/// Set in a `kind` byte when the relationship goes from the list's CI to the neighbour.
const OUTGOING: u8 = 0x08;

fn kind_of(relationship: RelationshipType, outgoing: bool) -> u8 {
    relationship as u8 | if outgoing { OUTGOING } else { 0 }
}

fn type_of(kind: u8) -> RelationshipType {
    RelationshipType::ALL
        .get(usize::from(kind & !OUTGOING))
        .copied()
        .unwrap_or(RelationshipType::DependsOn)
}

/// The tenant's CIs and relationships, indexed for walking.
///
/// Each CI has one list holding both its outgoing and its incoming relationships, so a walk
/// step reads one list, whichever way it goes.
#[derive(Debug, Clone, Default)]
pub struct ImpactGraph {
    index: HashMap<Uuid, u32>,
    nodes: Vec<ImpactNode>,
    /// Per CI, whether it is retired: what a walk reads for every CI it reaches, kept apart
    /// from the larger `nodes` so that it stays in cache.
    retired: Vec<bool>,
    labels: Labels,
    adjacent: Adjacency,
    edge_count: usize,
    /// CIs added since the graph was last numbered in locality order (see [`ImpactGraph::renumber`]).
    out_of_order: usize,
    scratch: ScratchPool,
}

/// What answers copy of each CI, kept so that a reported CI costs as few cache misses as
/// possible: a large closure reports tens of thousands of CIs in no order the memory likes.
/// Each CI's id, name span, class and business-service flag sit together in one 32-byte
/// [`Card`] (one miss instead of one per array); the names are packed in one string in CI
/// order, each class kept once.
#[derive(Debug, Clone, Default)]
struct Labels {
    cards: Vec<Card>,
    text: String,
    /// Bytes of `text` no longer any CI's name (renames append).
    stale: usize,
    classes: Vec<String>,
    class_index: HashMap<String, u32>,
    /// The longest name and class ever held, in bytes: a bound on what one CI's label adds to an
    /// answer, for refusing one that would be too large before writing it.
    longest_name: u32,
    longest_class: u32,
}

#[derive(Debug, Clone, Copy)]
#[repr(align(32))]
struct Card {
    id: Uuid,
    /// The name is `text[name_start..name_start + name_len]`.
    name_start: u32,
    name_len: u32,
    /// A position in `classes`.
    class: u32,
    business: bool,
}

impl Labels {
    fn push(&mut self, node: &ImpactNode) -> Result<(), GraphError> {
        let (name_start, name_len) = self.append_name(&node.name)?;
        let class = self.intern(&node.class);
        self.cards.push(Card {
            id: node.id,
            name_start,
            name_len,
            class,
            business: node.business_service,
        });
        Ok(())
    }

    fn set(&mut self, index: usize, node: &ImpactNode) -> Result<(), GraphError> {
        if self.name(index) != node.name {
            let (name_start, name_len) = self.append_name(&node.name)?;
            let card = &mut self.cards[index];
            self.stale += card.name_len as usize;
            (card.name_start, card.name_len) = (name_start, name_len);
            if self.stale > self.text.len() / 2 {
                self.compact();
            }
        }
        let class = self.intern(&node.class);
        let card = &mut self.cards[index];
        card.class = class;
        card.business = node.business_service;
        Ok(())
    }

    /// Appends a name to `text`; spans are u32, so the names of one tenant's graph stay under
    /// 4 GiB (names are at most `NAME_MAX` characters: some ten million CIs' worth).
    fn append_name(&mut self, name: &str) -> Result<(u32, u32), GraphError> {
        let start = u32::try_from(self.text.len()).map_err(|_| GraphError::Full)?;
        let len = u32::try_from(name.len()).map_err(|_| GraphError::Full)?;
        start.checked_add(len).ok_or(GraphError::Full)?;
        self.text.push_str(name);
        self.longest_name = self.longest_name.max(len);
        Ok((start, len))
    }

    fn intern(&mut self, class: &str) -> u32 {
        if let Some(&index) = self.class_index.get(class) {
            return index;
        }
        // Classes number far below u32::MAX: they are a tenant's catalog.
        let index = self.classes.len() as u32;
        self.longest_class = self
            .longest_class
            .max(u32::try_from(class.len()).unwrap_or(u32::MAX));
        self.classes.push(class.to_owned());
        self.class_index.insert(class.to_owned(), index);
        index
    }

    fn compact(&mut self) {
        let mut text = String::with_capacity(self.text.len() - self.stale);
        for card in &mut self.cards {
            let (start, end) = (
                card.name_start as usize,
                (card.name_start + card.name_len) as usize,
            );
            // The live names fit where they all fit before.
            card.name_start = text.len() as u32;
            text.push_str(&self.text[start..end]);
        }
        self.text = text;
        self.stale = 0;
    }

    /// Puts the card of CI `old_of[new]` at `new`, and the names in the new order.
    fn reorder(&mut self, old_of: &[u32]) {
        self.cards = old_of.iter().map(|&old| self.cards[old as usize]).collect();
        self.compact();
    }

    fn card(&self, index: usize) -> &Card {
        &self.cards[index]
    }

    fn name(&self, index: usize) -> &str {
        self.name_of(&self.cards[index])
    }

    fn name_of(&self, card: &Card) -> &str {
        let start = card.name_start as usize;
        &self.text[start..start + card.name_len as usize]
    }

    fn class(&self, index: usize) -> &str {
        self.class_of(&self.cards[index])
    }

    fn class_of(&self, card: &Card) -> &str {
        &self.classes[card.class as usize]
    }
}

/// Every CI's relationship list. Most lists sit packed in one array, in CI order (`offsets`
/// into `packed`): a walk over a large closure spends most of its time waiting for memory, and
/// one list per heap allocation cost a cache miss for the list header and scattered lists
/// besides. A list changed since the last packing lives whole in `changed` (marked in
/// `is_changed`); once enough have changed, everything is packed again.
#[derive(Debug, Clone, Default)]
struct Adjacency {
    /// `offsets[i]..offsets[i + 1]` is CI `i`'s list in `packed`, for the CIs packed.
    offsets: Vec<u32>,
    packed: Vec<Adjacent>,
    changed: HashMap<u32, Vec<Adjacent>>,
    /// One bit per CI: its list is in `changed` (or it was added since the packing).
    is_changed: Vec<u64>,
}

impl Adjacency {
    /// Packs the lists of `lists.len()` CIs, each sorted and without repeats.
    fn pack(lists: Vec<Vec<Adjacent>>) -> Self {
        let mut offsets = Vec::with_capacity(lists.len() + 1);
        let mut packed = Vec::with_capacity(lists.iter().map(Vec::len).sum());
        offsets.push(0);
        for mut list in lists {
            list.sort_unstable();
            list.dedup();
            packed.extend_from_slice(&list);
            // The graph holds fewer than u32::MAX CIs, each relationship twice; an estate
            // beyond two billion relationships would not fit in memory first.
            offsets.push(packed.len() as u32);
        }
        Self {
            is_changed: vec![0; offsets.len().div_ceil(64)],
            offsets,
            packed,
            changed: HashMap::new(),
        }
    }

    fn packed_count(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    fn is_changed(&self, node: usize) -> bool {
        node >= self.packed_count() || self.is_changed[node / 64] & (1 << (node % 64)) != 0
    }

    fn list(&self, node: u32) -> &[Adjacent] {
        let at = node as usize;
        if self.is_changed(at) {
            self.changed.get(&node).map_or(&[], Vec::as_slice)
        } else {
            &self.packed[self.offsets[at] as usize..self.offsets[at + 1] as usize]
        }
    }

    /// CI `node`'s list, to change it (moved out of the packed array first).
    fn list_mut(&mut self, node: u32) -> &mut Vec<Adjacent> {
        let at = node as usize;
        if !self.is_changed(at) {
            let list =
                self.packed[self.offsets[at] as usize..self.offsets[at + 1] as usize].to_vec();
            self.changed.insert(node, list);
            self.is_changed[at / 64] |= 1 << (at % 64);
        }
        self.changed.entry(node).or_default()
    }

    /// Whether to pack everything again: the changed lists are read through a hash map.
    fn is_worth_repacking(&self, node_count: usize) -> bool {
        self.changed.len() > node_count / 16 + 1024
    }

    /// Packs every list of `count` CIs again; with `renumbered = (old_of, new_of)`, CI
    /// `old_of[new]` becomes CI `new` (see [`ImpactGraph::renumber`]).
    fn repack(&mut self, count: usize, renumbered: Option<(&[u32], &[u32])>) {
        let lists = (0..count as u32)
            .map(|new| {
                let Some((old_of, new_of)) = renumbered else {
                    return self.list(new).to_vec();
                };
                self.list(old_of[new as usize])
                    .iter()
                    .map(|adjacent| {
                        Adjacent::new(new_of[adjacent.node() as usize], adjacent.kind())
                    })
                    .collect()
            })
            .collect();
        *self = Self::pack(lists);
    }

    fn iter(&self, node_count: usize) -> impl Iterator<Item = &Adjacent> {
        (0..node_count as u32).flat_map(|node| self.list(node).iter())
    }
}

/// Frontier states a walk reads ahead for at once (see [`ImpactGraph::walk`]).
const WALK_BATCH: usize = 16;

/// The parent of a start state.
const START: u32 = u32::MAX;
/// In [`Scratch::order`]: the state did not report its CI.
const NOT_REPORTED: u32 = u32::MAX;
/// CIs the graph can hold: positions stay below the sentinels.
/// Also what [`Adjacent`] has room for: some 268 million CIs in one tenant's graph, far more
/// than fit in the memory of a desk.
const MAX_CIS: u32 = (1 << (32 - KIND_BITS)) - 1;

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
struct ScratchPool(Mutex<Vec<Scratch>>);

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
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds the graph in one go, as at service start: faster than adding edge by edge, since
    /// repeats are removed by one sort per CI instead of a scan per edge.
    pub fn build(
        nodes: impl IntoIterator<Item = ImpactNode>,
        edges: impl IntoIterator<Item = ImpactEdge>,
    ) -> Result<Self, GraphError> {
        let mut graph = Self::new();
        for node in nodes {
            graph.add_node(node)?;
        }
        graph.renumber();
        let mut lists: Vec<Vec<Adjacent>> = vec![Vec::new(); graph.nodes.len()];
        for edge in edges {
            let (source, target) = graph.ends(&edge)?;
            lists[source as usize].push(Adjacent::new(target, kind_of(edge.relationship, true)));
            lists[target as usize].push(Adjacent::new(source, kind_of(edge.relationship, false)));
        }
        graph.adjacent = Adjacency::pack(lists);
        graph.edge_count = graph
            .adjacent
            .iter(graph.nodes.len())
            .filter(|adjacent| adjacent.kind() & OUTGOING != 0)
            .count();
        Ok(graph)
    }

    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    pub fn edge_count(&self) -> usize {
        self.edge_count
    }

    pub fn node(&self, id: Uuid) -> Option<&ImpactNode> {
        self.index
            .get(&id)
            .map(|&index| &self.nodes[index as usize])
    }

    /// The name of a CI of an answer of this graph, read from where answers read it fast.
    pub fn name_at(&self, at: NodeRef) -> &str {
        self.labels.name(at.0 as usize)
    }

    /// The class of a CI of an answer of this graph, read from where answers read it fast.
    pub fn class_at(&self, at: NodeRef) -> &str {
        self.labels.class(at.0 as usize)
    }

    pub fn id_at(&self, at: NodeRef) -> Uuid {
        self.labels.card(at.0 as usize).id
    }

    pub fn is_business_service_at(&self, at: NodeRef) -> bool {
        self.labels.card(at.0 as usize).business
    }

    /// What an answer copies of a CI, read from its card at once. The name's bytes are not
    /// read yet: [`Label::name`] only points at them.
    pub fn label_at(&self, at: NodeRef) -> Label<'_> {
        let index = at.0 as usize;
        let card = *self.labels.card(index);
        Label {
            id: card.id,
            name: self.labels.name_of(&card),
            class: self.labels.class_of(&card),
            business_service: card.business,
        }
    }

    /// Bytes of the longest name plus the longest class the graph has held: a bound on the label
    /// of any CI it reports.
    pub fn longest_label(&self) -> usize {
        self.labels.longest_name as usize + self.labels.longest_class as usize
    }

    pub fn contains_edge(&self, edge: &ImpactEdge) -> bool {
        self.ends(edge)
            .is_ok_and(|(source, target)| self.find_edge(source, edge.relationship, target))
    }

    /// Adds a CI without relationships.
    pub fn add_node(&mut self, node: ImpactNode) -> Result<(), GraphError> {
        if self.index.contains_key(&node.id) {
            return Err(GraphError::DuplicateCi { id: node.id });
        }
        let index = u32::try_from(self.nodes.len())
            .ok()
            .filter(|&index| index < MAX_CIS)
            .ok_or(GraphError::Full)?;
        // The labels first: the only step that can still fail.
        self.labels.push(&node)?;
        self.index.insert(node.id, index);
        self.retired.push(node.status == CiStatus::Retired);
        self.nodes.push(node);
        self.out_of_order += 1;
        Ok(())
    }

    /// Numbers the CIs again, grouped by class (in the order the classes were first seen), and
    /// in their current order within a class; returns the permutation as `(old_of, new_of)`.
    ///
    /// A walk and its answer spend their time waiting for memory: a large closure reaches tens
    /// of thousands of CIs and reads each one's state, list and card. CIs numbered as they were
    /// created lie in no useful order, so each one read is a cache line (and often a page) of
    /// its own. Impact flows through the layers of an estate (services, applications,
    /// databases, hosts, network), and a class is a layer: numbered by class, the CIs a closure
    /// reaches in one layer sit close together, and on the estate a downstream closure's
    /// walk and answer took 40 % less time.
    ///
    /// Positions change, so `NodeRef`s of earlier answers are stale after any change to the
    /// graph (as documented there); the order of CIs within one depth of an answer changes too.
    fn renumber(&mut self) -> (Vec<u32>, Vec<u32>) {
        let count = self.nodes.len();
        // Positions fit in u32: `add_node` keeps them below MAX_CIS.
        let mut old_of: Vec<u32> = (0..count as u32).collect();
        old_of.sort_by_key(|&old| self.labels.card(old as usize).class);
        let mut new_of = vec![0u32; count];
        for (new, &old) in old_of.iter().enumerate() {
            new_of[old as usize] = new as u32;
        }
        let mut nodes: Vec<Option<ImpactNode>> = std::mem::take(&mut self.nodes)
            .into_iter()
            .map(Some)
            .collect();
        self.nodes = old_of
            .iter()
            .filter_map(|&old| nodes[old as usize].take())
            .collect();
        self.retired = old_of
            .iter()
            .map(|&old| self.retired[old as usize])
            .collect();
        self.labels.reorder(&old_of);
        for position in self.index.values_mut() {
            *position = new_of[*position as usize];
        }
        self.out_of_order = 0;
        (old_of, new_of)
    }

    /// After a relationship changed: packs the lists again once enough have changed, and
    /// numbers the CIs in locality order again first if some were added since.
    fn repack_if_worthwhile(&mut self) {
        let count = self.nodes.len();
        if !self.adjacent.is_worth_repacking(count) {
            return;
        }
        if self.out_of_order > 0 {
            let (old_of, new_of) = self.renumber();
            self.adjacent.repack(count, Some((&old_of, &new_of)));
        } else {
            self.adjacent.repack(count, None);
        }
    }

    /// Replaces what is known about a CI (its name, class, status…), keeping its relationships.
    pub fn update_node(&mut self, node: ImpactNode) -> Result<(), GraphError> {
        let index = self.position(node.id)?;
        self.labels.set(index, &node)?;
        self.set_retired(index, node.status == CiStatus::Retired);
        self.nodes[index] = node;
        Ok(())
    }

    /// Marks a CI retired: walks no longer enter it. Its relationships stay, as in the store.
    pub fn retire_node(&mut self, id: Uuid) -> Result<(), GraphError> {
        let index = self.position(id)?;
        self.set_retired(index, true);
        self.nodes[index].status = CiStatus::Retired;
        Ok(())
    }

    fn set_retired(&mut self, index: usize, retired: bool) {
        self.retired[index] = retired;
    }

    /// Adds a relationship between two known CIs; `false` if it was already there.
    pub fn add_edge(&mut self, edge: ImpactEdge) -> Result<bool, GraphError> {
        let (source, target) = self.ends(&edge)?;
        if self.find_edge(source, edge.relationship, target) {
            return Ok(false);
        }
        self.adjacent
            .list_mut(source)
            .push(Adjacent::new(target, kind_of(edge.relationship, true)));
        self.adjacent
            .list_mut(target)
            .push(Adjacent::new(source, kind_of(edge.relationship, false)));
        self.edge_count += 1;
        self.repack_if_worthwhile();
        Ok(true)
    }

    /// Removes a relationship; `false` if it was not there.
    pub fn remove_edge(&mut self, edge: &ImpactEdge) -> bool {
        let Ok((source, target)) = self.ends(edge) else {
            return false;
        };
        let from_source = Adjacent::new(target, kind_of(edge.relationship, true));
        let from_target = Adjacent::new(source, kind_of(edge.relationship, false));
        if !self.adjacent.list(source).contains(&from_source) {
            return false;
        }
        remove(self.adjacent.list_mut(source), from_source);
        remove(self.adjacent.list_mut(target), from_target);
        self.edge_count -= 1;
        self.repack_if_worthwhile();
        true
    }

    fn position(&self, id: Uuid) -> Result<usize, GraphError> {
        self.index
            .get(&id)
            .map(|&index| index as usize)
            .ok_or(GraphError::UnknownCi { id })
    }

    fn ends(&self, edge: &ImpactEdge) -> Result<(u32, u32), GraphError> {
        let source = self.position(edge.source)?;
        let target = self.position(edge.target)?;
        // Positions come from `index`, whose values are u32.
        Ok((source as u32, target as u32))
    }

    /// Scans the shorter of the two lists that would hold the edge: a hypervisor host may host
    /// thousands of VMs, each of which runs on one host.
    fn find_edge(&self, source: u32, relationship: RelationshipType, target: u32) -> bool {
        let from_source = self.adjacent.list(source);
        let from_target = self.adjacent.list(target);
        if from_source.len() <= from_target.len() {
            from_source.contains(&Adjacent::new(target, kind_of(relationship, true)))
        } else {
            from_target.contains(&Adjacent::new(source, kind_of(relationship, false)))
        }
    }

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

/// Removes one occurrence of `item`, not keeping order.
fn remove(list: &mut Vec<Adjacent>, item: Adjacent) -> bool {
    match list.iter().position(|existing| *existing == item) {
        Some(position) => {
            list.swap_remove(position);
            true
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet, VecDeque};

    use proptest::prelude::*;

    use super::*;
    use crate::domain::relationship::RelationshipType::{
        ConnectsTo, DependsOn, MemberOf, Provides, RunsOn,
    };

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    fn business_service_ids(result: &ImpactResult) -> Vec<Uuid> {
        result
            .business_services
            .iter()
            .map(|&position| result.nodes[position].id)
            .collect()
    }

    fn node(n: u128, class: &str) -> ImpactNode {
        ImpactNode {
            id: id(n),
            class: class.to_owned(),
            name: format!("ci-{n}"),
            status: CiStatus::InUse,
            business_service: class == "business_service",
        }
    }

    fn edge(source: u128, relationship: RelationshipType, target: u128) -> ImpactEdge {
        ImpactEdge {
            source: id(source),
            relationship,
            target: id(target),
        }
    }

    fn step(source: u128, relationship: RelationshipType, target: u128) -> PathStep {
        PathStep {
            source: id(source),
            relationship,
            target: id(target),
        }
    }

    const SHOP: u128 = 1;
    const CHECKOUT: u128 = 2;
    const APP: u128 = 3;
    const VM: u128 = 4;
    const HOST: u128 = 5;
    const DB: u128 = 6;
    const SWITCH: u128 = 7;
    const GROUP: u128 = 8;

    /// An online shop provided by a checkout service, built on an app on a VM, a database, a
    /// host, a switch, and an organisational group.
    fn shop() -> ImpactGraph {
        ImpactGraph::build(
            [
                node(SHOP, "business_service"),
                node(CHECKOUT, "application_service"),
                node(APP, "application"),
                node(VM, "virtual_machine"),
                node(HOST, "server"),
                node(DB, "database"),
                node(SWITCH, "network_device"),
                node(GROUP, "cluster"),
            ],
            [
                edge(CHECKOUT, Provides, SHOP),
                edge(CHECKOUT, DependsOn, APP),
                edge(APP, RunsOn, VM),
                edge(APP, DependsOn, DB),
                edge(VM, RunsOn, HOST),
                edge(DB, RunsOn, HOST),
                edge(SWITCH, ConnectsTo, HOST),
                edge(HOST, MemberOf, GROUP),
            ],
        )
        .expect("valid graph")
    }

    fn query(start: &[u128], direction: Direction) -> ImpactQuery {
        ImpactQuery {
            start: start.iter().map(|n| id(*n)).collect(),
            direction,
            max_depth: 100,
            max_nodes: 10_000,
            relationship_types: None,
            include_paths: true,
            include_via: false,
        }
    }

    fn depths(result: &ImpactResult) -> HashMap<Uuid, u32> {
        result.nodes.iter().map(|n| (n.id, n.depth)).collect()
    }

    #[test]
    fn a_failing_host_reaches_everything_built_on_it_up_to_the_business_service() {
        let result = shop()
            .impact(&query(&[HOST], Direction::Upstream))
            .expect("known start");
        assert_eq!(
            depths(&result),
            HashMap::from([
                (id(HOST), 0),
                (id(VM), 1),
                (id(DB), 1),
                (id(SWITCH), 1),
                (id(APP), 2),
                (id(CHECKOUT), 3),
                (id(SHOP), 4),
            ]),
            "the group is organisational and not reached"
        );
        assert_eq!(business_service_ids(&result), [id(SHOP)]);
        assert_eq!(result.truncated, None);
        let shop_node = result
            .nodes
            .iter()
            .find(|n| n.id == id(SHOP))
            .expect("shop");
        assert_eq!(shop_node.via.len(), 4);
        assert_eq!(shop_node.via[0].target, id(HOST), "starts at the host");
        assert_eq!(shop_node.via[3], step(CHECKOUT, Provides, SHOP));
    }

    #[test]
    fn downstream_lists_what_a_business_service_depends_on() {
        let result = shop()
            .impact(&query(&[SHOP], Direction::Downstream))
            .expect("known start");
        assert_eq!(
            depths(&result),
            HashMap::from([
                (id(SHOP), 0),
                (id(CHECKOUT), 1),
                (id(APP), 2),
                (id(VM), 3),
                (id(DB), 3),
                (id(HOST), 4),
                (id(SWITCH), 5),
            ])
        );
        let host = result
            .nodes
            .iter()
            .find(|n| n.id == id(HOST))
            .expect("host");
        assert_eq!(
            host.via[..2],
            [
                step(CHECKOUT, Provides, SHOP),
                step(CHECKOUT, DependsOn, APP)
            ]
        );
    }

    #[test]
    fn both_directions_are_walked_apart() {
        let result = shop()
            .impact(&query(&[DB], Direction::Both))
            .expect("known start");
        let reached: HashSet<Uuid> = result.nodes.iter().map(|n| n.id).collect();
        // Upstream: APP, CHECKOUT, SHOP. Downstream: HOST, SWITCH. Not VM: it is the app's
        // other dependency, neither affected by the database nor needed by it.
        assert_eq!(
            reached,
            HashSet::from([
                id(DB),
                id(APP),
                id(CHECKOUT),
                id(SHOP),
                id(HOST),
                id(SWITCH)
            ])
        );
    }

    #[test]
    fn the_start_cis_come_first_at_depth_zero() {
        let result = shop()
            .impact(&query(&[VM, DB, VM], Direction::Upstream))
            .expect("known start");
        assert_eq!(result.nodes[0].id, id(VM));
        assert_eq!(result.nodes[1].id, id(DB));
        assert!(
            result.nodes[..2]
                .iter()
                .all(|n| n.depth == 0 && n.via.is_empty())
        );
        assert_eq!(result.nodes.len(), 5, "vm, db, app, checkout, shop");
    }

    #[test]
    fn a_depth_limit_stops_the_walk_and_says_so() {
        let mut limited = query(&[HOST], Direction::Upstream);
        limited.max_depth = 2;
        let result = shop().impact(&limited).expect("known start");
        assert_eq!(result.nodes.iter().map(|n| n.depth).max(), Some(2));
        assert_eq!(result.truncated, Some(Truncation::Depth));
        assert!(result.business_services.is_empty());

        limited.max_depth = 4;
        let result = shop().impact(&limited).expect("known start");
        assert_eq!(result.truncated, None, "nothing lies beyond depth 4");
    }

    #[test]
    fn a_node_limit_stops_the_walk_and_says_so() {
        let mut limited = query(&[HOST], Direction::Upstream);
        limited.max_nodes = 3;
        let result = shop().impact(&limited).expect("known start");
        assert_eq!(result.nodes.len(), 3);
        assert_eq!(result.truncated, Some(Truncation::Nodes));

        limited.max_nodes = 7;
        let result = shop().impact(&limited).expect("known start");
        assert_eq!(result.nodes.len(), 7);
        assert_eq!(result.truncated, None, "exactly everything fits");
    }

    /// Follows `reached` back to a start CI: the path the compact form explains.
    fn path_from_via(result: &ImpactResult, index: usize) -> Vec<PathStep> {
        let mut steps = Vec::new();
        let mut current = index;
        while let Some((step, from)) = result.nodes[current].reached {
            assert!(from < current, "a CI is reached from an earlier one");
            steps.push(step);
            current = from;
        }
        steps.extend(result.nodes[current].via.iter().rev().copied());
        steps.reverse();
        steps
    }

    #[test]
    fn the_compact_via_explains_every_ci_with_the_same_path_as_full_paths() {
        // The shop, and a shop whose database depends back on the checkout service: walking both
        // ways from inside that cycle passes through CIs that the other direction reported.
        let mut cyclic = shop();
        cyclic
            .add_edge(edge(DB, DependsOn, CHECKOUT))
            .expect("valid edge");
        let cases = [
            (shop(), vec![&[HOST][..], &[APP, SWITCH][..], &[SHOP][..]]),
            (cyclic, vec![&[APP][..], &[DB][..], &[VM, CHECKOUT][..]]),
        ];
        let directions = [Direction::Upstream, Direction::Downstream, Direction::Both];
        let mut whole_paths_given = 0;
        for (graph, starts) in &cases {
            for (&start, direction) in starts
                .iter()
                .flat_map(|s| directions.iter().map(move |d| (s, *d)))
            {
                let mut both = query(start, direction);
                both.include_via = true;
                let result = graph.impact(&both).expect("known start");
                let mut compact = both.clone();
                compact.include_paths = false;
                let alone = graph.impact(&compact).expect("known start");
                for (index, node) in alone.nodes.iter().enumerate() {
                    assert_eq!(
                        path_from_via(&alone, index),
                        result.nodes[index].via,
                        "{direction:?} from {start:?}: CI {}",
                        node.id
                    );
                    assert!(node.reached.is_none() || node.via.is_empty());
                    if node.reached.is_none() && node.depth > 0 {
                        whole_paths_given += 1;
                    }
                }
                assert_eq!(
                    alone.nodes.iter().map(|n| n.reached).collect::<Vec<_>>(),
                    result.nodes.iter().map(|n| n.reached).collect::<Vec<_>>(),
                    "the compact form does not depend on full paths"
                );
            }
        }
        assert!(
            whole_paths_given > 0,
            "the cyclic case passes through a CI the other direction reported"
        );
    }

    #[test]
    fn only_the_chosen_relationship_types_are_walked() {
        let mut hosting = query(&[HOST], Direction::Upstream);
        hosting.relationship_types = Some(vec![RunsOn]);
        let result = shop().impact(&hosting).expect("known start");
        assert_eq!(
            depths(&result),
            HashMap::from([(id(HOST), 0), (id(VM), 1), (id(DB), 1), (id(APP), 2)])
        );
    }

    #[test]
    fn retired_cis_are_not_entered() {
        let mut graph = shop();
        graph.retire_node(id(VM)).expect("known");
        graph.retire_node(id(DB)).expect("known");
        let result = graph
            .impact(&query(&[HOST], Direction::Upstream))
            .expect("known start");
        assert_eq!(
            depths(&result),
            HashMap::from([(id(HOST), 0), (id(SWITCH), 1)])
        );
        let from_retired = graph
            .impact(&query(&[VM], Direction::Upstream))
            .expect("known start");
        assert_eq!(
            from_retired.nodes.len(),
            4,
            "a retired start is still walked"
        );
    }

    #[test]
    fn paths_are_left_out_unless_asked_for() {
        let mut without = query(&[HOST], Direction::Upstream);
        without.include_paths = false;
        let result = shop().impact(&without).expect("known start");
        assert!(result.nodes.iter().all(|n| n.via.is_empty()));
        assert_eq!(result.nodes.len(), 7);
    }

    #[test]
    fn an_unknown_start_is_an_error() {
        assert_eq!(
            shop().impact(&query(&[99], Direction::Upstream)),
            Err(GraphError::UnknownCi { id: id(99) })
        );
    }

    #[test]
    fn cycles_are_walked_once() {
        let graph = ImpactGraph::build(
            [node(1, "server"), node(2, "server"), node(3, "server")],
            [
                edge(1, DependsOn, 2),
                edge(2, DependsOn, 3),
                edge(3, DependsOn, 1),
            ],
        )
        .expect("valid");
        let result = graph
            .impact(&query(&[1], Direction::Both))
            .expect("known start");
        assert_eq!(result.nodes.len(), 3);
    }

    #[test]
    fn edges_come_and_go_incrementally() {
        let mut graph = shop();
        assert_eq!(graph.edge_count(), 8);
        assert_eq!(
            graph.add_edge(edge(APP, RunsOn, VM)),
            Ok(false),
            "already there"
        );
        assert!(graph.remove_edge(&edge(APP, DependsOn, DB)));
        assert!(!graph.remove_edge(&edge(APP, DependsOn, DB)));
        assert!(!graph.contains_edge(&edge(APP, DependsOn, DB)));
        assert_eq!(graph.edge_count(), 7);
        let result = graph
            .impact(&query(&[DB], Direction::Upstream))
            .expect("known start");
        assert_eq!(result.nodes.len(), 1, "nothing depends on the database now");

        graph.add_node(node(9, "database")).expect("new");
        assert_eq!(graph.add_edge(edge(APP, DependsOn, 9)), Ok(true));
        assert!(graph.contains_edge(&edge(APP, DependsOn, 9)));
        assert_eq!(graph.edge_count(), 8);
        let result = graph
            .impact(&query(&[9], Direction::Upstream))
            .expect("known start");
        assert_eq!(business_service_ids(&result), [id(SHOP)]);
    }

    #[test]
    fn nodes_are_added_once_and_updated_in_place() {
        let mut graph = shop();
        assert_eq!(
            graph.add_node(node(HOST, "server")),
            Err(GraphError::DuplicateCi { id: id(HOST) })
        );
        assert_eq!(
            graph.add_edge(edge(HOST, DependsOn, 99)),
            Err(GraphError::UnknownCi { id: id(99) })
        );
        let mut renamed = node(HOST, "server");
        renamed.name = "host-a".into();
        graph.update_node(renamed).expect("known");
        assert_eq!(
            graph.node(id(HOST)).map(|n| n.name.as_str()),
            Some("host-a")
        );
        assert_eq!(graph.node_count(), 8);
        assert_eq!(
            graph.update_node(node(99, "server")),
            Err(GraphError::UnknownCi { id: id(99) })
        );
    }

    #[test]
    fn answers_read_the_latest_name_and_class_after_many_renames() {
        let mut graph = shop();
        let query = ImpactQuery {
            start: vec![id(HOST)],
            direction: Direction::Upstream,
            max_depth: 1,
            max_nodes: 10,
            relationship_types: None,
            include_paths: false,
            include_via: false,
        };
        // Enough renames that the packed names are compacted several times over.
        for round in 0..200 {
            let mut renamed = node(
                HOST,
                if round % 2 == 0 {
                    "server"
                } else {
                    "hypervisor"
                },
            );
            renamed.name = format!("host-{round}-{}", "x".repeat(round % 7));
            graph.update_node(renamed).expect("known");
        }
        let answer = graph.impact(&query).expect("known start");
        let host = answer.nodes[0].node;
        assert_eq!(
            graph.name_at(host),
            format!("host-199-{}", "x".repeat(199 % 7))
        );
        assert_eq!(graph.class_at(host), "hypervisor");
        for reported in &answer.nodes[1..] {
            let stored = graph.node(reported.id).expect("reported");
            assert_eq!(graph.name_at(reported.node), stored.name);
            assert_eq!(graph.class_at(reported.node), stored.class);
        }
    }

    #[test]
    fn building_removes_repeated_edges() {
        let graph = ImpactGraph::build(
            [node(1, "server"), node(2, "server")],
            [
                edge(1, DependsOn, 2),
                edge(1, DependsOn, 2),
                edge(1, RunsOn, 2),
            ],
        )
        .expect("valid");
        assert_eq!(graph.edge_count(), 2);
        assert_eq!(
            ImpactGraph::build([node(1, "server")], [edge(1, DependsOn, 2)]).err(),
            Some(GraphError::UnknownCi { id: id(2) })
        );
    }

    /// A small deterministic generator, so the big test needs no extra dependency.
    struct SplitMix(u64);

    impl SplitMix {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }

        fn below(&mut self, bound: usize) -> usize {
            (self.next() % bound as u64) as usize
        }
    }

    #[test]
    fn a_full_closure_over_twenty_thousand_cis_and_a_hundred_thousand_relationships_completes() {
        const NODES: usize = 20_000;
        const EDGES: usize = 100_000;
        let mut random = SplitMix(7);
        let nodes = (0..NODES).map(|n| ImpactNode {
            business_service: n % 100 == 0,
            ..node(n as u128, "server")
        });
        let edges: Vec<ImpactEdge> = (0..EDGES)
            .map(|_| {
                let relationship = RelationshipType::ALL[random.below(RelationshipType::ALL.len())];
                edge(
                    random.below(NODES) as u128,
                    relationship,
                    random.below(NODES) as u128,
                )
            })
            .collect();
        let graph = ImpactGraph::build(nodes, edges).expect("valid");
        let result = graph
            .impact(&ImpactQuery {
                start: vec![id(1)],
                direction: Direction::Both,
                max_depth: u32::MAX,
                max_nodes: u32::MAX,
                relationship_types: None,
                include_paths: true,
                include_via: false,
            })
            .expect("known start");
        assert!(
            result.nodes.len() > NODES / 2,
            "a random graph this dense is mostly connected"
        );
        assert_eq!(result.truncated, None);
        let unique: HashSet<Uuid> = result.nodes.iter().map(|n| n.id).collect();
        assert_eq!(unique.len(), result.nodes.len());
        assert!(result.nodes.iter().all(|n| n.via.len() == n.depth as usize));
    }

    #[test]
    fn a_graph_changed_edge_by_edge_past_repacking_answers_as_one_built_at_once() {
        // Thousands of changed lists make the graph pack them again (`Adjacency`), some of them
        // more than once; whatever it packs, moves or removes must answer as a fresh build.
        // CIs of three classes, interleaved, so that numbering them by class again on a repack
        // moves most of them.
        const NODES: usize = 3_000;
        const CLASSES: [&str; 3] = ["server", "application", "database"];
        let mut random = SplitMix(11);
        let nodes: Vec<ImpactNode> = (0..NODES)
            .map(|n| node(n as u128, CLASSES[n % CLASSES.len()]))
            .collect();
        let mut live = ImpactGraph::build(nodes[..NODES / 2].to_vec(), []).expect("valid");
        for later in &nodes[NODES / 2..] {
            live.add_node(later.clone()).expect("new");
        }
        let mut edges: Vec<ImpactEdge> = Vec::new();
        for _ in 0..12_000 {
            let candidate = edge(
                random.below(NODES) as u128,
                RelationshipType::ALL[random.below(RelationshipType::ALL.len())],
                random.below(NODES) as u128,
            );
            if live.add_edge(candidate).expect("known CIs") {
                edges.push(candidate);
            }
        }
        for _ in 0..3_000 {
            let gone = edges.swap_remove(random.below(edges.len()));
            assert!(live.remove_edge(&gone));
            assert!(!live.remove_edge(&gone), "removed once");
        }
        let built = ImpactGraph::build(nodes, edges.iter().copied()).expect("valid");
        assert_eq!(live.edge_count(), edges.len());
        assert_eq!(built.edge_count(), edges.len());
        assert!(edges.iter().all(|stored| live.contains_edge(stored)));
        for start in [0, 1, 7, NODES / 2, NODES - 1] {
            for direction in [Direction::Upstream, Direction::Downstream, Direction::Both] {
                let query = unlimited(start as u128, direction);
                let from_live = live.impact(&query).expect("known start");
                let from_built = built.impact(&query).expect("known start");
                assert_eq!(
                    depths(&from_live),
                    depths(&from_built),
                    "{start} {direction:?}"
                );
                for reached in &from_live.nodes {
                    let stored = live.node(reached.id).expect("a CI of the graph");
                    assert_eq!(live.id_at(reached.node), reached.id);
                    assert_eq!(live.name_at(reached.node), stored.name);
                    assert_eq!(live.class_at(reached.node), stored.class);
                }
            }
        }
    }

    /// Shortest distances by a plain breadth-first search over the edge list, one walk direction
    /// at a time, as a reference for the indexed walk.
    fn reference_depths(
        node_count: usize,
        edges: &[(usize, RelationshipType, usize)],
        retired: &HashSet<usize>,
        start: usize,
        direction: Direction,
    ) -> HashMap<usize, u32> {
        let walk = |upstream: bool| {
            let mut depth = HashMap::from([(start, 0_u32)]);
            let mut queue = VecDeque::from([start]);
            while let Some(current) = queue.pop_front() {
                for &(source, relationship, target) in edges {
                    let flow = relationship.impact_flow();
                    let against =
                        matches!(flow, ImpactFlow::TargetImpactsSource | ImpactFlow::Both);
                    let along = matches!(flow, ImpactFlow::SourceImpactsTarget | ImpactFlow::Both);
                    let (follow_from_target, follow_from_source) = if upstream {
                        (against, along)
                    } else {
                        (along, against)
                    };
                    let mut next = Vec::new();
                    if target == current && follow_from_target {
                        next.push(source);
                    }
                    if source == current && follow_from_source {
                        next.push(target);
                    }
                    for neighbour in next {
                        if neighbour < node_count
                            && !retired.contains(&neighbour)
                            && !depth.contains_key(&neighbour)
                        {
                            depth.insert(neighbour, depth[&current] + 1);
                            queue.push_back(neighbour);
                        }
                    }
                }
            }
            depth
        };
        match direction {
            Direction::Upstream => walk(true),
            Direction::Downstream => walk(false),
            Direction::Both => {
                let mut both = walk(true);
                for (neighbour, depth) in walk(false) {
                    both.entry(neighbour)
                        .and_modify(|d| *d = (*d).min(depth))
                        .or_insert(depth);
                }
                both
            }
        }
    }

    /// Where walking `via` from `from` ends, if each step touches the CI reached so far.
    fn follow(from: Uuid, via: &[PathStep]) -> Option<Uuid> {
        via.iter().try_fold(from, |at, path_step| {
            if path_step.source == at {
                Some(path_step.target)
            } else if path_step.target == at {
                Some(path_step.source)
            } else {
                None
            }
        })
    }

    /// The graph `graph_strategy` describes: `count` servers, the given edges, some retired.
    fn generated_graph(
        count: usize,
        edges: &[(usize, RelationshipType, usize)],
        retired: &HashSet<usize>,
    ) -> ImpactGraph {
        ImpactGraph::build(
            (0..count).map(|n| ImpactNode {
                status: if retired.contains(&n) {
                    CiStatus::Retired
                } else {
                    CiStatus::InUse
                },
                ..node(n as u128, "server")
            }),
            edges.iter().map(|&(s, r, t)| edge(s as u128, r, t as u128)),
        )
        .expect("valid")
    }

    /// A walk without limits or explanations from one CI.
    fn unlimited(start: u128, direction: Direction) -> ImpactQuery {
        ImpactQuery {
            start: vec![id(start)],
            direction,
            max_depth: u32::MAX,
            max_nodes: u32::MAX,
            relationship_types: None,
            include_paths: false,
            include_via: false,
        }
    }

    fn graph_strategy()
    -> impl Strategy<Value = (usize, Vec<(usize, RelationshipType, usize)>, HashSet<usize>)> {
        (2_usize..25).prop_flat_map(|count| {
            (
                Just(count),
                prop::collection::vec(
                    (
                        0..count,
                        prop::sample::select(RelationshipType::ALL.to_vec()),
                        0..count,
                    ),
                    0..70,
                ),
                prop::collection::hash_set(0..count, 0..4),
            )
        })
    }

    fn direction_strategy() -> impl Strategy<Value = Direction> {
        prop::sample::select(vec![
            Direction::Upstream,
            Direction::Downstream,
            Direction::Both,
        ])
    }

    proptest! {
        #[test]
        fn every_ci_is_reported_once_with_a_path_of_existing_edges_from_a_start(
            (count, edges, retired) in graph_strategy(),
            starts in prop::collection::vec(0_usize..25, 1..3),
            direction in direction_strategy(),
            max_depth in 0_u32..6,
            max_nodes in 0_u32..30,
        ) {
            let graph = generated_graph(count, &edges, &retired);
            let stored: HashSet<ImpactEdge> =
                edges.iter().map(|&(s, r, t)| edge(s as u128, r, t as u128)).collect();
            let start: Vec<Uuid> = starts.iter().map(|s| id((s % count) as u128)).collect();
            let result = graph.impact(&ImpactQuery {
                start: start.clone(),
                direction,
                max_depth,
                max_nodes,
                relationship_types: None,
                include_paths: true,
                include_via: false,
            }).expect("known start");

            let unique: HashSet<Uuid> = result.nodes.iter().map(|n| n.id).collect();
            prop_assert_eq!(unique.len(), result.nodes.len());
            prop_assert!(result.nodes.len() <= max_nodes as usize);
            for reported in &result.nodes {
                prop_assert!(reported.depth <= max_depth);
                prop_assert_eq!(reported.via.len(), reported.depth as usize);
                for path_step in &reported.via {
                    let stored_edge = ImpactEdge {
                        source: path_step.source,
                        relationship: path_step.relationship,
                        target: path_step.target,
                    };
                    prop_assert!(stored.contains(&stored_edge));
                }
                // Some start CI begins a chain of steps, each sharing a CI with the one before,
                // that ends at the reported CI.
                let ends_here = start
                    .iter()
                    .any(|&from| follow(from, &reported.via) == Some(reported.id));
                prop_assert!(ends_here, "{:?}", reported);
            }
        }

        #[test]
        fn an_unlimited_walk_finds_exactly_the_shortest_distances(
            (count, edges, retired) in graph_strategy(),
            start in 0_usize..25,
            direction in direction_strategy(),
        ) {
            let start = start % count;
            let graph = generated_graph(count, &edges, &retired);
            let result = graph.impact(&unlimited(start as u128, direction)).expect("known start");
            let expected: HashMap<Uuid, u32> =
                reference_depths(count, &edges, &retired, start, direction)
                    .into_iter()
                    .map(|(n, d)| (id(n as u128), d))
                    .collect();
            prop_assert_eq!(depths(&result), expected);
            prop_assert_eq!(result.truncated, None);
        }

        #[test]
        fn a_walk_after_other_walks_answers_as_the_first_walk_of_a_fresh_graph(
            (count, edges, retired) in graph_strategy(),
            queries in prop::collection::vec(
                (0_usize..25, direction_strategy(), 0_u32..6, 1_u32..30, any::<bool>()),
                2..6,
            ),
        ) {
            // Walks reuse their working memory (`Scratch`); whatever ran before must not show.
            let graph = generated_graph(count, &edges, &retired);
            for (start, direction, max_depth, max_nodes, via) in queries {
                let query = ImpactQuery {
                    start: vec![id((start % count) as u128)],
                    direction,
                    max_depth,
                    max_nodes,
                    relationship_types: None,
                    include_paths: !via,
                    include_via: via,
                };
                let reused = graph.impact(&query).expect("known start");
                let fresh = graph.clone().impact(&query).expect("known start");
                prop_assert_eq!(reused, fresh);
            }
        }
    }
}
