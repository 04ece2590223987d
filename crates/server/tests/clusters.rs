//! ClusterService over HTTP and gRPC, through the real router and services.

mod support;

use kube::Api;
use kube::api::{DynamicObject, GroupVersionKind, PostParams};
use kube::discovery::ApiResource;
use reqwest::StatusCode;
use serde_json::{Value, json};
use support::{TestServer, http_client, send};
use tonic::Code;

fn ray_clusters(server: &TestServer, ns: &str) -> Api<DynamicObject> {
    let resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("ray.io", "v1", "RayCluster"),
        "rayclusters",
    );
    Api::namespaced_with(server.kube(), ns, &resource)
}

async fn create_template(client: &reqwest::Client, server: &TestServer, ns: &str, name: &str) {
    let response = client
        .post(server.url(&format!("/apis/v1/namespaces/{ns}/compute_templates")))
        .body(
            json!({"name": name, "namespace": ns, "cpu": 2, "memory": 4, "gpu": 1,
                   "extendedResources": {"custom.io/special-resource": 2},
                   "tolerations": [{"key": "ray.io/node-type", "operator": "Equal", "value": "worker", "effect": "NoSchedule"}]})
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

fn cluster_body(ns: &str, name: &str, template: &str) -> Value {
    json!({
        "name": name,
        "namespace": ns,
        "user": "alice",
        "version": "2.41.0",
        "environment": "DEV",
        "annotations": {"team": "ml"},
        "clusterSpec": {
            "headGroupSpec": {
                "computeTemplate": template,
                "image": "rayproject/ray:2.41.0-py311",
                "serviceType": "ClusterIP",
                "rayStartParams": {"dashboard-host": "0.0.0.0", "metrics-export-port": "8080"},
                "environment": {"values": {"AWS_KEY": "123"}},
                "volumes": [{"name": "data", "mountPath": "/data", "volumeType": "EMPTY_DIR", "storage": "1Gi"}]
            },
            "workerGroupSpec": [{
                "groupName": "small",
                "computeTemplate": template,
                "replicas": 1,
                "minReplicas": 0,
                "maxReplicas": 5,
                "rayStartParams": {"node-ip-address": "$MY_POD_IP"}
            }]
        }
    })
}

#[tokio::test]
async fn cluster_lifecycle_over_http() {
    let mut server = TestServer::start().await;
    let ns = server.namespace("clusters").await;
    let client = http_client();
    create_template(&client, &server, &ns, "t2").await;
    let collection = server.url(&format!("/apis/v1/namespaces/{ns}/clusters"));

    let (status, created) = send(
        &client,
        reqwest::Method::POST,
        collection.clone(),
        Some(cluster_body(&ns, "c1", "t2")),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    assert_eq!(created["name"], "c1");
    assert_eq!(created["namespace"], ns.as_str());
    assert_eq!(created["user"], "alice");
    assert_eq!(created["version"], "2.41.0");
    assert!(
        created.get("environment").is_none(),
        "DEV is the zero value"
    );
    assert_eq!(created["annotations"]["team"], "ml");
    assert!(created["annotations"]["ray.io/creation-timestamp"].is_string());
    assert!(created["createdAt"].as_str().unwrap().ends_with('Z'));
    let head = &created["clusterSpec"]["headGroupSpec"];
    assert_eq!(head["computeTemplate"], "t2");
    assert_eq!(head["image"], "rayproject/ray:2.41.0-py311");
    assert_eq!(head["environment"]["values"]["AWS_KEY"], "123");
    assert_eq!(head["volumes"][0]["volumeType"], 5);
    assert_eq!(head["volumes"][0]["storage"], "1Gi");
    let worker = &created["clusterSpec"]["workerGroupSpec"][0];
    assert_eq!(worker["groupName"], "small");
    assert_eq!(worker["replicas"], 1);
    assert_eq!(
        worker["minReplicas"], 1,
        "minReplicas 0 reads back as replicas"
    );
    assert_eq!(worker["maxReplicas"], 5);

    // The RayCluster object carries the Go server's labels and the template's resources.
    let object = ray_clusters(&server, &ns).get("c1").await.unwrap();
    let labels = object.metadata.labels.clone().unwrap();
    for (key, value) in [
        ("ray.io/cluster-name", "c1"),
        ("ray.io/user", "alice"),
        ("ray.io/version", "2.41.0"),
        ("ray.io/environment", "DEV"),
        ("app.kubernetes.io/name", "kuberay"),
        ("app.kubernetes.io/managed-by", "kuberay-apiserver"),
    ] {
        assert_eq!(labels[key], value, "label {key}");
    }
    let container = &object.data["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["name"], "ray-head");
    assert_eq!(
        container["resources"]["limits"],
        json!({"cpu": "2", "memory": "4Gi", "nvidia.com/gpu": "1", "custom.io/special-resource": "2"})
    );

    // An event about the cluster shows up in get and list.
    let event: k8s_openapi::api::events::v1::Event = serde_json::from_value(json!({
        "metadata": {"name": "c1.1788", "namespace": ns},
        "eventTime": "2024-01-01T00:00:00.000000Z",
        "reason": "Created", "note": "created head pod", "type": "Normal", "action": "Create",
        "reportingController": "ray-operator", "reportingInstance": "ray-operator",
        "regarding": {"apiVersion": "ray.io/v1", "kind": "RayCluster", "name": "c1", "namespace": ns}
    }))
    .unwrap();
    Api::<k8s_openapi::api::events::v1::Event>::namespaced(server.kube(), &ns)
        .create(&PostParams::default(), &event)
        .await
        .unwrap();
    // Written by another client: it shows up once the server's event watch delivers it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let got = loop {
        let (status, got) = send(
            &client,
            reqwest::Method::GET,
            format!("{collection}/c1"),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        if got["events"][0]["id"] == "c1.1788" || std::time::Instant::now() > deadline {
            break got;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(got["events"][0]["id"], "c1.1788");
    assert_eq!(got["events"][0]["name"], "c1-c1.1788");
    assert_eq!(got["events"][0]["message"], "created head pod");
    assert_eq!(got["events"][0]["firstTimestamp"], "2024-01-01T00:00:00Z");
    let (status, listed) = send(&client, reqwest::Method::GET, collection.clone(), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed["clusters"][0]["events"][0]["id"], "c1.1788");
    assert!(listed.get("continue").is_none());
    let (status, all) = send(
        &client,
        reqwest::Method::GET,
        server.url("/apis/v1/clusters"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        all["clusters"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["namespace"] == ns.as_str() && c["name"] == "c1")
    );

    // Delete, then 404.
    let (status, body) = send(
        &client,
        reqwest::Method::DELETE,
        format!("{collection}/c1"),
        None,
    )
    .await;
    assert_eq!((status, body), (StatusCode::OK, json!({})));
    let (status, body) = send(
        &client,
        reqwest::Method::GET,
        format!("{collection}/c1"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        body["message"],
        "Cluster c1 not found: Get cluster failed.: NotFoundError: Cluster c1 not found: rayclusters.ray.io \"c1\" not found"
    );
    server.stop().await;
}

#[tokio::test]
async fn create_errors() {
    let mut server = TestServer::start().await;
    let ns = server.namespace("cluster-errors").await;
    let client = http_client();
    let collection = server.url(&format!("/apis/v1/namespaces/{ns}/clusters"));
    let wrap = "Validate create cluster request failed.";
    let invalid = |text: &str| format!("{text}: {wrap}: Invalid input error: {text}");

    let mut no_user = cluster_body(&ns, "c", "t");
    no_user["user"] = json!("");
    let mut no_head = cluster_body(&ns, "c", "t");
    no_head["clusterSpec"] = json!({});
    let mut bad_worker = cluster_body(&ns, "c", "t");
    bad_worker["clusterSpec"]["workerGroupSpec"][0]["maxReplicas"] = json!(0);
    let cases = [
        (
            json!({}),
            invalid(
                "The namespace in the request is different from the namespace in the cluster definition.",
            ),
        ),
        (
            json!({"namespace": ns}),
            invalid("Cluster name is empty. Please specify a valid value."),
        ),
        (
            no_user,
            invalid("User who create the cluster is empty. Please specify a valid value."),
        ),
        (
            no_head,
            invalid(
                "Cluster Spec Object requires HeadGroupSpec to be populated. Please specify one.",
            ),
        ),
        (
            bad_worker,
            invalid("WorkerNodeSpec 0 MaxReplicas can not be 0. Please specify a valid value."),
        ),
    ];
    for (body, message) in cases {
        let (status, error) = send(
            &client,
            reqwest::Method::POST,
            collection.clone(),
            Some(body.clone()),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(error, json!({"code": 3, "message": message}), "{body}");
    }

    // A missing compute template: FAILED_PRECONDITION naming it.
    let (status, error) = send(
        &client,
        reqwest::Method::POST,
        collection.clone(),
        Some(cluster_body(&ns, "c", "no-such-template")),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error["code"], 9);
    assert!(
        error["message"].as_str().unwrap().starts_with(&format!(
            "Compute template no-such-template does not exist in namespace {ns}"
        )),
        "{error}"
    );

    // A bad volume quantity: INVALID_ARGUMENT with the Go server's layering.
    create_template(&client, &server, &ns, "t").await;
    let mut bad_volume = cluster_body(&ns, "c", "t");
    bad_volume["clusterSpec"]["headGroupSpec"]["volumes"][0]["storage"] = json!("lots");
    let (status, error) = send(
        &client,
        reqwest::Method::POST,
        collection.clone(),
        Some(bad_volume),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        error["message"],
        "Failed to create a Ray cluster: Create Cluster failed.: InvalidInputError: Failed to create a Ray cluster: storage for empty dir volume is not specified correctly"
    );

    // Nothing was created by any of the failures.
    let (_, listed) = send(&client, reqwest::Method::GET, collection.clone(), None).await;
    assert_eq!(listed, json!({}));

    // Duplicate names: ALREADY_EXISTS.
    let body = cluster_body(&ns, "dup", "t");
    let (status, _) = send(
        &client,
        reqwest::Method::POST,
        collection.clone(),
        Some(body.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, error) = send(
        &client,
        reqwest::Method::POST,
        collection.clone(),
        Some(body),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{error}");
    assert_eq!(error["code"], 6);
    server.stop().await;
}

#[tokio::test]
async fn unmanaged_clusters_are_invisible_and_not_found() {
    let mut server = TestServer::start().await;
    let ns = server.namespace("unmanaged").await;
    let client = http_client();
    let foreign: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "ray.io/v1", "kind": "RayCluster",
        "metadata": {"name": "foreign", "namespace": ns},
        "spec": {"headGroupSpec": {"rayStartParams": {}, "template": {"spec": {"containers": [{"name": "ray-head", "image": "rayproject/ray"}]}}}}
    }))
    .unwrap();
    ray_clusters(&server, &ns)
        .create(&PostParams::default(), &foreign)
        .await
        .unwrap();
    let url = server.url(&format!("/apis/v1/namespaces/{ns}/clusters/foreign"));
    let (status, error) = send(&client, reqwest::Method::GET, url.clone(), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        error["message"],
        "Get cluster failed.: RayCluster with name foreign not managed by kuberay-apiserver"
    );
    let (status, _) = send(&client, reqwest::Method::DELETE, url, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        ray_clusters(&server, &ns).get("foreign").await.is_ok(),
        "not deleted"
    );
    let (_, listed) = send(
        &client,
        reqwest::Method::GET,
        server.url(&format!("/apis/v1/namespaces/{ns}/clusters")),
        None,
    )
    .await;
    assert_eq!(listed, json!({}));
    server.stop().await;
}

#[tokio::test]
async fn pages_return_every_cluster_exactly_once() {
    let mut server = TestServer::start().await;
    let ns = server.namespace("paging").await;
    let client = http_client();
    create_template(&client, &server, &ns, "t").await;
    let collection = server.url(&format!("/apis/v1/namespaces/{ns}/clusters"));
    let mut expected = Vec::new();
    for i in 0..7 {
        let name = format!("c{i}");
        let (status, _) = send(
            &client,
            reqwest::Method::POST,
            collection.clone(),
            Some(cluster_body(&ns, &name, "t")),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        expected.push(name);
    }
    let mut seen = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let url = format!("{collection}?limit=3&continue={token}");
        let (status, page) = send(&client, reqwest::Method::GET, url, None).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        pages += 1;
        for cluster in page["clusters"].as_array().cloned().unwrap_or_default() {
            seen.push(cluster["name"].as_str().unwrap().to_string());
        }
        match page.get("continue").and_then(Value::as_str) {
            Some(next) if !next.is_empty() => token = next.to_string(),
            _ => break,
        }
        assert!(pages < 10, "paging does not end");
    }
    assert_eq!(seen, expected);
    assert!(pages >= 3);

    // A malformed token is refused by Kubernetes: a client error (the Go server answers 500).
    let (status, body) = send(
        &client,
        reqwest::Method::GET,
        format!("{collection}?limit=3&continue=garbage"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], 3);
    server.stop().await;
}

#[tokio::test]
async fn cluster_rpcs_over_grpc() {
    use kuberay_api::proto::cluster_service_client::ClusterServiceClient;
    use kuberay_api::proto::*;

    let mut server = TestServer::start().await;
    let ns = server.namespace("cluster-grpc").await;
    let client = http_client();
    create_template(&client, &server, &ns, "t").await;
    let mut grpc = ClusterServiceClient::connect(server.grpc.clone())
        .await
        .unwrap();

    let err = grpc
        .create_cluster(CreateClusterRequest {
            cluster: None,
            namespace: ns.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);

    let cluster: Cluster = serde_json::from_value(cluster_body(&ns, "g1", "t")).unwrap();
    let created = grpc
        .create_cluster(CreateClusterRequest {
            cluster: Some(cluster),
            namespace: ns.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(created.name, "g1");
    let got = grpc
        .get_cluster(GetClusterRequest {
            name: "g1".into(),
            namespace: ns.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.cluster_spec, created.cluster_spec);
    let listed = grpc
        .list_cluster(ListClustersRequest {
            namespace: ns.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.clusters.len(), 1);
    grpc.delete_cluster(DeleteClusterRequest {
        name: "g1".into(),
        namespace: ns.clone(),
    })
    .await
    .unwrap();
    let err = grpc
        .delete_cluster(DeleteClusterRequest {
            name: "g1".into(),
            namespace: ns.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    server.stop().await;
}
