//! int8 quantization end to end through the real binary: chain_tqe, chain_eqe, prediction on
//! the int8 file, and the refusal to re-quantize an int8 file.

mod common;
use common::*;

fn metrics(run: &std::path::Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(run.join("metrics.json")).unwrap()).unwrap()
}

#[test]
fn chain_tqe_writes_the_int8_model_and_a_side_by_side_table() {
    let tmp = tempfile::tempdir().unwrap();
    for name in ["tiny_gpt", "tiny_bert_generator"] {
        let run = tmp.path().join(name);
        let base = tiny(&run);
        let model = format!("model.name={name}");
        let ran = textzoo(&with(&base, &["operation_mode=chain_tqe", &model]));
        assert_eq!(ran.code, 0, "{}", ran.all());
        let int8 = run.join("quantized_models/model_int8.safetensors");
        assert!(int8.is_file(), "{name}: no int8 model");
        let m = metrics(&run);
        for key in [
            "val_perplexity",
            "val_loss",
            "val_accuracy",
            "val_top5_accuracy",
            "model_size_bytes",
        ] {
            assert!(
                m["int8"][key].is_number(),
                "{name}: int8.{key} missing: {m}"
            );
            assert!(
                m["float"][key].is_number(),
                "{name}: float.{key} missing: {m}"
            );
        }
        assert!(m["int8"]["model_size_bytes"].as_u64() < m["float"]["model_size_bytes"].as_u64());
        assert!(m["int8"]["arena_bytes"].as_u64() > Some(0), "{m}");
        assert!(m["int8"]["kv_cache_bytes"].is_u64(), "{m}");
        assert!(ran.stdout.contains("float vs int8"), "{}", ran.stdout);
        assert!(ran.stdout.contains("perplexity change"), "{}", ran.stdout);

        // Prediction runs on the int8 file.
        let pred = tmp.path().join(format!("{name}_pred"));
        let path = format!("general.model_path={}", int8.display());
        let dir = format!("hydra.run.dir={}", pred.display());
        let ran = textzoo(&[
            "operation_mode=prediction",
            &path,
            &dir,
            "prediction.prompt=alice was",
            "prediction.max_tokens=12",
        ]);
        assert_eq!(ran.code, 0, "{}", ran.all());
        assert!(pred.join("generated.txt").is_file());

        // Re-quantizing the int8 file is refused (exit 2, clear message).
        let again = tmp.path().join(format!("{name}_again"));
        let dir = format!("hydra.run.dir={}", again.display());
        let ran = textzoo(&["operation_mode=quantization", &path, &dir]);
        assert_eq!(ran.code, 2, "{}", ran.all());
        assert!(
            ran.all().contains("cannot be quantized again"),
            "{}",
            ran.all()
        );
    }
}

#[test]
fn chain_eqe_evaluates_float_then_both() {
    let tmp = tempfile::tempdir().unwrap();
    let train = tmp.path().join("train");
    let base = tiny(&train);
    let ran = textzoo(&with(
        &base,
        &["operation_mode=training", "model.name=tiny_gpt"],
    ));
    assert_eq!(ran.code, 0, "{}", ran.all());
    let run = tmp.path().join("eqe");
    let base = tiny(&run);
    let path = format!(
        "general.model_path={}",
        train.join("saved_models/model.safetensors").display()
    );
    let ran = textzoo(&with(&base, &["operation_mode=chain_eqe", &path]));
    assert_eq!(ran.code, 0, "{}", ran.all());
    assert!(ran.stdout.contains("float vs int8"), "{}", ran.stdout);
    assert!(metrics(&run)["int8"]["val_perplexity"].is_number());
}

#[test]
fn chain_tqe_quantizes_gru_and_lstm() {
    let tmp = tempfile::tempdir().unwrap();
    for name in ["gru", "lstm"] {
        let run = tmp.path().join(name);
        let base = tiny(&run);
        let model = format!("model.name={name}");
        let ran = textzoo(&with(&base, &["operation_mode=chain_tqe", &model]));
        assert_eq!(ran.code, 0, "{}", ran.all());
        let int8 = run.join("quantized_models/model_int8.safetensors");
        assert!(int8.is_file(), "{name}: no int8 model");
        let m = metrics(&run);
        for key in [
            "val_perplexity",
            "val_loss",
            "val_accuracy",
            "model_size_bytes",
        ] {
            assert!(m["int8"][key].is_number(), "{name}: int8.{key}: {m}");
        }
        // Random-ish 3-step models: int8 perplexity within a few percent of float.
        let (f, q) = (
            m["float"]["val_perplexity"].as_f64().unwrap(),
            m["int8"]["val_perplexity"].as_f64().unwrap(),
        );
        assert!((q / f - 1.0).abs() < 0.05, "{name}: float {f}, int8 {q}");
        assert!(m["int8"]["arena_bytes"].as_u64() > Some(0), "{m}");
        assert!(ran.stdout.contains("float vs int8"), "{}", ran.stdout);
        let pred = tmp.path().join(format!("{name}_pred"));
        let ran = textzoo(&[
            "operation_mode=prediction",
            &format!("general.model_path={}", int8.display()),
            &format!("hydra.run.dir={}", pred.display()),
            "prediction.prompt=alice was",
            "prediction.max_tokens=12",
        ]);
        assert_eq!(ran.code, 0, "{}", ran.all());
        assert!(pred.join("generated.txt").is_file());
    }
}
