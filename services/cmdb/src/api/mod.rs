//! The gRPC face of the CMDB: decode, authorize, apply the domain rules, write the change with its
//! history and events in one transaction, and keep the in-memory impact index current.

pub mod convert;
mod error;
mod impact_answer;
pub mod index;
mod lookup;
mod tenant_cache;

use std::{
    collections::{BTreeMap, HashMap},
    sync::Arc,
};

use base64::{Engine as _, engine::general_purpose::STANDARD as B64};
use chrono::{DateTime, Utc};
use desk_kit::{
    auth::Principal,
    clock::SharedClock,
    db::WriteTxn,
    error::Classify,
    events::OutgoingEvent,
    idempotency::{FingerprintHasher, IdempotentCreate, Recorded},
    ids, paging,
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
        self as d, API_SOURCE, Ci, CiPatch, CiStatus, ClassCatalog, Criticality, Environment,
        ImportBatch, ImportItem, ImportRef, ImportRelationship, InvalidItems, ItemAction, NewCi,
        Provenance, RelationshipAction, SourcePrecedence, ValidationMode, Violations,
        check_relationship,
        identification::PlannedEnd,
        impact::{Direction, ImpactEdge, ImpactNode, ImpactQuery},
        validate_attributes,
    },
    events::Fact,
    store::{CiFilter, CmdbStore, HistoryRecord, IDEMPOTENCY_KEYS, StoredRelationship, entities},
};

type CmdbResult<T> = Result<T, CmdbError>;

