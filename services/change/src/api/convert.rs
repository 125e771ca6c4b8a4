//! Domain values to and from their protobuf messages. Ids go out region-qualified
//! (`<region>-<uuid>`); CI ids are the CMDB's, of the same region.

use chrono::{DateTime, Utc};
use desk_kit::ids;
use desk_proto::{change::v1 as pb, cmdb::v1 as cmdb};
use prost_types::Timestamp;
use uuid::Uuid;

use crate::domain::{
    self as d, AttributeValue, Change, ChangeState, ChangeType, CiUpdate, Conflict, ConflictKind,
    Edge, Outcome, Relation, RiskLevel, Template, Verdict, Violations,
};

pub fn timestamp(at: DateTime<Utc>) -> Option<Timestamp> {
    Some(Timestamp {
        seconds: at.timestamp(),
        nanos: at.timestamp_subsec_nanos() as i32,
    })
}

pub fn time_of(timestamp: Option<&Timestamp>) -> Option<DateTime<Utc>> {
    let t = timestamp?;
    DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).ok()?)
}

pub fn change_type(value: i32) -> Option<ChangeType> {
    match pb::ChangeType::try_from(value).ok()? {
        pb::ChangeType::Standard => Some(ChangeType::Standard),
        pb::ChangeType::Normal => Some(ChangeType::Normal),
        pb::ChangeType::Emergency => Some(ChangeType::Emergency),
        pb::ChangeType::Unspecified => None,
    }
}

fn change_type_pb(value: ChangeType) -> pb::ChangeType {
    match value {
        ChangeType::Standard => pb::ChangeType::Standard,
        ChangeType::Normal => pb::ChangeType::Normal,
        ChangeType::Emergency => pb::ChangeType::Emergency,
    }
}

pub fn state(value: i32) -> Option<ChangeState> {
    use pb::ChangeState as P;
    Some(match P::try_from(value).ok()? {
        P::Draft => ChangeState::Draft,
        P::Assessment => ChangeState::Assessment,
        P::Authorization => ChangeState::Authorization,
        P::Authorized => ChangeState::Authorized,
        P::Scheduled => ChangeState::Scheduled,
        P::Implementing => ChangeState::Implementing,
        P::Review => ChangeState::Review,
        P::Closed => ChangeState::Closed,
        P::Rejected => ChangeState::Rejected,
        P::Cancelled => ChangeState::Cancelled,
        P::Unspecified => return None,
    })
}

fn state_pb(value: ChangeState) -> pb::ChangeState {
    use pb::ChangeState as P;
    match value {
        ChangeState::Draft => P::Draft,
        ChangeState::Assessment => P::Assessment,
        ChangeState::Authorization => P::Authorization,
        ChangeState::Authorized => P::Authorized,
        ChangeState::Scheduled => P::Scheduled,
        ChangeState::Implementing => P::Implementing,
        ChangeState::Review => P::Review,
        ChangeState::Closed => P::Closed,
        ChangeState::Rejected => P::Rejected,
        ChangeState::Cancelled => P::Cancelled,
    }
}

pub fn risk_level(value: i32) -> Option<RiskLevel> {
    match pb::RiskLevel::try_from(value).ok()? {
        pb::RiskLevel::Low => Some(RiskLevel::Low),
        pb::RiskLevel::Medium => Some(RiskLevel::Medium),
        pb::RiskLevel::High => Some(RiskLevel::High),
        pb::RiskLevel::Unspecified => None,
    }
}

fn risk_level_pb(value: RiskLevel) -> pb::RiskLevel {
    match value {
        RiskLevel::Low => pb::RiskLevel::Low,
        RiskLevel::Medium => pb::RiskLevel::Medium,
        RiskLevel::High => pb::RiskLevel::High,
    }
}

pub fn verdict(value: i32) -> Option<Verdict> {
    match pb::Verdict::try_from(value).ok()? {
        pb::Verdict::Approve => Some(Verdict::Approve),
        pb::Verdict::Reject => Some(Verdict::Reject),
        pb::Verdict::Unspecified => None,
    }
}

fn verdict_pb(value: Verdict) -> pb::Verdict {
    match value {
        Verdict::Approve => pb::Verdict::Approve,
        Verdict::Reject => pb::Verdict::Reject,
    }
}

fn kind_pb(kind: ConflictKind) -> pb::ConflictKind {
    use pb::ConflictKind as P;
    match kind {
        ConflictKind::SameCi => P::SameCi,
        ConflictKind::UpstreamCi => P::UpstreamCi,
        ConflictKind::DownstreamCi => P::DownstreamCi,
        ConflictKind::SameImplementer => P::SameImplementer,
        ConflictKind::Freeze => P::Freeze,
        ConflictKind::OutsideMaintenanceWindow => P::OutsideMaintenanceWindow,
    }
}

