//! Training, evaluation and prediction end to end on a tiny model and a short corpus.

mod common;
use common::*;
use std::path::Path;

fn train(run: &Path, extra: &[&str]) -> Ran {
    let base = tiny(run);
    let ran = textzoo(&with(
        &base,
        &[&["operation_mode=training"], extra].concat(),
    ));
    assert_eq!(ran.code, 0, "{}", ran.all());
    ran
}

fn losses(run: &Path) -> Vec<String> {
    std::fs::read_to_string(run.join("training_log.csv"))
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split(',').take(2).collect::<Vec<_>>().join(","))
        .collect()
}

fn metrics(run: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(run.join("metrics.json")).unwrap()).unwrap()
}

#[test]
fn training_writes_model_checkpoint_log_and_metrics_for_every_model() {
    let tmp = tempfile::tempdir().unwrap();
    for name in ["tiny_gpt", "tiny_bert_generator", "gru", "lstm"] {
        let run = tmp.path().join(name);
        let ran = train(&run, &[&format!("model.name={name}")]);
        assert!(
            ran.stdout.contains("trained 3 steps") && ran.stdout.contains("sample: "),
            "{}",
            ran.stdout
        );
        for file in [
            "saved_models/model.safetensors",
            "saved_models/checkpoints/last.safetensors",
            "tokenizer.json",
            "training_log.csv",
        ] {
            assert!(run.join(file).exists(), "{name}: {file} missing");
        }
        let m = metrics(&run);
        assert_eq!(m["training"]["steps"], 3, "{name}");
        assert!(m["training"]["parameters"].as_u64().unwrap() > 1000);
        assert!(m["training"]["best_val_loss"].as_f64().unwrap() > 0.0);
        assert_eq!(losses(&run).len(), 3);
    }
}

#[test]
fn same_seed_same_losses_and_resume_continues_the_same_trajectory() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b, c) = (
        tmp.path().join("a"),
        tmp.path().join("b"),
        tmp.path().join("c"),
    );
    let args = [
        "model.name=tiny_gpt",
        "training.max_steps=6",
        "training.checkpoint_interval=3",
        "model.dropout=0.1",
    ];
    train(&a, &args);
    train(&b, &args);
    assert_eq!(
        losses(&a),
        losses(&b),
        "same seed must give bit-identical losses"
    );
    let other = tmp.path().join("other_seed");
    train(&other, &[&args[..], &["general.global_seed=7"]].concat());
    assert_ne!(losses(&a), losses(&other));

    let checkpoint = a.join("saved_models/checkpoints/step_00000003.safetensors");
    assert!(checkpoint.exists());
    let resume = format!("training.resume_training_from={}", checkpoint.display());
    train(&c, &[&args[..], &[resume.as_str()]].concat());
    let resumed = losses(&c);
    assert_eq!(resumed.len(), 3, "{resumed:?}");
    assert_eq!(
        resumed,
        losses(&a)[3..].to_vec(),
        "resume must continue the uninterrupted run exactly"
    );
}

/// The weights of a model file or checkpoint, and the checkpoint's moving average.
fn weights(path: &Path) -> (Vec<f32>, Option<Vec<f32>>) {
    let loaded = textzoo::artifact::float::load(path).unwrap();
    let ema = loaded.checkpoint.and_then(|c| c.ema);
    (loaded.model.params().data.clone(), ema)
}

#[test]
fn the_moving_average_is_saved_and_resume_carries_it_on() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, c) = (tmp.path().join("a"), tmp.path().join("c"));
    let args = [
        "model.name=tiny_gpt",
        "training.max_steps=6",
        "training.checkpoint_interval=3",
        "training.ema_decay=0.5",
        "training.early_stopping.restore_best=false",
    ];
    train(&a, &args);
    let (saved, _) = weights(&a.join("saved_models/model.safetensors"));
    let (live, average) = weights(&a.join("saved_models/checkpoints/last.safetensors"));
    assert_ne!(
        saved, live,
        "the model file must hold the average, not the last weights"
    );
    assert_eq!(average.as_deref(), Some(&saved[..]));

    let checkpoint = a.join("saved_models/checkpoints/step_00000003.safetensors");
    let resume = format!("training.resume_training_from={}", checkpoint.display());
    train(&c, &[&args[..], &[resume.as_str()]].concat());
    let (resumed, _) = weights(&c.join("saved_models/model.safetensors"));
    assert_eq!(
        resumed, saved,
        "resume must continue the average, not restart it"
    );
}

