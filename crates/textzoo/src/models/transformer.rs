//! The pre-LN Transformer block shared by `tiny_gpt` and `tiny_bert_generator`, and the
//! embedding and head steps around it:
//!
//! ```text
//! x ─┬─ LN ─ qkv ─ attention ─ proj ─ dropout ─(+)─┬─ LN ─ up ─ GELU ─ down ─ dropout ─(+)─ y
//!    └─────────────────────────────────────────────┘└──────────────────────────────────────┘
//! ```
//!
//! A block runs over all positions (`forward`), or only for the last position of each sequence
//! (`forward_last`): there keys and values still come from every position, but the query,
//! attention output, projection and FFN exist for one row per sequence. That is all
//! `tiny_bert_generator`'s last block needs, at a fraction of the cost.
//!
//! Buffers live in [`Acts`] (per block) and [`Grads`] (shared by all blocks); both are resized
//! only when the batch shape changes, so a training step does not allocate.

use super::observe::{BlockTap, Observer, Tap};
use crate::avx2_dispatch;
use crate::nn::attention::{self, Layout};
use crate::nn::last_query;
use crate::nn::matmul::{gemm, Op};
use crate::nn::params::grad2;
use crate::nn::{dropout, embedding, gelu, layernorm, ParamId, ParamStore};
use rayon::prelude::*;
use textzoo_rt::Rng;

/// GPT-2's initialisation scale for weight matrices and embeddings.
pub const INIT_STD: f32 = 0.02;

/// The sizes one forward pass works with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Shape {
    pub batch: usize,
    pub seq: usize,
    pub embed: usize,
    pub ffn: usize,
    pub heads: usize,
}

impl Shape {
    pub fn rows(&self) -> usize {
        self.batch * self.seq
    }
}

/// What varies per pass: the dropout rate (0 at inference) and the generator its masks come
/// from, and the observer of the tapped tensors (calibration only).
pub struct Run<'a> {
    pub p: f32,
    pub rng: &'a mut Rng,
    pub observer: Option<Observer<'a>>,
}

impl Run<'_> {
    pub fn dropout(&mut self, x: &mut [f32], mask: &mut [f32]) {
        if self.p > 0.0 {
            dropout::forward(x, mask, self.p, self.rng);
        }
    }

    /// Hands `xs` to the observer, if there is one.
    pub fn observe(&mut self, tap: Tap, xs: &[f32]) {
        if let Some(o) = self.observer.as_deref_mut() {
            o(tap, xs);
        }
    }

    fn observing(&self) -> bool {
        self.observer.is_some()
    }
}

/// A linear layer's weight `[out, in]` and bias `[out]` in the parameter store.
#[derive(Debug, Clone, Copy)]
struct Lin {
    w: ParamId,
    b: ParamId,
}

impl Lin {
    fn add(ps: &mut ParamStore, name: &str, out: usize, inp: usize) -> Self {
        Lin {
            w: ps.add(format!("{name}.weight"), &[out, inp], true),
            b: ps.add(format!("{name}.bias"), &[out], false),
        }
    }

    /// `(in, out)`.
    fn dims(&self) -> (usize, usize) {
        (self.w.len / self.b.len, self.b.len)
    }

    /// Output features `start..start + len` alone: a block of weight rows and bias entries.
    fn rows(&self, start: usize, len: usize) -> Self {
        let inp = self.dims().0;
        Lin {
            w: ParamId {
                offset: self.w.offset + start * inp,
                len: len * inp,
            },
            b: ParamId {
                offset: self.b.offset + start,
                len,
            },
        }
    }

    /// `out = inp · wᵀ + b` (as `linear::forward`, with the bias added in parallel: over the
    /// `[batch·seq, vocab]` logits a serial pass costs as much as a small GEMM).
    fn forward(&self, ps: &ParamStore, out: &mut [f32], inp: &[f32], n: usize) {
        let (i, o) = self.dims();
        gemm(n, i, o, inp, Op::N, ps.get(self.w), Op::T, out, false);
        add_bias(&mut out[..n * o], ps.get(self.b));
    }

