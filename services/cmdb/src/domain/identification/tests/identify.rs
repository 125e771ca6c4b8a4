//! Identification: which rule finds which CI, dependent identification to any depth.

use super::*;

#[test]
fn a_new_server_is_planned_as_a_create_in_use_with_provenance_only_on_given_fields() {
    let plan = plan(
        &Memory::default(),
        &batch(
            vec![item(
                "s1",
                "server",
                "web-01",
                json!({"serial_number": "SN1", "os": "linux"}),
            )],
            vec![],
        ),
    );
    let ItemAction::Create { ci } = action(&plan, "s1") else {
        panic!("expected a create");
    };
    assert_eq!(ci.status, CiStatus::InUse);
    assert_eq!(ci.criticality, Criticality::Medium);
    assert_eq!(
        ci.defaulted,
        BTreeSet::from(["criticality".to_owned(), "status".to_owned()])
    );
    assert_eq!(
        ci.attributes["serial_number"],
        AttrValue::String("SN1".into())
    );
    assert_eq!(plan.summary().create, 1);
}

#[test]
fn a_known_server_is_matched_by_serial_number_and_updated() {
    let mut existing = Memory::default();
    let server = existing.add(
        "server",
        "web-01",
        json!({"serial_number": "SN1", "os": "linux"}),
        "sccm",
    );
    let plan = plan(
        &existing,
        &batch(
            vec![item(
                "s1",
                "server",
                "web-01",
                json!({"serial_number": "SN1", "os": "windows", "cpu_count": 8}),
            )],
            vec![],
        ),
    );
    let ItemAction::Update {
        ci_id,
        expected_version,
        matched_by,
        changes,
        skipped_by_precedence,
        ..
    } = action(&plan, "s1")
    else {
        panic!("expected an update");
    };
    assert_eq!(ci_id, server);
    assert_eq!(expected_version, 1);
    assert_eq!(matched_by, "serial_number");
    assert_eq!(
        changes,
        [
            FieldChange {
                field: "attributes.cpu_count".into(),
                old: None,
                new: Some("8".into())
            },
            FieldChange {
                field: "attributes.os".into(),
                old: Some("linux".into()),
                new: Some("windows".into())
            },
        ]
    );
    assert!(skipped_by_precedence.is_empty());
}

#[test]
fn the_same_values_again_are_unchanged() {
    let mut existing = Memory::default();
    let server = existing.add(
        "server",
        "web-01",
        json!({"fqdn": "web-01.example.com"}),
        "sccm",
    );
    let plan = plan(
        &existing,
        &batch(
            vec![item(
                "s1",
                "server",
                "web-01",
                json!({"fqdn": "web-01.example.com"}),
            )],
            vec![],
        ),
    );
    assert_eq!(
        action(&plan, "s1"),
        ItemAction::Unchanged {
            ci_id: server,
            matched_by: "fqdn".into(),
            skipped_by_precedence: vec![]
        }
    );
}

#[test]
fn a_rule_that_finds_nothing_hands_over_to_the_next_applicable_rule() {
    let mut existing = Memory::default();
    let server = existing.add("server", "web-01", json!({}), API_SOURCE);
    let plan = plan(
        &existing,
        &batch(
            vec![item(
                "s1",
                "server",
                "web-01",
                json!({"serial_number": "SN-NEW"}),
            )],
            vec![],
        ),
    );
    let ItemAction::Update {
        ci_id, matched_by, ..
    } = action(&plan, "s1")
    else {
        panic!("expected an update");
    };
    assert_eq!(ci_id, server);
    assert_eq!(matched_by, "name_environment");
}

#[test]
fn a_rule_that_matches_several_cis_is_an_ambiguity() {
    let mut existing = Memory::default();
    let first = existing.add(
        "server",
        "web-01",
        json!({"fqdn": "web.example.com"}),
        "sccm",
    );
    let second = existing.add(
        "server",
        "web-02",
        json!({"fqdn": "web.example.com"}),
        "sccm",
    );
    let plan = plan(
        &existing,
        &batch(
            vec![item(
                "s1",
                "server",
                "web",
                json!({"fqdn": "web.example.com"}),
            )],
            vec![],
        ),
    );
    assert_eq!(
        action(&plan, "s1"),
        ItemAction::Conflict {
            reason: ItemConflict::Ambiguous {
                rule: "fqdn".into(),
                ci_ids: vec![first, second]
            }
        }
    );
    assert!(conflict(&plan, "s1").starts_with("identification rule \"fqdn\" matches 2 CIs"));
}

