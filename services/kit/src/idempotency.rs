//! Idempotent creates (ARCHITECTURE §11, contract): a create retried with the same idempotency
//! key and the same body answers the first result instead of making a second object; the same key
//! with another body is refused with `ALREADY_EXISTS`.
//!
//! Each service keeps its own table of keys ([`IdempotencyKeys`]: `(tenant_id, subject, key)`
//! primary key, `request_hash`, the id of what the create made, `created_at`), and one create
//! goes like this:
//!
//! ```ignore
//! let create = IdempotentCreate::new(&caller.tenant, &caller.subject, &request.idempotency_key, || {
//!     let mut body = request.clone();
//!     body.idempotency_key.clear();
//!     Fingerprint::of_message(&body)
//! });
//! // before anything is written: a retry answers the first result
//! if let Some(create) = &create && let Some(id) = KEYS.earlier_result(conn, create).await? {
//!     return load(id);
//! }
//! let txn = store.begin().await?;
//! // ... write the object ...
//! if let Some(create) = &create
//!     && KEYS.record(&txn, create, object.id, now).await? == Recorded::TakenConcurrently
//! {
//!     drop(txn); // a concurrent attempt with this key committed first: answer with its result
//!     return load(KEYS.earlier_result(conn, create).await?.ok_or(NotFound)?);
//! }
//! store.commit(txn).await?;
//! ```
//!
//! Keys are kept [`KEY_RETENTION_HOURS`] (the contract asks at least 24 hours) and purged by
//! [`IdempotencyKeys::purge_periodically`].

use std::{collections::BTreeMap, fmt, time::Duration};

use chrono::{DateTime, Utc};
use sea_orm::{
    ConnectionTrait, DbErr,
    sea_query::{Alias, Expr, ExprTrait, Query, Table, TableCreateStatement},
};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::{
    clock::SharedClock,
    db::{Db, WriteTxn, is_unique_violation},
    error::{ApiError, Classify, classify_db_error},
};

/// How long a key is remembered; the contract asks for at least 24 hours.
pub const KEY_RETENTION_HOURS: i64 = 48;

/// How often [`IdempotencyKeys::purge_periodically`] forgets keys older than the retention.
const PURGE_INTERVAL: Duration = Duration::from_secs(3600);

/// What a create's body hashes to: SHA-256 as 64 lower-case hex digits. Two bodies that differ
/// never share one in practice (a 64-bit hash could, and would answer with someone else's object).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Fingerprint(String);

impl Fingerprint {
    /// The fingerprint of one message's protobuf encoding. Clear the idempotency key first; for a
    /// message with `map` fields, use [`FingerprintHasher`] with the maps taken out (prost
    /// encodes a map in its iteration order, which differs between two equal `HashMap`s).
    pub fn of_message(message: &impl prost::Message) -> Fingerprint {
        let mut hasher = FingerprintHasher::new();
        hasher.message(message);
        hasher.finish()
    }

    /// The 64 hex digits, as stored in `request_hash`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Builds a [`Fingerprint`] from parts: messages, and map fields in key order. Each part is
/// tagged and length-prefixed, so two different sequences of parts never hash alike.
#[derive(Debug, Clone, Default)]
pub struct FingerprintHasher {
    sha256: Sha256,
}

impl FingerprintHasher {
    pub fn new() -> FingerprintHasher {
        FingerprintHasher::default()
    }

    /// A message's protobuf encoding (deterministic for messages without map fields).
    pub fn message(&mut self, message: &impl prost::Message) -> &mut FingerprintHasher {
        self.part(b'M', &message.encode_to_vec());
        self
    }

    /// A map field, entry by entry in key order, whatever order its map iterates in.
    pub fn map<'a, V: prost::Message + 'a>(
        &mut self,
        entries: impl IntoIterator<Item = (&'a String, &'a V)>,
    ) -> &mut FingerprintHasher {
        let sorted: BTreeMap<&String, &V> = entries.into_iter().collect();
        self.part(b'{', &(sorted.len() as u64).to_le_bytes());
        for (key, value) in sorted {
            self.part(b'K', key.as_bytes());
            self.part(b'V', &value.encode_to_vec());
        }
        self
    }

    pub fn finish(&self) -> Fingerprint {
        let digest = self.sha256.clone().finalize();
        let mut hex = String::with_capacity(64);
        for byte in digest {
            hex.push(char::from(HEX[usize::from(byte >> 4)]));
            hex.push(char::from(HEX[usize::from(byte & 0x0f)]));
        }
        Fingerprint(hex)
    }

