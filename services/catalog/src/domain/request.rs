//! A request's lifecycle: submitted → awaiting approval → approved or rejected → fulfilling →
//! fulfilled, or cancelled by the requester before fulfillment.
//!
//! Every step returns the [`Fact`]s it produced, in order; the API turns them into events of the
//! same transaction. Approvers are resolved by the caller (`resolve`), so the domain stays pure.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{
    Localized,
    approval::{
        ApprovalPolicy, Approvers, Decision, DecisionRefused, Step, StepOutcome, StepState, Verdict,
    },
    form::Answers,
    fulfillment::{FulfillmentPlan, Task, TaskRefused, TaskState},
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestState {
    Submitted,
    AwaitingApproval,
    Approved,
    Rejected,
    Fulfilling,
    Fulfilled,
    Cancelled,
}

impl RequestState {
    pub fn as_str(self) -> &'static str {
        match self {
            RequestState::Submitted => "submitted",
            RequestState::AwaitingApproval => "awaiting_approval",
            RequestState::Approved => "approved",
            RequestState::Rejected => "rejected",
            RequestState::Fulfilling => "fulfilling",
            RequestState::Fulfilled => "fulfilled",
            RequestState::Cancelled => "cancelled",
        }
    }

    pub fn is_final(self) -> bool {
        matches!(
            self,
            RequestState::Rejected | RequestState::Fulfilled | RequestState::Cancelled
        )
    }
}

