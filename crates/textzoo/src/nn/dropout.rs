//! Inverted dropout: training zeroes each element with probability `p` and scales survivors by
//! `1 / (1 − p)`, so inference is the identity and needs no rescaling.
//!
//! The mask is stored as the multiplier itself (0 or `1 / (1 − p)`), which makes backward one
//! multiply. Element `i` is dropped when a hash of `(seed, i)` falls below `p · 2³²`, with the
//! seed one draw of the caller's `Rng`: a counter-based generator, so chunks run in parallel
//! and in SIMD lanes and the mask is the same for any thread count. (A sequential PCG stream
//! per element cost more than the matrix product that feeds the dropout.)

use crate::avx2_dispatch;
use rayon::prelude::*;
use textzoo_rt::Rng;

const CHUNK: usize = 8192;

/// `x ← x ⊙ mask` in place, filling `mask` with fresh draws. `p` is in [0, 1).
pub fn forward(x: &mut [f32], mask: &mut [f32], p: f32, rng: &mut Rng) {
    let mask = &mut mask[..x.len()];
    let draw = Draw {
        seed: [rng.next_u32(), rng.next_u32()],
        threshold: (p as f64 * 4_294_967_296.0) as u32,
        scale: 1.0 / (1.0 - p),
    };
    x.par_chunks_mut(CHUNK)
        .zip(mask.par_chunks_mut(CHUNK))
        .enumerate()
        .for_each(|(i, (x, mask))| forward_chunk(x, mask, (i * CHUNK) as u32, draw));
}

#[derive(Clone, Copy)]
struct Draw {
    seed: [u32; 2],
    threshold: u32,
    scale: f32,
}

avx2_dispatch! {
    fn forward_chunk(x: &mut [f32], mask: &mut [f32], first: u32, d: Draw) {
        for (k, (x, m)) in x.iter_mut().zip(mask).enumerate() {
            let h = fmix32(fmix32(first.wrapping_add(k as u32) ^ d.seed[0]) ^ d.seed[1]);
            *m = if h < d.threshold { 0.0 } else { d.scale };
            *x *= *m;
        }
    }
}

/// MurmurHash3's finaliser: a bijection of `u32` whose every output bit depends on every
/// input bit, so consecutive indices give independent-looking draws.
#[inline(always)]
fn fmix32(mut h: u32) -> u32 {
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
}

/// `d ← d ⊙ mask` in place: the gradient through the same mask (dropout's input gradient
/// simply replaces its output gradient, so no separate buffer is needed).
pub fn backward(d: &mut [f32], mask: &[f32]) {
    d.par_chunks_mut(CHUNK)
        .zip(mask.par_chunks(CHUNK))
        .for_each(|(d, m)| backward_chunk(d, m));
}

avx2_dispatch! {
    fn backward_chunk(d: &mut [f32], mask: &[f32]) {
        d.iter_mut().zip(mask).for_each(|(d, m)| *d *= m);
    }
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
    fn neighbouring_elements_are_independent() {
        // Pairs (i, i+1) both kept should occur at (1 − p)², as for independent draws.
        let n = 200_000;
        let mut x = vec![1.0f32; n];
        let mut mask = vec![0.0; n];
        forward(&mut x, &mut mask, 0.5, &mut Rng::new(4));
        let both = mask.windows(2).filter(|w| w[0] > 0.0 && w[1] > 0.0).count();
        let rate = both as f32 / (n - 1) as f32;
        assert!((rate - 0.25).abs() < 0.01, "{rate}");
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
