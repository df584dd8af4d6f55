//! Prediction: generate text from `prediction.prompt`, streaming tokens to the console and
//! saving the text to `<run_dir>/generated.txt`.

pub mod sampler;

pub use sampler::Sampler;

use crate::config::{Prediction, TokenizerKind};
use crate::data::{TextTokenizer, UNK_ID};
use crate::error::{Error, Result};
use crate::models::file::ModelMeta;
use crate::models::lm::LanguageModel;
use crate::run::{write_atomic, Run};
use std::io::Write;

pub const GENERATED_FILE: &str = "generated.txt";

/// Refuses prompts the model cannot start from, before any work.
pub fn check_prompt(settings: &Prediction, meta: &ModelMeta) -> Result<()> {
    check_prompt_for(settings, &meta.config, &meta.tokenizer)
}

/// [`check_prompt`] for any model file (float or int8).
pub fn check_prompt_for(
    settings: &Prediction,
    config: &crate::models::ModelConfig,
    tokenizer: &TextTokenizer,
) -> Result<()> {
    let ids = tokenizer.encode(&settings.prompt)?;
    if ids.is_empty() && !config.predicts_every_position() {
        return Err(Error::Usage(
            "prediction.prompt is empty: tiny_bert_generator predicts from a context, give it at least one word (causal models accept an empty prompt)".into(),
        ));
    }
    Ok(())
}

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

/// The `prediction` service: the chain's int8 model, else its float model, else
/// `general.model_path` (float or int8: an int8 file runs on `textzoo-rt`).
pub fn run(run: &mut Run) -> Result<()> {
    let path = match (
        &run.artifacts.int8_model,
        &run.artifacts.float_model,
        &run.config.general.model_path,
    ) {
        (Some(p), _, _) | (None, Some(p), _) | (None, None, Some(p)) => p.clone(),
        (None, None, None) => {
            return Err(Error::Usage("prediction needs general.model_path".into()))
        }
    };
    let (mut lm, tokenizer): (Box<dyn LanguageModel>, TextTokenizer) =
        if crate::quantization::is_int8_file(&path)? {
            let loaded = crate::quantization::load_int8(&path)?;
            check_prompt_for(&run.config.prediction, &loaded.config, &loaded.tokenizer)?;
            tracing::info!("generating with the int8 model {}", path.display());
            let lm = crate::quantization::Int8Lm::new(loaded.model, loaded.config);
            (Box::new(lm), loaded.tokenizer)
        } else {
            let loaded = crate::models::file::load(&path)?;
            check_prompt(&run.config.prediction, &loaded.meta)?;
            (Box::new(loaded.model), loaded.meta.tokenizer)
        };
    let settings = run.config.prediction.clone();
    let seed = settings.seed.unwrap_or(run.config.general.global_seed);
    let mut stdout = std::io::stdout();
    let text = generate(lm.as_mut(), &tokenizer, &settings, seed, |piece| {
        let _ = stdout.write_all(piece.as_bytes());
        let _ = stdout.flush();
    })?;
    println!();
    write_atomic(&run.dir.join(GENERATED_FILE), text.as_bytes())?;
    run.metrics
        .set("prediction", "model", path.display().to_string());
    run.metrics.set("prediction", "tokens", settings.max_tokens);
    tracing::info!(
        "generated text saved to {}",
        run.dir.join(GENERATED_FILE).display()
    );
    Ok(())
}
