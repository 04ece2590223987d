//! What the RayJob and RayService controllers share: running a kube-runtime controller that is
//! also woken by the RayClusters its objects own, the error of a reconcile, and finalizers.

use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube::{Api, Resource, ResourceExt};
use kuberay_core::crd::RayCluster;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::cluster::Shared;

/// How soon an object whose reconcile failed is looked at again.
pub(crate) const RETRY: Duration = Duration::from_secs(2);

/// Why a reconcile stopped; it is tried again after [`RETRY`].
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    #[error(transparent)]
    Kube(#[from] kube::Error),
}

/// Runs `reconcile` for every object of kind `K` (and again when a RayCluster it owns changes)
/// until `stop`. A reconcile still running then is dropped: each is a series of whole API
/// requests that the next run repeats or carries on from the status (a graceful shutdown of
/// the controller is not waited for: it waits for its first list, which a server stopping
/// right after its start never finishes).
pub(crate) async fn run<K, F, Fut>(shared: Shared, stop: CancellationToken, reconcile: F)
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    F: FnMut(Arc<K>, Arc<Shared>) -> Fut,
    Fut: Future<Output = Result<Action, Error>> + Send + 'static,
{
    let objects: Api<K> = Api::all(shared.client.clone());
    let clusters: Api<RayCluster> = Api::all(shared.client.clone());
    let controller = Controller::new(objects, watcher::Config::default())
        .owns(clusters, watcher::Config::default())
        .run(reconcile, retry, Arc::new(shared))
        .for_each(|_| async {});
    tokio::select! {
        _ = controller => {}
        _ = stop.cancelled() => {}
    }
}

fn retry<K: Resource<DynamicType = ()>>(object: Arc<K>, error: &Error, _: Arc<Shared>) -> Action {
    tracing::debug!(
        "reconciling {} {}/{}: {error}",
        K::kind(&()),
        object.meta().namespace.as_deref().unwrap_or_default(),
        object.meta().name.as_deref().unwrap_or_default()
    );
    Action::requeue(RETRY)
}

/// Adds or removes the finalizer `name` of `object`, guarded by its resourceVersion.
pub(crate) async fn set_finalizer<K>(
    api: &Api<K>,
    object: &K,
    name: &str,
    present: bool,
) -> Result<(), kube::Error>
where
    K: Resource + Clone + DeserializeOwned + Debug,
{
    let mut finalizers: Vec<&str> = object
        .finalizers()
        .iter()
        .map(String::as_str)
        .filter(|f| *f != name)
        .collect();
    if present {
        finalizers.push(name);
    }
    let finalizers = if finalizers.is_empty() {
        Value::Null
    } else {
        json!(finalizers)
    };
    let patch = json!({"metadata": {
        "finalizers": finalizers,
        "resourceVersion": object.resource_version(),
    }});
    api.patch(
        &object.name_any(),
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await
    .map(|_| ())
}

/// Whether `object` carries the finalizer `name`.
pub(crate) fn has_finalizer<K: Resource>(object: &K, name: &str) -> bool {
    object.finalizers().iter().any(|f| f == name)
}
