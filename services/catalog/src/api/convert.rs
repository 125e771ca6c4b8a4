//! Domain values to and from their protobuf messages. Ids go out region-qualified
//! (`<region>-<uuid>`); a task's id is `<request id>/<task key>`.

use chrono::{DateTime, Utc};
use desk_kit::ids;
use desk_proto::catalog::v1 as pb;
use prost_types::Timestamp;
use uuid::Uuid;

use crate::domain::{
    Localized, Offering, OfferingDefinition, Violations, Visibility,
    approval::{ApprovalPolicy, Approvers, Decision, Rule, Step, StepPolicy, StepState, Verdict},
    form::{Condition, Field, FieldType, FormSchema, Test, Value},
    fulfillment::{FulfillmentPlan, Task, TaskState, TaskTemplate},
    request::{Request, RequestState},
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

/// A region-qualified id of this region.
pub fn id_of(region: &str, text: &str) -> Option<Uuid> {
    match ids::parse_id(text.trim()) {
        Some(parsed) if parsed.region == region => Some(parsed.uuid),
        _ => None,
    }
}

/// `<request id>/<task key>`.
pub fn task_id(region: &str, request: Uuid, key: &str) -> String {
    format!("{}/{key}", ids::format_id(region, request))
}

pub fn task_of(region: &str, text: &str) -> Option<(Uuid, String)> {
    let (request, key) = text.split_once('/')?;
    Some((id_of(region, request)?, key.to_owned()))
}

fn localized_of(texts: &[pb::LocalizedText]) -> Vec<Localized> {
    texts
        .iter()
        .map(|t| Localized::new(t.locale.trim(), &t.text))
        .collect()
}

pub fn localized_pb(texts: &[Localized]) -> Vec<pb::LocalizedText> {
    texts
        .iter()
        .map(|t| pb::LocalizedText {
            locale: t.locale.clone(),
            text: t.text.clone(),
        })
        .collect()
}

fn field_type_of(value: i32) -> Option<FieldType> {
    Some(match pb::FieldType::try_from(value).ok()? {
        pb::FieldType::Unspecified => return None,
        pb::FieldType::Text => FieldType::Text,
        pb::FieldType::Number => FieldType::Number,
        pb::FieldType::Bool => FieldType::Bool,
        pb::FieldType::Choice => FieldType::Choice,
        pb::FieldType::MultiChoice => FieldType::MultiChoice,
        pb::FieldType::Date => FieldType::Date,
        pb::FieldType::Person => FieldType::Person,
        pb::FieldType::CiReference => FieldType::CiReference,
        pb::FieldType::AttachmentReference => FieldType::AttachmentReference,
    })
}

fn field_type_pb(value: FieldType) -> pb::FieldType {
    match value {
        FieldType::Text => pb::FieldType::Text,
        FieldType::Number => pb::FieldType::Number,
        FieldType::Bool => pb::FieldType::Bool,
        FieldType::Choice => pb::FieldType::Choice,
        FieldType::MultiChoice => pb::FieldType::MultiChoice,
        FieldType::Date => pb::FieldType::Date,
        FieldType::Person => pb::FieldType::Person,
        FieldType::CiReference => pb::FieldType::CiReference,
        FieldType::AttachmentReference => pb::FieldType::AttachmentReference,
    }
}

pub fn value_of(value: Option<&pb::Value>) -> Option<Value> {
    Some(match value?.kind.as_ref()? {
        pb::value::Kind::Text(text) => Value::Text(text.clone()),
        pb::value::Kind::Number(number) => Value::Number(*number),
        pb::value::Kind::Flag(flag) => Value::Flag(*flag),
        pb::value::Kind::Choices(choices) => Value::Choices(choices.values.clone()),
    })
}

pub fn value_pb(value: &Value) -> pb::Value {
    pb::Value {
        kind: Some(match value {
            Value::Text(text) => pb::value::Kind::Text(text.clone()),
            Value::Number(number) => pb::value::Kind::Number(*number),
            Value::Flag(flag) => pb::value::Kind::Flag(*flag),
            Value::Choices(choices) => pb::value::Kind::Choices(pb::Texts {
                values: choices.clone(),
            }),
        }),
    }
}

fn condition_of(
    condition: &pb::Condition,
    path: &str,
    found: &mut Violations,
) -> Option<Condition> {
    let test = match condition.test.as_ref() {
        Some(pb::condition::Test::Present(present)) => Test::Present(*present),
        Some(pb::condition::Test::AnyOf(texts)) => Test::AnyOf(texts.values.clone()),
        Some(pb::condition::Test::GreaterThan(bound)) => Test::GreaterThan(*bound),
        Some(pb::condition::Test::LessThan(bound)) => Test::LessThan(*bound),
        None => {
            found.push(format!("{path}.test"), "a condition needs a test");
            return None;
        }
    };
    Some(Condition {
        field: condition.field.trim().to_owned(),
        test,
    })
}

fn condition_pb(condition: &Condition) -> pb::Condition {
    pb::Condition {
        field: condition.field.clone(),
        test: Some(match &condition.test {
            Test::Present(present) => pb::condition::Test::Present(*present),
            Test::AnyOf(values) => pb::condition::Test::AnyOf(pb::Texts {
                values: values.clone(),
            }),
            Test::GreaterThan(bound) => pb::condition::Test::GreaterThan(*bound),
            Test::LessThan(bound) => pb::condition::Test::LessThan(*bound),
        }),
    }
}

fn form_of(form: Option<&pb::FormSchema>, found: &mut Violations) -> FormSchema {
    let Some(form) = form else {
        return FormSchema::default();
    };
    let fields = form
        .fields
        .iter()
        .enumerate()
        .map(|(i, field)| {
            let at = format!("definition.form.fields[{i}]");
            let field_type = field_type_of(field.r#type).unwrap_or_else(|| {
                found.push(format!("{at}.type"), "a field type");
                FieldType::Text
            });
            Field {
                key: field.key.trim().to_owned(),
                label: localized_of(&field.label),
                help: localized_of(&field.help),
                field_type,
                required: field.required,
                default: value_of(field.default_value.as_ref()),
                min: field.min,
                max: field.max,
                pattern: (!field.pattern.is_empty()).then(|| field.pattern.clone()),
                choices: field.choices.clone(),
                visible_when: field
                    .visible_when
                    .as_ref()
                    .and_then(|c| condition_of(c, &format!("{at}.visible_when"), found)),
            }
        })
        .collect();
    FormSchema { fields }
}

