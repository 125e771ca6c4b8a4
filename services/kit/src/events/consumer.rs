//! Idempotent, supervised event consumers (ARCHITECTURE §5, contract).
//!
//! A [`Consumer`] reads one stream through a durable JetStream pull consumer with explicit acks and
//! applies each event through a [`Dispatcher`]. The events that are waiting when it reads (up to
//! `batch_size`) are applied in **one** transaction of the consuming service: every handler's writes,
//! the events it publishes (staged in the service's outbox, the relay woken on commit) and the
//! events' inbox rows commit together, and only then are the messages acknowledged. Each handler runs
//! inside a savepoint, so one failing event rolls back alone while the rest of the batch commits.
//!
//! A crash anywhere loses nothing and applies nothing twice: before the commit nothing happened
//! (the messages are delivered again after `ack_wait`); after it, the inbox recognises the
//! redelivered ids. A handler's [`HandlerError::Retry`] is retried with back-off up to
//! `max_deliver` deliveries; [`HandlerError::Reject`], a body that does not decode and a message
//! without CloudEvents headers are dead-lettered at once: copied to
//! `desk.<region>.<consuming service>._deadletter.<durable>` (in the consuming service's own
//! stream, with the reason in `desk-error`) and terminated. [`Consumer::replay_dead_letters`] runs
//! them through the handlers again once the cause is fixed.
//!
//! [`Consumer::spawn`] runs the consumer under a supervisor: a source stream that does not exist yet
//! (a service started before the one it consumes) is waited for with back-off; a lost consumer is
//! re-created; a worker that panics is restarted. Its [`ConsumerStatus`] is reported through gRPC
//! health under `desk.consumer.<durable>` (the service's own health does not depend on it: a
//! consumer waiting for another service must not get its pods restarted).

use std::{
    collections::HashSet,
    sync::Arc,
    time::{Duration, Instant},
};

use async_nats::jetstream::{
    self, AckKind,
    consumer::{AckPolicy, DeliverPolicy, PullConsumer, pull},
};
use futures::{FutureExt as _, StreamExt as _};
use sea_orm::{DbErr, TransactionTrait as _};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;
use uuid::Uuid;

use super::{
    Publisher, backoff,
    dispatch::{Dispatched, Dispatcher, Effect, HandlerError},
    envelope::{CloudEventAttributes, IncomingEvent, header_safe},
    inbox::Inbox,
};
use crate::{clock::SharedClock, settings::ConsumerSettings};

/// Where and how a consumer reads.
#[derive(Debug, Clone)]
pub struct ConsumerSpec {
    /// The durable name, also the inbox's `consumer` column and the dead-letter subject's last
    /// token. By convention `<consuming service>-<what for>` (`sla-ticket-clocks`): several
    /// services read the same stream, and durable names are unique per stream.
    pub durable: String,
    /// The stream read from, often another service's (`DESK_EMEA_TICKETS`).
    pub stream: String,
    pub filter_subjects: Vec<String>,
    /// Deliveries of an event whose handler asks to retry, before it is dead-lettered.
    pub max_deliver: i64,
    /// Delay before the n-th retry; the last value repeats.
    pub backoff: Vec<Duration>,
    pub ack_wait: Duration,
    /// Events applied in one transaction at most. 1 for handlers with effects outside the
    /// database (a call to another service), so one event's retry never repeats another's call.
    pub batch_size: usize,
    pub inbox_retention: chrono::Duration,
}

