//! The core v1 Endpoints kind and the Service proxy subresource
//! (`/api/v1/namespaces/{ns}/services/{id}/proxy/...`).

use std::net::SocketAddr;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, Request, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use http_body_util::BodyExt;
use k8s_openapi::api::core::v1::{Endpoints, Service};
use kube::api::{Api, DeleteParams, ListParams, PostParams, WatchEvent, WatchParams};
use kube_embedded::EmbeddedKube;
use serde_json::{Value, json};
use tower::ServiceExt;

const NS: &str = "default";

/// An upstream that answers every request with what it received, as JSON; `/missing` answers
/// 404 with a header of its own.
async fn echo_server() -> (SocketAddr, tokio::task::JoinHandle<()>) {
    async fn echo(method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
        if uri.path() == "/missing" {
            return (
                StatusCode::NOT_FOUND,
                [("x-upstream", "yes")],
                "no such page upstream",
            )
                .into_response();
        }
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        axum::Json(json!({
            "method": method.as_str(),
            "path": uri.path(),
            "query": uri.query(),
            "echo": header("x-echo"),
            "authorization": header("authorization"),
            "forwardedUri": header("x-forwarded-uri"),
            "host": header("host"),
            "body": String::from_utf8_lossy(&body),
        }))
        .into_response()
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().fallback(echo);
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (addr, task)
}

/// A port nothing listens on.
async fn closed_port() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

struct Env {
    kube: EmbeddedKube,
    _dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        Env::with_kube(|k| k)
    }

    fn with_kube(f: impl FnOnce(EmbeddedKube) -> EmbeddedKube) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let kube = f(EmbeddedKube::open(dir.path()).unwrap());
        kube.ensure_namespace(NS).unwrap();
        Env { kube, _dir: dir }
    }

    /// A Service with the dashboard's two ports (`dashboard` 8265, `serve` 8000).
    async fn service(&self, name: &str) {
        let svc: Service = serde_json::from_value(json!({
            "metadata": {"name": name},
            "spec": {"ports": [
                {"name": "dashboard", "port": 8265},
                {"name": "serve", "port": 8000},
            ]},
        }))
        .unwrap();
        Api::<Service>::namespaced(self.kube.client(), NS)
            .create(&PostParams::default(), &svc)
            .await
            .unwrap();
    }

    /// Endpoints of `name`: 127.0.0.1 with the port `dashboard` = `port`.
    async fn endpoints(&self, name: &str, port: u16) {
        let eps: Endpoints = serde_json::from_value(json!({
            "metadata": {"name": name},
            "subsets": [{
                "addresses": [{"ip": "127.0.0.1"}],
                "ports": [{"name": "dashboard", "port": port}],
            }],
        }))
        .unwrap();
        Api::<Endpoints>::namespaced(self.kube.client(), NS)
            .create(&PostParams::default(), &eps)
            .await
            .unwrap();
    }

    /// Sends a request to the API's router; the answer's status, headers and body.
    async fn call(
        &self,
        method: Method,
        uri: &str,
        headers: &[(&str, &str)],
        body: impl Into<Body>,
    ) -> (StatusCode, HeaderMap, Bytes) {
        let mut req = Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = self
            .kube
            .router()
            .oneshot(req.body(body.into()).unwrap())
            .await
            .unwrap();
        let (parts, body) = resp.into_parts();
        let bytes = body.collect().await.unwrap().to_bytes();
        (parts.status, parts.headers, bytes)
    }

    async fn get_json(&self, uri: &str) -> (StatusCode, Value) {
        let (status, _, body) = self.call(Method::GET, uri, &[], Body::empty()).await;
        let v = serde_json::from_slice(&body)
            .unwrap_or_else(|e| panic!("{uri}: {e}: {}", String::from_utf8_lossy(&body)));
        (status, v)
    }
}

fn proxy(id: &str, rest: &str) -> String {
    format!("/api/v1/namespaces/{NS}/services/{id}/proxy{rest}")
}

/// Asserts a Kubernetes `Status` failure.
fn assert_status(status: StatusCode, v: &Value, code: u16, reason: &str, message: &str) {
    assert_eq!(status.as_u16(), code, "{v}");
    assert_eq!(v["kind"], "Status", "{v}");
    assert_eq!(v["status"], "Failure", "{v}");
    assert_eq!(v["code"], code, "{v}");
    assert_eq!(v["reason"], reason, "{v}");
    assert_eq!(v["message"], message, "{v}");
}

