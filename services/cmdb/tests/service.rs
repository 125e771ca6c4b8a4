//! Service tests of the CMDB (ARCHITECTURE §13): the real service, booted the way production boots
//! it, against a real nats-server and a real PostgreSQL — and again against SQLite. Every test runs
//! on both backends as `<test>::on_postgres` and `<test>::on_sqlite`.
//!
//! # Layout
//! - [`support`]: `spawn_desk`, tokens, calls, builders, reading the event stream; this file: the
//!   `on_both_backends!` macro and the helpers the areas share (the shop graph, path checks).
//! - [`cis`]: attribute validation per class, versions, retirement, history; idempotent creates.
//! - [`identified_creates`]: a CI created twice is refused, or merged when asked.
//! - [`relationships`] and their rules; [`impact`] analysis with explaining paths over a graph
//!   with a cycle, and the index rebuilt at start.
//! - [`imports`]: identification across sources, precedence per attribute, a staged preview that
//!   commit follows exactly, discards, stale plans, bad batches.
//! - [`access`] and tenants; [`events`]; [`two_replicas`]; [`lists`] and their filters.
//!
//! Each area is a module of this one binary (files under `service/`), its tests named
//! `<area>::<test>::on_postgres` and `::on_sqlite`.

mod support;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use anyhow::{Context as _, ensure};
use desk_proto::cmdb::v1::{
    self as pb, CiStatus, ImpactDirection, ImportState, PlannedAction, RelationshipType as Rel,
};
use support::{
    EVENTUALLY, OTHER_TENANT, TENANT, TestDesk, anonymous, attrs, clear, expect_code,
    expect_violations, import_rel, int, item, new_ci, text, violated_fields, with_token,
};
use tonic::Code;

/// Generates `<name>::on_postgres` and `<name>::on_sqlite`, each running `async fn <name>(TestDesk)`
/// against a fresh desk on that backend, on a multi-threaded runtime (the import path blocks a
/// worker thread with `block_in_place`, which a current-thread runtime refuses).
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_postgres() -> anyhow::Result<()> {
                let desk = crate::support::spawn_desk(desk_testkit::postgres_database().await?).await?;
                super::$name(desk).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_sqlite() -> anyhow::Result<()> {
                let desk = crate::support::spawn_desk(desk_testkit::sqlite_database()?).await?;
                super::$name(desk).await
            }
        }
    )*};
}

#[path = "service/access.rs"]
mod access;
#[path = "service/cis.rs"]
mod cis;
#[path = "service/events.rs"]
mod events;
#[path = "service/identified_creates.rs"]
mod identified_creates;
#[path = "service/impact.rs"]
mod impact;
#[path = "service/imports.rs"]
mod imports;
#[path = "service/lists.rs"]
mod lists;
#[path = "service/relationships.rs"]
mod relationships;
#[path = "service/two_replicas.rs"]
mod two_replicas;

// ---- helpers of this file ----

fn ids_of(cis: &[pb::ConfigurationItem]) -> BTreeSet<String> {
    cis.iter().map(|ci| ci.id.clone()).collect()
}

fn rel_name(value: i32) -> String {
    Rel::try_from(value).map_or_else(|_| format!("type {value}"), |t| t.as_str_name().to_owned())
}

/// `(field, old, new)` of a change; `None` for an absent value.
fn change_of(
    change: &desk_proto::common::v1::FieldChange,
) -> (String, Option<String>, Option<String>) {
    (
        change.field.clone(),
        change.old_present.then(|| change.old_value.clone()),
        change.new_present.then(|| change.new_value.clone()),
    )
}

fn changes_of(
    changes: &[desk_proto::common::v1::FieldChange],
) -> BTreeSet<(String, Option<String>, Option<String>)> {
    changes.iter().map(change_of).collect()
}

fn some(text: &str) -> Option<String> {
    Some(text.to_owned())
}

/// The planned items of a batch by local id (skipped items have none and are left out).
fn planned_by_local_id(batch: &pb::ImportBatch) -> HashMap<String, pb::PlannedItem> {
    batch
        .items
        .iter()
        .filter(|i| !i.local_id.is_empty())
        .map(|i| (i.local_id.clone(), i.clone()))
        .collect()
}

fn planned<'a>(
    items: &'a HashMap<String, pb::PlannedItem>,
    local_id: &str,
) -> anyhow::Result<&'a pb::PlannedItem> {
    items
        .get(local_id)
        .with_context(|| format!("no planned item {local_id:?}"))
}

fn action_name(value: i32) -> String {
    PlannedAction::try_from(value).map_or_else(
        |_| format!("action {value}"),
        |a| a.as_str_name().to_owned(),
    )
}

/// A stored relationship as `(source, type, target)`.
type Edge = (String, i32, String);

/// The business services of an answer: its `business_service_indexes` resolved into `cis`.
/// Every index must point into `cis` at a business service.
fn business_services(answer: &pb::AnalyzeImpactResponse) -> Vec<&pb::ImpactedCi> {
    answer
        .business_service_indexes
        .iter()
        .map(|&index| {
            answer
                .cis
                .get(index as usize)
                .unwrap_or_else(|| panic!("business service index {index} outside cis"))
        })
        .collect()
}

