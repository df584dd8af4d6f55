//! The bad-input suite: hostile configurations, corpora, model files, prompts, sampling
//! settings, boards and environments, one table row each, through the real binary.
//!
//! One checker holds every row to the same invariants: the documented exit code (2 for
//! invalid configuration or input, 1 for a failure while working, 0 where the input is
//! accepted by design), the message fragments that name the problem, no panic, exactly one
//! `error:` line, no run directory for exit 2, every file that existed before the run
//! byte-identical after it, and no temporary or partial file left anywhere.

mod common;
use common::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One case: the arguments after the tiny configuration, the exit code, and what the user
/// must read (on stderr for failures; anywhere in the output for accepted inputs).
struct Case {
    name: &'static str,
    args: Vec<String>,
    code: i32,
    says: Vec<&'static str>,
    /// For accepted inputs: a file of the run directory and the text it must start with.
    writes: Option<(&'static str, String)>,
}

fn case(name: &'static str, args: &[&str], code: i32, says: &[&'static str]) -> Case {
    Case {
        name,
        args: args.iter().map(|s| s.to_string()).collect(),
        code,
        says: says.to_vec(),
        writes: None,
    }
}

/// The files every case may read, written once: models (good, damaged, foreign), corpora,
/// configuration files, folders. The suite checks that no case changes any of them.
struct Inputs {
    dir: PathBuf,
}

