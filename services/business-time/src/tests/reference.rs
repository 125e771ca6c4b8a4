//! Property tests against a naive reference: every UTC minute of a window is converted to local
//! wall-clock time and checked against the calendar's rules one by one, with none of the
//! library's machinery (no offset pieces, no segments, no jumps). Generated calendars have
//! spans, holidays and exceptions around real DST changes in zones with ordinary, historic,
//! half-hour and no DST.

use chrono::{DateTime, Datelike, Duration, NaiveDateTime, TimeDelta, Utc};
use chrono_tz::Tz;
use proptest::prelude::*;

use crate::*;

/// Minutes of each window the reference evaluates.
const WINDOW_MINUTES: i64 = 30 * 24 * 60;

/// One zone with instants near which its offset changes (or, for Jakarta, does not).
struct ZoneCase {
    zone: &'static str,
    changes: &'static [&'static str],
}

const ZONES: &[ZoneCase] = &[
    ZoneCase {
        zone: "Europe/Stockholm",
        changes: &["2026-03-29T01:00:00Z", "2026-10-25T01:00:00Z"],
    },
    // Historic DST, changed at local midnight (abolished in 2019).
    ZoneCase {
        zone: "America/Sao_Paulo",
        changes: &["2018-11-04T03:00:00Z", "2019-02-17T02:00:00Z"],
    },
    ZoneCase {
        zone: "America/New_York",
        changes: &["2026-03-08T07:00:00Z", "2026-11-01T06:00:00Z"],
    },
    ZoneCase {
        zone: "Asia/Jakarta",
        changes: &["2026-06-01T00:00:00Z"],
    },
    // Half-hour DST.
    ZoneCase {
        zone: "Australia/Lord_Howe",
        changes: &["2026-04-04T15:00:00Z", "2026-10-03T15:30:00Z"],
    },
];

/// A generated case: a valid calendar and a window start (a whole UTC minute).
#[derive(Debug, Clone)]
struct Case {
    calendar: BusinessCalendar,
    window_start: DateTime<Utc>,
    /// Minute index of the offset change the window was placed around.
    change_index: i64,
}

impl Case {
    /// A range `[from, to)` of minute indexes from a generated `(near_change, x, y)`: anywhere
    /// in the first two thirds of the window, or (half of the time) with one end within three
    /// hours of the offset change, where walks restart and ranges cut folds in two.
    fn range(&self, (near_change, x, y): (u8, i64, i64)) -> (i64, i64) {
        let near =
            |value: i64| (self.change_index + value % 360 - 180).clamp(0, WINDOW_MINUTES * 2 / 3);
        let (from, to) = match near_change % 4 {
            0 => (near(x), near(x) + y % (WINDOW_MINUTES / 3)),
            1 => (near(y) - x % (3 * 24 * 60), near(y)),
            2 => (near(x), near(x) + y % 360),
            _ => (
                x % (WINDOW_MINUTES * 2 / 3),
                x % (WINDOW_MINUTES * 2 / 3) + y % (WINDOW_MINUTES / 3),
            ),
        };
        (from.max(0), to.max(from.max(0)))
    }

    fn minute(&self, index: i64) -> DateTime<Utc> {
        self.window_start + TimeDelta::minutes(index)
    }

    /// Whether each minute of the window is working, by the rules read literally.
    fn reference_minutes(&self) -> Vec<bool> {
        let zone = self.calendar.zone();
        let spec = self.calendar.spec();
        (0..WINDOW_MINUTES)
            .map(|index| {
                reference_is_working(&spec, self.minute(index).with_timezone(&zone).naive_local())
            })
            .collect()
    }
}

fn reference_is_working(spec: &CalendarSpec, wall: NaiveDateTime) -> bool {
    let inside = |exception: &&CalendarException| exception.start <= wall && wall < exception.end;
    if spec
        .exceptions
        .iter()
        .filter(|exception| exception.kind == ExceptionKind::Closed)
        .any(|e| inside(&e))
    {
        return false;
    }
    if spec
        .exceptions
        .iter()
        .filter(|exception| exception.kind == ExceptionKind::Working)
        .any(|e| inside(&e))
    {
        return true;
    }
    [wall.date(), wall.date() - Duration::days(1)]
        .into_iter()
        .any(|date| {
            !spec.holidays.iter().any(|holiday| holiday.date == date)
                && spec
                    .weekly_hours
                    .iter()
                    .filter(|span| span.weekday == date.weekday())
                    .any(|span| {
                        let midnight = date.and_hms_opt(0, 0, 0).unwrap_or(NaiveDateTime::MIN);
                        let start = midnight + Duration::minutes(i64::from(span.start_minute));
                        let end_day = if span.ends_next_day {
                            midnight + Duration::days(1)
                        } else {
                            midnight
                        };
                        let end = end_day + Duration::minutes(i64::from(span.end_minute));
                        start <= wall && wall < end
                    })
        })
}

