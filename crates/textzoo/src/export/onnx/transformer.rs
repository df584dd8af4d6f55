//! `tiny_gpt` / `tiny_bert_generator` as an ONNX graph (opset 17), float or QDQ.
//!
//! One window of `seq_len` token ids (`input_ids`, int64 `[1, T]`) in, logits out (`[1, T,
//! vocab]` for `tiny_gpt`, `[1, vocab]` for `tiny_bert_generator`). The graph is the float
//! model's: `Gather` + position table, per block `LayerNormalization` → `Gemm` q/k/v → per-head
//! `MatMul`, scale, causal mask, `Softmax`, `MatMul` → `Gemm` projection ⊕ residual →
//! `LayerNormalization` → `Gemm` up → GELU (tanh form, decomposed: opset 17 has no `Gelu`) →
//! `Gemm` down ⊕ residual; final `LayerNormalization` and `Gemm` head (tied heads reuse the
//! token table).
//!
//! QDQ (from the int8 model): weights are int8 initializers behind `DequantizeLinear` with
//! textzoo's per-row scales (`axis = 0`), biases int32 behind `DequantizeLinear` (scale
//! `s_in · s_w`), and every activation textzoo quantizes passes through a
//! `QuantizeLinear`/`DequantizeLinear` pair with its scale and zero point — including the
//! softmax probabilities (uint8, `1/255`, as `textzoo-rt` keeps them).

use super::graph::{Attr, Graph};
use super::proto::dtype;
use crate::artifact::ActParam;
use crate::export::spec::{HeadBias, Lin, Norm, Spec, Table};
use textzoo_rt::kernels::PROB_ONE;

/// The QDQ-or-float operations of the writer.
struct W {
    g: Graph,
}

impl W {
    fn scalar(&mut self, name: &str, v: f32) -> String {
        self.g.f32(name, &[], &[v])
    }

    /// `QuantizeLinear` → `DequantizeLinear` with `a` (int8), or `x` unchanged (float).
    fn act(&mut self, x: &str, a: Option<ActParam>, name: &str) -> String {
        let Some(a) = a else { return x.into() };
        let s = self.g.f32(&format!("{name}.scale"), &[], &[a.scale as f32]);
        let z = self
            .g
            .i8(&format!("{name}.zero_point"), &[], &[a.zero_point as i8]);
        let q = self
            .g
            .node("QuantizeLinear", &[x, &s, &z], vec![], &format!("{name}.q"));
        self.g.node(
            "DequantizeLinear",
            &[&q, &s, &z],
            vec![],
            &format!("{name}.dq"),
        )
    }

    /// A per-row dequantized int8 matrix `[rows, cols]`, or the float one.
    fn matrix_i8(&mut self, name: &str, q: &[i8], ws: &[f64], cols: usize) -> String {
        let rows = ws.len();
        let w = self.g.i8(name, &[rows, cols], q);
        let s: Vec<f32> = ws.iter().map(|&x| x as f32).collect();
        let s = self.g.f32(&format!("{name}.scale"), &[rows], &s);
        let z = self
            .g
            .i8(&format!("{name}.zero_point"), &[rows], &vec![0; rows]);
        self.g.node(
            "DequantizeLinear",
            &[&w, &s, &z],
            vec![("axis", Attr::Int(0))],
            &format!("{name}.dq"),
        )
    }

    fn bias_i32(&mut self, name: &str, b: &[i32], ws: &[f64], s_in: f64) -> String {
        let n = b.len();
        let bq = self.g.i32(name, &[n], b);
        let s: Vec<f32> = ws.iter().map(|&w| (w * s_in) as f32).collect();
        let s = self.g.f32(&format!("{name}.scale"), &[n], &s);
        let z = self.g.i32(&format!("{name}.zero_point"), &[n], &vec![0; n]);
        self.g.node(
            "DequantizeLinear",
            &[&bq, &s, &z],
            vec![("axis", Attr::Int(0))],
            &format!("{name}.dq"),
        )
    }

    /// The weight and bias tensors of `l` (`[rows, cols]`).
    fn lin_tensors(&mut self, l: &Lin, name: &str, cols: usize) -> (String, String) {
        match l {
            Lin::Float { w, b } => {
                let rows = b.len();
                let wn = self.g.f32(&format!("{name}.weight"), &[rows, cols], w);
                let bn = self.g.f32(&format!("{name}.bias"), &[rows], b);
                (wn, bn)
            }
            Lin::Int8 { w, ws, bias, s_in } => {
                let wn = self.matrix_i8(&format!("{name}.weight"), w, ws, cols);
                let bn = self.bias_i32(&format!("{name}.bias"), bias, ws, *s_in);
                (wn, bn)
            }
        }
    }

