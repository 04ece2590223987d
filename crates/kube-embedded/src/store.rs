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
//! [`SNAPSHOT_IDLE`] after the last page read from it (an abandoned
//! pagination), and at most [`MAX_SNAPSHOTS`] are kept (the least recently used
//! goes first). While pinned, a snapshot keeps redb from reusing the pages that
//! later commits free, so the file grows with the writes made meanwhile. A token
//! whose snapshot is gone is answered 410 `Expired` (unless nothing has been
//! written since, in which case the current state *is* that snapshot), with a
//! new token that continues at the latest state, like the kube-apiserver after
//! an etcd compaction.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use base64::Engine;
use redb::{Database, ReadTransaction, ReadableDatabase, ReadableTable, TableDefinition};
use serde_json::{Map, Value, json};
use tokio::sync::{broadcast, oneshot};

use crate::OpenError;
use crate::crd_schema;
use crate::field::{self, FieldError};
use crate::resources::{self, ResourceDef};
use crate::selectors::{FieldSelector, LabelSelector};
use crate::status::StatusError;
use crate::validation;

const OBJECTS: TableDefinition<&str, &[u8]> = TableDefinition::new("objects");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const FORMAT_KEY: &str = "format";
const FORMAT_VALUE: &[u8] = b"kube-embedded/1";
const RV_KEY: &str = "resourceVersion";
/// The store's file inside the data directory.
pub const DB_FILE: &str = "kube-embedded.redb";
/// Watch events kept in memory for resuming watches.
const HISTORY_LEN: usize = 20_000;
/// How long a list snapshot is kept after the last page read from it.
pub const SNAPSHOT_IDLE: Duration = Duration::from_secs(60);
/// How many list snapshots are kept at most.
pub const MAX_SNAPSHOTS: usize = 32;
/// Most write operations applied in one transaction (one fsync).
const MAX_BATCH: usize = 1024;
/// `rv` of a continue token that continues at the latest state (as etcd3's -1).
const LATEST: i64 = -1;

fn db_err(e: impl std::fmt::Display) -> StatusError {
    StatusError::internal(format!("storage error: {e}"))
}

/// Current time as RFC 3339 with second precision, e.g. `2024-01-02T03:04:05Z`.
pub fn now_rfc3339() -> String {
    k8s_openapi::jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// A change, as delivered to watchers.
#[derive(Debug, Clone)]
pub struct Event {
    pub rv: u64,
    /// `ADDED`, `MODIFIED` or `DELETED`.
    pub kind: &'static str,
    pub def: &'static ResourceDef,
    pub namespace: String,
    pub object: Value,
    /// The state before a `MODIFIED` change (for selector transitions).
    pub prev: Option<Value>,
}

struct Hub {
    history: VecDeque<Arc<Event>>,
    /// Events with rv > `floor` are all in `history` (or the store had none).
    floor: u64,
    tx: broadcast::Sender<Arc<Event>>,
}

/// Outcome of a watch subscription.
pub struct Subscription {
    pub backlog: Vec<Arc<Event>>,
    pub rx: broadcast::Receiver<Arc<Event>>,
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

/// A pinned read transaction: the state at one resourceVersion.
struct Snapshot {
    txn: Arc<ReadTransaction>,
    last_used: Instant,
    /// Paginations that started on it and have not read their last page yet.
    open: u32,
}

pub struct Store {
    /// Operations for the writer thread (`None` once dropping).
    writer_tx: Option<mpsc::Sender<Box<dyn PendingWrite>>>,
    writer: Option<std::thread::JoinHandle<()>>,
    /// List snapshots by resourceVersion (see the module docs).
    snapshots: Mutex<HashMap<u64, Snapshot>>,
    hub: Arc<Mutex<Hub>>,
    db: Arc<Database>,
}

impl Drop for Store {
    fn drop(&mut self) {
        // Closing the channel stops the writer once it has answered everything pending;
        // joining it (and dropping the snapshots) lets go of the file before `db` closes it.
        self.writer_tx.take();
        if let Some(w) = self.writer.take() {
            let _ = w.join();
        }
        self.snapshots
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }
}

/// Read access to the objects table for a write operation (as of its turn in the batch).
pub struct Tx<'a, 't> {
    objects: &'a redb::Table<'t, &'static str, &'static [u8]>,
}

impl Tx<'_, '_> {
    pub fn get(&self, key: &str) -> Result<Option<Value>, StatusError> {
        match self.objects.get(key).map_err(db_err)? {
            Some(v) => Ok(Some(serde_json::from_slice(v.value()).map_err(db_err)?)),
            None => Ok(None),
        }
    }

    pub fn contains(&self, key: &str) -> Result<bool, StatusError> {
        Ok(self.objects.get(key).map_err(db_err)?.is_some())
    }

    /// Every object whose key starts with `prefix` (which must end with NUL).
    pub fn scan(&self, prefix: &str) -> Result<Vec<Value>, StatusError> {
        let end = prefix_end(prefix);
        let mut out = Vec::new();
        for entry in self
            .objects
            .range::<&str>(prefix..end.as_str())
            .map_err(db_err)?
        {
            let (_, v) = entry.map_err(db_err)?;
            out.push(serde_json::from_slice(v.value()).map_err(db_err)?);
        }
        Ok(out)
    }
}

/// The first key after every key starting with `prefix` (a prefix ending with NUL).
fn prefix_end(prefix: &str) -> String {
    let mut end = prefix.to_string().into_bytes();
    *end.last_mut().expect("prefix is never empty") += 1;
    String::from_utf8(end).expect("prefix ends with NUL, +1 is still ASCII")
}

/// A write operation waiting for the writer thread.
trait PendingWrite: Send {
    /// Runs the operation against the state of the transaction; returns the events
    /// (the changes) to apply, empty when it failed, changed nothing, or is a dry run.
    fn run(&mut self, tx: &Tx<'_, '_>, next_rv: u64) -> Vec<Event>;
    /// Answers the caller once the batch is committed (`Err`: the batch failed).
    fn finish(self: Box<Self>, batch: Result<(), &StatusError>);
}

type WriteResult<T> = Result<(T, Vec<Event>), StatusError>;

/// Receives each item of a list page: its stored JSON, and the parsed object if a
/// selector needed it.
type EmitItem<'a> = dyn FnMut(&[u8], Option<Value>) -> Result<(), StatusError> + 'a;

struct Op<T, F> {
    f: Option<F>,
    dry_run: bool,
    out: Option<Result<T, StatusError>>,
    reply: oneshot::Sender<Result<T, StatusError>>,
}

impl<T, F> PendingWrite for Op<T, F>
where
    T: Send,
    F: FnOnce(&Tx<'_, '_>, u64) -> WriteResult<T> + Send,
{
    fn run(&mut self, tx: &Tx<'_, '_>, next_rv: u64) -> Vec<Event> {
        let Some(f) = self.f.take() else {
            return Vec::new();
        };
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(tx, next_rv)))
            .unwrap_or_else(|_| Err(StatusError::internal("the write operation panicked")));
        match r {
            Ok((out, events)) => {
                self.out = Some(Ok(out));
                if self.dry_run { Vec::new() } else { events }
            }
            Err(e) => {
                self.out = Some(Err(e));
                Vec::new()
            }
        }
    }

    fn finish(self: Box<Self>, batch: Result<(), &StatusError>) {
        let out = match (batch, self.out) {
            (_, Some(Err(e))) => Err(e),
            (Ok(()), Some(ok)) => ok,
            (Err(e), _) => Err(e.clone()),
            (Ok(()), None) => Err(StatusError::internal("the write operation did not run")),
        };
        let _ = self.reply.send(out);
    }
}

