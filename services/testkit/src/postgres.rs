//! PostgreSQL for tests: one fresh database per test on one server per test process.
//!
//! The server is the one `DATABASE_URL` points at (a `postgres://` URL with the right to
//! `CREATE DATABASE`), or else a throwaway cluster started lazily, once per process, from the
//! PostgreSQL server binaries on the machine (`/usr/lib/postgresql/*/bin`, or `pg_config
//! --bindir`). Databases are created with `psql`; this crate has no database client.
//!
//! A cluster runs under a watchdog shell in its own process group:
//!
//! ```text
//! initdb -D DIR/data ... || { keep the log as DIR.log; rm -rf DIR; exit; }
//! postgres -D DIR/data -p PORT -k DIR/sock ... >DIR/postgres.log 2>&1 &
//! while test process alive && no DIR/stop && postgres alive; do sleep 0.5; done
//! kill -INT postgres; wait; rm -rf DIR
//! ```
//!
//! so the process-wide cluster (a static, never dropped) is stopped and its directory removed
//! once the test binary has exited, however it exits. A [`PgCluster`] from [`start_cluster`]
//! that is dropped (or [`PgCluster::stop`]ped) is stopped at once.
//!
//! `initdb` refuses to run as root: as root, the directory is handed to the `postgres` user and
//! `initdb` / `postgres` run as that user through `setpriv` (or `runuser`).

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use tokio::sync::OnceCell;

use crate::util::{
    free_port, is_executable, log_tail, running_as_root, sh_path, sh_quote, wait_async,
    wait_blocking, which,
};
use crate::{Backend, TestDatabase};

/// How long [`start_cluster`] waits for `initdb` and the server to accept connections.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long stopping a cluster may take before its postgres is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

const HOW_TO_GET_POSTGRES: &str = "run `make deps` (installs Debian's postgresql and \
     postgresql-client), or set DATABASE_URL to a postgres:// URL of a server where you may CREATE DATABASE";

/// A PostgreSQL server to create test databases on: a cluster this crate started, or the
/// external server named by `DATABASE_URL`.
pub struct PgCluster {
    /// `postgres://postgres@127.0.0.1:PORT` (no trailing slash, no database).
    pub url_base: String,
    /// The server's TCP port.
    pub port: u16,
    /// Query string kept from `DATABASE_URL` (`""` or `"?…"`), appended to database URLs.
    query: String,
    /// What `psql` connects to for `CREATE DATABASE`.
    admin_url: String,
    psql: PathBuf,
    owned: Option<Owned>,
}

/// The processes and files of a cluster this crate started.
struct Owned {
    /// Holds `data/`, `sock/`, `postgres.log`; removed by the watchdog after postgres exits.
    base: PathBuf,
    /// The watchdog shell; postgres is its child.
    watchdog: Child,
}

impl std::fmt::Debug for PgCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgCluster")
            .field("url_base", &self.url_base)
            .field("port", &self.port)
            .field("dir", &self.owned.as_ref().map(|o| &o.base))
            .finish()
    }
}

impl PgCluster {
    /// The URL of database `name` on this server: `postgres://postgres@127.0.0.1:PORT/NAME`.
    pub fn database_url(&self, name: &str) -> String {
        format!("{}/{}{}", self.url_base, name, self.query)
    }

    /// Runs `CREATE DATABASE "name"` (through `psql`) and returns the new database's URL.
    pub async fn create_database(&self, name: &str) -> anyhow::Result<String> {
        if name.is_empty() || name.len() > 63 || name.contains(['"', '\0']) {
            bail!("invalid database name {name:?}");
        }
        self.psql(&format!("CREATE DATABASE \"{name}\""))
            .await
            .with_context(|| format!("creating database {name} on {}", self.url_base))?;
        Ok(self.database_url(name))
    }

    /// Runs one SQL command on the server's admin database with `psql` and returns its output
    /// (unaligned, tuples only).
    pub async fn psql(&self, sql: &str) -> anyhow::Result<String> {
        run_psql(&self.psql, &self.admin_url, sql).await
    }

