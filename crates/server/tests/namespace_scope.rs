//! `--namespace`: a server that serves one namespace (the Helm chart's `singleNamespaceInstall`)
//! refuses every request for another namespace before calling Kubernetes, answers list-all calls
//! from its own namespace, and refuses V2 requests across all namespaces.

mod support;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::PostParams;
use kuberay_api::proto::ComputeTemplate;
use kuberay_api::proto::cluster_service_client::ClusterServiceClient;
use kuberay_api::proto::compute_template_service_client::ComputeTemplateServiceClient;
use kuberay_api::proto::{
    DeleteComputeTemplateRequest, GetComputeTemplateRequest, ListAllClustersRequest,
    ListAllComputeTemplatesRequest,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::{TestServer, http_client, send, unique_name};
use tonic::Code;

/// A server restricted to a namespace `served`, with a second namespace `other` beside it; both
/// hold a compute template `base` (the one in `other` written to Kubernetes directly).
async fn restricted_server() -> (TestServer, String, String) {
    let served = unique_name("scope-served");
    let other = unique_name("scope-other");
    let mut server = TestServer::start_with(&[&format!("--namespace={served}")]).await;
    server.create_namespace(&served).await;
    server.create_namespace(&other).await;
    for namespace in [&served, &other] {
        let template = ComputeTemplate {
            name: "base".into(),
            namespace: namespace.clone(),
            cpu: 1,
            memory: 1,
            ..Default::default()
        };
        Api::<ConfigMap>::namespaced(server.kube(), namespace)
            .create(
                &PostParams::default(),
                &kuberay_core::compute_template::to_config_map(&template),
            )
            .await
            .expect("template written");
    }
    (server, served, other)
}

fn cluster_body(namespace: &str, name: &str) -> Value {
    json!({
        "name": name,
        "namespace": namespace,
        "user": "alice",
        "clusterSpec": {
            "headGroupSpec": {"computeTemplate": "base", "image": "rayproject/ray:2.41.0", "rayStartParams": {"dashboard-host": "0.0.0.0"}},
        }
    })
}

fn assert_out_of_scope(status: StatusCode, body: &Value, namespace: &str, served: &str) {
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["code"], 7, "{body}");
    assert_eq!(
        body["message"],
        format!(
            "namespace \"{namespace}\" is outside this API server's scope: it serves namespace \"{served}\" only"
        ),
        "{body}"
    );
}

