//! The impact index: every tenant's [`ImpactGraph`] in memory, kept current from this replica's
//! own writes (at once, so a caller reads what they wrote) and from the CMDB's events (so what
//! another replica wrote arrives within the event delivery time; see `events::replica`).
//!
//! Readers never wait. Each tenant has two copies of its graph: a published one that queries walk
//! (they hold an `Arc` of it, taken under a lock held only to clone the pointer) and a spare one
//! that a writer changes. A writer applies its changes to the spare, publishes it, and remembers the
//! changes for the copy that has just stopped being published, which catches up on the next write,
//! once the last query walking it has let go (left-right, as `evmap` does it). So a write never
//! waits for a walk of any tenant, a walk never waits for a write, and one tenant's writers queue
//! only behind each other. The price: twice the memory of a tenant that is written to, and each
//! change applied twice.
//!
//! Changes are idempotent: a CI change carries the CI's version, and one not newer than what the
//! index has is skipped (a replica sees its own writes again as events; a follower that starts
//! again re-reads events the database load already held). Relationship changes are idempotent by
//! nature (adding a present edge or removing an absent one changes nothing), but not commutative:
//! this replica's own writes apply at once and come back later as events, so the late event of a
//! relationship added and then removed here would bring the edge back (and the late removal of
//! one removed and then added again would take it away). So the index remembers the relationships
//! it changed itself ([`Origin::Own`]) until their events come back, and skips those events, and
//! any followed addition of a relationship it removed itself meanwhile.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex, RwLock},
    time::{Duration, Instant},
};

use uuid::Uuid;

use crate::domain::{
    ImpactGraph,
    impact::{ImpactEdge, ImpactNode},
};

/// One change to a tenant's graph.
#[derive(Debug, Clone)]
pub enum IndexChange {
    /// A CI as it is at `version`: added when new, updated otherwise.
    Ci { node: ImpactNode, version: i64 },
    /// Relationship `relationship` (its id) now joins the edge's CIs.
    EdgeAdded {
        relationship: Uuid,
        edge: ImpactEdge,
    },
    /// Relationship `relationship` ended.
    EdgeRemoved {
        relationship: Uuid,
        edge: ImpactEdge,
    },
}

/// Where changes come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// This replica's own committed write, applied at once.
    Own,
    /// An event followed from the stream: another replica's write, or one of this replica's
    /// own coming back.
    Followed,
}

/// Every tenant's graph.
#[derive(Default)]
pub struct ImpactIndex {
    /// Held only to find or add a tenant, never across a walk or a write.
    tenants: RwLock<HashMap<String, Arc<TenantIndex>>>,
}

struct TenantIndex {
    published: RwLock<Arc<ImpactGraph>>,
    writer: Mutex<Writer>,
}

struct Writer {
    /// The copy not published; `None` until the tenant's first write (a tenant that is only read
    /// keeps one copy).
    spare: Option<Arc<ImpactGraph>>,
    /// Changes published since the spare was last brought up to date.
    behind: Vec<IndexChange>,
    /// The newest version of each CI in the index.
    versions: HashMap<Uuid, i64>,
    /// Relationships this replica added or removed itself whose events have not come back yet
    /// (kept only until they do; see the module docs).
    own_additions: HashSet<Uuid>,
    own_removals: HashSet<Uuid>,
}

/// How long a writer waits for the last walk of the spare copy to finish before it copies the
/// graph instead (walks take milliseconds; a copy of a large graph takes longer).
const SPARE_WAIT: Duration = Duration::from_millis(200);

impl ImpactIndex {
    /// An index over graphs loaded from the database, with the loaded CIs' versions.
    pub fn new(graphs: HashMap<String, (ImpactGraph, HashMap<Uuid, i64>)>) -> Self {
        let tenants = graphs
            .into_iter()
            .map(|(tenant, (graph, versions))| {
                (tenant, Arc::new(TenantIndex::new(graph, versions)))
            })
            .collect();
        Self {
            tenants: RwLock::new(tenants),
        }
    }

