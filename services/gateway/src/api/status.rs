//! The answers the gateway gives itself, as gRPC statuses on the wire.

use std::time::Duration;

use http::{HeaderName, HeaderValue};
use tonic::{Code, Status, body::Body};
use tonic_types::{ErrorDetails, StatusExt as _};

use crate::domain::limits::{QuotaReport, Refusal};

/// `status` as a trailers-only HTTP response.
pub fn response(status: Status) -> http::Response<Body> {
    status.into_http()
}

/// A refused call: `RESOURCE_EXHAUSTED` with the delay in `google.rpc.RetryInfo`, what ran out in
/// `google.rpc.QuotaFailure`, and the RateLimit fields in the metadata.
pub fn rate_limited(refusal: &Refusal) -> http::Response<Body> {
    let mut details = ErrorDetails::with_retry_info(Some(refusal.retry_after));
    details.add_quota_failure_violation(
        format!("{}:{}", refusal.scope.as_str(), refusal.class.as_str()),
        refusal.message(),
    );
    let status = Status::with_error_details(Code::ResourceExhausted, refusal.message(), details);
    let mut response = status.into_http();
    add_quota_headers(response.headers_mut(), &refusal.report());
    response
}

/// An upstream that cannot take calls now: `UNAVAILABLE`, with when to try again if known.
pub fn unavailable(message: String, retry_after: Option<Duration>) -> http::Response<Body> {
    let status = match retry_after {
        Some(delay) => Status::with_error_details(
            Code::Unavailable,
            message,
            ErrorDetails::with_retry_info(Some(delay)),
        ),
        None => Status::unavailable(message),
    };
    status.into_http()
}

/// Sets the RateLimit fields of `report` on a response's headers.
pub fn add_quota_headers(headers: &mut http::HeaderMap, report: &QuotaReport) {
    for (name, value) in report.headers() {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(HeaderName::from_static(name), value);
        }
    }
}

/// The gRPC status code of a trailers-only response (`grpc-status` among the headers).
pub fn trailers_only_code(response: &http::Response<Body>) -> Option<Code> {
    let value = response.headers().get("grpc-status")?.to_str().ok()?;
    value.parse::<i32>().ok().map(Code::from)
}
