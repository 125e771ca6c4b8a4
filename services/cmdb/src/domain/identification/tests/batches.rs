//! Whole batches: items describing one CI, every violation at once, cycles, skipping, limits.

use super::*;

#[test]
fn items_of_one_batch_that_describe_the_same_ci_are_all_conflicts() {
    let mut existing = Memory::default();
    existing.add("server", "web-01", json!({"serial_number": "SN1"}), "sccm");
    let plan = plan(
        &existing,
        &batch(
            vec![
                item("a", "server", "web-01", json!({"serial_number": "SN1"})),
                item("b", "server", "web-01", json!({"fqdn": "x"})),
                item("c", "server", "new", json!({"serial_number": "SN2"})),
                item("d", "server", "new-again", json!({"serial_number": "SN2"})),
                item("e", "server", "other", json!({"serial_number": "SN3"})),
            ],
            vec![],
        ),
    );
    let same_as = |other: &str| {
        format!(
            "it describes the same CI as item \"{other}\"; the batch must say one thing about it"
        )
    };
    assert_eq!(conflict(&plan, "a"), same_as("b"));
    assert_eq!(conflict(&plan, "b"), same_as("a"));
    assert_eq!(conflict(&plan, "c"), same_as("d"));
    assert_eq!(conflict(&plan, "d"), same_as("c"));
    assert!(matches!(action(&plan, "e"), ItemAction::Create { .. }));
}

#[test]
fn a_virtual_machine_item_and_a_server_item_with_one_serial_number_are_one_ci() {
    // A server's search by serial number covers virtual machines, so creating both would
    // leave the server item two candidates next time.
    let plan = plan(
        &Memory::default(),
        &batch(
            vec![
                item("vm", "virtual_machine", "a", json!({"serial_number": "S"})),
                item("srv", "server", "b", json!({"serial_number": "S"})),
                item("sw", "network_device", "c", json!({"serial_number": "S"})),
            ],
            vec![],
        ),
    );
    assert!(matches!(action(&plan, "vm"), ItemAction::Conflict { .. }));
    assert!(matches!(action(&plan, "srv"), ItemAction::Conflict { .. }));
    assert!(
        matches!(action(&plan, "sw"), ItemAction::Create { .. }),
        "a switch is never found by a server's search"
    );
}

#[test]
fn every_violation_of_a_batch_is_reported_with_its_path() {
    let found = violations(
        &Memory::default(),
        &batch(
            vec![
                item(
                    "s1",
                    "server",
                    "web-01",
                    json!({"cpu_count": 0, "colour": "red"}),
                ),
                item("s2", "mainframe", " ", json!({})),
                item("s1", "configuration_item", "x", json!({})),
            ],
            vec![
                link(local("s1"), RelationshipType::DependsOn, local("nope")),
                link(local("s2"), RelationshipType::DependsOn, local("s2")),
            ],
        ),
    );
    let fields: Vec<&str> = found.iter().map(|(field, _)| field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "items[0].attributes.colour",
            "items[0].attributes.cpu_count",
            "items[1].name",
            "items[1].class",
            "items[2].class",
            "items[2].local_id",
            "relationships[0].target",
            "relationships[1].target",
        ]
    );
    assert_eq!(found[5].1, "\"s1\" is already the local id of items[0]");
    assert_eq!(found[6].1, "no item has the local id \"nope\"");
    assert_eq!(found[7].1, "a CI cannot be related to itself");
}

#[test]
fn a_batch_that_contradicts_itself_is_rejected() {
    let found = violations(
        &Memory::default(),
        &batch(
            vec![
                item("vm", "virtual_machine", "vm", json!({})),
                item("h1", "server", "h1", json!({})),
                item("h2", "server", "h2", json!({})),
                item("shop", "business_service", "Shop", json!({})),
                item("sw", "network_device", "sw", json!({})),
            ],
            vec![
                link(local("vm"), RelationshipType::RunsOn, local("h1")),
                link(local("vm"), RelationshipType::RunsOn, local("h2")),
                link(local("shop"), RelationshipType::RunsOn, local("h1")),
                link(local("h1"), RelationshipType::ConnectsTo, local("sw")),
                link(local("sw"), RelationshipType::ConnectsTo, local("h1")),
                link(local("vm"), RelationshipType::Provides, local("h1")),
            ],
        ),
    );
    assert_eq!(
        found,
        [
            (
                "relationships[1].source".to_owned(),
                "item \"vm\" may be the source of at most 1 runs_on relationship, and the \
                 batch already gives it relationships[0]"
                    .to_owned()
            ),
            (
                "relationships[2].source".to_owned(),
                "a business_service cannot be the source of a runs_on relationship".to_owned()
            ),
            (
                "relationships[4]".to_owned(),
                "repeats relationships[3]".to_owned()
            ),
            (
                "relationships[5].target".to_owned(),
                "a provides relationship must point to a business_service, not a server".to_owned()
            ),
        ]
    );
}

