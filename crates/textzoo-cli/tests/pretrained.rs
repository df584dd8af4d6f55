//! The bundled model zoo (`pretrained_models/`): every card's figures are re-measured from its
//! files, and the modes that start from a model use a bundled one when given none.

mod common;
use common::*;
use std::path::{Path, PathBuf};
use textzoo::pipeline::card::{read_quality, Quality};

fn zoo() -> PathBuf {
    workspace_root().join("pretrained_models")
}

/// Every bundled model's folder name.
fn entries() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(zoo())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("model.safetensors").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn metrics(run: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(run.join("metrics.json")).unwrap()).unwrap()
}

/// Evaluates `model` with its entry's own configuration and returns the section's figures.
fn evaluate(name: &str, model: &Path, run: &Path, section: &str) -> Quality {
    let config_dir = zoo().join(name);
    let run_arg = format!("hydra.run.dir={}", run.display());
    let model_arg = format!("general.model_path={}", model.display());
    let ran = textzoo(&[
        "--config-path",
        config_dir.to_str().unwrap(),
        "--config-name",
        "config.yaml",
        "operation_mode=evaluation",
        &model_arg,
        &run_arg,
        "mlflow.uri=",
    ]);
    assert_eq!(ran.code, 0, "{name}: {}", ran.all());
    Quality::from_metrics(&metrics(run), section)
        .unwrap_or_else(|| panic!("{name}: no {section} figures in metrics.json"))
}

fn assert_close(name: &str, what: &str, card: Quality, fresh: Quality) {
    // The card prints perplexity with 3 decimals and accuracies with 2 (in %); a different
    // machine may differ in the last float bits, never by more than that rounding.
    let ppl_tol = 0.0006 + fresh.perplexity * 1e-5;
    assert!(
        (card.perplexity - fresh.perplexity).abs() <= ppl_tol,
        "{name} {what}: card says perplexity {}, the file gives {}",
        card.perplexity,
        fresh.perplexity
    );
    for (label, c, f) in [
        ("top-1", card.top1, fresh.top1),
        ("top-5", card.top5, fresh.top5),
    ] {
        assert!(
            (c - f).abs() <= 0.000051 + 1e-5,
            "{name} {what}: card says {label} {c}, the file gives {f}"
        );
    }
}

#[test]
fn every_card_matches_a_fresh_evaluation_of_its_files() {
    let names = entries();
    assert!(names.len() >= 6, "bundled models: {names:?}");
    let index = std::fs::read_to_string(zoo().join("README.md")).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    for name in &names {
        let dir = zoo().join(name);
        let card = std::fs::read_to_string(dir.join("README.md")).unwrap();
        let (float_card, int8_card) =
            read_quality(&card).unwrap_or_else(|| panic!("{name}: no quality table"));
        let float = evaluate(
            name,
            &dir.join("model.safetensors"),
            &tmp.path().join(format!("{name}_float")),
            "float",
        );
        assert_close(name, "float", float_card, float);
        let int8 = evaluate(
            name,
            &dir.join("model_int8.safetensors"),
            &tmp.path().join(format!("{name}_int8")),
            "int8",
        );
        assert_close(name, "int8", int8_card, int8);
        assert!(
            index.contains(&format!("[{name}]({name}/README.md)")),
            "{name} missing from pretrained_models/README.md"
        );
        assert!(
            index.contains(&format!("{:.3}", float_card.perplexity))
                && index.contains(&format!("{:.3}", int8_card.perplexity)),
            "pretrained_models/README.md disagrees with {name}'s card"
        );
    }
}

#[test]
fn modes_that_start_from_a_model_use_the_bundled_one() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("predict");
    let run_arg = format!("hydra.run.dir={}", run.display());
    let ran = textzoo(&[
        "operation_mode=prediction",
        "prediction.prompt=STM32 embedded AI",
        "prediction.max_tokens=50",
        &run_arg,
        "mlflow.uri=",
    ]);
    assert_eq!(ran.code, 0, "{}", ran.all());
    assert!(ran.all().contains("tiny_gpt_board"), "{}", ran.all());
    let m = metrics(&run);
    assert_eq!(m["run"]["pretrained_model"], "tiny_gpt_board");
    // 50 tokens of the word tokenizer: words and punctuation marks.
    assert_eq!(m["prediction"]["tokens"], 50);
    let text = std::fs::read_to_string(run.join("generated.txt")).unwrap();
    let words = text.split_whitespace().count();
    assert!(words >= 35, "{words} words: {text}");
    assert!(
        ran.stdout.contains(&text),
        "stdout shows the saved text: {}",
        ran.stdout
    );

    // `general.pretrained` picks another entry; a model file given wins over the zoo.
    let run = tmp.path().join("gru");
    let run_arg = format!("hydra.run.dir={}", run.display());
    let ran = textzoo(&[
        "operation_mode=prediction",
        "model.name=gru",
        "prediction.max_tokens=5",
        &run_arg,
        "mlflow.uri=",
    ]);
    assert_eq!(ran.code, 0, "{}", ran.all());
    assert_eq!(metrics(&run)["run"]["pretrained_model"], "gru_board");

    // No such entry: exit 2, the bundled names listed, no run directory.
    let run = tmp.path().join("none");
    let run_arg = format!("hydra.run.dir={}", run.display());
    let ran = textzoo(&[
        "operation_mode=evaluation",
        "model.name=lstm",
        "general.pretrained=reference",
        &run_arg,
    ]);
    assert_eq!(ran.code, 2, "{}", ran.all());
    assert!(
        ran.all().contains("lstm_reference") && ran.all().contains("tiny_gpt_board"),
        "{}",
        ran.all()
    );
    assert!(!run.exists());

    // general.pretrained=null: the old "which model is needed" message.
    let ran = textzoo(&[
        "operation_mode=evaluation",
        "general.pretrained=null",
        &run_arg,
    ]);
    assert_eq!(ran.code, 2, "{}", ran.all());
    assert!(ran.all().contains("general.model_path"), "{}", ran.all());
    assert!(!run.exists());
}

#[test]
fn the_quantizing_chains_start_from_the_bundled_float_model() {
    let tmp = tempfile::tempdir().unwrap();
    for (mode, board) in [("chain_qb", "STM32H7"), ("chain_qd", "STM32N6570-DK")] {
        let run = tmp.path().join(mode);
        let run_arg = format!("hydra.run.dir={}", run.display());
        let board_arg = format!("deployment.hardware_setup.board={board}");
        let ran = textzoo(&[
            &format!("operation_mode={mode}"),
            &board_arg,
            &run_arg,
            "benchmarking.emulate=false",
            "benchmarking.repeats=1",
            "mlflow.uri=",
        ]);
        assert_eq!(ran.code, 0, "{mode}: {}", ran.all());
        let m = metrics(&run);
        assert_eq!(m["run"]["pretrained_model"], "tiny_gpt_board", "{mode}");
        assert!(run
            .join("quantized_models/model_int8.safetensors")
            .is_file());
        if mode == "chain_qd" {
            assert!(run.join("c_project/Makefile").is_file());
        } else {
            assert!(run.join("benchmark.json").is_file());
        }
    }
}
