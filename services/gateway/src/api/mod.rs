//! The gateway as a layer around every call of its process (`desk_kit::host::FrontLayers`):
//! the same code in both modes. In microservices mode its routes are only health and
//! reflection, and public calls go to upstreams; in monolithic mode the public services are the
//! process's own routes, and the same checks run before them.
//!
//! Outermost first:
//! 1. [`cors`]: browser origins; preflights answered.
//! 2. gRPC-Web (binary and text, tonic-web): translated to gRPC and back.
//! 3. [`Core`], for calls to a public (`desk.*`) service — health, reflection and anything else
//!    go straight to the process's routes:
//!    the bearer token verified (each service verifies it again), the caller's rate limits
//!    taken ([`limiter`]), the deadline capped, request messages held to the size limit
//!    ([`body`]), then the destination chosen ([`crate::domain::routes`]) and the call sent
//!    there: this process's routes, the owning service's upstream, or a peer region's gateway
//!    ([`crate::upstreams`]). The RateLimit fields are added to the answer.

pub mod body;
pub mod cors;
pub mod limiter;
pub mod status;

use std::{
    convert::Infallible,
    sync::Arc,
    task::{Context, Poll},
    time::{Duration, Instant},
};

use desk_kit::{
    auth::{Caller, Verifier},
    calls::parse_grpc_timeout,
    host::HttpService,
    settings::Settings,
};
use futures::future::{BoxFuture, FutureExt as _};
use http::{HeaderValue, Version};
use tonic::{Status, body::Body};
use tower::{Layer as _, ServiceExt as _};

use crate::{
    domain::{
        cors::OriginPolicy,
        deadline::{capped, grpc_timeout_value},
        frames::single_message,
        limits::RateLimitPolicy,
        methods::{MethodInfo, MethodTable},
        retry::RetryPolicy,
        routes::{Destination, FORWARDED_FROM_HEADER, RoutingTable, id_region},
    },
    upstreams::{RequestBody, RequestHead, Upstreams},
};

/// Everything the gateway decides with, shared by every call.
pub struct Gateway {
    table: MethodTable,
    routing: RoutingTable,
    upstreams: Upstreams,
    verifier: Arc<Verifier>,
    limiter: limiter::Limiter,
    cors: Arc<OriginPolicy>,
    cors_max_age_seconds: u64,
    max_deadline: Duration,
    max_message_bytes: usize,
    retry: RetryPolicy,
    region: HeaderValue,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("routing", &self.routing)
            .finish_non_exhaustive()
    }
}

impl Gateway {
    pub fn new(
        settings: &Settings,
        table: MethodTable,
        upstreams: Upstreams,
        verifier: Arc<Verifier>,
    ) -> anyhow::Result<Gateway> {
        let gateway = &settings.gateway;
        Ok(Gateway {
            routing: upstreams.routing_table(&settings.region),
            table,
            upstreams,
            verifier,
            limiter: limiter::Limiter::new(&RateLimitPolicy::from_settings(&gateway.limits)),
            cors: Arc::new(OriginPolicy::new(
                gateway.cors_origins.iter().map(String::as_str),
            )),
            cors_max_age_seconds: gateway.cors_max_age_seconds,
            max_deadline: Duration::from_millis(gateway.max_deadline_ms.max(1)),
            max_message_bytes: gateway.max_message_bytes,
            retry: RetryPolicy {
                max_attempts: gateway.retry.max_attempts.max(1),
                backoff: Duration::from_millis(gateway.retry.backoff_ms),
            },
            region: HeaderValue::from_str(&settings.region)?,
        })
    }

    pub fn upstreams(&self) -> &Upstreams {
        &self.upstreams
    }

    pub fn routing(&self) -> &RoutingTable {
        &self.routing
    }

    /// Forgets idle rate-limit buckets (see [`limiter::Limiter::forget_idle`]).
    pub fn forget_idle_buckets(&self) {
        self.limiter.forget_idle();
    }

    /// The gateway around `inner`, every call of the process (see the module docs).
    pub fn layer(self: &Arc<Self>, inner: HttpService) -> HttpService {
        let core = Core {
            gateway: self.clone(),
            inner,
        };
        let web = tonic_web::GrpcWebLayer::new().layer(core);
        HttpService::new(cors::Cors::new(
            web,
            self.cors.clone(),
            self.cors_max_age_seconds,
        ))
    }

    fn authenticate(&self, headers: &http::HeaderMap) -> Result<Caller, Status> {
        let value = headers
            .get(http::header::AUTHORIZATION)
            .ok_or_else(|| Status::unauthenticated("missing bearer token"))?;
        let token = value
            .to_str()
            .ok()
            .and_then(|text| {
                text.strip_prefix("Bearer ")
                    .or_else(|| text.strip_prefix("bearer "))
            })
            .ok_or_else(|| Status::unauthenticated("malformed bearer token"))?;
        self.verifier.verify(token.trim()).map_err(|error| {
            tracing::debug!(reason = %error, "token refused at the gateway");
            Status::unauthenticated(error.to_string())
        })
    }

