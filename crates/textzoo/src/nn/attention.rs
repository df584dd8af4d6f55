//! Multi-head scaled dot-product attention, `softmax(q·kᵀ / √d) · v` per head, with or
//! without a causal mask. The softmax probabilities are kept for backward.
//!
//! Queries, keys and values are read in place from the projection's output, the packed
//! `[batch, t, 3C]` of a full block (`Layout::packed`); the forward pass also takes them from
//! separate `q` and `kv` buffers with fewer query rows than keys. (The last block of
//! `tiny_bert_generator`, where one position asks, folds the projections in instead:
//! `nn::last_query`.) Sequences run in parallel: one batch element owns its rows of every
//! buffer, so the split needs no unsafe code, and even the batch-1 decoding case is too small
//! to gain from splitting heads.
//!
//! Each head's products (`q·kᵀ`, `p·v` and the four of backward) are small GEMMs on strided
//! views of those buffers: `matrixmultiply`'s kernels beat hand-written row loops even at
//! 32 × 32 × 32, and a product this small never wakes its thread pool.

use super::{fastmath, heap};
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

/// One sequence, all heads.
fn forward_seq(out: &mut [f32], probs: &mut [f32], q: &[f32], kv: &[f32], l: &Layout) {
    let scale = 1.0 / (l.head_dim as f32).sqrt();
    for h in 0..l.heads {
        let p = l.p(h);
        mm(scale, q, l.q(h), kv, l.k(h).t(), 0.0, probs, p);
        softmax_rows(&mut probs[p.offset..][..l.tq * l.tk], l);
        mm(1.0, probs, p, kv, l.v(h), 0.0, out, l.o(h));
    }
}

avx2_dispatch! {
    /// Softmax of each score row `[tq, tk]` over its visible keys; masked entries become 0.
    fn softmax_rows(scores: &mut [f32], l: &Layout) {
        for (i, row) in scores.chunks_exact_mut(l.tk).enumerate() {
            let (vis, masked) = row.split_at_mut(l.visible(i));
            softmax(vis);
            masked.fill(0.0);
        }
    }
}

/// Softmax of one row in place (inlined into its callers' AVX2 loops).
#[inline(always)]
pub(super) fn softmax(row: &mut [f32]) {
    let max = fastmath::max(row);
    row.iter_mut().for_each(|x| *x = fastmath::exp(*x - max));
    let inv = 1.0 / fastmath::sum(row);
    row.iter_mut().for_each(|x| *x *= inv);
}

/// Writes the gradients of Q, K and V into the packed `dqkv` (laid out as the forward's
/// `[batch, t, 3C]` input) from `dout`: every element of it, since nothing else feeds into the
/// projection output, so it needs no zeroing first. `scratch` holds `batch · tq · tk` floats.
/// (A last position alone asking goes through `nn::last_query` instead.)
///
/// With `p` a softmax row and `dp = dout · vᵀ`, the score gradient is
/// `ds = p ⊙ (dp − Σ p ⊙ dp)`; then `dq = ds · k / √d`, `dk = dsᵀ · q / √d`, `dv = pᵀ · dout`.
pub fn backward(
    dqkv: &mut [f32],
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
        .zip(scratch[..b * l.tq * l.tk].par_chunks_mut(l.tq * l.tk));
    dqkv[..b * l.kv_len()]
        .par_chunks_mut(l.kv_len())
        .zip(inputs)
        .for_each(|(g, ((((dout, q), kv), probs), dp))| backward_one(g, dout, q, kv, probs, dp, l));
}

/// One sequence, all heads. `ds` is a `[tq, tk]` scratch for the score gradient.
fn backward_one(
    g: &mut [f32],
    dout: &[f32],
    q: &[f32],
    kv: &[f32],
    probs: &[f32],
    ds: &mut [f32],
    l: &Layout,
) {
    let scale = 1.0 / (l.head_dim as f32).sqrt();
    let s = Mat::dense(l.tq, l.tk, 0);
    for h in 0..l.heads {
        let (p, o) = (l.p(h), l.o(h));
        mm(1.0, dout, o, kv, l.v(h).t(), 0.0, ds, s);
        mm(1.0, probs, p.t(), dout, o, 0.0, g, l.v(h));
        score_grad(ds, &probs[p.offset..][..l.tq * l.tk], l.tk, scale);
        mm(1.0, ds, s, kv, l.k(h), 0.0, g, l.q(h));
        mm(1.0, ds, s.t(), q, l.q(h), 0.0, g, l.k(h));
    }
}

