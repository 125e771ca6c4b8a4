//! Between the wire (`desk.tickets.v1`) and the domain: proto enum values map to domain enums
//! (`None` for unspecified or unknown values, which [`super::parse`] reports as violations), and
//! domain records render as proto messages for responses and events.

use chrono::{DateTime, Utc};
use desk_kit::ids;
use desk_proto::{common::v1 as common, tickets::v1 as pb};
use prost_types::Timestamp;

use crate::{
    domain::{
        Channel, FieldChange, Level, LinkKind, PendingReason, Priority, Status, SupportTier,
        TicketType, Visibility,
        record::{Comment, Link, Ticket, WorklogEntry},
    },
    store::{HistoryEntry, TicketSettings},
};

pub fn timestamp(at: DateTime<Utc>) -> Option<Timestamp> {
    Some(Timestamp {
        seconds: at.timestamp(),
        nanos: at.timestamp_subsec_nanos() as i32,
    })
}

pub fn ticket_type(value: i32) -> Option<TicketType> {
    match pb::TicketType::try_from(value).ok()? {
        pb::TicketType::Unspecified => None,
        pb::TicketType::Incident => Some(TicketType::Incident),
        pb::TicketType::ServiceRequest => Some(TicketType::ServiceRequest),
        pb::TicketType::Problem => Some(TicketType::Problem),
    }
}

pub fn ticket_type_to_pb(value: TicketType) -> pb::TicketType {
    match value {
        TicketType::Incident => pb::TicketType::Incident,
        TicketType::ServiceRequest => pb::TicketType::ServiceRequest,
        TicketType::Problem => pb::TicketType::Problem,
    }
}

pub fn status(value: i32) -> Option<Status> {
    match pb::TicketStatus::try_from(value).ok()? {
        pb::TicketStatus::Unspecified => None,
        pb::TicketStatus::New => Some(Status::New),
        pb::TicketStatus::Assigned => Some(Status::Assigned),
        pb::TicketStatus::InProgress => Some(Status::InProgress),
        pb::TicketStatus::Pending => Some(Status::Pending),
        pb::TicketStatus::Resolved => Some(Status::Resolved),
        pb::TicketStatus::Closed => Some(Status::Closed),
    }
}

pub fn status_to_pb(value: Status) -> pb::TicketStatus {
    match value {
        Status::New => pb::TicketStatus::New,
        Status::Assigned => pb::TicketStatus::Assigned,
        Status::InProgress => pb::TicketStatus::InProgress,
        Status::Pending => pb::TicketStatus::Pending,
        Status::Resolved => pb::TicketStatus::Resolved,
        Status::Closed => pb::TicketStatus::Closed,
    }
}

pub fn pending_reason(value: i32) -> Option<PendingReason> {
    match pb::PendingReason::try_from(value).ok()? {
        pb::PendingReason::Unspecified => None,
        pb::PendingReason::Customer => Some(PendingReason::Customer),
        pb::PendingReason::Vendor => Some(PendingReason::Vendor),
        pb::PendingReason::Change => Some(PendingReason::Change),
    }
}

fn pending_reason_to_pb(value: PendingReason) -> pb::PendingReason {
    match value {
        PendingReason::Customer => pb::PendingReason::Customer,
        PendingReason::Vendor => pb::PendingReason::Vendor,
        PendingReason::Change => pb::PendingReason::Change,
    }
}

pub fn channel(value: i32) -> Option<Channel> {
    match pb::Channel::try_from(value).ok()? {
        pb::Channel::Unspecified => None,
        pb::Channel::Portal => Some(Channel::Portal),
        pb::Channel::Email => Some(Channel::Email),
        pb::Channel::Phone => Some(Channel::Phone),
        pb::Channel::Chat => Some(Channel::Chat),
        pb::Channel::Mobile => Some(Channel::Mobile),
        pb::Channel::Api => Some(Channel::Api),
        pb::Channel::Monitoring => Some(Channel::Monitoring),
    }
}

fn channel_to_pb(value: Channel) -> pb::Channel {
    match value {
        Channel::Portal => pb::Channel::Portal,
        Channel::Email => pb::Channel::Email,
        Channel::Phone => pb::Channel::Phone,
        Channel::Chat => pb::Channel::Chat,
        Channel::Mobile => pb::Channel::Mobile,
        Channel::Api => pb::Channel::Api,
        Channel::Monitoring => pb::Channel::Monitoring,
    }
}

