//! The gRPC face of the CMDB. Every handler reads the same way: parse the request once into a
//! typed domain command (wire problems become field violations), authorize the caller
//! ([`crate::domain::access`]), let the domain decide what changes and what it publishes, write
//! that with its history and events in one transaction, and reply — then bring this replica's
//! memory up to date (the impact index after every committed write, the caches of classes and
//! precedence).
//!
//! # Layout
//!
//! - this module: [`CmdbApi`] and what the areas share (caches, id parsing, writing
//!   one CI with its history and event, the impact index update);
//! - one module per area: `classes`, `cis`, `relationships`, `impact`, `imports`, `precedence`;
//! - `service`: the `CmdbService` trait on the wire, calling the areas;
//! - infrastructure: [`index`] (per-tenant impact snapshots), `tenant_cache` (catalog and
//!   precedence caches with generations), `impact_answer` (answers written in wire format),
//!   `lookup` (the store answering the reconciler), [`convert`] (wire ⇄ domain), `error`.

mod cis;
mod classes;
pub mod convert;
mod error;
mod impact;
mod impact_answer;
mod import_wire;
mod imports;
pub mod index;
mod lookup;
mod precedence;
mod relationships;
mod service;
mod tenant_cache;

use std::sync::Arc;

use base64::{Engine as _, engine::general_purpose::STANDARD as B64};
use chrono::{DateTime, Utc};
use desk_kit::{
    auth::Caller, clock::SharedClock, db::WriteTxn, error::Classify, events::OutgoingEvent, ids,
};
use desk_proto::{cmdb::v1 as pb, common::v1 as common};
use prost::Message as _;
use tonic::{Response, Status};
use uuid::Uuid;

pub use error::CmdbError;
pub use impact_answer::{AnswerError, encode_impact_answer, encode_impact_answer_within};
pub use index::{ImpactIndex, IndexChange, Origin};
use tenant_cache::TenantCache;

use crate::{
    domain::{
        self as d, Ci, CiStatus, CiWrite, ClassCatalog, SourcePrecedence, Violations,
        impact::ImpactNode,
    },
    events::Fact,
    store::CmdbStore,
};

type CmdbResult<T> = Result<T, CmdbError>;

/// Largest impact query the service answers; callers may ask for less and see the limits used.
pub use crate::domain::impact::{MAX_DEPTH, MAX_NODES};

#[derive(Clone)]
pub struct CmdbApi {
    store: Arc<CmdbStore>,
    region: String,
    clock: SharedClock,
    /// Every tenant's impact graph: this replica's writes apply at once, other replicas' arrive
    /// as events (`events::replica`).
    index: Arc<ImpactIndex>,
    catalogs: Arc<TenantCache<ClassCatalog>>,
    precedences: Arc<TenantCache<SourcePrecedence>>,
    /// The largest answer the service may send (its gRPC encoding limit).
    answer_limit_bytes: usize,
}

impl CmdbApi {
    pub fn new(
        store: Arc<CmdbStore>,
        region: String,
        clock: SharedClock,
        index: Arc<ImpactIndex>,
        answer_limit_bytes: usize,
    ) -> Self {
        Self {
            store,
            region,
            clock,
            index,
            catalogs: Arc::default(),
            precedences: Arc::default(),
            answer_limit_bytes,
        }
    }

    pub fn region(&self) -> &str {
        &self.region
    }

    pub fn index(&self) -> &ImpactIndex {
        &self.index
    }

    /// Another replica changed the tenant's classes: the next read loads them again.
    pub fn forget_catalog(&self, tenant: &str) {
        self.catalogs.invalidate(tenant);
    }

    /// Another replica changed the tenant's source precedence: the next read loads it again.
    pub fn forget_precedence(&self, tenant: &str) {
        self.precedences.invalidate(tenant);
    }

    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// The tenant's classes: built-in plus its own, cached after the first read.
    pub async fn catalog(&self, tenant: &str) -> CmdbResult<Arc<ClassCatalog>> {
        let generation = match self.catalogs.get(tenant) {
            Ok(catalog) => return Ok(catalog),
            Err(generation) => generation,
        };
        let catalog = Arc::new(tenant_catalog(&self.store, tenant).await?);
        self.catalogs.keep(tenant, generation, catalog.clone());
        Ok(catalog)
    }

    fn parse_ci_id(&self, field: &str, id: &str, violations: &mut Violations) -> Option<Uuid> {
        match ids::parse_id(id) {
            Some(parsed) if parsed.region == self.region => Some(parsed.uuid),
            Some(_) => {
                violations.push(field, "a CI of another region");
                None
            }
            None => {
                violations.push(field, "not a CI id");
                None
            }
        }
    }

