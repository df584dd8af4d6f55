//! Property tests of the text inputs a user hands textzoo: YAML configurations and
//! `tokenizer.json` files. Whatever the text, it loads or is an error (exit code 2 where the
//! loader returns the library's error); nothing panics.

use chrono::{DateTime, Local, TimeZone};
use proptest::prelude::*;
use serde_json::Value;
use std::sync::OnceLock;
use textzoo::config::{self, ConfigSource, Preprocessing, TokenizerKind};
use textzoo::data::TextTokenizer;

const USER_CONFIG: &str = include_str!("../../../user_config.yaml");

fn now() -> DateTime<Local> {
    Local
        .with_ymd_and_hms(2026, 12, 1, 10, 0, 0)
        .single()
        .unwrap_or_else(Local::now)
}

fn cfg(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Applies `edits` to `text`: each deletes up to `len` characters at `pos` and inserts
/// `snippet` there (positions wrap and snap to character boundaries).
fn mutate(text: &str, edits: &[(usize, usize, String)]) -> String {
    let mut s = text.to_string();
    for (pos, len, snippet) in edits {
        let mut at = pos % (s.len() + 1);
        while !s.is_char_boundary(at) {
            at -= 1;
        }
        let mut end = (at + len).min(s.len());
        while !s.is_char_boundary(end) {
            end += 1;
        }
        s.replace_range(at..end, snippet);
    }
    s
}

fn edits(snippets: &'static [&'static str]) -> impl Strategy<Value = Vec<(usize, usize, String)>> {
    let snippet = prop_oneof![
        4 => prop::sample::select(snippets).prop_map(str::to_string),
        1 => any::<String>(),
    ];
    prop::collection::vec((any::<usize>(), 0usize..8, snippet), 1..6)
}

const YAML_SNIPPETS: &[&str] = &[
    "",
    ":",
    ": ",
    "- ",
    "\n",
    "\n  ",
    "\n    x: 1",
    "{",
    "}",
    "[",
    "]",
    ",",
    "'",
    "\"",
    "#",
    "&a ",
    "*a",
    "<<: *a",
    "!!binary ",
    "!!str ",
    "? ",
    "~",
    "null",
    "true",
    "no",
    "0x1F",
    "1e999",
    "-1",
    "99999999999999999999999",
    ".nan",
    "${",
    "}",
    "${general.project_name}",
    "${model}",
    "${now:%Y}",
    "${now:%Q}",
    "${nope.x}",
    "|\n  ",
    ">-\n  ",
    "\t",
    "---\n",
    "...\n",
    "%YAML 1.2\n",
];

const JSON_SNIPPETS: &[&str] = &[
    "",
    "null",
    "-1",
    "0",
    "1e400",
    "18446744073709551616",
    "\"\"",
    "{}",
    "[]",
    ",",
    ":",
    "\"<unk>\"",
    "\"<pad>\"",
    "\"BPE\"",
    "\"WordLevel\"",
    "\"Fuse\"",
    "\"Split\"",
    "\"Regex\"",
    "\"(\"",
    "\"\\\\\"",
    "\"\\u0000\"",
    "true",
];

proptest! {
    #![proptest_config(cfg(1000))]

    #[test]
    fn any_yaml_text_loads_or_is_a_config_error(text in any::<String>()) {
        let _ = config::parse_str(&text, "fuzz", now());
    }

    #[test]
    fn yaml_like_text_loads_or_is_a_config_error(
        text in "([a-z_]{1,8}:( |\n  )?|- |[\\[\\]{},:&*!|>?'\"#~\n -]|\\$\\{[a-z_.]{0,12}\\}?|[0-9.e+-]{1,6}){0,40}",
    ) {
        let _ = config::parse_str(&text, "fuzz", now());
    }

    #[test]
    fn mutated_user_config_loads_or_is_a_config_error(e in edits(YAML_SNIPPETS)) {
        let _ = config::parse_str(&mutate(USER_CONFIG, &e), "fuzz", now());
    }
}

