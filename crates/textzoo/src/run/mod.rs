//! A run: its directory, its metrics, and the chain of services that fills them.

mod dir;
mod files;
mod metrics;
mod pipeline;
pub mod threads;

pub use dir::create_run_dir;
pub use files::write_atomic;
pub use metrics::Metrics;
pub use pipeline::{Artifacts, Preflight, Run};
