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

use crate::nn::attention::{self, Layout};
use crate::nn::{dropout, embedding, gelu, layernorm, linear, ParamId, ParamStore};
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

/// Dropout rate for this pass (0 at inference) and the generator its masks come from.
pub struct Dropout<'a> {
    pub p: f32,
    pub rng: &'a mut Rng,
}

impl Dropout<'_> {
    pub fn apply(&mut self, x: &mut [f32], mask: &mut [f32]) {
        if self.p > 0.0 {
            dropout::forward(x, mask, self.p, self.rng);
        }
    }
}

/// The tensors of one block; names follow `blocks.{i}.attn.qkv.weight` and so on.
#[derive(Debug, Clone)]
pub struct BlockParams {
    ln1_w: ParamId,
    ln1_b: ParamId,
    qkv_w: ParamId,
    qkv_b: ParamId,
    proj_w: ParamId,
    proj_b: ParamId,
    ln2_w: ParamId,
    ln2_b: ParamId,
    up_w: ParamId,
    up_b: ParamId,
    down_w: ParamId,
    down_b: ParamId,
}

impl BlockParams {
    pub fn add(ps: &mut ParamStore, i: usize, c: usize, f: usize) -> Self {
        let mut add =
            |name: &str, shape: &[usize], decay| ps.add(format!("blocks.{i}.{name}"), shape, decay);
        BlockParams {
            ln1_w: add("ln1.weight", &[c], false),
            ln1_b: add("ln1.bias", &[c], false),
            qkv_w: add("attn.qkv.weight", &[3 * c, c], true),
            qkv_b: add("attn.qkv.bias", &[3 * c], false),
            proj_w: add("attn.proj.weight", &[c, c], true),
            proj_b: add("attn.proj.bias", &[c], false),
            ln2_w: add("ln2.weight", &[c], false),
            ln2_b: add("ln2.bias", &[c], false),
            up_w: add("ffn.up.weight", &[f, c], true),
            up_b: add("ffn.up.bias", &[f], false),
            down_w: add("ffn.down.weight", &[c, f], true),
            down_b: add("ffn.down.bias", &[c], false),
        }
    }

    /// GPT-2 initialisation: N(0, 0.02) for matrices, with the two projections that write into
    /// the residual stream scaled by 1/√(2·layers) so the stream's variance does not grow with
    /// depth; unit LN gains; zero biases (already zero in the store).
    pub fn init(&self, ps: &mut ParamStore, rng: &mut Rng, layers: usize) {
        let resid_std = INIT_STD / (2.0 * layers as f32).sqrt();
        ps.get_mut(self.ln1_w).fill(1.0);
        ps.get_mut(self.ln2_w).fill(1.0);
        fill_normal(ps.get_mut(self.qkv_w), INIT_STD, rng);
        fill_normal(ps.get_mut(self.proj_w), resid_std, rng);
        fill_normal(ps.get_mut(self.up_w), INIT_STD, rng);
        fill_normal(ps.get_mut(self.down_w), resid_std, rng);
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
        drop: &mut Dropout<'_>,
    ) {
        let (n, c) = (s.rows(), s.embed);
        let p = |id: ParamId| ps.get(id);
        layernorm::forward(
            &mut a.ln1,
            &mut a.ln1_mean,
            &mut a.ln1_rstd,
            x,
            p(self.ln1_w),
            p(self.ln1_b),
            n,
            c,
        );
        linear::forward(
            &mut a.qkv,
            &a.ln1,
            p(self.qkv_w),
            Some(p(self.qkv_b)),
            n,
            c,
            3 * c,
        );
        let l = Layout::packed(s.batch, s.seq, c, s.heads, causal);
        attention::forward(&mut a.att, &mut a.probs, &a.qkv, &a.qkv, &l);
        linear::forward(
            &mut a.res2,
            &a.att,
            p(self.proj_w),
            Some(p(self.proj_b)),
            n,
            c,
            c,
        );
        drop.apply(&mut a.res2, &mut a.mask1);
        a.res2.iter_mut().zip(x).for_each(|(r, x)| *r += x);
        self.ffn_forward(ps, a, y, n, s, drop);
    }

