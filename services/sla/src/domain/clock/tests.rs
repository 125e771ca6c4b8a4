use std::collections::HashMap;

use chrono::{NaiveDate, TimeDelta, TimeZone, Utc, Weekday};
use desk_business_time::{BusinessCalendar, CalendarSpec, Holiday, WorkingSpan, hm};
use uuid::Uuid;

use super::*;
use crate::domain::policy::tests::rules;
use crate::domain::ticket::tests::snapshot;
use crate::domain::ticket::{PendingReason, Priority, TicketFact, TicketStatus};

fn utc(d: u32, h: u32, m: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, d, h, m, 0)
        .single()
        .expect("a time")
}

const STOCKHOLM: Uuid = Uuid::from_u128(1);
const JAKARTA: Uuid = Uuid::from_u128(2);

fn office(zone: &str, from: u32, to: u32, holidays: Vec<Holiday>) -> BusinessCalendar {
    let weekdays = [
        Weekday::Mon,
        Weekday::Tue,
        Weekday::Wed,
        Weekday::Thu,
        Weekday::Fri,
    ];
    BusinessCalendar::new(CalendarSpec {
        time_zone: zone.into(),
        weekly_hours: weekdays
            .iter()
            .map(|&day| WorkingSpan::daytime(day, hm(from, 0), hm(to, 0)))
            .collect(),
        holidays,
        exceptions: vec![],
    })
    .expect("a valid calendar")
}

struct World {
    calendars: HashMap<Uuid, BusinessCalendar>,
    teams: HashMap<String, Uuid>,
}

impl World {
    fn new() -> World {
        let christmas = NaiveDate::from_ymd_opt(2026, 12, 25).expect("a date");
        let calendars = HashMap::from([
            (
                STOCKHOLM,
                office(
                    "Europe/Stockholm",
                    8,
                    17,
                    vec![Holiday::new(christmas, "Juldagen")],
                ),
            ),
            (JAKARTA, office("Asia/Jakarta", 9, 18, vec![])),
        ]);
        let teams = HashMap::from([
            ("emea-l1".to_owned(), STOCKHOLM),
            ("apac-l2".to_owned(), JAKARTA),
        ]);
        World { calendars, teams }
    }

    fn book(&self) -> CalendarBook<'_> {
        CalendarBook {
            calendars: &self.calendars,
            team_calendars: &self.teams,
        }
    }
}

fn policy(kind: PolicyKind) -> Policy {
    let mut rules = rules(kind);
    rules.calendar_id = Some(STOCKHOLM);
    Policy {
        id: Uuid::from_u128(9),
        tenant: "acme".into(),
        rules,
        version: 1,
        created_at: utc(1, 0, 0),
        updated_at: utc(1, 0, 0),
    }
}

/// A history built step by step: each step a new version at a time, with the ticket changed.
struct Story {
    history: TicketHistory,
    ticket: crate::domain::ticket::TicketSnapshot,
}

impl Story {
    fn created(at: DateTime<Utc>) -> Story {
        let mut story = Story {
            history: TicketHistory::default(),
            ticket: snapshot(TicketStatus::New),
        };
        story.ticket.created_at = at;
        story.push(at, FactKind::Created, |_| {});
        story
    }

    fn push(
        &mut self,
        at: DateTime<Utc>,
        kind: FactKind,
        change: impl FnOnce(&mut crate::domain::ticket::TicketSnapshot),
    ) -> &mut Story {
        change(&mut self.ticket);
        let version = i64::try_from(self.history.facts.len()).expect("small") + 1;
        self.history.record(TicketFact {
            version,
            at,
            kind,
            actor: Some("ada".into()),
            note: None,
            ticket: self.ticket.clone(),
        });
        self
    }

    fn status(&mut self, at: DateTime<Utc>, status: TicketStatus) -> &mut Story {
        self.push(at, FactKind::Changed, |t| {
            t.status = status;
            t.pending_reason = None;
        })
    }

    fn pending(&mut self, at: DateTime<Utc>, reason: PendingReason) -> &mut Story {
        self.push(at, FactKind::Changed, |t| {
            t.status = TicketStatus::Pending;
            t.pending_reason = Some(reason);
        })
    }
}

fn clock(policy: &Policy, metric: Metric, story: &Story, now: DateTime<Utc>) -> ClockView {
    let world = World::new();
    fold(policy, metric, &story.history, &world.book(), now).expect("a clock")
}

fn kinds(view: &ClockView) -> Vec<EntryKind> {
    view.timeline
        .iter()
        .filter(|e| e.kind != EntryKind::Counted)
        .map(|e| e.kind)
        .collect()
}

