//! Approvers from the directory: the requester's manager, then a team with a quorum, both
//! resolved from the directory's own `person.*` and `membership.*` events.

use desk_proto::catalog::v1 as pb;

use crate::support::{TestDesk, answer, laptop, manual, state, step, text};

on_both_backends!(with directory: the_manager_then_a_team_quorum_approve_from_the_directory);

async fn the_manager_then_a_team_quorum_approve_from_the_directory(
    desk: TestDesk,
) -> anyhow::Result<()> {
    let boss = desk.person("bea", "").await?;
    desk.person("rita", &boss).await?;
    let ann = desk.person("ann", "").await?;
    let bob = desk.person("bob", "").await?;
    let cid = desk.person("cid", "").await?;
    let board = desk.team("Licence board", &[&ann, &bob, &cid]).await?;
    desk.projected(5, 3).await?;

    let mut team = step(
        "licence board",
        pb::Approvers {
            kind: pb::ApproverKind::Group as i32,
            group_id: board.clone(),
            subjects: Vec::new(),
        },
        pb::ApprovalRule::Quorum,
    );
    team.quorum = 2;
    let manager = step(
        "manager",
        pb::Approvers {
            kind: pb::ApproverKind::Manager as i32,
            ..Default::default()
        },
        pb::ApprovalRule::Any,
    );
    let offering = desk
        .create(laptop(
            vec![manager, team],
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
    assert_eq!(request.approvals[0].approvers, ["bea"]);
    let requested: Vec<pb::ApprovalEvent> = desk
        .events_of("approval", "requested", &request.id, 1)
        .await?;
    assert_eq!(
        requested[0].approval.as_ref().map(|a| a.approvers.clone()),
        Some(vec!["bea".to_owned()])
    );

    let request = desk
        .decide("bea", &request, 0, pb::Verdict::Approve)
        .await?;
    let mut members = request.approvals[1].approvers.clone();
    members.sort();
    assert_eq!(members, ["ann", "bob", "cid"]);
    assert_eq!(request.approvals[1].needed, 2);
    desk.decide("cid", &request, 1, pb::Verdict::Approve)
        .await?;
    let request = desk
        .decide("ann", &request, 1, pb::Verdict::Approve)
        .await?;
    assert_eq!(state(&request), pb::RequestState::Fulfilling);
    Ok(())
}

on_both_backends!(with directory: a_requester_without_a_manager_in_the_directory_is_rejected_with_a_reason);

async fn a_requester_without_a_manager_in_the_directory_is_rejected_with_a_reason(
    desk: TestDesk,
) -> anyhow::Result<()> {
    desk.person("rita", "").await?;
    desk.projected(1, 0).await?;
    let manager = step(
        "manager",
        pb::Approvers {
            kind: pb::ApproverKind::Manager as i32,
            ..Default::default()
        },
        pb::ApprovalRule::Any,
    );
    let offering = desk.create(laptop(vec![manager], vec![])).await?;
    let request = desk
        .submit_as(
            &desk.requester("rita"),
            &offering.id,
            vec![answer("model", text("standard"))],
        )
        .await?;
    assert_eq!(state(&request), pb::RequestState::Rejected);
    let events: Vec<pb::RequestEvent> = desk
        .events_of("request", "rejected", &request.id, 1)
        .await?;
    assert!(events[0].note.contains("no approver"), "{}", events[0].note);
    Ok(())
}
