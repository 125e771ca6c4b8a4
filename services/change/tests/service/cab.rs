//! CAB approval: a quorum of members, someone not on the CAB, a second decision, an approval
//! that expires before the window.

use desk_proto::change::v1::{self as pb, ChangeState};
use tonic::Code;

use crate::support::{TestDesk, refused, window};

on_both_backends!(
    a_quorum_of_two_of_three_members_authorizes_the_change,
    an_approval_that_expires_before_the_window_blocks_scheduling,
);

fn cab_for_every_level(validity_days: u32) -> pb::ChangePolicy {
    let rule = |level: pb::RiskLevel| pb::CabRule {
        risk_level: level as i32,
        group_id: "team-cab".into(),
        member_ids: vec!["mia".into(), "noah".into(), "olga".into()],
        quorum: 2,
        emergency: false,
    };
    pb::ChangePolicy {
        cab_rules: vec![
            rule(pb::RiskLevel::Low),
            rule(pb::RiskLevel::Medium),
            rule(pb::RiskLevel::High),
        ],
        approval_validity_days: validity_days,
        incident_window_minutes: 60,
        ..Default::default()
    }
}

async fn a_quorum_of_two_of_three_members_authorizes_the_change(
    desk: TestDesk,
) -> anyhow::Result<()> {
    let [_, web, ..] = desk.shop_estate().await?;
    desk.set_policy(cab_for_every_level(30)).await?;
    let change = desk
        .authorized_normal("upgrade web", &[&web], window(24, 26))
        .await?;
    assert_eq!(change.state, ChangeState::Authorization as i32);
    // Someone not on the CAB cannot decide
    refused(
        desk.decide(&change, "zed", pb::Verdict::Approve).await,
        Code::PermissionDenied,
    )?;
    // The first approval is not enough
    let change = desk.decide(&change, "mia", pb::Verdict::Approve).await?;
    assert_eq!(change.state, ChangeState::Authorization as i32);
    // A second decision by the same member is refused, and nothing is recorded
    refused(
        desk.decide(&change, "mia", pb::Verdict::Reject).await,
        Code::FailedPrecondition,
    )?;
    assert_eq!(desk.get(&change.id).await?.version, change.version);
    // The second member's approval reaches the quorum
    let change = desk.decide(&change, "noah", pb::Verdict::Approve).await?;
    assert_eq!(change.state, ChangeState::Authorized as i32);
    let approval = change
        .approval
        .ok_or_else(|| anyhow::anyhow!("no approval"))?;
    assert_eq!(approval.decisions.len(), 2);
    assert!(approval.approve_time.is_some() && approval.expire_time.is_some());
    desk.events("decision_recorded", 2).await?;
    desk.events("approved", 1).await?;
    Ok(())
}

async fn an_approval_that_expires_before_the_window_blocks_scheduling(
    desk: TestDesk,
) -> anyhow::Result<()> {
    let [_, web, ..] = desk.shop_estate().await?;
    desk.set_policy(cab_for_every_level(1)).await?;
    // A window three days out, an approval valid one day
    let change = desk
        .authorized_normal("upgrade web", &[&web], window(72, 74))
        .await?;
    let change = desk.decide(&change, "mia", pb::Verdict::Approve).await?;
    let change = desk.decide(&change, "olga", pb::Verdict::Approve).await?;
    assert_eq!(change.state, ChangeState::Authorized as i32);
    let status = refused(desk.schedule(&change, None).await, Code::FailedPrecondition)?;
    assert!(status.message().contains("expires"), "{}", status.message());
    // A window inside the approval's life is scheduled
    let change = desk.schedule(&change, Some(window(10, 12))).await?;
    assert_eq!(change.state, ChangeState::Scheduled as i32);
    Ok(())
}
