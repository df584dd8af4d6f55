//! Data parallelism inside one training step: the batch is cut into [`SHARDS`] parts of whole
//! windows, each run forward and backward at the same time by its own copy of the model, and
//! the copies' gradients are added into the model's.
//!
//! Why: at these sizes one step is many small products and element-wise passes, each of which
//! wakes and waits for the other thread when split; two independent halves keep both cores busy
//! with no hand-over in between. `cargo bench --bench train_throughput` measured it against
//! splitting every operation (see the training issue's notes).
//!
//! Determinism: the cut depends only on the batch size (never on the thread count), each part
//! draws its dropout masks from its own generator forked from the step's, and the gradients
//! are added in part order, so the same seed gives the same bits on one thread or many.

use crate::avx2_dispatch;
use crate::models::{build, FloatModel};
use crate::nn::distillation::{distillation_sum, distilled_per_window, Scales, Soft};
use crate::nn::loss::cross_entropy_sum;
use crate::nn::matmul::unsplit;
use rayon::prelude::*;
use textzoo_rt::Rng;

/// Parts per batch. Two matches the two cores the reference numbers are measured on; more
/// cores still help inside each part (matrix products and element-wise passes split further).
pub const SHARDS: usize = 2;

/// The model's copies for parts 2.. (part 1 runs on the model itself) and each part's
/// buffers.
pub struct Shards {
    replicas: Vec<Box<dyn FloatModel>>,
    buffers: Vec<PartBuffers>,
}

/// What one part keeps from step to step, so that a step allocates nothing.
#[derive(Default)]
struct PartBuffers {
    /// Gradient of the logits.
    dlogits: Vec<f32>,
    /// Per-row losses, summed in order (see `cross_entropy_sum`).
    row_losses: Vec<f64>,
}

/// One batch of windows `[batch, seq]` and their targets (`seq` or one per window).
pub struct Step<'a> {
    pub tokens: &'a [u32],
    pub targets: &'a [u32],
    pub batch: usize,
    pub seq: usize,
    /// The teacher's logits for the whole batch, when distilling.
    pub soft: Option<Soft<'a>>,
}

impl Shards {
    /// Copies of `model`'s architecture; their weights are set from the model at every step.
    pub fn new(model: &dyn FloatModel) -> Self {
        Shards {
            replicas: (1..SHARDS).map(|_| build(model.config(), 0)).collect(),
            buffers: (0..SHARDS).map(|_| PartBuffers::default()).collect(),
        }
    }

