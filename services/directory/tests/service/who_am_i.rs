//! `WhoAmI`: a person appears the first time they call, from their verified token's claims, and
//! follows the claims when they change.

use super::*;

on_both_backends!(
    a_person_is_created_from_the_token_claims_on_the_first_call_and_updated_when_they_change,
    claims_the_directory_cannot_keep_do_not_stop_the_first_call,
);

async fn a_person_is_created_from_the_token_claims_on_the_first_call_and_updated_when_they_change(
    desk: TestDesk,
) -> anyhow::Result<()> {
    // given a requester whose identity provider sends name, e-mail and locale claims
    let first = desk.token_with(
        "rita",
        TENANT,
        &["requester"],
        Claims {
            name: Some("Rita Requester"),
            email: Some("rita@Example.com"),
            locale: Some("sv_SE"),
        },
    );

    // when she calls for the first time
    let created = desk.who_am_i(&first).await?;

    // then her person is made from the claims, at version 1, as coming from her token
    ensure!(created.created, "the first call creates the person");
    let person = created.person.context("a person")?;
    assert_eq!(person.subject, "rita");
    assert_eq!(person.display_name, "Rita Requester");
    assert_eq!(person.email, "rita@example.com");
    assert_eq!(person.locale, "sv-SE");
    assert_eq!(person.source, "token");
    assert_eq!(person.version, 1);
    assert_eq!(person.status, pb::PersonStatus::Active as i32);

    // when she calls again with the same claims
    let again = desk.who_am_i(&first).await?;

    // then it is the same person, unchanged
    ensure!(!again.created, "the second call creates nothing");
    assert_eq!(again.person.as_ref(), Some(&person));

    // when her identity provider renames her and changes her locale
    let renamed = desk.token_with(
        "rita",
        TENANT,
        &["requester"],
        Claims {
            name: Some("Rita Andersson"),
            email: Some("rita@example.com"),
            locale: Some("en-GB"),
        },
    );
    let updated = desk.who_am_i(&renamed).await?.person.context("a person")?;

    // then the person follows, at the next version
    assert_eq!(updated.id, person.id);
    assert_eq!(updated.display_name, "Rita Andersson");
    assert_eq!(updated.locale, "en-GB");
    assert_eq!(updated.version, 2);

    // and a token without claims clears nothing
    let bare = desk.token("rita", TENANT, &["requester"]);
    let kept = desk.who_am_i(&bare).await?.person.context("a person")?;
    assert_eq!(kept, updated);

    // and each change was one event: created once, updated once, with what changed
    let created_events = desk.settled("person", "created").await?;
    assert_eq!(created_events.len(), 1, "one person.created");
    let body: pb::PersonCreated = created_events[0].decode()?;
    assert_eq!(body.source, "token");
    assert_eq!(body.person.map(|p| p.id), Some(person.id.clone()));
    let updated_events = desk.settled("person", "updated").await?;
    assert_eq!(updated_events.len(), 1, "one person.updated");
    let body: pb::PersonUpdated = updated_events[0].decode()?;
    let mut fields: Vec<_> = body.changes.iter().map(|c| c.field.as_str()).collect();
    fields.sort();
    assert_eq!(fields, ["display_name", "locale"]);
    assert_eq!(body.person.map(|p| p.version), Some(2));
    Ok(())
}

async fn claims_the_directory_cannot_keep_do_not_stop_the_first_call(
    desk: TestDesk,
) -> anyhow::Result<()> {
    // given an agent whose token has no name and an e-mail claim that is no address
    let token = desk.token_with(
        "00u1xyz",
        TENANT,
        &["agent"],
        Claims {
            name: None,
            email: Some("not an address"),
            locale: Some("klingon-tlh-xx"),
        },
    );

    // when they call for the first time
    let person = desk.who_am_i(&token).await?.person.context("a person")?;

    // then they get a person named by their subject, without the claims it could not keep
    assert_eq!(person.display_name, "00u1xyz");
    assert_eq!(person.email, "");
    assert_eq!(person.locale, "");
    Ok(())
}
