//! People: the record, its checks, and the commands on it — create (by an admin, from a token's
//! claims, or by provisioning), update, deactivate, reactivate, set the agent profile — each
//! returning the person after the change with what changed, so the caller writes exactly that.

use chrono::{DateTime, Utc};
use desk_kit::{history::Changes, ids};
use uuid::Uuid;

use super::{
    agent::AgentProfile,
    string_enum::string_enum,
    validate::{self, NAME_MAX, Violations},
};

string_enum! {
    pub enum PersonStatus {
        Active => "active",
        /// Left the tenant: kept, never deleted.
        Deactivated => "deactivated",
    }
}

/// The source of a person created from their own token (`WhoAmI`).
pub const TOKEN_SOURCE: &str = "token";
/// The source of a person an admin created or changed through the API.
pub const API_SOURCE: &str = "api";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    pub id: Uuid,
    pub tenant_id: String,
    /// The IdP's `sub`, unique in the tenant.
    pub subject: String,
    /// The IdP's own id, unique in the tenant, when provisioning manages the person.
    pub external_id: Option<String>,
    pub fields: PersonFields,
    pub manager_id: Option<Uuid>,
    pub status: PersonStatus,
    pub agent: Option<AgentProfile>,
    /// `token`, `api`, or the provisioning source that manages the person.
    pub source: String,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deactivated_at: Option<DateTime<Utc>>,
}

impl Person {
    pub fn is_active(&self) -> bool {
        self.status == PersonStatus::Active
    }
}

/// The descriptive fields of a person, checked: what admins, provisioning and tokens set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PersonFields {
    pub display_name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    /// BCP 47, canonical form.
    pub locale: Option<String>,
    /// IANA name.
    pub time_zone: Option<String>,
    pub department: Option<String>,
    pub location: Option<String>,
    pub vip: bool,
}

/// The descriptive fields as the wire gives them (empty strings for absent values).
#[derive(Debug, Clone, Copy, Default)]
pub struct PersonFieldsInput<'a> {
    pub display_name: &'a str,
    pub email: &'a str,
    pub phone: &'a str,
    pub locale: &'a str,
    pub time_zone: &'a str,
    pub department: &'a str,
    pub location: &'a str,
    pub vip: bool,
}

impl PersonFieldsInput<'_> {
    /// Checks every field, naming them under `prefix` (`people[3].`).
    pub fn check(&self, prefix: &str, violations: &mut Violations) -> Option<PersonFields> {
        let before = violations.len();
        let field = |name: &str| format!("{prefix}{name}");
        let display_name = validate::required_line(
            &field("display_name"),
            self.display_name,
            NAME_MAX,
            violations,
        );
        let fields = PersonFields {
            display_name: display_name.unwrap_or_default(),
            email: validate::email(&field("email"), self.email, violations),
            phone: validate::phone(&field("phone"), self.phone, violations),
            locale: validate::locale(&field("locale"), self.locale, violations),
            time_zone: validate::time_zone(&field("time_zone"), self.time_zone, violations),
            department: validate::optional_line(
                &field("department"),
                self.department,
                NAME_MAX,
                violations,
            ),
            location: validate::optional_line(
                &field("location"),
                self.location,
                NAME_MAX,
                violations,
            ),
            vip: self.vip,
        };
        (violations.len() == before).then_some(fields)
    }
}

/// A subject or external id, required or optional, checked.
pub fn checked_identifier(
    field: &str,
    value: &str,
    required: bool,
    violations: &mut Violations,
) -> Option<String> {
    if value.is_empty() {
        if required {
            violations.push(field, "must not be empty");
        }
        return None;
    }
    validate::identifier(field, value, violations)
}

/// A person about to be created, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPerson {
    pub subject: String,
    pub external_id: Option<String>,
    pub fields: PersonFields,
    pub manager_id: Option<Uuid>,
    pub source: String,
}

impl NewPerson {
    pub fn create(self, id: Uuid, tenant: &str, now: DateTime<Utc>) -> Person {
        Person {
            id,
            tenant_id: tenant.to_owned(),
            subject: self.subject,
            external_id: self.external_id,
            fields: self.fields,
            manager_id: self.manager_id,
            status: PersonStatus::Active,
            agent: None,
            source: self.source,
            version: 1,
            created_at: now,
            updated_at: now,
            deactivated_at: None,
        }
    }
}

