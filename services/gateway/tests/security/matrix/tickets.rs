//! The tickets service's rows (see `matrix/mod.rs` for the format), from its access rules
//! (`services/tickets/src/domain/access.rs`): staff (agent, manager, admin, integrator) work
//! every ticket of their tenant; everyone else (requester, and the change, CAB and catalog roles,
//! who are requesters on the desk) sees only the tickets they raised or watch, never internal
//! comments, and may not set the staff-only fields. No one sees another tenant's tickets.
//!
//! Work that is staff's alone (assigning, resolving, the worklog, links, problem fields, a
//! staff-only field in a request) is refused to everyone else with `PERMISSION_DENIED` before
//! the ticket is looked up, so `D` for every relation: the answer is the same whatever the id,
//! and tells nothing about which tickets exist. Work anyone may do on a ticket they can read
//! looks the ticket up first: `N` for one they cannot.

use desk_proto::tickets::v1 as pb;
use prost::Message;

use super::{Cell, Probe, Relation, Row, Table};
use crate::desk::call;

const STAFF: &[&str] = &["agent", "manager", "admin", "integrator"];
const NOT_STAFF: &[&str] = &["requester", "change_manager", "cab_member", "catalog_admin"];
const SETTINGS_ROLES: &[&str] = &["manager", "admin"];
const NOT_SETTINGS_ROLES: &[&str] = &[
    "requester",
    "agent",
    "change_manager",
    "cab_member",
    "catalog_admin",
    "integrator",
];

