use proptest::prelude::*;
use serde_json::json;

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde_json::Value;

use super::builtin::{class, enumeration, int, string};
use super::*;
use crate::domain::relationship::RelationshipType;

fn attrs(value: Value) -> BTreeMap<String, Value> {
    match value {
        Value::Object(map) => map.into_iter().collect(),
        _ => BTreeMap::new(),
    }
}

fn violations_of(class: &str, attributes: Value, mode: ValidationMode) -> Vec<(String, String)> {
    match validate_attributes(&ClassCatalog::builtin(), class, &attrs(attributes), mode) {
        Ok(_) => vec![],
        Err(violations) => violations
            .into_iter()
            .map(|v| (v.field, v.description))
            .collect(),
    }
}

fn tenant_class(name: &str, parent: &str, attributes: Vec<AttributeDef>) -> CiClass {
    class(name, "Tenant class", Some(parent), attributes, vec![])
}

#[test]
fn every_builtin_class_passes_the_checks_tenant_classes_must_pass() {
    let catalog = ClassCatalog::builtin();
    for class in catalog.classes() {
        assert_eq!(catalog.check_class(class), Ok(()), "{}", class.name);
        assert_eq!(catalog.check_acyclic(&class.name), Ok(()), "{}", class.name);
        assert!(validate::is_identifier(&class.name));
    }
}

#[test]
fn the_builtin_catalog_is_one_tree_under_configuration_item() {
    let catalog = ClassCatalog::builtin();
    let root = catalog.get(ROOT_CLASS).expect("root");
    assert!(root.abstract_class);
    assert!(root.attributes.is_empty());
    for class in catalog.classes() {
        assert!(
            catalog.is_subclass_of(&class.name, ROOT_CLASS),
            "{}",
            class.name
        );
        assert_eq!(class.parent.is_none(), class.name == ROOT_CLASS);
    }
    assert_eq!(catalog.classes().count(), 9);
}

#[test]
fn a_virtual_machine_is_a_server_but_not_the_other_way_round() {
    let catalog = ClassCatalog::builtin();
    assert!(catalog.is_subclass_of("virtual_machine", "server"));
    assert!(catalog.is_subclass_of("server", "server"));
    assert!(!catalog.is_subclass_of("server", "virtual_machine"));
    assert!(!catalog.is_subclass_of("database", "server"));
    assert!(!catalog.is_subclass_of("no_such_class", ROOT_CLASS));
    assert_eq!(catalog.subclasses("server"), ["server", "virtual_machine"]);
    assert!(catalog.subclasses("no_such_class").is_empty());
}

#[test]
fn a_subclass_has_its_parents_attributes_first_and_its_own_after() {
    let catalog = ClassCatalog::builtin();
    let names: Vec<&str> = catalog
        .effective_attributes("virtual_machine")
        .iter()
        .map(|a| a.name.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "fqdn",
            "serial_number",
            "os",
            "cpu_count",
            "ram_gb",
            "hypervisor",
            "cloud_resource_id"
        ]
    );
    assert!(catalog.effective_attributes(ROOT_CLASS).is_empty());
    assert!(catalog.effective_attributes("no_such_class").is_empty());
}

#[test]
fn identification_rules_are_inherited_from_the_nearest_class_that_has_some() {
    let catalog = ClassCatalog::with_tenant_classes(vec![
        tenant_class("storage_array", ROOT_CLASS, vec![]),
        tenant_class("blade", "server", vec![]),
    ])
    .expect("valid");
    let (declared_by, rules) = catalog
        .identification_rules("storage_array")
        .expect("rules");
    assert_eq!(declared_by, ROOT_CLASS);
    assert_eq!(rules[0].attributes, ["name", "environment"]);
    let (declared_by, rules) = catalog.identification_rules("blade").expect("rules");
    assert_eq!(declared_by, "server");
    assert_eq!(rules[0].name, "serial_number");
    assert!(catalog.identification_rules("no_such_class").is_none());
}

