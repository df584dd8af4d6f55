//! The model files, both formats in one place: the float model (`textzoo.float.v1`, weights
//! plus optional optimizer state for resume) and the int8 model (`textzoo.int8.v1`, the
//! `textzoo-rt` structs). Both are `.safetensors` files whose metadata carries the model
//! config and the tokenizer, so one file is enough to start any stage.
//!
//! [`ModelFile::open`] reads a file once and says which kind it is; the stage-specific
//! loaders ([`float::load`], [`int8::load`]) refuse the other kind with a message that says
//! what was expected, and damaged or foreign files with one that says why.
//!
//! Every model file carries a checksum of its tensor data in the metadata key `checksum`
//! ([`CHECKSUM_KEY`], written by `seal`), checked on every load, so weights whose bytes
//! changed on disk are refused (`damaged: checksum mismatch`) rather than evaluated or
//! deployed.

pub mod float;
pub mod foreign;
pub mod int8;
pub mod qparams;
pub mod zoo;

pub use float::{CheckpointState, FloatFile, ModelMeta};
pub use int8::Int8File;
pub use qparams::{ActParam, QuantParams};

use crate::data::TextTokenizer;
use crate::error::{Error, Result};
use crate::models::ModelConfig;
use crate::util::checksum;
use safetensors::SafeTensors;
use std::collections::HashMap;
use std::path::Path;

pub const FLOAT_FORMAT: &str = "textzoo.float.v1";
pub const INT8_FORMAT: &str = textzoo_rt::model::INT8_FORMAT;
/// The metadata key of a model file's checksum (see `seal`).
pub const CHECKSUM_KEY: &str = "checksum";

/// A model file of either kind, read once.
pub enum ModelFile {
    Float(FloatFile),
    Int8(Int8File),
}

impl ModelFile {
    /// Reads `path` and loads it as the kind its metadata names.
    pub fn open(path: &Path) -> Result<ModelFile> {
        Self::open_with_checksum(path).map(|(file, _)| file)
    }

