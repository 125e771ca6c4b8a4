//! A risk score with its factors, from the CMDB's impact of the affected CIs.

use crate::support::{TestDesk, window};

on_both_backends!(
    a_change_on_a_host_that_a_critical_business_service_needs_is_scored_with_every_factor_named
);

async fn a_change_on_a_host_that_a_critical_business_service_needs_is_scored_with_every_factor_named(
    desk: TestDesk,
) -> anyhow::Result<()> {
    // Given the host the shop runs on, three relationships below it
    let [.., host] = desk.shop_estate().await?;
    // When a normal change on the host without a backout plan is assessed
    let mut request = crate::support::normal("replace the host's disks", &[&host], window(3, 5));
    request.backout_plan.clear();
    let change = desk.create(request).await?;
    let change = desk.submit(&change).await?;
    let change = desk.assess(&change).await?;
    // Then the score is the sum of its listed factors, and each says why
    let risk = change.risk.ok_or_else(|| anyhow::anyhow!("no risk"))?;
    let factor = |name: &str| risk.factors.iter().find(|f| f.name == name).cloned();
    let services =
        factor("business_services").ok_or_else(|| anyhow::anyhow!("no business_services"))?;
    assert_eq!(services.weight, 15);
    assert!(
        services.detail.contains("shop (critical)"),
        "{}",
        services.detail
    );
    assert_eq!(factor("backout_plan").map(|f| f.weight), Some(15));
    assert_eq!(factor("test_plan").map(|f| f.weight), Some(0));
    assert_eq!(factor("change_type").map(|f| f.weight), Some(5));
    assert_eq!(factor("ci_criticality").map(|f| f.weight), Some(5));
    assert_eq!(
        risk.score,
        risk.factors.iter().map(|f| f.weight).sum::<i32>()
    );
    assert_eq!(risk.score, 40);
    assert_eq!(risk.level, desk_proto::change::v1::RiskLevel::Medium as i32);
    desk.events("assessed", 1).await?;
    Ok(())
}
