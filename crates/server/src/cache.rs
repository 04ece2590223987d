//! Watch caches: the objects the V1 services read, kept in memory by one watch per kind, so
//! gets and lists are answered without a Kubernetes call.
//!
//! Each [`KindCache`] lists and then watches one kind (label- or field-selected, in one
//! namespace or all) and keeps the objects in a persistent ordered map, so a list takes a
//! snapshot in O(1) and pages through it without copying.
//!
//! * **Synced or not at all.** A cache answers only after its initial list is complete, and
//!   stops answering as soon as its watch fails; it then lists again from scratch after a
//!   back-off. While it does not answer, callers read live ([`KindCache::snapshot`] is `None`).
//!   A kind whose watch is forbidden (RBAC) stays live and does not hold up readiness.
//! * **Read your writes.** The services hand every object they create or replace to
//!   [`KindCache::wrote`] and every delete to [`KindCache::deleted`], so the next read through
//!   this server sees the write even before the watch delivers it; the watch never moves an
//!   object back to an older resourceVersion than the one written.
//! * **Pages over a snapshot.** A paged list keeps its snapshot for [`PAGE_SNAPSHOT_TTL`] under
//!   an id carried in its continue token ([`PageToken`]), so every page of one list comes from
//!   the same state.
//! * **Views, not objects.** A cache keeps what reads need of each object, made once when the
//!   object arrives ([`Cached::view`]: for RayClusters, RayJobs and RayServices their V1 answer
//!   without events, protobuf-encoded), not the object: a small fraction of its memory.
//! * Objects that do not fit their type, or whose view cannot be made, are kept as
//!   [`Entry::Invalid`]: lists leave them out, gets name them.

use std::collections::VecDeque;
use std::fmt::Debug;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::events::v1::Event;
use kube::core::DeserializeGuard;
use kube::runtime::watcher;
use kube::{Api, Resource};
use kuberay_api::proto;
use kuberay_core::cluster::ClusterView;
use kuberay_core::crd::{RayCluster, RayJob, RayService};
use kuberay_core::job;
use kuberay_core::labels;
use kuberay_core::packed::Packed;
use kuberay_core::scope::NamespaceScope;
use kuberay_core::service::ServiceView;
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

/// How long a paged list's snapshot is kept for its next page.
pub const PAGE_SNAPSHOT_TTL: Duration = Duration::from_secs(300);

/// How many paged lists' snapshots are kept at most (the oldest go first).
const PAGE_SNAPSHOTS: usize = 64;

/// Objects are listed in pages of this size when a watch starts.
const LIST_PAGE_SIZE: u32 = 500;

/// Back-off before a failed watch lists again: doubles from the first to the last.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(250), Duration::from_secs(30));

/// One cached object: its view, or why it has none.
#[derive(Debug)]
pub enum Entry<V> {
    Valid(Arc<V>),
    Invalid(Arc<InvalidObject>),
}

/// An object that does not fit its type or has no view: its metadata and why.
#[derive(Debug)]
pub struct InvalidObject {
    pub metadata: kube::core::ObjectMeta,
    pub reason: String,
}

impl<V> Clone for Entry<V> {
    fn clone(&self) -> Self {
        match self {
            Entry::Valid(object) => Entry::Valid(object.clone()),
            Entry::Invalid(invalid) => Entry::Invalid(invalid.clone()),
        }
    }
}

/// What a cache keeps per object: its entry, resourceVersion and uid.
#[derive(Debug)]
struct Slot<V> {
    entry: Entry<V>,
    version: Option<u64>,
    uid: String,
}

impl<V> Clone for Slot<V> {
    fn clone(&self) -> Self {
        Self {
            entry: self.entry.clone(),
            version: self.version,
            uid: self.uid.clone(),
        }
    }
}

/// The map's key: `<namespace>/<name>` (events: `<namespace>/<object name>/<event name>`), so
/// the cache's order is the order of a Kubernetes list (etcd's key order).
pub type Key = String;

/// The objects of a cache at one moment.
pub struct Snapshot<V> {
    map: imbl::OrdMap<Key, Slot<V>>,
}

