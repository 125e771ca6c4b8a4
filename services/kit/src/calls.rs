//! One service calling another over gRPC (ARCHITECTURE §2, §7, §12).
//!
//! Both modes take the same road: even in monolithic mode a service calls another through a gRPC
//! channel (to its own process's address), never in-process.
//!
//! A call carries, in its metadata:
//! - `authorization`: the caller's own token when a user started the work
//!   ([`CallContext::from_incoming`]), so the callee applies that user's rights; or a service
//!   token of this service for the tenant of the work ([`CallContext::as_service`]), accepted only
//!   by methods open to services (see [`crate::auth`]).
//! - `traceparent`: the current span, so the callee's span is its child; when this process
//!   records no spans, the incoming `traceparent` is passed on so the trace still joins up.
//! - `grpc-timeout`: what is left of the caller's own deadline, capped by a default, so a callee
//!   stops working once nobody waits for the answer.
//!
//! The callee's `Status` becomes a [`CallError`]: [`CallError::Retryable`] or
//! [`CallError::Permanent`], which a consumer turns into a retry or a rejection of its event.
//!
//! ```ignore
//! let calls = ServiceCalls::from_settings(&platform.settings, "sla")?;
//! // in a handler, acting for the user who called it:
//! let context = CallContext::from_incoming(&request);
//! // in a consumer, for work of a tenant that no user started:
//! let context = CallContext::as_service(&event.attributes.tenant);
//! let mut tickets = TicketServiceClient::new(calls.channel("tickets")?);
//! let answer = tickets
//!     .escalate_ticket(calls.request(&context, message)?)
//!     .await
//!     .map_err(CallError::from)?;
//! ```

use std::{
    collections::{BTreeMap, HashMap},
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    sync::{Mutex, PoisonError},
    time::{Duration, Instant},
};

use anyhow::Context as _;
use tonic::{
    Code, Status,
    metadata::{Ascii, MetadataValue},
    transport::{Channel, Endpoint},
};

use crate::{service_tokens::ServiceTokens, settings::Settings};

/// The longest an outgoing call may take when the caller's own deadline is later or unknown.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// How long connecting to another service may take before the call fails as `UNAVAILABLE`.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// When the caller of an incoming request stops waiting: its `grpc-timeout` from the moment the
/// request arrived. [`crate::auth::AuthInterceptor`] stamps it into every request's extensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IncomingDeadline(pub Instant);

impl IncomingDeadline {
    /// From a request's `grpc-timeout` header, counted from now; `None` without a valid one.
    pub fn from_headers(headers: &http::HeaderMap) -> Option<IncomingDeadline> {
        let timeout = parse_grpc_timeout(headers.get("grpc-timeout")?.to_str().ok()?)?;
        Instant::now().checked_add(timeout).map(IncomingDeadline)
    }
}

/// A `grpc-timeout` value: 1 to 8 digits and a unit (`H`, `M`, `S`, `m`, `u`, `n`), as the gRPC
/// HTTP/2 protocol defines it.
pub fn parse_grpc_timeout(value: &str) -> Option<Duration> {
    let unit = value.chars().last()?;
    let digits = &value[..value.len() - unit.len_utf8()];
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        'H' => Duration::from_secs(amount * 3600),
        'M' => Duration::from_secs(amount * 60),
        'S' => Duration::from_secs(amount),
        'm' => Duration::from_millis(amount),
        'u' => Duration::from_micros(amount),
        'n' => Duration::from_nanos(amount),
        _ => return None,
    })
}

/// On whose behalf, and until when, an outgoing call is made.
#[derive(Clone)]
pub struct CallContext {
    credentials: Credentials,
    deadline: Option<Instant>,
    incoming_traceparent: Option<String>,
}

#[derive(Clone)]
enum Credentials {
    /// The incoming request's `authorization`, passed on as it came.
    Forwarded(Option<MetadataValue<Ascii>>),
    /// A service token of this service for the tenant of the work.
    Service { tenant: String },
}