fn form_pb(form: &FormSchema) -> pb::FormSchema {
    pb::FormSchema {
        fields: form
            .fields
            .iter()
            .map(|field| pb::FormField {
                key: field.key.clone(),
                label: localized_pb(&field.label),
                help: localized_pb(&field.help),
                r#type: field_type_pb(field.field_type) as i32,
                required: field.required,
                default_value: field.default.as_ref().map(value_pb),
                min: field.min,
                max: field.max,
                pattern: field.pattern.clone().unwrap_or_default(),
                choices: field.choices.clone(),
                visible_when: field.visible_when.as_ref().map(condition_pb),
            })
            .collect(),
    }
}

fn approvers_of(
    approvers: Option<&pb::Approvers>,
    path: &str,
    found: &mut Violations,
) -> Approvers {
    let Some(approvers) = approvers else {
        found.push(path, "who approves");
        return Approvers::Manager;
    };
    match pb::ApproverKind::try_from(approvers.kind) {
        Ok(pb::ApproverKind::Manager) => Approvers::Manager,
        Ok(pb::ApproverKind::Group) => Approvers::Group(approvers.group_id.trim().to_owned()),
        Ok(pb::ApproverKind::People) => Approvers::People(
            approvers
                .subjects
                .iter()
                .map(|s| s.trim().to_owned())
                .collect(),
        ),
        _ => {
            found.push(format!("{path}.kind"), "manager, group or people");
            Approvers::Manager
        }
    }
}

