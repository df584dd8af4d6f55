//! Static analysis of an int8 model, like the `analyze` step of an embedded AI tool: per layer
//! the parameters, multiply-accumulates, weight bytes and activation bytes; totals against the
//! board.
//!
//! MACC counts matrix products only (fully connected layers, attention's `q·kᵀ` and `p·v`,
//! recurrent gates), as `FloatModel::macc_per_token` does; norms, lookups and requantization
//! are linear in the width and left out. Decode is one generated token at a full context
//! (`seq_len` tokens, the worst case); prefill is the whole prompt.

use serde::Serialize;
use textzoo_rt::model::{Block, Linear, Net, Recurrent, RnnLayer, Transformer};
use textzoo_rt::{Int8Model, Kind, ModelConfig};

/// One row of the table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Layer {
    pub name: String,
    pub op: &'static str,
    pub params: u64,
    /// For the whole prompt.
    pub macc_prefill: u64,
    /// Per generated token.
    pub macc_decode: u64,
    /// Weights and constants in flash (int8 weights, int32 biases, multipliers, tables).
    pub weight_bytes: u64,
    /// The layer's output for a full window, in the activation arena.
    pub activation_bytes: u64,
}

/// The per-layer table and its totals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Analysis {
    pub prompt_tokens: u64,
    pub layers: Vec<Layer>,
    pub params: u64,
    pub macc_prefill: u64,
    pub macc_decode: u64,
    pub weight_bytes: u64,
}

/// Analyses `model` for a prompt of `prompt_tokens` tokens (clamped to `1..=seq_len`).
pub fn analyze(model: &Int8Model, prompt_tokens: usize) -> Analysis {
    let cfg = &model.config;
    let p = prompt_tokens.clamp(1, cfg.seq_len) as u64;
    let layers = match &model.net {
        Net::Transformer(t) => transformer_layers(t, cfg, p),
        Net::Recurrent(r) => recurrent_layers(r, cfg, p),
    };
    let sum = |f: fn(&Layer) -> u64| layers.iter().map(f).sum();
    Analysis {
        prompt_tokens: p,
        params: sum(|l| l.params),
        macc_prefill: sum(|l| l.macc_prefill),
        macc_decode: sum(|l| l.macc_decode),
        weight_bytes: sum(|l| l.weight_bytes),
        layers,
    }
}

fn bytes<T>(v: &[T]) -> u64 {
    std::mem::size_of_val(v) as u64
}

/// A fully connected layer run on `rows_prefill` rows for the prompt and `rows_decode` per token.
fn linear(name: String, l: &Linear, rows_prefill: u64, rows_decode: u64, window: u64) -> Layer {
    let (i, o) = (l.in_dim as u64, l.out_dim as u64);
    Layer {
        name,
        op: "fully_connected",
        params: i * o + o,
        macc_prefill: rows_prefill * i * o,
        macc_decode: rows_decode * i * o,
        weight_bytes: bytes(&l.w) + bytes(&l.bias) + bytes(&l.mult) + bytes(&l.shift),
        activation_bytes: window * o,
    }
}

fn norm(name: String, n: &textzoo_rt::model::LayerNorm, window: u64, c: u64) -> Layer {
    Layer {
        name,
        op: "layer_norm",
        params: 2 * c,
        macc_prefill: 0,
        macc_decode: 0,
        weight_bytes: bytes(&n.a) + bytes(&n.b) + 8,
        activation_bytes: window * c,
    }
}

