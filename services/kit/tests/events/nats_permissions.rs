//! The shipped NATS configuration (infra/nats: an account per tenant, a user per service) against
//! a real nats-server started on it: a tenant's integrator reads its own tenant's events, live
//! and through its sourced stream, and nothing else; what it may not do is refused by the server.
//!
//! A refused subscribe or publish returns `Ok` in async-nats and a refused JetStream call only
//! times out, so refusals are read from the server's `-ERR` lines (`Event::ServerError`). That
//! something did *not* arrive is read after a later message that did, from the same publisher
//! in the same order, has arrived ("sentinel"): no test waits a fixed time for silence.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail, ensure};
use async_nats::{
    Client, Event, ServerError,
    jetstream::{
        self,
        consumer::{AckPolicy, pull, push},
        stream,
    },
};
use chrono::Utc;
use desk_kit::{
    events::{
        envelope::{CloudEventAttributes, EventSource},
        streams::{
            DESK_ACCOUNT_JS_API, connect_with, ensure_stream, ensure_tenant_stream,
            tenant_stream_config, tenant_stream_name,
        },
    },
    settings::{NatsSettings, Secret, Settings},
};
use desk_testkit::NatsServer;
use futures::{FutureExt as _, StreamExt as _, TryStreamExt as _};
use tokio::sync::mpsc;
use uuid::Uuid;

/// The region infra/nats/desk.conf is generated for.
const REGION: &str = "emea";
/// How long a wait for something that must come may take before the test fails.
const PATIENCE: Duration = Duration::from_secs(15);

const TICKETS_USER: &str = "desk.tickets";
const TICKETS_PASSWORD: &str = "tickets-test-password";
const CMDB_USER: &str = "desk.cmdb";
const CMDB_PASSWORD: &str = "cmdb-test-password";
const OPERATOR_USER: &str = "desk.operator";
const OPERATOR_PASSWORD: &str = "operator-test-password";
const PROVISIONER_PASSWORD: &str = "provisioner-test-password";
const ACME_PASSWORD: &str = "acme-test-password";
const GLOBEX_PASSWORD: &str = "globex-test-password";

/// The environment the config's unquoted `$VARIABLES` are read from (a Kubernetes Secret in
/// production).
const SERVER_ENV: &[(&str, &str)] = &[
    ("DESK_NATS_TICKETS_PASSWORD", TICKETS_PASSWORD),
    ("DESK_NATS_CMDB_PASSWORD", CMDB_PASSWORD),
    ("DESK_NATS_OPERATOR_PASSWORD", OPERATOR_PASSWORD),
    ("DESK_NATS_PROVISIONER_PASSWORD", PROVISIONER_PASSWORD),
    ("DESK_NATS_TENANT_ACME_PASSWORD", ACME_PASSWORD),
    ("DESK_NATS_TENANT_GLOBEX_PASSWORD", GLOBEX_PASSWORD),
];

fn infra_nats_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../infra/nats")
}

fn tickets() -> EventSource {
    EventSource::new(REGION, "tickets")
}

fn cmdb() -> EventSource {
    EventSource::new(REGION, "cmdb")
}

fn nats_settings(url: &str, user: &str, password: &str) -> NatsSettings {
    NatsSettings {
        user: Some(user.to_string()),
        password: Some(Secret::new(password.to_string())),
        url: url.to_string(),
        ..Settings::defaults().nats
    }
}

// ---------------------------------------------------------------------------------------------
// The desk side: the server on the shipped config, the services' streams, the tenant streams.
// ---------------------------------------------------------------------------------------------

struct Desk {
    nats: NatsServer,
    /// Connected as `desk.tickets` through the kit, as the tickets service connects.
    tickets: jetstream::Context,
    /// Connected as `desk.cmdb` through the kit.
    cmdb: jetstream::Context,
}

impl Desk {
    /// nats-server on infra/nats/desk.conf; the tickets and cmdb users create their streams
    /// exactly as the services do at start-up.
    async fn start() -> anyhow::Result<Desk> {
        let nats = NatsServer::start_with_config(infra_nats_dir().join("desk.conf"), SERVER_ENV)
            .await
            .context("starting nats-server on infra/nats/desk.conf")?;
        let tickets_settings = nats_settings(&nats.url(), TICKETS_USER, TICKETS_PASSWORD);
        let tickets = jetstream::new(connect_with(&tickets_settings, "desk-tickets").await?);
        ensure_stream(&tickets, &self::tickets(), &tickets_settings)
            .await
            .context("the tickets user creates DESK_EMEA_TICKETS")?;
        let cmdb_settings = nats_settings(&nats.url(), CMDB_USER, CMDB_PASSWORD);
        let cmdb = jetstream::new(connect_with(&cmdb_settings, "desk-cmdb").await?);
        ensure_stream(&cmdb, &self::cmdb(), &cmdb_settings)
            .await
            .context("the cmdb user creates DESK_EMEA_CMDB")?;
        Ok(Desk {
            nats,
            tickets,
            cmdb,
        })
    }

