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

With --multirun (-m) an override may list values, and the sweep runs one job per
combination: key=a,b,c  key=range(start,stop[,step])  key=choice(a,b)  ('a,b' quoted is one
value). hydra.sweep.dir holds the jobs' run directories and sweep.csv / sweep.html;
hydra.launcher.name=local (n_jobs at once) or slurm (one sbatch job array).

Examples:
  textzoo operation_mode=chain_tqe
  textzoo operation_mode=prediction general.model_path=RUN/saved_models/model.safetensors \\
          prediction.prompt=\"to be or not\" prediction.max_tokens=50
  textzoo --config-path config_file_examples --config-name training.yaml training.max_steps=100
  textzoo --cfg model.name=tiny_gpt        (print the resolved configuration and exit)
  textzoo migrate-config zoo_user_config.yaml -o user_config.yaml  (from the STM32 model zoo)
  textzoo -m model.embed_dim=32,64 preprocessing.tokenizer=word,bpe operation_mode=chain_tqeb
  textzoo sweep-status DIR                 (the jobs of a sweep; sweep-report DIR rebuilds its report)

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
    /// Run a sweep: one job per combination of the override lists (key=a,b,c, range(…),
    /// choice(…)), launched by hydra.launcher (local processes or a Slurm job array).
    #[arg(long, short = 'm')]
    pub multirun: bool,
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
    /// Turn a finished run (float + int8 model, evaluated: e.g. chain_tqe) into a model folder:
    /// both files and a README.md card with quality, fit and emulated speed per board, and
    /// samples — how the bundled pretrained_models/ are made.
    ModelCard(ModelCardArgs),
    /// Convert an STM32 model zoo configuration (text generation layout) into a textzoo
    /// file, printing every key mapped and every key dropped with the reason. Relative paths
    /// of the old file are read from its folder and written absolute.
    MigrateConfig(MigrateArgs),
    /// The state of each job of a sweep (and of its Slurm array).
    SweepStatus(SweepDirArgs),
    /// Rebuild a sweep's report (sweep.csv, sweep.html) from its directory, and end its MLflow
    /// parent run; for sweeps submitted with hydra.launcher.wait=false.
    SweepReport(SweepDirArgs),
    /// Run one job of a sweep (what the launchers start; not for direct use).
    #[command(hide = true)]
    SweepJob(SweepJobArgs),
    /// Export a model file for other runtimes and tools: ONNX (float from a float model, QDQ
    /// from an int8 model) and TFLite int8 (from an int8 model), the formats ST Edge AI,
    /// Netron, onnxruntime and LiteRT read.
    Export(ExportArgs),
    /// Inspect a model file (.safetensors, .onnx, .tflite): format and version, operators,
    /// tensor types, quantization, size, and warnings for the board; exit 0 (ok) or 1.
    Check(CheckArgs),
}

#[derive(Debug, clap::Args)]
pub struct ModelCardArgs {
    /// The run directory (holding saved_models/, quantized_models/, metrics.json).
    #[arg(value_name = "RUN_DIR")]
    pub run_dir: PathBuf,
    /// The model folder to write (its name is the model's name in the card).
    #[arg(long, short = 'o', value_name = "DIR")]
    pub output: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct MigrateArgs {
    /// The model zoo configuration (e.g. user_config.yaml of the zoo's text generation).
    #[arg(value_name = "OLD_YAML")]
    pub input: PathBuf,
    /// The textzoo configuration to write (refused if it exists, unless --force).
    #[arg(long, short = 'o', value_name = "NEW_YAML")]
    pub output: PathBuf,
    /// Overwrite the output file if it exists.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, clap::Args)]
pub struct SweepDirArgs {
    /// The sweep directory (hydra.sweep.dir) a --multirun printed.
    #[arg(value_name = "SWEEP_DIR")]
    pub dir: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct SweepJobArgs {
    #[arg(value_name = "SWEEP_DIR")]
    pub dir: PathBuf,
    /// The job number (hydra.job.num; the Slurm array index).
    #[arg(value_name = "NUM")]
    pub num: usize,
    /// Threads when the job's configuration leaves general.num_threads at 0 (default: the
    /// Slurm task's CPUs, else every core).
    #[arg(long)]
    pub threads: Option<usize>,
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
