//! The timer worker: every due timer row is a ticket whose clocks warn or breach now. The
//! worker takes a batch of them in one transaction (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so
//! replicas share the work without overlap), re-folds each ticket as of now, and commits the
//! new events, the clocks and the next timers together: a crash before the commit fires
//! nothing, after it everything, once. After a restart every overdue row is due at once.

use std::{sync::Arc, time::Duration};

use desk_kit::clock::SharedClock;
use tokio_util::sync::CancellationToken;

use super::clocks::Engine;
use crate::store::StoreError;

/// Rows per transaction: enough to drain a backlog fast, few enough to keep locks short.
const BATCH: u64 = 200;

pub struct TimerWorker {
    pub engine: Arc<Engine>,
    pub clock: SharedClock,
    /// How often due rows are looked for when none were found last time.
    pub poll: Duration,
}

impl TimerWorker {
    /// Fires what is due now; returns how many tickets it re-folded.
    pub async fn fire_due(&self) -> Result<usize, StoreError> {
        let store = &self.engine.store;
        let now = self.clock.now();
        let txn = store.begin().await?;
        let due = store.take_due_timers(&txn, now, BATCH).await?;
        let mut events = Vec::new();
        for (tenant, ticket_id) in &due {
            match store.ticket(&*txn, tenant, ticket_id).await? {
                Some(record) => events.extend(self.engine.refresh(&*txn, &record, now).await?),
                None => store.set_timer(&*txn, tenant, ticket_id, None).await?,
            }
        }
        if !events.is_empty() {
            store.publisher().stage_many(&txn, events, now).await?;
        }
        store.commit(txn).await?;
        Ok(due.len())
    }

    pub async fn run(self, shutdown: CancellationToken) {
        loop {
            let pause = match self.fire_due().await {
                Ok(n) if n as u64 >= BATCH => Duration::ZERO,
                Ok(_) => self.poll,
                Err(error) => {
                    tracing::warn!(error = %error, "sla timers failed; retrying");
                    self.poll * 5
                }
            };
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(pause) => {}
            }
        }
    }
}