    /// `x[T, cols] · Wᵀ + b`.
    fn gemm(&mut self, x: &str, l: &Lin, name: &str, cols: usize) -> String {
        let (w, b) = self.lin_tensors(l, name, cols);
        self.g
            .node("Gemm", &[x, &w, &b], vec![("transB", Attr::Int(1))], name)
    }

    fn norm(&mut self, x: &str, n: &Norm, name: &str) -> String {
        let c = n.gamma.len();
        let gm = self.g.f32(&format!("{name}.weight"), &[c], &n.gamma);
        let bt = self.g.f32(&format!("{name}.bias"), &[c], &n.beta);
        self.g.node(
            "LayerNormalization",
            &[x, &gm, &bt],
            vec![("axis", Attr::Int(-1)), ("epsilon", Attr::Float(n.eps))],
            name,
        )
    }

    /// `0.5 · x · (1 + tanh(√(2/π) · (x + 0.044715 · x³)))`, the float engine's GELU.
    fn gelu(&mut self, x: &str, name: &str) -> String {
        let k = self.scalar(
            &format!("{name}.k"),
            (2.0f64 / std::f64::consts::PI).sqrt() as f32,
        );
        let a = self.scalar(&format!("{name}.a"), 0.044_715);
        let half = self.scalar(&format!("{name}.half"), 0.5);
        let one = self.scalar(&format!("{name}.one"), 1.0);
        let x2 = self.g.node("Mul", &[x, x], vec![], name);
        let x3 = self.g.node("Mul", &[&x2, x], vec![], name);
        let ax3 = self.g.node("Mul", &[&x3, &a], vec![], name);
        let inner = self.g.node("Add", &[x, &ax3], vec![], name);
        let u = self.g.node("Mul", &[&inner, &k], vec![], name);
        let t = self.g.node("Tanh", &[&u], vec![], name);
        let t1 = self.g.node("Add", &[&t, &one], vec![], name);
        let hx = self.g.node("Mul", &[x, &half], vec![], name);
        self.g.node("Mul", &[&hx, &t1], vec![], name)
    }

    /// `[T, C]` → per head `[H, T, hd]` (or `[H, hd, T]` with `keys`).
    fn heads(&mut self, x: &str, t: usize, h: usize, hd: usize, keys: bool, name: &str) -> String {
        let shape = self.g.i64(
            &format!("{name}.shape"),
            &[3],
            &[t as i64, h as i64, hd as i64],
        );
        let r = self.g.node("Reshape", &[x, &shape], vec![], name);
        let perm = if keys { vec![1, 2, 0] } else { vec![1, 0, 2] };
        self.g
            .node("Transpose", &[&r], vec![("perm", Attr::Ints(perm))], name)
    }
}

