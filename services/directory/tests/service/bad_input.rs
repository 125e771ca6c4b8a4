//! Bad input is `INVALID_ARGUMENT` with a field violation each, and nothing is written: malformed
//! e-mail addresses, unknown locales and time zones, capacities below zero, unknown skills when
//! the tenant keeps a skill list.

use super::*;

on_both_backends!(
    a_person_with_a_bad_email_locale_and_time_zone_is_refused_with_a_violation_each,
    a_negative_capacity_and_an_unknown_skill_are_refused_when_the_tenant_keeps_a_list,
    a_team_with_an_unknown_time_zone_or_skill_is_refused,
);

async fn a_person_with_a_bad_email_locale_and_time_zone_is_refused_with_a_violation_each(
    desk: TestDesk,
) -> anyhow::Result<()> {
    let admin = desk.admin();
    // given a person with a malformed e-mail, an unknown locale and an unknown time zone
    let mut wanted = person("ann", "Ann");
    wanted.email = "ann@localhost".into();
    wanted.locale = "xx-invalid-locale".into();
    wanted.time_zone = "Europe/Atlantis".into();

    // when an admin creates them
    let result = desk.create_person(&admin, wanted).await;

    // then each is a violation, and nothing is written or published
    let fields = expect_violations(result, &["email", "locale", "time_zone"])?;
    assert_eq!(fields.len(), 3, "{fields:?}");
    assert_eq!(desk.rows_in("directory_people").await?, 0);
    assert!(desk.settled_events().await?.is_empty());

    // and an update with the same values is refused the same way
    let ann = desk.create_person(&admin, person("ann", "Ann")).await?;
    let update = desk
        .update_person(
            &admin,
            pb::UpdatePersonRequest {
                id: ann.id.clone(),
                expected_version: ann.version,
                email: Some("ann at example.com".into()),
                time_zone: Some("CEST+2".into()),
                display_name: Some("   ".into()),
                ..Default::default()
            },
        )
        .await;
    expect_violations(update, &["email", "time_zone", "display_name"])?;
    let read = desk
        .get_person(&admin, &ann.id)
        .await?
        .person
        .context("Ann")?;
    assert_eq!(read.version, ann.version);
    Ok(())
}

async fn a_negative_capacity_and_an_unknown_skill_are_refused_when_the_tenant_keeps_a_list(
    desk: TestDesk,
) -> anyhow::Result<()> {
    let admin = desk.admin();
    let alex = desk.create_person(&admin, person("alex", "Alex")).await?;
    let profile = |capacity: i32, skill: &str| pb::AgentProfile {
        skills: vec![pb::Skill {
            name: skill.into(),
            level: 3,
        }],
        languages: vec!["en".into()],
        capacity,
    };

    // when an agent's capacity is below zero
    let negative = desk
        .set_agent_profile(&admin, &alex, Some(profile(-1, "cobol")))
        .await;

    // then it is refused on agent.capacity
    expect_violations(negative, &["agent.capacity"])?;

    // and any skill name is accepted while the tenant keeps no skill list
    let alex = desk
        .set_agent_profile(&admin, &alex, Some(profile(4, "cobol")))
        .await?;

    // when the tenant keeps a list without cobol
    desk.api()
        .set_skill_catalog(support::with_token(
            pb::SetSkillCatalogRequest {
                skills: vec![pb::SkillDefinition {
                    name: "networking".into(),
                    description: "LAN, WAN, VPN".into(),
                }],
                expected_version: 0,
            },
            &admin,
        ))
        .await?;
    let unknown = desk
        .set_agent_profile(&admin, &alex, Some(profile(4, "sap-fi")))
        .await;

    // then an unknown skill is refused on its name, and a known one is accepted
    expect_violations(unknown, &["agent.skills[0].name"])?;
    let read = desk
        .get_person(&admin, &alex.id)
        .await?
        .person
        .context("Alex")?;
    assert_eq!(read.version, alex.version, "nothing written");
    let known = desk
        .set_agent_profile(&admin, &alex, Some(profile(4, "networking")))
        .await?;
    assert_eq!(
        known.agent.map(|a| a.skills[0].name.clone()).as_deref(),
        Some("networking")
    );
    Ok(())
}

async fn a_team_with_an_unknown_time_zone_or_skill_is_refused(
    desk: TestDesk,
) -> anyhow::Result<()> {
    let admin = desk.admin();
    desk.api()
        .set_skill_catalog(support::with_token(
            pb::SetSkillCatalogRequest {
                skills: vec![pb::SkillDefinition {
                    name: "networking".into(),
                    description: String::new(),
                }],
                expected_version: 0,
            },
            &admin,
        ))
        .await?;
    // given a team in an unknown time zone, with a skill the list does not know, in follow-the-sun
    let mut wanted = team("Night shift", "apac", &["networking", "telepathy"]);
    wanted.time_zone = "Asia/Atlantis".into();
    wanted.follow_the_sun = true;

    // when an admin creates it
    let result = desk.create_team(&admin, wanted).await;

    // then each is a violation, and nothing is written
    expect_violations(result, &["time_zone", "skills[1]"])?;
    assert_eq!(desk.rows_in("directory_teams").await?, 0);
    Ok(())
}
