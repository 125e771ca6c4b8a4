//! `desk up --demo`: a demo tenant seeded through the public API (the same path every client
//! takes), with fixed idempotency keys so a second run adds nothing, and tokens to try it with.
//! Tickets and the CMDB are seeded here; the directory's people and teams in [`directory`], the
//! service catalog in [`catalog`].

mod catalog;
mod directory;

use std::net::SocketAddr;

use desk_kit::{auth, settings::AuthSettings};
use desk_proto::{
    change::v1::{self as change, change_service_client::ChangeServiceClient},
    cmdb::v1::{self as cmdb, cmdb_service_client::CmdbServiceClient},
    tickets::v1::{self as pb, ticket_service_client::TicketServiceClient},
};
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
    let change_manager = token(
        settings,
        secret,
        "cora",
        "Cora Change Manager",
        &["change_manager"],
        &["cab"],
    )?;
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
    let estate = seed_estate(channel_for_cmdb(address).await?, &admin).await?;
    let people = directory::seed(
        Channel::from_shared(format!("http://{address}"))?
            .connect()
            .await?,
        &admin,
    )
    .await?;
    let changes = seed_changes(address, &admin, &change_manager).await?;
    let offerings = catalog::seed(
        Channel::from_shared(format!("http://{address}"))?
            .connect()
            .await?,
        &admin,
    )
    .await?;
    println!(
        "demo tenant {TENANT:?} is ready at {address} with {} tickets, a CMDB of {estate} CIs, a directory of {} people in {} teams in three regions and {changes} scheduled changes beside a freeze, and a catalog of {offerings} offerings; tokens (valid 12 h):",
        created.len(),
        people.people,
        people.teams
    );
    println!("  requester rita: {requester}");
    println!("  agent alex:     {agent}");
    println!("  admin ada:      {admin}");
    println!("  change manager cora: {change_manager}");
    println!(
        "try: grpcurl -plaintext -H \"authorization: Bearer $TOKEN\" {address} desk.tickets.v1.TicketService/ListTickets"
    );
    Ok(())
}

async fn channel_for_cmdb(address: SocketAddr) -> anyhow::Result<CmdbServiceClient<Channel>> {
    Ok(CmdbServiceClient::new(
        Channel::from_shared(format!("http://{address}"))?
            .connect()
            .await?,
    ))
}

fn text(value: &str) -> cmdb::AttributeValue {
    cmdb::AttributeValue {
        kind: Some(cmdb::attribute_value::Kind::StringValue(value.to_owned())),
    }
}

fn number(value: i64) -> cmdb::AttributeValue {
    cmdb::AttributeValue {
        kind: Some(cmdb::attribute_value::Kind::IntValue(value)),
    }
}

fn item(
    local_id: &str,
    class: &str,
    name: &str,
    attributes: &[(&str, cmdb::AttributeValue)],
) -> cmdb::ImportItem {
    cmdb::ImportItem {
        local_id: local_id.to_owned(),
        class: class.to_owned(),
        name: name.to_owned(),
        environment: cmdb::Environment::Production as i32,
        status: cmdb::CiStatus::InUse as i32,
        attributes: attributes
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect(),
    }
}

fn link(
    source: &str,
    relationship: cmdb::RelationshipType,
    target: &str,
) -> cmdb::ImportRelationship {
    cmdb::ImportRelationship {
        source: source.to_owned(),
        r#type: relationship as i32,
        target: target.to_owned(),
    }
}