impl std::fmt::Debug for CallContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The forwarded token is a credential: it never reaches a log line.
        let credentials = match &self.credentials {
            Credentials::Forwarded(Some(_)) => "the caller's token".to_owned(),
            Credentials::Forwarded(None) => "no token".to_owned(),
            Credentials::Service { tenant } => format!("a service token for {tenant}"),
        };
        f.debug_struct("CallContext")
            .field("credentials", &credentials)
            .field("deadline", &self.deadline)
            .finish()
    }
}

impl CallContext {
    /// Acting for whoever made `request`: their token, their remaining deadline, their trace.
    pub fn from_incoming<T>(request: &tonic::Request<T>) -> CallContext {
        let metadata = request.metadata();
        let deadline = request
            .extensions()
            .get::<IncomingDeadline>()
            .copied()
            .or_else(|| IncomingDeadline::from_headers(metadata.as_ref()))
            .map(|deadline| deadline.0);
        CallContext {
            credentials: Credentials::Forwarded(metadata.get("authorization").cloned()),
            deadline,
            incoming_traceparent: metadata
                .get("traceparent")
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned),
        }
    }

    /// Work of `tenant` that no user started (a timer, a consumer's effect): the call presents
    /// this service's own service token, and the callee's method must be open to services.
    pub fn as_service(tenant: impl Into<String>) -> CallContext {
        CallContext {
            credentials: Credentials::Service {
                tenant: tenant.into(),
            },
            deadline: None,
            incoming_traceparent: None,
        }
    }

    /// The call must end by `deadline` (or by the earlier deadline it already has).
    pub fn with_deadline(mut self, deadline: Instant) -> CallContext {
        self.deadline = Some(self.deadline.map_or(deadline, |d| d.min(deadline)));
        self
    }
}

/// What a failed call means for the caller.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The same call may succeed later: `UNAVAILABLE`, `DEADLINE_EXCEEDED`, `RESOURCE_EXHAUSTED`,
    /// `ABORTED` (a stale version: redo the effect from a fresh read), `CANCELLED` (the client's
    /// own timeout, or a shutdown) and `UNKNOWN` (what tonic reports for a connection that broke
    /// mid-call). A consumer retries its event with back-off.
    #[error("retryable: {}: {}", code_name(.0.code()), .0.message())]
    Retryable(Status),
    /// The same call fails the same way again (bad input, not found, refused, a precondition, an
    /// internal error of the callee). A consumer rejects its event to the dead letters.
    #[error("permanent: {}: {}", code_name(.0.code()), .0.message())]
    Permanent(Status),
}

impl CallError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, CallError::Retryable(_))
    }

    /// The callee's status (or the one this side made, for a call that could not be sent).
    pub fn status(&self) -> &Status {
        match self {
            CallError::Retryable(status) | CallError::Permanent(status) => status,
        }
    }

    pub fn into_status(self) -> Status {
        match self {
            CallError::Retryable(status) | CallError::Permanent(status) => status,
        }
    }
}

impl From<Status> for CallError {
    fn from(status: Status) -> CallError {
        if is_retryable(status.code()) {
            CallError::Retryable(status)
        } else {
            CallError::Permanent(status)
        }
    }
}

/// The codes a retry can cure; see [`CallError::Retryable`].
pub fn is_retryable(code: Code) -> bool {
    matches!(
        code,
        Code::Unavailable
            | Code::DeadlineExceeded
            | Code::ResourceExhausted
            | Code::Aborted
            | Code::Cancelled
            | Code::Unknown
    )
}

fn code_name(code: Code) -> String {
    format!("{code:?}")
}

/// This service's way to every other: one lazily connected channel per target, and the
/// metadata of each outgoing call. Build one per service at start; share it behind an `Arc`.
pub struct ServiceCalls {
    service: String,
    targets: BTreeMap<String, Endpoint>,
    /// This process's own address, for services not named in `services.<name>.url`; `None` when
    /// `grpc.listen` has port 0 (the process does not know its port yet).
    own_address: Option<Endpoint>,
    channels: Mutex<HashMap<String, Channel>>,
    tokens: Option<ServiceTokens>,
    default_timeout: Duration,
}

impl std::fmt::Debug for ServiceCalls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceCalls")
            .field("service", &self.service)
            .field("targets", &self.targets.keys().collect::<Vec<_>>())
            .field("service_tokens", &self.tokens.is_some())
            .finish()
    }
}

