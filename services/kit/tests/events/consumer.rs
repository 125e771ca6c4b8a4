//! Consumers against real servers: the inbox (no second effect), typed dispatch (decoding, unknown
//! types), batches in one transaction with a savepoint per event, events published by handlers,
//! dead letters and their replay, and the supervised worker through faults — killed mid-batch,
//! paused past its ack wait, started before its source stream exists, panicking.

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail, ensure};
use async_nats::jetstream;
use chrono::Utc;
use desk_kit::{
    clock::{ManualClock, SharedClock, SystemClock},
    events::{
        Consumer, ConsumerSpec, Dispatcher, Disposition, Effect, Handle, HandlerError,
        IncomingEvent, OutgoingEvent, Publisher, UnknownType,
        consumer::ConsumerStatus,
        envelope::{CloudEventAttributes, EventSource},
        outbox::RelayHandle,
        streams::ensure_stream,
    },
    settings::{ConsumerSettings, Settings},
};
use desk_testkit::Backend;
use prost::Message as _;
use sea_orm_migration::prelude::*;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{
    EFFECTS, INBOX, Kit, SCENARIO_LIMIT, WIDGET_CREATED, cloud_event_headers, eventually, header,
    next_delivery, read_with_consumer, settled,
};

const WIDGET_TYPE: &str = "desk.kittest.widget.created.v1";
const COUNTED_TYPE: &str = "desk.kittest.widget.counted.v1";

// ---------------------------------------------------------------------------------------------
// The handler: what it does is written in the event (a protobuf StringValue body)
// ---------------------------------------------------------------------------------------------

/// Applies `widget.created` events whose body (a `google.protobuf.StringValue`) says what to do:
/// `apply…` records the effect; `retry…` records it then asks for a retry (the effect must roll
/// back); `reject…` rejects; `publish…` records and publishes a `widget.counted` event;
/// `poison…` rejects while the poison gate is closed and applies once it is open.
#[derive(Default)]
struct WidgetHandler {
    calls: AtomicUsize,
    poison_cured: AtomicBool,
    /// When set, the n-th call (1-based) waits here forever: the worker is then killed.
    block_at_call: Option<usize>,
    blocked: Notify,
    /// The first call panics.
    panic_once: AtomicBool,
    /// Each call sleeps this long before applying (a consumer paused past its ack wait).
    delay: Option<Duration>,
}

#[async_trait::async_trait]
impl Handle<String> for WidgetHandler {
    async fn handle(
        &self,
        effect: &Effect<'_>,
        event: &IncomingEvent,
        message: String,
    ) -> Result<(), HandlerError> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if self.panic_once.swap(false, Ordering::SeqCst) {
            panic!("the widget handler fell over");
        }
        if self.block_at_call == Some(call) {
            // Inside the batch transaction, after earlier events of the batch wrote their effects.
            self.blocked.notify_one();
            std::future::pending::<()>().await;
        }
        if let Some(delay) = self.delay {
            tokio::time::sleep(delay).await;
        }
        if message.starts_with("reject") {
            return Err(HandlerError::Reject(format!(
                "widget {message} contradicts the model"
            )));
        }
        if message.starts_with("poison") && !self.poison_cured.load(Ordering::SeqCst) {
            return Err(HandlerError::Reject("the widget is poisoned".to_owned()));
        }
        let insert = Query::insert()
            .into_table(Alias::new(EFFECTS))
            .columns([Alias::new("event_id"), Alias::new("message")])
            .values([
                Expr::value(event.attributes.id),
                Expr::value(message.clone()),
            ])
            .map_err(|e| HandlerError::Reject(e.to_string()))?
            .to_owned();
        effect.txn().execute(&insert).await?;
        if message.starts_with("publish") || message.starts_with("retry-after-publish") {
            effect
                .publish(OutgoingEvent::new(
                    "widget",
                    "counted",
                    event.attributes.subject.clone(),
                    event.attributes.tenant.clone(),
                    &format!("counted {message}"),
                ))
                .await?;
        }
        if message.starts_with("retry") {
            return Err(HandlerError::Retry(
                "the widget registry is down".to_owned(),
            ));
        }
        Ok(())
    }
}

fn dispatcher(handler: &Arc<WidgetHandler>) -> Dispatcher {
    Dispatcher::new().on::<String>(WIDGET_TYPE, handler.clone())
}

/// Consumer settings for tests: quick retries and a short ack wait.
fn quick_settings() -> ConsumerSettings {
    ConsumerSettings {
        max_deliver: 3,
        backoff_ms: vec![50],
        ack_wait_seconds: 1,
        batch_size: 64,
        ..Settings::defaults().consumer
    }
}

