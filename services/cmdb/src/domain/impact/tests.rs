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
                let against = matches!(flow, ImpactFlow::TargetImpactsSource | ImpactFlow::Both);
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
