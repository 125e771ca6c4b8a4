//! A service's write path: a transaction, the events staged in it, and a commit that wakes the
//! relay. Every service's store holds one, so "state and event commit together" is written once.

use chrono::{DateTime, Utc};
use sea_orm::DbErr;

use super::{Outbox, OutgoingEvent, RelayHandle};
use crate::db::{Db, WriteTxn};

#[derive(Debug, Clone)]
pub struct Publisher {
    db: Db,
    outbox: Outbox,
    relay: RelayHandle,
}

impl Publisher {
    pub fn new(db: Db, outbox: Outbox, relay: RelayHandle) -> Self {
        Self { db, outbox, relay }
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    pub fn outbox(&self) -> &Outbox {
        &self.outbox
    }

    pub async fn begin(&self) -> Result<WriteTxn, DbErr> {
        self.db.begin_write().await
    }

    /// Stages `event` in `txn`: it is published only if `txn` commits.
    pub async fn stage(
        &self,
        txn: &WriteTxn,
        event: OutgoingEvent,
        now: DateTime<Utc>,
    ) -> Result<(), DbErr> {
        self.outbox.stage(&**txn, event, now).await.map(|_| ())
    }

    /// Stages `events` in `txn`, in order, a few hundred per statement.
    pub async fn stage_many(
        &self,
        txn: &WriteTxn,
        events: Vec<OutgoingEvent>,
        now: DateTime<Utc>,
    ) -> Result<(), DbErr> {
        self.outbox
            .stage_many(&**txn, events, now)
            .await
            .map(|_| ())
    }

    /// Commits the change and its events together, then wakes the relay to publish them.
    pub async fn commit(&self, txn: WriteTxn) -> Result<(), DbErr> {
        txn.commit().await?;
        self.relay.wake();
        Ok(())
    }
}
