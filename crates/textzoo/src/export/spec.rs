//! One description of a Transformer (`tiny_gpt`, `tiny_bert_generator`) for the exporters,
//! built either from the float model's parameters or from the int8 model and its recorded
//! quantization parameters, so the ONNX float, ONNX QDQ and TFLite writers walk the same
//! structure.

use crate::artifact::{ActParam, FloatFile, Int8File, QuantParams};
use crate::error::{Error, Result};
use crate::models::ModelConfig;
use textzoo_rt::model::{Linear, Net, Transformer};
use textzoo_rt::Kind;

/// A weight matrix `[rows, cols]` (row = output channel) with its bias.
pub enum Lin {
    Float {
        w: Vec<f32>,
        b: Vec<f32>,
    },
    /// Symmetric int8 rows (`ws` per row), the int32 bias in units of `s_in · ws[row]` with no
    /// zero point folded in (the form ONNX and TFLite expect).
    Int8 {
        w: Vec<i8>,
        ws: Vec<f64>,
        bias: Vec<i32>,
        s_in: f64,
    },
}

impl Lin {
    pub fn rows(&self) -> usize {
        match self {
            Lin::Float { b, .. } => b.len(),
            Lin::Int8 { bias, .. } => bias.len(),
        }
    }
}

/// A table read by row (token and position embeddings).
pub enum Table {
    Float(Vec<f32>),
    Int8 { q: Vec<i8>, scales: Vec<f64> },
}

/// Layer norm in real terms.
pub struct Norm {
    pub gamma: Vec<f32>,
    pub beta: Vec<f32>,
    pub eps: f32,
}

/// The quantization of one block's activations (int8 models only).
#[derive(Clone, Copy)]
pub struct BlockActs {
    pub ln1: ActParam,
    pub q: ActParam,
    pub k: ActParam,
    pub v: ActParam,
    pub att: ActParam,
    pub res2: ActParam,
    pub ln2: ActParam,
    pub up: ActParam,
    pub h: ActParam,
    pub y: ActParam,
}

pub struct BlockSpec {
    pub ln1: Norm,
    pub q: Lin,
    pub k: Lin,
    pub v: Lin,
    pub proj: Lin,
    pub ln2: Norm,
    pub up: Lin,
    pub down: Lin,
    pub acts: Option<BlockActs>,
}

pub struct Spec {
    pub config: ModelConfig,
    /// Row `i` sees rows `0..=i` (`tiny_gpt`) or every row (`tiny_bert_generator`).
    pub causal: bool,
    /// Logits of the last row only (`tiny_bert_generator`).
    pub last_only: bool,
    pub tok: Table,
    pub pos: Table,
    pub x0: Option<ActParam>,
    pub blocks: Vec<BlockSpec>,
    pub ln_f: Norm,
    pub ln_f_act: Option<ActParam>,
    /// `None`: tied to `tok`.
    pub head: Option<Lin>,
    pub head_bias: HeadBias,
}

/// The tied head's bias: float, or int32 in units of `s_lnf · ws[row]` (`ws`: the token
/// table's row scales).
pub enum HeadBias {
    Float(Vec<f32>),
    Int8 {
        bias: Vec<i32>,
        ws: Vec<f64>,
        s_in: f64,
    },
}

fn is_transformer(cfg: &ModelConfig) -> bool {
    matches!(cfg.kind, Kind::TinyGpt | Kind::TinyBertGenerator)
}

/// The exporters describe `gru`/`lstm` elsewhere (`rnn_spec`, `onnx::recurrent`).
fn not_a_transformer(cfg: &ModelConfig) -> Error {
    Error::Internal(format!(
        "the Transformer export description of a `{}` model",
        cfg.kind.name()
    ))
}

impl Spec {
    /// From the float model's parameters.
    pub fn from_float(f: &FloatFile) -> Result<Spec> {
        let cfg = &f.meta.config;
        if !is_transformer(cfg) {
            return Err(not_a_transformer(cfg));
        }
        let ps = f.model.params();
        let p = |n: &str| -> Result<Vec<f32>> {
            ps.entry(n)
                .map(|e| ps.get(e.id).to_vec())
                .ok_or_else(|| Error::Internal(format!("float model has no parameter `{n}`")))
        };
        let norm = |n: &str| -> Result<Norm> {
            Ok(Norm {
                gamma: p(&format!("{n}.weight"))?,
                beta: p(&format!("{n}.bias"))?,
                eps: crate::nn::layernorm::EPS,
            })
        };
        let lin = |n: &str| -> Result<Lin> {
            Ok(Lin::Float {
                w: p(&format!("{n}.weight"))?,
                b: p(&format!("{n}.bias"))?,
            })
        };
        let c = cfg.embed_dim;
        let mut blocks = Vec::new();
        for i in 0..cfg.num_layers {
            let b = |n: &str| format!("blocks.{i}.{n}");
            let (wqkv, bqkv) = (p(&b("attn.qkv.weight"))?, p(&b("attn.qkv.bias"))?);
            let part = |k: usize| Lin::Float {
                w: wqkv[k * c * c..(k + 1) * c * c].to_vec(),
                b: bqkv[k * c..(k + 1) * c].to_vec(),
            };
            blocks.push(BlockSpec {
                ln1: norm(&b("ln1"))?,
                q: part(0),
                k: part(1),
                v: part(2),
                proj: lin(&b("attn.proj"))?,
                ln2: norm(&b("ln2"))?,
                up: lin(&b("ffn.up"))?,
                down: lin(&b("ffn.down"))?,
                acts: None,
            });
        }
        let head = match ps.entry("head.weight") {
            Some(_) => Some(lin("head")?),
            None => None,
        };
        Ok(Spec {
            config: cfg.clone(),
            causal: cfg.kind == Kind::TinyGpt,
            last_only: cfg.kind == Kind::TinyBertGenerator,
            tok: Table::Float(p("tok_emb")?),
            pos: Table::Float(p("pos_emb")?),
            x0: None,
            blocks,
            ln_f: norm("ln_f")?,
            ln_f_act: None,
            head,
            head_bias: HeadBias::Float(p("head.bias")?),
        })
    }

