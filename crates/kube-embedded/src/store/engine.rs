//! The storage engine: the redb file (its tables and format marker), the writer thread
//! and its group commit (see the store's module docs), durability.

use std::path::{Path, PathBuf};
use std::sync::{Arc, mpsc};

use redb::{Database, ReadTransaction, ReadableDatabase, ReadableTable, TableDefinition};
use serde_json::Value;
use tokio::sync::oneshot;

use super::str_at;
use super::watch_hub::Event;
use crate::OpenError;
use crate::status::StatusError;

pub(super) const OBJECTS: TableDefinition<&str, &[u8]> = TableDefinition::new("objects");
pub(super) const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const FORMAT_KEY: &str = "format";
const FORMAT_VALUE: &[u8] = b"kube-embedded/1";
const RV_KEY: &str = "resourceVersion";
/// The store's file inside the data directory.
pub const DB_FILE: &str = "kube-embedded.redb";
/// Most write operations applied in one transaction (one fsync).
const MAX_BATCH: usize = 1024;

pub(super) fn db_err(e: impl std::fmt::Display) -> StatusError {
    StatusError::internal(format!("storage error: {e}"))
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
pub(super) fn prefix_end(prefix: &str) -> String {
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

pub(super) type WriteResult<T> = Result<(T, Vec<Event>), StatusError>;

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

/// Receives the events of each committed batch, in commit order, before its callers
/// are answered.
pub(super) type OnCommit = Box<dyn Fn(Vec<Event>) + Send>;

/// The open store file and its writer thread.
pub(super) struct Engine {
    /// Operations for the writer thread (`None` once stopped).
    writer_tx: Option<mpsc::Sender<Box<dyn PendingWrite>>>,
    writer: Option<std::thread::JoinHandle<()>>,
    db: Arc<Database>,
}

impl Engine {
    /// Opens the store file in `dir` (creating it if there is none); returns it with its
    /// current resourceVersion. Writes are possible once [`Engine::start`] ran.
    pub(super) fn open_file(dir: &Path) -> Result<(Database, u64, PathBuf), OpenError> {
        std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
        let path = dir.join(DB_FILE);
        if !path.exists() {
            initialise(dir, &path)?;
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
        let rv = catch(&path, || check_format(&db, &path))?;
        Ok((db, rv, path))
    }

    /// Starts the writer thread of `db` (opened from `path`).
    pub(super) fn start(
        db: Database,
        path: &Path,
        on_commit: OnCommit,
    ) -> Result<Engine, OpenError> {
        let db = Arc::new(db);
        let (writer_tx, writer_rx) = mpsc::channel();
        let writer = {
            let db = db.clone();
            std::thread::Builder::new()
                .name("kube-embedded-writer".into())
                .spawn(move || run_writer(db, on_commit, writer_rx))
                .map_err(|e| io_err(path, e))?
        };
        Ok(Engine {
            writer_tx: Some(writer_tx),
            writer: Some(writer),
            db,
        })
    }

    /// Stops the writer once it has answered everything pending.
    pub(super) fn stop(&mut self) {
        // Closing the channel stops the writer; joining it lets go of the file.
        self.writer_tx.take();
        if let Some(w) = self.writer.take() {
            let _ = w.join();
        }
    }

    pub(super) fn begin_read(&self) -> Result<ReadTransaction, StatusError> {
        self.db.begin_read().map_err(db_err)
    }

    /// The current (latest committed) resourceVersion.
    pub(super) fn current_rv(&self) -> Result<u64, StatusError> {
        let txn = self.begin_read()?;
        let meta = txn.open_table(META).map_err(db_err)?;
        read_rv(&meta)
    }

    /// The stored JSON at `key`, if any.
    pub(super) fn get_raw(&self, key: &str) -> Result<Option<Vec<u8>>, StatusError> {
        let txn = self.begin_read()?;
        let objects = txn.open_table(OBJECTS).map_err(db_err)?;
        Ok(objects
            .get(key)
            .map_err(db_err)?
            .map(|v| v.value().to_vec()))
    }

    /// Hands a write operation to the writer thread and waits for its answer, which
    /// comes once the batch it ran in is durably committed (see the module docs).
    /// `f` gets read access to the objects (as of its turn) and the next
    /// resourceVersion; it returns its result and the changes it makes, as events with
    /// increasing resourceVersions from that one on (`DELETED` removes the object,
    /// the others store it). With `dry_run` nothing is applied.
    pub(super) async fn write<T, F>(&self, dry_run: bool, f: F) -> Result<T, StatusError>
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
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The writer thread: applies batches of pending operations, one transaction each.
fn run_writer(db: Arc<Database>, on_commit: OnCommit, rx: mpsc::Receiver<Box<dyn PendingWrite>>) {
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
                on_commit(events);
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
        let mut rv = read_rv(&meta)?;
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

pub(super) fn read_rv(
    meta: &impl ReadableTable<&'static str, &'static [u8]>,
) -> Result<u64, StatusError> {
    meta.get(RV_KEY)
        .map_err(db_err)?
        .and_then(|g| <[u8; 8]>::try_from(g.value()).ok())
        .map(u64::from_be_bytes)
        .ok_or_else(|| StatusError::internal("resourceVersion counter missing"))
}
