//! `desk-bench cmdb --cis 100000 --relations 500000 --json`: the CMDB at estate scale.
//!
//! Starts nats-server, a throwaway PostgreSQL with synchronous commit on and
//! `desk serve --target cmdb`, then:
//!
//! 1. generates a layered estate deterministically from `--seed` — business services, application
//!    services, applications, databases, virtual machines, servers and network devices, every
//!    one identifiable by the first rule of its class (serial number, cloud resource id, URL,
//!    unique name) — and relationships that mostly point down the layers (`provides`,
//!    `depends_on`, `runs_on`, `connects_to`), plus a few random cross-links that may close
//!    cycles; `runs_on` is given at most once per source;
//! 2. loads it through the import API as a discovery source would: `StageImport` then
//!    `CommitImport`, CIs first (batches of at most 10,000 items), then relationships between the
//!    committed CIs by id (batches of at most 20,000), every request kept under the CMDB's gRPC
//!    message limit;
//! 3. runs `VACUUM (ANALYZE)` and a `CHECKPOINT`, makes 50 untimed impact calls of each kind
//!    (the first calls after a load page in the index and the buffers), then times
//!    `AnalyzeImpact` upstream from random CIs of the lower layers, interleaved: the full
//!    closure (`max_depth` 0, the service maximum) and depth 3, both explained compactly
//!    (`include_via`; `impact_full_*` and `impact_depth3_*`), depth 3 with whole paths
//!    (`impact_depth3_paths_*`), and on a tenth of the starts the full closure with whole paths
//!    (`impact_full_paths_*`), and downstream the full closure from random CIs of the upper
//!    layers (`impact_full_downstream_*`), and the full closure upstream in the SUMMARY view
//!    (`impact_full_summary_*`: business services and counts only); then a one-CI answer
//!    (`impact_floor_*`: what a call itself
//!    costs); then the desk's share of the same queries in this process (`*_in_process_*`:
//!    walk, answer building, encoding, and a client's decoding), to tell it apart from transport;
//! 4. stops the desk with SIGTERM, starts it again on the same database and NATS, and reports how
//!    long the impact index rebuild took (from the desk's `impact index rebuilt` log line) and
//!    how long until a `ListClasses` call succeeded.
//!
//! Prints one JSON object. Nothing is asserted: numbers are reported.
//!
//! The client runs on one thread (`main` builds a current-thread runtime for this command): the
//! calls are sequential, and on a two-core machine a multi-threaded client put two more threads
//! in the desk's way and a cross-thread hand-off into every call (depth-3 p50 0.42 → 0.27 ms and
//! full-closure p99 16–22 → 10–19 ms when it went). The desk inherits this process's
//! environment, so `TOKIO_WORKER_THREADS=N desk-bench cmdb …` sets the desk's worker threads
//! (one and two gave the same impact latencies on two cores, within the noise between runs).

use std::{
    collections::{HashMap, HashSet},
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use clap::Parser;
use desk_proto::cmdb::v1::{
    self as pb, RelationshipType as Rel, attribute_value, cmdb_service_client::CmdbServiceClient,
};
use hdrhistogram::Histogram;
use prost::Message as _;
use serde_json::json;
use tonic::{
    Request,
    metadata::{Ascii, MetadataValue},
    transport::Channel,
};

use super::{DeskLaunch, dev_token, pid_cpu_seconds, process_cpu_seconds};

use desk_cmdb::domain::{
    CiStatus, RelationshipType,
    identification::{MAX_IMPORT_ITEMS, MAX_IMPORT_RELATIONSHIPS},
    impact::{Direction, ImpactEdge, ImpactGraph, ImpactNode, ImpactQuery},
};

/// Requests are kept under this many bytes, below the CMDB's gRPC message limit.
const REQUEST_BUDGET: usize = desk_cmdb::IMPORT_MESSAGE_BYTES - 512 * 1024;
/// Answers list every planned item and relationship.
const MAX_DECODING: usize = 64 * 1024 * 1024;
/// HTTP/2 flow-control window of the client per call (its connection's is twice that).
const CLIENT_STREAM_WINDOW: u32 = 8 * 1024 * 1024;
/// The largest HTTP/2 frame the client accepts (the default is 16 KiB).
const CLIENT_MAX_FRAME: u32 = 1024 * 1024;
const UP: pb::ImpactDirection = pb::ImpactDirection::Upstream;
const DOWN: pb::ImpactDirection = pb::ImpactDirection::Downstream;
/// Untimed impact calls of each kind made before the timed ones.
const IMPACT_WARM_UP: usize = 50;
const SOURCE: &str = "bench-discovery";
const TENANT: &str = "bench";
/// The region of the ids `--in-process-only` makes: the desk's default, so answers are as long.
const BENCH_REGION: &str = "local";

#[derive(Debug, Parser, Clone)]
pub struct CmdbArgs {
    /// Configuration items to generate and import.
    #[arg(long, default_value_t = 2_000)]
    cis: usize,
    /// Relationships to generate and import (fewer when the estate is too small to hold them).
    #[arg(long, default_value_t = 8_000)]
    relations: usize,
    /// Impact queries of each kind (full closure, depth 3).
    #[arg(long, default_value_t = 500)]
    impact_queries: usize,
    /// Items per import batch (at most the CMDB's MAX_IMPORT_ITEMS, 10,000).
    #[arg(long, default_value_t = MAX_IMPORT_ITEMS)]
    item_batch: usize,
    /// Relationships per import batch (at most the CMDB's MAX_IMPORT_RELATIONSHIPS, 20,000).
    #[arg(long, default_value_t = MAX_IMPORT_RELATIONSHIPS)]
    relation_batch: usize,
    /// Import batches in flight at once.
    #[arg(long, default_value_t = 1)]
    import_concurrency: usize,
    /// Share of the relationships that are random cross-links between any two CIs (these close
    /// cycles); each one widens every closure that reaches its target, so keep it small.
    #[arg(long, default_value_t = 0.0005)]
    cross_links: f64,
    /// Seed of the generated estate and of the choice of start CIs.
    #[arg(long, default_value_t = 20_240_601)]
    seed: u64,
    /// Database connections of the desk.
    #[arg(long, default_value_t = 48)]
    max_connections: u32,
    /// Also write one line per timed impact call to this file: microseconds since the first
    /// one, max_depth, explanation (Via or Paths), latency in microseconds, CIs, answer bytes,
    /// CIs visited, direction. For reading a tail: which calls were slow, and what came before them.
    #[arg(long)]
    trace_impact: Option<PathBuf>,
    /// Time only the desk's share, in this process: build the impact index from the generated
    /// estate under fresh ids and run the `*_in_process_*` stages on the same starts, without a
    /// desk, PostgreSQL or NATS. Seconds instead of minutes, for profiling the walk and the answer.
    #[arg(long)]
    in_process_only: bool,
    /// Print the result as one JSON object (the output is JSON either way).
    #[arg(long)]
    json: bool,
}

// ---- a small deterministic generator (SplitMix64), so runs are comparable ----

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

    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1_u64 << 53) as f64
    }

    fn pick<T: Copy>(&mut self, values: &[T]) -> T {
        values[self.below(values.len())]
    }
}

// ---- the estate ----

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Layer {
    BusinessService,
    ApplicationService,
    Application,
    Database,
    VirtualMachine,
    Server,
    NetworkDevice,
}

impl Layer {
    const ALL: [Layer; 7] = [
        Layer::BusinessService,
        Layer::ApplicationService,
        Layer::Application,
        Layer::Database,
        Layer::VirtualMachine,
        Layer::Server,
        Layer::NetworkDevice,
    ];

    /// Share of the estate.
    const fn share(self) -> f64 {
        match self {
            Layer::BusinessService => 0.01,
            Layer::ApplicationService => 0.04,
            Layer::Application => 0.15,
            Layer::Database => 0.10,
            Layer::VirtualMachine => 0.50,
            Layer::Server => 0.15,
            Layer::NetworkDevice => 0.05,
        }
    }

    const fn class(self) -> &'static str {
        match self {
            Layer::BusinessService => "business_service",
            Layer::ApplicationService => "application_service",
            Layer::Application => "application",
            Layer::Database => "database",
            Layer::VirtualMachine => "virtual_machine",
            Layer::Server => "server",
            Layer::NetworkDevice => "network_device",
        }
    }

    /// Impact analysis starts from these.
    const fn is_lower(self) -> bool {
        matches!(
            self,
            Layer::Database | Layer::VirtualMachine | Layer::Server | Layer::NetworkDevice
        )
    }
}

