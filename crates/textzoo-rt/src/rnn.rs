//! The int8 recurrent models (`gru`, `lstm`): int8 weights, int16 hidden and cell state,
//! sigmoid/tanh through interpolated 513-entry int16 tables built at conversion time and stored
//! in the model. Integer arithmetic only, except the head's dequantization (one IEEE `×` and
//! one `+` per logit: IEEE basic operations in a fixed order give the same bits in C).
//!
//! Fixed-point formats:
//! - layer 0's input is the token's row of the int8 embedding table (symmetric, one scale);
//!   every other input is the previous layer's hidden state `h`, int16 Q0.15 (`|h| < 1`
//!   holds for both cells, so the format is fixed, not calibrated);
//! - the products `W x` and `W h` are exact int32 sums of int16 × int8 (the converter refuses
//!   dimensions where they could overflow: `in · 32767 · 127 < 2³¹`, i.e. ≤ 516);
//! - each is requantized per gate row to **Q20** (`2⁻²⁰`) and summed with the biases (Q20,
//!   saturating adds); a gate's pre-activation goes to the tables as int16 **Q3.12**;
//! - gate values are Q0.15 (`sigmoid`, `tanh` ∈ [−1, 1]);
//! - the LSTM cell `c` is int16 with a calibrated power-of-two scale `2^(cell_bits − 15)`.
//!
//! Products of Q0.15 values use [`mul_shift`]: `(a · b ± 2^(s−1)) / 2^s` in 64 bits, the
//! division truncating (C99's `/`), i.e. rounding half away from zero.
//!
//! GRU (PyTorch gate order r, z, n): `r = σ(…)`, `z = σ(…)`,
//! `n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))`, `h' = n + z ⊙ (h − n)`.
//! LSTM (i, f, g, o): `c' = f ⊙ c + i ⊙ g`, `h' = o ⊙ tanh(c')`.
//!
//! **Context.** The float models read a window of at most `seq_len` tokens from a zero state;
//! [`RnnState::step`] continues from the current state, so evaluation and prediction restart
//! from zero on the last `seq_len` tokens when a context slides (see `Int8Lm`), giving exactly
//! the float semantics; a device may instead keep stepping (constant memory per token).

use crate::model::Recurrent;
use crate::model_config::{Kind, ModelConfig};
use crate::plan::{self, Plan};
use crate::quant::{rounding_divide_by_pot, saturate_i16, Requant};

/// Largest input or hidden width: `MAX_DIM · 32767 · 127 < 2³¹` keeps the int32 sums exact.
pub const MAX_DIM: usize = 512;
/// Fraction bits of the gate pre-activation sums.
pub const PRE_BITS: i32 = 20;
/// Fraction bits of the table input (Q3.12: the tables cover [−8, 8)).
pub const LUT_IN_BITS: i32 = 12;
/// Entries of the sigmoid/tanh tables: 512 segments of 128 input steps, plus the end point.
pub const ACT_LUT_LEN: usize = 513;
/// Fraction bits of the hidden state and of gate values (Q0.15).
pub const STATE_BITS: i32 = 15;

/// `(a · b) / 2^s`, rounded half away from zero (`s = 0`: the plain product), in 64 bits.
#[inline(always)]
pub fn mul_shift(a: i32, b: i32, s: i32) -> i64 {
    let p = a as i64 * b as i64;
    if s == 0 {
        return p;
    }
    let half = 1i64 << (s - 1);
    (if p >= 0 { p + half } else { p - half }) / (1i64 << s)
}

/// The table at `x` (Q3.12): `lut[i] + (lut[i + 1] − lut[i]) · frac / 128`.
#[inline(always)]
pub fn lut_eval(lut: &[i16], x: i16) -> i32 {
    let u = (x as i32 + 32768) as usize;
    let (i, frac) = (u >> 7, (u & 127) as i32);
    let (a, b) = (lut[i] as i32, lut[i + 1] as i32);
    a + mul_shift(b - a, frac, 7) as i32
}

