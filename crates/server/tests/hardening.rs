//! Hostile and careless input: names that would change which object a Kubernetes request reaches,
//! objects that cannot be converted, malformed paging tokens, an unreachable Kubernetes API.
//! Each case checks the answer a client gets and that nothing else changed.

mod support;

use kube::Api;
use kube::api::{DynamicObject, GroupVersionKind, PostParams};
use kube::discovery::ApiResource;
use kuberay_api::proto::cluster_service_client::ClusterServiceClient;
use kuberay_api::proto::compute_template_service_client::ComputeTemplateServiceClient;
use kuberay_api::proto::{
    DeleteComputeTemplateRequest, GetComputeTemplateRequest, ListClustersRequest,
    ListComputeTemplatesRequest,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::{TestServer, http_client, send};
use tonic::Code;

fn ray_api(server: &TestServer, ns: &str, kind: &str, plural: &str) -> Api<DynamicObject> {
    let resource =
        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("ray.io", "v1", kind), plural);
    Api::namespaced_with(server.kube(), ns, &resource)
}

async fn create_template(client: &reqwest::Client, server: &TestServer, ns: &str, name: &str) {
    let (status, body) = send(
        client,
        Method::POST,
        server.url(&format!("/apis/v1/namespaces/{ns}/compute_templates")),
        Some(json!({"name": name, "namespace": ns, "cpu": 1, "memory": 1})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn template_names(client: &reqwest::Client, server: &TestServer, ns: &str) -> Vec<String> {
    let (status, body) = send(
        client,
        Method::GET,
        server.url(&format!("/apis/v1/namespaces/{ns}/compute_templates")),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["computeTemplates"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|t| t["name"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn assert_invalid(status: StatusCode, body: &Value, field: &str) {
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["code"], 3, "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(message.contains(field), "{message}");
}

/// Names that would cut the path (`#`), add a query (`?`), climb (`..`) or break the URI.
/// (`..` is tested over gRPC: HTTP clients resolve it before sending.)
const HOSTILE_NAMES: [&str; 7] = [
    "base%23zzz",
    "base%3FdryRun=All",
    "%3Fwatch=true",
    "base%20x",
    "base%0Ax",
    "Base",
    "base.",
];

#[tokio::test]
async fn hostile_names_never_reach_another_object() {
    let mut server = TestServer::start().await;
    let ns = server.namespace("names").await;
    let client = http_client();
    create_template(&client, &server, &ns, "base").await;

    for name in HOSTILE_NAMES {
        for method in [Method::GET, Method::DELETE] {
            let url = server.url(&format!(
                "/apis/v1/namespaces/{ns}/compute_templates/{name}"
            ));
            let (status, body) = send(&client, method.clone(), url, None).await;
            assert_invalid(status, &body, "Compute template name");
        }
        for (collection, field) in [
            ("clusters", "Cluster name"),
            ("jobs", "Job name"),
            ("services", "Service name"),
        ] {
            for method in [Method::GET, Method::DELETE] {
                let url = server.url(&format!("/apis/v1/namespaces/{ns}/{collection}/{name}"));
                let (status, body) = send(&client, method, url, None).await;
                assert_invalid(status, &body, field);
            }
        }
        // The same names in the namespace position.
        let url = server.url(&format!(
            "/apis/v1/namespaces/{name}/compute_templates/base"
        ));
        let (status, body) = send(&client, Method::DELETE, url, None).await;
        assert_invalid(status, &body, "namespace");
        let url = server.url(&format!("/apis/v1/namespaces/{name}/clusters"));
        let (status, body) = send(&client, Method::GET, url, None).await;
        assert_invalid(status, &body, "namespace");
    }
    // An encoded slash splits the path like a plain one: no route has that many segments.
    let url = server.url(&format!(
        "/apis/v1/namespaces/{ns}/compute_templates/x%2F..%2Fbase"
    ));
    let (status, _) = send(&client, Method::DELETE, url, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(template_names(&client, &server, &ns).await, ["base"]);

    // Creates with such names store nothing.
    let (status, body) = send(
        &client,
        Method::POST,
        server.url(&format!("/apis/v1/namespaces/{ns}/compute_templates")),
        Some(json!({"name": "base#zzz", "namespace": ns, "cpu": 1, "memory": 1})),
    )
    .await;
    assert_invalid(status, &body, "Compute template name");
    let (status, body) = send(
        &client,
        Method::POST,
        server.url(&format!("/apis/v1/namespaces/{ns}/clusters")),
        Some(
            json!({"name": "c?x=1", "namespace": ns, "user": "u", "clusterSpec": {
            "headGroupSpec": {"computeTemplate": "base", "rayStartParams": {"a": "b"}}}}),
        ),
    )
    .await;
    assert_invalid(status, &body, "Cluster name");
    // A compute template referenced by a cluster is a name too.
    let (status, body) = send(
        &client,
        Method::POST,
        server.url(&format!("/apis/v1/namespaces/{ns}/clusters")),
        Some(json!({"name": "c1", "namespace": ns, "user": "u", "clusterSpec": {
            "headGroupSpec": {"computeTemplate": "base?watch=true", "rayStartParams": {"a": "b"}}}})),
    )
    .await;
    assert_invalid(status, &body, "Compute template name");
    let (status, body) = send(
        &client,
        Method::GET,
        server.url(&format!("/apis/v1/namespaces/{ns}/clusters")),
        None,
    )
    .await;
    assert_eq!((status, body), (StatusCode::OK, json!({})));
    assert_eq!(template_names(&client, &server, &ns).await, ["base"]);

    // Submission ids stay one segment of the dashboard's URL.
    let url = server.url(&format!("/apis/v1/namespaces/{ns}/jobsubmissions/c1/x%0Ay"));
    let (status, body) = send(&client, Method::GET, url, None).await;
    assert_invalid(status, &body, "submission id");
    server.stop().await;
}

#[tokio::test]
async fn hostile_names_over_grpc() {
    let mut server = TestServer::start().await;
    let ns = server.namespace("grpcnames").await;
    let client = http_client();
    create_template(&client, &server, &ns, "base").await;
    let mut grpc = ComputeTemplateServiceClient::connect(server.grpc.clone())
        .await
        .unwrap();

    for name in ["base#zzz", "..", "base/x", "base?dryRun=All"] {
        let status = grpc
            .delete_compute_template(DeleteComputeTemplateRequest {
                name: name.into(),
                namespace: ns.clone(),
            })
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    }

    let status = grpc
        .list_compute_templates(ListComputeTemplatesRequest {
            namespace: "n".repeat(300),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(
        status
            .message()
            .contains("must be no more than 63 characters")
    );

    // A 3 MB namespace: the answer stays small enough for any client to read.
    let status = grpc
        .get_compute_template(GetComputeTemplateRequest {
            name: "base".into(),
            namespace: "n".repeat(3 << 20),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(status.message().len() < 1024, "{}", status.message().len());
    assert_eq!(template_names(&client, &server, &ns).await, ["base"]);
    server.stop().await;
}

/// A RayCluster (or RayService) labelled as ours whose head has no containers: the CRD schema
/// accepts it, the conversion cannot read it.
fn broken_cluster_spec() -> Value {
    json!({
        "headGroupSpec": {"rayStartParams": {}, "template": {"spec": {"containers": []}}},
        "workerGroupSpecs": []
    })
}

#[tokio::test]
async fn one_bad_object_never_breaks_a_list() {
    let mut server = TestServer::start().await;
    let ns = server.namespace("badobj").await;
    let client = http_client();
    create_template(&client, &server, &ns, "t").await;
    let good = json!({"name": "good", "namespace": ns, "user": "u", "clusterSpec": {
        "headGroupSpec": {"computeTemplate": "t", "rayStartParams": {"a": "b"},
                          "image": "rayproject/ray:2.46.0"}}});
    let (status, body) = send(
        &client,
        Method::POST,
        server.url(&format!("/apis/v1/namespaces/{ns}/clusters")),
        Some(good),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let managed = json!({"app.kubernetes.io/managed-by": "kuberay-apiserver"});
    let cluster: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "ray.io/v1", "kind": "RayCluster",
        "metadata": {"name": "broken", "labels": managed},
        "spec": broken_cluster_spec(),
    }))
    .unwrap();
    ray_api(&server, &ns, "RayCluster", "rayclusters")
        .create(&PostParams::default(), &cluster)
        .await
        .expect("the CRD accepts a head without containers");
    let service: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "ray.io/v1", "kind": "RayService",
        "metadata": {"name": "broken", "labels": managed},
        "spec": {"rayClusterConfig": broken_cluster_spec()},
    }))
    .unwrap();
    ray_api(&server, &ns, "RayService", "rayservices")
        .create(&PostParams::default(), &service)
        .await
        .expect("the CRD accepts a head without containers");

    for path in [
        format!("/apis/v1/namespaces/{ns}/clusters"),
        "/apis/v1/clusters".to_string(),
    ] {
        let (status, body) = send(&client, Method::GET, server.url(&path), None).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        let names: Vec<&str> = body["clusters"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["namespace"] == ns.as_str())
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["good"], "{path}");
    }
    let mut grpc = ClusterServiceClient::connect(server.grpc.clone())
        .await
        .unwrap();
    let listed = grpc
        .list_cluster(ListClustersRequest {
            namespace: ns.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.clusters.len(), 1);

    for path in [
        format!("/apis/v1/namespaces/{ns}/services"),
        "/apis/v1/services".to_string(),
    ] {
        let (status, body) = send(&client, Method::GET, server.url(&path), None).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        let ours = body["services"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter(|s| s["namespace"] == ns.as_str())
                    .count()
            })
            .unwrap_or(0);
        assert_eq!(ours, 0, "{path}: {body}");
    }

    // Reading the bad object itself still says what is wrong with it.
    let (status, body) = send(
        &client,
        Method::GET,
        server.url(&format!("/apis/v1/namespaces/{ns}/clusters/broken")),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    assert_eq!(body["code"], 13);
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("RayCluster {ns}/broken")),
        "{message}"
    );

    let metrics = client
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let counted = |kind: &str| {
        metrics
            .lines()
            .find(|l| {
                l.starts_with("kuberay_apiserver_list_left_out_objects_total")
                    && l.contains(&format!("kind=\"{kind}\""))
            })
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    assert!(counted("RayCluster") >= 3.0, "{metrics}");
    assert!(counted("RayService") >= 2.0, "{metrics}");
    server.stop().await;
}

#[tokio::test]
async fn malformed_paging_tokens_are_client_errors() {
    let mut server = TestServer::start().await;
    let ns = server.namespace("tokens").await;
    let client = http_client();
    for path in [
        format!("/apis/v1/namespaces/{ns}/clusters?continue=garbage&limit=1"),
        "/apis/v1/clusters?continue=%00%01&limit=1".to_string(),
        format!("/apis/v1/namespaces/{ns}/jobs?continue=garbage&limit=1"),
        format!("/apis/v1/namespaces/{ns}/services?pageToken=garbage&pageSize=1"),
        "/apis/v1/services?pageToken=garbage&pageSize=1".to_string(),
    ] {
        let (status, body) = send(&client, Method::GET, server.url(&path), None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        assert_eq!(body["code"], 3, "{path}: {body}");
    }
    let mut grpc = ClusterServiceClient::connect(server.grpc.clone())
        .await
        .unwrap();
    let status = grpc
        .list_cluster(ListClustersRequest {
            namespace: ns.clone(),
            r#continue: "garbage".into(),
            limit: 1,
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    server.stop().await;
}

#[tokio::test]
async fn kubernetes_rejections_are_invalid_arguments() {
    let mut server = TestServer::start().await;
    let ns = server.namespace("reject").await;
    let client = http_client();
    create_template(&client, &server, &ns, "t").await;
    let (status, body) = send(
        &client,
        Method::POST,
        server.url(&format!("/apis/v1/namespaces/{ns}/clusters")),
        Some(json!({"name": "c1", "namespace": ns, "user": "u",
            "annotations": {"bad key!": "x"},
            "clusterSpec": {"headGroupSpec": {"computeTemplate": "t", "rayStartParams": {"a": "b"}}}})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["code"], 3, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("bad key!"),
        "{body}"
    );
    let (status, body) = send(
        &client,
        Method::GET,
        server.url(&format!("/apis/v1/namespaces/{ns}/clusters")),
        None,
    )
    .await;
    assert_eq!((status, body), (StatusCode::OK, json!({})));
    server.stop().await;
}

#[tokio::test]
async fn duplicate_json_members_are_refused() {
    let mut server = TestServer::start().await;
    let ns = server.namespace("dupes").await;
    let client = http_client();
    let body = format!(r#"{{"name":"a","namespace":"{ns}","cpu":1,"memory":1,"name":"b"}}"#);
    let response = client
        .post(server.url(&format!("/apis/v1/namespaces/{ns}/compute_templates")))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["code"], 3);
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .contains("duplicate field \"name\"")
    );
    assert!(template_names(&client, &server, &ns).await.is_empty());
    server.stop().await;
}

/// Bodies and messages of tiny values (which decoded would take ten times their size) are
/// refused beyond one value per 128 bytes of the size limit, before they are decoded; honest
/// requests with many values pass.
#[tokio::test]
async fn value_dense_requests_are_refused_before_decoding() {
    let mut server = TestServer::start_with(&["--http-max-body-bytes=262144"]).await;
    let ns = server.namespace("dense").await;
    let client = http_client();
    create_template(&client, &server, &ns, "base").await;
    // 262144 / 128 = 2048 values allowed.
    let cluster = |annotations: usize| {
        let annotations: serde_json::Map<String, Value> = (0..annotations)
            .map(|i| (format!("k{i}"), json!("v")))
            .collect();
        json!({
            "name": "dense", "namespace": ns, "user": "u", "annotations": annotations,
            "clusterSpec": {"headGroupSpec": {"computeTemplate": "base", "image": "ray", "rayStartParams": {"a": "b"}}}
        })
    };
    let url = server.url(&format!("/apis/v1/namespaces/{ns}/clusters"));
    let (status, body) = send(&client, Method::POST, url.clone(), Some(cluster(3000))).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(body["code"], 8, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("more than 2048 JSON values"),
        "{body}"
    );
    let (status, body) = send(&client, Method::POST, url, Some(cluster(1000))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["annotations"]["k999"], "v", "{body}");

    // V2: the same bound for bodies the template middleware decodes.
    let annotations: serde_json::Map<String, Value> =
        (0..3000).map(|i| (format!("k{i}"), json!("v"))).collect();
    let response = client
        .post(server.url(&format!("/apis/ray.io/v1/namespaces/{ns}/rayclusters")))
        .header("content-type", "application/json")
        .body(
            json!({"apiVersion": "ray.io/v1", "kind": "RayCluster",
                "metadata": {"name": "dense2", "annotations": annotations}, "spec": {}})
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);

    // gRPC: fields at every depth are counted (a map entry is three: entry, key, value).
    let mut grpc = ClusterServiceClient::connect(server.grpc.clone())
        .await
        .unwrap()
        .max_decoding_message_size(usize::MAX);
    let request = |entries: usize| kuberay_api::proto::CreateClusterRequest {
        namespace: ns.clone(),
        cluster: Some(kuberay_api::proto::Cluster {
            name: "dense3".into(),
            namespace: ns.clone(),
            user: "u".into(),
            cluster_spec: Some(kuberay_api::proto::ClusterSpec {
                head_group_spec: Some(kuberay_api::proto::HeadGroupSpec {
                    compute_template: "base".into(),
                    image: "ray".into(),
                    ray_start_params: (0..entries)
                        .map(|i| (format!("k{i}"), "v".into()))
                        .collect(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
    };
    let refused = grpc.create_cluster(request(100_000)).await.unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert!(refused.message().contains("more than"), "{refused:?}");
    let names: Vec<String> = ray_api(&server, &ns, "RayCluster", "rayclusters")
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|c| c.metadata.name)
        .collect();
    assert_eq!(names, vec!["dense".to_string()], "nothing else was created");
    server.stop().await;
}

/// With the Kubernetes API unreachable, clients are told to retry (503 / UNAVAILABLE), not that
/// the server failed.
#[tokio::test]
async fn unreachable_kubernetes_is_unavailable() {
    if support::real_cluster().is_some() {
        return; // the case needs a cluster that is down
    }
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: down\n  cluster:\n    server: http://127.0.0.1:{port}\ncontexts:\n- name: down\n  context:\n    cluster: down\n    user: nobody\ncurrent-context: down\nusers:\n- name: nobody\n  user: {{}}\n"
        ),
    )
    .unwrap();
    let kubeconfig_flag = format!("--kubeconfig={}", kubeconfig.display());
    let server = TestServer::start_unsynced(&["--backend=kubernetes", &kubeconfig_flag]).await;
    let client = http_client();
    for (method, path, body) in [
        (
            Method::GET,
            "/apis/v1/namespaces/ns/compute_templates",
            None,
        ),
        (
            Method::GET,
            "/apis/v1/namespaces/ns/compute_templates/t",
            None,
        ),
        (Method::GET, "/apis/v1/namespaces/ns/clusters", None),
        (Method::GET, "/apis/v1/namespaces/ns/clusters/c", None),
        (Method::DELETE, "/apis/v1/namespaces/ns/jobs/j", None),
        (Method::GET, "/apis/v1/services", None),
        (
            Method::POST,
            "/apis/v1/namespaces/ns/compute_templates",
            Some(json!({"name": "t", "namespace": "ns", "cpu": 1, "memory": 1})),
        ),
    ] {
        let (status, answer) = send(&client, method, server.url(path), body).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{path}: {answer}");
        assert_eq!(answer["code"], 14, "{path}: {answer}");
    }
    let mut grpc = ComputeTemplateServiceClient::connect(server.grpc.clone())
        .await
        .unwrap();
    let status = grpc
        .list_compute_templates(ListComputeTemplatesRequest {
            namespace: "ns".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    server.stop().await;
}

/// Sends raw bytes as the request message of a gRPC method.
#[derive(Default, Clone)]
struct RawCodec;

impl tonic::codec::Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl tonic::codec::Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn encode(
        &mut self,
        item: Vec<u8>,
        dst: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), tonic::Status> {
        use bytes::BufMut;
        dst.put_slice(&item);
        Ok(())
    }
}

impl tonic::codec::Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn decode(
        &mut self,
        src: &mut tonic::codec::DecodeBuf<'_>,
    ) -> Result<Option<Vec<u8>>, tonic::Status> {
        use bytes::Buf;
        Ok(Some(src.copy_to_bytes(src.remaining()).to_vec()))
    }
}

#[tokio::test]
async fn malformed_grpc_messages_are_invalid_arguments() {
    let server = TestServer::start().await;
    let channel = tonic::transport::Endpoint::from_shared(server.grpc.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    for (method, bytes) in [
        (
            "/proto.ComputeTemplateService/GetComputeTemplate",
            vec![0x0a, 0xff, 0xff],
        ),
        ("/proto.ClusterService/CreateCluster", vec![0xff; 8]),
        (
            "/proto.RayJobService/ListRayJobs",
            vec![0x0a, 0x02, 0xc3, 0x28],
        ),
        ("/proto.RayServeService/ListRayServices", vec![0x08]),
    ] {
        grpc.ready().await.unwrap();
        let status = grpc
            .unary(
                tonic::Request::new(bytes),
                http::uri::PathAndQuery::from_static(method),
                RawCodec,
            )
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{method}: {status:?}");
    }
    server.stop().await;
}

/// V2 acts as the server, never as whoever a client names in `Impersonate-*` headers. On a real
/// cluster a forwarded `Impersonate-User: system:anonymous` would be refused with 403; the
/// embedded store ignores impersonation, so there the call must simply work.
#[tokio::test]
async fn v2_never_impersonates_for_a_client() {
    let mut server = TestServer::start().await;
    let ns = server.namespace("impersonate").await;
    let response = http_client()
        .get(server.url(&format!("/apis/ray.io/v1/namespaces/{ns}/rayclusters")))
        .header("Impersonate-User", "system:anonymous")
        .header("Impersonate-Group", "system:unauthenticated")
        .header("Impersonate-Extra-Scopes", "none")
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body = response.text().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    server.stop().await;
}
