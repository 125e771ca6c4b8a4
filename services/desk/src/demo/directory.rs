//! The demo tenant's directory, seeded through the public API as an admin and an identity
//! provider's sync would: the skill catalog, teams in three regions (1st, 2nd and 3rd line, a
//! network and a database team), then one provisioning batch of agents and requesters with their
//! managers and teams, then the agents' skills and languages. Every step reads first, so a
//! second run changes nothing (the batch previews as unchanged and is discarded).

use std::collections::HashMap;

use desk_proto::directory::v1::{self as pb, directory_service_client::DirectoryServiceClient};
use tonic::transport::Channel;

use super::with;

/// The provisioning source of the demo's people.
const SOURCE: &str = "demo-seed";

const SKILLS: &[(&str, &str)] = &[
    ("email", "Mail clients, mailboxes, the mail gateway"),
    ("windows", "Windows desktops and servers"),
    ("linux", "Linux servers"),
    ("hardware", "Laptops, monitors, peripherals"),
    ("printing", "Printers and print queues"),
    ("vpn", "Remote access"),
    ("networking", "LAN, WAN, switching and routing"),
    ("firewalls", "Firewall rules and appliances"),
    ("database", "Database operations"),
    ("postgresql", "PostgreSQL"),
    ("sql", "Queries and reports"),
];

struct DemoTeam {
    name: &'static str,
    region: &'static str,
    time_zone: &'static str,
    tier: pb::SupportTier,
    skills: &'static [&'static str],
    follow_the_sun: bool,
}

const TEAMS: &[DemoTeam] = &[
    DemoTeam {
        name: "EMEA 1st line",
        region: "emea",
        time_zone: "Europe/Stockholm",
        tier: pb::SupportTier::FirstLine,
        skills: &["email", "hardware", "printing", "vpn", "windows"],
        follow_the_sun: true,
    },
    DemoTeam {
        name: "APAC 1st line",
        region: "apac",
        time_zone: "Asia/Jakarta",
        tier: pb::SupportTier::FirstLine,
        skills: &["email", "hardware", "printing", "vpn", "windows"],
        follow_the_sun: true,
    },
    DemoTeam {
        name: "AMER 1st line",
        region: "amer",
        time_zone: "America/Sao_Paulo",
        tier: pb::SupportTier::FirstLine,
        skills: &["email", "hardware", "printing", "vpn", "windows"],
        follow_the_sun: true,
    },
    DemoTeam {
        name: "EMEA 2nd line",
        region: "emea",
        time_zone: "Europe/Stockholm",
        tier: pb::SupportTier::SecondLine,
        skills: &["email", "linux", "vpn", "windows"],
        follow_the_sun: false,
    },
    DemoTeam {
        name: "APAC 2nd line",
        region: "apac",
        time_zone: "Asia/Jakarta",
        tier: pb::SupportTier::SecondLine,
        skills: &["email", "linux", "windows"],
        follow_the_sun: false,
    },
    DemoTeam {
        name: "AMER 2nd line",
        region: "amer",
        time_zone: "America/Sao_Paulo",
        tier: pb::SupportTier::SecondLine,
        skills: &["email", "linux", "windows"],
        follow_the_sun: false,
    },
    DemoTeam {
        name: "Network",
        region: "emea",
        time_zone: "Europe/Stockholm",
        tier: pb::SupportTier::ThirdLine,
        skills: &["firewalls", "networking", "vpn"],
        follow_the_sun: false,
    },
    DemoTeam {
        name: "Database",
        region: "apac",
        time_zone: "Asia/Jakarta",
        tier: pb::SupportTier::ThirdLine,
        skills: &["database", "postgresql", "sql"],
        follow_the_sun: false,
    },
];

