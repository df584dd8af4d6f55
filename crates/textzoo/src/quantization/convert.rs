//! Conversion: float parameters + calibrated activation ranges → the int8 structs of
//! `textzoo-rt`. All float arithmetic of quantization happens here, on the host, once; the
//! runtime only sees integers, multipliers and the few f32 layer-norm constants.

use super::calibrate::{scale_zero_point, Observers};
use crate::config::{Calibration, Granularity};
use crate::error::{Error, Result};
use crate::models::ModelConfig;
use crate::nn::{layernorm, ParamStore};
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
) -> (Linear, Vec<f64>) {
    let (wq, ws) = quantize_weights(w, out_dim, in_dim, g);
    let mut bias = Vec::with_capacity(out_dim);
    let (mut mult, mut shift) = (Vec::new(), Vec::new());
    for o in 0..out_dim {
        let s = inp.scale * ws[o];
        let wsum: i64 = wq[o * in_dim..(o + 1) * in_dim]
            .iter()
            .map(|&x| x as i64)
            .sum();
        let bq = (b[o] as f64 / s).round().clamp(-1e9, 1e9) as i64;
        bias.push(saturate_i32(bq - inp.zp as i64 * wsum));
        if let Some(out) = out_scale {
            let rq = Requant::from_real(s / out * extra);
            mult.push(rq.mult);
            shift.push(rq.shift);
        }
    }
    let acc_scales = ws.iter().map(|w| w * inp.scale).collect();
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
    )
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