#[test]
fn an_item_no_rule_applies_to_is_unidentifiable() {
    let plan = plan(
        &Memory::default(),
        &batch(
            vec![item(
                "c1",
                "cloud_resource",
                "bucket",
                json!({"provider": "aws"}),
            )],
            vec![],
        ),
    );
    assert_eq!(
        conflict(&plan, "c1"),
        "no identification rule of class cloud_resource applies; give cloud_resource_id"
    );
    let plan = plan_with(
        &ClassCatalog::builtin(),
        &SourcePrecedence::default(),
        &Memory::default(),
        &batch(
            vec![item("b1", "business_service", "Shop", json!({}))],
            vec![],
        ),
    );
    assert!(matches!(action(&plan, "b1"), ItemAction::Create { .. }));
}

#[test]
fn retired_cis_are_not_matched() {
    let mut existing = Memory::default();
    let old = existing.add("server", "web-01", json!({"serial_number": "SN1"}), "sccm");
    existing.cis[0].status = CiStatus::Retired;
    let plan = plan(
        &existing,
        &batch(
            vec![item(
                "s1",
                "server",
                "web-01",
                json!({"serial_number": "SN1"}),
            )],
            vec![],
        ),
    );
    assert!(
        matches!(action(&plan, "s1"), ItemAction::Create { .. }),
        "{old} is history"
    );
}

#[test]
fn a_generic_server_report_matches_a_known_virtual_machine() {
    let mut existing = Memory::default();
    let vm = existing.add(
        "virtual_machine",
        "vm-01",
        json!({"fqdn": "vm-01.example.com"}),
        "vcenter",
    );
    let plan = plan(
        &existing,
        &batch(
            vec![item(
                "s1",
                "server",
                "vm-01",
                json!({"fqdn": "vm-01.example.com", "ram_gb": 16}),
            )],
            vec![],
        ),
    );
    assert_eq!(matched(&plan, "s1"), vm);
    let plan_the_other_way = plan_with(
        &ClassCatalog::builtin(),
        &SourcePrecedence::default(),
        &{
            let mut servers = Memory::default();
            servers.add(
                "server",
                "host-01",
                json!({"fqdn": "host-01.example.com"}),
                "sccm",
            );
            servers
        },
        &batch(
            vec![item(
                "v1",
                "virtual_machine",
                "host-01",
                json!({"fqdn": "host-01.example.com"}),
            )],
            vec![],
        ),
    );
    assert!(
        matches!(action(&plan_the_other_way, "v1"), ItemAction::Create { .. }),
        "a server is not a virtual machine"
    );
}

#[test]
fn a_database_is_identified_by_its_name_on_its_server() {
    let mut existing = Memory::default();
    let host_a = existing.add("server", "db-host-a", json!({"serial_number": "A"}), "sccm");
    let host_b = existing.add("server", "db-host-b", json!({"serial_number": "B"}), "sccm");
    let orders_a = existing.add(
        "database",
        "orders",
        json!({"engine": "postgresql"}),
        "sccm",
    );
    let orders_b = existing.add(
        "database",
        "orders",
        json!({"engine": "postgresql"}),
        "sccm",
    );
    existing.relate(orders_a, RelationshipType::RunsOn, host_a);
    existing.relate(orders_b, RelationshipType::RunsOn, host_b);
    let plan = plan(
        &existing,
        &batch(
            vec![
                item("db", "database", "orders", json!({"port": 5432})),
                item("host", "server", "db-host-b", json!({"serial_number": "B"})),
            ],
            vec![link(local("db"), RelationshipType::RunsOn, local("host"))],
        ),
    );
    assert_eq!(matched(&plan, "host"), host_b);
    let ItemAction::Update {
        ci_id, matched_by, ..
    } = action(&plan, "db")
    else {
        panic!("expected an update");
    };
    assert_eq!((ci_id, matched_by.as_str()), (orders_b, "name_on_host"));
    assert_eq!(plan.relationships[0].action, RelationshipAction::Exists);
}

