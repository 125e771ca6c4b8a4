//! Provisioning batches from an identity provider: preview, commit, repeat; complete syncs;
//! previews the directory no longer matches; bad batches.

use super::*;

use pb::ProvisioningAction as Action;

on_both_backends!(
    a_batch_is_previewed_then_committed_then_repeated_as_unchanged,
    a_person_missing_from_the_next_complete_batch_is_deactivated_and_not_deleted,
    a_preview_the_directory_no_longer_matches_is_not_committed,
    a_bad_batch_is_refused_with_a_violation_each_and_nothing_written,
);

fn actions(batch: &pb::ProvisioningBatch) -> Vec<(String, i32)> {
    batch
        .people
        .iter()
        .map(|p| (p.external_id.clone(), p.action))
        .collect()
}

fn planned(action: Action, ids: &[&str]) -> Vec<(String, i32)> {
    ids.iter()
        .map(|id| ((*id).to_owned(), action as i32))
        .collect()
}

async fn a_batch_is_previewed_then_committed_then_repeated_as_unchanged(
    desk: TestDesk,
) -> anyhow::Result<()> {
    let (admin, robot) = (desk.admin(), desk.integrator());
    // given two teams
    let network = desk
        .create_team(&admin, team("Network", "emea", &["networking"]))
        .await?;
    desk.create_team(&admin, team("Service desk", "emea", &[]))
        .await?;

    // and a batch of a manager and two reports with their teams
    let mut bea = in_teams(provisioned("e-2", "Bea Berg"), &["Network", "service desk"]);
    bea.manager_external_id = "e-1".into();
    bea.email = "bea@example.com".into();
    bea.time_zone = "Europe/Stockholm".into();
    let mut cid = in_teams(provisioned("e-3", "Cid Costa"), &[network.id.as_str()]);
    cid.manager_external_id = "e-1".into();
    let people = vec![provisioned("e-1", "Ann Ahl"), bea, cid];

    // when the sync robot stages it
    let published = desk.settled_events().await?.len();
    let staged = desk.stage(&robot, batch(people.clone(), false)).await?;

    // then the preview says what a commit will do, and nothing has changed yet
    assert_eq!(staged.state, pb::ProvisioningState::Staged as i32);
    assert_eq!(
        actions(&staged),
        planned(Action::Create, &["e-1", "e-2", "e-3"])
    );
    assert_eq!((staged.creates, staged.memberships_added), (3, 3));
    assert_eq!(desk.rows_in("directory_people").await?, 0);
    assert_eq!(desk.rows_in("directory_memberships").await?, 0);
    assert_eq!(
        desk.settled_events().await?.len(),
        published,
        "a preview publishes nothing"
    );

    // when it is committed
    let committed = desk.commit(&robot, &staged.id).await?;

    // then exactly the preview happened, under the ids it showed
    assert_eq!(committed.state, pb::ProvisioningState::Committed as i32);
    assert_eq!(committed.people, staged.people);
    let bea_id = &staged.people[1].person_id;
    let read = desk.get_person(&admin, bea_id).await?;
    let bea = read.person.context("Bea")?;
    assert_eq!(
        (bea.external_id.as_str(), bea.subject.as_str()),
        ("e-2", "e-2")
    );
    assert_eq!(bea.manager_id, staged.people[0].person_id);
    assert_eq!(bea.source, "entra-id");
    assert_eq!(bea.time_zone, "Europe/Stockholm");
    let teams: Vec<_> = read
        .memberships
        .iter()
        .map(|m| m.team_name.as_str())
        .collect();
    assert_eq!(teams, ["Network", "Service desk"]);
    assert_eq!(desk.settled("person", "created").await?.len(), 3);
    assert_eq!(desk.settled("membership", "added").await?.len(), 3);

    // when the same batch comes again
    let published = desk.settled_events().await?.len();
    let again = desk.stage(&robot, batch(people, false)).await?;

    // then every person is unchanged, and committing it writes and publishes nothing
    assert_eq!(
        actions(&again),
        planned(Action::Unchanged, &["e-1", "e-2", "e-3"])
    );
    assert_eq!((again.unchanged, again.creates, again.updates), (3, 0, 0));
    desk.commit(&robot, &again.id).await?;
    assert_eq!(desk.settled_events().await?.len(), published);
    assert_eq!(desk.rows_in("directory_people").await?, 3);

    // and a committed batch is not committed twice
    expect_code(
        desk.commit(&robot, &staged.id).await,
        Code::FailedPrecondition,
    )?;
    Ok(())
}