pub fn relation_of(value: i32) -> Option<Relation> {
    use cmdb::RelationshipType as P;
    Some(match P::try_from(value).ok()? {
        P::DependsOn => Relation::DependsOn,
        P::RunsOn => Relation::RunsOn,
        P::ConnectsTo => Relation::ConnectsTo,
        P::MemberOf => Relation::MemberOf,
        P::Provides => Relation::Provides,
        P::Unspecified => return None,
    })
}

fn relation_pb(value: Relation) -> cmdb::RelationshipType {
    use cmdb::RelationshipType as P;
    match value {
        Relation::DependsOn => P::DependsOn,
        Relation::RunsOn => P::RunsOn,
        Relation::ConnectsTo => P::ConnectsTo,
        Relation::MemberOf => P::MemberOf,
        Relation::Provides => P::Provides,
    }
}

pub fn path_pb(region: &str, path: &[Edge]) -> Vec<cmdb::PathStep> {
    path.iter()
        .map(|edge| cmdb::PathStep {
            source_id: ids::format_id(region, edge.source),
            r#type: relation_pb(edge.relation) as i32,
            target_id: ids::format_id(region, edge.target),
        })
        .collect()
}

pub fn conflict_pb(region: &str, conflict: &Conflict) -> pb::Conflict {
    let id = |uuid: Option<Uuid>| uuid.map(|u| ids::format_id(region, u)).unwrap_or_default();
    pb::Conflict {
        kind: kind_pb(conflict.kind) as i32,
        other_change_id: id(conflict.other_change.as_ref().map(|(u, _)| *u)),
        other_change_number: conflict
            .other_change
            .as_ref()
            .map(|(_, n)| n.clone())
            .unwrap_or_default(),
        ci_id: id(conflict.ci),
        other_ci_id: id(conflict.other_ci),
        path: path_pb(region, &conflict.path),
        depth: conflict.path.len() as u32,
        window_id: id(conflict.window),
        explanation: conflict.explanation.clone(),
    }
}

pub fn window_pb(window: &d::Window) -> pb::Window {
    pb::Window {
        start_time: timestamp(window.range.start),
        end_time: timestamp(window.range.end),
        time_zone: window.time_zone.clone(),
    }
}

/// A window of a request, checked as a window to plan in (`field` names it in violations).
pub fn window_of(
    field: &str,
    window: &pb::Window,
    now: DateTime<Utc>,
    found: &mut Violations,
) -> Option<d::Window> {
    let (Some(start), Some(end)) = (
        time_of(window.start_time.as_ref()),
        time_of(window.end_time.as_ref()),
    ) else {
        found.push(
            format!("{field}.start_time"),
            "a start and an end time are required",
        );
        return None;
    };
    match d::Window::planned(start, end, &window.time_zone, now) {
        Ok(window) => Some(window),
        Err(error) => {
            found.push(format!("{field}.{}", error.field()), error.to_string());
            None
        }
    }
}

/// A region-qualified id of this region.
pub fn id_of(region: &str, field: &str, text: &str, found: &mut Violations) -> Option<Uuid> {
    match ids::parse_id(text.trim()) {
        Some(parsed) if parsed.region == region => Some(parsed.uuid),
        _ => {
            found.push(field, "not an id of this region (<region>-<uuid>)");
            None
        }
    }
}

pub fn ids_of(region: &str, field: &str, texts: &[String], found: &mut Violations) -> Vec<Uuid> {
    texts
        .iter()
        .enumerate()
        .filter_map(|(index, text)| id_of(region, &format!("{field}[{index}]"), text, found))
        .collect()
}

pub fn ci_updates_of(
    region: &str,
    updates: &[pb::CiUpdate],
    found: &mut Violations,
) -> Vec<CiUpdate> {
    let mut parsed = Vec::new();
    for (index, update) in updates.iter().enumerate() {
        let field = format!("ci_updates[{index}]");
        let Some(ci) = id_of(region, &format!("{field}.ci_id"), &update.ci_id, found) else {
            continue;
        };
        let mut attributes = std::collections::BTreeMap::new();
        for (name, value) in &update.attributes {
            use cmdb::attribute_value::Kind;
            let value = match &value.kind {
                Some(Kind::StringValue(s)) => AttributeValue::String(s.clone()),
                Some(Kind::IntValue(i)) => AttributeValue::Int(*i),
                Some(Kind::BoolValue(b)) => AttributeValue::Bool(*b),
                Some(Kind::DateValue(s)) => AttributeValue::Date(s.clone()),
                Some(Kind::ReferenceValue(s)) => AttributeValue::Reference(s.clone()),
                Some(Kind::Clear(_)) => AttributeValue::Clear,
                None => {
                    found.push(format!("{field}.attributes[{name}]"), "a value is required");
                    continue;
                }
            };
            attributes.insert(name.clone(), value);
        }
        let status = match cmdb::CiStatus::try_from(update.status) {
            Ok(cmdb::CiStatus::Unspecified) => None,
            Ok(cmdb::CiStatus::Retired) | Err(_) => {
                found.push(format!("{field}.status"), "planned, in_use or maintenance");
                None
            }
            Ok(status) => Some(status.as_str_name().to_owned()),
        };
        parsed.push(CiUpdate {
            ci,
            attributes,
            status,
            applied_version: 0,
        });
    }
    parsed
}

