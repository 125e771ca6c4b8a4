//! The gateway's upstreams: the services it forwards to (`services.<name>.url`) and the other
//! regions' gateways (`gateway.peers.<region>.url`). The gateway keeps nothing durable, so this
//! registry takes the place of a service's `store/`: one HTTP/2 channel per upstream, its
//! circuit breaker and retry budget, and the health the gateway reports for it ([`health`]).
//!
//! Forwarding is transparent: the request goes on with its path, metadata and body as they
//! came (only hop-by-hop headers are dropped and the deadline restated), and the upstream's
//! response, streamed or not, comes back as it is, trailers included. No code per method.

pub mod health;

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use anyhow::Context as _;
use bytes::Bytes;
use desk_kit::settings::Settings;
use http::{HeaderMap, HeaderValue, Method, Uri, Version, header};
use tokio::sync::watch;
use tonic::{
    Code, Status,
    body::Body,
    transport::{Channel, Endpoint},
};
use tower::ServiceExt as _;

use crate::{
    api::{body::Refusal, status},
    domain::{
        breaker::{Admission, Breaker, Transition},
        deadline::grpc_timeout_value,
        methods::MethodTable,
        retry::{AttemptOutcome, RetryBudget, RetryPolicy},
        routes::{Destination, RoutingTable},
    },
};

/// How long connecting to an upstream may take: it is in the same cluster (or a peer region's
/// gateway on a known address), so a slow connect means it is not there.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// One upstream: where it is, whether it is failing, what the gateway says of it.
pub struct Upstream {
    /// `tickets`, or `gateway of amer`: for logs and messages.
    pub label: String,
    channel: Channel,
    breaker: Mutex<Breaker>,
    budget: Mutex<RetryBudget>,
    /// Whether the circuit is open, for the health report.
    circuit_open: watch::Sender<bool>,
    /// `(name checked at the upstream, name reported at the gateway)`: a service's public gRPC
    /// services under their own names; a peer gateway's overall health as `peer.<region>`.
    pub health_names: Vec<(String, String)>,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("label", &self.label)
            .finish_non_exhaustive()
    }
}

/// What the gateway forwards of a request besides its body.
#[derive(Debug, Clone)]
pub struct RequestHead {
    pub method: Method,
    pub uri: Uri,
    pub headers: HeaderMap,
}

/// Headers that belong to one connection, not to the call (HTTP/2 forbids most of them), and
/// those the gateway restates for each attempt.
const NOT_FORWARDED: &[header::HeaderName] = &[
    header::CONNECTION,
    header::HOST,
    header::CONTENT_LENGTH,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::TE,
    header::ORIGIN,
];

impl RequestHead {
    pub fn new(method: Method, uri: Uri, mut headers: HeaderMap) -> RequestHead {
        for name in NOT_FORWARDED {
            headers.remove(name);
        }
        headers.remove("keep-alive");
        headers.remove("proxy-connection");
        headers.remove("grpc-timeout");
        RequestHead {
            method,
            uri,
            headers,
        }
    }

    /// The request of one attempt with `left` until the caller's deadline.
    fn request(&self, body: Body, left: Duration) -> http::Request<Body> {
        let mut request = http::Request::new(body);
        *request.method_mut() = self.method.clone();
        *request.uri_mut() = self.uri.clone();
        *request.version_mut() = Version::HTTP_2;
        let headers = request.headers_mut();
        headers.clone_from(&self.headers);
        headers.insert(header::TE, HeaderValue::from_static("trailers"));
        if let Ok(timeout) = HeaderValue::from_str(&grpc_timeout_value(left)) {
            headers.insert("grpc-timeout", timeout);
        }
        request
    }
}

/// A request body as the gateway holds it.
pub enum RequestBody {
    /// Streamed through as it arrives: cannot be sent twice. When it fails with a status of
    /// its own (a message over the limit), that status is in `refusal`.
    Streaming { body: Body, refusal: Refusal },
    /// A unary request read whole: may be sent again.
    Whole(Bytes),
}