    /// The cluster's directory (`data/`, `sock/`, `postgres.log`); `None` for an external server.
    pub fn dir(&self) -> Option<&Path> {
        self.owned.as_ref().map(|o| o.base.as_path())
    }

    /// The server log of a cluster this crate started.
    pub fn log_file(&self) -> Option<PathBuf> {
        self.dir().map(|d| d.join("postgres.log"))
    }

    /// Stops a cluster this crate started (fast shutdown) and waits until its directory is
    /// gone. Dropping a [`PgCluster`] does the same, blocking.
    pub async fn stop(mut self) {
        if let Some(mut owned) = self.owned.take() {
            owned.request_stop();
            if !wait_async(&mut owned.watchdog, STOP_TIMEOUT).await {
                owned.force_stop();
            }
        }
    }

    /// Wraps the external server `url` (from `DATABASE_URL`).
    fn external(url: &str) -> anyhow::Result<PgCluster> {
        let parts = split_url(url)?;
        Ok(PgCluster {
            url_base: parts.base.clone(),
            port: parts.port,
            admin_url: if parts.has_database {
                url.to_string()
            } else {
                format!("{}/postgres{}", parts.base, parts.query)
            },
            query: parts.query,
            psql: psql_binary()?,
            owned: None,
        })
    }
}

impl Owned {
    fn request_stop(&self) {
        let _ = std::fs::write(self.base.join("stop"), b"");
    }

    /// Last resort when a fast shutdown hangs: SIGKILL postgres and the watchdog, remove the dir.
    fn force_stop(&mut self) {
        if let Ok(pidfile) = std::fs::read_to_string(self.base.join("data/postmaster.pid"))
            && let Some(pid) = pidfile.lines().next()
            && let Ok(pid) = pid.trim().parse::<u32>()
        {
            crate::util::send_signal(pid, "KILL");
        }
        let _ = self.watchdog.kill();
        wait_blocking(&mut self.watchdog, Duration::from_secs(5));
        let _ = std::fs::remove_dir_all(&self.base);
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        if let Some(mut owned) = self.owned.take() {
            owned.request_stop();
            if !wait_blocking(&mut owned.watchdog, STOP_TIMEOUT) {
                owned.force_stop();
            }
        }
    }
}

/// The pieces of a `postgres://` URL that [`PgCluster`] needs.
#[derive(Debug, PartialEq, Eq)]
struct UrlParts {
    /// `scheme://userinfo@host:port`
    base: String,
    port: u16,
    /// `""` or `"?…"`
    query: String,
    has_database: bool,
}

fn split_url(url: &str) -> anyhow::Result<UrlParts> {
    let scheme_end = url
        .find("://")
        .ok_or_else(|| anyhow!("DATABASE_URL {url:?} is not a URL"))?
        + 3;
    let scheme = &url[..scheme_end];
    if scheme != "postgres://" && scheme != "postgresql://" {
        bail!("DATABASE_URL {url:?} is not a postgres:// URL");
    }
    let rest = &url[scheme_end..];
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let after = &rest[authority_end..];
    let (path, query) = match after.find('?') {
        Some(q) => (&after[..q], &after[q..]),
        None => (after, ""),
    };
    let host_port = authority.rsplit('@').next().unwrap_or(authority);
    let port = match host_port.rfind(':') {
        Some(colon) if !host_port[colon..].contains(']') => host_port[colon + 1..]
            .parse()
            .with_context(|| format!("port in DATABASE_URL {url:?}"))?,
        _ => 5432,
    };
    Ok(UrlParts {
        base: format!("{scheme}{authority}"),
        port,
        query: query.to_string(),
        has_database: !path.trim_start_matches('/').is_empty(),
    })
}