/// A small realistic estate, loaded the way a discovery tool would: one staged import, committed.
/// A second run finds everything unchanged.
async fn seed_estate(mut client: CmdbServiceClient<Channel>, admin: &str) -> anyhow::Result<usize> {
    use cmdb::RelationshipType::{ConnectsTo, DependsOn, Provides, RunsOn};
    let mut items = vec![
        item(
            "bs-email",
            "business_service",
            "Email",
            &[
                ("sla_tier", text("gold")),
                ("service_owner", text("Head of Workplace IT")),
            ],
        ),
        item(
            "bs-payroll",
            "business_service",
            "Payroll",
            &[
                ("sla_tier", text("gold")),
                ("service_owner", text("CFO office")),
            ],
        ),
        item(
            "bs-shop",
            "business_service",
            "Web shop",
            &[
                ("sla_tier", text("silver")),
                ("service_owner", text("Head of E-commerce")),
            ],
        ),
        item(
            "as-mail",
            "application_service",
            "Mail delivery",
            &[("url", text("https://mail.example.com"))],
        ),
        item(
            "as-payroll",
            "application_service",
            "Payroll run",
            &[("url", text("https://payroll.example.com"))],
        ),
        item(
            "as-shop",
            "application_service",
            "Shop front",
            &[("url", text("https://shop.example.com"))],
        ),
        item(
            "app-exchange",
            "application",
            "Exchange",
            &[
                ("vendor", text("Microsoft")),
                ("version", text("2019 CU14")),
            ],
        ),
        item(
            "app-payroll",
            "application",
            "PayCalc",
            &[("vendor", text("PayCo")), ("version", text("7.2"))],
        ),
        item(
            "app-shop",
            "application",
            "Storefront",
            &[("vendor", text("in-house")), ("version", text("3.18.0"))],
        ),
        item(
            "db-payroll",
            "database",
            "payroll",
            &[("engine", text("postgresql")), ("port", number(5432))],
        ),
        item(
            "db-shop",
            "database",
            "orders",
            &[("engine", text("postgresql")), ("port", number(5432))],
        ),
    ];
    let mut relationships = vec![
        link("as-mail", Provides, "bs-email"),
        link("as-payroll", Provides, "bs-payroll"),
        link("as-shop", Provides, "bs-shop"),
        link("as-mail", DependsOn, "app-exchange"),
        link("as-payroll", DependsOn, "app-payroll"),
        link("as-shop", DependsOn, "app-shop"),
        link("app-payroll", DependsOn, "db-payroll"),
        link("app-shop", DependsOn, "db-shop"),
    ];
    let placements: [(&str, &[&str]); 3] = [
        ("emea", &["app-exchange", "db-payroll"]),
        ("amer", &["app-shop", "db-shop"]),
        ("apac", &["app-payroll"]),
    ];
    for (region, hosts) in placements {
        let vm = format!("vm-{region}");
        let server = format!("srv-{region}");
        let switch = format!("sw-{region}");
        items.push(item(
            &vm,
            "virtual_machine",
            &format!("{region}-vm-01"),
            &[
                ("fqdn", text(&format!("{region}-vm-01.example.com"))),
                ("os", text("linux")),
                ("hypervisor", text("kvm")),
                ("cpu_count", number(8)),
                ("ram_gb", number(32)),
            ],
        ));
        items.push(item(
            &server,
            "server",
            &format!("{region}-host-01"),
            &[
                (
                    "serial_number",
                    text(&format!("SN-{}-0001", region.to_uppercase())),
                ),
                ("fqdn", text(&format!("{region}-host-01.example.com"))),
                ("os", text("linux")),
                ("cpu_count", number(64)),
                ("ram_gb", number(512)),
            ],
        ));
        items.push(item(
            &switch,
            "network_device",
            &format!("{region}-core-sw"),
            &[
                (
                    "serial_number",
                    text(&format!("SW-{}-77", region.to_uppercase())),
                ),
                ("device_type", text("switch")),
                ("management_ip", text("10.0.0.2")),
            ],
        ));
        relationships.push(link(&vm, RunsOn, &server));
        relationships.push(link(&server, ConnectsTo, &switch));
        for hosted in hosts {
            relationships.push(link(hosted, RunsOn, &vm));
        }
    }
    let count = items.len();
    let stage = cmdb::StageImportRequest {
        source: "demo-seed".into(),
        items,
        relationships,
        skip_invalid: false,
    };
    let batch = client
        .stage_import(with(stage, admin)?)
        .await?
        .into_inner()
        .batch
        .unwrap_or_default();
    if batch.creates + batch.updates > 0 {
        client
            .commit_import(with(cmdb::CommitImportRequest { id: batch.id }, admin)?)
            .await?;
    } else {
        client
            .discard_import(with(cmdb::DiscardImportRequest { id: batch.id }, admin)?)
            .await?;
    }
    Ok(count)
}

