//! The adapter's config file (TOML). Unknown fields anywhere are refused, naming
//! them; values are checked before anything touches a target.

use crate::field::{FieldError, check_seconds};
use crate::guard::GuardConfig;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Act then notify, or propose and wait for a person.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Act, then notify.
    Auto,
    /// Propose, wait for accept / decline / modify.
    #[default]
    Manual,
}

/// The envs whose policies the adapter runs, by their registered ids. Anything
/// else is refused when the config is read, naming the field and the choices.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EnvKind {
    /// `Scaling-v0`: replica counts per service.
    #[serde(rename = "Scaling-v0")]
    Scaling,
    /// `Healing-v0`: a remedy for a replica, service or host.
    #[serde(rename = "Healing-v0")]
    Healing,
}

impl EnvKind {
    /// The registered env id.
    pub fn id(self) -> &'static str {
        match self {
            EnvKind::Scaling => "Scaling-v0",
            EnvKind::Healing => "Healing-v0",
        }
    }
}

impl std::fmt::Display for EnvKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.id())
    }
}

impl std::str::FromStr for EnvKind {
    type Err = FieldError;
    fn from_str(id: &str) -> Result<EnvKind, FieldError> {
        match id {
            "Scaling-v0" => Ok(EnvKind::Scaling),
            "Healing-v0" => Ok(EnvKind::Healing),
            other => Err(FieldError::new(
                "env",
                format!("env {other:?}: the adapter runs Scaling-v0 and Healing-v0 policies"),
            )),
        }
    }
}

/// The `[target]` table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum TargetConfig {
    /// Logs what it would do.
    DryRun {
        /// Namespace of the services.
        #[serde(default = "default_namespace")]
        namespace: String,
        /// Service names in the env's service order.
        services: Vec<String>,
        /// Replicas each service starts with.
        #[serde(default = "one")]
        initial_replicas: u32,
        /// CPU request per replica each service starts with, millicores (what a
        /// dry run of a policy that sizes CPU requests resizes); none by default.
        #[serde(default)]
        cpu_millicores: Option<u32>,
    },
    /// Docker Swarm services, through the engine's API socket.
    Docker {
        /// The engine's socket (default `unix:///var/run/docker.sock`).
        #[serde(default = "default_docker_socket")]
        socket: String,
        /// Service names, in the env's service order.
        services: Vec<String>,
        /// Seconds before an API call counts as failed.
        #[serde(default = "default_target_timeout")]
        timeout_s: f64,
    },
    /// Deployments in one Kubernetes namespace.
    Kubernetes {
        /// The kubeconfig file (default: `$KUBECONFIG`, else `~/.kube/config`).
        #[serde(default)]
        kubeconfig: Option<PathBuf>,
        /// The kubeconfig context (default: its current context).
        #[serde(default)]
        context: Option<String>,
        /// Namespace of the Deployments.
        #[serde(default = "default_namespace")]
        namespace: String,
        /// Deployment names, in the env's service order.
        deployments: Vec<String>,
        /// Seconds before an API call counts as failed.
        #[serde(default = "default_target_timeout")]
        timeout_s: f64,
    },
}

impl TargetConfig {
    /// The services' names on the target, in the env's order.
    pub fn services(&self) -> &[String] {
        match self {
            TargetConfig::DryRun { services, .. } => services,
            TargetConfig::Kubernetes { deployments, .. } => deployments,
            TargetConfig::Docker { services, .. } => services,
        }
    }

    /// The namespace the services live in.
    pub fn namespace(&self) -> &str {
        match self {
            TargetConfig::DryRun { namespace, .. } | TargetConfig::Kubernetes { namespace, .. } => {
                namespace
            }
            // Swarm services have no namespace.
            TargetConfig::Docker { .. } => "",
        }
    }
}

/// `$KUBECONFIG` (its first file), else `~/.kube/config`.
pub(crate) fn default_kubeconfig() -> PathBuf {
    if let Some(first) = std::env::var_os("KUBECONFIG")
        .as_ref()
        .and_then(|v| std::env::split_paths(v).next())
    {
        return first;
    }
    let home = std::env::var_os("HOME").unwrap_or_default();
    PathBuf::from(home).join(".kube").join("config")
}

fn default_docker_socket() -> String {
    "unix:///var/run/docker.sock".into()
}

fn default_target_timeout() -> f64 {
    5.0
}

fn default_namespace() -> String {
    "default".into()
}

fn one() -> u32 {
    1
}

