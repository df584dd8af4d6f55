//! TFLite int8 export of `tiny_gpt` / `tiny_bert_generator`: int8 in (int32 token ids, or the
//! int8 embedded window), int8 logits out, builtin operators only, textzoo's weights and
//! quantization parameters wherever TFLite can carry them.
//!
//! The graph, per block (rows `T`, width `C`, `H` heads):
//!
//! ```text
//! layer norm  MEAN → SUB → L2_NORMALIZATION → FULLY_CONNECTED (diagonal: γ·√C, bias β)
//! q, k, v     FULLY_CONNECTED (textzoo's int8 rows, per-channel scales, int32 bias)
//! attention   RESHAPE/TRANSPOSE per head → BATCH_MATMUL q·kᵀ → ADD causal mask →
//!             SOFTMAX (β = 1/√d) → BATCH_MATMUL with v → TRANSPOSE/RESHAPE
//! residuals   FULLY_CONNECTED projection → ADD; FULLY_CONNECTED up → GELU →
//!             FULLY_CONNECTED down → ADD
//! ```
//!
//! What TFLite cannot express as textzoo computes it, and what was chosen instead:
//! - **Layer norm** has no int8 builtin. `x − mean` divided by its L2 norm is the normalised
//!   row up to `√C` (the variance's ε is dropped), and the diagonal fully connected layer
//!   applies `γ·√C` and `β` and lands on textzoo's layer-norm output scale and zero point.
//! - **Token and position tables** are per-row int8 in textzoo; `GATHER` carries one scale, so
//!   the tables in the graph are re-quantized to one scale each (the tied head keeps the
//!   per-row table). The flavour without embedding takes textzoo-rt's own `x0` instead.
//! - **Intermediate tensors textzoo never materialises** (attention scores, the projection
//!   and down outputs before their residual sums, the layer-norm steps) get scales derived
//!   from textzoo's: scores cover ±`clamp(√d·|q|·|k|, 8, 16)` (textzoo's softmax table spans
//!   16), residual branches the sum of both ranges.
//! - **Logits** are int8 with a scale from the range textzoo-rt's own logits reach on fixed
//!   pseudo-random windows (×1.25); textzoo keeps them as dequantized int32 accumulators.

mod builder;
pub mod recurrent;
pub mod schema;

use crate::artifact::ActParam;
use crate::error::{Error, Result};
use crate::export::rnn_spec::RnnSpec;
use crate::export::spec::{HeadBias, Lin, Norm, Spec, Table};
use builder::{Model, Options, Quant};
use schema::{op, ttype};
use textzoo_rt::model::{Int8Model, Net};

fn range(a: ActParam) -> f64 {
    let lo = a.scale * (-128 - a.zero_point) as f64;
    let hi = a.scale * (127 - a.zero_point) as f64;
    lo.abs().max(hi.abs())
}

fn q(a: ActParam) -> Quant {
    Quant::tensor(a.scale, a.zero_point)
}

/// Symmetric int8 quantization covering `±r`.
fn sym(r: f64) -> ActParam {
    ActParam {
        scale: (r / 127.0).max(1e-9),
        zero_point: 0,
    }
}

/// Per-row int8 rows re-quantized to one scale (the largest row scale).
fn per_tensor(qv: &[i8], scales: &[f64], cols: usize) -> (Vec<i8>, f64) {
    let s = scales.iter().cloned().fold(1e-12, f64::max);
    let out = qv
        .chunks_exact(cols)
        .zip(scales)
        .flat_map(|(row, &rs)| {
            row.iter()
                .map(move |&v| (v as f64 * rs / s).round().clamp(-127.0, 127.0) as i8)
        })
        .collect();
    (out, s)
}

struct G {
    m: Model,
    n: usize,
}

impl G {
    /// An int8 activation, its name made unique with a counter (except the graph output).
    fn act(&mut self, name: &str, shape: &[usize], a: ActParam) -> i32 {
        self.n += 1;
        let name = if name == "logits" {
            name.to_string()
        } else {
            format!("{name}:{}", self.n)
        };
        self.m.activation(&name, shape, ttype::INT8, Some(q(a)))
    }

    fn shape_const(&mut self, name: &str, shape: &[usize]) -> i32 {
        let v: Vec<i32> = shape.iter().map(|&d| d as i32).collect();
        self.m.const_i32(name, &[v.len()], &v, None)
    }

