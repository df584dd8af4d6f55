//! The Slurm launcher: the pending jobs as one `sbatch --array=…%K` job array whose tasks each
//! run `textzoo sweep-job DIR $SLURM_ARRAY_TASK_ID` (the job's overrides come from the
//! manifest in the sweep directory, which must be on a filesystem every node sees). The sweep
//! waits by polling `squeue` — not `sacct`, which needs Slurm's accounting storage — and reads
//! each job's outcome from the status file the job wrote. Ctrl-C cancels the array
//! (`scancel`).

use super::manifest::{JobState, JobStatus, Manifest};
use super::progress::Progress;
use crate::config::{ConfigError, Launcher};
use crate::error::{Error, Result};
use crate::util::layout::{SWEEP_LOG_DIR, SWEEP_SBATCH_FILE};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// Consecutive failed `squeue` calls tolerated (the controller may be busy) before giving up.
const SQUEUE_RETRIES: u32 = 10;
/// How long `scancel`'s effect is awaited after Ctrl-C.
const CANCEL_WAIT: Duration = Duration::from_secs(60);

/// Refuses a Slurm sweep on a machine without Slurm's commands, before anything runs.
pub fn check_available() -> Result<()> {
    for tool in ["sbatch", "squeue", "scancel"] {
        if which(tool).is_none() {
            return Err(ConfigError::Invalid {
                key: "hydra.launcher.name".into(),
                message: format!(
                    "slurm needs `{tool}` on PATH (run textzoo on a Slurm login node, or use hydra.launcher.name=local)"
                ),
                suggestion: None,
            }
            .into());
        }
    }
    Ok(())
}

fn which(tool: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
}

/// The array specification of `pending` (`0-3,5,7-9`), with `%K` when `parallelism` > 0.
pub fn array_spec(pending: &[usize], parallelism: usize) -> String {
    let mut parts = Vec::new();
    let mut i = 0;
    while i < pending.len() {
        let start = pending[i];
        let mut end = start;
        while i + 1 < pending.len() && pending[i + 1] == end + 1 {
            i += 1;
            end = pending[i];
        }
        parts.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
        i += 1;
    }
    let mut spec = parts.join(",");
    if parallelism > 0 {
        spec.push_str(&format!("%{parallelism}"));
    }
    spec
}

/// Single-quotes `text` for the shell.
fn sh(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// The batch script of the array.
pub fn script(manifest: &Manifest, pending: &[usize], launcher: &Launcher) -> String {
    let dir = manifest.dir.display().to_string();
    let name = manifest
        .dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "sweep".into());
    let mut lines = vec![
        "#!/bin/bash".to_string(),
        format!(
            "#SBATCH --job-name=textzoo-{}",
            name.replace(char::is_whitespace, "_")
        ),
        format!(
            "#SBATCH --array={}",
            array_spec(pending, launcher.array_parallelism)
        ),
        format!("#SBATCH --output={dir}/{SWEEP_LOG_DIR}/%a.log"),
        "#SBATCH --ntasks=1".into(),
    ];
    let mut option = |flag: &str, value: &Option<String>| {
        if let Some(v) = value {
            lines.push(format!("#SBATCH --{flag}={v}"));
        }
    };
    option("partition", &launcher.partition);
    option("time", &launcher.time);
    option(
        "cpus-per-task",
        &launcher.cpus_per_task.map(|c| c.to_string()),
    );
    option("mem", &launcher.mem);
    option("account", &launcher.account);
    option("qos", &launcher.qos);
    for arg in &launcher.sbatch_args {
        lines.push(format!("#SBATCH {arg}"));
    }
    lines.push("set -e".into());
    lines.push("export NO_COLOR=1".into());
    lines.push(format!("cd {}", sh(&manifest.cwd.display().to_string())));
    lines.extend(launcher.setup.iter().cloned());
    lines.push(format!(
        "exec {} sweep-job {} \"$SLURM_ARRAY_TASK_ID\"",
        sh(&manifest.binary.display().to_string()),
        sh(&dir)
    ));
    lines.join("\n") + "\n"
}

/// Submits the array and returns its job id.
pub fn submit(manifest: &Manifest, pending: &[usize], launcher: &Launcher) -> Result<String> {
    let path = manifest.dir.join(SWEEP_SBATCH_FILE);
    crate::util::write_atomic(&path, script(manifest, pending, launcher).as_bytes())?;
    let logs = manifest.dir.join(SWEEP_LOG_DIR);
    std::fs::create_dir_all(&logs)
        .map_err(|e| Error::io(format!("creating {}", logs.display()), e))?;
    let out = Command::new("sbatch")
        .arg("--parsable")
        .arg(&path)
        .current_dir(&manifest.cwd)
        .output()
        .map_err(|e| Error::io("running sbatch", e))?;
    if !out.status.success() {
        return Err(Error::Internal(format!(
            "sbatch refused {}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    // `--parsable` prints `jobid[;cluster]`.
    let text = String::from_utf8_lossy(&out.stdout);
    let id = text.trim().split(';').next().unwrap_or("").to_string();
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()) {
        return Err(Error::Internal(format!(
            "sbatch printed no job id: {:?}",
            text.trim()
        )));
    }
    Ok(id)
}

/// The array's tasks still known to the queue (pending or running) and their states.
pub fn queued(job_id: &str) -> Result<Vec<(String, String)>> {
    let out = Command::new("squeue")
        .args(["-h", "-r", "-j", job_id, "-o", "%i %T"])
        .output()
        .map_err(|e| Error::io("running squeue", e))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        // Once the whole array has left the controller's memory, squeue no longer knows the id.
        if stderr.contains("Invalid job id") {
            return Ok(Vec::new());
        }
        return Err(Error::Internal(format!("squeue failed: {}", stderr.trim())));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let (id, state) = l.trim().split_once(' ')?;
            Some((id.to_string(), state.to_string()))
        })
        .collect())
}