/// The writer thread: applies batches of pending operations, one transaction each.
fn run_writer(db: Arc<Database>, hub: Arc<Mutex<Hub>>, rx: mpsc::Receiver<Box<dyn PendingWrite>>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        match apply_batch(&db, &mut batch) {
            Ok(events) => {
                if !events.is_empty() {
                    let mut hub = hub.lock().unwrap_or_else(|p| p.into_inner());
                    for e in events {
                        let e = Arc::new(e);
                        hub.history.push_back(e.clone());
                        if hub.history.len() > HISTORY_LEN
                            && let Some(old) = hub.history.pop_front()
                        {
                            hub.floor = old.rv;
                        }
                        let _ = hub.tx.send(e);
                    }
                }
                for op in batch {
                    op.finish(Ok(()));
                }
            }
            Err(e) => {
                tracing::error!("kube-embedded: write batch failed: {e:?}");
                for op in batch {
                    op.finish(Err(&e));
                }
            }
        }
    }
}

/// Runs every operation of `batch` in one write transaction and commits it durably.
/// Returns the events of the committed changes, in order.
fn apply_batch(
    db: &Database,
    batch: &mut [Box<dyn PendingWrite>],
) -> Result<Vec<Event>, StatusError> {
    let mut txn = db.begin_write().map_err(db_err)?;
    // The default, stated explicitly: commit() returns only after fsync.
    txn.set_durability(redb::Durability::Immediate)
        .map_err(db_err)?;
    let mut all = Vec::new();
    {
        let mut meta = txn.open_table(META).map_err(db_err)?;
        let mut objects = txn.open_table(OBJECTS).map_err(db_err)?;
        let mut rv = Store::read_rv(&meta)?;
        for op in batch.iter_mut() {
            let events = op.run(&Tx { objects: &objects }, rv + 1);
            for ev in &events {
                if ev.rv <= rv {
                    return Err(StatusError::internal(
                        "write operation reused a resourceVersion",
                    ));
                }
                rv = ev.rv;
                let key = ev
                    .def
                    .key(&ev.namespace, str_at(&ev.object, "/metadata/name"));
                if ev.kind == "DELETED" {
                    objects.remove(key.as_str()).map_err(db_err)?;
                } else {
                    let bytes = serde_json::to_vec(&ev.object).map_err(db_err)?;
                    objects
                        .insert(key.as_str(), bytes.as_slice())
                        .map_err(db_err)?;
                }
            }
            all.extend(events);
        }
        if !all.is_empty() {
            meta.insert(RV_KEY, &rv.to_be_bytes()[..]).map_err(db_err)?;
        }
    }
    if all.is_empty() {
        txn.abort().map_err(db_err)?;
    } else {
        txn.commit().map_err(db_err)?;
    }
    Ok(all)
}

fn io_err(path: &Path, e: std::io::Error) -> OpenError {
    OpenError::Io {
        path: path.to_path_buf(),
        source: e,
    }
}

/// Runs `f`, turning a panic inside redb (possible on files it did not write) into an error.
fn catch<T>(path: &Path, f: impl FnOnce() -> Result<T, OpenError>) -> Result<T, OpenError> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(_) => Err(OpenError::Corrupt {
            path: path.to_path_buf(),
            message: "the storage engine failed while reading the file".into(),
        }),
    }
}