    fn reshape(&mut self, x: i32, a: ActParam, shape: &[usize], name: &str) -> i32 {
        let s = self.shape_const(&format!("{name}.shape"), shape);
        let out = self.act(name, shape, a);
        let new_shape = shape.iter().map(|&d| d as i32).collect();
        self.m.op(
            op::RESHAPE,
            &[x, s],
            &[out],
            Options::Reshape { shape: new_shape },
        );
        out
    }

    fn transpose(
        &mut self,
        x: i32,
        a: ActParam,
        perm: &[usize],
        shape: &[usize],
        name: &str,
    ) -> i32 {
        let p = self.shape_const(&format!("{name}.perm"), perm);
        let out = self.act(name, shape, a);
        self.m.op(op::TRANSPOSE, &[x, p], &[out], Options::None);
        out
    }

    /// `x[rows, in] · Wᵀ + b` into `out`.
    fn fc(&mut self, x: i32, rows: usize, l: &Lin, out: ActParam, name: &str) -> Result<i32> {
        let Lin::Int8 { w, ws, bias, s_in } = l else {
            return Err(Error::Internal("TFLite export of a float layer".into()));
        };
        let (o, i) = (ws.len(), w.len() / ws.len().max(1));
        let wt = self
            .m
            .const_i8(&format!("{name}.weight"), &[o, i], w, Quant::channels(ws));
        let bs: Vec<f64> = ws.iter().map(|s| s * s_in).collect();
        let bt = self.m.const_i32(
            &format!("{name}.bias"),
            &[o],
            bias,
            Some(Quant::channels(&bs)),
        );
        let y = self.act(name, &[rows, o], out);
        self.m.op(
            op::FULLY_CONNECTED,
            &[x, wt, bt],
            &[y],
            Options::FullyConnected,
        );
        Ok(y)
    }

    fn add(&mut self, a: i32, b: i32, shape: &[usize], out: ActParam, name: &str) -> i32 {
        let y = self.act(name, shape, out);
        self.m.op(op::ADD, &[a, b], &[y], Options::None);
        y
    }

    /// Layer norm of `x[rows, C]` (quantized `xq`) into `out`, as described in the module notes.
    fn norm(
        &mut self,
        x: i32,
        xq: ActParam,
        rows: usize,
        n: &Norm,
        out: ActParam,
        name: &str,
    ) -> Result<i32> {
        let c = n.gamma.len();
        let axes = self.m.const_i32(&format!("{name}.axes"), &[1], &[1], None);
        let mean = self.act(&format!("{name}.mean"), &[rows, 1], xq);
        self.m.op(
            op::MEAN,
            &[x, axes],
            &[mean],
            Options::Reducer { keep_dims: true },
        );
        let dq = ActParam {
            scale: 255.0 * xq.scale / 127.0,
            zero_point: 0,
        };
        let d = self.act(&format!("{name}.centered"), &[rows, c], dq);
        self.m.op(op::SUB, &[x, mean], &[d], Options::None);
        let uq = ActParam {
            scale: 1.0 / 128.0,
            zero_point: 0,
        };
        let u = self.act(&format!("{name}.unit"), &[rows, c], uq);
        self.m.op(op::L2_NORMALIZATION, &[d], &[u], Options::None);
        let root = (c as f64).sqrt();
        let mut w = vec![0i8; c * c];
        let mut ws = vec![1.0 / 127.0; c];
        for o in 0..c {
            let g = n.gamma[o] as f64 * root;
            if g != 0.0 {
                ws[o] = g.abs() / 127.0;
                w[o * c + o] = if g > 0.0 { 127 } else { -127 };
            }
        }
        let bias = n
            .beta
            .iter()
            .zip(&ws)
            .map(|(&b, &s)| (b as f64 / (s * uq.scale)).round().clamp(-2e9, 2e9) as i32)
            .collect();
        let lin = Lin::Int8 {
            w,
            ws,
            bias,
            s_in: uq.scale,
        };
        self.fc(u, rows, &lin, out, &format!("{name}.affine"))
    }
}

