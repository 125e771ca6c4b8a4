//! Time on the change calendar: windows, freeze (blackout) periods and weekly maintenance
//! windows in their own time zones.
//!
//! Instants are UTC; a window keeps the IANA zone it was planned in so that people see it as
//! planned, and a maintenance window's opening time is local to its zone, so it opens at 22:00
//! in Paris in winter and in summer alike (daylight-saving time moves it in UTC, not locally).

use chrono::{DateTime, Datelike as _, Duration, NaiveTime, TimeZone as _, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The longest window a change may plan: longer work is split into several changes. It also
/// bounds how far back a search for overlapping windows must look.
pub const MAX_WINDOW: Duration = Duration::days(14);

/// `[start, end)`, start before end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TimeRange {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl TimeRange {
    /// `None` unless `start < end`.
    pub fn new(start: DateTime<Utc>, end: DateTime<Utc>) -> Option<TimeRange> {
        (start < end).then_some(TimeRange { start, end })
    }

    pub fn overlaps(&self, other: &TimeRange) -> bool {
        self.start < other.end && other.start < self.end
    }

    pub fn contains(&self, other: &TimeRange) -> bool {
        self.start <= other.start && other.end <= self.end
    }

    pub fn length(&self) -> Duration {
        self.end - self.start
    }
}

/// A planned window: when, and the zone it was planned in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    pub range: TimeRange,
    /// An IANA name checked by [`parse_time_zone`]; `UTC` when none was given.
    pub time_zone: String,
}

/// Why a proposed window is refused; the texts are user-facing (`INVALID_ARGUMENT`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WindowError {
    #[error("the window must end after it starts")]
    EndsBeforeStart,
    #[error("the window lies in the past: it must start after now")]
    InThePast,
    #[error("a window lasts at most {} days: split longer work into several changes", MAX_WINDOW.num_days())]
    TooLong,
    #[error("{0:?} is not an IANA time zone (such as Europe/Paris)")]
    UnknownTimeZone(String),
}

impl WindowError {
    /// The request field the error is about, below the window's own field name.
    pub fn field(&self) -> &'static str {
        match self {
            WindowError::EndsBeforeStart | WindowError::TooLong => "end_time",
            WindowError::InThePast => "start_time",
            WindowError::UnknownTimeZone(_) => "time_zone",
        }
    }
}

/// An IANA time zone; empty means UTC.
pub fn parse_time_zone(name: &str) -> Result<chrono_tz::Tz, WindowError> {
    if name.trim().is_empty() {
        return Ok(chrono_tz::UTC);
    }
    name.trim()
        .parse::<chrono_tz::Tz>()
        .map_err(|_| WindowError::UnknownTimeZone(name.to_owned()))
}

impl Window {
    /// A window to plan a change in: it ends after it starts, does not start before `now`,
    /// lasts at most [`MAX_WINDOW`], and names a known zone.
    pub fn planned(
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        time_zone: &str,
        now: DateTime<Utc>,
    ) -> Result<Window, WindowError> {
        let zone = parse_time_zone(time_zone)?;
        let range = TimeRange::new(start, end).ok_or(WindowError::EndsBeforeStart)?;
        if start < now {
            return Err(WindowError::InThePast);
        }
        if range.length() > MAX_WINDOW {
            return Err(WindowError::TooLong);
        }
        Ok(Window {
            range,
            time_zone: zone.name().to_owned(),
        })
    }
}

/// A blackout period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FreezeWindow {
    pub id: Uuid,
    pub name: String,
    pub reason: String,
    pub range: TimeRange,
    /// Empty: it covers every CI.
    pub ci_ids: Vec<Uuid>,
}

impl FreezeWindow {
    pub fn covers(&self, ci: Uuid) -> bool {
        self.ci_ids.is_empty() || self.ci_ids.contains(&ci)
    }
}

/// A weekly window in which its CIs may be changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaintenanceWindow {
    pub id: Uuid,
    pub name: String,
    pub ci_ids: Vec<Uuid>,
    /// ISO weekdays, 1 (Monday) to 7 (Sunday).
    pub weekdays: Vec<u32>,
    pub start_local: NaiveTime,
    pub duration: Duration,
    pub time_zone: String,
}

