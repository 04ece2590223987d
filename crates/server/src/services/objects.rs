//! Reads shared by the Ray resource services: managed objects, compute templates and events.
//!
//! Every Kubernetes read of the service layer goes through here, so a watch cache can later be
//! put behind these functions without touching the services.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::core::DeserializeGuard;
use kube::{Api, Resource};
use kuberay_api::proto::ComputeTemplate;
use kuberay_core::scope::NamespaceScope;
use kuberay_core::{compute_template, labels, names};
use serde::de::DeserializeOwned;
use tonic::Code;

use crate::error::{ApiError, is_not_found, kube_text};
use crate::metrics::Metrics;

/// How a service names its objects in the texts of its name checks.
pub struct Naming {
    /// The field named when a name breaks the Kubernetes rules, e.g. `Cluster name`.
    pub field: &'static str,
    /// The service's text for an empty name.
    pub empty_name: &'static str,
    /// The service's text for an empty namespace.
    pub empty_namespace: &'static str,
}

impl Naming {
    /// The checks every get and delete makes first: the service's own texts for empty values,
    /// then the Kubernetes name rules, so no input can change which object a request reaches,
    /// then the server's namespace scope.
    pub fn check(
        &self,
        scope: &NamespaceScope,
        name: &str,
        namespace: &str,
    ) -> Result<(), ApiError> {
        if name.is_empty() {
            return Err(ApiError::invalid_input(self.empty_name));
        }
        if namespace.is_empty() {
            return Err(ApiError::invalid_input(self.empty_namespace));
        }
        names::check_namespace(namespace)
            .and_then(|()| names::check_object_name(self.field, name))
            .map_err(|e| ApiError::invalid_input(e.to_string()))?;
        in_scope(scope, namespace)
    }

    /// The check of a list in one namespace.
    pub fn check_namespace(&self, scope: &NamespaceScope, namespace: &str) -> Result<(), ApiError> {
        if namespace.is_empty() {
            return Err(ApiError::invalid_input(self.empty_namespace));
        }
        names::check_namespace(namespace).map_err(|e| ApiError::invalid_input(e.to_string()))?;
        in_scope(scope, namespace)
    }
}

/// PERMISSION_DENIED (403) for a namespace this server does not serve (`--namespace`), before
/// any Kubernetes call.
pub fn in_scope(scope: &NamespaceScope, namespace: &str) -> Result<(), ApiError> {
    scope
        .check(namespace)
        .map_err(|refused| ApiError::with_code(Code::PermissionDenied, refused.to_string()))
}

/// Objects that a list answer leaves out because they cannot be read or converted (written by
/// another client, or by a newer operator): one bad object must not break the list for everyone.
/// Each is logged once per version, with its namespace, name and the reason, and counted in
/// `/metrics` every time it is left out.
#[derive(Clone)]
pub struct LeftOut {
    metrics: Arc<Metrics>,
    logged: Arc<Mutex<HashSet<String>>>,
}

/// How many object versions [`LeftOut`] remembers having logged before it starts afresh.
const LOGGED_VERSIONS: usize = 10_000;

impl LeftOut {
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Self {
            metrics,
            logged: Arc::default(),
        }
    }

    /// Records that the object with `metadata` is left out of an answer for `reason`.
    pub fn record(
        &self,
        kind: &'static str,
        metadata: &ObjectMeta,
        reason: &dyn std::fmt::Display,
    ) {
        self.metrics.left_out(kind);
        let namespace = metadata.namespace.as_deref().unwrap_or_default();
        let name = metadata.name.as_deref().unwrap_or_default();
        let version = metadata.resource_version.as_deref().unwrap_or_default();
        let key = format!("{kind}/{namespace}/{name}/{version}");
        let mut logged = self.logged.lock().unwrap_or_else(|e| e.into_inner());
        if logged.len() >= LOGGED_VERSIONS {
            logged.clear();
        }
        if logged.insert(key) {
            tracing::warn!(kind, namespace, name, "left out of list answers: {reason}");
        }
    }
}

