//! int8 post-training quantization (DESIGN §6): calibrate a float model on representative
//! windows, convert it to the `textzoo-rt` int8 model, write
//! `<run_dir>/quantized_models/model_int8.safetensors`; and the int8 model as a
//! [`LanguageModel`], so evaluation and prediction run it through the float model's code path.

pub mod calibrate;
pub mod convert;

use crate::config::{Config, ModelName};
use crate::data::TextTokenizer;
use crate::error::{Error, Result};
use crate::models::file::{self, ModelMeta, FLOAT_FORMAT, INT8_FORMAT};
use crate::models::lm::{model_window, LanguageModel};
use crate::models::{FloatModel, ModelConfig};
use crate::run::{write_atomic, Run};
pub use convert::Settings;
use rayon::prelude::*;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use textzoo_rt::model::Net;
use textzoo_rt::rnn::{self, RnnState};
use textzoo_rt::transformer::{self, Decoder, State};
use textzoo_rt::{Int8Model, Kind};

pub const INT8_DIR: &str = "quantized_models";
pub const INT8_FILE: &str = "model_int8.safetensors";

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

/// Writes the int8 model file (atomically) with the model config, tokenizer and settings.
pub fn save(
    path: &Path,
    model: &Int8Model,
    meta: &ModelMeta,
    settings: &serde_json::Value,
) -> Result<()> {
    let info = HashMap::from([
        (
            "model_config".to_string(),
            serde_json::to_string(&meta.config).map_err(|e| Error::Internal(e.to_string()))?,
        ),
        ("tokenizer".to_string(), meta.tokenizer.to_json()),
        ("quantization".to_string(), settings.to_string()),
        (
            "textzoo_version".to_string(),
            env!("CARGO_PKG_VERSION").to_string(),
        ),
    ]);
    let bytes = model
        .to_bytes(info)
        .map_err(|e| Error::Internal(format!("writing {}: {e}", path.display())))?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    }
    write_atomic(path, &bytes)
}

/// The runtime's memory for `model`: (activation arena bytes from the memory planner, KV-cache
/// bytes). The generated C declares exactly these static buffers.
/// For `gru`/`lstm` the second number is the recurrent state (`h`, `c`), which likewise lives
/// across steps.
pub fn memory_bytes(model: &Int8Model) -> (usize, usize) {
    match model.net {
        Net::Transformer(_) => {
            let l = transformer::Layout::new(&model.config);
            (l.arena_bytes(), l.kv_cache_bytes)
        }
        Net::Recurrent(_) => {
            let l = rnn::RnnLayout::new(&model.config);
            (l.arena_bytes(), l.state_bytes)
        }
    }
}

/// A loaded int8 model file.
pub struct LoadedInt8 {
    pub model: Int8Model,
    pub config: ModelConfig,
    pub tokenizer: TextTokenizer,
}

/// Loads an int8 model file; a float file or a damaged one is a clear input error.
pub fn load_int8(path: &Path) -> Result<LoadedInt8> {
    let bytes = std::fs::read(path).map_err(|e| Error::input(path, format!("cannot read: {e}")))?;
    let (format, info) = file::read_format(path, &bytes)?;
    if format == FLOAT_FORMAT {
        return Err(Error::input(
            path,
            "is a float model; an int8 model was expected",
        ));
    }
    if format != INT8_FORMAT {
        return Err(Error::input(
            path,
            format!("has format `{format}`, expected `{INT8_FORMAT}`"),
        ));
    }
    let (model, _) = Int8Model::from_bytes(&bytes)
        .map_err(|e| Error::input(path, format!("is a damaged int8 model: {e}")))?;
    let (config, tokenizer) = file::config_and_tokenizer(path, &info)?;
    if model.config.vocab_size != config.vocab_size {
        return Err(Error::input(
            path,
            "is damaged: tokenizer and model disagree on the vocabulary size",
        ));
    }
    Ok(LoadedInt8 {
        model,
        config,
        tokenizer,
    })
}

