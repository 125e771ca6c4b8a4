//! A small SMTP sink on loopback that captures every message for assertions: enough of RFC 5321
//! for a client to deliver (EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT), no TLS and no auth.
//! Written here so the tests need no Python; [`Captured`] decodes what a test checks (headers,
//! RFC 2047 subjects, base64 and quoted-printable parts).

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use base64::{Engine, engine::general_purpose::STANDARD};
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::TcpListener,
    task::JoinHandle,
};

/// One message as the sink received it.
#[derive(Debug, Clone)]
pub struct Captured {
    pub from: String,
    pub to: Vec<String>,
    /// The DATA section, dot-unstuffed, CRLF line ends.
    pub raw: String,
}

impl Captured {
    /// A top-level header's value, unfolded and RFC 2047-decoded.
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.raw.split("\r\n\r\n").next().unwrap_or_default();
        let mut value: Option<String> = None;
        for line in head.split("\r\n") {
            if line.starts_with(' ') || line.starts_with('\t') {
                if let Some(v) = value.as_mut() {
                    v.push(' ');
                    v.push_str(line.trim());
                }
                continue;
            }
            if value.is_some() {
                break;
            }
            if let Some((n, v)) = line.split_once(':')
                && n.eq_ignore_ascii_case(name)
            {
                value = Some(v.trim().to_owned());
            }
        }
        value.map(|v| decode_words(&v))
    }

    /// Every text part's content, decoded (`text/plain` and `text/html`), in order.
    pub fn text_parts(&self) -> Vec<(String, String)> {
        let mut parts = Vec::new();
        for section in self.raw.split("\r\n--") {
            let Some((head, body)) = section.split_once("\r\n\r\n") else {
                continue;
            };
            let header = |name: &str| {
                head.split("\r\n").find_map(|l| {
                    l.split_once(':')
                        .filter(|(n, _)| n.trim().eq_ignore_ascii_case(name))
                        .map(|(_, v)| v.trim().to_ascii_lowercase())
                })
            };
            let Some(kind) = header("content-type") else {
                continue;
            };
            if !kind.starts_with("text/") {
                continue;
            }
            let kind = kind.split(';').next().unwrap_or_default().to_owned();
            // The part ends where the next boundary starts: drop a trailing boundary line.
            let body = body.split("\r\n--").next().unwrap_or_default();
            let decoded = match header("content-transfer-encoding").as_deref() {
                Some("base64") => STANDARD
                    .decode(body.split_whitespace().collect::<String>())
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .unwrap_or_default(),
                Some("quoted-printable") => quoted_printable(body),
                _ => body.to_owned(),
            };
            parts.push((kind, decoded));
        }
        parts
    }

    /// The `text/plain` part.
    pub fn text(&self) -> String {
        self.text_parts()
            .into_iter()
            .find(|(k, _)| k == "text/plain")
            .map(|(_, t)| t)
            .unwrap_or_default()
    }

    /// The `text/html` part.
    pub fn html(&self) -> String {
        self.text_parts()
            .into_iter()
            .find(|(k, _)| k == "text/html")
            .map(|(_, t)| t)
            .unwrap_or_default()
    }
}

