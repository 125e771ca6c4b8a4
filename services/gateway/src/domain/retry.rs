//! Retries of idempotent calls whose upstream could not be reached, held to a budget.
//!
//! Only a call that changes nothing (see [`super::methods::MethodInfo::idempotent`]) and whose
//! request the gateway still holds (a unary request) is sent again, and only when the upstream
//! was not reached or said `UNAVAILABLE` — never after it answered anything else. A budget per
//! upstream keeps retries from multiplying the load on an upstream that is already failing:
//! each call earns `ratio` of a retry, and `min_per_second` more come with time, so retries add
//! at most about `ratio` to an upstream's traffic (plus the floor) however many calls fail.

use std::time::{Duration, Instant};

/// The retry budget of one upstream. Time is passed in, never read.
#[derive(Debug, Clone)]
pub struct RetryBudget {
    ratio: f64,
    min_per_second: f64,
    /// Retries that may be spent now.
    balance: f64,
    /// The most the balance may hold: ten seconds of the floor, and at least one retry.
    cap: f64,
    last_refill: Option<Instant>,
}

impl RetryBudget {
    pub fn new(ratio: f64, min_per_second: f64) -> RetryBudget {
        let ratio = if ratio.is_finite() {
            ratio.max(0.0)
        } else {
            0.0
        };
        let min_per_second = if min_per_second.is_finite() {
            min_per_second.max(0.0)
        } else {
            0.0
        };
        let cap = (min_per_second * 10.0).max(1.0);
        RetryBudget {
            ratio,
            min_per_second,
            balance: cap,
            cap,
            last_refill: None,
        }
    }

    /// A call (not a retry) was made at `now`.
    pub fn record_call(&mut self, now: Instant) {
        self.refill(now);
        self.balance = (self.balance + self.ratio).min(self.cap);
    }

    /// Takes one retry from the budget; `false` when it is spent.
    pub fn try_spend(&mut self, now: Instant) -> bool {
        self.refill(now);
        if self.balance >= 1.0 {
            self.balance -= 1.0;
            true
        } else {
            false
        }
    }

    fn refill(&mut self, now: Instant) {
        if let Some(last) = self.last_refill {
            let elapsed = now.saturating_duration_since(last).as_secs_f64();
            self.balance = (self.balance + elapsed * self.min_per_second).min(self.cap);
        }
        self.last_refill = Some(now);
    }
}

/// How an attempt ended, as far as retrying is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// The upstream answered (any status but `UNAVAILABLE`): that is the answer.
    Answered,
    /// The upstream was not reached, or said `UNAVAILABLE`.
    Unavailable,
}

/// The retry rules of one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts including the first.
    pub max_attempts: u32,
    /// Pause before the first retry, doubled for each one after.
    pub backoff: Duration,
}

impl RetryPolicy {
    /// Whether attempt number `attempt` (1 for the first), which ended in `outcome`, may be
    /// followed by another for a call that is `idempotent`, with `left` until its deadline.
    /// The budget is asked last, so it is only spent on a retry that will be made.
    pub fn may_retry(
        &self,
        attempt: u32,
        outcome: AttemptOutcome,
        idempotent: bool,
        left: Duration,
    ) -> bool {
        idempotent
            && outcome == AttemptOutcome::Unavailable
            && attempt < self.max_attempts
            && left > self.pause_after(attempt)
    }

    /// The pause after attempt number `attempt` failed.
    pub fn pause_after(&self, attempt: u32) -> Duration {
        self.backoff
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: RetryPolicy = RetryPolicy {
        max_attempts: 3,
        backoff: Duration::from_millis(20),
    };

    #[test]
    fn only_idempotent_calls_that_found_no_upstream_are_retried() {
        let left = Duration::from_secs(10);
        assert!(POLICY.may_retry(1, AttemptOutcome::Unavailable, true, left));
        assert!(!POLICY.may_retry(1, AttemptOutcome::Unavailable, false, left));
        assert!(!POLICY.may_retry(1, AttemptOutcome::Answered, true, left));
    }

    #[test]
    fn attempts_stop_at_the_maximum_and_before_the_deadline() {
        let left = Duration::from_secs(10);
        assert!(POLICY.may_retry(2, AttemptOutcome::Unavailable, true, left));
        assert!(!POLICY.may_retry(3, AttemptOutcome::Unavailable, true, left));
        // The pause after the second attempt (40 ms) would outlast the deadline.
        assert!(!POLICY.may_retry(
            2,
            AttemptOutcome::Unavailable,
            true,
            Duration::from_millis(30)
        ));
    }

    #[test]
    fn pauses_double() {
        assert_eq!(POLICY.pause_after(1), Duration::from_millis(20));
        assert_eq!(POLICY.pause_after(2), Duration::from_millis(40));
        assert_eq!(POLICY.pause_after(3), Duration::from_millis(80));
    }

    #[test]
    fn a_budget_allows_about_its_ratio_of_retries_once_its_reserve_is_spent() {
        let start = Instant::now();
        let mut budget = RetryBudget::new(0.2, 0.0);
        // The reserve: one retry.
        budget.record_call(start);
        assert!(budget.try_spend(start));
        let mut retries = 0;
        for _ in 0..100 {
            budget.record_call(start);
            if budget.try_spend(start) {
                retries += 1;
            }
        }
        assert_eq!(retries, 20);
    }

    #[test]
    fn the_floor_refills_a_spent_budget_with_time() {
        let start = Instant::now();
        let mut budget = RetryBudget::new(0.0, 10.0);
        let spent = (0..1000).take_while(|_| budget.try_spend(start)).count();
        assert_eq!(spent, 100, "ten seconds of the floor");
        assert!(!budget.try_spend(start));
        let later = start + Duration::from_millis(500);
        let refilled = (0..1000).take_while(|_| budget.try_spend(later)).count();
        assert_eq!(refilled, 5);
    }

    #[test]
    fn nonsense_settings_give_no_retries_beyond_the_reserve() {
        let now = Instant::now();
        let mut budget = RetryBudget::new(f64::NAN, -3.0);
        budget.record_call(now);
        assert!(budget.try_spend(now));
        budget.record_call(now);
        assert!(!budget.try_spend(now));
    }
}
