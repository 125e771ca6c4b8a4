//! Forms: a schema whose conditions name unknown fields or form a cycle is refused when saved;
//! answers that do not fit are refused with one violation per field; nothing is written.

use desk_proto::catalog::v1 as pb;

use crate::support::{TestDesk, answer, expect_violations, laptop, number, text};

on_both_backends!(a_schema_with_an_unknown_reference_or_a_cycle_is_refused_when_saved);

async fn a_schema_with_an_unknown_reference_or_a_cycle_is_refused_when_saved(
    desk: TestDesk,
) -> anyhow::Result<()> {
    let mut unknown = laptop(vec![], vec![]);
    if let Some(form) = unknown.form.as_mut() {
        form.fields[1].visible_when = Some(pb::Condition {
            field: "colour".into(),
            test: Some(pb::condition::Test::Present(true)),
        });
    }
    expect_violations(
        desk.create(unknown).await,
        &["definition.form.fields[1].visible_when"],
    )?;

    let mut cycle = laptop(vec![], vec![]);
    if let Some(form) = cycle.form.as_mut() {
        form.fields[0].visible_when = Some(pb::Condition {
            field: "cost".into(),
            test: Some(pb::condition::Test::Present(true)),
        });
        form.fields[2].visible_when = Some(pb::Condition {
            field: "justification".into(),
            test: Some(pb::condition::Test::Present(true)),
        });
    }
    expect_violations(desk.create(cycle).await, &["definition.form.fields"])?;
    assert_eq!(desk.catalog.rows_in("catalog_offerings").await?, 0);
    assert_eq!(desk.catalog.rows_in("catalog_offering_versions").await?, 0);
    Ok(())
}

on_both_backends!(
    answers_that_do_not_fit_are_refused_one_violation_per_field_and_nothing_is_written
);

async fn answers_that_do_not_fit_are_refused_one_violation_per_field_and_nothing_is_written(
    desk: TestDesk,
) -> anyhow::Result<()> {
    let offering = desk.create(laptop(vec![], vec![])).await?;
    let requester = desk.requester("rita");
    // The justification is hidden for the standard model; the cost is out of range; "colour" is
    // not a field.
    let violated = expect_violations(
        desk.submit_as(
            &requester,
            &offering.id,
            vec![
                answer("model", text("standard")),
                answer("justification", text("answered while hidden")),
                answer("cost", number(9000.0)),
                answer("colour", text("red")),
            ],
        )
        .await,
        &["answers.justification", "answers.cost", "answers.colour"],
    )?;
    assert_eq!(violated.len(), 3, "{violated:?}");

    // Shown by the condition, the justification becomes required; a wrong type is refused.
    let violated = expect_violations(
        desk.submit_as(
            &requester,
            &offering.id,
            vec![answer("model", text("pro")), answer("cost", text("cheap"))],
        )
        .await,
        &["answers.justification", "answers.cost"],
    )?;
    assert_eq!(violated.len(), 2, "{violated:?}");
    assert_eq!(desk.catalog.rows_in("catalog_requests").await?, 0);
    assert_eq!(desk.catalog.rows_in("catalog_outbox").await?, 0);

    // Answered as the schema asks, with the default cost filled in.
    let request = desk
        .submit_as(
            &requester,
            &offering.id,
            vec![
                answer("model", text("pro")),
                answer("justification", text("video editing")),
            ],
        )
        .await?;
    let cost = request.answers.iter().find(|a| a.field == "cost");
    assert_eq!(cost.and_then(|a| a.value.clone()), Some(number(900.0)));
    Ok(())
}

on_both_backends!(a_retried_submit_with_the_same_key_answers_the_first_request);

async fn a_retried_submit_with_the_same_key_answers_the_first_request(
    desk: TestDesk,
) -> anyhow::Result<()> {
    let offering = desk.create(laptop(vec![], vec![])).await?;
    let submit = pb::SubmitRequestRequest {
        offering_id: offering.id.clone(),
        offering_version: 0,
        answers: vec![answer("model", text("standard"))],
        idempotency_key: "retry-1".into(),
    };
    let token = desk.requester("rita");
    let first = desk
        .api()
        .submit_request(crate::support::with_token(submit.clone(), &token))
        .await?
        .into_inner();
    let again = desk
        .api()
        .submit_request(crate::support::with_token(submit, &token))
        .await?
        .into_inner();
    assert_eq!(first.request.map(|r| r.id), again.request.map(|r| r.id));
    assert_eq!(desk.catalog.rows_in("catalog_requests").await?, 1);
    Ok(())
}
