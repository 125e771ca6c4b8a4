//! What the API asks of a CI — create, update, retire — as typed commands, and what each one
//! changes: the CI after the write, the field changes for its history, and the fact it publishes.
//!
//! A command is checked in two steps where it needs the stored CI: first what the request alone
//! can get wrong (added to what parsing the request found, so the caller sees every problem at
//! once), then, on the CI as read in the write's transaction, what its current state forbids.
//! Nothing here reads a clock: the caller passes the provenance (source, actor, time) of the write.

use std::collections::BTreeMap;

use serde_json::Value;

use super::ci::{
    API_SOURCE, Ci, CiError, CiPatch, CiStatus, Criticality, Environment, NewCi, Provenance,
};
use super::class::{AttrValue, ClassCatalog, ValidationMode, validate_attributes};
use super::history::FieldChange;
use super::validate::{self, NAME_MAX, Violations};

/// Longest retirement reason, in characters.
pub const REASON_MAX: usize = 2000;

/// What a write to a CI publishes, and how its history entry is named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CiFact {
    /// A new CI, its values from `source`.
    Created { source: String },
    /// Fields changed by `source`.
    Updated {
        source: String,
        changes: Vec<FieldChange>,
    },
    /// Retired through the API, perhaps with a reason.
    Retired { reason: Option<String> },
}

impl CiFact {
    /// The history entry's action.
    pub const fn action(&self) -> &'static str {
        match self {
            Self::Created { .. } => "created",
            Self::Updated { .. } => "updated",
            Self::Retired { .. } => "retired",
        }
    }

    /// The source the written values come from.
    pub fn source(&self) -> &str {
        match self {
            Self::Created { source } | Self::Updated { source, .. } => source,
            Self::Retired { .. } => API_SOURCE,
        }
    }
}

/// One CI as a write leaves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CiWrite {
    /// The CI after the write, at its new version.
    pub ci: Ci,
    /// The version the write was decided on, which the store must still find; `None` for a new CI.
    pub read_version: Option<i64>,
    /// What changed, field by field; empty for a new CI.
    pub changes: Vec<FieldChange>,
    pub fact: CiFact,
    /// What the history entry adds: the retirement reason, or that an import wrote it.
    pub note: Option<String>,
}

/// Why a write to a CI was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CiWriteError {
    /// The request names a version that is no longer the CI's.
    #[error("the CI is at version {current}, not {expected}: reload it and try again")]
    Stale { expected: i64, current: i64 },
    /// The request does not fit the CI (its attributes, against the CI's class).
    #[error("invalid request: {0}")]
    Invalid(Violations),
    /// The CI's current state forbids it.
    #[error(transparent)]
    Ci(#[from] CiError),
    /// The CI the write was decided on is no longer there.
    #[error("CI {ci_id} is gone")]
    Gone { ci_id: uuid::Uuid },
}

impl From<Violations> for CiWriteError {
    fn from(violations: Violations) -> Self {
        Self::Invalid(violations)
    }
}

/// A stored CI at the version a request read, or [`CiWriteError::Stale`].
pub fn check_version(ci: &Ci, expected: i64) -> Result<(), CiWriteError> {
    if ci.version == expected {
        Ok(())
    } else {
        Err(CiWriteError::Stale {
            expected,
            current: ci.version,
        })
    }
}

/// A blank optional text is "none"; anything else is kept trimmed.
pub fn non_blank(value: &str) -> Option<String> {
    let trimmed = value.trim();
    (!trimmed.is_empty()).then(|| trimmed.to_owned())
}

/// `CreateCi`: a new CI of `class`. Absent enums take the defaults a CI starts with (planned,
/// production, medium); blank optional texts are none.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CreateCi {
    pub class: String,
    pub name: String,
    pub status: Option<CiStatus>,
    pub environment: Option<Environment>,
    pub criticality: Option<Criticality>,
    pub owner_group: String,
    pub location: String,
    pub region: String,
    /// As JSON, checked against the class.
    pub attributes: BTreeMap<String, Value>,
    /// When the new CI is identified as an existing one: merge into it instead of refusing.
    pub merge_if_identified: bool,
}

