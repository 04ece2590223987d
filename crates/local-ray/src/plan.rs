//! What a RayCluster asks for, as local processes: the head's and each worker group's node
//! resources, the number of workers of each group, and the `ray start` command line of a node.
//! Pure functions of the object; no I/O.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{Container, PodTemplateSpec};
use kuberay_core::crd::{RayCluster, WorkerGroupSpec};
use kuberay_core::quantity::Quantity;

/// Name of the ray container of the head group (the first container when none has it).
const HEAD_CONTAINER: &str = "ray-head";
/// Name of the ray container of a worker group.
const WORKER_CONTAINER: &str = "ray-worker";
/// Extended resource names of accelerators in a container's resources.
const GPU_RESOURCES: [&str; 2] = ["nvidia.com/gpu", "amd.com/gpu"];
/// The value of `spec.managedBy` that leaves a cluster to KubeRay (and so to this runtime).
pub const KUBERAY_OPERATOR: &str = "ray.io/kuberay-operator";
/// Label naming the kind of the custom resource a cluster was made for.
pub const ORIGINATED_FROM_CRD: &str = "ray.io/originated-from-crd";
/// Label naming the custom resource a cluster was made for.
pub const ORIGINATED_FROM_NAME: &str = "ray.io/originated-from-cr-name";

/// Environment variables of a container that describe the pod to Ray inside Kubernetes; they
/// would mislead a local node (its address is chosen here).
const POD_ONLY_ENV: [&str; 16] = [
    "RAY_ADDRESS",
    "RAY_PORT",
    "RAY_IP",
    "FQ_RAY_IP",
    "MY_POD_IP",
    "MY_POD_NAME",
    "RAY_CLUSTER_NAME",
    "RAY_DISABLE_DOCKER_CPU_WARNING",
    "RAY_USAGE_STATS_KUBERAY_IN_USE",
    "TYPE",
    "CPU_REQUEST",
    "CPU_LIMITS",
    "MEMORY_REQUESTS",
    "MEMORY_LIMITS",
    "REDIS_PASSWORD",
    "KUBERAY_GEN_RAY_START_CMD",
];

/// What every node gets unless the spec says otherwise.
#[derive(Clone, Debug)]
pub struct Defaults {
    /// Object store size of a node whose spec names neither `object-store-memory` nor a memory
    /// size (bytes).
    pub object_store_memory: u64,
}

impl Default for Defaults {
    fn default() -> Self {
        Defaults {
            object_store_memory: 100_000_000,
        }
    }
}

/// The resources and environment of one node, from its group's ray container and
/// `rayStartParams`.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeSpec {
    /// `--num-cpus`.
    pub num_cpus: u32,
    /// `--num-gpus`.
    pub num_gpus: u32,
    /// `--memory` in bytes, when the spec names a size.
    pub memory: Option<u64>,
    /// `--object-store-memory` in bytes.
    pub object_store_memory: u64,
    /// `--resources`: custom resources (not CPU, GPU or memory).
    pub resources: BTreeMap<String, f64>,
    /// Plain `name=value` variables of the container (those that describe a pod left out).
    pub env: Vec<(String, String)>,
    /// The container's CPU request in millicores (for `desiredCPU`).
    pub cpu_millis: u64,
    /// The container's memory request in bytes (for `desiredMemory`).
    pub memory_bytes: u64,
}

/// One worker group.
#[derive(Clone, Debug, PartialEq)]
pub struct GroupPlan {
    pub name: String,
    /// Nodes to run: replicas clamped to min/max, times `numOfHosts`; none when suspended.
    pub nodes: u32,
    /// `minReplicas * numOfHosts`.
    pub min: u32,
    /// `maxReplicas * numOfHosts`.
    pub max: u32,
    pub node: NodeSpec,
    /// `scaleStrategy.workersToDelete`: names of workers to stop first.
    pub workers_to_delete: Vec<String>,
}

/// A whole cluster.
#[derive(Clone, Debug, PartialEq)]
pub struct ClusterPlan {
    pub head: NodeSpec,
    pub groups: Vec<GroupPlan>,
    /// `spec.suspend`: no process runs.
    pub suspended: bool,
    /// The cluster serves Ray Serve applications (it was made for a RayService, or its head
    /// container declares a `serve` port): `endpoints.serve` is reported.
    pub serve: bool,
}

