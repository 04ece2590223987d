//! ComputeTemplateService over HTTP/JSON, through the real router and services.

mod support;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use reqwest::StatusCode;
use serde_json::{Value, json};
use support::{TestServer, http_client};

const FULL_TEMPLATE: &str = r#"{
  "name": "gpu-template",
  "namespace": "NS",
  "cpu": 8,
  "memory": 16,
  "gpu": 2,
  "gpu_accelerator": "nvidia.com/gpu",
  "tolerations": [
    {"key": "blah1", "operator": "Exists", "effect": "NoExecute"},
    {"key": "dedicated", "operator": "Equal", "value": "ray", "effect": "NoSchedule"}
  ],
  "extendedResources": {"vpc.amazonaws.com/efa": 32, "example.com/fpga": "1"},
  "memoryUnit": "Mi"
}"#;

/// The exact bytes the server answers for the full template.
const FULL_TEMPLATE_RESPONSE: &str = r#"{"name":"gpu-template","namespace":"NS","cpu":8,"memory":16,"gpu":2,"gpuAccelerator":"nvidia.com/gpu","tolerations":[{"key":"blah1","operator":"Exists","effect":"NoExecute"},{"key":"dedicated","operator":"Equal","value":"ray","effect":"NoSchedule"}],"extendedResources":{"example.com/fpga":1,"vpc.amazonaws.com/efa":32},"memoryUnit":"Mi"}"#;

async fn post(
    client: &reqwest::Client,
    url: &str,
    body: impl Into<reqwest::Body>,
) -> (StatusCode, String) {
    let response = client.post(url).body(body).send().await.unwrap();
    let status = response.status();
    (status, response.text().await.unwrap())
}

async fn get(client: &reqwest::Client, url: &str) -> (StatusCode, String) {
    let response = client.get(url).send().await.unwrap();
    let status = response.status();
    (status, response.text().await.unwrap())
}

async fn delete(client: &reqwest::Client, url: &str) -> (StatusCode, String) {
    let response = client.delete(url).send().await.unwrap();
    let status = response.status();
    (status, response.text().await.unwrap())
}

fn error(code: i32, message: &str) -> String {
    serde_json::to_string(&json!({ "code": code, "message": message })).unwrap()
}

#[tokio::test]
async fn full_template_lifecycle() {
    let mut server = TestServer::start().await;
    let ns = server.namespace("ct").await;
    let client = http_client();
    let collection = server.url(&format!("/apis/v1/namespaces/{ns}/compute_templates"));
    let item = format!("{collection}/gpu-template");

    // Create: the answer is the template read back from the stored ConfigMap.
    let response = client
        .post(&collection)
        .body(FULL_TEMPLATE.replace("NS", &ns))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "application/json"
    );
    let expected = FULL_TEMPLATE_RESPONSE.replace("NS", &ns);
    assert_eq!(response.text().await.unwrap(), expected);

    // Stored exactly as the Go server stores it.
    let stored = Api::<ConfigMap>::namespaced(server.kube(), &ns)
        .get("gpu-template")
        .await
        .unwrap();
    let labels = stored.metadata.labels.clone().unwrap();
    assert_eq!(labels["ray.io/config-type"], "compute-template");
    assert_eq!(labels["ray.io/compute-template"], "gpu-template");
    let data = stored.data.unwrap();
    assert_eq!(data["cpu"], "8");
    assert_eq!(data["memory"], "16");
    assert_eq!(data["memory_unit"], "Mi");
    assert_eq!(data["gpu"], "2");
    assert_eq!(
        data["extended_resources"],
        r#"{"example.com/fpga":1,"vpc.amazonaws.com/efa":32}"#
    );
    assert_eq!(
        data["tolerations"],
        r#"[{"key":"blah1","operator":"Exists","effect":"NoExecute"},{"key":"dedicated","operator":"Equal","value":"ray","effect":"NoSchedule"}]"#
    );

    // Get, list, list all.
    assert_eq!(
        get(&client, &item).await,
        (StatusCode::OK, expected.clone())
    );
    let (status, body) = get(&client, &collection).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, format!(r#"{{"computeTemplates":[{expected}]}}"#));
    let (status, body) = get(&client, &server.url("/apis/v1/compute_templates")).await;
    assert_eq!(status, StatusCode::OK);
    let all: Value = serde_json::from_str(&body).unwrap();
    assert!(
        all["computeTemplates"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["namespace"] == ns.as_str() && t["name"] == "gpu-template")
    );

    // Delete, then it is gone.
    assert_eq!(delete(&client, &item).await, (StatusCode::OK, "{}".into()));
    let (status, body) = get(&client, &item).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        body,
        error(
            5,
            "Compute template gpu-template not found: Get compute template failed.: NotFoundError: Compute template gpu-template not found: configmaps \"gpu-template\" not found"
        )
    );
    let (status, body) = delete(&client, &item).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        body,
        error(
            5,
            "Compute template gpu-template not found: Get compute template failure: NotFoundError: Compute template gpu-template not found: configmaps \"gpu-template\" not found"
        )
    );
    assert_eq!(
        get(&client, &collection).await,
        (StatusCode::OK, "{}".into())
    );
    server.stop().await;
}

