//! Benchmarking end to end: the three views of the report (static analysis, host timing of
//! textzoo-rt and of the generated C, emulated instruction counts), their repeatability, and
//! the fit verdict for a model that does not fit the board.

mod common;
use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn int8_model(dir: &Path, extra: &[&str]) -> PathBuf {
    let run = dir.join(format!("train_{}", dir.read_dir().unwrap().count()));
    let base = tiny(&run);
    let mut args = with(&base, &["operation_mode=chain_tqe", "model.name=tiny_gpt"]);
    args.extend_from_slice(extra);
    let ran = textzoo(&args);
    assert_eq!(ran.code, 0, "{}", ran.all());
    run.join("quantized_models/model_int8.safetensors")
}

fn benchmark(dir: &Path, name: &str, int8: &Path, board: &str) -> (Value, Value, String) {
    let run = dir.join(name);
    let model = format!("general.model_path={}", int8.display());
    let board = format!("deployment.hardware_setup.board={board}");
    let ran = textzoo(&with(
        &tiny(&run),
        &[
            "operation_mode=benchmarking",
            &model,
            &board,
            "benchmarking.repeats=3",
            "benchmarking.num_tokens=4",
            "prediction.prompt=alice was",
        ],
    ));
    assert_eq!(ran.code, 0, "{}", ran.all());
    (
        json(&run.join("benchmark.json")),
        json(&run.join("metrics.json")),
        ran.stdout,
    )
}

#[test]
fn the_report_has_three_views_and_repeatable_instruction_counts() {
    let tmp = tempfile::tempdir().unwrap();
    let int8 = int8_model(tmp.path(), &[]);
    let (report, metrics, stdout) = benchmark(tmp.path(), "h7", &int8, "STM32H7");
    // Static analysis: per-layer rows whose sums are the totals.
    let a = &report["analysis"];
    let layers = a["layers"].as_array().unwrap();
    let sum = |k: &str| layers.iter().map(|l| l[k].as_u64().unwrap()).sum::<u64>();
    assert_eq!(sum("macc_decode"), a["macc_decode"].as_u64().unwrap());
    assert_eq!(sum("params"), a["params"].as_u64().unwrap());
    assert!(a["macc_decode"].as_u64().unwrap() > 0);
    assert_eq!(report["fit"]["board"], "NUCLEO-H743ZI2", "{report}");
    // Host timing of both runtimes.
    let host = report["host"].as_array().unwrap();
    let runtimes: Vec<&str> = host
        .iter()
        .map(|t| t["runtime"].as_str().unwrap())
        .collect();
    assert_eq!(runtimes, ["textzoo-rt", "generated C"], "{report}");
    for t in host {
        assert!(t["ms_per_token"].as_f64().unwrap() > 0.0, "{t}");
        assert_eq!(t["repeats"], 3);
    }
    // Emulated run: exact counts, one per decoding step, repeatable.
    let e = &report["emulated"];
    assert_eq!(e["repeatable"], true, "{report}");
    assert_eq!(
        e["per_token_instructions"].as_array().unwrap().len(),
        4,
        "{e}"
    );
    assert!(e["prefill_instructions"].as_u64().unwrap() > 0);
    assert!(e["sections"]["rodata_bytes"].as_u64().unwrap() > 0, "{e}");
    assert!(stdout.contains("ESTIMATE"), "{stdout}");
    // The per-step split of the forward pass (one block: embedding, seven steps, ln_f, head)
    // adds up to the forward count, give or take the marks of the profiled build.
    let steps = e["per_layer"].as_array().unwrap();
    let names: Vec<&str> = steps.iter().map(|s| s["layer"].as_str().unwrap()).collect();
    assert_eq!(names.len(), 10, "{e}");
    assert_eq!(
        [names[0], names[3], names[9]],
        ["embedding", "blocks.0.attention", "head"]
    );
    let sum: f64 = steps
        .iter()
        .map(|s| s["instructions_per_token"].as_f64().unwrap())
        .sum();
    let forward = e["instructions_per_token"].as_f64().unwrap();
    assert!(
        (sum - forward).abs() < 0.03 * forward,
        "steps sum to {sum}, forward {forward}"
    );
    assert!(
        stdout.contains("per step, instructions per token"),
        "{stdout}"
    );
    // Metrics with the model zoo's names.
    let b = &metrics["benchmark"];
    for key in [
        "MACCs decode (M)",
        "Flash weights KiB",
        "RAM Activations KiB",
        "textzoo-rt inference_time ms",
    ] {
        assert!(b[key].is_number(), "{key}: {b}");
    }
    // The same binary counts the same instructions in another run.
    let (again, _, _) = benchmark(tmp.path(), "h7_again", &int8, "STM32H7");
    assert_eq!(
        again["emulated"]["per_token_instructions"],
        e["per_token_instructions"]
    );
    assert_eq!(
        again["emulated"]["prefill_instructions"],
        e["prefill_instructions"]
    );
}