async fn run_psql(psql: &Path, conninfo: &str, sql: &str) -> anyhow::Result<String> {
    let out = tokio::process::Command::new(psql)
        .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d"])
        .arg(conninfo)
        .arg("-c")
        .arg(sql)
        .env("PGCONNECT_TIMEOUT", "10")
        .stdin(Stdio::null())
        .output()
        .await
        .with_context(|| format!("running {}", psql.display()))?;
    if !out.status.success() {
        bail!(
            "psql exited with {}: {}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim(),
            String::from_utf8_lossy(&out.stdout).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// One throwaway PostgreSQL cluster per test process (started lazily, once), one fresh
/// database per call: creates database `t_<uuid simple>` and returns its URL.
///
/// With `DATABASE_URL` set to a `postgres://` URL, the database is created on that server
/// instead of a throwaway cluster.
pub async fn postgres_database() -> anyhow::Result<TestDatabase> {
    let cluster = postgres_cluster().await?;
    let name = format!("t_{}", uuid::Uuid::now_v7().simple());
    let url = cluster.create_database(&name).await?;
    Ok(TestDatabase {
        url,
        backend: Backend::Postgres,
        dir: None,
    })
}

/// The process-wide server [`postgres_database`] creates databases on: `DATABASE_URL`'s, or a
/// throwaway cluster tuned for tests (no fsync) started on first use. A failure to start is
/// remembered, so every later caller gets the same error at once.
pub async fn postgres_cluster() -> anyhow::Result<&'static PgCluster> {
    static SHARED: OnceCell<Result<PgCluster, String>> = OnceCell::const_new();
    let shared = SHARED
        .get_or_init(|| async {
            let external = std::env::var("DATABASE_URL")
                .ok()
                .filter(|url| url.starts_with("postgres://") || url.starts_with("postgresql://"));
            let cluster = match external {
                Some(url) => PgCluster::external(&url),
                None => start_cluster(true).await,
            };
            cluster.map_err(|e| format!("{e:#}"))
        })
        .await;
    shared.as_ref().map_err(|e| anyhow!("{e}"))
}

/// Starts a PostgreSQL cluster of one's own on a free loopback port, in a new temporary
/// directory, and waits (up to ~60 s, `initdb` included) until it accepts connections.
///
/// `tuned_for_tests` turns durability off (`fsync`, `synchronous_commit`, `full_page_writes`)
/// for speed; benchmarks pass `false`. Either way `max_connections` is 300. The cluster stops
/// when the returned value is dropped, or when this process exits.
pub async fn start_cluster(tuned_for_tests: bool) -> anyhow::Result<PgCluster> {
    let bindir = postgres_binaries_dir()?;
    let psql = if is_executable(&bindir.join("psql")) {
        bindir.join("psql")
    } else {
        psql_binary()?
    };
    let as_root = running_as_root();
    let run_as = if as_root {
        postgres_user_prefix()?
    } else {
        Vec::new()
    };

    let dir = tempfile::Builder::new()
        .prefix("desk-pg-")
        .tempdir()
        .context("creating a temporary directory for PostgreSQL")?;
    let base = dir.path().to_path_buf();
    std::fs::create_dir_all(base.join("sock"))?;
    if as_root {
        let status = std::process::Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(&base)
            .status()
            .context("running chown")?;
        if !status.success() {
            bail!("chown -R postgres {} failed: {status}", base.display());
        }
    }

    // initdb and postgres (as the postgres user when root), both under the watchdog shell, so
    // that the directory goes away even when this process is killed during initdb.
    let started = Instant::now();
    let run_as = run_as
        .iter()
        .map(|a| sh_quote(a))
        .collect::<Vec<_>>()
        .join(" ");
    let data = sh_path(&base.join("data"));
    let initdb = format!(
        "{run_as} {initdb} -D {data} -A trust -U postgres --no-sync -E UTF8 --locale=C",
        initdb = sh_path(&bindir.join("initdb")),
    );
    let port = free_port()?;
    let mut postgres = format!(
        "{run_as} {postgres} -D {data} -p {port} -k {sock} -c listen_addresses=127.0.0.1 \
         -c max_connections=300",
        postgres = sh_path(&bindir.join("postgres")),
        sock = sh_path(&base.join("sock")),
    );
    if tuned_for_tests {
        postgres.push_str(" -c fsync=off -c synchronous_commit=off -c full_page_writes=off");
    }
    let script = format!(
        "alive() {{ kill -0 {test_pid} 2>/dev/null && [ ! -e {stop} ]; }}\n\
         if ! {initdb} >{initdb_log} 2>&1 </dev/null; then\n\
           cp {initdb_log} {fail_log} 2>/dev/null; rm -rf {base}; exit 1\n\
         fi\n\
         if ! alive; then rm -rf {base}; exit 0; fi\n\
         {postgres} >{log} 2>&1 </dev/null &\n\
         pg=$!\n\
         while alive && kill -0 $pg 2>/dev/null; do sleep 0.5; done\n\
         crashed=0\n\
         if alive; then crashed=1; fi\n\
         kill -INT $pg 2>/dev/null\n\
         wait $pg\n\
         if [ $crashed = 1 ]; then cat {initdb_log} {log} >{fail_log} 2>/dev/null; fi\n\
         rm -rf {base}\n",
        initdb_log = sh_path(&base.join("initdb.log")),
        log = sh_path(&base.join("postgres.log")),
        fail_log = sh_path(&failure_log(&base)),
        stop = sh_path(&base.join("stop")),
        base = sh_path(&base),
        test_pid = std::process::id(),
    );
    let watchdog = {
        use std::os::unix::process::CommandExt as _;
        std::process::Command::new("sh")
            .arg("-c")
            .arg(&script)
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .context("spawning the PostgreSQL watchdog shell")?
    };
    // From here on the watchdog owns the directory.
    let _ = dir.keep();
    let mut cluster = PgCluster {
        url_base: format!("postgres://postgres@127.0.0.1:{port}"),
        port,
        query: String::new(),
        admin_url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
        psql,
        owned: Some(Owned { base, watchdog }),
    };
    wait_ready(&mut cluster, &bindir).await?;
    tracing::debug!(url = %cluster.url_base, elapsed = ?started.elapsed(), "PostgreSQL cluster ready");
    Ok(cluster)
}

/// Where the watchdog copies the log of a postgres that exited by itself (the cluster's
/// directory is removed): `<dir>.log`.
fn failure_log(base: &Path) -> PathBuf {
    let mut name = base.as_os_str().to_os_string();
    name.push(".log");
    PathBuf::from(name)
}

async fn wait_ready(cluster: &mut PgCluster, bindir: &Path) -> anyhow::Result<()> {
    let pg_isready = bindir.join("pg_isready");
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        let Some(owned) = cluster.owned.as_mut() else {
            return Ok(());
        };
        if let Some(status) = owned.watchdog.try_wait()? {
            let fail_log = failure_log(&owned.base);
            let tail = log_tail(&fail_log, 30);
            let _ = std::fs::remove_file(&fail_log);
            cluster.owned = None;
            bail!(
                "PostgreSQL on port {} exited before accepting connections (watchdog {status}); initdb and server log tail:\n{tail}",
                cluster.port
            );
        }
        let ready = tokio::process::Command::new(&pg_isready)
            .args([
                "-q",
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-t",
                "2",
                "-p",
            ])
            .arg(cluster.port.to_string())
            .stdin(Stdio::null())
            .status()
            .await
            .with_context(|| format!("running {}", pg_isready.display()))?;
        if ready.success() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            // The caller drops `cluster` on this error, which stops it.
            let tail = log_tail(&owned.base.join("postgres.log"), 30);
            bail!(
                "PostgreSQL on port {} did not accept connections within {READY_TIMEOUT:?}; log tail:\n{tail}",
                cluster.port
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The command prefix that runs a program as the `postgres` user (for root).
fn postgres_user_prefix() -> anyhow::Result<Vec<String>> {
    let exists = std::process::Command::new("id")
        .args(["-u", "postgres"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !exists {
        bail!(
            "running as root, and initdb refuses to run as root, but there is no `postgres` user \
             to run it as; {HOW_TO_GET_POSTGRES}"
        );
    }
    if let Some(setpriv) = which("setpriv") {
        return Ok(vec![
            setpriv.to_string_lossy().into_owned(),
            "--reuid=postgres".into(),
            "--regid=postgres".into(),
            "--init-groups".into(),
            "--".into(),
        ]);
    }
    if let Some(runuser) = which("runuser") {
        return Ok(vec![
            runuser.to_string_lossy().into_owned(),
            "-u".into(),
            "postgres".into(),
            "--".into(),
        ]);
    }
    bail!("running as root, but neither setpriv nor runuser is there to run initdb as `postgres`")
}

/// The directory holding the PostgreSQL server binaries (`initdb`, `postgres`, `pg_isready`):
/// the highest version under `/usr/lib/postgresql/*/bin`, else `pg_config --bindir`, else the
/// directory of `initdb` on `PATH`.
pub fn postgres_binaries_dir() -> anyhow::Result<PathBuf> {
    let complete = |dir: &Path| {
        ["initdb", "postgres", "pg_isready"]
            .iter()
            .all(|b| is_executable(&dir.join(b)))
    };
    let mut versioned: Vec<(Vec<u32>, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry
                .file_name()
                .to_string_lossy()
                .split('.')
                .map(|p| p.parse::<u32>().ok())
                .collect::<Option<Vec<u32>>>()?;
            Some((version, entry.path().join("bin")))
        })
        .filter(|(_, bin)| complete(bin))
        .collect();
    versioned.sort();
    if let Some((_, bin)) = versioned.pop() {
        return Ok(bin);
    }
    if let Some(pg_config) = which("pg_config")
        && let Ok(out) = std::process::Command::new(pg_config)
            .arg("--bindir")
            .stdin(Stdio::null())
            .output()
    {
        let bin = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if out.status.success() && complete(&bin) {
            return Ok(bin);
        }
    }
    if let Some(bin) = which("initdb").and_then(|p| p.parent().map(Path::to_path_buf))
        && complete(&bin)
    {
        return Ok(bin);
    }
    Err(anyhow!(
        "no PostgreSQL server binaries (initdb, postgres, pg_isready) in /usr/lib/postgresql/*/bin, \
         `pg_config --bindir` or PATH; {HOW_TO_GET_POSTGRES}"
    ))
}

/// A `psql` client: the one beside the server binaries, else `psql` on `PATH`.
pub fn psql_binary() -> anyhow::Result<PathBuf> {
    if let Ok(bin) = postgres_binaries_dir()
        && is_executable(&bin.join("psql"))
    {
        return Ok(bin.join("psql"));
    }
    which("psql").ok_or_else(|| anyhow!("no psql found; {HOW_TO_GET_POSTGRES}"))
}

#[cfg(test)]
mod tests {
    use super::{UrlParts, split_url};

    #[test]
    fn splits_database_urls() {
        assert_eq!(
            split_url("postgres://u:p@db.example:6543/app?sslmode=disable").ok(),
            Some(UrlParts {
                base: "postgres://u:p@db.example:6543".into(),
                port: 6543,
                query: "?sslmode=disable".into(),
                has_database: true,
            })
        );
        assert_eq!(
            split_url("postgresql://localhost").ok(),
            Some(UrlParts {
                base: "postgresql://localhost".into(),
                port: 5432,
                query: String::new(),
                has_database: false,
            })
        );
        assert_eq!(
            split_url("postgres://[::1]:7000/")
                .ok()
                .map(|p| (p.port, p.has_database)),
            Some((7000, false))
        );
        assert!(split_url("sqlite://x.db").is_err());
    }
}