pub fn level(value: i32) -> Option<Level> {
    match pb::Level::try_from(value).ok()? {
        pb::Level::Unspecified => None,
        pb::Level::High => Some(Level::High),
        pb::Level::Medium => Some(Level::Medium),
        pb::Level::Low => Some(Level::Low),
    }
}

pub fn level_to_pb(value: Level) -> pb::Level {
    match value {
        Level::High => pb::Level::High,
        Level::Medium => pb::Level::Medium,
        Level::Low => pb::Level::Low,
    }
}

pub fn priority(value: i32) -> Option<Priority> {
    match pb::Priority::try_from(value).ok()? {
        pb::Priority::Unspecified => None,
        pb::Priority::P1Critical => Some(Priority::P1),
        pb::Priority::P2High => Some(Priority::P2),
        pb::Priority::P3Moderate => Some(Priority::P3),
        pb::Priority::P4Low => Some(Priority::P4),
        pb::Priority::P5Planning => Some(Priority::P5),
    }
}

pub fn priority_to_pb(value: Priority) -> pb::Priority {
    match value {
        Priority::P1 => pb::Priority::P1Critical,
        Priority::P2 => pb::Priority::P2High,
        Priority::P3 => pb::Priority::P3Moderate,
        Priority::P4 => pb::Priority::P4Low,
        Priority::P5 => pb::Priority::P5Planning,
    }
}

pub fn tier(value: i32) -> Option<SupportTier> {
    match pb::SupportTier::try_from(value).ok()? {
        pb::SupportTier::Unspecified => None,
        pb::SupportTier::FirstLine => Some(SupportTier::Tier1),
        pb::SupportTier::SecondLine => Some(SupportTier::Tier2),
        pb::SupportTier::ThirdLine => Some(SupportTier::Tier3),
    }
}

pub fn tier_to_pb(value: SupportTier) -> pb::SupportTier {
    match value {
        SupportTier::Tier1 => pb::SupportTier::FirstLine,
        SupportTier::Tier2 => pb::SupportTier::SecondLine,
        SupportTier::Tier3 => pb::SupportTier::ThirdLine,
    }
}

pub fn visibility(value: i32) -> Option<Visibility> {
    match pb::Visibility::try_from(value).ok()? {
        pb::Visibility::Unspecified => None,
        pb::Visibility::Public => Some(Visibility::Public),
        pb::Visibility::Internal => Some(Visibility::Internal),
    }
}

fn visibility_to_pb(value: Visibility) -> pb::Visibility {
    match value {
        Visibility::Public => pb::Visibility::Public,
        Visibility::Internal => pb::Visibility::Internal,
    }
}

pub fn link_kind(value: i32) -> Option<LinkKind> {
    match pb::LinkKind::try_from(value).ok()? {
        pb::LinkKind::Unspecified => None,
        pb::LinkKind::Parent => Some(LinkKind::Parent),
        pb::LinkKind::Child => Some(LinkKind::Child),
        pb::LinkKind::DuplicateOf => Some(LinkKind::DuplicateOf),
        pb::LinkKind::CausedByChange => Some(LinkKind::CausedByChange),
        pb::LinkKind::Problem => Some(LinkKind::Problem),
        pb::LinkKind::Incident => Some(LinkKind::Incident),
        pb::LinkKind::KnowledgeArticle => Some(LinkKind::KnowledgeArticle),
        pb::LinkKind::Related => Some(LinkKind::Related),
    }
}

fn link_kind_to_pb(value: LinkKind) -> pb::LinkKind {
    match value {
        LinkKind::Parent => pb::LinkKind::Parent,
        LinkKind::Child => pb::LinkKind::Child,
        LinkKind::DuplicateOf => pb::LinkKind::DuplicateOf,
        LinkKind::CausedByChange => pb::LinkKind::CausedByChange,
        LinkKind::Problem => pb::LinkKind::Problem,
        LinkKind::Incident => pb::LinkKind::Incident,
        LinkKind::KnowledgeArticle => pb::LinkKind::KnowledgeArticle,
        LinkKind::Related => pb::LinkKind::Related,
    }
}

