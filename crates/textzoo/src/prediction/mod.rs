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
        ids.push(sampler.pick_in_context(&logits, &ids));
        let continuation = continuation(tokenizer, &ids, prompt_len);
        // Word spacing can depend on the next token ("king '" becomes "king's"): print only
        // what is settled, the text before the last whitespace.
        let settled = settled_part(&continuation);
        if let Some(new) = settled.strip_prefix(shown.as_str()) {
            on_text(new);
            shown = settled.to_string();
        }
    }
    let continuation = continuation(tokenizer, &ids, prompt_len);
    match continuation.strip_prefix(shown.as_str()) {
        Some(rest) => on_text(rest),
        // Never expected (spacing only changes at the end); the whole text then follows anew.
        None => on_text(&format!("\n{}{continuation}", settings.prompt)),
    }
    Ok(format!("{}{continuation}", settings.prompt))
}

/// The part of `text` no later token can change: everything before its last whitespace.
fn settled_part(text: &str) -> &str {
    match text.rfind(char::is_whitespace) {
        Some(i) => &text[..i],
        None => "",
    }
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
    /// The settings the text was generated with (a text is only reproducible with them).
    pub settings: Prediction,
    pub seed: u64,
}

impl PredictReport {
    pub fn record(&self, m: &mut Metrics) {
        let s = &self.settings;
        m.set("prediction", "model", self.model.display().to_string());
        m.set("prediction", "tokens", self.tokens);
        m.set(
            "prediction",
            "strategy",
            format!("{:?}", s.strategy).to_lowercase(),
        );
        m.set("prediction", "temperature", s.temperature);
        m.set("prediction", "top_k", s.top_k);
        m.set("prediction", "top_p", s.top_p);
        m.set("prediction", "seed", self.seed);
        m.set("prediction", "repetition_penalty", s.repetition_penalty);
        m.set("prediction", "no_repeat_ngram_size", s.no_repeat_ngram_size);
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
    crate::lm::check_prediction(settings, lm.config(), tokenizer)?;
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
        settings: settings.clone(),
        seed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ModelName, Preprocessing, Strategy};
    use crate::models::ModelConfig;

    /// A model that always prefers "the", then "cat", "sat", "on", "mat" in that order: greedy
    /// decoding without controls loops on "the".
    struct Parrot {
        config: ModelConfig,
        order: Vec<u32>,
    }

    impl LanguageModel for Parrot {
        fn config(&self) -> &ModelConfig {
            &self.config
        }
        fn window_logits(&mut self, _: &[u32], _: usize, _: usize) -> Vec<f32> {
            unreachable!("generation asks next_logits")
        }
        fn next_logits(&mut self, _: &[u32]) -> Vec<f32> {
            let mut logits = vec![-1.0; self.config.vocab_size];
            for (rank, &id) in self.order.iter().enumerate() {
                logits[id as usize] = 5.0 - rank as f32;
            }
            logits
        }
    }

    fn generated(settings: &Prediction) -> String {
        generated_from(
            "the cat sat on the mat\n",
            &["the", "cat", "sat", "on", "mat"],
            settings,
        )
        .0
    }

    /// The returned text and the pieces streamed, from a parrot preferring `order`'s words.
    fn generated_from(corpus: &str, order: &[&str], settings: &Prediction) -> (String, String) {
        let settings_tok = Preprocessing {
            vocab_size: 20,
            ..Preprocessing::default()
        };
        let tok = TextTokenizer::train(&settings_tok, corpus).unwrap();
        let order = order.iter().map(|w| tok.encode(w).unwrap()[0]).collect();
        let mut lm = Parrot {
            config: ModelConfig {
                kind: ModelName::TinyGpt,
                vocab_size: tok.vocab_size(),
                seq_len: 16,
                embed_dim: 8,
                num_heads: 1,
                num_layers: 1,
                ffn_dim: 8,
                hidden_dim: 8,
                dropout: 0.0,
                tie_embeddings: false,
            },
            order,
        };
        let mut streamed = String::new();
        let text = generate(&mut lm, &tok, settings, 1, |piece| streamed.push_str(piece)).unwrap();
        (text, streamed)
    }

    #[test]
    fn the_streamed_text_is_the_saved_text_when_spacing_changes_later() {
        // "king '" is spaced until the "s" arrives and makes it "king's".
        let settings = Prediction {
            prompt: "the".into(),
            max_tokens: 4,
            strategy: Strategy::Greedy,
            no_repeat_ngram_size: 1,
            ..Prediction::default()
        };
        let (text, streamed) =
            generated_from("the king's cat\n", &["king", "'", "s", "cat"], &settings);
        assert_eq!(text, "the king's cat");
        assert_eq!(streamed, text);
    }

    #[test]
    fn repetition_controls_stop_the_the_the() {
        let base = Prediction {
            prompt: "the".into(),
            max_tokens: 4,
            strategy: Strategy::Greedy,
            ..Prediction::default()
        };
        assert_eq!(generated(&base), "the the the the the");
        // Each word once: n = 1 bans every token of the context.
        let once = Prediction {
            no_repeat_ngram_size: 1,
            ..base.clone()
        };
        assert_eq!(generated(&once), "the cat sat on mat");
        // Bigrams: "the the" may happen once, then "the" is followed by the next best word.
        let bigram = Prediction {
            no_repeat_ngram_size: 2,
            ..base.clone()
        };
        assert_eq!(generated(&bigram), "the the cat the sat");
        // A penalty of 6 divides each used word's logit: "the" 5 → 0.83 falls below "cat" (4),
        // and so on, until the unused "mat" (1) beats every used word.
        let penalty = Prediction {
            repetition_penalty: 6.0,
            ..base
        };
        assert_eq!(generated(&penalty), "the cat sat on mat");
    }
}
