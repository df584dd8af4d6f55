//! Logging a run to an MLflow tracking server through its REST API (`/api/2.0/mlflow/...`):
//! find or create the experiment, create the run, send params, tags and metrics with
//! `runs/log-batch` within the server's limits, upload the artifacts when the server serves
//! them, and mark the run finished.
//!
//! Every request is retried with exponential backoff on connection errors, 429 and 5xx, since
//! a tracking server restarting should not cost a run its MLflow entry. When the server stays
//! unreachable the caller warns; the run directory already holds every result.

use super::mlflow_file::record_artifacts;
use super::record::{Record, Scalar};
use crate::error::{Error, Result};
use serde_json::{json, Value};
use std::time::Duration;

/// `runs/log-batch` limits of the MLflow server (`MAX_METRICS_PER_BATCH` and friends).
const MAX_METRICS: usize = 1000;
const MAX_PARAMS: usize = 100;
const MAX_TAGS: usize = 100;
/// Artifacts larger than this are not uploaded (they stay in the run directory).
const MAX_ARTIFACT_BYTES: u64 = 256 << 20;
/// Retries after the first attempt, and the first backoff (doubled each time).
const RETRIES: u32 = 3;
const FIRST_BACKOFF: Duration = Duration::from_millis(500);

struct Client {
    agent: ureq::Agent,
    base: String,
    auth: Option<String>,
}

enum Reply {
    Ok(Value),
    /// A 4xx answer: the request itself is wrong, retrying will not help.
    Refused {
        status: u16,
        code: String,
        message: String,
    },
}

impl Client {
    fn new(base: &str) -> Self {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_connect(Some(Duration::from_secs(5)))
            .timeout_global(Some(Duration::from_secs(60)))
            .http_status_as_error(false)
            .build()
            .into();
        Self {
            agent,
            base: base.trim_end_matches('/').to_string(),
            auth: auth_header(),
        }
    }

    fn url(&self, endpoint: &str) -> String {
        format!("{}/api/2.0/{endpoint}", self.base)
    }

    /// Sends one request, retrying transient failures.
    fn request(
        &self,
        what: &str,
        send: impl Fn() -> std::result::Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<Reply> {
        let mut backoff = FIRST_BACKOFF;
        let mut last = String::new();
        for attempt in 0..=RETRIES {
            if attempt > 0 {
                tracing::debug!("MLflow {what}: {last}; retrying in {backoff:?}");
                std::thread::sleep(backoff);
                backoff *= 2;
            }
            match send() {
                Ok(mut response) => {
                    let status = response.status().as_u16();
                    let body: Value = response.body_mut().read_json().unwrap_or(Value::Null);
                    if (200..300).contains(&status) {
                        return Ok(Reply::Ok(body));
                    }
                    let code = body["error_code"].as_str().unwrap_or("").to_string();
                    let message = body["message"].as_str().unwrap_or("").to_string();
                    if status == 429 || status >= 500 {
                        last = format!("HTTP {status} {message}");
                        continue;
                    }
                    return Ok(Reply::Refused {
                        status,
                        code,
                        message,
                    });
                }
                Err(err) => last = err.to_string(),
            }
        }
        Err(Error::Tracking(format!(
            "MLflow tracking server {} unreachable or failing ({what}: {last}) after {} attempts",
            self.base,
            RETRIES + 1
        )))
    }

    fn post(&self, endpoint: &str, body: &Value) -> Result<Reply> {
        let url = self.url(endpoint);
        self.request(endpoint, || {
            let mut req = self.agent.post(&url);
            if let Some(auth) = &self.auth {
                req = req.header("Authorization", auth);
            }
            req.send_json(body)
        })
    }

    fn post_ok(&self, endpoint: &str, body: &Value) -> Result<Value> {
        match self.post(endpoint, body)? {
            Reply::Ok(v) => Ok(v),
            Reply::Refused {
                status,
                code,
                message,
            } => Err(refused(&self.base, endpoint, status, &code, &message)),
        }
    }

    fn experiment_by_name(&self, name: &str) -> Result<Option<String>> {
        let url = self.url("mlflow/experiments/get-by-name");
        let reply = self.request("experiments/get-by-name", || {
            let mut req = self.agent.get(&url).query("experiment_name", name);
            if let Some(auth) = &self.auth {
                req = req.header("Authorization", auth);
            }
            req.call()
        })?;
        match reply {
            Reply::Ok(v) => Ok(v["experiment"]["experiment_id"]
                .as_str()
                .map(str::to_string)),
            Reply::Refused { code, .. } if code == "RESOURCE_DOES_NOT_EXIST" => Ok(None),
            Reply::Refused {
                status,
                code,
                message,
            } => Err(refused(
                &self.base,
                "experiments/get-by-name",
                status,
                &code,
                &message,
            )),
        }
    }

    fn experiment_id(&self, name: &str) -> Result<String> {
        if let Some(id) = self.experiment_by_name(name)? {
            return Ok(id);
        }
        match self.post("mlflow/experiments/create", &json!({ "name": name }))? {
            Reply::Ok(v) => v["experiment_id"]
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| Error::Tracking("experiments/create returned no id".into())),
            // Another run created it in the meantime.
            Reply::Refused { code, .. } if code == "RESOURCE_ALREADY_EXISTS" => self
                .experiment_by_name(name)?
                .ok_or_else(|| Error::Tracking(format!("experiment {name:?} vanished"))),
            Reply::Refused {
                status,
                code,
                message,
            } => Err(refused(
                &self.base,
                "experiments/create",
                status,
                &code,
                &message,
            )),
        }
    }

