//! Interchange exports of textzoo models, their checks, and the hand-off to ST Edge AI.
//!
//! - [`export`] (the stage behind `quantization.export` and `textzoo export`): ONNX float from
//!   the float model, ONNX QDQ and TFLite int8 from the int8 model, with the scales and zero
//!   points quantization recorded (`artifact::QuantParams`). Same model → same bytes.
//! - [`check`]: what `textzoo check FILE` reports on a `.safetensors`, `.onnx` or `.tflite`.
//! - [`stedgeai`]: `stedgeai analyze` / `generate` on an exported `.tflite`, and its report.

pub mod check;
pub mod onnx;
pub mod rnn_spec;
pub mod spec;
pub mod stedgeai;
pub mod tflite;

use crate::artifact::{FloatFile, Int8File};
use crate::config::ExportFormat;
use crate::error::{Error, Result};
use crate::util::{file_size, write_atomic, Metrics};
use std::path::{Path, PathBuf};

/// File names of the exports (in the output directory).
pub const ONNX_FLOAT_FILE: &str = "model_float.onnx";
pub const ONNX_QDQ_FILE: &str = "model_qdq.onnx";
pub const TFLITE_FILE: &str = "model_int8.tflite";
pub const TFLITE_NO_EMBEDDING_FILE: &str = "model_int8_no_embedding.tflite";
pub const EMBEDDING_HEADER: &str = "embedding.h";

/// What the export stage reads: whichever models exist (a float model gives the float ONNX;
/// an int8 model the QDQ ONNX and the TFLite file).
pub struct ExportInput<'a> {
    pub float: Option<&'a FloatFile>,
    pub int8: Option<&'a Int8File>,
    pub formats: &'a [ExportFormat],
    /// TFLite flavour (see `config::Quantization::include_embedding`).
    pub include_embedding: bool,
    pub dir: PathBuf,
}

/// One file written.
#[derive(Debug, Clone)]
pub struct Exported {
    /// `onnx_float`, `onnx_qdq`, `tflite_int8`, `tflite_int8_no_embedding`, `embedding_h`.
    pub kind: &'static str,
    pub path: PathBuf,
    pub bytes: u64,
}

#[derive(Debug, Clone, Default)]
pub struct ExportReport {
    pub files: Vec<Exported>,
}

impl ExportReport {
    pub fn record(&self, m: &mut Metrics) {
        for f in &self.files {
            m.set("export", &format!("{}_bytes", f.kind), f.bytes);
            m.set(
                "export",
                &format!("{}_path", f.kind),
                f.path.display().to_string(),
            );
        }
    }