/// The range of `textzoo-rt`'s logits on fixed pseudo-random windows, with a margin.
pub fn logit_range(model: &Int8Model) -> f64 {
    use textzoo_rt::{rnn, transformer};
    let cfg = &model.config;
    let mut rng = textzoo_rt::Rng::new(0x7466_6c69_7465);
    let rows = if cfg.kind.predicts_every_position() {
        cfg.seq_len
    } else {
        1
    };
    let mut out = vec![0f32; rows * cfg.vocab_size];
    let mut r = 0f64;
    let mut tstate = None;
    let mut rstate = None;
    for _ in 0..16 {
        let w: Vec<u32> = (0..cfg.seq_len)
            .map(|_| rng.next_u32() % cfg.vocab_size as u32)
            .collect();
        let ran = match &model.net {
            Net::Transformer(t) => {
                let s = tstate.get_or_insert_with(|| transformer::State::new(cfg));
                transformer::window_logits(t, cfg, s, &w, &mut out)
            }
            Net::Recurrent(m) => {
                let s = rstate.get_or_insert_with(|| rnn::RnnState::new(cfg));
                rnn::window_logits(m, cfg, s, &w, &mut out)
            }
        };
        if ran.is_ok() {
            r = out.iter().fold(r, |m, &x| m.max(x.abs() as f64));
        }
    }
    (1.25 * r).max(1e-3)
}

/// The TFLite flatbuffer of the int8 `spec` (built from `model`).
pub fn write(spec: &Spec, model: &Int8Model, include_embedding: bool) -> Result<Vec<u8>> {
    let cfg = &spec.config;
    let (t, c, v, h) = (cfg.seq_len, cfg.embed_dim, cfg.vocab_size, cfg.num_heads);
    let hd = c / h;
    let internal = |what: &str| Error::Internal(format!("TFLite export: {what}"));
    let x0q = spec.x0.ok_or_else(|| internal("no x0 quantization"))?;
    let mut g = G {
        m: Model::new(),
        n: 0,
    };
    let (input, x3) = if include_embedding {
        let (Table::Int8 { q: tq, scales: ts }, Table::Int8 { q: pq, scales: ps }) =
            (&spec.tok, &spec.pos)
        else {
            return Err(internal("float tables"));
        };
        let ids = g.m.activation("input_ids", &[1, t], ttype::INT32, None);
        let (tok, s_tok) = per_tensor(tq, ts, c);
        let tok_t =
            g.m.const_i8("tok_emb", &[v, c], &tok, Quant::tensor(s_tok, 0));
        let tokq = ActParam {
            scale: s_tok,
            zero_point: 0,
        };
        let e = g.act("tok", &[1, t, c], tokq);
        g.m.op(op::GATHER, &[tok_t, ids], &[e], Options::Gather { axis: 0 });
        let (pos, s_pos) = per_tensor(&pq[..t * c], &ps[..t], c);
        let pos_t =
            g.m.const_i8("pos_emb", &[1, t, c], &pos, Quant::tensor(s_pos, 0));
        let x = g.add(e, pos_t, &[1, t, c], x0q, "x0");
        (ids, x)
    } else {
        let x = g.m.activation("x0", &[1, t, c], ttype::INT8, Some(q(x0q)));
        (x, x)
    };
    let mut x = g.reshape(x3, x0q, &[t, c], "x0.rows");
    let mut xq = x0q;
    let mask = spec.causal.then(|| {
        let m: Vec<i8> = (0..t * t)
            .map(|ij| if ij % t > ij / t { -128 } else { 0 })
            .collect();
        m
    });
    for (i, b) in spec.blocks.iter().enumerate() {
        let n = |s: &str| format!("blocks.{i}.{s}");
        let a = b
            .acts
            .ok_or_else(|| internal("block without quantization"))?;
        let ln1 = g.norm(x, xq, t, &b.ln1, a.ln1, &n("ln1"))?;
        let qq = g.fc(ln1, t, &b.q, a.q, &n("attn.q"))?;
        let kk = g.fc(ln1, t, &b.k, a.k, &n("attn.k"))?;
        let vv = g.fc(ln1, t, &b.v, a.v, &n("attn.v"))?;
        let heads =
            |g: &mut G, x: i32, aq: ActParam, perm: &[usize], shape: &[usize], name: &str| {
                let r = g.reshape(x, aq, &[t, h, hd], &format!("{name}.split"));
                g.transpose(r, aq, perm, shape, name)
            };
        let qh = heads(&mut g, qq, a.q, &[1, 0, 2], &[h, t, hd], &n("q.heads"));
        let kh = heads(&mut g, kk, a.k, &[1, 2, 0], &[h, hd, t], &n("k.heads"));
        let vh = heads(&mut g, vv, a.v, &[1, 0, 2], &[h, t, hd], &n("v.heads"));
        let root = (hd as f64).sqrt();
        let r_real = (root * range(a.q) * range(a.k)).clamp(8.0, 16.0);
        let sq = sym(r_real * root);
        let mut s = g.act(&n("scores"), &[h, t, t], sq);
        g.m.op(op::BATCH_MATMUL, &[qh, kh], &[s], Options::None);
        if let Some(mask) = &mask {
            let mt = g.m.const_i8(
                &n("causal_mask"),
                &[t, t],
                mask,
                Quant::tensor(2.0 * sq.scale, 0),
            );
            s = g.add(s, mt, &[h, t, t], sq, &n("scores.masked"));
        }
        let pq = ActParam {
            scale: 1.0 / 256.0,
            zero_point: -128,
        };
        let p = g.act(&n("probs"), &[h, t, t], pq);
        g.m.op(
            op::SOFTMAX,
            &[s],
            &[p],
            Options::Softmax {
                beta: (1.0 / root) as f32,
            },
        );
        let o = g.act(&n("att.heads"), &[h, t, hd], a.att);
        g.m.op(op::BATCH_MATMUL, &[p, vh], &[o], Options::None);
        let o = g.transpose(o, a.att, &[1, 0, 2], &[t, h, hd], &n("att.rows"));
        let att = g.reshape(o, a.att, &[t, c], &n("att"));
        let pr = g.fc(
            att,
            t,
            &b.proj,
            sym(range(a.res2) + range(xq)),
            &n("attn.proj"),
        )?;
        let res2 = g.add(pr, x, &[t, c], a.res2, &n("res2"));
        let ln2 = g.norm(res2, a.res2, t, &b.ln2, a.ln2, &n("ln2"))?;
        let up = g.fc(ln2, t, &b.up, a.up, &n("ffn.up"))?;
        let hh = g.act(&n("h"), &[t, cfg.ffn_dim], a.h);
        g.m.op(op::GELU, &[up], &[hh], Options::None);
        let dn = g.fc(
            hh,
            t,
            &b.down,
            sym(range(a.y) + range(a.res2)),
            &n("ffn.down"),
        )?;
        x = g.add(dn, res2, &[t, c], a.y, &n("y"));
        xq = a.y;
    }
    let rows = if spec.last_only { 1 } else { t };
    if spec.last_only {
        let idx = g.m.const_i32("last.index", &[1], &[t as i32 - 1], None);
        let last = g.act("last", &[1, c], xq);
        g.m.op(op::GATHER, &[x, idx], &[last], Options::Gather { axis: 0 });
        x = last;
    }
    let lnq = spec
        .ln_f_act
        .ok_or_else(|| internal("no ln_f quantization"))?;
    let lnf = g.norm(x, xq, rows, &spec.ln_f, lnq, "ln_f")?;
    let tied;
    let head = match (&spec.head, &spec.head_bias, &spec.tok) {
        (Some(l), _, _) => l,
        (None, HeadBias::Int8 { bias, ws, s_in }, Table::Int8 { q: tq, .. }) => {
            tied = Lin::Int8 {
                w: tq.clone(),
                ws: ws.clone(),
                bias: bias.clone(),
                s_in: *s_in,
            };
            &tied
        }
        _ => return Err(internal("float head")),
    };
    let lq = sym(logit_range(model));
    let logits = g.fc(lnf, rows, head, lq, "head")?;
    let out_shape: Vec<usize> = if spec.last_only {
        vec![1, v]
    } else {
        vec![1, t, v]
    };
    let out = g.reshape(logits, lq, &out_shape, "logits");
    g.m.set_io(&[input], &[out]);
    Ok(g.m.finish(&format!(
        "textzoo {} int8 ({})",
        cfg.kind.name(),
        if include_embedding {
            "token ids in"
        } else {
            "int8 embedded window in"
        }
    )))
}

