//! The run directory: its fixed contents, and one directory per run.

mod common;
use common::*;

#[test]
fn a_run_directory_holds_resolved_config_overrides_log_and_metrics() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let base = tiny(&run);
    let ran = textzoo(&with(
        &base,
        &[
            "operation_mode=preprocessing",
            "prediction.prompt=to be or not",
        ],
    ));
    assert_eq!(ran.code, 0, "{}", ran.all());
    let config = std::fs::read_to_string(run.join(".hydra/config.yaml")).unwrap();
    assert!(
        config.contains("operation_mode: preprocessing") && config.contains("vocab_size: 300"),
        "{config}"
    );
    assert!(
        !config.contains("${"),
        "config.yaml must be resolved: {config}"
    );
    let overrides = std::fs::read_to_string(run.join(".hydra/overrides.yaml")).unwrap();
    assert!(
        overrides.contains("operation_mode=preprocessing") && overrides.contains("to be or not"),
        "{overrides}"
    );
    let log = std::fs::read_to_string(run.join("textzoo.log")).unwrap();
    assert!(
        log.contains("INFO") && log.contains("preprocessing"),
        "{log}"
    );
    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("metrics.json")).unwrap()).unwrap();
    assert_eq!(metrics["run"]["operation_mode"], "preprocessing");
    assert!(
        ran.stdout
            .trim_end()
            .lines()
            .last()
            .unwrap()
            .contains(&run.display().to_string()),
        "last line names the run directory: {}",
        ran.stdout
    );
}

#[test]
fn two_runs_in_the_same_second_get_two_directories() {
    let tmp = tempfile::tempdir().unwrap();
    let pattern = tmp.path().join("runs/${now:%Y_%m_%d_%H_%M}");
    let base = tiny(&pattern);
    let args = with(&base, &["operation_mode=preprocessing"]);
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| textzoo(&args));
        let b = s.spawn(|| textzoo(&args));
        (a.join().unwrap(), b.join().unwrap())
    });
    assert_eq!((a.code, b.code), (0, 0), "{}\n{}", a.all(), b.all());
    let dirs: Vec<_> = std::fs::read_dir(tmp.path().join("runs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(dirs.len() >= 2, "{dirs:?}");
    for d in &dirs {
        assert!(
            d.join(".hydra/config.yaml").exists() && d.join("metrics.json").exists(),
            "{d:?}"
        );
    }
    let last = |s: &str| s.trim_end().lines().last().unwrap().to_string();
    assert_ne!(last(&a.stdout), last(&b.stdout));
}
