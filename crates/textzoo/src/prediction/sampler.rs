//! Choosing the next token from logits: greedy, or sampling with temperature, top-k and top-p,
//! after the repetition penalty and the n-gram bans.

use crate::config::{Prediction, Strategy};
use textzoo_rt::sample::{SampleConfig, TokenSampler};

/// The prediction settings bound to [`TokenSampler`], which the generated C twins exactly.
pub struct Sampler {
    inner: TokenSampler,
}

impl Sampler {
    pub fn new(settings: &Prediction, seed: u64) -> Self {
        Self {
            inner: TokenSampler::new(config(settings), seed),
        }
    }

    /// The next token. `<pad>` and `<unk>` are never chosen unless configured. Ignores the
    /// context controls (see [`Sampler::pick_in_context`]).
    pub fn pick(&mut self, logits: &[f32]) -> u32 {
        self.inner.pick(logits)
    }

    /// The next token after `context` (prompt and generated tokens), with
    /// `prediction.repetition_penalty` and `prediction.no_repeat_ngram_size` applied.
    pub fn pick_in_context(&mut self, logits: &[f32], context: &[u32]) -> u32 {
        self.inner.pick_in_context(logits, context)
    }
}

/// The runtime's view of `prediction.*` (the deployment writes the same values as C macros).
pub fn config(settings: &Prediction) -> SampleConfig {
    SampleConfig {
        greedy: settings.strategy == Strategy::Greedy,
        temperature: settings.temperature as f32,
        top_k: settings.top_k,
        top_p: settings.top_p as f32,
        allow_special: settings.allow_special_tokens,
        repetition_penalty: settings.repetition_penalty as f32,
        no_repeat_ngram_size: settings.no_repeat_ngram_size,
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
