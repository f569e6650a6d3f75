//! The Kubernetes target, through kube-rs: a Deployment per service. Scaling patches
//! the Deployment's scale subresource; a restart deletes one of its pods (its
//! ReplicaSet makes a new one); a cordon marks a node unschedulable; a drain cordons
//! it and evicts its pods through the Eviction API (so PodDisruptionBudgets hold), as
//! `kubectl drain` does, leaving DaemonSet and mirror pods; a roll back puts the
//! template of the Deployment's previous ReplicaSet back, as `kubectl rollout undo`
//! does. A resize sets the CPU requests (and limits, in proportion) of the
//! Deployment's pod template, as the Vertical Pod Autoscaler's updater in `Recreate`
//! mode does: the Deployment replaces its pods by its own rolling-update strategy. The
//! request before the first resize is kept in the Deployment's `hale.dev/base-cpu-millicores`
//! annotation, so a policy's levels stay factors of what was deployed.
//!
//! Against intruders: an isolation labels one pod [`ISOLATED`], and a NetworkPolicy
//! of the namespace ([`ISOLATION_POLICY`], created at the first isolation) selects
//! the pods with that label and allows them no traffic in or out; a release removes
//! the label. The policy is only an object in the API: a network plugin that
//! enforces NetworkPolicies (Calico, Cilium, …) does the cutting. The pod stays in its
//! Service's endpoints (its kubelet's probes are not network traffic), so what is
//! sent to it fails, as in the simulator. A rotation bumps the pod template's
//! [`CREDENTIALS_VERSION`]: the Deployment replaces its pods one after another by its
//! rolling-update strategy, and they start with the version of the secret that the
//! cluster's secret manager rotated.
//!
//! kube-rs is async; the target blocks on each call through [`Blocking`], with a
//! timeout, so the decision loop stays synchronous.

