//! The compute-template injection of the V2 API, as pure functions over a decoded request body.
//!
//! A group (head or worker) of a RayCluster, of a RayJob's `spec.rayClusterSpec` or of a
//! RayService's `spec.rayClusterConfig` may name a compute template in a string field
//! `computeTemplate`. The template's resources are written into the group's containers as the
//! raw strings the Go server writes (no quantity canonicalisation), its tolerations are appended
//! to the pod spec unchanged, and the pod template is annotated with the template name.

use std::collections::BTreeMap;

use kuberay_api::proto::ComputeTemplate;
use serde_json::{Map, Value, json};

use crate::labels::COMPUTE_TEMPLATE_ANNOTATION as TEMPLATE_ANNOTATION;

/// Whether the middleware rewrites this body at all: only when the top-level `spec` is a map.
pub fn applies(body: &Value) -> bool {
    body.get("spec").is_some_and(Value::is_object)
}

/// The object holding `headGroupSpec` and `workerGroupSpecs`.
fn cluster_spec_mut(body: &mut Value) -> Option<&mut Map<String, Value>> {
    let spec = body.get_mut("spec")?.as_object_mut()?;
    if spec.get("rayClusterSpec").is_some_and(Value::is_object) {
        return spec.get_mut("rayClusterSpec")?.as_object_mut();
    }
    if spec.get("rayClusterConfig").is_some_and(Value::is_object) {
        return spec.get_mut("rayClusterConfig")?.as_object_mut();
    }
    Some(spec)
}

fn cluster_spec(body: &Value) -> Option<&Map<String, Value>> {
    let spec = body.get("spec")?.as_object()?;
    if let Some(Value::Object(cluster)) = spec.get("rayClusterSpec") {
        return Some(cluster);
    }
    if let Some(Value::Object(cluster)) = spec.get("rayClusterConfig") {
        return Some(cluster);
    }
    Some(spec)
}

/// The groups of a cluster spec, head first, with whether each is the head.
fn groups(cluster: &Map<String, Value>) -> Vec<(bool, &Map<String, Value>)> {
    let mut groups = Vec::new();
    if let Some(Value::Object(head)) = cluster.get("headGroupSpec") {
        groups.push((true, head));
    }
    if let Some(Value::Array(workers)) = cluster.get("workerGroupSpecs") {
        groups.extend(
            workers
                .iter()
                .filter_map(Value::as_object)
                .map(|w| (false, w)),
        );
    }
    groups
}

/// The template names the groups ask for, in lookup order (head, then workers), repeats kept.
pub fn template_names(body: &Value) -> Vec<String> {
    let Some(cluster) = cluster_spec(body) else {
        return Vec::new();
    };
    groups(cluster)
        .into_iter()
        .filter_map(|(_, group)| group.get("computeTemplate")?.as_str().map(str::to_string))
        .collect()
}

/// Applies the looked-up templates (by name) to every group that names one.
pub fn apply(body: &mut Value, templates: &BTreeMap<String, ComputeTemplate>) {
    let Some(cluster) = cluster_spec_mut(body) else {
        return;
    };
    if let Some(Value::Object(head)) = cluster.get_mut("headGroupSpec") {
        apply_to_group(head, true, templates);
    }
    if let Some(Value::Array(workers)) = cluster.get_mut("workerGroupSpecs") {
        for worker in workers.iter_mut().filter_map(Value::as_object_mut) {
            apply_to_group(worker, false, templates);
        }
    }
}

/// `object[key]` as a map, replacing a missing or non-map value with an empty map.
fn child_map<'a>(object: &'a mut Map<String, Value>, key: &str) -> &'a mut Map<String, Value> {
    let entry = object
        .entry(key.to_string())
        .or_insert_with(|| Value::Object(Map::new()));
    if !entry.is_object() {
        *entry = Value::Object(Map::new());
    }
    entry.as_object_mut().expect("just made a map")
}

