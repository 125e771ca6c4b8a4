//! `desk-bench directory --people 100000 --json`: the directory at a large tenant's scale.
//!
//! Starts nats-server, a throwaway PostgreSQL with synchronous commit on and
//! `desk serve --target directory`, then:
//!
//! 1. creates `--teams` teams across the regions `emea`, `apac` and `amer` and the three tiers,
//!    each with a few skills from a pool, through `CreateTeam`;
//! 2. provisions `--people` people deterministically generated from `--seed` (names, e-mail,
//!    locale, time zone by region, a manager among the people before them, one or two teams by
//!    name) as an identity provider's sync would: `StageProvisioning` then `CommitProvisioning`,
//!    `--batch` people at a time, one batch after the other. `people_per_s` is the people over
//!    the wall time of all stages and commits; the relay publishes the batches' events to NATS
//!    meanwhile (one `person.created` per person, one `membership.added` per membership), and
//!    how long the outbox took to drain after the last commit is reported beside it;
//! 3. at `--concurrency` calls in flight, times `GetPerson` (the person with their teams and
//!    presence) of random people, then `FindTeams` (the active teams with skill X in region Y)
//!    of random skills and regions, after an untimed warm-up of each.
//!
//! Prints one JSON object. Nothing is asserted: numbers are reported.
//!
//! The client runs on one thread (`main` builds a current-thread runtime for this command): the
//! calls in flight are futures on it, so the client takes at most one of the machine's cores
//! from the desk and PostgreSQL.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use clap::Parser;
use desk_proto::directory::v1::{self as pb, directory_service_client::DirectoryServiceClient};
use hdrhistogram::Histogram;
use serde_json::json;
use tokio::sync::Mutex;
use tonic::{
    Request,
    metadata::{Ascii, MetadataValue},
    transport::Channel,
};

use super::{DeskLaunch, dev_token, pid_cpu_seconds, process_cpu_seconds};

const TENANT: &str = "bench";
const SOURCE: &str = "bench-idp";
const REGIONS: [(&str, &str); 3] = [
    ("emea", "Europe/Stockholm"),
    ("apac", "Asia/Jakarta"),
    ("amer", "America/Sao_Paulo"),
];
const TIERS: [pb::SupportTier; 3] = [
    pb::SupportTier::FirstLine,
    pb::SupportTier::SecondLine,
    pb::SupportTier::ThirdLine,
];
const SKILLS: [&str; 24] = [
    "email",
    "windows",
    "linux",
    "macos",
    "hardware",
    "printing",
    "vpn",
    "networking",
    "firewalls",
    "wifi",
    "database",
    "postgresql",
    "oracle",
    "sql",
    "sap",
    "sap-fi",
    "identity",
    "mfa",
    "backup",
    "storage",
    "kubernetes",
    "cloud",
    "telephony",
    "security",
];
const LOCALES: [&str; 6] = ["en", "sv-SE", "id-ID", "zh-CN", "es", "it-IT"];
const FIRST_NAMES: [&str; 16] = [
    "Ann", "Bea", "Budi", "Camila", "Chen", "Dag", "Giulia", "Lars", "Lucía", "Mateo", "Siti",
    "Sofia", "Wei", "Alex", "Rita", "Sam",
];
const LAST_NAMES: [&str; 12] = [
    "Andersson",
    "Berg",
    "Costa",
    "Fernández",
    "García",
    "Li",
    "Nilsson",
    "Rahma",
    "Rossi",
    "Santoso",
    "Souza",
    "Zhang",
];
/// Answers list every planned person of a batch.
const MAX_MESSAGE: usize = 64 * 1024 * 1024;

#[derive(Debug, Parser, Clone)]
pub struct DirectoryArgs {
    /// People to provision.
    #[arg(long, default_value_t = 10_000)]
    people: usize,
    /// People per provisioning batch.
    #[arg(long, default_value_t = 10_000)]
    batch: usize,
    /// Teams to create before provisioning.
    #[arg(long, default_value_t = 60)]
    teams: usize,
    /// Timed calls of each lookup.
    #[arg(long, default_value_t = 20_000)]
    lookups: usize,
    /// Lookup calls in flight at once.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Seed of the generated people and of the lookups' choices.
    #[arg(long, default_value_t = 20_261_204)]
    seed: u64,
    /// Database connections of the desk.
    #[arg(long, default_value_t = 48)]
    max_connections: u32,
    /// Print the result as one JSON object (the output is JSON either way).
    #[arg(long)]
    json: bool,
}