impl CreateCi {
    /// The CI to create, with every problem of the request — those parsing found (`found`) and
    /// those of its fields and attributes against the class — or all of them.
    pub fn checked(
        &self,
        catalog: &ClassCatalog,
        mut found: Violations,
    ) -> Result<NewCi, Violations> {
        validate::single_line("name", &self.name, NAME_MAX, &mut found);
        let status = self.status.unwrap_or(CiStatus::Planned);
        if status == CiStatus::Retired {
            found.push("status", "a CI cannot be created retired");
        }
        for (field, value) in [
            ("owner_group_id", &self.owner_group),
            ("location", &self.location),
            ("region", &self.region),
        ] {
            if !value.is_empty() {
                validate::single_line(field, value, NAME_MAX, &mut found);
            }
        }
        let validated = match validate_attributes(
            catalog,
            &self.class,
            &self.attributes,
            ValidationMode::Create,
        ) {
            Ok(validated) => Some(validated),
            Err(more) => {
                for violation in more {
                    found.push(violation.field, violation.description);
                }
                None
            }
        };
        match validated {
            Some(validated) if found.is_empty() => Ok(NewCi {
                class: self.class.clone(),
                name: self.name.trim().to_owned(),
                environment: self.environment.unwrap_or(Environment::Production),
                status,
                criticality: self.criticality.unwrap_or(Criticality::Medium),
                owner_group: non_blank(&self.owner_group),
                location: non_blank(&self.location),
                region: non_blank(&self.region),
                attributes: validated.values,
                defaulted: validated.defaulted,
            }),
            _ => Err(found),
        }
    }

    /// The patch that merges this create into `ci`, an existing CI it was identified as: every
    /// field the request gives (defaults are not given) that differs from the CI's and that source
    /// `api` may overwrite under `precedence`, as an import item of source `api` would. `new` is
    /// what [`CreateCi::checked`] made of this command. Returns the patch and the fields that
    /// precedence kept, by their history names.
    pub fn merge_patch(
        &self,
        new: &NewCi,
        ci: &Ci,
        precedence: &super::SourcePrecedence,
    ) -> Result<(CiPatch, Vec<String>), CiError> {
        let mut patch = CiPatch::default();
        let mut kept = Vec::new();
        let mut may_change = |field: &str, path: String, differs: bool| {
            if !differs {
                return false;
            }
            if precedence.may_overwrite(&ci.class, field, API_SOURCE, ci.provenance.get(field)) {
                return true;
            }
            kept.push(path);
            false
        };
        if may_change("name", "name".to_owned(), new.name != ci.name) {
            patch.name = Some(new.name.clone());
        }
        if let Some(environment) = self.environment
            && may_change(
                "environment",
                "environment".to_owned(),
                environment != ci.environment,
            )
        {
            patch.environment = Some(environment);
        }
        if let Some(status) = self.status
            && may_change("status", "status".to_owned(), status != ci.status)
        {
            ci.status.check_transition(status)?;
            patch.status = Some(status);
        }
        if let Some(criticality) = self.criticality
            && may_change(
                "criticality",
                "criticality".to_owned(),
                criticality != ci.criticality,
            )
        {
            patch.criticality = Some(criticality);
        }
        for (field, given, current, slot) in [
            (
                "owner_group",
                &new.owner_group,
                &ci.owner_group,
                &mut patch.owner_group,
            ),
            ("location", &new.location, &ci.location, &mut patch.location),
            ("region", &new.region, &ci.region, &mut patch.region),
        ] {
            if given.is_some() && may_change(field, field.to_owned(), given != current) {
                *slot = Some(given.clone());
            }
        }
        for (name, value) in given_attributes(new) {
            if may_change(
                name,
                super::ci::attribute_field(name),
                ci.attributes.get(name) != Some(value),
            ) {
                patch.attributes.insert(name.clone(), Some(value.clone()));
            }
        }
        Ok((patch, kept))
    }
}

