//! Change enablement's rows (see `matrix/mod.rs` for the format), from its access rules
//! (`services/change/src/domain/access.rs`): agents, managers, change managers, CAB members,
//! admins and integrators read changes; all of them but CAB members raise (create, edit,
//! submit, cancel) them; change managers and admins manage. Requesters and catalog admins see
//! nothing. A call the roles do not allow is refused before anything is looked up: `D` for
//! every relation.
//!
//! A change belongs to its tenant, not a person: only "same" and "other" apply.

use desk_proto::change::v1 as pb;
use prost::Message;

use super::{Cell, Probe, Relation, Row, Table};
use crate::desk::call;

const READERS: &[&str] = &[
    "agent",
    "manager",
    "change_manager",
    "cab_member",
    "admin",
    "integrator",
];
const NOT_READERS: &[&str] = &["requester", "catalog_admin"];
const RAISERS: &[&str] = &["agent", "manager", "change_manager", "admin", "integrator"];
const NOT_RAISERS: &[&str] = &["requester", "cab_member", "catalog_admin"];

const MANAGERS: &[&str] = &["change_manager", "admin"];
const NOT_MANAGERS: &[&str] = &[
    "requester",
    "agent",
    "manager",
    "cab_member",
    "catalog_admin",
    "integrator",
];

/// Readers who do not manage, who might be a change's implementer.
const IMPLEMENTER_CANDIDATES: &[&str] = &["agent", "manager", "cab_member", "integrator"];

