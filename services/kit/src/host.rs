//! Composes services into one gRPC server and runs it until shutdown (STYLE 1, 2, 12).
//!
//! Every service crate exposes a [`ServiceEntry`]: its name, how to migrate its database and how to
//! build it (`build(&Platform, &mut RoutesBuilder) -> ServiceParts`). [`run`] is how a process
//! starts: it connects the [`Platform`], builds the entries it was given and hands them to
//! [`serve`], which adds the gRPC health protocol, server reflection (v1 and v1alpha: common
//! clients still speak only v1alpha), gRPC-Web, request spans parented on the caller's
//! `traceparent`, and ordered shutdown. The `desk` binary and the service tests
//! (`desk_testkit::service`) both start services through [`run`], so a test boots exactly what
//! production boots, with a clock of its choosing.
//!
//! Two hooks let a service act on the whole process rather than on its own routes, which is
//! what the gateway needs: [`Platform::health`] (a service may report health names of its own,
//! the gateway each upstream's) and [`Platform::front`] ([`FrontLayers`]: layers around every
//! call the process serves, so the gateway's limits wrap the in-process services in monolithic
//! mode exactly as they wrap its proxy in microservices mode).

use std::{
    convert::Infallible,
    future::Future,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use async_nats::jetstream;
use tokio::{net::TcpListener, task::JoinHandle};
use tokio_stream::{StreamExt as _, wrappers::TcpListenerStream};
use tokio_util::sync::CancellationToken;
use tonic::service::RoutesBuilder;
use tonic_health::{ServingStatus, server::HealthReporter};

use crate::{
    auth::Verifier,
    clock::SharedClock,
    events::consumer::{ConsumerHealth, ConsumerStatus, SpawnedConsumer},
    settings::Settings,
};

/// What every service is built from: settings and the shared connections of this process.
#[derive(Clone)]
pub struct Platform {
    pub settings: Settings,
    pub nats: async_nats::Client,
    pub jetstream: jetstream::Context,
    pub verifier: Arc<Verifier>,
    pub clock: SharedClock,
    /// Cancelled after the gRPC server has drained: relays and consumers stop at a message boundary.
    pub workers_shutdown: CancellationToken,
    /// The process's gRPC health, which [`serve`] serves. Services may set names of their own
    /// besides those [`serve`] sets from [`ServiceParts::grpc_services`].
    pub health: HealthReporter,
    /// Layers a service puts around every call of the process; [`serve`] applies them.
    pub front: FrontLayers,
}

impl Platform {
    /// Connects to NATS (waiting until it answers) and loads the token keys.
    pub async fn connect(settings: Settings, clock: SharedClock) -> anyhow::Result<Platform> {
        anyhow::ensure!(
            !settings.nats.url.is_empty(),
            "no NATS URL: set DESK_NATS__URL (or run `desk up`, which starts one)"
        );
        let workers_shutdown = CancellationToken::new();
        let verifier = Verifier::start(&settings.auth, workers_shutdown.clone()).await?;
        let nats = crate::events::streams::connect_with(
            &settings.nats,
            &format!("desk-{}", settings.region),
        )
        .await?;
        let jetstream = jetstream::new(nats.clone());
        Ok(Platform {
            settings,
            nats,
            jetstream,
            verifier,
            clock,
            workers_shutdown,
            health: HealthReporter::new(),
            front: FrontLayers::default(),
        })
    }
}

/// Every call a process serves, as one boxed HTTP service: what a [`FrontLayers`] layer wraps.
pub type HttpService = tower::util::BoxCloneSyncService<
    http::Request<tonic::body::Body>,
    http::Response<tonic::body::Body>,
    Infallible,
>;

type FrontLayer = Arc<dyn Fn(HttpService) -> HttpService + Send + Sync>;

/// Layers around every call a process serves, added by services while they are built
/// ([`FrontLayers::add`]) and applied by [`serve`]. They are the outermost layers, so they see
/// each request as it came: before gRPC-Web is translated (a CORS preflight is answered there),
/// and before the routes, health and reflection. The first layer added is the outermost.
#[derive(Clone, Default)]
pub struct FrontLayers {
    layers: Arc<Mutex<Vec<FrontLayer>>>,
}

impl std::fmt::Debug for FrontLayers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let count = self
            .layers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len();
        f.debug_struct("FrontLayers")
            .field("layers", &count)
            .finish()
    }
}

impl FrontLayers {
    /// Wraps every call of this process in `layer` (inside the layers added before it).
    pub fn add(&self, layer: impl Fn(HttpService) -> HttpService + Send + Sync + 'static) {
        self.layers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Arc::new(layer));
    }

    fn wrap(&self, inner: HttpService) -> HttpService {
        let layers = self.layers.lock().unwrap_or_else(PoisonError::into_inner);
        layers
            .iter()
            .rev()
            .fold(inner, |service, layer| layer(service))
    }
}

