//! Domain values to and from their protobuf messages, and the tickets service's tickets into
//! snapshots. Ids go out region-qualified (`<region>-<uuid>`); parsing collects every field
//! violation before anything is written.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc, Weekday};
use desk_business_time::{CalendarException, CalendarSpec, ExceptionKind, Holiday, WorkingSpan};
use desk_kit::ids;
use desk_proto::{sla::v1 as pb, tickets::v1 as tickets};
use prost_types::Timestamp;
use uuid::Uuid;

use crate::domain::{
    ClockState, ClockView, Conditions, EntryKind, Metric, PendingReason, Policy, PolicyKind,
    PolicyMatch, PolicyRules, Priority, Target, TicketSnapshot, TicketStatus, TicketType,
    Violation,
};
use crate::store::Calendar;

pub fn timestamp(at: DateTime<Utc>) -> Option<Timestamp> {
    Some(Timestamp {
        seconds: at.timestamp(),
        nanos: i32::try_from(at.timestamp_subsec_nanos()).unwrap_or(0),
    })
}

pub fn time_of(timestamp: Option<&Timestamp>) -> Option<DateTime<Utc>> {
    let t = timestamp?;
    DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).ok()?)
}

/// A region-qualified id of this region, or a violation at `field`.
pub fn parse_local_id(
    text: &str,
    region: &str,
    field: &str,
    violations: &mut Vec<Violation>,
) -> Option<Uuid> {
    match ids::parse_id(text) {
        Some(id) if id.region == region => Some(id.uuid),
        Some(_) => {
            violations.push(Violation::new(field, "the id belongs to another region"));
            None
        }
        None => {
            violations.push(Violation::new(field, "not an id (`<region>-<uuid>`)"));
            None
        }
    }
}

// ---- tickets ----

pub fn ticket_type(value: i32) -> Option<TicketType> {
    match tickets::TicketType::try_from(value).ok()? {
        tickets::TicketType::Incident => Some(TicketType::Incident),
        tickets::TicketType::ServiceRequest => Some(TicketType::ServiceRequest),
        tickets::TicketType::Problem => Some(TicketType::Problem),
        tickets::TicketType::Unspecified => None,
    }
}

fn ticket_type_pb(value: TicketType) -> tickets::TicketType {
    match value {
        TicketType::Incident => tickets::TicketType::Incident,
        TicketType::ServiceRequest => tickets::TicketType::ServiceRequest,
        TicketType::Problem => tickets::TicketType::Problem,
    }
}

pub fn status(value: i32) -> Option<TicketStatus> {
    match tickets::TicketStatus::try_from(value).ok()? {
        tickets::TicketStatus::New => Some(TicketStatus::New),
        tickets::TicketStatus::Assigned => Some(TicketStatus::Assigned),
        tickets::TicketStatus::InProgress => Some(TicketStatus::InProgress),
        tickets::TicketStatus::Pending => Some(TicketStatus::Pending),
        tickets::TicketStatus::Resolved => Some(TicketStatus::Resolved),
        tickets::TicketStatus::Closed => Some(TicketStatus::Closed),
        tickets::TicketStatus::Unspecified => None,
    }
}

fn status_pb(value: TicketStatus) -> tickets::TicketStatus {
    match value {
        TicketStatus::New => tickets::TicketStatus::New,
        TicketStatus::Assigned => tickets::TicketStatus::Assigned,
        TicketStatus::InProgress => tickets::TicketStatus::InProgress,
        TicketStatus::Pending => tickets::TicketStatus::Pending,
        TicketStatus::Resolved => tickets::TicketStatus::Resolved,
        TicketStatus::Closed => tickets::TicketStatus::Closed,
    }
}

pub fn pending_reason(value: i32) -> Option<PendingReason> {
    match tickets::PendingReason::try_from(value).ok()? {
        tickets::PendingReason::Customer => Some(PendingReason::Customer),
        tickets::PendingReason::Vendor => Some(PendingReason::Vendor),
        tickets::PendingReason::Change => Some(PendingReason::Change),
        tickets::PendingReason::Unspecified => None,
    }
}