avx2_dispatch! {
    /// `ds ← p ⊙ (dp − Σⱼ p ⊙ dp) · scale`, row by row (`ds` holds `dp` on entry).
    pub(super) fn score_grad(ds: &mut [f32], probs: &[f32], tk: usize, scale: f32) {
        for (d, p) in ds.chunks_exact_mut(tk).zip(probs.chunks_exact(tk)) {
            let sum = fastmath::dot(d, p);
            d.iter_mut().zip(p).for_each(|(d, p)| *d = p * (*d - sum) * scale);
        }
    }
}

/// A matrix inside a slice: element `(r, c)` at `offset + r · rs + c · cs`.
#[derive(Debug, Clone, Copy)]
struct Mat {
    offset: usize,
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
}

impl Mat {
    fn dense(rows: usize, cols: usize, offset: usize) -> Self {
        Mat {
            offset,
            rows,
            cols,
            rs: cols,
            cs: 1,
        }
    }

    fn t(self) -> Self {
        Mat {
            rows: self.cols,
            cols: self.rows,
            rs: self.cs,
            cs: self.rs,
            ..self
        }
    }

    /// One past the last element it reaches.
    fn end(&self) -> usize {
        self.offset + (self.rows - 1) * self.rs + (self.cols - 1) * self.cs + 1
    }
}

impl Layout {
    fn q(&self, h: usize) -> Mat {
        self.head(self.tq, self.q_stride, self.q_offset, h)
    }

    fn k(&self, h: usize) -> Mat {
        self.head(self.tk, self.kv_stride, self.k_offset, h)
    }

    fn v(&self, h: usize) -> Mat {
        self.head(self.tk, self.kv_stride, self.v_offset, h)
    }

    /// Head `h` of the output `[tq, C]`.
    fn o(&self, h: usize) -> Mat {
        self.head(self.tq, self.channels(), 0, h)
    }

    /// Head `h`'s probabilities `[tq, tk]`.
    fn p(&self, h: usize) -> Mat {
        Mat::dense(self.tq, self.tk, h * self.tq * self.tk)
    }

    fn head(&self, rows: usize, stride: usize, offset: usize, h: usize) -> Mat {
        Mat {
            offset: offset + h * self.head_dim,
            rows,
            cols: self.head_dim,
            rs: stride,
            cs: 1,
        }
    }
}

/// `c ← alpha · a · b + beta · c` on views, bounds-checked before the unchecked kernel.
#[allow(clippy::too_many_arguments)]
fn mm(alpha: f32, a: &[f32], am: Mat, b: &[f32], bm: Mat, beta: f32, c: &mut [f32], cm: Mat) {
    assert!(am.cols == bm.rows && am.rows == cm.rows && bm.cols == cm.cols);
    if cm.rows == 0 || cm.cols == 0 || am.cols == 0 {
        return;
    }
    assert!(am.end() <= a.len() && bm.end() <= b.len() && cm.end() <= c.len());
    // SAFETY: every element the strides reach lies inside its slice (checked above), and the
    // output view does not overlap itself (row and column strides of distinct elements differ).
    heap::foreign(|| unsafe {
        matrixmultiply::sgemm(
            cm.rows,
            am.cols,
            cm.cols,
            alpha,
            a.as_ptr().add(am.offset),
            am.rs as isize,
            am.cs as isize,
            b.as_ptr().add(bm.offset),
            bm.rs as isize,
            bm.cs as isize,
            beta,
            c.as_mut_ptr().add(cm.offset),
            cm.rs as isize,
            cm.cs as isize,
        );
    });
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
        let mut scratch = vec![0.0; b * t * t];
        backward(&mut dqkv, &probe, &qkv, &qkv, &probs, &mut scratch, &l);
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
}