impl<S> tower::Layer<S> for FrontLayers
where
    S: tower::Service<
            http::Request<tonic::body::Body>,
            Response = http::Response<tonic::body::Body>,
            Error = Infallible,
        > + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
{
    type Service = HttpService;

    fn layer(&self, inner: S) -> HttpService {
        self.wrap(HttpService::new(inner))
    }
}

/// What one service contributes to a process besides its routes.
pub struct ServiceParts {
    /// `tickets`, `cmdb`...
    pub name: &'static str,
    /// Fully qualified gRPC service names, for per-service health (`desk.tickets.v1.TicketService`).
    pub grpc_services: Vec<&'static str>,
    /// Background tasks (outbox relay, consumers), stopped through `Platform::workers_shutdown`.
    pub workers: Vec<JoinHandle<()>>,
    /// The service's event consumers, each reported through gRPC health as
    /// `desk.consumer.<durable>` (SERVING while it consumes).
    pub consumers: Vec<ConsumerHealth>,
}

impl ServiceParts {
    pub fn new(name: &'static str, grpc_services: Vec<&'static str>) -> Self {
        Self {
            name,
            grpc_services,
            workers: Vec::new(),
            consumers: Vec::new(),
        }
    }

    /// Adds a background task stopped through `Platform::workers_shutdown`.
    pub fn with_worker(mut self, worker: JoinHandle<()>) -> Self {
        self.workers.push(worker);
        self
    }

    /// Adds a supervised consumer: its worker, and its status for health.
    pub fn with_consumer(mut self, consumer: SpawnedConsumer) -> Self {
        self.workers.push(consumer.worker);
        self.consumers.push(consumer.health);
        self
    }
}

/// A future borrowed from its arguments, as the entries' function pointers return.
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One service a process can run, as its crate describes it (`desk_tickets::ENTRY`).
///
/// Plain function pointers, so a list of entries is a `const` the binary and tests share:
/// `desk serve --target` picks from it, `desk migrate` calls each `migrate`, and [`run`] each
/// `build`.
#[derive(Clone, Copy)]
pub struct ServiceEntry {
    /// `tickets`, `cmdb`...: the target name, and the service's name in subjects and settings.
    pub name: &'static str,
    /// The public gRPC service (`desk.tickets.v1.TicketService`).
    pub grpc_service: &'static str,
    /// Connects and migrates the service's database, then lets it go.
    pub migrate: for<'a> fn(&'a Settings) -> BoxFuture<'a, anyhow::Result<()>>,
    /// Builds the service into a process: registers its routes, starts its workers.
    pub build: for<'a> fn(
        &'a Platform,
        &'a mut RoutesBuilder,
    ) -> BoxFuture<'a, anyhow::Result<ServiceParts>>,
}

impl std::fmt::Debug for ServiceEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceEntry")
            .field("name", &self.name)
            .field("grpc_service", &self.grpc_service)
            .finish_non_exhaustive()
    }
}

/// Starts a process: connects the platform with `clock`, builds each of `services`, calls
/// `on_ready` once all are built, and serves them on `listener` until `shutdown` resolves.
///
/// Services call each other at this process's own address unless `services.<name>.url` says
/// otherwise, so `grpc.listen` is set to the bound address (also when the listener asked for
/// port 0).
pub async fn run(
    listener: TcpListener,
    mut settings: Settings,
    clock: SharedClock,
    services: &[ServiceEntry],
    on_ready: impl FnOnce(),
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    use anyhow::Context as _;
    settings.grpc.listen = listener.local_addr()?;
    let platform = Platform::connect(settings, clock).await?;
    let mut routes = RoutesBuilder::default();
    let mut parts = Vec::with_capacity(services.len());
    for service in services {
        parts.push(
            (service.build)(&platform, &mut routes)
                .await
                .with_context(|| format!("starting {}", service.name))?,
        );
        tracing::info!(service = %service.name, "service ready");
    }
    on_ready();
    serve(listener, &platform, routes, parts, shutdown).await
}

