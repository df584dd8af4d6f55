//! Running the generated C project: build it with its Makefile, run the app, read what it
//! reports. Shared by the host timing of the native build and the emulated MCU run.

use crate::error::{Error, Result};
use std::path::Path;
use std::process::{Command, Output};

/// Runs `make <args>` in the project, failing with the tail of its output.
pub fn make(project: &Path, args: &[&str]) -> Result<Output> {
    let out = Command::new("make")
        .arg("-C")
        .arg(project)
        .args(args)
        .output()
        .map_err(|e| Error::io("running make (install GNU make and a C compiler)", e))?;
    if !out.status.success() {
        return Err(Error::Internal(format!(
            "`make {}` in {} failed:\n{}{}",
            args.join(" "),
            project.display(),
            tail(&out.stdout),
            tail(&out.stderr)
        )));
    }
    Ok(out)
}

/// The last lines of a command's output, for error messages.
pub fn tail(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(20);
    lines[start..].join("\n") + "\n"
}

/// The app's `-DTZ_BENCH` report: `bench_ns <call> <nanoseconds>` per `tz_next_logits` call
/// (call 0 is the prompt's prefill) and `bench_rss_kb <kB>` at exit.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchLines {
    pub call_ns: Vec<u64>,
    pub peak_rss_kb: Option<u64>,
}

pub fn parse_bench(stdout: &str) -> BenchLines {
    let mut call_ns = Vec::new();
    let mut peak_rss_kb = None;
    for line in stdout.lines() {
        let mut w = line.split_whitespace();
        match (w.next(), w.next(), w.next()) {
            (Some("bench_ns"), Some(_), Some(ns)) => call_ns.extend(ns.parse::<u64>().ok()),
            (Some("bench_rss_kb"), Some(kb), None) => peak_rss_kb = kb.parse().ok(),
            _ => {}
        }
    }
    BenchLines {
        call_ns,
        peak_rss_kb,
    }
}

/// Times the host build: `repeats` runs of the app (greedy, `tokens` tokens); per run the
/// prefill and the mean decoding step.
pub fn time_native(
    project: &Path,
    prompt_tokens: usize,
    tokens: usize,
    repeats: usize,
) -> Result<super::host::Timing> {
    // One call more than `tokens`: the first is the prefill.
    let flags = format!(
        "EXTRA_CFLAGS=-DTZ_BENCH -DTZ_MAX_TOKENS={} -DTZ_GREEDY=1",
        tokens + 1
    );
    // The Makefile rebuilds when the flags change.
    make(project, &["host", &flags])?;
    let binary = project.join("build/host/app");
    let mut runs = Vec::new();
    let mut rss = None;
    for _ in 0..repeats.max(1) {
        let out = Command::new(&binary)
            .output()
            .map_err(|e| Error::io(format!("running {}", binary.display()), e))?;
        if !out.status.success() {
            return Err(Error::Internal(format!(
                "{} failed: {}",
                binary.display(),
                tail(&out.stderr)
            )));
        }
        let b = parse_bench(&String::from_utf8_lossy(&out.stdout));
        let Some((&prefill, steps)) = b.call_ns.split_first() else {
            return Err(Error::Internal(format!(
                "{} printed no bench_ns lines",
                binary.display()
            )));
        };
        let per_token = steps.iter().sum::<u64>() as f64 / steps.len().max(1) as f64;
        runs.push((prefill as f64 * 1e-9, per_token * 1e-9));
        rss = b.peak_rss_kb.map(|kb| kb * 1024);
    }
    Ok(super::host::Timing::from_runs(
        "generated C",
        &runs,
        prompt_tokens,
        tokens,
        rss,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bench_lines_are_read_and_noise_ignored() {
        let b =
            parse_bench("hello\nbench_ns 0 1200\nbench_ns 1 300\nbench_ns x\nbench_rss_kb 1536\n");
        assert_eq!(b.call_ns, vec![1200, 300]);
        assert_eq!(b.peak_rss_kb, Some(1536));
        assert_eq!(parse_bench("").call_ns, Vec::<u64>::new());
    }
}
