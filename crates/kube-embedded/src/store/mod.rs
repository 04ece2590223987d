//! Durable object storage on redb, with kube-apiserver write semantics.
//!
//! Layout:
//! * table `objects`: key `"<group>/<plural>\0<namespace>\0<name>"` (namespace is
//!   empty for cluster-scoped kinds), value = the object's JSON. A prefix range
//!   scan therefore lists one resource (optionally one namespace) ordered by
//!   namespace, then name.
//! * table `meta`: `format` (a marker refusing foreign files) and
//!   `resourceVersion` (a global, monotonically increasing u64 like etcd's
//!   revision).
//!
//! Writes (group commit): every write is an operation handed over a channel to one
//! writer thread. The writer takes every operation that is pending, runs them one
//! after the other inside ONE redb write transaction (each sees the effects of the
//! ones before it, and is validated on its own: an operation that fails changes
//! nothing and does not affect the others), commits once with
//! `Durability::Immediate` (fsync), then publishes the watch events of the batch
//! in commit order and only then answers each caller. A caller is therefore
//! answered only once its write is durable, and the cost of the fsync is shared
//! by every write of the batch. resourceVersions are assigned by the writer in
//! the order the operations are applied: unique and increasing.
//!
//! Consistent paging: a list whose first page has a `continue` token pins the
//! redb read transaction it was served from (a snapshot at the list's
//! resourceVersion); later pages read that snapshot. A snapshot is dropped when
//! the last page of every pagination that started on it has been served, or
//! [`paging::SNAPSHOT_IDLE`] after the last page read from it (an abandoned
//! pagination), and at most [`paging::MAX_SNAPSHOTS`] are kept (the least
//! recently used goes first). While pinned, a snapshot keeps redb from reusing the pages that
//! later commits free, so the file grows with the writes made meanwhile. A token
//! whose snapshot is gone is answered 410 `Expired` (unless nothing has been
//! written since, in which case the current state *is* that snapshot), with a
//! new token that continues at the latest state, like the kube-apiserver after
//! an etcd compaction.
//!
//! Modules, one concern each: [`engine`] (the redb file, the writer thread and
//! its group commit), [`prepare`] (a request body made into the object to store),
//! [`rules`] (what a write checks and changes in the stored state: preconditions,
//! finalizers, deletion, the namespace cascade), [`kinds`] (per-kind defaults and
//! checks), [`meta`] (a typed view of object metadata), [`paging`] (list scans,
//! continue tokens and snapshots) and [`watch_hub`] (events to watchers). This
//! module holds the store's API.

mod engine;
mod kinds;
mod meta;
mod paging;
mod prepare;
mod rules;
mod watch_hub;

use std::path::Path;
use std::sync::Arc;

use serde_json::{Value, json};

use crate::OpenError;
use crate::resources::ResourceDef;
use crate::selectors::{FieldSelector, LabelSelector};
use crate::status::StatusError;
use engine::{Engine, db_err};
use paging::Snapshots;
use watch_hub::WatchHub;

pub use engine::DB_FILE;
pub use watch_hub::{Event, Subscription};

/// Current time as RFC 3339 with second precision, e.g. `2024-01-02T03:04:05Z`.
pub fn now_rfc3339() -> String {
    k8s_openapi::jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// The string at the JSON pointer `ptr` of `v`, or `""` when there is none.
pub fn str_at<'a>(v: &'a Value, ptr: &str) -> &'a str {
    v.pointer(ptr).and_then(Value::as_str).unwrap_or("")
}

/// Options of a list request.
#[derive(Debug, Default)]
pub struct ListOptions {
    pub labels: LabelSelector,
    pub fields: FieldSelector,
    pub limit: Option<usize>,
    pub continue_token: Option<String>,
}

/// What a DELETE did.
pub enum Deleted {
    /// Removed from storage; the last state of the object.
    Gone(Value),
    /// Still present (finalizers pending); its new state.
    Pending(Value),
}

/// Which part of an object an update writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Main,
    Status,
}

pub struct Store {
    /// List snapshots (see the module docs).
    snapshots: Snapshots,
    hub: Arc<WatchHub>,
    engine: Engine,
}

impl Drop for Store {
    fn drop(&mut self) {
        // Stopping the writer (once it has answered everything pending) and dropping the
        // snapshots lets go of the file before the engine closes it.
        self.engine.stop();
        self.snapshots.clear();
    }
}