/// Why a maintenance window is refused (`INVALID_ARGUMENT`), with the field it is about.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MaintenanceWindowError {
    #[error("weekdays are 1 (Monday) to 7 (Sunday), at least one")]
    Weekdays,
    #[error("a local time as HH:MM")]
    StartTime,
    #[error("1 minute to 7 days")]
    Duration,
    #[error("at least one CI")]
    NoCi,
    #[error(transparent)]
    Zone(WindowError),
}

impl MaintenanceWindowError {
    pub fn field(&self) -> &'static str {
        match self {
            Self::Weekdays => "weekdays",
            Self::StartTime => "start_local_time",
            Self::Duration => "duration_minutes",
            Self::NoCi => "ci_ids",
            Self::Zone(_) => "time_zone",
        }
    }
}

impl MaintenanceWindow {
    /// Checks the parts of a new maintenance window.
    pub fn new(
        id: Uuid,
        name: String,
        ci_ids: Vec<Uuid>,
        weekdays: Vec<u32>,
        start_local: &str,
        duration_minutes: u32,
        time_zone: &str,
    ) -> Result<MaintenanceWindow, Vec<MaintenanceWindowError>> {
        let mut errors = Vec::new();
        if weekdays.is_empty() || weekdays.iter().any(|d| !(1..=7).contains(d)) {
            errors.push(MaintenanceWindowError::Weekdays);
        }
        let start = NaiveTime::parse_from_str(start_local.trim(), "%H:%M").ok();
        if start.is_none() {
            errors.push(MaintenanceWindowError::StartTime);
        }
        if duration_minutes == 0 || duration_minutes > 7 * 24 * 60 {
            errors.push(MaintenanceWindowError::Duration);
        }
        if ci_ids.is_empty() {
            errors.push(MaintenanceWindowError::NoCi);
        }
        let zone = parse_time_zone(time_zone).map_err(MaintenanceWindowError::Zone);
        match (start, zone, errors.is_empty()) {
            (Some(start_local), Ok(zone), true) => {
                let mut weekdays = weekdays;
                weekdays.sort_unstable();
                weekdays.dedup();
                Ok(MaintenanceWindow {
                    id,
                    name,
                    ci_ids,
                    weekdays,
                    start_local,
                    duration: Duration::minutes(i64::from(duration_minutes)),
                    time_zone: zone.name().to_owned(),
                })
            }
            (_, zone, _) => {
                if let Err(error) = zone {
                    errors.push(error);
                }
                Err(errors)
            }
        }
    }

    /// Its openings that overlap `range`, in order.
    pub fn openings(&self, range: &TimeRange) -> Vec<TimeRange> {
        let zone = parse_time_zone(&self.time_zone).unwrap_or(chrono_tz::UTC);
        // From the local day before the range (an opening may start the evening before and
        // still be open) to the local day after it.
        let first = (range.start - self.duration - Duration::days(1))
            .with_timezone(&zone)
            .date_naive();
        let last = (range.end + Duration::days(1))
            .with_timezone(&zone)
            .date_naive();
        let mut openings = Vec::new();
        let mut day = first;
        while day <= last {
            if self.weekdays.contains(&day.weekday().number_from_monday()) {
                // A local time that does not exist (the spring-forward gap) opens at the first
                // instant after the gap; one that exists twice opens at the earlier.
                let local = day.and_time(self.start_local);
                let start = zone
                    .from_local_datetime(&local)
                    .earliest()
                    .or_else(|| {
                        zone.from_local_datetime(&(local + Duration::hours(1)))
                            .earliest()
                    })
                    .map(|start| start.with_timezone(&Utc));
                if let Some(start) = start {
                    let opening = TimeRange {
                        start,
                        end: start + self.duration,
                    };
                    if opening.overlaps(range) {
                        openings.push(opening);
                    }
                }
            }
            let Some(next) = day.succ_opt() else { break };
            day = next;
        }
        openings
    }

    /// Whether `range` lies wholly inside one opening.
    pub fn admits(&self, range: &TimeRange) -> bool {
        self.openings(range).iter().any(|o| o.contains(range))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .expect("an RFC 3339 time")
            .with_timezone(&Utc)
    }

    fn range(start: &str, end: &str) -> TimeRange {
        TimeRange::new(at(start), at(end)).expect("a range")
    }

