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

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use chrono::NaiveDate;
use serde_json::Value;

use super::identification::{DependentKey, IdentificationRule};
use super::relationship::RelationshipType;
use super::validate::{
    self, IDENTIFIER_RULE, LABEL_MAX, LineBreaks, Violations, describe_character,
    first_forbidden_control,
};

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

/// The type of an attribute, with its constraints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttributeType {
    /// Text of at most `max_len` characters; line breaks and tabs allowed, other control
    /// characters not.
    String {
        max_len: usize,
    },
    /// A whole number within the optional bounds (both inclusive).
    Int {
        min: Option<i64>,
        max: Option<i64>,
    },
    Bool,
    /// One of `values`, exactly (case-sensitive).
    Enum {
        values: Vec<String>,
    },
    /// A calendar date, ISO `YYYY-MM-DD`.
    Date,
    /// The id of a CI of `class` or one of its subclasses. Only the form of the id is checked
    /// here; that the CI exists and has a fitting class is checked by the caller, which can look
    /// it up (see [`references`]).
    Reference {
        class: String,
    },
}

impl AttributeType {
    /// The type's family, without constraints: `string`, `int`, `bool`, `enum`, `date`,
    /// `reference`.
    pub const fn kind(&self) -> &'static str {
        match self {
            Self::String { .. } => "string",
            Self::Int { .. } => "int",
            Self::Bool => "bool",
            Self::Enum { .. } => "enum",
            Self::Date => "date",
            Self::Reference { .. } => "reference",
        }
    }

    /// Whether every value of `self` is also a value of `inherited` — the condition for a
    /// subclass to redefine an inherited attribute.
    pub fn narrows(&self, inherited: &Self, catalog: &ClassCatalog) -> bool {
        match (self, inherited) {
            (Self::String { max_len }, Self::String { max_len: inherited }) => max_len <= inherited,
            (
                Self::Int { min, max },
                Self::Int {
                    min: inherited_min,
                    max: inherited_max,
                },
            ) => {
                let min_ok = match (min, inherited_min) {
                    (_, None) => true,
                    (Some(min), Some(inherited)) => min >= inherited,
                    (None, Some(_)) => false,
                };
                let max_ok = match (max, inherited_max) {
                    (_, None) => true,
                    (Some(max), Some(inherited)) => max <= inherited,
                    (None, Some(_)) => false,
                };
                min_ok && max_ok
            }
            (Self::Enum { values }, Self::Enum { values: inherited }) => {
                values.iter().all(|value| inherited.contains(value))
            }
            (Self::Reference { class }, Self::Reference { class: inherited }) => {
                catalog.is_subclass_of(class, inherited)
            }
            (Self::Bool, Self::Bool) | (Self::Date, Self::Date) => true,
            _ => false,
        }
    }

    /// What is wrong with this type's own constraints, if anything. Reference classes are
    /// checked against the catalog by the caller.
    fn definition_problem(&self) -> Option<String> {
        match self {
            Self::String { max_len } if *max_len == 0 || *max_len > STRING_MAX_LEN_LIMIT => Some(
                format!("max_len must be between 1 and {STRING_MAX_LEN_LIMIT}, not {max_len}"),
            ),
            Self::Int {
                min: Some(min),
                max: Some(max),
            } if min > max => Some(format!("min {min} is greater than max {max}")),
            Self::Enum { values } if values.is_empty() => {
                Some("an enum needs at least one value".to_owned())
            }
            Self::Enum { values } if values.len() > MAX_ENUM_VALUES => Some(format!(
                "an enum may have at most {MAX_ENUM_VALUES} values, not {}",
                values.len()
            )),
            Self::Enum { values } => {
                let mut seen = BTreeSet::new();
                values.iter().find_map(|value| {
                    if let Some(problem) = validate::opaque_problem(value, LABEL_MAX) {
                        Some(format!("enum value \"{value}\" {problem}"))
                    } else if !seen.insert(value) {
                        Some(format!("enum value \"{value}\" is listed twice"))
                    } else {
                        None
                    }
                })
            }
            _ => None,
        }
    }
}

impl fmt::Display for AttributeType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::String { max_len } => write!(f, "string of at most {max_len} characters"),
            Self::Int { min, max } => match (min, max) {
                (None, None) => f.write_str("integer"),
                (Some(min), None) => write!(f, "integer of at least {min}"),
                (None, Some(max)) => write!(f, "integer of at most {max}"),
                (Some(min), Some(max)) => write!(f, "integer between {min} and {max}"),
            },
            Self::Bool => f.write_str("boolean"),
            Self::Enum { values } => write!(f, "one of {}", values.join(", ")),
            Self::Date => f.write_str("date"),
            Self::Reference { class } => write!(f, "reference to a {class}"),
        }
    }
}

/// A typed attribute value. Enum values are [`AttrValue::String`]s.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AttrValue {
    String(String),
    Int(i64),
    Bool(bool),
    Date(NaiveDate),
    /// The id of another CI, as the API spells CI ids.
    Reference(String),
}

impl AttrValue {
    /// The value as the API and the store carry it: a JSON string, number or boolean; dates as
    /// `"YYYY-MM-DD"`, references as the id string.
    pub fn to_json(&self) -> Value {
        match self {
            Self::String(text) | Self::Reference(text) => Value::String(text.clone()),
            Self::Int(number) => Value::from(*number),
            Self::Bool(flag) => Value::Bool(*flag),
            Self::Date(date) => Value::String(date.format("%Y-%m-%d").to_string()),
        }
    }

