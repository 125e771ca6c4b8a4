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
//! states it reaches: they are kept between queries (`walk::Scratch`) and invalidated by a
//! generation number instead of being allocated and cleared each time, which cost more than the
//! walk itself for a depth-3 query on a 100,000-CI estate.
//!
//! # Layout
//!
//! - this module: the graph's types and storage, and the changes the service applies to it;
//! - `request`: the limits of what a caller may ask;
//! - `walk`: the walk and its working memory, and [`Walked`], a finished walk read in place.

mod request;
mod walk;

use std::collections::HashMap;

use uuid::Uuid;

pub use request::{ImpactRequest, MAX_DEPTH, MAX_NODES, MAX_START_CIS};
use walk::ScratchPool;
pub use walk::{Label, ReachedBy, Reported, Walked};

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

/// CIs the graph can hold: positions stay below the sentinels.
/// Also what [`Adjacent`] has room for: some 268 million CIs in one tenant's graph, far more
/// than fit in the memory of a desk.
const MAX_CIS: u32 = (1 << (32 - KIND_BITS)) - 1;

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
mod tests;
