//! Creates under concurrency: a tenant's first tickets of every type created at once, and a burst
//! of first creates larger than the database pool.

use std::{
    collections::{BTreeSet, HashSet},
    time::Instant,
};

use anyhow::ensure;
use desk_proto::tickets::v1 as pb;

use crate::support::{TestDesk, incident, problem, service_request};

on_both_backends!(
    the_first_tickets_of_a_tenant_can_be_created_concurrently,
    a_burst_of_first_creates_larger_than_the_database_pool_succeeds,
);

async fn the_first_tickets_of_a_tenant_can_be_created_concurrently(
    desk: TestDesk,
) -> anyhow::Result<()> {
    // Regression (PostgreSQL): before the fix this failed intermittently with INTERNAL — the first create of a tenant
    // and type runs `CREATE SEQUENCE IF NOT EXISTS`, which PostgreSQL does not make safe against
    // itself: concurrent ones fail with `duplicate key value violates unique constraint
    // "pg_class_relname_nsp_index"` (services/tickets/src/store/mod.rs,
    // `TicketStore::next_number`).
    let kinds = [
        incident as fn(&str) -> pb::CreateTicketRequest,
        service_request,
        problem,
    ];
    for tenant in ["initech", "umbrella", "hooli", "massive", "vandelay"] {
        // given a fresh tenant
        let agent = desk.token("agent-1", tenant, &["agent"]);

        // when two clients each create its first incident, request and problem at the same moment
        // (six calls: fewer than the database pool, so only the numbering is exercised)
        let calls = kinds
            .iter()
            .flat_map(|kind| (0..2).map(move |attempt| (kind, attempt)))
            .map(|(kind, attempt)| {
                let (desk, agent) = (&desk, agent.clone());
                async move {
                    desk.create(&agent, kind(&format!("First of {tenant}, #{attempt}")))
                        .await
                }
            });
        let results = futures::future::join_all(calls).await;

        // then every create succeeds, and the tenant's numbers start at 1 without repeats
        let failures: Vec<String> = results
            .iter()
            .filter_map(|r| {
                r.as_ref()
                    .err()
                    .map(|s| format!("{:?}: {}", s.code(), s.message()))
            })
            .collect();
        ensure!(
            failures.is_empty(),
            "{} of {} concurrent first creates of {tenant} failed: {failures:?}",
            failures.len(),
            results.len()
        );
        let numbers: BTreeSet<&str> = results
            .iter()
            .filter_map(|r| r.as_ref().ok())
            .map(|t| t.number.as_str())
            .collect();
        let expected: BTreeSet<String> = ["INC", "REQ", "PRB"]
            .iter()
            .flat_map(|p| (1..=2).map(move |n| format!("{p}-{n:06}")))
            .collect();
        assert_eq!(
            numbers,
            expected.iter().map(String::as_str).collect::<BTreeSet<_>>(),
            "{tenant}"
        );
    }
    Ok(())
}

async fn a_burst_of_first_creates_larger_than_the_database_pool_succeeds(
    desk: TestDesk,
) -> anyhow::Result<()> {
    // Regression (PostgreSQL): before the fix this failed with UNAVAILABLE after the 10 s pool acquire timeout — the
    // first create of a tenant and type holds its write transaction's connection and asks the pool
    // for a second one to run `CREATE SEQUENCE` (services/tickets/src/store/mod.rs,
    // `TicketStore::next_number`); when as many such creates run as the pool has connections, each
    // waits for a connection another one holds. In production this is any burst of ≥ 32 creates for
    // a tenant right after a process start.
    let pool = desk.settings.database.max_connections as usize;
    let burst = pool * 4;

    // given a fresh tenant and a burst of creates four times as large as the database pool
    let agent = desk.token("agent-1", "stark", &["agent"]);
    let started = Instant::now();
    let calls = (0..burst).map(|index| {
        let (desk, agent) = (&desk, agent.clone());
        async move {
            desk.create(&agent, incident(&format!("Burst {index}")))
                .await
        }
    });

    // when they all arrive at once
    let results = futures::future::join_all(calls).await;

    // then every one succeeds: callers queue for connections, they do not deadlock on them
    let failures: Vec<String> = results
        .iter()
        .filter_map(|r| {
            r.as_ref()
                .err()
                .map(|s| format!("{:?}: {}", s.code(), s.message()))
        })
        .collect();
    ensure!(
        failures.is_empty(),
        "{} of {burst} creates failed after {:?}: {:?}",
        failures.len(),
        started.elapsed(),
        failures.first()
    );
    let numbers: HashSet<&str> = results
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .map(|t| t.number.as_str())
        .collect();
    assert_eq!(numbers.len(), burst);
    Ok(())
}
