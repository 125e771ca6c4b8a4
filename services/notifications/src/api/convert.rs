//! Between the wire and the model: proto messages parsed into domain types (every problem a
//! field violation), and the model back into proto messages.

use chrono::{DateTime, Utc};
use desk_kit::error::FieldViolation;
use desk_proto::notifications::v1 as pb;

use crate::{
    domain::{
        email,
        model::{
            Delivery, DeliveryStatus, Endpoint, StoredPreferences, StoredRule, StoredTemplate,
        },
        preferences::{ChannelPreference, Preferences, QuietHours, parse_local_time, parse_zone},
        rules::{Channel, Condition, Operator, RecipientRole, Rule},
        templates::{self, TemplateSource},
        webhook,
    },
    store::FeedItem,
};

pub fn timestamp(t: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: t.timestamp_subsec_nanos() as i32,
    }
}

pub fn channel_pb(c: Channel) -> i32 {
    (match c {
        Channel::Email => pb::NotificationChannel::Email,
        Channel::InApp => pb::NotificationChannel::InApp,
        Channel::Sms => pb::NotificationChannel::Sms,
        Channel::Webhook => pb::NotificationChannel::Webhook,
    }) as i32
}

pub fn channel(value: i32) -> Option<Channel> {
    match pb::NotificationChannel::try_from(value).ok()? {
        pb::NotificationChannel::Email => Some(Channel::Email),
        pb::NotificationChannel::InApp => Some(Channel::InApp),
        pb::NotificationChannel::Sms => Some(Channel::Sms),
        pb::NotificationChannel::Webhook => Some(Channel::Webhook),
        pb::NotificationChannel::Unspecified => None,
    }
}

fn role_pb(r: RecipientRole) -> i32 {
    (match r {
        RecipientRole::Requester => pb::RecipientRole::Requester,
        RecipientRole::Assignee => pb::RecipientRole::Assignee,
        RecipientRole::AssignmentGroup => pb::RecipientRole::AssignmentGroup,
        RecipientRole::Watchers => pb::RecipientRole::Watchers,
        RecipientRole::GroupManager => pb::RecipientRole::GroupManager,
        RecipientRole::Approvers => pb::RecipientRole::Approvers,
        RecipientRole::CabMembers => pb::RecipientRole::CabMembers,
        RecipientRole::Subscribers => pb::RecipientRole::Subscribers,
    }) as i32
}

fn role(value: i32) -> Option<RecipientRole> {
    Some(match pb::RecipientRole::try_from(value).ok()? {
        pb::RecipientRole::Requester => RecipientRole::Requester,
        pb::RecipientRole::Assignee => RecipientRole::Assignee,
        pb::RecipientRole::AssignmentGroup => RecipientRole::AssignmentGroup,
        pb::RecipientRole::Watchers => RecipientRole::Watchers,
        pb::RecipientRole::GroupManager => RecipientRole::GroupManager,
        pb::RecipientRole::Approvers => RecipientRole::Approvers,
        pb::RecipientRole::CabMembers => RecipientRole::CabMembers,
        pb::RecipientRole::Subscribers => RecipientRole::Subscribers,
        pb::RecipientRole::Unspecified => return None,
    })
}

fn operator_pb(o: Operator) -> i32 {
    (match o {
        Operator::Equals => pb::ConditionOperator::Equals,
        Operator::NotEquals => pb::ConditionOperator::NotEquals,
        Operator::LessOrEqual => pb::ConditionOperator::LessOrEqual,
        Operator::GreaterOrEqual => pb::ConditionOperator::GreaterOrEqual,
    }) as i32
}

fn operator(value: i32) -> Option<Operator> {
    Some(match pb::ConditionOperator::try_from(value).ok()? {
        pb::ConditionOperator::Equals => Operator::Equals,
        pb::ConditionOperator::NotEquals => Operator::NotEquals,
        pb::ConditionOperator::LessOrEqual => Operator::LessOrEqual,
        pb::ConditionOperator::GreaterOrEqual => Operator::GreaterOrEqual,
        pb::ConditionOperator::Unspecified => return None,
    })
}

/// An event type pattern: a `ce-type` (`desk.<service>.<aggregate>.<event>.v1`), a prefix ending
/// in `*`, or `*` alone.
fn valid_event_type(t: &str) -> bool {
    let body = t.strip_suffix('*').unwrap_or(t);
    (t == "*" || body.starts_with("desk."))
        && body
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '_')
}

