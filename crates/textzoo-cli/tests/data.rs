//! Corpus preparation end to end: preprocessing statistics, caches, combination, hostile input.

mod common;
use common::*;
use std::path::Path;

fn preprocess(run: &Path, extra: &[&str]) -> Ran {
    let base = tiny(run);
    textzoo(&with(
        &base,
        &[&["operation_mode=preprocessing"], extra].concat(),
    ))
}

#[test]
fn preprocessing_prints_statistics_and_writes_tokenizer_and_cache() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let ran = preprocess(&run, &["dataset.test_split=0.05"]);
    assert_eq!(ran.code, 0, "{}", ran.all());
    for word in [
        "characters",
        "tokens",
        "coverage",
        "<unk>",
        "windows",
        "train",
        "validation",
        "test",
    ] {
        assert!(
            ran.stdout.contains(word),
            "stats lack {word}: {}",
            ran.stdout
        );
    }
    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("metrics.json")).unwrap()).unwrap();
    let p = &metrics["preprocessing"];
    assert_eq!(p["vocab_size"], 300);
    let train_tokens = p["train"]["tokens"].as_u64().unwrap();
    assert!(train_tokens > 20_000, "{p}");
    assert!(
        p["validation"]["tokens"].as_u64().unwrap() > 1000
            && p["test"]["tokens"].as_u64().unwrap() > 500
    );
    let cache = std::fs::metadata(run.join("data/train.u16")).unwrap().len();
    assert_eq!(cache, 2 * train_tokens);
    let tokenizer = std::fs::read_to_string(run.join("tokenizer.json")).unwrap();
    assert!(tokenizer.contains("WordLevel") && tokenizer.contains("<unk>"));
}

#[test]
fn every_tokenizer_kind_and_reuse_of_a_saved_tokenizer() {
    let tmp = tempfile::tempdir().unwrap();
    for kind in ["word", "char", "bpe"] {
        let run = tmp.path().join(kind);
        let ran = preprocess(&run, &[&format!("preprocessing.tokenizer={kind}")]);
        assert_eq!(ran.code, 0, "{kind}: {}", ran.all());
        assert!(
            ran.stdout.contains(&format!("tokenizer: {kind}")),
            "{}",
            ran.stdout
        );
    }
    let saved = tmp.path().join("char/tokenizer.json");
    let reuse = format!("preprocessing.tokenizer_path={}", saved.display());
    let ran = preprocess(
        &tmp.path().join("reuse"),
        &["preprocessing.tokenizer=char", &reuse],
    );
    assert_eq!(ran.code, 0, "{}", ran.all());
    assert_eq!(
        std::fs::read(tmp.path().join("reuse/tokenizer.json")).unwrap(),
        std::fs::read(&saved).unwrap()
    );
    let run = tmp.path().join("mismatch");
    let ran = preprocess(&run, &["preprocessing.tokenizer=word", &reuse]);
    assert_eq!(ran.code, 2, "{}", ran.all());
    assert!(
        ran.stderr.contains("`char` tokenizer") && ran.stderr.contains("tokenizer.json"),
        "{}",
        ran.stderr
    );
    assert!(!run.exists());
}

