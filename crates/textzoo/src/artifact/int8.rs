//! The int8 model file (`textzoo.int8.v1`): the `textzoo-rt` structs as safetensors tensors,
//! with the model config, the tokenizer and the quantization settings in the metadata.

use super::qparams::{QuantParams, QUANT_PARAMS_KEY};
use super::{config_and_tokenizer, load_as, seal, ModelMeta, INT8_FORMAT};
use crate::data::TextTokenizer;
use crate::error::{Error, Result};
use crate::util::write_atomic;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use textzoo_rt::Int8Model;

/// An int8 model (its `config` holds the model's kind and sizes) with its tokenizer, and the
/// file it was read from or saved to.
pub struct Int8File {
    pub path: PathBuf,
    pub model: Int8Model,
    pub tokenizer: TextTokenizer,
    /// The scales and zero points quantization chose (`None` in files written before they
    /// were recorded); what the ONNX and TFLite exports describe the int8 tensors with.
    pub params: Option<QuantParams>,
}

/// Writes the int8 model file (atomically) with the model config, tokenizer and settings, and
/// the checksum of its tensor data (see `seal`): `textzoo-rt` serializes, textzoo seals, so
/// the runtime needs no hashing dependency.
pub fn save(
    path: &Path,
    model: &Int8Model,
    meta: &ModelMeta,
    settings: &serde_json::Value,
) -> Result<()> {
    save_with_params(path, model, meta, settings, None)
}

/// [`save`], with the quantization parameters recorded beside the model when given.
pub fn save_with_params(
    path: &Path,
    model: &Int8Model,
    meta: &ModelMeta,
    settings: &serde_json::Value,
    params: Option<&QuantParams>,
) -> Result<()> {
    let mut info = HashMap::from([
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
    if let Some(p) = params {
        let json = serde_json::to_string(p).map_err(|e| Error::Internal(e.to_string()))?;
        info.insert(QUANT_PARAMS_KEY.to_string(), json);
    }
    let bytes = seal(path, info, |info| {
        model
            .to_bytes(info)
            .map_err(|e| Error::Internal(format!("writing {}: {e}", path.display())))
    })?;
    write_atomic(path, &bytes)
}

/// Loads an int8 model file; a float file or a damaged one is a clear input error.
pub fn load(path: &Path) -> Result<Int8File> {
    let refusal = "is a float model; an int8 model was expected";
    load_as(path, INT8_FORMAT, refusal, from_bytes)
}

/// The int8 model in `bytes`, whose metadata `info` names the int8 format.
pub(super) fn from_bytes(
    path: &Path,
    bytes: &[u8],
    info: &HashMap<String, String>,
) -> Result<Int8File> {
    let (model, _) = Int8Model::from_bytes(bytes)
        .map_err(|e| Error::input(path, format!("is a damaged int8 model: {e}")))?;
    let (config, tokenizer) = config_and_tokenizer(path, info)?;
    if model.config != config {
        return Err(Error::input(
            path,
            "is damaged: its runtime model and its model_config disagree",
        ));
    }
    let params = match info.get(QUANT_PARAMS_KEY) {
        Some(json) => Some(serde_json::from_str(json).map_err(|e| {
            Error::input(
                path,
                format!("is damaged: unreadable `{QUANT_PARAMS_KEY}`: {e}"),
            )
        })?),
        None => None,
    };
    Ok(Int8File {
        path: path.to_path_buf(),
        model,
        tokenizer,
        params,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::artifact::{float, ModelFile};
    use crate::config::{Calibration, Granularity, ModelName, Preprocessing};
    use crate::models::build;
    use crate::quantization::quantize;
    use crate::quantization::tests::{config, settings, stream, windows};

    #[test]
    fn int8_file_round_trips_and_float_loaders_refuse_it() {
        let dir = tempfile::tempdir().unwrap();
        let tokenizer = TextTokenizer::train(
            &Preprocessing {
                vocab_size: 20,
                ..Preprocessing::default()
            },
            "to be or not to be, that is the question.\n",
        )
        .unwrap();
        let mut cfg = config(ModelName::TinyGpt, tokenizer.vocab_size());
        cfg.tie_embeddings = true;
        let float_model = build(&cfg, 3);
        let s = stream(cfg.vocab_size as u32, 200, 3);
        let st = settings(Calibration::Percentile, Granularity::PerChannel);
        let model = quantize(float_model.as_ref(), &windows(&s, cfg.seq_len, 8, 20), &st).unwrap();
        let meta = ModelMeta {
            config: cfg,
            tokenizer,
            training: serde_json::Value::Null,
        };
        let path = dir.path().join("q.safetensors");
        save(&path, &model, &meta, &serde_json::json!({})).unwrap();
        let back = load(&path).unwrap();
        assert_eq!(back.model, model);
        assert!(matches!(ModelFile::open(&path), Ok(ModelFile::Int8(_))));
        let err = float::load(&path).err().unwrap().to_string();
        assert!(err.contains("int8"), "{err}");
        // Damage: truncated files are input errors (exit 2), not panics.
        let bytes = std::fs::read(&path).unwrap();
        let cut = dir.path().join("cut.safetensors");
        std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
        assert_eq!(load(&cut).err().unwrap().exit_code(), 2);
        assert_eq!(ModelFile::open(&cut).err().unwrap().exit_code(), 2);
        // One flipped bit in the tensor data, header intact: refused by the checksum.
        let (stored, actual) = crate::artifact::tests::stored_and_actual(&path);
        assert_eq!(stored.as_deref(), Some(actual.as_str()));
        let again = dir.path().join("again.safetensors");
        save(&again, &model, &meta, &serde_json::json!({})).unwrap();
        assert_eq!(crate::artifact::tests::stored_and_actual(&again).0, stored);
        crate::artifact::tests::flip_data_byte(&again);
        crate::artifact::tests::assert_checksum_mismatch(load(&again), &again);
        crate::artifact::tests::assert_checksum_mismatch(ModelFile::open(&again), &again);
        // A float file is not an int8 one.
        let fpath = dir.path().join("f.safetensors");
        float::save(&fpath, float_model.as_ref(), &meta, None).unwrap();
        assert!(matches!(ModelFile::open(&fpath), Ok(ModelFile::Float(_))));
        assert_eq!(load(&fpath).err().unwrap().exit_code(), 2);
    }
}