pub fn rows() -> Table {
    Table {
        service: "desk.change.v1.ChangeService",
        file: "tests/security/matrix/change.rs",
        rows: vec![
            Row::new(
                "ListTemplates",
                |_cell| Box::pin(async { Ok(probe(pb::ListTemplatesRequest {}.encode_to_vec())) }),
                vec![(READERS, "A - -"), (NOT_READERS, "D - -")],
            ),
            Row::new(
                "CreateChange",
                |cell| Box::pin(async move { Ok(probe(new_change(&cell).encode_to_vec())) }),
                vec![(RAISERS, "A - -"), (NOT_RAISERS, "D - -")],
            ),
            Row::new(
                "GetChange",
                |cell| {
                    Box::pin(change_request(cell, |id, _| {
                        pb::GetChangeRequest { id }.encode_to_vec()
                    }))
                },
                vec![(READERS, "- A N"), (NOT_READERS, "- D D")],
            ),
            Row::new(
                "UpdateChange",
                |cell| {
                    Box::pin(change_request(cell, |id, expected_version| {
                        pb::UpdateChangeRequest {
                            id,
                            expected_version,
                            summary: Some("rephrased by the matrix".into()),
                            ..Default::default()
                        }
                        .encode_to_vec()
                    }))
                },
                vec![(RAISERS, "- A N"), (NOT_RAISERS, "- D D")],
            ),
            // A list shows nothing of another tenant.
            Row::new(
                "ListChanges",
                |cell| Box::pin(list_changes(cell)),
                vec![(READERS, "- A F"), (NOT_READERS, "- D D")],
            ),
            Row::new(
                "GetChangeHistory",
                |cell| {
                    Box::pin(change_request(cell, |id, _| {
                        pb::GetChangeHistoryRequest { id }.encode_to_vec()
                    }))
                },
                vec![(READERS, "- A N"), (NOT_READERS, "- D D")],
            ),
            Row::new(
                "SubmitChange",
                |cell| {
                    Box::pin(change_request(cell, |id, expected_version| {
                        pb::SubmitChangeRequest {
                            id,
                            expected_version,
                        }
                        .encode_to_vec()
                    }))
                },
                vec![(RAISERS, "- A N"), (NOT_RAISERS, "- D D")],
            ),
            Row::new(
                "CancelChange",
                |cell| {
                    Box::pin(change_request(cell, |id, expected_version| {
                        pb::CancelChangeRequest {
                            id,
                            expected_version,
                            reason: "cancelled by the matrix".into(),
                        }
                        .encode_to_vec()
                    }))
                },
                vec![(RAISERS, "- A N"), (NOT_RAISERS, "- D D")],
            ),
            Row::new(
                "CheckConflicts",
                |cell| {
                    Box::pin(change_request(cell, |change_id, _| {
                        pb::CheckConflictsRequest {
                            change_id,
                            window: Some(window()),
                            ..Default::default()
                        }
                        .encode_to_vec()
                    }))
                },
                vec![(READERS, "- A N"), (NOT_READERS, "- D D")],
            ),
            Row::new(
                "GetChangePolicy",
                |_cell| {
                    Box::pin(async { Ok(probe(pb::GetChangePolicyRequest {}.encode_to_vec())) })
                },
                vec![(READERS, "A - -"), (NOT_READERS, "D - -")],
            ),
            Row::new(
                "GetChangeMetrics",
                |_cell| {
                    Box::pin(async {
                        Ok(probe(
                            pb::GetChangeMetricsRequest {
                                start_time: Some(prost_types::Timestamp {
                                    seconds: 1_700_000_000,
                                    nanos: 0,
                                }),
                                end_time: Some(prost_types::Timestamp {
                                    seconds: 1_700_086_400,
                                    nanos: 0,
                                }),
                                ..Default::default()
                            }
                            .encode_to_vec(),
                        ))
                    })
                },
                vec![(READERS, "A - -"), (NOT_READERS, "D - -")],
            ),
            Row::new(
                "ListSchedule",
                |_cell| {
                    Box::pin(async {
                        Ok(probe(
                            pb::ListScheduleRequest {
                                start_time: Some(prost_types::Timestamp {
                                    seconds: 1_700_000_000,
                                    nanos: 0,
                                }),
                                end_time: Some(prost_types::Timestamp {
                                    seconds: 1_700_086_400,
                                    nanos: 0,
                                }),
                            }
                            .encode_to_vec(),
                        ))
                    })
                },
                vec![(READERS, "A - -"), (NOT_READERS, "D - -")],
            ),
            Row::new(
                "AssessChange",
                |cell| {
                    Box::pin(change_request(cell, |id, expected_version| {
                        pb::AssessChangeRequest {
                            id,
                            expected_version,
                        }
                        .encode_to_vec()
                    }))
                },
                vec![(MANAGERS, "- A N"), (NOT_MANAGERS, "- D D")],
            ),
            Row::new(
                "ScheduleChange",
                |cell| {
                    Box::pin(change_request(cell, |id, expected_version| {
                        pb::ScheduleChangeRequest {
                            id,
                            expected_version,
                            window: Some(window()),
                        }
                        .encode_to_vec()
                    }))
                },
                vec![(MANAGERS, "- A N"), (NOT_MANAGERS, "- D D")],
            ),
            Row::new(
                "CloseChange",
                |cell| {
                    Box::pin(change_request(cell, |id, expected_version| {
                        pb::CloseChangeRequest {
                            id,
                            expected_version,
                            review_notes: "reviewed by the matrix".into(),
                        }
                        .encode_to_vec()
                    }))
                },
                vec![(MANAGERS, "- A N"), (NOT_MANAGERS, "- D D")],
            ),
            // The change's implementer may start and complete it without managing: a reader who
            // is not finds the change (so `D`), unless it is another tenant's.
            Row::new(
                "StartImplementation",
                |cell| {
                    Box::pin(change_request(cell, |id, expected_version| {
                        pb::StartImplementationRequest {
                            id,
                            expected_version,
                        }
                        .encode_to_vec()
                    }))
                },
                vec![
                    (MANAGERS, "- A N"),
                    (IMPLEMENTER_CANDIDATES, "- D N"),
                    (NOT_READERS, "- D D"),
                ],
            ),
            Row::new(
                "CompleteImplementation",
                |cell| {
                    Box::pin(change_request(cell, |id, expected_version| {
                        pb::CompleteImplementationRequest {
                            id,
                            expected_version,
                            successful: true,
                            notes: "done by the matrix".into(),
                        }
                        .encode_to_vec()
                    }))
                },
                vec![
                    (MANAGERS, "- A N"),
                    (IMPLEMENTER_CANDIDATES, "- D N"),
                    (NOT_READERS, "- D D"),
                ],
            ),
            Row::new(
                "SetChangePolicy",
                |cell| Box::pin(set_policy(cell)),
                vec![(MANAGERS, "A - -"), (NOT_MANAGERS, "D - -")],
            ),
            Row::new(
                "CreateTemplate",
                |cell| {
                    Box::pin(async move {
                        Ok(probe(
                            pb::CreateTemplateRequest {
                                template: Some(pb::ChangeTemplate {
                                    name: format!("Matrix template {}", cell.unique),
                                    summary: "a standard change".into(),
                                    implementation_plan: "apply".into(),
                                    backout_plan: "revert".into(),
                                    test_plan: "look".into(),
                                    duration_minutes: 30,
                                    ..Default::default()
                                }),
                            }
                            .encode_to_vec(),
                        ))
                    })
                },
                vec![(MANAGERS, "A - -"), (NOT_MANAGERS, "D - -")],
            ),
            Row::new(
                "CreateFreezeWindow",
                |cell| {
                    Box::pin(async move {
                        Ok(probe(
                            pb::CreateFreezeWindowRequest {
                                window: Some(pb::FreezeWindow {
                                    name: format!("Matrix freeze {}", cell.unique),
                                    reason: "the matrix".into(),
                                    start_time: window().start_time,
                                    end_time: window().end_time,
                                    ..Default::default()
                                }),
                            }
                            .encode_to_vec(),
                        ))
                    })
                },
                vec![(MANAGERS, "A - -"), (NOT_MANAGERS, "D - -")],
            ),
            Row::new(
                "CreateMaintenanceWindow",
                |cell| {
                    Box::pin(async move {
                        Ok(probe(
                            pb::CreateMaintenanceWindowRequest {
                                window: Some(pb::MaintenanceWindow {
                                    name: format!("Matrix maintenance {}", cell.unique),
                                    // Any CI id of the suite's region ("test") will do.
                                    ci_ids: vec![format!(
                                        "test-01900000-0000-7000-8000-{:0>12}",
                                        cell.unique
                                    )],
                                    weekdays: vec![6],
                                    start_local_time: "02:00".into(),
                                    duration_minutes: 120,
                                    time_zone: "UTC".into(),
                                    ..Default::default()
                                }),
                            }
                            .encode_to_vec(),
                        ))
                    })
                },
                vec![(MANAGERS, "A - -"), (NOT_MANAGERS, "D - -")],
            ),
            // The change is looked up first (readers find their tenant's); who votes is the CAB
            // rule's member list, checked after: a draft is answered FAILED_PRECONDITION.
            Row::new(
                "DecideChange",
                |cell| {
                    Box::pin(change_request(cell, |id, _| {
                        pb::DecideChangeRequest {
                            id,
                            verdict: pb::Verdict::Approve as i32,
                            comment: "the matrix approves".into(),
                            ..Default::default()
                        }
                        .encode_to_vec()
                    }))
                },
                vec![(READERS, "- A N"), (NOT_READERS, "- D D")],
            ),
            // Only a member of a CAB rule delegates, whatever their role; the suite's tenant has
            // no CAB rules, so no one.
            Row::new(
                "DelegateApprovals",
                |_cell| {
                    Box::pin(async {
                        Ok(probe(
                            pb::DelegateApprovalsRequest {
                                delegate_id: "a-colleague".into(),
                                until_time: window().end_time,
                            }
                            .encode_to_vec(),
                        ))
                    })
                },
                vec![(super::ROLES, "D - -")],
            ),
            // A slot for a CI of the owner's tenant. The suggestion is computed from the
            // caller's tenant alone (its graph, bookings, freezes): another tenant's CI is as
            // unknown as a made-up id, and answered alike (`F`: nothing of it in the answer).
            Row::new(
                "SuggestSlot",
                |cell| Box::pin(suggest_slot(cell)),
                vec![(READERS, "- A F"), (NOT_READERS, "- D D")],
            ),
        ],
    }
}