fn keys(view: &ClockView) -> Vec<String> {
    view.transitions()
        .filter_map(|e| e.event_key.clone())
        .collect()
}

// Monday 7 December 2026: Stockholm is UTC+1, working 08:00–17:00 local = 07:00–16:00 UTC.

#[test]
fn a_running_clock_counts_business_hours_and_knows_its_due_time() {
    let story = Story::created(utc(7, 9, 0));
    let view = clock(
        &policy(PolicyKind::Sla),
        Metric::Resolution,
        &story,
        utc(7, 12, 0),
    );
    assert_eq!(view.state, ClockState::Running);
    assert_eq!(view.elapsed, TimeDelta::hours(3));
    assert_eq!(view.target, TimeDelta::hours(8));
    // 7 business hours Monday 09:00–16:00 UTC, one more Tuesday from 07:00.
    assert_eq!(view.due, Some(utc(8, 8, 0)));
    // 75 % of 8 h = 6 h: Monday 15:00 UTC.
    assert_eq!(view.next_timer, Some(utc(7, 15, 0)));
}

#[test]
fn nights_and_weekends_do_not_count() {
    // Friday 11 December 15:00 UTC (16:00 local), 8 h target: 1 h Friday, 7 h Monday.
    let story = Story::created(utc(11, 15, 0));
    let view = clock(
        &policy(PolicyKind::Sla),
        Metric::Resolution,
        &story,
        utc(12, 12, 0),
    );
    assert_eq!(view.elapsed, TimeDelta::hours(1));
    assert_eq!(view.due, Some(utc(14, 14, 0)));
}

#[test]
fn pending_on_the_customer_pauses_and_resuming_counts_on() {
    let mut story = Story::created(utc(7, 8, 0));
    story
        .pending(utc(7, 10, 0), PendingReason::Customer)
        .status(utc(7, 13, 0), TicketStatus::InProgress);
    let view = clock(
        &policy(PolicyKind::Sla),
        Metric::Resolution,
        &story,
        utc(7, 14, 0),
    );
    assert_eq!(view.state, ClockState::Running);
    // 08–10 and 13–14 counted; 10–13 paused.
    assert_eq!(view.elapsed, TimeDelta::hours(3));
    assert_eq!(view.paused_total, TimeDelta::hours(3));
    assert_eq!(
        kinds(&view),
        [EntryKind::Started, EntryKind::Paused, EntryKind::Resumed]
    );
    let paused = view
        .timeline
        .iter()
        .find(|e| e.kind == EntryKind::Paused)
        .expect("a pause");
    assert_eq!(paused.actor.as_deref(), Some("ada"));
    assert_eq!(paused.reason, "pending: customer");
    // Due: 6 h left when counting resumed at 13:00 UTC: 13–16 Monday, 07–10 Tuesday.
    assert_eq!(view.due, Some(utc(8, 10, 0)));
}

#[test]
fn a_paused_clock_has_no_due_time_and_no_timer() {
    let mut story = Story::created(utc(7, 8, 0));
    story.pending(utc(7, 9, 0), PendingReason::Customer);
    let view = clock(
        &policy(PolicyKind::Sla),
        Metric::Resolution,
        &story,
        utc(9, 9, 0),
    );
    assert_eq!(view.state, ClockState::Paused);
    assert_eq!(view.due, None);
    assert_eq!(view.next_timer, None);
    assert_eq!(view.elapsed, TimeDelta::hours(1));
    assert_eq!(view.paused_total, TimeDelta::hours(48));
}

#[test]
fn pending_on_a_vendor_does_not_pause() {
    let mut story = Story::created(utc(7, 8, 0));
    story.pending(utc(7, 9, 0), PendingReason::Vendor);
    let view = clock(
        &policy(PolicyKind::Sla),
        Metric::Resolution,
        &story,
        utc(7, 11, 0),
    );
    assert_eq!(view.state, ClockState::Running);
    assert_eq!(view.elapsed, TimeDelta::hours(3));
}

