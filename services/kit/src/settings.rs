//! Layered, typed settings: defaults → optional TOML file → `DESK_`-prefixed environment, with `__`
//! for nesting (`DESK_NATS__URL`, `DESK_AUTH__ISSUER`). Helm sets the environment.

use std::{collections::BTreeMap, fmt, net::SocketAddr, path::PathBuf};

use serde::Deserialize;

/// A value that must never reach a log line: `Debug` and `Display` print `***`.
#[derive(Clone, Deserialize, PartialEq, Eq, Default)]
#[serde(transparent)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    pub fn new(value: T) -> Self {
        Secret(value)
    }
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    /// The region this process serves (`emea`): part of every id, subject and stream name.
    pub region: String,
    /// Where monolithic mode keeps its SQLite files, keys and the NATS store.
    pub data_dir: PathBuf,
    pub grpc: GrpcSettings,
    pub database: DatabaseSettings,
    pub nats: NatsSettings,
    pub auth: AuthSettings,
    pub outbox: OutboxSettings,
}

#[derive(Debug, Clone, Deserialize)]
pub struct GrpcSettings {
    pub listen: SocketAddr,
    /// Larger requests are refused with `RESOURCE_EXHAUSTED` before they are decoded.
    pub max_message_bytes: usize,
    /// In-flight requests per connection before callers queue.
    pub concurrency_per_connection: usize,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DatabaseSettings {
    /// The default database for every service; empty in monolithic mode (SQLite under `data_dir`).
    pub url: Secret<String>,
    /// Per-service overrides (`DESK_DATABASE__SERVICES__TICKETS=postgres://...`): each service owns its tables.
    #[serde(default)]
    pub services: BTreeMap<String, Secret<String>>,
    pub max_connections: u32,
}

#[derive(Debug, Clone, Deserialize)]
pub struct NatsSettings {
    /// Empty in monolithic mode: `desk up` starts its own nats-server.
    pub url: String,
    pub stream_max_age_hours: u64,
    /// -1 for unlimited.
    pub stream_max_bytes: i64,
    /// JetStream drops a re-sent `Nats-Msg-Id` inside this window; the contract asks ≥ 2 minutes.
    pub duplicate_window_seconds: u64,
    /// The service's NATS user (`desk.tickets` in infra/nats/desk.conf); unset connects without
    /// credentials, as `desk up`'s own nats-server expects. Set together with `password`.
    #[serde(default)]
    pub user: Option<String>,
    /// That user's password (`DESK_NATS__PASSWORD`, from the Kubernetes Secret the server's
    /// `$DESK_NATS_<SERVICE>_PASSWORD` comes from).
    #[serde(default)]
    pub password: Option<Secret<String>>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AuthSettings {
    pub issuer: String,
    pub audience: String,
    /// A JWKS file with the IdP's public keys (RS256, ES256, EdDSA).
    pub jwks_file: Option<PathBuf>,
    /// Development only: a shared HS256 secret. Never set in production.
    pub dev_hs256_secret: Option<Secret<String>>,
    pub leeway_seconds: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct OutboxSettings {
    pub batch_size: u64,
    /// The relay is woken after each commit; this poll is only the fallback (another replica's commit).
    pub poll_interval_ms: u64,
    /// Published rows are kept this long so a NATS host crash can be re-published.
    pub retention_hours: u64,
}

const DEFAULTS: &str = r#"
region = "local"
data_dir = ".desk-data"
[grpc]
listen = "127.0.0.1:50051"
max_message_bytes = 4194304
concurrency_per_connection = 256
[database]
url = ""
max_connections = 32
[nats]
url = ""
stream_max_age_hours = 168
stream_max_bytes = -1
duplicate_window_seconds = 120
[auth]
issuer = "desk"
audience = "desk"
leeway_seconds = 30
[outbox]
batch_size = 256
poll_interval_ms = 1000
retention_hours = 24
"#;

impl Settings {
    /// Defaults, then `file` when given, then the `DESK_` environment.
    pub fn load(file: Option<&std::path::Path>) -> anyhow::Result<Settings> {
        let mut builder = config::Config::builder()
            .add_source(config::File::from_str(DEFAULTS, config::FileFormat::Toml));
        if let Some(path) = file {
            builder = builder.add_source(config::File::from(path));
        }
        let settings: Settings = builder
            .add_source(
                config::Environment::with_prefix("DESK")
                    .prefix_separator("_")
                    .separator("__")
                    .try_parsing(true),
            )
            .build()?
            .try_deserialize()?;
        settings.check()?;
        Ok(settings)
    }

    /// Only the defaults (and no environment): for tests and tools that set every field they need.
    pub fn defaults() -> Settings {
        #[allow(clippy::expect_used)]
        config::Config::builder()
            .add_source(config::File::from_str(DEFAULTS, config::FileFormat::Toml))
            .build()
            .and_then(|c| c.try_deserialize())
            .expect("the built-in defaults deserialize")
    }

    fn check(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            crate::ids::is_region(&self.region),
            "region {:?} must be 1..=16 lower-case letters or digits",
            self.region
        );
        Ok(())
    }

    /// The database a service uses: its override, else the shared URL, else a SQLite file under `data_dir`.
    pub fn database_url_for(&self, service: &str) -> String {
        if let Some(url) = self.database.services.get(service) {
            return url.expose().clone();
        }
        if !self.database.url.expose().is_empty() {
            return self.database.url.expose().clone();
        }
        format!(
            "sqlite://{}?mode=rwc",
            self.data_dir.join(format!("{service}.sqlite")).display()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_give_a_local_sqlite_database_per_service() {
        let settings = Settings::defaults();
        assert_eq!(settings.region, "local");
        assert_eq!(
            settings.database_url_for("tickets"),
            "sqlite://.desk-data/tickets.sqlite?mode=rwc"
        );
    }

    #[test]
    fn secrets_do_not_print() {
        let secret = Secret::new("hunter2".to_string());
        assert_eq!(format!("{secret:?}"), "***");
    }
}