pub fn rows() -> Table {
    Table {
        service: "desk.tickets.v1.TicketService",
        file: "tests/security/matrix/tickets.rs",
        rows: vec![
            // Raising: for oneself anyone; on a neighbour's behalf (requester_id) staff only.
            Row::new(
                "CreateTicket",
                |cell| Box::pin(create_for(cell)),
                vec![(STAFF, "A A -"), (NOT_STAFF, "A D -")],
            ),
            // Protected fields: a requester cannot raise their own priority.
            Row::new(
                "CreateTicket",
                |cell| Box::pin(create_with_impact(cell)),
                vec![(STAFF, "A - -"), (NOT_STAFF, "D - -")],
            ),
            Row::new(
                "GetTicket",
                |cell| Box::pin(get(cell)),
                vec![(STAFF, "A A N"), (NOT_STAFF, "A N N")],
            ),
            // Lists leave out what the caller may not read.
            Row::new(
                "ListTickets",
                |cell| Box::pin(list(cell)),
                vec![(STAFF, "A A F"), (NOT_STAFF, "A F F")],
            ),
            Row::new(
                "UpdateTicket",
                |cell| Box::pin(update_title(cell)),
                vec![(STAFF, "A A N"), (NOT_STAFF, "A N N")],
            ),
            Row::new(
                "UpdateTicket",
                |cell| Box::pin(update_impact(cell)),
                vec![(STAFF, "A A N"), (NOT_STAFF, "D D D")],
            ),
            Row::new(
                "AssignTicket",
                |cell| Box::pin(assign(cell)),
                vec![(STAFF, "A A N"), (NOT_STAFF, "D D D")],
            ),
            Row::new(
                "TransitionTicket",
                |cell| Box::pin(transition(cell)),
                vec![(STAFF, "A A N"), (NOT_STAFF, "D N N")],
            ),
            Row::new(
                "ResolveTicket",
                |cell| Box::pin(resolve(cell)),
                vec![(STAFF, "A A N"), (NOT_STAFF, "D D D")],
            ),
            Row::new(
                "ReopenTicket",
                |cell| Box::pin(reopen(cell)),
                vec![(STAFF, "A A N"), (NOT_STAFF, "A N N")],
            ),
            Row::new(
                "AddComment",
                |cell| Box::pin(comment(cell, pb::Visibility::Public)),
                vec![(STAFF, "A A N"), (NOT_STAFF, "A N N")],
            ),
            Row::new(
                "AddComment",
                |cell| Box::pin(comment(cell, pb::Visibility::Internal)),
                vec![(STAFF, "A A N"), (NOT_STAFF, "D N N")],
            ),
            // Requesters never see internal comments: the list leaves them out.
            Row::new(
                "ListComments",
                |cell| Box::pin(list_comments(cell)),
                vec![(STAFF, "A A N"), (NOT_STAFF, "F N N")],
            ),
            Row::new(
                "AddWorklog",
                |cell| Box::pin(add_worklog(cell)),
                vec![(STAFF, "A A N"), (NOT_STAFF, "D D D")],
            ),
            Row::new(
                "ListWorklog",
                |cell| {
                    Box::pin(by_ticket_id(cell, |ticket_id| {
                        pb::ListWorklogRequest { ticket_id }.encode_to_vec()
                    }))
                },
                vec![(STAFF, "A A N"), (NOT_STAFF, "D D D")],
            ),
            Row::new(
                "AddLink",
                |cell| Box::pin(add_link(cell)),
                vec![(STAFF, "A A N"), (NOT_STAFF, "D D D")],
            ),
            Row::new(
                "ListLinks",
                |cell| {
                    Box::pin(by_ticket_id(cell, |ticket_id| {
                        pb::ListLinksRequest { ticket_id }.encode_to_vec()
                    }))
                },
                vec![(STAFF, "A A N"), (NOT_STAFF, "A N N")],
            ),
            Row::new(
                "UpdateProblem",
                |cell| Box::pin(update_problem(cell)),
                vec![(STAFF, "A A N"), (NOT_STAFF, "D D D")],
            ),
            // Only the requester rates: staff see the ticket but may not.
            Row::new(
                "RateTicket",
                |cell| Box::pin(rate(cell)),
                vec![(STAFF, "A D N"), (NOT_STAFF, "A N N")],
            ),
            Row::new(
                "GetTicketHistory",
                |cell| {
                    Box::pin(by_ticket_id(cell, |id| {
                        pb::GetTicketHistoryRequest { id }.encode_to_vec()
                    }))
                },
                vec![(STAFF, "A A N"), (NOT_STAFF, "D N N")],
            ),
            // Tenant settings: no object; staff read them, managers and admins write them.
            Row::new(
                "GetTicketSettings",
                |_cell| {
                    Box::pin(async { Ok(probe(pb::GetTicketSettingsRequest {}.encode_to_vec())) })
                },
                vec![(STAFF, "A - -"), (NOT_STAFF, "D - -")],
            ),
            Row::new(
                "UpdateTicketSettings",
                |cell| Box::pin(update_settings(cell)),
                vec![(SETTINGS_ROLES, "A - -"), (NOT_SETTINGS_ROLES, "D - -")],
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

/// Calls the tickets service through the gateway as `authorization`, decoding the answer.
async fn ask<Response: Message + Default>(
    cell: &Cell,
    method: &str,
    authorization: &str,
    request: impl Message,
) -> anyhow::Result<Response> {
    let answer = call(
        cell.gateway.clone(),
        &format!("/desk.tickets.v1.TicketService/{method}"),
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

/// An admin of the owner's tenant, who sets tickets up as a test needs them.
fn owner_admin(cell: &Cell) -> String {
    let (_, tenant) = cell.owner();
    Cell::token_of("sec-setup-admin", tenant, &["admin"])
}

/// A ticket raised by the cell's owner (the caller, a neighbour or a stranger): its id, version.
async fn raise(cell: &Cell, r#type: pb::TicketType) -> anyhow::Result<pb::Ticket> {
    let (owner, tenant) = cell.owner();
    let response: pb::CreateTicketResponse = ask(
        cell,
        "CreateTicket",
        &Cell::token_of(&owner, tenant, &["requester"]),
        pb::CreateTicketRequest {
            r#type: r#type as i32,
            title: format!("security matrix {}", cell.unique),
            description: "raised by the security suite".into(),
            ..Default::default()
        },
    )
    .await?;
    response
        .ticket
        .ok_or_else(|| anyhow::anyhow!("CreateTicket answered no ticket"))
}

async fn raise_incident(cell: &Cell) -> anyhow::Result<pb::Ticket> {
    raise(cell, pb::TicketType::Incident).await
}

/// A raised ticket, resolved by an admin of its tenant.
async fn raise_resolved(cell: &Cell) -> anyhow::Result<pb::Ticket> {
    let ticket = raise_incident(cell).await?;
    let admin = owner_admin(cell);
    let response: pb::ResolveTicketResponse = ask(
        cell,
        "ResolveTicket",
        &admin,
        pb::ResolveTicketRequest {
            id: ticket.id.clone(),
            expected_version: ticket.version,
            resolution_code: "solved_permanently".into(),
            resolution_notes: "set up by the security suite".into(),
        },
    )
    .await?;
    response
        .ticket
        .ok_or_else(|| anyhow::anyhow!("ResolveTicket answered no ticket"))
}

async fn by_ticket_id(cell: Cell, request: fn(String) -> Vec<u8>) -> anyhow::Result<Probe> {
    let ticket = raise_incident(&cell).await?;
    Ok(probe(request(ticket.id)))
}

async fn create_for(cell: Cell) -> anyhow::Result<Probe> {
    let requester_id = match cell.relation {
        Relation::Own => String::new(),
        _ => cell.owner().0,
    };
    Ok(probe(
        pb::CreateTicketRequest {
            r#type: pb::TicketType::Incident as i32,
            title: format!("security matrix {}", cell.unique),
            description: "raised in the matrix".into(),
            requester_id,
            ..Default::default()
        }
        .encode_to_vec(),
    ))
}

async fn create_with_impact(cell: Cell) -> anyhow::Result<Probe> {
    Ok(probe(
        pb::CreateTicketRequest {
            r#type: pb::TicketType::Incident as i32,
            title: format!("security matrix {}", cell.unique),
            description: "my own priority, please".into(),
            impact: pb::Level::High as i32,
            urgency: pb::Level::High as i32,
            ..Default::default()
        }
        .encode_to_vec(),
    ))
}

async fn get(cell: Cell) -> anyhow::Result<Probe> {
    let ticket = raise_incident(&cell).await?;
    Ok(probe(
        pb::GetTicketRequest { id: ticket.id }.encode_to_vec(),
    ))
}

async fn list(cell: Cell) -> anyhow::Result<Probe> {
    let ticket = raise_incident(&cell).await?;
    Ok(Probe {
        request: pb::ListTicketsRequest {
            text: format!("security matrix {}", cell.unique),
            ..Default::default()
        }
        .encode_to_vec(),
        secret: Some(ticket.id),
    })
}

async fn update_title(cell: Cell) -> anyhow::Result<Probe> {
    let ticket = raise_incident(&cell).await?;
    Ok(probe(
        pb::UpdateTicketRequest {
            id: ticket.id,
            expected_version: ticket.version,
            title: Some(format!("retitled {}", cell.unique)),
            ..Default::default()
        }
        .encode_to_vec(),
    ))
}

async fn update_impact(cell: Cell) -> anyhow::Result<Probe> {
    let ticket = raise_incident(&cell).await?;
    Ok(probe(
        pb::UpdateTicketRequest {
            id: ticket.id,
            expected_version: ticket.version,
            impact: pb::Level::High as i32,
            ..Default::default()
        }
        .encode_to_vec(),
    ))
}

async fn assign(cell: Cell) -> anyhow::Result<Probe> {
    let ticket = raise_incident(&cell).await?;
    Ok(probe(
        pb::AssignTicketRequest {
            id: ticket.id,
            expected_version: ticket.version,
            assignee_id: "agent-7".into(),
            note: "the matrix assigns".into(),
            ..Default::default()
        }
        .encode_to_vec(),
    ))
}

async fn transition(cell: Cell) -> anyhow::Result<Probe> {
    let ticket = raise_incident(&cell).await?;
    Ok(probe(
        pb::TransitionTicketRequest {
            id: ticket.id,
            expected_version: ticket.version,
            target_status: pb::TicketStatus::InProgress as i32,
            ..Default::default()
        }
        .encode_to_vec(),
    ))
}

async fn resolve(cell: Cell) -> anyhow::Result<Probe> {
    let ticket = raise_incident(&cell).await?;
    Ok(probe(
        pb::ResolveTicketRequest {
            id: ticket.id,
            expected_version: ticket.version,
            resolution_code: "solved_permanently".into(),
            resolution_notes: "the matrix resolves".into(),
        }
        .encode_to_vec(),
    ))
}

async fn reopen(cell: Cell) -> anyhow::Result<Probe> {
    let ticket = raise_resolved(&cell).await?;
    Ok(probe(
        pb::ReopenTicketRequest {
            id: ticket.id,
            expected_version: ticket.version,
            reason: "still broken".into(),
        }
        .encode_to_vec(),
    ))
}

async fn comment(cell: Cell, visibility: pb::Visibility) -> anyhow::Result<Probe> {
    let ticket = raise_incident(&cell).await?;
    Ok(probe(
        pb::AddCommentRequest {
            ticket_id: ticket.id,
            body: "a word from the matrix".into(),
            visibility: visibility as i32,
        }
        .encode_to_vec(),
    ))
}

async fn list_comments(cell: Cell) -> anyhow::Result<Probe> {
    let ticket = raise_incident(&cell).await?;
    let secret = format!("internal note {}", cell.unique);
    let _: pb::AddCommentResponse = ask(
        &cell,
        "AddComment",
        &owner_admin(&cell),
        pb::AddCommentRequest {
            ticket_id: ticket.id.clone(),
            body: secret.clone(),
            visibility: pb::Visibility::Internal as i32,
        },
    )
    .await?;
    Ok(Probe {
        request: pb::ListCommentsRequest {
            ticket_id: ticket.id,
        }
        .encode_to_vec(),
        secret: Some(secret),
    })
}

async fn add_worklog(cell: Cell) -> anyhow::Result<Probe> {
    let ticket = raise_incident(&cell).await?;
    Ok(probe(
        pb::AddWorklogRequest {
            ticket_id: ticket.id,
            minutes: 5,
            note: "the matrix worked".into(),
        }
        .encode_to_vec(),
    ))
}

async fn add_link(cell: Cell) -> anyhow::Result<Probe> {
    let ticket = raise_incident(&cell).await?;
    Ok(probe(
        pb::AddLinkRequest {
            ticket_id: ticket.id,
            kind: pb::LinkKind::CausedByChange as i32,
            target_id: "CHG-000001".into(),
        }
        .encode_to_vec(),
    ))
}

async fn update_problem(cell: Cell) -> anyhow::Result<Probe> {
    let ticket = raise(&cell, pb::TicketType::Problem).await?;
    Ok(probe(
        pb::UpdateProblemRequest {
            id: ticket.id,
            expected_version: ticket.version,
            root_cause: Some("the matrix found it".into()),
            ..Default::default()
        }
        .encode_to_vec(),
    ))
}

async fn rate(cell: Cell) -> anyhow::Result<Probe> {
    let ticket = raise_resolved(&cell).await?;
    Ok(probe(
        pb::RateTicketRequest {
            id: ticket.id,
            rating: 5,
            comment: "thanks".into(),
        }
        .encode_to_vec(),
    ))
}

async fn update_settings(cell: Cell) -> anyhow::Result<Probe> {
    // The tenant's current settings, written back unchanged.
    let current: pb::GetTicketSettingsResponse = ask(
        &cell,
        "GetTicketSettings",
        &owner_admin(&cell),
        pb::GetTicketSettingsRequest {},
    )
    .await?;
    Ok(probe(
        pb::UpdateTicketSettingsRequest {
            settings: current.settings,
        }
        .encode_to_vec(),
    ))
}
