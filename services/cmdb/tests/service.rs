//! Service tests of the CMDB (ARCHITECTURE §13): the real service, booted the way production boots
//! it, against a real nats-server and a real PostgreSQL — and again against SQLite. Every test runs
//! on both backends as `<test>::on_postgres` and `<test>::on_sqlite`.
//!
//! # Layout
//! - [`support`]: `spawn_desk`, tokens, calls, builders, reading the event stream.
//! - CIs: attribute validation per class, versions, retirement, history; idempotent creates.
//! - relationships and their rules; impact analysis with explaining paths over a graph with a cycle.
//! - discovery imports: identification across sources, precedence per attribute, a staged preview
//!   that commit follows exactly, discards, stale plans, bad batches.
//! - access and tenants; events; the impact index rebuilt at start; list filters.
//! - [`identified_creates`]: a CI created twice is refused, or merged when asked.

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

#[path = "service/identified_creates.rs"]
mod identified_creates;

on_both_backends!(
    attributes_are_validated_per_class_and_a_ci_keeps_its_versions_and_history,
    a_retried_create_with_the_same_idempotency_key_returns_the_first_ci,
    concurrent_retries_with_one_idempotency_key_create_only_one_ci,
    an_update_is_validated_like_a_create,
    relationships_join_two_live_cis_of_fitting_classes_and_can_be_removed,
    impact_analysis_explains_every_ci_with_a_path_and_terminates_on_cycles,
    identification_matches_across_sources_and_precedence_decides_per_attribute,
    a_staged_import_previews_exactly_what_commit_does_and_a_discard_changes_nothing,
    a_bad_batch_is_refused_whole_unless_invalid_items_may_be_skipped,
    one_bad_item_in_ten_thousand_is_named_and_skipped_only_when_asked,
    concurrent_relationship_adds_keep_one_host_per_ci_and_no_duplicates,
    concurrent_commits_of_batches_describing_the_same_new_ci_create_it_once,
    readers_cannot_write_requesters_cannot_read_and_tenants_are_isolated,
    changes_are_published_as_cloudevents_on_the_cmdb_stream,
    the_impact_index_is_rebuilt_from_the_database_at_start,
    list_cis_filters_by_class_with_subclasses_attributes_text_and_pages,
    a_tenant_decides_which_discovery_source_wins_each_attribute,
);

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

// ---- CIs ----

async fn attributes_are_validated_per_class_and_a_ci_keeps_its_versions_and_history(
    desk: TestDesk,
) -> anyhow::Result<()> {
    let admin = desk.admin();

    // when CIs are created with what their class does not allow, then each is refused naming the field
    expect_violations(
        desk.create_ci(&admin, new_ci("mainframe", "big-iron", []))
            .await,
        &["class"],
    )?;
    expect_violations(
        desk.create_ci(&admin, new_ci("configuration_item", "abstract", []))
            .await,
        &["class"],
    )?;
    expect_violations(
        desk.create_ci(
            &admin,
            new_ci("server", "web-01", [("colour", text("red"))]),
        )
        .await,
        &["attributes.colour"],
    )?;
    expect_violations(
        desk.create_ci(
            &admin,
            new_ci("server", "web-01", [("cpu_count", text("8"))]),
        )
        .await,
        &["attributes.cpu_count"],
    )?;
    expect_violations(
        desk.create_ci(
            &admin,
            new_ci("server", "web-01", [("os", text("solaris"))]),
        )
        .await,
        &["attributes.os"],
    )?;
    expect_violations(
        desk.create_ci(
            &admin,
            new_ci(
                "cloud_resource",
                "orders-bucket",
                [("provider", text("aws"))],
            ),
        )
        .await,
        &["attributes.cloud_resource_id"],
    )?;
    // and several problems are all reported at once, and nothing else
    let violated = expect_violations(
        desk.create_ci(
            &admin,
            new_ci(
                "server",
                "  ",
                [
                    ("colour", text("red")),
                    ("cpu_count", text("8")),
                    ("os", text("solaris")),
                    ("ram_gb", int(-1)),
                ],
            ),
        )
        .await,
        &[],
    )?;
    assert_eq!(
        violated.iter().map(String::as_str).collect::<BTreeSet<_>>(),
        BTreeSet::from([
            "name",
            "attributes.colour",
            "attributes.cpu_count",
            "attributes.os",
            "attributes.ram_gb"
        ])
    );

    // and nothing was written: no CI, no history, no event
    assert_eq!(desk.total(&admin).await?, 0);
    assert_eq!(desk.rows_in("cis").await?, 0);
    assert_eq!(desk.rows_in("ci_history").await?, 0);
    assert_eq!(desk.rows_in("cmdb_outbox").await?, 0);

    // when a valid server is created
    let given = attrs([
        ("serial_number", text("SN-1")),
        ("os", text("linux")),
        ("cpu_count", int(8)),
    ]);
    let created = desk
        .create_ci(
            &admin,
            pb::CreateCiRequest {
                criticality: pb::Criticality::High as i32,
                location: "DC1 rack 4".into(),
                ..new_ci(
                    "server",
                    "web-01",
                    [
                        ("serial_number", text("SN-1")),
                        ("os", text("linux")),
                        ("cpu_count", int(8)),
                    ],
                )
            },
        )
        .await?;

    // then it is at version 1, planned, with its attributes, each set by `api` by its creator
    assert_eq!(created.version, 1);
    assert_eq!(created.class, "server");
    assert_eq!(created.name, "web-01");
    assert_eq!(
        created.status,
        CiStatus::Planned as i32,
        "a CI is planned when no status is given"
    );
    assert_eq!(created.environment, pb::Environment::Production as i32);
    assert_eq!(created.criticality, pb::Criticality::High as i32);
    assert_eq!(created.location, "DC1 rack 4");
    assert_eq!(created.tenant_id, TENANT);
    assert!(
        created.id.starts_with("test-"),
        "ids carry their region: {}",
        created.id
    );
    assert_eq!(created.attributes, given);
    for name in ["serial_number", "os", "cpu_count"] {
        let provenance = created
            .provenance
            .get(name)
            .with_context(|| format!("no provenance for {name}"))?;
        assert_eq!(
            (provenance.source.as_str(), provenance.actor.as_str()),
            ("api", "ada"),
            "provenance of {name}"
        );
        assert!(provenance.set_time.is_some());
    }
    assert!(
        !created.provenance.contains_key("fqdn"),
        "an attribute not set has no provenance"
    );

    // and it reads back exactly as the create returned it
    assert_eq!(
        desk.get_ci(&admin, &created.id).await?,
        created,
        "GetCi differs from what CreateCi returned"
    );

    // when an update names a stale version, then it is refused and changes nothing
    let stale = pb::UpdateCiRequest {
        id: created.id.clone(),
        expected_version: 7,
        attributes: attrs([("os", text("windows"))]),
        ..Default::default()
    };
    expect_code(desk.update_ci(&admin, stale).await, Code::Aborted)?;
    assert_eq!(
        desk.get_ci(&admin, &created.id).await?,
        created,
        "a stale update changed the CI"
    );

    // and an update with a wrong type is refused naming the attribute
    let wrong = pb::UpdateCiRequest {
        id: created.id.clone(),
        expected_version: 1,
        attributes: attrs([("ram_gb", text("lots"))]),
        ..Default::default()
    };
    expect_violations(desk.update_ci(&admin, wrong).await, &["attributes.ram_gb"])?;

    // when a valid update names the current version
    let updated = desk
        .update_ci(
            &admin,
            pb::UpdateCiRequest {
                id: created.id.clone(),
                expected_version: 1,
                status: CiStatus::InUse as i32,
                attributes: attrs([
                    ("os", text("windows")),
                    ("ram_gb", int(64)),
                    ("cpu_count", clear()),
                ]),
                ..Default::default()
            },
        )
        .await?;

    // then the version moves on and only the named attributes changed
    assert_eq!(updated.version, 2);
    assert_eq!(updated.status, CiStatus::InUse as i32);
    assert_eq!(
        updated.attributes,
        attrs([
            ("serial_number", text("SN-1")),
            ("os", text("windows")),
            ("ram_gb", int(64))
        ])
    );
    assert_eq!(desk.get_ci(&admin, &created.id).await?, updated);

    // when it is retired
    let retired = desk.retire_ci(&admin, &updated, "decommissioned").await?;

    // then it stays readable, retired, and takes no further change
    assert_eq!(retired.status, CiStatus::Retired as i32);
    assert_eq!(retired.version, 3);
    assert_eq!(desk.get_ci(&admin, &created.id).await?, retired);
    let after_retirement = pb::UpdateCiRequest {
        id: created.id.clone(),
        expected_version: 3,
        location: Some("DC2".into()),
        ..Default::default()
    };
    expect_code(
        desk.update_ci(&admin, after_retirement).await,
        Code::FailedPrecondition,
    )?;

    // and its history tells who changed what, from which source
    let history = desk.history(&admin, &created.id).await?;
    let summary: Vec<(i64, &str)> = history
        .iter()
        .map(|e| (e.version, e.action.as_str()))
        .collect();
    assert_eq!(
        summary,
        vec![(1, "created"), (2, "updated"), (3, "retired")]
    );
    for entry in &history {
        let actor = entry
            .actor
            .as_ref()
            .context("a history entry without an actor")?;
        assert_eq!(actor.subject, "ada");
        assert!(
            actor.roles.iter().any(|r| r == "admin"),
            "roles {:?}",
            actor.roles
        );
        assert!(entry.time.is_some());
        assert!(
            entry.note.starts_with("source: api"),
            "note {:?}",
            entry.note
        );
    }
    assert_eq!(history[2].note, "source: api; decommissioned");
    assert_eq!(
        changes_of(&history[1].changes),
        BTreeSet::from([
            ("status".to_owned(), some("planned"), some("in_use")),
            ("attributes.os".to_owned(), some("linux"), some("windows")),
            ("attributes.ram_gb".to_owned(), None, some("64")),
            ("attributes.cpu_count".to_owned(), some("8"), None),
        ])
    );
    assert_eq!(
        changes_of(&history[2].changes),
        BTreeSet::from([("status".to_owned(), some("in_use"), some("retired"))])
    );

    // and retiring it again is refused: retired is final, nothing is recorded or published twice
    let again = desk.retire_ci(&admin, &retired, "again").await;
    let entries = desk.history(&admin, &created.id).await?.len();
    let retired_subject = desk.subject("ci", "retired");
    let retired_events = desk
        .settled_events()
        .await?
        .iter()
        .filter(|e| e.subject == retired_subject)
        .count();
    expect_code(again, Code::FailedPrecondition).with_context(|| {
        format!(
            "a second RetireCi of a retired CI: it now has {entries} history entries \
             and {retired_events} ci.retired events"
        )
    })?;
    assert_eq!((entries, retired_events), (3, 1));
    Ok(())
}

async fn a_retried_create_with_the_same_idempotency_key_returns_the_first_ci(
    desk: TestDesk,
) -> anyhow::Result<()> {
    // ARCHITECTURE §11: "Create calls accept an idempotency key: a retried create returns the first
    // result instead of a second" one. CreateCiRequest has `idempotency_key`. Several attributes:
    // the server decodes each attempt's attribute map afresh, in an order of its own.
    let admin = desk.admin();
    let request = pb::CreateCiRequest {
        idempotency_key: "discovery-run-42/web-01".into(),
        ..new_ci(
            "server",
            "web-01",
            [
                ("fqdn", text("web-01.example.org")),
                ("serial_number", text("SN-0042")),
                ("os", text("linux")),
                ("cpu_count", int(8)),
                ("ram_gb", int(64)),
            ],
        )
    };

    // when the same create is sent twice
    let first = desk.create_ci(&admin, request.clone()).await?;
    let retried = desk.create_ci(&admin, request.clone()).await?;

    // then the retry answers the first CI and only one exists
    assert_eq!(
        desk.total(&admin).await?,
        1,
        "a retried create with the same idempotency key made a second CI"
    );
    assert_eq!(retried, first);

    // and the same key with another body is refused, still without a second CI
    let other_body = pb::CreateCiRequest {
        attributes: attrs([("fqdn", text("web-02.example.org"))]),
        ..request
    };
    let refused = expect_code(
        desk.create_ci(&admin, other_body).await,
        Code::AlreadyExists,
    )?;
    assert!(
        refused.message().contains("use a new key for a new CI"),
        "{refused:?}"
    );
    assert_eq!(desk.total(&admin).await?, 1);
    Ok(())
}

