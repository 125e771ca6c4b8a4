//! Service levels: business calendars, SLA (customer-facing) and OLA (per team) policies, and
//! the clocks they keep on every ticket — each a pure fold over the ticket's events, so it can
//! be explained and recomputed — with durable warning and breach timers, "breaching soon"
//! queues and KPIs, behind `desk.sla.v1.SlaService`.
//!
//! # Layout
//! - [`domain`]: pure types and rules — tickets as their events show them, policies and their
//!   validation, the clock fold and its timeline, KPIs. Calendar arithmetic is
//!   `desk_business_time`.
//! - [`store`]: tables, migrations and queries (PostgreSQL and SQLite), scoped by tenant:
//!   calendars, policies, ticket histories, clocks, timers, the teams' calendars.
//! - [`api`]: the gRPC service.
//! - [`events`]: the `sla.*` events, the engine that re-folds a ticket's clocks, the consumers
//!   of the tickets service's and the directory's events, and the timer worker.
//!
//! [`build`] wires them: database and migrations, stream and outbox relay, the consumers, the
//! timer worker and the authenticated gRPC service.
//!
//! # Settings
//! Nothing of its own; consumers read `consumer.*`. Calendars and policies are per tenant,
//! through the API.

pub mod api;
pub mod domain;
pub mod events;
pub mod store;

use std::{sync::Arc, time::Duration};

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
    directory::v1 as directory, sla::v1::sla_service_server::SlaServiceServer,
    tickets::v1 as tickets,
};
use sea_orm_migration::MigratorTrait;
use tonic::service::RoutesBuilder;

pub const SERVICE: &str = "sla";
pub const GRPC_SERVICE: &str = "desk.sla.v1.SlaService";

/// How often the timer worker looks for due timers when it found none: the bound on how late
/// a warning or breach is published after its instant.
pub const TIMER_POLL: Duration = Duration::from_millis(200);

/// The service as a process runs it: `desk serve --target sla`, `desk migrate`, the tests.
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
    let publisher = Publisher::new(db, Outbox::new(source), relay_handle);
    let store = Arc::new(store::SlaStore::new(publisher.clone()));
    let engine = Arc::new(events::clocks::Engine {
        store: store.clone(),
        region: region.clone(),
    });

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
    let ticket_events = Arc::new(events::clocks::TicketEvents {
        engine: engine.clone(),
    });
    let [
        created,
        updated,
        assigned,
        escalated,
        status_changed,
        resolved,
        closed,
        reopened,
        rated,
    ] = events::clocks::TICKET_EVENTS;
    let clocks_consumer = consumer(
        ConsumerSpec::new(
            events::clocks::DURABLE,
            EventSource::new(region.clone(), "tickets").stream_name(),
            events::clocks::subjects(&region),
            &settings.consumer,
        ),
        Dispatcher::new()
            .on::<tickets::TicketCreated>(created, ticket_events.clone())
            .on::<tickets::TicketUpdated>(updated, ticket_events.clone())
            .on::<tickets::TicketAssigned>(assigned, ticket_events.clone())
            .on::<tickets::TicketEscalated>(escalated, ticket_events.clone())
            .on::<tickets::TicketStatusChanged>(status_changed, ticket_events.clone())
            .on::<tickets::TicketResolved>(resolved, ticket_events.clone())
            .on::<tickets::TicketClosed>(closed, ticket_events.clone())
            .on::<tickets::TicketReopened>(reopened, ticket_events.clone())
            .on::<tickets::TicketRated>(rated, ticket_events),
    );
    let team_events = Arc::new(events::teams::TeamEvents {
        store: store.clone(),
    });
    let teams_consumer = consumer(
        ConsumerSpec::new(
            events::teams::DURABLE,
            EventSource::new(region.clone(), "directory").stream_name(),
            events::teams::subjects(&region),
            &settings.consumer,
        ),
        Dispatcher::new()
            .on::<directory::TeamCreated>("desk.directory.team.created.v1", team_events.clone())
            .on::<directory::TeamUpdated>("desk.directory.team.updated.v1", team_events.clone())
            .on::<directory::TeamRetired>("desk.directory.team.retired.v1", team_events),
    );
    let timers = events::timers::TimerWorker {
        engine: engine.clone(),
        clock: platform.clock.clone(),
        poll: TIMER_POLL,
    };

    let purge_idempotency_keys = store::IDEMPOTENCY_KEYS.purge_periodically(
        store.db().clone(),
        platform.clock.clone(),
        platform.workers_shutdown.clone(),
    );
    let api = api::SlaApi::new(store, engine, region, platform.clock.clone());
    let max = settings.grpc.max_message_bytes;
    let server = SlaServiceServer::new(api)
        .max_decoding_message_size(max)
        .max_encoding_message_size(max);
    routes.add_service(tonic::service::interceptor::InterceptedService::new(
        server,
        AuthInterceptor::new(platform.verifier.clone()),
    ));
    Ok(ServiceParts::new(SERVICE, vec![GRPC_SERVICE])
        .with_worker(tokio::spawn(relay.run(platform.workers_shutdown.clone())))
        .with_worker(tokio::spawn(timers.run(platform.workers_shutdown.clone())))
        .with_worker(tokio::spawn(purge_idempotency_keys))
        .with_consumer(clocks_consumer)
        .with_consumer(teams_consumer))
}