impl Upstream {
    fn new(
        label: String,
        url: &str,
        health_names: Vec<(String, String)>,
        settings: &Settings,
    ) -> anyhow::Result<Upstream> {
        anyhow::ensure!(
            url.starts_with("http://"),
            "{url:?} must be an http:// address (the gateway calls upstreams over plain HTTP/2)"
        );
        let channel = Endpoint::from_shared(url.to_owned())?
            .connect_timeout(CONNECT_TIMEOUT)
            .tcp_nodelay(true)
            .http2_adaptive_window(true)
            .http2_keep_alive_interval(Duration::from_secs(30))
            .keep_alive_while_idle(true)
            .connect_lazy();
        let gateway = &settings.gateway;
        Ok(Upstream {
            label,
            channel,
            breaker: Mutex::new(Breaker::new(
                gateway.breaker.failure_threshold,
                Duration::from_millis(gateway.breaker.open_ms),
            )),
            budget: Mutex::new(RetryBudget::new(
                gateway.retry.budget_ratio,
                gateway.retry.budget_min_per_second,
            )),
            circuit_open: watch::Sender::new(false),
            health_names,
        })
    }

    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    pub fn watch_circuit(&self) -> watch::Receiver<bool> {
        self.circuit_open.subscribe()
    }

    fn report(&self, transition: Option<Transition>) {
        match transition {
            Some(Transition::Opened) => {
                tracing::warn!(upstream = %self.label, "circuit opened: upstream failing");
                self.circuit_open.send_replace(true);
            }
            Some(Transition::Closed) => {
                tracing::info!(upstream = %self.label, "circuit closed: upstream answers again");
                self.circuit_open.send_replace(false);
            }
            None => {}
        }
    }

    fn admit(&self, now: Instant) -> Admission {
        self.breaker
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .admit(now)
    }

    fn record(&self, outcome: AttemptOutcome, now: Instant) {
        let transition = {
            let mut breaker = self.breaker.lock().unwrap_or_else(PoisonError::into_inner);
            match outcome {
                AttemptOutcome::Answered => breaker.record_success(),
                AttemptOutcome::Unavailable => breaker.record_failure(now),
            }
        };
        self.report(transition);
    }

    /// A health check of the upstream said SERVING.
    pub fn record_healthy_probe(&self, now: Instant) {
        let transition = self
            .breaker
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .record_healthy_probe(now);
        self.report(transition);
    }

    /// Sends the call on and returns the upstream's response as it is, or the gateway's own
    /// status when the upstream cannot be reached: `UNAVAILABLE` (circuit open, not reachable)
    /// or `DEADLINE_EXCEEDED`. A call that is `idempotent` and held whole is sent again when
    /// the upstream was not reached, as the policy and the budget allow.
    pub async fn forward(
        &self,
        head: &RequestHead,
        body: RequestBody,
        deadline: Instant,
        idempotent: bool,
        policy: RetryPolicy,
    ) -> http::Response<Body> {
        let (whole, mut streaming, refusal) = match body {
            RequestBody::Whole(bytes) => (Some(bytes), None, None),
            RequestBody::Streaming { body, refusal } => (None, Some(body), Some(refusal)),
        };
        let retryable = idempotent && whole.is_some();
        self.budget
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .record_call(Instant::now());
        let mut attempt = 1;
        loop {
            let now = Instant::now();
            if let Admission::Refuse { retry_after } = self.admit(now) {
                return status::unavailable(
                    format!(
                        "{} is unavailable: calls are paused after repeated failures",
                        self.label
                    ),
                    Some(retry_after),
                );
            }
            let body = match (&whole, streaming.take()) {
                (Some(bytes), _) => Body::new(http_body_util::Full::new(bytes.clone())),
                (None, Some(body)) => body,
                (None, None) => Body::empty(),
            };
            let left = deadline.saturating_duration_since(now);
            let request = head.request(body, left);
            let sent =
                tokio::time::timeout_at(deadline.into(), self.channel.clone().oneshot(request))
                    .await;
            let (response, outcome) = match sent {
                Err(_) => {
                    return status::response(Status::deadline_exceeded(format!(
                        "{} did not answer within the call's deadline",
                        self.label
                    )));
                }
                Ok(Ok(response)) => {
                    let outcome =
                        if status::trailers_only_code(&response) == Some(Code::Unavailable) {
                            AttemptOutcome::Unavailable
                        } else {
                            AttemptOutcome::Answered
                        };
                    (Some(response), outcome)
                }
                Ok(Err(error)) => {
                    // The request's own body failed (a message over the limit): that is the
                    // caller's answer, and says nothing about the upstream.
                    if let Some(status) = refusal.as_ref().and_then(|r| r.get()) {
                        return status::response(status.clone());
                    }
                    tracing::debug!(upstream = %self.label, error = ?error, "upstream not reached");
                    (None, AttemptOutcome::Unavailable)
                }
            };
            self.record(outcome, Instant::now());
            let left = deadline.saturating_duration_since(Instant::now());
            if policy.may_retry(attempt, outcome, retryable, left)
                && self
                    .budget
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .try_spend(Instant::now())
            {
                tokio::time::sleep(policy.pause_after(attempt)).await;
                attempt += 1;
                continue;
            }
            return response.unwrap_or_else(|| {
                status::unavailable(format!("{} cannot be reached", self.label), None)
            });
        }
    }
}