impl ServiceCalls {
    /// The calls of `service` (its name, the `sub` of its service tokens): targets from
    /// `services.<name>.url`, else this process's `grpc.listen`; service tokens from
    /// [`ServiceTokens::from_settings`] when a signing key (or the development secret) is set.
    pub fn from_settings(settings: &Settings, service: &str) -> anyhow::Result<ServiceCalls> {
        let mut targets = BTreeMap::new();
        for (name, address) in &settings.services {
            targets.insert(
                name.clone(),
                endpoint(&address.url).with_context(|| format!("services.{name}.url"))?,
            );
        }
        let own_address = match settings.grpc.listen.port() {
            0 => None,
            _ => Some(endpoint(&own_url(settings.grpc.listen))?),
        };
        Ok(ServiceCalls {
            service: service.to_owned(),
            targets,
            own_address,
            channels: Mutex::default(),
            tokens: ServiceTokens::from_settings(&settings.auth, service)?,
            default_timeout: DEFAULT_CALL_TIMEOUT,
        })
    }

    /// Caps every call at `timeout` instead of [`DEFAULT_CALL_TIMEOUT`].
    pub fn with_default_timeout(mut self, timeout: Duration) -> ServiceCalls {
        self.default_timeout = timeout;
        self
    }

    /// The name this service calls with.
    pub fn service(&self) -> &str {
        &self.service
    }

    /// The channel to `target` (`tickets`), connected on its first call and shared by every call
    /// after (one HTTP/2 connection multiplexes them). Call it inside the tokio runtime.
    pub fn channel(&self, target: &str) -> Result<Channel, CallError> {
        let mut channels = self.channels.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(channel) = channels.get(target) {
            return Ok(channel.clone());
        }
        let endpoint = self
            .targets
            .get(target)
            .or(self.own_address.as_ref())
            .ok_or_else(|| {
                tracing::error!(target, "no address to call a service at");
                CallError::Permanent(Status::unavailable(format!(
                    "no address for the {target} service: set services.{target}.url"
                )))
            })?;
        let channel = endpoint.connect_lazy();
        channels.insert(target.to_owned(), channel.clone());
        Ok(channel)
    }

    /// `message` as a request made in `context`: `authorization`, `traceparent` and
    /// `grpc-timeout` set as the module docs say.
    pub fn request<M>(
        &self,
        context: &CallContext,
        message: M,
    ) -> Result<tonic::Request<M>, CallError> {
        let timeout = match context.deadline {
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(CallError::Retryable(Status::deadline_exceeded(
                        "the caller's deadline passed before the call was made",
                    )));
                }
                left.min(self.default_timeout)
            }
            None => self.default_timeout,
        };
        let mut request = tonic::Request::new(message);
        request.set_timeout(timeout);
        if let Some(authorization) = self.authorization(context)? {
            request
                .metadata_mut()
                .insert("authorization", authorization);
        }
        let traceparent = crate::telemetry::current_traceparent()
            .or_else(|| context.incoming_traceparent.clone());
        if let Some(value) = traceparent.and_then(|t| MetadataValue::try_from(t).ok()) {
            request.metadata_mut().insert("traceparent", value);
        }
        Ok(request)
    }

    fn authorization(
        &self,
        context: &CallContext,
    ) -> Result<Option<MetadataValue<Ascii>>, CallError> {
        match &context.credentials {
            Credentials::Forwarded(value) => Ok(value.clone()),
            Credentials::Service { tenant } => {
                let tokens = self.tokens.as_ref().ok_or_else(|| {
                    tracing::error!(
                        service = %self.service,
                        "a service token is needed but no signing key is configured"
                    );
                    CallError::Permanent(Status::unauthenticated(
                        "this service has no signing key for service tokens: set \
                         auth.service_signing_key_file",
                    ))
                })?;
                let token = tokens.token_for(tenant).map_err(|error| {
                    tracing::error!(error = %error, "a service token could not be minted");
                    CallError::Permanent(Status::internal("a service token could not be minted"))
                })?;
                MetadataValue::try_from(format!("Bearer {token}"))
                    .map(Some)
                    .map_err(|_| {
                        CallError::Permanent(Status::internal(
                            "a service token is not a header value",
                        ))
                    })
            }
        }
    }
}

