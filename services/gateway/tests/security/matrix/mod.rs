//! The authorization matrix: every RPC of every public service in the descriptor set, for each
//! role and each relation of the caller to the object, with the outcome expected — asserted
//! against the running desk through the gateway, and printed as a table.
//!
//! # Adding a service's rows (one file)
//! A service's rows are one file here, `matrix/<service>.rs`, exporting
//! `pub fn rows() -> Table` and listed in [`tables`]. A [`Row`] names a method, how its request
//! is built for one [`Cell`] (an `async fn(Cell) -> anyhow::Result<Probe>`, which may create the
//! objects it needs through the gateway) and the expected [`Outcome`] per role for the three
//! [`Relation`]s, written `expect(&[roles], "own same other")` with one letter each:
//!
//! | letter | outcome | the answer |
//! |---|---|---|
//! | `A` | allowed | passed authorization: `OK` (with the probe's secret in the answer, when it has one), `FAILED_PRECONDITION`, `ABORTED` or `ALREADY_EXISTS` |
//! | `F` | filtered | `OK`, without the probe's secret (a list or read leaving out what the caller may not see) |
//! | `N` | not found | `NOT_FOUND`: the object is hidden, as if it did not exist |
//! | `D` | denied | `PERMISSION_DENIED`: the caller sees the object but may not do this |
//! | `I` | invalid | `INVALID_ARGUMENT`: e.g. a protected field the caller may not set |
//! | `-` | not applicable | no call: the relation means nothing here (a create's new object, tenant settings) |
//!
//! A method may have several rows (one per kind of request: a protected field set, an internal
//! comment); each is checked and printed.
//! A method of the descriptor set without a row fails the suite with a message naming the
//! method and the file to add; a row must give every role an outcome; no row may expect `A`
//! for another tenant's object. [`Row::pending`] marks a method whose rows are still to be
//! written: printed as `PENDING` with its reason, never counted as checked.

pub mod catalog;
pub mod change;
pub mod cmdb;
pub mod directory;
pub mod notifications;
pub mod sla;
pub mod tickets;

use std::{collections::BTreeMap, fmt::Write as _};

use anyhow::bail;
use bytes::Bytes;
use futures::future::BoxFuture;
use tonic::{Code, transport::Channel};

pub use crate::support::TENANT;
use crate::{
    desk::{Answer, Desk, call, public_methods},
    support::token,
};
use desk_testkit::service::OTHER_TENANT;

/// The roles of the matrix (ARCHITECTURE §7), by their claim names.
pub const ROLES: &[&str] = &[
    "requester",
    "agent",
    "manager",
    "change_manager",
    "cab_member",
    "catalog_admin",
    "admin",
    "integrator",
];

/// How the object of a call relates to its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Relation {
    /// The caller's own: raised, created or owned by the caller.
    Own,
    /// Someone else's in the caller's tenant.
    SameTenant,
    /// Another tenant's.
    OtherTenant,
}

pub const RELATIONS: [Relation; 3] = [Relation::Own, Relation::SameTenant, Relation::OtherTenant];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Allowed,
    Filtered,
    NotFound,
    Denied,
    Invalid,
    NotApplicable,
}

impl Outcome {
    fn parse(letter: char) -> Option<Outcome> {
        Some(match letter {
            'A' => Outcome::Allowed,
            'F' => Outcome::Filtered,
            'N' => Outcome::NotFound,
            'D' => Outcome::Denied,
            'I' => Outcome::Invalid,
            '-' => Outcome::NotApplicable,
            _ => return None,
        })
    }

    fn letter(self) -> char {
        match self {
            Outcome::Allowed => 'A',
            Outcome::Filtered => 'F',
            Outcome::NotFound => 'N',
            Outcome::Denied => 'D',
            Outcome::Invalid => 'I',
            Outcome::NotApplicable => '-',
        }
    }
}

/// One call of the matrix: who calls, about which object.
#[derive(Clone)]
pub struct Cell {
    pub role: &'static str,
    pub relation: Relation,
    /// `sec-<role>`, in [`TENANT`]: the caller, whose own objects are raised under this subject.
    pub subject: String,
    pub gateway: Channel,
    /// A fresh string per cell, for titles and idempotency keys.
    pub unique: String,
}

impl Cell {
    /// The caller's `authorization` header.
    pub fn authorization(&self) -> String {
        format!("Bearer {}", token(&self.subject, TENANT, &[self.role]))
    }

