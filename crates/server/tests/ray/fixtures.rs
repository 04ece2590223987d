//! Objects and calls shared by the job-submission tests.

use kube::Api;
use kube::api::{DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams};
use kube::discovery::ApiResource;
use serde_json::{Value, json};

pub fn ray_clusters(client: kube::Client, namespace: &str) -> Api<DynamicObject> {
    let resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("ray.io", "v1", "RayCluster"),
        "rayclusters",
    );
    Api::namespaced_with(client, namespace, &resource)
}

/// Creates a RayCluster managed by the API server, with `status.state` set through the status
/// subresource when given (the operator's job for the clusters it manages).
pub async fn create_cluster(
    client: kube::Client,
    namespace: &str,
    name: &str,
    state: Option<&str>,
) {
    let api = ray_clusters(client, namespace);
    let object: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "ray.io/v1",
        "kind": "RayCluster",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {
                "app.kubernetes.io/managed-by": "kuberay-apiserver",
                "ray.io/cluster-name": name,
                "ray.io/user": "tests"
            }
        },
        "spec": {
            // On a real cluster the KubeRay operator leaves it alone and so keeps our state.
            "managedBy": "kueue.x-k8s.io/multikueue",
            "rayVersion": "2.60.0",
            "headGroupSpec": {
                "rayStartParams": {"dashboard-host": "0.0.0.0"},
                "template": {"spec": {"containers": [{
                    "name": "ray-head",
                    "image": "rayproject/ray:2.60.0",
                    "ports": [{"name": "dashboard", "containerPort": 8265}]
                }]}}
            }
        }
    }))
    .expect("a RayCluster object");
    api.create(&PostParams::default(), &object)
        .await
        .expect("RayCluster created");
    if let Some(state) = state {
        api.patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"state": state}})),
        )
        .await
        .expect("RayCluster status set");
    }
}

/// Sends a request and returns the status and the JSON body (`null` when there is none).
pub async fn call(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request.send().await.expect("the API answers");
    let status = response.status().as_u16();
    let bytes = response.bytes().await.expect("a body");
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
    };
    (status, body)
}
