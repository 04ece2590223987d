//! Reads from the watch caches: what other clients write shows up, our own writes are seen at
//! once, lists page over one snapshot, and the answers are those of live reads
//! (`--watch-cache=false`).

mod support;

use std::time::{Duration, Instant};

use kube::Api;
use kube::api::{DeleteParams, PostParams};
use kuberay_core::crd::RayCluster;
use reqwest::Method;
use serde_json::{Value, json};
use support::{TestServer, http_client, send};

async fn template(server: &TestServer, ns: &str) {
    let (status, body) = send(
        &http_client(),
        Method::POST,
        server.url(&format!("/apis/v1/namespaces/{ns}/compute_templates")),
        Some(json!({"name": "base", "namespace": ns, "cpu": 1, "memory": 1})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

async fn create_cluster(server: &TestServer, ns: &str, name: &str) {
    let (status, body) = send(
        &http_client(),
        Method::POST,
        server.url(&format!("/apis/v1/namespaces/{ns}/clusters")),
        Some(
            json!({"name": name, "namespace": ns, "user": "u", "clusterSpec": {
            "headGroupSpec": {"computeTemplate": "base", "image": "rayproject/ray:2.9.0",
                              "rayStartParams": {"dashboard-host": "0.0.0.0"}}}}),
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

async fn cluster_names(server: &TestServer, ns: &str, query: &str) -> (Vec<String>, String) {
    let (status, body) = send(
        &http_client(),
        Method::GET,
        server.url(&format!("/apis/v1/namespaces/{ns}/clusters{query}")),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let names = body["clusters"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|c| c["name"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default();
    let next = body["continue"].as_str().unwrap_or_default().to_string();
    (names, next)
}

async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn own_writes_are_read_at_once_and_other_clients_writes_show_up() {
    let mut server = TestServer::start().await;
    let ns = server.namespace("cache-rw").await;
    template(&server, &ns).await;

    // Our own writes: every read right after sees them, whatever the watch has delivered.
    for i in 0..5 {
        let name = format!("own-{i}");
        create_cluster(&server, &ns, &name).await;
        let (status, body) = send(
            &http_client(),
            Method::GET,
            server.url(&format!("/apis/v1/namespaces/{ns}/clusters/{name}")),
            None,
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert!(cluster_names(&server, &ns, "").await.0.contains(&name));
        let (status, _) = send(
            &http_client(),
            Method::DELETE,
            server.url(&format!("/apis/v1/namespaces/{ns}/clusters/{name}")),
            None,
        )
        .await;
        assert_eq!(status, 200);
        assert!(!cluster_names(&server, &ns, "").await.0.contains(&name));
    }

    // Another client's write: a get finds it at once (an object the cache lacks is read
    // live), a list once the watch delivers it.
    create_cluster(&server, &ns, "model").await;
    let api: Api<RayCluster> = Api::namespaced(server.kube(), &ns);
    let mut other = api.get("model").await.unwrap();
    other.metadata = kube::core::ObjectMeta {
        name: Some("other".into()),
        labels: other.metadata.labels.clone(),
        annotations: other.metadata.annotations.clone(),
        ..Default::default()
    };
    other.status = None;
    api.create(&PostParams::default(), &other).await.unwrap();
    let (status, body) = send(
        &http_client(),
        Method::GET,
        server.url(&format!("/apis/v1/namespaces/{ns}/clusters/other")),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    eventually("the other client's cluster in the list", async || {
        cluster_names(&server, &ns, "").await.0 == ["model", "other"]
    })
    .await;
    api.delete("other", &DeleteParams::default()).await.unwrap();
    eventually("the other client's delete in the list", async || {
        cluster_names(&server, &ns, "").await.0 == ["model"]
    })
    .await;
    drop(api);
    server.stop().await;
}

#[tokio::test]
async fn pages_of_one_list_come_from_one_snapshot() {
    let mut server = TestServer::start().await;
    let ns = server.namespace("cache-pages").await;
    template(&server, &ns).await;
    for name in ["a", "b", "c", "d", "e"] {
        create_cluster(&server, &ns, name).await;
    }
    let (first, token) = cluster_names(&server, &ns, "?limit=2").await;
    assert_eq!(first, ["a", "b"]);
    assert!(!token.is_empty());

    // Changes after the first page do not show up in the pages of that list...
    send(
        &http_client(),
        Method::DELETE,
        server.url(&format!("/apis/v1/namespaces/{ns}/clusters/c")),
        None,
    )
    .await;
    create_cluster(&server, &ns, "bb").await;
    let (second, token) = cluster_names(&server, &ns, &format!("?limit=2&continue={token}")).await;
    assert_eq!(second, ["c", "d"]);
    let (third, token) = cluster_names(&server, &ns, &format!("?limit=2&continue={token}")).await;
    assert_eq!(third, ["e"]);
    assert_eq!(token, "");

    // ...and a new list sees them.
    assert_eq!(
        cluster_names(&server, &ns, "").await.0,
        ["a", "b", "bb", "d", "e"]
    );

    // Tokens are checked like Kubernetes' own: a malformed one is the client's mistake.
    let (status, body) = send(
        &http_client(),
        Method::GET,
        server.url(&format!(
            "/apis/v1/namespaces/{ns}/clusters?limit=2&continue=bogus"
        )),
        None,
    )
    .await;
    assert_eq!(status, 400, "{body}");
    server.stop().await;
}

/// The same calls answer the same with and without caches.
#[tokio::test]
async fn answers_are_those_of_live_reads() {
    async fn answers(server: &mut TestServer) -> Vec<(u16, Value)> {
        let ns = server.namespace("cache-same").await;
        template(server, &ns).await;
        create_cluster(server, &ns, "x").await;
        let mut out = Vec::new();
        for path in [
            format!("/apis/v1/namespaces/{ns}/clusters/x"),
            format!("/apis/v1/namespaces/{ns}/clusters"),
            format!("/apis/v1/namespaces/{ns}/clusters/missing"),
            format!("/apis/v1/namespaces/{ns}/compute_templates"),
            format!("/apis/v1/namespaces/{ns}/compute_templates/base"),
            format!("/apis/v1/namespaces/{ns}/compute_templates/missing"),
            format!("/apis/v1/namespaces/{ns}/jobs"),
            format!("/apis/v1/namespaces/{ns}/services"),
        ] {
            let (status, mut body) =
                send(&http_client(), Method::GET, server.url(&path), None).await;
            // Names of generated namespaces, creation times and what an operator reports
            // differ between the runs.
            let text = body.to_string().replace(&ns, "NS");
            body = serde_json::from_str(&text).unwrap();
            strip_times(&mut body);
            out.push((status.as_u16(), body));
        }
        out
    }
    let mut cached = TestServer::start().await;
    let with = answers(&mut cached).await;
    cached.stop().await;
    let mut live = TestServer::start_with(&["--watch-cache=false"]).await;
    let without = answers(&mut live).await;
    live.stop().await;
    assert_eq!(with, without);
}

fn strip_times(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.remove("createdAt");
            map.remove("deleteAt");
            map.remove("annotations");
            // What a running operator changes between the two runs.
            for key in ["events", "serviceEndpoint", "clusterState", "clusterStatus"] {
                map.remove(key);
            }
            map.values_mut().for_each(strip_times);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_times),
        _ => {}
    }
}