    /// Mean cross-entropy over the whole batch (or, with `s.soft`, the mean distillation
    /// loss, see [`crate::nn::distillation`]), with its gradient added into
    /// `model.params().grad` (dropout on: this is a training pass).
    pub fn loss_and_grad(
        &mut self,
        model: &mut (dyn FloatModel + 'static),
        s: &Step<'_>,
        rng: &mut Rng,
    ) -> f32 {
        let parts = SHARDS.min(s.batch).max(1);
        let per_window = s.targets.len() / s.batch.max(1);
        let vocab = model.config().vocab_size;
        let scale = 1.0 / s.targets.len() as f32;
        let kd_scales = s.soft.map(|soft| Scales {
            hard: scale,
            soft: 1.0
                / (s.batch * distilled_per_window(per_window, soft.teacher_positions)).max(1)
                    as f32,
        });
        // Fixed-size arrays, not vectors: the step allocates nothing (see the tests).
        let mut rngs: [Rng; SHARDS] =
            std::array::from_fn(|i| if i < parts { rng.fork() } else { Rng::new(0) });
        let mut losses = [0.0f64; SHARDS];
        let spare_threads = rayon::current_num_threads() > parts;
        for r in &mut self.replicas[..parts - 1] {
            copy(&mut r.params_mut().data, &model.params().data);
        }
        rayon::iter::once(&mut *model)
            .chain(self.replicas.par_iter_mut().map(|r| r.as_mut()))
            .zip(self.buffers.par_iter_mut())
            .zip(rngs.par_iter_mut())
            .zip(losses.par_iter_mut())
            .take(parts)
            .enumerate()
            .for_each(|(i, (((m, buffers), rng), loss))| {
                let (w0, w1) = (i * s.batch / parts, (i + 1) * s.batch / parts);
                let tokens = &s.tokens[w0 * s.seq..w1 * s.seq];
                let targets = &s.targets[w0 * per_window..w1 * per_window];
                let mut run = || {
                    let logits = m.forward(tokens, w1 - w0, s.seq, true, rng);
                    let PartBuffers {
                        dlogits,
                        row_losses,
                    } = buffers;
                    dlogits.resize(logits.len(), 0.0);
                    let loss = match (s.soft, kd_scales) {
                        (Some(soft), Some(scales)) => {
                            let per = soft.teacher_positions * vocab;
                            let part = Soft {
                                teacher: &soft.teacher[w0 * per..w1 * per],
                                ..soft
                            };
                            let grad = Some(&mut dlogits[..]);
                            let windows = w1 - w0;
                            // Already a share of the batch's mean: undo the division below.
                            s.targets.len() as f64
                                * distillation_sum(
                                    logits, targets, windows, vocab, &part, scales, grad,
                                    row_losses,
                                )
                        }
                        _ => {
                            let grad = Some((&mut dlogits[..], scale));
                            cross_entropy_sum(logits, targets, vocab, grad, row_losses)
                        }
                    };
                    m.backward(dlogits);
                    loss
                };
                *loss = if spare_threads { run() } else { unsplit(run) };
            });
        for r in &mut self.replicas[..parts - 1] {
            add_and_clear(&mut model.params_mut().grad, &mut r.params_mut().grad);
        }
        (losses.iter().sum::<f64>() / s.targets.len() as f64) as f32
    }
}

/// Elements per parallel task of the whole-parameter passes below.
const CHUNK: usize = 1 << 15;

/// The model's weights into a copy, on every thread (one thread alone leaves the other idle
/// for a millisecond per step at the reference size).
fn copy(into: &mut [f32], from: &[f32]) {
    into.par_chunks_mut(CHUNK)
        .zip(from.par_chunks(CHUNK))
        .for_each(|(a, b)| a.copy_from_slice(b));
}

/// `into += from; from = 0`, so the copy starts its next backward from zero.
fn add_and_clear(into: &mut [f32], from: &mut [f32]) {
    into.par_chunks_mut(CHUNK)
        .zip(from.par_chunks_mut(CHUNK))
        .for_each(|(a, b)| add_and_clear_chunk(a, b));
}

avx2_dispatch! {
    fn add_and_clear_chunk(into: &mut [f32], from: &mut [f32]) {
        for (a, b) in into.iter_mut().zip(from.iter_mut()) {
            *a += *b;
            *b = 0.0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ModelName;
    use crate::models::ModelConfig;
    use crate::nn::loss::softmax_cross_entropy;

    const EVERY_MODEL: [ModelName; 4] = [
        ModelName::TinyGpt,
        ModelName::TinyBertGenerator,
        ModelName::Gru,
        ModelName::Lstm,
    ];

    fn config(kind: ModelName, dropout: f32) -> ModelConfig {
        ModelConfig {
            kind,
            vocab_size: 11,
            seq_len: 6,
            embed_dim: 8,
            num_heads: 2,
            num_layers: 2,
            ffn_dim: 16,
            hidden_dim: 8,
            dropout,
            tie_embeddings: false,
        }
    }

    /// Five windows (an uneven cut) and their targets.
    fn batch(cfg: &ModelConfig) -> (Vec<u32>, Vec<u32>) {
        let (b, t) = (5, cfg.seq_len);
        let tokens: Vec<u32> = (0..b * t).map(|i| (i * 7 % 11) as u32).collect();
        let per_window = if cfg.predicts_every_position() { t } else { 1 };
        let targets = (0..b * per_window).map(|i| (i * 5 % 11) as u32).collect();
        (tokens, targets)
    }

    fn sharded(cfg: &ModelConfig, threads: usize) -> (f32, Vec<f32>) {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build();
        pool.unwrap().install(|| {
            let mut model = build(cfg, 3);
            let mut shards = Shards::new(model.as_ref());
            let (tokens, targets) = batch(cfg);
            let step = Step {
                tokens: &tokens,
                targets: &targets,
                batch: 5,
                seq: cfg.seq_len,
                soft: None,
            };
            // Three steps, so the copies' cleared gradients and refreshed weights are exercised.
            let mut loss = 0.0;
            for _ in 0..3 {
                model.params_mut().zero_grad();
                loss = shards.loss_and_grad(model.as_mut(), &step, &mut Rng::new(9));
            }
            (loss, model.params().grad.clone())
        })
    }

    /// Without dropout, the parts' summed gradient is the whole batch's (up to the order of
    /// float additions), for every kind of model.
    #[test]
    fn the_parts_add_up_to_the_whole_batch() {
        for kind in EVERY_MODEL {
            let cfg = config(kind, 0.0);
            let (loss, grad) = sharded(&cfg, 2);
            let mut model = build(&cfg, 3);
            let (tokens, targets) = batch(&cfg);
            let logits = model.forward(&tokens, 5, cfg.seq_len, true, &mut Rng::new(9));
            let mut dlogits = vec![0.0; logits.len()];
            let whole = softmax_cross_entropy(logits, &targets, cfg.vocab_size, Some(&mut dlogits));
            model.backward(&dlogits);
            assert!((loss - whole).abs() < 1e-5, "{kind:?}: {loss} vs {whole}");
            for (i, (g, w)) in grad.iter().zip(&model.params().grad).enumerate() {
                assert!(
                    (g - w).abs() <= 1e-5 + 1e-4 * w.abs(),
                    "{kind:?} [{i}]: {g} vs {w}"
                );
            }
        }
    }

    /// The "no allocation inside the training step": once the first steps have sized
    /// the buffers, a whole step (batch, shards forward and backward, AdamW, moving average)
    /// allocates nothing on any thread, for every model. Matrix products are left out (see
    /// `nn::heap`).
    #[test]
    fn a_training_step_allocates_nothing_outside_the_matrix_products() {
        use crate::data::windows::{Batch, Target};
        use crate::nn::heap::own;
        use crate::nn::optim::AdamW;
        use crate::training::ema::Ema;
        use std::sync::atomic::{AtomicU64, Ordering};
        let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build();
        let pool = pool.expect("a rayon pool of two threads");
        // The step runs inside the pool, so its threads' counts are the step's. Read through a
        // broadcast returning `()`, which itself allocates nothing on them.
        let in_pool = || {
            let slots = [AtomicU64::new(0), AtomicU64::new(0)];
            pool.broadcast(|b| slots[b.index()].store(own(), Ordering::Relaxed));
            slots.iter().map(|s| s.load(Ordering::Relaxed)).sum::<u64>()
        };
        for kind in EVERY_MODEL {
            let cfg = config(kind, 0.1);
            let target = if cfg.predicts_every_position() {
                Target::EveryPosition
            } else {
                Target::NextToken
            };
            let ids: Vec<u32> = (0..200).map(|i| (i * 7 % 11) as u32).collect();
            let mut model = build(&cfg, 3);
            let mut shards = Shards::new(model.as_ref());
            let mut opt = AdamW::new(model.num_params(), 0.9, 0.999, 1e-8, 0.01);
            let mut ema = Ema::new(0.99, model.params().data.clone());
            let mut batch = Batch::default();
            let mut rng = Rng::new(5);
            let mut step = |i: usize| {
                let starts: Vec<usize> = (0..6).map(|w| (i * 13 + w * 29) % 150).collect();
                let before = in_pool();
                pool.install(|| {
                    batch.fill(&ids, &starts, cfg.seq_len, target);
                    batch.pad_left_randomly(0.3, &mut rng);
                    let s = Step {
                        tokens: &batch.tokens,
                        targets: &batch.targets,
                        batch: batch.batch,
                        seq: cfg.seq_len,
                        soft: None,
                    };
                    shards.loss_and_grad(model.as_mut(), &s, &mut rng);
                    opt.step(model.params_mut(), 1e-3, 1.0);
                    ema.update(&model.params().data, i as u64 + 1);
                });
                in_pool() - before
            };
            let first = step(0);
            assert!(first > 0, "{kind:?}: the first step sizes its buffers");
            step(1);
            assert_eq!(
                (step(2), step(3)),
                (0, 0),
                "{kind:?}: allocations in a step"
            );
        }
    }

    /// With a teacher's logits, the parts' summed gradient and loss are the whole batch's
    /// distillation loss and gradient: each part gets its own windows' teacher rows and the
    /// batch's scales, for a teacher predicting every position or only the last.
    #[test]
    fn distilled_parts_add_up_to_the_whole_batch() {
        use crate::nn::distillation::{distillation_sum, Scales, Soft};
        let cfg = config(ModelName::TinyGpt, 0.0);
        let (tokens, targets) = batch(&cfg);
        let v = cfg.vocab_size;
        for teacher_positions in [cfg.seq_len, 1] {
            let teacher: Vec<f32> = (0..5 * teacher_positions * v)
                .map(|i| ((i * 37 % 101) as f32 / 25.0) - 2.0)
                .collect();
            let soft = Soft {
                teacher: &teacher,
                teacher_positions,
                alpha: 0.7,
                temperature: 2.0,
            };
            let mut model = build(&cfg, 3);
            let mut shards = Shards::new(model.as_ref());
            let step = Step {
                tokens: &tokens,
                targets: &targets,
                batch: 5,
                seq: cfg.seq_len,
                soft: Some(soft),
            };
            let loss = shards.loss_and_grad(model.as_mut(), &step, &mut Rng::new(9));
            let grad = model.params().grad.clone();

            let mut whole = build(&cfg, 3);
            let logits = whole.forward(&tokens, 5, cfg.seq_len, true, &mut Rng::new(9));
            let mut dlogits = vec![0.0; logits.len()];
            let plain = softmax_cross_entropy(logits, &targets, v, None);
            let scales = Scales {
                hard: 1.0 / targets.len() as f32,
                soft: 1.0 / (5 * teacher_positions.min(cfg.seq_len)) as f32,
            };
            let want = distillation_sum(
                logits,
                &targets,
                5,
                v,
                &soft,
                scales,
                Some(&mut dlogits),
                &mut Vec::new(),
            ) as f32;
            whole.backward(&dlogits);
            assert!((loss - want).abs() < 1e-5, "{loss} vs {want}");
            assert!((loss - plain).abs() > 1e-3, "the teacher changed nothing");
            for (i, (g, w)) in grad.iter().zip(&whole.params().grad).enumerate() {
                assert!((g - w).abs() <= 1e-5 + 1e-4 * w.abs(), "[{i}]: {g} vs {w}");
            }
        }
    }

    /// With dropout, one thread and two give the same bits: the cut and the masks do not
    /// depend on the thread count.
    #[test]
    fn thread_count_does_not_change_the_bits() {
        for kind in [ModelName::TinyGpt, ModelName::TinyBertGenerator] {
            let cfg = config(kind, 0.3);
            assert_eq!(sharded(&cfg, 1), sharded(&cfg, 2), "{kind:?}");
        }
    }
}
