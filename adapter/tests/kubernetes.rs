//! The Kubernetes target against a real control plane on loopback (etcd,
//! kube-apiserver and kube-controller-manager 1.20.2, started by
//! `../shared/infra/kube-up.sh`), with a stand-in kubelet that binds pods to two fake
//! nodes and marks them running. Each action (scale, restart, isolate and release,
//! rotate, cordon, drain through evictions, roll back, resize) is checked by reading
//! the API afterwards (an isolation's NetworkPolicy is read back; nothing enforces it,
//! as the control plane has no network plugin); the decision loop
//! scales a Deployment from Prometheus readings; a Deployment that vanishes makes the
//! adapter hold until it is back.
//!
//! Needs the control-plane binaries (`HALE_KUBE_BIN`, a folder with kube-apiserver and
//! kube-controller-manager; `.ci/run` unpacks them from ../shared/infra) and etcd on the
//! PATH. Without them the test says it skips; in CI (`CI` set) that is a failure.
//! The API-fault tests at the end need nothing: a stand-in API answers 500 or never.

use hale_adapter::action::{Action, CREDENTIALS_VERSION, ISOLATED, ISOLATION_POLICY};
use hale_adapter::config::AdapterConfig;
use hale_adapter::kubernetes::Kubernetes;
use hale_adapter::report::{Outcome, Resolution};
use hale_adapter::run::Adapter;
use hale_adapter::target::{Target, TargetError};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

mod common;

const NODES: [&str; 2] = ["node-a", "node-b"];

/// The control plane's processes; killed when dropped.
struct ControlPlane {
    state: tempfile::TempDir,
    kubeconfig: PathBuf,
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        for pid in ["kcm", "apiserver", "etcd"] {
            if let Ok(p) = std::fs::read_to_string(self.state.path().join(format!("{pid}.pid"))) {
                let _ = Command::new("kill").arg(p.trim()).status();
            }
        }
    }
}

fn infra() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/infra")
}

fn control_plane() -> Option<ControlPlane> {
    let bin = std::env::var_os("HALE_KUBE_BIN").map(PathBuf::from);
    let etcd = Command::new("etcd").arg("--version").output().is_ok();
    let script = infra().join("kube-up.sh");
    let missing = match &bin {
        None => Some("HALE_KUBE_BIN is not set".to_string()),
        Some(b) if !b.join("kube-apiserver").exists() => {
            Some(format!("{} has no kube-apiserver", b.display()))
        }
        _ if !etcd => Some("etcd is not on the PATH".into()),
        _ if !script.exists() => Some(format!("{} is absent", script.display())),
        _ => None,
    };
    if let Some(why) = missing {
        assert!(
            std::env::var_os("CI").is_none(),
            "{why} (.ci/run installs etcd-server and unpacks the control plane)"
        );
        eprintln!("skipping the Kubernetes end-to-end test: {why}");
        return None;
    }
    let state = tempfile::tempdir().unwrap();
    let out = Command::new("timeout")
        .arg("120")
        .arg("bash")
        .arg(&script)
        .arg(bin.unwrap())
        .arg(state.path())
        .output()
        .unwrap();
    let plane = ControlPlane {
        kubeconfig: state.path().join("kubeconfig"),
        state,
    };
    assert!(
        out.status.success(),
        "kube-up.sh failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Some(plane)
}

fn client(rt: &tokio::runtime::Runtime, kubeconfig: &Path) -> kube::Client {
    rt.block_on(async {
        let file = kube::config::Kubeconfig::read_from(kubeconfig).unwrap();
        let cfg = kube::Config::from_custom_kubeconfig(file, &Default::default())
            .await
            .unwrap();
        kube::Client::try_from(cfg).unwrap()
    })
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn now() -> String {
    // RFC 3339 in UTC from the system clock, without a date crate.
    let out = Command::new("date")
        .args(["-u", "+%Y-%m-%dT%H:%M:%SZ"])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// What a kubelet would do, minimally: keep two nodes Ready, bind each pending pod to
/// a schedulable node (round robin), mark bound pods Running and Ready, and finish
/// deleting pods that are terminating. Runs until `stop`.
fn stand_in_kubelet(kubeconfig: PathBuf, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let rt = runtime();
        let client = client(&rt, &kubeconfig);
        let nodes: Api<Node> = Api::all(client.clone());
        let pods: Api<Pod> = Api::namespaced(client, "default");
        let mut turn = 0usize;
        while !stop.load(Ordering::Relaxed) {
            rt.block_on(async {
                let t = now();
                for n in NODES {
                    let node: Node =
                        serde_json::from_value(serde_json::json!({"metadata": {"name": n}}))
                            .unwrap();
                    let _ = nodes.create(&PostParams::default(), &node).await;
                    let ready = serde_json::json!({"status": {"conditions": [{
                        "type": "Ready", "status": "True", "reason": "StandIn",
                        "lastHeartbeatTime": t, "lastTransitionTime": t}]}});
                    let _ = nodes
                        .patch_status(n, &PatchParams::default(), &Patch::Merge(&ready))
                        .await;
                }
                let schedulable: Vec<String> = match nodes.list(&ListParams::default()).await {
                    Ok(l) => l
                        .items
                        .into_iter()
                        .filter(|n| !n.spec.as_ref().and_then(|s| s.unschedulable).unwrap_or(false))
                        .filter_map(|n| n.metadata.name)
                        .collect(),
                    Err(_) => return,
                };
                let Ok(list) = pods.list(&ListParams::default()).await else {
                    return;
                };
                for p in list.items {
                    let name = p.metadata.name.clone().unwrap();
                    if p.metadata.deletion_timestamp.is_some() {
                        let _ = pods
                            .delete(&name, &DeleteParams::default().grace_period(0))
                            .await;
                        continue;
                    }
                    let bound = p.spec.as_ref().and_then(|s| s.node_name.clone());
                    if bound.is_none() {
                        if schedulable.is_empty() {
                            continue;
                        }
                        let node = &schedulable[turn % schedulable.len()];
                        turn += 1;
                        let binding = serde_json::json!({
                            "apiVersion": "v1", "kind": "Binding",
                            "metadata": {"name": name},
                            "target": {"kind": "Node", "name": node}});
                        let r: Result<serde_json::Value, _> = pods
                            .create_subresource("binding", &name, &PostParams::default(), &binding)
                            .await;
                        if r.is_err() {
                            continue;
                        }
                    }
                    let running = p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running");
                    if !running {
                        let status = serde_json::json!({"status": {
                            "phase": "Running", "podIP": "127.0.0.2", "startTime": t,
                            "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": t}]}});
                        let _ = pods
                            .patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
                            .await;
                    }
                }
            });
            std::thread::sleep(Duration::from_millis(100));
        }
    })
}