/// A small deterministic generator (SplitMix64), so runs are comparable.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed ^ 0x5DEE_CE66_D1CE_4E5B)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }

    fn pick<T: Copy>(&mut self, values: &[T]) -> T {
        values[self.below(values.len())]
    }
}

type Client = DirectoryServiceClient<Channel>;

fn request<T>(message: T, token: &MetadataValue<Ascii>) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", token.clone());
    request
}

async fn connect(addr: std::net::SocketAddr) -> anyhow::Result<Client> {
    let channel = Channel::from_shared(format!("http://{addr}"))?
        .initial_stream_window_size(8 * 1024 * 1024)
        .initial_connection_window_size(16 * 1024 * 1024)
        .connect()
        .await?;
    Ok(DirectoryServiceClient::new(channel)
        .max_decoding_message_size(MAX_MESSAGE)
        .max_encoding_message_size(MAX_MESSAGE))
}

/// Waits until `ListTeams` succeeds; returns the client.
async fn wait_ready(
    addr: std::net::SocketAddr,
    token: &MetadataValue<Ascii>,
    log: &std::path::Path,
) -> anyhow::Result<Client> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(mut client) = connect(addr).await
            && client
                .list_teams(request(pb::ListTeamsRequest::default(), token))
                .await
                .is_ok()
        {
            return Ok(client);
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "desk did not answer ListTeams within 60 s; see {}",
            log.display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The generated teams: `(name, region, skills)`.
fn generate_teams(count: usize, rng: &mut Rng) -> Vec<pb::CreateTeamRequest> {
    (0..count)
        .map(|index| {
            let (region, time_zone) = REGIONS[index % REGIONS.len()];
            let tier = TIERS[(index / REGIONS.len()) % TIERS.len()];
            let mut skills: Vec<String> = Vec::new();
            while skills.len() < 3 + index % 4 {
                let skill = rng.pick(&SKILLS).to_owned();
                if !skills.contains(&skill) {
                    skills.push(skill);
                }
            }
            pb::CreateTeamRequest {
                name: format!("Team {index:03} {region}"),
                region: region.into(),
                time_zone: time_zone.into(),
                calendar_id: format!("{region}-office-hours"),
                tier: tier as i32,
                skills,
                follow_the_sun: tier == pb::SupportTier::FirstLine,
                ..Default::default()
            }
        })
        .collect()
}

/// Person `index` of the tenant: a manager among the people before them (a tree about six deep
/// at 100,000), one or two teams of their region.
fn generate_person(
    index: usize,
    teams: &[pb::CreateTeamRequest],
    rng: &mut Rng,
) -> pb::ProvisionedPerson {
    let region = index % REGIONS.len();
    let regional: Vec<&pb::CreateTeamRequest> =
        teams.iter().skip(region).step_by(REGIONS.len()).collect();
    let mut memberships = Vec::new();
    for _ in 0..1 + rng.below(2) {
        let team = regional[rng.below(regional.len())].name.clone();
        if !memberships
            .iter()
            .any(|m: &pb::ProvisionedMembership| m.team == team)
        {
            memberships.push(pb::ProvisionedMembership {
                team,
                role: if rng.below(20) == 0 {
                    pb::MembershipRole::Lead as i32
                } else {
                    pb::MembershipRole::Member as i32
                },
            });
        }
    }
    let first = rng.pick(&FIRST_NAMES);
    let last = rng.pick(&LAST_NAMES);
    pb::ProvisionedPerson {
        external_id: format!("p-{index:07}"),
        subject: format!("user-{index:07}"),
        display_name: format!("{first} {last} {index}"),
        email: format!("user{index}@bench.example"),
        locale: rng.pick(&LOCALES).into(),
        time_zone: REGIONS[region].1.into(),
        manager_external_id: if index == 0 {
            String::new()
        } else {
            format!("p-{:07}", (index - 1) / 8)
        },
        department: format!("Department {}", index % 40),
        teams: memberships,
        ..Default::default()
    }
}

fn quantile_ms(histogram: &Histogram<u64>, quantile: f64) -> f64 {
    (histogram.value_at_quantile(quantile) as f64 / 1000.0 * 1000.0).round() / 1000.0
}

/// `calls` calls of `call` at `concurrency` in flight; the latency histogram in microseconds,
/// the wall time and the failures.
async fn timed<F, Fut>(
    calls: usize,
    concurrency: usize,
    call: F,
) -> anyhow::Result<(Histogram<u64>, f64, usize)>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = Result<(), tonic::Status>>,
{
    let histogram = Arc::new(Mutex::new(Histogram::<u64>::new_with_bounds(
        1, 60_000_000, 3,
    )?));
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let failures = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let workers = (0..concurrency).map(|_| {
        let (histogram, next, failures) = (histogram.clone(), next.clone(), failures.clone());
        let call = &call;
        async move {
            loop {
                let index = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if index >= calls {
                    return;
                }
                let began = Instant::now();
                match call(index).await {
                    Ok(()) => {
                        let _ = histogram
                            .lock()
                            .await
                            .record(began.elapsed().as_micros() as u64);
                    }
                    Err(status) => {
                        if failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < 3 {
                            eprintln!("desk-bench directory: a call failed: {status}");
                        }
                    }
                }
            }
        }
    });
    futures::future::join_all(workers).await;
    let wall = started.elapsed().as_secs_f64();
    let histogram = histogram.lock().await.clone();
    Ok((
        histogram,
        wall,
        failures.load(std::sync::atomic::Ordering::Relaxed),
    ))
}

pub async fn run(args: DirectoryArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.people > 0 && args.batch > 0,
        "--people and --batch must be positive"
    );
    anyhow::ensure!(args.teams >= REGIONS.len(), "--teams must be at least 3");
    let run_started = Instant::now();
    let cpu_at_start = process_cpu_seconds();
    let mut rng = Rng::new(args.seed);
    let teams = generate_teams(args.teams, &mut rng);

    let nats = desk_testkit::NatsServer::start().await?;
    let cluster = desk_testkit::start_cluster(false).await?;
    let database_url = cluster.create_database("bench").await?;
    let launch = DeskLaunch::new(
        "directory",
        database_url.clone(),
        nats.url(),
        args.max_connections,
        "warn",
    )?;
    let token = |subject: &str, roles: &[&str]| -> anyhow::Result<MetadataValue<Ascii>> {
        Ok(format!(
            "Bearer {}",
            dev_token(&launch.secret, subject, TENANT, roles, 24 * 3600)?
        )
        .parse()?)
    };
    let (admin, robot, agent) = (
        token("bench-admin", &["admin"])?,
        token("bench-idp", &["integrator"])?,
        token("bench-agent", &["agent"])?,
    );
    let log = std::env::temp_dir().join("desk-bench-directory.log");
    let mut desk = launch.spawn(&log)?;
    let mut client = wait_ready(launch.addr, &admin, &log).await?;
    eprintln!(
        "desk-bench directory: desk up at {} (log {})",
        launch.addr,
        log.display()
    );
    let desk_pid = desk.id().map(|pid| pid.to_string());
    let desk_cpu = || {
        desk_pid
            .as_deref()
            .map_or(0.0, |p| pid_cpu_seconds(p, false))
    };

    // ---- teams ----
    for team in &teams {
        client.create_team(request(team.clone(), &admin)).await?;
    }

    // ---- provisioning ----
    let mut person_ids: Vec<String> = Vec::with_capacity(args.people);
    let (mut stage_s, mut commit_s, mut memberships) = (0.0, 0.0, 0usize);
    let cpu_before_load = desk_cpu();
    let load_started = Instant::now();
    let mut first = 0;
    while first < args.people {
        let last = (first + args.batch).min(args.people);
        let people: Vec<pb::ProvisionedPerson> = (first..last)
            .map(|index| generate_person(index, &teams, &mut rng))
            .collect();
        let staging = Instant::now();
        let staged = client
            .stage_provisioning(request(
                pb::StageProvisioningRequest {
                    source: SOURCE.into(),
                    people,
                    deactivate_missing: false,
                    replace_memberships: false,
                },
                &robot,
            ))
            .await?
            .into_inner()
            .batch
            .unwrap_or_default();
        stage_s += staging.elapsed().as_secs_f64();
        let committing = Instant::now();
        let committed = client
            .commit_provisioning(request(
                pb::CommitProvisioningRequest { id: staged.id },
                &robot,
            ))
            .await?
            .into_inner()
            .batch
            .unwrap_or_default();
        commit_s += committing.elapsed().as_secs_f64();
        memberships += usize::try_from(committed.memberships_added).unwrap_or_default();
        person_ids.extend(committed.people.into_iter().map(|p| p.person_id));
        eprintln!(
            "desk-bench directory: {last} of {} people provisioned ({:.0} people/s so far)",
            args.people,
            last as f64 / load_started.elapsed().as_secs_f64()
        );
        first = last;
    }
    let load_s = load_started.elapsed().as_secs_f64();
    let load_cpu = desk_cpu() - cpu_before_load;

    // ---- the outbox drains ----
    let drain_started = Instant::now();
    let db = desk_kit::db::Db::connect(&database_url, 2).await?;
    let mut pending = desk_kit::events::outbox::pending_count(&db, "directory").await?;
    while pending > 0 && drain_started.elapsed() < Duration::from_secs(600) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        pending = desk_kit::events::outbox::pending_count(&db, "directory").await?;
    }
    let drain_after_load_s = drain_started.elapsed().as_secs_f64();

    // ---- lookups ----
    let ids = Arc::new(person_ids);
    let picks: Vec<usize> = (0..args.lookups + 1_000)
        .map(|_| rng.below(ids.len()))
        .collect();
    let skill_picks: Vec<(&str, &str)> = (0..args.lookups + 1_000)
        .map(|_| (rng.pick(&SKILLS), rng.pick(&REGIONS).0))
        .collect();
    let get_person = |offset: usize| {
        let client = client.clone();
        let (ids, agent, picks) = (ids.clone(), agent.clone(), &picks);
        move |index: usize| {
            let mut client = client.clone();
            let id = ids[picks[offset + index]].clone();
            let agent = agent.clone();
            async move {
                let key = pb::get_person_request::Key::Id(id);
                client
                    .get_person(request(pb::GetPersonRequest { key: Some(key) }, &agent))
                    .await
                    .map(drop)
            }
        }
    };
    let find_teams = |offset: usize| {
        let client = client.clone();
        let (agent, picks) = (agent.clone(), &skill_picks);
        move |index: usize| {
            let mut client = client.clone();
            let (skill, region) = picks[offset + index];
            let agent = agent.clone();
            async move {
                let find = pb::FindTeamsRequest {
                    skill: skill.into(),
                    region: region.into(),
                    ..Default::default()
                };
                client.find_teams(request(find, &agent)).await.map(drop)
            }
        }
    };
    timed(1_000, args.concurrency, get_person(args.lookups)).await?;
    let cpu_before_lookups = desk_cpu();
    let (person_latency, person_wall, person_failures) =
        timed(args.lookups, args.concurrency, get_person(0)).await?;
    timed(1_000, args.concurrency, find_teams(args.lookups)).await?;
    let (teams_latency, teams_wall, teams_failures) =
        timed(args.lookups, args.concurrency, find_teams(0)).await?;
    let lookup_cpu = desk_cpu() - cpu_before_lookups;

    let result = json!({
        "suite": "directory",
        "people": args.people,
        "teams": args.teams,
        "batch": args.batch,
        "memberships": memberships,
        "people_per_s": (args.people as f64 / load_s).round(),
        "provision_s": (load_s * 100.0).round() / 100.0,
        "stage_s": (stage_s * 100.0).round() / 100.0,
        "commit_s": (commit_s * 100.0).round() / 100.0,
        "events_published": args.people + memberships,
        "outbox_drained_after_load_s": (drain_after_load_s * 100.0).round() / 100.0,
        "outbox_pending_at_end": pending,
        "desk_cpu_s_during_load": (load_cpu * 100.0).round() / 100.0,
        "concurrency": args.concurrency,
        "lookups": args.lookups,
        "get_person_p50_ms": quantile_ms(&person_latency, 0.5),
        "get_person_p99_ms": quantile_ms(&person_latency, 0.99),
        "get_person_max_ms": quantile_ms(&person_latency, 1.0),
        "get_person_per_s": (args.lookups as f64 / person_wall).round(),
        "get_person_failures": person_failures,
        "teams_with_skill_p50_ms": quantile_ms(&teams_latency, 0.5),
        "teams_with_skill_p99_ms": quantile_ms(&teams_latency, 0.99),
        "teams_with_skill_max_ms": quantile_ms(&teams_latency, 1.0),
        "teams_with_skill_per_s": (args.lookups as f64 / teams_wall).round(),
        "teams_with_skill_failures": teams_failures,
        "desk_cpu_s_during_lookups": (lookup_cpu * 100.0).round() / 100.0,
        "client_cpu_s": ((process_cpu_seconds() - cpu_at_start) * 100.0).round() / 100.0,
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "run_s": (run_started.elapsed().as_secs_f64() * 10.0).round() / 10.0,
    });
    println!("{}", serde_json::to_string_pretty(&result)?);

    let _ = desk.start_kill();
    let _ = desk.wait().await;
    cluster.stop().await;
    drop(nats);
    Ok(())
}
