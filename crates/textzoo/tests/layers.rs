//! The import rules of the library, checked on its source tree so they stay true.
//!
//! Every top-level module of `src/` may name (`crate::x`) only the modules listed for it
//! below: the bottom (`config`, `error`, `util`) names nothing above it, stages name the
//! building blocks but not each other (except where one really uses another: training
//! validates with evaluation and samples with prediction; benchmarking builds the
//! deployment's C project), and nothing names the pipeline. Test code (`#[cfg(test)]` modules
//! and files) is left out: a test may reach wherever it needs to.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// What each module may import from the crate (besides itself and the `avx2_dispatch!` macro).
const ALLOWED: &[(&str, &[&str])] = &[
    ("config", &["error"]),
    ("error", &["config"]),
    ("interrupt", &["error"]),
    ("util", &["error"]),
    ("nn", &[]),
    ("data", &["config", "error", "util"]),
    ("models", &["config", "nn"]),
    ("artifact", &["config", "data", "error", "models", "util"]),
    ("lm", &["config", "data", "error", "models"]),
    // The stages.
    (
        "training",
        &[
            "artifact",
            "config",
            "data",
            "error",
            "evaluation",
            "interrupt",
            "lm",
            "models",
            "nn",
            "prediction",
            "util",
        ],
    ),
    (
        "quantization",
        &[
            "artifact", "config", "data", "error", "models", "nn", "util",
        ],
    ),
    (
        "evaluation",
        &[
            "artifact", "config", "data", "error", "lm", "models", "util",
        ],
    ),
    ("prediction", &["config", "data", "error", "lm", "util"]),
    (
        "deployment",
        &[
            "artifact", "config", "data", "error", "lm", "models", "util",
        ],
    ),
    (
        "benchmarking",
        &[
            "artifact",
            "config",
            "data",
            "deployment",
            "error",
            "lm",
            "util",
        ],
    ),
    ("tracking", &["config", "error", "util"]),
    // A tool beside the stages: reads model zoo files, writes textzoo configurations.
    ("migrate", &["config", "error", "util"]),
    // Sweeps: plan, launch (jobs are runs of the binary) and report; beside the pipeline.
    (
        "sweep",
        &[
            "artifact",
            "config",
            "deployment",
            "error",
            "interrupt",
            "tracking",
            "util",
        ],
    ),
    // Interchange exports (ONNX, TFLite), model checks, the ST Edge AI hand-off: a stage
    // reading the model files like the others.
    (
        "export",
        &["artifact", "config", "error", "models", "nn", "util"],
    ),
    // The top: may use everything; nothing may use it.
    (
        "pipeline",
        &[
            "artifact",
            "benchmarking",
            "config",
            "data",
            "deployment",
            "error",
            "evaluation",
            "export",
            "lm",
            "prediction",
            "quantization",
            "tracking",
            "training",
            "util",
        ],
    ),
];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The crate's top-level modules, from `lib.rs`.
fn top_modules() -> BTreeSet<String> {
    let lib = std::fs::read_to_string(src().join("lib.rs")).unwrap();
    lib.lines()
        .filter_map(|l| l.trim().strip_prefix("pub mod "))
        .map(|l| l.trim_end_matches(';').to_string())
        .collect()
}

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The names of the submodules a file declares behind `#[cfg(test)]` (test-only files).
fn test_only_children(text: &str) -> Vec<String> {
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    lines
        .windows(2)
        .filter(|w| w[0] == "#[cfg(test)]")
        .filter_map(|w| {
            let decl = w[1]
                .trim_start_matches("pub(crate) ")
                .trim_start_matches("pub ");
            decl.strip_prefix("mod ")
                .filter(|rest| rest.ends_with(';'))
                .map(|rest| rest.trim_end_matches(';').to_string())
        })
        .collect()
}