#[tokio::test]
async fn v1_requests_for_other_namespaces_are_refused_and_change_nothing() {
    let (server, served, other) = restricted_server().await;
    let client = http_client();
    let revision_before = other_namespace_objects(&server, &other).await;

    let requests: Vec<(Method, String, Option<Value>)> = vec![
        (
            Method::GET,
            format!("/apis/v1/namespaces/{other}/compute_templates/base"),
            None,
        ),
        (
            Method::GET,
            format!("/apis/v1/namespaces/{other}/compute_templates"),
            None,
        ),
        (
            Method::DELETE,
            format!("/apis/v1/namespaces/{other}/compute_templates/base"),
            None,
        ),
        (
            Method::POST,
            format!("/apis/v1/namespaces/{other}/compute_templates"),
            Some(json!({"name": "new", "namespace": other, "cpu": 1, "memory": 1})),
        ),
        (
            Method::POST,
            format!("/apis/v1/namespaces/{other}/clusters"),
            Some(cluster_body(&other, "c1")),
        ),
        (
            Method::GET,
            format!("/apis/v1/namespaces/{other}/clusters/c1"),
            None,
        ),
        (
            Method::GET,
            format!("/apis/v1/namespaces/{other}/clusters"),
            None,
        ),
        (
            Method::DELETE,
            format!("/apis/v1/namespaces/{other}/clusters/c1"),
            None,
        ),
        (
            Method::GET,
            format!("/apis/v1/namespaces/{other}/jobs"),
            None,
        ),
        (
            Method::GET,
            format!("/apis/v1/namespaces/{other}/jobs/j1"),
            None,
        ),
        (
            Method::DELETE,
            format!("/apis/v1/namespaces/{other}/jobs/j1"),
            None,
        ),
        (
            Method::GET,
            format!("/apis/v1/namespaces/{other}/services"),
            None,
        ),
        (
            Method::GET,
            format!("/apis/v1/namespaces/{other}/services/s1"),
            None,
        ),
        (
            Method::DELETE,
            format!("/apis/v1/namespaces/{other}/services/s1"),
            None,
        ),
        (
            Method::GET,
            format!("/apis/v1/namespaces/{other}/jobsubmissions/c1"),
            None,
        ),
        (
            Method::POST,
            format!("/apis/v1/namespaces/{other}/jobsubmissions/c1"),
            Some(json!({"entrypoint": "echo hi"})),
        ),
        (
            Method::GET,
            format!("/apis/v1/namespaces/{other}/jobsubmissions/c1/raysubmit_1"),
            None,
        ),
        (
            Method::DELETE,
            format!("/apis/v1/namespaces/{other}/jobsubmissions/c1/raysubmit_1"),
            None,
        ),
    ];
    for (method, path, body) in requests {
        let (status, answer) = send(&client, method.clone(), server.url(&path), body).await;
        assert_out_of_scope(status, &answer, &other, &served);
        eprintln!("{method} {path}: 403");
    }

    // Name checks still come first: an invalid namespace is a client mistake, not a scope matter.
    let (status, body) = send(
        &client,
        Method::GET,
        server.url("/apis/v1/namespaces/Not_A_Namespace/compute_templates/base"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    // Nothing was created or deleted in the other namespace.
    assert_eq!(
        other_namespace_objects(&server, &other).await,
        revision_before
    );

    // The served namespace works as usual.
    let (status, body) = send(
        &client,
        Method::POST,
        server.url(&format!("/apis/v1/namespaces/{served}/clusters")),
        Some(cluster_body(&served, "c1")),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = send(
        &client,
        Method::GET,
        server.url(&format!(
            "/apis/v1/namespaces/{served}/compute_templates/base"
        )),
        None,
    )
    .await;
    assert_eq!(
        (status, &body["name"]),
        (StatusCode::OK, &json!("base")),
        "{body}"
    );
    server.stop().await;
}

/// The names of the ConfigMaps and RayClusters in `namespace`.
async fn other_namespace_objects(server: &TestServer, namespace: &str) -> Vec<String> {
    let mut names: Vec<String> = Api::<ConfigMap>::namespaced(server.kube(), namespace)
        .list(&Default::default())
        .await
        .expect("configmaps listed")
        .items
        .into_iter()
        .filter_map(|c| c.metadata.name)
        .filter(|name| name != "kube-root-ca.crt")
        .collect();
    let clusters = Api::<kuberay_core::crd::RayCluster>::namespaced(server.kube(), namespace)
        .list(&Default::default())
        .await
        .expect("rayclusters listed");
    names.extend(
        clusters
            .items
            .into_iter()
            .filter_map(|c| c.metadata.name.map(|n| format!("raycluster/{n}"))),
    );
    names.sort();
    names
}

#[tokio::test]
async fn list_all_calls_answer_the_served_namespace_only() {
    let (server, served, other) = restricted_server().await;
    let client = http_client();
    for namespace in [&served] {
        let (status, body) = send(
            &client,
            Method::POST,
            server.url(&format!("/apis/v1/namespaces/{namespace}/clusters")),
            Some(cluster_body(namespace, "c1")),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    // A managed cluster in the other namespace, written to Kubernetes directly.
    let mut outside: kuberay_core::crd::RayCluster = serde_json::from_value(json!({
        "apiVersion": "ray.io/v1",
        "kind": "RayCluster",
        "metadata": {"name": "c1", "labels": {"app.kubernetes.io/managed-by": "kuberay-apiserver"}},
        "spec": {"headGroupSpec": {"rayStartParams": {}, "template": {"spec": {"containers": [
            {"name": "ray-head", "image": "rayproject/ray:2.41.0"}
        ]}}}}
    }))
    .unwrap();
    outside.metadata.namespace = Some(other.clone());
    Api::<kuberay_core::crd::RayCluster>::namespaced(server.kube(), &other)
        .create(&PostParams::default(), &outside)
        .await
        .expect("cluster written");

    for (path, list) in [
        ("/apis/v1/compute_templates", "computeTemplates"),
        ("/apis/v1/clusters", "clusters"),
    ] {
        let (status, body) = send(&client, Method::GET, server.url(path), None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let namespaces: Vec<&str> = body[list]
            .as_array()
            .unwrap_or_else(|| panic!("{path}: {body}"))
            .iter()
            .map(|item| item["namespace"].as_str().unwrap())
            .collect();
        assert_eq!(namespaces, vec![served.as_str()], "{path}: {body}");
    }
    for path in ["/apis/v1/jobs", "/apis/v1/services"] {
        let (status, body) = send(&client, Method::GET, server.url(path), None).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
    }

    let mut grpc = ComputeTemplateServiceClient::connect(server.grpc.clone())
        .await
        .unwrap();
    let all = grpc
        .list_all_compute_templates(ListAllComputeTemplatesRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        all.compute_templates
            .iter()
            .map(|t| t.namespace.as_str())
            .collect::<Vec<_>>(),
        vec![served.as_str()]
    );
    let mut clusters = ClusterServiceClient::connect(server.grpc.clone())
        .await
        .unwrap();
    let all = clusters
        .list_all_clusters(ListAllClustersRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(all.clusters.len(), 1, "{all:?}");
    server.stop().await;
}

#[tokio::test]
async fn grpc_requests_for_other_namespaces_are_permission_denied() {
    let (server, served, other) = restricted_server().await;
    let mut grpc = ComputeTemplateServiceClient::connect(server.grpc.clone())
        .await
        .unwrap();
    let refused = grpc
        .get_compute_template(GetComputeTemplateRequest {
            name: "base".into(),
            namespace: other.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    assert!(refused.message().contains(&served), "{refused:?}");
    let refused = grpc
        .delete_compute_template(DeleteComputeTemplateRequest {
            name: "base".into(),
            namespace: other.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    assert!(
        Api::<ConfigMap>::namespaced(server.kube(), &other)
            .get_opt("base")
            .await
            .unwrap()
            .is_some(),
        "the other namespace's template is still there"
    );
    let found = grpc
        .get_compute_template(GetComputeTemplateRequest {
            name: "base".into(),
            namespace: served.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(found.namespace, served);
    server.stop().await;
}

#[tokio::test]
async fn v2_requests_outside_the_served_namespace_are_forbidden() {
    let (server, served, other) = restricted_server().await;
    let client = http_client();
    let forbidden = [
        (
            Method::GET,
            format!("/apis/ray.io/v1/namespaces/{other}/rayclusters"),
        ),
        (
            Method::GET,
            format!("/apis/ray.io/v1/namespaces/{other}/rayclusters/c1"),
        ),
        (
            Method::DELETE,
            format!("/apis/ray.io/v1/namespaces/{other}/rayclusters"),
        ),
        (
            Method::GET,
            format!("/apis/ray.io/v1/watch/namespaces/{other}/rayclusters"),
        ),
        (
            Method::GET,
            format!("/apis/ray.io/v1/namespaces/{other}/rayclusters?watch=true"),
        ),
        (Method::GET, "/apis/ray.io/v1/rayclusters".to_string()),
        (
            Method::GET,
            "/apis/ray.io/v1/rayjobs?watch=true".to_string(),
        ),
        (Method::GET, "/apis/ray.io/v1/watch/rayservices".to_string()),
        (Method::DELETE, "/apis/ray.io/v1/rayclusters".to_string()),
        (
            Method::GET,
            format!("/apis/events.k8s.io/v1/namespaces/{other}/events"),
        ),
        (
            Method::GET,
            format!("/api/v1/namespaces/{other}/services/c1-head-svc:8265/proxy/api/version"),
        ),
        // An encoded namespace is still that namespace.
        (
            Method::GET,
            format!(
                "/apis/ray.io/v1/namespaces/{}/rayclusters",
                other.replace('-', "%2D")
            ),
        ),
    ];
    for (method, path) in forbidden {
        let (status, body) = send(&client, method.clone(), server.url(&path), None).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}: {body}");
        assert_eq!(body["kind"], "Status", "{body}");
        assert_eq!(body["reason"], "Forbidden", "{body}");
        assert_eq!(body["code"], 403, "{body}");
        assert!(
            body["message"].as_str().unwrap().contains(&served),
            "{method} {path}: {body}"
        );
    }
    let (status, body) = send(
        &client,
        Method::POST,
        server.url(&format!("/apis/ray.io/v1/namespaces/{other}/rayclusters")),
        Some(json!({"apiVersion": "ray.io/v1", "kind": "RayCluster", "metadata": {"name": "c2"}, "spec": {}})),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        other_namespace_objects(&server, &other)
            .await
            .iter()
            .all(|n| !n.starts_with("raycluster/"))
    );

    // The served namespace is proxied as usual.
    for path in [
        format!("/apis/ray.io/v1/namespaces/{served}/rayclusters"),
        format!("/apis/events.k8s.io/v1/namespaces/{served}/events"),
    ] {
        let (status, body) = send(&client, Method::GET, server.url(&path), None).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
    }
    server.stop().await;
}

#[tokio::test]
async fn an_invalid_namespace_flag_is_refused_at_start() {
    let error = <kuberay_apiserver::Config as clap::Parser>::try_parse_from([
        "kuberay-apiserver",
        "--namespace=Not_Valid",
    ])
    .unwrap_err();
    assert!(error.to_string().contains("RFC 1123"), "{error}");
}
