//! Windows of token ids for training and evaluation.
//!
//! Causal models (`tiny_gpt`, `gru`, `lstm`) learn from a window and the same window shifted
//! by one; `tiny_bert_generator` learns the one token after its window. An epoch visits
//! non-overlapping windows for causal models (every token is a target once, from a random
//! offset each epoch) and every start position for next-token models.

use super::tokenizer::PAD_ID;
use textzoo_rt::Rng;

/// What a window is trained to predict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Every position: targets are the window shifted by one.
    EveryPosition,
    /// Only the token after the window.
    NextToken,
}

/// A batch of windows: `tokens` is `[batch, seq]`, `targets` `[batch, seq]` or `[batch]`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Batch {
    pub tokens: Vec<u32>,
    pub targets: Vec<u32>,
    pub batch: usize,
    pub seq: usize,
}

impl Target {
    /// What a model of `kind` learns to predict.
    pub fn of(kind: crate::config::ModelName) -> Target {
        if kind.predicts_every_position() {
            Target::EveryPosition
        } else {
            Target::NextToken
        }
    }
}

/// Number of windows of `seq` tokens (plus their target) that fit in `len` ids.
pub fn window_count(len: usize, seq: usize, target: Target) -> usize {
    if len <= seq {
        return 0;
    }
    match target {
        Target::EveryPosition => (len - 1) / seq,
        Target::NextToken => len - seq,
    }
}

/// Start positions of one training epoch, shuffled from `rng`.
pub fn epoch_starts(len: usize, seq: usize, target: Target, rng: &mut Rng) -> Vec<usize> {
    let mut starts: Vec<usize> = match target {
        Target::EveryPosition => {
            let offset = if len > 2 * seq + 1 {
                rng.below(seq as u32) as usize
            } else {
                0
            };
            (0..window_count(len - offset, seq, target))
                .map(|k| offset + k * seq)
                .collect()
        }
        Target::NextToken => (0..window_count(len, seq, target)).collect(),
    };
    shuffle(&mut starts, rng);
    starts
}

/// Evaluation start positions, in order: non-overlapping for causal models, every position
/// for next-token models; at most `max` (0 = all), evenly spread over the split.
pub fn eval_starts(len: usize, seq: usize, target: Target, max: usize) -> Vec<usize> {
    let n = window_count(len, seq, target);
    let stride = match target {
        Target::EveryPosition => seq,
        Target::NextToken => 1,
    };
    if max == 0 || max >= n {
        return (0..n).map(|k| k * stride).collect();
    }
    (0..max).map(|i| (i * n / max) * stride).collect()
}

/// Fisher–Yates with the project's generator, so the order depends only on the seed.
pub fn shuffle<T>(items: &mut [T], rng: &mut Rng) {
    for i in (1..items.len()).rev() {
        let j = rng.below(i as u32 + 1) as usize;
        items.swap(i, j);
    }
}

impl Batch {
    /// Fills the batch from `ids` at `starts`, reusing its buffers.
    pub fn fill(&mut self, ids: &[u32], starts: &[usize], seq: usize, target: Target) {
        self.batch = starts.len();
        self.seq = seq;
        self.tokens.clear();
        self.targets.clear();
        for &s in starts {
            self.tokens.extend_from_slice(&ids[s..s + seq]);
            match target {
                Target::EveryPosition => self.targets.extend_from_slice(&ids[s + 1..s + seq + 1]),
                Target::NextToken => self.targets.push(ids[s + seq]),
            }
        }
    }

    /// Replaces a random left part of some windows by `<pad>`, so a next-token model also
    /// learns to answer prompts shorter than its window (generation left-pads them).
    /// Each window is shortened with probability `prob` to 1..seq-1 real tokens.
    pub fn pad_left_randomly(&mut self, prob: f32, rng: &mut Rng) {
        if self.seq < 2 {
            return;
        }
        for row in self.tokens.chunks_exact_mut(self.seq) {
            if rng.next_f32() < prob {
                let keep = 1 + rng.below(self.seq as u32 - 1) as usize;
                let cut = self.seq - keep;
                row[..cut].iter_mut().for_each(|t| *t = PAD_ID);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causal_windows_are_shifted_by_one() {
        let ids: Vec<u32> = (10..30).collect();
        let mut b = Batch::default();
        b.fill(&ids, &[0, 5], 4, Target::EveryPosition);
        assert_eq!(b.tokens, vec![10, 11, 12, 13, 15, 16, 17, 18]);
        assert_eq!(b.targets, vec![11, 12, 13, 14, 16, 17, 18, 19]);
        b.fill(&ids, &[3], 4, Target::NextToken);
        assert_eq!(
            (b.tokens.clone(), b.targets.clone()),
            (vec![13, 14, 15, 16], vec![17])
        );
    }

    #[test]
    fn epochs_cover_the_split_and_depend_only_on_the_seed() {
        let (len, seq) = (1000, 8);
        let a = epoch_starts(len, seq, Target::NextToken, &mut Rng::new(1));
        let b = epoch_starts(len, seq, Target::NextToken, &mut Rng::new(1));
        assert_eq!(a, b);
        let mut sorted = a.clone();
        sorted.sort();
        assert_eq!(sorted, (0..992).collect::<Vec<_>>());
        let c = epoch_starts(len, seq, Target::EveryPosition, &mut Rng::new(2));
        assert!(c.iter().all(|&s| s + seq < len));
        assert!(c.len() >= window_count(len, seq, Target::EveryPosition) - 1);
    }

    #[test]
    fn eval_windows_are_capped_and_spread() {
        assert_eq!(
            eval_starts(21, 4, Target::EveryPosition, 0),
            vec![0, 4, 8, 12, 16]
        );
        let capped = eval_starts(1000, 4, Target::NextToken, 10);
        assert_eq!(capped.len(), 10);
        assert!(capped.last().copied().unwrap() > 800);
        assert!(eval_starts(4, 4, Target::NextToken, 0).is_empty());
    }

    #[test]
    fn left_padding_keeps_at_least_one_token() {
        let ids: Vec<u32> = (5..100).collect();
        let mut b = Batch::default();
        b.fill(&ids, &[0, 10, 20, 30], 6, Target::NextToken);
        b.pad_left_randomly(1.0, &mut Rng::new(3));
        for row in b.tokens.chunks(6) {
            assert_ne!(row[5], PAD_ID);
            let pads = row.iter().take_while(|&&t| t == PAD_ID).count();
            assert!((1..6).contains(&pads));
        }
    }
}