    /// The tenant's one provisioning step, as `<tenant>.provisioner` through the kit.
    async fn provision(&self, tenant: &str) -> anyhow::Result<()> {
        let settings = nats_settings(
            &self.nats.url(),
            &format!("{tenant}.provisioner"),
            PROVISIONER_PASSWORD,
        );
        let provisioner = jetstream::new(connect_with(&settings, "desk-provisioner").await?);
        ensure_tenant_stream(&provisioner, tenant, &[tickets(), cmdb()], &settings)
            .await
            .with_context(|| format!("provisioning the stream of tenant {tenant}"))
    }

    /// A user of the tenant accounts or of DESK, watching the server's refusals.
    async fn connect(&self, user: &str, password: &str) -> anyhow::Result<Watched> {
        Watched::connect(&self.nats.url(), user, password).await
    }
}

/// Publishes a CloudEvent as the outbox relay does (headers from `to_headers`, JetStream ack);
/// returns its `ce-id`.
async fn publish_event(
    jetstream: &jetstream::Context,
    source: &EventSource,
    tenant: &str,
    aggregate: &str,
    event: &str,
    payload: Vec<u8>,
) -> anyhow::Result<Uuid> {
    let id = Uuid::now_v7();
    let attributes = CloudEventAttributes {
        id,
        source: source.ce_source(),
        ce_type: source.ce_type(aggregate, event),
        subject: format!("{aggregate}-{id}"),
        tenant: tenant.to_string(),
        time: Utc::now(),
        traceparent: None,
    };
    jetstream
        .publish_with_headers(
            source.subject(tenant, aggregate, event),
            attributes.to_headers(),
            payload.into(),
        )
        .await?
        .await
        .with_context(|| format!("publishing a {aggregate}.{event} of {tenant}"))?;
    Ok(id)
}

async fn ticket_created(desk: &Desk, tenant: &str) -> anyhow::Result<Uuid> {
    publish_event(
        &desk.tickets,
        &tickets(),
        tenant,
        "ticket",
        "created",
        format!("ticket of {tenant}").into_bytes(),
    )
    .await
}

/// The `ce-tenant` and `ce-id` of a received event, checked against its subject's tenant token.
fn tenant_and_id(message: &async_nats::Message) -> anyhow::Result<(String, Uuid)> {
    let attributes = message
        .headers
        .as_ref()
        .and_then(CloudEventAttributes::from_headers)
        .with_context(|| format!("{} carries no CloudEvents headers", message.subject))?;
    let subject_tenant = message.subject.split('.').nth(3).unwrap_or_default();
    ensure!(
        subject_tenant == attributes.tenant,
        "{} carries ce-tenant {}",
        message.subject,
        attributes.tenant
    );
    Ok((attributes.tenant, attributes.id))
}

// ---------------------------------------------------------------------------------------------
// A client whose refusals are seen: async-nats reports them only through the event callback.
// ---------------------------------------------------------------------------------------------

struct Watched {
    client: Client,
    server_errors: mpsc::UnboundedReceiver<String>,
}

impl Watched {
    async fn connect(url: &str, user: &str, password: &str) -> anyhow::Result<Watched> {
        let (sender, server_errors) = mpsc::unbounded_channel();
        let client = async_nats::ConnectOptions::with_user_and_password(
            user.to_string(),
            password.to_string(),
        )
        .name(format!("test-{user}"))
        .event_callback(move |event| {
            let sender = sender.clone();
            async move {
                if let Event::ServerError(error) = event {
                    let text = match error {
                        ServerError::Other(text) => text,
                        other => other.to_string(),
                    };
                    let _ = sender.send(text);
                }
            }
        })
        .connect(url)
        .await
        .with_context(|| format!("connecting as {user}"))?;
        Ok(Watched {
            client,
            server_errors,
        })
    }

    /// Waits for the server's `Permissions Violation for <what> to "<subject>"`.
    async fn refused(&mut self, what: &str, subject: &str) -> anyhow::Result<()> {
        let wanted = format!("Permissions Violation for {what} to \"{subject}\"");
        let deadline = Instant::now() + PATIENCE;
        let mut others = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.server_errors.recv()).await {
                Ok(Some(text)) if text.eq_ignore_ascii_case(&wanted) => return Ok(()),
                Ok(Some(text)) => others.push(text),
                Ok(None) => bail!("the connection went away before the server said {wanted:?}"),
                Err(_) => bail!("the server never said {wanted:?}; it said {others:?}"),
            }
        }
    }

    /// A request the server answers (`$JS.API.INFO`), on an inbox of our own naming: the server
    /// handles a connection's commands in order, so the subscriptions made before are in place
    /// once the answer is here (`flush` only writes the socket). Returns the inbox.
    async fn round_trip(&self) -> anyhow::Result<String> {
        let inbox = self.client.new_inbox();
        let mut answers = self.client.subscribe(inbox.clone()).await?;
        self.client
            .publish_with_reply("$JS.API.INFO", inbox.clone(), "".into())
            .await?;
        tokio::time::timeout(PATIENCE, answers.next())
            .await
            .context("the server never answered $JS.API.INFO")?
            .context("the answer's subscription ended")?;
        Ok(inbox)
    }

    /// The refusals reported so far, taken.
    fn refusals_so_far(&mut self) -> Vec<String> {
        let mut seen = Vec::new();
        while let Ok(text) = self.server_errors.try_recv() {
            seen.push(text);
        }
        seen
    }
}

