//! One service calling another (ARCHITECTURE §7, §12) through real gRPC servers on 127.0.0.1:0:
//! a "front" service that calls a "back" service through [`ServiceCalls`], the back recording
//! what each call brought (its metadata, the verified caller) or answering with the status it is
//! told to. Both speak the gRPC health protocol, the smallest service tonic ships.

use std::{
    net::SocketAddr,
    pin::Pin,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::{Context as _, ensure};
use desk_kit::{
    auth::{AuthInterceptor, Caller, Verifier, caller, dev_claims, mint_dev_token},
    calls::{CallContext, CallError, ServiceCalls, parse_grpc_timeout},
    settings::{AuthSettings, Secret, ServiceAddress, Settings},
};
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::{
    Code, Request, Response, Status,
    metadata::{MetadataMap, MetadataValue},
    service::{RoutesBuilder, interceptor::InterceptedService},
    transport::{Channel, Endpoint},
};
use tonic_health::pb::{
    HealthCheckRequest, HealthCheckResponse,
    health_check_response::ServingStatus,
    health_client::HealthClient,
    health_server::{Health, HealthServer},
};

const SECRET: &str = "a-development-secret-of-32-bytes!!";
const CHECK: &str = "/grpc.health.v1.Health/Check";
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CLIENT_SPAN_ID: &str = "00f067aa0ba902b7";

fn settings() -> Settings {
    let mut settings = Settings::defaults();
    settings.auth.dev_hs256_secret = Some(Secret::new(SECRET.into()));
    settings
}

fn verifier(auth: &AuthSettings) -> anyhow::Result<Arc<Verifier>> {
    Ok(Arc::new(Verifier::from_settings(auth)?))
}

fn user_token(auth: &AuthSettings, subject: &str) -> anyhow::Result<String> {
    mint_dev_token(SECRET, &dev_claims(auth, subject, "acme", &["agent"], 300))
}

/// What the back service saw of one call.
#[derive(Debug, Clone)]
struct Seen {
    metadata: MetadataMap,
    caller: Option<Caller>,
}

impl Seen {
    fn header(&self, name: &str) -> Option<String> {
        self.metadata
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }

    fn timeout(&self) -> anyhow::Result<Duration> {
        let header = self.header("grpc-timeout").context("no grpc-timeout")?;
        parse_grpc_timeout(&header).with_context(|| format!("grpc-timeout {header:?}"))
    }
}

/// The back service: records each Check; `service` = `fail:<code>` answers that code, `hang`
/// never answers.
#[derive(Clone, Default)]
struct Back {
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Back {
    fn last(&self) -> anyhow::Result<Seen> {
        self.seen
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned"))?
            .last()
            .cloned()
            .context("the back service saw no call")
    }
}

type WatchStream =
    Pin<Box<dyn tokio_stream::Stream<Item = Result<HealthCheckResponse, Status>> + Send>>;

fn serving() -> Response<HealthCheckResponse> {
    Response::new(HealthCheckResponse {
        status: ServingStatus::Serving as i32,
    })
}

#[tonic::async_trait]
impl Health for Back {
    async fn check(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        if let Ok(mut seen) = self.seen.lock() {
            seen.push(Seen {
                metadata: request.metadata().clone(),
                caller: caller(&request).ok(),
            });
        }
        let told = request.into_inner().service;
        if let Some(code) = told.strip_prefix("fail:") {
            let code = code
                .parse::<i32>()
                .map_err(|_| Status::internal("bad code"))?;
            return Err(Status::new(Code::from(code), "told to fail"));
        }
        if told == "hang" {
            std::future::pending::<()>().await;
        }
        Ok(serving())
    }

    type WatchStream = WatchStream;

    async fn watch(
        &self,
        _request: Request<HealthCheckRequest>,
    ) -> Result<Response<WatchStream>, Status> {
        Ok(Response::new(Box::pin(tokio_stream::empty())))
    }
}

/// The front service: each Check calls the back service's Check for the user who called it.
struct Front {
    calls: Arc<ServiceCalls>,
}

#[tonic::async_trait]
impl Health for Front {
    async fn check(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        let context = CallContext::from_incoming(&request);
        let channel = self.calls.channel("back").map_err(CallError::into_status)?;
        let outgoing = self
            .calls
            .request(&context, request.into_inner())
            .map_err(CallError::into_status)?;
        HealthClient::new(channel).check(outgoing).await
    }

    type WatchStream = WatchStream;

    async fn watch(
        &self,
        _request: Request<HealthCheckRequest>,
    ) -> Result<Response<WatchStream>, Status> {
        Err(Status::unimplemented("not here"))
    }
}

/// Serves `routes` on a fresh loopback port, with the request spans `desk` serves with.
async fn serve(routes: RoutesBuilder) -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let server = tonic::transport::Server::builder()
        .trace_fn(desk_kit::telemetry::grpc_request_span)
        .add_routes(routes.routes())
        .serve_with_incoming(TcpListenerStream::new(listener));
    tokio::spawn(async move {
        if let Err(error) = server.await {
            tracing::error!(error = %error, "test server stopped");
        }
    });
    Ok(address)
}

/// The back service behind the kit's auth, Check open to services.
async fn serve_back(auth: &AuthSettings, back: Back) -> anyhow::Result<SocketAddr> {
    let mut routes = RoutesBuilder::default();
    routes.add_service(
        AuthInterceptor::new(verifier(auth)?)
            .open_to_services(&[CHECK])
            .wrap(HealthServer::new(back)),
    );
    serve(routes).await
}

/// Calls of a service named `sla` whose `back` target is `address`.
fn calls_to(settings: &Settings, address: SocketAddr) -> anyhow::Result<ServiceCalls> {
    let mut settings = settings.clone();
    settings.services.insert(
        "back".into(),
        ServiceAddress {
            url: format!("http://{address}"),
        },
    );
    ServiceCalls::from_settings(&settings, "sla")
}

/// A front service calling `back_address`, behind the kit's auth, and a client of it.
async fn front_to(
    settings: &Settings,
    back_address: SocketAddr,
    default_timeout: Option<Duration>,
) -> anyhow::Result<HealthClient<Channel>> {
    let mut calls = calls_to(settings, back_address)?;
    if let Some(timeout) = default_timeout {
        calls = calls.with_default_timeout(timeout);
    }
    let mut routes = RoutesBuilder::default();
    routes.add_service(
        AuthInterceptor::new(verifier(&settings.auth)?).wrap(HealthServer::new(Front {
            calls: Arc::new(calls),
        })),
    );
    connect(serve(routes).await?).await
}

async fn connect(address: SocketAddr) -> anyhow::Result<HealthClient<Channel>> {
    let channel = Endpoint::from_shared(format!("http://{address}"))?
        .connect()
        .await?;
    Ok(HealthClient::new(channel))
}

fn check_as(token: &str, timeout: Option<Duration>) -> anyhow::Result<Request<HealthCheckRequest>> {
    let mut request = Request::new(HealthCheckRequest::default());
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse()?);
    request.metadata_mut().insert(
        "traceparent",
        MetadataValue::try_from(format!("00-{TRACE_ID}-{CLIENT_SPAN_ID}-01"))?,
    );
    if let Some(timeout) = timeout {
        request.set_timeout(timeout);
    }
    Ok(request)
}

