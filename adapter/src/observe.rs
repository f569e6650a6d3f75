//! The live observation: one Prometheus query per feature and service, plus the
//! target's replica counts, encoded exactly as the env the policy was trained on
//! encodes its own (`hale_envs::live`). Anything missing or stale is reported by
//! service, feature and query, never read as zero; the adapter holds (no action)
//! while any is.

use crate::field::FieldError;
use hale_envs::encoding::{ScalingObservation, ServiceReading};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The `[observation]` table. Queries may use `$service` (the target's name of the
/// service) and must return one sample in the units named.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObservationConfig {
    /// Prometheus base URL, e.g. `http://127.0.0.1:9090`.
    pub prometheus: String,
    /// Seconds before a query counts as failed.
    #[serde(default = "default_timeout")]
    pub timeout_s: f64,
    /// A sample older than this (seconds) is stale.
    #[serde(default = "default_max_age")]
    pub max_age_s: f64,
    /// One query per feature.
    pub queries: Queries,
    /// Healing-v0 only: one query per replica feature.
    #[serde(default)]
    pub replica_queries: Option<ReplicaQueries>,
}

/// The queries of Healing-v0's per-replica features. They may use `$service` and
/// `$replica` (the replica's name as the target reports it: a pod's name, a Swarm
/// task's id). Only replicas the target reports running are asked about: the others
/// answer nothing, as in the env. A result of NaN (a rate over a rate, 0/0: the
/// replica answered nothing in the window) reads as 0, as the env reports such a
/// replica; no sample at all is missing data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplicaQueries {
    /// Memory in use over the replica's limit, a fraction.
    pub memory_fraction: String,
    /// Mean latency of what it answered in the last window, milliseconds.
    pub mean_latency_ms: String,
    /// Failed over answered requests in that window, a fraction in 0..1.
    pub error_rate: String,
}

impl ReplicaQueries {
    fn each(&self) -> [(&'static str, &str); 3] {
        [
            ("memory_fraction", &self.memory_fraction),
            ("mean_latency_ms", &self.mean_latency_ms),
            ("error_rate", &self.error_rate),
        ]
    }
}

/// What Prometheus said about one replica (Healing-v0).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct ReplicaSample {
    /// Memory over limit.
    pub memory_fraction: f64,
    /// Mean latency, ms.
    pub mean_latency_ms: f64,
    /// Error rate.
    pub error_rate: f64,
}

fn default_timeout() -> f64 {
    2.0
}

fn default_max_age() -> f64 {
    60.0
}

/// The queries of the Scaling-v0 features (per service).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Queries {
    /// Requests per second reaching the service.
    pub request_rate: String,
    /// Median latency of answered requests, milliseconds.
    pub p50_ms: String,
    /// 95th percentile latency, milliseconds.
    pub p95_ms: String,
    /// 99th percentile latency, milliseconds.
    pub p99_ms: String,
    /// Failed over answered requests, a fraction in 0..1.
    pub error_rate: String,
    /// Busy over requested CPU of the service's replicas, a fraction.
    pub cpu_utilization: String,
}

impl Queries {
    fn each(&self) -> [(&'static str, &str); 6] {
        [
            ("request_rate", &self.request_rate),
            ("p50_ms", &self.p50_ms),
            ("p95_ms", &self.p95_ms),
            ("p99_ms", &self.p99_ms),
            ("error_rate", &self.error_rate),
            ("cpu_utilization", &self.cpu_utilization),
        ]
    }
}

/// A feature that could not be read.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Missing {
    /// The service (target name).
    pub service: String,
    /// The feature.
    pub feature: String,
    /// Why: unreachable, HTTP status, no sample, stale, not a number.
    pub reason: String,
}

/// Replica counts of one service, from the target.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Replicas {
    /// Ready.
    pub ready: u32,
    /// Starting.
    pub booting: u32,
    /// Desired.
    pub desired: u32,
}

/// The encoded observation, or what kept it from being whole.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Observation {
    /// The flat observation (meaningless where `missing` is not empty).
    pub features: Vec<f32>,
    /// The readings behind it, per service.
    #[serde(skip)]
    pub readings: Vec<ServiceReading>,
    /// What could not be read: act only when this is empty.
    pub missing: Vec<Missing>,
    /// Age of the oldest sample used, seconds.
    pub oldest_sample_s: f64,
}

/// Reads Scaling-v0's observation from Prometheus.
pub struct PrometheusSource {
    config: ObservationConfig,
    agent: ureq::Agent,
}

