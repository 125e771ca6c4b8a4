//! CI classes: a single-inheritance hierarchy of kinds of configuration item, each with a typed
//! attribute schema and the rules that identify its CIs.
//!
//! ```text
//! configuration_item (abstract)
//! ├── business_service      service_owner, sla_tier
//! ├── application_service   url
//! ├── application           version, vendor
//! ├── server                fqdn, serial_number, os, cpu_count, ram_gb
//! │   └── virtual_machine   hypervisor, cloud_resource_id   (+ everything a server has)
//! ├── database              engine, port, fqdn
//! ├── network_device        serial_number, device_type, management_ip
//! └── cloud_resource        provider, cloud_resource_id (required), resource_type
//! ```
//!
//! A tenant sees the built-in classes plus its own ([`ClassCatalog::with_tenant_classes`]). A
//! class inherits its ancestors' attributes; it may redefine one only to narrow it (a shorter
//! string, a smaller range, fewer enum values, a reference to a subclass), so a value valid for
//! a subclass is always valid for its parents and a query by a parent class reads every
//! descendant consistently.
//!
//! Core fields (`name`, `environment`, `status`…) live on the CI itself, not in its attributes;
//! their names are reserved so an attribute path and a core field can never be confused, and so
//! identification rules can name `name` and `environment` directly.
//!
//! Attributes travel as JSON (`serde_json::Value`) in the API and the store:
//! [`AttrValue::from_json`] reads one against its [`AttributeType`], [`AttrValue::to_json`] writes
//! it back, and [`validate_attributes`] checks a whole map, collecting every violation.

//!
//! # Layout
//!
//! - this module: the catalog — classes, their hierarchy and the checks a tenant class must pass;
//! - `attribute`: attribute types and values, and the validation of a CI's attributes;
//! - `builtin`: the classes every tenant has.

mod attribute;
mod builtin;

use std::collections::{BTreeMap, BTreeSet};

use super::identification::{DependentKey, IdentificationRule};
use super::validate::{self, IDENTIFIER_RULE, LABEL_MAX, Violations};

use attribute::WithArticle;
pub(crate) use attribute::check_attributes;
pub use attribute::{
    AttrValue, AttrValueError, AttributeDef, AttributeType, ReferenceCheck, ValidatedAttributes,
    ValidationMode, attributes_to_json, references, validate_attributes,
};
use builtin::builtin_classes;

/// The abstract root every class descends from.
pub const ROOT_CLASS: &str = "configuration_item";
/// The class whose CIs impact analysis reports as the business services reached.
pub const BUSINESS_SERVICE: &str = "business_service";

/// Core field names no attribute may take: the CI's identity and every core field a writer
/// sets. Those share the provenance map's key space with attributes (see
/// [`super::ci::Ci::provenance`]), and identification rules name `name` and `environment`
/// bare. Bookkeeping fields (`version`, `created_at`…) are never written by a client, so an
/// attribute may share their name — `application` has a `version`.
pub const CORE_FIELDS: &[&str] = &[
    "id",
    "tenant_id",
    "class",
    "name",
    "status",
    "environment",
    "owner_group",
    "criticality",
    "location",
    "region",
];

/// Longest string a class may allow, in characters: attributes are short facts, not documents.
pub const STRING_MAX_LEN_LIMIT: usize = 10_000;
/// Most classes one tenant may add.
pub const MAX_TENANT_CLASSES: usize = 200;
/// Most attributes one class may declare.
pub const MAX_CLASS_ATTRIBUTES: usize = 100;
/// Most values an enum attribute may allow.
pub const MAX_ENUM_VALUES: usize = 200;
/// Most identification rules one class may declare.
pub const MAX_IDENTIFICATION_RULES: usize = 10;

