//! The typed configuration: one struct per YAML section.
//!
//! Every field has a default so that a section a mode does not use can be left out, the way the
//! model zoo's mode groups work. `deny_unknown_fields` is a second line of defence behind the
//! key check in [`super::keys`], which gives the friendlier "did you mean" message.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use textzoo_rt::ModelConfig;

/// The whole resolved configuration.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub general: General,
    pub operation_mode: OperationMode,
    pub dataset: Dataset,
    pub preprocessing: Preprocessing,
    pub model: Model,
    pub training: Training,
    pub quantization: Quantization,
    pub evaluation: Evaluation,
    pub prediction: Prediction,
    pub benchmarking: Benchmarking,
    pub deployment: Deployment,
    pub tools: Tools,
    pub mlflow: Mlflow,
    pub hydra: Hydra,
}

impl Config {
    /// The seed text generation starts from: `prediction.seed`, else the run's
    /// `general.global_seed` (so a run's samples, its `generated.txt` and its C app agree).
    pub fn prediction_seed(&self) -> u64 {
        self.prediction.seed.unwrap_or(self.general.global_seed)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct General {
    /// Name of the MLflow experiment and of the project in reports.
    pub project_name: String,
    /// A model file to start from (float or int8 `.safetensors`); required by modes that do not
    /// train first.
    pub model_path: Option<PathBuf>,
    /// The bundled model (`pretrained_models/`) a mode that starts from a model uses when no
    /// `general.model_path` is given: `board` or `reference` (the entry `<model.name>_<size>`),
    /// or an entry's own name (e.g. `gru_board`); `null` to require a model file.
    pub pretrained: Option<String>,
    pub global_seed: u64,
    /// Worker threads for training and evaluation; 0 means one per available core.
    pub num_threads: usize,
}

impl Default for General {
    fn default() -> Self {
        Self {
            project_name: "textzoo".into(),
            model_path: None,
            pretrained: Some("board".into()),
            global_seed: 42,
            num_threads: 0,
        }
    }
}

/// The operation modes of the model zoo, plus `preprocessing`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum OperationMode {
    Preprocessing,
    Training,
    Evaluation,
    Quantization,
    Prediction,
    Benchmarking,
    Deployment,
    #[default]
    ChainTqe,
    ChainTqeb,
    ChainEqe,
    ChainEqeb,
    ChainQb,
    ChainQd,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Dataset {
    pub name: String,
    /// The training corpus: a UTF-8 text file.
    pub training_path: PathBuf,
    /// A separate validation corpus; when absent, the tail of the training corpus is used.
    pub validation_path: Option<PathBuf>,
    /// Fraction of the training corpus (by position, from the end) kept for validation.
    pub validation_split: f64,
    /// A separate test corpus; when absent, `test_split` of the corpus (before validation).
    pub test_path: Option<PathBuf>,
    pub test_split: f64,
    /// Representative data for quantization; the training split when absent.
    pub quantization_path: Option<PathBuf>,
    /// How much representative data: a fraction (≤ 1) or a number of windows (> 1).
    pub quantization_split: f64,
}

impl Default for Dataset {
    fn default() -> Self {
        Self {
            name: "tinyshakespeare".into(),
            training_path: PathBuf::from("datasets/tinyshakespeare.txt"),
            validation_path: None,
            validation_split: 0.1,
            test_path: None,
            test_split: 0.0,
            quantization_path: None,
            quantization_split: 200.0,
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum TokenizerKind {
    #[default]
    Word,
    Char,
    Bpe,
}

/// How the word tokenizer cuts text into words.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum WordPattern {
    /// Unicode words (`\w+`) and every other non-space character on its own.
    #[default]
    Unicode,
    /// The Keras anchor's tokenization: runs of `[a-z0-9]` or any single other non-space
    /// character (use with `lowercase: true`), for a like-for-like comparison.
    Keras,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Normalization {
    #[default]
    None,
    Nfc,
    Nfkc,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Preprocessing {
    pub tokenizer: TokenizerKind,
    /// Total vocabulary including special tokens.
    pub vocab_size: usize,
    pub min_frequency: u64,
    pub lowercase: bool,
    pub word_pattern: WordPattern,
    pub normalization: Normalization,
    /// Reuse an existing `tokenizer.json` instead of training one.
    pub tokenizer_path: Option<PathBuf>,
}

impl Default for Preprocessing {
    fn default() -> Self {
        Self {
            tokenizer: TokenizerKind::Word,
            vocab_size: 4096,
            min_frequency: 1,
            lowercase: true,
            word_pattern: WordPattern::Unicode,
            normalization: Normalization::None,
            tokenizer_path: None,
        }
    }
}

/// `model.name`: the model kinds the runtime knows (same names, same default).
pub use textzoo_rt::Kind as ModelName;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Model {
    pub name: ModelName,
    pub seq_len: usize,
    pub embed_dim: usize,
    pub num_heads: usize,
    pub num_layers: usize,
    pub ffn_dim: usize,
    /// Recurrent state size for `gru` / `lstm`.
    pub hidden_dim: usize,
    pub dropout: f64,
    /// Share the token embedding with the output layer where the model allows it (see
    /// [`Model::untied_note`] for where it does not).
    pub tie_embeddings: bool,
    /// The model zoo's name for `general.model_path` (the float model to start from); one of
    /// the two, or both with the same value.
    pub float_model_path: Option<PathBuf>,
}

impl Model {
    /// Whether the head really shares the embedding: `tie_embeddings`, except for gru/lstm
    /// whose state size differs from the embedding's (their head reads the `hidden_dim` state,
    /// so it cannot be the `[vocab, embed_dim]` embedding). Untying there, rather than refusing
    /// the default configuration, lets `model.name=gru` run as it is; the README gives the
    /// measurement that chose untying over a hidden → embed projection.
    pub fn ties(&self) -> bool {
        self.tie_embeddings && self.untied_note().is_none()
    }

    /// The one-line note logged and recorded in `metrics.json` when `tie_embeddings: true`
    /// cannot be honoured; `None` when the setting is used as given.
    pub fn untied_note(&self) -> Option<String> {
        let recurrent = matches!(self.name, ModelName::Gru | ModelName::Lstm);
        (self.tie_embeddings && recurrent && self.embed_dim != self.hidden_dim).then(|| {
            format!(
                "model.tie_embeddings: {}'s output layer reads its model.hidden_dim ({}) state, which differs from model.embed_dim ({}), so its head is untied (set both to the same size to tie it)",
                self.name.name(), self.hidden_dim, self.embed_dim
            )
        })
    }

    /// The model this section describes, for a tokenizer of `vocab_size` tokens.
    pub fn model_config(&self, vocab_size: usize) -> ModelConfig {
        ModelConfig {
            kind: self.name,
            vocab_size,
            seq_len: self.seq_len,
            embed_dim: self.embed_dim,
            num_heads: self.num_heads,
            num_layers: self.num_layers,
            ffn_dim: self.ffn_dim,
            hidden_dim: self.hidden_dim,
            dropout: self.dropout as f32,
            tie_embeddings: self.ties(),
        }
    }
}

impl Default for Model {
    fn default() -> Self {
        Self {
            name: ModelName::TinyBertGenerator,
            seq_len: 32,
            embed_dim: 128,
            num_heads: 4,
            num_layers: 2,
            ffn_dim: 512,
            hidden_dim: 256,
            dropout: 0.1,
            tie_embeddings: false,
            float_model_path: None,
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum LrScheduleKind {
    Constant,
    #[default]
    Cosine,
    Step,
    ReduceOnPlateau,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LrSchedule {
    pub name: LrScheduleKind,
    pub warmup_steps: u64,
    /// Floor of the learning rate, as a fraction of `training.learning_rate`.
    pub min_lr_ratio: f64,
    /// `step`: multiply by `gamma` every `step_size` steps.
    pub step_size: u64,
    pub gamma: f64,
    /// `reduce_on_plateau`: multiply by `factor` after `patience` validations without progress.
    pub factor: f64,
    pub patience: u64,
}

impl Default for LrSchedule {
    fn default() -> Self {
        Self {
            name: LrScheduleKind::Cosine,
            warmup_steps: 100,
            min_lr_ratio: 0.1,
            step_size: 1000,
            gamma: 0.5,
            factor: 0.5,
            patience: 2,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct EarlyStopping {
    pub enabled: bool,
    /// Validations without an improvement of at least `min_delta` before stopping.
    pub patience: u64,
    pub min_delta: f64,
    pub restore_best: bool,
}

impl Default for EarlyStopping {
    fn default() -> Self {
        Self {
            enabled: true,
            patience: 5,
            min_delta: 0.0,
            restore_best: true,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Training {
    pub batch_size: usize,
    /// Passes over the training windows; training stops at whichever of `epochs`, `max_steps`
    /// and `max_minutes` comes first.
    pub epochs: Option<u64>,
    pub max_steps: Option<u64>,
    pub max_minutes: Option<f64>,
    pub learning_rate: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    /// Clip the global gradient norm to this value; 0 disables clipping.
    pub grad_clip: f64,
    pub lr_schedule: LrSchedule,
    pub early_stopping: EarlyStopping,
    /// Validate every this many steps.
    pub eval_interval: u64,
    /// Windows of the validation split used by periodic validation (0 = all).
    pub eval_windows: usize,
    /// Write a checkpoint every this many steps (0 = only at the end and on interrupt).
    pub checkpoint_interval: u64,
    /// Share of `tiny_bert_generator` training windows shortened with left `<pad>`, so prompts
    /// shorter than the window work at generation time. Every shortened window is a
    /// full-window example lost: on the reference run 0.25 reached validation perplexity
    /// 101–106 where 0.1 reached 97.8 (same settings otherwise).
    pub short_context_share: f64,
    /// Keep an exponential moving average of the weights with this decay (e.g. 0.999) and
    /// validate, keep and save the average instead of the live weights; null = off.
    pub ema_decay: Option<f64>,
    /// A checkpoint file to resume from.
    pub resume_training_from: Option<PathBuf>,
    /// Train against a teacher model as well as the ground truth (off without a teacher).
    pub distillation: Distillation,
}

/// Knowledge distillation: the student learns the teacher's softened next-token distribution
/// as well as the corpus' next token,
/// `loss = alpha · T² · KL(softmax(teacher / T) ‖ softmax(student / T)) + (1 − alpha) · CE(student, targets)`
/// with `T = temperature`. The T² keeps the soft term's gradient at the scale of the hard
/// term's whatever the temperature (its gradient is `alpha · T · (q_T − p_T)`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Distillation {
    /// A float model file (any of the four kinds) with the run's tokenizer; null = no
    /// distillation.
    pub teacher_path: Option<PathBuf>,
    /// Weight of the teacher's term, in [0, 1] (0 = ordinary training with the teacher unused).
    pub alpha: f64,
    /// Softening of both distributions, > 0.
    pub temperature: f64,
}

impl Default for Distillation {
    fn default() -> Self {
        Self {
            teacher_path: None,
            alpha: 0.5,
            temperature: 2.0,
        }
    }
}

impl Default for Training {
    fn default() -> Self {
        Self {
            batch_size: 32,
            epochs: Some(1),
            max_steps: None,
            max_minutes: None,
            learning_rate: 1e-3,
            beta1: 0.9,
            beta2: 0.99,
            eps: 1e-8,
            weight_decay: 0.01,
            grad_clip: 1.0,
            lr_schedule: LrSchedule::default(),
            early_stopping: EarlyStopping::default(),
            eval_interval: 200,
            eval_windows: 2048,
            checkpoint_interval: 500,
            short_context_share: 0.1,
            ema_decay: None,
            resume_training_from: None,
            distillation: Distillation::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Calibration {
    Minmax,
    #[default]
    Percentile,
    Mse,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Granularity {
    #[default]
    PerChannel,
    PerTensor,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Quantization {
    pub calibration: Calibration,
    /// Percentile of |activation| kept by `percentile` calibration, in (50, 100].
    pub percentile: f64,
    pub granularity: Granularity,
    /// Representative windows used for calibration.
    pub num_samples: usize,
    /// Interchange files written beside the int8 model (`quantized_models/`): the float and
    /// QDQ ONNX graphs, the int8 TFLite flatbuffer.
    pub export: Vec<ExportFormat>,
    /// TFLite flavour: the token embedding inside the graph (int32 token ids in), or outside
    /// it (`false`: the int8 embedded window in, the table written as `embedding.h`), as the
    /// zoo deploys both.
    pub include_embedding: bool,
}

/// An interchange format `quantization.export` and `textzoo export` write.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum ExportFormat {
    Onnx,
    Tflite,
}

impl ExportFormat {
    pub fn name(self) -> &'static str {
        match self {
            ExportFormat::Onnx => "onnx",
            ExportFormat::Tflite => "tflite",
        }
    }
}

impl Default for Quantization {
    fn default() -> Self {
        Self {
            calibration: Calibration::Percentile,
            percentile: 99.99,
            granularity: Granularity::PerChannel,
            num_samples: 200,
            export: Vec::new(),
            include_embedding: true,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Evaluation {
    pub batch_size: usize,
    /// Evaluate at most this many windows per split (0 = all).
    pub max_windows: usize,
}

impl Default for Evaluation {
    fn default() -> Self {
        Self {
            batch_size: 64,
            max_windows: 0,
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    #[default]
    Greedy,
    Sample,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Prediction {
    pub prompt: String,
    pub max_tokens: usize,
    pub strategy: Strategy,
    pub temperature: f64,
    /// Keep only the k most likely tokens when sampling (0 = all).
    pub top_k: usize,
    /// Keep the smallest set of tokens whose probability reaches p (1 = all).
    pub top_p: f64,
    /// Sampling seed; `general.global_seed` when absent.
    pub seed: Option<u64>,
    /// Let generation emit `<unk>` and `<pad>`.
    pub allow_special_tokens: bool,
    /// Divide the positive logits of tokens already in the context (prompt and generated) by
    /// this, multiply their negative ones (CTRL / HuggingFace; 1.0 = off, above 1 discourages
    /// repetition). Keeps weakly trained models from answering "the the the".
    pub repetition_penalty: f64,
    /// Never generate a token that would repeat an n-gram of this size already in the context
    /// (HuggingFace's `no_repeat_ngram_size`; 0 = off).
    pub no_repeat_ngram_size: usize,
}

impl Default for Prediction {
    fn default() -> Self {
        Self {
            prompt: "to be or not".into(),
            max_tokens: 50,
            strategy: Strategy::Greedy,
            temperature: 1.0,
            top_k: 0,
            top_p: 1.0,
            seed: None,
            allow_special_tokens: false,
            repetition_penalty: 1.0,
            no_repeat_ngram_size: 0,
        }
    }
}

/// Boards textzoo can deploy to and benchmark on.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
pub enum Board {
    #[default]
    #[serde(rename = "STM32H7")]
    Stm32H7,
    #[serde(rename = "STM32N6570-DK")]
    Stm32N6,
    #[serde(rename = "STM32MP157F-DK2")]
    Stm32Mp157,
    #[serde(rename = "STM32MP257F-EV1")]
    Stm32Mp257,
    #[serde(rename = "host")]
    Host,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Benchmarking {
    /// The board to analyse against; `deployment.hardware_setup.board` when absent.
    pub board: Option<Board>,
    /// Generated tokens timed per run.
    pub num_tokens: usize,
    /// Repeated runs; medians are reported.
    pub repeats: usize,
    /// Also build the firmware and count instructions under QEMU.
    pub emulate: bool,
    /// A UART log captured from the board running the firmware (its `timing:` line, printed
    /// after the text): the measured cycles/token join the report beside the emulated
    /// estimate.
    pub board_log: Option<PathBuf>,
}

impl Default for Benchmarking {
    fn default() -> Self {
        Self {
            board: None,
            num_tokens: 32,
            repeats: 5,
            emulate: true,
            board_log: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct HardwareSetup {
    pub board: Board,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Deployment {
    pub hardware_setup: HardwareSetup,
    /// Where the C project is written; `<run_dir>/c_project` when absent.
    pub c_project_path: Option<PathBuf>,
}

/// ST Edge AI (STM32Cube.AI), the model zoo's `tools.stedgeai` section. textzoo's own C
/// deployment needs none of it; when `path_to_stedgeai` names an installed `stedgeai`, the
/// exported `.tflite` can be handed to it as well.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StEdgeAi {
    pub version: Option<String>,
    pub optimization: String,
    pub on_cloud: bool,
    pub path_to_stedgeai: Option<PathBuf>,
}

impl Default for StEdgeAi {
    fn default() -> Self {
        Self {
            version: None,
            optimization: "balanced".into(),
            on_cloud: false,
            path_to_stedgeai: None,
        }
    }
}

/// The older name of [`StEdgeAi`] (`tools.stm32ai`, from STM32Cube.AI releases before ST Edge
/// AI), still accepted so that older zoo files load.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Stm32Ai {
    pub version: Option<String>,
    pub optimization: String,
    pub on_cloud: bool,
    pub path_to_stm32ai: Option<PathBuf>,
}

impl Default for Stm32Ai {
    fn default() -> Self {
        Self {
            version: None,
            optimization: "balanced".into(),
            on_cloud: false,
            path_to_stm32ai: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Tools {
    pub stedgeai: StEdgeAi,
    pub stm32ai: Stm32Ai,
}

impl Tools {
    /// The `stedgeai` executable to hand exports to, if the user named one (the current key
    /// first, then the older `tools.stm32ai.path_to_stm32ai`).
    pub fn stedgeai_path(&self) -> Option<&std::path::Path> {
        self.stedgeai
            .path_to_stedgeai
            .as_deref()
            .or(self.stm32ai.path_to_stm32ai.as_deref())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Mlflow {
    pub uri: String,
    /// The MLflow run this run is a child of (tag `mlflow.parentRunId`); a sweep sets it for
    /// its jobs so that `mlflow ui` groups them under the sweep's run.
    pub parent_run_id: Option<String>,
}

impl Default for Mlflow {
    fn default() -> Self {
        Self {
            uri: "./experiments_outputs/mlruns".into(),
            parent_run_id: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HydraRun {
    pub dir: PathBuf,
}

impl Default for HydraRun {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("experiments_outputs/${now:%Y_%m_%d_%H_%M_%S}"),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Hydra {
    pub run: HydraRun,
    /// Where a `--multirun` sweep puts its jobs' run directories.
    pub sweep: HydraSweep,
    /// The job a run is within its sweep (set by the sweep for each job; 0 for a single run).
    pub job: HydraJob,
    /// How a `--multirun` sweep chooses its jobs from the override lists.
    pub sweeper: Sweeper,
    /// How a `--multirun` sweep runs its jobs.
    pub launcher: Launcher,
}

/// `hydra.sweep`: as in Hydra, job `n` runs in `<dir>/<subdir>` (`subdir` defaults to the job
/// number). `boards` is textzoo's: the boards the sweep report checks every model against.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HydraSweep {
    pub dir: PathBuf,
    #[serde(deserialize_with = "string_or_number")]
    pub subdir: String,
    /// Boards whose flash and RAM each job's int8 model is checked against in the sweep
    /// report; empty: each job's `deployment.hardware_setup.board`.
    pub boards: Vec<Board>,
}

impl Default for HydraSweep {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("experiments_outputs/multirun/${now:%Y_%m_%d_%H_%M_%S}"),
            subdir: "${hydra.job.num}".into(),
            boards: Vec::new(),
        }
    }
}

/// A lone `${hydra.job.num}` interpolates to a number (OmegaConf keeps the type); a directory
/// name takes it as text.
fn string_or_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Text {
        S(String),
        U(u64),
        I(i64),
        F(f64),
    }
    Ok(match Text::deserialize(d)? {
        Text::S(s) => s,
        Text::U(n) => n.to_string(),
        Text::I(n) => n.to_string(),
        Text::F(n) => n.to_string(),
    })
}

/// `time: 10` (minutes) and `time: "00:10:00"` alike.
fn option_string_or_number<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    struct Wrapped(#[serde(deserialize_with = "string_or_number")] String);
    Ok(Option::<Wrapped>::deserialize(d)?.map(|w| w.0))
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct HydraJob {
    pub num: usize,
}

/// `hydra.sweeper.name`: every combination (Hydra's basic sweeper) or a seeded random sample.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum SweeperKind {
    #[default]
    Basic,
    Random,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Sweeper {
    pub name: SweeperKind,
    /// The most jobs a sweep may have; a bigger product is refused before anything runs.
    pub max_jobs: usize,
    /// `random`: how many distinct combinations to draw.
    pub n_trials: usize,
    /// `random`: the draw's seed.
    pub seed: u64,
    /// Sweep values kept in the configuration file, as Hydra's `hydra.sweeper.params`
    /// (`model.embed_dim: 32,48,64`); a command-line override of the same key replaces its entry.
    pub params: serde_json::Map<String, serde_json::Value>,
}

impl Default for Sweeper {
    fn default() -> Self {
        Self {
            name: SweeperKind::Basic,
            max_jobs: 1000,
            n_trials: 10,
            seed: 0,
            params: serde_json::Map::new(),
        }
    }
}

/// `hydra.launcher.name`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum LauncherKind {
    /// Child processes of this binary on this machine.
    #[default]
    Local,
    /// One `sbatch` job array on a Slurm cluster.
    Slurm,
}

/// `hydra.launcher`: the local keys (`n_jobs`) and the Slurm ones (the rest), as Hydra's
/// joblib and Submitit launchers name them where they can.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Launcher {
    pub name: LauncherKind,
    /// Local: jobs run at once (each gets cores / `n_jobs` threads unless
    /// `general.num_threads` says otherwise).
    pub n_jobs: usize,
    /// Slurm: tasks of the array running at once (`--array=…%K`); 0: as many as Slurm allows.
    pub array_parallelism: usize,
    pub partition: Option<String>,
    /// Slurm's `--time` (minutes, `HH:MM:SS`, `D-HH:MM`, …).
    #[serde(deserialize_with = "option_string_or_number")]
    pub time: Option<String>,
    pub cpus_per_task: Option<usize>,
    /// Slurm's `--mem` (`4G`, `500M`, or megabytes as a number).
    #[serde(deserialize_with = "option_string_or_number")]
    pub mem: Option<String>,
    pub account: Option<String>,
    pub qos: Option<String>,
    /// More `sbatch` arguments, each one `--flag=value`.
    pub sbatch_args: Vec<String>,
    /// Shell lines each Slurm task runs before textzoo (`module load …`, `source venv/bin/activate`).
    pub setup: Vec<String>,
    /// Slurm: wait for the array to finish (polling `squeue`); `false` returns once submitted.
    pub wait: bool,
    /// Slurm: seconds between two `squeue` polls.
    pub poll_seconds: f64,
}

impl Default for Launcher {
    fn default() -> Self {
        Self {
            name: LauncherKind::Local,
            n_jobs: 1,
            array_parallelism: 0,
            partition: None,
            time: None,
            cpus_per_task: None,
            mem: None,
            account: None,
            qos: None,
            sbatch_args: Vec::new(),
            setup: Vec::new(),
            wait: true,
            poll_seconds: 5.0,
        }
    }
}
