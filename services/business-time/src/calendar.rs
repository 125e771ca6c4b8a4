//! The calendar model: what a user writes ([`CalendarSpec`]) and the validated form every
//! computation runs on ([`BusinessCalendar`]). Parse, don't validate: a `BusinessCalendar` can only
//! be built from a spec that passed every check, so the arithmetic never meets an inverted span or
//! an unknown zone.

use std::fmt;

use chrono::{Datelike, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, Timelike, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

const WEEK: [Weekday; 7] = [
    Weekday::Mon,
    Weekday::Tue,
    Weekday::Wed,
    Weekday::Thu,
    Weekday::Fri,
    Weekday::Sat,
    Weekday::Sun,
];

/// Minutes in a local day; a span's minutes count from the local midnight that starts its day.
pub const MINUTES_PER_DAY: u32 = 1440;
/// Holidays and exceptions before this year are refused: nothing in a service desk is older.
pub const FIRST_SUPPORTED_YEAR: i32 = 1970;
/// Holidays and exceptions after this year are refused, and the arithmetic stops looking for
/// working time at its end: a due time beyond it means "never" for any real SLA.
pub const LAST_SUPPORTED_YEAR: i32 = 2200;

/// Minute of the day for `hours:minutes`, e.g. `hm(9, 30)` is 570. `hm(24, 0)` is the end of the day.
pub const fn hm(hours: u32, minutes: u32) -> u32 {
    hours * 60 + minutes
}

/// One weekly stretch of working time, in the calendar's local wall-clock time.
///
/// A span belongs to the day it starts on: `Fri 22:00–06:00` (`ends_next_day`) is part of
/// Friday's schedule, so a holiday on Friday removes all of it and a holiday on Saturday none of
/// it. Minutes are wall-clock minutes; see the crate docs for what happens when a DST change
/// falls inside a span.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct WorkingSpan {
    pub weekday: Weekday,
    /// Minute of the local day the span starts at, `0..1440`.
    pub start_minute: u32,
    /// Minute it ends at: on the same day `start_minute < end_minute <= 1440` (1440 is
    /// midnight at the end of the day); with `ends_next_day`, on the following day and
    /// `end_minute <= start_minute`.
    pub end_minute: u32,
    /// Explicit rather than inferred from `end < start`, so that a typo like 17:00–09:00 is
    /// reported as inverted instead of silently becoming a 16-hour night shift.
    pub ends_next_day: bool,
}

impl WorkingSpan {
    /// A span that ends on the day it starts, e.g. `WorkingSpan::daytime(Mon, hm(9, 0), hm(17, 0))`.
    pub fn daytime(weekday: Weekday, start_minute: u32, end_minute: u32) -> Self {
        WorkingSpan {
            weekday,
            start_minute,
            end_minute,
            ends_next_day: false,
        }
    }

    /// A span that runs past midnight into the next day, e.g. `overnight(Fri, hm(22, 0), hm(6, 0))`.
    pub fn overnight(weekday: Weekday, start_minute: u32, end_minute: u32) -> Self {
        WorkingSpan {
            weekday,
            start_minute,
            end_minute,
            ends_next_day: true,
        }
    }

    /// Length in wall-clock minutes (not elapsed time: a DST change inside changes that).
    pub fn wall_minutes(&self) -> u32 {
        if self.ends_next_day {
            (MINUTES_PER_DAY + self.end_minute).saturating_sub(self.start_minute)
        } else {
            self.end_minute.saturating_sub(self.start_minute)
        }
    }

    /// The span's local wall-clock interval on `date` (which must be one of its weekdays).
    pub(crate) fn on(&self, date: NaiveDate) -> (NaiveDateTime, NaiveDateTime) {
        let start =
            date.and_time(NaiveTime::MIN) + TimeDelta::minutes(i64::from(self.start_minute));
        (
            start,
            start + TimeDelta::minutes(i64::from(self.wall_minutes())),
        )
    }