fn map_open_err(path: &Path, e: redb::DatabaseError) -> OpenError {
    match e {
        redb::DatabaseError::DatabaseAlreadyOpen => OpenError::AlreadyOpen {
            path: path.to_path_buf(),
        },
        redb::DatabaseError::Storage(redb::StorageError::Io(io))
            if io.kind() != std::io::ErrorKind::InvalidData
                && io.kind() != std::io::ErrorKind::UnexpectedEof =>
        {
            io_err(path, io)
        }
        other => OpenError::Corrupt {
            path: path.to_path_buf(),
            message: other.to_string(),
        },
    }
}

impl Store {
    pub fn open(dir: &Path) -> Result<Store, OpenError> {
        std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
        let path = dir.join(DB_FILE);
        if !path.exists() {
            Self::initialise(dir, &path)?;
        }
        let meta = std::fs::metadata(&path).map_err(|e| io_err(&path, e))?;
        if !meta.is_file() {
            return Err(OpenError::Foreign {
                path,
                message: "not a regular file".into(),
            });
        }
        let db = catch(&path, || {
            Database::builder()
                .open(&path)
                .map_err(|e| map_open_err(&path, e))
        })?;
        let rv = catch(&path, || Self::check_format(&db, &path))?;
        let (tx, _) = broadcast::channel(4096);
        let db = Arc::new(db);
        let hub = Arc::new(Mutex::new(Hub {
            history: VecDeque::new(),
            floor: rv,
            tx,
        }));
        let (writer_tx, writer_rx) = mpsc::channel();
        let writer = {
            let (db, hub) = (db.clone(), hub.clone());
            std::thread::Builder::new()
                .name("kube-embedded-writer".into())
                .spawn(move || run_writer(db, hub, writer_rx))
                .map_err(|e| io_err(&path, e))?
        };
        Ok(Store {
            writer_tx: Some(writer_tx),
            writer: Some(writer),
            snapshots: Mutex::new(HashMap::new()),
            hub,
            db,
        })
    }

    /// Creates a new store file atomically: written under a temporary name, then renamed.
    fn initialise(dir: &Path, path: &PathBuf) -> Result<(), OpenError> {
        let tmp = dir.join(format!("{DB_FILE}.tmp"));
        let _ = std::fs::remove_file(&tmp);
        let storage = |e: &dyn std::fmt::Display| OpenError::Storage {
            path: tmp.clone(),
            message: e.to_string(),
        };
        {
            let db = Database::create(&tmp).map_err(|e| map_open_err(&tmp, e))?;
            let txn = db.begin_write().map_err(|e| storage(&e))?;
            {
                let mut meta = txn.open_table(META).map_err(|e| storage(&e))?;
                meta.insert(FORMAT_KEY, FORMAT_VALUE)
                    .map_err(|e| storage(&e))?;
                meta.insert(RV_KEY, &0u64.to_be_bytes()[..])
                    .map_err(|e| storage(&e))?;
                txn.open_table(OBJECTS).map_err(|e| storage(&e))?;
            }
            txn.commit().map_err(|e| storage(&e))?;
        }
        std::fs::rename(&tmp, path).map_err(|e| io_err(path, e))?;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }

    /// Checks the format marker; returns the current resourceVersion.
    fn check_format(db: &Database, path: &Path) -> Result<u64, OpenError> {
        let foreign = |m: String| OpenError::Foreign {
            path: path.to_path_buf(),
            message: m,
        };
        let txn = db.begin_read().map_err(|e| OpenError::Corrupt {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let meta = match txn.open_table(META) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => {
                return Err(foreign(
                    "a redb database without the kube-embedded meta table".into(),
                ));
            }
            Err(e) => return Err(foreign(format!("unexpected meta table: {e}"))),
        };
        let format = meta
            .get(FORMAT_KEY)
            .map_err(|e| foreign(e.to_string()))?
            .map(|g| g.value().to_vec());
        match format {
            Some(f) if f == FORMAT_VALUE => {}
            Some(f) => {
                return Err(foreign(format!(
                    "unsupported format marker {:?} (expected {:?})",
                    String::from_utf8_lossy(&f),
                    String::from_utf8_lossy(FORMAT_VALUE)
                )));
            }
            None => return Err(foreign("no format marker".into())),
        }
        let rv = meta
            .get(RV_KEY)
            .map_err(|e| foreign(e.to_string()))?
            .and_then(|g| <[u8; 8]>::try_from(g.value()).ok())
            .map(u64::from_be_bytes)
            .ok_or_else(|| foreign("no resourceVersion counter".into()))?;
        match txn.open_table(OBJECTS) {
            Ok(_) => Ok(rv),
            Err(e) => Err(foreign(format!("objects table: {e}"))),
        }
    }

    fn read_rv(meta: &impl ReadableTable<&'static str, &'static [u8]>) -> Result<u64, StatusError> {
        meta.get(RV_KEY)
            .map_err(db_err)?
            .and_then(|g| <[u8; 8]>::try_from(g.value()).ok())
            .map(u64::from_be_bytes)
            .ok_or_else(|| StatusError::internal("resourceVersion counter missing"))
    }

    /// The current (latest committed) resourceVersion.
    pub fn current_rv(&self) -> Result<u64, StatusError> {
        let txn = self.db.begin_read().map_err(db_err)?;
        let meta = txn.open_table(META).map_err(db_err)?;
        Self::read_rv(&meta)
    }

    /// The stored JSON of one object.
    pub fn get_json(
        &self,
        def: &ResourceDef,
        ns: &str,
        name: &str,
    ) -> Result<Vec<u8>, StatusError> {
        let txn = self.db.begin_read().map_err(db_err)?;
        let objects = txn.open_table(OBJECTS).map_err(db_err)?;
        let key = def.key(ns, name);
        match objects.get(key.as_str()).map_err(db_err)? {
            Some(v) => Ok(v.value().to_vec()),
            None => Err(StatusError::not_found(def, name)),
        }
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
        let metadata = self.scan_list(def, ns, opts, &mut |raw, parsed| {
            items.push(match parsed {
                Some(v) => v,
                None => serde_json::from_slice(raw).map_err(db_err)?,
            });
            Ok(())
        })?;
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
        let metadata = self.scan_list(def, ns, opts, &mut |raw, _| {
            if items.len() > 1 {
                items.push(b',');
            }
            items.extend_from_slice(raw);
            Ok(())
        })?;
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

    /// Scans the page a list request asks for: `emit` gets each item (the stored JSON, and
    /// the parsed object when a selector had to look at it). Returns the list's metadata.
    fn scan_list(
        &self,
        def: &ResourceDef,
        ns: Option<&str>,
        opts: &ListOptions,
        emit: &mut EmitItem<'_>,
    ) -> Result<Map<String, Value>, StatusError> {
        let prefix = match ns {
            Some(ns) if def.namespaced => format!("{}{}\0", def.key_prefix(), ns),
            _ => def.key_prefix(),
        };
        let end = prefix_end(&prefix);
        let token = match opts.continue_token.as_deref().filter(|t| !t.is_empty()) {
            Some(t) => {
                let (rv, key) = decode_continue(t)?;
                if !key.starts_with(&prefix) {
                    return Err(StatusError::bad_request(
                        "continue key is not valid: the continue token does not belong to this list",
                    ));
                }
                Some((rv, key))
            }
            None => None,
        };
        let (txn, pinned) = match &token {
            Some((rv, key)) if *rv != LATEST => match self.snapshot(*rv) {
                Some(txn) => (txn, true),
                None => {
                    let txn = Arc::new(self.db.begin_read().map_err(db_err)?);
                    let meta = txn.open_table(META).map_err(db_err)?;
                    // Nothing written since the first page: the current state is its snapshot.
                    if u64::try_from(*rv).ok() != Some(Self::read_rv(&meta)?) {
                        return Err(StatusError::continue_expired(encode_continue(LATEST, key)));
                    }
                    (txn, false)
                }
            },
            _ => (Arc::new(self.db.begin_read().map_err(db_err)?), false),
        };
        let list_rv = Self::read_rv(&txn.open_table(META).map_err(db_err)?)?;
        let objects = txn.open_table(OBJECTS).map_err(db_err)?;
        let (start, exclusive_start) = match &token {
            Some((_, key)) => (key.clone(), true),
            None => (prefix.clone(), false),
        };

        let limit = opts.limit.filter(|&l| l > 0);
        let filtered = !opts.labels.is_empty() || !opts.fields.is_empty();
        let mut count = 0usize;
        let mut last_key: Option<String> = None;
        let mut more = false;
        let mut remaining: u64 = 0;
        for entry in objects
            .range::<&str>(start.as_str()..end.as_str())
            .map_err(db_err)?
        {
            let (k, v) = entry.map_err(db_err)?;
            let key = k.value();
            if exclusive_start && key == start {
                continue;
            }
            let full = limit.is_some_and(|l| count >= l);
            if full && !filtered {
                // Unfiltered: every remaining key is an item.
                more = true;
                remaining += 1;
                continue;
            }
            let parsed = if filtered {
                let obj: Value = serde_json::from_slice(v.value()).map_err(db_err)?;
                if !opts.labels.matches(&obj) || !opts.fields.matches(&obj) {
                    continue;
                }
                Some(obj)
            } else {
                None
            };
            if full {
                more = true;
                break;
            }
            last_key = Some(key.to_string());
            count += 1;
            emit(v.value(), parsed)?;
        }
        drop(objects);

        let mut metadata = Map::new();
        metadata.insert("resourceVersion".into(), json!(list_rv.to_string()));
        if pinned && !more {
            // The last page of a pagination.
            self.release(list_rv);
        }
        if more && let Some(k) = last_key {
            if !pinned {
                self.pin(list_rv, txn);
            }
            metadata.insert(
                "continue".into(),
                json!(encode_continue(list_rv as i64, &k)),
            );
            if !filtered {
                metadata.insert("remainingItemCount".into(), json!(remaining));
            }
        }
        Ok(metadata)
    }

    /// The pinned snapshot at `rv`, if still kept (refreshing its idle timer).
    fn snapshot(&self, rv: i64) -> Option<Arc<ReadTransaction>> {
        let rv = u64::try_from(rv).ok()?;
        let mut snaps = self.snapshots.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        snaps.retain(|_, s| now.duration_since(s.last_used) < SNAPSHOT_IDLE);
        let s = snaps.get_mut(&rv)?;
        s.last_used = now;
        Some(s.txn.clone())
    }

    /// Keeps `txn` (the state at `rv`) for the following pages of a list.
    fn pin(&self, rv: u64, txn: Arc<ReadTransaction>) {
        let mut snaps = self.snapshots.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        snaps.retain(|_, s| now.duration_since(s.last_used) < SNAPSHOT_IDLE);
        let s = snaps.entry(rv).or_insert(Snapshot {
            txn,
            last_used: now,
            open: 0,
        });
        s.last_used = now;
        s.open += 1;
        while snaps.len() > MAX_SNAPSHOTS {
            let oldest = snaps
                .iter()
                .min_by_key(|(_, s)| s.last_used)
                .map(|(rv, _)| *rv)
                .expect("not empty");
            snaps.remove(&oldest);
        }
    }

    /// A pagination on the snapshot at `rv` is complete: drops the snapshot when no other
    /// pagination uses it.
    fn release(&self, rv: u64) {
        let mut snaps = self.snapshots.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = snaps.get_mut(&rv) {
            s.open = s.open.saturating_sub(1);
            if s.open == 0 {
                snaps.remove(&rv);
            }
        }
    }

    /// Subscribes to changes after `after_rv`; `Err` 410 when that point is no longer in memory.
    pub fn subscribe(&self, after_rv: u64) -> Result<Subscription, StatusError> {
        let hub = self.hub.lock().expect("hub lock");
        if after_rv < hub.floor {
            return Err(StatusError::gone(format!(
                "too old resource version: {} ({})",
                after_rv,
                hub.floor + 1
            )));
        }
        let backlog = hub
            .history
            .iter()
            .filter(|e| e.rv > after_rv)
            .cloned()
            .collect();
        Ok(Subscription {
            backlog,
            rx: hub.tx.subscribe(),
        })
    }

    /// Hands a write operation to the writer thread and waits for its answer, which
    /// comes once the batch it ran in is durably committed (see the module docs).
    /// `f` gets read access to the objects (as of its turn) and the next
    /// resourceVersion; it returns its result and the changes it makes, as events with
    /// increasing resourceVersions from that one on (`DELETED` removes the object,
    /// the others store it). With `dry_run` nothing is applied.
    async fn write<T, F>(&self, dry_run: bool, f: F) -> Result<T, StatusError>
    where
        T: Send + 'static,
        F: FnOnce(&Tx<'_, '_>, u64) -> WriteResult<T> + Send + 'static,
    {
        let (reply, rx) = oneshot::channel();
        let op = Box::new(Op {
            f: Some(f),
            dry_run,
            out: None,
            reply,
        });
        self.writer_tx
            .as_ref()
            .ok_or_else(|| StatusError::internal("the store is closed"))?
            .send(op)
            .map_err(|_| StatusError::internal("the store's writer has stopped"))?;
        rx.await
            .map_err(|_| StatusError::internal("the store's writer has stopped"))?
    }

    pub async fn create(
        &self,
        def: &'static ResourceDef,
        path_ns: Option<&str>,
        obj: Value,
        dry_run: bool,
    ) -> Result<Value, StatusError> {
        let mut obj = prepare_create(def, path_ns, obj)?;
        self.write(dry_run, move |tx, rv| {
            let ns = str_at(&obj, "/metadata/namespace").to_string();
            let name = str_at(&obj, "/metadata/name").to_string();
            if def.namespaced {
                let ns_key = resources::namespaces().key("", &ns);
                match tx.get(&ns_key)? {
                    None => return Err(StatusError::namespace_not_found(&ns)),
                    Some(nso) => {
                        if nso.pointer("/metadata/deletionTimestamp").is_some() {
                            return Err(StatusError {
                                code: 403,
                                reason: "Forbidden",
                                message: format!(
                                    "{} \"{}\" is forbidden: unable to create new content in namespace {} because it is being terminated",
                                    def.qualified_plural(),
                                    name,
                                    ns
                                ),
                                details: Some(json!({"name": name, "kind": def.plural})),
                                list_meta: None,
                            });
                        }
                    }
                }
            }
            if tx.contains(&def.key(&ns, &name))? {
                return Err(StatusError::already_exists(def, &name));
            }
            obj["metadata"]["resourceVersion"] = json!(rv.to_string());
            let ev = Event {
                rv,
                kind: "ADDED",
                def,
                namespace: ns,
                object: obj.clone(),
                prev: None,
            };
            Ok((obj, vec![ev]))
        })
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
        self.write(dry_run, move |tx, rv| {
            let Some(old) = tx.get(&def.key(&ns, &name))? else {
                return Err(StatusError::not_found(def, &name));
            };
            let new = build(&old)?;
            let mut merged = prepare_update(def, &ns, &name, &old, new, target, is_patch)?;
            if without_rv(&merged) == without_rv(&old) {
                // No-op update: nothing is written, the resourceVersion stays.
                return Ok((old, vec![]));
            }
            merged["metadata"]["resourceVersion"] = json!(rv.to_string());
            let finalized = merged.pointer("/metadata/deletionTimestamp").is_some()
                && merged
                    .pointer("/metadata/finalizers")
                    .and_then(Value::as_array)
                    .is_none_or(|f| f.is_empty());
            let ev = Event {
                rv,
                kind: if finalized { "DELETED" } else { "MODIFIED" },
                def,
                namespace: ns,
                object: merged.clone(),
                prev: Some(old),
            };
            Ok((merged, vec![ev]))
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
        self.write(dry_run, move |tx, rv| {
            let Some(mut obj) = tx.get(&def.key(&ns, &name))? else {
                return Err(StatusError::not_found(def, &name));
            };
            check_preconditions(def, &name, &obj, &preconditions)?;
            let mut events = Vec::new();
            let mut rv = rv;
            if std::ptr::eq(def, resources::namespaces()) {
                // Namespace deletion removes every object in it right away (no
                // namespace controller runs here), ignoring their finalizers.
                for r in resources::RESOURCES.iter().filter(|r| r.namespaced) {
                    for mut o in tx.scan(&format!("{}{}\0", r.key_prefix(), name))? {
                        o["metadata"]["resourceVersion"] = json!(rv.to_string());
                        events.push(Event {
                            rv,
                            kind: "DELETED",
                            def: r,
                            namespace: name.clone(),
                            object: o,
                            prev: None,
                        });
                        rv += 1;
                    }
                }
                if obj.pointer("/metadata/deletionTimestamp").is_none() {
                    obj["metadata"]["deletionTimestamp"] = json!(now_rfc3339());
                }
                obj["status"] = json!({"phase": "Terminating"});
            }
            let finalizers = obj
                .pointer("/metadata/finalizers")
                .and_then(Value::as_array)
                .is_some_and(|f| !f.is_empty());
            if finalizers {
                if obj.pointer("/metadata/deletionTimestamp").is_some()
                    && !std::ptr::eq(def, resources::namespaces())
                {
                    // Already being deleted: nothing changes.
                    return Ok((Deleted::Pending(obj), events));
                }
                if obj.pointer("/metadata/deletionTimestamp").is_none() {
                    obj["metadata"]["deletionTimestamp"] = json!(now_rfc3339());
                }
                obj["metadata"]["deletionGracePeriodSeconds"] = json!(0);
                obj["metadata"]["resourceVersion"] = json!(rv.to_string());
                events.push(Event {
                    rv,
                    kind: "MODIFIED",
                    def,
                    namespace: ns,
                    object: obj.clone(),
                    prev: None,
                });
                return Ok((Deleted::Pending(obj), events));
            }
            obj["metadata"]["resourceVersion"] = json!(rv.to_string());
            events.push(Event {
                rv,
                kind: "DELETED",
                def,
                namespace: ns,
                object: obj.clone(),
                prev: None,
            });
            Ok((Deleted::Gone(obj), events))
        })
        .await
    }
}

fn check_preconditions(
    def: &ResourceDef,
    name: &str,
    obj: &Value,
    pre: &Value,
) -> Result<(), StatusError> {
    if let Some(uid) = pre.get("uid").and_then(Value::as_str) {
        let have = str_at(obj, "/metadata/uid");
        if uid != have {
            return Err(StatusError::conflict(
                def,
                name,
                &format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {have}"
                ),
            ));
        }
    }
    if let Some(rv) = pre.get("resourceVersion").and_then(Value::as_str) {
        let have = str_at(obj, "/metadata/resourceVersion");
        if rv != have {
            return Err(StatusError::conflict(
                def,
                name,
                &format!(
                    "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {have}"
                ),
            ));
        }
    }
    Ok(())
}

pub fn str_at<'a>(v: &'a Value, ptr: &str) -> &'a str {
    v.pointer(ptr).and_then(Value::as_str).unwrap_or("")
}

fn without_rv(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("resourceVersion");
    }
    v
}

