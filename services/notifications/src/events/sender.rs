//! The sender: works the durable deliveries. It releases held ones whose time has come, claims
//! due ones (a lease, so replicas never send the same delivery twice at once, and a crashed
//! sender's claims come back), attempts them on their channel, and records every attempt in the
//! delivery's log — delivered (`notification.delivered`), retried after the back-off of
//! [`crate::domain::webhook::retry_delay`], or dead-lettered after the last attempt
//! (`notification.failed`) for an admin to inspect and replay.

use std::{sync::Arc, time::Duration};

use desk_kit::clock::SharedClock;
use tokio_util::sync::CancellationToken;

use super::transport::{Http, Mail, Mailer, Outcome};
use crate::{
    domain::{
        model::{Attempt, Delivery, DeliveryStatus, Payload},
        webhook,
    },
    store::{NotificationStore, StoreError},
};

pub struct Sender {
    pub store: Arc<NotificationStore>,
    pub mailer: Mailer,
    pub http: Http,
    pub clock: SharedClock,
    pub wake: Arc<tokio::sync::Notify>,
    pub max_attempts: u32,
    pub poll: Duration,
    pub batch: u64,
    pub attempt_timeout: Duration,
    pub sms_url: String,
    pub private_tenants: Vec<String>,
}

impl Sender {
    pub async fn run(self, shutdown: CancellationToken) {
        let this = Arc::new(self);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = this.wake.notified() => {}
                _ = tokio::time::sleep(this.poll) => {}
            }
            if let Err(e) = this.round().await {
                tracing::warn!(error = %e, "sender round failed");
            }
        }
    }

    /// Releases held deliveries, then sends due ones until none is left.
    pub async fn round(self: &Arc<Self>) -> Result<(), StoreError> {
        let now = self.clock.now();
        self.store.release_held(now).await?;
        loop {
            let now = self.clock.now();
            let lease = now
                + chrono::Duration::from_std(self.attempt_timeout * 3)
                    .unwrap_or(chrono::Duration::seconds(60));
            let claimed = self.store.claim_due(now, lease, self.batch).await?;
            if claimed.is_empty() {
                return Ok(());
            }
            let attempts = claimed.into_iter().map(|d| {
                let this = self.clone();
                async move { this.attempt(d).await }
            });
            for result in futures::future::join_all(attempts).await {
                if let Err(e) = result {
                    tracing::warn!(error = %e, "recording an attempt failed");
                }
            }
        }
    }

    async fn transmit(&self, d: &Delivery) -> Outcome {
        let started = std::time::Instant::now();
        let allow_private = self.private_tenants.iter().any(|t| t == &d.tenant);
        let work = async {
            match &d.payload {
                Payload::Email {
                    to,
                    subject,
                    text,
                    html,
                    message_id,
                    in_reply_to,
                    references,
                } => {
                    self.mailer
                        .send(Mail {
                            to,
                            subject,
                            text,
                            html,
                            message_id,
                            in_reply_to: in_reply_to.as_deref(),
                            references: references.as_deref(),
                        })
                        .await
                }
                Payload::Webhook { body } => {
                    let endpoint = match d.endpoint_id {
                        Some(id) => match self
                            .store
                            .endpoints(self.store.db().connection(), &d.tenant)
                            .await
                        {
                            Ok(list) => list.into_iter().find(|e| e.id == id),
                            Err(e) => return failed(started, e.to_string(), true),
                        },
                        None => None,
                    };
                    let Some(endpoint) = endpoint else {
                        return failed(started, "the endpoint was deleted".into(), false);
                    };
                    let now = self.clock.now();
                    let secrets = endpoint.signing_secrets(now);
                    let refs: Vec<&webhook::Secret> = secrets.iter().collect();
                    let id = d.id.to_string();
                    let timestamp = now.timestamp();
                    let signature =
                        webhook::signature_header(&refs, &id, timestamp, body.as_bytes());
                    let headers = [
                        ("webhook-id", id),
                        ("webhook-timestamp", timestamp.to_string()),
                        ("webhook-signature", signature),
                    ];
                    self.http
                        .post(&endpoint.url, &headers, body.clone(), allow_private)
                        .await
                }
                Payload::Sms { to, body } => {
                    if self.sms_url.is_empty() {
                        return failed(started, "no SMS provider is configured".into(), true);
                    }
                    let json = serde_json::json!({"to": to, "body": body, "id": d.id.to_string()})
                        .to_string();
                    // The provider is the operator's own configuration: private addresses allowed.
                    self.http.post(&self.sms_url, &[], json, true).await
                }
                Payload::InApp { .. } => Outcome {
                    ok: true,
                    code: 0,
                    latency_ms: 0,
                    error: String::new(),
                    retryable: false,
                },
            }
        };
        match tokio::time::timeout(self.attempt_timeout, work).await {
            Ok(outcome) => outcome,
            Err(_) => failed(started, "the attempt timed out".into(), true),
        }
    }

    async fn attempt(&self, mut d: Delivery) -> Result<(), StoreError> {
        let outcome = self.transmit(&d).await;
        let now = self.clock.now();
        let number = d.attempts.len() as u32 + 1;
        d.attempts.push(Attempt {
            attempt: number,
            at: now,
            response_code: outcome.code,
            latency_ms: outcome.latency_ms,
            error: outcome.error.clone(),
        });
        let event = if outcome.ok {
            d.status = DeliveryStatus::Delivered;
            tracing::debug!(delivery = %d.id, channel = d.channel.as_str(), "delivered");
            super::delivered(&d)
        } else {
            let delay = if outcome.retryable {
                webhook::retry_delay(number, self.max_attempts, fastrand::f64())
            } else {
                None
            };
            match delay {
                Some(delay) => {
                    d.status = DeliveryStatus::Pending;
                    d.due_at = now + delay;
                    let txn = self.store.begin().await?;
                    self.store.update_delivery(&*txn, &d).await?;
                    self.store.commit(txn).await?;
                    tracing::info!(delivery = %d.id, attempt = number, error = %outcome.error, "attempt failed, retrying");
                    return Ok(());
                }
                None => {
                    d.status = DeliveryStatus::Dead;
                    tracing::warn!(delivery = %d.id, attempt = number, error = %outcome.error, "delivery dead-lettered");
                    super::failed(&d, &outcome.error)
                }
            }
        };
        let txn = self.store.begin().await?;
        self.store.update_delivery(&*txn, &d).await?;
        self.store.publisher().stage(&txn, event, now).await?;
        self.store.commit(txn).await
    }
}

fn failed(started: std::time::Instant, error: String, retryable: bool) -> Outcome {
    Outcome {
        ok: false,
        code: 0,
        latency_ms: started.elapsed().as_millis() as i64,
        error,
        retryable,
    }
}
