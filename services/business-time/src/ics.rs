//! Holidays from iCalendar (`.ics`) feeds, e.g. a country's public holidays: all-day `VEVENT`s,
//! one per holiday or one per recurring holiday (`RRULE:FREQ=YEARLY`), expanded for the years a
//! calendar needs.
//!
//! Holidays are local dates, so the expansion runs on dates alone: recurrences are expanded from
//! midnight UTC, where every day is 24 hours long, and never through the machine's time zone
//! (which `icalendar` would use for an all-day `DTSTART` in a feed without `X-WR-TIMEZONE`) or the
//! feed's (where a midnight DST change would make the first day's start ambiguous).

use std::collections::HashSet;
use std::ops::RangeInclusive;

use chrono::{NaiveDate, NaiveTime, TimeDelta, TimeZone};
use icalendar::{Calendar, Component, DatePerhapsTime, Event, EventStatus};

use crate::calendar::{FIRST_SUPPORTED_YEAR, Holiday, LAST_SUPPORTED_YEAR, year_supported};

/// Longest holiday event accepted; longer is more likely a mistake (or a season) than a holiday.
const LONGEST_EVENT_DAYS: i64 = 366;

/// Why a feed could not be turned into holidays. Nothing is imported when any event is wrong:
/// half a country's holidays would be worse than none.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IcsError {
    #[error(
        "the years {first}–{last} are not a range within {FIRST_SUPPORTED_YEAR}–{LAST_SUPPORTED_YEAR}"
    )]
    YearsOutOfRange { first: i32, last: i32 },
    #[error("not an iCalendar file: {reason}")]
    Unparsable { reason: String },
    /// `event` names the event as a person would find it in the file: its position, UID and summary.
    #[error("{event}: {problem}")]
    Event { event: String, problem: String },
}

/// The holidays `ics` lists on dates within `years` (inclusive), sorted by date. Each day of a
/// multi-day event is one holiday; cancelled events and cancelled or moved occurrences
/// (`EXDATE`, `RECURRENCE-ID` overrides) are left out; the event's `SUMMARY` names the holiday.
pub fn holidays_from_ics(ics: &str, years: RangeInclusive<i32>) -> Result<Vec<Holiday>, IcsError> {
    let (first_year, last_year) = (*years.start(), *years.end());
    if first_year > last_year || !year_supported(first_year) || !year_supported(last_year) {
        return Err(IcsError::YearsOutOfRange {
            first: first_year,
            last: last_year,
        });
    }
    let calendar: Calendar = ics
        .parse()
        .map_err(|reason: String| IcsError::Unparsable { reason })?;
    let events: Vec<&Event> = calendar.events().collect();
    if events.is_empty() && !ics.contains("BEGIN:VCALENDAR") {
        return Err(IcsError::Unparsable {
            reason: "no VCALENDAR found".into(),
        });
    }
    // Occurrences that another VEVENT (same UID, RECURRENCE-ID) moves or cancels.
    let overridden: HashSet<(String, NaiveDate)> = events
        .iter()
        .filter_map(|event| {
            Some((
                event.get_uid()?.to_owned(),
                event.get_recurrence_id()?.date_naive(),
            ))
        })
        .collect();
    let first_day = NaiveDate::from_ymd_opt(first_year, 1, 1).unwrap_or(NaiveDate::MIN);
    let last_day = NaiveDate::from_ymd_opt(last_year, 12, 31).unwrap_or(NaiveDate::MAX);
    let mut holidays = Vec::new();
    for (position, event) in events.iter().enumerate() {
        if event.get_status() == Some(EventStatus::Cancelled) {
            continue;
        }
        let fail = |problem: String| IcsError::Event {
            event: describe(position, event),
            problem,
        };
        let (start, days) = all_day_extent(event).map_err(fail)?;
        let mut starts = occurrences(event, start, days, first_day, last_day).map_err(fail)?;
        if let (None, Some(uid)) = (event.get_recurrence_id(), event.get_uid()) {
            starts.retain(|date| !overridden.contains(&(uid.to_owned(), *date)));
        }
        let name = event
            .get_summary()
            .map(str::trim)
            .filter(|name| !name.is_empty())
            .unwrap_or("holiday");
        for occurrence in starts {
            for day in (0..days)
                .filter_map(|offset| occurrence.checked_add_signed(TimeDelta::days(offset)))
            {
                if (first_day..=last_day).contains(&day) {
                    holidays.push(Holiday::new(day, name));
                }
            }
        }
    }
    holidays.sort();
    holidays.dedup();
    Ok(holidays)
}