pub fn attributes_pb(update: &CiUpdate) -> std::collections::HashMap<String, cmdb::AttributeValue> {
    use cmdb::attribute_value::Kind;
    update
        .attributes
        .iter()
        .map(|(name, value)| {
            let kind = match value {
                AttributeValue::String(s) => Kind::StringValue(s.clone()),
                AttributeValue::Int(i) => Kind::IntValue(*i),
                AttributeValue::Bool(b) => Kind::BoolValue(*b),
                AttributeValue::Date(s) => Kind::DateValue(s.clone()),
                AttributeValue::Reference(s) => Kind::ReferenceValue(s.clone()),
                AttributeValue::Clear => Kind::Clear(true),
            };
            (name.clone(), cmdb::AttributeValue { kind: Some(kind) })
        })
        .collect()
}

/// The CMDB status of an update (`CI_STATUS_IN_USE`), as the enum's number.
pub fn status_pb(update: &CiUpdate) -> i32 {
    update
        .status
        .as_deref()
        .and_then(cmdb::CiStatus::from_str_name)
        .map_or(0, |s| s as i32)
}

pub fn change_pb(region: &str, change: &Change) -> pb::Change {
    let id = |uuid: Uuid| ids::format_id(region, uuid);
    pb::Change {
        id: id(change.id),
        number: change.number.clone(),
        r#type: change_type_pb(change.change_type) as i32,
        state: state_pb(change.state) as i32,
        summary: change.summary.clone(),
        justification: change.justification.clone(),
        implementation_plan: change.implementation_plan.clone(),
        backout_plan: change.backout_plan.clone(),
        test_plan: change.test_plan.clone(),
        affected_ci_ids: change.affected_cis.iter().map(|ci| id(*ci)).collect(),
        planned_window: change.window.as_ref().map(window_pb),
        assignment_group_id: change.assignment_group.clone().unwrap_or_default(),
        implementer_id: change.implementer.clone().unwrap_or_default(),
        linked_incident_ids: change.linked_incidents.clone(),
        linked_problem_ids: change.linked_problems.clone(),
        linked_request_ids: change.linked_requests.clone(),
        ci_updates: change
            .ci_updates
            .iter()
            .map(|update| pb::CiUpdate {
                ci_id: id(update.ci),
                attributes: attributes_pb(update),
                status: status_pb(update),
                applied_version: update.applied_version,
            })
            .collect(),
        template_id: change.template.map(id).unwrap_or_default(),
        risk: change.assessment.as_ref().map(|a| pb::RiskAssessment {
            score: a.risk.score,
            level: risk_level_pb(a.risk.level) as i32,
            factors: a
                .risk
                .factors
                .iter()
                .map(|f| pb::RiskFactor {
                    name: f.name.clone(),
                    weight: f.weight,
                    detail: f.detail.clone(),
                })
                .collect(),
            assess_time: timestamp(a.at),
            assessed_by: a.by.clone(),
        }),
        approval: change.approval.as_ref().map(|a| pb::Approval {
            group_id: a.group_id.clone(),
            member_ids: a.members.clone(),
            quorum: a.quorum,
            emergency: a.emergency,
            decisions: a.decisions.iter().map(decision_pb).collect(),
            approve_time: a.approved_at.and_then(timestamp),
            expire_time: a.expires_at.and_then(timestamp),
        }),
        conflicts: change
            .conflicts
            .iter()
            .map(|c| conflict_pb(region, c))
            .collect(),
        outcome: match change.outcome {
            None => pb::Outcome::Unspecified,
            Some(Outcome::Successful) => pb::Outcome::Successful,
            Some(Outcome::Failed) => pb::Outcome::Failed,
        } as i32,
        implementation_notes: change.implementation_notes.clone(),
        review_notes: change.review_notes.clone(),
        implement_start_time: change.implement_started_at.and_then(timestamp),
        implement_end_time: change.implement_ended_at.and_then(timestamp),
        suspected_incidents: change
            .suspected_incidents
            .iter()
            .map(|s| suspected_pb(region, s))
            .collect(),
        version: change.version,
        tenant_id: change.tenant.clone(),
        created_by: change.created_by.clone(),
        create_time: timestamp(change.created_at),
        update_time: timestamp(change.updated_at),
        close_time: change.closed_at.and_then(timestamp),
    }
}