    /// Reads a JSON value as an attribute of `attr_type`, checking the type's constraints. The
    /// type is needed because JSON cannot tell a date or a reference from a string. Nothing is
    /// coerced: `"4"` is not an integer and `4.0` is not either.
    pub fn from_json(attr_type: &AttributeType, value: &Value) -> Result<Self, AttrValueError> {
        match attr_type {
            AttributeType::String { max_len } => {
                let text = value.as_str().ok_or(AttrValueError::NotAString)?;
                let chars = text.chars().count();
                if chars > *max_len {
                    return Err(AttrValueError::TooLong {
                        max_len: *max_len,
                        chars,
                    });
                }
                if let Some((position, character)) =
                    first_forbidden_control(text, LineBreaks::Allowed)
                {
                    return Err(AttrValueError::ControlCharacter {
                        position,
                        character,
                    });
                }
                Ok(Self::String(text.to_owned()))
            }
            AttributeType::Int { min, max } => {
                let number = value.as_i64().ok_or(AttrValueError::NotAnInteger)?;
                if min.is_some_and(|min| number < min) || max.is_some_and(|max| number > max) {
                    return Err(AttrValueError::OutOfRange {
                        min: *min,
                        max: *max,
                        value: number,
                    });
                }
                Ok(Self::Int(number))
            }
            AttributeType::Bool => value
                .as_bool()
                .map(Self::Bool)
                .ok_or(AttrValueError::NotABool),
            AttributeType::Enum { values } => {
                let text = value.as_str().ok_or_else(|| AttrValueError::NotInEnum {
                    value: value.to_string(),
                    allowed: values.clone(),
                })?;
                if values.iter().any(|allowed| allowed == text) {
                    Ok(Self::String(text.to_owned()))
                } else {
                    Err(AttrValueError::NotInEnum {
                        value: format!("\"{text}\""),
                        allowed: values.clone(),
                    })
                }
            }
            AttributeType::Date => {
                let text = value.as_str().ok_or(AttrValueError::NotADateString)?;
                parse_date(text)
                    .map(Self::Date)
                    .ok_or_else(|| AttrValueError::BadDate {
                        text: text.to_owned(),
                    })
            }
            AttributeType::Reference { class } => {
                let text = value.as_str().ok_or_else(|| AttrValueError::BadReference {
                    class: class.clone(),
                    problem: "must be a string".to_owned(),
                })?;
                match validate::opaque_problem(text, validate::ID_MAX) {
                    Some(problem) => Err(AttrValueError::BadReference {
                        class: class.clone(),
                        problem,
                    }),
                    None => Ok(Self::Reference(text.to_owned())),
                }
            }
        }
    }
}

impl fmt::Display for AttrValue {
    /// As history records it: the text, the number, `true`/`false`, `YYYY-MM-DD`, the id.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::String(text) | Self::Reference(text) => f.write_str(text),
            Self::Int(number) => write!(f, "{number}"),
            Self::Bool(flag) => write!(f, "{flag}"),
            Self::Date(date) => write!(f, "{}", date.format("%Y-%m-%d")),
        }
    }
}

/// A strict ISO calendar date: exactly `YYYY-MM-DD`, a day that exists.
fn parse_date(text: &str) -> Option<NaiveDate> {
    let date = NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
    // chrono also accepts unpadded fields and signs; formatting back keeps only the ISO form.
    (date.format("%Y-%m-%d").to_string() == text).then_some(date)
}

/// Converts a map of typed attributes to the JSON object the API and the store carry.
pub fn attributes_to_json(values: &BTreeMap<String, AttrValue>) -> serde_json::Map<String, Value> {
    values
        .iter()
        .map(|(name, value)| (name.clone(), value.to_json()))
        .collect()
}

/// Why a JSON value is not a valid attribute value. The texts are user-facing and complete a
/// field path: `attributes.port: must be an integer`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttrValueError {
    #[error("must be a string")]
    NotAString,

    #[error("must be an integer")]
    NotAnInteger,

    #[error("must be true or false")]
    NotABool,

    #[error("must be a date as a \"YYYY-MM-DD\" string")]
    NotADateString,

    #[error("\"{text}\" is not a date; expected YYYY-MM-DD")]
    BadDate { text: String },

    #[error("must be at most {max_len} characters, not {chars}")]
    TooLong { max_len: usize, chars: usize },

    #[error(
        "must not contain control characters other than line breaks and tabs (found {})",
        describe_character(*.position, *.character)
    )]
    ControlCharacter { position: usize, character: char },

    #[error("{}", describe_range(*.min, *.max, *.value))]
    OutOfRange {
        min: Option<i64>,
        max: Option<i64>,
        value: i64,
    },

    #[error("{value} is not one of: {}", .allowed.join(", "))]
    NotInEnum { value: String, allowed: Vec<String> },

    #[error("must be the id of a {class} CI: {problem}")]
    BadReference { class: String, problem: String },
}

fn describe_range(min: Option<i64>, max: Option<i64>, value: i64) -> String {
    match (min, max) {
        (Some(min), Some(max)) => format!("must be between {min} and {max}, not {value}"),
        (Some(min), None) => format!("must be at least {min}, not {value}"),
        (None, Some(max)) => format!("must be at most {max}, not {value}"),
        (None, None) => format!("{value} is out of range"),
    }
}

/// One attribute of a class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttributeDef {
    /// snake_case, unique within the class and its ancestors (unless narrowing), never a
    /// [`CORE_FIELDS`] name.
    pub name: String,
    pub attr_type: AttributeType,
    /// A CI cannot be created without it, and it cannot be cleared.
    pub required: bool,
    /// Filled in on create when the caller gives no value; must be valid for `attr_type`.
    pub default: Option<AttrValue>,
}

impl AttributeDef {
    /// An optional attribute without a default.
    pub fn new(name: &str, attr_type: AttributeType) -> Self {
        Self {
            name: name.to_owned(),
            attr_type,
            required: false,
            default: None,
        }
    }

