//! Expiry on a controlled clock: a reminder, then the step expires and is escalated, then the
//! escalation expires too and the request is rejected.

use desk_proto::catalog::v1 as pb;

use crate::support::{TestDesk, answer, laptop, people, state, step, text};

on_both_backends!(an_unanswered_approval_is_reminded_escalated_then_rejected);

async fn an_unanswered_approval_is_reminded_escalated_then_rejected(
    desk: TestDesk,
) -> anyhow::Result<()> {
    let mut owner = step("owner", people(&["olle"]), pb::ApprovalRule::Any);
    owner.remind_after_minutes = 60;
    owner.expire_after_minutes = 120;
    owner.escalate_to = Some(people(&["cio"]));
    let offering = desk.create(laptop(vec![owner], vec![])).await?;
    let requester = desk.requester("rita");
    let request = desk
        .submit_as(
            &requester,
            &offering.id,
            vec![answer("model", text("standard"))],
        )
        .await?;

    desk.advance_minutes(61)?;
    let reminders: Vec<pb::ApprovalEvent> = desk
        .events_of("approval", "requested", &request.id, 2)
        .await?;
    assert!(reminders[1].reminder);

    desk.advance_minutes(60)?;
    let escalated = desk
        .eventually(&requester, &request.id, |r| r.approvals[0].escalated)
        .await?;
    assert_eq!(escalated.approvals[0].approvers, ["cio"]);
    assert_eq!(state(&escalated), pb::RequestState::AwaitingApproval);
    let expired: Vec<pb::ApprovalEvent> = desk
        .events_of("approval", "expired", &request.id, 1)
        .await?;
    assert!(expired[0].escalated);

    desk.advance_minutes(121)?;
    let rejected = desk
        .eventually(&requester, &request.id, |r| {
            state(r) == pb::RequestState::Rejected
        })
        .await?;
    assert_eq!(
        rejected.approvals[0].state,
        pb::ApprovalState::Expired as i32
    );
    let expired: Vec<pb::ApprovalEvent> = desk
        .events_of("approval", "expired", &request.id, 2)
        .await?;
    assert!(!expired[1].escalated);
    Ok(())
}
