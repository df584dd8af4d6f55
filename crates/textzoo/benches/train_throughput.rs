//! Training throughput of every model at the issue's reference size (vocab 4096, seq_len 32,
//! embed 128, 4 heads, 2 layers, ffn 512; recurrent models 1 layer of 256), batch 32, on two
//! threads: one step is the trainer's (`training::shards`: the batch's two halves forward +
//! softmax cross-entropy + backward at once) + AdamW with gradient clipping (`AdamW::step`,
//! which also zeroes the gradient for the next step).
//!
//! ```text
//! cargo bench -p textzoo --bench train_throughput [-- tiny_gpt tiny_bert_generator gru lstm]
//! ```
//!
//! Threads: a rayon pool of 2, which also runs the matrix products. `TEXTZOO_BENCH_THREADS=1`
//! runs on one instead: on a shared host one-thread repetitions stay within ~3 % of each other
//! where two-thread ones spread by ±10 % (the second core is the contended one), so changes to
//! the engine are best compared that way, alternating the two builds.
//! Prints the median over 5 timed repetitions of target tokens/s (every position is a target
//! for the causal models; one target per window for `tiny_bert_generator`, so its rate is
//! windows/s) and the peak RSS. Each model runs in a child process of its own, so the peak
//! RSS (`VmHWM`) is that model's alone. Also prints the heap allocations per step (count
//! and bytes, over the timed steps): the issue asks for none inside the training step, and
//! this shows where that stands (the engine's own buffers are reused from step to step; the
//! matrix-multiply crates allocate their packing buffers on every product).

use std::process::Command;
use std::time::Instant;
use textzoo::config::ModelName;
use textzoo::models::{build, ModelConfig};
use textzoo::nn::heap;
use textzoo::nn::optim::AdamW;
use textzoo::training::shards::{Shards, Step};
use textzoo_rt::Rng;

const THREADS: usize = 2;
const THREADS_ENV: &str = "TEXTZOO_BENCH_THREADS";

fn threads() -> usize {
    std::env::var(THREADS_ENV)
        .ok()
        .and_then(|t| t.parse().ok())
        .filter(|&t| t > 0)
        .unwrap_or(THREADS)
}
const BATCH: usize = 32;
const WARMUP_STEPS: usize = 3;
const REPETITIONS: usize = 5;
const CHILD_ENV: &str = "TEXTZOO_BENCH_MODEL";

const MODELS: [(&str, ModelName); 4] = [
    ("tiny_gpt", ModelName::TinyGpt),
    ("tiny_bert_generator", ModelName::TinyBertGenerator),
    ("gru", ModelName::Gru),
    ("lstm", ModelName::Lstm),
];

/// Counts every allocation, so the bench can report allocations per step (a relaxed atomic
/// add or two per call: nothing next to a step's work).
#[global_allocator]
static ALLOCATOR: heap::Counting = heap::Counting;

fn reference(kind: ModelName) -> ModelConfig {
    let recurrent = matches!(kind, ModelName::Gru | ModelName::Lstm);
    ModelConfig {
        kind,
        vocab_size: 4096,
        seq_len: 32,
        embed_dim: 128,
        num_heads: 4,
        num_layers: if recurrent { 1 } else { 2 },
        ffn_dim: 512,
        hidden_dim: 256,
        dropout: 0.1,
        tie_embeddings: false,
    }
}

fn main() {
    if let Ok(name) = std::env::var(CHILD_ENV) {
        if let Some(&(_, kind)) = MODELS.iter().find(|(n, _)| *n == name) {
            // Inside the pool, the step's parallel loops and joins start on a worker instead
            // of waking one from outside each time (a few percent per step).
            match rayon::ThreadPoolBuilder::new()
                .num_threads(threads())
                .build()
            {
                Ok(pool) => pool.install(|| run(&name, kind)),
                Err(e) => eprintln!("rayon pool: {e}"),
            }
        }
        return;
    }
    let wanted: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    println!(
        "{:<20} {:>9} {:>10} {:>14} {:>10} {:>18}  (batch {BATCH}, {} threads, median of {REPETITIONS})",
        "model",
        "params",
        "ms/step",
        "targets/s",
        "peak RSS",
        "allocs/step",
        threads()
    );
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => {
            eprintln!("cannot find the benchmark executable: {e}");
            std::process::exit(1);
        }
    };
    for (name, _) in MODELS {
        if !wanted.is_empty() && !wanted.iter().any(|w| w == name) {
            continue;
        }
        // A fresh process per model: its own peak RSS, and one model's thread pools or heap
        // never slow the next.
        let status = Command::new(&exe).env(CHILD_ENV, name).status();
        if !matches!(status, Ok(s) if s.success()) {
            eprintln!("{name}: benchmark failed ({status:?})");
        }
    }
}

fn run(name: &str, kind: ModelName) {
    let config = reference(kind);
    let (seq, vocab) = (config.seq_len, config.vocab_size);
    let mut model = build(&config, 1);
    let mut opt = AdamW::new(model.num_params(), 0.9, 0.999, 1e-8, 0.01);
    let mut rng = Rng::new(2);
    let batches: Vec<(Vec<u32>, Vec<u32>)> = (0..4)
        .map(|_| {
            let tokens = (0..BATCH * seq).map(|_| rng.below(vocab as u32)).collect();
            let targets_per_window = if config.predicts_every_position() {
                seq
            } else {
                1
            };
            let targets = (0..BATCH * targets_per_window)
                .map(|_| rng.below(vocab as u32))
                .collect();
            (tokens, targets)
        })
        .collect();
    let targets_per_step = batches[0].1.len();
    let mut shards = Shards::new(model.as_ref());
    let mut step = |i: usize| {
        let (tokens, targets) = &batches[i % batches.len()];
        let batch = Step {
            tokens,
            targets,
            batch: BATCH,
            seq,
            soft: None,
        };
        let loss = shards.loss_and_grad(model.as_mut(), &batch, &mut rng);
        opt.step(model.params_mut(), 1e-3, 1.0);
        loss
    };
    for i in 0..WARMUP_STEPS {
        step(i);
    }
    // About a second per repetition.
    let started = Instant::now();
    step(0);
    let per_step = started.elapsed().as_secs_f64();
    let steps = ((1.0 / per_step) as usize).clamp(3, 200);
    let before = heap::totals();
    let mut rates: Vec<f64> = (0..REPETITIONS)
        .map(|_| {
            let started = Instant::now();
            for i in 0..steps {
                step(i);
            }
            (steps * targets_per_step) as f64 / started.elapsed().as_secs_f64()
        })
        .collect();
    let after = heap::totals();
    let timed_steps = (steps * REPETITIONS) as f64;
    rates.sort_by(f64::total_cmp);
    let median = rates[REPETITIONS / 2];
    println!(
        "{name:<20} {:>9} {:>10.2} {:>14.0} {:>7.1} MB {:>6.0} ({:>5.1} MB)  (min {:.0}, max {:.0})",
        model.num_params(),
        1e3 * targets_per_step as f64 / median,
        median,
        peak_rss_kb() as f64 / 1024.0,
        (after.0 - before.0) as f64 / timed_steps,
        (after.1 - before.1) as f64 / timed_steps / 1e6,
        rates[0],
        rates[REPETITIONS - 1],
    );
}

/// `VmHWM` of this process in kB (0 where /proc is unavailable).
fn peak_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}