    /// Start and end as minutes of the week counted from Monday 00:00, end possibly past the
    /// week's last minute (Sunday overnight spans wrap into Monday).
    fn week_minutes(&self) -> (u32, u32) {
        let start = self.weekday.num_days_from_monday() * MINUTES_PER_DAY + self.start_minute;
        (start, start + self.wall_minutes())
    }
}

impl fmt::Display for WorkingSpan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let clock = |minute: u32| format!("{:02}:{:02}", minute / 60, minute % 60);
        write!(
            f,
            "{} {}–{}",
            self.weekday,
            clock(self.start_minute),
            clock(self.end_minute)
        )?;
        if self.ends_next_day {
            f.write_str(" (next day)")?;
        }
        Ok(())
    }
}

/// A whole local date off, e.g. a public holiday.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Holiday {
    pub date: NaiveDate,
    pub name: String,
}

impl Holiday {
    pub fn new(date: NaiveDate, name: impl Into<String>) -> Self {
        Holiday {
            date,
            name: name.into(),
        }
    }
}

/// Whether a one-off exception adds working time or removes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExceptionKind {
    /// Extra working time, counted even on a holiday or outside the weekly hours.
    Working,
    /// Closed: no working time, whatever the weekly hours say.
    Closed,
}

/// One-off working or closed time over a local wall-clock range `[start, end)`, e.g. "open
/// Saturday 6 December 09:00–13:00" or "closed 24 December from 12:00".
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CalendarException {
    pub kind: ExceptionKind,
    pub start: NaiveDateTime,
    pub end: NaiveDateTime,
    pub label: String,
}

impl CalendarException {
    pub fn working(start: NaiveDateTime, end: NaiveDateTime, label: impl Into<String>) -> Self {
        CalendarException {
            kind: ExceptionKind::Working,
            start,
            end,
            label: label.into(),
        }
    }

    pub fn closed(start: NaiveDateTime, end: NaiveDateTime, label: impl Into<String>) -> Self {
        CalendarException {
            kind: ExceptionKind::Closed,
            start,
            end,
            label: label.into(),
        }
    }

    /// Closed from the start of `first` to the end of `last` (both local dates, inclusive).
    pub fn closed_days(first: NaiveDate, last: NaiveDate, label: impl Into<String>) -> Self {
        let end = last.succ_opt().unwrap_or(last).and_time(NaiveTime::MIN);
        Self::closed(first.and_time(NaiveTime::MIN), end, label)
    }
}

/// A calendar as a user (or the SLA API) writes it, unchecked. It (de)serializes with serde, so a
/// service can store each calendar version as one JSON document and recompute old clocks with it. [`BusinessCalendar::new`] turns
/// it into something the arithmetic can use, or says everything that is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CalendarSpec {
    /// IANA name, e.g. `Europe/Stockholm`.
    pub time_zone: String,
    pub weekly_hours: Vec<WorkingSpan>,
    pub holidays: Vec<Holiday>,
    pub exceptions: Vec<CalendarException>,
}

/// One thing wrong with a [`CalendarSpec`], at a field path like `weekly_hours[2].end_minute`,
/// ready to become a `google.rpc.BadRequest` field violation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CalendarProblem {
    pub field: String,
    pub description: String,
}

/// Every problem found in a spec, not just the first: a user fixes a calendar in one round.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct CalendarProblems(pub Vec<CalendarProblem>);

impl fmt::Display for CalendarProblems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid business calendar: ")?;
        for (position, problem) in self.0.iter().enumerate() {
            if position > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{}: {}", problem.field, problem.description)?;
        }
        Ok(())
    }
}

/// A validated calendar. Cheap to clone relative to what it answers; holds no caches, so two
/// threads can share one behind an `Arc` without locks.
#[derive(Debug, Clone, PartialEq)]
pub struct BusinessCalendar {
    pub(crate) zone: Tz,
    /// In the order given, so explanations can name a span by the index the user knows.
    pub(crate) spans: Vec<WorkingSpan>,
    /// Indexes into `spans`, per weekday (Monday first), by start minute.
    pub(crate) spans_by_weekday: [Vec<usize>; 7],
    pub(crate) holidays: Vec<Holiday>,
    /// Distinct holiday dates, sorted, for binary search.
    pub(crate) holiday_dates: Vec<NaiveDate>,
    pub(crate) exceptions: Vec<CalendarException>,
    /// Indexes into `exceptions` of each kind, by start. Exceptions never overlap (validated),
    /// so these are also sorted by end.
    pub(crate) working_exceptions: Vec<usize>,
    pub(crate) closed_exceptions: Vec<usize>,
}

