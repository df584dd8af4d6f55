//! Range and consistency checks that types alone cannot express, run before any work starts.

use super::error::ConfigError;
use super::modes::Service;
use super::schema::Config;
use std::path::{Path, PathBuf};

/// Largest vocabulary: token ids are stored as `u16` in the deployed model.
pub const MAX_VOCAB: usize = 65_536;

fn out_of_range(key: &str, value: impl ToString, allowed: &str) -> ConfigError {
    ConfigError::OutOfRange {
        key: key.into(),
        value: value.to_string(),
        allowed: allowed.into(),
    }
}

fn at_least(key: &str, value: usize, min: usize) -> Result<(), ConfigError> {
    if value < min {
        return Err(out_of_range(key, value, &format!("must be at least {min}")));
    }
    Ok(())
}

/// `lo <= value < hi` (or `<= hi` when `hi_inclusive`).
fn within(key: &str, value: f64, lo: f64, hi: f64, hi_inclusive: bool) -> Result<(), ConfigError> {
    let ok = value.is_finite() && value >= lo && (value < hi || (hi_inclusive && value == hi));
    if !ok {
        let close = if hi_inclusive { "]" } else { ")" };
        return Err(out_of_range(
            key,
            value,
            &format!("must be in [{lo}, {hi}{close}"),
        ));
    }
    Ok(())
}

fn positive(key: &str, value: f64) -> Result<(), ConfigError> {
    if !(value.is_finite() && value > 0.0) {
        return Err(out_of_range(key, value, "must be a positive number"));
    }
    Ok(())
}

/// Value checks that need no file system.
pub fn ranges(cfg: &Config) -> Result<(), ConfigError> {
    let d = &cfg.dataset;
    within(
        "dataset.validation_split",
        d.validation_split,
        0.0,
        1.0,
        false,
    )?;
    within("dataset.test_split", d.test_split, 0.0, 1.0, false)?;
    if d.validation_split + d.test_split >= 1.0 {
        return Err(out_of_range(
            "dataset.test_split",
            d.test_split,
            "validation_split + test_split must leave some training data (sum < 1)",
        ));
    }
    positive("dataset.quantization_split", d.quantization_split)?;

    let p = &cfg.preprocessing;
    if !(3..=MAX_VOCAB).contains(&p.vocab_size) {
        return Err(out_of_range(
            "preprocessing.vocab_size",
            p.vocab_size,
            &format!("must be in [3, {MAX_VOCAB}] (the special tokens <pad>, <unk> take two ids)"),
        ));
    }

    let m = &cfg.model;
    at_least("model.seq_len", m.seq_len, 1)?;
    if m.seq_len > 4096 {
        return Err(out_of_range(
            "model.seq_len",
            m.seq_len,
            "must be at most 4096",
        ));
    }
    at_least("model.embed_dim", m.embed_dim, 1)?;
    at_least("model.num_heads", m.num_heads, 1)?;
    if !m.embed_dim.is_multiple_of(m.num_heads) {
        return Err(out_of_range(
            "model.num_heads",
            m.num_heads,
            &format!("must divide model.embed_dim ({})", m.embed_dim),
        ));
    }
    at_least("model.num_layers", m.num_layers, 1)?;
    if m.num_layers > MAX_LAYERS {
        return Err(out_of_range(
            "model.num_layers",
            m.num_layers,
            &format!("must be at most {MAX_LAYERS}"),
        ));
    }
    at_least("model.ffn_dim", m.ffn_dim, 1)?;
    at_least("model.hidden_dim", m.hidden_dim, 1)?;
    model_size(m, p.vocab_size)?;
    within("model.dropout", m.dropout, 0.0, 1.0, false)?;
    let recurrent = matches!(
        m.name,
        super::schema::ModelName::Gru | super::schema::ModelName::Lstm
    );
    if m.tie_embeddings && recurrent && m.embed_dim != m.hidden_dim {
        return Err(out_of_range(
            "model.tie_embeddings",
            true,
            &format!(
                "gru/lstm can tie the head to the embedding only when model.embed_dim ({}) equals model.hidden_dim ({})",
                m.embed_dim, m.hidden_dim
            ),
        ));
    }

    training_ranges(cfg)?;

    let q = &cfg.quantization;
    if !(q.percentile > 50.0 && q.percentile <= 100.0) {
        return Err(out_of_range(
            "quantization.percentile",
            q.percentile,
            "must be in (50, 100]",
        ));
    }
    at_least("quantization.num_samples", q.num_samples, 1)?;
    at_least("evaluation.batch_size", cfg.evaluation.batch_size, 1)?;

    let pr = &cfg.prediction;
    positive("prediction.temperature", pr.temperature)?;
    if !(pr.top_p > 0.0 && pr.top_p <= 1.0) {
        return Err(out_of_range(
            "prediction.top_p",
            pr.top_p,
            "must be in (0, 1]",
        ));
    }
    if pr.max_tokens > 100_000 {
        return Err(out_of_range(
            "prediction.max_tokens",
            pr.max_tokens,
            "must be at most 100000",
        ));
    }
    at_least("benchmarking.num_tokens", cfg.benchmarking.num_tokens, 1)?;
    at_least("benchmarking.repeats", cfg.benchmarking.repeats, 1)?;
    Ok(())
}

