//! A webhook receiver on loopback that checks every request's Standard Webhooks signature with
//! its own implementation (HMAC-SHA256 over `id.timestamp.body`, any of the space-separated
//! `v1,` signatures may match) — written from the specification, not shared with the sender —
//! and can fail on purpose. HTTP/1.1 is read by hand: one request per connection.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use base64::{Engine, engine::general_purpose::STANDARD};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
    task::JoinHandle,
};

/// One request as received, with whether its signature verified.
#[derive(Debug, Clone)]
pub struct Received {
    pub id: String,
    pub timestamp: String,
    pub signature: String,
    pub body: String,
    /// Answered with this status.
    pub status: u16,
    pub verified: bool,
    pub at: Instant,
}

#[derive(Default)]
struct State {
    secrets: Vec<Vec<u8>>,
    fail_next: usize,
    received: Vec<Received>,
}

pub struct WebhookReceiver {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    task: JoinHandle<()>,
}

impl Drop for WebhookReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// `whsec_<base64>` → the key bytes.
fn key_of(secret: &str) -> Option<Vec<u8>> {
    STANDARD.decode(secret.strip_prefix("whsec_")?).ok()
}

/// Whether any `v1,<base64>` in `header` is HMAC-SHA256(key, `id.timestamp.body`) for a key.
pub fn verify(keys: &[Vec<u8>], id: &str, timestamp: &str, body: &[u8], header: &str) -> bool {
    let content = [id.as_bytes(), b".", timestamp.as_bytes(), b".", body].concat();
    header.split(' ').any(|sig| {
        let Some(tag) = sig
            .strip_prefix("v1,")
            .and_then(|b| STANDARD.decode(b).ok())
        else {
            return false;
        };
        keys.iter().any(|key| {
            let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
                return false;
            };
            mac.update(&content);
            mac.verify_slice(&tag).is_ok()
        })
    })
}

impl WebhookReceiver {
    pub async fn start() -> anyhow::Result<WebhookReceiver> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state: Arc<Mutex<State>> = Arc::default();
        let shared = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state = shared.clone();
                tokio::spawn(async move {
                    let _ = serve(stream, state).await;
                });
            }
        });
        Ok(WebhookReceiver { addr, state, task })
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The secrets (`whsec_…`) a signature may be made with.
    pub fn trust(&self, secrets: &[&str]) {
        if let Ok(mut s) = self.state.lock() {
            s.secrets = secrets.iter().filter_map(|x| key_of(x)).collect();
        }
    }

    /// The next `n` requests are answered 503.
    pub fn fail_next(&self, n: usize) {
        if let Ok(mut s) = self.state.lock() {
            s.fail_next = n;
        }
    }

    pub fn received(&self) -> Vec<Received> {
        self.state
            .lock()
            .map(|s| s.received.clone())
            .unwrap_or_default()
    }

    /// Waits until at least `count` requests arrived (or `within` passed), and returns all.
    pub async fn wait_for(&self, count: usize, within: Duration) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let now = self.received();
            if now.len() >= count || tokio::time::Instant::now() >= deadline {
                return now;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

async fn serve(mut stream: tokio::net::TcpStream, state: Arc<Mutex<State>>) -> std::io::Result<()> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buffer.extend_from_slice(&chunk[..n]);
        if let Some(i) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let header = |name: &str| {
        head.split("\r\n").find_map(|l| {
            l.split_once(':')
                .filter(|(n, _)| n.trim().eq_ignore_ascii_case(name))
                .map(|(_, v)| v.trim().to_owned())
        })
    };
    let length: usize = header("content-length")
        .and_then(|l| l.parse().ok())
        .unwrap_or(0);
    while buffer.len() < head_end + length {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
    let body = &buffer[head_end..(head_end + length).min(buffer.len())];
    let id = header("webhook-id").unwrap_or_default();
    let timestamp = header("webhook-timestamp").unwrap_or_default();
    let signature = header("webhook-signature").unwrap_or_default();
    let status = {
        let mut s = state
            .lock()
            .map_err(|_| std::io::Error::other("poisoned"))?;
        let verified = verify(&s.secrets, &id, &timestamp, body, &signature);
        let status = if s.fail_next > 0 {
            s.fail_next -= 1;
            503
        } else if verified {
            200
        } else {
            401
        };
        s.received.push(Received {
            id,
            timestamp,
            signature,
            body: String::from_utf8_lossy(body).into_owned(),
            status,
            verified,
            at: Instant::now(),
        });
        status
    };
    let reply = format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
    stream.write_all(reply.as_bytes()).await?;
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reference_signature_verifies() {
        // The `standardwebhooks` reference value for key `secret` (see facts/crates.md).
        let key = b"secret".to_vec();
        let body = br#"{"a":1}"#;
        let content = [b"msg_1.1700000000.".as_slice(), body].concat();
        let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("any key length");
        mac.update(&content);
        let sig = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
        assert!(sig.starts_with("v1,Q5nZ7DiO"));
        assert!(verify(
            std::slice::from_ref(&key),
            "msg_1",
            "1700000000",
            body,
            &format!("v1,bad {sig}")
        ));
        assert!(!verify(&[key], "msg_1", "1700000001", body, &sig));
    }
}
