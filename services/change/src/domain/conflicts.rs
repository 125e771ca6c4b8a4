//! Conflicts of a proposed window, found across the whole dependency graph, each explained, and
//! the next window of a given length that has none.
//!
//! A proposed change conflicts with another change whose window overlaps its own when the other
//! touches one of the same CIs, a CI upstream of one (a CI that depends on it, as far as its
//! failure reaches) or a CI downstream of one (a CI it depends on), within a depth or the whole
//! closure, or when both have the same implementer; and with a freeze period covering one of its
//! CIs, and with the maintenance windows of its CIs that do not hold the window.
//!
//! The check walks the closure once per direction from all of the proposed change's CIs at
//! once, and looks each CI reached up in an index of the overlapping changes' CIs, so its cost is
//! the closure's size whatever the number of scheduled changes; a walk stops as soon as every
//! CI in the index has been found.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::graph::{DependencyGraph, Direction, Edge};
use super::schedule::{FreezeWindow, MaintenanceWindow, TimeRange};

desk_kit::string_enum! {
    pub enum ConflictKind {
        SameCi => "same_ci",
        UpstreamCi => "upstream_ci",
        DownstreamCi => "downstream_ci",
        SameImplementer => "same_implementer",
        Freeze => "freeze",
        OutsideMaintenanceWindow => "outside_maintenance_window",
    }
}

/// One conflict, explained.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conflict {
    pub kind: ConflictKind,
    /// The other change (id, number), for overlaps.
    pub other_change: Option<(Uuid, String)>,
    /// The proposed change's CI the conflict starts from.
    pub ci: Option<Uuid>,
    /// The other change's CI it reaches.
    pub other_ci: Option<Uuid>,
    /// From `ci` to `other_ci`.
    pub path: Vec<Edge>,
    /// The freeze or maintenance window.
    pub window: Option<Uuid>,
    pub explanation: String,
}

/// What is proposed.
#[derive(Debug, Clone)]
pub struct Proposal<'a> {
    /// The change itself, which never conflicts with itself.
    pub change: Option<Uuid>,
    pub cis: &'a [Uuid],
    pub range: TimeRange,
    pub implementer: Option<&'a str>,
}

/// Another change holding its window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Booked {
    pub id: Uuid,
    pub number: String,
    pub cis: Vec<Uuid>,
    pub range: TimeRange,
    pub implementer: Option<String>,
}

/// How far along the graph to look: `None` is the whole closure.
pub type Depth = Option<u32>;

/// Everything the proposal conflicts with, same-CI overlaps first, then upstream, downstream,
/// implementer, freeze and maintenance conflicts. Each (other change, CI) pair is reported once,
/// by its closest relation.
pub fn find_conflicts(
    graph: &DependencyGraph,
    proposal: &Proposal<'_>,
    booked: &[Booked],
    freezes: &[FreezeWindow],
    maintenance: &[MaintenanceWindow],
    depth: Depth,
) -> Vec<Conflict> {
    let overlapping: Vec<&Booked> = booked
        .iter()
        .filter(|b| Some(b.id) != proposal.change && b.range.overlaps(&proposal.range))
        .collect();
    let mut conflicts = ci_conflicts(graph, proposal, &overlapping, depth);
    if let Some(implementer) = proposal.implementer {
        for other in &overlapping {
            if other.implementer.as_deref() == Some(implementer) {
                conflicts.push(Conflict {
                    kind: ConflictKind::SameImplementer,
                    other_change: Some((other.id, other.number.clone())),
                    ci: None,
                    other_ci: None,
                    path: Vec::new(),
                    window: None,
                    explanation: format!(
                        "{} has the same implementer, {implementer}, at an overlapping time",
                        other.number
                    ),
                });
            }
        }
    }
    conflicts.extend(window_conflicts(graph, proposal, freezes, maintenance));
    conflicts
}

