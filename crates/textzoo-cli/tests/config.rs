//! Configuration from the command line: errors, overrides, interpolation, printing.

mod common;
use common::*;

fn assert_invalid(args: &[&str], must_name: &[&str]) {
    let tmp = tempfile::tempdir().unwrap();
    let run_dir = tmp.path().join("run");
    let dir_arg = format!("hydra.run.dir={}", run_dir.display());
    let mut all: Vec<&str> = args.to_vec();
    all.push(&dir_arg);
    let ran = textzoo(&all);
    assert_eq!(ran.code, 2, "{args:?}: {}", ran.all());
    for word in must_name {
        assert!(
            ran.stderr.contains(word),
            "{args:?}: expected `{word}` in: {}",
            ran.stderr
        );
    }
    assert!(
        !run_dir.exists(),
        "{args:?}: an invalid configuration created a run directory"
    );
    assert!(!ran.stderr.contains("panicked"), "{}", ran.stderr);
}

#[test]
fn unknown_keys_name_the_key_and_suggest() {
    assert_invalid(
        &["trainig.epochs=1"],
        &["trainig", "did you mean `training`"],
    );
    assert_invalid(
        &["training.bach_size=3"],
        &["training.bach_size", "did you mean `batch_size`", "allowed"],
    );
    assert_invalid(&["model.embed=3"], &["model.embed", "embed_dim"]);
}

#[test]
fn wrong_types_and_variants_name_the_key_and_value() {
    assert_invalid(
        &["training.batch_size=lots"],
        &["training.batch_size", "lots"],
    );
    assert_invalid(
        &["model.name=tiny_gtp"],
        &["model.name", "tiny_gtp", "did you mean `tiny_gpt`", "lstm"],
    );
    assert_invalid(
        &["operation_mode=chain_tq"],
        &["operation_mode", "chain_tqe"],
    );
    assert_invalid(
        &["deployment.hardware_setup.board=STM32F4"],
        &["board", "STM32F4", "STM32H7"],
    );
    assert_invalid(&["model=3"], &["model", "must be a mapping"]);
}

#[test]
fn out_of_range_values_say_what_is_allowed() {
    assert_invalid(&["model.dropout=1.5"], &["model.dropout", "1.5", "[0, 1)"]);
    assert_invalid(&["model.num_heads=3"], &["model.num_heads", "divide"]);
    assert_invalid(
        &["preprocessing.vocab_size=1"],
        &["preprocessing.vocab_size", "[3, 65536]", "special tokens"],
    );
    assert_invalid(
        &["training.learning_rate=-1"],
        &["training.learning_rate", "positive"],
    );
    assert_invalid(&["prediction.top_p=0"], &["prediction.top_p", "(0, 1]"]);
    assert_invalid(&["training.ema_decay=1"], &["training.ema_decay", "[0, 1)"]);
    assert_invalid(
        &["training.short_context_share=1.5"],
        &["training.short_context_share", "[0, 1]"],
    );
}

#[test]
fn missing_paths_and_required_model_are_reported() {
    assert_invalid(
        &["dataset.training_path=nowhere/corpus.txt"],
        &["dataset.training_path", "nowhere/corpus.txt"],
    );
    // Without the bundled models (general.pretrained=null) a model file is required.
    assert_invalid(
        &["operation_mode=evaluation", "general.pretrained=null"],
        &["general.model_path", "required", "evaluation"],
    );
    assert_invalid(
        &[
            "operation_mode=prediction",
            "general.model_path=missing.safetensors",
        ],
        &["general.model_path", "missing.safetensors"],
    );
    assert_invalid(&["--config-name", "no_such.yaml"], &["no_such.yaml"]);
}

#[test]
fn bad_override_syntax_and_bad_yaml_are_reported() {
    assert_invalid(&["justaword"], &["justaword", "key.path=value"]);
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("bad.yaml"), "model: [unclosed\n").unwrap();
    let cfg_dir = tmp.path().display().to_string();
    assert_invalid(
        &["--config-path", &cfg_dir, "--config-name", "bad.yaml"],
        &["bad.yaml", "YAML"],
    );
    std::fs::write(tmp.path().join("list.yaml"), "- a\n- b\n").unwrap();
    assert_invalid(
        &["--config-path", &cfg_dir, "--config-name", "list.yaml"],
        &["mapping"],
    );
}

fn resolved(args: &[&str]) -> String {
    let ran = textzoo(&[&["--cfg"], args].concat());
    assert_eq!(ran.code, 0, "{}", ran.all());
    ran.stdout
}

