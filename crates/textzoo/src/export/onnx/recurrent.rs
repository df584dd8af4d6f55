//! `gru` / `lstm` as ONNX (opset 17): `Gather` → per layer ONNX `GRU`
//! (`linear_before_reset = 1`, PyTorch's formulation) or `LSTM` → `Gemm` head. textzoo names
//! and orders its recurrent weights like PyTorch (GRU gates r, z, n; LSTM i, f, g, o); ONNX
//! wants GRU z, r, h and LSTM i, o, f, c, so the gate blocks are reordered.
//!
//! From the float model the weights are float initializers. From the int8 model (QDQ) they
//! are textzoo's int8 rows behind `DequantizeLinear` with its per-row scales (`axis = 1` of
//! ONNX's `[1, gates·H, in]`), the biases textzoo's Q20 int32 values behind
//! `DequantizeLinear` (scale `2⁻²⁰`), the token table int8 gathered then dequantized, and the
//! head int8 per row. The recurrent state itself runs in float inside `GRU`/`LSTM`: textzoo
//! keeps it in int16 Q0.15 with table-interpolated sigmoid/tanh, which ONNX cannot express at
//! opset 17 (int16 `QuantizeLinear` needs opset 21, and the state is internal to the
//! operator), so the QDQ graph agrees with `textzoo-rt` within the tables' and the state's
//! rounding rather than bit for bit.

use super::graph::{Attr, Graph};
use super::proto::dtype;
use crate::artifact::FloatFile;
use crate::error::{Error, Result};
use crate::export::rnn_spec::{RnnSpec, Rows};
use textzoo_rt::rnn::PRE_BITS;
use textzoo_rt::{Kind, ModelConfig};

/// The rows of `w` (`[gates·h, cols]`) with its gate blocks in `order`.
fn reorder<T: Copy>(w: &[T], h: usize, cols: usize, order: &[usize]) -> Vec<T> {
    order
        .iter()
        .flat_map(|&g| w[g * h * cols..(g + 1) * h * cols].iter().copied())
        .collect()
}

/// ONNX's gate order, as indices into textzoo's.
fn onnx_order(kind: Kind) -> Result<(&'static str, &'static [usize])> {
    match kind {
        Kind::Gru => Ok(("GRU", &[1, 0, 2])),
        Kind::Lstm => Ok(("LSTM", &[0, 3, 1, 2])),
        _ => Err(Error::Internal(
            "recurrent ONNX export of a Transformer".into(),
        )),
    }
}