/// A write that named a version the person is no longer at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("it is at version {current}, not {expected}: reload it and try again")]
pub struct Stale {
    pub expected: i64,
    pub current: i64,
}

/// `Ok` when `expected` is the current version.
pub fn check_version(expected: i64, current: i64) -> Result<(), Stale> {
    if expected == current {
        Ok(())
    } else {
        Err(Stale { expected, current })
    }
}

/// A person after a change, with what changed (never empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonChange {
    pub person: Person,
    pub changes: Changes,
}

/// Which fields an update sets; `Some(None)` clears an optional one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PersonPatch {
    pub display_name: Option<String>,
    pub email: Option<Option<String>>,
    pub phone: Option<Option<String>>,
    pub locale: Option<Option<String>>,
    pub time_zone: Option<Option<String>>,
    pub department: Option<Option<String>>,
    pub location: Option<Option<String>>,
    pub vip: Option<bool>,
    pub manager_id: Option<Option<Uuid>>,
    pub external_id: Option<Option<String>>,
    /// Provisioning only: the IdP's `sub` of a person it manages changed.
    pub subject: Option<String>,
    /// Provisioning only: the source that manages the person from now on.
    pub source: Option<String>,
}

impl PersonPatch {
    /// The patch that makes `person` carry exactly `fields` and `manager_id` (a provisioning
    /// batch is the truth for them).
    pub fn to_match(fields: &PersonFields, manager_id: Option<Uuid>) -> PersonPatch {
        PersonPatch {
            display_name: Some(fields.display_name.clone()),
            email: Some(fields.email.clone()),
            phone: Some(fields.phone.clone()),
            locale: Some(fields.locale.clone()),
            time_zone: Some(fields.time_zone.clone()),
            department: Some(fields.department.clone()),
            location: Some(fields.location.clone()),
            vip: Some(fields.vip),
            manager_id: Some(manager_id),
            external_id: None,
            subject: None,
            source: None,
        }
    }

    /// The person with the patch applied and what it changed, recorded in the order of the
    /// fields; `region` renders the manager's id. `None` when nothing changes (no write, no event).
    pub fn apply(&self, person: &Person, region: &str) -> Option<PersonChange> {
        let mut next = person.clone();
        let mut changes = Changes::new();
        let old = &person.fields;
        let new = &mut next.fields;
        if let Some(display_name) = &self.display_name {
            changes.record("display_name", &old.display_name, display_name);
            new.display_name = display_name.clone();
        }
        set_optional(&mut changes, "email", &self.email, &mut new.email);
        set_optional(&mut changes, "phone", &self.phone, &mut new.phone);
        set_optional(&mut changes, "locale", &self.locale, &mut new.locale);
        set_optional(
            &mut changes,
            "time_zone",
            &self.time_zone,
            &mut new.time_zone,
        );
        set_optional(
            &mut changes,
            "department",
            &self.department,
            &mut new.department,
        );
        set_optional(&mut changes, "location", &self.location, &mut new.location);
        if let Some(vip) = self.vip {
            changes.record("vip", &old.vip, &vip);
            new.vip = vip;
        }
        if let Some(manager_id) = self.manager_id {
            let render = |id: Option<Uuid>| id.map(|id| ids::format_id(region, id));
            changes.record_opt(
                "manager_id",
                render(person.manager_id).as_deref(),
                render(manager_id).as_deref(),
            );
            next.manager_id = manager_id;
        }
        if let Some(external_id) = &self.external_id {
            changes.record_opt(
                "external_id",
                person.external_id.as_deref(),
                external_id.as_deref(),
            );
            next.external_id = external_id.clone();
        }
        if let Some(subject) = &self.subject {
            changes.record("subject", &person.subject, subject);
            next.subject.clone_from(subject);
        }
        if let Some(source) = &self.source {
            changes.record("source", &person.source, source);
            next.source.clone_from(source);
        }
        (!changes.is_empty()).then_some(PersonChange {
            person: next,
            changes,
        })
    }
}

fn set_optional(
    changes: &mut Changes,
    field: &str,
    wanted: &Option<Option<String>>,
    current: &mut Option<String>,
) {
    if let Some(wanted) = wanted {
        changes.record_opt(field, current.as_deref(), wanted.as_deref());
        current.clone_from(wanted);
    }
}

