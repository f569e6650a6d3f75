//! A stand-in Prometheus for the adapter's tests: `/api/v1/query` on loopback,
//! answering canned samples per query; and the `[observation.queries]` it answers.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

/// What the stand-in answers: per query, (HTTP status, body).
pub type Answers = Arc<Mutex<HashMap<String, (u16, String)>>>;

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

/// A one-thread HTTP server for `/api/v1/query`; unknown queries get an empty result.
pub fn stand_in() -> (String, Answers) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let answers: Answers = Arc::default();
    let served = answers.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).unwrap() == 0 || h == "\r\n" {
                    break;
                }
            }
            let target = line.split_whitespace().nth(1).unwrap_or("");
            let query = target
                .split_once("query=")
                .map(|(_, q)| decode(q.split('&').next().unwrap()))
                .unwrap_or_default();
            let (status, body) = served.lock().unwrap().get(&query).cloned().unwrap_or((
                200,
                r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#.into(),
            ));
            // A range query gets the canned sample's value over the range asked.
            let (status, body) = if target.starts_with("/api/v1/query_range") {
                (status, as_range(&body, target))
            } else {
                (status, body)
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (url, answers)
}

/// The canned instant answer `body` as a range answer: its one sample's value at
/// every `step` from `start` to `end` of the request `target` (none for none).
fn as_range(body: &str, target: &str) -> String {
    let param = |name: &str| -> f64 {
        target
            .split(['?', '&'])
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
            .and_then(|v| decode(v).parse().ok())
            .unwrap_or(0.0)
    };
    let (start, end, step) = (param("start"), param("end"), param("step").max(1.0));
    let parsed: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    let result = match parsed["data"]["result"].as_array().map(Vec::as_slice) {
        Some([one]) => {
            let value = one["value"][1].as_str().unwrap_or("NaN");
            let mut values = Vec::new();
            let mut t = start;
            while t <= end {
                values.push(serde_json::json!([t, value]));
                t += step;
            }
            serde_json::json!([{"metric": {}, "values": values}])
        }
        _ => serde_json::json!([]),
    };
    serde_json::json!({"status": "success", "data": {"resultType": "matrix", "result": result}})
        .to_string()
}

pub fn sample(value: f64, ts: f64) -> (u16, String) {
    (
        200,
        format!(
            r#"{{"status":"success","data":{{"resultType":"vector","result":[{{"metric":{{}},"value":[{ts},"{value}"]}}]}}}}"#
        ),
    )
}

/// The `[observation.queries]` table whose queries [`serve_readings`] answers.
pub const QUERIES: &str = r#"[observation.queries]
request_rate = "rate($service)"
p50_ms = "p50($service)"
p95_ms = "p95($service)"
p99_ms = "p99($service)"
error_rate = "errors($service)"
cpu_utilization = "cpu($service)"
"#;

/// Has the stand-in answer [`QUERIES`] for each of `services` with a steady load
/// (50 req/s, p50/p95/p99 20/80/150 ms, no errors) at CPU utilisation `cpu`, sampled
/// at Unix time `ts`.
pub fn serve_readings(answers: &Answers, services: &[&str], cpu: f64, ts: f64) {
    let mut a = answers.lock().unwrap();
    for s in services {
        for (q, v) in [
            ("rate", 50.0),
            ("p50", 20.0),
            ("p95", 80.0),
            ("p99", 150.0),
            ("errors", 0.0),
            ("cpu", cpu),
        ] {
            a.insert(format!("{q}({s})"), sample(v, ts));
        }
    }
}

/// An untrained GNN bundle (hidden 8, one round) for `env_id` with `env_config`
/// (which must ask for graph observations), written to `dir`.
pub fn gnn_bundle(dir: &std::path::Path, env_id: &str, env_config: &serde_json::Value) {
    untrained_bundle(dir, env_id, env_config, true);
}

/// An untrained MLP bundle (one hidden layer of 16, seeded) for `env_id` with
/// `env_config`, written to `dir`.
pub fn mlp_bundle(dir: &std::path::Path, env_id: &str, env_config: &serde_json::Value) {
    untrained_bundle(dir, env_id, env_config, false);
}

fn untrained_bundle(
    dir: &std::path::Path,
    env_id: &str,
    env_config: &serde_json::Value,
    gnn: bool,
) {
    use burn::prelude::Device;
    use hale_policies::bundle::{self, BundleSpec};
    use hale_policies::network::{Encoder, GnnSpec, LayoutSpec, Network};
    let env = hale_envs::make(env_id, env_config).unwrap();
    let heads: Vec<usize> = match env.action_space() {
        hale_envs::Space::MultiDiscrete { nvec } => nvec.iter().map(|&n| n as usize).collect(),
        hale_envs::Space::Discrete { n } => vec![*n as usize],
        other => panic!("{other:?}"),
    };
    let (encoder, obs_dim, hidden) = if gnn {
        let hale_envs::Space::Graph { node_features, .. } = env.observation_space() else {
            panic!("graph observations")
        };
        let encoder = Encoder::Gnn(GnnSpec {
            node_dim: *node_features,
            hidden: 8,
            layers: 1,
            layout: LayoutSpec::for_env(env_id, env_config, env.action_space()).unwrap(),
        });
        (encoder, 0, vec![])
    } else {
        let obs_dim = env.observation_space().flat_dim().unwrap();
        (Encoder::Mlp, obs_dim, vec![16])
    };
    let network = hale_policies::tensors::seeded(&Device::flex(), 1, |d| {
        Network::new(&encoder, obs_dim, heads.iter().sum(), &hidden, d)
    });
    let spec = BundleSpec {
        format_version: bundle::FORMAT_VERSION,
        env_id: env_id.into(),
        env_config: env_config.clone(),
        observation_space: env.observation_space().clone(),
        action_space: env.action_space().clone(),
        obs_dim,
        heads,
        hidden,
        encoder,
        algorithm: "ppo".into(),
        hyperparameters: serde_json::json!({}),
        obs_normalization: None,
        git_revision: None,
        seed: 0,
        weights_sha256: String::new(),
    };
    bundle::save(dir, &network, spec).unwrap();
}