/// `(trace id, parent span id)` of a `traceparent`.
fn trace_of(traceparent: &str) -> anyhow::Result<(String, String)> {
    let parts: Vec<&str> = traceparent.split('-').collect();
    ensure!(parts.len() == 4, "traceparent {traceparent:?}");
    Ok((parts[1].to_owned(), parts[2].to_owned()))
}

#[tokio::test]
async fn a_call_for_a_user_carries_their_token_their_trace_and_what_is_left_of_their_deadline()
-> anyhow::Result<()> {
    // given a front service that calls a back service for whoever calls it
    let settings = settings();
    let back = Back::default();
    let back_address = serve_back(&settings.auth, back.clone()).await?;
    let mut front = front_to(&settings, back_address, None).await?;

    // when ana calls the front with 5 s to spare and a trace of her own
    let token = user_token(&settings.auth, "ana")?;
    front
        .check(check_as(&token, Some(Duration::from_secs(5)))?)
        .await?;

    // then the back saw ana's own token, and ana as the caller
    let seen = back.last()?;
    assert_eq!(
        seen.header("authorization"),
        Some(format!("Bearer {token}"))
    );
    let caller = seen.caller.clone().context("no caller")?;
    assert_eq!(
        (caller.subject.as_str(), caller.is_service()),
        ("ana", false)
    );
    // and the same trace (this test records no spans: the incoming traceparent is passed on)
    let traceparent = seen.header("traceparent").context("no traceparent")?;
    assert_eq!(trace_of(&traceparent)?.0, TRACE_ID);
    // and no more time than ana had left
    let timeout = seen.timeout()?;
    assert!(
        timeout > Duration::ZERO && timeout <= Duration::from_secs(5),
        "grpc-timeout {timeout:?}"
    );
    Ok(())
}

