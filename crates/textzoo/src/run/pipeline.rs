//! Runs the services of an operation mode in order, handing artifacts from one to the next.

use super::metrics::Metrics;
use crate::config::{mode_name, services, Config, Service};
use crate::data::{self, PreparedData, TokenizerSource};
use crate::error::{Error, Result};
use std::path::PathBuf;

/// Files produced by earlier services of the chain, for the later ones.
#[derive(Debug, Default, Clone)]
pub struct Artifacts {
    pub float_model: Option<PathBuf>,
    pub int8_model: Option<PathBuf>,
}

/// Everything a service may read or add to.
pub struct Run {
    pub config: Config,
    pub dir: PathBuf,
    pub metrics: Metrics,
    pub artifacts: Artifacts,
    data: Option<PreparedData>,
}

/// Work done before the run directory exists: reading and checking every input, so that bad
/// input fails with exit code 2 and leaves nothing on disk.
pub struct Preflight {
    data: Option<PreparedData>,
}

impl Preflight {
    pub fn check(config: &Config) -> Result<Self> {
        let first = services(config.operation_mode).first().copied();
        let data = match first {
            Some(Service::Preprocessing | Service::Training) => {
                Some(data::prepare(config, TokenizerSource::FromConfig)?)
            }
            Some(service) => match &config.general.model_path {
                Some(path) => model_preflight(config, service, path)?,
                None => None,
            },
            None => None,
        };
        Ok(Self { data })
    }
}

/// Loads the model file once to refuse a bad one early; prepares the corpus with its tokenizer
/// when the first service reads the corpus.
fn model_preflight(
    config: &Config,
    service: Service,
    path: &std::path::Path,
) -> Result<Option<PreparedData>> {
    if matches!(service, Service::Deployment | Service::Benchmarking) {
        let loaded = crate::deployment::load_for_deployment(path)?;
        if service == Service::Deployment {
            crate::deployment::preflight(config, &loaded)?;
        }
        return Ok(None);
    }
    if crate::quantization::is_int8_file(path)? {
        if service == Service::Quantization {
            return Err(crate::quantization::refuse_int8_input(path));
        }
        // Evaluation and prediction run int8 models too.
        let int8 = crate::quantization::load_int8(path)?;
        if service == Service::Prediction {
            crate::prediction::check_prompt_for(&config.prediction, &int8.config, &int8.tokenizer)?;
        }
        if !service.reads_corpus() {
            return Ok(None);
        }
        return prepare_for_model(config, &int8.tokenizer, int8.config.seq_len).map(Some);
    }
    let float = crate::models::file::load(path)?;
    if service == Service::Prediction {
        crate::prediction::check_prompt(&config.prediction, &float.meta)?;
    }
    if !service.reads_corpus() {
        return Ok(None);
    }
    prepare_for_model(config, &float.meta.tokenizer, float.meta.config.seq_len).map(Some)
}

fn prepare_for_model(
    config: &Config,
    tokenizer: &data::TextTokenizer,
    seq_len: usize,
) -> Result<PreparedData> {
    let mut cfg = config.clone();
    cfg.model.seq_len = seq_len;
    data::prepare(&cfg, TokenizerSource::Given(tokenizer))
}

impl Run {
    pub fn new(config: Config, dir: PathBuf, preflight: Preflight) -> Self {
        Self {
            config,
            dir,
            metrics: Metrics::default(),
            artifacts: Artifacts::default(),
            data: preflight.data,
        }
    }

    /// The prepared corpus, reading it now if no earlier step did.
    pub fn data(&mut self) -> Result<&PreparedData> {
        if self.data.is_none() {
            self.data = Some(data::prepare(&self.config, TokenizerSource::FromConfig)?);
        }
        self.data
            .as_ref()
            .ok_or_else(|| Error::Internal("data not prepared".into()))
    }

    /// Prepares the corpus with a model file's own tokenizer (a model is always evaluated
    /// with its vocabulary), unless an earlier step already did.
    pub fn ensure_data(
        &mut self,
        tokenizer: &data::TextTokenizer,
        seq_len: usize,
    ) -> Result<&PreparedData> {
        if self.data.is_none() {
            self.data = Some(prepare_for_model(&self.config, tokenizer, seq_len)?);
        }
        self.data()
    }

    /// Runs every service of the configured mode.
    ///
    /// In a chain, a service that a later version will provide is skipped with a warning (and
    /// listed under `skipped` in `metrics.json`) so the rest of the chain still runs; a mode in
    /// which nothing could run fails with exit code 1.
    ///
    /// Afterwards, on success and on failure alike, the run is tracked (TensorBoard, plots,
    /// report, MLflow); tracking only ever warns, so it cannot change the outcome.
    pub fn execute(&mut self) -> Result<()> {
        let result = self.run_services();
        crate::tracking::finalize(self, result.as_ref().err());
        result
    }

    fn run_services(&mut self) -> Result<()> {
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
        for (i, &service) in list.iter().enumerate() {
            tracing::info!("[{}/{}] {}", i + 1, list.len(), service.name());
            let result = self.service(service);
            self.metrics.save(&self.dir)?;
            result?;
        }
        Ok(())
    }

    fn service(&mut self, service: Service) -> Result<()> {
        match service {
            Service::Preprocessing => data::service::run(self),
            Service::Training => crate::training::run(self),
            Service::Evaluation => crate::evaluation::run(self),
            Service::Prediction => crate::prediction::run(self),
            Service::Quantization => crate::quantization::run(self),
            Service::Deployment => crate::deployment::run(self),
            Service::Benchmarking => crate::benchmarking::run(self),
        }
    }
}