impl BusinessCalendar {
    /// Checks `spec` and builds the calendar, or returns every problem with its field path.
    pub fn new(spec: CalendarSpec) -> Result<Self, CalendarProblems> {
        let mut problems = Vec::new();
        let zone = match spec.time_zone.parse::<Tz>() {
            Ok(zone) => Some(zone),
            Err(_) => {
                problems.push(problem(
                    "time_zone",
                    format!(
                        "`{}` is not an IANA time zone (e.g. Europe/Stockholm)",
                        spec.time_zone
                    ),
                ));
                None
            }
        };
        check_weekly_hours(&spec.weekly_hours, &mut problems);
        for (index, holiday) in spec.holidays.iter().enumerate() {
            if !year_supported(holiday.date.year()) {
                problems.push(problem(
                    format!("holidays[{index}].date"),
                    out_of_range(holiday.date.year()),
                ));
            }
        }
        check_exceptions(&spec.exceptions, &mut problems);
        match zone {
            Some(zone) if problems.is_empty() => Ok(Self::assemble(zone, spec)),
            _ => Err(CalendarProblems(problems)),
        }
    }

    /// Working every minute of every day ("24×7"). The zone only matters for explanations,
    /// which name each local day's span.
    pub fn around_the_clock(zone: Tz) -> Self {
        let weekly_hours = WEEK
            .into_iter()
            .map(|weekday| WorkingSpan::daytime(weekday, 0, MINUTES_PER_DAY))
            .collect();
        let spec = CalendarSpec {
            time_zone: zone.name().to_owned(),
            weekly_hours,
            ..CalendarSpec::default()
        };
        Self::assemble(zone, spec)
    }

    fn assemble(zone: Tz, spec: CalendarSpec) -> Self {
        let mut spans_by_weekday: [Vec<usize>; 7] = Default::default();
        for (index, span) in spec.weekly_hours.iter().enumerate() {
            spans_by_weekday[span.weekday.num_days_from_monday() as usize].push(index);
        }
        for indexes in &mut spans_by_weekday {
            indexes.sort_by_key(|&index| spec.weekly_hours[index].start_minute);
        }
        let mut holiday_dates: Vec<NaiveDate> =
            spec.holidays.iter().map(|holiday| holiday.date).collect();
        holiday_dates.sort_unstable();
        holiday_dates.dedup();
        let by_kind = |kind: ExceptionKind| {
            let mut indexes: Vec<usize> = (0..spec.exceptions.len())
                .filter(|&index| spec.exceptions[index].kind == kind)
                .collect();
            indexes.sort_by_key(|&index| spec.exceptions[index].start);
            indexes
        };
        BusinessCalendar {
            zone,
            spans_by_weekday,
            holiday_dates,
            working_exceptions: by_kind(ExceptionKind::Working),
            closed_exceptions: by_kind(ExceptionKind::Closed),
            spans: spec.weekly_hours,
            holidays: spec.holidays,
            exceptions: spec.exceptions,
        }
    }

    /// The spec this calendar was built from (to store it, or to edit and re-validate it).
    pub fn spec(&self) -> CalendarSpec {
        CalendarSpec {
            time_zone: self.zone.name().to_owned(),
            weekly_hours: self.spans.clone(),
            holidays: self.holidays.clone(),
            exceptions: self.exceptions.clone(),
        }
    }

    pub fn zone(&self) -> Tz {
        self.zone
    }

    /// The weekly spans in the order given; explanations refer to them by this index.
    pub fn weekly_hours(&self) -> &[WorkingSpan] {
        &self.spans
    }

