//! The directory's rows (see `matrix/mod.rs` for the format), from its access rules
//! (`services/directory/src/domain/access.rs`): every role but requester reads the tenant's
//! directory; only admins write it. A requester reads their own profile and is told
//! `NOT_FOUND` of other (non-staff) people, exactly as of people who do not exist. Calls the
//! caller's roles do not allow are refused before anything is looked up: `D` for every relation.
//!
//! People: "own" is the caller's own person (subject = the caller's), "same" a neighbour's in
//! the tenant, "other" a stranger's in another tenant. Teams belong to no one: only "same" and
//! "other" apply.

use desk_proto::directory::v1 as pb;
use prost::Message;

use super::{Cell, Probe, Relation, Row, Table};
use crate::desk::call;

const READERS: &[&str] = &[
    "agent",
    "manager",
    "change_manager",
    "cab_member",
    "catalog_admin",
    "admin",
    "integrator",
];
const REQUESTER: &[&str] = &["requester"];
const ADMIN: &[&str] = &["admin"];
const NOT_ADMIN: &[&str] = &[
    "requester",
    "agent",
    "manager",
    "change_manager",
    "cab_member",
    "catalog_admin",
    "integrator",
];

const PROVISIONERS: &[&str] = &["admin", "integrator"];
const NOT_PROVISIONERS: &[&str] = &[
    "requester",
    "agent",
    "manager",
    "change_manager",
    "cab_member",
    "catalog_admin",
];