impl<V> Clone for Snapshot<V> {
    fn clone(&self) -> Self {
        Self {
            map: self.map.clone(),
        }
    }
}

impl<V> Snapshot<V> {
    /// The entry of the object `name` in `namespace`.
    pub fn get(&self, namespace: &str, name: &str) -> Option<&Entry<V>> {
        self.get_with_uid(namespace, name).map(|(entry, _)| entry)
    }

    /// The entry of the object `name` in `namespace`, and the object's uid.
    pub fn get_with_uid(&self, namespace: &str, name: &str) -> Option<(&Entry<V>, &str)> {
        self.map
            .get(&format!("{namespace}/{name}"))
            .map(|slot| (&slot.entry, slot.uid.as_str()))
    }

    /// The entries whose key starts with `prefix` (`<namespace>/` for one namespace, empty for
    /// all), in key order, starting after the key `after`.
    pub fn range<'a>(
        &'a self,
        prefix: String,
        after: Option<&str>,
    ) -> impl Iterator<Item = (&'a Key, &'a Entry<V>)> + 'a {
        use std::ops::Bound;
        let start = match after {
            Some(key) => Bound::Excluded(key.to_string()),
            None => Bound::Included(prefix.clone()),
        };
        self.map
            .range((start, Bound::Unbounded))
            .take_while(move |(key, _)| key.starts_with(&prefix))
            .map(|(key, slot)| (key, &slot.entry))
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// How a kind's objects are keyed: by namespace and name, or (events) by what they are about.
pub type KeyOf<K> = fn(&kube::core::ObjectMeta, Option<&K>) -> Key;

/// `<namespace>/<name>` of an object.
pub fn by_name<K>(meta: &kube::core::ObjectMeta, _: Option<&K>) -> Key {
    format!(
        "{}/{}",
        meta.namespace.as_deref().unwrap_or_default(),
        meta.name.as_deref().unwrap_or_default()
    )
}

/// How a kind's view of an object is made, from the object itself (so a kind kept as it is costs
/// no copy); an object without one comes back with why, and is kept as [`Entry::Invalid`].
pub type ViewOf<K, V> = fn(K) -> Result<V, (K, String)>;

/// The state shared by a cache's watch task and its readers.
struct Shared<K, V> {
    kind: &'static str,
    key_of: KeyOf<K>,
    view_of: ViewOf<K, V>,
    current: RwLock<Snapshot<V>>,
    /// Answers come from `current` only while this is set.
    synced: AtomicBool,
    /// The watch was refused (403): this kind is read live for good.
    forbidden: AtomicBool,
    /// Deletes made through this server: (key, uid) whose object the watch may still report
    /// as existing, and must not bring back.
    deleted: Mutex<Vec<(Key, String)>>,
    pages: Mutex<VecDeque<(u64, Instant, Snapshot<V>)>>,
    next_page: AtomicU64,
}

/// The watch cache of one kind `K`, keeping views `V` of its objects.
pub struct KindCache<K, V = K> {
    shared: Arc<Shared<K, V>>,
}

