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
            working_set_mib: None,
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
        security: None,
    }
}

/// The GNN speed workload: `graphs` random connected graphs of `nodes` nodes with
/// `features` features each (a spanning chain plus one random edge per node), with
/// a fixed seed so that every tool sees the same graphs. Returns node features
/// (row-major, all graphs) and edge lists (global node indices, both directions).
pub fn gnn_graphs(graphs: usize, nodes: usize, features: usize) -> (Vec<f32>, Vec<[u32; 2]>) {
    let mut rng = rng::Stream::from_key(2024);
    let x: Vec<f32> = (0..graphs * nodes * features)
        .map(|_| rng.unit() as f32 * 2.0 - 1.0)
        .collect();
    let mut edges = Vec::new();
    for g in 0..graphs {
        let base = (g * nodes) as u32;
        for i in 1..nodes as u32 {
            edges.push([base + i - 1, base + i]);
            edges.push([base + i, base + rng.below(nodes) as u32]);
        }
    }
    (x, edges)
}

/// One training step of the GNN on [`gnn_graphs`]: forward (two GraphSAGE layers,
/// 64 wide, a per-node head and a pooled value), a squared loss on the values and
/// the node scores, backward, and an Adam step. Holds the network and optimiser:
/// burn's autodiff ([`GnnStep::new`]) or the fused CPU step ([`GnnStep::fused`]).
pub struct GnnStep {
    net: Option<hale_policies::gnn::GnnActorCritic>,
    optim: burn::optim::ModuleOptimizer,
    batch: hale_policies::gnn::GraphBatch,
    layout: hale_policies::gnn::ActionLayout,
    /// The graphs in two halves with their layouts: the fused step's two shares.
    halves: Vec<(
        hale_policies::gnn::GraphBatch,
        hale_policies::gnn::ActionLayout,
    )>,
    fused: Option<hale_policies::learn::fused_gnn::FusedGnn>,
    device: burn::prelude::Device,
}

impl GnnStep {
    /// The workload of `graphs × nodes` nodes with `features` features, on `device`
    /// (an autodiff device), trained with burn's autodiff.
    pub fn new(
        graphs: usize,
        nodes: usize,
        features: usize,
        device: burn::prelude::Device,
    ) -> GnnStep {
        use hale_envs::GraphValue;
        use hale_policies::gnn::{ActionLayout, GnnActorCritic, GraphBatch};
        let (x, edges) = gnn_graphs(graphs, nodes, features);
        let per_graph: Vec<GraphValue> = (0..graphs)
            .map(|g| GraphValue {
                nodes: x[g * nodes * features..(g + 1) * nodes * features].to_vec(),
                edges: vec![],
                links: edges
                    .iter()
                    .filter(|e| e[0] as usize / nodes == g)
                    .map(|e| [e[0] - (g * nodes) as u32, e[1] - (g * nodes) as u32])
                    .collect(),
            })
            .collect();
        let refs: Vec<&GraphValue> = per_graph.iter().collect();
        // Every node's 4 scores as the action logits, in node order.
        let batch_of = |gs: &[&GraphValue]| {
            let batch = GraphBatch::new(gs, features).expect("valid graphs");
            let g = gs.len();
            let layout = ActionLayout {
                actions: nodes * 4,
                index: (0..(g * nodes * 4) as i64).map(|i| i + g as i64).collect(),
            };
            (batch, layout)
        };
        let (batch, layout) = batch_of(&refs);
        let half = graphs / 2;
        let halves = vec![batch_of(&refs[..half]), batch_of(&refs[half..])];
        let net = hale_policies::tensors::seeded(&device, 0, |d| {
            GnnActorCritic::new(features, 64, 2, 4, 1, d)
        });
        GnnStep {
            net: Some(net),
            optim: burn::optim::AdamConfig::new().init(),
            batch,
            layout,
            halves,
            fused: None,
            device,
        }
    }

    /// The same workload, trained with the fused CPU step
    /// ([`hale_policies::learn::fused_gnn`]): the graphs in two halves side by side.
    pub fn fused(graphs: usize, nodes: usize, features: usize) -> GnnStep {
        let mut step = GnnStep::new(graphs, nodes, features, burn::prelude::Device::flex());
        let net = step.net.as_ref().expect("built");
        step.fused = Some(
            hale_policies::learn::fused_gnn::FusedGnn::from_model(net).expect("layers with biases"),
        );
        step
    }

    /// One forward + backward + Adam step; returns the loss.
    pub fn step(&mut self) -> f32 {
        use burn::optim::GradientsParams;
        if let Some(fused) = &mut self.fused {
            let graphs: usize = self.halves.iter().map(|(b, _)| b.graphs()).sum();
            let logits = (graphs * self.layout.actions) as f32;
            let shares: Vec<_> = self.halves.iter().map(|(b, l)| (b, l)).collect();
            let sums = fused.gradient(&shares, -1e8, |_, l, v, out| {
                out.logits.clear();
                out.logits.extend(l.iter().map(|&x| 2.0 * x / logits));
                out.values.clear();
                out.values
                    .extend(v.iter().map(|&x| 2.0 * (x - 1.0) / graphs as f32));
                l.iter().map(|&x| x * x).sum::<f32>() / logits
                    + v.iter().map(|&x| (x - 1.0) * (x - 1.0)).sum::<f32>() / graphs as f32
            });
            // burn's Adam (ε 1e-8 by default) differs from the fused step's ε 1e-5
            // only in that constant: the arithmetic per step is the same.
            fused.clip_and_step(f32::INFINITY, 1e-3);
            return sums.iter().sum();
        }
        let net = self.net.take().expect("put back after each step");
        let (logits, values) = net.forward(&self.batch, &self.layout, -1e8, &self.device);
        let loss = (values - 1.0).square().mean() + logits.square().mean();
        let value = hale_policies::tensors::to_vec(loss.clone().detach())[0];
        let grads = GradientsParams::from_grads(loss.backward(), &net);
        self.net = Some(self.optim.step(1e-3, net, grads));
        value
    }
}
