//! The service request ticket of each request, in the tickets service: on the catalog's own
//! `request.submitted` the ticket is made through `CreateTicket` with a service token (the
//! requester's, typed `service_request`, the request's id as its idempotency key, so a
//! redelivery answers the same ticket) and its id and number are written on the request; on
//! `request.fulfilled` the ticket is resolved `fulfilled` (which asks the requester for CSAT).
//!
//! A consumer of the catalog's own stream that calls another service, as the change service
//! does for CI updates (durable `catalog-tickets`, one event per transaction so a retry never
//! repeats another event's calls). The ticket is written by the tickets service in its own
//! database: doing it in a tickets-side consumer's transaction would need the tickets store to
//! write through a consumer's transaction, which it does not (and on SQLite the consumer's
//! writer lock would block the create).

use std::sync::Arc;

use desk_kit::{
    calls::{CallContext, CallError, ServiceCalls},
    events::{Effect, Handle, HandlerError, IncomingEvent},
};
use desk_proto::{
    catalog::v1 as pb,
    tickets::v1::{self as tickets, ticket_service_client::TicketServiceClient},
};

use crate::{
    api::{ApiFailure, CatalogApi, convert},
    domain::{Localized, request::Request},
};

pub const DURABLE: &str = "catalog-tickets";
pub const SUBMITTED: &str = "desk.catalog.request.submitted.v1";
pub const FULFILLED: &str = "desk.catalog.request.fulfilled.v1";

pub fn subjects(region: &str) -> Vec<String> {
    ["submitted", "fulfilled"]
        .iter()
        .map(|event| format!("desk.{region}.catalog.*.request.{event}"))
        .collect()
}

pub struct TicketHandler {
    pub api: CatalogApi,
    pub calls: Arc<ServiceCalls>,
}

fn call_failed(error: CallError) -> HandlerError {
    if error.is_retryable() {
        HandlerError::Retry(error.to_string())
    } else {
        HandlerError::Reject(error.to_string())
    }
}

fn failed(error: ApiFailure) -> HandlerError {
    match error {
        ApiFailure::NotFound(what) => HandlerError::Reject(format!("{what} not found")),
        other => HandlerError::Retry(other.to_string()),
    }
}

/// What the ticket says of the request: its number, offering and answers.
fn description(request: &Request) -> String {
    let mut text = format!(
        "Catalog request {} for {}.\n",
        request.number,
        Localized::pick(&request.offering_name, "en")
    );
    for (field, value) in &request.answers {
        let value = match value {
            crate::domain::form::Value::Text(t) => t.clone(),
            crate::domain::form::Value::Number(n) => n.to_string(),
            crate::domain::form::Value::Flag(f) => f.to_string(),
            crate::domain::form::Value::Choices(c) => c.join(", "),
        };
        text.push_str(&format!("{field}: {value}\n"));
    }
    text.chars().take(8000).collect()
}

impl TicketHandler {
    async fn request(
        &self,
        effect: &Effect<'_>,
        event: &IncomingEvent,
        message: &pb::RequestEvent,
    ) -> Result<Request, HandlerError> {
        let id = message
            .request
            .as_ref()
            .and_then(|r| convert::id_of(self.api.region(), &r.id))
            .ok_or_else(|| HandlerError::Reject("no request id of this region".into()))?;
        self.api
            .store()
            .request(effect.txn(), &event.attributes.tenant, id)
            .await
            .map_err(|e| HandlerError::Retry(e.to_string()))?
            .ok_or_else(|| HandlerError::Reject("no such request".into()))
    }