/// Converts a float Transformer (`tiny_gpt`, `tiny_bert_generator`) with its observers.
pub fn convert_transformer(
    cfg: &ModelConfig,
    ps: &ParamStore,
    obs: &Observers,
    st: &Settings,
) -> Result<Int8Model> {
    let (c, f, v, t) = (cfg.embed_dim, cfg.ffn_dim, cfg.vocab_size, cfg.seq_len);
    let g = st.granularity;
    let frac = 2f64.powi(FRAC_BITS);
    let act = |name: &str| -> Result<Act> {
        let o = obs
            .get(name)
            .ok_or_else(|| Error::Internal(format!("calibration saw no `{name}`")))?;
        let (lo, hi) = o.range(st.calibration, st.percentile);
        let (scale, zp) = scale_zero_point(lo, hi);
        Ok(Act { scale, zp })
    };
    let x0 = act("x0")?;
    let (tok_emb, tok_s) = quantize_weights(param(ps, "tok_emb")?, v, c, g);
    let (pos_emb, pos_s) = quantize_weights(param(ps, "pos_emb")?, t, c, g);
    let rq = |s: f64| Requant::from_real(s * frac);
    let tok_rq: Vec<Requant> = tok_s.iter().map(|s| rq(s / x0.scale)).collect();
    let pos_rq: Vec<Requant> = pos_s.iter().map(|s| rq(s / x0.scale)).collect();
    let mut blocks = Vec::new();
    let mut x = x0;
    let heads = cfg.num_heads;
    let hd = c / heads;
    for i in 0..cfg.num_layers {
        let p = |n: &str| param(ps, &format!("blocks.{i}.{n}"));
        let a = |n: &str| act(&format!("blocks.{i}.{n}"));
        let (ln1, q, k, vv, att, res2, ln2, up, h, y) = (
            a("ln1")?,
            a("q")?,
            a("k")?,
            a("v")?,
            a("att")?,
            a("res2")?,
            a("ln2")?,
            a("up")?,
            a("h")?,
            a("y")?,
        );
        let (wqkv, bqkv) = (p("attn.qkv.weight")?, p("attn.qkv.bias")?);
        let part = |k: usize, out: Act| {
            linear(
                &wqkv[k * c * c..(k + 1) * c * c],
                &bqkv[k * c..(k + 1) * c],
                c,
                c,
                ln1,
                Some(out.scale),
                1.0,
                g,
            )
            .0
        };
        let gelu_lut = (-128..=127)
            .map(|qv: i32| quantize_i8(gelu(up.scale * (qv - up.zp) as f64), h.scale, h.zp))
            .collect();
        blocks.push(Block {
            ln1: layer_norm(p("ln1.weight")?, p("ln1.bias")?, x, ln1),
            q: part(0, q),
            k: part(1, k),
            v: part(2, vv),
            attn: AttnParams {
                heads,
                head_dim: hd,
                q_zp: q.zp,
                k_zp: k.zp,
                v_zp: vv.zp,
                softmax: Requant::from_real(q.scale * k.scale / (hd as f64).sqrt() * EXP_STEPS),
                pv: Requant::from_real(vv.scale / (PROB_ONE as f64 * att.scale)),
                out_zp: att.zp,
            },
            proj: linear(
                p("attn.proj.weight")?,
                p("attn.proj.bias")?,
                c,
                c,
                att,
                Some(res2.scale),
                frac,
                g,
            )
            .0,
            res1: rq(x.scale / res2.scale),
            x_zp: x.zp,
            res2_zp: res2.zp,
            ln2: layer_norm(p("ln2.weight")?, p("ln2.bias")?, res2, ln2),
            up: linear(
                p("ffn.up.weight")?,
                p("ffn.up.bias")?,
                c,
                f,
                ln2,
                Some(up.scale),
                1.0,
                g,
            )
            .0,
            up_zp: up.zp,
            gelu: gelu_lut,
            down: linear(
                p("ffn.down.weight")?,
                p("ffn.down.bias")?,
                f,
                c,
                h,
                Some(y.scale),
                frac,
                g,
            )
            .0,
            res2: rq(res2.scale / y.scale),
            y_zp: y.zp,
        });
        x = y;
    }
    let lnf = act("ln_f")?;
    let ln_f = layer_norm(param(ps, "ln_f.weight")?, param(ps, "ln_f.bias")?, x, lnf);
    let head_bias_f = param(ps, "head.bias")?;
    let (head_w, head) = match ps.entry("head.weight") {
        Some(e) => {
            let (l, scales) = linear(ps.get(e.id), head_bias_f, c, v, lnf, None, 1.0, g);
            (Some(l.w.clone()), (l, scales))
        }
        None => {
            // Tied: the head reads the token table with its per-row scales.
            let mut bias = Vec::with_capacity(v);
            let mut scales = Vec::with_capacity(v);
            for o in 0..v {
                let s = lnf.scale * tok_s[o];
                let wsum: i64 = tok_emb[o * c..(o + 1) * c].iter().map(|&x| x as i64).sum();
                let bq = (head_bias_f[o] as f64 / s).round().clamp(-1e9, 1e9) as i64;
                bias.push(saturate_i32(bq - lnf.zp as i64 * wsum));
                scales.push(s);
            }
            let l = Linear {
                bias,
                in_dim: c,
                out_dim: v,
                ..Linear::default()
            };
            (None, (l, scales))
        }
    };
    Ok(Int8Model {
        config: cfg.clone(),
        net: Net::Transformer(Transformer {
            tok_emb,
            tok_mult: tok_rq.iter().map(|r| r.mult).collect(),
            tok_shift: tok_rq.iter().map(|r| r.shift).collect(),
            pos_emb,
            pos_mult: pos_rq.iter().map(|r| r.mult).collect(),
            pos_shift: pos_rq.iter().map(|r| r.shift).collect(),
            x0_zp: x0.zp,
            blocks,
            ln_f,
            head_w,
            head_bias: head.0.bias,
            head_scale: head.1.iter().map(|&s| s as f32).collect(),
            exp_lut: exp_lut(),
        }),
    })
}

/// Converts a float `gru` / `lstm` (see `textzoo_rt::rnn` for the formats) with its observers
/// (the LSTM cells' ranges set `cell_bits`).
pub fn convert_recurrent(
    cfg: &ModelConfig,
    ps: &ParamStore,
    obs: &Observers,
    st: &Settings,
) -> Result<Int8Model> {
    use textzoo_rt::model::{Recurrent, RnnLayer};
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
    let mut layers = Vec::new();
    for l in 0..cfg.num_layers {
        let p = |n: &str| param(ps, &format!("rnn.{l}.{n}"));
        let in_dim = if l == 0 { e } else { h };
        let s_in = if l == 0 { s_emb } else { state };
        let (w_ih, sih) = quantize_weights(p("weight_ih")?, g, in_dim, st.granularity);
        let (w_hh, shh) = quantize_weights(p("weight_hh")?, g, h, st.granularity);
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
            (Some(w), s)
        }
        None => (None, es),
    };
    let head_bias = param(ps, "head.bias")?.to_vec();
    Ok(Int8Model {
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
    })
}
