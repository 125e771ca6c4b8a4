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
    /// The gateway's limits, routing and browser access (`desk-gateway`).
    pub gateway: GatewaySettings,
    /// Where notifications go out (`desk-notifications`): SMTP relay, sender, retries.
    #[serde(default)]
    pub notifications: NotificationSettings,
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
    /// A JWKS file with the IdP's public keys (RS256, ES256, EdDSA). Re-read with every refresh,
    /// so an updated Kubernetes Secret takes effect without a restart.
    pub jwks_file: Option<PathBuf>,
    /// The IdP's JWKS endpoint (`https://idp.example.com/.well-known/jwks.json`; `http://` for
    /// in-cluster IdPs), fetched at start and with every refresh. May be set with `jwks_file`.
    #[serde(default)]
    pub jwks_url: Option<String>,
    /// How often the JWKS (file and URL) is refreshed, picking up rotated keys.
    pub jwks_refresh_seconds: u64,
    /// A token naming a `kid` no key has triggers a refresh, at most once per this interval, so
    /// a flood of made-up `kid`s cannot hammer the IdP. A failed fetch is retried this often too.
    pub jwks_unknown_kid_refresh_seconds: u64,
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

/// The gateway: in microservices mode (`desk serve --target gateway`) it forwards each call to
/// the service named by its gRPC package (`desk.tickets.v1.…` → `services.tickets.url`); in
/// monolithic mode (`desk up`) the same layers wrap the in-process services. See the gateway
/// crate's docs and the README's "Gateway" section.
#[derive(Debug, Clone, Deserialize)]
pub struct GatewaySettings {
    /// Browser origins allowed to call through CORS, exactly as a browser sends them
    /// (`https://portal.example.com`); `*` allows any. Empty: no browser page may call.
    /// In the environment, comma-separated (`DESK_GATEWAY__CORS_ORIGINS=https://a,https://b`).
    #[serde(default)]
    pub cors_origins: Vec<String>,
    /// How long a browser may keep a preflight's answer.
    pub cors_max_age_seconds: u64,
    /// The longest deadline a call may ask for (`grpc-timeout`); a call that names none, or a
    /// later one, gets this one.
    pub max_deadline_ms: u64,
    /// Larger request messages are refused with `RESOURCE_EXHAUSTED` before they are forwarded.
    pub max_message_bytes: usize,
    /// How often each upstream's gRPC health is checked.
    pub health_interval_ms: u64,
    pub retry: GatewayRetrySettings,
    pub breaker: GatewayBreakerSettings,
    pub limits: GatewayRateLimits,
    /// Other regions' gateways (`gateway.peers.emea.url = "http://gateway.emea:50051"`): a call
    /// whose request id names one of these regions is answered there.
    #[serde(default)]
    pub peers: BTreeMap<String, ServiceAddress>,
}

/// Retries of idempotent calls (reads) whose upstream could not be reached.
#[derive(Debug, Clone, Deserialize)]
pub struct GatewayRetrySettings {
    /// Attempts of one call, the first included (1: no retry).
    pub max_attempts: u32,
    /// Pause before the first retry; each further retry waits twice as long.
    pub backoff_ms: u64,
    /// Retries may add at most this share of an upstream's calls (0.2: one retry per five calls)...
    pub budget_ratio: f64,
    /// ...plus this many per second, so a quiet upstream can still be retried.
    pub budget_min_per_second: f64,
}

/// When the gateway stops calling an upstream that fails (a circuit breaker per upstream).
#[derive(Debug, Clone, Deserialize)]
pub struct GatewayBreakerSettings {
    /// Consecutive failures (unreachable, `UNAVAILABLE`) that open the circuit.
    pub failure_threshold: u32,
    /// How long an open circuit refuses calls before one trial call may pass.
    pub open_ms: u64,
}

/// Token buckets per method class (see the gateway's `domain::methods`).
#[derive(Debug, Clone, Deserialize)]
pub struct GatewayRateLimits {
    /// `Get*`, `List*`.
    pub reads: ClassRateLimits,
    /// Every call that changes something and is not an import.
    pub writes: ClassRateLimits,
    /// `Search*`, `Analyze*`: reads that can cost much more than one object.
    pub searches: ClassRateLimits,
    /// `StageImport`, `CommitImport`, `DiscardImport`: bulk writes.
    pub imports: ClassRateLimits,
}