impl ClusterPlan {
    /// Worker nodes wanted across groups.
    pub fn desired_workers(&self) -> u32 {
        self.groups.iter().map(|g| g.nodes).sum()
    }
}

/// Whether this runtime runs the cluster: `spec.managedBy` absent or KubeRay's.
pub fn managed_here(cluster: &RayCluster) -> bool {
    match cluster.spec.extra.get("managedBy") {
        None | Some(serde_json::Value::Null) => true,
        Some(value) => value.as_str() == Some(KUBERAY_OPERATOR),
    }
}

/// The plan of `cluster`.
pub fn plan(cluster: &RayCluster, defaults: &Defaults) -> ClusterPlan {
    let spec = &cluster.spec;
    let suspended = spec.suspend.unwrap_or(false);
    let head_group = &spec.head_group_spec;
    let head_container = ray_container(&head_group.template, HEAD_CONTAINER);
    let head = node_spec(
        head_container,
        head_group.ray_start_params.as_ref(),
        head_group.extra.get("resources"),
        defaults,
    );
    let for_service = cluster
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(ORIGINATED_FROM_CRD))
        .is_some_and(|kind| kind == "RayService");
    let serve = for_service
        || head_container
            .and_then(|c| c.ports.as_ref())
            .is_some_and(|ports| ports.iter().any(|p| p.name.as_deref() == Some("serve")));
    let groups = spec
        .worker_group_specs
        .iter()
        .flatten()
        .map(|group| group_plan(group, suspended, defaults))
        .collect();
    ClusterPlan {
        head,
        groups,
        suspended,
        serve,
    }
}

fn group_plan(group: &WorkerGroupSpec, cluster_suspended: bool, defaults: &Defaults) -> GroupPlan {
    let hosts = group
        .extra
        .get("numOfHosts")
        .and_then(serde_json::Value::as_i64)
        .unwrap_or(1)
        .max(1) as u32;
    let group_suspended = group
        .extra
        .get("suspend")
        .and_then(serde_json::Value::as_bool)
        .unwrap_or(false);
    let replicas = clamp_replicas(group.replicas, group.min_replicas, group.max_replicas);
    let nodes = if cluster_suspended || group_suspended {
        0
    } else {
        replicas.saturating_mul(hosts)
    };
    let min = group.min_replicas.unwrap_or(0).max(0) as u32;
    let max = group.max_replicas.unwrap_or(i32::MAX).max(0) as u32;
    GroupPlan {
        name: group.group_name.clone(),
        nodes,
        min: min.saturating_mul(hosts),
        max: max.saturating_mul(hosts),
        node: node_spec(
            ray_container(&group.template, WORKER_CONTAINER),
            group.ray_start_params.as_ref(),
            group.extra.get("resources"),
            defaults,
        ),
        workers_to_delete: group
            .scale_strategy
            .as_ref()
            .and_then(|s| s.workers_to_delete.clone())
            .unwrap_or_default(),
    }
}

/// Replicas as the operator counts them: absent is `min` (else 0); below `min` is `min`; above
/// `max` is `max` (when `min <= max`).
pub fn clamp_replicas(replicas: Option<i32>, min: Option<i32>, max: Option<i32>) -> u32 {
    let min = min.unwrap_or(0).max(0);
    let max = max.unwrap_or(i32::MAX).max(0);
    let mut wanted = replicas.unwrap_or(min).max(0);
    if min <= max {
        wanted = wanted.clamp(min, max);
    }
    wanted as u32
}

/// The ray container of a pod template: the one named `name`, else the first.
fn ray_container<'a>(template: &'a PodTemplateSpec, name: &str) -> Option<&'a Container> {
    let containers = &template.spec.as_ref()?.containers;
    containers
        .iter()
        .find(|c| c.name == name)
        .or_else(|| containers.first())
}

/// A container resource: the limit, else the request.
fn container_resource(container: Option<&Container>, name: &str) -> Option<Quantity> {
    container_quantity(container, name, true)
}

/// A container request (else the limit, which Kubernetes copies into an absent request).
fn container_request(container: Option<&Container>, name: &str) -> Option<Quantity> {
    container_quantity(container, name, false)
}

