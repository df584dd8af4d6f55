//! The training stage: build (or resume) a model, train it, save the float model file.

pub mod ema;
pub mod schedule;
pub mod shards;
pub mod state;
pub mod teacher;
pub mod trainer;

pub use teacher::Teacher;
pub use trainer::{Paths, StopReason, Trainer};

use crate::artifact::{float, FloatFile, ModelMeta};
use crate::config::Config;
use crate::data::service::save_artifacts;
use crate::data::{PreparedData, TextTokenizer};
use crate::error::{Error, Result};
use crate::models::{build, FloatModel};
use crate::prediction::generate;
use crate::util::layout::{CHECKPOINT_FILE, FLOAT_MODEL_FILE, TRAINING_LOG};
use crate::util::Metrics;
use std::path::Path;

/// What training reads: the configuration, the prepared corpus, the run directory it writes
/// the model, checkpoints, training log and token cache into, and the teacher when
/// distilling (opened and checked in preflight, see [`Teacher::open`]).
pub struct TrainInput<'a> {
    pub config: &'a Config,
    pub data: &'a PreparedData,
    pub dir: &'a Path,
    pub teacher: Option<Teacher>,
    /// The checkpoint `training.resume_training_from` names, opened by [`open_checkpoint`]
    /// before the run directory exists.
    pub resume: Option<FloatFile>,
}

/// Opens the checkpoint a run resumes from, refusing a file without training state (a saved
/// model, an int8 model): called before the run directory exists, so these are exit-2 errors
/// that leave nothing behind.
pub fn open_checkpoint(path: &Path) -> Result<FloatFile> {
    let loaded = float::load(path)?;
    if loaded.checkpoint.is_none() {
        return Err(Error::input(path, "is a model file without training state; resume needs a checkpoint (saved_models/checkpoints/last.safetensors)"));
    }
    Ok(loaded)
}

/// What training produced: the float model (saved, and kept in memory for the next stage) and
/// how the run went.
pub struct TrainReport {
    pub float: FloatFile,
    pub parameters: usize,
    pub macc_per_token: u64,
    pub steps: u64,
    pub epochs_started: u64,
    pub stopped_by: StopReason,
    pub seconds: f64,
    pub tokens_seen: u64,
    pub seed: u64,
    /// Windows per step, and `training.batch_size` when the training split was too small for
    /// it (each step then takes the whole split).
    pub batch_size: usize,
    pub batch_size_reduced_from: Option<usize>,
    /// Best validation loss and its step, when validation ran.
    pub best: Option<(f64, u64)>,
    /// (step, train loss, validation loss, learning rate) at every validation.
    pub history: Vec<(u64, f64, Option<f64>, f64)>,
    /// Whether the trained model's head shares the token embedding, and why not when
    /// `model.tie_embeddings` asked for it.
    pub tied: bool,
    pub untied_note: Option<String>,
    /// The distillation settings and the teacher's path and checksum, when there was one.
    pub distillation: Option<serde_json::Value>,
}

impl TrainReport {
    pub fn tokens_per_s(&self) -> f64 {
        self.tokens_seen as f64 / self.seconds.max(1e-9)
    }

    pub fn record(&self, m: &mut Metrics) {
        m.set("training", "parameters", self.parameters);
        m.set("training", "macc_per_token", self.macc_per_token);
        m.set("training", "steps", self.steps);
        m.set("training", "epochs_started", self.epochs_started);
        m.set("training", "stopped_by", self.stopped_by.name());
        m.set("training", "seconds", self.seconds);
        m.set("training", "tokens_seen", self.tokens_seen);
        m.set("training", "tokens_per_s", self.tokens_per_s());
        m.set("training", "seed", self.seed);
        m.set("training", "tie_embeddings", self.tied);
        if let Some(note) = &self.untied_note {
            m.set("training", "tie_embeddings_note", note.as_str());
        }
        if let Some(d) = &self.distillation {
            m.set("training", "distillation", d.clone());
        }
        m.set("training", "batch_size", self.batch_size);
        if let Some(requested) = self.batch_size_reduced_from {
            m.set("training", "batch_size_reduced_from", requested);
        }
        if let Some((best, step)) = self.best {
            m.set("training", "best_val_loss", best);
            m.set("training", "best_val_perplexity", best.exp());
            m.set("training", "best_step", step);
        }
        if let Some(&(_, loss, _, _)) = self.history.last() {
            m.set("training", "final_train_loss", loss);
        }
        let history: Vec<serde_json::Value> = self
            .history
            .iter()
            .map(|&(step, train, val, lr)| serde_json::json!({"step": step, "train_loss": train, "val_loss": val, "lr": lr}))
            .collect();
        m.set("training", "history", history);
    }

    /// The one-line summary printed at the end of training.
    pub fn summary(&self) -> String {
        format!(
            "trained {} steps in {:.1} s ({:.0} tokens/s), stopped by {}{}",
            self.steps,
            self.seconds,
            self.tokens_per_s(),
            self.stopped_by.name(),
            self.best
                .map(|(b, step)| format!(
                    "; best validation loss {b:.4} (perplexity {:.2}) at step {step}",
                    b.exp()
                ))
                .unwrap_or_default()
        )
    }
}

