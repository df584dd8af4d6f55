//! Conversion: float parameters + calibrated activation ranges → the int8 structs of
//! `textzoo-rt`. All float arithmetic of quantization happens here, on the host, once; the
//! runtime only sees integers, multipliers and the few f32 layer-norm constants.

use super::calibrate::{scale_zero_point, Observers};
use crate::artifact::{ActParam, QuantParams};
use crate::config::{Calibration, Granularity};
use crate::error::{Error, Result};
use crate::models::ModelConfig;
use crate::nn::{layernorm, ParamStore};
use std::cell::RefCell;
use textzoo_rt::kernels::{AttnParams, EXP_LUT_LEN, EXP_STEPS, FRAC_BITS, PROB_ONE};
use textzoo_rt::model::{Block, Int8Model, LayerNorm, Linear, Net, Transformer};
use textzoo_rt::quant::{quantize_i8, saturate_i32, Requant};
use textzoo_rt::Kind;

/// Per-tensor activation quantization: `real = scale · (q − zp)`.
#[derive(Debug, Clone, Copy)]
pub struct Act {
    pub scale: f64,
    pub zp: i32,
}

/// How to pick ranges and weight scales.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub calibration: Calibration,
    pub percentile: f64,
    pub granularity: Granularity,
}

fn param<'a>(ps: &'a ParamStore, name: &str) -> Result<&'a [f32]> {
    ps.entry(name)
        .map(|e| ps.get(e.id))
        .ok_or_else(|| Error::Internal(format!("float model has no parameter `{name}`")))
}

/// Symmetric int8 weights `w[rows, cols]`, one scale per row (or one for all rows).
pub fn quantize_weights(
    w: &[f32],
    rows: usize,
    cols: usize,
    g: Granularity,
) -> (Vec<i8>, Vec<f64>) {
    let absmax = |r: &[f32]| r.iter().fold(0.0f32, |m, x| m.max(x.abs())) as f64;
    let mut scales: Vec<f64> = w.chunks_exact(cols).map(absmax).collect();
    if g == Granularity::PerTensor {
        let all = scales.iter().cloned().fold(0.0, f64::max);
        scales.iter_mut().for_each(|s| *s = all);
    }
    // A zero row quantizes to zeros whatever its scale: 1 keeps the bias arithmetic sane.
    scales
        .iter_mut()
        .for_each(|s| *s = if *s > 0.0 { *s / 127.0 } else { 1.0 });
    let mut q = Vec::with_capacity(rows * cols);
    for (r, row) in w.chunks_exact(cols).enumerate() {
        q.extend(row.iter().map(|&x| quantize_i8(x as f64, scales[r], 0)));
    }
    (q, scales)
}

/// A fully connected layer from `x` (activation `inp`) to `out` scale: int8 weights, int32
/// bias with the input zero point folded in, per-channel multipliers for `real_out_scale`
/// (the output scale divided by `extra`, so `extra = 2^FRAC_BITS` feeds a residual sum).
#[allow(clippy::too_many_arguments)]
fn linear(
    w: &[f32],
    b: &[f32],
    in_dim: usize,
    out_dim: usize,
    inp: Act,
    out_scale: Option<f64>,
    extra: f64,
    g: Granularity,
) -> (Linear, Vec<f64>, Vec<f64>) {
    let (wq, ws) = quantize_weights(w, out_dim, in_dim, g);
    let (bias, acc_scales) = folded_bias(&wq, &ws, b, in_dim, inp);
    let (mut mult, mut shift) = (Vec::new(), Vec::new());
    if let Some(out) = out_scale {
        for s in &acc_scales {
            let rq = Requant::from_real(s / out * extra);
            mult.push(rq.mult);
            shift.push(rq.shift);
        }
    }
    (
        Linear {
            w: wq,
            bias,
            mult,
            shift,
            in_dim,
            out_dim,
        },
        acc_scales,
        ws,
    )
}