#[test]
fn a_diverging_run_stops_with_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let base = tiny(&run);
    let ran = textzoo(&with(
        &base,
        &[
            "operation_mode=training",
            "training.learning_rate=1e30",
            "training.max_steps=20",
        ],
    ));
    assert_ne!(ran.code, 0, "{}", ran.all());
    assert!(
        ran.all().contains("diverged") && ran.all().contains("training.learning_rate"),
        "{}",
        ran.all()
    );
}

#[test]
fn chain_tqe_evaluates_the_trained_model() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let base = tiny(&run);
    let ran = textzoo(&with(
        &base,
        &["operation_mode=chain_tqe", "dataset.test_split=0.05"],
    ));
    assert_eq!(ran.code, 0, "{}", ran.all());
    let m = metrics(&run);
    for key in [
        "val_loss",
        "val_perplexity",
        "val_accuracy",
        "val_top5_accuracy",
        "test_loss",
        "test_perplexity",
    ] {
        assert!(
            m["float"][key].as_f64().is_some(),
            "float.{key} missing: {m}"
        );
    }
    let loss = m["float"]["val_loss"].as_f64().unwrap();
    assert!(
        (m["float"]["val_perplexity"].as_f64().unwrap() - loss.exp()).abs() < 1e-6 * loss.exp()
    );
    assert!(m["float"]["val_top5_accuracy"].as_f64() >= m["float"]["val_accuracy"].as_f64());
    assert!(ran.stdout.contains("perplexity"), "{}", ran.stdout);
}

#[test]
fn evaluation_and_prediction_from_a_model_file() {
    let tmp = tempfile::tempdir().unwrap();
    let trained = tmp.path().join("trained");
    train(
        &trained,
        &["model.name=tiny_bert_generator", "training.max_steps=5"],
    );
    let model = format!(
        "general.model_path={}",
        trained.join("saved_models/model.safetensors").display()
    );

    let eval = tmp.path().join("eval");
    let ran = textzoo(&with(&tiny(&eval), &["operation_mode=evaluation", &model]));
    assert_eq!(ran.code, 0, "{}", ran.all());
    assert!(metrics(&eval)["float"]["val_loss"].as_f64().is_some());

    let predict = |dir: &str, extra: &[&str]| {
        let run = tmp.path().join(dir);
        let ran = textzoo(&with(
            &tiny(&run),
            &[
                &[
                    "operation_mode=prediction",
                    &model,
                    "prediction.max_tokens=12",
                ],
                extra,
            ]
            .concat(),
        ));
        assert_eq!(ran.code, 0, "{}", ran.all());
        let text = std::fs::read_to_string(run.join("generated.txt")).unwrap();
        assert!(
            ran.stdout.contains(&text),
            "streamed text and file differ: {} vs {text}",
            ran.stdout
        );
        assert!(!text.contains("<unk>") && !text.contains("<pad>"), "{text}");
        assert!(text.split_whitespace().count() >= 8, "{text}");
        (text, ran)
    };
    let (g1, _) = predict("g1", &["prediction.prompt=alice was"]);
    let (g2, _) = predict("g2", &["prediction.prompt=alice was"]);
    assert_eq!(g1, g2, "greedy is deterministic");
    assert!(g1.starts_with("alice was"), "{g1}");
    let sample = [
        "prediction.strategy=sample",
        "prediction.seed=3",
        "prediction.temperature=1.5",
    ];
    let (s1, _) = predict(
        "s1",
        &[&sample[..], &["prediction.prompt=alice was"]].concat(),
    );
    let (s2, _) = predict(
        "s2",
        &[&sample[..], &["prediction.prompt=alice was"]].concat(),
    );
    assert_eq!(s1, s2, "sampling with a seed is repeatable");
    let (_, unk) = predict("unk", &["prediction.prompt=alice zzyzx"]);
    assert!(
        unk.stderr.contains("zzyzx") && unk.stderr.contains("<unk>"),
        "{}",
        unk.stderr
    );

    let empty = tmp.path().join("empty");
    let ran = textzoo(&with(
        &tiny(&empty),
        &["operation_mode=prediction", &model, "prediction.prompt="],
    ));
    assert_eq!(ran.code, 2, "{}", ran.all());
    assert!(ran.stderr.contains("prediction.prompt") && !empty.exists());
}

