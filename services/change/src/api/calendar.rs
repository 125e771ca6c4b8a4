//! The change calendar and what surrounds it: templates, freezes, maintenance windows, the
//! schedule, conflict checks, the next free slot, the tenant's policy, metrics; and the risk
//! and conflict computations the lifecycle steps share.

use chrono::Duration;
use desk_kit::auth::Caller;
use desk_proto::change::v1 as pb;
use uuid::Uuid;

use super::{ApiFailure, ApiResult, ChangeApi, convert};
use crate::domain::{
    Change, ChangeState, Conflict, ConflictKind, Direction, FreezeWindow, MaintenanceWindow,
    Permission, Proposal, Risk, RiskInputs, Template, TimeRange, Violations, authorize,
    conflicts::Depth, find_conflicts, metrics, next_free_slot, risk,
};

/// How far ahead a free slot is searched for.
const SLOT_HORIZON: Duration = Duration::days(90);

impl ChangeApi {
    pub async fn create_template(
        &self,
        caller: &Caller,
        request: pb::CreateTemplateRequest,
    ) -> ApiResult<Template> {
        authorize(&caller.roles, Permission::Manage)?;
        let given = request.template.unwrap_or_default();
        let template = Template {
            id: desk_kit::ids::new_uuid(),
            name: given.name.trim().to_owned(),
            summary: given.summary.trim().to_owned(),
            implementation_plan: given.implementation_plan,
            backout_plan: given.backout_plan,
            test_plan: given.test_plan,
            duration_minutes: given.duration_minutes,
            created_by: caller.subject.clone(),
            created_at: self.now(),
        };
        template.check()?;
        self.store
            .insert_template(&caller.tenant, &template)
            .await?;
        Ok(template)
    }

    pub async fn templates(&self, caller: &Caller) -> ApiResult<Vec<Template>> {
        authorize(&caller.roles, Permission::Read)?;
        Ok(self.store.templates(&caller.tenant).await?)
    }

    pub async fn create_freeze(
        &self,
        caller: &Caller,
        request: pb::CreateFreezeWindowRequest,
    ) -> ApiResult<FreezeWindow> {
        authorize(&caller.roles, Permission::Manage)?;
        let given = request.window.unwrap_or_default();
        let mut found = Violations::new();
        found.line("window.name", &given.name, 200, true);
        found.text("window.reason", &given.reason, 4000);
        let range = match (
            convert::time_of(given.start_time.as_ref()),
            convert::time_of(given.end_time.as_ref()),
        ) {
            (Some(start), Some(end)) => {
                let range = TimeRange::new(start, end);
                if range.is_none() {
                    found.push("window.end_time", "the freeze must end after it starts");
                }
                range
            }
            _ => {
                found.push("window.start_time", "a start and an end time are required");
                None
            }
        };
        let ci_ids = convert::ids_of(&self.region, "window.ci_ids", &given.ci_ids, &mut found);
        found.into_result()?;
        let Some(range) = range else {
            return Err(ApiFailure::Precondition("no range".into()));
        };
        let freeze = FreezeWindow {
            id: desk_kit::ids::new_uuid(),
            name: given.name.trim().to_owned(),
            reason: given.reason.trim().to_owned(),
            range,
            ci_ids,
        };
        self.store
            .insert_freeze(&caller.tenant, &freeze, self.now())
            .await?;
        Ok(freeze)
    }

    pub async fn create_maintenance(
        &self,
        caller: &Caller,
        request: pb::CreateMaintenanceWindowRequest,
    ) -> ApiResult<MaintenanceWindow> {
        authorize(&caller.roles, Permission::Manage)?;
        let given = request.window.unwrap_or_default();
        let mut found = Violations::new();
        found.line("window.name", &given.name, 200, true);
        let ci_ids = convert::ids_of(&self.region, "window.ci_ids", &given.ci_ids, &mut found);
        let window = MaintenanceWindow::new(
            desk_kit::ids::new_uuid(),
            given.name.trim().to_owned(),
            ci_ids,
            given.weekdays.clone(),
            &given.start_local_time,
            given.duration_minutes,
            &given.time_zone,
        );
        let window = match window {
            Ok(window) => Some(window),
            Err(errors) => {
                for error in errors {
                    found.push(format!("window.{}", error.field()), error.to_string());
                }
                None
            }
        };
        found.into_result()?;
        let Some(window) = window else {
            return Err(ApiFailure::Precondition("no window".into()));
        };
        self.store
            .insert_maintenance(&caller.tenant, &window, self.now())
            .await?;
        Ok(window)
    }

