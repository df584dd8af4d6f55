//! Running the real `textzoo` binary from the workspace root, as a user would.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace root")
}

/// The result of one run: exit code, stdout, stderr.
pub struct Ran {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

impl From<Output> for Ran {
    fn from(o: Output) -> Self {
        Ran {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

pub fn textzoo_in(dir: &Path, args: &[&str]) -> Ran {
    Command::new(env!("CARGO_BIN_EXE_textzoo"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .output()
        .expect("run textzoo")
        .into()
}

/// Runs `textzoo` from the workspace root (so `datasets/…` and `user_config.yaml` resolve).
pub fn textzoo(args: &[&str]) -> Ran {
    textzoo_in(&workspace_root(), args)
}

/// The `mlflow.uri` override of test runs: a store under cargo's test scratch directory,
/// keeping them out of the workspace's ./experiments_outputs/mlruns.
pub fn mlflow_uri() -> String {
    format!(
        "mlflow.uri={}",
        Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join("mlruns")
            .display()
    )
}

/// A small, fast configuration on a short corpus, as overrides.
pub fn tiny(run_dir: &Path) -> Vec<String> {
    vec![
        format!("hydra.run.dir={}", run_dir.display()),
        "dataset.training_path=datasets/alice_in_wonderland.txt".into(),
        "preprocessing.vocab_size=300".into(),
        "model.seq_len=8".into(),
        "model.embed_dim=16".into(),
        "model.num_heads=2".into(),
        "model.num_layers=1".into(),
        "model.ffn_dim=32".into(),
        "model.hidden_dim=16".into(),
        "training.max_steps=3".into(),
        "training.batch_size=4".into(),
        "training.eval_interval=2".into(),
        "training.eval_windows=16".into(),
        "evaluation.max_windows=32".into(),
        mlflow_uri(),
    ]
}

pub fn with<'a>(base: &'a [String], extra: &[&'a str]) -> Vec<&'a str> {
    base.iter()
        .map(String::as_str)
        .chain(extra.iter().copied())
        .collect()
}

/// No file or directory exists under `dir` (used to prove failed runs wrote nothing).
pub fn is_absent_or_empty(dir: &Path) -> bool {
    std::fs::read_dir(dir)
        .map(|mut d| d.next().is_none())
        .unwrap_or(true)
}

/// The Python with the verifiers' packages (mlflow, tensorboard, tokenizers, onnx, onnxruntime,
/// LiteRT): `TEXTZOO_PYTHON`, else the venv `.ci/run` creates.
pub fn python() -> PathBuf {
    if let Ok(p) = std::env::var("TEXTZOO_PYTHON") {
        return PathBuf::from(p);
    }
    let venv = workspace_root().join(".venv/bin/python");
    assert!(
        venv.exists(),
        "Python verifiers missing: run `.ci/run` (creates .venv) or set TEXTZOO_PYTHON"
    );
    venv
}
