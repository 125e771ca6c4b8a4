//! The validation of a whole batch before anything is identified: every item's fields, every
//! relationship's ends and rules, repeats, cardinality within the batch, and cycles of dependent
//! identification.

use super::*;

/// An end of a batch relationship after validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) enum Ref {
    Local(usize),
    Existing(Uuid),
}

/// The batch after validation.
pub(super) struct CheckedBatch {
    /// Typed attributes of each valid item; `None` for an invalid one.
    pub(super) items: Vec<Option<ValidatedAttributes>>,
    /// The resolved ends of each valid relationship; `None` for an invalid one.
    pub(super) relationships: Vec<Option<(Ref, Ref)>>,
    /// Valid relationships by their local source item.
    pub(super) outgoing: Vec<Vec<usize>>,
    /// For each valid item, the valid items its dependent rules may identify it through.
    pub(super) dependent_parents: Vec<Vec<usize>>,
    /// Valid items, parents before the children identified through them.
    pub(super) order: Vec<usize>,
    pub(super) problems: Violations,
}

fn item_field(index: usize, field: &str) -> String {
    format!("items[{index}].{field}")
}

fn relationship_field(index: usize, field: &str) -> String {
    format!("relationships[{index}].{field}")
}

pub(super) fn check_batch(
    catalog: &ClassCatalog,
    batch: &ImportBatch,
    invalid_items: InvalidItems,
) -> Result<CheckedBatch, Violations> {
    let mut fatal = Violations::new();
    if batch.items.len() > MAX_IMPORT_ITEMS {
        fatal.push(
            "items",
            format!(
                "must have at most {MAX_IMPORT_ITEMS} items, not {}",
                batch.items.len()
            ),
        );
    }
    if batch.relationships.len() > MAX_IMPORT_RELATIONSHIPS {
        fatal.push(
            "relationships",
            format!(
                "must have at most {MAX_IMPORT_RELATIONSHIPS} relationships, not {}",
                batch.relationships.len()
            ),
        );
    }
    fatal.into_result()?;

    let mut problems = Violations::new();

    // Items, field by field.
    let mut items: Vec<Option<ValidatedAttributes>> = Vec::with_capacity(batch.items.len());
    let mut local: HashMap<&str, usize> = HashMap::new();
    for (index, item) in batch.items.iter().enumerate() {
        let mut found = Violations::new();
        validate::opaque(
            &item_field(index, "local_id"),
            &item.local_id,
            ID_MAX,
            &mut found,
        );
        validate::single_line(&item_field(index, "name"), &item.name, NAME_MAX, &mut found);
        validate::opaque(
            &item_field(index, "source"),
            &item.source,
            SOURCE_MAX,
            &mut found,
        );
        // Patch mode: typing only. Whether required attributes are missing depends on whether
        // the item turns out to be new, which identification decides.
        let validated = check_attributes(
            catalog,
            &item.class,
            &item.attributes,
            ValidationMode::Patch,
            &item_field(index, "class"),
            &item_field(index, "attributes."),
            &mut found,
        );
        match local.get(item.local_id.as_str()) {
            Some(first) => found.push(
                item_field(index, "local_id"),
                format!(
                    "\"{}\" is already the local id of items[{first}]",
                    item.local_id
                ),
            ),
            None => {
                local.insert(&item.local_id, index);
            }
        }
        items.push(found.is_empty().then_some(validated));
        problems.extend_prefixed("", found);
    }

    // Relationships: ends, self-loops, class rules between items, repeats, cardinality.
    let mut relationships: Vec<Option<(Ref, Ref)>> = Vec::with_capacity(batch.relationships.len());
    let mut seen: HashMap<(Ref, &str, Ref), usize> = HashMap::new();
    let mut outgoing_of_type: HashMap<(Ref, &str), Vec<usize>> = HashMap::new();
    for (index, relationship) in batch.relationships.iter().enumerate() {
        let mut found = Violations::new();
        let resolve = |end: &ImportRef, field: &str, found: &mut Violations| match end {
            ImportRef::Existing(id) => Some(Ref::Existing(*id)),
            ImportRef::Local(local_id) => match local.get(local_id.as_str()) {
                Some(&item) => Some(Ref::Local(item)),
                None => {
                    found.push(
                        relationship_field(index, field),
                        format!("no item has the local id \"{local_id}\""),
                    );
                    None
                }
            },
        };
        let source = resolve(&relationship.source, "source", &mut found);
        let target = resolve(&relationship.target, "target", &mut found);
        let kind = relationship.relationship;
        if let (Some(source), Some(target)) = (source, target) {
            if source == target {
                found.push(
                    relationship_field(index, "target"),
                    RelationshipError::SelfLoop.to_string(),
                );
            } else if let (Ref::Local(s), Ref::Local(t)) = (source, target)
                && let Err(error) =
                    check_classes(catalog, kind, &batch.items[s].class, &batch.items[t].class)
            {
                let field = match &error {
                    RelationshipError::ClassNotAllowed {
                        end: End::Source, ..
                    } => "source",
                    _ => "target",
                };
                found.push(relationship_field(index, field), error.to_string());
            }
        }
        let ends = match (source, target) {
            (Some(source), Some(target)) if found.is_empty() => Some((source, target)),
            _ => None,
        };
        if let Some((source, target)) = ends {
            // A symmetric pair is one relationship whichever way it is written.
            let key = if kind.is_symmetric() && target < source {
                (target, kind.as_str(), source)
            } else {
                (source, kind.as_str(), target)
            };
            if let Some(first) = seen.get(&key) {
                found.push(
                    format!("relationships[{index}]"),
                    format!("repeats relationships[{first}]"),
                );
            } else {
                seen.insert(key, index);
                if let Some(max) = kind.max_outgoing() {
                    let earlier = outgoing_of_type.entry((source, kind.as_str())).or_default();
                    if earlier.len() >= max as usize {
                        let others = earlier
                            .iter()
                            .map(|other| format!("relationships[{other}]"))
                            .collect::<Vec<_>>()
                            .join(", ");
                        found.push(
                            relationship_field(index, "source"),
                            format!(
                                "{} may be the source of at most {max} {kind} relationship{}, and \
                                 the batch already gives it {others}",
                                relationship.source,
                                if max == 1 { "" } else { "s" }
                            ),
                        );
                    } else {
                        earlier.push(index);
                    }
                }
            }
        }
        relationships.push(if found.is_empty() { ends } else { None });
        problems.extend_prefixed("", found);
    }

    // Dependent identification must not loop: a → b → a can never be identified.
    let parents = dependent_parents(catalog, batch, &items, &relationships);
    for cycle in cycles(&parents) {
        let names = cycle
            .iter()
            .map(|&item| format!("\"{}\"", batch.items[item].local_id))
            .collect::<Vec<_>>()
            .join(", ");
        for &item in &cycle {
            problems.push(
                format!("items[{item}]"),
                format!(
                    "items {names} are each identified through another of them: dependent \
                     identification forms a cycle"
                ),
            );
            items[item] = None;
        }
    }

    // Whatever refers to an invalid item goes too.
    for (index, ends) in relationships.iter_mut().enumerate() {
        let Some((source, target)) = *ends else {
            continue;
        };
        for (end, field) in [(source, "source"), (target, "target")] {
            if let Ref::Local(item) = end
                && items[item].is_none()
                && ends.is_some()
            {
                *ends = None;
                if invalid_items == InvalidItems::Skip {
                    problems.push(
                        relationship_field(index, field),
                        format!("left out because items[{item}] is invalid"),
                    );
                }
            }
        }
    }

    let mut outgoing = vec![Vec::new(); batch.items.len()];
    for (index, ends) in relationships.iter().enumerate() {
        if let Some((Ref::Local(source), _)) = ends {
            outgoing[*source].push(index);
        }
    }
    let parents = dependent_parents(catalog, batch, &items, &relationships);
    let order = parents_first(&items, &parents);
    Ok(CheckedBatch {
        items,
        relationships,
        outgoing,
        dependent_parents: parents,
        order,
        problems,
    })
}

