use anyhow::ensure;
use desk_proto::{
    sla::v1::{self as pb, Metric, PolicyKind},
    tickets::v1 as tickets,
};

use crate::support::*;

on_both_backends!(
    a_calendar_change_is_previewed_then_applied_with_recomputation,
    bad_calendars_and_policies_are_refused_with_every_violation_and_nothing_written,
    a_malformed_ticket_event_is_dead_lettered_and_the_consumer_goes_on,
    kpis_of_a_known_data_set,
);

async fn a_calendar_change_is_previewed_then_applied_with_recomputation(
    desk: TestDesk,
) -> anyhow::Result<()> {
    let stockholm = desk
        .calendar("Stockholm office", "Europe/Stockholm", 8, 17, &[])
        .await?;
    desk.create_policy(TestDesk::policy(PolicyKind::Sla, &stockholm.id))
        .await?;
    // Created Monday 08:00 UTC: 8 h due at 16:00 UTC.
    let ticket = Ticket::new(10, at(60));
    desk.created(&ticket).await?;
    desk.set_clock(at(90))?;
    let before = desk
        .clocks_when(&ticket.id(), |clocks| clocks.len() == 2)
        .await?;
    let resolution = clock(&before, PolicyKind::Sla, Metric::Resolution)?;
    ensure!(resolution.due_time == ts(at(9 * 60)), "{resolution:?}");

    // The office now opens at 10:00 local (09:00 UTC): 7 h Monday 09–16, 1 h Tuesday from 09:00.
    let mut changed = stockholm.clone();
    for span in &mut changed.weekly_hours {
        span.start_minute = 10 * 60;
    }
    let preview = desk
        .api()
        .preview_calendar_update(with_token(
            pb::PreviewCalendarUpdateRequest {
                calendar: Some(changed.clone()),
            },
            &desk.admin(),
        ))
        .await?
        .into_inner()
        .recomputation
        .unwrap_or_default();
    let shift = preview
        .shifts
        .iter()
        .find(|s| s.metric == Metric::Resolution as i32)
        .ok_or_else(|| anyhow::anyhow!("no shift in {preview:?}"))?;
    let new_due = at(24 * 60 + 3 * 60);
    ensure!(shift.new_due_time == ts(new_due), "{shift:?}");
    ensure!(
        shift.shift_seconds == (new_due - at(9 * 60)).num_seconds(),
        "{shift:?}"
    );
    // A preview writes nothing.
    let unchanged = desk.ticket_sla(&ticket.id()).await?.clocks;
    ensure!(clock(&unchanged, PolicyKind::Sla, Metric::Resolution)?.due_time == ts(at(9 * 60)));

    let applied = desk
        .api()
        .update_calendar(with_token(
            pb::UpdateCalendarRequest {
                calendar: Some(changed.clone()),
                expected_version: 1,
            },
            &desk.admin(),
        ))
        .await?
        .into_inner();
    ensure!(applied.calendar.map(|c| c.version) == Some(2));
    let after = desk.ticket_sla(&ticket.id()).await?.clocks;
    ensure!(clock(&after, PolicyKind::Sla, Metric::Resolution)?.due_time == ts(new_due));
    // A stale version is refused.
    let stale = desk
        .api()
        .update_calendar(with_token(
            pb::UpdateCalendarRequest {
                calendar: Some(changed),
                expected_version: 1,
            },
            &desk.admin(),
        ))
        .await;
    expect_code(stale, tonic::Code::Aborted)?;
    Ok(())
}