    /// `dinp = dout · w`, *written* rather than accumulated (no buffer to zero first), and
    /// `dw += doutᵀ · inp`, `db += Σ dout`.
    fn backward(&self, ps: &mut ParamStore, dinp: &mut [f32], dout: &[f32], inp: &[f32], n: usize) {
        let (i, o) = self.dims();
        let ParamStore { data, grad, .. } = ps;
        let w = &data[self.w.range()];
        gemm(n, o, i, dout, Op::N, w, Op::N, dinp, false);
        let (dw, db) = grad2(grad, self.w, self.b);
        gemm(o, n, i, dout, Op::T, inp, Op::N, dw, true);
        bias_grad(db, &dout[..n * o]);
    }
}

/// Rows per parallel task of the element-wise passes over `[rows, features]` buffers.
const ROWS_PER_TASK: usize = 32;

/// `y += x`.
fn add(y: &mut [f32], x: &[f32]) {
    const CHUNK: usize = 8192;
    y.par_chunks_mut(CHUNK)
        .zip(x.par_chunks(CHUNK))
        .for_each(|(y, x)| add_rows(y, x));
}

/// `x[r, :] += b` for every row.
fn add_bias(x: &mut [f32], b: &[f32]) {
    x.par_chunks_mut(b.len() * ROWS_PER_TASK)
        .for_each(|rows| add_rows(rows, b));
}

avx2_dispatch! {
    /// Adds `b` to each `b.len()`-wide row of `rows`.
    fn add_rows(rows: &mut [f32], b: &[f32]) {
        for row in rows.chunks_mut(b.len()) {
            row.iter_mut().zip(b).for_each(|(x, b)| *x += b);
        }
    }
}

/// `db += Σ_r dout[r, :]`, parallel over blocks of columns: each column is still summed in
/// row order, so the result is the same bits as a serial loop.
fn bias_grad(db: &mut [f32], dout: &[f32]) {
    let width = db.len();
    let block = width.div_ceil(8).max(16);
    db.par_chunks_mut(block)
        .enumerate()
        .for_each(|(i, db)| sum_columns(db, dout, width, i * block));
}

avx2_dispatch! {
    fn sum_columns(db: &mut [f32], dout: &[f32], width: usize, first: usize) {
        for row in dout.chunks_exact(width) {
            let row = &row[first..first + db.len()];
            db.iter_mut().zip(row).for_each(|(d, g)| *d += g);
        }
    }
}

/// A layer norm's gain and bias in the store, and what its forward pass saves.
#[derive(Debug, Clone, Copy)]
struct Norm {
    w: ParamId,
    b: ParamId,
}

impl Norm {
    fn add(ps: &mut ParamStore, name: &str, c: usize) -> Self {
        Norm {
            w: ps.add(format!("{name}.weight"), &[c], false),
            b: ps.add(format!("{name}.bias"), &[c], false),
        }
    }

    fn forward(&self, ps: &ParamStore, a: &mut NormActs, x: &[f32], n: usize) {
        let (w, b) = (ps.get(self.w), ps.get(self.b));
        layernorm::forward(&mut a.y, &mut a.mean, &mut a.rstd, x, w, b, n, w.len());
    }

    /// Accumulates into `dx` (the residual stream's gradient).
    fn backward(&self, ps: &mut ParamStore, a: &NormActs, dx: &mut [f32], dy: &[f32], x: &[f32]) {
        let ParamStore { data, grad, .. } = ps;
        let w = &data[self.w.range()];
        let (dw, db) = grad2(grad, self.w, self.b);
        let n = a.mean.len();
        layernorm::backward(dx, dw, db, dy, x, w, &a.mean, &a.rstd, n, w.len());
    }
}

/// A layer norm's output and per-row statistics.
#[derive(Debug, Default)]
struct NormActs {
    y: Vec<f32>,
    mean: Vec<f32>,
    rstd: Vec<f32>,
}

impl NormActs {
    fn resize(&mut self, rows: usize, c: usize) {
        fit(&mut self.y, rows * c);
        fit(&mut self.mean, rows);
        fit(&mut self.rstd, rows);
    }
}

/// The tensors of one block, named `blocks.{i}.ln1.weight`, `blocks.{i}.attn.qkv.weight`, ….
#[derive(Debug, Clone)]
pub struct BlockParams {
    /// `i`, the block's place in the stack (its taps' names).
    index: usize,
    ln1: Norm,
    qkv: Lin,
    proj: Lin,
    ln2: Norm,
    up: Lin,
    down: Lin,
}

