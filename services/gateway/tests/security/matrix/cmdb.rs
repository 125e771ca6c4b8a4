//! The CMDB's rows (see `matrix/mod.rs` for the format), from its access rules
//! (`services/cmdb/src/domain/access.rs`): agents, managers, change managers, CAB members,
//! admins and integrators read it; admins and integrators write it (and configuration managers,
//! a role outside the matrix); requesters and catalog admins read nothing. A call the roles do
//! not allow is refused before anything is looked up: `D` for every relation.
//!
//! CIs belong to no person: only "same" (a CI of the caller's tenant) and "other" (another
//! tenant's) apply.

use desk_proto::cmdb::v1 as pb;
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
const WRITERS: &[&str] = &["admin", "integrator"];
const NOT_WRITERS: &[&str] = &[
    "requester",
    "agent",
    "manager",
    "change_manager",
    "cab_member",
    "catalog_admin",
];

pub fn rows() -> Table {
    Table {
        service: "desk.cmdb.v1.CmdbService",
        file: "tests/security/matrix/cmdb.rs",
        rows: vec![
            Row::new(
                "ListClasses",
                |_cell| Box::pin(async { Ok(probe(pb::ListClassesRequest {}.encode_to_vec())) }),
                vec![(READERS, "A - -"), (NOT_READERS, "D - -")],
            ),
            Row::new(
                "CreateCi",
                |cell| Box::pin(async move { Ok(probe(new_ci(&cell, "created").encode_to_vec())) }),
                vec![(WRITERS, "A - -"), (NOT_WRITERS, "D - -")],
            ),
            Row::new(
                "GetCi",
                |cell| {
                    Box::pin(ci_request(cell, |id, _| {
                        pb::GetCiRequest { id }.encode_to_vec()
                    }))
                },
                vec![(READERS, "- A N"), (NOT_READERS, "- D D")],
            ),
            Row::new(
                "UpdateCi",
                |cell| {
                    Box::pin(ci_request(cell, |id, expected_version| {
                        pb::UpdateCiRequest {
                            id,
                            expected_version,
                            location: Some("moved by the matrix".into()),
                            ..Default::default()
                        }
                        .encode_to_vec()
                    }))
                },
                vec![(WRITERS, "- A N"), (NOT_WRITERS, "- D D")],
            ),
            Row::new(
                "RetireCi",
                |cell| {
                    Box::pin(ci_request(cell, |id, expected_version| {
                        pb::RetireCiRequest {
                            id,
                            expected_version,
                            reason: "retired by the matrix".into(),
                        }
                        .encode_to_vec()
                    }))
                },
                vec![(WRITERS, "- A N"), (NOT_WRITERS, "- D D")],
            ),
            // A list shows nothing of another tenant.
            Row::new(
                "ListCis",
                |cell| Box::pin(list_cis(cell)),
                vec![(READERS, "- A F"), (NOT_READERS, "- D D")],
            ),
            Row::new(
                "GetCiHistory",
                |cell| {
                    Box::pin(ci_request(cell, |id, _| {
                        pb::GetCiHistoryRequest { id }.encode_to_vec()
                    }))
                },
                vec![(READERS, "- A N"), (NOT_READERS, "- D D")],
            ),
            // From a CI of the owner's tenant to one of the caller's: another tenant's source is
            // a field violation, "no such CI", exactly as for a CI that does not exist.
            Row::new(
                "AddRelationship",
                |cell| Box::pin(add_relationship(cell)),
                vec![(WRITERS, "- A I"), (NOT_WRITERS, "- D D")],
            ),
            Row::new(
                "RemoveRelationship",
                |cell| Box::pin(remove_relationship(cell)),
                vec![(WRITERS, "- A N"), (NOT_WRITERS, "- D D")],
            ),
            Row::new(
                "ListRelationships",
                |cell| Box::pin(list_relationships(cell)),
                vec![(READERS, "- A N"), (NOT_READERS, "- D D")],
            ),
            Row::new(
                "AnalyzeImpact",
                |cell| {
                    Box::pin(ci_request(cell, |id, _| {
                        pb::AnalyzeImpactRequest {
                            ci_ids: vec![id],
                            direction: pb::ImpactDirection::Upstream as i32,
                            max_depth: 3,
                            ..Default::default()
                        }
                        .encode_to_vec()
                    }))
                },
                vec![(READERS, "- A N"), (NOT_READERS, "- D D")],
            ),
            Row::new(
                "GetSourcePrecedence",
                |_cell| {
                    Box::pin(async {
                        Ok(probe(
                            pb::GetSourcePrecedenceRequest::default().encode_to_vec(),
                        ))
                    })
                },
                vec![(READERS, "A - -"), (NOT_READERS, "D - -")],
            ),
            Row::new(
                "CreateClass",
                |cell| {
                    Box::pin(async move {
                        Ok(probe(
                            pb::CreateClassRequest {
                                class: Some(pb::CiClass {
                                    name: format!("matrix_class_{}", cell.unique),
                                    label: format!("Matrix class {}", cell.unique),
                                    parent: "application".into(),
                                    ..Default::default()
                                }),
                            }
                            .encode_to_vec(),
                        ))
                    })
                },
                vec![(WRITERS, "A - -"), (NOT_WRITERS, "D - -")],
            ),
            Row::new(
                "StageImport",
                |cell| Box::pin(async move { Ok(probe(new_import(&cell).encode_to_vec())) }),
                vec![(WRITERS, "A - -"), (NOT_WRITERS, "D - -")],
            ),
            Row::new(
                "GetImport",
                |cell| {
                    Box::pin(import_request(cell, |id| {
                        pb::GetImportRequest { id }.encode_to_vec()
                    }))
                },
                vec![(READERS, "- A N"), (NOT_READERS, "- D D")],
            ),
            Row::new(
                "CommitImport",
                |cell| {
                    Box::pin(import_request(cell, |id| {
                        pb::CommitImportRequest { id }.encode_to_vec()
                    }))
                },
                vec![(WRITERS, "- A N"), (NOT_WRITERS, "- D D")],
            ),
            Row::new(
                "DiscardImport",
                |cell| {
                    Box::pin(import_request(cell, |id| {
                        pb::DiscardImportRequest { id }.encode_to_vec()
                    }))
                },
                vec![(WRITERS, "- A N"), (NOT_WRITERS, "- D D")],
            ),
            Row::new(
                "ListImports",
                |_cell| {
                    Box::pin(async { Ok(probe(pb::ListImportsRequest::default().encode_to_vec())) })
                },
                vec![(READERS, "A - -"), (NOT_READERS, "D - -")],
            ),
            // Which source wins is the CMDB owners' to say: integrators (the sources) may not.
            Row::new(
                "SetSourcePrecedence",
                |cell| Box::pin(set_precedence(cell)),
                vec![
                    (&["admin"], "A - -"),
                    (
                        &[
                            "requester",
                            "agent",
                            "manager",
                            "change_manager",
                            "cab_member",
                            "catalog_admin",
                            "integrator",
                        ],
                        "D - -",
                    ),
                ],
            ),
        ],
    }
}

