//! The inbox (ARCHITECTURE §5, contract): the ids of the events a consumer has applied, written in
//! the same transaction as the effect, so a redelivered event is recognised and has no second
//! effect. Each consuming service owns its `<service>_inbox` table; rows are keyed by
//! `(consumer, event_id)` and purged after `consumer.inbox_retention_hours`.
//!
//! The consumer that reads events and applies them is [`super::consumer`].

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use sea_orm::{
    ConnectionTrait, DbErr,
    sea_query::{Alias, Expr, ExprTrait, Query},
};
use uuid::Uuid;

use super::migrations::inbox_table;

/// Rows per multi-row insert or `IN` list: far below either backend's bound-parameter limit.
const CHUNK: usize = 500;

/// One consumer's view of its service's inbox table.
#[derive(Debug, Clone)]
pub struct Inbox {
    table: String,
    consumer: String,
}

impl Inbox {
    /// The inbox of `consumer` in the table of `service` (the consuming service).
    pub fn new(service: &str, consumer: impl Into<String>) -> Self {
        Self {
            table: inbox_table(service),
            consumer: consumer.into(),
        }
    }

    pub fn consumer(&self) -> &str {
        &self.consumer
    }

    /// Which of `ids` this consumer has already applied.
    pub async fn already_applied<C: ConnectionTrait>(
        &self,
        conn: &C,
        ids: &[Uuid],
    ) -> Result<HashSet<Uuid>, DbErr> {
        let mut seen = HashSet::new();
        for chunk in ids.chunks(CHUNK) {
            let select = Query::select()
                .column(Alias::new("event_id"))
                .from(Alias::new(&self.table))
                .and_where(Expr::col(Alias::new("consumer")).eq(self.consumer.as_str()))
                .and_where(Expr::col(Alias::new("event_id")).is_in(chunk.iter().copied()))
                .to_owned();
            for row in conn.query_all(&select).await? {
                seen.insert(row.try_get::<Uuid>("", "event_id")?);
            }
        }
        Ok(seen)
    }

    /// Records `ids` as applied at `now`, in the caller's transaction.
    pub async fn record<C: ConnectionTrait>(
        &self,
        conn: &C,
        ids: &[Uuid],
        now: DateTime<Utc>,
    ) -> Result<(), DbErr> {
        for chunk in ids.chunks(CHUNK) {
            let mut insert = Query::insert();
            insert
                .into_table(Alias::new(&self.table))
                .columns(["consumer", "event_id", "processed_at"].map(Alias::new));
            for id in chunk {
                insert
                    .values([
                        Expr::value(self.consumer.clone()),
                        Expr::value(*id),
                        Expr::value(now),
                    ])
                    .map_err(|e| DbErr::Custom(e.to_string()))?;
            }
            conn.execute(&insert).await?;
        }
        Ok(())
    }

    /// Removes this consumer's rows applied before `cutoff`; returns how many.
    pub async fn purge<C: ConnectionTrait>(
        &self,
        conn: &C,
        cutoff: DateTime<Utc>,
    ) -> Result<u64, DbErr> {
        let delete = Query::delete()
            .from_table(Alias::new(&self.table))
            .and_where(Expr::col(Alias::new("consumer")).eq(self.consumer.as_str()))
            .and_where(Expr::col(Alias::new("processed_at")).lt(cutoff))
            .to_owned();
        Ok(conn.execute(&delete).await?.rows_affected())
    }
}
