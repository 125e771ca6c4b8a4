//! Committing a plan: what the service writes, decided without a database.

use super::*;
use crate::domain::CiWriteError;

/// A known server reported again with an fqdn, and a new database on it.
fn server_and_new_database() -> (Memory, Uuid, ReconciliationPlan) {
    let mut existing = Memory::default();
    let server = existing.add("server", "web-01", json!({"serial_number": "SN-1"}), "sccm");
    let plan = plan(
        &existing,
        &batch(
            vec![
                item(
                    "srv",
                    "server",
                    "web-01",
                    json!({"serial_number": "SN-1", "fqdn": "web-01.example.org"}),
                ),
                item("db", "database", "orders", json!({"engine": "postgresql"})),
            ],
            vec![link(local("db"), RelationshipType::RunsOn, local("srv"))],
        ),
    );
    (existing, server, plan)
}

fn numbered_from(first: u128) -> impl FnMut() -> Uuid {
    let mut next = first;
    move || {
        next += 1;
        Uuid::from_u128(next)
    }
}

#[test]
fn a_commit_creates_updates_and_links_new_cis_by_the_ids_it_gives_them() {
    let (existing, server, plan) = server_and_new_database();
    let current: HashMap<Uuid, Ci> = existing.cis.iter().map(|ci| (ci.id, ci.clone())).collect();
    let committed = plan
        .commit(&current, "acme", "svc-sccm", at(), &mut numbered_from(100))
        .expect("commits");

    let database = Uuid::from_u128(101);
    assert_eq!(
        committed.created,
        HashMap::from([("db".to_owned(), database)])
    );
    let written: Vec<(Uuid, Option<i64>, &str, &str)> = committed
        .cis
        .iter()
        .map(|w| (w.ci.id, w.read_version, w.fact.action(), w.fact.source()))
        .collect();
    assert_eq!(
        written,
        [
            (server, Some(1), "updated", "sccm"),
            (database, None, "created", "sccm")
        ]
    );
    let update = &committed.cis[0];
    assert_eq!(update.ci.version, 2);
    assert_eq!(
        update.ci.provenance.get("fqdn").map(|p| p.actor.as_str()),
        Some("svc-sccm")
    );
    assert_eq!(
        committed.relationships,
        [AddedRelationship {
            id: Uuid::from_u128(102),
            source: database,
            relationship: RelationshipType::RunsOn,
            target: server,
        }]
    );
    assert_eq!(plan.updated_cis(), [server]);
}

#[test]
fn a_ci_changed_or_gone_since_the_plan_stops_the_commit() {
    let (existing, server, plan) = server_and_new_database();
    let mut changed = existing.cis[0].clone();
    changed.version = 2;
    assert_eq!(
        plan.commit(
            &HashMap::from([(server, changed)]),
            "acme",
            "svc-sccm",
            at(),
            &mut numbered_from(100)
        ),
        Err(CiWriteError::Stale {
            expected: 1,
            current: 2
        })
    );
    assert_eq!(
        plan.commit(
            &HashMap::new(),
            "acme",
            "svc-sccm",
            at(),
            &mut numbered_from(100)
        ),
        Err(CiWriteError::Gone { ci_id: server })
    );
}
