//! Attribute types and typed values, and the validation of a CI's attributes against its class:
//! JSON in, typed values out, and back.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use chrono::NaiveDate;
use serde_json::Value;

use super::{ClassCatalog, MAX_ENUM_VALUES, STRING_MAX_LEN_LIMIT};
use crate::domain::validate::{
    self, LABEL_MAX, LineBreaks, Violations, describe_character, first_forbidden_control,
};

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
    pub(super) fn definition_problem(&self) -> Option<String> {
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

/// "a string", "an enum": for messages.
pub(super) struct WithArticle<'a>(pub(super) &'a str);

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