/// Checks every CI of an impact answer: depth 0 and no path for a start CI; otherwise a path of
/// `depth` steps, each a stored relationship, that starts at a start CI and, crossing each step
/// from one end to the other, chains to the CI itself. No CI is reported twice.
fn check_paths(
    answer: &pb::AnalyzeImpactResponse,
    starts: &[&str],
    edges: &HashSet<Edge>,
) -> anyhow::Result<()> {
    let mut seen = HashSet::new();
    for ci in &answer.cis {
        ensure!(
            seen.insert(ci.id.clone()),
            "{} ({}) is reported twice",
            ci.name,
            ci.id
        );
        if starts.contains(&ci.id.as_str()) {
            ensure!(
                ci.depth == 0 && ci.path.is_empty(),
                "start CI {} has depth {} and path {:?}",
                ci.name,
                ci.depth,
                ci.path
            );
            continue;
        }
        ensure!(
            ci.path.len() == ci.depth as usize,
            "{} is at depth {} but its path has {} steps",
            ci.name,
            ci.depth,
            ci.path.len()
        );
        let first = ci
            .path
            .first()
            .with_context(|| format!("{} has no path", ci.name))?;
        let mut at = if starts.contains(&first.source_id.as_str()) {
            first.source_id.clone()
        } else if starts.contains(&first.target_id.as_str()) {
            first.target_id.clone()
        } else {
            anyhow::bail!(
                "the path of {} does not start at a start CI: {:?}",
                ci.name,
                ci.path
            );
        };
        for step in &ci.path {
            ensure!(
                edges.contains(&(step.source_id.clone(), step.r#type, step.target_id.clone())),
                "the path of {} crosses {} -{}-> {}, which is not a stored relationship",
                ci.name,
                step.source_id,
                rel_name(step.r#type),
                step.target_id
            );
            at = if step.source_id == at {
                step.target_id.clone()
            } else if step.target_id == at {
                step.source_id.clone()
            } else {
                anyhow::bail!(
                    "the path of {} breaks at {step:?}: it does not touch {at}",
                    ci.name
                );
            };
        }
        ensure!(
            at == ci.id,
            "the path of {} ends at {at}, not at the CI",
            ci.name
        );
    }
    Ok(())
}

/// `name → depth` of an impact answer.
fn depths(answer: &pb::AnalyzeImpactResponse) -> BTreeMap<String, u32> {
    answer
        .cis
        .iter()
        .map(|ci| (ci.name.clone(), ci.depth))
        .collect()
}

fn impact_request(start: &[&str], direction: ImpactDirection) -> pb::AnalyzeImpactRequest {
    pb::AnalyzeImpactRequest {
        ci_ids: start.iter().map(|id| (*id).to_owned()).collect(),
        direction: direction as i32,
        include_paths: true,
        ..Default::default()
    }
}

/// A small shop, built through the API:
///
/// ```text
/// checkout-api  --provides-->   Online shop (business service)
/// checkout-api  --depends_on--> checkout-app <--depends_on--> pricing-app   (a cycle)
/// checkout-app  --runs_on-->    vm-checkout --runs_on--> host-01 (server)
/// orders-db     --runs_on-->    host-01;     pricing-app --depends_on--> orders-db
/// ```
struct Shop {
    business: pb::ConfigurationItem,
    service: pb::ConfigurationItem,
    checkout: pb::ConfigurationItem,
    pricing: pb::ConfigurationItem,
    vm: pb::ConfigurationItem,
    host: pb::ConfigurationItem,
    database: pb::ConfigurationItem,
    edges: HashSet<Edge>,
}

async fn build_shop(desk: &TestDesk, token: &str) -> anyhow::Result<Shop> {
    let business = desk
        .create_ci(
            token,
            new_ci(
                "business_service",
                "Online shop",
                [("sla_tier", text("gold"))],
            ),
        )
        .await?;
    let service = desk
        .create_ci(
            token,
            new_ci(
                "application_service",
                "checkout-api",
                [("url", text("https://shop.example/checkout"))],
            ),
        )
        .await?;
    let checkout = desk
        .create_ci(
            token,
            new_ci("application", "checkout-app", [("version", text("4.2"))]),
        )
        .await?;
    let pricing = desk
        .create_ci(token, new_ci("application", "pricing-app", []))
        .await?;
    let vm = desk
        .create_ci(
            token,
            new_ci(
                "virtual_machine",
                "vm-checkout",
                [("hypervisor", text("kvm"))],
            ),
        )
        .await?;
    let host = desk
        .create_ci(
            token,
            new_ci("server", "host-01", [("serial_number", text("HOST-01"))]),
        )
        .await?;
    let database = desk
        .create_ci(
            token,
            new_ci("database", "orders-db", [("engine", text("postgresql"))]),
        )
        .await?;
    let mut edges = HashSet::new();
    for (source, kind, target) in [
        (&service, Rel::Provides, &business),
        (&service, Rel::DependsOn, &checkout),
        (&checkout, Rel::DependsOn, &pricing),
        (&pricing, Rel::DependsOn, &checkout),
        (&checkout, Rel::RunsOn, &vm),
        (&vm, Rel::RunsOn, &host),
        (&database, Rel::RunsOn, &host),
        (&pricing, Rel::DependsOn, &database),
    ] {
        desk.relate(token, &source.id, kind, &target.id)
            .await
            .with_context(|| format!("{} {} {}", source.name, kind.as_str_name(), target.name))?;
        edges.insert((source.id.clone(), kind as i32, target.id.clone()));
    }
    Ok(Shop {
        business,
        service,
        checkout,
        pricing,
        vm,
        host,
        database,
        edges,
    })
}

fn ids_of_impacted(answer: &pb::AnalyzeImpactResponse) -> BTreeSet<String> {
    answer.cis.iter().map(|c| c.id.clone()).collect()
}