#[test]
fn damaged_and_foreign_model_files_are_refused_before_any_work() {
    let tmp = tempfile::tempdir().unwrap();
    let junk = tmp.path().join("junk.safetensors");
    std::fs::write(&junk, b"definitely not a model").unwrap();
    for mode in ["evaluation", "prediction"] {
        let run = tmp.path().join(mode);
        let model = format!("general.model_path={}", junk.display());
        let ran = textzoo(&with(
            &tiny(&run),
            &[&format!("operation_mode={mode}"), &model],
        ));
        assert_eq!(ran.code, 2, "{}", ran.all());
        assert!(
            ran.stderr.contains("junk.safetensors") && ran.stderr.contains("not a safetensors"),
            "{}",
            ran.stderr
        );
        assert!(!run.exists());
    }
}

/// Models of other tools (Keras, ONNX, TFLite) are refused with their format's name and what
/// general.model_path accepts, recognised by content even when renamed, else by extension.
#[test]
fn models_of_other_tools_are_refused_by_name_and_by_content() {
    let tmp = tempfile::tempdir().unwrap();
    let onnx = std::fs::read(
        workspace_root().join("crates/textzoo-cli/tests/fixtures/foreign/tiny_relu.onnx"),
    )
    .unwrap();
    let mut h5 = b"\x89HDF\r\n\x1a\n".to_vec();
    h5.extend([0u8; 64]);
    let cases: [(&str, Vec<u8>, &str); 7] = [
        ("model.onnx", onnx.clone(), "ONNX"),
        ("renamed.safetensors", onnx, "ONNX"),
        ("model.h5", h5.clone(), "Keras HDF5"),
        ("weights.bin", h5, "Keras HDF5"),
        (
            "model.keras",
            b"PK\x03\x04\x14\x00\x00\x00".to_vec(),
            ".keras",
        ),
        (
            "model.tflite",
            b"\x1c\x00\x00\x00TFL3\x00\x00".to_vec(),
            "TensorFlow Lite",
        ),
        ("empty.tflite", Vec::new(), "TensorFlow Lite"),
    ];
    for (i, (name, bytes, format)) in cases.iter().enumerate() {
        let file = tmp.path().join(name);
        std::fs::write(&file, bytes).unwrap();
        let model = format!("general.model_path={}", file.display());
        let mode = ["operation_mode=prediction", "operation_mode=chain_qd"][i % 2];
        let run = tmp.path().join(format!("run_{i}"));
        let ran = textzoo(&with(&tiny(&run), &[mode, &model]));
        assert_eq!(ran.code, 2, "{name}: {}", ran.all());
        for needle in [*name, *format, "cannot import", "model.safetensors"] {
            assert!(
                ran.stderr.contains(needle),
                "{name}: {needle}: {}",
                ran.stderr
            );
        }
        assert!(!run.exists(), "{name}");
    }
}

#[test]
fn ctrl_c_writes_a_checkpoint_that_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let mut args = tiny(&run);
    args.retain(|a| !a.starts_with("training.max_steps"));
    args.extend([
        "operation_mode=training".into(),
        "training.max_steps=1000000".into(),
        "training.checkpoint_interval=0".into(),
        "training.early_stopping.enabled=false".into(),
    ]);
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_textzoo"))
        .args(&args)
        .current_dir(workspace_root())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let log = run.join("training_log.csv");
    let started = std::time::Instant::now();
    while std::fs::read_to_string(&log)
        .map(|s| s.lines().count())
        .unwrap_or(0)
        < 5
    {
        assert!(started.elapsed().as_secs() < 60, "training did not start");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let killed = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let out: Ran = child.wait_with_output().unwrap().into();
    assert_eq!(out.code, 130, "{}", out.all());
    assert!(out.stderr.contains("checkpoint written"), "{}", out.stderr);
    let checkpoint = run.join("saved_models/checkpoints/last.safetensors");
    assert!(checkpoint.exists());
    assert!(run.join("metrics.json").exists());

    let resumed = tmp.path().join("resumed");
    let steps_done = std::fs::read_to_string(&log).unwrap().lines().count() - 1;
    let max = format!("training.max_steps={}", steps_done + 2);
    let from = format!("training.resume_training_from={}", checkpoint.display());
    let ran = textzoo(&with(
        &tiny(&resumed),
        &["operation_mode=training", &max, &from],
    ));
    assert_eq!(ran.code, 0, "{}", ran.all());
    assert_eq!(
        losses(&resumed).len(),
        2,
        "resume continues from the interrupted step"
    );
}

