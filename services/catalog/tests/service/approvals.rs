//! Approvals: a quorum of named approvers, a finance step only above a cost, decisions refused
//! to non-approvers and on requests not awaiting them, delegation while away, the approver's
//! list, and the requester cancelling before fulfillment.

use desk_proto::catalog::v1 as pb;
use tonic::Code;

use crate::support::{
    TestDesk, answer, expect_code, laptop, manual, number, people, state, step, text, with_token,
};

fn quorum(subjects: &[&str], n: i32) -> pb::ApprovalStep {
    let mut s = step("licence board", people(subjects), pb::ApprovalRule::Quorum);
    s.quorum = n;
    s
}

on_both_backends!(a_quorum_approves_at_its_count_and_refuses_those_who_may_not_decide);

async fn a_quorum_approves_at_its_count_and_refuses_those_who_may_not_decide(
    desk: TestDesk,
) -> anyhow::Result<()> {
    let offering = desk
        .create(laptop(
            vec![quorum(&["ann", "bob", "cid"], 2)],
            vec![vec![manual("order", "team-procurement")]],
        ))
        .await?;
    let requester = desk.requester("rita");
    let request = desk
        .submit_as(
            &requester,
            &offering.id,
            vec![answer("model", text("standard"))],
        )
        .await?;
    assert_eq!(state(&request), pb::RequestState::AwaitingApproval);

    // What waits for Ann.
    let waiting = desk
        .api()
        .list_my_approvals(with_token(
            pb::ListMyApprovalsRequest {},
            &desk.requester("ann"),
        ))
        .await?
        .into_inner()
        .requests;
    assert_eq!(
        waiting.iter().map(|r| &r.id).collect::<Vec<_>>(),
        [&request.id]
    );

    // Not an approver: refused — as a missing request to one who may not even read it, as
    // forbidden to an agent who may — and the request does not change.
    expect_code(
        desk.decide("eve", &request, 0, pb::Verdict::Approve).await,
        Code::NotFound,
    )?;
    expect_code(
        desk.api()
            .decide_approval(with_token(
                pb::DecideApprovalRequest {
                    request_id: request.id.clone(),
                    step: 0,
                    verdict: pb::Verdict::Approve as i32,
                    comment: String::new(),
                },
                &desk
                    .catalog
                    .token("andy", crate::support::TENANT, &["agent"]),
            ))
            .await,
        Code::PermissionDenied,
    )?;
    assert_eq!(
        desk.get(&requester, &request.id).await?.version,
        request.version
    );
    let after_one = desk.decide("ann", &request, 0, pb::Verdict::Reject).await?;
    assert_eq!(state(&after_one), pb::RequestState::AwaitingApproval);
    expect_code(
        desk.decide("ann", &request, 0, pb::Verdict::Approve).await,
        Code::FailedPrecondition,
    )?;
    desk.decide("bob", &request, 0, pb::Verdict::Approve)
        .await?;
    let approved = desk
        .decide("cid", &request, 0, pb::Verdict::Approve)
        .await?;
    assert_eq!(state(&approved), pb::RequestState::Fulfilling);
    assert_eq!(approved.approvals[0].decisions.len(), 3);
    assert_eq!(approved.approvals[0].decisions[1].comment, "bob decided");

    // No longer awaiting approval: a late decision is refused.
    expect_code(
        desk.decide("cid", &request, 0, pb::Verdict::Approve).await,
        Code::FailedPrecondition,
    )?;
    let decided: Vec<pb::ApprovalEvent> = desk
        .events_of("approval", "decided", &request.id, 3)
        .await?;
    assert_eq!(decided.len(), 3);
    let approved_events: Vec<pb::RequestEvent> = desk
        .events_of("request", "approved", &request.id, 1)
        .await?;
    assert_eq!(approved_events.len(), 1);
    Ok(())
}

on_both_backends!(the_finance_step_applies_only_when_the_cost_is_above_its_threshold);

