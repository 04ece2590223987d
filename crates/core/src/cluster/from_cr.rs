//! CR -> API: RayCluster to `Cluster` and the embedded spec back
//! (docs/contract/conversion.md#raycluster-to-cluster). Objects this server did not build may lack
//! what the Go server dereferences blindly; those problems are `InvalidData`, never a panic.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, EnvFromSource, PodTemplateSpec};
use kuberay_api::proto::{self, env_value_from::Source};

use super::{HEAD_CONTAINER, WORKER_CONTAINER, env, go_zero_time, volumes};
use crate::CoreError;
use crate::crd;
use crate::labels;
use crate::packed::Packed;

/// Pod-template annotations hidden on read-back (set by this server, the operator or the CNI).
const HIDDEN_ANNOTATIONS: [&str; 10] = [
    "ray.io/compute-image",
    "openshift.io/scc",
    "cni.projectcalico.org/podIP",
    "ray.io/health-state",
    "ray.io/ft-enabled",
    "cni.projectcalico.org/podIPs",
    "cni.projectcalico.org/containerID",
    "ray.io/compute-template",
    "k8s.v1.cni.cncf.io/network-status",
    "k8s.v1.cni.cncf.io/networks-status",
];

/// Pod-template labels hidden on read-back (set by the operator).
const HIDDEN_LABELS: [&str; 8] = [
    "app.kubernetes.io/created-by",
    "app.kubernetes.io/name",
    "ray.io/cluster",
    "ray.io/cluster-dashboard",
    "ray.io/group",
    "ray.io/identifier",
    "ray.io/is-ray-node",
    "ray.io/node-type",
];

/// RayCluster -> Cluster (docs/contract/conversion.md#raycluster-to-cluster); `events` already
/// converted by [`crate::events::cluster_events`]. Each event's `name` is set here to
/// `<value of label ray.io/cluster-name>-<event id>`, as the Go server names them.
/// Malformed objects not built by us (docs/contract/conversion.md#malformed-objects) ->
/// `InvalidData` naming the object.
pub fn from_ray_cluster(
    cluster: &crd::RayCluster,
    events: Vec<proto::ClusterEvent>,
) -> Result<proto::Cluster, CoreError> {
    let (converted, prefix) = convert_cluster(cluster)?;
    Ok(proto::Cluster {
        events: named_events(&prefix, events),
        ..converted
    })
}

/// Events named `<prefix>-<id>`, as the Go server names a cluster's events.
fn named_events(prefix: &str, events: Vec<proto::ClusterEvent>) -> Vec<proto::ClusterEvent> {
    events
        .into_iter()
        .map(|event| proto::ClusterEvent {
            name: format!("{prefix}-{}", event.id),
            ..event
        })
        .collect()
}

/// A RayCluster as V1 shows it, converted once and kept, encoded, without its events (which
/// change on their own); [`ClusterView::with_events`] makes each answer. A small fraction of
/// the object's memory.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterView {
    cluster: Packed<proto::Cluster>,
    name: Box<str>,
    namespace: Box<str>,
    state: Box<str>,
    /// The `ray.io/cluster-name` label, which prefixes the names of the cluster's events.
    event_prefix: Box<str>,
}