impl Kit {
    fn publisher(&self, relay: &RelayHandle) -> Publisher {
        Publisher::new(self.db.clone(), self.outbox.clone(), relay.clone())
    }

    /// A consumer of the kit's own stream (`widget` events of every tenant).
    fn widget_consumer(
        &self,
        durable: &str,
        settings: ConsumerSettings,
        dispatcher: Dispatcher,
        clock: SharedClock,
    ) -> Consumer {
        let spec = ConsumerSpec::new(
            durable,
            self.source.stream_name(),
            vec!["desk.kt.kittest.*.widget.created".to_owned()],
            &settings,
        );
        Consumer::new(
            self.publisher(&RelayHandle::default()),
            self.jetstream.clone(),
            spec,
            dispatcher,
            clock,
        )
    }

    /// Publishes a `widget.created` CloudEvent (body: `text` as a StringValue) straight to
    /// JetStream; returns its ce-id.
    async fn publish_widget(&self, text: &str) -> anyhow::Result<Uuid> {
        let id = Uuid::now_v7();
        self.publish_widget_as(id, &format!("{id}"), text).await?;
        Ok(id)
    }

    async fn publish_widget_as(&self, id: Uuid, msg_id: &str, text: &str) -> anyhow::Result<()> {
        let mut headers = cloud_event_headers(id);
        headers.insert("Nats-Msg-Id", msg_id);
        let ack = self
            .jetstream
            .publish_with_headers(
                WIDGET_CREATED,
                headers,
                text.to_owned().encode_to_vec().into(),
            )
            .await?
            .await?;
        ensure!(!ack.duplicate, "{msg_id} was stored");
        Ok(())
    }

    /// How many effect rows each event id has.
    async fn effects_by_event(&self) -> anyhow::Result<HashMap<Uuid, i64>> {
        let rows = self
            .db
            .connection()
            .query_all_raw(sea_orm_migration::sea_orm::Statement::from_string(
                self.db.backend(),
                format!("SELECT event_id, COUNT(*) AS n FROM {EFFECTS} GROUP BY event_id"),
            ))
            .await?;
        rows.iter()
            .map(|row| {
                Ok((
                    row.try_get::<Uuid>("", "event_id")?,
                    row.try_get::<i64>("", "n")?,
                ))
            })
            .collect()
    }
}

/// The next `n` deliveries of `consumer`.
async fn deliveries(
    consumer: &jetstream::consumer::PullConsumer,
    n: usize,
) -> anyhow::Result<Vec<jetstream::Message>> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut messages = Vec::with_capacity(n);
    while messages.len() < n {
        messages.push(next_delivery(consumer, deadline).await?);
    }
    Ok(messages)
}

async fn wait_for_status(
    status: &mut tokio::sync::watch::Receiver<ConsumerStatus>,
    wanted: ConsumerStatus,
) -> anyhow::Result<()> {
    tokio::time::timeout(Duration::from_secs(15), status.wait_for(|s| *s == wanted))
        .await
        .with_context(|| format!("the consumer never reached {wanted:?}"))?
        .map(|_| ())
        .map_err(|_| anyhow::anyhow!("the consumer's status channel closed"))
}

/// Waits until every id in `ids` has an effect, then returns the effect counts.
async fn all_applied(kit: &Kit, ids: &[Uuid]) -> anyhow::Result<HashMap<Uuid, i64>> {
    eventually(
        Duration::from_secs(20),
        &format!("{} events applied", ids.len()),
        || async {
            let effects = kit.effects_by_event().await?;
            Ok(ids
                .iter()
                .all(|id| effects.contains_key(id))
                .then_some(effects))
        },
    )
    .await
}

// ---------------------------------------------------------------------------------------------
// The inbox and dispatch, one batch at a time
// ---------------------------------------------------------------------------------------------

on_both_backends!(inbox_applies_once =>
    the_inbox_applies_an_event_once_even_when_it_is_delivered_twice_on_postgres,
    the_inbox_applies_an_event_once_even_when_it_is_delivered_twice_on_sqlite);

