//! Host timing of the integer runtime: `textzoo-rt` in this process, and the generated C
//! built natively (see `native`). Single thread, greedy decoding, medians over repeats.

use crate::artifact::Int8File;
use crate::lm::Int8Lm;
use crate::lm::LanguageModel;
use serde::Serialize;
use std::time::Instant;

/// Latencies of one runtime on this machine.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Timing {
    pub runtime: String,
    /// Median over repeats of the prompt's prefill (first logits).
    pub prefill_ms: f64,
    /// Median over repeats of the mean time per generated token.
    pub ms_per_token: f64,
    pub tokens_per_s: f64,
    pub prompt_tokens: usize,
    /// Decoding steps timed per repeat.
    pub tokens: usize,
    pub repeats: usize,
    /// Peak resident memory of the process that ran it, when the OS reports it.
    pub peak_rss_bytes: Option<u64>,
}

impl Timing {
    /// Builds the summary from per-repeat `(prefill seconds, per-token seconds)`.
    pub fn from_runs(
        runtime: &str,
        runs: &[(f64, f64)],
        prompt_tokens: usize,
        tokens: usize,
        peak_rss_bytes: Option<u64>,
    ) -> Timing {
        let prefill = median(runs.iter().map(|r| r.0).collect());
        let per_token = median(runs.iter().map(|r| r.1).collect());
        Timing {
            runtime: runtime.to_string(),
            prefill_ms: prefill * 1e3,
            ms_per_token: per_token * 1e3,
            tokens_per_s: if per_token > 0.0 {
                1.0 / per_token
            } else {
                0.0
            },
            prompt_tokens,
            tokens,
            repeats: runs.len(),
            peak_rss_bytes,
        }
    }
}

pub fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Times `textzoo-rt`: per repeat, a fresh model state, the prompt's logits, then `tokens`
/// greedy steps. The caller keeps `prompt + tokens` within the window so each step is the
/// incremental KV-cache step the device runs.
pub fn time_runtime(loaded: &Int8File, prompt: &[u32], tokens: usize, repeats: usize) -> Timing {
    let mut runs = Vec::with_capacity(repeats);
    for _ in 0..repeats.max(1) {
        let mut lm = Int8Lm::new(loaded.model.clone());
        let mut context = prompt.to_vec();
        let start = Instant::now();
        let mut logits = lm.next_logits(&context);
        let prefill = start.elapsed().as_secs_f64();
        let start = Instant::now();
        for _ in 0..tokens {
            context.push(textzoo_rt::kernels::argmax(&logits) as u32);
            logits = lm.next_logits(&context);
        }
        let per_token = start.elapsed().as_secs_f64() / tokens.max(1) as f64;
        runs.push((prefill, per_token));
    }
    Timing::from_runs("textzoo-rt", &runs, prompt.len(), tokens, peak_rss_bytes())
}

/// `VmHWM` of this process (Linux), in bytes.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_rates() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(vec![]), 0.0);
        let t = Timing::from_runs(
            "x",
            &[(0.002, 0.001), (0.004, 0.003), (0.001, 0.002)],
            4,
            8,
            None,
        );
        assert_eq!(t.repeats, 3);
        assert!((t.prefill_ms - 2.0).abs() < 1e-9);
        assert!((t.ms_per_token - 2.0).abs() < 1e-9);
        assert!((t.tokens_per_s - 500.0).abs() < 1e-6);
    }
}