struct Estate {
    /// Import items, by estate index; `local_id` is `c<index>`.
    items: Vec<pb::ImportItem>,
    layer_of: Vec<Layer>,
    members: HashMap<Layer, Vec<u32>>,
    /// `(source, type, target)` by estate index.
    relations: Vec<(u32, Rel, u32)>,
    cross_links: usize,
}

fn text(value: impl Into<String>) -> pb::AttributeValue {
    pb::AttributeValue {
        kind: Some(attribute_value::Kind::StringValue(value.into())),
    }
}

fn int(value: i64) -> pb::AttributeValue {
    pb::AttributeValue {
        kind: Some(attribute_value::Kind::IntValue(value)),
    }
}

/// One CI of `layer`, the `ordinal`-th of its layer, at estate index `index`. Every value that an
/// identification rule uses is unique, and names are unique across the whole estate, so each CI
/// is identified by the first rule of its class that its fields fill (and `name_on_host` never
/// applies: the item batches carry no `runs_on`).
fn item(layer: Layer, ordinal: usize, index: usize, rng: &mut Rng) -> pb::ImportItem {
    let mut attributes = HashMap::new();
    let name = match layer {
        Layer::BusinessService => {
            attributes.insert(
                "service_owner".into(),
                text(format!("owner-{:03}", rng.below(200))),
            );
            attributes.insert(
                "sla_tier".into(),
                text(rng.pick(&["gold", "silver", "silver", "bronze", "bronze"])),
            );
            format!("Business service {ordinal:05}")
        }
        Layer::ApplicationService => {
            attributes.insert(
                "url".into(),
                text(format!("https://appsvc-{ordinal:06}.bench.example.com/api")),
            );
            format!("appsvc-{ordinal:06}")
        }
        Layer::Application => {
            attributes.insert(
                "version".into(),
                text(format!(
                    "{}.{}.{}",
                    1 + rng.below(9),
                    rng.below(30),
                    rng.below(100)
                )),
            );
            attributes.insert(
                "vendor".into(),
                text(rng.pick(&[
                    "in-house", "in-house", "acme", "globex", "initech", "umbrella",
                ])),
            );
            format!("app-{ordinal:06}")
        }
        Layer::Database => {
            let engine = rng.pick(&[
                "postgresql",
                "postgresql",
                "mysql",
                "oracle",
                "sqlserver",
                "mongodb",
            ]);
            attributes.insert("engine".into(), text(engine));
            attributes.insert(
                "port".into(),
                int(match engine {
                    "postgresql" => 5432,
                    "mysql" => 3306,
                    "oracle" => 1521,
                    "sqlserver" => 1433,
                    _ => 27017,
                }),
            );
            attributes.insert(
                "fqdn".into(),
                text(format!("db-{ordinal:06}.bench.example.com")),
            );
            format!("db-{ordinal:06}")
        }
        Layer::VirtualMachine => {
            attributes.insert(
                "cloud_resource_id".into(),
                text(format!(
                    "i-{:017x}",
                    (index as u64).wrapping_mul(0x9E37_79B9) ^ 0xB_E11C
                )),
            );
            attributes.insert(
                "fqdn".into(),
                text(format!("vm-{ordinal:06}.bench.example.com")),
            );
            attributes.insert(
                "hypervisor".into(),
                text(rng.pick(&["kvm", "vmware", "hyper-v"])),
            );
            attributes.insert(
                "os".into(),
                text(rng.pick(&["linux", "linux", "linux", "windows"])),
            );
            attributes.insert("cpu_count".into(), int(rng.pick(&[2, 4, 4, 8, 16])));
            attributes.insert("ram_gb".into(), int(rng.pick(&[4, 8, 16, 32, 64])));
            format!("vm-{ordinal:06}")
        }
        Layer::Server => {
            attributes.insert(
                "serial_number".into(),
                text(format!("SRV{:010}", 7_000_000 + ordinal)),
            );
            attributes.insert(
                "fqdn".into(),
                text(format!("srv-{ordinal:06}.bench.example.com")),
            );
            attributes.insert(
                "os".into(),
                text(rng.pick(&["linux", "linux", "windows", "other"])),
            );
            attributes.insert("cpu_count".into(), int(rng.pick(&[16, 32, 64, 128])));
            attributes.insert("ram_gb".into(), int(rng.pick(&[128, 256, 512, 1024])));
            format!("srv-{ordinal:06}")
        }
        Layer::NetworkDevice => {
            attributes.insert(
                "serial_number".into(),
                text(format!("NET{:010}", 9_000_000 + ordinal)),
            );
            attributes.insert(
                "device_type".into(),
                text(rng.pick(&[
                    "switch",
                    "switch",
                    "switch",
                    "router",
                    "firewall",
                    "load_balancer",
                ])),
            );
            attributes.insert(
                "management_ip".into(),
                text(format!(
                    "10.{}.{}.{}",
                    (ordinal >> 16) & 0xff,
                    (ordinal >> 8) & 0xff,
                    ordinal & 0xff
                )),
            );
            format!("net-{ordinal:05}")
        }
    };
    pb::ImportItem {
        local_id: format!("c{index}"),
        class: layer.class().to_owned(),
        name,
        environment: pb::Environment::Production as i32,
        status: pb::CiStatus::InUse as i32,
        attributes,
    }
}

/// Relationships without repeats (a symmetric pair counts once) or self-loops.
struct Relations {
    seen: HashSet<(u32, i32, u32)>,
    list: Vec<(u32, Rel, u32)>,
    budget: usize,
}

impl Relations {
    fn add(&mut self, source: u32, kind: Rel, target: u32) -> bool {
        if source == target || self.list.len() >= self.budget {
            return false;
        }
        let key = if kind == Rel::ConnectsTo && target < source {
            (target, kind as i32, source)
        } else {
            (source, kind as i32, target)
        };
        if !self.seen.insert(key) {
            return false;
        }
        self.list.push((source, kind, target));
        true
    }

    fn full(&self) -> bool {
        self.list.len() >= self.budget
    }
}