/// The file's code without its inline `#[cfg(test)] mod … { … }` (always the file's last item).
fn without_inline_tests(text: &str) -> &str {
    let lines: Vec<&str> = text.lines().collect();
    let mut offset = 0;
    for (i, line) in lines.iter().enumerate() {
        let next = lines.get(i + 1).map(|l| l.trim()).unwrap_or("");
        if line.trim() == "#[cfg(test)]" && next.starts_with("mod ") && next.ends_with('{') {
            return &text[..offset];
        }
        offset += line.len() + 1;
    }
    text
}

/// The top-level modules a piece of code names as `crate::x`.
fn named_modules(code: &str, modules: &BTreeSet<String>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let after = &rest[at + "crate::".len()..];
        let name: String = after
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if modules.contains(&name) {
            out.insert(name);
        } else if after.starts_with('{') {
            // `use crate::{a, b::c}`: every top-level name inside the braces.
            let group: String = after.chars().take_while(|&c| c != ';').collect();
            for part in group.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
                if modules.contains(part) {
                    out.insert(part.to_string());
                }
            }
        }
        rest = after;
    }
    out
}

/// For each top-level module, the modules its non-test code names and where.
fn imports() -> BTreeMap<String, BTreeMap<String, Vec<PathBuf>>> {
    let modules = top_modules();
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut test_only = BTreeSet::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let dir = if file
            .file_name()
            .is_some_and(|n| n == "mod.rs" || n == "lib.rs")
        {
            file.parent().unwrap().to_path_buf()
        } else {
            file.with_extension("")
        };
        for child in test_only_children(&text) {
            test_only.insert(dir.join(format!("{child}.rs")));
            test_only.insert(dir.join(&child).join("mod.rs"));
        }
    }
    let mut out: BTreeMap<String, BTreeMap<String, Vec<PathBuf>>> = BTreeMap::new();
    for file in files.iter().filter(|f| !test_only.contains(*f)) {
        let relative = file.strip_prefix(src()).unwrap();
        let Some(first) = relative.components().next() else {
            continue;
        };
        let module = first
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        if module == "lib" {
            continue;
        }
        let text = std::fs::read_to_string(file).unwrap();
        for used in named_modules(without_inline_tests(&text), &modules) {
            if used != module {
                out.entry(module.clone())
                    .or_default()
                    .entry(used)
                    .or_default()
                    .push(relative.to_path_buf());
            }
        }
    }
    out
}

#[test]
fn every_module_imports_only_what_its_layer_allows() {
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    let modules = top_modules();
    for module in &modules {
        assert!(
            allowed.contains_key(module.as_str()),
            "module `{module}` has no row in ALLOWED: decide which layer it belongs to"
        );
    }
    let mut broken = Vec::new();
    for (module, uses) in imports() {
        let ok = allowed.get(module.as_str()).copied().unwrap_or(&[]);
        for (used, files) in uses {
            if !ok.contains(&used.as_str()) {
                broken.push(format!("{module} → {used} (in {files:?})"));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "imports the layering forbids:\n{}",
        broken.join("\n")
    );
}

#[test]
fn nothing_imports_the_pipeline() {
    for (module, uses) in imports() {
        assert!(
            !uses.contains_key("pipeline"),
            "{module} imports the pipeline: {:?}",
            uses["pipeline"]
        );
    }
}

#[test]
fn the_checker_sees_imports_and_skips_tests() {
    let modules: BTreeSet<String> = ["config", "data", "pipeline"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let code = "use crate::config::X;\nuse crate::{data::Y, pipeline};\nfn f() { crate::avx2_dispatch!(); }\n#[cfg(test)]\nmod tests {\n    use crate::pipeline::Z;\n}\n";
    let seen = named_modules(without_inline_tests(code), &modules);
    assert_eq!(
        seen,
        ["config", "data", "pipeline"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    );
    let only_tests = "fn f() {}\n#[cfg(test)]\nmod tests {\n    use crate::pipeline::Z;\n}\n";
    assert!(named_modules(without_inline_tests(only_tests), &modules).is_empty());
    assert_eq!(
        test_only_children("#[cfg(test)]\nmod c_runtime_tests;\nmod fit;\n"),
        vec!["c_runtime_tests".to_string()]
    );
}
