//! gRPC-Web by hand: frames built byte by byte and sent with curl over HTTP/1.1, as a browser's
//! grpc-web library sends them, in binary and text (base64) mode; and CORS.

use std::process::Stdio;

use anyhow::{Context as _, bail, ensure};
use base64::Engine as _;
use desk_proto::tickets::v1 as tickets_pb;
use desk_testkit::NatsServer;
use prost::Message as _;
use tokio::io::AsyncWriteExt as _;

use crate::support::{Region, agent, new_incident};

const PORTAL: &str = "https://portal.example.com";

/// Binary (`application/grpc-web+proto`) or text (`application/grpc-web-text`, base64).
#[derive(Clone, Copy, Debug)]
enum Mode {
    Binary,
    Text,
}

impl Mode {
    fn content_type(self) -> &'static str {
        match self {
            Mode::Binary => "application/grpc-web+proto",
            Mode::Text => "application/grpc-web-text",
        }
    }
}

/// What curl got back: the status line and headers as text, the body's bytes.
struct Answer {
    headers: String,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim().eq_ignore_ascii_case(name).then(|| value.trim())
        })
    }

    fn status_code(&self) -> Option<u16> {
        self.headers
            .lines()
            .rfind(|line| line.starts_with("HTTP/"))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    }
}

/// `curl` with `arguments`, `body` on its standard input.
async fn curl(arguments: &[&str], body: &[u8]) -> anyhow::Result<Answer> {
    let mut child = tokio::process::Command::new("curl")
        .args(["--silent", "--show-error", "--http1.1", "--max-time", "30"])
        .args(["--dump-header", "/dev/stderr", "--output", "-"])
        .args(arguments)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("running curl")?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(body).await?;
    }
    let output = child.wait_with_output().await?;
    ensure!(
        output.status.success(),
        "curl failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(Answer {
        headers: String::from_utf8_lossy(&output.stderr).into_owned(),
        body: output.stdout,
    })
}

/// One gRPC-Web call of `method` on the tickets service, as a browser page at `PORTAL` makes it.
async fn grpc_web_call(
    region: &Region,
    mode: Mode,
    method: &str,
    message: &impl prost::Message,
) -> anyhow::Result<(Answer, Vec<u8>, String)> {
    let mut framed = vec![0u8];
    framed.extend_from_slice(&u32::try_from(message.encoded_len())?.to_be_bytes());
    framed.extend_from_slice(&message.encode_to_vec());
    let body = match mode {
        Mode::Binary => framed,
        Mode::Text => base64::engine::general_purpose::STANDARD
            .encode(&framed)
            .into_bytes(),
    };
    let url = format!(
        "{}/desk.tickets.v1.TicketService/{method}",
        region.gateway.url()
    );
    let authorization = format!("authorization: Bearer {}", agent());
    let content_type = format!("content-type: {}", mode.content_type());
    // What a browser's grpc-web library asks for: answers in the same mode.
    let accept = format!("accept: {}", mode.content_type());
    let origin = format!("origin: {PORTAL}");
    let answer = curl(
        &[
            "-X",
            "POST",
            "-H",
            &content_type,
            "-H",
            &accept,
            "-H",
            "x-grpc-web: 1",
            "-H",
            &authorization,
            "-H",
            &origin,
            "--data-binary",
            "@-",
            &url,
        ],
        &body,
    )
    .await?;
    let frames = match mode {
        Mode::Binary => answer.body.clone(),
        Mode::Text => decode_base64_segments(&answer.body)?,
    };
    let (message, trailers) = split_response(&frames)?;
    Ok((answer, message, trailers))
}

/// A text-mode answer is base64 written frame by frame, each segment padded on its own: decode
/// it four characters at a time.
fn decode_base64_segments(text: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    for quantum in text
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect::<Vec<_>>()
        .chunks(4)
    {
        bytes.extend(base64::engine::general_purpose::STANDARD.decode(quantum)?);
    }
    Ok(bytes)
}