fn approvers_pb(approvers: &Approvers) -> pb::Approvers {
    match approvers {
        Approvers::Manager => pb::Approvers {
            kind: pb::ApproverKind::Manager as i32,
            ..Default::default()
        },
        Approvers::Group(group) => pb::Approvers {
            kind: pb::ApproverKind::Group as i32,
            group_id: group.clone(),
            subjects: Vec::new(),
        },
        Approvers::People(people) => pb::Approvers {
            kind: pb::ApproverKind::People as i32,
            group_id: String::new(),
            subjects: people.clone(),
        },
    }
}

fn rule_of(rule: i32, quorum: i32, path: &str, found: &mut Violations) -> Rule {
    match pb::ApprovalRule::try_from(rule) {
        Ok(pb::ApprovalRule::Any) => Rule::Any,
        Ok(pb::ApprovalRule::All) => Rule::All,
        Ok(pb::ApprovalRule::Quorum) => Rule::Quorum(u32::try_from(quorum).unwrap_or(0)),
        _ => {
            found.push(path, "any, all or quorum");
            Rule::Any
        }
    }
}

fn rule_pb(rule: Rule) -> (pb::ApprovalRule, i32) {
    match rule {
        Rule::Any => (pb::ApprovalRule::Any, 0),
        Rule::All => (pb::ApprovalRule::All, 0),
        Rule::Quorum(n) => (pb::ApprovalRule::Quorum, n as i32),
    }
}

fn minutes(value: i32, path: &str, found: &mut Violations) -> u32 {
    u32::try_from(value).unwrap_or_else(|_| {
        found.push(path, "not negative");
        0
    })
}

fn policy_of(policy: Option<&pb::ApprovalPolicy>, found: &mut Violations) -> ApprovalPolicy {
    let Some(policy) = policy else {
        return ApprovalPolicy::default();
    };
    let steps = policy
        .steps
        .iter()
        .enumerate()
        .map(|(i, step)| {
            let at = format!("definition.approval.steps[{i}]");
            StepPolicy {
                name: step.name.trim().to_owned(),
                approvers: approvers_of(step.approvers.as_ref(), &format!("{at}.approvers"), found),
                rule: rule_of(step.rule, step.quorum, &format!("{at}.rule"), found),
                when: step
                    .when
                    .as_ref()
                    .and_then(|c| condition_of(c, &format!("{at}.when"), found)),
                remind_after_minutes: minutes(
                    step.remind_after_minutes,
                    &format!("{at}.remind_after_minutes"),
                    found,
                ),
                expire_after_minutes: minutes(
                    step.expire_after_minutes,
                    &format!("{at}.expire_after_minutes"),
                    found,
                ),
                escalate_to: step
                    .escalate_to
                    .as_ref()
                    .map(|e| approvers_of(Some(e), &format!("{at}.escalate_to"), found)),
            }
        })
        .collect();
    ApprovalPolicy { steps }
}

fn policy_pb(policy: &ApprovalPolicy) -> pb::ApprovalPolicy {
    pb::ApprovalPolicy {
        steps: policy
            .steps
            .iter()
            .map(|step| {
                let (rule, quorum) = rule_pb(step.rule);
                pb::ApprovalStep {
                    name: step.name.clone(),
                    approvers: Some(approvers_pb(&step.approvers)),
                    rule: rule as i32,
                    quorum,
                    when: step.when.as_ref().map(condition_pb),
                    remind_after_minutes: step.remind_after_minutes as i32,
                    expire_after_minutes: step.expire_after_minutes as i32,
                    escalate_to: step.escalate_to.as_ref().map(approvers_pb),
                }
            })
            .collect(),
    }
}

fn plan_of(plan: Option<&pb::FulfillmentPlan>) -> FulfillmentPlan {
    FulfillmentPlan {
        stages: plan
            .map(|p| {
                p.stages
                    .iter()
                    .map(|stage| {
                        stage
                            .tasks
                            .iter()
                            .map(|t| TaskTemplate {
                                key: t.key.trim().to_owned(),
                                name: t.name.trim().to_owned(),
                                group: t.group_id.trim().to_owned(),
                                automated: t.automated,
                                automation: t.automation.trim().to_owned(),
                            })
                            .collect()
                    })
                    .collect()
            })
            .unwrap_or_default(),
    }
}