    /// The tenant's graph as it is now; it stays as it is for as long as the caller holds it.
    pub fn snapshot(&self, tenant: &str) -> Option<Arc<ImpactGraph>> {
        let tenant = self.tenants.read().ok()?.get(tenant).cloned()?;
        tenant.published.read().ok().map(|graph| graph.clone())
    }

    /// How many tenants have a graph.
    pub fn tenant_count(&self) -> usize {
        self.tenants.read().map(|t| t.len()).unwrap_or(0)
    }

    /// Applies `changes` to the tenant's graph, in order, skipping CI changes older than what
    /// the index has. A change the graph refuses (an edge to a CI it does not know, a full graph)
    /// is logged and skipped: the database stays the system of record, and the next restart
    /// rebuilds the graph from it.
    pub fn apply(&self, tenant: &str, origin: Origin, changes: Vec<IndexChange>) {
        if changes.is_empty() {
            return;
        }
        let Some(index) = self.tenant(tenant) else {
            tracing::error!(tenant = %tenant, "impact index unavailable: a lock was poisoned");
            return;
        };
        index.apply(tenant, origin, changes);
    }

    fn tenant(&self, tenant: &str) -> Option<Arc<TenantIndex>> {
        if let Some(found) = self.tenants.read().ok()?.get(tenant) {
            return Some(found.clone());
        }
        let mut tenants = self.tenants.write().ok()?;
        Some(
            tenants
                .entry(tenant.to_owned())
                .or_insert_with(|| Arc::new(TenantIndex::new(ImpactGraph::new(), HashMap::new())))
                .clone(),
        )
    }
}

impl TenantIndex {
    fn new(graph: ImpactGraph, versions: HashMap<Uuid, i64>) -> Self {
        Self {
            published: RwLock::new(Arc::new(graph)),
            writer: Mutex::new(Writer {
                spare: None,
                behind: Vec::new(),
                versions,
                own_additions: HashSet::new(),
                own_removals: HashSet::new(),
            }),
        }
    }

    fn apply(&self, tenant: &str, origin: Origin, mut changes: Vec<IndexChange>) {
        let mut writer = self
            .writer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        changes.retain(|change| match change {
            IndexChange::Ci { node, version } => {
                let newer = writer
                    .versions
                    .get(&node.id)
                    .is_none_or(|known| known < version);
                if newer {
                    writer.versions.insert(node.id, *version);
                }
                newer
            }
            IndexChange::EdgeAdded { relationship, .. } => match origin {
                Origin::Own => {
                    writer.own_additions.insert(*relationship);
                    true
                }
                // Its own addition coming back is applied already; an addition of a relationship
                // removed here since is history.
                Origin::Followed => {
                    !writer.own_additions.remove(relationship)
                        && !writer.own_removals.contains(relationship)
                }
            },
            IndexChange::EdgeRemoved { relationship, .. } => match origin {
                Origin::Own => {
                    writer.own_removals.insert(*relationship);
                    true
                }
                Origin::Followed => !writer.own_removals.remove(relationship),
            },
        });
        if changes.is_empty() {
            return;
        }
        let mut spare = match writer.spare.take() {
            Some(spare) => spare,
            // The first write: the spare starts as a copy of the published graph.
            None => match self.published.read() {
                Ok(published) => Arc::new((**published).clone()),
                Err(_) => return,
            },
        };
        let graph = exclusive(&mut spare);
        let behind = std::mem::take(&mut writer.behind);
        apply_to(graph, tenant, &behind, false);
        apply_to(graph, tenant, &changes, true);
        let Ok(mut published) = self.published.write() else {
            return;
        };
        let previous = std::mem::replace(&mut *published, spare);
        drop(published);
        writer.spare = Some(previous);
        writer.behind = changes;
    }
}

/// The spare graph to change in place: queries that took it while it was published let go of it
/// within milliseconds; one that does not within [`SPARE_WAIT`] makes the writer copy it instead.
fn exclusive(spare: &mut Arc<ImpactGraph>) -> &mut ImpactGraph {
    let deadline = Instant::now() + SPARE_WAIT;
    while Arc::get_mut(spare).is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_micros(200));
    }
    Arc::make_mut(spare)
}

