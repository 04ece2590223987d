//! The services' seam to Kubernetes ([`KubeIo`]): every read and write of the service layer goes
//! through here, reads from the watch caches when they answer; and the checks and texts the
//! services share.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::core::DeserializeGuard;
use kube::{Api, Resource};

use crate::cache::{Cached, Caches, Entry, KindCache, PageToken, Snapshot};
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
    /// The object exists but does not fit its type or cannot be shown (the text says why).
    Unreadable(String),
    /// Any other failure.
    Other(kube::Error),
}

/// The texts a service's reads and deletes answer with (the Go server's, which differ by service).
pub struct ObjectTexts {
    /// The Kubernetes kind, in the texts of objects that cannot be shown.
    pub kind: &'static str,
    /// The kind the "not managed" text names (the Go server says RayCluster for jobs too).
    pub not_managed_kind: &'static str,
    /// The object in `<noun> <name> not found`.
    pub noun: &'static str,
    /// `<get_failed>: <cause>`: any other failure to read.
    pub get_failed: &'static str,
    /// What a delete wraps its failures to read or find the object in.
    pub delete_wrap: &'static str,
    /// `<delete_failed> <name>.`: the context of a failed delete.
    pub delete_failed: &'static str,
}

impl ReadError {
    /// The answer for a failure to read the object `name` of `namespace`.
    pub fn into_api(self, texts: &ObjectTexts, namespace: &str, name: &str) -> ApiError {
        match self {
            ReadError::NotFound(text) => {
                ApiError::not_found(text, &format!("{} {name} not found", texts.noun))
            }
            ReadError::NotManaged => not_managed(texts.not_managed_kind, name),
            ReadError::Unreadable(reason) => unconvertible(texts.kind, namespace, name, reason),
            ReadError::Other(error) => ApiError::from_kube(&error, |text| {
                ApiError::plain(format!("{}: {text}", texts.get_failed))
            }),
        }
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

/// The view of a managed object as read, with the object's uid (for a delete of exactly it).
#[derive(Debug)]
pub struct Held<V> {
    pub view: Arc<V>,
    pub uid: String,
}

/// The one way the services reach Kubernetes: reads come from the watch caches while they
/// answer ([`Caches`]) and from the API server otherwise; writes go to the API server and are
/// recorded in the caches, so the next read through this server sees them.
#[derive(Clone)]
pub struct KubeIo {
    client: kube::Client,
    caches: Option<Arc<Caches>>,
    left_out: LeftOut,
}

impl KubeIo {
    /// `caches`: `None` reads everything live (`--watch-cache=false`).
    pub fn new(client: kube::Client, caches: Option<Arc<Caches>>, left_out: LeftOut) -> Self {
        Self {
            client,
            caches,
            left_out,
        }
    }

    pub fn client(&self) -> &kube::Client {
        &self.client
    }

    pub fn left_out(&self) -> &LeftOut {
        &self.left_out
    }

    fn api<K: Cached>(&self, namespace: &str) -> Api<K> {
        Api::namespaced(self.client.clone(), namespace)
    }

    fn cache<K: Cached>(&self) -> Option<&KindCache<K, K::View>> {
        self.caches.as_deref().map(K::cache)
    }

    /// Reads the view of an object ([`Cached::view`]) and checks that this server manages it. A
    /// cache holds managed objects only, so an object it does not hold is read live: that
    /// tells "not found" from "not managed" with the API server's own text.
    pub async fn get_managed<K: Cached>(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Held<K::View>, ReadError> {
        if let Some(snapshot) = self.cache::<K>().and_then(KindCache::snapshot) {
            match snapshot.get_with_uid(namespace, name) {
                Some((Entry::Valid(view), uid)) => {
                    return Ok(Held {
                        view: view.clone(),
                        uid: uid.to_string(),
                    });
                }
                Some((Entry::Invalid(invalid), _)) => {
                    return Err(ReadError::Unreadable(invalid.reason.clone()));
                }
                None => {}
            }
        }
        let object = self.get_managed_live::<K>(namespace, name).await?;
        let uid = object.meta().uid.clone().unwrap_or_default();
        let view = K::view(object).map_err(|(_, reason)| ReadError::Unreadable(reason))?;
        Ok(Held {
            view: Arc::new(view),
            uid,
        })
    }

    /// [`Self::get_managed`], failures answered with `texts`.
    pub async fn read<K: Cached>(
        &self,
        namespace: &str,
        name: &str,
        texts: &ObjectTexts,
    ) -> Result<Held<K::View>, ApiError> {
        self.get_managed::<K>(namespace, name)
            .await
            .map_err(|error| error.into_api(texts, namespace, name))
    }

    /// Deletes the managed object `name` of `namespace`: read first (so an object this server
    /// does not manage is refused), then deleted by uid, failures answered with `texts`.
    pub async fn delete_managed<K: Cached>(
        &self,
        namespace: &str,
        name: &str,
        texts: &ObjectTexts,
    ) -> Result<(), ApiError> {
        let held = self
            .read::<K>(namespace, name, texts)
            .await
            .map_err(|e| e.wrap(texts.delete_wrap))?;
        self.delete::<K>(
            namespace,
            name,
            Some(&held.uid),
            &format!("{} {name}.", texts.delete_failed),
            |text| {
                ApiError::not_found(text, &format!("{} {name} not found", texts.noun))
                    .wrap(texts.delete_wrap)
            },
        )
        .await
    }

    /// [`Self::get_managed`] from the API server, for a read-modify-write.
    pub async fn get_managed_live<K: Cached>(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<K, ReadError> {
        match self.api::<K>(namespace).get(name).await {
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

    /// The views of one page of the managed objects of `K` (in one namespace or all) and the
    /// continue token of the next page (`limit` <= 0: no paging). Objects that do not fit their
    /// type or have no view are left out and recorded. From a cache, the pages of one list come from one snapshot and the
    /// tokens are the cache's ([`PageToken`]); a Kubernetes token continues a live list.
    pub async fn list_page<K: Cached>(
        &self,
        namespace: Option<&str>,
        limit: i64,
        continue_token: &str,
    ) -> Result<(Vec<Arc<K::View>>, String), kube::Error> {
        if let Some(cache) = self.cache::<K>() {
            let token = PageToken::decode(continue_token);
            if continue_token.is_empty() || token.is_some() {
                let kept = token
                    .as_ref()
                    .and_then(|t| cache.kept_for_paging(t.snapshot).map(|s| (t.snapshot, s)));
                let (id, snapshot) = match kept {
                    Some((id, snapshot)) => (Some(id), Some(snapshot)),
                    None => (None, cache.snapshot()),
                };
                match snapshot {
                    Some(snapshot) => {
                        let after = token.map(|t| t.after);
                        return Ok(self.page(cache, &snapshot, id, namespace, limit, after));
                    }
                    None if token.is_some() => {
                        return Err(kube::Error::Api(Box::new(
                            kube::core::Status::failure(
                                "the list this continue token belongs to expired; list again",
                                "Expired",
                            )
                            .with_code(410),
                        )));
                    }
                    None => {}
                }
            }
        }
        let api: Api<DeserializeGuard<K>> = match namespace {
            Some(namespace) => Api::namespaced(self.client.clone(), namespace),
            None => Api::all(self.client.clone()),
        };
        let list = api
            .list(&page(labels::MANAGED_BY_SELECTOR, limit, continue_token))
            .await?;
        let kind = K::kind(&());
        let mut objects = Vec::with_capacity(list.items.len());
        for DeserializeGuard(item) in list.items {
            match item {
                Ok(object) => match K::view(object) {
                    Ok(view) => objects.push(Arc::new(view)),
                    Err((object, reason)) => {
                        self.left_out
                            .record(kind_name(&kind), object.meta(), &reason)
                    }
                },
                Err(invalid) => {
                    self.left_out
                        .record(kind_name(&kind), &invalid.metadata, &invalid.error);
                }
            }
        }
        Ok((objects, list.metadata.continue_.unwrap_or_default()))
    }

    /// A page of `snapshot` after the key `after`, as a Kubernetes list pages: at most `limit`
    /// objects (those left out count), and a token when more follow.
    fn page<K: Cached>(
        &self,
        cache: &KindCache<K, K::View>,
        snapshot: &Snapshot<K::View>,
        id: Option<u64>,
        namespace: Option<&str>,
        limit: i64,
        after: Option<String>,
    ) -> (Vec<Arc<K::View>>, String) {
        let prefix = namespace.map(|n| format!("{n}/")).unwrap_or_default();
        let mut entries = snapshot.range(prefix, after.as_deref()).peekable();
        let limit = usize::try_from(limit).unwrap_or(0);
        let kind = K::kind(&());
        let mut objects = Vec::new();
        let mut taken = 0;
        let mut last = None;
        for (key, entry) in entries.by_ref() {
            match entry {
                Entry::Valid(object) => objects.push(object.clone()),
                Entry::Invalid(invalid) => {
                    self.left_out
                        .record(kind_name(&kind), &invalid.metadata, &invalid.reason);
                }
            }
            taken += 1;
            last = Some(key);
            if taken == limit {
                break;
            }
        }
        let next = match last {
            Some(last) if limit > 0 && taken == limit && entries.peek().is_some() => PageToken {
                snapshot: id.unwrap_or_else(|| cache.keep_for_paging(snapshot)),
                after: last.clone(),
            }
            .encode(),
            _ => String::new(),
        };
        (objects, next)
    }

    /// Events about objects of `kind` (`regarding.kind`), in one namespace or in all, optionally
    /// for one object name, grouped by (namespace, name) in list order.
    pub async fn events(
        &self,
        namespace: Option<&str>,
        kind: &str,
        name: Option<&str>,
    ) -> Result<BTreeMap<(String, String), Vec<Event>>, kube::Error> {
        let cache = self.caches.as_deref().and_then(|c| match kind {
            "RayCluster" => Some(&c.cluster_events),
            "RayService" => Some(&c.service_events),
            _ => None,
        });
        let mut grouped: BTreeMap<(String, String), Vec<Event>> = BTreeMap::new();
        if let Some(snapshot) = cache.and_then(KindCache::snapshot) {
            let prefix = match (namespace, name) {
                (Some(namespace), Some(name)) => format!("{namespace}/{name}/"),
                (Some(namespace), None) => format!("{namespace}/"),
                (None, _) => String::new(),
            };
            for (_, entry) in snapshot.range(prefix, None) {
                if let Entry::Valid(event) = entry {
                    let about = event.regarding.as_ref().and_then(|r| r.name.as_deref());
                    if name.is_some() && about != name {
                        continue;
                    }
                    let key = (
                        event.metadata.namespace.clone().unwrap_or_default(),
                        about.unwrap_or_default().to_string(),
                    );
                    grouped.entry(key).or_default().push(Event::clone(event));
                }
            }
            return Ok(grouped);
        }
        let api: Api<Event> = match namespace {
            Some(namespace) => Api::namespaced(self.client.clone(), namespace),
            None => Api::all(self.client.clone()),
        };
        let mut selector = format!("regarding.kind={kind}");
        if let Some(name) = name {
            selector.push_str(&format!(",regarding.name={name}"));
        }
        let list = api.list(&ListParams::default().fields(&selector)).await?;
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

    /// The events about one object of `kind`, in list order; a failure is logged and answers
    /// none (as the Go server does).
    pub async fn object_events(&self, namespace: &str, kind: &str, name: &str) -> Vec<Event> {
        match self.events(Some(namespace), kind, Some(name)).await {
            Ok(mut grouped) => grouped
                .remove(&(namespace.to_string(), name.to_string()))
                .unwrap_or_default(),
            Err(error) => {
                tracing::warn!(
                    "listing events of {kind} {namespace}/{name} failed: {}",
                    kube_text(&error)
                );
                Vec::new()
            }
        }
    }

    /// [`Self::events`] about objects of `kind` in one namespace or all; a failure is logged and
    /// answers none.
    pub async fn kind_events(
        &self,
        namespace: Option<&str>,
        kind: &str,
    ) -> BTreeMap<(String, String), Vec<Event>> {
        self.events(namespace, kind, None)
            .await
            .unwrap_or_else(|error| {
                tracing::warn!("listing {kind} events failed: {}", kube_text(&error));
                BTreeMap::new()
            })
    }

    /// The ConfigMap `name` of `namespace`: a compute template from the cache, anything else
    /// (another ConfigMap of that name, or one the cache has not seen) live.
    pub async fn config_map(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Arc<ConfigMap>, kube::Error> {
        if let Some(snapshot) = self.cache::<ConfigMap>().and_then(KindCache::snapshot)
            && let Some(Entry::Valid(config_map)) = snapshot.get(namespace, name)
        {
            return Ok(config_map.clone());
        }
        self.api::<ConfigMap>(namespace)
            .get(name)
            .await
            .map(Arc::new)
    }

    /// The compute-template ConfigMaps of one namespace or all, in list order.
    pub async fn template_config_maps(
        &self,
        namespace: Option<&str>,
    ) -> Result<Vec<Arc<ConfigMap>>, kube::Error> {
        if let Some(snapshot) = self.cache::<ConfigMap>().and_then(KindCache::snapshot) {
            let prefix = namespace.map(|n| format!("{n}/")).unwrap_or_default();
            return Ok(snapshot
                .range(prefix, None)
                .filter_map(|(_, entry)| match entry {
                    Entry::Valid(config_map) => Some(config_map.clone()),
                    Entry::Invalid(_) => None,
                })
                .collect());
        }
        let api: Api<ConfigMap> = match namespace {
            Some(namespace) => Api::namespaced(self.client.clone(), namespace),
            None => Api::all(self.client.clone()),
        };
        let list = api
            .list(&ListParams::default().labels(labels::COMPUTE_TEMPLATE_SELECTOR))
            .await?;
        Ok(list.items.into_iter().map(Arc::new).collect())
    }

    /// Reads the named compute templates of a namespace.
    ///
    /// A missing template is FAILED_PRECONDITION (the Go server answers 500) naming the template
    /// and namespace; other failures are INTERNAL. `owner` is the `<ns>/<name>` text of the
    /// message and `wrap` the RPC's context text.
    pub async fn compute_templates(
        &self,
        namespace: &str,
        names: &[String],
        owner: &str,
        wrap: &str,
    ) -> Result<BTreeMap<String, ComputeTemplate>, ApiError> {
        let mut templates = BTreeMap::new();
        for name in names {
            if templates.contains_key(name) {
                continue;
            }
            names::check_object_name("Compute template name", name)
                .map_err(|e| ApiError::invalid_input(e.to_string()).wrap(wrap))?;
            let config_map = self.config_map(namespace, name).await.map_err(|error| {
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

    /// Creates `object` in `namespace` ([`create`]) and records it in its cache.
    pub async fn create<K: Cached>(&self, namespace: &str, object: K) -> Result<K, kube::Error> {
        let created = create(&self.client, namespace, object).await?;
        self.wrote(&created);
        Ok(created)
    }

    /// Replaces the object `name` of `namespace` and records the result in its cache.
    pub async fn replace<K: Cached>(
        &self,
        namespace: &str,
        name: &str,
        object: &K,
    ) -> Result<K, kube::Error> {
        let replaced = self
            .api::<K>(namespace)
            .replace(name, &PostParams::default(), object)
            .await?;
        self.wrote(&replaced);
        Ok(replaced)
    }

    fn wrote<K: Cached>(&self, object: &K) {
        if let Some(cache) = self.cache::<K>() {
            cache.wrote(object);
        }
    }

    /// Deletes the object `name` (with `uid`, as just read). One that disappeared in between (a
    /// finalizer finished, another client deleted it) is reported with `missing`, like an
    /// object that never existed; other failures are INTERNAL with `failure` as the context
    /// (the Go server's text).
    pub async fn delete<K: Cached>(
        &self,
        namespace: &str,
        name: &str,
        uid: Option<&str>,
        failure: &str,
        missing: impl FnOnce(String) -> ApiError,
    ) -> Result<(), ApiError> {
        let outcome = self
            .api::<K>(namespace)
            .delete(name, &DeleteParams::default())
            .await;
        if let (Some(cache), Some(uid)) = (self.cache::<K>(), uid)
            && (outcome.is_ok() || outcome.as_ref().is_err_and(is_not_found))
        {
            cache.deleted(namespace, name, uid);
        }
        match outcome {
            Ok(_) => Ok(()),
            Err(error) if is_not_found(&error) => Err(missing(kube_text(&error))),
            Err(error) => Err(ApiError::from_kube(&error, |text| {
                ApiError::internal(text, failure)
            })),
        }
    }
}

/// Kubernetes list parameters of a V1 paged list (`limit` <= 0 means no paging).
fn page(selector: &str, limit: i64, continue_token: &str) -> ListParams {
    let mut params = ListParams::default().labels(selector);
    if limit > 0 {
        params = params.limit(u32::try_from(limit).unwrap_or(u32::MAX));
    }
    if !continue_token.is_empty() {
        params = params.continue_token(continue_token);
    }
    params
}