struct DemoPerson {
    subject: &'static str,
    name: &'static str,
    email: &'static str,
    locale: &'static str,
    time_zone: &'static str,
    manager: &'static str,
    department: &'static str,
    /// `(team, lead)`.
    teams: &'static [(&'static str, bool)],
    /// Agents only: `(skill, level)`, languages and capacity.
    skills: &'static [(&'static str, i32)],
    languages: &'static [&'static str],
}

const fn requester(
    subject: &'static str,
    name: &'static str,
    email: &'static str,
    locale: &'static str,
    time_zone: &'static str,
    manager: &'static str,
    department: &'static str,
) -> DemoPerson {
    DemoPerson {
        subject,
        name,
        email,
        locale,
        time_zone,
        manager,
        department,
        teams: &[],
        skills: &[],
        languages: &[],
    }
}

const PEOPLE: &[DemoPerson] = &[
    requester(
        "ada",
        "Ada Admin",
        "ada@demo.example",
        "en",
        "Europe/Stockholm",
        "",
        "IT",
    ),
    requester(
        "carl",
        "Carl Chief",
        "carl@demo.example",
        "sv-SE",
        "Europe/Stockholm",
        "",
        "Finance",
    ),
    requester(
        "mona",
        "Mona Manager",
        "mona@demo.example",
        "en-GB",
        "Europe/Stockholm",
        "carl",
        "Finance",
    ),
    requester(
        "rita",
        "Rita Requester",
        "rita@demo.example",
        "sv-SE",
        "Europe/Stockholm",
        "mona",
        "Finance",
    ),
    requester(
        "sam",
        "Sam Lee",
        "sam@demo.example",
        "en",
        "Asia/Jakarta",
        "mona",
        "Engineering",
    ),
    requester(
        "lucia",
        "Lucía Fernández",
        "lucia@demo.example",
        "es",
        "America/Sao_Paulo",
        "carl",
        "Sales",
    ),
    DemoPerson {
        subject: "alex",
        name: "Alex Agent",
        email: "alex@demo.example",
        locale: "en",
        time_zone: "Europe/Stockholm",
        manager: "giulia",
        department: "IT",
        teams: &[("EMEA 1st line", false)],
        skills: &[("email", 3), ("vpn", 3), ("windows", 4)],
        languages: &["en", "sv"],
    },
    DemoPerson {
        subject: "sofia",
        name: "Sofia Lindqvist",
        email: "sofia@demo.example",
        locale: "sv-SE",
        time_zone: "Europe/Stockholm",
        manager: "giulia",
        department: "IT",
        teams: &[("EMEA 1st line", true)],
        skills: &[("email", 4), ("hardware", 3), ("printing", 4)],
        languages: &["sv", "en"],
    },
    DemoPerson {
        subject: "giulia",
        name: "Giulia Rossi",
        email: "giulia@demo.example",
        locale: "it-IT",
        time_zone: "Europe/Stockholm",
        manager: "ada",
        department: "IT",
        teams: &[("EMEA 2nd line", true)],
        skills: &[("email", 5), ("linux", 3), ("windows", 4)],
        languages: &["it", "en", "es"],
    },
    DemoPerson {
        subject: "lars",
        name: "Lars Nilsson",
        email: "lars@demo.example",
        locale: "sv-SE",
        time_zone: "Europe/Stockholm",
        manager: "ada",
        department: "IT",
        teams: &[("Network", true)],
        skills: &[("firewalls", 4), ("networking", 5), ("vpn", 4)],
        languages: &["sv", "en"],
    },
    DemoPerson {
        subject: "budi",
        name: "Budi Santoso",
        email: "budi@demo.example",
        locale: "id-ID",
        time_zone: "Asia/Jakarta",
        manager: "wei",
        department: "IT",
        teams: &[("APAC 1st line", false)],
        skills: &[("email", 3), ("hardware", 4), ("windows", 3)],
        languages: &["id", "en"],
    },
    DemoPerson {
        subject: "wei",
        name: "Wei Zhang",
        email: "wei@demo.example",
        locale: "zh-CN",
        time_zone: "Asia/Jakarta",
        manager: "ada",
        department: "IT",
        teams: &[("APAC 1st line", true), ("APAC 2nd line", true)],
        skills: &[("linux", 4), ("windows", 4)],
        languages: &["zh", "en", "id"],
    },
    DemoPerson {
        subject: "siti",
        name: "Siti Rahma",
        email: "siti@demo.example",
        locale: "id-ID",
        time_zone: "Asia/Jakarta",
        manager: "ada",
        department: "IT",
        teams: &[("Database", true)],
        skills: &[("database", 5), ("postgresql", 5), ("sql", 4)],
        languages: &["id", "en", "zh"],
    },
    DemoPerson {
        subject: "chen",
        name: "Chen Li",
        email: "chen@demo.example",
        locale: "zh-CN",
        time_zone: "Asia/Jakarta",
        manager: "lars",
        department: "IT",
        teams: &[("Network", false)],
        skills: &[("networking", 4), ("vpn", 3)],
        languages: &["zh", "en"],
    },
    DemoPerson {
        subject: "mateo",
        name: "Mateo García",
        email: "mateo@demo.example",
        locale: "es",
        time_zone: "America/Sao_Paulo",
        manager: "camila",
        department: "IT",
        teams: &[("AMER 1st line", false)],
        skills: &[("email", 3), ("printing", 3), ("windows", 3)],
        languages: &["es", "en"],
    },
    DemoPerson {
        subject: "camila",
        name: "Camila Souza",
        email: "camila@demo.example",
        locale: "es",
        time_zone: "America/Sao_Paulo",
        manager: "ada",
        department: "IT",
        teams: &[("AMER 1st line", true), ("AMER 2nd line", true)],
        skills: &[("linux", 4), ("sql", 3), ("windows", 4)],
        languages: &["es", "en", "it"],
    },
];

