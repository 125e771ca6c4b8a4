//! Key rotation (ARCHITECTURE §7): the IdP's keys from a JWKS URL served by a loopback HTTP
//! server that rotates them, and from a JWKS file rewritten as a Kubernetes Secret update would.

use std::{
    path::Path,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail, ensure};
use desk_kit::{
    auth::{AuthError, AuthInterceptor, Claims, Verifier, dev_claims},
    settings::{AuthSettings, Settings},
};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::TcpListener,
};
use tokio_util::sync::CancellationToken;

const OLD_KID: &str = "test-ed25519";
const NEW_KID: &str = "test-ed25519-rotated";

fn testdata(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn old_jwks() -> String {
    testdata("jwks.json")
}

fn new_jwks() -> String {
    testdata("jwks-rotated.json")
}

/// Both keys, as an IdP publishes them while it rotates.
fn both_jwks() -> anyhow::Result<String> {
    let mut old: serde_json::Value = serde_json::from_str(&old_jwks())?;
    let new: serde_json::Value = serde_json::from_str(&new_jwks())?;
    let keys = old["keys"].as_array_mut().context("keys")?;
    keys.extend(new["keys"].as_array().context("keys")?.iter().cloned());
    Ok(old.to_string())
}

fn claims(auth: &AuthSettings) -> Claims {
    dev_claims(auth, "ana", "acme", &["agent"], 300)
}

fn signed(kid: &str, claims: &Claims) -> anyhow::Result<String> {
    let pem = match kid {
        NEW_KID => testdata("ed25519-rotated-private.pem"),
        _ => testdata("ed25519-private.pem"),
    };
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(kid.to_owned());
    Ok(jsonwebtoken::encode(
        &header,
        claims,
        &EncodingKey::from_ed_pem(pem.as_bytes())?,
    )?)
}

/// What the loopback IdP answers `GET /jwks.json` with.
enum Answer {
    Jwks(String),
    ServerError,
    Garbage,
}

/// A loopback IdP: answers each connection's one request with the current [`Answer`] and
/// counts the requests.
struct Idp {
    url: String,
    answer: Arc<Mutex<Answer>>,
    fetches: Arc<AtomicUsize>,
    stop: CancellationToken,
}

impl Idp {
    async fn start(answer: Answer) -> anyhow::Result<Idp> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/jwks.json", listener.local_addr()?);
        let answer = Arc::new(Mutex::new(answer));
        let fetches = Arc::new(AtomicUsize::new(0));
        let stop = CancellationToken::new();
        let (shared, counted, stopped) = (answer.clone(), fetches.clone(), stop.clone());
        tokio::spawn(async move {
            loop {
                let (mut socket, _) = tokio::select! {
                    () = stopped.cancelled() => return,
                    accepted = listener.accept() => match accepted {
                        Ok(accepted) => accepted,
                        Err(_) => return,
                    },
                };
                let mut request = Vec::new();
                let mut buffer = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buffer).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => request.extend_from_slice(&buffer[..n]),
                    }
                }
                counted.fetch_add(1, Ordering::SeqCst);
                let (status, body) = match &*shared.lock().unwrap_or_else(PoisonError::into_inner) {
                    Answer::Jwks(jwks) => ("200 OK", jwks.clone()),
                    Answer::ServerError => ("503 Service Unavailable", "down".to_owned()),
                    Answer::Garbage => ("200 OK", "{\"keys\": [".to_owned()),
                };
                let response = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
                let _ = socket.shutdown().await;
            }
        });
        Ok(Idp {
            url,
            answer,
            fetches,
            stop,
        })
    }

    fn answer(&self, answer: Answer) {
        *self.answer.lock().unwrap_or_else(PoisonError::into_inner) = answer;
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

impl Drop for Idp {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

fn settings(url: Option<&str>, every: u64, unknown_kid_gap: u64) -> AuthSettings {
    let mut auth = Settings::defaults().auth;
    auth.jwks_url = url.map(str::to_owned);
    auth.jwks_refresh_seconds = every;
    auth.jwks_unknown_kid_refresh_seconds = unknown_kid_gap;
    auth
}

async fn eventually(what: &str, mut check: impl FnMut() -> bool) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !check() {
        if Instant::now() > deadline {
            bail!("timed out waiting until {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// The status a service answers a call bearing `token` with.
fn status_of(verifier: &Arc<Verifier>, token: &str) -> tonic::Code {
    use tonic::service::Interceptor as _;
    let mut request = tonic::Request::new(());
    match format!("Bearer {token}").parse() {
        Ok(value) => {
            request.metadata_mut().insert("authorization", value);
        }
        Err(_) => return tonic::Code::Internal,
    }
    match AuthInterceptor::new(verifier.clone()).call(request) {
        Ok(_) => tonic::Code::Ok,
        Err(status) => status.code(),
    }
}

#[tokio::test]
async fn a_token_of_a_rotated_in_key_is_accepted_once_the_jwks_url_publishes_it()
-> anyhow::Result<()> {
    let idp = Idp::start(Answer::Jwks(old_jwks())).await?;
    let auth = settings(Some(&idp.url), 3600, 0);
    let shutdown = CancellationToken::new();
    let verifier = Verifier::start(&auth, shutdown.clone()).await?;
    ensure!(idp.fetches() == 1, "fetched at start");
    let old = signed(OLD_KID, &claims(&auth))?;
    let new = signed(NEW_KID, &claims(&auth))?;
    ensure!(verifier.verify(&old)?.subject == "ana");
    ensure!(
        status_of(&verifier, &new) == tonic::Code::Unauthenticated,
        "a kid the IdP has not published is refused"
    );

    idp.answer(Answer::Jwks(both_jwks()?));
    // Each refusal asks for a refresh; the periodic one is an hour away.
    eventually("the rotated-in key verifies", || {
        verifier.verify(&new).is_ok()
    })
    .await?;
    ensure!(
        verifier.verify(&old).is_ok(),
        "both keys during the overlap"
    );
    ensure!(status_of(&verifier, &new) == tonic::Code::Ok);
    shutdown.cancel();
    Ok(())
}

#[tokio::test]
async fn a_flood_of_unknown_kids_is_refused_and_fetches_once_per_interval() -> anyhow::Result<()> {
    let idp = Idp::start(Answer::Jwks(old_jwks())).await?;
    let auth = settings(Some(&idp.url), 3600, 2);
    let shutdown = CancellationToken::new();
    let verifier = Verifier::start(&auth, shutdown.clone()).await?;
    let made_up: Vec<String> = (0..100)
        .map(|n| signed(&format!("made-up-{n}"), &claims(&auth)))
        .collect::<anyhow::Result<_>>()?;
    for token in &made_up {
        ensure!(matches!(verifier.verify(token), Err(AuthError::UnknownKey)));
        ensure!(status_of(&verifier, token) == tonic::Code::Unauthenticated);
    }
    eventually("the flood's one refresh", || idp.fetches() == 2).await?;
    // Nothing asked since that fetch began: no further fetch comes, however long we wait
    // (two intervals here).
    tokio::time::sleep(Duration::from_secs(4)).await;
    ensure!(
        idp.fetches() == 2,
        "{} fetches for one flood",
        idp.fetches()
    );
    shutdown.cancel();
    Ok(())
}

#[tokio::test]
async fn a_failed_fetch_keeps_the_last_good_keys() -> anyhow::Result<()> {
    let idp = Idp::start(Answer::Jwks(old_jwks())).await?;
    let auth = settings(Some(&idp.url), 1, 1);
    let shutdown = CancellationToken::new();
    let verifier = Verifier::start(&auth, shutdown.clone()).await?;
    let old = signed(OLD_KID, &claims(&auth))?;
    ensure!(verifier.verify(&old).is_ok());

    for answer in [
        Answer::ServerError,
        Answer::Garbage,
        Answer::Jwks(r#"{"keys":[]}"#.into()),
    ] {
        let before = idp.fetches();
        idp.answer(answer);
        eventually("two refreshes against a failing IdP", || {
            idp.fetches() >= before + 2
        })
        .await?;
        ensure!(
            verifier.verify(&old).is_ok(),
            "the last good keys still verify"
        );
    }
    shutdown.cancel();
    Ok(())
}

#[tokio::test]
async fn an_unreachable_idp_at_start_is_retried_until_it_answers() -> anyhow::Result<()> {
    let idp = Idp::start(Answer::ServerError).await?;
    let auth = settings(Some(&idp.url), 3600, 1);
    let shutdown = CancellationToken::new();
    let verifier = Verifier::start(&auth, shutdown.clone()).await?;
    let old = signed(OLD_KID, &claims(&auth))?;
    ensure!(status_of(&verifier, &old) == tonic::Code::Unauthenticated);
    idp.answer(Answer::Jwks(old_jwks()));
    eventually("the IdP's keys arrive", || verifier.verify(&old).is_ok()).await?;
    shutdown.cancel();
    Ok(())
}

#[tokio::test]
async fn a_rewritten_jwks_file_rotates_the_keys() -> anyhow::Result<()> {
    let folder = tempfile::tempdir()?;
    let path = folder.path().join("jwks.json");
    std::fs::write(&path, old_jwks())?;
    let mut auth = settings(None, 1, 1);
    auth.jwks_file = Some(path.clone());
    let shutdown = CancellationToken::new();
    let verifier = Verifier::start(&auth, shutdown.clone()).await?;
    let old = signed(OLD_KID, &claims(&auth))?;
    let new = signed(NEW_KID, &claims(&auth))?;
    ensure!(verifier.verify(&old).is_ok() && verifier.verify(&new).is_err());

    // A Kubernetes Secret update: the file now holds the new key only.
    std::fs::write(&path, new_jwks())?;
    eventually("the new key verifies", || verifier.verify(&new).is_ok()).await?;
    ensure!(
        status_of(&verifier, &old) == tonic::Code::Unauthenticated,
        "the retired key no longer verifies"
    );
    // A broken write keeps the keys that were there.
    std::fs::write(&path, "not json")?;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    ensure!(verifier.verify(&new).is_ok());
    shutdown.cancel();
    Ok(())
}
