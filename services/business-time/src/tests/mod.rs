//! Worked examples of the arithmetic (the DST rules of the crate docs, overnight spans,
//! holidays, exceptions, explanations); `reference` checks the same against a naive
//! minute-by-minute count with generated calendars.

mod reference;

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeDelta, TimeZone, Utc, Weekday};
use chrono_tz::Tz;

use crate::*;
use Weekday::*;

fn utc(y: i32, m: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, h, mi, 0)
        .single()
        .expect("a real instant")
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("a real date")
}

fn wall(y: i32, m: u32, d: u32, h: u32, mi: u32) -> NaiveDateTime {
    date(y, m, d).and_hms_opt(h, mi, 0).expect("a real time")
}

fn calendar(zone: &str, weekly_hours: Vec<WorkingSpan>) -> BusinessCalendar {
    BusinessCalendar::new(CalendarSpec {
        time_zone: zone.into(),
        weekly_hours,
        ..CalendarSpec::default()
    })
    .expect("a valid calendar")
}

fn every_day(start_minute: u32, end_minute: u32) -> Vec<WorkingSpan> {
    [Mon, Tue, Wed, Thu, Fri, Sat, Sun]
        .into_iter()
        .map(|weekday| WorkingSpan::daytime(weekday, start_minute, end_minute))
        .collect()
}

fn office_hours(zone: &str) -> BusinessCalendar {
    calendar(
        zone,
        [Mon, Tue, Wed, Thu, Fri]
            .into_iter()
            .map(|day| WorkingSpan::daytime(day, hm(9, 0), hm(17, 0)))
            .collect(),
    )
}

fn intervals(
    calendar: &BusinessCalendar,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    calendar
        .working_intervals_between(from, to)
        .map(|interval| (interval.start, interval.end))
        .collect()
}

#[test]
fn a_span_across_the_spring_forward_gap_counts_only_the_hour_the_clock_shows() {
    // Europe/Stockholm, Sunday 2026-03-29: 02:00 CET becomes 03:00 CEST (01:00 UTC).
    let given = calendar(
        "Europe/Stockholm",
        vec![WorkingSpan::daytime(Sun, hm(1, 0), hm(3, 0))],
    );
    let (night_start, night_end) = (utc(2026, 3, 28, 12, 0), utc(2026, 3, 29, 12, 0));
    assert_eq!(
        given.business_between(night_start, night_end),
        TimeDelta::hours(1)
    );
    assert_eq!(
        intervals(&given, night_start, night_end),
        vec![(utc(2026, 3, 29, 0, 0), utc(2026, 3, 29, 1, 0))]
    );
}

#[test]
fn a_span_starting_inside_the_gap_starts_when_the_clock_jumps_past_it() {
    let given = calendar(
        "Europe/Stockholm",
        vec![WorkingSpan::daytime(Sun, hm(2, 30), hm(5, 0))],
    );
    let sunday = utc(2026, 3, 28, 12, 0);
    assert_eq!(
        given.next_working_instant(sunday),
        Some(utc(2026, 3, 29, 1, 0))
    );
    assert_eq!(
        given.business_between(sunday, utc(2026, 3, 30, 0, 0)),
        TimeDelta::hours(2)
    );
}

#[test]
fn a_span_across_the_fall_back_change_counts_the_repeated_hour_twice() {
    // Europe/Stockholm, Sunday 2026-10-25: 03:00 CEST becomes 02:00 CET (01:00 UTC).
    let given = calendar(
        "Europe/Stockholm",
        vec![WorkingSpan::daytime(Sun, hm(1, 0), hm(3, 0))],
    );
    let (night_start, night_end) = (utc(2026, 10, 24, 12, 0), utc(2026, 10, 25, 12, 0));
    assert_eq!(
        given.business_between(night_start, night_end),
        TimeDelta::hours(3)
    );
    // One interval, although the walk crossed an offset change inside it.
    assert_eq!(
        intervals(&given, night_start, night_end),
        vec![(utc(2026, 10, 24, 23, 0), utc(2026, 10, 25, 2, 0))]
    );
}

