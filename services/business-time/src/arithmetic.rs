//! From wall-clock stretches to instants, and the questions asked of a calendar: is it working
//! now, when does it next work, how much business time lies between two instants, when is a
//! duration of business time used up, and why.
//!
//! UTC time is cut into pieces of constant UTC offset. Within a piece, local wall-clock time is
//! UTC plus the offset, so the instants whose wall-clock time lies in a working stretch are that
//! stretch shifted back by the offset. At an offset change the wall-clock walk restarts at the
//! new piece's local time: after a fall-back change that is an hour earlier, so the repeated hour
//! is walked (and counted) twice; after a spring-forward change it is an hour later, so the
//! missing hour is never walked.

use chrono::{DateTime, NaiveDate, Offset, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;

use crate::calendar::{BusinessCalendar, LAST_SUPPORTED_YEAR, WorkingSpan};
use crate::wall::{SegmentKind, WallSegments};

/// How far ahead an offset change is looked for at a time. The tz database (as built into
/// chrono-tz 0.10.4) never changes a zone's offset twice within 167 hours after 1970 (the
/// closest are Brazil's 2000 changes a week apart), so probing once a day cannot step over a
/// change and back.
const OFFSET_PROBE_STEP: TimeDelta = TimeDelta::days(1);

/// Why a business-time question has no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BusinessTimeError {
    #[error("a business duration cannot be negative")]
    NegativeDuration,
    #[error("the calendar has no working time left before the end of {horizon_year}")]
    NoWorkingTimeBeforeHorizon { horizon_year: i32 },
}

/// A stretch of working time, in UTC, with the rule that made it working.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkingInterval {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub source: WorkingSource,
}

impl WorkingInterval {
    pub fn duration(&self) -> TimeDelta {
        self.end - self.start
    }
}

/// The rule behind a [`WorkingInterval`]; indexes are into [`BusinessCalendar::weekly_hours`] and
/// [`BusinessCalendar::exceptions`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkingSource {
    /// Weekly span `index`, as worked on `local_date` (the date the span starts on).
    WeeklySpan { index: usize, local_date: NaiveDate },
    /// Extra working time from exception `index`.
    ExtraWorkingTime { index: usize },
}

/// Everything that happened between two instants, counted or not: for SLA timelines that say
/// which rule counted which interval and what was skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    /// In time order; adjacent entries may share an instant (e.g. a span cut by a closure).
    pub entries: Vec<TimelineEntry>,
    /// The sum of the counted entries: equal to [`BusinessCalendar::business_between`].
    pub business_time: TimeDelta,
    /// Each holiday that took away working time in the range, once, with how much.
    pub holidays_skipped: Vec<SkippedHoliday>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimelineEntry {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub rule: TimelineRule,
}