/// What a create does once the new CI is identified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateOutcome {
    /// It is a new CI: create it.
    Create(NewCi),
    /// It is `into`, and the caller asked to merge: `write` updates it (`None` when nothing it
    /// gives differs, or nothing source `api` may overwrite).
    Merge {
        into: Box<Ci>,
        rule: String,
        write: Option<Box<CiWrite>>,
    },
}

/// Why a create was refused once the new CI was identified. The texts are user-facing, with
/// CI ids as the API writes them supplied by the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateRefused {
    /// It is an existing CI and the caller did not ask to merge.
    Identified { ci_id: uuid::Uuid, rule: String },
    /// Its identity matches several CIs: there is no one CI to be or to merge into.
    Ambiguous {
        rule: String,
        ci_ids: Vec<uuid::Uuid>,
    },
    /// Merging would move the matched CI's status where its lifecycle forbids.
    Merge { ci_id: uuid::Uuid, error: CiError },
}

impl CreateCi {
    /// Decides the create from how `new` (what [`CreateCi::checked`] made of this command) was
    /// identified: a new or unidentifiable CI is created; one identified as an existing CI is
    /// refused, or merged into it as `provenance`'s source (`api`) when the caller asked.
    pub fn decide(
        &self,
        new: NewCi,
        identification: super::Identification,
        precedence: &super::SourcePrecedence,
        provenance: &Provenance,
    ) -> Result<CreateOutcome, CreateRefused> {
        use super::Identification;
        match identification {
            Identification::New | Identification::Unidentifiable => Ok(CreateOutcome::Create(new)),
            Identification::Ambiguous { rule, ci_ids } => {
                Err(CreateRefused::Ambiguous { rule, ci_ids })
            }
            Identification::Matched { ci, rule } if !self.merge_if_identified => {
                Err(CreateRefused::Identified { ci_id: ci.id, rule })
            }
            Identification::Matched { ci, rule } => {
                let refused = |error| CreateRefused::Merge {
                    ci_id: ci.id,
                    error,
                };
                let (patch, _kept) = self.merge_patch(&new, &ci, precedence).map_err(refused)?;
                let write = patch_ci((*ci).clone(), &patch, provenance).map_err(refused)?;
                Ok(CreateOutcome::Merge {
                    into: ci,
                    rule,
                    write: write.map(Box::new),
                })
            }
        }
    }
}

/// The attributes of a new CI its writer gave, without the class defaults.
pub fn given_attributes(new: &NewCi) -> impl Iterator<Item = (&String, &AttrValue)> {
    new.attributes
        .iter()
        .filter(|(name, _)| !new.defaulted.contains(*name))
}

impl NewCi {
    /// The write that creates this CI with `id`, its values set by `provenance`.
    pub fn create(self, id: uuid::Uuid, tenant: String, provenance: &Provenance) -> CiWrite {
        let ci = self.into_ci(id, tenant, provenance);
        CiWrite {
            ci,
            read_version: None,
            changes: Vec::new(),
            fact: CiFact::Created {
                source: provenance.source.clone(),
            },
            note: None,
        }
    }
}

/// Applies `patch` to `ci` as `provenance`'s source: the write, or `None` when nothing changes.
pub fn patch_ci(
    mut ci: Ci,
    patch: &CiPatch,
    provenance: &Provenance,
) -> Result<Option<CiWrite>, CiError> {
    let read_version = ci.version;
    let changes = ci.apply_patch(patch, provenance)?.into_vec();
    if changes.is_empty() {
        return Ok(None);
    }
    Ok(Some(CiWrite {
        ci,
        read_version: Some(read_version),
        fact: CiFact::Updated {
            source: provenance.source.clone(),
            changes: changes.clone(),
        },
        changes,
        note: None,
    }))
}