/// The container's limit of `name` and its request, the limit first when `limit_first`.
fn container_quantity(
    container: Option<&Container>,
    name: &str,
    limit_first: bool,
) -> Option<Quantity> {
    let resources = container?.resources.as_ref()?;
    let from = |map: Option<
        &BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>,
    >| {
        map.and_then(|m| m.get(name))
            .and_then(|q| Quantity::parse(&q.0).ok())
    };
    let (first, second) = if limit_first {
        (&resources.limits, &resources.requests)
    } else {
        (&resources.requests, &resources.limits)
    };
    from(first.as_ref()).or_else(|| from(second.as_ref()))
}

/// Whole units of a quantity, rounded up (Kubernetes' `Value()`).
fn whole_up(quantity: &Quantity) -> u64 {
    let nanos = quantity.nanos().max(0) as u128;
    nanos.div_ceil(1_000_000_000) as u64
}

fn param<'a>(params: Option<&'a BTreeMap<String, String>>, name: &str) -> Option<&'a str> {
    params
        .and_then(|p| p.get(name))
        .map(|v| v.trim().trim_matches(|c| c == '"' || c == '\''))
}

/// A number from `rayStartParams` (Ray takes whole CPUs and GPUs; fractions round up).
fn param_count(params: Option<&BTreeMap<String, String>>, name: &str) -> Option<u32> {
    param(params, name)
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|v| v.is_finite() && *v >= 0.0)
        .map(|v| v.ceil() as u32)
}

fn param_bytes(params: Option<&BTreeMap<String, String>>, name: &str) -> Option<u64> {
    let text = param(params, name)?;
    text.parse::<u64>()
        .ok()
        .or_else(|| Quantity::parse(text).ok().map(|q| whole_up(&q)))
}

/// `rayStartParams.resources`: a JSON object, possibly quoted and escaped as KubeRay's docs
/// write it (`'"{\"TPU\": 4}"'`).
fn param_resources(params: Option<&BTreeMap<String, String>>) -> BTreeMap<String, f64> {
    let Some(text) = params.and_then(|p| p.get("resources")) else {
        return BTreeMap::new();
    };
    let mut text = text.trim().to_string();
    for _ in 0..3 {
        if let Ok(serde_json::Value::Object(map)) = serde_json::from_str(&text) {
            return map
                .into_iter()
                .filter_map(|(k, v)| v.as_f64().map(|v| (k, v)))
                .collect();
        }
        match serde_json::from_str::<String>(&text) {
            Ok(inner) => text = inner,
            Err(_) => {
                text = text
                    .trim_matches(|c| c == '\'' || c == '"')
                    .replace("\\\"", "\"");
            }
        }
    }
    BTreeMap::new()
}

fn node_spec(
    container: Option<&Container>,
    params: Option<&BTreeMap<String, String>>,
    group_resources: Option<&serde_json::Value>,
    defaults: &Defaults,
) -> NodeSpec {
    let cpu = container_resource(container, "cpu");
    let num_cpus = param_count(params, "num-cpus")
        .unwrap_or_else(|| cpu.as_ref().map_or(1, |q| whole_up(q).max(1) as u32));
    let gpus: u64 = GPU_RESOURCES
        .iter()
        .filter_map(|name| container_resource(container, name))
        .map(|q| whole_up(&q))
        .sum();
    let num_gpus = param_count(params, "num-gpus").unwrap_or(gpus as u32);
    let memory = param_bytes(params, "memory")
        .or_else(|| container_resource(container, "memory").map(|q| whole_up(&q)));
    // Ray's own default is 30% of the memory it may use; without a size, a small store keeps
    // several local nodes within one machine.
    let object_store_memory = param_bytes(params, "object-store-memory").unwrap_or_else(|| {
        memory.map_or(defaults.object_store_memory, |m| {
            (m * 3 / 10).max(defaults.object_store_memory.min(m / 2))
        })
    });
    let mut resources = param_resources(params);
    if let Some(serde_json::Value::Object(map)) = group_resources {
        for (name, value) in map {
            let amount = match value {
                serde_json::Value::String(text) => {
                    Quantity::parse(text).ok().map(|q| q.nanos() as f64 / 1e9)
                }
                serde_json::Value::Number(n) => n.as_f64(),
                _ => None,
            };
            if let Some(amount) = amount {
                resources.insert(name.clone(), amount);
            }
        }
    }
    // CPU, GPU and memory have flags of their own.
    for name in ["CPU", "GPU", "memory"] {
        resources.remove(name);
    }
    let env = container
        .and_then(|c| c.env.as_ref())
        .into_iter()
        .flatten()
        .filter(|var| var.value_from.is_none() && !POD_ONLY_ENV.contains(&var.name.as_str()))
        .map(|var| (var.name.clone(), var.value.clone().unwrap_or_default()))
        .collect();
    NodeSpec {
        num_cpus,
        num_gpus,
        memory,
        object_store_memory,
        resources,
        env,
        cpu_millis: container_request(container, "cpu")
            .map_or(0, |q| (q.nanos().max(0) as u128).div_ceil(1_000_000) as u64),
        memory_bytes: container_request(container, "memory").map_or(0, |q| whole_up(&q)),
    }
}