/// For each valid item, the valid items it may be identified through: targets of its
/// relationships that fit one of its class's dependent rules.
fn dependent_parents(
    catalog: &ClassCatalog,
    batch: &ImportBatch,
    items: &[Option<ValidatedAttributes>],
    relationships: &[Option<(Ref, Ref)>],
) -> Vec<Vec<usize>> {
    let mut parents: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); batch.items.len()];
    for (index, ends) in relationships.iter().enumerate() {
        let Some((Ref::Local(child), Ref::Local(parent))) = *ends else {
            continue;
        };
        if items[child].is_none() || items[parent].is_none() {
            continue;
        }
        let kind = batch.relationships[index].relationship;
        let Some((_, rules)) = catalog.identification_rules(&batch.items[child].class) else {
            continue;
        };
        let fits = rules
            .iter()
            .filter_map(|rule| rule.dependent.as_ref())
            .any(|dependent| {
                dependent.relationship == kind
                    && catalog.is_subclass_of(&batch.items[parent].class, &dependent.parent_class)
            });
        if fits {
            parents[child].insert(parent);
        }
    }
    parents
        .into_iter()
        .map(|set| set.into_iter().collect())
        .collect()
}

/// The strongly connected components with more than one node (Tarjan's algorithm, iterative so
/// a long chain cannot overflow the stack), each sorted, in order of their smallest node.
fn cycles(edges: &[Vec<usize>]) -> Vec<Vec<usize>> {
    let count = edges.len();
    let mut next_index = 0;
    let mut index: Vec<Option<usize>> = vec![None; count];
    let mut low = vec![0; count];
    let mut on_stack = vec![false; count];
    let mut stack = Vec::new();
    let mut components = Vec::new();
    for root in 0..count {
        if index[root].is_some() {
            continue;
        }
        let mut calls: Vec<(usize, usize)> = vec![(root, 0)];
        index[root] = Some(next_index);
        low[root] = next_index;
        next_index += 1;
        stack.push(root);
        on_stack[root] = true;
        while let Some(&(node, next)) = calls.last() {
            if let Some(&child) = edges[node].get(next) {
                if let Some(call) = calls.last_mut() {
                    call.1 += 1;
                }
                match index[child] {
                    None => {
                        index[child] = Some(next_index);
                        low[child] = next_index;
                        next_index += 1;
                        stack.push(child);
                        on_stack[child] = true;
                        calls.push((child, 0));
                    }
                    Some(child_index) if on_stack[child] => {
                        low[node] = low[node].min(child_index);
                    }
                    Some(_) => {}
                }
                continue;
            }
            calls.pop();
            if let Some(&(caller, _)) = calls.last() {
                low[caller] = low[caller].min(low[node]);
            }
            if Some(low[node]) == index[node] {
                let mut component = Vec::new();
                while let Some(member) = stack.pop() {
                    on_stack[member] = false;
                    component.push(member);
                    if member == node {
                        break;
                    }
                }
                if component.len() > 1 {
                    component.sort_unstable();
                    components.push(component);
                }
            }
        }
    }
    components.sort();
    components
}

/// Valid items in an order where every parent comes before its children; among items that are
/// ready at the same time, the lowest index first. The graph is acyclic by now.
fn parents_first(items: &[Option<ValidatedAttributes>], parents: &[Vec<usize>]) -> Vec<usize> {
    let mut waiting: Vec<usize> = parents.iter().map(Vec::len).collect();
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); parents.len()];
    for (child, its_parents) in parents.iter().enumerate() {
        for &parent in its_parents {
            children[parent].push(child);
        }
    }
    let mut ready: BTreeSet<usize> = (0..items.len())
        .filter(|&item| items[item].is_some() && waiting[item] == 0)
        .collect();
    let mut order = Vec::with_capacity(items.len());
    while let Some(item) = ready.pop_first() {
        order.push(item);
        for &child in &children[item] {
            waiting[child] -= 1;
            if waiting[child] == 0 && items[child].is_some() {
                ready.insert(child);
            }
        }
    }
    order
}
