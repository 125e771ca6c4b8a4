//! The nats-server `desk up` starts for itself when no NATS URL is given: JetStream on, loopback
//! only, its store under the data folder so events survive a restart. It is stopped when `desk` exits.

use std::{path::Path, time::Duration};

use anyhow::Context as _;
use tokio::process::{Child, Command};

/// A nats-server child process; killed when dropped.
pub struct LocalNats {
    port: u16,
    _child: Child,
}

impl LocalNats {
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }
}

/// Finds a nats-server >= 2.10 and starts it with its store in `store_dir`.
pub async fn start_local(store_dir: &Path) -> anyhow::Result<LocalNats> {
    let roots: Vec<std::path::PathBuf> = std::env::current_dir().into_iter().collect();
    let binary = desk_kit::nats_server::find(desk_kit::nats_server::default_candidates(&roots))?;
    std::fs::create_dir_all(store_dir)?;
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0")?;
        probe.local_addr()?.port()
    };
    let log = std::fs::File::create(store_dir.join("nats-server.log"))?;
    let child = Command::new(&binary)
        .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
        .arg(store_dir)
        .stdout(log.try_clone()?)
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "nats-server did not accept connections on port {port} within 10 s; see {}",
            store_dir.join("nats-server.log").display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tracing::info!(nats.port = port, binary = %binary.display(), "started a local nats-server");
    Ok(LocalNats {
        port,
        _child: child,
    })
}