    /// Who owns the cell's object and in which tenant: the caller, a neighbour, a stranger.
    pub fn owner(&self) -> (String, &'static str) {
        match self.relation {
            Relation::Own => (self.subject.clone(), TENANT),
            Relation::SameTenant => (format!("neighbour-{}", self.unique), TENANT),
            Relation::OtherTenant => (format!("stranger-{}", self.unique), OTHER_TENANT),
        }
    }

    /// A token of `subject` in `tenant` with `roles`, for setting up the cell's objects.
    pub fn token_of(subject: &str, tenant: &str, roles: &[&str]) -> String {
        format!("Bearer {}", token(subject, tenant, roles))
    }
}

/// The request of a cell, and what only a caller allowed to see the object gets back.
pub struct Probe {
    pub request: Vec<u8>,
    /// A string the answer carries only if the caller may see it (an id, an internal comment's
    /// text); `A` requires it in an `OK` answer, `F` its absence.
    pub secret: Option<String>,
}

pub type Build = fn(Cell) -> BoxFuture<'static, anyhow::Result<Probe>>;

pub struct Row {
    pub method: &'static str,
    check: Check,
}

enum Check {
    Cells {
        build: Build,
        expect: Vec<(&'static [&'static str], &'static str)>,
    },
    Pending(&'static str),
}

impl Row {
    /// `method`'s requests come from `build`; `expect` gives each role's outcomes, own same other.
    pub fn new(
        method: &'static str,
        build: Build,
        expect: Vec<(&'static [&'static str], &'static str)>,
    ) -> Row {
        Row {
            method,
            check: Check::Cells { build, expect },
        }
    }

    /// A method whose rows are not written yet, and why.
    pub fn pending(method: &'static str, reason: &'static str) -> Row {
        Row {
            method,
            check: Check::Pending(reason),
        }
    }
}

/// One service's rows.
pub struct Table {
    /// `desk.tickets.v1.TicketService`.
    pub service: &'static str,
    /// `tests/security/matrix/tickets.rs`, named in failures.
    pub file: &'static str,
    pub rows: Vec<Row>,
}

/// Every service's table. A new service adds its module above and its line here.
fn tables() -> Vec<Table> {
    vec![
        tickets::rows(),
        cmdb::rows(),
        directory::rows(),
        change::rows(),
        sla::rows(),
        notifications::rows(),
        catalog::rows(),
    ]
}

fn expected_outcomes(
    row: &Row,
    expect: &[(&'static [&'static str], &'static str)],
    file: &str,
) -> anyhow::Result<BTreeMap<&'static str, [Outcome; 3]>> {
    let mut by_role = BTreeMap::new();
    for (roles, letters) in expect {
        let outcomes: Vec<Outcome> = letters
            .split_whitespace()
            .map(|word| {
                let mut chars = word.chars();
                match (chars.next().and_then(Outcome::parse), chars.next()) {
                    (Some(outcome), None) => Ok(outcome),
                    _ => bail!("{file}: {}: {word:?} is not one of A F N D I -", row.method),
                }
            })
            .collect::<anyhow::Result<_>>()?;
        let Ok(outcomes) = <[Outcome; 3]>::try_from(outcomes) else {
            bail!(
                "{file}: {}: {letters:?} must give three outcomes (own same other)",
                row.method
            );
        };
        if outcomes[2] == Outcome::Allowed {
            bail!(
                "{file}: {}: expects another tenant's object to be allowed; cross-tenant access never is",
                row.method
            );
        }
        for role in *roles {
            if !ROLES.contains(role) {
                bail!("{file}: {}: unknown role {role:?}", row.method);
            }
            if by_role.insert(*role, outcomes).is_some() {
                bail!("{file}: {}: role {role} given twice", row.method);
            }
        }
    }
    if let Some(missing) = ROLES.iter().find(|role| !by_role.contains_key(*role)) {
        bail!("{file}: {}: no outcome for role {missing}", row.method);
    }
    Ok(by_role)
}

/// What the answer says, as the letter it matches (`?` for none) and a short description.
fn observed(answer: &Answer, secret: Option<&str>) -> (Option<Outcome>, String) {
    let shows_secret = secret.is_some_and(|secret| {
        answer
            .body
            .windows(secret.len())
            .any(|window| window == secret.as_bytes())
    });
    let outcome = match answer.code {
        Code::Ok if secret.is_none() || shows_secret => Some(Outcome::Allowed),
        Code::Ok => Some(Outcome::Filtered),
        Code::FailedPrecondition | Code::Aborted | Code::AlreadyExists => Some(Outcome::Allowed),
        Code::NotFound => Some(Outcome::NotFound),
        Code::PermissionDenied => Some(Outcome::Denied),
        Code::InvalidArgument => Some(Outcome::Invalid),
        _ => None,
    };
    (outcome, format!("{:?}", answer.code))
}

// Multi-threaded as in production: the CMDB moves large imports off the runtime (`block_in_place`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_authorization_matrix_holds_for_every_public_method() -> anyhow::Result<()> {
    let methods = public_methods()?;
    let tables = tables();
    // Coverage first: it needs no desk, and names what to add.
    let mut missing = Vec::new();
    for method in &methods {
        let table = tables.iter().find(|t| t.service == method.service);
        let has_row = table.is_some_and(|t| t.rows.iter().any(|r| r.method == method.name));
        if !has_row {
            let file = table.map_or_else(
                || format!("tests/security/matrix/{}.rs (a new table, listed in matrix/mod.rs `tables`)", method.area),
                |t| t.file.to_owned(),
            );
            missing.push(format!("{} has no rows: add them to {file}", method.path()));
        }
    }
    for table in &tables {
        for row in &table.rows {
            if !methods
                .iter()
                .any(|m| m.service == table.service && m.name == row.method)
            {
                missing.push(format!(
                    "{}: {}/{} is no method of the descriptor set",
                    table.file, table.service, row.method
                ));
            }
        }
    }
    anyhow::ensure!(
        missing.is_empty(),
        "the authorization matrix does not cover every public method:\n{}",
        missing.join("\n")
    );