/// Loopback ports of one node, chosen when it is first started and kept across restarts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodePorts {
    pub node_manager: u16,
    pub object_manager: u16,
    pub metrics: u16,
    pub agent_listen: u16,
    pub agent_grpc: u16,
    pub runtime_env_agent: u16,
    /// Set for the head.
    pub head: Option<HeadPorts>,
}

/// Ports only the head has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeadPorts {
    pub gcs: u16,
    pub dashboard: u16,
    pub client: u16,
    /// Ray Serve's HTTP proxy, for the applications a RayService deploys (they are given this
    /// port in their `http_options`).
    pub serve: u16,
}

/// Arguments after the `ray` executable for a node. `gcs_port` is the head's GCS port (for a
/// worker; a head uses its own).
pub fn ray_start_args(
    node: &NodeSpec,
    ports: &NodePorts,
    gcs_port: u16,
    temp_dir: &Path,
) -> Vec<String> {
    let mut args: Vec<String> = vec!["start".into()];
    match &ports.head {
        Some(head) => {
            args.push("--head".into());
            args.push(format!("--port={}", head.gcs));
            args.push("--dashboard-host=127.0.0.1".into());
            args.push(format!("--dashboard-port={}", head.dashboard));
            args.push("--include-dashboard=true".into());
            args.push(format!("--ray-client-server-port={}", head.client));
        }
        None => args.push(format!("--address=127.0.0.1:{gcs_port}")),
    }
    args.extend([
        "--block".to_string(),
        "--disable-usage-stats".to_string(),
        "--node-ip-address=127.0.0.1".to_string(),
        format!("--temp-dir={}", temp_dir.display()),
        format!("--num-cpus={}", node.num_cpus),
        format!("--num-gpus={}", node.num_gpus),
        format!("--object-store-memory={}", node.object_store_memory),
    ]);
    if let Some(memory) = node.memory {
        args.push(format!("--memory={memory}"));
    }
    if !node.resources.is_empty() {
        let json = serde_json::to_string(&node.resources).expect("numbers serialise");
        args.push(format!("--resources={json}"));
    }
    args.extend([
        format!("--node-manager-port={}", ports.node_manager),
        format!("--object-manager-port={}", ports.object_manager),
        format!("--metrics-export-port={}", ports.metrics),
        format!("--dashboard-agent-listen-port={}", ports.agent_listen),
        format!("--dashboard-agent-grpc-port={}", ports.agent_grpc),
        format!("--runtime-env-agent-port={}", ports.runtime_env_agent),
    ]);
    args
}

/// The ports and temporary directory of a node from the arguments [`ray_start_args`] gave it
/// (a node found running after a restart of the server). The head's Serve port is not among
/// them: it is 0 here.
pub fn from_ray_start_args(args: &[String]) -> Option<(NodePorts, PathBuf)> {
    let value = |flag: &str| {
        args.iter()
            .find_map(|a| a.strip_prefix(flag)?.strip_prefix('='))
    };
    let port = |flag: &str| value(flag)?.parse::<u16>().ok();
    let head = if args.iter().any(|a| a == "--head") {
        Some(HeadPorts {
            gcs: port("--port")?,
            dashboard: port("--dashboard-port")?,
            client: port("--ray-client-server-port")?,
            serve: 0,
        })
    } else {
        None
    };
    let ports = NodePorts {
        node_manager: port("--node-manager-port")?,
        object_manager: port("--object-manager-port")?,
        metrics: port("--metrics-export-port")?,
        agent_listen: port("--dashboard-agent-listen-port")?,
        agent_grpc: port("--dashboard-agent-grpc-port")?,
        runtime_env_agent: port("--runtime-env-agent-port")?,
        head,
    };
    Some((ports, PathBuf::from(value("--temp-dir")?)))
}