pub fn rows() -> Table {
    Table {
        service: "desk.directory.v1.DirectoryService",
        file: "tests/security/matrix/directory.rs",
        rows: vec![
            Row::new(
                "WhoAmI",
                |_cell| Box::pin(async { Ok(probe(pb::WhoAmIRequest {}.encode_to_vec())) }),
                vec![(super::ROLES, "A - -")],
            ),
            Row::new(
                "CreatePerson",
                |cell| Box::pin(create_person(cell)),
                vec![(ADMIN, "A - -"), (NOT_ADMIN, "D - -")],
            ),
            Row::new(
                "GetPerson",
                |cell| Box::pin(get_person(cell)),
                vec![(READERS, "A A N"), (REQUESTER, "A N N")],
            ),
            Row::new(
                "UpdatePerson",
                |cell| Box::pin(update_person(cell)),
                vec![(ADMIN, "A A N"), (NOT_ADMIN, "D D D")],
            ),
            Row::new(
                "DeactivatePerson",
                |cell| Box::pin(deactivate_person(cell)),
                vec![(ADMIN, "- A N"), (NOT_ADMIN, "- D D")],
            ),
            Row::new(
                "ReactivatePerson",
                |cell| Box::pin(reactivate_person(cell)),
                vec![(ADMIN, "- A N"), (NOT_ADMIN, "- D D")],
            ),
            // A list shows no one of another tenant (and requesters no one: they use WhoAmI).
            Row::new(
                "ListPeople",
                |cell| Box::pin(list_people(cell)),
                vec![(READERS, "A A F"), (REQUESTER, "D D D")],
            ),
            // A requester follows their own chain; everyone else is not found to them.
            Row::new(
                "GetManagerChain",
                |cell| Box::pin(manager_chain(cell)),
                vec![(READERS, "A A N"), (REQUESTER, "A N N")],
            ),
            Row::new(
                "CreateTeam",
                |cell| Box::pin(create_team(cell)),
                vec![(ADMIN, "A - -"), (NOT_ADMIN, "D - -")],
            ),
            Row::new(
                "GetTeam",
                |cell| {
                    Box::pin(team_request(cell, |id, _| {
                        pb::GetTeamRequest { id }.encode_to_vec()
                    }))
                },
                vec![(READERS, "- A N"), (REQUESTER, "- D D")],
            ),
            Row::new(
                "UpdateTeam",
                |cell| {
                    Box::pin(team_request(cell, |id, expected_version| {
                        pb::UpdateTeamRequest {
                            id,
                            expected_version,
                            description: Some("renamed by the matrix".into()),
                            ..Default::default()
                        }
                        .encode_to_vec()
                    }))
                },
                vec![(ADMIN, "- A N"), (NOT_ADMIN, "- D D")],
            ),
            Row::new(
                "RetireTeam",
                |cell| {
                    Box::pin(team_request(cell, |id, expected_version| {
                        pb::RetireTeamRequest {
                            id,
                            expected_version,
                            reason: "retired by the matrix".into(),
                        }
                        .encode_to_vec()
                    }))
                },
                vec![(ADMIN, "- A N"), (NOT_ADMIN, "- D D")],
            ),
            Row::new(
                "ListTeams",
                |cell| Box::pin(list_teams(cell)),
                vec![(READERS, "- A F"), (REQUESTER, "- D D")],
            ),
            Row::new(
                "FindTeams",
                |_cell| {
                    Box::pin(async {
                        Ok(probe(
                            pb::FindTeamsRequest {
                                skill: "networking".into(),
                                ..Default::default()
                            }
                            .encode_to_vec(),
                        ))
                    })
                },
                vec![(READERS, "A - -"), (REQUESTER, "D - -")],
            ),
            Row::new(
                "SetAgentProfile",
                |cell| Box::pin(set_agent_profile(cell)),
                vec![(ADMIN, "A A N"), (NOT_ADMIN, "D D D")],
            ),
            Row::new(
                "AddMembership",
                |cell| Box::pin(add_membership(cell)),
                vec![(ADMIN, "- A N"), (NOT_ADMIN, "- D D")],
            ),
            Row::new(
                "RemoveMembership",
                |cell| Box::pin(remove_membership(cell)),
                vec![(ADMIN, "- A N"), (NOT_ADMIN, "- D D")],
            ),
            Row::new(
                "ListTeamMembers",
                |cell| {
                    Box::pin(team_request(cell, |team_id, _| {
                        pb::ListTeamMembersRequest {
                            team_id,
                            ..Default::default()
                        }
                        .encode_to_vec()
                    }))
                },
                vec![(READERS, "- A N"), (REQUESTER, "- D D")],
            ),
            // Staff set their own presence; only admins set anyone else's.
            Row::new(
                "SetPresence",
                |cell| Box::pin(set_presence(cell)),
                vec![
                    (ADMIN, "A A N"),
                    (
                        &[
                            "agent",
                            "manager",
                            "change_manager",
                            "cab_member",
                            "catalog_admin",
                            "integrator",
                        ],
                        "A D N",
                    ),
                    (REQUESTER, "D D D"),
                ],
            ),
            Row::new(
                "GetSkillCatalog",
                |_cell| {
                    Box::pin(async { Ok(probe(pb::GetSkillCatalogRequest {}.encode_to_vec())) })
                },
                vec![(READERS, "A - -"), (REQUESTER, "D - -")],
            ),
            Row::new(
                "SetSkillCatalog",
                |cell| Box::pin(set_skill_catalog(cell)),
                vec![(ADMIN, "A - -"), (NOT_ADMIN, "D - -")],
            ),
            Row::new(
                "ListProvisionings",
                |_cell| {
                    Box::pin(async {
                        Ok(probe(
                            pb::ListProvisioningsRequest::default().encode_to_vec(),
                        ))
                    })
                },
                vec![
                    (&["admin", "integrator"], "A - -"),
                    (
                        &[
                            "requester",
                            "agent",
                            "manager",
                            "change_manager",
                            "cab_member",
                            "catalog_admin",
                        ],
                        "D - -",
                    ),
                ],
            ),
            Row::new(
                "StageProvisioning",
                |cell| Box::pin(async move { Ok(probe(new_provisioning(&cell).encode_to_vec())) }),
                vec![(PROVISIONERS, "A - -"), (NOT_PROVISIONERS, "D - -")],
            ),
            Row::new(
                "GetProvisioning",
                |cell| {
                    Box::pin(provisioning_request(cell, |id| {
                        pb::GetProvisioningRequest { id }.encode_to_vec()
                    }))
                },
                vec![(PROVISIONERS, "- A N"), (NOT_PROVISIONERS, "- D D")],
            ),
            Row::new(
                "CommitProvisioning",
                |cell| {
                    Box::pin(provisioning_request(cell, |id| {
                        pb::CommitProvisioningRequest { id }.encode_to_vec()
                    }))
                },
                vec![(PROVISIONERS, "- A N"), (NOT_PROVISIONERS, "- D D")],
            ),
            Row::new(
                "DiscardProvisioning",
                |cell| {
                    Box::pin(provisioning_request(cell, |id| {
                        pb::DiscardProvisioningRequest { id }.encode_to_vec()
                    }))
                },
                vec![(PROVISIONERS, "- A N"), (NOT_PROVISIONERS, "- D D")],
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

async fn ask<Response: Message + Default>(
    cell: &Cell,
    method: &str,
    authorization: &str,
    request: impl Message,
) -> anyhow::Result<Response> {
    let answer = call(
        cell.gateway.clone(),
        &format!("/desk.directory.v1.DirectoryService/{method}"),
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

fn owner_admin(cell: &Cell) -> String {
    let (_, tenant) = cell.owner();
    Cell::token_of("sec-setup-admin", tenant, &["admin"])
}

/// The cell's owner as a person of their tenant (the caller's own person for "own"; created
/// once per subject, so "own" finds the one made before).
async fn owner_person(cell: &Cell) -> anyhow::Result<pb::Person> {
    let (subject, _) = cell.owner();
    let admin = owner_admin(cell);
    let found = call(
        cell.gateway.clone(),
        "/desk.directory.v1.DirectoryService/GetPerson",
        pb::GetPersonRequest {
            key: Some(pb::get_person_request::Key::Subject(subject.clone())),
        }
        .encode_to_vec()
        .into(),
        Some(&admin),
    )
    .await?;
    if found.code == tonic::Code::Ok {
        let response = pb::GetPersonResponse::decode(found.body)?;
        return response
            .person
            .ok_or_else(|| anyhow::anyhow!("GetPerson answered no person"));
    }
    let response: pb::CreatePersonResponse = ask(
        cell,
        "CreatePerson",
        &admin,
        pb::CreatePersonRequest {
            subject: subject.clone(),
            display_name: format!("Person {subject}"),
            email: format!("{subject}@example.com"),
            ..Default::default()
        },
    )
    .await?;
    response
        .person
        .ok_or_else(|| anyhow::anyhow!("CreatePerson answered no person"))
}

async fn create_person(cell: Cell) -> anyhow::Result<Probe> {
    let subject = format!("new-person-{}", cell.unique);
    Ok(probe(
        pb::CreatePersonRequest {
            display_name: format!("Person {subject}"),
            email: format!("{subject}@example.com"),
            subject,
            ..Default::default()
        }
        .encode_to_vec(),
    ))
}

async fn get_person(cell: Cell) -> anyhow::Result<Probe> {
    let person = owner_person(&cell).await?;
    Ok(probe(
        pb::GetPersonRequest {
            key: Some(pb::get_person_request::Key::Id(person.id)),
        }
        .encode_to_vec(),
    ))
}

async fn update_person(cell: Cell) -> anyhow::Result<Probe> {
    let person = owner_person(&cell).await?;
    Ok(probe(
        pb::UpdatePersonRequest {
            id: person.id,
            expected_version: person.version,
            department: Some(format!("matrix {}", cell.unique)),
            ..Default::default()
        }
        .encode_to_vec(),
    ))
}

async fn deactivate_person(cell: Cell) -> anyhow::Result<Probe> {
    // A person of their own, not the owner's: deactivating the caller would change later rows.
    let person = fresh_person(&cell).await?;
    Ok(probe(
        pb::DeactivatePersonRequest {
            id: person.id,
            expected_version: person.version,
            reason: "left".into(),
        }
        .encode_to_vec(),
    ))
}

async fn reactivate_person(cell: Cell) -> anyhow::Result<Probe> {
    let person = fresh_person(&cell).await?;
    let deactivated: pb::DeactivatePersonResponse = ask(
        &cell,
        "DeactivatePerson",
        &owner_admin(&cell),
        pb::DeactivatePersonRequest {
            id: person.id.clone(),
            expected_version: person.version,
            reason: "left".into(),
        },
    )
    .await?;
    let version = deactivated.person.map_or(person.version, |p| p.version);
    Ok(probe(
        pb::ReactivatePersonRequest {
            id: person.id,
            expected_version: version,
        }
        .encode_to_vec(),
    ))
}

/// A new person in the owner's tenant (never the caller's own: deactivating it would change
/// the rows after).
async fn fresh_person(cell: &Cell) -> anyhow::Result<pb::Person> {
    let subject = format!("{}-fresh", cell.owner().0);
    let response: pb::CreatePersonResponse = ask(
        cell,
        "CreatePerson",
        &owner_admin(cell),
        pb::CreatePersonRequest {
            display_name: format!("Person {subject}"),
            subject,
            ..Default::default()
        },
    )
    .await?;
    response
        .person
        .ok_or_else(|| anyhow::anyhow!("CreatePerson answered no person"))
}

async fn list_people(cell: Cell) -> anyhow::Result<Probe> {
    let person = owner_person(&cell).await?;
    Ok(Probe {
        request: pb::ListPeopleRequest {
            text: person.display_name.clone(),
            ..Default::default()
        }
        .encode_to_vec(),
        secret: Some(person.id),
    })
}

async fn manager_chain(cell: Cell) -> anyhow::Result<Probe> {
    let person = owner_person(&cell).await?;
    Ok(probe(
        pb::GetManagerChainRequest {
            person_id: person.id,
        }
        .encode_to_vec(),
    ))
}

async fn create_team(cell: Cell) -> anyhow::Result<Probe> {
    Ok(probe(
        pb::CreateTeamRequest {
            name: format!("Matrix team {}", cell.unique),
            ..Default::default()
        }
        .encode_to_vec(),
    ))
}

/// A team of the owner's tenant, created by its admin.
async fn owner_team(cell: &Cell) -> anyhow::Result<pb::Team> {
    let response: pb::CreateTeamResponse = ask(
        cell,
        "CreateTeam",
        &owner_admin(cell),
        pb::CreateTeamRequest {
            name: format!("Fixture team {}", cell.unique),
            ..Default::default()
        },
    )
    .await?;
    response
        .team
        .ok_or_else(|| anyhow::anyhow!("CreateTeam answered no team"))
}

async fn team_request(cell: Cell, request: fn(String, i64) -> Vec<u8>) -> anyhow::Result<Probe> {
    let team = owner_team(&cell).await?;
    Ok(probe(request(team.id, team.version)))
}

async fn list_teams(cell: Cell) -> anyhow::Result<Probe> {
    let team = owner_team(&cell).await?;
    // Only another tenant's team is looked for: the tenant's own list may page past a new one.
    let secret = (cell.relation == Relation::OtherTenant).then_some(team.id);
    Ok(Probe {
        request: pb::ListTeamsRequest::default().encode_to_vec(),
        secret,
    })
}

async fn set_agent_profile(cell: Cell) -> anyhow::Result<Probe> {
    let person = owner_person(&cell).await?;
    Ok(probe(
        pb::SetAgentProfileRequest {
            person_id: person.id,
            expected_version: person.version,
            agent: Some(pb::AgentProfile {
                languages: vec!["en".into()],
                capacity: 5,
                ..Default::default()
            }),
        }
        .encode_to_vec(),
    ))
}

async fn add_membership(cell: Cell) -> anyhow::Result<Probe> {
    let team = owner_team(&cell).await?;
    let person = fresh_person(&cell).await?;
    Ok(probe(
        pb::AddMembershipRequest {
            team_id: team.id,
            person_id: person.id,
            role: pb::MembershipRole::Member as i32,
        }
        .encode_to_vec(),
    ))
}

async fn remove_membership(cell: Cell) -> anyhow::Result<Probe> {
    let team = owner_team(&cell).await?;
    let person = fresh_person(&cell).await?;
    let _: pb::AddMembershipResponse = ask(
        &cell,
        "AddMembership",
        &owner_admin(&cell),
        pb::AddMembershipRequest {
            team_id: team.id.clone(),
            person_id: person.id.clone(),
            role: pb::MembershipRole::Member as i32,
        },
    )
    .await?;
    Ok(probe(
        pb::RemoveMembershipRequest {
            team_id: team.id,
            person_id: person.id,
        }
        .encode_to_vec(),
    ))
}

async fn set_presence(cell: Cell) -> anyhow::Result<Probe> {
    let person = owner_person(&cell).await?;
    Ok(probe(
        pb::SetPresenceRequest {
            person_id: person.id,
            status: pb::PresenceStatus::Busy as i32,
            ttl_seconds: 0,
        }
        .encode_to_vec(),
    ))
}

async fn set_skill_catalog(cell: Cell) -> anyhow::Result<Probe> {
    // The tenant's catalog, written back unchanged.
    let current: pb::GetSkillCatalogResponse = ask(
        &cell,
        "GetSkillCatalog",
        &owner_admin(&cell),
        pb::GetSkillCatalogRequest {},
    )
    .await?;
    let catalog = current.catalog.unwrap_or_default();
    Ok(probe(
        pb::SetSkillCatalogRequest {
            skills: catalog.skills,
            expected_version: catalog.version,
        }
        .encode_to_vec(),
    ))
}

fn new_provisioning(cell: &Cell) -> pb::StageProvisioningRequest {
    let subject = format!("provisioned-{}", cell.unique);
    pb::StageProvisioningRequest {
        source: "matrix".into(),
        people: vec![pb::ProvisionedPerson {
            external_id: format!("ext-{subject}"),
            display_name: format!("Person {subject}"),
            email: format!("{subject}@example.com"),
            subject,
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// A provisioning batch staged in the owner's tenant by its admin.
async fn provisioning_request(cell: Cell, request: fn(String) -> Vec<u8>) -> anyhow::Result<Probe> {
    let response: pb::StageProvisioningResponse = ask(
        &cell,
        "StageProvisioning",
        &owner_admin(&cell),
        new_provisioning(&cell),
    )
    .await?;
    let batch = response
        .batch
        .ok_or_else(|| anyhow::anyhow!("StageProvisioning answered no batch"))?;
    Ok(probe(request(batch.id)))
}
