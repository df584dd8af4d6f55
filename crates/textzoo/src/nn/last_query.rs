//! Attention of one query per sequence over all its positions, with the key and value
//! projections folded into the query side: the last block of `tiny_bert_generator`, where only
//! the last position asks.
//!
//! For head `h` with query `q` (its `d` channels) and the layer-normed rows `y_t`:
//! `q · (W_k y_t + b_k) = (W_kᵀ q) · y_t + q · b_k`, and
//! `Σ_t p_t (W_v y_t + b_v) = W_v (Σ_t p_t y_t) + b_v`. So the keys and values of every
//! position are never formed: two `C`-vectors per sequence and head, `u = W_kᵀ q` and
//! `z = Σ_t p_t y_t`, take the place of the `[seq, 2C]` keys and values, and the
//! `[batch·seq, C] × [C, 2C]` projection with its two backward products (about an eighth of
//! the reference step's multiply-adds) becomes work on `batch` rows. `q · b_k` shifts all of a
//! row's scores alike, which softmax ignores, so it is left out; its true gradient is zero, and
//! the key bias gets none.

use super::attention::{score_grad, softmax};
use super::matmul::strided_gemm;
use crate::avx2_dispatch;
use rayon::prelude::*;

/// Shapes: `batch` sequences of `seq` rows, `heads × head_dim` channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dims {
    pub batch: usize,
    pub seq: usize,
    pub heads: usize,
    pub head_dim: usize,
}

impl Dims {
    fn channels(&self) -> usize {
        self.heads * self.head_dim
    }

    fn scale(&self) -> f32 {
        1.0 / (self.head_dim as f32).sqrt()
    }
}

/// What forward reads: the queries `q[batch, C]`, the rows `y[batch·seq, C]` keys and values
/// would be projected from, and the key and value weights `[C, C]` (rows = output channels,
/// heads side by side) with the value bias.
#[derive(Clone, Copy)]
pub struct Inputs<'a> {
    pub q: &'a [f32],
    pub y: &'a [f32],
    pub wk: &'a [f32],
    pub wv: &'a [f32],
    pub bv: &'a [f32],
}

/// What forward keeps for backward: `u[batch, heads, C]`, `probs[batch, heads, seq]` and
/// `z[batch, heads, C]`, written by [`forward`]…
pub struct Saved<'a> {
    pub u: &'a mut [f32],
    pub probs: &'a mut [f32],
    pub z: &'a mut [f32],
}

/// …and read by [`backward`].
pub struct Kept<'a> {
    pub u: &'a [f32],
    pub probs: &'a [f32],
    pub z: &'a [f32],
}

/// Writes `att[batch, C]` (heads side by side) and fills `saved`.
pub fn forward(x: Inputs<'_>, saved: Saved<'_>, att: &mut [f32], d: &Dims) {
    let (b, t, hs, dh, c) = (d.batch, d.seq, d.heads, d.head_dim, d.channels());
    let Saved { u, probs, z } = saved;
    for h in 0..hs {
        // u[·, h, :] = q[·, h] · W_k[h]
        let q_h = (&x.q[h * dh..], (c, 1));
        let wk_h = (&x.wk[h * dh * c..], (c, 1));
        strided_gemm(b, dh, c, q_h, wk_h, (&mut u[h * c..], (hs * c, 1)), 0.0);
    }
    let scale = d.scale();
    probs[..b * hs * t]
        .par_chunks_mut(hs * t)
        .zip(z[..b * hs * c].par_chunks_mut(hs * c))
        .zip(u[..b * hs * c].par_chunks(hs * c))
        .zip(x.y[..b * t * c].par_chunks(t * c))
        .for_each(|(((p, z), u), y)| {
            strided_gemm(hs, c, t, (u, (c, 1)), (y, (1, c)), (&mut *p, (t, 1)), 0.0);
            softmax_rows(p, t, scale);
            strided_gemm(hs, t, c, (p, (t, 1)), (y, (c, 1)), (z, (c, 1)), 0.0);
        });
    for h in 0..hs {
        // att[·, h] = z[·, h, :] · W_v[h]ᵀ
        let z_h = (&z[h * c..], (hs * c, 1));
        let wv_h = (&x.wv[h * dh * c..], (1, c));
        strided_gemm(b, c, dh, z_h, wv_h, (&mut att[h * dh..], (c, 1)), 0.0);
    }
    for row in att[..b * c].chunks_exact_mut(c) {
        row.iter_mut().zip(x.bv).for_each(|(a, bias)| *a += bias);
    }
}

/// Gradients: `dq[batch, C]` and `dy[batch·seq, C]` are written whole; `dwk`, `dwv`, `dbv`
/// are accumulated into.
pub struct Outputs<'a> {
    pub dq: &'a mut [f32],
    pub dy: &'a mut [f32],
    pub dwk: &'a mut [f32],
    pub dwv: &'a mut [f32],
    pub dbv: &'a mut [f32],
}

