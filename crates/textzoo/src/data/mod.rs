//! Data: corpora → splits → tokenizer → token ids → windows.
//!
//! [`prepare`] does all the reading and checking before a run directory exists, so a bad corpus
//! fails with exit code 2 and leaves nothing behind.

mod cache;
pub mod combine;
pub mod corpus;
mod detokenize;
mod fast_encode;
pub mod service;
mod stats;
pub mod stream;
pub mod tokenizer;
pub mod windows;

pub use cache::{read_ids, write_ids};
pub use stats::{split_stats, CorpusStats, SplitStats};
pub use tokenizer::{TextTokenizer, PAD_ID, UNK_ID};
pub use windows::{Batch, Target};

use crate::config::{Config, Dataset};
use crate::error::{Error, Result};
use corpus::{read_corpus, split_by_position, TextSplits};

/// Token ids of the three splits.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TokenSplits {
    pub train: Vec<u32>,
    pub validation: Vec<u32>,
    pub test: Vec<u32>,
}

/// Everything the later stages need from the corpus.
#[derive(Debug, Clone)]
pub struct PreparedData {
    pub tokenizer: TextTokenizer,
    pub text: TextSplits,
    pub ids: TokenSplits,
}

/// Where the tokenizer comes from.
pub enum TokenizerSource<'a> {
    /// Trained on the training split, or read from `preprocessing.tokenizer_path`.
    FromConfig,
    /// The one stored in a model file: a model must be evaluated with its own vocabulary.
    Given(&'a TextTokenizer),
}

/// Reads the corpora, builds or loads the tokenizer and encodes every split.
pub fn prepare(cfg: &Config, source: TokenizerSource) -> Result<PreparedData> {
    let text = read_splits(cfg)?;
    let tokenizer = match source {
        TokenizerSource::Given(t) => t.clone(),
        TokenizerSource::FromConfig => match &cfg.preprocessing.tokenizer_path {
            Some(path) => TextTokenizer::load(path, cfg.preprocessing.tokenizer)?,
            None => TextTokenizer::train(&cfg.preprocessing, &text.train)?,
        },
    };
    let ids = TokenSplits {
        train: tokenizer.encode(&text.train)?,
        validation: tokenizer.encode(&text.validation)?,
        test: tokenizer.encode(&text.test)?,
    };
    let seq = cfg.model.seq_len;
    if ids.train.len() <= seq {
        return Err(Error::input(
            &cfg.dataset.training_path,
            format!(
                "the training split has {} tokens, fewer than one window of model.seq_len={seq} tokens plus its target; use a longer corpus or a smaller seq_len",
                ids.train.len()
            ),
        ));
    }
    Ok(PreparedData {
        tokenizer,
        text,
        ids,
    })
}

fn read_splits(cfg: &Config) -> Result<TextSplits> {
    let d = &cfg.dataset;
    let corpus = read_corpus(&d.training_path)?;
    let validation = if d.validation_path.is_some() {
        0.0
    } else {
        d.validation_split
    };
    let test = if d.test_path.is_some() {
        0.0
    } else {
        d.test_split
    };
    let mut splits = split_by_position(&corpus, validation, test);
    if let Some(path) = &d.validation_path {
        splits.validation = read_corpus(path)?;
    }
    if let Some(path) = &d.test_path {
        splits.test = read_corpus(path)?;
    }
    Ok(splits)
}

/// Representative windows for quantization: from `dataset.quantization_path` when set,
/// otherwise from the training split; `dataset.quantization_split` is a fraction (≤ 1) or a
/// count (> 1) of windows, drawn evenly over the text so calibration sees all of it.
pub fn representative_windows(
    dataset: &Dataset,
    seq: usize,
    data: &PreparedData,
) -> Result<Vec<Vec<u32>>> {
    let ids = match &dataset.quantization_path {
        Some(path) => {
            let ids = data.tokenizer.encode(&read_corpus(path)?)?;
            if ids.len() < seq {
                return Err(Error::input(
                    path,
                    format!("has {} tokens, fewer than one window of {seq}", ids.len()),
                ));
            }
            ids
        }
        None => data.ids.train.clone(),
    };
    let available = ids.len() - seq + 1;
    let split = dataset.quantization_split;
    let wanted = if split <= 1.0 {
        (split * available as f64).ceil() as usize
    } else {
        split as usize
    };
    let n = wanted.clamp(1, available);
    Ok((0..n)
        .map(|i| ids[i * available / n..][..seq].to_vec())
        .collect())
}
