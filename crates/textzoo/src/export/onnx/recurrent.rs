//! `gru` / `lstm` float models as ONNX (opset 17): `Gather` → per layer ONNX `GRU`
//! (`linear_before_reset = 1`, PyTorch's formulation) or `LSTM` → `Gemm` head. textzoo names
//! and orders its recurrent weights like PyTorch (GRU gates r, z, n; LSTM i, f, g, o); ONNX
//! wants GRU z, r, h and LSTM i, o, f, c, so the gate blocks are reordered.

use super::graph::{Attr, Graph};
use super::proto::dtype;
use crate::artifact::FloatFile;
use crate::error::{Error, Result};
use textzoo_rt::Kind;

/// The rows of `w` (`[gates·h, cols]`) with its gate blocks in `order`.
fn reorder(w: &[f32], h: usize, cols: usize, order: &[usize]) -> Vec<f32> {
    order
        .iter()
        .flat_map(|&g| w[g * h * cols..(g + 1) * h * cols].iter().copied())
        .collect()
}

pub fn write(f: &FloatFile) -> Result<Vec<u8>> {
    let cfg = &f.meta.config;
    let ps = f.model.params();
    let p = |n: &str| -> Result<Vec<f32>> {
        ps.entry(n)
            .map(|e| ps.get(e.id).to_vec())
            .ok_or_else(|| Error::Internal(format!("float model has no parameter `{n}`")))
    };
    let (t, e, h, v) = (cfg.seq_len, cfg.embed_dim, cfg.hidden_dim, cfg.vocab_size);
    let (op, order): (&str, &[usize]) = match cfg.kind {
        Kind::Gru => ("GRU", &[1, 0, 2]),
        Kind::Lstm => ("LSTM", &[0, 3, 1, 2]),
        _ => {
            return Err(Error::Internal(
                "recurrent ONNX export of a Transformer".into(),
            ))
        }
    };
    let gates = order.len();
    let mut g = Graph::default();
    let ids = g.input("input_ids", dtype::INT64, &[1, t as i64]);
    let flat = g.i64("ids.shape", &[1], &[t as i64]);
    let ids = g.node("Reshape", &[&ids, &flat], vec![], "ids");
    let tok = g.f32("tok_emb", &[v, e], &p("tok_emb")?);
    let mut x = g.node("Gather", &[&tok, &ids], vec![("axis", Attr::Int(0))], "emb");
    let mut width = e;
    for l in 0..cfg.num_layers {
        let n = |s: &str| format!("rnn.{l}.{s}");
        let seq = g.i64(&n("in.shape"), &[3], &[t as i64, 1, width as i64]);
        let xs = g.node("Reshape", &[&x, &seq], vec![], &n("in"));
        let w = reorder(&p(&n("weight_ih"))?, h, width, order);
        let r = reorder(&p(&n("weight_hh"))?, h, h, order);
        let mut b = reorder(&p(&n("bias_ih"))?, h, 1, order);
        b.extend(reorder(&p(&n("bias_hh"))?, h, 1, order));
        let w = g.f32(&n("W"), &[1, gates * h, width], &w);
        let r = g.f32(&n("R"), &[1, gates * h, h], &r);
        let b = g.f32(&n("B"), &[1, 2 * gates * h], &b);
        let mut attrs = vec![("hidden_size", Attr::Int(h as i64))];
        if cfg.kind == Kind::Gru {
            attrs.push(("linear_before_reset", Attr::Int(1)));
        }
        let y = g.node(op, &[&xs, &w, &r, &b], attrs, &n("y"));
        let rows = g.i64(&n("out.shape"), &[2], &[t as i64, h as i64]);
        x = g.node("Reshape", &[&y, &rows], vec![], &n("out"));
        width = h;
    }
    let hw = match ps.entry("head.weight") {
        Some(_) => g.f32("head.weight", &[v, h], &p("head.weight")?),
        None => tok,
    };
    let hb = g.f32("head.bias", &[v], &p("head.bias")?);
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
    Ok(g.finish(
        cfg.kind.name(),
        "textzoo float recurrent model: one window of token ids in, logits at every position out (state starts at zero)",
        &meta,
    ))
}
