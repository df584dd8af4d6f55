//! Where a run's model comes from, resolved once for the whole run.
//!
//! A mode that trains makes its own model. Every other mode starts from the model file in
//! `general.model_path`, which is opened here — before the run directory exists, so a missing,
//! damaged or wrong-kind file is an exit-2 error that leaves nothing behind — and handed from
//! stage to stage in memory, so no stage reads it again. The models the chain produces
//! (training's float model, quantization's int8 model) join it as the stages run.
//!
//! Without `general.model_path`, the bundled model zoo (`pretrained_models/`, see
//! [`crate::artifact::zoo`]) supplies the model `general.pretrained` names for `model.name`:
//! its int8 file for a stage that needs one, else its float file.

use crate::artifact::zoo::{self, ZooEntry};
use crate::artifact::{FloatFile, Int8File, ModelFile};
use crate::config::{mode_name, services, Config, Service};
use crate::data::TextTokenizer;
use crate::error::{Error, Result};
use std::path::Path;

/// The models a run holds: at most one float and one int8 model, each loaded once.
#[derive(Default)]
pub struct Models {
    pub float: Option<FloatFile>,
    pub int8: Option<Int8File>,
    /// The bundled model the run started from, when it came from the zoo.
    pub pretrained: Option<ZooEntry>,
}

/// Which kind of model a stage starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Needs {
    Float,
    Int8,
    Either,
}

fn needs(service: Service) -> Option<Needs> {
    match service {
        Service::Preprocessing | Service::Training => None,
        Service::Quantization => Some(Needs::Float),
        Service::Evaluation | Service::Prediction => Some(Needs::Either),
        Service::Deployment | Service::Benchmarking => Some(Needs::Int8),
    }
}

/// The chain that starts from a float model and quantizes it first, for a stage that needs an
/// int8 model.
fn quantizing_chain(service: Service) -> &'static str {
    match service {
        Service::Benchmarking => "chain_qb",
        _ => "chain_qd",
    }
}

impl Models {
    /// The model the configured mode starts from: none for the modes that train, else
    /// `general.model_path`, opened and checked against what the first stage needs.
    pub fn resolve(config: &Config) -> Result<Models> {
        let mode = config.operation_mode;
        let Some(first) = services(mode).first().copied() else {
            return Ok(Models::default());
        };
        let Some(needs) = needs(first) else {
            return Ok(Models::default());
        };
        let (path, pretrained) = match (&config.general.model_path, &config.general.pretrained) {
            (Some(path), _) => (path.clone(), None),
            (None, None) => return Err(Error::Usage(missing(mode_name(mode), first, needs))),
            (None, Some(choice)) => {
                let entry = bundled(config, choice)?;
                let path = match needs {
                    Needs::Int8 => entry.int8_path(),
                    Needs::Float | Needs::Either => entry.float_path(),
                };
                (path, Some(entry))
            }
        };
        let path = &path;
        let mut models = Models::open(path, needs, first)?;
        models.pretrained = pretrained;
        Ok(models)
    }

    /// Opens `path` and checks it is the kind `first` needs.
    fn open(path: &Path, needs: Needs, first: Service) -> Result<Models> {
        match (ModelFile::open(path)?, needs) {
            (ModelFile::Int8(_), Needs::Float) => Err(Error::input(
                path,
                "is already an int8 model and cannot be quantized again; give the float model (saved_models/model.safetensors)",
            )),
            (ModelFile::Float(_), Needs::Int8) => Err(Error::input(
                path,
                format!(
                    "is a float model; {} needs an int8 model (use operation_mode={} to quantize and {} in one run)",
                    first.name(),
                    quantizing_chain(first),
                    if first == Service::Benchmarking { "benchmark" } else { "deploy" },
                ),
            )),
            (ModelFile::Float(f), _) => Ok(Models {
                float: Some(f),
                ..Models::default()
            }),
            (ModelFile::Int8(q), _) => Ok(Models {
                int8: Some(q),
                ..Models::default()
            }),
        }
    }

