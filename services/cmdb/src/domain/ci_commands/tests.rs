use chrono::{DateTime, TimeZone, Utc};
use serde_json::json;
use uuid::Uuid;

use super::*;

fn at(hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 1, hour, 0, 0)
        .single()
        .expect("valid time")
}

fn by(source: &str, hour: u32) -> Provenance {
    Provenance {
        source: source.to_owned(),
        actor: "ada".to_owned(),
        set_at: at(hour),
    }
}

fn attributes(value: Value) -> BTreeMap<String, Value> {
    match value {
        Value::Object(map) => map.into_iter().collect(),
        _ => BTreeMap::new(),
    }
}

fn create_server(name: &str, given: Value) -> CreateCi {
    CreateCi {
        class: "server".into(),
        name: name.into(),
        attributes: attributes(given),
        ..CreateCi::default()
    }
}

fn fields(violations: &Violations) -> Vec<&str> {
    violations.iter().map(|v| v.field.as_str()).collect()
}

/// A server created through the API at 08:00, at version 1.
fn stored_server() -> Ci {
    create_server("web-01", json!({"serial_number": "SN-1", "os": "linux"}))
        .checked(&ClassCatalog::builtin(), Violations::new())
        .expect("a valid create")
        .create(Uuid::from_u128(7), "acme".into(), &by(API_SOURCE, 8))
        .ci
}

#[test]
fn a_create_gives_a_planned_medium_production_ci_with_its_name_trimmed() {
    let new = create_server("  web-01 ", json!({"os": "linux"}))
        .checked(&ClassCatalog::builtin(), Violations::new())
        .expect("a valid create");
    assert_eq!(new.name, "web-01");
    assert_eq!(
        (new.status, new.environment, new.criticality),
        (
            CiStatus::Planned,
            Environment::Production,
            Criticality::Medium
        )
    );
    assert_eq!(
        (&new.owner_group, &new.location, &new.region),
        (&None, &None, &None)
    );
    let write = new.create(Uuid::from_u128(1), "acme".into(), &by(API_SOURCE, 8));
    assert_eq!(write.read_version, None);
    assert_eq!(
        write.fact,
        CiFact::Created {
            source: API_SOURCE.into()
        }
    );
    assert_eq!(write.fact.action(), "created");
    assert_eq!(write.ci.version, 1);
}

#[test]
fn a_create_reports_every_problem_with_those_parsing_found() {
    let mut parsed = Violations::new();
    parsed.push("criticality", "unknown value 9");
    let refused = CreateCi {
        status: Some(CiStatus::Retired),
        location: "DC1\u{7}rack".into(),
        ..create_server("  ", json!({"cpu_count": "8", "colour": "red"}))
    }
    .checked(&ClassCatalog::builtin(), parsed)
    .expect_err("refused");
    let mut named = fields(&refused);
    named.sort_unstable();
    assert_eq!(
        named,
        [
            "attributes.colour",
            "attributes.cpu_count",
            "criticality",
            "location",
            "name",
            "status"
        ]
    );
}

#[test]
fn an_unknown_class_is_a_violation_not_a_missing_class() {
    let refused = CreateCi {
        class: "mainframe".into(),
        ..create_server("big-iron", json!({}))
    }
    .checked(&ClassCatalog::builtin(), Violations::new())
    .expect_err("refused");
    assert_eq!(fields(&refused), ["class"]);
}

