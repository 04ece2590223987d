//! Request validation of clusters and cluster specs: the Go server's checks, texts and order
//! (docs/contract/api.md#cluster-spec-checks and #clusterservice).

use kuberay_api::proto;

use crate::{CoreError, names};

fn invalid<T>(text: impl Into<String>) -> Result<T, CoreError> {
    Err(CoreError::InvalidInput(text.into()))
}

/// Pull policies accepted by validation (exact, case-sensitive); empty is accepted too.
fn pull_policy_is_valid(policy: &str) -> bool {
    matches!(policy, "" | "Always" | "IfNotPresent")
}

/// CreateCluster's checks in the Go server's order: namespace given, namespace equal to the
/// body's, name given, user given, then [`validate_cluster_spec`]; a failure is
/// `Err(CoreError::InvalidInput(<the external message>))`.
/// `cluster` `None` (gRPC without body) fails the namespace-mismatch check. Answers the valid
/// cluster and its spec.
pub fn validate_create<'a>(
    namespace: &str,
    cluster: Option<&'a proto::Cluster>,
) -> Result<(&'a proto::Cluster, &'a proto::ClusterSpec), CoreError> {
    if namespace.is_empty() {
        return invalid("Namespace is empty. Please specify a valid value.");
    }
    let cluster = match cluster {
        Some(cluster) if cluster.namespace == namespace => cluster,
        _ => {
            return invalid(
                "The namespace in the request is different from the namespace in the cluster definition.",
            );
        }
    };
    if cluster.name.is_empty() {
        return invalid("Cluster name is empty. Please specify a valid value.");
    }
    if cluster.user.is_empty() {
        return invalid("User who create the cluster is empty. Please specify a valid value.");
    }
    let spec = validate_cluster_spec(cluster.cluster_spec.as_ref())?;
    names::check_namespace(namespace)?;
    names::check_object_name("Cluster name", &cluster.name)?;
    Ok((cluster, spec))
}

/// The cluster-spec checks S1–S10 of docs/contract/api.md#cluster-spec-checks only (shared with
/// jobs and services); answers the valid spec.
pub fn validate_cluster_spec(
    spec: Option<&proto::ClusterSpec>,
) -> Result<&proto::ClusterSpec, CoreError> {
    let Some(spec) = spec else {
        return invalid("A ClusterSpec object is required. Please specify one.");
    };
    let Some(head) = spec.head_group_spec.as_ref() else {
        return invalid(
            "Cluster Spec Object requires HeadGroupSpec to be populated. Please specify one.",
        );
    };
    if head.compute_template.is_empty() {
        return invalid("HeadGroupSpec compute template is empty. Please specify a valid value.");
    }
    if head.ray_start_params.is_empty() {
        return invalid("HeadGroupSpec RayStartParams is empty. Please specify values.");
    }
    if !pull_policy_is_valid(&head.image_pull_policy) {
        return invalid(
            "HeadGroupSpec unsupported value for Image pull policy. Please specify Always or IfNotPresent",
        );
    }
    for (index, worker) in spec.worker_group_spec.iter().enumerate() {
        if worker.group_name.is_empty() {
            return invalid(format!(
                "WorkerNodeSpec {index} group name is empty. Please specify a valid value."
            ));
        }
        if worker.compute_template.is_empty() {
            return invalid(format!(
                "WorkerNodeSpec {index} compute template is empty. Please specify a valid value."
            ));
        }
        if worker.max_replicas == 0 {
            return invalid(format!(
                "WorkerNodeSpec {index} MaxReplicas can not be 0. Please specify a valid value."
            ));
        }
        if worker.min_replicas > worker.max_replicas {
            return invalid(format!(
                "WorkerNodeSpec {index} MinReplica > MaxReplicas. Please specify a valid value."
            ));
        }
        if !pull_policy_is_valid(&worker.image_pull_policy) {
            return invalid(
                "Worker GroupSpec unsupported value for Image pull policy. Please specify Always or IfNotPresent",
            );
        }
    }
    Ok(spec)
}

/// Names of the compute templates a spec uses: head first, then each worker's, distinct, in order.
pub fn compute_template_names(spec: &proto::ClusterSpec) -> Vec<String> {
    let head = spec
        .head_group_spec
        .as_ref()
        .map(|head| head.compute_template.as_str());
    let workers = spec
        .worker_group_spec
        .iter()
        .map(|worker| worker.compute_template.as_str());
    let mut names: Vec<String> = Vec::new();
    for name in head.into_iter().chain(workers) {
        if !names.iter().any(|known| known == name) {
            names.push(name.to_string());
        }
    }
    names
}