fn generate(cis: usize, relations: usize, cross_links: f64, seed: u64) -> Estate {
    let mut rng = Rng::new(seed);
    // Layer sizes: each share rounded, at least one of each, the rest virtual machines.
    let mut sizes: HashMap<Layer, usize> = Layer::ALL
        .iter()
        .map(|&layer| {
            (
                layer,
                ((cis as f64 * layer.share()).round() as usize).max(1),
            )
        })
        .collect();
    let others: usize = sizes
        .iter()
        .filter(|(layer, _)| **layer != Layer::VirtualMachine)
        .map(|(_, size)| *size)
        .sum();
    sizes.insert(Layer::VirtualMachine, cis.saturating_sub(others).max(1));

    let mut items = Vec::new();
    let mut layer_of = Vec::new();
    let mut members: HashMap<Layer, Vec<u32>> = HashMap::new();
    for layer in Layer::ALL {
        for ordinal in 0..sizes[&layer] {
            let index = items.len();
            items.push(item(layer, ordinal, index, &mut rng));
            layer_of.push(layer);
            members.entry(layer).or_default().push(index as u32);
        }
    }
    let of = |layer: Layer| members[&layer].as_slice();
    let (bs, svc, app, db, vm, srv, net) = (
        of(Layer::BusinessService),
        of(Layer::ApplicationService),
        of(Layer::Application),
        of(Layer::Database),
        of(Layer::VirtualMachine),
        of(Layer::Server),
        of(Layer::NetworkDevice),
    );

    let mut rels = Relations {
        seen: HashSet::new(),
        list: Vec::with_capacity(relations),
        budget: relations,
    };
    // The skeleton, most important first, so that a small budget still gets a sensible estate:
    // each application service provides a business service; every host-bound CI runs on exactly
    // one host (`runs_on` allows one per source); every server has one uplink; each application
    // service uses an application, and each application a database.
    for &s in svc {
        rels.add(s, Rel::Provides, rng.pick(bs));
    }
    for &v in vm {
        rels.add(v, Rel::RunsOn, rng.pick(srv));
    }
    for &a in app {
        rels.add(a, Rel::RunsOn, rng.pick(vm));
    }
    for &d in db {
        let host = if rng.unit() < 0.8 {
            rng.pick(vm)
        } else {
            rng.pick(srv)
        };
        rels.add(d, Rel::RunsOn, host);
    }
    for &s in srv {
        rels.add(s, Rel::ConnectsTo, rng.pick(net));
    }
    for &s in svc {
        rels.add(s, Rel::DependsOn, rng.pick(app));
    }
    for &a in app {
        rels.add(a, Rel::DependsOn, rng.pick(db));
    }

    // Random cross-links between any two CIs other than business services, in either direction:
    // they may point up the layers and close cycles.
    let wanted_cross = ((relations as f64) * cross_links).round() as usize;
    let not_business: Vec<u32> = (bs.len() as u32..items.len() as u32).collect();
    let mut cross = 0;
    let mut attempts = 0;
    while cross < wanted_cross && attempts < wanted_cross * 20 + 100 && !rels.full() {
        attempts += 1;
        if rels.add(
            rng.pick(&not_business),
            Rel::DependsOn,
            rng.pick(&not_business),
        ) {
            cross += 1;
        }
    }

    // The rest of the budget: more dependencies down the layers, by weight. Within a layer
    // (applications, VMs, network devices) a CI depends only on one of lower ordinal, so those
    // form DAGs; `connects_to` stays one uplink per server, because it carries impact both ways
    // and a second uplink would join every network segment into one.
    // A pair within one layer, the later depending on the earlier.
    fn within(rng: &mut Rng, layer: &[u32]) -> (u32, u32) {
        let (a, b) = (rng.pick(layer), rng.pick(layer));
        (a.max(b), a.min(b))
    }
    let weights: [u32; 11] = [12, 5, 3, 24, 3, 17, 10, 18, 4, 3, 1];
    let total: u32 = weights.iter().sum();
    let mut attempts = 0;
    let limit = relations.saturating_mul(30) + 1000;
    while !rels.full() && attempts < limit {
        attempts += 1;
        let mut roll = (rng.below(total as usize)) as u32;
        let mut choice = 0;
        for (index, weight) in weights.iter().enumerate() {
            if roll < *weight {
                choice = index;
                break;
            }
            roll -= weight;
        }
        let (source, kind, target) = match choice {
            0 => (rng.pick(svc), Rel::DependsOn, rng.pick(app)),
            1 => (rng.pick(svc), Rel::DependsOn, rng.pick(db)),
            2 => (rng.pick(svc), Rel::Provides, rng.pick(bs)),
            3 => (rng.pick(app), Rel::DependsOn, rng.pick(db)),
            4 => {
                let (a, b) = within(&mut rng, app);
                (a, Rel::DependsOn, b)
            }
            5 => (rng.pick(app), Rel::DependsOn, rng.pick(vm)),
            6 => {
                let host = if rng.unit() < 0.5 {
                    rng.pick(vm)
                } else {
                    rng.pick(srv)
                };
                (rng.pick(db), Rel::DependsOn, host)
            }
            7 => (rng.pick(vm), Rel::DependsOn, rng.pick(net)),
            8 => {
                let (a, b) = within(&mut rng, vm);
                (a, Rel::DependsOn, b)
            }
            9 => (rng.pick(db), Rel::DependsOn, rng.pick(net)),
            _ => {
                let (a, b) = within(&mut rng, net);
                (a, Rel::DependsOn, b)
            }
        };
        rels.add(source, kind, target);
    }

    // Discovery reports CIs in no particular order: shuffle the relationships (items are
    // shuffled per batch below, by index order here).
    let mut list = rels.list;
    for i in (1..list.len()).rev() {
        list.swap(i, rng.below(i + 1));
    }
    Estate {
        items,
        layer_of,
        members,
        relations: list,
        cross_links: cross,
    }
}

