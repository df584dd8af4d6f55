//! What each key of a zoo configuration becomes in textzoo.

use super::{boards, normalize, Mapped};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// A key's fate: the textzoo keys it sets (and a note when the meaning shifts), or why it has
/// no counterpart.
pub enum Outcome {
    Map(Vec<(String, Value)>, Option<String>),
    Drop(String),
}

/// The whole old file, for rules that look at more than one key.
pub struct Context<'a> {
    leaves: &'a [(String, Value)],
    base: &'a Path,
}

impl<'a> Context<'a> {
    pub fn new(leaves: &'a [(String, Value)], base: &'a Path) -> Self {
        Self { leaves, base }
    }

    fn get(&self, key: &str) -> Option<&Value> {
        self.leaves
            .iter()
            .find(|(k, v)| k == key && !v.is_null())
            .map(|(_, v)| v)
    }

    fn has_prefix(&self, prefix: &str) -> bool {
        self.leaves.iter().any(|(k, _)| k.starts_with(prefix))
    }

    /// A path of the old file as textzoo should read it: relative ones from the old file's
    /// folder.
    fn path(&self, value: &Value) -> Option<PathBuf> {
        let text = value.as_str()?;
        let path = Path::new(text);
        Some(if path.is_absolute() {
            path.to_path_buf()
        } else {
            normalize(&self.base.join(path))
        })
    }

    /// The learning rate the old file trains with (textzoo's default when it names none).
    fn learning_rate(&self) -> f64 {
        ["Adam", "AdamW"]
            .iter()
            .find_map(|o| self.get(&format!("training.optimizer.{o}.learning_rate")))
            .and_then(Value::as_f64)
            .unwrap_or(crate::config::Training::default().learning_rate)
    }
}

fn to(key: &str, value: &Value) -> Result<Outcome, String> {
    Ok(Outcome::Map(vec![(key.to_string(), value.clone())], None))
}

fn to_noted(key: &str, value: Value, note: impl Into<String>) -> Result<Outcome, String> {
    Ok(Outcome::Map(
        vec![(key.to_string(), value)],
        Some(note.into()),
    ))
}

fn drop(why: impl Into<String>) -> Result<Outcome, String> {
    Ok(Outcome::Drop(why.into()))
}

/// Keys of textzoo's schema that the zoo spells the same way, mapped as they are.
const SAME: &[&str] = &[
    "general.project_name",
    "general.global_seed",
    "dataset.name",
    "dataset.validation_split",
    "dataset.test_split",
    "dataset.quantization_split",
    "training.batch_size",
    "training.epochs",
    "evaluation.batch_size",
    "prediction.prompt",
    "prediction.max_tokens",
    "prediction.temperature",
    "prediction.top_k",
    "prediction.top_p",
    "prediction.seed",
    "prediction.strategy",
    "tools.stedgeai.optimization",
    "tools.stedgeai.on_cloud",
    "tools.stm32ai.optimization",
    "tools.stm32ai.on_cloud",
];

const PATIENCE_NOTE: &str =
    "counted in validations (every training.eval_interval steps), not in epochs";