/// The int32 biases of int8 weights `wq` (row scales `ws`) read by activation `inp`, its zero
/// point folded in, and the scale of each row's accumulator.
fn folded_bias(wq: &[i8], ws: &[f64], b: &[f32], in_dim: usize, inp: Act) -> (Vec<i32>, Vec<f64>) {
    wq.chunks_exact(in_dim)
        .zip(ws)
        .zip(b)
        .map(|((row, &w_scale), &bf)| {
            let s = inp.scale * w_scale;
            let wsum: i64 = row.iter().map(|&x| x as i64).sum();
            let bq = (bf as f64 / s).round().clamp(-1e9, 1e9) as i64;
            (saturate_i32(bq - inp.zp as i64 * wsum), s)
        })
        .unzip()
}

fn layer_norm(gamma: &[f32], beta: &[f32], inp: Act, out: Act) -> LayerNorm {
    let c = gamma.len() as f64;
    LayerNorm {
        a: gamma
            .iter()
            .map(|&g| (inp.scale * g as f64 / (c * out.scale)) as f32)
            .collect(),
        b: beta
            .iter()
            .map(|&b| (b as f64 / out.scale + out.zp as f64) as f32)
            .collect(),
        var_scale: (inp.scale * inp.scale / (c * c * c)) as f32,
        eps: layernorm::EPS,
    }
}

/// `tanh`-form GELU in f64, the curve the float engine computes.
fn gelu(x: f64) -> f64 {
    let u = (2.0 / std::f64::consts::PI).sqrt() * (x + 0.044_715 * x * x * x);
    0.5 * x * (1.0 + u.tanh())
}

/// `round(2¹⁶ · exp(−i / EXP_STEPS))`.
pub fn exp_lut() -> Vec<i32> {
    (0..EXP_LUT_LEN)
        .map(|i| (65536.0 * (-(i as f64) / EXP_STEPS).exp()).round() as i32)
        .collect()
}

/// The float parameters and calibrated ranges a conversion reads from.
struct Source<'a> {
    ps: &'a ParamStore,
    obs: &'a Observers,
    st: &'a Settings,
    /// Every scale and zero point chosen, for the int8 file's record.
    rec: RefCell<QuantParams>,
}

impl Source<'_> {
    fn param(&self, name: &str) -> Result<&[f32]> {
        param(self.ps, name)
    }

    /// The activation quantization of the tensor calibration observed as `name`.
    fn act(&self, name: &str) -> Result<Act> {
        let o = self
            .obs
            .get(name)
            .ok_or_else(|| Error::Internal(format!("calibration saw no `{name}`")))?;
        let (lo, hi) = o.range(self.st.calibration, self.st.percentile);
        let (scale, zp) = scale_zero_point(lo, hi);
        let param = ActParam {
            scale,
            zero_point: zp,
        };
        self.rec.borrow_mut().activations.insert(name.into(), param);
        Ok(Act { scale, zp })
    }

    /// Records the per-row scales of the int8 weight `name`.
    fn weight(&self, name: &str, scales: &[f64]) {
        self.rec.borrow_mut().set_weight(name, scales);
    }
}

/// `s · 2^FRAC_BITS` as a multiplier: the scale of a term entering a residual sum.
fn into_sum(s: f64) -> Requant {
    Requant::from_real(s * 2f64.powi(FRAC_BITS))
}

/// Converts a float Transformer (`tiny_gpt`, `tiny_bert_generator`) with its observers:
/// embeddings, then each block, then the final layer norm and the head; with the scales and
/// zero points it chose.
pub fn convert_transformer(
    cfg: &ModelConfig,
    ps: &ParamStore,
    obs: &Observers,
    st: &Settings,
) -> Result<(Int8Model, QuantParams)> {
    let src = Source {
        ps,
        obs,
        st,
        rec: RefCell::default(),
    };
    let emb = embeddings(cfg, &src)?;
    let mut blocks = Vec::new();
    let mut x = emb.x0;
    for i in 0..cfg.num_layers {
        let acts = BlockActs::new(&src, i, x)?;
        blocks.push(block(cfg, &src, i, &acts)?);
        x = acts.y;
    }
    let lnf = src.act("ln_f")?;
    let ln_f = layer_norm(src.param("ln_f.weight")?, src.param("ln_f.bias")?, x, lnf);
    let head = head(cfg, &src, &emb, lnf)?;
    let model = Int8Model {
        config: cfg.clone(),
        net: Net::Transformer(Transformer {
            tok_emb: emb.tok,
            tok_mult: emb.tok_rq.iter().map(|r| r.mult).collect(),
            tok_shift: emb.tok_rq.iter().map(|r| r.shift).collect(),
            pos_emb: emb.pos,
            pos_mult: emb.pos_rq.iter().map(|r| r.mult).collect(),
            pos_shift: emb.pos_rq.iter().map(|r| r.shift).collect(),
            x0_zp: emb.x0.zp,
            blocks,
            ln_f,
            head_w: head.w,
            head_bias: head.bias,
            head_scale: head.scale,
            exp_lut: exp_lut(),
        }),
    };
    Ok((model, src.rec.into_inner()))
}

