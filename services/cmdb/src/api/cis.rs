//! Configuration items: create, read, update, retire, list, history.

use super::CmdbError;
use super::convert;
use super::non_empty;
use super::optional_enum;
use super::{Caller, CmdbApi, CmdbResult};
use crate::domain as d;
use crate::domain::API_SOURCE;
use crate::domain::Ci;
use crate::domain::CiPatch;
use crate::domain::CiStatus;
use crate::domain::ClassCatalog;
use crate::domain::Criticality;
use crate::domain::Environment;
use crate::domain::NewCi;
use crate::domain::Provenance;
use crate::domain::ValidationMode;
use crate::domain::Violations;
use crate::domain::validate_attributes;
use crate::events::Fact;
use crate::store::CiFilter;
use crate::store::IDEMPOTENCY_KEYS;
use desk_kit::idempotency::FingerprintHasher;
use desk_kit::idempotency::IdempotentCreate;
use desk_kit::idempotency::Recorded;
use desk_kit::ids;
use desk_kit::paging;
use desk_proto::cmdb::v1 as pb;
use desk_proto::common::v1 as common;
use std::collections::BTreeMap;
use uuid::Uuid;

impl CmdbApi {
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
}