/// Business minutes in `[from, to)` by counting.
fn reference_between(minutes: &[bool], from: i64, to: i64) -> i64 {
    (from..to.max(from))
        .filter(|&index| minutes[index as usize])
        .count() as i64
}

/// The end of the `duration`-th working minute from `from`, if the window holds it.
fn reference_add(minutes: &[bool], from: i64, duration: i64) -> Option<i64> {
    if duration == 0 {
        return Some(from);
    }
    let mut counted = 0;
    for index in from..WINDOW_MINUTES {
        if minutes[index as usize] {
            counted += 1;
            if counted == duration {
                return Some(index + 1);
            }
        }
    }
    None
}

fn weekday(index: u32) -> chrono::Weekday {
    chrono::Weekday::try_from(index as u8 % 7).unwrap_or(chrono::Weekday::Mon)
}

/// Spans favour the small hours, where DST changes happen, and quarter-hour boundaries, so that
/// half-hour offsets and changes fall inside and at the edges of spans.
fn span_strategy() -> impl Strategy<Value = WorkingSpan> {
    let minute = prop_oneof![
        (0u32..16).prop_map(|quarter| quarter * 15),
        (0u32..96).prop_map(|quarter| quarter * 15)
    ];
    let length = prop_oneof![
        (1u32..16).prop_map(|quarter| quarter * 15),
        (1u32..=96).prop_map(|quarter| quarter * 15)
    ];
    (0u32..7, minute, length).prop_map(|(day, start, length)| {
        let end = start + length;
        if end <= 1440 {
            WorkingSpan::daytime(weekday(day), start, end)
        } else {
            WorkingSpan::overnight(weekday(day), start, end - 1440)
        }
    })
}

fn case_strategy() -> impl Strategy<Value = Case> {
    let zone_and_change =
        (0..ZONES.len()).prop_flat_map(|zone| (Just(zone), 0..ZONES[zone].changes.len()));
    (
        zone_and_change,
        // Window start: a whole minute within three days before the change.
        0i64..(3 * 24 * 60),
        proptest::collection::vec(span_strategy(), 1..10),
        proptest::collection::vec(0i64..30, 0..5),
        proptest::collection::vec((any::<bool>(), 0i64..(28 * 96), 1i64..(3 * 96)), 0..4),
    )
        .prop_map(
            |((zone, change), before_change, spans, holiday_days, exceptions)| {
                let change: DateTime<Utc> = ZONES[zone].changes[change].parse().unwrap_or_default();
                let window_start = change - TimeDelta::minutes(before_change + 24 * 60);
                let local_start_date = window_start
                    .with_timezone(&ZONES[zone].zone.parse::<Tz>().unwrap_or(Tz::UTC))
                    .date_naive();
                let mut spec = CalendarSpec {
                    time_zone: ZONES[zone].zone.into(),
                    ..CalendarSpec::default()
                };
                // Keep each generated part only if the calendar stays valid, so every case is valid.
                for span in spans {
                    spec.weekly_hours.push(span);
                    if BusinessCalendar::new(spec.clone()).is_err() {
                        spec.weekly_hours.pop();
                    }
                }
                let day = |offset: i64| local_start_date + Duration::days(offset);
                spec.holidays = holiday_days
                    .into_iter()
                    .map(|offset| Holiday::new(day(offset), "generated"))
                    .collect();
                for (working, start_quarter, length_quarters) in exceptions {
                    let start = day(0).and_hms_opt(0, 0, 0).unwrap_or(NaiveDateTime::MIN)
                        + Duration::minutes(start_quarter * 15);
                    let end = start + Duration::minutes(length_quarters * 15);
                    let kind = if working {
                        CalendarException::working
                    } else {
                        CalendarException::closed
                    };
                    spec.exceptions.push(kind(start, end, "generated"));
                    if BusinessCalendar::new(spec.clone()).is_err() {
                        spec.exceptions.pop();
                    }
                }
                let calendar = BusinessCalendar::new(spec)
                    .unwrap_or_else(|_| BusinessCalendar::around_the_clock(Tz::UTC));
                Case {
                    calendar,
                    window_start,
                    change_index: before_change + 24 * 60,
                }
            },
        )
}

