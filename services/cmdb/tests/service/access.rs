//! Access by role, tenants apart.

use super::*;

on_both_backends!(readers_cannot_write_requesters_cannot_read_and_tenants_are_isolated);

async fn readers_cannot_write_requesters_cannot_read_and_tenants_are_isolated(
    desk: TestDesk,
) -> anyhow::Result<()> {
    let admin = desk.admin();
    let ci = desk
        .create_ci(
            &admin,
            new_ci("server", "web-01", [("serial_number", text("SN-1"))]),
        )
        .await?;
    let staged = desk
        .stage(
            &admin,
            pb::StageImportRequest {
                source: "sccm".into(),
                items: vec![item("a", "server", "web-02", [])],
                ..Default::default()
            },
        )
        .await?;

    // given every reading role, then each may read
    for role in [
        "agent",
        "manager",
        "change_manager",
        "cab_member",
        "integrator",
        "configuration_manager",
        "admin",
    ] {
        let token = desk.token(&format!("{role}-1"), TENANT, &[role]);
        let read = desk
            .get_ci(&token, &ci.id)
            .await
            .with_context(|| format!("{role} reading a CI"))?;
        assert_eq!(read.id, ci.id);
        desk.impact(&token, impact_request(&[&ci.id], ImpactDirection::Upstream))
            .await
            .with_context(|| format!("{role} analysing impact"))?;
        desk.get_import(&token, &staged.id)
            .await
            .with_context(|| format!("{role} reading an import"))?;
    }
    // and a token whose tenant claim is not a tenant id is refused, not taken for another tenant
    for tenant in ["Acme", "acme ", "ac.me"] {
        let token = desk.token("ada", tenant, &["admin"]);
        expect_code(desk.get_ci(&token, &ci.id).await, Code::Unauthenticated)
            .with_context(|| format!("tenant claim {tenant:?}"))?;
    }
    // and a configuration manager may write
    let manager = desk.token("cm-1", TENANT, &["configuration_manager"]);
    desk.create_ci(&manager, new_ci("server", "web-03", []))
        .await?;

    // when an agent tries to change the CMDB, then they are denied and nothing changes
    let agent = desk.agent();
    expect_code(
        desk.create_ci(&agent, new_ci("server", "web-04", [])).await,
        Code::PermissionDenied,
    )?;
    expect_code(
        desk.stage(
            &agent,
            pb::StageImportRequest {
                source: "sccm".into(),
                items: vec![item("a", "server", "web-05", [])],
                ..Default::default()
            },
        )
        .await,
        Code::PermissionDenied,
    )?;
    let update = pb::UpdateCiRequest {
        id: ci.id.clone(),
        expected_version: 1,
        location: Some("DC9".into()),
        ..Default::default()
    };
    expect_code(
        desk.update_ci(&agent, update.clone()).await,
        Code::PermissionDenied,
    )?;
    expect_code(
        desk.retire_ci(&agent, &ci, "no").await,
        Code::PermissionDenied,
    )?;
    expect_code(
        desk.relate(&agent, &ci.id, Rel::DependsOn, &ci.id).await,
        Code::PermissionDenied,
    )?;
    expect_code(
        desk.commit(&agent, &staged.id).await,
        Code::PermissionDenied,
    )?;
    expect_code(
        desk.discard(&agent, &staged.id).await,
        Code::PermissionDenied,
    )?;
    assert_eq!(desk.get_ci(&admin, &ci.id).await?, ci);
    assert_eq!(desk.total(&admin).await?, 2);

    // when a requester tries to read it, then they are denied
    let requester = desk.requester();
    expect_code(
        desk.get_ci(&requester, &ci.id).await,
        Code::PermissionDenied,
    )?;
    expect_code(
        desk.list_cis(&requester, pb::ListCisRequest::default())
            .await,
        Code::PermissionDenied,
    )?;
    expect_code(
        desk.impact(
            &requester,
            impact_request(&[&ci.id], ImpactDirection::Upstream),
        )
        .await,
        Code::PermissionDenied,
    )?;
    expect_code(
        desk.list_imports(&requester, ImportState::Unspecified)
            .await,
        Code::PermissionDenied,
    )?;
    expect_code(
        desk.history(&requester, &ci.id).await,
        Code::PermissionDenied,
    )?;
    // and without a token nobody gets in
    let anonymous_read = desk
        .api()
        .get_ci(anonymous(pb::GetCiRequest { id: ci.id.clone() }))
        .await;
    expect_code(anonymous_read, Code::Unauthenticated)?;

    // when an admin of another tenant looks for it, then it does not exist for them
    let other = desk.token("otto", OTHER_TENANT, &["admin"]);
    expect_code(desk.get_ci(&other, &ci.id).await, Code::NotFound)?;
    assert_eq!(desk.total(&other).await?, 0);
    expect_code(
        desk.impact(&other, impact_request(&[&ci.id], ImpactDirection::Upstream))
            .await,
        Code::NotFound,
    )?;
    expect_code(desk.history(&other, &ci.id).await, Code::NotFound)?;
    expect_code(desk.relationships_of(&other, &ci.id).await, Code::NotFound)?;
    expect_code(desk.get_import(&other, &staged.id).await, Code::NotFound)?;
    expect_code(desk.commit(&other, &staged.id).await, Code::NotFound)?;
    let other_update = pb::UpdateCiRequest {
        expected_version: 1,
        ..update
    };
    expect_code(desk.update_ci(&other, other_update).await, Code::NotFound)?;
    expect_code(
        desk.retire_ci(&other, &ci, "mine now").await,
        Code::NotFound,
    )?;

    // and once they have CIs of their own, it is still not found, and cannot be related to
    let own = desk
        .create_ci(
            &other,
            new_ci("server", "web-01", [("serial_number", text("SN-1"))]),
        )
        .await?;
    expect_code(
        desk.impact(&other, impact_request(&[&ci.id], ImpactDirection::Upstream))
            .await,
        Code::NotFound,
    )?;
    let foreign = expect_violations(
        desk.relate(&other, &own.id, Rel::DependsOn, &ci.id).await,
        &["target_id"],
    )?;
    let missing = format!("test-{}", uuid::Uuid::now_v7());
    let absent = expect_violations(
        desk.relate(&other, &own.id, Rel::DependsOn, &missing).await,
        &["target_id"],
    )?;
    assert_eq!(
        foreign, absent,
        "another tenant's CI must answer exactly as a missing one"
    );
    // and identification only searches their own tenant: the serial finds their CI, not the first tenant's
    let theirs = desk
        .stage(
            &other,
            pb::StageImportRequest {
                source: "sccm".into(),
                items: vec![item(
                    "a",
                    "server",
                    "web-01",
                    [("serial_number", text("SN-1")), ("ram_gb", int(8))],
                )],
                ..Default::default()
            },
        )
        .await?;
    assert_eq!(
        theirs.items[0].ci_id, own.id,
        "matched {}",
        theirs.items[0].reason
    );
    assert!(
        desk.list_imports(&other, ImportState::Unspecified)
            .await?
            .iter()
            .all(|b| b.id != staged.id)
    );

    // and the first tenant's CI is untouched
    assert_eq!(desk.get_ci(&admin, &ci.id).await?, ci);
    Ok(())
}
