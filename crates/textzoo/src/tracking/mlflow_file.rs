//! An MLflow run in a local file store, in the layout MLflow's own `FileStore` writes (checked
//! against mlflow 3.17):
//!
//! ```text
//! <root>/.trash/
//! <root>/0/meta.yaml                          the "Default" experiment, as mlflow creates it
//! <root>/<experiment_id>/meta.yaml            name, artifact_location, lifecycle_stage
//! <root>/<experiment_id>/<run_id>/meta.yaml   run_id, run_name, status (3 = FINISHED), times
//!     params/<key>    the value
//!     metrics/<key>   lines "<epoch_ms> <value> <step>"
//!     tags/<key>      the value
//!     artifacts/      the run directory's files
//! ```
//!
//! mlflow ≥ 3.x reads this store only with `MLFLOW_ALLOW_FILE_STORE=true` (README "Tracking").
//! A file store needs no server and no database, and it is what the model zoo's `mlruns/` is,
//! which is why it stays the default.

use super::record::{absolute, Record, Scalar};
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Run-directory entries that are not copied as artifacts: the token cache (large, and
/// rebuilt from the corpus) and the resume checkpoint (a copy of the model plus optimizer
/// state). Both stay in the run directory.
const SKIPPED_ARTIFACTS: [&str; 2] = ["data", "saved_models/checkpoints"];

/// The store directory for a local `mlflow.uri`: a plain path (relative to the working
/// directory, as MLflow resolves it) or a `file:` URI. `None` for any other scheme.
pub fn local_store_root(uri: &str) -> Option<PathBuf> {
    if let Some(rest) = uri.strip_prefix("file://") {
        // file:///abs/path (empty authority) or file://localhost/abs/path
        let path = rest.strip_prefix("localhost").unwrap_or(rest);
        return Some(PathBuf::from(percent_decode(path)));
    }
    if let Some(rest) = uri.strip_prefix("file:") {
        return Some(PathBuf::from(percent_decode(rest)));
    }
    let scheme_like = uri
        .split_once(':')
        .is_some_and(|(s, _)| s.len() > 1 && s.chars().all(|c| c.is_ascii_alphanumeric()));
    if scheme_like || uri == "databricks" {
        return None;
    }
    Some(PathBuf::from(uri))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[derive(Serialize)]
struct ExperimentMeta<'a> {
    artifact_location: &'a str,
    creation_time: i64,
    experiment_id: &'a str,
    last_update_time: i64,
    lifecycle_stage: &'a str,
    name: &'a str,
}

/// Only what finding an experiment by name needs; `experiment_id` was an integer in old stores.
#[derive(Deserialize)]
struct ExistingExperiment {
    name: String,
    #[serde(default)]
    lifecycle_stage: Option<String>,
}

#[derive(Serialize)]
struct RunMeta<'a> {
    artifact_uri: &'a str,
    end_time: i64,
    entry_point_name: &'a str,
    experiment_id: &'a str,
    lifecycle_stage: &'a str,
    run_id: &'a str,
    run_name: &'a str,
    source_name: &'a str,
    source_type: u8,
    source_version: &'a str,
    start_time: i64,
    status: u8,
    tags: Vec<String>,
    user_id: &'a str,
}

/// Writes `record` as a new run of the experiment named `record.experiment` (created if
/// needed) and returns the run's directory in the store.
pub fn log_to_file_store(root: &Path, record: &Record) -> Result<PathBuf> {
    let run = create_run(root, &record.experiment)?;
    write_run(&run, record)?;
    Ok(run.dir)
}

/// A run's place in a file store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreRun {
    pub experiment_id: String,
    pub run_id: String,
    pub dir: PathBuf,
}