    pub fn holidays(&self) -> &[Holiday] {
        &self.holidays
    }

    /// The exceptions in the order given; explanations refer to them by this index.
    pub fn exceptions(&self) -> &[CalendarException] {
        &self.exceptions
    }

    pub fn is_holiday(&self, date: NaiveDate) -> bool {
        self.holiday_dates.binary_search(&date).is_ok()
    }

    /// Every name given to `date` (two feeds may both list Christmas).
    pub fn holiday_names(&self, date: NaiveDate) -> Vec<String> {
        self.holidays
            .iter()
            .filter(|holiday| holiday.date == date)
            .map(|holiday| holiday.name.clone())
            .collect()
    }

    /// The same calendar with more holidays (e.g. from [`crate::holidays_from_ics`]), re-validated.
    pub fn with_holidays(
        &self,
        holidays: impl IntoIterator<Item = Holiday>,
    ) -> Result<Self, CalendarProblems> {
        let mut spec = self.spec();
        spec.holidays.extend(holidays);
        Self::new(spec)
    }
}

fn problem(field: impl Into<String>, description: impl Into<String>) -> CalendarProblem {
    CalendarProblem {
        field: field.into(),
        description: description.into(),
    }
}

pub(crate) fn year_supported(year: i32) -> bool {
    (FIRST_SUPPORTED_YEAR..=LAST_SUPPORTED_YEAR).contains(&year)
}

fn out_of_range(year: i32) -> String {
    format!(
        "year {year} is outside the supported years {FIRST_SUPPORTED_YEAR}–{LAST_SUPPORTED_YEAR}"
    )
}

fn check_weekly_hours(spans: &[WorkingSpan], problems: &mut Vec<CalendarProblem>) {
    if spans.is_empty() {
        problems.push(problem(
            "weekly_hours",
            "at least one working span is needed; a calendar that never works has no due times \
             (use the around-the-clock calendar for 24×7)",
        ));
        return;
    }
    let mut well_formed = Vec::with_capacity(spans.len());
    for (index, span) in spans.iter().enumerate() {
        let field = |name: &str| format!("weekly_hours[{index}].{name}");
        let mut fine = true;
        if span.start_minute >= MINUTES_PER_DAY {
            problems.push(problem(
                field("start_minute"),
                "must be below 1440 (minutes from local midnight)",
            ));
            fine = false;
        }
        if span.ends_next_day {
            if span.end_minute > span.start_minute {
                problems.push(problem(
                    field("end_minute"),
                    "an overnight span must end on the next day at or before its start time \
                     (a span longer than 24 hours is two spans)",
                ));
                fine = false;
            }
        } else if span.end_minute > MINUTES_PER_DAY {
            problems.push(problem(
                field("end_minute"),
                "must be at most 1440 (midnight at the end of the day)",
            ));
            fine = false;
        } else if span.end_minute <= span.start_minute {
            problems.push(problem(
                field("end_minute"),
                "the span is inverted or empty: it ends at or before it starts \
                 (mark it as ending the next day for an overnight span)",
            ));
            fine = false;
        }
        if fine {
            well_formed.push(index);
        }
    }
    // Overlaps are checked on the week as a circle, so Sunday 22:00–02:00 meets Monday 01:00.
    const WEEK: u32 = 7 * MINUTES_PER_DAY;
    for (position, &later) in well_formed.iter().enumerate() {
        for &earlier in &well_formed[..position] {
            let (a_start, a_end) = spans[earlier].week_minutes();
            let (b_start, b_end) = spans[later].week_minutes();
            let overlap = |shift_a: u32, shift_b: u32| {
                a_start + shift_a < b_end + shift_b && b_start + shift_b < a_end + shift_a
            };
            if overlap(0, 0) || overlap(WEEK, 0) || overlap(0, WEEK) {
                problems.push(problem(
                    format!("weekly_hours[{later}]"),
                    format!(
                        "{} overlaps weekly_hours[{earlier}] ({})",
                        spans[later], spans[earlier]
                    ),
                ));
            }
        }
    }
}

