//! Every `textzoo` command the README shows runs as typed: the commands are read from the file
//! itself (its `bash` blocks, `\` continuations joined), so a changed README is tested as
//! written. Runs of the pipeline get extra overrides that only make them short and keep them
//! out of the repository (`training.max_steps`, `evaluation.max_windows`,
//! `benchmarking.repeats`, `benchmarking.emulate=false`, `hydra.run.dir`, `mlflow.uri`);
//! subcommands and `--cfg` run exactly
//! as printed. `RUN` in a command is "your run directory": a real `chain_tqe` run made first.

mod common;
use common::*;
use std::path::Path;

/// The `textzoo …` command lines of the README's `bash` blocks, continuations joined and
/// trailing comments removed.
fn readme_commands(readme: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_bash = false;
    let mut pending = String::new();
    for line in readme.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("```") {
            in_bash = trimmed == "```bash";
            pending.clear();
            continue;
        }
        if !in_bash {
            continue;
        }
        let code = strip_comment(trimmed);
        if let Some(head) = code.strip_suffix('\\') {
            pending.push_str(head.trim_end());
            pending.push(' ');
            continue;
        }
        pending.push_str(code.trim_end());
        let command = std::mem::take(&mut pending);
        if command.starts_with("textzoo ") || command == "textzoo" {
            out.push(command);
        }
    }
    out
}

/// The line without a trailing `# comment` (a `#` outside quotes, after a space).
fn strip_comment(line: &str) -> &str {
    let mut quote = None;
    let bytes = line.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        match (quote, b) {
            (None, b'"' | b'\'') => quote = Some(b),
            (Some(q), _) if b == q => quote = None,
            (None, b'#') if i == 0 || bytes[i - 1] == b' ' => return line[..i].trim_end(),
            _ => {}
        }
    }
    line
}

/// Shell-style words: quotes grouped and removed (the README's commands use no escapes).
fn words(command: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut quote = None;
    let mut started = false;
    for c in command.chars() {
        match (quote, c) {
            (None, '"' | '\'') => {
                quote = Some(c);
                started = true;
            }
            (Some(q), _) if c == q => quote = None,
            (None, ' ') => {
                if started {
                    out.push(std::mem::take(&mut word));
                    started = false;
                }
            }
            _ => {
                word.push(c);
                started = true;
            }
        }
    }
    if started {
        out.push(word);
    }
    out
}

const SUBCOMMANDS: &[&str] = &[
    "combine-corpus",
    "model-to-c",
    "model-card",
    "migrate-config",
    "export",
    "check",
    "sweep-status",
    "sweep-report",
];

/// A scratch working directory that looks like the repository to the commands.
fn workspace_copy(dir: &Path) {
    let root = workspace_root();
    for name in [
        "datasets",
        "pretrained_models",
        "config_file_examples",
        "user_config.yaml",
        "crates",
    ] {
        std::os::unix::fs::symlink(root.join(name), dir.join(name)).unwrap();
    }
}

#[test]
fn the_command_parser_reads_blocks_continuations_and_comments() {
    let text = "x\n```bash\ntextzoo a=1 \\\n        b=\"x y\"   # note\nmake run\n```\n```yaml\ntextzoo no\n```\n";
    let commands = readme_commands(text);
    assert_eq!(commands, ["textzoo a=1 b=\"x y\""]);
    assert_eq!(words(&commands[0]), ["textzoo", "a=1", "b=x y"]);
    assert_eq!(strip_comment("a '#b' c # d"), "a '#b' c");
}

#[test]
fn every_textzoo_command_in_the_readme_works_as_typed() {
    let readme = std::fs::read_to_string(workspace_root().join("README.md")).unwrap();
    let commands = readme_commands(&readme);
    assert!(commands.len() >= 10, "found only {commands:?}");
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();
    workspace_copy(cwd);

    // RUN: a finished chain_tqe run of a tiny model, for commands that start from one.
    let run = cwd.join("RUN");
    let base = tiny(&run);
    let made = textzoo_in(cwd, &with(&base, &["operation_mode=chain_tqe"]));
    assert_eq!(made.code, 0, "{}", made.all());

    let mut failures = Vec::new();
    for (i, command) in commands.iter().enumerate() {
        // The cluster example needs a Slurm: CI starts a one-node one (tests/slurm/one_node.sh,
        // partition `cpu`) and sets TEXTZOO_SLURM=1; elsewhere the command is skipped, said so.
        if command.contains("hydra.launcher.name=slurm")
            && std::env::var_os("TEXTZOO_SLURM").is_none()
        {
            eprintln!("skipped without TEXTZOO_SLURM=1 (no Slurm here): {command}");
            continue;
        }
        let mut args: Vec<String> = words(command)
            .into_iter()
            .skip(1)
            .map(|w| w.replace("RUN/", &format!("{}/", run.display())))
            .map(|w| {
                if w == "RUN" {
                    run.display().to_string()
                } else {
                    w
                }
            })
            .collect();
        let sub = args.iter().find(|a| !a.starts_with('-')).cloned();
        let is_run = !args
            .iter()
            .any(|a| a == "--cfg" || a == "--help" || a == "-h" || a == "--version")
            && !sub.as_deref().is_some_and(|s| SUBCOMMANDS.contains(&s));
        let multirun = args.iter().any(|a| a == "-m" || a == "--multirun");
        if is_run {
            let dir = cwd.join(format!("runs/{i}"));
            args.extend([
                if multirun {
                    format!("hydra.sweep.dir={}", dir.display())
                } else {
                    format!("hydra.run.dir={}", dir.display())
                },
                "mlflow.uri=".into(),
                "training.max_steps=4".into(),
                "training.eval_interval=2".into(),
                "evaluation.max_windows=32".into(),
                "benchmarking.repeats=1".into(),
                "benchmarking.num_tokens=4".into(),
                "quantization.num_samples=16".into(),
            ]);
        }
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let ran = textzoo_in(cwd, &refs);
        if ran.code != 0 {
            failures.push(format!(
                "`{command}` exited {}:\n{}",
                ran.code,
                ran.all()
                    .lines()
                    .rev()
                    .take(8)
                    .collect::<Vec<_>>()
                    .join("\n")
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