fn transformer_layers(m: &Transformer, cfg: &ModelConfig, p: u64) -> Vec<Layer> {
    let (t, c, v) = (
        cfg.seq_len as u64,
        cfg.embed_dim as u64,
        cfg.vocab_size as u64,
    );
    let bert = cfg.kind == Kind::TinyBertGenerator;
    let mut out = vec![Layer {
        name: "embedding".into(),
        op: "embedding",
        params: v * c + t * c,
        macc_prefill: 0,
        macc_decode: 0,
        weight_bytes: bytes(&m.tok_emb)
            + bytes(&m.tok_mult)
            + bytes(&m.tok_shift)
            + bytes(&m.pos_emb)
            + bytes(&m.pos_mult)
            + bytes(&m.pos_shift),
        activation_bytes: t * c,
    }];
    let n = m.blocks.len();
    for (l, b) in m.blocks.iter().enumerate() {
        // tiny_bert_generator recomputes its whole window per token (the prompt is one
        // window); its last block needs only the last row after K and V.
        let (all_p, all_d) = if bert { (t, t) } else { (p, 1) };
        let (last_p, last_d) = if bert && l + 1 == n {
            (1, 1)
        } else {
            (all_p, all_d)
        };
        out.extend(block_layers(l, b, cfg, p, (all_p, all_d), (last_p, last_d)));
    }
    out.push(norm("ln_f".into(), &m.ln_f, t, c));
    let head_rows = if bert { 1 } else { p };
    let head_w = m.head_w.as_deref().map_or(0, bytes);
    out.push(Layer {
        name: "head".into(),
        op: "fully_connected",
        params: m.head_w.as_ref().map_or(0, |_| c * v) + v,
        macc_prefill: head_rows * c * v,
        macc_decode: c * v,
        weight_bytes: head_w + bytes(&m.head_bias) + bytes(&m.head_scale) + bytes(&m.exp_lut),
        activation_bytes: 4 * v,
    });
    out
}

/// The rows of one block: `(prefill, decode)` rows for K/V (`all`) and for the rest (`last`).
fn block_layers(
    l: usize,
    b: &Block,
    cfg: &ModelConfig,
    p: u64,
    all: (u64, u64),
    last: (u64, u64),
) -> Vec<Layer> {
    let (t, c) = (cfg.seq_len as u64, cfg.embed_dim as u64);
    let name = |s: &str| format!("blocks.{l}.{s}");
    // Each query row attends to its context: causal prefill row i sees i + 1 keys, a decode
    // step sees the full window; the bidirectional model sees the window from every row.
    let (att_p, att_d) = if cfg.kind == Kind::TinyBertGenerator {
        (last.0 * t, last.1 * t)
    } else {
        (p * (p + 1) / 2, t)
    };
    vec![
        norm(name("ln1"), &b.ln1, t, c),
        linear(name("q"), &b.q, last.0, last.1, t),
        linear(name("k"), &b.k, all.0, all.1, t),
        linear(name("v"), &b.v, all.0, all.1, t),
        Layer {
            name: name("attention"),
            op: "attention",
            params: 0,
            macc_prefill: 2 * att_p * c,
            macc_decode: 2 * att_d * c,
            weight_bytes: 0,
            activation_bytes: t * c,
        },
        linear(name("proj"), &b.proj, last.0, last.1, t),
        norm(name("ln2"), &b.ln2, t, c),
        linear(name("up"), &b.up, last.0, last.1, t),
        Layer {
            name: name("gelu"),
            op: "lookup_table",
            params: 0,
            macc_prefill: 0,
            macc_decode: 0,
            weight_bytes: bytes(&b.gelu),
            activation_bytes: t * cfg.ffn_dim as u64,
        },
        linear(name("down"), &b.down, last.0, last.1, t),
    ]
}

fn recurrent_layers(m: &Recurrent, cfg: &ModelConfig, p: u64) -> Vec<Layer> {
    let (e, v, h) = (
        cfg.embed_dim as u64,
        cfg.vocab_size as u64,
        cfg.hidden_dim as u64,
    );
    let mut out = vec![Layer {
        name: "embedding".into(),
        op: "embedding",
        params: v * e,
        macc_prefill: 0,
        macc_decode: 0,
        weight_bytes: bytes(&m.tok_emb),
        activation_bytes: 2 * e,
    }];
    let op = if cfg.kind == Kind::Lstm {
        "lstm"
    } else {
        "gru"
    };
    for (l, layer) in m.layers.iter().enumerate() {
        out.push(rnn_layer(format!("layers.{l}"), op, layer, h, p));
    }
    out.push(Layer {
        name: "head".into(),
        op: "fully_connected",
        params: m.head_w.as_ref().map_or(0, |_| h * v) + v,
        macc_prefill: p * h * v,
        macc_decode: h * v,
        weight_bytes: m.head_w.as_deref().map_or(0, bytes)
            + bytes(&m.head_scale)
            + bytes(&m.head_bias)
            + bytes(&m.sigmoid_lut)
            + bytes(&m.tanh_lut),
        activation_bytes: 4 * v,
    });
    out
}