impl BlockParams {
    pub fn add(ps: &mut ParamStore, i: usize, c: usize, f: usize) -> Self {
        let name = |part: &str| format!("blocks.{i}.{part}");
        BlockParams {
            index: i,
            ln1: Norm::add(ps, &name("ln1"), c),
            qkv: Lin::add(ps, &name("attn.qkv"), 3 * c, c),
            proj: Lin::add(ps, &name("attn.proj"), c, c),
            ln2: Norm::add(ps, &name("ln2"), c),
            up: Lin::add(ps, &name("ffn.up"), f, c),
            down: Lin::add(ps, &name("ffn.down"), c, f),
        }
    }

    /// GPT-2 initialisation: N(0, 0.02) for matrices, with the two projections that write into
    /// the residual stream scaled by 1/√(2·layers) so the stream's variance does not grow with
    /// depth; unit LN gains; zero biases (already zero in the store).
    pub fn init(&self, ps: &mut ParamStore, rng: &mut Rng, layers: usize) {
        let resid_std = INIT_STD / (2.0 * layers as f32).sqrt();
        ps.get_mut(self.ln1.w).fill(1.0);
        ps.get_mut(self.ln2.w).fill(1.0);
        fill_normal(ps.get_mut(self.qkv.w), INIT_STD, rng);
        fill_normal(ps.get_mut(self.proj.w), resid_std, rng);
        fill_normal(ps.get_mut(self.up.w), INIT_STD, rng);
        fill_normal(ps.get_mut(self.down.w), resid_std, rng);
    }

    fn tap(&self, part: BlockTap) -> Tap {
        Tap::Block(self.index, part)
    }

    /// Runs the block over every position: `y[n, C]` from `x[n, C]`.
    #[allow(clippy::too_many_arguments)]
    pub fn forward(
        &self,
        ps: &ParamStore,
        a: &mut Acts,
        x: &[f32],
        y: &mut [f32],
        s: &Shape,
        causal: bool,
        run: &mut Run<'_>,
    ) {
        let (n, c) = (s.rows(), s.embed);
        self.ln1.forward(ps, &mut a.ln1, x, n);
        run.observe(self.tap(BlockTap::Ln1), &a.ln1.y[..n * c]);
        self.qkv.forward(ps, &mut a.qkv, &a.ln1.y, n);
        if run.observing() {
            for (k, part) in [BlockTap::Q, BlockTap::K, BlockTap::V]
                .into_iter()
                .enumerate()
            {
                let col: Vec<f32> = a.qkv[..n * 3 * c]
                    .chunks_exact(3 * c)
                    .flat_map(|row| &row[k * c..(k + 1) * c])
                    .copied()
                    .collect();
                run.observe(self.tap(part), &col);
            }
        }
        let l = Layout::packed(s.batch, s.seq, s.embed, s.heads, causal);
        attention::forward(&mut a.att, &mut a.probs, &a.qkv, &a.qkv, &l);
        run.observe(self.tap(BlockTap::Att), &a.att[..n * c]);
        self.proj.forward(ps, &mut a.res2, &a.att, n);
        run.dropout(&mut a.res2, &mut a.mask1);
        add(&mut a.res2, x);
        run.observe(self.tap(BlockTap::Res2), &a.res2[..n * c]);
        self.ffn_forward(ps, a, y, n, run);
    }