#[tokio::test]
async fn requests_reach_the_endpoint_of_the_named_or_numbered_port() {
    let env = Env::new();
    let (upstream, _task) = echo_server().await;
    env.service("head").await;
    env.endpoints("head", upstream.port()).await;

    for id in [
        "head:dashboard",
        "head:8265",
        "head%3Adashboard",
        "http:head:dashboard",
    ] {
        let uri = proxy(id, "/api/x?a=1");
        let (status, headers, body) = env
            .call(
                Method::GET,
                &uri,
                &[("x-echo", "hello"), ("authorization", "Bearer secret")],
                Body::empty(),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{id}");
        assert_eq!(headers["content-type"], "application/json");
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["method"], "GET", "{id}");
        assert_eq!(v["path"], "/api/x", "{id}");
        assert_eq!(v["query"], "a=1", "{id}");
        assert_eq!(v["echo"], "hello", "{id}");
        // The credentials were for the API, not for the service.
        assert_eq!(v["authorization"], Value::Null, "{id}");
        assert_eq!(v["forwardedUri"], proxy(id, "/api/x"), "{id}");
        assert_eq!(v["host"], format!("127.0.0.1:{}", upstream.port()), "{id}");
    }

    // The trailing slash and deeper paths are kept; `/proxy/` forwards `/`.
    let (_, v) = env.get_json(&proxy("head:dashboard", "/a/b/c/")).await;
    assert_eq!(v["path"], "/a/b/c/");
    let (_, v) = env.get_json(&proxy("head:dashboard", "/")).await;
    assert_eq!((&v["path"], &v["query"]), (&json!("/"), &Value::Null));
}

