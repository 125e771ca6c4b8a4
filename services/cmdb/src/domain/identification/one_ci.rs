//! Identifying one CI outside a batch: a CI created through the API is identified by the same
//! rules as an import item of source `api`, so a second "web-01 in production" is caught as the
//! first one, whichever way it arrives (as a reconciliation engine does it).
//!
//! A CI created alone has no relationships, so a dependent rule never applies to it: a database
//! created through the API is identified by the rules that need no host (name and endpoint, name
//! and environment). Only the attributes the caller gave count; class defaults do not identify.
//!
//! The store answers the keys; [`identify_new_ci`] decides from what each one found, in rule
//! order, exactly as [`super::reconcile`] does for an item: the first rule that finds something
//! decides.

use super::*;
use crate::domain::ci_commands::given_attributes;

/// What identification made of a new CI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identification {
    /// No rule found a CI: it is new.
    New,
    /// No rule of its class applies to it alone (a rule needs a field it lacks, or a parent):
    /// nothing can be said, and it is created as asked.
    Unidentifiable,
    /// It is this CI, found by `rule`.
    Matched { ci: Box<Ci>, rule: String },
    /// `rule` finds several CIs: the CMDB already holds duplicates of it.
    Ambiguous { rule: String, ci_ids: Vec<Uuid> },
}

/// The keys a new CI is searched by, in its class's rule order: one per rule that applies to
/// it alone.
pub fn keys_of_new_ci(catalog: &ClassCatalog, new: &NewCi) -> Vec<IdentKey> {
    let Some((_, rules)) = catalog.identification_rules(&new.class) else {
        return Vec::new();
    };
    let classes: Vec<String> = catalog
        .subclasses(&new.class)
        .into_iter()
        .map(ToOwned::to_owned)
        .collect();
    let given: BTreeMap<String, AttrValue> = given_attributes(new)
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect();
    rules
        .iter()
        .filter(|rule| rule.dependent.is_none())
        .filter_map(|rule| {
            Some(IdentKey {
                rule: rule.name.clone(),
                classes: classes.clone(),
                parts: key_parts(rule, &new.name, new.environment, &given)?,
                parent: None,
            })
        })
        .collect()
}

/// Identifies a new CI from what the store found for each of its keys, given in the order
/// [`keys_of_new_ci`] returned them.
pub fn identify_new_ci(found: impl IntoIterator<Item = (IdentKey, Vec<Ci>)>) -> Identification {
    let mut any_key = false;
    for (key, cis) in found {
        any_key = true;
        match judge(&key, cis) {
            None => {}
            Some(Judged::Matched { ci, rule }) => return Identification::Matched { ci, rule },
            Some(Judged::Ambiguous { rule, ci_ids }) => {
                return Identification::Ambiguous { rule, ci_ids };
            }
        }
    }
    if any_key {
        Identification::New
    } else {
        Identification::Unidentifiable
    }
}