    /// Runs the block for the last position of each sequence only: `y[batch, C]` from
    /// `x[n, C]`. Keys and values use the K and V rows of the packed projection, the query its
    /// Q rows, each through `linear` on a contiguous slice of the weight matrix.
    pub fn forward_last(
        &self,
        ps: &ParamStore,
        a: &mut Acts,
        x: &[f32],
        y: &mut [f32],
        s: &Shape,
        drop: &mut Dropout<'_>,
    ) {
        let (n, c, b) = (s.rows(), s.embed, s.batch);
        let p = |id: ParamId| ps.get(id);
        layernorm::forward(
            &mut a.ln1,
            &mut a.ln1_mean,
            &mut a.ln1_rstd,
            x,
            p(self.ln1_w),
            p(self.ln1_b),
            n,
            c,
        );
        let (w, bias) = (p(self.qkv_w), p(self.qkv_b));
        linear::forward(
            &mut a.qkv,
            &a.ln1,
            &w[c * c..],
            Some(&bias[c..]),
            n,
            c,
            2 * c,
        );
        gather_last(&mut a.ln1_last, &a.ln1, s);
        linear::forward(
            &mut a.q,
            &a.ln1_last,
            &w[..c * c],
            Some(&bias[..c]),
            b,
            c,
            c,
        );
        attention::forward(&mut a.att, &mut a.probs, &a.q, &a.qkv, &last_layout(s));
        linear::forward(
            &mut a.res2,
            &a.att,
            p(self.proj_w),
            Some(p(self.proj_b)),
            b,
            c,
            c,
        );
        drop.apply(&mut a.res2, &mut a.mask1);
        for (r, last) in a.res2.chunks_exact_mut(c).zip(x.chunks_exact(s.seq * c)) {
            r.iter_mut()
                .zip(&last[(s.seq - 1) * c..])
                .for_each(|(r, x)| *r += x);
        }
        self.ffn_forward(ps, a, y, b, s, drop);
    }

    /// `y = res2 + dropout(down(gelu(up(LN(res2)))))` over `m` rows.
    fn ffn_forward(
        &self,
        ps: &ParamStore,
        a: &mut Acts,
        y: &mut [f32],
        m: usize,
        s: &Shape,
        drop: &mut Dropout<'_>,
    ) {
        let (c, f) = (s.embed, s.ffn);
        let p = |id: ParamId| ps.get(id);
        layernorm::forward(
            &mut a.ln2,
            &mut a.ln2_mean,
            &mut a.ln2_rstd,
            &a.res2,
            p(self.ln2_w),
            p(self.ln2_b),
            m,
            c,
        );
        linear::forward(&mut a.up, &a.ln2, p(self.up_w), Some(p(self.up_b)), m, c, f);
        gelu::forward(&mut a.h, &a.up);
        linear::forward(y, &a.h, p(self.down_w), Some(p(self.down_b)), m, f, c);
        drop.apply(&mut y[..m * c], &mut a.mask2);
        y.iter_mut().zip(&a.res2).for_each(|(y, r)| *y += r);
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
        let (n, c) = (s.rows(), s.embed);
        self.ffn_backward(ps, a, &mut g.dres, &mut g.tmp, n, s, dropped);
        let t = &mut g.tmp;
        let ParamStore { data, grad, .. } = ps;
        proj_backward(t, &g.dres, a, data, grad, self, n, c, dropped);
        fill_zero(&mut t.dqkv);
        let l = Layout::packed(s.batch, s.seq, c, s.heads, causal);
        attention::backward(
            attention::Grads::Packed(&mut t.dqkv),
            &t.datt,
            &a.qkv,
            &a.qkv,
            &a.probs,
            &mut t.scratch,
            &l,
        );
        fill_zero(&mut t.dln);
        let (dw, db) = grad2(grad, self.qkv_w, self.qkv_b);
        linear::backward(
            Some(&mut t.dln),
            dw,
            Some(db),
            &t.dqkv,
            &a.ln1,
            &data[self.qkv_w.range()],
            n,
            c,
            3 * c,
        );
        let (dw, db) = grad2(grad, self.ln1_w, self.ln1_b);
        layernorm::backward(
            &mut g.dres,
            dw,
            db,
            &t.dln,
            x,
            &data[self.ln1_w.range()],
            &a.ln1_mean,
            &a.ln1_rstd,
            n,
            c,
        );
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
        let (n, c, b) = (s.rows(), s.embed, s.batch);
        self.ffn_backward(ps, a, &mut g.dres_last, &mut g.tmp, b, s, dropped);
        let t = &mut g.tmp;
        let ParamStore { data, grad, .. } = ps;
        proj_backward(t, &g.dres_last, a, data, grad, self, b, c, dropped);
        fill_zero(&mut t.dq);
        fill_zero(&mut t.dkv);
        attention::backward(
            attention::Grads::Split {
                dq: &mut t.dq,
                dkv: &mut t.dkv,
            },
            &t.datt,
            &a.q,
            &a.qkv,
            &a.probs,
            &mut t.scratch,
            &last_layout(s),
        );
        let w = &data[self.qkv_w.range()];
        let (dw, db) = grad2(grad, self.qkv_w, self.qkv_b);
        fill_zero(&mut t.dln_last);
        linear::backward(
            Some(&mut t.dln_last),
            &mut dw[..c * c],
            Some(&mut db[..c]),
            &t.dq,
            &a.ln1_last,
            &w[..c * c],
            b,
            c,
            c,
        );
        fill_zero(&mut t.dln);
        linear::backward(
            Some(&mut t.dln),
            &mut dw[c * c..],
            Some(&mut db[c..]),
            &t.dkv,
            &a.ln1,
            &w[c * c..],
            n,
            c,
            2 * c,
        );
        // The residual path and the query reach x only at the last rows.
        fill_zero(&mut g.dres);
        scatter_add_last(&mut t.dln, &t.dln_last, s);
        scatter_add_last(&mut g.dres, &g.dres_last, s);
        let (dw, db) = grad2(grad, self.ln1_w, self.ln1_b);
        layernorm::backward(
            &mut g.dres,
            dw,
            db,
            &t.dln,
            x,
            &data[self.ln1_w.range()],
            &a.ln1_mean,
            &a.ln1_rstd,
            n,
            c,
        );
    }

