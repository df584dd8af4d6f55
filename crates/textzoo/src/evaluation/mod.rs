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

/// The side-by-side float vs int8 table (validation and test splits, model sizes, relative
/// perplexity change).
pub fn comparison_table(
    float: &[(&str, SplitMetrics)],
    int8: &[(&str, SplitMetrics)],
    float_bytes: u64,
    int8_bytes: u64,
) -> String {
    let mut out = format!(
        "float vs int8\n{:<6} {:<6} {:>9} {:>11} {:>8} {:>8} {:>12}\n",
        "split", "model", "loss", "perplexity", "top-1", "top-5", "size (bytes)"
    );
    for (name, f) in float {
        let Some((_, q)) = int8.iter().find(|(n, _)| n == name) else {
            continue;
        };
        for (label, m, bytes) in [("float", f, float_bytes), ("int8", q, int8_bytes)] {
            out += &format!(
                "{:<6} {:<6} {:>9.4} {:>11.3} {:>7.2}% {:>7.2}% {:>12}\n",
                name,
                label,
                m.loss,
                m.perplexity,
                100.0 * m.accuracy,
                100.0 * m.top5_accuracy,
                bytes
            );
        }
        out += &format!(
            "{:<6} {:<6} perplexity change {:+.3}%\n",
            name,
            "",
            100.0 * (q.perplexity / f.perplexity - 1.0)
        );
    }
    out
}

fn file_size(path: &std::path::Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// The `evaluation` service: the float model of this chain (or `general.model_path`), and,
/// when the chain has quantized it (`chain_tqe`, `chain_eqe`) or `general.model_path` is an
/// int8 file, the int8 model on `textzoo-rt`, with a side-by-side table.
pub fn run(run: &mut Run) -> Result<()> {
    let given = run.config.general.model_path.clone();
    let given_int8 = match &given {
        Some(p) => crate::quantization::is_int8_file(p)?,
        None => false,
    };
    let float_path = match (&run.artifacts.float_model, &given) {
        (Some(p), _) => Some(p.clone()),
        (None, Some(p)) if !given_int8 => Some(p.clone()),
        _ => None,
    };
    let int8_path = match (&run.artifacts.int8_model, &given) {
        (Some(p), _) => Some(p.clone()),
        (None, Some(p)) if given_int8 => Some(p.clone()),
        _ => None,
    };
    if float_path.is_none() && int8_path.is_none() {
        return Err(crate::Error::Usage(
            "evaluation needs general.model_path or a training step before it".into(),
        ));
    }
    let mut float_results = None;
    if let Some(path) = &float_path {
        let loaded = crate::models::file::load(path)?;
        run.ensure_data(&loaded.meta.tokenizer, loaded.meta.config.seq_len)?;
        tracing::info!("evaluating {}", path.display());
        let mut lm = loaded.model;
        let results = evaluate_splits(run, &mut lm, "float")?;
        run.metrics
            .set("float", "model_size_bytes", file_size(path));
        float_results = Some(results);
    }
    let mut int8_results = None;
    if let Some(path) = &int8_path {
        let loaded = crate::quantization::load_int8(path)?;
        run.ensure_data(&loaded.tokenizer, loaded.config.seq_len)?;
        tracing::info!("evaluating the int8 model {}", path.display());
        let mut lm = crate::quantization::Int8Lm::new(loaded.model, loaded.config);
        let results = evaluate_splits(run, &mut lm, "int8")?;
        run.metrics.set("int8", "model_size_bytes", file_size(path));
        int8_results = Some(results);
    }
    let nothing = |r: &Option<Vec<(&str, SplitMetrics)>>| r.as_ref().is_some_and(|r| r.is_empty());
    if nothing(&float_results) || nothing(&int8_results) {
        tracing::warn!(
            "no validation or test split long enough for one window: nothing to evaluate"
        );
    }
    match (&float_results, &int8_results) {
        (Some(f), Some(q)) => {
            let (fp, qp) = (float_path.as_deref(), int8_path.as_deref());
            let (fb, qb) = (
                fp.map(file_size).unwrap_or(0),
                qp.map(file_size).unwrap_or(0),
            );
            for (name, fm) in f.iter() {
                if let Some((_, qm)) = q.iter().find(|(n, _)| n == name) {
                    run.metrics.set(
                        "int8",
                        &format!("{name}_perplexity_change"),
                        qm.perplexity / fm.perplexity - 1.0,
                    );
                }
            }
            println!("{}", comparison_table(f, q, fb, qb));
        }
        (Some(f), None) => println!("{}", table("float model", f)),
        (None, Some(q)) => println!("{}", table("int8 model", q)),
        (None, None) => {}
    }
    Ok(())
}