async fn inbox_applies_once(backend: Backend) -> anyhow::Result<()> {
    // Given the same event (one ce-id) in the stream four times, under different Nats-Msg-Ids so
    // JetStream keeps them all (as after a re-publish outside the duplicate window),
    let kit = Kit::start(backend).await?;
    let handler = Arc::new(WidgetHandler::default());
    let consumer = kit.widget_consumer(
        "kittest-effects",
        quick_settings(),
        dispatcher(&handler),
        Arc::new(SystemClock),
    );
    let pull = consumer.ensure().await?;
    let id = Uuid::now_v7();
    for copy in ["a", "b", "c", "d"] {
        kit.publish_widget_as(id, &format!("{id}-{copy}"), "apply")
            .await?;
    }

    // when the first two are processed one by one and the other two in one batch,
    let messages = deliveries(&pull, 4).await?;
    let mut dispositions = consumer.process(&messages[..1]).await?;
    dispositions.extend(consumer.process(&messages[1..2]).await?);
    dispositions.extend(consumer.process(&messages[2..]).await?);

    // then the first applies and every other copy is a recognised duplicate: one effect, one row,
    assert_eq!(
        dispositions,
        vec![
            Disposition::Applied,
            Disposition::Duplicate,
            Disposition::Duplicate,
            Disposition::Duplicate
        ]
    );
    assert_eq!(kit.count(EFFECTS).await?, 1, "the effect happened once");
    assert_eq!(kit.count(INBOX).await?, 1, "the event id is recorded once");
    assert_eq!(
        handler.calls.load(Ordering::SeqCst),
        1,
        "the handler ran once"
    );

    // and all deliveries are acknowledged.
    settled(&pull).await?;
    Ok(())
}

on_both_backends!(batch_with_a_failing_event =>
    a_batch_commits_in_one_transaction_and_a_failing_event_rolls_back_alone_on_postgres,
    a_batch_commits_in_one_transaction_and_a_failing_event_rolls_back_alone_on_sqlite);

async fn batch_with_a_failing_event(backend: Backend) -> anyhow::Result<()> {
    // Given five events, the third of which writes its effect and then asks for a retry,
    let kit = Kit::start(backend).await?;
    let handler = Arc::new(WidgetHandler::default());
    let consumer = kit.widget_consumer(
        "kittest-batch",
        quick_settings(),
        dispatcher(&handler),
        Arc::new(SystemClock),
    );
    let pull = consumer.ensure().await?;
    let mut ids = Vec::new();
    for text in ["apply 1", "apply 2", "retry 3", "apply 4", "apply 5"] {
        ids.push(kit.publish_widget(text).await?);
    }

    // when they are processed as one batch,
    let messages = deliveries(&pull, 5).await?;
    let dispositions = consumer.process(&messages).await?;

    // then four applied and the failing one is left for a retry, its effect rolled back alone,
    assert_eq!(
        dispositions,
        vec![
            Disposition::Applied,
            Disposition::Applied,
            Disposition::Retrying,
            Disposition::Applied,
            Disposition::Applied
        ]
    );
    let effects = kit.effects_by_event().await?;
    assert_eq!(effects.len(), 4, "{effects:?}");
    assert!(
        !effects.contains_key(&ids[2]),
        "the failed event's effect rolled back"
    );
    assert_eq!(kit.count(INBOX).await?, 4);

    // and its redelivery (after the back-off) is delivered as the second attempt.
    let again = deliveries(&pull, 1).await?;
    assert_eq!(
        header(again[0].headers.as_ref().context("headers")?, "ce-id"),
        Some(ids[2].to_string())
    );
    assert_eq!(
        again[0].info().map_err(|e| anyhow::anyhow!(e))?.delivered,
        2
    );
    Ok(())
}

on_both_backends!(failing_handler_is_retried_then_dead_lettered =>
    a_failing_handler_is_retried_with_backoff_then_dead_lettered_on_postgres,
    a_failing_handler_is_retried_with_backoff_then_dead_lettered_on_sqlite);