/// Largest impact query the service answers; callers may ask for less and see the limits used.
pub const MAX_DEPTH: u32 = 32;
pub const MAX_NODES: u32 = 200_000;
/// Impact queries that may reach this many CIs run off the async worker (`analyze_impact`).
const LONG_WALK_CIS: usize = 10_000;
/// A committed import that wrote at least this many CIs and relationships refreshes the
/// database's planner statistics (see `CmdbStore::refresh_statistics`).
const BULK_WRITE_ROWS: usize = 1_000;

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

    // ---- source precedence ----

    /// The tenant's source precedence (cached; this process's writes refresh it).
    pub async fn precedence(&self, tenant: &str) -> CmdbResult<Arc<SourcePrecedence>> {
        let generation = match self.precedences.get(tenant) {
            Ok(found) => return Ok(found),
            Err(generation) => generation,
        };
        let stored = self
            .store
            .source_precedence(self.store.db().connection(), tenant)
            .await?;
        let wire = match stored {
            None => pb::SourcePrecedence::default(),
            Some(encoded) => {
                let bytes = B64
                    .decode(encoded)
                    .map_err(|e| crate::store::StoreError::Corrupt(e.to_string()))?;
                pb::SourcePrecedence::decode(bytes.as_slice())
                    .map_err(|e| crate::store::StoreError::Corrupt(e.to_string()))?
            }
        };
        let precedence = Arc::new(precedence_from_pb(&wire));
        self.precedences
            .keep(tenant, generation, precedence.clone());
        Ok(precedence)
    }

    pub async fn get_source_precedence(&self, caller: &Caller) -> CmdbResult<pb::SourcePrecedence> {
        Self::require_read(caller)?;
        Ok(precedence_to_pb(&*self.precedence(&caller.tenant).await?))
    }

    pub async fn set_source_precedence(
        &self,
        caller: &Caller,
        request: pb::SetSourcePrecedenceRequest,
    ) -> CmdbResult<pb::SourcePrecedence> {
        // Discovery sources (integrators) must not rank themselves: owners of the CMDB decide.
        if !caller
            .roles
            .iter()
            .any(|r| r == "admin" || r == "configuration_manager")
        {
            return Err(CmdbError::Forbidden(
                "only admins and configuration managers set source precedence",
            ));
        }
        let wire = request.precedence.unwrap_or_default();
        let mut violations = Violations::new();
        let mut check_order = |field: &str, order: &pb::SourceOrder| {
            for (index, source) in order.sources.iter().enumerate() {
                d::validate::opaque(
                    &format!("{field}.sources[{index}]"),
                    source,
                    d::validate::SOURCE_MAX,
                    &mut violations,
                );
            }
            let mut seen = std::collections::BTreeSet::new();
            if order.sources.iter().any(|source| !seen.insert(source)) {
                violations.push(format!("{field}.sources"), "a source is listed twice");
            }
        };
        if let Some(order) = &wire.default_order {
            check_order("precedence.default_order", order);
        }
        for (key, order) in &wire.by_field {
            check_order(&format!("precedence.by_field[{key}]"), order);
        }
        if wire.by_field.len() > 500 {
            violations.push("precedence.by_field", "at most 500 fields");
        }
        for key in wire.by_field.keys() {
            if key.is_empty()
                || key.split('.').count() > 2
                || !key.split('.').all(d::validate::is_identifier)
            {
                violations.push(
                    format!("precedence.by_field[{key}]"),
                    "a field (`os`) or a class and a field (`server.os`), snake_case",
                );
            }
        }
        violations.into_result()?;
        let txn = self.store.begin().await?;
        let now = self.now();
        self.store
            .save_source_precedence(&txn, &caller.tenant, B64.encode(wire.encode_to_vec()), now)
            .await?;
        // Every replica caches the precedence: the event tells the others to read it again.
        self.store
            .stage(
                &txn,
                Fact::SourcePrecedenceUpdated {
                    precedence: wire.clone(),
                }
                .into_event(
                    &caller.tenant,
                    &caller.tenant,
                    &pb::ConfigurationItem::default(),
                    &caller.actor_pb(),
                ),
                now,
            )
            .await?;
        self.store.commit(txn).await?;
        self.precedences
            .replace(&caller.tenant, Arc::new(precedence_from_pb(&wire)));
        Ok(wire)
    }

    // ---- classes ----

    pub async fn list_classes(&self, caller: &Caller) -> CmdbResult<Vec<pb::CiClass>> {
        Self::require_read(caller)?;
        let catalog = self.catalog(&caller.tenant).await?;
        let builtin = ClassCatalog::builtin();
        Ok(catalog
            .classes()
            .map(|class| convert::class_to_pb(&catalog, class, builtin.contains(&class.name)))
            .collect())
    }

    pub async fn create_class(
        &self,
        caller: &Caller,
        request: pb::CreateClassRequest,
    ) -> CmdbResult<pb::CiClass> {
        Self::require_write(caller)?;
        let mut violations = Violations::new();
        let Some(wire) = request.class else {
            violations.push("class", "required");
            return Err(violations.into());
        };
        let class = convert::class_from_pb(&wire, &mut violations);
        violations.into_result()?;
        let catalog = self.catalog(&caller.tenant).await?;
        let mut tenant_classes: Vec<d::CiClass> = catalog
            .classes()
            .filter(|c| !ClassCatalog::builtin().contains(&c.name))
            .cloned()
            .collect();
        tenant_classes.push(class.clone());
        let extended = ClassCatalog::with_tenant_classes(tenant_classes)?;
        let txn = self.store.begin().await?;
        let now = self.now();
        let stored = convert::class_to_pb(&extended, &class, false);
        self.store
            .insert_class(
                &txn,
                &caller.tenant,
                &class.name,
                B64.encode(wire.encode_to_vec()),
                now,
            )
            .await?;
        // Every replica caches the catalog: the event tells the others to read it again.
        self.store
            .stage(
                &txn,
                Fact::ClassCreated {
                    class: stored.clone(),
                }
                .into_event(
                    &caller.tenant,
                    &class.name,
                    &pb::ConfigurationItem::default(),
                    &caller.actor_pb(),
                ),
                now,
            )
            .await?;
        self.store.commit(txn).await?;
        self.catalogs.replace(&caller.tenant, Arc::new(extended));
        Ok(stored)
    }

    // ---- CIs ----

    pub async fn create_ci(&self, caller: &Caller, request: pb::CreateCiRequest) -> CmdbResult<Ci> {
        Self::require_write(caller)?;
        let catalog = self.catalog(&caller.tenant).await?;
        let mut violations = Violations::new();
        d::validate::single_line(
            "name",
            &request.name,
            d::validate::NAME_MAX,
            &mut violations,
        );
        let status = optional_enum("status", request.status, convert::status, &mut violations)
            .unwrap_or(CiStatus::Planned);
        if status == CiStatus::Retired {
            violations.push("status", "a CI cannot be created retired");
        }
        let environment = optional_enum(
            "environment",
            request.environment,
            convert::environment,
            &mut violations,
        )
        .unwrap_or(Environment::Production);
        let criticality = optional_enum(
            "criticality",
            request.criticality,
            convert::criticality,
            &mut violations,
        )
        .unwrap_or(Criticality::Medium);
        for (field, value) in [
            ("owner_group_id", &request.owner_group_id),
            ("location", &request.location),
            ("region", &request.region),
        ] {
            if !value.is_empty() {
                d::validate::single_line(field, value, d::validate::NAME_MAX, &mut violations);
            }
        }
        let json = convert::attributes_to_json("attributes", &request.attributes, &mut violations);
        let validated =
            match validate_attributes(&catalog, &request.class, &json, ValidationMode::Create) {
                Ok(validated) => Some(validated),
                Err(more) => {
                    for v in more.iter() {
                        violations.push(v.field.clone(), v.description.clone());
                    }
                    None
                }
            };
        if !request.idempotency_key.is_empty() {
            d::validate::opaque(
                "idempotency_key",
                &request.idempotency_key,
                128,
                &mut violations,
            );
        }
        violations.into_result()?;
        let validated = validated.ok_or(CmdbError::NotFound("class"))?;
        let idempotent = IdempotentCreate::new(
            &caller.tenant,
            &caller.subject,
            &request.idempotency_key,
            || {
                // `attributes` is a map: prost would encode it in its iteration order, which two
                // equal requests need not share, so it is hashed apart in key order.
                let mut body = request.clone();
                body.idempotency_key.clear();
                let attributes = std::mem::take(&mut body.attributes);
                let mut hasher = FingerprintHasher::new();
                hasher.message(&body).map(&attributes);
                hasher.finish()
            },
        );
        if let Some(create) = &idempotent
            && let Some(existing) = self.replay_create(caller, &catalog, create).await?
        {
            return Ok(existing);
        }
        let now = self.now();
        let provenance = Provenance {
            source: API_SOURCE.to_owned(),
            actor: caller.subject.clone(),
            set_at: now,
        };
        let new = NewCi {
            class: request.class.clone(),
            name: request.name.trim().to_owned(),
            environment,
            status,
            criticality,
            owner_group: non_empty(&request.owner_group_id),
            location: non_empty(&request.location),
            region: non_empty(&request.region),
            attributes: validated.values,
            defaulted: validated.defaulted,
        };
        let ci = new.into_ci(ids::new_uuid(), caller.tenant.clone(), &provenance);
        let txn = self.store.begin().await?;
        if let Some(create) = &idempotent
            && IDEMPOTENCY_KEYS
                .record(&txn, create, ci.id, ci.created_at)
                .await?
                == Recorded::TakenConcurrently
        {
            // A concurrent retry with the same key won: answer with its CI, write nothing.
            drop(txn);
            return self
                .replay_create(caller, &catalog, create)
                .await?
                .ok_or(CmdbError::NotFound("CI"));
        }
        self.store.insert(&txn, &ci, &caller.subject).await?;
        self.record(
            &txn,
            caller,
            &ci,
            API_SOURCE,
            "created",
            &[],
            None,
            Fact::CiCreated {
                source: API_SOURCE.to_owned(),
            },
        )
        .await?;
        self.store.commit(txn).await?;
        self.update_graph(
            &caller.tenant,
            &catalog,
            std::slice::from_ref(&ci),
            &[],
            &[],
        );
        Ok(ci)
    }

    /// The CI an earlier create with this key made, if the body matches; a conflict if it does not.
    async fn replay_create(
        &self,
        caller: &Caller,
        catalog: &ClassCatalog,
        create: &IdempotentCreate,
    ) -> CmdbResult<Option<Ci>> {
        let conn = self.store.db().connection();
        let Some(ci_id) = IDEMPOTENCY_KEYS.earlier_result(conn, create).await? else {
            return Ok(None);
        };
        Ok(self
            .store
            .find(conn, catalog, &caller.tenant, ci_id)
            .await?)
    }

    pub async fn get_ci(&self, caller: &Caller, id: &str) -> CmdbResult<Ci> {
        Self::require_read(caller)?;
        let catalog = self.catalog(&caller.tenant).await?;
        let id = self.existing_id(id)?;
        self.store
            .find(self.store.db().connection(), &catalog, &caller.tenant, id)
            .await?
            .ok_or(CmdbError::NotFound("CI"))
    }

    pub async fn update_ci(&self, caller: &Caller, request: pb::UpdateCiRequest) -> CmdbResult<Ci> {
        Self::require_write(caller)?;
        let catalog = self.catalog(&caller.tenant).await?;
        let mut violations = Violations::new();
        if request.expected_version < 1 {
            violations.push(
                "expected_version",
                "required: the version of the CI you read",
            );
        }
        if let Some(name) = &request.name {
            d::validate::single_line("name", name, d::validate::NAME_MAX, &mut violations);
        }
        for (field, value) in [
            ("owner_group_id", &request.owner_group_id),
            ("location", &request.location),
        ] {
            if let Some(value) = value
                && !value.trim().is_empty()
            {
                d::validate::single_line(field, value, d::validate::NAME_MAX, &mut violations);
            }
        }
        let patch_status =
            optional_enum("status", request.status, convert::status, &mut violations);
        if patch_status == Some(CiStatus::Retired) {
            violations.push("status", "retire a CI with RetireCi");
        }
        let environment = optional_enum(
            "environment",
            request.environment,
            convert::environment,
            &mut violations,
        );
        let criticality = optional_enum(
            "criticality",
            request.criticality,
            convert::criticality,
            &mut violations,
        );
        let json = convert::attributes_to_json("attributes", &request.attributes, &mut violations);
        violations.into_result()?;
        let id = self.existing_id(&request.id)?;

        let txn = self.store.begin().await?;
        let mut ci = self
            .store
            .find(&*txn, &catalog, &caller.tenant, id)
            .await?
            .ok_or(CmdbError::NotFound("CI"))?;
        if ci.version != request.expected_version {
            return Err(CmdbError::Stale {
                expected: request.expected_version,
                current: ci.version,
            });
        }
        if ci.status == CiStatus::Retired {
            return Err(CmdbError::Precondition(
                "a retired CI cannot be changed".into(),
            ));
        }
        let validated = validate_attributes(&catalog, &ci.class, &json, ValidationMode::Patch)?;
        let mut attributes: BTreeMap<String, Option<d::AttrValue>> = validated
            .values
            .into_iter()
            .map(|(k, v)| (k, Some(v)))
            .collect();
        for cleared in validated.cleared {
            attributes.insert(cleared, None);
        }
        let patch = CiPatch {
            name: request.name.map(|n| n.trim().to_owned()),
            environment,
            status: patch_status,
            criticality,
            owner_group: request.owner_group_id.map(|v| non_empty(&v)),
            location: request.location.map(|v| non_empty(&v)),
            region: None,
            attributes,
        };
        let provenance = Provenance {
            source: API_SOURCE.to_owned(),
            actor: caller.subject.clone(),
            set_at: self.now(),
        };
        let expected = ci.version;
        let changes = ci.apply_patch(&patch, &provenance)?.into_vec();
        if changes.is_empty() {
            return Ok(ci);
        }
        if !self.store.update(&txn, &ci, expected).await? {
            return Err(CmdbError::Stale {
                expected,
                current: expected + 1,
            });
        }
        self.record(
            &txn,
            caller,
            &ci,
            API_SOURCE,
            "updated",
            &changes,
            None,
            Fact::CiUpdated {
                changes: changes.clone(),
                source: API_SOURCE.to_owned(),
            },
        )
        .await?;
        self.store.commit(txn).await?;
        self.update_graph(
            &caller.tenant,
            &catalog,
            std::slice::from_ref(&ci),
            &[],
            &[],
        );
        Ok(ci)
    }

    pub async fn retire_ci(&self, caller: &Caller, request: pb::RetireCiRequest) -> CmdbResult<Ci> {
        Self::require_write(caller)?;
        let catalog = self.catalog(&caller.tenant).await?;
        let mut violations = Violations::new();
        if request.expected_version < 1 {
            violations.push(
                "expected_version",
                "required: the version of the CI you read",
            );
        }
        if request.reason.chars().count() > 2000
            || request
                .reason
                .chars()
                .any(|c| c.is_control() && c != '\n' && c != '\t' && c != '\r')
        {
            violations.push(
                "reason",
                "at most 2000 characters, no control characters but line breaks and tabs",
            );
        }
        violations.into_result()?;
        let id = self.existing_id(&request.id)?;
        let txn = self.store.begin().await?;
        let mut ci = self
            .store
            .find(&*txn, &catalog, &caller.tenant, id)
            .await?
            .ok_or(CmdbError::NotFound("CI"))?;
        if ci.version != request.expected_version {
            return Err(CmdbError::Stale {
                expected: request.expected_version,
                current: ci.version,
            });
        }
        let provenance = Provenance {
            source: API_SOURCE.to_owned(),
            actor: caller.subject.clone(),
            set_at: self.now(),
        };
        let expected = ci.version;
        // Retiring twice is refused, not recorded twice.
        ci.status.check_transition(CiStatus::Retired)?;
        let changes = ci
            .apply_patch(
                &CiPatch {
                    status: Some(CiStatus::Retired),
                    ..CiPatch::default()
                },
                &provenance,
            )?
            .into_vec();
        if !self.store.update(&txn, &ci, expected).await? {
            return Err(CmdbError::Stale {
                expected,
                current: expected + 1,
            });
        }
        let reason = non_empty(&request.reason);
        self.record(
            &txn,
            caller,
            &ci,
            API_SOURCE,
            "retired",
            &changes,
            reason.as_deref(),
            Fact::CiRetired {
                reason: reason.clone().unwrap_or_default(),
            },
        )
        .await?;
        self.store.commit(txn).await?;
        self.update_graph(
            &caller.tenant,
            &catalog,
            std::slice::from_ref(&ci),
            &[],
            &[],
        );
        Ok(ci)
    }

    pub async fn list_cis(
        &self,
        caller: &Caller,
        request: pb::ListCisRequest,
    ) -> CmdbResult<pb::ListCisResponse> {
        Self::require_read(caller)?;
        let catalog = self.catalog(&caller.tenant).await?;
        let mut violations = Violations::new();
        let mut filter = CiFilter::default();
        if !request.class.is_empty() {
            if catalog.contains(&request.class) {
                filter.classes = catalog
                    .subclasses(&request.class)
                    .into_iter()
                    .map(str::to_owned)
                    .collect();
                if !filter.classes.contains(&request.class) {
                    filter.classes.push(request.class.clone());
                }
            } else {
                violations.push("class", "unknown class");
            }
        }
        for (index, value) in request.statuses.iter().enumerate() {
            match convert::status(*value) {
                Some(status) => filter.statuses.push(status),
                None => violations.push(format!("statuses[{index}]"), "unknown status"),
            }
        }
        filter.environment = optional_enum(
            "environment",
            request.environment,
            convert::environment,
            &mut violations,
        );
        for (index, attribute) in request.attribute_filters.iter().enumerate() {
            let value = attribute
                .equals
                .as_ref()
                .and_then(convert::attribute_to_json);
            match value {
                Some(serde_json::Value::String(text)) => {
                    filter.attributes.push((attribute.name.clone(), text))
                }
                Some(serde_json::Value::Bool(flag)) => filter
                    .attributes
                    .push((attribute.name.clone(), flag.to_string())),
                Some(serde_json::Value::Number(number)) => filter
                    .attributes
                    .push((attribute.name.clone(), number.to_string())),
                _ => violations.push(
                    format!("attribute_filters[{index}].equals"),
                    "a value to compare with is required",
                ),
            }
        }
        if !request.text.is_empty() {
            d::validate::single_line(
                "text",
                &request.text,
                d::validate::NAME_MAX,
                &mut violations,
            );
            filter.text = Some(request.text.trim().to_owned());
        }
        if !(0..=500).contains(&request.page_size) {
            violations.push(
                "page_size",
                "must be between 1 and 500 (0 for the default of 50)",
            );
        }
        let after = if request.page_token.is_empty() {
            None
        } else {
            let cursor = paging::decode_cursor::<Uuid>(&request.page_token);
            if cursor.is_none() {
                violations.push(
                    "page_token",
                    "not a token from a previous page of this list",
                );
            }
            cursor
        };
        violations.into_result()?;
        let limit = paging::page_size(request.page_size, 50, 500);
        let (cis, total) = self
            .store
            .list(
                self.store.db().connection(),
                &catalog,
                &caller.tenant,
                &filter,
                after,
                limit,
            )
            .await?;
        let next_page_token = match cis.last() {
            Some(last) if cis.len() as u64 == limit => paging::encode_cursor(&last.id),
            _ => String::new(),
        };
        Ok(pb::ListCisResponse {
            cis: cis
                .iter()
                .map(|ci| convert::ci_to_pb(&self.region, ci))
                .collect(),
            next_page_token,
            total_size: total as i64,
        })
    }

    pub async fn history(&self, caller: &Caller, id: &str) -> CmdbResult<Vec<common::AuditEntry>> {
        let ci = self.get_ci(caller, id).await?;
        let entries = self
            .store
            .history(self.store.db().connection(), &caller.tenant, ci.id)
            .await?;
        Ok(entries
            .iter()
            .map(|e| common::AuditEntry {
                version: e.version,
                time: convert::timestamp(e.at),
                actor: Some(common::Actor {
                    subject: e.actor_id.clone(),
                    name: String::new(),
                    roles: e.actor_roles.clone(),
                }),
                action: e.action.clone(),
                changes: convert::field_changes_to_pb(&e.changes),
                // Which source made the change: `api` or the discovery source (provenance).
                note: match &e.note {
                    Some(note) => format!("source: {}; {note}", e.source),
                    None => format!("source: {}", e.source),
                },
            })
            .collect())
    }

    // ---- relationships ----

    fn relationship_to_pb(
        &self,
        rel: &StoredRelationship,
        names: &HashMap<Uuid, String>,
    ) -> pb::Relationship {
        pb::Relationship {
            id: ids::format_id(&self.region, rel.id),
            source_id: ids::format_id(&self.region, rel.source_id),
            r#type: convert::relationship_type_to_pb(rel.rel_type) as i32,
            target_id: ids::format_id(&self.region, rel.target_id),
            source_name: names.get(&rel.source_id).cloned().unwrap_or_default(),
            target_name: names.get(&rel.target_id).cloned().unwrap_or_default(),
            create_time: convert::timestamp(rel.created_at),
            created_by: rel.created_by.clone(),
        }
    }

    pub async fn add_relationship(
        &self,
        caller: &Caller,
        request: pb::AddRelationshipRequest,
    ) -> CmdbResult<pb::Relationship> {
        Self::require_write(caller)?;
        let catalog = self.catalog(&caller.tenant).await?;
        let mut violations = Violations::new();
        let source = self.parse_ci_id("source_id", &request.source_id, &mut violations);
        let target = self.parse_ci_id("target_id", &request.target_id, &mut violations);
        let rel_type = convert::relationship_type(request.r#type);
        if rel_type.is_none() {
            violations.push("type", "required: one of the relationship types");
        }
        violations.into_result()?;
        let (Some(source), Some(target), Some(rel_type)) = (source, target, rel_type) else {
            return Err(CmdbError::NotFound("CI"));
        };
        let txn = self.store.begin().await?;
        let found = self
            .store
            .find_many(&*txn, &catalog, &caller.tenant, &[source, target])
            .await?;
        let get = |id: Uuid| found.iter().find(|ci| ci.id == id).cloned();
        let mut violations = Violations::new();
        let source_ci = get(source);
        let target_ci = get(target);
        if source_ci.is_none() {
            violations.push("source_id", "no such CI");
        }
        if target_ci.is_none() {
            violations.push("target_id", "no such CI");
        }
        violations.into_result()?;
        let (Some(source_ci), Some(target_ci)) = (source_ci, target_ci) else {
            return Err(CmdbError::NotFound("CI"));
        };
        // Checks and insert must not interleave with another add from the same source (cardinality,
        // duplicates): on PostgreSQL a transaction-scoped lock per source CI serializes them;
        // SQLite's single writer already does.
        self.store.lock_source(&txn, &caller.tenant, source).await?;
        let exists = self
            .store
            .find_relationship(&*txn, &caller.tenant, source, rel_type, target)
            .await?
            .is_some()
            || (rel_type.is_symmetric()
                && self
                    .store
                    .find_relationship(&*txn, &caller.tenant, target, rel_type, source)
                    .await?
                    .is_some());
        if exists {
            return Err(CmdbError::Precondition(
                "this relationship already exists".into(),
            ));
        }
        let outgoing = self
            .store
            .outgoing_count(&*txn, &caller.tenant, source, rel_type)
            .await?;
        check_relationship(
            &catalog,
            rel_type,
            &source_ci.facts(),
            &target_ci.facts(),
            outgoing,
        )?;
        let rel = StoredRelationship {
            id: ids::new_uuid(),
            source_id: source,
            rel_type,
            target_id: target,
            created_by: caller.subject.clone(),
            created_at: self.now(),
        };
        self.store
            .insert_relationship(&txn, &caller.tenant, &rel)
            .await?;
        let names = HashMap::from([
            (source, source_ci.name.clone()),
            (target, target_ci.name.clone()),
        ]);
        let wire = self.relationship_to_pb(&rel, &names);
        self.store
            .stage(
                &txn,
                Fact::RelationshipAdded {
                    relationship: wire.clone(),
                }
                .into_event(
                    &caller.tenant,
                    &wire.id,
                    &pb::ConfigurationItem::default(),
                    &caller.actor_pb(),
                ),
                self.now(),
            )
            .await?;
        self.store.commit(txn).await?;
        self.update_graph(
            &caller.tenant,
            &catalog,
            &[],
            &[ImpactEdge {
                source,
                relationship: rel_type,
                target,
            }],
            &[],
        );
        Ok(wire)
    }

    pub async fn remove_relationship(&self, caller: &Caller, id: &str) -> CmdbResult<()> {
        Self::require_write(caller)?;
        let id = ids::parse_id(id)
            .filter(|p| p.region == self.region)
            .map(|p| p.uuid)
            .ok_or(CmdbError::NotFound("relationship"))?;
        let txn = self.store.begin().await?;
        let rel = self
            .store
            .relationship(&*txn, &caller.tenant, id)
            .await?
            .ok_or(CmdbError::NotFound("relationship"))?;
        if !self
            .store
            .end_relationship(&txn, &caller.tenant, id, self.now())
            .await?
        {
            return Err(CmdbError::NotFound("relationship"));
        }
        let wire = self.relationship_to_pb(&rel, &HashMap::new());
        self.store
            .stage(
                &txn,
                Fact::RelationshipRemoved {
                    relationship: wire.clone(),
                }
                .into_event(
                    &caller.tenant,
                    &wire.id,
                    &pb::ConfigurationItem::default(),
                    &caller.actor_pb(),
                ),
                self.now(),
            )
            .await?;
        self.store.commit(txn).await?;
        let catalog = self.catalog(&caller.tenant).await?;
        self.update_graph(
            &caller.tenant,
            &catalog,
            &[],
            &[],
            &[ImpactEdge {
                source: rel.source_id,
                relationship: rel.rel_type,
                target: rel.target_id,
            }],
        );
        Ok(())
    }

    pub async fn list_relationships(
        &self,
        caller: &Caller,
        ci_id: &str,
    ) -> CmdbResult<Vec<pb::Relationship>> {
        let ci = self.get_ci(caller, ci_id).await?;
        let conn = self.store.db().connection();
        let rels = self
            .store
            .relationships_of(conn, &caller.tenant, ci.id)
            .await?;
        let catalog = self.catalog(&caller.tenant).await?;
        let mut others: Vec<Uuid> = rels
            .iter()
            .flat_map(|r| [r.source_id, r.target_id])
            .collect();
        others.sort();
        others.dedup();
        let names: HashMap<Uuid, String> = self
            .store
            .find_many(conn, &catalog, &caller.tenant, &others)
            .await?
            .into_iter()
            .map(|c| (c.id, c.name))
            .collect();
        Ok(rels
            .iter()
            .map(|r| self.relationship_to_pb(r, &names))
            .collect())
    }

    // ---- impact ----

    pub fn analyze_impact(
        &self,
        caller: &Caller,
        request: pb::AnalyzeImpactRequest,
    ) -> CmdbResult<pb::EncodedAnalyzeImpactResponse> {
        Self::require_read(caller)?;
        let mut violations = Violations::new();
        if request.ci_ids.is_empty() || request.ci_ids.len() > 100 {
            violations.push("ci_ids", "between 1 and 100 CI ids");
        }
        let start: Vec<Uuid> = request
            .ci_ids
            .iter()
            .enumerate()
            .filter_map(|(i, id)| self.parse_ci_id(&format!("ci_ids[{i}]"), id, &mut violations))
            .collect();
        let direction = match pb::ImpactDirection::try_from(request.direction)
            .unwrap_or(pb::ImpactDirection::Unspecified)
        {
            pb::ImpactDirection::Upstream | pb::ImpactDirection::Unspecified => Direction::Upstream,
            pb::ImpactDirection::Downstream => Direction::Downstream,
            pb::ImpactDirection::Both => Direction::Both,
        };
        let mut types = Vec::new();
        for (index, value) in request.relationship_types.iter().enumerate() {
            match convert::relationship_type(*value) {
                Some(t) => types.push(t),
                None => violations.push(
                    format!("relationship_types[{index}]"),
                    "unknown relationship type",
                ),
            }
        }
        violations.into_result()?;
        let max_depth = if request.max_depth == 0 {
            MAX_DEPTH
        } else {
            request.max_depth.min(MAX_DEPTH)
        };
        let max_nodes = if request.max_nodes == 0 {
            MAX_NODES
        } else {
            request.max_nodes.min(MAX_NODES)
        };
        let query = ImpactQuery {
            start,
            direction,
            max_depth,
            max_nodes,
            relationship_types: (!types.is_empty()).then_some(types),
            include_paths: request.include_paths,
            include_via: request.include_via,
        };
        // The tenant's graph as it is now: no lock is held while it is walked, so no write of
        // any tenant waits for this walk, nor this walk for a write.
        let Some(graph) = self.index.snapshot(&caller.tenant) else {
            return Err(CmdbError::NotFound("CI"));
        };
        let summary = request.view == pb::ImpactView::Summary as i32;
        let answer = || {
            if summary {
                impact_answer::summarize_impact(&graph, &self.region, &query)
                    .map(|message| {
                        pb::EncodedAnalyzeImpactResponse::from_parts(vec![message.encode_to_vec()])
                    })
                    .map_err(AnswerError::from)
            } else {
                encode_impact_answer_within(&graph, &self.region, &query, self.answer_limit_bytes)
            }
        };
        // A closure of tens of thousands of CIs walks and writes for milliseconds: the async
        // worker's other calls (health checks among them) are handed on meanwhile. Handing
        // them on costs some 50 µs, more than a small walk takes; those stay where they are.
        let may_take_long = query.max_depth > 3
            && graph.node_count().min(query.max_nodes as usize) >= LONG_WALK_CIS;
        let answer = if may_take_long {
            desk_kit::blocking::in_place(answer)
        } else {
            answer()
        };
        answer.map_err(|error| match error {
            AnswerError::Graph(_) => CmdbError::NotFound("CI"),
            AnswerError::TooLarge { bytes, limit } => CmdbError::AnswerTooLarge { bytes, limit },
        })
    }

    // ---- imports ----

    fn batch_from_pb(
        &self,
        request: &pb::StageImportRequest,
        violations: &mut Violations,
    ) -> ImportBatch {
        let source = request.source.trim().to_owned();
        let items = request
            .items
            .iter()
            .enumerate()
            .map(|(index, item)| ImportItem {
                local_id: item.local_id.clone(),
                class: item.class.clone(),
                name: item.name.clone(),
                environment: convert::environment(item.environment)
                    .unwrap_or(Environment::Production),
                status: convert::status(item.status),
                attributes: convert::attributes_to_json(
                    &format!("items[{index}].attributes"),
                    &item.attributes,
                    violations,
                ),
                source: source.clone(),
            })
            .collect();
        let reference = |text: &str| match ids::parse_id(text) {
            Some(parsed) if parsed.region == self.region => ImportRef::Existing(parsed.uuid),
            _ => ImportRef::Local(text.to_owned()),
        };
        let relationships = request
            .relationships
            .iter()
            .enumerate()
            .filter_map(
                |(index, rel)| match convert::relationship_type(rel.r#type) {
                    Some(relationship) => Some(ImportRelationship {
                        source: reference(&rel.source),
                        relationship,
                        target: reference(&rel.target),
                    }),
                    None => {
                        violations.push(
                            format!("relationships[{index}].type"),
                            "required: one of the relationship types",
                        );
                        None
                    }
                },
            )
            .collect();
        ImportBatch {
            items,
            relationships,
        }
    }

    /// Plans a batch against the current CMDB; the same input against the same CMDB gives the same plan.
    async fn plan<C: sea_orm::ConnectionTrait>(
        &self,
        conn: &C,
        caller: &Caller,
        catalog: &ClassCatalog,
        request: &pb::StageImportRequest,
    ) -> CmdbResult<(ImportBatch, d::ReconciliationPlan)> {
        let mut violations = Violations::new();
        if request.source.trim().is_empty() {
            violations.push("source", "required: the discovery source's name");
        }
        let batch = self.batch_from_pb(request, &mut violations);
        violations.into_result()?;
        let invalid = if request.skip_invalid {
            InvalidItems::Skip
        } else {
            InvalidItems::Reject
        };
        let precedence = self.precedence(&caller.tenant).await?;
        let prefetched = lookup::Prefetched::load(
            &self.store,
            conn,
            catalog,
            &caller.tenant,
            &precedence,
            &batch,
            invalid,
        )
        .await?;
        let lookup = lookup::StoreLookup::new(
            self.store.clone(),
            conn,
            catalog,
            &caller.tenant,
            prefetched,
        );
        let plan = tokio::task::block_in_place(|| {
            d::reconcile(catalog, &precedence, &batch, &lookup, invalid)
        })?;
        if let Some(error) = lookup.take_error() {
            return Err(error.into());
        }
        Ok((batch, plan))
    }

    fn plan_to_pb(
        &self,
        batch: &ImportBatch,
        plan: &d::ReconciliationPlan,
        created: &HashMap<String, Uuid>,
    ) -> (Vec<pb::PlannedItem>, Vec<pb::PlannedRelationship>) {
        let id = |uuid: Uuid| ids::format_id(&self.region, uuid);
        let wire_ref = |reference: &ImportRef| match reference {
            ImportRef::Local(local_id) => local_id.clone(),
            ImportRef::Existing(uuid) => id(*uuid),
        };
        // Skipped items and relationships, one entry each with every reason it was left out for.
        let mut skipped_items: BTreeMap<usize, Vec<String>> = BTreeMap::new();
        let mut skipped_relationships: BTreeMap<usize, Vec<String>> = BTreeMap::new();
        for violation in plan.skipped.iter() {
            let reason = format!("{}: {}", violation.field, violation.description);
            if let Some(index) = indexed(&violation.field, "items[") {
                skipped_items.entry(index).or_default().push(reason);
            } else if let Some(index) = indexed(&violation.field, "relationships[") {
                skipped_relationships.entry(index).or_default().push(reason);
            }
        }
        let items = plan
            .items
            .iter()
            .map(|item| {
                let mut out = pb::PlannedItem {
                    local_id: item.local_id.clone(),
                    ..Default::default()
                };
                match &item.action {
                    ItemAction::Create { ci } => {
                        out.action = pb::PlannedAction::Create as i32;
                        out.ci_id = created
                            .get(&item.local_id)
                            .map(|u| id(*u))
                            .unwrap_or_default();
                        out.reason = format!("new {}", ci.class);
                    }
                    ItemAction::Update {
                        ci_id,
                        changes,
                        skipped_by_precedence,
                        matched_by,
                        ..
                    } => {
                        out.action = pb::PlannedAction::Update as i32;
                        out.ci_id = id(*ci_id);
                        out.changes = convert::field_changes_to_pb(changes);
                        out.skipped_by_precedence = skipped_by_precedence
                            .iter()
                            .map(|s| s.field.clone())
                            .collect();
                        out.reason = format!("matched by {matched_by}");
                    }
                    ItemAction::Unchanged {
                        ci_id,
                        skipped_by_precedence,
                        matched_by,
                    } => {
                        out.action = pb::PlannedAction::Unchanged as i32;
                        out.ci_id = id(*ci_id);
                        out.skipped_by_precedence = skipped_by_precedence
                            .iter()
                            .map(|s| s.field.clone())
                            .collect();
                        out.reason = format!("matched by {matched_by}");
                    }
                    ItemAction::Conflict { reason } => {
                        out.action = pb::PlannedAction::Conflict as i32;
                        out.reason = reason.to_string();
                    }
                }
                out
            })
            .chain(skipped_items.iter().map(|(index, reasons)| {
                pb::PlannedItem {
                    local_id: batch
                        .items
                        .get(*index)
                        .map(|i| i.local_id.clone())
                        .unwrap_or_default(),
                    action: pb::PlannedAction::Skipped as i32,
                    reason: reasons.join("; "),
                    ..Default::default()
                }
            }))
            .collect();
        let end = |end: &PlannedEnd| match end {
            PlannedEnd::Existing(uuid) => id(*uuid),
            PlannedEnd::New { local_id } => created
                .get(local_id)
                .map_or_else(|| local_id.clone(), |u| id(*u)),
            PlannedEnd::Unresolved { local_id } => local_id.clone(),
        };
        let relationships = plan
            .relationships
            .iter()
            .map(|rel| {
                let (action, reason) = match &rel.action {
                    RelationshipAction::Add => (pb::PlannedAction::Create, String::new()),
                    RelationshipAction::Exists => {
                        (pb::PlannedAction::Unchanged, "already exists".to_owned())
                    }
                    RelationshipAction::Conflict { reason } => {
                        (pb::PlannedAction::Conflict, reason.to_string())
                    }
                };
                pb::PlannedRelationship {
                    source: end(&rel.source),
                    r#type: convert::relationship_type_to_pb(rel.relationship) as i32,
                    target: end(&rel.target),
                    action: action as i32,
                    reason,
                }
            })
            .chain(skipped_relationships.iter().map(|(index, reasons)| {
                let original = batch.relationships.get(*index);
                pb::PlannedRelationship {
                    source: original.map(|r| wire_ref(&r.source)).unwrap_or_default(),
                    r#type: original.map_or(0, |r| {
                        convert::relationship_type_to_pb(r.relationship) as i32
                    }),
                    target: original.map(|r| wire_ref(&r.target)).unwrap_or_default(),
                    action: pb::PlannedAction::Skipped as i32,
                    reason: reasons.join("; "),
                }
            }))
            .collect();
        (items, relationships)
    }

    fn batch_pb(
        &self,
        row: &entities::import::Model,
        items: Vec<pb::PlannedItem>,
        relationships: Vec<pb::PlannedRelationship>,
    ) -> pb::ImportBatch {
        let count = |action: pb::PlannedAction| {
            items.iter().filter(|i| i.action == action as i32).count() as i32
        };
        let count_relationships = |action: pb::PlannedAction| {
            relationships
                .iter()
                .filter(|r| r.action == action as i32)
                .count() as i32
        };
        pb::ImportBatch {
            id: ids::format_id(&self.region, row.id),
            source: row.source.clone(),
            state: match row.state.as_str() {
                "staged" => pb::ImportState::Staged,
                "committed" => pb::ImportState::Committed,
                _ => pb::ImportState::Discarded,
            } as i32,
            creates: count(pb::PlannedAction::Create),
            updates: count(pb::PlannedAction::Update),
            unchanged: count(pb::PlannedAction::Unchanged),
            conflicts: count(pb::PlannedAction::Conflict),
            skipped: count(pb::PlannedAction::Skipped),
            relationship_creates: count_relationships(pb::PlannedAction::Create),
            relationship_unchanged: count_relationships(pb::PlannedAction::Unchanged),
            relationship_conflicts: count_relationships(pb::PlannedAction::Conflict),
            relationship_skipped: count_relationships(pb::PlannedAction::Skipped),
            items,
            relationships,
            created_by: row.created_by.clone(),
            create_time: convert::timestamp(row.created_at),
            commit_time: row.finished_at.and_then(convert::timestamp),
        }
    }

    pub async fn stage_import(
        &self,
        caller: &Caller,
        request: pb::StageImportRequest,
    ) -> CmdbResult<pb::ImportBatch> {
        Self::require_write(caller)?;
        let catalog = self.catalog(&caller.tenant).await?;
        let (batch, plan) = self
            .plan(self.store.db().connection(), caller, &catalog, &request)
            .await?;
        let (items, relationships) = self.plan_to_pb(&batch, &plan, &HashMap::new());
        let preview = pb::ImportBatch {
            items,
            relationships,
            ..Default::default()
        };
        let row = entities::import::Model {
            id: ids::new_uuid(),
            tenant_id: caller.tenant.clone(),
            source: request.source.trim().to_owned(),
            state: "staged".into(),
            request: B64.encode(request.encode_to_vec()),
            plan: B64.encode(preview.encode_to_vec()),
            created_by: caller.subject.clone(),
            created_at: self.now(),
            finished_at: None,
        };
        let txn = self.store.begin().await?;
        self.store.insert_import(&txn, row.clone()).await?;
        self.store.commit(txn).await?;
        Ok(self.batch_pb(&row, preview.items, preview.relationships))
    }

    async fn import_row(&self, caller: &Caller, id: &str) -> CmdbResult<entities::import::Model> {
        let id = ids::parse_id(id)
            .filter(|p| p.region == self.region)
            .map(|p| p.uuid)
            .ok_or(CmdbError::NotFound("import"))?;
        self.store
            .import(self.store.db().connection(), &caller.tenant, id)
            .await?
            .ok_or(CmdbError::NotFound("import"))
    }

    fn decode_plan(row: &entities::import::Model) -> CmdbResult<pb::ImportBatch> {
        let bytes = B64
            .decode(&row.plan)
            .map_err(|e| crate::store::StoreError::Corrupt(e.to_string()))?;
        Ok(pb::ImportBatch::decode(bytes.as_slice())
            .map_err(|e| crate::store::StoreError::Corrupt(e.to_string()))?)
    }

    pub async fn get_import(&self, caller: &Caller, id: &str) -> CmdbResult<pb::ImportBatch> {
        Self::require_read(caller)?;
        let row = self.import_row(caller, id).await?;
        let plan = Self::decode_plan(&row)?;
        Ok(self.batch_pb(&row, plan.items, plan.relationships))
    }

    pub async fn discard_import(&self, caller: &Caller, id: &str) -> CmdbResult<pb::ImportBatch> {
        Self::require_write(caller)?;
        let mut row = self.import_row(caller, id).await?;
        let txn = self.store.begin().await?;
        if !self
            .store
            .finish_import(
                &txn,
                &caller.tenant,
                row.id,
                "discarded",
                row.plan.clone(),
                self.now(),
            )
            .await?
        {
            return Err(CmdbError::Precondition(format!(
                "the import is already {}",
                row.state
            )));
        }
        self.store.commit(txn).await?;
        row.state = "discarded".into();
        row.finished_at = Some(self.now());
        let plan = Self::decode_plan(&row)?;
        Ok(self.batch_pb(&row, plan.items, plan.relationships))
    }

    /// Applies the staged plan atomically. The plan is computed again and must equal the preview,
    /// so what commit does is exactly what the caller saw; if the CMDB changed in between, the
    /// caller stages again.
    pub async fn commit_import(&self, caller: &Caller, id: &str) -> CmdbResult<pb::ImportBatch> {
        Self::require_write(caller)?;
        let catalog = self.catalog(&caller.tenant).await?;
        let mut row = self.import_row(caller, id).await?;
        if row.state != "staged" {
            return Err(CmdbError::Precondition(format!(
                "the import is already {}",
                row.state
            )));
        }
        let request_bytes = B64
            .decode(&row.request)
            .map_err(|e| crate::store::StoreError::Corrupt(e.to_string()))?;
        let request = pb::StageImportRequest::decode(request_bytes.as_slice())
            .map_err(|e| crate::store::StoreError::Corrupt(e.to_string()))?;
        // Plan again inside the transaction that applies the plan, with the tenant's import
        // commits serialized: two batches describing the same new CI cannot both create it.
        let txn = self.store.begin().await?;
        self.store.lock_imports(&txn, &caller.tenant).await?;
        let (batch, plan) = self.plan(&*txn, caller, &catalog, &request).await?;
        let staged = Self::decode_plan(&row)?;
        let (items, relationships) = self.plan_to_pb(&batch, &plan, &HashMap::new());
        if items != staged.items || relationships != staged.relationships {
            return Err(CmdbError::Precondition("the CMDB changed since this import was staged; stage it again to preview the new plan".into()));
        }

        // Updates are written one by one, as they come (each checks its version); new CIs,
        // relationships, history and events a few hundred rows per statement, in plan order.
        let now = self.now();
        let actor = caller.actor_pb();
        let mut created: HashMap<String, Uuid> = HashMap::new();
        let mut written: Vec<WrittenCi> = Vec::new();
        for item in &plan.items {
            let source = batch
                .items
                .get(item.index)
                .map_or(item.source.clone(), |i| i.source.clone());
            let provenance = Provenance {
                source: source.clone(),
                actor: caller.subject.clone(),
                set_at: now,
            };
            match &item.action {
                ItemAction::Create { ci } => {
                    let ci =
                        ci.clone()
                            .into_ci(ids::new_uuid(), caller.tenant.clone(), &provenance);
                    created.insert(item.local_id.clone(), ci.id);
                    written.push(WrittenCi {
                        ci,
                        source,
                        changes: Vec::new(),
                        created: true,
                    });
                }
                ItemAction::Update {
                    ci_id,
                    expected_version,
                    patch,
                    ..
                } => {
                    let mut ci = self
                        .store
                        .find(&*txn, &catalog, &caller.tenant, *ci_id)
                        .await?
                        .ok_or(CmdbError::NotFound("CI"))?;
                    if ci.version != *expected_version {
                        return Err(CmdbError::Stale {
                            expected: *expected_version,
                            current: ci.version,
                        });
                    }
                    let changes = ci.apply_patch(patch, &provenance)?.into_vec();
                    if !self.store.update(&txn, &ci, *expected_version).await? {
                        return Err(CmdbError::Stale {
                            expected: *expected_version,
                            current: expected_version + 1,
                        });
                    }
                    written.push(WrittenCi {
                        ci,
                        source,
                        changes,
                        created: false,
                    });
                }
                ItemAction::Unchanged { .. } | ItemAction::Conflict { .. } => {}
            }
        }
        let new_cis: Vec<Ci> = written
            .iter()
            .filter(|w| w.created)
            .map(|w| w.ci.clone())
            .collect();
        self.store
            .insert_many(&txn, &new_cis, &caller.subject)
            .await?;
        self.store
            .append_histories(
                &txn,
                written
                    .iter()
                    .map(|w| HistoryRecord {
                        ci: &w.ci,
                        actor_id: &caller.subject,
                        actor_roles: &caller.roles,
                        source: &w.source,
                        action: if w.created { "created" } else { "updated" },
                        changes: &w.changes,
                        note: Some("import"),
                        at: now,
                    })
                    .collect(),
            )
            .await?;
        let mut events: Vec<OutgoingEvent> = written
            .iter()
            .map(|w| {
                let fact = if w.created {
                    Fact::CiCreated {
                        source: w.source.clone(),
                    }
                } else {
                    Fact::CiUpdated {
                        changes: w.changes.clone(),
                        source: w.source.clone(),
                    }
                };
                self.ci_event(caller, &actor, &w.ci, fact)
            })
            .collect();

        let mut edges = Vec::new();
        let mut relationships = Vec::new();
        for rel in &plan.relationships {
            if rel.action != RelationshipAction::Add {
                continue;
            }
            let resolve = |end: &PlannedEnd| match end {
                PlannedEnd::Existing(uuid) => Some(*uuid),
                PlannedEnd::New { local_id } => created.get(local_id).copied(),
                PlannedEnd::Unresolved { .. } => None,
            };
            let (Some(source), Some(target)) = (resolve(&rel.source), resolve(&rel.target)) else {
                continue;
            };
            let stored = StoredRelationship {
                id: ids::new_uuid(),
                source_id: source,
                rel_type: rel.relationship,
                target_id: target,
                created_by: caller.subject.clone(),
                created_at: now,
            };
            let wire = self.relationship_to_pb(&stored, &HashMap::new());
            events.push(
                Fact::RelationshipAdded {
                    relationship: wire.clone(),
                }
                .into_event(
                    &caller.tenant,
                    &wire.id,
                    &pb::ConfigurationItem::default(),
                    &actor,
                ),
            );
            relationships.push(stored);
            edges.push(ImpactEdge {
                source,
                relationship: rel.relationship,
                target,
            });
        }
        self.store
            .insert_relationships(&txn, &caller.tenant, &relationships)
            .await?;
        self.store.stage_many(&txn, events, now).await?;
        let touched: Vec<Ci> = written.into_iter().map(|w| w.ci).collect();
        let (items, relationships) = self.plan_to_pb(&batch, &plan, &created);
        let committed = pb::ImportBatch {
            items,
            relationships,
            ..Default::default()
        };
        if !self
            .store
            .finish_import(
                &txn,
                &caller.tenant,
                row.id,
                "committed",
                B64.encode(committed.encode_to_vec()),
                now,
            )
            .await?
        {
            return Err(CmdbError::Precondition(
                "the import was committed or discarded meanwhile".into(),
            ));
        }
        row.state = "committed".into();
        row.finished_at = Some(now);
        let result = self.batch_pb(&row, committed.items, committed.relationships);
        self.store
            .stage(
                &txn,
                Fact::ImportCommitted {
                    batch: summary(&result),
                }
                .into_event(
                    &caller.tenant,
                    &result.id,
                    &pb::ConfigurationItem::default(),
                    &caller.actor_pb(),
                ),
                now,
            )
            .await?;
        self.store.commit(txn).await?;
        self.update_graph(&caller.tenant, &catalog, &touched, &edges, &[]);
        if touched.len() + edges.len() >= BULK_WRITE_ROWS {
            let store = self.store.clone();
            tokio::spawn(async move {
                if let Err(error) = store.refresh_statistics().await {
                    tracing::warn!(error = %error, "refreshing planner statistics failed");
                }
            });
        }
        Ok(result)
    }

    pub async fn list_imports(
        &self,
        caller: &Caller,
        request: pb::ListImportsRequest,
    ) -> CmdbResult<pb::ListImportsResponse> {
        Self::require_read(caller)?;
        let state = match pb::ImportState::try_from(request.state)
            .unwrap_or(pb::ImportState::Unspecified)
        {
            pb::ImportState::Unspecified => None,
            pb::ImportState::Staged => Some("staged"),
            pb::ImportState::Committed => Some("committed"),
            pb::ImportState::Discarded => Some("discarded"),
        };
        let mut violations = Violations::new();
        let before = if request.page_token.is_empty() {
            None
        } else {
            let cursor = paging::decode_cursor::<Uuid>(&request.page_token);
            if cursor.is_none() {
                violations.push(
                    "page_token",
                    "not a token from a previous page of this list",
                );
            }
            cursor
        };
        violations.into_result()?;
        let limit = paging::page_size(request.page_size, 20, 100);
        let rows = self
            .store
            .imports(
                self.store.db().connection(),
                &caller.tenant,
                state,
                before,
                limit,
            )
            .await?;
        let next_page_token = match rows.last() {
            Some(last) if rows.len() as u64 == limit => paging::encode_cursor(&last.id),
            _ => String::new(),
        };
        let mut batches = Vec::new();
        for row in &rows {
            let plan = Self::decode_plan(row)?;
            batches.push(summary(&self.batch_pb(row, plan.items, plan.relationships)));
        }
        Ok(pb::ListImportsResponse {
            batches,
            next_page_token,
        })
    }
}