/// The whole config file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdapterConfig {
    /// A policy bundle folder (from `hale export`), or a baseline name (`hpa`,
    /// `kubelet`, …).
    pub policy: String,
    /// The env the policy drives (`Scaling-v0`, `Healing-v0`); a bundle must have been
    /// trained on it.
    pub env: EnvKind,
    /// The env's config (a baseline needs it; a bundle must match it).
    #[serde(default)]
    pub env_config: toml::Table,
    /// `auto` or `manual` (default: manual, the safe one).
    #[serde(default)]
    pub mode: Mode,
    /// Seconds between decisions.
    #[serde(default = "default_interval")]
    pub interval_s: f64,
    /// The append-only audit log (JSON lines).
    #[serde(default = "default_audit")]
    pub audit_log: PathBuf,
    /// What to act on.
    pub target: TargetConfig,
    /// Limits that hold whatever the policy says.
    #[serde(default)]
    pub guardrails: GuardConfig,
    /// Where live observations come from (Prometheus queries per feature).
    #[serde(default)]
    pub observation: Option<crate::observe::ObservationConfig>,
    /// The adapter's HTTP endpoint: `/metrics`, and proposals in manual mode.
    #[serde(default)]
    pub server: Option<ServerConfig>,
    /// How manual mode asks.
    #[serde(default)]
    pub manual: ManualConfig,
    /// Where notifications go besides stdout and the audit log.
    #[serde(default)]
    pub notify: NotifyConfig,
    /// More agents in this adapter (`[[also]]`), on the same target, observation,
    /// endpoint and audit log, each with its own policy, env, mode and guardrails; a
    /// coordinator ([`crate::coordinate`]) keeps them from fighting. One per env.
    #[serde(default)]
    pub also: Vec<AgentConfig>,
    /// Seconds a remediation or a disruption holds a service against the other
    /// agents (the coordinator's window).
    #[serde(default = "default_coordination_window")]
    pub coordination_window_s: f64,
}

fn default_coordination_window() -> f64 {
    300.0
}

/// One more agent (`[[also]]`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// A policy bundle folder or a baseline name.
    pub policy: String,
    /// The env the policy drives.
    pub env: EnvKind,
    /// The env's config.
    #[serde(default)]
    pub env_config: toml::Table,
    /// `auto` or `manual` (default: manual).
    #[serde(default)]
    pub mode: Mode,
    /// Its guardrails (default: the top level's).
    #[serde(default)]
    pub guardrails: Option<GuardConfig>,
}

/// The `[server]` table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// `HOST:PORT` to listen on (default loopback only, port 9464).
    #[serde(default = "default_listen")]
    pub listen: String,
    /// The environment variable holding the bearer token that the proposal routes
    /// require (manual mode).
    #[serde(default = "default_token_env")]
    pub token_env: String,
    /// A file holding the token instead (a mounted secret); read at start.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
}

impl ServerConfig {
    /// The bearer token, from `token_file` if set, else `$token_env`; an error names
    /// where it looked.
    pub fn token(&self) -> Result<String, FieldError> {
        let (token, field, from) = match &self.token_file {
            Some(path) => (
                std::fs::read_to_string(path).map_err(|e| {
                    FieldError::new(
                        "server.token_file",
                        format!("server.token_file {}: {e}", path.display()),
                    )
                })?,
                "server.token_file",
                format!("server.token_file {}", path.display()),
            ),
            None => (
                std::env::var(&self.token_env).map_err(|_| {
                    FieldError::new(
                        "server.token_env",
                        format!(
                            "server.token_env: ${} is not set; the proposal endpoint needs a \
                             bearer token",
                            self.token_env
                        ),
                    )
                })?,
                "server.token_env",
                format!("server.token_env ${}", self.token_env),
            ),
        };
        let token = token.trim().to_string();
        if token.is_empty() {
            return Err(FieldError::new(field, format!("{from} is empty")));
        }
        Ok(token)
    }
}

fn default_listen() -> String {
    "127.0.0.1:9464".into()
}

fn default_token_env() -> String {
    "HALE_ADAPTER_TOKEN".into()
}

/// The `[manual]` table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManualConfig {
    /// Seconds a proposal waits for a decision before it expires (nothing is done).
    #[serde(default = "default_ttl")]
    pub ttl_s: f64,
    /// Also ask on the terminal (answers on standard input).
    #[serde(default = "yes")]
    pub prompt: bool,
}

impl Default for ManualConfig {
    fn default() -> Self {
        ManualConfig {
            ttl_s: default_ttl(),
            prompt: true,
        }
    }
}

fn default_ttl() -> f64 {
    300.0
}

fn yes() -> bool {
    true
}

/// The `[notify]` table.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyConfig {
    /// A URL that gets each event (the audit log's JSON) by POST; plain HTTP.
    #[serde(default)]
    pub webhook: Option<String>,
}