#[test]
fn the_fit_verdict_flips_for_a_model_too_large_for_the_board() {
    let tmp = tempfile::tempdir().unwrap();
    let big = int8_model(
        tmp.path(),
        &[
            "model.embed_dim=256",
            "model.ffn_dim=1024",
            "model.num_layers=4",
            "model.num_heads=4",
            "training.max_steps=1",
        ],
    );
    let (report, metrics, stdout) = benchmark(tmp.path(), "big_h7", &big, "STM32H7");
    assert_eq!(
        report["fit"]["flash"]["available"],
        2 * 1024 * 1024,
        "{report}"
    );
    assert!(report["fit"]["flash"]["needed"].as_u64().unwrap() > 2 * 1024 * 1024);
    assert_eq!(metrics["benchmark"]["fits"], false);
    assert!(stdout.contains("DOES NOT FIT"), "{stdout}");
    assert!(
        report["emulated"].is_null(),
        "no firmware for a board it does not fit"
    );
    let (report, metrics, _) = benchmark(tmp.path(), "big_host", &big, "host");
    assert_eq!(metrics["benchmark"]["fits"], true, "{report}");
}

/// `benchmarking.board_log`: the timing line of a log captured from the board joins the
/// report beside the emulated estimate (here a hand-written log with terminal noise around
/// the line, as a user would save it); a log captured from the QEMU stand-in, which prints
/// the text but no timing, is refused as bad input before any run directory exists.
#[test]
fn a_board_log_joins_the_report_and_a_log_without_timing_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let int8 = int8_model(tmp.path(), &[]);
    let log = tmp.path().join("uart.log");
    std::fs::write(
        &log,
        "alice was a little\r\n\
         [10:02:11] timing: prefill_cycles=912345 cycles_per_token=600000 ms_per_token=1.250 \
         tokens_per_s=800.0 tokens=4 sysclk_hz=480000000\r\n",
    )
    .unwrap();
    let run = tmp.path().join("with_log");
    let model = format!("general.model_path={}", int8.display());
    let board_log = format!("benchmarking.board_log={}", log.display());
    let base = tiny(&run);
    let args = with(
        &base,
        &[
            "operation_mode=benchmarking",
            &model,
            "deployment.hardware_setup.board=STM32H7",
            "benchmarking.repeats=1",
            "benchmarking.num_tokens=4",
            "prediction.prompt=alice was",
            &board_log,
        ],
    );
    let ran = textzoo(&args);
    assert_eq!(ran.code, 0, "{}", ran.all());
    let report = json(&run.join("benchmark.json"));
    let b = &report["board_measured"];
    assert_eq!(b["cycles_per_token"], 600_000, "{report}");
    assert_eq!(b["sysclk_hz"], 480_000_000, "{report}");
    assert_eq!(b["ms_per_token"], 1.25, "{report}");
    assert_eq!(b["tokens_per_s"], 800.0, "{report}");
    let metrics = json(&run.join("metrics.json"));
    assert_eq!(metrics["benchmark"]["board tokens/s"], 800.0, "{metrics}");
    assert!(
        ran.stdout.contains("measured on the board"),
        "{}",
        ran.stdout
    );
    let ipt = report["emulated"]["instructions_per_token"]
        .as_f64()
        .unwrap();
    let cpi = format!("cycles per emulated instruction: {:.2}", 600_000.0 / ipt);
    assert!(ran.stdout.contains(&cpi), "{cpi} in {}", ran.stdout);

    // The firmware benchmarking built for the stand-in, run under QEMU: text, no timing.
    let project = run.join("benchmark/c_board");
    let out = std::process::Command::new("make")
        .args(["-s", "-C"])
        .arg(&project)
        .arg("run-qemu")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let captured = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        captured.starts_with("alice was") && !captured.contains("timing"),
        "{captured}"
    );
    let qemu_log = tmp.path().join("qemu.log");
    std::fs::write(&qemu_log, &captured).unwrap();
    let refused_run = tmp.path().join("refused");
    let board_log = format!("benchmarking.board_log={}", qemu_log.display());
    let base = tiny(&refused_run);
    let mut args = with(&base, &["operation_mode=benchmarking", &model]);
    args.push(&board_log);
    let ran = textzoo(&args);
    assert_eq!(ran.code, 2, "{}", ran.all());
    assert!(
        ran.all().contains("benchmarking.board_log") && ran.all().contains("no `timing:"),
        "{}",
        ran.all()
    );
    assert!(is_absent_or_empty(&refused_run));
    let missing = format!(
        "benchmarking.board_log={}",
        tmp.path().join("nope.log").display()
    );
    let mut args = with(&base, &["operation_mode=benchmarking", &model]);
    args.push(&missing);
    let ran = textzoo(&args);
    assert_eq!(ran.code, 2, "{}", ran.all());
    assert!(
        ran.all().contains("benchmarking.board_log"),
        "{}",
        ran.all()
    );
    assert!(is_absent_or_empty(&refused_run));
}

