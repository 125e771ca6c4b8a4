//! The catalog's pure types and rules: no I/O, no clock reads.
//!
//! # Layout
//! - [`form`]: form schemas (typed fields, bounds, patterns, defaults, conditional visibility),
//!   their check when saved and the validation of answers.
//! - [`approval`]: approval policies and one step's state machine (any / all / quorum,
//!   delegation, timers).
//! - [`fulfillment`]: fulfillment plans (sequential stages of parallel tasks) and tasks.
//! - [`request`]: the request's lifecycle and the facts each step produces.
//! - this module: localized texts, offerings and their versions, visibility, who may do what.

pub mod approval;
pub mod form;
pub mod fulfillment;
pub mod request;
mod validate;

use chrono::{DateTime, Utc};
use desk_kit::auth::Role;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use validate::Violations;

use self::{approval::ApprovalPolicy, form::FormSchema, fulfillment::FulfillmentPlan};

/// A text in one language.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Localized {
    pub locale: String,
    pub text: String,
}

impl Localized {
    pub fn new(locale: &str, text: &str) -> Self {
        Self {
            locale: locale.to_owned(),
            text: text.to_owned(),
        }
    }

    /// Each locale once, well-formed, each text of at most `max` characters; `required` wants one.
    pub fn check(
        texts: &[Localized],
        path: &str,
        max: usize,
        required: bool,
        found: &mut Violations,
    ) {
        if required && texts.iter().all(|t| t.text.trim().is_empty()) {
            found.push(path, "required in at least one language");
            return;
        }
        let mut seen = std::collections::HashSet::new();
        for (i, text) in texts.iter().enumerate() {
            let locale_ok = !text.locale.is_empty()
                && text.locale.len() <= 35
                && text
                    .locale
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-');
            if !locale_ok {
                found.push(format!("{path}[{i}].locale"), "a BCP 47 language tag");
            } else if !seen.insert(text.locale.to_ascii_lowercase()) {
                found.push(
                    format!("{path}[{i}].locale"),
                    "this language is given twice",
                );
            }
            found.text(&format!("{path}[{i}].text"), &text.text, max);
        }
    }

    /// The text in `locale` (or its language), else the first.
    pub fn pick<'a>(texts: &'a [Localized], locale: &str) -> &'a str {
        let language = locale.split('-').next().unwrap_or(locale);
        texts
            .iter()
            .find(|t| t.locale.eq_ignore_ascii_case(locale))
            .or_else(|| {
                texts.iter().find(|t| {
                    t.locale
                        .split('-')
                        .next()
                        .is_some_and(|l| l.eq_ignore_ascii_case(language))
                })
            })
            .or(texts.first())
            .map(|t| t.text.as_str())
            .unwrap_or("")
    }
}

/// Who may see and request an offering.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Visibility {
    pub roles: Vec<String>,
    pub groups: Vec<String>,
}

impl Visibility {
    /// Everyone of the tenant when both lists are empty; else a role or a group must match.
    /// Catalog admins see everything (they maintain it).
    pub fn admits(&self, roles: &[Role], groups: &[String]) -> bool {
        if roles
            .iter()
            .any(|r| matches!(r, Role::CatalogAdmin | Role::Admin))
        {
            return true;
        }
        if self.roles.is_empty() && self.groups.is_empty() {
            return true;
        }
        roles
            .iter()
            .any(|r| self.roles.iter().any(|v| v == r.as_str()))
            || groups.iter().any(|g| self.groups.contains(g))
    }

    fn check(&self, path: &str, found: &mut Violations) {
        for (i, role) in self.roles.iter().enumerate() {
            if Role::parse(role).is_none() {
                found.push(format!("{path}.roles[{i}]"), "not a role");
            }
        }
        for (i, group) in self.groups.iter().enumerate() {
            found.line(&format!("{path}.group_ids[{i}]"), group, 200, true);
        }
    }
}

/// What a catalog admin writes; each save is a new version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OfferingDefinition {
    pub name: Vec<Localized>,
    pub description: Vec<Localized>,
    pub service: String,
    pub category: String,
    pub form: FormSchema,
    pub approval: ApprovalPolicy,
    pub fulfillment: FulfillmentPlan,
    pub target_fulfillment_minutes: u32,
    pub visibility: Visibility,
    pub knowledge_articles: Vec<String>,
    pub active: bool,
}

impl OfferingDefinition {
    /// Every violation of the definition, under `definition.`; `found` may hold the parse's.
    pub fn check(&self, mut found: Violations) -> Result<(), Violations> {
        Localized::check(&self.name, "definition.name", 200, true, &mut found);
        Localized::check(
            &self.description,
            "definition.description",
            8000,
            false,
            &mut found,
        );
        found.line("definition.service", &self.service, 200, false);
        found.line("definition.category", &self.category, 200, false);
        self.form.check("definition.form", &mut found);
        self.approval
            .check(&self.form, "definition.approval", &mut found);
        self.fulfillment.check("definition.fulfillment", &mut found);
        self.visibility.check("definition.visibility", &mut found);
        if self.knowledge_articles.len() > 20 {
            found.push("definition.knowledge_article_ids", "at most 20 articles");
        }
        for (i, article) in self.knowledge_articles.iter().enumerate() {
            found.line(
                &format!("definition.knowledge_article_ids[{i}]"),
                article,
                200,
                true,
            );
        }
        found.into_result()
    }
}

