//! Choosing and connecting the Kubernetes backend: a real cluster, or the embedded store.
//!
//! This is the one place that decides how the Kubernetes API is reached: it loads the kubeconfig
//! or the in-cluster configuration once, and every client of a real cluster (the backend's, the
//! dashboard proxy's) is built from that [`KubeAccess`].

use std::net::SocketAddr;

use anyhow::{Context, bail};
use kube_embedded::EmbeddedKube;

use crate::config::{BackendKind, Config};

/// Namespaces the embedded store always has, like a fresh cluster plus the one the docs use.
pub const EMBEDDED_NAMESPACES: [&str; 2] = ["default", "ray-system"];

pub struct Backend {
    pub client: kube::Client,
    /// Set when running on the embedded store.
    pub embedded: Option<EmbeddedKube>,
    /// How the API server of a real cluster is reached; `None` on the embedded store.
    pub kubernetes: Option<KubeAccess>,
}

/// How the server reaches the API server of a real cluster: the configuration loaded once by
/// [`connect`], from which every client of that cluster is built.
#[derive(Clone)]
pub struct KubeAccess {
    config: kube::Config,
    in_cluster: bool,
}

impl KubeAccess {
    /// `config` is the loaded configuration; `in_cluster` whether it is the pod's in-cluster one.
    pub fn new(config: kube::Config, in_cluster: bool) -> Self {
        Self { config, in_cluster }
    }

    /// Whether the server runs in a pod with the in-cluster configuration (no kubeconfig given,
    /// set or at the default place), where cluster DNS names resolve.
    pub fn in_cluster(&self) -> bool {
        self.in_cluster
    }

    /// The URL of the API server.
    pub fn cluster_url(&self) -> &http::Uri {
        &self.config.cluster_url
    }

    /// A client with kube's default behaviour (automatic retries included).
    pub fn client(&self) -> anyhow::Result<kube::Client> {
        kube::Client::try_from(self.config.clone()).context("building the Kubernetes client")
    }

    /// A client of its own without kube's automatic retries, for calls that must never be sent
    /// twice (a job submission through the API server's service proxy).
    pub fn client_without_retries(&self) -> anyhow::Result<kube::Client> {
        let mut config = self.config.clone();
        config.default_retry = false;
        kube::Client::try_from(config).context("building the Kubernetes client")
    }
}

/// Whether a server configured like `config` reaches a real cluster with the in-cluster
/// configuration: it runs in a pod, and no kubeconfig is given, set or at the default place.
fn uses_in_cluster_config(config: &Config) -> bool {
    let env_set = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty());
    let default_kubeconfig = std::env::var_os("HOME")
        .map(|home| std::path::Path::new(&home).join(".kube/config").exists())
        .unwrap_or(false);
    env_set("KUBERNETES_SERVICE_HOST")
        && config.kubeconfig.is_none()
        && !env_set("KUBECONFIG")
        && !default_kubeconfig
}

/// Which backend `auto` picks, and why.
fn choose(config: &Config) -> (BackendKind, String) {
    match config.backend {
        BackendKind::Embedded => (BackendKind::Embedded, "--backend embedded".into()),
        BackendKind::Kubernetes => (BackendKind::Kubernetes, "--backend kubernetes".into()),
        BackendKind::Auto => {
            if let Some(path) = &config.kubeconfig {
                return (
                    BackendKind::Kubernetes,
                    format!("--kubeconfig {} was given", path.display()),
                );
            }
            if std::env::var_os("KUBECONFIG").is_some_and(|v| !v.is_empty()) {
                return (BackendKind::Kubernetes, "KUBECONFIG is set".into());
            }
            if std::env::var_os("KUBERNETES_SERVICE_HOST").is_some()
                && std::path::Path::new("/var/run/secrets/kubernetes.io/serviceaccount/token")
                    .exists()
            {
                return (
                    BackendKind::Kubernetes,
                    "running inside a Kubernetes pod".into(),
                );
            }
            if let Some(home) = std::env::var_os("HOME") {
                let default = std::path::Path::new(&home).join(".kube/config");
                if default.exists() {
                    return (
                        BackendKind::Kubernetes,
                        format!("found {}", default.display()),
                    );
                }
            }
            (
                BackendKind::Embedded,
                "no kubeconfig or in-cluster configuration was found".into(),
            )
        }
    }
}

pub async fn connect(config: &Config) -> anyhow::Result<Backend> {
    let (kind, reason) = choose(config);
    match kind {
        BackendKind::Kubernetes | BackendKind::Auto => {
            let kube_config = match &config.kubeconfig {
                Some(path) => {
                    let file = kube::config::Kubeconfig::read_from(path)
                        .with_context(|| format!("reading kubeconfig {}", path.display()))?;
                    kube::Config::from_custom_kubeconfig(file, &Default::default())
                        .await
                        .with_context(|| format!("loading kubeconfig {}", path.display()))?
                }
                None => kube::Config::infer()
                    .await
                    .context("no usable kubeconfig or in-cluster configuration")?,
            };
            let access = KubeAccess::new(kube_config, uses_in_cluster_config(config));
            let client = access.client()?;
            tracing::info!(
                "backend: Kubernetes API at {} ({reason})",
                access.cluster_url()
            );
            Ok(Backend {
                client,
                embedded: None,
                kubernetes: Some(access),
            })
        }
        BackendKind::Embedded => {
            let dir = config.data_dir();
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("creating the data directory {}", dir.display()))?;
            let store = EmbeddedKube::open(&dir)
                .with_context(|| format!("opening the embedded store in {}", dir.display()))?
                .with_max_body_bytes(config.http_max_body_bytes);
            for namespace in EMBEDDED_NAMESPACES {
                store
                    .ensure_namespace(namespace)
                    .with_context(|| format!("creating namespace {namespace}"))?;
            }
            tracing::info!(
                "backend: embedded Kubernetes-compatible store in {} ({reason})",
                dir.display()
            );
            Ok(Backend {
                client: store.client(),
                embedded: Some(store),
                kubernetes: None,
            })
        }
    }
}

/// Checks that the embedded API listener is on loopback: it has no authentication.
pub fn check_embedded_listen(address: SocketAddr) -> anyhow::Result<()> {
    if !address.ip().is_loopback() {
        bail!(
            "--embedded-kube-listen must be a loopback address (the embedded API has no authentication), got {address}"
        );
    }
    Ok(())
}