async fn failing_handler_is_retried_then_dead_lettered(backend: Backend) -> anyhow::Result<()> {
    // Given a handler that writes its effect and then always asks for a retry, allowed 3 deliveries,
    let kit = Kit::start(backend).await?;
    let backoff = Duration::from_millis(100);
    let handler = Arc::new(WidgetHandler::default());
    let durable = "kittest-retry";
    let consumer = kit.widget_consumer(
        durable,
        ConsumerSettings {
            backoff_ms: vec![100],
            ..quick_settings()
        },
        dispatcher(&handler),
        Arc::new(SystemClock),
    );
    let pull = consumer.ensure().await?;
    let id = kit.publish_widget("retry-after-publish").await?;

    // when each delivery is processed until the consumer gives up,
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut dispositions = Vec::new();
    let mut last_nak: Option<Instant> = None;
    loop {
        let message = next_delivery(&pull, deadline).await?;
        if let Some(at) = last_nak {
            // The server honours the nak delay: a redelivery never comes before the back-off.
            let waited = at.elapsed();
            assert!(
                waited >= backoff - Duration::from_millis(10),
                "redelivered after {waited:?}, back-off is {backoff:?}"
            );
        }
        let delivered = message.info().map_err(|e| anyhow::anyhow!(e))?.delivered;
        assert_eq!(
            delivered,
            dispositions.len() as i64 + 1,
            "deliveries are counted"
        );
        let disposition = consumer.process(std::slice::from_ref(&message)).await?[0];
        last_nak = Some(Instant::now());
        dispositions.push(disposition);
        if disposition == Disposition::DeadLettered {
            break;
        }
        ensure!(
            dispositions.len() < 10,
            "never dead-lettered: {dispositions:?}"
        );
    }

    // then it was retried twice and dead-lettered on the third delivery,
    assert_eq!(
        dispositions,
        vec![
            Disposition::Retrying,
            Disposition::Retrying,
            Disposition::DeadLettered
        ]
    );
    assert_eq!(handler.calls.load(Ordering::SeqCst), 3);

    // the event sits on the dead-letter subject with the failure in `desk-error`,
    let dead_letter = kit.source.dead_letter_subject(durable);
    assert_eq!(dead_letter, "desk.kt.kittest._deadletter.kittest-retry");
    let parked = kit
        .stream()
        .await?
        .get_last_raw_message_by_subject(&dead_letter)
        .await?;
    let error = header(&parked.headers, "desk-error").context("desk-error header")?;
    assert!(
        error.contains("the widget registry is down"),
        "desk-error = {error:?}"
    );
    assert_eq!(
        header(&parked.headers, "ce-id"),
        Some(id.to_string()),
        "the dead letter keeps the CloudEvents headers"
    );
    assert_eq!(
        header(&parked.headers, "desk-original-subject").as_deref(),
        Some(WIDGET_CREATED)
    );

    // no effect and no event it published survived any attempt, and it is not delivered again.
    assert_eq!(
        kit.count(EFFECTS).await?,
        0,
        "every attempt's effect rolled back"
    );
    assert_eq!(
        kit.count(super::OUTBOX).await?,
        0,
        "the event each attempt published rolled back with it"
    );
    assert_eq!(
        kit.count(INBOX).await?,
        0,
        "a failed event is not recorded as processed"
    );
    settled(&pull).await?;
    Ok(())
}

on_both_backends!(rejections_dead_letter_at_once =>
    rejected_undecodable_and_headerless_events_are_dead_lettered_on_their_first_delivery_on_postgres,
    rejected_undecodable_and_headerless_events_are_dead_lettered_on_their_first_delivery_on_sqlite);

async fn rejections_dead_letter_at_once(backend: Backend) -> anyhow::Result<()> {
    // Given a rejected event, one whose body does not decode as its type, one without any
    // CloudEvents headers, one with a malformed ce-id, and one whose reason spans lines,
    let kit = Kit::start(backend).await?;
    let handler = Arc::new(WidgetHandler::default());
    let durable = "kittest-reject";
    let consumer = kit.widget_consumer(
        durable,
        ConsumerSettings {
            max_deliver: 5,
            ..quick_settings()
        },
        dispatcher(&handler),
        Arc::new(SystemClock),
    );
    let pull = consumer.ensure().await?;
    kit.publish_widget("reject this").await?;
    kit.jetstream
        .publish_with_headers(
            WIDGET_CREATED,
            cloud_event_headers(Uuid::now_v7()),
            // Field 1 with wire type 7, which does not exist.
            vec![0x0f, 0x01].into(),
        )
        .await?
        .await?;
    kit.jetstream
        .publish(WIDGET_CREATED, "no headers".into())
        .await?
        .await?;
    let mut malformed = cloud_event_headers(Uuid::now_v7());
    malformed.insert("ce-id", "not-a-uuid");
    kit.jetstream
        .publish_with_headers(WIDGET_CREATED, malformed, "bad id".into())
        .await?
        .await?;
    kit.publish_widget("reject\ncaused by: truncated\r\n")
        .await?;

    // when they are processed in one batch (in a task, so a panic is caught and reported),
    let messages = deliveries(&pull, 5).await?;
    let consumer = Arc::new(consumer);
    let processing = {
        let consumer = consumer.clone();
        tokio::spawn(async move { consumer.process(&messages).await })
    };
    let dispositions = match processing.await {
        Ok(result) => result?,
        Err(error) if error.is_panic() => bail!("Consumer::process panicked: {error}"),
        Err(error) => return Err(error.into()),
    };

    // then each is dead-lettered on its first delivery, with its reason,
    assert_eq!(dispositions, vec![Disposition::DeadLettered; 5]);
    assert_eq!(
        handler.calls.load(Ordering::SeqCst),
        2,
        "only the two well-formed widgets reached the handler"
    );
    let parked = read_with_consumer(&kit, &kit.source.dead_letter_subject(durable)).await?;
    let reasons: Vec<String> = parked
        .iter()
        .map(|m| {
            m.headers
                .as_ref()
                .and_then(|h| header(h, "desk-error"))
                .unwrap_or_default()
        })
        .collect();
    assert_eq!(reasons.len(), 5, "{reasons:?}");
    assert!(reasons[0].contains("contradicts the model"), "{reasons:?}");
    assert!(
        reasons[1].contains("does not decode as") && reasons[1].contains(WIDGET_TYPE),
        "{reasons:?}"
    );
    assert!(reasons[2].contains("CloudEvents"), "{reasons:?}");
    assert!(reasons[3].contains("CloudEvents"), "{reasons:?}");
    assert!(
        reasons[4].contains("caused by: truncated") && !reasons[4].contains('\n'),
        "the multi-line reason is on one line: {reasons:?}"
    );
    assert_eq!(parked[2].payload.as_ref(), b"no headers");

    // and all are terminated, with no effect.
    settled(&pull).await?;
    assert_eq!(kit.count(EFFECTS).await?, 0);
    Ok(())
}

