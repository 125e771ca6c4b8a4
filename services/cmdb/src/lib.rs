//! CMDB: the configuration management database of the desk — CI classes with typed attribute
//! schemas, configuration items (CIs) with per-attribute provenance, typed relationships between
//! them, identification and reconciliation of discovered data (staged, previewed, then committed
//! atomically), and impact analysis over the relationship graph, behind `desk.cmdb.v1.CmdbService`.
//!
//! # Layout
//! - [`domain`]: pure types and rules — who may do what, the class catalog and attribute
//!   validation, CI records and their lifecycle, the commands on CIs and relationships and what
//!   each writes and publishes, identification and reconciliation of import batches (and what a
//!   commit writes), and the in-memory impact graph. No I/O, no async, no clock reads.
//! - [`store`]: sea-orm entities, migrations and queries, scoped by tenant.
//! - [`api`]: the gRPC service — each handler parses its request into a domain command,
//!   authorizes, lets the domain decide, stores and replies; keeps the per-tenant impact graphs
//!   current from its own writes ([`api::index`]: per-tenant snapshots that walks read without
//!   locks).
//! - [`events`]: the facts it publishes through the outbox, and the replica follower that
//!   applies other replicas' writes to this one's memory ([`events::replica`]).
//!
//! [`build`] wires them into a process and rebuilds the impact index from the database at start.

pub mod api;
pub mod domain;
pub mod events;
pub mod store;

use std::{collections::HashMap, sync::Arc};

use desk_kit::{
    Platform, ServiceParts,
    auth::AuthInterceptor,
    db::Db,
    events::{EventSource, Outbox, OutboxRelay, Publisher, RelayHandle, follow::Follow, streams},
};
use desk_proto::cmdb::v1::cmdb_service_server::CmdbServiceServer;
use sea_orm_migration::MigratorTrait;
use tonic::service::RoutesBuilder;

use domain::{
    ImpactGraph,
    impact::{ImpactEdge, ImpactNode},
};

pub const SERVICE: &str = "cmdb";
pub const GRPC_SERVICE: &str = "desk.cmdb.v1.CmdbService";

/// The service as a process runs it: `desk serve --target cmdb`, `desk migrate`, the service tests.
pub const ENTRY: desk_kit::ServiceEntry = desk_kit::ServiceEntry {
    name: SERVICE,
    grpc_service: GRPC_SERVICE,
    migrate: |settings| Box::pin(async move { open_database(settings).await.map(drop) }),
    build: |platform, routes| Box::pin(build(platform, routes)),
};
/// The smallest gRPC message limit of the CMDB, whatever `grpc.max_message_bytes` says: enough
/// for a full import batch (`MAX_IMPORT_ITEMS` items) and its plan.
pub const IMPORT_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

/// Connects and migrates the CMDB's database.
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

/// Every tenant's impact graph, with the version of each CI in it.
pub type LoadedGraphs = HashMap<String, (ImpactGraph, HashMap<uuid::Uuid, i64>)>;

/// Loads every tenant's graph from the database (service start).
pub async fn rebuild_graphs(store: &store::CmdbStore) -> anyhow::Result<LoadedGraphs> {
    let rows = store.graph_rows().await?;
    let mut nodes: HashMap<String, Vec<ImpactNode>> = HashMap::new();
    let mut versions: HashMap<String, HashMap<uuid::Uuid, i64>> = HashMap::new();
    let mut catalogs: HashMap<String, domain::ClassCatalog> = HashMap::new();
    for (tenant, id, class, status, name, version) in rows.nodes {
        if !catalogs.contains_key(&tenant) {
            catalogs.insert(tenant.clone(), api::tenant_catalog(store, &tenant).await?);
        }
        // Tenant classes may derive from business_service: the tenant's catalog decides.
        let business_service = catalogs
            .get(&tenant)
            .is_some_and(|c| c.is_subclass_of(&class, domain::class::BUSINESS_SERVICE));
        versions
            .entry(tenant.clone())
            .or_default()
            .insert(id, version);
        nodes.entry(tenant).or_default().push(ImpactNode {
            id,
            class,
            name,
            status,
            business_service,
        });
    }
    let mut edges: HashMap<String, Vec<ImpactEdge>> = HashMap::new();
    for (tenant, source, relationship, target) in rows.edges {
        edges.entry(tenant).or_default().push(ImpactEdge {
            source,
            relationship,
            target,
        });
    }
    let mut graphs = HashMap::new();
    for (tenant, tenant_nodes) in nodes {
        let tenant_edges = edges.remove(&tenant).unwrap_or_default();
        let graph = ImpactGraph::build(tenant_nodes, tenant_edges)
            .map_err(|e| anyhow::anyhow!("impact index: {e}"))?;
        let tenant_versions = versions.remove(&tenant).unwrap_or_default();
        graphs.insert(tenant, (graph, tenant_versions));
    }
    Ok(graphs)
}

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
    let store = Arc::new(store::CmdbStore::new(Publisher::new(
        db,
        Outbox::new(source.clone()),
        relay_handle,
    )));
    // The stream's position is taken before the database is read: following from there, this
    // replica sees every change committed after the load (and perhaps some it already has).
    let follow = Follow::new(
        source.stream_name(),
        events::replica::followed_subjects(&settings.region),
    );
    let loaded_at = follow.last_sequence(&platform.jetstream).await?;
    let started = std::time::Instant::now();
    let graphs = rebuild_graphs(&store).await?;
    tracing::info!(
        tenants = graphs.len(),
        seconds = started.elapsed().as_secs_f64(),
        "impact index rebuilt"
    );
    // An import batch of MAX_IMPORT_ITEMS items with their attributes, and the plan it answers,
    // can be larger than an ordinary request: the CMDB accepts at least IMPORT_MESSAGE_BYTES.
    let max = settings.grpc.max_message_bytes.max(IMPORT_MESSAGE_BYTES);
    let purge_idempotency_keys = store::IDEMPOTENCY_KEYS.purge_periodically(
        store.db().clone(),
        platform.clock.clone(),
        platform.workers_shutdown.clone(),
    );
    let api = api::CmdbApi::new(
        store,
        settings.region.clone(),
        platform.clock.clone(),
        Arc::new(api::ImpactIndex::new(graphs)),
        max,
    );
    let replica_api = api.clone();
    let (follower, _followed_up_to) = follow.spawn(
        platform.jetstream.clone(),
        loaded_at,
        move |events| {
            let api = replica_api.clone();
            async move { events::replica::apply(&api, events).await }
        },
        platform.workers_shutdown.clone(),
    );
    let server = CmdbServiceServer::new(api)
        .max_decoding_message_size(max)
        .max_encoding_message_size(max);
    routes.add_service(
        AuthInterceptor::new(platform.verifier.clone())
            .open_to_services(domain::access::SERVICE_METHODS)
            .wrap(server),
    );
    let workers = vec![
        tokio::spawn(relay.run(platform.workers_shutdown.clone())),
        follower,
        tokio::spawn(purge_idempotency_keys),
    ];
    Ok(ServiceParts {
        name: SERVICE,
        grpc_services: vec![GRPC_SERVICE],
        workers,
        consumers: Vec::new(),
    })
}
