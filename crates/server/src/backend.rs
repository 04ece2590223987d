//! Choosing and connecting the Kubernetes backend: a real cluster, or the embedded store.

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
            let url = kube_config.cluster_url.clone();
            let client =
                kube::Client::try_from(kube_config).context("building the Kubernetes client")?;
            tracing::info!("backend: Kubernetes API at {url} ({reason})");
            Ok(Backend {
                client,
                embedded: None,
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
