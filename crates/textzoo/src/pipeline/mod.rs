//! The pipeline: the only module that knows the order of the stages. It resolves where the
//! model comes from, checks every input before the run directory exists ([`Preflight`]), then
//! runs the operation mode's stages in order ([`Pipeline::execute`]), handing each the typed
//! input it needs and the artifacts earlier stages produced, recording each stage's report in
//! `metrics.json` (rewritten after every stage, so a failure keeps what came before), and
//! finally handing the run to tracking. Nothing below imports it.

pub mod card;
mod dir;
mod source;
pub mod threads;

pub use dir::create_run_dir;
pub use source::Models;

use crate::artifact::FloatFile;
use crate::benchmarking::{self, BenchInput};
use crate::config::{mode_name, services, Config, Service};
use crate::config::{Board, ExportFormat};
use crate::data::{self, PreparedData, Target, TokenizerSource};
use crate::deployment::{self, DeployInput};
use crate::error::{Error, Result};
use crate::evaluation;
use crate::export::stedgeai::{self, Action, StEdgeAiInput};
use crate::export::{self, ExportInput};
use crate::lm::{Int8Lm, LanguageModel};
use crate::prediction;
use crate::quantization::{self, QuantizeInput};
use crate::tracking::{self, RunFacts};
use crate::training::{self, Teacher, TrainInput};
use crate::util::layout::{C_PROJECT_DIR, GENERATED_FILE, INT8_MODEL_FILE};
use crate::util::Metrics;
use std::path::PathBuf;

/// Work done before the run directory exists: opening the model, reading the corpus, checking
/// the prompt and the board, so that bad input fails with exit code 2 and leaves nothing on
/// disk.
pub struct Preflight {
    data: Option<PreparedData>,
    models: Models,
    teacher: Option<Teacher>,
    /// The checkpoint training resumes from (`training.resume_training_from`).
    resume: Option<FloatFile>,
}

impl Preflight {
    pub fn check(config: &Config) -> Result<Self> {
        let list = services(config.operation_mode);
        let models = Models::resolve(config)?;
        let resume = match &config.training.resume_training_from {
            Some(path) if list.contains(&Service::Training) => {
                Some(training::open_checkpoint(path)?)
            }
            _ => None,
        };
        let data = match (list.first(), &resume) {
            // A resumed run reads the corpus with the checkpoint's own tokenizer and window, so
            // the token ids it continues on are the ones it was trained on.
            (Some(Service::Training), Some(r)) => Some(prepare_for_model(
                config,
                &r.meta.tokenizer,
                r.meta.config.seq_len,
            )?),
            (Some(Service::Preprocessing | Service::Training), _) => {
                Some(data::prepare(config, TokenizerSource::FromConfig)?)
            }
            _ if list.iter().any(|s| s.reads_corpus()) => match models.tokenizer_and_seq_len() {
                Some((tokenizer, seq_len)) => Some(prepare_for_model(config, tokenizer, seq_len)?),
                None => None,
            },
            _ => None,
        };
        if list.first() == Some(&Service::Prediction) {
            if let Some((tokenizer, _)) = models.tokenizer_and_seq_len() {
                let model = match (&models.int8, &models.float) {
                    (Some(q), _) => &q.model.config,
                    (None, Some(f)) => &f.meta.config,
                    (None, None) => return Err(Error::Internal("no model resolved".into())),
                };
                crate::lm::check_prediction(&config.prediction, model, tokenizer)?;
            }
        }
        // A chain that quantizes first (chain_qd) has only the float model yet: its window is
        // the int8 model's, so the n-gram bound is checked here too.
        if list.contains(&Service::Deployment) || list.contains(&Service::Prediction) {
            if let Some((_, seq_len)) = models.tokenizer_and_seq_len() {
                crate::lm::check_ngram_size(config.prediction.no_repeat_ngram_size, seq_len)?;
            }
        }
        if list.contains(&Service::Benchmarking) {
            if let Some(log) = &config.benchmarking.board_log {
                benchmarking::board_log::read(log)?;
            }
        }
        let hands_off =
            list.contains(&Service::Benchmarking) || list.contains(&Service::Deployment);
        if let (true, Some(exe)) = (hands_off, config.tools.stedgeai_path()) {
            stedgeai::check_exe(exe)?;
            for board in [config.deployment.hardware_setup.board, bench_board(config)] {
                if stedgeai::target(board).is_none() {
                    return Err(Error::Usage(
                        "tools.stedgeai.path_to_stedgeai is set but the board is `host`, which ST Edge AI does not target; choose an STM32 board or leave the key empty".into(),
                    ));
                }
            }
        }
        if list.contains(&Service::Deployment) {
            match (&models.int8, &models.float) {
                (Some(int8), _) => deployment::check(&deploy_input(config, int8, PathBuf::new()))?,
                (None, Some(float)) => check_quantized_fit(config, float)?,
                (None, None) => {}
            }
            if let Some(dir) = &config.deployment.c_project_path {
                deployment::project::check_target(dir)?;
            }
        }
        let teacher = match (list.contains(&Service::Training), &data) {
            (true, Some(data)) => {
                let student = config.model.model_config(data.tokenizer.vocab_size());
                Teacher::open(&config.training.distillation, &data.tokenizer, &student)?
            }
            _ => None,
        };
        Ok(Self {
            data,
            models,
            teacher,
            resume,
        })
    }
}

