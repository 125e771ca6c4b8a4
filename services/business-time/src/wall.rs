//! The wall-clock side of the arithmetic: which local wall-clock stretches the rules make
//! working (or, for explanations, skip), in order, one local date at a time. Nothing here knows
//! about UTC or DST; `arithmetic` maps these stretches onto instants.

use std::collections::VecDeque;

use chrono::{Datelike, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta};

use crate::calendar::{BusinessCalendar, LAST_SUPPORTED_YEAR};

/// Which rule produced a wall-clock stretch. Indexes are into the calendar's spans and exceptions
/// in the order the user gave them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SegmentKind {
    /// A weekly span on the local date it belongs to (the day it starts).
    Weekly { span_index: usize, date: NaiveDate },
    /// An extra-working exception.
    ExtraWorking { exception_index: usize },
    /// A weekly span not worked because its date is a holiday (explanations only).
    Holiday { span_index: usize, date: NaiveDate },
    /// A weekly span not worked because a closed exception covers it (explanations only).
    Closed {
        span_index: usize,
        date: NaiveDate,
        exception_index: usize,
    },
}

/// A local wall-clock stretch `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WallSegment {
    pub(crate) start: NaiveDateTime,
    pub(crate) end: NaiveDateTime,
    pub(crate) kind: SegmentKind,
}

fn midnight(date: NaiveDate) -> NaiveDateTime {
    date.and_time(NaiveTime::MIN)
}

pub(crate) fn last_supported_date() -> NaiveDate {
    NaiveDate::from_ymd_opt(LAST_SUPPORTED_YEAR, 12, 31).unwrap_or(NaiveDate::MAX)
}

/// Segments from a wall-clock time on, in increasing order, disjoint, clipped to start at or
/// after it. Lazy: a date is looked at only when the caller gets that far, so computing a due
/// time costs the days it spans, not the calendar's size.
pub(crate) struct WallSegments<'c> {
    calendar: &'c BusinessCalendar,
    from: NaiveDateTime,
    /// The next local date to expand; `None` once past the last supported date.
    next_date: Option<NaiveDate>,
    /// Expanded but not yet handed out, by start. A segment may be handed out only once no date
    /// still to expand can produce one that starts earlier, i.e. once it starts before the next
    /// date's midnight (every date's segments start on or after its own midnight).
    buffer: VecDeque<WallSegment>,
    /// Whether to produce the skipped (holiday, closed) segments too.
    explain: bool,
    /// Position in `calendar.working_exceptions` of the next one not yet expanded.
    next_working_exception: usize,
}

impl<'c> WallSegments<'c> {
    pub(crate) fn new(calendar: &'c BusinessCalendar, from: NaiveDateTime, explain: bool) -> Self {
        let exceptions = &calendar.exceptions;
        let next_working_exception = calendar
            .working_exceptions
            .partition_point(|&index| exceptions[index].end <= from);
        // The day before: its overnight spans may still be running at `from`.
        let first_date = from.date().pred_opt().unwrap_or(from.date());
        WallSegments {
            calendar,
            from,
            next_date: (first_date <= last_supported_date()).then_some(first_date),
            buffer: VecDeque::new(),
            explain,
            next_working_exception,
        }
    }

    pub(crate) fn peek(&mut self) -> Option<&WallSegment> {
        loop {
            let threshold = self.next_date.map(midnight);
            let ready = match (self.buffer.front(), threshold) {
                (Some(front), Some(threshold)) => front.start < threshold,
                (Some(_), None) => true,
                (None, _) => false,
            };
            if ready {
                return self.buffer.front();
            }
            let date = self.next_date?;
            self.next_date = if date >= last_supported_date() {
                None
            } else {
                date.succ_opt()
            };
            self.expand(date);
        }
    }

    pub(crate) fn advance(&mut self) {
        self.buffer.pop_front();
    }

    fn push(&mut self, start: NaiveDateTime, end: NaiveDateTime, kind: SegmentKind) {
        let start = start.max(self.from);
        if end > start {
            self.buffer.push_back(WallSegment { start, end, kind });
        }
    }

