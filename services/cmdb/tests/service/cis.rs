//! CIs: attribute validation per class, versions, retirement, history; idempotent creates; an
//! update validated like a create.

use super::*;

on_both_backends!(
    attributes_are_validated_per_class_and_a_ci_keeps_its_versions_and_history,
    a_retried_create_with_the_same_idempotency_key_returns_the_first_ci,
    concurrent_retries_with_one_idempotency_key_create_only_one_ci,
    an_update_is_validated_like_a_create,
);

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
