//! Business time: how much working time lies between two instants, when a duration of working
//! time runs out, and whether (and until when) a team is working, on calendars with an IANA time
//! zone, weekly working hours, holidays and one-off exceptions.
//!
//! Why a crate of its own: the SLA engine (due times, paused clocks, explainable timelines),
//! routing ("is this team on shift, when does its next shift start") and follow-the-sun hand-offs
//! all need the same answers, and they must agree to the minute (ARCHITECTURE §9). It is pure: no
//! I/O, no async, no clock reads (every "now" is a parameter), no global caches, so the answers
//! depend only on the calendar and the arguments, and a clock can be recomputed years later.
//!
//! # Layout
//! - [`calendar`]: [`CalendarSpec`] (what a user writes), its validation into
//!   [`CalendarProblem`]s with field paths (for `INVALID_ARGUMENT` field violations), and
//!   [`BusinessCalendar`], the validated calendar, including [`BusinessCalendar::around_the_clock`].
//! - `arithmetic`: [`BusinessCalendar::add_business`], [`BusinessCalendar::business_between`],
//!   [`BusinessCalendar::next_working_instant`], [`BusinessCalendar::is_working`],
//!   [`BusinessCalendar::working_until`], [`BusinessCalendar::working_intervals`] and
//!   [`BusinessCalendar::explain`].
//! - `wall`: which local wall-clock stretches each rule makes working, one date at a time.
//! - `ics`: [`holidays_from_ics`], holidays from iCalendar feeds.
//!
//! # The rules
//! An instant is **working time** when the wall clock in the calendar's zone, at that instant,
//! shows a time inside
//! - a weekly span of the local date the span starts on, unless that date is a holiday
//!   (`Fri 22:00–06:00` belongs to Friday: a holiday on Friday removes all of it, one on Saturday
//!   none of it), or
//! - an extra-working exception (which also counts on holidays),
//!
//! and not inside a closed exception. Weekly spans may not overlap each other, nor exceptions
//! each other, so every working minute has exactly one rule, which explanations name.
//!
//! # DST
//! Because working time is "the wall clock shows working hours", a DST change needs no special
//! case, and the two awkward kinds of local time are handled by what the wall clock does:
//! - **Local times that do not exist** (spring forward) are never shown, so they count for
//!   nothing. On 2026-03-29 in Europe/Stockholm (02:00 CET → 03:00 CEST) a span 01:00–03:00 is
//!   **1 hour** long; a span 02:30–05:00 starts when the clock shows 03:00 (01:00 UTC); a span
//!   ending at 02:30 ends at the jump.
//! - **Ambiguous local times** (fall back) are shown twice, so they count twice. On 2026-10-25
//!   in Europe/Stockholm (03:00 CEST → 02:00 CET) a span 01:00–03:00 is **3 hours** long. A span
//!   02:30–04:00 is worked 02:30–03:00 CEST and, after the clock goes back, 02:30–04:00 CET: two
//!   intervals, 2 hours in all, with the half hour 02:00–02:30 CET (shown for the second time,
//!   but before the span's start) not worked.
//!
//! Offsets come from the IANA database compiled into chrono-tz (2025b), which has DST rules up to
//! 2099; later, each zone keeps its last offset. Half-hour DST (Australia/Lord_Howe) and historic
//! rules (America/Sao_Paulo's DST until 2019, which changed at local midnight) follow from the
//! same rule. Holidays and exceptions must lie in the years 1970–2200; searches for working time
//! stop at the end of 2200 ([`BusinessTimeError::NoWorkingTimeBeforeHorizon`]), and nothing
//! before 1970 is reported as working.
//!
//! # Cost
//! Every answer walks working stretches (a few per day), never minutes; offset changes are found
//! by probing the zone once per day walked. A due time five business days out costs about a
//! week of days, whatever the calendar's size (holiday and exception lookups are binary
//! searches). Days inside a closed exception are jumped over; only the zone is still probed
//! once per day they cover. `examples/due_times.rs` measures it (about 2 µs per due time up to
//! five business days out, with this crate optimised; no test asserts a timing).
//!
//! # Example
//! ```
//! use chrono::{TimeDelta, TimeZone, Utc, Weekday};
//! use desk_business_time::{hm, BusinessCalendar, CalendarSpec, Holiday, WorkingSpan};
//!
//! let weekdays = [Weekday::Mon, Weekday::Tue, Weekday::Wed, Weekday::Thu, Weekday::Fri];
//! let calendar = BusinessCalendar::new(CalendarSpec {
//!     time_zone: "Europe/Stockholm".into(),
//!     weekly_hours: weekdays.iter().map(|&day| WorkingSpan::daytime(day, hm(8, 0), hm(17, 0))).collect(),
//!     holidays: vec![Holiday::new(chrono::NaiveDate::from_ymd_opt(2026, 12, 25).unwrap(), "Juldagen")],
//!     exceptions: vec![],
//! })
//! .expect("a valid calendar");
//!
//! // Thursday 24 December 2026, 16:00 in Stockholm (15:00 UTC); four business hours to go.
//! let reported = Utc.with_ymd_and_hms(2026, 12, 24, 15, 0, 0).unwrap();
//! let due = calendar.add_business(reported, TimeDelta::hours(4)).unwrap();
//! // One hour on Thursday, Friday is Christmas Day, the weekend is off: Monday 11:00 local.
//! assert_eq!(due, Utc.with_ymd_and_hms(2026, 12, 28, 10, 0, 0).unwrap());
//! assert_eq!(calendar.business_between(reported, due), TimeDelta::hours(4));
//! assert!(!calendar.is_working(Utc.with_ymd_and_hms(2026, 12, 25, 10, 0, 0).unwrap()));
//! ```

pub mod calendar;

mod arithmetic;
mod ics;
mod wall;

#[cfg(test)]
mod tests;

pub use arithmetic::{
    BusinessTimeError, Explanation, SkippedHoliday, TimelineEntry, TimelineRule, WorkingInterval,
    WorkingIntervals, WorkingSource,
};
pub use calendar::{
    BusinessCalendar, CalendarException, CalendarProblem, CalendarProblems, CalendarSpec,
    ExceptionKind, Holiday, WorkingSpan, hm,
};
/// The time zone type calendars use, so callers need not depend on chrono-tz themselves.
pub use chrono_tz::Tz;
pub use ics::{IcsError, holidays_from_ics};