/// Which kind of model file `path` is: `true` for int8.
pub fn is_int8_file(path: &Path) -> Result<bool> {
    let bytes = std::fs::read(path).map_err(|e| Error::input(path, format!("cannot read: {e}")))?;
    Ok(file::read_format(path, &bytes)?.0 == INT8_FORMAT)
}

// ----------------------------------------------------------------------------
// The int8 model behind the LanguageModel interface

/// `textzoo-rt` behind [`LanguageModel`]: windows run in parallel (one activation state per
/// worker); `tiny_gpt`'s `next_logits` uses the KV cache (exact sliding-window semantics:
/// see `textzoo_rt::transformer`).
pub struct Int8Lm {
    pub model: Int8Model,
    config: ModelConfig,
    decoder: Option<Decoder>,
    /// `gru`/`lstm`: the state after `rnn_tokens` (from the zero state).
    rnn: Option<RnnState>,
    rnn_tokens: Vec<u32>,
}

impl Int8Lm {
    pub fn new(model: Int8Model, config: ModelConfig) -> Self {
        Int8Lm {
            model,
            config,
            decoder: None,
            rnn: None,
            rnn_tokens: Vec::new(),
        }
    }
}

/// `gru`/`lstm` next-token logits: the float models read the last `seq_len` tokens from the
/// zero state, so the state is kept while the context only grows and rebuilt from zero when it
/// slides or changes.
fn rnn_next(
    m: &textzoo_rt::model::Recurrent,
    rt_cfg: &textzoo_rt::Config,
    state: &mut Option<RnnState>,
    tokens: &mut Vec<u32>,
    window: &[u32],
) -> Vec<f32> {
    let s = state.get_or_insert_with(|| RnnState::new(rt_cfg));
    let cached = tokens.len();
    let extends = cached > 0 && cached < window.len() && window[..cached] == tokens[..];
    if !extends {
        s.reset();
        tokens.clear();
    }
    for &t in &window[tokens.len()..] {
        internal(s.step(m, rt_cfg, t).map(|_| ()));
    }
    tokens.clear();
    tokens.extend_from_slice(window);
    s.logits.clone()
}

/// Token ids come from the model's own tokenizer (its vocabulary size was checked at load),
/// so a runtime refusal here is a bug, not bad input.
fn internal<T>(r: std::result::Result<T, String>) -> T {
    r.unwrap_or_else(|e| panic!("internal error in the int8 runtime: {e}"))
}

impl LanguageModel for Int8Lm {
    fn config(&self) -> &ModelConfig {
        &self.config
    }

    fn window_logits(&mut self, tokens: &[u32], batch: usize, seq: usize) -> Vec<f32> {
        let v = self.config.vocab_size;
        let per = if self.config.predicts_every_position() {
            seq * v
        } else {
            v
        };
        let mut out = vec![0.0f32; batch * per];
        let rt_cfg = self.model.config;
        match &self.model.net {
            Net::Transformer(net) => out
                .par_chunks_mut(per)
                .zip(tokens.par_chunks(seq))
                .for_each_init(
                    || State::new(&rt_cfg),
                    |state, (o, w)| internal(transformer::window_logits(net, &rt_cfg, state, w, o)),
                ),
            Net::Recurrent(net) => out
                .par_chunks_mut(per)
                .zip(tokens.par_chunks(seq))
                .for_each_init(
                    || RnnState::new(&rt_cfg),
                    |state, (o, w)| internal(rnn::window_logits(net, &rt_cfg, state, w, o)),
                ),
        }
        out
    }

