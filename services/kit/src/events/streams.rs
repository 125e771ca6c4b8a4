//! Streams are created or updated at start-up, idempotently, from configuration.

use std::time::Duration;

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

/// Connects to NATS, retrying until it answers; reconnects are automatic afterwards.
pub async fn connect(url: &str, client_name: &str) -> anyhow::Result<async_nats::Client> {
    let client = async_nats::ConnectOptions::new()
        .name(client_name)
        .retry_on_initial_connect()
        .event_callback(|event| async move {
            match event {
                async_nats::Event::Disconnected => tracing::warn!("nats disconnected"),
                async_nats::Event::Connected => tracing::info!("nats connected"),
                other => tracing::debug!(event = %other, "nats event"),
            }
        })
        .connect(url)
        .await?;
    Ok(client)
}
