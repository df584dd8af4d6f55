//! One description of an int8 `gru` / `lstm` for the exporters (ONNX QDQ, TFLite): textzoo's
//! int8 weights with the per-row scales quantization recorded (`quant_params`), its int32
//! biases in Q20, and the fixed-point formats of `textzoo_rt::rnn` (state Q0.15, gate inputs
//! Q3.12, the LSTM cell at `2^(cell_bits − 15)`).
//!
//! Gate blocks stay in textzoo's (PyTorch's) order: GRU r, z, n; LSTM i, f, g, o.

use crate::artifact::{Int8File, QuantParams};
use crate::error::{Error, Result};
use textzoo_rt::model::{Net, Recurrent};
use textzoo_rt::quant::Requant;
use textzoo_rt::rnn::{gates, PRE_BITS, STATE_BITS};
use textzoo_rt::{Kind, ModelConfig};

/// An int8 matrix `[rows, cols]`, symmetric, one scale per row.
pub struct Rows {
    pub w: Vec<i8>,
    pub scales: Vec<f64>,
    pub cols: usize,
}

impl Rows {
    /// Rows `from..to` (a gate's block).
    pub fn slice(&self, from: usize, to: usize) -> Rows {
        Rows {
            w: self.w[from * self.cols..to * self.cols].to_vec(),
            scales: self.scales[from..to].to_vec(),
            cols: self.cols,
        }
    }
}

pub struct RnnLayerSpec {
    pub w_ih: Rows,
    pub w_hh: Rows,
    /// Q20 biases added on the input side: every gate row (`b_ih + b_hh`, except the GRU's n
    /// rows: `b_in` only).
    pub bias: Vec<i32>,
    /// GRU: `b_hn` (Q20), inside the reset gate's product; empty for the LSTM.
    pub bias_hn: Vec<i32>,
    /// LSTM: the cell's scale is `2^(cell_bits − 15)`.
    pub cell_bits: i32,
}

pub struct RnnSpec {
    pub config: ModelConfig,
    /// `[vocab, E]` int8 with one scale (`tok_scale`): layer 0's input rows.
    pub tok_emb: Vec<i8>,
    pub tok_scale: f64,
    pub layers: Vec<RnnLayerSpec>,
    /// `[vocab, H]` (the token table when tied) and its per-row scales.
    pub head: Rows,
    pub head_bias: Vec<f32>,
}

/// The real value of a Q20 bias.
pub fn q20(b: i32) -> f64 {
    b as f64 / 2f64.powi(PRE_BITS)
}

impl RnnSpec {
    pub fn from_int8(f: &Int8File) -> Result<RnnSpec> {
        let Net::Recurrent(m) = &f.model.net else {
            return Err(Error::Internal("recurrent export of a Transformer".into()));
        };
        let qp = f.params.as_ref().ok_or_else(|| {
            Error::input(
                &f.path,
                "carries no quantization parameters (written before textzoo recorded them); quantize the float model again to export it",
            )
        })?;
        build(&f.model.config, m, qp)
            .map_err(|e| Error::input(&f.path, format!("cannot be exported: {e}")))
    }

    pub fn gates(&self) -> usize {
        gates(self.config.kind)
    }

    pub fn is_lstm(&self) -> bool {
        self.config.kind == Kind::Lstm
    }
}

/// `name`'s per-row scales for `rows` rows (a per-tensor record may hold a single scale).
fn scales(qp: &QuantParams, name: &str, rows: usize) -> std::result::Result<Vec<f64>, String> {
    let s = qp.weight(name)?;
    match s.len() {
        n if n == rows => Ok(s),
        1 => Ok(vec![s[0]; rows]),
        n => Err(format!("`{name}` has {n} scales for {rows} rows")),
    }
}

/// The recorded scales must be the ones the model's multipliers were made from
/// (`w · s_in · 2²⁰` per row, see `quantization::convert_recurrent`): an export describing
/// other scales would be a different model. The record keeps f32 scales, hence the tolerance.
fn agree(
    name: &str,
    ws: &[f64],
    s_in: f64,
    mult: &[i32],
    shift: &[i32],
) -> std::result::Result<(), String> {
    for (row, ((&w, &m), &sh)) in ws.iter().zip(mult).zip(shift).enumerate() {
        let want = w * s_in * 2f64.powi(PRE_BITS);
        let got = Requant { mult: m, shift: sh }.real();
        if (got - want).abs() > 1e-5 * want.abs() {
            return Err(format!(
                "the recorded scale of `{name}` row {row} ({w:e}) disagrees with the model's multiplier"
            ));
        }
    }
    Ok(())
}

fn build(
    cfg: &ModelConfig,
    m: &Recurrent,
    qp: &QuantParams,
) -> std::result::Result<RnnSpec, String> {
    let (e, h, v) = (cfg.embed_dim, cfg.hidden_dim, cfg.vocab_size);
    let g = gates(cfg.kind) * h;
    let tok = scales(qp, "tok_emb", v)?;
    let tok_scale = tok[0];
    if tok.iter().any(|&s| s != tok_scale) {
        return Err("the token table of a gru/lstm has one scale; the record has several".into());
    }
    let mut layers = Vec::new();
    for (l, ly) in m.layers.iter().enumerate() {
        let name = |w: &str| format!("rnn.{l}.{w}");
        let s_in = if l == 0 {
            tok_scale
        } else {
            2f64.powi(-STATE_BITS)
        };
        let (s_ih, s_hh) = (
            scales(qp, &name("weight_ih"), g)?,
            scales(qp, &name("weight_hh"), g)?,
        );
        agree(&name("weight_ih"), &s_ih, s_in, &ly.ih_mult, &ly.ih_shift)?;
        agree(
            &name("weight_hh"),
            &s_hh,
            2f64.powi(-STATE_BITS),
            &ly.hh_mult,
            &ly.hh_shift,
        )?;
        layers.push(RnnLayerSpec {
            w_ih: Rows {
                w: ly.w_ih.clone(),
                scales: s_ih,
                cols: ly.in_dim,
            },
            w_hh: Rows {
                w: ly.w_hh.clone(),
                scales: s_hh,
                cols: h,
            },
            bias: ly.bias.clone(),
            bias_hn: ly.bias_hn.clone(),
            cell_bits: ly.cell_bits,
        });
    }
    let head = match &m.head_w {
        Some(w) => Rows {
            w: w.clone(),
            scales: scales(qp, "head.weight", v)?,
            cols: h,
        },
        None => Rows {
            w: m.tok_emb.clone(),
            scales: tok,
            cols: e,
        },
    };
    Ok(RnnSpec {
        config: cfg.clone(),
        tok_emb: m.tok_emb.clone(),
        tok_scale,
        layers,
        head,
        head_bias: m.head_bias.clone(),
    })
}
