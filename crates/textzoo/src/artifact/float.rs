//! The float model file: one `.safetensors` holding the weights, and in its metadata the model
//! config, the tokenizer and a training summary — so `general.model_path=<file>` alone is
//! enough for evaluation, prediction and quantization. Checkpoints are the same file plus the
//! optimizer moments and the training state, so resume continues the same trajectory.

use super::{config_and_tokenizer, load_as, seal, FLOAT_FORMAT};
use crate::config::ModelName;
use crate::data::TextTokenizer;
use crate::error::{Error, Result};
use crate::models::{build, FloatModel, ModelConfig};
use crate::util::write_atomic;
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

const OPTIM_M: &str = "optimizer.m";
const OPTIM_V: &str = "optimizer.v";
const EMA_WEIGHTS: &str = "ema.weights";
const BEST_WEIGHTS: &str = "best.weights";

/// What a model file holds besides the weights.
#[derive(Debug, Clone)]
pub struct ModelMeta {
    pub config: ModelConfig,
    pub tokenizer: TextTokenizer,
    /// Free-form JSON summary of how the model was trained.
    pub training: serde_json::Value,
}

/// The optimizer moments and training-loop state of a checkpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckpointState {
    pub m: Vec<f32>,
    pub v: Vec<f32>,
    /// The moving average of the weights, when training keeps one (`training.ema_decay`).
    pub ema: Option<Vec<f32>>,
    /// The best validated weights so far, when they differ from the checkpoint's own and
    /// training hands the best on (`training.early_stopping.restore_best`): a resumed run
    /// must end with the model an uninterrupted one would.
    pub best: Option<Vec<f32>>,
    /// The training loop's own state (step, epoch position, schedule, best loss…) as JSON.
    pub state: serde_json::Value,
}

/// A float model with its metadata (and, for a checkpoint, the optimizer state), and the file
/// it was read from or saved to.
pub struct FloatFile {
    pub path: PathBuf,
    pub model: Box<dyn FloatModel>,
    pub meta: ModelMeta,
    pub checkpoint: Option<CheckpointState>,
}

fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// Writes the model (and optionally a checkpoint state) to `path`, atomically, with the
/// checksum of its tensor data in the metadata (see `seal`).
pub fn save(
    path: &Path,
    model: &dyn FloatModel,
    meta: &ModelMeta,
    checkpoint: Option<&CheckpointState>,
) -> Result<()> {
    let params = model.params();
    let mut owned: Vec<(String, Vec<usize>, Vec<u8>)> = params
        .entries
        .iter()
        .map(|e| (e.name.clone(), e.shape.clone(), f32_bytes(params.get(e.id))))
        .collect();
    let mut info = HashMap::from([
        ("format".to_string(), FLOAT_FORMAT.to_string()),
        (
            "textzoo_version".to_string(),
            env!("CARGO_PKG_VERSION").to_string(),
        ),
        ("model_config".to_string(), to_json(&meta.config)?),
        ("tokenizer".to_string(), meta.tokenizer.to_json()),
        ("training".to_string(), meta.training.to_string()),
    ]);
    if let Some(c) = checkpoint {
        owned.push((OPTIM_M.into(), vec![c.m.len()], f32_bytes(&c.m)));
        owned.push((OPTIM_V.into(), vec![c.v.len()], f32_bytes(&c.v)));
        if let Some(ema) = &c.ema {
            owned.push((EMA_WEIGHTS.into(), vec![ema.len()], f32_bytes(ema)));
        }
        if let Some(best) = &c.best {
            owned.push((BEST_WEIGHTS.into(), vec![best.len()], f32_bytes(best)));
        }
        info.insert("checkpoint".into(), c.state.to_string());
    }
    let bytes = seal(path, info, |info| {
        let views = owned
            .iter()
            .map(|(name, shape, bytes)| {
                TensorView::new(Dtype::F32, shape.clone(), bytes)
                    .map(|v| (name.clone(), v))
                    .map_err(|e| Error::Internal(format!("tensor {name}: {e}")))
            })
            .collect::<Result<Vec<_>>>()?;
        safetensors::serialize(views, Some(info))
            .map_err(|e| Error::Internal(format!("serializing {}: {e}", path.display())))
    })?;
    write_atomic(path, &bytes)
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| Error::Internal(e.to_string()))
}

