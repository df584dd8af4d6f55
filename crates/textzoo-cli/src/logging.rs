//! The run log: every event goes to `<run_dir>/textzoo.log` and, with its level, to the console.

use std::fs::File;
use std::path::Path;
use std::sync::Mutex;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::prelude::*;

/// The console's layer: events with their level on stderr, no target, no time.
fn console<S>() -> impl tracing_subscriber::Layer<S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time()
}

/// Runs `f` (on this thread) with console-only logging: what happens before the run directory,
/// and so the run log, exists (preflight's notes on the files it opens, such as a model file
/// without checksum, or `model-to-c`) still reaches the user.
pub fn console_only<T>(f: impl FnOnce() -> T) -> T {
    let subscriber = tracing_subscriber::registry()
        .with(LevelFilter::INFO)
        .with(console());
    tracing::subscriber::with_default(subscriber, f)
}

pub fn init(log_file: &Path) -> std::io::Result<()> {
    let file = File::create(log_file)?;
    let console = console();
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
