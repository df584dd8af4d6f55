//! Experiment tracking end to end, checked with the real consumers: MLflow (`search_runs` on the
//! local file store, `mlflow ui` as the README says, a real `mlflow server` over REST),
//! TensorBoard's event reader, and headless Chromium for the HTML report.
//!
//! Needs what `.ci/run` installs: `.venv` with tests/python/requirements.txt (or
//! `TEXTZOO_PYTHON`), and Debian's `chromium` (or `TEXTZOO_CHROMIUM`). Missing tools fail the
//! tests with that hint; they never pass silently.

mod common;
use common::*;
use serde_json::Value;
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const HINT: &str = "run `.ci/run` (installs Debian `chromium` and creates .venv from \
                    tests/python/requirements.txt), or set TEXTZOO_PYTHON / TEXTZOO_CHROMIUM";
const PROJECT: &str = "tracking_e2e";

fn chromium() -> PathBuf {
    let path = std::env::var_os("TEXTZOO_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    assert!(path.exists(), "{} missing: {HINT}", path.display());
    path
}

/// Runs tests/python/tracking_read.py and parses its JSON.
fn read(args: &[&str]) -> Value {
    let out = Command::new(python())
        .arg(workspace_root().join("tests/python/tracking_read.py"))
        .args(args)
        .env("MLFLOW_ALLOW_FILE_STORE", "true")
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "tracking_read.py {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let value: Value = serde_json::from_slice(&out.stdout).expect("JSON from tracking_read.py");
    assert!(value.get("error").is_none(), "{args:?}: {value}");
    value
}

/// The tiny training chain with tracking into `store`, shared by the tests that only read.
struct SharedRun {
    dir: PathBuf,
    store: PathBuf,
    name: String,
}

fn shared_run() -> &'static SharedRun {
    static RUN: OnceLock<SharedRun> = OnceLock::new();
    RUN.get_or_init(|| {
        let base = Path::new(env!("CARGO_TARGET_TMPDIR")).join("tracking_shared");
        let _ = std::fs::remove_dir_all(&base);
        let dir = base.join("run_e2e");
        let store = base.join("mlruns");
        let ran = run_tiny(&dir, &format!("mlflow.uri={}", store.display()), PROJECT);
        assert_eq!(ran.code, 0, "{}", ran.all());
        SharedRun {
            dir,
            store,
            name: "run_e2e".into(),
        }
    })
}

fn tiny_args(dir: &Path, uri_override: &str, project: &str) -> Vec<String> {
    let mut args = tiny(dir);
    args.extend([
        "operation_mode=chain_tqe".to_string(),
        "training.max_steps=6".into(),
        "training.eval_interval=2".into(),
        uri_override.to_string(),
        format!("general.project_name={project}"),
    ]);
    args
}

fn run_tiny(dir: &Path, uri_override: &str, project: &str) -> Ran {
    let args = tiny_args(dir, uri_override, project);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    textzoo(&refs)
}

/// `(step, loss, lr, grad_norm)` rows of training_log.csv.
fn csv_rows(run: &Path) -> Vec<(u64, f64, f64, f64)> {
    std::fs::read_to_string(run.join("training_log.csv"))
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| {
            let c: Vec<&str> = l.split(',').collect();
            (
                c[0].parse().unwrap(),
                c[1].parse().unwrap(),
                c[2].parse().unwrap(),
                c[3].parse().unwrap(),
            )
        })
        .collect()
}

fn metrics_json(run: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(run.join("metrics.json")).unwrap()).unwrap()
}