    /// Uploads one file through the server's artifact proxy (`--serve-artifacts`).
    fn upload(&self, artifact_path: &str, rel: &str, bytes: &[u8]) -> Result<()> {
        let url = format!(
            "{}/api/2.0/mlflow-artifacts/artifacts/{}/{}",
            self.base,
            encode_path(artifact_path),
            encode_path(rel)
        );
        let reply = self.request("artifact upload", || {
            let mut req = self
                .agent
                .put(&url)
                .header("Content-Type", "application/octet-stream");
            if let Some(auth) = &self.auth {
                req = req.header("Authorization", auth);
            }
            req.send(bytes)
        })?;
        match reply {
            Reply::Ok(_) => Ok(()),
            Reply::Refused {
                status,
                code,
                message,
            } => Err(refused(
                &self.base,
                "artifact upload",
                status,
                &code,
                &message,
            )),
        }
    }
}

fn refused(base: &str, endpoint: &str, status: u16, code: &str, message: &str) -> Error {
    Error::Tracking(format!(
        "MLflow tracking server {base} refused {endpoint}: HTTP {status} {code} {message}"
    ))
}

/// Logs `record` as a new run on the server at `base` (`http(s)://host:port[/prefix]`).
pub fn log_to_server(base: &str, record: &Record) -> Result<()> {
    let run = create_server_run(base, record)?;
    finish_server_run(&run, record)
}

/// A run on a tracking server.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ServerRun {
    pub base: String,
    pub experiment_id: String,
    pub run_id: String,
    pub artifact_uri: String,
}

/// Creates the run with `record`'s name, start time and tags (status RUNNING).
pub fn create_server_run(base: &str, record: &Record) -> Result<ServerRun> {
    let client = Client::new(base);
    let experiment_id = client.experiment_id(&record.experiment)?;
    let created = client.post_ok(
        "mlflow/runs/create",
        &json!({
            "experiment_id": experiment_id,
            "run_name": record.run_name,
            "start_time": record.start_ms,
            "user_id": record.user,
            "tags": tag_values(record).iter().take(MAX_TAGS).collect::<Vec<_>>(),
        }),
    )?;
    let info = &created["run"]["info"];
    let run_id = info["run_id"]
        .as_str()
        .ok_or_else(|| Error::Tracking("runs/create returned no run_id".into()))?
        .to_string();
    Ok(ServerRun {
        base: base.to_string(),
        experiment_id,
        run_id,
        artifact_uri: info["artifact_uri"].as_str().unwrap_or("").to_string(),
    })
}

fn tag_values(record: &Record) -> Vec<Value> {
    record
        .tags
        .iter()
        .map(|(k, v)| json!({ "key": k, "value": v }))
        .collect()
}

/// Sends `record`'s params, remaining tags, metrics and artifacts to `run`, then its status.
pub fn finish_server_run(run: &ServerRun, record: &Record) -> Result<()> {
    let client = Client::new(&run.base);
    let run_id = &run.run_id;
    let tags = tag_values(record);
    let logged = log_contents(&client, run_id, record, &tags, &run.artifact_uri);
    let status = if logged.is_ok() {
        record.status.name()
    } else {
        "FAILED"
    };
    let finished = client.post_ok(
        "mlflow/runs/update",
        &json!({
            "run_id": run_id,
            "status": status,
            "end_time": record.end_ms,
            "run_name": record.run_name,
        }),
    );
    logged
        .and(finished)
        .map_err(|err| Error::Tracking(format!("run {run_id} only partly logged: {err}")))?;
    tracing::info!(
        "MLflow run logged to {}/#/experiments/{}/runs/{run_id}",
        run.base,
        run.experiment_id
    );
    Ok(())
}

