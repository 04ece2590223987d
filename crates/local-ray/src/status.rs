//! The RayCluster status the operator would write, from what runs locally. Pure.
//!
//! The status is written with a JSON merge patch, so every field this runtime manages is in the
//! patch: absent ones as `null` (which removes them).

use std::collections::BTreeMap;

use kuberay_core::crd::RayCluster;
use serde_json::{Map, Value, json};

use crate::plan::ClusterPlan;

/// Condition types, reasons and states as the KubeRay operator names them.
pub mod names {
    pub const HEAD_POD_READY: &str = "HeadPodReady";
    pub const PROVISIONED: &str = "RayClusterProvisioned";
    pub const SUSPENDED: &str = "RayClusterSuspended";
    pub const HEAD_READY: &str = "HeadPodRunningAndReady";
    pub const HEAD_NOT_FOUND: &str = "HeadPodNotFound";
    pub const HEAD_NOT_READY: &str = "HeadPodNotReady";
    pub const ALL_READY_FIRST_TIME: &str = "AllPodRunningAndReadyFirstTime";
    pub const PROVISIONING: &str = "RayClusterPodsProvisioning";
    pub const RAY_NOT_INSTALLED: &str = "RayNotInstalled";
    pub const READY: &str = "ready";
    pub const SUSPENDED_STATE: &str = "suspended";
}

/// What the head and workers are doing, as observed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Observed {
    /// The head's node name (pod name) when a head process exists.
    pub head_name: Option<String>,
    /// The head answers on its dashboard.
    pub head_ready: bool,
    /// The head's endpoints (port name -> port).
    pub endpoints: BTreeMap<String, String>,
    /// Worker processes running.
    pub workers_running: u32,
    /// Workers whose raylet has joined the head.
    pub workers_ready: u32,
    /// Why nothing runs, when Ray cannot be started (the status' `reason`).
    pub blocked: Option<String>,
}

/// The status of `cluster` (as a merge patch's `status`), and whether it differs from the one
/// the object has apart from times. `now` is an RFC 3339 time.
pub fn build(
    cluster: &RayCluster,
    plan: &ClusterPlan,
    observed: &Observed,
    now: &str,
) -> (Value, bool) {
    let previous = cluster
        .status
        .as_ref()
        .and_then(|s| serde_json::to_value(s).ok())
        .unwrap_or_else(|| json!({}));
    let old = |key: &str| previous.get(key).cloned().unwrap_or(Value::Null);
    let desired = plan.desired_workers();
    let all_ready = observed.head_ready && observed.workers_ready >= desired;
    let was_provisioned = condition_status(&previous, names::PROVISIONED) == Some("True");

    let state = if plan.suspended {
        json!(names::SUSPENDED_STATE)
    } else if all_ready || (was_provisioned && old("state") == json!(names::READY)) {
        // The operator keeps `ready` once the cluster was provisioned.
        json!(names::READY)
    } else {
        Value::Null
    };

    let mut status = Map::new();
    status.insert(
        "stateTransitionTimes".into(),
        transition_times(&previous, &state, now),
    );
    status.insert("state".into(), state);
    status.insert(
        "reason".into(),
        observed.blocked.clone().map_or(Value::Null, Value::String),
    );
    status.insert("head".into(), head(cluster, observed));
    status.insert(
        "endpoints".into(),
        if observed.endpoints.is_empty() {
            Value::Null
        } else {
            json!(observed.endpoints)
        },
    );
    status.insert("desiredWorkerReplicas".into(), json!(desired));
    status.insert(
        "availableWorkerReplicas".into(),
        json!(observed.workers_running),
    );
    status.insert("readyWorkerReplicas".into(), json!(observed.workers_ready));
    desired_resources(plan, &mut status);
    status.insert(
        "conditions".into(),
        Value::Array(conditions(
            &previous,
            plan,
            observed,
            all_ready || was_provisioned,
            now,
        )),
    );
    status.insert(
        "observedGeneration".into(),
        cluster
            .metadata
            .generation
            .map_or(Value::Null, |g| json!(g)),
    );

    let changed = status.iter().any(|(key, value)| {
        let before = old(key);
        if key == "conditions" {
            strip_times(&before) != strip_times(value)
        } else {
            before != *value
        }
    });
    status.insert("lastUpdateTime".into(), json!(now));
    (Value::Object(status), changed)
}