/// An hour in 2030, clear of anything else the suite plans.
fn window() -> pb::Window {
    pb::Window {
        start_time: Some(prost_types::Timestamp {
            seconds: 1_900_000_000,
            nanos: 0,
        }),
        end_time: Some(prost_types::Timestamp {
            seconds: 1_900_003_600,
            nanos: 0,
        }),
        time_zone: "UTC".into(),
    }
}

fn probe(request: Vec<u8>) -> Probe {
    Probe {
        request,
        secret: None,
    }
}

fn new_change(cell: &Cell) -> pb::CreateChangeRequest {
    pb::CreateChangeRequest {
        r#type: pb::ChangeType::Normal as i32,
        summary: format!("matrix change {}", cell.unique),
        justification: "the security suite needs one".into(),
        implementation_plan: "apply".into(),
        backout_plan: "revert".into(),
        test_plan: "look".into(),
        ..Default::default()
    }
}

/// A change of the owner's tenant, raised by its admin.
async fn owner_change(cell: &Cell) -> anyhow::Result<pb::Change> {
    let tenant = cell.owner().1;
    let answer = call(
        cell.gateway.clone(),
        "/desk.change.v1.ChangeService/CreateChange",
        new_change(cell).encode_to_vec().into(),
        Some(&Cell::token_of("sec-setup-admin", tenant, &["admin"])),
    )
    .await?;
    anyhow::ensure!(
        answer.code == tonic::Code::Ok,
        "setting up with CreateChange: {:?} {}",
        answer.code,
        answer.message
    );
    pb::CreateChangeResponse::decode(answer.body)?
        .change
        .ok_or_else(|| anyhow::anyhow!("CreateChange answered no change"))
}