/// A kind of configuration item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CiClass {
    /// snake_case id: `business_service`. Stored on every CI, so it never changes.
    pub name: String,
    /// For people: "Business service".
    pub label: String,
    /// `None` only for [`ROOT_CLASS`].
    pub parent: Option<String>,
    /// The class's own attributes; see [`ClassCatalog::effective_attributes`] for the inherited
    /// ones too.
    pub attributes: Vec<AttributeDef>,
    /// Ordered identification rules. Empty means "those of the nearest ancestor that has some",
    /// so a tenant class without rules is identified like its parent.
    pub identification: Vec<IdentificationRule>,
    /// Abstract classes organise the hierarchy; no CI is ever of an abstract class.
    pub abstract_class: bool,
}

/// Why a tenant's class definitions were refused. The texts are user-facing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClassError {
    #[error("a tenant may define at most {MAX_TENANT_CLASSES} classes, not {count}")]
    TooManyClasses { count: usize },

    #[error("class name \"{class}\" {IDENTIFIER_RULE}")]
    InvalidName { class: String },

    #[error("class \"{class}\" already exists")]
    DuplicateName { class: String },

    #[error("class \"{class}\" needs a parent class; only {ROOT_CLASS} has none")]
    MissingParent { class: String },

    #[error("class \"{class}\" names parent \"{parent}\", which does not exist")]
    UnknownParent { class: String, parent: String },

    #[error("classes inherit from each other in a cycle: {}", .classes.join(" → "))]
    Cycle { classes: Vec<String> },

    #[error("the label of class \"{class}\" {problem}")]
    InvalidLabel { class: String, problem: String },

    #[error(
        "class \"{class}\" declares {count} attributes; at most {MAX_CLASS_ATTRIBUTES} are allowed"
    )]
    TooManyAttributes { class: String, count: usize },

    #[error("attribute \"{attribute}\" of class \"{class}\" {IDENTIFIER_RULE}")]
    InvalidAttributeName { class: String, attribute: String },

    #[error("attribute \"{attribute}\" of class \"{class}\" uses the name of a core CI field")]
    ReservedAttributeName { class: String, attribute: String },

    #[error("class \"{class}\" declares attribute \"{attribute}\" twice")]
    DuplicateAttribute { class: String, attribute: String },

    #[error(
        "attribute \"{attribute}\" of class \"{class}\" redefines the one inherited from \
         \"{inherited_from}\" as {new_type}; it may only narrow {inherited_type}"
    )]
    ShadowedAttribute {
        class: String,
        attribute: String,
        inherited_from: String,
        /// The inherited type, described ("integer between 1 and 1024").
        inherited_type: String,
        /// The redefinition's type, described.
        new_type: String,
    },

    #[error("attribute \"{attribute}\" of class \"{class}\" has an invalid type: {problem}")]
    InvalidAttributeType {
        class: String,
        attribute: String,
        problem: String,
    },

    #[error("the default of attribute \"{attribute}\" of class \"{class}\" {problem}")]
    InvalidDefault {
        class: String,
        attribute: String,
        problem: String,
    },

    #[error("identification rule \"{rule}\" of class \"{class}\" is invalid: {problem}")]
    InvalidIdentificationRule {
        class: String,
        rule: String,
        problem: String,
    },
}

impl ClassError {
    /// The class the error is about, when it is about one.
    pub fn class(&self) -> Option<&str> {
        match self {
            Self::TooManyClasses { .. } | Self::Cycle { .. } => None,
            Self::InvalidName { class }
            | Self::DuplicateName { class }
            | Self::MissingParent { class }
            | Self::UnknownParent { class, .. }
            | Self::InvalidLabel { class, .. }
            | Self::TooManyAttributes { class, .. }
            | Self::InvalidAttributeName { class, .. }
            | Self::ReservedAttributeName { class, .. }
            | Self::DuplicateAttribute { class, .. }
            | Self::ShadowedAttribute { class, .. }
            | Self::InvalidAttributeType { class, .. }
            | Self::InvalidDefault { class, .. }
            | Self::InvalidIdentificationRule { class, .. } => Some(class),
        }
    }
}