impl<K, V> Clone for KindCache<K, V> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl<K, V> KindCache<K, V>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    V: Send + Sync + 'static,
{
    /// Starts watching `api` with `config`, keeping `view_of` each object under `key_of` it;
    /// the task ends with `stop`.
    pub fn start(
        kind: &'static str,
        api: Api<DeserializeGuard<K>>,
        config: watcher::Config,
        key_of: KeyOf<K>,
        view_of: ViewOf<K, V>,
        stop: CancellationToken,
    ) -> Self {
        let shared = Arc::new(Shared {
            kind,
            key_of,
            view_of,
            current: RwLock::new(Snapshot {
                map: imbl::OrdMap::new(),
            }),
            synced: AtomicBool::new(false),
            forbidden: AtomicBool::new(false),
            deleted: Mutex::new(Vec::new()),
            pages: Mutex::new(VecDeque::new()),
            next_page: AtomicU64::new(rand_seed()),
        });
        let task = shared.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = run(task, api, config.page_size(LIST_PAGE_SIZE)) => {}
                () = stop.cancelled() => {}
            }
        });
        Self { shared }
    }

    /// The kind, for logs and readiness texts.
    pub fn kind(&self) -> &'static str {
        self.shared.kind
    }

    /// Whether the cache answers (its list is complete and its watch running).
    pub fn is_synced(&self) -> bool {
        self.shared.synced.load(Ordering::Acquire)
    }

    /// Whether readiness waits for this cache: not when its watch is forbidden.
    pub fn holds_up_readiness(&self) -> bool {
        !self.is_synced() && !self.shared.forbidden.load(Ordering::Acquire)
    }

    /// The current objects, or `None` while the cache does not answer (read live then).
    pub fn snapshot(&self) -> Option<Snapshot<V>> {
        if !self.is_synced() {
            return None;
        }
        let current = self
            .shared
            .current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        // Checked again: a failure between the two reads must not hand out a stale state.
        self.is_synced().then_some(current)
    }

    /// Keeps `snapshot` for the next page of a paged list; the id goes into its token.
    pub fn keep_for_paging(&self, snapshot: &Snapshot<V>) -> u64 {
        let id = self.shared.next_page.fetch_add(1, Ordering::Relaxed);
        let mut pages = self.shared.pages.lock().unwrap_or_else(|e| e.into_inner());
        pages.retain(|(_, at, _)| at.elapsed() < PAGE_SNAPSHOT_TTL);
        while pages.len() >= PAGE_SNAPSHOTS {
            pages.pop_front();
        }
        pages.push_back((id, Instant::now(), snapshot.clone()));
        id
    }

    /// The snapshot a paged list started with, if it is still kept.
    pub fn kept_for_paging(&self, id: u64) -> Option<Snapshot<V>> {
        let pages = self.shared.pages.lock().unwrap_or_else(|e| e.into_inner());
        pages
            .iter()
            .find(|(kept, at, _)| *kept == id && at.elapsed() < PAGE_SNAPSHOT_TTL)
            .map(|(_, _, snapshot)| snapshot.clone())
    }

    /// Records an object this server created or replaced, as the API server answered it.
    pub fn wrote(&self, object: &K) {
        let shared = &self.shared;
        let (key, slot) = valid_slot(shared, object.clone());
        let mut current = shared.current.write().unwrap_or_else(|e| e.into_inner());
        upsert(&mut current.map, key, slot);
    }

    /// Records that this server deleted the object `key` with `uid`.
    pub fn deleted(&self, namespace: &str, name: &str, uid: &str) {
        let key = format!("{namespace}/{name}");
        let shared = &self.shared;
        let mut current = shared.current.write().unwrap_or_else(|e| e.into_inner());
        if current.map.get(&key).is_some_and(|slot| slot.uid == uid) {
            current.map.remove(&key);
        }
        let mut deleted = shared.deleted.lock().unwrap_or_else(|e| e.into_inner());
        deleted.push((key, uid.to_string()));
    }
}

/// A process-unique start for page ids, so tokens of an earlier run or another replica do not
/// name a snapshot of this one by chance.
fn rand_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    hasher.finish() >> 1
}

/// resourceVersions compared as numbers, as both etcd-backed clusters and the embedded store
/// issue them; one that is not a number is never considered older.
fn version_of(meta: &kube::core::ObjectMeta) -> Option<u64> {
    meta.resource_version.as_deref()?.parse().ok()
}

/// Puts `slot` under `key` unless the map already holds a newer version (resourceVersions are
/// ordered across all objects of a kind, so this also keeps a late event of a deleted object
/// from replacing the object created in its place).
fn upsert<V>(map: &mut imbl::OrdMap<Key, Slot<V>>, key: Key, slot: Slot<V>) {
    if let Some(existing) = map.get(&key)
        && let (Some(have), Some(new)) = (existing.version, slot.version)
        && have > new
    {
        return;
    }
    map.insert(key, slot);
}

