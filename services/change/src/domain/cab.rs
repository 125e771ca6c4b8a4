//! Change authorization: which CAB approves a change, with what quorum, who may decide, and for
//! how long an approval holds.
//!
//! A tenant's [`ChangePolicy`] has one [`CabRule`] per risk level (and one for emergencies, the
//! emergency CAB). A rule names the board's team id and its members, by subject. Members are
//! listed on the rule rather than read from the caller's `groups` claim: a quorum of "every
//! member" needs to know who every member is, and a decision must still be checkable once the
//! token that made it has expired. (The team id is kept for routing and display, and can be
//! filled from the directory service when it lands.)
//!
//! Each member has one vote. A member may let a delegate vote for them until a time
//! ([`Delegation`]); a delegate's vote is the member's, so member and delegate cannot both vote.
//! The change is approved when the approvals reach the quorum, and rejected once they no longer
//! can (too many members rejected). An approval expires `approval_validity_days` after it was
//! given: a window that starts after that cannot be scheduled.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::lifecycle::ChangeType;
use super::risk::RiskLevel;

desk_kit::string_enum! {
    pub enum Verdict {
        Approve => "approve",
        Reject => "reject",
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CabRule {
    /// `None` for the emergency CAB.
    pub risk_level: Option<RiskLevel>,
    pub group_id: String,
    pub members: Vec<String>,
    /// Approvals needed; 0 is every member.
    pub quorum: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangePolicy {
    pub rules: Vec<CabRule>,
    pub approval_validity_days: u32,
    pub incident_window_minutes: u32,
    /// 0 is the whole closure.
    pub conflict_depth: u32,
}

impl Default for ChangePolicy {
    /// No CAB (every assessment authorizes), approvals valid 30 days, incidents within 24 hours
    /// of an implementation suspected, conflicts searched across the whole closure.
    fn default() -> Self {
        ChangePolicy {
            rules: Vec::new(),
            approval_validity_days: 30,
            incident_window_minutes: 24 * 60,
            conflict_depth: 0,
        }
    }
}

/// What is wrong with a policy: (field, description) pairs.
pub type PolicyViolations = Vec<(String, String)>;

impl ChangePolicy {
    /// The CAB that authorizes a change of `change_type` assessed at `level`, if any.
    pub fn rule_for(&self, change_type: ChangeType, level: RiskLevel) -> Option<&CabRule> {
        match change_type {
            ChangeType::Standard => None,
            ChangeType::Emergency => self.rules.iter().find(|r| r.risk_level.is_none()),
            ChangeType::Normal => self.rules.iter().find(|r| r.risk_level == Some(level)),
        }
    }

    pub fn check(&self) -> Result<(), PolicyViolations> {
        let mut found = Vec::new();
        let mut seen = Vec::new();
        for (index, rule) in self.rules.iter().enumerate() {
            let field = |name: &str| format!("policy.cab_rules[{index}].{name}");
            if rule.group_id.trim().is_empty() {
                found.push((field("group_id"), "required: the CAB's team id".to_owned()));
            }
            if rule.members.is_empty() || rule.members.iter().any(|m| m.trim().is_empty()) {
                found.push((
                    field("member_ids"),
                    "at least one member, none blank".to_owned(),
                ));
            }
            if rule.quorum as usize > rule.members.len() {
                found.push((
                    field("quorum"),
                    "at most the number of members (0 is every member)".to_owned(),
                ));
            }
            if seen.contains(&rule.risk_level) {
                found.push((
                    field("risk_level"),
                    "one rule per risk level and one emergency rule".to_owned(),
                ));
            }
            seen.push(rule.risk_level);
        }
        if !(1..=365).contains(&self.approval_validity_days) {
            found.push((
                "policy.approval_validity_days".to_owned(),
                "1 to 365 days".to_owned(),
            ));
        }
        if !(1..=30 * 24 * 60).contains(&self.incident_window_minutes) {
            found.push((
                "policy.incident_window_minutes".to_owned(),
                "1 minute to 30 days".to_owned(),
            ));
        }
        if found.is_empty() { Ok(()) } else { Err(found) }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub approver: String,
    pub decided_by: String,
    pub verdict: Verdict,
    pub comment: String,
    pub at: DateTime<Utc>,
}

/// A member's leave of absence: `delegate` votes for `member` until `until`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delegation {
    pub member: String,
    pub delegate: String,
    pub until: DateTime<Utc>,
}

/// The authorization a change asks for, and what the CAB said.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    pub group_id: String,
    pub members: Vec<String>,
    pub quorum: u32,
    pub emergency: bool,
    pub decisions: Vec<Decision>,
    pub approved_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// Where the CAB stands after a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tally {
    Pending,
    Approved,
    Rejected,
}

/// Why a decision was refused; the texts are user-facing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecisionRefused {
    /// `PERMISSION_DENIED`.
    #[error("{0} is not on the CAB that decides this change")]
    NotOnCab(String),
    /// `PERMISSION_DENIED`.
    #[error("{delegate} holds no current delegation from {member}")]
    NoDelegation { member: String, delegate: String },
    /// `FAILED_PRECONDITION`.
    #[error("{0} has already decided on this change")]
    AlreadyDecided(String),
}

impl Approval {
    pub fn for_rule(rule: &CabRule, emergency: bool) -> Approval {
        Approval {
            group_id: rule.group_id.clone(),
            members: rule.members.clone(),
            quorum: rule.quorum,
            emergency,
            decisions: Vec::new(),
            approved_at: None,
            expires_at: None,
        }
    }

    /// An authorization without a CAB: the assessment (or the standard template) approves.
    pub fn without_cab(at: DateTime<Utc>, validity: Duration) -> Approval {
        Approval {
            group_id: String::new(),
            members: Vec::new(),
            quorum: 0,
            emergency: false,
            decisions: Vec::new(),
            approved_at: Some(at),
            expires_at: Some(at + validity),
        }
    }

    /// Approvals needed.
    pub fn needed(&self) -> usize {
        match self.quorum as usize {
            0 => self.members.len(),
            quorum => quorum.min(self.members.len()),
        }
    }

    fn count(&self, verdict: Verdict) -> usize {
        self.decisions
            .iter()
            .filter(|d| d.verdict == verdict)
            .count()
    }

    pub fn tally(&self) -> Tally {
        let approvals = self.count(Verdict::Approve);
        let undecided = self.members.len() - self.decisions.len().min(self.members.len());
        if approvals >= self.needed() {
            Tally::Approved
        } else if approvals + undecided < self.needed() {
            Tally::Rejected
        } else {
            Tally::Pending
        }
    }

    /// Records `caller`'s decision — for themselves, or as the delegate of `on_behalf_of` — at
    /// `now`, and says where the CAB stands. Nothing is recorded when it is refused.
    // The decision's parts, as the request gives them: a struct would only rename them.
    #[allow(clippy::too_many_arguments)]
    pub fn decide(
        &mut self,
        caller: &str,
        on_behalf_of: Option<&str>,
        delegations: &[Delegation],
        verdict: Verdict,
        comment: String,
        now: DateTime<Utc>,
        validity: Duration,
    ) -> Result<Tally, DecisionRefused> {
        let approver = match on_behalf_of {
            None => caller,
            Some(member) => {
                let delegated = delegations
                    .iter()
                    .any(|d| d.member == member && d.delegate == caller && now < d.until);
                if !delegated {
                    return Err(DecisionRefused::NoDelegation {
                        member: member.to_owned(),
                        delegate: caller.to_owned(),
                    });
                }
                member
            }
        };
        if !self.members.iter().any(|m| m == approver) {
            return Err(DecisionRefused::NotOnCab(approver.to_owned()));
        }
        if self.decisions.iter().any(|d| d.approver == approver) {
            return Err(DecisionRefused::AlreadyDecided(approver.to_owned()));
        }
        self.decisions.push(Decision {
            approver: approver.to_owned(),
            decided_by: caller.to_owned(),
            verdict,
            comment,
            at: now,
        });
        let tally = self.tally();
        if tally == Tally::Approved {
            self.approved_at = Some(now);
            self.expires_at = Some(now + validity);
        }
        Ok(tally)
    }

    /// Whether the approval still holds when a window starts at `start`.
    pub fn holds_until(&self, start: DateTime<Utc>) -> bool {
        self.expires_at.is_some_and(|expires| start <= expires)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(minutes: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_900_000_000, 0).expect("a time") + Duration::minutes(minutes)
    }

    fn board(members: &[&str], quorum: u32) -> Approval {
        Approval::for_rule(
            &CabRule {
                risk_level: Some(RiskLevel::Medium),
                group_id: "cab".into(),
                members: members.iter().map(|m| (*m).to_owned()).collect(),
                quorum,
            },
            false,
        )
    }

    fn vote(
        approval: &mut Approval,
        who: &str,
        verdict: Verdict,
    ) -> Result<Tally, DecisionRefused> {
        approval.decide(
            who,
            None,
            &[],
            verdict,
            String::new(),
            at(0),
            Duration::days(30),
        )
    }

    #[test]
    fn a_quorum_of_two_of_three_approves_on_the_second_approval() {
        let mut approval = board(&["ann", "bob", "cid"], 2);
        assert_eq!(
            vote(&mut approval, "ann", Verdict::Approve),
            Ok(Tally::Pending)
        );
        assert_eq!(
            vote(&mut approval, "bob", Verdict::Approve),
            Ok(Tally::Approved)
        );
        assert_eq!(approval.approved_at, Some(at(0)));
        assert_eq!(approval.expires_at, Some(at(0) + Duration::days(30)));
    }

    #[test]
    fn a_quorum_that_can_no_longer_be_reached_rejects() {
        let mut approval = board(&["ann", "bob", "cid"], 2);
        assert_eq!(
            vote(&mut approval, "ann", Verdict::Reject),
            Ok(Tally::Pending)
        );
        assert_eq!(
            vote(&mut approval, "bob", Verdict::Reject),
            Ok(Tally::Rejected)
        );
        let mut everyone = board(&["ann", "bob"], 0);
        assert_eq!(
            vote(&mut everyone, "ann", Verdict::Reject),
            Ok(Tally::Rejected)
        );
    }

    #[test]
    fn someone_not_on_the_cab_and_a_second_decision_are_refused() {
        let mut approval = board(&["ann", "bob"], 1);
        assert_eq!(
            vote(&mut approval, "eve", Verdict::Approve),
            Err(DecisionRefused::NotOnCab("eve".into()))
        );
        vote(&mut approval, "ann", Verdict::Reject).expect("first decision");
        assert_eq!(
            vote(&mut approval, "ann", Verdict::Approve),
            Err(DecisionRefused::AlreadyDecided("ann".into()))
        );
        assert_eq!(approval.decisions.len(), 1);
    }

    #[test]
    fn a_delegate_votes_for_the_member_until_the_delegation_ends() {
        let delegations = [Delegation {
            member: "ann".into(),
            delegate: "dan".into(),
            until: at(60),
        }];
        let mut approval = board(&["ann", "bob"], 2);
        let tally = approval
            .decide(
                "dan",
                Some("ann"),
                &delegations,
                Verdict::Approve,
                "ok".into(),
                at(10),
                Duration::days(1),
            )
            .expect("the delegate decides");
        assert_eq!(tally, Tally::Pending);
        assert_eq!(approval.decisions[0].approver, "ann");
        assert_eq!(approval.decisions[0].decided_by, "dan");
        // The member cannot vote again through their own hand.
        assert!(matches!(
            vote(&mut approval, "ann", Verdict::Approve),
            Err(DecisionRefused::AlreadyDecided(_))
        ));
        let mut later = board(&["ann", "bob"], 2);
        assert!(matches!(
            later.decide(
                "dan",
                Some("ann"),
                &delegations,
                Verdict::Approve,
                String::new(),
                at(61),
                Duration::days(1)
            ),
            Err(DecisionRefused::NoDelegation { .. })
        ));
    }

    #[test]
    fn an_approval_holds_only_for_windows_that_start_before_it_expires() {
        let approval = Approval::without_cab(at(0), Duration::days(30));
        assert!(approval.holds_until(at(0) + Duration::days(29)));
        assert!(!approval.holds_until(at(0) + Duration::days(31)));
        assert!(!board(&["ann"], 1).holds_until(at(1)));
    }

    #[test]
    fn the_policy_picks_the_rule_of_the_level_and_the_emergency_cab() {
        let rule = |level: Option<RiskLevel>, group: &str| CabRule {
            risk_level: level,
            group_id: group.into(),
            members: vec!["ann".into()],
            quorum: 1,
        };
        let policy = ChangePolicy {
            rules: vec![rule(Some(RiskLevel::High), "cab"), rule(None, "ecab")],
            ..ChangePolicy::default()
        };
        assert_eq!(policy.check(), Ok(()));
        let group = |t, l| policy.rule_for(t, l).map(|r| r.group_id.clone());
        assert_eq!(
            group(ChangeType::Normal, RiskLevel::High),
            Some("cab".into())
        );
        assert_eq!(group(ChangeType::Normal, RiskLevel::Low), None);
        assert_eq!(
            group(ChangeType::Emergency, RiskLevel::Low),
            Some("ecab".into())
        );
        assert_eq!(group(ChangeType::Standard, RiskLevel::High), None);
        let bad = ChangePolicy {
            rules: vec![
                CabRule {
                    quorum: 3,
                    ..rule(None, "")
                },
                rule(None, "x"),
            ],
            approval_validity_days: 0,
            ..ChangePolicy::default()
        };
        let fields: Vec<String> = bad
            .check()
            .expect_err("refused")
            .into_iter()
            .map(|(f, _)| f)
            .collect();
        assert_eq!(
            fields,
            [
                "policy.cab_rules[0].group_id",
                "policy.cab_rules[0].quorum",
                "policy.cab_rules[1].risk_level",
                "policy.approval_validity_days"
            ]
        );
    }
}