    /// Backward of `ffn_forward` over `m` rows: `dres` goes from dL/dy to dL/dres2.
    #[allow(clippy::too_many_arguments)]
    fn ffn_backward(
        &self,
        ps: &mut ParamStore,
        a: &Acts,
        dres: &mut [f32],
        t: &mut Scratch,
        m: usize,
        s: &Shape,
        dropped: bool,
    ) {
        let (c, f) = (s.embed, s.ffn);
        let ParamStore { data, grad, .. } = ps;
        let dy = &mut t.dy[..m * c];
        dy.copy_from_slice(&dres[..m * c]);
        if dropped {
            dropout::backward(dy, &a.mask2);
        }
        let (dh, dup, dln) = (&mut t.dh[..m * f], &mut t.dup[..m * f], &mut t.dln[..m * c]);
        dh.fill(0.0);
        let (dw, db) = grad2(grad, self.down_w, self.down_b);
        linear::backward(
            Some(&mut *dh),
            dw,
            Some(db),
            dy,
            &a.h,
            &data[self.down_w.range()],
            m,
            f,
            c,
        );
        dup.fill(0.0);
        gelu::backward(dup, &a.up, dh);
        dln.fill(0.0);
        let (dw, db) = grad2(grad, self.up_w, self.up_b);
        linear::backward(
            Some(&mut *dln),
            dw,
            Some(db),
            dup,
            &a.ln2,
            &data[self.up_w.range()],
            m,
            c,
            f,
        );
        let (dw, db) = grad2(grad, self.ln2_w, self.ln2_b);
        layernorm::backward(
            dres,
            dw,
            db,
            dln,
            &a.res2,
            &data[self.ln2_w.range()],
            &a.ln2_mean,
            &a.ln2_rstd,
            m,
            c,
        );
    }
}

/// dL/d(attention output) into `t.datt` from dL/dres2 (`dres`, `m` rows), through the dropout
/// mask and the output projection.
#[allow(clippy::too_many_arguments)]
fn proj_backward(
    t: &mut Scratch,
    dres: &[f32],
    a: &Acts,
    data: &[f32],
    grad: &mut [f32],
    bp: &BlockParams,
    m: usize,
    c: usize,
    dropped: bool,
) {
    let dy = &mut t.dy[..m * c];
    dy.copy_from_slice(&dres[..m * c]);
    if dropped {
        dropout::backward(dy, &a.mask1);
    }
    let datt = &mut t.datt[..m * c];
    datt.fill(0.0);
    let (dw, db) = grad2(grad, bp.proj_w, bp.proj_b);
    linear::backward(
        Some(datt),
        dw,
        Some(db),
        dy,
        &a.att,
        &data[bp.proj_w.range()],
        m,
        c,
        c,
    );
}