/// One version of an offering (the current one, or one a request was made against).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Offering {
    pub id: Uuid,
    pub tenant: String,
    pub version: i64,
    pub definition: OfferingDefinition,
    pub popularity: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Someone's approvals decided by another while they are away.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delegation {
    pub from: String,
    pub to: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl Delegation {
    pub fn check(&self, mut found: Violations) -> Result<(), Violations> {
        found.line("to_subject", &self.to, 200, true);
        if self.to == self.from {
            found.push("to_subject", "delegate to someone else");
        }
        if self.end <= self.start {
            found.push("end_time", "after the start");
        }
        found.into_result()
    }
}

/// What a caller may do; requests and tasks are decided per object besides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    ManageCatalog,
    /// Work fulfillment tasks: agents of the task's team, integrators (robots), admins.
    WorkTasks,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct AccessDenied(pub &'static str);

pub fn authorize(roles: &[Role], permission: Permission) -> Result<(), AccessDenied> {
    let allowed = match permission {
        Permission::ManageCatalog => roles
            .iter()
            .any(|r| matches!(r, Role::CatalogAdmin | Role::Admin)),
        Permission::WorkTasks => roles.iter().any(|r| {
            matches!(
                r,
                Role::Agent | Role::Manager | Role::Integrator | Role::Admin | Role::Service
            )
        }),
    };
    if allowed {
        Ok(())
    } else {
        Err(AccessDenied(match permission {
            Permission::ManageCatalog => "managing the catalog needs the catalog_admin role",
            Permission::WorkTasks => "fulfillment tasks are worked by agents and integrators",
        }))
    }
}

/// Whether the caller may read a request: its requester, its approvers (and their delegates,
/// decided by the caller), and the desk's staff.
pub fn staff(roles: &[Role]) -> bool {
    roles.iter().any(|r| {
        matches!(
            r,
            Role::Agent
                | Role::Manager
                | Role::Admin
                | Role::CatalogAdmin
                | Role::Integrator
                | Role::Service
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visibility_admits_by_role_or_group_and_admins_always() {
        let open = Visibility::default();
        assert!(open.admits(&[Role::Requester], &[]));
        let staff_only = Visibility {
            roles: vec!["agent".into()],
            groups: vec!["hr".into()],
        };
        assert!(!staff_only.admits(&[Role::Requester], &[]));
        assert!(staff_only.admits(&[Role::Agent], &[]));
        assert!(staff_only.admits(&[Role::Requester], &["hr".into()]));
        assert!(staff_only.admits(&[Role::CatalogAdmin], &[]));
    }

    #[test]
    fn a_definition_reports_every_violation_at_once() {
        let definition = OfferingDefinition {
            name: vec![],
            description: vec![],
            service: String::new(),
            category: "hardware".into(),
            form: FormSchema::default(),
            approval: ApprovalPolicy::default(),
            fulfillment: FulfillmentPlan {
                stages: vec![vec![]],
            },
            target_fulfillment_minutes: 0,
            visibility: Visibility {
                roles: vec!["wizard".into()],
                groups: vec![],
            },
            knowledge_articles: vec![],
            active: true,
        };
        let found = definition.check(Violations::new()).expect_err("refused");
        let fields: Vec<&str> = found.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            fields,
            [
                "definition.name",
                "definition.fulfillment.stages[0].tasks",
                "definition.visibility.roles[0]",
            ]
        );
    }

    #[test]
    fn a_localized_text_is_picked_by_locale_then_language_then_first() {
        let texts = vec![
            Localized::new("en", "Laptop"),
            Localized::new("sv-SE", "Bärbar dator"),
        ];
        assert_eq!(Localized::pick(&texts, "sv-SE"), "Bärbar dator");
        assert_eq!(Localized::pick(&texts, "sv"), "Bärbar dator");
        assert_eq!(Localized::pick(&texts, "de"), "Laptop");
        assert_eq!(Localized::pick(&[], "de"), "");
    }

    #[test]
    fn only_catalog_admins_manage_and_requesters_work_no_tasks() {
        assert!(authorize(&[Role::CatalogAdmin], Permission::ManageCatalog).is_ok());
        assert!(authorize(&[Role::Agent], Permission::ManageCatalog).is_err());
        assert!(authorize(&[Role::Integrator], Permission::WorkTasks).is_ok());
        assert!(authorize(&[Role::Requester], Permission::WorkTasks).is_err());
    }
}