/// Two token buckets for one method class: one per tenant, one per person (tenant and `sub`).
/// A call needs a token from both. A rate of 0 means no limit for that bucket.
#[derive(Debug, Clone, Deserialize)]
pub struct ClassRateLimits {
    pub tenant_per_minute: u32,
    /// Calls a tenant may make at once after a quiet time.
    pub tenant_burst: u32,
    pub person_per_minute: u32,
    pub person_burst: u32,
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
jwks_refresh_seconds = 300
jwks_unknown_kid_refresh_seconds = 10
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
[gateway]
cors_max_age_seconds = 600
max_deadline_ms = 30000
max_message_bytes = 4194304
health_interval_ms = 5000
[gateway.retry]
max_attempts = 3
backoff_ms = 20
budget_ratio = 0.2
budget_min_per_second = 10.0
[gateway.breaker]
failure_threshold = 5
open_ms = 5000
[gateway.limits.reads]
tenant_per_minute = 60000
tenant_burst = 2000
person_per_minute = 6000
person_burst = 200
[gateway.limits.writes]
tenant_per_minute = 12000
tenant_burst = 500
person_per_minute = 1200
person_burst = 60
[gateway.limits.searches]
tenant_per_minute = 3000
tenant_burst = 100
person_per_minute = 300
person_burst = 20
[gateway.limits.imports]
tenant_per_minute = 120
tenant_burst = 10
person_per_minute = 60
person_burst = 5
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
                    .try_parsing(true)
                    // Only the keys named here are split at commas; every other value stays
                    // one string.
                    .list_separator(",")
                    .with_list_parse_key("gateway.cors_origins"),
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
    fn gateway_settings_read_peers_and_origins_from_a_file() {
        let mut file = tempfile::Builder::new()
            .suffix(".toml")
            .tempfile()
            .expect("temp file");
        std::io::Write::write_all(
            &mut file,
            b"[gateway]\ncors_origins = [\"https://portal.example.com\"]\n\
              [gateway.peers.emea]\nurl = \"http://gateway.emea:50051\"\n\
              [gateway.limits.reads]\ntenant_per_minute = 10\n",
        )
        .expect("written");
        let settings = Settings::load(Some(file.path())).expect("loads");
        assert_eq!(
            settings.gateway.cors_origins,
            ["https://portal.example.com"]
        );
        assert_eq!(
            settings.gateway.peers.get("emea").map(|p| p.url.as_str()),
            Some("http://gateway.emea:50051")
        );
        assert_eq!(settings.gateway.limits.reads.tenant_per_minute, 10);
        // The rest of the class keeps its defaults.
        assert_eq!(settings.gateway.limits.reads.tenant_burst, 2000);
    }

    #[test]
    fn secrets_do_not_print() {
        let secret = Secret::new("hunter2".to_string());
        assert_eq!(format!("{secret:?}"), "***");
    }
}

/// The notifications service's transports (`DESK_NOTIFICATIONS__SMTP_URL=smtp://relay:587?tls=required`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct NotificationSettings {
    /// A lettre SMTP URL: `smtp://host:port` (plain, for a local relay), `smtp://host:587?tls=required`
    /// (STARTTLS), `smtps://user:password@host:465` (TLS with auth). Empty: e-mail is not sent,
    /// and e-mail deliveries wait.
    pub smtp_url: Secret<String>,
    /// The `From` of every e-mail.
    pub from_address: String,
    /// The right-hand side of `Message-ID`s and thread roots.
    pub message_id_domain: String,
    /// An HTTP endpoint SMS are POSTed to as JSON (`{"to": …, "body": …}`), signed like webhooks.
    pub sms_provider_url: String,
    /// Tenants whose webhooks may point at loopback, link-local and private addresses.
    pub private_webhook_tenants: Vec<String>,
    /// Attempts in all before a delivery is dead-lettered.
    pub max_attempts: u32,
    /// How often the sender looks for due deliveries when nothing woke it.
    pub poll_interval_ms: u64,
    /// Deliveries the sender takes at once.
    pub batch_size: u64,
    /// How long one attempt may take.
    pub attempt_timeout_ms: u64,
    /// Notifications to one person about one ticket within this window become one message;
    /// 0 sends each on its own.
    pub coalesce_seconds: u64,
}

impl Default for NotificationSettings {
    fn default() -> Self {
        Self {
            smtp_url: Secret::new(String::new()),
            from_address: "desk@localhost.localdomain".into(),
            message_id_domain: "desk.localdomain".into(),
            sms_provider_url: String::new(),
            private_webhook_tenants: Vec::new(),
            max_attempts: 12,
            poll_interval_ms: 1000,
            batch_size: 128,
            attempt_timeout_ms: 10_000,
            coalesce_seconds: 60,
        }
    }
}
