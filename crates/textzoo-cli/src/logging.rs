//! The run log: every event goes to `<run_dir>/textzoo.log` and, with its level, to the console.

use std::fs::File;
use std::path::Path;
use std::sync::Mutex;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::prelude::*;

pub fn init(log_file: &Path) -> std::io::Result<()> {
    let file = File::create(log_file)?;
    let console = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time();
    let to_file = tracing_subscriber::fmt::layer()
        .with_writer(Mutex::new(file))
        .with_ansi(false)
        .with_target(false);
    // A second init in one process (only in tests) keeps the first subscriber.
    let _ = tracing_subscriber::registry()
        .with(LevelFilter::INFO)
        .with(console)
        .with(to_file)
        .try_init();
    Ok(())
}
