//! Between the wire (`desk.cmdb.v1`) and the domain.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use desk_kit::ids;
use desk_proto::{cmdb::v1 as pb, common::v1 as common};
use prost_types::Timestamp;
use serde_json::Value;

use crate::domain::{
    AttrValue, AttributeDef, AttributeType, Ci, CiClass, CiStatus, ClassCatalog, Criticality,
    Environment, FieldChange, IdentificationRule, RelationshipType, Violations,
};

pub fn timestamp(at: DateTime<Utc>) -> Option<Timestamp> {
    Some(Timestamp {
        seconds: at.timestamp(),
        nanos: at.timestamp_subsec_nanos() as i32,
    })
}

pub fn status(value: i32) -> Option<CiStatus> {
    match pb::CiStatus::try_from(value).ok()? {
        pb::CiStatus::Unspecified => None,
        pb::CiStatus::Planned => Some(CiStatus::Planned),
        pb::CiStatus::InUse => Some(CiStatus::InUse),
        pb::CiStatus::Maintenance => Some(CiStatus::Maintenance),
        pb::CiStatus::Retired => Some(CiStatus::Retired),
    }
}

pub fn status_to_pb(value: CiStatus) -> pb::CiStatus {
    match value {
        CiStatus::Planned => pb::CiStatus::Planned,
        CiStatus::InUse => pb::CiStatus::InUse,
        CiStatus::Maintenance => pb::CiStatus::Maintenance,
        CiStatus::Retired => pb::CiStatus::Retired,
    }
}

pub fn environment(value: i32) -> Option<Environment> {
    match pb::Environment::try_from(value).ok()? {
        pb::Environment::Unspecified => None,
        pb::Environment::Production => Some(Environment::Production),
        pb::Environment::Staging => Some(Environment::Staging),
        pb::Environment::Test => Some(Environment::Test),
        pb::Environment::Development => Some(Environment::Development),
        pb::Environment::DisasterRecovery => Some(Environment::DisasterRecovery),
    }
}

pub fn environment_to_pb(value: Environment) -> pb::Environment {
    match value {
        Environment::Production => pb::Environment::Production,
        Environment::Staging => pb::Environment::Staging,
        Environment::Test => pb::Environment::Test,
        Environment::Development => pb::Environment::Development,
        Environment::DisasterRecovery => pb::Environment::DisasterRecovery,
    }
}

pub fn criticality(value: i32) -> Option<Criticality> {
    match pb::Criticality::try_from(value).ok()? {
        pb::Criticality::Unspecified => None,
        pb::Criticality::Critical => Some(Criticality::Critical),
        pb::Criticality::High => Some(Criticality::High),
        pb::Criticality::Medium => Some(Criticality::Medium),
        pb::Criticality::Low => Some(Criticality::Low),
    }
}

pub fn criticality_to_pb(value: Criticality) -> pb::Criticality {
    match value {
        Criticality::Critical => pb::Criticality::Critical,
        Criticality::High => pb::Criticality::High,
        Criticality::Medium => pb::Criticality::Medium,
        Criticality::Low => pb::Criticality::Low,
    }
}

pub fn relationship_type(value: i32) -> Option<RelationshipType> {
    match pb::RelationshipType::try_from(value).ok()? {
        pb::RelationshipType::Unspecified => None,
        pb::RelationshipType::DependsOn => Some(RelationshipType::DependsOn),
        pb::RelationshipType::RunsOn => Some(RelationshipType::RunsOn),
        pb::RelationshipType::ConnectsTo => Some(RelationshipType::ConnectsTo),
        pb::RelationshipType::MemberOf => Some(RelationshipType::MemberOf),
        pb::RelationshipType::Provides => Some(RelationshipType::Provides),
    }
}

pub fn relationship_type_to_pb(value: RelationshipType) -> pb::RelationshipType {
    match value {
        RelationshipType::DependsOn => pb::RelationshipType::DependsOn,
        RelationshipType::RunsOn => pb::RelationshipType::RunsOn,
        RelationshipType::ConnectsTo => pb::RelationshipType::ConnectsTo,
        RelationshipType::MemberOf => pb::RelationshipType::MemberOf,
        RelationshipType::Provides => pb::RelationshipType::Provides,
    }
}