#[tokio::test]
async fn readme_flow_in_ray_system() {
    let server = TestServer::start().await;
    let client = http_client();
    let (status, body) = post(
        &client,
        &server.url("/apis/v1/namespaces/ray-system/compute_templates"),
        r#"{"name": "default-template", "namespace": "ray-system", "cpu": 2, "memory": 4}"#,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        r#"{"name":"default-template","namespace":"ray-system","cpu":2,"memory":4,"memoryUnit":"Gi"}"#
    );
    let (status, body) = get(
        &client,
        &server.url("/apis/v1/namespaces/ray-system/compute_templates"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        r#"{"computeTemplates":[{"name":"default-template","namespace":"ray-system","cpu":2,"memory":4,"memoryUnit":"Gi"}]}"#
    );
    // Clean up for runs against a shared cluster.
    delete(
        &client,
        &server.url("/apis/v1/namespaces/ray-system/compute_templates/default-template"),
    )
    .await;
    server.stop().await;
}

#[tokio::test]
async fn create_validation_errors_change_nothing() {
    let mut server = TestServer::start().await;
    let ns = server.namespace("ct-invalid").await;
    let client = http_client();
    let collection = server.url(&format!("/apis/v1/namespaces/{ns}/compute_templates"));
    let wrap = "Validate compute template runtime request failed.";
    let invalid = |text: &str| error(3, &format!("{text}: {wrap}: Invalid input error: {text}"));
    let mismatch = "The namespace in the request is different from the namespace defined in the compute template.";

    let cases: Vec<(String, String)> = vec![
        // An empty body is an empty template, whose namespace differs from the path.
        (String::new(), invalid(mismatch)),
        ("{}".into(), invalid(mismatch)),
        (
            r#"{"name":"t","namespace":"elsewhere","cpu":1,"memory":1}"#.into(),
            invalid(mismatch),
        ),
        (
            format!(r#"{{"namespace":"{ns}","cpu":1,"memory":1}}"#),
            invalid("Compute template name is empty. Please specify a valid value."),
        ),
        (
            format!(r#"{{"name":"t","namespace":"{ns}","memory":1}}"#),
            invalid("Cpu amount is zero. Please specify a valid value."),
        ),
        (
            format!(r#"{{"name":"t","namespace":"{ns}","cpu":1}}"#),
            invalid("Memory amount is zero. Please specify a valid value."),
        ),
    ];
    for (body, expected) in cases {
        assert_eq!(
            post(&client, &collection, body.clone()).await,
            (StatusCode::BAD_REQUEST, expected),
            "body {body:?}"
        );
    }

    // An invalid memory unit is refused up front (the Go server stores it and fails later).
    let (status, body) = post(
        &client,
        &collection,
        format!(r#"{{"name":"t","namespace":"{ns}","cpu":1,"memory":4,"memoryUnit":"GB"}}"#),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["code"], 3);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("Memory unit GB is not a valid Kubernetes quantity suffix"),
        "{body}"
    );

    // Nothing was written by any of these.
    let stored = Api::<ConfigMap>::namespaced(server.kube(), &ns)
        .list(&Default::default())
        .await
        .unwrap();
    assert!(
        stored
            .items
            .iter()
            .all(|cm| cm.metadata.name.as_deref() != Some("t")),
        "a rejected template was stored"
    );
    assert_eq!(
        get(&client, &collection).await,
        (StatusCode::OK, "{}".into())
    );
    server.stop().await;
}

#[tokio::test]
async fn duplicate_names_are_already_exists() {
    let mut server = TestServer::start().await;
    let ns = server.namespace("ct-dup").await;
    let client = http_client();
    let collection = server.url(&format!("/apis/v1/namespaces/{ns}/compute_templates"));
    let body = format!(r#"{{"name":"t","namespace":"{ns}","cpu":1,"memory":2}}"#);
    assert_eq!(
        post(&client, &collection, body.clone()).await.0,
        StatusCode::OK
    );
    let text = format!("Compute template with name t already exists in namespace {ns}");
    assert_eq!(
        post(&client, &collection, body).await,
        (
            StatusCode::CONFLICT,
            error(
                6,
                &format!("{text}: Create compute template failed.: Already exist error: {text}")
            )
        )
    );
    server.stop().await;
}

#[tokio::test]
async fn create_in_a_missing_namespace_is_an_internal_error() {
    let server = TestServer::start().await;
    let client = http_client();
    let (status, body) = post(
        &client,
        &server.url("/apis/v1/namespaces/no-such-namespace/compute_templates"),
        r#"{"name":"t","namespace":"no-such-namespace","cpu":1,"memory":2}"#,
    )
    .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        body,
        error(
            13,
            "Internal Server Error: Create compute template failed.: InternalServerError: Failed to create a compute runtime for (no-such-namespace/t): namespaces \"no-such-namespace\" not found"
        )
    );
    server.stop().await;
}

#[tokio::test]
async fn bad_json_gets_400_and_the_server_stays_up() {
    let mut server = TestServer::start().await;
    let ns = server.namespace("ct-json").await;
    let client = http_client();
    let collection = server.url(&format!("/apis/v1/namespaces/{ns}/compute_templates"));
    for body in [
        "{",
        "{\"name\": }",
        "null",
        "[1, 2]",
        "\"text\"",
        r#"{"name": 5}"#,
        r#"{"cpu": "two"}"#,
        r#"{"cpu": 1.5}"#,
        r#"{"cpu": -1}"#,
        r#"{"tolerations": {"key": "x"}}"#,
        r#"{"memoryUnit": "Gi", "memory_unit": "Mi"}"#,
    ] {
        let (status, text) = post(&client, &collection, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "body {body}: {text}");
        let error: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(error["code"], 3, "body {body}");
        assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    // Unknown fields are ignored, at any depth, and the proto names are accepted too.
    let (status, text) = post(
        &client,
        &collection,
        format!(
            r#"{{"name":"t","namespace":"{ns}","cpu":"1","memory":2,"gpu accelerator":"x","numCpus":3,"tolerations":[{{"key":"k","operator":"Exists","effect":"NoSchedule","extra":1}}],"gpu_accelerator":"example.com/gpu"}}"#
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(
        text,
        format!(
            r#"{{"name":"t","namespace":"{ns}","cpu":1,"memory":2,"gpuAccelerator":"example.com/gpu","tolerations":[{{"key":"k","operator":"Exists","effect":"NoSchedule"}}],"memoryUnit":"Gi"}}"#
        )
    );
    // Bytes after the first JSON value are ignored.
    let (status, _) = post(
        &client,
        &collection,
        format!(r#"{{"name":"t2","namespace":"{ns}","cpu":1,"memory":2}} trailing garbage"#),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    server.stop().await;
}

#[tokio::test]
async fn get_and_delete_check_names() {
    let mut server = TestServer::start().await;
    let ns = server.namespace("ct-names").await;
    let client = http_client();
    let empty = "Compute template name is empty. Please specify a valid value.";
    let expected = (
        StatusCode::BAD_REQUEST,
        error(3, &format!("{empty}: Invalid input error: {empty}")),
    );
    // A trailing slash reaches the RPC with an empty name.
    let url = server.url(&format!("/apis/v1/namespaces/{ns}/compute_templates/"));
    assert_eq!(get(&client, &url).await, expected);
    assert_eq!(delete(&client, &url).await, expected);
    server.stop().await;
}

#[tokio::test]
async fn routing_errors_have_the_gateway_shape() {
    let server = TestServer::start().await;
    let client = http_client();

    let (status, body) = get(&client, &server.url("/apis/v1/nothing-here")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body, error(5, "Not Found"));
    let (status, body) = get(&client, &server.url("/healthz/")).await;
    assert_eq!(
        (status, body),
        (StatusCode::NOT_FOUND, error(5, "Not Found"))
    );
    // ImageTemplateService is defined but not served.
    let (status, _) = get(
        &client,
        &server.url("/apis/v1/namespaces/default/image_templates"),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // A known path with the wrong method: 405 with Allow, body code 12.
    let response = client
        .put(server.url("/apis/v1/namespaces/default/compute_templates"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.headers()["allow"], "POST, GET");
    assert_eq!(
        response.text().await.unwrap(),
        error(12, "Method Not Allowed")
    );

    // Non-canonical paths are redirected (307) before routing, like Go 1.26's ServeMux.
    let response = client
        .get(server.url("/apis/v1/namespaces//compute_templates?x=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TEMPORARY_REDIRECT);
    assert_eq!(
        response.headers()["location"],
        "/apis/v1/namespaces/compute_templates?x=1"
    );

    // Bodies over the limit are refused without being read whole.
    let server_small = TestServer::start_with(&["--http-max-body-bytes=1024"]).await;
    let big = format!(
        r#"{{"name":"t","namespace":"default","cpu":1,"memory":1,"gpuAccelerator":"{}"}}"#,
        "x".repeat(4096)
    );
    let (status, body) = post(
        &client,
        &server_small.url("/apis/v1/namespaces/default/compute_templates"),
        big,
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["code"], 8);
    let (status, _) = get(
        &client,
        &server_small.url("/apis/v1/namespaces/default/compute_templates/t"),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "nothing was written");

    server_small.stop().await;
    server.stop().await;
}
