//! Round trips and properties: a committed plan planned again changes nothing.

use super::*;

#[test]
fn committing_a_plan_and_reconciling_again_changes_nothing() {
    let mut existing = Memory::default();
    existing.add(
        "server",
        "h",
        json!({"serial_number": "H", "os": "linux"}),
        "sccm",
    );
    let incoming = batch(
        vec![
            item(
                "h",
                "server",
                "h",
                json!({"serial_number": "H", "os": "windows"}),
            ),
            item(
                "db",
                "database",
                "orders",
                json!({"port": 5432, "engine": "postgresql"}),
            ),
            item("app", "application", "crm", json!({"version": "2.1"})),
            item(
                "svc",
                "business_service",
                "CRM",
                json!({"sla_tier": "gold"}),
            ),
        ],
        vec![
            link(local("db"), RelationshipType::RunsOn, local("h")),
            link(local("app"), RelationshipType::RunsOn, local("h")),
            link(local("app"), RelationshipType::DependsOn, local("db")),
            link(local("svc"), RelationshipType::DependsOn, local("app")),
        ],
    );
    let first = plan(&existing, &incoming);
    assert_eq!(
        first.summary(),
        PlanSummary {
            create: 3,
            update: 1,
            add_relationships: 4,
            ..PlanSummary::default()
        }
    );
    existing.commit(&first);
    let second = plan(&existing, &incoming);
    assert_eq!(
        second.summary(),
        PlanSummary {
            unchanged: 4,
            existing_relationships: 4,
            ..PlanSummary::default()
        }
    );
}

fn random_item() -> impl Strategy<Value = ImportItem> {
    let names = prop::sample::select(vec!["a", "b", "c"]);
    let classes =
        prop::sample::select(vec!["server", "virtual_machine", "database", "application"]);
    let serials = prop::option::of(prop::sample::select(vec!["S1", "S2"]));
    let fqdns = prop::option::of(prop::sample::select(vec!["f1", "f2"]));
    let os = prop::option::of(prop::sample::select(vec!["linux", "windows"]));
    let sources = prop::sample::select(vec!["api", "sccm", "nmap"]);
    let environments = prop::sample::select(vec![Environment::Production, Environment::Test]);
    let statuses = prop::option::of(prop::sample::select(vec![
        CiStatus::InUse,
        CiStatus::Maintenance,
    ]));
    (
        names,
        classes,
        serials,
        fqdns,
        os,
        sources,
        environments,
        statuses,
    )
        .prop_map(
            |(name, class, serial, fqdn, os, source, environment, status)| {
                let mut attributes = BTreeMap::new();
                match class {
                    "server" | "virtual_machine" => {
                        if let Some(serial) = serial {
                            attributes.insert("serial_number".to_owned(), json!(serial));
                        }
                        if let Some(os) = os {
                            attributes.insert("os".to_owned(), json!(os));
                        }
                        if let Some(fqdn) = fqdn {
                            attributes.insert("fqdn".to_owned(), json!(fqdn));
                        }
                    }
                    "database" => {
                        if let Some(fqdn) = fqdn {
                            attributes.insert("fqdn".to_owned(), json!(fqdn));
                        }
                        attributes.insert("port".to_owned(), json!(5432));
                    }
                    _ => {
                        if let Some(os) = os {
                            attributes.insert("version".to_owned(), json!(os));
                        }
                    }
                }
                ImportItem {
                    local_id: String::new(),
                    class: class.to_owned(),
                    name: name.to_owned(),
                    environment,
                    status,
                    attributes,
                    source: source.to_owned(),
                }
            },
        )
}

fn random_batch() -> impl Strategy<Value = ImportBatch> {
    (1_usize..7).prop_flat_map(|count| {
        (
            prop::collection::vec(random_item(), count),
            prop::collection::vec(
                (
                    0..count,
                    prop::sample::select(RelationshipType::ALL.to_vec()),
                    0..count,
                ),
                0..6,
            ),
        )
            .prop_map(|(mut items, links)| {
                for (index, item) in items.iter_mut().enumerate() {
                    item.local_id = format!("i{index}");
                }
                let relationships = links
                    .into_iter()
                    .map(|(source, relationship, target)| {
                        link(
                            local(&format!("i{source}")),
                            relationship,
                            local(&format!("i{target}")),
                        )
                    })
                    .collect();
                batch(items, relationships)
            })
    })
}

fn precedence() -> SourcePrecedence {
    SourcePrecedence {
        default_order: vec!["sccm".into(), "nmap".into()],
        by_field: BTreeMap::new(),
    }
}

proptest! {
    #[test]
    fn the_same_batch_against_the_same_cis_gives_the_same_plan(
        earlier in random_batch(), batch in random_batch(),
    ) {
        let catalog = ClassCatalog::builtin();
        let mut existing = Memory::default();
        if let Ok(plan) = reconcile(&catalog, &precedence(), &earlier, &existing, InvalidItems::Skip) {
            existing.commit(&plan);
        }
        let first = reconcile(&catalog, &precedence(), &batch, &existing, InvalidItems::Skip);
        let second = reconcile(&catalog, &precedence(), &batch, &existing.clone(), InvalidItems::Skip);
        prop_assert_eq!(first, second);
    }

    #[test]
    fn running_a_committed_import_again_creates_nothing_twice_and_settles(
        earlier in random_batch(), batch in random_batch(),
    ) {
        let catalog = ClassCatalog::builtin();
        let mut existing = Memory::default();
        if let Ok(plan) = reconcile(&catalog, &precedence(), &earlier, &existing, InvalidItems::Skip) {
            existing.commit(&plan);
        }
        let plan = reconcile(&catalog, &precedence(), &batch, &existing, InvalidItems::Skip)
            .expect("skipping never rejects a small batch");
        existing.commit(&plan);
        let again = reconcile(&catalog, &precedence(), &batch, &existing, InvalidItems::Skip)
            .expect("skipping never rejects a small batch");
        // Nothing is ever created twice by running an import again.
        for (before, after) in plan.items.iter().zip(&again.items) {
            prop_assert_eq!(before.index, after.index);
            if matches!(before.action, ItemAction::Create { .. }) {
                prop_assert!(
                    !matches!(after.action, ItemAction::Create { .. }),
                    "{:?} then {:?}", before, after
                );
            }
        }
        // A plan without conflicts converges at once. (A conflict is left for a person, and
        // committing the rest can resolve it — an update that moves a serial number away
        // ends an ambiguity — after which the batch may read differently.)
        let conflicts = plan.items.iter().any(|i| matches!(i.action, ItemAction::Conflict { .. }))
            || plan.relationships.iter().any(|r| matches!(r.action, RelationshipAction::Conflict { .. }));
        if !conflicts {
            for after in &again.items {
                prop_assert!(matches!(after.action, ItemAction::Unchanged { .. }), "{:?}", after);
            }
            for after in &again.relationships {
                prop_assert_eq!(&after.action, &RelationshipAction::Exists, "{:?}", after);
            }
        }
    }
}