    pub async fn schedule_between(
        &self,
        caller: &Caller,
        request: pb::ListScheduleRequest,
    ) -> ApiResult<(Vec<Change>, Vec<FreezeWindow>, Vec<MaintenanceWindow>)> {
        authorize(&caller.roles, Permission::Read)?;
        let range = self.range_of(request.start_time.as_ref(), request.end_time.as_ref())?;
        let changes = self
            .store
            .windowed(
                &caller.tenant,
                range,
                &[
                    ChangeState::Scheduled,
                    ChangeState::Implementing,
                    ChangeState::Review,
                    ChangeState::Closed,
                ],
            )
            .await?;
        let freezes = self.store.freezes(&caller.tenant, Some(range)).await?;
        let maintenance = self.store.maintenance_windows(&caller.tenant).await?;
        Ok((changes, freezes, maintenance))
    }

    fn range_of(
        &self,
        start: Option<&prost_types::Timestamp>,
        end: Option<&prost_types::Timestamp>,
    ) -> ApiResult<TimeRange> {
        let mut found = Violations::new();
        let range = match (convert::time_of(start), convert::time_of(end)) {
            (Some(start), Some(end)) => TimeRange::new(start, end),
            _ => None,
        };
        match range {
            Some(range) if range.length() <= Duration::days(400) => Ok(range),
            _ => {
                found.push(
                    "end_time",
                    "a start and a later end, at most 400 days apart",
                );
                Err(found.into())
            }
        }
    }

    pub async fn policy(&self, caller: &Caller) -> ApiResult<pb::ChangePolicy> {
        authorize(&caller.roles, Permission::Read)?;
        let (policy, version) = self
            .store
            .policy(self.store.db().connection(), &caller.tenant)
            .await?;
        Ok(convert::policy_pb(&policy, version))
    }

    pub async fn set_policy(
        &self,
        caller: &Caller,
        request: pb::SetChangePolicyRequest,
    ) -> ApiResult<pb::ChangePolicy> {
        authorize(&caller.roles, Permission::Manage)?;
        let given = request.policy.unwrap_or_default();
        let mut found = Violations::new();
        let policy = convert::policy_of(&given, &mut found);
        if let Err(violations) = policy.check() {
            for (field, description) in violations {
                found.push(field, description);
            }
        }
        found.into_result()?;
        let txn = self.store.begin().await?;
        let (_, current) = self.store.policy(&*txn, &caller.tenant).await?;
        if given.version != current {
            return Err(ApiFailure::Stale {
                expected: given.version,
                current,
            });
        }
        if !self
            .store
            .set_policy(&txn, &caller.tenant, &policy, current)
            .await?
        {
            return Err(ApiFailure::Stale {
                expected: given.version,
                current: current + 1,
            });
        }
        self.store.commit(txn).await?;
        Ok(convert::policy_pb(&policy, current + 1))
    }

