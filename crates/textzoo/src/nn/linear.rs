//! Fully connected layer `y = x · Wᵀ + b` with `W` stored `[out, in]`: one row per output
//! channel, the layout per-channel int8 quantization and the generated C read directly.

use super::matmul::{gemm, Op};

/// `out[n, out_dim] = inp[n, in_dim] · wᵀ + b`.
pub fn forward(
    out: &mut [f32],
    inp: &[f32],
    w: &[f32],
    b: Option<&[f32]>,
    n: usize,
    in_dim: usize,
    out_dim: usize,
) {
    gemm(n, in_dim, out_dim, inp, Op::N, w, Op::T, out, false);
    if let Some(b) = b {
        for row in out[..n * out_dim].chunks_exact_mut(out_dim) {
            row.iter_mut().zip(b).for_each(|(y, b)| *y += b);
        }
    }
}

/// Accumulates `dinp += dout · w`, `dw += doutᵀ · inp`, `db += Σ dout`.
#[allow(clippy::too_many_arguments)]
pub fn backward(
    dinp: Option<&mut [f32]>,
    dw: &mut [f32],
    db: Option<&mut [f32]>,
    dout: &[f32],
    inp: &[f32],
    w: &[f32],
    n: usize,
    in_dim: usize,
    out_dim: usize,
) {
    if let Some(dinp) = dinp {
        gemm(n, out_dim, in_dim, dout, Op::N, w, Op::N, dinp, true);
    }
    gemm(out_dim, n, in_dim, dout, Op::T, inp, Op::N, dw, true);
    if let Some(db) = db {
        for row in dout[..n * out_dim].chunks_exact(out_dim) {
            db.iter_mut().zip(row).for_each(|(d, g)| *d += g);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::gradcheck::{check, seeded};

    #[test]
    fn gradients_match_finite_differences() {
        let (n, i, o) = (3, 4, 5);
        let x = seeded(n * i, 1);
        let w = seeded(o * i, 2);
        let b = seeded(o, 3);
        let probe = seeded(n * o, 4);
        // loss = Σ probe ⊙ y, so dL/dy = probe.
        let loss = |x: &[f32], w: &[f32], b: &[f32]| {
            let mut y = vec![0.0; n * o];
            forward(&mut y, x, w, Some(b), n, i, o);
            y.iter()
                .zip(&probe)
                .map(|(a, p)| (a * p) as f64)
                .sum::<f64>()
        };
        let (mut dx, mut dw, mut db) = (vec![0.0; n * i], vec![0.0; o * i], vec![0.0; o]);
        backward(
            Some(&mut dx),
            &mut dw,
            Some(&mut db),
            &probe,
            &x,
            &w,
            n,
            i,
            o,
        );
        check("dx", &x, &dx, |v| loss(v, &w, &b));
        check("dw", &w, &dw, |v| loss(&x, v, &b));
        check("db", &b, &db, |v| loss(&x, &w, v));
    }
}
