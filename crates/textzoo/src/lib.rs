//! textzoo: train, quantize to int8, evaluate, generate with, benchmark and deploy tiny
//! language models for STM32 microcontrollers and STM32MP boards.
//!
//! One module per stage of the workflow (DESIGN §3); the data flows one way:
//! config → data → model → quantized model → deploy/bench.

pub mod benchmarking;
pub mod config;
pub mod data;
pub mod deployment;
pub mod error;
pub mod evaluation;
pub mod interrupt;
pub mod models;
pub mod nn;
pub mod prediction;
pub mod quantization;
pub mod run;
pub mod tracking;
pub mod training;

pub use error::{Error, Result};