    /// From the int8 model and the scales and zero points quantization recorded beside it.
    pub fn from_int8(f: &Int8File) -> Result<Spec> {
        let cfg = &f.model.config;
        let m = match &f.model.net {
            Net::Transformer(t) if is_transformer(cfg) => t,
            _ => return Err(not_a_transformer(cfg)),
        };
        let qp = f.params.as_ref().ok_or_else(|| {
            Error::input(
                &f.path,
                "carries no quantization parameters (written before textzoo recorded them); quantize the float model again to export it",
            )
        })?;
        from_int8(cfg, m, qp).map_err(|e| Error::input(&f.path, format!("cannot be exported: {e}")))
    }
}

fn from_int8(
    cfg: &ModelConfig,
    m: &Transformer,
    qp: &QuantParams,
) -> std::result::Result<Spec, String> {
    let c = cfg.embed_dim;
    let lin = |l: &Linear, name: &str, s_in: ActParam| -> std::result::Result<Lin, String> {
        let ws = qp.weight(name)?;
        if ws.len() != l.out_dim {
            return Err(format!(
                "`{name}` has {} scales for {} rows",
                ws.len(),
                l.out_dim
            ));
        }
        Ok(Lin::Int8 {
            bias: unfold_bias(&l.w, &l.bias, l.in_dim, s_in.zero_point),
            w: l.w.clone(),
            ws,
            s_in: s_in.scale,
        })
    };
    let norm = |n: &textzoo_rt::model::LayerNorm, x: ActParam, y: ActParam| Norm {
        gamma: n
            .a
            .iter()
            .map(|&a| (a as f64 * c as f64 * y.scale / x.scale) as f32)
            .collect(),
        beta: n
            .b
            .iter()
            .map(|&b| ((b as f64 - y.zero_point as f64) * y.scale) as f32)
            .collect(),
        eps: n.eps,
    };
    let mut x = qp.act("x0")?;
    let x0 = x;
    let mut blocks = Vec::new();
    for (i, b) in m.blocks.iter().enumerate() {
        let a = |n: &str| qp.act(&format!("blocks.{i}.{n}"));
        let acts = BlockActs {
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
        };
        let n = |s: &str| format!("blocks.{i}.{s}.weight");
        blocks.push(BlockSpec {
            ln1: norm(&b.ln1, x, acts.ln1),
            q: lin(&b.q, &n("attn.q"), acts.ln1)?,
            k: lin(&b.k, &n("attn.k"), acts.ln1)?,
            v: lin(&b.v, &n("attn.v"), acts.ln1)?,
            proj: lin(&b.proj, &n("attn.proj"), acts.att)?,
            ln2: norm(&b.ln2, acts.res2, acts.ln2),
            up: lin(&b.up, &n("ffn.up"), acts.ln2)?,
            down: lin(&b.down, &n("ffn.down"), acts.h)?,
            acts: Some(acts),
        });
        x = acts.y;
    }
    let lnf = qp.act("ln_f")?;
    let tok_scales = qp.weight("tok_emb")?;
    let head = match &m.head_w {
        Some(w) => {
            let l = Linear {
                w: w.clone(),
                bias: m.head_bias.clone(),
                in_dim: c,
                out_dim: cfg.vocab_size,
                ..Default::default()
            };
            Some(lin(&l, "head.weight", lnf)?)
        }
        None => None,
    };
    Ok(Spec {
        config: cfg.clone(),
        causal: cfg.kind == Kind::TinyGpt,
        last_only: cfg.kind == Kind::TinyBertGenerator,
        tok: Table::Int8 {
            q: m.tok_emb.clone(),
            scales: tok_scales.clone(),
        },
        pos: Table::Int8 {
            q: m.pos_emb.clone(),
            scales: qp.weight("pos_emb")?,
        },
        x0: Some(x0),
        blocks,
        ln_f: norm(&m.ln_f, x, lnf),
        ln_f_act: Some(lnf),
        head_bias: HeadBias::Int8 {
            bias: unfold_bias(m.head_weight(), &m.head_bias, c, lnf.zero_point),
            ws: tok_scales,
            s_in: lnf.scale,
        },
        head,
    })
}

/// textzoo folds the input zero point into the bias (`b − zp·Σw`); ONNX and TFLite apply it
/// to the input instead, so it is taken back out: `b + zp·Σw`.
pub fn unfold_bias(w: &[i8], bias: &[i32], in_dim: usize, zp: i32) -> Vec<i32> {
    w.chunks_exact(in_dim)
        .zip(bias)
        .map(|(row, &b)| {
            let s: i64 = row.iter().map(|&x| x as i64).sum();
            (b as i64 + zp as i64 * s).clamp(i32::MIN as i64, i32::MAX as i64) as i32
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unfolding_the_bias_undoes_textzoos_folding() {
        let w = [1i8, -2, 3, 4, 5, -6];
        // Folded with zp = 3: b − 3·Σw per row (Σ = 2 and 3).
        let folded = [10 - 3 * 2, -7 - 3 * 3];
        assert_eq!(unfold_bias(&w, &folded, 3, 3), vec![10, -7]);
    }
}