    /// The same attribute, required.
    #[must_use]
    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }

    /// The same attribute, with a default.
    #[must_use]
    pub fn with_default(mut self, default: AttrValue) -> Self {
        self.default = Some(default);
        self
    }
}

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

/// "a string", "an enum": for messages.
struct WithArticle<'a>(&'a str);

impl fmt::Display for WithArticle<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let article = match self.0.chars().next() {
            Some('a' | 'e' | 'i' | 'o' | 'u') => "an",
            _ => "a",
        };
        write!(f, "{article} {}", self.0)
    }
}

/// Whether a request creates a CI or patches one; see [`validate_attributes`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValidationMode {
    /// Every required attribute must end up with a value; defaults fill the gaps; `null` means
    /// "not given".
    Create,
    /// Only the given attributes change; `null` clears a non-required one.
    Patch,
}

/// The typed result of [`validate_attributes`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ValidatedAttributes {
    /// Every attribute that gets a value, defaults included.
    pub values: BTreeMap<String, AttrValue>,
    /// Patch only: attributes the request clears with `null`.
    pub cleared: BTreeSet<String>,
    /// Create only: attributes whose value came from the class default rather than the caller;
    /// they get no provenance, so any source may later set them.
    pub defaulted: BTreeSet<String>,
}

/// Checks a CI's attributes, given as JSON, against its class, and types them.
///
/// Every violation is collected: an unknown or abstract class (field `class`), an unknown
/// attribute, a wrong type, a string too long, a number out of range, a value not in the enum, a
/// bad date, an empty reference (fields `attributes.<name>`), and on [`ValidationMode::Create`]
/// each required attribute still missing after defaults; on [`ValidationMode::Patch`] a `null`
/// clears an attribute unless it is required.
pub fn validate_attributes(
    catalog: &ClassCatalog,
    class: &str,
    attributes: &BTreeMap<String, Value>,
    mode: ValidationMode,
) -> Result<ValidatedAttributes, Violations> {
    let mut violations = Violations::new();
    let validated = check_attributes(
        catalog,
        class,
        attributes,
        mode,
        "class",
        "attributes.",
        &mut violations,
    );
    violations.into_result().map(|()| validated)
}

/// [`validate_attributes`] with the field names chosen by the caller, so a batch can report
/// `items[3].class` and `items[3].attributes.port`.
pub(crate) fn check_attributes(
    catalog: &ClassCatalog,
    class: &str,
    attributes: &BTreeMap<String, Value>,
    mode: ValidationMode,
    class_field: &str,
    attribute_prefix: &str,
    violations: &mut Violations,
) -> ValidatedAttributes {
    let mut validated = ValidatedAttributes::default();
    let Some(definition) = catalog.get(class) else {
        violations.push(class_field, format!("unknown CI class \"{class}\""));
        return validated;
    };
    if definition.abstract_class {
        violations.push(
            class_field,
            format!("\"{class}\" is an abstract class; a CI must be of one of its subclasses"),
        );
    }
    let effective = catalog.effective_attributes(class);
    for (name, value) in attributes {
        let field = format!("{attribute_prefix}{name}");
        let Some(attribute) = effective.iter().find(|attribute| &attribute.name == name) else {
            let known: Vec<&str> = effective.iter().map(|a| a.name.as_str()).collect();
            let known = if known.is_empty() {
                "it has none".to_owned()
            } else {
                format!("known: {}", known.join(", "))
            };
            violations.push(
                field,
                format!("is not an attribute of class {class} ({known})"),
            );
            continue;
        };
        if value.is_null() {
            match mode {
                ValidationMode::Create => {}
                ValidationMode::Patch if attribute.required => {
                    violations.push(field, "is required and cannot be cleared");
                }
                ValidationMode::Patch => {
                    validated.cleared.insert(name.clone());
                }
            }
            continue;
        }
        match AttrValue::from_json(&attribute.attr_type, value) {
            Ok(typed) => {
                validated.values.insert(name.clone(), typed);
            }
            Err(error) => violations.push(field, error.to_string()),
        }
    }
    if mode == ValidationMode::Create {
        for attribute in effective {
            let given = attributes
                .get(&attribute.name)
                .is_some_and(|value| !value.is_null());
            if given {
                continue;
            }
            if let Some(default) = &attribute.default {
                validated
                    .values
                    .insert(attribute.name.clone(), default.clone());
                validated.defaulted.insert(attribute.name.clone());
            } else if attribute.required {
                violations.push(
                    format!("{attribute_prefix}{}", attribute.name),
                    "is required",
                );
            }
        }
    }
    validated
}

/// A reference attribute's value, for the caller to check: the CI `id` must exist and be of
/// `class` or a subclass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferenceCheck {
    pub attribute: String,
    pub class: String,
    pub id: String,
}

/// The reference attributes among `values` of a CI of `class`, by attribute name.
pub fn references(
    catalog: &ClassCatalog,
    class: &str,
    values: &BTreeMap<String, AttrValue>,
) -> Vec<ReferenceCheck> {
    values
        .iter()
        .filter_map(|(name, value)| {
            let AttrValue::Reference(id) = value else {
                return None;
            };
            let attribute = catalog.effective_attribute(class, name)?;
            let AttributeType::Reference { class: target } = &attribute.attr_type else {
                return None;
            };
            Some(ReferenceCheck {
                attribute: name.clone(),
                class: target.clone(),
                id: id.clone(),
            })
        })
        .collect()
}

fn string(name: &str, max_len: usize) -> AttributeDef {
    AttributeDef::new(name, AttributeType::String { max_len })
}

fn int(name: &str, min: Option<i64>, max: Option<i64>) -> AttributeDef {
    AttributeDef::new(name, AttributeType::Int { min, max })
}

