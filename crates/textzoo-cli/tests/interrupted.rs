//! Interrupted work: a training run killed with `kill -9` (no chance to write anything on the
//! way out) resumes from `last.safetensors`, loses at most one checkpoint interval, and ends
//! exactly where an uninterrupted run with the same seed ends.

mod common;
use common::*;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Long enough to be killed in the middle, short enough for CI (about a second per run here).
fn args(run: &Path) -> Vec<String> {
    let mut a = tiny(run);
    a.extend(
        [
            "operation_mode=training",
            "training.max_steps=1200",
            // Validation and checkpoints out of step, so a resume lands between validations
            // (the train loss averaged since the last validation must carry over).
            "training.eval_interval=70",
            "training.checkpoint_interval=100",
            "mlflow.uri=",
        ]
        .map(String::from),
    );
    a
}

fn metrics(run: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(run.join("metrics.json")).unwrap()).unwrap()
}

/// The `checksum` of a model file's tensor data, from its safetensors header.
fn checksum(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    header["__metadata__"]["checksum"]
        .as_str()
        .unwrap()
        .to_string()
}

fn step_of(checkpoint: &Path) -> u64 {
    let bytes = std::fs::read(checkpoint).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let state: serde_json::Value =
        serde_json::from_str(header["__metadata__"]["checkpoint"].as_str().unwrap()).unwrap();
    state["step"].as_u64().unwrap()
}

#[test]
fn kill_9_during_training_then_resume_ends_bit_identical() {
    let tmp = tempfile::tempdir().unwrap();
    let whole = tmp.path().join("uninterrupted");
    let a = args(&whole);
    let ran = textzoo(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(ran.code, 0, "{}", ran.all());

    // The same run, killed without warning once its fifth periodic checkpoint exists.
    let killed = tmp.path().join("killed");
    let checkpoints = killed.join("saved_models/checkpoints");
    let mut child = Command::new(env!("CARGO_BIN_EXE_textzoo"))
        .args(args(&killed))
        .current_dir(workspace_root())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while !checkpoints.join("step_00000500.safetensors").exists() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before it could be killed"
        );
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "no checkpoint"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    // last.safetensors is the newest periodic checkpoint: at most one interval is lost.
    let last = checkpoints.join("last.safetensors");
    let newest = std::fs::read_dir(&checkpoints)
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            name.strip_prefix("step_")?
                .strip_suffix(".safetensors")?
                .parse::<u64>()
                .ok()
        })
        .max()
        .unwrap();
    // (A kill between writing `last` and naming it `step_N` leaves `last` one newer.)
    let resumed_at = step_of(&last);
    assert!(
        resumed_at == newest || resumed_at == newest + 100,
        "{resumed_at} {newest}"
    );
    assert!((500..1200).contains(&resumed_at), "{resumed_at}");

    let resumed = tmp.path().join("resumed");
    let mut r = args(&resumed);
    r.push(format!("training.resume_training_from={}", last.display()));
    let ran = textzoo(&r.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(ran.code, 0, "{}", ran.all());

    // Same final validation loss (bits), same history after the resume point, same model.
    let (mw, mr) = (metrics(&whole), metrics(&resumed));
    let history = |m: &serde_json::Value| m["training"]["history"].as_array().unwrap().clone();
    let (hw, hr) = (history(&mw), history(&mr));
    let tail: Vec<_> = hw
        .iter()
        .filter(|h| h["step"].as_u64().unwrap() > resumed_at)
        .cloned()
        .collect();
    assert_eq!(hr, tail, "the resumed run's validations differ");
    let bits = |m: &serde_json::Value| m["training"]["best_val_loss"].as_f64().unwrap().to_bits();
    assert_eq!(bits(&mw), bits(&mr));
    let final_val =
        |h: &[serde_json::Value]| h.last().unwrap()["val_loss"].as_f64().unwrap().to_bits();
    assert_eq!(final_val(&hw), final_val(&hr));
    assert_eq!(
        checksum(&whole.join("saved_models/model.safetensors")),
        checksum(&resumed.join("saved_models/model.safetensors"))
    );
    // Every training-log row after the resume point is the uninterrupted run's row.
    let rows = |run: &Path| -> Vec<String> {
        std::fs::read_to_string(run.join("training_log.csv"))
            .unwrap()
            .lines()
            .skip(1)
            .map(String::from)
            .collect()
    };
    let resumed_rows = rows(&resumed);
    assert_eq!(resumed_rows.len() as u64, 1200 - resumed_at);
    assert_eq!(resumed_rows[..], rows(&whole)[resumed_at as usize..]);
}