    fn expand(&mut self, date: NaiveDate) {
        let calendar = self.calendar;
        let day_start = midnight(date);
        let next_day_start = day_start + TimeDelta::days(1);
        if !self.explain {
            // A closed stretch of days (a shutdown, a long closure) is jumped over instead of
            // expanded day by day; only the zone's offset is still probed once per day.
            if let Some(closed_until) =
                closed_through(calendar, day_start, day_start + TimeDelta::days(2))
            {
                // Spans of earlier dates end by the midnight two days after they start, which is
                // still inside the closure; the day before its end may reach past it.
                let resume = closed_until
                    .date()
                    .pred_opt()
                    .unwrap_or(date)
                    .max(date + TimeDelta::days(1));
                if self.next_date.is_some_and(|next| next < resume) {
                    self.next_date = Some(resume).filter(|&resume| resume <= last_supported_date());
                }
                return;
            }
        }
        while let Some(&index) = calendar.working_exceptions.get(self.next_working_exception) {
            let exception = &calendar.exceptions[index];
            if exception.start >= next_day_start {
                break;
            }
            self.next_working_exception += 1;
            self.push(
                exception.start,
                exception.end,
                SegmentKind::ExtraWorking {
                    exception_index: index,
                },
            );
        }
        let holiday = calendar.is_holiday(date);
        if holiday && !self.explain {
            self.sort_buffer();
            return;
        }
        let weekday = date.weekday().num_days_from_monday() as usize;
        for &span_index in &calendar.spans_by_weekday[weekday] {
            let (start, end) = calendar.spans[span_index].on(date);
            if end <= self.from {
                continue;
            }
            // Extra working time wins over the span it overlaps, so no minute counts twice.
            split_by(
                calendar,
                &calendar.working_exceptions,
                start,
                end,
                |start, end, inside| {
                    if inside.is_some() {
                        return;
                    }
                    if holiday {
                        self.push(start, end, SegmentKind::Holiday { span_index, date });
                        return;
                    }
                    split_by(
                        calendar,
                        &calendar.closed_exceptions,
                        start,
                        end,
                        |start, end, inside| match inside {
                            None => self.push(start, end, SegmentKind::Weekly { span_index, date }),
                            Some(exception_index) if self.explain => self.push(
                                start,
                                end,
                                SegmentKind::Closed {
                                    span_index,
                                    date,
                                    exception_index,
                                },
                            ),
                            Some(_) => {}
                        },
                    );
                },
            );
        }
        self.sort_buffer();
    }

    fn sort_buffer(&mut self) {
        self.buffer
            .make_contiguous()
            .sort_by_key(|segment| segment.start);
    }
}

/// Cuts `[start, end)` by the exceptions listed in `indexes` (disjoint, by start) and calls
/// `part` for each piece in order, with the exception index for pieces inside one.
fn split_by(
    calendar: &BusinessCalendar,
    indexes: &[usize],
    start: NaiveDateTime,
    end: NaiveDateTime,
    mut part: impl FnMut(NaiveDateTime, NaiveDateTime, Option<usize>),
) {
    let exceptions = &calendar.exceptions;
    let first = indexes.partition_point(|&index| exceptions[index].end <= start);
    let mut cursor = start;
    for &index in &indexes[first..] {
        let exception = &exceptions[index];
        if exception.start >= end {
            break;
        }
        if cursor < exception.start {
            part(cursor, exception.start, None);
        }
        let inside_end = exception.end.min(end);
        part(cursor.max(exception.start), inside_end, Some(index));
        cursor = inside_end;
    }
    if cursor < end {
        part(cursor, end, None);
    }
}

/// The end of the closed exception covering all of `[start, end)`, if one does.
fn closed_through(
    calendar: &BusinessCalendar,
    start: NaiveDateTime,
    end: NaiveDateTime,
) -> Option<NaiveDateTime> {
    let exceptions = &calendar.exceptions;
    let position = calendar
        .closed_exceptions
        .partition_point(|&index| exceptions[index].start <= start);
    let exception = &exceptions[*calendar.closed_exceptions.get(position.checked_sub(1)?)?];
    (exception.end >= end).then_some(exception.end)
}