/// Layers the int8 runtime plans for (`ModelConfig::check_sizes` refuses more).
const MAX_LAYERS: usize = 1024;

/// Parameters a model may have: 2^27 (134 M) float parameters take 2 GiB for the weights, their
/// gradients and AdamW's two moments. textzoo trains models for microcontroller-class boards
/// (the largest holds a few MiB); without a bound an absurd size (`model.embed_dim=1e9`) aborts
/// on a failed allocation after the run directory exists, or trains for days.
pub const MAX_PARAMETERS: u128 = 1 << 27;

/// An upper estimate of the model's parameters from the configured sizes (the vocabulary may
/// come out smaller than `vocab_size`), refused above [`MAX_PARAMETERS`] with the numbers.
fn model_size(m: &super::schema::Model, vocab_size: usize) -> Result<(), ConfigError> {
    use super::schema::ModelName;
    let (v, e, f, h, l) = (
        vocab_size as u128,
        m.embed_dim as u128,
        m.ffn_dim as u128,
        m.hidden_dim as u128,
        m.num_layers as u128,
    );
    let params = match m.name {
        // Embeddings and head, then per block attention (4 e²) and the feed-forward (2 e f).
        ModelName::TinyGpt | ModelName::TinyBertGenerator => {
            2 * v * e + m.seq_len as u128 * e + l * (4 * e * e + 2 * e * f + 8 * e)
        }
        // Embedding, head, and per layer up to four gates over input and state.
        ModelName::Gru | ModelName::Lstm => v * e + v * h + l * 4 * (e.max(h) + h + 2) * h,
    };
    if params > MAX_PARAMETERS {
        return Err(out_of_range(
            "model",
            format!(
                "embed_dim={}, ffn_dim={}, hidden_dim={}, num_layers={}, vocab_size={}",
                m.embed_dim, m.ffn_dim, m.hidden_dim, m.num_layers, vocab_size
            ),
            &format!(
                "these sizes give about {params} parameters; at most {MAX_PARAMETERS} (2^27) are supported: lower model.embed_dim, model.ffn_dim, model.hidden_dim, model.num_layers or preprocessing.vocab_size"
            ),
        ));
    }
    Ok(())
}

fn training_ranges(cfg: &Config) -> Result<(), ConfigError> {
    let t = &cfg.training;
    at_least("training.batch_size", t.batch_size, 1)?;
    positive("training.learning_rate", t.learning_rate)?;
    within("training.beta1", t.beta1, 0.0, 1.0, false)?;
    within("training.beta2", t.beta2, 0.0, 1.0, false)?;
    positive("training.eps", t.eps)?;
    within("training.weight_decay", t.weight_decay, 0.0, 1.0, true)?;
    within("training.grad_clip", t.grad_clip, 0.0, f64::MAX, false)?;
    if t.eval_interval == 0 {
        return Err(out_of_range(
            "training.eval_interval",
            0,
            "must be at least 1",
        ));
    }
    if t.epochs == Some(0) {
        return Err(out_of_range(
            "training.epochs",
            0,
            "must be at least 1 (or null)",
        ));
    }
    if t.max_steps == Some(0) {
        return Err(out_of_range(
            "training.max_steps",
            0,
            "must be at least 1 (or null)",
        ));
    }
    if let Some(minutes) = t.max_minutes {
        positive("training.max_minutes", minutes)?;
    }
    within(
        "training.short_context_share",
        t.short_context_share,
        0.0,
        1.0,
        true,
    )?;
    if let Some(decay) = t.ema_decay {
        within("training.ema_decay", decay, 0.0, 1.0, false)?;
    }
    if t.epochs.is_none() && t.max_steps.is_none() && t.max_minutes.is_none() {
        return Err(out_of_range(
            "training.epochs",
            "null",
            "set at least one of training.epochs, training.max_steps, training.max_minutes",
        ));
    }
    let s = &t.lr_schedule;
    within(
        "training.lr_schedule.min_lr_ratio",
        s.min_lr_ratio,
        0.0,
        1.0,
        true,
    )?;
    if !(s.gamma > 0.0 && s.gamma <= 1.0) {
        return Err(out_of_range(
            "training.lr_schedule.gamma",
            s.gamma,
            "must be in (0, 1]",
        ));
    }
    if !(s.factor > 0.0 && s.factor < 1.0) {
        return Err(out_of_range(
            "training.lr_schedule.factor",
            s.factor,
            "must be in (0, 1)",
        ));
    }
    if s.step_size == 0 {
        return Err(out_of_range(
            "training.lr_schedule.step_size",
            0,
            "must be at least 1",
        ));
    }
    within(
        "training.early_stopping.min_delta",
        t.early_stopping.min_delta,
        0.0,
        f64::MAX,
        false,
    )
}

