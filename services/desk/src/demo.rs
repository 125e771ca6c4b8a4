//! `desk up --demo`: a demo tenant seeded through the public API (the same path every client
//! takes), with fixed idempotency keys so a second run adds nothing, and tokens to try it with.

use std::net::SocketAddr;

use desk_kit::{auth, settings::AuthSettings};
use desk_proto::tickets::v1::{self as pb, ticket_service_client::TicketServiceClient};
use tonic::{Request, transport::Channel};

pub const TENANT: &str = "demo";

struct DemoTicket {
    key: &'static str,
    ticket_type: pb::TicketType,
    title: &'static str,
    description: &'static str,
    impact: pb::Level,
    urgency: pb::Level,
    channel: pb::Channel,
    category: &'static str,
}

const TICKETS: &[DemoTicket] = &[
    DemoTicket {
        key: "demo-1",
        ticket_type: pb::TicketType::Incident,
        title: "E-mail is down for the whole finance floor",
        description: "Outlook shows 'disconnected' since 08:50 for everyone on floor 3.",
        impact: pb::Level::High,
        urgency: pb::Level::High,
        channel: pb::Channel::Phone,
        category: "email",
    },
    DemoTicket {
        key: "demo-2",
        ticket_type: pb::TicketType::Incident,
        title: "VPN drops every 10 minutes",
        description: "Working from home; the VPN client reconnects every ten minutes.",
        impact: pb::Level::Low,
        urgency: pb::Level::Medium,
        channel: pb::Channel::Portal,
        category: "network",
    },
    DemoTicket {
        key: "demo-3",
        ticket_type: pb::TicketType::ServiceRequest,
        title: "New laptop for a starter on Monday",
        description: "Standard developer laptop for Sam Lee, starting Monday.",
        impact: pb::Level::Low,
        urgency: pb::Level::Low,
        channel: pb::Channel::Portal,
        category: "hardware",
    },
    DemoTicket {
        key: "demo-4",
        ticket_type: pb::TicketType::Problem,
        title: "Mail gateway runs out of memory under load",
        description: "Recurring outages of the mail gateway; see linked incidents.",
        impact: pb::Level::High,
        urgency: pb::Level::Medium,
        channel: pb::Channel::Api,
        category: "email",
    },
    DemoTicket {
        key: "demo-5",
        ticket_type: pb::TicketType::Incident,
        title: "Printer on floor 2 jams",
        description: "Tray 2 jams on every job.",
        impact: pb::Level::Low,
        urgency: pb::Level::Low,
        channel: pb::Channel::Mobile,
        category: "printing",
    },
];

fn token(
    settings: &AuthSettings,
    secret: &str,
    sub: &str,
    name: &str,
    roles: &[&str],
    groups: &[&str],
) -> anyhow::Result<String> {
    let mut claims = auth::dev_claims(settings, sub, TENANT, roles, 12 * 3600);
    claims.name = Some(name.to_owned());
    claims.groups = groups.iter().map(|g| (*g).to_owned()).collect();
    auth::mint_dev_token(secret, &claims)
}

fn with<T>(message: T, token: &str) -> anyhow::Result<Request<T>> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse()?);
    Ok(request)
}

/// Seeds the demo tenant and prints the address and tokens.
pub async fn seed(
    address: SocketAddr,
    settings: &AuthSettings,
    secret: &str,
) -> anyhow::Result<()> {
    let requester = token(
        settings,
        secret,
        "rita",
        "Rita Requester",
        &["requester"],
        &[],
    )?;
    let agent = token(
        settings,
        secret,
        "alex",
        "Alex Agent",
        &["agent"],
        &["service-desk"],
    )?;
    let admin = token(settings, secret, "ada", "Ada Admin", &["admin"], &[])?;
    let channel = Channel::from_shared(format!("http://{address}"))?
        .connect()
        .await?;
    let mut client = TicketServiceClient::new(channel);

    let mut created = Vec::new();
    for demo in TICKETS {
        let request = pb::CreateTicketRequest {
            r#type: demo.ticket_type as i32,
            title: demo.title.into(),
            description: demo.description.into(),
            requester_id: "rita".into(),
            channel: demo.channel as i32,
            category: demo.category.into(),
            impact: demo.impact as i32,
            urgency: demo.urgency as i32,
            idempotency_key: demo.key.into(),
            ..Default::default()
        };
        let ticket = client
            .create_ticket(with(request, &agent)?)
            .await?
            .into_inner()
            .ticket
            .unwrap_or_default();
        created.push(ticket);
    }
    // Work a little on first seeding only (a re-run finds the tickets past version 1).
    if let [mail, _, laptop, problem, printer] = created.as_slice() {
        if mail.version == 1 {
            let assign = pb::AssignTicketRequest {
                id: mail.id.clone(),
                expected_version: 1,
                assignment_group_id: "service-desk".into(),
                assignee_id: "alex".into(),
                tier: pb::SupportTier::SecondLine as i32,
                note: "major outage, taking it".into(),
            };
            client.assign_ticket(with(assign, &agent)?).await?;
            client
                .add_link(with(
                    pb::AddLinkRequest {
                        ticket_id: mail.id.clone(),
                        kind: pb::LinkKind::Problem as i32,
                        target_id: problem.id.clone(),
                    },
                    &agent,
                )?)
                .await?;
        }
        if laptop.version == 1 {
            let assign = pb::AssignTicketRequest {
                id: laptop.id.clone(),
                expected_version: 1,
                assignment_group_id: "service-desk".into(),
                ..Default::default()
            };
            client.assign_ticket(with(assign, &agent)?).await?;
        }
        if printer.version == 1 {
            let resolve = pb::ResolveTicketRequest {
                id: printer.id.clone(),
                expected_version: 1,
                resolution_code: "solved_permanently".into(),
                resolution_notes: "Replaced the tray 2 roller.".into(),
            };
            client.resolve_ticket(with(resolve, &agent)?).await?;
        }
    }
    println!(
        "demo tenant {TENANT:?} is ready at {address} with {} tickets; tokens (valid 12 h):",
        created.len()
    );
    println!("  requester rita: {requester}");
    println!("  agent alex:     {agent}");
    println!("  admin ada:      {admin}");
    println!(
        "try: grpcurl -plaintext -H \"authorization: Bearer $TOKEN\" {address} desk.tickets.v1.TicketService/ListTickets"
    );
    Ok(())
}
