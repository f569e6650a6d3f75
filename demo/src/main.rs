//! hale-demo: a service that burns CPU per request and exports Prometheus metrics,
//! for the adapter's end-to-end tests (see README.md for its environment).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Labels {
    service: String,
    version: String,
    replica: String,
}

struct Metrics {
    registry: Registry,
    requests: Family<Labels, Counter>,
    errors: Family<Labels, Counter>,
    busy: Family<Labels, Counter<f64, AtomicU64>>,
    latency: Family<Labels, Histogram>,
    resident: Family<Labels, Gauge<f64, AtomicU64>>,
}

/// Resident memory of this process, bytes (Linux: `/proc/self/statm`, 4 KiB pages).
fn resident_bytes() -> Option<f64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: f64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096.0)
}

fn env(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

/// Binds the first free port of `FIRST-LAST` on loopback.
fn bind(range: &str) -> Result<(tiny_http::Server, u16), String> {
    let (first, last) = range
        .split_once('-')
        .and_then(|(a, b)| Some((a.parse::<u16>().ok()?, b.parse::<u16>().ok()?)))
        .ok_or_else(|| format!("HALE_DEMO_PORTS {range:?}: expected FIRST-LAST"))?;
    for port in first..=last {
        if let Ok(server) = tiny_http::Server::http(("127.0.0.1", port)) {
            return Ok((server, port));
        }
    }
    Err(format!("no free port in {first}-{last}"))
}

/// Spins on the CPU for `d` (a sleep would not show as utilisation).
fn burn(d: Duration) {
    let start = Instant::now();
    let mut x = 0u64;
    while start.elapsed() < d {
        x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
    }
}

fn main() {
    let labels = Labels {
        service: env("HALE_DEMO_SERVICE", "demo"),
        version: env("HALE_DEMO_VERSION", "1"),
        replica: String::new(),
    };
    let work = Duration::from_secs_f64(
        env("HALE_DEMO_WORK_MS", "5")
            .parse::<f64>()
            .unwrap_or_else(|_| {
                eprintln!("HALE_DEMO_WORK_MS must be a number of milliseconds");
                std::process::exit(2)
            })
            / 1e3,
    );
    let (server, port) = bind(&env("HALE_DEMO_PORTS", "18080-18089")).unwrap_or_else(|e| {
        eprintln!("hale-demo: {e}");
        std::process::exit(2)
    });
    // Swarm fills the replica in from a template (`{{.Task.ID}}`), Kubernetes from
    // the downward API (the pod's name); by default it is the port.
    let labels = Labels {
        replica: env("HALE_DEMO_REPLICA", &port.to_string()),
        ..labels
    };
    eprintln!(
        "hale-demo {} v{} on 127.0.0.1:{port}, {} ms per request",
        labels.service,
        labels.version,
        work.as_secs_f64() * 1e3
    );
    let mut registry = Registry::with_prefix("app");
    let m = Metrics {
        requests: Family::default(),
        errors: Family::default(),
        busy: Family::default(),
        latency: Family::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.001, 2.0, 14))
        }),
        resident: Family::default(),
        registry: Registry::default(),
    };
    registry.register("requests", "Requests answered", m.requests.clone());
    registry.register("errors", "Requests that failed", m.errors.clone());
    registry.register(
        "busy_seconds",
        "CPU seconds spent on requests",
        m.busy.clone(),
    );
    registry.register(
        "latency_seconds",
        "Seconds from arrival to answer",
        m.latency.clone(),
    );
    registry.register(
        "resident_bytes",
        "Resident memory of the process",
        m.resident.clone(),
    );
    let m = Arc::new(Metrics { registry, ..m });
    // Every series exists from the start, at zero: a replica that has answered
    // nothing yet is a replica with rates of 0, not an absent one.
    drop(m.requests.get_or_create(&labels));
    drop(m.errors.get_or_create(&labels));
    drop(m.busy.get_or_create(&labels));
    drop(m.latency.get_or_create(&labels));
    // One worker: a replica's capacity is one request at a time, so CPU utilisation
    // and queueing follow the load as in the simulator's model.
    for request in server.incoming_requests() {
        let arrived = Instant::now();
        let path = request.url().split('?').next().unwrap_or("").to_string();
        if path == "/metrics" {
            if let Some(bytes) = resident_bytes() {
                m.resident.get_or_create(&labels).set(bytes);
            }
            let mut body = String::new();
            let _ = prometheus_client::encoding::text::encode(&mut body, &m.registry);
            let _ = request.respond(tiny_http::Response::from_string(body));
            continue;
        }
        let start = Instant::now();
        burn(work);
        m.busy
            .get_or_create(&labels)
            .inc_by(start.elapsed().as_secs_f64());
        m.requests.get_or_create(&labels).inc();
        if request
            .respond(tiny_http::Response::from_string("ok\n"))
            .is_err()
        {
            m.errors.get_or_create(&labels).inc();
        }
        m.latency
            .get_or_create(&labels)
            .observe(arrived.elapsed().as_secs_f64());
    }
}
