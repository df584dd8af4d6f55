//! The progress bar over a sweep's jobs, and one line per job as it ends (both launchers).

use super::manifest::{JobState, JobStatus, Manifest};
use indicatif::{ProgressBar, ProgressStyle};

pub struct Progress {
    bar: ProgressBar,
}

impl Progress {
    /// A bar over `total` jobs of which `done` are already finished (skipped on a rerun).
    pub fn new(total: usize, done: usize) -> Self {
        let bar = ProgressBar::new(total as u64);
        let style =
            ProgressStyle::with_template("sweep [{bar:30}] {pos}/{len} jobs ({elapsed}) {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
        bar.set_style(style);
        bar.set_position(done as u64);
        Progress { bar }
    }

    pub fn note(&self, message: &str) {
        self.line(message);
    }

    /// A line above the bar; on stderr as is when there is no bar (not a terminal), where
    /// indicatif would drop it.
    fn line(&self, message: &str) {
        if self.bar.is_hidden() {
            eprintln!("{message}");
        } else {
            self.bar.println(message);
        }
    }

    pub fn started(&self, num: usize) {
        self.bar.set_message(format!("started job {num}"));
    }

    /// Sets the bar to `ended` jobs and names the running ones (Slurm's view).
    pub fn set(&self, ended: usize, message: String) {
        self.bar.set_position(ended as u64);
        self.bar.set_message(message);
    }

    /// Prints how job `num` ended, from its status file.
    pub fn ended(&self, manifest: &Manifest, num: usize) {
        self.bar.inc(1);
        self.line(&ended_line(manifest, num));
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

pub fn ended_line(manifest: &Manifest, num: usize) -> String {
    let swept = manifest
        .job(num)
        .map(|j| {
            j.swept
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default();
    match JobStatus::load(&manifest.dir, num) {
        Some(s) => {
            let secs = s.seconds.map_or(String::new(), |t| format!(" in {t:.1} s"));
            match s.state {
                JobState::Finished => format!("job {num} finished{secs}  {swept}"),
                JobState::Failed | JobState::Interrupted | JobState::Running => format!(
                    "job {num} {}{secs} (exit {})  {swept}: {}",
                    s.state.name(),
                    s.exit_code.map_or("?".into(), |c| c.to_string()),
                    s.error.as_deref().unwrap_or("see its log")
                ),
            }
        }
        None => format!("job {num} left no status  {swept}"),
    }
}
