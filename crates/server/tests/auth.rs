//! Authentication by a shared token (`--auth-token`): every V1 and V2 call over HTTP and gRPC
//! needs it, a refused call changes nothing, and health, readiness, metrics, Swagger and gRPC
//! health stay open.

mod support;

use kuberay_api::proto::compute_template_service_client::ComputeTemplateServiceClient;
use kuberay_api::proto::{
    ComputeTemplate, CreateComputeTemplateRequest, ListComputeTemplatesRequest,
};
use reqwest::Method;
use serde_json::{Value, json};
use support::{TestServer, http_client};
use tonic::Code;
use tonic::metadata::MetadataValue;

const TOKEN: &str = "s3cret-Token";

async fn call(
    server: &TestServer,
    method: Method,
    path: &str,
    authorization: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let (status, body) = support::send_as(
        &http_client(),
        method,
        server.url(path),
        authorization,
        body,
    )
    .await;
    (status.as_u16(), body)
}

fn template(ns: &str, name: &str) -> Value {
    json!({"name": name, "namespace": ns, "cpu": 1, "memory": 1})
}

#[tokio::test]
async fn http_calls_need_the_token_and_a_refused_call_changes_nothing() {
    let flag = format!("--auth-token={TOKEN}");
    let mut server = TestServer::start_with(&[&flag]).await;
    let ns = server.namespace("auth").await;
    let templates = format!("/apis/v1/namespaces/{ns}/compute_templates");

    for authorization in [
        None,
        Some("wrong"),
        Some("Bearer wrong"),
        Some("Basic s3cret-Token"),
    ] {
        let (status, body) = call(
            &server,
            Method::POST,
            &templates,
            authorization,
            Some(template(&ns, "refused")),
        )
        .await;
        assert_eq!(status, 401, "{authorization:?}: {body}");
        assert_eq!(body, json!({"code": 16, "message": "Request unauthorized"}));
    }
    // As KubeRay's security proxy takes it, and as a bearer token.
    for (authorization, name) in [
        (TOKEN.to_string(), "plain"),
        (format!("Bearer {TOKEN}"), "bearer"),
    ] {
        let (status, body) = call(
            &server,
            Method::POST,
            &templates,
            Some(&authorization),
            Some(template(&ns, name)),
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }
    let (status, body) = call(&server, Method::GET, &templates, Some(TOKEN), None).await;
    assert_eq!(status, 200, "{body}");
    let mut names: Vec<&str> = body["computeTemplates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["bearer", "plain"],
        "the refused creates stored nothing"
    );

    // Reads and deletes too, on V1 and V2 (refused as kube-apiserver refuses).
    let (status, _) = call(
        &server,
        Method::GET,
        &format!("{templates}/plain"),
        None,
        None,
    )
    .await;
    assert_eq!(status, 401);
    let (status, _) = call(
        &server,
        Method::DELETE,
        &format!("{templates}/plain"),
        None,
        None,
    )
    .await;
    assert_eq!(status, 401);
    let v2 = format!("/apis/ray.io/v1/namespaces/{ns}/rayclusters");
    let (status, body) = call(&server, Method::DELETE, &v2, None, None).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["kind"], "Status");
    assert_eq!(body["reason"], "Unauthorized");
    let (status, body) = call(
        &server,
        Method::GET,
        &v2,
        Some(&format!("Bearer {TOKEN}")),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = call(
        &server,
        Method::GET,
        &format!("{templates}/plain"),
        Some(TOKEN),
        None,
    )
    .await;
    assert_eq!(status, 200, "the refused delete deleted nothing");

    // The Swagger documents declare the token, so that Swagger UI offers to send it.
    let (_, document) = call(
        &server,
        Method::GET,
        "/swagger/kuberay_api.swagger.json",
        None,
        None,
    )
    .await;
    assert_eq!(
        document["securityDefinitions"]["token"]["name"],
        "Authorization"
    );
    assert_eq!(document["security"], json!([{"token": []}]));
    assert!(document["paths"].as_object().is_some_and(|p| !p.is_empty()));

    // Open: liveness, readiness, metrics, the Swagger documents and UI.
    for path in [
        "/healthz",
        "/readyz",
        "/metrics",
        "/swagger-ui/",
        "/swagger/kuberay_api.swagger.json",
    ] {
        let (status, body) = call(&server, Method::GET, path, None, None).await;
        assert_eq!(status, 200, "{path}: {body}");
    }
    server.stop().await;
}

#[tokio::test]
async fn grpc_calls_need_the_token_and_health_stays_open() {
    let flag = format!("--auth-token={TOKEN}");
    let mut server = TestServer::start_with(&[&flag]).await;
    let ns = server.namespace("auth-grpc").await;
    let mut client = ComputeTemplateServiceClient::connect(server.grpc.clone())
        .await
        .unwrap();
    let create = |authorization: Option<String>, name: &str| {
        let mut request = tonic::Request::new(CreateComputeTemplateRequest {
            compute_template: Some(ComputeTemplate {
                name: name.into(),
                namespace: ns.clone(),
                cpu: 1,
                memory: 1,
                ..Default::default()
            }),
            namespace: ns.clone(),
        });
        if let Some(value) = authorization {
            request
                .metadata_mut()
                .insert("authorization", MetadataValue::try_from(value).unwrap());
        }
        request
    };
    for authorization in [None, Some("wrong".to_string())] {
        let status = client
            .create_compute_template(create(authorization, "refused"))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated);
        assert_eq!(status.message(), "Request unauthorized");
    }
    client
        .create_compute_template(create(Some(TOKEN.into()), "plain"))
        .await
        .unwrap();
    client
        .create_compute_template(create(Some(format!("Bearer {TOKEN}")), "bearer"))
        .await
        .unwrap();
    let mut list = tonic::Request::new(ListComputeTemplatesRequest {
        namespace: ns.clone(),
    });
    list.metadata_mut()
        .insert("authorization", MetadataValue::try_from(TOKEN).unwrap());
    let mut names: Vec<String> = client
        .list_compute_templates(list)
        .await
        .unwrap()
        .into_inner()
        .compute_templates
        .into_iter()
        .map(|t| t.name)
        .collect();
    names.sort();
    assert_eq!(names, ["bearer", "plain"]);

    let channel = tonic::transport::Channel::from_shared(server.grpc.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    let answer = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        answer.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
    server.stop().await;
}

#[tokio::test]
async fn a_browser_may_send_the_token() {
    let flag = format!("--auth-token={TOKEN}");
    let server =
        TestServer::start_with(&[&flag, "--cors-allow-origin=https://ui.example.com"]).await;
    let url = server.url("/apis/v1/namespaces/default/compute_templates");
    let client = reqwest::Client::new();
    // The preflight carries no credentials: answered, allowing the Authorization header.
    let response = client
        .request(Method::OPTIONS, &url)
        .header("Origin", "https://ui.example.com")
        .header("Access-Control-Request-Method", "GET")
        .header("Access-Control-Request-Headers", "authorization")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    assert_eq!(
        response.headers()["access-control-allow-headers"],
        "authorization"
    );
    // A refusal is readable by the page (it carries the CORS headers).
    let response = client
        .get(&url)
        .header("Origin", "https://ui.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(
        response.headers()["access-control-allow-origin"],
        "https://ui.example.com"
    );
    let response = client
        .get(&url)
        .header("Origin", "https://ui.example.com")
        .header("Authorization", format!("Bearer {TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn metrics_need_the_token_when_asked() {
    let flag = format!("--auth-token={TOKEN}");
    let server = TestServer::start_with(&[&flag, "--auth-metrics"]).await;
    let (status, _) = call(&server, Method::GET, "/metrics", None, None).await;
    assert_eq!(status, 401);
    let (status, body) = call(&server, Method::GET, "/metrics", Some(TOKEN), None).await;
    assert_eq!(status, 200);
    assert!(body.as_str().unwrap().contains("grpc_server_started_total"));
    let (status, _) = call(&server, Method::GET, "/healthz", None, None).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_path_prefix_limits_the_token_to_its_http_paths() {
    let flag = format!("--auth-token={TOKEN}");
    let mut server = TestServer::start_with(&[&flag, "--auth-path-prefix=/apis/v1/"]).await;
    let ns = server.namespace("auth-prefix").await;
    // Under the prefix: the token is needed.
    let templates = format!("/apis/v1/namespaces/{ns}/compute_templates");
    let (status, _) = call(&server, Method::GET, &templates, None, None).await;
    assert_eq!(status, 401);
    let (status, _) = call(&server, Method::GET, &templates, Some(TOKEN), None).await;
    assert_eq!(status, 200);
    // Outside it (V2 here), KubeRay's security proxy let requests through, and so does this.
    let clusters = format!("/apis/ray.io/v1/namespaces/{ns}/rayclusters");
    let (status, body) = call(&server, Method::GET, &clusters, None, None).await;
    assert_eq!(status, 200, "{body}");
    // gRPC calls always need it.
    let mut client = ComputeTemplateServiceClient::connect(server.grpc.clone())
        .await
        .unwrap();
    let refused = client
        .list_compute_templates(ListComputeTemplatesRequest { namespace: ns })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated);
    server.stop().await;
}