/// Creates an empty run (a new directory with a fresh id) of the experiment named
/// `experiment`, created if needed. Nothing lists it until [`write_run`] writes its meta.yaml.
pub fn create_run(root: &Path, experiment: &str) -> Result<StoreRun> {
    let root = std::path::absolute(root).map_err(|e| Error::io("resolving mlflow.uri", e))?;
    let io = |what: &str, path: &Path, e| Error::io(format!("{what} {}", path.display()), e);
    if !root.exists() {
        create_experiment_with_id(&root, "0", "Default")?;
    }
    let trash = root.join(".trash");
    std::fs::create_dir_all(&trash).map_err(|e| io("creating", &trash, e))?;
    let experiment_id = match find_experiment(&root, experiment)? {
        Some(id) => id,
        None => create_experiment(&root, experiment)?,
    };
    let experiment_dir = root.join(&experiment_id);
    loop {
        let id = random_hex(16);
        let dir = experiment_dir.join(&id);
        match std::fs::create_dir(&dir) {
            Ok(()) => {
                return Ok(StoreRun {
                    experiment_id,
                    run_id: id,
                    dir,
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io("creating", &dir, e)),
        }
    }
}

/// Writes (or rewrites: a sweep's parent run is written when it starts and again when it ends)
/// `record`'s params, tags, metrics and artifacts into `run`, then its meta.yaml.
pub fn write_run(run: &StoreRun, record: &Record) -> Result<()> {
    let io = |what: &str, path: &Path, e| Error::io(format!("{what} {}", path.display()), e);
    let run_dir = &run.dir;
    let artifacts = run_dir.join("artifacts");
    for sub in ["params", "metrics", "tags", "artifacts"] {
        let dir = run_dir.join(sub);
        std::fs::create_dir_all(&dir).map_err(|e| io("creating", &dir, e))?;
    }
    for (key, value) in &record.params {
        write_value(&run_dir.join("params"), key, value)?;
    }
    for (key, value) in &record.tags {
        write_value(&run_dir.join("tags"), key, value)?;
    }
    let mut by_key: BTreeMap<&str, Vec<&Scalar>> = BTreeMap::new();
    for s in record.all_scalars() {
        by_key.entry(&s.key).or_default().push(s);
    }
    for (key, points) in by_key {
        let text: String = points
            .iter()
            .map(|s| format!("{} {} {}\n", s.wall_ms, s.value, s.step))
            .collect();
        write_value(&run_dir.join("metrics"), key, &text)?;
    }
    copy_artifacts(record, &artifacts)?;
    // meta.yaml last: until it exists, mlflow does not list a half-written run.
    let artifact_uri = absolute(&artifacts);
    let meta = RunMeta {
        artifact_uri: &artifact_uri,
        end_time: record.end_ms,
        entry_point_name: "",
        experiment_id: &run.experiment_id,
        lifecycle_stage: "active",
        run_id: &run.run_id,
        run_name: &record.run_name,
        source_name: "",
        source_type: 4, // SourceType.LOCAL
        source_version: "",
        start_time: record.start_ms,
        status: record.status.code(),
        tags: Vec::new(),
        user_id: &record.user,
    };
    write_yaml(&run_dir.join("meta.yaml"), &meta)
}

/// Key names become file names; MLflow allows `/` in them (sub-directories) but never `..`.
fn write_value(dir: &Path, key: &str, value: &str) -> Result<()> {
    if key.is_empty()
        || key
            .split('/')
            .any(|p| p.is_empty() || p == "." || p == "..")
    {
        return Err(Error::Internal(format!(
            "{key:?} is not a valid MLflow key"
        )));
    }
    let path = dir.join(key);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| Error::io(format!("creating {}", parent.display()), e))?;
    }
    std::fs::write(&path, value).map_err(|e| Error::io(format!("writing {}", path.display()), e))
}

fn write_yaml<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let text = serde_saphyr::to_string(value)
        .map_err(|e| Error::Internal(format!("writing {}: {e}", path.display())))?;
    crate::util::write_atomic(path, text.as_bytes())
}

fn find_experiment(root: &Path, name: &str) -> Result<Option<String>> {
    let entries =
        std::fs::read_dir(root).map_err(|e| Error::io(format!("reading {}", root.display()), e))?;
    let mut ids: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter(|id| !id.starts_with('.'))
        .collect();
    ids.sort();
    for id in ids {
        let Ok(text) = std::fs::read_to_string(root.join(&id).join("meta.yaml")) else {
            continue;
        };
        let Ok(meta) = serde_saphyr::from_str::<ExistingExperiment>(&text) else {
            continue;
        };
        let active = meta.lifecycle_stage.as_deref().unwrap_or("active") == "active";
        if meta.name == name && active {
            return Ok(Some(id));
        }
    }
    Ok(None)
}

/// A new experiment with an id like MLflow's (an 18-digit integer). The id is derived from
/// the name, so two runs that create the same experiment at the same moment write the same
/// directory instead of two experiments with one name; a clash with another name, or with a
/// deleted experiment in `.trash`, falls back to random ids.
fn create_experiment(root: &Path, name: &str) -> Result<String> {
    // 24 bytes, one per digit (18 used).
    let mut candidate: Vec<u8> = [&b""[..], b"#2", b"#3"]
        .iter()
        .flat_map(|salt| fnv1a(&[name.as_bytes(), salt].concat()).to_le_bytes())
        .collect();
    loop {
        let digits: String = candidate
            .iter()
            .take(18)
            .enumerate()
            .map(|(i, b)| {
                let d = if i == 0 { 1 + b % 9 } else { b % 10 };
                char::from(b'0' + d)
            })
            .collect();
        let dir = root.join(&digits);
        let in_trash = root.join(".trash").join(&digits).exists();
        let ours = match std::fs::read_to_string(dir.join("meta.yaml")) {
            Ok(text) => serde_saphyr::from_str::<ExistingExperiment>(&text)
                .map(|m| m.name == name)
                .unwrap_or(false),
            // No meta.yaml yet: free, or another run creating this same experiment now.
            Err(_) => true,
        };
        if ours && !in_trash {
            if !dir.join("meta.yaml").exists() {
                create_experiment_with_id(root, &digits, name)?;
            }
            return Ok(digits);
        }
        candidate = random_bytes(18);
    }
}

