//! The local launcher: each job is a child process of the same binary (`textzoo sweep-job DIR
//! NUM`), `hydra.launcher.n_jobs` at once, its console output in `.sweep/logs/NUM.log`.
//!
//! Children run in their own process group, so a Ctrl-C in the terminal reaches only the
//! sweep, which stops starting jobs and forwards one interrupt to each running job (each
//! stops at its next safe point, as a single run does), then waits for them.

use super::manifest::{JobStatus, Manifest};
use super::progress::Progress;
use crate::error::{Error, Result};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long interrupted jobs get to stop before they are killed.
const STOP_GRACE: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(100);

/// Runs `pending` (job numbers) with at most `n_jobs` at once; `threads` is each job's thread
/// count unless its configuration sets one. Returns whether the sweep was interrupted.
pub fn run(
    manifest: &Manifest,
    pending: &[usize],
    n_jobs: usize,
    threads: usize,
    progress: &Progress,
) -> Result<bool> {
    let mut queue = pending.iter().copied();
    let mut running: Vec<(usize, Child)> = Vec::new();
    let mut interrupted = false;
    let mut deadline: Option<Instant> = None;
    loop {
        if crate::interrupt::requested() && !interrupted {
            interrupted = true;
            deadline = Some(Instant::now() + STOP_GRACE);
            progress.note("interrupt: no new jobs; stopping the running ones");
            for (_, child) in &running {
                interrupt_child(child);
            }
        }
        while !interrupted && running.len() < n_jobs {
            let Some(num) = queue.next() else { break };
            running.push((num, spawn(manifest, num, threads)?));
            progress.started(num);
        }
        if running.is_empty() {
            break;
        }
        let mut i = 0;
        while i < running.len() {
            let exited = running[i]
                .1
                .try_wait()
                .map_err(|e| Error::io(format!("waiting for job {}", running[i].0), e))?;
            match exited {
                Some(status) => {
                    let (num, _) = running.swap_remove(i);
                    let code = status.code().unwrap_or(-1);
                    settle(manifest, num, code);
                    progress.ended(manifest, num);
                }
                None => i += 1,
            }
        }
        if let Some(deadline) = deadline {
            if Instant::now() > deadline {
                for (num, child) in &mut running {
                    tracing::warn!("job {num} did not stop in {STOP_GRACE:?}; killing it");
                    let _ = child.kill();
                }
            }
        }
        std::thread::sleep(POLL);
    }
    Ok(interrupted)
}

fn spawn(manifest: &Manifest, num: usize, threads: usize) -> Result<Child> {
    let log_path = manifest.log_path(num);
    if let Some(parent) = log_path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| Error::io(format!("creating {}", parent.display()), e))?;
    }
    let log = std::fs::File::create(&log_path)
        .map_err(|e| Error::io(format!("creating {}", log_path.display()), e))?;
    let err_log = log
        .try_clone()
        .map_err(|e| Error::io(format!("opening {}", log_path.display()), e))?;
    Command::new(&manifest.binary)
        .arg("sweep-job")
        .arg(&manifest.dir)
        .arg(num.to_string())
        .arg("--threads")
        .arg(threads.to_string())
        .current_dir(&manifest.cwd)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(err_log)
        .process_group(0)
        .spawn()
        .map_err(|e| {
            Error::io(
                format!("starting job {num} ({})", manifest.binary.display()),
                e,
            )
        })
}

fn interrupt_child(child: &Child) {
    if let Ok(pid) = libc::pid_t::try_from(child.id()) {
        // SAFETY: kill(2) on a child we started and have not reaped; no memory is shared.
        unsafe {
            libc::kill(pid, libc::SIGINT);
        }
    }
}

/// A job that exited without recording its end (killed, crashed) is recorded by the launcher.
fn settle(manifest: &Manifest, num: usize, code: i32) {
    let Ok(job) = manifest.job(num) else { return };
    let status = JobStatus::load(&manifest.dir, num).unwrap_or_else(|| JobStatus::started(job));
    if status.state != super::manifest::JobState::Running {
        return;
    }
    let message = format!(
        "the job's process exited ({}) without recording a result; see {}",
        if code < 0 {
            "killed by a signal".to_string()
        } else {
            format!("code {code}")
        },
        manifest.log_path(num).display()
    );
    let code = if code == 0 { 1 } else { code };
    if let Err(e) = status.ended(None, code, Some(message)).save(&manifest.dir) {
        tracing::warn!("job {num}: status not written: {e}");
    }
}
