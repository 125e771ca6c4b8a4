//! Configuration items: create, read, update, retire, list, history.
//!
//! A create is identified as an import item of source `api` would be (the class's
//! identification rules against the tenant's CIs): a CI that is already there is refused with
//! `ALREADY_EXISTS`, or merged into when the caller asks (`merge_if_identified`).

use desk_kit::{
    auth::Caller,
    db::WriteTxn,
    idempotency::{FingerprintHasher, IdempotentCreate, Recorded},
    ids, paging,
};
use desk_proto::{cmdb::v1 as pb, common::v1 as common};
use uuid::Uuid;

use super::{CmdbApi, CmdbError, CmdbResult, convert, lookup, optional_enum};
use crate::{
    domain::{
        self as d, Ci, ClassCatalog, CreateCi, CreateOutcome, CreateRefused, Identification, NewCi,
        Permission, Provenance, RetireCi, UpdateCi, Violations, authorize, identify_new_ci,
        keys_of_new_ci,
    },
    store::{CiFilter, IDEMPOTENCY_KEYS},
};

impl CmdbApi {
    pub async fn create_ci(&self, caller: &Caller, request: pb::CreateCiRequest) -> CmdbResult<Ci> {
        let (command, found) = parse_create(&request);
        authorize(&caller.roles, Permission::Write)?;
        let catalog = self.catalog(&caller.tenant).await?;
        let new = command.checked(&catalog, found)?;
        let idempotent = idempotent_create(caller, &request);
        if let Some(create) = &idempotent
            && let Some(earlier) = self
                .replay_create(self.store.db().connection(), caller, &catalog, create)
                .await?
        {
            return Ok(earlier);
        }

        // Identification reads in the transaction that writes, with the tenant's identifications
        // taken in turn (import commits too): two creates describing one new CI cannot both make it.
        let txn = self.store.begin().await?;
        self.store.lock_identification(&txn, &caller.tenant).await?;
        if let Some(create) = &idempotent
            && let Some(earlier) = self.replay_create(&*txn, caller, &catalog, create).await?
        {
            // A concurrent attempt with this key committed while this one waited for its turn.
            return Ok(earlier);
        }
        let identification = self.identify(&txn, &catalog, caller, &new).await?;
        let precedence = self.precedence(&caller.tenant).await?;
        let now = self.now();
        let provenance = Provenance::through_api(caller, now);
        let outcome = command
            .decide(new, identification, &precedence, &provenance)
            .map_err(|refused| self.create_refused(refused))?;

        let (ci, write) = match outcome {
            CreateOutcome::Create(new) => {
                let write = new.create(ids::new_uuid(), caller.tenant.clone(), &provenance);
                (write.ci.clone(), Some(write))
            }
            CreateOutcome::Merge {
                write: Some(write), ..
            } => (write.ci.clone(), Some(*write)),
            CreateOutcome::Merge {
                into, write: None, ..
            } => (*into, None),
        };
        if let Some(create) = &idempotent
            && IDEMPOTENCY_KEYS.record(&txn, create, ci.id, now).await?
                == Recorded::TakenConcurrently
        {
            // A concurrent retry with the same key won: answer with its CI, write nothing.
            drop(txn);
            return self
                .replay_create(self.store.db().connection(), caller, &catalog, create)
                .await?
                .ok_or(CmdbError::NotFound("CI"));
        }
        if let Some(write) = &write {
            self.store_ci_write(&txn, caller, write).await?;
        }
        self.store.commit(txn).await?;
        if write.is_some() {
            self.update_graph(
                &caller.tenant,
                &catalog,
                std::slice::from_ref(&ci),
                Vec::new(),
            );
        }
        Ok(ci)
    }