fn deployment(name: &str, image: &str, replicas: i32) -> Deployment {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": image}]}
            }
        }
    }))
    .unwrap()
}

/// Polls `check` until it holds, or fails naming `what` after 30 s.
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A hook for [`Kubernetes::set_before_write`]: at the first write, which must be
/// `action` ("VERB deployment default/NAME"), another writer patches that
/// Deployment with `patch`. The other writer has a runtime and a client of its own:
/// the test's runtime is not driven while the adapter's call blocks.
fn other_writer(
    kubeconfig: &Path,
    action: &'static str,
    patch: Patch<serde_json::Value>,
) -> impl FnMut(&str) + Send + 'static {
    let kubeconfig = kubeconfig.to_path_buf();
    let name = action.rsplit('/').next().unwrap().to_string();
    let mut writes = 0;
    move |seen| {
        writes += 1;
        if writes == 1 {
            assert_eq!(seen, action);
            let rt = runtime();
            let other: Api<Deployment> = Api::namespaced(client(&rt, &kubeconfig), "default");
            let params = PatchParams::default();
            let patched = other.patch(&name, &params, &patch);
            rt.block_on(async { tokio::time::timeout(Duration::from_secs(30), patched).await })
                .expect("the other writer's patch answers within 30 s")
                .unwrap();
        }
    }
}

fn image_of(d: &Deployment) -> String {
    d.spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap()
        .containers[0]
        .image
        .clone()
        .unwrap()
}

fn adapter_config(kubeconfig: &Path, prometheus: &str, audit: &Path) -> AdapterConfig {
    let text = format!(
        r#"
policy = "hpa"
env = "Scaling-v0"
mode = "auto"
audit_log = "{}"

[env_config]
scenario = "three-tier"
action = "target"
control_interval_s = 15.0

[target]
kind = "kubernetes"
kubeconfig = "{}"
deployments = ["front", "api", "db"]

[guardrails]
max_step = 1
max_replicas = 5
cooldown_s = 0

[observation]
prometheus = "{prometheus}"
{queries}"#,
        audit.display(),
        kubeconfig.display(),
        queries = common::QUERIES,
    );
    let path = audit.with_extension("toml");
    std::fs::write(&path, text).unwrap();
    AdapterConfig::load(&path).unwrap()
}

