//! Streaming calls pass through the gateway as they stream, for a service the gateway knows only
//! by configuration: an upstream `desk.echo.v1.EchoService` that is in no proto of this build,
//! reachable because `services.echo.url` names it. Its one method is bidirectional: it answers
//! each message as it comes, and the client sends the next only once it has the answer, so a
//! proxy that held either direction until the end would never finish.

use std::{
    convert::Infallible,
    net::SocketAddr,
    pin::Pin,
    task::{Context, Poll},
};

use anyhow::Context as _;
use desk_testkit::NatsServer;
use futures::{Stream, StreamExt as _, future::BoxFuture};
use tokio::{net::TcpListener, sync::mpsc};
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tonic::{Request, Response, Status, Streaming, body::Body, server::NamedService};
use tonic_prost::ProstCodec;

use crate::support::{EVENTUALLY, TENANT, settings, token};

const CHAT: &str = "/desk.echo.v1.EchoService/Chat";

/// Answers each message (a protobuf `string`, as `google.protobuf.StringValue` has it) of the stream with it in upper case, as soon as it arrives.
struct Chat;

impl tonic::server::StreamingService<String> for Chat {
    type Response = String;
    type ResponseStream = Pin<Box<dyn Stream<Item = Result<String, Status>> + Send>>;
    type Future = BoxFuture<'static, Result<Response<Self::ResponseStream>, Status>>;

    fn call(&mut self, request: Request<Streaming<String>>) -> Self::Future {
        let answers = request
            .into_inner()
            .map(|message| message.map(|m| m.to_uppercase()));
        Box::pin(async move { Ok(Response::new(Box::pin(answers) as Self::ResponseStream)) })
    }
}

/// The echo service, written without generated code.
#[derive(Clone)]
struct EchoServer;

impl NamedService for EchoServer {
    const NAME: &'static str = "desk.echo.v1.EchoService";
}

impl tower::Service<http::Request<Body>> for EchoServer {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<http::Response<Body>, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        Box::pin(async move {
            if request.uri().path() != CHAT {
                return Ok(Status::unimplemented("only Chat").into_http());
            }
            let mut grpc = tonic::server::Grpc::new(ProstCodec::<String, String>::default());
            Ok(grpc.streaming(Chat, request).await)
        })
    }
}

async fn start_echo() -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(EchoServer)
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );
    Ok(addr)
}

#[tokio::test]
async fn a_bidirectional_stream_passes_through_as_it_streams() -> anyhow::Result<()> {
    // given an echo service the gateway knows only from its settings
    let nats = NatsServer::start().await?;
    let echo = start_echo().await?;
    let gateway = desk_gateway::local::start(settings("emea", &nats), &[("echo", echo)]).await?;

    // when a client opens the chat through the gateway and sends each line after the answer to
    // the one before
    let (outbound, to_send) = mpsc::channel::<String>(1);
    let mut request = Request::new(ReceiverStream::new(to_send));
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {}", token("ana", TENANT, &["agent"])).parse()?,
    );
    let mut client = tonic::client::Grpc::new(crate::support::channel(gateway.addr()));
    client.ready().await?;
    outbound.send("one".to_owned()).await?;
    let mut answers = client
        .streaming(
            request,
            http::uri::PathAndQuery::from_static(CHAT),
            ProstCodec::<String, String>::default(),
        )
        .await?
        .into_inner();
    let mut heard = Vec::new();
    for next in ["two", "three"] {
        let answer = tokio::time::timeout(EVENTUALLY, answers.message())
            .await
            .context("no answer while the request stream is still open")??
            .context("the answer stream ended early")?;
        heard.push(answer);
        outbound.send(next.to_owned()).await?;
    }
    drop(outbound);
    while let Some(answer) = tokio::time::timeout(EVENTUALLY, answers.message()).await?? {
        heard.push(answer);
    }

    // then every line came back, one by one
    assert_eq!(heard, ["ONE", "TWO", "THREE"]);
    Ok(())
}
