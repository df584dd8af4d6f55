//! Sweeps end to end (`textzoo --multirun`): the local launcher, the report, MLflow parent and
//! child runs read back by the real `mlflow`, resume, Ctrl-C, and the Slurm launcher on a real
//! Slurm.
//!
//! The Slurm tests need a running Slurm whose commands work (`sinfo`): `.ci/run` starts a
//! one-node cluster with `tests/slurm/one_node.sh` and sets `TEXTZOO_SLURM=1`, under which a
//! missing or broken Slurm FAILS the tests. Without that variable they run when `sinfo` works
//! and otherwise print why they skip.

mod common;
use common::*;
use serde_json::Value;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The 4-job sweep of tiny models: two sizes × two tokenizers, trained, quantized, evaluated
/// and benchmarked (emulated tokens/s on the STM32H7's QEMU stand-in).
fn board_search(sweep_dir: &Path, mlruns: &Path) -> Vec<String> {
    let mut args = tiny(&sweep_dir.join("unused"));
    args.extend([
        "-m".to_string(),
        format!("hydra.sweep.dir={}", sweep_dir.display()),
        format!("mlflow.uri={}", mlruns.display()),
        "general.project_name=sweep_e2e".into(),
        "operation_mode=chain_tqeb".into(),
        "benchmarking.repeats=1".into(),
        "model.embed_dim=16,32".into(),
        "preprocessing.tokenizer=word,char".into(),
    ]);
    args
}

fn run(args: &[String]) -> Ran {
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    textzoo(&refs)
}

fn read_csv(path: &Path) -> Vec<std::collections::BTreeMap<String, String>> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    lines
        .map(|l| {
            header
                .iter()
                .map(|h| h.to_string())
                .zip(l.split(',').map(str::to_string))
                .collect()
        })
        .collect()
}

fn manifest(dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join(".sweep/manifest.json")).unwrap())
        .unwrap()
}