    async fn open(
        &self,
        effect: &Effect<'_>,
        event: &IncomingEvent,
        message: pb::RequestEvent,
    ) -> Result<(), HandlerError> {
        let request = self.request(effect, event, &message).await?;
        if !request.ticket_id.is_empty() {
            return Ok(());
        }
        let tenant = &event.attributes.tenant;
        let context = CallContext::as_service(tenant.clone());
        let mut client =
            TicketServiceClient::new(self.calls.channel("tickets").map_err(call_failed)?);
        let title = format!(
            "{} ({})",
            Localized::pick(&request.offering_name, "en"),
            request.number
        );
        let ticket = client
            .create_ticket(
                self.calls
                    .request(
                        &context,
                        tickets::CreateTicketRequest {
                            r#type: tickets::TicketType::ServiceRequest as i32,
                            title: title.chars().take(200).collect(),
                            description: description(&request),
                            requester_id: request.requester.clone(),
                            channel: tickets::Channel::Portal as i32,
                            category: "catalog".into(),
                            idempotency_key: format!("catalog-request-{}", request.id),
                            ..Default::default()
                        },
                    )
                    .map_err(call_failed)?,
            )
            .await
            .map_err(|status| call_failed(status.into()))?
            .into_inner()
            .ticket
            .ok_or_else(|| HandlerError::Retry("the tickets service answered no ticket".into()))?;
        let now = effect.now();
        let (_, events) = self
            .api
            .modify(
                effect.txn(),
                tenant,
                request.id,
                &crate::events::timers::actor(),
                now,
                |r, _, _| {
                    r.link_ticket(&ticket.id, &ticket.number, now);
                    Ok(Vec::new())
                },
            )
            .await
            .map_err(failed)?;
        effect
            .publish_many(events)
            .await
            .map_err(|e| HandlerError::Retry(e.to_string()))
    }

    async fn resolve(
        &self,
        effect: &Effect<'_>,
        event: &IncomingEvent,
        message: pb::RequestEvent,
    ) -> Result<(), HandlerError> {
        let request = self.request(effect, event, &message).await?;
        if request.ticket_id.is_empty() {
            // `request.submitted` comes first on the stream; its ticket is being made.
            return Err(HandlerError::Retry("the request has no ticket yet".into()));
        }
        let context = CallContext::as_service(event.attributes.tenant.clone());
        let mut client =
            TicketServiceClient::new(self.calls.channel("tickets").map_err(call_failed)?);
        let ticket = client
            .get_ticket(
                self.calls
                    .request(
                        &context,
                        tickets::GetTicketRequest {
                            id: request.ticket_id.clone(),
                        },
                    )
                    .map_err(call_failed)?,
            )
            .await
            .map_err(|status| call_failed(status.into()))?
            .into_inner()
            .ticket
            .ok_or_else(|| HandlerError::Retry("the tickets service answered no ticket".into()))?;
        let done = [
            tickets::TicketStatus::Resolved as i32,
            tickets::TicketStatus::Closed as i32,
        ];
        if done.contains(&ticket.status) {
            return Ok(());
        }
        let notes: Vec<String> = request
            .tasks
            .iter()
            .map(|t| format!("{}: {}", t.name, t.result))
            .collect();
        client
            .resolve_ticket(
                self.calls
                    .request(
                        &context,
                        tickets::ResolveTicketRequest {
                            id: ticket.id,
                            expected_version: ticket.version,
                            resolution_code: "fulfilled".into(),
                            resolution_notes: format!(
                                "Fulfilled through the catalog.\n{}",
                                notes.join("\n")
                            )
                            .chars()
                            .take(2000)
                            .collect(),
                        },
                    )
                    .map_err(call_failed)?,
            )
            .await
            .map_err(|status| call_failed(status.into()))?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl Handle<pb::RequestEvent> for TicketHandler {
    async fn handle(
        &self,
        effect: &Effect<'_>,
        event: &IncomingEvent,
        message: pb::RequestEvent,
    ) -> Result<(), HandlerError> {
        match event.attributes.ce_type.as_str() {
            SUBMITTED => self.open(effect, event, message).await,
            FULFILLED => self.resolve(effect, event, message).await,
            _ => Ok(()),
        }
    }
}
