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
    /// Where this process calls other services (`DESK_SERVICES__TICKETS__URL=http://tickets:50051`).
    /// A service not named here is called at this process's own `grpc.listen` address, which is
    /// where monolithic mode serves every service. See [`crate::calls`].
    #[serde(default)]
    pub services: BTreeMap<String, ServiceAddress>,
    pub auth: AuthSettings,
    pub outbox: OutboxSettings,
    pub consumer: ConsumerSettings,
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
    /// A JWKS file with the public keys of the desk's services (ES256, EdDSA). Only these keys,
    /// and the development secret, may sign service tokens (`roles: [service]`); they verify no
    /// user token, and the IdP's keys (`jwks_file`) verify no service token.
    pub service_jwks_file: Option<PathBuf>,
    /// This service's private signing key for service tokens: a PKCS#8 PEM, Ed25519 or P-256
    /// (ES256). Its public half is in every service's `service_jwks_file` under
    /// `service_signing_key_id`. Without it, the development secret signs service tokens when set.
    pub service_signing_key_file: Option<PathBuf>,
    /// The `kid` the service signing key has in the services' JWKS.
    pub service_signing_key_id: Option<String>,
    /// How long a service token lives; one is re-minted when half of this has passed.
    pub service_token_ttl_seconds: u64,
}

/// One other service this process calls (see [`Settings::services`]).
#[derive(Debug, Clone, Deserialize)]
pub struct ServiceAddress {
    /// `http://tickets.desk.svc:50051`; plain HTTP/2 (in-cluster traffic).
    pub url: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct OutboxSettings {
    pub batch_size: u64,
    /// The relay is woken after each commit; this poll is only the fallback (another replica's commit).
    pub poll_interval_ms: u64,
    /// Published rows are kept this long so a NATS host crash can be re-published.
    pub retention_hours: u64,
}

/// How every event consumer of this process reads (`DESK_CONSUMER__BATCH_SIZE=1`); a consumer may
/// override a value for itself where its effect needs it (see `events::consumer::ConsumerSpec`).
#[derive(Debug, Clone, Deserialize)]
pub struct ConsumerSettings {
    /// Deliveries of one event before it is dead-lettered (the first one included).
    pub max_deliver: i64,
    /// Delay before the n-th retry of a failed event, in milliseconds; the last value repeats.
    pub backoff_ms: Vec<u64>,
    /// An event not acknowledged this long after delivery is delivered again.
    pub ack_wait_seconds: u64,
    /// Events applied in one transaction when that many are waiting (1: one transaction each).
    pub batch_size: u64,
    /// Inbox rows (ids of applied events) are kept this long, so a redelivery or a replay of an
    /// event still in the source stream is recognised: keep it at least the streams' max age.
    pub inbox_retention_hours: u64,
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
service_token_ttl_seconds = 300
[outbox]
batch_size = 256
poll_interval_ms = 1000
retention_hours = 24
[consumer]
max_deliver = 5
backoff_ms = [200, 1000, 5000, 30000]
ack_wait_seconds = 30
batch_size = 64
inbox_retention_hours = 168
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
