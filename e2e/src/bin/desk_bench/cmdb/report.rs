//! What a run reports: the problems worth a look (counted, a few kept as samples), the rounding
//! of numbers, and the one JSON object `desk-bench cmdb` prints, assembled from what each phase
//! measured.

use std::{collections::HashMap, time::Instant};

use hdrhistogram::Histogram;
use serde_json::json;

use super::{
    CmdbArgs,
    estate::{Estate, Layer},
    impact::Timed,
    import::Imported,
    in_process::InProcessStats,
    probes::Settled,
    restart::Restarted,
};

/// Problems worth a look, kept to a few examples.
#[derive(Default)]
pub(super) struct Errors {
    pub(super) count: u64,
    pub(super) samples: Vec<String>,
}

impl Errors {
    pub(super) fn add(&mut self, what: impl Into<String>) {
        self.count += 1;
        if self.samples.len() < 8 {
            let what = what.into();
            eprintln!("desk-bench cmdb: {what}");
            self.samples.push(what);
        }
    }
}

/// At most 300 characters of `text`, for messages that quote an answer or a log line.
pub(super) fn truncate(text: &str) -> String {
    if text.chars().count() > 300 {
        format!("{}…", text.chars().take(300).collect::<String>())
    } else {
        text.to_owned()
    }
}

/// A histogram's `quantile` of microseconds, in milliseconds to two places.
pub(super) fn ms(histogram: &Histogram<u64>, quantile: f64) -> f64 {
    (histogram.value_at_quantile(quantile) as f64 / 1000.0 * 100.0).round() / 100.0
}

pub(super) fn round(value: f64, places: i32) -> f64 {
    let factor = 10_f64.powi(places);
    (value * factor).round() / factor
}

/// Everything a run with a desk measured, phase by phase.
pub(super) struct Measured<'a> {
    pub(super) args: &'a CmdbArgs,
    pub(super) estate: &'a Estate,
    pub(super) generate_s: f64,
    pub(super) imported: Imported,
    pub(super) settled: Settled,
    pub(super) timed: Timed,
    pub(super) in_process: InProcessStats,
    /// The desk's CPU seconds once the impact calls (and the in-process timings) were done.
    pub(super) desk_cpu_before_restart: f64,
    pub(super) restarted: Restarted,
    /// CIs and live relationships stored for the bench tenant.
    pub(super) stored: (Option<u64>, Option<u64>),
    pub(super) errors: Errors,
    pub(super) client_cpu_s: f64,
    pub(super) run_started: Instant,
}

/// The JSON object of a run with a desk.
pub(super) fn result(measured: Measured<'_>) -> serde_json::Map<String, serde_json::Value> {
    let Measured {
        args,
        estate,
        generate_s,
        imported,
        settled,
        timed,
        in_process,
        desk_cpu_before_restart,
        restarted,
        stored: (stored_cis, stored_relations),
        errors,
        client_cpu_s,
        run_started,
    } = measured;
    let Imported {
        ids: _,
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
    } = imported;
    let (import_cis_s, import_relations_s) = (cis_run.wall_s, relations_run.wall_s);
    let Settled {
        outbox_unpublished,
        outbox_drain_s,
        outbox_largest_unpublished,
        events_stored,
        vacuum_s,
        checkpoint_s,
    } = settled;
    let Timed {
        full,
        full_down,
        depth3,
        depth3_paths,
        full_paths,
        full_summary,
        floor,
        impact_errors,
        visited_before,
        impact_s,
        desk_cpu_before_impact,
    } = timed;
    let Restarted {
        shutdown_s,
        log_warnings,
        log_samples,
        restart_to_ready_s,
        index_rebuild_s,
        after_restart,
        restart_mismatches,
        desk_cpu_after_restart,
    } = restarted;

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
            "client": round(cpu_after_cis.client - cpu_before_import.client, 2),
            "desk": round(cpu_after_cis.desk - cpu_before_import.desk, 2),
            "postgres": round(cpu_after_cis.postgres - cpu_before_import.postgres, 2),
        }),
    );
    result.insert(
        "import_relations_cpu_s".into(),
        json!({
            "client": round(cpu_after_relations.client - cpu_after_cis.client, 2),
            "desk": round(cpu_after_relations.desk - cpu_after_cis.desk, 2),
            "postgres": round(cpu_after_relations.postgres - cpu_after_cis.postgres, 2),
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
    result
}