on_both_backends!(unknown_types_follow_the_rule =>
    an_event_type_without_a_handler_is_skipped_or_dead_lettered_as_the_dispatcher_says_on_postgres,
    an_event_type_without_a_handler_is_skipped_or_dead_lettered_as_the_dispatcher_says_on_sqlite);

async fn unknown_types_follow_the_rule(backend: Backend) -> anyhow::Result<()> {
    // Given a widget event whose type no handler knows (a publisher's newer event),
    let kit = Kit::start(backend).await?;
    let handler = Arc::new(WidgetHandler::default());
    let mut headers = cloud_event_headers(Uuid::now_v7());
    headers.insert("ce-type", "desk.kittest.widget.created.v2");
    kit.jetstream
        .publish_with_headers(
            WIDGET_CREATED,
            headers,
            "apply".to_owned().encode_to_vec().into(),
        )
        .await?
        .await?;

    // when a skipping consumer and a strict one read it,
    let skipping = kit.widget_consumer(
        "kittest-skip",
        quick_settings(),
        dispatcher(&handler),
        Arc::new(SystemClock),
    );
    let strict = kit.widget_consumer(
        "kittest-strict",
        quick_settings(),
        dispatcher(&handler).on_unknown(UnknownType::DeadLetter),
        Arc::new(SystemClock),
    );
    let skipping_pull = skipping.ensure().await?;
    let strict_pull = strict.ensure().await?;
    let skipped = skipping
        .process(&deliveries(&skipping_pull, 1).await?)
        .await?;
    let parked = strict.process(&deliveries(&strict_pull, 1).await?).await?;

    // then the first acknowledges it without an effect, and the second dead-letters it.
    assert_eq!(skipped, vec![Disposition::Skipped]);
    assert_eq!(parked, vec![Disposition::DeadLettered]);
    assert_eq!(handler.calls.load(Ordering::SeqCst), 0);
    assert_eq!(kit.count(EFFECTS).await?, 0);
    let dead = read_with_consumer(&kit, &kit.source.dead_letter_subject("kittest-strict")).await?;
    assert_eq!(dead.len(), 1);
    settled(&skipping_pull).await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The supervised worker
// ---------------------------------------------------------------------------------------------

on_both_backends!(handler_events_are_published_at_once =>
    events_a_handler_publishes_commit_with_its_effect_and_the_relay_publishes_them_at_once_on_postgres,
    events_a_handler_publishes_commit_with_its_effect_and_the_relay_publishes_them_at_once_on_sqlite);

async fn handler_events_are_published_at_once(backend: Backend) -> anyhow::Result<()> {
    // Given a running relay whose fallback poll is a minute away, and a consumer writing through
    // the same publisher,
    let kit = Kit::start(backend).await?;
    let shutdown = CancellationToken::new();
    let relay_handle = RelayHandle::default();
    let relay = tokio::spawn(kit.relay(&relay_handle).run(shutdown.clone()));
    let handler = Arc::new(WidgetHandler::default());
    let spec = ConsumerSpec::new(
        "kittest-publish",
        kit.source.stream_name(),
        vec!["desk.kt.kittest.*.widget.created".to_owned()],
        &quick_settings(),
    );
    let consumer = Consumer::new(
        kit.publisher(&relay_handle),
        kit.jetstream.clone(),
        spec,
        dispatcher(&handler),
        Arc::new(SystemClock),
    )
    .spawn(shutdown.clone());

    // when an event whose handler publishes `widget.counted` arrives,
    let id = kit.publish_widget("publish me").await?;

    // then the counted event reaches the stream long before the poll: the commit woke the relay,
    let counted = eventually(
        Duration::from_secs(10),
        "widget.counted in the stream",
        || async {
            let messages = read_with_consumer(&kit, "desk.kt.kittest.acme.widget.counted").await?;
            Ok((!messages.is_empty()).then_some(messages))
        },
    )
    .await?;
    assert_eq!(counted.len(), 1);
    let headers = counted[0].headers.as_ref().context("headers")?;
    assert_eq!(header(headers, "ce-type").as_deref(), Some(COUNTED_TYPE));
    assert_eq!(
        String::decode(counted[0].payload.as_ref())?,
        "counted publish me"
    );
    assert_eq!(kit.effects_by_event().await?.get(&id), Some(&1));

    // and both workers stop when told.
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), consumer.worker).await??;
    tokio::time::timeout(Duration::from_secs(10), relay).await??;
    Ok(())
}

