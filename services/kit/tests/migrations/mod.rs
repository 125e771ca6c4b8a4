//! Migrations run by several replicas at once take turns (`db::migrate_exclusively`).

use desk_kit::db::{Db, migrate_exclusively};
use desk_testkit::postgres_database;
use sea_orm_migration::{
    MigratorTrait as _,
    sea_orm::{ConnectionTrait as _, Statement},
};

use super::Migrator;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_starting_together_on_one_postgresql_database_all_migrate_it_once()
-> anyhow::Result<()> {
    // Given a fresh database and four replicas starting at the same moment, each with its pool,
    let database = postgres_database().await?;
    let mut starting = Vec::new();
    for _ in 0..4 {
        let url = database.url.clone();
        starting.push(tokio::spawn(async move {
            let db = Db::connect(&url, 4).await?;
            migrate_exclusively(&db, "kittest", || Migrator::up(db.connection(), None)).await?;
            anyhow::Ok(())
        }));
    }

    // when they all migrate, then every one succeeds,
    for replica in starting {
        replica.await??;
    }

    // and each migration is recorded once.
    let db = Db::connect(&database.url, 2).await?;
    let rows = db
        .connection()
        .query_all_raw(Statement::from_string(
            db.backend(),
            "SELECT version, COUNT(*) AS n FROM kittest_migrations GROUP BY version".to_owned(),
        ))
        .await?;
    assert_eq!(rows.len(), Migrator::migrations().len());
    for row in rows {
        assert_eq!(row.try_get::<i64>("", "n")?, 1);
    }
    Ok(())
}