/// `UpdateCi`: the fields to change on a CI read at `expected_version`. `None` leaves a field
/// alone; a blank owner group or location clears it; in `attributes`, `null` clears one.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UpdateCi {
    pub expected_version: i64,
    pub name: Option<String>,
    pub status: Option<CiStatus>,
    pub environment: Option<Environment>,
    pub criticality: Option<Criticality>,
    pub owner_group: Option<String>,
    pub location: Option<String>,
    pub attributes: BTreeMap<String, Value>,
}

impl UpdateCi {
    /// What the request alone gets wrong, added to what parsing it found.
    pub fn check(&self, mut found: Violations) -> Result<(), Violations> {
        if self.expected_version < 1 {
            found.push(
                "expected_version",
                "required: the version of the CI you read",
            );
        }
        if let Some(name) = &self.name {
            validate::single_line("name", name, NAME_MAX, &mut found);
        }
        for (field, value) in [
            ("owner_group_id", &self.owner_group),
            ("location", &self.location),
        ] {
            if let Some(value) = value
                && !value.trim().is_empty()
            {
                validate::single_line(field, value, NAME_MAX, &mut found);
            }
        }
        if self.status == Some(CiStatus::Retired) {
            found.push("status", "retire a CI with RetireCi");
        }
        found.into_result()
    }

    /// The update applied to `ci` as stored: it must be at the version the caller read and not
    /// retired, and the attributes must fit its class. `None` when nothing changes.
    pub fn apply(
        &self,
        catalog: &ClassCatalog,
        ci: &Ci,
        provenance: &Provenance,
    ) -> Result<Option<CiWrite>, CiWriteError> {
        check_version(ci, self.expected_version)?;
        if ci.status == CiStatus::Retired {
            return Err(CiError::RetiredCannotChange.into());
        }
        let validated =
            validate_attributes(catalog, &ci.class, &self.attributes, ValidationMode::Patch)?;
        let mut attributes: BTreeMap<String, Option<AttrValue>> = validated
            .values
            .into_iter()
            .map(|(name, value)| (name, Some(value)))
            .collect();
        for cleared in validated.cleared {
            attributes.insert(cleared, None);
        }
        let patch = CiPatch {
            name: self.name.as_ref().map(|name| name.trim().to_owned()),
            environment: self.environment,
            status: self.status,
            criticality: self.criticality,
            owner_group: self.owner_group.as_deref().map(non_blank),
            location: self.location.as_deref().map(non_blank),
            region: None,
            attributes,
        };
        Ok(patch_ci(ci.clone(), &patch, provenance)?)
    }
}

/// `RetireCi`: retire a CI read at `expected_version`, perhaps saying why.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetireCi {
    pub expected_version: i64,
    pub reason: String,
}

impl RetireCi {
    /// What the request alone gets wrong, added to what parsing it found.
    pub fn check(&self, mut found: Violations) -> Result<(), Violations> {
        if self.expected_version < 1 {
            found.push(
                "expected_version",
                "required: the version of the CI you read",
            );
        }
        if self.reason.chars().count() > REASON_MAX
            || self
                .reason
                .chars()
                .any(|c| c.is_control() && c != '\n' && c != '\t' && c != '\r')
        {
            found.push(
                "reason",
                format!(
                    "at most {REASON_MAX} characters, no control characters but line breaks and tabs"
                ),
            );
        }
        found.into_result()
    }

    /// The retirement of `ci` as stored: at the version the caller read, and not retired yet
    /// (retiring twice is refused, not recorded twice).
    pub fn apply(&self, ci: Ci, provenance: &Provenance) -> Result<CiWrite, CiWriteError> {
        check_version(&ci, self.expected_version)?;
        ci.status.check_transition(CiStatus::Retired)?;
        let patch = CiPatch {
            status: Some(CiStatus::Retired),
            ..CiPatch::default()
        };
        let reason = non_blank(&self.reason);
        let read_version = ci.version;
        let mut ci = ci;
        let changes = ci.apply_patch(&patch, provenance)?.into_vec();
        Ok(CiWrite {
            ci,
            read_version: Some(read_version),
            changes,
            fact: CiFact::Retired {
                reason: reason.clone(),
            },
            note: reason,
        })
    }
}

#[cfg(test)]
mod tests;
