//! Rate-limit policy: two token buckets per method class — one per tenant, one per person
//! (tenant and subject) — and what a caller is told about them.
//!
//! A call takes a token from both buckets of its class. Over the limit it is refused with
//! `RESOURCE_EXHAUSTED`, the time until a token is back in `google.rpc.RetryInfo`, and, on every
//! call of a limited class, the RateLimit header fields of the IETF draft
//! (`ratelimit-limit`, `ratelimit-remaining`, `ratelimit-reset`) for the tighter bucket.
//! Service tokens are not limited: their calls are the platform's own work.

use std::time::Duration;

use desk_kit::settings::{ClassRateLimits, GatewayRateLimits};

use super::methods::MethodClass;

/// One token bucket: `per_minute` tokens come back each minute, up to `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bucket {
    pub per_minute: u32,
    pub burst: u32,
}

impl Bucket {
    /// `None` when `per_minute` is 0: no limit. A burst of 0 is taken as 1, so the rate can be
    /// reached at all.
    pub fn new(per_minute: u32, burst: u32) -> Option<Bucket> {
        (per_minute > 0).then_some(Bucket {
            per_minute,
            burst: burst.max(1),
        })
    }

    /// How long one token takes to come back.
    pub fn replenish_interval(&self) -> Duration {
        Duration::from_secs(60) / self.per_minute.max(1)
    }

    /// How long a bucket holding `remaining` tokens takes to be full again.
    pub fn time_to_full(&self, remaining: u32) -> Duration {
        self.replenish_interval() * self.burst.saturating_sub(remaining)
    }
}

/// Whose bucket ran dry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Tenant,
    Person,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Tenant => "tenant",
            Scope::Person => "person",
        }
    }
}

/// The buckets of one method class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClassPolicy {
    pub tenant: Option<Bucket>,
    pub person: Option<Bucket>,
}

impl ClassPolicy {
    fn from_settings(limits: &ClassRateLimits) -> ClassPolicy {
        ClassPolicy {
            tenant: Bucket::new(limits.tenant_per_minute, limits.tenant_burst),
            person: Bucket::new(limits.person_per_minute, limits.person_burst),
        }
    }

    pub fn bucket(&self, scope: Scope) -> Option<Bucket> {
        match scope {
            Scope::Tenant => self.tenant,
            Scope::Person => self.person,
        }
    }
}

/// The buckets of every class, from `gateway.limits`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitPolicy {
    reads: ClassPolicy,
    writes: ClassPolicy,
    searches: ClassPolicy,
    imports: ClassPolicy,
}

impl RateLimitPolicy {
    pub fn from_settings(limits: &GatewayRateLimits) -> RateLimitPolicy {
        RateLimitPolicy {
            reads: ClassPolicy::from_settings(&limits.reads),
            writes: ClassPolicy::from_settings(&limits.writes),
            searches: ClassPolicy::from_settings(&limits.searches),
            imports: ClassPolicy::from_settings(&limits.imports),
        }
    }

    pub fn class(&self, class: MethodClass) -> &ClassPolicy {
        match class {
            MethodClass::Reads => &self.reads,
            MethodClass::Writes => &self.writes,
            MethodClass::Searches => &self.searches,
            MethodClass::Imports => &self.imports,
        }
    }
}

/// What a caller is told about one bucket after a call (the RateLimit header fields).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaReport {
    /// The bucket's size.
    pub limit: u32,
    /// Tokens left.
    pub remaining: u32,
    /// Until the bucket is full again; for a refused call, until the next call may pass.
    pub reset: Duration,
}

pub const LIMIT_HEADER: &str = "ratelimit-limit";
pub const REMAINING_HEADER: &str = "ratelimit-remaining";
pub const RESET_HEADER: &str = "ratelimit-reset";

impl QuotaReport {
    /// After a call that took a token from `bucket`, which now holds `remaining`.
    pub fn after_call(bucket: Bucket, remaining: u32) -> QuotaReport {
        QuotaReport {
            limit: bucket.burst,
            remaining,
            reset: bucket.time_to_full(remaining),
        }
    }

