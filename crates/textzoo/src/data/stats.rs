//! Corpus statistics printed by `operation_mode=preprocessing`.

use super::tokenizer::UNK_ID;
use super::windows::{window_count, Target};
use super::PreparedData;
use serde::Serialize;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SplitStats {
    pub characters: usize,
    pub tokens: usize,
    pub unk_tokens: usize,
    /// Fraction of tokens that are in the vocabulary (not `<unk>`).
    pub coverage: f64,
    pub unk_rate: f64,
    pub windows: usize,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CorpusStats {
    pub tokenizer: String,
    pub vocab_size: usize,
    pub train: SplitStats,
    pub validation: SplitStats,
    pub test: SplitStats,
}

pub fn split_stats(text: &str, ids: &[u32], seq: usize, target: Target) -> SplitStats {
    let unk = ids.iter().filter(|&&id| id == UNK_ID).count();
    let rate = if ids.is_empty() {
        0.0
    } else {
        unk as f64 / ids.len() as f64
    };
    SplitStats {
        characters: text.chars().count(),
        tokens: ids.len(),
        unk_tokens: unk,
        coverage: 1.0 - rate,
        unk_rate: rate,
        windows: window_count(ids.len(), seq, target),
    }
}

impl CorpusStats {
    pub fn new(data: &PreparedData, seq: usize, target: Target) -> Self {
        Self {
            tokenizer: super::tokenizer::kind_name(data.tokenizer.kind()).into(),
            vocab_size: data.tokenizer.vocab_size(),
            train: split_stats(&data.text.train, &data.ids.train, seq, target),
            validation: split_stats(&data.text.validation, &data.ids.validation, seq, target),
            test: split_stats(&data.text.test, &data.ids.test, seq, target),
        }
    }

    /// A plain-text table for the console.
    pub fn table(&self) -> String {
        let mut out = format!(
            "tokenizer: {} ({} tokens in the vocabulary)\n",
            self.tokenizer, self.vocab_size
        );
        out += &format!(
            "{:<11} {:>12} {:>11} {:>9} {:>9} {:>10}\n",
            "split", "characters", "tokens", "coverage", "<unk>", "windows"
        );
        for (name, s) in [
            ("train", &self.train),
            ("validation", &self.validation),
            ("test", &self.test),
        ] {
            out += &format!(
                "{:<11} {:>12} {:>11} {:>8.2}% {:>8.2}% {:>10}\n",
                name,
                s.characters,
                s.tokens,
                100.0 * s.coverage,
                100.0 * s.unk_rate,
                s.windows
            );
        }
        out
    }
}