/// The classes one tenant sees: the built-in ones plus its own. Always a single tree rooted at
/// [`ROOT_CLASS`] — the constructors guarantee it — so walks up the hierarchy terminate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassCatalog {
    classes: BTreeMap<String, CiClass>,
}

impl ClassCatalog {
    /// The classes every tenant has.
    pub fn builtin() -> Self {
        let classes = builtin_classes()
            .into_iter()
            .map(|class| (class.name.clone(), class))
            .collect();
        Self { classes }
    }

    /// The built-in classes extended with a tenant's own. Each new class needs a snake_case
    /// name not used before, an existing parent (built-in or another new class, in any order),
    /// attributes that do not clash with core fields or inherited attributes (narrowing is
    /// allowed), valid defaults and valid identification rules; inheritance must not loop.
    /// The first problem found is returned, in the order the classes were given.
    pub fn with_tenant_classes(extra: Vec<CiClass>) -> Result<Self, ClassError> {
        if extra.len() > MAX_TENANT_CLASSES {
            return Err(ClassError::TooManyClasses { count: extra.len() });
        }
        let mut catalog = Self::builtin();
        let names: Vec<String> = extra.iter().map(|class| class.name.clone()).collect();
        for class in extra {
            if !validate::is_identifier(&class.name) {
                return Err(ClassError::InvalidName { class: class.name });
            }
            if catalog.classes.contains_key(&class.name) {
                return Err(ClassError::DuplicateName { class: class.name });
            }
            if class.parent.is_none() {
                return Err(ClassError::MissingParent { class: class.name });
            }
            catalog.classes.insert(class.name.clone(), class);
        }
        for name in &names {
            let Some(parent) = catalog.get(name).and_then(|class| class.parent.clone()) else {
                continue;
            };
            if !catalog.classes.contains_key(&parent) {
                return Err(ClassError::UnknownParent {
                    class: name.clone(),
                    parent,
                });
            }
        }
        for name in &names {
            catalog.check_acyclic(name)?;
        }
        for name in &names {
            if let Some(class) = catalog.get(name) {
                catalog.check_class(class)?;
            }
        }
        Ok(catalog)
    }

    /// The tenant's own classes, without the built-in ones.
    pub fn tenant_classes(&self) -> impl Iterator<Item = &CiClass> {
        let builtin = Self::builtin();
        self.classes
            .values()
            .filter(move |class| !builtin.contains(&class.name))
    }

    /// This catalog with one more tenant class (`CreateClass`), checked as
    /// [`ClassCatalog::with_tenant_classes`] checks them all again.
    pub fn with_class_added(&self, class: CiClass) -> Result<Self, ClassError> {
        let mut classes: Vec<CiClass> = self.tenant_classes().cloned().collect();
        classes.push(class);
        Self::with_tenant_classes(classes)
    }

    /// Follows parents from `name` until the root; a class met twice means a cycle.
    fn check_acyclic(&self, name: &str) -> Result<(), ClassError> {
        let mut path = vec![name.to_owned()];
        let mut current = self.get(name).and_then(|class| class.parent.as_deref());
        while let Some(parent) = current {
            if let Some(start) = path.iter().position(|seen| seen == parent) {
                let mut classes = path.split_off(start);
                classes.push(parent.to_owned());
                return Err(ClassError::Cycle { classes });
            }
            path.push(parent.to_owned());
            current = self.get(parent).and_then(|class| class.parent.as_deref());
        }
        Ok(())
    }