/// The token and position tables, each row with its multiplier into the `x0` sum.
struct Embeddings {
    x0: Act,
    tok: Vec<i8>,
    /// Per-row weight scales of `tok` (the tied head reads them too).
    tok_scales: Vec<f64>,
    tok_rq: Vec<Requant>,
    pos: Vec<i8>,
    pos_rq: Vec<Requant>,
}

fn embeddings(cfg: &ModelConfig, src: &Source) -> Result<Embeddings> {
    let (c, v, t) = (cfg.embed_dim, cfg.vocab_size, cfg.seq_len);
    let g = src.st.granularity;
    let x0 = src.act("x0")?;
    let (tok, tok_scales) = quantize_weights(src.param("tok_emb")?, v, c, g);
    let (pos, pos_s) = quantize_weights(src.param("pos_emb")?, t, c, g);
    src.weight("tok_emb", &tok_scales);
    src.weight("pos_emb", &pos_s);
    let tok_rq = tok_scales.iter().map(|s| into_sum(s / x0.scale)).collect();
    let pos_rq = pos_s.iter().map(|s| into_sum(s / x0.scale)).collect();
    Ok(Embeddings {
        x0,
        tok,
        tok_scales,
        tok_rq,
        pos,
        pos_rq,
    })
}

/// The calibrated activations of one block, from its input `x` to its output `y`.
struct BlockActs {
    x: Act,
    ln1: Act,
    q: Act,
    k: Act,
    v: Act,
    att: Act,
    res2: Act,
    ln2: Act,
    up: Act,
    h: Act,
    y: Act,
}

impl BlockActs {
    fn new(src: &Source, i: usize, x: Act) -> Result<BlockActs> {
        let a = |n: &str| src.act(&format!("blocks.{i}.{n}"));
        Ok(BlockActs {
            x,
            ln1: a("ln1")?,
            q: a("q")?,
            k: a("k")?,
            v: a("v")?,
            att: a("att")?,
            res2: a("res2")?,
            ln2: a("ln2")?,
            up: a("up")?,
            h: a("h")?,
            y: a("y")?,
        })
    }
}

/// Block `i`: its linear layers, layer norms, attention parameters, residual multipliers and
/// GELU table.
fn block(cfg: &ModelConfig, src: &Source, i: usize, a: &BlockActs) -> Result<Block> {
    let p = |n: &str| src.param(&format!("blocks.{i}.{n}"));
    let ln1 = layer_norm(p("ln1.weight")?, p("ln1.bias")?, a.x, a.ln1);
    let [q, k, v, proj, up, down] = block_linears(cfg, src, i, a)?;
    let ln2 = layer_norm(p("ln2.weight")?, p("ln2.bias")?, a.res2, a.ln2);
    Ok(Block {
        ln1,
        q,
        k,
        v,
        attn: attn_params(cfg, a),
        proj,
        res1: into_sum(a.x.scale / a.res2.scale),
        x_zp: a.x.zp,
        res2_zp: a.res2.zp,
        ln2,
        up,
        up_zp: a.up.zp,
        gelu: gelu_lut(a.up, a.h),
        down,
        res2: into_sum(a.res2.scale / a.y.scale),
        y_zp: a.y.zp,
    })
}

