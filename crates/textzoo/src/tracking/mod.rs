//! Experiment tracking: once a run's services are done, its results are turned into
//! TensorBoard event files (`logs/`), SVG plots (`plots/`), a self-contained `report.html`, and
//! an MLflow run (a local file store or a tracking server, by `mlflow.uri`).
//!
//! Tracking reads only what the run left on disk (`metrics.json`, `training_log.csv`,
//! `generated.txt`, …) plus the typed configuration, so it cannot disturb the results, and it
//! runs after success and after failure alike. Its own failures are warnings: a broken
//! tracking server or a full plot must never fail a run or lose its directory.

mod git;
mod mlflow_file;
mod mlflow_rest;
mod plots;
mod record;
mod report;
mod tensorboard;

pub use mlflow_file::{create_run, local_store_root, log_to_file_store, write_run, StoreRun};
pub use mlflow_rest::{create_server_run, finish_server_run, log_to_server, ServerRun};
pub use plots::scatter_chart;
pub use record::{absolute, final_metrics, now_ms, user_name, Record, Scalar, Status};
pub use report::esc as html_escape;
pub use tensorboard::{masked_crc32c, read_records, tfrecord_frame, write_events};

use crate::config::Config;
use crate::error::Error;
use crate::util::Metrics;
use std::path::Path;

/// Where the tracked results go, by `mlflow.uri`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// No MLflow logging (`mlflow.uri` empty).
    None,
    /// A local MLflow file store rooted at this directory.
    FileStore(std::path::PathBuf),
    /// An MLflow tracking server reached over its REST API.
    Server(String),
    /// A scheme textzoo cannot write (e.g. `sqlite:`, `databricks`).
    Unsupported(String),
}

impl Destination {
    pub fn parse(uri: &str) -> Self {
        let uri = uri.trim();
        if uri.is_empty() {
            return Destination::None;
        }
        let lower = uri.to_ascii_lowercase();
        if lower.starts_with("http://") || lower.starts_with("https://") {
            return Destination::Server(uri.trim_end_matches('/').to_string());
        }
        match local_store_root(uri) {
            Some(root) => Destination::FileStore(root),
            None => Destination::Unsupported(uri.to_string()),
        }
    }
}

/// What tracking reads of a finished (or failed) run.
pub struct RunFacts<'a> {
    pub config: &'a Config,
    pub dir: &'a Path,
    pub metrics: &'a Metrics,
    /// The model the run ended with: its int8 model, else its float model, else the one it
    /// was given.
    pub model_path: Option<&'a Path>,
}

/// Writes every tracking output for a finished (or failed) run. `error` is the run's failure,
/// if any; it decides the MLflow status and is shown in the report.
///
/// Never fails: each part that goes wrong is logged as a warning and the others still run.
pub fn finalize(run: &RunFacts, error: Option<&Error>) {
    let record = match Record::collect(run, error) {
        Ok(record) => record,
        Err(err) => {
            tracing::warn!("tracking: could not read the run's results: {err}; nothing tracked");
            return;
        }
    };
    if let Err(err) = write_events(run.dir, &record) {
        tracing::warn!("tracking: TensorBoard event file not written: {err}");
    }
    let plots = plots::write_all(run.dir, &record, run.metrics);
    if let Err(err) = report::write(run.dir, &record, run.metrics, &plots, error) {
        tracing::warn!("tracking: report.html not written: {err}");
    }
    match Destination::parse(&run.config.mlflow.uri) {
        Destination::None => tracing::info!("tracking: mlflow.uri is empty; MLflow logging off"),
        Destination::FileStore(root) => match log_to_file_store(&root, &record) {
            Ok(path) => tracing::info!("MLflow run written to {}", path.display()),
            Err(err) => tracing::warn!(
                "tracking: MLflow run not written to {}: {err}; the results stay in {}",
                root.display(),
                run.dir.display()
            ),
        },
        Destination::Server(uri) => {
            if let Err(err) = log_to_server(&uri, &record) {
                tracing::warn!(
                    "tracking: MLflow run not logged to {uri}: {err}; the results stay in {}",
                    run.dir.display()
                );
            }
        }
        Destination::Unsupported(uri) => tracing::warn!(
            "tracking: mlflow.uri {uri:?} is neither a local directory, a file: URI nor an \
             http(s):// tracking server; MLflow logging skipped"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_by_uri() {
        assert_eq!(Destination::parse(""), Destination::None);
        assert_eq!(
            Destination::parse("http://127.0.0.1:5000/"),
            Destination::Server("http://127.0.0.1:5000".into())
        );
        assert!(matches!(
            Destination::parse("HTTPS://mlflow.example"),
            Destination::Server(_)
        ));
        assert!(matches!(
            Destination::parse("./experiments_outputs/mlruns"),
            Destination::FileStore(_)
        ));
        assert!(matches!(
            Destination::parse("file:///tmp/mlruns"),
            Destination::FileStore(_)
        ));
        assert!(matches!(
            Destination::parse("sqlite:///mlflow.db"),
            Destination::Unsupported(_)
        ));
    }
}