fn pending_reason_pb(value: PendingReason) -> tickets::PendingReason {
    match value {
        PendingReason::Customer => tickets::PendingReason::Customer,
        PendingReason::Vendor => tickets::PendingReason::Vendor,
        PendingReason::Change => tickets::PendingReason::Change,
    }
}

pub fn priority(value: i32) -> Option<Priority> {
    if value == tickets::Priority::Unspecified as i32 || tickets::Priority::try_from(value).is_err()
    {
        return None;
    }
    Priority::new(u8::try_from(value).ok()?)
}

fn priority_pb(value: Priority) -> i32 {
    i32::from(value.level())
}

fn non_empty(text: &str) -> Option<String> {
    (!text.is_empty()).then(|| text.to_owned())
}

/// The ticket an event carries, or why it cannot be one.
pub fn snapshot(ticket: &tickets::Ticket) -> Result<TicketSnapshot, String> {
    let mut missing = Vec::new();
    let ticket_type = ticket_type(ticket.r#type);
    let priority = priority(ticket.priority);
    let status = status(ticket.status);
    let created_at = time_of(ticket.create_time.as_ref());
    if ticket.id.is_empty() {
        missing.push("id");
    }
    if ticket_type.is_none() {
        missing.push("type");
    }
    if priority.is_none() {
        missing.push("priority");
    }
    if status.is_none() {
        missing.push("status");
    }
    if created_at.is_none() {
        missing.push("create_time");
    }
    match (ticket_type, priority, status, created_at) {
        (Some(ticket_type), Some(priority), Some(status), Some(created_at))
            if missing.is_empty() =>
        {
            Ok(TicketSnapshot {
                number: ticket.number.clone(),
                ticket_type,
                priority,
                status,
                pending_reason: pending_reason(ticket.pending_reason),
                team_id: non_empty(&ticket.assignment_group_id),
                requester_id: ticket.requester_id.clone(),
                service_ids: ticket.affected_service_ids.clone(),
                region: ticket.region.clone(),
                rating: ticket
                    .satisfaction
                    .as_ref()
                    .map(|s| s.rating)
                    .filter(|r| (1..=5).contains(r)),
                created_at,
            })
        }
        _ => Err(format!("the ticket lacks a valid {}", missing.join(", "))),
    }
}

// ---- calendars ----

fn weekday(value: i32) -> Option<Weekday> {
    Some(match pb::Weekday::try_from(value).ok()? {
        pb::Weekday::Monday => Weekday::Mon,
        pb::Weekday::Tuesday => Weekday::Tue,
        pb::Weekday::Wednesday => Weekday::Wed,
        pb::Weekday::Thursday => Weekday::Thu,
        pb::Weekday::Friday => Weekday::Fri,
        pb::Weekday::Saturday => Weekday::Sat,
        pb::Weekday::Sunday => Weekday::Sun,
        pb::Weekday::Unspecified => return None,
    })
}

fn weekday_pb(value: Weekday) -> pb::Weekday {
    match value {
        Weekday::Mon => pb::Weekday::Monday,
        Weekday::Tue => pb::Weekday::Tuesday,
        Weekday::Wed => pb::Weekday::Wednesday,
        Weekday::Thu => pb::Weekday::Thursday,
        Weekday::Fri => pb::Weekday::Friday,
        Weekday::Sat => pb::Weekday::Saturday,
        Weekday::Sun => pb::Weekday::Sunday,
    }
}

const LOCAL_FORMATS: [&str; 2] = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"];

fn local_time(text: &str) -> Option<NaiveDateTime> {
    LOCAL_FORMATS
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
}

/// The calendar's name and spec from a request, parsed (the spec's own rules are checked by
/// `BusinessCalendar::new`, whose problems the caller adds under the same prefix).
pub fn calendar_from_pb(
    calendar: &pb::Calendar,
    prefix: &str,
    violations: &mut Vec<Violation>,
) -> (String, CalendarSpec) {
    let field = |name: String| format!("{prefix}.{name}");
    if calendar.name.trim().is_empty() {
        violations.push(Violation::new(
            field("name".into()),
            "a calendar needs a name",
        ));
    }
    let mut spec = CalendarSpec {
        time_zone: calendar.time_zone.clone(),
        ..CalendarSpec::default()
    };
    for (index, span) in calendar.weekly_hours.iter().enumerate() {
        match weekday(span.weekday) {
            Some(day) => spec.weekly_hours.push(WorkingSpan {
                weekday: day,
                start_minute: span.start_minute,
                end_minute: span.end_minute,
                ends_next_day: span.ends_next_day,
            }),
            None => violations.push(Violation::new(
                field(format!("weekly_hours[{index}].weekday")),
                "a weekday is required",
            )),
        }
    }
    for (index, holiday) in calendar.holidays.iter().enumerate() {
        match NaiveDate::parse_from_str(&holiday.date, "%Y-%m-%d") {
            Ok(date) => spec.holidays.push(Holiday::new(date, holiday.name.clone())),
            Err(_) => violations.push(Violation::new(
                field(format!("holidays[{index}].date")),
                "a date as YYYY-MM-DD",
            )),
        }
    }
    for (index, exception) in calendar.exceptions.iter().enumerate() {
        let kind = match pb::ExceptionKind::try_from(exception.kind) {
            Ok(pb::ExceptionKind::Working) => Some(ExceptionKind::Working),
            Ok(pb::ExceptionKind::Closed) => Some(ExceptionKind::Closed),
            _ => {
                violations.push(Violation::new(
                    field(format!("exceptions[{index}].kind")),
                    "working or closed",
                ));
                None
            }
        };
        let start = local_time(&exception.start_local);
        if start.is_none() {
            violations.push(Violation::new(
                field(format!("exceptions[{index}].start_local")),
                "a local time as YYYY-MM-DDTHH:MM",
            ));
        }
        let end = local_time(&exception.end_local);
        if end.is_none() {
            violations.push(Violation::new(
                field(format!("exceptions[{index}].end_local")),
                "a local time as YYYY-MM-DDTHH:MM",
            ));
        }
        if let (Some(kind), Some(start), Some(end)) = (kind, start, end) {
            spec.exceptions.push(CalendarException {
                kind,
                start,
                end,
                label: exception.label.clone(),
            });
        }
    }
    (calendar.name.trim().to_owned(), spec)
}

pub fn calendar_to_pb(region: &str, calendar: &Calendar) -> pb::Calendar {
    let spec = &calendar.spec;
    pb::Calendar {
        id: ids::format_id(region, calendar.id),
        tenant_id: calendar.tenant.clone(),
        name: calendar.name.clone(),
        time_zone: spec.time_zone.clone(),
        weekly_hours: spec
            .weekly_hours
            .iter()
            .map(|span| pb::WorkingSpan {
                weekday: weekday_pb(span.weekday) as i32,
                start_minute: span.start_minute,
                end_minute: span.end_minute,
                ends_next_day: span.ends_next_day,
            })
            .collect(),
        holidays: spec
            .holidays
            .iter()
            .map(|h| pb::Holiday {
                date: h.date.format("%Y-%m-%d").to_string(),
                name: h.name.clone(),
            })
            .collect(),
        exceptions: spec
            .exceptions
            .iter()
            .map(|e| pb::CalendarException {
                kind: match e.kind {
                    ExceptionKind::Working => pb::ExceptionKind::Working,
                    ExceptionKind::Closed => pb::ExceptionKind::Closed,
                } as i32,
                start_local: e.start.format("%Y-%m-%dT%H:%M").to_string(),
                end_local: e.end.format("%Y-%m-%dT%H:%M").to_string(),
                label: e.label.clone(),
            })
            .collect(),
        version: calendar.version,
        create_time: timestamp(calendar.created_at),
        update_time: timestamp(calendar.updated_at),
    }
}

// ---- policies ----

fn metric(value: i32) -> Option<Metric> {
    match pb::Metric::try_from(value).ok()? {
        pb::Metric::FirstResponse => Some(Metric::FirstResponse),
        pb::Metric::Resolution => Some(Metric::Resolution),
        pb::Metric::Unspecified => None,
    }
}

pub fn metric_pb(value: Metric) -> pb::Metric {
    match value {
        Metric::FirstResponse => pb::Metric::FirstResponse,
        Metric::Resolution => pb::Metric::Resolution,
    }
}

pub fn kind_pb(value: PolicyKind) -> pb::PolicyKind {
    match value {
        PolicyKind::Sla => pb::PolicyKind::Sla,
        PolicyKind::Ola => pb::PolicyKind::Ola,
    }
}

/// Parses a list of enum values, each unspecified or unknown one a violation.
fn enum_list<T>(
    values: &[i32],
    parse: impl Fn(i32) -> Option<T>,
    field: &str,
    violations: &mut Vec<Violation>,
) -> Vec<T> {
    let mut parsed = Vec::new();
    for (index, value) in values.iter().enumerate() {
        match parse(*value) {
            Some(v) => parsed.push(v),
            None => violations.push(Violation::new(
                format!("{field}[{index}]"),
                "unspecified or unknown value",
            )),
        }
    }
    parsed
}

/// The policy's rules from a request; the rules' own checks are `PolicyRules::validate`, run
/// here too, so `violations` holds everything wrong.
pub fn policy_rules_from_pb(
    policy: &pb::Policy,
    region: &str,
    prefix: &str,
    violations: &mut Vec<Violation>,
) -> Option<PolicyRules> {
    let field = |name: &str| format!("{prefix}.{name}");
    let kind = match pb::PolicyKind::try_from(policy.kind) {
        Ok(pb::PolicyKind::Sla) => Some(PolicyKind::Sla),
        Ok(pb::PolicyKind::Ola) => Some(PolicyKind::Ola),
        _ => {
            violations.push(Violation::new(field("kind"), "sla or ola"));
            None
        }
    };
    let matcher = policy.r#match.clone().unwrap_or_default();
    let matcher = PolicyMatch {
        ticket_types: enum_list(
            &matcher.ticket_types,
            ticket_type,
            &field("match.ticket_types"),
            violations,
        ),
        priorities: enum_list(
            &matcher.priorities,
            priority,
            &field("match.priorities"),
            violations,
        ),
        service_ids: matcher.service_ids,
        customer_ids: matcher.customer_ids,
        team_ids: matcher.team_ids,
    };
    let mut targets = Vec::new();
    for (index, target) in policy.targets.iter().enumerate() {
        let metric = metric(target.metric);
        if metric.is_none() {
            violations.push(Violation::new(
                field(&format!("targets[{index}].metric")),
                "first_response or resolution",
            ));
        }
        let priority = if target.priority == tickets::Priority::Unspecified as i32 {
            Some(None)
        } else {
            match priority(target.priority) {
                Some(p) => Some(Some(p)),
                None => {
                    violations.push(Violation::new(
                        field(&format!("targets[{index}].priority")),
                        "unknown priority",
                    ));
                    None
                }
            }
        };
        if let (Some(metric), Some(priority)) = (metric, priority) {
            targets.push(Target {
                metric,
                priority,
                business_minutes: target.business_minutes,
            });
        }
    }
    let conditions = policy.conditions.clone().unwrap_or_default();
    let conditions = Conditions {
        pause_pending_reasons: enum_list(
            &conditions.pause_pending_reasons,
            pending_reason,
            &field("conditions.pause_pending_reasons"),
            violations,
        ),
        pause_statuses: enum_list(
            &conditions.pause_statuses,
            status,
            &field("conditions.pause_statuses"),
            violations,
        ),
        reset_on_reopen: conditions.reset_on_reopen,
    };
    let calendar_id = if policy.calendar_id.is_empty() {
        None
    } else {
        parse_local_id(
            &policy.calendar_id,
            region,
            &field("calendar_id"),
            violations,
        )
    };
    let rules = PolicyRules {
        name: policy.name.trim().to_owned(),
        kind: kind?,
        matcher,
        targets,
        conditions,
        warning_thresholds_percent: policy.warning_thresholds_percent.clone(),
        calendar_id,
        precedence: policy.precedence,
    };
    violations.extend(rules.validate(prefix));
    Some(rules.normalized())
}

pub fn policy_to_pb(region: &str, policy: &Policy) -> pb::Policy {
    let rules = &policy.rules;
    pb::Policy {
        id: ids::format_id(region, policy.id),
        tenant_id: policy.tenant.clone(),
        name: rules.name.clone(),
        kind: kind_pb(rules.kind) as i32,
        r#match: Some(pb::PolicyMatch {
            ticket_types: rules
                .matcher
                .ticket_types
                .iter()
                .map(|t| ticket_type_pb(*t) as i32)
                .collect(),
            priorities: rules
                .matcher
                .priorities
                .iter()
                .map(|p| priority_pb(*p))
                .collect(),
            service_ids: rules.matcher.service_ids.clone(),
            customer_ids: rules.matcher.customer_ids.clone(),
            team_ids: rules.matcher.team_ids.clone(),
        }),
        targets: rules
            .targets
            .iter()
            .map(|t| pb::Target {
                metric: metric_pb(t.metric) as i32,
                priority: t.priority.map_or(0, priority_pb),
                business_minutes: t.business_minutes,
            })
            .collect(),
        conditions: Some(pb::ClockConditions {
            pause_pending_reasons: rules
                .conditions
                .pause_pending_reasons
                .iter()
                .map(|r| pending_reason_pb(*r) as i32)
                .collect(),
            pause_statuses: rules
                .conditions
                .pause_statuses
                .iter()
                .map(|s| status_pb(*s) as i32)
                .collect(),
            reset_on_reopen: rules.conditions.reset_on_reopen,
        }),
        warning_thresholds_percent: rules.warning_thresholds_percent.clone(),
        calendar_id: rules
            .calendar_id
            .map(|c| ids::format_id(region, c))
            .unwrap_or_default(),
        precedence: rules.precedence,
        version: policy.version,
        create_time: timestamp(policy.created_at),
        update_time: timestamp(policy.updated_at),
    }
}

