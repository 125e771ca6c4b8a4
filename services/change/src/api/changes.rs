//! Changes: create, read, edit, list, history, and each lifecycle step with what it publishes.

use chrono::Duration;
use desk_kit::{
    auth::Caller,
    idempotency::{FingerprintHasher, IdempotentCreate, Recorded},
    paging,
};
use desk_proto::change::v1 as pb;
use uuid::Uuid;

use super::{ApiFailure, ApiResult, ChangeApi, convert, history_actor};
use crate::{
    domain::{
        Approval, Assessment, Change, ChangeEdit, ChangeState, ChangeType, ConflictKind, Creation,
        Delegation, NewChange, Outcome, Permission, Step, Tally, Violations, authorize,
        change::event_of,
    },
    events,
    store::{ChangeFilter, IDEMPOTENCY_KEYS},
};

/// The most changes one list page holds.
const PAGE_MAX: u64 = 200;

impl ChangeApi {
    pub async fn create_change(
        &self,
        caller: &Caller,
        request: pb::CreateChangeRequest,
    ) -> ApiResult<Change> {
        authorize(&caller.roles, Permission::Raise)?;
        let now = self.now();
        let mut found = Violations::new();
        let template_id = (!request.template_id.trim().is_empty())
            .then(|| {
                convert::id_of(
                    &self.region,
                    "template_id",
                    &request.template_id,
                    &mut found,
                )
            })
            .flatten();
        let new = NewChange {
            change_type: convert::change_type(request.r#type),
            template: template_id,
            summary: request.summary.clone(),
            justification: request.justification.clone(),
            implementation_plan: request.implementation_plan.clone(),
            backout_plan: request.backout_plan.clone(),
            test_plan: request.test_plan.clone(),
            affected_cis: convert::ids_of(
                &self.region,
                "affected_ci_ids",
                &request.affected_ci_ids,
                &mut found,
            ),
            window: request
                .planned_window
                .as_ref()
                .and_then(|w| convert::window_of("planned_window", w, now, &mut found)),
            assignment_group: Some(request.assignment_group_id.clone()),
            implementer: Some(request.implementer_id.clone()),
            linked_incidents: request.linked_incident_ids.clone(),
            linked_problems: request.linked_problem_ids.clone(),
            linked_requests: request.linked_request_ids.clone(),
            ci_updates: convert::ci_updates_of(&self.region, &request.ci_updates, &mut found),
        };
        let template = match template_id {
            Some(id) => {
                let template = self.store.template(&caller.tenant, id).await?;
                if template.is_none() {
                    found.push("template_id", "no such template");
                }
                template
            }
            None => None,
        };
        if template.is_some() && new.change_type != Some(ChangeType::Standard) {
            found.push(
                "template_id",
                "only a standard change comes from a template",
            );
        }
        let known = |ci: Uuid| self.graphs.read(&caller.tenant, |p| p.graph.knows(ci));
        new.check(found, template.as_ref(), known)?;

        let idempotent = IdempotentCreate::new(
            &caller.tenant,
            &caller.subject,
            &request.idempotency_key,
            || {
                let mut body = request.clone();
                body.idempotency_key.clear();
                let updates = std::mem::take(&mut body.ci_updates);
                let mut hasher = FingerprintHasher::new();
                hasher.message(&body);
                for update in updates {
                    let mut plain = update.clone();
                    let attributes = std::mem::take(&mut plain.attributes);
                    hasher.message(&plain).map(&attributes);
                }
                hasher.finish()
            },
        );
        if let Some(create) = &idempotent
            && let Some(earlier) = IDEMPOTENCY_KEYS
                .earlier_result(self.store.db().connection(), create)
                .await?
        {
            return self.earlier(caller, earlier).await;
        }

        let txn = self.store.begin().await?;
        let number = self.store.next_number(&*txn, &caller.tenant).await?;
        let change = new.create(
            Creation {
                id: desk_kit::ids::new_uuid(),
                tenant: &caller.tenant,
                number,
                by: &caller.subject,
                now,
            },
            template.as_ref(),
        );
        if let Some(create) = &idempotent
            && IDEMPOTENCY_KEYS
                .record(&txn, create, change.id, now)
                .await?
                == Recorded::TakenConcurrently
        {
            drop(txn);
            let earlier = IDEMPOTENCY_KEYS
                .earlier_result(self.store.db().connection(), create)
                .await?
                .ok_or(ApiFailure::NotFound("change"))?;
            return self.earlier(caller, earlier).await;
        }
        self.store.insert_change(&txn, &change).await?;
        self.store
            .append_history(
                &*txn,
                &change,
                &history_actor(caller),
                "created",
                &[],
                "",
                now,
            )
            .await?;
        let event = events::lifecycle(&self.region, &change, "created", &caller.actor(), "");
        self.store.stage_many(&txn, vec![event], now).await?;
        self.store.commit(txn).await?;
        Ok(change)
    }

    async fn earlier(&self, caller: &Caller, id: Uuid) -> ApiResult<Change> {
        self.store
            .find_change(self.store.db().connection(), &caller.tenant, id)
            .await?
            .ok_or(ApiFailure::NotFound("change"))
    }

    pub async fn get_change(&self, caller: &Caller, id: &str) -> ApiResult<Change> {
        let found = self.load(caller, id).await;
        authorize(&caller.roles, Permission::Read)?;
        found
    }

    pub async fn update_change(
        &self,
        caller: &Caller,
        request: pb::UpdateChangeRequest,
    ) -> ApiResult<Change> {
        authorize(&caller.roles, Permission::Raise)?;
        let now = self.now();
        let mut found = Violations::new();
        let edit = ChangeEdit {
            expected_version: request.expected_version,
            summary: request.summary.clone(),
            justification: request.justification.clone(),
            implementation_plan: request.implementation_plan.clone(),
            backout_plan: request.backout_plan.clone(),
            test_plan: request.test_plan.clone(),
            affected_cis: request.replace_affected_cis.then(|| {
                convert::ids_of(
                    &self.region,
                    "affected_ci_ids",
                    &request.affected_ci_ids,
                    &mut found,
                )
            }),
            window: request
                .planned_window
                .as_ref()
                .and_then(|w| convert::window_of("planned_window", w, now, &mut found)),
            assignment_group: request.assignment_group_id.clone(),
            implementer: request.implementer_id.clone(),
            ci_updates: request
                .replace_ci_updates
                .then(|| convert::ci_updates_of(&self.region, &request.ci_updates, &mut found)),
        };
        found.into_result()?;
        let mut change = self.load(caller, &request.id).await?;
        let read = change.version;
        let known = |ci: Uuid| self.graphs.read(&caller.tenant, |p| p.graph.knows(ci));
        let changes = change.edit(edit, known, now)?;
        if changes.is_empty() {
            return Ok(change);
        }
        let event = events::lifecycle(&self.region, &change, "updated", &caller.actor(), "");
        self.write(
            caller,
            &change,
            read,
            "updated",
            &changes.into_vec(),
            "",
            vec![event],
        )
        .await?;
        Ok(change)
    }

    pub async fn list_changes(
        &self,
        caller: &Caller,
        request: pb::ListChangesRequest,
    ) -> ApiResult<(Vec<Change>, String)> {
        authorize(&caller.roles, Permission::Read)?;
        let mut found = Violations::new();
        let mut states = Vec::new();
        for (index, value) in request.states.iter().enumerate() {
            match convert::state(*value) {
                Some(state) => states.push(state),
                None => found.push(format!("states[{index}]"), "not a change state"),
            }
        }
        let change_type = (request.r#type != 0)
            .then(|| convert::change_type(request.r#type))
            .flatten();
        if request.r#type != 0 && change_type.is_none() {
            found.push("type", "not a change type");
        }
        let ci = (!request.ci_id.is_empty())
            .then(|| convert::id_of(&self.region, "ci_id", &request.ci_id, &mut found))
            .flatten();
        let after = if request.page_token.is_empty() {
            None
        } else {
            match paging::decode_cursor::<Uuid>(&request.page_token) {
                Some(after) => Some(after),
                None => {
                    found.push("page_token", "not a token of this list");
                    None
                }
            }
        };
        found.into_result()?;
        let limit = paging::page_size(request.page_size, 50, PAGE_MAX);
        let changes = self
            .store
            .list_changes(
                &caller.tenant,
                &ChangeFilter {
                    states,
                    change_type,
                    ci,
                    after,
                    limit,
                },
            )
            .await?;
        let next = match changes.last() {
            Some(last) if changes.len() as u64 == limit => paging::encode_cursor(&last.id),
            _ => String::new(),
        };
        Ok((changes, next))
    }

    pub async fn history(
        &self,
        caller: &Caller,
        id: &str,
    ) -> ApiResult<Vec<desk_proto::common::v1::AuditEntry>> {
        let change = self.get_change(caller, id).await?;
        let entries = self.store.history(&caller.tenant, change.id).await?;
        Ok(entries
            .into_iter()
            .map(|entry| desk_proto::common::v1::AuditEntry {
                version: entry.version,
                time: convert::timestamp(entry.at),
                actor: Some(desk_proto::common::v1::Actor {
                    subject: entry.actor.subject,
                    name: entry.actor.name,
                    roles: entry.actor.roles,
                }),
                action: entry.action,
                changes: entry
                    .changes
                    .into_iter()
                    .map(|c| desk_proto::common::v1::FieldChange {
                        field: c.field,
                        old_present: c.old.is_some(),
                        new_present: c.new.is_some(),
                        old_value: c.old.unwrap_or_default(),
                        new_value: c.new.unwrap_or_default(),
                    })
                    .collect(),
                note: entry.note,
            })
            .collect())
    }

    /// A step with nothing else to decide: checks the version, moves, writes, publishes.
    async fn step(
        &self,
        caller: &Caller,
        mut change: Change,
        expected_version: i64,
        step: Step,
        note: &str,
        prepare: impl FnOnce(&mut Change),
    ) -> ApiResult<Change> {
        change.check_version(expected_version)?;
        let read = change.version;
        let from = change.state;
        change.step(step, self.now())?;
        prepare(&mut change);
        let event = events::lifecycle(&self.region, &change, event_of(step), &caller.actor(), note);
        let changes = [state_change(from, change.state)];
        self.write(
            caller,
            &change,
            read,
            event_of(step),
            &changes,
            note,
            vec![event],
        )
        .await?;
        Ok(change)
    }

    pub async fn submit(
        &self,
        caller: &Caller,
        request: pb::SubmitChangeRequest,
    ) -> ApiResult<Change> {
        authorize(&caller.roles, Permission::Raise)?;
        let mut change = self.load(caller, &request.id).await?;
        change.check_version(request.expected_version)?;
        if change.affected_cis.is_empty() {
            return Err(ApiFailure::Precondition(
                "name at least one affected CI before submitting the change".into(),
            ));
        }
        let now = self.now();
        let read = change.version;
        let (policy, _) = self
            .store
            .policy(self.store.db().connection(), &caller.tenant)
            .await?;
        let validity = Duration::days(i64::from(policy.approval_validity_days));
        let mut events_out = Vec::new();
        let mut cab_needed = false;
        // Standard changes are pre-approved by their template; emergencies are assessed at
        // once and go to the emergency CAB. Normal changes wait for their assessment.
        if change.change_type != ChangeType::Normal {
            let risk = self.assess_risk(&caller.tenant, &change).await?;
            let rule = policy.rule_for(change.change_type, risk.level);
            cab_needed = rule.is_some();
            change.approval = Some(match rule {
                Some(rule) => Approval::for_rule(rule, change.change_type == ChangeType::Emergency),
                None => Approval::without_cab(now, validity),
            });
            change.assessment = Some(Assessment {
                risk,
                at: now,
                by: caller.subject.clone(),
            });
        }
        let from = change.state;
        change.step(Step::Submit { cab_needed }, now)?;
        events_out.push(events::lifecycle(
            &self.region,
            &change,
            "submitted",
            &caller.actor(),
            "",
        ));
        if change.state == ChangeState::Authorized {
            events_out.push(events::lifecycle(
                &self.region,
                &change,
                "approved",
                &caller.actor(),
                "pre-approved",
            ));
        }
        self.write(
            caller,
            &change,
            read,
            "submitted",
            &[state_change(from, change.state)],
            "",
            events_out,
        )
        .await?;
        Ok(change)
    }

    pub async fn assess(
        &self,
        caller: &Caller,
        request: pb::AssessChangeRequest,
    ) -> ApiResult<Change> {
        authorize(&caller.roles, Permission::Manage)?;
        let mut change = self.load(caller, &request.id).await?;
        change.check_version(request.expected_version)?;
        let now = self.now();
        let read = change.version;
        let (policy, _) = self
            .store
            .policy(self.store.db().connection(), &caller.tenant)
            .await?;
        let risk = self.assess_risk(&caller.tenant, &change).await?;
        let rule = policy.rule_for(change.change_type, risk.level).cloned();
        let from = change.state;
        change.step(
            Step::Assess {
                cab_needed: rule.is_some(),
            },
            now,
        )?;
        change.approval = Some(match &rule {
            Some(rule) => Approval::for_rule(rule, false),
            None => Approval::without_cab(
                now,
                Duration::days(i64::from(policy.approval_validity_days)),
            ),
        });
        let note = format!("risk {} ({})", risk.score, risk.level);
        change.assessment = Some(Assessment {
            risk,
            at: now,
            by: caller.subject.clone(),
        });
        let mut out = vec![events::lifecycle(
            &self.region,
            &change,
            "assessed",
            &caller.actor(),
            &note,
        )];
        if rule.is_none() {
            out.push(events::lifecycle(
                &self.region,
                &change,
                "approved",
                &caller.actor(),
                "no CAB for this risk level",
            ));
        }
        self.write(
            caller,
            &change,
            read,
            "assessed",
            &[state_change(from, change.state)],
            &note,
            out,
        )
        .await?;
        Ok(change)
    }

    pub async fn decide(
        &self,
        caller: &Caller,
        request: pb::DecideChangeRequest,
    ) -> ApiResult<Change> {
        let mut found = Violations::new();
        let verdict = convert::verdict(request.verdict);
        if verdict.is_none() {
            found.push("verdict", "approve or reject");
        }
        found.text("comment", &request.comment, 4000);
        let on_behalf_of = Some(request.on_behalf_of.trim()).filter(|m| !m.is_empty());
        let mut change = self.get_change(caller, &request.id).await?;
        found.into_result()?;
        let Some(verdict) = verdict else {
            return Err(ApiFailure::Precondition("no verdict".into()));
        };
        if change.state != ChangeState::Authorization {
            return Err(ApiFailure::Precondition(format!(
                "the CAB decides changes in authorization; this one is {}",
                change.state
            )));
        }
        let now = self.now();
        let read = change.version;
        let delegations = match on_behalf_of {
            Some(_) => {
                self.store
                    .delegations_to(&caller.tenant, &caller.subject, now)
                    .await?
            }
            None => Vec::new(),
        };
        let (policy, _) = self
            .store
            .policy(self.store.db().connection(), &caller.tenant)
            .await?;
        let validity = Duration::days(i64::from(policy.approval_validity_days));
        let approval = change.approval.as_mut().ok_or_else(|| {
            ApiFailure::Precondition("the change asks for no CAB decision".into())
        })?;
        let tally = approval.decide(
            &caller.subject,
            on_behalf_of,
            &delegations,
            verdict,
            request.comment.trim().to_owned(),
            now,
            validity,
        )?;
        let decision = approval.decisions.last().cloned();
        let from = change.state;
        let step = match tally {
            Tally::Approved => Some(Step::Approve),
            Tally::Rejected => Some(Step::Reject),
            Tally::Pending => None,
        };
        match step {
            Some(step) => {
                change.step(step, now)?;
            }
            None => change.touch(now),
        }
        let mut out = Vec::new();
        if let Some(decision) = &decision {
            out.push(events::decision_recorded(&self.region, &change, decision));
        }
        if let Some(step) = step {
            out.push(events::lifecycle(
                &self.region,
                &change,
                event_of(step),
                &caller.actor(),
                &request.comment,
            ));
        }
        let changes = [state_change(from, change.state)];
        self.write(
            caller,
            &change,
            read,
            &format!("decided: {verdict}"),
            &changes,
            request.comment.trim(),
            out,
        )
        .await?;
        Ok(change)
    }

    pub async fn delegate(
        &self,
        caller: &Caller,
        request: pb::DelegateApprovalsRequest,
    ) -> ApiResult<()> {
        let now = self.now();
        let mut found = Violations::new();
        let delegate = request.delegate_id.trim();
        found.line("delegate_id", delegate, 128, true);
        if delegate == caller.subject {
            found.push("delegate_id", "someone other than yourself");
        }
        let until = convert::time_of(request.until_time.as_ref());
        match until {
            Some(until) if until > now => {}
            _ => found.push("until_time", "a time after now"),
        }
        found.into_result()?;
        let (policy, _) = self
            .store
            .policy(self.store.db().connection(), &caller.tenant)
            .await?;
        if !policy
            .rules
            .iter()
            .any(|r| r.members.contains(&caller.subject))
        {
            return Err(ApiFailure::Forbidden(
                "only a CAB member delegates their decisions".into(),
            ));
        }
        let Some(until) = until else {
            return Err(ApiFailure::Precondition("no end time".into()));
        };
        self.store
            .delegate(
                &caller.tenant,
                &Delegation {
                    member: caller.subject.clone(),
                    delegate: delegate.to_owned(),
                    until,
                },
            )
            .await?;
        Ok(())
    }

    pub async fn schedule(
        &self,
        caller: &Caller,
        request: pb::ScheduleChangeRequest,
    ) -> ApiResult<Change> {
        authorize(&caller.roles, Permission::Manage)?;
        let now = self.now();
        let mut found = Violations::new();
        let given = request
            .window
            .as_ref()
            .and_then(|w| convert::window_of("window", w, now, &mut found));
        found.into_result()?;
        let mut change = self.load(caller, &request.id).await?;
        change.check_version(request.expected_version)?;
        let window = match given.or_else(|| change.window.clone()) {
            Some(window) if window.range.start >= now => window,
            Some(_) => {
                return Err(ApiFailure::Invalid({
                    let mut found = Violations::new();
                    found.push(
                        "window.start_time",
                        "the planned window lies in the past: give a new one",
                    );
                    found
                }));
            }
            None => {
                let mut found = Violations::new();
                found.push("window", "required: the change has no planned window");
                return Err(ApiFailure::Invalid(found));
            }
        };
        // The step first: a change that is not authorized learns that before anything else.
        crate::domain::lifecycle::next_state(change.change_type, change.state, Step::Schedule)?;
        if let Some(approval) = &change.approval
            && !approval.holds_until(window.range.start)
        {
            return Err(ApiFailure::Precondition(format!(
                "the approval expires at {}, before the window starts: ask for a new approval or an earlier window",
                approval
                    .expires_at
                    .map(|e| e.to_rfc3339())
                    .unwrap_or_default()
            )));
        }
        let depth = self.depth(&caller.tenant, 0, false).await?;
        let conflicts = self
            .conflicts(
                &caller.tenant,
                Some(change.id),
                &change.affected_cis,
                window.range,
                change.implementer.as_deref(),
                depth,
            )
            .await?;
        if change.change_type != ChangeType::Emergency
            && let Some(freeze) = conflicts.iter().find(|c| c.kind == ConflictKind::Freeze)
        {
            return Err(ApiFailure::Precondition(format!(
                "{}: only emergency changes are scheduled in a freeze",
                freeze.explanation
            )));
        }
        let read = change.version;
        let from = change.state;
        change.step(Step::Schedule, now)?;
        change.window = Some(window);
        change.conflicts = conflicts;
        let mut out = vec![events::lifecycle(
            &self.region,
            &change,
            "scheduled",
            &caller.actor(),
            "",
        )];
        if !change.conflicts.is_empty() {
            out.push(events::conflict_detected(
                &self.region,
                &change,
                &change.conflicts,
            ));
        }
        self.write(
            caller,
            &change,
            read,
            "scheduled",
            &[state_change(from, change.state)],
            "",
            out,
        )
        .await?;
        Ok(change)
    }

    /// Managers, and the change's own implementer.
    fn may_implement(caller: &Caller, change: &Change) -> ApiResult<()> {
        if change.implementer.as_deref() == Some(caller.subject.as_str()) {
            authorize(&caller.roles, Permission::Read)?;
            return Ok(());
        }
        authorize(&caller.roles, Permission::Manage)?;
        Ok(())
    }

    pub async fn start(
        &self,
        caller: &Caller,
        request: pb::StartImplementationRequest,
    ) -> ApiResult<Change> {
        let change = self.get_change(caller, &request.id).await?;
        Self::may_implement(caller, &change)?;
        let now = self.now();
        if let Some(window) = &change.window
            && change.state == ChangeState::Scheduled
        {
            if now < window.range.start {
                return Err(ApiFailure::Precondition(format!(
                    "the window opens at {}",
                    window.range.start.to_rfc3339()
                )));
            }
            if now >= window.range.end {
                return Err(ApiFailure::Precondition(
                    "the window has closed: schedule the change again".into(),
                ));
            }
        }
        self.step(
            caller,
            change,
            request.expected_version,
            Step::Start,
            "",
            |c| c.implement_started_at = Some(now),
        )
        .await
    }

    pub async fn complete(
        &self,
        caller: &Caller,
        request: pb::CompleteImplementationRequest,
    ) -> ApiResult<Change> {
        let mut found = Violations::new();
        found.text("notes", &request.notes, 20_000);
        let change = self.get_change(caller, &request.id).await?;
        Self::may_implement(caller, &change)?;
        found.into_result()?;
        let now = self.now();
        let (step, outcome) = if request.successful {
            (Step::Succeed, Outcome::Successful)
        } else {
            (Step::Fail, Outcome::Failed)
        };
        let notes = request.notes.trim().to_owned();
        self.step(
            caller,
            change,
            request.expected_version,
            step,
            &notes.clone(),
            move |c| {
                c.outcome = Some(outcome);
                c.implement_ended_at = Some(now);
                c.implementation_notes = notes;
            },
        )
        .await
    }

    pub async fn close(
        &self,
        caller: &Caller,
        request: pb::CloseChangeRequest,
    ) -> ApiResult<Change> {
        authorize(&caller.roles, Permission::Manage)?;
        let mut found = Violations::new();
        found.text("review_notes", &request.review_notes, 20_000);
        if request.review_notes.trim().is_empty() {
            found.push(
                "review_notes",
                "required: the post-implementation review's outcome",
            );
        }
        found.into_result()?;
        let change = self.load(caller, &request.id).await?;
        let notes = request.review_notes.trim().to_owned();
        self.step(
            caller,
            change,
            request.expected_version,
            Step::Close,
            &notes.clone(),
            move |c| c.review_notes = notes,
        )
        .await
    }

    pub async fn cancel(
        &self,
        caller: &Caller,
        request: pb::CancelChangeRequest,
    ) -> ApiResult<Change> {
        authorize(&caller.roles, Permission::Raise)?;
        let mut found = Violations::new();
        found.text("reason", &request.reason, 4000);
        found.into_result()?;
        let change = self.load(caller, &request.id).await?;
        self.step(
            caller,
            change,
            request.expected_version,
            Step::Cancel,
            request.reason.trim(),
            |_| {},
        )
        .await
    }
}

fn state_change(from: ChangeState, to: ChangeState) -> desk_kit::history::FieldChange {
    desk_kit::history::FieldChange {
        field: "state".into(),
        old: Some(from.as_str().to_owned()),
        new: Some(to.as_str().to_owned()),
    }
}
