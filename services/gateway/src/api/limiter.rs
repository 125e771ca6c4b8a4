//! The token buckets themselves (governor), keyed by tenant and by person, one pair per method
//! class; the policy and what callers are told are [`crate::domain::limits`].
//!
//! Buckets live in this process: with several gateway replicas each holds its own, so a tenant's
//! effective limit is the configured one times the replicas behind the load balancer. That is
//! the usual trade (no shared store on the request path); size the settings for it.

use std::{num::NonZeroU32, time::Duration};

use governor::{
    Quota, RateLimiter,
    clock::{Clock as _, DefaultClock},
    middleware::StateInformationMiddleware,
    state::keyed::DefaultKeyedStateStore,
};

use crate::domain::{
    limits::{Bucket, QuotaReport, RateLimitPolicy, Refusal, Scope},
    methods::MethodClass,
};

type Keyed<K> = RateLimiter<K, DefaultKeyedStateStore<K>, DefaultClock, StateInformationMiddleware>;

/// The two buckets of one class.
struct ClassLimiters {
    tenant: Option<(Bucket, Keyed<String>)>,
    person: Option<(Bucket, Keyed<(String, String)>)>,
}

pub struct Limiter {
    classes: Vec<(MethodClass, ClassLimiters)>,
    clock: DefaultClock,
}

impl std::fmt::Debug for Limiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limiter").finish_non_exhaustive()
    }
}

fn keyed<K: std::hash::Hash + Eq + Clone>(bucket: Bucket) -> Option<Keyed<K>> {
    let burst = NonZeroU32::new(bucket.burst)?;
    let quota = Quota::with_period(bucket.replenish_interval())?.allow_burst(burst);
    Some(RateLimiter::keyed(quota).with_middleware::<StateInformationMiddleware>())
}

impl Limiter {
    pub fn new(policy: &RateLimitPolicy) -> Limiter {
        let classes = MethodClass::ALL
            .into_iter()
            .map(|class| {
                let class_policy = policy.class(class);
                let limiters = ClassLimiters {
                    tenant: class_policy
                        .tenant
                        .and_then(|bucket| Some((bucket, keyed(bucket)?))),
                    person: class_policy
                        .person
                        .and_then(|bucket| Some((bucket, keyed(bucket)?))),
                };
                (class, limiters)
            })
            .collect();
        Limiter {
            classes,
            clock: DefaultClock::default(),
        }
    }

    /// Takes a token of `class` for `subject` of `tenant`: the person's bucket first (a person
    /// over their own limit does not spend their tenant's tokens), then the tenant's. `Ok` with
    /// the tighter bucket's report (`None` when the class is not limited).
    pub fn check(
        &self,
        class: MethodClass,
        tenant: &str,
        subject: &str,
    ) -> Result<Option<QuotaReport>, Refusal> {
        let Some((_, limiters)) = self.classes.iter().find(|(c, _)| *c == class) else {
            return Ok(None);
        };
        let mut report: Option<QuotaReport> = None;
        if let Some((bucket, limiter)) = &limiters.person {
            let key = (tenant.to_owned(), subject.to_owned());
            let state = limiter
                .check_key(&key)
                .map_err(|not_until| self.refusal(class, Scope::Person, *bucket, &not_until))?;
            report = Some(QuotaReport::after_call(
                *bucket,
                state.remaining_burst_capacity(),
            ));
        }
        if let Some((bucket, limiter)) = &limiters.tenant {
            let state = limiter
                .check_key(&tenant.to_owned())
                .map_err(|not_until| self.refusal(class, Scope::Tenant, *bucket, &not_until))?;
            let tenant_report = QuotaReport::after_call(*bucket, state.remaining_burst_capacity());
            report = Some(report.map_or(tenant_report, |r| r.tighter(tenant_report)));
        }
        Ok(report)
    }

    fn refusal(
        &self,
        class: MethodClass,
        scope: Scope,
        bucket: Bucket,
        not_until: &governor::NotUntil<<DefaultClock as governor::clock::Clock>::Instant>,
    ) -> Refusal {
        let retry_after = not_until.wait_time_from(self.clock.now());
        Refusal {
            class,
            scope,
            bucket,
            // A bucket that refuses has a token coming; never tell a caller to retry at once.
            retry_after: retry_after.max(Duration::from_millis(1)),
        }
    }

    /// Forgets buckets that are full again, so the keys of tenants and people who stopped
    /// calling do not pile up.
    pub fn forget_idle(&self) {
        for (_, limiters) in &self.classes {
            if let Some((_, limiter)) = &limiters.tenant {
                limiter.retain_recent();
                limiter.shrink_to_fit();
            }
            if let Some((_, limiter)) = &limiters.person {
                limiter.retain_recent();
                limiter.shrink_to_fit();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use desk_kit::settings::Settings;

    fn limiter(configure: impl FnOnce(&mut desk_kit::settings::GatewayRateLimits)) -> Limiter {
        let mut limits = Settings::defaults().gateway.limits;
        configure(&mut limits);
        Limiter::new(&RateLimitPolicy::from_settings(&limits))
    }

    #[test]
    fn a_burst_over_the_tenants_bucket_is_refused_with_a_delay() {
        let limiter = limiter(|limits| {
            limits.writes.tenant_per_minute = 1;
            limits.writes.tenant_burst = 3;
        });
        for remaining in [2, 1, 0] {
            let report = limiter
                .check(MethodClass::Writes, "acme", "ana")
                .expect("within the burst")
                .expect("limited class");
            assert_eq!(report.remaining, remaining);
        }
        let refusal = limiter
            .check(MethodClass::Writes, "acme", "bob")
            .expect_err("over the tenant's burst");
        assert_eq!(refusal.scope, Scope::Tenant);
        // One token a minute: the next one is due within the minute.
        assert!(
            refusal.retry_after > Duration::ZERO && refusal.retry_after <= Duration::from_secs(60),
            "{refusal:?}"
        );
        // Another tenant and another class have buckets of their own.
        assert!(limiter.check(MethodClass::Writes, "globex", "ana").is_ok());
        assert!(limiter.check(MethodClass::Reads, "acme", "ana").is_ok());
    }

    #[test]
    fn a_person_over_their_bucket_is_refused_before_the_tenant_pays() {
        let limiter = limiter(|limits| {
            limits.reads.person_per_minute = 1;
            limits.reads.person_burst = 1;
            limits.reads.tenant_per_minute = 1;
            limits.reads.tenant_burst = 2;
        });
        assert!(limiter.check(MethodClass::Reads, "acme", "ana").is_ok());
        let refusal = limiter
            .check(MethodClass::Reads, "acme", "ana")
            .expect_err("ana's own bucket is empty");
        assert_eq!(refusal.scope, Scope::Person);
        // The tenant still has its second token for someone else.
        assert!(limiter.check(MethodClass::Reads, "acme", "bob").is_ok());
    }

    #[test]
    fn a_class_without_limits_reports_nothing() {
        let limiter = limiter(|limits| {
            limits.searches.tenant_per_minute = 0;
            limits.searches.person_per_minute = 0;
        });
        assert_eq!(
            limiter.check(MethodClass::Searches, "acme", "ana"),
            Ok(None)
        );
    }
}