/// The message frames (flag 0) joined, and the trailer frame (flag 0x80) as text.
fn split_response(mut frames: &[u8]) -> anyhow::Result<(Vec<u8>, String)> {
    let mut message = Vec::new();
    let mut trailers = String::new();
    while !frames.is_empty() {
        ensure!(frames.len() >= 5, "a truncated frame prefix");
        let flag = frames[0];
        let length = usize::try_from(u32::from_be_bytes([
            frames[1], frames[2], frames[3], frames[4],
        ]))?;
        let payload = frames.get(5..5 + length).context("a truncated frame")?;
        match flag {
            0 => message.extend_from_slice(payload),
            0x80 => trailers.push_str(&String::from_utf8_lossy(payload)),
            other => bail!("unexpected frame flag {other:#x}"),
        }
        frames = &frames[5 + length..];
    }
    Ok((message, trailers))
}

async fn create_and_read_back(mode: Mode) -> anyhow::Result<()> {
    // given a region whose gateway lets the portal's pages call
    let nats = NatsServer::start().await?;
    let region = Region::start("emea", &nats, |settings| {
        settings.gateway.cors_origins = vec![PORTAL.to_owned()];
    })
    .await?;

    // when the page creates a ticket, then reads it back, with gRPC-Web frames
    let title = format!("created with grpc-web ({mode:?})");
    let (answer, message, trailers) =
        grpc_web_call(&region, mode, "CreateTicket", &new_incident(&title)).await?;
    ensure!(
        trailers.contains("grpc-status:0"),
        "create failed: {trailers} {}",
        answer.headers
    );
    let created = tickets_pb::CreateTicketResponse::decode(message.as_slice())?
        .ticket
        .context("no ticket in the answer")?;
    let (answer, message, trailers) = grpc_web_call(
        &region,
        mode,
        "GetTicket",
        &tickets_pb::GetTicketRequest {
            id: created.id.clone(),
        },
    )
    .await?;

    // then the ticket comes back, in the page's mode, readable by the page
    ensure!(
        trailers.contains("grpc-status:0"),
        "read failed: {trailers}"
    );
    let read = tickets_pb::GetTicketResponse::decode(message.as_slice())?
        .ticket
        .context("no ticket in the answer")?;
    assert_eq!((read.id, read.title), (created.id, title));
    assert_eq!(answer.status_code(), Some(200));
    assert!(
        answer
            .header("content-type")
            .is_some_and(|c| c.starts_with(mode.content_type())),
        "{}",
        answer.headers
    );
    assert_eq!(answer.header("access-control-allow-origin"), Some(PORTAL));
    Ok(())
}

#[tokio::test]
async fn a_grpc_web_call_made_with_curl_creates_and_reads_a_ticket() -> anyhow::Result<()> {
    create_and_read_back(Mode::Binary).await
}

#[tokio::test]
async fn grpc_web_text_creates_and_reads_a_ticket_too() -> anyhow::Result<()> {
    create_and_read_back(Mode::Text).await
}

#[tokio::test]
async fn a_preflight_from_a_listed_origin_is_answered_and_other_origins_are_refused()
-> anyhow::Result<()> {
    // given a gateway that lets the portal's pages call
    let nats = NatsServer::start().await?;
    let region = Region::start("emea", &nats, |settings| {
        settings.gateway.cors_origins = vec![PORTAL.to_owned()];
    })
    .await?;
    let url = format!(
        "{}/desk.tickets.v1.TicketService/CreateTicket",
        region.gateway.url()
    );
    let preflight = |origin: &'static str| {
        let url = url.clone();
        async move {
            let origin = format!("origin: {origin}");
            curl(
                &[
                    "-X",
                    "OPTIONS",
                    "-H",
                    &origin,
                    "-H",
                    "access-control-request-method: POST",
                    "-H",
                    "access-control-request-headers: authorization,content-type,x-grpc-web",
                    &url,
                ],
                b"",
            )
            .await
        }
    };

    // when the portal's browser asks, and another site's
    let allowed = preflight(PORTAL).await?;
    let refused = preflight("https://evil.example.com").await?;

    // then the portal may send its gRPC-Web calls, and the other site may not
    assert_eq!(allowed.status_code(), Some(204), "{}", allowed.headers);
    assert_eq!(allowed.header("access-control-allow-origin"), Some(PORTAL));
    let allowed_headers = allowed
        .header("access-control-allow-headers")
        .unwrap_or_default();
    for header in ["authorization", "content-type", "x-grpc-web"] {
        assert!(allowed_headers.contains(header), "{allowed_headers}");
    }
    assert_eq!(refused.status_code(), Some(403), "{}", refused.headers);
    assert_eq!(refused.header("access-control-allow-origin"), None);
    Ok(())
}
