//! int8 post-training quantization: calibrate a float model on representative windows and
//! convert it to the `textzoo-rt` int8 model ([`quantize`]); the stage ([`quantize_file`])
//! picks the calibration windows, writes the int8 model file and reports its size and memory.

pub mod calibrate;
pub mod convert;

use crate::artifact::{int8, FloatFile, Int8File, QuantParams};
use crate::config::{Dataset, ModelName, Quantization};
use crate::data::PreparedData;
use crate::error::Result;
use crate::models::FloatModel;
use crate::util::{file_size, Metrics};
pub use convert::Settings;
use std::path::PathBuf;
use textzoo_rt::Int8Model;

impl Settings {
    pub fn from_config(q: &crate::config::Quantization) -> Self {
        Settings {
            calibration: q.calibration,
            percentile: q.percentile,
            granularity: q.granularity,
        }
    }
}

/// Calibrates `model` on `windows` and converts it.
pub fn quantize(model: &dyn FloatModel, windows: &[Vec<u32>], st: &Settings) -> Result<Int8Model> {
    Ok(quantize_with_params(model, windows, st)?.0)
}

/// [`quantize`], with the scales and zero points it chose.
pub fn quantize_with_params(
    model: &dyn FloatModel,
    windows: &[Vec<u32>],
    st: &Settings,
) -> Result<(Int8Model, QuantParams)> {
    let cfg = model.config();
    let obs = calibrate::calibrate(model, windows)?;
    match cfg.kind {
        ModelName::TinyGpt | ModelName::TinyBertGenerator => {
            convert::convert_transformer(cfg, model.params(), &obs, st)
        }
        ModelName::Gru | ModelName::Lstm => {
            convert::convert_recurrent(cfg, model.params(), &obs, st)
        }
    }
}

// ----------------------------------------------------------------------------
// The stage

/// What the quantization stage reads.
pub struct QuantizeInput<'a> {
    pub float: &'a FloatFile,
    /// The corpus, tokenized with the float model's own tokenizer.
    pub data: &'a PreparedData,
    pub dataset: &'a Dataset,
    pub settings: &'a Quantization,
    /// Where the int8 model file goes.
    pub output: PathBuf,
}

/// What the quantization stage produced: the int8 model (in memory and on disk) and its facts.
pub struct QuantizeReport {
    pub int8: Int8File,
    pub calibration_windows: usize,
    pub float_bytes: u64,
    pub int8_bytes: u64,
    /// The runtime's activation arena, from the memory planner.
    pub arena_bytes: usize,
    /// The KV cache (`tiny_gpt`, `tiny_bert_generator`) or recurrent state (`gru`, `lstm`).
    pub kv_cache_bytes: usize,
}

impl QuantizeReport {
    pub fn record(&self, m: &mut Metrics) {
        m.set("float", "model_size_bytes", self.float_bytes);
        m.set("int8", "model_size_bytes", self.int8_bytes);
        m.set("int8", "calibration_windows", self.calibration_windows);
        m.set("int8", "arena_bytes", self.arena_bytes);
        m.set("int8", "kv_cache_bytes", self.kv_cache_bytes);
        m.set("int8", "model_path", self.int8.path.display().to_string());
    }
}

/// `quantization.num_samples` windows spread evenly over the representative data.
fn calibration_windows(input: &QuantizeInput) -> Result<Vec<Vec<u32>>> {
    let seq_len = input.float.meta.config.seq_len;
    let all = crate::data::representative_windows(input.dataset, seq_len, input.data)?;
    let n = input.settings.num_samples.clamp(1, all.len());
    Ok((0..n).map(|i| all[i * all.len() / n].clone()).collect())
}

/// Calibrates and converts the float model, writes the int8 model file.
pub fn quantize_file(input: &QuantizeInput) -> Result<QuantizeReport> {
    let float = input.float;
    let windows = calibration_windows(input)?;
    let q = input.settings;
    let st = Settings::from_config(q);
    tracing::info!(
        "quantizing {} to int8: {:?} calibration over {} windows, {:?} weights",
        float.path.display(),
        st.calibration,
        windows.len(),
        st.granularity
    );
    let (model, params) = quantize_with_params(float.model.as_ref(), &windows, &st)?;
    let settings = serde_json::json!({
        "calibration": q.calibration,
        "percentile": q.percentile,
        "granularity": q.granularity,
        "num_samples": windows.len(),
        "source": float.path.display().to_string(),
    });
    int8::save_with_params(&input.output, &model, &float.meta, &settings, Some(&params))?;
    let (float_bytes, int8_bytes) = (file_size(&float.path), file_size(&input.output));
    let (arena_bytes, kv_cache_bytes) = model.memory_bytes();
    tracing::info!(
        "int8 model saved to {} ({int8_bytes} bytes; float {float_bytes} bytes); runtime memory: activation arena {arena_bytes} bytes, KV cache / recurrent state {kv_cache_bytes} bytes",
        input.output.display()
    );
    Ok(QuantizeReport {
        int8: Int8File {
            path: input.output.clone(),
            model,
            tokenizer: float.meta.tokenizer.clone(),
            params: Some(params),
        },
        calibration_windows: windows.len(),
        float_bytes,
        int8_bytes,
        arena_bytes,
        kv_cache_bytes,
    })
}

#[cfg(test)]
pub(crate) mod tests;
