//! The lifecycle of a change, per type, as one pure state machine. A step the table does not
//! allow is refused (`FAILED_PRECONDITION` at the edge) and nothing is written.
//!
//! | type      | path                                                                                  |
//! |-----------|---------------------------------------------------------------------------------------|
//! | standard  | draft → (submit: pre-approved) authorized → scheduled → implementing → closed        |
//! | normal    | draft → assessment → authorization (CAB) → authorized → scheduled → implementing → review → closed |
//! | emergency | draft → (submit: assessed at once) authorization (emergency CAB) → authorized → scheduled → implementing → review → closed |
//!
//! A risk level without a CAB rule skips `authorization` (the assessment authorizes it). A
//! failed implementation goes to `review` whatever the type: its backout is reviewed. The
//! emergency's review is its retrospective one. Until implementation starts a change may be
//! cancelled; in `authorization` the CAB may reject it.

use serde::{Deserialize, Serialize};

desk_kit::string_enum! {
    /// ITIL 4's three kinds of change.
    pub enum ChangeType {
        Standard => "standard",
        Normal => "normal",
        Emergency => "emergency",
    }
}

desk_kit::string_enum! {
    pub enum ChangeState {
        Draft => "draft",
        Assessment => "assessment",
        Authorization => "authorization",
        Authorized => "authorized",
        Scheduled => "scheduled",
        Implementing => "implementing",
        Review => "review",
        Closed => "closed",
        Rejected => "rejected",
        Cancelled => "cancelled",
    }
}

impl ChangeState {
    /// No step leaves it.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Closed | Self::Rejected | Self::Cancelled)
    }

    /// Its window is booked: other changes conflict with it.
    pub fn holds_its_window(self) -> bool {
        matches!(self, Self::Scheduled | Self::Implementing)
    }
}

/// One step of the lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Step {
    /// The requester hands the draft in; `cab_needed` says whether an emergency's risk level
    /// has an emergency CAB (normal changes are assessed first; standard ones are pre-approved).
    Submit {
        cab_needed: bool,
    },
    /// The change manager scores the risk; `cab_needed` says whether that level has a CAB.
    Assess {
        cab_needed: bool,
    },
    /// The CAB reached its quorum of approvals.
    Approve,
    /// The CAB can no longer reach its quorum.
    Reject,
    Schedule,
    Start,
    Succeed,
    Fail,
    Close,
    Cancel,
}

impl Step {
    pub fn name(self) -> &'static str {
        match self {
            Step::Submit { .. } => "submit",
            Step::Assess { .. } => "assess",
            Step::Approve => "approve",
            Step::Reject => "reject",
            Step::Schedule => "schedule",
            Step::Start => "start implementing",
            Step::Succeed => "complete successfully",
            Step::Fail => "complete as failed",
            Step::Close => "close",
            Step::Cancel => "cancel",
        }
    }
}

/// A step the lifecycle does not allow; the text is user-facing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a {change_type} change that is {state} cannot {}", step.name())]
pub struct TransitionRefused {
    pub change_type: ChangeType,
    pub state: ChangeState,
    pub step: Step,
}

