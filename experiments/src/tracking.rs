//! `--mlflow URI` on `hale train`, `hale sweep` and `hale bench run`: the server is
//! asked for first (an unreachable or refusing server stops the command before any
//! work), and what the command made is logged when it is done: parameters, metrics
//! (CleanRL's names, at their environment step), tags (hale's version, the git
//! revision), the files as artifacts with the report's figures, and a trained bundle
//! registered as a new model version. `mlflow.json` in the folder says where it went.

use anyhow::{Context, Result};
use hale_experiments::mlflow::{Client, Metric, Run, flatten_params, metrics_from_csv, now_ms};
use hale_policies::bundle::write_atomic;
use serde_json::{Value as Json, json};
use std::collections::BTreeMap;
use std::path::Path;

/// The MLflow options.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct MlflowArgs {
    /// Log to the MLflow tracking server at this URL (e.g. http://127.0.0.1:5000):
    /// parameters, metrics, tags, the files and figures as artifacts, and a trained
    /// bundle as a registered model version. Checked before any work starts.
    #[arg(long, value_name = "URL")]
    pub mlflow: Option<String>,
    /// The MLflow experiment to log into (created if need be; default: the
    /// config's exp_name, the sweep's name, or hale-bench).
    #[arg(long, value_name = "NAME", requires = "mlflow")]
    pub mlflow_experiment: Option<String>,
    /// The run to nest under (a sweep passes its own to its trials).
    #[arg(long, hide = true, requires = "mlflow")]
    pub mlflow_parent: Option<String>,
}

impl MlflowArgs {
    /// These options as command-line arguments (for a trial's process).
    pub fn to_args(&self, experiment: &str, parent: Option<&str>) -> Vec<String> {
        let Some(uri) = &self.mlflow else {
            return Vec::new();
        };
        let mut v = vec![
            "--mlflow".into(),
            uri.clone(),
            "--mlflow-experiment".into(),
            experiment.into(),
        ];
        if let Some(p) = parent {
            v.extend(["--mlflow-parent".into(), p.into()]);
        }
        v
    }
}

/// A connection to a checked server and experiment.
pub struct Tracker {
    pub client: Client,
    pub experiment: String,
    pub experiment_id: String,
    parent: Option<String>,
}