/// 64-bit FNV-1a: a stable hash (std's hasher may change between Rust releases).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn create_experiment_with_id(root: &Path, id: &str, name: &str) -> Result<()> {
    let dir = root.join(id);
    std::fs::create_dir_all(&dir)
        .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    let now = super::record::now_ms();
    let location = absolute(&dir);
    let meta = ExperimentMeta {
        artifact_location: &location,
        creation_time: now,
        experiment_id: id,
        last_update_time: now,
        lifecycle_stage: "active",
        name,
    };
    write_yaml(&dir.join("meta.yaml"), &meta)
}

/// Hard-links (or, across file systems, copies) the record's artifacts into `artifacts/`: run
/// files are replaced by rename, never rewritten in place, so a link cannot change later.
fn copy_artifacts(record: &Record, to: &Path) -> Result<()> {
    for rel in record_artifacts(record) {
        let path = record.run_dir.join(&rel);
        let target = to.join(&rel);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| Error::io(format!("creating {}", parent.display()), e))?;
        }
        // A rewrite (a sweep's parent run) replaces the earlier link.
        let _ = std::fs::remove_file(&target);
        if std::fs::hard_link(&path, &target).is_err() {
            std::fs::copy(&path, &target)
                .map_err(|e| Error::io(format!("copying {} as an artifact", path.display()), e))?;
        }
    }
    Ok(())
}

/// The files a record logs as artifacts, relative to its run directory.
pub fn record_artifacts(record: &Record) -> Vec<PathBuf> {
    match &record.artifacts {
        Some(files) => files.clone(),
        None => artifact_files(&record.run_dir),
    }
}

/// Files of the run directory that are tracked as artifacts, relative to it.
pub fn artifact_files(run_dir: &Path) -> Vec<PathBuf> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.filter_map(|e| e.ok()) {
            let path = entry.path();
            let Ok(rel) = path.strip_prefix(root) else {
                continue;
            };
            if SKIPPED_ARTIFACTS.contains(&rel.to_string_lossy().replace('\\', "/").as_str()) {
                continue;
            }
            match entry.file_type() {
                Ok(t) if t.is_dir() => walk(root, &path, out),
                Ok(t) if t.is_file() => out.push(rel.to_path_buf()),
                _ => {}
            }
        }
    }
    let mut out = Vec::new();
    walk(run_dir, run_dir, &mut out);
    out.sort();
    out
}

/// Random bytes for ids (like `uuid4().hex`), from the OS; a time-and-pid mix if that fails.
pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    let from_os = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut buf));
    if from_os.is_err() {
        let mut x = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0)
            ^ (u64::from(std::process::id()) << 32);
        for b in &mut buf {
            // splitmix64
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            *b = (z ^ (z >> 31)) as u8;
        }
    }
    buf
}

fn random_hex(n: usize) -> String {
    random_bytes(n).iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_uris() {
        assert_eq!(
            local_store_root("./experiments_outputs/mlruns"),
            Some(PathBuf::from("./experiments_outputs/mlruns"))
        );
        assert_eq!(
            local_store_root("file:///tmp/my%20runs"),
            Some(PathBuf::from("/tmp/my runs"))
        );
        assert_eq!(local_store_root("file:rel/x"), Some(PathBuf::from("rel/x")));
        assert_eq!(local_store_root("sqlite:///mlflow.db"), None);
        assert_eq!(local_store_root("databricks"), None);
    }

    #[test]
    fn ids_look_like_mlflows() {
        let hex = random_hex(16);
        assert_eq!(hex.len(), 32);
        assert!(hex.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(hex, random_hex(16));
    }

    #[test]
    fn experiment_meta_is_found_by_name_and_keeps_id_a_string() {
        let tmp = tempfile::tempdir().unwrap();
        let id = create_experiment(tmp.path(), "my: project").unwrap();
        assert_eq!(id.len(), 18);
        assert_eq!(
            find_experiment(tmp.path(), "my: project").unwrap(),
            Some(id.clone())
        );
        assert_eq!(find_experiment(tmp.path(), "other").unwrap(), None);
        // Same name, same id: concurrent creators agree.
        assert_eq!(create_experiment(tmp.path(), "my: project").unwrap(), id);
        let other = create_experiment(tmp.path(), "other").unwrap();
        assert_ne!(other, id);
        assert_eq!(other.len(), 18);
        let text = std::fs::read_to_string(tmp.path().join(&id).join("meta.yaml")).unwrap();
        assert!(
            text.contains(&format!("experiment_id: '{id}'"))
                || text.contains(&format!("experiment_id: \"{id}\"")),
            "{text}"
        );
    }
}