/// A wire attribute value as the JSON the domain validates against the class (`clear` is `null`).
pub fn attribute_to_json(value: &pb::AttributeValue) -> Option<Value> {
    use pb::attribute_value::Kind;
    Some(match value.kind.as_ref()? {
        Kind::StringValue(text) | Kind::DateValue(text) | Kind::ReferenceValue(text) => {
            Value::String(text.clone())
        }
        Kind::IntValue(number) => Value::from(*number),
        Kind::BoolValue(flag) => Value::Bool(*flag),
        Kind::Clear(_) => Value::Null,
    })
}

/// Wire attributes as JSON; a value with no kind set is a violation.
pub fn attributes_to_json(
    field: &str,
    attributes: &std::collections::HashMap<String, pb::AttributeValue>,
    violations: &mut Violations,
) -> BTreeMap<String, Value> {
    let mut json = BTreeMap::new();
    for (name, value) in attributes {
        match attribute_to_json(value) {
            Some(value) => {
                json.insert(name.clone(), value);
            }
            None => violations.push(format!("{field}.{name}"), "a value needs one of string_value, int_value, bool_value, date_value, reference_value or clear"),
        }
    }
    json
}

pub fn attribute_to_pb(value: &AttrValue) -> pb::AttributeValue {
    use pb::attribute_value::Kind;
    let kind = match value {
        AttrValue::String(text) => Kind::StringValue(text.clone()),
        AttrValue::Int(number) => Kind::IntValue(*number),
        AttrValue::Bool(flag) => Kind::BoolValue(*flag),
        AttrValue::Date(date) => Kind::DateValue(date.format("%Y-%m-%d").to_string()),
        AttrValue::Reference(id) => Kind::ReferenceValue(id.clone()),
    };
    pb::AttributeValue { kind: Some(kind) }
}

pub fn ci_to_pb(region: &str, ci: &Ci) -> pb::ConfigurationItem {
    pb::ConfigurationItem {
        id: ids::format_id(region, ci.id),
        name: ci.name.clone(),
        class: ci.class.clone(),
        status: status_to_pb(ci.status) as i32,
        environment: environment_to_pb(ci.environment) as i32,
        owner_group_id: ci.owner_group.clone().unwrap_or_default(),
        criticality: criticality_to_pb(ci.criticality) as i32,
        location: ci.location.clone().unwrap_or_default(),
        region: ci.region.clone().unwrap_or_else(|| region.to_owned()),
        attributes: ci
            .attributes
            .iter()
            .map(|(name, value)| (name.clone(), attribute_to_pb(value)))
            .collect(),
        provenance: ci
            .provenance
            .iter()
            .map(|(name, p)| {
                (
                    name.clone(),
                    pb::Provenance {
                        source: p.source.clone(),
                        actor: p.actor.clone(),
                        set_time: timestamp(p.set_at),
                    },
                )
            })
            .collect(),
        version: ci.version,
        tenant_id: ci.tenant_id.clone(),
        create_time: timestamp(ci.created_at),
        update_time: timestamp(ci.updated_at),
    }
}

fn attribute_definition_to_pb(definition: &AttributeDef) -> pb::AttributeDefinition {
    let mut out = pb::AttributeDefinition {
        name: definition.name.clone(),
        required: definition.required,
        default_value: definition.default.as_ref().map(attribute_to_pb),
        ..Default::default()
    };
    match &definition.attr_type {
        AttributeType::String { max_len } => {
            out.r#type = "string".into();
            out.max_length = i32::try_from(*max_len).unwrap_or(i32::MAX);
        }
        AttributeType::Int { min, max } => {
            out.r#type = "int".into();
            out.min = min.unwrap_or(i64::MIN);
            out.max = max.unwrap_or(i64::MAX);
        }
        AttributeType::Bool => out.r#type = "bool".into(),
        AttributeType::Enum { values } => {
            out.r#type = "enum".into();
            out.allowed_values = values.clone();
        }
        AttributeType::Date => out.r#type = "date".into(),
        AttributeType::Reference { class } => {
            out.r#type = "reference".into();
            out.reference_class = class.clone();
        }
    }
    out
}