/// The slot of one watched object, keyed.
fn slot_of<K: Resource, V>(shared: &Shared<K, V>, guard: DeserializeGuard<K>) -> (Key, Slot<V>) {
    match guard.0 {
        Ok(object) => valid_slot(shared, object),
        Err(invalid) => {
            let key = (shared.key_of)(&invalid.metadata, None);
            (key, invalid_slot(&invalid.metadata, invalid.error))
        }
    }
}

/// The slot of an object of the cache's type: its view, or why it has none.
fn valid_slot<K: Resource, V>(shared: &Shared<K, V>, object: K) -> (Key, Slot<V>) {
    let key = (shared.key_of)(object.meta(), Some(&object));
    let version = version_of(object.meta());
    let uid = object.meta().uid.clone().unwrap_or_default();
    let slot = match (shared.view_of)(object) {
        Ok(view) => Slot {
            version,
            uid,
            entry: Entry::Valid(Arc::new(view)),
        },
        Err((object, reason)) => invalid_slot(object.meta(), reason),
    };
    (key, slot)
}

fn invalid_slot<V>(metadata: &kube::core::ObjectMeta, reason: String) -> Slot<V> {
    let metadata = kube::core::ObjectMeta {
        managed_fields: None,
        ..metadata.clone()
    };
    Slot {
        version: version_of(&metadata),
        uid: metadata.uid.clone().unwrap_or_default(),
        entry: Entry::Invalid(Arc::new(InvalidObject { metadata, reason })),
    }
}

/// Lists and watches until stopped; after a failure, marks the cache unsynced, waits and starts
/// over with a fresh list.
async fn run<K, V>(
    shared: Arc<Shared<K, V>>,
    api: Api<DeserializeGuard<K>>,
    config: watcher::Config,
) where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let mut backoff = BACKOFF.0;
    loop {
        let stopped = follow(&shared, api.clone(), config.clone()).await;
        if stopped.synced {
            backoff = BACKOFF.0;
        }
        shared.unsynced();
        if stopped.forbidden {
            shared.forbidden.store(true, Ordering::Release);
            tracing::warn!(
                kind = shared.kind,
                "watch refused, reading this kind live (grant list and watch to cache it): {}",
                stopped.failure
            );
            backoff = BACKOFF.1;
        } else {
            tracing::warn!(
                kind = shared.kind,
                "watch failed, reading live until it is listed again in {backoff:?}: {}",
                stopped.failure
            );
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(BACKOFF.1);
    }
}

/// How one list-and-watch of a cache ended.
struct WatchStopped {
    failure: String,
    /// The API server refused the list or watch (403).
    forbidden: bool,
    /// A complete list arrived before the failure.
    synced: bool,
}

/// One list-and-watch of `api` into the cache, until it fails.
async fn follow<K, V>(
    shared: &Shared<K, V>,
    api: Api<DeserializeGuard<K>>,
    config: watcher::Config,
) -> WatchStopped
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let mut stream = watcher::watcher(api, config).boxed();
    let mut buffer: Option<imbl::OrdMap<Key, Slot<V>>> = None;
    let mut synced = false;
    loop {
        let event = match stream.next().await {
            Some(Ok(event)) => event,
            Some(Err(error)) => {
                return WatchStopped {
                    failure: error.to_string(),
                    forbidden: is_forbidden(&error),
                    synced,
                };
            }
            None => {
                return WatchStopped {
                    failure: "the watch ended".to_string(),
                    forbidden: false,
                    synced,
                };
            }
        };
        match event {
            watcher::Event::Init => buffer = Some(imbl::OrdMap::new()),
            watcher::Event::InitApply(guard) => {
                let (key, slot) = slot_of(shared, guard);
                buffer.get_or_insert_default().insert(key, slot);
            }
            watcher::Event::InitDone => {
                shared.listed(buffer.take().unwrap_or_default());
                synced = true;
            }
            watcher::Event::Apply(guard) => {
                let (key, slot) = slot_of(shared, guard);
                shared.applied(key, slot);
            }
            watcher::Event::Delete(guard) => {
                let (key, slot) = slot_of(shared, guard);
                shared.removed(&key, &slot.uid);
            }
        }
    }
}