/// `HeadPodReady`, `RayClusterProvisioned` (true from the first time every node was ready) and,
/// when suspended, `RayClusterSuspended`.
fn conditions(
    previous: &Value,
    plan: &ClusterPlan,
    observed: &Observed,
    provisioned: bool,
    now: &str,
) -> Vec<Value> {
    let head = if observed.head_ready {
        (true, names::HEAD_READY, String::new())
    } else if observed.head_name.is_some() {
        (
            false,
            names::HEAD_NOT_READY,
            "the head's dashboard does not answer yet".to_string(),
        )
    } else {
        (
            false,
            names::HEAD_NOT_FOUND,
            "no head is running".to_string(),
        )
    };
    let provisioned = if provisioned {
        (
            true,
            names::ALL_READY_FIRST_TIME,
            "All Ray Pods are ready for the first time".to_string(),
        )
    } else if let Some(blocked) = &observed.blocked {
        (false, names::RAY_NOT_INSTALLED, blocked.clone())
    } else {
        (
            false,
            names::PROVISIONING,
            "RayCluster Pods are being provisioned for first time".to_string(),
        )
    };
    let mut conditions = vec![
        condition(previous, names::HEAD_POD_READY, head, now),
        condition(previous, names::PROVISIONED, provisioned, now),
    ];
    if plan.suspended {
        conditions.push(condition(
            previous,
            names::SUSPENDED,
            (true, names::SUSPENDED, String::new()),
            now,
        ));
    }
    conditions
}

/// `status.head`: the head "pod" on loopback, while a head process exists.
fn head(cluster: &RayCluster, observed: &Observed) -> Value {
    match &observed.head_name {
        Some(pod) => json!({
            "podIP": "127.0.0.1",
            "podName": pod,
            "serviceIP": "127.0.0.1",
            "serviceName": format!("{}-head-svc", cluster.metadata.name.as_deref().unwrap_or_default()),
        }),
        None => Value::Null,
    }
}

/// The worker bounds and the resources the plan asks for: `minWorkerReplicas`,
/// `maxWorkerReplicas`, `desiredCPU`, `desiredMemory`, `desiredGPU`, `desiredTPU`.
fn desired_resources(plan: &ClusterPlan, status: &mut Map<String, Value>) {
    let min: u32 = plan.groups.iter().map(|g| g.min).sum();
    let max: u32 = plan
        .groups
        .iter()
        .map(|g| g.max)
        .fold(0u32, u32::saturating_add)
        .min(i32::MAX as u32);
    let total = |per_node: &dyn Fn(&crate::plan::NodeSpec) -> u64| {
        per_node(&plan.head)
            + plan
                .groups
                .iter()
                .map(|g| per_node(&g.node) * u64::from(g.nodes))
                .sum::<u64>()
    };
    let cpu_millis = total(&|n| n.cpu_millis);
    let memory = total(&|n| n.memory_bytes);
    let gpus = total(&|n| u64::from(n.num_gpus));
    status.insert("minWorkerReplicas".into(), json!(min));
    status.insert("maxWorkerReplicas".into(), json!(max));
    status.insert("desiredCPU".into(), json!(cpu_text(cpu_millis)));
    status.insert("desiredMemory".into(), json!(bytes_text(memory)));
    status.insert("desiredGPU".into(), json!(gpus.to_string()));
    status.insert("desiredTPU".into(), json!("0"));
}

/// `stateTransitionTimes` with the time of a change of `state`.
fn transition_times(previous: &Value, state: &Value, now: &str) -> Value {
    let mut transitions = previous
        .get("stateTransitionTimes")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    if let Some(state) = state.as_str()
        && previous.get("state").and_then(Value::as_str) != Some(state)
    {
        transitions.insert(state.to_string(), json!(now));
    }
    if transitions.is_empty() {
        Value::Null
    } else {
        Value::Object(transitions)
    }
}

/// The status of the condition `kind` in a status object.
fn condition_status<'a>(status: &'a Value, kind: &str) -> Option<&'a str> {
    status
        .get("conditions")?
        .as_array()?
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(kind))?
        .get("status")?
        .as_str()
}

/// A condition, keeping its previous transition time when its status has not changed.
fn condition(
    previous: &Value,
    kind: &str,
    (ok, reason, message): (bool, &str, String),
    now: &str,
) -> Value {
    let status = if ok { "True" } else { "False" };
    let since = previous
        .get("conditions")
        .and_then(Value::as_array)
        .and_then(|all| {
            all.iter()
                .find(|c| c.get("type").and_then(Value::as_str) == Some(kind))
        })
        .filter(|c| c.get("status").and_then(Value::as_str) == Some(status))
        .and_then(|c| c.get("lastTransitionTime").cloned())
        .unwrap_or_else(|| json!(now));
    json!({
        "type": kind,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": since,
    })
}