/// `(step, val_loss)` of the validations in metrics.json.
fn validations(run: &Path) -> Vec<(u64, f64)> {
    metrics_json(run)["training"]["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h["step"].as_u64().unwrap(), h["val_loss"].as_f64().unwrap()))
        .collect()
}

/// `[[step, value, time], ...]` as `(step, value)`.
fn points(series: &Value) -> Vec<(u64, f64)> {
    series
        .as_array()
        .unwrap_or_else(|| panic!("not a series: {series}"))
        .iter()
        .map(|p| (p[0].as_u64().unwrap(), p[1].as_f64().unwrap()))
        .collect()
}

fn assert_close(got: &[(u64, f64)], want: &[(u64, f64)], tol: f64, what: &str) {
    assert_eq!(
        got.iter().map(|p| p.0).collect::<Vec<_>>(),
        want.iter().map(|p| p.0).collect::<Vec<_>>(),
        "{what}: steps"
    );
    for ((s, g), (_, w)) in got.iter().zip(want) {
        assert!(
            (g - w).abs() <= tol * w.abs().max(1.0),
            "{what} at step {s}: got {g}, want {w}"
        );
    }
}

/// Checks one MLflow run as read back by the Python client against the run directory.
fn check_mlflow_run(run_json: &Value, run_dir: &Path, uri: &str, project: &str) {
    assert_eq!(run_json["status"], "FINISHED", "{run_json}");
    let params = &run_json["params"];
    assert_eq!(params["model.embed_dim"], "16");
    assert_eq!(params["training.max_steps"], "6");
    assert_eq!(params["operation_mode"], "chain_tqe");
    assert_eq!(params["general.project_name"], project);
    assert_eq!(params["mlflow.uri"], uri);
    assert_eq!(params["textzoo_version"], env!("CARGO_PKG_VERSION"));
    assert!(
        params["model_path"]
            .as_str()
            .is_some_and(|p| p.ends_with("model_int8.safetensors")),
        "{params}"
    );
    let name = run_dir.file_name().unwrap().to_str().unwrap();
    assert_eq!(run_json["tags"]["mlflow.runName"], name);
    assert_eq!(run_json["run_name"], name);
    let m = &run_json["metrics"];
    let csv = csv_rows(run_dir);
    assert_eq!(csv.len(), 6);
    let want = |f: fn(&(u64, f64, f64, f64)) -> f64| -> Vec<(u64, f64)> {
        csv.iter().map(|r| (r.0, f(r))).collect()
    };
    assert_close(
        &points(&m["train_loss"]),
        &want(|r| r.1),
        1e-12,
        "train_loss",
    );
    assert_close(
        &points(&m["learning_rate"]),
        &want(|r| r.2),
        1e-12,
        "learning_rate",
    );
    assert_close(&points(&m["grad_norm"]), &want(|r| r.3), 1e-12, "grad_norm");
    let val = validations(run_dir);
    assert!(!val.is_empty());
    assert_close(&points(&m["val_loss"]), &val, 1e-12, "val_loss");
    let ppl: Vec<(u64, f64)> = val.iter().map(|&(s, l)| (s, l.exp())).collect();
    assert_close(&points(&m["val_perplexity"]), &ppl, 1e-9, "val_perplexity");
    let metrics = metrics_json(run_dir);
    for (key, section, field) in [
        ("float_val_loss", "float", "val_loss"),
        ("int8_val_perplexity", "int8", "val_perplexity"),
        ("training_tokens_per_s", "training", "tokens_per_s"),
    ] {
        let want = metrics[section][field].as_f64().unwrap();
        assert_close(&points(&m[key]), &[(6, want)], 1e-12, key);
    }
    let artifacts: Vec<&str> = run_json["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for want in [
        "report.html",
        "metrics.json",
        ".hydra/config.yaml",
        "plots/loss.svg",
        "training_log.csv",
        "saved_models/model.safetensors",
        "quantized_models/model_int8.safetensors",
    ] {
        assert!(artifacts.contains(&want), "{want} not in {artifacts:?}");
    }
    assert!(
        artifacts
            .iter()
            .any(|a| a.starts_with("logs/events.out.tfevents.")),
        "{artifacts:?}"
    );
    assert!(
        !artifacts.iter().any(|a| a.starts_with("data/")),
        "{artifacts:?}"
    );
}

#[test]
fn mlflow_search_runs_finds_the_run_in_the_local_store() {
    let run = shared_run();
    let uri = run.store.display().to_string();
    let json = read(&["mlflow", &uri, PROJECT, &run.name]);
    check_mlflow_run(
        &json,
        &run.dir,
        &format!("{}", run.store.display()),
        PROJECT,
    );
}

#[test]
fn mlflow_ui_command_from_the_readme_serves_the_local_store() {
    let run = shared_run();
    let port = free_port();
    let tmp = tempfile::tempdir().unwrap();
    // README: MLFLOW_ALLOW_FILE_STORE=true mlflow ui --backend-store-uri <store>
    let server = Server::start(
        &[
            "ui",
            "--backend-store-uri",
            &run.store.display().to_string(),
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
        ],
        tmp.path(),
        port,
    );
    let uri = format!("http://127.0.0.1:{port}");
    let json = read(&["mlflow", &uri, PROJECT, &run.name]);
    assert_eq!(json["status"], "FINISHED", "{json}");
    assert_eq!(json["params"]["model.embed_dim"], "16");
    assert_eq!(points(&json["metrics"]["train_loss"]).len(), 6);
    drop(server);
}

#[test]
fn tensorboard_reads_the_logged_scalars() {
    let run = shared_run();
    let logs = run.dir.join("logs");
    let json = read(&["tensorboard", &logs.display().to_string()]);
    let s = &json["scalars"];
    let csv = csv_rows(&run.dir);
    let f32_tol = 1e-6;
    let train: Vec<(u64, f64)> = csv.iter().map(|r| (r.0, r.1)).collect();
    let lr: Vec<(u64, f64)> = csv.iter().map(|r| (r.0, r.2)).collect();
    assert_close(&points(&s["train_loss"]), &train, f32_tol, "train_loss");
    assert_close(&points(&s["learning_rate"]), &lr, f32_tol, "learning_rate");
    assert_close(
        &points(&s["val_loss"]),
        &validations(&run.dir),
        f32_tol,
        "val_loss",
    );
    let m = metrics_json(&run.dir);
    assert_close(
        &points(&s["float_val_accuracy"]),
        &[(6, m["float"]["val_accuracy"].as_f64().unwrap())],
        f32_tol,
        "float_val_accuracy",
    );
    // Wall times are seconds since the epoch, not milliseconds.
    let t = s["train_loss"][0][2].as_f64().unwrap();
    assert!((1.5e9..4e9).contains(&t), "{t}");
}

#[test]
fn html_report_renders_in_headless_chromium_with_its_plots() {
    let run = shared_run();
    let report = run.dir.join("report.html");
    let html = std::fs::read_to_string(&report).unwrap();
    for plot in [
        "loss.svg",
        "perplexity.svg",
        "learning_rate.svg",
        "float_vs_int8.svg",
    ] {
        assert!(run.dir.join("plots").join(plot).exists(), "{plot}");
    }
    assert!(html.matches("<svg").count() >= 4, "plots not inlined");
    assert!(html.contains("embed_dim: 16"), "configuration missing");
    assert!(html.contains("val_perplexity"), "metric tables missing");
    // Self-contained: nothing to fetch, no scripts.
    for banned in ["<script", "<link", "src=", "url(", "@import"] {
        assert!(!html.contains(banned), "report contains {banned}");
    }
    let tmp = tempfile::tempdir().unwrap();
    let png = tmp.path().join("report.png");
    let mut child = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--hide-scrollbars",
        ])
        .arg(format!(
            "--user-data-dir={}",
            tmp.path().join("profile").display()
        ))
        .arg(format!("--screenshot={}", png.display()))
        .arg("--window-size=1200,1600")
        .arg(format!("file://{}", report.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start chromium");
    let status = wait_timeout(&mut child, Duration::from_secs(120));
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    assert!(
        status.is_some_and(|s| s.success()),
        "chromium failed: {err}"
    );
    assert!(png.exists(), "no screenshot: {err}");
    let stats = read(&["png", &png.display().to_string()]);
    assert_eq!(stats["width"], 1200, "{}", stats["width"]);
    let non_white = stats["non_white_fraction"].as_f64().unwrap();
    let distinct = stats["distinct_colors"].as_u64().unwrap();
    assert!(
        non_white > 0.03 && distinct > 50,
        "blank screenshot: {non_white} non-white, {distinct} colours"
    );
    // The plots' line and bar colours (tracking::plots::TRAIN and VALIDATION) are on screen.
    for (rgb, what) in [
        ("31,119,180", "train/float blue"),
        ("255,127,14", "validation/int8 orange"),
    ] {
        let n = stats["colors"][rgb].as_u64().unwrap_or(0);
        assert!(n > 100, "{what} ({rgb}) drawn on only {n} pixels");
    }
}

#[test]
fn mlflow_server_receives_the_run_and_a_stopped_server_only_warns() {
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let db = format!("sqlite:///{}", tmp.path().join("mlflow.db").display());
    let artifacts = tmp.path().join("artifacts").display().to_string();
    let server = Server::start(
        &[
            "server",
            "--backend-store-uri",
            &db,
            "--artifacts-destination",
            &artifacts,
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--workers",
            "1",
        ],
        tmp.path(),
        port,
    );
    let uri = format!("http://127.0.0.1:{port}");
    let uri_arg = format!("mlflow.uri={uri}");

    // 1. A run reaches the server, artifacts included.
    let dir = tmp.path().join("rest_run");
    let ran = run_tiny(&dir, &uri_arg, "tracking_rest");
    assert_eq!(ran.code, 0, "{}", ran.all());
    assert!(
        ran.stderr.contains("MLflow run logged to"),
        "{}",
        ran.stderr
    );
    let json = read(&["mlflow", &uri, "tracking_rest", "rest_run"]);
    check_mlflow_run(&json, &dir, &uri, "tracking_rest");

    // 2. The server stops while a run is under way: a warning, exit code 0, a complete run.
    let dir = tmp.path().join("stopped_run");
    let child = Command::new(env!("CARGO_BIN_EXE_textzoo"))
        .args(tiny_args(&dir, &uri_arg, "tracking_rest"))
        .current_dir(workspace_root())
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start textzoo");
    let started = Instant::now();
    while !dir.join("textzoo.log").exists() && started.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(server);
    let ran: Ran = child.wait_with_output().expect("textzoo").into();
    assert_stopped_server_warning(&ran, &dir);
}

#[test]
fn unreachable_server_warns_and_keeps_the_run() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("offline_run");
    let uri = format!("mlflow.uri=http://127.0.0.1:{}", free_port());
    let ran = run_tiny(&dir, &uri, "tracking_offline");
    assert_stopped_server_warning(&ran, &dir);
}

