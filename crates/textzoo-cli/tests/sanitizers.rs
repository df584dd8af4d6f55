//! The generated C under AddressSanitizer and UndefinedBehaviorSanitizer: for each model kind,
//! the host app of a `chain_qd` project, built with `-fsanitize=address,undefined
//! -fno-sanitize-recover=all`, runs many prompts (empty, unknown words, emoji, C-hostile bytes,
//! longer than the model's context, longer than the app's prompt buffer) with every sampling
//! mode and several seeds, taking them at run time on its command line. Any sanitizer report
//! aborts the program, so every run must exit cleanly; a sample of runs must print exactly
//! what `textzoo operation_mode=prediction` writes for the same settings.

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

const SANITIZE: &str = "-fsanitize=address,undefined -fno-sanitize-recover=all -g";

/// A tiny `chain_qd` host project of `kind`, its int8 model and its sanitized app.
fn sanitized_app(dir: &Path, kind: &str) -> (PathBuf, PathBuf) {
    let train = dir.join(format!("{kind}_train"));
    let model = format!("model.name={kind}");
    let ran = textzoo(&with(
        &tiny(&train),
        &[
            "operation_mode=training",
            &model,
            "training.max_steps=20",
            "mlflow.uri=",
        ],
    ));
    assert_eq!(ran.code, 0, "{}", ran.all());
    let deploy = dir.join(format!("{kind}_deploy"));
    let float = format!(
        "general.model_path={}",
        train.join("saved_models/model.safetensors").display()
    );
    let ran = textzoo(&with(
        &tiny(&deploy),
        &[
            "operation_mode=chain_qd",
            &float,
            "deployment.hardware_setup.board=host",
            "mlflow.uri=",
        ],
    ));
    assert_eq!(ran.code, 0, "{}", ran.all());
    let project = deploy.join("c_project");
    let out = Command::new("make")
        .arg("-s")
        .arg("-C")
        .arg(&project)
        .arg("host")
        .arg(format!("EXTRA_CFLAGS={SANITIZE}"))
        .arg(format!("EXTRA_LDFLAGS={SANITIZE}"))
        .output()
        .expect("make and gcc (installed by .ci/run)");
    assert!(
        out.status.success(),
        "{kind}: sanitized build failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        deploy.join("quantized_models/model_int8.safetensors"),
        project.join("build/host/app"),
    )
}

/// One sampling mode: the app's arguments and the matching `prediction.*` overrides.
struct Mode {
    name: &'static str,
    app: &'static [&'static str],
    config: &'static [&'static str],
}

const MODES: [Mode; 4] = [
    Mode {
        name: "greedy",
        app: &["--greedy"],
        config: &["prediction.strategy=greedy"],
    },
    Mode {
        name: "temperature",
        app: &["--sample", "--temperature", "0.7"],
        config: &["prediction.strategy=sample", "prediction.temperature=0.7"],
    },
    Mode {
        name: "top_k",
        app: &["--sample", "--top-k", "5"],
        config: &["prediction.strategy=sample", "prediction.top_k=5"],
    },
    Mode {
        name: "top_p",
        app: &["--sample", "--top-p", "0.8"],
        config: &["prediction.strategy=sample", "prediction.top_p=0.8"],
    },
];

struct Ran2 {
    ok: bool,
    stdout: String,
    stderr: String,
}

fn run_app(app: &Path, prompt: &str, mode: &Mode, seed: u64, max_tokens: usize) -> Ran2 {
    let out = Command::new(app)
        .arg("--prompt")
        .arg(prompt)
        .args(["--max-tokens", &max_tokens.to_string()])
        .args(["--seed", &seed.to_string()])
        .args(mode.app)
        .env("ASAN_OPTIONS", "detect_leaks=0:abort_on_error=0")
        .env("UBSAN_OPTIONS", "print_stacktrace=1")
        .output()
        .unwrap();
    Ran2 {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// What `operation_mode=prediction` writes to generated.txt for these settings.
fn predicted(dir: &Path, int8: &Path, prompt: &str, mode: &Mode, seed: u64, n: usize) -> String {
    let run = dir.join(format!("predict_{}", dir.read_dir().unwrap().count()));
    let args = [
        format!("hydra.run.dir={}", run.display()),
        format!("general.model_path={}", int8.display()),
        "operation_mode=prediction".into(),
        "mlflow.uri=".into(),
        format!("prediction.prompt={}", yaml_quoted(prompt)),
        format!("prediction.max_tokens={n}"),
        format!("prediction.seed={seed}"),
    ];
    let mut all: Vec<&str> = args.iter().map(String::as_str).collect();
    all.extend(mode.config);
    let ran = textzoo(&all);
    assert_eq!(ran.code, 0, "{}", ran.all());
    std::fs::read_to_string(run.join("generated.txt")).unwrap()
}

/// `text` as a YAML double-quoted scalar (overrides are YAML values), every byte kept.
fn yaml_quoted(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[test]
fn generated_c_is_clean_under_asan_and_ubsan_for_every_kind_prompt_and_mode() {
    let tmp = tempfile::tempdir().unwrap();
    let long = vec!["alice said the queen"; 15].join(" "); // 60 words: longer than seq_len 8
    let prompts: Vec<String> = [
        "",
        "alice",
        "zzqx qqvw",
        "🦀🎉 alice ☃",
        "\" %s %n \\ */ /* ??= \t '\u{7}",
        long.as_str(),
    ]
    .map(String::from)
    .to_vec();
    let mut runs = 0;
    for kind in ["tiny_gpt", "tiny_bert_generator", "gru", "lstm"] {
        let (int8, app) = sanitized_app(tmp.path(), kind);
        for (p, prompt) in prompts.iter().enumerate() {
            if prompt.is_empty() && kind == "tiny_bert_generator" {
                continue; // refused by prediction as well: it needs a context
            }
            for (m, mode) in MODES.iter().enumerate() {
                for seed in [1, 7, 123_456_789] {
                    let ran = run_app(&app, prompt, mode, seed, 12);
                    runs += 1;
                    assert!(
                        ran.ok
                            && !ran.stderr.contains("Sanitizer")
                            && !ran.stderr.contains("runtime error"),
                        "{kind} {} seed {seed} prompt {prompt:?}:\n{}",
                        mode.name,
                        ran.stderr
                    );
                    // A sample: one seed per (prompt, mode), rotating, against textzoo itself.
                    if seed == [1, 7, 123_456_789][(p + m) % 3] && (p + m) % 2 == 0 {
                        let want = predicted(tmp.path(), &int8, prompt, mode, seed, 12);
                        assert_eq!(
                            ran.stdout,
                            format!("{want}\n"),
                            "{kind} {} seed {seed} prompt {prompt:?}",
                            mode.name
                        );
                    }
                }
            }
        }
        // More prompt tokens than the app's buffer (TZ_PROMPT_CAP, 1024 on the host): a clean
        // refusal naming the limit, not an overflow.
        let huge = vec!["alice"; 3000].join(" ");
        let ran = run_app(&app, &huge, &MODES[0], 1, 4);
        assert!(
            !ran.ok,
            "{kind}: a prompt beyond TZ_PROMPT_CAP must be refused"
        );
        assert!(
            ran.stdout.contains("TZ_PROMPT_CAP") || ran.stderr.contains("TZ_PROMPT_CAP"),
            "{kind}: {}{}",
            ran.stdout,
            ran.stderr
        );
        assert!(
            !ran.stderr.contains("Sanitizer") && !ran.stderr.contains("runtime error"),
            "{kind}: {}",
            ran.stderr
        );
    }
    assert!(runs >= 250, "{runs}");
}
