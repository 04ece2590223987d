//! The server against a Kubernetes API that records what it receives, hangs or is down: what V2
//! forwards (never the client's `Authorization` or `Impersonate-*`), V2 deadlines and watches,
//! and `/readyz`.
//!
//! The embedded store ignores impersonation (it has no authorization), so forwarding
//! `Impersonate-*` headers to it would change nothing visible; a recording API server is the
//! one place where "not forwarded" can be observed. It is a few lines of hyper in this file.

mod support;

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::Value;
use support::{TestServer, http_client};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

type FakeBody = http_body_util::combinators::BoxBody<Bytes, Infallible>;

/// What the fake API server saw.
#[derive(Default)]
struct Seen {
    /// Method, path and query, and headers of every request.
    requests: Vec<(String, HeaderMap)>,
    /// Set when the client of a watch went away.
    watch_closed: Option<Instant>,
}

struct FakeKube {
    url: String,
    seen: Arc<Mutex<Seen>>,
}

const EVENT: &str = "{\"type\":\"ADDED\",\"object\":{\"apiVersion\":\"ray.io/v1\",\"kind\":\"RayCluster\",\"metadata\":{\"name\":\"a\",\"namespace\":\"ns\",\"resourceVersion\":\"1\"}}}\n";

/// A Kubernetes API on loopback: `/readyz` is ok; a watch sends one event, a second after
/// 1.5 s, then stays open (recording when its client goes); a path ending in `/hang` never
/// answers; anything else is an empty RayCluster list.
async fn fake_kube() -> FakeKube {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Seen::default()));
    let state = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let seen = state.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                    let seen = seen.clone();
                    async move { Ok::<_, Infallible>(answer(request, seen).await) }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    FakeKube { url, seen }
}

async fn answer(request: Request<Incoming>, seen: Arc<Mutex<Seen>>) -> Response<FakeBody> {
    let target = request
        .uri()
        .path_and_query()
        .map(|pq| pq.as_str().to_string())
        .unwrap_or_default();
    seen.lock().unwrap().requests.push((
        format!("{} {target}", request.method()),
        request.headers().clone(),
    ));
    let full = |status: StatusCode, text: &str| {
        Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(text.to_string())).boxed())
            .unwrap()
    };
    if request.uri().path() == "/readyz" {
        return full(StatusCode::OK, "ok");
    }
    if request.uri().path().ends_with("/hang") {
        std::future::pending::<()>().await;
    }
    if request
        .uri()
        .query()
        .is_some_and(|q| q.contains("watch=true"))
    {
        let (tx, rx) = mpsc::channel::<Bytes>(4);
        tokio::spawn(async move {
            let _ = tx.send(Bytes::from_static(EVENT.as_bytes())).await;
            tokio::time::sleep(Duration::from_millis(1500)).await;
            let _ = tx.send(Bytes::from_static(EVENT.as_bytes())).await;
            tx.closed().await;
            seen.lock().unwrap().watch_closed = Some(Instant::now());
        });
        let stream = futures::stream::unfold(rx, |mut rx| async move {
            rx.recv()
                .await
                .map(|data| (Ok::<_, Infallible>(Frame::data(data)), rx))
        });
        return Response::builder()
            .header("content-type", "application/json")
            .body(StreamBody::new(Box::pin(stream)).boxed())
            .unwrap();
    }
    full(
        StatusCode::OK,
        r#"{"apiVersion":"ray.io/v1","kind":"RayClusterList","metadata":{"resourceVersion":"1"},"items":[]}"#,
    )
}

/// Starts the server on the Kubernetes backend at `url`, authenticating with `server-token`.
async fn server_for(url: &str, extra: &[&str]) -> (TestServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {url}\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: server\ncurrent-context: fake\nusers:\n- name: server\n  user:\n    token: server-token\n"
        ),
    )
    .unwrap();
    let kubeconfig_flag = format!("--kubeconfig={}", kubeconfig.display());
    // The stand-in answers what these tests are about, not the watches of the caches.
    let mut args = vec![
        "--backend=kubernetes",
        kubeconfig_flag.as_str(),
        "--watch-cache=false",
    ];
    args.extend_from_slice(extra);
    (TestServer::start_with(&args).await, dir)
}

#[tokio::test]
async fn v2_forwards_the_servers_identity_only() {
    let kube = fake_kube().await;
    let (server, _dir) = server_for(&kube.url, &[]).await;
    let client = http_client();
    let response = client
        .get(server.url("/apis/ray.io/v1/namespaces/ns/rayclusters"))
        .header("Authorization", "Bearer client-token")
        .header("Impersonate-User", "system:admin")
        .header("Impersonate-Group", "system:masters")
        .header("Impersonate-Uid", "1")
        .header("Impersonate-Extra-Scopes", "all")
        .header("X-Kept", "yes")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let headers = kube
        .seen
        .lock()
        .unwrap()
        .requests
        .iter()
        .find(|(target, _)| target == "GET /apis/ray.io/v1/namespaces/ns/rayclusters")
        .map(|(_, headers)| headers.clone())
        .expect("the request reached the API server");
    assert_eq!(headers["authorization"], "Bearer server-token");
    assert_eq!(headers["x-kept"], "yes");
    let impersonation: Vec<&str> = headers
        .keys()
        .map(|name| name.as_str())
        .filter(|name| name.starts_with("impersonate"))
        .collect();
    assert!(impersonation.is_empty(), "forwarded: {impersonation:?}");
    server.stop().await;
}

