//! Requests: submit (idempotent), read, list one's own, cancel; approvals waiting for the caller,
//! decisions, delegation; fulfillment tasks listed, claimed and completed.

use desk_kit::{
    auth::{Caller, Role},
    idempotency::{Fingerprint, IdempotentCreate, Recorded},
    paging,
};
use desk_proto::catalog::v1 as pb;
use uuid::Uuid;

use super::{ApiFailure, ApiResult, CatalogApi, convert};
use crate::{
    domain::{
        Delegation, Permission, Violations, authorize,
        fulfillment::{Task, TaskState},
        request::{Against, Request},
        staff,
    },
    events,
    store::IDEMPOTENCY_KEYS,
};

/// The most requests one page of `ListMyRequests` holds.
const PAGE_MAX: u64 = 100;
const PAGE_DEFAULT: u64 = 25;

/// Whether the caller may read the request: its requester, an approver of one of its steps, or
/// the desk's staff. Anyone else gets `NOT_FOUND`, as for a missing one.
fn may_read(caller: &Caller, request: &Request) -> bool {
    request.requester == caller.subject
        || staff(&caller.roles)
        || request
            .approvals
            .iter()
            .any(|s| s.approvers.contains(&caller.subject))
}

/// Who may work a task: integrators (and admins) the automated ones; members of the task's team,
/// its managers and admins the others.
fn may_work(caller: &Caller, task: &Task) -> bool {
    if caller.has_any(&[Role::Admin, Role::Service]) {
        return true;
    }
    if task.automated {
        caller.has(Role::Integrator)
    } else {
        caller.groups.contains(&task.group) || caller.has(Role::Manager)
    }
}

impl CatalogApi {
    fn request_id(&self, text: &str) -> ApiResult<Uuid> {
        convert::id_of(&self.region, text).ok_or(ApiFailure::NotFound("request"))
    }

    pub async fn submit(
        &self,
        caller: &Caller,
        request: pb::SubmitRequestRequest,
    ) -> ApiResult<Request> {
        let offering_id = convert::id_of(&self.region, &request.offering_id)
            .ok_or(ApiFailure::NotFound("offering"))?;
        let mut found = Violations::new();
        let mut given = Vec::with_capacity(request.answers.len());
        for answer in &request.answers {
            match convert::value_of(answer.value.as_ref()) {
                Some(value) => given.push((answer.field.clone(), value)),
                None => found.push(format!("answers.{}", answer.field), "a value"),
            }
        }
        let offering = self
            .store
            .offering(&caller.tenant, offering_id)
            .await?
            .filter(|o| {
                o.definition
                    .visibility
                    .admits(&caller.roles, &caller.groups)
            })
            .ok_or(ApiFailure::NotFound("offering"))?;
        if !offering.definition.active {
            return Err(ApiFailure::Precondition(
                "the offering is retired: it cannot be requested".into(),
            ));
        }
        if request.offering_version != 0 && request.offering_version != offering.version {
            return Err(ApiFailure::Precondition(format!(
                "the offering is at version {}, not {}: reload its form",
                offering.version, request.offering_version
            )));
        }
        let answers = match offering.definition.form.validate(&given) {
            Ok(answers) if found.is_empty() => answers,
            Ok(_) => return Err(found.into()),
            Err(violations) => {
                for (field, description) in violations.iter() {
                    found.push(field.clone(), description.clone());
                }
                return Err(found.into());
            }
        };

        let idempotent = IdempotentCreate::new(
            &caller.tenant,
            &caller.subject,
            &request.idempotency_key,
            || {
                let mut body = request.clone();
                body.idempotency_key.clear();
                Fingerprint::of_message(&body)
            },
        );
        if let Some(create) = &idempotent
            && let Some(earlier) = IDEMPOTENCY_KEYS
                .earlier_result(self.store.db().connection(), create)
                .await?
        {
            return self.earlier(caller, earlier).await;
        }

        let now = self.now();
        let txn = self.store.begin().await?;
        let number = self.store.next_number(&*txn, &caller.tenant).await?;
        let resolved = self
            .resolve(
                &txn,
                &caller.tenant,
                &caller.subject,
                &offering.definition.approval,
            )
            .await?;
        let id = desk_kit::ids::new_uuid();
        let (created, facts) = Request::submit(
            id,
            &caller.tenant,
            number,
            &caller.subject,
            answers,
            &Against {
                offering_id: offering.id,
                offering_version: offering.version,
                offering_name: &offering.definition.name,
                policy: &offering.definition.approval,
                plan: &offering.definition.fulfillment,
                target_fulfillment_minutes: offering.definition.target_fulfillment_minutes,
            },
            &|approvers| resolved.get(approvers),
            now,
        );
        if let Some(create) = &idempotent
            && IDEMPOTENCY_KEYS.record(&txn, create, id, now).await? == Recorded::TakenConcurrently
        {
            drop(txn);
            let earlier = IDEMPOTENCY_KEYS
                .earlier_result(self.store.db().connection(), create)
                .await?
                .ok_or(ApiFailure::NotFound("request"))?;
            return self.earlier(caller, earlier).await;
        }
        self.store.insert_request(&txn, &created).await?;
        let events = events::of_facts(&self.region, &created, &offering, &facts, &caller.actor());
        self.store.stage_many(&txn, events, now).await?;
        self.store.commit(txn).await?;
        Ok(created)
    }