/// Applies changes to one copy. `log` is false for the replay onto the spare copy: the same
/// refusals were logged when the changes were first applied.
fn apply_to(graph: &mut ImpactGraph, tenant: &str, changes: &[IndexChange], log: bool) {
    for change in changes {
        let refused = match change {
            IndexChange::Ci { node, .. } => {
                let result = if graph.node(node.id).is_some() {
                    graph.update_node(node.clone())
                } else {
                    graph.add_node(node.clone())
                };
                result.err()
            }
            IndexChange::EdgeAdded { edge, .. } => graph.add_edge(*edge).err(),
            IndexChange::EdgeRemoved { edge, .. } => {
                graph.remove_edge(edge);
                None
            }
        };
        if let (Some(error), true) = (refused, log) {
            tracing::error!(tenant = %tenant, error = %error, change = ?change, "impact index refused a change; it answers without it until the next rebuild");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{CiStatus, RelationshipType, impact::ImpactQuery};

    fn node(id: Uuid, name: &str) -> ImpactNode {
        ImpactNode {
            id,
            class: "server".into(),
            name: name.into(),
            status: CiStatus::InUse,
            business_service: false,
        }
    }

    fn edge(source: Uuid, target: Uuid) -> ImpactEdge {
        ImpactEdge {
            source,
            relationship: RelationshipType::DependsOn,
            target,
        }
    }

    /// A new relationship along `edge`.
    fn added(edge: ImpactEdge) -> IndexChange {
        IndexChange::EdgeAdded {
            relationship: Uuid::now_v7(),
            edge,
        }
    }

    /// The end of some relationship along `edge`.
    fn removed(edge: ImpactEdge) -> IndexChange {
        IndexChange::EdgeRemoved {
            relationship: Uuid::now_v7(),
            edge,
        }
    }

    fn ci(index: &ImpactIndex, id: Uuid) {
        index.apply(
            "acme",
            Origin::Own,
            vec![IndexChange::Ci {
                node: node(id, "ci"),
                version: 1,
            }],
        );
    }

    fn has_edge(index: &ImpactIndex, edge: &ImpactEdge) -> bool {
        index
            .snapshot("acme")
            .is_some_and(|graph| graph.contains_edge(edge))
    }

    #[test]
    fn the_late_event_of_a_relationship_removed_here_does_not_bring_it_back() {
        let index = ImpactIndex::default();
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        ci(&index, a);
        ci(&index, b);
        let cable = Uuid::now_v7();
        let added = IndexChange::EdgeAdded {
            relationship: cable,
            edge: edge(a, b),
        };
        let removed = IndexChange::EdgeRemoved {
            relationship: cable,
            edge: edge(a, b),
        };
        // given a relationship added and removed here
        index.apply("acme", Origin::Own, vec![added.clone()]);
        index.apply("acme", Origin::Own, vec![removed.clone()]);
        // when its addition comes back as an event, then the edge stays gone
        index.apply("acme", Origin::Followed, vec![added]);
        assert!(!has_edge(&index, &edge(a, b)));
        index.apply("acme", Origin::Followed, vec![removed]);
        assert!(!has_edge(&index, &edge(a, b)));
    }

    #[test]
    fn the_late_removal_of_a_relationship_added_again_here_does_not_take_it_away() {
        let index = ImpactIndex::default();
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        ci(&index, a);
        ci(&index, b);
        let (first, second) = (Uuid::now_v7(), Uuid::now_v7());
        let change = |added: bool, relationship: Uuid| {
            if added {
                IndexChange::EdgeAdded {
                    relationship,
                    edge: edge(a, b),
                }
            } else {
                IndexChange::EdgeRemoved {
                    relationship,
                    edge: edge(a, b),
                }
            }
        };
        // given a relationship added, removed and added again (a new one) here
        for own in [
            change(true, first),
            change(false, first),
            change(true, second),
        ] {
            index.apply("acme", Origin::Own, vec![own]);
        }
        // when their events come back in order, then the edge is there throughout
        for followed in [
            change(true, first),
            change(false, first),
            change(true, second),
        ] {
            index.apply("acme", Origin::Followed, vec![followed]);
            assert!(has_edge(&index, &edge(a, b)));
        }
        // and what another replica does afterwards applies
        index.apply("acme", Origin::Followed, vec![change(false, second)]);
        assert!(!has_edge(&index, &edge(a, b)));
    }

    #[test]
    fn a_snapshot_taken_before_a_write_stays_as_it_was() {
        let index = ImpactIndex::default();
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        index.apply(
            "acme",
            Origin::Own,
            vec![IndexChange::Ci {
                node: node(a, "a"),
                version: 1,
            }],
        );
        let before = index.snapshot("acme").expect("a graph");
        index.apply(
            "acme",
            Origin::Own,
            vec![
                IndexChange::Ci {
                    node: node(b, "b"),
                    version: 1,
                },
                added(edge(a, b)),
            ],
        );
        assert_eq!(before.node_count(), 1);
        let after = index.snapshot("acme").expect("a graph");
        assert_eq!((after.node_count(), after.edge_count()), (2, 1));
    }

    #[test]
    fn both_copies_converge_over_many_writes_while_snapshots_are_held() {
        let index = ImpactIndex::default();
        let ids: Vec<Uuid> = (0..50).map(|_| Uuid::now_v7()).collect();
        let mut held = Vec::new();
        for (n, id) in ids.iter().enumerate() {
            let mut changes = vec![IndexChange::Ci {
                node: node(*id, &format!("ci-{n}")),
                version: 1,
            }];
            if n > 0 {
                changes.push(added(edge(ids[n - 1], *id)));
            }
            if n > 2 && n % 3 == 0 {
                changes.push(removed(edge(ids[n - 3], ids[n - 2])));
            }
            index.apply("acme", Origin::Own, changes);
            // Every third snapshot is kept: the writer must copy instead of waiting forever.
            if n % 3 == 0 {
                held.push(index.snapshot("acme").expect("a graph"));
            }
        }
        let expected_edges = 49 - (3..50).filter(|n| n % 3 == 0).count();
        // The published copy, and the spare after one more (empty-effect) write publishes it.
        let published = index.snapshot("acme").expect("a graph");
        assert_eq!(
            (published.node_count(), published.edge_count()),
            (50, expected_edges)
        );
        index.apply("acme", Origin::Own, vec![removed(edge(ids[0], ids[49]))]);
        let other = index.snapshot("acme").expect("a graph");
        assert_eq!(
            (other.node_count(), other.edge_count()),
            (50, expected_edges)
        );
        let walked = other
            .impact(&ImpactQuery {
                start: vec![ids[49]],
                direction: crate::domain::impact::Direction::Upstream,
                max_depth: 64,
                max_nodes: 1000,
                relationship_types: None,
                include_paths: false,
                include_via: false,
            })
            .expect("a walk");
        assert!(!walked.nodes.is_empty());
        drop(held);
    }

    #[test]
    fn an_older_version_of_a_ci_does_not_undo_a_newer_one() {
        let index = ImpactIndex::default();
        let id = Uuid::now_v7();
        index.apply(
            "acme",
            Origin::Own,
            vec![IndexChange::Ci {
                node: node(id, "new name"),
                version: 3,
            }],
        );
        // The event of version 2 arrives late (a replica's own write, seen again as an event).
        index.apply(
            "acme",
            Origin::Own,
            vec![IndexChange::Ci {
                node: node(id, "old name"),
                version: 2,
            }],
        );
        let graph = index.snapshot("acme").expect("a graph");
        assert_eq!(graph.node(id).map(|n| n.name.as_str()), Some("new name"));
        index.apply(
            "acme",
            Origin::Own,
            vec![IndexChange::Ci {
                node: node(id, "newest"),
                version: 4,
            }],
        );
        let graph = index.snapshot("acme").expect("a graph");
        assert_eq!(graph.node(id).map(|n| n.name.as_str()), Some("newest"));
    }

    #[test]
    fn tenants_are_apart() {
        let index = ImpactIndex::default();
        index.apply(
            "acme",
            Origin::Own,
            vec![IndexChange::Ci {
                node: node(Uuid::now_v7(), "a"),
                version: 1,
            }],
        );
        assert!(index.snapshot("globex").is_none());
        assert_eq!(index.tenant_count(), 1);
    }
}