fn enumeration(name: &str, values: &[&str]) -> AttributeDef {
    AttributeDef::new(
        name,
        AttributeType::Enum {
            values: values.iter().map(|value| (*value).to_owned()).collect(),
        },
    )
}

fn class(
    name: &str,
    label: &str,
    parent: Option<&str>,
    attributes: Vec<AttributeDef>,
    identification: Vec<IdentificationRule>,
) -> CiClass {
    CiClass {
        name: name.to_owned(),
        label: label.to_owned(),
        parent: parent.map(ToOwned::to_owned),
        attributes,
        identification,
        abstract_class: false,
    }
}

/// Longest host name (RFC 1035 allows 253 characters; 255 leaves room for a trailing dot).
const FQDN_MAX: usize = 255;
/// Longest serial number, cloud id or version we expect from any vendor.
const SHORT_TEXT_MAX: usize = 255;

fn builtin_classes() -> Vec<CiClass> {
    let root = Some(ROOT_CLASS);
    let rule = IdentificationRule::new;
    let name_environment = || rule("name_environment", &["name", "environment"]);
    vec![
        CiClass {
            abstract_class: true,
            ..class(
                ROOT_CLASS,
                "Configuration item",
                None,
                vec![],
                vec![name_environment()],
            )
        },
        class(
            BUSINESS_SERVICE,
            "Business service",
            root,
            vec![
                string("service_owner", SHORT_TEXT_MAX),
                enumeration("sla_tier", &["gold", "silver", "bronze"]),
            ],
            // A business service is one thing across environments: its name identifies it.
            vec![rule("name", &["name"])],
        ),
        class(
            "application_service",
            "Application service",
            root,
            vec![string("url", 2048)],
            vec![rule("url", &["url"]), name_environment()],
        ),
        class(
            "application",
            "Application",
            root,
            vec![
                string("version", SHORT_TEXT_MAX),
                string("vendor", SHORT_TEXT_MAX),
            ],
            vec![
                rule("name_on_host", &["name"]).dependent_on(RelationshipType::RunsOn, ROOT_CLASS),
                name_environment(),
            ],
        ),
        class(
            "server",
            "Server",
            root,
            vec![
                string("fqdn", FQDN_MAX),
                string("serial_number", SHORT_TEXT_MAX),
                enumeration("os", &["linux", "windows", "other"]),
                int("cpu_count", Some(1), Some(1024)),
                int("ram_gb", Some(0), None),
            ],
            vec![
                rule("serial_number", &["serial_number"]),
                rule("fqdn", &["fqdn"]),
                name_environment(),
            ],
        ),
        class(
            "virtual_machine",
            "Virtual machine",
            Some("server"),
            vec![
                string("hypervisor", SHORT_TEXT_MAX),
                string("cloud_resource_id", SHORT_TEXT_MAX),
            ],
            // Not by serial number: hypervisors hand out copied or empty ones.
            vec![
                rule("cloud_resource_id", &["cloud_resource_id"]),
                rule("fqdn", &["fqdn"]),
                name_environment(),
            ],
        ),
        class(
            "database",
            "Database",
            root,
            vec![
                enumeration(
                    "engine",
                    &[
                        "postgresql",
                        "mysql",
                        "oracle",
                        "sqlserver",
                        "mongodb",
                        "other",
                    ],
                ),
                int("port", Some(1), Some(65535)),
                string("fqdn", FQDN_MAX),
            ],
            // Many databases share a name across hosts; on one host (or one endpoint) a name
            // is unique.
            vec![
                rule("name_on_host", &["name"]).dependent_on(RelationshipType::RunsOn, "server"),
                rule("name_endpoint", &["name", "fqdn", "port"]),
                name_environment(),
            ],
        ),
        class(
            "network_device",
            "Network device",
            root,
            vec![
                string("serial_number", SHORT_TEXT_MAX),
                enumeration(
                    "device_type",
                    &[
                        "router",
                        "switch",
                        "firewall",
                        "load_balancer",
                        "access_point",
                    ],
                ),
                // Long enough for an IPv6 address with an embedded IPv4 one.
                string("management_ip", 45),
            ],
            vec![
                rule("serial_number", &["serial_number"]),
                name_environment(),
            ],
        ),
        class(
            "cloud_resource",
            "Cloud resource",
            root,
            vec![
                enumeration("provider", &["aws", "azure", "gcp", "other"]),
                string("cloud_resource_id", SHORT_TEXT_MAX).required(),
                string("resource_type", SHORT_TEXT_MAX),
            ],
            vec![rule("cloud_resource_id", &["cloud_resource_id"])],
        ),
    ]
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    fn attrs(value: Value) -> BTreeMap<String, Value> {
        match value {
            Value::Object(map) => map.into_iter().collect(),
            _ => BTreeMap::new(),
        }
    }

    fn violations_of(
        class: &str,
        attributes: Value,
        mode: ValidationMode,
    ) -> Vec<(String, String)> {
        match validate_attributes(&ClassCatalog::builtin(), class, &attrs(attributes), mode) {
            Ok(_) => vec![],
            Err(violations) => violations
                .into_iter()
                .map(|v| (v.field, v.description))
                .collect(),
        }
    }

    fn tenant_class(name: &str, parent: &str, attributes: Vec<AttributeDef>) -> CiClass {
        class(name, "Tenant class", Some(parent), attributes, vec![])
    }

    #[test]
    fn every_builtin_class_passes_the_checks_tenant_classes_must_pass() {
        let catalog = ClassCatalog::builtin();
        for class in catalog.classes() {
            assert_eq!(catalog.check_class(class), Ok(()), "{}", class.name);
            assert_eq!(catalog.check_acyclic(&class.name), Ok(()), "{}", class.name);
            assert!(validate::is_identifier(&class.name));
        }
    }

    #[test]
    fn the_builtin_catalog_is_one_tree_under_configuration_item() {
        let catalog = ClassCatalog::builtin();
        let root = catalog.get(ROOT_CLASS).expect("root");
        assert!(root.abstract_class);
        assert!(root.attributes.is_empty());
        for class in catalog.classes() {
            assert!(
                catalog.is_subclass_of(&class.name, ROOT_CLASS),
                "{}",
                class.name
            );
            assert_eq!(class.parent.is_none(), class.name == ROOT_CLASS);
        }
        assert_eq!(catalog.classes().count(), 9);
    }

    #[test]
    fn a_virtual_machine_is_a_server_but_not_the_other_way_round() {
        let catalog = ClassCatalog::builtin();
        assert!(catalog.is_subclass_of("virtual_machine", "server"));
        assert!(catalog.is_subclass_of("server", "server"));
        assert!(!catalog.is_subclass_of("server", "virtual_machine"));
        assert!(!catalog.is_subclass_of("database", "server"));
        assert!(!catalog.is_subclass_of("no_such_class", ROOT_CLASS));
        assert_eq!(catalog.subclasses("server"), ["server", "virtual_machine"]);
        assert!(catalog.subclasses("no_such_class").is_empty());
    }

    #[test]
    fn a_subclass_has_its_parents_attributes_first_and_its_own_after() {
        let catalog = ClassCatalog::builtin();
        let names: Vec<&str> = catalog
            .effective_attributes("virtual_machine")
            .iter()
            .map(|a| a.name.as_str())
            .collect();
        assert_eq!(
            names,
            [
                "fqdn",
                "serial_number",
                "os",
                "cpu_count",
                "ram_gb",
                "hypervisor",
                "cloud_resource_id"
            ]
        );
        assert!(catalog.effective_attributes(ROOT_CLASS).is_empty());
        assert!(catalog.effective_attributes("no_such_class").is_empty());
    }

    #[test]
    fn identification_rules_are_inherited_from_the_nearest_class_that_has_some() {
        let catalog = ClassCatalog::with_tenant_classes(vec![
            tenant_class("storage_array", ROOT_CLASS, vec![]),
            tenant_class("blade", "server", vec![]),
        ])
        .expect("valid");
        let (declared_by, rules) = catalog
            .identification_rules("storage_array")
            .expect("rules");
        assert_eq!(declared_by, ROOT_CLASS);
        assert_eq!(rules[0].attributes, ["name", "environment"]);
        let (declared_by, rules) = catalog.identification_rules("blade").expect("rules");
        assert_eq!(declared_by, "server");
        assert_eq!(rules[0].name, "serial_number");
        assert!(catalog.identification_rules("no_such_class").is_none());
    }

    #[test]
    fn a_tenant_class_may_extend_a_builtin_or_another_tenant_class_in_any_order() {
        let catalog = ClassCatalog::with_tenant_classes(vec![
            tenant_class(
                "gpu_server",
                "hpc_server",
                vec![int("gpu_count", Some(0), None)],
            ),
            tenant_class("hpc_server", "server", vec![string("scheduler", 50)]),
        ])
        .expect("valid");
        assert!(catalog.is_subclass_of("gpu_server", "server"));
        assert_eq!(
            catalog.effective_attributes("gpu_server").len(),
            5 + 1 + 1,
            "server's five, hpc_server's one, its own"
        );
    }

    #[test]
    fn a_tenant_class_needs_an_existing_parent() {
        assert_eq!(
            ClassCatalog::with_tenant_classes(vec![tenant_class("nas", "storage", vec![])]),
            Err(ClassError::UnknownParent {
                class: "nas".into(),
                parent: "storage".into()
            })
        );
        let orphan = CiClass {
            parent: None,
            ..tenant_class("nas", ROOT_CLASS, vec![])
        };
        assert_eq!(
            ClassCatalog::with_tenant_classes(vec![orphan])
                .expect_err("orphan")
                .to_string(),
            "class \"nas\" needs a parent class; only configuration_item has none"
        );
    }

    #[test]
    fn a_tenant_class_name_must_be_new_and_snake_case() {
        assert_eq!(
            ClassCatalog::with_tenant_classes(vec![tenant_class("server", ROOT_CLASS, vec![])]),
            Err(ClassError::DuplicateName {
                class: "server".into()
            })
        );
        assert_eq!(
            ClassCatalog::with_tenant_classes(vec![
                tenant_class("nas", ROOT_CLASS, vec![]),
                tenant_class("nas", ROOT_CLASS, vec![]),
            ]),
            Err(ClassError::DuplicateName {
                class: "nas".into()
            })
        );
        assert_eq!(
            ClassCatalog::with_tenant_classes(vec![tenant_class("NAS box", ROOT_CLASS, vec![])]),
            Err(ClassError::InvalidName {
                class: "NAS box".into()
            })
        );
    }

    #[test]
    fn tenant_classes_that_inherit_in_a_cycle_are_refused() {
        let error = ClassCatalog::with_tenant_classes(vec![
            tenant_class("a_class", "b_class", vec![]),
            tenant_class("b_class", "c_class", vec![]),
            tenant_class("c_class", "a_class", vec![]),
        ])
        .expect_err("cycle");
        assert_eq!(
            error.to_string(),
            "classes inherit from each other in a cycle: a_class → b_class → c_class → a_class"
        );
        assert_eq!(error.class(), None);
    }

    #[test]
    fn an_attribute_may_narrow_an_inherited_one_but_not_change_its_type() {
        let narrowed = ClassCatalog::with_tenant_classes(vec![tenant_class(
            "small_server",
            "server",
            vec![int("cpu_count", Some(1), Some(8)).required()],
        )])
        .expect("narrowing is fine");
        let cpu = narrowed
            .effective_attribute("small_server", "cpu_count")
            .expect("cpu_count");
        assert!(cpu.required);
        assert_eq!(
            narrowed
                .effective_attributes("small_server")
                .iter()
                .filter(|a| a.name == "cpu_count")
                .count(),
            1
        );

        let error = ClassCatalog::with_tenant_classes(vec![tenant_class(
            "odd_server",
            "server",
            vec![string("cpu_count", 10)],
        )])
        .expect_err("retyped");
        assert_eq!(
            error.to_string(),
            "attribute \"cpu_count\" of class \"odd_server\" redefines the one inherited from \
             \"server\" as string of at most 10 characters; it may only narrow integer between 1 \
             and 1024"
        );

        let widened = ClassCatalog::with_tenant_classes(vec![tenant_class(
            "big_server",
            "server",
            vec![int("cpu_count", Some(1), Some(4096))],
        )]);
        assert!(matches!(widened, Err(ClassError::ShadowedAttribute { .. })));
    }

    #[test]
    fn narrowing_is_judged_per_type() {
        let catalog = ClassCatalog::builtin();
        let enum_of = |values: &[&str]| AttributeType::Enum {
            values: values.iter().map(|v| (*v).to_owned()).collect(),
        };
        assert!(enum_of(&["gold"]).narrows(&enum_of(&["gold", "silver"]), &catalog));
        assert!(!enum_of(&["platinum"]).narrows(&enum_of(&["gold"]), &catalog));
        let reference = |class: &str| AttributeType::Reference {
            class: class.to_owned(),
        };
        assert!(reference("virtual_machine").narrows(&reference("server"), &catalog));
        assert!(!reference("server").narrows(&reference("virtual_machine"), &catalog));
        let range = |min, max| AttributeType::Int { min, max };
        assert!(range(Some(0), Some(5)).narrows(&range(None, None), &catalog));
        assert!(!range(None, Some(5)).narrows(&range(Some(0), None), &catalog));
        assert!(AttributeType::Date.narrows(&AttributeType::Date, &catalog));
        assert!(!AttributeType::Date.narrows(&AttributeType::Bool, &catalog));
    }

    #[test]
    fn attributes_may_not_take_core_field_names_or_repeat() {
        assert!(matches!(
            ClassCatalog::with_tenant_classes(vec![tenant_class(
                "nas",
                ROOT_CLASS,
                vec![string("name", 10)]
            )]),
            Err(ClassError::ReservedAttributeName { .. })
        ));
        assert!(matches!(
            ClassCatalog::with_tenant_classes(vec![tenant_class(
                "nas",
                ROOT_CLASS,
                vec![string("model", 10), string("model", 20)]
            )]),
            Err(ClassError::DuplicateAttribute { .. })
        ));
        assert!(matches!(
            ClassCatalog::with_tenant_classes(vec![tenant_class(
                "nas",
                ROOT_CLASS,
                vec![string("Model", 10)]
            )]),
            Err(ClassError::InvalidAttributeName { .. })
        ));
    }

    #[test]
    fn attribute_types_and_defaults_must_make_sense() {
        let refused = |attribute: AttributeDef| {
            ClassCatalog::with_tenant_classes(vec![tenant_class(
                "nas",
                ROOT_CLASS,
                vec![attribute],
            )])
            .expect_err("refused")
            .to_string()
        };
        assert_eq!(
            refused(string("model", 0)),
            "attribute \"model\" of class \"nas\" has an invalid type: max_len must be between 1 \
             and 10000, not 0"
        );
        assert_eq!(
            refused(int("disks", Some(5), Some(1))),
            "attribute \"disks\" of class \"nas\" has an invalid type: min 5 is greater than max 1"
        );
        assert!(refused(enumeration("tier", &[])).contains("at least one value"));
        assert!(refused(enumeration("tier", &["a", "a"])).contains("listed twice"));
        assert!(
            refused(AttributeDef::new(
                "backup_of",
                AttributeType::Reference {
                    class: "tape".into()
                }
            ))
            .contains("refers to class \"tape\", which does not exist")
        );
        assert_eq!(
            refused(int("disks", Some(1), Some(4)).with_default(AttrValue::Int(9))),
            "the default of attribute \"disks\" of class \"nas\" must be between 1 and 4, not 9"
        );
        assert_eq!(
            refused(string("model", 10).with_default(AttrValue::Date(
                NaiveDate::from_ymd_opt(2024, 1, 1).expect("date")
            ))),
            "the default of attribute \"model\" of class \"nas\" is not a string"
        );
    }

    #[test]
    fn identification_rules_must_name_known_fields() {
        let with_rule = |rule: IdentificationRule| {
            ClassCatalog::with_tenant_classes(vec![class(
                "nas",
                "NAS",
                Some(ROOT_CLASS),
                vec![string("serial", 50)],
                vec![rule],
            )])
        };
        assert!(with_rule(IdentificationRule::new("serial", &["serial"])).is_ok());
        assert!(with_rule(IdentificationRule::new("by_name", &["name", "environment"])).is_ok());
        let error = with_rule(IdentificationRule::new("wwn", &["wwn"])).expect_err("unknown");
        assert_eq!(
            error.to_string(),
            "identification rule \"wwn\" of class \"nas\" is invalid: \"wwn\" is neither an \
             attribute of the class nor one of: name, environment"
        );
        assert!(with_rule(IdentificationRule::new("empty", &[])).is_err());
        assert!(with_rule(IdentificationRule::new("twice", &["serial", "serial"])).is_err());
        assert!(
            with_rule(
                IdentificationRule::new("on_rack", &["serial"])
                    .dependent_on(RelationshipType::MemberOf, "rack")
            )
            .is_err()
        );
    }

    #[test]
    fn a_valid_server_validates_to_typed_values() {
        let validated = validate_attributes(
            &ClassCatalog::builtin(),
            "server",
            &attrs(json!({
                "fqdn": "web-01.example.com",
                "os": "linux",
                "cpu_count": 8,
            })),
            ValidationMode::Create,
        )
        .expect("valid");
        assert_eq!(
            validated.values,
            BTreeMap::from([
                ("cpu_count".to_owned(), AttrValue::Int(8)),
                (
                    "fqdn".to_owned(),
                    AttrValue::String("web-01.example.com".into())
                ),
                ("os".to_owned(), AttrValue::String("linux".into())),
            ])
        );
        assert!(validated.cleared.is_empty() && validated.defaulted.is_empty());
    }

    #[test]
    fn every_attribute_problem_is_reported_at_once() {
        assert_eq!(
            violations_of(
                "server",
                json!({
                    "fqdn": 42,
                    "serial_number": "x".repeat(256),
                    "os": "beos",
                    "cpu_count": 0,
                    "ram_gb": "16",
                    "colour": "red",
                }),
                ValidationMode::Create,
            ),
            [
                ("attributes.colour".into(), "is not an attribute of class server (known: fqdn, serial_number, os, cpu_count, ram_gb)".into()),
                ("attributes.cpu_count".into(), "must be between 1 and 1024, not 0".into()),
                ("attributes.fqdn".into(), "must be a string".into()),
                ("attributes.os".into(), "\"beos\" is not one of: linux, windows, other".into()),
                ("attributes.ram_gb".into(), "must be an integer".into()),
                ("attributes.serial_number".into(), "must be at most 255 characters, not 256".into()),
            ]
        );
    }

    #[test]
    fn an_unknown_class_is_reported_on_the_class_field() {
        assert_eq!(
            violations_of("mainframe", json!({"a": 1}), ValidationMode::Create),
            [("class".into(), "unknown CI class \"mainframe\"".into())]
        );
    }

    #[test]
    fn an_abstract_class_cannot_be_instantiated() {
        assert_eq!(
            violations_of(ROOT_CLASS, json!({}), ValidationMode::Create),
            [(
                "class".into(),
                "\"configuration_item\" is an abstract class; a CI must be of one of its subclasses"
                    .into()
            )]
        );
    }

    #[test]
    fn a_missing_required_attribute_is_reported_on_create_only() {
        assert_eq!(
            violations_of(
                "cloud_resource",
                json!({"provider": "aws"}),
                ValidationMode::Create
            ),
            [("attributes.cloud_resource_id".into(), "is required".into())]
        );
        assert_eq!(
            violations_of(
                "cloud_resource",
                json!({"cloud_resource_id": null}),
                ValidationMode::Create
            ),
            [("attributes.cloud_resource_id".into(), "is required".into())]
        );
        assert_eq!(
            violations_of(
                "cloud_resource",
                json!({"provider": "aws"}),
                ValidationMode::Patch
            ),
            []
        );
    }

    #[test]
    fn defaults_fill_in_missing_attributes_on_create() {
        let catalog = ClassCatalog::with_tenant_classes(vec![tenant_class(
            "nas",
            ROOT_CLASS,
            vec![
                int("disks", Some(1), None)
                    .required()
                    .with_default(AttrValue::Int(4)),
                AttributeDef::new("encrypted", AttributeType::Bool)
                    .with_default(AttrValue::Bool(true)),
            ],
        )])
        .expect("valid");
        let validated = validate_attributes(
            &catalog,
            "nas",
            &attrs(json!({"encrypted": false})),
            ValidationMode::Create,
        )
        .expect("valid");
        assert_eq!(validated.values["disks"], AttrValue::Int(4));
        assert_eq!(validated.values["encrypted"], AttrValue::Bool(false));
        assert_eq!(validated.defaulted, BTreeSet::from(["disks".to_owned()]));
        let patched =
            validate_attributes(&catalog, "nas", &attrs(json!({})), ValidationMode::Patch)
                .expect("valid");
        assert!(patched.values.is_empty(), "defaults apply on create only");
    }

    #[test]
    fn null_clears_an_optional_attribute_on_patch_but_not_a_required_one() {
        let validated = validate_attributes(
            &ClassCatalog::builtin(),
            "cloud_resource",
            &attrs(json!({"resource_type": null})),
            ValidationMode::Patch,
        )
        .expect("valid");
        assert_eq!(
            validated.cleared,
            BTreeSet::from(["resource_type".to_owned()])
        );
        assert_eq!(
            violations_of(
                "cloud_resource",
                json!({"cloud_resource_id": null}),
                ValidationMode::Patch
            ),
            [(
                "attributes.cloud_resource_id".into(),
                "is required and cannot be cleared".into()
            )]
        );
    }

    #[test]
    fn dates_must_be_strict_iso_calendar_days() {
        let date = AttributeType::Date;
        assert_eq!(
            AttrValue::from_json(&date, &json!("2024-02-29")),
            Ok(AttrValue::Date(
                NaiveDate::from_ymd_opt(2024, 2, 29).expect("date")
            ))
        );
        for bad in [
            "2023-02-29",
            "2024-2-1",
            "24-02-01",
            "2024-02-01T00:00:00Z",
            "",
        ] {
            assert_eq!(
                AttrValue::from_json(&date, &json!(bad)),
                Err(AttrValueError::BadDate { text: bad.into() }),
                "{bad}"
            );
        }
        assert_eq!(
            AttrValue::from_json(&date, &json!(20240101))
                .expect_err("number")
                .to_string(),
            "must be a date as a \"YYYY-MM-DD\" string"
        );
    }

    #[test]
    fn numbers_are_not_coerced() {
        let int = AttributeType::Int {
            min: None,
            max: None,
        };
        assert_eq!(
            AttrValue::from_json(&int, &json!(-3)),
            Ok(AttrValue::Int(-3))
        );
        for bad in [
            json!("4"),
            json!(4.0),
            json!(4.5),
            json!(true),
            json!(u64::MAX),
        ] {
            assert_eq!(
                AttrValue::from_json(&int, &bad),
                Err(AttrValueError::NotAnInteger),
                "{bad}"
            );
        }
    }

    #[test]
    fn strings_may_span_lines_but_not_hold_other_control_characters() {
        let text = AttributeType::String { max_len: 20 };
        assert!(AttrValue::from_json(&text, &json!("a\r\n\tb")).is_ok());
        assert_eq!(
            AttrValue::from_json(&text, &json!("bell\u{7}"))
                .expect_err("bell")
                .to_string(),
            "must not contain control characters other than line breaks and tabs (found U+0007 at \
             character 5)"
        );
    }

    #[test]
    fn a_reference_must_be_an_id_and_is_left_for_the_caller_to_look_up() {
        let catalog = ClassCatalog::with_tenant_classes(vec![tenant_class(
            "backup_job",
            ROOT_CLASS,
            vec![AttributeDef::new(
                "protects",
                AttributeType::Reference {
                    class: "server".into(),
                },
            )],
        )])
        .expect("valid");
        let reference_type = catalog
            .effective_attribute("backup_job", "protects")
            .expect("protects")
            .attr_type
            .clone();
        assert_eq!(
            AttrValue::from_json(&reference_type, &json!(""))
                .expect_err("empty")
                .to_string(),
            "must be the id of a server CI: must not be empty"
        );
        assert!(AttrValue::from_json(&reference_type, &json!(7)).is_err());
        let validated = validate_attributes(
            &catalog,
            "backup_job",
            &attrs(json!({"protects": "0196a2b0-0000-7000-8000-000000000001"})),
            ValidationMode::Create,
        )
        .expect("valid");
        assert_eq!(
            references(&catalog, "backup_job", &validated.values),
            [ReferenceCheck {
                attribute: "protects".into(),
                class: "server".into(),
                id: "0196a2b0-0000-7000-8000-000000000001".into()
            }]
        );
    }

    #[test]
    fn values_map_to_plain_json() {
        let values = BTreeMap::from([
            ("a".to_owned(), AttrValue::String("x".into())),
            ("b".to_owned(), AttrValue::Int(3)),
            ("c".to_owned(), AttrValue::Bool(true)),
            (
                "d".to_owned(),
                AttrValue::Date(NaiveDate::from_ymd_opt(2025, 12, 31).expect("date")),
            ),
            ("e".to_owned(), AttrValue::Reference("ci-1".into())),
        ]);
        assert_eq!(
            Value::Object(attributes_to_json(&values)),
            json!({"a": "x", "b": 3, "c": true, "d": "2025-12-31", "e": "ci-1"})
        );
        assert_eq!(values["d"].to_string(), "2025-12-31");
    }

    /// A valid value of a given builtin-style type, for the round-trip property.
    fn server_values() -> impl Strategy<Value = BTreeMap<String, AttrValue>> {
        (
            prop::option::of("[a-z0-9.-]{0,40}"),
            prop::option::of("\\PC{0,30}"),
            prop::option::of(prop::sample::select(vec!["linux", "windows", "other"])),
            prop::option::of(1_i64..=1024),
            prop::option::of(0_i64..=i64::MAX),
        )
            .prop_map(|(fqdn, serial, os, cpus, ram)| {
                let mut values = BTreeMap::new();
                if let Some(fqdn) = fqdn {
                    values.insert("fqdn".to_owned(), AttrValue::String(fqdn));
                }
                if let Some(serial) = serial {
                    values.insert("serial_number".to_owned(), AttrValue::String(serial));
                }
                if let Some(os) = os {
                    values.insert("os".to_owned(), AttrValue::String(os.to_owned()));
                }
                if let Some(cpus) = cpus {
                    values.insert("cpu_count".to_owned(), AttrValue::Int(cpus));
                }
                if let Some(ram) = ram {
                    values.insert("ram_gb".to_owned(), AttrValue::Int(ram));
                }
                values
            })
    }

    proptest! {
        #[test]
        fn valid_values_written_as_json_validate_back_to_themselves(values in server_values()) {
            let json: BTreeMap<String, Value> = attributes_to_json(&values).into_iter().collect();
            let validated = validate_attributes(
                &ClassCatalog::builtin(),
                "server",
                &json,
                ValidationMode::Create,
            );
            prop_assert_eq!(validated.map(|v| v.values), Ok(values));
        }

        #[test]
        fn every_date_round_trips_through_json(days in 0_i64..3_000_000) {
            let date = NaiveDate::from_ymd_opt(1, 1, 1)
                .and_then(|start| start.checked_add_signed(chrono::Duration::days(days)));
            if let Some(date) = date.filter(|d| d.format("%Y").to_string().len() == 4) {
                let value = AttrValue::Date(date);
                prop_assert_eq!(AttrValue::from_json(&AttributeType::Date, &value.to_json()), Ok(value));
            }
        }

        #[test]
        fn an_int_is_accepted_exactly_within_its_bounds(
            min in -100_i64..100, span in 0_i64..100, value in -300_i64..300,
        ) {
            let attr_type = AttributeType::Int { min: Some(min), max: Some(min + span) };
            let accepted = AttrValue::from_json(&attr_type, &Value::from(value)).is_ok();
            prop_assert_eq!(accepted, (min..=min + span).contains(&value));
        }
    }
}