impl Inputs {
    fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    fn create(root: &Path) -> Inputs {
        let dir = root.join("inputs");
        std::fs::create_dir_all(&dir).unwrap();
        // A previous run: a float model, its checkpoint and its int8 model (tiny_gpt), and an
        // int8 tiny_bert_generator, which refuses an empty prompt.
        for (run, model) in [
            ("prev_gpt", "tiny_gpt"),
            ("prev_bert", "tiny_bert_generator"),
        ] {
            let name = format!("model.name={model}");
            let ran = textzoo(&with(
                &tiny(&dir.join(run)),
                &["operation_mode=chain_tqe", &name, "mlflow.uri="],
            ));
            assert_eq!(ran.code, 0, "{}", ran.all());
        }
        // A float model too large for the STM32H7's 2 MiB of flash once quantized.
        let ran = textzoo(&with(
            &tiny(&dir.join("prev_big")),
            &[
                "operation_mode=training",
                "model.embed_dim=256",
                "model.ffn_dim=1024",
                "model.num_layers=4",
                "model.num_heads=4",
                "preprocessing.vocab_size=3000",
                "training.max_steps=1",
                "mlflow.uri=",
            ],
        ));
        assert_eq!(ran.code, 0, "{}", ran.all());
        let i = Inputs { dir };
        let w = |name: &str, bytes: &[u8]| std::fs::write(i.dir.join(name), bytes).unwrap();
        let float = std::fs::read(i.dir.join("prev_gpt/saved_models/model.safetensors")).unwrap();
        w("truncated.safetensors", &float[..float.len() / 2]);
        let mut flipped = float.clone();
        let header = u64::from_le_bytes(flipped[..8].try_into().unwrap()) as usize;
        let at = 8 + header + (flipped.len() - 8 - header) / 2;
        flipped[at] ^= 0x10;
        w("flipped.safetensors", &flipped);
        w("foreign.safetensors", b"{\"not\": \"a model\"}\n");
        // A well-formed safetensors file that is not a textzoo model.
        let head = br#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#;
        let mut other = (head.len() as u64).to_le_bytes().to_vec();
        other.extend_from_slice(head);
        other.extend_from_slice(&[0; 8]);
        w("other_tool.safetensors", &other);
        w("empty.txt", b"");
        w("whitespace.txt", b" \n\t\n  \n");
        let binary: Vec<u8> = (0..4096u32)
            .map(|k| (k.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        w("binary.bin", &binary);
        w("one_word.txt", b"hello\n");
        w("afile.txt", b"just a file\n");
        std::fs::create_dir_all(i.dir.join("adir")).unwrap();
        w("adir/inside.txt", b"x\n");
        std::fs::create_dir_all(i.dir.join("foreign_project")).unwrap();
        w("foreign_project/notes.txt", b"my own notes\n");
        // Configuration files.
        w(
            "dup.yaml",
            b"general:\n  project_name: a\ngeneral:\n  project_name: b\n",
        );
        w("dup_nested.yaml", b"training:\n  epochs: 1\n  epochs: 2\n");
        w("recursive.yaml", b"a: &x [*x]\n");
        let mut bomb = String::from("a0: &a0 [x,x,x,x,x,x,x,x,x,x]\n");
        for k in 1..10 {
            let refs = vec![format!("*a{}", k - 1); 10].join(",");
            bomb.push_str(&format!("a{k}: &a{k} [{refs}]\n"));
        }
        w("bomb.yaml", bomb.as_bytes());
        w("malformed.yaml", b"model: \"unterminated\n");
        w("list.yaml", b"- a\n- b\n");
        w("wrong_type.yaml", b"model:\n  dropout: lots\n");
        w(
            "unknown_deep.yaml",
            b"model:\n  dropout: 0.1\n  extra:\n    deep: 1\n",
        );
        w("binary.yaml", &binary);
        i
    }
}

/// Every file under `dir` and a hash of its bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (u64, u64)> {
    use std::hash::{Hash, Hasher};
    let mut out = BTreeMap::new();
    for path in walk(dir) {
        let bytes = std::fs::read(&path).unwrap();
        let mut h = std::collections::hash_map::DefaultHasher::new();
        bytes.hash(&mut h);
        out.insert(path, (bytes.len() as u64, h.finish()));
    }
    out
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// The invariants every case keeps; returns what broke (empty when all hold).
fn check(root: &Path, inputs: &Inputs, case: &Case) -> Vec<String> {
    let run = root.join("runs").join(case.name);
    let before = snapshot(&inputs.dir);
    // Subcommands take their own arguments; runs take the tiny configuration first.
    let subcommand = matches!(
        case.args.first().map(String::as_str),
        Some("model-to-c" | "combine-corpus")
    );
    let mut args = if subcommand { Vec::new() } else { tiny(&run) };
    if !subcommand {
        args.push("mlflow.uri=".into());
    }
    args.extend(case.args.iter().cloned());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let ran = textzoo(&args);
    record_row(case, &ran);
    let mut broke = Vec::new();
    let mut fail = |what: String| broke.push(format!("[{}] {what}", case.name));
    if ran.code != case.code {
        fail(format!("exit {} (expected {})", ran.code, case.code));
    }
    let text = if case.code == 0 {
        ran.all()
    } else {
        ran.stderr.clone()
    };
    for fragment in &case.says {
        if !text.contains(fragment) {
            fail(format!("message lacks `{fragment}`"));
        }
    }
    if ran.all().contains("panicked") || ran.all().contains("RUST_BACKTRACE") {
        fail("panicked".into());
    }
    let errors = ran
        .stderr
        .lines()
        .filter(|l| l.starts_with("error:"))
        .count();
    if errors != usize::from(case.code != 0) {
        fail(format!("{errors} `error:` lines"));
    }
    match case.code {
        2 if !is_absent_or_empty(&run) => fail("exit 2 left a run directory".into()),
        0 if !run.join("metrics.json").is_file() => fail("no metrics.json".into()),
        _ => {}
    }
    if let Some((file, start)) = &case.writes {
        let written = std::fs::read_to_string(run.join(file)).unwrap_or_default();
        if !written.starts_with(start.as_str()) {
            fail(format!("{file} does not start with the expected text"));
        }
    }
    if snapshot(&inputs.dir) != before {
        fail("a file that existed before the run changed".into());
    }
    for path in walk(root) {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.contains(".tmp") {
            fail(format!("temporary file left: {}", path.display()));
        }
    }
    for model in walk(&run).iter().filter(|p| {
        p.extension()
            .is_some_and(|e| e == "safetensors" && !p.starts_with(&inputs.dir))
    }) {
        if let Err(e) = textzoo::artifact::ModelFile::open(model) {
            fail(format!("partial model {}: {e}", model.display()));
        }
    }
    if !broke.is_empty() {
        broke.push(format!("  output of {}:\n{}", case.name, ran.all()));
    }
    broke
}

/// With `TEXTZOO_BAD_INPUT_TABLE=FILE`, appends the case, its exit code and the message the
/// user saw (the `error:` line, else the first warning) as a Markdown row: the closing note's
/// table is copied from real runs, not retyped.
fn record_row(case: &Case, ran: &Ran) {
    let Some(file) = std::env::var_os("TEXTZOO_BAD_INPUT_TABLE") else {
        return;
    };
    let message = ran
        .stderr
        .lines()
        .find(|l| l.starts_with("error:"))
        .or_else(|| ran.stderr.lines().find(|l| l.contains("WARN")))
        .map_or("(accepted, no message)".to_string(), |l| {
            let l: String = l.trim().chars().take(400).collect();
            l.replace('|', "\\|")
        });
    let row = format!(
        "| {} | {} | `{}` |\n",
        case.name,
        ran.code,
        message.replace('`', "'")
    );
    use std::io::Write;
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)
    {
        let _ = f.write_all(row.as_bytes());
    }
}

fn cases(i: &Inputs) -> Vec<Case> {
    let cfg = |name: &str| -> Vec<String> {
        vec![
            "--config-path".into(),
            i.dir.display().to_string(),
            "--config-name".into(),
            name.into(),
        ]
    };
    let with_cfg = |name, file: &str, code, says: &[&'static str]| Case {
        args: cfg(file),
        ..case(name, &[], code, says)
    };
    let float = format!(
        "general.model_path={}",
        i.path("prev_gpt/saved_models/model.safetensors")
    );
    let int8 = format!(
        "general.model_path={}",
        i.path("prev_gpt/quantized_models/model_int8.safetensors")
    );
    let bert8 = format!(
        "general.model_path={}",
        i.path("prev_bert/quantized_models/model_int8.safetensors")
    );
    let model = |file: &str| format!("general.model_path={}", i.path(file));
    let corpus = |file: &str| format!("dataset.training_path={}", i.path(file));
    let long_prompt = format!("prediction.prompt={}", vec!["alice"; 20_000].join(" "));
    let hostile = r#"prediction.prompt="\" %s %n \\ \x00 */ /* ??= \n \u0007 '""#;
    let predict = |name, extra: &[&str], code, says: &[&'static str]| {
        let mut args = vec!["operation_mode=prediction".to_string(), int8.clone()];
        args.extend(extra.iter().map(|s| s.to_string()));
        Case {
            args,
            ..case(name, &[], code, says)
        }
    };
    let owned = |args: Vec<String>, name, code, says: &[&'static str]| Case {
        args,
        ..case(name, &[], code, says)
    };
    let mut rows = vec![
        // YAML: malformed, duplicate keys, recursive and exponential aliases, not a mapping.
        with_cfg(
            "yaml_malformed",
            "malformed.yaml",
            2,
            &["malformed.yaml", "not valid YAML"],
        ),
        with_cfg(
            "yaml_duplicate_key",
            "dup.yaml",
            2,
            &["dup.yaml", "duplicate mapping key: general"],
        ),
        with_cfg(
            "yaml_duplicate_nested_key",
            "dup_nested.yaml",
            2,
            &["duplicate mapping key: epochs"],
        ),
        with_cfg(
            "yaml_recursive_alias",
            "recursive.yaml",
            2,
            &["recursive.yaml", "alias"],
        ),
        with_cfg("yaml_alias_bomb", "bomb.yaml", 2, &["bomb.yaml"]),
        with_cfg("yaml_not_a_mapping", "list.yaml", 2, &["mapping"]),
        with_cfg("yaml_binary_file", "binary.yaml", 2, &["binary.yaml"]),
        with_cfg(
            "yaml_wrong_type",
            "wrong_type.yaml",
            2,
            &["model.dropout", "lots", "f64"],
        ),
        with_cfg(
            "yaml_unknown_nested_key",
            "unknown_deep.yaml",
            2,
            &["model.extra", "allowed here"],
        ),
        case(
            "config_name_missing",
            &["--config-name", "no_such.yaml"],
            2,
            &["no_such.yaml"],
        ),
        // Unknown keys at every level.
        case(
            "unknown_top_key",
            &["foo=1"],
            2,
            &["unknown key `foo`", "allowed here"],
        ),
        case(
            "unknown_section_key",
            &["training.bach_size=3"],
            2,
            &["training.bach_size", "did you mean `batch_size`"],
        ),
        case(
            "unknown_nested_key",
            &["deployment.hardware_setup.bord=host"],
            2,
            &["deployment.hardware_setup.bord", "did you mean `board`"],
        ),
        case(
            "unknown_deep_key",
            &["training.early_stopping.patiense=3"],
            2,
            &["patiense", "did you mean `patience`"],
        ),
        case(
            "bad_override_syntax",
            &["justaword"],
            2,
            &["justaword", "key.path=value"],
        ),
        // Wrong types.
        case(
            "type_string_for_int",
            &["training.batch_size=lots"],
            2,
            &["training.batch_size", "lots"],
        ),
        case(
            "type_string_for_bool",
            &["model.tie_embeddings=maybe"],
            2,
            &["model.tie_embeddings", "boolean"],
        ),
        case(
            "type_list_for_int",
            &["training.batch_size=[1,2]"],
            2,
            &["training.batch_size", "sequence"],
        ),
        case(
            "type_scalar_for_section",
            &["training.early_stopping=3"],
            2,
            &["training.early_stopping", "must be a mapping"],
        ),
        case(
            "type_nan_for_float",
            &["prediction.temperature=.nan"],
            2,
            &["prediction.temperature"],
        ),
        // Zero, negative and absurd sizes.
        case(
            "seq_len_zero",
            &["model.seq_len=0"],
            2,
            &["model.seq_len", "at least 1"],
        ),
        case(
            "seq_len_absurd",
            &["model.seq_len=100000"],
            2,
            &["model.seq_len", "at most 4096"],
        ),
        case(
            "batch_size_negative",
            &["training.batch_size=-3"],
            2,
            &["training.batch_size", "-3"],
        ),
        case(
            "batch_size_zero",
            &["training.batch_size=0"],
            2,
            &["training.batch_size", "at least 1"],
        ),
        case(
            "heads_not_dividing",
            &["model.num_heads=3"],
            2,
            &["model.num_heads", "must divide model.embed_dim (16)"],
        ),
        case(
            "embed_dim_absurd",
            &["operation_mode=training", "model.embed_dim=1000000000"],
            2,
            &["parameters", "at most 134217728"],
        ),
        case(
            "num_layers_absurd",
            &["operation_mode=training", "model.num_layers=100000"],
            2,
            &["model.num_layers", "at most 1024"],
        ),
        case(
            "vocab_beyond_u16_cache",
            &["preprocessing.vocab_size=65537"],
            2,
            &["preprocessing.vocab_size", "[3, 65536]"],
        ),
        case(
            "max_steps_zero",
            &["training.max_steps=0"],
            2,
            &["training.max_steps", "at least 1"],
        ),
        case(
            "batch_size_1e9_warned",
            &["operation_mode=training", "training.batch_size=1000000000"],
            0,
            &[
                "training.batch_size=1000000000 is more than the",
                "batch_size_reduced_from",
            ],
        ),
        // Directories where files are expected, and the reverse.
        owned(
            vec![corpus("adir")],
            "corpus_is_directory",
            2,
            &["adir", "is a directory"],
        ),
        owned(
            vec!["operation_mode=evaluation".into(), model("adir")],
            "model_is_directory",
            2,
            &["adir", "Is a directory"],
        ),
        owned(
            vec![format!("preprocessing.tokenizer_path={}", i.path("adir"))],
            "tokenizer_is_directory",
            2,
            &["adir"],
        ),
        owned(
            vec![
                "operation_mode=deployment".into(),
                int8.clone(),
                "deployment.hardware_setup.board=host".into(),
                format!("deployment.c_project_path={}", i.path("afile.txt")),
            ],
            "c_project_path_is_file",
            2,
            &["deployment.c_project_path", "afile.txt", "is a file"],
        ),
        owned(
            vec![
                "operation_mode=deployment".into(),
                int8.clone(),
                "deployment.hardware_setup.board=host".into(),
                format!("deployment.c_project_path={}", i.path("foreign_project")),
            ],
            "c_project_path_foreign_folder",
            2,
            &["foreign_project", "did not generate"],
        ),
        // Corpora.
        owned(
            vec![corpus("missing.txt")],
            "corpus_missing",
            2,
            &["dataset.training_path", "missing.txt"],
        ),
        owned(
            vec![corpus("empty.txt")],
            "corpus_empty",
            2,
            &["empty.txt", "empty"],
        ),
        owned(
            vec![corpus("whitespace.txt")],
            "corpus_whitespace",
            2,
            &["whitespace.txt", "only whitespace"],
        ),
        owned(
            vec![corpus("binary.bin")],
            "corpus_binary",
            2,
            &["binary.bin", "not valid UTF-8"],
        ),
        owned(
            vec![corpus("one_word.txt"), "operation_mode=training".into()],
            "corpus_one_word",
            2,
            &["one_word.txt", "fewer than one window"],
        ),
        owned(
            vec![format!(
                "preprocessing.tokenizer_path={}",
                i.path("afile.txt")
            )],
            "tokenizer_not_json",
            2,
            &["afile.txt", "not a tokenizer.json"],
        ),
        // Model files: truncated, bit-flipped, foreign; float where int8 is expected and the reverse.
        owned(
            vec![
                "operation_mode=evaluation".into(),
                model("truncated.safetensors"),
            ],
            "model_truncated",
            2,
            &["truncated.safetensors", "damaged"],
        ),
        owned(
            vec![
                "operation_mode=evaluation".into(),
                model("flipped.safetensors"),
            ],
            "model_bit_flipped",
            2,
            &["flipped.safetensors", "checksum mismatch"],
        ),
        owned(
            vec![
                "operation_mode=evaluation".into(),
                model("foreign.safetensors"),
            ],
            "model_foreign_json",
            2,
            &["foreign.safetensors", "not a safetensors model file"],
        ),
        owned(
            vec![
                "operation_mode=evaluation".into(),
                model("other_tool.safetensors"),
            ],
            "model_other_tool",
            2,
            &["other_tool.safetensors", "not a textzoo model"],
        ),
        owned(
            vec![
                "operation_mode=evaluation".into(),
                model("missing.safetensors"),
            ],
            "model_missing",
            2,
            &["general.model_path", "missing.safetensors"],
        ),
        owned(
            vec![
                "operation_mode=deployment".into(),
                float.clone(),
                "deployment.hardware_setup.board=host".into(),
            ],
            "float_where_int8_expected",
            2,
            &[
                "is a float model; deployment needs an int8 model",
                "chain_qd",
            ],
        ),
        owned(
            vec!["operation_mode=benchmarking".into(), float.clone()],
            "float_for_benchmarking",
            2,
            &["benchmarking needs an int8 model", "chain_qb"],
        ),
        owned(
            vec!["operation_mode=quantization".into(), int8.clone()],
            "int8_where_float_expected",
            2,
            &["already an int8 model"],
        ),
        owned(
            vec![
                "operation_mode=training".into(),
                format!(
                    "training.resume_training_from={}",
                    i.path("prev_gpt/quantized_models/model_int8.safetensors")
                ),
            ],
            "int8_as_resume_checkpoint",
            2,
            &["is an int8 model", "float model"],
        ),
        owned(
            vec![
                "operation_mode=training".into(),
                format!(
                    "training.resume_training_from={}",
                    i.path("prev_gpt/saved_models/model.safetensors")
                ),
            ],
            "model_as_resume_checkpoint",
            2,
            &["without training state", "last.safetensors"],
        ),
        owned(
            vec![
                "operation_mode=training".into(),
                format!(
                    "training.resume_training_from={}",
                    i.path("flipped.safetensors")
                ),
            ],
            "resume_bit_flipped",
            2,
            &["checksum mismatch"],
        ),
        // Prompts.
        predict("prompt_empty_causal", &["prediction.prompt="], 0, &[]),
        Case {
            args: vec![
                "operation_mode=prediction".into(),
                bert8.clone(),
                "prediction.prompt=".into(),
            ],
            ..case(
                "prompt_empty_bert",
                &[],
                2,
                &["prediction.prompt is empty", "tiny_bert_generator"],
            )
        },
        Case {
            writes: Some(("generated.txt", "zzqx qqvw ".into())),
            ..predict(
                "prompt_only_unknown_words",
                &["prediction.prompt=zzqx qqvw", "prediction.max_tokens=4"],
                0,
                &["read as <unk>: zzqx, qqvw"],
            )
        },
        Case {
            writes: Some(("generated.txt", "🦀🎉 alice".into())),
            ..predict(
                "prompt_emoji",
                &["prediction.prompt=🦀🎉 alice", "prediction.max_tokens=4"],
                0,
                &["read as <unk>"],
            )
        },
        Case {
            writes: Some((
                "generated.txt",
                "\" %s %n \\ \0 */ /* ??= \n \u{7} '".into(),
            )),
            ..predict(
                "prompt_c_hostile",
                &[hostile, "prediction.max_tokens=4"],
                0,
                &[],
            )
        },
        Case {
            writes: Some(("generated.txt", vec!["alice"; 20_000].join(" "))),
            ..predict(
                "prompt_20000_words",
                &[&long_prompt, "prediction.max_tokens=4"],
                0,
                &[],
            )
        },
        Case {
            writes: Some(("generated.txt", "to be or not".into())),
            ..predict("max_tokens_zero", &["prediction.max_tokens=0"], 0, &[])
        },
        predict(
            "max_tokens_absurd",
            &["prediction.max_tokens=1000000"],
            2,
            &["prediction.max_tokens", "at most 100000"],
        ),
        // Sampling settings.
        predict(
            "temperature_zero",
            &["prediction.temperature=0"],
            2,
            &["prediction.temperature", "positive"],
        ),
        predict(
            "temperature_negative",
            &["prediction.temperature=-1"],
            2,
            &["prediction.temperature", "positive"],
        ),
        predict(
            "temperature_huge_accepted",
            &[
                "prediction.strategy=sample",
                "prediction.temperature=1e300",
                "prediction.max_tokens=4",
            ],
            0,
            &[],
        ),
        predict(
            "top_p_zero",
            &["prediction.top_p=0"],
            2,
            &["prediction.top_p", "(0, 1]"],
        ),
        predict(
            "top_p_above_one",
            &["prediction.top_p=1.5"],
            2,
            &["prediction.top_p", "(0, 1]"],
        ),
        predict(
            "top_k_negative",
            &["prediction.top_k=-1"],
            2,
            &["prediction.top_k", "-1"],
        ),
        predict(
            "top_k_beyond_vocab_accepted",
            &[
                "prediction.strategy=sample",
                "prediction.top_k=100000",
                "prediction.max_tokens=4",
            ],
            0,
            &[],
        ),
        predict(
            "strategy_unknown",
            &["prediction.strategy=beam"],
            2,
            &["prediction.strategy", "beam", "greedy"],
        ),
        predict(
            "seed_negative",
            &["prediction.strategy=sample", "prediction.seed=-1"],
            2,
            &["prediction.seed", "-1"],
        ),
        // Boards.
        case(
            "board_unknown",
            &["deployment.hardware_setup.board=ESP32"],
            2,
            &["deployment.hardware_setup.board", "ESP32", "STM32H7"],
        ),
        case(
            "benchmark_board_unknown",
            &["benchmarking.board=ESP32"],
            2,
            &["benchmarking.board", "ESP32", "host"],
        ),
        owned(
            vec![
                "operation_mode=chain_qd".into(),
                model("prev_big/saved_models/model.safetensors"),
                "deployment.hardware_setup.board=STM32H7".into(),
            ],
            "model_too_large_for_board",
            2,
            &[
                "does not fit NUCLEO-H743ZI2",
                "flash needs",
                "choose a smaller model",
            ],
        ),
        // MLflow: tracking only warns; the run's results stay in the run directory.
        predict(
            "mlflow_unreachable",
            &["prediction.max_tokens=2", "mlflow.uri=http://127.0.0.1:9"],
            0,
            &["MLflow", "unreachable", "the results stay in"],
        ),
        predict(
            "mlflow_bad_scheme",
            &[
                "prediction.max_tokens=2",
                "mlflow.uri=ftp://example.invalid/x",
            ],
            0,
            &["neither a local directory", "MLflow logging skipped"],
        ),
    ];
    // Subcommands: the same rules without a run directory.
    rows.push(owned(
        vec![
            "model-to-c".into(),
            i.path("prev_gpt/saved_models/model.safetensors"),
            "-o".into(),
            i.path("../runs/model_to_c_float/out"),
        ],
        "model_to_c_float_model",
        2,
        &["is a float model; model-to-c needs an int8 model"],
    ));
    rows.push(owned(
        vec![
            "model-to-c".into(),
            i.path("flipped.safetensors"),
            "-o".into(),
            i.path("../runs/model_to_c_damaged/out"),
        ],
        "model_to_c_damaged",
        2,
        &["checksum mismatch"],
    ));
    rows.push(owned(
        vec![
            "combine-corpus".into(),
            "--output".into(),
            i.path("../runs/combined.txt"),
            i.path("missing.txt"),
        ],
        "combine_corpus_missing_input",
        2,
        &["missing.txt", "No such file"],
    ));
    rows.push(owned(
        vec![
            "combine-corpus".into(),
            "--output".into(),
            i.path("../runs/combined.txt"),
            i.path("binary.bin"),
        ],
        "combine_corpus_binary_input",
        2,
        &["binary.bin", "not valid UTF-8"],
    ));
    rows
}

/// Every row of the table, each against every invariant; all failures reported together.
#[test]
fn every_bad_input_is_refused_clearly_and_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let inputs = Inputs::create(tmp.path());
    let mut broke = Vec::new();
    let rows = cases(&inputs);
    for case in &rows {
        broke.extend(check(tmp.path(), &inputs, case));
    }
    assert!(
        broke.is_empty(),
        "{} of {} cases broke:\n{}",
        broke.len(),
        rows.len(),
        broke.join("\n")
    );
}

