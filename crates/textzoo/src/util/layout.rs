//! The fixed names of a run directory's files, relative to the run directory. Users, tests and
//! tracking find a run's results by these names, so they are declared once, here.

pub const CONFIG_FILE: &str = ".hydra/config.yaml";
pub const METRICS_FILE: &str = "metrics.json";
pub const TOKENIZER_FILE: &str = "tokenizer.json";
pub const TOKEN_CACHE_DIR: &str = "data";
pub const TRAINING_LOG: &str = "training_log.csv";
/// The float model (the best or final weights).
pub const FLOAT_MODEL_FILE: &str = "saved_models/model.safetensors";
/// The checkpoint training resumes from.
pub const CHECKPOINT_FILE: &str = "saved_models/checkpoints/last.safetensors";
pub const INT8_MODEL_FILE: &str = "quantized_models/model_int8.safetensors";
pub const GENERATED_FILE: &str = "generated.txt";
pub const BENCHMARK_FILE: &str = "benchmark.json";
/// The generated projects benchmarking builds and times.
pub const BENCHMARK_DIR: &str = "benchmark";
/// A deployment's C project, unless `deployment.c_project_path` says otherwise.
pub const C_PROJECT_DIR: &str = "c_project";
pub const REPORT_FILE: &str = "report.html";

// A sweep directory (`hydra.sweep.dir`): the jobs' run directories beside these.
/// What the sweep runs: the job list, the binary, the launcher; Slurm tasks read it.
pub const SWEEP_MANIFEST: &str = ".sweep/manifest.json";
/// One `<num>.json` per job: its state, exit code and run directory.
pub const SWEEP_STATUS_DIR: &str = ".sweep/status";
/// One `<num>.log` per job: the job's console output.
pub const SWEEP_LOG_DIR: &str = ".sweep/logs";
/// The Slurm batch script of the job array.
pub const SWEEP_SBATCH_FILE: &str = ".sweep/array.sbatch";
pub const SWEEP_CSV: &str = "sweep.csv";
pub const SWEEP_HTML: &str = "sweep.html";