    fn next_logits(&mut self, context: &[u32]) -> Vec<f32> {
        if let Net::Recurrent(r) = &self.model.net {
            let window = model_window(&self.config, context);
            let rt_cfg = self.model.config;
            return rnn_next(r, &rt_cfg, &mut self.rnn, &mut self.rnn_tokens, &window);
        }
        if self.model.config.kind != Kind::TinyGpt {
            let window = model_window(&self.config, context);
            return self.window_logits(&window, 1, window.len());
        }
        let window = model_window(&self.config, context);
        let Net::Transformer(net) = &self.model.net else {
            unreachable!("recurrent models were handled above")
        };
        let rt_cfg = self.model.config;
        let mut dec = self.decoder.take().unwrap_or_else(|| Decoder::new(&rt_cfg));
        let cached = dec.tokens.len();
        let extends = cached > 0 && cached < window.len() && window[..cached] == dec.tokens[..];
        if extends {
            for &t in &window[cached..] {
                internal(dec.step(net, &rt_cfg, t).map(|_| ()));
            }
        } else {
            internal(dec.prefill(net, &rt_cfg, &window).map(|_| ()));
        }
        let logits = dec.state.logits.clone();
        self.decoder = Some(dec);
        logits
    }
}

// ----------------------------------------------------------------------------
// The service

fn file_size(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// The refusal for an int8 file given where a float model is needed.
pub fn refuse_int8_input(path: &Path) -> Error {
    Error::input(
        path,
        "is already an int8 model and cannot be quantized again; give the float model (saved_models/model.safetensors)",
    )
}

/// The `quantization` service: the chain's float model or `general.model_path`.
pub fn run(run: &mut Run) -> Result<()> {
    let path: PathBuf = match (&run.artifacts.float_model, &run.config.general.model_path) {
        (Some(p), _) | (None, Some(p)) => p.clone(),
        (None, None) => {
            return Err(Error::Usage(
                "quantization needs general.model_path or a training step before it".into(),
            ))
        }
    };
    if is_int8_file(&path)? {
        return Err(refuse_int8_input(&path));
    }
    let loaded = file::load(&path)?;
    let cfg = loaded.meta.config.clone();
    let data = run
        .ensure_data(&loaded.meta.tokenizer, cfg.seq_len)?
        .clone();
    let mut wcfg: Config = run.config.clone();
    wcfg.model.seq_len = cfg.seq_len;
    let all = crate::data::representative_windows(&wcfg, &data)?;
    let n = run.config.quantization.num_samples.clamp(1, all.len());
    let windows: Vec<Vec<u32>> = (0..n).map(|i| all[i * all.len() / n].clone()).collect();
    let st = Settings::from_config(&run.config.quantization);
    tracing::info!(
        "quantizing {} to int8: {:?} calibration over {} windows, {:?} weights",
        path.display(),
        st.calibration,
        windows.len(),
        st.granularity
    );
    let model = quantize(loaded.model.as_ref(), &windows, &st)?;
    let out = run.dir.join(INT8_DIR).join(INT8_FILE);
    let settings = serde_json::json!({
        "calibration": run.config.quantization.calibration,
        "percentile": run.config.quantization.percentile,
        "granularity": run.config.quantization.granularity,
        "num_samples": windows.len(),
        "source": path.display().to_string(),
    });
    save(&out, &model, &loaded.meta, &settings)?;
    let (fsize, isize) = (file_size(&path), file_size(&out));
    run.metrics.set("float", "model_size_bytes", fsize);
    run.metrics.set("int8", "model_size_bytes", isize);
    run.metrics
        .set("int8", "calibration_windows", windows.len());
    let (arena, kv) = memory_bytes(&model);
    run.metrics.set("int8", "arena_bytes", arena);
    run.metrics.set("int8", "kv_cache_bytes", kv);
    run.metrics
        .set("int8", "model_path", out.display().to_string());
    run.artifacts.int8_model = Some(out.clone());
    if run.artifacts.float_model.is_none() {
        run.artifacts.float_model = Some(path.clone());
    }
    tracing::info!(
        "int8 model saved to {} ({isize} bytes; float {fsize} bytes); runtime memory: activation arena {arena} bytes, KV cache / recurrent state {kv} bytes",
        out.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests;
