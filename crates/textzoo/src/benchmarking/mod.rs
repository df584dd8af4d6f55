//! Benchmarking (DESIGN §8): one report with three views of an int8 model on a board —
//! static analysis (`analysis`), host timing of `textzoo-rt` and of the generated C (`host`,
//! `native`), and the emulated MCU run with exact instruction counts (`emulated`).

pub mod analysis;
pub mod emulated;
pub mod host;
pub mod native;
pub mod report;

use crate::config::{Board, Config, TokenizerKind};
use crate::data::PAD_ID;
use crate::deployment::{self, boards, project};
use crate::error::Result;
use crate::quantization::LoadedInt8;
use crate::run::{write_atomic, Run};
use report::Report;

pub const BENCHMARK_FILE: &str = "benchmark.json";

/// The board benchmarked: `benchmarking.board`, else the deployment's.
pub fn board(config: &Config) -> Board {
    config
        .benchmarking
        .board
        .unwrap_or(config.deployment.hardware_setup.board)
}

/// The prompt ids and the number of timed decoding steps. `tiny_gpt` steps stay inside the
/// window, so each is the KV-cache step a device runs (past the window the exact
/// sliding-window semantics re-prefill for every token).
fn workload(
    loaded: &LoadedInt8,
    config: &Config,
    notes: &mut Vec<String>,
) -> Result<(Vec<u32>, usize)> {
    let mut prompt = loaded.tokenizer.encode(&config.prediction.prompt)?;
    if prompt.is_empty() {
        prompt.push(PAD_ID);
    }
    let t = loaded.config.seq_len;
    let wanted = config.benchmarking.num_tokens.max(1);
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

/// The `benchmarking` service.
pub fn run(run: &mut Run) -> Result<()> {
    let path = deployment::int8_model_path(run)?;
    let loaded = deployment::load_for_deployment(&path)?;
    let board = board(&run.config);
    let profile = boards::profile(board);
    let mut notes = Vec::new();
    let (prompt, tokens) = workload(&loaded, &run.config, &mut notes)?;
    let fit = deployment::fit_on(&loaded, board, tokens + 1);
    let repeats = run.config.benchmarking.repeats.max(1);
    tracing::info!(
        "benchmarking {} for {} ({repeats} repeats, {tokens} tokens)",
        path.display(),
        profile.name
    );
    let mut host = vec![host::time_runtime(&loaded, &prompt, tokens, repeats)];
    let dir = run.dir.join("benchmark");
    let mut settings = run.config.prediction.clone();
    settings.max_tokens = tokens + 1;
    let generate = |target: Board, name: &str| -> Result<std::path::PathBuf> {
        let p = dir.join(name);
        let files = project::project_files(&loaded, target, &settings, 0)?;
        project::write(&p, &files)?;
        Ok(p)
    };
    match generate(Board::Host, "c_host")
        .and_then(|p| native::time_native(&p, prompt.len(), tokens, repeats))
    {
        Ok(t) => host.push(t),
        Err(e) => notes.push(format!("the generated C was not timed on the host: {e}")),
    }
    let emulated = if !run.config.benchmarking.emulate || board == Board::Host {
        None
    } else if !fit.fits() {
        notes.push(format!(
            "the model does not fit {}: no firmware was built",
            profile.name
        ));
        None
    } else {
        match generate(board, "c_board").and_then(|p| emulated::count(&p, &profile, tokens)) {
            Ok(e) => Some(e),
            Err(e) => {
                notes.push(format!("emulated run failed: {e}"));
                None
            }
        }
    };
    if loaded.tokenizer.kind() == TokenizerKind::Bpe {
        notes.push("byte-level BPE prompts are encoded on the host (TZ_PROMPT_IDS)".into());
    }
    let report = Report {
        model: path.display().to_string(),
        kind: loaded.config.kind.name().to_string(),
        board: profile.name.to_string(),
        analysis: analysis::analyze(&loaded.model, prompt.len()),
        fit,
        host,
        emulated,
        notes,
    };
    publish(run, &report)
}

fn publish(run: &mut Run, report: &Report) -> Result<()> {
    println!("{}", report.render());
    let json = serde_json::to_string_pretty(report)
        .map_err(|e| crate::Error::Internal(format!("benchmark report: {e}")))?;
    write_atomic(&run.dir.join(BENCHMARK_FILE), json.as_bytes())?;
    for (k, v) in report.metrics() {
        run.metrics.set("benchmark", &k, v);
    }
    Ok(())
}