    /// Checks one class of an acyclic catalog: label, attributes, defaults, rules.
    fn check_class(&self, class: &CiClass) -> Result<(), ClassError> {
        let name = &class.name;
        let mut label_problems = Violations::new();
        validate::single_line("label", &class.label, LABEL_MAX, &mut label_problems);
        if let Some(problem) = label_problems.into_vec().into_iter().next() {
            return Err(ClassError::InvalidLabel {
                class: name.clone(),
                problem: problem.description,
            });
        }
        if class.attributes.len() > MAX_CLASS_ATTRIBUTES {
            return Err(ClassError::TooManyAttributes {
                class: name.clone(),
                count: class.attributes.len(),
            });
        }
        let mut seen = BTreeSet::new();
        for attribute in &class.attributes {
            self.check_attribute(class, attribute)?;
            if !seen.insert(attribute.name.as_str()) {
                return Err(ClassError::DuplicateAttribute {
                    class: name.clone(),
                    attribute: attribute.name.clone(),
                });
            }
        }
        self.check_identification(class)
    }

    fn check_attribute(&self, class: &CiClass, attribute: &AttributeDef) -> Result<(), ClassError> {
        let class_name = || class.name.clone();
        let attribute_name = || attribute.name.clone();
        if !validate::is_identifier(&attribute.name) {
            return Err(ClassError::InvalidAttributeName {
                class: class_name(),
                attribute: attribute_name(),
            });
        }
        if CORE_FIELDS.contains(&attribute.name.as_str()) {
            return Err(ClassError::ReservedAttributeName {
                class: class_name(),
                attribute: attribute_name(),
            });
        }
        let mut problem = attribute.attr_type.definition_problem();
        if let AttributeType::Reference { class: target } = &attribute.attr_type
            && !self.contains(target)
        {
            problem = Some(format!(
                "it refers to class \"{target}\", which does not exist"
            ));
        }
        if let Some(problem) = problem {
            return Err(ClassError::InvalidAttributeType {
                class: class_name(),
                attribute: attribute_name(),
                problem,
            });
        }
        if let Some(parent) = &class.parent
            && let Some((inherited_from, inherited)) =
                self.attribute_with_owner(parent, &attribute.name)
            && !attribute.attr_type.narrows(&inherited.attr_type, self)
        {
            return Err(ClassError::ShadowedAttribute {
                class: class_name(),
                attribute: attribute_name(),
                inherited_from: inherited_from.to_owned(),
                inherited_type: inherited.attr_type.to_string(),
                new_type: attribute.attr_type.to_string(),
            });
        }
        if let Some(default) = &attribute.default {
            let problem = match AttrValue::from_json(&attribute.attr_type, &default.to_json()) {
                Ok(parsed) if &parsed == default => None,
                Ok(_) => Some(format!(
                    "is not {}",
                    WithArticle(attribute.attr_type.kind())
                )),
                Err(error) => Some(error.to_string()),
            };
            if let Some(problem) = problem {
                return Err(ClassError::InvalidDefault {
                    class: class_name(),
                    attribute: attribute_name(),
                    problem,
                });
            }
        }
        Ok(())
    }

    fn check_identification(&self, class: &CiClass) -> Result<(), ClassError> {
        let invalid = |rule: &IdentificationRule, problem: String| {
            Err(ClassError::InvalidIdentificationRule {
                class: class.name.clone(),
                rule: rule.name.clone(),
                problem,
            })
        };
        if class.identification.len() > MAX_IDENTIFICATION_RULES {
            let first = &class.identification[0];
            return invalid(
                first,
                format!("a class may have at most {MAX_IDENTIFICATION_RULES} identification rules"),
            );
        }
        let mut rule_names = BTreeSet::new();
        for rule in &class.identification {
            if !validate::is_identifier(&rule.name) {
                return invalid(rule, format!("the rule name {IDENTIFIER_RULE}"));
            }
            if !rule_names.insert(rule.name.as_str()) {
                return invalid(
                    rule,
                    "another rule of the class has the same name".to_owned(),
                );
            }
            if rule.attributes.is_empty() {
                return invalid(rule, "it names no attributes".to_owned());
            }
            let mut seen = BTreeSet::new();
            for attribute in &rule.attributes {
                if !seen.insert(attribute.as_str()) {
                    return invalid(rule, format!("it names \"{attribute}\" twice"));
                }
                let known = IdentificationRule::CORE_KEYS.contains(&attribute.as_str())
                    || self.effective_attribute(&class.name, attribute).is_some();
                if !known {
                    return invalid(
                        rule,
                        format!(
                            "\"{attribute}\" is neither an attribute of the class nor one of: {}",
                            IdentificationRule::CORE_KEYS.join(", ")
                        ),
                    );
                }
            }
            if let Some(DependentKey { parent_class, .. }) = &rule.dependent
                && !self.contains(parent_class)
            {
                return invalid(
                    rule,
                    format!("its parent class \"{parent_class}\" does not exist"),
                );
            }
        }
        Ok(())
    }

