//! textzoo's float training engine: layers with explicit forward and backward passes over flat
//! `f32` buffers (llm.c style), matrix products through `matrixmultiply`, no allocation inside
//! a training step once the buffers for a batch size exist (apart from the packing buffers
//! `matrixmultiply` allocates itself; see [`heap`]).
//!
//! Conventions: activations are row-major `[rows, features]`; `backward` functions accumulate
//! (`+=`) into gradient buffers, so shared inputs (residuals, tied weights) just add up.

pub mod attention;
pub mod distillation;
pub mod dropout;
pub mod embedding;
pub mod fastmath;
pub mod gelu;
#[cfg(test)]
pub mod gradcheck;
pub mod gru;
pub mod heap;
pub mod last_query;
pub mod layernorm;
pub mod linear;
pub mod loss;
pub mod lstm;
pub mod matmul;
pub mod optim;
pub mod params;
pub mod recurrent;

pub use params::{ParamEntry, ParamId, ParamStore};
