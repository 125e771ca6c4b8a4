//! Provisioning batches: stage (check, plan, keep the plan for preview), read, commit (plan again
//! under the tenant's hierarchy lock, apply exactly the previewed plan or refuse), discard, list.

use std::collections::HashMap;

use desk_kit::{auth::Caller, blocking, ids};
use desk_proto::directory::v1 as pb;
use prost::Message as _;
use sea_orm::ConnectionTrait;
use uuid::Uuid;

use super::{DirectoryApi, DirectoryError, DirectoryResult, convert, refuse_first};
use crate::{
    domain::{
        CheckedBatch, Directory, Permission, PersonFieldsInput, ProvisionedPersonInput,
        ProvisioningPlan, ProvisioningState, ProvisioningWrites, Violations, authorize,
        provisioning::{self, check_batch, check_open},
    },
    store::{StoreError, StoredBatch},
};

impl DirectoryApi {
    pub async fn stage_provisioning(
        &self,
        caller: &Caller,
        request: pb::StageProvisioningRequest,
    ) -> DirectoryResult<pb::ProvisioningBatch> {
        let checked = checked_request(&request);
        refuse_first(
            authorize(&caller.roles, Permission::Provision),
            Violations::new(),
        )?;
        let batch = checked?;
        let conn = self.store.db().connection();
        let directory = self.directory_for(conn, &caller.tenant, &batch).await?;
        let now = self.now();
        let (plan, _) = blocking::in_place(|| {
            provisioning::plan(
                &batch,
                &directory,
                now,
                &mut |_| ids::new_uuid(),
                &mut ids::new_uuid,
            )
        })?;
        let id = ids::new_uuid();
        let staged = self.batch_to_pb(
            id,
            &batch,
            ProvisioningState::Staged,
            &plan,
            &caller.subject,
            now,
            None,
        );
        let txn = self.store.begin().await?;
        self.store
            .insert_batch(
                &txn,
                &StoredBatch {
                    id,
                    tenant_id: caller.tenant.clone(),
                    source: batch.source.clone(),
                    state: ProvisioningState::Staged,
                    request: request.encode_to_vec(),
                    plan: staged.encode_to_vec(),
                    created_by: caller.subject.clone(),
                    created_at: now,
                    finished_at: None,
                },
            )
            .await?;
        self.store.commit(txn).await?;
        Ok(staged)
    }

    pub async fn get_provisioning(
        &self,
        caller: &Caller,
        id: &str,
    ) -> DirectoryResult<pb::ProvisioningBatch> {
        let id = self.target(id, "provisioning batch");
        authorize(&caller.roles, Permission::Provision)?;
        let stored = self
            .store
            .batch(self.store.db().connection(), &caller.tenant, id?)
            .await?
            .ok_or(DirectoryError::NotFound("provisioning batch"))?;
        decode_plan(&stored)
    }

    pub async fn commit_provisioning(
        &self,
        caller: &Caller,
        id: &str,
    ) -> DirectoryResult<pb::ProvisioningBatch> {
        let id = self.target(id, "provisioning batch");
        authorize(&caller.roles, Permission::Provision)?;
        let id = id?;
        let txn = self.store.begin().await?;
        // Manager links are read and written under the lock: no other write closes a cycle
        // between this plan's check and its commit.
        self.lock_hierarchy(&txn, &caller.tenant).await?;
        let stored = self
            .store
            .batch(&*txn, &caller.tenant, id)
            .await?
            .ok_or(DirectoryError::NotFound("provisioning batch"))?;
        check_open(stored.state)?;
        let staged = decode_plan(&stored)?;
        let request = pb::StageProvisioningRequest::decode(stored.request.as_slice())
            .map_err(|e| StoreError::Corrupt(format!("staged provisioning request: {e}")))?;
        let batch = checked_request(&request)?;
        let directory = self.directory_for(&*txn, &caller.tenant, &batch).await?;
        let created_ids: HashMap<String, Uuid> = staged
            .people
            .iter()
            .filter(|p| p.action == pb::ProvisioningAction::Create as i32)
            .filter_map(|p| {
                ids::parse_id(&p.person_id).map(|parsed| (p.external_id.clone(), parsed.uuid))
            })
            .collect();
        let now = self.now();
        let planned = blocking::in_place(|| {
            provisioning::plan(
                &batch,
                &directory,
                now,
                &mut |external| {
                    created_ids
                        .get(external)
                        .copied()
                        .unwrap_or_else(ids::new_uuid)
                },
                &mut ids::new_uuid,
            )
        });
        let (plan, writes) = planned.map_err(|_| self.plan_stale())?;
        let committed = self.batch_to_pb(
            id,
            &batch,
            ProvisioningState::Committed,
            &plan,
            &stored.created_by,
            stored.created_at,
            Some(now),
        );
        if committed.people != staged.people {
            return Err(self.plan_stale());
        }
        self.apply(&txn, caller, writes, now).await?;
        if !self
            .store
            .finish_batch(
                &txn,
                &caller.tenant,
                id,
                ProvisioningState::Committed,
                &committed.encode_to_vec(),
                now,
            )
            .await?
        {
            return Err(DirectoryError::Concurrent("provisioning batch"));
        }
        self.store.commit(txn).await?;
        Ok(committed)
    }