async fn concurrent_retries_with_one_idempotency_key_create_only_one_ci(
    desk: TestDesk,
) -> anyhow::Result<()> {
    let admin = desk.admin();
    let request = pb::CreateCiRequest {
        idempotency_key: "double-click-7".into(),
        ..new_ci(
            "server",
            "db-01",
            [("serial_number", text("SN-7")), ("cpu_count", int(4))],
        )
    };

    // when a client fires the same create six times at once
    let attempts = (0..6).map(|_| desk.create_ci(&admin, request.clone()));
    let results = futures::future::join_all(attempts).await;

    // then every attempt answers with the same CI, and only one exists
    let cis = results
        .into_iter()
        .collect::<Result<Vec<_>, _>>()
        .map_err(|s| anyhow::anyhow!("an attempt failed: {s:?}"))?;
    assert_eq!(
        cis.iter()
            .map(|ci| ci.id.as_str())
            .collect::<HashSet<_>>()
            .len(),
        1,
        "attempts answered with different CIs"
    );
    assert_eq!(desk.total(&admin).await?, 1);
    Ok(())
}

// ---- relationships ----

async fn relationships_join_two_live_cis_of_fitting_classes_and_can_be_removed(
    desk: TestDesk,
) -> anyhow::Result<()> {
    let admin = desk.admin();
    let app = desk
        .create_ci(&admin, new_ci("application", "checkout-app", []))
        .await?;
    let host = desk
        .create_ci(&admin, new_ci("server", "host-01", []))
        .await?;
    let other_host = desk
        .create_ci(&admin, new_ci("server", "host-02", []))
        .await?;
    let switch = desk
        .create_ci(&admin, new_ci("network_device", "core-sw-1", []))
        .await?;

    // when the application is said to depend on the host
    let depends = desk
        .relate(&admin, &app.id, Rel::DependsOn, &host.id)
        .await?;

    // then the relationship is as asked, with both names and its author
    assert!(depends.id.starts_with("test-"), "id {}", depends.id);
    assert_eq!(
        (
            depends.source_id.as_str(),
            depends.r#type,
            depends.target_id.as_str()
        ),
        (app.id.as_str(), Rel::DependsOn as i32, host.id.as_str())
    );
    assert_eq!(
        (depends.source_name.as_str(), depends.target_name.as_str()),
        ("checkout-app", "host-01")
    );
    assert_eq!(depends.created_by, "ada");
    assert!(depends.create_time.is_some());

    // and it is listed from both ends
    assert_eq!(
        desk.relationships_of(&admin, &app.id).await?,
        vec![depends.clone()],
        "from the source"
    );
    assert_eq!(
        desk.relationships_of(&admin, &host.id).await?,
        vec![depends.clone()],
        "from the target"
    );

    // when a relationship is wrong in itself, then it is refused naming the field at fault
    expect_violations(
        desk.relate(&admin, &app.id, Rel::DependsOn, &app.id).await,
        &["target_id"],
    )?;
    let missing = format!("test-{}", uuid::Uuid::now_v7());
    expect_violations(
        desk.relate(&admin, &app.id, Rel::DependsOn, &missing).await,
        &["target_id"],
    )?;
    expect_violations(
        desk.relate(&admin, &missing, Rel::DependsOn, &app.id).await,
        &["source_id"],
    )?;
    expect_violations(
        desk.relate(&admin, &app.id, Rel::DependsOn, "host-01")
            .await,
        &["target_id"],
    )?;
    expect_violations(
        desk.relate(&admin, &app.id, Rel::Unspecified, &host.id)
            .await,
        &["type"],
    )?;
    expect_violations(
        desk.relate(&admin, &app.id, Rel::Provides, &host.id).await,
        &["target_id"],
    )?;

    // and when the CIs' state forbids it, it is a failed precondition
    expect_code(
        desk.relate(&admin, &app.id, Rel::DependsOn, &host.id).await,
        Code::FailedPrecondition,
    )?;
    desk.relate(&admin, &app.id, Rel::RunsOn, &host.id).await?;
    let second_host = expect_code(
        desk.relate(&admin, &app.id, Rel::RunsOn, &other_host.id)
            .await,
        Code::FailedPrecondition,
    )?;
    assert!(
        second_host.message().contains("at most 1"),
        "message: {}",
        second_host.message()
    );
    let old = desk
        .create_ci(&admin, new_ci("server", "host-old", []))
        .await?;
    let old = desk.retire_ci(&admin, &old, "replaced").await?;
    // RelationshipError::Retired has no field: the CI's state, not the request, is at fault
    let to_retired = expect_code(
        desk.relate(&admin, &app.id, Rel::DependsOn, &old.id).await,
        Code::FailedPrecondition,
    )?;
    assert!(
        to_retired.message().contains("retired"),
        "message: {}",
        to_retired.message()
    );
    expect_code(
        desk.relate(&admin, &old.id, Rel::DependsOn, &app.id).await,
        Code::FailedPrecondition,
    )?;
    assert!(desk.relationships_of(&admin, &old.id).await?.is_empty());

    // when the dependency is removed
    desk.unrelate(&admin, &depends.id).await?;

    // then neither end lists it, removing it again finds nothing, and impact no longer follows it
    for end in [&app, &host] {
        let listed = desk.relationships_of(&admin, &end.id).await?;
        assert!(
            listed.iter().all(|r| r.id != depends.id),
            "{} still lists the removed relationship",
            end.name
        );
    }
    expect_code(desk.unrelate(&admin, &depends.id).await, Code::NotFound)?;
    let only_dependencies = pb::AnalyzeImpactRequest {
        relationship_types: vec![Rel::DependsOn as i32],
        ..impact_request(&[&host.id], ImpactDirection::Upstream)
    };
    let answer = desk.impact(&admin, only_dependencies.clone()).await?;
    assert_eq!(
        answer.cis.iter().map(|c| c.id.clone()).collect::<Vec<_>>(),
        vec![host.id.clone()]
    );

    // and it can be added again, as a new relationship that impact follows
    let again = desk
        .relate(&admin, &app.id, Rel::DependsOn, &host.id)
        .await?;
    assert_ne!(again.id, depends.id);
    let answer = desk.impact(&admin, only_dependencies).await?;
    assert_eq!(
        ids_of_impacted(&answer),
        BTreeSet::from([host.id.clone(), app.id.clone()])
    );

    // and a symmetric connection is one relationship whichever way it is written
    // (domain/relationship.rs: "Whether `A type B` also says `B type A`; such a pair is one relationship")
    desk.relate(&admin, &host.id, Rel::ConnectsTo, &switch.id)
        .await?;
    expect_code(
        desk.relate(&admin, &switch.id, Rel::ConnectsTo, &host.id)
            .await,
        Code::FailedPrecondition,
    )
    .context("switch connects_to host after host connects_to switch")?;
    Ok(())
}

fn ids_of_impacted(answer: &pb::AnalyzeImpactResponse) -> BTreeSet<String> {
    answer.cis.iter().map(|c| c.id.clone()).collect()
}

// ---- impact ----

