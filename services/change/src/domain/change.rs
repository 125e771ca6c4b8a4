//! The change record, the commands that create and edit it, and its lifecycle steps with what
//! each publishes.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use desk_kit::history::Changes;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::cab::Approval;
use super::conflicts::Conflict;
use super::graph::Edge;
use super::lifecycle::{ChangeState, ChangeType, Step, TransitionRefused, next_state};
use super::risk::Risk;
use super::schedule::Window;
use super::validate::Violations;

pub const SUMMARY_MAX: usize = 200;
pub const TEXT_MAX: usize = 20_000;
pub const LIST_MAX: usize = 100;
pub const ID_MAX: usize = 128;

desk_kit::string_enum! {
    pub enum Outcome {
        Successful => "successful",
        Failed => "failed",
    }
}

/// One attribute value of a CI update, as the CMDB takes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttributeValue {
    String(String),
    Int(i64),
    Bool(bool),
    /// YYYY-MM-DD.
    Date(String),
    /// Another CI's id.
    Reference(String),
    /// Removes the attribute.
    Clear,
}

/// A CI change applied to the CMDB when the change is implemented successfully.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CiUpdate {
    pub ci: Uuid,
    pub attributes: BTreeMap<String, AttributeValue>,
    /// A CMDB status name (`CI_STATUS_IN_USE`), when the update moves the CI.
    pub status: Option<String>,
    /// The CI's version the update wrote in the CMDB; 0 until it was applied.
    #[serde(default)]
    pub applied_version: i64,
}

/// The risk as assessed, by whom and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assessment {
    pub risk: Risk,
    pub at: DateTime<Utc>,
    pub by: String,
}

/// An incident suspected of being caused by the change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SuspectedIncident {
    pub ticket_id: String,
    pub ticket_number: String,
    pub ci: Uuid,
    pub path: Vec<Edge>,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub id: Uuid,
    pub tenant: String,
    pub number: String,
    pub change_type: ChangeType,
    pub state: ChangeState,
    pub summary: String,
    pub justification: String,
    pub implementation_plan: String,
    pub backout_plan: String,
    pub test_plan: String,
    pub affected_cis: Vec<Uuid>,
    pub window: Option<Window>,
    pub assignment_group: Option<String>,
    pub implementer: Option<String>,
    pub linked_incidents: Vec<String>,
    pub linked_problems: Vec<String>,
    pub linked_requests: Vec<String>,
    pub ci_updates: Vec<CiUpdate>,
    pub template: Option<Uuid>,
    pub assessment: Option<Assessment>,
    pub approval: Option<Approval>,
    pub conflicts: Vec<Conflict>,
    pub outcome: Option<Outcome>,
    pub implementation_notes: String,
    pub review_notes: String,
    pub implement_started_at: Option<DateTime<Utc>>,
    pub implement_ended_at: Option<DateTime<Utc>>,
    pub suspected_incidents: Vec<SuspectedIncident>,
    pub version: i64,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
}

/// A standard change's pre-approved template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Template {
    pub id: Uuid,
    pub name: String,
    pub summary: String,
    pub implementation_plan: String,
    pub backout_plan: String,
    pub test_plan: String,
    pub duration_minutes: u32,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
}

impl Template {
    pub fn check(&self) -> Result<(), Violations> {
        let mut found = Violations::new();
        found.line("template.name", &self.name, SUMMARY_MAX, true);
        found.line("template.summary", &self.summary, SUMMARY_MAX, true);
        found.text(
            "template.implementation_plan",
            &self.implementation_plan,
            TEXT_MAX,
        );
        if self.implementation_plan.trim().is_empty() {
            found.push(
                "template.implementation_plan",
                "required: a standard change is a known procedure",
            );
        }
        found.text("template.backout_plan", &self.backout_plan, TEXT_MAX);
        found.text("template.test_plan", &self.test_plan, TEXT_MAX);
        if self.duration_minutes > 14 * 24 * 60 {
            found.push("template.duration_minutes", "at most 14 days");
        }
        found.into_result()
    }
}

