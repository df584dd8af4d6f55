//! Inverted dropout: training zeroes each element with probability `p` and scales survivors by
//! `1 / (1 − p)`, so inference is the identity and needs no rescaling.
//!
//! The mask is stored as the multiplier itself (0 or `1 / (1 − p)`), which makes backward one
//! multiply. Draws come from per-chunk generators seeded from one draw of the caller's `Rng`:
//! chunks then run in parallel and the mask is still the same for any thread count.

use rayon::prelude::*;
use textzoo_rt::Rng;

const CHUNK: usize = 8192;

/// `x ← x ⊙ mask` in place, filling `mask` with fresh draws.
pub fn forward(x: &mut [f32], mask: &mut [f32], p: f32, rng: &mut Rng) {
    let mask = &mut mask[..x.len()];
    let scale = 1.0 / (1.0 - p);
    let seed = ((rng.next_u32() as u64) << 32) | rng.next_u32() as u64;
    x.par_chunks_mut(CHUNK)
        .zip(mask.par_chunks_mut(CHUNK))
        .enumerate()
        .for_each(|(i, (x, mask))| {
            let mut rng = Rng::new(seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
            for (x, m) in x.iter_mut().zip(mask) {
                *m = if rng.next_f32() < p { 0.0 } else { scale };
                *x *= *m;
            }
        });
}

/// `d ← d ⊙ mask` in place: the gradient through the same mask (dropout's input gradient
/// simply replaces its output gradient, so no separate buffer is needed).
pub fn backward(d: &mut [f32], mask: &[f32]) {
    d.par_chunks_mut(CHUNK)
        .zip(mask.par_chunks(CHUNK))
        .for_each(|(d, m)| d.iter_mut().zip(m).for_each(|(d, m)| *d *= m));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::gradcheck::{check, seeded};

    #[test]
    fn keeps_expectation_and_rate() {
        let n = 100_000;
        let mut x = vec![1.0f32; n];
        let mut mask = vec![0.0; n];
        forward(&mut x, &mut mask, 0.25, &mut Rng::new(3));
        let zeros = x.iter().filter(|&&v| v == 0.0).count() as f32 / n as f32;
        let mean = x.iter().sum::<f32>() / n as f32;
        assert!((zeros - 0.25).abs() < 0.01, "{zeros}");
        assert!((mean - 1.0).abs() < 0.02, "{mean}");
    }

    #[test]
    fn same_seed_same_mask() {
        let draw = || {
            let mut x = vec![1.0f32; 20_000];
            let mut mask = vec![0.0; 20_000];
            forward(&mut x, &mut mask, 0.5, &mut Rng::new(9));
            mask
        };
        assert_eq!(draw(), draw());
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let x = seeded(30, 1);
        let probe = seeded(30, 2);
        let mut mask = vec![0.0; 30];
        let mut y = x.clone();
        forward(&mut y, &mut mask, 0.3, &mut Rng::new(5));
        let mut d = probe.clone();
        backward(&mut d, &mask);
        // The mask is fixed once drawn, so the loss is linear in x.
        check("dx", &x, &d, |v| {
            v.iter()
                .zip(&mask)
                .zip(&probe)
                .map(|((x, m), p)| (x * m * p) as f64)
                .sum()
        });
    }
}