impl<K, V> Shared<K, V> {
    /// A complete list arrived: it replaces the objects, and the cache answers.
    fn listed(&self, map: imbl::OrdMap<Key, Slot<V>>) {
        let count = map.len();
        self.current.write().unwrap_or_else(|e| e.into_inner()).map = map;
        self.synced.store(true, Ordering::Release);
        self.forbidden.store(false, Ordering::Release);
        tracing::info!(kind = self.kind, objects = count, "watch cache synced");
    }

    /// The watch reports an object: kept, unless it is one this server deleted.
    fn applied(&self, key: Key, slot: Slot<V>) {
        let resurrects = {
            let deleted = self.deleted.lock().unwrap_or_else(|e| e.into_inner());
            deleted.iter().any(|(k, uid)| *k == key && *uid == slot.uid)
        };
        if !resurrects {
            let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
            upsert(&mut current.map, key, slot);
        }
    }

    /// The watch reports the object `key` with `uid` deleted.
    fn removed(&self, key: &Key, uid: &str) {
        let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
        if current
            .map
            .get(key)
            .is_some_and(|existing| existing.uid == uid)
        {
            current.map.remove(key);
        }
        drop(current);
        let mut deleted = self.deleted.lock().unwrap_or_else(|e| e.into_inner());
        deleted.retain(|(k, kept)| !(k == key && kept == uid));
    }

    /// The watch failed: the cache stops answering until the next complete list, which also
    /// settles the deletes whose events this watch did not deliver.
    fn unsynced(&self) {
        self.synced.store(false, Ordering::Release);
        self.deleted
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}

/// The watch caches of the V1 services: the managed RayClusters, RayJobs and RayServices, the
/// compute-template ConfigMaps, and the events about RayClusters and RayServices (keyed by the
/// object they are about), in the served namespace or all.
pub struct Caches {
    pub clusters: KindCache<RayCluster, ClusterView>,
    pub jobs: KindCache<RayJob, Packed<proto::RayJob>>,
    pub services: KindCache<RayService, ServiceView>,
    pub templates: KindCache<ConfigMap>,
    pub cluster_events: KindCache<Event>,
    pub service_events: KindCache<Event>,
}

/// `<namespace>/<name of the object it is about>/<event name>` of an event.
fn by_regarding(meta: &kube::core::ObjectMeta, event: Option<&Event>) -> Key {
    format!(
        "{}/{}/{}",
        meta.namespace.as_deref().unwrap_or_default(),
        event
            .and_then(|e| e.regarding.as_ref())
            .and_then(|r| r.name.as_deref())
            .unwrap_or_default(),
        meta.name.as_deref().unwrap_or_default()
    )
}

impl Caches {
    /// Starts every watch, in `scope`'s namespace or all; they stop with `stop`.
    pub fn start(client: &kube::Client, scope: &NamespaceScope, stop: &CancellationToken) -> Self {
        fn api<K>(client: &kube::Client, scope: &NamespaceScope) -> Api<DeserializeGuard<K>>
        where
            K: Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>,
        {
            match scope.served() {
                Some(namespace) => Api::namespaced(client.clone(), namespace),
                None => Api::all(client.clone()),
            }
        }
        let managed = || watcher::Config::default().labels(labels::MANAGED_BY_SELECTOR);
        let events_of =
            |kind: &str| watcher::Config::default().fields(&format!("regarding.kind={kind}"));
        Self {
            clusters: KindCache::start(
                "RayCluster",
                api(client, scope),
                managed(),
                by_name,
                Cached::view,
                stop.child_token(),
            ),
            jobs: KindCache::start(
                "RayJob",
                api(client, scope),
                managed(),
                by_name,
                Cached::view,
                stop.child_token(),
            ),
            services: KindCache::start(
                "RayService",
                api(client, scope),
                managed(),
                by_name,
                Cached::view,
                stop.child_token(),
            ),
            templates: KindCache::start(
                "ConfigMap",
                api(client, scope),
                watcher::Config::default().labels(labels::COMPUTE_TEMPLATE_SELECTOR),
                by_name,
                ConfigMap::view,
                stop.child_token(),
            ),
            cluster_events: KindCache::start(
                "Event (RayCluster)",
                api(client, scope),
                events_of("RayCluster"),
                by_regarding,
                itself,
                stop.child_token(),
            ),
            service_events: KindCache::start(
                "Event (RayService)",
                api(client, scope),
                events_of("RayService"),
                by_regarding,
                itself,
                stop.child_token(),
            ),
        }
    }

