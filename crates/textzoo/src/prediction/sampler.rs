//! Choosing the next token from logits: greedy, or sampling with temperature, top-k and top-p.

use crate::config::{Prediction, Strategy};
use crate::data::{PAD_ID, UNK_ID};
use textzoo_rt::Rng;

pub struct Sampler {
    strategy: Strategy,
    temperature: f32,
    top_k: usize,
    top_p: f32,
    allow_special: bool,
    rng: Rng,
}

impl Sampler {
    pub fn new(settings: &Prediction, seed: u64) -> Self {
        Self {
            strategy: settings.strategy,
            temperature: settings.temperature as f32,
            top_k: settings.top_k,
            top_p: settings.top_p as f32,
            allow_special: settings.allow_special_tokens,
            rng: Rng::new(seed),
        }
    }

    /// The next token. `<pad>` and `<unk>` are never chosen unless configured.
    pub fn pick(&mut self, logits: &[f32]) -> u32 {
        let mut candidates: Vec<(u32, f32)> = logits
            .iter()
            .enumerate()
            .map(|(i, &l)| (i as u32, l))
            .filter(|&(i, l)| l.is_finite() && (self.allow_special || (i != PAD_ID && i != UNK_ID)))
            .collect();
        if candidates.is_empty() {
            return UNK_ID;
        }
        // Highest first; ties keep the lower id first, so greedy is deterministic.
        candidates.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        if self.strategy == Strategy::Greedy {
            return candidates[0].0;
        }
        if self.top_k > 0 {
            candidates.truncate(self.top_k);
        }
        let max = candidates[0].1;
        let mut probs: Vec<f32> = candidates
            .iter()
            .map(|&(_, l)| ((l - max) / self.temperature).exp())
            .collect();
        let total: f32 = probs.iter().sum();
        probs.iter_mut().for_each(|p| *p /= total);
        let mut cumulative = 0.0;
        let mut keep = probs.len();
        for (i, &p) in probs.iter().enumerate() {
            cumulative += p;
            if cumulative >= self.top_p {
                keep = i + 1;
                break;
            }
        }
        let kept: f32 = probs[..keep].iter().sum();
        let mut r = self.rng.next_f32() * kept;
        for (i, &p) in probs[..keep].iter().enumerate() {
            if r < p {
                return candidates[i].0;
            }
            r -= p;
        }
        candidates[keep - 1].0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(strategy: Strategy, top_k: usize, top_p: f64) -> Prediction {
        Prediction {
            strategy,
            top_k,
            top_p,
            ..Prediction::default()
        }
    }

    #[test]
    fn greedy_takes_the_best_non_special_token() {
        let mut s = Sampler::new(&settings(Strategy::Greedy, 0, 1.0), 1);
        assert_eq!(s.pick(&[9.0, 8.0, 1.0, 3.0]), 3);
        let mut allow = Prediction {
            allow_special_tokens: true,
            ..settings(Strategy::Greedy, 0, 1.0)
        };
        allow.allow_special_tokens = true;
        assert_eq!(Sampler::new(&allow, 1).pick(&[9.0, 8.0, 1.0, 3.0]), 0);
    }

    #[test]
    fn sampling_is_repeatable_and_respects_top_k_and_top_p() {
        let logits = [0.0, 0.0, 2.0, 1.9, 1.8, -5.0];
        let draw = |k, p, seed| {
            let mut s = Sampler::new(&settings(Strategy::Sample, k, p), seed);
            (0..200).map(|_| s.pick(&logits)).collect::<Vec<_>>()
        };
        assert_eq!(draw(0, 1.0, 5), draw(0, 1.0, 5));
        assert_ne!(draw(0, 1.0, 5), draw(0, 1.0, 6));
        assert!(draw(1, 1.0, 5).iter().all(|&t| t == 2));
        assert!(draw(2, 1.0, 5).iter().all(|&t| t == 2 || t == 3));
        assert!(draw(0, 0.3, 5).iter().all(|&t| t == 2));
        assert!(draw(0, 1.0, 5).iter().all(|&t| t >= 2));
    }
}