/// Where the weights come from: the float model's parameters or the int8 model.
enum Weights<'a> {
    Float(&'a FloatFile),
    Int8(&'a RnnSpec),
}

impl Weights<'_> {
    fn config(&self) -> &ModelConfig {
        match self {
            Weights::Float(f) => &f.meta.config,
            Weights::Int8(s) => &s.config,
        }
    }

    fn param(f: &FloatFile, n: &str) -> Result<Vec<f32>> {
        let ps = f.model.params();
        ps.entry(n)
            .map(|e| ps.get(e.id).to_vec())
            .ok_or_else(|| Error::Internal(format!("float model has no parameter `{n}`")))
    }

    /// The embedded window `[T, E]` (float) of the token ids `ids` (`[T]`).
    fn embed(&self, g: &mut Graph, ids: &str) -> Result<String> {
        let cfg = self.config();
        let (v, e) = (cfg.vocab_size, cfg.embed_dim);
        Ok(match self {
            Weights::Float(f) => {
                let tok = g.f32("tok_emb", &[v, e], &Self::param(f, "tok_emb")?);
                g.node("Gather", &[&tok, ids], vec![("axis", Attr::Int(0))], "emb")
            }
            Weights::Int8(s) => {
                let tok = g.i8("tok_emb", &[v, e], &s.tok_emb);
                let rows = g.node(
                    "Gather",
                    &[&tok, ids],
                    vec![("axis", Attr::Int(0))],
                    "emb.q",
                );
                let scale = g.f32("tok_emb.scale", &[], &[s.tok_scale as f32]);
                let zp = g.i8("tok_emb.zero_point", &[], &[0]);
                g.node("DequantizeLinear", &[&rows, &scale, &zp], vec![], "emb")
            }
        })
    }

    /// Layer `l`'s `W`, `R` (`[1, gates·H, cols]`, ONNX gate order) and `B` (`[1, 2·gates·H]`).
    fn layer(&self, g: &mut Graph, l: usize, order: &[usize]) -> Result<[String; 3]> {
        let cfg = self.config();
        let h = cfg.hidden_dim;
        let n = |s: &str| format!("rnn.{l}.{s}");
        match self {
            Weights::Float(f) => {
                let width = if l == 0 { cfg.embed_dim } else { h };
                let gates = order.len();
                let w = reorder(&Self::param(f, &n("weight_ih"))?, h, width, order);
                let r = reorder(&Self::param(f, &n("weight_hh"))?, h, h, order);
                let mut b = reorder(&Self::param(f, &n("bias_ih"))?, h, 1, order);
                b.extend(reorder(&Self::param(f, &n("bias_hh"))?, h, 1, order));
                Ok([
                    g.f32(&n("W"), &[1, gates * h, width], &w),
                    g.f32(&n("R"), &[1, gates * h, h], &r),
                    g.f32(&n("B"), &[1, 2 * gates * h], &b),
                ])
            }
            Weights::Int8(s) => {
                let ly = &s.layers[l];
                // textzoo adds every bias on the input side except the GRU's b_hn, which sits
                // inside the reset gate's product: ONNX's Rb of the h block.
                let mut rb = vec![0i32; ly.bias.len()];
                if !ly.bias_hn.is_empty() {
                    rb[2 * h..].copy_from_slice(&ly.bias_hn);
                }
                let mut b = reorder(&ly.bias, h, 1, order);
                b.extend(reorder(&rb, h, 1, order));
                let bq = g.i32(&n("B.q"), &[1, b.len()], &b);
                let scale = g.f32(&n("B.scale"), &[], &[2f32.powi(-PRE_BITS)]);
                let zp = g.i32(&n("B.zero_point"), &[], &[0]);
                let bias = g.node("DequantizeLinear", &[&bq, &scale, &zp], vec![], &n("B"));
                Ok([
                    gate_rows(g, &n("W"), &ly.w_ih, h, order),
                    gate_rows(g, &n("R"), &ly.w_hh, h, order),
                    bias,
                ])
            }
        }
    }

    /// The head's `[V, H]` weight and `[V]` bias.
    fn head(&self, g: &mut Graph, tok: Option<&str>) -> Result<(String, String)> {
        let cfg = self.config();
        let (v, h) = (cfg.vocab_size, cfg.hidden_dim);
        Ok(match self {
            Weights::Float(f) => {
                let w = match (f.model.params().entry("head.weight"), tok) {
                    (None, Some(t)) => t.to_string(),
                    _ => g.f32("head.weight", &[v, h], &Self::param(f, "head.weight")?),
                };
                (w, g.f32("head.bias", &[v], &Self::param(f, "head.bias")?))
            }
            Weights::Int8(s) => {
                let w = g.i8("head.weight", &[v, h], &s.head.w);
                let sc: Vec<f32> = s.head.scales.iter().map(|&x| x as f32).collect();
                let scale = g.f32("head.weight.scale", &[v], &sc);
                let zp = g.i8("head.weight.zero_point", &[v], &vec![0; v]);
                let w = g.node(
                    "DequantizeLinear",
                    &[&w, &scale, &zp],
                    vec![("axis", Attr::Int(0))],
                    "head.weight.dq",
                );
                (w, g.f32("head.bias", &[v], &s.head_bias))
            }
        })
    }
}

