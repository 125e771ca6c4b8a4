//! The lookups a front-end and other services make in one call: a person with their teams, the
//! members of a team with their presence, the teams with a skill in a region, and lists.

use super::*;

on_both_backends!(
    a_person_comes_with_their_teams_and_a_team_with_its_members_and_their_presence,
    teams_with_a_skill_are_found_by_region_tier_and_follow_the_sun,
    people_are_listed_in_pages_by_name_and_filtered,
    teams_written_on_one_replica_are_found_on_the_other,
);

async fn a_person_comes_with_their_teams_and_a_team_with_its_members_and_their_presence(
    desk: TestDesk,
) -> anyhow::Result<()> {
    let admin = desk.admin();
    // given Alex leading the network team and in the database team, and Bo in the network team
    let network = desk
        .create_team(&admin, team("Network", "emea", &["networking"]))
        .await?;
    let database = desk
        .create_team(&admin, team("Database", "emea", &["sql"]))
        .await?;
    let alex = desk
        .agent_person("alex", "Alex Agent", &[("networking", 5)], &["en", "sv"])
        .await?;
    let bo = desk
        .agent_person("bo", "Bo Berg", &[("sql", 2)], &["sv"])
        .await?;
    desk.add_member(&admin, &network, &alex, pb::MembershipRole::Lead)
        .await?;
    desk.add_member(&admin, &database, &alex, pb::MembershipRole::Member)
        .await?;
    desk.add_member(&admin, &network, &bo, pb::MembershipRole::Member)
        .await?;
    desk.set_presence(
        &desk.token("alex", TENANT, &["agent"]),
        pb::PresenceStatus::Busy,
        600,
    )
    .await?;

    // when an agent reads Alex
    let read = desk.get_person(&desk.agent(), &alex.id).await?;

    // then he comes with his teams, his agent profile and his presence
    let teams: Vec<_> = read
        .memberships
        .iter()
        .map(|m| (m.team_name.as_str(), m.role))
        .collect();
    assert_eq!(
        teams,
        [
            ("Database", pb::MembershipRole::Member as i32),
            ("Network", pb::MembershipRole::Lead as i32)
        ]
    );
    let profile = read
        .person
        .and_then(|p| p.agent)
        .context("an agent profile")?;
    assert_eq!(profile.languages, ["en", "sv"]);
    assert_eq!(
        read.presence.map(|p| p.status),
        Some(pb::PresenceStatus::Busy as i32)
    );

    // when the network team's members are listed
    let members = desk
        .api()
        .list_team_members(support::with_token(
            pb::ListTeamMembersRequest {
                team_id: network.id.clone(),
                ..Default::default()
            },
            &desk.agent(),
        ))
        .await?
        .into_inner()
        .members;

    // then each comes with their role and presence (Bo never set one: offline)
    let listed: Vec<_> = members
        .iter()
        .map(|m| {
            (
                m.person
                    .as_ref()
                    .map(|p| p.display_name.clone())
                    .unwrap_or_default(),
                m.role,
                m.presence.as_ref().map(|p| p.status),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            (
                "Alex Agent".to_owned(),
                pb::MembershipRole::Lead as i32,
                Some(pb::PresenceStatus::Busy as i32)
            ),
            (
                "Bo Berg".to_owned(),
                pb::MembershipRole::Member as i32,
                Some(pb::PresenceStatus::Offline as i32)
            ),
        ]
    );

    // and a deactivated member leaves the list unless asked for
    desk.api()
        .deactivate_person(support::with_token(
            pb::DeactivatePersonRequest {
                id: bo.id.clone(),
                expected_version: bo.version,
                reason: String::new(),
            },
            &admin,
        ))
        .await?;
    let active = desk
        .api()
        .list_team_members(support::with_token(
            pb::ListTeamMembersRequest {
                team_id: network.id.clone(),
                ..Default::default()
            },
            &admin,
        ))
        .await?
        .into_inner()
        .members;
    assert_eq!(active.len(), 1);
    let everyone = desk
        .api()
        .list_team_members(support::with_token(
            pb::ListTeamMembersRequest {
                team_id: network.id.clone(),
                include_deactivated: true,
                ..Default::default()
            },
            &admin,
        ))
        .await?
        .into_inner()
        .members;
    assert_eq!(everyone.len(), 2);
    Ok(())
}

async fn teams_with_a_skill_are_found_by_region_tier_and_follow_the_sun(
    desk: TestDesk,
) -> anyhow::Result<()> {
    let admin = desk.admin();
    // given network teams in three regions, one of them in follow-the-sun, and a retired one
    let mut emea = team("Network EMEA", "emea", &["networking", "firewalls"]);
    emea.tier = pb::SupportTier::SecondLine as i32;
    emea.time_zone = "Europe/Stockholm".into();
    emea.follow_the_sun = true;
    desk.create_team(&admin, emea).await?;
    let mut apac = team("Network APAC", "apac", &["networking"]);
    apac.tier = pb::SupportTier::ThirdLine as i32;
    desk.create_team(&admin, apac).await?;
    let mut emea_first = team("Service desk EMEA", "emea", &["networking", "windows"]);
    emea_first.tier = pb::SupportTier::FirstLine as i32;
    desk.create_team(&admin, emea_first).await?;
    let old = desk
        .create_team(&admin, team("Old network", "emea", &["networking"]))
        .await?;
    desk.api()
        .retire_team(support::with_token(
            pb::RetireTeamRequest {
                id: old.id.clone(),
                expected_version: old.version,
                reason: String::new(),
            },
            &admin,
        ))
        .await?;

    let find = |skill: &str, region: &str, tier: pb::SupportTier, follow: bool| {
        let request = support::with_token(
            pb::FindTeamsRequest {
                skill: skill.into(),
                region: region.into(),
                tier: tier as i32,
                follow_the_sun_only: follow,
            },
            &desk.agent(),
        );
        let api = desk.api();
        async move {
            let mut api = api;
            anyhow::Ok(
                api.find_teams(request)
                    .await?
                    .into_inner()
                    .teams
                    .into_iter()
                    .map(|t| t.name)
                    .collect::<Vec<_>>(),
            )
        }
    };
    use pb::SupportTier::{SecondLine, Unspecified};

    // when an agent looks for networking in EMEA, then in every region, then narrower
    // then active teams with the skill come, by tier then name
    assert_eq!(
        find("networking", "emea", Unspecified, false).await?,
        ["Service desk EMEA", "Network EMEA"]
    );
    assert_eq!(
        find("networking", "", Unspecified, false).await?,
        ["Service desk EMEA", "Network EMEA", "Network APAC"]
    );
    assert_eq!(
        find("networking", "", SecondLine, false).await?,
        ["Network EMEA"]
    );
    assert_eq!(
        find("networking", "", Unspecified, true).await?,
        ["Network EMEA"]
    );
    assert!(find("sql", "emea", Unspecified, false).await?.is_empty());

    // and a skill that is not a skill name is a violation
    let bad = desk
        .api()
        .find_teams(support::with_token(
            pb::FindTeamsRequest {
                skill: "Net Working".into(),
                ..Default::default()
            },
            &desk.agent(),
        ))
        .await;
    expect_violations(bad, &["skill"])?;
    Ok(())
}

async fn people_are_listed_in_pages_by_name_and_filtered(desk: TestDesk) -> anyhow::Result<()> {
    let admin = desk.admin();
    // given five people, two of them agents
    for (subject, name) in [
        ("e", "Eve"),
        ("c", "Cid"),
        ("a", "Ann"),
        ("d", "Dag"),
        ("b", "Bea"),
    ] {
        desk.create_person(&admin, person(subject, name)).await?;
    }
    desk.agent_person("z", "Zoe Agent", &[], &[]).await?;

    // when they are listed two at a time
    let mut names = Vec::new();
    let mut token = String::new();
    loop {
        let page = desk
            .api()
            .list_people(support::with_token(
                pb::ListPeopleRequest {
                    page_size: 2,
                    page_token: token.clone(),
                    ..Default::default()
                },
                &admin,
            ))
            .await?
            .into_inner();
        names.extend(page.people.into_iter().map(|p| p.display_name));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }

    // then every person comes once, by name
    assert_eq!(names, ["Ann", "Bea", "Cid", "Dag", "Eve", "Zoe Agent"]);

    // and the filters narrow the list
    let list = |request: pb::ListPeopleRequest| {
        let mut api = desk.api();
        let request = support::with_token(request, &admin);
        async move {
            anyhow::Ok(
                api.list_people(request)
                    .await?
                    .into_inner()
                    .people
                    .into_iter()
                    .map(|p| p.display_name)
                    .collect::<Vec<_>>(),
            )
        }
    };
    assert_eq!(
        list(pb::ListPeopleRequest {
            agents_only: true,
            ..Default::default()
        })
        .await?,
        ["Zoe Agent"]
    );
    assert_eq!(
        list(pb::ListPeopleRequest {
            text: "DA".into(),
            ..Default::default()
        })
        .await?,
        ["Dag"]
    );
    let bad = desk
        .api()
        .list_people(support::with_token(
            pb::ListPeopleRequest {
                page_token: "not-a-token".into(),
                ..Default::default()
            },
            &admin,
        ))
        .await;
    expect_violations(bad, &["page_token"])?;
    Ok(())
}

async fn teams_written_on_one_replica_are_found_on_the_other(desk: TestDesk) -> anyhow::Result<()> {
    let admin = desk.admin();
    // given a team from before a second replica starts (that one loads it), and the replica
    let desk_team = desk
        .create_team(&admin, team("Service desk EMEA", "emea", &["networking"]))
        .await?;
    let replica = desk.start_replica().await?;
    let on_replica = || {
        desk_proto::directory::v1::directory_service_client::DirectoryServiceClient::new(
            replica.channel.clone(),
        )
    };
    let find =
        |mut api: desk_proto::directory::v1::directory_service_client::DirectoryServiceClient<
            tonic::transport::Channel,
        >,
         skill: &'static str| {
            let agent = desk.agent();
            async move {
                anyhow::Ok(
                    api.find_teams(support::with_token(
                        pb::FindTeamsRequest {
                            skill: skill.into(),
                            ..Default::default()
                        },
                        &agent,
                    ))
                    .await?
                    .into_inner()
                    .teams
                    .into_iter()
                    .map(|t| t.name)
                    .collect::<Vec<_>>(),
                )
            }
        };
    // Polls `find` on `api` until it answers `expected`, for as long as events may take.
    let eventually = |api, skill: &'static str, expected: Vec<&'static str>| {
        let find = &find;
        async move {
            let deadline = std::time::Instant::now() + EVENTUALLY;
            loop {
                let found = find(Clone::clone(&api), skill).await?;
                if found == expected {
                    return anyhow::Ok(());
                }
                ensure!(
                    std::time::Instant::now() < deadline,
                    "{skill}: still {found:?}, not {expected:?}"
                );
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    };
    assert_eq!(
        find(on_replica(), "networking").await?,
        ["Service desk EMEA"],
        "the replica loaded the team at start"
    );

    // when a team is created on the first replica
    desk.create_team(&admin, team("Network EMEA", "emea", &["networking", "vpn"]))
        .await?;
    // then the first finds it at once, and the other once the event arrives
    assert_eq!(find(desk.api(), "vpn").await?, ["Network EMEA"]);
    eventually(on_replica(), "vpn", vec!["Network EMEA"]).await?;

    // when the other replica changes the first team's skills
    let updated = on_replica()
        .update_team(support::with_token(
            pb::UpdateTeamRequest {
                id: desk_team.id.clone(),
                expected_version: desk_team.version,
                skills: Some(pb::SkillNames {
                    names: vec!["wifi".into()],
                }),
                ..Default::default()
            },
            &admin,
        ))
        .await?
        .into_inner()
        .team
        .context("an updated team")?;
    // then it finds the team by its new skill at once, and the first replica does once the
    // event arrives, no longer by the skill it lost
    assert_eq!(find(on_replica(), "wifi").await?, ["Service desk EMEA"]);
    eventually(desk.api(), "wifi", vec!["Service desk EMEA"]).await?;
    assert_eq!(find(desk.api(), "networking").await?, ["Network EMEA"]);

    // when the other replica retires it
    on_replica()
        .retire_team(support::with_token(
            pb::RetireTeamRequest {
                id: updated.id.clone(),
                expected_version: updated.version,
                reason: String::new(),
            },
            &admin,
        ))
        .await?;
    // then neither finds it any more
    assert!(find(on_replica(), "wifi").await?.is_empty());
    eventually(desk.api(), "wifi", Vec::new()).await?;
    Ok(())
}