/// Where `step` takes a change of `change_type` that is `state`.
pub fn next_state(
    change_type: ChangeType,
    state: ChangeState,
    step: Step,
) -> Result<ChangeState, TransitionRefused> {
    use ChangeState as S;
    use ChangeType as T;
    let authorized_or_cab = |cab_needed: bool| {
        if cab_needed {
            S::Authorization
        } else {
            S::Authorized
        }
    };
    let next = match (change_type, state, step) {
        (T::Standard, S::Draft, Step::Submit { .. }) => Some(S::Authorized),
        (T::Normal, S::Draft, Step::Submit { .. }) => Some(S::Assessment),
        (T::Emergency, S::Draft, Step::Submit { cab_needed }) => {
            Some(authorized_or_cab(cab_needed))
        }
        (T::Normal, S::Assessment, Step::Assess { cab_needed }) => {
            Some(authorized_or_cab(cab_needed))
        }
        (T::Normal | T::Emergency, S::Authorization, Step::Approve) => Some(S::Authorized),
        (T::Normal | T::Emergency, S::Authorization, Step::Reject) => Some(S::Rejected),
        (_, S::Authorized | S::Scheduled, Step::Schedule) => Some(S::Scheduled),
        (_, S::Scheduled, Step::Start) => Some(S::Implementing),
        (T::Standard, S::Implementing, Step::Succeed) => Some(S::Closed),
        (T::Normal | T::Emergency, S::Implementing, Step::Succeed) => Some(S::Review),
        (_, S::Implementing, Step::Fail) => Some(S::Review),
        (_, S::Review, Step::Close) => Some(S::Closed),
        (
            _,
            S::Draft | S::Assessment | S::Authorization | S::Authorized | S::Scheduled,
            Step::Cancel,
        ) => Some(S::Cancelled),
        _ => None,
    };
    next.ok_or(TransitionRefused {
        change_type,
        state,
        step,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ChangeState as S;

    const ALL_STEPS: &[Step] = &[
        Step::Submit { cab_needed: true },
        Step::Submit { cab_needed: false },
        Step::Assess { cab_needed: true },
        Step::Assess { cab_needed: false },
        Step::Approve,
        Step::Reject,
        Step::Schedule,
        Step::Start,
        Step::Succeed,
        Step::Fail,
        Step::Close,
        Step::Cancel,
    ];

    fn walk(change_type: ChangeType, steps: &[Step]) -> Vec<ChangeState> {
        let mut state = S::Draft;
        let mut seen = vec![state];
        for step in steps {
            state =
                next_state(change_type, state, *step).unwrap_or_else(|refused| panic!("{refused}"));
            seen.push(state);
        }
        seen
    }

    #[test]
    fn a_standard_change_is_pre_approved_and_closes_on_success() {
        assert_eq!(
            walk(
                ChangeType::Standard,
                &[
                    Step::Submit { cab_needed: true },
                    Step::Schedule,
                    Step::Start,
                    Step::Succeed
                ]
            ),
            [
                S::Draft,
                S::Authorized,
                S::Scheduled,
                S::Implementing,
                S::Closed
            ]
        );
    }

    #[test]
    fn a_normal_change_is_assessed_approved_scheduled_implemented_and_reviewed() {
        assert_eq!(
            walk(
                ChangeType::Normal,
                &[
                    Step::Submit { cab_needed: true },
                    Step::Assess { cab_needed: true },
                    Step::Approve,
                    Step::Schedule,
                    Step::Start,
                    Step::Succeed,
                    Step::Close
                ]
            ),
            [
                S::Draft,
                S::Assessment,
                S::Authorization,
                S::Authorized,
                S::Scheduled,
                S::Implementing,
                S::Review,
                S::Closed
            ]
        );
    }

    #[test]
    fn an_emergency_change_skips_assessment_and_is_reviewed_afterwards() {
        assert_eq!(
            walk(
                ChangeType::Emergency,
                &[
                    Step::Submit { cab_needed: true },
                    Step::Approve,
                    Step::Schedule,
                    Step::Start,
                    Step::Fail,
                    Step::Close
                ]
            ),
            [
                S::Draft,
                S::Authorization,
                S::Authorized,
                S::Scheduled,
                S::Implementing,
                S::Review,
                S::Closed
            ]
        );
    }

    #[test]
    fn a_level_without_a_cab_is_authorized_by_its_assessment() {
        assert_eq!(
            next_state(
                ChangeType::Normal,
                S::Assessment,
                Step::Assess { cab_needed: false }
            ),
            Ok(S::Authorized)
        );
    }

    #[test]
    fn forbidden_steps_are_refused_with_the_type_state_and_step_named() {
        let refused = next_state(ChangeType::Normal, S::Draft, Step::Start).expect_err("refused");
        assert_eq!(
            refused.to_string(),
            "a normal change that is draft cannot start implementing"
        );
        assert!(next_state(ChangeType::Standard, S::Assessment, Step::Approve).is_err());
        assert!(
            next_state(
                ChangeType::Standard,
                S::Authorized,
                Step::Assess { cab_needed: true }
            )
            .is_err()
        );
        assert!(next_state(ChangeType::Normal, S::Implementing, Step::Cancel).is_err());
    }

    #[test]
    fn no_step_leaves_a_final_state() {
        for change_type in ChangeType::ALL {
            for state in ChangeState::ALL.iter().filter(|s| s.is_final()) {
                for step in ALL_STEPS {
                    assert!(next_state(*change_type, *state, *step).is_err());
                }
            }
        }
    }

    proptest::proptest! {
        /// Whatever steps are tried, a change only ever moves along the table: it never
        /// reaches `implementing` without passing `scheduled`, nor `scheduled` without being
        /// authorized, and a standard change is never in `assessment` or `authorization`.
        #[test]
        fn any_sequence_of_steps_respects_the_order_of_the_lifecycle(
            type_index in 0usize..3,
            picks in proptest::collection::vec(0usize..ALL_STEPS.len(), 0..40),
        ) {
            let change_type = ChangeType::ALL[type_index];
            let mut state = S::Draft;
            let mut authorized = false;
            let mut scheduled = false;
            for pick in picks {
                let Ok(next) = next_state(change_type, state, ALL_STEPS[pick]) else { continue };
                if next == S::Authorized { authorized = true; }
                if next == S::Scheduled { proptest::prop_assert!(authorized); scheduled = true; }
                if next == S::Implementing { proptest::prop_assert!(scheduled); }
                if change_type == ChangeType::Standard {
                    proptest::prop_assert!(!matches!(next, S::Assessment | S::Authorization));
                }
                proptest::prop_assert!(!state.is_final());
                state = next;
            }
        }
    }
}