impl ConsumerSpec {
    pub fn new(
        durable: impl Into<String>,
        stream: impl Into<String>,
        filter_subjects: Vec<String>,
        settings: &ConsumerSettings,
    ) -> Self {
        Self {
            durable: durable.into(),
            stream: stream.into(),
            filter_subjects,
            max_deliver: settings.max_deliver.max(1),
            backoff: settings
                .backoff_ms
                .iter()
                .map(|ms| Duration::from_millis(*ms))
                .collect(),
            ack_wait: Duration::from_secs(settings.ack_wait_seconds.max(1)),
            batch_size: usize::try_from(settings.batch_size.max(1)).unwrap_or(1),
            inbox_retention: chrono::Duration::hours(
                i64::try_from(settings.inbox_retention_hours).unwrap_or(i64::MAX / 3_600_000),
            ),
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

/// What happened to one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    Applied,
    /// Its id was applied before (a redelivery or a re-publication): acknowledged, no effect.
    Duplicate,
    /// No handler for its type and the dispatcher skips those: acknowledged, no effect.
    Skipped,
    /// The handler asked to retry: delivered again after the back-off.
    Retrying,
    DeadLettered,
}

impl Disposition {
    fn name(self) -> &'static str {
        match self {
            Disposition::Applied => "applied",
            Disposition::Duplicate => "duplicate",
            Disposition::Skipped => "skipped",
            Disposition::Retrying => "retrying",
            Disposition::DeadLettered => "dead_lettered",
        }
    }
}

/// Where a supervised consumer is; gRPC health says SERVING only while `Consuming`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumerStatus {
    Starting,
    /// The source stream does not exist yet: its service has not started.
    WaitingForStream,
    Consuming,
    /// NATS or the database failed; retrying with back-off.
    Reconnecting,
    /// The worker panicked or stopped unexpectedly and is being started again.
    Restarting,
    Stopped,
}

/// A consumer's name and status, for health.
#[derive(Debug, Clone)]
pub struct ConsumerHealth {
    /// The gRPC health service name: `desk.consumer.<durable>`.
    pub health_name: String,
    pub status: watch::Receiver<ConsumerStatus>,
}

/// A consumer running under its supervisor.
pub struct SpawnedConsumer {
    /// Ends after the shutdown token is cancelled, at a batch boundary. Aborting it stops the
    /// consumer at once, as a crash would (the batch in flight rolls back).
    pub worker: tokio::task::JoinHandle<()>,
    pub health: ConsumerHealth,
}

/// The outcome of [`Consumer::replay_dead_letters`].
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReplayReport {
    /// Dead letters applied (or found already applied) and removed from the dead-letter subject.
    pub replayed: usize,
    /// Dead letters that failed again, kept for a later replay: (stream sequence, reason).
    pub still_failing: Vec<(u64, String)>,
}

/// A durable consumer of one stream, applying events through a [`Dispatcher`].
pub struct Consumer {
    publisher: Publisher,
    jetstream: jetstream::Context,
    spec: ConsumerSpec,
    dispatcher: Dispatcher,
    clock: SharedClock,
    inbox: Inbox,
    status: watch::Sender<ConsumerStatus>,
}

/// Why [`Consumer::ensure`] could not set the consumer up.
#[derive(Debug, thiserror::Error)]
pub enum EnsureError {
    #[error("stream {0} does not exist yet")]
    StreamMissing(String),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// One message after its headers were read. Most are events; boxing them to shrink the rare
/// `Unreadable` would cost an allocation per message.
#[allow(clippy::large_enum_variant)]
enum Parsed {
    Event(IncomingEvent),
    /// No (or malformed) CloudEvents headers: nothing to dispatch on.
    Unreadable,
}

/// One event's outcome inside the batch transaction.
enum Outcome {
    Applied,
    Duplicate,
    Skipped,
    Failed(HandlerError),
}

impl Consumer {
    /// A consumer for the service whose `publisher` it writes through: its inbox, outbox and
    /// dead-letter subject are that service's.
    pub fn new(
        publisher: Publisher,
        jetstream: jetstream::Context,
        spec: ConsumerSpec,
        dispatcher: Dispatcher,
        clock: SharedClock,
    ) -> Self {
        let inbox = Inbox::new(publisher.outbox().source().service, spec.durable.clone());
        Self {
            publisher,
            jetstream,
            spec,
            dispatcher,
            clock,
            inbox,
            status: watch::channel(ConsumerStatus::Starting).0,
        }
    }

