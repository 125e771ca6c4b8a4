//! A configuration item as the rules see it: its value types, its lifecycle and how a write
//! changes it, attribute by attribute, with provenance.
//!
//! ```text
//! from          may move to
//! planned       in_use, retired
//! in_use        maintenance, retired
//! maintenance   in_use, retired
//! retired       nothing: final
//! ```
//!
//! Nothing is deleted through the API: a CI that is gone is *retired* and kept, with its history
//! and relationships, so past incidents and changes still point at something. Retired is final;
//! a server that comes back is a new CI.
//!
//! Every field a writer sets carries [`Provenance`] — which source set it (`api` for people and
//! integrations, or a discovery source's name), who, and when — so reconciliation can decide
//! whether an incoming value may overwrite it (see [`super::identification::SourcePrecedence`]).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use desk_kit::auth::Caller;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::class::AttrValue;
use super::history::Changes;
use super::relationship::CiFacts;
use super::string_enum::string_enum;

/// The source of values written through the API by people and integrations. It ranks above
/// every discovery source unless a tenant configures otherwise.
pub const API_SOURCE: &str = "api";

string_enum! {
    /// Where a CI is in its life; the moves between them are in the module table.
    pub enum CiStatus {
        /// Ordered or being built; not yet delivering anything.
        Planned => "planned",
        InUse => "in_use",
        /// Temporarily out of service on purpose (patching, repair).
        Maintenance => "maintenance",
        /// Gone; kept for history. Final.
        Retired => "retired",
    }
}

impl CiStatus {
    /// The statuses a CI in `self` may move to.
    pub const fn allowed_targets(self) -> &'static [Self] {
        use CiStatus::{InUse, Maintenance, Planned, Retired};
        match self {
            Planned => &[InUse, Retired],
            InUse => &[Maintenance, Retired],
            Maintenance => &[InUse, Retired],
            Retired => &[],
        }
    }

    /// Whether a CI may move from `self` to `to`.
    pub fn check_transition(self, to: Self) -> Result<(), CiError> {
        if self == to {
            return Err(CiError::AlreadyInStatus { status: self });
        }
        if self.allowed_targets().contains(&to) {
            return Ok(());
        }
        Err(match self {
            Self::Retired => CiError::RetiredIsFinal { to },
            from => CiError::TransitionNotAllowed { from, to },
        })
    }
}

string_enum! {
    /// The environment a CI serves.
    pub enum Environment {
        Production => "production",
        Staging => "staging",
        Test => "test",
        Development => "development",
        DisasterRecovery => "disaster_recovery",
    }
}

string_enum! {
    /// How much the business suffers when the CI fails; used to rank impact.
    pub enum Criticality {
        Critical => "critical",
        High => "high",
        Medium => "medium",
        Low => "low",
    }
}

/// Who set a field's current value, through which source, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provenance {
    /// [`API_SOURCE`] or a discovery source's name (`sccm`, `aws-config`).
    pub source: String,
    /// The `sub` of the person or integration that wrote it.
    pub actor: String,
    pub set_at: DateTime<Utc>,
}

impl Provenance {
    /// Who sets the values `caller` writes through the API at `set_at`: the [`API_SOURCE`], by
    /// the caller's subject.
    pub fn through_api(caller: &Caller, set_at: DateTime<Utc>) -> Provenance {
        Provenance {
            source: API_SOURCE.to_owned(),
            actor: caller.subject.clone(),
            set_at,
        }
    }
}

/// Why a change to a CI was refused. The texts are user-facing; all are about the CI's current
/// state (`FAILED_PRECONDITION`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CiError {
    #[error("the CI is already {status}")]
    AlreadyInStatus { status: CiStatus },

    #[error("a retired CI is kept for history and cannot move to {to}; record a new CI instead")]
    RetiredIsFinal { to: CiStatus },

    #[error(
        "a CI that is {from} cannot move to {to}; allowed: {}",
        status_list(.from.allowed_targets())
    )]
    TransitionNotAllowed { from: CiStatus, to: CiStatus },

    #[error("a retired CI cannot be changed")]
    RetiredCannotChange,
}

