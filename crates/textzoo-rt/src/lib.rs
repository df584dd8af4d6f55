//! textzoo-rt: the int8 integer inference runtime, twin of the generated C runtime.
//!
//! For now it holds what host and device must share bit for bit: the random generator.
//! The integer kernels, model format, KV cache and memory planner arrive with quantization.

pub mod rng;

pub use rng::Rng;