impl PrometheusSource {
    /// A source for `config` (checked: a URL and positive time limits).
    pub fn new(config: ObservationConfig) -> Result<PrometheusSource, FieldError> {
        if !config.prometheus.starts_with("http://") && !config.prometheus.starts_with("https://") {
            return Err(FieldError::new(
                "observation.prometheus",
                format!(
                    "observation.prometheus: {:?} is not an http(s) URL",
                    config.prometheus
                ),
            ));
        }
        crate::field::check_seconds("observation.timeout_s", config.timeout_s, false)?;
        crate::field::check_seconds("observation.max_age_s", config.max_age_s, false)?;
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs_f64(config.timeout_s)))
            .http_status_as_error(false)
            .build()
            .into();
        Ok(PrometheusSource { config, agent })
    }

    /// One instant query: its value and the sample's Unix time.
    fn query(&self, query: &str) -> Result<(f64, f64), QueryError> {
        let (url, body) = self.get("query", &[("query", query.to_string())])?;
        parse_instant_query(&body).map_err(|e| match e {
            QueryError::NotJson(_) => QueryError::Read {
                url,
                reason: e.to_string(),
            },
            other => other,
        })
    }

    /// `GET /api/v1/ENDPOINT?params`: the URL asked and the body of a successful
    /// answer.
    fn get(
        &self,
        endpoint: &str,
        params: &[(&str, String)],
    ) -> Result<(String, String), QueryError> {
        let url = format!(
            "{}/api/v1/{endpoint}",
            self.config.prometheus.trim_end_matches('/')
        );
        let mut request = self.agent.get(&url);
        for (k, v) in params {
            request = request.query(*k, v);
        }
        let mut resp = request.call().map_err(|e| QueryError::Unreachable {
            url: url.clone(),
            reason: e.to_string(),
        })?;
        let status = resp.status();
        let body = resp
            .body_mut()
            .read_to_string()
            .map_err(|e| QueryError::Read {
                url: url.clone(),
                reason: e.to_string(),
            })?;
        if !status.is_success() {
            return Err(QueryError::Status {
                url,
                status: status.as_u16(),
            });
        }
        Ok((url, body))
    }

    /// A range query (`/api/v1/query_range`) of the feature query `template` for
    /// `service` from `start` to `end` (Unix seconds) every `step_s`: the samples of
    /// its one series, or why there are none.
    pub fn range(
        &self,
        template: &str,
        service: &str,
        (start, end, step_s): (f64, f64, f64),
    ) -> Result<Vec<(f64, f64)>, QueryError> {
        let params = [
            ("query", template.replace("$service", service)),
            ("start", format!("{start:.3}")),
            ("end", format!("{end:.3}")),
            ("step", format!("{step_s}")),
        ];
        let (_, body) = self.get("query_range", &params)?;
        parse_range_query(&body)
    }

    /// The feature queries, by feature name.
    pub fn queries(&self) -> [(&'static str, &str); 6] {
        self.config.queries.each()
    }

    /// All queries at once, one thread each: a Prometheus that does not answer costs
    /// one timeout per step, not one per query.
    fn query_all(&self, queries: &[String]) -> Vec<Result<(f64, f64), QueryError>> {
        std::thread::scope(|scope| {
            let running: Vec<_> = queries
                .iter()
                .map(|q| scope.spawn(move || self.query(q)))
                .collect();
            running
                .into_iter()
                .map(|h| h.join().unwrap_or(Err(QueryError::Panicked)))
                .collect()
        })
    }

    /// Whether the config has the per-replica queries (Healing-v0).
    pub fn has_replica_queries(&self) -> bool {
        self.config.replica_queries.is_some()
    }

    /// The per-replica features of `replicas` (`(service, replica)` target names).
    /// Returns the samples in that order, what is missing, and the oldest sample's
    /// age. `now` is Unix seconds.
    pub fn replicas(
        &self,
        replicas: &[(String, String)],
        now: f64,
    ) -> (Vec<ReplicaSample>, Vec<Missing>, f64) {
        let Some(rq) = &self.config.replica_queries else {
            let missing = vec![Missing {
                service: "*".into(),
                feature: "replica_queries".into(),
                reason: "observation.replica_queries is not configured".into(),
            }];
            return (vec![ReplicaSample::default(); replicas.len()], missing, 0.0);
        };
        let features = rq.each();
        let queries: Vec<String> = replicas
            .iter()
            .flat_map(|(service, replica)| {
                features.iter().map(move |(_, template)| {
                    template
                        .replace("$service", service)
                        .replace("$replica", replica)
                })
            })
            .collect();
        let answers = self.query_all(&queries);
        let mut answers = queries.into_iter().zip(answers);
        let (mut samples, mut missing, mut oldest) = (Vec::new(), Vec::new(), 0.0f64);
        for (service, replica) in replicas {
            let mut values = [0.0f64; 3];
            for (k, (feature, _)) in features.iter().enumerate() {
                let Some((query, answer)) = answers.next() else {
                    break;
                };
                let miss = |reason: QueryError| Missing {
                    service: service.clone(),
                    feature: format!("{feature} of {replica}"),
                    reason: format!("{reason} (query {query})"),
                };
                match self.value(answer, now, &mut oldest, true) {
                    Ok(v) => values[k] = v,
                    Err(reason) => missing.push(miss(reason)),
                }
            }
            samples.push(ReplicaSample {
                memory_fraction: values[0],
                mean_latency_ms: values[1],
                error_rate: values[2],
            });
        }
        (samples, missing, oldest)
    }

    /// A sample's value if it is fresh and a number, or why not; `oldest` keeps the
    /// largest age seen. With `nan_is_zero`, NaN (a ratio of rates, 0/0) reads as 0.
    fn value(
        &self,
        answer: Result<(f64, f64), QueryError>,
        now: f64,
        oldest: &mut f64,
        nan_is_zero: bool,
    ) -> Result<f64, QueryError> {
        let (v, ts) = answer?;
        let age = (now - ts).max(0.0);
        *oldest = oldest.max(age);
        if age > self.config.max_age_s {
            Err(QueryError::Stale {
                age_s: age,
                max_age_s: self.config.max_age_s,
            })
        } else if v.is_nan() && nan_is_zero {
            Ok(0.0)
        } else if v.is_finite() {
            Ok(v)
        } else {
            Err(QueryError::NotFinite(v))
        }
    }

    /// The observation for `services` (target names, in the env's order) with their
    /// replica counts (None: the target did not say). `now` is Unix seconds.
    pub fn observe(
        &self,
        encoding: &ScalingObservation,
        services: &[String],
        replicas: &[Option<Replicas>],
        now: f64,
    ) -> Observation {
        let mut obs = self.readings(services, replicas, now);
        match encoding.encode(&obs.readings) {
            Ok(f) => obs.features = f,
            Err(reason) => obs.missing.push(Missing {
                service: "*".into(),
                feature: "services".into(),
                reason: format!("{reason}: target.services must list the env's services"),
            }),
        }
        obs
    }

    /// The service readings for `services` with their replica counts, not encoded
    /// (`features` is left empty).
    pub fn readings(
        &self,
        services: &[String],
        replicas: &[Option<Replicas>],
        now: f64,
    ) -> Observation {
        let mut missing = Vec::new();
        let mut readings = Vec::with_capacity(services.len());
        let mut oldest = 0.0f64;
        let features = self.config.queries.each();
        let queries: Vec<String> = services
            .iter()
            .flat_map(|service| {
                features
                    .iter()
                    .map(move |(_, template)| template.replace("$service", service))
            })
            .collect();
        let answers = self.query_all(&queries);
        let mut answers = queries.into_iter().zip(answers);
        for (i, service) in services.iter().enumerate() {
            let mut values = [0.0f64; 6];
            for (k, (feature, _)) in features.iter().enumerate() {
                let Some((query, answer)) = answers.next() else {
                    break;
                };
                let miss = |reason: QueryError| Missing {
                    service: service.clone(),
                    feature: (*feature).into(),
                    reason: format!("{reason} (query {query})"),
                };
                match self.value(answer, now, &mut oldest, false) {
                    Ok(v) => values[k] = v,
                    Err(reason) => missing.push(miss(reason)),
                }
            }
            let r = replicas.get(i).copied().flatten();
            if r.is_none() {
                missing.push(Missing {
                    service: service.clone(),
                    feature: "replicas".into(),
                    reason: "the target did not report the service's replicas".into(),
                });
            }
            let r = r.unwrap_or_default();
            readings.push(ServiceReading {
                request_rate: values[0],
                p50_ms: values[1],
                p95_ms: values[2],
                p99_ms: values[3],
                error_rate: values[4],
                cpu_utilization: values[5],
                ready: r.ready,
                booting: r.booting,
                desired: r.desired,
            });
        }
        Observation {
            features: Vec::new(),
            readings,
            missing,
            oldest_sample_s: oldest,
        }
    }
}

