//! CloudEvents 1.0 in binary content mode on NATS headers.

use async_nats::HeaderMap;
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// Who publishes: a service in a region. Builds subjects, types and sources consistently.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventSource {
    pub region: String,
    pub service: &'static str,
}

impl EventSource {
    pub fn new(region: impl Into<String>, service: &'static str) -> Self {
        Self {
            region: region.into(),
            service,
        }
    }

    /// `desk.<region>.<service>.<tenant>.<aggregate>.<event>`: the tenant is a subject token so
    /// that NATS permissions can give each tenant's integrator its own events only.
    pub fn subject(&self, tenant: &str, aggregate: &str, event: &str) -> String {
        format!(
            "desk.{}.{}.{tenant}.{aggregate}.{event}",
            self.region, self.service
        )
    }

    /// Everything this service publishes in this region for one tenant.
    pub fn tenant_subjects(&self, tenant: &str) -> String {
        format!("desk.{}.{}.{tenant}.>", self.region, self.service)
    }

    /// `desk.<service>.<aggregate>.<event>.v1`
    pub fn ce_type(&self, aggregate: &str, event: &str) -> String {
        format!("desk.{}.{aggregate}.{event}.v1", self.service)
    }

    /// `/desk/<region>/<service>`
    pub fn ce_source(&self) -> String {
        format!("/desk/{}/{}", self.region, self.service)
    }

    /// `DESK_<REGION>_<SERVICE>`
    pub fn stream_name(&self) -> String {
        format!(
            "DESK_{}_{}",
            self.region.to_uppercase(),
            self.service.to_uppercase()
        )
    }

    /// Everything this service publishes in this region.
    pub fn stream_subjects(&self) -> String {
        format!("desk.{}.{}.>", self.region, self.service)
    }

    /// Where a consumer of this service parks events it gave up on. The `_deadletter` token stands
    /// where a tenant does in event subjects and can never be a tenant id, so dead letters (which
    /// may hold any tenant's events) reach operators (`desk.*.<service>.>`) and no integrator.
    pub fn dead_letter_subject(&self, consumer: &str) -> String {
        format!(
            "desk.{}.{}._deadletter.{consumer}",
            self.region, self.service
        )
    }
}

/// An event a service is about to publish: the fact, its aggregate, and the protobuf body.
#[derive(Debug, Clone)]
pub struct OutgoingEvent {
    /// `ticket`, `problem`, `ci`...
    pub aggregate: &'static str,
    /// `created`, `status_changed`...
    pub event: &'static str,
    /// The aggregate's public id (`ce-subject`).
    pub aggregate_id: String,
    pub tenant: String,
    /// The encoded protobuf message named by the type.
    pub payload: Vec<u8>,
}

impl OutgoingEvent {
    pub fn new(
        aggregate: &'static str,
        event: &'static str,
        aggregate_id: impl Into<String>,
        tenant: impl Into<String>,
        message: &impl prost::Message,
    ) -> Self {
        Self {
            aggregate,
            event,
            aggregate_id: aggregate_id.into(),
            tenant: tenant.into(),
            payload: message.encode_to_vec(),
        }
    }
}

/// The CloudEvents attributes of a stored or received event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudEventAttributes {
    pub id: Uuid,
    pub source: String,
    pub ce_type: String,
    pub subject: String,
    pub tenant: String,
    pub time: DateTime<Utc>,
    pub traceparent: Option<String>,
}

