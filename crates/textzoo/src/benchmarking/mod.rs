//! Benchmarking: one report with three views of an int8 model on a board —
//! static analysis (`analysis`), host timing of `textzoo-rt` and of the generated C (`host`,
//! `native`), and the emulated MCU run with exact instruction counts (`emulated`).

pub mod analysis;
pub mod board_log;
pub mod emulated;
pub mod host;
pub mod native;
pub mod report;

use crate::artifact::Int8File;
use crate::config::{Benchmarking, Board, Prediction, TokenizerKind};
use crate::data::PAD_ID;
use crate::deployment::{self, boards, project};
use crate::error::Result;
use crate::util::layout::{BENCHMARK_DIR, BENCHMARK_FILE};
use crate::util::{write_atomic, Metrics};
use report::Report;
use std::path::{Path, PathBuf};

/// What benchmarking reads: the int8 model, the board, the settings, and the run directory
/// it writes `benchmark.json` and the generated projects (`benchmark/`) into.
pub struct BenchInput<'a> {
    pub int8: &'a Int8File,
    pub board: Board,
    pub settings: &'a Benchmarking,
    /// The prompt the workload starts from (`prediction.prompt`) and the app's settings.
    pub prediction: &'a Prediction,
    pub dir: &'a Path,
}

/// The prompt ids and the number of timed decoding steps. `tiny_gpt` steps stay inside the
/// window, so each is the KV-cache step a device runs (past the window the exact
/// sliding-window semantics re-prefill for every token).
fn workload(input: &BenchInput, notes: &mut Vec<String>) -> Result<(Vec<u32>, usize)> {
    let loaded = input.int8;
    let mut prompt = loaded.tokenizer.encode(&input.prediction.prompt)?;
    if prompt.is_empty() {
        prompt.push(PAD_ID);
    }
    let t = loaded.model.config.seq_len;
    let wanted = input.settings.num_tokens.max(1);
    if loaded.model.config.kind != textzoo_rt::Kind::TinyGpt || prompt.len() + wanted <= t {
        return Ok((prompt, wanted));
    }
    let tokens = t.saturating_sub(prompt.len()).max(1);
    notes.push(format!(
        "benchmarking.num_tokens {wanted} shortened to {tokens}: a prompt of {} tokens leaves {tokens} KV-cache steps in the {t}-token window",
        prompt.len()
    ));
    Ok((prompt, tokens))
}

/// The benchmarking stage: static analysis, host timing of `textzoo-rt` and of the generated
/// C, and the board's firmware under QEMU; the report is printed and saved as
/// `benchmark.json`. A view that cannot run (no toolchain, a model too large for the board)
/// becomes a note in the report instead of a failure.
pub fn benchmark(input: &BenchInput) -> Result<Report> {
    let loaded = input.int8;
    let path = &loaded.path;
    let board = input.board;
    let profile = boards::profile(board);
    let mut notes = Vec::new();
    let (prompt, tokens) = workload(input, &mut notes)?;
    let fit = deployment::fit_on(loaded, board, tokens + 1);
    let repeats = input.settings.repeats.max(1);
    tracing::info!(
        "benchmarking {} for {} ({repeats} repeats, {tokens} tokens)",
        path.display(),
        profile.name
    );
    let mut host = vec![host::time_runtime(loaded, &prompt, tokens, repeats)];
    let dir = input.dir.join(BENCHMARK_DIR);
    let mut settings = input.prediction.clone();
    settings.max_tokens = tokens + 1;
    let generate = |target: Board, name: &str| -> Result<PathBuf> {
        let p = dir.join(name);
        let files = project::project_files(loaded, target, &settings, 0)?;
        project::write(&p, &files)?;
        Ok(p)
    };
    match generate(Board::Host, "c_host")
        .and_then(|p| native::time_native(&p, prompt.len(), tokens, repeats))
    {
        Ok(t) => host.push(t),
        Err(e) => notes.push(format!("the generated C was not timed on the host: {e}")),
    }
    let emulated = if !input.settings.emulate || board == Board::Host {
        None
    } else if !fit.fits() {
        notes.push(format!(
            "the model does not fit {}: no firmware was built",
            profile.name
        ));
        None
    } else {
        let config = &loaded.model.config;
        let layers = matches!(
            config.kind,
            textzoo_rt::Kind::TinyGpt | textzoo_rt::Kind::TinyBertGenerator
        )
        .then_some(config.num_layers);
        match generate(board, "c_board").and_then(|p| emulated::count(&p, &profile, tokens, layers))
        {
            Ok(e) => Some(e),
            Err(e) => {
                notes.push(format!("emulated run failed: {e}"));
                None
            }
        }
    };
    let board_measured = match &input.settings.board_log {
        Some(log) => Some(board_log::read(log)?),
        None => None,
    };
    if loaded.tokenizer.kind() == TokenizerKind::Bpe {
        notes.push("byte-level BPE prompts are encoded on the host (TZ_PROMPT_IDS)".into());
    }
    let report = Report {
        model: path.display().to_string(),
        kind: loaded.model.config.kind.name().to_string(),
        board: profile.name.to_string(),
        analysis: analysis::analyze(&loaded.model, prompt.len()),
        fit,
        host,
        emulated,
        board_measured,
        notes,
    };
    publish(input.dir, &report)?;
    Ok(report)
}

fn publish(dir: &Path, report: &Report) -> Result<()> {
    println!("{}", report.render());
    let json = serde_json::to_string_pretty(report)
        .map_err(|e| crate::Error::Internal(format!("benchmark report: {e}")))?;
    write_atomic(&dir.join(BENCHMARK_FILE), json.as_bytes())
}

impl Report {
    pub fn record(&self, m: &mut Metrics) {
        for (k, v) in self.metrics() {
            m.set("benchmark", &k, v);
        }
    }
}
