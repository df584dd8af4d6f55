//! What a sweep directory records about its sweep: the manifest (the jobs and how to run them;
//! a Slurm task reads its job from it) and one status file per job (its state, exit code and
//! run directory, written by the job itself), so that any process — the launcher, a later
//! `sweep-status`, a rerun that resumes — can tell what has run.

use super::plan::{Job, Plan};
use crate::config::{ConfigSource, LauncherKind};
use crate::error::{Error, Result};
use crate::util::layout::{SWEEP_LOG_DIR, SWEEP_MANIFEST, SWEEP_STATUS_DIR};
use crate::util::write_atomic;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub const FORMAT: &str = "textzoo.sweep.v1";

/// The MLflow run the sweep's jobs are children of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ParentRun {
    FileStore(crate::tracking::StoreRun),
    Server(crate::tracking::ServerRun),
}

impl ParentRun {
    pub fn run_id(&self) -> &str {
        match self {
            ParentRun::FileStore(r) => &r.run_id,
            ParentRun::Server(r) => &r.run_id,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    /// The sweep directory, absolute.
    pub dir: PathBuf,
    /// The directory every job runs in (relative paths of the configuration resolve from it).
    pub cwd: PathBuf,
    /// The textzoo binary every job runs, absolute.
    pub binary: PathBuf,
    pub config_path: Option<PathBuf>,
    pub config_name: Option<String>,
    pub launcher: LauncherKind,
    pub swept_keys: Vec<String>,
    pub jobs: Vec<Job>,
    pub parent_run: Option<ParentRun>,
    /// The Slurm job array, once submitted.
    pub slurm_job_id: Option<String>,
    pub created: String,
}

impl Manifest {
    pub fn new(plan: &Plan, source: &ConfigSource, binary: PathBuf) -> Result<Self> {
        let cwd =
            std::env::current_dir().map_err(|e| Error::io("reading the working directory", e))?;
        let config_path = match &source.config_path {
            Some(p) => Some(
                std::path::absolute(p)
                    .map_err(|e| Error::io(format!("resolving {}", p.display()), e))?,
            ),
            None => None,
        };
        Ok(Manifest {
            format: FORMAT.into(),
            dir: plan.dir.clone(),
            cwd,
            binary,
            config_path,
            config_name: source.config_name.clone(),
            launcher: plan.first.hydra.launcher.name,
            swept_keys: plan.swept_keys.clone(),
            jobs: plan.jobs.clone(),
            parent_run: None,
            slurm_job_id: None,
            created: chrono::Local::now().to_rfc3339(),
        })
    }

    pub fn path(dir: &Path) -> PathBuf {
        dir.join(SWEEP_MANIFEST)
    }

    pub fn save(&self) -> Result<()> {
        let text = serde_json::to_string_pretty(self)
            .map_err(|e| Error::Internal(format!("serializing the sweep manifest: {e}")))?;
        write_atomic(&Self::path(&self.dir), text.as_bytes())
    }

    /// Reads the manifest of the sweep in `dir`; a directory that holds none is refused as
    /// input (exit 2).
    pub fn load(dir: &Path) -> Result<Self> {
        let path = Self::path(dir);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            Error::input(
                dir,
                format!(
                    "is not a sweep directory ({} unreadable: {e}); give the hydra.sweep.dir a --multirun printed",
                    SWEEP_MANIFEST
                ),
            )
        })?;
        let manifest: Manifest = serde_json::from_str(&text)
            .map_err(|e| Error::input(&path, format!("is not a {FORMAT} sweep manifest: {e}")))?;
        if manifest.format != FORMAT {
            return Err(Error::input(
                &path,
                format!("has format {:?}; expected {FORMAT}", manifest.format),
            ));
        }
        Ok(manifest)
    }

    pub fn job(&self, num: usize) -> Result<&Job> {
        self.jobs.iter().find(|j| j.num == num).ok_or_else(|| {
            Error::Usage(format!(
                "the sweep in {} has jobs 0..{}; there is no job {num}",
                self.dir.display(),
                self.jobs.len()
            ))
        })
    }

    /// The configuration source job `num` runs with: its overrides, then what the sweep sets
    /// (`hydra.job.num`, its run directory, the MLflow parent run).
    pub fn source_for(&self, job: &Job) -> ConfigSource {
        let mut overrides = job.overrides.clone();
        overrides.push(format!("hydra.job.num={}", job.num));
        overrides.push(format!("hydra.run.dir={}", quoted(&job.run_dir)));
        if let Some(parent) = &self.parent_run {
            overrides.push(format!("mlflow.parent_run_id={}", parent.run_id()));
        }
        ConfigSource {
            config_path: self.config_path.clone(),
            config_name: self.config_name.clone(),
            overrides,
        }
    }