/// The serialized ONNX model of `spec`.
pub fn write(spec: &Spec, doc: &str) -> Vec<u8> {
    let cfg = &spec.config;
    let (t, c, v, h) = (cfg.seq_len, cfg.embed_dim, cfg.vocab_size, cfg.num_heads);
    let hd = c / h;
    let mut w = W {
        g: Graph::default(),
    };
    let ids = w.g.input("input_ids", dtype::INT64, &[1, t as i64]);
    let flat = w.g.i64("ids.shape", &[1], &[t as i64]);
    let ids = w.g.node("Reshape", &[&ids, &flat], vec![], "ids");
    // Embeddings.
    let tok = match &spec.tok {
        Table::Float(x) => w.g.f32("tok_emb", &[v, c], x),
        Table::Int8 { q, scales } => w.matrix_i8("tok_emb", q, scales, c),
    };
    let pos = match &spec.pos {
        Table::Float(x) => w.g.f32("pos_emb", &[t, c], &x[..t * c]),
        Table::Int8 { q, scales } => w.matrix_i8("pos_emb", &q[..t * c], &scales[..t], c),
    };
    let te =
        w.g.node("Gather", &[&tok, &ids], vec![("axis", Attr::Int(0))], "tok");
    let x0 = w.g.node("Add", &[&te, &pos], vec![], "x0");
    let mut x = w.act(&x0, spec.x0, "x0");
    // The causal mask: 0 on and below the diagonal, a large negative value above.
    let mask: Vec<f32> = (0..t * t)
        .map(|ij| if ij % t > ij / t { -1e9 } else { 0.0 })
        .collect();
    let mask = spec.causal.then(|| w.g.f32("causal_mask", &[t, t], &mask));
    let inv_sqrt = w.scalar("attn.scale", 1.0 / (hd as f32).sqrt());
    for (i, b) in spec.blocks.iter().enumerate() {
        let n = |s: &str| format!("blocks.{i}.{s}");
        let a = b.acts;
        let ln1 = w.norm(&x, &b.ln1, &n("ln1"));
        let ln1 = w.act(&ln1, a.map(|a| a.ln1), &n("ln1"));
        let q = w.gemm(&ln1, &b.q, &n("attn.q"), c);
        let q = w.act(&q, a.map(|a| a.q), &n("q"));
        let k = w.gemm(&ln1, &b.k, &n("attn.k"), c);
        let k = w.act(&k, a.map(|a| a.k), &n("k"));
        let vv = w.gemm(&ln1, &b.v, &n("attn.v"), c);
        let vv = w.act(&vv, a.map(|a| a.v), &n("v"));
        let qh = w.heads(&q, t, h, hd, false, &n("q.heads"));
        let kh = w.heads(&k, t, h, hd, true, &n("k.heads"));
        let vh = w.heads(&vv, t, h, hd, false, &n("v.heads"));
        let s = w.g.node("MatMul", &[&qh, &kh], vec![], &n("scores"));
        let mut s = w.g.node("Mul", &[&s, &inv_sqrt], vec![], &n("scores"));
        if let Some(m) = &mask {
            s = w.g.node("Add", &[&s, m], vec![], &n("scores"));
        }
        let p =
            w.g.node("Softmax", &[&s], vec![("axis", Attr::Int(-1))], &n("probs"));
        let p = if a.is_some() {
            let ps = w.g.f32(&n("probs.scale"), &[], &[1.0 / PROB_ONE as f32]);
            let pz = w.g.u8(&n("probs.zero_point"), &[], &[0]);
            let q =
                w.g.node("QuantizeLinear", &[&p, &ps, &pz], vec![], &n("probs.q"));
            w.g.node("DequantizeLinear", &[&q, &ps, &pz], vec![], &n("probs.dq"))
        } else {
            p
        };
        let o = w.g.node("MatMul", &[&p, &vh], vec![], &n("att"));
        let o = w.g.node(
            "Transpose",
            &[&o],
            vec![("perm", Attr::Ints(vec![1, 0, 2]))],
            &n("att"),
        );
        let shape = w.g.i64(&n("att.shape"), &[2], &[t as i64, c as i64]);
        let o = w.g.node("Reshape", &[&o, &shape], vec![], &n("att"));
        let o = w.act(&o, a.map(|a| a.att), &n("att"));
        let pr = w.gemm(&o, &b.proj, &n("attn.proj"), c);
        let res2 = w.g.node("Add", &[&pr, &x], vec![], &n("res2"));
        let res2 = w.act(&res2, a.map(|a| a.res2), &n("res2"));
        let ln2 = w.norm(&res2, &b.ln2, &n("ln2"));
        let ln2 = w.act(&ln2, a.map(|a| a.ln2), &n("ln2"));
        let up = w.gemm(&ln2, &b.up, &n("ffn.up"), c);
        let up = w.act(&up, a.map(|a| a.up), &n("up"));
        let hh = w.gelu(&up, &n("gelu"));
        let hh = w.act(&hh, a.map(|a| a.h), &n("h"));
        let dn = w.gemm(&hh, &b.down, &n("ffn.down"), cfg.ffn_dim);
        let y = w.g.node("Add", &[&dn, &res2], vec![], &n("y"));
        x = w.act(&y, a.map(|a| a.y), &n("y"));
    }
    if spec.last_only {
        let st = w.g.i64("last.starts", &[1], &[t as i64 - 1]);
        let en = w.g.i64("last.ends", &[1], &[t as i64]);
        let ax = w.g.i64("last.axes", &[1], &[0]);
        x = w.g.node("Slice", &[&x, &st, &en, &ax], vec![], "last");
    }
    let lnf = w.norm(&x, &spec.ln_f, "ln_f");
    let lnf = w.act(&lnf, spec.ln_f_act, "ln_f");
    let (hw, hb) = match &spec.head {
        Some(l) => w.lin_tensors(l, "head", c),
        None => {
            let b = match &spec.head_bias {
                HeadBias::Float(b) => w.g.f32("head.bias", &[v], b),
                HeadBias::Int8 { bias, ws, s_in } => w.bias_i32("head.bias", bias, ws, *s_in),
            };
            (tok.clone(), b)
        }
    };
    let logits = w.g.node(
        "Gemm",
        &[&lnf, &hw, &hb],
        vec![("transB", Attr::Int(1))],
        "head",
    );
    let rows = if spec.last_only { 1 } else { t };
    let out: Vec<i64> = if spec.last_only {
        vec![1, v as i64]
    } else {
        vec![1, rows as i64, v as i64]
    };
    let shape = w.g.i64("logits.shape", &[out.len()], &out);
    w.g.node_named("Reshape", &[&logits, &shape], vec![], "logits");
    w.g.output("logits", dtype::FLOAT, &out);
    let meta = [
        ("textzoo.model", cfg.kind.name().to_string()),
        ("textzoo.seq_len", t.to_string()),
        ("textzoo.vocab_size", v.to_string()),
    ];
    w.g.finish(cfg.kind.name(), doc, &meta)
}