async fn bad_calendars_and_policies_are_refused_with_every_violation_and_nothing_written(
    desk: TestDesk,
) -> anyhow::Result<()> {
    let calendar = pb::Calendar {
        name: "bad".into(),
        time_zone: "Europe/Atlantis".into(),
        weekly_hours: vec![
            pb::WorkingSpan {
                weekday: pb::Weekday::Monday as i32,
                start_minute: 480,
                end_minute: 600,
                ends_next_day: false,
            },
            pb::WorkingSpan {
                weekday: pb::Weekday::Monday as i32,
                start_minute: 540,
                end_minute: 700,
                ends_next_day: false,
            },
            pb::WorkingSpan {
                weekday: pb::Weekday::Tuesday as i32,
                start_minute: 600,
                end_minute: 480,
                ends_next_day: false,
            },
        ],
        holidays: vec![pb::Holiday {
            date: "1900-01-01".into(),
            name: "long ago".into(),
        }],
        ..Default::default()
    };
    let refused = desk
        .api()
        .create_calendar(with_token(
            pb::CreateCalendarRequest {
                calendar: Some(calendar),
                idempotency_key: String::new(),
            },
            &desk.admin(),
        ))
        .await;
    let fields = expect_violations(
        refused,
        &["calendar.time_zone", "calendar.holidays[0].date"],
    )?;
    ensure!(
        fields
            .iter()
            .any(|f| f.starts_with("calendar.weekly_hours[1]")),
        "overlap: {fields:?}"
    );
    ensure!(
        fields
            .iter()
            .any(|f| f.starts_with("calendar.weekly_hours[2]")),
        "inverted: {fields:?}"
    );

    let mut policy = TestDesk::policy(PolicyKind::Sla, "");
    policy.targets[0].business_minutes = 0;
    policy.warning_thresholds_percent = vec![75, 100];
    let refused = desk
        .api()
        .create_policy(with_token(
            pb::CreatePolicyRequest {
                policy: Some(policy),
                idempotency_key: String::new(),
            },
            &desk.admin(),
        ))
        .await;
    expect_violations(
        refused,
        &[
            "policy.targets[0].business_minutes",
            "policy.warning_thresholds_percent[1]",
        ],
    )?;
    let mut nothing = TestDesk::policy(PolicyKind::Sla, "");
    nothing.r#match = Some(pb::PolicyMatch {
        priorities: vec![tickets::Priority::P4Low as i32],
        ..Default::default()
    });
    nothing.targets = vec![pb::Target {
        metric: Metric::Resolution as i32,
        priority: tickets::Priority::P1Critical as i32,
        business_minutes: 60,
    }];
    let refused = desk
        .api()
        .create_policy(with_token(
            pb::CreatePolicyRequest {
                policy: Some(nothing),
                idempotency_key: String::new(),
            },
            &desk.admin(),
        ))
        .await;
    expect_violations(
        refused,
        &["policy.match.priorities", "policy.targets[0].priority"],
    )?;
    ensure!(desk.sla.rows_in("sla_calendars").await? == 0);
    ensure!(desk.sla.rows_in("sla_policies").await? == 0);
    // An agent may not write policies.
    let agent = desk.sla.token("andy", TENANT, &["agent"]);
    let denied = desk
        .api()
        .create_policy(with_token(
            pb::CreatePolicyRequest {
                policy: Some(TestDesk::policy(PolicyKind::Sla, "")),
                idempotency_key: String::new(),
            },
            &agent,
        ))
        .await;
    expect_code(denied, tonic::Code::PermissionDenied)?;
    Ok(())
}

async fn a_malformed_ticket_event_is_dead_lettered_and_the_consumer_goes_on(
    desk: TestDesk,
) -> anyhow::Result<()> {
    desk.create_policy(TestDesk::policy(PolicyKind::Sla, ""))
        .await?;
    // Not a TicketCreated body, then a ticket without a priority, then a good one.
    desk.publish(
        "tickets",
        "ticket",
        "created",
        "x",
        at(0),
        vec![0xff, 0xff, 0xff],
    )
    .await?;
    let mut broken = Ticket::new(11, at(0));
    broken.ticket.priority = 0;
    desk.created(&broken).await?;
    let good = Ticket::new(12, at(0));
    desk.created(&good).await?;
    desk.set_clock(at(10))?;
    let clocks = desk
        .clocks_when(&good.id(), |clocks| clocks.len() == 2)
        .await?;
    ensure!(
        clocks
            .iter()
            .all(|c| c.state == pb::ClockState::Running as i32)
    );
    expect_code(
        desk.ticket_sla(&broken.id()).await.map_err(|e| {
            e.downcast::<tonic::Status>()
                .unwrap_or_else(|e| tonic::Status::unknown(e.to_string()))
        }),
        tonic::Code::NotFound,
    )?;
    Ok(())
}