// ---- clocks ----

pub fn state_pb(state: ClockState) -> pb::ClockState {
    match state {
        ClockState::Running => pb::ClockState::Running,
        ClockState::Paused => pb::ClockState::Paused,
        ClockState::Met => pb::ClockState::Met,
        ClockState::Breached => pb::ClockState::Breached,
    }
}

fn entry_kind_pb(kind: EntryKind) -> pb::TimelineKind {
    match kind {
        EntryKind::Started => pb::TimelineKind::Started,
        EntryKind::Paused => pb::TimelineKind::Paused,
        EntryKind::Resumed => pb::TimelineKind::Resumed,
        EntryKind::Retargeted => pb::TimelineKind::Retargeted,
        EntryKind::CalendarChanged => pb::TimelineKind::CalendarChanged,
        EntryKind::Counted => pb::TimelineKind::Counted,
        EntryKind::Warning => pb::TimelineKind::Warning,
        EntryKind::Breached => pb::TimelineKind::Breached,
        EntryKind::Met => pb::TimelineKind::Met,
        EntryKind::Reset => pb::TimelineKind::Reset,
        EntryKind::Stopped => pb::TimelineKind::Stopped,
    }
}

/// A clock for the API (with its timeline) or an event (without).
pub fn clock_to_pb(region: &str, view: &ClockView, policy_name: &str, timeline: bool) -> pb::Clock {
    let calendar = |id: Option<Uuid>| id.map(|c| ids::format_id(region, c)).unwrap_or_default();
    pb::Clock {
        policy_id: ids::format_id(region, view.policy_id),
        policy_name: policy_name.to_owned(),
        kind: kind_pb(view.kind) as i32,
        metric: metric_pb(view.metric) as i32,
        state: state_pb(view.state) as i32,
        target_seconds: view.target.num_seconds(),
        elapsed_seconds: view.elapsed.num_seconds(),
        due_time: view.due.and_then(timestamp),
        stop_time: view.stopped_at.and_then(timestamp),
        paused_seconds: view.paused_total.num_seconds(),
        calendar_id: calendar(view.calendar_id),
        team_id: view.team_id.clone().unwrap_or_default(),
        timeline: if timeline {
            view.timeline
                .iter()
                .map(|e| pb::TimelineEntry {
                    kind: entry_kind_pb(e.kind) as i32,
                    time: timestamp(e.at),
                    end_time: e.end.and_then(timestamp),
                    actor: e.actor.clone().unwrap_or_default(),
                    reason: e.reason.clone(),
                    calendar_id: calendar(e.calendar_id),
                    business_seconds: e.business.num_seconds(),
                })
                .collect()
        } else {
            Vec::new()
        },
        as_of: timestamp(view.as_of),
    }
}