/// A table of `f` over [−8, 8] in Q0.15 (conversion time).
pub fn build_lut(f: impl Fn(f64) -> f64) -> Vec<i16> {
    (0..ACT_LUT_LEN)
        .map(|i| {
            let x = (i as f64 * 128.0 - 32768.0) / 4096.0;
            (f(x) * 32768.0).round().clamp(-32767.0, 32767.0) as i16
        })
        .collect()
}

/// `acc[o] = Σ_i x[i] · w[o, i]` (int16 × int8, exact in int32 for `k ≤ 516`).
pub fn fc_acc_i16(acc: &mut [i32], x: &[i16], w: &[i8], k: usize, m: usize) {
    assert!(acc.len() >= m && x.len() >= k && w.len() >= m * k);
    for (o, a) in acc[..m].iter_mut().enumerate() {
        let wr = &w[o * k..(o + 1) * k];
        let mut s: i32 = 0;
        for i in 0..k {
            s += x[i] as i32 * wr[i] as i32;
        }
        *a = s;
    }
}

/// Q20 sum → table input (Q3.12), saturated.
#[inline(always)]
fn to_lut_in(pre: i32) -> i16 {
    saturate_i16(rounding_divide_by_pot(pre, PRE_BITS - LUT_IN_BITS))
}

/// Head outputs computed per pass (the head's int32 scratch holds this many).
pub const HEAD_CHUNK: usize = 64;

/// The arena of one step: `x` (layer 0's int16 input), `acc_ih` and `acc_hh` per layer, the
/// head's scratch; as (offset, bytes).
#[derive(Debug, Clone)]
pub struct RnnLayout {
    pub x: (usize, usize),
    pub head: (usize, usize),
    pub ih: Vec<(usize, usize)>,
    pub hh: Vec<(usize, usize)>,
    pub tensors: Vec<plan::Tensor>,
    pub plan: Plan,
    pub peak_bytes: usize,
    /// The recurrent state (`h`, and `c` for the LSTM), int16 per layer: it lives across
    /// steps, outside the arena.
    pub state_bytes: usize,
}

impl RnnLayout {
    pub fn new(cfg: &ModelConfig) -> RnnLayout {
        let (e, h, l) = (cfg.embed_dim, cfg.hidden_dim, cfg.num_layers);
        let g = gates(cfg.kind) * h;
        // Operators: 0 embedding; per layer 1 + 3l: W_ih x, W_hh h, gates; then the head.
        // x stays alive through layer 0 (its views are made once per step).
        let mut tensors = vec![plan::Tensor::new(2 * e, 0, 3)];
        for i in 0..l {
            let o = 1 + 3 * i;
            tensors.push(plan::Tensor::new(4 * g, o, o + 2));
            tensors.push(plan::Tensor::new(4 * g, o + 1, o + 2));
        }
        let head_op = 1 + 3 * l;
        tensors.push(plan::Tensor::new(
            4 * HEAD_CHUNK.min(cfg.vocab_size),
            head_op,
            head_op,
        ));
        let plan = plan::plan(&tensors);
        let at = |i: usize| (plan.offsets[i], tensors[i].bytes);
        let cells = if cfg.kind == Kind::Lstm { 2 } else { 1 };
        RnnLayout {
            x: at(0),
            head: at(1 + 2 * l),
            ih: (0..l).map(|i| at(1 + 2 * i)).collect(),
            hh: (0..l).map(|i| at(2 + 2 * i)).collect(),
            peak_bytes: plan::peak(&tensors),
            state_bytes: 2 * cells * l * h,
            tensors,
            plan,
        }
    }

    pub fn arena_bytes(&self) -> usize {
        self.plan.arena_bytes
    }
}

pub fn gates(kind: Kind) -> usize {
    if kind == Kind::Lstm {
        4
    } else {
        3
    }
}

