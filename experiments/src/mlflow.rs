//! A small blocking client of MLflow's tracking server (REST API 2.0): experiments,
//! runs, batched parameters, metrics and tags within the server's limits, artifacts
//! through the server's artifact proxy (`mlflow server` serves them by default), and
//! the model registry. There is no maintained Rust client; this one does what `hale`
//! logs and no more.

use serde_json::{Value as Json, json};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What can go wrong talking to MLflow; each names the server and what was asked.
#[derive(Debug, thiserror::Error)]
pub enum MlflowError {
    /// Not an http(s) URL.
    #[error("--mlflow {uri}: not an http:// or https:// URL of an MLflow tracking server")]
    BadUri {
        /// The URI given.
        uri: String,
    },
    /// No answer (connection refused, timeout, name not resolved).
    #[error("MLflow at {uri} is unreachable ({reason}); is `mlflow server` running there?")]
    Unreachable {
        /// The server.
        uri: String,
        /// The transport's error.
        reason: String,
    },
    /// The server answered with an error.
    #[error("MLflow at {uri}: {what}: HTTP {status} {code}: {message}")]
    Api {
        /// The server.
        uri: String,
        /// What was asked.
        what: String,
        /// HTTP status.
        status: u16,
        /// MLflow's error code (`RESOURCE_DOES_NOT_EXIST`, …).
        code: String,
        /// MLflow's message.
        message: String,
    },
    /// An artifact location hale cannot write or read through the server.
    #[error(
        "MLflow at {uri}: artifacts go to {location}, which hale reaches only through the \
         tracking server's artifact proxy (mlflow-artifacts:/…; `mlflow server` serves it \
         unless started with --no-serve-artifacts)"
    )]
    ArtifactStore {
        /// The server.
        uri: String,
        /// The run's or model's artifact location.
        location: String,
    },
    /// A model reference other than `models:/NAME/VERSION`.
    #[error("{0:?}: a registered model is named models:/NAME/VERSION (e.g. models:/scaling-ppo/3)")]
    BadModelUri(String),
    /// Reading or writing a local file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

type Result<T> = std::result::Result<T, MlflowError>;

/// MLflow's limits on one `runs/log-batch` request.
pub const MAX_METRICS: usize = 1000;
/// At most this many parameters per batch.
pub const MAX_PARAMS: usize = 100;
/// At most this many tags per batch.
pub const MAX_TAGS: usize = 100;
/// At most this many entities (metrics, parameters and tags) per batch.
pub const MAX_ENTITIES: usize = 1000;
/// The longest parameter value MLflow stores (longer ones are cut, with a mark).
pub const MAX_PARAM_VALUE: usize = 6000;

/// One metric value.
#[derive(Clone, Debug, PartialEq)]
pub struct Metric {
    /// Its name (`charts/episodic_return`).
    pub key: String,
    /// The value.
    pub value: f64,
    /// Milliseconds since the Unix epoch.
    pub timestamp: i64,
    /// The step (environment steps for training curves).
    pub step: i64,
}

/// A run on the server.
#[derive(Clone, Debug)]
pub struct Run {
    /// Its id.
    pub id: String,
    /// Where its artifacts go (`mlflow-artifacts:/EXP/RUN/artifacts`).
    pub artifact_uri: String,
}

