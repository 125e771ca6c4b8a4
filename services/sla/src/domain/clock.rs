//! A clock is a pure fold over a ticket's history: the same facts, policy and calendars give the
//! same clock, to the second, whenever it is computed — so a clock can be explained (every step
//! is a timeline entry) and recomputed after a calendar or policy change.
//!
//! The fold walks the facts in version order. Between two facts the clock was running (business
//! time counted on the calendar in force: the policy's for an SLA, the owning team's for an OLA),
//! paused (wall time added to the paused total, nothing counted) or stopped. Each fact then
//! re-targets it (priority changes keep elapsed and paused time), moves it to another team's
//! calendar (OLA), and pauses, resumes, stops or resets it by the policy's conditions. Warnings
//! and the breach fall at the exact instant the counted time reaches them, found with
//! `add_business`, not when the next fact happens to arrive.
//!
//! Entries that are transitions carry an `event_key`, stable across recomputations of the same
//! history (`0:breached`, `1:paused:2`): the service publishes one event per key, once.

use std::collections::HashMap;

use chrono::{DateTime, TimeDelta, Utc};
use desk_business_time::{BusinessCalendar, Tz};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::policy::{Metric, Policy, PolicyKind};
use super::ticket::{FactKind, TicketHistory};

/// The calendars a fold may need, and which one each team names.
pub struct CalendarBook<'a> {
    pub calendars: &'a HashMap<Uuid, BusinessCalendar>,
    pub team_calendars: &'a HashMap<String, Uuid>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClockState {
    Running,
    Paused,
    Met,
    Breached,
}

impl ClockState {
    pub fn as_str(self) -> &'static str {
        match self {
            ClockState::Running => "running",
            ClockState::Paused => "paused",
            ClockState::Met => "met",
            ClockState::Breached => "breached",
        }
    }

    pub fn parse(text: &str) -> Option<ClockState> {
        [
            ClockState::Running,
            ClockState::Paused,
            ClockState::Met,
            ClockState::Breached,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    Started,
    Paused,
    Resumed,
    Retargeted,
    CalendarChanged,
    Counted,
    Warning,
    Breached,
    Met,
    Reset,
    /// Stopped after the breach: the work is done, the target was not met.
    Stopped,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimelineEntry {
    pub kind: EntryKind,
    pub at: DateTime<Utc>,
    /// Counted: the interval's end.
    pub end: Option<DateTime<Utc>>,
    pub actor: Option<String>,
    pub reason: String,
    /// The calendar counting (None: around the clock, UTC).
    pub calendar_id: Option<Uuid>,
    /// Counted: business time in the interval; others: elapsed business time at `at`.
    pub business: TimeDelta,
    /// Warning: the threshold.
    pub threshold_percent: Option<u32>,
    /// Set on transitions the service publishes an event for.
    pub event_key: Option<String>,
}

/// A clock as of an instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClockView {
    pub policy_id: Uuid,
    pub kind: PolicyKind,
    pub metric: Metric,
    pub state: ClockState,
    pub target: TimeDelta,
    pub elapsed: TimeDelta,
    /// While running: when it breaches (or breached). Unset while paused or stopped.
    pub due: Option<DateTime<Utc>>,
    pub breached_at: Option<DateTime<Utc>>,
    pub started_at: DateTime<Utc>,
    pub stopped_at: Option<DateTime<Utc>>,
    pub paused_total: TimeDelta,
    pub calendar_id: Option<Uuid>,
    pub team_id: Option<String>,
    /// The next instant after `as_of` at which a warning or the breach falls, if it keeps running.
    pub next_timer: Option<DateTime<Utc>>,
    pub timeline: Vec<TimelineEntry>,
    pub as_of: DateTime<Utc>,
}

impl ClockView {
    /// The transitions (entries with an event key), in time order.
    pub fn transitions(&self) -> impl Iterator<Item = &TimelineEntry> {
        self.timeline.iter().filter(|e| e.event_key.is_some())
    }
}

enum Phase {
    Running { since: DateTime<Utc> },
    Paused { since: DateTime<Utc> },
    Stopped,
}

struct Fold<'a> {
    book: &'a CalendarBook<'a>,
    around_the_clock: BusinessCalendar,
    policy: &'a Policy,
    metric: Metric,
    phase: Phase,
    elapsed: TimeDelta,
    target: TimeDelta,
    calendar_id: Option<Uuid>,
    team_id: Option<String>,
    breached_at: Option<DateTime<Utc>>,
    warned: Vec<u32>,
    paused_total: TimeDelta,
    /// Incremented by a reset: keys of a new run never collide with the old run's.
    run: u32,
    pauses: u32,
    resumes: u32,
    stops: u32,
    stopped_at: Option<DateTime<Utc>>,
    timeline: Vec<TimelineEntry>,
}