/// Block `i`'s q, k, v (the thirds of the fused `qkv` weight), projection, up and down layers;
/// the projection and down layers feed residual sums.
fn block_linears(cfg: &ModelConfig, src: &Source, i: usize, a: &BlockActs) -> Result<[Linear; 6]> {
    let (c, f) = (cfg.embed_dim, cfg.ffn_dim);
    let g = src.st.granularity;
    let frac = 2f64.powi(FRAC_BITS);
    let p = |n: &str| src.param(&format!("blocks.{i}.{n}"));
    let (wqkv, bqkv) = (p("attn.qkv.weight")?, p("attn.qkv.bias")?);
    let part = |k: usize, name: &str, out: Act| {
        let (w, b) = (&wqkv[k * c * c..(k + 1) * c * c], &bqkv[k * c..(k + 1) * c]);
        let (l, _, ws) = linear(w, b, c, c, a.ln1, Some(out.scale), 1.0, g);
        src.weight(&format!("blocks.{i}.attn.{name}.weight"), &ws);
        l
    };
    let layer = |name: &str, in_dim, out_dim, inp: Act, out: Act, extra| -> Result<Linear> {
        let (w, b) = (p(&format!("{name}.weight"))?, p(&format!("{name}.bias"))?);
        let (l, _, ws) = linear(w, b, in_dim, out_dim, inp, Some(out.scale), extra, g);
        src.weight(&format!("blocks.{i}.{name}.weight"), &ws);
        Ok(l)
    };
    Ok([
        part(0, "q", a.q),
        part(1, "k", a.k),
        part(2, "v", a.v),
        layer("attn.proj", c, c, a.att, a.res2, frac)?,
        layer("ffn.up", c, f, a.ln2, a.up, 1.0)?,
        layer("ffn.down", f, c, a.h, a.y, frac)?,
    ])
}

/// The attention's zero points and its two requantizations: `q·k` scores to the softmax
/// table's steps, and `probs·v` to the output.
fn attn_params(cfg: &ModelConfig, a: &BlockActs) -> AttnParams {
    let heads = cfg.num_heads;
    let hd = cfg.embed_dim / heads;
    AttnParams {
        heads,
        head_dim: hd,
        q_zp: a.q.zp,
        k_zp: a.k.zp,
        v_zp: a.v.zp,
        softmax: Requant::from_real(a.q.scale * a.k.scale / (hd as f64).sqrt() * EXP_STEPS),
        pv: Requant::from_real(a.v.scale / (PROB_ONE as f64 * a.att.scale)),
        out_zp: a.att.zp,
    }
}

/// GELU from the `up` activation to `h`, as an int8 → int8 table indexed by `up + 128`.
fn gelu_lut(up: Act, h: Act) -> Vec<i8> {
    (-128..=127)
        .map(|qv: i32| quantize_i8(gelu(up.scale * (qv - up.zp) as f64), h.scale, h.zp))
        .collect()
}

/// The head: its own weight (`None` when tied to the token table), the int32 bias and the
/// per-row scale that dequantizes the accumulators.
struct Head {
    w: Option<Vec<i8>>,
    bias: Vec<i32>,
    scale: Vec<f32>,
}

/// The head from the `ln_f` activation.
fn head(cfg: &ModelConfig, src: &Source, emb: &Embeddings, lnf: Act) -> Result<Head> {
    let (c, v) = (cfg.embed_dim, cfg.vocab_size);
    let bias_f = src.param("head.bias")?;
    let (w, bias, scales) = match src.ps.entry("head.weight") {
        Some(e) => {
            let w = src.ps.get(e.id);
            let (l, scales, ws) = linear(w, bias_f, c, v, lnf, None, 1.0, src.st.granularity);
            src.weight("head.weight", &ws);
            (Some(l.w), l.bias, scales)
        }
        None => {
            // Tied: the head reads the token table with its per-row scales.
            let (bias, scales) = folded_bias(&emb.tok, &emb.tok_scales, bias_f, c, lnf);
            (None, bias, scales)
        }
    };
    Ok(Head {
        w,
        bias,
        scale: scales.iter().map(|&s| s as f32).collect(),
    })
}

