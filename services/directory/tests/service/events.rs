//! Every change is one CloudEvent on the directory's stream, with the contract's attributes and
//! the aggregate after the change as its protobuf body; a call that changes nothing publishes
//! nothing.

use super::*;

on_both_backends!(every_change_is_one_cloudevent_and_no_change_is_none);

async fn every_change_is_one_cloudevent_and_no_change_is_none(
    desk: TestDesk,
) -> anyhow::Result<()> {
    let admin = desk.admin();
    // given one change of every kind, made through the API
    let alex = desk
        .create_person(&admin, person("alex", "Alex Agent"))
        .await?;
    let alex = desk
        .update_person(
            &admin,
            pb::UpdatePersonRequest {
                id: alex.id.clone(),
                expected_version: alex.version,
                time_zone: Some("Europe/Stockholm".into()),
                ..Default::default()
            },
        )
        .await?;
    let alex = desk
        .set_agent_profile(
            &admin,
            &alex,
            Some(pb::AgentProfile {
                skills: vec![pb::Skill {
                    name: "networking".into(),
                    level: 4,
                }],
                languages: vec!["en".into(), "sv".into()],
                capacity: 6,
            }),
        )
        .await?;
    let network = desk
        .create_team(&admin, team("Network", "emea", &["networking"]))
        .await?;
    let network = desk
        .update_team(
            &admin,
            pb::UpdateTeamRequest {
                id: network.id.clone(),
                expected_version: network.version,
                tier: pb::SupportTier::SecondLine as i32,
                ..Default::default()
            },
        )
        .await?;
    desk.add_member(&admin, &network, &alex, pb::MembershipRole::Member)
        .await?;
    desk.add_member(&admin, &network, &alex, pb::MembershipRole::Lead)
        .await?;
    let unchanged = desk
        .add_member(&admin, &network, &alex, pb::MembershipRole::Lead)
        .await?;
    assert_eq!(
        unchanged.version, 2,
        "the same membership again changes nothing"
    );
    desk.set_presence(&desk.agent(), pb::PresenceStatus::Available, 300)
        .await?;
    desk.api()
        .remove_membership(support::with_token(
            pb::RemoveMembershipRequest {
                team_id: network.id.clone(),
                person_id: alex.id.clone(),
            },
            &admin,
        ))
        .await?;
    let deactivated = desk
        .api()
        .deactivate_person(support::with_token(
            pb::DeactivatePersonRequest {
                id: alex.id.clone(),
                expected_version: alex.version,
                reason: "left the company".into(),
            },
            &admin,
        ))
        .await?
        .into_inner();
    desk.api()
        .retire_team(support::with_token(
            pb::RetireTeamRequest {
                id: network.id.clone(),
                expected_version: network.version,
                reason: "merged into Infrastructure".into(),
            },
            &admin,
        ))
        .await?;

    // and calls that change nothing: the same member again, an update to the same value
    let bo = desk.create_person(&admin, person("bo", "Bo")).await?;
    let same = desk
        .update_person(
            &admin,
            pb::UpdatePersonRequest {
                id: bo.id.clone(),
                expected_version: bo.version,
                display_name: Some("Bo".into()),
                ..Default::default()
            },
        )
        .await?;
    assert_eq!(same.version, bo.version);

    // when the relay has published everything
    let events = desk.settled_events().await?;

    // then each change is one event, in the order they were made
    assert_eq!(
        types_of(&events),
        [
            "desk.directory.person.created.v1",
            "desk.directory.person.updated.v1",
            "desk.directory.person.updated.v1",
            "desk.directory.team.created.v1",
            "desk.directory.team.updated.v1",
            "desk.directory.membership.added.v1",
            "desk.directory.membership.added.v1",
            "desk.directory.presence.changed.v1",
            "desk.directory.membership.removed.v1",
            "desk.directory.person.deactivated.v1",
            "desk.directory.team.retired.v1",
            "desk.directory.person.created.v1",
        ]
    );

    // and each is a CloudEvent in binary mode on the tenant's subject, for its aggregate
    let first = &events[0];
    let header = |event: &support::Event, name: &str| {
        event
            .header(name)
            .with_context(|| format!("no {name} header"))
    };
    assert_eq!(first.subject, "desk.test.directory.acme.person.created");
    assert_eq!(header(first, "ce-specversion")?, "1.0");
    assert_eq!(header(first, "ce-source")?, "/desk/test/directory");
    assert_eq!(header(first, "ce-subject")?, alex.id);
    assert_eq!(header(first, "ce-tenant")?, TENANT);
    assert_eq!(header(first, "Nats-Msg-Id")?, header(first, "ce-id")?);
    assert_eq!(header(first, "Content-Type")?, "application/protobuf");

    // and the bodies carry the aggregate after the change, with its version
    let promoted: pb::MembershipAdded = events[6].decode()?;
    let membership = promoted.membership.context("a membership")?;
    assert_eq!(membership.role, pb::MembershipRole::Lead as i32);
    assert_eq!(membership.version, 2);
    assert_eq!(promoted.previous_role, pb::MembershipRole::Member as i32);
    assert_eq!(membership.team_name, "Network");
    let gone: pb::PersonDeactivated = events[9].decode()?;
    assert_eq!(gone.person, deactivated.person);
    assert_eq!(gone.reason, "left the company");
    assert_eq!(gone.actor.map(|a| a.subject), Some("ada".to_owned()));
    let retired: pb::TeamRetired = events[10].decode()?;
    assert_eq!(
        retired.team.map(|t| (t.status, t.version)),
        Some((pb::TeamStatus::Retired as i32, network.version + 1))
    );
    let profile: pb::PersonUpdated = events[2].decode()?;
    let fields: Vec<_> = profile.changes.iter().map(|c| c.field.as_str()).collect();
    assert_eq!(
        fields,
        ["agent.skills", "agent.languages", "agent.capacity"]
    );
    Ok(())
}
