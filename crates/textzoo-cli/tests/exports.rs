//! Exports checked by independent runtimes: textzoo trains and quantizes tiny models with
//! `quantization.export: [onnx, tflite]`, then `tests/python/check_exports.py` runs the files
//! in onnxruntime (float and QDQ) and LiteRT (reference kernels, both TFLite flavours) and
//! compares them with textzoo's float model and `textzoo-rt` on validation windows.
//!
//! Needs the venv that `.ci/run` creates (`.venv/` with onnx, onnxruntime, ai-edge-litert), or
//! `TEXTZOO_PYTHON`.

mod common;
use common::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;
use textzoo::artifact::ModelFile;
use textzoo::lm::{Int8Lm, LanguageModel};

fn python() -> PathBuf {
    if let Ok(p) = std::env::var("TEXTZOO_PYTHON") {
        return PathBuf::from(p);
    }
    let venv = workspace_root().join(".venv/bin/python");
    assert!(
        venv.exists(),
        "Python verifiers missing: run `.ci/run` (creates .venv) or set TEXTZOO_PYTHON"
    );
    venv
}

/// Trains `kind` for a few steps and quantizes it, exporting both formats; returns the run.
fn trained(tmp: &Path, kind: &str, extra: &[&str]) -> PathBuf {
    let run = tmp.join(kind);
    let base = tiny(&run);
    let mut args = vec![
        "operation_mode=chain_tqe",
        "training.max_steps=30",
        "training.batch_size=8",
        "quantization.num_samples=32",
        "quantization.export=[onnx,tflite]",
    ];
    let model = format!("model.name={kind}");
    args.push(&model);
    args.extend_from_slice(extra);
    let ran = textzoo(&with(&base, &args));
    assert_eq!(ran.code, 0, "{}", ran.all());
    // The other TFLite flavour, from the int8 file with the export subcommand.
    let qdir = run.join("quantized_models");
    let int8 = qdir.join("model_int8.safetensors");
    let (model, out) = (int8.display().to_string(), qdir.display().to_string());
    let ran = textzoo(&[
        "export",
        &model,
        "--format",
        "tflite",
        "--include-embedding",
        "false",
        "-o",
        &out,
    ]);
    assert_eq!(ran.code, 0, "{}", ran.all());
    assert!(qdir.join("embedding.h").exists());
    run
}

/// Validation windows: consecutive `seq_len`-token windows from the end of the corpus.
fn windows(tokenizer: &textzoo::data::TextTokenizer, seq_len: usize, n: usize) -> Vec<Vec<u32>> {
    let text =
        std::fs::read_to_string(workspace_root().join("datasets/alice_in_wonderland.txt")).unwrap();
    let tail = &text[text.len() - 20_000..];
    let start = tail.find(' ').unwrap();
    let ids = tokenizer.encode(&tail[start..]).unwrap();
    ids.windows(seq_len)
        .step_by(seq_len)
        .take(n)
        .map(|w| w.to_vec())
        .collect()
}

/// Writes textzoo's reference outputs for the run's exports and returns the Python
/// measurements.
fn measure(run: &Path, n: usize) -> Value {
    let qdir = run.join("quantized_models");
    let float = match ModelFile::open(&run.join("saved_models/model.safetensors")).unwrap() {
        ModelFile::Float(f) => f,
        _ => panic!("float model expected"),
    };
    let int8 = match ModelFile::open(&qdir.join("model_int8.safetensors")).unwrap() {
        ModelFile::Int8(q) => q,
        _ => panic!("int8 model expected"),
    };
    let cfg = int8.model.config.clone();
    let ws = windows(&int8.tokenizer, cfg.seq_len, n);
    let rows = if cfg.kind.predicts_every_position() {
        cfg.seq_len
    } else {
        1
    };
    let mut fmodel = float.model;
    let mut lm = Int8Lm::new(int8.model.clone());
    let (mut fl, mut ql, mut x0) = (Vec::new(), Vec::new(), Vec::new());
    for w in &ws {
        fl.extend(fmodel.window_logits(w, 1, w.len()));
        ql.extend(lm.window_logits(w, 1, w.len()));
        x0.push(textzoo::export::tflite::embedded_window(&int8.model, w).unwrap());
    }
    let mut tflite = vec![json!({
        "name": "tflite_int8",
        "path": qdir.join("model_int8.tflite"),
        "inputs": ws,
    })];
    let no_emb = qdir.join("model_int8_no_embedding.tflite");
    if no_emb.exists() {
        tflite.push(json!({
            "name": "tflite_int8_no_embedding",
            "path": no_emb,
            "inputs": x0,
        }));
    }
    let reference = json!({
        "vocab_size": cfg.vocab_size,
        "rows": rows,
        "windows": ws,
        "float_logits": fl,
        "int8_logits": ql,
        "onnx_float": qdir.join("model_float.onnx"),
        "onnx_qdq": qdir.join("model_qdq.onnx"),
        "tflite": tflite,
    });
    let path = run.join("reference.json");
    std::fs::write(&path, reference.to_string()).unwrap();
    let out = Command::new(python())
        .arg(workspace_root().join("tests/python/check_exports.py"))
        .arg(&path)
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn f(v: &Value, path: &[&str]) -> f64 {
    let mut x = v;
    for p in path {
        x = &x[*p];
    }
    x.as_f64()
        .unwrap_or_else(|| panic!("{path:?} missing in {v}"))
}

/// The bounds every Transformer's exports are held to (measured values go to the report).
fn assert_agreement(kind: &str, m: &Value) {
    eprintln!("{kind}: {m:#}");
    // Float: the same graph in float32, different summation order.
    assert!(f(m, &["onnx_float", "max_abs_error"]) < 1e-3, "{kind}: {m}");
    assert_eq!(
        f(m, &["onnx_float", "greedy_agreement"]),
        1.0,
        "{kind}: {m}"
    );
    assert!(f(m, &["onnx_float", "opset"]) >= 17.0);
    // QDQ: float arithmetic between textzoo's quantization points; textzoo-rt's integer
    // softmax, layer norm and residual sums round differently, so an activation may land one
    // step away and the error grows through the blocks: bounded relative to the logits.
    let qdq_max = f(m, &["onnx_qdq", "max_abs_error"]);
    let logit = f(m, &["onnx_qdq", "max_abs_logit"]);
    assert!(
        qdq_max < 0.1 * logit,
        "{kind}: QDQ error {qdq_max} vs logits up to {logit}"
    );
    assert!(
        f(m, &["onnx_qdq", "greedy_agreement"]) >= 0.9,
        "{kind}: {m}"
    );
}

#[test]
fn tiny_gpt_exports_agree_with_textzoo_in_onnxruntime_and_litert() {
    let tmp = tempfile::tempdir().unwrap();
    let run = trained(tmp.path(), "tiny_gpt", &[]);
    let m = measure(&run, 16);
    assert_agreement("tiny_gpt", &m);
}

#[test]
fn tiny_bert_generator_exports_agree_with_textzoo_in_onnxruntime_and_litert() {
    let tmp = tempfile::tempdir().unwrap();
    let run = trained(tmp.path(), "tiny_bert_generator", &[]);
    let m = measure(&run, 16);
    assert_agreement("tiny_bert_generator", &m);
}