on_both_backends!(killed_mid_batch =>
    a_consumer_killed_in_the_middle_of_a_batch_applies_every_event_exactly_once_after_a_restart_on_postgres,
    a_consumer_killed_in_the_middle_of_a_batch_applies_every_event_exactly_once_after_a_restart_on_sqlite);

async fn killed_mid_batch(backend: Backend) -> anyhow::Result<()> {
    // Given 30 events waiting, and a consumer whose handler hangs on its 5th call (usually inside
    // the first batch, after four events wrote their effects in the batch transaction),
    let kit = Kit::start(backend).await?;
    let mut ids = Vec::new();
    for n in 0..30 {
        ids.push(kit.publish_widget(&format!("apply {n}")).await?);
    }
    let hanging = Arc::new(WidgetHandler {
        block_at_call: Some(5),
        ..WidgetHandler::default()
    });
    let settings = ConsumerSettings {
        batch_size: 10,
        ..quick_settings()
    };
    let shutdown = CancellationToken::new();
    let first = kit
        .widget_consumer(
            "kittest-killed",
            settings.clone(),
            dispatcher(&hanging),
            Arc::new(SystemClock),
        )
        .spawn(shutdown.clone());
    tokio::time::timeout(Duration::from_secs(15), hanging.blocked.notified())
        .await
        .context("the handler never reached the 5th event")?;

    // when the worker is killed there and a new one is started on the same durable consumer,
    first.worker.abort();
    let _ = first.worker.await;
    // A fetch may hand over fewer than `batch_size` messages (a busy machine), so batches before
    // the hanging one may have committed: what is visible is exactly what those batches wrote —
    // effects and inbox rows together — and nothing of the hanging batch (call 5 or its batch
    // mates written before it).
    let visible_effects = kit.count(EFFECTS).await?;
    assert_eq!(
        visible_effects,
        kit.count(INBOX).await?,
        "effects and inbox rows commit together"
    );
    assert!(
        visible_effects < 5,
        "the killed batch left no effect: {visible_effects} visible"
    );
    let healthy = Arc::new(WidgetHandler::default());
    let second = kit
        .widget_consumer(
            "kittest-killed",
            settings,
            dispatcher(&healthy),
            Arc::new(SystemClock),
        )
        .spawn(shutdown.clone());

    // then every event is applied, each exactly once.
    let effects = all_applied(&kit, &ids).await?;
    assert_eq!(effects.len(), 30);
    assert!(effects.values().all(|n| *n == 1), "{effects:?}");
    assert_eq!(kit.count(INBOX).await?, 30);
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), second.worker).await??;
    Ok(())
}

on_both_backends!(paused_past_ack_wait =>
    a_consumer_paused_past_its_ack_wait_gets_a_redelivery_without_a_second_effect_on_postgres,
    a_consumer_paused_past_its_ack_wait_gets_a_redelivery_without_a_second_effect_on_sqlite);

