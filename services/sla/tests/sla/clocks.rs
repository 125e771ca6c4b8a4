use anyhow::ensure;
use desk_proto::{
    sla::v1::{self as pb, Metric, PolicyKind, TimelineKind},
    tickets::v1 as tickets,
};

use crate::support::*;

on_both_backends!(
    pausing_on_the_customer_keeps_paused_time_through_a_priority_change,
    a_warning_then_a_breach_reach_nats_once_each_and_the_timeline_explains_it,
    the_ola_continues_on_another_regions_team_calendar_after_reassignment,
);

async fn pausing_on_the_customer_keeps_paused_time_through_a_priority_change(
    desk: TestDesk,
) -> anyhow::Result<()> {
    // Given an SLA on Stockholm office hours (08–17 local, 07–16 UTC in January).
    let stockholm = desk
        .calendar("Stockholm office", "Europe/Stockholm", 8, 17, &[])
        .await?;
    desk.create_policy(TestDesk::policy(PolicyKind::Sla, &stockholm.id))
        .await?;
    // When a ticket is created at 07:00 UTC, waits on the customer 08:00–09:00, is worked
    // again, and becomes P1 at 09:30.
    let mut ticket = Ticket::new(1, at(0));
    desk.created(&ticket).await?;
    desk.status(
        &mut ticket,
        at(60),
        tickets::TicketStatus::Pending,
        tickets::PendingReason::Customer,
        "asked for logs",
    )
    .await?;
    desk.status(
        &mut ticket,
        at(120),
        tickets::TicketStatus::InProgress,
        tickets::PendingReason::Unspecified,
        "",
    )
    .await?;
    desk.updated(&mut ticket, at(150), |t| {
        t.priority = tickets::Priority::P1Critical as i32
    })
    .await?;
    desk.set_clock(at(165))?;

    // Then the resolution clock runs against the P1 target with the hour paused kept.
    let clocks = desk
        .clocks_when(&ticket.id(), |clocks| {
            clocks
                .iter()
                .any(|c| c.metric == Metric::Resolution as i32 && c.target_seconds == 7200)
        })
        .await?;
    let resolution = clock(&clocks, PolicyKind::Sla, Metric::Resolution)?;
    ensure!(
        resolution.state == pb::ClockState::Running as i32,
        "{resolution:?}"
    );
    ensure!(resolution.paused_seconds == 3600, "{resolution:?}");
    // 07:00–08:00 and 09:00–09:45 counted.
    ensure!(resolution.elapsed_seconds == 105 * 60, "{resolution:?}");
    // 2 h target, 105 min used at 09:45: due at 10:00 UTC.
    ensure!(resolution.due_time == ts(at(180)), "{resolution:?}");
    let paused = resolution
        .timeline
        .iter()
        .find(|e| e.kind == TimelineKind::Paused as i32)
        .ok_or_else(|| anyhow::anyhow!("no pause in {:?}", resolution.timeline))?;
    ensure!(paused.actor == "andy", "{paused:?}");
    ensure!(
        paused.reason == "pending: customer (asked for logs)",
        "{paused:?}"
    );
    ensure!(
        resolution
            .timeline
            .iter()
            .any(|e| e.kind == TimelineKind::Retargeted as i32
                && e.reason.contains("8h → 2h")
                && e.reason.contains("1h paused kept")),
        "{:?}",
        resolution.timeline
    );
    // The paused and resumed transitions were published, one each.
    desk.sla_events("paused", 1).await?;
    desk.sla_events("resumed", 1).await?;
    Ok(())
}