/// `CreateChange` after parsing: ids are parsed, the window checked.
#[derive(Debug, Clone, Default)]
pub struct NewChange {
    pub change_type: Option<ChangeType>,
    pub template: Option<Uuid>,
    pub summary: String,
    pub justification: String,
    pub implementation_plan: String,
    pub backout_plan: String,
    pub test_plan: String,
    pub affected_cis: Vec<Uuid>,
    pub window: Option<Window>,
    pub assignment_group: Option<String>,
    pub implementer: Option<String>,
    pub linked_incidents: Vec<String>,
    pub linked_problems: Vec<String>,
    pub linked_requests: Vec<String>,
    pub ci_updates: Vec<CiUpdate>,
}

/// Who creates a change, when, with which identity.
pub struct Creation<'a> {
    pub id: Uuid,
    pub tenant: &'a str,
    pub number: String,
    pub by: &'a str,
    pub now: DateTime<Utc>,
}

impl NewChange {
    /// The request alone: what is wrong with it, added to what parsing found. `known` says
    /// whether the CMDB (as projected here) has a CI.
    pub fn check(
        &self,
        mut found: Violations,
        template: Option<&Template>,
        known: impl Fn(Uuid) -> bool,
    ) -> Result<(), Violations> {
        match self.change_type {
            None => found.push("type", "required: standard, normal or emergency"),
            Some(ChangeType::Standard) if template.is_none() => found.push(
                "template_id",
                "required: a standard change comes from a template",
            ),
            _ => {}
        }
        if template.is_none() {
            found.line("summary", &self.summary, SUMMARY_MAX, true);
        } else {
            found.line("summary", &self.summary, SUMMARY_MAX, false);
        }
        for (field, value) in [
            ("justification", &self.justification),
            ("implementation_plan", &self.implementation_plan),
            ("backout_plan", &self.backout_plan),
            ("test_plan", &self.test_plan),
        ] {
            found.text(field, value, TEXT_MAX);
        }
        check_cis(&self.affected_cis, &self.ci_updates, &known, &mut found);
        for (field, value) in [
            ("assignment_group_id", &self.assignment_group),
            ("implementer_id", &self.implementer),
        ] {
            if let Some(value) = value {
                found.line(field, value, ID_MAX, false);
            }
        }
        for (field, list) in [
            ("linked_incident_ids", &self.linked_incidents),
            ("linked_problem_ids", &self.linked_problems),
            ("linked_request_ids", &self.linked_requests),
        ] {
            if list.len() > LIST_MAX {
                found.push(field, format!("at most {LIST_MAX}"));
            }
            for (index, value) in list.iter().enumerate() {
                found.line(&format!("{field}[{index}]"), value, ID_MAX, true);
            }
        }
        found.into_result()
    }

    /// The draft; a template fills in what the request leaves blank.
    pub fn create(self, creation: Creation<'_>, template: Option<&Template>) -> Change {
        let pick = |given: String, from_template: Option<&String>| {
            if given.trim().is_empty() {
                from_template.cloned().unwrap_or_default()
            } else {
                given
            }
        };
        Change {
            id: creation.id,
            tenant: creation.tenant.to_owned(),
            number: creation.number,
            change_type: self.change_type.unwrap_or(ChangeType::Normal),
            state: ChangeState::Draft,
            summary: pick(self.summary, template.map(|t| &t.summary))
                .trim()
                .to_owned(),
            justification: self.justification,
            implementation_plan: pick(
                self.implementation_plan,
                template.map(|t| &t.implementation_plan),
            ),
            backout_plan: pick(self.backout_plan, template.map(|t| &t.backout_plan)),
            test_plan: pick(self.test_plan, template.map(|t| &t.test_plan)),
            affected_cis: dedup(self.affected_cis),
            window: self.window,
            assignment_group: self.assignment_group.filter(|g| !g.trim().is_empty()),
            implementer: self.implementer.filter(|i| !i.trim().is_empty()),
            linked_incidents: self.linked_incidents,
            linked_problems: self.linked_problems,
            linked_requests: self.linked_requests,
            ci_updates: self.ci_updates,
            template: template.map(|t| t.id),
            assessment: None,
            approval: None,
            conflicts: Vec::new(),
            outcome: None,
            implementation_notes: String::new(),
            review_notes: String::new(),
            implement_started_at: None,
            implement_ended_at: None,
            suspected_incidents: Vec::new(),
            version: 1,
            created_by: creation.by.to_owned(),
            created_at: creation.now,
            updated_at: creation.now,
            closed_at: None,
        }
    }
}

