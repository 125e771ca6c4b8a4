//! The classes every tenant has (see the tree in the module docs of [`super`]).

use super::{AttributeDef, AttributeType, BUSINESS_SERVICE, CiClass, ROOT_CLASS};
use crate::domain::identification::IdentificationRule;
use crate::domain::relationship::RelationshipType;

pub(super) fn string(name: &str, max_len: usize) -> AttributeDef {
    AttributeDef::new(name, AttributeType::String { max_len })
}

pub(super) fn int(name: &str, min: Option<i64>, max: Option<i64>) -> AttributeDef {
    AttributeDef::new(name, AttributeType::Int { min, max })
}

pub(super) fn enumeration(name: &str, values: &[&str]) -> AttributeDef {
    AttributeDef::new(
        name,
        AttributeType::Enum {
            values: values.iter().map(|value| (*value).to_owned()).collect(),
        },
    )
}

pub(super) fn class(
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

pub(super) fn builtin_classes() -> Vec<CiClass> {
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