fn plan_pb(plan: &FulfillmentPlan) -> pb::FulfillmentPlan {
    pb::FulfillmentPlan {
        stages: plan
            .stages
            .iter()
            .map(|stage| pb::FulfillmentStage {
                tasks: stage
                    .iter()
                    .map(|t| pb::TaskTemplate {
                        key: t.key.clone(),
                        name: t.name.clone(),
                        group_id: t.group.clone(),
                        automated: t.automated,
                        automation: t.automation.clone(),
                    })
                    .collect(),
            })
            .collect(),
    }
}

/// A definition from its message; what cannot be parsed is in `found`.
pub fn definition_of(
    definition: Option<&pb::OfferingDefinition>,
    found: &mut Violations,
) -> OfferingDefinition {
    let default = pb::OfferingDefinition::default();
    let d = definition.unwrap_or(&default);
    OfferingDefinition {
        name: localized_of(&d.name),
        description: localized_of(&d.description),
        service: d.service.trim().to_owned(),
        category: d.category.trim().to_owned(),
        form: form_of(d.form.as_ref(), found),
        approval: policy_of(d.approval.as_ref(), found),
        fulfillment: plan_of(d.fulfillment.as_ref()),
        target_fulfillment_minutes: minutes(
            d.target_fulfillment_minutes,
            "definition.target_fulfillment_minutes",
            found,
        ),
        visibility: Visibility {
            roles: d
                .visibility
                .as_ref()
                .map(|v| v.roles.clone())
                .unwrap_or_default(),
            groups: d
                .visibility
                .as_ref()
                .map(|v| v.group_ids.clone())
                .unwrap_or_default(),
        },
        knowledge_articles: d.knowledge_article_ids.clone(),
        active: d.active,
    }
}

pub fn definition_pb(d: &OfferingDefinition) -> pb::OfferingDefinition {
    pb::OfferingDefinition {
        name: localized_pb(&d.name),
        description: localized_pb(&d.description),
        service: d.service.clone(),
        category: d.category.clone(),
        form: Some(form_pb(&d.form)),
        approval: Some(policy_pb(&d.approval)),
        fulfillment: Some(plan_pb(&d.fulfillment)),
        target_fulfillment_minutes: d.target_fulfillment_minutes as i32,
        visibility: Some(pb::Visibility {
            roles: d.visibility.roles.clone(),
            group_ids: d.visibility.groups.clone(),
        }),
        knowledge_article_ids: d.knowledge_articles.clone(),
        active: d.active,
    }
}

pub fn offering_pb(region: &str, offering: &Offering) -> pb::Offering {
    pb::Offering {
        id: ids::format_id(region, offering.id),
        version: offering.version,
        definition: Some(definition_pb(&offering.definition)),
        popularity: offering.popularity,
        tenant_id: offering.tenant.clone(),
        create_time: timestamp(offering.created_at),
        update_time: timestamp(offering.updated_at),
    }
}

fn request_state_pb(state: RequestState) -> pb::RequestState {
    match state {
        RequestState::Submitted => pb::RequestState::Submitted,
        RequestState::AwaitingApproval => pb::RequestState::AwaitingApproval,
        RequestState::Approved => pb::RequestState::Approved,
        RequestState::Rejected => pb::RequestState::Rejected,
        RequestState::Fulfilling => pb::RequestState::Fulfilling,
        RequestState::Fulfilled => pb::RequestState::Fulfilled,
        RequestState::Cancelled => pb::RequestState::Cancelled,
    }
}

fn step_state_pb(state: StepState) -> pb::ApprovalState {
    match state {
        StepState::Waiting => pb::ApprovalState::Waiting,
        StepState::Pending => pb::ApprovalState::Pending,
        StepState::Approved => pb::ApprovalState::Approved,
        StepState::Rejected => pb::ApprovalState::Rejected,
        StepState::Skipped => pb::ApprovalState::Skipped,
        StepState::Expired => pb::ApprovalState::Expired,
        StepState::Cancelled => pb::ApprovalState::Cancelled,
    }
}