    fn saturday_nights_in_paris() -> MaintenanceWindow {
        MaintenanceWindow::new(
            Uuid::nil(),
            "saturday night".into(),
            vec![Uuid::from_u128(1)],
            vec![6],
            "22:00",
            240,
            "Europe/Paris",
        )
        .expect("a valid window")
    }

    #[test]
    fn a_window_that_ends_before_it_starts_or_lies_in_the_past_is_refused() {
        let now = at("2030-01-01T00:00:00Z");
        assert_eq!(
            Window::planned(
                at("2030-01-02T10:00:00Z"),
                at("2030-01-02T09:00:00Z"),
                "",
                now
            ),
            Err(WindowError::EndsBeforeStart)
        );
        assert_eq!(
            Window::planned(
                at("2029-12-31T10:00:00Z"),
                at("2029-12-31T11:00:00Z"),
                "",
                now
            ),
            Err(WindowError::InThePast)
        );
        assert_eq!(
            Window::planned(
                at("2030-01-02T10:00:00Z"),
                at("2030-01-30T10:00:00Z"),
                "",
                now
            ),
            Err(WindowError::TooLong)
        );
        assert!(matches!(
            Window::planned(
                at("2030-01-02T10:00:00Z"),
                at("2030-01-02T11:00:00Z"),
                "Mars/Olympus",
                now
            ),
            Err(WindowError::UnknownTimeZone(_))
        ));
        let window = Window::planned(
            at("2030-01-02T10:00:00Z"),
            at("2030-01-02T11:00:00Z"),
            "Europe/Paris",
            now,
        )
        .expect("a good window");
        assert_eq!(window.time_zone, "Europe/Paris");
    }

    #[test]
    fn ranges_overlap_only_when_they_share_time() {
        let a = range("2030-01-01T10:00:00Z", "2030-01-01T12:00:00Z");
        assert!(a.overlaps(&range("2030-01-01T11:00:00Z", "2030-01-01T13:00:00Z")));
        assert!(!a.overlaps(&range("2030-01-01T12:00:00Z", "2030-01-01T13:00:00Z")));
        assert!(a.contains(&range("2030-01-01T10:00:00Z", "2030-01-01T12:00:00Z")));
    }

    #[test]
    fn a_maintenance_window_opens_at_its_local_time_in_winter_and_in_summer() {
        let window = saturday_nights_in_paris();
        // 2030-01-05 is a Saturday: 22:00 in Paris is 21:00 UTC in winter.
        let winter = window.openings(&range("2030-01-05T00:00:00Z", "2030-01-06T12:00:00Z"));
        assert_eq!(
            winter,
            [range("2030-01-05T21:00:00Z", "2030-01-06T01:00:00Z")]
        );
        // 2030-07-06 is a Saturday: 22:00 in Paris is 20:00 UTC in summer.
        let summer = window.openings(&range("2030-07-06T00:00:00Z", "2030-07-07T12:00:00Z"));
        assert_eq!(
            summer,
            [range("2030-07-06T20:00:00Z", "2030-07-07T00:00:00Z")]
        );
        assert!(window.admits(&range("2030-01-05T22:00:00Z", "2030-01-06T00:30:00Z")));
        assert!(!window.admits(&range("2030-01-05T20:00:00Z", "2030-01-05T22:00:00Z")));
        assert!(!window.admits(&range("2030-01-07T22:00:00Z", "2030-01-07T23:00:00Z")));
    }

    #[test]
    fn a_maintenance_window_with_bad_parts_names_each() {
        let errors = MaintenanceWindow::new(
            Uuid::nil(),
            "bad".into(),
            Vec::new(),
            vec![0, 8],
            "25:99",
            0,
            "Nowhere/Else",
        )
        .expect_err("refused");
        let fields: Vec<_> = errors.iter().map(|e| e.field()).collect();
        assert_eq!(
            fields,
            [
                "weekdays",
                "start_local_time",
                "duration_minutes",
                "ci_ids",
                "time_zone"
            ]
        );
    }

    #[test]
    fn a_freeze_without_cis_covers_every_ci() {
        let freeze = FreezeWindow {
            id: Uuid::nil(),
            name: "year end".into(),
            reason: String::new(),
            range: range("2030-12-20T00:00:00Z", "2031-01-02T00:00:00Z"),
            ci_ids: Vec::new(),
        };
        assert!(freeze.covers(Uuid::from_u128(7)));
    }
}
