//! Implementation: CI updates reach the CMDB with the change as provenance after a success, and
//! nothing after a failure.

use desk_proto::{change::v1 as pb, cmdb::v1 as cmdb};

use crate::support::{TestDesk, window};

on_both_backends!(
    a_successful_change_updates_the_cmdb_as_its_provenance_and_a_failed_one_leaves_it_alone
);

fn ram(ci: &str, gigabytes: i64) -> pb::CiUpdate {
    pb::CiUpdate {
        ci_id: ci.into(),
        attributes: [(
            "ram_gb".to_owned(),
            cmdb::AttributeValue {
                kind: Some(cmdb::attribute_value::Kind::IntValue(gigabytes)),
            },
        )]
        .into(),
        ..Default::default()
    }
}

async fn implemented(
    desk: &TestDesk,
    ci: &str,
    successful: bool,
    start: i64,
) -> anyhow::Result<pb::Change> {
    let mut request = crate::support::normal("more memory", &[ci], window(start, start + 1));
    request.ci_updates = vec![ram(ci, 64)];
    let change = desk.create(request).await?;
    let change = desk.submit(&change).await?;
    let change = desk.assess(&change).await?;
    let change = desk.schedule(&change, None).await?;
    desk.advance_to(start)?;
    let change = desk.start(&change).await?;
    Ok(desk.complete(&change, successful).await?)
}

async fn a_successful_change_updates_the_cmdb_as_its_provenance_and_a_failed_one_leaves_it_alone(
    desk: TestDesk,
) -> anyhow::Result<()> {
    // Given two servers
    let [_, _, app, host] = desk.shop_estate().await?;
    let app_before = desk.get_ci(&app).await?;
    // When a change on the app server fails, and then one on the host succeeds
    let failed = implemented(&desk, &app, false, 2).await?;
    assert_eq!(failed.outcome, pb::Outcome::Failed as i32);
    let succeeded = implemented(&desk, &host, true, 4).await?;
    // Then the host's memory is the change's, with the change as the value's provenance
    let change = desk
        .wait_for_change(&succeeded.id, |c| {
            c.ci_updates.iter().all(|u| u.applied_version > 0)
        })
        .await?;
    let host_after = desk.get_ci(&host).await?;
    assert_eq!(host_after.version, change.ci_updates[0].applied_version);
    assert_eq!(
        host_after
            .attributes
            .get("ram_gb")
            .and_then(|v| v.kind.clone()),
        Some(cmdb::attribute_value::Kind::IntValue(64))
    );
    let provenance = host_after
        .provenance
        .get("ram_gb")
        .ok_or_else(|| anyhow::anyhow!("no provenance"))?;
    assert_eq!(provenance.source, "change");
    assert_eq!(provenance.actor, succeeded.id);
    // And the app server, whose change failed, is as it was
    let app_after = desk.get_ci(&app).await?;
    assert_eq!(app_after.version, app_before.version);
    assert!(!app_after.attributes.contains_key("ram_gb"));
    assert!(failed.ci_updates.iter().all(|u| u.applied_version == 0));
    Ok(())
}

on_both_backends!(only_a_desk_service_names_a_source_record_in_the_cmdb);

async fn only_a_desk_service_names_a_source_record_in_the_cmdb(
    desk: TestDesk,
) -> anyhow::Result<()> {
    // Given a CI, when a person's update claims to come from a change
    let [.., host] = desk.shop_estate().await?;
    let before = desk.get_ci(&host).await?;
    let claimed = desk
        .cmdb_api()
        .update_ci(crate::support::with_token(
            cmdb::UpdateCiRequest {
                id: host.clone(),
                expected_version: before.version,
                name: Some("renamed".into()),
                source_record: "test-some-change".into(),
                ..Default::default()
            },
            &desk.cmdb_admin(),
        ))
        .await;
    // Then it is refused and nothing changes
    crate::support::expect_violations(claimed, &["source_record"])?;
    assert_eq!(desk.get_ci(&host).await?.version, before.version);
    Ok(())
}