    /// Who the new CI is: each of its identification keys looked up in the write's transaction,
    /// and the domain's judgement of what they found.
    async fn identify(
        &self,
        txn: &WriteTxn,
        catalog: &ClassCatalog,
        caller: &Caller,
        new: &NewCi,
    ) -> CmdbResult<Identification> {
        let mut found_by_key = Vec::new();
        for key in keys_of_new_ci(catalog, new) {
            let found =
                lookup::find_by_key(&self.store, &**txn, catalog, &caller.tenant, &key).await?;
            found_by_key.push((key, found));
        }
        Ok(identify_new_ci(found_by_key))
    }

    /// The CI an earlier create with this key made, if the body matches; a conflict if it does not.
    async fn replay_create<C: sea_orm::ConnectionTrait>(
        &self,
        conn: &C,
        caller: &Caller,
        catalog: &ClassCatalog,
        create: &IdempotentCreate,
    ) -> CmdbResult<Option<Ci>> {
        let Some(ci_id) = IDEMPOTENCY_KEYS.earlier_result(conn, create).await? else {
            return Ok(None);
        };
        Ok(self
            .store
            .find(conn, catalog, &caller.tenant, ci_id)
            .await?)
    }

    /// What the caller is told when their create is an existing CI.
    fn create_refused(&self, refused: CreateRefused) -> CmdbError {
        let id = |uuid| ids::format_id(&self.region, uuid);
        match refused {
            CreateRefused::Identified { ci_id, rule } => CmdbError::AlreadyExists(format!(
                "this CI is already recorded as CI {}: identification rule \"{rule}\" matches it; \
                 change that CI with UpdateCi, or create with merge_if_identified to merge into it",
                id(ci_id)
            )),
            CreateRefused::Ambiguous { rule, ci_ids } => CmdbError::AlreadyExists(format!(
                "this CI is already recorded, more than once: identification rule \"{rule}\" \
                 matches CIs {}; merge or retire the duplicates first",
                ci_ids.into_iter().map(id).collect::<Vec<_>>().join(", ")
            )),
            CreateRefused::Merge { ci_id, error } => CmdbError::Precondition(format!(
                "this CI is recorded as CI {}, which cannot take it: {error}",
                id(ci_id)
            )),
        }
    }

    pub async fn get_ci(&self, caller: &Caller, id: &str) -> CmdbResult<Ci> {
        let id = self.existing_id(id);
        // A service token reaches only the methods opened to services (`SERVICE_METHODS`).
        if !caller.is_service() {
            authorize(&caller.roles, Permission::Read)?;
        }
        let id = id?;
        let catalog = self.catalog(&caller.tenant).await?;
        self.store
            .find(self.store.db().connection(), &catalog, &caller.tenant, id)
            .await?
            .ok_or(CmdbError::NotFound("CI"))
    }

    pub async fn update_ci(&self, caller: &Caller, request: pb::UpdateCiRequest) -> CmdbResult<Ci> {
        let (command, mut found) = parse_update(&request);
        let id = self.existing_id(&request.id);
        // A person or integration writes as source `api`; another desk service (its service
        // token reaches only `SERVICE_METHODS`) writes for a record of its own, which the
        // values' provenance names: the change service's change, say.
        let record = request.source_record.trim();
        let provenance = if caller.is_service() {
            if record.is_empty() {
                found.push(
                    "source_record",
                    "required from a service: the record this write is for",
                );
            } else {
                d::validate::opaque("source_record", record, 128, &mut found);
            }
            Provenance {
                source: caller.subject.clone(),
                actor: record.to_owned(),
                set_at: self.now(),
            }
        } else {
            authorize(&caller.roles, Permission::Write)?;
            if !record.is_empty() {
                found.push("source_record", "only desk services name a source record");
            }
            Provenance::through_api(caller, self.now())
        };
        command.check(found)?;
        let id = id?;
        let catalog = self.catalog(&caller.tenant).await?;

        let txn = self.store.begin().await?;
        let ci = self.stored_ci(&txn, &catalog, caller, id).await?;
        let Some(write) = command.apply(&catalog, &ci, &provenance)? else {
            return Ok(ci);
        };
        self.store_ci_write(&txn, caller, &write).await?;
        self.store.commit(txn).await?;
        self.update_graph(
            &caller.tenant,
            &catalog,
            std::slice::from_ref(&write.ci),
            Vec::new(),
        );
        Ok(write.ci)
    }