async fn change_request(cell: Cell, request: fn(String, i64) -> Vec<u8>) -> anyhow::Result<Probe> {
    let change = owner_change(&cell).await?;
    Ok(probe(request(change.id, change.version)))
}

async fn list_changes(cell: Cell) -> anyhow::Result<Probe> {
    let change = owner_change(&cell).await?;
    // Only another tenant's change is looked for: the tenant's own list may page past a new one.
    let secret = (cell.relation == Relation::OtherTenant).then_some(change.id);
    Ok(Probe {
        request: pb::ListChangesRequest::default().encode_to_vec(),
        secret,
    })
}

async fn set_policy(cell: Cell) -> anyhow::Result<Probe> {
    // The tenant's policy, written back unchanged.
    let tenant = cell.owner().1;
    let answer = call(
        cell.gateway.clone(),
        "/desk.change.v1.ChangeService/GetChangePolicy",
        pb::GetChangePolicyRequest {}.encode_to_vec().into(),
        Some(&Cell::token_of("sec-setup-admin", tenant, &["admin"])),
    )
    .await?;
    anyhow::ensure!(
        answer.code == tonic::Code::Ok,
        "setting up with GetChangePolicy: {:?} {}",
        answer.code,
        answer.message
    );
    let current = pb::GetChangePolicyResponse::decode(answer.body)?;
    Ok(probe(
        pb::SetChangePolicyRequest {
            policy: current.policy,
        }
        .encode_to_vec(),
    ))
}

fn suggest_slot_request(ci_id: String) -> pb::SuggestSlotRequest {
    pb::SuggestSlotRequest {
        affected_ci_ids: vec![ci_id],
        duration_minutes: 60,
        not_before: window().start_time,
        time_zone: "UTC".into(),
        ..Default::default()
    }
}

async fn suggest_slot(cell: Cell) -> anyhow::Result<Probe> {
    use desk_proto::cmdb::v1 as cmdb;
    let tenant = cell.owner().1;
    let admin = Cell::token_of("sec-setup-admin", tenant, &["admin"]);
    let created = call(
        cell.gateway.clone(),
        "/desk.cmdb.v1.CmdbService/CreateCi",
        cmdb::CreateCiRequest {
            name: format!("matrix-slot-{}", cell.unique),
            class: "application".into(),
            status: cmdb::CiStatus::InUse as i32,
            environment: cmdb::Environment::Production as i32,
            ..Default::default()
        }
        .encode_to_vec()
        .into(),
        Some(&admin),
    )
    .await?;
    anyhow::ensure!(
        created.code == tonic::Code::Ok,
        "setting up with CreateCi: {:?} {}",
        created.code,
        created.message
    );
    let ci = cmdb::CreateCiResponse::decode(created.body)?
        .ci
        .ok_or_else(|| anyhow::anyhow!("CreateCi answered no CI"))?;
    // Another tenant's CI id must bring nothing of that tenant into the answer.
    let secret = (cell.relation == Relation::OtherTenant).then(|| ci.id.clone());
    Ok(Probe {
        request: suggest_slot_request(ci.id).encode_to_vec(),
        secret,
    })
}