impl Store {
    pub fn open(dir: &Path) -> Result<Store, OpenError> {
        let (db, rv, path) = Engine::open_file(dir)?;
        let hub = Arc::new(WatchHub::new(rv));
        let publish = {
            let hub = hub.clone();
            Box::new(move |events| hub.publish(events))
        };
        Ok(Store {
            snapshots: Snapshots::default(),
            engine: Engine::start(db, &path, publish)?,
            hub,
        })
    }

    /// The current (latest committed) resourceVersion.
    pub fn current_rv(&self) -> Result<u64, StatusError> {
        self.engine.current_rv()
    }

    /// The stored JSON of one object.
    pub fn get_json(
        &self,
        def: &ResourceDef,
        ns: &str,
        name: &str,
    ) -> Result<Vec<u8>, StatusError> {
        self.engine
            .get_raw(&def.key(ns, name))?
            .ok_or_else(|| StatusError::not_found(def, name))
    }

    /// Lists objects of `def` in `ns` (all namespaces when `None`), as a `<Kind>List`.
    ///
    /// Pages after the first (`continue`) read the snapshot the first page was served
    /// from; see the module docs for how long it is kept.
    pub fn list(
        &self,
        def: &ResourceDef,
        ns: Option<&str>,
        opts: &ListOptions,
    ) -> Result<Value, StatusError> {
        let mut items = Vec::new();
        let metadata = paging::scan_list(
            &self.engine,
            &self.snapshots,
            def,
            ns,
            opts,
            &mut |raw, parsed| {
                items.push(match parsed {
                    Some(v) => v,
                    None => serde_json::from_slice(raw).map_err(db_err)?,
                });
                Ok(())
            },
        )?;
        Ok(json!({
            "kind": format!("{}List", def.kind),
            "apiVersion": def.api_version(),
            "metadata": metadata,
            "items": items,
        }))
    }

    /// [`Store::list`] rendered as the JSON response body. The stored objects are
    /// copied into it as they are (no parsing unless a selector needs it).
    pub fn list_json(
        &self,
        def: &ResourceDef,
        ns: Option<&str>,
        opts: &ListOptions,
    ) -> Result<Vec<u8>, StatusError> {
        let mut items = Vec::with_capacity(64 * 1024);
        items.push(b'[');
        let metadata = paging::scan_list(
            &self.engine,
            &self.snapshots,
            def,
            ns,
            opts,
            &mut |raw, _| {
                if items.len() > 1 {
                    items.push(b',');
                }
                items.extend_from_slice(raw);
                Ok(())
            },
        )?;
        items.push(b']');
        let head = json!({
            "kind": format!("{}List", def.kind),
            "apiVersion": def.api_version(),
            "metadata": metadata,
        });
        let mut out = serde_json::to_vec(&head).map_err(db_err)?;
        // `{...}` → `{...,"items":[...]}`
        out.pop();
        out.extend_from_slice(b",\"items\":");
        out.extend_from_slice(&items);
        out.push(b'}');
        Ok(out)
    }

    /// Subscribes to changes after `after_rv`; `Err` 410 when that point is no longer in memory.
    pub fn subscribe(&self, after_rv: u64) -> Result<Subscription, StatusError> {
        self.hub.subscribe(after_rv)
    }

    pub async fn create(
        &self,
        def: &'static ResourceDef,
        path_ns: Option<&str>,
        obj: Value,
        dry_run: bool,
    ) -> Result<Value, StatusError> {
        let obj = prepare::prepare_create(def, path_ns, obj)?;
        self.engine
            .write(dry_run, move |tx, rv| rules::create_in(tx, rv, def, obj))
            .await
    }

    /// PUT (and the last step of PATCH): `build` gets the stored object and returns the
    /// requested new object (PUT ignores the stored one).
    #[allow(clippy::too_many_arguments)]
    pub async fn update(
        &self,
        def: &'static ResourceDef,
        ns: &str,
        name: &str,
        target: Target,
        dry_run: bool,
        is_patch: bool,
        build: impl FnOnce(&Value) -> Result<Value, StatusError> + Send + 'static,
    ) -> Result<Value, StatusError> {
        let (ns, name) = (ns.to_string(), name.to_string());
        self.engine
            .write(dry_run, move |tx, rv| {
                rules::update_in(tx, rv, def, ns, &name, target, is_patch, build)
            })
            .await
    }

    pub async fn delete(
        &self,
        def: &'static ResourceDef,
        ns: &str,
        name: &str,
        preconditions: Value,
        dry_run: bool,
    ) -> Result<Deleted, StatusError> {
        let (ns, name) = (ns.to_string(), name.to_string());
        self.engine
            .write(dry_run, move |tx, rv| {
                rules::delete_in(tx, rv, def, ns, &name, &preconditions)
            })
            .await
    }
}