/// Checks and fills apiVersion/kind of a request body.
fn check_type(def: &ResourceDef, obj: &mut Value) -> Result<(), StatusError> {
    let Some(map) = obj.as_object_mut() else {
        return Err(StatusError::bad_request(
            "the body of the request is not a JSON object",
        ));
    };
    let want_av = def.api_version();
    match map.get("apiVersion").and_then(Value::as_str) {
        None | Some("") => {
            map.insert("apiVersion".into(), json!(want_av));
        }
        Some(av) if av == want_av => {}
        Some(av) => {
            return Err(StatusError::bad_request(format!(
                "the API version in the data ({av}) does not match the expected API version ({want_av})"
            )));
        }
    }
    match map.get("kind").and_then(Value::as_str) {
        None | Some("") => {
            map.insert("kind".into(), json!(def.kind));
        }
        Some(k) if k == def.kind => {}
        Some(k) if def.custom => {
            // The custom resource validator's `ValidateTypeMeta`.
            let name = map
                .get("metadata")
                .and_then(|m| m.get("name"))
                .and_then(Value::as_str)
                .unwrap_or("");
            let e = FieldError::invalid(
                "kind",
                field::BadValue::str(k),
                format!("must be {}", def.kind),
            );
            return Err(field::invalid_as(def.group, k, name, &[e]));
        }
        Some(k) => {
            return Err(StatusError::bad_request(format!(
                "the kind in the data ({k}) does not match the expected kind ({})",
                def.kind
            )));
        }
    }
    match map.get("metadata") {
        None | Some(Value::Null) => {
            map.insert("metadata".into(), json!({}));
        }
        Some(Value::Object(_)) => {}
        Some(_) => return Err(StatusError::bad_request("metadata must be an object")),
    }
    Ok(())
}