#[test]
fn a_priority_change_retargets_and_keeps_elapsed_and_paused_time() {
    let mut story = Story::created(utc(7, 8, 0));
    story
        .pending(utc(7, 9, 0), PendingReason::Customer)
        .status(utc(7, 10, 0), TicketStatus::InProgress)
        .push(utc(7, 10, 30), FactKind::Changed, |t| {
            t.priority = Priority::new(1).expect("p1");
        });
    let view = clock(
        &policy(PolicyKind::Sla),
        Metric::Resolution,
        &story,
        utc(7, 10, 45),
    );
    assert_eq!(view.target, TimeDelta::hours(2));
    assert_eq!(view.paused_total, TimeDelta::hours(1));
    assert_eq!(view.elapsed, TimeDelta::minutes(105));
    // 2 h target, 1 h 30 used at 10:30: due at 11:00 UTC, the pause not counted.
    assert_eq!(view.due, Some(utc(7, 11, 0)));
    let retarget = view
        .timeline
        .iter()
        .find(|e| e.kind == EntryKind::Retargeted)
        .expect("retargeted");
    assert!(retarget.reason.contains("8h → 2h"), "{}", retarget.reason);
    assert!(
        retarget.reason.contains("1h paused kept"),
        "{}",
        retarget.reason
    );
    // 75 % (1 h 30) is behind the new target at once; 90 % (1 h 48) falls at 10:48.
    let warnings: Vec<(Option<u32>, DateTime<Utc>)> = view
        .timeline
        .iter()
        .filter(|e| e.kind == EntryKind::Warning)
        .map(|e| (e.threshold_percent, e.at))
        .collect();
    assert_eq!(warnings, [(Some(75), utc(7, 10, 30))]);
    assert_eq!(view.next_timer, Some(utc(7, 10, 48)));
}

#[test]
fn a_retarget_below_the_elapsed_time_breaches_at_once() {
    let mut story = Story::created(utc(7, 8, 0));
    story.push(utc(7, 11, 0), FactKind::Changed, |t| {
        t.priority = Priority::new(1).expect("p1");
    });
    let view = clock(
        &policy(PolicyKind::Sla),
        Metric::Resolution,
        &story,
        utc(7, 11, 0),
    );
    assert_eq!(view.state, ClockState::Breached);
    assert_eq!(view.breached_at, Some(utc(7, 11, 0)));
}

#[test]
fn the_timeline_explains_a_breach_to_the_minute() {
    // Thursday 24 December 15:00 UTC (16:00 local), 8 h target; Christmas Day is a holiday.
    let mut story = Story::created(utc(24, 15, 0));
    story.status(utc(29, 9, 0), TicketStatus::Resolved);
    let view = clock(
        &policy(PolicyKind::Sla),
        Metric::Resolution,
        &story,
        utc(29, 10, 0),
    );
    assert_eq!(view.state, ClockState::Breached);
    // 1 h Thursday, Friday a holiday, 7 h Monday 28th 07:00–14:00 UTC.
    assert_eq!(view.breached_at, Some(utc(28, 14, 0)));
    assert_eq!(
        kinds(&view),
        [
            EntryKind::Started,
            EntryKind::Warning,
            EntryKind::Warning,
            EntryKind::Breached,
            EntryKind::Stopped
        ]
    );
    let counted: Vec<&TimelineEntry> = view
        .timeline
        .iter()
        .filter(|e| e.kind == EntryKind::Counted)
        .collect();
    assert_eq!(counted.len(), 1);
    assert_eq!(counted[0].calendar_id, Some(STOCKHOLM));
    assert!(
        counted[0]
            .reason
            .contains("holiday 2026-12-25 (Juldagen) skipped"),
        "{}",
        counted[0].reason
    );
    assert_eq!(
        keys(&view),
        ["0:started", "0:warning:75", "0:warning:90", "0:breached"]
    );
}

#[test]
fn resolving_before_the_due_time_meets_the_target() {
    let mut story = Story::created(utc(7, 8, 0));
    story.status(utc(7, 8, 30), TicketStatus::InProgress);
    story.status(utc(7, 16, 0), TicketStatus::Resolved);
    let policy = policy(PolicyKind::Sla);
    let resolution = clock(&policy, Metric::Resolution, &story, utc(8, 0, 0));
    assert_eq!(resolution.state, ClockState::Met);
    assert_eq!(resolution.stopped_at, Some(utc(7, 16, 0)));
    assert_eq!(resolution.elapsed, TimeDelta::hours(8));
    assert_eq!(resolution.due, None);
    let response = clock(&policy, Metric::FirstResponse, &story, utc(8, 0, 0));
    assert_eq!(response.state, ClockState::Met);
    assert_eq!(response.stopped_at, Some(utc(7, 8, 30)));
    assert_eq!(
        keys(&resolution),
        ["0:started", "0:warning:75", "0:warning:90", "0:met:1"]
    );
    assert_eq!(keys(&response), ["0:started", "0:met:1"]);
}