async fn kpis_of_a_known_data_set(desk: TestDesk) -> anyhow::Result<()> {
    desk.create_policy(TestDesk::policy(PolicyKind::Sla, ""))
        .await?;
    // a: responded after 30 min, resolved after 2 h (met); b: responded after 2 h (first
    // response breached), resolved after 10 h (breached), rated 4; c: still open.
    let mut a = Ticket::new(20, at(0));
    desk.created(&a).await?;
    desk.status(
        &mut a,
        at(30),
        tickets::TicketStatus::InProgress,
        tickets::PendingReason::Unspecified,
        "",
    )
    .await?;
    desk.status(
        &mut a,
        at(120),
        tickets::TicketStatus::Resolved,
        tickets::PendingReason::Unspecified,
        "",
    )
    .await?;
    let mut b = Ticket::new(21, at(0));
    desk.created(&b).await?;
    desk.status(
        &mut b,
        at(120),
        tickets::TicketStatus::InProgress,
        tickets::PendingReason::Unspecified,
        "",
    )
    .await?;
    desk.status(
        &mut b,
        at(600),
        tickets::TicketStatus::Resolved,
        tickets::PendingReason::Unspecified,
        "",
    )
    .await?;
    desk.updated(&mut b, at(610), |t| {
        t.satisfaction = Some(tickets::Satisfaction {
            rating: 4,
            comment: String::new(),
            rate_time: ts(at(610)),
        });
    })
    .await?;
    let c = Ticket::new(22, at(60));
    desk.created(&c).await?;
    desk.set_clock(at(720))?;
    desk.clocks_when(&c.id(), |clocks| clocks.len() == 2)
        .await?;
    desk.clocks_when(&b.id(), |clocks| {
        clocks
            .iter()
            .all(|c| c.state == pb::ClockState::Breached as i32)
    })
    .await?;

    let rows = desk
        .api()
        .get_kpis(with_token(
            pb::GetKpisRequest {
                group_by: pb::KpiDimension::Team as i32,
                start_time: ts(at(-60)),
                end_time: ts(at(720)),
            },
            &desk.admin(),
        ))
        .await?
        .into_inner()
        .rows;
    ensure!(rows.len() == 1, "{rows:?}");
    let row = &rows[0];
    ensure!(row.key == "emea-l1" && row.tickets == 3, "{row:?}");
    // SLA clocks decided: a met twice; b breached twice; c (open, created 08:00) breached its
    // first response at 09:00 and its resolution at 16:00.
    ensure!((row.sla_compliance - 2.0 / 6.0).abs() < 1e-9, "{row:?}");
    ensure!(
        row.mean_time_to_acknowledge_seconds == 75.0 * 60.0,
        "{row:?}"
    );
    ensure!(row.mean_time_to_resolve_seconds == 360.0 * 60.0, "{row:?}");
    ensure!(
        row.backlog == 1 && row.backlog_age_seconds == 660.0 * 60.0,
        "{row:?}"
    );
    ensure!(
        row.csat_average == 4.0 && row.csat_responses == 1,
        "{row:?}"
    );
    ensure!(
        row.first_contact_resolution == 1.0 && row.reopen_rate == 0.0,
        "{row:?}"
    );
    let refused = desk
        .api()
        .get_kpis(with_token(
            pb::GetKpisRequest {
                group_by: 0,
                start_time: None,
                end_time: None,
            },
            &desk.admin(),
        ))
        .await;
    expect_violations(refused, &["group_by", "start_time"])?;
    Ok(())
}