#[test]
fn local_sweep_writes_runs_report_and_mlflow_children() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("sweep");
    let mlruns = tmp.path().join("mlruns");
    let ran = run(&board_search(&dir, &mlruns));
    assert_eq!(ran.code, 0, "{}", ran.all());
    for n in 0..4 {
        assert!(
            dir.join(n.to_string()).join("metrics.json").is_file(),
            "job {n}: {}",
            ran.all()
        );
    }
    let rows = read_csv(&dir.join("sweep.csv"));
    assert_eq!(rows.len(), 4);
    let combos: Vec<(String, String)> = rows
        .iter()
        .map(|r| {
            (
                r["model.embed_dim"].clone(),
                r["preprocessing.tokenizer"].clone(),
            )
        })
        .collect();
    assert_eq!(
        combos,
        [
            ("16", "word"),
            ("16", "char"),
            ("32", "word"),
            ("32", "char")
        ]
        .map(|(a, b)| (a.to_string(), b.to_string()))
    );
    for r in &rows {
        assert_eq!(r["status"], "finished");
        // The report's numbers are the job's own metrics.json.
        let metrics: Value = serde_json::from_str(
            &std::fs::read_to_string(Path::new(&r["run_dir"]).join("metrics.json")).unwrap(),
        )
        .unwrap();
        let ppl: f64 = r["int8_val_perplexity"].parse().unwrap();
        assert_eq!(ppl, metrics["int8"]["val_perplexity"].as_f64().unwrap());
        assert_eq!(
            r["parameters"],
            metrics["training"]["parameters"].to_string()
        );
        let tps: f64 = r["emulated_tokens_per_s"].parse().unwrap();
        assert_eq!(
            tps,
            metrics["benchmark"]["estimated board tokens/s"]
                .as_f64()
                .unwrap()
        );
        // The footprint is the deployment's fit check: flash at least the int8 weights.
        let flash: u64 = r["STM32H7_flash_bytes"].parse().unwrap();
        assert!(flash > metrics["benchmark"]["Params"].as_u64().unwrap());
        assert_eq!(r["STM32H7_fits"], "true");
    }
    // Bigger embeddings, more parameters, more flash (same tokenizer).
    let flash = |i: usize| rows[i]["STM32H7_flash_bytes"].parse::<u64>().unwrap();
    assert!(flash(2) > flash(0) && flash(3) > flash(1));
    let html = std::fs::read_to_string(dir.join("sweep.html")).unwrap();
    assert!(html.contains("Pareto"), "{html}");
    assert!(html.contains("perplexity vs flash on STM32H7"));
    assert!(html.contains("perplexity vs emulated tokens/s on STM32H7"));
    assert!(html.matches("<svg").count() >= 2);
    let best = rows
        .iter()
        .min_by(|a, b| {
            let p = |r: &std::collections::BTreeMap<String, String>| {
                r["int8_val_perplexity"].parse::<f64>().unwrap()
            };
            p(a).total_cmp(&p(b))
        })
        .unwrap();
    assert!(
        ran.stdout
            .contains(&format!("best for STM32H7: job {}", best["job"])),
        "{}",
        ran.stdout
    );
    assert!(html.contains(&best["int8_model"]));

    // MLflow: a parent run with the four jobs as its children, read by the real client.
    let parent = manifest(&dir)["parent_run"]["file_store"]["run_id"]
        .as_str()
        .expect("parent run in the manifest")
        .to_string();
    let out = Command::new(python())
        .arg(workspace_root().join("tests/python/sweep_read.py"))
        .args([mlruns.to_str().unwrap(), "sweep_e2e", &parent])
        .env("MLFLOW_ALLOW_FILE_STORE", "true")
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let read: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(read["parent"]["status"], "FINISHED", "{read}");
    assert_eq!(read["parent"]["params"]["sweep.model.embed_dim"], "16,32");
    assert_eq!(read["parent"]["metrics"]["sweep_jobs_finished"], 4.0);
    assert_eq!(
        read["parent"]["artifacts"],
        serde_json::json!(["sweep.csv", "sweep.html"])
    );
    let children = read["children"].as_array().unwrap();
    assert_eq!(children.len(), 4, "{read}");
    for (child, name) in children.iter().zip(["0", "1", "2", "3"]) {
        assert_eq!(child["run_name"], name);
        assert_eq!(child["status"], "FINISHED");
        let row = &rows[name.parse::<usize>().unwrap()];
        assert_eq!(child["params"]["model.embed_dim"], row["model.embed_dim"]);
        assert_eq!(
            child["metrics"]["int8_val_perplexity"].as_f64().unwrap(),
            row["int8_val_perplexity"].parse::<f64>().unwrap()
        );
    }
}