/// Converts a float `gru` / `lstm` (see `textzoo_rt::rnn` for the formats) with its observers
/// (the LSTM cells' ranges set `cell_bits`).
pub fn convert_recurrent(
    cfg: &ModelConfig,
    ps: &ParamStore,
    obs: &Observers,
    st: &Settings,
) -> Result<(Int8Model, QuantParams)> {
    use textzoo_rt::model::{Recurrent, RnnLayer};
    let mut rec = QuantParams::default();
    use textzoo_rt::rnn::{self, MAX_DIM, PRE_BITS, STATE_BITS};
    let (e, h, v) = (cfg.embed_dim, cfg.hidden_dim, cfg.vocab_size);
    if e > MAX_DIM || h > MAX_DIM {
        return Err(Error::Usage(format!(
            "int8 gru/lstm supports embed_dim and hidden_dim up to {MAX_DIM} (int32 sums of int16 × int8 stay exact); got {e} and {h}"
        )));
    }
    let lstm = cfg.kind == Kind::Lstm;
    let g = rnn::gates(cfg.kind) * h;
    let q20 = 2f64.powi(PRE_BITS);
    let state = 2f64.powi(-STATE_BITS);
    // Embedding: symmetric, one scale (layer 0 reads its rows directly).
    let emb = param(ps, "tok_emb")?;
    let (tok_emb, es) = quantize_weights(emb, v, e, Granularity::PerTensor);
    let s_emb = es[0];
    rec.set_weight("tok_emb", &es);
    let mut layers = Vec::new();
    for l in 0..cfg.num_layers {
        let p = |n: &str| param(ps, &format!("rnn.{l}.{n}"));
        let in_dim = if l == 0 { e } else { h };
        let s_in = if l == 0 { s_emb } else { state };
        let (w_ih, sih) = quantize_weights(p("weight_ih")?, g, in_dim, st.granularity);
        let (w_hh, shh) = quantize_weights(p("weight_hh")?, g, h, st.granularity);
        rec.set_weight(&format!("rnn.{l}.weight_ih"), &sih);
        rec.set_weight(&format!("rnn.{l}.weight_hh"), &shh);
        let rq = |s: &[f64], s_x: f64| -> (Vec<i32>, Vec<i32>) {
            s.iter()
                .map(|w| {
                    let r = Requant::from_real(w * s_x * q20);
                    (r.mult, r.shift)
                })
                .unzip()
        };
        let (ih_mult, ih_shift) = rq(&sih, s_in);
        let (hh_mult, hh_shift) = rq(&shh, state);
        let (bih, bhh) = (p("bias_ih")?, p("bias_hh")?);
        let q = |x: f64| saturate_i32((x * q20).round().clamp(-4e9, 4e9) as i64);
        let bias = (0..g)
            .map(|o| {
                let n_row = !lstm && o >= 2 * h;
                q(bih[o] as f64 + if n_row { 0.0 } else { bhh[o] as f64 })
            })
            .collect();
        let bias_hn = if lstm {
            Vec::new()
        } else {
            (2 * h..3 * h).map(|o| q(bhh[o] as f64)).collect()
        };
        // The cell's power-of-two range: the smallest 2^cb ≥ its calibrated magnitude.
        let cell_bits = if lstm {
            let name = format!("rnn.{l}.c");
            let o = obs
                .get(&name)
                .ok_or_else(|| Error::Internal(format!("calibration saw no `{name}`")))?;
            let (lo, hi) = o.range(st.calibration, st.percentile);
            let m = (lo.abs().max(hi.abs()) as f64).max(1.0);
            (m.log2().ceil() as i32).clamp(0, 15)
        } else {
            0
        };
        layers.push(RnnLayer {
            in_dim,
            w_ih,
            ih_mult,
            ih_shift,
            w_hh,
            hh_mult,
            hh_shift,
            bias,
            bias_hn,
            cell_bits,
        });
    }
    let (head_w, hs) = match ps.entry("head.weight") {
        Some(en) => {
            let (w, s) = quantize_weights(ps.get(en.id), v, h, st.granularity);
            rec.set_weight("head.weight", &s);
            (Some(w), s)
        }
        None => (None, es),
    };
    let head_bias = param(ps, "head.bias")?.to_vec();
    let model = Int8Model {
        config: cfg.clone(),
        net: Net::Recurrent(Recurrent {
            tok_emb,
            layers,
            head_w,
            head_scale: hs.iter().map(|s| (s * state) as f32).collect(),
            head_bias,
            sigmoid_lut: rnn::build_lut(|x| 1.0 / (1.0 + (-x).exp())),
            tanh_lut: rnn::build_lut(f64::tanh),
        }),
    };
    Ok((model, rec))
}