    /// Runs the block for the last position of each sequence only: `y[batch, C]` from
    /// `x[n, C]`. The query comes from the Q rows of the packed projection for the last
    /// position; keys and values are folded into it (`nn::last_query`), so the K|V rows are
    /// never applied to every position.
    pub fn forward_last(
        &self,
        ps: &ParamStore,
        a: &mut Acts,
        x: &[f32],
        y: &mut [f32],
        s: &Shape,
        run: &mut Run<'_>,
    ) {
        let (n, c, b) = (s.rows(), s.embed, s.batch);
        self.ln1.forward(ps, &mut a.ln1, x, n);
        run.observe(self.tap(BlockTap::Ln1), &a.ln1.y[..n * c]);
        gather_last(&mut a.ln1_last, &a.ln1.y, s);
        self.qkv.rows(0, c).forward(ps, &mut a.q, &a.ln1_last, b);
        run.observe(self.tap(BlockTap::Q), &a.q[..b * c]);
        let (k, v) = (self.qkv.rows(c, c), self.qkv.rows(2 * c, c));
        if run.observing() {
            // The folded block never projects keys and values; the int8 graph does, for every
            // position, so calibration projects them here to see their range.
            let mut kv = vec![0.0; n * c];
            for (part, lin) in [(BlockTap::K, k), (BlockTap::V, v)] {
                lin.forward(ps, &mut kv, &a.ln1.y, n);
                run.observe(self.tap(part), &kv);
            }
        }
        let inputs = last_query::Inputs {
            q: &a.q,
            y: &a.ln1.y,
            wk: ps.get(k.w),
            wv: ps.get(v.w),
            bv: ps.get(v.b),
        };
        let saved = last_query::Saved {
            u: &mut a.u,
            probs: &mut a.probs,
            z: &mut a.z,
        };
        last_query::forward(inputs, saved, &mut a.att, &last_dims(s));
        run.observe(self.tap(BlockTap::Att), &a.att[..b * c]);
        self.proj.forward(ps, &mut a.res2, &a.att, b);
        run.dropout(&mut a.res2, &mut a.mask1);
        for (r, seq) in a.res2.chunks_exact_mut(c).zip(x.chunks_exact(s.seq * c)) {
            let last = &seq[(s.seq - 1) * c..];
            r.iter_mut().zip(last).for_each(|(r, x)| *r += x);
        }
        run.observe(self.tap(BlockTap::Res2), &a.res2[..b * c]);
        self.ffn_forward(ps, a, y, b, run);
    }

    /// `y = res2 + dropout(down(gelu(up(LN(res2)))))` over `m` rows.
    fn ffn_forward(
        &self,
        ps: &ParamStore,
        a: &mut Acts,
        y: &mut [f32],
        m: usize,
        run: &mut Run<'_>,
    ) {
        let (c, f) = (self.down.dims().1, self.up.dims().1);
        self.ln2.forward(ps, &mut a.ln2, &a.res2, m);
        run.observe(self.tap(BlockTap::Ln2), &a.ln2.y[..m * c]);
        self.up.forward(ps, &mut a.up, &a.ln2.y, m);
        run.observe(self.tap(BlockTap::Up), &a.up[..m * f]);
        gelu::forward(&mut a.h, &a.up);
        run.observe(self.tap(BlockTap::H), &a.h[..m * f]);
        self.down.forward(ps, y, &a.h, m);
        run.dropout(y, &mut a.mask2);
        add(y, &a.res2);
        run.observe(self.tap(BlockTap::Y), &y[..m * c]);
    }

    /// Backward of [`forward`](Self::forward): `g.dres` holds dL/dy on entry and dL/dx on exit.
    #[allow(clippy::too_many_arguments)]
    pub fn backward(
        &self,
        ps: &mut ParamStore,
        a: &Acts,
        x: &[f32],
        g: &mut Grads,
        s: &Shape,
        causal: bool,
        dropped: bool,
    ) {
        let n = s.rows();
        let t = &mut g.tmp;
        self.ffn_backward(ps, a, &mut g.dres, t, n, dropped);
        self.proj_backward(ps, a, &g.dres, t, n, dropped);
        let l = Layout::packed(s.batch, s.seq, s.embed, s.heads, causal);
        attention::backward(
            &mut t.dqkv,
            &t.datt,
            &a.qkv,
            &a.qkv,
            &a.probs,
            &mut t.scratch,
            &l,
        );
        self.qkv.backward(ps, &mut t.dln, &t.dqkv, &a.ln1.y, n);
        self.ln1.backward(ps, &a.ln1, &mut g.dres, &t.dln, x);
    }

