//! The gateway: the one address front-ends and integrators call (ARCHITECTURE §8).
//!
//! In microservices mode (`desk serve --target gateway`) it forwards each call by its gRPC
//! service name (`/desk.tickets.v1.TicketService/…` → `services.tickets.url`) as a transparent
//! HTTP/2 proxy — no code per method, streaming passes through — so a new service is reachable
//! by configuration alone. In monolithic mode (`desk up`) the same layer wraps the in-process
//! services on the one address. Either way it:
//! - verifies the bearer token (each service verifies it again: the hop is never trusted);
//! - limits calls per tenant and per person, per method class (token buckets), answering
//!   `RESOURCE_EXHAUSTED` with `google.rpc.RetryInfo` and the `ratelimit-*` fields;
//! - caps deadlines (`grpc-timeout`) and request message sizes;
//! - serves gRPC-Web (binary and text) with CORS for the configured origins;
//! - retries idempotent calls (reads) whose upstream was not reached, within a budget, and
//!   stops calling an upstream that keeps failing (a circuit breaker per upstream);
//! - answers a call for an object of another region through that region's gateway (the region
//!   is part of every id);
//! - reports gRPC health per upstream; reflection (from the host) lists every public service
//!   from the one descriptor set.
//!
//! # Layout
//! - [`domain`]: the rules, pure: method table, routes, frames, limits, retries, breaker,
//!   deadlines, origins.
//! - [`upstreams`]: in the place of a service's `store/` (the gateway holds nothing durable):
//!   the registry of upstreams — channels, breakers, retry budgets — forwarding, and health.
//! - [`api`]: the layer every call goes through: CORS, gRPC-Web, token, limits, routing.
//! - [`local`]: a gateway on a loopback port, for tests and benchmarks.
//!
//! There is no `events/`: the gateway publishes and consumes nothing. The proto package
//! `desk.gateway.v1` is the gateway's own (for the portal facade); the gateway never forwards it.

pub mod api;
pub mod domain;
pub mod local;
pub mod upstreams;

use std::{sync::Arc, time::Duration};

use anyhow::Context as _;
use desk_kit::{Platform, ServiceParts};
use tonic::service::RoutesBuilder;

/// The gateway's name: its target, and the `services.<name>` it never forwards to.
pub const SERVICE: &str = "gateway";

/// How often idle rate-limit buckets are forgotten.
const FORGET_IDLE_BUCKETS_EVERY: Duration = Duration::from_secs(60);

/// The gateway as a process runs it: `desk serve --target gateway`, and inside `desk up`.
pub const ENTRY: desk_kit::ServiceEntry = desk_kit::ServiceEntry {
    name: SERVICE,
    // No public gRPC service of its own yet; "" is the process's overall health.
    grpc_service: "",
    // Nothing durable: nothing to migrate.
    migrate: |_settings| Box::pin(async { Ok(()) }),
    build: |platform, routes| Box::pin(build(platform, routes)),
};

/// Builds the gateway into a process: its layer around every call, the health reports of its
/// upstreams, and the sweeper of idle rate-limit buckets. It registers no routes.
pub async fn build(
    platform: &Platform,
    _routes: &mut RoutesBuilder,
) -> anyhow::Result<ServiceParts> {
    let settings = &platform.settings;
    let table = domain::methods::MethodTable::from_descriptor_set(desk_proto::FILE_DESCRIPTOR_SET)
        .context("reading the services' descriptor set")?;
    let upstreams = upstreams::Upstreams::from_settings(settings, &table, SERVICE)?;
    let gateway = Arc::new(api::Gateway::new(
        settings,
        table,
        upstreams,
        platform.verifier.clone(),
    )?);
    let routing = gateway.routing();
    tracing::info!(
        upstreams = ?routing.upstreams,
        peers = ?routing.peers,
        "gateway routes public calls"
    );

    let layered = gateway.clone();
    platform.front.add(move |inner| layered.layer(inner));

    let interval = Duration::from_millis(settings.gateway.health_interval_ms);
    let mut parts = ServiceParts::new(SERVICE, Vec::new());
    for upstream in gateway.upstreams().all() {
        parts = parts.with_worker(tokio::spawn(upstreams::health::report(
            upstream.clone(),
            platform.health.clone(),
            interval,
            platform.workers_shutdown.clone(),
        )));
    }
    let sweeper = gateway.clone();
    let shutdown = platform.workers_shutdown.clone();
    parts = parts.with_worker(tokio::spawn(async move {
        let mut ticker = tokio::time::interval(FORGET_IDLE_BUCKETS_EVERY);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = ticker.tick() => sweeper.forget_idle_buckets(),
            }
        }
    }));
    Ok(parts)
}