/// One control plane at a time: kube-up.sh binds fixed ports.
static ONE_PLANE: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn scale_restart_cordon_drain_and_roll_back_on_a_real_control_plane() {
    let _one = ONE_PLANE.lock().unwrap_or_else(|p| p.into_inner());
    let Some(plane) = control_plane() else {
        return;
    };
    let stop = Arc::new(AtomicBool::new(false));
    let kubelet = stand_in_kubelet(plane.kubeconfig.clone(), stop.clone());
    let rt = runtime();
    let client = client(&rt, &plane.kubeconfig);
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let nodes: Api<Node> = Api::all(client.clone());
    let sets: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
    for name in ["web", "front", "db"] {
        rt.block_on(deployments.create(&PostParams::default(), &deployment(name, "demo:v1", 2)))
            .unwrap();
    }
    let mut k8s = Kubernetes::connect(
        &plane.kubeconfig,
        None,
        "default",
        &["web".to_string()],
        Duration::from_secs(5),
    )
    .unwrap();
    eventually("web's 2 pods ready", || {
        k8s.state().unwrap().services["default/web"].ready == 2
    });
    let state = k8s.state().unwrap();
    assert_eq!(state.replicas["default/web"].len(), 2);
    assert!(
        state.replicas["default/web"]
            .iter()
            .all(|r| r.phase == "running" && r.ready)
    );
    assert_eq!(
        state
            .nodes
            .iter()
            .map(|n| n.name.as_str())
            .collect::<Vec<_>>(),
        NODES
    );

    // Scale: the Deployment's desired replicas, then 4 pods.
    k8s.apply(&Action::Scale {
        namespace: "default".into(),
        service: "web".into(),
        replicas: 4,
    })
    .unwrap();
    let d = rt.block_on(deployments.get("web")).unwrap();
    assert_eq!(d.spec.unwrap().replicas, Some(4));
    eventually("4 web pods ready", || {
        k8s.state().unwrap().services["default/web"].ready == 4
    });

    // Restart: the pod goes, the ReplicaSet makes another.
    let victim = k8s.state().unwrap().replicas["default/web"][0].name.clone();
    k8s.apply(&Action::Restart {
        namespace: "default".into(),
        service: "web".into(),
        replica: victim.clone(),
    })
    .unwrap();
    eventually("the restarted pod replaced", || {
        let names: Vec<String> = rt
            .block_on(pods.list(&ListParams::default().labels("app=web")))
            .unwrap()
            .items
            .into_iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .filter_map(|p| p.metadata.name)
            .collect();
        names.len() == 4 && !names.contains(&victim)
    });
    // A pod of another Deployment is not web's to restart.
    let other = rt
        .block_on(pods.list(&ListParams::default().labels("app=front")))
        .unwrap()
        .items[0]
        .metadata
        .name
        .clone()
        .unwrap();
    let err = k8s
        .apply(&Action::Restart {
            namespace: "default".into(),
            service: "web".into(),
            replica: other.clone(),
        })
        .unwrap_err();
    assert!(matches!(err, TargetError::Refused { .. }), "{err}");
    assert!(
        rt.block_on(pods.get(&other))
            .unwrap()
            .metadata
            .deletion_timestamp
            .is_none()
    );

    // Isolate: the pod is labelled, and the namespace's deny-all NetworkPolicy selects
    // it (read back from the API). This control plane has no network plugin, so
    // nothing enforces the policy here: enforcement is the plugin's (Calico, Cilium).
    // A running, ready pod: the target also lists the restarted pod while it
    // terminates, and isolating a pod that is gone is rightly NotFound.
    let suspect = k8s.state().unwrap().replicas["default/web"]
        .iter()
        .find(|r| r.running() && r.ready && r.name != victim)
        .expect("web has ready pods")
        .name
        .clone();
    let isolate = Action::Isolate {
        namespace: "default".into(),
        service: "web".into(),
        replica: suspect.clone(),
    };
    k8s.apply(&isolate).unwrap();
    let policies: Api<NetworkPolicy> = Api::namespaced(client.clone(), "default");
    let policy = rt.block_on(policies.get(ISOLATION_POLICY)).unwrap();
    let spec = policy.spec.unwrap();
    assert_eq!(
        spec.pod_selector.unwrap().match_labels.unwrap()[ISOLATED],
        "true"
    );
    assert_eq!(spec.policy_types.unwrap(), ["Ingress", "Egress"]);
    // No rule in either direction: nothing is allowed (the API leaves out empty lists).
    assert!(spec.ingress.unwrap_or_default().is_empty());
    assert!(spec.egress.unwrap_or_default().is_empty());
    let labels = rt
        .block_on(pods.get(&suspect))
        .unwrap()
        .metadata
        .labels
        .unwrap();
    assert_eq!(labels[ISOLATED], "true");
    let reported = k8s.state().unwrap().replicas["default/web"].clone();
    assert!(reported.iter().any(|r| r.name == suspect && r.isolated));
    // A second isolation reuses the policy (created once, even if it exists).
    k8s.apply(&isolate).unwrap();
    // Release: the label goes; the pod serves again.
    k8s.apply(&Action::Release {
        namespace: "default".into(),
        service: "web".into(),
        replica: suspect.clone(),
    })
    .unwrap();
    let labels = rt
        .block_on(pods.get(&suspect))
        .unwrap()
        .metadata
        .labels
        .unwrap();
    assert!(!labels.contains_key(ISOLATED));
    assert!(
        !k8s.state().unwrap().replicas["default/web"]
            .iter()
            .any(|r| r.isolated)
    );
    // Another deployment's pod is not web's to isolate.
    let err = k8s
        .apply(&Action::Isolate {
            namespace: "default".into(),
            service: "web".into(),
            replica: other.clone(),
        })
        .unwrap_err();
    assert!(matches!(err, TargetError::Refused { .. }), "{err}");

    // Rotate (db, so that web's and front's revisions stay as the roll backs below expect):
    // the pod template's credentials version goes up by one, a rollout replaces the
    // pods, and they carry the new version.
    let version = |d: &Deployment| {
        d.spec
            .as_ref()
            .unwrap()
            .template
            .metadata
            .as_ref()
            .and_then(|m| {
                m.annotations
                    .as_ref()
                    .and_then(|a| a.get(CREDENTIALS_VERSION).cloned())
            })
    };
    let rotate = Action::Rotate {
        namespace: "default".into(),
        service: "db".into(),
    };
    k8s.apply(&rotate).unwrap();
    let d = rt.block_on(deployments.get("db")).unwrap();
    assert_eq!(version(&d).as_deref(), Some("1"));
    k8s.apply(&rotate).unwrap();
    let d = rt.block_on(deployments.get("db")).unwrap();
    assert_eq!(version(&d).as_deref(), Some("2"));
    eventually("db's pods replaced with credentials version 2", || {
        let live: Vec<Pod> = rt
            .block_on(pods.list(&ListParams::default().labels("app=db")))
            .unwrap()
            .items
            .into_iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .collect();
        live.len() == 2
            && live.iter().all(|p| {
                p.metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(CREDENTIALS_VERSION))
                    .is_some_and(|v| v == "2")
            })
    });

    // Cordon: the node is unschedulable, as the API says and the target reports.
    k8s.apply(&Action::Cordon {
        node: "node-b".into(),
    })
    .unwrap();
    let node = rt.block_on(nodes.get("node-b")).unwrap();
    assert_eq!(node.spec.unwrap().unschedulable, Some(true));
    let reported = k8s.state().unwrap().nodes;
    assert!(
        reported
            .iter()
            .any(|n| n.name == "node-b" && !n.schedulable)
    );
    assert!(reported.iter().any(|n| n.name == "node-a" && n.schedulable));

    // Roll back: a bad rollout (demo:v2) is undone to v1's template; a new revision.
    let bump = serde_json::json!({"spec": {"template": {"spec": {"containers": [
        {"name": "app", "image": "demo:v2"}]}}}});
    rt.block_on(deployments.patch("web", &PatchParams::default(), &Patch::Strategic(&bump)))
        .unwrap();
    eventually("revision 2's replica set", || {
        rt.block_on(sets.list(&ListParams::default().labels("app=web")))
            .unwrap()
            .items
            .len()
            == 2
    });
    k8s.apply(&Action::Rollback {
        namespace: "default".into(),
        service: "web".into(),
    })
    .unwrap();
    let d = rt.block_on(deployments.get("web")).unwrap();
    assert_eq!(image_of(&d), "demo:v1");
    let labels = d.spec.unwrap().template.metadata.unwrap().labels.unwrap();
    assert_eq!(
        labels.len(),
        1,
        "the pod-template-hash label is not copied: {labels:?}"
    );
    // The pods of a Deployment (by its app label) that are not being deleted.
    let live_pods = |app: &str| -> Vec<Pod> {
        rt.block_on(pods.list(&ListParams::default().labels(&format!("app={app}"))))
            .unwrap()
            .items
            .into_iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .collect()
    };
    eventually("web's pods all on demo:v1 again", || {
        let live = live_pods("web");
        live.len() == 4
            && live
                .iter()
                .all(|p| p.spec.as_ref().unwrap().containers[0].image.as_deref() == Some("demo:v1"))
    });
    // Another writer between the adapter's read and its write (issue 15: the
    // Deployment controller's status updates did this at random in CI): the replace
    // gets 409, the adapter reads again and replaces, and the other writer's change
    // is kept. A Deployment of its own ("other", one replica), so that web's pods,
    // which the drain below counts, are not in the middle of a rollout.
    rt.block_on(deployments.create(&PostParams::default(), &deployment("other", "demo:v1", 1)))
        .unwrap();
    let revision = |name: &str| {
        rt.block_on(deployments.get(name))
            .unwrap()
            .metadata
            .annotations
            .and_then(|a| a.get("deployment.kubernetes.io/revision").cloned())
    };
    eventually("other at revision 1", || {
        revision("other").as_deref() == Some("1")
    });
    rt.block_on(deployments.patch("other", &PatchParams::default(), &Patch::Strategic(&bump)))
        .unwrap();
    eventually("other at revision 2", || {
        revision("other").as_deref() == Some("2")
    });
    let note = serde_json::json!({"metadata": {"annotations": {"writer": "other"}}});
    k8s.set_before_write(other_writer(
        &plane.kubeconfig,
        "roll back deployment default/other",
        Patch::Merge(note),
    ));
    k8s.apply(&Action::Rollback {
        namespace: "default".into(),
        service: "other".into(),
    })
    .unwrap();
    k8s.set_before_write(|_| {});
    let d = rt.block_on(deployments.get("other")).unwrap();
    assert_eq!(image_of(&d), "demo:v1");
    assert_eq!(
        d.metadata
            .annotations
            .unwrap()
            .get("writer")
            .map(String::as_str),
        Some("other"),
        "the other writer's change is kept"
    );

    // A Deployment with a single revision has nothing to roll back to.
    let err = k8s
        .apply(&Action::Rollback {
            namespace: "default".into(),
            service: "front".into(),
        })
        .unwrap_err();
    assert!(err.to_string().contains("no previous revision"), "{err}");

    // Resize: the CPU request per pod of "sized" (300m + 200m, the first container
    // limited to 600m) set to 250m, shared in proportion, the limit moved by the same
    // factor, the base recorded; another writer changes the image between the read
    // and the write, and both changes hold. Then up to 1000m, still from the base.
    let mut sized_deployment = deployment("sized", "demo:v1", 2);
    let template = sized_deployment
        .spec
        .as_mut()
        .unwrap()
        .template
        .spec
        .as_mut()
        .unwrap();
    template.containers[0].resources = Some(
        serde_json::from_value(
            serde_json::json!({"requests": {"cpu": "300m"}, "limits": {"cpu": "600m"}}),
        )
        .unwrap(),
    );
    let mut sidecar = template.containers[0].clone();
    sidecar.name = "sidecar".into();
    sidecar.resources =
        Some(serde_json::from_value(serde_json::json!({"requests": {"cpu": "0.2"}})).unwrap());
    template.containers.push(sidecar);
    rt.block_on(deployments.create(&PostParams::default(), &sized_deployment))
        .unwrap();
    let mut sized = Kubernetes::connect(
        &plane.kubeconfig,
        None,
        "default",
        &["sized".to_string(), "front".to_string()],
        Duration::from_secs(5),
    )
    .unwrap();
    let cpu = |k: &mut Kubernetes| k.state().unwrap().cpu;
    let before = cpu(&mut sized);
    assert_eq!(
        (
            before["default/sized"].millicores,
            before["default/sized"].base_millicores
        ),
        (500, 500)
    );
    assert!(
        !before.contains_key("default/front"),
        "front requests no CPU"
    );
    let image = serde_json::json!({"spec": {"template": {"spec": {"containers": [
        {"name": "app", "image": "demo:v2"}]}}}});
    sized.set_before_write(other_writer(
        &plane.kubeconfig,
        "resize deployment default/sized",
        Patch::Strategic(image),
    ));
    let resize = |k: &mut Kubernetes, service: &str, millicores| {
        k.apply(&Action::Resize {
            namespace: "default".into(),
            service: service.into(),
            millicores,
        })
    };
    resize(&mut sized, "sized", 250).unwrap();
    sized.set_before_write(|_| {});
    let requests = |d: &Deployment| -> Vec<(String, Option<String>)> {
        d.spec
            .as_ref()
            .unwrap()
            .template
            .spec
            .as_ref()
            .unwrap()
            .containers
            .iter()
            .map(|c| {
                let r = c.resources.as_ref().unwrap();
                (
                    r.requests.as_ref().unwrap()["cpu"].0.clone(),
                    r.limits.as_ref().map(|l| l["cpu"].0.clone()),
                )
            })
            .collect()
    };
    let d = rt.block_on(deployments.get("sized")).unwrap();
    assert_eq!(image_of(&d), "demo:v2", "the other writer's change is kept");
    assert_eq!(
        requests(&d),
        [("150m".into(), Some("300m".into())), ("100m".into(), None)]
    );
    assert_eq!(
        d.metadata.annotations.as_ref().unwrap()[hale_adapter::target::BASE_CPU],
        "500"
    );
    let after = cpu(&mut sized)["default/sized"];
    assert_eq!((after.millicores, after.base_millicores), (250, 500));
    resize(&mut sized, "sized", 1000).unwrap();
    let d = rt.block_on(deployments.get("sized")).unwrap();
    assert_eq!(
        requests(&d),
        [("600m".into(), Some("1200m".into())), ("400m".into(), None)]
    );
    let after = cpu(&mut sized)["default/sized"];
    assert_eq!((after.millicores, after.base_millicores), (1000, 500));
    // The Deployment rolls its pods over to the new requests.
    eventually("sized's pods all at 600m + 400m", || {
        let live = live_pods("sized");
        live.len() == 2
            && live.iter().all(|p| {
                p.spec.as_ref().unwrap().containers[0]
                    .resources
                    .as_ref()
                    .and_then(|r| r.requests.as_ref())
                    .is_some_and(|r| r["cpu"].0 == "600m")
            })
    });
    // A Deployment whose pods request no CPU has nothing to size.
    let err = resize(&mut sized, "front", 100).unwrap_err();
    assert!(err.to_string().contains("requests no CPU"), "{err}");

    // Drain: with node-b schedulable again, draining node-a cordons it and evicts its
    // pods through the Eviction API; their replacements all land on node-b.
    rt.block_on(nodes.patch(
        "node-b",
        &PatchParams::default(),
        &Patch::Merge(&serde_json::json!({"spec": {"unschedulable": false}})),
    ))
    .unwrap();
    let on_a = |items: &[Pod]| {
        items
            .iter()
            .filter(|p| p.spec.as_ref().unwrap().node_name.as_deref() == Some("node-a"))
            .count()
    };
    let web_pods = || {
        rt.block_on(pods.list(&ListParams::default().labels("app=web")))
            .unwrap()
            .items
    };
    assert!(on_a(&web_pods()) > 0, "web runs on node-a before the drain");
    k8s.apply(&Action::Drain {
        node: "node-a".into(),
    })
    .unwrap();
    let node = rt.block_on(nodes.get("node-a")).unwrap();
    assert_eq!(node.spec.unwrap().unschedulable, Some(true));
    eventually("web's pods moved off node-a", || {
        let items = web_pods();
        on_a(&items) == 0
            && items.len() == 4
            && items
                .iter()
                .all(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
    });
    let state = k8s.state().unwrap();
    assert!(
        state.replicas["default/web"]
            .iter()
            .all(|r| r.node.as_deref() == Some("node-b") && r.running()),
        "{:?}",
        state.replicas["default/web"]
    );
    rt.block_on(nodes.patch(
        "node-a",
        &PatchParams::default(),
        &Patch::Merge(&serde_json::json!({"spec": {"unschedulable": false}})),
    ))
    .unwrap();

    // The decision loop: Scaling-v0's HPA under high CPU scales each Deployment up
    // one step (the guardrail's max_step); "api" does not exist yet, so the adapter
    // holds, naming it, and acts once it is created.
    let tmp = tempfile::tempdir().unwrap();
    let (url, answers) = common::stand_in();
    let unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    common::serve_readings(&answers, &["front", "api", "db"], 0.95, unix - 1.0);
    let cfg = adapter_config(&plane.kubeconfig, &url, &tmp.path().join("audit.jsonl"));
    let mut adapter = Adapter::new(&cfg).unwrap();
    match adapter.step(unix, 0.0).unwrap() {
        Outcome::Hold { reasons, .. } => {
            assert!(
                reasons.join(" ").contains("deployment default/api"),
                "{reasons:?}"
            )
        }
        other => panic!("expected a hold while api is missing, got {other:?}"),
    }
    rt.block_on(deployments.create(&PostParams::default(), &deployment("api", "demo:v1", 2)))
        .unwrap();
    // The HPA counts ready replicas (as Kubernetes' does): wait for api's.
    let mut api = Kubernetes::connect(
        &plane.kubeconfig,
        None,
        "default",
        &["api".to_string()],
        Duration::from_secs(5),
    )
    .unwrap();
    eventually("api's 2 pods ready", || {
        api.state().unwrap().services["default/api"].ready == 2
    });
    match adapter.step(unix, 1.0).unwrap() {
        Outcome::Decided { decisions } => {
            assert_eq!(decisions.len(), 3, "{decisions:?}");
            assert!(
                decisions.iter().all(|d| d.result == Resolution::Applied),
                "{decisions:?}"
            );
        }
        other => panic!("expected decisions once api exists, got {other:?}"),
    }
    for name in ["front", "api", "db"] {
        let d = rt.block_on(deployments.get(name)).unwrap();
        assert_eq!(d.spec.unwrap().replicas, Some(3), "{name}");
    }

    stop.store(true, Ordering::Relaxed);
    kubelet.join().unwrap();
    drop(plane);
}