fn probe(request: Vec<u8>) -> Probe {
    Probe {
        request,
        secret: None,
    }
}

fn new_ci(cell: &Cell, what: &str) -> pb::CreateCiRequest {
    pb::CreateCiRequest {
        name: format!("matrix-{what}-{}", cell.unique),
        class: "application".into(),
        status: pb::CiStatus::InUse as i32,
        environment: pb::Environment::Production as i32,
        ..Default::default()
    }
}

async fn ask<Response: Message + Default>(
    cell: &Cell,
    method: &str,
    authorization: &str,
    request: impl Message,
) -> anyhow::Result<Response> {
    let answer = call(
        cell.gateway.clone(),
        &format!("/desk.cmdb.v1.CmdbService/{method}"),
        request.encode_to_vec().into(),
        Some(authorization),
    )
    .await?;
    anyhow::ensure!(
        answer.code == tonic::Code::Ok,
        "setting up with {method}: {:?} {}",
        answer.code,
        answer.message
    );
    Ok(Response::decode(answer.body)?)
}

fn admin_of(tenant: &str) -> String {
    Cell::token_of("sec-setup-admin", tenant, &["admin"])
}

/// A CI of the owner's tenant, `what` in its name.
async fn ci_in(cell: &Cell, tenant: &str, what: &str) -> anyhow::Result<pb::ConfigurationItem> {
    let response: pb::CreateCiResponse =
        ask(cell, "CreateCi", &admin_of(tenant), new_ci(cell, what)).await?;
    response
        .ci
        .ok_or_else(|| anyhow::anyhow!("CreateCi answered no CI"))
}