fn status_list(statuses: &[CiStatus]) -> String {
    statuses
        .iter()
        .map(|status| status.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// A configuration item: typed core fields, typed attributes, and per-field provenance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ci {
    pub id: Uuid,
    pub tenant_id: String,
    /// For people; identification may use it with `environment`.
    pub name: String,
    /// A class of the tenant's catalog; never changes (a CI of another kind is another CI).
    pub class: String,
    pub status: CiStatus,
    pub environment: Environment,
    /// The support group that answers for it; tickets about it route there.
    pub owner_group: Option<String>,
    pub criticality: Criticality,
    /// A site, data centre or rack, as the tenant names them.
    pub location: Option<String>,
    /// A cloud or desk region, when the CI lives in one.
    pub region: Option<String>,
    /// Typed per the class's effective attributes.
    pub attributes: BTreeMap<String, AttrValue>,
    /// Keyed by attribute name, or by core field name (`name`, `environment`, `status`…): core
    /// field names are reserved, so the two never collide. A field without an entry was set by a
    /// default and may be overwritten by any source.
    pub provenance: BTreeMap<String, Provenance>,
    /// Bumped by every change; a write names the version it read.
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What one write asks to change on a CI. `None` leaves a field alone; for optional fields
/// `Some(None)` clears it; in `attributes`, `None` clears the attribute.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CiPatch {
    pub name: Option<String>,
    pub environment: Option<Environment>,
    pub status: Option<CiStatus>,
    pub criticality: Option<Criticality>,
    pub owner_group: Option<Option<String>>,
    pub location: Option<Option<String>>,
    pub region: Option<Option<String>>,
    pub attributes: BTreeMap<String, Option<AttrValue>>,
}

impl CiPatch {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

impl Ci {
    /// What relationship rules need to know about this CI.
    pub fn facts(&self) -> CiFacts {
        CiFacts {
            id: self.id,
            class: self.class.clone(),
            status: self.status,
        }
    }

    /// Sets attribute `name` (already validated against the class) and records the change and
    /// its provenance. Setting the value it already has changes nothing, provenance included:
    /// a lower-ranked source confirming a value must not take it over. Returns whether it changed.
    pub fn set_attribute(
        &mut self,
        name: &str,
        value: AttrValue,
        provenance: Provenance,
        changes: &mut Changes,
    ) -> bool {
        let old = self.attributes.get(name);
        if old == Some(&value) {
            return false;
        }
        changes.record_opt(&attribute_field(name), old, Some(&value));
        self.attributes.insert(name.to_owned(), value);
        self.provenance.insert(name.to_owned(), provenance);
        true
    }

    /// Clears attribute `name` (not a required one: the caller validated that) and records the
    /// change. The clearing source becomes the field's provenance, so a lower-ranked source
    /// cannot bring the value back. Returns whether it changed.
    pub fn clear_attribute(
        &mut self,
        name: &str,
        provenance: Provenance,
        changes: &mut Changes,
    ) -> bool {
        let Some(old) = self.attributes.remove(name) else {
            return false;
        };
        changes.record_opt(&attribute_field(name), Some(&old), None);
        self.provenance.insert(name.to_owned(), provenance);
        true
    }

    /// Applies a validated patch: every field that really changes is recorded (core fields by
    /// name, attributes as `attributes.<name>`) and takes `provenance`; when anything changed,
    /// `version` is bumped and `updated_at` set to `provenance.set_at`. A status change must be
    /// an allowed transition, checked before anything is touched.
    pub fn apply_patch(
        &mut self,
        patch: &CiPatch,
        provenance: &Provenance,
    ) -> Result<Changes, CiError> {
        if let Some(status) = patch.status
            && status != self.status
        {
            self.status.check_transition(status)?;
        }
        let mut changes = Changes::new();
        let mut touched = BTreeSet::new();
        if let Some(name) = &patch.name
            && *name != self.name
        {
            changes.record("name", self.name.as_str(), name.as_str());
            self.name.clone_from(name);
            touched.insert("name");
        }
        if let Some(environment) = patch.environment
            && environment != self.environment
        {
            changes.record("environment", &self.environment, &environment);
            self.environment = environment;
            touched.insert("environment");
        }
        if let Some(status) = patch.status
            && status != self.status
        {
            changes.record("status", &self.status, &status);
            self.status = status;
            touched.insert("status");
        }
        if let Some(criticality) = patch.criticality
            && criticality != self.criticality
        {
            changes.record("criticality", &self.criticality, &criticality);
            self.criticality = criticality;
            touched.insert("criticality");
        }
        for (field, current, new) in [
            ("owner_group", &mut self.owner_group, &patch.owner_group),
            ("location", &mut self.location, &patch.location),
            ("region", &mut self.region, &patch.region),
        ] {
            if let Some(new) = new
                && new != current
            {
                changes.record_opt(field, current.as_deref(), new.as_deref());
                current.clone_from(new);
                touched.insert(field);
            }
        }
        for field in touched {
            self.provenance.insert(field.to_owned(), provenance.clone());
        }
        for (name, value) in &patch.attributes {
            match value {
                Some(value) => {
                    self.set_attribute(name, value.clone(), provenance.clone(), &mut changes)
                }
                None => self.clear_attribute(name, provenance.clone(), &mut changes),
            };
        }
        if !changes.is_empty() {
            self.version += 1;
            self.updated_at = provenance.set_at;
        }
        Ok(changes)
    }
}

/// The history and field-path name of an attribute: `attributes.fqdn`.
pub fn attribute_field(name: &str) -> String {
    format!("attributes.{name}")
}

/// A CI about to be created, before it has an id: what a create request or a reconciled import
/// item decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCi {
    pub class: String,
    pub name: String,
    pub environment: Environment,
    pub status: CiStatus,
    pub criticality: Criticality,
    pub owner_group: Option<String>,
    pub location: Option<String>,
    pub region: Option<String>,
    /// Validated for `class`, defaults included.
    pub attributes: BTreeMap<String, AttrValue>,
    /// Fields (attribute or core names) whose value came from a default rather than the writer:
    /// they get no provenance, so any source may set them later.
    pub defaulted: BTreeSet<String>,
}

impl NewCi {
    /// The CI as first stored: version 1, created and updated at `provenance.set_at`, with
    /// `provenance` on every field the writer gave.
    pub fn into_ci(self, id: Uuid, tenant_id: String, provenance: &Provenance) -> Ci {
        let mut fields: Vec<&str> = vec!["name", "environment", "status", "criticality"];
        for (field, value) in [
            ("owner_group", &self.owner_group),
            ("location", &self.location),
            ("region", &self.region),
        ] {
            if value.is_some() {
                fields.push(field);
            }
        }
        fields.extend(self.attributes.keys().map(String::as_str));
        let provenance_map = fields
            .into_iter()
            .filter(|field| !self.defaulted.contains(*field))
            .map(|field| (field.to_owned(), provenance.clone()))
            .collect();
        Ci {
            id,
            tenant_id,
            name: self.name,
            class: self.class,
            status: self.status,
            environment: self.environment,
            owner_group: self.owner_group,
            criticality: self.criticality,
            location: self.location,
            region: self.region,
            attributes: self.attributes,
            provenance: provenance_map,
            version: 1,
            created_at: provenance.set_at,
            updated_at: provenance.set_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use proptest::prelude::*;

    use super::*;
    use crate::domain::history::FieldChange;

    fn at(hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 3, 1, hour, 0, 0)
            .single()
            .expect("valid time")
    }

    fn by(source: &str, hour: u32) -> Provenance {
        Provenance {
            source: source.to_owned(),
            actor: "svc-discovery".to_owned(),
            set_at: at(hour),
        }
    }

    #[test]
    fn a_value_written_through_the_api_is_set_by_the_callers_subject() {
        let caller = Caller {
            subject: "ada".into(),
            tenant: "acme".into(),
            roles: vec![desk_kit::auth::Role::Admin],
            groups: Vec::new(),
            name: Some("Ada Lovelace".into()),
            email: None,
            locale: None,
        };
        assert_eq!(
            Provenance::through_api(&caller, at(8)),
            Provenance {
                source: API_SOURCE.to_owned(),
                actor: "ada".to_owned(),
                set_at: at(8),
            }
        );
    }

    fn server() -> Ci {
        NewCi {
            class: "server".into(),
            name: "web-01".into(),
            environment: Environment::Production,
            status: CiStatus::InUse,
            criticality: Criticality::Medium,
            owner_group: None,
            location: None,
            region: None,
            attributes: BTreeMap::from([("os".to_owned(), AttrValue::String("linux".into()))]),
            defaulted: BTreeSet::from(["criticality".to_owned()]),
        }
        .into_ci(Uuid::from_u128(1), "acme".into(), &by(API_SOURCE, 8))
    }

    #[test]
    fn a_new_ci_starts_at_version_one_with_provenance_on_what_the_writer_gave() {
        let ci = server();
        assert_eq!(ci.version, 1);
        assert_eq!(ci.created_at, at(8));
        assert_eq!(ci.updated_at, at(8));
        assert_eq!(
            ci.provenance.keys().map(String::as_str).collect::<Vec<_>>(),
            ["environment", "name", "os", "status"],
            "criticality came from a default"
        );
    }

    #[test]
    fn lifecycle_moves_follow_the_table() {
        use CiStatus::{InUse, Maintenance, Planned, Retired};
        assert_eq!(Planned.check_transition(InUse), Ok(()));
        assert_eq!(InUse.check_transition(Maintenance), Ok(()));
        assert_eq!(Maintenance.check_transition(InUse), Ok(()));
        for from in [Planned, InUse, Maintenance] {
            assert_eq!(from.check_transition(Retired), Ok(()), "{from}");
        }
        assert_eq!(
            Planned
                .check_transition(Maintenance)
                .expect_err("planned to maintenance")
                .to_string(),
            "a CI that is planned cannot move to maintenance; allowed: in_use, retired"
        );
        assert_eq!(
            InUse.check_transition(Planned),
            Err(CiError::TransitionNotAllowed {
                from: InUse,
                to: Planned
            })
        );
    }

    #[test]
    fn retired_is_final() {
        for to in [CiStatus::Planned, CiStatus::InUse, CiStatus::Maintenance] {
            assert_eq!(
                CiStatus::Retired.check_transition(to),
                Err(CiError::RetiredIsFinal { to })
            );
        }
        assert_eq!(
            CiStatus::Retired.check_transition(CiStatus::Retired),
            Err(CiError::AlreadyInStatus {
                status: CiStatus::Retired
            })
        );
    }

    #[test]
    fn setting_an_attribute_records_the_change_and_who_set_it() {
        let mut ci = server();
        let mut changes = Changes::new();
        assert!(ci.set_attribute(
            "fqdn",
            AttrValue::String("web-01.example.com".into()),
            by("sccm", 9),
            &mut changes
        ));
        assert_eq!(
            changes.into_vec(),
            [FieldChange {
                field: "attributes.fqdn".into(),
                old: None,
                new: Some("web-01.example.com".into())
            }]
        );
        assert_eq!(ci.provenance["fqdn"].source, "sccm");
    }

    #[test]
    fn setting_the_same_value_keeps_the_old_provenance() {
        let mut ci = server();
        let mut changes = Changes::new();
        assert!(!ci.set_attribute(
            "os",
            AttrValue::String("linux".into()),
            by("sccm", 9),
            &mut changes
        ));
        assert!(changes.is_empty());
        assert_eq!(ci.provenance["os"].source, API_SOURCE);
    }

    #[test]
    fn clearing_an_attribute_records_who_cleared_it() {
        let mut ci = server();
        let mut changes = Changes::new();
        assert!(ci.clear_attribute("os", by("sccm", 9), &mut changes));
        assert!(!ci.clear_attribute("os", by("sccm", 9), &mut changes));
        assert_eq!(
            changes.into_vec(),
            [FieldChange {
                field: "attributes.os".into(),
                old: Some("linux".into()),
                new: None
            }]
        );
        assert!(!ci.attributes.contains_key("os"));
        assert_eq!(ci.provenance["os"].source, "sccm");
    }

    #[test]
    fn a_patch_changes_core_fields_and_attributes_and_bumps_the_version() {
        let mut ci = server();
        let patch = CiPatch {
            name: Some("web-01a".into()),
            status: Some(CiStatus::Maintenance),
            owner_group: Some(Some("team-linux".into())),
            location: Some(None),
            attributes: BTreeMap::from([
                ("cpu_count".to_owned(), Some(AttrValue::Int(4))),
                ("os".to_owned(), None),
            ]),
            ..CiPatch::default()
        };
        let changes = ci
            .apply_patch(&patch, &by(API_SOURCE, 10))
            .expect("allowed");
        assert_eq!(
            changes.field_names().collect::<Vec<_>>(),
            [
                "name",
                "status",
                "owner_group",
                "attributes.cpu_count",
                "attributes.os"
            ]
        );
        assert_eq!(ci.version, 2);
        assert_eq!(ci.updated_at, at(10));
        assert_eq!(ci.provenance["owner_group"].set_at, at(10));
        assert!(
            !ci.provenance.contains_key("location"),
            "location did not change"
        );
    }

    #[test]
    fn a_patch_that_changes_nothing_keeps_the_version() {
        let mut ci = server();
        let patch = CiPatch {
            name: Some("web-01".into()),
            status: Some(CiStatus::InUse),
            ..CiPatch::default()
        };
        assert!(
            ci.apply_patch(&patch, &by(API_SOURCE, 10))
                .expect("no-op")
                .is_empty()
        );
        assert_eq!(ci.version, 1);
        assert!(CiPatch::default().is_empty());
        assert!(!patch.is_empty());
    }

    #[test]
    fn a_patch_with_a_forbidden_status_move_changes_nothing() {
        let mut ci = server();
        let before = ci.clone();
        let patch = CiPatch {
            name: Some("renamed".into()),
            status: Some(CiStatus::Planned),
            ..CiPatch::default()
        };
        assert!(ci.apply_patch(&patch, &by(API_SOURCE, 10)).is_err());
        assert_eq!(ci, before);
    }

    proptest! {
        #[test]
        fn a_transition_is_allowed_exactly_when_the_table_lists_it(
            from in 0..CiStatus::ALL.len(), to in 0..CiStatus::ALL.len(),
        ) {
            let (from, to) = (CiStatus::ALL[from], CiStatus::ALL[to]);
            prop_assert_eq!(
                from.check_transition(to).is_ok(),
                from.allowed_targets().contains(&to)
            );
            prop_assert!(!from.allowed_targets().contains(&from));
        }
    }
}