/// The textzoo keys for one zoo key.
pub fn rule(key: &str, v: &Value, cx: &Context) -> Result<Outcome, String> {
    if v.is_null() {
        return drop("null in the old file: textzoo's default applies");
    }
    if SAME.contains(&key) {
        return to(key, v);
    }
    if let Some(rest) = key.strip_prefix("training.optimizer.") {
        return optimizer(rest, v);
    }
    if let Some(rest) = key.strip_prefix("training.callbacks.") {
        return callback(rest, v, cx);
    }
    match key {
        "general.model_path" => model_path(v, cx),
        "general.logs_dir" => drop("textzoo writes TensorBoard logs to logs/ in each run directory"),
        "general.saved_models_dir" => {
            drop("textzoo saves models to saved_models/ in each run directory")
        }
        "general.gpu_memory_limit" | "general.gpu" => drop("textzoo trains on the CPU"),
        "general.display_figures" => drop(
            "textzoo never opens figure windows; its plots are in plots/ and report.html of each run",
        ),
        "general.deterministic_ops" => {
            drop("textzoo is always deterministic for a given general.global_seed")
        }
        "hydra.run.dir" => path_to("hydra.run.dir", v, cx),
        "mlflow.uri" => mlflow_uri(v, cx),
        "mlflow.experiment_name" => experiment_name(v, cx),
        "operation_mode" => operation_mode(v),
        "dataset.corpus_path" | "dataset.training_path" | "dataset.training_corpus_path" => {
            path_to("dataset.training_path", v, cx)
        }
        "dataset.validation_path" | "dataset.test_path" | "dataset.quantization_path" => {
            path_to(key, v, cx)
        }
        "dataset.sequence_length" => to_noted(
            "model.seq_len",
            v.clone(),
            "textzoo keeps the window length with the model",
        ),
        "dataset.max_vocab_size" | "dataset.vocab_size" => to_noted(
            "preprocessing.vocab_size",
            v.clone(),
            "including textzoo's <pad> and <unk>",
        ),
        "dataset.subset_size" => subset_size(v),
        "preprocessing.tokenizer_path" => drop(
            "the zoo's tokenizer file is a Keras tokenizer; textzoo trains a HuggingFace tokenizer on \
             the corpus (reuse a textzoo run's tokenizer.json with preprocessing.tokenizer_path)",
        ),
        "training.model.name" => to("model.name", v),
        "training.model.vocab_size" => {
            drop("textzoo takes the vocabulary size from the tokenizer (preprocessing.vocab_size)")
        }
        "training.model.embedding_dim" | "training.model.embed_dim" => to("model.embed_dim", v),
        "training.model.num_layers" => to("model.num_layers", v),
        "training.model.num_heads" => to("model.num_heads", v),
        "training.model.dff" | "training.model.ff_dim" | "training.model.ffn_dim" => {
            to("model.ffn_dim", v)
        }
        "training.model.hidden_dim" | "training.model.units" | "training.model.rnn_units" => {
            to("model.hidden_dim", v)
        }
        "training.model.dropout" | "training.model.dropout_rate" => to("model.dropout", v),
        "training.model.input_shape" => input_shape(v, cx),
        "training.model.include_embedding" | "quantization.model.include_embedding" => {
            drop("textzoo models always include their embedding (int8 weights once quantized)")
        }
        "training.resume_training_from" => drop(
            "a Keras checkpoint cannot be resumed by textzoo (textzoo resumes from its own \
             checkpoints, saved_models/checkpoint.safetensors)",
        ),
        "quantization.quantizer" => drop(
            "textzoo quantizes to int8 itself (TFLite-style fixed point, per-channel weights); no \
             converter is used",
        ),
        "quantization.quantization_type" => match v.as_str() {
            Some(t) if t.eq_ignore_ascii_case("ptq") => {
                drop("post-training quantization is what textzoo does")
            }
            _ => drop("textzoo only quantizes after training (PTQ)"),
        },
        "quantization.quantization_input_type" | "quantization.quantization_output_type" => drop(
            "textzoo's int8 model takes token ids and returns dequantized logits; there is no \
             input or output type to choose",
        ),
        "quantization.export_dir" => {
            drop("textzoo writes quantized_models/ in each run directory")
        }
        "quantization.granularity" => to("quantization.granularity", v),
        "evaluation.sample_text" => {
            unless_given(cx, "prediction.prompt", "prediction.prompt", v, None)
        }
        "evaluation.gen_length" => {
            unless_given(cx, "prediction.max_tokens", "prediction.max_tokens", v, None)
        }
        "evaluation.temperature" => unless_given(
            cx,
            "prediction.temperature",
            "prediction.temperature",
            v,
            Some("textzoo's prediction settings also drive the samples printed during training"),
        ),
        "tools.stedgeai.version" | "tools.stm32ai.version" => {
            let text = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            to(key, &Value::String(text))
        }
        "tools.stedgeai.path_to_stedgeai" | "tools.stm32ai.path_to_stm32ai" => path_to(key, v, cx),
        "tools.path_to_cubeIDE" | "tools.path_to_cubeide" => drop(
            "textzoo's C projects build with make and GCC (arm-none-eabi-gcc); STM32CubeIDE is not \
             needed",
        ),
        "benchmarking.board" => board("benchmarking.board", v, cx),
        "deployment.hardware_setup.board" => board("deployment.hardware_setup.board", v, cx),
        "deployment.hardware_setup.serie" => {
            drop("folded into deployment.hardware_setup.board (textzoo's board profile)")
        }
        "deployment.hardware_setup.stlink_serial_number" => {
            drop("textzoo does not flash boards; the project's README says how")
        }
        "deployment.c_project_path" => drop(
            "it names the zoo's STM32Cube application; textzoo writes its own C project to \
             c_project/ in the run directory (set deployment.c_project_path to choose another \
             empty folder)",
        ),
        "deployment.IDE" => match v.as_str() {
            Some(ide) if ide.eq_ignore_ascii_case("gcc") => {
                drop("textzoo's C project builds with a Makefile and GCC, as the zoo's GCC choice does")
            }
            _ => drop(
                "textzoo's C project builds with a Makefile and GCC; import it as a Makefile \
                 project into your IDE",
            ),
        },
        "deployment.verbosity" => drop("the C project's build prints what make prints"),
        _ => drop("no textzoo counterpart"),
    }
}