fn range_strategy() -> impl Strategy<Value = (u8, i64, i64)> {
    (any::<u8>(), 0i64..WINDOW_MINUTES, 0i64..WINDOW_MINUTES)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn around_the_clock_business_time_is_elapsed_time_in_every_zone(
        zone in 0..ZONES.len(),
        from in -(400i64 * 24 * 60)..(400 * 24 * 60),
        length in 0i64..(60 * 24 * 60),
        seconds in 0i64..60,
    ) {
        let zone: Tz = ZONES[zone].zone.parse().unwrap_or(Tz::UTC);
        let calendar = BusinessCalendar::around_the_clock(zone);
        let base: DateTime<Utc> = "2026-06-01T00:00:00Z".parse().unwrap_or_default();
        let a = base + TimeDelta::minutes(from) + TimeDelta::seconds(seconds);
        let b = a + TimeDelta::minutes(length);
        prop_assert_eq!(calendar.business_between(a, b), b - a);
        prop_assert_eq!(calendar.add_business(a, b - a), Ok(b));
    }

    #[test]
    fn business_between_and_the_working_intervals_agree_with_counting_minutes(
        case in case_strategy(),
        ranges in proptest::collection::vec(range_strategy(), 4),
    ) {
        let minutes = case.reference_minutes();
        for range in ranges {
            let (from, to) = case.range(range);
            let (a, b) = (case.minute(from), case.minute(to));
            let expected = TimeDelta::minutes(reference_between(&minutes, from, to));
            prop_assert_eq!(case.calendar.business_between(a, b), expected, "from {} to {}", a, b);
            let intervals: Vec<WorkingInterval> = case.calendar.working_intervals_between(a, b).collect();
            let total = intervals.iter().fold(TimeDelta::zero(), |total, interval| total + interval.duration());
            prop_assert_eq!(total, expected);
            for pair in intervals.windows(2) {
                prop_assert!(pair[0].end <= pair[1].start, "intervals are ordered and disjoint: {:?}", pair);
            }
            for interval in &intervals {
                prop_assert!(interval.start < interval.end);
                prop_assert!(case.calendar.is_working(interval.start));
            }
            let explanation = case.calendar.explain(a, b);
            prop_assert_eq!(explanation.business_time, expected);
            let counted: Vec<(DateTime<Utc>, DateTime<Utc>)> = explanation
                .entries
                .iter()
                .filter(|entry| entry.rule.counts())
                .map(|entry| (entry.start, entry.end))
                .collect();
            let listed: Vec<(DateTime<Utc>, DateTime<Utc>)> =
                intervals.iter().map(|interval| (interval.start, interval.end)).collect();
            prop_assert_eq!(counted, listed, "explanations count exactly the working intervals");
        }
    }

    #[test]
    fn add_business_lands_where_counting_minutes_does(
        case in case_strategy(),
        starts in proptest::collection::vec((range_strategy(), 0i64..(4 * 24 * 60)), 4),
    ) {
        let minutes = case.reference_minutes();
        for (range, duration) in starts {
            let (from, _) = case.range(range);
            let start = case.minute(from);
            let due = case.calendar.add_business(start, TimeDelta::minutes(duration));
            match reference_add(&minutes, from, duration) {
                Some(expected) => prop_assert_eq!(due, Ok(case.minute(expected)), "from {} for {} min", start, duration),
                None => prop_assert!(
                    due.is_err() || due.is_ok_and(|due| due > case.minute(WINDOW_MINUTES - 1)),
                    "the reference found no due time in the window, the library did: {:?}", due
                ),
            }
        }
    }

    #[test]
    fn working_now_and_the_next_working_instant_agree_with_the_rules(
        case in case_strategy(),
        probes in proptest::collection::vec(range_strategy(), 8),
    ) {
        let minutes = case.reference_minutes();
        for probe in probes {
            let (index, _) = case.range(probe);
            let at = case.minute(index);
            prop_assert_eq!(case.calendar.is_working(at), minutes[index as usize], "at {}", at);
            let expected = (index..WINDOW_MINUTES).find(|&later| minutes[later as usize]);
            let next = case.calendar.next_working_instant(at);
            match expected {
                Some(later) => prop_assert_eq!(next, Some(case.minute(later))),
                None => prop_assert!(next.is_none_or(|next| next > case.minute(WINDOW_MINUTES - 1))),
            }
            let look_until = case.minute(WINDOW_MINUTES - 1);
            let expected_end = minutes[index as usize].then(|| {
                (index..WINDOW_MINUTES - 1).find(|&later| !minutes[later as usize]).unwrap_or(WINDOW_MINUTES - 1)
            });
            prop_assert_eq!(case.calendar.working_until(at, look_until), expected_end.map(|end| case.minute(end)));
        }
    }

    #[test]
    fn adding_the_business_time_between_two_instants_comes_back_to_the_last_working_instant(
        case in case_strategy(),
        ranges in proptest::collection::vec(range_strategy(), 4),
    ) {
        for range in ranges {
            let (from, to) = case.range(range);
            let (a, b) = (case.minute(from), case.minute(to));
            let between = case.calendar.business_between(a, b);
            let back = case.calendar.add_business(a, between);
            prop_assert!(back.is_ok());
            let back = back.unwrap_or(a);
            // At or before b, with no working time left between: b itself when b ends working
            // time, otherwise the end of the last working stretch before b (or a, if none).
            prop_assert!(a <= back && back <= b, "{} not in [{}, {}]", back, a, b);
            prop_assert_eq!(case.calendar.business_between(back, b), TimeDelta::zero());
            if between > TimeDelta::zero() {
                prop_assert!(case.calendar.is_working(back - TimeDelta::minutes(1)));
            }
        }
    }

    #[test]
    fn due_times_and_business_time_only_grow(
        case in case_strategy(),
        from in 0i64..(WINDOW_MINUTES / 3),
        later_by in 0i64..(3 * 24 * 60),
        durations in proptest::collection::vec(0i64..(3 * 24 * 60), 3),
    ) {
        let (a, a_later) = (case.minute(from), case.minute(from + later_by));
        let mut durations = durations;
        durations.sort_unstable();
        let due = |start, minutes: i64| case.calendar.add_business(start, TimeDelta::minutes(minutes)).ok();
        for pair in durations.windows(2) {
            let (shorter, longer) = (due(a, pair[0]), due(a, pair[1]));
            if let (Some(shorter), Some(longer)) = (shorter, longer) {
                prop_assert!(shorter <= longer, "a longer duration never falls due earlier");
            }
            prop_assert!(
                case.calendar.business_between(a, case.minute(from + pair[0]))
                    <= case.calendar.business_between(a, case.minute(from + pair[1]))
            );
        }
        for &minutes in &durations {
            if let (Some(earlier), Some(later)) = (due(a, minutes), due(a_later, minutes)) {
                prop_assert!(earlier <= later, "a later start never falls due earlier");
            }
        }
    }
}

#[test]
fn the_reference_itself_sees_the_documented_dst_lengths() {
    // Guards the guard: the reference must count 1 hour for 01:00–03:00 on Stockholm's
    // spring-forward night and 3 on its fall-back night, like the library's docs say.
    let calendar = BusinessCalendar::new(CalendarSpec {
        time_zone: "Europe/Stockholm".into(),
        weekly_hours: vec![WorkingSpan::daytime(chrono::Weekday::Sun, 60, 180)],
        ..CalendarSpec::default()
    })
    .unwrap_or_else(|problems| panic!("{problems}"));
    let count = |day: &str| {
        let case = Case {
            calendar: calendar.clone(),
            window_start: day.parse().unwrap_or_default(),
            change_index: 0,
        };
        let minutes = case.reference_minutes();
        reference_between(&minutes, 0, 24 * 60)
    };
    assert_eq!(count("2026-03-28T12:00:00Z"), 60);
    assert_eq!(count("2026-10-24T12:00:00Z"), 180);
}
