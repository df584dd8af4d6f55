//! Multi-head scaled dot-product attention, `softmax(q·kᵀ / √d) · v` per head, with or
//! without a causal mask. The softmax probabilities are kept for backward.
//!
//! Queries, keys and values are read in place from the projection's output: the packed
//! `[batch, t, 3C]` of a full block (`Layout::packed`), or separate `q` and `kv` buffers when
//! only the last positions query (the last block of `tiny_bert_generator`). Sequences run in
//! parallel: one batch element owns its rows of every buffer, so the split needs no unsafe
//! code, and even the batch-1 decoding case is too small to gain from splitting heads.
//!
//! At these sizes (t ≤ 64, head size ≈ 32) explicit loops over rows beat per-head GEMM calls,
//! whose packing would cost as much as the products themselves.

use super::fastmath::{self, dot};
use crate::avx2_dispatch;
use rayon::prelude::*;

/// Shapes, mask and where Q, K and V sit in their buffers. Row `r` of a sequence holds head
/// `h` of Q at `r · q_stride + q_offset + h · head_dim` (K and V likewise in the `kv` buffer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    pub batch: usize,
    pub heads: usize,
    pub head_dim: usize,
    /// Query rows per sequence: they are the *last* `tq` of the `tk` key positions.
    pub tq: usize,
    pub tk: usize,
    pub causal: bool,
    pub q_stride: usize,
    pub q_offset: usize,
    pub kv_stride: usize,
    pub k_offset: usize,
    pub v_offset: usize,
}

impl Layout {
    /// Self-attention over one packed `[batch, t, 3c]` buffer laid out `[q | k | v]`.
    pub fn packed(batch: usize, t: usize, c: usize, heads: usize, causal: bool) -> Self {
        Layout {
            batch,
            heads,
            head_dim: c / heads,
            tq: t,
            tk: t,
            causal,
            q_stride: 3 * c,
            q_offset: 0,
            kv_stride: 3 * c,
            k_offset: c,
            v_offset: 2 * c,
        }
    }

    #[inline(always)]
    fn channels(&self) -> usize {
        self.heads * self.head_dim
    }

    /// Keys visible to query row `i`: all of them, or those up to its own position.
    #[inline(always)]
    fn visible(&self, i: usize) -> usize {
        if self.causal {
            i + self.tk - self.tq + 1
        } else {
            self.tk
        }
    }

    fn q_len(&self) -> usize {
        self.tq * self.q_stride
    }

    fn kv_len(&self) -> usize {
        self.tk * self.kv_stride
    }

    fn probs_len(&self) -> usize {
        self.heads * self.tq * self.tk
    }
}

/// Writes `out` (`[batch, tq, C]`, heads side by side) and `probs` (`[batch, heads, tq, tk]`,
/// zero where masked). `q` and `kv` may be the same buffer.
pub fn forward(out: &mut [f32], probs: &mut [f32], q: &[f32], kv: &[f32], l: &Layout) {
    let b = l.batch;
    out[..b * l.tq * l.channels()]
        .par_chunks_mut(l.tq * l.channels())
        .zip(probs[..b * l.probs_len()].par_chunks_mut(l.probs_len()))
        .zip(q[..b * l.q_len()].par_chunks(l.q_len()))
        .zip(kv[..b * l.kv_len()].par_chunks(l.kv_len()))
        .for_each(|(((out, probs), q), kv)| forward_seq(out, probs, q, kv, l));
}

avx2_dispatch! {
    /// One sequence, all heads.
    fn forward_seq(out: &mut [f32], probs: &mut [f32], q: &[f32], kv: &[f32], l: &Layout) {
        let (c, hd) = (l.channels(), l.head_dim);
        let scale = 1.0 / (hd as f32).sqrt();
        for h in 0..l.heads {
            for i in 0..l.tq {
                let qi = &q[i * l.q_stride + l.q_offset + h * hd..][..hd];
                let p = &mut probs[(h * l.tq + i) * l.tk..][..l.tk];
                let seen = l.visible(i);
                let mut max = f32::NEG_INFINITY;
                for (j, pj) in p[..seen].iter_mut().enumerate() {
                    let kj = &kv[j * l.kv_stride + l.k_offset + h * hd..][..hd];
                    *pj = dot(qi, kj) * scale;
                    max = max.max(*pj);
                }
                let mut sum = 0.0;
                for pj in &mut p[..seen] {
                    *pj = fastmath::exp(*pj - max);
                    sum += *pj;
                }
                let inv = 1.0 / sum;
                p[..seen].iter_mut().for_each(|pj| *pj *= inv);
                p[seen..].fill(0.0);
                let o = &mut out[i * c + h * hd..][..hd];
                o.fill(0.0);
                for (j, &pj) in p[..seen].iter().enumerate() {
                    axpy(pj, &kv[j * l.kv_stride + l.v_offset + h * hd..][..hd], o);
                }
            }
        }
    }
}