#[test]
fn a_clock_breaches_at_its_due_instant_not_before() {
    let story = Story::created(utc(7, 8, 0));
    let policy = policy(PolicyKind::Sla);
    let before = clock(&policy, Metric::FirstResponse, &story, utc(7, 8, 59));
    assert_eq!(before.state, ClockState::Running);
    let at = clock(&policy, Metric::FirstResponse, &story, utc(7, 9, 0));
    assert_eq!(at.state, ClockState::Breached);
    assert_eq!(at.breached_at, Some(utc(7, 9, 0)));
    assert_eq!(at.due, Some(utc(7, 9, 0)));
    assert_eq!(at.next_timer, None);
}

#[test]
fn the_ola_follows_the_owner_onto_another_regions_calendar() {
    // Owned by emea-l1 (Stockholm) from Monday 07:00 UTC, handed to apac-l2 (Jakarta, UTC+7,
    // 09–18 local = 02–11 UTC) at 15:00 UTC.
    let mut story = Story::created(utc(7, 7, 0));
    story.push(utc(7, 15, 0), FactKind::Changed, |t| {
        t.team_id = Some("apac-l2".into());
        t.status = TicketStatus::Assigned;
    });
    let ola = policy(PolicyKind::Ola);
    let view = clock(&ola, Metric::Resolution, &story, utc(8, 3, 0));
    assert_eq!(view.team_id.as_deref(), Some("apac-l2"));
    assert_eq!(view.calendar_id, Some(JAKARTA));
    let counted: Vec<(Option<Uuid>, TimeDelta)> = view
        .timeline
        .iter()
        .filter(|e| e.kind == EntryKind::Counted)
        .map(|e| (e.calendar_id, e.business))
        .collect();
    // Stockholm counted 8 h (07–15 UTC), Jakarta 1 h (Tuesday 02–03 UTC).
    assert_eq!(
        counted,
        [
            (Some(STOCKHOLM), TimeDelta::hours(8)),
            (Some(JAKARTA), TimeDelta::hours(1))
        ]
    );
    let moved = view
        .timeline
        .iter()
        .find(|e| e.kind == EntryKind::CalendarChanged)
        .expect("the owner moved");
    assert_eq!(moved.reason, "owner emea-l1 → apac-l2");
    // The SLA on the same history stays on the customer's (policy's) calendar.
    let sla = clock(
        &policy(PolicyKind::Sla),
        Metric::Resolution,
        &story,
        utc(8, 3, 0),
    );
    assert_eq!(sla.calendar_id, Some(STOCKHOLM));
    assert_eq!(sla.elapsed, TimeDelta::hours(9));
}

#[test]
fn an_ola_due_time_is_counted_on_the_new_owners_calendar() {
    let mut ola = policy(PolicyKind::Ola);
    ola.rules.targets[1].business_minutes = 10 * 60;
    let mut story = Story::created(utc(7, 7, 0));
    story.push(utc(7, 15, 0), FactKind::Changed, |t| {
        t.team_id = Some("apac-l2".into());
    });
    let view = clock(&ola, Metric::Resolution, &story, utc(7, 15, 0));
    // 8 h used in Stockholm; 2 h left on Jakarta from Tuesday 02:00 UTC.
    assert_eq!(view.due, Some(utc(8, 4, 0)));
}

#[test]
fn reopening_resumes_or_resets_by_the_policy() {
    let mut story = Story::created(utc(7, 8, 0));
    story.status(utc(7, 10, 0), TicketStatus::Resolved).push(
        utc(7, 12, 0),
        FactKind::Reopened,
        |t| {
            t.status = TicketStatus::InProgress;
        },
    );
    let mut policy = policy(PolicyKind::Sla);
    let resumed = clock(&policy, Metric::Resolution, &story, utc(7, 13, 0));
    assert_eq!(resumed.state, ClockState::Running);
    // 2 h before resolution, the resolved 2 h not counted, 1 h after reopening.
    assert_eq!(resumed.elapsed, TimeDelta::hours(3));
    assert_eq!(keys(&resumed), ["0:started", "0:met:1", "0:resumed:r1"]);

    policy.rules.conditions.reset_on_reopen = true;
    let reset = clock(&policy, Metric::Resolution, &story, utc(7, 13, 0));
    assert_eq!(reset.elapsed, TimeDelta::hours(1));
    assert_eq!(keys(&reset), ["0:started", "0:met:1", "1:started"]);

    // First response (1 h, breached at 09:00) stopped at the resolution and never restarts.
    let response = clock(&policy, Metric::FirstResponse, &story, utc(7, 13, 0));
    assert_eq!(response.state, ClockState::Breached);
    assert_eq!(response.stopped_at, Some(utc(7, 10, 0)));
}