/// What the directory seeding made: people and teams in the tenant's directory.
pub struct Seeded {
    pub people: usize,
    pub teams: usize,
}

/// Seeds the demo directory as `admin`.
pub async fn seed(
    channel: Channel,
    admin: &str,
    calendars: &HashMap<&'static str, String>,
) -> anyhow::Result<Seeded> {
    let mut client = DirectoryServiceClient::new(channel);
    seed_catalog(&mut client, admin).await?;
    let teams = seed_teams(&mut client, admin, calendars).await?;
    seed_people(&mut client, admin).await?;
    seed_agents(&mut client, admin).await?;
    Ok(Seeded {
        people: PEOPLE.len(),
        teams,
    })
}

async fn seed_catalog(
    client: &mut DirectoryServiceClient<Channel>,
    admin: &str,
) -> anyhow::Result<()> {
    let current = client
        .get_skill_catalog(with(pb::GetSkillCatalogRequest {}, admin)?)
        .await?
        .into_inner()
        .catalog
        .unwrap_or_default();
    if current.version > 0 {
        return Ok(());
    }
    let skills = SKILLS
        .iter()
        .map(|(name, description)| pb::SkillDefinition {
            name: (*name).to_owned(),
            description: (*description).to_owned(),
        })
        .collect();
    client
        .set_skill_catalog(with(
            pb::SetSkillCatalogRequest {
                skills,
                expected_version: 0,
            },
            admin,
        )?)
        .await?;
    Ok(())
}