/// A tracking server.
pub struct Client {
    uri: String,
    agent: ureq::Agent,
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl Client {
    /// A client of the server at `uri` (nothing is sent yet).
    pub fn new(uri: &str) -> Result<Client> {
        let base = uri.trim_end_matches('/');
        if !(base.starts_with("http://") || base.starts_with("https://")) || base.len() < 10 {
            return Err(MlflowError::BadUri { uri: uri.into() });
        }
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(60)))
            .timeout_connect(Some(Duration::from_secs(5)))
            .http_status_as_error(false)
            .build()
            .into();
        Ok(Client {
            uri: base.into(),
            agent,
        })
    }

    /// The server's URL.
    pub fn uri(&self) -> &str {
        &self.uri
    }

    fn unreachable(&self, e: ureq::Error) -> MlflowError {
        MlflowError::Unreachable {
            uri: self.uri.clone(),
            reason: e.to_string(),
        }
    }

    /// Reads an answer: its JSON, or the server's error.
    fn answer(&self, what: &str, resp: ureq::http::Response<ureq::Body>) -> Result<Json> {
        let status = resp.status().as_u16();
        let text = resp
            .into_body()
            .read_to_string()
            .map_err(|e| self.unreachable(e))?;
        if (200..300).contains(&status) {
            return Ok(serde_json::from_str(&text).unwrap_or(Json::Null));
        }
        let body: Json = serde_json::from_str(&text).unwrap_or(Json::Null);
        Err(MlflowError::Api {
            uri: self.uri.clone(),
            what: what.into(),
            status,
            code: body["error_code"].as_str().unwrap_or("").into(),
            message: body["message"]
                .as_str()
                .map_or_else(|| text.chars().take(300).collect(), str::to_string),
        })
    }

    fn get(&self, what: &str, path: &str, query: &[(&str, &str)]) -> Result<Json> {
        let mut req = self.agent.get(format!("{}{path}", self.uri));
        for (k, v) in query {
            req = req.query(*k, *v);
        }
        let resp = req.call().map_err(|e| self.unreachable(e))?;
        self.answer(what, resp)
    }

    fn post(&self, what: &str, path: &str, body: &Json) -> Result<Json> {
        let resp = self
            .agent
            .post(format!("{}/api/2.0/mlflow/{path}", self.uri))
            .header("Content-Type", "application/json")
            .send(body.to_string())
            .map_err(|e| self.unreachable(e))?;
        self.answer(what, resp)
    }

    /// Asks the server something cheap: fails with [`MlflowError::Unreachable`] or the
    /// server's error before any work starts.
    pub fn check(&self) -> Result<()> {
        self.get(
            "listing experiments",
            "/api/2.0/mlflow/experiments/search",
            &[("max_results", "1")],
        )
        .map(|_| ())
    }

    /// The id of experiment `name`, created if it does not exist.
    pub fn experiment(&self, name: &str) -> Result<String> {
        let what = format!("experiment {name:?}");
        let found = self.get(
            &what,
            "/api/2.0/mlflow/experiments/get-by-name",
            &[("experiment_name", name)],
        );
        match found {
            Ok(v) => {
                return Ok(v["experiment"]["experiment_id"]
                    .as_str()
                    .unwrap_or("")
                    .into());
            }
            Err(MlflowError::Api { code, .. }) if code == "RESOURCE_DOES_NOT_EXIST" => {}
            Err(e) => return Err(e),
        }
        match self.post(&what, "experiments/create", &json!({ "name": name })) {
            Ok(v) => Ok(v["experiment_id"].as_str().unwrap_or("").into()),
            // Another process created it meanwhile (trials of a sweep start together).
            Err(MlflowError::Api { code, .. }) if code == "RESOURCE_ALREADY_EXISTS" => self
                .get(
                    &what,
                    "/api/2.0/mlflow/experiments/get-by-name",
                    &[("experiment_name", name)],
                )
                .map(|v| {
                    v["experiment"]["experiment_id"]
                        .as_str()
                        .unwrap_or("")
                        .into()
                }),
            Err(e) => Err(e),
        }
    }

    /// Starts a run named `name` in experiment `experiment_id` with `tags`.
    pub fn create_run(
        &self,
        experiment_id: &str,
        name: &str,
        tags: &[(String, String)],
    ) -> Result<Run> {
        let tags: Vec<Json> = tags
            .iter()
            .map(|(k, v)| json!({ "key": k, "value": v }))
            .collect();
        let v = self.post(
            &format!("creating run {name:?}"),
            "runs/create",
            &json!({
                "experiment_id": experiment_id,
                "run_name": name,
                "start_time": now_ms(),
                "tags": tags,
            }),
        )?;
        let info = &v["run"]["info"];
        Ok(Run {
            id: info["run_id"].as_str().unwrap_or("").into(),
            artifact_uri: info["artifact_uri"].as_str().unwrap_or("").into(),
        })
    }

    /// Logs parameters, metrics and tags in as many batches as MLflow's limits ask
    /// (a parameter value longer than MLflow keeps is cut, and says so).
    pub fn log_batch(
        &self,
        run_id: &str,
        params: &[(String, String)],
        metrics: &[Metric],
        tags: &[(String, String)],
    ) -> Result<()> {
        let kv = |(k, v): &(String, String)| json!({ "key": k, "value": v });
        let param = |(k, v): &(String, String)| {
            let v = if v.len() > MAX_PARAM_VALUE {
                let mut cut = MAX_PARAM_VALUE - 20;
                while !v.is_char_boundary(cut) {
                    cut -= 1;
                }
                format!("{}… (cut by hale)", &v[..cut])
            } else {
                v.clone()
            };
            json!({ "key": k, "value": v })
        };
        let (mut p, mut m, mut t) = (params.iter(), metrics.iter(), tags.iter());
        loop {
            let ps: Vec<Json> = p.by_ref().take(MAX_PARAMS).map(param).collect();
            let ts: Vec<Json> = t.by_ref().take(MAX_TAGS).map(kv).collect();
            let room = MAX_METRICS.min(MAX_ENTITIES - ps.len() - ts.len());
            let ms: Vec<Json> = m
                .by_ref()
                .take(room)
                .map(|x| {
                    json!({ "key": x.key, "value": x.value, "timestamp": x.timestamp, "step": x.step })
                })
                .collect();
            if ps.is_empty() && ts.is_empty() && ms.is_empty() {
                return Ok(());
            }
            self.post(
                &format!("logging to run {run_id}"),
                "runs/log-batch",
                &json!({ "run_id": run_id, "params": ps, "metrics": ms, "tags": ts }),
            )?;
        }
    }

    /// Ends a run (`FINISHED`, `FAILED` or `KILLED`).
    pub fn end_run(&self, run_id: &str, status: &str) -> Result<()> {
        self.post(
            &format!("ending run {run_id}"),
            "runs/update",
            &json!({ "run_id": run_id, "status": status, "end_time": now_ms() }),
        )
        .map(|_| ())
    }

    /// The proxy URL of an artifact location (`mlflow-artifacts:/…`).
    fn artifact_url(&self, location: &str) -> Result<String> {
        let path = location
            .strip_prefix("mlflow-artifacts:")
            .map(|p| p.trim_start_matches('/'))
            .ok_or_else(|| MlflowError::ArtifactStore {
                uri: self.uri.clone(),
                location: location.into(),
            })?;
        Ok(format!(
            "{}/api/2.0/mlflow-artifacts/artifacts/{path}",
            self.uri
        ))
    }

    /// Uploads one file to `location/name`.
    pub fn upload(&self, location: &str, name: &str, bytes: &[u8]) -> Result<()> {
        let url = format!("{}/{name}", self.artifact_url(location)?);
        let resp = self
            .agent
            .put(&url)
            .send(bytes)
            .map_err(|e| self.unreachable(e))?;
        self.answer(&format!("uploading artifact {name}"), resp)
            .map(|_| ())
    }

    /// Uploads the files under `dir` (recursively) to `location/prefix/…`; returns
    /// how many.
    pub fn upload_dir(&self, location: &str, prefix: &str, dir: &Path) -> Result<usize> {
        let mut n = 0;
        let mut stack = vec![(dir.to_path_buf(), prefix.to_string())];
        while let Some((at, name)) = stack.pop() {
            let entries = std::fs::read_dir(&at).map_err(|source| MlflowError::Io {
                path: at.clone(),
                source,
            })?;
            for e in entries.flatten() {
                let path = e.path();
                let child = format!(
                    "{}{}",
                    if name.is_empty() {
                        String::new()
                    } else {
                        format!("{name}/")
                    },
                    e.file_name().to_string_lossy()
                );
                if path.is_dir() {
                    stack.push((path, child));
                } else {
                    let bytes = std::fs::read(&path).map_err(|source| MlflowError::Io {
                        path: path.clone(),
                        source,
                    })?;
                    self.upload(location, &child, &bytes)?;
                    n += 1;
                }
            }
        }
        Ok(n)
    }

    /// Downloads everything under artifact `location` into the folder `into`
    /// (created); returns the files' paths relative to it.
    pub fn download_dir(&self, location: &str, into: &Path) -> Result<Vec<PathBuf>> {
        let base = self.artifact_url(location)?;
        let root = location
            .strip_prefix("mlflow-artifacts:")
            .unwrap_or(location)
            .trim_start_matches('/')
            .to_string();
        let mut files = Vec::new();
        let mut stack = vec![String::new()];
        while let Some(rel) = stack.pop() {
            let path = if rel.is_empty() {
                root.clone()
            } else {
                format!("{root}/{rel}")
            };
            let listing = self.get(
                &format!("listing artifacts of {location}"),
                "/api/2.0/mlflow-artifacts/artifacts",
                &[("path", path.as_str())],
            )?;
            for f in listing["files"].as_array().into_iter().flatten() {
                let name = f["path"].as_str().unwrap_or("");
                let child = if rel.is_empty() {
                    name.to_string()
                } else {
                    format!("{rel}/{name}")
                };
                if f["is_dir"].as_bool().unwrap_or(false) {
                    stack.push(child);
                    continue;
                }
                let resp = self
                    .agent
                    .get(format!("{base}/{child}"))
                    .call()
                    .map_err(|e| self.unreachable(e))?;
                let status = resp.status().as_u16();
                if status != 200 {
                    return Err(MlflowError::Api {
                        uri: self.uri.clone(),
                        what: format!("downloading artifact {child}"),
                        status,
                        code: String::new(),
                        message: String::new(),
                    });
                }
                let bytes = resp
                    .into_body()
                    .with_config()
                    .limit(1 << 30)
                    .read_to_vec()
                    .map_err(|e| self.unreachable(e))?;
                let dest = into.join(&child);
                if let Some(parent) = dest.parent() {
                    std::fs::create_dir_all(parent).map_err(|source| MlflowError::Io {
                        path: parent.into(),
                        source,
                    })?;
                }
                std::fs::write(&dest, bytes).map_err(|source| MlflowError::Io {
                    path: dest.clone(),
                    source,
                })?;
                files.push(PathBuf::from(child));
            }
        }
        files.sort();
        Ok(files)
    }

    /// Registers the artifacts at `source` (of run `run_id`) as a new version of model
    /// `name` (the model is created if need be); returns the version.
    pub fn register(&self, name: &str, source: &str, run_id: &str) -> Result<String> {
        let what = format!("registering model {name:?}");
        match self.post(&what, "registered-models/create", &json!({ "name": name })) {
            Ok(_) => {}
            Err(MlflowError::Api { code, .. }) if code == "RESOURCE_ALREADY_EXISTS" => {}
            Err(e) => return Err(e),
        }
        let v = self.post(
            &what,
            "model-versions/create",
            &json!({ "name": name, "source": source, "run_id": run_id }),
        )?;
        Ok(v["model_version"]["version"]
            .as_str()
            .map_or_else(|| v["model_version"]["version"].to_string(), str::to_string))
    }

    /// Where version `version` of model `name` keeps its artifacts, and its run.
    pub fn model_version(&self, name: &str, version: &str) -> Result<(String, String)> {
        let v = self.get(
            &format!("model version models:/{name}/{version}"),
            "/api/2.0/mlflow/model-versions/get",
            &[("name", name), ("version", version)],
        )?;
        let mv = &v["model_version"];
        Ok((
            mv["source"].as_str().unwrap_or("").into(),
            mv["run_id"].as_str().unwrap_or("").into(),
        ))
    }
}

