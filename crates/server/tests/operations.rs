//! Operations surface: health, metrics, swagger, reflection, restarts and graceful shutdown.

mod support;

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use support::{TestServer, http_client};
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

#[tokio::test]
async fn healthz_answers_200_with_an_empty_body() {
    let server = TestServer::start().await;
    let client = http_client();
    for method in [
        reqwest::Method::GET,
        reqwest::Method::HEAD,
        reqwest::Method::POST,
    ] {
        let response = client
            .request(method.clone(), server.url("/healthz"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{method}");
        assert_eq!(response.text().await.unwrap(), "");
    }
    server.stop().await;
}

fn counter(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find(|line| line.starts_with(series))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("series {series} missing from:\n{metrics}"))
}

#[tokio::test]
async fn metrics_count_http_and_grpc_calls() {
    let server = TestServer::start().await;
    let client = http_client();
    let metrics_text = || async {
        client
            .get(server.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    let started = r#"grpc_server_started_total{grpc_type="unary",grpc_service="proto.ComputeTemplateService",grpc_method="GetComputeTemplate"}"#;
    let not_found = r#"grpc_server_handled_total{grpc_type="unary",grpc_service="proto.ComputeTemplateService",grpc_method="GetComputeTemplate",grpc_code="NotFound"}"#;
    let text = metrics_text().await;
    assert_eq!(counter(&text, started), 0.0);
    assert_eq!(counter(&text, not_found), 0.0);
    assert!(text.contains("grpc_server_handled_total{grpc_type=\"unary\",grpc_service=\"proto.ClusterService\",grpc_method=\"CreateCluster\",grpc_code=\"OK\"} 0"));

    // One call over HTTP, one over gRPC.
    let response = client
        .get(server.url("/apis/v1/namespaces/default/compute_templates/missing"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let mut grpc =
        kuberay_api::proto::compute_template_service_client::ComputeTemplateServiceClient::connect(
            server.grpc.clone(),
        )
        .await
        .unwrap();
    let _ = grpc
        .get_compute_template(kuberay_api::proto::GetComputeTemplateRequest {
            name: "missing".into(),
            namespace: "default".into(),
        })
        .await
        .unwrap_err();

    let text = metrics_text().await;
    assert_eq!(counter(&text, started), 2.0);
    assert_eq!(counter(&text, not_found), 2.0);
    assert!(text.contains("grpc_server_handling_seconds_bucket"));
    server.stop().await;
}

#[tokio::test]
async fn swagger_documents_and_ui_are_served() {
    let server = TestServer::start().await;
    let client = http_client();
    for name in [
        "cluster.swagger.json",
        "config.swagger.json",
        "job.swagger.json",
        "serve.swagger.json",
        "job_submission.swagger.json",
        "error.swagger.json",
        "kuberay_api.swagger.json",
    ] {
        let response = client
            .get(server.url(&format!("/swagger/{name}")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{name}");
        let doc: Value = response.json().await.unwrap();
        assert_eq!(doc["swagger"], "2.0", "{name}");
    }
    let config: Value = client
        .get(server.url("/swagger/config.swagger.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let paths = config["paths"].as_object().unwrap();
    assert!(paths.contains_key("/apis/v1/namespaces/{namespace}/compute_templates"));
    assert!(paths.contains_key("/apis/v1/namespaces/{namespace}/compute_templates/{name}"));
    assert!(paths.contains_key("/apis/v1/compute_templates"));

    let response = client
        .get(server.url("/swagger/other.txt"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);

    let response = client.get(server.url("/swagger-ui")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::TEMPORARY_REDIRECT);
    assert_eq!(response.headers()["location"], "/swagger-ui/");
    let response = client.get(server.url("/swagger-ui/")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.text().await.unwrap().contains("swagger-ui"));
    // The initializer points at our documents, not at a demo API.
    let initializer = client
        .get(server.url("/swagger-ui/swagger-initializer.js"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        initializer.contains("/swagger/kuberay_api.swagger.json"),
        "{initializer}"
    );
    assert!(!initializer.contains("petstore"));
    server.stop().await;
}

async fn channel(server: &TestServer) -> tonic::transport::Channel {
    tonic::transport::Channel::from_shared(server.grpc.clone())
        .unwrap()
        .connect()
        .await
        .unwrap()
}

#[tokio::test]
async fn reflection_lists_the_five_services() {
    let server = TestServer::start().await;
    let mut reflection = ServerReflectionClient::new(channel(&server).await);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = reflection
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let response = responses.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("unexpected reflection answer {response:?}");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for expected in [
        "proto.ClusterService",
        "proto.ComputeTemplateService",
        "proto.RayJobService",
        "proto.RayServeService",
        "proto.RayJobSubmissionService",
        "grpc.health.v1.Health",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} missing from {names:?}"
        );
    }
    assert!(!names.iter().any(|n| n == "proto.ImageTemplateService"));

    // The old reflection protocol answers too.
    let mut old =
        tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient::new(
            channel(&server).await,
        );
    let request = tonic_reflection::pb::v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest::ListServices(
                String::new(),
            ),
        ),
    };
    let mut responses = old
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    assert!(responses.message().await.unwrap().is_some());

    // gRPC health reports SERVING.
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel(&server).await);
    let status = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "proto.ComputeTemplateService".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        status.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
    server.stop().await;
}

#[tokio::test]
async fn templates_survive_a_restart() {
    if support::real_cluster().is_some() {
        return; // The store under test is the embedded one.
    }
    let dir = tempfile::tempdir().unwrap();
    let client = http_client();
    let server = TestServer::start_in(dir.path(), &[]).await;
    let response = client
        .post(server.url("/apis/v1/namespaces/ray-system/compute_templates"))
        .body(r#"{"name":"kept","namespace":"ray-system","cpu":3,"memory":6,"memoryUnit":"Mi"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    server.stop().await;

    let server = TestServer::start_in(dir.path(), &[]).await;
    let response = client
        .get(server.url("/apis/v1/namespaces/ray-system/compute_templates/kept"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.text().await.unwrap(),
        r#"{"name":"kept","namespace":"ray-system","cpu":3,"memory":6,"memoryUnit":"Mi"}"#
    );
    server.stop().await;
}

#[tokio::test]
async fn shutdown_turns_healthz_503_then_stops() {
    let server = TestServer::start_with(&["--shutdown-delay=2s"]).await;
    let client = http_client();
    let health = server.url("/healthz");
    assert_eq!(
        client.get(&health).send().await.unwrap().status(),
        StatusCode::OK
    );
    server.shutdown();
    let mut saw_503 = false;
    for _ in 0..50 {
        match client.get(&health).send().await {
            Ok(response) if response.status() == StatusCode::SERVICE_UNAVAILABLE => {
                saw_503 = true;
                break;
            }
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    assert!(saw_503, "/healthz never answered 503 during shutdown");
    // Requests still in the drain window are served.
    let response = client
        .get(server.url("/apis/v1/namespaces/default/compute_templates"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    tokio::time::timeout(Duration::from_secs(20), server.wait())
        .await
        .expect("the server stops after the delay");
    assert!(client.get(&health).send().await.is_err(), "listener closed");
}

#[tokio::test]
async fn cors_follows_the_configured_origin() {
    let server = TestServer::start_with(&["--cors-allow-origin=https://ui.example.com"]).await;
    let client = http_client();
    let url = server.url("/apis/v1/namespaces/default/compute_templates");

    // Preflight: answered 204 without reaching the API.
    let response = client
        .request(reqwest::Method::OPTIONS, &url)
        .header("Origin", "https://ui.example.com")
        .header("Access-Control-Request-Method", "POST")
        .header("Access-Control-Request-Headers", "content-type")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        response.headers()["access-control-allow-origin"],
        "https://ui.example.com"
    );
    assert_eq!(response.headers()["access-control-allow-methods"], "POST");
    assert_eq!(
        response.headers()["access-control-allow-headers"],
        "content-type"
    );

    // A preflight from another origin gets no allow headers.
    let response = client
        .request(reqwest::Method::OPTIONS, &url)
        .header("Origin", "https://evil.example.com")
        .header("Access-Control-Request-Method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert!(
        response
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );

    // Actual requests carry the allow-origin header.
    let response = client
        .get(&url)
        .header("Origin", "https://ui.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["access-control-allow-origin"],
        "https://ui.example.com"
    );
    // Not on /healthz.
    let response = client
        .get(server.url("/healthz"))
        .header("Origin", "https://ui.example.com")
        .send()
        .await
        .unwrap();
    assert!(
        response
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    server.stop().await;

    // Without the flag, no CORS at all: OPTIONS reaches the gateway.
    let server = TestServer::start().await;
    let response = client
        .request(
            reqwest::Method::OPTIONS,
            server.url("/apis/v1/namespaces/default/compute_templates"),
        )
        .header("Origin", "https://ui.example.com")
        .header("Access-Control-Request-Method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    server.stop().await;
}

#[tokio::test]
async fn local_swagger_path_overrides_the_built_in_documents() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("config.swagger.json"),
        r#"{"swagger":"2.0","info":{"title":"local"}}"#,
    )
    .unwrap();
    let flag = format!("--localSwaggerPath={}", dir.path().display());
    let server = TestServer::start_with(&[flag.as_str()]).await;
    let client = http_client();
    let doc: Value = client
        .get(server.url("/swagger/config.swagger.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["info"]["title"], "local");
    let response = client
        .get(server.url("/swagger/cluster.swagger.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let response = client
        .get(server.url("/swagger/../Cargo.swagger.json"))
        .send()
        .await
        .unwrap();
    assert_ne!(response.status(), StatusCode::OK);
    server.stop().await;
}

#[tokio::test]
async fn embedded_kube_api_shows_what_the_server_stored() {
    if support::real_cluster().is_some() {
        return; // Only the embedded backend has this listener.
    }
    let server = TestServer::start_with(&["--embedded-kube-listen=127.0.0.1:0"]).await;
    let client = http_client();
    let response = client
        .post(server.url("/apis/v1/namespaces/default/compute_templates"))
        .body(r#"{"name":"seen","namespace":"default","cpu":1,"memory":1}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let kube = server.embedded_kube().expect("listener address");
    let config_map: Value = client
        .get(format!("{kube}/api/v1/namespaces/default/configmaps/seen"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        config_map["metadata"]["labels"]["ray.io/config-type"],
        "compute-template"
    );
    assert_eq!(config_map["data"]["cpu"], "1");
    let namespaces: Value = client
        .get(format!("{kube}/api/v1/namespaces"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = namespaces["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["metadata"]["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"default") && names.contains(&"ray-system"),
        "{names:?}"
    );
    server.stop().await;
}