    pub fn log_path(&self, num: usize) -> PathBuf {
        self.dir.join(SWEEP_LOG_DIR).join(format!("{num}.log"))
    }
}

/// A path as an override value a single run reads back as that same string.
fn quoted(path: &Path) -> String {
    serde_json::Value::String(path.display().to_string()).to_string()
}

/// Where a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Running,
    Finished,
    Failed,
    Interrupted,
}

impl JobState {
    pub fn name(self) -> &'static str {
        match self {
            JobState::Running => "running",
            JobState::Finished => "finished",
            JobState::Failed => "failed",
            JobState::Interrupted => "interrupted",
        }
    }
}

/// `<sweep>/.sweep/status/<num>.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobStatus {
    pub num: usize,
    pub state: JobState,
    /// The overrides the job ran with: a rerun skips the job only if they are unchanged.
    pub overrides: Vec<String>,
    /// The run directory it actually used (a rerun of a failed job gets a fresh one).
    pub run_dir: Option<PathBuf>,
    pub exit_code: Option<i32>,
    pub error: Option<String>,
    pub host: String,
    pub started: String,
    pub seconds: Option<f64>,
}

impl JobStatus {
    pub fn path(dir: &Path, num: usize) -> PathBuf {
        dir.join(SWEEP_STATUS_DIR).join(format!("{num}.json"))
    }

    pub fn started(job: &Job) -> Self {
        JobStatus {
            num: job.num,
            state: JobState::Running,
            overrides: job.overrides.clone(),
            run_dir: None,
            exit_code: None,
            error: None,
            host: host_name(),
            started: chrono::Local::now().to_rfc3339(),
            seconds: None,
        }
    }

    pub fn save(&self, dir: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self)
            .map_err(|e| Error::Internal(format!("serializing a job status: {e}")))?;
        write_atomic(&Self::path(dir, self.num), text.as_bytes())
    }

    /// The job's status, if it has started; an unreadable file counts as none.
    pub fn load(dir: &Path, num: usize) -> Option<Self> {
        let text = std::fs::read_to_string(Self::path(dir, num)).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Ended, with the outcome of the run (`Ok`: exit 0).
    pub fn ended(
        mut self,
        run_dir: Option<PathBuf>,
        exit_code: i32,
        error: Option<String>,
    ) -> Self {
        self.state = match exit_code {
            0 => JobState::Finished,
            130 => JobState::Interrupted,
            _ => JobState::Failed,
        };
        self.exit_code = Some(exit_code);
        if run_dir.is_some() {
            self.run_dir = run_dir;
        }
        self.error = error;
        self.seconds = chrono::DateTime::parse_from_rfc3339(&self.started)
            .ok()
            .map(|t| (chrono::Local::now().fixed_offset() - t).num_milliseconds() as f64 / 1e3);
        self
    }

    /// Whether a rerun may skip `job`: it finished with the same overrides.
    pub fn done(&self, job: &Job) -> bool {
        self.state == JobState::Finished && self.overrides == job.overrides
    }
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_default()
}

/// Jobs of `manifest` not yet finished with their current overrides: what a (re)run launches.
pub fn pending(manifest: &Manifest) -> Vec<usize> {
    manifest
        .jobs
        .iter()
        .filter(|job| !JobStatus::load(&manifest.dir, job.num).is_some_and(|s| s.done(job)))
        .map(|job| job.num)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn job(num: usize, overrides: &[&str]) -> Job {
        Job {
            num,
            overrides: overrides.iter().map(|s| s.to_string()).collect(),
            swept: BTreeMap::new(),
            run_dir: PathBuf::from(format!("/tmp/s/{num}")),
        }
    }

    #[test]
    fn status_round_trips_and_decides_resume() {
        let tmp = tempfile::tempdir().unwrap();
        let a = job(0, &["model.embed_dim=16"]);
        let s = JobStatus::started(&a);
        s.save(tmp.path()).unwrap();
        let back = JobStatus::load(tmp.path(), 0).unwrap();
        assert_eq!(back.state, JobState::Running);
        assert!(!back.done(&a));
        let ended = back.ended(Some(a.run_dir.clone()), 0, None);
        assert!(ended.done(&a));
        assert!(!ended.done(&job(0, &["model.embed_dim=32"])));
        assert_eq!(
            JobStatus::started(&a)
                .ended(None, 1, Some("x".into()))
                .state,
            JobState::Failed
        );
        assert_eq!(
            JobStatus::started(&a).ended(None, 130, None).state,
            JobState::Interrupted
        );
    }

    #[test]
    fn paths_are_read_back_verbatim() {
        let q = quoted(Path::new("/tmp/a b/c: d,e"));
        let o = crate::config::Override::parse(&format!("hydra.run.dir={q}")).unwrap();
        assert_eq!(o.value, serde_json::json!("/tmp/a b/c: d,e"));
    }
}