/// Three jobs over three corpora, one of which is not UTF-8: that job fails, the others
/// finish; after the corpus is fixed, the same command reruns only the failed job.
#[test]
fn a_failing_job_does_not_stop_the_sweep_and_a_rerun_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("sweep");
    let good = workspace_root().join("datasets/alice_in_wonderland.txt");
    let bad = tmp.path().join("bad.txt");
    let text = std::fs::read(&good).unwrap();
    let mut broken = text[..20_000].to_vec();
    broken.extend([0xff, 0xfe, 0xfd]);
    std::fs::write(&bad, &broken).unwrap();
    let mut args = tiny(&tmp.path().join("unused"));
    args.extend([
        "--multirun".to_string(),
        format!("hydra.sweep.dir={}", dir.display()),
        format!("mlflow.uri={}", tmp.path().join("mlruns").display()),
        format!(
            "dataset.training_path={},{},{}",
            good.display(),
            bad.display(),
            good.display()
        ),
        "general.global_seed=1,2".into(),
        "hydra.sweeper.name=random".into(),
        "hydra.sweeper.n_trials=3".into(),
        "hydra.sweeper.seed=5".into(),
        "hydra.launcher.n_jobs=2".into(),
    ]);
    let first = run(&args);
    assert_eq!(first.code, 1, "{}", first.all());
    assert!(first.stderr.contains("did not finish"), "{}", first.all());
    let rows = read_csv(&dir.join("sweep.csv"));
    assert_eq!(rows.len(), 3);
    let failed: Vec<&str> = rows
        .iter()
        .filter(|r| r["status"] == "failed")
        .map(|r| r["job"].as_str())
        .collect();
    let bad_jobs: Vec<String> = manifest(&dir)["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|j| {
            j["overrides"]
                .as_array()
                .unwrap()
                .iter()
                .any(|o| o.as_str().unwrap().contains("bad.txt"))
        })
        .map(|j| j["num"].to_string())
        .collect();
    assert!(
        !bad_jobs.is_empty(),
        "the sample should include the bad corpus"
    );
    assert_eq!(failed, bad_jobs, "{}", first.all());
    assert_eq!(
        rows.iter().filter(|r| r["status"] == "finished").count(),
        3 - failed.len()
    );
    let finished_before: Vec<(String, std::time::SystemTime)> = rows
        .iter()
        .filter(|r| r["status"] == "finished")
        .map(|r| {
            let m = std::fs::metadata(Path::new(&r["run_dir"]).join("metrics.json"))
                .unwrap()
                .modified()
                .unwrap();
            (r["run_dir"].clone(), m)
        })
        .collect();

    std::fs::write(&bad, &text).unwrap();
    let second = run(&args);
    assert_eq!(second.code, 0, "{}", second.all());
    assert!(
        second
            .stdout
            .contains(&format!("{} already finished (skipped)", 3 - failed.len())),
        "{}",
        second.stdout
    );
    let rows = read_csv(&dir.join("sweep.csv"));
    assert!(rows.iter().all(|r| r["status"] == "finished"), "{rows:?}");
    for (run_dir, modified) in finished_before {
        let now = std::fs::metadata(Path::new(&run_dir).join("metrics.json"))
            .unwrap()
            .modified()
            .unwrap();
        assert_eq!(now, modified, "{run_dir} ran again");
    }
}

#[test]
fn the_whole_sweep_is_validated_before_any_job_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("sweep");
    let mut args = tiny(&tmp.path().join("unused"));
    args.extend([
        "-m".to_string(),
        format!("hydra.sweep.dir={}", dir.display()),
        "model.num_layers=1,2,0".into(),
    ]);
    let ran = run(&args);
    assert_eq!(ran.code, 2, "{}", ran.all());
    assert!(
        ran.stderr.contains("sweep job 2") && ran.stderr.contains("model.num_layers"),
        "{}",
        ran.stderr
    );
    assert!(!dir.exists());
    let mut bad_syntax = tiny(&tmp.path().join("unused"));
    bad_syntax.extend([
        "-m".to_string(),
        format!("hydra.sweep.dir={}", dir.display()),
        "model.embed_dim=range(16,8)".into(),
    ]);
    let ran = run(&bad_syntax);
    assert_eq!(ran.code, 2, "{}", ran.all());
    assert!(
        ran.stderr.contains("model.embed_dim=range(16,8)") && ran.stderr.contains("is empty"),
        "{}",
        ran.stderr
    );
    assert!(!dir.exists());
    let ran = textzoo(&["sweep-status", tmp.path().to_str().unwrap()]);
    assert_eq!(ran.code, 2, "{}", ran.all());
    assert!(
        ran.stderr.contains("is not a sweep directory"),
        "{}",
        ran.stderr
    );
}

/// Starts `textzoo` without waiting, its output to files in `dir`.
fn spawn(args: &[String], dir: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_textzoo"))
        .args(args)
        .current_dir(workspace_root())
        .env("NO_COLOR", "1")
        .stdout(std::fs::File::create(dir.join("stdout.txt")).unwrap())
        .stderr(std::fs::File::create(dir.join("stderr.txt")).unwrap())
        .stdin(Stdio::null())
        .spawn()
        .expect("start textzoo")
}

fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn interrupt(child: &Child) {
    let ok = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

fn wait_exit(child: &mut Child, timeout: Duration) -> i32 {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code().unwrap_or(-1);
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            panic!("textzoo did not exit within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Jobs that train for a long time, to be interrupted.
fn long_sweep(tmp: &Path, dir: &Path) -> Vec<String> {
    let mut args = tiny(&tmp.join("unused"));
    args.extend([
        "-m".to_string(),
        format!("hydra.sweep.dir={}", dir.display()),
        format!("mlflow.uri={}", tmp.join("mlruns").display()),
        "operation_mode=training".into(),
        "training.max_steps=100000000".into(),
        "training.eval_interval=1000".into(),
        "general.global_seed=1,2".into(),
    ]);
    args
}

#[test]
fn ctrl_c_stops_a_local_sweep_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("sweep");
    let mut child = spawn(&long_sweep(tmp.path(), &dir), tmp.path());
    // Job 0 is training (its handler is installed once the pipeline runs).
    wait_for("job 0 to train", Duration::from_secs(60), || {
        std::fs::read_to_string(dir.join(".sweep/logs/0.log"))
            .is_ok_and(|l| l.contains("[1/1] training"))
    });
    interrupt(&child);
    let code = wait_exit(&mut child, Duration::from_secs(60));
    let out = std::fs::read_to_string(tmp.path().join("stdout.txt")).unwrap();
    assert_eq!(code, 130, "{out}");
    let rows = read_csv(&dir.join("sweep.csv"));
    assert_eq!(rows[0]["status"], "interrupted", "{rows:?}");
    assert_eq!(rows[1]["status"], "not run", "{rows:?}");
    // The interrupted job stopped at a safe point and wrote its resume checkpoint.
    assert!(dir
        .join("0/saved_models/checkpoints/last.safetensors")
        .is_file());
}

/// Whether the Slurm tests run: required under `TEXTZOO_SLURM=1` (CI), else when `sinfo`
/// answers.
fn slurm() -> bool {
    let required = std::env::var("TEXTZOO_SLURM").is_ok_and(|v| v == "1");
    let works = Command::new("sinfo")
        .args(["-h", "-o", "%t"])
        .output()
        .is_ok_and(|o| o.status.success() && !o.stdout.is_empty());
    if required {
        assert!(
            works,
            "TEXTZOO_SLURM=1 but `sinfo` fails: start Slurm with tests/slurm/one_node.sh start DIR and export SLURM_CONF=DIR/slurm.conf"
        );
    } else if !works {
        eprintln!(
            "skipping: no working Slurm (`sinfo` fails); .ci/run starts one with tests/slurm/one_node.sh and sets TEXTZOO_SLURM=1"
        );
    }
    works
}

fn queued(job_id: &str) -> String {
    let out = Command::new("squeue")
        .args(["-h", "-r", "-j", job_id, "-o", "%i %T"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn slurm_sweep_matches_the_local_one() {
    if !slurm() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let local = tmp.path().join("local");
    let on_slurm = tmp.path().join("slurm");
    let mlruns = tmp.path().join("mlruns");
    let ran = run(&board_search(&local, &mlruns));
    assert_eq!(ran.code, 0, "{}", ran.all());
    let mut args = board_search(&on_slurm, &mlruns);
    args.extend([
        "hydra.launcher.name=slurm".to_string(),
        "hydra.launcher.poll_seconds=0.5".into(),
        "hydra.launcher.cpus_per_task=1".into(),
        "hydra.launcher.array_parallelism=2".into(),
        "hydra.launcher.time=10".into(),
    ]);
    let ran = run(&args);
    assert_eq!(ran.code, 0, "{}", ran.all());
    assert!(
        ran.stdout.contains("submitted Slurm job array")
            || ran.stderr.contains("submitted Slurm job array"),
        "{}",
        ran.all()
    );
    let script = std::fs::read_to_string(on_slurm.join(".sweep/array.sbatch")).unwrap();
    assert!(script.contains("#SBATCH --array=0-3%2"), "{script}");
    assert!(script.contains("#SBATCH --cpus-per-task=1"), "{script}");
    let a = read_csv(&local.join("sweep.csv"));
    let b = read_csv(&on_slurm.join("sweep.csv"));
    assert_eq!(a.len(), 4);
    for (x, y) in a.iter().zip(&b) {
        for (key, value) in x {
            if key == "run_dir" || key == "int8_model" {
                continue;
            }
            // Same seeds, same numbers: perplexities, sizes, fit, emulated tokens/s.
            assert_eq!(value, &y[key], "job {} column {key}", x["job"]);
        }
    }
    for n in 0..4 {
        assert!(on_slurm.join(format!(".sweep/logs/{n}.log")).is_file());
    }
}

#[test]
fn slurm_ctrl_c_cancels_the_array_and_wait_false_returns_at_once() {
    if !slurm() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("sweep");
    let mut args = long_sweep(tmp.path(), &dir);
    args.extend([
        "hydra.launcher.name=slurm".to_string(),
        "hydra.launcher.poll_seconds=0.5".into(),
    ]);
    let mut child = spawn(&args, tmp.path());
    let mut job_id = String::new();
    wait_for("the array to be submitted", Duration::from_secs(60), || {
        job_id = std::fs::read_to_string(dir.join(".sweep/manifest.json"))
            .ok()
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
            .and_then(|m| m["slurm_job_id"].as_str().map(str::to_string))
            .unwrap_or_default();
        !job_id.is_empty()
    });
    wait_for("a task to run", Duration::from_secs(60), || {
        queued(&job_id).contains("RUNNING")
    });
    interrupt(&child);
    let code = wait_exit(&mut child, Duration::from_secs(90));
    let out = std::fs::read_to_string(tmp.path().join("stdout.txt")).unwrap();
    let err = std::fs::read_to_string(tmp.path().join("stderr.txt")).unwrap();
    assert_eq!(code, 130, "{out}\n{err}");
    assert!(err.contains("scancel"), "{err}");
    assert_eq!(queued(&job_id).trim(), "", "the array is still queued");
    let rows = read_csv(&dir.join("sweep.csv"));
    assert!(
        rows.iter().all(|r| r["status"] == "interrupted"),
        "{rows:?}"
    );

    // wait=false: submitted, then followed with sweep-status and reported with sweep-report.
    let quick = tmp.path().join("quick");
    let mut args = tiny(&tmp.path().join("unused"));
    args.extend([
        "-m".to_string(),
        format!("hydra.sweep.dir={}", quick.display()),
        format!("mlflow.uri={}", tmp.path().join("mlruns").display()),
        "operation_mode=training".into(),
        "general.global_seed=1,2".into(),
        "hydra.launcher.name=slurm".into(),
        "hydra.launcher.wait=false".into(),
    ]);
    let ran = run(&args);
    assert_eq!(ran.code, 0, "{}", ran.all());
    assert!(
        ran.stdout.contains("textzoo sweep-status"),
        "{}",
        ran.stdout
    );
    assert!(!quick.join("sweep.csv").exists());
    let id = manifest(&quick)["slurm_job_id"]
        .as_str()
        .unwrap()
        .to_string();
    wait_for("the quick array to end", Duration::from_secs(120), || {
        queued(&id).trim().is_empty()
    });
    let status = textzoo(&["sweep-status", quick.to_str().unwrap()]);
    assert_eq!(status.code, 0, "{}", status.all());
    assert!(
        status.stdout.contains("total: 2 finished"),
        "{}",
        status.stdout
    );
    let report = textzoo(&["sweep-report", quick.to_str().unwrap()]);
    assert_eq!(report.code, 0, "{}", report.all());
    let rows = read_csv(&quick.join("sweep.csv"));
    assert!(rows.iter().all(|r| r["status"] == "finished"), "{rows:?}");
}
