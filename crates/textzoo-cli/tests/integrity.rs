//! Files textzoo reads back carry checksums: a model whose weight bytes changed on disk (header
//! intact, so it still parses) is refused before anything runs, through the real binary.

mod common;
use common::*;
use std::path::Path;

/// Flips one bit in the middle of the tensor data of the safetensors file at `path`, leaving
/// its header (and so its metadata, config and tokenizer) intact.
fn flip_data_byte(path: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    let header = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let start = 8 + header;
    let at = start + (bytes.len() - start) / 2;
    bytes[at] ^= 0x01;
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn a_model_with_flipped_weight_bytes_is_refused_before_the_run_starts() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("train");
    let base = tiny(&run);
    let ran = textzoo(&with(&base, &["operation_mode=training"]));
    assert_eq!(ran.code, 0, "{}", ran.all());
    let model = run.join("saved_models/model.safetensors");

    // Intact, the file evaluates.
    let eval = tmp.path().join("eval_ok");
    let path = format!("general.model_path={}", model.display());
    let ran = textzoo(&with(&tiny(&eval), &["operation_mode=evaluation", &path]));
    assert_eq!(ran.code, 0, "{}", ran.all());

    flip_data_byte(&model);
    let eval = tmp.path().join("eval_damaged");
    let ran = textzoo(&with(&tiny(&eval), &["operation_mode=evaluation", &path]));
    assert_eq!(ran.code, 2, "{}", ran.all());
    assert!(ran.stderr.contains("checksum mismatch"), "{}", ran.stderr);
    assert!(
        ran.stderr.contains(&model.display().to_string()),
        "{}",
        ran.stderr
    );
    assert!(
        !eval.exists(),
        "a refused model must not create a run directory"
    );
}

#[test]
fn a_changed_tokenizer_json_is_refused_when_read_back() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("pre");
    let ran = textzoo(&with(&tiny(&run), &["operation_mode=preprocessing"]));
    assert_eq!(ran.code, 0, "{}", ran.all());
    let tokenizer = run.join("tokenizer.json");
    assert!(run.join("tokenizer.json.checksum").is_file());
    let text = std::fs::read_to_string(&tokenizer).unwrap();
    std::fs::write(&tokenizer, text.replacen("\"<unk>\"", "\"<UNK>\"", 1)).unwrap();
    let reuse = format!("preprocessing.tokenizer_path={}", tokenizer.display());
    let again = tmp.path().join("again");
    let ran = textzoo(&with(
        &tiny(&again),
        &["operation_mode=preprocessing", &reuse],
    ));
    assert_eq!(ran.code, 2, "{}", ran.all());
    assert!(ran.stderr.contains("checksum mismatch"), "{}", ran.stderr);
    assert!(!again.exists(), "{}", ran.all());
}