fn strip_times(conditions: &Value) -> Value {
    match conditions {
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|c| {
                    let mut c = c.clone();
                    if let Some(map) = c.as_object_mut() {
                        map.remove("lastTransitionTime");
                    }
                    c
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Millicores as a Kubernetes quantity: `2`, `1500m`.
pub fn cpu_text(millis: u64) -> String {
    if millis.is_multiple_of(1000) {
        (millis / 1000).to_string()
    } else {
        format!("{millis}m")
    }
}

/// Bytes as a Kubernetes quantity, in the largest binary unit that divides it: `4Gi`, `512Mi`.
pub fn bytes_text(bytes: u64) -> String {
    if bytes == 0 {
        return "0".into();
    }
    for (unit, size) in [
        ("Ti", 1u64 << 40),
        ("Gi", 1 << 30),
        ("Mi", 1 << 20),
        ("Ki", 1 << 10),
    ] {
        if bytes.is_multiple_of(size) {
            return format!("{}{unit}", bytes / size);
        }
    }
    bytes.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Defaults, plan};

    fn cluster(status: Value) -> RayCluster {
        serde_json::from_value(json!({
            "apiVersion": "ray.io/v1", "kind": "RayCluster",
            "metadata": {"name": "c", "namespace": "ns", "uid": "u", "generation": 3},
            "spec": {
                "headGroupSpec": {"rayStartParams": {}, "template": {"spec": {"containers": [{
                    "name": "ray-head", "image": "i",
                    "resources": {"requests": {"cpu": "1", "memory": "2Gi"}}}]}}},
                "workerGroupSpecs": [{"groupName": "g", "replicas": 2, "minReplicas": 1, "maxReplicas": 3,
                    "rayStartParams": {}, "template": {"spec": {"containers": [{
                        "name": "ray-worker", "image": "i",
                        "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}}}]}}}]
            },
            "status": status
        }))
        .unwrap()
    }

    fn endpoints() -> BTreeMap<String, String> {
        BTreeMap::from([("dashboard".to_string(), "8265".to_string())])
    }

    #[test]
    fn a_cluster_becomes_ready_when_the_head_answers_and_the_workers_joined() {
        let object = cluster(json!({}));
        let plan = plan(&object, &Defaults::default());
        let mut observed = Observed {
            head_name: Some("c-head-abcde".into()),
            head_ready: true,
            endpoints: endpoints(),
            workers_running: 2,
            workers_ready: 1,
            blocked: None,
        };
        let (status, changed) = build(&object, &plan, &observed, "2026-01-01T00:00:00Z");
        assert!(changed);
        assert_eq!(status["state"], Value::Null);
        assert_eq!(status["reason"], Value::Null);
        assert_eq!(status["head"]["podIP"], "127.0.0.1");
        assert_eq!(status["head"]["serviceName"], "c-head-svc");
        assert_eq!(status["endpoints"]["dashboard"], "8265");
        assert_eq!(status["desiredWorkerReplicas"], 2);
        assert_eq!(status["availableWorkerReplicas"], 2);
        assert_eq!(status["readyWorkerReplicas"], 1);
        assert_eq!(status["minWorkerReplicas"], 1);
        assert_eq!(status["maxWorkerReplicas"], 3);
        assert_eq!(status["desiredCPU"], "2");
        assert_eq!(status["desiredMemory"], "4Gi");
        assert_eq!(status["observedGeneration"], 3);
        assert_eq!(status["conditions"][0]["type"], "HeadPodReady");
        assert_eq!(status["conditions"][0]["status"], "True");
        assert_eq!(status["conditions"][1]["status"], "False");
        assert_eq!(status["conditions"][1]["reason"], names::PROVISIONING);

        observed.workers_ready = 2;
        let (status, _) = build(&object, &plan, &observed, "2026-01-01T00:00:05Z");
        assert_eq!(status["state"], "ready");
        assert_eq!(
            status["stateTransitionTimes"]["ready"],
            "2026-01-01T00:00:05Z"
        );
        assert_eq!(status["conditions"][1]["status"], "True");
        assert_eq!(
            status["conditions"][1]["reason"],
            names::ALL_READY_FIRST_TIME
        );

        // Written back, the same observation changes nothing but the times.
        let object = cluster(status.clone());
        let (again, changed) = build(&object, &plan, &observed, "2026-01-01T00:01:00Z");
        assert!(!changed, "{again}");
        assert_eq!(
            again["conditions"][0]["lastTransitionTime"],
            status["conditions"][0]["lastTransitionTime"]
        );

        // A worker lost after provisioning: still ready, as the operator keeps it.
        observed.workers_ready = 1;
        let (later, changed) = build(&object, &plan, &observed, "2026-01-01T00:02:00Z");
        assert!(changed);
        assert_eq!(later["state"], "ready");
        assert_eq!(later["readyWorkerReplicas"], 1);
    }

    #[test]
    fn without_ray_the_reason_says_how_to_install_it() {
        let object = cluster(json!({}));
        let plan = plan(&object, &Defaults::default());
        let observed = Observed {
            blocked: Some("Ray is not installed: pip install \"ray[default,serve]\"".into()),
            ..Default::default()
        };
        let (status, changed) = build(&object, &plan, &observed, "2026-01-01T00:00:00Z");
        assert!(changed);
        assert_eq!(status["state"], Value::Null);
        assert!(status["reason"].as_str().unwrap().contains("pip install"));
        assert_eq!(status["head"], Value::Null);
        assert_eq!(status["conditions"][0]["reason"], names::HEAD_NOT_FOUND);
        assert_eq!(status["conditions"][1]["reason"], names::RAY_NOT_INSTALLED);
    }

    #[test]
    fn quantities() {
        assert_eq!(cpu_text(2000), "2");
        assert_eq!(cpu_text(1500), "1500m");
        assert_eq!(bytes_text(3 << 30), "3Gi");
        assert_eq!(bytes_text(512 << 20), "512Mi");
        assert_eq!(bytes_text(1000), "1000");
        assert_eq!(bytes_text(0), "0");
    }
}
