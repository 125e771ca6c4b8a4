//! Idempotent consumers (ARCHITECTURE §5, contract).
//!
//! A durable pull consumer with explicit acks. For each message the consumer opens a write
//! transaction, records `(consumer, ce-id)` in the service's inbox table and applies the handler's
//! effect in that same transaction, then commits and acks. A redelivered event finds its id already
//! recorded and is acked without a second effect. A failing handler is retried with back-off up to
//! `max_deliver` times; after the last attempt the event is copied to the dead-letter subject (with
//! the failure in a `desk-error` header) and terminated.

use std::time::Duration;

use async_nats::jetstream::{self, AckKind, consumer::pull};
use futures::{StreamExt, future::BoxFuture};
use sea_orm::{
    ConnectionTrait, DatabaseTransaction, DbErr,
    sea_query::{Alias, Expr, ExprTrait, Query},
};
use tokio_util::sync::CancellationToken;

use super::{
    envelope::{CloudEventAttributes, EventSource, IncomingEvent},
    migrations::inbox_table,
};
use crate::db::Db;

/// Why a handler did not apply an event.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// Might work later (a dependency is down): retried with back-off.
    #[error("retryable: {0}")]
    Retry(String),
    /// Will never work (undecodable, contradicts the model): dead-lettered at once.
    #[error("rejected: {0}")]
    Reject(String),
}

impl From<DbErr> for HandlerError {
    fn from(error: DbErr) -> Self {
        HandlerError::Retry(error.to_string())
    }
}

/// Applies one event inside the inbox transaction. Must not commit it.
pub trait EventHandler: Send + Sync + 'static {
    fn handle<'a>(
        &'a self,
        txn: &'a DatabaseTransaction,
        event: &'a IncomingEvent,
    ) -> BoxFuture<'a, Result<(), HandlerError>>;
}

/// Where and how a consumer reads.
#[derive(Debug, Clone)]
pub struct ConsumerSpec {
    /// The durable name, also the inbox's `consumer` column: unique per service.
    pub durable: String,
    /// The stream read from (often another service's: `DESK_EMEA_TICKETS`).
    pub stream: String,
    pub filter_subjects: Vec<String>,
    pub max_deliver: i64,
    /// Delay before the n-th retry; the last value repeats.
    pub backoff: Vec<Duration>,
    pub ack_wait: Duration,
}

impl ConsumerSpec {
    pub fn new(
        durable: impl Into<String>,
        stream: impl Into<String>,
        filter_subjects: Vec<String>,
    ) -> Self {
        Self {
            durable: durable.into(),
            stream: stream.into(),
            filter_subjects,
            max_deliver: 5,
            backoff: vec![
                Duration::from_millis(200),
                Duration::from_secs(1),
                Duration::from_secs(5),
                Duration::from_secs(30),
            ],
            ack_wait: Duration::from_secs(30),
        }
    }

    fn retry_delay(&self, delivered: i64) -> Duration {
        let index = usize::try_from(delivered.saturating_sub(1)).unwrap_or(0);
        self.backoff
            .get(index)
            .or(self.backoff.last())
            .copied()
            .unwrap_or(Duration::from_secs(1))
    }
}

/// What happened to one message; returned for tests and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    Applied,
    Duplicate,
    Retrying,
    DeadLettered,
}

/// A running consumer.
pub struct InboxConsumer<H> {
    db: Db,
    jetstream: jetstream::Context,
    /// The consuming service: owns the inbox table and the dead-letter subject.
    owner: EventSource,
    spec: ConsumerSpec,
    handler: H,
}

impl<H: EventHandler> InboxConsumer<H> {
    pub fn new(
        db: Db,
        jetstream: jetstream::Context,
        owner: EventSource,
        spec: ConsumerSpec,
        handler: H,
    ) -> Self {
        Self {
            db,
            jetstream,
            owner,
            spec,
            handler,
        }
    }

    /// Creates the durable consumer when missing (idempotent).
    pub async fn ensure(&self) -> anyhow::Result<jetstream::consumer::PullConsumer> {
        let stream = self.jetstream.get_stream(&self.spec.stream).await?;
        let config = pull::Config {
            durable_name: Some(self.spec.durable.clone()),
            filter_subjects: self.spec.filter_subjects.clone(),
            ack_policy: jetstream::consumer::AckPolicy::Explicit,
            ack_wait: self.spec.ack_wait,
            // One more than our own retries so the last attempt can dead-letter before the server gives up.
            max_deliver: self.spec.max_deliver + 1,
            ..Default::default()
        };
        Ok(stream
            .get_or_create_consumer(&self.spec.durable, config)
            .await?)
    }