#[test]
fn a_calendar_change_moves_the_due_time_on_recomputation() {
    let story = Story::created(utc(7, 8, 0));
    let policy = policy(PolicyKind::Sla);
    let mut world = World::new();
    let before = fold(
        &policy,
        Metric::Resolution,
        &story.history,
        &world.book(),
        utc(7, 9, 0),
    )
    .expect("a clock");
    // The office now opens at 10:00 local (09:00 UTC).
    world
        .calendars
        .insert(STOCKHOLM, office("Europe/Stockholm", 10, 17, vec![]));
    let after = fold(
        &policy,
        Metric::Resolution,
        &story.history,
        &world.book(),
        utc(7, 9, 0),
    )
    .expect("a clock");
    // 8 h from Monday 08:00 UTC: to 16:00 the same day.
    assert_eq!(before.due, Some(utc(7, 16, 0)));
    // 7 h Monday 09:00–16:00 UTC, 1 h Tuesday from 09:00.
    assert_eq!(after.due, Some(utc(8, 10, 0)));
}

#[test]
fn an_unknown_calendar_counts_around_the_clock() {
    let mut policy = policy(PolicyKind::Sla);
    policy.rules.calendar_id = Some(Uuid::from_u128(77));
    let story = Story::created(utc(12, 0, 0));
    let view = clock(&policy, Metric::Resolution, &story, utc(12, 5, 0));
    assert_eq!(view.elapsed, TimeDelta::hours(5));
    assert_eq!(view.due, Some(utc(12, 8, 0)));
}

#[test]
fn the_same_history_folds_to_the_same_keys_whenever_it_is_folded() {
    let mut story = Story::created(utc(7, 8, 0));
    story
        .pending(utc(7, 9, 0), PendingReason::Customer)
        .status(utc(7, 10, 0), TicketStatus::InProgress)
        .pending(utc(7, 11, 0), PendingReason::Customer)
        .status(utc(7, 12, 0), TicketStatus::InProgress);
    let policy = policy(PolicyKind::Sla);
    let early = clock(&policy, Metric::Resolution, &story, utc(7, 12, 0));
    let late = clock(&policy, Metric::Resolution, &story, utc(8, 12, 0));
    let early_keys = keys(&early);
    assert_eq!(
        early_keys,
        [
            "0:started",
            "0:paused:1",
            "0:resumed:1",
            "0:paused:2",
            "0:resumed:2"
        ]
    );
    // Later, the warnings and the breach are added; nothing before them changes.
    assert_eq!(keys(&late)[..5], early_keys[..]);
    assert_eq!(
        keys(&late)[5..],
        ["0:warning:75", "0:warning:90", "0:breached"]
    );
}

#[test]
fn no_clock_without_a_target_for_the_metric() {
    let mut policy = policy(PolicyKind::Sla);
    policy
        .rules
        .targets
        .retain(|t| t.metric == Metric::Resolution);
    let story = Story::created(utc(7, 8, 0));
    let world = World::new();
    assert!(
        fold(
            &policy,
            Metric::FirstResponse,
            &story.history,
            &world.book(),
            utc(7, 9, 0)
        )
        .is_none()
    );
    assert!(
        fold(
            &policy,
            Metric::Resolution,
            &TicketHistory::default(),
            &world.book(),
            utc(7, 9, 0)
        )
        .is_none()
    );
}

#[test]
fn a_breach_falling_exactly_on_a_fact_that_does_not_stop_the_clock_is_kept() {
    // 8 h used up at 15:00 UTC exactly, when the ticket moves to another team.
    let mut story = Story::created(utc(7, 7, 0));
    story.push(utc(7, 15, 0), FactKind::Changed, |t| {
        t.team_id = Some("apac-l2".into());
    });
    let policy = policy(PolicyKind::Sla);
    let at_the_fact = clock(&policy, Metric::Resolution, &story, utc(7, 15, 0));
    assert_eq!(at_the_fact.state, ClockState::Breached);
    assert_eq!(at_the_fact.breached_at, Some(utc(7, 15, 0)));
    let later = clock(&policy, Metric::Resolution, &story, utc(8, 12, 0));
    assert_eq!(later.breached_at, Some(utc(7, 15, 0)));
    assert_eq!(
        keys(&later)
            .iter()
            .filter(|k| k.ends_with("breached"))
            .count(),
        1
    );
}

#[test]
fn resolving_at_the_due_second_meets_the_target() {
    let mut story = Story::created(utc(7, 7, 0));
    story.status(utc(7, 15, 0), TicketStatus::Resolved);
    let view = clock(
        &policy(PolicyKind::Sla),
        Metric::Resolution,
        &story,
        utc(8, 0, 0),
    );
    assert_eq!(view.state, ClockState::Met);
}
