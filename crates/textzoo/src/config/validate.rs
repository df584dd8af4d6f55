//! Range and consistency checks that types alone cannot express, run before any work starts.

use super::error::ConfigError;
use super::modes::Service;
use super::schema::Config;
use std::path::{Path, PathBuf};

/// Largest vocabulary: token ids are stored as `u16` in the deployed model.
pub const MAX_VOCAB: usize = 65_536;

/// Largest `prediction.repetition_penalty`: beyond it every seen token is effectively banned,
/// which `no_repeat_ngram_size: 1` says plainly.
pub const MAX_REPETITION_PENALTY: f64 = 10.0;

/// Largest `prediction.no_repeat_ngram_size`: the largest `model.seq_len`. (A model's own
/// window is checked once the model is known, by `lm::check_prediction`.)
pub const MAX_NGRAM: usize = 4096;

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
    training_ranges(cfg)?;
    sweep_ranges(cfg)?;

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
    let penalty = pr.repetition_penalty;
    if !(penalty.is_finite() && penalty > 0.0 && penalty <= MAX_REPETITION_PENALTY) {
        return Err(out_of_range(
            "prediction.repetition_penalty",
            penalty,
            &format!(
                "must be in (0, {MAX_REPETITION_PENALTY}]: 1.0 is off, above 1 discourages repeats (1.1-1.5 is usual), below 1 favours them"
            ),
        ));
    }
    if pr.no_repeat_ngram_size > MAX_NGRAM {
        return Err(out_of_range(
            "prediction.no_repeat_ngram_size",
            pr.no_repeat_ngram_size,
            &format!("must be in [0, {MAX_NGRAM}] (0 is off; 2 or 3 is usual)"),
        ));
    }
    // A model trained by this run reads model.seq_len tokens; a model file's window is checked
    // when the file is opened.
    let trains = super::modes::services(cfg.operation_mode).first() == Some(&Service::Training);
    if trains && pr.no_repeat_ngram_size > m.seq_len {
        return Err(out_of_range(
            "prediction.no_repeat_ngram_size",
            pr.no_repeat_ngram_size,
            &format!(
                "must be in [0, {}] (model.seq_len, the model's context; 0 is off)",
                m.seq_len
            ),
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

/// `hydra.sweeper` and `hydra.launcher`: checked on every run, so a sweep's settings are
/// refused before its first job as any other key would be.
fn sweep_ranges(cfg: &Config) -> Result<(), ConfigError> {
    let s = &cfg.hydra.sweeper;
    at_least("hydra.sweeper.max_jobs", s.max_jobs, 1)?;
    at_least("hydra.sweeper.n_trials", s.n_trials, 1)?;
    let l = &cfg.hydra.launcher;
    at_least("hydra.launcher.n_jobs", l.n_jobs, 1)?;
    if let Some(cpus) = l.cpus_per_task {
        at_least("hydra.launcher.cpus_per_task", cpus, 1)?;
    }
    if !(l.poll_seconds.is_finite() && l.poll_seconds >= 0.1) {
        return Err(out_of_range(
            "hydra.launcher.poll_seconds",
            l.poll_seconds,
            "must be at least 0.1",
        ));
    }
    if let Some(time) = &l.time {
        let ok = !time.is_empty()
            && time
                .chars()
                .all(|c| c.is_ascii_digit() || c == ':' || c == '-')
            && time.starts_with(|c: char| c.is_ascii_digit());
        if !ok {
            return Err(out_of_range(
                "hydra.launcher.time",
                time,
                "must be a Slurm time: MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS",
            ));
        }
    }
    for (key, value) in [
        ("hydra.launcher.partition", &l.partition),
        ("hydra.launcher.mem", &l.mem),
        ("hydra.launcher.account", &l.account),
        ("hydra.launcher.qos", &l.qos),
    ] {
        if let Some(v) = value {
            if v.is_empty() || v.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(out_of_range(key, v, "must be one word without spaces"));
            }
        }
    }
    for arg in &l.sbatch_args {
        if !arg.starts_with('-') || arg.contains(['\n', '\r']) {
            return Err(out_of_range(
                "hydra.launcher.sbatch_args",
                arg,
                "each entry must be one sbatch option on one line, e.g. --gres=gpu:1",
            ));
        }
    }
    if l.setup.iter().any(|line| line.contains(['\n', '\r'])) {
        return Err(out_of_range(
            "hydra.launcher.setup",
            format!("{:?}", l.setup),
            "one shell line per entry",
        ));
    }
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
    // In f64: the configured sizes are unbounded here, and their products overflow any integer.
    let (v, e, f, h, l) = (
        vocab_size as f64,
        m.embed_dim as f64,
        m.ffn_dim as f64,
        m.hidden_dim as f64,
        m.num_layers as f64,
    );
    let params = match m.name {
        // Embeddings and head, then per block attention (4 e²) and the feed-forward (2 e f).
        ModelName::TinyGpt | ModelName::TinyBertGenerator => {
            2.0 * v * e + m.seq_len as f64 * e + l * (4.0 * e * e + 2.0 * e * f + 8.0 * e)
        }
        // Embedding, head, and per layer up to four gates over input and state.
        ModelName::Gru | ModelName::Lstm => v * e + v * h + l * 4.0 * (e.max(h) + h + 2.0) * h,
    };
    if params > MAX_PARAMETERS as f64 {
        return Err(out_of_range(
            "model",
            format!(
                "embed_dim={}, ffn_dim={}, hidden_dim={}, num_layers={}, vocab_size={}",
                m.embed_dim, m.ffn_dim, m.hidden_dim, m.num_layers, vocab_size
            ),
            &format!(
                "these sizes give about {params:.3e} parameters; at most {MAX_PARAMETERS} (2^27) are supported: lower model.embed_dim, model.ffn_dim, model.hidden_dim, model.num_layers or preprocessing.vocab_size"
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
    let kd = &t.distillation;
    within("training.distillation.alpha", kd.alpha, 0.0, 1.0, true)?;
    positive("training.distillation.temperature", kd.temperature)?;
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
    // Named by the key the user wrote when the zoo's alias gave the path.
    must_exist("model.float_model_path", &cfg.model.float_model_path)?;
    if needs_model && cfg.general.model_path.is_none() && cfg.general.pretrained.is_none() {
        return Err(ConfigError::Missing {
            key: "general.model_path".into(),
            mode: mode.into(),
            why: "this mode does not train a model, so it needs a model file to start from (general.pretrained is null, so no bundled model is used)".into(),
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
    )?;
    must_exist(
        "training.distillation.teacher_path",
        &cfg.training.distillation.teacher_path,
    )?;
    must_exist("benchmarking.board_log", &cfg.benchmarking.board_log)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the migration's proptest: sizes whose product overflows even u128 panicked
    /// in the size check instead of being refused.
    #[test]
    fn absurd_sizes_are_refused_without_overflow() {
        let mut cfg = Config::default();
        cfg.model.embed_dim = usize::MAX / 2;
        cfg.model.ffn_dim = usize::MAX / 2;
        cfg.model.num_layers = 1000;
        let text = model_size(&cfg.model, usize::MAX).unwrap_err().to_string();
        assert!(text.contains("at most"), "{text}");
    }

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

        for (alpha, temperature, key) in [
            (1.5, 2.0, "training.distillation.alpha"),
            (-0.1, 2.0, "training.distillation.alpha"),
            (0.5, 0.0, "training.distillation.temperature"),
            (0.5, -1.0, "training.distillation.temperature"),
        ] {
            let mut cfg = Config::default();
            cfg.training.distillation.alpha = alpha;
            cfg.training.distillation.temperature = temperature;
            let text = ranges(&cfg).unwrap_err().to_string();
            assert!(text.contains(key), "{text}");
        }

        let mut cfg = Config::default();
        cfg.training.epochs = None;
        assert!(ranges(&cfg)
            .unwrap_err()
            .to_string()
            .contains("at least one of"));
    }

    /// The default configuration's `tie_embeddings: true` works for every model: gru/lstm
    /// with a state size other than the embedding's are untied, with a note.
    #[test]
    fn recurrent_models_run_with_tied_defaults_untied_with_a_note() {
        use super::super::schema::ModelName;
        for name in [ModelName::Gru, ModelName::Lstm] {
            let mut cfg = Config::default();
            cfg.model.name = name;
            cfg.model.tie_embeddings = true;
            ranges(&cfg).unwrap();
            assert!(!cfg.model.model_config(100).tie_embeddings);
            let note = cfg.model.untied_note().unwrap();
            assert!(
                note.contains(name.name()) && note.contains("untied"),
                "{note}"
            );
            cfg.model.embed_dim = cfg.model.hidden_dim;
            assert!(cfg.model.model_config(100).tie_embeddings);
            assert_eq!(cfg.model.untied_note(), None);
        }
        let mut cfg = Config::default();
        cfg.model.name = ModelName::TinyGpt;
        cfg.model.tie_embeddings = true;
        assert!(cfg.model.model_config(100).tie_embeddings);
        assert_eq!(cfg.model.untied_note(), None);
    }

    #[test]
    fn generation_controls_are_range_checked() {
        let check = |penalty: f64, ngram: usize| {
            let mut cfg = Config::default();
            cfg.prediction.repetition_penalty = penalty;
            cfg.prediction.no_repeat_ngram_size = ngram;
            ranges(&cfg).err().map(|e| e.to_string())
        };
        assert_eq!(check(1.0, 0), None);
        assert_eq!(check(1.3, 3), None);
        assert_eq!(check(0.5, 0), None);
        assert_eq!(check(10.0, 0), None);
        for bad in [0.0, -1.0, 10.5, f64::NAN, f64::INFINITY] {
            let text = check(bad, 0).unwrap();
            assert!(
                text.contains("prediction.repetition_penalty") && text.contains("(0, 10]"),
                "{text}"
            );
        }
        // chain_tqe trains the model, so its window (model.seq_len) bounds the n-gram.
        let seq_len = Config::default().model.seq_len;
        assert_eq!(check(1.0, seq_len), None);
        let text = check(1.0, seq_len + 1).unwrap();
        assert!(
            text.contains("prediction.no_repeat_ngram_size") && text.contains("model.seq_len"),
            "{text}"
        );
        let text = check(1.0, MAX_NGRAM + 1).unwrap();
        assert!(text.contains(&format!("[0, {MAX_NGRAM}]")), "{text}");
    }

    #[test]
    fn modes_without_training_need_a_model_when_no_bundled_one_is_allowed() {
        let mut cfg = Config {
            operation_mode: super::super::schema::OperationMode::Evaluation,
            ..Config::default()
        };
        // (The corpus path is relative to the repository root, not found from here: that is
        // the only complaint.)
        let bundled = required_paths(&cfg).err().map(|e| e.to_string());
        assert!(
            !bundled.unwrap_or_default().contains("general.model_path"),
            "the bundled model is the default"
        );
        cfg.general.pretrained = None;
        let text = required_paths(&cfg).unwrap_err().to_string();
        assert!(
            text.contains("general.model_path") && text.contains("evaluation"),
            "{text}"
        );
    }
}
