//! Database connections for PostgreSQL (production) and SQLite (monolithic mode), and write
//! transactions that behave the same on both.
//!
//! SQLite allows one writer at a time and reports a deadlock (not a wait) when two deferred
//! transactions both try to upgrade to writers, so on SQLite [`Db::begin_write`] serializes writers
//! in-process; readers still run concurrently under WAL. PostgreSQL needs no such lock.

use std::{sync::Arc, time::Duration};

use sea_orm::{
    ConnectOptions, ConnectionTrait as _, Database, DatabaseConnection, DatabaseTransaction,
    DbBackend, DbErr, TransactionTrait,
};
use tokio::sync::{Mutex, OwnedMutexGuard};

/// A connection pool plus what it takes to write safely on its backend. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Db {
    connection: DatabaseConnection,
    /// `Some` on SQLite only: one writer at a time.
    sqlite_writer: Option<Arc<Mutex<()>>>,
}

/// A write transaction; holds the SQLite writer lock until it commits or drops (rollback).
pub struct WriteTxn {
    transaction: DatabaseTransaction,
    _writer: Option<OwnedMutexGuard<()>>,
}

impl std::ops::Deref for WriteTxn {
    type Target = DatabaseTransaction;
    fn deref(&self) -> &DatabaseTransaction {
        &self.transaction
    }
}

impl WriteTxn {
    pub async fn commit(self) -> Result<(), DbErr> {
        self.transaction.commit().await
    }
}

impl Db {
    /// Connects; a SQLite file (and its folder) is created when missing.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Db, DbErr> {
        let sqlite = url.starts_with("sqlite:");
        if sqlite {
            create_sqlite_folder(url);
        }
        let mut options = ConnectOptions::new(url.to_owned());
        options
            .max_connections(if sqlite {
                max_connections.clamp(1, 8)
            } else {
                max_connections
            })
            .min_connections(1)
            .connect_timeout(Duration::from_secs(10))
            .acquire_timeout(Duration::from_secs(10))
            // Pinging every connection taken from the pool (the default) doubles the round trips
            // of a one-query read; only a connection idle long enough for a server, proxy or
            // firewall to have dropped it is pinged first.
            .test_before_acquire_if_idle_for(Duration::from_secs(30))
            .sqlx_logging(false);
        if sqlite {
            // WAL lets readers run beside the writer; NORMAL sync is durable across process crashes in WAL mode.
            options.map_sqlx_sqlite_opts(|o| {
                o.pragma("journal_mode", "WAL")
                    .pragma("synchronous", "NORMAL")
                    .pragma("foreign_keys", "ON")
                    .busy_timeout(Duration::from_secs(10))
            });
        }
        let connection = Database::connect(options).await?;
        Ok(Db {
            connection,
            sqlite_writer: sqlite.then(|| Arc::new(Mutex::new(()))),
        })
    }

    pub fn connection(&self) -> &DatabaseConnection {
        &self.connection
    }

    pub fn backend(&self) -> DbBackend {
        self.connection.get_database_backend()
    }

    pub fn is_postgres(&self) -> bool {
        self.backend() == DbBackend::Postgres
    }

    /// Begins a transaction that will write.
    pub async fn begin_write(&self) -> Result<WriteTxn, DbErr> {
        let writer = match &self.sqlite_writer {
            Some(lock) => Some(lock.clone().lock_owned().await),
            None => None,
        };
        let transaction = self.connection.begin().await?;
        Ok(WriteTxn {
            transaction,
            _writer: writer,
        })
    }

    /// A cheap round trip, for readiness.
    pub async fn ping(&self) -> Result<(), DbErr> {
        self.connection.ping().await
    }
}

fn create_sqlite_folder(url: &str) {
    let path = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    let path = path.split('?').next().unwrap_or_default();
    if let Some(parent) = std::path::Path::new(path).parent()
        && !parent.as_os_str().is_empty()
    {
        let _ = std::fs::create_dir_all(parent);
    }
}

/// Runs `migrate` while no other process migrates the same PostgreSQL database under `name`:
/// replicas of a service started together (a Helm rollout) would otherwise race on the same
/// `CREATE TABLE`s and migration rows, and all but one fail at start. The lock is a
/// transaction-scoped advisory lock held by a transaction that does nothing else, so it is
/// released when that ends, crash included. SQLite serves one process: nothing to exclude.
pub async fn migrate_exclusively<F, Fut>(db: &Db, name: &str, migrate: F) -> Result<(), DbErr>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<(), DbErr>>,
{
    if !db.is_postgres() {
        return migrate().await;
    }
    let holder = db.connection().begin().await?;
    holder
        .execute_raw(sea_orm::Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT pg_advisory_xact_lock($1)",
            [(crate::ids::stable_hash(format!("desk-migrate-{name}").as_bytes()) as i64).into()],
        ))
        .await?;
    let migrated = migrate().await;
    holder.commit().await?;
    migrated
}

/// True when the error is a unique-constraint violation (on either backend).
pub fn is_unique_violation(error: &DbErr) -> bool {
    matches!(
        error.sql_err(),
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
    )
}