/// The int8 embedded window `x0` textzoo-rt computes for `tokens`: the input of the TFLite
/// flavour without embedding (a `gru`/`lstm`'s is the token table's rows).
pub fn embedded_window(model: &Int8Model, tokens: &[u32]) -> Result<Vec<i8>> {
    let cfg = &model.config;
    match &model.net {
        Net::Transformer(t) => {
            textzoo_rt::transformer::embed_window(t, cfg, tokens).map_err(Error::Usage)
        }
        Net::Recurrent(m) => {
            let e = cfg.embed_dim;
            tokens
                .iter()
                .map(|&id| {
                    let i = id as usize;
                    m.tok_emb.get(i * e..(i + 1) * e).ok_or_else(|| {
                        Error::Usage(format!(
                            "token id {id} outside the vocabulary of {}",
                            cfg.vocab_size
                        ))
                    })
                })
                .collect::<Result<Vec<_>>>()
                .map(|rows| rows.concat())
        }
    }
}

/// `embedding.h` for the flavour without embedding: textzoo's int8 token and position tables
/// with the per-row multipliers that sum them into the graph's input `x0`.
pub fn embedding_header(model: &Int8Model, spec: &Spec) -> Result<String> {
    use std::fmt::Write;
    let Net::Transformer(m) = &model.net else {
        return Err(Error::Usage(
            "only Transformers have an embedding header".into(),
        ));
    };
    let cfg = &model.config;
    let x0 = spec.x0.map(|a| a.zero_point).unwrap_or(m.x0_zp);
    let mut s = String::new();
    let _ = write!(
        s,
        "/* embedding.h — generated by textzoo (export); do not edit.\n\
         * The input of model_int8_no_embedding.tflite, x0[t][c] (int8, zero point {x0}), is\n\
         *   x0 = sat8({x0} + rdiv(rq(tok_emb[id][c], tok_mult[id], tok_shift[id])\n\
         *                      + rq(pos_emb[t][c], pos_mult[t], pos_shift[t]), 2^8))\n\
         * with rq the TFLite fixed-point requantization (SaturatingRoundingDoublingHighMul,\n\
         * then RoundingDivideByPOT) and rdiv a rounding division by a power of two. */\n\
         #ifndef TEXTZOO_EMBEDDING_H\n#define TEXTZOO_EMBEDDING_H\n#include <stdint.h>\n\n\
         #define TZ_VOCAB_SIZE {}\n#define TZ_SEQ_LEN {}\n#define TZ_EMBED_DIM {}\n#define TZ_X0_ZERO_POINT {x0}\n\n",
        cfg.vocab_size, cfg.seq_len, cfg.embed_dim
    );
    let arr_i32 = |s: &mut String, name: &str, v: &[i32]| {
        let items: Vec<String> = v.iter().map(|x| x.to_string()).collect();
        let _ = writeln!(
            s,
            "static const int32_t {name}[{}] = {{{}}};\n",
            v.len(),
            items.join(", ")
        );
    };
    c_table_i8(&mut s, "tok_emb", &m.tok_emb, cfg.embed_dim);
    arr_i32(&mut s, "tok_mult", &m.tok_mult);
    arr_i32(&mut s, "tok_shift", &m.tok_shift);
    c_table_i8(&mut s, "pos_emb", &m.pos_emb, cfg.embed_dim);
    arr_i32(&mut s, "pos_mult", &m.pos_mult);
    arr_i32(&mut s, "pos_shift", &m.pos_shift);
    s.push_str("#endif\n");
    Ok(s)
}