/// A chain that quantizes and then deploys (`chain_qd`) has its int8 model only after
/// quantization, inside the run. The int8 model's sizes (weights, arena, state) do not depend
/// on the calibration data, so quantizing once on a short window here gives the footprint the
/// run's own int8 model will have, and a model too large for the board is refused before the
/// run directory exists, like every other bad input.
fn check_quantized_fit(config: &Config, float: &FloatFile) -> Result<()> {
    let cfg = &float.meta.config;
    let window: Vec<u32> = (0..cfg.seq_len.min(8))
        .map(|i| (i % cfg.vocab_size) as u32)
        .collect();
    let settings = quantization::Settings::from_config(&config.quantization);
    let probe = crate::artifact::Int8File {
        path: float.path.clone(),
        model: quantization::quantize(float.model.as_ref(), &[window], &settings)?,
        tokenizer: float.meta.tokenizer.clone(),
        params: None,
    };
    deployment::check(&deploy_input(config, &probe, PathBuf::new()))
}

/// The corpus read with a model file's own tokenizer and window (a model is always evaluated
/// with its vocabulary).
fn prepare_for_model(
    config: &Config,
    tokenizer: &data::TextTokenizer,
    seq_len: usize,
) -> Result<PreparedData> {
    let mut cfg = config.clone();
    cfg.model.seq_len = seq_len;
    data::prepare(&cfg, TokenizerSource::Given(tokenizer))
}

/// The board benchmarking analyses against.
fn bench_board(config: &Config) -> Board {
    (config.benchmarking.board).unwrap_or(config.deployment.hardware_setup.board)
}

fn deploy_input<'a>(
    config: &'a Config,
    int8: &'a crate::artifact::Int8File,
    dir: PathBuf,
) -> DeployInput<'a> {
    DeployInput {
        int8,
        board: config.deployment.hardware_setup.board,
        prediction: &config.prediction,
        seed: config.prediction_seed(),
        dir,
    }
}

/// One run: its configuration, directory, metrics, and what its stages have produced.
pub struct Pipeline {
    config: Config,
    dir: PathBuf,
    metrics: Metrics,
    data: Option<PreparedData>,
    models: Models,
    /// The distillation teacher, until training takes it.
    teacher: Option<Teacher>,
    resume: Option<FloatFile>,
}

impl Pipeline {
    pub fn new(config: Config, dir: PathBuf, preflight: Preflight) -> Self {
        Self {
            config,
            dir,
            metrics: Metrics::default(),
            data: preflight.data,
            models: preflight.models,
            teacher: preflight.teacher,
            resume: preflight.resume,
        }
    }

    /// Runs every stage of the configured mode, then tracks the run (TensorBoard, plots,
    /// report, MLflow) on success and on failure alike; tracking only ever warns, so it cannot
    /// change the outcome.
    pub fn execute(&mut self) -> Result<()> {
        let result = self.run_stages();
        let facts = RunFacts {
            config: &self.config,
            dir: &self.dir,
            metrics: &self.metrics,
            model_path: self
                .models
                .latest_path()
                .or(self.config.general.model_path.as_deref()),
        };
        tracking::finalize(&facts, result.as_ref().err());
        result
    }

