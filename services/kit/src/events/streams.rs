//! Streams are created or updated at start-up, idempotently, from configuration.
//!
//! A service's stream (`DESK_<REGION>_<SERVICE>`) lives in the NATS account `DESK` and holds every
//! tenant's events. A tenant's integrator reads a copy of its own events only: the stream
//! `DESK_<REGION>_EVENTS` in the tenant's own account, sourced from the service streams through
//! the exports of infra/nats/desk.conf ([`ensure_tenant_stream`]).

use std::time::Duration;

use anyhow::{bail, ensure};
use async_nats::jetstream::{self, stream};

use super::envelope::EventSource;
use crate::settings::NatsSettings;

/// The stream config for a publishing service in a region.
pub fn stream_config(source: &EventSource, settings: &NatsSettings) -> stream::Config {
    stream::Config {
        name: source.stream_name(),
        subjects: vec![source.stream_subjects()],
        storage: stream::StorageType::File,
        retention: stream::RetentionPolicy::Limits,
        max_age: Duration::from_secs(settings.stream_max_age_hours.saturating_mul(3600)),
        max_bytes: settings.stream_max_bytes,
        duplicate_window: Duration::from_secs(settings.duplicate_window_seconds.max(120)),
        description: Some(format!(
            "events of the desk {} service in region {}",
            source.service, source.region
        )),
        ..Default::default()
    }
}

/// Creates the stream, or brings an existing one's limits up to date.
pub async fn ensure_stream(
    jetstream: &jetstream::Context,
    source: &EventSource,
    settings: &NatsSettings,
) -> anyhow::Result<()> {
    let config = stream_config(source, settings);
    let mut stream = jetstream.get_or_create_stream(config.clone()).await?;
    let current = stream.info().await?.config.clone();
    if current.max_age != config.max_age
        || current.max_bytes != config.max_bytes
        || current.duplicate_window != config.duplicate_window
        || current.subjects != config.subjects
    {
        jetstream.update_stream(config).await?;
        tracing::info!(stream = %source.stream_name(), "stream limits updated");
    }
    Ok(())
}

/// The prefix under which a tenant account reaches the `DESK` account's JetStream API: the
/// import of DESK's consumer-create service in infra/nats/tenants.conf, which takes only consumers
/// filtered on that tenant's subjects. Tenant users are denied it; only the server's own source
/// consumers use it.
pub const DESK_ACCOUNT_JS_API: &str = "$JS.desk.API";

/// `DESK_<REGION>_EVENTS`: the stream in a tenant's own NATS account that holds that tenant's
/// events of one region, from every service.
pub fn tenant_stream_name(region: &str) -> String {
    format!("DESK_{}_EVENTS", region.to_uppercase())
}

/// Where the source consumer of `service`'s stream delivers a tenant's events: under
/// `deliver.<tenant>.`, which infra/nats/desk.conf exports to the account named `<tenant>` only.
pub fn tenant_delivery_prefix(tenant: &str, service: &EventSource) -> String {
    format!("deliver.{tenant}.{}.{}", service.region, service.service)
}

/// The tenant's stream: no subjects of its own (the live events the tenant account imports
/// would otherwise be stored twice), one source per service stream filtered on the tenant's
/// subjects, read through [`DESK_ACCOUNT_JS_API`]. A source with a wider filter would silently
/// receive nothing, since the export only answers filtered creates.
pub fn tenant_stream_config(
    tenant: &str,
    services: &[EventSource],
    settings: &NatsSettings,
) -> anyhow::Result<stream::Config> {
    ensure!(
        crate::ids::is_tenant_id(tenant),
        "tenant {tenant:?} cannot be a subject token, so it has no NATS account"
    );
    let Some(first) = services.first() else {
        bail!("a tenant stream needs at least one service stream to source from");
    };
    ensure!(
        services
            .iter()
            .all(|service| service.region == first.region),
        "a tenant stream holds one region; the services given span several"
    );
    let sources = services
        .iter()
        .map(|service| stream::Source {
            name: service.stream_name(),
            filter_subject: Some(service.tenant_subjects(tenant)),
            external: Some(stream::External {
                api_prefix: DESK_ACCOUNT_JS_API.to_string(),
                delivery_prefix: Some(tenant_delivery_prefix(tenant, service)),
            }),
            ..Default::default()
        })
        .collect();
    Ok(stream::Config {
        name: tenant_stream_name(&first.region),
        subjects: Vec::new(),
        sources: Some(sources),
        storage: stream::StorageType::File,
        retention: stream::RetentionPolicy::Limits,
        max_age: Duration::from_secs(settings.stream_max_age_hours.saturating_mul(3600)),
        max_bytes: settings.stream_max_bytes,
        description: Some(format!(
            "events of tenant {tenant} in region {}, sourced from the desk services' streams",
            first.region
        )),
        ..Default::default()
    })
}