fn default_interval() -> f64 {
    15.0
}

fn default_audit() -> PathBuf {
    "hale-adapter-audit.jsonl".into()
}

/// Why a config cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// Malformed TOML, an unknown field, or a value out of range.
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong, naming the field.
        message: String,
    },
}

impl AdapterConfig {
    /// Reads and checks a config file.
    pub fn load(path: &Path) -> Result<AdapterConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        AdapterConfig::from_toml_str(&text, path)
    }

    /// Parses and checks the text of a config file; `path` names it in errors.
    pub fn from_toml_str(text: &str, path: &Path) -> Result<AdapterConfig, ConfigError> {
        let invalid = |message: String| ConfigError::Invalid {
            path: path.to_path_buf(),
            message,
        };
        let cfg: AdapterConfig =
            toml::from_str(text).map_err(|e| invalid(e.to_string().trim_end().to_string()))?;
        cfg.validate().map_err(|e| invalid(e.message))?;
        Ok(cfg)
    }

    /// Checks values; the error names the field.
    pub fn validate(&self) -> Result<(), FieldError> {
        check_seconds("interval_s", self.interval_s, false)?;
        match &self.target {
            TargetConfig::DryRun { services, .. } if services.is_empty() => {
                return Err(FieldError::new(
                    "target.services",
                    "target.services must name the services, in the env's order",
                ));
            }
            TargetConfig::Kubernetes { deployments, .. } if deployments.is_empty() => {
                return Err(FieldError::new(
                    "target.deployments",
                    "target.deployments must name the Deployments, in the env's service order",
                ));
            }
            TargetConfig::Docker { services, .. } if services.is_empty() => {
                return Err(FieldError::new(
                    "target.services",
                    "target.services must name the services, in the env's order",
                ));
            }
            TargetConfig::Kubernetes { timeout_s, .. } | TargetConfig::Docker { timeout_s, .. } => {
                check_seconds("target.timeout_s", *timeout_s, false)?;
            }
            _ => {}
        }
        check_seconds("manual.ttl_s", self.manual.ttl_s, false)?;
        if self.mode == Mode::Manual && self.server.is_none() && !self.manual.prompt {
            return Err(FieldError::new(
                "mode",
                "mode = \"manual\" needs a way to ask: manual.prompt = true or a [server] table",
            ));
        }
        if let Some(url) = &self.notify.webhook
            && !url.starts_with("http://")
        {
            return Err(FieldError::new(
                "notify.webhook",
                format!("notify.webhook {url:?}: only plain http:// URLs are supported"),
            ));
        }
        if let Some(o) = &self.observation {
            crate::observe::PrometheusSource::new(o.clone())?;
            if self.env == EnvKind::Healing && o.replica_queries.is_none() {
                return Err(FieldError::new(
                    "observation.replica_queries",
                    "env Healing-v0 reads each replica: observation.replica_queries \
                     (memory_fraction, mean_latency_ms, error_rate) is missing",
                ));
            }
        }
        check_seconds("coordination_window_s", self.coordination_window_s, true)?;
        let mut envs = vec![self.env];
        for (i, a) in self.also.iter().enumerate() {
            if envs.contains(&a.env) {
                return Err(FieldError::new(
                    format!("also[{i}].env"),
                    format!("also[{i}].env: a second {} agent; one agent per env", a.env),
                ));
            }
            envs.push(a.env);
        }
        if !self.also.is_empty() {
            for (i, member) in self.members().iter().enumerate().skip(1) {
                member.validate().map_err(|e| {
                    FieldError::new(format!("also[{}]", i - 1), format!("also[{}]: {e}", i - 1))
                })?;
            }
        }
        self.guardrails.validate()
    }

    /// The config each agent runs with: the top level's own agent first, then one per
    /// `[[also]]` (its policy, env, env config, mode and guardrails over the top
    /// level's), all with no `[[also]]`; only the first keeps the endpoint.
    pub fn members(&self) -> Vec<AdapterConfig> {
        let mut first = self.clone();
        first.also.clear();
        let mut out = vec![first.clone()];
        for a in &self.also {
            out.push(AdapterConfig {
                policy: a.policy.clone(),
                env: a.env,
                env_config: a.env_config.clone(),
                mode: a.mode,
                guardrails: a
                    .guardrails
                    .clone()
                    .unwrap_or_else(|| self.guardrails.clone()),
                server: None,
                ..first.clone()
            });
        }
        out
    }

    /// The env config as JSON (what envs and policies take).
    pub fn env_config_json(&self) -> serde_json::Value {
        serde_json::to_value(&self.env_config).unwrap_or(serde_json::Value::Null)
    }
}
