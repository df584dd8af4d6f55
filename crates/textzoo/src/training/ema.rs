//! An exponential moving average of the weights (Polyak averaging, Keras' `use_ema`), which
//! validation, the best model and the saved model use instead of the live weights.
//!
//! Why: at the step counts a few minutes buy, the live weights still jitter by a learning
//! rate's worth of noise from step to step; their average sits closer to the bottom of the
//! valley. The decay warms up as `min(decay, (1 + t) / (10 + t))` (TensorFlow's
//! `ExponentialMovingAverage` with `num_updates`), so the first steps do not drag the average
//! towards the random initialisation.

use crate::avx2_dispatch;
use crate::nn::ParamStore;
use rayon::prelude::*;

const CHUNK: usize = 1 << 15;

#[derive(Debug, Clone, PartialEq)]
pub struct Ema {
    decay: f32,
    /// The averaged weights, in the parameter store's layout.
    pub weights: Vec<f32>,
}

impl Ema {
    /// Starts the average at the current weights (or at a checkpoint's average when resuming).
    pub fn new(decay: f32, weights: Vec<f32>) -> Self {
        Ema { decay, weights }
    }

    /// Folds in the weights after update number `step` (1-based).
    pub fn update(&mut self, params: &[f32], step: u64) {
        let warm = (1.0 + step as f32) / (10.0 + step as f32);
        let d = self.decay.min(warm);
        self.weights
            .par_chunks_mut(CHUNK)
            .zip(params.par_chunks(CHUNK))
            .for_each(|(e, p)| blend(e, p, d));
    }

    /// Exchanges the averaged and the live weights (buffers swapped, nothing copied): once to
    /// lend the average to `params`, again to take it back.
    pub fn swap(&mut self, params: &mut ParamStore) {
        std::mem::swap(&mut params.data, &mut self.weights);
    }
}

avx2_dispatch! {
    /// `e ← d · e + (1 − d) · p`.
    fn blend(e: &mut [f32], p: &[f32], d: f32) {
        for (e, p) in e.iter_mut().zip(p) {
            *e = d * *e + (1.0 - d) * p;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_average_follows_the_formula_with_warm_up() {
        let mut ema = Ema::new(0.99, vec![0.0; 3]);
        ema.update(&[1.0, 2.0, -4.0], 1);
        // Step 1 uses min(0.99, 2 / 11).
        let d = 2.0f32 / 11.0;
        for (got, p) in ema.weights.iter().zip([1.0f32, 2.0, -4.0]) {
            assert!((got - (1.0 - d) * p).abs() < 1e-6, "{got}");
        }
        let mut late = Ema::new(0.9, vec![1.0; 40_000]);
        late.update(&vec![3.0; 40_000], 1_000_000);
        assert!(late.weights.iter().all(|&w| (w - 1.2).abs() < 1e-5));
    }

    #[test]
    fn swap_lends_the_average_and_restores_the_live_weights() {
        let mut ps = ParamStore::default();
        let w = ps.add("w", &[2], true);
        ps.get_mut(w).copy_from_slice(&[1.0, 2.0]);
        let mut ema = Ema::new(0.5, vec![7.0, 8.0]);
        ema.swap(&mut ps);
        assert_eq!(ps.get(w), &[7.0, 8.0]);
        ema.swap(&mut ps);
        assert_eq!(
            (ps.get(w), ema.weights.as_slice()),
            (&[1.0, 2.0][..], &[7.0, 8.0][..])
        );
    }
}
