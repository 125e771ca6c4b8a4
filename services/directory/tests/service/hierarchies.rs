//! Manager chains and team hierarchies stay trees: a change that would close a cycle is refused
//! with a field violation, and nothing is written.

use super::*;

on_both_backends!(
    a_manager_chain_that_would_form_a_cycle_is_refused,
    a_team_hierarchy_that_would_form_a_cycle_is_refused,
);

async fn a_manager_chain_that_would_form_a_cycle_is_refused(desk: TestDesk) -> anyhow::Result<()> {
    let admin = desk.admin();
    // given Cid reports to Bea, who reports to Ann
    let ann = desk.create_person(&admin, person("ann", "Ann")).await?;
    let bea = desk.create_person(&admin, person("bea", "Bea")).await?;
    let cid = desk.create_person(&admin, person("cid", "Cid")).await?;
    let bea = desk.set_manager(&admin, &bea, &ann).await?;
    desk.set_manager(&admin, &cid, &bea).await?;
    let published = desk.settled_events().await?.len();

    // when Ann is to report to Cid, or to herself
    let around = desk.set_manager(&admin, &ann, &cid).await;
    let herself = desk.set_manager(&admin, &ann, &ann).await;

    // then each is refused on manager_id, naming the cycle
    for refused in [around, herself] {
        let status = expect_code(refused, Code::InvalidArgument)?;
        ensure!(
            status.message().contains("cycle in the manager chain"),
            "{}",
            status.message()
        );
        expect_violations::<()>(Err(status), &["manager_id"])?;
    }

    // and nothing was written or published
    let unchanged = desk
        .get_person(&admin, &ann.id)
        .await?
        .person
        .context("Ann")?;
    assert_eq!(
        (unchanged.version, unchanged.manager_id.as_str()),
        (ann.version, "")
    );
    assert_eq!(desk.settled_events().await?.len(), published);

    // and the chain reads upwards from Cid
    let chain = desk
        .api()
        .get_manager_chain(support::with_token(
            pb::GetManagerChainRequest {
                person_id: cid.id.clone(),
            },
            &admin,
        ))
        .await?
        .into_inner()
        .managers;
    let names: Vec<_> = chain.iter().map(|p| p.display_name.as_str()).collect();
    assert_eq!(names, ["Bea", "Ann"]);
    Ok(())
}

async fn a_team_hierarchy_that_would_form_a_cycle_is_refused(desk: TestDesk) -> anyhow::Result<()> {
    let admin = desk.admin();
    // given Network EMEA core under Network EMEA under Network
    let network = desk
        .create_team(&admin, team("Network", "emea", &[]))
        .await?;
    let mut emea = team("Network EMEA", "emea", &[]);
    emea.parent_id = network.id.clone();
    let emea = desk.create_team(&admin, emea).await?;
    let mut core = team("Network EMEA core", "emea", &[]);
    core.parent_id = emea.id.clone();
    let core = desk.create_team(&admin, core).await?;
    let published = desk.settled_events().await?.len();

    // when Network is to move under its grandchild, or under itself
    for parent in [&core, &network] {
        let moved = desk
            .update_team(
                &admin,
                pb::UpdateTeamRequest {
                    id: network.id.clone(),
                    expected_version: network.version,
                    parent_id: Some(parent.id.clone()),
                    ..Default::default()
                },
            )
            .await;

        // then it is refused on parent_id, naming the cycle
        let status = expect_code(moved, Code::InvalidArgument)?;
        ensure!(
            status.message().contains("cycle in the team hierarchy"),
            "{}",
            status.message()
        );
        expect_violations::<()>(Err(status), &["parent_id"])?;
    }

    // and nothing was written or published
    let read = desk
        .api()
        .get_team(support::with_token(
            pb::GetTeamRequest {
                id: network.id.clone(),
            },
            &admin,
        ))
        .await?
        .into_inner()
        .team
        .context("Network")?;
    assert_eq!(
        (read.version, read.parent_id.as_str()),
        (network.version, "")
    );
    assert_eq!(desk.settled_events().await?.len(), published);

    // and a team with active child teams is not retired
    let retired = desk
        .api()
        .retire_team(support::with_token(
            pb::RetireTeamRequest {
                id: emea.id.clone(),
                expected_version: emea.version,
                reason: String::new(),
            },
            &admin,
        ))
        .await;
    expect_code(retired, Code::FailedPrecondition)?;
    Ok(())
}