fn apply_to_group(
    group: &mut Map<String, Value>,
    head: bool,
    templates: &BTreeMap<String, ComputeTemplate>,
) {
    let Some(name) = group.get("computeTemplate").and_then(Value::as_str) else {
        return;
    };
    let Some(template) = templates.get(name) else {
        return;
    };
    let name = name.to_string();
    let Some(Value::Object(pod)) = group.get_mut("template") else {
        return;
    };

    child_map(child_map(pod, "metadata"), "annotations")
        .insert(TEMPLATE_ANNOTATION.to_string(), Value::String(name));

    let Some(Value::Object(spec)) = pod.get_mut("spec") else {
        return;
    };
    if let Some(Value::Array(containers)) = spec.get_mut("containers") {
        let main = if head { "ray-head" } else { "ray-worker" };
        let cpu = Value::String(template.cpu.to_string());
        let memory = Value::String(format!("{}{}", template.memory, template.memory_unit));
        for container in containers.iter_mut().filter_map(Value::as_object_mut) {
            let is_main = container.get("name").and_then(Value::as_str) == Some(main);
            let resources = child_map(container, "resources");
            for kind in ["limits", "requests"] {
                let list = child_map(resources, kind);
                list.insert("cpu".into(), cpu.clone());
                list.insert("memory".into(), memory.clone());
                if !is_main {
                    continue;
                }
                if template.gpu != 0 {
                    let accelerator = if template.gpu_accelerator.is_empty() {
                        "nvidia.com/gpu"
                    } else {
                        template.gpu_accelerator.as_str()
                    };
                    list.insert(accelerator.to_string(), json!(template.gpu));
                }
                for (resource, count) in &template.extended_resources {
                    list.insert(resource.clone(), json!(count));
                }
            }
        }
    }

    if !template.tolerations.is_empty() {
        let entry = spec
            .entry("tolerations".to_string())
            .or_insert_with(|| Value::Array(Vec::new()));
        if !entry.is_array() {
            *entry = Value::Array(Vec::new());
        }
        let list = entry.as_array_mut().expect("just made a list");
        for toleration in &template.tolerations {
            list.push(json!({
                "key": toleration.key,
                "operator": toleration.operator,
                "value": toleration.value,
                "effect": toleration.effect,
            }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kuberay_api::proto::PodToleration;

    fn template() -> ComputeTemplate {
        ComputeTemplate {
            name: "t".into(),
            namespace: "ns".into(),
            cpu: 2,
            memory: 4,
            memory_unit: "Gi".into(),
            gpu: 1,
            gpu_accelerator: String::new(),
            extended_resources: [
                ("custom.io/special-resource".to_string(), 2),
                ("zero.io/r".to_string(), 0),
            ]
            .into(),
            tolerations: vec![PodToleration {
                key: "ray.io/node-type".into(),
                operator: "Equal".into(),
                value: "worker".into(),
                effect: "NoSchedule".into(),
            }],
        }
    }

    fn templates() -> BTreeMap<String, ComputeTemplate> {
        [("t".to_string(), template())].into()
    }

    fn group(container: &str) -> Value {
        json!({
            "computeTemplate": "t",
            "template": {"spec": {"containers": [
                {"name": container, "resources": {"limits": {"cpu": "9"}}},
                {"name": "sidecar"}
            ]}}
        })
    }

    fn check_group(group: &Value, main: &str) {
        let pod = &group["template"];
        assert_eq!(pod["metadata"]["annotations"][TEMPLATE_ANNOTATION], "t");
        for container in pod["spec"]["containers"].as_array().unwrap() {
            for kind in ["limits", "requests"] {
                let list = &container["resources"][kind];
                assert_eq!(list["cpu"], "2");
                assert_eq!(list["memory"], "4Gi");
                if container["name"] == main {
                    assert_eq!(list["nvidia.com/gpu"], 1);
                    assert_eq!(list["custom.io/special-resource"], 2);
                    assert_eq!(list["zero.io/r"], 0);
                } else {
                    assert!(list.get("nvidia.com/gpu").is_none());
                    assert!(list.get("custom.io/special-resource").is_none());
                }
            }
        }
        assert_eq!(
            pod["spec"]["tolerations"],
            json!([{"key": "ray.io/node-type", "operator": "Equal", "value": "worker", "effect": "NoSchedule"}])
        );
    }

    #[test]
    fn raycluster_groups_get_the_template() {
        let mut body = json!({"spec": {
            "headGroupSpec": group("ray-head"),
            "workerGroupSpecs": [group("ray-worker"), {"groupName": "plain", "template": {}}]
        }});
        assert!(applies(&body));
        assert_eq!(template_names(&body), ["t", "t"]);
        apply(&mut body, &templates());
        check_group(&body["spec"]["headGroupSpec"], "ray-head");
        check_group(&body["spec"]["workerGroupSpecs"][0], "ray-worker");
        assert_eq!(
            body["spec"]["workerGroupSpecs"][1],
            json!({"groupName": "plain", "template": {}})
        );
        // The key stays; Kubernetes prunes it.
        assert_eq!(body["spec"]["headGroupSpec"]["computeTemplate"], "t");
    }

    #[test]
    fn rayjob_and_rayservice_use_the_embedded_cluster_spec() {
        for key in ["rayClusterSpec", "rayClusterConfig"] {
            let mut body = json!({"spec": {key: {
                "headGroupSpec": group("ray-head"),
                "workerGroupSpecs": [group("ray-worker")]
            }}});
            assert_eq!(template_names(&body), ["t", "t"]);
            apply(&mut body, &templates());
            check_group(&body["spec"][key]["headGroupSpec"], "ray-head");
            check_group(&body["spec"][key]["workerGroupSpecs"][0], "ray-worker");
        }
    }

    #[test]
    fn raw_values_and_custom_accelerator() {
        let mut t = template();
        t.memory_unit = String::new();
        t.gpu_accelerator = "amd.com/gpu".into();
        t.tolerations = vec![PodToleration {
            key: "k".into(),
            operator: "Whatever".into(),
            value: String::new(),
            effect: String::new(),
        }];
        let mut body = json!({"spec": {"headGroupSpec": {
            "computeTemplate": "t",
            "template": {"metadata": {"annotations": {"a": "b"}}, "spec": {
                "containers": [{"name": "ray-head"}],
                "tolerations": [{"key": "existing"}]
            }}
        }}});
        apply(&mut body, &[("t".to_string(), t)].into());
        let pod = &body["spec"]["headGroupSpec"]["template"];
        assert_eq!(pod["metadata"]["annotations"]["a"], "b");
        let limits = &pod["spec"]["containers"][0]["resources"]["limits"];
        assert_eq!(limits["memory"], "4");
        assert_eq!(limits["amd.com/gpu"], 1);
        assert!(limits.get("nvidia.com/gpu").is_none());
        assert_eq!(
            pod["spec"]["tolerations"],
            json!([{"key": "existing"}, {"key": "k", "operator": "Whatever", "value": "", "effect": ""}])
        );
    }

    #[test]
    fn groups_without_a_string_template_or_pod_template_are_left_alone() {
        let mut body = json!({"spec": {
            "headGroupSpec": {"computeTemplate": 3, "template": {"spec": {"containers": [{}]}}},
            "workerGroupSpecs": [{"computeTemplate": "t"}]
        }});
        assert_eq!(template_names(&body), ["t"]);
        let before = body.clone();
        apply(&mut body, &templates());
        assert_eq!(body, before);
        // No pod spec: only the annotation.
        let mut body = json!({"spec": {"headGroupSpec": {"computeTemplate": "t", "template": {}}}});
        apply(&mut body, &templates());
        assert_eq!(
            body["spec"]["headGroupSpec"]["template"],
            json!({"metadata": {"annotations": {TEMPLATE_ANNOTATION: "t"}}})
        );
    }
}