/// Each hostile input: exit 2, a message naming the file and the problem, nothing written.
#[test]
fn hostile_inputs_are_refused_without_writing_anything() {
    let tmp = tempfile::tempdir().unwrap();
    let write = |name: &str, bytes: &[u8]| {
        let p = tmp.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p.display().to_string()
    };
    let empty = write("empty.txt", b"");
    let blank = write("blank.txt", b"  \n\t\r\n  ");
    let bad_utf8 = write("latin1.txt", b"caf\xe9 au lait\n");
    let short = write("short.txt", b"to be or not\n");
    let not_tokenizer = write("tokenizer.json", b"{\"vocab\": []}");
    let cases: Vec<(Vec<String>, Vec<&str>)> = vec![
        (
            vec![format!("dataset.training_path={empty}")],
            vec!["empty.txt", "empty"],
        ),
        (
            vec![format!("dataset.training_path={blank}")],
            vec!["blank.txt", "whitespace"],
        ),
        (
            vec![format!("dataset.training_path={bad_utf8}")],
            vec!["latin1.txt", "UTF-8", "offset 3"],
        ),
        (
            vec![format!("dataset.training_path={short}")],
            vec!["short.txt", "fewer than one window"],
        ),
        (
            vec![format!("dataset.training_path={}", tmp.path().display())],
            vec!["directory"],
        ),
        (
            vec![format!("preprocessing.tokenizer_path={not_tokenizer}")],
            vec!["tokenizer.json", "not a tokenizer"],
        ),
        (
            vec!["preprocessing.vocab_size=2".into()],
            vec!["preprocessing.vocab_size", "special tokens"],
        ),
    ];
    for (i, (args, words)) in cases.iter().enumerate() {
        let run = tmp.path().join(format!("run{i}"));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let ran = preprocess(&run, &args);
        assert_eq!(ran.code, 2, "{args:?}: {}", ran.all());
        for w in words {
            assert!(
                ran.stderr.contains(w),
                "{args:?}: expected `{w}` in {}",
                ran.stderr
            );
        }
        assert!(!run.exists(), "{args:?} created the run directory");
    }
}

#[test]
fn crlf_tabs_non_ascii_and_long_lines_are_normal_input() {
    let tmp = tempfile::tempdir().unwrap();
    let mut text = String::new();
    for i in 0..400 {
        text.push_str(&format!(
            "Zoë\tsaid «bonjour» to the café owner, number {i}.\r\n"
        ));
    }
    text.push_str(&"a very long line ".repeat(20_000));
    let path = tmp.path().join("odd.txt");
    std::fs::write(&path, &text).unwrap();
    let run = tmp.path().join("run");
    let ran = preprocess(
        &run,
        &[&format!("dataset.training_path={}", path.display())],
    );
    assert_eq!(ran.code, 0, "{}", ran.all());
}

#[test]
fn combine_corpus_merges_globs_with_normalisation() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("a.txt"), "Ｆirst\r\n\r\n\r\n\r\nline\r\n").unwrap();
    std::fs::write(tmp.path().join("b.txt"), "SECOND\n").unwrap();
    let out = tmp.path().join("combined.txt");
    let pattern = format!("{}/*.txt", tmp.path().display());
    let out_arg = out.display().to_string();
    let ran = textzoo(&[
        "combine-corpus",
        "--output",
        &out_arg,
        "--normalize",
        "nfkc",
        "--lowercase",
        "--collapse-blank-lines",
        &pattern,
    ]);
    assert_eq!(ran.code, 0, "{}", ran.all());
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        "first\n\nline\n\nsecond\n"
    );
    assert!(ran.stdout.contains("combined 2 files"));
    let bad = tmp.path().join("bad.bin");
    std::fs::write(&bad, b"\xff\xfe").unwrap();
    let ran = textzoo(&["combine-corpus", "-o", &out_arg, &bad.display().to_string()]);
    assert_eq!(ran.code, 2, "{}", ran.all());
    assert!(ran.stderr.contains("bad.bin") && ran.stderr.contains("UTF-8"));
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        "first\n\nline\n\nsecond\n",
        "output untouched"
    );
}

#[test]
fn bundled_datasets_match_their_recorded_checksums() {
    let root = workspace_root();
    let source = std::fs::read_to_string(root.join("datasets/Source.md")).unwrap();
    for name in [
        "tinyshakespeare.txt",
        "moby_dick.txt",
        "pride_and_prejudice.txt",
        "alice_in_wonderland.txt",
    ] {
        let line = source
            .lines()
            .find(|l| l.starts_with(&format!("| {name}")))
            .unwrap();
        let bytes = std::fs::read(root.join("datasets").join(name)).unwrap();
        assert!(
            line.contains(&format!("| {} |", bytes.len())),
            "{name}: size differs from Source.md"
        );
    }
}
