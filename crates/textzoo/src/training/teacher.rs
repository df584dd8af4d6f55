//! The teacher of knowledge distillation (`training.distillation`): a float model file opened
//! and checked before the run directory exists, then run forward only — no gradient, no
//! optimizer state — on the student's own batches.

use crate::artifact::{FloatFile, ModelFile};
use crate::config::Distillation;
use crate::data::TextTokenizer;
use crate::error::{Error, Result};
use crate::models::ModelConfig;
use crate::nn::distillation::Soft;
use crate::util::Metrics;
use std::path::Path;
use textzoo_rt::Rng;

/// A loaded teacher and the settings it is used with.
pub struct Teacher {
    pub file: FloatFile,
    /// The checksum of the teacher's weights (`xxh3-64:…`, as its file carries it).
    pub checksum: String,
    /// As configured (recorded as given; the loss uses them as `f32`).
    pub alpha: f64,
    pub temperature: f64,
}

impl Teacher {
    /// The teacher `settings` name, if any, checked against the student it will teach: a float
    /// model (an int8 file has no float logits to learn from), the run's tokenizer (the two
    /// distributions must be over the same tokens) and a window at least the student's. Every
    /// refusal is an input error (exit 2) naming the file and what would work.
    pub fn open(
        settings: &Distillation,
        tokenizer: &TextTokenizer,
        student: &ModelConfig,
    ) -> Result<Option<Teacher>> {
        let Some(path) = &settings.teacher_path else {
            return Ok(None);
        };
        let (file, checksum) = ModelFile::open_with_checksum(path)?;
        let file = match file {
            ModelFile::Float(f) => f,
            ModelFile::Int8(_) => {
                return Err(Error::input(
                    path,
                    "is an int8 model; training.distillation.teacher_path needs a float model (a training run's saved_models/model.safetensors)",
                ))
            }
        };
        check_tokenizer(path, &file.meta.tokenizer, tokenizer)?;
        let teacher = &file.meta.config;
        if teacher.seq_len < student.seq_len {
            return Err(Error::input(
                path,
                format!(
                    "is a teacher with a {}-token window, shorter than the student's model.seq_len ({}); give a teacher with a window of at least {} or set model.seq_len to at most {}",
                    teacher.seq_len, student.seq_len, student.seq_len, teacher.seq_len
                ),
            ));
        }
        Ok(Some(Teacher {
            file,
            checksum,
            alpha: settings.alpha,
            temperature: settings.temperature,
        }))
    }

    /// Positions the teacher predicts per window of `seq` tokens.
    pub fn positions(&self, seq: usize) -> usize {
        if self.file.meta.config.predicts_every_position() {
            seq
        } else {
            1
        }
    }

    /// The teacher's logits for `tokens` (`[batch, seq]`, the student's batch as it trains on
    /// it), as the soft side of the distillation loss. Evaluation mode: no dropout, nothing
    /// kept for a backward pass that never comes.
    pub fn soft(&mut self, tokens: &[u32], batch: usize, seq: usize) -> Soft<'_> {
        let teacher_positions = self.positions(seq);
        let (alpha, temperature) = (self.alpha as f32, self.temperature as f32);
        let logits = self
            .file
            .model
            .forward(tokens, batch, seq, false, &mut Rng::new(0));
        Soft {
            teacher: logits,
            teacher_positions,
            alpha,
            temperature,
        }
    }

    /// The settings and the teacher's identity, for `metrics.json` and the model file's
    /// training summary.
    pub fn summary(&self) -> serde_json::Value {
        serde_json::json!({
            "teacher_path": self.file.path.display().to_string(),
            "teacher_checksum": self.checksum,
            "teacher_model": self.file.meta.config.kind.name(),
            "teacher_parameters": self.file.model.num_params(),
            "alpha": self.alpha,
            "temperature": self.temperature,
        })
    }

    pub fn record(&self, m: &mut Metrics) {
        m.set("training", "distillation", self.summary());
    }
}

/// The teacher's tokenizer must be the run's, token for token; what differs is named.
fn check_tokenizer(path: &Path, teacher: &TextTokenizer, run: &TextTokenizer) -> Result<()> {
    if teacher.to_json() == run.to_json() {
        return Ok(());
    }
    let describe = |t: &TextTokenizer| {
        format!(
            "{} tokenizer, {} tokens",
            crate::data::tokenizer::kind_name(t.kind()),
            t.vocab_size()
        )
    };
    let how = if teacher.kind() == run.kind() && teacher.vocab_size() == run.vocab_size() {
        " with different tokens or settings"
    } else {
        ""
    };
    Err(Error::input(
        path,
        format!(
            "is a teacher whose tokenizer ({}) differs from this run's ({}){how}; the student must use the teacher's tokenizer: set preprocessing.tokenizer_path to the teacher run's tokenizer.json",
            describe(teacher),
            describe(run)
        ),
    ))
}