    fn run_stages(&mut self) -> Result<()> {
        let mode = self.config.operation_mode;
        let list = services(mode);
        let names: Vec<&str> = list.iter().map(|s| s.name()).collect();
        tracing::info!(
            "operation_mode={} runs: {}",
            mode_name(mode),
            names.join(" → ")
        );
        self.metrics.set("run", "operation_mode", mode_name(mode));
        self.metrics.set("run", "services", names.clone());
        if let Some(entry) = &self.models.pretrained {
            let path = self.models.latest_path().unwrap_or(&entry.dir).display();
            tracing::info!(
                "starting from the bundled pretrained model {} ({path})",
                entry.name
            );
            self.metrics
                .set("run", "pretrained_model", entry.name.clone());
            self.metrics.set("run", "model_path", path.to_string());
        }
        for (i, &service) in list.iter().enumerate() {
            tracing::info!("[{}/{}] {}", i + 1, list.len(), service.name());
            let result = self.stage(service);
            self.metrics.save(&self.dir)?;
            result?;
        }
        Ok(())
    }

    /// The corpus: prepared in preflight, else now with the run's model's tokenizer, else
    /// with the configured one.
    fn data(&mut self) -> Result<&PreparedData> {
        if self.data.is_none() {
            self.data = Some(match self.models.tokenizer_and_seq_len() {
                Some((tokenizer, seq_len)) => prepare_for_model(&self.config, tokenizer, seq_len)?,
                None => data::prepare(&self.config, TokenizerSource::FromConfig)?,
            });
        }
        self.data
            .as_ref()
            .ok_or_else(|| Error::Internal("data not prepared".into()))
    }

    fn stage(&mut self, service: Service) -> Result<()> {
        match service {
            Service::Preprocessing => self.preprocess(),
            Service::Training => self.train(),
            Service::Quantization => self.quantize(),
            Service::Evaluation => self.evaluate(),
            Service::Prediction => self.predict(),
            Service::Deployment => self.deploy(),
            Service::Benchmarking => self.benchmark(),
        }
    }

    fn preprocess(&mut self) -> Result<()> {
        self.data()?;
        let Pipeline {
            config,
            dir,
            metrics,
            data,
            ..
        } = self;
        let data = data.as_ref().ok_or_else(not_prepared)?;
        let target = Target::of(config.model.name);
        data::service::preprocess(data, dir, config.model.seq_len, target)?.record(metrics);
        Ok(())
    }

    fn train(&mut self) -> Result<()> {
        self.data()?;
        let data = self.data.as_ref().ok_or_else(not_prepared)?;
        let report = training::train(TrainInput {
            config: &self.config,
            data,
            dir: &self.dir,
            teacher: self.teacher.take(),
            resume: self.resume.take(),
        })?;
        report.record(&mut self.metrics);
        self.models.float = Some(report.float);
        Ok(())
    }

    fn quantize(&mut self) -> Result<()> {
        self.data()?;
        let float = self.models.float.as_ref().ok_or_else(|| missing("float"))?;
        let data = self.data.as_ref().ok_or_else(not_prepared)?;
        let report = quantization::quantize_file(&QuantizeInput {
            float,
            data,
            dataset: &self.config.dataset,
            settings: &self.config.quantization,
            output: self.dir.join(INT8_MODEL_FILE),
        })?;
        report.record(&mut self.metrics);
        let q = &self.config.quantization;
        if !q.export.is_empty() {
            let exported = export::export(&ExportInput {
                float: Some(float),
                int8: Some(&report.int8),
                formats: &q.export,
                include_embedding: q.include_embedding,
                dir: self.dir.join(INT8_MODEL_FILE).with_file_name(""),
            })?;
            exported.record(&mut self.metrics);
        }
        self.models.int8 = Some(report.int8);
        Ok(())
    }