/// The model to train: a new one from `model.*`, or the checkpoint to resume.
fn starting_point(
    cfg: &Config,
    tokenizer: &TextTokenizer,
    resume: Option<FloatFile>,
) -> Result<(
    Box<dyn FloatModel>,
    ModelMeta,
    Option<crate::artifact::CheckpointState>,
)> {
    match resume {
        Some(loaded) => {
            let state = loaded.checkpoint.ok_or_else(|| {
                Error::input(&loaded.path, "is a model file without training state")
            })?;
            tracing::info!("resuming from {}", loaded.path.display());
            Ok((loaded.model, loaded.meta, Some(state)))
        }
        None => {
            let config = cfg.model.model_config(tokenizer.vocab_size());
            let meta = ModelMeta {
                config: config.clone(),
                tokenizer: tokenizer.clone(),
                training: serde_json::Value::Null,
            };
            Ok((build(&config, cfg.general.global_seed), meta, None))
        }
    }
}

/// The training stage: builds (or resumes) the model, trains it, saves the float model file,
/// and prints a short sample of what it learned.
pub fn train(input: TrainInput) -> Result<TrainReport> {
    let (cfg, data, dir) = (input.config, input.data, input.dir);
    save_artifacts(data, dir)?;
    let (model, meta, resume) = starting_point(cfg, &data.tokenizer, input.resume)?;
    // A resumed run keeps its checkpoint's head, whatever the configuration says now.
    let untied_note = match resume {
        None => cfg.model.untied_note(),
        Some(_) => None,
    };
    if let Some(note) = &untied_note {
        tracing::info!("note: {note}");
    }
    tracing::info!(
        "model {:?}: {} parameters, {} MACC per generated token, vocabulary {}",
        meta.config.kind,
        model.num_params(),
        model.macc_per_token(),
        meta.config.vocab_size
    );
    let (parameters, macc_per_token) = (model.num_params(), model.macc_per_token());
    let paths = Paths {
        best: dir.join(FLOAT_MODEL_FILE),
        checkpoint: dir.join(CHECKPOINT_FILE),
        log_csv: dir.join(TRAINING_LOG),
    };
    let distillation = input.teacher.as_ref().map(Teacher::summary);
    if let Some(t) = &input.teacher {
        tracing::info!(
            "distilling from {} ({:?}, {} parameters): alpha {}, temperature {}",
            t.file.path.display(),
            t.file.meta.config.kind,
            t.file.model.num_params(),
            t.alpha,
            t.temperature
        );
    }
    let mut trainer = Trainer::new(cfg, model, meta, paths, resume)?.with_teacher(input.teacher);
    let batch_size = trainer.effective_batch_size(data.ids.train.len());
    let batch_size_reduced_from = (batch_size < cfg.training.batch_size).then(|| {
        tracing::warn!(
            "training.batch_size={} is more than the {batch_size} windows of the training split: every step uses the whole split ({batch_size} windows, one batch per epoch); recorded as training.batch_size_reduced_from in metrics.json",
            cfg.training.batch_size
        );
        cfg.training.batch_size
    });
    let reason = trainer.train(&data.ids.train, &data.ids.validation)?;
    trainer.finish()?;
    let s = &trainer.state;
    let mut report = TrainReport {
        parameters,
        macc_per_token,
        steps: s.step,
        epochs_started: s.epoch + 1,
        stopped_by: reason,
        seconds: s.seconds,
        tokens_seen: s.tokens_seen,
        seed: cfg.general.global_seed,
        batch_size,
        batch_size_reduced_from,
        best: s.best_val_loss.map(|b| (b, s.best_step)),
        history: trainer.history.clone(),
        tied: trainer.meta.config.tie_embeddings,
        untied_note,
        distillation,
        float: FloatFile {
            path: dir.join(FLOAT_MODEL_FILE),
            meta: trainer.meta_with_summary(),
            model: trainer.model,
            checkpoint: None,
        },
    };
    println!("{}", report.summary());
    sample(cfg, &mut report.float, &data.tokenizer)?;
    tracing::info!("float model saved to {}", report.float.path.display());
    Ok(report)
}

/// A short greedy sample from the prompt, so every training run shows what it learned.
fn sample(cfg: &Config, float: &mut FloatFile, tokenizer: &TextTokenizer) -> Result<()> {
    let mut settings = cfg.prediction.clone();
    settings.max_tokens = settings.max_tokens.min(40);
    if tokenizer.encode(&settings.prompt)?.is_empty()
        && !float.meta.config.predicts_every_position()
    {
        return Ok(());
    }
    let seed = cfg.prediction_seed();
    let text = generate(&mut float.model, tokenizer, &settings, seed, |_| {})?;
    println!("sample: {text}");
    tracing::info!("sample: {text}");
    Ok(())
}