/// One recurrent model instance: arena, state, logits.
#[derive(Debug, Clone)]
pub struct RnnState {
    pub config: ModelConfig,
    pub layout: RnnLayout,
    arena: Vec<u64>,
    /// `[layers][H]` hidden state, Q0.15.
    pub h: Vec<i16>,
    /// `[layers][H]` LSTM cell (empty for the GRU).
    pub c: Vec<i16>,
    pub logits: Vec<f32>,
    /// Tokens consumed since the last reset.
    pub len: usize,
}

impl RnnState {
    pub fn new(cfg: &ModelConfig) -> RnnState {
        let layout = RnnLayout::new(cfg);
        if let Err(e) = plan::check(&layout.tensors, &layout.plan) {
            panic!("internal error: invalid memory plan: {e}");
        }
        let n = cfg.num_layers * cfg.hidden_dim;
        RnnState {
            config: cfg.clone(),
            arena: vec![0; layout.arena_bytes().div_ceil(8)],
            layout,
            h: vec![0; n],
            c: vec![0; if cfg.kind == Kind::Lstm { n } else { 0 }],
            logits: vec![0.0; cfg.vocab_size],
            len: 0,
        }
    }

    /// Back to the zero state.
    pub fn reset(&mut self) {
        self.h.fill(0);
        self.c.fill(0);
        self.len = 0;
    }

    /// Consumes one token and leaves its next-token logits in `self.logits`.
    pub fn step(&mut self, m: &Recurrent, cfg: &ModelConfig, token: u32) -> Result<&[f32], String> {
        if self.config != *cfg {
            return Err("recurrent state was built for another model configuration".into());
        }
        if token as usize >= cfg.vocab_size {
            return Err(format!(
                "token id {token} outside the vocabulary of {}",
                cfg.vocab_size
            ));
        }
        let mut logits = std::mem::take(&mut self.logits);
        self.step_into(m, cfg, token, &mut logits);
        self.logits = logits;
        Ok(&self.logits)
    }