    pub fn spec(&self) -> &ConsumerSpec {
        &self.spec
    }

    pub fn dead_letter_subject(&self) -> String {
        self.publisher
            .outbox()
            .source()
            .dead_letter_subject(&self.spec.durable)
    }

    /// Creates the durable consumer, or brings its configuration up to date (idempotent).
    pub async fn ensure(&self) -> Result<PullConsumer, EnsureError> {
        let stream = match self.jetstream.get_stream(&self.spec.stream).await {
            Ok(stream) => stream,
            Err(error) if is_stream_not_found(&error) => {
                return Err(EnsureError::StreamMissing(self.spec.stream.clone()));
            }
            Err(error) => return Err(anyhow::Error::from(error).into()),
        };
        let config = pull::Config {
            durable_name: Some(self.spec.durable.clone()),
            filter_subjects: self.spec.filter_subjects.clone(),
            ack_policy: AckPolicy::Explicit,
            ack_wait: self.spec.ack_wait,
            // Unlimited on the server: it would otherwise drop an event silently after its last
            // delivery, even one that failed only because our database was down. The consumer
            // counts deliveries of handler failures itself and dead-letters after `max_deliver`.
            max_deliver: -1,
            max_ack_pending: i64::try_from(self.spec.batch_size.saturating_mul(4))
                .unwrap_or(1000)
                .max(256),
            description: Some(format!("desk consumer {}", self.spec.durable)),
            ..Default::default()
        };
        stream
            .create_consumer(config)
            .await
            .map_err(|error| EnsureError::Other(error.into()))
    }

    /// Applies one batch of delivered messages in one transaction, then acknowledges, naks or
    /// dead-letters each. An error means the transaction did not commit: every message is left
    /// for redelivery after the back-off, and nothing was applied.
    pub async fn process(
        &self,
        messages: &[jetstream::Message],
    ) -> anyhow::Result<Vec<Disposition>> {
        let parsed: Vec<Parsed> = messages.iter().map(parse).collect();
        let events: Vec<&IncomingEvent> = parsed
            .iter()
            .filter_map(|p| match p {
                Parsed::Event(event) => Some(event),
                Parsed::Unreadable => None,
            })
            .collect();
        let outcomes = match self.apply(&events).await {
            Ok(outcomes) => outcomes,
            Err(error) => {
                for message in messages {
                    let delivered = delivered(message);
                    let _ = message
                        .ack_with(AckKind::Nak(Some(self.spec.retry_delay(delivered))))
                        .await;
                }
                return Err(anyhow::Error::from(error).context(format!(
                    "consumer {}: a batch of {} did not commit",
                    self.spec.durable,
                    messages.len()
                )));
            }
        };
        let mut outcomes = outcomes.into_iter();
        let mut dispositions = Vec::with_capacity(messages.len());
        for (message, parsed) in messages.iter().zip(&parsed) {
            let outcome = match parsed {
                Parsed::Unreadable => Outcome::Failed(HandlerError::Reject(
                    "missing or malformed CloudEvents headers".to_owned(),
                )),
                Parsed::Event(_) => {
                    outcomes
                        .next()
                        .unwrap_or(Outcome::Failed(HandlerError::Retry(
                            "no outcome for the event".to_owned(),
                        )))
                }
            };
            let disposition = self.settle(message, outcome).await?;
            metrics().record(&self.spec.durable, message, disposition);
            dispositions.push(disposition);
        }
        Ok(dispositions)
    }