/// The default `model.tie_embeddings: true` works for gru/lstm whatever their sizes: a state
/// size other than the embedding's unties the head, with a note in the log and metrics.json.
#[test]
fn recurrent_models_train_with_the_default_tie_setting() {
    let ran = textzoo(&["--cfg", "model.name=gru"]);
    assert_eq!(ran.code, 0, "{}", ran.all());
    let tmp = tempfile::tempdir().unwrap();
    for name in ["gru", "lstm"] {
        let run = tmp.path().join(name);
        let ran = train(
            &run,
            &[
                &format!("model.name={name}"),
                "model.hidden_dim=24",
                "model.tie_embeddings=true",
            ],
        );
        let m = metrics(&run);
        assert_eq!(m["training"]["tie_embeddings"], false, "{name}");
        let note = m["training"]["tie_embeddings_note"].as_str().unwrap();
        assert!(note.contains("untied") && note.contains("24"), "{note}");
        assert!(ran.all().contains(note), "{}", ran.all());
    }
    // Equal sizes tie, without a note.
    let run = tmp.path().join("tied");
    train(&run, &["model.name=gru", "model.tie_embeddings=true"]);
    let m = metrics(&run);
    assert_eq!(m["training"]["tie_embeddings"], true);
    assert!(m["training"].get("tie_embeddings_note").is_none());
}

/// Distillation from a teacher of another architecture: the run records the teacher and its
/// settings, the teacher changes the trajectory, and the same seed gives the same losses.
#[test]
fn a_student_distils_from_a_teacher_of_any_kind() {
    let tmp = tempfile::tempdir().unwrap();
    let teacher_run = tmp.path().join("teacher");
    train(&teacher_run, &["model.name=lstm", "training.max_steps=4"]);
    let teacher = teacher_run.join("saved_models/model.safetensors");
    let teacher_arg = format!("training.distillation.teacher_path={}", teacher.display());
    let student = ["model.name=tiny_gpt", "training.max_steps=4"];
    let plain = tmp.path().join("plain");
    train(&plain, &student);
    let kd = [
        &student[..],
        &[
            teacher_arg.as_str(),
            "training.distillation.alpha=0.7",
            "training.distillation.temperature=2.5",
        ],
    ]
    .concat();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let ran = train(&a, &kd);
    assert!(ran.all().contains("distilling from"), "{}", ran.all());
    train(&b, &kd);
    assert_eq!(losses(&a), losses(&b), "same seed, same distilled losses");
    assert_ne!(losses(&a), losses(&plain), "the teacher changes the loss");
    let d = &metrics(&a)["training"]["distillation"];
    assert_eq!(d["alpha"], 0.7);
    assert_eq!(d["temperature"], 2.5);
    assert_eq!(d["teacher_model"], "lstm");
    assert_eq!(d["teacher_path"], teacher.display().to_string());
    assert!(
        d["teacher_checksum"]
            .as_str()
            .unwrap()
            .starts_with("xxh3-64:"),
        "{d}"
    );
    assert!(metrics(&plain)["training"].get("distillation").is_none());

    // A tiny_bert_generator teacher predicts only a window's last token: a causal student is
    // distilled there; and a tiny_bert_generator student learns from a causal teacher.
    let bert_run = tmp.path().join("bert_teacher");
    train(
        &bert_run,
        &["model.name=tiny_bert_generator", "training.max_steps=2"],
    );
    let bert = format!(
        "training.distillation.teacher_path={}",
        bert_run.join("saved_models/model.safetensors").display()
    );
    train(
        &tmp.path().join("from_bert"),
        &["model.name=gru", "training.max_steps=2", &bert],
    );
    train(
        &tmp.path().join("bert_student"),
        &[
            "model.name=tiny_bert_generator",
            "training.max_steps=2",
            &teacher_arg,
        ],
    );
}