/// A CI an import commit creates or updates, with what its history entry and event say.
struct WrittenCi {
    ci: Ci,
    source: String,
    changes: Vec<d::FieldChange>,
    created: bool,
}

/// A batch without its items and relationships: what a list page and the `import.committed`
/// event carry, since a batch of thousands of items fits neither (the proto says so).
fn summary(batch: &pb::ImportBatch) -> pb::ImportBatch {
    pb::ImportBatch {
        items: Vec::new(),
        relationships: Vec::new(),
        ..batch.clone()
    }
}

fn precedence_from_pb(wire: &pb::SourcePrecedence) -> SourcePrecedence {
    SourcePrecedence {
        default_order: wire
            .default_order
            .as_ref()
            .map(|o| o.sources.clone())
            .unwrap_or_default(),
        by_field: wire
            .by_field
            .iter()
            .map(|(field, order)| (field.clone(), order.sources.clone()))
            .collect(),
    }
}

fn precedence_to_pb(precedence: &SourcePrecedence) -> pb::SourcePrecedence {
    pb::SourcePrecedence {
        default_order: Some(pb::SourceOrder {
            sources: precedence.default_order.clone(),
        }),
        by_field: precedence
            .by_field
            .iter()
            .map(|(field, sources)| {
                (
                    field.clone(),
                    pb::SourceOrder {
                        sources: sources.clone(),
                    },
                )
            })
            .collect(),
    }
}