/// Attention of the last position over all positions, Q in `q[batch, C]`, K|V in
/// `kv[n, 2C]`.
fn last_layout(s: &Shape) -> Layout {
    let c = s.embed;
    Layout {
        batch: s.batch,
        heads: s.heads,
        head_dim: c / s.heads,
        tq: 1,
        tk: s.seq,
        causal: false,
        q_stride: c,
        q_offset: 0,
        kv_stride: 2 * c,
        k_offset: 0,
        v_offset: c,
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
        seq[(s.seq - 1) * c..]
            .iter_mut()
            .zip(src)
            .for_each(|(d, g)| *d += g);
    }
}

/// One block's saved activations. With `last` only the last row of each sequence goes past
/// the K/V projection, so those buffers hold `batch` rows instead of `n`.
#[derive(Debug, Default)]
pub struct Acts {
    ln1: Vec<f32>,
    ln1_mean: Vec<f32>,
    ln1_rstd: Vec<f32>,
    /// `[n, 3C]` packed Q|K|V, or `[n, 2C]` K|V for a last-position block.
    qkv: Vec<f32>,
    /// Last-position block only: the query rows and their layer-norm input.
    q: Vec<f32>,
    ln1_last: Vec<f32>,
    probs: Vec<f32>,
    att: Vec<f32>,
    mask1: Vec<f32>,
    /// `x + dropout(proj(att))`: the input of the FFN half.
    res2: Vec<f32>,
    ln2: Vec<f32>,
    ln2_mean: Vec<f32>,
    ln2_rstd: Vec<f32>,
    up: Vec<f32>,
    h: Vec<f32>,
    mask2: Vec<f32>,
}