    let desk = Desk::start().await?;
    let mut printed = String::new();
    let header: Vec<String> = ROLES.iter().map(|role| format!("{role:>16}")).collect();
    let _ = writeln!(printed, "{:<58}{}", "method", header.join(""));
    let mut failures = Vec::new();
    let mut counts = (0usize, 0usize);
    let mut sequence = 0u64;
    for table in &tables {
        for row in &table.rows {
            let name = format!(
                "{}/{}",
                table.service.rsplit('.').next().unwrap_or(""),
                row.method
            );
            let (build, expect) = match &row.check {
                Check::Pending(reason) => {
                    counts.1 += 1;
                    let _ = writeln!(printed, "{name:<58}PENDING: {reason}");
                    continue;
                }
                Check::Cells { build, expect } => (build, expect),
            };
            counts.0 += 1;
            let expected = expected_outcomes(row, expect, table.file)?;
            let mut line = format!("{name:<58}");
            for role in ROLES {
                let mut cell_text = String::new();
                for (index, relation) in RELATIONS.into_iter().enumerate() {
                    sequence += 1;
                    let cell = Cell {
                        role,
                        relation,
                        subject: format!("sec-{role}"),
                        gateway: desk.gateway_channel(),
                        unique: format!("{sequence}"),
                    };
                    let authorization = cell.authorization();
                    let wanted = expected[role][index];
                    if wanted == Outcome::NotApplicable {
                        cell_text.push('-');
                        continue;
                    }
                    let probe = build(cell).await.map_err(|error| {
                        anyhow::anyhow!(
                            "{}: {} for {role}/{relation:?}: {error:#}",
                            table.file,
                            row.method
                        )
                    })?;
                    let answer = call(
                        desk.gateway_channel(),
                        &format!("/{}/{}", table.service, row.method),
                        Bytes::from(probe.request),
                        Some(&authorization),
                    )
                    .await?;
                    let (got, code) = observed(&answer, probe.secret.as_deref());
                    let letter = got.map_or('?', Outcome::letter);
                    if got != Some(wanted) {
                        cell_text.push(letter.to_ascii_lowercase());
                        failures.push(format!(
                            "{name} as {role} on a {relation:?} object: expected {}, got {code} {} ({})",
                            wanted.letter(),
                            letter,
                            answer.message
                        ));
                    } else {
                        cell_text.push(letter);
                    }
                    if relation == Relation::OtherTenant && got == Some(Outcome::Allowed) {
                        failures.push(format!("{name} as {role}: CROSS-TENANT ACCESS ({code})"));
                    }
                }
                line.push_str(&format!("{cell_text:>16}"));
            }
            let _ = writeln!(printed, "{line}");
        }
    }
    let _ = writeln!(
        printed,
        "each role: own, same tenant, other tenant (A allowed, F filtered, N not found, D denied, I invalid, - n/a)\n{} rows checked, {} methods pending; a lower-case letter is an answer that differs from the table",
        counts.0, counts.1
    );
    println!("{printed}");
    anyhow::ensure!(
        failures.is_empty(),
        "{printed}\n{} cells differ from the matrix:\n{}",
        failures.len(),
        failures.join("\n")
    );
    Ok(())
}