    fn part(&mut self, tag: u8, bytes: &[u8]) {
        self.sha256.update([tag]);
        self.sha256.update((bytes.len() as u64).to_le_bytes());
        self.sha256.update(bytes);
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// One create call that carries an idempotency key, scoped to its caller: two callers may use the
/// same key without meeting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotentCreate {
    pub tenant: String,
    pub subject: String,
    pub key: String,
    pub fingerprint: Fingerprint,
}

impl IdempotentCreate {
    /// `None` when `key` is empty: a create without a key is never replayed. `fingerprint` runs
    /// only when there is a key.
    pub fn new(
        tenant: &str,
        subject: &str,
        key: &str,
        fingerprint: impl FnOnce() -> Fingerprint,
    ) -> Option<IdempotentCreate> {
        (!key.is_empty()).then(|| IdempotentCreate {
            tenant: tenant.to_owned(),
            subject: subject.to_owned(),
            key: key.to_owned(),
            fingerprint: fingerprint(),
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum IdempotencyError {
    /// The key was used before with another body: the kit's conflict class, `ALREADY_EXISTS`.
    #[error(
        "idempotency key {key:?} was already used for another request; use a new key for a new {noun}"
    )]
    Conflict { key: String, noun: &'static str },
    #[error(transparent)]
    Db(#[from] DbErr),
}

impl Classify for IdempotencyError {
    fn classify(&self) -> ApiError {
        match self {
            IdempotencyError::Conflict { .. } => ApiError::AlreadyExists(self.to_string()),
            IdempotencyError::Db(error) => classify_db_error(error),
        }
    }
}

/// Whether [`IdempotencyKeys::record`] kept the key for this create.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    Saved,
    /// A concurrent attempt with the same key committed first. On PostgreSQL the failed insert
    /// aborted the transaction: drop it and answer with [`IdempotencyKeys::earlier_result`].
    TakenConcurrently,
}

/// A service's table of idempotency keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdempotencyKeys {
    table: &'static str,
    result_column: &'static str,
    noun: &'static str,
}

impl IdempotencyKeys {
    /// The keys in `table`, whose `result_column` (a UUID) holds the id of what each create made;
    /// `noun` names that object in the conflict message (`ticket`, `CI`).
    pub const fn new(
        table: &'static str,
        result_column: &'static str,
        noun: &'static str,
    ) -> IdempotencyKeys {
        IdempotencyKeys {
            table,
            result_column,
            noun,
        }
    }

    pub fn table(&self) -> &'static str {
        self.table
    }

    /// The table, for a new service's migration (`manager.create_table(KEYS.create_table())`).
    pub fn create_table(&self) -> TableCreateStatement {
        use crate::schema::{primary_key, text, time, uuid};
        Table::create()
            .table(Alias::new(self.table))
            .if_not_exists()
            .col(text("tenant_id"))
            .col(text("subject"))
            .col(text("key"))
            .col(text("request_hash"))
            .col(uuid(self.result_column))
            .col(time("created_at"))
            .primary_key(&mut primary_key(&["tenant_id", "subject", "key"]))
            .to_owned()
    }

    /// The id an earlier create with this key made, when its body was the same; `None` for a new
    /// key; [`IdempotencyError::Conflict`] when the key was used for another body.
    pub async fn earlier_result<C: ConnectionTrait>(
        &self,
        conn: &C,
        create: &IdempotentCreate,
    ) -> Result<Option<Uuid>, IdempotencyError> {
        let select = Query::select()
            .columns(["request_hash", self.result_column].map(Alias::new))
            .from(Alias::new(self.table))
            .and_where(Expr::col(Alias::new("tenant_id")).eq(create.tenant.as_str()))
            .and_where(Expr::col(Alias::new("subject")).eq(create.subject.as_str()))
            .and_where(Expr::col(Alias::new("key")).eq(create.key.as_str()))
            .to_owned();
        let Some(row) = conn.query_one(&select).await? else {
            return Ok(None);
        };
        let request_hash: String = row.try_get("", "request_hash")?;
        if request_hash != create.fingerprint.as_str() {
            return Err(IdempotencyError::Conflict {
                key: create.key.clone(),
                noun: self.noun,
            });
        }
        Ok(Some(row.try_get("", self.result_column)?))
    }

    /// Keeps the key with the id of what this create made, inside the create's own transaction,
    /// so the key exists exactly when the object does.
    pub async fn record(
        &self,
        txn: &WriteTxn,
        create: &IdempotentCreate,
        result: Uuid,
        at: DateTime<Utc>,
    ) -> Result<Recorded, DbErr> {
        let insert = Query::insert()
            .into_table(Alias::new(self.table))
            .columns(
                [
                    "tenant_id",
                    "subject",
                    "key",
                    "request_hash",
                    self.result_column,
                    "created_at",
                ]
                .map(Alias::new),
            )
            .values([
                Expr::value(create.tenant.clone()),
                Expr::value(create.subject.clone()),
                Expr::value(create.key.clone()),
                Expr::value(create.fingerprint.as_str().to_owned()),
                Expr::value(result),
                Expr::value(at),
            ])
            .map_err(|e| DbErr::Custom(e.to_string()))?
            .to_owned();
        match txn.execute(&insert).await {
            Ok(_) => Ok(Recorded::Saved),
            Err(error) if is_unique_violation(&error) => Ok(Recorded::TakenConcurrently),
            Err(error) => Err(error),
        }
    }

    /// Forgets the keys recorded before `older_than`; returns how many.
    pub async fn purge(&self, db: &Db, older_than: DateTime<Utc>) -> Result<u64, DbErr> {
        let delete = Query::delete()
            .from_table(Alias::new(self.table))
            .and_where(Expr::col(Alias::new("created_at")).lt(older_than))
            .to_owned();
        let txn = db.begin_write().await?;
        let result = txn.execute(&delete).await?;
        txn.commit().await?;
        Ok(result.rows_affected())
    }

    /// The worker that purges keys older than [`KEY_RETENTION_HOURS`]: at start, then hourly,
    /// until `shutdown`. Several replicas may run it; each delete is idempotent.
    pub async fn purge_periodically(self, db: Db, clock: SharedClock, shutdown: CancellationToken) {
        let mut every_hour = tokio::time::interval(PURGE_INTERVAL);
        every_hour.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = every_hour.tick() => {}
                _ = shutdown.cancelled() => return,
            }
            let older_than = clock.now() - chrono::Duration::hours(KEY_RETENTION_HOURS);
            match self.purge(&db, older_than).await {
                Ok(0) => {}
                Ok(removed) => {
                    tracing::info!(table = self.table, removed, "idempotency keys purged");
                }
                Err(error) => {
                    tracing::warn!(error = %error, table = self.table, "idempotency key purge failed");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    /// A made-up request: a field, a map and a key, as create requests have them.
    #[derive(Clone, PartialEq, prost::Message)]
    struct CreateWidget {
        #[prost(string, tag = "1")]
        name: String,
        #[prost(map = "string, string", tag = "2")]
        labels: HashMap<String, String>,
        #[prost(string, tag = "3")]
        idempotency_key: String,
    }

    fn fingerprint(request: &CreateWidget) -> Fingerprint {
        let mut body = request.clone();
        body.idempotency_key.clear();
        let labels = std::mem::take(&mut body.labels);
        let mut hasher = FingerprintHasher::new();
        hasher.message(&body).map(&labels);
        hasher.finish()
    }

    fn widget(name: &str, labels: &[(&str, &str)], key: &str) -> CreateWidget {
        CreateWidget {
            name: name.into(),
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            idempotency_key: key.into(),
        }
    }

    #[test]
    fn a_fingerprint_is_the_sha256_of_the_encoding_in_64_hex_digits() {
        // SHA-256 of a tag, a length and no bytes: fixed, so stored hashes stay comparable.
        let empty = Fingerprint::of_message(&CreateWidget::default());
        assert_eq!(empty.as_str().len(), 64);
        assert!(
            empty
                .as_str()
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        );
        let mut expected = Sha256::new();
        expected.update([b'M']);
        expected.update(0u64.to_le_bytes());
        let expected: String = expected
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(empty.as_str(), expected);
    }

    #[test]
    fn the_same_body_under_another_key_has_the_same_fingerprint() {
        let labels = [("site", "ams"), ("rack", "r12"), ("row", "4"), ("pdu", "b")];
        assert_eq!(
            fingerprint(&widget("web-01", &labels, "first-key")),
            fingerprint(&widget("web-01", &labels, "second-key"))
        );
    }

    #[test]
    fn maps_fingerprint_alike_whatever_order_they_iterate_in() {
        // given many equal maps, each built in another insertion order (and with its own hasher seed)
        let labels: Vec<(String, String)> = (0..32)
            .map(|i| (format!("label-{i}"), format!("value-{i}")))
            .collect();
        let fingerprints: std::collections::HashSet<Fingerprint> = (0..16)
            .map(|rotation| {
                let mut rotated = labels.clone();
                rotated.rotate_left(rotation);
                let map: HashMap<String, String> = rotated.into_iter().collect();
                fingerprint(&CreateWidget {
                    name: "web-01".into(),
                    labels: map,
                    idempotency_key: "k".into(),
                })
            })
            .collect();
        assert_eq!(fingerprints.len(), 1);
    }

    #[test]
    fn another_body_has_another_fingerprint() {
        let base = fingerprint(&widget("web-01", &[("site", "ams")], "k"));
        for other in [
            widget("web-02", &[("site", "ams")], "k"),
            widget("web-01", &[("site", "fra")], "k"),
            widget("web-01", &[("sit", "eams")], "k"),
            widget("web-01", &[], "k"),
            widget("web-01", &[("site", "ams"), ("rack", "1")], "k"),
        ] {
            assert_ne!(fingerprint(&other), base, "{other:?}");
        }
    }

    #[test]
    fn a_create_without_a_key_is_never_replayed() {
        let mut hashed = false;
        assert!(
            IdempotentCreate::new("acme", "ana", "", || {
                hashed = true;
                Fingerprint::of_message(&CreateWidget::default())
            })
            .is_none()
        );
        assert!(!hashed, "no key, no hashing");
    }

    #[test]
    fn a_conflict_is_already_exists_and_says_what_to_do() {
        let error = IdempotencyError::Conflict {
            key: "k-1".into(),
            noun: "widget",
        };
        let api = error.classify();
        assert_eq!(api.code(), tonic::Code::AlreadyExists);
        assert!(error.to_string().contains("use a new key for a new widget"));
    }
}