    /// One line per file, for the console.
    pub fn render(&self) -> String {
        self.files
            .iter()
            .map(|f| format!("exported {} ({} bytes)", f.path.display(), f.bytes))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

fn is_transformer(kind: textzoo_rt::Kind) -> bool {
    matches!(
        kind,
        textzoo_rt::Kind::TinyGpt | textzoo_rt::Kind::TinyBertGenerator
    )
}

/// Refuses what cannot be exported, before any work: every requested format needs a model it
/// can be made from, and the int8 model's recorded scales.
pub fn check(input: &ExportInput) -> Result<()> {
    for &f in input.formats {
        plan(input, f)?;
    }
    Ok(())
}

/// The int8 model in the form its exporters walk.
enum Int8Spec {
    Transformer(Box<spec::Spec>),
    Recurrent(rnn_spec::RnnSpec),
}

/// What one format writes from the input: the float and the int8 descriptions it needs.
struct Plan {
    float: Option<spec::Spec>,
    int8: Option<Int8Spec>,
}

fn plan(input: &ExportInput, f: ExportFormat) -> Result<Plan> {
    let kind = match (input.float, input.int8) {
        (Some(m), _) => m.meta.config.kind,
        (None, Some(q)) => q.model.config.kind,
        (None, None) => {
            return Err(Error::Usage(
                "export needs a float or an int8 model (general.model_path)".into(),
            ))
        }
    };
    if f == ExportFormat::Tflite && input.int8.is_none() {
        return Err(Error::Usage(
            "TFLite export writes the int8 model: give an int8 model, or quantize first (operation_mode=quantization or a chain with quantization)".into(),
        ));
    }
    // The float Transformer is described by a spec; a float gru/lstm is written from its file.
    let float = match (f, input.float) {
        (ExportFormat::Onnx, Some(m)) if is_transformer(kind) => Some(spec::Spec::from_float(m)?),
        _ => None,
    };
    let int8 = match input.int8 {
        Some(q) if is_transformer(kind) => {
            Some(Int8Spec::Transformer(Box::new(spec::Spec::from_int8(q)?)))
        }
        Some(q) => Some(Int8Spec::Recurrent(rnn_spec::RnnSpec::from_int8(q)?)),
        None => None,
    };
    Ok(Plan { float, int8 })
}

fn write(dir: &Path, name: &str, kind: &'static str, bytes: &[u8]) -> Result<Exported> {
    let path = dir.join(name);
    write_atomic(&path, bytes)?;
    Ok(Exported {
        kind,
        bytes: file_size(&path),
        path,
    })
}

/// Writes every requested format.
pub fn export(input: &ExportInput) -> Result<ExportReport> {
    std::fs::create_dir_all(&input.dir)
        .map_err(|e| Error::io(format!("creating {}", input.dir.display()), e))?;
    let mut files = Vec::new();
    let mut formats = input.formats.to_vec();
    formats.sort();
    formats.dedup();
    for f in formats {
        let Plan { float, int8 } = plan(input, f)?;
        match f {
            ExportFormat::Onnx => {
                let bytes = match (&float, input.float) {
                    (Some(s), _) => Some(onnx::float(s)),
                    (None, Some(m)) => Some(onnx::recurrent::float(m)?),
                    (None, None) => None,
                };
                if let Some(bytes) = bytes {
                    files.push(write(&input.dir, ONNX_FLOAT_FILE, "onnx_float", &bytes)?);
                }
                let bytes = match &int8 {
                    Some(Int8Spec::Transformer(s)) => Some(onnx::qdq(s)),
                    Some(Int8Spec::Recurrent(s)) => Some(onnx::recurrent::qdq(s)?),
                    None => None,
                };
                if let Some(bytes) = bytes {
                    files.push(write(&input.dir, ONNX_QDQ_FILE, "onnx_qdq", &bytes)?);
                }
            }
            ExportFormat::Tflite => {
                let (Some(s), Some(q)) = (&int8, input.int8) else {
                    continue;
                };
                let emb = input.include_embedding;
                let bytes = match s {
                    Int8Spec::Transformer(s) => tflite::write(s, &q.model, emb)?,
                    Int8Spec::Recurrent(s) => {
                        tflite::recurrent::write(s, emb, tflite::logit_range(&q.model))?
                    }
                };
                if emb {
                    files.push(write(&input.dir, TFLITE_FILE, "tflite_int8", &bytes)?);
                } else {
                    files.push(write(
                        &input.dir,
                        TFLITE_NO_EMBEDDING_FILE,
                        "tflite_int8_no_embedding",
                        &bytes,
                    )?);
                    let header = match s {
                        Int8Spec::Transformer(s) => tflite::embedding_header(&q.model, s)?,
                        Int8Spec::Recurrent(s) => tflite::rnn_embedding_header(s),
                    };
                    files.push(write(
                        &input.dir,
                        EMBEDDING_HEADER,
                        "embedding_h",
                        header.as_bytes(),
                    )?);
                }
            }
        }
    }
    for f in &files {
        tracing::info!("exported {} ({} bytes)", f.path.display(), f.bytes);
    }
    Ok(ExportReport { files })
}