// ---- changes ----

fn at(time: chrono::DateTime<chrono::Utc>) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp {
        seconds: time.timestamp(),
        nanos: 0,
    })
}

/// The id of the demo CI named `name`.
async fn ci_named(
    client: &mut CmdbServiceClient<Channel>,
    admin: &str,
    name: &str,
) -> anyhow::Result<String> {
    let found = client
        .list_cis(with(
            cmdb::ListCisRequest {
                text: name.into(),
                page_size: 10,
                ..Default::default()
            },
            admin,
        )?)
        .await?
        .into_inner()
        .cis;
    found
        .into_iter()
        .find(|ci| ci.name == name)
        .map(|ci| ci.id)
        .ok_or_else(|| anyhow::anyhow!("the demo CMDB has no CI named {name:?}"))
}

/// Seeds the change calendar: a standard-change template, a freeze, and three scheduled
/// changes on the demo CMDB, two of which conflict through the dependency graph (the orders
/// database runs on the host another change works on). Windows are days from now; the changes
/// have fixed idempotency keys, and the template and freeze are looked up by name first, so a
/// second run adds nothing. Returns how many changes are scheduled.
async fn seed_changes(address: SocketAddr, admin: &str, manager: &str) -> anyhow::Result<usize> {
    let channel = Channel::from_shared(format!("http://{address}"))?
        .connect()
        .await?;
    let mut cmdb_client = CmdbServiceClient::new(channel.clone());
    let mut client = ChangeServiceClient::new(channel);
    let orders = ci_named(&mut cmdb_client, admin, "orders").await?;
    let host = ci_named(&mut cmdb_client, admin, "amer-host-01").await?;
    let storefront = ci_named(&mut cmdb_client, admin, "Storefront").await?;

    // The change service learns the CMDB from its events: wait (bounded) until it knows the CIs.
    let now = chrono::Utc::now();
    let probe_window = change::Window {
        start_time: at(now + chrono::Duration::days(1)),
        end_time: at(now + chrono::Duration::days(1) + chrono::Duration::hours(1)),
        time_zone: "UTC".into(),
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let probe = client
            .check_conflicts(with(
                change::CheckConflictsRequest {
                    affected_ci_ids: vec![orders.clone(), host.clone(), storefront.clone()],
                    window: Some(probe_window.clone()),
                    ..Default::default()
                },
                manager,
            )?)
            .await;
        match probe {
            Ok(_) => break,
            Err(status)
                if status.code() == tonic::Code::InvalidArgument
                    && std::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
            Err(status) => {
                return Err(anyhow::anyhow!(
                    "the change service does not know the demo CMDB: {status}"
                ));
            }
        }
    }

    let templates = client
        .list_templates(with(change::ListTemplatesRequest {}, manager)?)
        .await?
        .into_inner()
        .templates;
    let template = match templates
        .into_iter()
        .find(|t| t.name == "Restart a storefront node")
    {
        Some(template) => template,
        None => client
            .create_template(with(
                change::CreateTemplateRequest {
                    template: Some(change::ChangeTemplate {
                        name: "Restart a storefront node".into(),
                        summary: "Rolling restart of a storefront node".into(),
                        implementation_plan:
                            "Drain the node from the load balancer, restart, check health, undrain."
                                .into(),
                        backout_plan: "Undrain the node; page the e-commerce on-call.".into(),
                        test_plan: "Health endpoint answers 200; checkout smoke test passes."
                            .into(),
                        duration_minutes: 30,
                        ..Default::default()
                    }),
                },
                manager,
            )?)
            .await?
            .into_inner()
            .template
            .unwrap_or_default(),
    };

    let horizon = change::ListScheduleRequest {
        start_time: at(now),
        end_time: at(now + chrono::Duration::days(90)),
    };
    let calendar = client
        .list_schedule(with(horizon, manager)?)
        .await?
        .into_inner();
    if !calendar
        .freeze_windows
        .iter()
        .any(|f| f.name == "Quarter-end freeze")
    {
        client
            .create_freeze_window(with(
                change::CreateFreezeWindowRequest {
                    window: Some(change::FreezeWindow {
                        name: "Quarter-end freeze".into(),
                        reason: "Finance closes the quarter: no changes but emergencies.".into(),
                        start_time: at(now + chrono::Duration::days(21)),
                        end_time: at(now + chrono::Duration::days(28)),
                        ..Default::default()
                    }),
                },
                manager,
            )?)
            .await?;
    }

    let window = |days: i64, hours: i64| change::Window {
        start_time: at(now + chrono::Duration::days(days)),
        end_time: at(now + chrono::Duration::days(days) + chrono::Duration::hours(hours)),
        time_zone: "America/New_York".into(),
    };
    let plans = |summary: &str| change::CreateChangeRequest {
        r#type: change::ChangeType::Normal as i32,
        summary: summary.into(),
        implementation_plan: "Follow the runbook.".into(),
        backout_plan: "Restore from the snapshot taken before the change.".into(),
        test_plan: "Run the smoke tests.".into(),
        assignment_group_id: "infrastructure".into(),
        ..Default::default()
    };
    let demos = [
        change::CreateChangeRequest {
            affected_ci_ids: vec![orders.clone()],
            planned_window: Some(window(2, 2)),
            implementer_id: "ivan".into(),
            idempotency_key: "demo-chg-1".into(),
            ..plans("Patch the orders database to the latest minor release")
        },
        change::CreateChangeRequest {
            affected_ci_ids: vec![host.clone()],
            planned_window: Some(window(2, 3)),
            implementer_id: "hana".into(),
            idempotency_key: "demo-chg-2".into(),
            ..plans("Replace a power supply of amer-host-01")
        },
        change::CreateChangeRequest {
            r#type: change::ChangeType::Standard as i32,
            template_id: template.id.clone(),
            affected_ci_ids: vec![storefront.clone()],
            planned_window: Some(window(3, 1)),
            idempotency_key: "demo-chg-3".into(),
            ..Default::default()
        },
    ];
    let mut scheduled = 0;
    for request in demos {
        let mut item = client
            .create_change(with(request, manager)?)
            .await?
            .into_inner()
            .change
            .unwrap_or_default();
        // Only a change created just now is walked through its steps (a re-run finds it further).
        if item.version == 1 {
            item = client
                .submit_change(with(
                    change::SubmitChangeRequest {
                        id: item.id.clone(),
                        expected_version: item.version,
                    },
                    manager,
                )?)
                .await?
                .into_inner()
                .change
                .unwrap_or_default();
            if item.state == change::ChangeState::Assessment as i32 {
                item = client
                    .assess_change(with(
                        change::AssessChangeRequest {
                            id: item.id.clone(),
                            expected_version: item.version,
                        },
                        manager,
                    )?)
                    .await?
                    .into_inner()
                    .change
                    .unwrap_or_default();
            }
            item = client
                .schedule_change(with(
                    change::ScheduleChangeRequest {
                        id: item.id.clone(),
                        expected_version: item.version,
                        window: None,
                    },
                    manager,
                )?)
                .await?
                .into_inner()
                .change
                .unwrap_or_default();
        }
        if item.state == change::ChangeState::Scheduled as i32 {
            scheduled += 1;
        }
    }
    Ok(scheduled)
}