/// Receives from `subscriber` until the event `sentinel` arrives; returns every (tenant, id).
async fn receive_until(
    subscriber: &mut async_nats::Subscriber,
    sentinel: Uuid,
) -> anyhow::Result<Vec<(String, Uuid)>> {
    let mut received = Vec::new();
    let deadline = Instant::now() + PATIENCE;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let message = match tokio::time::timeout(left, subscriber.next()).await {
            Ok(Some(message)) => message,
            Ok(None) => bail!("the subscription ended before event {sentinel}; got {received:?}"),
            Err(_) => bail!("event {sentinel} never arrived; got {received:?}"),
        };
        let (tenant, id) = tenant_and_id(&message)?;
        received.push((tenant, id));
        if id == sentinel {
            return Ok(received);
        }
    }
}

/// What a subscription holds right now, without waiting.
fn already_delivered(subscriber: &mut async_nats::Subscriber) -> Vec<String> {
    let mut subjects = Vec::new();
    while let Some(Some(message)) = subscriber.next().now_or_never() {
        subjects.push(message.subject.to_string());
    }
    subjects
}

/// Fetches from a pull consumer of the tenant's stream until every id in `expected` has come,
/// acking each; returns everything fetched.
async fn fetch_until_all(
    consumer: &jetstream::consumer::PullConsumer,
    expected: &BTreeSet<Uuid>,
) -> anyhow::Result<Vec<(String, Uuid)>> {
    let mut fetched = Vec::new();
    let deadline = Instant::now() + PATIENCE;
    while !expected
        .iter()
        .all(|id| fetched.iter().any(|(_, seen)| seen == id))
    {
        ensure!(
            Instant::now() < deadline,
            "the tenant stream never held all of {expected:?}; fetched {fetched:?}"
        );
        let mut batch = consumer
            .fetch()
            .max_messages(64)
            .expires(Duration::from_millis(500))
            .messages()
            .await?;
        while let Some(message) = batch.next().await {
            let message = message.map_err(|e| anyhow::anyhow!(e))?;
            fetched.push(tenant_and_id(&message)?);
            message.ack().await.map_err(|e| anyhow::anyhow!(e))?;
        }
    }
    Ok(fetched)
}

async fn consumer_names(
    jetstream: &jetstream::Context,
    stream: &str,
) -> anyhow::Result<Vec<String>> {
    let stream = jetstream.get_stream(stream).await?;
    Ok(stream.consumer_names().try_collect().await?)
}

// ---------------------------------------------------------------------------------------------
// The files are what the generator prints.
// ---------------------------------------------------------------------------------------------