fn model_path(v: &Value, cx: &Context) -> Result<Outcome, String> {
    let Some(path) = cx.path(v) else {
        return Err(format!("expected a path, got {v}"));
    };
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default()
        .to_ascii_lowercase();
    if ext != "safetensors" {
        return drop(format!(
            "{} is not a textzoo model (textzoo cannot import .h5, .keras, .onnx or .tflite \
             models); train one with textzoo, or set general.model_path to a textzoo \
             .safetensors model",
            path.display()
        ));
    }
    to("general.model_path", &json!(path))
}

fn path_to(key: &str, v: &Value, cx: &Context) -> Result<Outcome, String> {
    let Some(path) = cx.path(v) else {
        return Err(format!("expected a path, got {v}"));
    };
    let note = (!Path::new(v.as_str().unwrap_or_default()).is_absolute())
        .then(|| "read from the old file's folder".to_string());
    Ok(Outcome::Map(vec![(key.to_string(), json!(path))], note))
}

fn mlflow_uri(v: &Value, cx: &Context) -> Result<Outcome, String> {
    let text = v.as_str().unwrap_or_default();
    if text.contains("://") || text.starts_with("file:") || text.is_empty() {
        return to("mlflow.uri", v);
    }
    path_to("mlflow.uri", v, cx)
}

fn experiment_name(v: &Value, cx: &Context) -> Result<Outcome, String> {
    match cx.get("general.project_name") {
        None => to_noted(
            "general.project_name",
            v.clone(),
            "textzoo names the MLflow experiment after general.project_name",
        ),
        Some(p) if p == v => drop("textzoo names the MLflow experiment after general.project_name, which is the same"),
        Some(p) => drop(format!(
            "textzoo names the MLflow experiment after general.project_name ({}), which the old file also sets",
            super::scalar(p)
        )),
    }
}

fn operation_mode(v: &Value) -> Result<Outcome, String> {
    let mode = v.as_str().unwrap_or_default();
    let names = || crate::config::MODES.iter().map(|m| m.1);
    if names().any(|name| name == mode) {
        return to("operation_mode", v);
    }
    Err(format!(
        "operation_mode `{mode}` has no textzoo counterpart; textzoo runs {}",
        names().collect::<Vec<_>>().join(", ")
    ))
}

fn subset_size(v: &Value) -> Result<Outcome, String> {
    if v.as_u64() == Some(0) {
        return drop("0 means the whole corpus, which is what textzoo reads");
    }
    drop(format!(
        "textzoo reads the whole corpus; to train on {} samples, cut the corpus file (or limit \
         training with training.max_steps)",
        super::scalar(v)
    ))
}

fn input_shape(v: &Value, cx: &Context) -> Result<Outcome, String> {
    let first = v.as_array().and_then(|a| a.first()).and_then(Value::as_u64);
    match (
        first,
        cx.get("dataset.sequence_length").and_then(Value::as_u64),
    ) {
        (Some(a), Some(b)) if a != b => drop(format!(
            "given by dataset.sequence_length ({b}) in textzoo; the old file's input_shape {a} \
             disagrees with it and is ignored"
        )),
        _ => drop("given by dataset.sequence_length (model.seq_len) in textzoo"),
    }
}

/// A zoo `evaluation.*` key that textzoo keeps under `prediction`, unless the old file sets
/// that `prediction` key itself.
fn unless_given(
    cx: &Context,
    given: &str,
    target: &str,
    v: &Value,
    note: Option<&str>,
) -> Result<Outcome, String> {
    if cx.get(given).is_some() {
        return drop(format!("the old file's {given} is used instead"));
    }
    Ok(Outcome::Map(
        vec![(target.to_string(), v.clone())],
        note.map(str::to_string),
    ))
}

fn optimizer(rest: &str, v: &Value) -> Result<Outcome, String> {
    let (name, param) = rest.split_once('.').unwrap_or((rest, ""));
    if name != "Adam" && name != "AdamW" {
        return drop(format!(
            "textzoo trains with AdamW only; its learning rate and betas are training.learning_rate, \
             training.beta1, training.beta2 (an {name} learning rate would not carry over)"
        ));
    }
    match param {
        "learning_rate" | "lr" => to("training.learning_rate", v),
        "beta_1" => to("training.beta1", v),
        "beta_2" => to("training.beta2", v),
        "epsilon" => to("training.eps", v),
        "weight_decay" if name == "AdamW" => to("training.weight_decay", v),
        "clipnorm" | "global_clipnorm" => to("training.grad_clip", v),
        _ => drop("no textzoo counterpart"),
    }
}