#[test]
fn a_span_starting_inside_the_repeated_hour_is_worked_in_two_parts() {
    let given = calendar(
        "Europe/Stockholm",
        vec![WorkingSpan::daytime(Sun, hm(2, 30), hm(4, 0))],
    );
    let (night_start, night_end) = (utc(2026, 10, 24, 12, 0), utc(2026, 10, 25, 12, 0));
    assert_eq!(
        intervals(&given, night_start, night_end),
        vec![
            (utc(2026, 10, 25, 0, 30), utc(2026, 10, 25, 1, 0)),
            (utc(2026, 10, 25, 1, 30), utc(2026, 10, 25, 3, 0))
        ]
    );
    assert!(
        !given.is_working(utc(2026, 10, 25, 1, 10)),
        "02:10 CET is before the span, though 02:10 CEST was not"
    );
}

#[test]
fn half_hour_dst_on_lord_howe_shortens_and_lengthens_the_night() {
    // Australia/Lord_Howe: 2026-04-05 02:00 (+11) goes back to 01:30 (+10:30); 2026-10-04 02:00
    // (+10:30) jumps to 02:30 (+11).
    let given = calendar("Australia/Lord_Howe", every_day(hm(0, 0), hm(6, 0)));
    let whole_local_day = |y, m, d| {
        let start = given.next_working_instant(
            Tz::Australia__Lord_Howe
                .with_ymd_and_hms(y, m, d, 0, 0, 0)
                .single()
                .expect("midnight exists there")
                .to_utc(),
        );
        let start = start.expect("a working day");
        given.business_between(start, start + TimeDelta::hours(12))
    };
    assert_eq!(whole_local_day(2026, 4, 5), TimeDelta::minutes(6 * 60 + 30));
    assert_eq!(
        whole_local_day(2026, 10, 4),
        TimeDelta::minutes(6 * 60 - 30)
    );
    assert_eq!(whole_local_day(2026, 6, 1), TimeDelta::hours(6));
}

#[test]
fn sao_paulo_historic_dst_changed_at_midnight_and_took_the_first_hour_of_the_day() {
    // America/Sao_Paulo, 2018-11-04: 00:00 (-03) jumped to 01:00 (-02), so that day began at 01:00.
    let given = calendar("America/Sao_Paulo", every_day(hm(0, 0), hm(8, 0)));
    assert_eq!(
        given.next_working_instant(utc(2018, 11, 4, 2, 0)),
        Some(utc(2018, 11, 4, 3, 0))
    );
    assert_eq!(
        given.business_between(utc(2018, 11, 4, 0, 0), utc(2018, 11, 5, 0, 0)),
        TimeDelta::hours(7)
    );
    // 2019-02-17 00:00 (-02) went back to 2019-02-16 23:00 (-03): the 16th had 25 hours.
    let around_the_clock = BusinessCalendar::around_the_clock(Tz::America__Sao_Paulo);
    let sixteenth = around_the_clock.explain(utc(2019, 2, 16, 2, 0), utc(2019, 2, 17, 12, 0));
    let TimelineRule::WeeklySpan { local_date, .. } = &sixteenth.entries[0].rule else {
        panic!(
            "expected a weekly span, got {:?}",
            sixteenth.entries[0].rule
        );
    };
    assert_eq!(*local_date, date(2019, 2, 16));
    assert_eq!(sixteenth.entries[0].duration(), TimeDelta::hours(25));
}

#[test]
fn an_overnight_span_belongs_to_the_day_it_starts_on() {
    let given = BusinessCalendar::new(CalendarSpec {
        time_zone: "Asia/Jakarta".into(),
        weekly_hours: vec![WorkingSpan::overnight(Fri, hm(22, 0), hm(6, 0))],
        // Saturday 2026-05-02 is a holiday; it does not touch Friday night's shift.
        holidays: vec![Holiday::new(date(2026, 5, 2), "not Friday")],
        exceptions: vec![],
    })
    .expect("a valid calendar");
    // Jakarta is UTC+7: Friday 22:00 local is 15:00 UTC.
    let friday_night = (utc(2026, 5, 1, 15, 0), utc(2026, 5, 1, 23, 0));
    assert_eq!(
        intervals(&given, utc(2026, 5, 1, 0, 0), utc(2026, 5, 3, 0, 0)),
        vec![friday_night]
    );
    assert!(
        given.is_working(utc(2026, 5, 1, 22, 0)),
        "Saturday 05:00 local is still Friday's shift"
    );
    let on_a_friday_holiday = given
        .with_holidays([Holiday::new(date(2026, 5, 8), "Friday off")])
        .expect("a valid calendar");
    assert_eq!(
        on_a_friday_holiday.business_between(utc(2026, 5, 8, 0, 0), utc(2026, 5, 10, 0, 0)),
        TimeDelta::zero()
    );
}