fn generate(args: &[&str]) -> anyhow::Result<String> {
    let output = std::process::Command::new("sh")
        .arg(infra_nats_dir().join("desk-nats-config.sh"))
        .args(args)
        .output()
        .context("running infra/nats/desk-nats-config.sh")?;
    ensure!(
        output.status.success(),
        "desk-nats-config.sh {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(String::from_utf8(output.stdout)?)
}

#[test]
fn the_shipped_config_files_are_what_the_generator_prints() -> anyhow::Result<()> {
    let desk_conf = std::fs::read_to_string(infra_nats_dir().join("desk.conf"))?;
    let tenants_conf = std::fs::read_to_string(infra_nats_dir().join("tenants.conf"))?;

    let generated_desk = generate(&["server", REGION, "tickets", "cmdb"])?;
    let generated_tenants = generate(&["tenant", "acme"])? + &generate(&["tenant", "globex"])?;

    ensure!(
        desk_conf == generated_desk,
        "infra/nats/desk.conf differs from `desk-nats-config.sh server emea tickets cmdb`: regenerate it"
    );
    ensure!(
        tenants_conf == generated_tenants,
        "infra/nats/tenants.conf differs from `desk-nats-config.sh tenant acme` + `tenant globex`: regenerate it"
    );
    Ok(())
}

#[test]
fn the_generators_tenant_stream_is_the_kits() -> anyhow::Result<()> {
    let from_script: stream::Config =
        serde_json::from_str(&generate(&["stream", "acme", REGION, "tickets", "cmdb"])?)?;

    let from_kit = tenant_stream_config("acme", &[tickets(), cmdb()], &Settings::defaults().nats)?;

    assert_eq!(from_script.name, from_kit.name);
    assert_eq!(from_script.description, from_kit.description);
    assert_eq!(from_script.subjects, from_kit.subjects);
    assert_eq!(from_script.sources, from_kit.sources);
    assert_eq!(from_script.storage, from_kit.storage);
    assert_eq!(from_script.retention, from_kit.retention);
    assert_eq!(from_script.max_age, from_kit.max_age);
    assert_eq!(from_script.max_bytes, from_kit.max_bytes);
    Ok(())
}

#[test]
fn the_generator_refuses_a_tenant_that_cannot_be_a_subject_token() {
    for tenant in ["Acme", "_deadletter", "ac.me", "a*", ""] {
        assert!(
            generate(&["tenant", tenant]).is_err(),
            "{tenant:?} was accepted"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Credentials.
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_without_the_right_password_is_refused() -> anyhow::Result<()> {
    let desk = Desk::start().await?;

    let anonymous = async_nats::ConnectOptions::new()
        .connect(desk.nats.url())
        .await;
    let wrong_password =
        async_nats::ConnectOptions::with_user_and_password("acme".into(), "guess".into())
            .connect(desk.nats.url())
            .await;
    let services_password_for_a_tenant =
        async_nats::ConnectOptions::with_user_and_password("acme".into(), TICKETS_PASSWORD.into())
            .connect(desk.nats.url())
            .await;

    for (who, attempt) in [
        ("no credentials", anonymous),
        ("a wrong password", wrong_password),
        ("another user's password", services_password_for_a_tenant),
    ] {
        match attempt {
            Err(error) => assert_eq!(
                error.kind(),
                async_nats::ConnectErrorKind::AuthorizationViolation,
                "{who}: {error}"
            ),
            Ok(_) => bail!("a client with {who} was let in"),
        }
    }
    Ok(())
}

#[tokio::test]
async fn a_user_without_a_password_is_a_settings_error() {
    let settings = NatsSettings {
        user: Some(TICKETS_USER.to_string()),
        password: None,
        url: "nats://127.0.0.1:1".to_string(),
        ..Settings::defaults().nats
    };

    let error = connect_with(&settings, "desk-tickets")
        .await
        .err()
        .map(|e| e.to_string());

    assert!(
        error
            .as_deref()
            .is_some_and(|e| e.contains("DESK_NATS__PASSWORD")),
        "{error:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// What an integrator receives.
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_integrator_receives_its_tenants_events_live_and_from_its_stream_and_no_other()
-> anyhow::Result<()> {
    let desk = Desk::start().await?;
    // Given events of both tenants from before the tenants' streams existed,
    let acme_history = [
        ticket_created(&desk, "acme").await?,
        ticket_created(&desk, "acme").await?,
    ];
    let mut globex_events = vec![ticket_created(&desk, "globex").await?];
    desk.provision("acme").await?;
    desk.provision("globex").await?;
    let mut acme = desk.connect("acme", ACME_PASSWORD).await?;
    let mut acme_live = acme.client.subscribe("desk.*.*.acme.>").await?;
    acme.round_trip().await?;

    // when both services publish for both tenants, a dead letter among them, acme's last,
    globex_events.push(ticket_created(&desk, "globex").await?);
    let acme_ticket = ticket_created(&desk, "acme").await?;
    desk.tickets
        .publish(
            tickets().dead_letter_subject("projector"),
            "an acme event the projector gave up on".into(),
        )
        .await?
        .await?;
    globex_events.push(
        publish_event(
            &desk.cmdb,
            &cmdb(),
            "globex",
            "ci",
            "created",
            b"ci".to_vec(),
        )
        .await?,
    );
    let acme_ci =
        publish_event(&desk.cmdb, &cmdb(), "acme", "ci", "created", b"ci".to_vec()).await?;
    let acme_sentinel = ticket_created(&desk, "acme").await?;

    // then acme's live subscription got exactly acme's live events,
    let live = receive_until(&mut acme_live, acme_sentinel).await?;
    let live_ids: BTreeSet<Uuid> = live.iter().map(|(_, id)| *id).collect();
    assert!(live.iter().all(|(tenant, _)| tenant == "acme"), "{live:?}");
    assert_eq!(
        live_ids,
        BTreeSet::from([acme_ticket, acme_ci, acme_sentinel]),
        "ticket {acme_ticket}, ci {acme_ci}, sentinel {acme_sentinel}; got {live:?}"
    );

    // and acme's stream holds acme's history and live events of both services, and nothing else.
    let acme_js = jetstream::new(acme.client.clone());
    let acme_stream = acme_js.get_stream(tenant_stream_name(REGION)).await?;
    let crm = acme_stream
        .create_consumer(pull::Config {
            durable_name: Some("acme-crm".to_string()),
            ack_policy: AckPolicy::Explicit,
            ..Default::default()
        })
        .await?;
    let expected: BTreeSet<Uuid> = acme_history
        .into_iter()
        .chain([acme_ticket, acme_ci, acme_sentinel])
        .collect();
    let fetched = fetch_until_all(&crm, &expected).await?;
    let fetched_ids: BTreeSet<Uuid> = fetched.iter().map(|(_, id)| *id).collect();
    assert!(
        fetched.iter().all(|(tenant, _)| tenant == "acme"),
        "{fetched:?}"
    );
    assert_eq!(fetched_ids, expected, "{fetched:?}");
    let stream_state = acme_js
        .get_stream(tenant_stream_name(REGION))
        .await?
        .info()
        .await?
        .state
        .clone();
    assert_eq!(stream_state.messages, expected.len() as u64);
    // The integrator's own reads needed no refused call.
    assert_eq!(acme.refusals_so_far(), Vec::<String>::new());

    // Globex's stream, by the same path, holds globex's events only.
    let globex = desk.connect("globex", GLOBEX_PASSWORD).await?;
    let globex_reader = jetstream::new(globex.client.clone())
        .get_stream(tenant_stream_name(REGION))
        .await?
        .create_consumer(pull::Config {
            ack_policy: AckPolicy::Explicit,
            ..Default::default()
        })
        .await?;
    let globex_expected: BTreeSet<Uuid> = globex_events.into_iter().collect();
    let globex_fetched = fetch_until_all(&globex_reader, &globex_expected).await?;
    assert!(
        globex_fetched.iter().all(|(tenant, _)| tenant == "globex"),
        "{globex_fetched:?}"
    );
    assert_eq!(
        globex_fetched.len(),
        globex_expected.len(),
        "{globex_fetched:?}"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// What an integrator is refused.
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_integrator_may_not_subscribe_to_other_tenants_nor_publish_desk_subjects()
-> anyhow::Result<()> {
    let desk = Desk::start().await?;
    let mut acme = desk.connect("acme", ACME_PASSWORD).await?;
    let mut acme_live = acme.client.subscribe("desk.*.*.acme.>").await?;
    acme.round_trip().await?;

    // When acme subscribes to globex's events and to every event,
    let mut globex_events = acme.client.subscribe("desk.*.*.globex.>").await?;
    let mut every_event = acme.client.subscribe("desk.>").await?;
    // and publishes as if it were the tickets service, for itself and for globex,
    acme.client
        .publish("desk.emea.tickets.acme.ticket.created", "forged".into())
        .await?;
    acme.client
        .publish("desk.emea.tickets.globex.ticket.created", "forged".into())
        .await?;
    acme.client.flush().await?;

    // then the server refuses each,
    acme.refused("Subscription", "desk.*.*.globex.>").await?;
    acme.refused("Subscription", "desk.>").await?;
    acme.refused("Publish", "desk.emea.tickets.acme.ticket.created")
        .await?;
    acme.refused("Publish", "desk.emea.tickets.globex.ticket.created")
        .await?;
    // the forged events are in no stream,
    let tickets_state = desk
        .tickets
        .get_stream(tickets().stream_name())
        .await?
        .info()
        .await?
        .state
        .clone();
    assert_eq!(tickets_state.messages, 0);
    // and the refused subscriptions stay empty while acme's own gets its events.
    ticket_created(&desk, "globex").await?;
    let sentinel = ticket_created(&desk, "acme").await?;
    let live = receive_until(&mut acme_live, sentinel).await?;
    assert_eq!(live, vec![("acme".to_string(), sentinel)]);
    assert_eq!(already_delivered(&mut globex_events), Vec::<String>::new());
    assert_eq!(already_delivered(&mut every_event), Vec::<String>::new());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_integrator_cannot_reach_the_services_streams_nor_create_streams() -> anyhow::Result<()>
{
    let desk = Desk::start().await?;
    ticket_created(&desk, "globex").await?;
    desk.provision("acme").await?;
    // A service's durable consumer over every tenant's tickets, as a projector would have.
    let projector = desk
        .tickets
        .get_stream(tickets().stream_name())
        .await?
        .create_consumer(pull::Config {
            durable_name: Some("projector".to_string()),
            ack_policy: AckPolicy::Explicit,
            ..Default::default()
        })
        .await?;
    let mut acme = desk.connect("acme", ACME_PASSWORD).await?;
    let mut acme_js = jetstream::new(acme.client.clone());
    acme_js.set_timeout(Duration::from_secs(2));
    let mut acme_to_desk = jetstream::with_prefix(acme.client.clone(), DESK_ACCOUNT_JS_API);
    acme_to_desk.set_timeout(Duration::from_secs(2));

    // A consumer on the tickets stream through acme's own JetStream: there is no such stream.
    let own_account = acme_js
        .create_consumer_on_stream(
            pull::Config {
                durable_name: Some("steal".to_string()),
                ..Default::default()
            },
            tickets().stream_name(),
        )
        .await;
    assert!(
        own_account.is_err(),
        "acme created a consumer on the tickets stream"
    );

    // Through the import of DESK's consumer API, even filtered on acme's subjects, with a push
    // delivery into a subject the services read: refused (facts §2b, the injection).
    let injected = acme_to_desk
        .create_consumer_on_stream(
            push::Config {
                name: Some("inject".to_string()),
                filter_subject: tickets().tenant_subjects("acme"),
                deliver_subject: "desk.emea.billing.globex.injected".to_string(),
                ..Default::default()
            },
            tickets().stream_name(),
        )
        .await;
    assert!(injected.is_err(), "acme created a push consumer in DESK");
    acme.refused(
        "Publish",
        &format!(
            "{DESK_ACCOUNT_JS_API}.CONSUMER.CREATE.{}.inject.{}",
            tickets().stream_name(),
            tickets().tenant_subjects("acme")
        ),
    )
    .await?;

    // Pulling from the service's consumer by name: refused, nothing delivered.
    acme.client
        .publish(
            format!(
                "{DESK_ACCOUNT_JS_API}.CONSUMER.MSG.NEXT.{}.projector",
                tickets().stream_name()
            ),
            "1".into(),
        )
        .await?;
    acme.refused(
        "Publish",
        &format!(
            "{DESK_ACCOUNT_JS_API}.CONSUMER.MSG.NEXT.{}.projector",
            tickets().stream_name()
        ),
    )
    .await?;

    // A stream of its own sourcing DESK with a deliver prefix among the services' subjects:
    // refused, as the server's source consumer would not be bound by acme's permissions.
    let own_stream = acme_js
        .create_stream(stream::Config {
            name: "ACME_COPY".to_string(),
            sources: Some(vec![stream::Source {
                name: tickets().stream_name(),
                filter_subject: Some(tickets().tenant_subjects("acme")),
                external: Some(stream::External {
                    api_prefix: DESK_ACCOUNT_JS_API.to_string(),
                    delivery_prefix: Some("desk.emea.billing.globex".to_string()),
                }),
                ..Default::default()
            }]),
            ..Default::default()
        })
        .await;
    assert!(own_stream.is_err(), "acme created a stream");
    acme.refused("Publish", "$JS.API.STREAM.CREATE.ACME_COPY")
        .await?;
    // Nor may it change the stream the platform made for it.
    let mut changed = tenant_stream_config("acme", &[tickets()], &Settings::defaults().nats)?;
    changed.max_age = Duration::from_secs(60);
    assert!(acme_js.update_stream(changed).await.is_err());
    acme.refused(
        "Publish",
        &format!("$JS.API.STREAM.UPDATE.{}", tenant_stream_name(REGION)),
    )
    .await?;

    // And DESK has only the service's consumer; it still holds the globex event undelivered.
    assert_eq!(
        consumer_names(&desk.tickets, &tickets().stream_name()).await?,
        vec!["projector".to_string()]
    );
    let projector_info = projector.clone().info().await?.clone();
    assert_eq!(projector_info.delivered.stream_sequence, 0);
    assert_eq!(projector_info.num_pending, 1);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_integrators_deliveries_cannot_create_consumers_in_the_desk_account()
-> anyhow::Result<()> {
    let desk = Desk::start().await?;
    // A consumer-create request that works when DESK itself sends it: a push consumer on acme's
    // subjects delivering into a subject the services read.
    let create_request = |name: &str| {
        serde_json::json!({
            "stream_name": tickets().stream_name(),
            "config": {
                "name": name,
                "filter_subject": "desk.emea.tickets.acme.x",
                "deliver_subject": "desk.emea.billing.globex.injected",
                "ack_policy": "none",
            }
        })
        .to_string()
    };
    let create_subject = |name: &str| {
        format!(
            "$JS.API.CONSUMER.CREATE.{}.{name}.desk.emea.tickets.acme.x",
            tickets().stream_name()
        )
    };
    let operator = desk.connect(OPERATOR_USER, OPERATOR_PASSWORD).await?;
    let control = operator
        .client
        .request(create_subject("control"), create_request("control").into())
        .await?;
    let control_answer = String::from_utf8_lossy(&control.payload).to_string();
    ensure!(
        control_answer.contains("consumer_create_response")
            && !control_answer.contains("\"error\""),
        "the control request did not create a consumer: {control_answer}"
    );
    // Given an acme event whose body is such a request, in acme's stream,
    desk.provision("acme").await?;
    publish_event(
        &desk.tickets,
        &tickets(),
        "acme",
        "ticket",
        "created",
        create_request("evil").into_bytes(),
    )
    .await?;
    let acme = desk.connect("acme", ACME_PASSWORD).await?;
    let acme_stream = jetstream::new(acme.client.clone())
        .get_stream(tenant_stream_name(REGION))
        .await?;
    let reader = acme_stream
        .create_consumer(pull::Config {
            durable_name: Some("reader".to_string()),
            ack_policy: AckPolicy::Explicit,
            ..Default::default()
        })
        .await?;

    // when acme's integrator pulls it with the reply subject under which its account reaches
    // DESK's consumer-create service (reply subjects are not checked against permissions; a
    // push consumer's deliver_subject there gets nothing, as nobody may subscribe to it),
    let deadline = Instant::now() + PATIENCE;
    while reader.clone().info().await?.num_ack_pending < 1 {
        ensure!(
            Instant::now() < deadline,
            "acme's consumer never delivered the event"
        );
        acme.client
            .publish_with_reply(
                format!(
                    "$JS.API.CONSUMER.MSG.NEXT.{}.reader",
                    tenant_stream_name(REGION)
                ),
                create_subject("evil").replacen("$JS.API.", "$JS.desk.API.", 1),
                r#"{"batch":1,"expires":500000000}"#.into(),
            )
            .await?;
        acme.client.flush().await?;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // then DESK has no consumer of that name: the delivery reaches DESK's API subjects but
    // carries the event's own subject, which names no API call. A JetStream API round trip after
    // the delivery lets a create that had been accepted land first.
    desk.tickets
        .get_stream(tickets().stream_name())
        .await?
        .create_consumer(pull::Config {
            durable_name: Some("barrier".to_string()),
            ..Default::default()
        })
        .await?;
    let mut names = consumer_names(&desk.tickets, &tickets().stream_name()).await?;
    names.sort();
    assert_eq!(names, vec!["barrier".to_string(), "control".to_string()]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_integrators_inbox_wildcard_sees_none_of_the_services_replies() -> anyhow::Result<()> {
    let desk = Desk::start().await?;
    // Given acme listening on every inbox it may (facts §2a, leak 1: in one account it got the
    // service's pull deliveries, every tenant's events),
    let acme = desk.connect("acme", ACME_PASSWORD).await?;
    let mut inboxes = acme.client.subscribe("_INBOX.>").await?;
    let mut acme_live = acme.client.subscribe("desk.*.*.acme.>").await?;
    let own_request_inbox = acme.round_trip().await?;

    // when the tickets service pulls globex's events through its consumer (deliveries on its
    // inbox) and then publishes one for acme,
    ticket_created(&desk, "globex").await?;
    let projector = desk
        .tickets
        .get_stream(tickets().stream_name())
        .await?
        .create_consumer(pull::Config {
            durable_name: Some("projector".to_string()),
            ack_policy: AckPolicy::Explicit,
            ..Default::default()
        })
        .await?;
    let mut pulled = Vec::new();
    let deadline = Instant::now() + PATIENCE;
    while pulled.is_empty() {
        ensure!(Instant::now() < deadline, "the projector pulled nothing");
        let mut batch = projector
            .fetch()
            .max_messages(8)
            .expires(Duration::from_millis(500))
            .messages()
            .await?;
        while let Some(message) = batch.next().await {
            let message = message.map_err(|e| anyhow::anyhow!(e))?;
            pulled.push(tenant_and_id(&message)?.0);
            message.ack().await.map_err(|e| anyhow::anyhow!(e))?;
        }
    }
    let sentinel = ticket_created(&desk, "acme").await?;

    // then acme gets its event, and its inbox wildcard got none of the service's traffic.
    assert_eq!(pulled, vec!["globex".to_string()]);
    receive_until(&mut acme_live, sentinel).await?;
    let others_replies: Vec<String> = already_delivered(&mut inboxes)
        .into_iter()
        .filter(|subject| *subject != own_request_inbox)
        .collect();
    assert_eq!(others_replies, Vec::<String>::new());
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The services' own users.
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_user_publishes_only_its_own_services_subjects() -> anyhow::Result<()> {
    let desk = Desk::start().await?;
    let mut tickets_user = desk.connect(TICKETS_USER, TICKETS_PASSWORD).await?;

    tickets_user
        .client
        .publish("desk.emea.cmdb.acme.ci.created", "forged".into())
        .await?;
    tickets_user
        .client
        .publish(
            "desk.apac.tickets.acme.ticket.created",
            "another region".into(),
        )
        .await?;
    tickets_user.client.flush().await?;

    tickets_user
        .refused("Publish", "desk.emea.cmdb.acme.ci.created")
        .await?;
    tickets_user
        .refused("Publish", "desk.apac.tickets.acme.ticket.created")
        .await?;
    let cmdb_state = desk
        .cmdb
        .get_stream(cmdb().stream_name())
        .await?
        .info()
        .await?
        .state
        .clone();
    assert_eq!(cmdb_state.messages, 0);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// A service's consumer, under its own credentials.
// ---------------------------------------------------------------------------------------------

/// The outbox and inbox of a consuming service named `cmdb`, as its migrator lists them.
struct CmdbTables;

#[async_trait::async_trait]
impl sea_orm_migration::MigratorTrait for CmdbTables {
    fn migrations() -> Vec<Box<dyn sea_orm_migration::MigrationTrait>> {
        use desk_kit::events::migrations::{inbox_migration, outbox_migration};
        vec![outbox_migration("cmdb"), inbox_migration("cmdb")]
    }
}

/// Applies `ticket.created` events whose body (a StringValue) is not `poison` while it is
/// poisoned.
#[derive(Default)]
struct Tickets {
    cured: std::sync::atomic::AtomicBool,
}

#[async_trait::async_trait]
impl desk_kit::events::Handle<String> for Tickets {
    async fn handle(
        &self,
        _effect: &desk_kit::events::Effect<'_>,
        _event: &desk_kit::events::IncomingEvent,
        message: String,
    ) -> Result<(), desk_kit::events::HandlerError> {
        if message == "poison" && !self.cured.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(desk_kit::events::HandlerError::Reject("poisoned".into()));
        }
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_consumes_another_services_stream_and_replays_its_dead_letters_under_its_own_credentials()
-> anyhow::Result<()> {
    use desk_kit::{
        db::Db,
        events::{Consumer, ConsumerSpec, Dispatcher, Outbox, Publisher, RelayHandle},
    };
    use prost::Message as _;
    use sea_orm_migration::MigratorTrait as _;

    // Given the server on the shipped config, two ticket events (one poisoned), and the cmdb
    // service consuming the tickets stream as `desk.cmdb`,
    let desk = Desk::start().await?;
    let database = desk_testkit::sqlite_database()?;
    let db = Db::connect(&database.url, 4).await?;
    CmdbTables::up(db.connection(), None).await?;
    for body in ["fine", "poison"] {
        publish_event(
            &desk.tickets,
            &tickets(),
            "acme",
            "ticket",
            "created",
            body.to_owned().encode_to_vec(),
        )
        .await?;
    }
    let handler = std::sync::Arc::new(Tickets::default());
    let consumer = |handler: &std::sync::Arc<Tickets>| {
        Consumer::new(
            Publisher::new(db.clone(), Outbox::new(cmdb()), RelayHandle::default()),
            desk.cmdb.clone(),
            ConsumerSpec::new(
                "cmdb-tickets",
                tickets().stream_name(),
                vec![format!("desk.{REGION}.tickets.*.ticket.>")],
                &Settings::defaults().consumer,
            ),
            Dispatcher::new().on::<String>("desk.tickets.ticket.created.v1", handler.clone()),
            std::sync::Arc::new(desk_kit::clock::SystemClock),
        )
    };
    let pull = consumer(&handler).ensure().await?;

    // when it processes them,
    let mut messages = Vec::new();
    let deadline = Instant::now() + PATIENCE;
    while messages.len() < 2 && Instant::now() < deadline {
        let mut batch = pull.fetch().max_messages(2).messages().await?;
        while let Some(message) = batch.next().await {
            messages.push(message.map_err(|e| anyhow::anyhow!(e))?);
        }
    }
    let dispositions = consumer(&handler).process(&messages).await?;

    // then the poison is parked on the cmdb's own dead-letter subject (a publish its user may make),
    use desk_kit::events::Disposition;
    assert_eq!(
        dispositions,
        vec![Disposition::Applied, Disposition::DeadLettered]
    );
    let dead_letter_subject = cmdb().dead_letter_subject("cmdb-tickets");
    // (read as the platform team does: services do not read messages by subject)
    let operator = jetstream::new(
        connect_with(
            &nats_settings(&desk.nats.url(), OPERATOR_USER, OPERATOR_PASSWORD),
            "desk-operator",
        )
        .await?,
    );
    let cmdb_stream = operator.get_stream(cmdb().stream_name()).await?;
    let parked = cmdb_stream
        .get_last_raw_message_by_subject(&dead_letter_subject)
        .await
        .context("the dead letter is in DESK_EMEA_CMDB")?;
    assert!(parked.headers.get("desk-error").is_some());

    // and once cured, a replay applies it and removes it from the stream (its user may delete
    // messages of its own stream).
    handler
        .cured
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let report = consumer(&handler).replay_dead_letters(10).await?;
    assert_eq!(report.replayed, 1, "{report:?}");
    assert!(
        cmdb_stream
            .get_last_raw_message_by_subject(&dead_letter_subject)
            .await
            .is_err(),
        "the replayed dead letter is gone"
    );
    drop(desk.nats);
    Ok(())
}