impl TimelineEntry {
    pub fn duration(&self) -> TimeDelta {
        self.end - self.start
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimelineRule {
    /// Counted: weekly span `index` on `local_date`.
    WeeklySpan {
        index: usize,
        span: WorkingSpan,
        local_date: NaiveDate,
    },
    /// Counted: extra working time.
    ExtraWorkingTime { index: usize, label: String },
    /// Not counted: weekly span `span_index` falls on a holiday.
    Holiday {
        span_index: usize,
        span: WorkingSpan,
        local_date: NaiveDate,
        names: Vec<String>,
    },
    /// Not counted: weekly span `span_index` is covered by closed exception `exception_index`.
    ClosedTime {
        span_index: usize,
        span: WorkingSpan,
        local_date: NaiveDate,
        exception_index: usize,
        label: String,
    },
}

impl TimelineRule {
    /// Whether the entry's time counts as business time.
    pub fn counts(&self) -> bool {
        matches!(
            self,
            TimelineRule::WeeklySpan { .. } | TimelineRule::ExtraWorkingTime { .. }
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedHoliday {
    pub date: NaiveDate,
    pub names: Vec<String>,
    /// Working time the weekly hours would have had in the range without the holiday.
    pub skipped: TimeDelta,
}

impl BusinessCalendar {
    /// Whether `at` is working time.
    pub fn is_working(&self, at: DateTime<Utc>) -> bool {
        self.next_working_instant(at) == Some(at)
    }

    /// `at` itself when it is working time, otherwise the start of the next working stretch
    /// ("when does this team's next shift start"); `None` if there is none before the horizon.
    pub fn next_working_instant(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        UtcSegments::new(self, at, None, false)
            .next()
            .map(|segment| segment.start)
    }

    /// When working at `at`, the end of the unbroken working stretch around it, across rules
    /// (a shift that runs into extra time ends when the extra time does), or `look_until` if
    /// it is still working then; `None` when not working. The bound keeps the question cheap for
    /// around-the-clock calendars, whose stretch only ends at the horizon: routing asks "does
    /// this shift end within the next day", not "when, ever".
    pub fn working_until(
        &self,
        at: DateTime<Utc>,
        look_until: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        let mut segments = UtcSegments::new(self, at, Some(look_until), false);
        let first = segments.next().filter(|segment| segment.start == at)?;
        let mut end = first.end;
        for segment in segments {
            if segment.start != end {
                break;
            }
            end = segment.end;
        }
        Some(end)
    }

    /// The instant at which `duration` of business time, counted from `start`, is used up: the
    /// earliest `t` with `business_between(start, t) == duration`. So it always lies inside or at
    /// the end of working time, never in the gap after it. A zero duration gives `start`.
    ///
    /// Walks working stretches (a few per day), never minutes.
    pub fn add_business(
        &self,
        start: DateTime<Utc>,
        duration: TimeDelta,
    ) -> Result<DateTime<Utc>, BusinessTimeError> {
        if duration < TimeDelta::zero() {
            return Err(BusinessTimeError::NegativeDuration);
        }
        if duration.is_zero() {
            return Ok(start);
        }
        let mut remaining = duration;
        for segment in UtcSegments::new(self, start, None, false) {
            let length = segment.end - segment.start;
            if remaining <= length {
                return Ok(segment.start + remaining);
            }
            remaining -= length;
        }
        Err(BusinessTimeError::NoWorkingTimeBeforeHorizon {
            horizon_year: LAST_SUPPORTED_YEAR,
        })
    }

    /// Business time in `[from, to)`; zero when `to` is not after `from`.
    pub fn business_between(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> TimeDelta {
        UtcSegments::new(self, from, Some(to), false)
            .map(|segment| segment.end - segment.start)
            .fold(TimeDelta::zero(), |total, length| total + length)
    }

    /// The working intervals from `from` on (clipped to start there), in order, until the horizon.
    /// Adjacent pieces of one rule come as one interval, even across a DST change.
    pub fn working_intervals(&self, from: DateTime<Utc>) -> WorkingIntervals<'_> {
        WorkingIntervals {
            merged: Merged::new(UtcSegments::new(self, from, None, false)),
        }
    }

    /// The working intervals in `[from, to)`, clipped to it.
    pub fn working_intervals_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> WorkingIntervals<'_> {
        WorkingIntervals {
            merged: Merged::new(UtcSegments::new(self, from, Some(to), false)),
        }
    }

    /// What counted and what was skipped in `[from, to)`, rule by rule.
    pub fn explain(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Explanation {
        let mut entries = Vec::new();
        let mut business_time = TimeDelta::zero();
        let mut holidays_skipped: Vec<SkippedHoliday> = Vec::new();
        for segment in Merged::new(UtcSegments::new(self, from, Some(to), true)) {
            let span = |index: usize| self.spans[index];
            let rule = match segment.kind {
                SegmentKind::Weekly { span_index, date } => TimelineRule::WeeklySpan {
                    index: span_index,
                    span: span(span_index),
                    local_date: date,
                },
                SegmentKind::ExtraWorking { exception_index } => TimelineRule::ExtraWorkingTime {
                    index: exception_index,
                    label: self.exceptions[exception_index].label.clone(),
                },
                SegmentKind::Holiday { span_index, date } => {
                    let length = segment.end - segment.start;
                    match holidays_skipped
                        .iter_mut()
                        .find(|holiday| holiday.date == date)
                    {
                        Some(holiday) => holiday.skipped += length,
                        None => holidays_skipped.push(SkippedHoliday {
                            date,
                            names: self.holiday_names(date),
                            skipped: length,
                        }),
                    }
                    TimelineRule::Holiday {
                        span_index,
                        span: span(span_index),
                        local_date: date,
                        names: self.holiday_names(date),
                    }
                }
                SegmentKind::Closed {
                    span_index,
                    date,
                    exception_index,
                } => TimelineRule::ClosedTime {
                    span_index,
                    span: span(span_index),
                    local_date: date,
                    exception_index,
                    label: self.exceptions[exception_index].label.clone(),
                },
            };
            if rule.counts() {
                business_time += segment.end - segment.start;
            }
            entries.push(TimelineEntry {
                start: segment.start,
                end: segment.end,
                rule,
            });
        }
        holidays_skipped.sort_by_key(|holiday| holiday.date);
        Explanation {
            entries,
            business_time,
            holidays_skipped,
        }
    }
}

/// Iterator over [`WorkingInterval`]s; see [`BusinessCalendar::working_intervals`].
pub struct WorkingIntervals<'c> {
    merged: Merged<'c>,
}

impl Iterator for WorkingIntervals<'_> {
    type Item = WorkingInterval;

    fn next(&mut self) -> Option<WorkingInterval> {
        loop {
            let segment = self.merged.next()?;
            let source = match segment.kind {
                SegmentKind::Weekly { span_index, date } => WorkingSource::WeeklySpan {
                    index: span_index,
                    local_date: date,
                },
                SegmentKind::ExtraWorking { exception_index } => WorkingSource::ExtraWorkingTime {
                    index: exception_index,
                },
                // Not produced without `explain`; skipped rather than trusted blindly.
                SegmentKind::Holiday { .. } | SegmentKind::Closed { .. } => continue,
            };
            return Some(WorkingInterval {
                start: segment.start,
                end: segment.end,
                source,
            });
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct UtcSegment {
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    kind: SegmentKind,
}

/// Walks start no earlier than a day before the first supported year, so everything from 1970 on
/// is answered exactly and nothing earlier is reported as working.
fn walk_start() -> DateTime<Utc> {
    DateTime::from_timestamp(-86_400, 0).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// No working time is looked for from here on (two days past the last supported date covers
/// every zone's offset and its last overnight span).
fn horizon_end() -> DateTime<Utc> {
    (crate::wall::last_supported_date() + TimeDelta::days(2))
        .and_time(chrono::NaiveTime::MIN)
        .and_utc()
}

fn offset_at(zone: Tz, at: DateTime<Utc>) -> TimeDelta {
    TimeDelta::seconds(i64::from(
        zone.offset_from_utc_datetime(&at.naive_utc())
            .fix()
            .local_minus_utc(),
    ))
}

/// A stretch of UTC time known to have one offset: from where it started to `verified_until`,
/// and up to `end` once the next change has been found.
struct OffsetPiece {
    offset: TimeDelta,
    verified_until: DateTime<Utc>,
    end: Option<DateTime<Utc>>,
}

impl OffsetPiece {
    fn starting_at(zone: Tz, at: DateTime<Utc>) -> Self {
        OffsetPiece {
            offset: offset_at(zone, at),
            verified_until: at,
            end: None,
        }
    }

    /// Probes forward until the offset is known to hold through `target` or its change is found.
    fn verify_through(&mut self, zone: Tz, target: DateTime<Utc>) {
        while self.end.is_none() && self.verified_until < target {
            let Some(probe) = self.verified_until.checked_add_signed(OFFSET_PROBE_STEP) else {
                self.verified_until = target;
                return;
            };
            if offset_at(zone, probe) == self.offset {
                self.verified_until = probe;
            } else {
                self.end = Some(first_change(zone, self.offset, self.verified_until, probe));
            }
        }
    }
}

/// The first instant in `(same, differs]` whose offset is not `offset`. Offsets change on whole
/// seconds (the tz database counts in seconds), so the search stops at one-second precision.
fn first_change(
    zone: Tz,
    offset: TimeDelta,
    same: DateTime<Utc>,
    differs: DateTime<Utc>,
) -> DateTime<Utc> {
    let (mut same, mut differs) = (same.timestamp(), differs.timestamp());
    let instant =
        |seconds: i64| DateTime::from_timestamp(seconds, 0).unwrap_or(DateTime::<Utc>::MAX_UTC);
    while differs - same > 1 {
        let middle = same + (differs - same) / 2;
        if offset_at(zone, instant(middle)) == offset {
            same = middle;
        } else {
            differs = middle;
        }
    }
    instant(differs)
}

/// Working (and, with `explain`, skipped) stretches as UTC intervals from `from`, in time
/// order, clipped to `[from, until)`. Pieces of one wall-clock stretch cut by an offset change
/// come separately; [`Merged`] joins them.
struct UtcSegments<'c> {
    calendar: &'c BusinessCalendar,
    /// Everything before it has been handed out.
    cursor: DateTime<Utc>,
    until: Option<DateTime<Utc>>,
    piece: OffsetPiece,
    wall: WallSegments<'c>,
    explain: bool,
    done: bool,
}

impl<'c> UtcSegments<'c> {
    fn new(
        calendar: &'c BusinessCalendar,
        from: DateTime<Utc>,
        until: Option<DateTime<Utc>>,
        explain: bool,
    ) -> Self {
        // The supported range is bounded on both sides, so no instant a caller passes can make the
        // walk run for centuries or overflow a date.
        let beyond_horizon = from >= horizon_end();
        let from = from.max(walk_start());
        let piece = OffsetPiece::starting_at(calendar.zone, from);
        let wall = WallSegments::new(calendar, from.naive_utc() + piece.offset, explain);
        let done = beyond_horizon || until.is_some_and(|until| until <= from);
        UtcSegments {
            calendar,
            cursor: from,
            until,
            piece,
            wall,
            explain,
            done,
        }
    }

    /// Starts the piece that begins at `change`, and the wall-clock walk at its local time.
    fn switch_piece(&mut self, change: DateTime<Utc>) {
        self.piece = OffsetPiece::starting_at(self.calendar.zone, change);
        self.cursor = self.cursor.max(change);
        self.wall = WallSegments::new(
            self.calendar,
            change.naive_utc() + self.piece.offset,
            self.explain,
        );
    }

    fn clipped(&self, start: DateTime<Utc>, end: DateTime<Utc>, kind: SegmentKind) -> UtcSegment {
        let end = self.until.map_or(end, |until| end.min(until));
        UtcSegment { start, end, kind }
    }
}

impl Iterator for UtcSegments<'_> {
    type Item = UtcSegment;

    fn next(&mut self) -> Option<UtcSegment> {
        while !self.done {
            let Some(&segment) = self.wall.peek() else {
                self.done = true;
                break;
            };
            let start = (segment.start - self.piece.offset)
                .and_utc()
                .max(self.cursor);
            let end = (segment.end - self.piece.offset).and_utc();
            if end <= start {
                self.wall.advance();
                continue;
            }
            // The offset must be known up to where this stretch ends (or the range does) before
            // `start` can be trusted: after a fall-back change the stretch's wall-clock time comes
            // again earlier than the old offset says.
            let needed = self.until.map_or(end, |until| end.min(until));
            self.piece.verify_through(self.calendar.zone, needed);
            match self.piece.end {
                Some(change) if change <= start => self.switch_piece(change),
                _ if self.until.is_some_and(|until| start >= until) => {
                    self.done = true;
                    break;
                }
                Some(change) if change < end => {
                    // The rest of this stretch (if its wall-clock time happens again, or at all,
                    // under the new offset) comes from the restarted walk.
                    self.switch_piece(change);
                    return Some(self.clipped(start, change, segment.kind));
                }
                _ => {
                    self.wall.advance();
                    self.cursor = end;
                    return Some(self.clipped(start, end, segment.kind));
                }
            }
        }
        None
    }
}

/// Joins adjacent segments of the same rule (one span cut by an offset change, a day of a 24×7
/// calendar) into one.
struct Merged<'c> {
    segments: UtcSegments<'c>,
    pending: Option<UtcSegment>,
}

impl<'c> Merged<'c> {
    fn new(segments: UtcSegments<'c>) -> Self {
        Merged {
            segments,
            pending: None,
        }
    }
}

impl Iterator for Merged<'_> {
    type Item = UtcSegment;

    fn next(&mut self) -> Option<UtcSegment> {
        let mut current = self.pending.take().or_else(|| self.segments.next())?;
        for following in self.segments.by_ref() {
            if following.start == current.end && following.kind == current.kind {
                current.end = following.end;
            } else {
                self.pending = Some(following);
                break;
            }
        }
        Some(current)
    }
}
