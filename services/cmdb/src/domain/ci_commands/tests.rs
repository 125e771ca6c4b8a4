use chrono::{DateTime, TimeZone, Utc};
use serde_json::json;
use uuid::Uuid;

use super::*;
use crate::domain::{Identification, SourcePrecedence};

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

fn matched(ci: &Ci) -> Identification {
    Identification::Matched {
        ci: Box::new(ci.clone()),
        rule: "serial_number".into(),
    }
}

/// A server SCCM discovered at 08:00, with its os.
fn discovered_server() -> Ci {
    let mut ci = stored_server();
    for provenance in ci.provenance.values_mut() {
        provenance.source = "sccm".into();
    }
    ci
}

#[test]
fn a_create_of_a_ci_the_cmdb_has_is_refused_naming_it_unless_merging() {
    let existing = discovered_server();
    let command = create_server("web-01", json!({"serial_number": "SN-1"}));
    let new = command
        .checked(&ClassCatalog::builtin(), Violations::new())
        .expect("valid");
    assert_eq!(
        command.decide(
            new.clone(),
            matched(&existing),
            &SourcePrecedence::default(),
            &by(API_SOURCE, 9)
        ),
        Err(CreateRefused::Identified {
            ci_id: existing.id,
            rule: "serial_number".into()
        })
    );
    assert_eq!(
        command.decide(
            new.clone(),
            Identification::New,
            &SourcePrecedence::default(),
            &by(API_SOURCE, 9)
        ),
        Ok(CreateOutcome::Create(new))
    );
}

#[test]
fn a_merge_updates_what_the_create_gives_as_source_api_under_precedence() {
    let existing = discovered_server();
    let command = CreateCi {
        merge_if_identified: true,
        criticality: Some(Criticality::High),
        location: "DC1".into(),
        ..create_server(
            "web-01",
            json!({"serial_number": "SN-1", "os": "windows", "cpu_count": 16}),
        )
    };
    let new = command
        .checked(&ClassCatalog::builtin(), Violations::new())
        .expect("valid");
    // The tenant trusts SCCM above people for the os.
    let precedence = SourcePrecedence {
        by_field: BTreeMap::from([("os".to_owned(), vec!["sccm".to_owned(), "api".to_owned()])]),
        ..SourcePrecedence::default()
    };
    let outcome = command
        .decide(new, matched(&existing), &precedence, &by(API_SOURCE, 9))
        .expect("merged");
    let CreateOutcome::Merge {
        into,
        rule,
        write: Some(write),
    } = outcome
    else {
        panic!("expected a merge that writes, got {outcome:?}");
    };
    assert_eq!((into.id, rule.as_str()), (existing.id, "serial_number"));
    assert_eq!(write.read_version, Some(1));
    let changed: Vec<&str> = write.changes.iter().map(|c| c.field.as_str()).collect();
    assert_eq!(changed, ["criticality", "location", "attributes.cpu_count"]);
    assert_eq!(write.ci.attributes.get("os"), existing.attributes.get("os"));
    assert_eq!(
        write
            .ci
            .provenance
            .get("cpu_count")
            .map(|p| p.source.as_str()),
        Some(API_SOURCE)
    );
    assert_eq!(
        write.ci.status, existing.status,
        "a status not given is left alone"
    );
    assert!(matches!(write.fact, CiFact::Updated { ref source, .. } if source == API_SOURCE));
}

#[test]
fn a_merge_that_changes_nothing_writes_nothing_and_one_the_lifecycle_forbids_is_refused() {
    let existing = discovered_server();
    let same = CreateCi {
        merge_if_identified: true,
        ..create_server("web-01", json!({"serial_number": "SN-1", "os": "linux"}))
    };
    let new = same
        .checked(&ClassCatalog::builtin(), Violations::new())
        .expect("valid");
    assert!(matches!(
        same.decide(
            new,
            matched(&existing),
            &SourcePrecedence::default(),
            &by(API_SOURCE, 9)
        ),
        Ok(CreateOutcome::Merge { write: None, .. })
    ));

    let mut in_use = existing.clone();
    in_use.status = CiStatus::InUse;
    let back_to_planned = CreateCi {
        merge_if_identified: true,
        status: Some(CiStatus::Planned),
        ..create_server("web-01", json!({"serial_number": "SN-1"}))
    };
    let new = back_to_planned
        .checked(&ClassCatalog::builtin(), Violations::new())
        .expect("valid");
    assert_eq!(
        back_to_planned.decide(
            new,
            matched(&in_use),
            &SourcePrecedence::default(),
            &by(API_SOURCE, 9)
        ),
        Err(CreateRefused::Merge {
            ci_id: in_use.id,
            error: CiError::TransitionNotAllowed {
                from: CiStatus::InUse,
                to: CiStatus::Planned
            }
        })
    );
}

#[test]
fn a_create_matching_several_cis_is_refused_even_when_merging() {
    let command = CreateCi {
        merge_if_identified: true,
        ..create_server("web-01", json!({}))
    };
    let new = command
        .checked(&ClassCatalog::builtin(), Violations::new())
        .expect("valid");
    let ids = vec![Uuid::from_u128(1), Uuid::from_u128(2)];
    assert_eq!(
        command.decide(
            new,
            Identification::Ambiguous {
                rule: "name_environment".into(),
                ci_ids: ids.clone()
            },
            &SourcePrecedence::default(),
            &by(API_SOURCE, 9)
        ),
        Err(CreateRefused::Ambiguous {
            rule: "name_environment".into(),
            ci_ids: ids
        })
    );
}