/// Every unusable teacher or setting is exit 2 before the run directory exists, with a
/// message naming what is wrong.
#[test]
fn unusable_teachers_and_settings_are_refused_before_any_work() {
    let tmp = tempfile::tempdir().unwrap();
    let teacher_run = tmp.path().join("teacher");
    train(&teacher_run, &["training.max_steps=2"]);
    let teacher = teacher_run.join("saved_models/model.safetensors");
    let quantized = tmp.path().join("quantized");
    let ran = textzoo(&with(
        &tiny(&quantized),
        &[
            "operation_mode=quantization",
            &format!("general.model_path={}", teacher.display()),
        ],
    ));
    assert_eq!(ran.code, 0, "{}", ran.all());
    let int8 = quantized.join("quantized_models/model_int8.safetensors");
    let path = |p: &Path| format!("training.distillation.teacher_path={}", p.display());
    let good = path(&teacher);
    let cases: Vec<(Vec<String>, Vec<&str>)> = vec![
        (
            vec![good.clone(), "preprocessing.vocab_size=200".into()],
            vec![
                "tokenizer",
                "300 tokens",
                "200 tokens",
                "preprocessing.tokenizer_path",
            ],
        ),
        (
            vec![good.clone(), "preprocessing.tokenizer=char".into()],
            vec!["tokenizer", "char"],
        ),
        (vec![path(&int8)], vec!["int8", "float model"]),
        (
            vec![path(&tmp.path().join("none.safetensors"))],
            vec!["training.distillation.teacher_path", "none.safetensors"],
        ),
        (
            vec![good.clone(), "training.distillation.alpha=1.5".into()],
            vec!["training.distillation.alpha", "[0, 1]"],
        ),
        (
            vec![good.clone(), "training.distillation.temperature=0".into()],
            vec!["training.distillation.temperature", "positive"],
        ),
        (
            vec![good.clone(), "model.seq_len=12".into()],
            vec!["window", "model.seq_len"],
        ),
    ];
    for (i, (extra, words)) in cases.iter().enumerate() {
        let run = tmp.path().join(format!("refused_{i}"));
        let base = tiny(&run);
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        let ran = textzoo(&with(
            &base,
            &[&["operation_mode=training"], &extra[..]].concat(),
        ));
        assert_eq!(ran.code, 2, "{extra:?}: {}", ran.all());
        for w in words {
            assert!(
                ran.stderr.contains(w),
                "{extra:?}: `{w}` not in {}",
                ran.stderr
            );
        }
        assert!(!run.exists(), "{extra:?}: run directory created");
    }
}

/// The `checksum` of a model file's tensor data, from its safetensors header.
fn data_checksum(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    header["__metadata__"]["checksum"]
        .as_str()
        .unwrap()
        .to_string()
}

/// README "Determinism": on one machine the thread count changes no bit — the same float and
/// int8 model files (tensor checksums), the same losses in every training-log row and the same
/// float and int8 validation losses, for a Transformer and a recurrent model.
#[test]
fn thread_counts_change_no_bit_of_training_quantization_or_evaluation() {
    let tmp = tempfile::tempdir().unwrap();
    for kind in ["tiny_gpt", "lstm"] {
        let mut seen: Vec<(Vec<String>, [String; 2], [u64; 2])> = Vec::new();
        for threads in [1, 2, 3] {
            let run = tmp.path().join(format!("{kind}_{threads}"));
            let model = format!("model.name={kind}");
            let t = format!("general.num_threads={threads}");
            let ran = textzoo(&with(
                &tiny(&run),
                &[
                    "operation_mode=chain_tqe",
                    &model,
                    &t,
                    "training.max_steps=30",
                    "training.batch_size=8",
                    "mlflow.uri=",
                ],
            ));
            assert_eq!(ran.code, 0, "{}", ran.all());
            let m = metrics(&run);
            let bits = |section: &str| m[section]["val_loss"].as_f64().unwrap().to_bits();
            seen.push((
                losses(&run),
                [
                    data_checksum(&run.join("saved_models/model.safetensors")),
                    data_checksum(&run.join("quantized_models/model_int8.safetensors")),
                ],
                [bits("float"), bits("int8")],
            ));
        }
        assert!(
            seen.windows(2).all(|w| w[0] == w[1]),
            "{kind}: 1, 2 and 3 threads differ"
        );
    }
}
