//! The V2 API: the Kubernetes-style `ray.io/v1` proxy on the HTTP port, with compute-template
//! injection, the event filter and the service proxy guard.

mod support;

use std::time::Duration;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::events::v1::Event;
use kube::Api;
use kube::api::PostParams;
use reqwest::StatusCode;
use serde_json::{Value, json};
use support::{TestServer, http_client};

/// Example #22: the template every group names.
async fn create_template(server: &TestServer, ns: &str, name: &str) {
    let response = http_client()
        .post(server.url(&format!("/apis/v1/namespaces/{ns}/compute_templates")))
        .json(&json!({
            "name": name, "namespace": ns, "cpu": 2, "memory": 4, "memoryUnit": "Gi",
            "gpu": 1, "gpuAccelerator": "nvidia.com/gpu",
            "extendedResources": {"custom.io/special-resource": 2},
            "tolerations": [{"key": "ray.io/node-type", "operator": "Equal", "value": "worker", "effect": "NoSchedule"}]
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "{:?}",
        response.text().await
    );
}

fn cluster(name: &str, template: &str) -> Value {
    let group = |container: &str| json!({"spec": {"containers": [{"name": container, "image": "rayproject/ray:2.9.0"}]}});
    json!({
        "apiVersion": "ray.io/v1",
        "kind": "RayCluster",
        "metadata": {"name": name},
        "spec": {
            "headGroupSpec": {"computeTemplate": template, "rayStartParams": {}, "template": group("ray-head")},
            "workerGroupSpecs": [{
                "groupName": "small", "replicas": 1, "minReplicas": 0, "maxReplicas": 1,
                "computeTemplate": template, "rayStartParams": {}, "template": group("ray-worker")
            }]
        }
    })
}

const CLUSTER_YAML: &str = r#"apiVersion: ray.io/v1
kind: RayCluster
metadata:
  name: NAME
spec:
  headGroupSpec:
    computeTemplate: TEMPLATE
    rayStartParams: {}
    template:
      spec:
        containers:
          - name: ray-head
            image: rayproject/ray:2.9.0
  workerGroupSpecs:
    - groupName: small
      replicas: 1
      minReplicas: 0
      maxReplicas: 1
      computeTemplate: TEMPLATE
      rayStartParams: {}
      template:
        spec:
          containers:
            - name: ray-worker
              image: rayproject/ray:2.9.0
"#;

/// A quantity as text, whether stored as a string or a number.
fn quantity(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// The stored group has what example #22 expects.
fn check_group(group: &Value, container: &str, template: &str) {
    let pod = &group["template"];
    assert_eq!(
        pod["metadata"]["annotations"]["ray.io/compute-template"], template,
        "{group}"
    );
    let main = pod["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == container)
        .unwrap();
    for kind in ["limits", "requests"] {
        let list = &main["resources"][kind];
        assert_eq!(quantity(&list["cpu"]), "2", "{list}");
        assert_eq!(quantity(&list["memory"]), "4Gi", "{list}");
        assert_eq!(quantity(&list["nvidia.com/gpu"]), "1", "{list}");
        assert_eq!(quantity(&list["custom.io/special-resource"]), "2", "{list}");
    }
    let tolerations = pod["spec"]["tolerations"].as_array().unwrap();
    assert_eq!(tolerations.len(), 1);
    assert_eq!(tolerations[0]["key"], "ray.io/node-type");
    assert_eq!(tolerations[0]["operator"], "Equal");
    assert_eq!(tolerations[0]["value"], "worker");
    assert_eq!(tolerations[0]["effect"], "NoSchedule");
}

async fn get_json(url: &str) -> (StatusCode, Value) {
    let response = http_client().get(url).send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[tokio::test]
async fn compute_templates_are_injected_into_json_and_yaml_bodies() {
    let mut server = TestServer::start().await;
    let ns = server.namespace("v2-template").await;
    create_template(&server, &ns, "t").await;
    let client = http_client();
    let collection = server.url(&format!("/apis/ray.io/v1/namespaces/{ns}/rayclusters"));

    let response = client
        .post(&collection)
        .json(&cluster("from-json", "t"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let created: Value = response.json().await.unwrap();
    check_group(&created["spec"]["headGroupSpec"], "ray-head", "t");

    let yaml = CLUSTER_YAML
        .replace("NAME", "from-yaml")
        .replace("TEMPLATE", "t");
    let response = client
        .post(&collection)
        .header("Content-Type", "application/yaml")
        .body(yaml)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);

    for name in ["from-json", "from-yaml"] {
        let (status, stored) = get_json(&format!("{collection}/{name}")).await;
        assert_eq!(status, StatusCode::OK);
        check_group(&stored["spec"]["headGroupSpec"], "ray-head", "t");
        check_group(&stored["spec"]["workerGroupSpecs"][0], "ray-worker", "t");
    }

    // PUT goes through the middleware too.
    let (_, mut stored) = get_json(&format!("{collection}/from-json")).await;
    stored["spec"]["headGroupSpec"]["computeTemplate"] = json!("missing");
    let response = client
        .put(format!("{collection}/from-json"))
        .json(&stored)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);

    // A body in another format is refused.
    let response = client
        .post(&collection)
        .header("Content-Type", "text/plain")
        .body("spec: {}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        response.text().await.unwrap(),
        "Failed to convert request body to Golang map object\n"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_missing_template_is_422_and_nothing_is_stored() {
    let mut server = TestServer::start().await;
    let ns = server.namespace("v2-missing").await;
    let collection = server.url(&format!("/apis/ray.io/v1/namespaces/{ns}/rayclusters"));
    let response = http_client()
        .post(&collection)
        .json(&cluster("orphan", "nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; charset=utf-8"
    );
    let text = response.text().await.unwrap();
    assert!(
        text.starts_with(&format!(
            "Cannot get compute template for name 'nope' in namespace '{ns}', error: "
        )),
        "{text}"
    );
    let (status, _) = get_json(&format!("{collection}/orphan")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // A template name that would add a query to the template lookup is refused the same way.
    let response = http_client()
        .post(&collection)
        .json(&cluster("orphan", "t?watch=true"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let text = response.text().await.unwrap();
    assert!(
        text.starts_with("Cannot get compute template for name \"t?watch=true\""),
        "{text}"
    );
    let (status, _) = get_json(&format!("{collection}/orphan")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    server.stop().await;
}

#[tokio::test]
async fn other_calls_pass_through_and_watches_stream() {
    let mut server = TestServer::start_with(&["--cors-allow-origin=*"]).await;
    let ns = server.namespace("v2-pass").await;
    let client = http_client();
    let collection = server.url(&format!("/apis/ray.io/v1/namespaces/{ns}/rayclusters"));

    // No template named: forwarded as is.
    let mut plain = cluster("plain", "x");
    plain["spec"]["headGroupSpec"]
        .as_object_mut()
        .unwrap()
        .remove("computeTemplate");
    plain["spec"]["workerGroupSpecs"][0]
        .as_object_mut()
        .unwrap()
        .remove("computeTemplate");
    let response = client
        .post(&collection)
        .header("Origin", "http://ui.example")
        .json(&plain)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(response.headers()["access-control-allow-origin"], "*");

    let (status, list) = get_json(&collection).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["kind"], "RayClusterList");
    let names: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["plain"]);
    let version = list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();

    let (status, one) = get_json(&format!("{collection}/plain")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        one["metadata"]["annotations"]
            .get("ray.io/compute-template")
            .is_none()
    );

    // A watch streams the next change.
    let mut watch = client
        .get(format!("{collection}?watch=true&resourceVersion={version}"))
        .send()
        .await
        .unwrap();
    assert_eq!(watch.status(), StatusCode::OK);
    let mut second = plain.clone();
    second["metadata"]["name"] = json!("second");
    let response = client.post(&collection).json(&second).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let mut seen = String::new();
    let found = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(chunk) = watch.chunk().await.unwrap() {
            seen.push_str(&String::from_utf8_lossy(&chunk));
            if seen.contains("\"ADDED\"") && seen.contains("\"second\"") {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(found, Ok(true), "{seen}");
    drop(watch);

    let response = client
        .delete(format!("{collection}/plain"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let (status, body) = get_json(&format!("{collection}/plain")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["kind"], "Status");
    server.stop().await;
}

fn event(ns: &str, name: &str, api_version: &str, kind: &str) -> Event {
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": ns},
        "eventTime": "2025-01-01T00:00:00.000000Z",
        "reportingController": "test",
        "reportingInstance": "test",
        "action": "Test",
        "reason": "Test",
        "type": "Normal",
        "note": name,
        "regarding": {"apiVersion": api_version, "kind": kind, "name": "x", "namespace": ns}
    }))
    .unwrap()
}

#[tokio::test]
async fn events_are_restricted_to_ray_objects() {
    let mut server = TestServer::start().await;
    let ns = server.namespace("v2-events").await;
    let api: Api<Event> = Api::namespaced(server.kube(), &ns);
    for event in [
        event(&ns, "ray-event", "ray.io/v1", "RayCluster"),
        event(&ns, "pod-event", "v1", "Pod"),
    ] {
        api.create(&PostParams::default(), &event).await.unwrap();
    }
    let url = server.url(&format!("/apis/events.k8s.io/v1/namespaces/{ns}/events"));
    let names = |list: &Value| -> Vec<String> {
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["metadata"]["name"].as_str().unwrap().to_string())
            .collect()
    };
    let (status, list) = get_json(&url).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(names(&list), ["ray-event"]);
    let (_, list) = get_json(&format!("{url}?fieldSelector=regarding.apiVersion%3Dv1")).await;
    assert!(names(&list).is_empty());
    let (_, list) = get_json(&format!("{url}?fieldSelector=regarding.apiVersion=")).await;
    assert!(names(&list).is_empty());
    drop(api);
    server.stop().await;
}

#[tokio::test]
async fn the_service_proxy_only_reaches_kuberay_services() {
    let mut server = TestServer::start().await;
    let ns = server.namespace("v2-proxy").await;
    let client = http_client();
    let proxy = |service: &str| {
        server.url(&format!(
            "/api/v1/namespaces/{ns}/services/{service}/proxy/foo/bar"
        ))
    };
    let services: Api<Service> = Api::namespaced(server.kube(), &ns);
    let service = |name: &str, labelled: bool| -> Service {
        let labels = if labelled {
            json!({"app.kubernetes.io/name": "kuberay"})
        } else {
            json!({})
        };
        serde_json::from_value(json!({
            "metadata": {"name": name, "labels": labels},
            "spec": {"ports": [{"name": "http", "port": 80}]}
        }))
        .unwrap()
    };
    services
        .create(&PostParams::default(), &service("head-svc", false))
        .await
        .unwrap();
    services
        .create(&PostParams::default(), &service("kuberay-svc", true))
        .await
        .unwrap();

    for target in ["head-svc", "http:head-svc:80", "absent"] {
        let response = client.get(proxy(target)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert_eq!(
            response.text().await.unwrap(),
            "kuberay service not found\n"
        );
    }
    let response = client
        .post(server.url(&format!("/api/v1/namespaces/{ns}/services/head-svc/proxy")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        response.text().await.unwrap(),
        "kuberay service not found\n"
    );

    let response = client.get(proxy("ftp:head-svc:80")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        response.text().await.unwrap(),
        "invalid service format: ftp:head-svc:80\n"
    );

    // The guard lets the labelled Service through (what the cluster answers is not asserted:
    // nothing serves behind it).
    let response = client
        .get(proxy("http:kuberay-svc:80"))
        .send()
        .await
        .unwrap();
    assert_ne!(
        response.text().await.unwrap(),
        "kuberay service not found\n"
    );
    drop(services);
    server.stop().await;
}

#[tokio::test]
async fn v2_can_be_disabled() {
    let server = TestServer::start_with(&["--enable-api-server-v2=false"]).await;
    let response = http_client()
        .get(server.url("/apis/ray.io/v1/namespaces/default/rayclusters"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        response.text().await.unwrap(),
        r#"{"code":5,"message":"Not Found"}"#
    );
    server.stop().await;
}
