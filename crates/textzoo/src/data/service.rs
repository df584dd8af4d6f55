//! `operation_mode=preprocessing`: save the tokenizer and token cache, report corpus statistics.

use super::stats::CorpusStats;
use super::{write_ids, PreparedData, Target};
use crate::error::Result;
use crate::util::layout::{TOKENIZER_FILE, TOKEN_CACHE_DIR};
use crate::util::Metrics;
use std::path::Path;

/// Writes `tokenizer.json` and `data/{train,validation,test}.u16` into the run directory.
pub fn save_artifacts(data: &PreparedData, dir: &Path) -> Result<()> {
    data.tokenizer.save(&dir.join(TOKENIZER_FILE))?;
    let cache = dir.join(TOKEN_CACHE_DIR);
    write_ids(&cache.join("train.u16"), &data.ids.train)?;
    write_ids(&cache.join("validation.u16"), &data.ids.validation)?;
    write_ids(&cache.join("test.u16"), &data.ids.test)
}

/// What preprocessing found out about the corpus.
pub struct PreprocessReport {
    pub stats: CorpusStats,
}

impl PreprocessReport {
    pub fn record(&self, m: &mut Metrics) {
        if let Ok(serde_json::Value::Object(map)) = serde_json::to_value(&self.stats) {
            for (k, v) in map {
                m.set("preprocessing", &k, v);
            }
        }
    }
}

/// The preprocessing stage: saves the tokenizer and the token cache into `dir` and counts the
/// windows of `seq_len` tokens a model predicting `target` would train on.
pub fn preprocess(
    data: &PreparedData,
    dir: &Path,
    seq_len: usize,
    target: Target,
) -> Result<PreprocessReport> {
    save_artifacts(data, dir)?;
    let stats = CorpusStats::new(data, seq_len, target);
    println!("{}", stats.table());
    tracing::info!(
        "tokenizer saved to {}, token cache under {}",
        dir.join(TOKENIZER_FILE).display(),
        dir.join(TOKEN_CACHE_DIR).display()
    );
    Ok(PreprocessReport { stats })
}
