//! Notifications: the right people hear about the right things on the channel they chose, in
//! their language — rules over every service's events, localized templates, threaded e-mail,
//! signed webhooks, SMS and a live in-app feed — behind `desk.notifications.v1.NotificationService`.
//!
//! # Layout
//! - [`domain`]: pure rules, preferences and quiet hours, templates and their locales, e-mail
//!   threading, webhook signatures, retry schedule, SSRF ranges, coalescing, the plan from an
//!   event to people and channels.
//! - [`store`]: tables, migrations and queries (PostgreSQL and SQLite), scoped by tenant:
//!   aggregates, the directory and ticket projections, deliveries and their log, the feed.
//! - [`api`]: the gRPC service (CRUD with validation, delivery log, dead letters, the feed stream).
//! - [`events`]: the consumers (tickets, directory), the sender worker and its transports (SMTP
//!   via lettre, HTTP via hyper with the SSRF check at connect time), `notification.*` events.
//!
//! [`build`] wires them: database and migrations, stream and outbox relay, the two consumers,
//! the sender, and the authenticated gRPC service.
//!
//! # Settings
//! `notifications.*` (`desk_kit::settings::NotificationSettings`): the SMTP URL, `From`, the
//! `Message-ID` domain, the SMS provider, tenants allowed private webhook addresses, attempts,
//! the coalescing window.

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
    directory::v1 as directory,
    notifications::v1::notification_service_server::NotificationServiceServer,
    tickets::v1 as tickets,
};
use sea_orm_migration::MigratorTrait;
use tonic::service::RoutesBuilder;

pub const SERVICE: &str = "notifications";
pub const GRPC_SERVICE: &str = "desk.notifications.v1.NotificationService";

/// The service as a process runs it: `desk serve --target notifications`, `desk migrate`, the tests.
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
    let config = &settings.notifications;
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
    let store = Arc::new(store::NotificationStore::new(publisher.clone()));
    let wake = Arc::new(tokio::sync::Notify::new());
    let (feed, _) = tokio::sync::broadcast::channel(1024);
    let notifier = Arc::new(events::notify::Notifier {
        store: store.clone(),
        domain: config.message_id_domain.clone(),
        wake: wake.clone(),
        feed: feed.clone(),
        coalesce_window: chrono::Duration::seconds(
            i64::try_from(config.coalesce_seconds).unwrap_or(60),
        ),
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
    let ticket_handler = Arc::new(events::tickets::TicketHandler { notifier });
    let tickets_consumer = consumer(
        ConsumerSpec::new(
            events::tickets::DURABLE,
            EventSource::new(region.clone(), "tickets").stream_name(),
            events::tickets::subjects(&region),
            &settings.consumer,
        ),
        Dispatcher::new()
            .on::<tickets::TicketCreated>("desk.tickets.ticket.created.v1", ticket_handler.clone())
            .on::<tickets::TicketUpdated>("desk.tickets.ticket.updated.v1", ticket_handler.clone())
            .on::<tickets::TicketAssigned>(
                "desk.tickets.ticket.assigned.v1",
                ticket_handler.clone(),
            )
            .on::<tickets::TicketEscalated>(
                "desk.tickets.ticket.escalated.v1",
                ticket_handler.clone(),
            )
            .on::<tickets::TicketStatusChanged>(
                "desk.tickets.ticket.status_changed.v1",
                ticket_handler.clone(),
            )
            .on::<tickets::TicketResolved>(
                "desk.tickets.ticket.resolved.v1",
                ticket_handler.clone(),
            )
            .on::<tickets::TicketClosed>("desk.tickets.ticket.closed.v1", ticket_handler.clone())
            .on::<tickets::TicketReopened>(
                "desk.tickets.ticket.reopened.v1",
                ticket_handler.clone(),
            )
            .on::<tickets::TicketCommented>("desk.tickets.ticket.commented.v1", ticket_handler),
    );
    let directory_handler = Arc::new(events::directory::DirectoryHandler {
        store: store.clone(),
    });
    let directory_consumer = consumer(
        ConsumerSpec::new(
            events::directory::DURABLE,
            EventSource::new(region.clone(), "directory").stream_name(),
            events::directory::subjects(&region),
            &settings.consumer,
        ),
        Dispatcher::new()
            .on::<directory::PersonCreated>(
                "desk.directory.person.created.v1",
                directory_handler.clone(),
            )
            .on::<directory::PersonUpdated>(
                "desk.directory.person.updated.v1",
                directory_handler.clone(),
            )
            .on::<directory::PersonDeactivated>(
                "desk.directory.person.deactivated.v1",
                directory_handler.clone(),
            )
            .on::<directory::TeamCreated>(
                "desk.directory.team.created.v1",
                directory_handler.clone(),
            )
            .on::<directory::TeamUpdated>(
                "desk.directory.team.updated.v1",
                directory_handler.clone(),
            )
            .on::<directory::MembershipAdded>(
                "desk.directory.membership.added.v1",
                directory_handler.clone(),
            )
            .on::<directory::MembershipRemoved>(
                "desk.directory.membership.removed.v1",
                directory_handler,
            ),
    );

    let sender = events::sender::Sender {
        store: store.clone(),
        mailer: events::transport::Mailer::new(config.smtp_url.expose(), &config.from_address)?,
        http: events::transport::Http::new()?,
        clock: platform.clock.clone(),
        wake: wake.clone(),
        max_attempts: config.max_attempts.max(1),
        poll: Duration::from_millis(config.poll_interval_ms.max(10)),
        batch: config.batch_size.max(1),
        attempt_timeout: Duration::from_millis(config.attempt_timeout_ms.max(100)),
        sms_url: config.sms_provider_url.clone(),
        private_tenants: config.private_webhook_tenants.clone(),
    };

    let api = api::NotificationApi::new(
        store,
        platform.clock.clone(),
        feed,
        wake,
        config.private_webhook_tenants.clone(),
    );
    let max = settings.grpc.max_message_bytes;
    let server = NotificationServiceServer::new(api)
        .max_decoding_message_size(max)
        .max_encoding_message_size(max);
    routes.add_service(tonic::service::interceptor::InterceptedService::new(
        server,
        AuthInterceptor::new(platform.verifier.clone()),
    ));
    Ok(ServiceParts::new(SERVICE, vec![GRPC_SERVICE])
        .with_worker(tokio::spawn(relay.run(platform.workers_shutdown.clone())))
        .with_worker(tokio::spawn(sender.run(platform.workers_shutdown.clone())))
        .with_consumer(tickets_consumer)
        .with_consumer(directory_consumer))
}
