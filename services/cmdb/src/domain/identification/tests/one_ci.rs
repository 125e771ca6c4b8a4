//! One CI outside a batch: a create through the API, identified like an import item.

use super::*;
use crate::domain::{CreateCi, identify_new_ci, keys_of_new_ci};

fn new_ci(class: &str, name: &str, given: Value) -> NewCi {
    CreateCi {
        class: class.into(),
        name: name.into(),
        attributes: match given {
            Value::Object(map) => map.into_iter().collect(),
            _ => BTreeMap::new(),
        },
        ..CreateCi::default()
    }
    .checked(&ClassCatalog::builtin(), Violations::new())
    .expect("a valid create")
}

fn rules(keys: &[IdentKey]) -> Vec<&str> {
    keys.iter().map(|key| key.rule.as_str()).collect()
}

/// What `existing` finds for each key of `new`, as the service asks it.
fn identify(existing: &Memory, new: &NewCi) -> Identification {
    identify_new_ci(
        keys_of_new_ci(&ClassCatalog::builtin(), new)
            .into_iter()
            .map(|key| {
                let found = existing.find_by_key(&key);
                (key, found)
            }),
    )
}

#[test]
fn a_new_ci_is_searched_by_every_rule_it_gives_the_fields_of_in_rule_order() {
    let catalog = ClassCatalog::builtin();
    let server = new_ci("server", "web-01", json!({"serial_number": "SN-1"}));
    assert_eq!(
        rules(&keys_of_new_ci(&catalog, &server)),
        ["serial_number", "name_environment"]
    );
    // A database created alone has no host: it is identified by the rules that need none.
    let database = new_ci("database", "orders", json!({}));
    assert_eq!(
        rules(&keys_of_new_ci(&catalog, &database)),
        ["name_environment"]
    );
    let keys = keys_of_new_ci(&catalog, &server);
    assert!(keys[0].classes.contains(&"virtual_machine".to_owned()));
    assert!(keys.iter().all(|key| key.parent.is_none()));
}

#[test]
fn a_class_default_does_not_identify_a_new_ci() {
    let catalog = ClassCatalog::with_tenant_classes(vec![CiClass {
        name: "rack".into(),
        label: "Rack".into(),
        parent: Some(ROOT_CLASS.into()),
        attributes: vec![
            AttributeDef::new("site", AttributeType::String { max_len: 20 })
                .with_default(AttrValue::String("DC1".into())),
        ],
        identification: vec![IdentificationRule::new("site", &["site"])],
        abstract_class: false,
    }])
    .expect("valid");
    let rack = CreateCi {
        class: "rack".into(),
        name: "r1".into(),
        ..CreateCi::default()
    }
    .checked(&catalog, Violations::new())
    .expect("valid");
    assert!(keys_of_new_ci(&catalog, &rack).is_empty());
    assert_eq!(identify_new_ci(Vec::new()), Identification::Unidentifiable);
}

#[test]
fn the_first_rule_that_finds_a_live_ci_decides() {
    let mut existing = Memory::default();
    let known = existing.add("server", "web-01", json!({"serial_number": "SN-1"}), "sccm");
    // Found by serial number although the name differs.
    assert_eq!(
        identify(
            &existing,
            &new_ci("server", "web-one", json!({"serial_number": "SN-1"}))
        ),
        Identification::Matched {
            ci: Box::new(existing.get(known).expect("stored")),
            rule: "serial_number".into()
        }
    );
    // Another serial number finds nothing; name and environment then find it.
    assert!(matches!(
        identify(&existing, &new_ci("server", "web-01", json!({"serial_number": "SN-2"}))),
        Identification::Matched { rule, .. } if rule == "name_environment"
    ));
    assert_eq!(
        identify(&existing, &new_ci("server", "web-02", json!({}))),
        Identification::New
    );
    // A retired CI is history: its name may be taken again.
    existing.cis[0].status = CiStatus::Retired;
    assert_eq!(
        identify(&existing, &new_ci("server", "web-01", json!({}))),
        Identification::New
    );
}

#[test]
fn a_rule_that_finds_several_cis_is_an_ambiguity() {
    let mut existing = Memory::default();
    let first = existing.add("server", "web-01", json!({}), "sccm");
    let second = existing.add("virtual_machine", "web-01", json!({}), "aws");
    assert_eq!(
        identify(&existing, &new_ci("server", "web-01", json!({}))),
        Identification::Ambiguous {
            rule: "name_environment".into(),
            ci_ids: vec![first, second]
        }
    );
}
