//! The model files, both formats in one place: the float model (`textzoo.float.v1`, weights
//! plus optional optimizer state for resume) and the int8 model (`textzoo.int8.v1`, the
//! `textzoo-rt` structs). Both are `.safetensors` files whose metadata carries the model
//! config and the tokenizer, so one file is enough to start any stage.
//!
//! [`ModelFile::open`] reads a file once and says which kind it is; the stage-specific
//! loaders ([`float::load`], [`int8::load`]) refuse the other kind with a message that says
//! what was expected, and damaged or foreign files with one that says why.

pub mod float;
pub mod int8;

pub use float::{CheckpointState, FloatFile, ModelMeta};
pub use int8::Int8File;

use crate::data::TextTokenizer;
use crate::error::{Error, Result};
use crate::models::ModelConfig;
use safetensors::SafeTensors;
use std::collections::HashMap;
use std::path::Path;

pub const FLOAT_FORMAT: &str = "textzoo.float.v1";
pub const INT8_FORMAT: &str = textzoo_rt::model::INT8_FORMAT;

/// A model file of either kind, read once.
pub enum ModelFile {
    Float(FloatFile),
    Int8(Int8File),
}

impl ModelFile {
    /// Reads `path` and loads it as the kind its metadata names.
    pub fn open(path: &Path) -> Result<ModelFile> {
        let bytes = read(path)?;
        let (format, info) = read_format(path, &bytes)?;
        match format.as_str() {
            FLOAT_FORMAT => float::from_bytes(path, &bytes, &info).map(ModelFile::Float),
            INT8_FORMAT => int8::from_bytes(path, &bytes, &info).map(ModelFile::Int8),
            other => Err(Error::input(
                path,
                format!("has format `{other}`, expected `{FLOAT_FORMAT}` or `{INT8_FORMAT}`"),
            )),
        }
    }

    pub fn path(&self) -> &Path {
        match self {
            ModelFile::Float(f) => &f.path,
            ModelFile::Int8(q) => &q.path,
        }
    }

    pub fn config(&self) -> &ModelConfig {
        match self {
            ModelFile::Float(f) => &f.meta.config,
            ModelFile::Int8(q) => &q.model.config,
        }
    }

    pub fn tokenizer(&self) -> &TextTokenizer {
        match self {
            ModelFile::Float(f) => &f.meta.tokenizer,
            ModelFile::Int8(q) => &q.tokenizer,
        }
    }
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::input(path, format!("cannot read: {e}")))
}

/// How one kind of model file is read from its path, bytes and metadata.
type Parse<T> = fn(&Path, &[u8], &HashMap<String, String>) -> Result<T>;

/// Loads `path`, a model file of format `want`, with `parse`; a textzoo model of the other kind
/// is refused with `refusal`, anything else with the format it has.
fn load_as<T>(path: &Path, want: &str, refusal: &str, parse: Parse<T>) -> Result<T> {
    let bytes = read(path)?;
    let (format, info) = read_format(path, &bytes)?;
    if format == want {
        return parse(path, &bytes, &info);
    }
    if format == FLOAT_FORMAT || format == INT8_FORMAT {
        return Err(Error::input(path, refusal));
    }
    Err(Error::input(
        path,
        format!("has format `{format}`, expected `{want}`"),
    ))
}

/// Reads the metadata of any textzoo model file and says which format it is.
fn read_format(path: &Path, bytes: &[u8]) -> Result<(String, HashMap<String, String>)> {
    let damaged = |why: String| Error::input(path, why);
    let (_, metadata) = SafeTensors::read_metadata(bytes).map_err(|e| {
        damaged(format!(
            "is not a safetensors model file (or it is damaged): {e}"
        ))
    })?;
    let info = metadata.metadata().clone().unwrap_or_default();
    let format = info.get("format").cloned().ok_or_else(|| {
        damaged(
            "is a safetensors file but not a textzoo model (no `format` in its metadata)".into(),
        )
    })?;
    Ok((format, info))
}

/// The model config and tokenizer every textzoo model file (float or int8) carries in its
/// metadata, checked against each other.
fn config_and_tokenizer(
    path: &Path,
    info: &HashMap<String, String>,
) -> Result<(ModelConfig, TextTokenizer)> {
    let field = |key: &str| {
        info.get(key)
            .ok_or_else(|| Error::input(path, format!("is damaged: metadata `{key}` is missing")))
    };
    let config: ModelConfig = serde_json::from_str(field("model_config")?)
        .map_err(|e| Error::input(path, format!("is damaged: model_config: {e}")))?;
    let tokenizer = TextTokenizer::from_json(field("tokenizer")?)
        .map_err(|e| Error::input(path, format!("is damaged: its tokenizer {e}")))?;
    if tokenizer.vocab_size() != config.vocab_size {
        return Err(Error::input(
            path,
            "is damaged: tokenizer and model disagree on the vocabulary size",
        ));
    }
    Ok((config, tokenizer))
}