/// Overlapping changes on the same CIs or CIs related through the graph.
fn ci_conflicts(
    graph: &DependencyGraph,
    proposal: &Proposal<'_>,
    overlapping: &[&Booked],
    depth: Depth,
) -> Vec<Conflict> {
    // The overlapping changes by CI: the index each CI reached is looked up in.
    let mut by_ci: HashMap<Uuid, Vec<usize>> = HashMap::new();
    for (index, other) in overlapping.iter().enumerate() {
        for ci in &other.cis {
            by_ci.entry(*ci).or_default().push(index);
        }
    }
    let mut conflicts = Vec::new();
    if by_ci.is_empty() {
        return conflicts;
    }
    let mut reported: HashSet<(usize, Uuid)> = HashSet::new();
    for ci in proposal.cis {
        for index in by_ci.get(ci).into_iter().flatten() {
            if reported.insert((*index, *ci)) {
                let other = overlapping[*index];
                conflicts.push(Conflict {
                    kind: ConflictKind::SameCi,
                    other_change: Some((other.id, other.number.clone())),
                    ci: Some(*ci),
                    other_ci: Some(*ci),
                    path: Vec::new(),
                    window: None,
                    explanation: format!(
                        "{} changes {} too, at an overlapping time",
                        other.number,
                        name(graph, *ci)
                    ),
                });
            }
        }
    }
    let starts: Vec<u32> = proposal
        .cis
        .iter()
        .filter_map(|ci| graph.position(*ci))
        .collect();
    let start_set: HashSet<Uuid> = proposal.cis.iter().copied().collect();
    let wanted: HashSet<u32> = by_ci
        .keys()
        .filter(|ci| !start_set.contains(ci))
        .filter_map(|ci| graph.position(*ci))
        .collect();
    for (direction, kind) in [
        (Direction::Upstream, ConflictKind::UpstreamCi),
        (Direction::Downstream, ConflictKind::DownstreamCi),
    ] {
        let mut left = wanted.len();
        if left == 0 {
            break;
        }
        let walk = graph.walk(&starts, direction, depth, |reached| {
            if reached.depth > 0 && wanted.contains(&reached.node) {
                left -= 1;
            }
            left == 0
        });
        for reached in walk.reached.iter().filter(|r| r.depth > 0) {
            let reached_ci = graph.node(reached.node).id;
            let Some(indexes) = by_ci.get(&reached_ci) else {
                continue;
            };
            let origin = graph.node(walk.origin_of(reached.node)).id;
            let path = walk.path_to(reached.node);
            for index in indexes {
                if !reported.insert((*index, reached_ci)) {
                    continue;
                }
                let other = overlapping[*index];
                let relation = match direction {
                    Direction::Upstream => "depends on",
                    Direction::Downstream => "is needed by",
                };
                conflicts.push(Conflict {
                    kind,
                    other_change: Some((other.id, other.number.clone())),
                    ci: Some(origin),
                    other_ci: Some(reached_ci),
                    explanation: format!(
                        "{} changes {} at an overlapping time, which {relation} {} {} away: {}",
                        other.number,
                        name(graph, reached_ci),
                        name(graph, origin),
                        hops(reached.depth),
                        describe_path(graph, &path)
                    ),
                    path: path.clone(),
                    window: None,
                });
            }
        }
    }
    conflicts
}