fn attribute_definition_from_pb(
    index: usize,
    definition: &pb::AttributeDefinition,
    violations: &mut Violations,
) -> Option<AttributeDef> {
    let field = format!("class.attributes[{index}]");
    let attr_type = match definition.r#type.as_str() {
        "string" => AttributeType::String {
            max_len: if definition.max_length > 0 {
                definition.max_length as usize
            } else {
                255
            },
        },
        "int" => AttributeType::Int {
            min: (definition.min != 0 || definition.max != 0).then_some(definition.min),
            max: (definition.min != 0 || definition.max != 0).then_some(definition.max),
        },
        "bool" => AttributeType::Bool,
        "enum" => AttributeType::Enum {
            values: definition.allowed_values.clone(),
        },
        "date" => AttributeType::Date,
        "reference" => AttributeType::Reference {
            class: definition.reference_class.clone(),
        },
        other => {
            violations.push(
                format!("{field}.type"),
                format!("unknown type {other:?}; one of string, int, bool, enum, date, reference"),
            );
            return None;
        }
    };
    let default = match &definition.default_value {
        None => None,
        Some(value) => {
            match attribute_to_json(value).map(|json| AttrValue::from_json(&attr_type, &json)) {
                Some(Ok(value)) => Some(value),
                Some(Err(error)) => {
                    violations.push(format!("{field}.default_value"), error.to_string());
                    return None;
                }
                None => None,
            }
        }
    };
    Some(AttributeDef {
        name: definition.name.clone(),
        attr_type,
        required: definition.required,
        default,
    })
}

pub fn class_to_pb(catalog: &ClassCatalog, class: &CiClass, builtin: bool) -> pb::CiClass {
    let own: Vec<&str> = class.attributes.iter().map(|a| a.name.as_str()).collect();
    pb::CiClass {
        name: class.name.clone(),
        label: class.label.clone(),
        parent: class.parent.clone().unwrap_or_default(),
        r#abstract: class.abstract_class,
        attributes: class
            .attributes
            .iter()
            .map(attribute_definition_to_pb)
            .collect(),
        inherited_attributes: catalog
            .effective_attributes(&class.name)
            .into_iter()
            .filter(|a| !own.contains(&a.name.as_str()))
            .map(attribute_definition_to_pb)
            .collect(),
        identification_rules: class
            .identification
            .iter()
            .map(|rule| pb::IdentificationRule {
                name: rule.name.clone(),
                attributes: rule.attributes.clone(),
                dependent_relationship: rule
                    .dependent
                    .as_ref()
                    .map_or(0, |d| relationship_type_to_pb(d.relationship) as i32),
                dependent_parent_class: rule
                    .dependent
                    .as_ref()
                    .map(|d| d.parent_class.clone())
                    .unwrap_or_default(),
            })
            .collect(),
        builtin,
    }
}

pub fn class_from_pb(class: &pb::CiClass, violations: &mut Violations) -> CiClass {
    let attributes = class
        .attributes
        .iter()
        .enumerate()
        .filter_map(|(index, definition)| {
            attribute_definition_from_pb(index, definition, violations)
        })
        .collect();
    let identification = class
        .identification_rules
        .iter()
        .map(|rule| {
            let attributes: Vec<&str> = rule.attributes.iter().map(String::as_str).collect();
            let mut domain = IdentificationRule::new(&rule.name, &attributes);
            if let Some(relationship) = relationship_type(rule.dependent_relationship) {
                domain = domain.dependent_on(relationship, &rule.dependent_parent_class);
            }
            domain
        })
        .collect();
    CiClass {
        name: class.name.clone(),
        label: class.label.clone(),
        parent: (!class.parent.is_empty()).then(|| class.parent.clone()),
        attributes,
        identification,
        abstract_class: class.r#abstract,
    }
}

pub fn field_changes_to_pb(changes: &[FieldChange]) -> Vec<common::FieldChange> {
    changes
        .iter()
        .map(|c| common::FieldChange {
            field: c.field.clone(),
            old_value: c.old.clone().unwrap_or_default(),
            new_value: c.new.clone().unwrap_or_default(),
            old_present: c.old.is_some(),
            new_present: c.new.is_some(),
        })
        .collect()
}