pub fn decision_pb(decision: &d::Decision) -> pb::Decision {
    pb::Decision {
        approver_id: decision.approver.clone(),
        decided_by: decision.decided_by.clone(),
        verdict: verdict_pb(decision.verdict) as i32,
        comment: decision.comment.clone(),
        decide_time: timestamp(decision.at),
    }
}

pub fn suspected_pb(region: &str, suspected: &d::SuspectedIncident) -> pb::SuspectedIncident {
    pb::SuspectedIncident {
        ticket_id: suspected.ticket_id.clone(),
        ticket_number: suspected.ticket_number.clone(),
        ci_id: ids::format_id(region, suspected.ci),
        path: path_pb(region, &suspected.path),
        detect_time: timestamp(suspected.at),
    }
}

pub fn template_pb(region: &str, template: &Template) -> pb::ChangeTemplate {
    pb::ChangeTemplate {
        id: ids::format_id(region, template.id),
        name: template.name.clone(),
        summary: template.summary.clone(),
        implementation_plan: template.implementation_plan.clone(),
        backout_plan: template.backout_plan.clone(),
        test_plan: template.test_plan.clone(),
        duration_minutes: template.duration_minutes,
        created_by: template.created_by.clone(),
        create_time: timestamp(template.created_at),
    }
}

pub fn freeze_pb(region: &str, freeze: &d::FreezeWindow) -> pb::FreezeWindow {
    pb::FreezeWindow {
        id: ids::format_id(region, freeze.id),
        name: freeze.name.clone(),
        reason: freeze.reason.clone(),
        start_time: timestamp(freeze.range.start),
        end_time: timestamp(freeze.range.end),
        ci_ids: freeze
            .ci_ids
            .iter()
            .map(|ci| ids::format_id(region, *ci))
            .collect(),
        create_time: None,
    }
}

pub fn maintenance_pb(region: &str, window: &d::MaintenanceWindow) -> pb::MaintenanceWindow {
    pb::MaintenanceWindow {
        id: ids::format_id(region, window.id),
        name: window.name.clone(),
        ci_ids: window
            .ci_ids
            .iter()
            .map(|ci| ids::format_id(region, *ci))
            .collect(),
        weekdays: window.weekdays.clone(),
        start_local_time: window.start_local.format("%H:%M").to_string(),
        duration_minutes: window.duration.num_minutes() as u32,
        time_zone: window.time_zone.clone(),
        create_time: None,
    }
}

pub fn policy_pb(policy: &d::ChangePolicy, version: i64) -> pb::ChangePolicy {
    pb::ChangePolicy {
        cab_rules: policy
            .rules
            .iter()
            .map(|rule| pb::CabRule {
                risk_level: rule.risk_level.map_or(0, |l| risk_level_pb(l) as i32),
                emergency: rule.risk_level.is_none(),
                group_id: rule.group_id.clone(),
                member_ids: rule.members.clone(),
                quorum: rule.quorum,
            })
            .collect(),
        approval_validity_days: policy.approval_validity_days,
        incident_window_minutes: policy.incident_window_minutes,
        conflict_depth: policy.conflict_depth,
        version,
    }
}

pub fn policy_of(policy: &pb::ChangePolicy, found: &mut Violations) -> d::ChangePolicy {
    let mut rules = Vec::new();
    for (index, rule) in policy.cab_rules.iter().enumerate() {
        let risk_level = if rule.emergency {
            None
        } else {
            match risk_level(rule.risk_level) {
                Some(level) => Some(level),
                None => {
                    found.push(
                        format!("policy.cab_rules[{index}].risk_level"),
                        "low, medium or high, unless the rule is the emergency CAB",
                    );
                    continue;
                }
            }
        };
        rules.push(d::CabRule {
            risk_level,
            group_id: rule.group_id.trim().to_owned(),
            members: rule
                .member_ids
                .iter()
                .map(|m| m.trim().to_owned())
                .collect(),
            quorum: rule.quorum,
        });
    }
    d::ChangePolicy {
        rules,
        approval_validity_days: policy.approval_validity_days,
        incident_window_minutes: policy.incident_window_minutes,
        conflict_depth: policy.conflict_depth,
    }
}