impl CloudEventAttributes {
    /// The headers of the NATS message; `Nats-Msg-Id` equals `ce-id` so JetStream drops re-sends.
    pub fn to_headers(&self) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("ce-specversion", "1.0");
        headers.insert("ce-id", self.id.to_string().as_str());
        headers.insert("ce-source", self.source.as_str());
        headers.insert("ce-type", self.ce_type.as_str());
        headers.insert(
            "ce-time",
            self.time
                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
                .as_str(),
        );
        headers.insert("ce-subject", self.subject.as_str());
        headers.insert("ce-tenant", self.tenant.as_str());
        headers.insert("Content-Type", "application/protobuf");
        headers.insert(
            async_nats::header::NATS_MESSAGE_ID,
            self.id.to_string().as_str(),
        );
        if let Some(traceparent) = &self.traceparent {
            headers.insert("traceparent", header_safe(traceparent).as_str());
        }
        headers
    }

    /// Reads the attributes back; `None` when a required header is missing or malformed.
    pub fn from_headers(headers: &HeaderMap) -> Option<Self> {
        let get = |name: &str| headers.get(name).map(|v| v.as_str().to_owned());
        if get("ce-specversion")? != "1.0" {
            return None;
        }
        Some(Self {
            id: Uuid::parse_str(&get("ce-id")?).ok()?,
            source: get("ce-source")?,
            ce_type: get("ce-type")?,
            subject: get("ce-subject").unwrap_or_default(),
            tenant: get("ce-tenant").unwrap_or_default(),
            time: DateTime::parse_from_rfc3339(&get("ce-time")?)
                .ok()?
                .with_timezone(&Utc),
            traceparent: get("traceparent"),
        })
    }
}

/// A header value NATS will accept: async-nats panics on line breaks in header values, and values
/// here can come from free text (a failure reason), so control characters become spaces and the
/// length is capped.
pub fn header_safe(value: &str) -> String {
    const MAX_CHARS: usize = 1024;
    value
        .chars()
        .take(MAX_CHARS)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// An event as a consumer receives it.
#[derive(Debug, Clone)]
pub struct IncomingEvent {
    pub nats_subject: String,
    pub attributes: CloudEventAttributes,
    pub payload: bytes::Bytes,
    /// How many times JetStream has delivered it (1 on the first try).
    pub delivered: i64,
}

impl IncomingEvent {
    pub fn decode<M: prost::Message + Default>(&self) -> Result<M, prost::DecodeError> {
        M::decode(self.payload.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_values_lose_their_line_breaks() {
        assert_eq!(header_safe("line one\r\nline two"), "line one  line two");
        assert_eq!(header_safe(&"x".repeat(5000)).len(), 1024);
    }

    #[test]
    fn names_follow_the_event_contract() {
        let source = EventSource::new("emea", "tickets");
        assert_eq!(
            source.subject("acme", "ticket", "created"),
            "desk.emea.tickets.acme.ticket.created"
        );
        assert_eq!(source.tenant_subjects("acme"), "desk.emea.tickets.acme.>");
        assert_eq!(
            source.dead_letter_subject("sla-tickets"),
            "desk.emea.tickets._deadletter.sla-tickets"
        );
        assert_eq!(
            source.ce_type("ticket", "created"),
            "desk.tickets.ticket.created.v1"
        );
        assert_eq!(source.ce_source(), "/desk/emea/tickets");
        assert_eq!(source.stream_name(), "DESK_EMEA_TICKETS");
        assert_eq!(source.stream_subjects(), "desk.emea.tickets.>");
    }

    #[test]
    fn attributes_round_trip_through_headers() {
        let attributes = CloudEventAttributes {
            id: Uuid::now_v7(),
            source: "/desk/emea/tickets".into(),
            ce_type: "desk.tickets.ticket.created.v1".into(),
            subject: "emea-0192".into(),
            tenant: "acme".into(),
            time: DateTime::parse_from_rfc3339("2026-11-25T10:00:00.123456Z")
                .expect("time")
                .with_timezone(&Utc),
            traceparent: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into()),
        };
        let headers = attributes.to_headers();
        assert_eq!(
            headers
                .get(async_nats::header::NATS_MESSAGE_ID)
                .map(|v| v.as_str().to_owned()),
            Some(attributes.id.to_string())
        );
        assert_eq!(
            CloudEventAttributes::from_headers(&headers),
            Some(attributes)
        );
    }
}