    fn evaluate(&mut self) -> Result<()> {
        self.data()?;
        let data = self.data.as_ref().ok_or_else(not_prepared)?;
        let report = evaluation::evaluate_models(
            self.models.float.as_mut(),
            self.models.int8.as_ref(),
            data,
            &self.config.evaluation,
        );
        report.record(&mut self.metrics);
        let table = report.render();
        if !table.is_empty() {
            println!("{table}");
        }
        Ok(())
    }

    /// Generates with the run's int8 model, else its float model.
    fn predict(&mut self) -> Result<()> {
        let seed = self.config.prediction_seed();
        let output = self.dir.join(GENERATED_FILE);
        let settings = &self.config.prediction;
        let report = match (&self.models.int8, &mut self.models.float) {
            (Some(q), _) => {
                tracing::info!("generating with the int8 model {}", q.path.display());
                let mut lm = Int8Lm::new(q.model.clone());
                prediction::predict(&mut lm, &q.tokenizer, settings, seed, &q.path, &output)?
            }
            (None, Some(f)) => {
                let lm: &mut dyn LanguageModel = &mut f.model;
                let tokenizer = &f.meta.tokenizer;
                prediction::predict(lm, tokenizer, settings, seed, &f.path, &output)?
            }
            (None, None) => return Err(missing("float or int8")),
        };
        report.record(&mut self.metrics);
        Ok(())
    }

    fn deploy(&mut self) -> Result<()> {
        let int8 = self.models.int8.as_ref().ok_or_else(|| missing("int8"))?;
        let dir = (self.config.deployment.c_project_path.clone())
            .unwrap_or_else(|| self.dir.join(C_PROJECT_DIR));
        let report = deployment::deploy(&deploy_input(&self.config, int8, dir))?;
        report.record(&mut self.metrics);
        let board = self.config.deployment.hardware_setup.board;
        self.stedgeai(Action::Generate, board)
    }

    /// The ST Edge AI hand-off, when `tools.stedgeai.path_to_stedgeai` is set: the int8 model
    /// exported to `RUN/stedgeai/`, `stedgeai analyze|generate` on it, its figures into
    /// `metrics.json` (`stedgeai`) and `RUN/stedgeai/<action>.json`.
    fn stedgeai(&mut self, action: Action, board: Board) -> Result<()> {
        let Some(exe) = self.config.tools.stedgeai_path() else {
            return Ok(());
        };
        let int8 = self.models.int8.as_ref().ok_or_else(|| missing("int8"))?;
        let out = self.dir.join("stedgeai");
        let q = &self.config.quantization;
        let exported = export::export(&ExportInput {
            float: None,
            int8: Some(int8),
            formats: &[ExportFormat::Tflite],
            include_embedding: q.include_embedding,
            dir: out.clone(),
        })?;
        let model = exported
            .files
            .iter()
            .find(|f| f.kind.starts_with("tflite"))
            .map(|f| f.path.clone())
            .ok_or_else(|| Error::Internal("no .tflite exported for ST Edge AI".into()))?;
        let report = stedgeai::run(&StEdgeAiInput {
            exe,
            model: &model,
            board,
            optimization: &self.config.tools.stedgeai.optimization,
            action,
            output: out.join(format!("{action:?}").to_lowercase()),
        })?;
        report.record(&mut self.metrics);
        println!("{}", report.render());
        let json =
            serde_json::to_vec_pretty(&report).map_err(|e| Error::Internal(e.to_string()))?;
        crate::util::write_atomic(&out.join(format!("{action:?}.json").to_lowercase()), &json)
    }

    fn benchmark(&mut self) -> Result<()> {
        let int8 = self.models.int8.as_ref().ok_or_else(|| missing("int8"))?;
        let config = &self.config;
        let board = bench_board(config);
        let report = benchmarking::benchmark(&BenchInput {
            int8,
            board,
            settings: &config.benchmarking,
            prediction: &config.prediction,
            dir: &self.dir,
        })?;
        report.record(&mut self.metrics);
        self.stedgeai(Action::Analyze, board)
    }
}

/// A stage found no model of the kind it needs: preflight guarantees one, so this is a bug.
fn missing(kind: &str) -> Error {
    Error::Internal(format!("no {kind} model reached this stage"))
}

fn not_prepared() -> Error {
    Error::Internal("data not prepared".into())
}
