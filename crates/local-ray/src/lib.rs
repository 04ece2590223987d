//! Runs the RayClusters of a Kubernetes-compatible API as local Ray processes.
//!
//! [`LocalRay::start`] watches RayClusters through a [`kube::Client`] (the embedded store's, in
//! the server) and does for each what the KubeRay operator does with pods, on this machine: a
//! head (`ray start --head --block`) and the workers of each group (`ray start --address=...
//! --block`), each a supervised process group on loopback with ports of its own. Status is
//! written to the `status` subresource as the operator writes it, and events about the cluster
//! through the events API, so every reader of the API sees the cluster come alive.
//!
//! A cluster whose `spec.managedBy` names another controller is left alone. A running cluster
//! carries the finalizer [`FINALIZER`]: deleting it stops its processes before the object goes.
//! [`LocalRay::shutdown`] stops every process the runtime started (the objects stay and are
//! started again by the next runtime on the same store). A runtime that ends without stopping
//! them (the server was killed) leaves them running: the next runtime takes over the nodes of
//! the clusters that still exist and stops the rest.
//!
//! RayJobs and RayServices are run on such clusters as the operator runs them (`job`,
//! `service`); each cluster's head Service and an Endpoints object with its local ports let
//! the API's service proxy reach the Ray dashboard ([`exposure`]).
#![forbid(unsafe_code)]

mod cluster;
mod controller;
pub mod exposure;
pub mod head_api;
mod job;
pub mod plan;
pub mod process;
mod service;
pub mod status;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kube::Api;
use kube::runtime::watcher;
use kuberay_core::crd::RayCluster;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub use plan::Defaults;
pub use process::MARKER_VAR;

/// Finalizer of the clusters whose processes run here.
pub const FINALIZER: &str = "kuberay-apiserver.ray.io/local-processes";

/// How to install Ray, for messages.
pub const INSTALL_HINT: &str = "pip install \"ray[default,serve]\"";

/// The `ray` executable the runtime uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ray {
    /// Run clusters with this executable.
    Found(PathBuf),
    /// No executable: clusters stay pending with a status message saying why (this text).
    Missing(String),
    /// The runtime is off: clusters stay records (only the finalizer of a cluster that was
    /// running is released, so its deletion completes).
    Off,
}

impl Ray {
    /// The executable of `--local-ray`: `off`, a path (or a name looked up on `PATH`), or
    /// nothing for `ray` on `PATH` when there is one.
    pub fn locate(flag: Option<&str>) -> Result<Ray, String> {
        let flag = flag.map(str::trim).filter(|f| !f.is_empty());
        match flag {
            Some("off" | "false" | "none") => Ok(Ray::Off),
            Some(given) => {
                let path = Path::new(given);
                let found = if path.components().count() > 1 {
                    executable(path).then(|| path.to_path_buf())
                } else {
                    on_path(given)
                };
                found.map(Ray::Found).ok_or_else(|| {
                    format!("--local-ray {given}: no such executable (install Ray with {INSTALL_HINT}, or pass --local-ray=off)")
                })
            }
            None => Ok(match on_path("ray") {
                Some(path) => Ray::Found(path),
                None => Ray::Missing(format!(
                    "Ray is not installed on the machine of the API server: no `ray` on PATH. Install it with {INSTALL_HINT}, then restart the server, or start it with --local-ray=/path/to/ray"
                )),
            }),
        }
    }
}

fn executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| executable(candidate))
}

/// How the runtime runs.
#[derive(Clone, Debug)]
pub struct Settings {
    pub ray: Ray,
    /// Directory of the nodes' Ray temporary directories. Unix socket paths are limited to
    /// about 107 bytes and Ray puts them some 60 bytes deep, so this must stay short.
    pub root: PathBuf,
    pub defaults: Defaults,
    /// Time between SIGTERM and SIGKILL when a node stops.
    pub grace: Duration,
    /// How often a cluster's head is asked about its nodes while it comes up.
    pub probe_interval: Duration,
}

