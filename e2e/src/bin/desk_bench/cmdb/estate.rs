//! The estate the suite imports, generated deterministically from `--seed`: a layered estate of
//! business services, application services, applications, databases, virtual machines, servers
//! and network devices (every CI identifiable by the first rule of its class), the relationships
//! between them, and the order discovery reports the CIs in. Pure: no I/O, nothing timed.

use std::collections::{HashMap, HashSet};

use desk_proto::cmdb::v1::{self as pb, RelationshipType as Rel, attribute_value};

// ---- a small deterministic generator (SplitMix64), so runs are comparable ----

pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
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
    pub(crate) fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }

    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1_u64 << 53) as f64
    }

    pub(crate) fn pick<T: Copy>(&mut self, values: &[T]) -> T {
        values[self.below(values.len())]
    }
}

// ---- the estate ----

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Layer {
    BusinessService,
    ApplicationService,
    Application,
    Database,
    VirtualMachine,
    Server,
    NetworkDevice,
}

impl Layer {
    pub(crate) const ALL: [Layer; 7] = [
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

    pub(crate) const fn class(self) -> &'static str {
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
    pub(crate) const fn is_lower(self) -> bool {
        matches!(
            self,
            Layer::Database | Layer::VirtualMachine | Layer::Server | Layer::NetworkDevice
        )
    }
}

pub(crate) struct Estate {
    /// Import items, by estate index; `local_id` is `c<index>`.
    pub(crate) items: Vec<pb::ImportItem>,
    pub(crate) layer_of: Vec<Layer>,
    pub(crate) members: HashMap<Layer, Vec<u32>>,
    /// `(source, type, target)` by estate index.
    pub(crate) relations: Vec<(u32, Rel, u32)>,
    pub(crate) cross_links: usize,
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

pub(crate) fn generate(cis: usize, relations: usize, cross_links: f64, seed: u64) -> Estate {
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

/// The order the CIs are imported in, by estate index: shuffled, as discovery finds them. The
/// desk numbers CIs in its impact index in this order (by id, and ids grow with time), so the
/// in-process index is built in it too: the index's memory layout is part of what is timed.
pub(crate) fn import_order(cis: usize, seed: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..cis).collect();
    let mut rng = Rng::new(seed.wrapping_add(1));
    for i in (1..order.len()).rev() {
        order.swap(i, rng.below(i + 1));
    }
    order
}
