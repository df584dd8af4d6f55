//! GELU, tanh approximation: `0.5 · x · (1 + tanh(√(2/π) · (x + 0.044715 · x³)))`.
//!
//! The tanh form is GPT-2's and Keras' `approximate=True`; it differs from the erf form by less
//! than 1e-3, far below int8 resolution, and the integer runtime tabulates exactly this curve.

use super::fastmath;
use crate::avx2_dispatch;
use rayon::prelude::*;

const SQRT_2_OVER_PI: f32 = 0.797_884_6;
const COEFF: f32 = 0.044_715;
/// Elements per parallel task: large enough to amortise rayon, small enough to split the
/// `[batch·seq, ffn]` activations of the reference model over a few dozen tasks.
const CHUNK: usize = 8192;

/// `tanh(u)` through one vectorisable `exp`, saturating cleanly to ±1.
#[inline(always)]
fn tanh(u: f32) -> f32 {
    1.0 - 2.0 / (fastmath::exp(2.0 * u) + 1.0)
}

#[inline(always)]
pub fn gelu(x: f32) -> f32 {
    let u = SQRT_2_OVER_PI * (x + COEFF * x * x * x);
    0.5 * x * (1.0 + tanh(u))
}

pub fn forward(out: &mut [f32], inp: &[f32]) {
    out.par_chunks_mut(CHUNK)
        .zip(inp.par_chunks(CHUNK))
        .for_each(|(y, x)| forward_chunk(y, x));
}

/// `d ← d ⊙ gelu'(inp)` in place: the input gradient replaces the output gradient, as in
/// dropout, so backward needs no second `[rows, ffn]` buffer.
pub fn backward(d: &mut [f32], inp: &[f32]) {
    let d = &mut d[..inp.len()];
    d.par_chunks_mut(CHUNK)
        .zip(inp.par_chunks(CHUNK))
        .for_each(|(d, x)| backward_chunk(d, x));
}

avx2_dispatch! {
    fn forward_chunk(y: &mut [f32], x: &[f32]) {
        y.iter_mut().zip(x).for_each(|(y, &x)| *y = gelu(x));
    }
}

avx2_dispatch! {
    fn backward_chunk(d: &mut [f32], x: &[f32]) {
        for (d, &x) in d.iter_mut().zip(x) {
            let u = SQRT_2_OVER_PI * (x + COEFF * x * x * x);
            let t = tanh(u);
            let du = SQRT_2_OVER_PI * (1.0 + 3.0 * COEFF * x * x);
            *d *= 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * du;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::gradcheck::{check, seeded};

    #[test]
    fn known_values() {
        assert_eq!(gelu(0.0), 0.0);
        assert!((gelu(1.0) - 0.841_192).abs() < 1e-5);
        assert!((gelu(-3.0) + 0.003_637).abs() < 1e-5);
        assert_eq!(gelu(100.0), 100.0);
        assert_eq!(gelu(-100.0), -0.0);
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let x: Vec<f32> = seeded(40, 1).iter().map(|v| v * 4.0).collect();
        let probe = seeded(40, 2);
        let mut dx = probe.clone();
        backward(&mut dx, &x);
        check("dx", &x, &dx, |v| {
            let mut y = vec![0.0; v.len()];
            forward(&mut y, v);
            y.iter()
                .zip(&probe)
                .map(|(a, p)| (a * p) as f64)
                .sum::<f64>()
        });
    }
}
