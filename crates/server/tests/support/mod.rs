//! Starts the real server (both listeners, real router, real services) on ephemeral loopback
//! ports for integration tests.
//!
//! The backend is the embedded store in a fresh temporary directory, or a real cluster when
//! `KUBERAY_TEST_KUBECONFIG` names a kubeconfig (the same tests then run against it).
#![allow(dead_code)]

pub mod access;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use kube::api::{DeleteParams, PostParams};
use kuberay_apiserver::{Config, RunningServer};

pub struct TestServer {
    pub http: String,
    pub grpc: String,
    pub data_dir: PathBuf,
    server: RunningServer,
    _temp: Option<tempfile::TempDir>,
    namespaces: Vec<String>,
}

fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The kubeconfig of a real cluster to test against, if any.
pub fn real_cluster() -> Option<String> {
    std::env::var("KUBERAY_TEST_KUBECONFIG")
        .ok()
        .filter(|v| !v.is_empty())
}

pub fn config(data_dir: &Path, extra: &[&str]) -> Config {
    let mut args: Vec<String> = vec![
        "kuberay-apiserver".into(),
        "--rpcPortFlag=127.0.0.1:0".into(),
        "--httpPortFlag=127.0.0.1:0".into(),
    ];
    match real_cluster() {
        Some(kubeconfig) => {
            args.push("--backend=kubernetes".into());
            args.push(format!("--kubeconfig={kubeconfig}"));
        }
        None => {
            args.push("--backend=embedded".into());
            args.push(format!("--data-dir={}", data_dir.display()));
            // Clusters stay records unless a test runs them (tests/local_ray.rs).
            if !extra.iter().any(|arg| arg.starts_with("--local-ray")) {
                args.push("--local-ray=off".into());
            }
        }
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    <Config as clap::Parser>::parse_from(kuberay_apiserver::config::normalize_go_flags(args))
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(&[]).await
    }

    pub async fn start_with(extra: &[&str]) -> Self {
        let temp = tempfile::tempdir().expect("temporary directory");
        let dir = temp.path().to_path_buf();
        let mut server = Self::start_in(&dir, extra).await;
        server._temp = Some(temp);
        server
    }

    /// Starts without waiting for the watch caches (for a Kubernetes API that cannot be
    /// reached: the server reads live then).
    pub async fn start_unsynced(extra: &[&str]) -> Self {
        let temp = tempfile::tempdir().expect("temporary directory");
        let dir = temp.path().to_path_buf();
        let mut server = Self::start_in_waiting(&dir, extra, false).await;
        server._temp = Some(temp);
        server
    }

    /// Starts on an existing data directory (to test restarts).
    pub async fn start_in(data_dir: &Path, extra: &[&str]) -> Self {
        Self::start_in_waiting(data_dir, extra, true).await
    }

    async fn start_in_waiting(data_dir: &Path, extra: &[&str], wait: bool) -> Self {
        install_crypto();
        let server = kuberay_apiserver::start(config(data_dir, extra))
            .await
            .expect("server starts");
        // As a Service sends traffic only once /readyz says so: reads come from the caches.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while wait && !server.caches_synced() {
            assert!(
                std::time::Instant::now() < deadline,
                "the watch caches did not sync within 10s"
            );
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        TestServer {
            http: format!("http://{}", server.http_address),
            grpc: format!("http://{}", server.grpc_address),
            data_dir: data_dir.to_path_buf(),
            server,
            _temp: None,
            namespaces: Vec::new(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.http, path)
    }

    /// Where the embedded Kubernetes API listens, when started with `--embedded-kube-listen`.
    pub fn embedded_kube(&self) -> Option<String> {
        self.server
            .embedded_kube_address
            .map(|address| format!("http://{address}"))
    }

    /// Whether every watch cache answers (as `/readyz` reports).
    pub fn caches_synced(&self) -> bool {
        self.server.caches_synced()
    }

    pub fn kube(&self) -> kube::Client {
        self.server.kube_client()
    }

    /// Creates a namespace unique to this test run.
    pub async fn namespace(&mut self, prefix: &str) -> String {
        let name = unique_name(prefix);
        self.create_namespace(&name).await;
        name
    }

    /// Creates the namespace `name` (through Kubernetes directly), removed by [`Self::stop`].
    pub async fn create_namespace(&mut self, name: &str) {
        let namespace: Namespace = serde_json::from_value(serde_json::json!({
            "metadata": { "name": name }
        }))
        .unwrap();
        Api::<Namespace>::all(self.kube())
            .create(&PostParams::default(), &namespace)
            .await
            .expect("namespace created");
        self.namespaces.push(name.to_string());
    }

    /// Stops the server gracefully and waits for it; cleans the namespaces it created.
    pub async fn stop(self) {
        {
            let api = Api::<Namespace>::all(self.kube());
            for namespace in &self.namespaces {
                let _ = api.delete(namespace, &DeleteParams::default()).await;
            }
        }
        self.server.shutdown();
        self.server.wait().await.expect("server stops cleanly");
    }

    pub fn shutdown(&self) {
        self.server.shutdown();
    }

    pub async fn wait(self) {
        self.server.wait().await.expect("server stops cleanly");
    }
}

/// A name unique to this test run, e.g. for a namespace.
pub fn unique_name(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    )
}

pub fn http_client() -> reqwest::Client {
    install_crypto();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("HTTP client")
}

/// Sends a request with an optional JSON body; the answer's status and body (parsed as JSON when
/// it is JSON, else as a JSON string).
pub async fn send(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    body: Option<serde_json::Value>,
) -> (reqwest::StatusCode, serde_json::Value) {
    send_as(client, method, url, None, body).await
}

/// [`send`] with an `Authorization` header.
pub async fn send_as(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    authorization: Option<&str>,
    body: Option<serde_json::Value>,
) -> (reqwest::StatusCode, serde_json::Value) {
    let mut request = client.request(method, url);
    if let Some(value) = authorization {
        request = request.header(reqwest::header::AUTHORIZATION, value);
    }
    if let Some(body) = body {
        request = request.body(body.to_string());
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
    )
}
