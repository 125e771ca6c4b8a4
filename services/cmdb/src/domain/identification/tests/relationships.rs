//! Relationships of a batch: existing ones, cardinality, unknown or retired or conflicting ends.

use super::*;

#[test]
fn relationships_between_known_cis_are_found_in_either_direction_when_symmetric() {
    let mut existing = Memory::default();
    let host = existing.add("server", "h", json!({"serial_number": "H"}), "sccm");
    let switch = existing.add(
        "network_device",
        "sw",
        json!({"serial_number": "S"}),
        "sccm",
    );
    existing.relate(switch, RelationshipType::ConnectsTo, host);
    let plan = plan(
        &existing,
        &batch(
            vec![item("h", "server", "h", json!({"serial_number": "H"}))],
            vec![
                link(
                    local("h"),
                    RelationshipType::ConnectsTo,
                    ImportRef::Existing(switch),
                ),
                link(
                    local("h"),
                    RelationshipType::DependsOn,
                    ImportRef::Existing(switch),
                ),
                link(
                    ImportRef::Existing(host),
                    RelationshipType::DependsOn,
                    ImportRef::Existing(switch),
                ),
            ],
        ),
    );
    assert_eq!(
        plan.relationships
            .iter()
            .map(|r| r.action.clone())
            .collect::<Vec<_>>(),
        [
            RelationshipAction::Exists,
            RelationshipAction::Add,
            RelationshipAction::Exists
        ],
        "the third is the second spelled with ids"
    );
}

#[test]
fn a_second_host_for_a_known_ci_is_a_conflict() {
    let mut existing = Memory::default();
    let old_host = existing.add("server", "old", json!({"serial_number": "OLD"}), "sccm");
    let new_host = existing.add("server", "new", json!({"serial_number": "NEW"}), "sccm");
    let vm = existing.add(
        "virtual_machine",
        "vm",
        json!({"cloud_resource_id": "i-1"}),
        "sccm",
    );
    existing.relate(vm, RelationshipType::RunsOn, old_host);
    let plan = plan(
        &existing,
        &batch(
            vec![item(
                "vm",
                "virtual_machine",
                "vm",
                json!({"cloud_resource_id": "i-1"}),
            )],
            vec![link(
                local("vm"),
                RelationshipType::RunsOn,
                ImportRef::Existing(new_host),
            )],
        ),
    );
    let RelationshipAction::Conflict { reason } = &plan.relationships[0].action else {
        panic!("expected a conflict");
    };
    assert_eq!(
        reason.to_string(),
        "a CI may be the source of at most 1 runs_on relationship, and this one already has 1"
    );
}

#[test]
fn relationships_to_unknown_or_retired_cis_or_conflicting_items_are_conflicts() {
    let mut existing = Memory::default();
    let gone = existing.add("server", "gone", json!({"serial_number": "G"}), "sccm");
    existing.cis[0].status = CiStatus::Retired;
    let nowhere = Uuid::from_u128(999);
    let plan = plan(
        &existing,
        &batch(
            vec![
                item("app", "application", "crm", json!({})),
                item("c", "cloud_resource", "bucket", json!({})),
            ],
            vec![
                link(
                    local("app"),
                    RelationshipType::DependsOn,
                    ImportRef::Existing(nowhere),
                ),
                link(
                    local("app"),
                    RelationshipType::DependsOn,
                    ImportRef::Existing(gone),
                ),
                link(local("app"), RelationshipType::DependsOn, local("c")),
            ],
        ),
    );
    let reasons: Vec<String> = plan
        .relationships
        .iter()
        .map(|r| match &r.action {
            RelationshipAction::Conflict { reason } => reason.to_string(),
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(
        reasons,
        [
            format!("its target CI {nowhere} does not exist"),
            "the target CI is retired; retired CIs take no new relationships".to_owned(),
            "its target item \"c\" could not be reconciled".to_owned(),
        ]
    );
}
