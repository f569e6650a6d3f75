//! What the adapter can do to a target, in the target's own names.

use serde::{Deserialize, Serialize};

/// One operation on the infrastructure.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Action {
    /// Nothing.
    Noop,
    /// Set a service's desired replicas.
    Scale {
        /// Namespace (Kubernetes) or stack (Docker); empty where the target has none.
        namespace: String,
        /// Deployment or service name.
        service: String,
        /// Desired replicas.
        replicas: u32,
    },
    /// Restart one replica (delete the pod; restart the task).
    Restart {
        /// Namespace.
        namespace: String,
        /// The service it belongs to.
        service: String,
        /// Pod or task name.
        replica: String,
    },
    /// Stop placing work on a node (cordon; Docker: pause).
    Cordon {
        /// Node name.
        node: String,
    },
    /// Stop placing work on a node and move its replicas elsewhere (Kubernetes:
    /// cordon, then evict its pods; Docker: availability `drain`).
    Drain {
        /// Node name.
        node: String,
    },
    /// Set the CPU request of each of a service's replicas (vertical sizing). The
    /// targets apply it to the service's template, so it holds for replicas created
    /// later too, and replace the running replicas to apply it: a rolling update.
    Resize {
        /// Namespace (Kubernetes) or stack (Docker); empty where the target has none.
        namespace: String,
        /// Deployment or service name.
        service: String,
        /// CPU request per replica, millicores (summed over a pod's containers).
        millicores: u32,
    },
    /// Roll a service back to its previous template.
    Rollback {
        /// Namespace.
        namespace: String,
        /// Deployment or service name.
        service: String,
    },
    /// Cut one replica off the network, to contain an intruder while it is looked at
    /// or restored (Kubernetes: a label that a deny-all NetworkPolicy selects).
    Isolate {
        /// Namespace.
        namespace: String,
        /// The service it belongs to.
        service: String,
        /// Pod name.
        replica: String,
    },
    /// Undo an isolation.
    Release {
        /// Namespace.
        namespace: String,
        /// The service it belongs to.
        service: String,
        /// Pod name.
        replica: String,
    },
    /// New credentials for a service: its replicas restart, one after another, with
    /// the next version of its secret (Kubernetes: the pod template's
    /// `hale.dev/credentials-version`; Swarm: a forced update with that label).
    Rotate {
        /// Namespace (Kubernetes) or stack (Docker); empty where the target has none.
        namespace: String,
        /// Deployment or service name.
        service: String,
    },
}

/// The pod label that marks a replica isolated (Kubernetes); the NetworkPolicy
/// [`ISOLATION_POLICY`] denies all traffic to and from the pods that carry it.
pub const ISOLATED: &str = "hale.dev/isolated";
/// The NetworkPolicy, one per namespace, that cuts off pods labelled [`ISOLATED`].
pub const ISOLATION_POLICY: &str = "hale-isolate";
/// The annotation (Kubernetes pod template) or label (Swarm service) with the version
/// of the credentials a service's replicas were started with.
pub const CREDENTIALS_VERSION: &str = "hale.dev/credentials-version";

impl Action {
    /// Whether the action takes running work away (restart, cordon, drain, roll back,
    /// resize, or a scale down): these count against the global rate limit. A resize
    /// is one because the targets replace the service's replicas to apply it.
    pub fn is_disruptive(&self, current_replicas: Option<u32>) -> bool {
        match self {
            Action::Noop => false,
            Action::Scale { replicas, .. } => current_replicas.is_some_and(|c| *replicas < c),
            Action::Restart { .. }
            | Action::Cordon { .. }
            | Action::Drain { .. }
            | Action::Resize { .. }
            | Action::Rollback { .. }
            | Action::Isolate { .. }
            | Action::Rotate { .. } => true,
            Action::Release { .. } => false,
        }
    }

    /// The service the action is about, if any (namespace, name).
    pub fn service(&self) -> Option<(&str, &str)> {
        match self {
            Action::Scale {
                namespace, service, ..
            }
            | Action::Restart {
                namespace, service, ..
            }
            | Action::Resize {
                namespace, service, ..
            }
            | Action::Isolate {
                namespace, service, ..
            }
            | Action::Release {
                namespace, service, ..
            }
            | Action::Rotate { namespace, service }
            | Action::Rollback { namespace, service } => Some((namespace, service)),
            Action::Noop | Action::Cordon { .. } | Action::Drain { .. } => None,
        }
    }

    /// An isolation (`true`) or a release (`false`): (namespace, service, replica,
    /// isolated after it).
    pub fn isolation(&self) -> Option<(&str, &str, &str, bool)> {
        match self {
            Action::Isolate {
                namespace,
                service,
                replica,
            } => Some((namespace, service, replica, true)),
            Action::Release {
                namespace,
                service,
                replica,
            } => Some((namespace, service, replica, false)),
            _ => None,
        }
    }

    /// The node the action is about, if any.
    pub fn node(&self) -> Option<&str> {
        match self {
            Action::Cordon { node } | Action::Drain { node } => Some(node),
            _ => None,
        }
    }

    /// A short name of the kind (`scale`, `restart`, …) for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Action::Noop => "noop",
            Action::Scale { .. } => "scale",
            Action::Restart { .. } => "restart",
            Action::Cordon { .. } => "cordon",
            Action::Drain { .. } => "drain",
            Action::Resize { .. } => "resize",
            Action::Rollback { .. } => "rollback",
            Action::Isolate { .. } => "isolate",
            Action::Release { .. } => "release",
            Action::Rotate { .. } => "rotate",
        }
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ns = |n: &str| {
            if n.is_empty() {
                String::new()
            } else {
                format!("{n}/")
            }
        };
        match self {
            Action::Noop => write!(f, "no-op"),
            Action::Scale {
                namespace,
                service,
                replicas,
            } => write!(f, "scale {}{service} to {replicas}", ns(namespace)),
            Action::Restart {
                namespace,
                service,
                replica,
            } => write!(f, "restart {}{service} replica {replica}", ns(namespace)),
            Action::Cordon { node } => write!(f, "cordon node {node}"),
            Action::Drain { node } => write!(f, "drain node {node}"),
            Action::Resize {
                namespace,
                service,
                millicores,
            } => write!(
                f,
                "set {}{service}'s CPU request to {millicores}m per replica",
                ns(namespace)
            ),
            Action::Rollback { namespace, service } => {
                write!(f, "roll back {}{service}", ns(namespace))
            }
            Action::Isolate {
                namespace,
                service,
                replica,
            } => write!(f, "isolate {}{service} replica {replica}", ns(namespace)),
            Action::Release {
                namespace,
                service,
                replica,
            } => write!(f, "release {}{service} replica {replica}", ns(namespace)),
            Action::Rotate { namespace, service } => {
                write!(f, "rotate {}{service}'s credentials", ns(namespace))
            }
        }
    }
}
