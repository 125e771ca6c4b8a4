//! Relationships and their rules, and concurrent adds that keep them.

use super::*;

on_both_backends!(
    relationships_join_two_live_cis_of_fitting_classes_and_can_be_removed,
    concurrent_relationship_adds_keep_one_host_per_ci_and_no_duplicates,
);

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