fn describe(position: usize, event: &Event) -> String {
    let mut description = format!("VEVENT #{}", position + 1);
    if let Some(uid) = event.get_uid() {
        description.push_str(&format!(" (UID {uid})"));
    }
    if let Some(summary) = event.get_summary() {
        description.push_str(&format!(" \"{summary}\""));
    }
    description
}

/// The event's first date and how many days it covers (`DTEND` is exclusive for dates).
fn all_day_extent(event: &Event) -> Result<(NaiveDate, i64), String> {
    let start = match event.get_start() {
        Some(DatePerhapsTime::Date(date)) => date,
        Some(DatePerhapsTime::DateTime(_)) => {
            return Err(
                "starts at a time of day (DTSTART is a DATE-TIME); holidays must be all-day \
                        events (DTSTART;VALUE=DATE:YYYYMMDD)"
                    .into(),
            );
        }
        None => return Err("has no DTSTART (or one that cannot be read)".into()),
    };
    let days = match (event.get_end(), event.property_value("DURATION")) {
        (Some(DatePerhapsTime::Date(end)), _) => (end - start).num_days(),
        (Some(DatePerhapsTime::DateTime(_)), _) => {
            return Err(
                "ends at a time of day (DTEND is a DATE-TIME); holidays must be all-day events"
                    .into(),
            );
        }
        (None, Some(duration)) => whole_days(duration).ok_or_else(|| {
            format!("DURATION `{duration}` is not a number of days or weeks (e.g. P1D)")
        })?,
        // RFC 5545 §3.6.1: an all-day event without DTEND or DURATION lasts one day.
        (None, None) => 1,
    };
    if !(1..=LONGEST_EVENT_DAYS).contains(&days) {
        return Err(format!(
            "lasts {days} days; an all-day holiday lasts 1 to {LONGEST_EVENT_DAYS} days"
        ));
    }
    Ok((start, days))
}

/// `P1D`, `P2W`: the only durations an all-day event has.
fn whole_days(duration: &str) -> Option<i64> {
    let amount = duration.trim().strip_prefix('P')?;
    let (count, per) = match amount.strip_suffix('D') {
        Some(count) => (count, 1),
        None => (amount.strip_suffix('W')?, 7),
    };
    count.parse::<i64>().ok().map(|count| count * per)
}

/// Start dates of the event's occurrences that can reach `[first_day, last_day]`.
fn occurrences(
    event: &Event,
    start: NaiveDate,
    days: i64,
    first_day: NaiveDate,
    last_day: NaiveDate,
) -> Result<Vec<NaiveDate>, String> {
    let mut starts = match event.property_value("RRULE") {
        Some(rule) => expand_rule(rule, start, days, first_day, last_day)?,
        None => vec![start],
    };
    starts.extend(listed_dates(event, "RDATE")?);
    let excluded = listed_dates(event, "EXDATE")?;
    starts.retain(|date| !excluded.contains(date));
    starts.sort_unstable();
    starts.dedup();
    Ok(starts)
}

fn expand_rule(
    rule: &str,
    start: NaiveDate,
    days: i64,
    first_day: NaiveDate,
    last_day: NaiveDate,
) -> Result<Vec<NaiveDate>, String> {
    let text = format!(
        "DTSTART:{}T000000Z\nRRULE:{}",
        start.format("%Y%m%d"),
        until_as_utc(rule)
    );
    let set: icalendar::RRuleSet = text
        .parse()
        .map_err(|error| format!("RRULE `{rule}` cannot be expanded: {error}"))?;
    let utc =
        |date: NaiveDate| icalendar::Tz::UTC.from_utc_datetime(&date.and_time(NaiveTime::MIN));
    let result = set
        .after(utc(first_day - TimeDelta::days(days)))
        .before(utc(last_day + TimeDelta::days(1)))
        .all(u16::MAX);
    if result.limited {
        return Err(format!(
            "RRULE `{rule}` has more than {} occurrences in the years asked for",
            u16::MAX
        ));
    }
    Ok(result
        .dates
        .iter()
        .map(|occurrence| occurrence.date_naive())
        .collect())
}