    pub async fn check_conflicts(
        &self,
        caller: &Caller,
        request: pb::CheckConflictsRequest,
    ) -> ApiResult<Vec<Conflict>> {
        authorize(&caller.roles, Permission::Read)?;
        let now = self.now();
        let mut found = Violations::new();
        let mut cis = convert::ids_of(
            &self.region,
            "affected_ci_ids",
            &request.affected_ci_ids,
            &mut found,
        );
        let mut window = request
            .window
            .as_ref()
            .and_then(|w| convert::window_of("window", w, now, &mut found));
        let mut implementer =
            Some(request.implementer_id.trim().to_owned()).filter(|i| !i.is_empty());
        let mut change_id = None;
        if !request.change_id.is_empty() {
            let change = self.load(caller, &request.change_id).await?;
            change_id = Some(change.id);
            if cis.is_empty() {
                cis = change.affected_cis;
            }
            if window.is_none() && request.window.is_none() {
                window = change.window;
            }
            implementer = implementer.or(change.implementer);
        }
        for (index, ci) in cis.iter().enumerate() {
            if !self.graphs.read(&caller.tenant, |p| p.graph.knows(*ci)) {
                found.push(
                    format!("affected_ci_ids[{index}]"),
                    "no such CI in the CMDB",
                );
            }
        }
        if window.is_none() && request.window.is_none() {
            found.push("window", "required: the window to check");
        }
        found.into_result()?;
        let Some(window) = window else {
            return Err(ApiFailure::Precondition("no window".into()));
        };
        let depth = self
            .depth(&caller.tenant, request.max_depth, request.whole_closure)
            .await?;
        self.conflicts(
            &caller.tenant,
            change_id,
            &cis,
            window.range,
            implementer.as_deref(),
            depth,
        )
        .await
    }

    /// How far conflicts are searched: the request's depth, the whole closure, or the policy's.
    pub(super) async fn depth(
        &self,
        tenant: &str,
        requested: u32,
        whole_closure: bool,
    ) -> ApiResult<Depth> {
        if whole_closure {
            return Ok(None);
        }
        if requested > 0 {
            return Ok(Some(requested));
        }
        let (policy, _) = self
            .store
            .policy(self.store.db().connection(), tenant)
            .await?;
        Ok((policy.conflict_depth > 0).then_some(policy.conflict_depth))
    }

    /// The conflicts of `cis` over `range`: the booked changes, freezes and maintenance windows
    /// from the database, the closure walked in memory.
    pub(super) async fn conflicts(
        &self,
        tenant: &str,
        change: Option<Uuid>,
        cis: &[Uuid],
        range: TimeRange,
        implementer: Option<&str>,
        depth: Depth,
    ) -> ApiResult<Vec<Conflict>> {
        let booked = self.store.booked(tenant, range).await?;
        let freezes = self.store.freezes(tenant, Some(range)).await?;
        let maintenance = self.store.maintenance_windows(tenant).await?;
        let proposal = Proposal {
            change,
            cis,
            range,
            implementer,
        };
        Ok(self.graphs.read(tenant, |p| {
            find_conflicts(&p.graph, &proposal, &booked, &freezes, &maintenance, depth)
        }))
    }

    pub async fn suggest_slot(
        &self,
        caller: &Caller,
        request: pb::SuggestSlotRequest,
    ) -> ApiResult<Option<TimeRange>> {
        authorize(&caller.roles, Permission::Read)?;
        let now = self.now();
        let mut found = Violations::new();
        let cis = convert::ids_of(
            &self.region,
            "affected_ci_ids",
            &request.affected_ci_ids,
            &mut found,
        );
        if cis.is_empty() {
            found.push("affected_ci_ids", "at least one CI");
        }
        if request.duration_minutes == 0 || request.duration_minutes > 14 * 24 * 60 {
            found.push("duration_minutes", "1 minute to 14 days");
        }
        if let Err(error) = crate::domain::schedule::parse_time_zone(&request.time_zone) {
            found.push("time_zone", error.to_string());
        }
        found.into_result()?;
        let not_before = convert::time_of(request.not_before.as_ref()).map_or(now, |t| t.max(now));
        let horizon = not_before + SLOT_HORIZON;
        let depth = self
            .depth(&caller.tenant, request.max_depth, request.whole_closure)
            .await?;
        let search = TimeRange {
            start: not_before,
            end: horizon,
        };
        let booked = self.store.booked(&caller.tenant, search).await?;
        let freezes = self.store.freezes(&caller.tenant, Some(search)).await?;
        let maintenance = self.store.maintenance_windows(&caller.tenant).await?;
        let implementer = Some(request.implementer_id.trim()).filter(|i| !i.is_empty());
        let length = Duration::minutes(i64::from(request.duration_minutes));
        Ok(self.graphs.read(&caller.tenant, |p| {
            next_free_slot(
                &p.graph,
                &cis,
                implementer,
                length,
                not_before,
                horizon,
                &booked,
                &freezes,
                &maintenance,
                depth,
            )
        }))
    }