fn assert_stopped_server_warning(ran: &Ran, dir: &Path) {
    assert_eq!(ran.code, 0, "{}", ran.all());
    assert!(
        ran.stderr.contains("WARN") && ran.stderr.contains("unreachable"),
        "no clear warning:\n{}",
        ran.stderr
    );
    assert!(ran.stderr.contains("the results stay in"), "{}", ran.stderr);
    let log = std::fs::read_to_string(dir.join("textzoo.log")).unwrap();
    assert!(log.contains("unreachable"), "warning not in textzoo.log");
    for file in [
        "metrics.json",
        "report.html",
        "plots/loss.svg",
        "saved_models/model.safetensors",
        "quantized_models/model_int8.safetensors",
        ".hydra/config.yaml",
    ] {
        assert!(dir.join(file).exists(), "{file} missing");
    }
    let events = std::fs::read_dir(dir.join("logs")).unwrap().count();
    assert_eq!(events, 1);
    assert!(metrics_json(dir)["int8"]["val_loss"].is_number());
    assert_eq!(
        ran.stdout.trim_end().lines().last().unwrap(),
        format!("run directory: {}", dir.display())
    );
}

/// An MLflow server or UI in its own process group, killed with all its workers on drop.
struct Server {
    child: Child,
}

impl Server {
    fn start(args: &[&str], dir: &Path, port: u16) -> Self {
        let log = dir.join(format!("mlflow_{port}.log"));
        let file = std::fs::File::create(&log).unwrap();
        let child = Command::new(python())
            .args(["-m", "mlflow"])
            .args(args)
            .current_dir(dir)
            .env("MLFLOW_ALLOW_FILE_STORE", "true")
            // The server's background job runner is not needed for tracking.
            .env("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .process_group(0)
            .spawn()
            .expect("start mlflow");
        let mut server = Server { child };
        let started = Instant::now();
        loop {
            if health(port) {
                return server;
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!(
                    "mlflow {args:?} exited with {status}:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            if started.elapsed() > Duration::from_secs(180) {
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                drop(server);
                panic!("mlflow {args:?} did not answer on port {port}:\n{text}");
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // The process group id is the leader's pid (`process_group(0)`).
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.wait();
    }
}

fn health(port: u16) -> bool {
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    if stream
        .write_all(b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut reply = String::new();
    let _ = stream.read_to_string(&mut reply);
    reply.starts_with("HTTP/1.1 200") || reply.starts_with("HTTP/1.0 200")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_timeout(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let started = Instant::now();
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Three runs started at once with the same `hydra.run.dir` (an existing empty folder), the same
/// corpus and token-cache layout, and the same MLflow file store: each gets its own directory
/// (`dir`, `dir_1`, `dir_2`) whose files are all its own, whole and uninterleaved, and the
/// real mlflow reads three finished runs in one experiment.
#[test]
fn runs_started_at_once_in_one_directory_and_store_never_share_anything() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("same_dir");
    let store = tmp.path().join("mlruns");
    let project = "concurrent_runs";
    let mut args = tiny(&dir);
    args.extend([
        "operation_mode=training".to_string(),
        "training.max_steps=40".into(),
        format!("mlflow.uri={}", store.display()),
        format!("general.project_name={project}"),
    ]);
    // An empty directory made beforehand is claimable too: only one run may take it.
    std::fs::create_dir(&dir).unwrap();
    let children: Vec<Child> = (0..3)
        .map(|_| {
            Command::new(env!("CARGO_BIN_EXE_textzoo"))
                .args(&args)
                .current_dir(workspace_root())
                .env("NO_COLOR", "1")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut dirs = Vec::new();
    for child in children {
        let out = child.wait_with_output().unwrap();
        let ran: Ran = out.into();
        assert_eq!(ran.code, 0, "{}", ran.all());
        let last = ran.stdout.trim_end().lines().last().unwrap().to_string();
        let own = PathBuf::from(last.strip_prefix("run directory: ").unwrap());
        dirs.push(own);
    }
    dirs.sort();
    let name = |suffix: &str| PathBuf::from(format!("{}{suffix}", dir.display()));
    assert_eq!(dirs, vec![name(""), name("_1"), name("_2")]);
    let cache = std::fs::read(dirs[0].join("data/train.u16")).unwrap();
    for own in &dirs {
        let log = std::fs::read_to_string(own.join("textzoo.log")).unwrap();
        for other in &dirs {
            let mention = format!("run directory {}, ", other.display());
            assert_eq!(log.contains(&mention), other == own, "{own:?} log:\n{log}");
        }
        assert!(own.join(".hydra/config.yaml").is_file());
        assert_eq!(metrics_json(own)["training"]["steps"], 40);
        // One writer per file: the training log has exactly its own 40 rows.
        let rows = std::fs::read_to_string(own.join("training_log.csv")).unwrap();
        assert_eq!(rows.lines().count(), 41, "{own:?}:\n{rows}");
        assert_eq!(std::fs::read(own.join("data/train.u16")).unwrap(), cache);
        textzoo::artifact::ModelFile::open(&own.join("saved_models/model.safetensors")).unwrap();
        let run = read(&[
            "mlflow",
            &store.display().to_string(),
            project,
            &own.file_name().unwrap().to_string_lossy(),
        ]);
        assert_eq!(run["status"], "FINISHED", "{run}");
        assert!(!run["metrics"]["train_loss"].as_array().unwrap().is_empty());
    }
    // One experiment of that name, not one per run.
    let experiments = std::fs::read_dir(&store)
        .unwrap()
        .filter_map(|e| std::fs::read_to_string(e.unwrap().path().join("meta.yaml")).ok())
        .filter(|m| m.contains(&format!("name: {project}")))
        .count();
    assert_eq!(experiments, 1);
}