/// Rewrites `UNTIL` as the end of its date in UTC, to match the UTC `DTSTART` the expansion
/// uses: feeds write it as a DATE (`UNTIL=20301231`) or as a time in some zone, and for all-day
/// events only its date means anything.
fn until_as_utc(rule: &str) -> String {
    rule.split(';')
        .map(|part| match part.split_once('=') {
            Some((key, value))
                if key.eq_ignore_ascii_case("UNTIL")
                    && value.len() >= 8
                    && value.is_char_boundary(8) =>
            {
                format!("UNTIL={}T235959Z", &value[..8])
            }
            _ => part.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(";")
}

/// The dates in every `RDATE`/`EXDATE` line (comma-separated DATE, DATE-TIME or PERIOD values;
/// only the date part counts for all-day events).
fn listed_dates(event: &Event, key: &str) -> Result<Vec<NaiveDate>, String> {
    let Some(properties) = event.multi_properties().get(key) else {
        return Ok(Vec::new());
    };
    let mut dates = Vec::new();
    for property in properties {
        for value in property
            .value()
            .split(',')
            .map(str::trim)
            .filter(|value| !value.is_empty())
        {
            let date = value
                .get(..8)
                .and_then(|digits| NaiveDate::parse_from_str(digits, "%Y%m%d").ok())
                .ok_or_else(|| format!("{key} value `{value}` is not a date"))?;
            dates.push(date);
        }
    }
    Ok(dates)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Datelike;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("a real date")
    }

    fn feed(events: &str) -> String {
        format!(
            "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//desk//test//EN\r\n{events}END:VCALENDAR\r\n"
        )
    }

    fn dates(holidays: &[Holiday]) -> Vec<NaiveDate> {
        holidays.iter().map(|holiday| holiday.date).collect()
    }

    #[test]
    fn yearly_all_day_events_expand_into_the_years_asked_for() {
        let ics = feed(
            "BEGIN:VEVENT\r\nUID:xmas@example\r\nDTSTART;VALUE=DATE:20201225\r\nDTEND;VALUE=DATE:20201226\r\n\
             RRULE:FREQ=YEARLY\r\nSUMMARY:Juldagen\r\nEND:VEVENT\r\n\
             BEGIN:VEVENT\r\nUID:may@example\r\nDTSTART;VALUE=DATE:20260501\r\nSUMMARY:Första maj\r\nEND:VEVENT\r\n\
             BEGIN:VEVENT\r\nUID:thanks@example\r\nDTSTART;VALUE=DATE:20001123\r\n\
             RRULE:FREQ=YEARLY;BYMONTH=11;BYDAY=4TH\r\nSUMMARY:Thanksgiving\r\nEND:VEVENT\r\n",
        );
        let holidays = holidays_from_ics(&ics, 2026..=2027).expect("a valid feed");
        assert_eq!(
            holidays,
            vec![
                Holiday::new(date(2026, 5, 1), "Första maj"),
                Holiday::new(date(2026, 11, 26), "Thanksgiving"),
                Holiday::new(date(2026, 12, 25), "Juldagen"),
                Holiday::new(date(2027, 11, 25), "Thanksgiving"),
                Holiday::new(date(2027, 12, 25), "Juldagen"),
            ]
        );
    }

    #[test]
    fn multi_day_events_until_exdates_and_moved_occurrences_are_respected() {
        let ics = feed(
            "BEGIN:VEVENT\r\nUID:break@example\r\nDTSTART;VALUE=DATE:20261224\r\nDTEND;VALUE=DATE:20261227\r\n\
             SUMMARY:Christmas break\r\nEND:VEVENT\r\n\
             BEGIN:VEVENT\r\nUID:fest@example\r\nDTSTART;VALUE=DATE:20240610\r\nRRULE:FREQ=YEARLY;UNTIL=20270610\r\n\
             EXDATE;VALUE=DATE:20260610\r\nSUMMARY:Fest\r\nEND:VEVENT\r\n\
             BEGIN:VEVENT\r\nUID:fest@example\r\nRECURRENCE-ID;VALUE=DATE:20270610\r\nDTSTART;VALUE=DATE:20270611\r\n\
             SUMMARY:Fest (moved)\r\nEND:VEVENT\r\n\
             BEGIN:VEVENT\r\nUID:gone@example\r\nDTSTART;VALUE=DATE:20260301\r\nSTATUS:CANCELLED\r\nSUMMARY:Gone\r\nEND:VEVENT\r\n",
        );
        let holidays = holidays_from_ics(&ics, 2025..=2030).expect("a valid feed");
        assert_eq!(
            dates(&holidays),
            vec![
                date(2025, 6, 10),
                date(2026, 12, 24),
                date(2026, 12, 25),
                date(2026, 12, 26),
                date(2027, 6, 11)
            ]
        );
        assert_eq!(holidays[4].name, "Fest (moved)");
    }

    #[test]
    fn an_all_day_event_reads_the_same_whatever_the_feed_or_machine_zone() {
        let ics = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nX-WR-TIMEZONE:America/Sao_Paulo\r\n\
                   BEGIN:VEVENT\r\nUID:a@example\r\nDTSTART;VALUE=DATE:20181104\r\nRRULE:FREQ=YEARLY;COUNT=2\r\n\
                   SUMMARY:Midnight DST change day\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
        let holidays = holidays_from_ics(ics, 2018..=2019).expect("a valid feed");
        assert_eq!(dates(&holidays), vec![date(2018, 11, 4), date(2019, 11, 4)]);
    }

    #[test]
    fn timed_events_are_refused_with_the_event_named() {
        let ics = feed(
            "BEGIN:VEVENT\r\nUID:meeting@example\r\nDTSTART:20260501T090000Z\r\nSUMMARY:Standup\r\nEND:VEVENT\r\n",
        );
        let error = holidays_from_ics(&ics, 2026..=2026).expect_err("an invalid input");
        assert!(
            matches!(&error, IcsError::Event { event, .. } if event == "VEVENT #1 (UID meeting@example) \"Standup\"")
        );
        assert!(error.to_string().contains("all-day"), "{error}");
    }

    #[test]
    fn broken_rules_durations_and_feeds_are_refused() {
        let broken_rule = feed(
            "BEGIN:VEVENT\r\nUID:r@example\r\nDTSTART;VALUE=DATE:20260101\r\nRRULE:FREQ=SOMETIMES\r\nEND:VEVENT\r\n",
        );
        assert!(matches!(
            holidays_from_ics(&broken_rule, 2026..=2026),
            Err(IcsError::Event { .. })
        ));
        let broken_duration = feed(
            "BEGIN:VEVENT\r\nUID:d@example\r\nDTSTART;VALUE=DATE:20260101\r\nDURATION:PT5H\r\nEND:VEVENT\r\n",
        );
        assert!(matches!(
            holidays_from_ics(&broken_duration, 2026..=2026),
            Err(IcsError::Event { .. })
        ));
        let endless = feed(
            "BEGIN:VEVENT\r\nUID:e@example\r\nDTSTART;VALUE=DATE:19700101\r\nRRULE:FREQ=DAILY\r\nEND:VEVENT\r\n",
        );
        assert!(matches!(
            holidays_from_ics(&endless, 1970..=2200),
            Err(IcsError::Event { .. })
        ));
        assert!(matches!(
            holidays_from_ics("hello", 2026..=2026),
            Err(IcsError::Unparsable { .. })
        ));
        assert!(matches!(
            holidays_from_ics(&feed(""), RangeInclusive::new(2027, 2026)),
            Err(IcsError::YearsOutOfRange { .. })
        ));
        assert!(matches!(
            holidays_from_ics(&feed(""), 1900..=2026),
            Err(IcsError::YearsOutOfRange { .. })
        ));
    }

    #[test]
    fn a_duration_in_days_gives_that_many_holidays() {
        let ics = feed(
            "BEGIN:VEVENT\r\nUID:w@example\r\nDTSTART;VALUE=DATE:20260720\r\nDURATION:P1W\r\nEND:VEVENT\r\n",
        );
        let holidays = holidays_from_ics(&ics, 2026..=2026).expect("a valid feed");
        assert_eq!(holidays.len(), 7);
        assert_eq!(holidays[0].name, "holiday");
        assert_eq!(holidays[6].date, date(2026, 7, 26));
        assert!(holidays.iter().all(|holiday| holiday.date.year() == 2026));
    }
}