async fn a_person_missing_from_the_next_complete_batch_is_deactivated_and_not_deleted(
    desk: TestDesk,
) -> anyhow::Result<()> {
    let (admin, robot) = (desk.admin(), desk.integrator());
    // given a complete sync of two people, one of them in a team they lead
    let network = desk
        .create_team(&admin, team("Network", "emea", &[]))
        .await?;
    let mut ann = provisioned("e-1", "Ann Ahl");
    ann.teams = vec![pb::ProvisionedMembership {
        team: "Network".into(),
        role: pb::MembershipRole::Lead as i32,
    }];
    let mut bea = provisioned("e-2", "Bea Berg");
    bea.manager_external_id = "e-1".into();
    let first = desk
        .stage(&robot, batch(vec![ann, bea.clone()], true))
        .await?;
    desk.commit(&robot, &first.id).await?;
    let ann_id = first.people[0].person_id.clone();

    // when the next complete sync no longer names Ann
    let next = desk.stage(&robot, batch(vec![bea], true)).await?;

    // then the preview deactivates her
    assert_eq!(next.deactivations, 1);
    assert_eq!(
        actions(&next),
        [
            ("e-2".to_owned(), Action::Unchanged as i32),
            ("e-1".to_owned(), Action::Deactivate as i32)
        ]
    );

    // when it is committed
    desk.commit(&robot, &next.id).await?;

    // then she is deactivated, not deleted: still readable with her history's fields
    let ann = desk
        .get_person(&admin, &ann_id)
        .await?
        .person
        .context("Ann")?;
    assert_eq!(ann.status, pb::PersonStatus::Deactivated as i32);
    assert_eq!(ann.display_name, "Ann Ahl");
    ensure!(ann.deactivate_time.is_some(), "a deactivation time");
    assert_eq!(desk.rows_in("directory_people").await?, 2);

    // and the event reports what she leaves to others
    let deactivated = desk.settled("person", "deactivated").await?;
    assert_eq!(deactivated.len(), 1);
    let body: pb::PersonDeactivated = deactivated[0].decode()?;
    let report = body.report.context("a report")?;
    assert_eq!(report.team_ids, std::slice::from_ref(&network.id));
    assert_eq!(report.led_team_ids, [network.id]);
    assert_eq!(
        report.direct_report_ids,
        [first.people[1].person_id.clone()]
    );
    assert_eq!(body.source, "entra-id");

    // and naming her again brings her back
    let back = desk
        .stage(&robot, batch(vec![provisioned("e-1", "Ann Ahl")], false))
        .await?;
    assert_eq!(actions(&back), planned(Action::Reactivate, &["e-1"]));
    desk.commit(&robot, &back.id).await?;
    let ann = desk
        .get_person(&admin, &ann_id)
        .await?
        .person
        .context("Ann")?;
    assert_eq!(ann.status, pb::PersonStatus::Active as i32);
    Ok(())
}

async fn a_preview_the_directory_no_longer_matches_is_not_committed(
    desk: TestDesk,
) -> anyhow::Result<()> {
    let (admin, robot) = (desk.admin(), desk.integrator());
    // given a committed person and a staged batch that renames them
    let first = desk
        .stage(&robot, batch(vec![provisioned("e-1", "Ann Ahl")], false))
        .await?;
    desk.commit(&robot, &first.id).await?;
    let staged = desk
        .stage(
            &robot,
            batch(vec![provisioned("e-1", "Ann Andersson")], false),
        )
        .await?;
    assert_eq!(actions(&staged), planned(Action::Update, &["e-1"]));

    // when an admin changes the person before the commit
    let ann = desk
        .get_person(&admin, &first.people[0].person_id)
        .await?
        .person
        .context("Ann")?;
    desk.update_person(
        &admin,
        pb::UpdatePersonRequest {
            id: ann.id.clone(),
            expected_version: ann.version,
            display_name: Some("Ann A. Ahl".into()),
            ..Default::default()
        },
    )
    .await?;
    let published = desk.settled_events().await?.len();

    // then the commit is refused as stale, and nothing of it is written
    expect_code(desk.commit(&robot, &staged.id).await, Code::Aborted)?;
    let now = desk
        .get_person(&admin, &ann.id)
        .await?
        .person
        .context("Ann")?;
    assert_eq!(now.display_name, "Ann A. Ahl");
    assert_eq!(desk.settled_events().await?.len(), published);
    Ok(())
}

async fn a_bad_batch_is_refused_with_a_violation_each_and_nothing_written(
    desk: TestDesk,
) -> anyhow::Result<()> {
    let robot = desk.integrator();
    // given a batch with a duplicate external id, a bad e-mail, an unknown team and a manager
    // chain that closes on itself
    let mut bad_email = provisioned("e-3", "Cid");
    bad_email.email = "cid@@example.com".into();
    let mut ann = provisioned("e-1", "Ann");
    ann.manager_external_id = "e-2".into();
    let mut bea = in_teams(provisioned("e-2", "Bea"), &["No such team"]);
    bea.manager_external_id = "e-1".into();
    let request = batch(
        vec![
            ann.clone(),
            bea.clone(),
            provisioned("e-1", "Ann again"),
            bad_email,
        ],
        false,
    );

    // when it is staged
    let result = desk.stage(&robot, request).await;

    // then the checks of the batch alone are each a violation
    let fields = expect_violations(result, &["people[2].external_id", "people[3].email"])?;
    assert_eq!(fields.len(), 2, "{fields:?}");

    // and once those are fixed, the references and the cycle are
    let result = desk.stage(&robot, batch(vec![ann, bea], false)).await;
    expect_violations(
        result,
        &[
            "people[0].manager_external_id",
            "people[1].manager_external_id",
            "people[1].teams[0].team",
        ],
    )?;

    // and nothing was written
    assert_eq!(desk.rows_in("directory_provisioning_batches").await?, 0);
    assert_eq!(desk.rows_in("directory_people").await?, 0);
    Ok(())
}
