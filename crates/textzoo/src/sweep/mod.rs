//! Sweeps (`textzoo --multirun`): many ordinary runs from one command line, as Hydra's
//! multirun does it.
//!
//! - `syntax`: the override values (`a,b`, `range(…)`, `choice(…)`, quoting);
//! - `plan`: the job list (product or random sample), every job's configuration checked before
//!   any runs, and each job's run directory under `hydra.sweep.dir`;
//! - `manifest`: what the sweep directory records (the jobs; each job's status), which is what
//!   makes a sweep resumable and lets a Slurm task find its job;
//! - `launcher_local`, `launcher_slurm`: child processes here, or one Slurm job array;
//! - `report`: `sweep.csv`, `sweep.html` (Pareto fronts, the best model per board);
//! - `parent_run`: the MLflow run the jobs are children of.
//!
//! A job is the ordinary pipeline run of the `textzoo` binary (`textzoo sweep-job DIR NUM`) in
//! its own directory; the sweep itself only plans, launches and reports. It sits at the top of
//! the library beside the pipeline, and never imports it.

pub mod launcher_local;
pub mod launcher_slurm;
pub mod manifest;
mod parent_run;
pub mod plan;
mod progress;
pub mod report;
pub mod syntax;

pub use manifest::{JobState, JobStatus, Manifest};
pub use plan::{Job, Plan};
pub use report::SweepReport;

use crate::config::{ConfigSource, LauncherKind};
use crate::error::{Error, Result};
use chrono::{DateTime, Local};
use progress::Progress;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How a sweep ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Every job ran; the report is written.
    Done {
        dir: PathBuf,
        failed: usize,
        total: usize,
    },
    /// Ctrl-C: running jobs were stopped (or the Slurm array cancelled); the report covers
    /// what finished.
    Interrupted { dir: PathBuf },
    /// `hydra.launcher.wait=false`: the Slurm array is submitted and runs on.
    Submitted { dir: PathBuf, job_id: String },
}

/// Plans, launches and reports a sweep. `binary` is the textzoo executable the jobs run.
pub fn multirun(source: &ConfigSource, now: DateTime<Local>, binary: PathBuf) -> Result<Outcome> {
    let plan = plan::plan(source, now)?;
    let launcher = plan.first.hydra.launcher.clone();
    if launcher.name == LauncherKind::Slurm {
        launcher_slurm::check_available()?;
    }
    std::fs::create_dir_all(&plan.dir).map_err(|e| {
        Error::io(
            format!("creating sweep directory {}", plan.dir.display()),
            e,
        )
    })?;
    let earlier = Manifest::load(&plan.dir).ok();
    let mut manifest = Manifest::new(&plan, source, binary)?;
    manifest.parent_run = match earlier.and_then(|m| m.parent_run) {
        Some(run) => Some(run),
        None => parent_run::start(&plan),
    };
    manifest.save()?;
    let pending = manifest::pending(&manifest);
    let total = manifest.jobs.len();
    println!(
        "sweep: {total} jobs in {} ({} launcher){}",
        plan.dir.display(),
        launcher_name(launcher.name),
        if pending.len() < total {
            format!(", {} already finished (skipped)", total - pending.len())
        } else {
            String::new()
        }
    );
    for job in &manifest.jobs {
        let mark = if pending.contains(&job.num) {
            " "
        } else {
            "✓"
        };
        let values: Vec<String> = job.swept.iter().map(|(k, v)| format!("{k}={v}")).collect();
        println!("  {mark} job {:>3}: {}", job.num, values.join(" "));
    }
    let progress = Progress::new(total, total - pending.len());
    let interrupted = match launcher.name {
        LauncherKind::Local => {
            let cores = std::thread::available_parallelism().map_or(1, usize::from);
            let threads = (cores / launcher.n_jobs).max(1);
            launcher_local::run(&manifest, &pending, launcher.n_jobs, threads, &progress)?
        }
        LauncherKind::Slurm if pending.is_empty() => false,
        LauncherKind::Slurm => {
            let job_id = launcher_slurm::submit(&manifest, &pending, &launcher)?;
            manifest.slurm_job_id = Some(job_id.clone());
            manifest.save()?;
            progress.note(&format!(
                "submitted Slurm job array {job_id} (--array={})",
                launcher_slurm::array_spec(&pending, launcher.array_parallelism)
            ));
            if !launcher.wait {
                progress.finish();
                println!(
                    "hydra.launcher.wait=false: the array runs on. Follow it with\n  textzoo sweep-status {dir}\nand write the report when it is done with\n  textzoo sweep-report {dir}",
                    dir = plan.dir.display()
                );
                return Ok(Outcome::Submitted {
                    dir: plan.dir,
                    job_id,
                });
            }
            let poll = Duration::from_secs_f64(launcher.poll_seconds);
            launcher_slurm::wait(&manifest, &job_id, &pending, poll, &progress)?
        }
    };
    progress.finish();
    let report = report_and_finish(&manifest, interrupted)?;
    if interrupted {
        return Ok(Outcome::Interrupted { dir: plan.dir });
    }
    Ok(Outcome::Done {
        dir: plan.dir,
        failed: report.count(JobState::Failed) + report.count(JobState::Interrupted),
        total,
    })
}