/// The built-in classes plus the tenant's own, read from the store.
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

/// `items[3].attributes.os` with prefix `items[` → `Some(3)`.
fn indexed(field: &str, prefix: &str) -> Option<usize> {
    field.strip_prefix(prefix)?.split(']').next()?.parse().ok()
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

#[tonic::async_trait]
impl pb::cmdb_service_server::CmdbService for CmdbApi {
    async fn list_classes(
        &self,
        request: Request<pb::ListClassesRequest>,
    ) -> Result<Response<pb::ListClassesResponse>, Status> {
        let caller = caller_of(&request)?;
        reply(
            CmdbApi::list_classes(self, &caller)
                .await
                .map(|classes| pb::ListClassesResponse { classes }),
        )
    }
    async fn create_class(
        &self,
        request: Request<pb::CreateClassRequest>,
    ) -> Result<Response<pb::CreateClassResponse>, Status> {
        let caller = caller_of(&request)?;
        reply(
            CmdbApi::create_class(self, &caller, request.into_inner())
                .await
                .map(|class| pb::CreateClassResponse { class: Some(class) }),
        )
    }
    async fn create_ci(
        &self,
        request: Request<pb::CreateCiRequest>,
    ) -> Result<Response<pb::CreateCiResponse>, Status> {
        let caller = caller_of(&request)?;
        reply(
            CmdbApi::create_ci(self, &caller, request.into_inner())
                .await
                .map(|ci| pb::CreateCiResponse {
                    ci: Some(convert::ci_to_pb(&self.region, &ci)),
                }),
        )
    }
    async fn get_ci(
        &self,
        request: Request<pb::GetCiRequest>,
    ) -> Result<Response<pb::GetCiResponse>, Status> {
        let caller = caller_of(&request)?;
        reply(
            CmdbApi::get_ci(self, &caller, &request.get_ref().id)
                .await
                .map(|ci| pb::GetCiResponse {
                    ci: Some(convert::ci_to_pb(&self.region, &ci)),
                }),
        )
    }
    async fn update_ci(
        &self,
        request: Request<pb::UpdateCiRequest>,
    ) -> Result<Response<pb::UpdateCiResponse>, Status> {
        let caller = caller_of(&request)?;
        reply(
            CmdbApi::update_ci(self, &caller, request.into_inner())
                .await
                .map(|ci| pb::UpdateCiResponse {
                    ci: Some(convert::ci_to_pb(&self.region, &ci)),
                }),
        )
    }
    async fn retire_ci(
        &self,
        request: Request<pb::RetireCiRequest>,
    ) -> Result<Response<pb::RetireCiResponse>, Status> {
        let caller = caller_of(&request)?;
        reply(
            CmdbApi::retire_ci(self, &caller, request.into_inner())
                .await
                .map(|ci| pb::RetireCiResponse {
                    ci: Some(convert::ci_to_pb(&self.region, &ci)),
                }),
        )
    }
    async fn list_cis(
        &self,
        request: Request<pb::ListCisRequest>,
    ) -> Result<Response<pb::ListCisResponse>, Status> {
        let caller = caller_of(&request)?;
        reply(CmdbApi::list_cis(self, &caller, request.into_inner()).await)
    }
    async fn get_ci_history(
        &self,
        request: Request<pb::GetCiHistoryRequest>,
    ) -> Result<Response<pb::GetCiHistoryResponse>, Status> {
        let caller = caller_of(&request)?;
        reply(
            self.history(&caller, &request.get_ref().id)
                .await
                .map(|entries| pb::GetCiHistoryResponse { entries }),
        )
    }
    async fn add_relationship(
        &self,
        request: Request<pb::AddRelationshipRequest>,
    ) -> Result<Response<pb::AddRelationshipResponse>, Status> {
        let caller = caller_of(&request)?;
        reply(
            CmdbApi::add_relationship(self, &caller, request.into_inner())
                .await
                .map(|r| pb::AddRelationshipResponse {
                    relationship: Some(r),
                }),
        )
    }
    async fn remove_relationship(
        &self,
        request: Request<pb::RemoveRelationshipRequest>,
    ) -> Result<Response<pb::RemoveRelationshipResponse>, Status> {
        let caller = caller_of(&request)?;
        reply(
            CmdbApi::remove_relationship(self, &caller, &request.get_ref().id)
                .await
                .map(|()| pb::RemoveRelationshipResponse {}),
        )
    }
    async fn list_relationships(
        &self,
        request: Request<pb::ListRelationshipsRequest>,
    ) -> Result<Response<pb::ListRelationshipsResponse>, Status> {
        let caller = caller_of(&request)?;
        reply(
            CmdbApi::list_relationships(self, &caller, &request.get_ref().ci_id)
                .await
                .map(|relationships| pb::ListRelationshipsResponse { relationships }),
        )
    }
    async fn analyze_impact(
        &self,
        request: Request<pb::AnalyzeImpactRequest>,
    ) -> Result<Response<pb::EncodedAnalyzeImpactResponse>, Status> {
        let caller = caller_of(&request)?;
        reply(CmdbApi::analyze_impact(self, &caller, request.into_inner()))
    }
    async fn stage_import(
        &self,
        request: Request<pb::StageImportRequest>,
    ) -> Result<Response<pb::StageImportResponse>, Status> {
        let caller = caller_of(&request)?;
        reply(
            CmdbApi::stage_import(self, &caller, request.into_inner())
                .await
                .map(|batch| pb::StageImportResponse { batch: Some(batch) }),
        )
    }
    async fn get_import(
        &self,
        request: Request<pb::GetImportRequest>,
    ) -> Result<Response<pb::GetImportResponse>, Status> {
        let caller = caller_of(&request)?;
        reply(
            CmdbApi::get_import(self, &caller, &request.get_ref().id)
                .await
                .map(|batch| pb::GetImportResponse { batch: Some(batch) }),
        )
    }
    async fn commit_import(
        &self,
        request: Request<pb::CommitImportRequest>,
    ) -> Result<Response<pb::CommitImportResponse>, Status> {
        let caller = caller_of(&request)?;
        reply(
            CmdbApi::commit_import(self, &caller, &request.get_ref().id)
                .await
                .map(|batch| pb::CommitImportResponse { batch: Some(batch) }),
        )
    }
    async fn discard_import(
        &self,
        request: Request<pb::DiscardImportRequest>,
    ) -> Result<Response<pb::DiscardImportResponse>, Status> {
        let caller = caller_of(&request)?;
        reply(
            CmdbApi::discard_import(self, &caller, &request.get_ref().id)
                .await
                .map(|batch| pb::DiscardImportResponse { batch: Some(batch) }),
        )
    }
    async fn get_source_precedence(
        &self,
        request: Request<pb::GetSourcePrecedenceRequest>,
    ) -> Result<Response<pb::GetSourcePrecedenceResponse>, Status> {
        let caller = caller_of(&request)?;
        reply(
            CmdbApi::get_source_precedence(self, &caller)
                .await
                .map(|p| pb::GetSourcePrecedenceResponse {
                    precedence: Some(p),
                }),
        )
    }
    async fn set_source_precedence(
        &self,
        request: Request<pb::SetSourcePrecedenceRequest>,
    ) -> Result<Response<pb::SetSourcePrecedenceResponse>, Status> {
        let caller = caller_of(&request)?;
        reply(
            CmdbApi::set_source_precedence(self, &caller, request.into_inner())
                .await
                .map(|p| pb::SetSourcePrecedenceResponse {
                    precedence: Some(p),
                }),
        )
    }
    async fn list_imports(
        &self,
        request: Request<pb::ListImportsRequest>,
    ) -> Result<Response<pb::ListImportsResponse>, Status> {
        let caller = caller_of(&request)?;
        reply(CmdbApi::list_imports(self, &caller, request.into_inner()).await)
    }
}
