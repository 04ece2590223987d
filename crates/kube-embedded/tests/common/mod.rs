//! Shared helpers of the conformance suite.
//!
//! The suite talks only through `kube::Client`. By default it runs against a
//! fresh embedded store; with `KUBECONFIG_CONFORMANCE=/path/to/kubeconfig` it
//! runs against that cluster instead (which needs the ray.io CRDs installed).
//! Every test uses its own uniquely named namespace.
#![allow(dead_code)]

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, ApiResource, DeleteParams, PostParams};
use kube::{Client, Error};

pub struct Env {
    pub client: Client,
    /// The embedded store (None when running against a real cluster).
    pub kube: Option<kube_embedded::EmbeddedKube>,
    pub dir: Option<tempfile::TempDir>,
    namespaces: Vec<String>,
}

/// Whether the suite runs against a real cluster.
pub fn conformance_mode() -> bool {
    std::env::var_os("KUBECONFIG_CONFORMANCE").is_some_and(|v| !v.is_empty())
}

pub async fn env() -> Env {
    if let Some(path) = std::env::var_os("KUBECONFIG_CONFORMANCE").filter(|v| !v.is_empty()) {
        let kc = kube::config::Kubeconfig::read_from(path).expect("read kubeconfig");
        let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
            .await
            .expect("kubeconfig");
        let client = Client::try_from(config).expect("client");
        return Env {
            client,
            kube: None,
            dir: None,
            namespaces: vec![],
        };
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let kube = kube_embedded::EmbeddedKube::open(dir.path()).expect("open store");
    Env {
        client: kube.client(),
        kube: Some(kube),
        dir: Some(dir),
        namespaces: vec![],
    }
}

pub fn unique(prefix: &str) -> String {
    let id = uuid_like();
    format!("{prefix}-{id}")
}

fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    let n = N.fetch_add(1, Ordering::Relaxed);
    format!(
        "{:x}{:x}",
        (nanos ^ (std::process::id() as u64) << 8) & 0xfffff,
        n
    )
}

impl Env {
    /// Creates a fresh namespace for this test.
    pub async fn namespace(&mut self, prefix: &str) -> String {
        let name = unique(prefix);
        let api: Api<Namespace> = Api::all(self.client.clone());
        let ns: Namespace = serde_json::from_value(serde_json::json!({
            "metadata": {"name": name}
        }))
        .unwrap();
        api.create(&PostParams::default(), &ns)
            .await
            .expect("create namespace");
        self.namespaces.push(name.clone());
        if conformance_mode() {
            // kube-controller-manager adds the ConfigMap kube-root-ca.crt to every new
            // namespace; wait for it (briefly: a cluster may not run that controller) so that
            // it does not show up in the middle of a test.
            let cms: Api<ConfigMap> = Api::namespaced(self.client.clone(), &name);
            for _ in 0..100 {
                if cms
                    .get_opt("kube-root-ca.crt")
                    .await
                    .ok()
                    .flatten()
                    .is_some()
                {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(30)).await;
            }
        }
        name
    }

    /// Deletes the namespaces this test created (best effort, for real clusters).
    pub async fn cleanup(self) {
        let api: Api<Namespace> = Api::all(self.client.clone());
        for ns in &self.namespaces {
            let _ = api.delete(ns, &DeleteParams::default()).await;
        }
    }
}

pub fn ray_resource(kind: &str) -> ApiResource {
    ApiResource {
        group: "ray.io".into(),
        version: "v1".into(),
        api_version: "ray.io/v1".into(),
        kind: kind.into(),
        plural: format!("{}s", kind.to_ascii_lowercase()),
    }
}

pub fn rayclusters(client: &Client, ns: &str) -> Api<kube::api::DynamicObject> {
    Api::namespaced_with(client.clone(), ns, &ray_resource("RayCluster"))
}

/// The `Status` of an API error (panics on other errors).
pub fn status(e: Error) -> Box<kube::core::Status> {
    match e {
        Error::Api(s) => s,
        other => panic!("expected an API error, got {other:?}"),
    }
}

pub fn code<T: std::fmt::Debug>(r: Result<T, Error>) -> u16 {
    status(r.expect_err("expected an error")).code
}