async fn paused_past_ack_wait(backend: Backend) -> anyhow::Result<()> {
    // Given an event delivered to a consumer with a one-second ack wait, which pauses before it
    // processes the delivery,
    let kit = Kit::start(backend).await?;
    let handler = Arc::new(WidgetHandler::default());
    let consumer = kit.widget_consumer(
        "kittest-paused",
        quick_settings(),
        dispatcher(&handler),
        Arc::new(SystemClock),
    );
    let pull = consumer.ensure().await?;
    let id = kit.publish_widget("apply once").await?;
    let stale = deliveries(&pull, 1).await?;

    // when the ack wait passes, the redelivery is processed, and then the stale first delivery,
    let redelivered = deliveries(&pull, 1).await?;
    assert_eq!(
        redelivered[0]
            .info()
            .map_err(|e| anyhow::anyhow!(e))?
            .delivered,
        2
    );
    let mut dispositions = consumer.process(&redelivered).await?;
    dispositions.extend(consumer.process(&stale).await?);

    // then the event is applied once, and the late first delivery is a recognised duplicate.
    assert_eq!(
        dispositions,
        vec![Disposition::Applied, Disposition::Duplicate]
    );
    assert_eq!(kit.effects_by_event().await?.get(&id), Some(&1));
    assert_eq!(handler.calls.load(Ordering::SeqCst), 1);

    // And a running worker whose handler pauses past the ack wait on every event still applies
    // each event once, though the server delivers them again meanwhile.
    let slow = Arc::new(WidgetHandler {
        delay: Some(Duration::from_millis(1500)),
        ..WidgetHandler::default()
    });
    let shutdown = CancellationToken::new();
    let worker = kit
        .widget_consumer(
            "kittest-slow",
            ConsumerSettings {
                batch_size: 1,
                ..quick_settings()
            },
            dispatcher(&slow),
            Arc::new(SystemClock),
        )
        .spawn(shutdown.clone());
    let mut ids = vec![id];
    ids.push(kit.publish_widget("apply slowly").await?);
    let effects = all_applied(&kit, &ids).await?;
    let slow_pull = kit
        .stream()
        .await?
        .get_consumer::<jetstream::consumer::pull::Config>("kittest-slow")
        .await
        .map_err(|e| anyhow::anyhow!(e))?;
    settled(&slow_pull).await?;
    let effects_after = kit.effects_by_event().await?;
    assert_eq!(effects, effects_after);
    // Both consumers applied the first event: one effect each. The second, once.
    assert_eq!(effects_after.get(&ids[0]), Some(&2), "{effects_after:?}");
    assert_eq!(effects_after.get(&ids[1]), Some(&1), "{effects_after:?}");
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), worker.worker).await??;
    Ok(())
}

on_both_backends!(waits_for_its_stream =>
    a_consumer_started_before_its_source_stream_exists_waits_and_catches_up_once_it_appears_on_postgres,
    a_consumer_started_before_its_source_stream_exists_waits_and_catches_up_once_it_appears_on_sqlite);

async fn waits_for_its_stream(backend: Backend) -> anyhow::Result<()> {
    // Given a consumer of a service that has not started yet (its stream does not exist),
    let kit = Kit::start(backend).await?;
    let later = EventSource::new("kt", "later");
    let handler = Arc::new(WidgetHandler::default());
    let spec = ConsumerSpec::new(
        "kittest-later",
        later.stream_name(),
        vec!["desk.kt.later.*.widget.created".to_owned()],
        &quick_settings(),
    );
    let shutdown = CancellationToken::new();
    let spawned = Consumer::new(
        kit.publisher(&RelayHandle::default()),
        kit.jetstream.clone(),
        spec,
        dispatcher(&handler),
        Arc::new(SystemClock),
    )
    .spawn(shutdown.clone());
    let mut status = spawned.health.status.clone();
    assert_eq!(spawned.health.health_name, "desk.consumer.kittest-later");

    // when it has waited for a while,
    wait_for_status(&mut status, ConsumerStatus::WaitingForStream).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    ensure!(!spawned.worker.is_finished(), "the consumer gave up");

    // and the service starts, creating its stream, and publishes three events,
    ensure_stream(&kit.jetstream, &later, &kit.nats_settings).await?;
    let mut ids = Vec::new();
    for n in 0..3 {
        let id = Uuid::now_v7();
        let mut headers = CloudEventAttributes {
            source: "/desk/kt/later".to_owned(),
            ..CloudEventAttributes::from_headers(&cloud_event_headers(id)).context("headers")?
        }
        .to_headers();
        headers.insert("Nats-Msg-Id", id.to_string().as_str());
        kit.jetstream
            .publish_with_headers(
                "desk.kt.later.acme.widget.created",
                headers,
                format!("apply {n}").encode_to_vec().into(),
            )
            .await?
            .await?;
        ids.push(id);
    }

    // then the consumer catches up and says so.
    let effects = all_applied(&kit, &ids).await?;
    assert!(effects.values().all(|n| *n == 1), "{effects:?}");
    wait_for_status(&mut status, ConsumerStatus::Consuming).await?;
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), spawned.worker).await??;
    assert_eq!(*status.borrow(), ConsumerStatus::Stopped);
    Ok(())
}

on_both_backends!(panicking_worker_is_restarted =>
    a_consumer_whose_worker_panics_is_restarted_and_applies_the_event_once_on_postgres,
    a_consumer_whose_worker_panics_is_restarted_and_applies_the_event_once_on_sqlite);

