//! The sweep's MLflow run: created before the first job (so each job can name it as its
//! `mlflow.parentRunId` and `mlflow ui` nests the jobs under it), ended with the sweep's
//! totals and its report as artifacts. Like all tracking, it only ever warns.

use super::manifest::{JobState, Manifest, ParentRun};
use super::plan::Plan;
use super::report::{board_name, SweepReport};
use crate::tracking::{self, Destination, Record, Scalar, Status};
use crate::util::layout::{SWEEP_CSV, SWEEP_HTML};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn record(dir: &Path, experiment: &str, swept: &[(String, String)], start_ms: i64) -> Record {
    let run_name = format!(
        "sweep-{}",
        dir.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    );
    let user = tracking::user_name();
    let mut tags = BTreeMap::new();
    tags.insert("mlflow.runName".to_string(), run_name.clone());
    tags.insert("mlflow.user".into(), user.clone());
    tags.insert("mlflow.source.name".into(), "textzoo --multirun".into());
    tags.insert("mlflow.source.type".into(), "LOCAL".into());
    tags.insert("textzoo.sweep_dir".into(), tracking::absolute(dir));
    let params = swept
        .iter()
        .map(|(k, v)| (format!("sweep.{k}"), v.clone()))
        .collect();
    Record {
        experiment: experiment.to_string(),
        run_name,
        run_dir: dir.to_path_buf(),
        params,
        tags,
        steps: Vec::new(),
        finals: Vec::new(),
        last_step: 0,
        start_ms,
        end_ms: start_ms,
        status: Status::Running,
        user,
        artifacts: Some(Vec::new()),
    }
}

/// The swept keys and all their values (`model.embed_dim` → `16,32`), the parent's params.
fn swept_values(jobs: &[super::Job], keys: &[String]) -> Vec<(String, String)> {
    keys.iter()
        .map(|k| {
            let mut values: Vec<&str> = Vec::new();
            for j in jobs {
                if let Some(v) = j.swept.get(k) {
                    if !values.contains(&v.as_str()) {
                        values.push(v);
                    }
                }
            }
            (k.clone(), values.join(","))
        })
        .collect()
}

/// Creates the parent run where the first job's `mlflow.uri` points; `None` (with a warning
/// when it failed) when there is no MLflow logging.
pub fn start(plan: &Plan) -> Option<ParentRun> {
    let config = &plan.first;
    let swept = swept_values(&plan.jobs, &plan.swept_keys);
    let rec = record(
        &plan.dir,
        &config.general.project_name,
        &swept,
        tracking::now_ms(),
    );
    let started = match Destination::parse(&config.mlflow.uri) {
        Destination::None | Destination::Unsupported(_) => return None,
        Destination::FileStore(root) => tracking::create_run(&root, &rec.experiment)
            .and_then(|run| tracking::write_run(&run, &rec).map(|()| ParentRun::FileStore(run))),
        Destination::Server(uri) => tracking::create_server_run(&uri, &rec).map(ParentRun::Server),
    };
    match started {
        Ok(run) => Some(run),
        Err(e) => {
            tracing::warn!("tracking: the sweep's MLflow parent run was not created: {e}");
            None
        }
    }
}

/// Ends the parent run: totals and the best perplexity per board as metrics, the report as
/// artifacts, status FINISHED (FAILED when a job failed, KILLED when interrupted).
pub fn finish(parent: &ParentRun, manifest: &Manifest, report: &SweepReport, interrupted: bool) {
    let start_ms = chrono::DateTime::parse_from_rfc3339(&manifest.created)
        .map(|t| t.timestamp_millis())
        .unwrap_or_else(|_| tracking::now_ms());
    let swept = swept_values(&manifest.jobs, &manifest.swept_keys);
    // The run already belongs to its experiment (by id): the name is not needed again.
    let mut rec = record(&manifest.dir, "", &swept, start_ms);
    let end_ms = tracking::now_ms().max(start_ms);
    rec.end_ms = end_ms;
    let failed = report.count(JobState::Failed) + report.count(JobState::Interrupted);
    rec.status = if interrupted {
        Status::Killed
    } else if failed > 0 {
        Status::Failed
    } else {
        Status::Finished
    };
    let mut finals = vec![
        ("sweep_jobs".to_string(), report.rows.len() as f64),
        (
            "sweep_jobs_finished".into(),
            report.count(JobState::Finished) as f64,
        ),
        ("sweep_jobs_failed".into(), failed as f64),
    ];
    for (b, board) in report.boards.iter().enumerate() {
        if let Some(best) = report.best(b).and_then(|r| r.ppl()) {
            let key = format!("best_val_perplexity_{}", board_name(*board)).replace('-', "_");
            finals.push((key, best));
        }
    }
    rec.finals = finals
        .into_iter()
        .map(|(key, value)| Scalar {
            key,
            step: 0,
            value,
            wall_ms: end_ms,
        })
        .collect();
    rec.artifacts = Some(
        [SWEEP_CSV, SWEEP_HTML]
            .iter()
            .map(PathBuf::from)
            .filter(|p| manifest.dir.join(p).is_file())
            .collect(),
    );
    let done = match parent {
        ParentRun::FileStore(run) => tracking::write_run(run, &rec),
        ParentRun::Server(run) => tracking::finish_server_run(run, &rec),
    };
    match done {
        Ok(()) => println!("MLflow parent run {} ({})", parent.run_id(), rec.run_name),
        Err(e) => tracing::warn!("tracking: the sweep's MLflow parent run was not ended: {e}"),
    }
}
