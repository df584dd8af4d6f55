//! Next-token metrics over a split: cross-entropy, perplexity, top-1 and top-5 accuracy.

use crate::data::windows::eval_starts;
use crate::data::{Batch, Target};
use crate::lm::LanguageModel;
use rayon::prelude::*;
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SplitMetrics {
    /// Mean cross-entropy per predicted token (nats).
    pub loss: f64,
    /// `exp(loss)`.
    pub perplexity: f64,
    pub accuracy: f64,
    pub top5_accuracy: f64,
    /// Predicted tokens the figures are over.
    pub tokens: usize,
}

/// Loss, rank of the target, per predicted position.
fn score_row(row: &[f32], target: u32) -> (f64, usize) {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f64 = row.iter().map(|&x| ((x - max) as f64).exp()).sum();
    let t = row[target as usize];
    let rank = row.iter().filter(|&&x| x > t).count();
    (max as f64 + sum.ln() - t as f64, rank)
}

/// Evaluates `lm` on `ids`: every window for next-token models, non-overlapping windows for
/// causal ones, at most `max_windows` (0 = all). `None` when the split is too short for one
/// window.
pub fn evaluate(
    lm: &mut dyn LanguageModel,
    ids: &[u32],
    batch_size: usize,
    max_windows: usize,
) -> Option<SplitMetrics> {
    let cfg = lm.config().clone();
    let target = Target::of(cfg.kind);
    let starts = eval_starts(ids.len(), cfg.seq_len, target, max_windows);
    if starts.is_empty() {
        return None;
    }
    let (mut loss, mut top1, mut top5, mut count) = (0.0f64, 0usize, 0usize, 0usize);
    let mut batch = Batch::default();
    for chunk in starts.chunks(batch_size) {
        batch.fill(ids, chunk, cfg.seq_len, target);
        let logits = lm.window_logits(&batch.tokens, batch.batch, batch.seq);
        let scores: Vec<(f64, usize)> = logits
            .par_chunks_exact(cfg.vocab_size)
            .zip(batch.targets.par_iter())
            .map(|(row, &t)| score_row(row, t))
            .collect();
        for (l, rank) in scores {
            loss += l;
            top1 += usize::from(rank == 0);
            top5 += usize::from(rank < 5);
            count += 1;
        }
    }
    let mean = loss / count as f64;
    Some(SplitMetrics {
        loss: mean,
        perplexity: mean.exp(),
        accuracy: top1 as f64 / count as f64,
        top5_accuracy: top5 as f64 / count as f64,
        tokens: count,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_rank_and_loss() {
        let (loss, rank) = score_row(&[0.0, 0.0, 0.0, 0.0], 2);
        assert!((loss - 4f64.ln()).abs() < 1e-9);
        assert_eq!(rank, 0);
        let (_, rank) = score_row(&[5.0, 4.0, 3.0, 2.0, 1.0, 0.0, -1.0], 5);
        assert_eq!(rank, 5);
    }
}