fn log_contents(
    client: &Client,
    run_id: &str,
    record: &Record,
    tags: &[Value],
    artifact_uri: &str,
) -> Result<()> {
    let params: Vec<Value> = record
        .params
        .iter()
        .map(|(k, v)| json!({ "key": k, "value": v }))
        .collect();
    for chunk in params.chunks(MAX_PARAMS) {
        client.post_ok(
            "mlflow/runs/log-batch",
            &json!({ "run_id": run_id, "params": chunk }),
        )?;
    }
    for chunk in tags.chunks(MAX_TAGS).skip(1) {
        client.post_ok(
            "mlflow/runs/log-batch",
            &json!({ "run_id": run_id, "tags": chunk }),
        )?;
    }
    let metrics: Vec<Value> = record.all_scalars().map(metric_json).collect();
    for chunk in metrics.chunks(MAX_METRICS) {
        client.post_ok(
            "mlflow/runs/log-batch",
            &json!({ "run_id": run_id, "metrics": chunk }),
        )?;
    }
    match served_artifact_path(artifact_uri) {
        Some(path) => upload_artifacts(client, &path, record)?,
        None => tracing::info!(
            "MLflow artifact store {artifact_uri:?} is not served by the tracking server; \
             artifacts stay in {}",
            record.run_dir.display()
        ),
    }
    Ok(())
}

fn upload_artifacts(client: &Client, artifact_path: &str, record: &Record) -> Result<()> {
    for rel in record_artifacts(record) {
        let path = record.run_dir.join(&rel);
        let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        if size > MAX_ARTIFACT_BYTES {
            tracing::warn!(
                "MLflow: {} ({size} bytes) not uploaded; it stays in the run directory",
                rel.display()
            );
            continue;
        }
        let bytes = std::fs::read(&path)
            .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
        let rel_text = rel.to_string_lossy().replace('\\', "/");
        client.upload(artifact_path, &rel_text, &bytes)?;
    }
    Ok(())
}

fn metric_json(s: &Scalar) -> Value {
    json!({ "key": s.key, "value": s.value, "timestamp": s.wall_ms, "step": s.step })
}

/// The path under the server's artifact proxy, for `mlflow-artifacts:/<exp>/<run>/artifacts`
/// (or `mlflow-artifacts://host:port/...`); `None` for stores the client would write directly
/// (local paths, s3://, …), which textzoo does not.
fn served_artifact_path(uri: &str) -> Option<String> {
    let rest = uri.strip_prefix("mlflow-artifacts:")?;
    let path = match rest.strip_prefix("//") {
        Some(with_host) => with_host.split_once('/').map_or("", |(_, p)| p),
        None => rest,
    };
    Some(path.trim_matches('/').to_string())
}

/// Percent-encodes each segment of a `/`-separated path.
fn encode_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The same credentials the MLflow Python client uses: `MLFLOW_TRACKING_TOKEN`, or
/// `MLFLOW_TRACKING_USERNAME` and `MLFLOW_TRACKING_PASSWORD`.
fn auth_header() -> Option<String> {
    if let Ok(token) = std::env::var("MLFLOW_TRACKING_TOKEN") {
        return Some(format!("Bearer {token}"));
    }
    let user = std::env::var("MLFLOW_TRACKING_USERNAME").ok()?;
    let password = std::env::var("MLFLOW_TRACKING_PASSWORD").unwrap_or_default();
    Some(format!(
        "Basic {}",
        base64(format!("{user}:{password}").as_bytes())
    ))
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artifact_paths_under_the_proxy() {
        assert_eq!(
            served_artifact_path("mlflow-artifacts:/1/abc/artifacts").as_deref(),
            Some("1/abc/artifacts")
        );
        assert_eq!(
            served_artifact_path("mlflow-artifacts://host:5000/1/abc/artifacts").as_deref(),
            Some("1/abc/artifacts")
        );
        assert_eq!(served_artifact_path("/srv/mlruns/1/abc/artifacts"), None);
        assert_eq!(served_artifact_path("s3://b/1/abc/artifacts"), None);
    }

    #[test]
    fn encodes_paths_and_basic_auth() {
        assert_eq!(encode_path(".hydra/my file.yaml"), ".hydra/my%20file.yaml");
        assert_eq!(base64(b"user:pass"), "dXNlcjpwYXNz");
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(base64(b"a"), "YQ==");
    }

    #[test]
    fn unreachable_server_is_a_clear_error() {
        // A port nobody listens on: bind, read the port, close.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let client = Client::new(&format!("http://127.0.0.1:{port}"));
        let err = client.experiment_by_name("x").unwrap_err().to_string();
        assert!(err.contains("unreachable"), "{err}");
        assert!(err.contains(&port.to_string()), "{err}");
    }
}