fn rnn_layer(name: String, op: &'static str, l: &RnnLayer, h: u64, p: u64) -> Layer {
    let g = l.w_hh.len() as u64 / h.max(1);
    let per_step = g * (l.in_dim as u64 + h);
    Layer {
        name,
        op,
        params: per_step + l.bias.len() as u64 + l.bias_hn.len() as u64,
        macc_prefill: p * per_step,
        macc_decode: per_step,
        weight_bytes: bytes(&l.w_ih)
            + bytes(&l.ih_mult)
            + bytes(&l.ih_shift)
            + bytes(&l.w_hh)
            + bytes(&l.hh_mult)
            + bytes(&l.hh_shift)
            + bytes(&l.bias)
            + bytes(&l.bias_hn),
        activation_bytes: 2 * h,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ModelName, Quantization};
    use crate::models::{build, ModelConfig};
    use crate::quantization::{quantize, Settings};

    fn int8(kind: ModelName, tie: bool) -> (Int8Model, Box<dyn crate::models::FloatModel>) {
        let cfg = ModelConfig {
            kind,
            vocab_size: 20,
            seq_len: 6,
            embed_dim: 8,
            num_heads: 2,
            num_layers: 2,
            ffn_dim: 16,
            hidden_dim: 8,
            dropout: 0.0,
            tie_embeddings: tie,
        };
        let float = build(&cfg, 3);
        let windows: Vec<Vec<u32>> = (0..4)
            .map(|i| (0..6).map(|j| 2 + (i * 7 + j * 3) % 18).collect())
            .collect();
        let st = Settings::from_config(&Quantization::default());
        (quantize(float.as_ref(), &windows, &st).unwrap(), float)
    }

    #[test]
    fn tiny_gpt_matches_a_hand_count() {
        let (m, float) = int8(ModelName::TinyGpt, false);
        let a = analyze(&m, 4);
        // V 20, T 6, C 8, F 16, L 2, prompt P 4.
        let (v, t, c, f, p) = (20u64, 6u64, 8u64, 16u64, 4u64);
        let linear_d = 4 * c * c + 2 * c * f; // q k v proj up down, one row
        let att_d = 2 * t * c;
        assert_eq!(a.macc_decode, 2 * (linear_d + att_d) + c * v);
        assert_eq!(a.macc_decode, float.macc_per_token());
        // Prefill: every linear on 4 rows, causal attention 1+2+3+4 = 10 keys, head 4 rows.
        assert_eq!(a.macc_prefill, 2 * (p * linear_d + 2 * 10 * c) + p * c * v);
        // Parameters stored: embeddings, 6 linears of (in·out + out) per block, norms, head.
        let block = 4 * (c * c + c) + (c * f + f) + (f * c + c) + 2 * 2 * c;
        assert_eq!(a.params, v * c + t * c + 2 * block + 2 * c + (c * v + v));
        // Weight bytes are the tensors the C arrays hold.
        let embed = v * c + 8 * v + t * c + 8 * t;
        assert_eq!(a.layers[0].weight_bytes, embed);
        let q = &a.layers[2];
        assert_eq!(q.name, "blocks.0.q");
        assert_eq!(q.weight_bytes, c * c + 4 * c + 8 * c);
        assert_eq!(a.layers.len(), 1 + 2 * 10 + 2);
    }

    #[test]
    fn bert_and_recurrent_models_match_the_float_counts() {
        let (m, float) = int8(ModelName::TinyBertGenerator, true);
        let a = analyze(&m, 3);
        assert_eq!(a.macc_decode, float.macc_per_token());
        assert_eq!(a.macc_prefill, a.macc_decode, "the prompt is one window");
        for kind in [ModelName::Gru, ModelName::Lstm] {
            let (m, float) = int8(kind, false);
            let a = analyze(&m, 5);
            assert_eq!(a.macc_decode, float.macc_per_token(), "{kind:?}");
            assert_eq!(a.macc_prefill, 5 * a.macc_decode);
            let g = if kind == ModelName::Lstm { 4 } else { 3 };
            // Two layers of G·H·(E + H) weights, G·H merged biases (+ H for the GRU's b_hn).
            let hn = if kind == ModelName::Gru { 8 } else { 0 };
            assert_eq!(a.layers[1].params, g * 8 * 16 + g * 8 + hn);
        }
    }
}