use crate::action::{Action, CREDENTIALS_VERSION, ISOLATED, ISOLATION_POLICY};
use crate::observe::Replicas;
use crate::target::{
    BASE_CPU, BeforeWrite, Blocking, CpuRequest, NodeState, ReplicaState, Target, TargetError,
    TargetState, retry_on_conflict, share_cpu,
};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::networking::v1::{NetworkPolicy, NetworkPolicySpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use kube::api::{Api, DeleteParams, EvictParams, ListParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// The label a ReplicaSet's controller adds to its pod template; not part of the
/// Deployment's own template.
const POD_TEMPLATE_HASH: &str = "pod-template-hash";
/// The annotation holding a ReplicaSet's revision within its Deployment.
const REVISION: &str = "deployment.kubernetes.io/revision";

/// Deployments in one namespace, reached through a kubeconfig.
pub struct Kubernetes {
    api: Blocking,
    client: kube::Client,
    namespace: String,
    deployments: Vec<String>,
    before_write: BeforeWrite,
}

impl Kubernetes {
    /// Connects with a kubeconfig file (its current context, or `context`); the
    /// deployments are the services, in the env's order. Nothing is sent until the
    /// first call.
    pub fn connect(
        kubeconfig: &Path,
        context: Option<&str>,
        namespace: &str,
        deployments: &[String],
        timeout: Duration,
    ) -> Result<Kubernetes, TargetError> {
        let api = Blocking::new("kubernetes", timeout)?;
        let unreadable = |e: &dyn std::fmt::Display| {
            api.unreachable(format!("kubeconfig {}: {e}", kubeconfig.display()))
        };
        let file = Kubeconfig::read_from(kubeconfig).map_err(|e| unreadable(&e))?;
        let options = KubeConfigOptions {
            context: context.map(str::to_string),
            ..KubeConfigOptions::default()
        };
        let config = api.runtime().block_on(async {
            kube::Config::from_custom_kubeconfig(file, &options)
                .await
                .map_err(|e| unreadable(&e))
        })?;
        Kubernetes::with_config(api, config, namespace, deployments, timeout)
    }

    /// Connects from inside a pod: the API server from `KUBERNETES_SERVICE_HOST` and
    /// `_PORT`, the pod's service account token and CA (what `adapter/deploy/
    /// kubernetes` runs with).
    pub fn in_cluster(
        namespace: &str,
        deployments: &[String],
        timeout: Duration,
    ) -> Result<Kubernetes, TargetError> {
        let api = Blocking::new("kubernetes", timeout)?;
        let config = kube::Config::incluster()
            .map_err(|e| api.unreachable(format!("in-cluster config: {e}")))?;
        Kubernetes::with_config(api, config, namespace, deployments, timeout)
    }

    fn with_config(
        api: Blocking,
        mut config: kube::Config,
        namespace: &str,
        deployments: &[String],
        timeout: Duration,
    ) -> Result<Kubernetes, TargetError> {
        // Each call as a whole is bounded by `Blocking`.
        config.connect_timeout = Some(timeout);
        let client = api.runtime().block_on(async {
            kube::Client::try_from(config).map_err(|e| api.unreachable(e.to_string()))
        })?;
        Ok(Kubernetes {
            api,
            client,
            namespace: namespace.to_string(),
            deployments: deployments.to_vec(),
            before_write: BeforeWrite::default(),
        })
    }

    /// Runs one API call to completion, or gives up after the timeout.
    fn block<T>(
        &self,
        what: &str,
        call: impl std::future::Future<Output = Result<T, kube::Error>>,
    ) -> Result<T, TargetError> {
        self.api.call(what, call, |e| match e {
            kube::Error::Api(status) => Some((status.code, status.message.clone())),
            _ => None,
        })
    }

    fn deployments(&self) -> Api<Deployment> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    fn pods(&self) -> Api<Pod> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    /// The label selector of a Deployment (`k=v,…`), which its pods and ReplicaSets
    /// carry.
    fn selector(&self, deployment: &Deployment) -> Result<String, TargetError> {
        let labels = deployment
            .spec
            .as_ref()
            .and_then(|s| s.selector.match_labels.as_ref())
            .filter(|m| !m.is_empty())
            .ok_or_else(|| TargetError::Refused {
                target: "kubernetes".into(),
                action: "read".into(),
                reason: format!(
                    "deployment {} has no matchLabels selector",
                    name_of(deployment)
                ),
            })?;
        Ok(labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(","))
    }

    fn deployment(&self, name: &str) -> Result<Deployment, TargetError> {
        self.block(
            &format!("deployment {}/{name}", self.namespace),
            self.deployments().get(name),
        )
    }

    fn scale(&self, name: &str, replicas: u32) -> Result<(), TargetError> {
        let patch = serde_json::json!({ "spec": { "replicas": replicas } });
        self.block(
            &format!("scale deployment {}/{name}", self.namespace),
            self.deployments()
                .patch_scale(name, &PatchParams::default(), &Patch::Merge(&patch)),
        )?;
        Ok(())
    }

    /// Checks that `pod` is one of deployment `service`'s: a policy's action on
    /// service A never touches a pod of B.
    fn check_pod_of(&self, verb: &str, service: &str, pod: &str) -> Result<(), TargetError> {
        let deployment = self.deployment(service)?;
        let selector = self.selector(&deployment)?;
        let what = format!("pod {}/{pod}", self.namespace);
        let found = self.block(&what, self.pods().get(pod))?;
        let labels = found.metadata.labels.unwrap_or_default();
        let belongs = selector.split(',').all(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            labels.get(k).is_some_and(|l| l == v)
        });
        if belongs {
            Ok(())
        } else {
            Err(TargetError::Refused {
                target: "kubernetes".into(),
                action: format!("{verb} {what}"),
                reason: format!("the pod is not one of deployment {service}'s ({selector})"),
            })
        }
    }

    fn restart(&self, service: &str, pod: &str) -> Result<(), TargetError> {
        self.check_pod_of("restart", service, pod)?;
        self.block(
            &format!("delete pod {}/{pod}", self.namespace),
            self.pods().delete(pod, &DeleteParams::default()),
        )?;
        Ok(())
    }

    fn network_policies(&self) -> Api<NetworkPolicy> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    /// The namespace's deny-all policy for isolated pods, created if absent (another
    /// writer creating it first is as good).
    fn ensure_isolation_policy(&self) -> Result<(), TargetError> {
        let what = format!("networkpolicy {}/{ISOLATION_POLICY}", self.namespace);
        if self
            .block(&what, self.network_policies().get_opt(ISOLATION_POLICY))?
            .is_some()
        {
            return Ok(());
        }
        let policy = NetworkPolicy {
            metadata: ObjectMeta {
                name: Some(ISOLATION_POLICY.into()),
                labels: Some(BTreeMap::from([(
                    "app.kubernetes.io/managed-by".to_string(),
                    "hale".to_string(),
                )])),
                ..ObjectMeta::default()
            },
            spec: Some(NetworkPolicySpec {
                pod_selector: Some(LabelSelector {
                    match_labels: Some(BTreeMap::from([(
                        ISOLATED.to_string(),
                        "true".to_string(),
                    )])),
                    ..LabelSelector::default()
                }),
                policy_types: Some(vec!["Ingress".into(), "Egress".into()]),
                ingress: Some(vec![]),
                egress: Some(vec![]),
            }),
        };
        match self.block(
            &format!("create {what}"),
            self.network_policies()
                .create(&PostParams::default(), &policy),
        ) {
            Err(TargetError::Conflict { .. }) | Ok(_) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Labels the pod isolated (`on`), or removes the label.
    fn isolate(&self, service: &str, pod: &str, on: bool) -> Result<(), TargetError> {
        let verb = if on { "isolate" } else { "release" };
        self.check_pod_of(verb, service, pod)?;
        if on {
            self.ensure_isolation_policy()?;
        }
        let value = if on {
            serde_json::Value::from("true")
        } else {
            serde_json::Value::Null
        };
        let patch = serde_json::json!({ "metadata": { "labels": { ISOLATED: value } } });
        self.block(
            &format!("{verb} pod {}/{pod}", self.namespace),
            self.pods()
                .patch(pod, &PatchParams::default(), &Patch::Merge(&patch)),
        )?;
        Ok(())
    }

    /// Bumps the pod template's credentials version (read, changed and replaced at
    /// the version read, as [`Kubernetes::resize`] is).
    fn rotate(&self, name: &str) -> Result<(), TargetError> {
        let action = format!("rotate deployment {}/{name}'s credentials", self.namespace);
        retry_on_conflict(|| {
            let mut deployment = self.deployment(name)?;
            let annotations = deployment
                .spec
                .as_mut()
                .map(|s| s.template.metadata.get_or_insert_default())
                .ok_or_else(|| TargetError::Refused {
                    target: "kubernetes".into(),
                    action: action.clone(),
                    reason: "the deployment has no pod template".into(),
                })?
                .annotations
                .get_or_insert_default();
            let version = annotations
                .get(CREDENTIALS_VERSION)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
            annotations.insert(CREDENTIALS_VERSION.into(), (version + 1).to_string());
            self.replace(&action, name, &deployment)
        })
    }

    fn cordon(&self, node: &str) -> Result<(), TargetError> {
        let nodes: Api<Node> = Api::all(self.client.clone());
        self.block(&format!("cordon node {node}"), nodes.cordon(node))?;
        Ok(())
    }

    /// The Deployment's ReplicaSets with their revisions, newest first.
    fn revisions(&self, deployment: &Deployment) -> Result<Vec<(u64, ReplicaSet)>, TargetError> {
        let uid = deployment.metadata.uid.clone().unwrap_or_default();
        let selector = self.selector(deployment)?;
        let sets: Api<ReplicaSet> = Api::namespaced(self.client.clone(), &self.namespace);
        let list = self.block(
            &format!("replica sets of {}/{}", self.namespace, name_of(deployment)),
            sets.list(&ListParams::default().labels(&selector)),
        )?;
        let mut owned: Vec<(u64, ReplicaSet)> = list
            .items
            .into_iter()
            .filter(|rs| {
                rs.metadata
                    .owner_references
                    .iter()
                    .flatten()
                    .any(|o| o.uid == uid)
            })
            .filter_map(|rs| {
                let revision = rs
                    .metadata
                    .annotations
                    .as_ref()?
                    .get(REVISION)?
                    .parse()
                    .ok()?;
                Some((revision, rs))
            })
            .collect();
        owned.sort_by_key(|(r, _)| std::cmp::Reverse(*r));
        Ok(owned)
    }

    /// Cordons the node, then evicts each of its pods (all namespaces) except
    /// DaemonSet and mirror pods. An eviction a PodDisruptionBudget refuses (429)
    /// stops the drain, naming the pod; the node stays cordoned.
    fn drain(&self, node: &str) -> Result<(), TargetError> {
        self.cordon(node)?;
        let all: Api<Pod> = Api::all(self.client.clone());
        let pods = self.block(
            &format!("pods on node {node}"),
            all.list(&ListParams::default().fields(&format!("spec.nodeName={node}"))),
        )?;
        for pod in pods.items {
            let name = pod.metadata.name.clone().unwrap_or_default();
            let namespace = pod.metadata.namespace.clone().unwrap_or_default();
            let daemon = pod
                .metadata
                .owner_references
                .iter()
                .flatten()
                .any(|o| o.kind == "DaemonSet");
            let mirror = pod
                .metadata
                .annotations
                .as_ref()
                .is_some_and(|a| a.contains_key("kubernetes.io/config.mirror"));
            if daemon || mirror || pod.metadata.deletion_timestamp.is_some() {
                continue;
            }
            let pods: Api<Pod> = Api::namespaced(self.client.clone(), &namespace);
            self.block(
                &format!("evict pod {namespace}/{name} from node {node}"),
                pods.evict(&name, &EvictParams::default()),
            )?;
        }
        Ok(())
    }

    /// Puts the previous revision's template back. The Deployment is read, changed
    /// and replaced with the resourceVersion it was read at, so a write by anyone
    /// else in between (the Deployment controller's status updates bump the version
    /// too) is refused with 409 rather than overwritten; then the whole
    /// read-modify-write is tried again ([`retry_on_conflict`]).
    fn rollback(&self, name: &str) -> Result<(), TargetError> {
        let action = format!("roll back deployment {}/{name}", self.namespace);
        let refused = |reason: String| TargetError::Refused {
            target: "kubernetes".into(),
            action: action.clone(),
            reason,
        };
        retry_on_conflict(|| {
            let mut deployment = self.deployment(name)?;
            let owned = self.revisions(&deployment)?;
            let Some((revision, previous)) = owned.into_iter().nth(1) else {
                return Err(refused("it has no previous revision".into()));
            };
            let mut template = previous
                .spec
                .and_then(|s| s.template)
                .ok_or_else(|| refused(format!("revision {revision} has no pod template")))?;
            if let Some(labels) = template.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
                labels.remove(POD_TEMPLATE_HASH);
            }
            let spec = deployment
                .spec
                .as_mut()
                .ok_or_else(|| refused("the deployment has no spec".into()))?;
            spec.template = template;
            self.replace(&action, name, &deployment)
        })
    }

    /// Sets the CPU request per pod of the Deployment's template to `millicores`,
    /// shared over its containers in proportion to what they request now; a
    /// container's CPU limit moves by its request's factor (never below the request).
    /// The first resize records the request it found ([`BASE_CPU`]). Read, changed
    /// and replaced at the version read, as [`Kubernetes::rollback`] is.
    fn resize(&self, name: &str, millicores: u32) -> Result<(), TargetError> {
        let action = format!("resize deployment {}/{name}", self.namespace);
        let refused = |reason: String| TargetError::Refused {
            target: "kubernetes".into(),
            action: action.clone(),
            reason,
        };
        retry_on_conflict(|| {
            let mut deployment = self.deployment(name)?;
            let Some(now) = cpu_request(&deployment) else {
                return Err(refused(
                    "its pod template requests no CPU: there is nothing to size".into(),
                ));
            };
            deployment
                .metadata
                .annotations
                .get_or_insert_default()
                .entry(BASE_CPU.to_string())
                .or_insert_with(|| now.base_millicores.to_string());
            let containers = &mut deployment
                .spec
                .as_mut()
                .and_then(|s| s.template.spec.as_mut())
                .ok_or_else(|| refused("the deployment has no pod template".into()))?
                .containers;
            let requesting: Vec<usize> = (0..containers.len())
                .filter(|&i| container_cpu(&containers[i]).is_some())
                .collect();
            let each: Vec<u32> = requesting
                .iter()
                .map(|&i| container_cpu(&containers[i]).unwrap_or(0))
                .collect();
            for (&i, (&old, new)) in requesting
                .iter()
                .zip(each.iter().zip(share_cpu(&each, millicores)))
            {
                let resources = containers[i].resources.get_or_insert_default();
                resources
                    .requests
                    .get_or_insert_default()
                    .insert("cpu".into(), millis(new));
                if let Some(limit) = resources.limits.as_mut().and_then(|l| l.get_mut("cpu"))
                    && let Some(cores) = quantity(limit)
                {
                    let scaled = (cores * 1000.0 * f64::from(new) / f64::from(old.max(1))).round();
                    *limit = millis((scaled as u32).max(new));
                }
            }
            self.replace(&action, name, &deployment)
        })
    }

    /// The write of a read-modify-write: the Deployment as changed, at the
    /// resourceVersion read (another writer since makes it a conflict).
    fn replace(
        &self,
        action: &str,
        name: &str,
        deployment: &Deployment,
    ) -> Result<(), TargetError> {
        self.before_write.call(action);
        self.block(
            action,
            self.deployments()
                .replace(name, &PostParams::default(), deployment),
        )?;
        Ok(())
    }

    /// Calls `hook` with the action's description between the read and the write of
    /// every read-modify-write ([`BeforeWrite`]).
    pub fn set_before_write(&mut self, hook: impl FnMut(&str) + Send + 'static) {
        self.before_write.set(hook);
    }
}

fn name_of(d: &Deployment) -> &str {
    d.metadata.name.as_deref().unwrap_or("?")
}

/// A CPU quantity of `m` millicores.
fn millis(m: u32) -> k8s_openapi::apimachinery::pkg::api::resource::Quantity {
    k8s_openapi::apimachinery::pkg::api::resource::Quantity(format!("{m}m"))
}

/// A container's CPU request, millicores, if it sets a readable one.
fn container_cpu(c: &k8s_openapi::api::core::v1::Container) -> Option<u32> {
    let cores = quantity(c.resources.as_ref()?.requests.as_ref()?.get("cpu")?)?;
    Some((cores * 1000.0).round() as u32)
}

/// The CPU request per pod of a Deployment's template, with its recorded base;
/// None where no container requests CPU.
fn cpu_request(d: &Deployment) -> Option<CpuRequest> {
    let containers = &d.spec.as_ref()?.template.spec.as_ref()?.containers;
    let total: u32 = containers.iter().filter_map(container_cpu).sum();
    (total > 0).then(|| {
        CpuRequest::read(
            total,
            d.metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(BASE_CPU)),
        )
    })
}

fn pod_state(pod: &Pod) -> ReplicaState {
    let status = pod.status.as_ref();
    let ready = status
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    let restarts = status
        .and_then(|s| s.container_statuses.as_ref())
        .map_or(0, |cs| {
            cs.iter()
                .map(|c| u32::try_from(c.restart_count).unwrap_or(0))
                .sum()
        });
    // A container that ended, or waits to be started again after a crash, makes a
    // running pod a crashed replica.
    let crashed = status
        .and_then(|s| s.container_statuses.as_ref())
        .is_some_and(|cs| {
            cs.iter().any(|c| {
                let state = c.state.as_ref();
                state.is_some_and(|st| st.terminated.is_some())
                    || state
                        .and_then(|st| st.waiting.as_ref())
                        .and_then(|w| w.reason.as_deref())
                        .is_some_and(|r| {
                            matches!(r, "CrashLoopBackOff" | "Error" | "RunContainerError")
                        })
            })
        });
    let phase = if pod.metadata.deletion_timestamp.is_some() {
        "terminating".to_string()
    } else if crashed && status.and_then(|s| s.phase.as_deref()) == Some("Running") {
        "crashed".to_string()
    } else {
        status
            .and_then(|s| s.phase.clone())
            .unwrap_or_else(|| "Unknown".into())
            .to_lowercase()
    };
    ReplicaState {
        name: pod.metadata.name.clone().unwrap_or_default(),
        node: pod.spec.as_ref().and_then(|s| s.node_name.clone()),
        phase,
        ready,
        restarts,
        isolated: pod
            .metadata
            .labels
            .as_ref()
            .is_some_and(|l| l.get(ISOLATED).is_some_and(|v| v == "true")),
    }
}

/// The number in a Kubernetes quantity: `2`, `0.5`, `250m` (milli), `512Mi`, `1Gi`
/// (binary suffixes), `1G`, `500k` (decimal ones), `1e3`.
fn quantity(q: &k8s_openapi::apimachinery::pkg::api::resource::Quantity) -> Option<f64> {
    let s = q.0.trim();
    const SUFFIXES: [(&str, f64); 13] = [
        ("Ki", 1024.0),
        ("Mi", 1048576.0),
        ("Gi", 1073741824.0),
        ("Ti", 1099511627776.0),
        ("Pi", 1125899906842624.0),
        ("Ei", 1152921504606846976.0),
        ("m", 1e-3),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
        ("P", 1e15),
        ("E", 1e18),
    ];
    for (suffix, factor) in SUFFIXES {
        if let Some(n) = s.strip_suffix(suffix) {
            return n.parse::<f64>().ok().map(|n| n * factor);
        }
    }
    s.parse().ok()
}

/// What a pod's containers request of `resource` (`cpu`: cores, `memory`: bytes).
fn requested(pod: &Pod, resource: &str) -> f64 {
    pod.spec
        .as_ref()
        .map(|s| {
            s.containers
                .iter()
                .filter_map(|c| c.resources.as_ref()?.requests.as_ref()?.get(resource))
                .filter_map(quantity)
                .sum()
        })
        .unwrap_or(0.0)
}

fn node_state(node: &Node, requested: &BTreeMap<String, (f64, f64)>) -> NodeState {
    let name = node.metadata.name.clone().unwrap_or_default();
    let allocatable = |resource: &str| {
        node.status
            .as_ref()
            .and_then(|s| s.allocatable.as_ref())
            .and_then(|a| a.get(resource))
            .and_then(quantity)
            .filter(|&c| c > 0.0)
    };
    let (cores, bytes) = requested.get(&name).copied().unwrap_or_default();
    NodeState {
        cpu_allocation: allocatable("cpu").map(|c| cores / c),
        memory_allocation: allocatable("memory").map(|b| bytes / b),
        zone: node
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("topology.kubernetes.io/zone"))
            .cloned(),
        name,
        ready: node
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True")),
        schedulable: !node
            .spec
            .as_ref()
            .and_then(|s| s.unschedulable)
            .unwrap_or(false),
    }
}