/// One page of objects of `K` with `params` (in one namespace or all) and the continue token of
/// the next page; objects that do not deserialize are left out and recorded in `left_out`.
pub async fn list_page<K>(
    client: &kube::Client,
    namespace: Option<&str>,
    params: &ListParams,
    left_out: &LeftOut,
) -> Result<(Vec<K>, String), kube::Error>
where
    K: Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
{
    let api: Api<DeserializeGuard<K>> = match namespace {
        Some(namespace) => Api::namespaced(client.clone(), namespace),
        None => Api::all(client.clone()),
    };
    let list = api.list(params).await?;
    let kind = K::kind(&());
    let mut objects = Vec::with_capacity(list.items.len());
    for DeserializeGuard(item) in list.items {
        match item {
            Ok(object) => objects.push(object),
            Err(invalid) => left_out.record(kind_name(&kind), &invalid.metadata, &invalid.error),
        }
    }
    Ok((objects, list.metadata.continue_.unwrap_or_default()))
}

/// The kinds this server lists, as static label values.
fn kind_name(kind: &str) -> &'static str {
    match kind {
        "RayCluster" => "RayCluster",
        "RayJob" => "RayJob",
        "RayService" => "RayService",
        "ConfigMap" => "ConfigMap",
        _ => "other",
    }
}

/// Why a managed object could not be read.
pub enum ReadError {
    /// The API server said 404; the text is its message.
    NotFound(String),
    /// The object exists but lacks `app.kubernetes.io/managed-by=kuberay-apiserver`.
    NotManaged,
    /// The object exists but does not fit its type (the text says why).
    Unreadable(String),
    /// Any other failure.
    Other(kube::Error),
}

/// Reads an object and checks that this server manages it.
pub async fn get_managed<K>(api: &Api<K>, name: &str) -> Result<K, ReadError>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    match api.get(name).await {
        Ok(object) => {
            let managed = object
                .meta()
                .labels
                .as_ref()
                .and_then(|l| l.get(labels::MANAGED_BY))
                .is_some_and(|v| v == labels::MANAGED_BY_VALUE);
            if managed {
                Ok(object)
            } else {
                Err(ReadError::NotManaged)
            }
        }
        Err(error) if is_not_found(&error) => Err(ReadError::NotFound(kube_text(&error))),
        Err(kube::Error::SerdeError(error)) => Err(ReadError::Unreadable(error.to_string())),
        Err(error) => Err(ReadError::Other(error)),
    }
}

/// Creates `object` in `namespace` and answers the stored object.
///
/// The object is encoded and dropped before the request leaves, and the answer is decoded
/// straight from the one buffer it arrives in, so a large object is held about twice at most
/// (kube's `Api::create` keeps the object during the call and copies the answer twice more).
/// Failures are the errors `Api::create` gives: `Api` with the Kubernetes `Status`.
pub async fn create<K>(client: &kube::Client, namespace: &str, object: K) -> Result<K, kube::Error>
where
    K: Resource<DynamicType = ()> + serde::Serialize + DeserializeOwned,
{
    use http_body_util::BodyExt;

    let body = serde_json::to_vec(&object).map_err(kube::Error::SerdeError)?;
    drop(object);
    let request = kube::core::Request::new(K::url_path(&(), Some(namespace)))
        .create(&PostParams::default(), body)
        .map_err(kube::Error::BuildRequest)?;
    let response = client.send(request.map(kube::client::Body::from)).await?;
    let code = response.status();
    let answer = response.into_body().collect().await?.to_bytes();
    if code.is_client_error() || code.is_server_error() {
        let status = serde_json::from_slice::<kube::core::Status>(&answer).unwrap_or_else(|_| {
            kube::core::Status::failure(
                String::from_utf8_lossy(&answer).trim(),
                "Failed to parse error data",
            )
            .with_code(code.as_u16())
        });
        return Err(kube::Error::Api(Box::new(status)));
    }
    serde_json::from_slice(&answer).map_err(kube::Error::SerdeError)
}

/// Deletes an object that was just read. One that disappeared in between (a finalizer finished,
/// another client deleted it) is reported with `missing`, like an object that never existed;
/// other failures are INTERNAL with `failure` as the context (the Go server's text).
pub async fn delete<K>(
    api: &Api<K>,
    name: &str,
    failure: &str,
    missing: impl FnOnce(String) -> ApiError,
) -> Result<(), ApiError>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    match api.delete(name, &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(error) if is_not_found(&error) => Err(missing(kube_text(&error))),
        Err(error) => Err(ApiError::from_kube(&error, |text| {
            ApiError::internal(text, failure)
        })),
    }
}