async fn a_warning_then_a_breach_reach_nats_once_each_and_the_timeline_explains_it(
    desk: TestDesk,
) -> anyhow::Result<()> {
    let stockholm = desk
        .calendar("Stockholm office", "Europe/Stockholm", 8, 17, &[])
        .await?;
    desk.create_policy(TestDesk::policy(PolicyKind::Sla, &stockholm.id))
        .await?;
    // A ticket created Friday 11 January 15:30 UTC (16:30 local): half an hour left on Friday.
    let friday = at(4 * 24 * 60 + 8 * 60 + 30);
    desk.set_clock(friday)?;
    let ticket = Ticket::new(2, friday);
    desk.created(&ticket).await?;
    desk.sla_events("started", 2).await?;
    ensure!(
        desk.sla
            .settled_events()
            .await?
            .iter()
            .all(|e| !e.subject.ends_with(".warning"))
    );

    // 75 % of the 1 h first response: 30 min Friday + 15 min Monday 07:00 UTC.
    let monday = at(7 * 24 * 60);
    desk.set_clock(monday + chrono::TimeDelta::minutes(15))?;
    let warnings = desk.sla_events("warning", 1).await?;
    let warning: pb::SlaWarning = warnings[0].decode()?;
    ensure!(warning.threshold_percent == 75, "{warning:?}");
    // The breach at Monday 07:30 UTC, once, though the timer worker keeps polling.
    desk.set_clock(monday + chrono::TimeDelta::minutes(31))?;
    let breaches = desk.sla_events("breached", 1).await?;
    let breach: pb::SlaBreached = breaches[0].decode()?;
    let transition = breach.transition.clone().unwrap_or_default();
    ensure!(transition.ticket_id == ticket.id(), "{breach:?}");
    let breached_clock = transition.clock.unwrap_or_default();
    ensure!(
        breached_clock.metric == Metric::FirstResponse as i32,
        "{breached_clock:?}"
    );
    ensure!(
        breached_clock.due_time == ts(monday + chrono::TimeDelta::minutes(30)),
        "{breached_clock:?}"
    );
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    let events = desk.sla.settled_events().await?;
    let count = |suffix: &str| {
        events
            .iter()
            .filter(|e| e.subject.ends_with(suffix))
            .count()
    };
    ensure!(
        count(".warning") == 2,
        "75 and 90 % once each: {}",
        count(".warning")
    );
    ensure!(
        count(".breached") == 1,
        "one breach: {}",
        count(".breached")
    );
    // The warning came before the breach on the stream.
    let first_warning = events.iter().position(|e| e.subject.ends_with(".warning"));
    let first_breach = events.iter().position(|e| e.subject.ends_with(".breached"));
    ensure!(first_warning < first_breach);

    // The timeline explains it: counted Friday and Monday on the Stockholm calendar, the weekend not.
    let clocks = desk.ticket_sla(&ticket.id()).await?.clocks;
    let response = clock(&clocks, PolicyKind::Sla, Metric::FirstResponse)?;
    ensure!(
        response.state == pb::ClockState::Breached as i32,
        "{response:?}"
    );
    let kinds: Vec<i32> = response
        .timeline
        .iter()
        .filter(|e| e.kind != TimelineKind::Counted as i32)
        .map(|e| e.kind)
        .collect();
    ensure!(
        kinds
            == [
                TimelineKind::Started as i32,
                TimelineKind::Warning as i32,
                TimelineKind::Warning as i32,
                TimelineKind::Breached as i32
            ],
        "{:?}",
        response.timeline
    );
    let counted = response
        .timeline
        .iter()
        .find(|e| e.kind == TimelineKind::Counted as i32)
        .ok_or_else(|| anyhow::anyhow!("nothing counted"))?;
    ensure!(counted.calendar_id == stockholm.id, "{counted:?}");
    Ok(())
}

async fn the_ola_continues_on_another_regions_team_calendar_after_reassignment(
    desk: TestDesk,
) -> anyhow::Result<()> {
    let stockholm = desk
        .calendar("Stockholm office", "Europe/Stockholm", 8, 17, &[])
        .await?;
    // Jakarta 09–18 local = 02–11 UTC.
    let jakarta = desk
        .calendar("Jakarta office", "Asia/Jakarta", 9, 18, &[])
        .await?;
    desk.team("emea-l1", "emea", &stockholm.id).await?;
    desk.team("apac-l2", "apac", &jakarta.id).await?;
    desk.create_policy(TestDesk::policy(PolicyKind::Sla, &stockholm.id))
        .await?;
    let mut ola = TestDesk::policy(PolicyKind::Ola, "");
    ola.targets[1].business_minutes = 10 * 60;
    desk.create_policy(ola).await?;
    // The team projection is fed asynchronously: wait until the directory's events are applied.
    let deadline = std::time::Instant::now() + EVENTUALLY;
    while desk.sla.rows_in("sla_teams").await? < 2 {
        ensure!(
            std::time::Instant::now() < deadline,
            "the teams were never projected"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    // Created for emea-l1 Monday 07:00 UTC, handed to apac-l2 at 15:00 UTC.
    let mut ticket = Ticket::new(3, at(0));
    desk.created(&ticket).await?;
    desk.assigned(&mut ticket, at(8 * 60), "apac-l2").await?;
    desk.set_clock(at(20 * 60))?; // Tuesday 03:00 UTC, 10:00 in Jakarta.

    let clocks = desk
        .clocks_when(&ticket.id(), |clocks| {
            clocks
                .iter()
                .any(|c| c.kind == PolicyKind::Ola as i32 && c.team_id == "apac-l2")
        })
        .await?;
    let ola = clock(&clocks, PolicyKind::Ola, Metric::Resolution)?;
    ensure!(ola.calendar_id == jakarta.id, "{ola:?}");
    // 8 h on Stockholm's calendar, then 1 h on Jakarta's (Tuesday 02:00–03:00 UTC).
    ensure!(ola.elapsed_seconds == 9 * 3600, "{ola:?}");
    let counted: Vec<(String, i64)> = ola
        .timeline
        .iter()
        .filter(|e| e.kind == TimelineKind::Counted as i32 && e.business_seconds > 0)
        .map(|e| (e.calendar_id.clone(), e.business_seconds))
        .collect();
    ensure!(
        counted == [(stockholm.id.clone(), 8 * 3600), (jakarta.id.clone(), 3600)],
        "{counted:?}"
    );
    // 1 h left on Jakarta's calendar: Tuesday 04:00 UTC.
    ensure!(ola.due_time == ts(at(21 * 60)), "{ola:?}");
    ensure!(
        ola.timeline
            .iter()
            .any(|e| e.kind == TimelineKind::CalendarChanged as i32
                && e.reason == "owner emea-l1 → apac-l2"),
        "{:?}",
        ola.timeline
    );
    // Side by side: the customer's SLA stays on Stockholm's calendar.
    let sla = clock(&clocks, PolicyKind::Sla, Metric::Resolution)?;
    ensure!(sla.calendar_id == stockholm.id, "{sla:?}");
    ensure!(sla.state == pb::ClockState::Breached as i32, "{sla:?}");
    Ok(())
}