impl Target for Kubernetes {
    fn name(&self) -> &str {
        "kubernetes"
    }

    fn state(&mut self) -> Result<TargetState, TargetError> {
        let mut services = BTreeMap::new();
        let mut replicas = BTreeMap::new();
        let mut rollback_possible = BTreeMap::new();
        let mut cpu = BTreeMap::new();
        // Cores and bytes requested per node by the listed Deployments' running pods.
        let mut requested: BTreeMap<String, (f64, f64)> = BTreeMap::new();
        for name in &self.deployments {
            let d = self.deployment(name)?;
            let status = d.status.clone().unwrap_or_default();
            let ready = u32::try_from(status.ready_replicas.unwrap_or(0)).unwrap_or(0);
            let total = u32::try_from(status.replicas.unwrap_or(0)).unwrap_or(0);
            let desired = d
                .spec
                .as_ref()
                .and_then(|s| s.replicas)
                .map_or(1, |r| u32::try_from(r).unwrap_or(0));
            let key = format!("{}/{name}", self.namespace);
            services.insert(
                key.clone(),
                Replicas {
                    ready,
                    booting: total.saturating_sub(ready),
                    desired,
                },
            );
            let selector = self.selector(&d)?;
            let pods = self.block(
                &format!("pods of {key}"),
                self.pods().list(&ListParams::default().labels(&selector)),
            )?;
            for pod in &pods.items {
                let running =
                    pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running");
                if let (Some(node), true) =
                    (pod.spec.as_ref().and_then(|s| s.node_name.clone()), running)
                {
                    let r = requested.entry(node).or_default();
                    r.0 += self::requested(pod, "cpu");
                    r.1 += self::requested(pod, "memory");
                }
            }
            rollback_possible.insert(key.clone(), self.revisions(&d)?.len() > 1);
            if let Some(request) = cpu_request(&d) {
                cpu.insert(key.clone(), request);
            }
            let mut states: Vec<ReplicaState> = pods.items.iter().map(pod_state).collect();
            states.sort_by(|a, b| a.name.cmp(&b.name));
            replicas.insert(key, states);
        }
        let nodes: Api<Node> = Api::all(self.client.clone());
        let mut nodes: Vec<NodeState> = self
            .block("nodes", nodes.list(&ListParams::default()))?
            .items
            .iter()
            .map(|n| node_state(n, &requested))
            .collect();
        nodes.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(TargetState {
            services,
            replicas,
            nodes,
            rollback_possible,
            cpu,
        })
    }

