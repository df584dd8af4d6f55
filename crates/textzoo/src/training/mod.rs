//! The `training` service: build (or resume) a model, train it, save the float model file.

pub mod ema;
pub mod schedule;
pub mod shards;
pub mod state;
pub mod trainer;

pub use trainer::{Paths, StopReason, Trainer};

use crate::data::service::save_artifacts;
use crate::error::{Error, Result};
use crate::models::build;
use crate::models::file::{self, ModelMeta};
use crate::prediction::generate;
use crate::run::Run;

pub const MODEL_FILE: &str = "saved_models/model.safetensors";
pub const CHECKPOINT_FILE: &str = "saved_models/checkpoints/last.safetensors";
pub const TRAINING_LOG: &str = "training_log.csv";

pub fn run(run: &mut Run) -> Result<()> {
    let cfg = run.config.clone();
    let data = run.data()?.clone();
    save_artifacts(&data, &run.dir)?;
    let (model, meta, resume) = match &cfg.training.resume_training_from {
        Some(path) => {
            let loaded = file::load(path)?;
            let resume = loaded
                .checkpoint
                .ok_or_else(|| Error::input(path, "is a model file without training state; resume needs a checkpoint (saved_models/checkpoints/last.safetensors)"))?;
            tracing::info!("resuming from {}", path.display());
            (loaded.model, loaded.meta, Some(resume))
        }
        None => {
            let config = cfg.model.model_config(data.tokenizer.vocab_size());
            let meta = ModelMeta {
                config: config.clone(),
                tokenizer: data.tokenizer.clone(),
                training: serde_json::Value::Null,
            };
            (build(&config, cfg.general.global_seed), meta, None)
        }
    };
    tracing::info!(
        "model {:?}: {} parameters, {} MACC per generated token, vocabulary {}",
        meta.config.kind,
        model.num_params(),
        model.macc_per_token(),
        meta.config.vocab_size
    );
    run.metrics
        .set("training", "parameters", model.num_params());
    run.metrics
        .set("training", "macc_per_token", model.macc_per_token());
    let paths = Paths {
        best: run.dir.join(MODEL_FILE),
        checkpoint: run.dir.join(CHECKPOINT_FILE),
        log_csv: run.dir.join(TRAINING_LOG),
    };
    let mut trainer = Trainer::new(&cfg, model, meta, paths, resume)?;
    let reason = trainer.train(&data.ids.train, &data.ids.validation)?;
    trainer.finish()?;
    record(run, &trainer, reason);
    sample(run, trainer.model, &data.tokenizer)?;
    run.artifacts.float_model = Some(run.dir.join(MODEL_FILE));
    tracing::info!(
        "float model saved to {}",
        run.dir.join(MODEL_FILE).display()
    );
    Ok(())
}

fn record(run: &mut Run, trainer: &Trainer, reason: StopReason) {
    let s = &trainer.state;
    let m = &mut run.metrics;
    m.set("training", "steps", s.step);
    m.set("training", "epochs_started", s.epoch + 1);
    m.set("training", "stopped_by", reason.name());
    m.set("training", "seconds", s.seconds);
    m.set("training", "tokens_seen", s.tokens_seen);
    m.set(
        "training",
        "tokens_per_s",
        s.tokens_seen as f64 / s.seconds.max(1e-9),
    );
    m.set("training", "seed", trainer.cfg.general.global_seed);
    if let Some(best) = s.best_val_loss {
        m.set("training", "best_val_loss", best);
        m.set("training", "best_val_perplexity", best.exp());
        m.set("training", "best_step", s.best_step);
    }
    if let Some(&(_, loss, _, _)) = trainer.history.last() {
        m.set("training", "final_train_loss", loss);
    }
    let history: Vec<serde_json::Value> = trainer
        .history
        .iter()
        .map(|&(step, train, val, lr)| serde_json::json!({"step": step, "train_loss": train, "val_loss": val, "lr": lr}))
        .collect();
    m.set("training", "history", history);
    println!(
        "trained {} steps in {:.1} s ({:.0} tokens/s), stopped by {}{}",
        s.step,
        s.seconds,
        s.tokens_seen as f64 / s.seconds.max(1e-9),
        reason.name(),
        s.best_val_loss
            .map(|b| format!(
                "; best validation loss {b:.4} (perplexity {:.2}) at step {}",
                b.exp(),
                s.best_step
            ))
            .unwrap_or_default()
    );
}

/// A short greedy sample from the prompt, so every training run shows what it learned.
fn sample(
    run: &Run,
    model: Box<dyn crate::models::FloatModel>,
    tokenizer: &crate::data::TextTokenizer,
) -> Result<()> {
    let mut settings = run.config.prediction.clone();
    settings.max_tokens = settings.max_tokens.min(40);
    if tokenizer.encode(&settings.prompt)?.is_empty() && !model.config().predicts_every_position() {
        return Ok(());
    }
    let mut lm = model;
    let seed = settings.seed.unwrap_or(run.config.general.global_seed);
    let text = generate(&mut lm, tokenizer, &settings, seed, |_| {})?;
    println!("sample: {text}");
    tracing::info!("sample: {text}");
    Ok(())
}