impl Acts {
    /// Sizes every buffer for `s` (growing only when the shape exceeds all earlier ones).
    pub fn resize(&mut self, s: &Shape, last: bool) {
        let (n, b, c, f) = (s.rows(), s.batch, s.embed, s.ffn);
        let (m, tq, kv) = if last { (b, 1, 2) } else { (n, s.seq, 3) };
        let q = if last { b * c } else { 0 };
        fit(&mut self.ln1, n * c);
        fit(&mut self.ln1_mean, n);
        fit(&mut self.ln1_rstd, n);
        fit(&mut self.qkv, n * kv * c);
        fit(&mut self.q, q);
        fit(&mut self.ln1_last, q);
        fit(&mut self.probs, b * s.heads * tq * s.seq);
        for v in [
            &mut self.att,
            &mut self.mask1,
            &mut self.res2,
            &mut self.ln2,
        ] {
            fit(v, m * c);
        }
        fit(&mut self.mask2, m * c);
        fit(&mut self.ln2_mean, m);
        fit(&mut self.ln2_rstd, m);
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
    dup: Vec<f32>,
    dln: Vec<f32>,
    datt: Vec<f32>,
    dqkv: Vec<f32>,
    dq: Vec<f32>,
    dkv: Vec<f32>,
    dln_last: Vec<f32>,
    scratch: Vec<f32>,
}

impl Grads {
    /// Sizes the buffers for `s`; `last` when the stack ends with a last-position block.
    pub fn resize(&mut self, s: &Shape, last: bool) {
        let (n, b, c, f) = (s.rows(), s.batch, s.embed, s.ffn);
        let t = &mut self.tmp;
        fit(&mut self.dres, n * c);
        fit(&mut self.dres_last, b * c);
        for v in [&mut t.dy, &mut t.dln, &mut t.datt] {
            fit(v, n * c);
        }
        fit(&mut t.dh, n * f);
        fit(&mut t.dup, n * f);
        fit(&mut t.dqkv, n * 3 * c);
        let q = if last { b * c } else { 0 };
        fit(&mut t.dq, q);
        fit(&mut t.dln_last, q);
        fit(&mut t.dkv, if last { n * 2 * c } else { 0 });
        fit(&mut t.scratch, b * s.seq);
    }
}

/// `out[b, t] = tok[tokens[b, t]] + pos[pos0 + t]`.
pub fn embed(out: &mut [f32], tokens: &[u32], tok: &[f32], pos: &[f32], s: &Shape, pos0: usize) {
    let c = s.embed;
    embedding::forward(out, tokens, tok, c);
    let pos = &pos[pos0 * c..(pos0 + s.seq) * c];
    for seq in out[..s.rows() * c].chunks_exact_mut(s.seq * c) {
        seq.iter_mut().zip(pos).for_each(|(x, p)| *x += p);
    }
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

/// The final layer norm and the vocabulary projection (`head`, or the token table when tied).
#[derive(Debug, Clone)]
pub struct Head {
    ln_w: ParamId,
    ln_b: ParamId,
    w: ParamId,
    b: ParamId,
    c: usize,
    vocab: usize,
}

/// Saved activations of [`Head`] and its gradient scratch.
#[derive(Debug, Default)]
pub struct HeadActs {
    pub ln: Vec<f32>,
    mean: Vec<f32>,
    rstd: Vec<f32>,
    pub logits: Vec<f32>,
    dln: Vec<f32>,
}

impl HeadActs {
    pub fn resize(&mut self, head: &Head, rows: usize) {
        let (c, vocab) = (head.c, head.vocab);
        fit(&mut self.ln, rows * c);
        fit(&mut self.mean, rows);
        fit(&mut self.rstd, rows);
        fit(&mut self.logits, rows * vocab);
        fit(&mut self.dln, rows * c);
    }
}

impl Head {
    /// Registers `ln_f` and the `head` tensors; a tied head reuses `tok_emb` as its weight.
    pub fn add(ps: &mut ParamStore, tok_emb: ParamId, tied: bool, c: usize, vocab: usize) -> Self {
        let ln_w = ps.add("ln_f.weight", &[c], false);
        let ln_b = ps.add("ln_f.bias", &[c], false);
        let w = if tied {
            tok_emb
        } else {
            ps.add("head.weight", &[vocab, c], true)
        };
        let b = ps.add("head.bias", &[vocab], false);
        Head {
            ln_w,
            ln_b,
            w,
            b,
            c,
            vocab,
        }
    }

    pub fn init(&self, ps: &mut ParamStore, rng: &mut Rng, tied: bool) {
        ps.get_mut(self.ln_w).fill(1.0);
        if !tied {
            fill_normal(ps.get_mut(self.w), INIT_STD, rng);
        }
    }

    /// Logits `[rows, vocab]` of the residual rows `x[rows, C]`.
    pub fn forward(&self, ps: &ParamStore, h: &mut HeadActs, x: &[f32], rows: usize) {
        let (c, vocab) = (self.c, self.vocab);
        layernorm::forward(
            &mut h.ln,
            &mut h.mean,
            &mut h.rstd,
            x,
            ps.get(self.ln_w),
            ps.get(self.ln_b),
            rows,
            c,
        );
        let (w, b) = (ps.get(self.w), ps.get(self.b));
        linear::forward(&mut h.logits, &h.ln, w, Some(b), rows, c, vocab);
    }

    /// Writes dL/dx into `dx` (overwriting) from `dlogits`.
    pub fn backward(
        &self,
        ps: &mut ParamStore,
        h: &mut HeadActs,
        x: &[f32],
        dlogits: &[f32],
        dx: &mut [f32],
        rows: usize,
    ) {
        let (c, vocab) = (self.c, self.vocab);
        let ParamStore { data, grad, .. } = ps;
        fill_zero(&mut h.dln);
        let (dw, db) = grad2(grad, self.w, self.b);
        let w = &data[self.w.range()];
        linear::backward(
            Some(&mut h.dln),
            dw,
            Some(db),
            dlogits,
            &h.ln,
            w,
            rows,
            c,
            vocab,
        );
        fill_zero(&mut dx[..rows * c]);
        let (dw, db) = grad2(grad, self.ln_w, self.ln_b);
        layernorm::backward(
            dx,
            dw,
            db,
            &h.dln,
            x,
            &data[self.ln_w.range()],
            &h.mean,
            &h.rstd,
            rows,
            c,
        );
    }
}

pub fn fill_normal(v: &mut [f32], std: f32, rng: &mut Rng) {
    v.iter_mut().for_each(|x| *x = rng.normal() * std);
}

/// Resizes without giving back capacity: a smaller shape later reuses the same memory.
fn fit(v: &mut Vec<f32>, len: usize) {
    v.resize(len, 0.0);
}

fn fill_zero(v: &mut [f32]) {
    v.fill(0.0);
}

/// The gradients of two distinct tensors at once.
fn grad2(grad: &mut [f32], a: ParamId, b: ParamId) -> (&mut [f32], &mut [f32]) {
    assert!(
        a.range().end <= b.offset || b.range().end <= a.offset,
        "tensors overlap"
    );
    if a.offset < b.offset {
        let (lo, hi) = grad.split_at_mut(b.offset);
        (&mut lo[a.range()], &mut hi[..b.len])
    } else {
        let (lo, hi) = grad.split_at_mut(a.offset);
        (&mut hi[..a.len], &mut lo[b.range()])
    }
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