    /// Backward of [`forward_last`](Self::forward_last): `g.dres_last` holds dL/dy on entry,
    /// `g.dres` (all rows) holds dL/dx on exit.
    pub fn backward_last(
        &self,
        ps: &mut ParamStore,
        a: &Acts,
        x: &[f32],
        g: &mut Grads,
        s: &Shape,
        dropped: bool,
    ) {
        let (c, b) = (s.embed, s.batch);
        let t = &mut g.tmp;
        self.ffn_backward(ps, a, &mut g.dres_last, t, b, dropped);
        self.proj_backward(ps, a, &g.dres_last, t, b, dropped);
        let kv = self.qkv.rows(c, 2 * c);
        let ParamStore { data, grad, .. } = &mut *ps;
        let (w, bias) = (&data[kv.w.range()], &data[kv.b.range()]);
        let (dw, db) = grad2(grad, kv.w, kv.b);
        let ((wk, wv), (dwk, dwv)) = (w.split_at(c * c), dw.split_at_mut(c * c));
        let inputs = last_query::Inputs {
            q: &a.q,
            y: &a.ln1.y,
            wk,
            wv,
            bv: &bias[c..],
        };
        let kept = last_query::Kept {
            u: &a.u,
            probs: &a.probs,
            z: &a.z,
        };
        let outputs = last_query::Outputs {
            dq: &mut t.dq,
            dy: &mut t.dln,
            dwk,
            dwv,
            dbv: &mut db[c..],
        };
        let scratch = last_query::Scratch {
            dz: &mut t.dz,
            du: &mut t.du,
            ds: &mut t.scratch,
        };
        last_query::backward(&t.datt, inputs, kept, outputs, scratch, &last_dims(s));
        self.qkv
            .rows(0, c)
            .backward(ps, &mut t.dln_last, &t.dq, &a.ln1_last, b);
        // The query and the residual path reach x at the last rows only.
        scatter_add_last(&mut t.dln, &t.dln_last, s);
        g.dres.fill(0.0);
        scatter_add_last(&mut g.dres, &g.dres_last, s);
        self.ln1.backward(ps, &a.ln1, &mut g.dres, &t.dln, x);
    }

    /// Backward of `ffn_forward` over `m` rows: `dres` goes from dL/dy to dL/dres2.
    fn ffn_backward(
        &self,
        ps: &mut ParamStore,
        a: &Acts,
        dres: &mut [f32],
        t: &mut Scratch,
        m: usize,
        dropped: bool,
    ) {
        let dy = masked(&mut t.dy, dres, &a.mask2, dropped);
        self.down.backward(ps, &mut t.dh, dy, &a.h, m);
        gelu::backward(&mut t.dh, &a.up);
        self.up.backward(ps, &mut t.dln, &t.dh, &a.ln2.y, m);
        self.ln2.backward(ps, &a.ln2, dres, &t.dln, &a.res2);
    }

    /// dL/d(attention output) into `t.datt` from dL/dres2 (`dres`, `m` rows), through the
    /// dropout mask and the output projection.
    fn proj_backward(
        &self,
        ps: &mut ParamStore,
        a: &Acts,
        dres: &[f32],
        t: &mut Scratch,
        m: usize,
        dropped: bool,
    ) {
        let dy = masked(&mut t.dy, dres, &a.mask1, dropped);
        self.proj.backward(ps, &mut t.datt, dy, &a.att, m);
    }
}

/// `d` through a dropout mask into `buf` (or `d` itself when no mask was drawn).
fn masked<'a>(buf: &'a mut [f32], d: &'a [f32], mask: &[f32], dropped: bool) -> &'a [f32] {
    if !dropped {
        return d;
    }
    let buf = &mut buf[..d.len()];
    buf.copy_from_slice(d);
    dropout::backward(buf, mask);
    buf
}

/// Attention of the last position over all positions.
fn last_dims(s: &Shape) -> last_query::Dims {
    last_query::Dims {
        batch: s.batch,
        seq: s.seq,
        heads: s.heads,
        head_dim: s.embed / s.heads,
    }
}

/// Row `seq − 1` of each sequence of `all[n, C]` into `last[batch, C]`.
pub fn gather_last(last: &mut [f32], all: &[f32], s: &Shape) {
    let c = s.embed;
    for (dst, seq) in last.chunks_exact_mut(c).zip(all.chunks_exact(s.seq * c)) {
        dst.copy_from_slice(&seq[(s.seq - 1) * c..]);
    }
}

/// Adds `last[batch, C]` into row `seq − 1` of each sequence of `all[n, C]`.
pub fn scatter_add_last(all: &mut [f32], last: &[f32], s: &Shape) {
    let c = s.embed;
    for (src, seq) in last.chunks_exact(c).zip(all.chunks_exact_mut(s.seq * c)) {
        let row = &mut seq[(s.seq - 1) * c..];
        row.iter_mut().zip(src).for_each(|(d, g)| *d += g);
    }
}