/// Gradient buffers matching the forward inputs: one packed `dqkv`, or `dq` and `dkv`.
pub enum Grads<'a> {
    Packed(&'a mut [f32]),
    Split {
        dq: &'a mut [f32],
        dkv: &'a mut [f32],
    },
}

/// One sequence's rows of the gradient buffers.
enum Rows<'a> {
    Packed(&'a mut [f32]),
    Split(&'a mut [f32], &'a mut [f32]),
}

impl Rows<'_> {
    #[inline(always)]
    fn q(&mut self) -> &mut [f32] {
        match self {
            Rows::Packed(g) | Rows::Split(g, _) => g,
        }
    }

    #[inline(always)]
    fn kv(&mut self) -> &mut [f32] {
        match self {
            Rows::Packed(g) | Rows::Split(_, g) => g,
        }
    }
}

/// Accumulates the gradients of Q, K and V from `dout`. `scratch` holds `batch · tk` floats.
///
/// With `p` a softmax row and `dp = dout · vᵀ`, the score gradient is
/// `ds = p ⊙ (dp − Σ p ⊙ dp)`; then `dq = ds · k / √d`, `dk = dsᵀ · q / √d`, `dv = pᵀ · dout`.
pub fn backward(
    grads: Grads<'_>,
    dout: &[f32],
    q: &[f32],
    kv: &[f32],
    probs: &[f32],
    scratch: &mut [f32],
    l: &Layout,
) {
    let (b, c) = (l.batch, l.channels());
    let inputs = dout[..b * l.tq * c]
        .par_chunks(l.tq * c)
        .zip(q[..b * l.q_len()].par_chunks(l.q_len()))
        .zip(kv[..b * l.kv_len()].par_chunks(l.kv_len()))
        .zip(probs[..b * l.probs_len()].par_chunks(l.probs_len()))
        .zip(scratch[..b * l.tk].par_chunks_mut(l.tk));
    match grads {
        Grads::Packed(g) => g[..b * l.kv_len()]
            .par_chunks_mut(l.kv_len())
            .zip(inputs)
            .for_each(|(g, ((((dout, q), kv), probs), dp))| {
                backward_one(&mut Rows::Packed(g), dout, q, kv, probs, dp, l)
            }),
        Grads::Split { dq, dkv } => dq[..b * l.q_len()]
            .par_chunks_mut(l.q_len())
            .zip(dkv[..b * l.kv_len()].par_chunks_mut(l.kv_len()))
            .zip(inputs)
            .for_each(|((gq, gkv), ((((dout, q), kv), probs), dp))| {
                backward_one(&mut Rows::Split(gq, gkv), dout, q, kv, probs, dp, l)
            }),
    }
}

avx2_dispatch! {
    fn backward_one(
        g: &mut Rows<'_>,
        dout: &[f32],
        q: &[f32],
        kv: &[f32],
        probs: &[f32],
        dp: &mut [f32],
        l: &Layout,
    ) {
        let (c, hd) = (l.channels(), l.head_dim);
        let scale = 1.0 / (hd as f32).sqrt();
        for h in 0..l.heads {
            for i in 0..l.tq {
                let seen = l.visible(i);
                let p = &probs[(h * l.tq + i) * l.tk..][..seen];
                let doi = &dout[i * c + h * hd..][..hd];
                let qi = &q[i * l.q_stride + l.q_offset + h * hd..][..hd];
                let mut sum = 0.0;
                for (j, (&pj, dpj)) in p.iter().zip(dp.iter_mut()).enumerate() {
                    let row = j * l.kv_stride + h * hd;
                    *dpj = dot(doi, &kv[row + l.v_offset..][..hd]);
                    axpy(pj, doi, &mut g.kv()[row + l.v_offset..][..hd]);
                    sum += pj * *dpj;
                }
                for (j, (&pj, &dpj)) in p.iter().zip(dp.iter()).enumerate() {
                    let ds = pj * (dpj - sum) * scale;
                    let row = j * l.kv_stride + h * hd;
                    let kj = &kv[row + l.k_offset..][..hd];
                    axpy(
                        ds,
                        kj,
                        &mut g.q()[i * l.q_stride + l.q_offset + h * hd..][..hd],
                    );
                    axpy(ds, qi, &mut g.kv()[row + l.k_offset..][..hd]);
                }
            }
        }
    }
}