fn dedup(mut ids: Vec<Uuid>) -> Vec<Uuid> {
    let mut seen = std::collections::HashSet::new();
    ids.retain(|id| seen.insert(*id));
    ids
}

fn check_cis(
    affected: &[Uuid],
    updates: &[CiUpdate],
    known: &impl Fn(Uuid) -> bool,
    found: &mut Violations,
) {
    if affected.len() > LIST_MAX {
        found.push("affected_ci_ids", format!("at most {LIST_MAX}"));
    }
    for (index, ci) in affected.iter().enumerate() {
        if !known(*ci) {
            found.push(
                format!("affected_ci_ids[{index}]"),
                "no such CI in the CMDB (a CI created just now takes a moment to arrive)",
            );
        }
    }
    for (index, update) in updates.iter().enumerate() {
        if !affected.contains(&update.ci) {
            found.push(
                format!("ci_updates[{index}].ci_id"),
                "must be one of the affected CIs",
            );
        }
        if update.attributes.is_empty() && update.status.is_none() {
            found.push(
                format!("ci_updates[{index}]"),
                "changes nothing: give attributes or a status",
            );
        }
    }
}

/// `UpdateChange` after parsing: `None` leaves a field alone.
#[derive(Debug, Clone, Default)]
pub struct ChangeEdit {
    pub expected_version: i64,
    pub summary: Option<String>,
    pub justification: Option<String>,
    pub implementation_plan: Option<String>,
    pub backout_plan: Option<String>,
    pub test_plan: Option<String>,
    pub affected_cis: Option<Vec<Uuid>>,
    pub window: Option<Window>,
    pub assignment_group: Option<String>,
    pub implementer: Option<String>,
    pub ci_updates: Option<Vec<CiUpdate>>,
}

/// Why a write to a change is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChangeError {
    #[error("invalid request: {0}")]
    Invalid(Violations),
    #[error("the change is at version {current}, not {expected}: reload it and try again")]
    Stale { expected: i64, current: i64 },
    #[error(transparent)]
    Transition(#[from] TransitionRefused),
    #[error("{0}")]
    Precondition(String),
}

impl From<Violations> for ChangeError {
    fn from(violations: Violations) -> Self {
        ChangeError::Invalid(violations)
    }
}

impl Change {
    pub fn check_version(&self, expected: i64) -> Result<(), ChangeError> {
        if expected != self.version {
            return Err(ChangeError::Stale {
                expected,
                current: self.version,
            });
        }
        Ok(())
    }

