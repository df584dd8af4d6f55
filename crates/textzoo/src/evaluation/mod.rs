//! Evaluation: loss, perplexity and top-1/top-5 accuracy on the validation and test splits,
//! through the [`LanguageModel`] interface, for the float and the int8 model alike.

pub mod metrics;

pub use metrics::{evaluate, SplitMetrics};

use crate::artifact::{FloatFile, Int8File};
use crate::config::Evaluation;
use crate::data::PreparedData;
use crate::lm::{Int8Lm, LanguageModel};
use crate::util::{file_size, Metrics};

/// The metrics of one model on each split that holds at least one window.
pub type SplitResults = Vec<(&'static str, SplitMetrics)>;

/// Evaluates `lm` on the validation and test splits of `data`.
pub fn evaluate_splits(
    lm: &mut dyn LanguageModel,
    data: &PreparedData,
    settings: &Evaluation,
) -> SplitResults {
    [("val", &data.ids.validation), ("test", &data.ids.test)]
        .into_iter()
        .filter_map(|(name, ids)| {
            evaluate(lm, ids, settings.batch_size, settings.max_windows).map(|m| (name, m))
        })
        .collect()
}

/// One model's results and the size of its file.
pub struct ModelResults {
    pub splits: SplitResults,
    pub file_bytes: u64,
}

/// What the evaluation stage measured: the float model, the int8 model, or both side by side.
pub struct EvalReport {
    pub float: Option<ModelResults>,
    pub int8: Option<ModelResults>,
}

impl EvalReport {
    /// `float.*` and `int8.*` metrics, and the int8 perplexity change per split.
    pub fn record(&self, m: &mut Metrics) {
        for (section, results) in [("float", &self.float), ("int8", &self.int8)] {
            let Some(results) = results else { continue };
            for (name, r) in &results.splits {
                for (key, value) in [
                    ("loss", r.loss),
                    ("perplexity", r.perplexity),
                    ("accuracy", r.accuracy),
                    ("top5_accuracy", r.top5_accuracy),
                ] {
                    m.set(section, &format!("{name}_{key}"), value);
                }
                m.set(section, &format!("{name}_tokens"), r.tokens);
            }
            m.set(section, "model_size_bytes", results.file_bytes);
        }
        if let (Some(f), Some(q)) = (&self.float, &self.int8) {
            for (name, fm) in &f.splits {
                if let Some((_, qm)) = q.splits.iter().find(|(n, _)| n == name) {
                    m.set(
                        "int8",
                        &format!("{name}_perplexity_change"),
                        qm.perplexity / fm.perplexity - 1.0,
                    );
                }
            }
        }
    }

    /// The console table: side by side when both models were evaluated.
    pub fn render(&self) -> String {
        match (&self.float, &self.int8) {
            (Some(f), Some(q)) => {
                comparison_table(&f.splits, &q.splits, f.file_bytes, q.file_bytes)
            }
            (Some(f), None) => table("float model", &f.splits),
            (None, Some(q)) => table("int8 model", &q.splits),
            (None, None) => String::new(),
        }
    }
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

/// The evaluation stage: the float model, the int8 model on `textzoo-rt`, or both (then with a
/// side-by-side table), on `data`'s validation and test splits.
pub fn evaluate_models(
    float: Option<&mut FloatFile>,
    int8: Option<&Int8File>,
    data: &PreparedData,
    settings: &Evaluation,
) -> EvalReport {
    let float = float.map(|f| {
        tracing::info!("evaluating {}", f.path.display());
        ModelResults {
            splits: evaluate_splits(&mut f.model, data, settings),
            file_bytes: file_size(&f.path),
        }
    });
    let int8 = int8.map(|q| {
        tracing::info!("evaluating the int8 model {}", q.path.display());
        let mut lm = Int8Lm::new(q.model.clone());
        ModelResults {
            splits: evaluate_splits(&mut lm, data, settings),
            file_bytes: file_size(&q.path),
        }
    });
    let nothing = |r: &Option<ModelResults>| r.as_ref().is_some_and(|r| r.splits.is_empty());
    if nothing(&float) || nothing(&int8) {
        tracing::warn!(
            "no validation or test split long enough for one window: nothing to evaluate"
        );
    }
    EvalReport { float, int8 }
}