    /// Acknowledges, naks or dead-letters one message after the batch committed.
    async fn settle(
        &self,
        message: &jetstream::Message,
        outcome: Outcome,
    ) -> anyhow::Result<Disposition> {
        let delivered = delivered(message);
        let disposition = match outcome {
            Outcome::Applied => Disposition::Applied,
            Outcome::Duplicate => Disposition::Duplicate,
            Outcome::Skipped => Disposition::Skipped,
            Outcome::Failed(HandlerError::Retry(reason)) if delivered < self.spec.max_deliver => {
                tracing::info!(consumer = %self.spec.durable, reason = %reason, delivered, "event will be retried");
                message
                    .ack_with(AckKind::Nak(Some(self.spec.retry_delay(delivered))))
                    .await
                    .map_err(|e| anyhow::anyhow!(e))?;
                return Ok(Disposition::Retrying);
            }
            Outcome::Failed(HandlerError::Retry(reason) | HandlerError::Reject(reason)) => {
                self.dead_letter(message, &reason).await?;
                return Ok(Disposition::DeadLettered);
            }
        };
        message.ack().await.map_err(|e| anyhow::anyhow!(e))?;
        Ok(disposition)
    }

    /// The heart of consuming: one transaction for the batch, a savepoint per event, inbox rows
    /// for the applied ones, one commit (which wakes the relay for the events handlers published).
    async fn apply(&self, events: &[&IncomingEvent]) -> Result<Vec<Outcome>, DbErr> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let now = self.clock.now();
        let txn = self.publisher.begin().await?;
        let ids: Vec<Uuid> = events.iter().map(|e| e.attributes.id).collect();
        let seen = self.inbox.already_applied(&*txn, &ids).await?;
        let mut in_batch = HashSet::with_capacity(events.len());
        let mut applied = Vec::with_capacity(events.len());
        let mut outcomes = Vec::with_capacity(events.len());
        for event in events {
            let id = event.attributes.id;
            // The same id twice in one batch (re-published outside the duplicate window): the
            // second copy is a duplicate of the first, unless the first failed.
            if seen.contains(&id) || !in_batch.insert(id) {
                outcomes.push(Outcome::Duplicate);
                continue;
            }
            let savepoint = txn.begin().await?;
            let effect = Effect::new(&savepoint, self.publisher.outbox(), now);
            let span = tracing::info_span!(
                "consume",
                consumer = %self.spec.durable,
                event.id = %id,
                event.type = %event.attributes.ce_type,
                event.delivered = event.delivered,
            );
            crate::telemetry::set_remote_parent(&span, event.attributes.traceparent.as_deref());
            let result = self
                .dispatcher
                .dispatch(&effect, event)
                .instrument(span)
                .await;
            match result {
                Ok(dispatched) => {
                    savepoint.commit().await?;
                    outcomes.push(match dispatched {
                        Dispatched::Applied => {
                            applied.push(id);
                            Outcome::Applied
                        }
                        Dispatched::Skipped => Outcome::Skipped,
                    });
                }
                Err(error) => {
                    savepoint.rollback().await?;
                    in_batch.remove(&id);
                    outcomes.push(Outcome::Failed(error));
                }
            }
        }
        self.inbox.record(&*txn, &applied, now).await?;
        self.publisher.commit(txn).await?;
        Ok(outcomes)
    }

    async fn dead_letter(&self, message: &jetstream::Message, reason: &str) -> anyhow::Result<()> {
        let mut headers = message.headers.clone().unwrap_or_default();
        headers.insert("desk-error", header_safe(reason).as_str());
        headers.insert(
            "desk-original-subject",
            header_safe(message.subject.as_str()).as_str(),
        );
        headers.insert("desk-consumer", self.spec.durable.as_str());
        // A fresh message id: the original's would be dropped as a duplicate if the event came
        // from our own stream.
        headers.insert(
            async_nats::header::NATS_MESSAGE_ID,
            format!("dlq-{}-{}", self.spec.durable, Uuid::now_v7()).as_str(),
        );
        self.jetstream
            .publish_with_headers(self.dead_letter_subject(), headers, message.payload.clone())
            .await?
            .await?;
        message
            .ack_with(AckKind::Term)
            .await
            .map_err(|e| anyhow::anyhow!(e))?;
        tracing::warn!(consumer = %self.spec.durable, reason = %reason, subject = %message.subject, "event dead-lettered");
        Ok(())
    }