fn check_exceptions(exceptions: &[CalendarException], problems: &mut Vec<CalendarProblem>) {
    let mut well_formed = Vec::with_capacity(exceptions.len());
    for (index, exception) in exceptions.iter().enumerate() {
        let field = |name: &str| format!("exceptions[{index}].{name}");
        let mut fine = true;
        for (name, at) in [("start", exception.start), ("end", exception.end)] {
            if !year_supported(at.year()) {
                problems.push(problem(field(name), out_of_range(at.year())));
                fine = false;
            } else if at.second() != 0 || at.nanosecond() != 0 {
                problems.push(problem(
                    field(name),
                    "must be a whole minute (calendars have minute resolution)",
                ));
                fine = false;
            }
        }
        if exception.end <= exception.start {
            problems.push(problem(field("end"), "must be after start"));
            fine = false;
        }
        if fine {
            well_formed.push(index);
        }
    }
    // Overlapping exceptions would make "which rule counted this minute" ambiguous (is it open or
    // closed?), so they are refused rather than resolved by a precedence nobody remembers.
    for (position, &later) in well_formed.iter().enumerate() {
        for &earlier in &well_formed[..position] {
            let (a, b) = (&exceptions[earlier], &exceptions[later]);
            if a.start < b.end && b.start < a.end {
                problems.push(problem(
                    format!("exceptions[{later}]"),
                    format!(
                        "overlaps exceptions[{earlier}] ({} {}–{})",
                        a.label, a.start, a.end
                    ),
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Weekday::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("a real date")
    }

    fn spec(weekly_hours: Vec<WorkingSpan>) -> CalendarSpec {
        CalendarSpec {
            time_zone: "Europe/Stockholm".into(),
            weekly_hours,
            ..CalendarSpec::default()
        }
    }

    fn fields(problems: CalendarProblems) -> Vec<String> {
        problems
            .0
            .into_iter()
            .map(|problem| problem.field)
            .collect()
    }

    #[test]
    fn a_well_formed_calendar_is_accepted_and_round_trips_its_spec() {
        let given = CalendarSpec {
            holidays: vec![Holiday::new(date(2026, 12, 25), "Juldagen")],
            exceptions: vec![CalendarException::closed_days(
                date(2026, 12, 24),
                date(2026, 12, 24),
                "Julafton",
            )],
            ..spec(vec![
                WorkingSpan::daytime(Mon, hm(9, 0), hm(17, 0)),
                WorkingSpan::overnight(Fri, hm(22, 0), hm(6, 0)),
            ])
        };
        let calendar = BusinessCalendar::new(given.clone()).expect("a valid calendar");
        assert_eq!(calendar.spec(), given);
        assert!(calendar.is_holiday(date(2026, 12, 25)));
        assert_eq!(
            calendar.holiday_names(date(2026, 12, 25)),
            vec!["Juldagen".to_owned()]
        );
    }

    #[test]
    fn a_spec_survives_a_trip_through_json() {
        let given = CalendarSpec {
            holidays: vec![Holiday::new(date(2026, 12, 25), "Juldagen")],
            exceptions: vec![CalendarException::working(
                date(2026, 12, 5).and_hms_opt(9, 0, 0).expect("a real time"),
                date(2026, 12, 5)
                    .and_hms_opt(13, 0, 0)
                    .expect("a real time"),
                "Saturday cover",
            )],
            ..spec(vec![WorkingSpan::overnight(Fri, hm(22, 0), hm(6, 0))])
        };
        let json = serde_json::to_string(&given).expect("serializable");
        assert!(json.contains(r#""kind":"working""#), "{json}");
        assert_eq!(
            serde_json::from_str::<CalendarSpec>(&json).expect("deserializable"),
            given
        );
    }

    #[test]
    fn every_problem_is_reported_at_its_field_path() {
        let given = CalendarSpec {
            time_zone: "Europe/Atlantis".into(),
            weekly_hours: vec![
                WorkingSpan::daytime(Mon, hm(17, 0), hm(9, 0)),
                WorkingSpan::daytime(Tue, hm(9, 0), hm(25, 0)),
                WorkingSpan::daytime(Wed, 1440, 1440),
                WorkingSpan::overnight(Thu, hm(22, 0), hm(23, 0)),
            ],
            holidays: vec![
                Holiday::new(date(1969, 12, 31), "too early"),
                Holiday::new(date(2201, 1, 1), "too late"),
            ],
            exceptions: vec![CalendarException::working(
                date(2026, 5, 1)
                    .and_hms_opt(10, 0, 30)
                    .expect("a real time"),
                date(2026, 5, 1).and_hms_opt(9, 0, 0).expect("a real time"),
                "backwards",
            )],
        };
        let problems = BusinessCalendar::new(given).expect_err("an invalid input");
        assert_eq!(
            fields(problems),
            vec![
                "time_zone",
                "weekly_hours[0].end_minute",
                "weekly_hours[1].end_minute",
                "weekly_hours[2].start_minute",
                "weekly_hours[2].end_minute",
                "weekly_hours[3].end_minute",
                "holidays[0].date",
                "holidays[1].date",
                "exceptions[0].start",
                "exceptions[0].end",
            ]
        );
    }

    #[test]
    fn an_empty_week_is_refused() {
        assert_eq!(
            fields(BusinessCalendar::new(spec(vec![])).expect_err("an invalid input")),
            vec!["weekly_hours"]
        );
    }

    #[test]
    fn overlapping_spans_are_refused_including_across_midnight_and_the_week_end() {
        let given = spec(vec![
            WorkingSpan::daytime(Mon, hm(9, 0), hm(12, 0)),
            WorkingSpan::daytime(Mon, hm(11, 0), hm(13, 0)),
            WorkingSpan::overnight(Tue, hm(22, 0), hm(6, 0)),
            WorkingSpan::daytime(Wed, hm(5, 0), hm(8, 0)),
            WorkingSpan::overnight(Sun, hm(23, 0), hm(2, 0)),
            WorkingSpan::daytime(Mon, hm(1, 0), hm(3, 0)),
        ]);
        let problems = BusinessCalendar::new(given).expect_err("an invalid input");
        assert_eq!(
            fields(problems),
            vec!["weekly_hours[1]", "weekly_hours[3]", "weekly_hours[5]"]
        );
    }

    #[test]
    fn touching_spans_and_a_full_overnight_day_are_fine() {
        let given = spec(vec![
            WorkingSpan::daytime(Mon, hm(9, 0), hm(12, 0)),
            WorkingSpan::daytime(Mon, hm(12, 0), hm(24, 0)),
            WorkingSpan::overnight(Tue, hm(9, 0), hm(9, 0)),
            WorkingSpan::daytime(Wed, hm(9, 0), hm(10, 0)),
        ]);
        assert!(BusinessCalendar::new(given).is_ok());
    }

    #[test]
    fn overlapping_exceptions_are_refused() {
        let at = |h| date(2026, 5, 1).and_hms_opt(h, 0, 0).expect("a real time");
        let given = CalendarSpec {
            exceptions: vec![
                CalendarException::working(at(8), at(12), "extra"),
                CalendarException::closed(at(11), at(14), "closed"),
                CalendarException::closed(at(14), at(15), "touching is fine"),
            ],
            ..spec(vec![WorkingSpan::daytime(Mon, hm(9, 0), hm(17, 0))])
        };
        assert_eq!(
            fields(BusinessCalendar::new(given).expect_err("an invalid input")),
            vec!["exceptions[1]"]
        );
    }

    #[test]
    fn a_span_displays_as_a_person_would_write_it() {
        assert_eq!(
            WorkingSpan::overnight(Fri, hm(22, 0), hm(6, 0)).to_string(),
            "Fri 22:00–06:00 (next day)"
        );
        assert_eq!(
            WorkingSpan::overnight(Fri, hm(22, 0), hm(6, 0)).wall_minutes(),
            480
        );
    }
}
