//! What the service keeps: the aggregates users write (rules, templates, preferences, webhook
//! endpoints), what it projects from the directory and tickets (people, teams, tickets), and
//! deliveries with their payloads. Stored whole as JSON beside the columns queries use.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::{
    preferences::Preferences,
    rules::{Channel, Rule},
    templates::TemplateSource,
    webhook::Secret,
};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredRule {
    pub id: Uuid,
    pub version: i64,
    pub rule: Rule,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredTemplate {
    pub id: Uuid,
    pub event_type: String,
    pub channel: Channel,
    pub locale: String,
    pub version: i64,
    pub source: TemplateSource,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct StoredPreferences {
    pub person_id: String,
    pub version: i64,
    pub preferences: Preferences,
}

/// A signing secret as stored: the key's `whsec_` text, and when it stops signing (set on the
/// previous secret during a rotation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EndpointSecret {
    pub secret: String,
    pub expires_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Endpoint {
    pub id: Uuid,
    pub url: String,
    pub event_types: Vec<String>,
    pub exclude_actor_subjects: Vec<String>,
    pub enabled: bool,
    pub version: i64,
    /// The current secret first; the previous one while a rotation lasts.
    pub secrets: Vec<EndpointSecret>,
}

impl Endpoint {
    /// Whether the endpoint wants an event of `event_type` caused by `actor` (loop prevention:
    /// an integrator's own changes do not come back to it).
    pub fn wants(&self, event_type: &str, actor: Option<&str>) -> bool {
        self.enabled
            && (self.event_types.is_empty()
                || self
                    .event_types
                    .iter()
                    .any(|t| super::rules::type_matches(t, event_type)))
            && !actor.is_some_and(|a| self.exclude_actor_subjects.iter().any(|x| x == a))
    }

    /// The secrets that sign at `now`: the current one, and the previous one until it expires.
    pub fn signing_secrets(&self, now: DateTime<Utc>) -> Vec<Secret> {
        self.secrets
            .iter()
            .filter(|s| s.expires_at.is_none_or(|t| now < t))
            .filter_map(|s| Secret::parse(&s.secret))
            .collect()
    }
}

/// A person as the directory last said.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Person {
    pub id: String,
    pub subject: String,
    pub display_name: String,
    pub email: String,
    pub phone: String,
    pub locale: String,
    pub time_zone: String,
    pub active: bool,
}

/// What is sent, rendered when the notification was made (in the recipient's language).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Payload {
    Email {
        to: String,
        subject: String,
        text: String,
        html: String,
        message_id: String,
        in_reply_to: Option<String>,
        references: Option<String>,
    },
    Sms {
        to: String,
        body: String,
    },
    InApp {
        title: String,
        body: String,
    },
    Webhook {
        /// The JSON body, exactly as signed.
        body: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    Pending,
    Held,
    Delivered,
    Dead,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Held => "held",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Dead => "dead",
        }
    }

    pub fn parse(text: &str) -> Option<DeliveryStatus> {
        [
            DeliveryStatus::Pending,
            DeliveryStatus::Held,
            DeliveryStatus::Delivered,
            DeliveryStatus::Dead,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    pub attempt: u32,
    pub at: DateTime<Utc>,
    pub response_code: i32,
    pub latency_ms: i64,
    pub error: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    pub id: Uuid,
    pub tenant: String,
    pub event_id: Uuid,
    pub event_type: String,
    pub channel: Channel,
    pub person_id: Option<String>,
    pub endpoint_id: Option<Uuid>,
    pub ticket_id: Option<String>,
    /// Webhooks of one endpoint about one aggregate go in order.
    pub aggregate: String,
    pub coalesce_key: Option<String>,
    pub status: DeliveryStatus,
    pub attempts: Vec<Attempt>,
    pub due_at: DateTime<Utc>,
    pub burst_start: DateTime<Utc>,
    /// Notifications folded into this one (1 when alone).
    pub folded: u32,
    pub created_at: DateTime<Utc>,
    pub payload: Payload,
}

impl Delivery {
    pub fn subject(&self) -> String {
        match &self.payload {
            Payload::Email { subject, .. } => subject.clone(),
            Payload::InApp { title, .. } => title.clone(),
            Payload::Sms { body, .. } => body.clone(),
            Payload::Webhook { .. } => self.event_type.clone(),
        }
    }
}

/// The variables templates see, plus what recipients are resolved from.
#[derive(Debug, Clone, PartialEq)]
pub struct EventFacts {
    pub event_id: Uuid,
    pub event_type: String,
    pub tenant: String,
    pub time: DateTime<Utc>,
    pub aggregate: String,
    pub ticket_id: Option<String>,
    pub actor_subject: Option<String>,
    pub requester: Option<String>,
    pub assignee: Option<String>,
    pub group: Option<String>,
    pub watchers: Vec<String>,
    /// `ticket`, `actor`, `comment`, `note`, `changes` (locale-neutral).
    pub variables: Value,
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn endpoint() -> Endpoint {
        Endpoint {
            id: Uuid::nil(),
            url: "https://x.example/h".into(),
            event_types: vec!["desk.tickets.*".into()],
            exclude_actor_subjects: vec!["integration-bot".into()],
            enabled: true,
            version: 1,
            secrets: vec![
                EndpointSecret {
                    secret: Secret::from_bytes(vec![1; 32]).expect("len").encoded(),
                    expires_at: None,
                },
                EndpointSecret {
                    secret: Secret::from_bytes(vec![2; 32]).expect("len").encoded(),
                    expires_at: Utc.timestamp_opt(100, 0).single(),
                },
            ],
        }
    }

    #[test]
    fn the_loop_filter_drops_the_integrators_own_changes() {
        let e = endpoint();
        assert!(e.wants("desk.tickets.ticket.updated.v1", Some("anna")));
        assert!(!e.wants("desk.tickets.ticket.updated.v1", Some("integration-bot")));
        assert!(e.wants("desk.tickets.ticket.updated.v1", None));
        assert!(!e.wants("desk.change.change.created.v1", Some("anna")));
        let mut off = e.clone();
        off.enabled = false;
        assert!(!off.wants("desk.tickets.ticket.updated.v1", None));
    }

    #[test]
    fn the_previous_secret_signs_until_it_expires() {
        let e = endpoint();
        let before = Utc.timestamp_opt(99, 0).single().expect("valid");
        let after = Utc.timestamp_opt(100, 0).single().expect("valid");
        assert_eq!(e.signing_secrets(before).len(), 2);
        assert_eq!(e.signing_secrets(after).len(), 1);
    }

    #[test]
    fn statuses_round_trip() {
        for s in ["pending", "held", "delivered", "dead"] {
            assert_eq!(DeliveryStatus::parse(s).map(|d| d.as_str()), Some(s));
        }
        assert_eq!(DeliveryStatus::parse("lost"), None);
    }
}
