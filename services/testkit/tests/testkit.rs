//! The test kit against the real servers it starts.

use std::process::Stdio;
use std::time::Duration;

use desk_testkit::{Backend, NatsServer};
use tokio::io::AsyncBufReadExt as _;

/// Connects to the NATS port and returns the server's first line (`INFO {…}`).
async fn nats_info(port: u16) -> anyhow::Result<String> {
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    let mut reader = tokio::io::BufReader::new(stream);
    let mut line = String::new();
    tokio::time::timeout(Duration::from_secs(5), reader.read_line(&mut line)).await??;
    Ok(line)
}

/// `psql URL -c SQL`, returning trimmed output.
async fn psql(url: &str, sql: &str) -> anyhow::Result<String> {
    let out = tokio::process::Command::new(desk_testkit::psql_binary()?)
        .args([
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            url,
            "-c",
            sql,
        ])
        .stdin(Stdio::null())
        .output()
        .await?;
    anyhow::ensure!(
        out.status.success(),
        "psql failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

#[test]
fn finds_a_recent_nats_server() -> anyhow::Result<()> {
    let bin = desk_testkit::nats_server_binary()?;
    let out = std::process::Command::new(&bin).arg("--version").output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("v2."), "{}: {text}", bin.display());
    Ok(())
}

#[tokio::test]
async fn nats_server_starts_stops_and_restarts_on_the_same_port() -> anyhow::Result<()> {
    let mut nats = NatsServer::start().await?;
    let port = nats.port();
    assert_eq!(nats.url(), format!("nats://127.0.0.1:{port}"));
    let info = nats_info(port).await?;
    assert!(info.starts_with("INFO "), "{info}");
    assert!(
        info.contains("\"jetstream\":true"),
        "JetStream is off: {info}"
    );

    nats.stop().await;
    assert!(
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err(),
        "port {port} still accepts after stop"
    );
    assert!(nats.store_dir().is_dir(), "stop must keep the store dir");

    nats.restart().await?;
    assert_eq!(nats.port(), port);
    assert!(nats_info(port).await?.starts_with("INFO "));

    // restart() also works on a running server.
    nats.restart().await?;
    assert!(nats_info(port).await?.starts_with("INFO "));

    let dir = nats.store_dir();
    let pid = nats.pid().expect("running");
    drop(nats);
    assert!(!dir.exists(), "Drop must remove the temporary dir");
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "Drop must kill nats-server (pid {pid})"
    );
    Ok(())
}

#[tokio::test]
async fn two_nats_servers_get_different_ports() -> anyhow::Result<()> {
    let a = NatsServer::start().await?;
    let b = NatsServer::start().await?;
    assert_ne!(a.port(), b.port());
    assert!(nats_info(a.port()).await?.starts_with("INFO "));
    assert!(nats_info(b.port()).await?.starts_with("INFO "));
    Ok(())
}

#[tokio::test]
async fn postgres_databases_are_fresh_and_usable() -> anyhow::Result<()> {
    let a = desk_testkit::postgres_database().await?;
    let b = desk_testkit::postgres_database().await?;
    assert_eq!(a.backend, Backend::Postgres);
    assert_ne!(a.url, b.url);
    for db in [&a, &b] {
        assert!(db.url.starts_with("postgres://"), "{}", db.url);
        assert_eq!(psql(&db.url, "select 1").await?, "1");
        psql(&db.url, "create table t (id int primary key)").await?;
    }
    let name = a.url.rsplit('/').next().unwrap_or_default();
    assert!(name.starts_with("t_") && name.len() == 34, "{name}");
    Ok(())
}

#[tokio::test]
async fn postgres_databases_from_parallel_tests_share_one_cluster() -> anyhow::Result<()> {
    let dbs = futures_join(8).await?;
    let base = |url: &str| url.rsplit_once('/').map(|(b, _)| b.to_string());
    for db in &dbs {
        assert_eq!(base(&db.url), base(&dbs[0].url));
        assert_eq!(psql(&db.url, "select current_database()").await?.len(), 34);
    }
    Ok(())
}

async fn futures_join(n: usize) -> anyhow::Result<Vec<desk_testkit::TestDatabase>> {
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..n {
        tasks.spawn(desk_testkit::postgres_database());
    }
    let mut dbs = Vec::new();
    while let Some(db) = tasks.join_next().await {
        dbs.push(db??);
    }
    Ok(dbs)
}

#[test]
fn sqlite_databases_are_fresh_files() -> anyhow::Result<()> {
    let db = desk_testkit::sqlite_database()?;
    assert_eq!(db.backend, Backend::Sqlite);
    assert!(db.url.starts_with("sqlite:///"), "{}", db.url);
    let path = db.sqlite_path().expect("sqlite");
    assert!(path.is_file());
    let other = desk_testkit::sqlite_database()?;
    assert_ne!(db.url, other.url);
    drop(db);
    assert!(!path.exists(), "Drop must remove the SQLite file");
    Ok(())
}

#[tokio::test]
async fn every_database_is_postgres_then_sqlite() -> anyhow::Result<()> {
    let dbs = desk_testkit::every_database().await?;
    let backends: Vec<Backend> = dbs.iter().map(|d| d.backend).collect();
    assert_eq!(backends, [Backend::Postgres, Backend::Sqlite]);
    Ok(())
}

#[tokio::test]
async fn an_own_cluster_is_durable_and_gone_when_dropped() -> anyhow::Result<()> {
    let cluster = desk_testkit::start_cluster(false).await?;
    let dir = cluster.dir().expect("own cluster").to_path_buf();
    let port = cluster.port;
    let url = cluster.create_database("bench").await?;
    assert_eq!(url, format!("postgres://postgres@127.0.0.1:{port}/bench"));
    assert_eq!(url, cluster.database_url("bench"));
    assert_eq!(psql(&url, "show synchronous_commit").await?, "on");
    assert_eq!(psql(&url, "show fsync").await?, "on");
    assert_eq!(psql(&url, "show max_connections").await?, "300");

    drop(cluster);
    assert!(!dir.exists(), "Drop must remove {}", dir.display());
    assert!(
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err(),
        "port {port} still accepts after Drop"
    );
    Ok(())
}

#[tokio::test]
async fn the_shared_cluster_is_tuned_for_tests() -> anyhow::Result<()> {
    if std::env::var("DATABASE_URL").is_ok_and(|u| u.starts_with("postgres")) {
        return Ok(()); // an external server: its settings are its own
    }
    let db = desk_testkit::postgres_database().await?;
    assert_eq!(psql(&db.url, "show fsync").await?, "off");
    assert_eq!(psql(&db.url, "show synchronous_commit").await?, "off");
    Ok(())
}