/// A kubeconfig for a plain-HTTP API at `url`.
fn kubeconfig_for(dir: &Path, url: &str) -> PathBuf {
    let path = dir.join("kubeconfig");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\nclusters: [{{name: c, cluster: {{server: \"{url}\"}}}}]\n\
             users: [{{name: u, user: {{token: t}}}}]\n\
             contexts: [{{name: x, context: {{cluster: c, user: u}}}}]\ncurrent-context: x\n"
        ),
    )
    .unwrap();
    path
}

/// An API that answers every request with HTTP 500, or (with `silent`) accepts
/// connections and never answers.
fn broken_api(silent: bool) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            if silent {
                held.push(stream);
                continue;
            }
            use std::io::{Read, Write};
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let body = r#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"etcd is down","code":500}"#;
            let _ = write!(
                stream,
                "HTTP/1.1 500 Internal Server Error\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    url
}

#[test]
fn an_api_answering_500_or_nothing_is_unreachable_and_nothing_is_applied() {
    let tmp = tempfile::tempdir().unwrap();
    for silent in [false, true] {
        let url = broken_api(silent);
        let mut k8s = Kubernetes::connect(
            &kubeconfig_for(tmp.path(), &url),
            None,
            "default",
            &["web".to_string()],
            Duration::from_millis(500),
        )
        .unwrap();
        let start = Instant::now();
        let err = k8s.state().unwrap_err();
        assert!(matches!(err, TargetError::Unreachable { .. }), "{err}");
        let text = err.to_string();
        if silent {
            assert!(text.contains("no answer within"), "{text}");
            assert!(start.elapsed() < Duration::from_secs(3));
        } else {
            assert!(
                text.contains("HTTP 500") && text.contains("etcd is down"),
                "{text}"
            );
        }
        let err = k8s
            .apply(&Action::Scale {
                namespace: "default".into(),
                service: "web".into(),
                replicas: 3,
            })
            .unwrap_err();
        assert!(matches!(err, TargetError::Unreachable { .. }), "{err}");
    }
}

#[test]
fn a_kubeconfig_that_is_not_there_is_named() {
    let err = match Kubernetes::connect(
        Path::new("/nonexistent/kubeconfig"),
        None,
        "default",
        &[],
        Duration::from_secs(1),
    ) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("connected without a kubeconfig"),
    };
    assert!(err.contains("/nonexistent/kubeconfig"), "{err}");
}

/// The objects of a manifest in `adapter/deploy/kubernetes`.
fn manifest(file: &str) -> Vec<serde_json::Value> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy/kubernetes")
        .join(file);
    serde_saphyr::from_multiple(&std::fs::read_to_string(&path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Creates each object, as `kubectl create -f` would.
fn create_all(rt: &tokio::runtime::Runtime, client: &kube::Client, objects: &[serde_json::Value]) {
    use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
    for o in objects {
        let (group, version) = match o["apiVersion"].as_str().unwrap().split_once('/') {
            Some((g, v)) => (g, v),
            None => ("", o["apiVersion"].as_str().unwrap()),
        };
        let kind = o["kind"].as_str().unwrap();
        let resource = ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, kind));
        let object: DynamicObject = serde_json::from_value(o.clone()).unwrap();
        let api: Api<DynamicObject> = match o["metadata"]["namespace"].as_str() {
            Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
            None => Api::all_with(client.clone(), &resource),
        };
        rt.block_on(api.create(&PostParams::default(), &object))
            .unwrap_or_else(|e| panic!("{kind} {}: {e}", o["metadata"]["name"]));
    }
}

/// The admin's kubeconfig acting as the adapter's service account (impersonation:
/// every request is authorised as that account, by RBAC).
fn as_adapter(plane: &ControlPlane) -> PathBuf {
    let mut config = kube::config::Kubeconfig::read_from(&plane.kubeconfig).unwrap();
    for user in &mut config.auth_infos {
        if let Some(auth) = user.auth_info.as_mut() {
            auth.impersonate = Some("system:serviceaccount:hale-system:hale-adapter".into());
        }
    }
    let path = plane.state.path().join("adapter-kubeconfig");
    // JSON is YAML: the kubeconfig reader takes it.
    std::fs::write(&path, serde_json::to_string(&config).unwrap()).unwrap();
    path
}

/// Issue 21: the adapter's manifests (`adapter/deploy/kubernetes`) apply to a real API
/// server, and its service account can do what the adapter does to the Deployments it
/// runs and nothing else: other Deployments, other namespaces, Secrets and node
/// writes are refused (403) until `rbac-drain.yaml` grants cordons. The pod itself
/// cannot run here (no container runtime): its Deployment is read back.
#[test]
fn deploy_manifests_apply_and_the_adapter_account_is_refused_outside_its_grants() {
    let _one = ONE_PLANE.lock().unwrap_or_else(|p| p.into_inner());
    let Some(plane) = control_plane() else {
        return;
    };
    let rt = runtime();
    let admin = client(&rt, &plane.kubeconfig);
    create_all(
        &rt,
        &admin,
        &[
            serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}),
        ],
    );
    let shop: Api<Deployment> = Api::namespaced(admin.clone(), "shop");
    for name in ["front", "api", "db", "other"] {
        rt.block_on(shop.create(&PostParams::default(), &deployment(name, "demo:v1", 1)))
            .unwrap();
    }
    let nodes: Api<Node> = Api::all(admin.clone());
    let node: Node =
        serde_json::from_value(serde_json::json!({"metadata": {"name": "node-a"}})).unwrap();
    rt.block_on(nodes.create(&PostParams::default(), &node))
        .unwrap();
    create_all(&rt, &admin, &manifest("adapter.yaml"));
    create_all(&rt, &admin, &manifest("rbac.yaml"));

    let adapter: Api<Deployment> = Api::namespaced(admin.clone(), "hale-system");
    let d = rt.block_on(adapter.get("hale-adapter")).unwrap();
    let pod = d.spec.unwrap().template.spec.unwrap();
    assert_eq!(pod.service_account_name.as_deref(), Some("hale-adapter"));
    assert_eq!(
        pod.security_context.and_then(|c| c.run_as_non_root),
        Some(true)
    );

    let kubeconfig = as_adapter(&plane);
    let connect = |namespace: &str, deployments: &[&str]| {
        Kubernetes::connect(
            &kubeconfig,
            None,
            namespace,
            &deployments
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>(),
            Duration::from_secs(5),
        )
        .unwrap()
    };
    let forbidden = |what: &str, r: Result<(), TargetError>| {
        let e = r.expect_err(what).to_string();
        assert!(e.contains("403") || e.contains("forbidden"), "{what}: {e}");
    };
    // Within its grants: read everything the loop reads, scale, restart.
    let mut k8s = connect("shop", &["front", "api", "db"]);
    let state = k8s.state().unwrap();
    assert_eq!(state.services.len(), 3);
    assert_eq!(state.nodes.len(), 1);
    k8s.apply(&Action::Scale {
        namespace: "shop".into(),
        service: "front".into(),
        replicas: 2,
    })
    .unwrap();
    let replicas = || {
        rt.block_on(shop.get("front"))
            .unwrap()
            .spec
            .unwrap()
            .replicas
    };
    assert_eq!(replicas(), Some(2));
    let pods: Api<Pod> = Api::namespaced(admin.clone(), "shop");
    let mut pod = None;
    eventually("the controller makes front's pods", || {
        pod = rt
            .block_on(pods.list(&ListParams::default().labels("app=front")))
            .unwrap()
            .items
            .first()
            .and_then(|p| p.metadata.name.clone());
        pod.is_some()
    });
    k8s.apply(&Action::Restart {
        namespace: "shop".into(),
        service: "front".into(),
        replica: pod.unwrap(),
    })
    .unwrap();

    // Outside them: another Deployment, another namespace, Secrets, node writes.
    forbidden(
        "another deployment",
        connect("shop", &["other"]).state().map(drop),
    );
    forbidden(
        "scaling another deployment",
        connect("shop", &["other"]).apply(&Action::Scale {
            namespace: "shop".into(),
            service: "other".into(),
            replicas: 3,
        }),
    );
    forbidden(
        "another namespace",
        connect("default", &["front"]).state().map(drop),
    );
    let as_adapter_client = client(&rt, &kubeconfig);
    let secrets: Api<k8s_openapi::api::core::v1::Secret> =
        Api::namespaced(as_adapter_client, "shop");
    let e = rt
        .block_on(secrets.list(&ListParams::default()))
        .unwrap_err();
    assert!(e.to_string().contains("forbidden"), "{e}");
    let cordon = Action::Cordon {
        node: "node-a".into(),
    };
    forbidden("cordon without rbac-drain.yaml", k8s.apply(&cordon));
    create_all(&rt, &admin, &manifest("rbac-drain.yaml"));
    // RBAC reads its bindings through an informer: a grant lands within moments.
    eventually("cordon allowed by rbac-drain.yaml", || {
        k8s.apply(&cordon).is_ok()
    });
    let unschedulable = rt
        .block_on(nodes.get("node-a"))
        .unwrap()
        .spec
        .unwrap()
        .unschedulable;
    assert_eq!(unschedulable, Some(true));
}
