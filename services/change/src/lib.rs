//! Change enablement: standard, normal and emergency changes — assessed for risk, authorized by
//! the CAB of their risk level, scheduled against the change calendar with conflicts found
//! across the CMDB's whole dependency graph, implemented (their CI updates applied to the
//! CMDB with the change as provenance) and reviewed — behind `desk.change.v1.ChangeService`.
//!
//! # Layout
//! - [`domain`]: pure types and rules — lifecycle per type, risk, CAB quorum and delegation,
//!   windows, the projection of the CMDB's graph, conflicts and free slots, metrics.
//! - [`store`]: tables, migrations and queries (PostgreSQL and SQLite), scoped by tenant.
//! - [`api`]: the gRPC service and every tenant's in-memory projection of the CMDB.
//! - [`events`]: what it publishes, and its consumers: the CMDB projection (a durable
//!   consumer into tables, a follower into memory), change-caused incidents from tickets, and
//!   CI updates into the CMDB.
//!
//! [`build`] wires them: database and migrations, stream and outbox relay, the projection
//! loaded from the tables and followed from the CMDB's stream, the consumers, and the
//! authenticated gRPC service.
//!
//! # Settings
//! Nothing of its own: the CMDB is called at `services.cmdb.url` (this process's own address
//! when unset, as in `desk up`) with the service token `auth.*` signs; consumers read
//! `consumer.*`. The incident window, approval validity, CAB rules and conflict depth are per
//! tenant, in the change policy (`SetChangePolicy`).

pub mod api;
pub mod domain;
pub mod events;
pub mod store;

use std::sync::Arc;

use async_nats::jetstream;
use desk_kit::{
    Platform, ServiceParts,
    auth::AuthInterceptor,
    calls::ServiceCalls,
    db::Db,
    events::{
        Consumer, ConsumerSpec, Dispatcher, EventSource, Outbox, OutboxRelay, Publisher,
        RelayHandle, follow::Follow, streams,
    },
};
use desk_proto::{
    change::v1::change_service_server::ChangeServiceServer, cmdb::v1 as cmdb,
    tickets::v1 as tickets,
};
use sea_orm_migration::MigratorTrait;
use tonic::service::RoutesBuilder;

pub const SERVICE: &str = "change";
pub const GRPC_SERVICE: &str = "desk.change.v1.ChangeService";

/// The service as a process runs it: `desk serve --target change`, `desk migrate`, the tests.
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

/// The stream sequence below which the projection consumer has acknowledged everything (0 when
/// it does not exist yet, or the CMDB's stream does not: then the follower reads from the start).
async fn projection_floor(jetstream: &jetstream::Context, stream: &str) -> u64 {
    let Ok(stream) = jetstream.get_stream(stream).await else {
        return 0;
    };
    match stream
        .get_consumer::<jetstream::consumer::pull::Config>(events::projection::DURABLE)
        .await
    {
        Ok(mut consumer) => match consumer.info().await {
            Ok(info) => info.ack_floor.stream_sequence,
            Err(_) => 0,
        },
        Err(_) => 0,
    }
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
    let store = Arc::new(store::ChangeStore::new(publisher.clone()));

    // The projection: the consumer's floor first, then the tables, then follow from the floor
    // (see `events::projection`).
    let cmdb_stream = EventSource::new(region.clone(), "cmdb").stream_name();
    let floor = projection_floor(&platform.jetstream, &cmdb_stream).await;
    let started = std::time::Instant::now();
    let graphs = Arc::new(api::Graphs::new(store.projected_facts().await?));
    tracing::info!(
        seconds = started.elapsed().as_secs_f64(),
        floor,
        "cmdb projection loaded"
    );
    let follower_graphs = graphs.clone();
    let follower_region = region.clone();
    let (follower, _followed) =
        Follow::new(cmdb_stream.clone(), events::projection::subjects(&region)).spawn(
            platform.jetstream.clone(),
            floor,
            move |batch| {
                events::projection::apply_followed(&follower_graphs, &follower_region, batch);
                std::future::ready(())
            },
            platform.workers_shutdown.clone(),
        );

    let consumer = |spec: ConsumerSpec, dispatcher: Dispatcher| {
        Consumer::new(
            publisher.clone(),
            platform.jetstream.clone(),
            spec,
            dispatcher,
            platform.clock.clone(),
        )
        .spawn(platform.workers_shutdown.clone())
    };
    let projection = Arc::new(events::projection::ProjectionHandler {
        store: store.clone(),
        region: region.clone(),
    });
    let projection_consumer = consumer(
        ConsumerSpec::new(
            events::projection::DURABLE,
            cmdb_stream,
            events::projection::subjects(&region),
            &settings.consumer,
        ),
        Dispatcher::new()
            .on::<cmdb::CiCreated>("desk.cmdb.ci.created.v1", projection.clone())
            .on::<cmdb::CiUpdated>("desk.cmdb.ci.updated.v1", projection.clone())
            .on::<cmdb::CiRetired>("desk.cmdb.ci.retired.v1", projection.clone())
            .on::<cmdb::RelationshipAdded>("desk.cmdb.relationship.added.v1", projection.clone())
            .on::<cmdb::RelationshipRemoved>(
                "desk.cmdb.relationship.removed.v1",
                projection.clone(),
            )
            .on::<cmdb::ClassCreated>("desk.cmdb.class.created.v1", projection),
    );
    let incidents_consumer = consumer(
        ConsumerSpec::new(
            events::incidents::DURABLE,
            EventSource::new(region.clone(), "tickets").stream_name(),
            events::incidents::subjects(&region),
            &settings.consumer,
        ),
        Dispatcher::new().on::<tickets::TicketCreated>(
            events::incidents::TICKET_CREATED,
            events::incidents::IncidentHandler {
                store: store.clone(),
                graphs: graphs.clone(),
                region: region.clone(),
            },
        ),
    );
    let mut ci_updates_spec = ConsumerSpec::new(
        events::ci_updates::DURABLE,
        source.stream_name(),
        events::ci_updates::subjects(&region),
        &settings.consumer,
    );
    // Each event calls the CMDB: one per transaction, so a retry never repeats another's calls.
    ci_updates_spec.batch_size = 1;
    let calls = Arc::new(ServiceCalls::from_settings(settings, SERVICE)?);
    let ci_updates_consumer = consumer(
        ci_updates_spec,
        Dispatcher::new().on::<desk_proto::change::v1::ChangeEvent>(
            events::ci_updates::IMPLEMENTED,
            events::ci_updates::CiUpdateHandler {
                store: store.clone(),
                calls,
                region: region.clone(),
            },
        ),
    );

    let purge_idempotency_keys = store::IDEMPOTENCY_KEYS.purge_periodically(
        store.db().clone(),
        platform.clock.clone(),
        platform.workers_shutdown.clone(),
    );
    let api = api::ChangeApi::new(store, region, platform.clock.clone(), graphs);
    let max = settings.grpc.max_message_bytes;
    let server = ChangeServiceServer::new(api)
        .max_decoding_message_size(max)
        .max_encoding_message_size(max);
    routes.add_service(tonic::service::interceptor::InterceptedService::new(
        server,
        AuthInterceptor::new(platform.verifier.clone()),
    ));
    Ok(ServiceParts::new(SERVICE, vec![GRPC_SERVICE])
        .with_worker(tokio::spawn(relay.run(platform.workers_shutdown.clone())))
        .with_worker(follower)
        .with_worker(tokio::spawn(purge_idempotency_keys))
        .with_consumer(projection_consumer)
        .with_consumer(incidents_consumer)
        .with_consumer(ci_updates_consumer))
}