/// One block's saved activations. A last-position block keeps `batch` rows from the attention
/// output on, instead of `n`.
#[derive(Debug, Default)]
pub struct Acts {
    ln1: NormActs,
    /// `[n, 3C]` packed Q|K|V (empty for a last-position block).
    qkv: Vec<f32>,
    /// Last-position block only: the query rows and their layer-norm output, and the folded
    /// keys `u` and values `z` (`nn::last_query`).
    q: Vec<f32>,
    ln1_last: Vec<f32>,
    u: Vec<f32>,
    z: Vec<f32>,
    probs: Vec<f32>,
    att: Vec<f32>,
    mask1: Vec<f32>,
    /// `x + dropout(proj(att))`: the input of the FFN half.
    res2: Vec<f32>,
    ln2: NormActs,
    up: Vec<f32>,
    h: Vec<f32>,
    mask2: Vec<f32>,
}

impl Acts {
    /// Sizes every buffer for `s` (growing only when the shape exceeds all earlier ones).
    pub fn resize(&mut self, s: &Shape, last: bool) {
        let (n, b, c, f) = (s.rows(), s.batch, s.embed, s.ffn);
        let (m, tq, qkv, q) = if last {
            (b, 1, 0, b * c)
        } else {
            (n, s.seq, n * 3 * c, 0)
        };
        self.ln1.resize(n, c);
        fit(&mut self.qkv, qkv);
        fit(&mut self.q, q);
        fit(&mut self.ln1_last, q);
        fit(&mut self.u, q * s.heads);
        fit(&mut self.z, q * s.heads);
        fit(&mut self.probs, b * s.heads * tq * s.seq);
        for v in [
            &mut self.att,
            &mut self.mask1,
            &mut self.res2,
            &mut self.mask2,
        ] {
            fit(v, m * c);
        }
        self.ln2.resize(m, c);
        fit(&mut self.up, m * f);
        fit(&mut self.h, m * f);
    }
}

/// Gradient buffers shared by all blocks (backward visits one block at a time).
#[derive(Debug, Default)]
pub struct Grads {
    /// dL/d(residual stream) over all rows, and over the last rows for `backward_last`.
    pub dres: Vec<f32>,
    pub dres_last: Vec<f32>,
    tmp: Scratch,
}

#[derive(Debug, Default)]
struct Scratch {
    dy: Vec<f32>,
    dh: Vec<f32>,
    dln: Vec<f32>,
    datt: Vec<f32>,
    dqkv: Vec<f32>,
    dq: Vec<f32>,
    du: Vec<f32>,
    dz: Vec<f32>,
    dln_last: Vec<f32>,
    scratch: Vec<f32>,
}

impl Grads {
    /// Sizes the buffers for `s`; `last` when the stack ends with a last-position block.
    /// Buffers hold exactly the rows a pass uses: layers write them whole, without zeroing.
    pub fn resize(&mut self, s: &Shape, last: bool) {
        let (n, b, c, f) = (s.rows(), s.batch, s.embed, s.ffn);
        let t = &mut self.tmp;
        fit(&mut self.dres, n * c);
        fit(&mut self.dres_last, b * c);
        for v in [&mut t.dy, &mut t.dln, &mut t.datt] {
            fit(v, n * c);
        }
        fit(&mut t.dh, n * f);
        fit(&mut t.dqkv, n * 3 * c);
        let q = if last { b * c } else { 0 };
        fit(&mut t.dq, q);
        fit(&mut t.dln_last, q);
        fit(&mut t.du, q * s.heads);
        fit(&mut t.dz, q * s.heads);
        // Score gradients: `[tq, tk]` per sequence and head for a full block (one head at a
        // time), `[heads, seq]` for the last-position one.
        fit(&mut t.scratch, b * s.seq * s.seq.max(s.heads));
    }
}

/// `out[b, t] = tok[tokens[b, t]] + pos[pos0 + t]`, one sequence per parallel task.
pub fn embed(out: &mut [f32], tokens: &[u32], tok: &[f32], pos: &[f32], s: &Shape, pos0: usize) {
    let c = s.embed;
    let pos = &pos[pos0 * c..(pos0 + s.seq) * c];
    out[..s.rows() * c]
        .par_chunks_mut(s.seq * c)
        .zip(tokens.par_chunks(s.seq))
        .for_each(|(seq, ids)| {
            embedding::forward(seq, ids, tok, c);
            add_rows(seq, pos);
        });
}

