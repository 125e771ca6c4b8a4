//! The wires: SMTP through lettre (plain, STARTTLS or TLS, with auth, as the URL says), webhooks
//! and SMS over HTTP/1.1 through hyper. For webhooks the service resolves the host itself, checks
//! every address against the SSRF ranges, and connects to an address it checked — so a name that
//! changes its answer between check and connect (DNS rebinding) cannot slip through, and IP
//! literals are checked like names.

use std::{net::SocketAddr, sync::Arc, time::Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor, message::MultiPart};
use tokio::net::TcpStream;

use crate::domain::webhook::{self, Target};

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub ok: bool,
    /// HTTP status or SMTP reply code; 0 when no answer came.
    pub code: i32,
    pub latency_ms: i64,
    pub error: String,
    /// False when retrying cannot help (a refused address, a malformed message).
    pub retryable: bool,
}

impl Outcome {
    fn failed(started: Instant, code: i32, error: impl Into<String>, retryable: bool) -> Self {
        Self {
            ok: false,
            code,
            latency_ms: started.elapsed().as_millis() as i64,
            error: error.into(),
            retryable,
        }
    }
}

pub struct Mailer {
    transport: Option<AsyncSmtpTransport<Tokio1Executor>>,
    from: String,
}

/// One e-mail as the payload holds it.
pub struct Mail<'a> {
    pub to: &'a str,
    pub subject: &'a str,
    pub text: &'a str,
    pub html: &'a str,
    pub message_id: &'a str,
    pub in_reply_to: Option<&'a str>,
    pub references: Option<&'a str>,
}

impl Mailer {
    /// From a lettre SMTP URL; an empty one means no relay (e-mail waits and is retried).
    pub fn new(url: &str, from: &str) -> anyhow::Result<Mailer> {
        let transport = if url.is_empty() {
            None
        } else {
            Some(AsyncSmtpTransport::<Tokio1Executor>::from_url(url)?.build())
        };
        Ok(Mailer {
            transport,
            from: from.to_owned(),
        })
    }

    pub async fn send(&self, mail: Mail<'_>) -> Outcome {
        let started = Instant::now();
        let Some(transport) = &self.transport else {
            return Outcome::failed(started, 0, "no SMTP relay is configured", true);
        };
        let (Ok(from), Ok(to)) = (self.from.parse(), mail.to.parse()) else {
            return Outcome::failed(started, 0, "an address does not parse", false);
        };
        let mut builder = Message::builder()
            .from(from)
            .to(to)
            .subject(mail.subject)
            .message_id(Some(mail.message_id.to_owned()));
        if let Some(r) = mail.in_reply_to {
            builder = builder.in_reply_to(r.to_owned());
        }
        if let Some(r) = mail.references {
            builder = builder.references(r.to_owned());
        }
        let message = match builder.multipart(MultiPart::alternative_plain_html(
            mail.text.to_owned(),
            mail.html.to_owned(),
        )) {
            Ok(m) => m,
            Err(e) => return Outcome::failed(started, 0, e.to_string(), false),
        };
        match transport.send(message).await {
            Ok(response) => Outcome {
                ok: true,
                code: i32::from(u16::from(response.code())),
                latency_ms: started.elapsed().as_millis() as i64,
                error: String::new(),
                retryable: false,
            },
            Err(e) => {
                let code = e.status().map(|c| i32::from(u16::from(c))).unwrap_or(0);
                Outcome::failed(started, code, e.to_string(), !e.is_permanent())
            }
        }
    }
}

/// Outbound HTTP for webhooks and SMS.
pub struct Http {
    tls: tokio_rustls::TlsConnector,
}

impl Http {
    /// Checks certificates against the Mozilla roots (webpki-roots), so the image needs no CA
    /// bundle; ring is the one crypto provider of the workspace.
    pub fn new() -> anyhow::Result<Http> {
        let roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Http {
            tls: tokio_rustls::TlsConnector::from(Arc::new(config)),
        })
    }

    /// The addresses `target` may be connected to: resolved now, every one checked unless the
    /// tenant allows private ones. An error names why none may.
    pub async fn resolve(target: &Target, allow_private: bool) -> Result<Vec<SocketAddr>, String> {
        let addrs: Vec<SocketAddr> = match target.literal {
            Some(ip) => vec![SocketAddr::new(ip, target.port)],
            None => tokio::net::lookup_host((target.host.as_str(), target.port))
                .await
                .map_err(|e| format!("{} does not resolve: {e}", target.host))?
                .collect(),
        };
        if addrs.is_empty() {
            return Err(format!("{} does not resolve", target.host));
        }
        let forbidden = addrs
            .iter()
            .find_map(|a| webhook::classify(a.ip()).map(|w| (a, w)));
        if let (false, Some((addr, why))) = (allow_private, forbidden) {
            return Err(format!(
                "{} resolves to {} ({})",
                target.host,
                addr.ip(),
                why.as_str()
            ));
        }
        Ok(addrs)
    }

    /// POSTs `body` with `headers` to `url`.
    pub async fn post(
        &self,
        url: &str,
        headers: &[(&str, String)],
        body: String,
        allow_private: bool,
    ) -> Outcome {
        let started = Instant::now();
        let target = match webhook::parse_url(url) {
            Ok(t) => t,
            Err(e) => return Outcome::failed(started, 0, format!("the URL {e}"), false),
        };
        let addrs = match Self::resolve(&target, allow_private).await {
            Ok(a) => a,
            Err(e) => return Outcome::failed(started, 0, e, false),
        };
        let mut last = String::new();
        for addr in addrs {
            match self
                .post_to(addr, &target, url, headers, body.clone())
                .await
            {
                Ok(code) => {
                    return Outcome {
                        ok: (200..300).contains(&code),
                        code: i32::from(code),
                        latency_ms: started.elapsed().as_millis() as i64,
                        error: if (200..300).contains(&code) {
                            String::new()
                        } else {
                            format!("the endpoint answered {code}")
                        },
                        retryable: true,
                    };
                }
                Err(e) => last = e,
            }
        }
        Outcome::failed(started, 0, last, true)
    }

    async fn post_to(
        &self,
        addr: SocketAddr,
        target: &Target,
        url: &str,
        headers: &[(&str, String)],
        body: String,
    ) -> Result<u16, String> {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connecting to {addr}: {e}"))?;
        let _ = stream.set_nodelay(true);
        let uri: http::Uri = url
            .parse()
            .map_err(|_| "the URL does not parse".to_owned())?;
        let path = uri
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_else(|| "/".into());
        let host = match (target.https, target.port) {
            (true, 443) | (false, 80) => target.host.clone(),
            _ => format!("{}:{}", target.host, target.port),
        };
        let mut request = http::Request::post(path)
            .header(http::header::HOST, host)
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::USER_AGENT, "desk-notifications");
        for (name, value) in headers {
            request = request.header(*name, value.as_str());
        }
        let request = request
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| e.to_string())?;
        if target.https {
            let name = rustls::pki_types::ServerName::try_from(target.host.clone())
                .map_err(|e| e.to_string())?;
            let tls = self
                .tls
                .connect(name, stream)
                .await
                .map_err(|e| format!("TLS: {e}"))?;
            send(TokioIo::new(tls), request).await
        } else {
            send(TokioIo::new(stream), request).await
        }
    }
}

async fn send<I>(io: I, request: http::Request<Full<Bytes>>) -> Result<u16, String>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    // Read the body so the connection ends cleanly; its content is not kept.
    let _ = response.into_body().collect().await;
    Ok(status)
}
