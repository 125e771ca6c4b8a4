//! Approval policies and one step's state machine.
//!
//! A policy is a sequence of steps; a step applies when its condition holds of the answers, its
//! approvers are resolved when it starts (the requester's manager, a team's members, named
//! people — the caller of the domain resolves them, from the directory's projection), and it is
//! decided by its rule: any, all, or a quorum. A step that runs out of time is escalated once to
//! other approvers, or rejects the request.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::{
    Violations,
    form::{Answers, Condition, FormSchema},
};

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Approvers {
    /// The requester's manager.
    Manager,
    /// The members of a team when the step starts.
    Group(String),
    /// Named token subjects.
    People(Vec<String>),
}

impl Approvers {
    fn check(&self, path: &str, found: &mut Violations) {
        match self {
            Approvers::Manager => {}
            Approvers::Group(id) if id.trim().is_empty() => {
                found.push(format!("{path}.group_id"), "required for group approvers")
            }
            Approvers::Group(id) => found.line(&format!("{path}.group_id"), id, 200, true),
            Approvers::People(people) if people.is_empty() || people.len() > 100 => found.push(
                format!("{path}.subjects"),
                "between 1 and 100 people for named approvers",
            ),
            Approvers::People(people) => {
                for (i, subject) in people.iter().enumerate() {
                    found.line(&format!("{path}.subjects[{i}]"), subject, 200, true);
                }
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    Any,
    All,
    Quorum(u32),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepPolicy {
    pub name: String,
    pub approvers: Approvers,
    pub rule: Rule,
    pub when: Option<Condition>,
    pub remind_after_minutes: u32,
    pub expire_after_minutes: u32,
    pub escalate_to: Option<Approvers>,
}

impl StepPolicy {
    pub fn new(name: &str, approvers: Approvers, rule: Rule) -> Self {
        Self {
            name: name.to_owned(),
            approvers,
            rule,
            when: None,
            remind_after_minutes: 0,
            expire_after_minutes: 0,
            escalate_to: None,
        }
    }

    pub fn applies(&self, answers: &Answers) -> bool {
        self.when
            .as_ref()
            .is_none_or(|c| c.holds(answers.get(&c.field)))
    }
}

/// The most steps one policy holds.
pub const MAX_STEPS: usize = 20;

/// No steps: pre-approved.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ApprovalPolicy {
    pub steps: Vec<StepPolicy>,
}

impl ApprovalPolicy {
    /// Checks the policy against the form its conditions read (`definition.approval`).
    pub fn check(&self, form: &FormSchema, path: &str, found: &mut Violations) {
        if self.steps.len() > MAX_STEPS {
            found.push(
                format!("{path}.steps"),
                format!("at most {MAX_STEPS} steps"),
            );
        }
        for (i, step) in self.steps.iter().enumerate() {
            let at = format!("{path}.steps[{i}]");
            found.line(&format!("{at}.name"), &step.name, 200, true);
            step.approvers.check(&format!("{at}.approvers"), found);
            if let Rule::Quorum(n) = step.rule {
                let named = match &step.approvers {
                    Approvers::People(people) => people.len(),
                    _ => usize::MAX,
                };
                if n == 0 || n as usize > named {
                    found.push(
                        format!("{at}.quorum"),
                        "at least 1, and no more than the named approvers",
                    );
                }
                if step.approvers == Approvers::Manager {
                    found.push(format!("{at}.rule"), "a manager step has one approver");
                }
            }
            if let Some(condition) = &step.when {
                condition.check_against(&form.fields, &format!("{at}.when"), found);
            }
            if let Some(escalation) = &step.escalate_to {
                if step.expire_after_minutes == 0 {
                    found.push(
                        format!("{at}.escalate_to"),
                        "escalation needs expire_after_minutes",
                    );
                }
                escalation.check(&format!("{at}.escalate_to"), found);
            }
            if step.remind_after_minutes > 0
                && step.expire_after_minutes > 0
                && step.remind_after_minutes >= step.expire_after_minutes
            {
                found.push(
                    format!("{at}.remind_after_minutes"),
                    "a reminder comes before the expiry",
                );
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepState {
    Waiting,
    Pending,
    Approved,
    Rejected,
    Skipped,
    Expired,
    Cancelled,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Approve,
    Reject,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub approver: String,
    pub decided_by: String,
    pub verdict: Verdict,
    pub comment: String,
    pub at: DateTime<Utc>,
}

/// One step of a request's approval, as it stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    pub index: u32,
    pub name: String,
    pub state: StepState,
    pub rule: Rule,
    pub needed: u32,
    pub approvers: Vec<String>,
    pub decisions: Vec<Decision>,
    pub started_at: Option<DateTime<Utc>>,
    pub due_at: Option<DateTime<Utc>>,
    pub remind_at: Option<DateTime<Utc>>,
    pub escalated: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecisionRefused {
    #[error("the request is not awaiting this approval")]
    NotAwaiting,
    #[error("you are not an approver of this step")]
    NotApprover,
    #[error("{0} has already decided this step")]
    AlreadyDecided(String),
}

/// How a step stands after something happened to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepOutcome {
    StillPending,
    Approved,
    Rejected,
}

impl Step {
    pub fn waiting(index: u32, policy: &StepPolicy) -> Self {
        Self {
            index,
            name: policy.name.clone(),
            state: StepState::Waiting,
            rule: policy.rule,
            needed: 0,
            approvers: Vec::new(),
            decisions: Vec::new(),
            started_at: None,
            due_at: None,
            remind_at: None,
            escalated: false,
        }
    }

    /// Starts the step with its resolved approvers; false when it cannot be decided by them
    /// (none, or fewer than its quorum) — the caller then escalates or rejects.
    pub fn start(
        &mut self,
        policy: &StepPolicy,
        approvers: Vec<String>,
        now: DateTime<Utc>,
    ) -> bool {
        let mut unique = Vec::new();
        for approver in approvers {
            if !unique.contains(&approver) {
                unique.push(approver);
            }
        }
        self.needed = match self.rule {
            Rule::Any => 1,
            Rule::All => unique.len() as u32,
            Rule::Quorum(n) => n,
        };
        self.approvers = unique;
        self.decisions.clear();
        self.state = StepState::Pending;
        self.started_at = Some(now);
        self.due_at = (policy.expire_after_minutes > 0)
            .then(|| now + Duration::minutes(i64::from(policy.expire_after_minutes)));
        self.remind_at = (policy.remind_after_minutes > 0 && !self.escalated)
            .then(|| now + Duration::minutes(i64::from(policy.remind_after_minutes)));
        !self.approvers.is_empty() && self.needed as usize <= self.approvers.len()
    }

    pub fn approvals(&self) -> u32 {
        self.decisions
            .iter()
            .filter(|d| d.verdict == Verdict::Approve)
            .count() as u32
    }

    pub fn undecided(&self) -> impl Iterator<Item = &String> {
        self.approvers
            .iter()
            .filter(|a| !self.decisions.iter().any(|d| &d.approver == *a))
    }

    /// Whom `caller` decides for: themselves when an undecided approver, else the first undecided
    /// approver who delegated to them (`acting_for`: whose active delegations name the caller).
    pub fn decides_for(
        &self,
        caller: &str,
        acting_for: &[String],
    ) -> Result<String, DecisionRefused> {
        if self.state != StepState::Pending {
            return Err(DecisionRefused::NotAwaiting);
        }
        let candidates = std::iter::once(caller).chain(acting_for.iter().map(String::as_str));
        let mut decided = None;
        for candidate in candidates {
            if !self.approvers.iter().any(|a| a == candidate) {
                continue;
            }
            if self.decisions.iter().any(|d| d.approver == candidate) {
                decided.get_or_insert_with(|| candidate.to_owned());
                continue;
            }
            return Ok(candidate.to_owned());
        }
        Err(match decided {
            Some(who) => DecisionRefused::AlreadyDecided(who),
            None => DecisionRefused::NotApprover,
        })
    }

    /// Records one decision (the approver from [`Step::decides_for`]) and settles the step.
    pub fn decide(&mut self, decision: Decision) -> StepOutcome {
        self.decisions.push(decision);
        let approvals = self.approvals();
        let possible = approvals + self.undecided().count() as u32;
        let outcome = if approvals >= self.needed {
            StepOutcome::Approved
        } else if possible < self.needed {
            StepOutcome::Rejected
        } else {
            StepOutcome::StillPending
        };
        match outcome {
            StepOutcome::Approved => self.settle(StepState::Approved),
            StepOutcome::Rejected => self.settle(StepState::Rejected),
            StepOutcome::StillPending => {}
        }
        outcome
    }

    pub fn settle(&mut self, state: StepState) {
        self.state = state;
        self.due_at = None;
        self.remind_at = None;
    }

    /// The next time a timer of this step fires.
    pub fn next_timer(&self) -> Option<DateTime<Utc>> {
        if self.state != StepState::Pending {
            return None;
        }
        match (self.due_at, self.remind_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::form::{Field, FieldType, Test, Value};

    fn at(minutes: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).expect("a time") + Duration::minutes(minutes)
    }

    fn people(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| (*s).to_owned()).collect()
    }

    fn decision(approver: &str, verdict: Verdict) -> Decision {
        Decision {
            approver: approver.into(),
            decided_by: approver.into(),
            verdict,
            comment: String::new(),
            at: at(1),
        }
    }

    fn started(rule: Rule, approvers: &[&str]) -> Step {
        let policy = StepPolicy::new("step", Approvers::People(people(approvers)), rule);
        let mut step = Step::waiting(0, &policy);
        assert!(step.start(&policy, people(approvers), at(0)));
        step
    }

    #[test]
    fn any_rule_approves_on_the_first_approval() {
        let mut step = started(Rule::Any, &["ann", "bob"]);
        assert_eq!(
            step.decide(decision("bob", Verdict::Approve)),
            StepOutcome::Approved
        );
        assert_eq!(step.state, StepState::Approved);
    }

    #[test]
    fn all_rule_waits_for_everyone_and_one_rejection_rejects() {
        let mut step = started(Rule::All, &["ann", "bob"]);
        assert_eq!(
            step.decide(decision("ann", Verdict::Approve)),
            StepOutcome::StillPending
        );
        assert_eq!(
            step.decide(decision("bob", Verdict::Reject)),
            StepOutcome::Rejected
        );
        let mut step = started(Rule::All, &["ann", "bob"]);
        step.decide(decision("ann", Verdict::Approve));
        assert_eq!(
            step.decide(decision("bob", Verdict::Approve)),
            StepOutcome::Approved
        );
    }

    #[test]
    fn a_quorum_approves_at_its_count_and_rejects_once_out_of_reach() {
        let mut step = started(Rule::Quorum(2), &["ann", "bob", "cid"]);
        assert_eq!(
            step.decide(decision("ann", Verdict::Reject)),
            StepOutcome::StillPending
        );
        assert_eq!(
            step.decide(decision("bob", Verdict::Approve)),
            StepOutcome::StillPending
        );
        assert_eq!(
            step.decide(decision("cid", Verdict::Approve)),
            StepOutcome::Approved
        );

        let mut step = started(Rule::Quorum(2), &["ann", "bob", "cid"]);
        step.decide(decision("ann", Verdict::Reject));
        assert_eq!(
            step.decide(decision("bob", Verdict::Reject)),
            StepOutcome::Rejected
        );
    }

    #[test]
    fn only_undecided_approvers_or_their_delegates_decide() {
        let mut step = started(Rule::All, &["ann", "bob"]);
        assert_eq!(
            step.decides_for("eve", &[]),
            Err(DecisionRefused::NotApprover)
        );
        assert_eq!(step.decides_for("eve", &people(&["bob"])), Ok("bob".into()));
        step.decide(decision("ann", Verdict::Approve));
        assert_eq!(
            step.decides_for("ann", &[]),
            Err(DecisionRefused::AlreadyDecided("ann".into()))
        );
        // Ann decided for herself; she may still decide for Bob who delegated to her.
        assert_eq!(step.decides_for("ann", &people(&["bob"])), Ok("bob".into()));
    }

    #[test]
    fn a_settled_step_takes_no_decision() {
        let mut step = started(Rule::Any, &["ann"]);
        step.decide(decision("ann", Verdict::Approve));
        assert_eq!(
            step.decides_for("ann", &[]),
            Err(DecisionRefused::NotAwaiting)
        );
    }

    #[test]
    fn a_step_without_enough_approvers_cannot_start() {
        let policy = StepPolicy::new("mgr", Approvers::Manager, Rule::Any);
        let mut step = Step::waiting(0, &policy);
        assert!(!step.start(&policy, Vec::new(), at(0)));
        let policy = StepPolicy::new("q", Approvers::Group("g".into()), Rule::Quorum(3));
        let mut step = Step::waiting(0, &policy);
        assert!(!step.start(&policy, people(&["ann", "bob", "ann"]), at(0)));
        assert_eq!(step.approvers, people(&["ann", "bob"]));
    }

    #[test]
    fn timers_come_from_the_policy() {
        let mut policy = StepPolicy::new("s", Approvers::Manager, Rule::Any);
        policy.remind_after_minutes = 60;
        policy.expire_after_minutes = 120;
        let mut step = Step::waiting(0, &policy);
        step.start(&policy, people(&["ann"]), at(0));
        assert_eq!(step.remind_at, Some(at(60)));
        assert_eq!(step.due_at, Some(at(120)));
        assert_eq!(step.next_timer(), Some(at(60)));
        step.remind_at = None;
        assert_eq!(step.next_timer(), Some(at(120)));
        step.settle(StepState::Approved);
        assert_eq!(step.next_timer(), None);
    }

    #[test]
    fn a_policy_is_checked_against_its_form() {
        let mut cost = Field::new("cost", FieldType::Number);
        cost.default = Some(Value::Number(0.0));
        let form = FormSchema { fields: vec![cost] };
        let mut finance = StepPolicy::new("finance", Approvers::Group("fin".into()), Rule::Any);
        finance.when = Some(Condition {
            field: "price".into(),
            test: Test::GreaterThan(1000.0),
        });
        finance.escalate_to = Some(Approvers::People(Vec::new()));
        let quorum = StepPolicy::new("q", Approvers::People(people(&["a"])), Rule::Quorum(2));
        let manager = StepPolicy::new("m", Approvers::Manager, Rule::Quorum(1));
        let policy = ApprovalPolicy {
            steps: vec![finance, quorum, manager],
        };
        let mut found = Violations::new();
        policy.check(&form, "approval", &mut found);
        let fields: Vec<&str> = found.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            fields,
            [
                "approval.steps[0].when",
                "approval.steps[0].escalate_to",
                "approval.steps[0].escalate_to.subjects",
                "approval.steps[1].quorum",
                "approval.steps[2].rule",
            ]
        );
    }

    #[test]
    fn a_conditional_step_applies_only_when_its_condition_holds() {
        let mut finance = StepPolicy::new("finance", Approvers::Group("fin".into()), Rule::Any);
        finance.when = Some(Condition {
            field: "cost".into(),
            test: Test::GreaterThan(1000.0),
        });
        let mut answers = Answers::new();
        answers.insert("cost".into(), Value::Number(500.0));
        assert!(!finance.applies(&answers));
        answers.insert("cost".into(), Value::Number(1500.0));
        assert!(finance.applies(&answers));
    }
}
