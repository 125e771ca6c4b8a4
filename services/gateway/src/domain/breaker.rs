//! A circuit breaker per upstream: after `failure_threshold` consecutive failures (the upstream
//! was not reached, or said `UNAVAILABLE`) the circuit opens and calls are refused at once with
//! `UNAVAILABLE` for `open_for`, instead of each waiting for a connection that will not come.
//! Then one trial call may pass (half-open): its success closes the circuit, its failure opens
//! it again. A successful health check of the upstream once `open_for` has passed closes it
//! too, so an upstream that came back is used again without waiting for a caller to risk it.
//!
//! Time is passed in, never read.

use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    Closed {
        consecutive_failures: u32,
    },
    Open {
        until: Instant,
    },
    /// One trial call is out since `trial_started`; a trial that never reports back (its caller
    /// gave up) lets another one go after `open_for`.
    HalfOpen {
        trial_started: Instant,
    },
}

/// Whether a call may go to the upstream now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Pass,
    /// The call is the trial of a half-open circuit.
    Trial,
    /// The circuit is open; `retry_after` until a trial may pass.
    Refuse {
        retry_after: Duration,
    },
}

/// A change the health report must show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    Opened,
    Closed,
}

#[derive(Debug, Clone)]
pub struct Breaker {
    failure_threshold: u32,
    open_for: Duration,
    state: BreakerState,
}

impl Breaker {
    pub fn new(failure_threshold: u32, open_for: Duration) -> Breaker {
        Breaker {
            failure_threshold: failure_threshold.max(1),
            open_for,
            state: BreakerState::Closed {
                consecutive_failures: 0,
            },
        }
    }

    pub fn state(&self) -> BreakerState {
        self.state
    }

    /// Calls are not flowing normally: open, or waiting for its trial.
    pub fn is_open(&self) -> bool {
        !matches!(self.state, BreakerState::Closed { .. })
    }

    pub fn admit(&mut self, now: Instant) -> Admission {
        match self.state {
            BreakerState::Closed { .. } => Admission::Pass,
            BreakerState::Open { until } if now < until => Admission::Refuse {
                retry_after: until - now,
            },
            BreakerState::HalfOpen { trial_started } if now < trial_started + self.open_for => {
                Admission::Refuse {
                    retry_after: trial_started + self.open_for - now,
                }
            }
            BreakerState::Open { .. } | BreakerState::HalfOpen { .. } => {
                self.state = BreakerState::HalfOpen { trial_started: now };
                Admission::Trial
            }
        }
    }

    /// A call reached the upstream and got an answer.
    pub fn record_success(&mut self) -> Option<Transition> {
        match self.state {
            BreakerState::Closed { .. } => {
                self.state = BreakerState::Closed {
                    consecutive_failures: 0,
                };
                None
            }
            BreakerState::HalfOpen { .. } => {
                self.state = BreakerState::Closed {
                    consecutive_failures: 0,
                };
                Some(Transition::Closed)
            }
            // A call admitted before the circuit opened, answered late: one late answer does
            // not prove the upstream back.
            BreakerState::Open { .. } => None,
        }
    }

    /// A call did not reach the upstream, or it said `UNAVAILABLE`.
    pub fn record_failure(&mut self, now: Instant) -> Option<Transition> {
        match self.state {
            BreakerState::Closed {
                consecutive_failures,
            } => {
                let failures = consecutive_failures + 1;
                if failures >= self.failure_threshold {
                    self.state = BreakerState::Open {
                        until: now + self.open_for,
                    };
                    Some(Transition::Opened)
                } else {
                    self.state = BreakerState::Closed {
                        consecutive_failures: failures,
                    };
                    None
                }
            }
            BreakerState::HalfOpen { .. } => {
                self.state = BreakerState::Open {
                    until: now + self.open_for,
                };
                None
            }
            BreakerState::Open { .. } => None,
        }
    }

    /// The upstream's health check said SERVING at `now`.
    pub fn record_healthy_probe(&mut self, now: Instant) -> Option<Transition> {
        match self.state {
            BreakerState::Open { until } if now < until => None,
            BreakerState::Open { .. } | BreakerState::HalfOpen { .. } => {
                self.state = BreakerState::Closed {
                    consecutive_failures: 0,
                };
                Some(Transition::Closed)
            }
            BreakerState::Closed { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPEN_FOR: Duration = Duration::from_secs(5);

    fn opened(now: Instant) -> Breaker {
        let mut breaker = Breaker::new(3, OPEN_FOR);
        breaker.record_failure(now);
        breaker.record_failure(now);
        assert_eq!(breaker.record_failure(now), Some(Transition::Opened));
        breaker
    }

    #[test]
    fn consecutive_failures_open_the_circuit_and_a_success_resets_the_count() {
        let now = Instant::now();
        let mut breaker = Breaker::new(3, OPEN_FOR);
        breaker.record_failure(now);
        breaker.record_failure(now);
        assert_eq!(breaker.record_success(), None);
        breaker.record_failure(now);
        breaker.record_failure(now);
        assert!(!breaker.is_open());
        assert_eq!(breaker.record_failure(now), Some(Transition::Opened));
        assert!(breaker.is_open());
    }

    #[test]
    fn an_open_circuit_refuses_until_its_time_is_up_then_lets_one_trial_pass() {
        let now = Instant::now();
        let mut breaker = opened(now);
        assert_eq!(
            breaker.admit(now + Duration::from_secs(1)),
            Admission::Refuse {
                retry_after: Duration::from_secs(4)
            }
        );
        let later = now + OPEN_FOR;
        assert_eq!(breaker.admit(later), Admission::Trial);
        assert!(matches!(breaker.admit(later), Admission::Refuse { .. }));
    }

    #[test]
    fn the_trial_decides() {
        let now = Instant::now();
        let mut breaker = opened(now);
        breaker.admit(now + OPEN_FOR);
        assert_eq!(breaker.record_success(), Some(Transition::Closed));
        assert_eq!(breaker.admit(now + OPEN_FOR), Admission::Pass);

        let mut breaker = opened(now);
        let trial_time = now + OPEN_FOR;
        breaker.admit(trial_time);
        assert_eq!(breaker.record_failure(trial_time), None);
        assert_eq!(
            breaker.state(),
            BreakerState::Open {
                until: trial_time + OPEN_FOR
            }
        );
    }

    #[test]
    fn a_trial_that_never_reports_lets_another_go_later() {
        let now = Instant::now();
        let mut breaker = opened(now);
        breaker.admit(now + OPEN_FOR);
        assert_eq!(breaker.admit(now + OPEN_FOR * 2), Admission::Trial);
    }

    #[test]
    fn a_late_success_does_not_close_an_open_circuit() {
        let now = Instant::now();
        let mut breaker = opened(now);
        assert_eq!(breaker.record_success(), None);
        assert!(breaker.is_open());
    }

    #[test]
    fn a_healthy_probe_closes_the_circuit_once_its_time_is_up() {
        let now = Instant::now();
        let mut breaker = opened(now);
        assert_eq!(
            breaker.record_healthy_probe(now + Duration::from_secs(1)),
            None
        );
        assert_eq!(
            breaker.record_healthy_probe(now + OPEN_FOR),
            Some(Transition::Closed)
        );
        assert_eq!(breaker.admit(now + OPEN_FOR), Admission::Pass);
    }
}