async fn owner_ci(cell: &Cell) -> anyhow::Result<pb::ConfigurationItem> {
    ci_in(cell, cell.owner().1, "fixture").await
}

async fn ci_request(cell: Cell, request: fn(String, i64) -> Vec<u8>) -> anyhow::Result<Probe> {
    let ci = owner_ci(&cell).await?;
    Ok(probe(request(ci.id, ci.version)))
}

async fn list_cis(cell: Cell) -> anyhow::Result<Probe> {
    let ci = owner_ci(&cell).await?;
    Ok(Probe {
        request: pb::ListCisRequest {
            text: ci.name.clone(),
            ..Default::default()
        }
        .encode_to_vec(),
        secret: Some(ci.id),
    })
}

async fn add_relationship(cell: Cell) -> anyhow::Result<Probe> {
    let source = owner_ci(&cell).await?;
    let target = ci_in(&cell, super::TENANT, "target").await?;
    Ok(probe(
        pb::AddRelationshipRequest {
            source_id: source.id,
            r#type: pb::RelationshipType::DependsOn as i32,
            target_id: target.id,
        }
        .encode_to_vec(),
    ))
}

/// A relationship between two CIs of the owner's tenant.
async fn owner_relationship(cell: &Cell) -> anyhow::Result<pb::Relationship> {
    let tenant = cell.owner().1;
    let source = ci_in(cell, tenant, "source").await?;
    let target = ci_in(cell, tenant, "target").await?;
    let response: pb::AddRelationshipResponse = ask(
        cell,
        "AddRelationship",
        &admin_of(tenant),
        pb::AddRelationshipRequest {
            source_id: source.id,
            r#type: pb::RelationshipType::DependsOn as i32,
            target_id: target.id,
        },
    )
    .await?;
    response
        .relationship
        .ok_or_else(|| anyhow::anyhow!("AddRelationship answered no relationship"))
}

async fn remove_relationship(cell: Cell) -> anyhow::Result<Probe> {
    let relationship = owner_relationship(&cell).await?;
    Ok(probe(
        pb::RemoveRelationshipRequest {
            id: relationship.id,
        }
        .encode_to_vec(),
    ))
}

async fn list_relationships(cell: Cell) -> anyhow::Result<Probe> {
    let relationship = owner_relationship(&cell).await?;
    let secret = (cell.relation == Relation::OtherTenant).then(|| relationship.id.clone());
    Ok(Probe {
        request: pb::ListRelationshipsRequest {
            ci_id: relationship.source_id,
        }
        .encode_to_vec(),
        secret,
    })
}

fn new_import(cell: &Cell) -> pb::StageImportRequest {
    pb::StageImportRequest {
        source: "matrix".into(),
        items: vec![pb::ImportItem {
            local_id: "one".into(),
            class: "application".into(),
            name: format!("matrix-imported-{}", cell.unique),
            environment: pb::Environment::Production as i32,
            status: pb::CiStatus::InUse as i32,
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// An import staged in the owner's tenant by its admin.
async fn import_request(cell: Cell, request: fn(String) -> Vec<u8>) -> anyhow::Result<Probe> {
    let response: pb::StageImportResponse = ask(
        &cell,
        "StageImport",
        &admin_of(cell.owner().1),
        new_import(&cell),
    )
    .await?;
    let batch = response
        .batch
        .ok_or_else(|| anyhow::anyhow!("StageImport answered no batch"))?;
    Ok(probe(request(batch.id)))
}

async fn set_precedence(cell: Cell) -> anyhow::Result<Probe> {
    // The tenant's precedence, written back unchanged.
    let current: pb::GetSourcePrecedenceResponse = ask(
        &cell,
        "GetSourcePrecedence",
        &admin_of(cell.owner().1),
        pb::GetSourcePrecedenceRequest::default(),
    )
    .await?;
    Ok(probe(
        pb::SetSourcePrecedenceRequest {
            precedence: current.precedence,
        }
        .encode_to_vec(),
    ))
}
