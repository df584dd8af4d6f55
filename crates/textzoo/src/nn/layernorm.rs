//! Layer normalisation over the feature axis: `y = (x − mean) · rstd · w + b`, eps 1e-5
//! (PyTorch's and Keras' default, so either reference converts without surprises).
//!
//! The forward pass keeps `mean` and `rstd` per row: backward then needs no second pass over
//! the statistics, and quantization calibration can read them.

use super::fastmath;
use crate::avx2_dispatch;
use rayon::prelude::*;

pub const EPS: f32 = 1e-5;

/// Normalises the `n` rows of `inp` (`[n, c]`) into `out`, saving each row's mean and
/// reciprocal standard deviation.
#[allow(clippy::too_many_arguments)]
pub fn forward(
    out: &mut [f32],
    mean: &mut [f32],
    rstd: &mut [f32],
    inp: &[f32],
    w: &[f32],
    b: &[f32],
    n: usize,
    c: usize,
) {
    out[..n * c]
        .par_chunks_mut(c)
        .zip(inp[..n * c].par_chunks(c))
        .zip(mean[..n].par_iter_mut().zip(rstd[..n].par_iter_mut()))
        .with_min_len(32)
        .for_each(|((y, x), (m, r))| (*m, *r) = forward_row(y, x, w, b));
}

avx2_dispatch! {
    fn forward_row(y: &mut [f32], x: &[f32], w: &[f32], b: &[f32]) -> (f32, f32) {
        let c = x.len() as f32;
        let mu = fastmath::sum(x) / c;
        let mut acc = [0.0f32; 8];
        let x8 = x.chunks_exact(8);
        let tail: f32 = x8.remainder().iter().map(|v| (v - mu) * (v - mu)).sum();
        for v in x8 {
            for k in 0..8 {
                acc[k] += (v[k] - mu) * (v[k] - mu);
            }
        }
        let var = (acc.iter().sum::<f32>() + tail) / c;
        let s = 1.0 / (var + EPS).sqrt();
        for (((y, x), w), b) in y.iter_mut().zip(x).zip(w).zip(b) {
            *y = (x - mu) * s * w + b;
        }
        (mu, s)
    }
}

/// Accumulates `dinp`, `dw` and `db` from `dout` (llm.c's formulation: with `x̂` the normalised
/// input and `g = dout ⊙ w`, `dx = rstd · (g − mean(g) − x̂ · mean(g ⊙ x̂))`).
///
/// Rows run in parallel for `dinp`; the parameter gradients are column sums done afterwards in
/// row order, so the result does not depend on how rayon split the rows.
#[allow(clippy::too_many_arguments)]
pub fn backward(
    dinp: &mut [f32],
    dw: &mut [f32],
    db: &mut [f32],
    dout: &[f32],
    inp: &[f32],
    w: &[f32],
    mean: &[f32],
    rstd: &[f32],
    n: usize,
    c: usize,
) {
    dinp[..n * c]
        .par_chunks_mut(c)
        .zip(dout[..n * c].par_chunks(c))
        .zip(inp[..n * c].par_chunks(c))
        .zip(mean[..n].par_iter().zip(rstd[..n].par_iter()))
        .with_min_len(32)
        .for_each(|(((dx, dy), x), (&mu, &s))| backward_row(dx, dy, x, w, mu, s));
    param_grads(dw, db, &dout[..n * c], &inp[..n * c], mean, rstd);
}

avx2_dispatch! {
    fn backward_row(dx: &mut [f32], dy: &[f32], x: &[f32], w: &[f32], mu: f32, s: f32) {
        let c = x.len() as f32;
        // g = dy ⊙ w; Σ g and Σ g ⊙ x̂ (= s · Σ g ⊙ (x − μ)) in SIMD lanes.
        let (mut g_acc, mut gx_acc) = ([0.0f32; 8], [0.0f32; 8]);
        let (mut g_tail, mut gx_tail) = (0.0f32, 0.0f32);
        let (dy8, x8, w8) = (dy.chunks_exact(8), x.chunks_exact(8), w.chunks_exact(8));
        for ((dy, x), w) in dy8.remainder().iter().zip(x8.remainder()).zip(w8.remainder()) {
            g_tail += dy * w;
            gx_tail += dy * w * (x - mu);
        }
        for ((dy, x), w) in dy8.zip(x8).zip(w8) {
            for k in 0..8 {
                let g = dy[k] * w[k];
                g_acc[k] += g;
                gx_acc[k] += g * (x[k] - mu);
            }
        }
        let g_mean = (g_acc.iter().sum::<f32>() + g_tail) / c;
        let gx_mean = (gx_acc.iter().sum::<f32>() + gx_tail) * s / c;
        for (((dx, dy), x), w) in dx.iter_mut().zip(dy).zip(x).zip(w) {
            let xhat = (x - mu) * s;
            *dx += s * (dy * w - g_mean - xhat * gx_mean);
        }
    }
}

avx2_dispatch! {
    fn param_grads(dw: &mut [f32], db: &mut [f32], dout: &[f32], inp: &[f32], mean: &[f32], rstd: &[f32]) {
        let c = dw.len();
        for ((dy, x), (&mu, &s)) in dout.chunks_exact(c).zip(inp.chunks_exact(c)).zip(mean.iter().zip(rstd)) {
            for (((dw, db), dy), x) in dw.iter_mut().zip(db.iter_mut()).zip(dy).zip(x) {
                *dw += dy * (x - mu) * s;
                *db += dy;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::gradcheck::{check, seeded};

    #[test]
    fn normalised_rows_have_zero_mean_unit_variance() {
        let (n, c) = (3, 16);
        let x: Vec<f32> = seeded(n * c, 1).iter().map(|v| v * 5.0 + 2.0).collect();
        let (mut y, mut m, mut r) = (vec![0.0; n * c], vec![0.0; n], vec![0.0; n]);
        forward(&mut y, &mut m, &mut r, &x, &[1.0; 16], &[0.0; 16], n, c);
        for row in y.chunks(c) {
            let mu: f32 = row.iter().sum::<f32>() / c as f32;
            let var: f32 = row.iter().map(|v| v * v).sum::<f32>() / c as f32;
            assert!(mu.abs() < 1e-5 && (var - 1.0).abs() < 1e-3, "{mu} {var}");
        }
    }

    #[test]
    fn gradients_match_finite_differences() {
        let (n, c) = (3, 6);
        let x = seeded(n * c, 2);
        let w: Vec<f32> = seeded(c, 3).iter().map(|v| v + 1.0).collect();
        let b = seeded(c, 4);
        let probe = seeded(n * c, 5);
        let loss = |x: &[f32], w: &[f32], b: &[f32]| {
            let (mut y, mut m, mut r) = (vec![0.0; n * c], vec![0.0; n], vec![0.0; n]);
            forward(&mut y, &mut m, &mut r, x, w, b, n, c);
            y.iter()
                .zip(&probe)
                .map(|(a, p)| (a * p) as f64)
                .sum::<f64>()
        };
        let (mut y, mut m, mut r) = (vec![0.0; n * c], vec![0.0; n], vec![0.0; n]);
        forward(&mut y, &mut m, &mut r, &x, &w, &b, n, c);
        let (mut dx, mut dw, mut db) = (vec![0.0; n * c], vec![0.0; c], vec![0.0; c]);
        backward(&mut dx, &mut dw, &mut db, &probe, &x, &w, &m, &r, n, c);
        check("dx", &x, &dx, |v| loss(v, &w, &b));
        check("dw", &w, &dw, |v| loss(&x, v, &b));
        check("db", &b, &db, |v| loss(&x, &w, v));
    }
}