async fn the_finance_step_applies_only_when_the_cost_is_above_its_threshold(
    desk: TestDesk,
) -> anyhow::Result<()> {
    let mut finance = step("finance", people(&["fiona"]), pb::ApprovalRule::Any);
    finance.when = Some(pb::Condition {
        field: "cost".into(),
        test: Some(pb::condition::Test::GreaterThan(2000.0)),
    });
    let offering = desk
        .create(laptop(
            vec![
                step("owner", people(&["olle"]), pb::ApprovalRule::Any),
                finance,
            ],
            vec![vec![manual("order", "team-procurement")]],
        ))
        .await?;
    let requester = desk.requester("rita");

    let cheap = desk
        .submit_as(
            &requester,
            &offering.id,
            vec![answer("model", text("standard"))],
        )
        .await?;
    let cheap = desk.decide("olle", &cheap, 0, pb::Verdict::Approve).await?;
    assert_eq!(state(&cheap), pb::RequestState::Fulfilling);
    assert_eq!(cheap.approvals[1].state, pb::ApprovalState::Skipped as i32);

    let dear = desk
        .submit_as(
            &requester,
            &offering.id,
            vec![
                answer("model", text("pro")),
                answer("justification", text("3D rendering")),
                answer("cost", number(3500.0)),
            ],
        )
        .await?;
    let dear = desk.decide("olle", &dear, 0, pb::Verdict::Approve).await?;
    assert_eq!(state(&dear), pb::RequestState::AwaitingApproval);
    assert_eq!(dear.approvals[1].state, pb::ApprovalState::Pending as i32);
    assert_eq!(dear.approvals[1].approvers, ["fiona"]);
    let rejected = desk.decide("fiona", &dear, 1, pb::Verdict::Reject).await?;
    assert_eq!(state(&rejected), pb::RequestState::Rejected);
    let events: Vec<pb::RequestEvent> = desk.events_of("request", "rejected", &dear.id, 1).await?;
    assert_eq!(events[0].note, "fiona decided");
    Ok(())
}

on_both_backends!(
    a_delegate_decides_for_an_approver_away_and_the_requester_cancels_before_fulfillment
);

async fn a_delegate_decides_for_an_approver_away_and_the_requester_cancels_before_fulfillment(
    desk: TestDesk,
) -> anyhow::Result<()> {
    let offering = desk
        .create(laptop(
            vec![step("owner", people(&["olle"]), pb::ApprovalRule::Any)],
            vec![vec![manual("order", "team-procurement")]],
        ))
        .await?;
    let requester = desk.requester("rita");
    let first = desk
        .submit_as(
            &requester,
            &offering.id,
            vec![answer("model", text("standard"))],
        )
        .await?;
    let start = crate::support::start_time();
    desk.api()
        .set_delegation(with_token(
            pb::SetDelegationRequest {
                to_subject: "dana".into(),
                start_time: None,
                end_time: Some(prost_types::Timestamp {
                    seconds: (start + chrono::Duration::days(7)).timestamp(),
                    nanos: 0,
                }),
            },
            &desk.requester("olle"),
        ))
        .await?;
    let waiting = desk
        .api()
        .list_my_approvals(with_token(
            pb::ListMyApprovalsRequest {},
            &desk.requester("dana"),
        ))
        .await?
        .into_inner()
        .requests;
    assert_eq!(waiting.len(), 1);
    let decided = desk.decide("dana", &first, 0, pb::Verdict::Approve).await?;
    assert_eq!(state(&decided), pb::RequestState::Fulfilling);
    let decision = &decided.approvals[0].decisions[0];
    assert_eq!(
        (decision.approver.as_str(), decision.decided_by.as_str()),
        ("olle", "dana")
    );

    // Fulfilling: too late to cancel.
    let cancel = |id: &str, token: &str| {
        let api = desk.api();
        let request = with_token(
            pb::CancelRequestRequest {
                id: id.into(),
                reason: "not needed".into(),
            },
            token,
        );
        async move { api.clone().cancel_request(request).await }
    };
    expect_code(
        cancel(&first.id, &requester).await,
        Code::FailedPrecondition,
    )?;

    let second = desk
        .submit_as(
            &requester,
            &offering.id,
            vec![answer("model", text("standard"))],
        )
        .await?;
    // Someone else's request answers as a missing one.
    expect_code(
        cancel(&second.id, &desk.requester("mallory")).await,
        Code::NotFound,
    )?;
    let cancelled = cancel(&second.id, &requester).await?.into_inner().request;
    assert_eq!(
        cancelled.map(|r| r.state),
        Some(pb::RequestState::Cancelled as i32)
    );
    let events: Vec<pb::RequestEvent> = desk
        .events_of("request", "cancelled", &second.id, 1)
        .await?;
    assert_eq!(events[0].note, "not needed");
    let mine = desk
        .api()
        .list_my_requests(with_token(pb::ListMyRequestsRequest::default(), &requester))
        .await?
        .into_inner()
        .requests;
    assert_eq!(
        mine.iter().map(|r| &r.id).collect::<Vec<_>>(),
        [&second.id, &first.id]
    );
    Ok(())
}