    fn apply(&mut self, action: &Action) -> Result<(), TargetError> {
        let namespace_matches = |ns: &str| {
            if ns == self.namespace {
                Ok(())
            } else {
                Err(TargetError::Refused {
                    target: "kubernetes".into(),
                    action: action.to_string(),
                    reason: format!("this target manages namespace {}", self.namespace),
                })
            }
        };
        match action {
            Action::Noop => Ok(()),
            Action::Scale {
                namespace,
                service,
                replicas,
            } => {
                namespace_matches(namespace)?;
                self.scale(service, *replicas)
            }
            Action::Restart {
                namespace,
                service,
                replica,
            } => {
                namespace_matches(namespace)?;
                self.restart(service, replica)
            }
            Action::Cordon { node } => self.cordon(node),
            Action::Drain { node } => self.drain(node),
            Action::Resize {
                namespace,
                service,
                millicores,
            } => {
                namespace_matches(namespace)?;
                self.resize(service, *millicores)
            }
            Action::Rollback { namespace, service } => {
                namespace_matches(namespace)?;
                self.rollback(service)
            }
            Action::Isolate { .. } | Action::Release { .. } => {
                let (namespace, service, replica, on) =
                    action.isolation().expect("an isolation or a release");
                namespace_matches(namespace)?;
                self.isolate(service, replica, on)
            }
            Action::Rotate { namespace, service } => {
                namespace_matches(namespace)?;
                self.rotate(service)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::quantity;
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

    #[test]
    fn quantities_read_with_their_suffixes() {
        let q = |s: &str| quantity(&Quantity(s.into()));
        assert_eq!(q("2"), Some(2.0));
        assert_eq!(q("250m"), Some(0.25));
        assert_eq!(q("512Mi"), Some(512.0 * 1024.0 * 1024.0));
        assert_eq!(q("1Gi"), Some(1024.0 * 1024.0 * 1024.0));
        assert_eq!(q("500k"), Some(5e5));
        assert_eq!(q("1e3"), Some(1e3));
        assert_eq!(q("lots"), None);
    }
}