#[test]
fn a_tenant_class_may_extend_a_builtin_or_another_tenant_class_in_any_order() {
    let catalog = ClassCatalog::with_tenant_classes(vec![
        tenant_class(
            "gpu_server",
            "hpc_server",
            vec![int("gpu_count", Some(0), None)],
        ),
        tenant_class("hpc_server", "server", vec![string("scheduler", 50)]),
    ])
    .expect("valid");
    assert!(catalog.is_subclass_of("gpu_server", "server"));
    assert_eq!(
        catalog.effective_attributes("gpu_server").len(),
        5 + 1 + 1,
        "server's five, hpc_server's one, its own"
    );
}

#[test]
fn a_tenant_class_needs_an_existing_parent() {
    assert_eq!(
        ClassCatalog::with_tenant_classes(vec![tenant_class("nas", "storage", vec![])]),
        Err(ClassError::UnknownParent {
            class: "nas".into(),
            parent: "storage".into()
        })
    );
    let orphan = CiClass {
        parent: None,
        ..tenant_class("nas", ROOT_CLASS, vec![])
    };
    assert_eq!(
        ClassCatalog::with_tenant_classes(vec![orphan])
            .expect_err("orphan")
            .to_string(),
        "class \"nas\" needs a parent class; only configuration_item has none"
    );
}

#[test]
fn a_tenant_class_name_must_be_new_and_snake_case() {
    assert_eq!(
        ClassCatalog::with_tenant_classes(vec![tenant_class("server", ROOT_CLASS, vec![])]),
        Err(ClassError::DuplicateName {
            class: "server".into()
        })
    );
    assert_eq!(
        ClassCatalog::with_tenant_classes(vec![
            tenant_class("nas", ROOT_CLASS, vec![]),
            tenant_class("nas", ROOT_CLASS, vec![]),
        ]),
        Err(ClassError::DuplicateName {
            class: "nas".into()
        })
    );
    assert_eq!(
        ClassCatalog::with_tenant_classes(vec![tenant_class("NAS box", ROOT_CLASS, vec![])]),
        Err(ClassError::InvalidName {
            class: "NAS box".into()
        })
    );
}

#[test]
fn tenant_classes_that_inherit_in_a_cycle_are_refused() {
    let error = ClassCatalog::with_tenant_classes(vec![
        tenant_class("a_class", "b_class", vec![]),
        tenant_class("b_class", "c_class", vec![]),
        tenant_class("c_class", "a_class", vec![]),
    ])
    .expect_err("cycle");
    assert_eq!(
        error.to_string(),
        "classes inherit from each other in a cycle: a_class → b_class → c_class → a_class"
    );
    assert_eq!(error.class(), None);
}

#[test]
fn an_attribute_may_narrow_an_inherited_one_but_not_change_its_type() {
    let narrowed = ClassCatalog::with_tenant_classes(vec![tenant_class(
        "small_server",
        "server",
        vec![int("cpu_count", Some(1), Some(8)).required()],
    )])
    .expect("narrowing is fine");
    let cpu = narrowed
        .effective_attribute("small_server", "cpu_count")
        .expect("cpu_count");
    assert!(cpu.required);
    assert_eq!(
        narrowed
            .effective_attributes("small_server")
            .iter()
            .filter(|a| a.name == "cpu_count")
            .count(),
        1
    );

    let error = ClassCatalog::with_tenant_classes(vec![tenant_class(
        "odd_server",
        "server",
        vec![string("cpu_count", 10)],
    )])
    .expect_err("retyped");
    assert_eq!(
        error.to_string(),
        "attribute \"cpu_count\" of class \"odd_server\" redefines the one inherited from \
         \"server\" as string of at most 10 characters; it may only narrow integer between 1 \
         and 1024"
    );

    let widened = ClassCatalog::with_tenant_classes(vec![tenant_class(
        "big_server",
        "server",
        vec![int("cpu_count", Some(1), Some(4096))],
    )]);
    assert!(matches!(widened, Err(ClassError::ShadowedAttribute { .. })));
}