#[test]
fn overrides_of_every_value_kind() {
    let out = resolved(&[
        "training.batch_size=64",
        "training.learning_rate=3e-4",
        "model.tie_embeddings=true",
        "prediction.prompt=to be or not",
        "prediction.seed=null",
        "general.project_name=\"007\"",
        "training.max_steps=null",
        "dataset.name=no",
    ]);
    assert!(out.contains("batch_size: 64"), "{out}");
    assert!(out.contains("learning_rate: 0.0003"), "{out}");
    assert!(out.contains("tie_embeddings: true"), "{out}");
    assert!(out.contains("prompt: to be or not"), "{out}");
    assert!(
        out.contains("project_name: '007'") || out.contains("project_name: \"007\""),
        "{out}"
    );
    assert!(
        out.contains("name: 'no'") || out.contains("name: \"no\""),
        "{out}"
    );
}

#[test]
fn list_values_reach_the_typed_config_and_are_checked() {
    // No list-valued key in the schema yet: a list where a scalar belongs is a type error.
    assert_invalid(
        &["training.batch_size=[1,2]"],
        &["training.batch_size", "sequence"],
    );
}

#[test]
fn interpolation_of_keys_and_time() {
    let out = resolved(&[
        "general.project_name=zoo_${model.name}_${model.seq_len}",
        "dataset.name=${general.project_name}",
        "hydra.run.dir=out/${now:%Y}",
    ]);
    assert!(out.contains("project_name: zoo_tiny_gpt_32"), "{out}");
    assert!(out.contains("name: zoo_tiny_gpt_32"), "{out}");
    let year = chrono::Local::now().format("%Y").to_string();
    assert!(out.contains(&format!("dir: out/{year}")), "{out}");
    assert_invalid(
        &["general.project_name=${model.nope}"],
        &["model.nope", "not a key"],
    );
}

#[test]
fn help_explains_modes_and_sections() {
    let ran = textzoo(&["--help"]);
    assert_eq!(ran.code, 0);
    for word in [
        "chain_tqe",
        "chain_qd",
        "preprocessing",
        "hydra",
        "--config-path",
        "--cfg",
        "Exit codes",
    ] {
        assert!(ran.stdout.contains(word), "--help lacks {word}");
    }
}

#[test]
fn config_files_from_a_directory_and_builtin_defaults() {
    let out = resolved(&[
        "--config-path",
        "config_file_examples",
        "--config-name",
        "training.yaml",
    ]);
    assert!(out.contains("operation_mode: training"), "{out}");
    // Without user_config.yaml in the working directory, the built-in defaults apply.
    let tmp = tempfile::tempdir().unwrap();
    let ran = textzoo_in(tmp.path(), &["--cfg"]);
    assert_eq!(ran.code, 0, "{}", ran.all());
    assert!(ran
        .stdout
        .contains("training_path: datasets/tinyshakespeare.txt"));
}

/// The zoo's sample configuration, next to a short corpus where its relative
/// `dataset.corpus_path` points (the old file's folder + ./datasets/tinyshakespeare.txt).
fn zoo_layout(root: &std::path::Path) -> std::path::PathBuf {
    let fixture = workspace_root()
        .join("crates/textzoo-cli/tests/fixtures/st_zoo/text_generation_user_config.yaml");
    let zoo = root.join("zoo");
    std::fs::create_dir_all(zoo.join("datasets")).unwrap();
    let corpus =
        std::fs::read_to_string(workspace_root().join("datasets/alice_in_wonderland.txt")).unwrap();
    let end = corpus
        .char_indices()
        .nth(40_000)
        .map_or(corpus.len(), |(i, _)| i);
    std::fs::write(zoo.join("datasets/tinyshakespeare.txt"), &corpus[..end]).unwrap();
    let old = zoo.join("user_config.yaml");
    std::fs::copy(fixture, &old).unwrap();
    old
}

