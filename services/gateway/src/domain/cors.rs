//! Which browser pages may call the gateway (CORS, for gRPC-Web), from `gateway.cors_origins`.
//!
//! Tokens travel in the `authorization` header, never in cookies, so credentials are not
//! allowed (`Access-Control-Allow-Credentials` is never sent) and a page of another origin
//! could not ride on a user's session anyway; the origin list decides which front-ends a
//! browser lets read the answers.

use std::collections::BTreeSet;

/// Request headers a gRPC-Web client sends (the grpc-web and Connect libraries' own, the
/// token, the deadline and the trace context).
pub const ALLOWED_REQUEST_HEADERS: &str = "authorization, content-type, x-grpc-web, x-user-agent, grpc-timeout, grpc-accept-encoding, traceparent, tracestate";

/// Response headers a page may read: the status, its details, and the rate-limit fields.
pub const EXPOSED_RESPONSE_HEADERS: &str = "grpc-status, grpc-message, grpc-status-details-bin, ratelimit-limit, ratelimit-remaining, ratelimit-reset";

/// gRPC-Web calls are POSTs; a preflight is an OPTIONS.
pub const ALLOWED_METHODS: &str = "POST, OPTIONS";

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OriginPolicy {
    any: bool,
    origins: BTreeSet<String>,
}

impl OriginPolicy {
    /// Origins are compared as browsers send them, without a trailing slash and case-blind
    /// (scheme and host are case-insensitive; a port is digits); `*` allows every origin.
    pub fn new<'a>(origins: impl IntoIterator<Item = &'a str>) -> OriginPolicy {
        let mut policy = OriginPolicy::default();
        for origin in origins {
            let origin = origin.trim().trim_end_matches('/');
            if origin == "*" {
                policy.any = true;
            } else if !origin.is_empty() {
                policy.origins.insert(origin.to_ascii_lowercase());
            }
        }
        policy
    }

    pub fn allows(&self, origin: &str) -> bool {
        self.any || self.origins.contains(&origin.to_ascii_lowercase())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_listed_origins_are_allowed() {
        let policy =
            OriginPolicy::new(["https://portal.example.com/", " https://App.Example.com "]);
        assert!(policy.allows("https://portal.example.com"));
        assert!(policy.allows("https://app.example.com"));
        assert!(!policy.allows("https://evil.example.com"));
        assert!(!policy.allows("http://portal.example.com"));
        assert!(!policy.allows("null"));
    }

    #[test]
    fn no_origins_allow_no_browser_and_a_star_allows_all() {
        assert!(!OriginPolicy::new([]).allows("https://portal.example.com"));
        assert!(OriginPolicy::new(["*"]).allows("https://anything.example"));
    }
}
