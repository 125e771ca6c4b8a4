//! Following a stream in one process: every event from a given sequence on, in stream order, to
//! keep an in-memory read model current — the CMDB's impact index and class catalogs in each of its
//! replicas, for example.
//!
//! This is not [`super::consumer`]: a durable consumer shares its events among the replicas of a
//! service (each event is applied once, by one of them, with a database effect), while every
//! replica must see every event to update its own memory. So a follower is an ephemeral JetStream
//! consumer per process with no acks and no inbox; what it applies must be idempotent (the same
//! event applied twice leaves the model as applied once), because the follower starts from a
//! sequence taken *before* the model was loaded from the database, and so may see again what the
//! load already contained. Anything lost in between (a dropped connection, a deleted consumer, a
//! restarted server) is made good by following again from the next sequence not yet applied.

use std::time::Duration;

use async_nats::jetstream::{
    self,
    consumer::{AckPolicy, DeliverPolicy, pull},
};
use futures::{FutureExt as _, StreamExt as _};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::envelope::{CloudEventAttributes, IncomingEvent};

/// Events that have arrived together, at most this many, are handed over in one call.
const BATCH: usize = 512;

/// Where a follower reads from.
#[derive(Debug, Clone)]
pub struct Follow {
    pub stream: String,
    pub filter_subjects: Vec<String>,
}

impl Follow {
    pub fn new(stream: impl Into<String>, filter_subjects: Vec<String>) -> Self {
        Self {
            stream: stream.into(),
            filter_subjects,
        }
    }

    /// The stream's last sequence now: load the model after taking it, then follow from the
    /// next one, and nothing committed after the load is missed.
    pub async fn last_sequence(&self, jetstream: &jetstream::Context) -> anyhow::Result<u64> {
        let mut stream = jetstream.get_stream(&self.stream).await?;
        Ok(stream.info().await?.state.last_sequence)
    }

    /// Hands every event after `after_sequence` to `apply`, in stream order and in batches of
    /// what has arrived, until `shutdown`. The returned channel says the stream sequence applied
    /// so far (for tests, and to tell how far a replica has caught up). Messages without
    /// CloudEvents headers are skipped with a warning: a follower has nowhere to park them.
    pub fn spawn<F, Fut>(
        self,
        jetstream: jetstream::Context,
        after_sequence: u64,
        mut apply: F,
        shutdown: CancellationToken,
    ) -> (tokio::task::JoinHandle<()>, watch::Receiver<u64>)
    where
        F: FnMut(Vec<IncomingEvent>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send,
    {
        let (applied_tx, applied_rx) = watch::channel(after_sequence);
        let worker = tokio::spawn(async move {
            let mut next = after_sequence + 1;
            let mut failures: u32 = 0;
            while !shutdown.is_cancelled() {
                match self.follow_from(&jetstream, next).await {
                    Ok(mut messages) => loop {
                        let first = tokio::select! {
                            first = messages.next() => first,
                            _ = shutdown.cancelled() => return,
                        };
                        let mut batch = match first {
                            Some(Ok(message)) => vec![message],
                            Some(Err(error)) => {
                                tracing::warn!(stream = %self.stream, error = %error, "follower lost the stream; following again");
                                break;
                            }
                            None => break,
                        };
                        while batch.len() < BATCH {
                            match messages.next().now_or_never() {
                                Some(Some(Ok(message))) => batch.push(message),
                                _ => break,
                            }
                        }
                        failures = 0;
                        let mut events = Vec::with_capacity(batch.len());
                        for message in batch {
                            let Ok(info) = message.info() else { continue };
                            next = info.stream_sequence + 1;
                            match message
                                .headers
                                .as_ref()
                                .and_then(CloudEventAttributes::from_headers)
                            {
                                Some(attributes) => events.push(IncomingEvent {
                                    nats_subject: message.subject.to_string(),
                                    attributes,
                                    payload: message.payload.clone(),
                                    delivered: info.delivered,
                                }),
                                None => {
                                    tracing::warn!(stream = %self.stream, sequence = info.stream_sequence, "follower skipped a message without CloudEvents headers")
                                }
                            }
                        }
                        apply(events).await;
                        let _ = applied_tx.send(next - 1);
                    },
                    Err(error) => {
                        failures = failures.saturating_add(1);
                        if failures == 1 || failures.is_multiple_of(50) {
                            tracing::warn!(stream = %self.stream, error = %error, failures, "follower cannot read the stream; will retry");
                        }
                    }
                }
                tokio::select! {
                    _ = tokio::time::sleep(super::backoff(failures)) => {}
                    _ = shutdown.cancelled() => return,
                }
            }
        });
        (worker, applied_rx)
    }

    async fn follow_from(
        &self,
        jetstream: &jetstream::Context,
        sequence: u64,
    ) -> anyhow::Result<pull::Stream> {
        let stream = jetstream.get_stream(&self.stream).await?;
        let consumer = stream
            .create_consumer(pull::Config {
                deliver_policy: DeliverPolicy::ByStartSequence {
                    start_sequence: sequence,
                },
                ack_policy: AckPolicy::None,
                filter_subjects: self.filter_subjects.clone(),
                // A follower that died leaves nothing behind for long.
                inactive_threshold: Duration::from_secs(30),
                ..Default::default()
            })
            .await?;
        Ok(consumer
            .stream()
            .max_messages_per_batch(BATCH)
            .heartbeat(Duration::from_secs(5))
            .messages()
            .await?)
    }
}
