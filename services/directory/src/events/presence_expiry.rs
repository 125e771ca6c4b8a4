//! The worker that turns expired presences offline and publishes their `presence.changed`.
//!
//! Reads already show an expired presence as offline (the domain reads it as of the platform's
//! clock); this worker records it, so consumers of the events learn it too. Every replica runs
//! one. Each expiry is a conditional write over the version the worker read, in the same
//! transaction as its event: when two replicas (or an agent setting their presence) race, one
//! write wins and the others change nothing and publish nothing, so an expiry is published once.

use std::{sync::Arc, time::Duration};

use desk_kit::clock::SharedClock;
use tokio_util::sync::CancellationToken;

use super::{directory_actor, event_for};
use crate::{
    domain::{Fact, presence},
    store::{DirectoryStore, StoreResult},
};

/// How often expiries are looked for: presences turn offline within this of expiring.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(1);
/// Expired presences recorded per scan; a longer backlog is taken on the next tick.
const SWEEP_BATCH: u64 = 500;

pub struct PresenceExpiry {
    store: Arc<DirectoryStore>,
    region: String,
    clock: SharedClock,
}

impl PresenceExpiry {
    pub fn new(store: Arc<DirectoryStore>, region: String, clock: SharedClock) -> Self {
        Self {
            store,
            region,
            clock,
        }
    }

    /// Sweeps every [`SWEEP_INTERVAL`] until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut every = tokio::time::interval(SWEEP_INTERVAL);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = every.tick() => {}
                _ = shutdown.cancelled() => return,
            }
            match self.sweep().await {
                Ok(0) => {}
                Ok(expired) => tracing::debug!(expired, "presences expired"),
                Err(error) => {
                    tracing::warn!(error = %error, "presence expiry cannot record expiries")
                }
            }
        }
    }

    /// Records every presence due now (up to one batch); returns how many this replica recorded.
    pub async fn sweep(&self) -> StoreResult<usize> {
        let now = self.clock.now();
        let due = self
            .store
            .due_presences(self.store.db().connection(), now, SWEEP_BATCH)
            .await?;
        let actor = directory_actor();
        let mut recorded = 0;
        for stored in due {
            let Some(change) = presence::expire(&stored, now) else {
                continue;
            };
            let txn = self.store.begin().await?;
            if !self
                .store
                .write_presence(&txn, &change.presence, Some(stored.version))
                .await?
            {
                // Another replica recorded it, or the agent set a new presence: nothing to do.
                continue;
            }
            let event = event_for(
                &self.region,
                &stored.tenant_id,
                &Fact::PresenceChanged { change },
                &actor,
            );
            self.store.stage_many(&txn, vec![event], now).await?;
            self.store.commit(txn).await?;
            recorded += 1;
        }
        Ok(recorded)
    }
}
