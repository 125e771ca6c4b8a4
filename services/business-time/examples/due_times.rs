//! Micro-benchmark (not a test, asserts no timing): how long due times and business time take
//! on an office-hours calendar with a year of holidays, for an SLA engine that recomputes a
//! clock per ticket event. Prints one JSON line.
//!
//! `cargo run --release -p desk-business-time --example due_times [-- operations]`

use std::hint::black_box;
use std::time::Instant;

use chrono::{DateTime, NaiveDate, TimeDelta, Utc, Weekday};
use desk_business_time::{BusinessCalendar, CalendarSpec, Holiday, WorkingSpan, hm};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let operations: i64 = std::env::args()
        .nth(1)
        .map(|count| count.parse())
        .transpose()?
        .unwrap_or(200_000);
    let weekdays = [
        Weekday::Mon,
        Weekday::Tue,
        Weekday::Wed,
        Weekday::Thu,
        Weekday::Fri,
    ];
    let holidays = (0..365)
        .step_by(17)
        .filter_map(|day| {
            NaiveDate::from_ymd_opt(2026, 1, 1).map(|first| first + TimeDelta::days(day))
        })
        .map(|date| Holiday::new(date, "holiday"))
        .collect();
    let calendar = BusinessCalendar::new(CalendarSpec {
        time_zone: "Europe/Stockholm".into(),
        weekly_hours: weekdays
            .iter()
            .map(|&day| WorkingSpan::daytime(day, hm(8, 0), hm(17, 0)))
            .collect(),
        holidays,
        exceptions: vec![],
    })?;
    let base: DateTime<Utc> = "2026-01-01T00:00:00Z".parse()?;
    // Starts spread over the year (every DST change included), targets from 1 hour to 5 days.
    let start = |index: i64| base + TimeDelta::minutes(index * 7919 % (365 * 24 * 60));
    let target = |index: i64| TimeDelta::minutes(60 + index * 104_729 % (5 * 9 * 60));

    let began = Instant::now();
    let mut due_times = Vec::with_capacity(operations as usize);
    for index in 0..operations {
        due_times.push(calendar.add_business(start(index), target(index))?);
    }
    let add_business_ns = began.elapsed().as_nanos() as f64 / operations as f64;

    let began = Instant::now();
    for (index, due) in due_times.iter().enumerate() {
        black_box(calendar.business_between(start(index as i64), *due));
    }
    let business_between_ns = began.elapsed().as_nanos() as f64 / operations as f64;

    let began = Instant::now();
    for index in 0..operations {
        black_box(calendar.is_working(start(index)));
    }
    let is_working_ns = began.elapsed().as_nanos() as f64 / operations as f64;

    println!(
        "{{\"operations\":{operations},\"add_business_ns\":{add_business_ns:.0},\"business_between_ns\":{business_between_ns:.0},\"is_working_ns\":{is_working_ns:.0},\"add_business_per_s\":{:.0}}}",
        1e9 / add_business_ns
    );
    Ok(())
}