/// Freeze periods over the window and maintenance windows that do not hold it.
fn window_conflicts(
    graph: &DependencyGraph,
    proposal: &Proposal<'_>,
    freezes: &[FreezeWindow],
    maintenance: &[MaintenanceWindow],
) -> Vec<Conflict> {
    let mut conflicts = Vec::new();
    for freeze in freezes.iter().filter(|f| f.range.overlaps(&proposal.range)) {
        let covered = proposal.cis.iter().find(|ci| freeze.covers(**ci)).copied();
        if covered.is_none() && !freeze.ci_ids.is_empty() {
            continue;
        }
        conflicts.push(Conflict {
            kind: ConflictKind::Freeze,
            other_change: None,
            ci: covered,
            other_ci: None,
            path: Vec::new(),
            window: Some(freeze.id),
            explanation: format!(
                "the window overlaps the freeze {:?} ({} to {}){}",
                freeze.name,
                freeze.range.start.to_rfc3339(),
                freeze.range.end.to_rfc3339(),
                covered.map_or_else(String::new, |ci| format!(
                    ", which covers {}",
                    name(graph, ci)
                ))
            ),
        });
    }
    for ci in proposal.cis {
        let windows: Vec<&MaintenanceWindow> = maintenance
            .iter()
            .filter(|m| m.ci_ids.contains(ci))
            .collect();
        if windows.is_empty() || windows.iter().any(|m| m.admits(&proposal.range)) {
            continue;
        }
        conflicts.push(Conflict {
            kind: ConflictKind::OutsideMaintenanceWindow,
            other_change: None,
            ci: Some(*ci),
            other_ci: None,
            path: Vec::new(),
            window: windows.first().map(|m| m.id),
            explanation: format!(
                "the window is outside every maintenance window of {} ({})",
                name(graph, *ci),
                windows
                    .iter()
                    .map(|m| m.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        });
    }
    conflicts
}

/// The earliest window of `length` starting at or after `not_before` (and before `horizon`)
/// that has no conflict: no overlapping change on a related CI or with the same implementer,
/// no freeze over its CIs, inside a maintenance window of each CI that has some.
#[allow(clippy::too_many_arguments)]
pub fn next_free_slot(
    graph: &DependencyGraph,
    cis: &[Uuid],
    implementer: Option<&str>,
    length: Duration,
    not_before: DateTime<Utc>,
    horizon: DateTime<Utc>,
    booked: &[Booked],
    freezes: &[FreezeWindow],
    maintenance: &[MaintenanceWindow],
    depth: Depth,
) -> Option<TimeRange> {
    let search = TimeRange::new(not_before, horizon)?;
    // Which booked changes matter at all, whatever their time: one walk over the closure.
    let whole = TimeRange {
        start: DateTime::<Utc>::MIN_UTC,
        end: DateTime::<Utc>::MAX_UTC,
    };
    let timeless = Proposal {
        change: None,
        cis,
        range: whole,
        implementer,
    };
    let everyone: Vec<&Booked> = booked.iter().collect();
    let mut blocking: HashSet<Uuid> = ci_conflicts(graph, &timeless, &everyone, depth)
        .into_iter()
        .filter_map(|c| c.other_change.map(|(id, _)| id))
        .collect();
    if let Some(implementer) = implementer {
        blocking.extend(
            booked
                .iter()
                .filter(|b| b.implementer.as_deref() == Some(implementer))
                .map(|b| b.id),
        );
    }
    let mut blocked: Vec<TimeRange> = booked
        .iter()
        .filter(|b| blocking.contains(&b.id))
        .map(|b| b.range)
        .collect();
    blocked.extend(
        freezes
            .iter()
            .filter(|f| f.ci_ids.is_empty() || cis.iter().any(|ci| f.covers(*ci)))
            .map(|f| f.range),
    );
    let constrained: Vec<Vec<&MaintenanceWindow>> = cis
        .iter()
        .map(|ci| {
            maintenance
                .iter()
                .filter(|m| m.ci_ids.contains(ci))
                .collect::<Vec<_>>()
        })
        .filter(|windows| !windows.is_empty())
        .collect();
    // A free slot starts at the search's start, at the end of something that blocks, or at a
    // maintenance window's opening.
    let mut candidates = vec![not_before];
    candidates.extend(blocked.iter().map(|b| b.end));
    for windows in &constrained {
        for window in windows {
            candidates.extend(window.openings(&search).into_iter().map(|o| o.start));
        }
    }
    candidates.retain(|c| *c >= not_before && *c < horizon);
    candidates.sort_unstable();
    candidates.dedup();
    candidates.into_iter().find_map(|start| {
        let slot = TimeRange {
            start,
            end: start + length,
        };
        let free = !blocked.iter().any(|b| b.overlaps(&slot))
            && constrained
                .iter()
                .all(|windows| windows.iter().any(|m| m.admits(&slot)));
        free.then_some(slot)
    })
}

fn name(graph: &DependencyGraph, ci: Uuid) -> String {
    graph
        .ci(ci)
        .map_or_else(|| ci.to_string(), |node| node.name.clone())
}

fn hops(depth: u32) -> String {
    match depth {
        1 => "one relationship".to_owned(),
        n => format!("{n} relationships"),
    }
}

/// `web depends_on app, app runs_on db-host`.
pub fn describe_path(graph: &DependencyGraph, path: &[Edge]) -> String {
    path.iter()
        .map(|edge| {
            format!(
                "{} {} {}",
                name(graph, edge.source),
                edge.relation,
                name(graph, edge.target)
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::super::graph::tests::{id, shop};
    use super::*;

    fn at(hour: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_900_000_000, 0).expect("a time") + Duration::hours(hour)
    }

    fn hours(start: i64, end: i64) -> TimeRange {
        TimeRange::new(at(start), at(end)).expect("a range")
    }

    fn booked(n: u128, cis: &[u128], range: TimeRange, implementer: &str) -> Booked {
        Booked {
            id: id(1000 + n),
            number: format!("CHG-{n:06}"),
            cis: cis.iter().map(|c| id(*c)).collect(),
            range,
            implementer: Some(implementer.into()),
        }
    }

    fn proposal<'a>(cis: &'a [Uuid], range: TimeRange) -> Proposal<'a> {
        Proposal {
            change: None,
            cis,
            range,
            implementer: Some("ivy"),
        }
    }

    #[test]
    fn a_change_three_hops_away_conflicts_with_its_path_where_a_same_ci_check_sees_nothing() {
        let graph = shop();
        // The proposal changes db-host; another change works on the shop business service,
        // which reaches db-host through web and app: provides, depends_on, runs_on.
        let cis = [id(4)];
        let others = [booked(1, &[1], hours(1, 3), "olga")];
        let conflicts = find_conflicts(
            &graph,
            &proposal(&cis, hours(2, 4)),
            &others,
            &[],
            &[],
            None,
        );
        assert_eq!(conflicts.len(), 1);
        let conflict = &conflicts[0];
        assert_eq!(conflict.kind, ConflictKind::UpstreamCi);
        assert_eq!(conflict.ci, Some(id(4)));
        assert_eq!(conflict.other_ci, Some(id(1)));
        assert_eq!(conflict.path.len(), 3);
        assert_eq!(
            conflict.explanation,
            "CHG-000001 changes shop at an overlapping time, which depends on db-host 3 \
             relationships away: app runs_on db-host, web depends_on app, web provides shop"
        );
        // A depth of 2 does not reach it; the same CI alone never would.
        assert!(
            find_conflicts(
                &graph,
                &proposal(&cis, hours(2, 4)),
                &others,
                &[],
                &[],
                Some(2)
            )
            .is_empty()
        );
    }

    #[test]
    fn changes_that_do_not_overlap_in_time_do_not_conflict() {
        let graph = shop();
        let cis = [id(4)];
        let others = [booked(1, &[4], hours(5, 6), "ivy")];
        assert!(
            find_conflicts(
                &graph,
                &proposal(&cis, hours(2, 4)),
                &others,
                &[],
                &[],
                None
            )
            .is_empty()
        );
    }

    #[test]
    fn same_ci_downstream_and_implementer_conflicts_are_each_named_once() {
        let graph = shop();
        let cis = [id(2)];
        let others = [
            booked(1, &[2, 4], hours(1, 3), "olga"),
            booked(2, &[3], hours(1, 3), "ivy"),
        ];
        let kinds: Vec<ConflictKind> = find_conflicts(
            &graph,
            &proposal(&cis, hours(2, 4)),
            &others,
            &[],
            &[],
            None,
        )
        .iter()
        .map(|c| c.kind)
        .collect();
        assert_eq!(
            kinds,
            [
                ConflictKind::SameCi,
                ConflictKind::DownstreamCi,
                ConflictKind::DownstreamCi,
                ConflictKind::SameImplementer
            ]
        );
    }

    #[test]
    fn a_freeze_over_the_window_and_a_maintenance_window_that_does_not_hold_it_conflict() {
        let graph = shop();
        let cis = [id(3)];
        let freeze = FreezeWindow {
            id: id(77),
            name: "quarter end".into(),
            reason: String::new(),
            range: hours(0, 10),
            ci_ids: Vec::new(),
        };
        let maintenance = MaintenanceWindow::new(
            id(78),
            "never now".into(),
            vec![id(3)],
            vec![1],
            "03:00",
            60,
            "UTC",
        )
        .expect("a window");
        let conflicts = find_conflicts(
            &graph,
            &proposal(&cis, hours(2, 4)),
            &[],
            &[freeze],
            &[maintenance],
            None,
        );
        let kinds: Vec<ConflictKind> = conflicts.iter().map(|c| c.kind).collect();
        assert_eq!(
            kinds,
            [ConflictKind::Freeze, ConflictKind::OutsideMaintenanceWindow]
        );
        assert_eq!(conflicts[0].window, Some(id(77)));
    }

    #[test]
    fn the_next_free_slot_follows_what_blocks_the_window() {
        let graph = shop();
        let cis = [id(4)];
        let others = [
            booked(1, &[1], hours(0, 3), "olga"),
            booked(2, &[4], hours(3, 5), "olga"),
            // Unrelated CI and implementer: does not block.
            booked(3, &[5], hours(5, 9), "olga"),
        ];
        let freeze = FreezeWindow {
            id: id(77),
            name: "freeze".into(),
            reason: String::new(),
            range: hours(5, 6),
            ci_ids: vec![id(4)],
        };
        let slot = next_free_slot(
            &graph,
            &cis,
            Some("ivy"),
            Duration::hours(2),
            at(0),
            at(100),
            &others,
            &[freeze],
            &[],
            None,
        );
        assert_eq!(slot, Some(hours(6, 8)));
    }

    proptest::proptest! {
        /// Whatever is booked, the suggested slot has no conflict of its own.
        #[test]
        fn a_suggested_slot_has_no_conflict(
            windows in proptest::collection::vec((0i64..48, 1i64..6, 1u128..6), 0..12),
            length in 1i64..5,
        ) {
            let graph = shop();
            let cis = [id(4)];
            let others: Vec<Booked> = windows
                .iter()
                .enumerate()
                .map(|(n, (start, len, ci))| booked(n as u128, &[*ci], hours(*start, start + len), "olga"))
                .collect();
            let slot = next_free_slot(
                &graph, &cis, Some("ivy"), Duration::hours(length), at(0), at(500), &others, &[], &[], None,
            );
            let slot = slot.expect("a slot within the horizon");
            let found = find_conflicts(&graph, &proposal(&cis, slot), &others, &[], &[], None);
            proptest::prop_assert!(found.is_empty(), "{:?}", found);
        }
    }
}
