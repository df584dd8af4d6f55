//! textzoo: train, quantize to int8, evaluate, generate with, benchmark and deploy tiny
//! language models for STM32 microcontrollers and STM32MP boards.
//!
//! Layers, bottom to top (a module imports only from its own layer or below):
//! - `config`, `error`, `util` (atomic writes, run-directory names, `metrics.json`), and the
//!   `textzoo-rt` crate (the int8 runtime and the plain model types);
//! - `data`, `nn`, `models`, `artifact` (the model files), `lm` (one interface for next-token
//!   logits, float or int8);
//! - the stages, one folder each, each a function from a typed input to a typed report:
//!   `training`, `quantization`, `evaluation`, `prediction`, `deployment`, `benchmarking`,
//!   `tracking`; and `migrate` (`textzoo migrate-config`: model zoo files to textzoo's);
//! - `pipeline`: resolves where the model comes from, runs a mode's stages in order, hands
//!   artifacts on and writes `metrics.json`. Nothing imports it.
//! - `sweep`: `--multirun` (plans jobs, launches them locally or on Slurm as runs of the
//!   binary, reports on them). It does not import the pipeline, and nothing imports it.
//!
//! `tests/layers.rs` checks these rules on the source tree.

pub mod artifact;
pub mod benchmarking;
pub mod config;
pub mod data;
pub mod deployment;
pub mod error;
pub mod evaluation;
pub mod export;
pub mod interrupt;
pub mod lm;
pub mod migrate;
pub mod models;
pub mod nn;
pub mod pipeline;
pub mod prediction;
pub mod quantization;
pub mod sweep;
pub mod tracking;
pub mod training;
pub mod util;

pub use error::{Error, Result};