    /// A CI id that must name an existing CI of the caller's tenant: anything else is `NOT_FOUND`.
    fn existing_id(&self, id: &str) -> CmdbResult<Uuid> {
        ids::parse_id(id)
            .filter(|p| p.region == self.region)
            .map(|p| p.uuid)
            .ok_or(CmdbError::NotFound("CI"))
    }

    /// Applies this replica's committed changes to the tenant's impact graph: CIs at their new
    /// versions first, then the relationships added or removed (`edges`).
    fn update_graph(
        &self,
        tenant: &str,
        catalog: &ClassCatalog,
        nodes: &[Ci],
        edges: Vec<IndexChange>,
    ) {
        let changes = nodes
            .iter()
            .map(|ci| IndexChange::Ci {
                node: impact_node(catalog, ci.id, &ci.class, &ci.name, ci.status),
                version: ci.version,
            })
            .chain(edges)
            .collect();
        self.index.apply(tenant, Origin::Own, changes);
    }

    /// Writes one CI as `write` leaves it — inserted when new, else over the version it was
    /// read at — with its history entry and its event, in `txn`.
    async fn store_ci_write(
        &self,
        txn: &WriteTxn,
        caller: &Caller,
        write: &CiWrite,
    ) -> CmdbResult<()> {
        match write.read_version {
            None => self.store.insert(txn, &write.ci, &caller.subject).await?,
            Some(expected) => {
                if !self.store.update(txn, &write.ci, expected).await? {
                    // Another write got there between the read and this one.
                    return Err(CmdbError::Stale {
                        expected,
                        current: expected + 1,
                    });
                }
            }
        }
        let now = self.now();
        self.store
            .append_history(
                txn,
                &write.ci,
                &caller.subject,
                &caller.roles,
                write.fact.source(),
                write.fact.action(),
                &write.changes,
                write.note.as_deref(),
                now,
            )
            .await?;
        self.store
            .stage(
                txn,
                self.ci_event(
                    caller,
                    &caller.actor(),
                    &write.ci,
                    Fact::Ci(write.fact.clone()),
                ),
                now,
            )
            .await?;
        Ok(())
    }

    /// The event of a fact about `ci`, carrying the CI as it is after the change.
    fn ci_event(
        &self,
        caller: &Caller,
        actor: &common::Actor,
        ci: &Ci,
        fact: Fact,
    ) -> OutgoingEvent {
        let snapshot = convert::ci_to_pb(&self.region, ci);
        fact.into_event(&caller.tenant, &snapshot.id, &snapshot, actor)
    }
}

/// What the impact index holds of a CI; whether it is a business service is the tenant's
/// catalog's to say (tenant classes may derive from `business_service`).
pub fn impact_node(
    catalog: &ClassCatalog,
    id: Uuid,
    class: &str,
    name: &str,
    status: CiStatus,
) -> ImpactNode {
    ImpactNode {
        id,
        class: class.to_owned(),
        name: name.to_owned(),
        status,
        business_service: catalog.is_subclass_of(class, d::class::BUSINESS_SERVICE),
    }
}

/// The built-in classes plus the tenant's own, read from the store.
pub async fn tenant_catalog(store: &CmdbStore, tenant: &str) -> CmdbResult<ClassCatalog> {
    let corrupt = |e: String| crate::store::StoreError::Corrupt(e);
    let mut classes = Vec::new();
    for encoded in store
        .tenant_classes(store.db().connection(), tenant)
        .await?
    {
        let bytes = B64.decode(encoded).map_err(|e| corrupt(e.to_string()))?;
        let class = pb::CiClass::decode(bytes.as_slice()).map_err(|e| corrupt(e.to_string()))?;
        // Stored classes were validated when they were created.
        let mut ignored = Violations::new();
        classes.push(convert::class_from_pb(&class, &mut ignored));
    }
    Ok(ClassCatalog::with_tenant_classes(classes)?)
}

fn optional_enum<T>(
    field: &str,
    raw: i32,
    parse: fn(i32) -> Option<T>,
    violations: &mut Violations,
) -> Option<T> {
    if raw == 0 {
        return None;
    }
    let parsed = parse(raw);
    if parsed.is_none() {
        violations.push(field, format!("unknown value {raw}"));
    }
    parsed
}

fn reply<T>(result: CmdbResult<T>) -> Result<Response<T>, Status> {
    result.map(Response::new).map_err(Classify::into_status)
}