fn launcher_name(kind: LauncherKind) -> &'static str {
    match kind {
        LauncherKind::Local => "local",
        LauncherKind::Slurm => "slurm",
    }
}

/// Writes the report, ends the MLflow parent run, prints the summary.
fn report_and_finish(manifest: &Manifest, interrupted: bool) -> Result<SweepReport> {
    let report = SweepReport::collect(manifest)?;
    let (csv, html) = report.write()?;
    if let Some(parent) = &manifest.parent_run {
        parent_run::finish(parent, manifest, &report, interrupted);
    }
    print!("{}", report.summary());
    println!("sweep report: {} and {}", csv.display(), html.display());
    Ok(report)
}

/// `textzoo sweep-report DIR`: rebuilds the report from the sweep directory (after a
/// `hydra.launcher.wait=false` sweep, or at any time).
pub fn rebuild_report(dir: &Path) -> Result<SweepReport> {
    let manifest = Manifest::load(dir)?;
    if let Some(id) = &manifest.slurm_job_id {
        if launcher_slurm::check_available().is_ok() {
            let queued = launcher_slurm::queued(id)?;
            if queued.is_empty() {
                let all: Vec<usize> = manifest.jobs.iter().map(|j| j.num).collect();
                launcher_slurm::settle(&manifest, &all, id, false);
            } else {
                println!(
                    "note: Slurm job {id} still has {} task(s) queued or running; the report covers what has ended",
                    queued.len()
                );
            }
        }
    }
    report_and_finish(&manifest, false)
}

/// `textzoo sweep-status DIR`: one line per job, and the Slurm queue when there is one.
pub fn status_text(dir: &Path) -> Result<String> {
    let manifest = Manifest::load(dir)?;
    let mut out = format!(
        "sweep {} ({} launcher, {} jobs)\n",
        manifest.dir.display(),
        launcher_name(manifest.launcher),
        manifest.jobs.len()
    );
    let queued = match &manifest.slurm_job_id {
        Some(id) if launcher_slurm::check_available().is_ok() => {
            let q = launcher_slurm::queued(id)?;
            out.push_str(&format!(
                "Slurm job {id}: {}\n",
                if q.is_empty() {
                    "no longer queued".to_string()
                } else {
                    format!("{} task(s) queued or running", q.len())
                }
            ));
            q
        }
        _ => Vec::new(),
    };
    let mut counts = std::collections::BTreeMap::new();
    for job in &manifest.jobs {
        let status = JobStatus::load(dir, job.num).filter(|s| s.overrides == job.overrides);
        let in_queue = manifest.slurm_job_id.as_ref().and_then(|id| {
            let task = format!("{id}_{}", job.num);
            queued
                .iter()
                .find(|(t, _)| *t == task)
                .map(|(_, s)| s.to_lowercase())
        });
        let state = match (&status, in_queue) {
            (Some(s), _) if s.state != JobState::Running => s.state.name().to_string(),
            (_, Some(q)) => q,
            (Some(_), None) => "running".into(),
            (None, None) => "not run".into(),
        };
        *counts.entry(state.clone()).or_insert(0usize) += 1;
        out.push_str(&format!(
            "  job {:>3} {:<11} {}{}\n",
            job.num,
            state,
            job.swept
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" "),
            status
                .and_then(|s| s.run_dir)
                .map_or(String::new(), |d| format!("  {}", d.display()))
        ));
    }
    let totals: Vec<String> = counts.iter().map(|(s, n)| format!("{n} {s}")).collect();
    out.push_str(&format!("total: {}\n", totals.join(", ")));
    Ok(out)
}
