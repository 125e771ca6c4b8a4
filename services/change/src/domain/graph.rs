//! The change service's own picture of the CMDB's dependency graph: every CI (name, class,
//! criticality, whether it is a business service) and every relationship, fed by the CMDB's
//! events (see `events::projection`), so that risk, conflicts and suspected incidents are
//! computed in memory and never wait for the CMDB, which may be down.
//!
//! CIs are numbered `0..n` in the order they arrive and keep their relationships in one list
//! each, so a walk over the whole closure of 100,000 CIs reads arrays, not hash maps. Walks go
//! the ways impact does, as the CMDB's impact analysis defines them:
//! - [`Direction::Upstream`]: who is affected if the start CIs fail — against `depends_on` and
//!   `runs_on`, along `provides`, both ways along `connects_to`;
//! - [`Direction::Downstream`]: what the start CIs depend on — the exact reverse.
//!
//! `member_of` carries no impact; retired CIs are not entered (a start CI is always walked).
//!
//! Updates are idempotent, as a follower needs (it may see an event again): a CI change older
//! than the version held is skipped, and a relationship is keyed by its id.

use std::collections::{HashMap, VecDeque};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

desk_kit::string_enum! {
    /// The CMDB's relationship types.
    pub enum Relation {
        DependsOn => "depends_on",
        RunsOn => "runs_on",
        ConnectsTo => "connects_to",
        MemberOf => "member_of",
        Provides => "provides",
    }
}

desk_kit::string_enum! {
    /// The CMDB's criticality of a CI.
    pub enum Criticality {
        Critical => "critical",
        High => "high",
        Medium => "medium",
        Low => "low",
    }
}

/// What the change service knows of a CI.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CiNode {
    pub id: Uuid,
    pub name: String,
    pub class: String,
    pub criticality: Criticality,
    /// The class is `business_service` or one of its subclasses.
    pub business_service: bool,
    pub retired: bool,
    /// The CMDB's version of the CI; 0 for a CI known only as a relationship's end so far.
    pub version: i64,
}

impl CiNode {
    /// A CI known only from a relationship, until its own event arrives.
    fn placeholder(id: Uuid) -> CiNode {
        CiNode {
            id,
            name: id.to_string(),
            class: String::new(),
            criticality: Criticality::Medium,
            business_service: false,
            retired: false,
            version: 0,
        }
    }
}

/// A relationship as the CMDB stores it: `source relation target`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Edge {
    pub source: Uuid,
    pub relation: Relation,
    pub target: Uuid,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    Upstream,
    Downstream,
}

/// One end of a relationship seen from the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Adjacent {
    node: u32,
    relation: Relation,
    /// The list's CI is the relationship's source.
    outgoing: bool,
}

impl Adjacent {
    /// Whether a walk in `direction` crosses this relationship from the list's CI.
    fn carries(self, direction: Direction) -> bool {
        let upstream = match self.relation {
            // A failure of the target reaches the source: upstream goes from target to source.
            Relation::DependsOn | Relation::RunsOn => !self.outgoing,
            // A failure of the source reaches the target.
            Relation::Provides => self.outgoing,
            Relation::ConnectsTo => return true,
            Relation::MemberOf => return false,
        };
        match direction {
            Direction::Upstream => upstream,
            Direction::Downstream => !upstream,
        }
    }
}

/// Every CI and relationship of one tenant.
#[derive(Debug, Clone, Default)]
pub struct DependencyGraph {
    positions: HashMap<Uuid, u32>,
    nodes: Vec<CiNode>,
    adjacency: Vec<Vec<Adjacent>>,
    edges: HashMap<Uuid, Edge>,
}

/// A CI a walk reached: how far from the nearest start CI, and the step that reached it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reached {
    pub node: u32,
    pub depth: u32,
    /// The CI it was reached from, and the relationship crossed; `None` for a start CI.
    pub from: Option<(u32, Edge)>,
}