#[tokio::test]
async fn the_callees_span_is_a_child_of_the_callers_when_spans_are_recorded() -> anyhow::Result<()>
{
    use opentelemetry::trace::TracerProvider as _;
    use tracing_subscriber::layer::SubscriberExt as _;

    // given this thread records spans (the servers run on this test's one thread)
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
    // With a single dispatcher registered, tracing decides a callsite's interest by the default
    // of whichever thread reaches it first, so another test's thread (recording nothing) would
    // switch the request span off for this one too; a second, silent dispatcher prevents that.
    let _second_dispatcher = tracing::Dispatch::new(tracing::subscriber::NoSubscriber::default());
    let _recording = tracing::subscriber::set_default(subscriber);
    let settings = settings();
    let back = Back::default();
    let back_address = serve_back(&settings.auth, back.clone()).await?;
    let mut front = front_to(&settings, back_address, None).await?;

    // when a client calls the front within its trace
    front
        .check(check_as(&user_token(&settings.auth, "ana")?, None)?)
        .await?;

    // then the back's parent is the front's own span in the client's trace
    let traceparent = back
        .last()?
        .header("traceparent")
        .context("no traceparent")?;
    let (trace_id, parent) = trace_of(&traceparent)?;
    assert_eq!(trace_id, TRACE_ID);
    assert_ne!(parent, CLIENT_SPAN_ID, "the front's span was skipped");
    Ok(())
}

#[tokio::test]
async fn a_callers_deadline_is_capped_by_the_default_and_a_call_without_one_gets_the_default()
-> anyhow::Result<()> {
    // given a front whose calls take at most 2 s
    let settings = settings();
    let back = Back::default();
    let back_address = serve_back(&settings.auth, back.clone()).await?;
    let mut front = front_to(&settings, back_address, Some(Duration::from_secs(2))).await?;
    let token = user_token(&settings.auth, "ana")?;

    // when a caller allows a minute, the back gets at most the 2 s
    front
        .check(check_as(&token, Some(Duration::from_secs(60)))?)
        .await?;
    let capped = back.last()?.timeout()?;
    assert!(capped <= Duration::from_secs(2), "grpc-timeout {capped:?}");

    // and a caller without a deadline gives the back exactly the default
    front.check(check_as(&token, None)?).await?;
    assert_eq!(back.last()?.timeout()?, Duration::from_secs(2));
    Ok(())
}

#[tokio::test]
async fn a_service_token_reaches_a_method_open_to_services_and_no_other() -> anyhow::Result<()> {
    // given a back service whose Check is open to services and whose Watch is not
    let settings = settings();
    let back = Back::default();
    let back_address = serve_back(&settings.auth, back.clone()).await?;
    let calls = calls_to(&settings, back_address)?;
    let mut client = HealthClient::new(calls.channel("back")?);
    let work_of_acme = CallContext::as_service("acme");

    // when the sla service checks for work of acme, that no user started
    client
        .check(calls.request(&work_of_acme, HealthCheckRequest::default())?)
        .await?;

    // then the back sees the sla service, for acme, as a service
    let seen = back.last()?;
    let caller = seen.caller.clone().context("no caller")?;
    assert!(caller.is_service());
    assert_eq!(
        (caller.subject.as_str(), caller.tenant.as_str()),
        ("sla", "acme")
    );
    // and the timeout is the default, as no one waits with a deadline of their own
    assert_eq!(seen.timeout()?, desk_kit::calls::DEFAULT_CALL_TIMEOUT);

    // and Watch, not open to services, refuses the same token before the service sees it
    let refused = client
        .watch(calls.request(&work_of_acme, HealthCheckRequest::default())?)
        .await
        .map(|_| ())
        .map_err(CallError::from);
    assert!(
        matches!(&refused, Err(CallError::Permanent(s)) if s.code() == Code::PermissionDenied),
        "{refused:?}"
    );
    // while a user's token is welcome there
    let mut as_ana = Request::new(HealthCheckRequest::default());
    as_ana.metadata_mut().insert(
        "authorization",
        format!("Bearer {}", user_token(&settings.auth, "ana")?).parse()?,
    );
    client.watch(as_ana).await?;
    Ok(())
}

#[tokio::test]
async fn the_plain_interceptor_refuses_service_tokens_on_every_method() -> anyhow::Result<()> {
    // given a service behind the interceptor form, which is not told the method
    let settings = settings();
    let back = Back::default();
    let mut routes = RoutesBuilder::default();
    routes.add_service(InterceptedService::new(
        HealthServer::new(back.clone()),
        AuthInterceptor::new(verifier(&settings.auth)?).open_to_services(&[CHECK]),
    ));
    let address = serve(routes).await?;
    let calls = calls_to(&settings, address)?;
    let mut client = HealthClient::new(calls.channel("back")?);

    // when a service token calls Check
    let refused = client
        .check(calls.request(
            &CallContext::as_service("acme"),
            HealthCheckRequest::default(),
        )?)
        .await;

    // then it is refused and the service never ran
    assert_eq!(
        refused.map(|_| ()).map_err(|s| s.code()),
        Err(Code::PermissionDenied)
    );
    assert!(back.last().is_err(), "the handler ran for a service token");
    Ok(())
}

