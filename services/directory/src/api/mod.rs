//! The gRPC face of the directory. Every handler reads the same way: parse the request once into
//! checked domain values (wire problems become field violations), authorize the caller
//! ([`crate::domain::access`]), read what the rule needs and let the domain decide, write the
//! change with its events in one transaction, and reply.
//!
//! # Layout
//! - this module: [`DirectoryApi`] and what the areas share (ids, the skill catalog, writing
//!   facts as events, the hierarchy lock);
//! - one module per area: `people`, `teams` (teams and memberships), `presence` (presence and
//!   the skill catalog), `provisioning`;
//! - `service`: the `DirectoryService` trait on the wire, calling the areas;
//! - [`TeamIndex`] (`team_index`): every tenant's teams in memory, for `FindTeams`;
//! - [`convert`] (wire ⇄ domain), `error`.

pub mod convert;
mod error;
mod people;
mod presence;
mod provisioning;
mod service;
mod team_index;
mod teams;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use desk_kit::{auth::Caller, clock::SharedClock, db::WriteTxn, error::Classify, ids, paging};
use sea_orm::ConnectionTrait as _;
use serde::{Serialize, de::DeserializeOwned};
use tonic::{Response, Status};
use uuid::Uuid;

pub use error::{DirectoryError, DirectoryResult};
pub use team_index::TeamIndex;

use crate::{
    domain::{Fact, SkillCatalog, Violations},
    events::events_for,
    store::DirectoryStore,
};

/// The methods other services may call with a service token: reads only.
pub const OPEN_TO_SERVICES: &[&str] = &[
    "/desk.directory.v1.DirectoryService/GetPerson",
    "/desk.directory.v1.DirectoryService/ListPeople",
    "/desk.directory.v1.DirectoryService/GetManagerChain",
    "/desk.directory.v1.DirectoryService/GetTeam",
    "/desk.directory.v1.DirectoryService/ListTeams",
    "/desk.directory.v1.DirectoryService/FindTeams",
    "/desk.directory.v1.DirectoryService/ListTeamMembers",
    "/desk.directory.v1.DirectoryService/GetSkillCatalog",
];

/// Default and largest page of a list call.
const PAGE_DEFAULT: u64 = 50;
const PAGE_MAX: u64 = 500;

#[derive(Clone)]
pub struct DirectoryApi {
    store: Arc<DirectoryStore>,
    region: String,
    clock: SharedClock,
    /// What `FindTeams` answers from: this replica's writes and the followed team events.
    teams: Arc<TeamIndex>,
}

impl DirectoryApi {
    pub fn new(
        store: Arc<DirectoryStore>,
        region: String,
        clock: SharedClock,
        teams: Arc<TeamIndex>,
    ) -> Self {
        Self {
            store,
            region,
            clock,
            teams,
        }
    }

    pub fn region(&self) -> &str {
        &self.region
    }

    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// An id a request gives as a reference (`manager_id`): a violation unless it is an id of
    /// this region; `None` for an empty one.
    fn reference(&self, field: &str, text: &str, violations: &mut Violations) -> Option<Uuid> {
        if text.is_empty() {
            return None;
        }
        match ids::parse_id(text) {
            Some(parsed) if parsed.region == self.region => Some(parsed.uuid),
            Some(_) => {
                violations.push(field, "an id of another region");
                None
            }
            None => {
                violations.push(field, "not an id");
                None
            }
        }
    }

    /// The id of the object a call acts on: anything but an id of this region is `NOT_FOUND`.
    fn target(&self, text: &str, what: &'static str) -> DirectoryResult<Uuid> {
        ids::parse_id(text)
            .filter(|parsed| parsed.region == self.region)
            .map(|parsed| parsed.uuid)
            .ok_or(DirectoryError::NotFound(what))
    }

    fn format(&self, id: Uuid) -> String {
        ids::format_id(&self.region, id)
    }

    async fn catalog(&self, tenant: &str) -> DirectoryResult<SkillCatalog> {
        Ok(self
            .store
            .skill_catalog(self.store.db().connection(), tenant)
            .await?)
    }

    /// Stages the events of `facts` by `caller` in `txn`.
    async fn publish(
        &self,
        txn: &WriteTxn,
        caller: &Caller,
        facts: &[Fact],
        now: DateTime<Utc>,
    ) -> DirectoryResult<()> {
        let events = events_for(&self.region, &caller.tenant, facts, &caller.actor());
        Ok(self.store.stage_many(txn, events, now).await?)
    }

    /// Takes the tenant's hierarchy lock for the rest of `txn`: a write that checks a manager
    /// chain or team hierarchy for cycles reads the links and writes its own under it, so two
    /// writes each fine alone cannot close a cycle together. SQLite has one writer at a time
    /// already.
    async fn lock_hierarchy(&self, txn: &WriteTxn, tenant: &str) -> DirectoryResult<()> {
        if !self.store.db().is_postgres() {
            return Ok(());
        }
        let key = ids::stable_hash(format!("desk-directory-hierarchy-{tenant}").as_bytes()) as i64;
        txn.execute_raw(sea_orm::Statement::from_sql_and_values(
            sea_orm::DbBackend::Postgres,
            "SELECT pg_advisory_xact_lock($1)",
            [key.into()],
        ))
        .await?;
        Ok(())
    }
}

/// The page size and the cursor a list request asks for.
fn page<C: DeserializeOwned>(
    page_size: i32,
    token: &str,
    violations: &mut Violations,
) -> (u64, Option<C>) {
    let size = paging::page_size(page_size, PAGE_DEFAULT, PAGE_MAX);
    if token.is_empty() {
        return (size, None);
    }
    match paging::decode_cursor(token) {
        Some(cursor) => (size, Some(cursor)),
        None => {
            violations.push("page_token", "not a page token of this list");
            (size, None)
        }
    }
}

/// Cuts `rows` (fetched with one more than `size`) to a page and the token of the next one.
fn next_page<T, C: Serialize>(
    mut rows: Vec<T>,
    size: u64,
    cursor: impl Fn(&T) -> C,
) -> (Vec<T>, String) {
    let size = usize::try_from(size).unwrap_or(usize::MAX);
    if rows.len() <= size {
        return (rows, String::new());
    }
    rows.truncate(size);
    let token = rows
        .last()
        .map(|last| paging::encode_cursor(&cursor(last)))
        .unwrap_or_default();
    (rows, token)
}

/// Authorization is decided before the request's problems are told: a refused caller learns
/// nothing of them.
fn refuse_first(
    authorized: Result<(), crate::domain::AccessDenied>,
    violations: Violations,
) -> DirectoryResult<()> {
    authorized?;
    Ok(violations.into_result()?)
}

fn reply<T>(result: DirectoryResult<T>) -> Result<Response<T>, Status> {
    result.map(Response::new).map_err(Classify::into_status)
}