/// Unmounts the small file system when the test ends, however it ends.
struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

/// A full disk in the middle of training: exit 1 naming the file and the cause, and every
/// model file under its final name whole (written atomically); no temporary file left. Needs a
/// small tmpfs, which only root can mount: skipped with a message elsewhere.
#[test]
fn a_full_disk_fails_the_run_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let disk = tmp.path().join("small_disk");
    std::fs::create_dir_all(&disk).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=200k", "tmpfs"])
        .arg(&disk)
        .output();
    if !mounted.is_ok_and(|o| o.status.success()) {
        eprintln!("skipped: cannot mount a small tmpfs here (needs root)");
        return;
    }
    let _guard = Mounted(disk.clone());
    let run = disk.join("run");
    let ran = textzoo(&with(
        &tiny(&run),
        &["operation_mode=training", "mlflow.uri="],
    ));
    assert_eq!(ran.code, 1, "{}", ran.all());
    assert!(
        ran.stderr.contains("No space left on device") && ran.stderr.contains("error: writing"),
        "{}",
        ran.stderr
    );
    assert!(!ran.all().contains("panicked"), "{}", ran.all());
    assert_eq!(
        ran.stderr
            .lines()
            .filter(|l| l.starts_with("error:"))
            .count(),
        1
    );
    for path in walk(&disk) {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        assert!(!name.contains(".tmp"), "temporary file left: {path:?}");
        if name.ends_with(".safetensors") {
            textzoo::artifact::ModelFile::open(&path)
                .unwrap_or_else(|e| panic!("partial model {path:?}: {e}"));
        }
    }
}