/// The error for an object that exists but is not managed by this server: NOT_FOUND (the Go
/// server answers 500), with its wording.
pub fn not_managed(kind: &str, name: &str) -> ApiError {
    ApiError::with_code(
        Code::NotFound,
        format!("{kind} with name {name} not managed by kuberay-apiserver"),
    )
}

/// The error for an object that cannot be converted or read into its type: INTERNAL naming it.
pub fn unconvertible(
    kind: &str,
    namespace: &str,
    name: &str,
    reason: impl std::fmt::Display,
) -> ApiError {
    ApiError::internal(
        reason,
        &format!("Failed to convert {kind} {namespace}/{name}"),
    )
}

/// Reads the named compute templates of a namespace.
///
/// A missing template is FAILED_PRECONDITION (the Go server answers 500) naming the template and
/// namespace; other failures are INTERNAL. `owner` is the `<ns>/<name>` text of the message and
/// `wrap` the RPC's context text.
pub async fn compute_templates(
    client: &kube::Client,
    namespace: &str,
    names: &[String],
    owner: &str,
    wrap: &str,
) -> Result<BTreeMap<String, ComputeTemplate>, ApiError> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let mut templates = BTreeMap::new();
    for name in names {
        if templates.contains_key(name) {
            continue;
        }
        names::check_object_name("Compute template name", name)
            .map_err(|e| ApiError::invalid_input(e.to_string()).wrap(wrap))?;
        let config_map = api.get(name).await.map_err(|error| {
            let context = format!(
                "Failed to populate compute template for ({owner}): Cannot get compute template for name '{name}' in namespace '{namespace}', error"
            );
            if is_not_found(&error) {
                let cause = format!(
                    "NotFoundError: Compute template {name} not found: {}",
                    kube_text(&error)
                );
                ApiError::failed_precondition(
                    &format!("Compute template {name} does not exist in namespace {namespace}"),
                    format!("{context}: {cause}"),
                )
                .wrap(wrap)
            } else {
                ApiError::from_kube(&error, |text| {
                    ApiError::internal(format!("Get compute template failed: {text}"), &context)
                })
                .wrap(wrap)
            }
        })?;
        templates.insert(name.clone(), compute_template::from_config_map(&config_map));
    }
    Ok(templates)
}

/// Events about objects of `kind` (`regarding.kind`), in one namespace or in all, optionally for
/// one object name, grouped by (namespace, name) in list order.
pub async fn events_by_object(
    client: &kube::Client,
    namespace: Option<&str>,
    kind: &str,
    name: Option<&str>,
) -> Result<BTreeMap<(String, String), Vec<Event>>, kube::Error> {
    let api: Api<Event> = match namespace {
        Some(namespace) => Api::namespaced(client.clone(), namespace),
        None => Api::all(client.clone()),
    };
    let mut selector = format!("regarding.kind={kind}");
    if let Some(name) = name {
        selector.push_str(&format!(",regarding.name={name}"));
    }
    let list = api.list(&ListParams::default().fields(&selector)).await?;
    let mut grouped: BTreeMap<(String, String), Vec<Event>> = BTreeMap::new();
    for event in list.items {
        let key = (
            event.metadata.namespace.clone().unwrap_or_default(),
            event
                .regarding
                .as_ref()
                .and_then(|r| r.name.clone())
                .unwrap_or_default(),
        );
        grouped.entry(key).or_default().push(event);
    }
    Ok(grouped)
}

/// Kubernetes list parameters of a V1 paged list (`limit` <= 0 means no paging).
pub fn page(selector: &str, limit: i64, continue_token: &str) -> ListParams {
    let mut params = ListParams::default().labels(selector);
    if limit > 0 {
        params = params.limit(u32::try_from(limit).unwrap_or(u32::MAX));
    }
    if !continue_token.is_empty() {
        params = params.continue_token(continue_token);
    }
    params
}
