//! An in-process, durable, Kubernetes-compatible REST API.
//!
//! [`EmbeddedKube`] stores objects in a [redb] file and serves the
//! kube-apiserver REST API for a fixed table of resources (see
//! [`resources::RESOURCES`]): core `v1` namespaces, configmaps, secrets,
//! services, endpoints, pods, events; `events.k8s.io/v1` events; `ray.io/v1` RayCluster,
//! RayJob and RayService. The proxy subresource of Services
//! (`/api/v1/namespaces/{ns}/services/{name[:port]}/proxy/...`) forwards HTTP requests to the
//! address their Endpoints object names, e.g. to a Ray dashboard running as a local process. A [`kube::Client`] from [`EmbeddedKube::client`]
//! talks to it in-process; [`EmbeddedKube::router`] serves the same API over
//! HTTP (e.g. for `kubectl --server http://127.0.0.1:PORT`).
//!
//! Custom resources are pruned, defaulted and validated against the KubeRay CRDs'
//! structural schemas as kube-apiserver does (`crd_schema`); labels and annotations of
//! every object are checked as `ValidateObjectMeta` checks them.
//!
//! See `STATUS.md` next to this crate for what is implemented and where the
//! behaviour deliberately differs from a real cluster.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

mod api;
mod crd_schema;
mod discovery;
mod field;
mod patch;
mod protobuf;
mod proxy;
pub mod resources;
mod selectors;
mod status;
mod store;
mod validation;
mod watch;

pub use store::DB_FILE;

/// Why [`EmbeddedKube::open`] failed.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot access store at {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is corrupt or not a database file: {message}")]
    Corrupt { path: PathBuf, message: String },
    #[error("{path} is not a kube-embedded store: {message}")]
    Foreign { path: PathBuf, message: String },
    #[error("store {path} is already open (by this or another process)")]
    AlreadyOpen { path: PathBuf },
    #[error("cannot initialise store at {path}: {message}")]
    Storage { path: PathBuf, message: String },
}

/// A failed store operation, with the HTTP status the API would answer.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{reason} ({code}): {message}")]
pub struct StoreError {
    pub code: u16,
    pub reason: String,
    pub message: String,
}

impl From<status::StatusError> for StoreError {
    fn from(e: status::StatusError) -> Self {
        StoreError {
            code: e.code,
            reason: e.reason.to_string(),
            message: e.message,
        }
    }
}

/// The largest request body the embedded API accepts unless told otherwise
/// ([`EmbeddedKube::with_max_body_bytes`]): 3 MiB, the kube-apiserver's default.
pub const DEFAULT_MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

/// The embedded API server. Cheap to clone; all clones share one store.
#[derive(Clone)]
pub struct EmbeddedKube {
    store: Arc<store::Store>,
    max_body_bytes: usize,
}

impl std::fmt::Debug for EmbeddedKube {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedKube").finish_non_exhaustive()
    }
}

impl EmbeddedKube {
    /// Opens (creating if needed) the store in the directory `data_dir`
    /// (the database is the file [`DB_FILE`] inside it).
    ///
    /// A corrupt or foreign file gives an error, never an empty store. The
    /// store is exclusive: opening it again while a previous instance (or
    /// anything still holding one of its clients) is alive fails with
    /// [`OpenError::AlreadyOpen`].
    pub fn open(data_dir: &Path) -> Result<EmbeddedKube, OpenError> {
        Ok(EmbeddedKube {
            store: Arc::new(store::Store::open(data_dir)?),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        })
    }

    /// Sets the largest request body that [`EmbeddedKube::client`] and
    /// [`EmbeddedKube::router`] (made after this call) accept; a larger one is answered with
    /// 413 `RequestEntityTooLarge`, as the kube-apiserver answers. Default
    /// [`DEFAULT_MAX_BODY_BYTES`].
    pub fn with_max_body_bytes(mut self, max_body_bytes: usize) -> EmbeddedKube {
        self.max_body_bytes = max_body_bytes;
        self
    }

    /// Creates the namespace if it does not exist (idempotent).
    pub fn ensure_namespace(&self, name: &str) -> Result<(), StoreError> {
        let def = resources::namespaces();
        let obj = serde_json::json!({
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": name},
        });
        // The writer thread answers; no runtime is needed to wait for it.
        match futures::executor::block_on(self.store.create(def, None, obj, false)) {
            Ok(_) => Ok(()),
            Err(e) if e.reason == "AlreadyExists" => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// A [`kube::Client`] whose requests are served in-process (no socket).
    ///
    /// Must be called within a Tokio runtime (the client spawns its buffer task there).
    pub fn client(&self) -> kube::Client {
        let service = tower::ServiceBuilder::new()
            .map_request(|req: http::Request<kube::client::Body>| {
                let (parts, body) = req.into_parts();
                http::Request::from_parts(parts, axum::body::Body::new(body))
            })
            .service(self.router());
        kube::Client::new(service, "default")
    }

    /// How many handles share this store (this one included): clients, routers and clones all
    /// hold one. The store file is closed when the last handle is dropped.
    pub fn handles(&self) -> usize {
        Arc::strong_count(&self.store)
    }

    /// The API as an axum Router (serve it on a loopback listener for kubectl).
    pub fn router(&self) -> axum::Router {
        api::router(self.store.clone(), self.max_body_bytes)
    }
}
