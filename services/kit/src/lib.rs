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
//! - [`events`]: CloudEvents envelope, streams, the transactional outbox and its relay, supervised
//!   consumers with typed dispatch and an inbox, dead letters, followers for in-memory models.
//! - [`clock`]: injected time.
//! - [`blocking`]: long computations in async handlers without stalling the worker's other calls.
//! - [`history`]: field-by-field change records for every aggregate's history.
//! - `string_enum!`: closed enums with one snake_case name each (database values, subjects, JSON).
//! - [`ids`]: region-qualified public ids.
//! - [`nats_server`]: finding a nats-server >= 2.10 to start.
//! - [`paging`]: opaque cursor tokens.
//! - [`schema`]: column and index shorthands for migrations.
//! - [`host`]: composing services into one server with health, reflection, gRPC-Web and ordered shutdown;
//!   the process-wide hooks `Platform::health` and `Platform::front` (layers around every call).
//!
//! # Adding a service
//! Say the service is `sla`; every step names where the first two services (`desk-tickets`,
//! `desk-cmdb`) did the same.
//! 1. **Protos**: `proto/desk/sla/v1/sla.proto` (the gRPC service) and `events.proto` (one
//!    message per event), listed in `proto/build.rs`'s `protos`, exported from `proto/src/lib.rs`;
//!    `buf lint` (STANDARD) passes.
//! 2. **Crate**: `services/sla/` with the four rooms `domain/`, `store/`, `api/`, `events/` and a
//!    `lib.rs` opening with what the service is and its layout; `SERVICE = "sla"` (subjects,
//!    stream, tables, settings) and `GRPC_SERVICE = "desk.sla.v1.SlaService"`. Add it to the root
//!    `Cargo.toml`'s `members` and `[workspace.dependencies]`, with `[lints] workspace = true`.
//! 3. **Store**: a migrator whose `migration_table_name` is `sla_migrations` (services may share a
//!    database), listing [`events::migrations::outbox_migration`] and, when it consumes,
//!    [`events::migrations::inbox_migration`] first, its own migrations (one per file, named by
//!    date), then [`events::migrations::outbox_unpublished_migration`]. Every table has
//!    `tenant_id`; aggregates have `version`. Idempotent creates use an
//!    [`idempotency::IdempotencyKeys`] table and its `purge_periodically` worker.
//! 4. **Entry point** `build(&Platform, &mut RoutesBuilder) -> ServiceParts`: open and migrate the
//!    database, [`events::streams::ensure_stream`], an [`events::OutboxRelay`] (with
//!    `.with_stream_settings` and `.with_clock(platform.clock)`) and a [`events::Publisher`]
//!    sharing its [`events::RelayHandle`]; the gRPC server wrapped in [`auth::AuthInterceptor`]
//!    (`.open_to_services(&[..]).wrap(server)` for methods other services may call with a service
//!    token); handlers read [`auth::caller`].
//! 5. **Consumers** of other services' events: a [`events::Dispatcher`] with one
//!    [`events::Handle`] per `ce-type` (the decoded protobuf message; effects through
//!    [`events::Effect`], which publishes in the same transaction), a [`events::ConsumerSpec`]
//!    from `platform.settings.consumer` named `sla-<what for>` on the source's stream
//!    (`EventSource::new(region, "tickets").stream_name()`), and
//!    [`events::Consumer::spawn`]ed into [`ServiceParts::with_consumer`]. In-memory read models
//!    that every replica must keep follow a stream with [`events::follow::Follow`] instead.
//!    Calls to another service go through [`calls::ServiceCalls`].
//!    The crate exports `pub const ENTRY: desk_kit::ServiceEntry` (name, gRPC service,
//!    `migrate` = `open_database`, `build`), copied from `desk_tickets::ENTRY`.
//! 6. **Binary**: `services/desk` lists `desk_sla::ENTRY` in `SERVICES`
//!    (`services/desk/src/lib.rs`) and depends on the crate; `desk up`, `desk serve --target sla`
//!    and `desk migrate` then know it.
//! 7. **Tests**: one integration-test binary (`tests/service.rs`) whose `support` module wraps
//!    `desk_testkit::service::ServiceUnderTest` — the service booted by [`host::run`] with its
//!    `ENTRY`, exactly as the binary boots it, on the testkit's PostgreSQL, SQLite and
//!    nats-server, on a manual clock when time matters (`Harness::manual_clock`) — with the
//!    service's typed client and request builders (see `services/tickets/tests/support`);
//!    domain unit tests beside the code; a `desk-bench` suite in `e2e/` when the issue names
//!    figures.

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

pub use host::{Platform, ServiceEntry, ServiceParts};