    /// Runs up to `limit` dead letters of this consumer through its handlers again, oldest first,
    /// each in its own transaction. One that applies (or was applied meanwhile) is removed from
    /// the dead-letter subject; one that fails again stays there, with the reason reported.
    pub async fn replay_dead_letters(&self, limit: usize) -> anyhow::Result<ReplayReport> {
        let owner = self.publisher.outbox().source();
        let stream = self.jetstream.get_stream(owner.stream_name()).await?;
        let reader: PullConsumer = stream
            .create_consumer(pull::Config {
                filter_subject: self.dead_letter_subject(),
                deliver_policy: DeliverPolicy::All,
                ack_policy: AckPolicy::None,
                inactive_threshold: Duration::from_secs(60),
                ..Default::default()
            })
            .await?;
        let mut report = ReplayReport::default();
        let mut read = 0;
        while read < limit {
            let mut batch = reader
                .fetch()
                .max_messages(limit.saturating_sub(read).min(256))
                .messages()
                .await?;
            let mut fetched = 0;
            while let Some(message) = batch.next().await {
                let message = message.map_err(|e| anyhow::anyhow!(e))?;
                fetched += 1;
                let sequence = message
                    .info()
                    .map(|info| info.stream_sequence)
                    .map_err(|e| anyhow::anyhow!(e))?;
                match self.replay_one(&message).await? {
                    None => {
                        stream.delete_message(sequence).await?;
                        report.replayed += 1;
                    }
                    Some(reason) => report.still_failing.push((sequence, reason)),
                }
            }
            read += fetched;
            if fetched == 0 {
                break;
            }
        }
        // Ephemeral: it would go by itself after `inactive_threshold`; no need to keep it that long.
        let name = reader.cached_info().name.clone();
        let _ = stream.delete_consumer(&name).await;
        Ok(report)
    }

    /// Applies one dead letter; `Some(reason)` when it failed again.
    async fn replay_one(&self, message: &jetstream::Message) -> anyhow::Result<Option<String>> {
        let headers = message.headers.as_ref();
        let Some(attributes) = headers.and_then(CloudEventAttributes::from_headers) else {
            return Ok(Some("missing or malformed CloudEvents headers".to_owned()));
        };
        let original_subject = headers
            .and_then(|h| h.get("desk-original-subject"))
            .map(|v| v.as_str().to_owned())
            .unwrap_or_else(|| message.subject.to_string());
        let event = IncomingEvent {
            nats_subject: original_subject,
            attributes,
            payload: message.payload.clone(),
            delivered: 1,
        };
        let mut outcomes = self.apply(&[&event]).await?;
        Ok(match outcomes.pop() {
            Some(Outcome::Applied | Outcome::Duplicate | Outcome::Skipped) => None,
            Some(Outcome::Failed(HandlerError::Retry(reason) | HandlerError::Reject(reason))) => {
                Some(reason)
            }
            None => Some("no outcome for the event".to_owned()),
        })
    }

    /// Removes this consumer's inbox rows older than the retention.
    pub async fn purge_inbox(&self) -> Result<u64, DbErr> {
        let cutoff = self.clock.now() - self.spec.inbox_retention;
        let txn = self.publisher.begin().await?;
        let removed = self.inbox.purge(&*txn, cutoff).await?;
        txn.commit().await?;
        Ok(removed)
    }

    /// Runs the consumer under a supervisor until `shutdown`.
    pub fn spawn(self, shutdown: CancellationToken) -> SpawnedConsumer {
        let health = ConsumerHealth {
            health_name: format!("desk.consumer.{}", self.spec.durable),
            status: self.status.subscribe(),
        };
        let worker = tokio::spawn(supervise(Arc::new(self), shutdown));
        SpawnedConsumer { worker, health }
    }

    fn set_status(&self, status: ConsumerStatus) {
        self.status.send_if_modified(|current| {
            let changed = *current != status;
            *current = status;
            changed
        });
    }