pub fn ticket_to_pb(region: &str, t: &Ticket) -> pb::Ticket {
    pb::Ticket {
        id: ids::format_id(region, t.id),
        number: t.number.clone(),
        r#type: ticket_type_to_pb(t.ticket_type) as i32,
        title: t.title.clone(),
        description: t.description.clone(),
        requester_id: t.requester_id.clone(),
        channel: channel_to_pb(t.channel) as i32,
        category: t.category.clone().unwrap_or_default(),
        impact: level_to_pb(t.impact) as i32,
        urgency: level_to_pb(t.urgency) as i32,
        priority: priority_to_pb(t.priority) as i32,
        status: status_to_pb(t.status) as i32,
        pending_reason: t
            .pending_reason
            .map_or(pb::PendingReason::Unspecified, pending_reason_to_pb)
            as i32,
        assignment_group_id: t.assignment_group_id.clone().unwrap_or_default(),
        assignee_id: t.assignee_id.clone().unwrap_or_default(),
        tier: tier_to_pb(t.tier) as i32,
        affected_service_ids: t.affected_service_ids.clone(),
        affected_ci_ids: t.affected_ci_ids.clone(),
        major_incident: t.major_incident,
        watcher_ids: t.watcher_ids.clone(),
        resolution: t.resolution.as_ref().map(|r| pb::Resolution {
            code: r.code.as_str().to_owned(),
            notes: r.notes.clone(),
            resolved_by: r.resolved_by.clone(),
            resolve_time: timestamp(r.resolved_at),
        }),
        problem: (t.ticket_type == TicketType::Problem).then(|| pb::ProblemDetails {
            root_cause: t.problem.root_cause.clone().unwrap_or_default(),
            workaround: t.problem.workaround.clone().unwrap_or_default(),
            known_error: t.problem.known_error,
        }),
        satisfaction: t.satisfaction.as_ref().map(|s| pb::Satisfaction {
            rating: s.rating,
            comment: s.comment.clone().unwrap_or_default(),
            rate_time: timestamp(s.rated_at),
        }),
        version: t.version,
        tenant_id: t.tenant_id.clone(),
        region: region.to_owned(),
        created_by: t.created_by.clone(),
        create_time: timestamp(t.created_at),
        update_time: timestamp(t.updated_at),
    }
}

pub fn comment_to_pb(region: &str, c: &Comment) -> pb::Comment {
    pb::Comment {
        id: ids::format_id(region, c.id),
        ticket_id: ids::format_id(region, c.ticket_id),
        author_id: c.author_id.clone(),
        author_name: c.author_name.clone().unwrap_or_default(),
        body: c.body.clone(),
        visibility: visibility_to_pb(c.visibility) as i32,
        create_time: timestamp(c.created_at),
    }
}

pub fn worklog_to_pb(region: &str, w: &WorklogEntry) -> pb::WorklogEntry {
    pb::WorklogEntry {
        id: ids::format_id(region, w.id),
        ticket_id: ids::format_id(region, w.ticket_id),
        agent_id: w.agent_id.clone(),
        minutes: w.minutes,
        note: w.note.clone(),
        create_time: timestamp(w.created_at),
    }
}

pub fn link_to_pb(l: &Link) -> pb::Link {
    pb::Link {
        kind: link_kind_to_pb(l.kind) as i32,
        target_id: l.target_id.clone(),
        target_number: l.target_number.clone().unwrap_or_default(),
        created_by: l.created_by.clone(),
        create_time: timestamp(l.created_at),
    }
}

pub fn field_changes_to_pb(changes: &[FieldChange]) -> Vec<common::FieldChange> {
    changes
        .iter()
        .map(|c| common::FieldChange {
            field: c.field.clone(),
            old_value: c.old.clone().unwrap_or_default(),
            new_value: c.new.clone().unwrap_or_default(),
            old_present: c.old.is_some(),
            new_present: c.new.is_some(),
        })
        .collect()
}

pub fn history_to_pb(entry: &HistoryEntry) -> common::AuditEntry {
    common::AuditEntry {
        version: entry.version,
        time: timestamp(entry.at),
        actor: Some(common::Actor {
            subject: entry.actor.subject.clone(),
            name: entry.actor.name.clone().unwrap_or_default(),
            roles: entry.actor.roles.clone(),
        }),
        action: entry.action.clone(),
        changes: field_changes_to_pb(&entry.changes),
        note: entry.note.clone().unwrap_or_default(),
    }
}

pub fn settings_to_pb(settings: &TicketSettings) -> pb::TicketSettings {
    pb::TicketSettings {
        priority_matrix: settings
            .priority_matrix
            .cells()
            .map(|(impact, urgency, priority)| pb::PriorityCell {
                impact: level_to_pb(impact) as i32,
                urgency: level_to_pb(urgency) as i32,
                priority: priority_to_pb(priority) as i32,
            })
            .collect(),
        reopen_window_hours: settings.reopen_window_hours,
    }
}