    /// [`open`](Self::open), with the checksum of the file's tensor data (the one its
    /// metadata carries, verified; computed the same way for a file from before checksums),
    /// so a run can record exactly which weights it used.
    pub fn open_with_checksum(path: &Path) -> Result<(ModelFile, String)> {
        let bytes = read(path)?;
        let (format, info) = read_format(path, &bytes)?;
        let sum = checksum::checksum(data_section(&bytes).unwrap_or_default());
        let file = match format.as_str() {
            FLOAT_FORMAT => float::from_bytes(path, &bytes, &info).map(ModelFile::Float),
            INT8_FORMAT => int8::from_bytes(path, &bytes, &info).map(ModelFile::Int8),
            other => Err(Error::input(
                path,
                format!("has format `{other}`, expected `{FLOAT_FORMAT}` or `{INT8_FORMAT}`"),
            )),
        }?;
        Ok((file, sum))
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

/// The data section of a safetensors file: the bytes after the 8-byte header length and the
/// JSON header, i.e. every tensor's data in the order safetensors lays them out. It depends on
/// the tensors only, never on the metadata. `None` if `bytes` is too short to hold its header.
fn data_section(bytes: &[u8]) -> Option<&[u8]> {
    let len: [u8; 8] = bytes.get(..8)?.try_into().ok()?;
    let start = usize::try_from(u64::from_le_bytes(len))
        .ok()?
        .checked_add(8)?;
    bytes.get(start..)
}

/// The bytes of a model file whose metadata carries its checksum: `serialize` writes the file
/// for a metadata map; it is called once without the checksum, the checksum of that file's
/// data section (`xxh3-64:<hex>` of every tensor's bytes as laid out in the file, see
/// [`checksum::checksum`]) is added to the metadata as [`CHECKSUM_KEY`], and it is called
/// again. The data section does not depend on the metadata, so the checksum holds for the
/// second file; that is checked rather than assumed.
fn seal(
    path: &Path,
    mut info: HashMap<String, String>,
    serialize: impl Fn(HashMap<String, String>) -> Result<Vec<u8>>,
) -> Result<Vec<u8>> {
    let no_header = || Error::Internal(format!("serializing {}: no header", path.display()));
    let unsealed = serialize(info.clone())?;
    let data = data_section(&unsealed).ok_or_else(no_header)?;
    info.insert(CHECKSUM_KEY.to_string(), checksum::checksum(data));
    let sealed = serialize(info)?;
    if data_section(&sealed).ok_or_else(no_header)? != data {
        return Err(Error::Internal(format!(
            "serializing {}: the tensor data changed with the metadata",
            path.display()
        )));
    }
    Ok(sealed)
}

/// Reads the metadata of any textzoo model file, checks the checksum of its tensor data (see
/// `seal`; a file written before checksums existed loads with a note) and says which format
/// it is.
fn read_format(path: &Path, bytes: &[u8]) -> Result<(String, HashMap<String, String>)> {
    let damaged = |why: String| Error::input(path, why);
    let (_, metadata) =
        SafeTensors::read_metadata(bytes).map_err(|e| match foreign::identify(path, bytes) {
            Some(format) => damaged(foreign::refusal(format)),
            None => damaged(format!(
                "is not a safetensors model file (or it is damaged): {e}"
            )),
        })?;
    let info = metadata.metadata().clone().unwrap_or_default();
    let format = info.get("format").cloned().ok_or_else(|| {
        damaged(
            "is a safetensors file but not a textzoo model (no `format` in its metadata)".into(),
        )
    })?;
    let data = data_section(bytes)
        .ok_or_else(|| damaged("is damaged: shorter than its header says".into()))?;
    checksum::verify(path, info.get(CHECKSUM_KEY).map(String::as_str), data)?;
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Flips one bit in the middle of the tensor data of the file at `path`, header untouched:
    /// the damage a checksum must catch, since the file still parses.
    pub(crate) fn flip_data_byte(path: &Path) {
        let mut bytes = std::fs::read(path).unwrap();
        let start = bytes.len() - data_section(&bytes).unwrap().len();
        let at = start + (bytes.len() - start) / 2;
        bytes[at] ^= 0x01;
        std::fs::write(path, bytes).unwrap();
    }

    /// Asserts that loading gave the checksum error for `path`, with exit code 2.
    pub(crate) fn assert_checksum_mismatch<T>(result: Result<T>, path: &Path) {
        let err = result.err().expect("a damaged file must be refused");
        assert_eq!(err.exit_code(), 2);
        let text = err.to_string();
        assert!(text.contains("damaged: checksum mismatch"), "{text}");
        assert!(text.contains(&path.display().to_string()), "{text}");
    }

    /// The checksum a model file stores, and the one its data section has.
    pub(crate) fn stored_and_actual(path: &Path) -> (Option<String>, String) {
        let bytes = std::fs::read(path).unwrap();
        let (_, info) = read_format(path, &bytes).unwrap();
        let actual = checksum::checksum(data_section(&bytes).unwrap());
        (info.get(CHECKSUM_KEY).cloned(), actual)
    }

    #[test]
    fn files_written_before_checksums_still_load() {
        let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("../textzoo-cli/tests/golden/gru");
        for name in ["model.safetensors", "model_int8.safetensors"] {
            let path = golden.join(name);
            assert_eq!(stored_and_actual(&path).0, None, "{name} has no checksum");
            assert!(ModelFile::open(&path).is_ok(), "{name}");
        }
        assert!(float::load(&golden.join("model.safetensors")).is_ok());
        assert!(int8::load(&golden.join("model_int8.safetensors")).is_ok());
    }

    #[test]
    fn data_section_needs_the_whole_header() {
        assert_eq!(
            data_section(&[1, 0, 0, 0, 0, 0, 0, 0, b' ', 7, 8]),
            Some(&[7u8, 8][..])
        );
        assert_eq!(data_section(&[9, 0, 0, 0, 0, 0, 0, 0, b' ']), None);
        assert_eq!(data_section(&[255; 8]), None);
        assert_eq!(data_section(&[1, 2]), None);
    }
}