    /// Reads and applies batches until `shutdown`; returns only then. Every failure on the way
    /// (missing stream, NATS or database down, a deleted consumer) is waited out with back-off.
    async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let mut failures: u32 = 0;
        let mut last_purge: Option<Instant> = None;
        while !shutdown.is_cancelled() {
            let consumer = match self.ensure().await {
                Ok(consumer) => consumer,
                Err(error) => {
                    failures = failures.saturating_add(1);
                    let status = match error {
                        EnsureError::StreamMissing(_) => ConsumerStatus::WaitingForStream,
                        EnsureError::Other(_) => ConsumerStatus::Reconnecting,
                    };
                    self.set_status(status);
                    if failures == 1 || failures.is_multiple_of(50) {
                        tracing::warn!(consumer = %self.spec.durable, error = %error, failures, "consumer cannot start yet; will retry");
                    }
                    sleep_or_shutdown(backoff(failures), &shutdown).await;
                    continue;
                }
            };
            let mut messages = match consumer
                .stream()
                .max_messages_per_batch(self.spec.batch_size)
                .heartbeat(Duration::from_secs(5))
                .messages()
                .await
            {
                Ok(messages) => messages,
                Err(error) => {
                    failures = failures.saturating_add(1);
                    self.set_status(ConsumerStatus::Reconnecting);
                    tracing::warn!(consumer = %self.spec.durable, error = %error, "consumer cannot pull; will retry");
                    sleep_or_shutdown(backoff(failures), &shutdown).await;
                    continue;
                }
            };
            self.set_status(ConsumerStatus::Consuming);
            if failures > 0 {
                tracing::info!(consumer = %self.spec.durable, after_failures = failures, "consumer consuming again");
            }
            failures = 0;
            let mut stream_errors: u32 = 0;
            loop {
                if last_purge.is_none_or(|at| at.elapsed() > INBOX_PURGE_EVERY) {
                    last_purge = Some(Instant::now());
                    if let Err(error) = self.purge_inbox().await {
                        tracing::warn!(consumer = %self.spec.durable, error = %error, "inbox purge failed");
                    }
                }
                let first = tokio::select! {
                    next = messages.next() => next,
                    _ = shutdown.cancelled() => break,
                };
                let mut batch = Vec::with_capacity(self.spec.batch_size);
                match first {
                    None => break,
                    Some(Err(error)) => {
                        stream_errors += 1;
                        tracing::warn!(consumer = %self.spec.durable, error = %error, "consumer stream error");
                        // A deleted consumer or stream shows as missed heartbeats: set it up again.
                        if stream_errors >= 3 {
                            self.set_status(ConsumerStatus::Reconnecting);
                            break;
                        }
                        continue;
                    }
                    Some(Ok(message)) => batch.push(message),
                }
                stream_errors = 0;
                // Whatever else has already arrived joins the batch; nothing waits for more.
                while batch.len() < self.spec.batch_size {
                    match messages.next().now_or_never() {
                        Some(Some(Ok(message))) => batch.push(message),
                        _ => break,
                    }
                }
                if let Err(error) = self.process(&batch).await {
                    failures = failures.saturating_add(1);
                    self.set_status(ConsumerStatus::Reconnecting);
                    tracing::warn!(consumer = %self.spec.durable, error = format!("{error:#}"), "batch left for redelivery");
                    sleep_or_shutdown(backoff(failures), &shutdown).await;
                } else if failures > 0 {
                    failures = 0;
                    self.set_status(ConsumerStatus::Consuming);
                }
            }
        }
    }
}

/// How often a consumer removes inbox rows past their retention.
const INBOX_PURGE_EVERY: Duration = Duration::from_secs(3600);

