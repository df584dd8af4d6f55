//! Interoperability with the Python ecosystem: a textzoo `tokenizer.json` loads unchanged in
//! HuggingFace's Python `tokenizers` and gives the same ids.
//!
//! Needs the venv that `.ci/run` creates (`.venv/`), or `TEXTZOO_PYTHON` pointing to a Python
//! with `tokenizers` installed.

mod common;
use common::*;
use std::process::Command;

#[test]
fn python_tokenizers_loads_our_files_and_gives_the_same_ids() {
    let tmp = tempfile::tempdir().unwrap();
    let sample = tmp.path().join("sample.txt");
    let text = "First Citizen:\nBefore we proceed any further, hear me speak.\nZoë's café — «naïve» façade!\n\tTabs\tand   spaces\n";
    std::fs::write(&sample, text).unwrap();
    for (kind, pattern) in [
        ("word", "unicode"),
        ("word", "keras"),
        ("char", "unicode"),
        ("bpe", "unicode"),
    ] {
        let run = tmp.path().join(format!("{kind}_{pattern}"));
        let base = tiny(&run);
        let ran = textzoo(&with(
            &base,
            &[
                "operation_mode=preprocessing",
                &format!("preprocessing.tokenizer={kind}"),
                &format!("preprocessing.word_pattern={pattern}"),
                "preprocessing.vocab_size=500",
            ],
        ));
        assert_eq!(ran.code, 0, "{}", ran.all());
        let tokenizer = run.join("tokenizer.json");
        let out = Command::new(python())
            .arg(workspace_root().join("tests/python/tokenizer_ids.py"))
            .arg(&tokenizer)
            .arg(&sample)
            .output()
            .expect("run python");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let py: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let ours = textzoo::data::TextTokenizer::load(&tokenizer, kind_of(kind)).unwrap();
        let ids: Vec<u64> = ours
            .encode(text)
            .unwrap()
            .into_iter()
            .map(u64::from)
            .collect();
        let py_ids: Vec<u64> = py["ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect();
        assert_eq!(py_ids, ids, "{kind}/{pattern}: Python and textzoo disagree");
        assert_eq!(
            py["vocab_size"].as_u64().unwrap() as usize,
            ours.vocab_size()
        );
        assert!(ids.len() > 10);
    }
}

fn kind_of(kind: &str) -> textzoo::config::TokenizerKind {
    match kind {
        "word" => textzoo::config::TokenizerKind::Word,
        "char" => textzoo::config::TokenizerKind::Char,
        _ => textzoo::config::TokenizerKind::Bpe,
    }
}