pub fn parse_rule(rule: Option<pb::Rule>, v: &mut Vec<FieldViolation>) -> Rule {
    let r = rule.unwrap_or_default();
    if r.name.trim().is_empty() {
        v.push(FieldViolation::new("rule.name", "must not be empty"));
    }
    if r.event_types.is_empty() {
        v.push(FieldViolation::new(
            "rule.event_types",
            "name at least one event type",
        ));
    }
    for (i, t) in r.event_types.iter().enumerate() {
        if !valid_event_type(t) {
            v.push(FieldViolation::new(format!("rule.event_types[{i}]"), "is not an event type (desk.<service>.<aggregate>.<event>.v1, or a prefix ending in *)"));
        }
    }
    let mut conditions = Vec::new();
    for (i, c) in r.conditions.iter().enumerate() {
        if c.field.trim().is_empty() {
            v.push(FieldViolation::new(
                format!("rule.conditions[{i}].field"),
                "must not be empty",
            ));
        }
        match operator(c.operator) {
            Some(op) => conditions.push(Condition {
                field: c.field.clone(),
                operator: op,
                value: c.value.clone(),
            }),
            None => v.push(FieldViolation::new(
                format!("rule.conditions[{i}].operator"),
                "must be set",
            )),
        }
    }
    let mut recipients = Vec::new();
    for (i, r) in r.recipients.iter().enumerate() {
        match role(*r) {
            Some(role) => recipients.push(role),
            None => v.push(FieldViolation::new(
                format!("rule.recipients[{i}]"),
                "is not a recipient role",
            )),
        }
    }
    let mut channels = Vec::new();
    for (i, c) in r.channels.iter().enumerate() {
        match channel(*c) {
            Some(Channel::Webhook) => v.push(FieldViolation::new(
                format!("rule.channels[{i}]"),
                "webhooks are endpoints, not a channel of people",
            )),
            Some(c) => channels.push(c),
            None => v.push(FieldViolation::new(
                format!("rule.channels[{i}]"),
                "is not a channel",
            )),
        }
    }
    if r.channels.is_empty() {
        v.push(FieldViolation::new(
            "rule.channels",
            "name at least one channel",
        ));
    }
    if recipients.is_empty() && r.recipients.is_empty() {
        v.push(FieldViolation::new(
            "rule.recipients",
            "name at least one recipient role",
        ));
    }
    if recipients.contains(&RecipientRole::Subscribers) && r.subscriber_ids.is_empty() {
        v.push(FieldViolation::new(
            "rule.subscriber_ids",
            "name the subscribers",
        ));
    }
    Rule {
        name: r.name.trim().to_owned(),
        event_types: r.event_types,
        conditions,
        recipients,
        subscriber_ids: r.subscriber_ids,
        channels,
        urgent: r.urgent,
        enabled: r.enabled,
        built_in: false,
    }
}

pub fn rule_pb(r: &StoredRule) -> pb::Rule {
    pb::Rule {
        id: r.id.to_string(),
        name: r.rule.name.clone(),
        event_types: r.rule.event_types.clone(),
        conditions: r
            .rule
            .conditions
            .iter()
            .map(|c| pb::Condition {
                field: c.field.clone(),
                operator: operator_pb(c.operator),
                value: c.value.clone(),
            })
            .collect(),
        recipients: r.rule.recipients.iter().map(|x| role_pb(*x)).collect(),
        subscriber_ids: r.rule.subscriber_ids.clone(),
        channels: r.rule.channels.iter().map(|c| channel_pb(*c)).collect(),
        urgent: r.rule.urgent,
        enabled: r.rule.enabled,
        version: r.version,
        built_in: r.rule.built_in,
    }
}