    /// Applies an edit to a draft; the changed fields, for history.
    pub fn edit(
        &mut self,
        edit: ChangeEdit,
        known: impl Fn(Uuid) -> bool,
        now: DateTime<Utc>,
    ) -> Result<Changes, ChangeError> {
        self.check_version(edit.expected_version)?;
        if self.state != ChangeState::Draft {
            return Err(ChangeError::Precondition(format!(
                "only a draft can be edited; this change is {}",
                self.state
            )));
        }
        let mut found = Violations::new();
        if let Some(summary) = &edit.summary {
            found.line("summary", summary, SUMMARY_MAX, true);
        }
        for (field, value) in [
            ("justification", &edit.justification),
            ("implementation_plan", &edit.implementation_plan),
            ("backout_plan", &edit.backout_plan),
            ("test_plan", &edit.test_plan),
        ] {
            if let Some(value) = value {
                found.text(field, value, TEXT_MAX);
            }
        }
        let affected = edit
            .affected_cis
            .clone()
            .unwrap_or_else(|| self.affected_cis.clone());
        let updates = edit
            .ci_updates
            .clone()
            .unwrap_or_else(|| self.ci_updates.clone());
        check_cis(&affected, &updates, &known, &mut found);
        found.into_result()?;

        let mut changes = Changes::new();
        let mut set_text = |field: &str, slot: &mut String, value: Option<String>| {
            if let Some(value) = value {
                changes.record(field, slot.as_str(), value.as_str());
                *slot = value;
            }
        };
        set_text(
            "summary",
            &mut self.summary,
            edit.summary.map(|s| s.trim().to_owned()),
        );
        set_text("justification", &mut self.justification, edit.justification);
        set_text(
            "implementation_plan",
            &mut self.implementation_plan,
            edit.implementation_plan,
        );
        set_text("backout_plan", &mut self.backout_plan, edit.backout_plan);
        set_text("test_plan", &mut self.test_plan, edit.test_plan);
        let affected = dedup(affected);
        if affected != self.affected_cis {
            changes.record(
                "affected_ci_ids",
                &ids_text(&self.affected_cis),
                &ids_text(&affected),
            );
            self.affected_cis = affected;
        }
        if let Some(window) = edit.window
            && Some(&window) != self.window.as_ref()
        {
            changes.record_opt(
                "planned_window",
                self.window.as_ref().map(window_text).as_deref(),
                Some(window_text(&window).as_str()),
            );
            self.window = Some(window);
        }
        for (field, slot, value) in [
            (
                "assignment_group_id",
                &mut self.assignment_group,
                edit.assignment_group,
            ),
            ("implementer_id", &mut self.implementer, edit.implementer),
        ] {
            if let Some(value) = value {
                let value = Some(value.trim().to_owned()).filter(|v| !v.is_empty());
                changes.record_opt(field, slot.as_deref(), value.as_deref());
                *slot = value;
            }
        }
        if updates != self.ci_updates {
            changes.push_text("ci_updates", self.ci_updates.len(), updates.len());
            self.ci_updates = updates;
        }
        if !changes.is_empty() {
            self.touch(now);
        }
        Ok(changes)
    }

    /// Moves the change by `step`; refused steps change nothing.
    pub fn step(&mut self, step: Step, now: DateTime<Utc>) -> Result<ChangeState, ChangeError> {
        let next = next_state(self.change_type, self.state, step)?;
        self.state = next;
        if next.is_final() {
            self.closed_at = Some(now);
        }
        self.touch(now);
        Ok(next)
    }

    /// A new version at `now`.
    pub fn touch(&mut self, now: DateTime<Utc>) {
        self.version += 1;
        self.updated_at = now;
    }
}

/// A small helper on the kit's history: how many items a list had before and after.
trait PushText {
    fn push_text(&mut self, field: &str, old: usize, new: usize);
}

impl PushText for Changes {
    fn push_text(&mut self, field: &str, old: usize, new: usize) {
        self.record(
            field,
            &format!("{old} items"),
            &format!("{new} items (replaced)"),
        );
    }
}

