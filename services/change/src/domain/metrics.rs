//! Change metrics: success rate, emergency share and mean lead time, by assignment group and
//! period (ARCHITECTURE's "metrics in the API").

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike as _, Duration, NaiveDate, TimeZone as _, Utc};

use super::change::Outcome;
use super::lifecycle::ChangeType;

desk_kit::string_enum! {
    pub enum Period {
        Day => "day",
        Week => "week",
        Month => "month",
    }
}

/// What a metric needs to know of one change.
#[derive(Debug, Clone)]
pub struct ChangeFacts {
    pub group: Option<String>,
    pub change_type: ChangeType,
    pub created_at: DateTime<Utc>,
    pub outcome: Option<Outcome>,
    pub implement_ended_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Figures {
    /// `None` for changes without a group; `Some("*")` for every group together.
    pub group: Option<String>,
    pub period_start: DateTime<Utc>,
    pub changes: u32,
    pub successful: u32,
    pub failed: u32,
    pub emergency: u32,
    pub success_rate: f64,
    pub emergency_share: f64,
    pub mean_lead_time_seconds: f64,
}

/// The UTC start of the period `at` falls in (weeks start on Monday).
pub fn period_start(period: Period, at: DateTime<Utc>) -> DateTime<Utc> {
    let date = at.date_naive();
    let day = match period {
        Period::Day => date,
        Period::Week => date - Duration::days(i64::from(date.weekday().num_days_from_monday())),
        Period::Month => NaiveDate::from_ymd_opt(date.year(), date.month(), 1).unwrap_or(date),
    };
    Utc.from_utc_datetime(&day.and_time(chrono::NaiveTime::MIN))
}

#[derive(Default)]
struct Sums {
    changes: u32,
    successful: u32,
    failed: u32,
    emergency: u32,
    lead_seconds: f64,
    lead_count: u32,
}

/// Figures per group and period (by creation time), then for every group (`*`) per period.
pub fn compute(changes: &[ChangeFacts], period: Period) -> Vec<Figures> {
    let mut sums: BTreeMap<(DateTime<Utc>, Option<String>), Sums> = BTreeMap::new();
    for change in changes {
        let start = period_start(period, change.created_at);
        for group in [change.group.clone(), Some("*".to_owned())] {
            let entry = sums.entry((start, group)).or_default();
            entry.changes += 1;
            match change.outcome {
                Some(Outcome::Successful) => entry.successful += 1,
                Some(Outcome::Failed) => entry.failed += 1,
                None => {}
            }
            if change.change_type == ChangeType::Emergency {
                entry.emergency += 1;
            }
            if let Some(ended) = change.implement_ended_at {
                entry.lead_seconds += (ended - change.created_at).num_seconds() as f64;
                entry.lead_count += 1;
            }
        }
    }
    sums.into_iter()
        .map(|((period_start, group), s)| {
            let implemented = s.successful + s.failed;
            Figures {
                group,
                period_start,
                changes: s.changes,
                successful: s.successful,
                failed: s.failed,
                emergency: s.emergency,
                success_rate: ratio(s.successful, implemented),
                emergency_share: ratio(s.emergency, s.changes),
                mean_lead_time_seconds: if s.lead_count == 0 {
                    0.0
                } else {
                    s.lead_seconds / f64::from(s.lead_count)
                },
            }
        })
        .collect()
}

fn ratio(part: u32, whole: u32) -> f64 {
    if whole == 0 {
        0.0
    } else {
        f64::from(part) / f64::from(whole)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(d: u32, hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2030, 3, d, hour, 0, 0)
            .single()
            .expect("a time")
    }

    #[test]
    fn figures_per_group_and_for_everyone() {
        let facts = [
            ChangeFacts {
                group: Some("net".into()),
                change_type: ChangeType::Emergency,
                created_at: day(4, 8),
                outcome: Some(Outcome::Failed),
                implement_ended_at: Some(day(4, 10)),
            },
            ChangeFacts {
                group: Some("net".into()),
                change_type: ChangeType::Normal,
                created_at: day(5, 8),
                outcome: Some(Outcome::Successful),
                implement_ended_at: Some(day(5, 12)),
            },
            ChangeFacts {
                group: None,
                change_type: ChangeType::Standard,
                created_at: day(6, 8),
                outcome: None,
                implement_ended_at: None,
            },
        ];
        let figures = compute(&facts, Period::Week);
        // 2030-03-04 is a Monday: one week, two groups (net, none) and everyone.
        assert_eq!(figures.len(), 3);
        let everyone = figures
            .iter()
            .find(|f| f.group.as_deref() == Some("*"))
            .expect("*");
        assert_eq!(everyone.period_start, day(4, 0));
        assert_eq!(everyone.changes, 3);
        assert!((everyone.success_rate - 0.5).abs() < 1e-9);
        assert!((everyone.emergency_share - 1.0 / 3.0).abs() < 1e-9);
        assert!((everyone.mean_lead_time_seconds - 3.0 * 3600.0).abs() < 1e-9);
        let net = figures
            .iter()
            .find(|f| f.group.as_deref() == Some("net"))
            .expect("net");
        assert_eq!((net.successful, net.failed, net.emergency), (1, 1, 1));
    }

    #[test]
    fn periods_start_at_midnight_monday_and_the_first() {
        assert_eq!(period_start(Period::Day, day(6, 15)), day(6, 0));
        assert_eq!(period_start(Period::Week, day(6, 15)), day(4, 0));
        assert_eq!(period_start(Period::Month, day(6, 15)), day(1, 0));
    }
}