    pub async fn retire_ci(&self, caller: &Caller, request: pb::RetireCiRequest) -> CmdbResult<Ci> {
        let command = RetireCi {
            expected_version: request.expected_version,
            reason: request.reason,
        };
        let id = self.existing_id(&request.id);
        authorize(&caller.roles, Permission::Write)?;
        command.check(Violations::new())?;
        let id = id?;
        let catalog = self.catalog(&caller.tenant).await?;

        let txn = self.store.begin().await?;
        let ci = self.stored_ci(&txn, &catalog, caller, id).await?;
        let write = command.apply(ci, &Provenance::through_api(caller, self.now()))?;
        self.store_ci_write(&txn, caller, &write).await?;
        self.store.commit(txn).await?;
        self.update_graph(
            &caller.tenant,
            &catalog,
            std::slice::from_ref(&write.ci),
            Vec::new(),
        );
        Ok(write.ci)
    }

    /// The CI as stored, read in the write's transaction.
    async fn stored_ci(
        &self,
        txn: &WriteTxn,
        catalog: &ClassCatalog,
        caller: &Caller,
        id: Uuid,
    ) -> CmdbResult<Ci> {
        self.store
            .find(&**txn, catalog, &caller.tenant, id)
            .await?
            .ok_or(CmdbError::NotFound("CI"))
    }

    pub async fn list_cis(
        &self,
        caller: &Caller,
        request: pb::ListCisRequest,
    ) -> CmdbResult<pb::ListCisResponse> {
        authorize(&caller.roles, Permission::Read)?;
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
}

/// A `CreateCi` request as a command, with what is wrong on the wire.
fn parse_create(request: &pb::CreateCiRequest) -> (CreateCi, Violations) {
    let mut found = Violations::new();
    let command = CreateCi {
        class: request.class.clone(),
        name: request.name.clone(),
        status: optional_enum("status", request.status, convert::status, &mut found),
        environment: optional_enum(
            "environment",
            request.environment,
            convert::environment,
            &mut found,
        ),
        criticality: optional_enum(
            "criticality",
            request.criticality,
            convert::criticality,
            &mut found,
        ),
        owner_group: request.owner_group_id.clone(),
        location: request.location.clone(),
        region: request.region.clone(),
        attributes: convert::attributes_to_json("attributes", &request.attributes, &mut found),
        merge_if_identified: request.merge_if_identified,
    };
    if !request.idempotency_key.is_empty() {
        d::validate::opaque("idempotency_key", &request.idempotency_key, 128, &mut found);
    }
    (command, found)
}

/// The create's idempotency key with the fingerprint of its body, when it has a key.
fn idempotent_create(caller: &Caller, request: &pb::CreateCiRequest) -> Option<IdempotentCreate> {
    IdempotentCreate::new(
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
    )
}

/// An `UpdateCi` request as a command, with what is wrong on the wire.
fn parse_update(request: &pb::UpdateCiRequest) -> (UpdateCi, Violations) {
    let mut found = Violations::new();
    let command = UpdateCi {
        expected_version: request.expected_version,
        name: request.name.clone(),
        status: optional_enum("status", request.status, convert::status, &mut found),
        environment: optional_enum(
            "environment",
            request.environment,
            convert::environment,
            &mut found,
        ),
        criticality: optional_enum(
            "criticality",
            request.criticality,
            convert::criticality,
            &mut found,
        ),
        owner_group: request.owner_group_id.clone(),
        location: request.location.clone(),
        attributes: convert::attributes_to_json("attributes", &request.attributes, &mut found),
    };
    (command, found)
}