#[tokio::test]
async fn v2_requests_have_a_deadline_and_watches_end_with_their_client() {
    let kube = fake_kube().await;
    let (server, _dir) = server_for(&kube.url, &["--v2-timeout=1s"]).await;
    let client = http_client();

    // A hung API server: 504 with a Kubernetes Status at the deadline.
    let begin = Instant::now();
    let response = client
        .get(server.url("/apis/ray.io/v1/namespaces/ns/rayclusters/hang"))
        .send()
        .await
        .unwrap();
    let took = begin.elapsed();
    assert_eq!(response.status(), StatusCode::GATEWAY_TIMEOUT);
    assert!(took < Duration::from_secs(2), "{took:?}");
    let status: Value = response.json().await.unwrap();
    assert_eq!(status["kind"], "Status");
    assert_eq!(status["code"], 504);
    assert_eq!(status["reason"], "Timeout");

    // A watch outlives the deadline: its second event comes after 1.5 s.
    let mut response = client
        .get(server.url("/apis/ray.io/v1/namespaces/ns/rayclusters?watch=true&resourceVersion=0"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut received = Vec::new();
    while received.iter().filter(|b| **b == b'\n').count() < 2 {
        let chunk = tokio::time::timeout(Duration::from_secs(3), response.chunk())
            .await
            .expect("the watch stalled")
            .expect("the watch was cut")
            .expect("the watch ended");
        received.extend_from_slice(&chunk);
    }
    assert!(kube.seen.lock().unwrap().watch_closed.is_none());

    // The client goes: the upstream watch goes too.
    drop(response);
    drop(client);
    let gone = Instant::now();
    let deadline = gone + Duration::from_secs(2);
    loop {
        if kube.seen.lock().unwrap().watch_closed.is_some() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the upstream watch outlived its client"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.stop().await;
}

#[tokio::test]
async fn readyz_follows_the_kubernetes_api_and_healthz_does_not() {
    // Reachable.
    let kube = fake_kube().await;
    let (server, _dir) = server_for(&kube.url, &[]).await;
    let client = http_client();
    let response = client.get(server.url("/readyz")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "ok\n");
    // Cached: a second probe does not reach the API server again.
    let response = client.get(server.url("/readyz")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let checks = kube
        .seen
        .lock()
        .unwrap()
        .requests
        .iter()
        .filter(|(target, _)| target == "GET /readyz")
        .count();
    assert_eq!(checks, 1);
    server.stop().await;

    // Down: the server starts and is alive, but not ready; V2 says 503 with a Status.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let (server, _dir) = server_for(&format!("http://127.0.0.1:{port}"), &[]).await;
    let response = client.get(server.url("/healthz")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let begin = Instant::now();
    let response = client.get(server.url("/readyz")).send().await.unwrap();
    assert!(begin.elapsed() < Duration::from_secs(1));
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let text = response.text().await.unwrap();
    assert!(
        text.starts_with("the Kubernetes API cannot be reached"),
        "{text}"
    );
    for path in [
        "/apis/ray.io/v1/namespaces/ns/rayclusters",
        "/apis/events.k8s.io/v1/namespaces/ns/events",
    ] {
        let response = client.get(server.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE, "{path}");
        assert_eq!(response.headers()["content-type"], "application/json");
        let status: Value = response.json().await.unwrap();
        assert_eq!(status["kind"], "Status", "{status}");
        assert_eq!(status["apiVersion"], "v1");
        assert_eq!(status["status"], "Failure");
        assert_eq!(status["code"], 503);
        assert_eq!(status["reason"], "ServiceUnavailable");
    }
    // A template lookup and the service proxy guard fail the same way.
    let response = client
        .post(server.url("/apis/ray.io/v1/namespaces/ns/rayclusters"))
        .header("content-type", "application/json")
        .body(r#"{"apiVersion":"ray.io/v1","kind":"RayCluster","metadata":{"name":"c"},"spec":{"headGroupSpec":{"computeTemplate":"t","template":{"spec":{"containers":[]}}}}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let response = client
        .get(server.url("/api/v1/namespaces/ns/services/head-svc:8265/proxy/"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    server.stop().await;
}

#[tokio::test]
async fn readyz_is_503_once_shutdown_begins() {
    let server = TestServer::start_with(&["--shutdown-delay=1s"]).await;
    let client = http_client();
    let response = client.get(server.url("/readyz")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    server.shutdown();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let response = client.get(server.url("/readyz")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.text().await.unwrap(), "shutting down\n");
    drop(client);
    server.wait().await;
}
