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