    fn plan_stale(&self) -> DirectoryError {
        DirectoryError::PlanStale(
            "the directory changed since this batch was previewed: stage it again to preview what it does now".into(),
        )
    }

    /// Writes what a plan decided, with its events, in `txn`.
    async fn apply(
        &self,
        txn: &desk_kit::db::WriteTxn,
        caller: &Caller,
        writes: ProvisioningWrites,
        now: chrono::DateTime<chrono::Utc>,
    ) -> DirectoryResult<()> {
        self.store.insert_people(txn, &writes.created).await?;
        for (person, expected) in &writes.changed {
            if !self.store.update_person(txn, person, *expected).await? {
                return Err(DirectoryError::Concurrent("person"));
            }
        }
        self.store
            .insert_memberships(txn, &writes.new_memberships)
            .await?;
        for (membership, expected) in &writes.changed_memberships {
            if !self
                .store
                .update_membership(txn, membership, *expected)
                .await?
            {
                return Err(DirectoryError::Concurrent("membership"));
            }
        }
        self.publish(txn, caller, &writes.facts, now).await
    }

    pub async fn discard_provisioning(
        &self,
        caller: &Caller,
        id: &str,
    ) -> DirectoryResult<pb::ProvisioningBatch> {
        let id = self.target(id, "provisioning batch");
        authorize(&caller.roles, Permission::Provision)?;
        let id = id?;
        let txn = self.store.begin().await?;
        let stored = self
            .store
            .batch(&*txn, &caller.tenant, id)
            .await?
            .ok_or(DirectoryError::NotFound("provisioning batch"))?;
        check_open(stored.state)?;
        let now = self.now();
        let mut discarded = decode_plan(&stored)?;
        discarded.state = pb::ProvisioningState::Discarded as i32;
        discarded.finish_time = convert::timestamp(now);
        if !self
            .store
            .finish_batch(
                &txn,
                &caller.tenant,
                id,
                ProvisioningState::Discarded,
                &discarded.encode_to_vec(),
                now,
            )
            .await?
        {
            return Err(DirectoryError::Concurrent("provisioning batch"));
        }
        self.store.commit(txn).await?;
        Ok(discarded)
    }

    pub async fn list_provisionings(
        &self,
        caller: &Caller,
        request: pb::ListProvisioningsRequest,
    ) -> DirectoryResult<pb::ListProvisioningsResponse> {
        let mut violations = Violations::new();
        let state = convert::state(request.state).unwrap_or_else(|| {
            violations.push("state", format!("unknown value {}", request.state));
            None
        });
        let (size, before) =
            super::page::<Uuid>(request.page_size, &request.page_token, &mut violations);
        refuse_first(authorize(&caller.roles, Permission::Provision), violations)?;
        let rows = self
            .store
            .list_batches(
                self.store.db().connection(),
                &caller.tenant,
                state,
                before,
                size + 1,
            )
            .await?;
        let (rows, next_page_token) = super::next_page(rows, size, |b: &StoredBatch| b.id);
        let batches = rows
            .iter()
            .map(|stored| {
                decode_plan(stored).map(|mut batch| {
                    batch.people.clear();
                    batch
                })
            })
            .collect::<DirectoryResult<Vec<_>>>()?;
        Ok(pb::ListProvisioningsResponse {
            batches,
            next_page_token,
        })
    }