fn must_exist(key: &str, path: &Option<PathBuf>) -> Result<(), ConfigError> {
    match path {
        Some(p) if !p.exists() => Err(ConfigError::MissingPath {
            key: key.into(),
            path: p.clone(),
        }),
        _ => Ok(()),
    }
}

/// The files the mode needs exist (not run by `--cfg`, which only prints).
pub fn required_paths(cfg: &Config) -> Result<(), ConfigError> {
    let services = super::modes::services(cfg.operation_mode);
    let mode = super::modes::mode_name(cfg.operation_mode);
    let trains = services.first() == Some(&Service::Training);
    let needs_model = !trains && !services.contains(&Service::Preprocessing);
    if needs_model && cfg.general.model_path.is_none() {
        return Err(ConfigError::Missing {
            key: "general.model_path".into(),
            mode: mode.into(),
            why: "this mode does not train a model, so it needs a model file to start from".into(),
        });
    }
    must_exist("general.model_path", &cfg.general.model_path)?;
    if services.iter().any(|s| s.reads_corpus()) && !Path::new(&cfg.dataset.training_path).exists()
    {
        return Err(ConfigError::MissingPath {
            key: "dataset.training_path".into(),
            path: cfg.dataset.training_path.clone(),
        });
    }
    must_exist("dataset.validation_path", &cfg.dataset.validation_path)?;
    must_exist("dataset.test_path", &cfg.dataset.test_path)?;
    must_exist("dataset.quantization_path", &cfg.dataset.quantization_path)?;
    must_exist(
        "preprocessing.tokenizer_path",
        &cfg.preprocessing.tokenizer_path,
    )?;
    must_exist(
        "training.resume_training_from",
        &cfg.training.resume_training_from,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_ranges() {
        ranges(&Config::default()).unwrap();
    }

    #[test]
    fn out_of_range_values_name_key_and_limit() {
        let mut cfg = Config::default();
        cfg.model.dropout = 1.5;
        let text = ranges(&cfg).unwrap_err().to_string();
        assert!(
            text.contains("model.dropout") && text.contains("1.5") && text.contains("[0, 1)"),
            "{text}"
        );

        let mut cfg = Config::default();
        cfg.model.num_heads = 3;
        assert!(ranges(&cfg)
            .unwrap_err()
            .to_string()
            .contains("must divide model.embed_dim"));

        let mut cfg = Config::default();
        cfg.preprocessing.vocab_size = 2;
        assert!(ranges(&cfg)
            .unwrap_err()
            .to_string()
            .contains("preprocessing.vocab_size"));

        let mut cfg = Config::default();
        cfg.training.epochs = None;
        assert!(ranges(&cfg)
            .unwrap_err()
            .to_string()
            .contains("at least one of"));
    }

    #[test]
    fn modes_without_training_need_a_model() {
        let cfg = Config {
            operation_mode: super::super::schema::OperationMode::Evaluation,
            ..Config::default()
        };
        let text = required_paths(&cfg).unwrap_err().to_string();
        assert!(
            text.contains("general.model_path") && text.contains("evaluation"),
            "{text}"
        );
    }
}
