//! Idempotency keys (ARCHITECTURE §11) on PostgreSQL and SQLite: replays, conflicts, the race of
//! two attempts with one key, keys that rolled back with their create, and the purge.

use anyhow::{Context as _, ensure};
use chrono::{Duration, Utc};
use desk_kit::{
    db::Db,
    idempotency::{Fingerprint, IdempotencyError, IdempotencyKeys, IdempotentCreate, Recorded},
};
use desk_testkit::{TestDatabase, every_database};
use sea_orm_migration::sea_orm::ConnectionTrait as _;
use uuid::Uuid;

const KEYS: IdempotencyKeys =
    IdempotencyKeys::new("kittest_idempotency_keys", "widget_id", "widget");

async fn keys_table(database: &TestDatabase) -> anyhow::Result<Db> {
    let db = Db::connect(&database.url, 4).await?;
    db.connection().execute(&KEYS.create_table()).await?;
    Ok(db)
}

fn fingerprint(body: &str) -> Fingerprint {
    Fingerprint::of_message(&body.to_owned())
}

fn create(subject: &str, key: &str, body: &str) -> anyhow::Result<IdempotentCreate> {
    IdempotentCreate::new("acme", subject, key, || fingerprint(body)).context("a key")
}

async fn record_and_commit(
    db: &Db,
    create: &IdempotentCreate,
    id: Uuid,
) -> anyhow::Result<Recorded> {
    let txn = db.begin_write().await?;
    let recorded = KEYS.record(&txn, create, id, Utc::now()).await?;
    txn.commit().await?;
    Ok(recorded)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_create_finds_the_first_result_and_another_body_is_a_conflict()
-> anyhow::Result<()> {
    for database in every_database().await? {
        let db = keys_table(&database).await?;
        let backend = database.backend;
        // given a create of ana's with key k-1 that made widget `first`
        let first = Uuid::now_v7();
        let original = create("ana", "k-1", "widget web-01")?;
        ensure!(record_and_commit(&db, &original, first).await? == Recorded::Saved);

        // when she retries it with the same body, it answers the first widget
        let retried = KEYS.earlier_result(db.connection(), &original).await?;
        ensure!(retried == Some(first), "{backend:?}: {retried:?}");

        // and the same key with another body is a conflict
        let other_body = create("ana", "k-1", "widget web-02")?;
        let conflict = KEYS.earlier_result(db.connection(), &other_body).await;
        ensure!(
            matches!(&conflict, Err(IdempotencyError::Conflict { key, .. }) if key == "k-1"),
            "{backend:?}: {conflict:?}"
        );

        // and the key is ana's: bob's k-1, and a new key of ana's, are new creates
        for new in [
            create("bob", "k-1", "widget web-01")?,
            create("ana", "k-2", "widget web-01")?,
        ] {
            let found = KEYS.earlier_result(db.connection(), &new).await?;
            ensure!(found.is_none(), "{backend:?}: {new:?} found {found:?}");
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_two_attempts_with_one_key_the_later_learns_the_earlier_committed() -> anyhow::Result<()>
{
    for database in every_database().await? {
        let db = keys_table(&database).await?;
        let backend = database.backend;
        let attempt = create("ana", "double-click", "widget web-01")?;
        // given the first attempt has recorded its key and not committed yet
        let first = Uuid::now_v7();
        let first_txn = db.begin_write().await?;
        ensure!(KEYS.record(&first_txn, &attempt, first, Utc::now()).await? == Recorded::Saved);

        // when a second attempt records the same key (it waits for the first to finish)
        let second = {
            let db = db.clone();
            let attempt = attempt.clone();
            tokio::spawn(async move {
                let txn = db.begin_write().await?;
                let recorded = KEYS
                    .record(&txn, &attempt, Uuid::now_v7(), Utc::now())
                    .await?;
                drop(txn);
                anyhow::Ok(recorded)
            })
        };
        first_txn.commit().await?;

        // then it learns the key is taken, and the first attempt's widget is the answer
        let recorded = second.await??;
        ensure!(
            recorded == Recorded::TakenConcurrently,
            "{backend:?}: {recorded:?}"
        );
        let answer = KEYS.earlier_result(db.connection(), &attempt).await?;
        ensure!(answer == Some(first), "{backend:?}: {answer:?}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_whose_create_rolled_back_is_free_again() -> anyhow::Result<()> {
    for database in every_database().await? {
        let db = keys_table(&database).await?;
        let backend = database.backend;
        let attempt = create("ana", "k-rollback", "widget web-01")?;
        // given a create that recorded its key and then failed
        let txn = db.begin_write().await?;
        KEYS.record(&txn, &attempt, Uuid::now_v7(), Utc::now())
            .await?;
        drop(txn);

        // then the key was never kept, and the retry creates
        let found = KEYS.earlier_result(db.connection(), &attempt).await?;
        ensure!(found.is_none(), "{backend:?}: {found:?}");
        ensure!(record_and_commit(&db, &attempt, Uuid::now_v7()).await? == Recorded::Saved);
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_purge_forgets_only_keys_older_than_its_cutoff() -> anyhow::Result<()> {
    for database in every_database().await? {
        let db = keys_table(&database).await?;
        let backend = database.backend;
        let now = Utc::now();
        // given a key from 49 hours ago and one from an hour ago
        let (old, recent) = (create("ana", "old", "a")?, create("ana", "recent", "b")?);
        let txn = db.begin_write().await?;
        KEYS.record(&txn, &old, Uuid::now_v7(), now - Duration::hours(49))
            .await?;
        KEYS.record(&txn, &recent, Uuid::now_v7(), now - Duration::hours(1))
            .await?;
        txn.commit().await?;

        // when keys older than the retention are purged
        let cutoff = now - Duration::hours(desk_kit::idempotency::KEY_RETENTION_HOURS);
        let removed = KEYS.purge(&db, cutoff).await?;

        // then only the old one is gone
        ensure!(removed == 1, "{backend:?}: removed {removed}");
        ensure!(KEYS.earlier_result(db.connection(), &old).await?.is_none());
        ensure!(
            KEYS.earlier_result(db.connection(), &recent)
                .await?
                .is_some()
        );
    }
    Ok(())
}