/// `models:/NAME/VERSION` split into its name and version.
pub fn parse_model_uri(uri: &str) -> Result<(String, String)> {
    let rest = uri
        .strip_prefix("models:/")
        .ok_or_else(|| MlflowError::BadModelUri(uri.into()))?;
    match rest.rsplit_once('/') {
        Some((name, version))
            if !name.is_empty()
                && !version.is_empty()
                && version.chars().all(|c| c.is_ascii_digit()) =>
        {
            Ok((name.into(), version.into()))
        }
        _ => Err(MlflowError::BadModelUri(uri.into())),
    }
}

/// A TOML or JSON document's leaves as dotted parameters (`ppo.learning_rate`);
/// arrays are one value, written as JSON.
pub fn flatten_params(value: &Json) -> Vec<(String, String)> {
    fn walk(prefix: &str, v: &Json, out: &mut Vec<(String, String)>) {
        match v {
            Json::Object(map) => {
                for (k, x) in map {
                    let key = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(&key, x, out);
                }
            }
            Json::String(s) => out.push((prefix.into(), s.clone())),
            Json::Null => {}
            other => out.push((prefix.into(), other.to_string())),
        }
    }
    let mut out = Vec::new();
    walk("", value, &mut out);
    out
}

/// A CSV of hale's (a `global_step` column, then metrics with CleanRL's names) as
/// metrics, one per filled cell, at the row's step.
pub fn metrics_from_csv(text: &str, timestamp: i64) -> Vec<Metric> {
    let mut lines = text.lines();
    let Some(header) = lines.next() else {
        return Vec::new();
    };
    let names: Vec<&str> = header.split(',').collect();
    let Some(step_col) = names.iter().position(|n| *n == "global_step") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for line in lines {
        let cells: Vec<&str> = line.split(',').collect();
        let Some(step) = cells.get(step_col).and_then(|s| s.parse::<i64>().ok()) else {
            continue;
        };
        for (i, cell) in cells.iter().enumerate() {
            if i == step_col || names.get(i).is_none_or(|n| *n == "iteration") {
                continue;
            }
            if let Ok(value) = cell.parse::<f64>()
                && value.is_finite()
            {
                out.push(Metric {
                    key: names[i].into(),
                    value,
                    timestamp,
                    step,
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_uris_and_addresses_are_checked() {
        assert_eq!(
            parse_model_uri("models:/scaling-ppo/3").unwrap(),
            ("scaling-ppo".into(), "3".into())
        );
        for bad in [
            "models:/x",
            "models:/x/latest",
            "runs:/abc/policy",
            "models://3",
        ] {
            assert!(parse_model_uri(bad).is_err(), "{bad}");
        }
        assert!(Client::new("localhost:5000").is_err());
        assert!(Client::new("http://127.0.0.1:5000/").is_ok());
    }

    #[test]
    fn config_leaves_become_dotted_params_and_csv_cells_metrics() {
        let p = flatten_params(
            &json!({"env": "CartPole-v1", "ppo": {"learning_rate": 0.001, "hidden": [64, 64]}}),
        );
        assert_eq!(
            p,
            vec![
                ("env".to_string(), "CartPole-v1".to_string()),
                ("ppo.hidden".into(), "[64,64]".into()),
                ("ppo.learning_rate".into(), "0.001".into()),
            ]
        );
        let m = metrics_from_csv(
            "global_step,iteration,charts/x,losses/y\n128,1,,0.5\n256,2,3,NaN\n",
            7,
        );
        assert_eq!(m.len(), 2);
        assert_eq!(
            (m[0].key.as_str(), m[0].step, m[0].value),
            ("losses/y", 128, 0.5)
        );
        assert_eq!(
            (m[1].key.as_str(), m[1].step, m[1].value),
            ("charts/x", 256, 3.0)
        );
    }
}