/// A finished walk: the CIs in breadth-first order, start CIs first.
#[derive(Debug, Clone, Default)]
pub struct Walk {
    pub reached: Vec<Reached>,
    /// Per node position, its index in `reached` (`u32::MAX` when not reached).
    order: Vec<u32>,
}

impl Walk {
    pub fn get(&self, node: u32) -> Option<&Reached> {
        let index = *self.order.get(node as usize)?;
        self.reached.get(index as usize)
    }

    /// The relationships from the start CI to `node`, in order; empty for a start CI.
    pub fn path_to(&self, node: u32) -> Vec<Edge> {
        let mut path = Vec::new();
        let mut current = self.get(node);
        while let Some(Reached {
            from: Some((previous, edge)),
            ..
        }) = current
        {
            path.push(*edge);
            current = self.get(*previous);
        }
        path.reverse();
        path
    }

    /// The start CI a reached CI's path begins at.
    pub fn origin_of(&self, node: u32) -> u32 {
        let mut current = node;
        while let Some(Reached {
            from: Some((previous, _)),
            ..
        }) = self.get(current)
        {
            current = *previous;
        }
        current
    }
}

impl DependencyGraph {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    pub fn relationships(&self) -> usize {
        self.edges.len()
    }

    pub fn position(&self, id: Uuid) -> Option<u32> {
        self.positions.get(&id).copied()
    }

    pub fn node(&self, position: u32) -> &CiNode {
        &self.nodes[position as usize]
    }

    pub fn ci(&self, id: Uuid) -> Option<&CiNode> {
        self.position(id).map(|p| self.node(p))
    }

    /// Whether the CMDB has told of this CI itself (not only as a relationship's end).
    pub fn knows(&self, id: Uuid) -> bool {
        self.ci(id).is_some_and(|ci| ci.version > 0)
    }

    fn ensure(&mut self, id: Uuid) -> u32 {
        if let Some(position) = self.positions.get(&id) {
            return *position;
        }
        // Far below u32::MAX: a tenant's estate is counted in hundreds of thousands.
        let position = self.nodes.len() as u32;
        self.positions.insert(id, position);
        self.nodes.push(CiNode::placeholder(id));
        self.adjacency.push(Vec::new());
        position
    }

    /// Adds or updates a CI; one not newer than the version held is skipped. True when applied.
    pub fn upsert_ci(&mut self, ci: CiNode) -> bool {
        let position = self.ensure(ci.id);
        let held = &mut self.nodes[position as usize];
        if ci.version <= held.version {
            return false;
        }
        *held = ci;
        true
    }

    /// Relationship `id` now joins the edge's CIs (again: adding it twice changes nothing).
    pub fn add_relationship(&mut self, id: Uuid, edge: Edge) {
        if edge.source == edge.target {
            return;
        }
        match self.edges.get(&id) {
            Some(held) if *held == edge => return,
            Some(_) => self.remove_relationship(id),
            None => {}
        }
        let source = self.ensure(edge.source);
        let target = self.ensure(edge.target);
        self.adjacency[source as usize].push(Adjacent {
            node: target,
            relation: edge.relation,
            outgoing: true,
        });
        self.adjacency[target as usize].push(Adjacent {
            node: source,
            relation: edge.relation,
            outgoing: false,
        });
        self.edges.insert(id, edge);
    }

    /// Relationship `id` ended (removing an unknown one changes nothing).
    pub fn remove_relationship(&mut self, id: Uuid) {
        let Some(edge) = self.edges.remove(&id) else {
            return;
        };
        let (Some(source), Some(target)) = (self.position(edge.source), self.position(edge.target))
        else {
            return;
        };
        // Two relationships of one type between the same CIs are one edge twice: remove one.
        let forget = |list: &mut Vec<Adjacent>, node: u32, outgoing: bool| {
            if let Some(index) = list.iter().position(|a| {
                a.node == node && a.relation == edge.relation && a.outgoing == outgoing
            }) {
                list.swap_remove(index);
            }
        };
        forget(&mut self.adjacency[source as usize], target, true);
        forget(&mut self.adjacency[target as usize], source, false);
    }