    /// The model a run ended with: its int8 model, else its float model.
    pub fn latest_path(&self) -> Option<&Path> {
        match (&self.int8, &self.float) {
            (Some(q), _) => Some(&q.path),
            (None, Some(f)) => Some(&f.path),
            (None, None) => None,
        }
    }

    /// The vocabulary and window length the corpus must be read with for these models.
    pub fn tokenizer_and_seq_len(&self) -> Option<(&TextTokenizer, usize)> {
        match (&self.float, &self.int8) {
            (Some(f), _) => Some((&f.meta.tokenizer, f.meta.config.seq_len)),
            (None, Some(q)) => Some((&q.tokenizer, q.model.config.seq_len)),
            (None, None) => None,
        }
    }
}

/// The zoo entry `general.pretrained` names for `model.name`.
fn bundled(config: &Config, choice: &str) -> Result<ZooEntry> {
    let Some(root) = zoo::locate() else {
        return Err(Error::Usage(format!(
            "operation_mode={} starts from a model and none was given: set general.model_path to a model file (no bundled pretrained_models/ folder was found in ${}, ./pretrained_models or the source tree)",
            mode_name(config.operation_mode),
            zoo::ZOO_ENV
        )));
    };
    zoo::pick(&root, config.model.name.name(), choice)
}

/// The one message for a mode that starts from a model when none is given.
fn missing(mode: &str, first: Service, needs: Needs) -> String {
    let what = match needs {
        Needs::Float => "a float model: set general.model_path to one (a training run's saved_models/model.safetensors)".to_string(),
        Needs::Int8 => format!(
            "an int8 model: set general.model_path to one (a quantization run's quantized_models/model_int8.safetensors), or to a float model with operation_mode={} to quantize it first",
            quantizing_chain(first)
        ),
        Needs::Either => "a model: set general.model_path to a float model (saved_models/model.safetensors) or an int8 model (quantized_models/model_int8.safetensors)".to_string(),
    };
    format!("operation_mode={mode} starts from {what}, or set general.pretrained to a bundled model; the modes that train (training, chain_tqe, chain_tqeb) make their own")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::OperationMode;

    fn config(mode: OperationMode, model_path: Option<&Path>) -> Config {
        let mut c = Config {
            operation_mode: mode,
            ..Config::default()
        };
        c.general.model_path = model_path.map(Path::to_path_buf);
        c.general.pretrained = None;
        c
    }

    #[test]
    fn modes_that_train_need_no_model_the_others_say_which_they_need() {
        for mode in [OperationMode::Training, OperationMode::ChainTqe] {
            let models = Models::resolve(&config(mode, None)).unwrap();
            assert!(models.float.is_none() && models.int8.is_none());
        }
        let cases = [
            (OperationMode::Benchmarking, "int8 model", "chain_qb"),
            (OperationMode::Deployment, "int8 model", "chain_qd"),
            (OperationMode::Quantization, "float model", "saved_models"),
            (OperationMode::ChainQb, "float model", "saved_models"),
            (OperationMode::Evaluation, "a model", "model_int8"),
            (OperationMode::Prediction, "a model", "model_int8"),
        ];
        for (mode, kind, hint) in cases {
            let err = Models::resolve(&config(mode, None)).err().unwrap();
            let msg = err.to_string();
            assert_eq!(err.exit_code(), 2, "{msg}");
            assert!(msg.contains("general.model_path"), "{msg}");
            assert!(msg.contains(kind) && msg.contains(hint), "{mode:?}: {msg}");
            assert!(!msg.contains("deployment needs"), "{msg}");
        }
    }

    #[test]
    fn a_missing_model_file_is_an_input_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("none.safetensors");
        let err = Models::resolve(&config(OperationMode::Evaluation, Some(&path)))
            .err()
            .unwrap();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("none.safetensors"), "{err}");
    }
}
