//! Discovery imports: identification across sources, precedence per attribute, a staged preview
//! that commit follows exactly, discards, stale plans, bad batches, concurrent commits, and a
//! tenant's own precedence.

use super::*;

on_both_backends!(
    identification_matches_across_sources_and_precedence_decides_per_attribute,
    a_staged_import_previews_exactly_what_commit_does_and_a_discard_changes_nothing,
    a_bad_batch_is_refused_whole_unless_invalid_items_may_be_skipped,
    one_bad_item_in_ten_thousand_is_named_and_skipped_only_when_asked,
    concurrent_commits_of_batches_describing_the_same_new_ci_create_it_once,
    a_tenant_decides_which_discovery_source_wins_each_attribute,
);

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
