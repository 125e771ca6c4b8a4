//! Where the IdP's keys come from and how they follow its key rotation.
//!
//! The JWKS file (`auth.jwks_file`) is re-read and the JWKS URL (`auth.jwks_url`) fetched every
//! `auth.jwks_refresh_seconds`, and sooner when a token names a `kid` no key has — at most once
//! per `auth.jwks_unknown_kid_refresh_seconds`, so made-up `kid`s cannot hammer the IdP. A
//! source that fails keeps its last good keys ([`super::Verifier`] swaps in only what loaded).
//!
//! The fetch is a plain HTTP/1.1 GET on hyper, which tonic already builds, with TLS by the
//! rustls that async-nats already builds (ring, the system's roots): a JWKS is one small
//! document, and a second HTTP client stack (reqwest) would add a tree of crates for it.

use std::{
    path::PathBuf,
    sync::{Arc, OnceLock},
    time::Duration,
};

use anyhow::{Context as _, bail, ensure};
use bytes::Bytes;
use http_body_util::BodyExt as _;
use hyper_util::rt::TokioIo;
use tokio::{net::TcpStream, time::Instant};
use tokio_rustls::rustls;
use tokio_util::sync::CancellationToken;

use super::Verifier;
use crate::settings::AuthSettings;

/// A JWKS larger than this is refused: an IdP's key set is a few kilobytes.
const MAX_JWKS_BYTES: usize = 1 << 20;
/// How long one fetch may take, connecting included.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// The IdP's key sources and how often they are refreshed.
#[derive(Debug)]
pub(super) struct Source {
    pub(super) file: Option<PathBuf>,
    pub(super) url: Option<http::Uri>,
    every: Duration,
    unknown_kid_gap: Duration,
}

impl Source {
    pub(super) fn from_settings(settings: &AuthSettings) -> anyhow::Result<Source> {
        let url = match settings.jwks_url.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(text) => {
                let uri: http::Uri = text
                    .parse()
                    .with_context(|| format!("auth.jwks_url {text:?} is not a URL"))?;
                ensure!(
                    matches!(uri.scheme_str(), Some("http" | "https")) && uri.host().is_some(),
                    "auth.jwks_url {text:?} must be an http:// or https:// URL with a host"
                );
                Some(uri)
            }
        };
        ensure!(
            settings.jwks_refresh_seconds > 0,
            "auth.jwks_refresh_seconds must be at least 1"
        );
        Ok(Source {
            file: settings.jwks_file.clone(),
            url,
            every: Duration::from_secs(settings.jwks_refresh_seconds),
            unknown_kid_gap: Duration::from_secs(settings.jwks_unknown_kid_refresh_seconds),
        })
    }

    /// Whether there is anything to refresh (the IdP's keys come from a file or a URL).
    pub(super) fn refreshes(&self) -> bool {
        self.file.is_some() || self.url.is_some()
    }

    /// Each configured source's JWKS text (`None`: not configured).
    pub(super) async fn load(
        &self,
    ) -> (
        Option<anyhow::Result<String>>,
        Option<anyhow::Result<String>>,
    ) {
        let file = match &self.file {
            None => None,
            Some(path) => Some(
                tokio::fs::read_to_string(path)
                    .await
                    .with_context(|| format!("reading {}", path.display())),
            ),
        };
        let url = match &self.url {
            None => None,
            Some(uri) => Some(
                match tokio::time::timeout(FETCH_TIMEOUT, fetch(uri)).await {
                    Ok(result) => result.with_context(|| format!("fetching {uri}")),
                    Err(_) => Err(anyhow::anyhow!(
                        "fetching {uri}: no answer in {FETCH_TIMEOUT:?}"
                    )),
                },
            ),
        };
        (file, url)
    }
}

/// Refreshes `verifier`'s IdP keys until `shutdown`: every `jwks_refresh_seconds`, and when a
/// token named an unknown `kid` (no sooner than `jwks_unknown_kid_refresh_seconds` after the
/// last refresh). After a failed refresh the next comes after the shorter interval.
pub(super) async fn refresh_until(
    verifier: Arc<Verifier>,
    mut loaded: bool,
    shutdown: CancellationToken,
) {
    let source = &verifier.source;
    let mut last = Instant::now();
    loop {
        let next = if loaded {
            last + source.every
        } else {
            last + source.unknown_kid_gap.max(Duration::from_secs(1))
        };
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep_until(next) => {}
            () = verifier.unknown_kid.notified() => {
                let earliest = last + source.unknown_kid_gap;
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep_until(earliest) => {}
                }
            }
        }
        // Unknown `kid`s from now on may name a key this fetch misses: they ask again.
        verifier
            .unknown_kid_pending
            .store(false, std::sync::atomic::Ordering::Release);
        loaded = verifier.refresh().await;
        last = Instant::now();
    }
}

/// `GET uri` over HTTP/1.1 (TLS for `https`), the body of a 2xx answer.
async fn fetch(uri: &http::Uri) -> anyhow::Result<String> {
    let host = uri.host().context("no host")?;
    let https = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        other => bail!("scheme {other:?} is neither http nor https"),
    };
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    // `[::1]` is how a URL writes an IPv6 host; the socket wants it bare.
    let bare_host = host.trim_start_matches('[').trim_end_matches(']');
    let tcp = TcpStream::connect((bare_host, port)).await?;
    let authority = uri.authority().map_or(host, |a| a.as_str());
    let request = http::Request::get(uri.path_and_query().map_or("/", |p| p.as_str()))
        .header(http::header::HOST, authority)
        .header(http::header::ACCEPT, "application/json")
        .header(http::header::CONNECTION, "close")
        .body(http_body_util::Empty::<Bytes>::new())?;
    let body = if https {
        let name = rustls::pki_types::ServerName::try_from(bare_host.to_owned())?;
        let tls = tls_connector()?.connect(name, tcp).await?;
        get(TokioIo::new(tls), request).await?
    } else {
        get(TokioIo::new(tcp), request).await?
    };
    Ok(String::from_utf8(body.to_vec())?)
}

async fn get<I>(
    io: I,
    request: http::Request<http_body_util::Empty<Bytes>>,
) -> anyhow::Result<Bytes>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io).await?;
    let connection = tokio::spawn(connection);
    let result = async {
        let response = sender.send_request(request).await?;
        let status = response.status();
        ensure!(status.is_success(), "answered {status}");
        let body = http_body_util::Limited::new(response.into_body(), MAX_JWKS_BYTES)
            .collect()
            .await
            .map_err(|e| anyhow::anyhow!("reading the body: {e}"))?;
        Ok(body.to_bytes())
    }
    .await;
    connection.abort();
    result
}

/// One TLS client configuration per process: the system's root certificates, read once.
fn tls_connector() -> anyhow::Result<tokio_rustls::TlsConnector> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    if let Some(config) = CONFIG.get() {
        return Ok(tokio_rustls::TlsConnector::from(config.clone()));
    }
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    let (added, _ignored) = roots.add_parsable_certificates(native.certs);
    ensure!(
        added > 0,
        "no system root certificates to verify the IdP with ({:?})",
        native.errors
    );
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let config = CONFIG.get_or_init(|| Arc::new(config)).clone();
    Ok(tokio_rustls::TlsConnector::from(config))
}