pub fn verdict_of(value: i32) -> Option<Verdict> {
    match pb::Verdict::try_from(value).ok()? {
        pb::Verdict::Approve => Some(Verdict::Approve),
        pb::Verdict::Reject => Some(Verdict::Reject),
        pb::Verdict::Unspecified => None,
    }
}

pub fn decision_pb(decision: &Decision) -> pb::Decision {
    pb::Decision {
        approver: decision.approver.clone(),
        decided_by: decision.decided_by.clone(),
        verdict: match decision.verdict {
            Verdict::Approve => pb::Verdict::Approve,
            Verdict::Reject => pb::Verdict::Reject,
        } as i32,
        comment: decision.comment.clone(),
        time: timestamp(decision.at),
    }
}

pub fn approval_pb(step: &Step) -> pb::Approval {
    pb::Approval {
        step: step.index as i32,
        name: step.name.clone(),
        state: step_state_pb(step.state) as i32,
        rule: rule_pb(step.rule).0 as i32,
        needed: step.needed as i32,
        approvers: step.approvers.clone(),
        decisions: step.decisions.iter().map(decision_pb).collect(),
        start_time: step.started_at.and_then(timestamp),
        due_time: step.due_at.and_then(timestamp),
        escalated: step.escalated,
    }
}

pub fn task_state_of(value: i32) -> Option<TaskState> {
    Some(match pb::TaskState::try_from(value).ok()? {
        pb::TaskState::Unspecified => return None,
        pb::TaskState::Waiting => TaskState::Waiting,
        pb::TaskState::Open => TaskState::Open,
        pb::TaskState::Claimed => TaskState::Claimed,
        pb::TaskState::Done => TaskState::Done,
        pb::TaskState::Cancelled => TaskState::Cancelled,
    })
}

fn task_state_pb(state: TaskState) -> pb::TaskState {
    match state {
        TaskState::Waiting => pb::TaskState::Waiting,
        TaskState::Open => pb::TaskState::Open,
        TaskState::Claimed => pb::TaskState::Claimed,
        TaskState::Done => pb::TaskState::Done,
        TaskState::Cancelled => pb::TaskState::Cancelled,
    }
}

pub fn task_pb(region: &str, request: &Request, task: &Task) -> pb::Task {
    pb::Task {
        id: task_id(region, request.id, &task.key),
        request_id: ids::format_id(region, request.id),
        key: task.key.clone(),
        name: task.name.clone(),
        stage: task.stage as i32,
        group_id: task.group.clone(),
        automated: task.automated,
        automation: task.automation.clone(),
        state: task_state_pb(task.state) as i32,
        claimed_by: task.claimed_by.clone(),
        result: task.result.clone(),
        update_time: timestamp(task.updated_at),
    }
}

pub fn request_pb(region: &str, request: &Request) -> pb::Request {
    pb::Request {
        id: ids::format_id(region, request.id),
        number: request.number.clone(),
        offering_id: ids::format_id(region, request.offering_id),
        offering_version: request.offering_version,
        requester: request.requester.clone(),
        answers: request
            .answers
            .iter()
            .map(|(field, value)| pb::Answer {
                field: field.clone(),
                value: Some(value_pb(value)),
            })
            .collect(),
        state: request_state_pb(request.state) as i32,
        approvals: request.approvals.iter().map(approval_pb).collect(),
        tasks: request
            .tasks
            .iter()
            .map(|t| task_pb(region, request, t))
            .collect(),
        ticket_id: request.ticket_id.clone(),
        ticket_number: request.ticket_number.clone(),
        due_time: request.due_at.and_then(timestamp),
        version: request.version,
        tenant_id: request.tenant.clone(),
        create_time: timestamp(request.created_at),
        update_time: timestamp(request.updated_at),
        offering_name: localized_pb(&request.offering_name),
    }
}