/// Backward of [`embed`]: scatters `dout` into the token and position tables' gradients.
pub fn embed_backward(
    grad: &mut [f32],
    tok: ParamId,
    pos: ParamId,
    tokens: &[u32],
    dout: &[f32],
    s: &Shape,
    pos0: usize,
) {
    let c = s.embed;
    let (dtok, dpos) = grad2(grad, tok, pos);
    embedding::backward(dtok, tokens, &dout[..s.rows() * c], c);
    let dpos = &mut dpos[pos0 * c..(pos0 + s.seq) * c];
    for seq in dout[..s.rows() * c].chunks_exact(s.seq * c) {
        dpos.iter_mut().zip(seq).for_each(|(d, g)| *d += g);
    }
}

/// The final layer norm `ln_f` and the vocabulary projection `head` (whose weight is the token
/// table when tied).
#[derive(Debug, Clone)]
pub struct Head {
    ln: Norm,
    proj: Lin,
}

/// Saved activations of [`Head`] and its gradient scratch.
#[derive(Debug, Default)]
pub struct HeadActs {
    ln: NormActs,
    pub logits: Vec<f32>,
    dln: Vec<f32>,
}

impl HeadActs {
    pub fn resize(&mut self, head: &Head, rows: usize) {
        let (c, vocab) = head.proj.dims();
        self.ln.resize(rows, c);
        fit(&mut self.logits, rows * vocab);
        fit(&mut self.dln, rows * c);
    }
}

impl Head {
    /// Registers `ln_f` and the `head` tensors; a tied head reuses `tok_emb` as its weight.
    pub fn add(ps: &mut ParamStore, tok_emb: ParamId, tied: bool, c: usize, vocab: usize) -> Self {
        let ln = Norm::add(ps, "ln_f", c);
        let proj = if tied {
            Lin {
                w: tok_emb,
                b: ps.add("head.bias", &[vocab], false),
            }
        } else {
            Lin::add(ps, "head", vocab, c)
        };
        Head { ln, proj }
    }

    pub fn init(&self, ps: &mut ParamStore, rng: &mut Rng, tied: bool) {
        ps.get_mut(self.ln.w).fill(1.0);
        if !tied {
            fill_normal(ps.get_mut(self.proj.w), INIT_STD, rng);
        }
    }

    /// Logits `[rows, vocab]` of the residual rows `x[rows, C]`.
    pub fn forward(
        &self,
        ps: &ParamStore,
        h: &mut HeadActs,
        x: &[f32],
        rows: usize,
        run: &mut Run,
    ) {
        self.ln.forward(ps, &mut h.ln, x, rows);
        run.observe(Tap::FinalNorm, &h.ln.y[..rows * self.proj.dims().0]);
        self.proj.forward(ps, &mut h.logits, &h.ln.y, rows);
    }

    /// Writes dL/dx into `dx` from `dlogits`.
    pub fn backward(
        &self,
        ps: &mut ParamStore,
        h: &mut HeadActs,
        x: &[f32],
        dlogits: &[f32],
        dx: &mut [f32],
        rows: usize,
    ) {
        self.proj.backward(ps, &mut h.dln, dlogits, &h.ln.y, rows);
        dx.fill(0.0);
        self.ln.backward(ps, &h.ln, dx, &h.dln, x);
    }
}

pub fn fill_normal(v: &mut [f32], std: f32, rng: &mut Rng) {
    v.iter_mut().for_each(|x| *x = rng.normal() * std);
}

/// Resizes without giving back capacity: a smaller shape later reuses the same memory.
fn fit(v: &mut Vec<f32>, len: usize) {
    v.resize(len, 0.0);
}

/// Configurations and checks shared by the two Transformer models' tests.
#[cfg(test)]
pub mod testing {
    use crate::config::ModelName;
    use crate::models::{FloatModel, ModelConfig};
    use crate::nn::gradcheck;
    use crate::nn::loss::softmax_cross_entropy;
    use crate::nn::optim::{clip_grad_norm, AdamW};
    use textzoo_rt::Rng;

    fn config(kind: ModelName, vocab: usize, seq: usize, c: usize, heads: usize) -> ModelConfig {
        ModelConfig {
            kind,
            vocab_size: vocab,
            seq_len: seq,
            embed_dim: c,
            num_heads: heads,
            num_layers: 2,
            ffn_dim: 4 * c,
            hidden_dim: c,
            dropout: 0.0,
            tie_embeddings: false,
        }
    }

    /// The gradient-check instance: vocab 7, seq 4, embed 8, 2 heads, 2 layers, ffn 16.
    pub fn tiny_config(kind: ModelName) -> ModelConfig {
        ModelConfig {
            ffn_dim: 16,
            ..config(kind, 7, 4, 8, 2)
        }
    }

