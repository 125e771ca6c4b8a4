//! Hierarchies that must stay trees: people's managers and teams' parents.
//!
//! Both are "each node names at most one parent" links, so a cycle can only be closed by a
//! change, and every cycle a change closes passes through a changed node. The checks walk the
//! links as they would be after the change; links already stored are trusted to be acyclic, but
//! a walk never loops forever even if they were not (a visited set bounds it).

use std::{
    collections::{BTreeSet, HashMap, HashSet},
    hash::Hash,
};

/// The chain of parents from `node` if its parent became `new_parent`: `Some(cycle)` when the
/// chain comes back to `node` (the cycle in walking order, starting and ending with `node`),
/// `None` when it ends.
pub fn cycle_through<K: Hash + Eq + Clone>(
    links: &HashMap<K, K>,
    node: &K,
    new_parent: &K,
) -> Option<Vec<K>> {
    let mut path = vec![node.clone()];
    let mut seen = HashSet::new();
    let mut current = new_parent.clone();
    loop {
        path.push(current.clone());
        if &current == node {
            return Some(path);
        }
        if !seen.insert(current.clone()) {
            // A loop that does not pass through `node`: not this change's doing.
            return None;
        }
        match links.get(&current) {
            Some(parent) => current = parent.clone(),
            None => return None,
        }
    }
}

/// The changed nodes that lie on a cycle once every change (node → its new parent, `None` for
/// none) is applied over `links`.
pub fn changed_nodes_on_cycles<K: Hash + Eq + Clone + Ord>(
    links: &HashMap<K, K>,
    changes: &HashMap<K, Option<K>>,
) -> BTreeSet<K> {
    let parent_of = |node: &K| -> Option<K> {
        match changes.get(node) {
            Some(new_parent) => new_parent.clone(),
            None => links.get(node).cloned(),
        }
    };
    // Functional graph walk with three colours: unseen, on the current path, finished.
    let mut finished: HashSet<K> = HashSet::new();
    let mut on_cycle = BTreeSet::new();
    let mut starts: Vec<&K> = changes.keys().collect();
    starts.sort();
    for start in starts {
        if finished.contains(start) {
            continue;
        }
        let mut path: Vec<K> = Vec::new();
        let mut position: HashMap<K, usize> = HashMap::new();
        let mut current = Some(start.clone());
        while let Some(node) = current {
            if finished.contains(&node) {
                break;
            }
            if let Some(&index) = position.get(&node) {
                for member in &path[index..] {
                    if changes.contains_key(member) {
                        on_cycle.insert(member.clone());
                    }
                }
                break;
            }
            position.insert(node.clone(), path.len());
            path.push(node.clone());
            current = parent_of(&node);
        }
        finished.extend(path);
    }
    on_cycle
}

#[cfg(test)]
mod tests {
    use super::*;

    fn links(pairs: &[(u32, u32)]) -> HashMap<u32, u32> {
        pairs.iter().copied().collect()
    }

    #[test]
    fn a_new_parent_above_the_node_closes_no_cycle() {
        // 3 → 2 → 1
        let tree = links(&[(3, 2), (2, 1)]);
        assert_eq!(cycle_through(&tree, &4, &3), None);
        assert_eq!(cycle_through(&tree, &2, &1), None);
    }

    #[test]
    fn a_node_below_as_the_new_parent_closes_a_cycle_named_in_order() {
        // 3 → 2 → 1; making 3 the parent of 1 closes 1 → 3 → 2 → 1.
        let tree = links(&[(3, 2), (2, 1)]);
        assert_eq!(cycle_through(&tree, &1, &3), Some(vec![1, 3, 2, 1]));
        assert_eq!(cycle_through(&tree, &1, &1), Some(vec![1, 1]));
    }

    #[test]
    fn a_stored_loop_elsewhere_does_not_hang_the_walk() {
        let broken = links(&[(5, 6), (6, 5)]);
        assert_eq!(cycle_through(&broken, &1, &5), None);
    }

    #[test]
    fn changes_that_together_form_a_cycle_name_every_changed_node_on_it() {
        // Stored: 10 → 20. The batch says 20 → 30 and 30 → 10: 10 → 20 → 30 → 10.
        let stored = links(&[(10, 20)]);
        let changes: HashMap<u32, Option<u32>> =
            [(20, Some(30)), (30, Some(10)), (40, Some(10))].into();
        assert_eq!(
            changed_nodes_on_cycles(&stored, &changes),
            BTreeSet::from([20, 30])
        );
    }

    #[test]
    fn a_change_that_breaks_a_link_breaks_the_cycle() {
        let stored = links(&[(1, 2)]);
        let changes: HashMap<u32, Option<u32>> = [(2, Some(1)), (1, None)].into();
        assert!(changed_nodes_on_cycles(&stored, &changes).is_empty());
    }

    #[test]
    fn chains_into_an_existing_tree_are_fine() {
        let stored = links(&[(2, 1), (3, 1)]);
        let changes: HashMap<u32, Option<u32>> = [(4, Some(3)), (5, Some(4))].into();
        assert!(changed_nodes_on_cycles(&stored, &changes).is_empty());
    }
}