/// Creates the teams the tenant does not have yet (by name); returns how many it has.
async fn seed_teams(
    client: &mut DirectoryServiceClient<Channel>,
    admin: &str,
    calendars: &HashMap<&'static str, String>,
) -> anyhow::Result<usize> {
    let existing: Vec<String> = client
        .list_teams(with(
            pb::ListTeamsRequest {
                page_size: 500,
                ..Default::default()
            },
            admin,
        )?)
        .await?
        .into_inner()
        .teams
        .into_iter()
        .map(|team| team.name)
        .collect();
    for team in TEAMS
        .iter()
        .filter(|t| !existing.iter().any(|name| name == t.name))
    {
        let request = pb::CreateTeamRequest {
            name: team.name.into(),
            region: team.region.into(),
            time_zone: team.time_zone.into(),
            // The SLA service owns calendars: the one seeded for the team's region.
            calendar_id: calendars.get(team.region).cloned().unwrap_or_default(),
            tier: team.tier as i32,
            skills: team.skills.iter().map(|s| (*s).to_owned()).collect(),
            follow_the_sun: team.follow_the_sun,
            idempotency_key: format!("demo-team-{}", team.name.to_lowercase().replace(' ', "-")),
            ..Default::default()
        };
        client.create_team(with(request, admin)?).await?;
    }
    Ok(TEAMS.len().max(existing.len()))
}

/// One provisioning batch of everyone, as an identity provider's sync sends it; committed when it
/// changes something, discarded when a second run finds everything unchanged.
async fn seed_people(
    client: &mut DirectoryServiceClient<Channel>,
    admin: &str,
) -> anyhow::Result<()> {
    let people = PEOPLE
        .iter()
        .map(|person| pb::ProvisionedPerson {
            external_id: format!("demo-{}", person.subject),
            subject: person.subject.into(),
            display_name: person.name.into(),
            email: person.email.into(),
            locale: person.locale.into(),
            time_zone: person.time_zone.into(),
            manager_external_id: if person.manager.is_empty() {
                String::new()
            } else {
                format!("demo-{}", person.manager)
            },
            department: person.department.into(),
            teams: person
                .teams
                .iter()
                .map(|(team, lead)| pb::ProvisionedMembership {
                    team: (*team).to_owned(),
                    role: if *lead {
                        pb::MembershipRole::Lead
                    } else {
                        pb::MembershipRole::Member
                    } as i32,
                })
                .collect(),
            ..Default::default()
        })
        .collect();
    let staged = client
        .stage_provisioning(with(
            pb::StageProvisioningRequest {
                source: SOURCE.into(),
                people,
                deactivate_missing: true,
                replace_memberships: true,
            },
            admin,
        )?)
        .await?
        .into_inner()
        .batch
        .unwrap_or_default();
    let changes = staged.creates
        + staged.updates
        + staged.reactivations
        + staged.deactivations
        + staged.memberships_added
        + staged.memberships_removed;
    if changes > 0 {
        client
            .commit_provisioning(with(
                pb::CommitProvisioningRequest { id: staged.id },
                admin,
            )?)
            .await?;
    } else {
        client
            .discard_provisioning(with(
                pb::DiscardProvisioningRequest { id: staged.id },
                admin,
            )?)
            .await?;
    }
    Ok(())
}

/// The agents' skills, languages and capacity, set where they differ.
async fn seed_agents(
    client: &mut DirectoryServiceClient<Channel>,
    admin: &str,
) -> anyhow::Result<()> {
    for agent in PEOPLE.iter().filter(|p| !p.languages.is_empty()) {
        let key = pb::get_person_request::Key::ExternalId(format!("demo-{}", agent.subject));
        let Some(person) = client
            .get_person(with(pb::GetPersonRequest { key: Some(key) }, admin)?)
            .await?
            .into_inner()
            .person
        else {
            continue;
        };
        let wanted = pb::AgentProfile {
            skills: agent
                .skills
                .iter()
                .map(|(name, level)| pb::Skill {
                    name: (*name).to_owned(),
                    level: *level,
                })
                .collect(),
            languages: agent.languages.iter().map(|l| (*l).to_owned()).collect(),
            capacity: 8,
        };
        if person.agent.as_ref() == Some(&wanted) {
            continue;
        }
        client
            .set_agent_profile(with(
                pb::SetAgentProfileRequest {
                    person_id: person.id,
                    expected_version: person.version,
                    agent: Some(wanted),
                },
                admin,
            )?)
            .await?;
    }
    Ok(())
}