#[test]
fn narrowing_is_judged_per_type() {
    let catalog = ClassCatalog::builtin();
    let enum_of = |values: &[&str]| AttributeType::Enum {
        values: values.iter().map(|v| (*v).to_owned()).collect(),
    };
    assert!(enum_of(&["gold"]).narrows(&enum_of(&["gold", "silver"]), &catalog));
    assert!(!enum_of(&["platinum"]).narrows(&enum_of(&["gold"]), &catalog));
    let reference = |class: &str| AttributeType::Reference {
        class: class.to_owned(),
    };
    assert!(reference("virtual_machine").narrows(&reference("server"), &catalog));
    assert!(!reference("server").narrows(&reference("virtual_machine"), &catalog));
    let range = |min, max| AttributeType::Int { min, max };
    assert!(range(Some(0), Some(5)).narrows(&range(None, None), &catalog));
    assert!(!range(None, Some(5)).narrows(&range(Some(0), None), &catalog));
    assert!(AttributeType::Date.narrows(&AttributeType::Date, &catalog));
    assert!(!AttributeType::Date.narrows(&AttributeType::Bool, &catalog));
}

#[test]
fn attributes_may_not_take_core_field_names_or_repeat() {
    assert!(matches!(
        ClassCatalog::with_tenant_classes(vec![tenant_class(
            "nas",
            ROOT_CLASS,
            vec![string("name", 10)]
        )]),
        Err(ClassError::ReservedAttributeName { .. })
    ));
    assert!(matches!(
        ClassCatalog::with_tenant_classes(vec![tenant_class(
            "nas",
            ROOT_CLASS,
            vec![string("model", 10), string("model", 20)]
        )]),
        Err(ClassError::DuplicateAttribute { .. })
    ));
    assert!(matches!(
        ClassCatalog::with_tenant_classes(vec![tenant_class(
            "nas",
            ROOT_CLASS,
            vec![string("Model", 10)]
        )]),
        Err(ClassError::InvalidAttributeName { .. })
    ));
}

#[test]
fn attribute_types_and_defaults_must_make_sense() {
    let refused = |attribute: AttributeDef| {
        ClassCatalog::with_tenant_classes(vec![tenant_class("nas", ROOT_CLASS, vec![attribute])])
            .expect_err("refused")
            .to_string()
    };
    assert_eq!(
        refused(string("model", 0)),
        "attribute \"model\" of class \"nas\" has an invalid type: max_len must be between 1 \
         and 10000, not 0"
    );
    assert_eq!(
        refused(int("disks", Some(5), Some(1))),
        "attribute \"disks\" of class \"nas\" has an invalid type: min 5 is greater than max 1"
    );
    assert!(refused(enumeration("tier", &[])).contains("at least one value"));
    assert!(refused(enumeration("tier", &["a", "a"])).contains("listed twice"));
    assert!(
        refused(AttributeDef::new(
            "backup_of",
            AttributeType::Reference {
                class: "tape".into()
            }
        ))
        .contains("refers to class \"tape\", which does not exist")
    );
    assert_eq!(
        refused(int("disks", Some(1), Some(4)).with_default(AttrValue::Int(9))),
        "the default of attribute \"disks\" of class \"nas\" must be between 1 and 4, not 9"
    );
    assert_eq!(
        refused(string("model", 10).with_default(AttrValue::Date(
            NaiveDate::from_ymd_opt(2024, 1, 1).expect("date")
        ))),
        "the default of attribute \"model\" of class \"nas\" is not a string"
    );
}

#[test]
fn identification_rules_must_name_known_fields() {
    let with_rule = |rule: IdentificationRule| {
        ClassCatalog::with_tenant_classes(vec![class(
            "nas",
            "NAS",
            Some(ROOT_CLASS),
            vec![string("serial", 50)],
            vec![rule],
        )])
    };
    assert!(with_rule(IdentificationRule::new("serial", &["serial"])).is_ok());
    assert!(with_rule(IdentificationRule::new("by_name", &["name", "environment"])).is_ok());
    let error = with_rule(IdentificationRule::new("wwn", &["wwn"])).expect_err("unknown");
    assert_eq!(
        error.to_string(),
        "identification rule \"wwn\" of class \"nas\" is invalid: \"wwn\" is neither an \
         attribute of the class nor one of: name, environment"
    );
    assert!(with_rule(IdentificationRule::new("empty", &[])).is_err());
    assert!(with_rule(IdentificationRule::new("twice", &["serial", "serial"])).is_err());
    assert!(
        with_rule(
            IdentificationRule::new("on_rack", &["serial"])
                .dependent_on(RelationshipType::MemberOf, "rack")
        )
        .is_err()
    );
}

