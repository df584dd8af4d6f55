//! Deployment: the int8 model as a C project for a board (DESIGN §7).
//!
//! The project is the model (`c_model`), its vocabulary (`c_tokenizer`), the C twin of
//! `textzoo-rt` and the example application (static sources in `c/`), and the board's platform
//! layer, startup code, linker script and Makefile (`boards`). Nothing is written before the
//! memory-fit check (`fit`) has passed.

pub mod boards;
pub mod c_model;
#[cfg(test)]
mod c_runtime_tests;
#[cfg(test)]
mod c_text_tests;
pub mod c_tokenizer;
pub mod fit;
pub mod project;

use crate::config::{Board, Config};
use crate::error::{Error, Result};
use crate::quantization::{load_int8, LoadedInt8};
use crate::run::Run;
use fit::{kib, Fit, Footprint};
use std::path::{Path, PathBuf};

/// The footprint of `loaded` against `board`, refused when it does not fit.
pub fn check_fit(loaded: &LoadedInt8, board: Board, max_tokens: usize) -> Result<Fit> {
    let profile = boards::profile(board);
    let footprint = Footprint::of(
        &loaded.model,
        &loaded.tokenizer,
        profile.stack_bytes,
        max_tokens,
    );
    let fit = Fit::new(footprint, &profile);
    fit.require()?;
    Ok(fit)
}

/// The int8 model the deployment reads: the chain's, else `general.model_path`.
pub fn int8_model_path(run: &Run) -> Result<PathBuf> {
    run.artifacts
        .int8_model
        .clone()
        .or_else(|| run.config.general.model_path.clone())
        .ok_or_else(|| {
            Error::Usage(
                "deployment needs an int8 model: set general.model_path to an int8 model file, \
                 or use operation_mode=chain_qd to quantize a float model first"
                    .into(),
            )
        })
}

/// Loads `path` as the int8 model to deploy; a float model gets a hint instead.
pub fn load_for_deployment(path: &Path) -> Result<LoadedInt8> {
    if !crate::quantization::is_int8_file(path)? {
        return Err(Error::input(
            path,
            "is a float model; deployment needs an int8 model (use operation_mode=chain_qd to \
             quantize and deploy in one run)",
        ));
    }
    load_int8(path)
}

/// Refuses, before the run directory exists, a deployment that cannot succeed.
pub fn preflight(config: &Config, loaded: &LoadedInt8) -> Result<()> {
    check_fit(
        loaded,
        config.deployment.hardware_setup.board,
        config.prediction.max_tokens,
    )?;
    crate::prediction::check_prompt_for(&config.prediction, &loaded.config, &loaded.tokenizer)
}

/// Where the project goes: `deployment.c_project_path`, else `<run_dir>/c_project`.
pub fn project_dir(run: &Run) -> PathBuf {
    run.config
        .deployment
        .c_project_path
        .clone()
        .unwrap_or_else(|| run.dir.join("c_project"))
}

/// The `deployment` service.
pub fn run(run: &mut Run) -> Result<()> {
    let path = int8_model_path(run)?;
    let loaded = load_for_deployment(&path)?;
    let board = run.config.deployment.hardware_setup.board;
    let fit = check_fit(&loaded, board, run.config.prediction.max_tokens)?;
    let dir = project_dir(run);
    let seed = run
        .config
        .prediction
        .seed
        .unwrap_or(run.config.general.global_seed);
    let files = project::project_files(&loaded, board, &run.config.prediction, seed)?;
    project::write(&dir, &files)?;
    report(run, &fit, &dir, &path);
    Ok(())
}

fn report(run: &mut Run, fit: &Fit, dir: &Path, model: &Path) {
    let margin = |m: Option<i64>| m.map_or("no limit".to_string(), |m| format!("{m} B free"));
    tracing::info!(
        "C project for {} written to {}\n  flash {} ({}), RAM {} ({})\n  build and run: make -C {} run-host | run-qemu | board",
        fit.board,
        dir.display(),
        kib(fit.flash.needed),
        margin(fit.flash.margin()),
        kib(fit.ram.needed),
        margin(fit.ram.margin()),
        dir.display()
    );
    let m = &mut run.metrics;
    m.set("deployment", "board", fit.board.clone());
    m.set("deployment", "model", model.display().to_string());
    m.set("deployment", "c_project", dir.display().to_string());
    m.set("deployment", "flash_bytes", fit.flash.needed);
    m.set("deployment", "ram_bytes", fit.ram.needed);
    m.set("deployment", "weight_bytes", fit.footprint.weight_bytes);
    m.set("deployment", "arena_bytes", fit.footprint.arena_bytes);
    if let Some(margin) = fit.flash.margin() {
        m.set("deployment", "flash_margin_bytes", margin);
    }
    if let Some(margin) = fit.ram.margin() {
        m.set("deployment", "ram_margin_bytes", margin);
    }
}
