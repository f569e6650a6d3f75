//! Workloads shared by hale's criterion benchmarks (`benches/`) and the scripts that
//! compare hale with peer tools (`scripts/`).
#![warn(missing_docs)]

use hale_sim::*;

/// A large fluid-fidelity fleet: `hosts` 8-core hosts in 4 zones and `services`
/// services of `replicas_per_service` half-core replicas, in call chains of five
/// (each chain head takes a diurnal workload sized to about half the chain's capacity).
pub fn fluid_fleet(hosts: u32, services: usize, replicas_per_service: u32) -> ScenarioSpec {
    let zones: Vec<String> = (0..4).map(|z| format!("zone-{z}")).collect();
    let chain = 5;
    let services_spec: Vec<ServiceSpec> = (0..services)
        .map(|i| ServiceSpec {
            name: format!("svc-{i}"),
            replicas: replicas_per_service,
            cpu: 0.5,
            memory_mib: 512.0,
            memory_limit_mib: None,
            concurrency: 4,
            queue_capacity: 1000,
            service_time: DistSpec::Exponential { mean_ms: 5.0 },
            error_rate: 0.001,
            boot_time_s: 30.0,
            restart_time_s: 10.0,
            rollback_time_s: 60.0,
            resize_time_s: 5.0,
            load_balancer: LbPolicy::RoundRobin,
            calls: if (i + 1) % chain != 0 && i + 1 < services {
                vec![CallSpec {
                    to: format!("svc-{}", i + 1),
                    fanout: 1,
                    timeout_ms: 1000.0,
                    retries: 1,
                    backoff_ms: 25.0,
                    backoff_max_ms: 1000.0,
                }]
            } else {
                vec![]
            },
        })
        .collect();
    // A chain head holds a slot for about 5 × 5 ms = 25 ms; half its slots busy:
    // replicas × 4 / 0.025 / 2 requests per second.
    let rps = replicas_per_service as f64 * 4.0 / 0.025 / 2.0;
    let workload = (0..services)
        .step_by(chain)
        .map(|i| WorkloadSpec {
            service: format!("svc-{i}"),
            rate: RateSpec::Diurnal {
                mean_rps: rps / 1.3,
                amplitude: 0.3,
                period_s: 3600.0,
                phase_s: 0.0,
            },
            timeout_ms: 5000.0,
            retries: 0,
            backoff_ms: 25.0,
            backoff_max_ms: 1000.0,
            limit: None,
        })
        .collect();
    ScenarioSpec {
        name: "fluid-fleet".into(),
        description: format!(
            "{hosts} hosts, {services} services × {replicas_per_service} replicas, fluid"
        ),
        fidelity: Fidelity::Fluid,
        simulation: SimulationSpec::default(),
        cluster: ClusterSpec {
            max_hosts: hosts * 2,
            ..ClusterSpec::default()
        },
        host_types: vec![HostTypeSpec {
            name: "m5.2xlarge".into(),
            cpu: 8.0,
            memory_mib: 32768.0,
            price_per_hour: 0.384,
            lifecycle: Lifecycle::OnDemand,
        }],
        hosts: zones
            .iter()
            .map(|z| HostGroupSpec {
                zone: z.clone(),
                host_type: "m5.2xlarge".into(),
                count: hosts / 4,
            })
            .collect(),
        zones,
        services: services_spec,
        workload,
        slos: vec![],
        faults: FaultsSpec {
            schedule: vec![],
            mtbf: vec![FaultProcessSpec {
                target: "any".into(),
                fault: FaultSpec::HostFailure {
                    repair_s: Some(600.0),
                },
                every: IntervalSpec::Exponential { mean_s: 60.0 },
            }],
        },
    }
}