#[test]
fn a_zoo_configuration_is_pointed_to_migrate_config_and_its_migration_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let old = zoo_layout(tmp.path());
    let zoo = old.parent().unwrap();

    // The strict loader recognises the zoo's layout and names the command.
    let run = tmp.path().join("refused");
    let dir = format!("hydra.run.dir={}", run.display());
    let ran = textzoo(&[
        "--config-path",
        zoo.to_str().unwrap(),
        "--config-name",
        "user_config.yaml",
        &dir,
    ]);
    assert_eq!(ran.code, 2, "{}", ran.all());
    assert!(
        ran.stderr
            .contains("looks like an STM32 model zoo configuration")
            && ran.stderr.contains("textzoo migrate-config"),
        "{}",
        ran.stderr
    );
    assert!(!run.exists());

    // Migration: every key mapped or dropped, printed.
    let new = tmp.path().join("migrated.yaml");
    let ran = textzoo(&[
        "migrate-config",
        old.to_str().unwrap(),
        "-o",
        new.to_str().unwrap(),
    ]);
    assert_eq!(ran.code, 0, "{}", ran.all());
    for needle in [
        "training.model.dff -> model.ffn_dim = 512",
        "dataset.sequence_length -> model.seq_len = 32",
        "training.optimizer.Adam.learning_rate -> training.learning_rate = 0.002",
        "tools.stedgeai.version -> tools.stedgeai.version = 10.0.0",
        "deployment.hardware_setup.board -> deployment.hardware_setup.board = STM32H7",
        "STM32H747I-DISCO builds with textzoo's STM32H7 profile",
        "deployment.IDE: ",
        "quantization.quantizer: ",
        "general.gpu_memory_limit: textzoo trains on the CPU",
    ] {
        assert!(ran.stdout.contains(needle), "{needle}: {}", ran.stdout);
    }
    assert!(
        !ran.stdout.contains("warning:"),
        "the corpus exists: {}",
        ran.stdout
    );
    // The output is not overwritten without --force.
    let again = textzoo(&[
        "migrate-config",
        old.to_str().unwrap(),
        "-o",
        new.to_str().unwrap(),
    ]);
    assert_eq!(again.code, 2, "{}", again.all());
    assert!(again.stderr.contains("--force"), "{}", again.stderr);

    // The migrated file runs chain_tqe as written, shortened to a few steps.
    let run = tmp.path().join("run");
    let dir = format!("hydra.run.dir={}", run.display());
    let mlruns = format!("mlflow.uri={}", tmp.path().join("mlruns").display());
    let ran = textzoo(&[
        "--config-path",
        tmp.path().to_str().unwrap(),
        "--config-name",
        "migrated.yaml",
        &dir,
        &mlruns,
        "training.max_steps=3",
        "training.eval_interval=2",
        "training.eval_windows=16",
        "evaluation.max_windows=32",
        "quantization.num_samples=16",
    ]);
    assert_eq!(ran.code, 0, "{}", ran.all());
    assert!(run
        .join("quantized_models/model_int8.safetensors")
        .is_file());
    let resolved = std::fs::read_to_string(run.join(".hydra/config.yaml")).unwrap();
    assert!(resolved.contains("tiny_bert_generator"), "{resolved}");
    assert!(
        resolved.contains("project_name: word_generation"),
        "{resolved}"
    );
}

#[test]
fn a_migrated_file_whose_corpus_is_missing_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    // The fixture's corpus path is relative to its folder, where no datasets/ exists.
    let old = workspace_root()
        .join("crates/textzoo-cli/tests/fixtures/st_zoo/text_generation_user_config.yaml");
    let new = tmp.path().join("new.yaml");
    let ran = textzoo(&[
        "migrate-config",
        old.to_str().unwrap(),
        "-o",
        new.to_str().unwrap(),
    ]);
    assert_eq!(ran.code, 0, "{}", ran.all());
    assert!(
        ran.stdout.contains("warning: dataset.training_path")
            && ran.stdout.contains("does not exist"),
        "{}",
        ran.stdout
    );
    let text = std::fs::read_to_string(&new).unwrap();
    assert!(text.contains("# WARNING: dataset.training_path"), "{text}");
    // Running it fails before any work, naming the key.
    let run = tmp.path().join("run");
    let dir = format!("hydra.run.dir={}", run.display());
    let ran = textzoo(&[
        "--config-path",
        tmp.path().to_str().unwrap(),
        "--config-name",
        "new.yaml",
        &dir,
    ]);
    assert_eq!(ran.code, 2, "{}", ran.all());
    assert!(
        ran.stderr.contains("dataset.training_path"),
        "{}",
        ran.stderr
    );
    assert!(!run.exists());
    // A board textzoo does not build for is refused with the list.
    let bad = tmp.path().join("u5.yaml");
    std::fs::write(
        &bad,
        "deployment:\n  hardware_setup:\n    serie: STM32U5\n    board: B-U585I-IOT02A\n",
    )
    .unwrap();
    let ran = textzoo(&[
        "migrate-config",
        bad.to_str().unwrap(),
        "-o",
        tmp.path().join("u5_new.yaml").to_str().unwrap(),
    ]);
    assert_eq!(ran.code, 2, "{}", ran.all());
    assert!(
        ran.stderr.contains("B-U585I-IOT02A") && ran.stderr.contains("STM32MP157F-DK2"),
        "{}",
        ran.stderr
    );
    assert!(!tmp.path().join("u5_new.yaml").exists());
}