#[test]
fn a_due_time_skips_holidays_and_closed_time_and_counts_extra_time() {
    let stockholm = |y, m, d, h, mi| {
        Tz::Europe__Stockholm
            .with_ymd_and_hms(y, m, d, h, mi, 0)
            .single()
            .expect("an unambiguous local time")
            .to_utc()
    };
    let given = BusinessCalendar::new(CalendarSpec {
        holidays: vec![Holiday::new(date(2026, 12, 25), "Juldagen")],
        exceptions: vec![
            CalendarException::closed(
                wall(2026, 12, 24, 12, 0),
                wall(2026, 12, 25, 0, 0),
                "Julafton",
            ),
            CalendarException::working(
                wall(2026, 12, 26, 10, 0),
                wall(2026, 12, 26, 12, 0),
                "Boxing day cover",
            ),
        ],
        ..office_hours("Europe/Stockholm").spec()
    })
    .expect("a valid calendar");
    let reported = stockholm(2026, 12, 24, 11, 0);
    // 1 h Thursday morning, 2 h extra on Saturday, then Monday from 09:00.
    assert_eq!(
        given
            .add_business(reported, TimeDelta::hours(5))
            .expect("a due time"),
        stockholm(2026, 12, 28, 11, 0)
    );
    assert_eq!(
        given.business_between(reported, stockholm(2026, 12, 28, 11, 0)),
        TimeDelta::hours(5)
    );
    assert_eq!(
        given
            .add_business(reported, TimeDelta::zero())
            .expect("a due time"),
        reported
    );
}

#[test]
fn an_explanation_names_each_rule_and_every_skipped_holiday() {
    let given = BusinessCalendar::new(CalendarSpec {
        holidays: vec![
            Holiday::new(date(2026, 12, 25), "Juldagen"),
            Holiday::new(date(2026, 12, 25), "Christmas"),
        ],
        exceptions: vec![CalendarException::closed(
            wall(2026, 12, 24, 12, 0),
            wall(2026, 12, 25, 0, 0),
            "Julafton",
        )],
        ..office_hours("Europe/Stockholm").spec()
    })
    .expect("a valid calendar");
    let explanation = given.explain(utc(2026, 12, 24, 0, 0), utc(2026, 12, 26, 0, 0));
    let thursday = WorkingSpan::daytime(Thu, hm(9, 0), hm(17, 0));
    let friday = WorkingSpan::daytime(Fri, hm(9, 0), hm(17, 0));
    assert_eq!(
        explanation.entries,
        vec![
            TimelineEntry {
                start: utc(2026, 12, 24, 8, 0),
                end: utc(2026, 12, 24, 11, 0),
                rule: TimelineRule::WeeklySpan {
                    index: 3,
                    span: thursday,
                    local_date: date(2026, 12, 24)
                },
            },
            TimelineEntry {
                start: utc(2026, 12, 24, 11, 0),
                end: utc(2026, 12, 24, 16, 0),
                rule: TimelineRule::ClosedTime {
                    span_index: 3,
                    span: thursday,
                    local_date: date(2026, 12, 24),
                    exception_index: 0,
                    label: "Julafton".into(),
                },
            },
            TimelineEntry {
                start: utc(2026, 12, 25, 8, 0),
                end: utc(2026, 12, 25, 16, 0),
                rule: TimelineRule::Holiday {
                    span_index: 4,
                    span: friday,
                    local_date: date(2026, 12, 25),
                    names: vec!["Juldagen".into(), "Christmas".into()],
                },
            },
        ]
    );
    assert_eq!(explanation.business_time, TimeDelta::hours(3));
    assert_eq!(
        explanation.holidays_skipped,
        vec![SkippedHoliday {
            date: date(2026, 12, 25),
            names: vec!["Juldagen".into(), "Christmas".into()],
            skipped: TimeDelta::hours(8),
        }]
    );
}