#[test]
fn a_valid_server_validates_to_typed_values() {
    let validated = validate_attributes(
        &ClassCatalog::builtin(),
        "server",
        &attrs(json!({
            "fqdn": "web-01.example.com",
            "os": "linux",
            "cpu_count": 8,
        })),
        ValidationMode::Create,
    )
    .expect("valid");
    assert_eq!(
        validated.values,
        BTreeMap::from([
            ("cpu_count".to_owned(), AttrValue::Int(8)),
            (
                "fqdn".to_owned(),
                AttrValue::String("web-01.example.com".into())
            ),
            ("os".to_owned(), AttrValue::String("linux".into())),
        ])
    );
    assert!(validated.cleared.is_empty() && validated.defaulted.is_empty());
}

#[test]
fn every_attribute_problem_is_reported_at_once() {
    assert_eq!(
        violations_of(
            "server",
            json!({
                "fqdn": 42,
                "serial_number": "x".repeat(256),
                "os": "beos",
                "cpu_count": 0,
                "ram_gb": "16",
                "colour": "red",
            }),
            ValidationMode::Create,
        ),
        [
            ("attributes.colour".into(), "is not an attribute of class server (known: fqdn, serial_number, os, cpu_count, ram_gb)".into()),
            ("attributes.cpu_count".into(), "must be between 1 and 1024, not 0".into()),
            ("attributes.fqdn".into(), "must be a string".into()),
            ("attributes.os".into(), "\"beos\" is not one of: linux, windows, other".into()),
            ("attributes.ram_gb".into(), "must be an integer".into()),
            ("attributes.serial_number".into(), "must be at most 255 characters, not 256".into()),
        ]
    );
}

#[test]
fn an_unknown_class_is_reported_on_the_class_field() {
    assert_eq!(
        violations_of("mainframe", json!({"a": 1}), ValidationMode::Create),
        [("class".into(), "unknown CI class \"mainframe\"".into())]
    );
}

#[test]
fn an_abstract_class_cannot_be_instantiated() {
    assert_eq!(
        violations_of(ROOT_CLASS, json!({}), ValidationMode::Create),
        [(
            "class".into(),
            "\"configuration_item\" is an abstract class; a CI must be of one of its subclasses"
                .into()
        )]
    );
}

#[test]
fn a_missing_required_attribute_is_reported_on_create_only() {
    assert_eq!(
        violations_of(
            "cloud_resource",
            json!({"provider": "aws"}),
            ValidationMode::Create
        ),
        [("attributes.cloud_resource_id".into(), "is required".into())]
    );
    assert_eq!(
        violations_of(
            "cloud_resource",
            json!({"cloud_resource_id": null}),
            ValidationMode::Create
        ),
        [("attributes.cloud_resource_id".into(), "is required".into())]
    );
    assert_eq!(
        violations_of(
            "cloud_resource",
            json!({"provider": "aws"}),
            ValidationMode::Patch
        ),
        []
    );
}

#[test]
fn defaults_fill_in_missing_attributes_on_create() {
    let catalog = ClassCatalog::with_tenant_classes(vec![tenant_class(
        "nas",
        ROOT_CLASS,
        vec![
            int("disks", Some(1), None)
                .required()
                .with_default(AttrValue::Int(4)),
            AttributeDef::new("encrypted", AttributeType::Bool).with_default(AttrValue::Bool(true)),
        ],
    )])
    .expect("valid");
    let validated = validate_attributes(
        &catalog,
        "nas",
        &attrs(json!({"encrypted": false})),
        ValidationMode::Create,
    )
    .expect("valid");
    assert_eq!(validated.values["disks"], AttrValue::Int(4));
    assert_eq!(validated.values["encrypted"], AttrValue::Bool(false));
    assert_eq!(validated.defaulted, BTreeSet::from(["disks".to_owned()]));
    let patched = validate_attributes(&catalog, "nas", &attrs(json!({})), ValidationMode::Patch)
        .expect("valid");
    assert!(patched.values.is_empty(), "defaults apply on create only");
}