/// Why a query gave no usable sample.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// Prometheus did not answer.
    #[error("{url} unreachable: {reason}")]
    Unreachable {
        /// The query URL.
        url: String,
        /// What happened.
        reason: String,
    },
    /// The answer could not be read.
    #[error("{url}: {reason}")]
    Read {
        /// The query URL.
        url: String,
        /// What happened.
        reason: String,
    },
    /// Prometheus answered with an error status.
    #[error("{url} answered HTTP {status}")]
    Status {
        /// The query URL.
        url: String,
        /// The HTTP status.
        status: u16,
    },
    /// The sample is older than `max_age_s`.
    #[error("stale: the sample is {age_s:.0} s old (max_age_s {max_age_s})")]
    Stale {
        /// Its age, seconds.
        age_s: f64,
        /// The config's limit.
        max_age_s: f64,
    },
    /// The sample is infinite or NaN.
    #[error("sample value is {0}")]
    NotFinite(f64),
    /// The thread running the query panicked.
    #[error("the query thread panicked")]
    Panicked,
    /// The body is not JSON.
    #[error("not JSON: {0}")]
    NotJson(serde_json::Error),
    /// `status` is not `"success"`.
    #[error("query failed: {0}")]
    Failed(String),
    /// No `data.result` array.
    #[error("the answer has no data.result")]
    NoResult,
    /// An empty result.
    #[error("no sample (the series is absent)")]
    Absent,
    /// More than one series.
    #[error("{0} series, expected one (aggregate it)")]
    Many(usize),
    /// The sample's timestamp is not a number.
    #[error("sample without a timestamp")]
    NoTimestamp,
    /// The sample's value is not a number in a string.
    #[error("sample value is not a number")]
    NotANumber,
}

