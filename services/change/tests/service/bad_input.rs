//! Bad input: windows that end before they start or lie in the past, unknown CIs; nothing is
//! written.

use desk_proto::change::v1 as pb;

use crate::support::{TestDesk, expect_violations, window};

on_both_backends!(
    windows_that_end_before_they_start_or_lie_in_the_past_and_unknown_cis_are_refused
);

async fn windows_that_end_before_they_start_or_lie_in_the_past_and_unknown_cis_are_refused(
    desk: TestDesk,
) -> anyhow::Result<()> {
    let [_, web, ..] = desk.shop_estate().await?;
    let backwards = crate::support::normal("x", &[&web], window(5, 4));
    expect_violations(desk.create(backwards).await, &["planned_window.end_time"])?;
    let past = crate::support::normal("x", &[&web], window(-5, -4));
    expect_violations(desk.create(past).await, &["planned_window.start_time"])?;
    let unknown = format!("{}-{}", crate::support::REGION, uuid::Uuid::new_v4());
    let nowhere = crate::support::normal("x", &[&unknown], window(5, 6));
    expect_violations(desk.create(nowhere).await, &["affected_ci_ids[0]"])?;
    let untyped = pb::CreateChangeRequest {
        summary: "x".into(),
        ..Default::default()
    };
    expect_violations(desk.create(untyped).await, &["type"])?;
    assert_eq!(desk.change.rows_in("change_changes").await?, 0);
    assert_eq!(desk.change.rows_in("change_outbox").await?, 0);
    Ok(())
}

on_both_backends!(a_retried_create_with_the_same_key_answers_the_first_change);

async fn a_retried_create_with_the_same_key_answers_the_first_change(
    desk: TestDesk,
) -> anyhow::Result<()> {
    let [_, web, ..] = desk.shop_estate().await?;
    let mut request = crate::support::normal("upgrade web", &[&web], window(5, 6));
    request.idempotency_key = "retry-1".into();
    let first = desk.create(request.clone()).await?;
    let again = desk.create(request.clone()).await?;
    assert_eq!(again.id, first.id);
    request.summary = "something else".into();
    crate::support::expect_code(desk.create(request).await, tonic::Code::AlreadyExists)?;
    assert_eq!(desk.change.rows_in("change_changes").await?, 1);
    Ok(())
}