impl Settings {
    /// Settings of a runtime for the store `instance` (its data directory): the nodes' temporary
    /// directories go under `/tmp/krl-<hash of instance>`, so two servers never share one and
    /// the same server finds its own again after a crash.
    pub fn new(ray: Ray, instance: &Path) -> Settings {
        let base = std::env::temp_dir();
        let base = if base.as_os_str().len() <= 24 {
            base
        } else {
            PathBuf::from("/tmp")
        };
        Settings {
            ray,
            root: base.join(format!(
                "krl-{:08x}",
                fnv1a(instance.as_os_str().as_encoded_bytes())
            )),
            defaults: Defaults::default(),
            grace: Duration::from_secs(10),
            probe_interval: Duration::from_secs(2),
        }
    }
}

/// 32-bit FNV-1a: a stable short name for a path.
pub(crate) fn fnv1a(bytes: &[u8]) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in bytes {
        hash ^= u32::from(*byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash
}

/// A running runtime.
pub struct LocalRay {
    stop: CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
    /// Marker prefix of every process this runtime starts.
    prefix: String,
}

impl LocalRay {
    /// Starts watching RayClusters. Must be called within a Tokio runtime.
    pub fn start(client: kube::Client, settings: Settings) -> LocalRay {
        let stop = CancellationToken::new();
        match &settings.ray {
            Ray::Found(path) => tracing::info!(
                "local Ray runtime: RayClusters run as local processes with {} (node directories under {})",
                path.display(),
                settings.root.display()
            ),
            Ray::Missing(why) => tracing::warn!("local Ray runtime: {why}"),
            Ray::Off => tracing::info!("local Ray runtime off (--local-ray=off)"),
        }
        let prefix = format!("{}/", settings.root.display());
        let task = tokio::spawn(run(client, Arc::new(settings), stop.clone()));
        LocalRay {
            stop,
            task: Some(task),
            prefix,
        }
    }

    /// Stops every process the runtime started and waits until they are gone.
    pub async fn shutdown(mut self) {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for LocalRay {
    /// Dropped without [`LocalRay::shutdown`] (a panic, a runtime torn down): the processes it
    /// started are killed at once rather than left behind.
    fn drop(&mut self) {
        if self.task.is_some() {
            self.stop.cancel();
            process::kill_marked_now(&self.prefix);
        }
    }
}

struct Running {
    object: watch::Sender<Option<Arc<RayCluster>>>,
    task: tokio::task::JoinHandle<()>,
}

async fn run(client: kube::Client, settings: Arc<Settings>, stop: CancellationToken) {
    if matches!(settings.ray, Ray::Found(_)) {
        stop_orphans(&client, &settings).await;
    }
    let shared = cluster::Shared::new(client.clone(), settings.clone());
    let jobs = tokio::spawn(job::run(shared.clone(), stop.clone()));
    let services = tokio::spawn(service::run(shared.clone(), stop.clone()));
    let api: Api<RayCluster> = Api::all(client);
    let mut events = watcher(api, watcher::Config::default()).boxed();
    let mut clusters = Clusters {
        shared,
        stop: stop.clone(),
        running: HashMap::new(),
        listed: None,
    };
    let mut backoff = Duration::from_millis(250);
    loop {
        let event = tokio::select! {
            _ = stop.cancelled() => break,
            event = events.next() => event,
        };
        match event {
            None => break,
            Some(Ok(event)) => {
                backoff = Duration::from_millis(250);
                clusters.apply(event);
            }
            Some(Err(error)) => {
                tracing::warn!("local Ray runtime: watching RayClusters failed: {error}");
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        }
    }
    // Each cluster stops its workers, then its head.
    stop.cancel();
    let _ = jobs.await;
    let _ = services.await;
    for (_, running) in clusters.running {
        let _ = running.task.await;
    }
    // Each cluster removed its own directory; the root goes when it is empty.
    let _ = std::fs::remove_dir(&settings.root);
}

/// Stops the processes an earlier run left behind (it was killed before it could stop them)
/// for clusters that no longer exist; those of existing clusters are taken over by their
/// cluster's task.
async fn stop_orphans(client: &kube::Client, settings: &Settings) {
    let api: Api<RayCluster> = Api::all(client.clone());
    let keep: Vec<String> = match api.list(&Default::default()).await {
        Ok(list) => list
            .items
            .iter()
            .map(|c| {
                cluster::marker_prefix(
                    settings,
                    c.metadata.namespace.as_deref().unwrap_or_default(),
                    c.metadata.name.as_deref().unwrap_or_default(),
                    c.metadata.uid.as_deref().unwrap_or_default(),
                )
            })
            .collect(),
        Err(error) => {
            tracing::warn!("listing RayClusters: {error}; stopping every process left running");
            Vec::new()
        }
    };
    let prefix = format!("{}/", settings.root.display());
    let left = process::terminate_marked_except(&prefix, keep, settings.grace).await;
    if left > 0 {
        tracing::info!("stopped {left} Ray processes left by an earlier run");
    }
}

/// The task of each cluster (by uid), fed the cluster's watch events.
struct Clusters {
    shared: cluster::Shared,
    stop: CancellationToken,
    running: HashMap<String, Running>,
    /// The uids seen during a (re)list, until it is done.
    listed: Option<Vec<String>>,
}

impl Clusters {
    fn apply(&mut self, event: watcher::Event<RayCluster>) {
        match event {
            watcher::Event::Init => self.listed = Some(Vec::new()),
            watcher::Event::InitApply(object) | watcher::Event::Apply(object) => {
                self.update(object)
            }
            watcher::Event::InitDone => {
                // Clusters that went while the watch was down.
                if let Some(seen) = self.listed.take() {
                    for (uid, running) in &self.running {
                        if !seen.contains(uid) {
                            running.object.send_replace(None);
                        }
                    }
                }
            }
            watcher::Event::Delete(object) => {
                if let Some(running) = object
                    .metadata
                    .uid
                    .as_ref()
                    .and_then(|u| self.running.get(u))
                {
                    running.object.send_replace(None);
                }
            }
        }
    }

    /// Hands the cluster's new version to its task, starting one for a cluster not seen before.
    fn update(&mut self, object: RayCluster) {
        let Some(uid) = object.metadata.uid.clone() else {
            return;
        };
        if let Some(seen) = self.listed.as_mut() {
            seen.push(uid.clone());
        }
        let object = Arc::new(object);
        self.running
            .retain(|_, running| !running.task.is_finished());
        match self.running.get(&uid) {
            Some(running) => {
                running.object.send_replace(Some(object));
            }
            None => {
                let (tx, rx) = watch::channel(Some(object));
                let task = tokio::spawn(cluster::run(self.shared.clone(), rx, self.stop.clone()));
                self.running.insert(uid, Running { object: tx, task });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locating_ray() {
        assert_eq!(Ray::locate(Some("off")), Ok(Ray::Off));
        assert_eq!(
            Ray::locate(Some("/bin/sh")),
            Ok(Ray::Found(PathBuf::from("/bin/sh")))
        );
        assert!(
            Ray::locate(Some("/no/such/ray"))
                .unwrap_err()
                .contains("pip install")
        );
        assert!(matches!(Ray::locate(Some("sh")), Ok(Ray::Found(_))));
    }

    #[test]
    fn the_root_is_short_and_stable() {
        let a = Settings::new(
            Ray::Off,
            Path::new("/home/me/.local/share/kuberay-apiserver"),
        );
        let b = Settings::new(
            Ray::Off,
            Path::new("/home/me/.local/share/kuberay-apiserver"),
        );
        let c = Settings::new(Ray::Off, Path::new("/srv/other"));
        assert_eq!(a.root, b.root);
        assert_ne!(a.root, c.root);
        assert!(a.root.as_os_str().len() <= 40, "{}", a.root.display());
    }
}