/// Work space: `dz` and `du` of `batch · heads · C` floats, `ds` of `batch · heads · seq`.
pub struct Scratch<'a> {
    pub dz: &'a mut [f32],
    pub du: &'a mut [f32],
    pub ds: &'a mut [f32],
}

/// Backward of [`forward`] from `datt[batch, C]`. With `dp = dz · yᵀ`, the score gradient is
/// `ds = p ⊙ (dp − Σ p ⊙ dp) / √d`; `y` receives `pᵀ · dz + dsᵀ · u`.
pub fn backward(
    datt: &[f32],
    x: Inputs<'_>,
    kept: Kept<'_>,
    g: Outputs<'_>,
    s: Scratch<'_>,
    d: &Dims,
) {
    let (b, t, hs, dh, c) = (d.batch, d.seq, d.heads, d.head_dim, d.channels());
    let Kept { u, probs, z } = kept;
    for row in datt[..b * c].chunks_exact(c) {
        g.dbv.iter_mut().zip(row).for_each(|(db, g)| *db += g);
    }
    for h in 0..hs {
        let datt_h = &datt[h * dh..];
        // dW_v[h] += datt[·, h]ᵀ · z[·, h, :];  dz[·, h, :] = datt[·, h] · W_v[h]
        let z_h = (&z[h * c..], (hs * c, 1));
        strided_gemm(
            dh,
            b,
            c,
            (datt_h, (1, c)),
            z_h,
            (&mut g.dwv[h * dh * c..], (c, 1)),
            1.0,
        );
        let wv_h = (&x.wv[h * dh * c..], (c, 1));
        strided_gemm(
            b,
            dh,
            c,
            (datt_h, (c, 1)),
            wv_h,
            (&mut s.dz[h * c..], (hs * c, 1)),
            0.0,
        );
    }
    let scale = d.scale();
    s.ds[..b * hs * t]
        .par_chunks_mut(hs * t)
        .zip(s.du[..b * hs * c].par_chunks_mut(hs * c))
        .zip(g.dy[..b * t * c].par_chunks_mut(t * c))
        .zip(s.dz[..b * hs * c].par_chunks(hs * c))
        .zip(probs[..b * hs * t].par_chunks(hs * t))
        .zip(u[..b * hs * c].par_chunks(hs * c))
        .zip(x.y[..b * t * c].par_chunks(t * c))
        .for_each(|((((((ds, du), dy), dz), p), u), y)| {
            strided_gemm(hs, c, t, (dz, (c, 1)), (y, (1, c)), (&mut *ds, (t, 1)), 0.0);
            score_grad(ds, p, t, scale);
            strided_gemm(t, hs, c, (p, (1, t)), (dz, (c, 1)), (&mut *dy, (c, 1)), 0.0);
            strided_gemm(t, hs, c, (&*ds, (1, t)), (u, (c, 1)), (dy, (c, 1)), 1.0);
            strided_gemm(hs, t, c, (&*ds, (t, 1)), (y, (c, 1)), (du, (c, 1)), 0.0);
        });
    for h in 0..hs {
        // dq[·, h] = du[·, h, :] · W_k[h]ᵀ;  dW_k[h] += q[·, h]ᵀ · du[·, h, :]
        let du_h = (&s.du[h * c..], (hs * c, 1));
        let wk_h = (&x.wk[h * dh * c..], (1, c));
        strided_gemm(b, c, dh, du_h, wk_h, (&mut g.dq[h * dh..], (c, 1)), 0.0);
        let q_h = (&x.q[h * dh..], (1, c));
        strided_gemm(dh, b, c, q_h, du_h, (&mut g.dwk[h * dh * c..], (c, 1)), 1.0);
    }
}