/// Splits `values` into batches of at most `max` whose encoded size stays under the request budget.
fn batches<T: prost::Message + Clone>(values: &[T], max: usize) -> Vec<Vec<T>> {
    let mut out = Vec::new();
    let mut current = Vec::new();
    let mut bytes = 1024;
    for value in values {
        let size = value.encoded_len() + 8;
        if !current.is_empty() && (current.len() >= max || bytes + size > REQUEST_BUDGET) {
            out.push(std::mem::take(&mut current));
            bytes = 1024;
        }
        bytes += size;
        current.push(value.clone());
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

type Client = CmdbServiceClient<Channel>;

fn request<T>(message: T, token: &MetadataValue<Ascii>) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", token.clone());
    request
}

async fn connect(addr: std::net::SocketAddr) -> anyhow::Result<Client> {
    // Impact answers run to megabytes. HTTP/2's default 64 KiB window, and an adaptive one on
    // loopback (where the bandwidth-delay product stays small), would make the desk wait for a
    // window update every 64 KiB; a client that expects large answers opens the window wide, as
    // grpc-go's `WithInitialWindowSize` and grpc-java's `flowControlWindow` let it.
    let channel = Channel::from_shared(format!("http://{addr}"))?
        .initial_stream_window_size(CLIENT_STREAM_WINDOW)
        .initial_connection_window_size(CLIENT_STREAM_WINDOW * 2)
        .max_frame_size(CLIENT_MAX_FRAME)
        .connect()
        .await?;
    Ok(CmdbServiceClient::new(channel)
        .max_decoding_message_size(MAX_DECODING)
        .max_encoding_message_size(MAX_DECODING))
}

/// Waits until `ListClasses` succeeds; returns the client.
async fn wait_ready(
    addr: std::net::SocketAddr,
    token: &MetadataValue<Ascii>,
    log: &Path,
    within: Duration,
) -> anyhow::Result<Client> {
    let deadline = Instant::now() + within;
    loop {
        if let Ok(mut client) = connect(addr).await
            && client
                .list_classes(request(pb::ListClassesRequest {}, token))
                .await
                .is_ok()
        {
            return Ok(client);
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "desk did not answer ListClasses within {} s; see {}",
            within.as_secs(),
            log.display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Problems worth a look, kept to a few examples.
#[derive(Default)]
struct Errors {
    count: u64,
    samples: Vec<String>,
}

impl Errors {
    fn add(&mut self, what: impl Into<String>) {
        self.count += 1;
        if self.samples.len() < 8 {
            let what = what.into();
            eprintln!("desk-bench cmdb: {what}");
            self.samples.push(what);
        }
    }
}

/// What one committed batch did.
#[derive(Default)]
struct BatchOutcome {
    stage_s: f64,
    commit_s: f64,
    created: usize,
    unchanged: usize,
    /// `local_id` → CI id, for item batches.
    ids: Vec<(String, String)>,
    problems: Vec<String>,
    /// A call ran into the desk's request timeout.
    timed_out: bool,
}

fn is_timeout(status: &tonic::Status) -> bool {
    matches!(
        status.code(),
        tonic::Code::Cancelled | tonic::Code::DeadlineExceeded
    )
}

async fn stage_and_commit(
    mut client: Client,
    token: MetadataValue<Ascii>,
    stage: pb::StageImportRequest,
) -> BatchOutcome {
    let mut outcome = BatchOutcome::default();
    let started = Instant::now();
    let staged = client
        .stage_import(request(stage, &token))
        .await
        .map(|r| r.into_inner().batch.unwrap_or_default());
    outcome.stage_s = started.elapsed().as_secs_f64();
    let staged = match staged {
        Ok(batch) => batch,
        Err(status) => {
            outcome.timed_out = is_timeout(&status);
            outcome.problems.push(format!(
                "StageImport failed: {:?} {}",
                status.code(),
                truncate(status.message())
            ));
            return outcome;
        }
    };
    let started = Instant::now();
    let committed = client
        .commit_import(request(pb::CommitImportRequest { id: staged.id }, &token))
        .await
        .map(|r| r.into_inner().batch.unwrap_or_default());
    outcome.commit_s = started.elapsed().as_secs_f64();
    let committed = match committed {
        Ok(batch) => batch,
        Err(status) => {
            outcome.timed_out = is_timeout(&status);
            outcome.problems.push(format!(
                "CommitImport failed: {:?} {}",
                status.code(),
                truncate(status.message())
            ));
            return outcome;
        }
    };
    let create = pb::PlannedAction::Create as i32;
    let unchanged = pb::PlannedAction::Unchanged as i32;
    let update = pb::PlannedAction::Update as i32;
    for planned in committed.items {
        if planned.action == create || planned.action == unchanged || planned.action == update {
            if planned.action == create {
                outcome.created += 1;
            } else {
                outcome.unchanged += 1;
            }
            outcome.ids.push((planned.local_id, planned.ci_id));
        } else {
            outcome.problems.push(format!(
                "item {} planned as {:?}: {}",
                planned.local_id,
                pb::PlannedAction::try_from(planned.action).unwrap_or_default(),
                planned.reason
            ));
        }
    }
    for planned in committed.relationships {
        if planned.action == create {
            outcome.created += 1;
        } else if planned.action == unchanged {
            outcome.unchanged += 1;
        } else {
            outcome.problems.push(format!(
                "relationship {} {:?} {} planned as {:?}: {}",
                planned.source,
                Rel::try_from(planned.r#type).unwrap_or_default(),
                planned.target,
                pb::PlannedAction::try_from(planned.action).unwrap_or_default(),
                planned.reason
            ));
        }
    }
    outcome
}

fn truncate(text: &str) -> String {
    if text.chars().count() > 300 {
        format!("{}…", text.chars().take(300).collect::<String>())
    } else {
        text.to_owned()
    }
}

/// What importing one kind of thing took.
struct ImportRun {
    outcomes: Vec<BatchOutcome>,
    wall_s: f64,
    /// Batches that timed out and were split in half.
    splits: usize,
    /// Time spent on the batches that timed out.
    timed_out_s: f64,
    /// The batch size in use at the end.
    final_batch: usize,
}

/// Stages and commits `chunks`, `concurrency` at a time. The desk answers every call within
/// 30 s; a batch that times out is split in half and tried again, and no later batch is larger.
async fn import<T: Clone>(
    client: &Client,
    token: &MetadataValue<Ascii>,
    chunks: Vec<Vec<T>>,
    to_request: impl Fn(Vec<T>) -> pb::StageImportRequest,
    concurrency: usize,
    what: &str,
) -> ImportRun {
    struct State<T> {
        queue: std::collections::VecDeque<Vec<T>>,
        max: usize,
        splits: usize,
        timed_out_s: f64,
        done: usize,
        outcomes: Vec<BatchOutcome>,
    }
    let total: usize = chunks.iter().map(Vec::len).sum();
    let state = std::sync::Mutex::new(State {
        max: chunks.iter().map(Vec::len).max().unwrap_or(1),
        queue: chunks.into(),
        splits: 0,
        timed_out_s: 0.0,
        done: 0,
        outcomes: Vec::new(),
    });
    let started = Instant::now();
    let worker = || async {
        loop {
            let chunk = {
                let Ok(mut state) = state.lock() else { break };
                let Some(mut chunk) = state.queue.pop_front() else {
                    break;
                };
                if chunk.len() > state.max {
                    let rest = chunk.split_off(state.max);
                    state.queue.push_front(rest);
                }
                chunk
            };
            let size = chunk.len();
            let outcome =
                stage_and_commit(client.clone(), token.clone(), to_request(chunk.clone())).await;
            let Ok(mut state) = state.lock() else { break };
            if outcome.timed_out && size > 1 {
                state.max = state.max.min(size / 2).max(1);
                state.splits += 1;
                state.timed_out_s += outcome.stage_s + outcome.commit_s;
                state.queue.push_front(chunk);
                eprintln!(
                    "desk-bench cmdb: {what} batch of {size} timed out after {:.1} s; batches of at most {} from now on",
                    outcome.stage_s + outcome.commit_s,
                    state.max
                );
                continue;
            }
            state.done += size;
            eprintln!(
                "desk-bench cmdb: {what}s {}/{total}: batch of {size}: stage {:.1} s, commit {:.1} s, {} created ({:.0} s so far)",
                state.done,
                outcome.stage_s,
                outcome.commit_s,
                outcome.created,
                started.elapsed().as_secs_f64()
            );
            state.outcomes.push(outcome);
        }
    };
    futures::future::join_all((0..concurrency.max(1)).map(|_| worker())).await;
    let wall_s = started.elapsed().as_secs_f64();
    let state = state
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    ImportRun {
        outcomes: state.outcomes,
        wall_s,
        splits: state.splits,
        timed_out_s: state.timed_out_s,
        final_batch: state.max,
    }
}

fn ms(histogram: &Histogram<u64>, quantile: f64) -> f64 {
    (histogram.value_at_quantile(quantile) as f64 / 1000.0 * 100.0).round() / 100.0
}

fn round(value: f64, places: i32) -> f64 {
    let factor = 10_f64.powi(places);
    (value * factor).round() / factor
}

/// Latency and shape of one kind of impact query.
struct ImpactStats {
    latency: Histogram<u64>,
    visited: u64,
    reported: u64,
    business_services: u64,
    max_visited: u32,
    truncated: HashMap<String, u64>,
    response_bytes: u64,
    answered: u64,
}

impl ImpactStats {
    fn new() -> anyhow::Result<Self> {
        Ok(Self {
            latency: Histogram::new(3)?,
            visited: 0,
            reported: 0,
            business_services: 0,
            max_visited: 0,
            truncated: HashMap::new(),
            response_bytes: 0,
            answered: 0,
        })
    }

    fn record(&mut self, micros: u64, response: &pb::AnalyzeImpactResponse) {
        let _ = self.latency.record(micros.max(1));
        self.answered += 1;
        self.visited += u64::from(response.visited);
        self.max_visited = self.max_visited.max(response.visited);
        // A SUMMARY answer lists no CIs: it counts them.
        match &response.summary {
            Some(summary) => {
                self.reported += u64::from(summary.cis_reached);
                self.business_services += summary.business_services.len() as u64;
            }
            None => {
                self.reported += response.cis.len() as u64;
                self.business_services += response.business_service_indexes.len() as u64;
            }
        }
        self.response_bytes += response.encoded_len() as u64;
        if !response.truncated_by.is_empty() {
            *self
                .truncated
                .entry(response.truncated_by.clone())
                .or_default() += 1;
        }
    }

    fn json(&self, prefix: &str, object: &mut serde_json::Map<String, serde_json::Value>) {
        let n = self.answered.max(1) as f64;
        let mut put = |key: &str, value: serde_json::Value| {
            object.insert(format!("{prefix}_{key}"), value);
        };
        put("p50_ms", json!(ms(&self.latency, 0.50)));
        put("p90_ms", json!(ms(&self.latency, 0.90)));
        put("p99_ms", json!(ms(&self.latency, 0.99)));
        put(
            "max_ms",
            json!(round(self.latency.max() as f64 / 1000.0, 2)),
        );
        put("answered", json!(self.answered));
        put("avg_visited", json!(round(self.visited as f64 / n, 1)));
        put("max_visited", json!(self.max_visited));
        put("avg_cis", json!(round(self.reported as f64 / n, 1)));
        put(
            "avg_business_services",
            json!(round(self.business_services as f64 / n, 1)),
        );
        put(
            "avg_response_kb",
            json!(round(self.response_bytes as f64 / n / 1024.0, 1)),
        );
        put("truncated", json!(self.truncated.values().sum::<u64>()));
        put("truncated_by", json!(self.truncated));
    }
}

/// How an impact answer explains its CIs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Explain {
    /// `include_via`: one step per CI, and where it came from.
    Via,
    /// `include_paths`: every CI's whole path.
    Paths,
    /// The SUMMARY view: the business services reached and counts, no CI list.
    Summary,
}

fn impact_request(
    id: &str,
    direction: pb::ImpactDirection,
    max_depth: u32,
    explain: Explain,
) -> pb::AnalyzeImpactRequest {
    pb::AnalyzeImpactRequest {
        ci_ids: vec![id.to_owned()],
        direction: direction as i32,
        max_depth,
        max_nodes: 0,
        relationship_types: Vec::new(),
        include_paths: explain == Explain::Paths,
        include_via: explain == Explain::Via,
        view: if explain == Explain::Summary {
            pb::ImpactView::Summary as i32
        } else {
            pb::ImpactView::Full as i32
        },
    }
}

/// The server's share of the impact queries, measured in this process: the walk and the
/// encoded answer `AnalyzeImpact` writes (`desk_cmdb::api::encode_impact_answer`), over an index
/// built from the estate as imported (same ids), then the decoding a client does. Next to the gRPC latencies, this tells the desk's work apart from transport.
struct InProcess {
    graph: ImpactGraph,
    region: String,
}

/// Latencies of one kind of query in process, by stage: the walk alone; the answer, i.e. the
/// walk and the answer's wire format written from it (`AnalyzeImpact`'s whole share); and a
/// client's decoding of that answer.
struct StageStats {
    walk: Histogram<u64>,
    answer: Histogram<u64>,
    decode: Histogram<u64>,
}

impl StageStats {
    fn new() -> anyhow::Result<Self> {
        Ok(Self {
            walk: Histogram::new(3)?,
            answer: Histogram::new(3)?,
            decode: Histogram::new(3)?,
        })
    }

    fn json(&self, prefix: &str, object: &mut serde_json::Map<String, serde_json::Value>) {
        for (stage, histogram) in [
            ("walk", &self.walk),
            ("answer", &self.answer),
            ("decode", &self.decode),
        ] {
            object.insert(
                format!("{prefix}_{stage}_p50_ms"),
                json!(ms(histogram, 0.50)),
            );
            object.insert(
                format!("{prefix}_{stage}_p99_ms"),
                json!(ms(histogram, 0.99)),
            );
            // Steadier between runs than a p99 of the largest closures: for comparing builds.
            object.insert(
                format!("{prefix}_{stage}_mean_ms"),
                json!(round(histogram.mean() / 1000.0, 3)),
            );
        }
    }
}

/// The order the CIs are imported in, by estate index: shuffled, as discovery finds them. The
/// desk numbers CIs in its impact index in this order (by id, and ids grow with time), so the
/// in-process index is built in it too: the index's memory layout is part of what is timed.
fn import_order(cis: usize, seed: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..cis).collect();
    let mut rng = Rng::new(seed.wrapping_add(1));
    for i in (1..order.len()).rev() {
        order.swap(i, rng.below(i + 1));
    }
    order
}

/// The start CIs of the timed impact calls, chosen by estate index, so that every run of one seed
/// (with the desk or `--in-process-only`) asks the same closures.
struct ImpactStarts<'a> {
    /// Upstream, from random CIs of the lower layers.
    starts: Vec<&'a str>,
    /// Untimed calls first: a desk that has just loaded an estate has not touched its index,
    /// its answer buffers or its HTTP/2 windows yet, and the first calls page all that in. They
    /// are made on other starts, as a desk that has been serving would be.
    warm_up: Vec<&'a str>,
    /// Downstream, from the services and applications: what they depend on.
    down_starts: Vec<&'a str>,
}

impl<'a> ImpactStarts<'a> {
    fn choose(estate: &Estate, ids: &'a [Option<String>], args: &CmdbArgs) -> anyhow::Result<Self> {
        let of_layers = |lower: bool| -> Vec<&'a str> {
            (0..estate.items.len())
                .filter(|&i| estate.layer_of[i].is_lower() == lower)
                .filter_map(|i| ids[i].as_deref())
                .collect()
        };
        let (lower, upper) = (of_layers(true), of_layers(false));
        anyhow::ensure!(!lower.is_empty(), "no CI of the lower layers was imported");
        anyhow::ensure!(!upper.is_empty(), "no CI of the upper layers was imported");
        let mut rng = Rng::new(args.seed.wrapping_add(2));
        let starts = (0..args.impact_queries).map(|_| rng.pick(&lower)).collect();
        let warm_up = (0..IMPACT_WARM_UP).map(|_| rng.pick(&lower)).collect();
        let down_starts = (0..args.impact_queries).map(|_| rng.pick(&upper)).collect();
        Ok(Self {
            starts,
            warm_up,
            down_starts,
        })
    }
}

/// The `*_in_process_*` stages of each kind of call.
struct InProcessStats {
    full: StageStats,
    depth3: StageStats,
    depth3_paths: StageStats,
    full_down: StageStats,
}

impl InProcessStats {
    fn new() -> anyhow::Result<Self> {
        Ok(Self {
            full: StageStats::new()?,
            depth3: StageStats::new()?,
            depth3_paths: StageStats::new()?,
            full_down: StageStats::new()?,
        })
    }

    fn timed(mut self, index: &InProcess, starts: &[&str], down_starts: &[&str]) -> Self {
        for start in starts {
            index.time(start, UP, 0, Explain::Via, &mut self.full);
            index.time(start, UP, 3, Explain::Via, &mut self.depth3);
            index.time(start, UP, 3, Explain::Paths, &mut self.depth3_paths);
        }
        for start in down_starts {
            index.time(start, DOWN, 0, Explain::Via, &mut self.full_down);
        }
        self
    }

    fn json(&self, result: &mut serde_json::Map<String, serde_json::Value>) {
        self.full.json("impact_full_in_process", result);
        self.depth3.json("impact_depth3_in_process", result);
        self.depth3_paths
            .json("impact_depth3_paths_in_process", result);
        self.full_down
            .json("impact_full_downstream_in_process", result);
    }
}

/// `--in-process-only`: the index built from the generated estate under fresh ids, timed on
/// the starts a whole run would use, after untimed calls on the warm-up starts.
fn in_process_only(estate: &Estate, args: &CmdbArgs, generate_s: f64) -> anyhow::Result<()> {
    let ids: Vec<Option<String>> = (0..estate.items.len())
        .map(|_| Some(desk_kit::ids::format_id(BENCH_REGION, uuid::Uuid::now_v7())))
        .collect();
    let ImpactStarts {
        starts,
        warm_up,
        down_starts,
    } = ImpactStarts::choose(estate, &ids, args)?;
    let built = Instant::now();
    let index = InProcess::new(estate, &ids, args.seed)
        .ok_or_else(|| anyhow::anyhow!("the in-process impact index could not be built"))?;
    let build_s = built.elapsed().as_secs_f64();
    let warm_down = &down_starts[..warm_up.len().min(down_starts.len())];
    InProcessStats::new()?.timed(&index, &warm_up, warm_down);
    eprintln!("desk-bench cmdb: timing the desk's share in process");
    let cpu_before = process_cpu_seconds();
    let stats = InProcessStats::new()?.timed(&index, &starts, &down_starts);
    let mut result = serde_json::Map::new();
    result.insert("cis".into(), json!(estate.items.len()));
    result.insert("relations".into(), json!(estate.relations.len()));
    result.insert("impact_queries".into(), json!(args.impact_queries));
    result.insert("in_process_only".into(), json!(true));
    result.insert("generate_s".into(), json!(round(generate_s, 2)));
    result.insert("index_build_s".into(), json!(round(build_s, 3)));
    stats.json(&mut result);
    result.insert(
        "in_process_cpu_s".into(),
        json!(round(process_cpu_seconds() - cpu_before, 2)),
    );
    println!(
        "{}",
        serde_json::to_string_pretty(&serde_json::Value::Object(result))?
    );
    Ok(())
}

impl InProcess {
    /// The index the desk would build from the imported estate; `None` when some CI has no id.
    fn new(estate: &Estate, ids: &[Option<String>], seed: u64) -> Option<Self> {
        let mut region = None;
        let mut uuids = Vec::with_capacity(ids.len());
        for id in ids {
            let parsed = desk_kit::ids::parse_id(id.as_deref()?)?;
            region.get_or_insert(parsed.region);
            uuids.push(parsed.uuid);
        }
        let nodes = import_order(estate.items.len(), seed)
            .into_iter()
            .map(|index| (&estate.items[index], uuids[index]))
            .map(|(item, id)| ImpactNode {
                id,
                class: item.class.clone(),
                name: item.name.clone(),
                status: if item.status == pb::CiStatus::Retired as i32 {
                    CiStatus::Retired
                } else {
                    CiStatus::InUse
                },
                business_service: item.class == Layer::BusinessService.class(),
            });
        let edges = estate
            .relations
            .iter()
            .map(|&(source, kind, target)| ImpactEdge {
                source: uuids[source as usize],
                relationship: desk_cmdb::api::convert::relationship_type(kind as i32)
                    .unwrap_or(RelationshipType::DependsOn),
                target: uuids[target as usize],
            });
        Some(Self {
            graph: ImpactGraph::build(nodes, edges).ok()?,
            region: region?,
        })
    }

    fn time(
        &self,
        start: &str,
        direction: pb::ImpactDirection,
        max_depth: u32,
        explain: Explain,
        stats: &mut StageStats,
    ) {
        let Some(start) = desk_kit::ids::parse_id(start) else {
            return;
        };
        let query = ImpactQuery {
            start: vec![start.uuid],
            direction: match direction {
                UP => Direction::Upstream,
                DOWN => Direction::Downstream,
                _ => Direction::Both,
            },
            max_depth: if max_depth == 0 {
                desk_cmdb::api::MAX_DEPTH
            } else {
                max_depth
            },
            max_nodes: desk_cmdb::api::MAX_NODES,
            relationship_types: None,
            include_paths: explain == Explain::Paths,
            include_via: explain == Explain::Via,
        };
        let micros = |since: Instant| (since.elapsed().as_micros() as u64).max(1);
        let began = Instant::now();
        if self.graph.impact_with(&query, |_| ()).is_err() {
            return;
        }
        let _ = stats.walk.record(micros(began));
        let began = Instant::now();
        let Ok(answer) = desk_cmdb::api::encode_impact_answer(&self.graph, &self.region, &query)
        else {
            return;
        };
        let _ = stats.answer.record(micros(began));
        let bytes = answer.encode_to_vec();
        drop(answer);
        let began = Instant::now();
        let decoded = pb::AnalyzeImpactResponse::decode(bytes.as_slice());
        let _ = stats.decode.record(micros(began));
        drop(decoded);
    }
}

/// The `seconds` of the last `impact index rebuilt` line of a JSON log.
fn rebuild_seconds(log: &Path) -> Option<f64> {
    let text = std::fs::read_to_string(log).ok()?;
    text.lines()
        .rev()
        .filter(|line| line.contains("impact index rebuilt"))
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter_map(|entry| {
            entry
                .get("seconds")
                .or_else(|| entry.get("fields").and_then(|f| f.get("seconds")))
                .and_then(serde_json::Value::as_f64)
        })
        .next()
}

/// How many lines of a log are at WARN or ERROR level.
fn log_problems(log: &Path) -> (usize, Vec<String>) {
    let Ok(text) = std::fs::read_to_string(log) else {
        return (0, Vec::new());
    };
    let mut samples = Vec::new();
    let mut count = 0;
    for line in text.lines() {
        let level = serde_json::from_str::<serde_json::Value>(line)
            .ok()
            .and_then(|entry| {
                entry
                    .get("level")
                    .and_then(|l| l.as_str().map(str::to_owned))
            });
        if matches!(level.as_deref(), Some("WARN" | "ERROR")) {
            count += 1;
            if samples.len() < 3 {
                samples.push(truncate(line));
            }
        }
    }
    (count, samples)
}

/// The postmaster's pid, from its data directory.
fn postmaster_pid(cluster: &desk_testkit::PgCluster) -> Option<String> {
    let dir = cluster.dir()?;
    let text = std::fs::read_to_string(dir.join("data").join("postmaster.pid")).ok()?;
    text.lines().next().map(|line| line.trim().to_owned())
}

/// CPU seconds of the postmaster, its reaped backends and its live children.
fn postgres_cpu_seconds(postmaster: Option<&str>) -> f64 {
    let Some(postmaster) = postmaster else {
        return 0.0;
    };
    let mut total = pid_cpu_seconds(postmaster, true);
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(pid) = name
                .to_str()
                .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
            else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            let parent = stat
                .rsplit(')')
                .next()
                .and_then(|rest| rest.split_whitespace().nth(1));
            if parent == Some(postmaster) {
                total += pid_cpu_seconds(pid, false);
            }
        }
    }
    total
}