#[tokio::test]
async fn every_method_and_the_body_are_forwarded() {
    let env = Env::new();
    let (upstream, _task) = echo_server().await;
    env.service("head").await;
    env.endpoints("head", upstream.port()).await;

    let uri = proxy("head:dashboard", "/api/jobs/");
    let (status, _, body) = env
        .call(
            Method::POST,
            &uri,
            &[("content-type", "application/json")],
            r#"{"entrypoint": "python x.py"}"#,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["method"], "POST");
    assert_eq!(v["path"], "/api/jobs/");
    assert_eq!(v["body"], r#"{"entrypoint": "python x.py"}"#);

    for method in [Method::PUT, Method::PATCH, Method::DELETE, Method::OPTIONS] {
        let (status, _, body) = env.call(method.clone(), &uri, &[], "payload").await;
        assert_eq!(status, StatusCode::OK, "{method}");
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            (&v["method"], &v["body"]),
            (&json!(method.as_str()), &json!("payload"))
        );
    }
    let (status, headers, body) = env.call(Method::HEAD, &uri, &[], Body::empty()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "application/json");
    assert!(body.is_empty());

    // Without a slash after `proxy`: GET and HEAD are redirected there (query kept), as the
    // kube-apiserver does; other methods forward `/`.
    for method in [Method::GET, Method::HEAD] {
        let (status, headers, _) = env
            .call(method, &proxy("head:dashboard", "?x=1"), &[], Body::empty())
            .await;
        assert_eq!(status, StatusCode::MOVED_PERMANENTLY);
        assert_eq!(headers["location"], proxy("head:dashboard", "/?x=1"));
    }
    let (status, _, body) = env
        .call(Method::POST, &proxy("head:dashboard", ""), &[], "b")
        .await;
    assert_eq!(status, StatusCode::OK);
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!((&v["method"], &v["path"]), (&json!("POST"), &json!("/")));

    // Methods the kube-apiserver does not proxy.
    let (status, _, _) = env.call(Method::TRACE, &uri, &[], Body::empty()).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn the_upstream_answer_passes_through() {
    let env = Env::new();
    let (upstream, _task) = echo_server().await;
    env.service("head").await;
    env.endpoints("head", upstream.port()).await;
    let (status, headers, body) = env
        .call(
            Method::GET,
            &proxy("head:dashboard", "/missing"),
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(headers["x-upstream"], "yes");
    assert_eq!(&body[..], b"no such page upstream");
}

#[tokio::test]
async fn the_in_process_kube_client_reaches_the_proxy() {
    let env = Env::new();
    let (upstream, _task) = echo_server().await;
    env.service("head").await;
    env.endpoints("head", upstream.port()).await;
    let req = Request::builder()
        .uri(proxy("head:dashboard", "/api/version?b=2"))
        .body(vec![])
        .unwrap();
    let text = env.kube.client().request_text(req).await.unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        (&v["path"], &v["query"]),
        (&json!("/api/version"), &json!("b=2"))
    );
}

#[tokio::test]
async fn resolution_failures_are_kubernetes_statuses() {
    let env = Env::new();
    let (upstream, _task) = echo_server().await;
    env.service("head").await;
    env.endpoints("head", upstream.port()).await;

    let (status, v) = env.get_json(&proxy("nope:dashboard", "/")).await;
    assert_status(status, &v, 404, "NotFound", "services \"nope\" not found");
    assert_eq!(v["details"], json!({"name": "nope", "kind": "services"}));

    // The Endpoints object has no `serve` port.
    let (status, v) = env.get_json(&proxy("head:serve", "/")).await;
    assert_status(
        status,
        &v,
        503,
        "ServiceUnavailable",
        "no endpoints available for service \"head\"",
    );
    let (status, v) = env.get_json(&proxy("head:1234", "/")).await;
    assert_status(
        status,
        &v,
        503,
        "ServiceUnavailable",
        "no service port 1234 found for service \"head\"",
    );
    // Two ports and none given: the unnamed port, which there is not (as Kubernetes).
    let (status, v) = env.get_json(&proxy("head", "/")).await;
    assert_status(
        status,
        &v,
        503,
        "ServiceUnavailable",
        "no endpoints available for service \"head\"",
    );

    // No Endpoints object at all.
    env.service("lonely").await;
    let (status, v) = env.get_json(&proxy("lonely:dashboard", "/")).await;
    assert_status(
        status,
        &v,
        503,
        "ServiceUnavailable",
        "no endpoints available for service \"lonely\"",
    );

    // Nothing listens at the endpoint.
    env.service("down").await;
    let closed = closed_port().await;
    env.endpoints("down", closed).await;
    let (status, v) = env.get_json(&proxy("down:dashboard", "/")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    assert_eq!(v["reason"], "ServiceUnavailable");
    let message = v["message"].as_str().unwrap();
    assert!(
        message.starts_with(&format!(
            "error trying to reach service: dial tcp 127.0.0.1:{closed}: connect: "
        )) && message.contains("refused"),
        "{message}"
    );

    let (status, v) = env.get_json(&proxy("a:b:c:d", "/")).await;
    assert_status(
        status,
        &v,
        400,
        "BadRequest",
        "invalid service request \"a:b:c:d\"",
    );
    let (status, v) = env.get_json(&proxy("ftp:head:dashboard", "/")).await;
    assert_status(
        status,
        &v,
        400,
        "BadRequest",
        "invalid service request \"ftp:head:dashboard\"",
    );
    let (status, v) = env.get_json(&proxy("https:head:dashboard", "/")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("https upstreams are not supported"),
        "{v}"
    );
}

#[tokio::test]
async fn a_single_port_service_is_reached_without_naming_its_port() {
    let env = Env::new();
    let (upstream, _task) = echo_server().await;
    let svc: Service = serde_json::from_value(json!({
        "metadata": {"name": "one"},
        "spec": {"ports": [{"port": 80}]},
    }))
    .unwrap();
    Api::<Service>::namespaced(env.kube.client(), NS)
        .create(&PostParams::default(), &svc)
        .await
        .unwrap();
    let eps: Endpoints = serde_json::from_value(json!({
        "metadata": {"name": "one"},
        "subsets": [{"addresses": [{"ip": "127.0.0.1"}], "ports": [{"port": upstream.port()}]}],
    }))
    .unwrap();
    Api::<Endpoints>::namespaced(env.kube.client(), NS)
        .create(&PostParams::default(), &eps)
        .await
        .unwrap();
    for id in ["one", "one:80", "one:"] {
        let (status, v) = env.get_json(&proxy(id, "/x")).await;
        assert_eq!(status, StatusCode::OK, "{id}: {v}");
        assert_eq!(v["path"], "/x");
    }
}

#[tokio::test]
async fn the_proxied_body_has_the_api_limit() {
    let env = Env::with_kube(|k| k.with_max_body_bytes(1024));
    let (upstream, _task) = echo_server().await;
    env.service("head").await;
    env.endpoints("head", upstream.port()).await;
    let (status, _, body) = env
        .call(
            Method::POST,
            &proxy("head:dashboard", "/big"),
            &[],
            vec![b'x'; 2048],
        )
        .await;
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_status(
        status,
        &v,
        413,
        "RequestEntityTooLarge",
        "Request entity too large: limit is 1024",
    );
}

#[tokio::test]
async fn endpoints_crud_through_kube_rs() {
    let env = Env::new();
    let api: Api<Endpoints> = Api::namespaced(env.kube.client(), NS);
    let mut watch = api
        .watch(&WatchParams::default(), "0")
        .await
        .unwrap()
        .boxed();

    let eps: Endpoints = serde_json::from_value(json!({
        "metadata": {"name": "head"},
        "subsets": [{
            "addresses": [{"ip": "127.0.0.1"}],
            "ports": [{"name": "dashboard", "port": 8265}, {"name": "serve", "port": 8000, "protocol": "UDP"}],
        }],
    }))
    .unwrap();
    let created = api.create(&PostParams::default(), &eps).await.unwrap();
    assert_eq!(created.metadata.name.as_deref(), Some("head"));
    let ports = created.subsets.as_ref().unwrap()[0].ports.clone().unwrap();
    // Defaulted as the kube-apiserver does.
    assert_eq!(ports[0].protocol.as_deref(), Some("TCP"));
    assert_eq!(ports[1].protocol.as_deref(), Some("UDP"));

    let got = api.get("head").await.unwrap();
    assert_eq!(got.subsets, created.subsets);
    let list = api.list(&ListParams::default()).await.unwrap();
    assert_eq!(list.items.len(), 1);

    match watch.next().await {
        Some(Ok(WatchEvent::Added(e))) => assert_eq!(e.metadata.name.as_deref(), Some("head")),
        other => panic!("expected ADDED, got {other:?}"),
    }

    api.delete("head", &DeleteParams::default()).await.unwrap();
    match watch.next().await {
        Some(Ok(WatchEvent::Deleted(e))) => assert_eq!(e.metadata.name.as_deref(), Some("head")),
        other => panic!("expected DELETED, got {other:?}"),
    }
    assert!(api.get_opt("head").await.unwrap().is_none());
    match api.get("head").await {
        Err(kube::Error::Api(s)) => {
            assert_eq!(
                (s.code, s.message.as_str()),
                (404, "endpoints \"head\" not found")
            )
        }
        other => panic!("expected 404, got {other:?}"),
    }
}

#[tokio::test]
async fn endpoints_are_in_discovery_and_tables() {
    let env = Env::new();
    let (status, v) = env.get_json("/api/v1").await;
    assert_eq!(status, StatusCode::OK);
    let ep = v["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "endpoints")
        .unwrap_or_else(|| panic!("no endpoints in {v}"));
    assert_eq!(ep["kind"], "Endpoints");
    assert_eq!(ep["singularName"], "endpoints");
    assert_eq!(ep["namespaced"], true);
    assert_eq!(ep["shortNames"], json!(["ep"]));
    assert!(
        v["resources"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["name"] != "endpoints/status")
    );
    // kube-rs discovery resolves it.
    let discovery = kube::Discovery::new(env.kube.client()).run().await.unwrap();
    let (ar, _) = discovery
        .resolve_gvk(&kube::api::GroupVersionKind::gvk("", "v1", "Endpoints"))
        .unwrap();
    assert_eq!(ar.plural, "endpoints");

    env.endpoints("head", 8265).await;
    let (status, _, body) = env
        .call(
            Method::GET,
            &format!("/api/v1/namespaces/{NS}/endpoints"),
            &[("accept", "application/json;as=Table;v=v1;g=meta.k8s.io")],
            Body::empty(),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let t: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(t["columnDefinitions"][1]["name"], "Endpoints");
    assert_eq!(
        t["rows"][0]["cells"],
        json!(["head", "127.0.0.1:8265", t["rows"][0]["cells"][2]])
    );
}