/// Every upstream of this gateway, built from settings.
#[derive(Debug, Default)]
pub struct Upstreams {
    services: BTreeMap<String, Arc<Upstream>>,
    peers: BTreeMap<String, Arc<Upstream>>,
}

impl Upstreams {
    /// Every service named in `services.<name>.url` except `own_name` (the gateway never
    /// forwards its own package to itself), and every peer but the gateway's own region.
    ///
    /// A service whose protos this gateway was built without is forwarded all the same (its
    /// calls are routed by package, see [`crate::domain::methods::MethodInfo::unknown`]): a new
    /// service is reachable by configuration alone. Its health is its overall status, reported
    /// as `service.<name>`, since the gateway does not know its gRPC services' names.
    pub fn from_settings(
        settings: &Settings,
        table: &MethodTable,
        own_name: &str,
    ) -> anyhow::Result<Upstreams> {
        let mut upstreams = Upstreams::default();
        for (name, address) in &settings.services {
            if name == own_name {
                continue;
            }
            let mut names: Vec<(String, String)> = table
                .services_of(name)
                .map(|service| (service.to_owned(), service.to_owned()))
                .collect();
            if names.is_empty() {
                names.push((String::new(), format!("service.{name}")));
            }
            let upstream = Upstream::new(name.clone(), &address.url, names, settings)
                .with_context(|| format!("services.{name}.url"))?;
            upstreams.services.insert(name.clone(), Arc::new(upstream));
        }
        for (region, address) in &settings.gateway.peers {
            anyhow::ensure!(
                desk_kit::ids::is_region(region),
                "gateway.peers.{region}: {region:?} is not a region name"
            );
            if *region == settings.region {
                continue;
            }
            let names = vec![(String::new(), format!("peer.{region}"))];
            let upstream = Upstream::new(
                format!("the gateway of {region}"),
                &address.url,
                names,
                settings,
            )
            .with_context(|| format!("gateway.peers.{region}.url"))?;
            upstreams.peers.insert(region.clone(), Arc::new(upstream));
        }
        Ok(upstreams)
    }

    pub fn routing_table(&self, own_region: &str) -> RoutingTable {
        RoutingTable {
            own_region: own_region.to_owned(),
            upstreams: self.services.keys().cloned().collect::<BTreeSet<_>>(),
            peers: self.peers.keys().cloned().collect::<BTreeSet<_>>(),
        }
    }

    pub fn get(&self, destination: &Destination) -> Option<&Arc<Upstream>> {
        match destination {
            Destination::Local => None,
            Destination::Upstream(name) => self.services.get(name),
            Destination::Peer(region) => self.peers.get(region),
        }
    }

    pub fn all(&self) -> impl Iterator<Item = &Arc<Upstream>> {
        self.services.values().chain(self.peers.values())
    }
}
