//! Validation: a [`ScenarioSpec`] checked field by field (each error names the file
//! and the field path) and resolved into a [`Scenario`] whose names are indices.

use super::spec::*;
use super::{Edge, FaultTarget, Scenario, SecurityModel};
use crate::time::SimTime;
use std::collections::HashMap;

pub(super) struct Validator {
    pub(super) file: String,
}

impl Validator {
    fn err(&self, field: impl Into<String>, message: impl Into<String>) -> ScenarioError {
        ScenarioError::Invalid {
            file: self.file.clone(),
            field: field.into(),
            message: message.into(),
        }
    }

    fn positive(&self, field: impl Into<String>, v: f64) -> Result<(), ScenarioError> {
        if v.is_finite() && v > 0.0 {
            Ok(())
        } else {
            Err(self.err(field, format!("must be a positive number, got {v}")))
        }
    }

    /// A span of simulated time: positive and at most [`MAX_DURATION_S`].
    fn duration(&self, field: &str, v: f64) -> Result<(), ScenarioError> {
        self.positive(field, v)?;
        if v > MAX_DURATION_S {
            return Err(self.err(
                field,
                format!("{v} s is longer than the longest run, {MAX_DURATION_S} s (a year)"),
            ));
        }
        Ok(())
    }

    /// The period of something that repeats: at least [`MIN_PERIOD_S`], at most
    /// [`MAX_DURATION_S`].
    fn period(&self, field: &str, v: f64) -> Result<(), ScenarioError> {
        self.duration(field, v)?;
        if v < MIN_PERIOD_S {
            return Err(self.err(
                field,
                format!("{v} s is shorter than the shortest period, {MIN_PERIOD_S} s"),
            ));
        }
        Ok(())
    }

    fn non_negative(&self, field: impl Into<String>, v: f64) -> Result<(), ScenarioError> {
        if v.is_finite() && v >= 0.0 {
            Ok(())
        } else {
            Err(self.err(field, format!("must be ≥ 0, got {v}")))
        }
    }

    fn probability(&self, field: impl Into<String>, v: f64) -> Result<(), ScenarioError> {
        if (0.0..=1.0).contains(&v) {
            Ok(())
        } else {
            Err(self.err(field, format!("must be in [0, 1], got {v}")))
        }
    }

    fn lookup(
        &self,
        names: &HashMap<&str, usize>,
        field: String,
        what: &str,
        name: &str,
    ) -> Result<usize, ScenarioError> {
        names.get(name).copied().ok_or_else(|| {
            let mut known: Vec<&&str> = names.keys().collect();
            known.sort();
            let known: Vec<&str> = known.into_iter().copied().collect();
            self.err(
                field,
                format!("unknown {what} \"{name}\" (known: {})", known.join(", ")),
            )
        })
    }

