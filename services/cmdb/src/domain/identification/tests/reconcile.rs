//! Reconciling a match: precedence per field, clearing, lifecycle; what a new CI needs.

use super::*;

#[test]
fn a_lower_ranked_source_does_not_overwrite_and_is_reported() {
    let mut existing = Memory::default();
    let server = existing.add(
        "server",
        "web-01",
        json!({"serial_number": "SN1", "os": "linux", "fqdn": "a.example"}),
        "sccm",
    );
    let precedence = SourcePrecedence {
        default_order: vec!["sccm".into(), "nmap".into()],
        by_field: BTreeMap::new(),
    };
    let incoming = from(
        "nmap",
        item(
            "s1",
            "server",
            "web-01",
            json!({"serial_number": "SN1", "os": "windows", "ram_gb": 32}),
        ),
    );
    let plan = plan_with(
        &ClassCatalog::builtin(),
        &precedence,
        &existing,
        &batch(vec![incoming.clone()], vec![]),
    );
    let ItemAction::Update {
        patch,
        skipped_by_precedence,
        ..
    } = action(&plan, "s1")
    else {
        panic!("expected an update");
    };
    assert_eq!(
        patch.attributes,
        BTreeMap::from([("ram_gb".to_owned(), Some(AttrValue::Int(32)))]),
        "ram_gb had no value yet"
    );
    assert_eq!(
        skipped_by_precedence,
        [SkippedField {
            field: "attributes.os".into(),
            kept_source: "sccm".into()
        }]
    );

    let only_os = from(
        "nmap",
        item(
            "s1",
            "server",
            "web-01",
            json!({"serial_number": "SN1", "os": "windows"}),
        ),
    );
    let plan = plan_with(
        &ClassCatalog::builtin(),
        &precedence,
        &existing,
        &batch(vec![only_os], vec![]),
    );
    assert_eq!(
        action(&plan, "s1"),
        ItemAction::Unchanged {
            ci_id: server,
            matched_by: "serial_number".into(),
            skipped_by_precedence: vec![SkippedField {
                field: "attributes.os".into(),
                kept_source: "sccm".into()
            }]
        }
    );
}

#[test]
fn manual_edits_outrank_discovery_unless_configured_otherwise() {
    let mut existing = Memory::default();
    existing.add(
        "server",
        "web-01",
        json!({"serial_number": "SN1", "os": "linux"}),
        API_SOURCE,
    );
    let incoming = batch(
        vec![item(
            "s1",
            "server",
            "web-01",
            json!({"serial_number": "SN1", "os": "windows"}),
        )],
        vec![],
    );
    let by_default = plan(&existing, &incoming);
    assert!(matches!(
        action(&by_default, "s1"),
        ItemAction::Unchanged { ref skipped_by_precedence, .. } if skipped_by_precedence.len() == 1
    ));
    let discovery_first = SourcePrecedence {
        default_order: vec![],
        by_field: BTreeMap::from([(
            "server.os".to_owned(),
            vec!["sccm".to_owned(), API_SOURCE.to_owned()],
        )]),
    };
    let configured = plan_with(
        &ClassCatalog::builtin(),
        &discovery_first,
        &existing,
        &incoming,
    );
    assert!(matches!(
        action(&configured, "s1"),
        ItemAction::Update { .. }
    ));
}

#[test]
fn precedence_ranks_by_class_field_then_field_then_default() {
    let precedence = SourcePrecedence {
        default_order: vec!["sccm".into(), "nmap".into()],
        by_field: BTreeMap::from([
            ("fqdn".to_owned(), vec!["dns".to_owned(), "sccm".to_owned()]),
            ("server.fqdn".to_owned(), vec!["vcenter".to_owned()]),
        ]),
    };
    assert_eq!(precedence.order_for("server", "fqdn"), ["vcenter"]);
    assert_eq!(precedence.order_for("database", "fqdn"), ["dns", "sccm"]);
    assert_eq!(precedence.order_for("database", "port"), ["sccm", "nmap"]);
    assert_eq!(precedence.rank("database", "port", API_SOURCE), 0);
    assert_eq!(precedence.rank("database", "port", "sccm"), 1);
    assert_eq!(precedence.rank("database", "port", "unheard_of"), 3);
    let by = |source: &str| provenance(source);
    assert!(precedence.may_overwrite("database", "port", "nmap", None));
    assert!(precedence.may_overwrite("database", "port", "nmap", Some(&by("nmap"))));
    assert!(!precedence.may_overwrite("database", "port", "nmap", Some(&by("sccm"))));
    assert!(precedence.may_overwrite("database", "port", "sccm", Some(&by("nmap"))));
    assert!(
        precedence.may_overwrite("database", "port", "x", Some(&by("y"))),
        "equals"
    );
}