/// Folds the clock of `metric` under `policy` from `history`, as of `now`. `None` when the
/// history is empty or the policy has no target for the metric at the ticket's priority.
pub fn fold(
    policy: &Policy,
    metric: Metric,
    history: &TicketHistory,
    book: &CalendarBook<'_>,
    now: DateTime<Utc>,
) -> Option<ClockView> {
    let first = history.first()?;
    let target = policy.rules.target_for(metric, first.ticket.priority)?;
    let started_at = first.at;
    let mut fold = Fold {
        book,
        around_the_clock: BusinessCalendar::around_the_clock(Tz::UTC),
        policy,
        metric,
        phase: Phase::Stopped,
        elapsed: TimeDelta::zero(),
        target,
        calendar_id: None,
        team_id: None,
        breached_at: None,
        warned: Vec::new(),
        paused_total: TimeDelta::zero(),
        run: 0,
        pauses: 0,
        resumes: 0,
        stops: 0,
        stopped_at: None,
        timeline: Vec::new(),
    };
    let mut last = started_at;
    for (position, fact) in history.facts.iter().enumerate() {
        // Versions order facts; a time going backwards (another clock's skew) counts as no time.
        let at = fact.at.max(last);
        last = at;
        fold.advance_to(at, false);
        let ticket = &fact.ticket;
        let actor = fact.actor.clone();
        if position == 0 {
            fold.team_id = ticket.team_id.clone();
            fold.calendar_id = fold.calendar_for(ticket.team_id.as_deref());
            fold.entry(
                EntryKind::Started,
                at,
                actor.clone(),
                "ticket created".into(),
                "started".into(),
            );
            fold.phase = Phase::Running { since: at };
        } else {
            fold.retarget(ticket.priority, at, actor.clone());
            fold.follow_owner(ticket.team_id.as_deref(), at, actor.clone());
        }
        let reopened = fact.kind == FactKind::Reopened && matches!(fold.phase, Phase::Stopped);
        if reopened && metric == Metric::Resolution {
            let note = fact.note.clone().unwrap_or_else(|| "reopened".into());
            if policy.rules.conditions.reset_on_reopen {
                fold.run += 1;
                fold.elapsed = TimeDelta::zero();
                fold.breached_at = None;
                fold.warned.clear();
                fold.stopped_at = None;
                fold.plain(
                    EntryKind::Reset,
                    at,
                    actor.clone(),
                    format!("{note}: the policy resets on reopen"),
                );
                fold.entry(
                    EntryKind::Started,
                    at,
                    actor.clone(),
                    "started again".into(),
                    "started".into(),
                );
            } else {
                fold.resumes += 1;
                fold.stopped_at = None;
                let key = format!("resumed:r{}", fold.resumes);
                fold.entry(
                    EntryKind::Resumed,
                    at,
                    actor.clone(),
                    format!("{note}: counting on from where it stopped"),
                    key,
                );
            }
            fold.phase = Phase::Running { since: at };
        }
        if matches!(fold.phase, Phase::Stopped) {
            continue;
        }
        if metric.is_achieved_in(ticket.status) {
            fold.stops += 1;
            fold.stopped_at = Some(at);
            let reason = format!("ticket {}", ticket.status.as_str());
            if fold.breached_at.is_some() {
                fold.plain(
                    EntryKind::Stopped,
                    at,
                    actor,
                    format!("{reason}, after the breach"),
                );
            } else {
                let key = format!("met:{}", fold.stops);
                fold.entry(EntryKind::Met, at, actor, reason, key);
            }
            fold.phase = Phase::Stopped;
        } else if let Some(reason) = policy.rules.conditions.pause_reason(ticket) {
            if let Phase::Running { .. } = fold.phase {
                fold.pauses += 1;
                let reason = match &fact.note {
                    Some(note) if !note.is_empty() => format!("{reason} ({note})"),
                    _ => reason,
                };
                let key = format!("paused:{}", fold.pauses);
                fold.entry(EntryKind::Paused, at, actor, reason, key);
                fold.phase = Phase::Paused { since: at };
            }
        } else if let Phase::Paused { .. } = fold.phase {
            fold.resumes += 1;
            let key = format!("resumed:{}", fold.resumes);
            fold.entry(
                EntryKind::Resumed,
                at,
                actor,
                format!("ticket {}", ticket.status.as_str()),
                key,
            );
            fold.phase = Phase::Running { since: at };
        }
    }
    let as_of = now.max(last);
    let (due, next_timer) = fold.due_and_next(as_of);
    fold.advance_to(as_of, true);
    fold.timeline.sort_by_key(|entry| entry.at);
    let state = match (&fold.phase, fold.breached_at) {
        (Phase::Stopped, Some(_)) => ClockState::Breached,
        (Phase::Stopped, None) => ClockState::Met,
        (_, Some(_)) => ClockState::Breached,
        (Phase::Paused { .. }, None) => ClockState::Paused,
        (Phase::Running { .. }, None) => ClockState::Running,
    };
    Some(ClockView {
        policy_id: policy.id,
        kind: policy.rules.kind,
        metric,
        state,
        target: fold.target,
        elapsed: fold.elapsed,
        due,
        breached_at: fold.breached_at,
        started_at,
        stopped_at: fold.stopped_at,
        paused_total: fold.paused_total,
        calendar_id: fold.calendar_id,
        team_id: fold.team_id,
        next_timer,
        timeline: fold.timeline,
        as_of,
    })
}