/// `y += a · x`.
#[inline(always)]
fn axpy(a: f32, x: &[f32], y: &mut [f32]) {
    y.iter_mut().zip(x).for_each(|(y, x)| *y += a * x);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::gradcheck::{check, seeded};

    fn probe_loss(out: &[f32], probe: &[f32]) -> f64 {
        out.iter().zip(probe).map(|(a, p)| (a * p) as f64).sum()
    }

    fn packed_case(causal: bool) {
        let (b, t, c, heads) = (2, 4, 6, 2);
        let l = Layout::packed(b, t, c, heads, causal);
        let qkv: Vec<f32> = seeded(b * t * 3 * c, 1).iter().map(|v| v * 2.0).collect();
        let probe = seeded(b * t * c, 2);
        let run = |qkv: &[f32]| {
            let (mut out, mut probs) = (vec![0.0; b * t * c], vec![0.0; b * heads * t * t]);
            forward(&mut out, &mut probs, qkv, qkv, &l);
            (out, probs)
        };
        let (_, probs) = run(&qkv);
        let mut dqkv = vec![0.0; qkv.len()];
        let mut scratch = vec![0.0; b * t];
        backward(
            Grads::Packed(&mut dqkv),
            &probe,
            &qkv,
            &qkv,
            &probs,
            &mut scratch,
            &l,
        );
        check("dqkv", &qkv, &dqkv, |v| probe_loss(&run(v).0, &probe));
        for row in probs.chunks(t) {
            assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5);
        }
        if causal {
            // Row i of each head sees keys 0..=i only.
            for (r, row) in probs.chunks(t).enumerate() {
                assert!(row[r % t + 1..].iter().all(|&p| p == 0.0));
            }
        }
    }

    #[test]
    fn packed_gradients_match_finite_differences() {
        packed_case(false);
    }

    #[test]
    fn causal_gradients_match_finite_differences() {
        packed_case(true);
    }

    #[test]
    fn last_query_split_matches_the_full_computation() {
        // Only the last position queries, from separate q and kv buffers: its output must equal
        // the last row of the full attention, and its gradients the finite differences.
        let (b, t, c, heads) = (2, 5, 4, 2);
        let full = Layout::packed(b, t, c, heads, false);
        let qkv = seeded(b * t * 3 * c, 3);
        let (mut out_full, mut probs_full) = (vec![0.0; b * t * c], vec![0.0; b * heads * t * t]);
        forward(&mut out_full, &mut probs_full, &qkv, &qkv, &full);

        let split = Layout {
            tq: 1,
            q_stride: c,
            q_offset: 0,
            kv_stride: 2 * c,
            k_offset: 0,
            v_offset: c,
            ..full
        };
        let mut q = Vec::new();
        let mut kv = Vec::new();
        for (r, row) in qkv.chunks(3 * c).enumerate() {
            if r % t == t - 1 {
                q.extend_from_slice(&row[..c]);
            }
            kv.extend_from_slice(&row[c..]);
        }
        let run = |q: &[f32], kv: &[f32]| {
            let (mut out, mut probs) = (vec![0.0; b * c], vec![0.0; b * heads * t]);
            forward(&mut out, &mut probs, q, kv, &split);
            (out, probs)
        };
        let (out, probs) = run(&q, &kv);
        for s in 0..b {
            let last = &out_full[(s * t + t - 1) * c..][..c];
            for (x, y) in out[s * c..][..c].iter().zip(last) {
                assert!((x - y).abs() < 1e-6);
            }
        }
        let probe = seeded(b * c, 4);
        let (mut dq, mut dkv) = (vec![0.0; q.len()], vec![0.0; kv.len()]);
        let mut scratch = vec![0.0; b * t];
        backward(
            Grads::Split {
                dq: &mut dq,
                dkv: &mut dkv,
            },
            &probe,
            &q,
            &kv,
            &probs,
            &mut scratch,
            &split,
        );
        check("dq", &q, &dq, |v| probe_loss(&run(v, &kv).0, &probe));
        check("dkv", &kv, &dkv, |v| probe_loss(&run(&q, v).0, &probe));
    }
}