    /// Consumes until `shutdown`, stopping at a message boundary.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let consumer = self.ensure().await?;
        let mut messages = consumer.messages().await?;
        loop {
            let next = tokio::select! {
                next = messages.next() => next,
                _ = shutdown.cancelled() => break,
            };
            let Some(message) = next else { break };
            let message = match message {
                Ok(message) => message,
                Err(error) => {
                    tracing::warn!(error = %error, consumer = %self.spec.durable, "consumer stream error");
                    continue;
                }
            };
            if let Err(error) = self.process(&message).await {
                tracing::warn!(error = %error, consumer = %self.spec.durable, "event left for redelivery");
            }
        }
        Ok(())
    }

    /// Handles one delivered message and acks, naks or dead-letters it.
    pub async fn process(&self, message: &jetstream::Message) -> anyhow::Result<Disposition> {
        let delivered = message.info().map(|info| info.delivered).unwrap_or(1);
        let Some(attributes) = message
            .headers
            .as_ref()
            .and_then(CloudEventAttributes::from_headers)
        else {
            self.dead_letter(message, "missing or malformed CloudEvents headers")
                .await?;
            return Ok(Disposition::DeadLettered);
        };
        let event = IncomingEvent {
            nats_subject: message.subject.to_string(),
            attributes,
            payload: message.payload.clone(),
            delivered,
        };
        let span = tracing::info_span!("consume", consumer = %self.spec.durable, event.id = %event.attributes.id, event.type = %event.attributes.ce_type);
        crate::telemetry::set_remote_parent(&span, event.attributes.traceparent.as_deref());
        let _entered = span.enter();

        match self.apply(&event).await {
            Ok(disposition) => {
                message.ack().await.map_err(|e| anyhow::anyhow!(e))?;
                Ok(disposition)
            }
            Err(HandlerError::Reject(reason)) => {
                self.dead_letter(message, &reason).await?;
                Ok(Disposition::DeadLettered)
            }
            Err(HandlerError::Retry(reason)) if delivered >= self.spec.max_deliver => {
                self.dead_letter(message, &reason).await?;
                Ok(Disposition::DeadLettered)
            }
            Err(HandlerError::Retry(reason)) => {
                tracing::info!(reason = %reason, delivered, "event will be retried");
                message
                    .ack_with(AckKind::Nak(Some(self.spec.retry_delay(delivered))))
                    .await
                    .map_err(|e| anyhow::anyhow!(e))?;
                Ok(Disposition::Retrying)
            }
        }
    }

    async fn apply(&self, event: &IncomingEvent) -> Result<Disposition, HandlerError> {
        let table = Alias::new(inbox_table(self.owner.service));
        let txn = self.db.begin_write().await?;
        let seen = Query::select()
            .column(Alias::new("event_id"))
            .from(table.clone())
            .and_where(Expr::col(Alias::new("consumer")).eq(self.spec.durable.as_str()))
            .and_where(Expr::col(Alias::new("event_id")).eq(event.attributes.id))
            .to_owned();
        if txn.query_one(&seen).await?.is_some() {
            return Ok(Disposition::Duplicate);
        }
        self.handler.handle(&txn, event).await?;
        let record = Query::insert()
            .into_table(table)
            .columns(["consumer", "event_id", "processed_at"].map(Alias::new))
            .values([
                Expr::value(self.spec.durable.clone()),
                Expr::value(event.attributes.id),
                Expr::value(chrono::Utc::now()),
            ])
            .map_err(|e| HandlerError::Retry(e.to_string()))?
            .to_owned();
        txn.execute(&record).await?;
        txn.commit().await?;
        Ok(Disposition::Applied)
    }

    async fn dead_letter(&self, message: &jetstream::Message, reason: &str) -> anyhow::Result<()> {
        let mut headers = message.headers.clone().unwrap_or_default();
        headers.insert("desk-error", super::envelope::header_safe(reason).as_str());
        headers.insert(
            "desk-original-subject",
            super::envelope::header_safe(message.subject.as_str()).as_str(),
        );
        // A fresh message id: the original's would be dropped as a duplicate if it came from our own stream.
        headers.insert(
            async_nats::header::NATS_MESSAGE_ID,
            format!("dlq-{}-{}", self.spec.durable, uuid::Uuid::now_v7()).as_str(),
        );
        let subject = self.owner.dead_letter_subject(&self.spec.durable);
        self.jetstream
            .publish_with_headers(subject, headers, message.payload.clone())
            .await?
            .await?;
        message
            .ack_with(AckKind::Term)
            .await
            .map_err(|e| anyhow::anyhow!(e))?;
        tracing::warn!(reason = %reason, consumer = %self.spec.durable, "event dead-lettered");
        Ok(())
    }
}
