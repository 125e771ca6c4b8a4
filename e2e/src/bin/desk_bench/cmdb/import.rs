//! The import phase: the estate loaded through the import API as a discovery source would,
//! `StageImport` then `CommitImport`, CIs first and then the relationships between the committed
//! CIs by id, in batches kept under the CMDB's gRPC message limit; a batch that runs into the
//! desk's request timeout is split in half and tried again. What each half took, in wall-clock
//! and CPU seconds, is kept for the report.

use std::time::Instant;

use desk_proto::cmdb::v1::{self as pb, RelationshipType as Rel};
use tonic::metadata::{Ascii, MetadataValue};

use super::{
    CmdbArgs,
    client::{Client, request},
    estate::{Estate, import_order},
    probes::CpuSeconds,
    report::{Errors, truncate},
};

/// Requests are kept under this many bytes, below the CMDB's gRPC message limit.
const REQUEST_BUDGET: usize = desk_cmdb::IMPORT_MESSAGE_BYTES - 512 * 1024;
const SOURCE: &str = "bench-discovery";

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

/// What one committed batch did.
#[derive(Default)]
pub(super) struct BatchOutcome {
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

/// What importing one kind of thing took.
pub(super) struct ImportRun {
    pub(super) outcomes: Vec<BatchOutcome>,
    pub(super) wall_s: f64,
    /// Batches that timed out and were split in half.
    pub(super) splits: usize,
    /// Time spent on the batches that timed out.
    pub(super) timed_out_s: f64,
    /// The batch size in use at the end.
    pub(super) final_batch: usize,
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

/// What loading the estate did: each CI's id by estate index, and how each half of the load went.
pub(super) struct Imported {
    /// The committed CI's id by estate index; `None` where the CI was not imported.
    pub(super) ids: Vec<Option<String>>,
    pub(super) item_batches_planned: usize,
    pub(super) cis_run: ImportRun,
    pub(super) cis_created: usize,
    /// CIs that the desk identified as ones it already held.
    pub(super) cis_matched: usize,
    pub(super) ci_stage_s: f64,
    pub(super) ci_commit_s: f64,
    pub(super) relation_batches_planned: usize,
    pub(super) relations_run: ImportRun,
    pub(super) relations_created: usize,
    pub(super) relations_existing: usize,
    pub(super) rel_stage_s: f64,
    pub(super) rel_commit_s: f64,
    pub(super) cpu_before_import: CpuSeconds,
    pub(super) cpu_after_cis: CpuSeconds,
    pub(super) cpu_after_relations: CpuSeconds,
}

/// Imports the estate's CIs in the order discovery found them, then the relationships between
/// the committed CIs by id; reads the CPU seconds of this process, the desk (`desk_pid`) and
/// PostgreSQL (`postmaster`) before, between and after.
pub(super) async fn load(
    estate: &Estate,
    args: &CmdbArgs,
    client: &Client,
    token: &MetadataValue<Ascii>,
    (desk_pid, postmaster): (Option<&str>, Option<&str>),
    errors: &mut Errors,
) -> Imported {
    let cpu_before_import = CpuSeconds::now(desk_pid, postmaster);

    // ---- CIs ----
    let order = import_order(estate.items.len(), args.seed);
    let shuffled: Vec<pb::ImportItem> = order.iter().map(|&i| estate.items[i].clone()).collect();
    let item_chunks = batches(&shuffled, args.item_batch);
    let item_batches_planned = item_chunks.len();
    let cis_run = import(
        client,
        token,
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
    let cpu_after_cis = CpuSeconds::now(desk_pid, postmaster);

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
        client,
        token,
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
    let cpu_after_relations = CpuSeconds::now(desk_pid, postmaster);

    Imported {
        ids,
        item_batches_planned,
        cis_run,
        cis_created,
        cis_matched,
        ci_stage_s,
        ci_commit_s,
        relation_batches_planned,
        relations_run,
        relations_created,
        relations_existing,
        rel_stage_s,
        rel_commit_s,
        cpu_before_import,
        cpu_after_cis,
        cpu_after_relations,
    }
}