    async fn earlier(&self, caller: &Caller, id: Uuid) -> ApiResult<Request> {
        self.store
            .request(self.store.db().connection(), &caller.tenant, id)
            .await?
            .ok_or(ApiFailure::NotFound("request"))
    }

    pub async fn get_request(&self, caller: &Caller, id: &str) -> ApiResult<Request> {
        let id = self.request_id(id)?;
        self.store
            .request(self.store.db().connection(), &caller.tenant, id)
            .await?
            .filter(|r| may_read(caller, r))
            .ok_or(ApiFailure::NotFound("request"))
    }

    pub async fn my_requests(
        &self,
        caller: &Caller,
        request: pb::ListMyRequestsRequest,
    ) -> ApiResult<(Vec<Request>, String)> {
        let limit = match request.page_size {
            n if n <= 0 => PAGE_DEFAULT,
            n => (n as u64).min(PAGE_MAX),
        };
        let before = if request.page_token.is_empty() {
            None
        } else {
            let mut found = Violations::new();
            let cursor: Option<Uuid> = paging::decode_cursor(&request.page_token);
            if cursor.is_none() {
                found.push("page_token", "not a token this service gave");
            }
            found.into_result()?;
            cursor
        };
        let requests = self
            .store
            .requests_of(&caller.tenant, &caller.subject, before, limit)
            .await?;
        let next = match requests.last() {
            Some(last) if requests.len() as u64 == limit => paging::encode_cursor(&last.id),
            _ => String::new(),
        };
        Ok((requests, next))
    }

    pub async fn cancel(
        &self,
        caller: &Caller,
        request: pb::CancelRequestRequest,
    ) -> ApiResult<Request> {
        let id = self.request_id(&request.id)?;
        let mut found = Violations::new();
        found.text("reason", &request.reason, 2000);
        found.into_result()?;
        let now = self.now();
        self.modify_and_commit(&caller.tenant, id, &caller.actor(), |r, _, _| {
            if !may_read(caller, r) {
                return Err(ApiFailure::NotFound("request"));
            }
            if r.requester != caller.subject {
                return Err(ApiFailure::Forbidden(
                    "only the requester cancels a request".into(),
                ));
            }
            Ok(r.cancel(&request.reason, now)?)
        })
        .await
    }

    /// Requests whose pending step waits for the caller or for someone who delegated to them.
    pub async fn my_approvals(&self, caller: &Caller) -> ApiResult<Vec<Request>> {
        let mut subjects = self
            .store
            .delegators_of(
                self.store.db().connection(),
                &caller.tenant,
                &caller.subject,
                self.now(),
            )
            .await?;
        subjects.push(caller.subject.clone());
        Ok(self.store.awaiting(&caller.tenant, &subjects).await?)
    }