impl Fold<'_> {
    fn calendar_for(&self, team: Option<&str>) -> Option<Uuid> {
        let policy_calendar = self.policy.rules.calendar_id;
        match self.policy.rules.kind {
            PolicyKind::Sla => policy_calendar,
            PolicyKind::Ola => team
                .and_then(|team| self.book.team_calendars.get(team).copied())
                .or(policy_calendar),
        }
    }

    /// The calendar for an id; an unknown one (deleted, not yet projected) counts around the
    /// clock, which the timeline says.
    fn calendar(&self, id: Option<Uuid>) -> &BusinessCalendar {
        id.and_then(|id| self.book.calendars.get(&id))
            .unwrap_or(&self.around_the_clock)
    }

    fn plain(&mut self, kind: EntryKind, at: DateTime<Utc>, actor: Option<String>, reason: String) {
        self.timeline.push(TimelineEntry {
            kind,
            at,
            end: None,
            actor,
            reason,
            calendar_id: self.calendar_id,
            business: self.elapsed,
            threshold_percent: None,
            event_key: None,
        });
    }

    fn entry(
        &mut self,
        kind: EntryKind,
        at: DateTime<Utc>,
        actor: Option<String>,
        reason: String,
        key: String,
    ) {
        self.plain(kind, at, actor, reason);
        if let Some(last) = self.timeline.last_mut() {
            last.event_key = Some(format!("{}:{key}", self.run));
        }
    }

    /// The instants (business offsets from the run's start) still ahead: warnings, then the breach.
    fn marks(&self) -> Vec<(Option<u32>, TimeDelta)> {
        let mut marks: Vec<(Option<u32>, TimeDelta)> = self
            .policy
            .rules
            .warning_thresholds_percent
            .iter()
            .filter(|p| !self.warned.contains(p))
            .map(|p| {
                (
                    Some(*p),
                    self.target * i32::try_from(*p).unwrap_or(100) / 100,
                )
            })
            .collect();
        if self.breached_at.is_none() {
            marks.push((None, self.target));
        }
        marks
    }

    /// Counts from the phase's start to `to` when running (recording every warning and the
    /// breach on the way), adds paused time when paused. `inclusive`: a mark falling exactly at
    /// `to` is crossed (the fold's "now"); a fact at a mark's instant comes first otherwise, so
    /// a ticket resolved at its due second has met its target.
    fn advance_to(&mut self, to: DateTime<Utc>, inclusive: bool) {
        match self.phase {
            Phase::Paused { since } => {
                self.paused_total += to - since;
                self.phase = Phase::Paused { since: to };
            }
            Phase::Stopped => {}
            Phase::Running { since } => {
                // Marks reached exactly at the previous fact's instant were left for whether the
                // clock ran on: it did, so they fell at that instant.
                for (threshold, mark) in self.marks() {
                    if mark <= self.elapsed {
                        self.cross(threshold, mark, since);
                    }
                }
                if to > since {
                    self.count(since, to, inclusive);
                }
                self.phase = Phase::Running { since: to };
            }
        }
    }

    fn count(&mut self, from: DateTime<Utc>, to: DateTime<Utc>, inclusive: bool) {
        let calendar = self.calendar(self.calendar_id);
        let explanation = calendar.explain(from, to);
        let mut crossings = Vec::new();
        for (threshold, mark) in self.marks() {
            if mark <= self.elapsed {
                continue;
            }
            let Ok(at) = calendar.add_business(from, mark - self.elapsed) else {
                continue;
            };
            if at < to || (inclusive && at == to) {
                crossings.push((threshold, mark, at));
            }
        }
        let mut reason = if explanation.business_time.is_zero() {
            "outside working hours".to_owned()
        } else {
            "working time".to_owned()
        };
        for holiday in &explanation.holidays_skipped {
            reason.push_str(&format!(
                "; holiday {} ({}) skipped",
                holiday.date,
                holiday.names.join(", ")
            ));
        }
        let calendar_id = self.calendar_id;
        self.timeline.push(TimelineEntry {
            kind: EntryKind::Counted,
            at: from,
            end: Some(to),
            actor: None,
            reason,
            calendar_id,
            business: explanation.business_time,
            threshold_percent: None,
            event_key: None,
        });
        for (threshold, mark, at) in crossings {
            self.cross(threshold, mark, at);
        }
        self.elapsed += explanation.business_time;
    }

    fn cross(&mut self, threshold: Option<u32>, mark: TimeDelta, at: DateTime<Utc>) {
        let run = self.run;
        let (kind, reason, key) = match threshold {
            Some(percent) => {
                self.warned.push(percent);
                (
                    EntryKind::Warning,
                    format!("{percent} % of the {} target used", hours(self.target)),
                    format!("{run}:warning:{percent}"),
                )
            }
            None => {
                self.breached_at = Some(at);
                (
                    EntryKind::Breached,
                    format!("the {} target ran out", hours(self.target)),
                    format!("{run}:breached"),
                )
            }
        };
        self.timeline.push(TimelineEntry {
            kind,
            at,
            end: None,
            actor: None,
            reason,
            calendar_id: self.calendar_id,
            business: mark,
            threshold_percent: threshold,
            event_key: Some(key),
        });
    }

    /// A priority change: a new target, elapsed and paused time kept. Marks the new target puts
    /// behind the clock are crossed at once.
    fn retarget(
        &mut self,
        priority: super::ticket::Priority,
        at: DateTime<Utc>,
        actor: Option<String>,
    ) {
        if matches!(self.phase, Phase::Stopped) {
            return;
        }
        let Some(target) = self.policy.rules.target_for(self.metric, priority) else {
            return;
        };
        if target == self.target {
            return;
        }
        let reason = format!(
            "priority now {}: target {} → {}, {} elapsed and {} paused kept",
            priority.label(),
            hours(self.target),
            hours(target),
            hours(self.elapsed),
            hours(self.paused_total)
        );
        self.target = target;
        self.plain(EntryKind::Retargeted, at, actor, reason);
        for (threshold, mark) in self.marks() {
            if mark <= self.elapsed {
                self.cross(threshold, mark, at);
            }
        }
    }

    /// OLA: ownership moved; from here on the new team's calendar counts.
    fn follow_owner(&mut self, team: Option<&str>, at: DateTime<Utc>, actor: Option<String>) {
        if self.policy.rules.kind != PolicyKind::Ola || self.team_id.as_deref() == team {
            return;
        }
        let calendar_id = self.calendar_for(team);
        let reason = format!(
            "owner {} → {}",
            self.team_id.as_deref().unwrap_or("none"),
            team.unwrap_or("none")
        );
        self.team_id = team.map(str::to_owned);
        self.calendar_id = calendar_id;
        self.plain(EntryKind::CalendarChanged, at, actor, reason);
    }

    /// While running: the breach instant (past or ahead) and the next mark after `now`.
    fn due_and_next(&self, now: DateTime<Utc>) -> (Option<DateTime<Utc>>, Option<DateTime<Utc>>) {
        let Phase::Running { since } = self.phase else {
            return (None, None);
        };
        let calendar = self.calendar(self.calendar_id);
        let mut next: Option<DateTime<Utc>> = None;
        let mut due = self.breached_at;
        for (threshold, mark) in self.marks() {
            if mark <= self.elapsed {
                continue;
            }
            let Ok(at) = calendar.add_business(since, mark - self.elapsed) else {
                continue;
            };
            if threshold.is_none() {
                due = Some(at);
            }
            if at > now {
                next = Some(next.map_or(at, |n| n.min(at)));
            }
        }
        (due, next)
    }
}

fn hours(duration: TimeDelta) -> String {
    let minutes = duration.num_minutes();
    match (minutes / 60, minutes % 60) {
        (0, m) => format!("{m}m"),
        (h, 0) => format!("{h}h"),
        (h, m) => format!("{h}h{m:02}m"),
    }
}

#[cfg(test)]
mod tests;