avx2_dispatch! {
    /// Softmax of each row of `seq` scores, scaled by `scale` first.
    fn softmax_rows(scores: &mut [f32], seq: usize, scale: f32) {
        for row in scores.chunks_exact_mut(seq) {
            row.iter_mut().for_each(|x| *x *= scale);
            softmax(row);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::attention::{self, Layout};
    use crate::nn::gradcheck::{check, seeded};

    const D: Dims = Dims {
        batch: 2,
        seq: 5,
        heads: 2,
        head_dim: 3,
    };
    const C: usize = 6;

    /// `x[r] · wᵀ + bias` for every row, the plain way.
    fn project(x: &[f32], w: &[f32], bias: &[f32]) -> Vec<f32> {
        x.chunks(C)
            .flat_map(|row| {
                w.chunks(C)
                    .zip(bias)
                    .map(move |(wr, b)| b + row.iter().zip(wr).map(|(a, w)| a * w).sum::<f32>())
            })
            .collect()
    }

    struct Case {
        q: Vec<f32>,
        y: Vec<f32>,
        wk: Vec<f32>,
        wv: Vec<f32>,
        bv: Vec<f32>,
    }

    impl Case {
        fn new() -> Self {
            Case {
                q: seeded(D.batch * C, 1),
                y: seeded(D.batch * D.seq * C, 2),
                wk: seeded(C * C, 3),
                wv: seeded(C * C, 4),
                bv: seeded(C, 5),
            }
        }

        fn inputs(&self) -> Inputs<'_> {
            Inputs {
                q: &self.q,
                y: &self.y,
                wk: &self.wk,
                wv: &self.wv,
                bv: &self.bv,
            }
        }
    }

    /// `att` and what forward keeps, from fresh buffers.
    fn run(x: Inputs<'_>) -> [Vec<f32>; 4] {
        let (b, h) = (D.batch, D.heads);
        let mut u = vec![0.0; b * h * C];
        let mut probs = vec![0.0; b * h * D.seq];
        let mut z = vec![0.0; b * h * C];
        let mut att = vec![0.0; b * C];
        let saved = Saved {
            u: &mut u,
            probs: &mut probs,
            z: &mut z,
        };
        forward(x, saved, &mut att, &D);
        [att, u, probs, z]
    }

    /// The output equals ordinary attention of the last row over keys and values projected for
    /// every position, key bias included (softmax does not see it).
    #[test]
    fn matches_attention_over_projected_keys_and_values() {
        let case = Case::new();
        let bk = seeded(C, 6);
        let k = project(&case.y, &case.wk, &bk);
        let v = project(&case.y, &case.wv, &case.bv);
        let mut qkv = Vec::new();
        for r in 0..D.batch * D.seq {
            // Only the last row's query matters; the others are arbitrary.
            let q = if r % D.seq == D.seq - 1 {
                case.q[r / D.seq * C..][..C].to_vec()
            } else {
                seeded(C, 10 + r as u64)
            };
            qkv.extend(q);
            qkv.extend_from_slice(&k[r * C..][..C]);
            qkv.extend_from_slice(&v[r * C..][..C]);
        }
        let l = Layout::packed(D.batch, D.seq, C, D.heads, false);
        let mut want = vec![0.0; D.batch * D.seq * C];
        let mut probs = vec![0.0; D.batch * D.heads * D.seq * D.seq];
        attention::forward(&mut want, &mut probs, &qkv, &qkv, &l);
        let [att, ..] = run(case.inputs());
        for s in 0..D.batch {
            let last = &want[(s * D.seq + D.seq - 1) * C..][..C];
            for (got, want) in att[s * C..][..C].iter().zip(last) {
                assert!((got - want).abs() < 1e-5, "{got} vs {want}");
            }
        }
    }

    #[test]
    fn gradients_match_finite_differences() {
        let case = Case::new();
        let probe = seeded(D.batch * C, 7);
        let loss = |x: Inputs<'_>| -> f64 {
            let [att, ..] = run(x);
            att.iter().zip(&probe).map(|(a, p)| (a * p) as f64).sum()
        };
        let [_, u, probs, z] = run(case.inputs());
        let (b, h) = (D.batch, D.heads);
        let mut dq = vec![0.0; b * C];
        let mut dy = vec![0.0; b * D.seq * C];
        // Accumulated into: start from something other than zero.
        let (mut dwk, mut dwv, mut dbv) = (vec![1.0; C * C], vec![1.0; C * C], vec![1.0; C]);
        let (mut dz, mut du, mut ds) = (
            vec![0.0; b * h * C],
            vec![0.0; b * h * C],
            vec![0.0; b * h * D.seq],
        );
        let kept = Kept {
            u: &u,
            probs: &probs,
            z: &z,
        };
        let outputs = Outputs {
            dq: &mut dq,
            dy: &mut dy,
            dwk: &mut dwk,
            dwv: &mut dwv,
            dbv: &mut dbv,
        };
        let scratch = Scratch {
            dz: &mut dz,
            du: &mut du,
            ds: &mut ds,
        };
        backward(&probe, case.inputs(), kept, outputs, scratch, &D);
        let minus_one = |g: &[f32]| g.iter().map(|g| g - 1.0).collect::<Vec<_>>();
        let x = case.inputs();
        check("dq", x.q, &dq, |v| loss(Inputs { q: v, ..x }));
        check("dy", x.y, &dy, |v| loss(Inputs { y: v, ..x }));
        check("dwk", x.wk, &minus_one(&dwk), |v| {
            loss(Inputs { wk: v, ..x })
        });
        check("dwv", x.wv, &minus_one(&dwv), |v| {
            loss(Inputs { wv: v, ..x })
        });
        check("dbv", x.bv, &minus_one(&dbv), |v| {
            loss(Inputs { bv: v, ..x })
        });
    }
}