/// What happened, in order: each becomes one event.
#[derive(Debug, Clone, PartialEq)]
pub enum Fact {
    Submitted,
    ApprovalRequested {
        step: u32,
        reminder: bool,
        escalated: bool,
    },
    ApprovalDecided {
        step: u32,
        decision: Decision,
    },
    ApprovalExpired {
        step: u32,
        escalated: bool,
    },
    Approved,
    Rejected {
        note: String,
    },
    TaskCreated {
        key: String,
    },
    TaskClaimed {
        key: String,
    },
    TaskCompleted {
        key: String,
    },
    Fulfilled,
    Cancelled {
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error(transparent)]
    Decision(#[from] DecisionRefused),
    #[error(transparent)]
    Task(#[from] TaskRefused),
    #[error("a {0} request cannot be {1}")]
    Transition(&'static str, &'static str),
}

/// What a request is made against: one version of an offering.
pub struct Against<'a> {
    pub offering_id: Uuid,
    pub offering_version: i64,
    pub offering_name: &'a [Localized],
    pub policy: &'a ApprovalPolicy,
    pub plan: &'a FulfillmentPlan,
    pub target_fulfillment_minutes: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    pub id: Uuid,
    pub tenant: String,
    pub number: String,
    pub offering_id: Uuid,
    pub offering_version: i64,
    pub offering_name: Vec<Localized>,
    pub requester: String,
    pub answers: Answers,
    pub state: RequestState,
    pub approvals: Vec<Step>,
    pub tasks: Vec<Task>,
    pub ticket_id: String,
    pub ticket_number: String,
    pub due_at: Option<DateTime<Utc>>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The approvers of a step, resolved when it starts (from the directory's projection).
pub type Resolve<'a> = &'a dyn Fn(&Approvers) -> Vec<String>;

impl Request {
    /// A new request, approved straight away when its policy has no step that applies, and then
    /// fulfilling (or fulfilled, when its plan has no task).
    #[allow(clippy::too_many_arguments)]
    pub fn submit(
        id: Uuid,
        tenant: &str,
        number: String,
        requester: &str,
        answers: Answers,
        against: &Against<'_>,
        resolve: Resolve<'_>,
        now: DateTime<Utc>,
    ) -> (Request, Vec<Fact>) {
        let mut request = Request {
            id,
            tenant: tenant.to_owned(),
            number,
            offering_id: against.offering_id,
            offering_version: against.offering_version,
            offering_name: against.offering_name.to_vec(),
            requester: requester.to_owned(),
            answers,
            state: RequestState::Submitted,
            approvals: against
                .policy
                .steps
                .iter()
                .enumerate()
                .map(|(i, p)| Step::waiting(i as u32, p))
                .collect(),
            tasks: Vec::new(),
            ticket_id: String::new(),
            ticket_number: String::new(),
            due_at: (against.target_fulfillment_minutes > 0)
                .then(|| now + Duration::minutes(i64::from(against.target_fulfillment_minutes))),
            version: 1,
            created_at: now,
            updated_at: now,
        };
        let mut facts = vec![Fact::Submitted];
        request.advance(against.policy, against.plan, resolve, now, &mut facts);
        (request, facts)
    }

    fn pending_step(&self) -> Option<usize> {
        self.approvals
            .iter()
            .position(|s| s.state == StepState::Pending)
    }

    /// From where the request stands: the next step that applies, or — with none left —
    /// approval and the start of fulfillment.
    fn advance(
        &mut self,
        policy: &ApprovalPolicy,
        plan: &FulfillmentPlan,
        resolve: Resolve<'_>,
        now: DateTime<Utc>,
        facts: &mut Vec<Fact>,
    ) {
        while let Some(i) = self
            .approvals
            .iter()
            .position(|s| s.state == StepState::Waiting)
        {
            let Some(step_policy) = policy.steps.get(i) else {
                // The policy is the version's own: a missing step means a corrupt record.
                self.approvals[i].settle(StepState::Skipped);
                continue;
            };
            if !step_policy.applies(&self.answers) {
                self.approvals[i].settle(StepState::Skipped);
                continue;
            }
            let approvers = resolve(&step_policy.approvers);
            let step = &mut self.approvals[i];
            self.state = RequestState::AwaitingApproval;
            if step.start(step_policy, approvers, now) {
                facts.push(Fact::ApprovalRequested {
                    step: i as u32,
                    reminder: false,
                    escalated: false,
                });
                return;
            }
            // Nobody can decide it (no manager known, an empty team): escalate if the policy
            // says to whom, else the request cannot be approved.
            if let Some(escalation) = &step_policy.escalate_to {
                step.escalated = true;
                if step.start(step_policy, resolve(escalation), now) {
                    facts.push(Fact::ApprovalRequested {
                        step: i as u32,
                        reminder: false,
                        escalated: true,
                    });
                    return;
                }
            }
            let note = format!("no approver could be found for step {:?}", step.name);
            step.settle(StepState::Rejected);
            self.reject(note, facts);
            return;
        }
        self.state = RequestState::Approved;
        facts.push(Fact::Approved);
        self.start_fulfillment(plan, now, facts);
    }

    fn reject(&mut self, note: String, facts: &mut Vec<Fact>) {
        for step in &mut self.approvals {
            if matches!(step.state, StepState::Waiting | StepState::Pending) {
                step.settle(StepState::Cancelled);
            }
        }
        self.state = RequestState::Rejected;
        facts.push(Fact::Rejected { note });
    }

    fn start_fulfillment(
        &mut self,
        plan: &FulfillmentPlan,
        now: DateTime<Utc>,
        facts: &mut Vec<Fact>,
    ) {
        self.tasks = plan
            .stages
            .iter()
            .enumerate()
            .flat_map(|(s, stage)| stage.iter().map(move |t| Task::planned(s as u32, t, now)))
            .collect();
        self.state = RequestState::Fulfilling;
        self.open_next_stage(now, facts);
    }

    /// Opens the first stage with waiting tasks, or fulfils the request when none is left.
    fn open_next_stage(&mut self, now: DateTime<Utc>, facts: &mut Vec<Fact>) {
        let next = self
            .tasks
            .iter()
            .filter(|t| t.state == TaskState::Waiting)
            .map(|t| t.stage)
            .min();
        match next {
            Some(stage) => {
                for task in self.tasks.iter_mut().filter(|t| t.stage == stage) {
                    task.state = TaskState::Open;
                    task.updated_at = now;
                    facts.push(Fact::TaskCreated {
                        key: task.key.clone(),
                    });
                }
            }
            None => {
                self.state = RequestState::Fulfilled;
                facts.push(Fact::Fulfilled);
            }
        }
    }

    /// Whom `caller` would decide for on `step` (for listing and deciding).
    pub fn decider(
        &self,
        step: u32,
        caller: &str,
        acting_for: &[String],
    ) -> Result<String, DecisionRefused> {
        if self.state != RequestState::AwaitingApproval {
            return Err(DecisionRefused::NotAwaiting);
        }
        self.approvals
            .get(step as usize)
            .ok_or(DecisionRefused::NotAwaiting)?
            .decides_for(caller, acting_for)
    }

    /// An approver's (or their delegate's) decision on the pending step.
    #[allow(clippy::too_many_arguments)]
    pub fn decide(
        &mut self,
        policy: &ApprovalPolicy,
        plan: &FulfillmentPlan,
        step: u32,
        caller: &str,
        acting_for: &[String],
        verdict: Verdict,
        comment: &str,
        resolve: Resolve<'_>,
        now: DateTime<Utc>,
    ) -> Result<Vec<Fact>, RequestError> {
        let approver = self.decider(step, caller, acting_for)?;
        let decision = Decision {
            approver,
            decided_by: caller.to_owned(),
            verdict,
            comment: comment.to_owned(),
            at: now,
        };
        let Some(current) = self.approvals.get_mut(step as usize) else {
            return Err(DecisionRefused::NotAwaiting.into());
        };
        let outcome = current.decide(decision.clone());
        let name = current.name.clone();
        let mut facts = vec![Fact::ApprovalDecided { step, decision }];
        match outcome {
            StepOutcome::StillPending => {}
            StepOutcome::Approved => self.advance(policy, plan, resolve, now, &mut facts),
            StepOutcome::Rejected => {
                let note = if comment.is_empty() {
                    format!("rejected at step {name:?}")
                } else {
                    comment.to_owned()
                };
                self.reject(note, &mut facts);
            }
        }
        self.touch(now);
        Ok(facts)
    }

    /// The requester withdraws the request before fulfillment starts.
    pub fn cancel(&mut self, reason: &str, now: DateTime<Utc>) -> Result<Vec<Fact>, RequestError> {
        if !matches!(
            self.state,
            RequestState::Submitted | RequestState::AwaitingApproval | RequestState::Approved
        ) {
            return Err(RequestError::Transition(self.state.as_str(), "cancelled"));
        }
        for step in &mut self.approvals {
            if matches!(step.state, StepState::Waiting | StepState::Pending) {
                step.settle(StepState::Cancelled);
            }
        }
        self.state = RequestState::Cancelled;
        self.touch(now);
        Ok(vec![Fact::Cancelled {
            reason: reason.to_owned(),
        }])
    }

    fn task_mut(&mut self, key: &str) -> Result<&mut Task, TaskRefused> {
        self.tasks
            .iter_mut()
            .find(|t| t.key == key)
            .ok_or(TaskRefused::Unknown)
    }

    /// Someone (an agent of the task's team, an integrator's robot) takes an open task.
    pub fn claim(
        &mut self,
        key: &str,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<Fact>, RequestError> {
        let task = self.task_mut(key)?;
        match task.state {
            TaskState::Open => {}
            TaskState::Claimed if task.claimed_by == by => return Ok(Vec::new()),
            other => return Err(TaskRefused::NotClaimable(other.as_str()).into()),
        }
        task.state = TaskState::Claimed;
        task.claimed_by = by.to_owned();
        task.updated_at = now;
        self.touch(now);
        Ok(vec![Fact::TaskClaimed {
            key: key.to_owned(),
        }])
    }

    /// Completes a task with its result (claiming it on the way when open); the stage's last
    /// task opens the next stage, the plan's last fulfils the request.
    pub fn complete(
        &mut self,
        key: &str,
        by: &str,
        result: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<Fact>, RequestError> {
        let task = self.task_mut(key)?;
        match task.state {
            TaskState::Open => task.claimed_by = by.to_owned(),
            TaskState::Claimed if task.claimed_by == by => {}
            TaskState::Claimed => return Err(TaskRefused::ClaimedByAnother.into()),
            other => return Err(TaskRefused::NotCompletable(other.as_str()).into()),
        }
        task.state = TaskState::Done;
        task.result = result.to_owned();
        task.updated_at = now;
        let stage = task.stage;
        let mut facts = vec![Fact::TaskCompleted {
            key: key.to_owned(),
        }];
        let stage_done = self
            .tasks
            .iter()
            .filter(|t| t.stage == stage)
            .all(|t| t.state == TaskState::Done);
        if stage_done {
            self.open_next_stage(now, &mut facts);
        }
        self.touch(now);
        Ok(facts)
    }

    /// Reminders and expiry of the pending step, when due at `now`.
    pub fn fire_timers(
        &mut self,
        policy: &ApprovalPolicy,
        resolve: Resolve<'_>,
        now: DateTime<Utc>,
    ) -> Vec<Fact> {
        let mut facts = Vec::new();
        let Some(i) = self.pending_step() else {
            return facts;
        };
        if self.state != RequestState::AwaitingApproval {
            return facts;
        }
        let step_policy = policy.steps.get(i);
        let step = &mut self.approvals[i];
        if step.due_at.is_some_and(|due| due <= now) {
            let escalation = step_policy.and_then(|p| p.escalate_to.as_ref().map(|e| (p, e)));
            match escalation {
                Some((step_policy, escalation)) if !step.escalated => {
                    step.escalated = true;
                    let started = step.start(step_policy, resolve(escalation), now);
                    facts.push(Fact::ApprovalExpired {
                        step: i as u32,
                        escalated: true,
                    });
                    if started {
                        facts.push(Fact::ApprovalRequested {
                            step: i as u32,
                            reminder: false,
                            escalated: true,
                        });
                    } else {
                        step.settle(StepState::Expired);
                        let note =
                            format!("step {:?} expired with no one to escalate to", step.name);
                        self.reject(note, &mut facts);
                    }
                }
                _ => {
                    step.settle(StepState::Expired);
                    facts.push(Fact::ApprovalExpired {
                        step: i as u32,
                        escalated: false,
                    });
                    let note = format!("step {:?} expired", step.name);
                    self.reject(note, &mut facts);
                }
            }
        } else if step.remind_at.is_some_and(|at| at <= now) {
            step.remind_at = None;
            facts.push(Fact::ApprovalRequested {
                step: i as u32,
                reminder: true,
                escalated: step.escalated,
            });
        }
        if !facts.is_empty() {
            self.touch(now);
        }
        facts
    }

    pub fn next_timer(&self) -> Option<DateTime<Utc>> {
        if self.state != RequestState::AwaitingApproval {
            return None;
        }
        self.approvals.iter().filter_map(Step::next_timer).min()
    }

    /// Who must decide now: the pending step's undecided approvers.
    pub fn waiting_on(&self) -> Vec<String> {
        if self.state != RequestState::AwaitingApproval {
            return Vec::new();
        }
        self.pending_step()
            .map(|i| self.approvals[i].undecided().cloned().collect())
            .unwrap_or_default()
    }

    pub fn task(&self, key: &str) -> Option<&Task> {
        self.tasks.iter().find(|t| t.key == key)
    }

    fn touch(&mut self, now: DateTime<Utc>) {
        self.version += 1;
        self.updated_at = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{
        approval::{Rule, StepPolicy},
        form::{Condition, Test, Value},
        fulfillment::TaskTemplate,
    };

    fn at(minutes: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).expect("a time") + Duration::minutes(minutes)
    }

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    /// Managers are "boss"; group "fin" is ann, bob and cid; escalations go to "cio".
    fn resolve(who: &Approvers) -> Vec<String> {
        match who {
            Approvers::Manager => names(&["boss"]),
            Approvers::Group(g) if g == "fin" => names(&["ann", "bob", "cid"]),
            Approvers::Group(_) => Vec::new(),
            Approvers::People(people) => people.clone(),
        }
    }

    fn plan() -> FulfillmentPlan {
        FulfillmentPlan {
            stages: vec![
                vec![
                    TaskTemplate::manual("order", "procurement"),
                    TaskTemplate::automated("account", "ad_account"),
                ],
                vec![TaskTemplate::manual("deliver", "field")],
            ],
        }
    }

    fn submit(policy: &ApprovalPolicy, plan: &FulfillmentPlan, cost: f64) -> (Request, Vec<Fact>) {
        let mut answers = Answers::new();
        answers.insert("cost".into(), Value::Number(cost));
        let name = vec![Localized::new("en", "Laptop")];
        Request::submit(
            Uuid::nil(),
            "acme",
            "REQ-000001".into(),
            "req",
            answers,
            &Against {
                offering_id: Uuid::nil(),
                offering_version: 3,
                offering_name: &name,
                policy,
                plan,
                target_fulfillment_minutes: 60,
            },
            &resolve,
            at(0),
        )
    }

    fn manager_then_finance() -> ApprovalPolicy {
        let mut finance =
            StepPolicy::new("finance", Approvers::Group("fin".into()), Rule::Quorum(2));
        finance.when = Some(Condition {
            field: "cost".into(),
            test: Test::GreaterThan(1000.0),
        });
        ApprovalPolicy {
            steps: vec![
                StepPolicy::new("manager", Approvers::Manager, Rule::Any),
                finance,
            ],
        }
    }

    fn decide(
        request: &mut Request,
        policy: &ApprovalPolicy,
        step: u32,
        who: &str,
        verdict: Verdict,
    ) -> Result<Vec<Fact>, RequestError> {
        request.decide(
            policy,
            &plan(),
            step,
            who,
            &[],
            verdict,
            "ok",
            &resolve,
            at(5),
        )
    }

    fn created(facts: &[Fact]) -> Vec<String> {
        facts
            .iter()
            .filter_map(|f| match f {
                Fact::TaskCreated { key } => Some(key.clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_pre_approved_request_goes_straight_to_fulfillment() {
        let (request, facts) = submit(&ApprovalPolicy::default(), &plan(), 10.0);
        assert_eq!(request.state, RequestState::Fulfilling);
        assert_eq!(facts[0], Fact::Submitted);
        assert_eq!(facts[1], Fact::Approved);
        assert_eq!(created(&facts), ["order", "account"]);
        assert_eq!(
            request.task("deliver").map(|t| t.state),
            Some(TaskState::Waiting)
        );
        assert_eq!(request.due_at, Some(at(60)));
        assert_eq!(request.offering_version, 3);
    }

    #[test]
    fn a_request_with_no_task_is_fulfilled_on_approval() {
        let (request, facts) = submit(&ApprovalPolicy::default(), &FulfillmentPlan::default(), 1.0);
        assert_eq!(request.state, RequestState::Fulfilled);
        assert_eq!(facts.last(), Some(&Fact::Fulfilled));
    }

    #[test]
    fn the_manager_step_waits_for_the_manager() {
        let policy = manager_then_finance();
        let (mut request, facts) = submit(&policy, &plan(), 500.0);
        assert_eq!(request.state, RequestState::AwaitingApproval);
        assert_eq!(request.waiting_on(), ["boss"]);
        assert!(matches!(facts[1], Fact::ApprovalRequested { step: 0, .. }));
        assert_eq!(
            decide(&mut request, &policy, 0, "ann", Verdict::Approve),
            Err(RequestError::Decision(DecisionRefused::NotApprover))
        );
        let facts = decide(&mut request, &policy, 0, "boss", Verdict::Approve).expect("accepted");
        // Cost 500: the finance step does not apply.
        assert_eq!(request.approvals[1].state, StepState::Skipped);
        assert!(facts.contains(&Fact::Approved));
        assert_eq!(request.state, RequestState::Fulfilling);
    }

    #[test]
    fn a_conditional_finance_step_needs_its_quorum_when_the_cost_is_high() {
        let policy = manager_then_finance();
        let (mut request, _) = submit(&policy, &plan(), 2500.0);
        decide(&mut request, &policy, 0, "boss", Verdict::Approve).expect("accepted");
        assert_eq!(request.state, RequestState::AwaitingApproval);
        assert_eq!(request.waiting_on(), ["ann", "bob", "cid"]);
        decide(&mut request, &policy, 1, "ann", Verdict::Approve).expect("accepted");
        assert_eq!(
            decide(&mut request, &policy, 1, "ann", Verdict::Approve),
            Err(RequestError::Decision(DecisionRefused::AlreadyDecided(
                "ann".into()
            )))
        );
        let facts = decide(&mut request, &policy, 1, "cid", Verdict::Approve).expect("accepted");
        assert!(facts.contains(&Fact::Approved));
        assert_eq!(request.approvals[1].state, StepState::Approved);
    }

    #[test]
    fn a_rejection_rejects_the_request_and_cancels_later_steps() {
        let policy = manager_then_finance();
        let (mut request, _) = submit(&policy, &plan(), 2500.0);
        let facts = decide(&mut request, &policy, 0, "boss", Verdict::Reject).expect("accepted");
        assert_eq!(request.state, RequestState::Rejected);
        assert!(matches!(facts.last(), Some(Fact::Rejected { .. })));
        assert_eq!(request.approvals[1].state, StepState::Cancelled);
        assert_eq!(
            decide(&mut request, &policy, 1, "ann", Verdict::Approve),
            Err(RequestError::Decision(DecisionRefused::NotAwaiting))
        );
    }

    #[test]
    fn deciding_a_step_that_is_not_pending_is_refused() {
        let policy = manager_then_finance();
        let (mut request, _) = submit(&policy, &plan(), 2500.0);
        assert_eq!(
            decide(&mut request, &policy, 1, "ann", Verdict::Approve),
            Err(RequestError::Decision(DecisionRefused::NotAwaiting))
        );
    }

    #[test]
    fn a_delegate_decides_for_the_absent_approver() {
        let policy = manager_then_finance();
        let (mut request, _) = submit(&policy, &plan(), 10.0);
        let facts = request
            .decide(
                &policy,
                &plan(),
                0,
                "deputy",
                &names(&["boss"]),
                Verdict::Approve,
                "",
                &resolve,
                at(1),
            )
            .expect("accepted");
        let Fact::ApprovalDecided { decision, .. } = &facts[0] else {
            panic!("{facts:?}");
        };
        assert_eq!(decision.approver, "boss");
        assert_eq!(decision.decided_by, "deputy");
    }

    #[test]
    fn no_manager_known_rejects_unless_the_step_escalates() {
        let policy = ApprovalPolicy {
            steps: vec![StepPolicy::new(
                "team",
                Approvers::Group("empty".into()),
                Rule::Any,
            )],
        };
        let (request, facts) = submit(&policy, &plan(), 1.0);
        assert_eq!(request.state, RequestState::Rejected);
        assert!(matches!(facts.last(), Some(Fact::Rejected { .. })));

        let mut step = StepPolicy::new("team", Approvers::Group("empty".into()), Rule::Any);
        step.expire_after_minutes = 60;
        step.escalate_to = Some(Approvers::People(names(&["cio"])));
        let policy = ApprovalPolicy { steps: vec![step] };
        let (request, _) = submit(&policy, &plan(), 1.0);
        assert_eq!(request.waiting_on(), ["cio"]);
        assert!(request.approvals[0].escalated);
    }

    fn expiring() -> ApprovalPolicy {
        let mut step = StepPolicy::new("manager", Approvers::Manager, Rule::Any);
        step.remind_after_minutes = 30;
        step.expire_after_minutes = 60;
        step.escalate_to = Some(Approvers::People(names(&["cio"])));
        ApprovalPolicy { steps: vec![step] }
    }

    #[test]
    fn a_reminder_then_expiry_escalates_once_then_rejects() {
        let policy = expiring();
        let (mut request, _) = submit(&policy, &plan(), 1.0);
        assert_eq!(request.next_timer(), Some(at(30)));
        assert!(request.fire_timers(&policy, &resolve, at(29)).is_empty());
        let facts = request.fire_timers(&policy, &resolve, at(30));
        assert_eq!(
            facts,
            [Fact::ApprovalRequested {
                step: 0,
                reminder: true,
                escalated: false
            }]
        );
        assert_eq!(request.next_timer(), Some(at(60)));
        let facts = request.fire_timers(&policy, &resolve, at(61));
        assert_eq!(
            facts,
            [
                Fact::ApprovalExpired {
                    step: 0,
                    escalated: true
                },
                Fact::ApprovalRequested {
                    step: 0,
                    reminder: false,
                    escalated: true
                },
            ]
        );
        assert_eq!(request.waiting_on(), ["cio"]);
        assert_eq!(request.next_timer(), Some(at(121)));
        let facts = request.fire_timers(&policy, &resolve, at(121));
        assert_eq!(request.state, RequestState::Rejected);
        assert_eq!(
            facts[0],
            Fact::ApprovalExpired {
                step: 0,
                escalated: false
            }
        );
        assert_eq!(request.approvals[0].state, StepState::Expired);
        assert_eq!(request.next_timer(), None);
    }

    #[test]
    fn the_escalated_approver_can_approve() {
        let policy = expiring();
        let (mut request, _) = submit(&policy, &plan(), 1.0);
        request.fire_timers(&policy, &resolve, at(61));
        assert_eq!(
            decide(&mut request, &policy, 0, "boss", Verdict::Approve),
            Err(RequestError::Decision(DecisionRefused::NotApprover))
        );
        decide(&mut request, &policy, 0, "cio", Verdict::Approve).expect("accepted");
        assert_eq!(request.state, RequestState::Fulfilling);
    }

    #[test]
    fn parallel_tasks_complete_in_any_order_then_the_next_stage_opens() {
        let (mut request, _) = submit(&ApprovalPolicy::default(), &plan(), 1.0);
        let facts = request
            .complete("account", "robot", "created jdoe", at(1))
            .expect("accepted");
        assert_eq!(
            facts,
            [Fact::TaskCompleted {
                key: "account".into()
            }]
        );
        request.claim("order", "agent", at(2)).expect("accepted");
        assert_eq!(
            request.complete("order", "other", "", at(3)),
            Err(RequestError::Task(TaskRefused::ClaimedByAnother))
        );
        let facts = request
            .complete("order", "agent", "po 42", at(3))
            .expect("accepted");
        assert_eq!(created(&facts), ["deliver"]);
        assert_eq!(request.state, RequestState::Fulfilling);
        let facts = request
            .complete("deliver", "agent", "", at(4))
            .expect("accepted");
        assert_eq!(facts.last(), Some(&Fact::Fulfilled));
        assert_eq!(request.state, RequestState::Fulfilled);
        assert_eq!(
            request.task("account").map(|t| t.result.as_str()),
            Some("created jdoe")
        );
    }

    #[test]
    fn waiting_and_done_tasks_cannot_be_claimed() {
        let (mut request, _) = submit(&ApprovalPolicy::default(), &plan(), 1.0);
        assert_eq!(
            request.claim("deliver", "agent", at(1)),
            Err(RequestError::Task(TaskRefused::NotClaimable("waiting")))
        );
        assert_eq!(
            request.claim("nope", "agent", at(1)),
            Err(RequestError::Task(TaskRefused::Unknown))
        );
        request
            .complete("order", "agent", "", at(1))
            .expect("accepted");
        assert!(request.claim("order", "agent", at(2)).is_err());
        // Claiming one's own claimed task again changes nothing.
        request.claim("account", "robot", at(2)).expect("accepted");
        assert_eq!(request.claim("account", "robot", at(3)), Ok(Vec::new()));
    }

    #[test]
    fn the_requester_cancels_only_before_fulfillment() {
        let policy = manager_then_finance();
        let (mut request, _) = submit(&policy, &plan(), 1.0);
        let version = request.version;
        assert_eq!(
            request.cancel("no longer needed", at(1)),
            Ok(vec![Fact::Cancelled {
                reason: "no longer needed".into()
            }])
        );
        assert_eq!(request.state, RequestState::Cancelled);
        assert_eq!(request.approvals[0].state, StepState::Cancelled);
        assert_eq!(request.version, version + 1);

        let (mut fulfilling, _) = submit(&ApprovalPolicy::default(), &plan(), 1.0);
        assert_eq!(
            fulfilling.cancel("", at(1)),
            Err(RequestError::Transition("fulfilling", "cancelled"))
        );
    }
}
