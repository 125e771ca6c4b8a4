//! Conflicts across the dependency graph, explained with their path, and freezes.

use desk_proto::change::v1::{self as pb, ChangeState, ConflictKind};
use tonic::Code;

use crate::support::{TestDesk, refused, window, with_token};

on_both_backends!(
    a_change_three_relationships_away_conflicts_with_its_path_where_a_same_ci_check_sees_none,
    a_normal_change_is_not_scheduled_in_a_freeze_and_the_freeze_is_named,
    a_restarted_change_service_finds_the_same_conflict_from_its_projection_and_keeps_following,
);

async fn a_change_three_relationships_away_conflicts_with_its_path_where_a_same_ci_check_sees_none(
    desk: TestDesk,
) -> anyhow::Result<()> {
    // Given a change on the shop business service, scheduled
    let [shop, web, app, host] = desk.shop_estate().await?;
    let on_shop = desk
        .authorized_normal("shop campaign config", &[&shop], window(10, 14))
        .await?;
    let on_shop = desk.schedule(&on_shop, None).await?;
    // When a change on the host the shop needs, three relationships down, proposes an
    // overlapping window
    let on_host = desk
        .authorized_normal("host firmware", &[&host], window(12, 13))
        .await?;
    let whole = check(&desk, &on_host.id, 0, true).await?;
    // Then the whole-closure check finds it, with the path that explains it
    assert_eq!(whole.len(), 1, "{whole:?}");
    let conflict = &whole[0];
    assert_eq!(conflict.kind, ConflictKind::UpstreamCi as i32);
    assert_eq!(conflict.other_change_id, on_shop.id);
    assert_eq!(conflict.ci_id, host);
    assert_eq!(conflict.other_ci_id, shop);
    assert_eq!(conflict.depth, 3);
    let path: Vec<(String, String)> = conflict
        .path
        .iter()
        .map(|s| (s.source_id.clone(), s.target_id.clone()))
        .collect();
    assert_eq!(
        path,
        [
            (app.clone(), host.clone()),
            (web.clone(), app.clone()),
            (web.clone(), shop.clone())
        ]
    );
    assert!(
        conflict.explanation.contains("3 relationships"),
        "{}",
        conflict.explanation
    );
    // And a same-CI check (depth 1 or less) misses it
    assert!(check(&desk, &on_host.id, 1, false).await?.is_empty());
    // Scheduling records the conflict and publishes it
    let on_host = desk.schedule(&on_host, None).await?;
    assert_eq!(on_host.conflicts.len(), 1);
    desk.events("conflict_detected", 1).await?;
    // The next free slot of an hour for the host starts when the shop's change ends
    let slot = desk
        .api()
        .suggest_slot(with_token(
            pb::SuggestSlotRequest {
                affected_ci_ids: vec![host.clone()],
                duration_minutes: 60,
                not_before: crate::support::at(11),
                whole_closure: true,
                ..Default::default()
            },
            &desk.manager(),
        ))
        .await?
        .into_inner()
        .window
        .ok_or_else(|| anyhow::anyhow!("no slot"))?;
    assert_eq!(slot.start_time, crate::support::at(14));
    Ok(())
}

async fn a_normal_change_is_not_scheduled_in_a_freeze_and_the_freeze_is_named(
    desk: TestDesk,
) -> anyhow::Result<()> {
    let [_, web, ..] = desk.shop_estate().await?;
    desk.api()
        .create_freeze_window(with_token(
            pb::CreateFreezeWindowRequest {
                window: Some(pb::FreezeWindow {
                    name: "quarter close".into(),
                    reason: "finance".into(),
                    start_time: crate::support::at(20),
                    end_time: crate::support::at(40),
                    ..Default::default()
                }),
            },
            &desk.manager(),
        ))
        .await?;
    let change = desk
        .authorized_normal("upgrade web", &[&web], window(30, 31))
        .await?;
    // The assessment counts the freeze
    let risk = change
        .risk
        .clone()
        .ok_or_else(|| anyhow::anyhow!("no risk"))?;
    assert!(
        risk.factors
            .iter()
            .any(|f| f.name == "freeze" && f.weight == 25),
        "{risk:?}"
    );
    let status = refused(desk.schedule(&change, None).await, Code::FailedPrecondition)?;
    assert!(
        status.message().contains("quarter close"),
        "{}",
        status.message()
    );
    assert_eq!(
        desk.get(&change.id).await?.state,
        ChangeState::Authorized as i32
    );
    let conflicts = desk
        .api()
        .check_conflicts(with_token(
            pb::CheckConflictsRequest {
                change_id: change.id.clone(),
                ..Default::default()
            },
            &desk.manager(),
        ))
        .await?
        .into_inner()
        .conflicts;
    assert_eq!(
        conflicts.iter().map(|c| c.kind).collect::<Vec<_>>(),
        [ConflictKind::Freeze as i32]
    );
    // Outside the freeze it is scheduled
    let change = desk.schedule(&change, Some(window(41, 42))).await?;
    assert_eq!(change.state, ChangeState::Scheduled as i32);
    Ok(())
}

async fn a_restarted_change_service_finds_the_same_conflict_from_its_projection_and_keeps_following(
    mut desk: TestDesk,
) -> anyhow::Result<()> {
    // Given a scheduled change on the shop and a proposal on the host three relationships down
    let [shop, _, _, host] = desk.shop_estate().await?;
    let on_shop = desk
        .authorized_normal("shop campaign config", &[&shop], window(10, 14))
        .await?;
    let on_shop = desk.schedule(&on_shop, None).await?;
    let on_host = desk
        .authorized_normal("host firmware", &[&host], window(12, 13))
        .await?;
    let before = check(&desk, &on_host.id, 0, true).await?;
    // When the change service restarts: its memory comes back from the projection tables, and
    // it follows the CMDB's stream from the durable consumer's acknowledged floor, not from the
    // stream's start
    desk.change.restart().await?;
    // Then the same whole-closure check finds the same conflict, path and all
    let after = check(&desk, &on_host.id, 0, true).await?;
    assert_eq!(after.len(), 1, "{after:?}");
    assert_eq!(after[0].other_change_id, on_shop.id);
    assert_eq!(after[0].depth, 3);
    assert_eq!(after[0].path, before[0].path);
    // And what the CMDB publishes after the restart reaches the new process too
    desk.settle_projection().await?;
    Ok(())
}

async fn check(
    desk: &TestDesk,
    change: &str,
    max_depth: u32,
    whole_closure: bool,
) -> anyhow::Result<Vec<pb::Conflict>> {
    Ok(desk
        .api()
        .check_conflicts(with_token(
            pb::CheckConflictsRequest {
                change_id: change.to_owned(),
                max_depth,
                whole_closure,
                ..Default::default()
            },
            &desk.manager(),
        ))
        .await?
        .into_inner()
        .conflicts)
}