/// Creates the tenant's stream in the tenant's account, or brings its sources and limits up to
/// date (a service added later): the one provisioning step of a new tenant after its account
/// block (infra/nats/README.md). `jetstream` must be connected as `<tenant>.provisioner`; the
/// tenant's integrator may not create streams, as a source's deliver prefix is not checked
/// against anyone's permissions.
pub async fn ensure_tenant_stream(
    jetstream: &jetstream::Context,
    tenant: &str,
    services: &[EventSource],
    settings: &NatsSettings,
) -> anyhow::Result<()> {
    let config = tenant_stream_config(tenant, services, settings)?;
    let mut stream = jetstream.get_or_create_stream(config.clone()).await?;
    let current = stream.info().await?.config.clone();
    let source_key = |sources: &Option<Vec<stream::Source>>| {
        let mut keys: Vec<_> = sources
            .iter()
            .flatten()
            .map(|source| {
                (
                    source.name.clone(),
                    source.filter_subject.clone(),
                    source.external.clone(),
                )
            })
            .collect();
        keys.sort_by(|a, b| a.0.cmp(&b.0));
        keys
    };
    if source_key(&current.sources) != source_key(&config.sources)
        || current.max_age != config.max_age
        || current.max_bytes != config.max_bytes
    {
        let name = config.name.clone();
        jetstream.update_stream(config).await?;
        tracing::info!(stream = %name, tenant = %tenant, "tenant stream updated");
    }
    Ok(())
}

/// Connects to NATS without credentials (a nats-server without accounts, as `desk up` starts);
/// reconnects are automatic afterwards.
pub async fn connect(url: &str, client_name: &str) -> anyhow::Result<async_nats::Client> {
    Ok(connect_options(client_name).connect(url).await?)
}

/// Connects to `settings.url` as `settings.user` when it is set (each service has its own user in
/// infra/nats/desk.conf), else without credentials; reconnects are automatic afterwards.
pub async fn connect_with(
    settings: &NatsSettings,
    client_name: &str,
) -> anyhow::Result<async_nats::Client> {
    let user = settings.user.as_deref().filter(|user| !user.is_empty());
    let password = settings
        .password
        .as_ref()
        .map(|password| password.expose().as_str())
        .filter(|password| !password.is_empty());
    let options = match (user, password) {
        (Some(user), Some(password)) => {
            connect_options(client_name).user_and_password(user.to_string(), password.to_string())
        }
        (None, None) => connect_options(client_name),
        _ => bail!(
            "a NATS user needs its password and a password its user: set both DESK_NATS__USER and DESK_NATS__PASSWORD, or neither"
        ),
    };
    Ok(options.connect(settings.url.as_str()).await?)
}

fn connect_options(client_name: &str) -> async_nats::ConnectOptions {
    async_nats::ConnectOptions::new()
        .name(client_name)
        .retry_on_initial_connect()
        .event_callback(|event| async move {
            match event {
                async_nats::Event::Disconnected => tracing::warn!("nats disconnected"),
                async_nats::Event::Connected => tracing::info!("nats connected"),
                // Refused credentials and permission violations arrive only here: a refused
                // publish or subscribe returns Ok, and a refused JetStream call just times out.
                async_nats::Event::ServerError(error) => {
                    tracing::warn!(error = %error, "nats server refused a request")
                }
                other => tracing::debug!(event = %other, "nats event"),
            }
        })
}