#[test]
fn an_update_checks_the_request_then_the_ci_as_stored() {
    let request = UpdateCi {
        expected_version: 0,
        status: Some(CiStatus::Retired),
        name: Some("\u{0}".into()),
        ..UpdateCi::default()
    };
    let refused = request.check(Violations::new()).expect_err("refused");
    let mut named = fields(&refused);
    named.sort_unstable();
    assert_eq!(named, ["expected_version", "name", "status"]);

    let ci = stored_server();
    let stale = UpdateCi {
        expected_version: 2,
        ..UpdateCi::default()
    };
    assert_eq!(
        stale.apply(&ClassCatalog::builtin(), &ci, &by(API_SOURCE, 9)),
        Err(CiWriteError::Stale {
            expected: 2,
            current: 1
        })
    );
    let wrong_type = UpdateCi {
        expected_version: 1,
        attributes: attributes(json!({"ram_gb": "lots"})),
        ..UpdateCi::default()
    };
    assert!(matches!(
        wrong_type.apply(&ClassCatalog::builtin(), &ci, &by(API_SOURCE, 9)),
        Err(CiWriteError::Invalid(violations)) if fields(&violations) == ["attributes.ram_gb"]
    ));
}

#[test]
fn an_update_writes_what_changes_and_nothing_when_nothing_does() {
    let ci = stored_server();
    let update = UpdateCi {
        expected_version: 1,
        name: Some(" web-01 ".into()),
        location: Some("DC1".into()),
        attributes: attributes(json!({"os": null, "cpu_count": 8})),
        ..UpdateCi::default()
    };
    let write = update
        .apply(&ClassCatalog::builtin(), &ci, &by(API_SOURCE, 9))
        .expect("applies")
        .expect("a change");
    assert_eq!(write.read_version, Some(1));
    assert_eq!(write.ci.version, 2);
    assert_eq!(
        write
            .changes
            .iter()
            .map(|change| change.field.as_str())
            .collect::<Vec<_>>(),
        ["location", "attributes.cpu_count", "attributes.os"]
    );
    assert_eq!(
        write.fact,
        CiFact::Updated {
            source: API_SOURCE.into(),
            changes: write.changes.clone()
        }
    );

    let same = UpdateCi {
        expected_version: 1,
        name: Some("web-01".into()),
        attributes: attributes(json!({"os": "linux"})),
        ..UpdateCi::default()
    };
    assert_eq!(
        same.apply(&ClassCatalog::builtin(), &ci, &by(API_SOURCE, 9)),
        Ok(None)
    );
}

#[test]
fn a_retired_ci_cannot_be_updated_nor_retired_again() {
    let retire = RetireCi {
        expected_version: 1,
        reason: " decommissioned ".into(),
    };
    let write = retire
        .apply(stored_server(), &by(API_SOURCE, 9))
        .expect("retires");
    assert_eq!(write.ci.status, CiStatus::Retired);
    assert_eq!(write.note.as_deref(), Some("decommissioned"));
    assert_eq!(
        write.fact,
        CiFact::Retired {
            reason: Some("decommissioned".into())
        }
    );
    assert_eq!(write.fact.action(), "retired");

    let retired = write.ci;
    let update = UpdateCi {
        expected_version: 2,
        location: Some("DC2".into()),
        ..UpdateCi::default()
    };
    assert_eq!(
        update
            .apply(&ClassCatalog::builtin(), &retired, &by(API_SOURCE, 10))
            .map_err(|e| e.to_string()),
        Err("a retired CI cannot be changed".to_owned())
    );
    assert_eq!(
        RetireCi {
            expected_version: 2,
            reason: String::new()
        }
        .apply(retired, &by(API_SOURCE, 10)),
        Err(CiWriteError::Ci(CiError::AlreadyInStatus {
            status: CiStatus::Retired
        }))
    );
}

#[test]
fn a_retirement_reason_is_bounded_and_may_span_lines() {
    let ok = RetireCi {
        expected_version: 1,
        reason: "moved\nto DC2\tfor good".into(),
    };
    assert_eq!(ok.check(Violations::new()), Ok(()));
    for reason in ["x".repeat(REASON_MAX + 1), "bell\u{7}".to_owned()] {
        let refused = RetireCi {
            expected_version: 1,
            reason,
        }
        .check(Violations::new())
        .expect_err("refused");
        assert_eq!(fields(&refused), ["reason"]);
    }
}
