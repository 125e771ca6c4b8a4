//! The gRPC face of the CMDB: decode, authorize, apply the domain rules, write the change with its
//! history and events in one transaction, and keep the in-memory impact index current.

mod cis;
mod classes;
pub mod convert;
mod error;
mod impact;
mod impact_answer;
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
    auth::Principal, clock::SharedClock, db::WriteTxn, error::Classify, events::OutgoingEvent, ids,
};
use desk_proto::{cmdb::v1 as pb, common::v1 as common};
use prost::Message as _;
use tonic::{Request, Response, Status};
use uuid::Uuid;

pub use error::CmdbError;
pub use impact_answer::{AnswerError, encode_impact_answer, encode_impact_answer_within};
pub use index::{ImpactIndex, IndexChange};
use tenant_cache::TenantCache;

use crate::{
    domain::{
        self as d, Ci, CiStatus, ClassCatalog, SourcePrecedence, Violations,
        impact::{ImpactEdge, ImpactNode},
    },
    events::Fact,
    store::CmdbStore,
};

type CmdbResult<T> = Result<T, CmdbError>;

/// Largest impact query the service answers; callers may ask for less and see the limits used.
pub const MAX_DEPTH: u32 = 32;
pub const MAX_NODES: u32 = 200_000;

/// Roles that may read the CMDB, and those that may change it. `configuration_manager` extends the
/// platform's role list for the CMDB's owners; `integrator` covers discovery sources.
const READERS: &[&str] = &[
    "agent",
    "manager",
    "change_manager",
    "cab_member",
    "admin",
    "integrator",
    "configuration_manager",
];
const WRITERS: &[&str] = &["admin", "integrator", "configuration_manager"];

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

/// The caller, as the CMDB sees them.
#[derive(Debug, Clone)]
pub struct Caller {
    pub subject: String,
    pub tenant: String,
    pub roles: Vec<String>,
    pub name: Option<String>,
}

impl Caller {
    fn can_read(&self) -> bool {
        self.roles.iter().any(|r| READERS.contains(&r.as_str()))
    }
    fn can_write(&self) -> bool {
        self.roles.iter().any(|r| WRITERS.contains(&r.as_str()))
    }
    fn actor_pb(&self) -> common::Actor {
        common::Actor {
            subject: self.subject.clone(),
            name: self.name.clone().unwrap_or_default(),
            roles: self.roles.clone(),
        }
    }
}

impl From<Principal> for Caller {
    fn from(p: Principal) -> Self {
        Caller {
            subject: p.subject,
            tenant: p.tenant,
            roles: p.roles,
            name: p.name,
        }
    }
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

    fn require_read(caller: &Caller) -> CmdbResult<()> {
        if caller.can_read() {
            Ok(())
        } else {
            Err(CmdbError::Forbidden(
                "reading the CMDB needs an agent, manager, change, admin, integrator or configuration manager role",
            ))
        }
    }

    fn require_write(caller: &Caller) -> CmdbResult<()> {
        if caller.can_write() {
            Ok(())
        } else {
            Err(CmdbError::Forbidden(
                "changing the CMDB needs an admin, integrator or configuration_manager role",
            ))
        }
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

    /// Applies committed changes to the tenant's impact graph (CIs at their new versions first).
    fn update_graph(
        &self,
        tenant: &str,
        catalog: &ClassCatalog,
        nodes: &[Ci],
        added: &[ImpactEdge],
        removed: &[ImpactEdge],
    ) {
        let changes = nodes
            .iter()
            .map(|ci| IndexChange::Ci {
                node: impact_node(catalog, ci.id, &ci.class, &ci.name, ci.status),
                version: ci.version,
            })
            .chain(added.iter().copied().map(IndexChange::EdgeAdded))
            .chain(removed.iter().copied().map(IndexChange::EdgeRemoved))
            .collect();
        self.index.apply(tenant, changes);
    }

    #[allow(clippy::too_many_arguments)]
    async fn record(
        &self,
        txn: &WriteTxn,
        caller: &Caller,
        ci: &Ci,
        source: &str,
        action: &str,
        changes: &[d::FieldChange],
        note: Option<&str>,
        fact: Fact,
    ) -> CmdbResult<()> {
        let now = self.now();
        self.store
            .append_history(
                txn,
                ci,
                &caller.subject,
                &caller.roles,
                source,
                action,
                changes,
                note,
                now,
            )
            .await?;
        self.store
            .stage(
                txn,
                self.ci_event(caller, &caller.actor_pb(), ci, fact),
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

fn non_empty(value: &str) -> Option<String> {
    let trimmed = value.trim();
    (!trimmed.is_empty()).then(|| trimmed.to_owned())
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

fn caller_of<T>(request: &Request<T>) -> Result<Caller, Status> {
    Ok(desk_kit::auth::principal(request)?.into())
}

fn reply<T>(result: CmdbResult<T>) -> Result<Response<T>, Status> {
    result.map(Response::new).map_err(Classify::into_status)
}