async fn impact_analysis_explains_every_ci_with_a_path_and_terminates_on_cycles(
    desk: TestDesk,
) -> anyhow::Result<()> {
    let agent = desk.agent();
    // given the shop, with a dependency cycle between its two applications
    let shop = build_shop(&desk, &desk.admin()).await?;

    // when an agent asks who is affected if the host fails
    let upstream = desk
        .impact(
            &agent,
            impact_request(&[&shop.host.id], ImpactDirection::Upstream),
        )
        .await?;

    // then every CI built on it is reported once, at its distance, up to the business service
    assert_eq!(
        depths(&upstream),
        BTreeMap::from([
            ("host-01".to_owned(), 0),
            ("vm-checkout".to_owned(), 1),
            ("orders-db".to_owned(), 1),
            ("checkout-app".to_owned(), 2),
            ("pricing-app".to_owned(), 2),
            ("checkout-api".to_owned(), 3),
            ("Online shop".to_owned(), 4),
        ])
    );
    assert_eq!(upstream.cis.len(), 7, "each CI once, the cycle walked once");
    assert_eq!(upstream.cis[0].id, shop.host.id, "the start CI comes first");
    assert_eq!(upstream.truncated_by, "");
    assert_eq!(
        (upstream.max_depth, upstream.max_nodes),
        (32, 200_000),
        "the service's limits are reported"
    );
    check_paths(&upstream, &[&shop.host.id], &shop.edges)?;

    // and the business service is named, with the path that explains it
    let business = business_services(&upstream);
    ensure!(
        business.len() == 1,
        "business services: {:?}",
        upstream.business_service_indexes
    );
    assert_eq!(business[0].id, shop.business.id);
    assert_eq!(business[0].class, "business_service");
    let path: Vec<(String, i32, String)> = business[0]
        .path
        .iter()
        .map(|s| (s.source_id.clone(), s.r#type, s.target_id.clone()))
        .collect();
    assert_eq!(
        path,
        vec![
            (shop.vm.id.clone(), Rel::RunsOn as i32, shop.host.id.clone()),
            (
                shop.checkout.id.clone(),
                Rel::RunsOn as i32,
                shop.vm.id.clone()
            ),
            (
                shop.service.id.clone(),
                Rel::DependsOn as i32,
                shop.checkout.id.clone()
            ),
            (
                shop.service.id.clone(),
                Rel::Provides as i32,
                shop.business.id.clone()
            ),
        ]
    );

    // when the walk may go one relationship deep, then it stops there and says so
    let shallow = desk
        .impact(
            &agent,
            pb::AnalyzeImpactRequest {
                max_depth: 1,
                ..impact_request(&[&shop.host.id], ImpactDirection::Upstream)
            },
        )
        .await?;
    assert_eq!(
        ids_of_impacted(&shallow),
        BTreeSet::from([
            shop.host.id.clone(),
            shop.vm.id.clone(),
            shop.database.id.clone()
        ])
    );
    assert_eq!(shallow.truncated_by, "depth");
    assert_eq!(shallow.max_depth, 1);
    assert!(shallow.business_service_indexes.is_empty());
    check_paths(&shallow, &[&shop.host.id], &shop.edges)?;

    // and a node limit cuts it short too
    let few = desk
        .impact(
            &agent,
            pb::AnalyzeImpactRequest {
                max_nodes: 3,
                ..impact_request(&[&shop.host.id], ImpactDirection::Upstream)
            },
        )
        .await?;
    assert_eq!(few.cis.len(), 3);
    assert_eq!(few.truncated_by, "nodes");

    // and only the asked relationship types are walked
    let hosting = desk
        .impact(
            &agent,
            pb::AnalyzeImpactRequest {
                relationship_types: vec![Rel::RunsOn as i32],
                ..impact_request(&[&shop.host.id], ImpactDirection::Upstream)
            },
        )
        .await?;
    assert_eq!(
        ids_of_impacted(&hosting),
        BTreeSet::from([
            shop.host.id.clone(),
            shop.vm.id.clone(),
            shop.database.id.clone(),
            shop.checkout.id.clone()
        ])
    );

    // when asked what the business service depends on, then the walk goes down to the host
    let downstream = desk
        .impact(
            &agent,
            impact_request(&[&shop.business.id], ImpactDirection::Downstream),
        )
        .await?;
    assert_eq!(
        depths(&downstream),
        BTreeMap::from([
            ("Online shop".to_owned(), 0),
            ("checkout-api".to_owned(), 1),
            ("checkout-app".to_owned(), 2),
            ("pricing-app".to_owned(), 3),
            ("vm-checkout".to_owned(), 3),
            ("orders-db".to_owned(), 4),
            ("host-01".to_owned(), 4),
        ])
    );
    check_paths(&downstream, &[&shop.business.id], &shop.edges)?;

    // and from a CI inside the cycle, both ways, the walk terminates with each CI once
    let both = desk
        .impact(
            &agent,
            impact_request(&[&shop.pricing.id], ImpactDirection::Both),
        )
        .await?;
    check_paths(&both, &[&shop.pricing.id], &shop.edges)?;
    assert_eq!(
        both.cis.len(),
        7,
        "every CI of the shop is connected to pricing-app one way or the other"
    );

    // and paths are left out unless asked for
    let bare = desk
        .impact(
            &agent,
            pb::AnalyzeImpactRequest {
                include_paths: false,
                ..impact_request(&[&shop.host.id], ImpactDirection::Upstream)
            },
        )
        .await?;
    assert!(bare.cis.iter().all(|c| c.path.is_empty()));
    assert!(bare.cis.iter().all(|c| c.reached_from.is_none()));
    assert_eq!(depths(&bare), depths(&upstream));

    // and the compact form explains each CI with the same path, one step per CI: following
    // `reached_from` back to the start rebuilds every CI's full path
    for direction in [ImpactDirection::Upstream, ImpactDirection::Both] {
        let request = impact_request(&[&shop.pricing.id], direction);
        let full = desk.impact(&agent, request.clone()).await?;
        let compact = desk
            .impact(
                &agent,
                pb::AnalyzeImpactRequest {
                    include_paths: false,
                    include_via: true,
                    ..request
                },
            )
            .await?;
        assert_eq!(
            compact.cis.iter().map(|c| &c.id).collect::<Vec<_>>(),
            full.cis.iter().map(|c| &c.id).collect::<Vec<_>>()
        );
        for (index, ci) in compact.cis.iter().enumerate() {
            let mut rebuilt = Vec::new();
            let mut current = index;
            while let Some(from) = compact.cis[current].reached_from {
                let from = from as usize;
                ensure!(from < current, "{} is reached from a later CI", ci.name);
                let (here, there) = (&compact.cis[current], &compact.cis[from]);
                let (source_id, target_id) = if here.reached_as_source {
                    (here.id.clone(), there.id.clone())
                } else {
                    (there.id.clone(), here.id.clone())
                };
                rebuilt.push(pb::PathStep {
                    source_id,
                    r#type: here.reached_by,
                    target_id,
                });
                current = from;
            }
            // a CI without `reached_from` is a start CI, or (walking both ways) one whose
            // whole path is given
            rebuilt.extend(compact.cis[current].path.iter().rev().cloned());
            rebuilt.reverse();
            assert_eq!(rebuilt, full.cis[index].path, "the path of {}", ci.name);
        }
    }

    // and an unknown start is not mistaken for "no impact"; no start at all is bad input
    let missing = format!("test-{}", uuid::Uuid::now_v7());
    expect_code(
        desk.impact(
            &agent,
            impact_request(&[&missing], ImpactDirection::Upstream),
        )
        .await,
        Code::NotFound,
    )?;
    expect_violations(
        desk.impact(&agent, impact_request(&[], ImpactDirection::Upstream))
            .await,
        &["ci_ids"],
    )?;
    expect_violations(
        desk.impact(
            &agent,
            impact_request(&["host-01"], ImpactDirection::Upstream),
        )
        .await,
        &["ci_ids[0]"],
    )?;
    Ok(())
}

// ---- imports ----

async fn identification_matches_across_sources_and_precedence_decides_per_attribute(
    desk: TestDesk,
) -> anyhow::Result<()> {
    let admin = desk.admin();
    let robot = desk.integrator();
    // given a server a person recorded through the API, running linux
    let known = desk
        .create_ci(
            &admin,
            new_ci(
                "server",
                "web-01",
                [("serial_number", text("SN-100")), ("os", text("linux"))],
            ),
        )
        .await?;

    // when SCCM reports it by serial number with another os and an fqdn, plus a new server and a
    // database on each server, the databases tied to their hosts by local ids
    let batch = pb::StageImportRequest {
        source: "sccm".into(),
        items: vec![
            item(
                "srv-a",
                "server",
                "web-01",
                [
                    ("serial_number", text("SN-100")),
                    ("os", text("windows")),
                    ("fqdn", text("web-01.corp.example")),
                ],
            ),
            item(
                "srv-b",
                "server",
                "web-02",
                [("serial_number", text("SN-200")), ("os", text("linux"))],
            ),
            item(
                "db-orders",
                "database",
                "orders",
                [("engine", text("postgresql"))],
            ),
            item(
                "db-billing",
                "database",
                "billing",
                [("engine", text("mysql"))],
            ),
        ],
        relationships: vec![
            import_rel("db-orders", Rel::RunsOn, "srv-a"),
            import_rel("db-billing", Rel::RunsOn, "srv-b"),
        ],
        skip_invalid: false,
    };
    let staged = desk.stage(&robot, batch.clone()).await?;

    // then the known server is an update: the fqdn is new, the os stays (api outranks sccm)
    assert_eq!(staged.state, ImportState::Staged as i32);
    assert_eq!(staged.source, "sccm");
    assert_eq!(staged.created_by, "sccm-robot");
    let items = planned_by_local_id(&staged);
    let srv_a = planned(&items, "srv-a")?;
    assert_eq!(action_name(srv_a.action), "PLANNED_ACTION_UPDATE");
    assert_eq!(srv_a.ci_id, known.id);
    assert_eq!(srv_a.reason, "matched by serial_number");
    assert_eq!(
        srv_a.skipped_by_precedence,
        vec!["attributes.os".to_owned()]
    );
    assert_eq!(
        changes_of(&srv_a.changes),
        BTreeSet::from([(
            "attributes.fqdn".to_owned(),
            None,
            some("web-01.corp.example")
        )])
    );
    // and the new serial and both databases are creates
    for local_id in ["srv-b", "db-orders", "db-billing"] {
        let planned = planned(&items, local_id)?;
        assert_eq!(
            action_name(planned.action),
            "PLANNED_ACTION_CREATE",
            "{local_id}: {}",
            planned.reason
        );
        assert_eq!(planned.ci_id, "", "{local_id} has no id before the commit");
    }
    assert_eq!(
        (
            staged.creates,
            staged.updates,
            staged.unchanged,
            staged.conflicts,
            staged.skipped
        ),
        (3, 1, 0, 0, 0)
    );
    // and the relationships resolve their ends: the matched server by id, the new one by local id
    let relationships: Vec<(String, i32, String, String)> = staged
        .relationships
        .iter()
        .map(|r| {
            (
                r.source.clone(),
                r.r#type,
                r.target.clone(),
                action_name(r.action),
            )
        })
        .collect();
    assert_eq!(
        relationships,
        vec![
            (
                "db-orders".to_owned(),
                Rel::RunsOn as i32,
                known.id.clone(),
                "PLANNED_ACTION_CREATE".to_owned()
            ),
            (
                "db-billing".to_owned(),
                Rel::RunsOn as i32,
                "srv-b".to_owned(),
                "PLANNED_ACTION_CREATE".to_owned()
            ),
        ]
    );

    // when the plan is committed
    let committed = desk.commit(&robot, &staged.id).await?;
    let done = planned_by_local_id(&committed);

    // then the known server took the fqdn from sccm and kept its os and serial from the API
    let web01 = desk.get_ci(&admin, &known.id).await?;
    assert_eq!(web01.version, 2);
    assert_eq!(web01.attributes.get("os"), Some(&text("linux")));
    assert_eq!(
        web01.attributes.get("fqdn"),
        Some(&text("web-01.corp.example"))
    );
    let source_of = |ci: &pb::ConfigurationItem, field: &str| {
        ci.provenance.get(field).map(|p| p.source.clone())
    };
    assert_eq!(source_of(&web01, "os"), some("api"));
    assert_eq!(source_of(&web01, "serial_number"), some("api"));
    assert_eq!(source_of(&web01, "fqdn"), some("sccm"));
    assert_eq!(
        web01.provenance.get("fqdn").map(|p| p.actor.as_str()),
        Some("sccm-robot")
    );

    // when the same batch is staged again
    let again = desk.stage(&robot, batch).await?;

    // then every item is identified as the CI the first commit made or matched: nothing to do
    let items = planned_by_local_id(&again);
    let expectations = [
        ("srv-a", known.id.clone(), "matched by serial_number"),
        (
            "srv-b",
            planned(&done, "srv-b")?.ci_id.clone(),
            "matched by serial_number",
        ),
        (
            "db-orders",
            planned(&done, "db-orders")?.ci_id.clone(),
            "matched by name_on_host",
        ),
        (
            "db-billing",
            planned(&done, "db-billing")?.ci_id.clone(),
            "matched by name_on_host",
        ),
    ];
    for (local_id, ci_id, reason) in expectations {
        let planned = planned(&items, local_id)?;
        assert_eq!(
            action_name(planned.action),
            "PLANNED_ACTION_UNCHANGED",
            "{local_id}: {}",
            planned.reason
        );
        assert!(
            ci_id.starts_with("test-"),
            "{local_id} got no id at commit: {ci_id:?}"
        );
        assert_eq!(planned.ci_id, ci_id, "{local_id} identified as another CI");
        assert_eq!(planned.reason, reason, "{local_id}");
    }
    assert_eq!(
        planned(&items, "srv-a")?.skipped_by_precedence,
        vec!["attributes.os".to_owned()]
    );
    assert_eq!(
        (
            again.creates,
            again.updates,
            again.unchanged,
            again.conflicts
        ),
        (0, 0, 4, 0)
    );
    assert!(
        again
            .relationships
            .iter()
            .all(|r| r.action == PlannedAction::Unchanged as i32),
        "relationships: {:?}",
        again.relationships
    );

    // when another source reports the same server by its fqdn alone, with its memory
    let vcenter = desk
        .stage(
            &robot,
            pb::StageImportRequest {
                source: "vcenter".into(),
                items: vec![item(
                    "h",
                    "server",
                    "web-01",
                    [("fqdn", text("web-01.corp.example")), ("ram_gb", int(32))],
                )],
                ..Default::default()
            },
        )
        .await?;

    // then it is matched by the next rule that applies, and updates only what is new
    let h = &vcenter.items[0];
    assert_eq!(
        action_name(h.action),
        "PLANNED_ACTION_UPDATE",
        "{}",
        h.reason
    );
    assert_eq!(h.ci_id, known.id);
    assert_eq!(h.reason, "matched by fqdn");
    assert_eq!(
        changes_of(&h.changes),
        BTreeSet::from([("attributes.ram_gb".to_owned(), None, some("32"))])
    );
    assert!(h.skipped_by_precedence.is_empty());
    Ok(())
}

async fn a_staged_import_previews_exactly_what_commit_does_and_a_discard_changes_nothing(
    desk: TestDesk,
) -> anyhow::Result<()> {
    let admin = desk.admin();
    let robot = desk.integrator();
    // given one server the CMDB knows
    let known = desk
        .create_ci(
            &admin,
            new_ci("server", "app-01", [("serial_number", text("P1"))]),
        )
        .await?;

    // when SCCM stages a batch: the known server with an fqdn, a new server and a database on it
    let staged = desk
        .stage(
            &robot,
            pb::StageImportRequest {
                source: "sccm".into(),
                items: vec![
                    item(
                        "x",
                        "server",
                        "app-01",
                        [
                            ("serial_number", text("P1")),
                            ("fqdn", text("app-01.corp.example")),
                        ],
                    ),
                    item(
                        "y",
                        "server",
                        "new-01",
                        [("serial_number", text("P2")), ("cpu_count", int(4))],
                    ),
                    item(
                        "z",
                        "database",
                        "inventory",
                        [("engine", text("mysql")), ("port", int(3306))],
                    ),
                ],
                relationships: vec![import_rel("z", Rel::RunsOn, "y")],
                skip_invalid: false,
            },
        )
        .await?;

    // then the preview reads back the same, and nothing has changed yet
    assert_eq!(
        desk.get_import(&admin, &staged.id).await?,
        staged,
        "GetImport differs from what StageImport returned"
    );
    assert_eq!(desk.total(&admin).await?, 1);
    assert_eq!(desk.get_ci(&admin, &known.id).await?, known);
    assert_eq!((staged.creates, staged.updates), (2, 1));
    assert!(staged.commit_time.is_none());

    // when it is committed
    let committed = desk.commit(&robot, &staged.id).await?;

    // then it is committed, and did exactly what the preview said: item by item, in order
    assert_eq!(committed.state, ImportState::Committed as i32);
    assert_eq!(committed.id, staged.id);
    assert!(committed.commit_time.is_some());
    assert_eq!(
        (
            committed.creates,
            committed.updates,
            committed.unchanged,
            committed.conflicts,
            committed.skipped
        ),
        (
            staged.creates,
            staged.updates,
            staged.unchanged,
            staged.conflicts,
            staged.skipped
        )
    );
    ensure!(
        committed.items.len() == staged.items.len(),
        "{} items committed, {} staged",
        committed.items.len(),
        staged.items.len()
    );
    let mut created_ids: HashMap<String, String> = HashMap::new();
    for (preview, done) in staged.items.iter().zip(&committed.items) {
        assert_eq!(
            (
                &done.local_id,
                done.action,
                &done.changes,
                &done.skipped_by_precedence,
                &done.reason
            ),
            (
                &preview.local_id,
                preview.action,
                &preview.changes,
                &preview.skipped_by_precedence,
                &preview.reason
            ),
            "item {}",
            preview.local_id
        );
        if preview.action == PlannedAction::Create as i32 {
            ensure!(
                done.ci_id.starts_with("test-"),
                "created item {} has no ci_id: {:?}",
                done.local_id,
                done.ci_id
            );
            created_ids.insert(done.local_id.clone(), done.ci_id.clone());
        } else {
            assert_eq!(done.ci_id, preview.ci_id);
        }
    }
    let resolve = |end: &str| {
        created_ids
            .get(end)
            .cloned()
            .unwrap_or_else(|| end.to_owned())
    };
    let expected_relationships: Vec<(String, i32, String, i32)> = staged
        .relationships
        .iter()
        .map(|r| (resolve(&r.source), r.r#type, resolve(&r.target), r.action))
        .collect();
    let committed_relationships: Vec<(String, i32, String, i32)> = committed
        .relationships
        .iter()
        .map(|r| (r.source.clone(), r.r#type, r.target.clone(), r.action))
        .collect();
    assert_eq!(committed_relationships, expected_relationships);

    // and the created CIs exist, with provenance `sccm`, and the relationship between them
    let (y, z) = (
        created_ids.get("y").context("y not created")?,
        created_ids.get("z").context("z not created")?,
    );
    let new_server = desk.get_ci(&admin, y).await?;
    assert_eq!(
        (
            new_server.name.as_str(),
            new_server.class.as_str(),
            new_server.version
        ),
        ("new-01", "server", 1)
    );
    assert_eq!(
        new_server.status,
        CiStatus::InUse as i32,
        "discovered CIs are in use unless the item says otherwise"
    );
    for field in ["name", "serial_number", "cpu_count"] {
        let provenance = new_server
            .provenance
            .get(field)
            .with_context(|| format!("no provenance for {field}"))?;
        assert_eq!(
            (provenance.source.as_str(), provenance.actor.as_str()),
            ("sccm", "sccm-robot"),
            "{field}"
        );
    }
    let database = desk.get_ci(&admin, z).await?;
    assert_eq!(
        database.provenance.get("engine").map(|p| p.source.as_str()),
        Some("sccm")
    );
    let hosted: Vec<(String, i32, String)> = desk
        .relationships_of(&admin, z)
        .await?
        .iter()
        .map(|r| (r.source_id.clone(), r.r#type, r.target_id.clone()))
        .collect();
    assert_eq!(hosted, vec![(z.clone(), Rel::RunsOn as i32, y.clone())]);
    let updated = desk.get_ci(&admin, &known.id).await?;
    assert_eq!(
        (updated.version, updated.attributes.get("fqdn")),
        (2, Some(&text("app-01.corp.example")))
    );
    assert_eq!(desk.total(&admin).await?, 3);
    let history = desk.history(&admin, &known.id).await?;
    let last = history.last().context("no history")?;
    assert_eq!(
        (last.action.as_str(), last.note.as_str()),
        ("updated", "source: sccm; import")
    );
    // and the impact index knows the new relationship at once
    let hosting = desk
        .impact(&admin, impact_request(&[y], ImpactDirection::Upstream))
        .await?;
    assert_eq!(
        ids_of_impacted(&hosting),
        BTreeSet::from([y.clone(), z.clone()])
    );

    // and a second commit is refused
    expect_code(
        desk.commit(&robot, &staged.id).await,
        Code::FailedPrecondition,
    )?;
    expect_code(
        desk.discard(&robot, &staged.id).await,
        Code::FailedPrecondition,
    )?;

    // when another batch is staged and then discarded
    let before_discard = desk.get_ci(&admin, &known.id).await?;
    let discarded = desk
        .stage(
            &robot,
            pb::StageImportRequest {
                source: "sccm".into(),
                items: vec![
                    item("w", "server", "new-02", [("serial_number", text("P3"))]),
                    item(
                        "x",
                        "server",
                        "app-01",
                        [("serial_number", text("P1")), ("ram_gb", int(64))],
                    ),
                ],
                ..Default::default()
            },
        )
        .await?;
    let discarded = desk.discard(&robot, &discarded.id).await?;

    // then it is discarded and no CI changed; it can be neither committed nor discarded again
    assert_eq!(discarded.state, ImportState::Discarded as i32);
    assert_eq!(desk.total(&admin).await?, 3);
    assert_eq!(desk.get_ci(&admin, &known.id).await?, before_discard);
    expect_code(
        desk.commit(&robot, &discarded.id).await,
        Code::FailedPrecondition,
    )?;
    expect_code(
        desk.discard(&robot, &discarded.id).await,
        Code::FailedPrecondition,
    )?;

    // when a batch is staged and the CMDB then changes the CI it matched
    let outdated = desk
        .stage(
            &robot,
            pb::StageImportRequest {
                source: "sccm".into(),
                items: vec![item(
                    "x",
                    "server",
                    "app-01",
                    [("serial_number", text("P1")), ("ram_gb", int(128))],
                )],
                ..Default::default()
            },
        )
        .await?;
    assert_eq!(
        action_name(outdated.items[0].action),
        "PLANNED_ACTION_UPDATE"
    );
    let changed = desk
        .update_ci(
            &admin,
            pb::UpdateCiRequest {
                id: known.id.clone(),
                expected_version: before_discard.version,
                attributes: attrs([("ram_gb", int(32))]),
                ..Default::default()
            },
        )
        .await?;

    // then its commit is refused, since the plan is no longer what was previewed, and nothing changed
    expect_code(
        desk.commit(&robot, &outdated.id).await,
        Code::FailedPrecondition,
    )?;
    assert_eq!(desk.get_ci(&admin, &known.id).await?, changed);
    assert_eq!(
        desk.get_import(&admin, &outdated.id).await?.state,
        ImportState::Staged as i32
    );

    // and imports are listed by state, newest first
    let ids = |batches: Vec<pb::ImportBatch>| batches.into_iter().map(|b| b.id).collect::<Vec<_>>();
    assert_eq!(
        ids(desk.list_imports(&admin, ImportState::Committed).await?),
        vec![staged.id.clone()]
    );
    assert_eq!(
        ids(desk.list_imports(&admin, ImportState::Discarded).await?),
        vec![discarded.id.clone()]
    );
    assert_eq!(
        ids(desk.list_imports(&admin, ImportState::Staged).await?),
        vec![outdated.id.clone()]
    );
    assert_eq!(
        ids(desk.list_imports(&admin, ImportState::Unspecified).await?),
        vec![outdated.id.clone(), discarded.id.clone(), staged.id.clone()]
    );
    // and a listed import is the summary of what CommitImport returned: its counts, not its items
    let listed = desk.list_imports(&admin, ImportState::Committed).await?;
    assert_eq!(
        listed[0],
        pb::ImportBatch {
            items: Vec::new(),
            relationships: Vec::new(),
            ..committed.clone()
        },
        "a listed import differs from what CommitImport returned"
    );
    assert!(
        committed.creates + committed.updates + committed.unchanged > 0,
        "counts: {committed:?}"
    );
    Ok(())
}

async fn a_bad_batch_is_refused_whole_unless_invalid_items_may_be_skipped(
    desk: TestDesk,
) -> anyhow::Result<()> {
    let admin = desk.admin();
    let robot = desk.integrator();
    let good = item("s1", "server", "s1", [("serial_number", text("A1"))]);
    let bad = item(
        "s2",
        "server",
        "s2",
        [("serial_number", text("A2")), ("os", text("solaris"))],
    );

    // when a batch has an item with an invalid attribute
    let refused = desk
        .stage(
            &robot,
            pb::StageImportRequest {
                source: "sccm".into(),
                items: vec![good.clone(), bad.clone()],
                ..Default::default()
            },
        )
        .await;

    // then the whole batch is refused, naming the item and its attribute, and nothing is staged
    let violated = expect_violations(refused, &["items[1].attributes.os"])?;
    assert_eq!(violated, vec!["items[1].attributes.os".to_owned()]);
    assert!(
        desk.list_imports(&admin, ImportState::Unspecified)
            .await?
            .is_empty()
    );
    assert_eq!(desk.rows_in("cmdb_imports").await?, 0);

    // and duplicate local ids, unknown classes, relationships to unknown local ids and a missing
    // source are all reported at once
    let duplicate = item("s1", "server", "s1-again", [("serial_number", text("A3"))]);
    let unknown_class = item("m", "mainframe", "big-iron", []);
    let violated = expect_violations(
        desk.stage(
            &robot,
            pb::StageImportRequest {
                source: "sccm".into(),
                items: vec![good.clone(), duplicate, unknown_class],
                relationships: vec![import_rel("s1", Rel::DependsOn, "nope")],
                ..Default::default()
            },
        )
        .await,
        &[
            "items[1].local_id",
            "items[2].class",
            "relationships[0].target",
        ],
    )?;
    assert_eq!(violated.len(), 3, "violations: {violated:?}");
    expect_violations(
        desk.stage(
            &robot,
            pb::StageImportRequest {
                items: vec![good.clone()],
                ..Default::default()
            },
        )
        .await,
        &["source"],
    )?;
    expect_violations(
        desk.stage(
            &robot,
            pb::StageImportRequest {
                source: "sccm".into(),
                items: vec![good.clone()],
                relationships: vec![import_rel("s1", Rel::DependsOn, "s1")],
                ..Default::default()
            },
        )
        .await,
        &["relationships[0].target"],
    )?;
    assert_eq!(desk.rows_in("cmdb_imports").await?, 0);
    assert_eq!(desk.total(&admin).await?, 0);

    // when the same batch asks to skip invalid items
    let staged = desk
        .stage(
            &robot,
            pb::StageImportRequest {
                source: "sccm".into(),
                items: vec![good.clone(), bad.clone()],
                skip_invalid: true,
                ..Default::default()
            },
        )
        .await?;

    // then the valid item is planned and the invalid one reported as skipped, with why
    assert_eq!(
        (staged.creates, staged.skipped, staged.conflicts),
        (1, 1, 0)
    );
    let created: Vec<&pb::PlannedItem> = staged
        .items
        .iter()
        .filter(|i| i.action == PlannedAction::Create as i32)
        .collect();
    ensure!(
        created.len() == 1 && created[0].local_id == "s1",
        "creates: {created:?}"
    );
    let skipped: Vec<&pb::PlannedItem> = staged
        .items
        .iter()
        .filter(|i| i.action == PlannedAction::Skipped as i32)
        .collect();
    ensure!(skipped.len() == 1, "skipped: {skipped:?}");
    assert!(
        skipped[0].reason.contains("items[1].attributes.os"),
        "reason: {}",
        skipped[0].reason
    );

    // and committing it creates the valid item only
    desk.commit(&robot, &staged.id).await?;
    let listed = desk.list_cis(&admin, pb::ListCisRequest::default()).await?;
    assert_eq!(
        listed
            .cis
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>(),
        vec!["s1"]
    );

    // and each skipped item is reported once, by its local id, so the source can tell which one
    // it was, and a relationship left out with it is reported among the relationships
    let messy = desk
        .stage(
            &robot,
            pb::StageImportRequest {
                source: "sccm".into(),
                items: vec![
                    item("t1", "server", "t1", [("serial_number", text("B1"))]),
                    item(
                        "t2",
                        "server",
                        "t2",
                        [("os", text("solaris")), ("cpu_count", int(0))],
                    ),
                ],
                relationships: vec![import_rel("t2", Rel::DependsOn, "t1")],
                skip_invalid: true,
            },
        )
        .await?;
    let messy_skipped: Vec<(String, String)> = messy
        .items
        .iter()
        .filter(|i| i.action == PlannedAction::Skipped as i32)
        .map(|i| (i.local_id.clone(), i.reason.clone()))
        .collect();
    let messy_relationships: Vec<(String, String, String)> = messy
        .relationships
        .iter()
        .map(|r| (r.source.clone(), r.target.clone(), action_name(r.action)))
        .collect();
    let reported_well = skipped[0].local_id == "s2"
        && messy.skipped == 1
        && messy_skipped.len() == 1
        && messy_skipped[0].0 == "t2"
        && messy_relationships
            == vec![(
                "t2".to_owned(),
                "t1".to_owned(),
                "PLANNED_ACTION_SKIPPED".to_owned(),
            )];
    ensure!(
        reported_well,
        "skipped items are not reported one per item by local id:\n  \
         first batch: {:?}\n  \
         second batch: skipped = {}, SKIPPED items (local_id, reason) = {messy_skipped:?}, \
         relationships (source, target, action) = {messy_relationships:?}",
        skipped[0],
        messy.skipped,
    );
    Ok(())
}

async fn one_bad_item_in_ten_thousand_is_named_and_skipped_only_when_asked(
    desk: TestDesk,
) -> anyhow::Result<()> {
    // Given a discovery batch of 10,000 servers in which one has an os the class does not know
    let admin = desk.admin();
    let robot = desk.integrator();
    const BAD: usize = 7_321;
    let items: Vec<pb::ImportItem> = (0..10_000)
        .map(|n| {
            let os = if n == BAD { "solaris" } else { "linux" };
            item(
                &format!("srv{n}"),
                "server",
                &format!("srv-{n:05}"),
                [
                    ("serial_number", text(&format!("SN{n:08}"))),
                    ("os", text(os)),
                ],
            )
        })
        .collect();
    let batch = |skip_invalid| pb::StageImportRequest {
        source: "discovery".into(),
        items: items.clone(),
        skip_invalid,
        ..Default::default()
    };

    // when it is staged as it is, then it is refused with exactly that item named, and nothing is
    // staged or created
    let violated = expect_violations(
        desk.stage(&robot, batch(false)).await,
        &[&format!("items[{BAD}].attributes.os")],
    )?;
    assert_eq!(violated, vec![format!("items[{BAD}].attributes.os")]);
    assert_eq!(desk.rows_in("cmdb_imports").await?, 0);
    assert_eq!(desk.total(&admin).await?, 0);

    // when the caller asks to skip invalid items, then the plan creates the other 9,999 and
    // reports the bad one as skipped, by its local id
    let staged = desk.stage(&robot, batch(true)).await?;
    assert_eq!(
        (staged.creates, staged.skipped, staged.conflicts),
        (9_999, 1, 0)
    );
    let skipped: Vec<&str> = staged
        .items
        .iter()
        .filter(|i| i.action == PlannedAction::Skipped as i32)
        .map(|i| i.local_id.as_str())
        .collect();
    assert_eq!(skipped, vec![format!("srv{BAD}")]);

    // and committing it creates exactly those, and the list of imports shows the counts
    let committed = desk.commit(&robot, &staged.id).await?;
    assert_eq!((committed.creates, committed.skipped), (9_999, 1));
    assert_eq!(desk.total(&admin).await?, 9_999);
    let listed = desk.list_imports(&admin, ImportState::Committed).await?;
    assert_eq!(
        listed
            .iter()
            .map(|b| (b.creates, b.skipped, b.items.len()))
            .collect::<Vec<_>>(),
        vec![(9_999, 1, 0)],
        "a listed import is its summary"
    );
    Ok(())
}

async fn an_update_is_validated_like_a_create(desk: TestDesk) -> anyhow::Result<()> {
    // ARCHITECTURE §11: every request is validated before anything is written.
    let admin = desk.admin();
    let long_group = "g".repeat(300);

    // given a create with a control character in its location and an over-long owner group is refused
    expect_violations(
        desk.create_ci(
            &admin,
            pb::CreateCiRequest {
                location: "DC1\u{7}rack".into(),
                owner_group_id: long_group.clone(),
                ..new_ci("server", "web-01", [])
            },
        )
        .await,
        &["location", "owner_group_id"],
    )?;
    let ci = desk
        .create_ci(
            &admin,
            pb::CreateCiRequest {
                location: "DC1".into(),
                ..new_ci("server", "web-01", [])
            },
        )
        .await?;

    // when an update sets the same values
    let result = desk
        .update_ci(
            &admin,
            pb::UpdateCiRequest {
                id: ci.id.clone(),
                expected_version: 1,
                location: Some("DC1\u{7}rack".into()),
                owner_group_id: Some(long_group),
                ..Default::default()
            },
        )
        .await;

    // then it is refused the same way, and the CI is unchanged
    let after = desk.get_ci(&admin, &ci.id).await?;
    expect_violations(result, &["location", "owner_group_id"]).with_context(|| {
        format!(
            "UpdateCi accepted them: the CI is now at version {} with location {:?} and an owner \
             group of {} characters",
            after.version,
            after.location,
            after.owner_group_id.chars().count()
        )
    })?;
    assert_eq!(after, ci);
    Ok(())
}

// ---- concurrency ----

async fn concurrent_relationship_adds_keep_one_host_per_ci_and_no_duplicates(
    desk: TestDesk,
) -> anyhow::Result<()> {
    let admin = desk.admin();
    let database = desk
        .create_ci(&admin, new_ci("database", "orders-db", []))
        .await?;
    let mut hosts = Vec::new();
    for index in 0..6 {
        hosts.push(
            desk.create_ci(&admin, new_ci("server", &format!("host-{index}"), []))
                .await?,
        );
    }

    // A race is caught only when the calls overlap: three rounds, each with an app of its own.
    for round in 0..3 {
        let app = desk
            .create_ci(&admin, new_ci("application", &format!("app-{round}"), []))
            .await?;

        // when six clients at once say the app runs on six different hosts, and six more at
        // once add the very same dependency
        let mut calls = Vec::new();
        for (kind, target) in hosts
            .iter()
            .map(|host| (Rel::RunsOn, host))
            .chain((0..6).map(|_| (Rel::DependsOn, &database)))
        {
            let mut api = desk.api();
            let request = with_token(
                pb::AddRelationshipRequest {
                    source_id: app.id.clone(),
                    r#type: kind as i32,
                    target_id: target.id.clone(),
                },
                &admin,
            );
            calls.push((
                kind,
                tokio::spawn(async move { api.add_relationship(request).await.map(|_| ()) }),
            ));
        }
        let mut outcomes: BTreeMap<(String, String), usize> = BTreeMap::new();
        for (kind, call) in calls {
            let outcome = match call.await? {
                Ok(()) => "OK".to_owned(),
                Err(status) => format!("{:?}", status.code()),
            };
            *outcomes
                .entry((kind.as_str_name().to_owned(), outcome))
                .or_default() += 1;
        }

        // then one of each wins and the others are refused: a CI runs on one host, and a
        // relationship exists once
        let stored: Vec<(String, String)> = desk
            .relationships_of(&admin, &app.id)
            .await?
            .iter()
            .map(|r| (rel_name(r.r#type), r.target_name.clone()))
            .collect();
        let expected = BTreeMap::from([
            (
                (
                    "RELATIONSHIP_TYPE_DEPENDS_ON".to_owned(),
                    "FailedPrecondition".to_owned(),
                ),
                5,
            ),
            (
                ("RELATIONSHIP_TYPE_DEPENDS_ON".to_owned(), "OK".to_owned()),
                1,
            ),
            (
                (
                    "RELATIONSHIP_TYPE_RUNS_ON".to_owned(),
                    "FailedPrecondition".to_owned(),
                ),
                5,
            ),
            (("RELATIONSHIP_TYPE_RUNS_ON".to_owned(), "OK".to_owned()), 1),
        ]);
        ensure!(
            outcomes == expected && stored.len() == 2,
            "round {round} of concurrent adds: outcomes {outcomes:?}; the app now has \
             relationships {stored:?}"
        );
    }
    Ok(())
}

async fn concurrent_commits_of_batches_describing_the_same_new_ci_create_it_once(
    desk: TestDesk,
) -> anyhow::Result<()> {
    let admin = desk.admin();
    let robot = desk.integrator();
    // given four staged batches that each plan to create the same new server (one serial number)
    let mut staged = Vec::new();
    for run in 0..4 {
        let batch = desk
            .stage(
                &robot,
                pb::StageImportRequest {
                    source: "sccm".into(),
                    items: vec![item(
                        &format!("run-{run}"),
                        "server",
                        "web-09",
                        [("serial_number", text("Z-1"))],
                    )],
                    ..Default::default()
                },
            )
            .await?;
        assert_eq!(action_name(batch.items[0].action), "PLANNED_ACTION_CREATE");
        staged.push(batch.id);
    }

    // when they are committed at the same time
    let mut calls = Vec::new();
    for id in &staged {
        let mut api = desk.api();
        let request = with_token(pb::CommitImportRequest { id: id.clone() }, &robot);
        calls.push(tokio::spawn(async move {
            api.commit_import(request).await.map(|_| ())
        }));
    }
    let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
    for call in calls {
        let outcome = match call.await? {
            Ok(()) => "OK".to_owned(),
            Err(status) => format!("{:?}", status.code()),
        };
        *outcomes.entry(outcome).or_default() += 1;
    }

    // then the first commit creates it and the others find their plan out of date: one CI
    let serial = pb::AttributeFilter {
        name: "serial_number".into(),
        equals: Some(text("Z-1")),
    };
    let servers = desk
        .list_cis(
            &admin,
            pb::ListCisRequest {
                attribute_filters: vec![serial],
                ..Default::default()
            },
        )
        .await?;
    ensure!(
        servers.total_size == 1
            && outcomes
                == BTreeMap::from([("FailedPrecondition".to_owned(), 3), ("OK".to_owned(), 1)]),
        "four concurrent commits of batches that each create serial Z-1: outcomes {outcomes:?}; \
         {} CIs with that serial now exist",
        servers.total_size
    );
    Ok(())
}

// ---- access ----

async fn readers_cannot_write_requesters_cannot_read_and_tenants_are_isolated(
    desk: TestDesk,
) -> anyhow::Result<()> {
    let admin = desk.admin();
    let ci = desk
        .create_ci(
            &admin,
            new_ci("server", "web-01", [("serial_number", text("SN-1"))]),
        )
        .await?;
    let staged = desk
        .stage(
            &admin,
            pb::StageImportRequest {
                source: "sccm".into(),
                items: vec![item("a", "server", "web-02", [])],
                ..Default::default()
            },
        )
        .await?;

    // given every reading role, then each may read
    for role in [
        "agent",
        "manager",
        "change_manager",
        "cab_member",
        "integrator",
        "configuration_manager",
        "admin",
    ] {
        let token = desk.token(&format!("{role}-1"), TENANT, &[role]);
        let read = desk
            .get_ci(&token, &ci.id)
            .await
            .with_context(|| format!("{role} reading a CI"))?;
        assert_eq!(read.id, ci.id);
        desk.impact(&token, impact_request(&[&ci.id], ImpactDirection::Upstream))
            .await
            .with_context(|| format!("{role} analysing impact"))?;
        desk.get_import(&token, &staged.id)
            .await
            .with_context(|| format!("{role} reading an import"))?;
    }
    // and a token whose tenant claim is not a tenant id is refused, not taken for another tenant
    for tenant in ["Acme", "acme ", "ac.me"] {
        let token = desk.token("ada", tenant, &["admin"]);
        expect_code(desk.get_ci(&token, &ci.id).await, Code::Unauthenticated)
            .with_context(|| format!("tenant claim {tenant:?}"))?;
    }
    // and a configuration manager may write
    let manager = desk.token("cm-1", TENANT, &["configuration_manager"]);
    desk.create_ci(&manager, new_ci("server", "web-03", []))
        .await?;

    // when an agent tries to change the CMDB, then they are denied and nothing changes
    let agent = desk.agent();
    expect_code(
        desk.create_ci(&agent, new_ci("server", "web-04", [])).await,
        Code::PermissionDenied,
    )?;
    expect_code(
        desk.stage(
            &agent,
            pb::StageImportRequest {
                source: "sccm".into(),
                items: vec![item("a", "server", "web-05", [])],
                ..Default::default()
            },
        )
        .await,
        Code::PermissionDenied,
    )?;
    let update = pb::UpdateCiRequest {
        id: ci.id.clone(),
        expected_version: 1,
        location: Some("DC9".into()),
        ..Default::default()
    };
    expect_code(
        desk.update_ci(&agent, update.clone()).await,
        Code::PermissionDenied,
    )?;
    expect_code(
        desk.retire_ci(&agent, &ci, "no").await,
        Code::PermissionDenied,
    )?;
    expect_code(
        desk.relate(&agent, &ci.id, Rel::DependsOn, &ci.id).await,
        Code::PermissionDenied,
    )?;
    expect_code(
        desk.commit(&agent, &staged.id).await,
        Code::PermissionDenied,
    )?;
    expect_code(
        desk.discard(&agent, &staged.id).await,
        Code::PermissionDenied,
    )?;
    assert_eq!(desk.get_ci(&admin, &ci.id).await?, ci);
    assert_eq!(desk.total(&admin).await?, 2);

    // when a requester tries to read it, then they are denied
    let requester = desk.requester();
    expect_code(
        desk.get_ci(&requester, &ci.id).await,
        Code::PermissionDenied,
    )?;
    expect_code(
        desk.list_cis(&requester, pb::ListCisRequest::default())
            .await,
        Code::PermissionDenied,
    )?;
    expect_code(
        desk.impact(
            &requester,
            impact_request(&[&ci.id], ImpactDirection::Upstream),
        )
        .await,
        Code::PermissionDenied,
    )?;
    expect_code(
        desk.list_imports(&requester, ImportState::Unspecified)
            .await,
        Code::PermissionDenied,
    )?;
    expect_code(
        desk.history(&requester, &ci.id).await,
        Code::PermissionDenied,
    )?;
    // and without a token nobody gets in
    let anonymous_read = desk
        .api()
        .get_ci(anonymous(pb::GetCiRequest { id: ci.id.clone() }))
        .await;
    expect_code(anonymous_read, Code::Unauthenticated)?;

    // when an admin of another tenant looks for it, then it does not exist for them
    let other = desk.token("otto", OTHER_TENANT, &["admin"]);
    expect_code(desk.get_ci(&other, &ci.id).await, Code::NotFound)?;
    assert_eq!(desk.total(&other).await?, 0);
    expect_code(
        desk.impact(&other, impact_request(&[&ci.id], ImpactDirection::Upstream))
            .await,
        Code::NotFound,
    )?;
    expect_code(desk.history(&other, &ci.id).await, Code::NotFound)?;
    expect_code(desk.relationships_of(&other, &ci.id).await, Code::NotFound)?;
    expect_code(desk.get_import(&other, &staged.id).await, Code::NotFound)?;
    expect_code(desk.commit(&other, &staged.id).await, Code::NotFound)?;
    let other_update = pb::UpdateCiRequest {
        expected_version: 1,
        ..update
    };
    expect_code(desk.update_ci(&other, other_update).await, Code::NotFound)?;
    expect_code(
        desk.retire_ci(&other, &ci, "mine now").await,
        Code::NotFound,
    )?;

    // and once they have CIs of their own, it is still not found, and cannot be related to
    let own = desk
        .create_ci(
            &other,
            new_ci("server", "web-01", [("serial_number", text("SN-1"))]),
        )
        .await?;
    expect_code(
        desk.impact(&other, impact_request(&[&ci.id], ImpactDirection::Upstream))
            .await,
        Code::NotFound,
    )?;
    let foreign = expect_violations(
        desk.relate(&other, &own.id, Rel::DependsOn, &ci.id).await,
        &["target_id"],
    )?;
    let missing = format!("test-{}", uuid::Uuid::now_v7());
    let absent = expect_violations(
        desk.relate(&other, &own.id, Rel::DependsOn, &missing).await,
        &["target_id"],
    )?;
    assert_eq!(
        foreign, absent,
        "another tenant's CI must answer exactly as a missing one"
    );
    // and identification only searches their own tenant: the serial finds their CI, not the first tenant's
    let theirs = desk
        .stage(
            &other,
            pb::StageImportRequest {
                source: "sccm".into(),
                items: vec![item(
                    "a",
                    "server",
                    "web-01",
                    [("serial_number", text("SN-1")), ("ram_gb", int(8))],
                )],
                ..Default::default()
            },
        )
        .await?;
    assert_eq!(
        theirs.items[0].ci_id, own.id,
        "matched {}",
        theirs.items[0].reason
    );
    assert!(
        desk.list_imports(&other, ImportState::Unspecified)
            .await?
            .iter()
            .all(|b| b.id != staged.id)
    );

    // and the first tenant's CI is untouched
    assert_eq!(desk.get_ci(&admin, &ci.id).await?, ci);
    Ok(())
}

// ---- events ----

async fn changes_are_published_as_cloudevents_on_the_cmdb_stream(
    desk: TestDesk,
) -> anyhow::Result<()> {
    let admin = desk.admin();
    let robot = desk.integrator();

    // given a server created through the API
    let server = desk
        .create_ci(
            &admin,
            new_ci("server", "web-01", [("serial_number", text("SN-1"))]),
        )
        .await?;

    // when its event reaches the stream
    let created_subject = desk.subject("ci", "created");
    assert_eq!(created_subject, "desk.test.cmdb.acme.ci.created");
    let events = desk
        .wait_for_events(&created_subject, 1, EVENTUALLY)
        .await?;

    // then it is one CloudEvent 1.0 in binary mode with the contract's attributes
    ensure!(
        events.len() == 1,
        "expected one ci.created event, got {}",
        events.len()
    );
    let event = &events[0];
    let header = |name: &str| {
        event
            .header(name)
            .with_context(|| format!("no {name} header"))
    };
    assert_eq!(header("ce-specversion")?, "1.0");
    let ce_id = header("ce-id")?;
    assert_eq!(header("Nats-Msg-Id")?, ce_id, "Nats-Msg-Id is the ce-id");
    assert_eq!(
        uuid::Uuid::parse_str(&ce_id)
            .context("ce-id is a UUID")?
            .get_version_num(),
        7
    );
    assert_eq!(header("ce-type")?, "desk.cmdb.ci.created.v1");
    assert_eq!(header("ce-source")?, "/desk/test/cmdb");
    assert_eq!(header("ce-subject")?, server.id);
    assert_eq!(header("ce-tenant")?, TENANT);
    assert_eq!(header("Content-Type")?, "application/protobuf");
    chrono::DateTime::parse_from_rfc3339(&header("ce-time")?).context("ce-time is RFC 3339")?;
    // and its body is the CiCreated carrying the CI as created, by whom, from which source
    let body: pb::CiCreated = event.decode()?;
    assert_eq!(body.ci.as_ref(), Some(&server));
    assert_eq!(body.source, "api");
    assert_eq!(body.actor.map(|a| a.subject), Some("ada".to_owned()));

    // when a relationship is added, and a discovery batch is committed
    let app = desk
        .create_ci(&admin, new_ci("application", "checkout-app", []))
        .await?;
    let relationship = desk
        .relate(&admin, &app.id, Rel::RunsOn, &server.id)
        .await?;
    let staged = desk
        .stage(
            &robot,
            pb::StageImportRequest {
                source: "sccm".into(),
                items: vec![
                    item("new", "server", "web-02", [("serial_number", text("SN-2"))]),
                    item(
                        "old",
                        "server",
                        "web-01",
                        [
                            ("serial_number", text("SN-1")),
                            ("fqdn", text("web-01.corp.example")),
                        ],
                    ),
                ],
                ..Default::default()
            },
        )
        .await?;
    let committed = desk.commit(&robot, &staged.id).await?;
    let updated = desk
        .update_ci(
            &admin,
            pb::UpdateCiRequest {
                id: server.id.clone(),
                expected_version: 2,
                location: Some("DC2".into()),
                ..Default::default()
            },
        )
        .await?;
    let retired = desk.retire_ci(&admin, &updated, "replaced").await?;

    // then each is published once, in order, on its own subject, with its own ce-type
    let events = desk.settled_events().await?;
    let summary: Vec<(String, String)> = events
        .iter()
        .map(|e| (e.subject.clone(), e.header("ce-type").unwrap_or_default()))
        .collect();
    let expected: Vec<(String, String)> = [
        ("ci", "created"),
        ("ci", "created"),
        ("relationship", "added"),
        ("ci", "created"),
        ("ci", "updated"),
        ("import", "committed"),
        ("ci", "updated"),
        ("ci", "retired"),
    ]
    .iter()
    .map(|(aggregate, event)| {
        (
            desk.subject(aggregate, event),
            format!("desk.cmdb.{aggregate}.{event}.v1"),
        )
    })
    .collect();
    assert_eq!(summary, expected);
    let distinct: HashSet<String> = events.iter().filter_map(|e| e.header("ce-id")).collect();
    assert_eq!(
        distinct.len(),
        events.len(),
        "every event has its own ce-id"
    );

    let added = &events[2];
    assert_eq!(added.header("ce-subject"), Some(relationship.id.clone()));
    let body: pb::RelationshipAdded = added.decode()?;
    assert_eq!(body.relationship.as_ref(), Some(&relationship));
    assert_eq!(body.actor.map(|a| a.subject), Some("ada".to_owned()));

    let discovered: pb::CiCreated = events[3].decode()?;
    assert_eq!(
        discovered.source, "sccm",
        "a CI created by an import names the import's source"
    );
    let discovered_ci = discovered.ci.context("CiCreated without a CI")?;
    assert_eq!(discovered_ci.name, "web-02");
    assert_eq!(
        Some(discovered_ci.id.clone()),
        events[3].header("ce-subject")
    );
    let reconciled: pb::CiUpdated = events[4].decode()?;
    assert_eq!(reconciled.source, "sccm");
    assert_eq!(
        reconciled.ci.as_ref().map(|c| (c.id.clone(), c.version)),
        Some((server.id.clone(), 2))
    );
    assert_eq!(
        changes_of(&reconciled.changes),
        BTreeSet::from([(
            "attributes.fqdn".to_owned(),
            None,
            some("web-01.corp.example")
        )])
    );

    let import_event = &events[5];
    assert_eq!(
        import_event.header("ce-subject"),
        Some(committed.id.clone())
    );
    let body: pb::ImportCommitted = import_event.decode()?;
    assert_eq!(
        body.batch.as_ref(),
        Some(&pb::ImportBatch {
            items: Vec::new(),
            relationships: Vec::new(),
            ..committed.clone()
        }),
        "the event carries the batch's summary"
    );
    assert_eq!(body.actor.map(|a| a.subject), Some("sccm-robot".to_owned()));

    let body: pb::CiUpdated = events[6].decode()?;
    assert_eq!(body.ci.as_ref(), Some(&updated));
    assert_eq!(body.source, "api");
    let body: pb::CiRetired = events[7].decode()?;
    assert_eq!(body.ci.as_ref(), Some(&retired));
    assert_eq!(body.reason, "replaced");
    Ok(())
}

// ---- the impact index across a restart ----

async fn the_impact_index_is_rebuilt_from_the_database_at_start(
    mut desk: TestDesk,
) -> anyhow::Result<()> {
    let admin = desk.admin();
    // given the shop, a tenant class of business service provided by the same application service,
    // a retired VM on the host and a relationship that was removed
    let mut shop = build_shop(&desk, &admin).await?;
    let class = pb::CiClass {
        name: "customer_service".into(),
        label: "Customer-facing service".into(),
        parent: "business_service".into(),
        ..Default::default()
    };
    desk.api()
        .create_class(with_token(
            pb::CreateClassRequest { class: Some(class) },
            &admin,
        ))
        .await?;
    let portal = desk
        .create_ci(&admin, new_ci("customer_service", "Customer portal", []))
        .await?;
    desk.relate(&admin, &shop.service.id, Rel::Provides, &portal.id)
        .await?;
    shop.edges.insert((
        shop.service.id.clone(),
        Rel::Provides as i32,
        portal.id.clone(),
    ));
    let spare = desk
        .create_ci(&admin, new_ci("virtual_machine", "vm-spare", []))
        .await?;
    desk.relate(&admin, &spare.id, Rel::RunsOn, &shop.host.id)
        .await?;
    desk.retire_ci(&admin, &spare, "unused").await?;
    let cable = desk
        .relate(
            &admin,
            &shop.database.id,
            Rel::ConnectsTo,
            &shop.checkout.id,
        )
        .await?;
    desk.unrelate(&admin, &cable.id).await?;

    let upstream = impact_request(&[&shop.host.id], ImpactDirection::Upstream);
    let downstream = impact_request(&[&shop.business.id], ImpactDirection::Downstream);
    let before_up = desk.impact(&admin, upstream.clone()).await?;
    let before_down = desk.impact(&admin, downstream.clone()).await?;
    let business_before: BTreeSet<String> = business_services(&before_up)
        .iter()
        .map(|b| b.name.clone())
        .collect();
    assert_eq!(
        business_before,
        BTreeSet::from(["Online shop".to_owned(), "Customer portal".to_owned()])
    );
    assert!(
        before_up.cis.iter().all(|c| c.id != spare.id),
        "a retired CI is not entered"
    );

    // when the service is stopped and a new one starts on the same database
    desk.restart_service().await?;

    // then impact analysis answers the same: the same CIs at the same depths, explained by stored
    // relationships only (the removed one is gone, the retired CI still left out)
    let after_up = desk.impact(&admin, upstream).await?;
    let after_down = desk.impact(&admin, downstream).await?;
    let normalized = |answer: &pb::AnalyzeImpactResponse| {
        answer
            .cis
            .iter()
            .map(|c| (c.id.clone(), c.name.clone(), c.class.clone(), c.depth))
            .collect::<BTreeSet<_>>()
    };
    assert_eq!(
        normalized(&after_up),
        normalized(&before_up),
        "upstream from the host"
    );
    assert_eq!(
        normalized(&after_down),
        normalized(&before_down),
        "downstream from the business service"
    );
    assert_eq!(
        (
            after_up.truncated_by.as_str(),
            after_down.truncated_by.as_str()
        ),
        ("", "")
    );
    check_paths(&after_up, &[&shop.host.id], &shop.edges)?;
    check_paths(&after_down, &[&shop.business.id], &shop.edges)?;

    // and the business services reached are the same, tenant subclasses of business_service included
    let business_after: BTreeSet<String> = business_services(&after_up)
        .iter()
        .map(|b| b.name.clone())
        .collect();
    assert_eq!(
        business_after, business_before,
        "after a restart the impact index no longer counts a tenant subclass of business_service as a business service"
    );
    Ok(())
}

// ---- replicas ----

/// Two CMDB replicas on one PostgreSQL and one nats-server (what a Helm HPA runs; SQLite serves
/// one process only). Whatever one writes, the other answers within the event delivery time.
mod two_replicas {
    use super::*;
    use std::time::{Duration, Instant};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn what_one_replica_writes_the_other_answers() -> anyhow::Result<()> {
        let desk = crate::support::spawn_desk(desk_testkit::postgres_database().await?).await?;
        // given two replicas, the second started before anything was written
        let replica = desk.start_replica().await?;
        let admin = desk.admin();
        let b = || replica.client.clone();
        // which has read (and so cached) the tenant's classes and source precedence
        let classes = b()
            .list_classes(with_token(pb::ListClassesRequest::default(), &admin))
            .await?
            .into_inner();
        assert!(!classes.classes.iter().any(|c| c.name == "customer_service"));
        b().get_source_precedence(with_token(
            pb::GetSourcePrecedenceRequest::default(),
            &admin,
        ))
        .await?;

        // when the first creates a tenant class, the shop, and a CI of the new class
        let class = pb::CiClass {
            name: "customer_service".into(),
            label: "Customer-facing service".into(),
            parent: "business_service".into(),
            ..Default::default()
        };
        desk.api()
            .create_class(with_token(
                pb::CreateClassRequest { class: Some(class) },
                &admin,
            ))
            .await?;
        let shop = build_shop(&desk, &admin).await?;
        let portal = desk
            .create_ci(&admin, new_ci("customer_service", "Customer portal", []))
            .await?;
        desk.relate(&admin, &shop.service.id, Rel::Provides, &portal.id)
            .await?;
        let written = Instant::now();

        // then the second answers impact from the same graph: the same CIs, the tenant's subclass
        // of business_service counted as one
        let upstream = impact_request(&[&shop.host.id], ImpactDirection::Upstream);
        let on_a = desk.impact(&admin, upstream.clone()).await?;
        let normalized = |answer: &pb::AnalyzeImpactResponse| {
            answer
                .cis
                .iter()
                .map(|c| (c.id.clone(), c.name.clone(), c.class.clone(), c.depth))
                .collect::<BTreeSet<_>>()
        };
        let on_b_answer = eventually(|| async {
            let answer = b()
                .analyze_impact(with_token(upstream.clone(), &admin))
                .await;
            Ok(answer
                .ok()
                .map(|a| a.into_inner())
                .filter(|a| normalized(a) == normalized(&on_a)))
        })
        .await
        .context("replica B never answered impact as A does")?;
        eprintln!(
            "replica convergence: B answered A's graph {:.1} ms after A's last write returned",
            written.elapsed().as_secs_f64() * 1e3
        );
        let names: BTreeSet<String> = business_services(&on_b_answer)
            .iter()
            .map(|b| b.name.clone())
            .collect();
        assert_eq!(
            names,
            BTreeSet::from(["Online shop".to_owned(), "Customer portal".to_owned()])
        );

        // and knows the class: it lists it and creates a CI of it
        let classes = b()
            .list_classes(with_token(pb::ListClassesRequest::default(), &admin))
            .await?
            .into_inner();
        assert!(classes.classes.iter().any(|c| c.name == "customer_service"));
        let made_on_b = b()
            .create_ci(with_token(
                new_ci("customer_service", "Partner portal", []),
                &admin,
            ))
            .await?
            .into_inner()
            .ci
            .context("a CI")?;

        // and what B writes, A answers: B's new CI provided by the same service
        b().add_relationship(with_token(
            pb::AddRelationshipRequest {
                source_id: shop.service.id.clone(),
                r#type: Rel::Provides as i32,
                target_id: made_on_b.id.clone(),
            },
            &admin,
        ))
        .await?;
        eventually(|| async {
            let answer = desk.impact(&admin, upstream.clone()).await?;
            Ok(business_services(&answer)
                .iter()
                .any(|b| b.name == "Partner portal")
                .then_some(()))
        })
        .await
        .context("replica A never saw B's relationship")?;

        // and a retirement on A takes the retired CI out of B's walks
        let vm = desk.get_ci(&admin, &shop.vm.id).await?;
        desk.retire_ci(&admin, &vm, "moved to the new cluster")
            .await?;
        let summary_request = pb::AnalyzeImpactRequest {
            view: pb::ImpactView::Summary as i32,
            include_paths: false,
            ..upstream.clone()
        };
        let summary = eventually(|| async {
            let answer = b()
                .analyze_impact(with_token(summary_request.clone(), &admin))
                .await?
                .into_inner();
            let summary = answer.summary.context("a summary")?;
            Ok((!summary
                .by_class
                .iter()
                .any(|c| c.class == "virtual_machine"))
            .then_some(summary))
        })
        .await
        .context("replica B still walks through the retired VM")?;
        // The shop is still down with the host: the host runs the orders database, which
        // pricing-app needs, which checkout-app needs (the cycle), which checkout-api provides.
        assert!(
            summary
                .business_services
                .iter()
                .any(|s| s.name == "Online shop"),
            "{summary:?}"
        );
        assert_eq!(
            summary.by_class.iter().map(|c| c.count).sum::<u32>(),
            summary.cis_reached
        );

        // and the source precedence set on A is the one B plans with
        let precedence = pb::SourcePrecedence {
            default_order: Some(pb::SourceOrder {
                sources: vec!["sccm".into(), "api".into()],
            }),
            ..Default::default()
        };
        desk.api()
            .set_source_precedence(with_token(
                pb::SetSourcePrecedenceRequest {
                    precedence: Some(precedence.clone()),
                },
                &admin,
            ))
            .await?;
        eventually(|| async {
            let on_b = b()
                .get_source_precedence(with_token(
                    pb::GetSourcePrecedenceRequest::default(),
                    &admin,
                ))
                .await?
                .into_inner()
                .precedence;
            Ok((on_b.as_ref() == Some(&precedence)).then_some(()))
        })
        .await
        .context("replica B never read the new precedence")?;
        Ok(())
    }

    /// Polls `probe` until it yields `Some` (errors are retried), within the suite's bound.
    async fn eventually<T, F, Fut>(mut probe: F) -> anyhow::Result<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = anyhow::Result<Option<T>>>,
    {
        let deadline = Instant::now() + EVENTUALLY;
        loop {
            match probe().await {
                Ok(Some(value)) => return Ok(value),
                Ok(None) | Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(10)).await
                }
                Ok(None) => anyhow::bail!("not within {EVENTUALLY:?}"),
                Err(error) => return Err(error.context(format!("not within {EVENTUALLY:?}"))),
            }
        }
    }
}

// ---- lists ----

async fn list_cis_filters_by_class_with_subclasses_attributes_text_and_pages(
    desk: TestDesk,
) -> anyhow::Result<()> {
    let admin = desk.admin();
    let agent = desk.agent();
    // given servers, a VM (a kind of server), a database in staging and a switch
    let web = desk
        .create_ci(
            &admin,
            new_ci(
                "server",
                "web-01",
                [("os", text("linux")), ("cpu_count", int(4))],
            ),
        )
        .await?;
    let db_host = desk
        .create_ci(
            &admin,
            new_ci(
                "server",
                "db-host-01",
                [("os", text("windows")), ("cpu_count", int(16))],
            ),
        )
        .await?;
    let vm = desk
        .create_ci(
            &admin,
            new_ci("virtual_machine", "web-vm-01", [("os", text("linux"))]),
        )
        .await?;
    let database = desk
        .create_ci(
            &admin,
            pb::CreateCiRequest {
                environment: pb::Environment::Staging as i32,
                ..new_ci("database", "Web orders", [("engine", text("mysql"))])
            },
        )
        .await?;
    let switch = desk
        .create_ci(&admin, new_ci("network_device", "core-sw-1", []))
        .await?;
    let web = desk
        .update_ci(
            &admin,
            pb::UpdateCiRequest {
                id: web.id.clone(),
                expected_version: 1,
                status: CiStatus::InUse as i32,
                ..Default::default()
            },
        )
        .await?;
    let every = [&web, &db_host, &vm, &database, &switch];
    let set =
        |cis: &[&pb::ConfigurationItem]| cis.iter().map(|c| c.id.clone()).collect::<BTreeSet<_>>();

    let list = |request: pb::ListCisRequest| {
        let (desk, agent) = (&desk, &agent);
        async move {
            let response = desk.list_cis(agent, request).await?;
            ensure!(
                response.total_size as usize == response.cis.len(),
                "total_size {} for {} CIs on one page",
                response.total_size,
                response.cis.len()
            );
            Ok::<_, anyhow::Error>(ids_of(&response.cis))
        }
    };

    // when listing a class, then its subclasses come too
    assert_eq!(
        list(pb::ListCisRequest {
            class: "server".into(),
            ..Default::default()
        })
        .await?,
        set(&[&web, &db_host, &vm])
    );
    assert_eq!(
        list(pb::ListCisRequest {
            class: "virtual_machine".into(),
            ..Default::default()
        })
        .await?,
        set(&[&vm])
    );
    assert_eq!(
        list(pb::ListCisRequest {
            class: "configuration_item".into(),
            ..Default::default()
        })
        .await?,
        set(&every)
    );

    // and attribute filters compare for equality, typed values included, combined with the class
    let os = |value: &str| pb::AttributeFilter {
        name: "os".into(),
        equals: Some(text(value)),
    };
    assert_eq!(
        list(pb::ListCisRequest {
            attribute_filters: vec![os("linux")],
            ..Default::default()
        })
        .await?,
        set(&[&web, &vm])
    );
    assert_eq!(
        list(pb::ListCisRequest {
            class: "server".into(),
            attribute_filters: vec![os("windows")],
            ..Default::default()
        })
        .await?,
        set(&[&db_host])
    );
    let cpus = pb::AttributeFilter {
        name: "cpu_count".into(),
        equals: Some(int(4)),
    };
    assert_eq!(
        list(pb::ListCisRequest {
            attribute_filters: vec![cpus],
            ..Default::default()
        })
        .await?,
        set(&[&web])
    );
    assert_eq!(
        list(pb::ListCisRequest {
            class: "virtual_machine".into(),
            attribute_filters: vec![os("windows")],
            ..Default::default()
        })
        .await?,
        BTreeSet::new()
    );

    // and text matches part of the name, whatever the case, with LIKE wildcards taken literally
    assert_eq!(
        list(pb::ListCisRequest {
            text: "web".into(),
            ..Default::default()
        })
        .await?,
        set(&[&web, &vm, &database])
    );
    assert_eq!(
        list(pb::ListCisRequest {
            text: "WEB-0".into(),
            ..Default::default()
        })
        .await?,
        set(&[&web])
    );
    assert_eq!(
        list(pb::ListCisRequest {
            text: "%".into(),
            ..Default::default()
        })
        .await?,
        BTreeSet::new()
    );
    assert_eq!(
        list(pb::ListCisRequest {
            text: "db_host".into(),
            ..Default::default()
        })
        .await?,
        BTreeSet::new()
    );

    // and status and environment filter too
    assert_eq!(
        list(pb::ListCisRequest {
            statuses: vec![CiStatus::InUse as i32],
            ..Default::default()
        })
        .await?,
        set(&[&web])
    );
    assert_eq!(
        list(pb::ListCisRequest {
            environment: pb::Environment::Staging as i32,
            ..Default::default()
        })
        .await?,
        set(&[&database])
    );

    // when paging two at a time, then every CI comes exactly once and each page tells the total
    let mut seen = Vec::new();
    let mut token = String::new();
    for page in 0.. {
        ensure!(page < 5, "paging does not end");
        let response = desk
            .list_cis(
                &agent,
                pb::ListCisRequest {
                    page_size: 2,
                    page_token: token.clone(),
                    ..Default::default()
                },
            )
            .await?;
        assert_eq!(response.total_size, 5, "page {page}");
        assert!(response.cis.len() <= 2);
        seen.extend(response.cis.iter().map(|c| c.id.clone()));
        if response.next_page_token.is_empty() {
            break;
        }
        token = response.next_page_token;
    }
    assert_eq!(seen.len(), 5, "{seen:?}");
    assert_eq!(seen.iter().cloned().collect::<BTreeSet<_>>(), set(&every));

    // and bad filters are refused, naming them
    expect_violations(
        desk.list_cis(
            &agent,
            pb::ListCisRequest {
                class: "mainframe".into(),
                ..Default::default()
            },
        )
        .await,
        &["class"],
    )?;
    expect_violations(
        desk.list_cis(
            &agent,
            pb::ListCisRequest {
                page_size: 501,
                ..Default::default()
            },
        )
        .await,
        &["page_size"],
    )?;
    expect_violations(
        desk.list_cis(
            &agent,
            pb::ListCisRequest {
                page_token: "not-a-token".into(),
                ..Default::default()
            },
        )
        .await,
        &["page_token"],
    )?;
    let empty_filter = pb::AttributeFilter {
        name: "os".into(),
        equals: None,
    };
    let status = expect_code(
        desk.list_cis(
            &agent,
            pb::ListCisRequest {
                attribute_filters: vec![empty_filter],
                ..Default::default()
            },
        )
        .await,
        Code::InvalidArgument,
    )?;
    assert_eq!(
        violated_fields(&status)?,
        vec!["attribute_filters[0].equals".to_owned()]
    );
    Ok(())
}

// ---- source precedence ----

/// Stages and commits a one-server batch from `source`; returns the committed batch.
async fn import_server(
    desk: &TestDesk,
    token: &str,
    source: &str,
    os: &str,
    fqdn: &str,
) -> anyhow::Result<pb::ImportBatch> {
    let staged = desk
        .stage(
            token,
            pb::StageImportRequest {
                source: source.into(),
                items: vec![item(
                    "srv",
                    "server",
                    "db-host",
                    [
                        ("serial_number", text("SN-P1")),
                        ("os", text(os)),
                        ("fqdn", text(fqdn)),
                    ],
                )],
                relationships: vec![],
                skip_invalid: false,
            },
        )
        .await?;
    Ok(desk.commit(token, &staged.id).await?)
}

async fn a_tenant_decides_which_discovery_source_wins_each_attribute(
    desk: TestDesk,
) -> anyhow::Result<()> {
    let admin = desk.admin();
    let robot = desk.integrator();
    // given: SCCM outranks AWS Config for `os`; for everything else AWS Config outranks SCCM
    let precedence = pb::SourcePrecedence {
        default_order: Some(pb::SourceOrder {
            sources: vec!["aws-config".into(), "sccm".into()],
        }),
        by_field: [(
            "server.os".to_owned(),
            pb::SourceOrder {
                sources: vec!["sccm".into(), "aws-config".into()],
            },
        )]
        .into(),
    };
    // a discovery source may not rank itself
    expect_code(
        desk.api()
            .set_source_precedence(with_token(
                pb::SetSourcePrecedenceRequest {
                    precedence: Some(precedence.clone()),
                },
                &robot,
            ))
            .await,
        Code::PermissionDenied,
    )?;
    let bad = pb::SourcePrecedence {
        default_order: Some(pb::SourceOrder {
            sources: vec!["sccm".into(), "sccm".into()],
        }),
        ..Default::default()
    };
    expect_code(
        desk.api()
            .set_source_precedence(with_token(
                pb::SetSourcePrecedenceRequest {
                    precedence: Some(bad),
                },
                &admin,
            ))
            .await,
        Code::InvalidArgument,
    )?;
    desk.api()
        .set_source_precedence(with_token(
            pb::SetSourcePrecedenceRequest {
                precedence: Some(precedence.clone()),
            },
            &admin,
        ))
        .await?;
    let read = desk
        .api()
        .get_source_precedence(with_token(pb::GetSourcePrecedenceRequest {}, &desk.agent()))
        .await?
        .into_inner();
    assert_eq!(read.precedence, Some(precedence));

    // when SCCM reports the server first, then AWS Config reports other values
    let first = import_server(&desk, &robot, "sccm", "linux", "a.sccm.example").await?;
    let server_id = first.items[0].ci_id.clone();
    let second = import_server(&desk, &robot, "aws-config", "windows", "a.aws.example").await?;

    // then AWS Config wins the fqdn but not the os, and the plan said so
    assert_eq!(
        second.items[0].action,
        pb::PlannedAction::Update as i32,
        "{second:?}"
    );
    assert_eq!(
        second.items[0].skipped_by_precedence,
        vec!["attributes.os".to_owned()],
        "{second:?}"
    );
    let server = desk.get_ci(&admin, &server_id).await?;
    assert_eq!(server.attributes.get("os"), Some(&text("linux")));
    assert_eq!(server.attributes.get("fqdn"), Some(&text("a.aws.example")));
    assert_eq!(
        server.provenance.get("os").map(|p| p.source.as_str()),
        Some("sccm")
    );
    assert_eq!(
        server.provenance.get("fqdn").map(|p| p.source.as_str()),
        Some("aws-config")
    );

    // and SCCM can no longer take the fqdn back, but still owns the os
    let third = import_server(&desk, &robot, "sccm", "other", "a.sccm.example").await?;
    assert_eq!(
        third.items[0].skipped_by_precedence,
        vec!["attributes.fqdn".to_owned()],
        "{third:?}"
    );
    let server = desk.get_ci(&admin, &server_id).await?;
    assert_eq!(server.attributes.get("os"), Some(&text("other")));
    assert_eq!(server.attributes.get("fqdn"), Some(&text("a.aws.example")));
    Ok(())
}