    pub fn overfit_config(kind: ModelName) -> ModelConfig {
        config(kind, 16, 8, 32, 2)
    }

    /// The issue's reference model (1.45 M parameters with vocab 4096).
    pub fn reference_config(kind: ModelName) -> ModelConfig {
        ModelConfig {
            dropout: 0.1,
            ..config(kind, 4096, 32, 128, 4)
        }
    }

    /// Targets for `tokens` read as windows of a stream: the next token at every position, or
    /// only after the window for a last-position model.
    fn windows(stream: &[u32], starts: &[usize], seq: usize, every: bool) -> (Vec<u32>, Vec<u32>) {
        let mut tokens = Vec::new();
        let mut targets = Vec::new();
        for &o in starts {
            tokens.extend_from_slice(&stream[o..o + seq]);
            if every {
                targets.extend_from_slice(&stream[o + 1..o + seq + 1]);
            } else {
                targets.push(stream[o + seq]);
            }
        }
        (tokens, targets)
    }

    /// Compares every parameter's gradient of the mean cross-entropy with central
    /// differences. Weights are redrawn at scale 0.5 because at the N(0, 0.02) initialisation
    /// the layer norms see near-constant rows, where their curvature makes a 1e-2 step far from
    /// infinitesimal. Dropout masks come from a fixed seed, so the loss is a fixed function.
    pub fn gradient_check(m: &mut dyn FloatModel, dropout: f32) {
        let cfg = m.config().clone();
        assert_eq!(cfg.dropout, dropout);
        let (b, t, v) = (2, cfg.seq_len, cfg.vocab_size);
        let stream: Vec<u32> = (0..20).map(|i| (i * 3 + i / 4) as u32 % v as u32).collect();
        let (tokens, targets) = windows(&stream, &[0, 7], t, cfg.predicts_every_position());
        let at: Vec<f32> = gradcheck::seeded(m.num_params(), 11)
            .iter()
            .map(|x| x * 0.5)
            .collect();
        m.params_mut().data.copy_from_slice(&at);
        let mut dlogits = vec![0.0; targets.len() * v];
        let logits = m.forward(&tokens, b, t, true, &mut Rng::new(7));
        softmax_cross_entropy(logits, &targets, v, Some(&mut dlogits));
        m.params_mut().zero_grad();
        m.backward(&dlogits);
        let analytic = m.params().grad.clone();
        let entries = m.params().entries.clone();
        for e in entries {
            let r = e.id.range();
            let mut loss = |x: &[f32]| {
                m.params_mut().data[r.clone()].copy_from_slice(x);
                let logits = m.forward(&tokens, b, t, true, &mut Rng::new(7));
                softmax_cross_entropy(logits, &targets, v, None) as f64
            };
            gradcheck::check(&e.name, &at[r.clone()], &analytic[r.clone()], &mut loss);
            m.params_mut().data[r.clone()].copy_from_slice(&at[r]);
        }
    }

    /// Trains on a period-12 token sequence (each token determines the next) and returns the
    /// first and last training loss.
    pub fn overfit(m: &mut dyn FloatModel) -> (f32, f32) {
        let cfg = m.config().clone();
        let (t, v) = (cfg.seq_len, cfg.vocab_size);
        let stream: Vec<u32> = (0..64).map(|i| (i % 12) as u32).collect();
        let starts: Vec<usize> = (0..8).map(|i| i * 5).collect();
        let (tokens, targets) = windows(&stream, &starts, t, cfg.predicts_every_position());
        let mut opt = AdamW::new(m.num_params(), 0.9, 0.999, 1e-8, 0.01);
        let mut rng = Rng::new(1);
        let mut dlogits = vec![0.0; targets.len() * v];
        let mut losses = Vec::new();
        for _ in 0..200 {
            let logits = m.forward(&tokens, starts.len(), t, true, &mut rng);
            losses.push(softmax_cross_entropy(
                logits,
                &targets,
                v,
                Some(&mut dlogits),
            ));
            m.params_mut().zero_grad();
            m.backward(&dlogits);
            clip_grad_norm(&mut m.params_mut().grad, 1.0);
            opt.update(m.params_mut(), 3e-3);
        }
        (losses[0], losses[losses.len() - 1])
    }
}