    pub fn get(&self, name: &str) -> Option<&CiClass> {
        self.classes.get(name)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.classes.contains_key(name)
    }

    /// Every class, by name.
    pub fn classes(&self) -> impl Iterator<Item = &CiClass> {
        self.classes.values()
    }

    /// `class` and its ancestors, nearest first, ending at the root. Empty for an unknown class.
    pub fn ancestry(&self, class: &str) -> Vec<&CiClass> {
        let mut chain = Vec::new();
        let mut current = self.get(class);
        while let Some(found) = current {
            // The constructors rule out cycles; the bound keeps a walk finite regardless.
            if chain.len() > self.classes.len() {
                break;
            }
            chain.push(found);
            current = found.parent.as_deref().and_then(|parent| self.get(parent));
        }
        chain
    }

    /// Whether `class` is `ancestor` or descends from it. An unknown class is a subclass of
    /// nothing.
    pub fn is_subclass_of(&self, class: &str, ancestor: &str) -> bool {
        self.ancestry(class)
            .iter()
            .any(|found| found.name == ancestor)
    }

    /// `class` and every class descending from it, by name. Empty for an unknown class.
    pub fn subclasses(&self, class: &str) -> Vec<&str> {
        if !self.contains(class) {
            return Vec::new();
        }
        self.classes
            .keys()
            .filter(|name| self.is_subclass_of(name, class))
            .map(String::as_str)
            .collect()
    }

    /// Every attribute a CI of `class` has: inherited ones first, from the root down, then the
    /// class's own; a redefinition replaces the inherited attribute in place. Empty for an
    /// unknown class.
    pub fn effective_attributes(&self, class: &str) -> Vec<&AttributeDef> {
        let mut attributes: Vec<&AttributeDef> = Vec::new();
        for ancestor in self.ancestry(class).into_iter().rev() {
            for attribute in &ancestor.attributes {
                match attributes
                    .iter()
                    .position(|existing| existing.name == attribute.name)
                {
                    Some(index) => attributes[index] = attribute,
                    None => attributes.push(attribute),
                }
            }
        }
        attributes
    }

    /// The definition of `attribute` as a CI of `class` sees it (the nearest one).
    pub fn effective_attribute(&self, class: &str, attribute: &str) -> Option<&AttributeDef> {
        self.attribute_with_owner(class, attribute)
            .map(|(_, definition)| definition)
    }

    /// The nearest definition of `attribute` from `class` upwards, with the class declaring it.
    fn attribute_with_owner(&self, class: &str, attribute: &str) -> Option<(&str, &AttributeDef)> {
        self.ancestry(class).into_iter().find_map(|ancestor| {
            ancestor
                .attributes
                .iter()
                .find(|definition| definition.name == attribute)
                .map(|definition| (ancestor.name.as_str(), definition))
        })
    }

    /// The identification rules that apply to CIs of `class`: its own, or those of its nearest
    /// ancestor that declares some, with the name of the class declaring them. The root has
    /// rules, so every known class gets some.
    pub fn identification_rules(&self, class: &str) -> Option<(&str, &[IdentificationRule])> {
        self.ancestry(class)
            .into_iter()
            .find(|ancestor| !ancestor.identification.is_empty())
            .map(|ancestor| (ancestor.name.as_str(), ancestor.identification.as_slice()))
    }
}

#[cfg(test)]
mod tests;
