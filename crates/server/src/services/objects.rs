//! Reads shared by the Ray resource services: managed objects, compute templates and events.
//!
//! Every Kubernetes read of the service layer goes through here, so a watch cache can later be
//! put behind these functions without touching the services.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::events::v1::Event;
use kube::api::{DeleteParams, ListParams};
use kube::{Api, Resource};
use kuberay_api::proto::ComputeTemplate;
use kuberay_core::{compute_template, labels};
use serde::de::DeserializeOwned;
use tonic::Code;

use crate::error::{ApiError, is_not_found, kube_text};

/// The checks every get and delete makes first, with the service's own texts.
pub fn check_name_and_namespace(
    name: &str,
    namespace: &str,
    empty_name: &str,
    empty_namespace: &str,
) -> Result<(), ApiError> {
    if name.is_empty() {
        return Err(ApiError::invalid_input(empty_name));
    }
    if namespace.is_empty() {
        return Err(ApiError::invalid_input(empty_namespace));
    }
    Ok(())
}

/// Why a managed object could not be read.
pub enum ReadError {
    /// The API server said 404; the text is its message.
    NotFound(String),
    /// The object exists but lacks `app.kubernetes.io/managed-by=kuberay-apiserver`.
    NotManaged,
    /// Any other failure; the text is the client error.
    Other(String),
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
        Err(error) => Err(ReadError::Other(kube_text(&error))),
    }
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
        Err(error) => Err(ApiError::internal(kube_text(&error), failure)),
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
                ApiError::internal(
                    format!("Get compute template failed: {}", kube_text(&error)),
                    &context,
                )
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
