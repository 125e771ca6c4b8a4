//! The whole desk on loopback for the security suite: every public service in a process of its
//! own (its own SQLite file, one nats-server), and a gateway forwarding to all of them, so each
//! check can be made through the gateway and directly at the owning service.
//!
//! The services trust the development secret and, as the IdP's keys, the kit's *rotated* test
//! key (`jwks-rotated.json`): the key it replaced (`test-ed25519`) is the rotated-out key whose
//! tokens must be refused.

use std::{collections::BTreeMap, net::SocketAddr, str::FromStr as _};

use anyhow::{Context as _, bail};
use bytes::{Buf as _, BufMut as _, Bytes};
use desk_gateway::local::LocalGateway;
use desk_kit::ServiceEntry;
use desk_testkit::NatsServer;
use prost::Message as _;
use tonic::{
    Code, Status,
    codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder},
    transport::Channel,
};

use crate::support::{Process, channel, settings};

/// The desk's public services: `(settings name, entry)`. A new service adds its line here.
pub const SERVICES: &[(&str, ServiceEntry)] = &[
    ("tickets", desk_tickets::ENTRY),
    ("cmdb", desk_cmdb::ENTRY),
    ("directory", desk_directory::ENTRY),
    ("change", desk_change::ENTRY),
    ("sla", desk_sla::ENTRY),
    ("notifications", desk_notifications::ENTRY),
    ("catalog", desk_catalog::ENTRY),
];

pub const KIT_TESTDATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../kit/testdata");

/// One RPC of a public service, as the descriptor set declares it.
#[derive(Debug, Clone)]
pub struct Method {
    /// `tickets` in `desk.tickets.v1`: the settings name of the owning service.
    pub area: String,
    /// `desk.tickets.v1.TicketService`.
    pub service: String,
    /// `GetTicket`.
    pub name: String,
}

impl Method {
    /// `/desk.tickets.v1.TicketService/GetTicket`.
    pub fn path(&self) -> String {
        format!("/{}/{}", self.service, self.name)
    }
}

/// Every RPC of every public service (`desk.<area>.v1.*Service`) in `desk_proto`'s descriptor set.
pub fn public_methods() -> anyhow::Result<Vec<Method>> {
    let set = prost_types::FileDescriptorSet::decode(desk_proto::FILE_DESCRIPTOR_SET)?;
    let mut methods = Vec::new();
    for file in &set.file {
        let package = file.package();
        let Some(area) = package
            .strip_prefix("desk.")
            .and_then(|rest| rest.strip_suffix(".v1"))
        else {
            continue;
        };
        for service in &file.service {
            if !service.name().ends_with("Service") {
                continue;
            }
            for method in &service.method {
                methods.push(Method {
                    area: area.to_owned(),
                    service: format!("{package}.{}", service.name()),
                    name: method.name().to_owned(),
                });
            }
        }
    }
    Ok(methods)
}

/// The running desk.
pub struct Desk {
    pub processes: BTreeMap<&'static str, Process>,
    pub gateway: LocalGateway,
    _nats: NatsServer,
}

impl Desk {
    pub async fn start() -> anyhow::Result<Desk> {
        let nats = NatsServer::start().await?;
        let configure = |settings: &mut desk_kit::settings::Settings| {
            settings.auth.jwks_file = Some(format!("{KIT_TESTDATA}/jwks-rotated.json").into());
            // No rate limit may stand in for an authorization answer.
            for class in [
                &mut settings.gateway.limits.reads,
                &mut settings.gateway.limits.writes,
                &mut settings.gateway.limits.searches,
                &mut settings.gateway.limits.imports,
            ] {
                class.tenant_per_minute = 1_000_000;
                class.tenant_burst = 1_000_000;
                class.person_per_minute = 1_000_000;
                class.person_burst = 1_000_000;
            }
        };
        let mut processes = BTreeMap::new();
        let mut upstreams = Vec::new();
        for (name, entry) in SERVICES {
            let mut process_settings = settings("test", &nats);
            configure(&mut process_settings);
            let process = Process::start(*entry, process_settings)
                .await
                .with_context(|| format!("starting {name}"))?;
            upstreams.push((*name, process.addr));
            processes.insert(*name, process);
        }
        let mut gateway_settings = settings("test", &nats);
        configure(&mut gateway_settings);
        let gateway = desk_gateway::local::start(gateway_settings, &upstreams)
            .await
            .context("starting the gateway")?;
        Ok(Desk {
            processes,
            gateway,
            _nats: nats,
        })
    }

    pub fn gateway_channel(&self) -> Channel {
        channel(self.gateway.addr())
    }

    /// The process serving `method` itself (no gateway in between).
    pub fn direct_addr(&self, method: &Method) -> anyhow::Result<SocketAddr> {
        match self.processes.get(method.area.as_str()) {
            Some(process) => Ok(process.addr),
            None => bail!(
                "{} belongs to `{}`, which the security suite does not start: add it to SERVICES in tests/security/desk.rs",
                method.path(),
                method.area
            ),
        }
    }
}

/// What a raw call answered: its status code and message (`Ok` for a response).
#[derive(Debug, Clone)]
pub struct Answer {
    pub code: Code,
    pub message: String,
    /// The response message in wire format (empty unless `Ok`).
    pub body: Bytes,
}

/// Calls `path` with `body` as the request message, in wire format, with `authorization` as it
/// is given (`None`: no header). Bounded by a deadline, so no answer is an answer too.
pub async fn call(
    channel: Channel,
    path: &str,
    body: Bytes,
    authorization: Option<&str>,
) -> anyhow::Result<Answer> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.context("connecting")?;
    let mut request = tonic::Request::new(body);
    request.set_timeout(std::time::Duration::from_secs(10));
    if let Some(value) = authorization {
        request.metadata_mut().insert(
            "authorization",
            value.parse().context("an ASCII authorization header")?,
        );
    }
    let path = http::uri::PathAndQuery::from_str(path)?;
    // Called as a server stream, so one client serves unary and streaming methods alike: a
    // unary answer is a stream of one message, and a streaming method that admitted the call
    // has answered its headers even while it has nothing to send yet (the notifications feed),
    // where a unary read would wait out the deadline.
    let mut stream = match grpc.server_streaming(request, path, RawCodec).await {
        Ok(response) => response.into_inner(),
        Err(status) => return Ok(answer_of(&status)),
    };
    Ok(
        match tokio::time::timeout(STREAM_FIRST_MESSAGE, stream.message()).await {
            Ok(Ok(message)) => Answer {
                code: Code::Ok,
                message: String::new(),
                body: message.unwrap_or_default(),
            },
            Ok(Err(status)) => answer_of(&status),
            // Admitted, and nothing to say yet: an open stream.
            Err(_) => Answer {
                code: Code::Ok,
                message: String::new(),
                body: Bytes::new(),
            },
        },
    )
}

/// How long an admitted call may take to send its first message before it counts as an open
/// stream with nothing to send yet (a unary answer comes with its headers).
const STREAM_FIRST_MESSAGE: std::time::Duration = std::time::Duration::from_secs(1);

fn answer_of(status: &Status) -> Answer {
    Answer {
        code: status.code(),
        message: status.message().to_owned(),
        body: Bytes::new(),
    }
}

/// Messages as bytes in wire format, unparsed: what lets one client call every method with
/// any bytes at all.
#[derive(Debug, Clone, Copy, Default)]
pub struct RawCodec;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, buffer: &mut EncodeBuf<'_>) -> Result<(), Status> {
        buffer.put(item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, buffer: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        Ok(Some(buffer.copy_to_bytes(buffer.remaining())))
    }
}