fn quoted_printable(text: &str) -> String {
    let mut bytes = Vec::new();
    let raw = text.replace("=\r\n", "");
    let b = raw.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'='
            && i + 2 < b.len()
            && let Ok(v) = u8::from_str_radix(&raw[i + 1..i + 3], 16)
        {
            bytes.push(v);
            i += 3;
            continue;
        }
        bytes.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// `=?utf-8?b?…?=` and `=?utf-8?q?…?=` words decoded; the rest as it is.
fn decode_words(value: &str) -> String {
    let mut out = String::new();
    let mut last_was_word = false;
    for token in value.split(' ') {
        let word = token
            .strip_prefix("=?")
            .and_then(|t| t.strip_suffix("?="))
            .and_then(|t| {
                let mut it = t.splitn(3, '?');
                let (_charset, enc, text) = (it.next()?, it.next()?, it.next()?);
                match enc {
                    "b" | "B" => STANDARD
                        .decode(text)
                        .ok()
                        .and_then(|b| String::from_utf8(b).ok()),
                    "q" | "Q" => Some(quoted_printable(&text.replace('_', " "))),
                    _ => None,
                }
            });
        match word {
            Some(w) => {
                // Adjacent encoded words join without the space between them (RFC 2047 §6.2).
                if !out.is_empty() && !last_was_word {
                    out.push(' ');
                }
                out.push_str(&w);
                last_was_word = true;
            }
            None => {
                if !out.is_empty() {
                    out.push(' ');
                }
                out.push_str(token);
                last_was_word = false;
            }
        }
    }
    out
}

/// The running sink; stopped when dropped.
pub struct SmtpSink {
    addr: SocketAddr,
    messages: Arc<Mutex<Vec<Captured>>>,
    task: JoinHandle<()>,
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl SmtpSink {
    pub async fn start() -> anyhow::Result<SmtpSink> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let messages: Arc<Mutex<Vec<Captured>>> = Arc::default();
        let store = messages.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let store = store.clone();
                tokio::spawn(async move {
                    let _ = session(stream, store).await;
                });
            }
        });
        Ok(SmtpSink {
            addr,
            messages,
            task,
        })
    }

    /// `smtp://127.0.0.1:<port>`: plain SMTP, as lettre reads it.
    pub fn url(&self) -> String {
        format!("smtp://{}", self.addr)
    }

    pub fn messages(&self) -> Vec<Captured> {
        self.messages.lock().map(|m| m.clone()).unwrap_or_default()
    }

    /// Waits until at least `count` messages arrived (or `within` passed), and returns all.
    pub async fn wait_for(&self, count: usize, within: Duration) -> Vec<Captured> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let now = self.messages();
            if now.len() >= count || tokio::time::Instant::now() >= deadline {
                return now;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn session(
    stream: tokio::net::TcpStream,
    store: Arc<Mutex<Vec<Captured>>>,
) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    write.write_all(b"220 desk-testkit SMTP sink\r\n").await?;
    let mut from = String::new();
    let mut to = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let command = line.trim_end().to_owned();
        let upper = command.to_ascii_uppercase();
        if upper.starts_with("EHLO") {
            write
                .write_all(b"250-desk-testkit\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n")
                .await?;
        } else if upper.starts_with("HELO") {
            write.write_all(b"250 desk-testkit\r\n").await?;
        } else if upper.starts_with("MAIL FROM:") {
            from = command[10..]
                .trim()
                .trim_matches(|c| c == '<' || c == '>')
                .to_owned();
            to.clear();
            write.write_all(b"250 OK\r\n").await?;
        } else if upper.starts_with("RCPT TO:") {
            to.push(
                command[8..]
                    .trim()
                    .trim_matches(|c| c == '<' || c == '>')
                    .to_owned(),
            );
            write.write_all(b"250 OK\r\n").await?;
        } else if upper == "DATA" {
            write.write_all(b"354 end with <CRLF>.<CRLF>\r\n").await?;
            let mut raw = String::new();
            loop {
                line.clear();
                if lines.read_line(&mut line).await? == 0 {
                    return Ok(());
                }
                if line == ".\r\n" || line == ".\n" {
                    break;
                }
                let unstuffed = line.strip_prefix('.').unwrap_or(&line);
                raw.push_str(unstuffed.trim_end_matches(['\r', '\n']));
                raw.push_str("\r\n");
            }
            if let Ok(mut m) = store.lock() {
                m.push(Captured {
                    from: from.clone(),
                    to: to.clone(),
                    raw,
                });
            }
            write.write_all(b"250 OK: queued\r\n").await?;
        } else if upper == "QUIT" {
            write.write_all(b"221 bye\r\n").await?;
            return Ok(());
        } else {
            // RSET, NOOP and anything else: fine.
            write.write_all(b"250 OK\r\n").await?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_words_and_parts_are_decoded() {
        assert_eq!(decode_words("=?utf-8?b?w4RyZW5kZQ==?= x"), "Ärende x");
        assert_eq!(quoted_printable("caf=C3=A9=\r\n!"), "café!");
        let c = Captured {
            from: String::new(),
            to: vec![],
            raw: "Subject: Hej\r\n =?utf-8?b?w4RyZW5kZQ==?=\r\nContent-Type: multipart/alternative; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\nSGVq\r\n--b\r\nContent-Type: text/html\r\n\r\n<p>x</p>\r\n--b--\r\n".into(),
        };
        assert_eq!(c.header("subject").as_deref(), Some("Hej Ärende"));
        assert_eq!(c.text(), "Hej");
        assert_eq!(c.html(), "<p>x</p>");
    }
}