fn ids_text(ids: &[Uuid]) -> String {
    ids.iter()
        .map(Uuid::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn window_text(window: &Window) -> String {
    format!(
        "{} to {} ({})",
        window.range.start.to_rfc3339(),
        window.range.end.to_rfc3339(),
        window.time_zone
    )
}

/// The event a step publishes (`change.<name>`).
pub fn event_of(step: Step) -> &'static str {
    match step {
        Step::Submit { .. } => "submitted",
        Step::Assess { .. } => "assessed",
        Step::Approve => "approved",
        Step::Reject => "rejected",
        Step::Schedule => "scheduled",
        Step::Start => "implementation_started",
        Step::Succeed => "implemented",
        Step::Fail => "failed",
        Step::Close => "closed",
        Step::Cancel => "cancelled",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn at(minutes: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_900_000_000, 0).expect("a time") + Duration::minutes(minutes)
    }

    fn draft() -> Change {
        NewChange {
            change_type: Some(ChangeType::Normal),
            summary: "patch db".into(),
            affected_cis: vec![Uuid::from_u128(1), Uuid::from_u128(1)],
            ..NewChange::default()
        }
        .create(
            Creation {
                id: Uuid::from_u128(9),
                tenant: "acme",
                number: "CHG-000001".into(),
                by: "carl",
                now: at(0),
            },
            None,
        )
    }

    #[test]
    fn a_new_change_needs_a_type_a_summary_and_known_cis() {
        let new = NewChange {
            affected_cis: vec![Uuid::from_u128(5)],
            ci_updates: vec![CiUpdate {
                ci: Uuid::from_u128(6),
                attributes: BTreeMap::new(),
                status: None,
                applied_version: 0,
            }],
            ..NewChange::default()
        };
        let found = new
            .check(Violations::new(), None, |_| false)
            .expect_err("refused");
        let fields: Vec<&str> = found.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            fields,
            [
                "type",
                "summary",
                "affected_ci_ids[0]",
                "ci_updates[0].ci_id",
                "ci_updates[0]"
            ]
        );
    }

    #[test]
    fn a_standard_change_needs_its_template_and_takes_its_plans() {
        let new = NewChange {
            change_type: Some(ChangeType::Standard),
            ..NewChange::default()
        };
        assert!(new.check(Violations::new(), None, |_| true).is_err());
        let template = Template {
            id: Uuid::from_u128(3),
            name: "restart".into(),
            summary: "restart a web node".into(),
            implementation_plan: "drain, restart, undrain".into(),
            backout_plan: "undrain".into(),
            test_plan: "health check".into(),
            duration_minutes: 30,
            created_by: "carl".into(),
            created_at: at(0),
        };
        assert_eq!(
            new.check(Violations::new(), Some(&template), |_| true),
            Ok(())
        );
        let change = new.create(
            Creation {
                id: Uuid::from_u128(9),
                tenant: "acme",
                number: "CHG-000002".into(),
                by: "carl",
                now: at(0),
            },
            Some(&template),
        );
        assert_eq!(change.summary, "restart a web node");
        assert_eq!(change.backout_plan, "undrain");
        assert_eq!(change.template, Some(template.id));
    }

    #[test]
    fn only_a_draft_at_the_version_read_is_edited() {
        let mut change = draft();
        assert_eq!(change.affected_cis.len(), 1, "duplicates dropped");
        let changes = change
            .edit(
                ChangeEdit {
                    expected_version: 1,
                    summary: Some("patch the database".into()),
                    ..ChangeEdit::default()
                },
                |_| true,
                at(1),
            )
            .expect("edited");
        assert_eq!(changes.len(), 1);
        assert_eq!(change.version, 2);
        assert!(matches!(
            change.edit(
                ChangeEdit {
                    expected_version: 1,
                    ..ChangeEdit::default()
                },
                |_| true,
                at(2)
            ),
            Err(ChangeError::Stale {
                expected: 1,
                current: 2
            })
        ));
        change
            .step(Step::Submit { cab_needed: true }, at(3))
            .expect("submitted");
        assert!(matches!(
            change.edit(
                ChangeEdit {
                    expected_version: 3,
                    ..ChangeEdit::default()
                },
                |_| true,
                at(4)
            ),
            Err(ChangeError::Precondition(_))
        ));
    }

    #[test]
    fn a_refused_step_changes_nothing() {
        let mut change = draft();
        let before = change.clone();
        assert!(change.step(Step::Start, at(1)).is_err());
        assert_eq!(change, before);
        change.step(Step::Cancel, at(2)).expect("cancelled");
        assert_eq!(change.closed_at, Some(at(2)));
    }
}