/// Bumps the version of a changed person.
pub fn stamped(mut change: PersonChange, now: DateTime<Utc>) -> PersonChange {
    change.person.version += 1;
    change.person.updated_at = now;
    change
}

/// Why a lifecycle command does not apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PersonError {
    #[error("the person is already deactivated")]
    AlreadyDeactivated,
    #[error("the person is active")]
    AlreadyActive,
    #[error("the person is deactivated: reactivate them first")]
    Deactivated,
}

/// Deactivates `person` (who keeps everything else).
pub fn deactivate(person: &Person, now: DateTime<Utc>) -> Result<PersonChange, PersonError> {
    if !person.is_active() {
        return Err(PersonError::AlreadyDeactivated);
    }
    let mut next = person.clone();
    next.status = PersonStatus::Deactivated;
    next.deactivated_at = Some(now);
    let mut changes = Changes::new();
    changes.record("status", &person.status.as_str(), &next.status.as_str());
    Ok(stamped(
        PersonChange {
            person: next,
            changes,
        },
        now,
    ))
}

/// Reactivates a deactivated `person`.
pub fn reactivate(person: &Person, now: DateTime<Utc>) -> Result<PersonChange, PersonError> {
    if person.is_active() {
        return Err(PersonError::AlreadyActive);
    }
    let mut next = person.clone();
    next.status = PersonStatus::Active;
    next.deactivated_at = None;
    let mut changes = Changes::new();
    changes.record("status", &person.status.as_str(), &next.status.as_str());
    Ok(stamped(
        PersonChange {
            person: next,
            changes,
        },
        now,
    ))
}

/// Sets (or with `None` removes) the agent profile of an active `person`.
pub fn set_agent_profile(
    person: &Person,
    agent: Option<AgentProfile>,
    now: DateTime<Utc>,
) -> Result<Option<PersonChange>, PersonError> {
    if !person.is_active() {
        return Err(PersonError::Deactivated);
    }
    let mut changes = Changes::new();
    let old = person.agent.as_ref();
    let new = agent.as_ref();
    changes.record_opt(
        "agent.skills",
        old.map(AgentProfile::skills_text).as_deref(),
        new.map(AgentProfile::skills_text).as_deref(),
    );
    changes.record_opt(
        "agent.languages",
        old.map(AgentProfile::languages_text).as_deref(),
        new.map(AgentProfile::languages_text).as_deref(),
    );
    changes.record_opt(
        "agent.capacity",
        old.map(|a| a.capacity).as_ref(),
        new.map(|a| a.capacity).as_ref(),
    );
    // Giving or taking an empty profile is a change too: `Some("")` differs from `None`.
    if changes.is_empty() {
        return Ok(None);
    }
    let mut next = person.clone();
    next.agent = agent;
    Ok(Some(stamped(
        PersonChange {
            person: next,
            changes,
        },
        now,
    )))
}

/// What a verified token says about its subject (`name`, `email`, `locale`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenClaims {
    pub subject: String,
    pub name: Option<String>,
    pub email: Option<String>,
    pub locale: Option<String>,
}

/// A token's claims, checked: a claim whose value the directory would refuse from an admin is
/// left out (and named in `ignored`), since a person's first call must not fail over how their
/// IdP spells a claim; it is logged for the operator instead.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckedClaims {
    pub display_name: Option<String>,
    pub email: Option<String>,
    pub locale: Option<String>,
    pub ignored: Vec<String>,
}

impl TokenClaims {
    pub fn checked(&self) -> CheckedClaims {
        let mut ignored = Vec::new();
        let display_name = checked_claim("name", &self.name, &mut ignored, |v, violations| {
            validate::required_line("name", v, NAME_MAX, violations)
        });
        let email = checked_claim("email", &self.email, &mut ignored, |v, violations| {
            validate::email("email", v, violations)
        });
        let locale = checked_claim("locale", &self.locale, &mut ignored, |v, violations| {
            validate::locale("locale", v, violations)
        });
        CheckedClaims {
            display_name,
            email,
            locale,
            ignored,
        }
    }
}

/// A claim's value as `check` keeps it; a present value it refuses is named in `ignored`.
fn checked_claim(
    claim: &str,
    value: &Option<String>,
    ignored: &mut Vec<String>,
    check: impl Fn(&str, &mut Violations) -> Option<String>,
) -> Option<String> {
    let value = value.as_deref().map(str::trim).filter(|v| !v.is_empty())?;
    let kept = check(value, &mut Violations::new());
    if kept.is_none() {
        ignored.push(claim.to_owned());
    }
    kept
}

