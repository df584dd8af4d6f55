//! The int8 model: plain structs of int8/int32 tensors and requantization constants, and the
//! `.safetensors` file that holds them (format `textzoo.int8.v1`).
//!
//! File layout: every array is a tensor named after its field (`blocks.0.attn.q.weight` I8,
//! `….bias` / `….mult` / `….shift` I32, `….ln1.a` F32 …); every scalar (zero points,
//! per-tensor multipliers, layer-norm constants) is an entry of the JSON object in the metadata
//! key `int8_scalars`; the metadata also carries `format`, `model_config` (the
//! [`ModelConfig`] JSON) and whatever the writer adds (tokenizer, quantization settings).
//! The generated C project is this struct written out as `const` arrays.

use crate::kernels::{AttnParams, EXP_LUT_LEN};
use crate::model_config::{Kind, ModelConfig};
use crate::quant::Requant;
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use std::collections::HashMap;

pub const INT8_FORMAT: &str = "textzoo.int8.v1";

/// A model file the runtime cannot use, with the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(pub String);

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;

fn err<T>(msg: impl Into<String>) -> Result<T> {
    Err(Error(msg.into()))
}

// ----------------------------------------------------------------------------
// Structs

/// A fully connected layer: `w[out, in]` int8 (per-row scale), int32 bias with the input
/// zero point folded in, per-channel requantization `mult`/`shift` (empty for the head, whose
/// accumulators are dequantized instead).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Linear {
    pub w: Vec<i8>,
    pub bias: Vec<i32>,
    pub mult: Vec<i32>,
    pub shift: Vec<i32>,
    pub in_dim: usize,
    pub out_dim: usize,
}

/// Layer-norm constants (see `kernels::layernorm`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LayerNorm {
    pub a: Vec<f32>,
    pub b: Vec<f32>,
    pub var_scale: f32,
    pub eps: f32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Block {
    pub ln1: LayerNorm,
    pub q: Linear,
    pub k: Linear,
    pub v: Linear,
    pub attn: AttnParams,
    /// Output projection into the residual (multipliers carry `2^FRAC_BITS`).
    pub proj: Linear,
    /// Block input `x − x_zp` into the `res2` sum (with `2^FRAC_BITS`).
    pub res1: Requant,
    pub x_zp: i32,
    pub res2_zp: i32,
    pub ln2: LayerNorm,
    pub up: Linear,
    pub up_zp: i32,
    /// GELU as a 256-entry int8 → int8 table, indexed by `up + 128`.
    pub gelu: Vec<i8>,
    pub down: Linear,
    /// `res2 − res2_zp` into the block output sum (with `2^FRAC_BITS`).
    pub res2: Requant,
    pub y_zp: i32,
}

/// `tiny_gpt` and `tiny_bert_generator`.
#[derive(Debug, Clone, PartialEq)]
pub struct Transformer {
    /// `[vocab, C]`, one symmetric scale per row; also the head's weight when tied.
    pub tok_emb: Vec<i8>,
    /// Per token row: into the embedding sum (with `2^FRAC_BITS`).
    pub tok_mult: Vec<i32>,
    pub tok_shift: Vec<i32>,
    pub pos_emb: Vec<i8>,
    pub pos_mult: Vec<i32>,
    pub pos_shift: Vec<i32>,
    pub x0_zp: i32,
    pub blocks: Vec<Block>,
    pub ln_f: LayerNorm,
    /// `None` when tied to `tok_emb`.
    pub head_w: Option<Vec<i8>>,
    pub head_bias: Vec<i32>,
    /// `logit[o] = acc[o] · head_scale[o]`.
    pub head_scale: Vec<f32>,
    pub exp_lut: Vec<i32>,
}

impl Transformer {
    pub fn head_weight(&self) -> &[i8] {
        match &self.head_w {
            Some(w) => w,
            None => &self.tok_emb,
        }
    }
}

/// One int8 recurrent layer (see `crate::rnn` for the fixed-point formats). Gate rows are in
/// PyTorch's order (GRU r, z, n; LSTM i, f, g, o).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RnnLayer {
    pub in_dim: usize,
    /// `[G·H, in]` int8, symmetric per row.
    pub w_ih: Vec<i8>,
    /// `W_ih x` accumulators to Q20, per row.
    pub ih_mult: Vec<i32>,
    pub ih_shift: Vec<i32>,
    /// `[G·H, H]` int8, symmetric per row.
    pub w_hh: Vec<i8>,
    pub hh_mult: Vec<i32>,
    pub hh_shift: Vec<i32>,
    /// Q20 biases per gate row: `b_ih + b_hh`, except the GRU's n rows (`b_in` only).
    pub bias: Vec<i32>,
    /// GRU: `b_hn` (Q20), inside the reset gate's product; empty for the LSTM.
    pub bias_hn: Vec<i32>,
    /// LSTM: the cell's scale is `2^(cell_bits − 15)`; 0 for the GRU.
    pub cell_bits: i32,
}

