//! What every desk service stands on. No domain logic lives here.
//!
//! # Layout
//! - [`settings`]: layered typed configuration (defaults → file → `DESK_*` environment).
//! - [`telemetry`]: JSON logs, OTLP traces and metrics, `traceparent` in and out.
//! - [`auth`]: JWT verification (ARCHITECTURE §7) as a tonic interceptor; development tokens;
//!   methods open to service tokens.
//! - [`service_tokens`]: the short-lived tokens a service signs for work no user started.
//! - [`calls`]: one service calling another: token, `traceparent` and deadline carried, the
//!   callee's status turned into retry-or-fail.
//! - [`idempotency`]: idempotent creates (ARCHITECTURE §11): fingerprints, keys, replays, purge.
//! - [`error`]: the one table from error classes to gRPC status codes, with field violations.
//! - [`db`]: PostgreSQL/SQLite connections and write transactions that behave alike.
//! - [`events`]: CloudEvents envelope, streams, the transactional outbox and its relay, the inbox.
//! - [`clock`]: injected time.
//! - [`blocking`]: long computations in async handlers without stalling the worker's other calls.
//! - [`history`]: field-by-field change records for every aggregate's history.
//! - `string_enum!`: closed enums with one snake_case name each (database values, subjects, JSON).
//! - [`ids`]: region-qualified public ids.
//! - [`nats_server`]: finding a nats-server >= 2.10 to start.
//! - [`paging`]: opaque cursor tokens.
//! - [`schema`]: column and index shorthands for migrations.
//! - [`host`]: composing services into one server with health, reflection, gRPC-Web and ordered shutdown.
//!
//! # Adding a service
//! 1. A crate under `services/` with `domain/`, `store/`, `api/`, `events/` and a `build(&Platform,
//!    &mut RoutesBuilder) -> ServiceParts` entry point (see `desk-tickets`).
//! 2. Its migrator lists [`events::migrations::outbox_migration`] (and the inbox when it consumes)
//!    first, and [`events::migrations::outbox_unpublished_migration`] after its own migrations.
//! 3. Its gRPC server is wrapped in [`auth::AuthInterceptor`]; handlers read [`auth::principal`].
//! 4. The `desk` binary names it as a target.

pub mod auth;
pub mod blocking;
pub mod calls;
pub mod clock;
pub mod db;
pub mod error;
pub mod events;
pub mod history;
pub mod host;
pub mod idempotency;
pub mod ids;
pub mod nats_server;
pub mod paging;
pub mod schema;
pub mod service_tokens;
pub mod settings;
mod string_enum;
pub mod telemetry;

pub use host::{Platform, ServiceParts};
