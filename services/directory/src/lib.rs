//! Directory: the people of a tenant (profile, locale, time zone, manager), its teams (region,
//! calendar, tier, skills, hierarchy), who is in which team, what agents can take (skills,
//! languages, capacity) and whether they are there (presence), and provisioning batches from an
//! identity provider's sync, behind `desk.directory.v1.DirectoryService`. Other services keep
//! the projections they need from its events, so the directory being down never stops them.
//!
//! # Layout
//! - [`domain`]: pure types and rules (access, validation, commands, hierarchies, presence,
//!   provisioning plans). No I/O, no async, no clock reads.
//! - [`store`]: sea-orm entities, migrations and queries, scoped by tenant.
//! - [`api`]: the gRPC service: parse the request, authorize, let the domain decide, write the
//!   change with its events in one transaction, reply.
//! - [`events`]: how the domain's facts are written on the wire, through the outbox, and the
//!   worker that records expired presences ([`events::presence_expiry`]), and the follower of the
//!   directory's own team events that keeps each replica's in-memory teams current
//!   ([`events::team_follow`]).
//!
//! [`build`] wires them into a process: database and migrations, the stream, the outbox relay,
//! the team index and its follower, the presence expiry worker and the authenticated gRPC
//! service.

pub mod api;
pub mod domain;
pub mod events;
pub mod store;

use std::sync::Arc;

use desk_kit::{
    Platform, ServiceParts,
    auth::AuthInterceptor,
    db::Db,
    events::{EventSource, Outbox, OutboxRelay, Publisher, RelayHandle, follow::Follow, streams},
};
use desk_proto::directory::v1::directory_service_server::DirectoryServiceServer;
use sea_orm_migration::MigratorTrait;
use tonic::service::RoutesBuilder;

/// The service's name in subjects, streams, table prefixes and settings.
pub const SERVICE: &str = "directory";
/// The public gRPC service, as reflection and health name it.
pub const GRPC_SERVICE: &str = "desk.directory.v1.DirectoryService";
/// The service as a process runs it: `desk serve --target directory`, `desk migrate`, the
/// service tests.
pub const ENTRY: desk_kit::ServiceEntry = desk_kit::ServiceEntry {
    name: SERVICE,
    grpc_service: GRPC_SERVICE,
    migrate: |settings| Box::pin(async move { open_database(settings).await.map(drop) }),
    build: |platform, routes| Box::pin(build(platform, routes)),
};
/// The smallest gRPC message limit of the directory, whatever `grpc.max_message_bytes` says:
/// enough for a provisioning batch of `MAX_PROVISIONING_PEOPLE` people and its plan.
pub const PROVISIONING_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// Connects and migrates the directory's database.
pub async fn open_database(settings: &desk_kit::settings::Settings) -> anyhow::Result<Db> {
    let db = Db::connect(
        &settings.database_url_for(SERVICE),
        settings.database.max_connections,
    )
    .await?;
    // Replicas starting together take turns (`desk migrate` may also run first, as a Helm hook).
    desk_kit::db::migrate_exclusively(&db, SERVICE, || {
        store::migrations::Migrator::up(db.connection(), None)
    })
    .await?;
    Ok(db)
}

/// Builds the directory for a process: registers its gRPC service in `routes` and starts its
/// outbox relay, presence expiry and idempotency-key purge.
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
    let store = Arc::new(store::DirectoryStore::new(Publisher::new(
        db,
        Outbox::new(source.clone()),
        relay_handle,
    )));
    // The stream's position is taken before the teams are read: following from there, this
    // replica sees every team change committed after the load (and perhaps some it already has).
    let follow = Follow::new(
        source.stream_name(),
        events::team_follow::followed_subjects(&settings.region),
    );
    let loaded_at = follow.last_sequence(&platform.jetstream).await?;
    let teams = Arc::new(api::TeamIndex::new(
        store.all_teams(store.db().connection()).await?,
    ));
    let (team_follower, _followed_up_to) = {
        let (teams, region) = (teams.clone(), settings.region.clone());
        follow.spawn(
            platform.jetstream.clone(),
            loaded_at,
            move |followed| {
                events::team_follow::apply(&teams, &region, followed);
                std::future::ready(())
            },
            platform.workers_shutdown.clone(),
        )
    };
    let api = api::DirectoryApi::new(
        store.clone(),
        settings.region.clone(),
        platform.clock.clone(),
        teams,
    );
    let expiry = events::presence_expiry::PresenceExpiry::new(
        store.clone(),
        settings.region.clone(),
        platform.clock.clone(),
    );

    let max = settings
        .grpc
        .max_message_bytes
        .max(PROVISIONING_MESSAGE_BYTES);
    let server = DirectoryServiceServer::new(api)
        .max_decoding_message_size(max)
        .max_encoding_message_size(max);
    routes.add_service(
        AuthInterceptor::new(platform.verifier.clone())
            .open_to_services(api::OPEN_TO_SERVICES)
            .wrap(server),
    );

    let shutdown = platform.workers_shutdown.clone();
    let workers = vec![
        tokio::spawn(relay.run(shutdown.clone())),
        team_follower,
        tokio::spawn(expiry.run(shutdown.clone())),
        tokio::spawn(store::IDEMPOTENCY_KEYS.purge_periodically(
            store.db().clone(),
            platform.clock.clone(),
            shutdown,
        )),
    ];
    Ok(ServiceParts {
        name: SERVICE,
        grpc_services: vec![GRPC_SERVICE],
        workers,
        consumers: Vec::new(),
    })
}
