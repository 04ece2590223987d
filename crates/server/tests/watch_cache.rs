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

/// A TCP relay to `upstream` that can be cut (open connections closed, new ones refused) and
/// restored: a Kubernetes API that goes away and comes back.
struct Relay {
    address: std::net::SocketAddr,
    up: std::sync::Arc<std::sync::atomic::AtomicBool>,
    cut: tokio::sync::watch::Sender<u64>,
}

impl Relay {
    async fn start(upstream: std::net::SocketAddr) -> Self {
        use std::sync::atomic::Ordering;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let up = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let (cut, cuts) = tokio::sync::watch::channel(0u64);
        let accepting = up.clone();
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if !accepting.load(Ordering::SeqCst) {
                    continue; // dropped: the connection is closed at once
                }
                let mut cuts = cuts.clone();
                cuts.mark_unchanged();
                tokio::spawn(async move {
                    let Ok(mut server) = tokio::net::TcpStream::connect(upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cuts.changed() => {}
                    }
                });
            }
        });
        Self { address, up, cut }
    }

    fn cut(&self) {
        self.up.store(false, std::sync::atomic::Ordering::SeqCst);
        self.cut.send_modify(|n| *n += 1);
    }

    fn restore(&self) {
        self.up.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// A cache whose watch is lost stops answering (reads go live, and fail while the API server
/// cannot be reached, rather than answer from a state that may be stale), then lists again and
/// answers with what was written meanwhile.
#[tokio::test]
async fn a_lost_watch_is_never_served_stale_and_resyncs() {
    if support::real_cluster().is_some() {
        // The relay stands between the server and the embedded store's own API.
        return;
    }
    // The store, with its Kubernetes API on loopback; a second server reads it through a relay.
    let mut store = TestServer::start_with(&["--embedded-kube-listen=127.0.0.1:0"]).await;
    let ns = store.namespace("cache-resync").await;
    template(&store, &ns).await;
    create_cluster(&store, &ns, "before").await;
    let upstream = store
        .embedded_kube()
        .unwrap()
        .trim_start_matches("http://")
        .parse()
        .unwrap();
    let relay = Relay::start(upstream).await;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: relay\n  cluster:\n    server: http://{}\ncontexts:\n- name: relay\n  context:\n    cluster: relay\ncurrent-context: relay\nusers: []\n",
            relay.address
        ),
    )
    .unwrap();
    let kubeconfig_flag = format!("--kubeconfig={}", kubeconfig.display());
    let reader = TestServer::start_with(&["--backend=kubernetes", &kubeconfig_flag]).await;
    assert_eq!(cluster_names(&reader, &ns, "").await.0, ["before"]);

    // The API server goes away: the lost watch takes the cache out of service, so a list can
    // no longer answer with the old state.
    relay.cut();
    let url = reader.url(&format!("/apis/v1/namespaces/{ns}/clusters"));
    let list = async || send(&http_client(), Method::GET, url.clone(), None).await;
    eventually("the cache to stop answering", async || {
        !reader.caches_synced() && list().await.0 != 200
    })
    .await;
    let (status, body) = list().await;
    assert_eq!(status, 503, "a live read with no API server: {body}");

    // Written while the reader could not see it.
    create_cluster(&store, &ns, "during").await;
    relay.restore();
    eventually("the cache to list again", async || reader.caches_synced()).await;
    assert_eq!(
        cluster_names(&reader, &ns, "").await.0,
        ["before", "during"]
    );
    reader.stop().await;
    store.stop().await;
}