#[test]
fn null_clears_an_optional_attribute_on_patch_but_not_a_required_one() {
    let validated = validate_attributes(
        &ClassCatalog::builtin(),
        "cloud_resource",
        &attrs(json!({"resource_type": null})),
        ValidationMode::Patch,
    )
    .expect("valid");
    assert_eq!(
        validated.cleared,
        BTreeSet::from(["resource_type".to_owned()])
    );
    assert_eq!(
        violations_of(
            "cloud_resource",
            json!({"cloud_resource_id": null}),
            ValidationMode::Patch
        ),
        [(
            "attributes.cloud_resource_id".into(),
            "is required and cannot be cleared".into()
        )]
    );
}

#[test]
fn dates_must_be_strict_iso_calendar_days() {
    let date = AttributeType::Date;
    assert_eq!(
        AttrValue::from_json(&date, &json!("2024-02-29")),
        Ok(AttrValue::Date(
            NaiveDate::from_ymd_opt(2024, 2, 29).expect("date")
        ))
    );
    for bad in [
        "2023-02-29",
        "2024-2-1",
        "24-02-01",
        "2024-02-01T00:00:00Z",
        "",
    ] {
        assert_eq!(
            AttrValue::from_json(&date, &json!(bad)),
            Err(AttrValueError::BadDate { text: bad.into() }),
            "{bad}"
        );
    }
    assert_eq!(
        AttrValue::from_json(&date, &json!(20240101))
            .expect_err("number")
            .to_string(),
        "must be a date as a \"YYYY-MM-DD\" string"
    );
}

#[test]
fn numbers_are_not_coerced() {
    let int = AttributeType::Int {
        min: None,
        max: None,
    };
    assert_eq!(
        AttrValue::from_json(&int, &json!(-3)),
        Ok(AttrValue::Int(-3))
    );
    for bad in [
        json!("4"),
        json!(4.0),
        json!(4.5),
        json!(true),
        json!(u64::MAX),
    ] {
        assert_eq!(
            AttrValue::from_json(&int, &bad),
            Err(AttrValueError::NotAnInteger),
            "{bad}"
        );
    }
}

#[test]
fn strings_may_span_lines_but_not_hold_other_control_characters() {
    let text = AttributeType::String { max_len: 20 };
    assert!(AttrValue::from_json(&text, &json!("a\r\n\tb")).is_ok());
    assert_eq!(
        AttrValue::from_json(&text, &json!("bell\u{7}"))
            .expect_err("bell")
            .to_string(),
        "must not contain control characters other than line breaks and tabs (found U+0007 at \
         character 5)"
    );
}

#[test]
fn a_reference_must_be_an_id_and_is_left_for_the_caller_to_look_up() {
    let catalog = ClassCatalog::with_tenant_classes(vec![tenant_class(
        "backup_job",
        ROOT_CLASS,
        vec![AttributeDef::new(
            "protects",
            AttributeType::Reference {
                class: "server".into(),
            },
        )],
    )])
    .expect("valid");
    let reference_type = catalog
        .effective_attribute("backup_job", "protects")
        .expect("protects")
        .attr_type
        .clone();
    assert_eq!(
        AttrValue::from_json(&reference_type, &json!(""))
            .expect_err("empty")
            .to_string(),
        "must be the id of a server CI: must not be empty"
    );
    assert!(AttrValue::from_json(&reference_type, &json!(7)).is_err());
    let validated = validate_attributes(
        &catalog,
        "backup_job",
        &attrs(json!({"protects": "0196a2b0-0000-7000-8000-000000000001"})),
        ValidationMode::Create,
    )
    .expect("valid");
    assert_eq!(
        references(&catalog, "backup_job", &validated.values),
        [ReferenceCheck {
            attribute: "protects".into(),
            class: "server".into(),
            id: "0196a2b0-0000-7000-8000-000000000001".into()
        }]
    );
}