    /// The report a caller sees when two buckets applied: the one with fewer tokens left.
    pub fn tighter(self, other: QuotaReport) -> QuotaReport {
        match self.remaining.cmp(&other.remaining) {
            std::cmp::Ordering::Less => self,
            std::cmp::Ordering::Greater => other,
            std::cmp::Ordering::Equal if self.reset >= other.reset => self,
            std::cmp::Ordering::Equal => other,
        }
    }

    /// The header fields, `ratelimit-reset` in whole seconds rounded up (the draft's unit).
    pub fn headers(&self) -> [(&'static str, String); 3] {
        [
            (LIMIT_HEADER, self.limit.to_string()),
            (REMAINING_HEADER, self.remaining.to_string()),
            (RESET_HEADER, whole_seconds_up(self.reset).to_string()),
        ]
    }
}

/// A refused call: which bucket, and when to try again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    pub class: MethodClass,
    pub scope: Scope,
    pub bucket: Bucket,
    pub retry_after: Duration,
}

impl Refusal {
    pub fn report(&self) -> QuotaReport {
        QuotaReport {
            limit: self.bucket.burst,
            remaining: 0,
            reset: self.retry_after,
        }
    }

    /// The status message: what ran out, in words a caller can act on.
    pub fn message(&self) -> String {
        format!(
            "rate limit of {} {} per minute per {} reached; retry in {} ms",
            self.bucket.per_minute,
            self.class.as_str(),
            self.scope.as_str(),
            self.retry_after.as_millis().max(1)
        )
    }
}

fn whole_seconds_up(duration: Duration) -> u64 {
    let seconds = duration.as_secs();
    if duration.subsec_nanos() > 0 {
        seconds + 1
    } else {
        seconds
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rate_of_zero_is_no_limit_and_a_burst_of_zero_is_one() {
        assert_eq!(Bucket::new(0, 10), None);
        assert_eq!(Bucket::new(60, 0).map(|b| b.burst), Some(1));
    }

    #[test]
    fn tokens_come_back_at_the_rate_per_minute() {
        let bucket = Bucket::new(120, 10).expect("limited");
        assert_eq!(bucket.replenish_interval(), Duration::from_millis(500));
        assert_eq!(bucket.time_to_full(10), Duration::ZERO);
        assert_eq!(bucket.time_to_full(6), Duration::from_secs(2));
    }

    #[test]
    fn the_tighter_bucket_is_reported() {
        let tenant = QuotaReport::after_call(Bucket::new(600, 100).expect("limited"), 40);
        let person = QuotaReport::after_call(Bucket::new(60, 10).expect("limited"), 3);
        assert_eq!(tenant.tighter(person), person);
        assert_eq!(person.tighter(tenant), person);
    }

    #[test]
    fn headers_give_the_reset_in_whole_seconds_rounded_up() {
        let report = QuotaReport {
            limit: 10,
            remaining: 0,
            reset: Duration::from_millis(1_200),
        };
        assert_eq!(
            report.headers(),
            [
                (LIMIT_HEADER, "10".to_owned()),
                (REMAINING_HEADER, "0".to_owned()),
                (RESET_HEADER, "2".to_owned()),
            ]
        );
    }

    #[test]
    fn the_defaults_limit_every_class_for_tenants_and_persons() {
        let policy = RateLimitPolicy::from_settings(
            &desk_kit::settings::Settings::defaults().gateway.limits,
        );
        for class in MethodClass::ALL {
            let class_policy = policy.class(class);
            assert!(
                class_policy.tenant.is_some() && class_policy.person.is_some(),
                "{class:?}"
            );
        }
    }

    #[test]
    fn a_refusal_says_what_ran_out_and_when_to_retry() {
        let refusal = Refusal {
            class: MethodClass::Writes,
            scope: Scope::Tenant,
            bucket: Bucket::new(60, 5).expect("limited"),
            retry_after: Duration::from_millis(250),
        };
        assert_eq!(
            refusal.message(),
            "rate limit of 60 writes per minute per tenant reached; retry in 250 ms"
        );
        assert_eq!(refusal.report().remaining, 0);
    }
}