#[test]
fn routing_can_ask_whether_a_team_works_now_and_when_its_shift_ends_or_next_starts() {
    let given = BusinessCalendar::new(CalendarSpec {
        exceptions: vec![CalendarException::working(
            wall(2026, 6, 1, 17, 0),
            wall(2026, 6, 1, 19, 0),
            "release night",
        )],
        ..office_hours("America/New_York").spec()
    })
    .expect("a valid calendar");
    // Monday 2026-06-01, New York is UTC-4 in summer.
    let monday_noon = utc(2026, 6, 1, 16, 0);
    assert!(given.is_working(monday_noon));
    let a_day_later = monday_noon + TimeDelta::days(1);
    assert_eq!(
        given.working_until(monday_noon, a_day_later),
        Some(utc(2026, 6, 1, 23, 0)),
        "the shift runs into the extra time"
    );
    assert_eq!(
        given.working_until(monday_noon, utc(2026, 6, 1, 20, 0)),
        Some(utc(2026, 6, 1, 20, 0)),
        "still working then"
    );
    let monday_night = utc(2026, 6, 2, 1, 0);
    assert!(!given.is_working(monday_night));
    assert_eq!(
        given.working_until(monday_night, monday_night + TimeDelta::days(1)),
        None
    );
    assert_eq!(
        given.next_working_instant(monday_night),
        Some(utc(2026, 6, 2, 13, 0))
    );
}

#[test]
fn an_around_the_clock_calendar_counts_elapsed_time_across_dst() {
    let given = BusinessCalendar::around_the_clock(Tz::America__New_York);
    let (from, to) = (utc(2026, 3, 7, 3, 17), utc(2026, 11, 2, 9, 41));
    assert_eq!(given.business_between(from, to), to - from);
    assert_eq!(given.add_business(from, to - from).expect("a due time"), to);
    assert_eq!(
        given.working_until(from, to),
        Some(to),
        "still working at the end of the look-ahead"
    );
}

#[test]
fn sub_minute_instants_and_durations_are_exact() {
    let given = office_hours("Asia/Jakarta");
    let start = utc(2026, 6, 1, 9, 59) + TimeDelta::milliseconds(1_500);
    let due = given
        .add_business(start, TimeDelta::milliseconds(60_250))
        .expect("a due time");
    assert_eq!(
        due,
        utc(2026, 6, 2, 2, 0) + TimeDelta::milliseconds(1_750),
        "one minute and a quarter second, across the night"
    );
}

#[test]
fn negative_durations_and_calendars_closed_forever_are_errors_not_answers() {
    let given = office_hours("Europe/Stockholm");
    assert_eq!(
        given.add_business(utc(2026, 1, 1, 0, 0), TimeDelta::minutes(-1)),
        Err(BusinessTimeError::NegativeDuration)
    );
    let closed_forever = BusinessCalendar::new(CalendarSpec {
        exceptions: vec![CalendarException::closed(
            wall(2026, 1, 1, 0, 0),
            wall(2200, 12, 31, 23, 59),
            "gone",
        )],
        ..given.spec()
    })
    .expect("a valid calendar");
    let from = utc(2026, 6, 1, 0, 0);
    assert_eq!(
        closed_forever.add_business(from, TimeDelta::minutes(1)),
        Err(BusinessTimeError::NoWorkingTimeBeforeHorizon { horizon_year: 2200 })
    );
    assert_eq!(closed_forever.next_working_instant(from), None);
    assert_eq!(
        given.next_working_instant(utc(2300, 1, 1, 0, 0)),
        None,
        "beyond the horizon nothing works"
    );
    assert_eq!(
        given.business_between(utc(2026, 6, 2, 0, 0), utc(2026, 6, 1, 0, 0)),
        TimeDelta::zero()
    );
}

#[test]
fn a_calendar_closed_for_years_resumes_exactly_when_the_closure_ends() {
    let given = BusinessCalendar::new(CalendarSpec {
        exceptions: vec![CalendarException::closed(
            wall(2030, 1, 1, 0, 0),
            wall(2190, 1, 3, 12, 0),
            "long closure",
        )],
        ..calendar(
            "Europe/Stockholm",
            vec![WorkingSpan::overnight(Sat, hm(22, 0), hm(14, 0))],
        )
        .spec()
    })
    .expect("a valid calendar");
    // 2190-01-03 is a Sunday: Saturday's overnight span resumes at noon when the closure ends.
    let resumed = Tz::Europe__Stockholm
        .with_ymd_and_hms(2190, 1, 3, 12, 0, 0)
        .single()
        .expect("an unambiguous local time")
        .to_utc();
    assert_eq!(
        given.next_working_instant(utc(2029, 12, 31, 23, 30)),
        Some(resumed)
    );
}
