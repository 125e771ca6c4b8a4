//! The gRPC service: each handler parses its request (every violation at once), authorizes,
//! lets the domain decide, writes with its events in one transaction, and replies.
//!
//! # Layout
//! - [`service`]: the tonic trait, one thin method per RPC.
//! - this module: the handlers' logic — calendars, policies, recomputation, clocks, queues, KPIs.
//! - [`convert`]: domain values to and from protobuf.

pub mod convert;
pub mod service;

use std::{collections::HashMap, sync::Arc};

use chrono::{DateTime, Datelike, TimeDelta, Utc};
use desk_business_time::{BusinessCalendar, holidays_from_ics};
use desk_kit::{
    auth::{Caller, Role},
    clock::SharedClock,
    error::{ApiError, Classify, FieldViolation, classify_db_error},
    idempotency::{Fingerprint, IdempotentCreate, Recorded},
    ids,
};
use desk_proto::sla::v1 as pb;
use uuid::Uuid;

use crate::{
    domain::{CalendarBook, Policy, Violation, kpi},
    events::clocks::{Engine, Folded, fold_all},
    store::{Calendar, IDEMPOTENCY_KEYS, SlaStore, StoreError, TicketRecord},
};

#[derive(Debug, thiserror::Error)]
pub enum ApiFailure {
    #[error("invalid request")]
    Invalid(Vec<Violation>),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("the {what} is at another version than {expected}: reload it and try again")]
    Stale { what: &'static str, expected: i64 },
    #[error(transparent)]
    Idempotency(#[from] desk_kit::idempotency::IdempotencyError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub type ApiResult<T> = Result<T, ApiFailure>;

impl From<sea_orm::DbErr> for ApiFailure {
    fn from(error: sea_orm::DbErr) -> Self {
        ApiFailure::Store(StoreError::Db(error))
    }
}

impl Classify for ApiFailure {
    fn classify(&self) -> ApiError {
        match self {
            ApiFailure::Invalid(violations) => ApiError::InvalidArgument(
                violations
                    .iter()
                    .map(|v| FieldViolation::new(v.field.clone(), v.description.clone()))
                    .collect(),
            ),
            ApiFailure::NotFound(what) => ApiError::NotFound(format!("{what} not found")),
            ApiFailure::Forbidden(reason) => ApiError::PermissionDenied((*reason).to_owned()),
            ApiFailure::Stale { .. } => ApiError::Aborted(self.to_string()),
            ApiFailure::Idempotency(error) => error.classify(),
            ApiFailure::Store(StoreError::Db(error)) => classify_db_error(error),
            ApiFailure::Store(StoreError::Corrupt(_)) => ApiError::Internal,
        }
    }
}

fn invalid_if_any(violations: Vec<Violation>) -> ApiResult<()> {
    if violations.is_empty() {
        Ok(())
    } else {
        Err(ApiFailure::Invalid(violations))
    }
}

/// Who may change calendars and policies: they move every open clock.
fn require_manager(caller: &Caller) -> ApiResult<()> {
    if caller.has_any(&[Role::Admin, Role::Manager]) {
        Ok(())
    } else {
        Err(ApiFailure::Forbidden(
            "calendars and policies are kept by managers and admins",
        ))
    }
}

fn require_staff(caller: &Caller) -> ApiResult<()> {
    if caller.has_any(&[Role::Admin, Role::Manager, Role::Agent, Role::Service]) {
        Ok(())
    } else {
        Err(ApiFailure::Forbidden("agents, managers and admins only"))
    }
}

/// The service's state, shared by every handler (cheap to clone).
#[derive(Clone)]
pub struct SlaApi {
    pub(crate) store: Arc<SlaStore>,
    pub(crate) engine: Arc<Engine>,
    pub(crate) region: String,
    pub(crate) clock: SharedClock,
}

/// What a calendar or policy change would do to the open clocks.
pub struct Recomputed {
    pub summary: pb::Recomputation,
    pub after: Vec<(TicketRecord, Folded)>,
}

impl SlaApi {
    pub fn new(
        store: Arc<SlaStore>,
        engine: Arc<Engine>,
        region: String,
        clock: SharedClock,
    ) -> Self {
        Self {
            store,
            engine,
            region,
            clock,
        }
    }

    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// An id of this region; anything else answers as an unknown object.
    fn local_id(&self, text: &str, what: &'static str) -> ApiResult<Uuid> {
        match ids::parse_id(text) {
            Some(id) if id.region == self.region => Ok(id.uuid),
            _ => Err(ApiFailure::NotFound(what)),
        }
    }

    // ---- calendars ----

    fn validated_calendar(
        &self,
        calendar: Option<&pb::Calendar>,
    ) -> ApiResult<(String, BusinessCalendar)> {
        let mut violations = Vec::new();
        let Some(calendar) = calendar else {
            return Err(ApiFailure::Invalid(vec![Violation::new(
                "calendar", "required",
            )]));
        };
        let (name, spec) = convert::calendar_from_pb(calendar, "calendar", &mut violations);
        let validated = match BusinessCalendar::new(spec) {
            Ok(validated) => Some(validated),
            Err(problems) => {
                violations.extend(
                    problems
                        .0
                        .into_iter()
                        .map(|p| Violation::new(format!("calendar.{}", p.field), p.description)),
                );
                None
            }
        };
        invalid_if_any(violations)?;
        validated
            .map(|v| (name, v))
            .ok_or_else(|| ApiFailure::Invalid(vec![Violation::new("calendar", "invalid")]))
    }

    pub async fn create_calendar(
        &self,
        caller: &Caller,
        request: pb::CreateCalendarRequest,
    ) -> ApiResult<pb::Calendar> {
        require_manager(caller)?;
        let (name, validated) = self.validated_calendar(request.calendar.as_ref())?;
        let now = self.now();
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
            return self.calendar_pb(caller, earlier).await;
        }
        let calendar = Calendar {
            id: ids::new_uuid(),
            tenant: caller.tenant.clone(),
            name,
            spec: validated.spec(),
            version: 1,
            created_at: now,
            updated_at: now,
        };
        let txn = self.store.begin().await?;
        if let Some(create) = &idempotent
            && IDEMPOTENCY_KEYS
                .record(&txn, create, calendar.id, now)
                .await?
                == Recorded::TakenConcurrently
        {
            drop(txn);
            let earlier = IDEMPOTENCY_KEYS
                .earlier_result(self.store.db().connection(), create)
                .await?
                .ok_or(ApiFailure::NotFound("calendar"))?;
            return self.calendar_pb(caller, earlier).await;
        }
        self.store.insert_calendar(&*txn, &calendar).await?;
        self.store.commit(txn).await?;
        Ok(convert::calendar_to_pb(&self.region, &calendar))
    }

    async fn calendar_pb(&self, caller: &Caller, id: Uuid) -> ApiResult<pb::Calendar> {
        let calendar = self
            .store
            .calendar(self.store.db().connection(), &caller.tenant, id)
            .await?
            .ok_or(ApiFailure::NotFound("calendar"))?;
        Ok(convert::calendar_to_pb(&self.region, &calendar))
    }

    pub async fn get_calendar(&self, caller: &Caller, id: &str) -> ApiResult<pb::Calendar> {
        require_staff(caller).map_err(|_| ApiFailure::NotFound("calendar"))?;
        let id = self.local_id(id, "calendar")?;
        self.calendar_pb(caller, id).await
    }

    pub async fn list_calendars(
        &self,
        caller: &Caller,
        request: pb::ListCalendarsRequest,
    ) -> ApiResult<pb::ListCalendarsResponse> {
        require_staff(caller)?;
        let limit = desk_kit::paging::page_size(request.page_size, 50, 200);
        let after = desk_kit::paging::decode_cursor::<Uuid>(&request.page_token);
        let calendars = self
            .store
            .list_calendars(&caller.tenant, after, limit)
            .await?;
        let next = if calendars.len() as u64 == limit {
            calendars
                .last()
                .map(|c| desk_kit::paging::encode_cursor(&c.id))
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(pb::ListCalendarsResponse {
            calendars: calendars
                .iter()
                .map(|c| convert::calendar_to_pb(&self.region, c))
                .collect(),
            next_page_token: next,
        })
    }

    /// Validates an update of a calendar and folds the open clocks with it (nothing written).
    async fn plan_calendar(
        &self,
        caller: &Caller,
        calendar: Option<&pb::Calendar>,
    ) -> ApiResult<(Calendar, Recomputed)> {
        require_manager(caller)?;
        let id = self.local_id(
            calendar.map(|c| c.id.as_str()).unwrap_or_default(),
            "calendar",
        )?;
        let (name, validated) = self.validated_calendar(calendar)?;
        let conn = self.store.db().connection();
        let mut stored = self
            .store
            .calendar(conn, &caller.tenant, id)
            .await?
            .ok_or(ApiFailure::NotFound("calendar"))?;
        stored.name = name;
        stored.spec = validated.spec();
        stored.updated_at = self.now();
        let recomputed = self
            .recompute(&caller.tenant, |calendars, _| {
                calendars.insert(id, validated);
            })
            .await?;
        Ok((stored, recomputed))
    }

    pub async fn preview_calendar_update(
        &self,
        caller: &Caller,
        request: pb::PreviewCalendarUpdateRequest,
    ) -> ApiResult<pb::PreviewCalendarUpdateResponse> {
        let (_, recomputed) = self
            .plan_calendar(caller, request.calendar.as_ref())
            .await?;
        Ok(pb::PreviewCalendarUpdateResponse {
            recomputation: Some(recomputed.summary),
        })
    }

    pub async fn update_calendar(
        &self,
        caller: &Caller,
        request: pb::UpdateCalendarRequest,
    ) -> ApiResult<pb::UpdateCalendarResponse> {
        let (mut calendar, recomputed) = self
            .plan_calendar(caller, request.calendar.as_ref())
            .await?;
        if calendar.version != request.expected_version {
            return Err(ApiFailure::Stale {
                what: "calendar",
                expected: request.expected_version,
            });
        }
        calendar.version += 1;
        let txn = self.store.begin().await?;
        if !self
            .store
            .update_calendar(&*txn, &calendar, request.expected_version)
            .await?
        {
            return Err(ApiFailure::Stale {
                what: "calendar",
                expected: request.expected_version,
            });
        }
        self.apply(&txn, recomputed.after).await?;
        self.store.commit(txn).await?;
        Ok(pb::UpdateCalendarResponse {
            calendar: Some(convert::calendar_to_pb(&self.region, &calendar)),
            recomputation: Some(recomputed.summary),
        })
    }

    pub async fn import_holidays(
        &self,
        caller: &Caller,
        request: pb::ImportHolidaysRequest,
    ) -> ApiResult<pb::ImportHolidaysResponse> {
        require_manager(caller)?;
        let id = self.local_id(&request.calendar_id, "calendar")?;
        let mut violations = Vec::new();
        let holidays = match holidays_from_ics(&request.ics, request.first_year..=request.last_year)
        {
            Ok(holidays) => holidays,
            Err(desk_business_time::IcsError::YearsOutOfRange { .. }) => {
                violations.push(Violation::new(
                    "first_year",
                    "the years must be a range within 1970–2200",
                ));
                Vec::new()
            }
            Err(error) => {
                violations.push(Violation::new("ics", error.to_string()));
                Vec::new()
            }
        };
        invalid_if_any(violations)?;
        let conn = self.store.db().connection();
        let stored = self
            .store
            .calendar(conn, &caller.tenant, id)
            .await?
            .ok_or(ApiFailure::NotFound("calendar"))?;
        let mut spec = stored.spec.clone();
        if request.replace {
            let years = request.first_year..=request.last_year;
            spec.holidays.retain(|h| !years.contains(&h.date.year()));
        }
        let imported = i32::try_from(holidays.len()).unwrap_or(i32::MAX);
        for holiday in holidays {
            if !spec
                .holidays
                .iter()
                .any(|h| h.date == holiday.date && h.name == holiday.name)
            {
                spec.holidays.push(holiday);
            }
        }
        spec.holidays.sort_by_key(|h| h.date);
        let mut as_pb = convert::calendar_to_pb(&self.region, &Calendar { spec, ..stored });
        as_pb.version = request.expected_version;
        let updated = self
            .update_calendar(
                caller,
                pb::UpdateCalendarRequest {
                    calendar: Some(as_pb),
                    expected_version: request.expected_version,
                },
            )
            .await?;
        Ok(pb::ImportHolidaysResponse {
            calendar: updated.calendar,
            imported,
            recomputation: updated.recomputation,
        })
    }

    // ---- policies ----

    fn validated_policy(
        &self,
        policy: Option<&pb::Policy>,
    ) -> ApiResult<crate::domain::PolicyRules> {
        let Some(policy) = policy else {
            return Err(ApiFailure::Invalid(vec![Violation::new(
                "policy", "required",
            )]));
        };
        let mut violations = Vec::new();
        let rules = convert::policy_rules_from_pb(policy, &self.region, "policy", &mut violations);
        invalid_if_any(violations)?;
        rules.ok_or_else(|| ApiFailure::Invalid(vec![Violation::new("policy", "invalid")]))
    }

    /// A calendar a policy names must exist.
    async fn check_policy_calendar(
        &self,
        tenant: &str,
        rules: &crate::domain::PolicyRules,
    ) -> ApiResult<()> {
        if let Some(calendar) = rules.calendar_id
            && self
                .store
                .calendar(self.store.db().connection(), tenant, calendar)
                .await?
                .is_none()
        {
            return Err(ApiFailure::Invalid(vec![Violation::new(
                "policy.calendar_id",
                "no such calendar",
            )]));
        }
        Ok(())
    }

    pub async fn create_policy(
        &self,
        caller: &Caller,
        request: pb::CreatePolicyRequest,
    ) -> ApiResult<pb::Policy> {
        require_manager(caller)?;
        let rules = self.validated_policy(request.policy.as_ref())?;
        self.check_policy_calendar(&caller.tenant, &rules).await?;
        let now = self.now();
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
            return self.policy_pb(caller, earlier).await;
        }
        let policy = Policy {
            id: ids::new_uuid(),
            tenant: caller.tenant.clone(),
            rules,
            version: 1,
            created_at: now,
            updated_at: now,
        };
        let txn = self.store.begin().await?;
        if let Some(create) = &idempotent
            && IDEMPOTENCY_KEYS
                .record(&txn, create, policy.id, now)
                .await?
                == Recorded::TakenConcurrently
        {
            drop(txn);
            let earlier = IDEMPOTENCY_KEYS
                .earlier_result(self.store.db().connection(), create)
                .await?
                .ok_or(ApiFailure::NotFound("policy"))?;
            return self.policy_pb(caller, earlier).await;
        }
        self.store.insert_policy(&*txn, &policy).await?;
        self.store.commit(txn).await?;
        Ok(convert::policy_to_pb(&self.region, &policy))
    }

    async fn policy_pb(&self, caller: &Caller, id: Uuid) -> ApiResult<pb::Policy> {
        let policy = self
            .store
            .policy(self.store.db().connection(), &caller.tenant, id)
            .await?
            .ok_or(ApiFailure::NotFound("policy"))?;
        Ok(convert::policy_to_pb(&self.region, &policy))
    }

    pub async fn get_policy(&self, caller: &Caller, id: &str) -> ApiResult<pb::Policy> {
        require_staff(caller).map_err(|_| ApiFailure::NotFound("policy"))?;
        let id = self.local_id(id, "policy")?;
        self.policy_pb(caller, id).await
    }

    pub async fn list_policies(
        &self,
        caller: &Caller,
        request: pb::ListPoliciesRequest,
    ) -> ApiResult<pb::ListPoliciesResponse> {
        require_staff(caller)?;
        let limit = desk_kit::paging::page_size(request.page_size, 50, 200);
        let after = desk_kit::paging::decode_cursor::<Uuid>(&request.page_token);
        let policies = self
            .store
            .list_policies(&caller.tenant, after, limit)
            .await?;
        let next = if policies.len() as u64 == limit {
            policies
                .last()
                .map(|p| desk_kit::paging::encode_cursor(&p.id))
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(pb::ListPoliciesResponse {
            policies: policies
                .iter()
                .map(|p| convert::policy_to_pb(&self.region, p))
                .collect(),
            next_page_token: next,
        })
    }

    async fn plan_policy(
        &self,
        caller: &Caller,
        policy: Option<&pb::Policy>,
    ) -> ApiResult<(Policy, Recomputed)> {
        require_manager(caller)?;
        let id = self.local_id(policy.map(|p| p.id.as_str()).unwrap_or_default(), "policy")?;
        let rules = self.validated_policy(policy)?;
        self.check_policy_calendar(&caller.tenant, &rules).await?;
        let mut stored = self
            .store
            .policy(self.store.db().connection(), &caller.tenant, id)
            .await?
            .ok_or(ApiFailure::NotFound("policy"))?;
        stored.rules = rules;
        stored.updated_at = self.now();
        let replacement = stored.clone();
        let recomputed = self
            .recompute(&caller.tenant, move |_, policies| {
                policies.insert(id, replacement);
            })
            .await?;
        Ok((stored, recomputed))
    }

    pub async fn preview_policy_update(
        &self,
        caller: &Caller,
        request: pb::PreviewPolicyUpdateRequest,
    ) -> ApiResult<pb::PreviewPolicyUpdateResponse> {
        let (_, recomputed) = self.plan_policy(caller, request.policy.as_ref()).await?;
        Ok(pb::PreviewPolicyUpdateResponse {
            recomputation: Some(recomputed.summary),
        })
    }

    pub async fn update_policy(
        &self,
        caller: &Caller,
        request: pb::UpdatePolicyRequest,
    ) -> ApiResult<pb::UpdatePolicyResponse> {
        let (mut policy, recomputed) = self.plan_policy(caller, request.policy.as_ref()).await?;
        if policy.version != request.expected_version {
            return Err(ApiFailure::Stale {
                what: "policy",
                expected: request.expected_version,
            });
        }
        policy.version += 1;
        let txn = self.store.begin().await?;
        if !self
            .store
            .update_policy(&*txn, &policy, request.expected_version)
            .await?
        {
            return Err(ApiFailure::Stale {
                what: "policy",
                expected: request.expected_version,
            });
        }
        self.apply(&txn, recomputed.after).await?;
        self.store.commit(txn).await?;
        Ok(pb::UpdatePolicyResponse {
            policy: Some(convert::policy_to_pb(&self.region, &policy)),
            recomputation: Some(recomputed.summary),
        })
    }

    // ---- recomputation ----

    /// Folds every open ticket's clocks as they are and as they would be after `change`
    /// (applied to the tenant's calendars and policies), and says which due times move.
    async fn recompute(
        &self,
        tenant: &str,
        change: impl FnOnce(&mut HashMap<Uuid, BusinessCalendar>, &mut HashMap<Uuid, Policy>),
    ) -> ApiResult<Recomputed> {
        let conn = self.store.db().connection();
        let now = self.now();
        let calendars = self.store.business_calendars(conn, tenant).await?;
        let teams = self.store.team_calendars(conn, tenant).await?;
        let policies: HashMap<Uuid, Policy> = self
            .store
            .policies(conn, tenant)
            .await?
            .into_iter()
            .map(|p| (p.id, p))
            .collect();
        let (mut calendars_after, mut policies_after) = (calendars.clone(), policies.clone());
        change(&mut calendars_after, &mut policies_after);
        let before_book = CalendarBook {
            calendars: &calendars,
            team_calendars: &teams,
        };
        let after_book = CalendarBook {
            calendars: &calendars_after,
            team_calendars: &teams,
        };
        let mut summary = pb::Recomputation::default();
        let mut after = Vec::new();
        for record in self.store.open_tickets(conn, tenant).await? {
            let old = fold_all(&record, &policies, &before_book, now);
            let new = fold_all(&record, &policies_after, &after_book, now);
            for (view, _) in &new.clocks {
                summary.clocks_recomputed += 1;
                let previous = old
                    .clocks
                    .iter()
                    .find(|(o, _)| o.policy_id == view.policy_id && o.metric == view.metric)
                    .map(|(o, _)| o);
                let (old_due, old_state) = match previous {
                    Some(o) => (o.due, o.state),
                    None => (None, view.state),
                };
                if old_due != view.due || old_state != view.state {
                    summary.shifts.push(pb::ClockShift {
                        ticket_id: record.ticket_id.clone(),
                        policy_id: ids::format_id(&self.region, view.policy_id),
                        metric: convert::metric_pb(view.metric) as i32,
                        old_due_time: old_due.and_then(convert::timestamp),
                        new_due_time: view.due.and_then(convert::timestamp),
                        shift_seconds: match (old_due, view.due) {
                            (Some(o), Some(n)) => (n - o).num_seconds(),
                            _ => 0,
                        },
                        old_state: convert::state_pb(old_state) as i32,
                        new_state: convert::state_pb(view.state) as i32,
                    });
                }
            }
            after.push((record, new));
        }
        Ok(Recomputed { summary, after })
    }

    /// Writes recomputed clocks with their timers and new transitions' events.
    async fn apply(
        &self,
        txn: &desk_kit::db::WriteTxn,
        after: Vec<(TicketRecord, Folded)>,
    ) -> ApiResult<()> {
        let now = self.now();
        let mut events = Vec::new();
        for (record, folded) in &after {
            events.extend(self.engine.save(&**txn, record, folded, now).await?);
        }
        self.store.publisher().stage_many(txn, events, now).await?;
        Ok(())
    }

    // ---- clocks ----

    async fn folded(&self, record: &TicketRecord, now: DateTime<Utc>) -> ApiResult<Folded> {
        let conn = self.store.db().connection();
        let mut policies = HashMap::new();
        for id in record.policy_ids() {
            if let Some(policy) = self.store.policy(conn, &record.tenant, id).await? {
                policies.insert(id, policy);
            }
        }
        Ok(self
            .engine
            .fold_ticket(conn, record, &policies, now)
            .await?)
    }

    pub async fn get_ticket_sla(
        &self,
        caller: &Caller,
        ticket_id: &str,
    ) -> ApiResult<pb::GetTicketSlaResponse> {
        let record = self
            .store
            .ticket(self.store.db().connection(), &caller.tenant, ticket_id)
            .await?
            .ok_or(ApiFailure::NotFound("ticket"))?;
        // Staff see every ticket's clocks; a requester only their own (others answer as unknown).
        let own = record
            .history
            .latest()
            .is_some_and(|t| t.requester_id == caller.subject);
        if require_staff(caller).is_err() && !own {
            return Err(ApiFailure::NotFound("ticket"));
        }
        let folded = self.folded(&record, self.now()).await?;
        Ok(pb::GetTicketSlaResponse {
            ticket_id: record.ticket_id.clone(),
            clocks: folded
                .clocks
                .iter()
                .map(|(view, name)| convert::clock_to_pb(&self.region, view, name, true))
                .collect(),
        })
    }

    pub async fn list_breaching_soon(
        &self,
        caller: &Caller,
        request: pb::ListBreachingSoonRequest,
    ) -> ApiResult<pb::ListBreachingSoonResponse> {
        require_staff(caller)?;
        let mut violations = Vec::new();
        if request.within_minutes < 0 || request.within_minutes > 60 * 24 * 31 {
            violations.push(Violation::new(
                "within_minutes",
                "0 (the default, 4 hours) up to 31 days",
            ));
        }
        if request.page_size < 0 {
            violations.push(Violation::new("page_size", "not negative"));
        }
        invalid_if_any(violations)?;
        let within = if request.within_minutes == 0 {
            240
        } else {
            request.within_minutes
        };
        let teams = if request.team_ids.is_empty() {
            caller.groups.clone()
        } else {
            request.team_ids.clone()
        };
        let now = self.now();
        let limit = desk_kit::paging::page_size(request.page_size, 50, 200);
        let rows = self
            .store
            .clocks_due_before(
                &caller.tenant,
                &teams,
                now + TimeDelta::minutes(i64::from(within)),
                limit,
            )
            .await?;
        let mut clocks = Vec::new();
        let mut folds: HashMap<String, Folded> = HashMap::new();
        for row in rows {
            if !folds.contains_key(&row.ticket_id) {
                let Some(record) = self
                    .store
                    .ticket(self.store.db().connection(), &caller.tenant, &row.ticket_id)
                    .await?
                else {
                    continue;
                };
                folds.insert(row.ticket_id.clone(), self.folded(&record, now).await?);
            }
            let Some(folded) = folds.get(&row.ticket_id) else {
                continue;
            };
            if let Some((view, name)) = folded
                .clocks
                .iter()
                .find(|(v, _)| v.policy_id == row.policy_id && v.metric == row.metric)
                && view.stopped_at.is_none()
            {
                clocks.push(pb::BreachingSoon {
                    ticket_id: row.ticket_id.clone(),
                    team_id: view.team_id.clone().unwrap_or_default(),
                    clock: Some(convert::clock_to_pb(&self.region, view, name, false)),
                });
            }
        }
        Ok(pb::ListBreachingSoonResponse { clocks })
    }

    // ---- KPIs ----

    pub async fn get_kpis(
        &self,
        caller: &Caller,
        request: pb::GetKpisRequest,
    ) -> ApiResult<pb::GetKpisResponse> {
        if !caller.has_any(&[Role::Admin, Role::Manager, Role::Agent]) {
            return Err(ApiFailure::Forbidden("agents, managers and admins only"));
        }
        let mut violations = Vec::new();
        let dimension = match pb::KpiDimension::try_from(request.group_by) {
            Ok(pb::KpiDimension::Team) => Some(kpi::Dimension::Team),
            Ok(pb::KpiDimension::Region) => Some(kpi::Dimension::Region),
            Ok(pb::KpiDimension::Priority) => Some(kpi::Dimension::Priority),
            Ok(pb::KpiDimension::Service) => Some(kpi::Dimension::Service),
            Ok(pb::KpiDimension::Period) => Some(kpi::Dimension::Period),
            _ => {
                violations.push(Violation::new(
                    "group_by",
                    "team, region, priority, service or period",
                ));
                None
            }
        };
        let now = self.now();
        let start = convert::time_of(request.start_time.as_ref());
        let end = match request.end_time.as_ref() {
            None => Some(now),
            Some(t) => convert::time_of(Some(t)),
        };
        if request.start_time.is_none() {
            violations.push(Violation::new("start_time", "required"));
        } else if start.is_none() {
            violations.push(Violation::new("start_time", "not a valid time"));
        }
        if end.is_none() {
            violations.push(Violation::new("end_time", "not a valid time"));
        }
        if let (Some(start), Some(end)) = (start, end)
            && start >= end
        {
            violations.push(Violation::new("end_time", "after start_time"));
        }
        invalid_if_any(violations)?;
        let (Some(dimension), Some(start), Some(end)) = (dimension, start, end) else {
            return Err(ApiFailure::Invalid(vec![Violation::new(
                "group_by", "invalid",
            )]));
        };
        let tickets = self
            .store
            .tickets_created(&caller.tenant, start, end)
            .await?;
        let clocks = self.store.all_clocks(&caller.tenant).await?;
        let regions = self.store.team_regions(&caller.tenant).await?;
        let rows = kpi::compute(
            &tickets
                .iter()
                .map(|t| (t.ticket_id.as_str(), &t.history))
                .collect::<Vec<_>>(),
            &clocks
                .iter()
                .map(|c| (c.ticket_id.as_str(), c.kind, c.state))
                .collect::<Vec<_>>(),
            &regions,
            dimension,
            end.min(now),
        );
        Ok(pb::GetKpisResponse {
            rows: rows
                .into_iter()
                .map(|r| pb::KpiRow {
                    key: r.key,
                    tickets: r.tickets,
                    sla_compliance: r.sla_compliance,
                    mean_time_to_acknowledge_seconds: r.mean_time_to_acknowledge_seconds,
                    mean_time_to_resolve_seconds: r.mean_time_to_resolve_seconds,
                    first_contact_resolution: r.first_contact_resolution,
                    backlog_age_seconds: r.backlog_age_seconds,
                    backlog: r.backlog,
                    reopen_rate: r.reopen_rate,
                    csat_average: r.csat_average,
                    csat_responses: r.csat_responses,
                })
                .collect(),
        })
    }
}