    /// The kinds whose caches are not answering yet (and are not refused their watch).
    pub fn pending(&self) -> Vec<&'static str> {
        [
            (self.clusters.kind(), self.clusters.holds_up_readiness()),
            (self.jobs.kind(), self.jobs.holds_up_readiness()),
            (self.services.kind(), self.services.holds_up_readiness()),
            (self.templates.kind(), self.templates.holds_up_readiness()),
            (
                self.cluster_events.kind(),
                self.cluster_events.holds_up_readiness(),
            ),
            (
                self.service_events.kind(),
                self.service_events.holds_up_readiness(),
            ),
        ]
        .into_iter()
        .filter_map(|(kind, pending)| pending.then_some(kind))
        .collect()
    }
}

/// A kind kept as it is, less its `managedFields`.
fn itself<K: Resource>(mut object: K) -> Result<K, (K, String)> {
    object.meta_mut().managed_fields = None;
    Ok(object)
}

/// The kinds the services read, each with its cache and the view it keeps.
pub trait Cached:
    Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
    + Clone
    + DeserializeOwned
    + serde::Serialize
    + Debug
    + Send
    + Sync
    + 'static
{
    /// What reads need of an object.
    type View: Debug + Send + Sync + 'static;

    /// The view of `object`, or the object back with why it has none (it is then left out of
    /// lists and named by gets).
    fn view(object: Self) -> Result<Self::View, (Self, String)>;

    fn cache(caches: &Caches) -> &KindCache<Self, Self::View>;
}

impl Cached for RayCluster {
    type View = ClusterView;

    fn view(object: Self) -> Result<ClusterView, (Self, String)> {
        ClusterView::of(&object).map_err(|e| (object, e.to_string()))
    }

    fn cache(caches: &Caches) -> &KindCache<Self, ClusterView> {
        &caches.clusters
    }
}

impl Cached for RayJob {
    type View = Packed<proto::RayJob>;

    fn view(object: Self) -> Result<Packed<proto::RayJob>, (Self, String)> {
        job::from_ray_job(&object)
            .map(|job| Packed::pack(&job))
            .map_err(|e| (object, e.to_string()))
    }

    fn cache(caches: &Caches) -> &KindCache<Self, Packed<proto::RayJob>> {
        &caches.jobs
    }
}

impl Cached for RayService {
    type View = ServiceView;

    fn view(object: Self) -> Result<ServiceView, (Self, String)> {
        ServiceView::of(&object).map_err(|e| (object, e.to_string()))
    }

    fn cache(caches: &Caches) -> &KindCache<Self, ServiceView> {
        &caches.services
    }
}

impl Cached for ConfigMap {
    type View = ConfigMap;

    fn view(object: Self) -> Result<ConfigMap, (Self, String)> {
        itself(object)
    }

    fn cache(caches: &Caches) -> &KindCache<Self> {
        &caches.templates
    }
}

/// Whether the API server refused the list or watch itself (403): RBAC without `list`/`watch`.
fn is_forbidden(error: &watcher::Error) -> bool {
    match error {
        watcher::Error::InitialListFailed(error)
        | watcher::Error::WatchStartFailed(error)
        | watcher::Error::WatchFailed(error) => {
            matches!(error, kube::Error::Api(status) if status.code == 403)
        }
        watcher::Error::WatchError(status) => status.code == 403,
        watcher::Error::NoResourceVersion => false,
    }
}

/// The continue token of a page served from a cache: the snapshot's id and the key of the last
/// object served, encoded as unpadded URL-safe base64 of `c1/<id>/<namespace>/<rest>` so that it
/// cannot be taken for a Kubernetes token (those are standard base64 of a JSON object).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageToken {
    pub snapshot: u64,
    pub after: Key,
}