/// How long workers get to reach a message boundary after the server has drained.
const WORKER_STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves the services registered in `routes` on `listener` until `shutdown` resolves, then:
/// health NOT_SERVING, stop accepting, drain in-flight calls, stop workers at a message boundary.
pub async fn serve(
    listener: TcpListener,
    platform: &Platform,
    mut routes: RoutesBuilder,
    services: Vec<ServiceParts>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let health = platform.health.clone();
    let health_service = tonic_health::pb::health_server::HealthServer::new(
        tonic_health::server::HealthService::from_health_reporter(health.clone()),
    );
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(desk_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(desk_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;
    routes
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha);

    let grpc_services: Vec<&'static str> = services
        .iter()
        .flat_map(|s| s.grpc_services.iter().copied())
        .collect();
    let consumers: Vec<ConsumerHealth> = services
        .iter()
        .flat_map(|s| s.consumers.iter().cloned())
        .collect();
    let workers: Vec<JoinHandle<()>> = services.into_iter().flat_map(|s| s.workers).collect();
    // Migrations ran and NATS answered while the services were built: the process is ready.
    set_all(&health, &grpc_services, ServingStatus::Serving).await;
    // A consumer's own health: a service whose source stream is not there yet still serves its
    // API (its pods must not be restarted for another service's absence), but an operator sees
    // which consumer waits.
    let consumer_health: Vec<JoinHandle<()>> = consumers
        .into_iter()
        .map(|consumer| tokio::spawn(report_consumer(health.clone(), consumer)))
        .collect();

    let draining = CancellationToken::new();
    let drain_signal = draining.clone();
    let health_on_shutdown = health.clone();
    let names_on_shutdown = grpc_services.clone();
    let signal = async move {
        shutdown.await;
        tracing::info!("shutting down: not serving, draining in-flight calls");
        set_all(
            &health_on_shutdown,
            &names_on_shutdown,
            ServingStatus::NotServing,
        )
        .await;
        drain_signal.cancel();
    };

    // Small request/response pairs on a long-lived HTTP/2 connection: without TCP_NODELAY, Nagle's
    // algorithm holds a response until the peer's delayed ACK (up to 40 ms) arrives.
    let incoming = TcpListenerStream::new(listener).map(|stream| {
        if let Ok(stream) = &stream {
            let _ = stream.set_nodelay(true);
        }
        stream
    });
    let grpc = &platform.settings.grpc;
    tonic::transport::Server::builder()
        .accept_http1(true)
        // Import batches and impact answers run to megabytes: let HTTP/2 grow its flow-control
        // window with the connection's bandwidth-delay product instead of stalling at 64 KiB.
        .http2_adaptive_window(Some(true))
        .layer(platform.front.clone())
        .layer(tonic_web::GrpcWebLayer::new())
        .trace_fn(crate::telemetry::grpc_request_span)
        .concurrency_limit_per_connection(grpc.concurrency_per_connection)
        .timeout(Duration::from_secs(30))
        .add_routes(routes.routes())
        .serve_with_incoming_shutdown(incoming, signal)
        .await?;

    platform.workers_shutdown.cancel();
    for reporter in consumer_health {
        reporter.abort();
    }
    for worker in workers {
        if tokio::time::timeout(WORKER_STOP_TIMEOUT, worker)
            .await
            .is_err()
        {
            tracing::warn!("a worker did not stop in time");
        }
    }
    tracing::info!("stopped");
    Ok(())
}

/// Mirrors a consumer's status into gRPC health until the consumer stops.
async fn report_consumer(
    health: tonic_health::server::HealthReporter,
    mut consumer: ConsumerHealth,
) {
    loop {
        let status = *consumer.status.borrow_and_update();
        let serving = match status {
            ConsumerStatus::Consuming => ServingStatus::Serving,
            _ => ServingStatus::NotServing,
        };
        health
            .set_service_status(consumer.health_name.as_str(), serving)
            .await;
        if status == ConsumerStatus::Stopped || consumer.status.changed().await.is_err() {
            return;
        }
    }
}

async fn set_all(
    health: &tonic_health::server::HealthReporter,
    services: &[&'static str],
    status: ServingStatus,
) {
    health.set_service_status("", status).await;
    for name in services {
        health.set_service_status(*name, status).await;
    }
}

/// Resolves on the first SIGTERM or Ctrl-C; a second one exits the process at once.
pub async fn shutdown_signal() {
    wait_for_signal().await;
    tokio::spawn(async {
        wait_for_signal().await;
        tracing::warn!("second signal: exiting now");
        std::process::exit(130);
    });
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::{Layer as _, ServiceExt as _};

    /// A layer that appends `mark` to the response header `x-path`, so the order shows.
    fn marking(mark: &'static str) -> impl Fn(HttpService) -> HttpService + Send + Sync {
        move |inner: HttpService| {
            HttpService::new(tower::util::MapResponse::new(
                inner,
                move |mut response: http::Response<tonic::body::Body>| {
                    let seen = response
                        .headers()
                        .get("x-path")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned();
                    if let Ok(value) = http::HeaderValue::from_str(&format!("{seen}{mark}")) {
                        response.headers_mut().insert("x-path", value);
                    }
                    response
                },
            ))
        }
    }

    #[tokio::test]
    async fn front_layers_wrap_every_call_the_first_added_outermost() {
        let front = FrontLayers::default();
        front.add(marking("outer"));
        front.add(marking("inner,"));
        let routes = tower::service_fn(|_: http::Request<tonic::body::Body>| async {
            Ok::<_, Infallible>(http::Response::new(tonic::body::Body::empty()))
        });
        let response = front
            .layer(routes)
            .oneshot(http::Request::new(tonic::body::Body::empty()))
            .await
            .expect("infallible");
        // Responses pass the inner layer first.
        assert_eq!(response.headers()["x-path"], "inner,outer");
    }
}