/// Issue 21's budget for the board-size `tiny_gpt` (embed 48, ffn 192, tied, the reference
/// run's 4 096-word tokenizer): at most 320 000 instructions per decoded token on the
/// Cortex-M7 stand-in, 40 % of the dual-MAC bound. QEMU's counts are exact, so this is a
/// deterministic assertion, not a timing; `benches/mcu_estimates.sh` prints the same figure
/// beside the runtime's count before the work.
#[test]
fn the_board_size_tiny_gpt_stays_within_its_instruction_budget_on_cortex_m7() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("board_size");
    let dir = format!("hydra.run.dir={}", run.display());
    let mlflow = mlflow_uri();
    let ran = textzoo(&[
        "--config-path",
        "config_file_examples",
        "--config-name",
        "reference_training.yaml",
        "operation_mode=chain_tqeb",
        "model.name=tiny_gpt",
        "model.embed_dim=48",
        "model.ffn_dim=192",
        "model.tie_embeddings=true",
        "training.max_minutes=null",
        "training.max_steps=2",
        "training.eval_interval=1",
        "training.eval_windows=16",
        "evaluation.max_windows=16",
        "deployment.hardware_setup.board=STM32H7",
        "benchmarking.repeats=1",
        "benchmarking.num_tokens=8",
        &dir,
        &mlflow,
    ]);
    assert_eq!(ran.code, 0, "{}", ran.all());
    let report = json(&run.join("benchmark.json"));
    let e = &report["emulated"];
    assert_eq!(e["repeatable"], true, "{report}");
    let per_token = e["instructions_per_token"].as_f64().unwrap();
    let macc = report["analysis"]["macc_decode"].as_f64().unwrap();
    eprintln!(
        "board-size tiny_gpt: {per_token:.0} instructions/token, {:.1} % of the dual-MAC bound",
        100.0 * macc / 2.0 / per_token
    );
    assert!(per_token <= 320_000.0, "{per_token} instructions/token");
}