    fn step_into(&mut self, m: &Recurrent, cfg: &ModelConfig, token: u32, out: &mut [f32]) {
        let (e, h, v) = (cfg.embed_dim, cfg.hidden_dim, cfg.vocab_size);
        let g = gates(cfg.kind) * h;
        let base = self.arena.as_mut_ptr() as *mut u8;
        // SAFETY: the three arena tensors of a layer (x, acc_ih, acc_hh at layer 0; acc_ih
        // and acc_hh after) are alive together and disjoint by the checked plan; each view
        // is within its slot (sizes asserted) and the arena is 8-aligned with 16-aligned
        // offsets.
        let view_i32 = |(off, bytes): (usize, usize), len: usize| unsafe {
            assert!(4 * len <= bytes);
            std::slice::from_raw_parts_mut(base.add(off) as *mut i32, len)
        };
        let x0 = unsafe {
            assert!(2 * e <= self.layout.x.1);
            std::slice::from_raw_parts_mut(base.add(self.layout.x.0) as *mut i16, e)
        };
        let t = token as usize;
        for (xi, &w) in x0.iter_mut().zip(&m.tok_emb[t * e..(t + 1) * e]) {
            *xi = w as i16;
        }
        for (l, layer) in m.layers.iter().enumerate() {
            let acc_ih = view_i32(self.layout.ih[l], g);
            let acc_hh = view_i32(self.layout.hh[l], g);
            let (before, rest) = self.h.split_at_mut(l * h);
            let hl = &mut rest[..h];
            let input: &[i16] = if l == 0 { x0 } else { &before[(l - 1) * h..] };
            fc_acc_i16(acc_ih, input, &layer.w_ih, layer.in_dim, g);
            fc_acc_i16(acc_hh, hl, &layer.w_hh, h, g);
            let rq = |mult: &[i32], shift: &[i32], j: usize, acc: i32| {
                Requant {
                    mult: mult[j],
                    shift: shift[j],
                }
                .apply(acc)
            };
            let pre = |j: usize| {
                rq(&layer.ih_mult, &layer.ih_shift, j, acc_ih[j])
                    .saturating_add(rq(&layer.hh_mult, &layer.hh_shift, j, acc_hh[j]))
                    .saturating_add(layer.bias[j])
            };
            let sig = |j: usize| lut_eval(&m.sigmoid_lut, to_lut_in(pre(j)));
            let tanh = |x: i32| lut_eval(&m.tanh_lut, to_lut_in(x));
            match cfg.kind {
                Kind::Lstm => {
                    let cl = &mut self.c[l * h..(l + 1) * h];
                    let cb = layer.cell_bits;
                    for j in 0..h {
                        let (i, f) = (sig(j), sig(h + j));
                        let gg = lut_eval(&m.tanh_lut, to_lut_in(pre(2 * h + j)));
                        let o = sig(3 * h + j);
                        let c = mul_shift(f, cl[j] as i32, STATE_BITS)
                            + mul_shift(i, gg, STATE_BITS + cb);
                        let c = saturate_i16(c.clamp(-65536, 65536) as i32);
                        cl[j] = c;
                        // c (Q(15 − cb)) to the table's Q3.12.
                        let cin = if cb <= 3 {
                            mul_shift(c as i32, 1, 3 - cb)
                        } else {
                            (c as i64) << (cb - 3)
                        };
                        let tc =
                            lut_eval(&m.tanh_lut, saturate_i16(cin.clamp(-65536, 65536) as i32));
                        hl[j] = saturate_i16(mul_shift(o, tc, STATE_BITS) as i32);
                    }
                }
                _ => {
                    for j in 0..h {
                        let (r, z) = (sig(j), sig(h + j));
                        let hn = rq(
                            &layer.hh_mult,
                            &layer.hh_shift,
                            2 * h + j,
                            acc_hh[2 * h + j],
                        )
                        .saturating_add(layer.bias_hn[j]);
                        let xn = rq(
                            &layer.ih_mult,
                            &layer.ih_shift,
                            2 * h + j,
                            acc_ih[2 * h + j],
                        )
                        .saturating_add(layer.bias[2 * h + j]);
                        let rn =
                            mul_shift(r, hn, STATE_BITS).clamp(i32::MIN as i64, i32::MAX as i64);
                        let n = tanh(xn.saturating_add(rn as i32));
                        let hp = hl[j] as i32;
                        let hnew = n as i64 + mul_shift(z, hp - n, STATE_BITS);
                        hl[j] = saturate_i16(hnew.clamp(-65536, 65536) as i32);
                    }
                }
            }
        }
        // Head on the top layer's state.
        let top = &self.h[(cfg.num_layers - 1) * h..];
        let acc = view_i32(self.layout.head, HEAD_CHUNK.min(v));
        let w = m.head_weight();
        let mut o0 = 0;
        while o0 < v {
            let n = (v - o0).min(acc.len());
            fc_acc_i16(acc, top, &w[o0 * h..(o0 + n) * h], h, n);
            for j in 0..n {
                out[o0 + j] = acc[j] as f32 * m.head_scale[o0 + j] + m.head_bias[o0 + j];
            }
            o0 += n;
        }
        self.len += 1;
    }
}

/// Logits of every position of a window (from the zero state) into `out[len, vocab]`.
pub fn window_logits(
    m: &Recurrent,
    cfg: &ModelConfig,
    s: &mut RnnState,
    tokens: &[u32],
    out: &mut [f32],
) -> Result<(), String> {
    let (n, v) = (tokens.len(), cfg.vocab_size);
    if !(1..=cfg.seq_len).contains(&n) {
        return Err(format!(
            "window of {n} tokens (1..={} allowed)",
            cfg.seq_len
        ));
    }
    if out.len() < n * v {
        return Err("output buffer too small".into());
    }
    s.reset();
    for (r, &t) in tokens.iter().enumerate() {
        s.step(m, cfg, t)?;
        out[r * v..(r + 1) * v].copy_from_slice(&s.logits);
    }
    Ok(())
}