proptest! {
    #![proptest_config(cfg(100))]

    /// The whole `config::load`: file, overrides, interpolation, typing, ranges.
    #[test]
    fn mutated_config_files_and_overrides_load_or_are_errors(
        e in edits(YAML_SNIPPETS),
        overrides in prop::collection::vec("[a-z_.]{1,24}=[a-z0-9_.${}\\[\\],:-]{0,12}", 0..3),
    ) {
        let dir = tempfile::tempdir()?;
        std::fs::write(dir.path().join("c.yaml"), mutate(USER_CONFIG, &e))?;
        let source = ConfigSource {
            config_path: Some(dir.path().to_path_buf()),
            config_name: Some("c".into()),
            overrides,
        };
        let _ = config::load(&source, now());
    }
}

/// Deeply nested YAML is a recursion hazard for the parser and for the merge and key walks
/// that follow it.
#[test]
fn deeply_nested_yaml_is_an_error_not_a_stack_overflow() {
    for depth in [100, 10_000, 200_000] {
        for (open, close) in [("[", "]"), ("{a: ", "}")] {
            let text = format!("general: {}1{}", open.repeat(depth), close.repeat(depth));
            let _ = config::parse_str(&text, "deep", now());
        }
        let block: String = (0..depth.min(10_000))
            .map(|i| format!("{}k:\n", " ".repeat(i)))
            .collect();
        let _ = config::parse_str(&format!("general:\n{block}"), "deep", now());
    }
}

/// Trained once: a tokenizer of each kind, as JSON.
fn tokenizers() -> &'static [(TokenizerKind, String)] {
    static CELL: OnceLock<Vec<(TokenizerKind, String)>> = OnceLock::new();
    CELL.get_or_init(|| {
        let text = "to be or not to be, that is the question.\nwhether 'tis nobler in the mind\n";
        [TokenizerKind::Word, TokenizerKind::Char, TokenizerKind::Bpe]
            .into_iter()
            .map(|kind| {
                let settings = Preprocessing {
                    tokenizer: kind,
                    vocab_size: 300,
                    ..Preprocessing::default()
                };
                let t = TextTokenizer::train(&settings, text).expect("trains");
                (kind, t.to_json())
            })
            .collect()
    })
}

/// Every JSON pointer of `v`, for structural edits.
fn pointers(v: &Value, at: String, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => m.iter().for_each(|(k, x)| {
            pointers(
                x,
                format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")),
                out,
            )
        }),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .for_each(|(i, x)| pointers(x, format!("{at}/{i}"), out)),
        _ => {}
    }
    out.push(at);
}

fn json_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        prop::sample::select(vec![0u64, 1, 2, u32::MAX as u64, u64::MAX]).prop_map(Value::from),
        any::<String>().prop_map(Value::from),
        prop::sample::select(JSON_SNIPPETS)
            .prop_map(|s| serde_json::from_str(s).unwrap_or(Value::Null)),
        Just(serde_json::json!({})),
        Just(serde_json::json!([])),
        Just(
            serde_json::json!({"type": "Split", "pattern": {"Regex": "("}, "behavior": "Isolated", "invert": false})
        ),
    ]
}

/// Loads `json` both ways: as text and as a file of the expected kind.
fn load_both(kind: TokenizerKind, json: &str) -> Result<(), TestCaseError> {
    let _ = TextTokenizer::from_json(json);
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("tokenizer.json");
    std::fs::write(&path, json)?;
    if let Err(e) = TextTokenizer::load(&path, kind) {
        prop_assert_eq!(e.exit_code(), 2, "{}", e);
    }
    Ok(())
}

proptest! {
    #![proptest_config(cfg(1500))]

    #[test]
    fn any_text_is_a_tokenizer_or_an_error(text in any::<String>()) {
        let _ = TextTokenizer::from_json(&text);
    }

    #[test]
    fn text_edited_tokenizers_load_or_are_errors(which in 0usize..3, e in edits(JSON_SNIPPETS)) {
        let (kind, json) = &tokenizers()[which];
        load_both(*kind, &mutate(json, &e))?;
    }

    #[test]
    fn structurally_edited_tokenizers_load_or_are_errors(
        which in 0usize..3,
        changes in prop::collection::vec((any::<prop::sample::Index>(), json_value()), 1..4),
    ) {
        let (kind, json) = &tokenizers()[which];
        let mut tree: Value = serde_json::from_str(json)?;
        for (index, value) in changes {
            let mut all = Vec::new();
            pointers(&tree, String::new(), &mut all);
            let target = index.get(&all).clone();
            if let Some(slot) = tree.pointer_mut(&target) {
                *slot = value;
            }
        }
        load_both(*kind, &tree.to_string())?;
    }
}