pub fn cancel(job_id: &str) -> Result<()> {
    let out = Command::new("scancel")
        .arg(job_id)
        .output()
        .map_err(|e| Error::io("running scancel", e))?;
    if !out.status.success() {
        return Err(Error::Internal(format!(
            "scancel {job_id} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

/// Waits for the array to leave the queue, showing progress; on Ctrl-C cancels it. Returns
/// whether the sweep was interrupted.
pub fn wait(
    manifest: &Manifest,
    job_id: &str,
    pending: &[usize],
    poll: Duration,
    progress: &Progress,
) -> Result<bool> {
    let mut failures = 0;
    let mut reported = std::collections::BTreeSet::new();
    let mut interrupted = false;
    let mut cancel_deadline: Option<Instant> = None;
    loop {
        if crate::interrupt::requested() && !interrupted {
            interrupted = true;
            progress.note(&format!(
                "interrupt: cancelling Slurm job {job_id} (scancel)"
            ));
            cancel(job_id)?;
            cancel_deadline = Some(Instant::now() + CANCEL_WAIT);
        }
        let tasks = match queued(job_id) {
            Ok(t) => {
                failures = 0;
                t
            }
            Err(e) if failures < SQUEUE_RETRIES => {
                failures += 1;
                tracing::warn!("{e}; retrying");
                std::thread::sleep(poll);
                continue;
            }
            Err(e) => return Err(e),
        };
        for &num in pending {
            let ended =
                JobStatus::load(&manifest.dir, num).is_some_and(|s| s.state != JobState::Running);
            if ended && reported.insert(num) {
                progress.ended(manifest, num);
            }
        }
        let running = tasks.iter().filter(|(_, s)| s == "RUNNING").count();
        progress.set(
            manifest.jobs.len() - pending.len() + reported.len(),
            format!(
                "Slurm job {job_id}: {running} running, {} queued",
                tasks.len() - running
            ),
        );
        if tasks.is_empty() {
            break;
        }
        if cancel_deadline.is_some_and(|d| Instant::now() > d) {
            return Err(Error::Internal(format!(
                "Slurm job {job_id} still queued {CANCEL_WAIT:?} after scancel"
            )));
        }
        std::thread::sleep(poll);
    }
    settle(manifest, pending, job_id, interrupted);
    for &num in pending {
        if reported.insert(num) {
            progress.ended(manifest, num);
        }
    }
    Ok(interrupted)
}

/// Tasks that left the queue without recording an end (cancelled, timed out, killed, or lost
/// with their node) are recorded by the launcher.
pub fn settle(manifest: &Manifest, pending: &[usize], job_id: &str, cancelled: bool) {
    for &num in pending {
        let Ok(job) = manifest.job(num) else { continue };
        let status = JobStatus::load(&manifest.dir, num);
        let running = status.as_ref().is_none_or(|s| s.state == JobState::Running);
        if !running {
            continue;
        }
        let status = status.unwrap_or_else(|| JobStatus::started(job));
        let (code, why) = if cancelled {
            (130, "cancelled (scancel)")
        } else {
            (
                1,
                "the task ended without recording a result (cancelled, timed out or killed)",
            )
        };
        let message = format!(
            "Slurm task {job_id}_{num}: {why}; see {}",
            log_of(&manifest.dir, num)
        );
        if let Err(e) = status.ended(None, code, Some(message)).save(&manifest.dir) {
            tracing::warn!("job {num}: status not written: {e}");
        }
    }
}

fn log_of(dir: &Path, num: usize) -> String {
    dir.join(SWEEP_LOG_DIR)
        .join(format!("{num}.log"))
        .display()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn array_specs_compress_runs() {
        assert_eq!(array_spec(&[0, 1, 2, 3], 0), "0-3");
        assert_eq!(array_spec(&[0, 1, 2, 3], 2), "0-3%2");
        assert_eq!(array_spec(&[1, 3, 4, 5, 9], 0), "1,3-5,9");
        assert_eq!(array_spec(&[7], 1), "7%1");
    }

    #[test]
    fn shell_quoting_survives_quotes() {
        assert_eq!(sh("/a b/it's"), r"'/a b/it'\''s'");
    }
}
