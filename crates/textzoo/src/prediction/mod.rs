//! Prediction: generate text from `prediction.prompt`, streaming tokens to the console and
//! saving the text to `<run_dir>/generated.txt`.

pub mod sampler;

pub use sampler::Sampler;

use crate::config::{Prediction, TokenizerKind};
use crate::data::{TextTokenizer, UNK_ID};
use crate::error::Result;
use crate::lm::LanguageModel;
use crate::util::{write_atomic, Metrics};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Prompt words the vocabulary does not know (they become `<unk>`).
fn unknown_words(tokenizer: &TextTokenizer, prompt: &str) -> Vec<String> {
    if tokenizer.kind() == TokenizerKind::Bpe {
        return Vec::new();
    }
    prompt
        .split_whitespace()
        .filter(|w| {
            tokenizer
                .encode(w)
                .map(|ids| ids.contains(&UNK_ID))
                .unwrap_or(false)
        })
        .map(str::to_string)
        .collect()
}

/// Generates `settings.max_tokens` tokens after the prompt; `on_text` receives each new piece
/// of text as it is produced. Returns the prompt as given followed by the continuation (so an
/// out-of-vocabulary prompt word is shown as typed, not as `<unk>`).
pub fn generate(
    lm: &mut dyn LanguageModel,
    tokenizer: &TextTokenizer,
    settings: &Prediction,
    seed: u64,
    mut on_text: impl FnMut(&str),
) -> Result<String> {
    let mut ids = tokenizer.encode(&settings.prompt)?;
    let unknown = unknown_words(tokenizer, &settings.prompt);
    if !unknown.is_empty() {
        tracing::warn!(
            "prompt words not in the vocabulary, read as <unk>: {}",
            unknown.join(", ")
        );
    }
    let prompt_len = ids.len();
    let mut sampler = Sampler::new(settings, seed);
    on_text(&settings.prompt);
    let mut shown = String::new();
    for _ in 0..settings.max_tokens {
        let logits = lm.next_logits(&ids);
        ids.push(sampler.pick(&logits));
        let continuation = continuation(tokenizer, &ids, prompt_len);
        // Word spacing can depend on the next token ("don ' t"): print only what is settled.
        if let Some(new) = continuation.strip_prefix(shown.as_str()) {
            on_text(new);
            shown = continuation;
        }
    }
    let continuation = continuation(tokenizer, &ids, prompt_len);
    if let Some(rest) = continuation.strip_prefix(shown.as_str()) {
        on_text(rest);
    }
    Ok(format!("{}{continuation}", settings.prompt))
}

/// The text the generated tokens add after the prompt, spaced as in the whole decoded text.
fn continuation(tokenizer: &TextTokenizer, ids: &[u32], prompt_len: usize) -> String {
    let whole = tokenizer.decode(ids);
    let prompt = tokenizer.decode(&ids[..prompt_len]);
    match whole.strip_prefix(prompt.as_str()) {
        Some(rest) => rest.to_string(),
        None => format!(" {}", tokenizer.decode(&ids[prompt_len..])),
    }
}

/// What the prediction stage wrote.
pub struct PredictReport {
    /// The model file the text came from.
    pub model: PathBuf,
    pub tokens: usize,
    pub text: String,
}

impl PredictReport {
    pub fn record(&self, m: &mut Metrics) {
        m.set("prediction", "model", self.model.display().to_string());
        m.set("prediction", "tokens", self.tokens);
    }
}

/// The prediction stage: generates from `settings.prompt`, streaming the text to stdout, and
/// saves it to `output` (`generated.txt`).
pub fn predict(
    lm: &mut dyn LanguageModel,
    tokenizer: &TextTokenizer,
    settings: &Prediction,
    seed: u64,
    model: &Path,
    output: &Path,
) -> Result<PredictReport> {
    crate::lm::check_prompt(&settings.prompt, lm.config(), tokenizer)?;
    let mut stdout = std::io::stdout();
    let text = generate(lm, tokenizer, settings, seed, |piece| {
        let _ = stdout.write_all(piece.as_bytes());
        let _ = stdout.flush();
    })?;
    println!();
    write_atomic(output, text.as_bytes())?;
    tracing::info!("generated text saved to {}", output.display());
    Ok(PredictReport {
        model: model.to_path_buf(),
        tokens: settings.max_tokens,
        text,
    })
}
