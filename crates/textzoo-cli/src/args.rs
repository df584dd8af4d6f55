//! Command-line arguments, in the Hydra style the STM32 model zoo uses.

use clap::Parser;
use std::path::PathBuf;

const MODES_HELP: &str = "\
Operation modes (operation_mode=…):
  preprocessing   build the tokenizer and token cache, print corpus statistics
  training        train a float model on the corpus
  evaluation      loss, perplexity and accuracy of general.model_path
  quantization    int8 post-training quantization of general.model_path
  prediction      generate text from prediction.prompt
  benchmarking    static analysis, host timing and emulated MCU run
  deployment      generate the C project for deployment.hardware_setup.board
  chain_tqe       training → quantization → evaluation (the default)
  chain_tqeb      chain_tqe → benchmarking
  chain_eqe       evaluation → quantization → evaluation
  chain_eqeb      chain_eqe → benchmarking
  chain_qb        quantization → benchmarking
  chain_qd        quantization → deployment

Configuration sections: general, operation_mode, dataset, preprocessing, model, training,
quantization, evaluation, prediction, benchmarking, deployment, tools, mlflow, hydra.
Every key has a default; see user_config.yaml and config_file_examples/ for all of them.

Overrides are key.path=value; values are YAML: numbers, true/false, null, [a,b] lists, and
anything else a string (quote it in the shell when it has spaces). Strings may use
${section.key} and ${now:%Y_%m_%d_%H_%M_%S} interpolation.

Examples:
  textzoo operation_mode=chain_tqe
  textzoo operation_mode=prediction general.model_path=RUN/saved_models/model.safetensors \\
          prediction.prompt=\"to be or not\" prediction.max_tokens=50
  textzoo --config-path config_file_examples --config-name training.yaml training.max_steps=100
  textzoo --cfg model.name=tiny_gpt        (print the resolved configuration and exit)

Exit codes: 0 success, 2 invalid configuration or input, 1 failure while working.";

/// Train, quantize to int8, evaluate, generate with, benchmark and deploy tiny language
/// models for STM32 microcontrollers.
#[derive(Debug, Parser)]
#[command(name = "textzoo", version, args_conflicts_with_subcommands = true, after_long_help = MODES_HELP, after_help = "Run `textzoo --help` for the operation modes, sections and examples.")]
pub struct Args {
    /// Directory holding the configuration file.
    #[arg(long = "config-path", short = 'p', value_name = "DIR")]
    pub config_path: Option<PathBuf>,
    /// Configuration file name (default: user_config.yaml; built-in defaults if it is absent).
    #[arg(long = "config-name", short = 'n', value_name = "FILE")]
    pub config_name: Option<String>,
    /// Print the resolved configuration as YAML and exit without running anything.
    #[arg(long = "cfg", alias = "print-config")]
    pub cfg: bool,
    /// Overrides of the form section.key=value.
    #[arg(value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Merge text files (globs allowed) into one training corpus, like the model zoo's
    /// combine_corpus.py.
    CombineCorpus(CombineArgs),
    /// Write an int8 model as C sources alone (model, embeddings, vocabulary and the runtime,
    /// no application, platform or Makefile), for your own firmware — the model zoo's
    /// conversion scripts.
    ModelToC(ModelToCArgs),
    /// Export a model file for other runtimes and tools: ONNX (float from a float model, QDQ
    /// from an int8 model) and TFLite int8 (from an int8 model), the formats ST Edge AI,
    /// Netron, onnxruntime and LiteRT read.
    Export(ExportArgs),
    /// Inspect a model file (.safetensors, .onnx, .tflite): format and version, operators,
    /// tensor types, quantization, size, and warnings for the board; exit 0 (ok) or 1.
    Check(CheckArgs),
}

#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// The model file (float `saved_models/model.safetensors` or int8
    /// `quantized_models/model_int8.safetensors`).
    #[arg(value_name = "MODEL")]
    pub model: PathBuf,
    /// Formats to write (comma-separated or repeated).
    #[arg(long, short = 'f', value_enum, value_delimiter = ',', required = true)]
    pub format: Vec<FormatArg>,
    /// Directory to write to (created if needed).
    #[arg(long, short = 'o', value_name = "DIR")]
    pub output: PathBuf,
    /// TFLite flavour: `true` puts the token embedding in the graph (int32 token ids in),
    /// `false` takes the int8 embedded window in and writes the table as `embedding.h`.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub include_embedding: bool,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum FormatArg {
    Onnx,
    Tflite,
}

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The model file to inspect.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Board to check the operators against (as deployment.hardware_setup.board).
    #[arg(long, value_name = "BOARD")]
    pub board: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct ModelToCArgs {
    /// The int8 model file (`quantized_models/model_int8.safetensors`).
    #[arg(value_name = "INT8_MODEL")]
    pub model: PathBuf,
    /// Directory to write the sources to (created; an existing one must be empty or an
    /// earlier output of textzoo).
    #[arg(long, short = 'o', value_name = "DIR")]
    pub output: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct CombineArgs {
    /// Files or glob patterns, merged in the order given (each pattern's matches sorted).
    #[arg(required = true, value_name = "INPUT")]
    pub inputs: Vec<String>,
    /// The combined corpus to write.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: PathBuf,
    /// Unicode normalisation.
    #[arg(long, value_enum)]
    pub normalize: Option<UnicodeArg>,
    /// Lowercase everything.
    #[arg(long)]
    pub lowercase: bool,
    /// Replace runs of blank lines by a single blank line.
    #[arg(long)]
    pub collapse_blank_lines: bool,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum UnicodeArg {
    Nfc,
    Nfkc,
}