/// A checkpoint tensor that only some checkpoints hold (the moving average, the best weights).
fn optional_f32(
    path: &Path,
    tensors: &SafeTensors,
    name: &str,
    len: usize,
) -> Result<Option<Vec<f32>>> {
    match tensors.tensor(name) {
        Ok(_) => Ok(Some(read_f32(path, tensors, name, &[len])?)),
        Err(_) => Ok(None),
    }
}

/// Loads a float model file (or checkpoint); refuses int8 files and damaged files clearly.
pub fn load(path: &Path) -> Result<FloatFile> {
    let refusal =
        "is an int8 model; this stage needs the float model (saved_models/model.safetensors)";
    load_as(path, FLOAT_FORMAT, refusal, from_bytes)
}

/// The float model in `bytes`, whose metadata `info` names the float format.
pub(super) fn from_bytes(
    path: &Path,
    bytes: &[u8],
    info: &HashMap<String, String>,
) -> Result<FloatFile> {
    let (config, tokenizer) = config_and_tokenizer(path, info)?;
    let training = info
        .get("training")
        .and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or(serde_json::Value::Null);
    let tensors = SafeTensors::deserialize(bytes)
        .map_err(|e| Error::input(path, format!("is damaged: {e}")))?;
    check_fits(path, &config, bytes.len())?;
    let mut model = build(&config, 0);
    let entries = model.params().entries.clone();
    for e in &entries {
        let values = read_f32(path, &tensors, &e.name, &e.shape)?;
        model.params_mut().get_mut(e.id).copy_from_slice(&values);
    }
    let checkpoint = match info.get("checkpoint") {
        Some(state) => Some(CheckpointState {
            m: read_f32(path, &tensors, OPTIM_M, &[model.num_params()])?,
            v: read_f32(path, &tensors, OPTIM_V, &[model.num_params()])?,
            ema: optional_f32(path, &tensors, EMA_WEIGHTS, model.num_params())?,
            best: optional_f32(path, &tensors, BEST_WEIGHTS, model.num_params())?,
            state: serde_json::from_str(state)
                .map_err(|e| Error::input(path, format!("is damaged: checkpoint state: {e}")))?,
        }),
        None => None,
    };
    Ok(FloatFile {
        path: path.to_path_buf(),
        model,
        meta: ModelMeta {
            config,
            tokenizer,
            training,
        },
        checkpoint,
    })
}

/// Refuses a `model_config` that is out of range or asks for more weights than the file's
/// `file_bytes` can hold, before the model is built: `build` allocates what the config says
/// (and asserts its head count), so a damaged config must not reach it.
fn check_fits(path: &Path, config: &ModelConfig, file_bytes: usize) -> Result<()> {
    let damaged = |why: String| Error::input(path, format!("is damaged: model_config: {why}"));
    config.check_sizes().map_err(damaged)?;
    if matches!(config.kind, ModelName::Gru | ModelName::Lstm) {
        // What the recurrent model's constructor asserts, plus a bound on the state size.
        if !(1..=1 << 20).contains(&config.hidden_dim) || config.num_layers == 0 {
            return Err(damaged("hidden_dim or num_layers out of range".into()));
        }
        if config.tie_embeddings && config.embed_dim != config.hidden_dim {
            return Err(damaged(
                "tie_embeddings needs embed_dim == hidden_dim for a recurrent model".into(),
            ));
        }
    }
    // A lower bound of the parameter count, from the largest tensors only (no overflow: every
    // size is at most 2^20 and there are at most 1024 layers).
    let [v, t, c, f, h, l] = [
        config.vocab_size,
        config.seq_len,
        config.embed_dim,
        config.ffn_dim,
        config.hidden_dim,
        config.num_layers,
    ]
    .map(|x| x as u128);
    let least = match config.kind {
        ModelName::TinyGpt | ModelName::TinyBertGenerator => {
            v * c + t * c + l * (4 * c * c + 2 * c * f)
        }
        // Both cells have at least three gates: `w_hh` is `[3h, h]` or larger in every layer.
        ModelName::Gru | ModelName::Lstm => v * c + l * 3 * h * h,
    };
    if least.saturating_mul(4) > file_bytes as u128 {
        return Err(damaged(format!(
            "it needs at least {least} weights, more than the file's {file_bytes} bytes hold"
        )));
    }
    Ok(())
}

