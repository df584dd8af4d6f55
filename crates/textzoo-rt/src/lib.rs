//! textzoo-rt: the int8 integer inference runtime, twin of the generated C runtime.
//!
//! - `quant`: requantization arithmetic (TFLite fixed-point multipliers);
//! - `kernels`: int8 fully connected, layer norm, attention with a softmax table, lookup-table
//!   nonlinearities, residual adds;
//! - `plan`: the memory planner (one static activation arena from tensor lifetimes);
//! - `model_config`: a model's kind and sizes (the `model_config` of every model file);
//! - `model`: the int8 model structs and their `.safetensors` file;
//! - `transformer`: `tiny_gpt` (with its KV cache) and `tiny_bert_generator`;
//! - `rnn`: `gru` and `lstm` (int16 state, sigmoid/tanh tables);
//! - `rng`: PCG32, shared bit for bit with the device;
//! - `sample`: greedy / top-k / top-p sampling with a libm-free exp, twin of `tz_sample.c`.

#[cfg(target_arch = "x86_64")]
mod avx2;
pub mod kernels;
pub mod model;
pub mod model_config;
pub mod plan;
pub mod quant;
pub mod rng;
pub mod rnn;
pub mod sample;
pub mod transformer;

pub use model::Int8Model;
pub use model_config::{Kind, ModelConfig};
pub use rng::Rng;