/// A template with every problem named: event type, channel, locale, and the parts (syntax and
/// unknown variables).
pub fn parse_template(
    t: Option<pb::Template>,
    v: &mut Vec<FieldViolation>,
) -> Option<(String, Channel, String, TemplateSource)> {
    let t = t.unwrap_or_default();
    if !valid_event_type(&t.event_type) || t.event_type.contains('*') {
        v.push(FieldViolation::new(
            "template.event_type",
            "is not an event type (desk.<service>.<aggregate>.<event>.v1)",
        ));
    }
    let ch = channel(t.channel);
    match ch {
        None => v.push(FieldViolation::new("template.channel", "is not a channel")),
        Some(Channel::Webhook) => v.push(FieldViolation::new(
            "template.channel",
            "webhooks send the event itself, not a template",
        )),
        Some(_) => {}
    }
    let locale = templates::canonical_locale(&t.locale);
    if locale.is_none() {
        v.push(FieldViolation::new(
            "template.locale",
            "is not a BCP 47 locale",
        ));
    }
    let source = TemplateSource {
        subject: t.subject,
        text_body: t.text_body,
        html_body: (!t.html_body.is_empty()).then_some(t.html_body),
    };
    for problem in templates::validate(&source) {
        v.push(FieldViolation::new(
            format!("template.{}", problem.field),
            problem.message,
        ));
    }
    Some((t.event_type, ch?, locale?, source))
}

pub fn template_pb(t: &StoredTemplate) -> pb::Template {
    pb::Template {
        id: t.id.to_string(),
        event_type: t.event_type.clone(),
        channel: channel_pb(t.channel),
        locale: t.locale.clone(),
        subject: t.source.subject.clone(),
        text_body: t.source.text_body.clone(),
        html_body: t.source.html_body.clone().unwrap_or_default(),
        version: t.version,
    }
}

pub fn parse_preferences(p: Option<pb::Preferences>, v: &mut Vec<FieldViolation>) -> Preferences {
    let p = p.unwrap_or_default();
    let mut channels = Vec::new();
    for (i, c) in p.channels.iter().enumerate() {
        if c.kind != "*" && !valid_event_type(&c.kind) {
            v.push(FieldViolation::new(
                format!("preferences.channels[{i}].kind"),
                "is an event type or *",
            ));
        }
        let mut list = Vec::new();
        for (j, x) in c.channels.iter().enumerate() {
            match channel(*x) {
                Some(Channel::Webhook) | None => v.push(FieldViolation::new(
                    format!("preferences.channels[{i}].channels[{j}]"),
                    "is not a channel that reaches a person",
                )),
                Some(ch) => list.push(ch),
            }
        }
        channels.push(ChannelPreference {
            kind: c.kind.clone(),
            channels: list,
        });
    }
    let quiet_hours = match p.quiet_hours {
        None => None,
        Some(q) => {
            let start = parse_local_time(&q.start);
            let end = parse_local_time(&q.end);
            if start.is_none() {
                v.push(FieldViolation::new(
                    "preferences.quiet_hours.start",
                    "is not a local time HH:MM",
                ));
            }
            if end.is_none() {
                v.push(FieldViolation::new(
                    "preferences.quiet_hours.end",
                    "is not a local time HH:MM",
                ));
            }
            let zone = if q.time_zone.is_empty() {
                None
            } else {
                let z = parse_zone(&q.time_zone);
                if z.is_none() {
                    v.push(FieldViolation::new(
                        "preferences.quiet_hours.time_zone",
                        "is not an IANA time zone",
                    ));
                }
                z
            };
            match (start, end) {
                (Some(start), Some(end)) => Some(QuietHours { start, end, zone }),
                _ => None,
            }
        }
    };
    let digest_time = if p.digest_time.is_empty() {
        None
    } else {
        let t = parse_local_time(&p.digest_time);
        if t.is_none() {
            v.push(FieldViolation::new(
                "preferences.digest_time",
                "is not a local time HH:MM",
            ));
        }
        t
    };
    let locale = if p.locale.is_empty() {
        None
    } else {
        let l = templates::canonical_locale(&p.locale);
        if l.is_none() {
            v.push(FieldViolation::new(
                "preferences.locale",
                "is not a BCP 47 locale",
            ));
        }
        l
    };
    check_address("preferences.email", &p.email, v);
    Preferences {
        channels,
        quiet_hours,
        daily_digest: p.daily_digest,
        digest_time,
        locale,
        email: (!p.email.is_empty()).then_some(p.email),
    }
}

pub fn preferences_pb(p: &StoredPreferences) -> pb::Preferences {
    let prefs = &p.preferences;
    pb::Preferences {
        person_id: p.person_id.clone(),
        channels: prefs
            .channels
            .iter()
            .map(|c| pb::ChannelPreference {
                kind: c.kind.clone(),
                channels: c.channels.iter().map(|x| channel_pb(*x)).collect(),
            })
            .collect(),
        quiet_hours: prefs.quiet_hours.as_ref().map(|q| pb::QuietHours {
            start: q.start.format("%H:%M").to_string(),
            end: q.end.format("%H:%M").to_string(),
            time_zone: q.zone.map(|z| z.name().to_owned()).unwrap_or_default(),
        }),
        daily_digest: prefs.daily_digest,
        digest_time: prefs
            .digest_time
            .map(|t| t.format("%H:%M").to_string())
            .unwrap_or_default(),
        locale: prefs.locale.clone().unwrap_or_default(),
        version: p.version,
        email: prefs.email.clone().unwrap_or_default(),
    }
}

