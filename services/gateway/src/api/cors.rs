//! CORS for gRPC-Web: the outermost part of the gateway, since a browser's preflight is a bare
//! `OPTIONS` that nothing behind it would understand.
//!
//! - A preflight from an allowed origin is answered here (`204`); from any other, `403`.
//! - A call with an `Origin` header that is not allowed is refused (`403`) before it reaches
//!   any service, rather than run and then hidden from the page by the browser.
//! - A call from an allowed origin gets `Access-Control-Allow-Origin` and the headers a page may
//!   read; calls without `Origin` (servers, phones, other services) pass as they are.

use std::{
    convert::Infallible,
    sync::Arc,
    task::{Context, Poll},
};

use futures::future::{BoxFuture, FutureExt as _};
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use tonic::body::Body;

use crate::domain::cors::{
    ALLOWED_METHODS, ALLOWED_REQUEST_HEADERS, EXPOSED_RESPONSE_HEADERS, OriginPolicy,
};

#[derive(Clone)]
pub struct Cors<S> {
    inner: S,
    policy: Arc<OriginPolicy>,
    max_age: HeaderValue,
}

impl<S> Cors<S> {
    pub fn new(inner: S, policy: Arc<OriginPolicy>, max_age_seconds: u64) -> Cors<S> {
        Cors {
            inner,
            policy,
            max_age: HeaderValue::from(max_age_seconds),
        }
    }
}

fn plain(status: StatusCode) -> http::Response<Body> {
    let mut response = http::Response::new(Body::empty());
    *response.status_mut() = status;
    response
}

fn allow_origin(headers: &mut HeaderMap, origin: HeaderValue) {
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    headers.append(header::VARY, HeaderValue::from_static("origin"));
}

impl<S> tower::Service<http::Request<Body>> for Cors<S>
where
    S: tower::Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<http::Response<Body>, Infallible>>;

    fn poll_ready(&mut self, context: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(context)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let Some(origin) = request.headers().get(header::ORIGIN).cloned() else {
            return self.inner.call(request).boxed();
        };
        let allowed = origin.to_str().is_ok_and(|o| self.policy.allows(o));
        if !allowed {
            tracing::debug!(origin = ?origin, "call from a browser origin that is not allowed");
            return futures::future::ready(Ok(plain(StatusCode::FORBIDDEN))).boxed();
        }
        if request.method() == Method::OPTIONS {
            let mut response = plain(StatusCode::NO_CONTENT);
            let headers = response.headers_mut();
            allow_origin(headers, origin);
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static(ALLOWED_METHODS),
            );
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static(ALLOWED_REQUEST_HEADERS),
            );
            headers.insert(header::ACCESS_CONTROL_MAX_AGE, self.max_age.clone());
            headers.append(
                header::VARY,
                HeaderValue::from_static(
                    "access-control-request-method, access-control-request-headers",
                ),
            );
            return futures::future::ready(Ok(response)).boxed();
        }
        self.inner
            .call(request)
            .map(move |outcome| {
                outcome.map(|mut response| {
                    let headers = response.headers_mut();
                    allow_origin(headers, origin);
                    headers.insert(
                        header::ACCESS_CONTROL_EXPOSE_HEADERS,
                        HeaderValue::from_static(EXPOSED_RESPONSE_HEADERS),
                    );
                    response
                })
            })
            .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::ServiceExt as _;

    fn cors() -> Cors<
        impl tower::Service<
            http::Request<Body>,
            Response = http::Response<Body>,
            Error = Infallible,
            Future: Send,
        > + Clone,
    > {
        let inner = tower::service_fn(|_: http::Request<Body>| async {
            Ok::<_, Infallible>(http::Response::new(Body::empty()))
        });
        Cors::new(
            inner,
            Arc::new(OriginPolicy::new(["https://portal.example.com"])),
            600,
        )
    }

    fn request(method: Method, origin: Option<&str>) -> http::Request<Body> {
        let mut builder = http::Request::builder()
            .method(method)
            .uri("/desk.tickets.v1.TicketService/GetTicket");
        if let Some(origin) = origin {
            builder = builder.header(header::ORIGIN, origin);
        }
        builder.body(Body::empty()).expect("a request")
    }

    #[tokio::test]
    async fn a_preflight_from_an_allowed_origin_is_answered_with_what_grpc_web_needs() {
        let response = cors()
            .oneshot(request(Method::OPTIONS, Some("https://portal.example.com")))
            .await
            .expect("infallible");
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        let headers = response.headers();
        assert_eq!(
            headers[header::ACCESS_CONTROL_ALLOW_ORIGIN],
            "https://portal.example.com"
        );
        assert!(
            headers[header::ACCESS_CONTROL_ALLOW_HEADERS]
                .to_str()
                .expect("ascii")
                .contains("x-grpc-web")
        );
        assert_eq!(headers[header::ACCESS_CONTROL_MAX_AGE], "600");
        assert!(!headers.contains_key(header::ACCESS_CONTROL_ALLOW_CREDENTIALS));
    }

    #[tokio::test]
    async fn an_origin_not_listed_is_refused_preflight_or_not() {
        for method in [Method::OPTIONS, Method::POST] {
            let response = cors()
                .oneshot(request(method.clone(), Some("https://evil.example.com")))
                .await
                .expect("infallible");
            assert_eq!(response.status(), StatusCode::FORBIDDEN, "{method}");
        }
    }

    #[tokio::test]
    async fn calls_get_the_origin_and_exposed_headers_and_calls_without_origin_pass_as_they_are() {
        let response = cors()
            .oneshot(request(Method::POST, Some("https://portal.example.com")))
            .await
            .expect("infallible");
        assert_eq!(response.status(), StatusCode::OK);
        assert!(
            response.headers()[header::ACCESS_CONTROL_EXPOSE_HEADERS]
                .to_str()
                .expect("ascii")
                .contains("ratelimit-remaining")
        );
        let response = cors()
            .oneshot(request(Method::POST, None))
            .await
            .expect("infallible");
        assert!(
            !response
                .headers()
                .contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN)
        );
    }
}
