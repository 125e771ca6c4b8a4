//! Tickets: incidents, service requests and problems (with known errors) — their lifecycle,
//! comments, worklog, links, history and satisfaction ratings — behind
//! `desk.tickets.v1.TicketService`, publishing every change as a CloudEvent.
//!
//! # Layout
//! - [`domain`]: pure types and rules (typed commands, what each command changes and publishes,
//!   state machine, priority matrix, access, validation).
//! - [`store`]: sea-orm entities, migrations and queries, scoped by tenant.
//! - [`api`]: the gRPC service: parse the request into a command, authorize, let the domain
//!   decide, write the change with its history and events in one transaction, reply.
//! - [`events`]: how the domain's facts are written on the wire, through the outbox, and the
//!   consumer of the SLA service's breaches that escalates tickets.
//!
//! [`build`] wires them into a process: database and migrations, the stream, the outbox relay,
//! the escalation consumer and the authenticated gRPC service.

pub mod api;
pub mod domain;
pub mod events;
pub mod store;

use std::sync::Arc;

use desk_kit::{
    Platform, ServiceParts,
    auth::AuthInterceptor,
    db::Db,
    events::{
        Consumer, ConsumerSpec, Dispatcher, EventSource, Outbox, OutboxRelay, Publisher,
        RelayHandle, streams,
    },
};
use desk_proto::tickets::v1::ticket_service_server::TicketServiceServer;
use sea_orm_migration::MigratorTrait;
use tonic::service::RoutesBuilder;

/// The service's name in subjects, streams, table prefixes and settings.
pub const SERVICE: &str = "tickets";
/// The public gRPC service, as reflection and health name it.
pub const GRPC_SERVICE: &str = "desk.tickets.v1.TicketService";

/// The service as a process runs it: `desk serve --target tickets`, `desk migrate`, the service tests.
pub const ENTRY: desk_kit::ServiceEntry = desk_kit::ServiceEntry {
    name: SERVICE,
    grpc_service: GRPC_SERVICE,
    migrate: |settings| Box::pin(async move { open_database(settings).await.map(drop) }),
    build: |platform, routes| Box::pin(build(platform, routes)),
};

/// Connects and migrates the service's database.
pub async fn open_database(platform_settings: &desk_kit::settings::Settings) -> anyhow::Result<Db> {
    let url = platform_settings.database_url_for(SERVICE);
    let db = Db::connect(&url, platform_settings.database.max_connections).await?;
    // Replicas starting together take turns (`desk migrate` may also run first, as a Helm hook).
    desk_kit::db::migrate_exclusively(&db, SERVICE, || {
        store::migrations::Migrator::up(db.connection(), None)
    })
    .await?;
    Ok(db)
}

/// Builds the tickets service for a process: registers its gRPC service in `routes` and starts its
/// outbox relay.
pub async fn build(
    platform: &Platform,
    routes: &mut RoutesBuilder,
) -> anyhow::Result<ServiceParts> {
    let settings = &platform.settings;
    let db = open_database(settings).await?;
    let source = EventSource::new(settings.region.clone(), SERVICE);
    streams::ensure_stream(&platform.jetstream, &source, &settings.nats).await?;

    let relay_handle = RelayHandle::default();
    let relay = OutboxRelay::new(
        db.clone(),
        platform.jetstream.clone(),
        source.clone(),
        settings.outbox.clone(),
        relay_handle.clone(),
    )
    .with_stream_settings(&settings.nats)
    .with_clock(platform.clock.clone());
    let publisher = Publisher::new(db, Outbox::new(source), relay_handle);
    let store = Arc::new(store::TicketStore::new(publisher.clone()));
    let api = api::TicketApi::new(
        store.clone(),
        settings.region.clone(),
        platform.clock.clone(),
    );

    let max = settings.grpc.max_message_bytes;
    let server = TicketServiceServer::new(api)
        .max_decoding_message_size(max)
        .max_encoding_message_size(max);
    routes.add_service(
        AuthInterceptor::new(platform.verifier.clone())
            .open_to_services(domain::access::SERVICE_METHODS)
            .wrap(server),
    );

    // Escalations from the SLA service's breaches, in the same transaction as the inbox row.
    let escalations = Consumer::new(
        publisher,
        platform.jetstream.clone(),
        ConsumerSpec::new(
            events::escalation::DURABLE,
            EventSource::new(settings.region.clone(), "sla").stream_name(),
            events::escalation::subjects(&settings.region),
            &settings.consumer,
        ),
        Dispatcher::new().on::<desk_proto::sla::v1::SlaBreached>(
            events::escalation::BREACHED,
            events::escalation::EscalationHandler {
                store: store.clone(),
                region: settings.region.clone(),
            },
        ),
        platform.clock.clone(),
    )
    .spawn(platform.workers_shutdown.clone());

    let workers = vec![
        tokio::spawn(relay.run(platform.workers_shutdown.clone())),
        tokio::spawn(store::IDEMPOTENCY_KEYS.purge_periodically(
            store.db().clone(),
            platform.clock.clone(),
            platform.workers_shutdown.clone(),
        )),
    ];
    Ok(ServiceParts {
        name: SERVICE,
        grpc_services: vec![GRPC_SERVICE],
        workers,
        consumers: Vec::new(),
    }
    .with_consumer(escalations))
}