/// The operator's `endpoints` of the head Service, with the ports the head really uses.
pub fn endpoints(ports: &NodePorts, serve: bool) -> BTreeMap<String, String> {
    let mut endpoints = BTreeMap::new();
    if let Some(head) = &ports.head {
        endpoints.insert("client".into(), head.client.to_string());
        endpoints.insert("dashboard".into(), head.dashboard.to_string());
        endpoints.insert("gcs-server".into(), head.gcs.to_string());
    }
    endpoints.insert("metrics".into(), ports.metrics.to_string());
    if serve && let Some(head) = &ports.head {
        endpoints.insert("serve".into(), head.serve.to_string());
    }
    endpoints
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cluster(spec: serde_json::Value) -> RayCluster {
        serde_json::from_value(json!({
            "apiVersion": "ray.io/v1", "kind": "RayCluster",
            "metadata": {"name": "c", "namespace": "ns", "uid": "u", "generation": 1},
            "spec": spec
        }))
        .unwrap()
    }

    #[test]
    fn replicas_are_clamped_like_the_operator() {
        assert_eq!(clamp_replicas(Some(3), Some(0), Some(2)), 2);
        assert_eq!(clamp_replicas(Some(0), Some(1), Some(5)), 1);
        assert_eq!(clamp_replicas(None, Some(2), Some(5)), 2);
        assert_eq!(clamp_replicas(None, None, None), 0);
        assert_eq!(clamp_replicas(Some(-1), None, None), 0);
        // min above max: replicas as they are.
        assert_eq!(clamp_replicas(Some(4), Some(5), Some(3)), 4);
    }

    #[test]
    fn resources_come_from_the_container_and_ray_start_params() {
        let plan = plan(
            &cluster(json!({
                "headGroupSpec": {
                    "rayStartParams": {"dashboard-host": "0.0.0.0"},
                    "template": {"spec": {"containers": [{
                        "name": "ray-head", "image": "i",
                        "resources": {"limits": {"cpu": "1500m", "memory": "2Gi"},
                                      "requests": {"cpu": "500m", "memory": "1Gi"}},
                        "env": [{"name": "GREETING", "value": "hi"},
                                {"name": "RAY_ADDRESS", "value": "x:6379"},
                                {"name": "MY_POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}],
                        "ports": [{"name": "serve", "containerPort": 8000}]
                    }]}}
                },
                "workerGroupSpecs": [{
                    "groupName": "small", "replicas": 5, "minReplicas": 0, "maxReplicas": 2,
                    "numOfHosts": 2,
                    "rayStartParams": {"num-cpus": "0.5", "resources": "'\"{\\\"TPU\\\": 4}\"'",
                                       "object-store-memory": "80000000"},
                    "resources": {"accel": "2", "CPU": "9"},
                    "template": {"spec": {"containers": [{"name": "ray-worker", "image": "i",
                        "resources": {"limits": {"nvidia.com/gpu": "1"}}}]}}
                }, {
                    "groupName": "off", "replicas": 1, "suspend": true,
                    "rayStartParams": {},
                    "template": {"spec": {"containers": [{"name": "ray-worker", "image": "i"}]}}
                }]
            })),
            &Defaults::default(),
        );
        assert_eq!(plan.head.num_cpus, 2);
        assert_eq!(plan.head.num_gpus, 0);
        assert_eq!(plan.head.memory, Some(2 << 30));
        assert_eq!(plan.head.object_store_memory, (2u64 << 30) * 3 / 10);
        assert_eq!(plan.head.cpu_millis, 500);
        assert_eq!(plan.head.memory_bytes, 1 << 30);
        assert_eq!(plan.head.env, vec![("GREETING".into(), "hi".into())]);
        assert!(plan.serve);
        assert!(!plan.suspended);

        let small = &plan.groups[0];
        assert_eq!((small.nodes, small.min, small.max), (4, 0, 4));
        assert_eq!(small.node.num_cpus, 1);
        assert_eq!(small.node.num_gpus, 1);
        assert_eq!(small.node.memory, None);
        assert_eq!(small.node.object_store_memory, 80_000_000);
        assert_eq!(
            small.node.resources,
            BTreeMap::from([("TPU".into(), 4.0), ("accel".into(), 2.0)])
        );
        assert_eq!(plan.groups[1].nodes, 0);
        assert_eq!(plan.desired_workers(), 4);
    }

    #[test]
    fn a_container_without_resources_gets_one_cpu_and_the_default_store() {
        let plan = plan(
            &cluster(json!({"headGroupSpec": {"rayStartParams": null, "template": {}}})),
            &Defaults::default(),
        );
        assert_eq!(plan.head.num_cpus, 1);
        assert_eq!(plan.head.object_store_memory, 100_000_000);
        assert!(plan.groups.is_empty());
        assert!(!plan.serve);
    }

    #[test]
    fn suspend_stops_every_group() {
        let plan = plan(
            &cluster(json!({
                "suspend": true,
                "headGroupSpec": {"rayStartParams": {}, "template": {}},
                "workerGroupSpecs": [{"groupName": "g", "replicas": 2, "rayStartParams": {}, "template": {}}]
            })),
            &Defaults::default(),
        );
        assert!(plan.suspended);
        assert_eq!(plan.desired_workers(), 0);
    }

    #[test]
    fn managed_by_another_controller_is_left_alone() {
        assert!(managed_here(&cluster(json!({"headGroupSpec": {}}))));
        assert!(managed_here(&cluster(
            json!({"managedBy": "ray.io/kuberay-operator", "headGroupSpec": {}})
        )));
        assert!(!managed_here(&cluster(
            json!({"managedBy": "kueue.x-k8s.io/multikueue", "headGroupSpec": {}})
        )));
    }

    #[test]
    fn command_lines() {
        let node = NodeSpec {
            num_cpus: 1,
            num_gpus: 0,
            memory: Some(1 << 30),
            object_store_memory: 100_000_000,
            resources: BTreeMap::from([("TPU".into(), 4.0)]),
            env: Vec::new(),
            cpu_millis: 1000,
            memory_bytes: 1 << 30,
        };
        let mut ports = NodePorts {
            node_manager: 1,
            object_manager: 2,
            metrics: 3,
            agent_listen: 4,
            agent_grpc: 5,
            runtime_env_agent: 6,
            head: Some(HeadPorts {
                gcs: 10,
                dashboard: 11,
                client: 12,
                serve: 13,
            }),
        };
        let head = ray_start_args(&node, &ports, 10, Path::new("/tmp/krl/h"));
        assert_eq!(
            head.join(" "),
            "start --head --port=10 --dashboard-host=127.0.0.1 --dashboard-port=11 \
             --include-dashboard=true --ray-client-server-port=12 --block --disable-usage-stats \
             --node-ip-address=127.0.0.1 --temp-dir=/tmp/krl/h --num-cpus=1 --num-gpus=0 \
             --object-store-memory=100000000 --memory=1073741824 --resources={\"TPU\":4.0} \
             --node-manager-port=1 --object-manager-port=2 --metrics-export-port=3 \
             --dashboard-agent-listen-port=4 --dashboard-agent-grpc-port=5 \
             --runtime-env-agent-port=6"
        );
        assert_eq!(
            endpoints(&ports, true),
            BTreeMap::from([
                ("client".into(), "12".into()),
                ("dashboard".into(), "11".into()),
                ("gcs-server".into(), "10".into()),
                ("metrics".into(), "3".into()),
                ("serve".into(), "13".into()),
            ])
        );
        // Read back from a running node's arguments (all but the Serve port).
        let (read, temp_dir) = from_ray_start_args(&head).unwrap();
        assert_eq!(temp_dir, Path::new("/tmp/krl/h"));
        let mut without_serve = ports.clone();
        if let Some(h) = without_serve.head.as_mut() {
            h.serve = 0;
        }
        assert_eq!(read, without_serve);
        ports.head = None;
        let worker = ray_start_args(&node, &ports, 10, Path::new("/tmp/krl/w"));
        assert_eq!(
            from_ray_start_args(&worker),
            Some((ports.clone(), PathBuf::from("/tmp/krl/w")))
        );
        assert_eq!(from_ray_start_args(&worker[..5]), None);
        assert_eq!(worker[..2], ["start", "--address=127.0.0.1:10"]);
        assert!(!worker.iter().any(|a| a.starts_with("--dashboard-port")));
    }
}