/// What one logged run is made of.
#[derive(Default)]
pub struct Record<'a> {
    pub name: String,
    pub params: Vec<(String, String)>,
    pub metrics: Vec<Metric>,
    pub tags: Vec<(String, String)>,
    /// Artifacts: (name in the run, local file or folder).
    pub files: Vec<(&'a str, std::path::PathBuf)>,
    /// Register the artifact folder of this name as a version of this model.
    pub model: Option<(String, &'a str)>,
}

impl Tracker {
    /// Checks the server and finds (or makes) the experiment; `None` without --mlflow.
    pub fn connect(args: &MlflowArgs, default_experiment: &str) -> Result<Option<Tracker>> {
        let Some(uri) = &args.mlflow else {
            return Ok(None);
        };
        let client = Client::new(uri)?;
        client.check()?;
        let experiment = args
            .mlflow_experiment
            .clone()
            .unwrap_or_else(|| default_experiment.to_string());
        let experiment_id = client.experiment(&experiment)?;
        Ok(Some(Tracker {
            client,
            experiment,
            experiment_id,
            parent: args.mlflow_parent.clone(),
        }))
    }

    /// hale's tags: its version, the git revision, the command.
    fn tags(&self, command: &str) -> Vec<(String, String)> {
        let mut tags = vec![
            (
                "hale.version".to_string(),
                env!("CARGO_PKG_VERSION").to_string(),
            ),
            ("mlflow.source.name".into(), command.into()),
            ("mlflow.source.type".into(), "LOCAL".into()),
        ];
        if let Some(rev) = crate::train::git_revision() {
            tags.push(("mlflow.source.git.commit".into(), rev));
        }
        if let Some(p) = &self.parent {
            tags.push(("mlflow.parentRunId".into(), p.clone()));
        }
        tags
    }

    /// Starts a run for `command` (logging comes later, with [`Tracker::finish`]).
    pub fn start(&self, name: &str, command: &str) -> Result<Run> {
        Ok(self
            .client
            .create_run(&self.experiment_id, name, &self.tags(command))?)
    }

    /// Logs a record into `run`, registers its model, ends it, and writes
    /// `mlflow.json` into `folder`.
    pub fn finish(&self, run: &Run, record: Record, folder: &Path) -> Result<()> {
        let result = self.log(run, &record, folder);
        let status = if result.is_ok() { "FINISHED" } else { "FAILED" };
        // The run is ended either way, so the server does not show it running.
        let ended = self.client.end_run(&run.id, status);
        result?;
        ended?;
        Ok(())
    }

    fn log(&self, run: &Run, record: &Record, folder: &Path) -> Result<()> {
        self.client
            .log_batch(&run.id, &record.params, &record.metrics, &record.tags)?;
        let mut files = 0;
        for (name, path) in &record.files {
            if path.is_dir() {
                files += self.client.upload_dir(&run.artifact_uri, name, path)?;
            } else if path.is_file() {
                let bytes =
                    std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
                self.client.upload(&run.artifact_uri, name, &bytes)?;
                files += 1;
            }
        }
        let mut registered = Json::Null;
        if let Some((model, folder_name)) = &record.model {
            let source = format!("{}/{folder_name}", run.artifact_uri);
            let version = self.client.register(model, &source, &run.id)?;
            eprintln!("registered models:/{model}/{version} (from {source})");
            registered = json!({ "name": model, "version": version, "uri": format!("models:/{model}/{version}") });
        }
        let at = format!(
            "{}/#/experiments/{}/runs/{}",
            self.client.uri(),
            self.experiment_id,
            run.id
        );
        eprintln!(
            "logged to MLflow: {} parameters, {} metric values, {files} files: {at}",
            record.params.len(),
            record.metrics.len()
        );
        write_atomic(
            &folder.join("mlflow.json"),
            serde_json::to_string_pretty(&json!({
                "tracking_uri": self.client.uri(),
                "experiment": self.experiment,
                "experiment_id": self.experiment_id,
                "run_id": run.id,
                "artifact_uri": run.artifact_uri,
                "model": registered,
            }))?
            .as_bytes(),
        )?;
        Ok(())
    }
}

/// The record of a finished training run folder.
pub fn training_record<'a>(dir: &Path, config: &Json, model: &str) -> Result<Record<'a>> {
    let now = now_ms();
    let metrics_text = std::fs::read_to_string(dir.join("metrics.csv"))
        .with_context(|| format!("reading {}", dir.join("metrics.csv").display()))?;
    let mut metrics = metrics_from_csv(&metrics_text, now);
    let summary: Json = serde_json::from_str(
        &std::fs::read_to_string(dir.join("summary.json"))
            .with_context(|| format!("reading {}", dir.join("summary.json").display()))?,
    )
    .with_context(|| format!("{}: not JSON", dir.join("summary.json").display()))?;
    let step = summary["global_step"].as_i64().unwrap_or(0);
    let mut evals = BTreeMap::new();
    if let Some(v) = summary["eval_mean_return"].as_f64() {
        evals.insert("eval/mean_return".to_string(), v);
    }
    crate::sweep_cmd::flatten_comparison(&summary["comparison"], "", &mut evals);
    metrics.extend(at_step(evals, now, step));
    Ok(Record {
        name: dir
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string(),
        params: flatten_params(config),
        metrics,
        tags: Vec::new(),
        files: vec![
            ("config.toml", dir.join("config.toml")),
            ("metrics.csv", dir.join("metrics.csv")),
            ("episodes.csv", dir.join("episodes.csv")),
            ("summary.json", dir.join("summary.json")),
            ("policy", dir.join("policy")),
            ("report", dir.join("report")),
        ],
        model: Some((model.to_string(), "policy")),
    })
}

/// The record of a benchmark or evaluation folder with its summary.
pub fn comparison_record<'a>(
    name: &str,
    params: Vec<(String, String)>,
    summary: &Json,
    dir: &Path,
) -> Record<'a> {
    let mut values = BTreeMap::new();
    crate::sweep_cmd::flatten_comparison(summary, "", &mut values);
    let now = now_ms();
    Record {
        name: name.into(),
        params,
        metrics: at_step(values, now, 0),
        tags: Vec::new(),
        files: vec![("results", dir.to_path_buf())],
        model: None,
    }
}

/// Named values as metrics at one step (values that are not finite left out).
fn at_step(values: BTreeMap<String, f64>, timestamp: i64, step: i64) -> Vec<Metric> {
    values
        .into_iter()
        .filter(|(_, v)| v.is_finite())
        .map(|(key, value)| Metric {
            key,
            value,
            timestamp,
            step,
        })
        .collect()
}