    fn index<'a>(
        &self,
        field: &str,
        names: impl Iterator<Item = &'a str>,
    ) -> Result<HashMap<&'a str, usize>, ScenarioError> {
        let mut map = HashMap::new();
        for (i, n) in names.enumerate() {
            if n.is_empty() {
                return Err(self.err(format!("{field}[{i}]"), "name must not be empty"));
            }
            if map.insert(n, i).is_some() {
                return Err(self.err(format!("{field}[{i}]"), format!("duplicate name \"{n}\"")));
            }
        }
        Ok(map)
    }

    fn dist(&self, field: String, d: &DistSpec) -> Result<(), ScenarioError> {
        match *d {
            DistSpec::Exponential { mean_ms } => self.positive(format!("{field}.mean_ms"), mean_ms),
            DistSpec::Deterministic { ms } => self.positive(format!("{field}.ms"), ms),
            DistSpec::Lognormal { mean_ms, cv } => {
                self.positive(format!("{field}.mean_ms"), mean_ms)?;
                self.positive(format!("{field}.cv"), cv)
            }
        }
    }

    fn rate(&self, field: String, r: &RateSpec) -> Result<(), ScenarioError> {
        match r {
            RateSpec::Constant { rps } => self.non_negative(format!("{field}.rps"), *rps),
            RateSpec::Diurnal {
                mean_rps,
                amplitude,
                period_s,
                phase_s,
            } => {
                self.non_negative(format!("{field}.mean_rps"), *mean_rps)?;
                self.probability(format!("{field}.amplitude"), *amplitude)?;
                self.positive(format!("{field}.period_s"), *period_s)?;
                self.non_negative(format!("{field}.phase_s"), *phase_s)
            }
            RateSpec::Mmpp {
                low_rps,
                high_rps,
                mean_low_s,
                mean_high_s,
            } => {
                self.non_negative(format!("{field}.low_rps"), *low_rps)?;
                self.non_negative(format!("{field}.high_rps"), *high_rps)?;
                self.positive(format!("{field}.mean_low_s"), *mean_low_s)?;
                self.positive(format!("{field}.mean_high_s"), *mean_high_s)
            }
            RateSpec::Step {
                before_rps,
                after_rps,
                at_s,
            } => {
                self.non_negative(format!("{field}.before_rps"), *before_rps)?;
                self.non_negative(format!("{field}.after_rps"), *after_rps)?;
                self.non_negative(format!("{field}.at_s"), *at_s)
            }
            RateSpec::Trace(t) => {
                if t.resolved.is_none() {
                    return Err(self.err(
                        field,
                        format!(
                            "the trace {:?} is read by hale-datasets: load this scenario \
                             with hale_datasets::load_scenario (the hale binary and the \
                             environments do)",
                            t.path
                        ),
                    ));
                }
                if t.offset != crate::scenario::TraceOffset::Start && t.duration_s.is_none() {
                    return Err(self.err(
                        format!("{field}.duration_s"),
                        "a window that moves from run to run (offset = random or tiled) \
                         needs its length, duration_s",
                    ));
                }
                let (step_s, rps, _) = r.as_series().expect("resolved");
                self.series(&field, step_s, rps)
            }
            RateSpec::Series { step_s, rps, .. } => self.series(&field, *step_s, rps),
        }
    }

    fn series(&self, field: &str, step_s: f64, rps: &[f64]) -> Result<(), ScenarioError> {
        self.positive(format!("{field}.step_s"), step_s)?;
        if rps.is_empty() {
            return Err(self.err(format!("{field}.rps"), "must not be empty"));
        }
        for (i, v) in rps.iter().enumerate() {
            self.non_negative(format!("{field}.rps[{i}]"), *v)?;
        }
        Ok(())
    }

    fn fault(&self, field: &str, f: &FaultSpec) -> Result<(), ScenarioError> {
        match f {
            FaultSpec::Crash | FaultSpec::Hang => Ok(()),
            FaultSpec::MemoryLeak { mib_per_s } => {
                self.positive(format!("{field}.mib_per_s"), *mib_per_s)
            }
            FaultSpec::Slow { factor } => {
                if factor.is_finite() && *factor >= 1.0 {
                    Ok(())
                } else {
                    Err(self.err(
                        format!("{field}.factor"),
                        format!("must be ≥ 1, got {factor}"),
                    ))
                }
            }
            FaultSpec::HostFailure { repair_s } => match repair_s {
                Some(r) => self.positive(format!("{field}.repair_s"), *r),
                None => Ok(()),
            },
            FaultSpec::ZoneOutage { duration_s } | FaultSpec::DependencyFailure { duration_s } => {
                self.positive(format!("{field}.duration_s"), *duration_s)
            }
            FaultSpec::BadDeploy { error_rate } => {
                self.probability(format!("{field}.error_rate"), *error_rate)
            }
        }
    }

    fn target(
        &self,
        field: String,
        fault: &FaultSpec,
        target: &str,
        services: &HashMap<&str, usize>,
        zones: &HashMap<&str, usize>,
        n_hosts: usize,
    ) -> Result<FaultTarget, ScenarioError> {
        match fault {
            FaultSpec::HostFailure { .. } => {
                if target == "any" {
                    Ok(FaultTarget::AnyHost)
                } else if let Some(&z) = zones.get(target) {
                    Ok(FaultTarget::Zone(z))
                } else if let Some(n) = target.strip_prefix("host-") {
                    match n.parse::<usize>() {
                        Ok(i) if i < n_hosts => Ok(FaultTarget::Host(i)),
                        _ => Err(self.err(
                            field,
                            format!(
                                "no initial host \"{target}\" (hosts are host-0 … host-{})",
                                n_hosts.saturating_sub(1)
                            ),
                        )),
                    }
                } else {
                    Err(self.err(
                        field,
                        format!(
                            "host failure target \"{target}\" is not `any`, a zone or `host-N`"
                        ),
                    ))
                }
            }
            FaultSpec::ZoneOutage { .. } => Ok(FaultTarget::Zone(
                self.lookup(zones, field, "zone", target)?,
            )),
            _ => Ok(FaultTarget::Service(
                self.lookup(services, field, "service", target)?,
            )),
        }
    }

    pub(super) fn resolve(&self, spec: ScenarioSpec) -> Result<Scenario, ScenarioError> {
        if spec.name.is_empty() {
            return Err(self.err("name", "must not be empty"));
        }
        let s = &spec.simulation;
        self.duration("simulation.duration_s", s.duration_s)?;
        self.period("simulation.scrape_interval_s", s.scrape_interval_s)?;
        self.non_negative("simulation.scrape_delay_s", s.scrape_delay_s)?;
        self.non_negative("simulation.metric_noise", s.metric_noise)?;
        self.period("simulation.probe_period_s", s.probe_period_s)?;
        self.period("simulation.fluid_tick_s", s.fluid_tick_s)?;
        self.non_negative("simulation.termination_grace_s", s.termination_grace_s)?;
        if s.probe_failure_threshold == 0 {
            return Err(self.err("simulation.probe_failure_threshold", "must be ≥ 1"));
        }
        self.non_negative(
            "cluster.provisioning_time_s",
            spec.cluster.provisioning_time_s,
        )?;
        if let Some(a) = &spec.cluster.autoscaler {
            self.period("cluster.autoscaler.scan_interval_s", a.scan_interval_s)?;
            self.probability(
                "cluster.autoscaler.utilization_threshold",
                a.utilization_threshold,
            )?;
            self.non_negative("cluster.autoscaler.unneeded_time_s", a.unneeded_time_s)?;
            self.non_negative("cluster.autoscaler.delay_after_add_s", a.delay_after_add_s)?;
        }
        if let Some(spot) = &spec.cluster.spot {
            self.period("cluster.spot.mean_lifetime_s", spot.mean_lifetime_s)?;
            self.non_negative("cluster.spot.notice_s", spot.notice_s)?;
        }

        if spec.zones.is_empty() {
            return Err(self.err("zones", "at least one zone is needed"));
        }
        let zones = self.index("zones", spec.zones.iter().map(String::as_str))?;
        if spec.host_types.is_empty() {
            return Err(self.err("host_types", "at least one host type is needed"));
        }
        let types = self.index(
            "host_types",
            spec.host_types.iter().map(|t| t.name.as_str()),
        )?;
        for (i, t) in spec.host_types.iter().enumerate() {
            self.positive(format!("host_types[{i}].cpu"), t.cpu)?;
            self.positive(format!("host_types[{i}].memory_mib"), t.memory_mib)?;
            self.non_negative(format!("host_types[{i}].price_per_hour"), t.price_per_hour)?;
        }
        let mut initial_hosts = Vec::new();
        for (i, g) in spec.hosts.iter().enumerate() {
            let z = self.lookup(&zones, format!("hosts[{i}].zone"), "zone", &g.zone)?;
            let t = self.lookup(
                &types,
                format!("hosts[{i}].type"),
                "host type",
                &g.host_type,
            )?;
            initial_hosts.extend(std::iter::repeat_n((z, t), g.count as usize));
        }
        if initial_hosts.len() > spec.cluster.max_hosts as usize {
            return Err(self.err(
                "cluster.max_hosts",
                format!(
                    "{} is fewer than the {} initial hosts",
                    spec.cluster.max_hosts,
                    initial_hosts.len()
                ),
            ));
        }
        let provision = match &spec.cluster.provision_type {
            None => None,
            Some(t) => {
                let t = self.lookup(&types, "cluster.provision_type".into(), "host type", t)?;
                let z = match &spec.cluster.provision_zone {
                    Some(z) => self.lookup(&zones, "cluster.provision_zone".into(), "zone", z)?,
                    None => 0,
                };
                Some((t, z))
            }
        };

        if spec.services.is_empty() {
            return Err(self.err("services", "at least one service is needed"));
        }
        if spec.services.len() > u16::MAX as usize {
            return Err(self.err("services", "too many services"));
        }
        let services = self.index("services", spec.services.iter().map(|s| s.name.as_str()))?;
        let workloads_n = spec.workload.len();
        let mut edges = Vec::new();
        let mut workload_service = Vec::new();
        if workloads_n == 0 {
            return Err(self.err("workload", "at least one workload is needed"));
        }
        for (i, w) in spec.workload.iter().enumerate() {
            let f = format!("workload[{i}]");
            let to = self.lookup(&services, format!("{f}.service"), "service", &w.service)?;
            self.rate(format!("{f}.rate"), &w.rate)?;
            self.positive(format!("{f}.timeout_ms"), w.timeout_ms)?;
            self.non_negative(format!("{f}.backoff_ms"), w.backoff_ms)?;
            self.non_negative(format!("{f}.backoff_max_ms"), w.backoff_max_ms)?;
            workload_service.push(to);
            edges.push(Edge {
                from: None,
                to,
                fanout: 1,
                timeout: SimTime::from_millis_f64(w.timeout_ms),
                retries: w.retries,
                backoff_s: w.backoff_ms / 1e3,
                backoff_max_s: w.backoff_max_ms / 1e3,
            });
        }
        let mut out_edges = vec![Vec::new(); spec.services.len()];
        for (i, sv) in spec.services.iter().enumerate() {
            let f = format!("services[{i}]");
            self.positive(format!("{f}.cpu"), sv.cpu)?;
            self.positive(format!("{f}.memory_mib"), sv.memory_mib)?;
            if let Some(l) = sv.memory_limit_mib
                && !(l.is_finite() && l >= sv.memory_mib)
            {
                return Err(self.err(
                    format!("{f}.memory_limit_mib"),
                    format!("must be ≥ memory_mib ({}), got {l}", sv.memory_mib),
                ));
            }
            if let Some(w) = sv.working_set_mib {
                let limit = sv.memory_limit();
                if !(w.is_finite() && w > 0.0 && w < limit) {
                    return Err(self.err(
                        format!("{f}.working_set_mib"),
                        format!(
                            "must be positive and below the memory limit ({limit} MiB, where every replica would be OOM-killed), got {w}"
                        ),
                    ));
                }
            }
            if sv.concurrency == 0 {
                return Err(self.err(format!("{f}.concurrency"), "must be ≥ 1"));
            }
            self.dist(format!("{f}.service_time"), &sv.service_time)?;
            self.probability(format!("{f}.error_rate"), sv.error_rate)?;
            self.non_negative(format!("{f}.boot_time_s"), sv.boot_time_s)?;
            self.non_negative(format!("{f}.restart_time_s"), sv.restart_time_s)?;
            self.non_negative(format!("{f}.rollback_time_s"), sv.rollback_time_s)?;
            self.non_negative(format!("{f}.resize_time_s"), sv.resize_time_s)?;
            for (j, c) in sv.calls.iter().enumerate() {
                let cf = format!("{f}.calls[{j}]");
                let to = self.lookup(&services, format!("{cf}.to"), "service", &c.to)?;
                if c.fanout == 0 {
                    return Err(self.err(format!("{cf}.fanout"), "must be ≥ 1"));
                }
                self.positive(format!("{cf}.timeout_ms"), c.timeout_ms)?;
                self.non_negative(format!("{cf}.backoff_ms"), c.backoff_ms)?;
                self.non_negative(format!("{cf}.backoff_max_ms"), c.backoff_max_ms)?;
                out_edges[i].push(edges.len());
                edges.push(Edge {
                    from: Some(i),
                    to,
                    fanout: c.fanout,
                    timeout: SimTime::from_millis_f64(c.timeout_ms),
                    retries: c.retries,
                    backoff_s: c.backoff_ms / 1e3,
                    backoff_max_s: c.backoff_max_ms / 1e3,
                });
            }
        }
        let topo_order = self.topological_order(&spec, &services)?;

        let mut slo_service = Vec::new();
        for (i, slo) in spec.slos.iter().enumerate() {
            let f = format!("slos[{i}]");
            slo_service.push(self.lookup(
                &services,
                format!("{f}.service"),
                "service",
                &slo.service,
            )?);
            if !(slo.percentile > 0.0 && slo.percentile < 100.0) {
                return Err(self.err(
                    format!("{f}.percentile"),
                    format!("must be in (0, 100), got {}", slo.percentile),
                ));
            }
            self.positive(format!("{f}.latency_ms"), slo.latency_ms)?;
            self.probability(format!("{f}.max_error_rate"), slo.max_error_rate)?;
        }

        let mut scheduled_targets = Vec::new();
        for (i, sf) in spec.faults.schedule.iter().enumerate() {
            let f = format!("faults.schedule[{i}]");
            self.non_negative(format!("{f}.at_s"), sf.at_s)?;
            self.fault(&format!("{f}.fault"), &sf.fault)?;
            scheduled_targets.push(self.target(
                format!("{f}.target"),
                &sf.fault,
                &sf.target,
                &services,
                &zones,
                initial_hosts.len(),
            )?);
        }
        let mut process_targets = Vec::new();
        for (i, p) in spec.faults.mtbf.iter().enumerate() {
            let f = format!("faults.mtbf[{i}]");
            self.fault(&format!("{f}.fault"), &p.fault)?;
            match p.every {
                IntervalSpec::Exponential { mean_s } => {
                    self.positive(format!("{f}.every.mean_s"), mean_s)?
                }
                IntervalSpec::Weibull { shape, scale_s } => {
                    self.positive(format!("{f}.every.shape"), shape)?;
                    self.positive(format!("{f}.every.scale_s"), scale_s)?;
                }
            }
            process_targets.push(self.target(
                format!("{f}.target"),
                &p.fault,
                &p.target,
                &services,
                &zones,
                initial_hosts.len(),
            )?);
        }

        let mut scenario = Scenario {
            security: None,
            origin: self.file.clone(),
            initial_hosts,
            edges,
            out_edges,
            topo_order,
            workload_service,
            slo_service,
            scheduled_targets,
            process_targets,
            provision,
            spec,
        };
        let model = match &scenario.spec.security {
            Some(sec) => Some(self.security(sec, &scenario)?),
            None => None,
        };
        scenario.security = model;
        Ok(scenario)
    }

    fn security(&self, sec: &SecuritySpec, sc: &Scenario) -> Result<SecurityModel, ScenarioError> {
        let n = sc.spec.services.len();
        let services = &self.index("services", sc.spec.services.iter().map(|s| s.name.as_str()))?;
        self.period("security.attack_interval_s", sec.attack_interval_s)?;
        for (field, p) in [
            ("security.exploitability", sec.exploitability),
            ("security.escalation", sec.escalation),
            ("security.login_success", sec.login_success),
            ("security.detect_exploit", sec.detect_exploit),
            ("security.detect_escalation", sec.detect_escalation),
            ("security.detect_login", sec.detect_login),
            ("security.impact_error_rate", sec.impact_error_rate),
            ("security.host_escape", sec.host_escape),
        ] {
            self.probability(field, p)?;
        }
        for (field, v) in [
            ("security.detect_delay_s", sec.detect_delay_s),
            ("security.false_alerts_per_hour", sec.false_alerts_per_hour),
            ("security.auth_noise_per_min", sec.auth_noise_per_min),
            ("security.exfil_mb_per_s", sec.exfil_mb_per_s),
            ("security.analyse_s", sec.analyse_s),
        ] {
            self.non_negative(field, v)?;
        }
        self.positive("security.source_change_s", sec.source_change_s)?;
        if !(sec.mining_slowdown.is_finite() && sec.mining_slowdown >= 1.0) {
            return Err(self.err(
                "security.mining_slowdown",
                format!(
                    "must be ≥ 1 (a service-time factor), got {}",
                    sec.mining_slowdown
                ),
            ));
        }
        let mut entry = Vec::new();
        for (i, name) in sec.entry.iter().enumerate() {
            entry.push(self.lookup(services, format!("security.entry[{i}]"), "service", name)?);
        }
        if entry.is_empty() {
            entry = sc.workload_service.clone();
            entry.sort_unstable();
            entry.dedup();
        }
        let mut data = vec![false; n];
        for (i, name) in sec.data.iter().enumerate() {
            data[self.lookup(services, format!("security.data[{i}]"), "service", name)?] = true;
        }
        if sec.data.is_empty() {
            return Err(self.err(
                "security.data",
                "name the data tier (the services whose compromise is impact)",
            ));
        }
        let mut exploitability = vec![sec.exploitability; n];
        let mut privilege = vec![Privilege::User; n];
        let mut escalation = vec![sec.escalation; n];
        for (i, o) in sec.services.iter().enumerate() {
            let f = format!("security.services[{i}]");
            let s = self.lookup(services, format!("{f}.name"), "service", &o.name)?;
            if let Some(p) = o.exploitability {
                self.probability(format!("{f}.exploitability"), p)?;
                exploitability[s] = p;
            }
            if let Some(p) = o.escalation {
                self.probability(format!("{f}.escalation"), p)?;
                escalation[s] = p;
            }
            if let Some(p) = o.privilege {
                if p == Privilege::None {
                    return Err(self.err(
                        format!("{f}.privilege"),
                        "an exploit gives \"user\" or \"root\"",
                    ));
                }
                privilege[s] = p;
            }
        }
        // Callees before callers: each service is one call further than its nearest
        // callee on the way to the data tier.
        let mut hops_to_data = vec![u32::MAX; n];
        for &s in sc.topo_order.iter().rev() {
            hops_to_data[s] = if data[s] {
                0
            } else {
                sc.out_edges[s]
                    .iter()
                    .map(|&e| hops_to_data[sc.edges[e].to])
                    .min()
                    .map_or(u32::MAX, |h| h.saturating_add(1))
            };
        }
        Ok(SecurityModel {
            entry,
            data,
            exploitability,
            privilege,
            escalation,
            hops_to_data,
        })
    }

    /// Callers before callees; a cycle is an error that names the call closing it.
    fn topological_order(
        &self,
        spec: &ScenarioSpec,
        services: &HashMap<&str, usize>,
    ) -> Result<Vec<usize>, ScenarioError> {
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            New,
            Open,
            Done,
        }
        let n = spec.services.len();
        let mut mark = vec![Mark::New; n];
        let mut post = Vec::with_capacity(n);
        // Iterative depth-first search; the stack holds (service, next call index).
        for root in 0..n {
            if mark[root] != Mark::New {
                continue;
            }
            let mut stack = vec![(root, 0usize)];
            mark[root] = Mark::Open;
            while let Some(&mut (s, ref mut next)) = stack.last_mut() {
                if let Some(call) = spec.services[s].calls.get(*next) {
                    let j = *next;
                    *next += 1;
                    let t = services[call.to.as_str()];
                    match mark[t] {
                        Mark::New => {
                            mark[t] = Mark::Open;
                            stack.push((t, 0));
                        }
                        Mark::Open => {
                            let start = stack.iter().position(|&(x, _)| x == t).unwrap_or(0);
                            let mut path: Vec<&str> = stack[start..]
                                .iter()
                                .map(|&(x, _)| spec.services[x].name.as_str())
                                .collect();
                            path.push(&spec.services[t].name);
                            return Err(self.err(
                                format!("services[{s}].calls[{j}].to"),
                                format!("dependency cycle: {}", path.join(" → ")),
                            ));
                        }
                        Mark::Done => {}
                    }
                } else {
                    mark[s] = Mark::Done;
                    post.push(s);
                    stack.pop();
                }
            }
        }
        post.reverse();
        Ok(post)
    }
}
