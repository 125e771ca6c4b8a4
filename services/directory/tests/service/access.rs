//! Who reads and writes what: requesters see themselves and the display names of agents; staff
//! read their tenant's directory with e-mail and phone; only admins write and integrators also
//! provision; another tenant's people and teams are `NOT_FOUND`.

use super::*;

use pb::get_person_request::Key;

on_both_backends!(
    a_requester_reads_their_own_profile_and_only_the_display_names_of_agents,
    staff_read_the_directory_with_email_and_phone,
    only_admins_write_and_integrators_also_provision,
    another_tenants_people_and_teams_are_not_found,
);

async fn a_requester_reads_their_own_profile_and_only_the_display_names_of_agents(
    desk: TestDesk,
) -> anyhow::Result<()> {
    let admin = desk.admin();
    // given an agent with an e-mail and a phone, a requester who is not an agent, and Rita
    let mut alex = person("alex", "Alex Agent");
    alex.email = "alex@example.com".into();
    alex.phone = "+46 8 123 456".into();
    let alex = desk.create_person(&admin, alex).await?;
    let alex = desk
        .set_agent_profile(
            &admin,
            &alex,
            Some(pb::AgentProfile {
                capacity: 3,
                ..Default::default()
            }),
        )
        .await?;
    let bob = desk
        .create_person(&admin, person("bob", "Bob Requester"))
        .await?;
    let rita_token = desk.token_with(
        "rita",
        TENANT,
        &["requester"],
        Claims {
            name: Some("Rita"),
            email: Some("rita@example.com"),
            locale: None,
        },
    );
    let rita = desk.who_am_i(&rita_token).await?.person.context("Rita")?;

    // when Rita reads herself
    let own = desk
        .get_person_by(&rita_token, Key::Subject("rita".into()))
        .await?
        .person
        .context("Rita")?;

    // then she sees all of her profile, e-mail included
    assert_eq!(own, rita);
    assert_eq!(own.email, "rita@example.com");

    // when she reads the agent
    let agent = desk.get_person(&rita_token, &alex.id).await?;

    // then she sees his display name and nothing else
    let shown = agent.person.context("Alex")?;
    ensure!(shown.display_name_only, "a display-name-only view");
    assert_eq!(shown.display_name, "Alex Agent");
    assert_eq!((shown.email.as_str(), shown.phone.as_str()), ("", ""));
    assert_eq!(shown.subject, "");
    ensure!(shown.agent.is_none() && agent.presence.is_none() && agent.memberships.is_empty());

    // and another requester does not exist for her
    expect_code(desk.get_person(&rita_token, &bob.id).await, Code::NotFound)?;
    expect_code(
        desk.get_person_by(&rita_token, Key::Subject("bob".into()))
            .await,
        Code::NotFound,
    )?;

    // and lists, teams and other people's manager chains are not hers to read
    let lists = desk
        .api()
        .list_people(support::with_token(
            pb::ListPeopleRequest::default(),
            &rita_token,
        ))
        .await;
    expect_code(lists, Code::PermissionDenied)?;
    let teams = desk
        .api()
        .list_teams(support::with_token(
            pb::ListTeamsRequest::default(),
            &rita_token,
        ))
        .await;
    expect_code(teams, Code::PermissionDenied)?;
    let chain = desk
        .api()
        .get_manager_chain(support::with_token(
            pb::GetManagerChainRequest {
                person_id: alex.id.clone(),
            },
            &rita_token,
        ))
        .await;
    expect_code(chain, Code::NotFound)?;
    Ok(())
}

async fn staff_read_the_directory_with_email_and_phone(desk: TestDesk) -> anyhow::Result<()> {
    let admin = desk.admin();
    // given a requester with an e-mail and a phone
    let mut bob = person("bob", "Bob Requester");
    bob.email = "bob@example.com".into();
    bob.phone = "+62 21 555 0101".into();
    let bob = desk.create_person(&admin, bob).await?;

    // when an agent reads him and lists the tenant's people
    let agent = desk.agent();
    let read = desk
        .get_person(&agent, &bob.id)
        .await?
        .person
        .context("Bob")?;
    let listed = desk
        .api()
        .list_people(support::with_token(
            pb::ListPeopleRequest::default(),
            &agent,
        ))
        .await?
        .into_inner()
        .people;

    // then the agent sees him whole
    ensure!(!read.display_name_only);
    assert_eq!(
        (read.email.as_str(), read.phone.as_str()),
        ("bob@example.com", "+62 21 555 0101")
    );
    assert_eq!(listed, [read]);
    Ok(())
}

async fn only_admins_write_and_integrators_also_provision(desk: TestDesk) -> anyhow::Result<()> {
    // when an agent or an integrator creates a person or a team
    for token in [desk.agent(), desk.integrator(), desk.requester()] {
        expect_code(
            desk.create_person(&token, person("zed", "Zed")).await,
            Code::PermissionDenied,
        )?;
        expect_code(
            desk.create_team(&token, team("Shadow IT", "emea", &[]))
                .await,
            Code::PermissionDenied,
        )?;
    }

    // then nothing was written
    assert_eq!(desk.rows_in("directory_people").await?, 0);
    assert_eq!(desk.rows_in("directory_teams").await?, 0);

    // and an integrator provisions while an agent does not
    let people = vec![provisioned("e-1", "Ann")];
    expect_code(
        desk.stage(&desk.agent(), batch(people.clone(), false))
            .await,
        Code::PermissionDenied,
    )?;
    let staged = desk.stage(&desk.integrator(), batch(people, false)).await?;
    desk.commit(&desk.integrator(), &staged.id).await?;
    assert_eq!(desk.rows_in("directory_people").await?, 1);

    // and a refused caller learns nothing of a request's problems
    let bad = desk.create_person(&desk.agent(), person("", "")).await;
    expect_code(bad, Code::PermissionDenied)?;
    Ok(())
}

async fn another_tenants_people_and_teams_are_not_found(desk: TestDesk) -> anyhow::Result<()> {
    let admin = desk.admin();
    // given a person and a team of acme
    let ann = desk.create_person(&admin, person("ann", "Ann")).await?;
    let network = desk
        .create_team(&admin, team("Network", "emea", &[]))
        .await?;

    // when globex's admin reads or changes them
    let globex = desk.token("gus", OTHER_TENANT, &["admin"]);
    let read = desk.get_person(&globex, &ann.id).await;
    let by_subject = desk
        .get_person_by(&globex, Key::Subject("ann".into()))
        .await;
    let team_read = desk
        .api()
        .get_team(support::with_token(
            pb::GetTeamRequest {
                id: network.id.clone(),
            },
            &globex,
        ))
        .await;
    let changed = desk
        .update_person(
            &globex,
            pb::UpdatePersonRequest {
                id: ann.id.clone(),
                expected_version: ann.version,
                display_name: Some("Taken over".into()),
                ..Default::default()
            },
        )
        .await;

    // then acme's people and teams do not exist for globex
    expect_code(read, Code::NotFound)?;
    expect_code(by_subject, Code::NotFound)?;
    expect_code(team_read, Code::NotFound)?;
    expect_code(changed, Code::NotFound)?;

    // and globex may use the same subject and team name for its own
    desk.create_person(&globex, person("ann", "Globex Ann"))
        .await?;
    desk.create_team(&globex, team("Network", "emea", &[]))
        .await?;
    let acme_ann = desk
        .get_person(&admin, &ann.id)
        .await?
        .person
        .context("Ann")?;
    assert_eq!(acme_ann.display_name, "Ann");
    Ok(())
}
