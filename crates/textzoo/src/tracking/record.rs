//! What is tracked about a run, gathered once from the run directory and the configuration so
//! that MLflow, TensorBoard, the plots and the report all show the same numbers.

use super::RunFacts;
use crate::error::{Error, Result};
use crate::util::layout::{BENCHMARK_FILE, CONFIG_FILE, TRAINING_LOG};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// MLflow refuses longer parameter values (`MAX_PARAM_VAL_LENGTH`).
const MAX_PARAM_LEN: usize = 6000;
/// The `metrics.json` sections whose numeric leaves become final metrics.
const FINAL_SECTIONS: [&str; 5] = ["training", "float", "int8", "deployment", "benchmark"];

/// One value of one metric at one step.
#[derive(Debug, Clone, PartialEq)]
pub struct Scalar {
    pub key: String,
    pub step: u64,
    pub value: f64,
    /// Milliseconds since the Unix epoch. Per-step times are estimated from the training
    /// duration, because the training log has no time column.
    pub wall_ms: i64,
}

/// How the run ended, in MLflow's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Started and not ended yet (a sweep's parent run while its jobs run).
    Running,
    Finished,
    Failed,
    Killed,
}

impl Status {
    /// The name the REST API uses.
    pub fn name(self) -> &'static str {
        match self {
            Status::Running => "RUNNING",
            Status::Finished => "FINISHED",
            Status::Failed => "FAILED",
            Status::Killed => "KILLED",
        }
    }

    /// The integer the file store writes (`RunStatus` enum).
    pub fn code(self) -> u8 {
        match self {
            Status::Running => 1,
            Status::Finished => 3,
            Status::Failed => 4,
            Status::Killed => 5,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Record {
    pub experiment: String,
    pub run_name: String,
    pub run_dir: PathBuf,
    /// Flattened resolved configuration and a few facts about the build, as MLflow params.
    pub params: BTreeMap<String, String>,
    pub tags: BTreeMap<String, String>,
    /// Curves: one entry per metric per logged step, ordered by step.
    pub steps: Vec<Scalar>,
    /// End-of-run values, logged at `last_step`.
    pub finals: Vec<Scalar>,
    pub last_step: u64,
    pub start_ms: i64,
    pub end_ms: i64,
    pub status: Status,
    pub user: String,
    /// The files of `run_dir` (relative) logged as artifacts; `None`: the whole run directory
    /// but the token cache and the resume checkpoint.
    pub artifacts: Option<Vec<PathBuf>>,
}

impl Record {
    /// Reads what the run left: `metrics` in memory (same as `metrics.json`), the training log
    /// CSV, the configuration. A missing training log just means no per-step curves.
    pub fn collect(run: &RunFacts, error: Option<&Error>) -> Result<Self> {
        let end_ms = now_ms();
        let start_ms = modified_ms(&run.dir.join(CONFIG_FILE)).unwrap_or(end_ms);
        let metrics_json = metrics_value(run);
        let training = metrics_json.get("training");
        let seconds = training
            .and_then(|t| t.get("seconds"))
            .and_then(Value::as_f64)
            .unwrap_or(0.0);
        let csv_path = run.dir.join(TRAINING_LOG);
        let train_end = modified_ms(&csv_path).unwrap_or(end_ms);
        let csv = match std::fs::read_to_string(&csv_path) {
            Ok(text) => parse_training_csv(&text),
            Err(_) => Vec::new(),
        };
        let history = training
            .and_then(|t| t.get("history"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let mut rows = csv;
        rows.extend(history_rows(&history, rows.is_empty()));
        let max_step = rows.iter().map(|r| r.1).max().unwrap_or(0);
        let clock = Clock {
            start_ms,
            end_ms: train_end.max(start_ms),
            seconds,
            max_step,
        };
        let mut steps: Vec<Scalar> = rows
            .into_iter()
            .map(|(key, step, value)| Scalar {
                wall_ms: clock.at(step),
                key,
                step,
                value,
            })
            .collect();
        steps.sort_by(|a, b| a.step.cmp(&b.step).then_with(|| a.key.cmp(&b.key)));
        let last_step = training
            .and_then(|t| t.get("steps"))
            .and_then(Value::as_u64)
            .unwrap_or(max_step);
        let finals = final_metrics(&metrics_json)
            .into_iter()
            .map(|(key, value)| Scalar {
                key,
                step: last_step,
                value,
                wall_ms: end_ms,
            })
            .collect();
        let status = match error {
            None => Status::Finished,
            Some(Error::Interrupted) => Status::Killed,
            Some(_) => Status::Failed,
        };
        let run_name = run
            .dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "textzoo-run".into());
        let user = user_name();
        let commit = super::git::head_commit(&std::env::current_dir().unwrap_or_default());
        let params = params(run, commit.as_deref())?;
        let mut tags = BTreeMap::new();
        tags.insert("mlflow.runName".into(), run_name.clone());
        tags.insert("mlflow.user".into(), user.clone());
        tags.insert("mlflow.source.name".into(), "textzoo".into());
        tags.insert("mlflow.source.type".into(), "LOCAL".into());
        if let Some(commit) = &commit {
            tags.insert("mlflow.source.git.commit".into(), commit.clone());
        }
        let mode = crate::config::mode_name(run.config.operation_mode);
        tags.insert("textzoo.operation_mode".into(), mode.to_string());
        tags.insert("textzoo.model".into(), name_of(&run.config.model.name));
        tags.insert("textzoo.run_dir".into(), absolute(run.dir));
        tags.insert("textzoo.status".into(), status.name().to_lowercase());
        if let Some(parent) = &run.config.mlflow.parent_run_id {
            // A sweep's job: `mlflow ui` nests it under the sweep's run.
            tags.insert("mlflow.parentRunId".into(), parent.clone());
        }
        if let Some(err) = error {
            tags.insert("textzoo.error".into(), truncate(&format!("{err}"), 5000));
        }
        Ok(Record {
            experiment: run.config.general.project_name.clone(),
            run_name,
            run_dir: run.dir.to_path_buf(),
            params,
            tags,
            steps,
            finals,
            last_step,
            start_ms,
            end_ms: end_ms.max(start_ms),
            status,
            user,
            artifacts: None,
        })
    }

    /// The points of one curve, in step order.
    pub fn series(&self, key: &str) -> Vec<(u64, f64)> {
        self.steps
            .iter()
            .filter(|s| s.key == key)
            .map(|s| (s.step, s.value))
            .collect()
    }

    /// Every scalar (curves then final values), in the order they are logged.
    pub fn all_scalars(&self) -> impl Iterator<Item = &Scalar> {
        self.steps.iter().chain(self.finals.iter())
    }
}

/// Maps steps to estimated wall-clock times: training ran for `seconds` and ended when the
/// training log was last written.
struct Clock {
    start_ms: i64,
    end_ms: i64,
    seconds: f64,
    max_step: u64,
}

impl Clock {
    fn at(&self, step: u64) -> i64 {
        if self.max_step == 0 || self.seconds <= 0.0 {
            return self.end_ms;
        }
        let remaining = 1.0 - step as f64 / self.max_step as f64;
        let t = self.end_ms - (self.seconds * 1000.0 * remaining) as i64;
        t.clamp(self.start_ms, self.end_ms)
    }
}

fn metrics_value(run: &RunFacts) -> Value {
    let mut map = Map::new();
    for section in [
        "run",
        "preprocessing",
        "training",
        "float",
        "int8",
        "benchmark",
    ] {
        if let Some(s) = run.metrics.section(section) {
            map.insert(section.to_string(), Value::Object(s.clone()));
        }
    }
    if !map.contains_key("benchmark") {
        // Benchmarking also writes its own report; use it when metrics.json has no copy.
        let path = run.dir.join(BENCHMARK_FILE);
        if let Ok(text) = std::fs::read_to_string(path) {
            if let Ok(v @ Value::Object(_)) = serde_json::from_str::<Value>(&text) {
                map.insert("benchmark".into(), v);
            }
        }
    }
    Value::Object(map)
}

/// The per-step rows of `training_log.csv` (`step,loss,lr,grad_norm`, more columns allowed)
/// as `(metric, step, value)`. Unreadable lines and non-finite values are skipped: MLflow's
/// REST API cannot carry NaN and a partial curve is better than none.
pub fn parse_training_csv(text: &str) -> Vec<(String, u64, f64)> {
    let mut lines = text.lines();
    let Some(header) = lines.next() else {
        return Vec::new();
    };
    let columns: Vec<String> = header.split(',').map(|c| c.trim().to_string()).collect();
    let Some(step_col) = columns.iter().position(|c| c == "step") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for line in lines {
        let cells: Vec<&str> = line.split(',').map(str::trim).collect();
        let Some(step) = cells.get(step_col).and_then(|s| s.parse::<u64>().ok()) else {
            continue;
        };
        for (i, name) in columns.iter().enumerate() {
            if i == step_col {
                continue;
            }
            let Some(value) = cells.get(i).and_then(|s| s.parse::<f64>().ok()) else {
                continue;
            };
            if value.is_finite() {
                out.push((csv_metric_name(name), step, value));
            }
        }
    }
    out
}

fn csv_metric_name(column: &str) -> String {
    match column {
        "loss" => "train_loss".into(),
        "lr" => "learning_rate".into(),
        other => metric_key(other),
    }
}

/// Validation points from `training.history`: `val_loss` and its perplexity, plus any other
/// `val_*` value. Train loss and learning rate come from the CSV unless it is missing.
fn history_rows(history: &[Value], with_train: bool) -> Vec<(String, u64, f64)> {
    let mut out = Vec::new();
    for entry in history {
        let Some(obj) = entry.as_object() else {
            continue;
        };
        let Some(step) = obj.get("step").and_then(Value::as_u64) else {
            continue;
        };
        for (key, value) in obj {
            let Some(v) = value.as_f64().filter(|v| v.is_finite()) else {
                continue;
            };
            let name = match key.as_str() {
                "step" => continue,
                "train_loss" | "lr" if !with_train => continue,
                "lr" => "learning_rate".to_string(),
                other => metric_key(other),
            };
            if name == "val_loss" && !obj.contains_key("val_perplexity") {
                let ppl = v.exp();
                if ppl.is_finite() {
                    out.push(("val_perplexity".to_string(), step, ppl));
                }
            }
            out.push((name, step, v));
        }
    }
    out
}

/// Every numeric leaf of the final sections as `section_key_subkey` (arrays, such as the
/// training history, are curves or tables, not single values, and are left out).
pub fn final_metrics(metrics: &Value) -> Vec<(String, f64)> {
    fn walk(prefix: &str, value: &Value, out: &mut Vec<(String, f64)>) {
        match value {
            Value::Number(n) => {
                if let Some(v) = n.as_f64().filter(|v| v.is_finite()) {
                    out.push((metric_key(prefix), v));
                }
            }
            Value::Object(map) => {
                for (k, v) in map {
                    walk(&format!("{prefix}_{k}"), v, out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    for section in FINAL_SECTIONS {
        if let Some(v) = metrics.get(section) {
            walk(section, v, &mut out);
        }
    }
    out
}

/// A name MLflow accepts for a metric (letters, digits, `_ - . / space :`), in snake case:
/// `benchmark_MACCs decode (M)` becomes `benchmark_maccs_decode_m`.
pub fn metric_key(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        if c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '/') {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    out.trim_end_matches('_').to_string()
}

/// The resolved configuration as dotted keys, and what else identifies the run's result.
fn params(run: &RunFacts, commit: Option<&str>) -> Result<BTreeMap<String, String>> {
    let value = serde_json::to_value(run.config)
        .map_err(|e| Error::Internal(format!("serializing the configuration: {e}")))?;
    let mut out = BTreeMap::new();
    flatten("", &value, &mut out);
    out.insert(
        "operation_mode".into(),
        crate::config::mode_name(run.config.operation_mode).to_string(),
    );
    if let Some(path) = run.model_path {
        out.insert("model_path".into(), absolute(path));
    }
    out.insert("textzoo_version".into(), env!("CARGO_PKG_VERSION").into());
    if let Some(commit) = commit {
        out.insert("git_commit".into(), commit.to_string());
    }
    Ok(out)
}

fn flatten(prefix: &str, value: &Value, out: &mut BTreeMap<String, String>) {
    let text = match value {
        Value::Object(map) => {
            for (k, v) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out);
            }
            return;
        }
        // Python's spelling, as the model zoo's Hydra + MLflow logging shows it.
        Value::Null => "None".to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    out.insert(prefix.to_string(), truncate(&text, MAX_PARAM_LEN));
}

fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

fn name_of<T: serde::Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => String::new(),
    }
}

pub fn absolute(path: &Path) -> String {
    std::path::absolute(path)
        .unwrap_or_else(|_| path.to_path_buf())
        .display()
        .to_string()
}

/// The login name, as MLflow's `getpass.getuser()` finds it: the environment first, then the
/// password entry of the process's user id.
pub fn user_name() -> String {
    for var in ["LOGNAME", "USER", "LNAME", "USERNAME"] {
        if let Ok(name) = std::env::var(var) {
            if !name.is_empty() {
                return name;
            }
        }
    }
    let uid = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|rest| rest.split_whitespace().next().map(str::to_string))
        });
    let from_passwd = uid.and_then(|uid| {
        let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
        passwd.lines().find_map(|line| {
            let mut fields = line.split(':');
            let name = fields.next()?;
            (fields.nth(1)? == uid).then(|| name.to_string())
        })
    });
    from_passwd.unwrap_or_else(|| "unknown".into())
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn modified_ms(path: &Path) -> Option<i64> {
    let modified = std::fs::metadata(path).ok()?.modified().ok()?;
    modified
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn training_csv_becomes_named_curves() {
        let rows = parse_training_csv("step,loss,lr,grad_norm\n1,6.5,1e-5,1.25\n2,NaN,2e-5,x\n");
        assert_eq!(
            rows,
            vec![
                ("train_loss".into(), 1, 6.5),
                ("learning_rate".into(), 1, 1e-5),
                ("grad_norm".into(), 1, 1.25),
                ("learning_rate".into(), 2, 2e-5),
            ]
        );
        assert!(parse_training_csv("").is_empty());
    }

    #[test]
    fn history_gives_validation_loss_and_perplexity() {
        let history = [json!({"step": 10, "train_loss": 6.0, "val_loss": 2.0, "lr": 0.1})];
        let rows = history_rows(&history, false);
        assert_eq!(
            rows,
            vec![
                ("val_perplexity".into(), 10, 2f64.exp()),
                ("val_loss".into(), 10, 2.0)
            ]
        );
        assert_eq!(history_rows(&history, true).len(), 4);
    }

    #[test]
    fn finals_are_numeric_leaves_in_snake_case() {
        let m = json!({
            "run": {"operation_mode": "x", "n": 1},
            "training": {"steps": 30, "stopped_by": "max_steps", "history": [{"step": 1}]},
            "float": {"val_loss": 6.0},
            "benchmark": {"host": {"ms_per_token": 1.5}, "MACCs decode (M)": 0.9},
        });
        assert_eq!(
            final_metrics(&m),
            vec![
                ("training_steps".into(), 30.0),
                ("float_val_loss".into(), 6.0),
                ("benchmark_host_ms_per_token".into(), 1.5),
                ("benchmark_maccs_decode_m".into(), 0.9),
            ]
        );
    }

    #[test]
    fn config_flattens_to_dotted_keys() {
        let mut out = BTreeMap::new();
        flatten(
            "",
            &json!({"a": {"b": 1, "c": null, "d": "x", "e": [1, 2]}}),
            &mut out,
        );
        assert_eq!(out["a.b"], "1");
        assert_eq!(out["a.c"], "None");
        assert_eq!(out["a.d"], "x");
        assert_eq!(out["a.e"], "[1,2]");
    }

    #[test]
    fn clock_spreads_steps_over_training_time() {
        let c = Clock {
            start_ms: 0,
            end_ms: 10_000,
            seconds: 4.0,
            max_step: 4,
        };
        assert_eq!(c.at(4), 10_000);
        assert_eq!(c.at(2), 8_000);
        assert_eq!(c.at(0), 6_000);
    }
}
