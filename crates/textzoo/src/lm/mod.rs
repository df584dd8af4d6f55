//! One interface for evaluation and prediction, whatever the model's number format: next-token
//! logits for a context. The float engine answers it directly; the int8 runtime through
//! [`Int8Lm`]. The window policy (which tokens of a context a model reads) lives here too, so
//! both kinds of model read the same window.

mod int8;

pub use int8::Int8Lm;

use crate::config::Prediction;
use crate::data::{TextTokenizer, PAD_ID};
use crate::error::{Error, Result};
use crate::models::{FloatModel, ModelConfig};
use textzoo_rt::Rng;

pub trait LanguageModel {
    fn config(&self) -> &ModelConfig;

    /// Logits `[batch, positions, vocab]` for windows `[batch, seq]` (inference: no dropout).
    fn window_logits(&mut self, tokens: &[u32], batch: usize, seq: usize) -> Vec<f32>;

    /// Next-token logits after `context`, which may be shorter or longer than the window:
    /// the model sees the last `seq_len` tokens; `tiny_bert_generator` gets shorter contexts
    /// left-padded with `<pad>` (it was trained on such windows); an empty context starts
    /// from `<pad>`.
    fn next_logits(&mut self, context: &[u32]) -> Vec<f32> {
        let cfg = self.config().clone();
        let window = model_window(&cfg, context);
        let positions = if cfg.predicts_every_position() {
            window.len()
        } else {
            1
        };
        let logits = self.window_logits(&window, 1, window.len());
        logits[(positions - 1) * cfg.vocab_size..positions * cfg.vocab_size].to_vec()
    }
}

/// The window a model reads for `context`: see [`LanguageModel::next_logits`].
pub fn model_window(cfg: &ModelConfig, context: &[u32]) -> Vec<u32> {
    let tail = &context[context.len().saturating_sub(cfg.seq_len)..];
    if !cfg.predicts_every_position() {
        let mut window = vec![PAD_ID; cfg.seq_len - tail.len()];
        window.extend_from_slice(tail);
        return window;
    }
    if tail.is_empty() {
        return vec![PAD_ID];
    }
    tail.to_vec()
}

/// Refuses, before any work, generation settings the model cannot honour: a prompt it cannot
/// start from, or a `no_repeat_ngram_size` longer than the window it reads.
pub fn check_prediction(
    settings: &Prediction,
    config: &ModelConfig,
    tokenizer: &TextTokenizer,
) -> Result<()> {
    check_ngram_size(settings.no_repeat_ngram_size, config.seq_len)?;
    check_prompt(&settings.prompt, config, tokenizer)
}

/// An n-gram longer than the model's window is one the model never saw whole; such a ban is a
/// mistake in the settings, not a control.
pub fn check_ngram_size(size: usize, seq_len: usize) -> Result<()> {
    if size > seq_len {
        return Err(Error::Usage(format!(
            "prediction.no_repeat_ngram_size = {size} is out of range: must be in [0, {seq_len}] (the model's context, seq_len {seq_len}; 0 is off)"
        )));
    }
    Ok(())
}

/// Refuses prompts the model cannot start from, before any work.
fn check_prompt(prompt: &str, config: &ModelConfig, tokenizer: &TextTokenizer) -> Result<()> {
    let ids = tokenizer.encode(prompt)?;
    if ids.is_empty() && !config.predicts_every_position() {
        return Err(Error::Usage(
            "prediction.prompt is empty: tiny_bert_generator predicts from a context, give it at least one word (causal models accept an empty prompt)".into(),
        ));
    }
    Ok(())
}

/// Float models answer directly (inference mode: no dropout, so the generator is unused).
impl LanguageModel for Box<dyn FloatModel> {
    fn config(&self) -> &ModelConfig {
        self.as_ref().config()
    }

    fn window_logits(&mut self, tokens: &[u32], batch: usize, seq: usize) -> Vec<f32> {
        self.forward(tokens, batch, seq, false, &mut Rng::new(0))
            .to_vec()
    }
}