fn read_f32(path: &Path, tensors: &SafeTensors, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
    let t = tensors
        .tensor(name)
        .map_err(|_| Error::input(path, format!("is damaged: tensor `{name}` is missing")))?;
    if t.dtype() != Dtype::F32 || t.shape() != shape {
        return Err(Error::input(
            path,
            format!(
                "is damaged: tensor `{name}` is {:?} {:?}, expected F32 {shape:?}",
                t.dtype(),
                t.shape()
            ),
        ));
    }
    Ok(t.data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::artifact::INT8_FORMAT;
    use crate::config::{ModelName, Preprocessing};

    /// A freshly built tiny model of `kind` (seed 7) and its metadata, nothing trained.
    fn tiny_model(kind: ModelName) -> (Box<dyn FloatModel>, ModelMeta) {
        let (config, tokenizer) = tiny(kind);
        let model = build(&config, 7);
        let meta = ModelMeta {
            config,
            tokenizer,
            training: serde_json::Value::Null,
        };
        (model, meta)
    }

    fn tiny(kind: ModelName) -> (ModelConfig, TextTokenizer) {
        let tokenizer = TextTokenizer::train(
            &Preprocessing {
                vocab_size: 20,
                ..Preprocessing::default()
            },
            "to be or not to be, that is the question.\n",
        )
        .unwrap();
        let config = ModelConfig {
            kind,
            vocab_size: tokenizer.vocab_size(),
            seq_len: 4,
            embed_dim: 8,
            num_heads: 2,
            num_layers: 1,
            ffn_dim: 16,
            hidden_dim: 8,
            dropout: 0.0,
            tie_embeddings: false,
        };
        (config, tokenizer)
    }

    #[test]
    fn round_trip_keeps_weights_metadata_and_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        for kind in [
            ModelName::TinyGpt,
            ModelName::TinyBertGenerator,
            ModelName::Gru,
            ModelName::Lstm,
        ] {
            let (config, tokenizer) = tiny(kind);
            let model = build(&config, 7);
            let meta = ModelMeta {
                config: config.clone(),
                tokenizer,
                training: serde_json::json!({"steps": 3}),
            };
            let state = CheckpointState {
                m: vec![0.5; model.num_params()],
                v: vec![0.25; model.num_params()],
                ema: (kind == ModelName::TinyGpt).then(|| vec![0.125; model.num_params()]),
                best: (kind == ModelName::Gru).then(|| vec![0.25; model.num_params()]),
                state: serde_json::json!({"step": 3}),
            };
            let path = dir.path().join("m.safetensors");
            save(&path, model.as_ref(), &meta, Some(&state)).unwrap();
            let back = load(&path).unwrap();
            assert_eq!(back.meta.config, config);
            assert_eq!(back.model.params().data, model.params().data, "{kind:?}");
            assert_eq!(back.checkpoint, Some(state));
            assert_eq!(back.meta.training["steps"], 3);
        }
    }

    /// Found by `tests/fuzz_models.rs`: a `model_config` edited to huge sizes made the loader
    /// allocate exabytes (the process aborted); `num_heads: 0` and a recurrent `num_layers: 0`
    /// reached `build`'s asserts.
    #[test]
    fn refuses_model_configs_the_file_cannot_hold() {
        let dir = tempfile::tempdir().unwrap();
        for (kind, field, value) in [
            (ModelName::Gru, "hidden_dim", serde_json::json!(1u64 << 30)),
            (ModelName::Gru, "hidden_dim", serde_json::json!(1 << 19)),
            (ModelName::TinyGpt, "embed_dim", serde_json::json!(1 << 20)),
            (ModelName::TinyGpt, "num_heads", serde_json::json!(0)),
            (ModelName::Lstm, "num_layers", serde_json::json!(1u64 << 40)),
            (ModelName::Gru, "num_layers", serde_json::json!(0)),
        ] {
            let (model, meta) = tiny_model(kind);
            let path = dir.path().join("m.safetensors");
            save(&path, model.as_ref(), &meta, None).unwrap();
            let bytes = std::fs::read(&path).unwrap();
            let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
            let mut header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
            let mut cfg = serde_json::to_value(&meta.config).unwrap();
            cfg[field] = value;
            header["__metadata__"]["model_config"] = cfg.to_string().into();
            let text = header.to_string();
            let mut damaged = (text.len() as u64).to_le_bytes().to_vec();
            damaged.extend_from_slice(text.as_bytes());
            damaged.extend_from_slice(&bytes[8 + n..]);
            std::fs::write(&path, damaged).unwrap();
            let err = load(&path).err().unwrap();
            assert_eq!(err.exit_code(), 2, "{field}: {err}");
            assert!(err.to_string().contains("model_config"), "{field}: {err}");
        }
    }

    #[test]
    fn flipped_weight_or_checkpoint_bytes_are_a_checksum_mismatch() {
        use crate::artifact::tests::{assert_checksum_mismatch, flip_data_byte, stored_and_actual};
        use crate::artifact::ModelFile;
        let dir = tempfile::tempdir().unwrap();
        let (model, meta) = tiny_model(ModelName::TinyGpt);
        let state = CheckpointState {
            m: vec![0.5; model.num_params()],
            v: vec![0.25; model.num_params()],
            ema: None,
            best: None,
            state: serde_json::json!({"step": 3}),
        };
        for checkpoint in [None, Some(&state)] {
            let path = dir.path().join("m.safetensors");
            save(&path, model.as_ref(), &meta, checkpoint).unwrap();
            // Deterministic: the same model gives the same checksum (the header's metadata
            // order varies between writes, the tensor data does not), and it holds.
            let again = dir.path().join("again.safetensors");
            save(&again, model.as_ref(), &meta, checkpoint).unwrap();
            assert_eq!(stored_and_actual(&path), stored_and_actual(&again));
            let (stored, actual) = stored_and_actual(&path);
            assert_eq!(stored.as_deref(), Some(actual.as_str()));
            assert!(actual.starts_with("xxh3-64:"), "{actual}");
            flip_data_byte(&path);
            assert_checksum_mismatch(load(&path), &path);
            assert_checksum_mismatch(ModelFile::open(&path), &path);
        }
    }

    #[test]
    fn refuses_damaged_foreign_and_int8_files() {
        let dir = tempfile::tempdir().unwrap();
        let (model, meta) = tiny_model(ModelName::TinyGpt);
        let path = dir.path().join("m.safetensors");
        save(&path, model.as_ref(), &meta, None).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let cut = dir.path().join("cut.safetensors");
        std::fs::write(&cut, &bytes[..bytes.len() - 10]).unwrap();
        assert!(load(&cut).err().unwrap().to_string().contains("damaged"));
        let junk = dir.path().join("junk.safetensors");
        std::fs::write(&junk, b"hello world, not a model").unwrap();
        assert!(load(&junk)
            .err()
            .unwrap()
            .to_string()
            .contains("not a safetensors"));
        let foreign = dir.path().join("foreign.safetensors");
        let data = f32_bytes(&[1.0]);
        let view = TensorView::new(Dtype::F32, vec![1], &data).unwrap();
        std::fs::write(
            &foreign,
            safetensors::serialize([("w", view)], None).unwrap(),
        )
        .unwrap();
        assert!(load(&foreign)
            .err()
            .unwrap()
            .to_string()
            .contains("not a textzoo model"));
        let int8 = dir.path().join("int8.safetensors");
        let view = TensorView::new(Dtype::F32, vec![1], &data).unwrap();
        let info = HashMap::from([("format".to_string(), INT8_FORMAT.to_string())]);
        std::fs::write(
            &int8,
            safetensors::serialize([("w", view)], Some(info)).unwrap(),
        )
        .unwrap();
        assert!(load(&int8)
            .err()
            .unwrap()
            .to_string()
            .contains("is an int8 model"));
    }
}