/// Fills or checks `metadata.namespace` against the request path.
fn check_namespace(
    def: &ResourceDef,
    path_ns: Option<&str>,
    obj: &mut Value,
) -> Result<(), StatusError> {
    let meta = obj["metadata"]
        .as_object_mut()
        .expect("checked by check_type");
    if !def.namespaced {
        meta.remove("namespace");
        return Ok(());
    }
    let path_ns = path_ns.unwrap_or("");
    match meta.get("namespace").and_then(Value::as_str) {
        None | Some("") => {
            meta.insert("namespace".into(), json!(path_ns));
        }
        Some(ns) if ns == path_ns => {}
        Some(_) => {
            return Err(StatusError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
    }
    Ok(())
}

const NAME_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

fn random_suffix() -> String {
    let bytes = uuid::Uuid::new_v4().into_bytes();
    bytes[..5]
        .iter()
        .map(|b| NAME_ALPHABET[*b as usize % NAME_ALPHABET.len()] as char)
        .collect()
}

fn prepare_create(
    def: &'static ResourceDef,
    path_ns: Option<&str>,
    mut obj: Value,
) -> Result<Value, StatusError> {
    check_type(def, &mut obj)?;
    check_namespace(def, path_ns, &mut obj)?;
    let crd = crd_schema::for_def(def);
    if let Some(crd) = crd {
        crd.coerce(&mut obj);
    }
    let meta = obj["metadata"].as_object_mut().expect("checked");
    let mut name = meta
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if name.is_empty() {
        let gen_name = meta
            .get("generateName")
            .and_then(Value::as_str)
            .unwrap_or("");
        if gen_name.is_empty() {
            let mut e = StatusError::invalid(
                def,
                "",
                "metadata.name",
                "Required value: name or generateName is required",
            );
            e.details.as_mut().expect("set")["causes"][0]["reason"] = json!("FieldValueRequired");
            return Err(e);
        }
        name = format!("{gen_name}{}", random_suffix());
        meta.insert("name".into(), json!(name));
    }
    // ValidateObjectMeta: the name, labels and annotations (all reported together).
    let generate_name = str_at(&obj, "/metadata/generateName").to_string();
    let mut errs = validation::name_errors(def.name_rule, &generate_name, &name);
    errs.extend(validation::labels_and_annotations(
        def,
        &mut obj["metadata"],
    )?);
    let meta = obj["metadata"].as_object_mut().expect("checked");
    if meta
        .get("resourceVersion")
        .and_then(Value::as_str)
        .is_some_and(|s| !s.is_empty())
    {
        return Err(StatusError::internal(
            "resourceVersion should not be set on objects to be created",
        ));
    }
    meta.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
    meta.insert("creationTimestamp".into(), json!(now_rfc3339()));
    meta.remove("deletionTimestamp");
    meta.remove("deletionGracePeriodSeconds");
    meta.remove("selfLink");
    meta.remove("managedFields");
    if def.custom {
        meta.insert("generation".into(), json!(1));
    } else {
        meta.remove("generation");
    }
    if def.has_status_subresource && def.custom {
        obj.as_object_mut().expect("object").remove("status");
    }
    apply_kind_defaults(def, &mut obj, true)?;
    if let Some(crd) = crd {
        crd.validate(&obj, None, &mut errs);
        crd.encode(&mut obj);
    }
    if !errs.is_empty() {
        return Err(field::invalid(def, &name, &errs));
    }
    validate_event_namespace(def, &obj)?;
    Ok(obj)
}

/// The kube-apiserver's rule that an event lives in the namespace of the object it is about
/// (`regarding` in events.k8s.io/v1, `involvedObject` in core v1). Events with an `eventTime`
/// ("new" clients) only need a namespace on the object unless they are in `default` or
/// `kube-system`; older events must match exactly (an object without one: `default` only).
fn validate_event_namespace(def: &ResourceDef, obj: &Value) -> Result<(), StatusError> {
    let about = match (def.group, def.plural) {
        ("", "events") => "/involvedObject/namespace",
        ("events.k8s.io", "events") => "/regarding/namespace",
        _ => return Ok(()),
    };
    let event_namespace = str_at(obj, "/metadata/namespace");
    let object_namespace = str_at(obj, about);
    let new_style = obj.get("eventTime").is_some_and(|t| !t.is_null());
    let valid = if new_style {
        !object_namespace.is_empty() || matches!(event_namespace, "default" | "kube-system")
    } else if object_namespace.is_empty() {
        matches!(event_namespace, "" | "default")
    } else {
        object_namespace == event_namespace
    };
    if valid {
        return Ok(());
    }
    Err(StatusError::invalid(
        def,
        str_at(obj, "/metadata/name"),
        "involvedObject.namespace",
        &format!("Invalid value: \"{object_namespace}\": does not match event.namespace"),
    ))
}

/// Per-kind defaulting the real API server does for the built-in kinds served here.
fn apply_kind_defaults(
    def: &ResourceDef,
    obj: &mut Value,
    create: bool,
) -> Result<(), StatusError> {
    match (def.group, def.plural) {
        ("", "namespaces") if create => {
            let name = str_at(obj, "/metadata/name").to_string();
            let meta = obj["metadata"].as_object_mut().expect("checked");
            let labels = meta.entry("labels").or_insert_with(|| json!({}));
            if let Some(l) = labels.as_object_mut() {
                l.insert("kubernetes.io/metadata.name".into(), json!(name));
            }
            obj["spec"] = json!({"finalizers": ["kubernetes"]});
            obj["status"] = json!({"phase": "Active"});
        }
        ("", "pods") if create => {
            obj["status"] = json!({"phase": "Pending"});
        }
        ("", "services") if create => {
            obj["status"] = json!({"loadBalancer": {}});
        }
        ("", "secrets") => {
            let map = obj.as_object_mut().expect("object");
            if map
                .get("type")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
            {
                map.insert("type".into(), json!("Opaque"));
            }
            if let Some(Value::Object(sd)) = map.remove("stringData") {
                let data = map.entry("data").or_insert_with(|| json!({}));
                if !data.is_object() {
                    *data = json!({});
                }
                for (k, v) in sd {
                    let s = v.as_str().ok_or_else(|| {
                        StatusError::bad_request(format!("stringData[{k}] must be a string"))
                    })?;
                    data[k.as_str()] =
                        json!(base64::engine::general_purpose::STANDARD.encode(s.as_bytes()));
                }
            }
        }
        _ => {}
    }
    Ok(())
}

/// Everything that counts towards `generation` of a custom resource.
fn generation_content(def: &ResourceDef, v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(m) = v.as_object_mut() {
        m.remove("metadata");
        m.remove("apiVersion");
        m.remove("kind");
        if def.has_status_subresource {
            m.remove("status");
        }
    }
    v
}

fn prepare_update(
    def: &'static ResourceDef,
    ns: &str,
    name: &str,
    old: &Value,
    mut new: Value,
    target: Target,
    is_patch: bool,
) -> Result<Value, StatusError> {
    check_type(def, &mut new)?;
    check_namespace(def, Some(ns), &mut new)?;
    let crd = crd_schema::for_def(def);
    if let Some(crd) = crd {
        crd.coerce(&mut new);
    }
    let body_name = str_at(&new, "/metadata/name");
    if body_name != name {
        return Err(StatusError::bad_request(format!(
            "the name of the object ({body_name}) does not match the name on the URL ({name})"
        )));
    }
    let old_meta = old["metadata"].as_object().cloned().unwrap_or_default();
    // Preconditions carried by the body: uid and resourceVersion.
    let body_uid = str_at(&new, "/metadata/uid");
    let old_uid = old_meta.get("uid").and_then(Value::as_str).unwrap_or("");
    if !body_uid.is_empty() && body_uid != old_uid {
        return Err(StatusError::conflict(
            def,
            name,
            &format!(
                "Precondition failed: UID in precondition: {body_uid}, UID in object meta: {old_uid}"
            ),
        ));
    }
    let body_rv = str_at(&new, "/metadata/resourceVersion");
    let old_rv = old_meta
        .get("resourceVersion")
        .and_then(Value::as_str)
        .unwrap_or("");
    if body_rv.is_empty() {
        if def.custom && !is_patch {
            return Err(StatusError::invalid(
                def,
                name,
                "metadata.resourceVersion",
                "Invalid value: 0x0: must be specified for an update",
            ));
        }
    } else if body_rv != old_rv {
        return Err(StatusError::modified(def, name));
    }

    let mut out = match target {
        Target::Status => {
            let mut out = old.clone();
            match new.get("status") {
                Some(s) => out["status"] = s.clone(),
                None => {
                    out.as_object_mut().expect("object").remove("status");
                }
            }
            out
        }
        Target::Main => {
            let mut out = new;
            if def.has_status_subresource {
                let map = out.as_object_mut().expect("object");
                match old.get("status") {
                    Some(s) => {
                        map.insert("status".into(), s.clone());
                    }
                    None => {
                        map.remove("status");
                    }
                }
                if std::ptr::eq(def, resources::namespaces()) {
                    match old.get("spec") {
                        Some(s) => {
                            map.insert("spec".into(), s.clone());
                        }
                        None => {
                            map.remove("spec");
                        }
                    }
                }
            }
            let meta = out["metadata"].as_object_mut().expect("checked");
            for f in [
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "generation",
            ] {
                match old_meta.get(f) {
                    Some(v) => {
                        meta.insert(f.into(), v.clone());
                    }
                    None => {
                        meta.remove(f);
                    }
                }
            }
            meta.remove("selfLink");
            meta.remove("managedFields");
            apply_kind_defaults(def, &mut out, false)?;
            if old_meta.contains_key("deletionTimestamp") {
                let old_f: Vec<&Value> = old_meta
                    .get("finalizers")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().collect())
                    .unwrap_or_default();
                let added = out
                    .pointer("/metadata/finalizers")
                    .and_then(Value::as_array)
                    .is_some_and(|a| a.iter().any(|f| !old_f.contains(&f)));
                if added {
                    return Err(field::invalid(
                        def,
                        name,
                        &[FieldError::new(
                            field::ErrorType::Forbidden,
                            "metadata.finalizers",
                            field::BadValue::Omit,
                            "no new finalizers can be added if the object is being deleted",
                        )],
                    ));
                }
            }
            if def.custom && generation_content(def, &out) != generation_content(def, old) {
                let g = old_meta
                    .get("generation")
                    .and_then(Value::as_i64)
                    .unwrap_or(0);
                out["metadata"]["generation"] = json!(g + 1);
            }
            out
        }
    };
    out["metadata"]["resourceVersion"] = json!(old_rv);
    let mut errs = Vec::new();
    match target {
        Target::Main => {
            let meta_errs = validation::labels_and_annotations(def, &mut out["metadata"])?;
            for _ in 0..def.meta_checks_on_update {
                errs.extend(meta_errs.iter().cloned());
            }
            if let Some(crd) = crd {
                crd.validate(&out, Some(old), &mut errs);
            }
        }
        Target::Status => {
            if let Some(crd) = crd {
                crd.validate_status(&out, old, &mut errs);
            }
        }
    }
    if !errs.is_empty() {
        return Err(field::invalid(def, name, &errs));
    }
    if let Some(crd) = crd {
        crd.encode(&mut out);
    }
    Ok(out)
}

#[derive(serde::Serialize, serde::Deserialize)]
struct ContinueToken {
    v: String,
    /// The list's resourceVersion (its snapshot), or [`LATEST`].
    rv: i64,
    /// The last key returned (exclusive start of the next page).
    start: String,
}

fn encode_continue(rv: i64, key: &str) -> String {
    let t = ContinueToken {
        v: "kube-embedded/v1".into(),
        rv,
        start: key.to_string(),
    };
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(&t).expect("serialisable"))
}

fn decode_continue(token: &str) -> Result<(i64, String), StatusError> {
    let bad =
        || StatusError::bad_request("continue key is not valid: the continue token is malformed");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| bad())?;
    let t: ContinueToken = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    if t.v != "kube-embedded/v1" || (t.rv < 0 && t.rv != LATEST) {
        return Err(bad());
    }
    Ok((t.rv, t.start))
}