/// int8 gate rows `[1, gates·H, cols]` in ONNX order behind a per-row `DequantizeLinear`.
fn gate_rows(g: &mut Graph, name: &str, m: &Rows, h: usize, order: &[usize]) -> String {
    let rows = m.scales.len();
    let w = g.i8(
        &format!("{name}.q"),
        &[1, rows, m.cols],
        &reorder(&m.w, h, m.cols, order),
    );
    let sc: Vec<f32> = reorder(&m.scales, h, 1, order)
        .iter()
        .map(|&x| x as f32)
        .collect();
    let scale = g.f32(&format!("{name}.scale"), &[rows], &sc);
    let zp = g.i8(&format!("{name}.zero_point"), &[rows], &vec![0; rows]);
    g.node(
        "DequantizeLinear",
        &[&w, &scale, &zp],
        vec![("axis", Attr::Int(1))],
        name,
    )
}

fn write(weights: Weights, doc: &str) -> Result<Vec<u8>> {
    let cfg = weights.config().clone();
    let (t, h, v) = (cfg.seq_len, cfg.hidden_dim, cfg.vocab_size);
    let (op, order) = onnx_order(cfg.kind)?;
    let mut g = Graph::default();
    let ids = g.input("input_ids", dtype::INT64, &[1, t as i64]);
    let flat = g.i64("ids.shape", &[1], &[t as i64]);
    let ids = g.node("Reshape", &[&ids, &flat], vec![], "ids");
    let mut x = weights.embed(&mut g, &ids)?;
    let mut width = cfg.embed_dim;
    for l in 0..cfg.num_layers {
        let n = |s: &str| format!("rnn.{l}.{s}");
        let seq = g.i64(&n("in.shape"), &[3], &[t as i64, 1, width as i64]);
        let xs = g.node("Reshape", &[&x, &seq], vec![], &n("in"));
        let [w, r, b] = weights.layer(&mut g, l, order)?;
        let mut attrs = vec![("hidden_size", Attr::Int(h as i64))];
        if cfg.kind == Kind::Gru {
            attrs.push(("linear_before_reset", Attr::Int(1)));
        }
        let y = g.node(op, &[&xs, &w, &r, &b], attrs, &n("y"));
        let rows = g.i64(&n("out.shape"), &[2], &[t as i64, h as i64]);
        x = g.node("Reshape", &[&y, &rows], vec![], &n("out"));
        width = h;
    }
    // A tied float head reuses the token table initializer.
    let (hw, hb) = weights.head(&mut g, Some("tok_emb"))?;
    let logits = g.node(
        "Gemm",
        &[&x, &hw, &hb],
        vec![("transB", Attr::Int(1))],
        "head",
    );
    let shape = g.i64("logits.shape", &[3], &[1, t as i64, v as i64]);
    g.node_named("Reshape", &[&logits, &shape], vec![], "logits");
    g.output("logits", dtype::FLOAT, &[1, t as i64, v as i64]);
    let meta = [
        ("textzoo.model", cfg.kind.name().to_string()),
        ("textzoo.seq_len", t.to_string()),
        ("textzoo.vocab_size", v.to_string()),
    ];
    Ok(g.finish(cfg.kind.name(), doc, &meta))
}

/// The float `gru` / `lstm` model.
pub fn float(f: &FloatFile) -> Result<Vec<u8>> {
    write(
        Weights::Float(f),
        "textzoo float recurrent model: one window of token ids in, logits at every position out (state starts at zero)",
    )
}

/// The int8 `gru` / `lstm` model as QDQ.
pub fn qdq(s: &RnnSpec) -> Result<Vec<u8>> {
    write(
        Weights::Int8(s),
        "textzoo int8 recurrent model as QDQ: textzoo's int8 weights with their per-row scales and Q20 int32 biases; the state runs in float inside GRU/LSTM (textzoo keeps it in int16 Q0.15)",
    )
}
