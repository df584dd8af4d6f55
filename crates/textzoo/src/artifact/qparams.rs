//! The real-valued quantization of an int8 model: every activation's scale and zero point
//! and every int8 weight's per-row scales, as quantization chose them.
//!
//! The int8 structs of `textzoo-rt` carry only what the integer kernels need (fixed-point
//! multipliers with the scales folded in), from which the scales cannot be recovered. Formats
//! that describe quantization by scale and zero point (ONNX `QuantizeLinear`, TFLite tensor
//! quantization) need them as they were, so the int8 file keeps them in its metadata
//! (`quant_params`). Files written before this record existed have none.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Metadata key of the record in the int8 file.
pub const QUANT_PARAMS_KEY: &str = "quant_params";

/// One per-tensor activation quantization: `real = scale · (q − zero_point)`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ActParam {
    pub scale: f64,
    pub zero_point: i32,
}

/// Every activation (by calibration tap name: `x0`, `blocks.{i}.ln1`, …, `ln_f`) and every
/// int8 weight (by its tensor name in the int8 file: `tok_emb`, `blocks.{i}.attn.q.weight`,
/// `rnn.{l}.weight_ih`, …; symmetric, zero point 0, one scale per row, kept as f32 — the
/// precision ONNX and TFLite carry scales in — so the record stays small beside the weights).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct QuantParams {
    pub activations: BTreeMap<String, ActParam>,
    pub weights: BTreeMap<String, Vec<f32>>,
}

impl QuantParams {
    /// The activation `name`, or the reason it is missing.
    pub fn act(&self, name: &str) -> Result<ActParam, String> {
        self.activations
            .get(name)
            .copied()
            .ok_or_else(|| format!("no quantization parameters for activation `{name}`"))
    }

    /// The per-row scales of weight `name`, or the reason they are missing.
    pub fn weight(&self, name: &str) -> Result<Vec<f64>, String> {
        self.weights
            .get(name)
            .map(|v| v.iter().map(|&x| x as f64).collect())
            .ok_or_else(|| format!("no quantization parameters for weight `{name}`"))
    }

    /// Records the per-row scales of weight `name`.
    pub fn set_weight(&mut self, name: &str, scales: &[f64]) {
        let v = scales.iter().map(|&x| x as f32).collect();
        self.weights.insert(name.into(), v);
    }
}
