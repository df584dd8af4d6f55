//! Evaluation: loss, perplexity and top-1/top-5 accuracy on the validation and test splits,
//! through the [`LanguageModel`] interface (float now, int8 once quantization exists).

pub mod metrics;

pub use metrics::{evaluate, SplitMetrics};

use crate::error::Result;
use crate::models::lm::LanguageModel;
use crate::run::Run;

/// Evaluates `lm` on the run's validation and test splits, records the metrics under `section`
/// (`float` or `int8`) and returns them.
pub fn evaluate_splits(
    run: &mut Run,
    lm: &mut dyn LanguageModel,
    section: &str,
) -> Result<Vec<(&'static str, SplitMetrics)>> {
    let batch = run.config.evaluation.batch_size;
    let max = run.config.evaluation.max_windows;
    let data = run.data()?.clone();
    let mut results = Vec::new();
    for (name, ids) in [("val", &data.ids.validation), ("test", &data.ids.test)] {
        let Some(m) = evaluate(lm, ids, batch, max) else {
            continue;
        };
        for (key, value) in [
            ("loss", m.loss),
            ("perplexity", m.perplexity),
            ("accuracy", m.accuracy),
            ("top5_accuracy", m.top5_accuracy),
        ] {
            run.metrics.set(section, &format!("{name}_{key}"), value);
        }
        run.metrics
            .set(section, &format!("{name}_tokens"), m.tokens);
        results.push((name, m));
    }
    Ok(results)
}

/// A console table of split metrics.
pub fn table(title: &str, results: &[(&str, SplitMetrics)]) -> String {
    let mut out = format!(
        "{title}\n{:<6} {:>9} {:>11} {:>9} {:>9} {:>9}\n",
        "split", "loss", "perplexity", "top-1", "top-5", "tokens"
    );
    for (name, m) in results {
        out += &format!(
            "{:<6} {:>9.4} {:>11.2} {:>8.2}% {:>8.2}% {:>9}\n",
            name,
            m.loss,
            m.perplexity,
            100.0 * m.accuracy,
            100.0 * m.top5_accuracy,
            m.tokens
        );
    }
    out
}

/// The `evaluation` service: the float model of this chain, or `general.model_path`.
pub fn run(run: &mut Run) -> Result<()> {
    let path = match (&run.artifacts.float_model, &run.config.general.model_path) {
        (Some(p), _) | (None, Some(p)) => p.clone(),
        (None, None) => {
            return Err(crate::Error::Usage(
                "evaluation needs general.model_path or a training step before it".into(),
            ))
        }
    };
    let loaded = crate::models::file::load(&path)?;
    run.ensure_data(&loaded.meta.tokenizer, loaded.meta.config.seq_len)?;
    tracing::info!("evaluating {}", path.display());
    let mut lm = loaded.model;
    let results = evaluate_splits(run, &mut lm, "float")?;
    if results.is_empty() {
        tracing::warn!(
            "no validation or test split long enough for one window: nothing to evaluate"
        );
    }
    println!("{}", table("float model", &results));
    Ok(())
}