    pub async fn metrics(
        &self,
        caller: &Caller,
        request: pb::GetChangeMetricsRequest,
    ) -> ApiResult<Vec<metrics::Figures>> {
        authorize(&caller.roles, Permission::Read)?;
        let range = self.range_of(request.start_time.as_ref(), request.end_time.as_ref())?;
        let period = match pb::MetricsPeriod::try_from(request.period) {
            Ok(pb::MetricsPeriod::Day) => metrics::Period::Day,
            Ok(pb::MetricsPeriod::Week) => metrics::Period::Week,
            Ok(pb::MetricsPeriod::Month | pb::MetricsPeriod::Unspecified) | Err(_) => {
                metrics::Period::Month
            }
        };
        let facts = self.store.facts(&caller.tenant, range).await?;
        Ok(metrics::compute(&facts, period))
    }

    /// The change's risk now: the business services its CIs' failure reaches (the whole
    /// closure), its CIs' criticality, its type, its window against freezes and maintenance
    /// windows, its plans, and how earlier changes on the same CIs ended.
    pub(super) async fn assess_risk(&self, tenant: &str, change: &Change) -> ApiResult<Risk> {
        let (window_conflicts, freezes) = match &change.window {
            Some(window) => {
                let freezes = self.store.freezes(tenant, Some(window.range)).await?;
                let maintenance = self.store.maintenance_windows(tenant).await?;
                let proposal = Proposal {
                    change: Some(change.id),
                    cis: &change.affected_cis,
                    range: window.range,
                    implementer: None,
                };
                let found = self.graphs.read(tenant, |p| {
                    find_conflicts(&p.graph, &proposal, &[], &freezes, &maintenance, Some(0))
                });
                (found, freezes)
            }
            None => (Vec::new(), Vec::new()),
        };
        let past = self
            .store
            .past_outcomes(tenant, &change.affected_cis)
            .await?;
        let inputs = self.graphs.read(tenant, |p| {
            let graph = &p.graph;
            let starts: Vec<u32> = change
                .affected_cis
                .iter()
                .filter_map(|ci| graph.position(*ci))
                .collect();
            let walk = graph.walk(&starts, Direction::Upstream, None, |_| false);
            let business_services = walk
                .reached
                .iter()
                .map(|r| graph.node(r.node))
                .filter(|node| node.business_service)
                .map(|node| (node.name.clone(), node.criticality))
                .collect();
            let name_of = |ci: Option<Uuid>| {
                ci.and_then(|ci| graph.ci(ci))
                    .map(|n| n.name.clone())
                    .unwrap_or_default()
            };
            RiskInputs {
                change_type: change.change_type,
                business_services,
                affected: change
                    .affected_cis
                    .iter()
                    .filter_map(|ci| graph.ci(*ci))
                    .map(|node| (node.name.clone(), node.criticality))
                    .collect(),
                freezes: window_conflicts
                    .iter()
                    .filter(|c| c.kind == ConflictKind::Freeze)
                    .filter_map(|c| freezes.iter().find(|f| Some(f.id) == c.window))
                    .map(|f| format!("{:?}", f.name))
                    .collect(),
                outside_maintenance: window_conflicts
                    .iter()
                    .filter(|c| c.kind == ConflictKind::OutsideMaintenanceWindow)
                    .map(|c| name_of(c.ci))
                    .collect(),
                has_backout_plan: !change.backout_plan.trim().is_empty(),
                has_test_plan: !change.test_plan.trim().is_empty(),
                past,
            }
        });
        Ok(risk::assess(&inputs))
    }
}