    /// What the directory holds that `batch` touches, read through `conn`.
    async fn directory_for<C: ConnectionTrait>(
        &self,
        conn: &C,
        tenant: &str,
        batch: &CheckedBatch,
    ) -> DirectoryResult<Directory> {
        let by_external_id = self
            .store
            .people_by_external_ids(conn, tenant, &batch.external_ids())
            .await?;
        let by_subject = self
            .store
            .people_by_subjects(conn, tenant, &batch.subjects())
            .await?;
        let teams = self.store.teams(conn, tenant).await?;
        let manager_links = self.store.manager_links(conn, tenant).await?;
        let missing = if batch.deactivate_missing {
            let managed = self
                .store
                .people_of_source(conn, tenant, &batch.source)
                .await?;
            let ids = batch.missing(&managed);
            self.store.people_by_ids(conn, tenant, &ids).await?
        } else {
            Vec::new()
        };
        let mut people: Vec<Uuid> = by_external_id
            .values()
            .chain(by_subject.values())
            .chain(&missing)
            .map(|p| p.id)
            .collect();
        people.sort();
        people.dedup();
        let memberships = self
            .store
            .memberships_of_people(conn, tenant, &people)
            .await?;
        Ok(Directory {
            tenant: tenant.to_owned(),
            region: self.region.clone(),
            by_external_id,
            by_subject,
            teams,
            manager_links,
            missing,
            memberships,
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn batch_to_pb(
        &self,
        id: Uuid,
        batch: &CheckedBatch,
        state: ProvisioningState,
        plan: &ProvisioningPlan,
        created_by: &str,
        created_at: chrono::DateTime<chrono::Utc>,
        finished_at: Option<chrono::DateTime<chrono::Utc>>,
    ) -> pb::ProvisioningBatch {
        let counts = plan.counts();
        let count = |n: usize| i32::try_from(n).unwrap_or(i32::MAX);
        pb::ProvisioningBatch {
            id: self.format(id),
            source: batch.source.clone(),
            state: convert::state_to_pb(state) as i32,
            deactivate_missing: batch.deactivate_missing,
            replace_memberships: batch.replace_memberships,
            people: plan
                .people
                .iter()
                .map(|p| convert::planned_to_pb(&self.region, p))
                .collect(),
            creates: count(counts.creates),
            updates: count(counts.updates),
            unchanged: count(counts.unchanged),
            deactivations: count(counts.deactivations),
            reactivations: count(counts.reactivations),
            memberships_added: count(counts.memberships_added),
            memberships_removed: count(counts.memberships_removed),
            created_by: created_by.to_owned(),
            create_time: convert::timestamp(created_at),
            finish_time: finished_at.and_then(convert::timestamp),
        }
    }
}

fn decode_plan(stored: &StoredBatch) -> DirectoryResult<pb::ProvisioningBatch> {
    Ok(pb::ProvisioningBatch::decode(stored.plan.as_slice())
        .map_err(|e| StoreError::Corrupt(format!("staged provisioning plan: {e}")))?)
}

/// A staging request checked on its own: the wire's enum values, then the domain's rules.
fn checked_request(request: &pb::StageProvisioningRequest) -> DirectoryResult<CheckedBatch> {
    let mut wire = Violations::new();
    let people: Vec<ProvisionedPersonInput<'_>> = request
        .people
        .iter()
        .enumerate()
        .map(|(index, person)| ProvisionedPersonInput {
            external_id: &person.external_id,
            subject: &person.subject,
            fields: PersonFieldsInput {
                display_name: &person.display_name,
                email: &person.email,
                phone: &person.phone,
                locale: &person.locale,
                time_zone: &person.time_zone,
                department: &person.department,
                location: &person.location,
                vip: person.vip,
            },
            manager_external_id: &person.manager_external_id,
            teams: person
                .teams
                .iter()
                .enumerate()
                .map(|(team_index, team)| {
                    let role = convert::role(team.role).unwrap_or_else(|| {
                        wire.push(
                            format!("people[{index}].teams[{team_index}].role"),
                            format!("unknown value {}", team.role),
                        );
                        None
                    });
                    (team.team.as_str(), role)
                })
                .collect(),
        })
        .collect();
    let checked = check_batch(
        &request.source,
        &people,
        request.deactivate_missing,
        request.replace_memberships,
    );
    match checked {
        Ok(batch) if wire.is_empty() => Ok(batch),
        Ok(_) => Err(wire.into()),
        Err(violations) => {
            for violation in violations {
                wire.push(violation.field, violation.description);
            }
            Err(wire.into())
        }
    }
}
