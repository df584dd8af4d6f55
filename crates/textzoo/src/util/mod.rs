//! Small helpers every stage may use: atomic file writes, file sizes, checksums of what is
//! written, the `metrics.json` object. They live at the bottom of the crate so that writing a file never means importing
//! the pipeline.

pub mod checksum;
mod files;
pub mod layout;
mod metrics;

pub use files::{file_size, link_atomic, write_atomic};
pub use metrics::Metrics;