async fn psql_count(database_url: &str, sql: &str) -> Option<u64> {
    let psql = desk_testkit::psql_binary().ok()?;
    let output = tokio::process::Command::new(psql)
        .arg(database_url)
        .args(["-At", "-c", sql])
        .output()
        .await
        .ok()?;
    String::from_utf8_lossy(&output.stdout).trim().parse().ok()
}

pub async fn run(args: CmdbArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        (1..=MAX_IMPORT_ITEMS).contains(&args.item_batch),
        "--item-batch must be between 1 and {MAX_IMPORT_ITEMS}"
    );
    anyhow::ensure!(
        (1..=MAX_IMPORT_RELATIONSHIPS).contains(&args.relation_batch),
        "--relation-batch must be between 1 and {MAX_IMPORT_RELATIONSHIPS}"
    );
    anyhow::ensure!(args.cis >= Layer::ALL.len(), "--cis must be at least 7");
    let run_started = Instant::now();
    let cpu_at_start = process_cpu_seconds();

    let started = Instant::now();
    let estate = generate(args.cis, args.relations, args.cross_links, args.seed);
    let generate_s = started.elapsed().as_secs_f64();
    eprintln!(
        "desk-bench cmdb: generated {} CIs and {} relationships ({} cross-links) in {:.1} s",
        estate.items.len(),
        estate.relations.len(),
        estate.cross_links,
        generate_s
    );
    if args.in_process_only {
        return in_process_only(&estate, &args, generate_s);
    }

    // What is measured: nats-server, PostgreSQL with synchronous commit, `desk serve --target cmdb`.
    let nats = desk_testkit::NatsServer::start().await?;
    let cluster = desk_testkit::start_cluster(false).await?;
    let database_url = cluster.create_database("bench").await?;
    let postmaster = postmaster_pid(&cluster);
    let launch = DeskLaunch::new(
        "cmdb",
        database_url.clone(),
        nats.url(),
        args.max_connections,
        // The rebuild time is logged at INFO by the CMDB.
        "warn,desk_cmdb=info",
    )?;
    let token: MetadataValue<Ascii> = format!(
        "Bearer {}",
        dev_token(
            &launch.secret,
            "bench-loader",
            TENANT,
            &["integrator"],
            24 * 3600
        )?
    )
    .parse()?;
    let log = std::env::temp_dir().join("desk-bench-cmdb.log");
    let restart_log: PathBuf = std::env::temp_dir().join("desk-bench-cmdb-restart.log");
    let mut desk = launch.spawn(&log)?;
    let client = wait_ready(launch.addr, &token, &log, Duration::from_secs(60)).await?;
    eprintln!(
        "desk-bench cmdb: desk up at {} (log {})",
        launch.addr,
        log.display()
    );
    let desk_pid = desk.id().map(|pid| pid.to_string());

    let mut errors = Errors::default();
    let cpu_before_import = (
        process_cpu_seconds(),
        desk_pid
            .as_deref()
            .map_or(0.0, |p| pid_cpu_seconds(p, false)),
        postgres_cpu_seconds(postmaster.as_deref()),
    );

    // ---- CIs ----
    let order = import_order(estate.items.len(), args.seed);
    let shuffled: Vec<pb::ImportItem> = order.iter().map(|&i| estate.items[i].clone()).collect();
    let item_chunks = batches(&shuffled, args.item_batch);
    let item_batches_planned = item_chunks.len();
    let cis_run = import(
        &client,
        &token,
        item_chunks,
        |items| pb::StageImportRequest {
            source: SOURCE.into(),
            items,
            relationships: Vec::new(),
            skip_invalid: false,
        },
        args.import_concurrency,
        "CI",
    )
    .await;
    let import_cis_s = cis_run.wall_s;
    let mut ids: Vec<Option<String>> = vec![None; estate.items.len()];
    let (mut cis_created, mut cis_matched) = (0, 0);
    let (mut ci_stage_s, mut ci_commit_s) = (0.0, 0.0);
    for outcome in &cis_run.outcomes {
        cis_created += outcome.created;
        cis_matched += outcome.unchanged;
        ci_stage_s += outcome.stage_s;
        ci_commit_s += outcome.commit_s;
        for problem in &outcome.problems {
            errors.add(problem.clone());
        }
        for (local_id, ci_id) in outcome.ids.clone() {
            if let Some(index) = local_id
                .strip_prefix('c')
                .and_then(|n| n.parse::<usize>().ok())
                .filter(|&n| n < ids.len())
            {
                ids[index] = Some(ci_id);
            }
        }
    }
    let cpu_after_cis = (
        process_cpu_seconds(),
        desk_pid
            .as_deref()
            .map_or(0.0, |p| pid_cpu_seconds(p, false)),
        postgres_cpu_seconds(postmaster.as_deref()),
    );

    // ---- relationships, between the committed CIs by id ----
    let mut missing_ends: u64 = 0;
    let wire: Vec<pb::ImportRelationship> = estate
        .relations
        .iter()
        .filter_map(|&(source, kind, target)| {
            match (&ids[source as usize], &ids[target as usize]) {
                (Some(source), Some(target)) => Some(pb::ImportRelationship {
                    source: source.clone(),
                    r#type: kind as i32,
                    target: target.clone(),
                }),
                _ => {
                    missing_ends += 1;
                    None
                }
            }
        })
        .collect();
    if missing_ends > 0 {
        errors.add(format!(
            "{missing_ends} relationships left out: an end was not imported"
        ));
        errors.count += missing_ends - 1;
    }
    let relation_chunks = batches(&wire, args.relation_batch);
    let relation_batches_planned = relation_chunks.len();
    let relations_run = import(
        &client,
        &token,
        relation_chunks,
        |relationships| pb::StageImportRequest {
            source: SOURCE.into(),
            items: Vec::new(),
            relationships,
            skip_invalid: false,
        },
        args.import_concurrency,
        "relationship",
    )
    .await;
    let import_relations_s = relations_run.wall_s;
    let (mut relations_created, mut relations_existing) = (0, 0);
    let (mut rel_stage_s, mut rel_commit_s) = (0.0, 0.0);
    for outcome in &relations_run.outcomes {
        relations_created += outcome.created;
        relations_existing += outcome.unchanged;
        rel_stage_s += outcome.stage_s;
        rel_commit_s += outcome.commit_s;
        for problem in &outcome.problems {
            errors.add(problem.clone());
        }
    }
    let cpu_after_relations = (
        process_cpu_seconds(),
        desk_pid
            .as_deref()
            .map_or(0.0, |p| pid_cpu_seconds(p, false)),
        postgres_cpu_seconds(postmaster.as_deref()),
    );

    // ---- the outbox drains, the database settles ----
    // Impact queries touch neither: they are measured once the relay has published every
    // import event and autovacuum has nothing left to do, so they do not share the two cores
    // with that work. How long the drain took is reported.
    let drain_started = Instant::now();
    let drain_deadline = drain_started + Duration::from_secs(300);
    let unpublished_sql = "SELECT count(*) FROM cmdb_outbox WHERE published_at IS NULL";
    let mut outbox_unpublished = psql_count(&database_url, unpublished_sql).await;
    while outbox_unpublished.is_some_and(|n| n > 0) && Instant::now() < drain_deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        outbox_unpublished = psql_count(&database_url, unpublished_sql).await;
    }
    let outbox_drain_s = drain_started.elapsed().as_secs_f64();
    let outbox_largest_unpublished = psql_count(
        &database_url,
        "SELECT coalesce(max(length(payload)), 0) FROM cmdb_outbox WHERE published_at IS NULL",
    )
    .await;
    if let Some(unpublished) = outbox_unpublished.filter(|n| *n > 0) {
        errors.add(format!(
            "{unpublished} events still unpublished in cmdb_outbox 300 s after the last write \
             (largest pending payload {} bytes)",
            outbox_largest_unpublished.unwrap_or(0)
        ));
    }
    let events_stored = psql_count(&database_url, "SELECT count(*) FROM cmdb_outbox").await;
    let vacuum_started = Instant::now();
    let _ = psql_count(&database_url, "VACUUM (ANALYZE)").await;
    let vacuum_s = vacuum_started.elapsed().as_secs_f64();
    // PostgreSQL shares the two cores with the desk and this client: without a checkpoint now its
    // background writer and checkpointer flush the import in bursts of tens of milliseconds
    // while the impact calls (which never touch the database) are timed.
    let checkpoint_started = Instant::now();
    let _ = psql_count(&database_url, "CHECKPOINT").await;
    let checkpoint_s = checkpoint_started.elapsed().as_secs_f64();

    // ---- impact ----
    let ImpactStarts {
        starts,
        warm_up,
        down_starts,
    } = ImpactStarts::choose(&estate, &ids, &args)?;
    // Upstream, the full closure and depth 3 explained compactly (`include_via`, the form for
    // large answers; the targets of the issue are read on these), depth 3 with whole paths,
    // and, on a tenth of the starts, the full closure with whole paths, to show what repeating
    // every path costs; downstream, the full closure explained compactly.
    let mut full = ImpactStats::new()?;
    let mut full_down = ImpactStats::new()?;
    let mut depth3 = ImpactStats::new()?;
    let mut depth3_paths = ImpactStats::new()?;
    let mut full_paths = ImpactStats::new()?;
    let mut full_summary = ImpactStats::new()?;
    let mut impact_errors: HashMap<String, u64> = HashMap::new();
    let mut visited_before: Vec<(String, u32)> = Vec::new();
    let mut impact_client = client.clone();
    for (n, start) in warm_up.iter().enumerate() {
        let down = down_starts[n % down_starts.len()];
        for (start, direction, max_depth, explain) in [
            (*start, UP, 0, Explain::Via),
            (*start, UP, 3, Explain::Via),
            (*start, UP, 3, Explain::Paths),
            (down, DOWN, 0, Explain::Via),
        ] {
            let _ = impact_client
                .analyze_impact(request(
                    impact_request(start, direction, max_depth, explain),
                    &token,
                ))
                .await;
        }
    }
    let desk_cpu_before_impact = desk_pid
        .as_deref()
        .map_or(0.0, |p| pid_cpu_seconds(p, false));
    let mut trace = match &args.trace_impact {
        Some(path) => Some(std::io::BufWriter::new(std::fs::File::create(path)?)),
        None => None,
    };
    eprintln!("desk-bench cmdb: timing impact analysis");
    let impact_started = Instant::now();
    for (n, start) in starts.iter().enumerate() {
        let mut kinds = vec![
            (*start, UP, 0, Explain::Via, &mut full),
            (*start, UP, 3, Explain::Via, &mut depth3),
            (*start, UP, 3, Explain::Paths, &mut depth3_paths),
            (down_starts[n], DOWN, 0, Explain::Via, &mut full_down),
            (*start, UP, 0, Explain::Summary, &mut full_summary),
        ];
        if n % 10 == 0 {
            kinds.push((*start, UP, 0, Explain::Paths, &mut full_paths));
        }
        for (start, direction, max_depth, explain, stats) in kinds {
            let call = Instant::now();
            match impact_client
                .analyze_impact(request(
                    impact_request(start, direction, max_depth, explain),
                    &token,
                ))
                .await
            {
                Ok(response) => {
                    let micros = call.elapsed().as_micros() as u64;
                    let response = response.into_inner();
                    if let Some(trace) = trace.as_mut() {
                        use std::io::Write as _;
                        writeln!(
                            trace,
                            "{} {max_depth} {explain:?} {micros} {} {} {} {direction:?}",
                            impact_started.elapsed().as_micros(),
                            response.cis.len(),
                            response.encoded_len(),
                            response.visited
                        )?;
                    }
                    if direction == UP && max_depth == 0 && explain == Explain::Via && n < 20 {
                        visited_before.push((start.to_owned(), response.visited));
                    }
                    stats.record(micros, &response);
                }
                Err(status) => {
                    let key = format!("{:?}", status.code());
                    let first = !impact_errors.contains_key(&key);
                    *impact_errors.entry(key).or_default() += 1;
                    if first {
                        errors.add(format!(
                            "AnalyzeImpact (max_depth {max_depth}) from {start} failed: {:?} {}",
                            status.code(),
                            truncate(status.message())
                        ));
                    } else {
                        errors.count += 1;
                    }
                }
            }
        }
    }
    let impact_s = impact_started.elapsed().as_secs_f64();
    // The cost of a call itself (JWT, routing, HTTP/2 on loopback, both ends' protobuf): the
    // closure of a business service upstream is the business service alone.
    let mut floor = ImpactStats::new()?;
    let business: Vec<&str> = estate.members[&Layer::BusinessService]
        .iter()
        .filter_map(|&i| ids[i as usize].as_deref())
        .collect();
    for n in 0..args.impact_queries {
        let Some(start) = business.get(n % business.len().max(1)) else {
            break;
        };
        let call = Instant::now();
        if let Ok(response) = impact_client
            .analyze_impact(request(impact_request(start, UP, 1, Explain::Via), &token))
            .await
        {
            floor.record(call.elapsed().as_micros() as u64, response.get_ref());
        }
    }
    let in_process = InProcessStats::new()?;
    let in_process = match InProcess::new(&estate, &ids, args.seed) {
        Some(index) => {
            eprintln!("desk-bench cmdb: timing the desk's share in process");
            in_process.timed(&index, &starts, &down_starts)
        }
        None => {
            errors.add("the in-process impact index could not be built");
            in_process
        }
    };
    let desk_cpu_before_restart = desk_pid
        .as_deref()
        .map_or(0.0, |p| pid_cpu_seconds(p, false));

    // ---- restart: SIGTERM, wait, start again on the same database and NATS ----
    let stop_started = Instant::now();
    if let Some(pid) = desk.id() {
        desk_testkit::send_signal(pid, "TERM");
    }
    match tokio::time::timeout(Duration::from_secs(60), desk.wait()).await {
        Ok(_) => {}
        Err(_) => {
            errors.add("desk did not stop within 60 s of SIGTERM; killed");
            let _ = desk.start_kill();
            let _ = desk.wait().await;
        }
    }
    let shutdown_s = stop_started.elapsed().as_secs_f64();
    let (log_warnings, log_samples) = log_problems(&log);
    let restart_started = Instant::now();
    let mut desk = launch.spawn(&restart_log)?;
    let mut restarted =
        wait_ready(launch.addr, &token, &restart_log, Duration::from_secs(600)).await?;
    let restart_to_ready_s = restart_started.elapsed().as_secs_f64();
    let index_rebuild_s = rebuild_seconds(&restart_log);
    if index_rebuild_s.is_none() {
        errors.add(format!(
            "no \"impact index rebuilt\" line in {}",
            restart_log.display()
        ));
    }
    // The same full closures from the index rebuilt at start (packed in one go, where the live
    // one was packed again and again while the import went on).
    let mut after_restart = ImpactStats::new()?;
    for start in &starts {
        let call = Instant::now();
        if let Ok(response) = restarted
            .analyze_impact(request(impact_request(start, UP, 0, Explain::Via), &token))
            .await
        {
            after_restart.record(call.elapsed().as_micros() as u64, response.get_ref());
        }
    }
    // The rebuilt index must answer as the live one did.
    let mut restart_mismatches = 0;
    for (start, visited) in &visited_before {
        match restarted
            .analyze_impact(request(impact_request(start, UP, 0, Explain::Via), &token))
            .await
        {
            Ok(response) if response.get_ref().visited == *visited => {}
            Ok(response) => {
                restart_mismatches += 1;
                errors.add(format!(
                    "after the restart, the closure from {start} visits {} CIs, not {visited}",
                    response.get_ref().visited
                ));
            }
            Err(status) => {
                restart_mismatches += 1;
                errors.add(format!(
                    "after the restart, AnalyzeImpact from {start} failed: {:?} {}",
                    status.code(),
                    truncate(status.message())
                ));
            }
        }
    }
    let desk_cpu_after_restart = desk
        .id()
        .map_or(0.0, |p| pid_cpu_seconds(&p.to_string(), false));

    let stored_cis = psql_count(
        &database_url,
        &format!("SELECT count(*) FROM cis WHERE tenant_id = '{TENANT}'"),
    )
    .await;
    let stored_relations = psql_count(
        &database_url,
        &format!(
            "SELECT count(*) FROM ci_relationships WHERE tenant_id = '{TENANT}' AND removed_at IS NULL"
        ),
    )
    .await;
    let client_cpu_s = process_cpu_seconds() - cpu_at_start;

    let per_s = |count: usize, seconds: f64| {
        if seconds > 0.0 {
            (count as f64 / seconds).round()
        } else {
            0.0
        }
    };
    let mut estate_json = serde_json::Map::new();
    for layer in Layer::ALL {
        estate_json.insert(
            layer.class().to_owned(),
            json!(estate.members.get(&layer).map_or(0, Vec::len)),
        );
    }
    let mut relation_mix: HashMap<String, usize> = HashMap::new();
    for (_, kind, _) in &estate.relations {
        *relation_mix
            .entry(
                kind.as_str_name()
                    .trim_start_matches("RELATIONSHIP_TYPE_")
                    .to_lowercase(),
            )
            .or_default() += 1;
    }
    let mut result = serde_json::Map::new();
    result.insert("benchmark".into(), json!("cmdb"));
    result.insert("cis_requested".into(), json!(args.cis));
    result.insert("relations_requested".into(), json!(args.relations));
    result.insert("relations_generated".into(), json!(estate.relations.len()));
    result.insert("cross_links".into(), json!(estate.cross_links));
    result.insert("cis".into(), json!(cis_created + cis_matched));
    result.insert("cis_created".into(), json!(cis_created));
    result.insert("relations".into(), json!(relations_created));
    result.insert("relations_already_stored".into(), json!(relations_existing));
    result.insert("stored_cis".into(), json!(stored_cis));
    result.insert("stored_relations".into(), json!(stored_relations));
    result.insert("estate".into(), serde_json::Value::Object(estate_json));
    result.insert("relation_mix".into(), json!(relation_mix));
    result.insert(
        "import_cis_per_s".into(),
        json!(per_s(cis_created + cis_matched, import_cis_s)),
    );
    result.insert("import_cis_s".into(), json!(round(import_cis_s, 2)));
    result.insert("import_cis_stage_s".into(), json!(round(ci_stage_s, 2)));
    result.insert("import_cis_commit_s".into(), json!(round(ci_commit_s, 2)));
    result.insert(
        "import_item_batches".into(),
        json!({
            "planned": item_batches_planned,
            "committed": cis_run.outcomes.len(),
            "split_after_timeout": cis_run.splits,
            "timed_out_s": round(cis_run.timed_out_s, 1),
            "final_size": cis_run.final_batch,
        }),
    );
    result.insert(
        "import_relations_per_s".into(),
        json!(per_s(
            relations_created + relations_existing,
            import_relations_s
        )),
    );
    result.insert(
        "import_relations_s".into(),
        json!(round(import_relations_s, 2)),
    );
    result.insert(
        "import_relations_stage_s".into(),
        json!(round(rel_stage_s, 2)),
    );
    result.insert(
        "import_relations_commit_s".into(),
        json!(round(rel_commit_s, 2)),
    );
    result.insert(
        "import_relation_batches".into(),
        json!({
            "planned": relation_batches_planned,
            "committed": relations_run.outcomes.len(),
            "split_after_timeout": relations_run.splits,
            "timed_out_s": round(relations_run.timed_out_s, 1),
            "final_size": relations_run.final_batch,
        }),
    );
    result.insert("import_concurrency".into(), json!(args.import_concurrency));
    result.insert(
        "import_cis_cpu_s".into(),
        json!({
            "client": round(cpu_after_cis.0 - cpu_before_import.0, 2),
            "desk": round(cpu_after_cis.1 - cpu_before_import.1, 2),
            "postgres": round(cpu_after_cis.2 - cpu_before_import.2, 2),
        }),
    );
    result.insert(
        "import_relations_cpu_s".into(),
        json!({
            "client": round(cpu_after_relations.0 - cpu_after_cis.0, 2),
            "desk": round(cpu_after_relations.1 - cpu_after_cis.1, 2),
            "postgres": round(cpu_after_relations.2 - cpu_after_cis.2, 2),
        }),
    );
    result.insert("impact_queries".into(), json!(args.impact_queries));
    full.json("impact_full", &mut result);
    depth3.json("impact_depth3", &mut result);
    full_down.json("impact_full_downstream", &mut result);
    full_summary.json("impact_full_summary", &mut result);
    depth3_paths.json("impact_depth3_paths", &mut result);
    full_paths.json("impact_full_paths", &mut result);
    floor.json("impact_floor", &mut result);
    after_restart.json("impact_full_after_restart", &mut result);
    in_process.json(&mut result);
    result.insert("impact_s".into(), json!(round(impact_s, 2)));
    result.insert("impact_errors".into(), json!(impact_errors));
    result.insert(
        "impact_desk_cpu_s".into(),
        json!(round(desk_cpu_before_restart - desk_cpu_before_impact, 2)),
    );
    result.insert("shutdown_s".into(), json!(round(shutdown_s, 2)));
    result.insert(
        "index_rebuild_s".into(),
        json!(index_rebuild_s.map(|s| round(s, 3))),
    );
    result.insert(
        "restart_to_ready_s".into(),
        json!(round(restart_to_ready_s, 3)),
    );
    result.insert(
        "restart_desk_cpu_s".into(),
        json!(round(desk_cpu_after_restart, 2)),
    );
    result.insert(
        "restart_consistent".into(),
        json!(restart_mismatches == 0 && !visited_before.is_empty()),
    );
    result.insert("errors".into(), json!(errors.count));
    result.insert("error_samples".into(), json!(errors.samples));
    result.insert("outbox_unpublished".into(), json!(outbox_unpublished));
    result.insert("outbox_events".into(), json!(events_stored));
    result.insert(
        "outbox_drain_after_import_s".into(),
        json!(round(outbox_drain_s, 2)),
    );
    result.insert("vacuum_before_impact_s".into(), json!(round(vacuum_s, 2)));
    result.insert(
        "checkpoint_before_impact_s".into(),
        json!(round(checkpoint_s, 2)),
    );
    result.insert(
        "outbox_largest_unpublished_bytes".into(),
        json!(outbox_largest_unpublished),
    );
    result.insert("desk_log_warnings".into(), json!(log_warnings));
    result.insert("desk_log_samples".into(), json!(log_samples));
    result.insert("client_cpu_s".into(), json!(round(client_cpu_s, 2)));
    result.insert("generate_s".into(), json!(round(generate_s, 2)));
    result.insert(
        "total_s".into(),
        json!(round(run_started.elapsed().as_secs_f64(), 1)),
    );
    result.insert("synchronous_commit".into(), json!(true));
    result.insert(
        "cores".into(),
        json!(
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        ),
    );
    println!(
        "{}",
        serde_json::to_string_pretty(&serde_json::Value::Object(result))?
    );

    let _ = desk.start_kill();
    let _ = desk.wait().await;
    cluster.stop().await;
    drop(nats);
    Ok(())
}