/// `gru` and `lstm`.
#[derive(Debug, Clone, PartialEq)]
pub struct Recurrent {
    /// `[vocab, E]` int8, symmetric with one scale (layer 0 reads rows as they are).
    pub tok_emb: Vec<i8>,
    pub layers: Vec<RnnLayer>,
    /// `None` when tied to `tok_emb`.
    pub head_w: Option<Vec<i8>>,
    /// `logit[o] = acc[o] · head_scale[o] + head_bias[o]`.
    pub head_scale: Vec<f32>,
    pub head_bias: Vec<f32>,
    /// Q3.12 → Q0.15 tables (`crate::rnn::ACT_LUT_LEN` entries).
    pub sigmoid_lut: Vec<i16>,
    pub tanh_lut: Vec<i16>,
}

impl Recurrent {
    pub fn head_weight(&self) -> &[i8] {
        match &self.head_w {
            Some(w) => w,
            None => &self.tok_emb,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Net {
    Transformer(Transformer),
    Recurrent(Recurrent),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Int8Model {
    pub config: ModelConfig,
    pub net: Net,
}

impl Int8Model {
    /// The runtime's memory: (activation arena bytes from the memory planner, KV-cache bytes).
    /// The generated C declares exactly these static buffers. For `gru`/`lstm` the second
    /// number is the recurrent state (`h`, `c`), which likewise lives across steps.
    pub fn memory_bytes(&self) -> (usize, usize) {
        match self.net {
            Net::Transformer(_) => {
                let l = crate::transformer::Layout::new(&self.config);
                (l.arena_bytes(), l.kv_cache_bytes)
            }
            Net::Recurrent(_) => {
                let l = crate::rnn::RnnLayout::new(&self.config);
                (l.arena_bytes(), l.state_bytes)
            }
        }
    }

    /// Bytes of weights and constants (tensor payloads; what the C project's `const` arrays
    /// hold, give or take padding).
    pub fn weight_bytes(&self) -> usize {
        let mut w = Writer::default();
        self.write_into(&mut w);
        w.tensors.iter().map(|t| t.3.len()).sum()
    }
}

// ----------------------------------------------------------------------------
// Writing

#[derive(Default)]
struct Writer {
    tensors: Vec<(String, Dtype, Vec<usize>, Vec<u8>)>,
    scalars: serde_json::Map<String, serde_json::Value>,
}

impl Writer {
    fn i8(&mut self, name: &str, shape: &[usize], v: &[i8]) {
        let bytes = v.iter().map(|&x| x as u8).collect();
        self.tensors
            .push((name.into(), Dtype::I8, shape.to_vec(), bytes));
    }
    fn i16(&mut self, name: &str, v: &[i16]) {
        let bytes = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        self.tensors
            .push((name.into(), Dtype::I16, vec![v.len()], bytes));
    }
    fn i32(&mut self, name: &str, v: &[i32]) {
        let bytes = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        self.tensors
            .push((name.into(), Dtype::I32, vec![v.len()], bytes));
    }
    fn f32(&mut self, name: &str, v: &[f32]) {
        let bytes = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        self.tensors
            .push((name.into(), Dtype::F32, vec![v.len()], bytes));
    }
    fn int(&mut self, name: &str, v: i32) {
        self.scalars.insert(name.into(), v.into());
    }
    fn float(&mut self, name: &str, v: f32) {
        self.scalars.insert(name.into(), (v as f64).into());
    }
    fn requant(&mut self, name: &str, r: Requant) {
        self.int(&format!("{name}.mult"), r.mult);
        self.int(&format!("{name}.shift"), r.shift);
    }
    fn linear(&mut self, name: &str, l: &Linear) {
        self.i8(&format!("{name}.weight"), &[l.out_dim, l.in_dim], &l.w);
        self.i32(&format!("{name}.bias"), &l.bias);
        if !l.mult.is_empty() {
            self.i32(&format!("{name}.mult"), &l.mult);
            self.i32(&format!("{name}.shift"), &l.shift);
        }
    }
    fn layernorm(&mut self, name: &str, l: &LayerNorm) {
        self.f32(&format!("{name}.a"), &l.a);
        self.f32(&format!("{name}.b"), &l.b);
        self.float(&format!("{name}.var_scale"), l.var_scale);
        self.float(&format!("{name}.eps"), l.eps);
    }
}

impl Int8Model {
    fn write_into(&self, w: &mut Writer) {
        let c = &self.config;
        match &self.net {
            Net::Transformer(t) => {
                w.i8("tok_emb", &[c.vocab_size, c.embed_dim], &t.tok_emb);
                w.i32("tok_emb.mult", &t.tok_mult);
                w.i32("tok_emb.shift", &t.tok_shift);
                w.i8("pos_emb", &[c.seq_len, c.embed_dim], &t.pos_emb);
                w.i32("pos_emb.mult", &t.pos_mult);
                w.i32("pos_emb.shift", &t.pos_shift);
                w.int("x0_zp", t.x0_zp);
                for (i, b) in t.blocks.iter().enumerate() {
                    let p = format!("blocks.{i}");
                    w.layernorm(&format!("{p}.ln1"), &b.ln1);
                    w.linear(&format!("{p}.attn.q"), &b.q);
                    w.linear(&format!("{p}.attn.k"), &b.k);
                    w.linear(&format!("{p}.attn.v"), &b.v);
                    w.int(&format!("{p}.attn.q_zp"), b.attn.q_zp);
                    w.int(&format!("{p}.attn.k_zp"), b.attn.k_zp);
                    w.int(&format!("{p}.attn.v_zp"), b.attn.v_zp);
                    w.requant(&format!("{p}.attn.softmax"), b.attn.softmax);
                    w.requant(&format!("{p}.attn.pv"), b.attn.pv);
                    w.int(&format!("{p}.attn.out_zp"), b.attn.out_zp);
                    w.linear(&format!("{p}.attn.proj"), &b.proj);
                    w.requant(&format!("{p}.res1"), b.res1);
                    w.int(&format!("{p}.x_zp"), b.x_zp);
                    w.int(&format!("{p}.res2_zp"), b.res2_zp);
                    w.layernorm(&format!("{p}.ln2"), &b.ln2);
                    w.linear(&format!("{p}.ffn.up"), &b.up);
                    w.int(&format!("{p}.ffn.up_zp"), b.up_zp);
                    w.i8(&format!("{p}.ffn.gelu_lut"), &[256], &b.gelu);
                    w.linear(&format!("{p}.ffn.down"), &b.down);
                    w.requant(&format!("{p}.res2"), b.res2);
                    w.int(&format!("{p}.y_zp"), b.y_zp);
                }
                w.layernorm("ln_f", &t.ln_f);
                if let Some(hw) = &t.head_w {
                    w.i8("head.weight", &[c.vocab_size, c.embed_dim], hw);
                }
                w.i32("head.bias", &t.head_bias);
                w.f32("head.scale", &t.head_scale);
                w.i32("softmax.exp_lut", &t.exp_lut);
            }
            Net::Recurrent(r) => {
                w.i8("tok_emb", &[c.vocab_size, c.embed_dim], &r.tok_emb);
                let g = crate::rnn::gates(c.kind) * c.hidden_dim;
                for (i, l) in r.layers.iter().enumerate() {
                    let p = format!("rnn.{i}");
                    w.i8(&format!("{p}.weight_ih"), &[g, l.in_dim], &l.w_ih);
                    w.i32(&format!("{p}.ih.mult"), &l.ih_mult);
                    w.i32(&format!("{p}.ih.shift"), &l.ih_shift);
                    w.i8(&format!("{p}.weight_hh"), &[g, c.hidden_dim], &l.w_hh);
                    w.i32(&format!("{p}.hh.mult"), &l.hh_mult);
                    w.i32(&format!("{p}.hh.shift"), &l.hh_shift);
                    w.i32(&format!("{p}.bias_q20"), &l.bias);
                    if !l.bias_hn.is_empty() {
                        w.i32(&format!("{p}.bias_hn_q20"), &l.bias_hn);
                    }
                    w.int(&format!("{p}.cell_bits"), l.cell_bits);
                }
                if let Some(hw) = &r.head_w {
                    w.i8("head.weight", &[c.vocab_size, c.hidden_dim], hw);
                }
                w.f32("head.scale", &r.head_scale);
                w.f32("head.bias", &r.head_bias);
                w.i16("sigmoid_lut", &r.sigmoid_lut);
                w.i16("tanh_lut", &r.tanh_lut);
            }
        }
    }

    /// The `.safetensors` bytes of this model; `metadata` must hold `model_config` (and
    /// usually the tokenizer); `format` and `int8_scalars` are added here.
    pub fn to_bytes(&self, metadata: HashMap<String, String>) -> Result<Vec<u8>> {
        let mut w = Writer::default();
        self.write_into(&mut w);
        let mut info = metadata;
        info.insert("format".into(), INT8_FORMAT.into());
        info.insert(
            "int8_scalars".into(),
            serde_json::Value::Object(w.scalars).to_string(),
        );
        let views = w
            .tensors
            .iter()
            .map(|(name, dtype, shape, bytes)| {
                TensorView::new(*dtype, shape.clone(), bytes)
                    .map(|v| (name.clone(), v))
                    .map_err(|e| Error(format!("tensor {name}: {e}")))
            })
            .collect::<Result<Vec<_>>>()?;
        safetensors::serialize(views, Some(info)).map_err(|e| Error(format!("serializing: {e}")))
    }
}

// ----------------------------------------------------------------------------
// Reading

struct Reader<'a> {
    tensors: SafeTensors<'a>,
    scalars: serde_json::Map<String, serde_json::Value>,
}

impl Reader<'_> {
    fn raw(&self, name: &str, dtype: Dtype, shape: &[usize]) -> Result<Vec<u8>> {
        let t = self
            .tensors
            .tensor(name)
            .map_err(|_| Error(format!("tensor `{name}` is missing")))?;
        if t.dtype() != dtype || t.shape() != shape {
            return err(format!(
                "tensor `{name}` is {:?} {:?}, expected {dtype:?} {shape:?}",
                t.dtype(),
                t.shape()
            ));
        }
        Ok(t.data().to_vec())
    }
    fn has(&self, name: &str) -> bool {
        self.tensors.tensor(name).is_ok()
    }
    fn i8(&self, name: &str, shape: &[usize]) -> Result<Vec<i8>> {
        Ok(self
            .raw(name, Dtype::I8, shape)?
            .into_iter()
            .map(|b| b as i8)
            .collect())
    }
    fn i16(&self, name: &str, len: usize) -> Result<Vec<i16>> {
        Ok(self
            .raw(name, Dtype::I16, &[len])?
            .chunks_exact(2)
            .map(|b| i16::from_le_bytes([b[0], b[1]]))
            .collect())
    }
    fn i32(&self, name: &str, len: usize) -> Result<Vec<i32>> {
        Ok(self
            .raw(name, Dtype::I32, &[len])?
            .chunks_exact(4)
            .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect())
    }
    fn f32(&self, name: &str, len: usize) -> Result<Vec<f32>> {
        Ok(self
            .raw(name, Dtype::F32, &[len])?
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect())
    }
    fn int(&self, name: &str) -> Result<i32> {
        self.scalars
            .get(name)
            .and_then(|v| v.as_i64())
            .and_then(|v| i32::try_from(v).ok())
            .ok_or_else(|| Error(format!("scalar `{name}` is missing or not an int32")))
    }
    fn float(&self, name: &str) -> Result<f32> {
        self.scalars
            .get(name)
            .and_then(|v| v.as_f64())
            .map(|v| v as f32)
            .filter(|v| v.is_finite())
            .ok_or_else(|| Error(format!("scalar `{name}` is missing or not a finite number")))
    }
    fn zp(&self, name: &str) -> Result<i32> {
        let z = self.int(name)?;
        if !(-128..=127).contains(&z) {
            return err(format!("zero point `{name}` = {z} is outside int8"));
        }
        Ok(z)
    }
    fn shifts(&self, name: &str, len: usize) -> Result<Vec<i32>> {
        let s = self.i32(name, len)?;
        if s.iter().any(|s| !(-31..=30).contains(s)) {
            return err(format!("tensor `{name}` holds a shift outside [-31, 30]"));
        }
        Ok(s)
    }
    /// Multipliers are `QuantizeMultiplier` outputs: never negative.
    fn mults(&self, name: &str, len: usize) -> Result<Vec<i32>> {
        let m = self.i32(name, len)?;
        if m.iter().any(|&m| m < 0) {
            return err(format!("tensor `{name}` holds a negative multiplier"));
        }
        Ok(m)
    }
    fn requant(&self, name: &str) -> Result<Requant> {
        let shift = self.int(&format!("{name}.shift"))?;
        if !(-31..=30).contains(&shift) {
            return err(format!("scalar `{name}.shift` is outside [-31, 30]"));
        }
        let mult = self.int(&format!("{name}.mult"))?;
        if mult < 0 {
            return err(format!("scalar `{name}.mult` is negative"));
        }
        Ok(Requant { mult, shift })
    }
    fn linear(&self, name: &str, in_dim: usize, out_dim: usize, requant: bool) -> Result<Linear> {
        let (mult, shift) = if requant {
            (
                self.mults(&format!("{name}.mult"), out_dim)?,
                self.shifts(&format!("{name}.shift"), out_dim)?,
            )
        } else {
            (Vec::new(), Vec::new())
        };
        Ok(Linear {
            w: self.i8(&format!("{name}.weight"), &[out_dim, in_dim])?,
            bias: self.i32(&format!("{name}.bias"), out_dim)?,
            mult,
            shift,
            in_dim,
            out_dim,
        })
    }
    fn layernorm(&self, name: &str, c: usize) -> Result<LayerNorm> {
        Ok(LayerNorm {
            a: self.f32(&format!("{name}.a"), c)?,
            b: self.f32(&format!("{name}.b"), c)?,
            var_scale: self.float(&format!("{name}.var_scale"))?,
            eps: self.float(&format!("{name}.eps"))?,
        })
    }
}

impl Int8Model {
    /// Reads an int8 model from the bytes of its file; any damage is an [`Error`] naming it.
    pub fn from_bytes(bytes: &[u8]) -> Result<(Int8Model, HashMap<String, String>)> {
        let (_, meta) = SafeTensors::read_metadata(bytes)
            .map_err(|e| Error(format!("not a safetensors file (or damaged): {e}")))?;
        let info = meta.metadata().clone().unwrap_or_default();
        match info.get("format") {
            Some(f) if f == INT8_FORMAT => {}
            Some(f) => return err(format!("has format `{f}`, expected `{INT8_FORMAT}`")),
            None => return err("is not a textzoo model (no `format` in its metadata)"),
        }
        let config: ModelConfig = serde_json::from_str(
            info.get("model_config")
                .ok_or_else(|| Error("metadata `model_config` is missing".into()))?,
        )
        .map_err(|e| Error(format!("model_config: {e}")))?;
        config
            .check_sizes()
            .map_err(|e| Error(format!("model_config: {e}")))?;
        let scalars = match info
            .get("int8_scalars")
            .map(|s| serde_json::from_str::<serde_json::Value>(s))
        {
            Some(Ok(serde_json::Value::Object(m))) => m,
            _ => return err("metadata `int8_scalars` is missing or not a JSON object"),
        };
        let tensors =
            SafeTensors::deserialize(bytes).map_err(|e| Error(format!("damaged: {e}")))?;
        let r = Reader { tensors, scalars };
        let net = match config.kind {
            Kind::TinyGpt | Kind::TinyBertGenerator => {
                Net::Transformer(read_transformer(&r, &config)?)
            }
            Kind::Gru | Kind::Lstm => Net::Recurrent(read_recurrent(&r, &config)?),
        };
        Ok((Int8Model { config, net }, info))
    }
}

fn read_transformer(r: &Reader, cfg: &ModelConfig) -> Result<Transformer> {
    let (v, t, c, f) = (cfg.vocab_size, cfg.seq_len, cfg.embed_dim, cfg.ffn_dim);
    let heads = cfg.num_heads;
    let mut blocks = Vec::new();
    for i in 0..cfg.num_layers {
        let p = format!("blocks.{i}");
        let gelu = r.i8(&format!("{p}.ffn.gelu_lut"), &[256])?;
        blocks.push(Block {
            ln1: r.layernorm(&format!("{p}.ln1"), c)?,
            q: r.linear(&format!("{p}.attn.q"), c, c, true)?,
            k: r.linear(&format!("{p}.attn.k"), c, c, true)?,
            v: r.linear(&format!("{p}.attn.v"), c, c, true)?,
            attn: AttnParams {
                heads,
                head_dim: c / heads,
                q_zp: r.zp(&format!("{p}.attn.q_zp"))?,
                k_zp: r.zp(&format!("{p}.attn.k_zp"))?,
                v_zp: r.zp(&format!("{p}.attn.v_zp"))?,
                softmax: r.requant(&format!("{p}.attn.softmax"))?,
                pv: r.requant(&format!("{p}.attn.pv"))?,
                out_zp: r.zp(&format!("{p}.attn.out_zp"))?,
            },
            proj: r.linear(&format!("{p}.attn.proj"), c, c, true)?,
            res1: r.requant(&format!("{p}.res1"))?,
            x_zp: r.zp(&format!("{p}.x_zp"))?,
            res2_zp: r.zp(&format!("{p}.res2_zp"))?,
            ln2: r.layernorm(&format!("{p}.ln2"), c)?,
            up: r.linear(&format!("{p}.ffn.up"), c, f, true)?,
            up_zp: r.zp(&format!("{p}.ffn.up_zp"))?,
            gelu,
            down: r.linear(&format!("{p}.ffn.down"), f, c, true)?,
            res2: r.requant(&format!("{p}.res2"))?,
            y_zp: r.zp(&format!("{p}.y_zp"))?,
        });
    }
    let head_w = if r.has("head.weight") {
        Some(r.i8("head.weight", &[v, c])?)
    } else {
        None
    };
    let exp_lut = r.i32("softmax.exp_lut", EXP_LUT_LEN)?;
    if exp_lut
        .iter()
        .any(|&e| !(0..=crate::kernels::EXP_ONE).contains(&e))
        || exp_lut[0] <= 0
    {
        return err(
            "tensor `softmax.exp_lut` holds values outside [0, 2^16] (or a zero first entry)",
        );
    }
    Ok(Transformer {
        tok_emb: r.i8("tok_emb", &[v, c])?,
        tok_mult: r.mults("tok_emb.mult", v)?,
        tok_shift: r.shifts("tok_emb.shift", v)?,
        pos_emb: r.i8("pos_emb", &[t, c])?,
        pos_mult: r.mults("pos_emb.mult", t)?,
        pos_shift: r.shifts("pos_emb.shift", t)?,
        x0_zp: r.zp("x0_zp")?,
        blocks,
        ln_f: r.layernorm("ln_f", c)?,
        head_w,
        head_bias: r.i32("head.bias", v)?,
        head_scale: r.f32("head.scale", v)?,
        exp_lut,
    })
}

fn read_recurrent(r: &Reader, cfg: &ModelConfig) -> Result<Recurrent> {
    let (v, e, h) = (cfg.vocab_size, cfg.embed_dim, cfg.hidden_dim);
    if cfg.num_layers == 0 || e > crate::rnn::MAX_DIM || h > crate::rnn::MAX_DIM {
        return err("model_config: recurrent sizes out of range for the int8 runtime");
    }
    let g = crate::rnn::gates(cfg.kind) * h;
    let lstm = cfg.kind == Kind::Lstm;
    let mut layers = Vec::new();
    for i in 0..cfg.num_layers {
        let p = format!("rnn.{i}");
        let in_dim = if i == 0 { e } else { h };
        let cell_bits = r.int(&format!("{p}.cell_bits"))?;
        if !(0..=15).contains(&cell_bits) {
            return err(format!("scalar `{p}.cell_bits` is outside [0, 15]"));
        }
        layers.push(RnnLayer {
            in_dim,
            w_ih: r.i8(&format!("{p}.weight_ih"), &[g, in_dim])?,
            ih_mult: r.mults(&format!("{p}.ih.mult"), g)?,
            ih_shift: r.shifts(&format!("{p}.ih.shift"), g)?,
            w_hh: r.i8(&format!("{p}.weight_hh"), &[g, h])?,
            hh_mult: r.mults(&format!("{p}.hh.mult"), g)?,
            hh_shift: r.shifts(&format!("{p}.hh.shift"), g)?,
            bias: r.i32(&format!("{p}.bias_q20"), g)?,
            bias_hn: if lstm {
                Vec::new()
            } else {
                r.i32(&format!("{p}.bias_hn_q20"), h)?
            },
            cell_bits,
        });
    }
    let head_w = if r.has("head.weight") {
        Some(r.i8("head.weight", &[v, h])?)
    } else if e != h {
        return err("tensor `head.weight` is missing (and the embedding cannot serve as the head)");
    } else {
        None
    };
    let n = crate::rnn::ACT_LUT_LEN;
    Ok(Recurrent {
        tok_emb: r.i8("tok_emb", &[v, e])?,
        layers,
        head_w,
        head_scale: r.f32("head.scale", v)?,
        head_bias: r.f32("head.bias", v)?,
        sigmoid_lut: r.i16("sigmoid_lut", n)?,
        tanh_lut: r.i16("tanh_lut", n)?,
    })
}
