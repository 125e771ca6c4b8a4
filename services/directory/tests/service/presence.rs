//! Presence expires to offline when not refreshed, on the service's clock: reads show it at once,
//! and `presence.changed` to offline is published once, also with two replicas sweeping.

use super::*;

use chrono::Duration;
use pb::PresenceStatus as Status;

on_both_backends_with_a_manual_clock!(
    a_presence_not_refreshed_expires_to_offline_and_is_published_once,
);
on_both_backends!(only_staff_set_a_presence_and_only_admins_set_anothers);

fn status_of(presence: Option<&pb::Presence>) -> Option<i32> {
    presence.map(|p| p.status)
}

async fn a_presence_not_refreshed_expires_to_offline_and_is_published_once(
    desk: TestDesk,
) -> anyhow::Result<()> {
    let admin = desk.admin();
    let clock = desk.clock().context("a manual clock")?.clone();
    // given two agents, and a second replica of the directory on the same database and clock
    let alex = desk
        .agent_person("alex", "Alex Agent", &[("networking", 3)], &["en"])
        .await?;
    desk.agent_person("bo", "Bo Agent", &[], &["sv"]).await?;
    let _replica = desk.start_replica().await?;
    let (alex_token, bo_token) = (
        desk.token("alex", TENANT, &["agent"]),
        desk.token("bo", TENANT, &["agent"]),
    );

    // when Alex is available for a minute
    let set = desk
        .set_presence(&alex_token, Status::Available, 60)
        .await?;

    // then he reads as available until then
    assert_eq!(set.status, Status::Available as i32);
    let read = desk.get_person(&admin, &alex.id).await?;
    assert_eq!(
        status_of(read.presence.as_ref()),
        Some(Status::Available as i32)
    );

    // and refreshing it half-way moves the expiry without being a change
    clock.advance(Duration::seconds(30));
    let refreshed = desk
        .set_presence(&alex_token, Status::Available, 60)
        .await?;
    assert_eq!(refreshed.version, set.version, "a refresh is no change");
    ensure!(
        refreshed.expire_time.as_ref().map(|t| t.seconds)
            > set.expire_time.as_ref().map(|t| t.seconds),
        "the expiry moved"
    );
    desk.set_presence(&bo_token, Status::Busy, 300).await?;

    // when the refreshed minute passes without another refresh
    clock.advance(Duration::seconds(61));

    // then a read shows him offline at once, as expired
    let read = desk.get_person(&admin, &alex.id).await?;
    let presence = read.presence.context("a presence")?;
    assert_eq!(presence.status, Status::Offline as i32);
    ensure!(presence.expired, "offline because it expired");

    // and the expiry is published as presence.changed to offline
    let subject = desk.subject("presence", "changed");
    let events = desk.wait_for_events(&subject, 3, EVENTUALLY).await?;
    let bodies = events
        .iter()
        .map(|e| e.decode::<pb::PresenceChanged>())
        .collect::<anyhow::Result<Vec<_>>>()?;
    let expiry = bodies
        .iter()
        .find(|b| b.expired)
        .context("an expiry event")?;
    let expired = expiry.presence.as_ref().context("its presence")?;
    assert_eq!(expired.person_id, alex.id);
    assert_eq!(expired.status, Status::Offline as i32);
    assert_eq!(expiry.previous_status, Status::Available as i32);
    assert_eq!(
        expiry.actor.as_ref().map(|a| a.subject.as_str()),
        Some("directory")
    );

    // when Bo's presence expires too (so both replicas have swept again since Alex's)
    clock.advance(Duration::seconds(300));
    desk.wait_for_events(&subject, 4, EVENTUALLY).await?;

    // then each presence change was published once: Alex's available and expiry, Bo's busy and
    // expiry, and never an expiry twice
    let settled = desk.settled("presence", "changed").await?;
    let mut seen: Vec<(String, i32, bool)> = settled
        .iter()
        .map(|e| {
            let body: pb::PresenceChanged = e.decode()?;
            let presence = body.presence.context("a presence")?;
            Ok((presence.person_id, presence.status, body.expired))
        })
        .collect::<anyhow::Result<_>>()?;
    seen.sort();
    assert_eq!(seen.len(), 4, "{seen:?}");
    assert_eq!(
        seen.iter().filter(|(_, _, expired)| *expired).count(),
        2,
        "{seen:?}"
    );
    Ok(())
}

async fn only_staff_set_a_presence_and_only_admins_set_anothers(
    desk: TestDesk,
) -> anyhow::Result<()> {
    // given an agent and a requester who both have a person
    let alex = desk.agent_person("alex", "Alex Agent", &[], &[]).await?;
    let requester = desk.requester();
    desk.who_am_i(&requester).await?;

    // when the requester sets a presence
    let refused = desk.set_presence(&requester, Status::Available, 60).await;

    // then it is refused
    expect_code(refused, Code::PermissionDenied)?;

    // and another agent may not set Alex's, while an admin may
    desk.agent_person("bo", "Bo Agent", &[], &[]).await?;
    let for_alex = |token: String| {
        let api = desk.api();
        let request = support::with_token(
            pb::SetPresenceRequest {
                person_id: alex.id.clone(),
                status: Status::Away as i32,
                ttl_seconds: 0,
            },
            &token,
        );
        async move { api.clone().set_presence(request).await }
    };
    expect_code(
        for_alex(desk.token("bo", TENANT, &["agent"])).await,
        Code::PermissionDenied,
    )?;
    let set = for_alex(desk.admin())
        .await?
        .into_inner()
        .presence
        .context("a presence")?;
    assert_eq!(set.status, Status::Away as i32);

    // and a presence without a status, or with a negative time to live, is a violation each
    let bad = desk
        .api()
        .set_presence(support::with_token(
            pb::SetPresenceRequest {
                person_id: String::new(),
                status: Status::Unspecified as i32,
                ttl_seconds: -5,
            },
            &desk.token("alex", TENANT, &["agent"]),
        ))
        .await;
    expect_violations(bad, &["status", "ttl_seconds"])?;
    Ok(())
}
