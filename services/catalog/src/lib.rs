//! The service catalog, request fulfillment and approvals behind `desk.catalog.v1.CatalogService`:
//! offerings (request items) with a localized name, a form schema, an approval policy, a
//! fulfillment plan, a target time and visibility, versioned on every save; requests made
//! against one version, approved by the requester's manager, teams or named people (any, all,
//! quorum; conditional steps; reminders, expiry and escalation; delegation), fulfilled by
//! sequential stages of parallel tasks that teams or provisioning robots complete.
//!
//! # Layout
//! - [`domain`]: pure types and rules — forms and answers, approval steps, fulfillment plans,
//!   the request lifecycle and the facts it produces.
//! - [`store`]: tables, migrations and queries (PostgreSQL and SQLite), scoped by tenant.
//! - [`api`]: the gRPC service.
//! - [`events`]: what it publishes, the directory projection consumer (managers, team members)
//!   and the approval timer worker.
//!
//! [`build`] wires them: database and migrations, stream and outbox relay, the directory
//! consumer, the timer worker and the authenticated gRPC service.
//!
//! # Settings
//! Nothing of its own; consumers read `consumer.*`.

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
use desk_proto::{
    catalog::v1::catalog_service_server::CatalogServiceServer, directory::v1 as directory,
};
use sea_orm_migration::MigratorTrait;
use tonic::service::RoutesBuilder;

pub const SERVICE: &str = "catalog";
pub const GRPC_SERVICE: &str = "desk.catalog.v1.CatalogService";

/// The service as a process runs it: `desk serve --target catalog`, `desk migrate`, the tests.
pub const ENTRY: desk_kit::ServiceEntry = desk_kit::ServiceEntry {
    name: SERVICE,
    grpc_service: GRPC_SERVICE,
    migrate: |settings| Box::pin(async move { open_database(settings).await.map(drop) }),
    build: |platform, routes| Box::pin(build(platform, routes)),
};

pub async fn open_database(settings: &desk_kit::settings::Settings) -> anyhow::Result<Db> {
    let db = Db::connect(
        &settings.database_url_for(SERVICE),
        settings.database.max_connections,
    )
    .await?;
    desk_kit::db::migrate_exclusively(&db, SERVICE, || {
        store::migrations::Migrator::up(db.connection(), None)
    })
    .await?;
    Ok(db)
}

pub async fn build(
    platform: &Platform,
    routes: &mut RoutesBuilder,
) -> anyhow::Result<ServiceParts> {
    let settings = &platform.settings;
    let region = settings.region.clone();
    let db = open_database(settings).await?;
    let source = EventSource::new(region.clone(), SERVICE);
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
    let publisher = Publisher::new(db, Outbox::new(source.clone()), relay_handle);
    let store = Arc::new(store::CatalogStore::new(publisher.clone()));
    let api = api::CatalogApi::new(store.clone(), region.clone(), platform.clock.clone());

    let directory_handler = Arc::new(events::directory::DirectoryHandler {
        store: store.clone(),
    });
    let directory_consumer = Consumer::new(
        publisher.clone(),
        platform.jetstream.clone(),
        ConsumerSpec::new(
            events::directory::DURABLE,
            EventSource::new(region.clone(), "directory").stream_name(),
            events::directory::subjects(&region),
            &settings.consumer,
        ),
        Dispatcher::new()
            .on::<directory::PersonCreated>(
                events::directory::PERSON_CREATED,
                directory_handler.clone(),
            )
            .on::<directory::PersonUpdated>(
                events::directory::PERSON_UPDATED,
                directory_handler.clone(),
            )
            .on::<directory::PersonDeactivated>(
                events::directory::PERSON_DEACTIVATED,
                directory_handler.clone(),
            )
            .on::<directory::MembershipAdded>(
                events::directory::MEMBERSHIP_ADDED,
                directory_handler.clone(),
            )
            .on::<directory::MembershipRemoved>(
                events::directory::MEMBERSHIP_REMOVED,
                directory_handler,
            ),
        platform.clock.clone(),
    )
    .spawn(platform.workers_shutdown.clone());

    let purge_idempotency_keys = store::IDEMPOTENCY_KEYS.purge_periodically(
        store.db().clone(),
        platform.clock.clone(),
        platform.workers_shutdown.clone(),
    );
    let timers = events::timers::run(api.clone(), platform.workers_shutdown.clone());
    let max = settings.grpc.max_message_bytes;
    let server = CatalogServiceServer::new(api)
        .max_decoding_message_size(max)
        .max_encoding_message_size(max);
    routes.add_service(tonic::service::interceptor::InterceptedService::new(
        server,
        AuthInterceptor::new(platform.verifier.clone()),
    ));
    Ok(ServiceParts::new(SERVICE, vec![GRPC_SERVICE])
        .with_worker(tokio::spawn(relay.run(platform.workers_shutdown.clone())))
        .with_worker(tokio::spawn(purge_idempotency_keys))
        .with_worker(tokio::spawn(timers))
        .with_consumer(directory_consumer))
}