fn callback(rest: &str, v: &Value, cx: &Context) -> Result<Outcome, String> {
    let (name, param) = rest.split_once('.').unwrap_or((rest, ""));
    if param == "monitor" {
        return if v.as_str() == Some("val_loss") {
            drop("textzoo always monitors the validation loss")
        } else {
            drop(format!(
                "textzoo can only monitor the validation loss, not {}",
                super::scalar(v)
            ))
        };
    }
    if param == "mode" {
        return drop("the validation loss is minimised");
    }
    match (name, param) {
        ("ReduceLROnPlateau", "factor") => to("training.lr_schedule.factor", v),
        ("ReduceLROnPlateau", "patience") => {
            to_noted("training.lr_schedule.patience", v.clone(), PATIENCE_NOTE)
        }
        ("ReduceLROnPlateau", "min_lr") => {
            let min_lr = v
                .as_f64()
                .ok_or_else(|| format!("expected a number, got {v}"))?;
            let lr = cx.learning_rate();
            to_noted(
                "training.lr_schedule.min_lr_ratio",
                json!(min_lr / lr),
                format!("textzoo's floor is a fraction of the learning rate: {min_lr} / {lr}"),
            )
        }
        ("EarlyStopping", "patience") => {
            to_noted("training.early_stopping.patience", v.clone(), PATIENCE_NOTE)
        }
        ("EarlyStopping", "restore_best_weights") => to("training.early_stopping.restore_best", v),
        ("EarlyStopping", "min_delta") => to("training.early_stopping.min_delta", v),
        ("ReduceLROnPlateau" | "EarlyStopping", _) => drop("no textzoo counterpart"),
        _ => drop(format!(
            "textzoo has no {name} callback; every run saves its best model, checkpoints and logs \
             by itself"
        )),
    }
}

fn board(key: &str, v: &Value, cx: &Context) -> Result<Outcome, String> {
    let name = v
        .as_str()
        .ok_or_else(|| format!("expected a board name, got {v}"))?;
    let serie = cx
        .get("deployment.hardware_setup.serie")
        .and_then(Value::as_str);
    let (profile, note) = boards::map(name, serie)?;
    Ok(Outcome::Map(vec![(key.to_string(), json!(profile))], note))
}

/// What the old file implies without a key of its own: Adam has no weight decay; a
/// ReduceLROnPlateau callback is textzoo's `reduce_on_plateau` schedule; without an
/// EarlyStopping callback training does not stop early; a temperature means sampling.
pub fn implied(cx: &Context) -> Vec<Mapped> {
    let mut out = Vec::new();
    if cx.has_prefix("training.optimizer.Adam.") {
        out.push(Mapped {
            from: "training.optimizer.Adam".into(),
            to: vec![("training.weight_decay".into(), json!(0.0))],
            note: Some("Adam is AdamW without weight decay".into()),
        });
    }
    if cx.has_prefix("training.callbacks.ReduceLROnPlateau") {
        out.push(Mapped {
            from: "training.callbacks.ReduceLROnPlateau".into(),
            to: vec![
                (
                    "training.lr_schedule.name".into(),
                    json!("reduce_on_plateau"),
                ),
                ("training.lr_schedule.warmup_steps".into(), json!(0)),
            ],
            note: Some("the learning rate is cut when the validation loss stalls".into()),
        });
    }
    if cx.has_prefix("training.callbacks.EarlyStopping") {
        out.push(Mapped {
            from: "training.callbacks.EarlyStopping".into(),
            to: vec![("training.early_stopping.enabled".into(), json!(true))],
            note: None,
        });
    } else if cx.has_prefix("training.") {
        out.push(Mapped {
            from: "training.callbacks (no EarlyStopping)".into(),
            to: vec![("training.early_stopping.enabled".into(), json!(false))],
            note: Some("the old file does not stop early".into()),
        });
    }
    let temperature =
        cx.get("prediction.temperature").is_some() || cx.get("evaluation.temperature").is_some();
    if temperature && cx.get("prediction.strategy").is_none() {
        out.push(Mapped {
            from: "evaluation.temperature / prediction.temperature".into(),
            to: vec![("prediction.strategy".into(), json!("sample"))],
            note: Some("a temperature means sampling; textzoo's default is greedy".into()),
        });
    }
    out
}

/// Problems the new file will meet when it runs: files it names that do not exist.
pub fn warnings(cx: &Context, mapped: &[Mapped]) -> Vec<String> {
    let mut out = Vec::new();
    for m in mapped {
        for (key, value) in &m.to {
            let checked = matches!(
                key.as_str(),
                "dataset.training_path"
                    | "dataset.validation_path"
                    | "dataset.test_path"
                    | "dataset.quantization_path"
                    | "general.model_path"
            );
            let Some(path) = value.as_str().filter(|_| checked) else {
                continue;
            };
            if !Path::new(path).exists() {
                out.push(format!(
                    "{key} = {path} does not exist (the old file's {} = {}, read from the old \
                     file's folder {}); fix {key} in the new file before running",
                    m.from,
                    cx.get(&m.from).map(super::scalar).unwrap_or_default(),
                    cx.base.display()
                ));
            }
        }
    }
    out
}