/// An endpoint for `url`: plain HTTP/2, since traffic between services stays in the cluster.
fn endpoint(url: &str) -> anyhow::Result<Endpoint> {
    anyhow::ensure!(
        url.starts_with("http://"),
        "{url:?} must be an http:// address (calls between services are plain HTTP/2)"
    );
    Ok(Endpoint::from_shared(url.to_owned())?
        .connect_timeout(CONNECT_TIMEOUT)
        .tcp_nodelay(true))
}

/// `grpc.listen` as an address to call: a wildcard listen address is reached on loopback.
fn own_url(listen: SocketAddr) -> String {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("http://{}", SocketAddr::new(ip, listen.port()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeouts_parse_in_every_unit_and_bad_ones_do_not() {
        assert_eq!(parse_grpc_timeout("2H"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_grpc_timeout("3M"), Some(Duration::from_secs(180)));
        assert_eq!(parse_grpc_timeout("10S"), Some(Duration::from_secs(10)));
        assert_eq!(parse_grpc_timeout("250m"), Some(Duration::from_millis(250)));
        assert_eq!(
            parse_grpc_timeout("99999999u"),
            Some(Duration::from_micros(99_999_999))
        );
        assert_eq!(parse_grpc_timeout("5n"), Some(Duration::from_nanos(5)));
        for bad in ["", "S", "123456789S", "10s", "-1S", "1.5S", "10", "1é"] {
            assert_eq!(parse_grpc_timeout(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn retryable_codes_are_those_a_later_attempt_can_cure() {
        for code in [
            Code::Unavailable,
            Code::DeadlineExceeded,
            Code::ResourceExhausted,
            Code::Aborted,
            Code::Cancelled,
            Code::Unknown,
        ] {
            assert!(
                CallError::from(Status::new(code, "x")).is_retryable(),
                "{code:?}"
            );
        }
        for code in [
            Code::InvalidArgument,
            Code::NotFound,
            Code::AlreadyExists,
            Code::PermissionDenied,
            Code::Unauthenticated,
            Code::FailedPrecondition,
            Code::OutOfRange,
            Code::Unimplemented,
            Code::Internal,
            Code::DataLoss,
        ] {
            assert!(
                !CallError::from(Status::new(code, "x")).is_retryable(),
                "{code:?}"
            );
        }
    }

    #[test]
    fn a_wildcard_listen_address_is_called_on_loopback() {
        assert_eq!(
            own_url("0.0.0.0:50051".parse().expect("address")),
            "http://127.0.0.1:50051"
        );
        assert_eq!(
            own_url("[::]:50051".parse().expect("address")),
            "http://[::1]:50051"
        );
        assert_eq!(
            own_url("10.1.2.3:7000".parse().expect("address")),
            "http://10.1.2.3:7000"
        );
    }

    #[test]
    fn targets_are_read_from_the_services_settings() {
        let mut file = tempfile::Builder::new()
            .suffix(".toml")
            .tempfile()
            .expect("temp file");
        std::io::Write::write_all(
            &mut file,
            b"[services.tickets]\nurl = \"http://tickets.desk.svc:50051\"\n",
        )
        .expect("written");
        let settings = Settings::load(Some(file.path())).expect("loads");
        let calls = ServiceCalls::from_settings(&settings, "sla").expect("calls");
        assert_eq!(
            calls.targets.get("tickets").map(|e| e.uri().to_string()),
            Some("http://tickets.desk.svc:50051/".to_owned())
        );
    }

    #[test]
    fn only_plain_http_targets_are_accepted() {
        assert!(endpoint("http://tickets:50051").is_ok());
        assert!(endpoint("https://tickets:50051").is_err());
        assert!(endpoint("tickets:50051").is_err());
    }

    #[test]
    fn a_call_context_never_prints_the_token_it_forwards() {
        let mut request = tonic::Request::new(());
        request.metadata_mut().insert(
            "authorization",
            MetadataValue::from_static("Bearer secret.token.value"),
        );
        let printed = format!("{:?}", CallContext::from_incoming(&request));
        assert!(!printed.contains("secret"), "{printed}");
    }
}