    async fn handle(
        &self,
        request: http::Request<Body>,
        inner: HttpService,
    ) -> http::Response<Body> {
        let (mut parts, body) = request.into_parts();
        let unknown;
        let method = match self.table.method(parts.uri.path()) {
            Some(method) => method,
            None => match MethodInfo::unknown(parts.uri.path()) {
                Some(method) => {
                    unknown = method;
                    &unknown
                }
                None => return call_local(inner, http::Request::from_parts(parts, body)).await,
            },
        };

        let caller = match self.authenticate(&parts.headers) {
            Ok(caller) => caller,
            Err(status) => return status::response(status),
        };
        // Service tokens are the platform's own work (a service calling another at this
        // process's address in monolithic mode): not the callers the limits protect from.
        let quota = if caller.is_service() {
            None
        } else {
            match self
                .limiter
                .check(method.class, &caller.tenant, &caller.subject)
            {
                Ok(quota) => quota,
                Err(refusal) => {
                    tracing::info!(
                        tenant = %caller.tenant,
                        class = method.class.as_str(),
                        scope = refusal.scope.as_str(),
                        "call over its rate limit"
                    );
                    return status::rate_limited(&refusal);
                }
            }
        };

        let requested = parts
            .headers
            .get("grpc-timeout")
            .and_then(|value| value.to_str().ok())
            .and_then(parse_grpc_timeout);
        let timeout = capped(requested, self.max_deadline);
        let deadline = Instant::now() + timeout;
        if let Ok(value) = HeaderValue::from_str(&grpc_timeout_value(timeout)) {
            parts.headers.insert("grpc-timeout", value);
        }

        let forwarded_by_peer = parts.headers.contains_key(FORWARDED_FROM_HEADER);
        let without_id = self
            .routing
            .destination(&method.owner, None, forwarded_by_peer);
        let id_may_route =
            method.id_field.is_some() && !self.routing.peers.is_empty() && !forwarded_by_peer;
        let may_retry = method.idempotent && matches!(without_id, Destination::Upstream(_));
        let (body, destination) = if method.is_unary_request() && (id_may_route || may_retry) {
            let bytes = match body::collect_unary(body, self.max_message_bytes).await {
                Ok(bytes) => bytes,
                Err(status) => return status::response(status),
            };
            let region = method
                .id_field
                .filter(|_| id_may_route)
                .and_then(|field| id_region(single_message(&bytes)?, field));
            let destination = match region {
                Some(region) => {
                    self.routing
                        .destination(&method.owner, Some(&region), forwarded_by_peer)
                }
                None => without_id,
            };
            (RequestBody::Whole(bytes), destination)
        } else {
            let limited = body::FrameLimited::new(body, self.max_message_bytes);
            let refusal = limited.refusal();
            let body = RequestBody::Streaming {
                body: Body::new(limited),
                refusal,
            };
            (body, without_id)
        };

        let mut response = match self.upstreams.get(&destination) {
            None => {
                let body = match body {
                    RequestBody::Whole(bytes) => Body::new(http_body_util::Full::new(bytes)),
                    RequestBody::Streaming { body, .. } => body,
                };
                call_local(inner, http::Request::from_parts(parts, body)).await
            }
            Some(upstream) => {
                let mut head = RequestHead::new(parts.method, parts.uri, parts.headers);
                if matches!(destination, Destination::Peer(_)) {
                    head.headers
                        .insert(FORWARDED_FROM_HEADER, self.region.clone());
                }
                upstream
                    .forward(&head, body, deadline, method.idempotent, self.retry)
                    .await
            }
        };
        if let Some(quota) = quota {
            status::add_quota_headers(response.headers_mut(), &quota);
        }
        response
    }
}

async fn call_local(inner: HttpService, request: http::Request<Body>) -> http::Response<Body> {
    match inner.oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    }
}

/// The gateway's checks and routing for gRPC calls (see the module docs).
#[derive(Clone)]
struct Core {
    gateway: Arc<Gateway>,
    inner: HttpService,
}

impl tower::Service<http::Request<Body>> for Core {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<http::Response<Body>, Infallible>>;

    fn poll_ready(&mut self, context: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(context)
    }

    fn call(&mut self, mut request: http::Request<Body>) -> Self::Future {
        // A gRPC-Web call arrives here translated to gRPC but still marked HTTP/1.1; from here
        // on it is a gRPC call like any other, to an upstream over HTTP/2 or to this process's
        // routes (whose own gRPC-Web layer would refuse a gRPC call over HTTP/1.1).
        *request.version_mut() = Version::HTTP_2;
        // The service that was made ready is the one to call; a clone takes its place.
        let ready = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, ready);
        if !request.uri().path().starts_with("/desk.") {
            return call_local(inner, request).map(Ok).boxed();
        }
        let gateway = self.gateway.clone();
        async move { Ok(gateway.handle(request, inner).await) }.boxed()
    }
}