/// A C table `static const int8_t name[rows][cols]`.
fn c_table_i8(s: &mut String, name: &str, v: &[i8], cols: usize) {
    use std::fmt::Write;
    let _ = writeln!(
        s,
        "static const int8_t {name}[{}][{cols}] = {{",
        v.len() / cols
    );
    for row in v.chunks_exact(cols) {
        let items: Vec<String> = row.iter().map(|x| x.to_string()).collect();
        let _ = writeln!(s, "  {{{}}},", items.join(", "));
    }
    s.push_str("};\n\n");
}

/// `embedding.h` for a `gru`/`lstm` without embedding: the graph's input `x0[t]` is the int8
/// token table's row `tok_emb[id]` as it is (one scale, zero point 0).
pub fn rnn_embedding_header(spec: &RnnSpec) -> String {
    use std::fmt::Write;
    let cfg = &spec.config;
    let mut s = String::new();
    let _ = write!(
        s,
        "/* embedding.h — generated by textzoo (export); do not edit.\n\
         * The input of model_int8_no_embedding.tflite, x0[t][c] (int8, scale TZ_X0_SCALE,\n\
         * zero point 0), is the token table's row: x0[t][c] = tok_emb[id_t][c]. */\n\
         #ifndef TEXTZOO_EMBEDDING_H\n#define TEXTZOO_EMBEDDING_H\n#include <stdint.h>\n\n\
         #define TZ_VOCAB_SIZE {}\n#define TZ_SEQ_LEN {}\n#define TZ_EMBED_DIM {}\n#define TZ_X0_SCALE {:e}f\n#define TZ_X0_ZERO_POINT 0\n\n",
        cfg.vocab_size, cfg.seq_len, cfg.embed_dim, spec.tok_scale as f32
    );
    c_table_i8(&mut s, "tok_emb", &spec.tok_emb, cfg.embed_dim);
    s.push_str("#endif\n");
    s
}