#[test]
fn a_dependent_parent_may_be_named_by_its_id() {
    let mut existing = Memory::default();
    let host = existing.add("server", "db-host", json!({}), "sccm");
    let orders = existing.add("database", "orders", json!({}), "sccm");
    existing.relate(orders, RelationshipType::RunsOn, host);
    let plan = plan(
        &existing,
        &batch(
            vec![item("db", "database", "orders", json!({}))],
            vec![link(
                local("db"),
                RelationshipType::RunsOn,
                ImportRef::Existing(host),
            )],
        ),
    );
    assert_eq!(matched(&plan, "db"), orders);
}

#[test]
fn a_dependent_item_whose_parent_is_new_is_new_too() {
    let mut existing = Memory::default();
    // An "orders" database exists on another host; the new host's one is another database.
    let other_host = existing.add(
        "server",
        "old-host",
        json!({"serial_number": "OLD"}),
        "sccm",
    );
    let orders = existing.add("database", "orders", json!({}), "sccm");
    existing.relate(orders, RelationshipType::RunsOn, other_host);
    let mut database = item("db", "database", "orders", json!({}));
    database.environment = Environment::Staging;
    let plan = plan(
        &existing,
        &batch(
            vec![
                database,
                item(
                    "host",
                    "server",
                    "new-host",
                    json!({"serial_number": "NEW"}),
                ),
            ],
            vec![link(local("db"), RelationshipType::RunsOn, local("host"))],
        ),
    );
    assert!(matches!(action(&plan, "host"), ItemAction::Create { .. }));
    assert!(matches!(action(&plan, "db"), ItemAction::Create { .. }));
    assert_eq!(
        plan.relationships[0].source,
        PlannedEnd::New {
            local_id: "db".into()
        }
    );
    assert_eq!(plan.relationships[0].action, RelationshipAction::Add);
}

#[test]
fn dependent_identification_works_to_any_depth_whatever_the_batch_order() {
    let mut existing = Memory::default();
    let host = existing.add("server", "host", json!({"serial_number": "H"}), "sccm");
    let database = existing.add("database", "orders", json!({}), "sccm");
    existing.relate(database, RelationshipType::RunsOn, host);
    let mut schema = existing.add("server", "placeholder", json!({}), "sccm");
    // Turn the placeholder into a schema of the tenant class, member of the database.
    if let Some(ci) = existing.cis.iter_mut().find(|ci| ci.id == schema) {
        ci.class = "db_schema".into();
        ci.name = "billing".into();
    }
    existing.relate(schema, RelationshipType::MemberOf, database);
    let mut other_schema = existing.add("server", "placeholder-2", json!({}), "sccm");
    if let Some(ci) = existing.cis.iter_mut().find(|ci| ci.id == other_schema) {
        ci.class = "db_schema".into();
        ci.name = "billing".into();
    }
    std::mem::swap(&mut schema, &mut other_schema);
    std::mem::swap(&mut schema, &mut other_schema);

    let plan = plan_with(
        &schema_catalog(),
        &SourcePrecedence::default(),
        &existing,
        &batch(
            vec![
                item(
                    "schema",
                    "db_schema",
                    "billing",
                    json!({"owner": "finance"}),
                ),
                item("db", "database", "orders", json!({})),
                item("host", "server", "host", json!({"serial_number": "H"})),
            ],
            vec![
                link(local("schema"), RelationshipType::MemberOf, local("db")),
                link(local("db"), RelationshipType::RunsOn, local("host")),
            ],
        ),
    );
    assert_eq!(matched(&plan, "host"), host);
    assert_eq!(matched(&plan, "db"), database);
    assert_eq!(
        matched(&plan, "schema"),
        schema,
        "not the unattached one, {other_schema}"
    );
}

#[test]
fn a_dependent_item_with_two_fitting_parents_is_a_conflict() {
    let plan = plan_with(
        &schema_catalog(),
        &SourcePrecedence::default(),
        &Memory::default(),
        &batch(
            vec![
                item("schema", "db_schema", "billing", json!({})),
                item("db1", "database", "orders", json!({"fqdn": "a", "port": 1})),
                item("db2", "database", "orders", json!({"fqdn": "b", "port": 1})),
            ],
            vec![
                link(local("schema"), RelationshipType::MemberOf, local("db1")),
                link(local("schema"), RelationshipType::MemberOf, local("db2")),
            ],
        ),
    );
    assert_eq!(
        conflict(&plan, "schema"),
        "identification rule \"name_in_database\" needs exactly one member_of relationship to \
         a database, and the item has 2"
    );
    assert!(matches!(
        plan.relationships[0].action,
        RelationshipAction::Conflict { .. }
    ));
}