#[test]
fn values_map_to_plain_json() {
    let values = BTreeMap::from([
        ("a".to_owned(), AttrValue::String("x".into())),
        ("b".to_owned(), AttrValue::Int(3)),
        ("c".to_owned(), AttrValue::Bool(true)),
        (
            "d".to_owned(),
            AttrValue::Date(NaiveDate::from_ymd_opt(2025, 12, 31).expect("date")),
        ),
        ("e".to_owned(), AttrValue::Reference("ci-1".into())),
    ]);
    assert_eq!(
        Value::Object(attributes_to_json(&values)),
        json!({"a": "x", "b": 3, "c": true, "d": "2025-12-31", "e": "ci-1"})
    );
    assert_eq!(values["d"].to_string(), "2025-12-31");
}

/// A valid value of a given builtin-style type, for the round-trip property.
fn server_values() -> impl Strategy<Value = BTreeMap<String, AttrValue>> {
    (
        prop::option::of("[a-z0-9.-]{0,40}"),
        prop::option::of("\\PC{0,30}"),
        prop::option::of(prop::sample::select(vec!["linux", "windows", "other"])),
        prop::option::of(1_i64..=1024),
        prop::option::of(0_i64..=i64::MAX),
    )
        .prop_map(|(fqdn, serial, os, cpus, ram)| {
            let mut values = BTreeMap::new();
            if let Some(fqdn) = fqdn {
                values.insert("fqdn".to_owned(), AttrValue::String(fqdn));
            }
            if let Some(serial) = serial {
                values.insert("serial_number".to_owned(), AttrValue::String(serial));
            }
            if let Some(os) = os {
                values.insert("os".to_owned(), AttrValue::String(os.to_owned()));
            }
            if let Some(cpus) = cpus {
                values.insert("cpu_count".to_owned(), AttrValue::Int(cpus));
            }
            if let Some(ram) = ram {
                values.insert("ram_gb".to_owned(), AttrValue::Int(ram));
            }
            values
        })
}

proptest! {
    #[test]
    fn valid_values_written_as_json_validate_back_to_themselves(values in server_values()) {
        let json: BTreeMap<String, Value> = attributes_to_json(&values).into_iter().collect();
        let validated = validate_attributes(
            &ClassCatalog::builtin(),
            "server",
            &json,
            ValidationMode::Create,
        );
        prop_assert_eq!(validated.map(|v| v.values), Ok(values));
    }

    #[test]
    fn every_date_round_trips_through_json(days in 0_i64..3_000_000) {
        let date = NaiveDate::from_ymd_opt(1, 1, 1)
            .and_then(|start| start.checked_add_signed(chrono::Duration::days(days)));
        if let Some(date) = date.filter(|d| d.format("%Y").to_string().len() == 4) {
            let value = AttrValue::Date(date);
            prop_assert_eq!(AttrValue::from_json(&AttributeType::Date, &value.to_json()), Ok(value));
        }
    }

    #[test]
    fn an_int_is_accepted_exactly_within_its_bounds(
        min in -100_i64..100, span in 0_i64..100, value in -300_i64..300,
    ) {
        let attr_type = AttributeType::Int { min: Some(min), max: Some(min + span) };
        let accepted = AttrValue::from_json(&attr_type, &Value::from(value)).is_ok();
        prop_assert_eq!(accepted, (min..=min + span).contains(&value));
    }
}

#[test]
fn a_class_added_to_a_catalog_keeps_the_tenants_earlier_classes() {
    let catalog = ClassCatalog::with_tenant_classes(vec![tenant_class(
        "hpc_server",
        "server",
        vec![string("scheduler", 50)],
    )])
    .expect("valid");
    let extended = catalog
        .with_class_added(tenant_class("gpu_server", "hpc_server", vec![]))
        .expect("valid");
    assert_eq!(
        extended
            .tenant_classes()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>(),
        ["gpu_server", "hpc_server"]
    );
    assert!(extended.is_subclass_of("gpu_server", "server"));
    assert_eq!(
        catalog.with_class_added(tenant_class("hpc_server", "server", vec![])),
        Err(ClassError::DuplicateName {
            class: "hpc_server".into()
        })
    );
    assert_eq!(
        catalog.tenant_classes().count(),
        1,
        "the catalog is unchanged"
    );
}