#[test]
fn null_clears_an_optional_attribute_of_a_match() {
    let mut existing = Memory::default();
    existing.add(
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
                json!({"serial_number": "SN1", "os": null}),
            )],
            vec![],
        ),
    );
    let ItemAction::Update { changes, .. } = action(&plan, "s1") else {
        panic!("expected an update");
    };
    assert_eq!(
        changes,
        [FieldChange {
            field: "attributes.os".into(),
            old: Some("linux".into()),
            new: None
        }]
    );
}

#[test]
fn a_status_move_the_lifecycle_forbids_is_a_conflict() {
    let mut existing = Memory::default();
    let server = existing.add("server", "web-01", json!({"serial_number": "SN1"}), "sccm");
    let mut planned = item("s1", "server", "web-01", json!({"serial_number": "SN1"}));
    planned.status = Some(CiStatus::Planned);
    let plan = plan(&existing, &batch(vec![planned], vec![]));
    assert_eq!(
        conflict(&plan, "s1"),
        format!(
            "the matched CI {server} cannot take the new status: a CI that is in_use cannot \
             move to planned; allowed: maintenance, retired"
        )
    );
}

#[test]
fn a_new_item_missing_a_required_attribute_is_a_conflict_but_a_match_is_fine() {
    let catalog = ClassCatalog::with_tenant_classes(vec![CiClass {
        name: "nas".into(),
        label: "NAS".into(),
        parent: Some(ROOT_CLASS.into()),
        attributes: vec![
            AttributeDef::new("serial", AttributeType::String { max_len: 50 }),
            AttributeDef::new(
                "capacity_tb",
                AttributeType::Int {
                    min: Some(1),
                    max: None,
                },
            )
            .required(),
        ],
        identification: vec![IdentificationRule::new("serial", &["serial"])],
        abstract_class: false,
    }])
    .expect("valid");
    let incoming = batch(
        vec![item("n1", "nas", "nas-01", json!({"serial": "X"}))],
        vec![],
    );
    let new = plan_with(
        &catalog,
        &SourcePrecedence::default(),
        &Memory::default(),
        &incoming,
    );
    assert_eq!(
        conflict(&new, "n1"),
        "a new nas cannot be created: attributes.capacity_tb: is required"
    );
    let mut existing = Memory::default();
    let nas = existing.add("server", "nas-01", json!({}), "sccm");
    if let Some(ci) = existing.cis.iter_mut().find(|ci| ci.id == nas) {
        ci.class = "nas".into();
        ci.attributes = BTreeMap::from([
            ("serial".to_owned(), AttrValue::String("X".into())),
            ("capacity_tb".to_owned(), AttrValue::Int(4)),
        ]);
    }
    let known = plan_with(&catalog, &SourcePrecedence::default(), &existing, &incoming);
    assert_eq!(matched(&known, "n1"), nas);
}

#[test]
fn a_new_ci_cannot_start_retired() {
    let mut retired = item("s1", "server", "web-01", json!({"serial_number": "SN1"}));
    retired.status = Some(CiStatus::Retired);
    let plan = plan(&Memory::default(), &batch(vec![retired], vec![]));
    assert_eq!(conflict(&plan, "s1"), "a CI cannot be created retired");
}

#[test]
fn a_precedence_names_every_problem_by_its_request_path() {
    let listed = |sources: &[&str]| sources.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    let refused = SourcePrecedence::checked(
        Some(listed(&["sccm", "sccm", ""])),
        BTreeMap::from([
            ("server.os".to_owned(), listed(&["aws"])),
            ("Server.OS".to_owned(), listed(&["aws"])),
            ("a.b.c".to_owned(), listed(&[])),
        ]),
    )
    .expect_err("refused");
    let fields: BTreeSet<&str> = refused.iter().map(|v| v.field.as_str()).collect();
    assert_eq!(
        fields,
        BTreeSet::from([
            "precedence.default_order.sources",
            "precedence.default_order.sources[2]",
            "precedence.by_field[Server.OS]",
            "precedence.by_field[a.b.c]",
        ])
    );

    let too_many: BTreeMap<String, Vec<String>> = (0..=MAX_ORDERED_FIELDS)
        .map(|n| (format!("field_{n}"), listed(&["sccm"])))
        .collect();
    let refused = SourcePrecedence::checked(None, too_many).expect_err("refused");
    assert_eq!(
        refused.iter().map(|v| v.field.as_str()).collect::<Vec<_>>(),
        ["precedence.by_field"]
    );

    let precedence = SourcePrecedence::checked(
        None,
        BTreeMap::from([("server.os".to_owned(), listed(&["aws", "sccm"]))]),
    )
    .expect("valid");
    assert!(precedence.default_order.is_empty());
    assert_eq!(precedence.rank("server", "os", "sccm"), 2);
}
