//! A gateway on a loopback port of its own, started exactly as `desk serve --target gateway`
//! starts one (`desk_kit::host::run` with [`crate::ENTRY`]): what the gateway's tests, the
//! security suite and the benchmark drive.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context as _;
use desk_kit::{
    clock::SystemClock,
    settings::{ServiceAddress, Settings},
};
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};

/// How long a stopping gateway may take to drain.
const STOP_LIMIT: Duration = Duration::from_secs(30);

/// A running gateway; it stops when dropped (or, waiting for it, with [`LocalGateway::stop`]).
pub struct LocalGateway {
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<anyhow::Result<()>>>,
}

impl std::fmt::Debug for LocalGateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalGateway")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

/// Starts a gateway on 127.0.0.1 with a free port, forwarding each `(service, address)` of
/// `upstreams` (`("tickets", addr)` sets `services.tickets.url`). `settings` are a process's
/// settings as any other's: NATS, token keys, `region` and `gateway.*`. Returns once it serves.
pub async fn start(
    settings: Settings,
    upstreams: &[(&str, SocketAddr)],
) -> anyhow::Result<LocalGateway> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    start_on(listener, settings, upstreams).await
}

/// [`start`] on a listener bound beforehand: gateways of two regions that are each other's
/// peers need both addresses before either starts.
pub async fn start_on(
    listener: TcpListener,
    mut settings: Settings,
    upstreams: &[(&str, SocketAddr)],
) -> anyhow::Result<LocalGateway> {
    for (service, addr) in upstreams {
        settings.services.insert(
            (*service).to_owned(),
            ServiceAddress {
                url: format!("http://{addr}"),
            },
        );
    }
    let addr = listener.local_addr()?;
    let (ready, is_ready) = oneshot::channel::<()>();
    let (shutdown, stop) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        desk_kit::host::run(
            listener,
            settings,
            Arc::new(SystemClock),
            &[crate::ENTRY],
            move || {
                let _ = ready.send(());
            },
            async move {
                let _ = stop.await;
            },
        )
        .await
    });
    if is_ready.await.is_err() {
        // It stopped before it was ready: its error says why.
        server
            .await
            .context("the gateway task panicked")?
            .context("starting the gateway")?;
        anyhow::bail!("the gateway stopped before it was ready");
    }
    Ok(LocalGateway {
        addr,
        shutdown: Some(shutdown),
        server: Some(server),
    })
}

impl LocalGateway {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops it and waits (bounded) until it has drained.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        let Some(server) = self.server.take() else {
            return Ok(());
        };
        tokio::time::timeout(STOP_LIMIT, server)
            .await
            .context("the gateway did not stop in time")?
            .context("the gateway task panicked")?
    }
}

impl Drop for LocalGateway {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}
