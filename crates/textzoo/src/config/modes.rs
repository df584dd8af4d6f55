//! Operation modes as data: each mode is the list of services it runs, in order.

use super::schema::OperationMode;
use serde::Serialize;

/// One stage of the workflow. A chain is a list of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Service {
    Preprocessing,
    Training,
    Quantization,
    Evaluation,
    Prediction,
    Benchmarking,
    Deployment,
}

impl Service {
    pub fn name(self) -> &'static str {
        match self {
            Service::Preprocessing => "preprocessing",
            Service::Training => "training",
            Service::Quantization => "quantization",
            Service::Evaluation => "evaluation",
            Service::Prediction => "prediction",
            Service::Benchmarking => "benchmarking",
            Service::Deployment => "deployment",
        }
    }

    /// Whether the service reads the training corpus (so `dataset.training_path` must exist).
    pub fn reads_corpus(self) -> bool {
        matches!(
            self,
            Service::Preprocessing
                | Service::Training
                | Service::Quantization
                | Service::Evaluation
        )
    }
}

use OperationMode as M;
use Service as S;

/// The dispatch table: one row per mode.
pub const MODES: &[(OperationMode, &str, &[Service], &str)] = &[
    (
        M::Preprocessing,
        "preprocessing",
        &[S::Preprocessing],
        "build the tokenizer and token cache, print corpus statistics",
    ),
    (
        M::Training,
        "training",
        &[S::Training],
        "train a float model on the corpus",
    ),
    (
        M::Evaluation,
        "evaluation",
        &[S::Evaluation],
        "loss, perplexity and accuracy of general.model_path",
    ),
    (
        M::Quantization,
        "quantization",
        &[S::Quantization],
        "int8 post-training quantization of general.model_path",
    ),
    (
        M::Prediction,
        "prediction",
        &[S::Prediction],
        "generate text from prediction.prompt",
    ),
    (
        M::Benchmarking,
        "benchmarking",
        &[S::Benchmarking],
        "static analysis, host timing and emulated MCU run",
    ),
    (
        M::Deployment,
        "deployment",
        &[S::Deployment],
        "generate the C project for the board",
    ),
    (
        M::ChainTqe,
        "chain_tqe",
        &[S::Training, S::Quantization, S::Evaluation],
        "train, quantize, evaluate float and int8",
    ),
    (
        M::ChainTqeb,
        "chain_tqeb",
        &[S::Training, S::Quantization, S::Evaluation, S::Benchmarking],
        "chain_tqe, then benchmark",
    ),
    (
        M::ChainEqe,
        "chain_eqe",
        &[S::Evaluation, S::Quantization, S::Evaluation],
        "evaluate, quantize, evaluate again",
    ),
    (
        M::ChainEqeb,
        "chain_eqeb",
        &[
            S::Evaluation,
            S::Quantization,
            S::Evaluation,
            S::Benchmarking,
        ],
        "chain_eqe, then benchmark",
    ),
    (
        M::ChainQb,
        "chain_qb",
        &[S::Quantization, S::Benchmarking],
        "quantize, then benchmark",
    ),
    (
        M::ChainQd,
        "chain_qd",
        &[S::Quantization, S::Deployment],
        "quantize, then deploy",
    ),
];

fn row(
    mode: OperationMode,
) -> &'static (
    OperationMode,
    &'static str,
    &'static [Service],
    &'static str,
) {
    // Every variant has a row; the unit test `every_mode_has_one_row` keeps it so.
    MODES.iter().find(|r| r.0 == mode).unwrap_or(&MODES[0])
}

pub fn services(mode: OperationMode) -> &'static [Service] {
    row(mode).2
}

pub fn mode_name(mode: OperationMode) -> &'static str {
    row(mode).1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_mode_has_one_row_and_serializes_to_its_name() {
        for (mode, name, services, _) in MODES {
            assert_eq!(MODES.iter().filter(|r| r.0 == *mode).count(), 1);
            assert_eq!(serde_json::to_value(mode).unwrap(), serde_json::json!(name));
            assert!(!services.is_empty());
        }
        assert_eq!(MODES.len(), 13);
    }
}