async fn panicking_worker_is_restarted(backend: Backend) -> anyhow::Result<()> {
    // Given a consumer whose handler panics on its first call,
    let kit = Kit::start(backend).await?;
    let handler = Arc::new(WidgetHandler {
        panic_once: AtomicBool::new(true),
        ..WidgetHandler::default()
    });
    let shutdown = CancellationToken::new();
    let spawned = kit
        .widget_consumer(
            "kittest-panic",
            quick_settings(),
            dispatcher(&handler),
            Arc::new(SystemClock),
        )
        .spawn(shutdown.clone());

    // when an event arrives,
    let id = kit.publish_widget("apply after a panic").await?;

    // then the worker is restarted, the event is delivered again and applied once.
    let effects = all_applied(&kit, &[id]).await?;
    assert_eq!(effects.get(&id), Some(&1));
    assert_eq!(
        handler.calls.load(Ordering::SeqCst),
        2,
        "one panic, one success"
    );
    ensure!(
        !spawned.worker.is_finished(),
        "the supervisor is still running"
    );
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), spawned.worker).await??;
    Ok(())
}

on_both_backends!(poison_is_parked_and_replayed =>
    a_poison_event_is_dead_lettered_after_its_attempts_and_applied_once_when_replayed_on_postgres,
    a_poison_event_is_dead_lettered_after_its_attempts_and_applied_once_when_replayed_on_sqlite);

async fn poison_is_parked_and_replayed(backend: Backend) -> anyhow::Result<()> {
    // Given a running consumer and three events, the middle one poisoned,
    let kit = Kit::start(backend).await?;
    let handler = Arc::new(WidgetHandler::default());
    let durable = "kittest-poison";
    let shutdown = CancellationToken::new();
    let spawned = kit
        .widget_consumer(
            durable,
            quick_settings(),
            dispatcher(&handler),
            Arc::new(SystemClock),
        )
        .spawn(shutdown.clone());
    let healthy_before = kit.publish_widget("apply before").await?;
    let poison = kit.publish_widget("poison pill").await?;
    let healthy_after = kit.publish_widget("apply after").await?;

    // when the consumer has gone past it,
    all_applied(&kit, &[healthy_before, healthy_after]).await?;
    let parked = eventually(
        Duration::from_secs(10),
        "the poison dead-lettered",
        || async {
            let parked = read_with_consumer(&kit, &kit.source.dead_letter_subject(durable)).await?;
            Ok((!parked.is_empty()).then_some(parked))
        },
    )
    .await?;
    assert_eq!(parked.len(), 1);
    assert!(!kit.effects_by_event().await?.contains_key(&poison));

    // and the cause is fixed and the dead letters are replayed,
    handler.poison_cured.store(true, Ordering::SeqCst);
    let replayer = kit.widget_consumer(
        durable,
        quick_settings(),
        dispatcher(&handler),
        Arc::new(SystemClock),
    );
    let report = replayer.replay_dead_letters(100).await?;

    // then the poison is applied once and leaves the dead-letter subject; a second replay finds
    // nothing.
    assert_eq!(report.replayed, 1, "{report:?}");
    assert!(report.still_failing.is_empty(), "{report:?}");
    let effects = kit.effects_by_event().await?;
    assert_eq!(effects.get(&poison), Some(&1), "{effects:?}");
    assert!(
        read_with_consumer(&kit, &kit.source.dead_letter_subject(durable))
            .await?
            .is_empty()
    );
    assert_eq!(replayer.replay_dead_letters(100).await?.replayed, 0);
    assert_eq!(kit.effects_by_event().await?.values().sum::<i64>(), 3);
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), spawned.worker).await??;
    Ok(())
}

on_both_backends!(inbox_is_purged =>
    inbox_rows_older_than_the_retention_are_purged_by_the_injected_clock_on_postgres,
    inbox_rows_older_than_the_retention_are_purged_by_the_injected_clock_on_sqlite);

async fn inbox_is_purged(backend: Backend) -> anyhow::Result<()> {
    // Given an event applied at a time the manual clock says,
    let kit = Kit::start(backend).await?;
    let clock = ManualClock::new(Utc::now());
    let handler = Arc::new(WidgetHandler::default());
    let consumer = kit.widget_consumer(
        "kittest-purge",
        ConsumerSettings {
            inbox_retention_hours: 24,
            ..quick_settings()
        },
        dispatcher(&handler),
        Arc::new(clock.clone()),
    );
    let pull = consumer.ensure().await?;
    kit.publish_widget("apply").await?;
    consumer.process(&deliveries(&pull, 1).await?).await?;
    assert_eq!(kit.count(INBOX).await?, 1);

    // when a purge runs within the retention, nothing goes; when it runs after, the row goes.
    clock.advance(chrono::Duration::hours(23));
    assert_eq!(consumer.purge_inbox().await?, 0);
    clock.advance(chrono::Duration::hours(2));
    assert_eq!(consumer.purge_inbox().await?, 1);
    assert_eq!(kit.count(INBOX).await?, 0);
    Ok(())
}