    pub async fn decide(
        &self,
        caller: &Caller,
        request: pb::DecideApprovalRequest,
    ) -> ApiResult<Request> {
        let id = self.request_id(&request.request_id)?;
        let mut found = Violations::new();
        let verdict = convert::verdict_of(request.verdict);
        if verdict.is_none() {
            found.push("verdict", "approve or reject");
        }
        let step = u32::try_from(request.step).unwrap_or_else(|_| {
            found.push("step", "a step of the request");
            0
        });
        found.text("comment", &request.comment, 4000);
        found.into_result()?;
        let Some(verdict) = verdict else {
            return Err(ApiFailure::Precondition("no verdict".into()));
        };
        let now = self.now();
        let acting_for = self
            .store
            .delegators_of(
                self.store.db().connection(),
                &caller.tenant,
                &caller.subject,
                now,
            )
            .await?;
        self.modify_and_commit(
            &caller.tenant,
            id,
            &caller.actor(),
            |r, offering, resolved| {
                if !may_read(caller, r)
                    && !r
                        .approvals
                        .iter()
                        .any(|s| acting_for.iter().any(|a| s.approvers.contains(a)))
                {
                    return Err(ApiFailure::NotFound("request"));
                }
                Ok(r.decide(
                    &offering.definition.approval,
                    &offering.definition.fulfillment,
                    step,
                    &caller.subject,
                    &acting_for,
                    verdict,
                    &request.comment,
                    &|approvers| resolved.get(approvers),
                    now,
                )?)
            },
        )
        .await
    }

    pub async fn delegate(
        &self,
        caller: &Caller,
        request: pb::SetDelegationRequest,
    ) -> ApiResult<Delegation> {
        let mut found = Violations::new();
        let now = self.now();
        let start = match request.start_time.as_ref() {
            None => now,
            Some(t) => convert::time_of(Some(t)).unwrap_or_else(|| {
                found.push("start_time", "a time");
                now
            }),
        };
        let end = convert::time_of(request.end_time.as_ref()).unwrap_or_else(|| {
            found.push("end_time", "when the delegation ends");
            now
        });
        let delegation = Delegation {
            from: caller.subject.clone(),
            to: request.to_subject.trim().to_owned(),
            start,
            end,
        };
        delegation.check(found)?;
        self.store
            .set_delegation(&caller.tenant, &delegation)
            .await?;
        Ok(delegation)
    }

    pub async fn tasks(
        &self,
        caller: &Caller,
        request: pb::ListTasksRequest,
    ) -> ApiResult<Vec<(Request, Task)>> {
        authorize(&caller.roles, Permission::WorkTasks)?;
        let mut found = Violations::new();
        let group = request.group_id.trim();
        if group.is_empty() && !request.automated {
            found.push("group_id", "a team, or automated");
        }
        let mut states = Vec::new();
        for (i, state) in request.states.iter().enumerate() {
            match convert::task_state_of(*state) {
                Some(state) => states.push(state),
                None => found.push(format!("states[{i}]"), "a task state"),
            }
        }
        found.into_result()?;
        if states.is_empty() {
            states = vec![TaskState::Open, TaskState::Claimed];
        }
        let requests = self
            .store
            .with_tasks(
                &caller.tenant,
                (!group.is_empty()).then_some(group),
                request.automated,
            )
            .await?;
        let mut tasks = Vec::new();
        for r in requests {
            for task in &r.tasks {
                let fits = states.contains(&task.state)
                    && (group.is_empty() || task.group == group)
                    && (!request.automated || task.automated)
                    && may_work(caller, task);
                if fits {
                    tasks.push((r.clone(), task.clone()));
                }
            }
        }
        Ok(tasks)
    }

    /// Claims (`complete: None`) or completes a task.
    pub async fn work_task(
        &self,
        caller: &Caller,
        task_id: &str,
        complete: Option<&str>,
    ) -> ApiResult<(Request, Task)> {
        authorize(&caller.roles, Permission::WorkTasks)?;
        let (id, key) =
            convert::task_of(&self.region, task_id).ok_or(ApiFailure::NotFound("task"))?;
        if let Some(result) = complete {
            let mut found = Violations::new();
            found.text("result", result, 8000);
            found.into_result()?;
        }
        let now = self.now();
        let request = self
            .modify_and_commit(&caller.tenant, id, &caller.actor(), |r, _, _| {
                let task = r.task(&key).ok_or(ApiFailure::NotFound("task"))?;
                if !may_work(caller, task) {
                    return Err(ApiFailure::NotFound("task"));
                }
                Ok(match complete {
                    None => r.claim(&key, &caller.subject, now)?,
                    Some(result) => r.complete(&key, &caller.subject, result, now)?,
                })
            })
            .await?;
        let task = request
            .task(&key)
            .cloned()
            .ok_or(ApiFailure::NotFound("task"))?;
        Ok((request, task))
    }
}