/// The one series of a successful query answer (its JSON object), or why there is
/// none.
fn one_series(body: &str) -> Result<serde_json::Value, QueryError> {
    let mut json: serde_json::Value = serde_json::from_str(body).map_err(QueryError::NotJson)?;
    if json["status"] != "success" {
        return Err(QueryError::Failed(json["error"].to_string()));
    }
    let result = json["data"]["result"]
        .as_array_mut()
        .ok_or(QueryError::NoResult)?;
    match result.len() {
        1 => Ok(result.swap_remove(0)),
        0 => Err(QueryError::Absent),
        many => Err(QueryError::Many(many)),
    }
}

/// One `[unix time, "value"]` sample.
fn sample(pair: &serde_json::Value) -> Result<(f64, f64), QueryError> {
    let ts = pair[0].as_f64().ok_or(QueryError::NoTimestamp)?;
    let value: f64 = pair[1]
        .as_str()
        .and_then(|s| s.parse().ok())
        .ok_or(QueryError::NotANumber)?;
    Ok((ts, value))
}

/// Reads the one sample of an instant query's answer: its value and Unix time.
pub fn parse_instant_query(body: &str) -> Result<(f64, f64), QueryError> {
    let (ts, value) = sample(&one_series(body)?["value"])?;
    Ok((value, ts))
}

/// Reads the one series of a range query's answer: its (Unix time, value) samples.
pub fn parse_range_query(body: &str) -> Result<Vec<(f64, f64)>, QueryError> {
    one_series(body)?["values"]
        .as_array()
        .ok_or(QueryError::NoResult)?
        .iter()
        .map(sample)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_range_answer_reads_as_its_samples_or_says_why_not() {
        let one = r#"{"status":"success","data":{"resultType":"matrix","result":[
            {"metric":{},"values":[[100,"1.5"],[130,"2"]]}]}}"#;
        assert_eq!(
            parse_range_query(one).unwrap(),
            vec![(100.0, 1.5), (130.0, 2.0)]
        );
        let none = r#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#;
        assert!(matches!(parse_range_query(none), Err(QueryError::Absent)));
        let two = r#"{"status":"success","data":{"result":[{"values":[]},{"values":[]}]}}"#;
        assert!(matches!(parse_range_query(two), Err(QueryError::Many(2))));
        let bad = r#"{"status":"success","data":{"result":[{"values":[[1,"x"]]}]}}"#;
        assert!(matches!(
            parse_range_query(bad),
            Err(QueryError::NotANumber)
        ));
        let failed = r#"{"status":"error","error":"parse error"}"#;
        assert!(matches!(
            parse_range_query(failed),
            Err(QueryError::Failed(_))
        ));
    }
}
