//! `operation_mode=preprocessing`: save the tokenizer and token cache, report corpus statistics.

use super::stats::CorpusStats;
use super::{write_ids, PreparedData, Target};
use crate::error::Result;
use crate::run::Run;
use std::path::Path;

pub const TOKENIZER_FILE: &str = "tokenizer.json";

/// Writes `tokenizer.json` and `data/{train,validation,test}.u16` into the run directory.
pub fn save_artifacts(data: &PreparedData, dir: &Path) -> Result<()> {
    data.tokenizer.save(&dir.join(TOKENIZER_FILE))?;
    write_ids(&dir.join("data/train.u16"), &data.ids.train)?;
    write_ids(&dir.join("data/validation.u16"), &data.ids.validation)?;
    write_ids(&dir.join("data/test.u16"), &data.ids.test)
}

pub fn run(run: &mut Run) -> Result<()> {
    let data = run.data()?.clone();
    save_artifacts(&data, &run.dir)?;
    let model = run.config.model.model_config(data.tokenizer.vocab_size());
    let target = if model.predicts_every_position() {
        Target::EveryPosition
    } else {
        Target::NextToken
    };
    let stats = CorpusStats::new(&data, run.config.model.seq_len, target);
    println!("{}", stats.table());
    if let Ok(serde_json::Value::Object(map)) = serde_json::to_value(&stats) {
        for (k, v) in map {
            run.metrics.set("preprocessing", &k, v);
        }
    }
    tracing::info!(
        "tokenizer saved to {}, token cache under {}",
        run.dir.join(TOKENIZER_FILE).display(),
        run.dir.join("data").display()
    );
    Ok(())
}