#[test]
fn a_cycle_of_dependent_identification_names_the_items() {
    let found = reconcile(
        &schema_catalog(),
        &SourcePrecedence::default(),
        &batch(
            vec![
                item("a", "database", "a", json!({})),
                item("b", "server", "b", json!({})),
                item("c", "application", "c", json!({})),
                item("d", "application", "d", json!({})),
            ],
            vec![
                // The database is identified on the server... no cycle yet.
                link(local("a"), RelationshipType::RunsOn, local("b")),
                // Applications are identified on any host: c on d, d on c.
                link(local("c"), RelationshipType::RunsOn, local("d")),
                link(local("d"), RelationshipType::RunsOn, local("c")),
            ],
        ),
        &Memory::default(),
        InvalidItems::Reject,
    )
    .expect_err("cycle");
    let found: Vec<(String, String)> = found
        .into_iter()
        .map(|v| (v.field, v.description))
        .collect();
    let text = "items \"c\", \"d\" are each identified through another of them: dependent \
                identification forms a cycle";
    assert_eq!(
        found,
        [
            ("items[2]".to_owned(), text.to_owned()),
            ("items[3]".to_owned(), text.to_owned())
        ]
    );
}

#[test]
fn skipping_invalid_items_plans_the_rest_and_reports_what_was_left_out() {
    let plan = reconcile(
        &ClassCatalog::builtin(),
        &SourcePrecedence::default(),
        &batch(
            vec![
                item("good", "server", "web-01", json!({"serial_number": "SN1"})),
                item("bad", "server", "web-02", json!({"cpu_count": "many"})),
                item("db", "database", "orders", json!({"port": 5432})),
            ],
            vec![
                link(local("db"), RelationshipType::RunsOn, local("good")),
                link(local("db"), RelationshipType::DependsOn, local("bad")),
                link(local("good"), RelationshipType::DependsOn, local("ghost")),
            ],
        ),
        &Memory::default(),
        InvalidItems::Skip,
    )
    .expect("skipping");
    assert_eq!(
        plan.items
            .iter()
            .map(|i| i.local_id.as_str())
            .collect::<Vec<_>>(),
        ["good", "db"]
    );
    assert_eq!(
        plan.relationships
            .iter()
            .map(|r| r.index)
            .collect::<Vec<_>>(),
        [0]
    );
    let fields: Vec<&str> = plan.skipped.iter().map(|v| v.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "items[1].attributes.cpu_count",
            "relationships[2].target",
            "relationships[1].target"
        ]
    );
    assert_eq!(plan.summary().skipped, 3);
}

#[test]
fn a_batch_too_large_is_rejected_even_when_skipping() {
    let items = (0..=MAX_IMPORT_ITEMS)
        .map(|n| {
            item(
                &format!("i{n}"),
                "business_service",
                &format!("s{n}"),
                json!({}),
            )
        })
        .collect();
    let error = reconcile(
        &ClassCatalog::builtin(),
        &SourcePrecedence::default(),
        &batch(items, vec![]),
        &Memory::default(),
        InvalidItems::Skip,
    )
    .expect_err("too large");
    assert_eq!(
        error.to_string(),
        "items: must have at most 10000 items, not 10001"
    );
}

#[test]
fn a_staged_batch_is_committed_or_discarded_once() {
    assert_eq!(ImportState::Staged.check_open(), Ok(()));
    for finished in [ImportState::Committed, ImportState::Discarded] {
        assert_eq!(
            finished.check_open().map_err(|e| e.to_string()),
            Err(format!("the import is already {finished}"))
        );
    }
}