#[tokio::test]
async fn a_call_without_any_token_is_unauthenticated() -> anyhow::Result<()> {
    let settings = settings();
    let back_address = serve_back(&settings.auth, Back::default()).await?;
    let mut client = connect(back_address).await?;
    let refused = client.check(HealthCheckRequest::default()).await;
    assert_eq!(
        refused.map(|_| ()).map_err(|s| s.code()),
        Err(Code::Unauthenticated)
    );
    Ok(())
}

#[tokio::test]
async fn the_callees_status_decides_between_retry_and_failure() -> anyhow::Result<()> {
    // given a back service that answers with the code it is told
    let settings = settings();
    let back_address = serve_back(&settings.auth, Back::default()).await?;
    let calls = calls_to(&settings, back_address)?;
    let mut client = HealthClient::new(calls.channel("back")?);
    let context = CallContext::as_service("acme");

    for (code, retryable) in [
        (Code::Unavailable, true),
        (Code::ResourceExhausted, true),
        (Code::Aborted, true),
        (Code::NotFound, false),
        (Code::InvalidArgument, false),
        (Code::FailedPrecondition, false),
        (Code::Internal, false),
    ] {
        // when it fails with that code
        let told = HealthCheckRequest {
            service: format!("fail:{}", code as i32),
        };
        let error = client
            .check(calls.request(&context, told)?)
            .await
            .map(|_| ())
            .map_err(CallError::from);

        // then the caller knows whether to retry, and keeps the callee's status
        match error {
            Err(error) => {
                assert_eq!(error.is_retryable(), retryable, "{code:?}: {error}");
                assert_eq!(error.status().code(), code);
            }
            Ok(()) => anyhow::bail!("{code:?}: the call succeeded"),
        }
    }

    // and a callee that does not answer within the deadline is worth a retry
    let short =
        CallContext::as_service("acme").with_deadline(Instant::now() + Duration::from_millis(200));
    let hung = client
        .check(calls.request(
            &short,
            HealthCheckRequest {
                service: "hang".into(),
            },
        )?)
        .await
        .map(|_| ())
        .map_err(CallError::from);
    assert!(matches!(&hung, Err(e) if e.is_retryable()), "{hung:?}");

    // and a deadline that has passed is not even sent
    let passed = calls.request(
        &CallContext::as_service("acme").with_deadline(Instant::now()),
        HealthCheckRequest::default(),
    );
    assert!(
        matches!(&passed, Err(CallError::Retryable(s)) if s.code() == Code::DeadlineExceeded),
        "{passed:?}"
    );
    Ok(())
}

#[tokio::test]
async fn a_service_that_is_not_listening_is_retryable() -> anyhow::Result<()> {
    // given an address nothing listens on any more
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    drop(listener);
    let settings = settings();
    let calls = calls_to(&settings, address)?;

    // when a call goes there
    let error = HealthClient::new(calls.channel("back")?)
        .check(calls.request(
            &CallContext::as_service("acme"),
            HealthCheckRequest::default(),
        )?)
        .await
        .map(|_| ())
        .map_err(CallError::from);

    // then it is UNAVAILABLE, to retry
    assert!(
        matches!(&error, Err(CallError::Retryable(s)) if s.code() == Code::Unavailable),
        "{error:?}"
    );
    Ok(())
}

#[tokio::test]
async fn a_service_with_no_address_of_its_own_is_called_at_this_process() -> anyhow::Result<()> {
    // given a process serving on one address and no `services.<name>.url` (monolithic mode)
    let mut settings = settings();
    let back = Back::default();
    settings.grpc.listen = serve_back(&settings.auth, back.clone()).await?;
    let calls = ServiceCalls::from_settings(&settings, "sla")?;

    // when it calls the tickets service
    HealthClient::new(calls.channel("tickets")?)
        .check(calls.request(
            &CallContext::as_service("acme"),
            HealthCheckRequest::default(),
        )?)
        .await?;

    // then the call went to its own address
    assert_eq!(back.last()?.caller.map(|c| c.subject), Some("sla".into()));
    Ok(())
}

#[tokio::test]
async fn without_a_signing_key_a_service_call_fails_before_it_is_sent() -> anyhow::Result<()> {
    let mut settings = settings();
    settings.auth.dev_hs256_secret = None;
    let calls = ServiceCalls::from_settings(&settings, "sla")?;
    let refused = calls.request(
        &CallContext::as_service("acme"),
        HealthCheckRequest::default(),
    );
    assert!(
        matches!(&refused, Err(CallError::Permanent(s)) if s.code() == Code::Unauthenticated),
        "{refused:?}"
    );
    Ok(())
}