/// The URL and filters of an endpoint; the URL's host is checked against the SSRF ranges by the
/// caller (it needs name resolution).
pub fn parse_endpoint(
    e: &pb::WebhookEndpoint,
    v: &mut Vec<FieldViolation>,
) -> Option<webhook::Target> {
    for (i, t) in e.event_types.iter().enumerate() {
        if !valid_event_type(t) {
            v.push(FieldViolation::new(
                format!("endpoint.event_types[{i}]"),
                "is not an event type or a prefix ending in *",
            ));
        }
    }
    for (i, a) in e.exclude_actor_subjects.iter().enumerate() {
        if a.trim().is_empty() {
            v.push(FieldViolation::new(
                format!("endpoint.exclude_actor_subjects[{i}]"),
                "must not be empty",
            ));
        }
    }
    match webhook::parse_url(&e.url) {
        Ok(t) => Some(t),
        Err(why) => {
            v.push(FieldViolation::new("endpoint.url", why));
            None
        }
    }
}

pub fn endpoint_pb(e: &Endpoint, with_secret: bool) -> pb::WebhookEndpoint {
    pb::WebhookEndpoint {
        id: e.id.to_string(),
        url: e.url.clone(),
        event_types: e.event_types.clone(),
        exclude_actor_subjects: e.exclude_actor_subjects.clone(),
        enabled: e.enabled,
        version: e.version,
        secret: if with_secret {
            e.secrets
                .first()
                .map(|s| s.secret.clone())
                .unwrap_or_default()
        } else {
            String::new()
        },
        previous_secret_expire_time: e.secrets.get(1).and_then(|s| s.expires_at).map(timestamp),
    }
}

fn status_pb(s: DeliveryStatus) -> i32 {
    (match s {
        DeliveryStatus::Pending => pb::DeliveryStatus::Pending,
        DeliveryStatus::Held => pb::DeliveryStatus::Held,
        DeliveryStatus::Delivered => pb::DeliveryStatus::Delivered,
        DeliveryStatus::Dead => pb::DeliveryStatus::Dead,
    }) as i32
}

pub fn delivery_pb(d: &Delivery) -> pb::Delivery {
    pb::Delivery {
        id: d.id.to_string(),
        event_id: d.event_id.to_string(),
        event_type: d.event_type.clone(),
        channel: channel_pb(d.channel),
        person_id: d.person_id.clone().unwrap_or_default(),
        endpoint_id: d.endpoint_id.map(|e| e.to_string()).unwrap_or_default(),
        ticket_id: d.ticket_id.clone().unwrap_or_default(),
        status: status_pb(d.status),
        attempts: d.attempts.len() as i32,
        next_attempt_time: matches!(d.status, DeliveryStatus::Pending | DeliveryStatus::Held)
            .then(|| timestamp(d.due_at)),
        create_time: Some(timestamp(d.created_at)),
        log: d
            .attempts
            .iter()
            .map(|a| pb::DeliveryAttempt {
                attempt: a.attempt as i32,
                time: Some(timestamp(a.at)),
                response_code: a.response_code,
                latency_ms: a.latency_ms,
                error: a.error.clone(),
            })
            .collect(),
        subject: d.subject(),
    }
}

pub fn feed_pb(f: &FeedItem) -> pb::FeedItem {
    pb::FeedItem {
        sequence: f.sequence,
        id: f.id.to_string(),
        event_type: f.event_type.clone(),
        ticket_id: f.ticket_id.clone().unwrap_or_default(),
        title: f.title.clone(),
        body: f.body.clone(),
        read: f.read,
        create_time: Some(timestamp(f.created_at)),
    }
}

/// An e-mail address field, when one is given.
pub fn check_address(field: &str, address: &str, v: &mut Vec<FieldViolation>) {
    if !address.is_empty() && !email::valid_address(address) {
        v.push(FieldViolation::new(field, "is not an e-mail address"));
    }
}