const TOKEN_PREFIX: &str = "c1/";

impl PageToken {
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("{TOKEN_PREFIX}{}/{}", self.snapshot, self.after))
    }

    /// `None` when `token` is not a cache token (it may be a Kubernetes one).
    pub fn decode(token: &str) -> Option<Self> {
        let bytes = URL_SAFE_NO_PAD.decode(token).ok()?;
        let text = String::from_utf8(bytes).ok()?;
        let rest = text.strip_prefix(TOKEN_PREFIX)?;
        let (snapshot, after) = rest.split_once('/')?;
        Some(Self {
            snapshot: snapshot.parse().ok()?,
            after: after.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_tokens_round_trip_and_are_told_apart_from_kubernetes_ones() {
        let token = PageToken {
            snapshot: 42,
            after: "ns/a".into(),
        };
        assert_eq!(PageToken::decode(&token.encode()), Some(token));
        // A Kubernetes continue token.
        let kube = base64::engine::general_purpose::STANDARD
            .encode(r#"{"v":"meta.k8s.io/v1","rv":12,"start":"x\u0000"}"#);
        assert_eq!(PageToken::decode(&kube), None);
        assert_eq!(PageToken::decode("not base64!"), None);
    }

    fn invalid(reason: &str, version: Option<u64>) -> Slot<()> {
        Slot {
            entry: Entry::Invalid(Arc::new(InvalidObject {
                metadata: Default::default(),
                reason: reason.into(),
            })),
            version,
            uid: "u".into(),
        }
    }

    #[test]
    fn snapshots_range_in_kubernetes_list_order() {
        let mut map = imbl::OrdMap::new();
        for key in ["a/1", "b/1", "b/2", "b/3", "b-c/1", "c/1"] {
            map.insert(key.to_string(), invalid("", None));
        }
        let snapshot = Snapshot { map };
        let keys = |items: Vec<(&Key, &Entry<()>)>| {
            items
                .into_iter()
                .map(|(k, _)| k.clone())
                .collect::<Vec<_>>()
        };
        // etcd's order: "b-c/" sorts before "b/".
        assert_eq!(
            keys(snapshot.range(String::new(), None).collect()),
            ["a/1", "b-c/1", "b/1", "b/2", "b/3", "c/1"]
        );
        assert_eq!(
            keys(snapshot.range("b/".into(), None).collect()),
            ["b/1", "b/2", "b/3"]
        );
        assert_eq!(
            keys(snapshot.range("b/".into(), Some("b/1")).collect()),
            ["b/2", "b/3"]
        );
        assert_eq!(snapshot.range(String::new(), Some("b/2")).count(), 2);
    }

    #[test]
    fn only_a_403_counts_as_a_refused_watch() {
        let api = |code: u16, message: &str| {
            kube::Error::Api(Box::new(
                kube::core::Status::failure(message, "").with_code(code),
            ))
        };
        assert!(is_forbidden(&watcher::Error::InitialListFailed(api(
            403,
            "forbidden"
        ))));
        // A 403 in a message (here a resourceVersion) is not a refusal.
        assert!(!is_forbidden(&watcher::Error::WatchStartFailed(api(
            410,
            "too old resource version: 12403 (14030)"
        ))));
        assert!(!is_forbidden(&watcher::Error::NoResourceVersion));
    }

    #[test]
    fn an_older_version_never_replaces_a_newer_one() {
        let mut map = imbl::OrdMap::new();
        let reason = |map: &imbl::OrdMap<Key, Slot<()>>| match &map["ns/n"].entry {
            Entry::Invalid(invalid) => invalid.reason.clone(),
            Entry::Valid(_) => unreachable!(),
        };
        upsert(&mut map, "ns/n".into(), invalid("v5", Some(5)));
        upsert(&mut map, "ns/n".into(), invalid("v4", Some(4)));
        assert_eq!(reason(&map), "v5");
        upsert(&mut map, "ns/n".into(), invalid("v6", Some(6)));
        assert_eq!(reason(&map), "v6");
    }
}
