//! Each type's lifecycle through the API, and a forbidden step refused.

use desk_proto::change::v1::{self as pb, ChangeState};
use tonic::Code;

use crate::support::{TestDesk, refused, window};

on_both_backends!(
    a_standard_change_from_its_template_is_pre_approved_and_closes_when_implemented,
    a_normal_change_is_assessed_authorized_scheduled_implemented_reviewed_and_closed,
    an_emergency_change_goes_to_the_emergency_cab_and_is_reviewed_after_a_failure,
    a_forbidden_step_is_refused_and_changes_nothing,
);

async fn a_standard_change_from_its_template_is_pre_approved_and_closes_when_implemented(
    desk: TestDesk,
) -> anyhow::Result<()> {
    // Given a template and a CI
    let [_, web, ..] = desk.shop_estate().await?;
    let template = desk
        .api()
        .create_template(crate::support::with_token(
            pb::CreateTemplateRequest {
                template: Some(pb::ChangeTemplate {
                    name: "restart web".into(),
                    summary: "restart a web node".into(),
                    implementation_plan: "drain, restart, undrain".into(),
                    backout_plan: "undrain".into(),
                    test_plan: "health check".into(),
                    duration_minutes: 30,
                    ..Default::default()
                }),
            },
            &desk.manager(),
        ))
        .await?
        .into_inner()
        .template
        .ok_or_else(|| anyhow::anyhow!("no template"))?;
    // When a standard change is raised from it and submitted
    let change = desk
        .create(pb::CreateChangeRequest {
            r#type: pb::ChangeType::Standard as i32,
            template_id: template.id.clone(),
            affected_ci_ids: vec![web.clone()],
            planned_window: Some(window(2, 3)),
            ..Default::default()
        })
        .await?;
    assert_eq!(change.summary, "restart a web node");
    let change = desk.submit(&change).await?;
    // Then it is authorized at once, with its risk listed
    assert_eq!(change.state, ChangeState::Authorized as i32);
    assert!(change.risk.as_ref().is_some_and(|r| !r.factors.is_empty()));
    let change = desk.schedule(&change, None).await?;
    desk.advance(2)?;
    let change = desk.start(&change).await?;
    let change = desk.complete(&change, true).await?;
    assert_eq!(change.state, ChangeState::Closed as i32);
    desk.events("approved", 1).await?;
    desk.events("implemented", 1).await?;
    Ok(())
}

async fn a_normal_change_is_assessed_authorized_scheduled_implemented_reviewed_and_closed(
    desk: TestDesk,
) -> anyhow::Result<()> {
    let [_, web, ..] = desk.shop_estate().await?;
    let change = desk
        .create(crate::support::normal("upgrade web", &[&web], window(4, 6)))
        .await?;
    assert_eq!(change.state, ChangeState::Draft as i32);
    let change = desk.submit(&change).await?;
    assert_eq!(change.state, ChangeState::Assessment as i32);
    // No CAB rule in the policy: the assessment authorizes.
    let change = desk.assess(&change).await?;
    assert_eq!(change.state, ChangeState::Authorized as i32);
    let change = desk.schedule(&change, None).await?;
    assert_eq!(change.state, ChangeState::Scheduled as i32);
    desk.advance(4)?;
    let change = desk.start(&change).await?;
    assert_eq!(change.state, ChangeState::Implementing as i32);
    let change = desk.complete(&change, true).await?;
    assert_eq!(change.state, ChangeState::Review as i32);
    let change = desk.close(&change).await?;
    assert_eq!(change.state, ChangeState::Closed as i32);
    for event in [
        "created",
        "submitted",
        "assessed",
        "approved",
        "scheduled",
        "implemented",
        "closed",
    ] {
        desk.events(event, 1).await?;
    }
    Ok(())
}

async fn an_emergency_change_goes_to_the_emergency_cab_and_is_reviewed_after_a_failure(
    desk: TestDesk,
) -> anyhow::Result<()> {
    let [_, _, app, _] = desk.shop_estate().await?;
    desk.set_policy(pb::ChangePolicy {
        cab_rules: vec![pb::CabRule {
            emergency: true,
            group_id: "ecab".into(),
            member_ids: vec!["erin".into()],
            quorum: 1,
            ..Default::default()
        }],
        approval_validity_days: 7,
        incident_window_minutes: 60,
        ..Default::default()
    })
    .await?;
    let mut request = crate::support::normal("hotfix app", &[&app], window(1, 2));
    request.r#type = pb::ChangeType::Emergency as i32;
    let change = desk.create(request).await?;
    let change = desk.submit(&change).await?;
    assert_eq!(change.state, ChangeState::Authorization as i32);
    assert!(
        change
            .approval
            .as_ref()
            .is_some_and(|a| a.emergency && a.group_id == "ecab")
    );
    let change = desk.decide(&change, "erin", pb::Verdict::Approve).await?;
    assert_eq!(change.state, ChangeState::Authorized as i32);
    let change = desk.schedule(&change, None).await?;
    desk.advance(1)?;
    let change = desk.start(&change).await?;
    let change = desk.complete(&change, false).await?;
    assert_eq!(change.state, ChangeState::Review as i32);
    assert_eq!(change.outcome, pb::Outcome::Failed as i32);
    let change = desk.close(&change).await?;
    assert_eq!(change.state, ChangeState::Closed as i32);
    desk.events("failed", 1).await?;
    Ok(())
}

async fn a_forbidden_step_is_refused_and_changes_nothing(desk: TestDesk) -> anyhow::Result<()> {
    let [_, web, ..] = desk.shop_estate().await?;
    let change = desk
        .create(crate::support::normal("upgrade web", &[&web], window(4, 6)))
        .await?;
    // Starting a draft
    let status = refused(desk.start(&change).await, Code::FailedPrecondition)?;
    assert!(status.message().contains("draft"), "{}", status.message());
    // Scheduling before authorization
    refused(desk.schedule(&change, None).await, Code::FailedPrecondition)?;
    let after = desk.get(&change.id).await?;
    assert_eq!(after.version, change.version);
    assert_eq!(after.state, ChangeState::Draft as i32);
    Ok(())
}