/// Runs the consumer and starts it again when it panics (or returns before shutdown).
async fn supervise(consumer: Arc<Consumer>, shutdown: CancellationToken) {
    let mut restarts: u32 = 0;
    loop {
        let run = tokio::spawn(consumer.clone().run(shutdown.clone()));
        // Aborting the supervisor (a test's crash, a runtime shutting down) aborts the run too.
        let abort_run = AbortOnDrop(run.abort_handle());
        let ended = run.await;
        drop(abort_run);
        if shutdown.is_cancelled() {
            break;
        }
        restarts = restarts.saturating_add(1);
        metrics().restarts.add(
            1,
            &[opentelemetry::KeyValue::new(
                "consumer",
                consumer.spec.durable.clone(),
            )],
        );
        match ended {
            Err(error) if error.is_panic() => {
                tracing::error!(consumer = %consumer.spec.durable, restarts, "consumer panicked; restarting it")
            }
            _ => {
                tracing::error!(consumer = %consumer.spec.durable, restarts, "consumer stopped unexpectedly; restarting it")
            }
        }
        consumer.set_status(ConsumerStatus::Restarting);
        sleep_or_shutdown(backoff(restarts), &shutdown).await;
        if shutdown.is_cancelled() {
            break;
        }
    }
    consumer.set_status(ConsumerStatus::Stopped);
}

struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn sleep_or_shutdown(delay: Duration, shutdown: &CancellationToken) {
    tokio::select! {
        _ = tokio::time::sleep(delay) => {}
        _ = shutdown.cancelled() => {}
    }
}

fn parse(message: &jetstream::Message) -> Parsed {
    match message
        .headers
        .as_ref()
        .and_then(CloudEventAttributes::from_headers)
    {
        Some(attributes) => Parsed::Event(IncomingEvent {
            nats_subject: message.subject.to_string(),
            attributes,
            payload: message.payload.clone(),
            delivered: delivered(message),
        }),
        None => Parsed::Unreadable,
    }
}

fn delivered(message: &jetstream::Message) -> i64 {
    message.info().map(|info| info.delivered).unwrap_or(1)
}

fn is_stream_not_found(error: &jetstream::context::GetStreamError) -> bool {
    matches!(
        error.kind(),
        jetstream::context::GetStreamErrorKind::JetStream(inner)
            if inner.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND
    )
}

struct ConsumerMetrics {
    events: opentelemetry::metrics::Counter<u64>,
    redeliveries: opentelemetry::metrics::Counter<u64>,
    pending: opentelemetry::metrics::Gauge<u64>,
    restarts: opentelemetry::metrics::Counter<u64>,
}

impl ConsumerMetrics {
    fn record(&self, consumer: &str, message: &jetstream::Message, disposition: Disposition) {
        let name = opentelemetry::KeyValue::new("consumer", consumer.to_owned());
        self.events.add(
            1,
            &[
                name.clone(),
                opentelemetry::KeyValue::new("disposition", disposition.name()),
            ],
        );
        if let Ok(info) = message.info() {
            if info.delivered > 1 {
                self.redeliveries.add(1, std::slice::from_ref(&name));
            }
            self.pending.record(info.pending, &[name]);
        }
    }
}

/// The consumers' instruments (exported when OTLP metrics are configured).
fn metrics() -> &'static ConsumerMetrics {
    static METRICS: std::sync::OnceLock<ConsumerMetrics> = std::sync::OnceLock::new();
    METRICS.get_or_init(|| {
        let meter = opentelemetry::global::meter("desk");
        ConsumerMetrics {
            events: meter
                .u64_counter("desk.consumer.events")
                .with_description("events a consumer settled, by disposition")
                .build(),
            redeliveries: meter
                .u64_counter("desk.consumer.redeliveries")
                .with_description("deliveries of an event after its first")
                .build(),
            pending: meter
                .u64_gauge("desk.consumer.pending")
                .with_description("events in the stream not yet delivered to the consumer: its lag")
                .build(),
            restarts: meter
                .u64_counter("desk.consumer.restarts")
                .with_description("times a consumer's worker was started again after it stopped")
                .build(),
        }
    })
}