/// What `WhoAmI` does for a caller: create their person, update it from their claims, or
/// nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FromClaims {
    Create(NewPerson),
    Update(PersonChange),
    Unchanged,
}

/// Decides `WhoAmI`: the caller's person (`existing`, found by subject) is created from the
/// claims on the first call, and takes the claims that are present and differ afterwards. A
/// deactivated person is left as they are: a token outliving its person's deactivation does
/// not bring them back. Claims the token does not carry never clear a field.
pub fn from_claims(
    existing: Option<&Person>,
    claims: &TokenClaims,
    checked: &CheckedClaims,
    now: DateTime<Utc>,
    region: &str,
) -> FromClaims {
    match existing {
        None => FromClaims::Create(NewPerson {
            subject: claims.subject.clone(),
            external_id: None,
            fields: PersonFields {
                display_name: checked
                    .display_name
                    .clone()
                    .unwrap_or_else(|| claims.subject.clone()),
                email: checked.email.clone(),
                locale: checked.locale.clone(),
                ..PersonFields::default()
            },
            manager_id: None,
            source: TOKEN_SOURCE.to_owned(),
        }),
        Some(person) if !person.is_active() => FromClaims::Unchanged,
        Some(person) => {
            let patch = PersonPatch {
                display_name: checked.display_name.clone(),
                email: checked.email.clone().map(Some),
                locale: checked.locale.clone().map(Some),
                ..PersonPatch::default()
            };
            match patch.apply(person, region) {
                Some(change) => FromClaims::Update(stamped(change, now)),
                None => FromClaims::Unchanged,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::testing::{at, person};

    fn change_fields(change: &PersonChange) -> Vec<&str> {
        change.changes.field_names().collect()
    }

    #[test]
    fn every_bad_field_of_a_person_is_reported_with_its_prefix() {
        let mut violations = Violations::new();
        let input = PersonFieldsInput {
            display_name: " ",
            email: "not-an-address",
            phone: "call me",
            locale: "klingon-tlh-xx-yy",
            time_zone: "Europe/Atlantis",
            ..PersonFieldsInput::default()
        };
        assert_eq!(input.check("people[2].", &mut violations), None);
        let fields: Vec<_> = violations.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "people[2].display_name",
                "people[2].email",
                "people[2].phone",
                "people[2].locale",
                "people[2].time_zone"
            ]
        );
    }

    #[test]
    fn a_patch_records_only_what_it_changes_and_clears_with_none() {
        let mut alice = person("alice");
        alice.fields.email = Some("alice@example.com".into());
        let patch = PersonPatch {
            display_name: Some(alice.fields.display_name.clone()),
            email: Some(None),
            time_zone: Some(Some("Asia/Jakarta".into())),
            ..PersonPatch::default()
        };
        let change = patch.apply(&alice, "emea").expect("a change");
        assert_eq!(change_fields(&change), ["email", "time_zone"]);
        assert_eq!(change.person.fields.email, None);
        assert_eq!(change.person.version, alice.version, "stamped separately");
        assert_eq!(PersonPatch::default().apply(&alice, "emea"), None);
    }

    #[test]
    fn a_manager_change_is_recorded_by_regional_id() {
        let alice = person("alice");
        let manager = Uuid::from_u128(7);
        let patch = PersonPatch {
            manager_id: Some(Some(manager)),
            ..PersonPatch::default()
        };
        let change = patch.apply(&alice, "emea").expect("a change");
        let recorded = change.changes.iter().next().expect("one change");
        assert_eq!(recorded.field, "manager_id");
        assert_eq!(
            recorded.new.as_deref(),
            Some(ids::format_id("emea", manager).as_str())
        );
    }

    #[test]
    fn deactivating_keeps_the_person_and_twice_is_refused() {
        let alice = person("alice");
        let change = deactivate(&alice, at(100)).expect("deactivated");
        assert_eq!(change.person.status, PersonStatus::Deactivated);
        assert_eq!(change.person.version, alice.version + 1);
        assert_eq!(change.person.deactivated_at, Some(at(100)));
        assert_eq!(change.person.fields, alice.fields);
        assert_eq!(
            deactivate(&change.person, at(101)),
            Err(PersonError::AlreadyDeactivated)
        );
        let back = reactivate(&change.person, at(102)).expect("reactivated");
        assert!(back.person.is_active());
        assert_eq!(back.person.deactivated_at, None);
        assert_eq!(
            reactivate(&back.person, at(103)),
            Err(PersonError::AlreadyActive)
        );
    }

    #[test]
    fn the_first_call_creates_the_person_from_the_claims() {
        let claims = TokenClaims {
            subject: "rita".into(),
            name: Some("Rita Requester".into()),
            email: Some("rita@Example.com".into()),
            locale: Some("sv_SE".into()),
        };
        let checked = claims.checked();
        match from_claims(None, &claims, &checked, at(0), "emea") {
            FromClaims::Create(new) => {
                assert_eq!(new.subject, "rita");
                assert_eq!(new.fields.display_name, "Rita Requester");
                assert_eq!(new.fields.email.as_deref(), Some("rita@example.com"));
                assert_eq!(new.fields.locale.as_deref(), Some("sv-SE"));
                assert_eq!(new.source, TOKEN_SOURCE);
            }
            other => panic!("expected a create, got {other:?}"),
        }
    }

    #[test]
    fn a_token_without_a_name_names_the_person_by_subject_and_bad_claims_are_ignored() {
        let claims = TokenClaims {
            subject: "00u1xyz".into(),
            email: Some("not an address".into()),
            ..TokenClaims::default()
        };
        let checked = claims.checked();
        assert_eq!(checked.ignored, ["email"]);
        match from_claims(None, &claims, &checked, at(0), "emea") {
            FromClaims::Create(new) => {
                assert_eq!(new.fields.display_name, "00u1xyz");
                assert_eq!(new.fields.email, None);
            }
            other => panic!("expected a create, got {other:?}"),
        }
    }

    #[test]
    fn changed_claims_update_the_person_and_missing_claims_clear_nothing() {
        let mut rita = person("rita");
        rita.fields.email = Some("rita@example.com".into());
        rita.fields.locale = Some("en".into());
        let claims = TokenClaims {
            subject: "rita".into(),
            name: Some("Rita R. Requester".into()),
            email: None,
            locale: Some("en".into()),
        };
        match from_claims(Some(&rita), &claims, &claims.checked(), at(50), "emea") {
            FromClaims::Update(change) => {
                assert_eq!(change_fields(&change), ["display_name"]);
                assert_eq!(
                    change.person.fields.email.as_deref(),
                    Some("rita@example.com")
                );
                assert_eq!(change.person.version, rita.version + 1);
                assert_eq!(change.person.updated_at, at(50));
            }
            other => panic!("expected an update, got {other:?}"),
        }
        let same = TokenClaims {
            subject: "rita".into(),
            name: Some(rita.fields.display_name.clone()),
            ..TokenClaims::default()
        };
        assert_eq!(
            from_claims(Some(&rita), &same, &same.checked(), at(60), "emea"),
            FromClaims::Unchanged
        );
    }

    #[test]
    fn a_deactivated_person_is_not_changed_by_their_token() {
        let rita = deactivate(&person("rita"), at(1))
            .expect("deactivated")
            .person;
        let claims = TokenClaims {
            subject: "rita".into(),
            name: Some("Someone Else".into()),
            ..TokenClaims::default()
        };
        assert_eq!(
            from_claims(Some(&rita), &claims, &claims.checked(), at(2), "emea"),
            FromClaims::Unchanged
        );
    }

    #[test]
    fn an_agent_profile_is_a_change_of_the_person() {
        let alex = person("alex");
        let profile = AgentProfile {
            skills: vec![],
            languages: vec!["en".into()],
            capacity: 5,
        };
        let change = set_agent_profile(&alex, Some(profile.clone()), at(3))
            .expect("allowed")
            .expect("a change");
        assert_eq!(
            change_fields(&change),
            ["agent.skills", "agent.languages", "agent.capacity"]
        );
        assert_eq!(
            set_agent_profile(&change.person, Some(profile), at(4)),
            Ok(None),
            "the same profile again changes nothing"
        );
        let removed = set_agent_profile(&change.person, None, at(5))
            .expect("allowed")
            .expect("a change");
        assert_eq!(removed.person.agent, None);
    }
}
