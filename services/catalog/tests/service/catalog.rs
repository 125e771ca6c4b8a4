//! The catalog: every save is a new version and a request keeps the one it was made against;
//! visibility by role and group, a hidden offering answering as a missing one.

use desk_proto::catalog::v1 as pb;
use tonic::Code;

use crate::support::{TestDesk, answer, expect_code, laptop, text, with_token};

on_both_backends!(a_request_keeps_the_version_it_was_made_against);

async fn a_request_keeps_the_version_it_was_made_against(desk: TestDesk) -> anyhow::Result<()> {
    let offering = desk.create(laptop(vec![], vec![])).await?;
    assert_eq!(offering.version, 1);
    let requester = desk.requester("rita");
    let before = desk
        .submit_as(
            &requester,
            &offering.id,
            vec![answer("model", text("standard"))],
        )
        .await?;

    // Version 2 adds a third model.
    let mut definition = laptop(vec![], vec![]);
    if let Some(form) = definition.form.as_mut() {
        form.fields[0].choices.push("ultra".into());
    }
    let updated = desk
        .api()
        .update_offering(with_token(
            pb::UpdateOfferingRequest {
                id: offering.id.clone(),
                expected_version: 1,
                definition: Some(definition.clone()),
            },
            &desk.admin(),
        ))
        .await?
        .into_inner()
        .offering
        .ok_or_else(|| anyhow::anyhow!("no offering answered"))?;
    assert_eq!(updated.version, 2);
    // A stale version is refused.
    expect_code(
        desk.api()
            .update_offering(with_token(
                pb::UpdateOfferingRequest {
                    id: offering.id.clone(),
                    expected_version: 1,
                    definition: Some(definition),
                },
                &desk.admin(),
            ))
            .await,
        Code::Aborted,
    )?;

    let after = desk
        .submit_as(
            &requester,
            &offering.id,
            vec![answer("model", text("ultra"))],
        )
        .await?;
    assert_eq!(before.offering_version, 1);
    assert_eq!(after.offering_version, 2);
    assert_eq!(desk.get(&requester, &before.id).await?.offering_version, 1);

    // Submitting against the form of version 1 now is refused: the form changed.
    expect_code(
        desk.api()
            .submit_request(with_token(
                pb::SubmitRequestRequest {
                    offering_id: offering.id.clone(),
                    offering_version: 1,
                    answers: vec![answer("model", text("standard"))],
                    idempotency_key: String::new(),
                },
                &requester,
            ))
            .await,
        Code::FailedPrecondition,
    )?;

    // Version 1 stays readable as it was.
    let first = desk
        .api()
        .get_offering(with_token(
            pb::GetOfferingRequest {
                id: offering.id.clone(),
                version: 1,
            },
            &requester,
        ))
        .await?
        .into_inner()
        .offering
        .ok_or_else(|| anyhow::anyhow!("no offering answered"))?;
    let choices = first
        .definition
        .and_then(|d| d.form)
        .map(|f| f.fields[0].choices.clone());
    assert_eq!(choices, Some(vec!["standard".to_owned(), "pro".to_owned()]));
    // Two requests so far: the popularity counts them.
    let current = desk
        .api()
        .get_offering(with_token(
            pb::GetOfferingRequest {
                id: offering.id.clone(),
                version: 0,
            },
            &requester,
        ))
        .await?
        .into_inner()
        .offering
        .ok_or_else(|| anyhow::anyhow!("no offering answered"))?;
    assert_eq!((current.version, current.popularity), (2, 2));
    Ok(())
}

on_both_backends!(an_offering_is_seen_and_requested_only_by_its_roles_and_groups);

async fn an_offering_is_seen_and_requested_only_by_its_roles_and_groups(
    desk: TestDesk,
) -> anyhow::Result<()> {
    let open = desk.create(laptop(vec![], vec![])).await?;
    let mut hr_only = laptop(vec![], vec![]);
    hr_only.name = crate::support::en("Payroll access");
    hr_only.visibility = Some(pb::Visibility {
        roles: vec!["manager".into()],
        group_ids: vec!["team-hr".into()],
    });
    let hidden = desk.create(hr_only).await?;

    let outsider = desk.requester("rita");
    let hr = desk.member_of("hanna", &["requester"], &["team-hr"]);
    let manager = desk.member_of("mo", &["manager"], &[]);
    let listed = |token: String| {
        let api = desk.api();
        async move {
            let offerings = api
                .clone()
                .list_offerings(with_token(pb::ListOfferingsRequest::default(), &token))
                .await?
                .into_inner()
                .offerings;
            anyhow::Ok(offerings.into_iter().map(|o| o.id).collect::<Vec<_>>())
        }
    };
    assert_eq!(listed(outsider.clone()).await?, vec![open.id.clone()]);
    let mut seen = listed(hr.clone()).await?;
    seen.sort();
    let mut both = vec![open.id.clone(), hidden.id.clone()];
    both.sort();
    assert_eq!(seen, both);
    assert_eq!(listed(manager).await?.len(), 2);

    // The outsider can neither read nor request it: it answers as a missing offering.
    expect_code(
        desk.api()
            .get_offering(with_token(
                pb::GetOfferingRequest {
                    id: hidden.id.clone(),
                    version: 0,
                },
                &outsider,
            ))
            .await,
        Code::NotFound,
    )?;
    expect_code(
        desk.submit_as(
            &outsider,
            &hidden.id,
            vec![answer("model", text("standard"))],
        )
        .await,
        Code::NotFound,
    )?;
    desk.submit_as(&hr, &hidden.id, vec![answer("model", text("standard"))])
        .await?;
    // Only catalog admins manage the catalog.
    expect_code(
        desk.api()
            .create_offering(with_token(
                pb::CreateOfferingRequest {
                    definition: Some(laptop(vec![], vec![])),
                },
                &hr,
            ))
            .await,
        Code::PermissionDenied,
    )?;
    Ok(())
}
