//! Persistence of the directory: people, teams and their skills, memberships, presence, skill
//! catalogs and provisioning batches. Every query is scoped by tenant, except the presence
//! expiry scan, which serves every tenant and writes each row in its own tenant.
//!
//! # Layout
//! - this module: [`DirectoryStore`] (the write path through the outbox), errors, shared helpers;
//! - [`people`], [`teams`] (teams, their skills and memberships), [`presence`] (presence,
//!   catalogs, provisioning batches): queries and the conversions between rows and domain values;
//! - [`entities`], [`migrations`].

pub mod entities;
pub mod migrations;
mod people;
mod presence;
mod teams;

use chrono::{DateTime, Utc};
use desk_kit::{
    db::{Db, WriteTxn},
    events::{OutgoingEvent, Publisher},
    idempotency::IdempotencyKeys,
};
use sea_orm::DbErr;

pub use people::{PeopleFilter, PersonCursor, PersonKey, PersonWithDetails};
pub use presence::StoredBatch;
pub use teams::{TeamCursor, TeamFilter};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Db(#[from] DbErr),
    /// A row holds a value the domain does not know: a bug or a manual edit, never user input.
    #[error("corrupt row: {0}")]
    Corrupt(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Create keys of `CreatePerson` and `CreateTeam`, kept 48 hours: a retried create with the same
/// key and body answers the first result.
pub const IDEMPOTENCY_KEYS: IdempotencyKeys =
    IdempotencyKeys::new("directory_idempotency_keys", "result_id", "person or team");

/// Values per `IN (…)` list: well under SQLite's and PostgreSQL's limits on bound parameters.
const LOOKUP_CHUNK: usize = 500;
/// Rows per multi-row `INSERT`: at most 22 columns × 200 rows of bound parameters, under
/// SQLite's limit of 32,766 and PostgreSQL's of 65,535.
const WRITE_CHUNK: usize = 200;

fn corrupt(error: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(error.to_string())
}

/// `%text%` for a `LIKE … ESCAPE '\'`, lower-cased.
fn like_pattern(text: &str) -> String {
    format!(
        "%{}%",
        text.to_lowercase()
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    )
}

pub struct DirectoryStore {
    publisher: Publisher,
}

impl DirectoryStore {
    pub fn new(publisher: Publisher) -> Self {
        Self { publisher }
    }

    pub fn db(&self) -> &Db {
        self.publisher.db()
    }

    pub async fn begin(&self) -> StoreResult<WriteTxn> {
        Ok(self.publisher.begin().await?)
    }

    pub async fn commit(&self, txn: WriteTxn) -> StoreResult<()> {
        Ok(self.publisher.commit(txn).await?)
    }

    /// Stages `events` in order in `txn`: published only if it commits.
    pub async fn stage_many(
        &self,
        txn: &WriteTxn,
        events: Vec<OutgoingEvent>,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        if events.is_empty() {
            return Ok(());
        }
        Ok(self.publisher.stage_many(txn, events, now).await?)
    }
}