impl ClusterView {
    /// Converts `cluster` ([`from_ray_cluster`] without events).
    pub fn of(cluster: &crd::RayCluster) -> Result<Self, CoreError> {
        let (cluster, prefix) = convert_cluster(cluster)?;
        Ok(ClusterView {
            cluster: Packed::pack(&cluster),
            name: cluster.name.into(),
            namespace: cluster.namespace.into(),
            state: cluster.cluster_state.into(),
            event_prefix: prefix.into(),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The operator's state of the cluster (`status.state`), empty when it has none.
    pub fn state(&self) -> &str {
        &self.state
    }

    /// The answer for this cluster with `events` (converted by [`crate::events::cluster_events`]).
    pub fn with_events(&self, events: Vec<proto::ClusterEvent>) -> proto::Cluster {
        proto::Cluster {
            events: named_events(&self.event_prefix, events),
            ..self.cluster.unpack()
        }
    }
}

/// The cluster without events, and the prefix of its events' names.
fn convert_cluster(cluster: &crd::RayCluster) -> Result<(proto::Cluster, String), CoreError> {
    let crd::RayCluster {
        api_version: _,
        kind: _,
        metadata,
        spec,
        status,
    } = cluster;
    let name = metadata.name.clone().unwrap_or_default();
    let namespace = metadata.namespace.clone().unwrap_or_default();
    let label = |key: &str| labels::label_value(metadata, key);

    let cluster_spec = cluster_spec_to_api(spec).map_err(|error| {
        CoreError::InvalidData(format!("RayCluster {namespace}/{name}: {error}"))
    })?;
    let environment = proto::cluster::Environment::from_str_name(&label(labels::ENVIRONMENT))
        .map_or(0, |environment| environment as i32);
    let created_at = metadata
        .creation_timestamp
        .as_ref()
        .map_or_else(go_zero_time, |time| kuberay_api::Timestamp {
            seconds: time.0.as_second(),
            nanos: 0,
        });
    let cluster = proto::Cluster {
        name,
        namespace,
        user: label(labels::USER),
        version: label(labels::VERSION),
        environment,
        cluster_spec: Some(cluster_spec),
        annotations: metadata.annotations.clone().unwrap_or_default(),
        envs: None,
        created_at: Some(created_at),
        deleted_at: None,
        cluster_state: status
            .as_ref()
            .and_then(|status| status.state.clone())
            .unwrap_or_default(),
        events: Vec::new(),
        service_endpoint: super::service_endpoints(status.as_ref()),
    };
    Ok((cluster, label(labels::CLUSTER_NAME)))
}

/// The embedded spec back (used by jobs/services too).
pub fn cluster_spec_to_api(spec: &crd::RayClusterSpec) -> Result<proto::ClusterSpec, CoreError> {
    let crd::RayClusterSpec {
        suspend: _,
        autoscaler_options,
        head_service_annotations,
        enable_in_tree_autoscaling,
        head_group_spec,
        ray_version: _,
        worker_group_specs,
        extra: _,
    } = spec;
    let head = head_to_api(head_group_spec)?;
    let workers = worker_group_specs
        .iter()
        .flatten()
        .enumerate()
        .map(|(index, worker)| worker_to_api(index, worker))
        .collect::<Result<Vec<_>, _>>()?;
    let autoscaling = *enable_in_tree_autoscaling == Some(true);
    let autoscaler_options = if autoscaling {
        autoscaler_options
            .as_ref()
            .map(autoscaler_to_api)
            .transpose()?
    } else {
        None
    };
    Ok(proto::ClusterSpec {
        head_group_spec: Some(head),
        worker_group_spec: workers,
        enable_in_tree_autoscaling: autoscaling,
        autoscaler_options,
        head_service_annotations: head_service_annotations.clone().unwrap_or_default(),
    })
}

/// The group fields that head and workers read the same way from their pod template.
struct GroupOutput {
    image: String,
    compute_template: String,
    volumes: Vec<proto::Volume>,
    annotations: BTreeMap<String, String>,
    labels: BTreeMap<String, String>,
    environment: Option<proto::EnvironmentVariables>,
    security_context: Option<proto::SecurityContext>,
    service_account: String,
    image_pull_secret: String,
    image_pull_policy: String,
}

/// `group_message!(proto::HeadGroupSpec, output, { own field: value, ... })`: the head or worker
/// group message (two generated types with the same field names) of a [`GroupOutput`] and the
/// group's own fields. The struct literal stays complete, so a field added to either message has
/// to be placed here or among its own.
macro_rules! group_message {
    ($message:path, $output:expr, { $($own:ident: $value:expr),* $(,)? }) => {{
        let output: GroupOutput = $output;
        $message {
            image: output.image,
            compute_template: output.compute_template,
            volumes: output.volumes,
            annotations: output.annotations,
            labels: output.labels,
            environment: output.environment,
            security_context: output.security_context,
            service_account: output.service_account,
            image_pull_secret: output.image_pull_secret,
            image_pull_policy: output.image_pull_policy,
            $($own: $value),*
        }
    }};
}

fn group_output(
    template: &PodTemplateSpec,
    container_name: &str,
    reserved_env: &[&str],
    group: &str,
) -> Result<GroupOutput, CoreError> {
    let empty = BTreeMap::new();
    let metadata = template.metadata.as_ref();
    let annotations = metadata
        .and_then(|m| m.annotations.as_ref())
        .unwrap_or(&empty);
    let pod_labels = metadata.and_then(|m| m.labels.as_ref()).unwrap_or(&empty);
    let containers: &[Container] = template
        .spec
        .as_ref()
        .map_or(&[], |pod| pod.containers.as_slice());
    let first = containers
        .first()
        .ok_or_else(|| CoreError::InvalidData(format!("{group} pod template has no containers")))?;
    let pod = template.spec.as_ref();
    let ray_container = containers.iter().find(|c| c.name == container_name);
    let volumes = volumes::from_pod_template(template)
        .map_err(|error| CoreError::InvalidData(format!("{group}: {error}")))?;
    let service_account = pod
        .and_then(|pod| pod.service_account_name.clone())
        .filter(|account| account.len() > 1)
        .unwrap_or_default();
    let image_pull_secret = pod
        .and_then(|pod| pod.image_pull_secrets.as_ref())
        .and_then(|secrets| secrets.first())
        .map(|secret| secret.name.clone())
        .unwrap_or_default();
    Ok(GroupOutput {
        image: annotations
            .get(labels::COMPUTE_IMAGE_ANNOTATION)
            .cloned()
            .unwrap_or_default(),
        compute_template: annotations
            .get(labels::COMPUTE_TEMPLATE_ANNOTATION)
            .cloned()
            .unwrap_or_default(),
        volumes,
        annotations: annotations
            .iter()
            .filter(|(key, _)| !HIDDEN_ANNOTATIONS.contains(&key.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        labels: pod_labels
            .iter()
            .filter(|(key, _)| !HIDDEN_LABELS.contains(&key.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        environment: ray_container
            .and_then(|c| c.env.as_ref())
            .filter(|vars| !vars.is_empty())
            .map(|vars| env::from_env_vars(vars, reserved_env)),
        security_context: ray_container
            .and_then(|c| c.security_context.as_ref())
            .map(security_context_to_api),
        service_account,
        image_pull_secret,
        image_pull_policy: if first.image_pull_policy.as_deref() == Some("Always") {
            "Always".to_string()
        } else {
            String::new()
        },
    })
}

fn head_to_api(head: &crd::HeadGroupSpec) -> Result<proto::HeadGroupSpec, CoreError> {
    let crd::HeadGroupSpec {
        template,
        enable_ingress,
        ray_start_params,
        service_type,
        extra: _,
    } = head;
    let output = group_output(template, HEAD_CONTAINER, &env::HEAD_RESERVED, "head group")?;
    Ok(group_message!(proto::HeadGroupSpec, output, {
        service_type: service_type.clone().unwrap_or_default(),
        enable_ingress: *enable_ingress == Some(true),
        ray_start_params: ray_start_params.clone().unwrap_or_default(),
    }))
}

fn worker_to_api(
    index: usize,
    worker: &crd::WorkerGroupSpec,
) -> Result<proto::WorkerGroupSpec, CoreError> {
    let crd::WorkerGroupSpec {
        group_name,
        replicas,
        min_replicas,
        max_replicas,
        ray_start_params,
        template,
        scale_strategy: _,
        extra: _,
    } = worker;
    let group = format!("worker group {group_name:?} (index {index})");
    let required = |value: &Option<i32>, field: &str| {
        value.ok_or_else(|| CoreError::InvalidData(format!("{group} has no {field}")))
    };
    let replicas = required(replicas, "replicas")?;
    let min_replicas = required(min_replicas, "minReplicas")?;
    let max_replicas = required(max_replicas, "maxReplicas")?;
    let output = group_output(template, WORKER_CONTAINER, &env::WORKER_RESERVED, &group)?;
    Ok(group_message!(proto::WorkerGroupSpec, output, {
        group_name: group_name.clone(),
        replicas: replicas,
        min_replicas: min_replicas,
        max_replicas: max_replicas,
        ray_start_params: ray_start_params.clone().unwrap_or_default(),
    }))
}

fn security_context_to_api(
    context: &k8s_openapi::api::core::v1::SecurityContext,
) -> proto::SecurityContext {
    let (add, drop) = match &context.capabilities {
        Some(capabilities) => (
            capabilities.add.clone().unwrap_or_default(),
            capabilities.drop.clone().unwrap_or_default(),
        ),
        None => (Vec::new(), Vec::new()),
    };
    proto::SecurityContext {
        capabilities: Some(proto::Capabilities { add, drop }),
        privileged: context.privileged,
    }
}

/// `autoscalerOptions` back (docs/contract/conversion.md#autoscaler-options-back). `env` entries
/// read like group environments (our fix's counterpart: a `valueFrom` entry comes back in
/// `valuesFrom` under its name); `envFrom` entries (written by the Go server) come back keyed by
/// list index.
fn autoscaler_to_api(
    options: &crd::AutoscalerOptions,
) -> Result<proto::AutoscalerOptions, CoreError> {
    let crd::AutoscalerOptions {
        resources,
        image,
        image_pull_policy,
        security_context: _,
        idle_timeout_seconds,
        upscaling_mode,
        version: _,
        env,
        env_from,
        volume_mounts,
        command: _,
        args: _,
        extra: _,
    } = options;
    let env_vars = env.as_deref().unwrap_or_default();
    let imports = env_from.as_deref().unwrap_or_default();
    let envs = if env_vars.is_empty() && imports.is_empty() {
        None
    } else {
        let mut envs = env::from_env_vars(env_vars, &[]);
        for (index, import) in imports.iter().enumerate() {
            envs.values_from
                .insert(index.to_string(), env_import_to_api(index, import)?);
        }
        Some(envs)
    };
    let volumes = volume_mounts
        .iter()
        .flatten()
        .map(|mount| proto::Volume {
            name: mount.name.clone(),
            mount_path: mount.mount_path.clone(),
            read_only: mount.read_only.unwrap_or(false),
            mount_propagation_mode: volumes::propagation_of(mount),
            ..Default::default()
        })
        .collect();
    let (cpu, memory) = match resources {
        Some(resources) => {
            let limits = resources.limits.as_ref().filter(|list| !list.is_empty());
            let list = limits.or(resources.requests.as_ref());
            let amount = |name: &str| {
                list.and_then(|list| list.get(name))
                    .map_or_else(|| "0".to_string(), volumes::canonical_or_raw)
            };
            (amount("cpu"), amount("memory"))
        }
        None => (String::new(), String::new()),
    };
    Ok(proto::AutoscalerOptions {
        idle_timeout_seconds: idle_timeout_seconds.unwrap_or_default(),
        upscaling_mode: upscaling_mode.clone().unwrap_or_default(),
        image: image.clone().unwrap_or_default(),
        image_pull_policy: image_pull_policy.clone().unwrap_or_default(),
        cpu,
        memory,
        envs,
        volumes,
    })
}

fn env_import_to_api(
    index: usize,
    import: &EnvFromSource,
) -> Result<proto::EnvValueFrom, CoreError> {
    let (source, name) = if let Some(config_map) = &import.config_map_ref {
        (Source::Configmap, config_map.name.clone())
    } else if let Some(secret) = &import.secret_ref {
        (Source::Secret, secret.name.clone())
    } else {
        return Err(CoreError::InvalidData(format!(
            "autoscalerOptions.envFrom[{index}] has neither configMapRef nor secretRef"
        )));
    };
    Ok(proto::EnvValueFrom {
        source: source as i32,
        name,
        key: String::new(),
    })
}