    /// Breadth-first from every start CI at once, at most `max_depth` relationships away
    /// (`None`: the whole closure). Each CI is reached once, at its shortest distance, with one
    /// shortest path. `stop_when` is asked after each CI is reached; a `true` ends the walk
    /// early (a conflict check that has found every CI it looks for).
    pub fn walk(
        &self,
        starts: &[u32],
        direction: Direction,
        max_depth: Option<u32>,
        mut stop_when: impl FnMut(&Reached) -> bool,
    ) -> Walk {
        let mut walk = Walk {
            reached: Vec::new(),
            order: vec![u32::MAX; self.nodes.len()],
        };
        let mut queue = VecDeque::new();
        for start in starts {
            let slot = &mut walk.order[*start as usize];
            if *slot != u32::MAX {
                continue;
            }
            *slot = walk.reached.len() as u32;
            let reached = Reached {
                node: *start,
                depth: 0,
                from: None,
            };
            walk.reached.push(reached);
            queue.push_back(*start);
            if stop_when(&reached) {
                return walk;
            }
        }
        while let Some(node) = queue.pop_front() {
            let depth = walk.reached[walk.order[node as usize] as usize].depth;
            if max_depth.is_some_and(|max| depth >= max) {
                continue;
            }
            for adjacent in &self.adjacency[node as usize] {
                if !adjacent.carries(direction) {
                    continue;
                }
                let next = adjacent.node;
                if walk.order[next as usize] != u32::MAX || self.nodes[next as usize].retired {
                    continue;
                }
                let (source, target) = if adjacent.outgoing {
                    (node, next)
                } else {
                    (next, node)
                };
                let edge = Edge {
                    source: self.nodes[source as usize].id,
                    relation: adjacent.relation,
                    target: self.nodes[target as usize].id,
                };
                walk.order[next as usize] = walk.reached.len() as u32;
                let reached = Reached {
                    node: next,
                    depth: depth + 1,
                    from: Some((node, edge)),
                };
                walk.reached.push(reached);
                if stop_when(&reached) {
                    return walk;
                }
                queue.push_back(next);
            }
        }
        walk
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    pub(crate) fn ci(n: u128, name: &str) -> CiNode {
        CiNode {
            id: id(n),
            name: name.into(),
            class: "server".into(),
            criticality: Criticality::Medium,
            business_service: false,
            retired: false,
            version: 1,
        }
    }

    /// `shop` (business service) ← provides ← `web` → depends_on → `app` → runs_on → `db-host`,
    /// and `backup` member_of `db-host`.
    pub(crate) fn shop() -> DependencyGraph {
        let mut graph = DependencyGraph::new();
        for (n, name) in [
            (1, "shop"),
            (2, "web"),
            (3, "app"),
            (4, "db-host"),
            (5, "backup"),
        ] {
            let mut node = ci(n, name);
            node.business_service = n == 1;
            graph.upsert_ci(node);
        }
        let edges = [
            (2, Relation::Provides, 1),
            (2, Relation::DependsOn, 3),
            (3, Relation::RunsOn, 4),
            (5, Relation::MemberOf, 4),
        ];
        for (n, (source, relation, target)) in edges.into_iter().enumerate() {
            graph.add_relationship(
                id(100 + n as u128),
                Edge {
                    source: id(source),
                    relation,
                    target: id(target),
                },
            );
        }
        graph
    }

    fn names(graph: &DependencyGraph, walk: &Walk) -> Vec<(String, u32)> {
        walk.reached
            .iter()
            .map(|r| (graph.node(r.node).name.clone(), r.depth))
            .collect()
    }

    #[test]
    fn upstream_reaches_who_is_affected_and_downstream_what_is_needed() {
        let graph = shop();
        let host = graph.position(id(4)).expect("db-host");
        let up = graph.walk(&[host], Direction::Upstream, None, |_| false);
        assert_eq!(
            names(&graph, &up),
            [
                ("db-host".into(), 0),
                ("app".into(), 1),
                ("web".into(), 2),
                ("shop".into(), 3)
            ]
        );
        let shop_position = graph.position(id(1)).expect("shop");
        assert_eq!(
            up.path_to(shop_position),
            [
                Edge {
                    source: id(3),
                    relation: Relation::RunsOn,
                    target: id(4)
                },
                Edge {
                    source: id(2),
                    relation: Relation::DependsOn,
                    target: id(3)
                },
                Edge {
                    source: id(2),
                    relation: Relation::Provides,
                    target: id(1)
                },
            ]
        );
        assert_eq!(up.origin_of(shop_position), host);
        let down = graph.walk(&[shop_position], Direction::Downstream, Some(2), |_| false);
        assert_eq!(
            names(&graph, &down),
            [("shop".into(), 0), ("web".into(), 1), ("app".into(), 2)]
        );
    }

    #[test]
    fn retired_cis_are_not_entered_and_membership_carries_no_impact() {
        let mut graph = shop();
        let mut app = ci(3, "app");
        app.retired = true;
        app.version = 2;
        assert!(graph.upsert_ci(app));
        let host = graph.position(id(4)).expect("db-host");
        let up = graph.walk(&[host], Direction::Upstream, None, |_| false);
        assert_eq!(names(&graph, &up), [("db-host".into(), 0)]);
    }

    #[test]
    fn updates_are_idempotent_and_older_versions_are_skipped() {
        let mut graph = shop();
        let mut stale = ci(2, "web-renamed");
        stale.version = 1;
        assert!(!graph.upsert_ci(stale));
        assert_eq!(graph.ci(id(2)).map(|c| c.name.as_str()), Some("web"));
        let edge = Edge {
            source: id(2),
            relation: Relation::DependsOn,
            target: id(3),
        };
        graph.add_relationship(id(101), edge);
        assert_eq!(graph.relationships(), 4);
        graph.remove_relationship(id(101));
        graph.remove_relationship(id(101));
        let host = graph.position(id(4)).expect("db-host");
        let up = graph.walk(&[host], Direction::Upstream, None, |_| false);
        assert_eq!(
            names(&graph, &up),
            [("db-host".into(), 0), ("app".into(), 1)]
        );
    }

    #[test]
    fn a_relationship_to_a_ci_not_yet_told_of_makes_a_placeholder() {
        let mut graph = DependencyGraph::new();
        graph.add_relationship(
            id(9),
            Edge {
                source: id(1),
                relation: Relation::DependsOn,
                target: id(2),
            },
        );
        assert!(!graph.knows(id(1)));
        assert!(graph.upsert_ci(ci(1, "late")));
        assert!(graph.knows(id(1)));
    }

    proptest::proptest! {
        /// On any graph, every CI a walk reaches has a path from a start CI, one relationship
        /// per level of depth, each step joining the CI before to the CI after.
        #[test]
        fn every_reached_ci_has_a_connected_path_as_long_as_its_depth(
            edges in proptest::collection::vec((0u128..30, 0usize..5, 0u128..30), 0..90),
            start in 0u128..30,
            upstream in proptest::bool::ANY,
        ) {
            let mut graph = DependencyGraph::new();
            for n in 0..30 {
                graph.upsert_ci(ci(n, &format!("ci-{n}")));
            }
            for (n, (source, relation, target)) in edges.into_iter().enumerate() {
                graph.add_relationship(
                    id(1000 + n as u128),
                    Edge { source: id(source), relation: Relation::ALL[relation], target: id(target) },
                );
            }
            let direction = if upstream { Direction::Upstream } else { Direction::Downstream };
            let start = graph.position(id(start)).expect("a start");
            let walk = graph.walk(&[start], direction, None, |_| false);
            for reached in &walk.reached {
                let path = walk.path_to(reached.node);
                proptest::prop_assert_eq!(path.len() as u32, reached.depth);
                let mut at = graph.node(start).id;
                for step in &path {
                    proptest::prop_assert!(step.source == at || step.target == at);
                    at = if step.source == at { step.target } else { step.source };
                }
                proptest::prop_assert_eq!(at, graph.node(reached.node).id);
            }
        }
    }
}
