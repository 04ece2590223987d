//! Paging of list requests: continue tokens, and the pinned snapshots later pages are
//! read from (see the store's module docs).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use redb::ReadTransaction;
use serde_json::{Map, Value, json};

use super::ListOptions;
use super::engine::{self, Engine, META, OBJECTS, db_err, prefix_end};
use crate::resources::ResourceDef;
use crate::status::StatusError;

/// How long a list snapshot is kept after the last page read from it.
pub(super) const SNAPSHOT_IDLE: Duration = Duration::from_secs(60);
/// How many list snapshots are kept at most.
pub(super) const MAX_SNAPSHOTS: usize = 32;
/// `rv` of a continue token that continues at the latest state (as etcd3's -1).
const LATEST: i64 = -1;

/// Receives each item of a list page: its stored JSON, and the parsed object if a
/// selector needed it.
pub(super) type EmitItem<'a> = dyn FnMut(&[u8], Option<Value>) -> Result<(), StatusError> + 'a;

/// A pinned read transaction: the state at one resourceVersion.
struct Snapshot {
    txn: Arc<ReadTransaction>,
    last_used: Instant,
    /// Paginations that started on it and have not read their last page yet.
    open: u32,
}

/// List snapshots by resourceVersion.
#[derive(Default)]
pub(super) struct Snapshots {
    by_rv: Mutex<HashMap<u64, Snapshot>>,
}

impl Snapshots {
    /// Drops every snapshot.
    pub(super) fn clear(&mut self) {
        self.by_rv
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    /// The pinned snapshot at `rv`, if still kept (refreshing its idle timer).
    fn snapshot(&self, rv: i64) -> Option<Arc<ReadTransaction>> {
        let rv = u64::try_from(rv).ok()?;
        let mut snaps = self.by_rv.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        snaps.retain(|_, s| now.duration_since(s.last_used) < SNAPSHOT_IDLE);
        let s = snaps.get_mut(&rv)?;
        s.last_used = now;
        Some(s.txn.clone())
    }

    /// Keeps `txn` (the state at `rv`) for the following pages of a list.
    fn pin(&self, rv: u64, txn: Arc<ReadTransaction>) {
        let mut snaps = self.by_rv.lock().unwrap_or_else(|p| p.into_inner());
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
        let mut snaps = self.by_rv.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = snaps.get_mut(&rv) {
            s.open = s.open.saturating_sub(1);
            if s.open == 0 {
                snaps.remove(&rv);
            }
        }
    }
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

/// Where a list request continues: the list's snapshot (or [`LATEST`]) and the last key
/// returned before.
struct Resume {
    rv: i64,
    key: String,
}

/// What one page scan found.
#[derive(Default)]
struct Page {
    /// The key of the last item emitted.
    last_key: Option<String>,
    /// Whether more items follow the page.
    more: bool,
    /// How many keys follow the page (counted only when the list is not filtered).
    remaining: u64,
}

/// Scans the page a list request asks for: `emit` gets each item (the stored JSON, and
/// the parsed object when a selector had to look at it). Returns the list's metadata.
pub(super) fn scan_list(
    engine: &Engine,
    snapshots: &Snapshots,
    def: &ResourceDef,
    ns: Option<&str>,
    opts: &ListOptions,
    emit: &mut EmitItem<'_>,
) -> Result<Map<String, Value>, StatusError> {
    let prefix = match ns {
        Some(ns) if def.namespaced => format!("{}{}\0", def.key_prefix(), ns),
        _ => def.key_prefix(),
    };
    let resume = resume_point(opts, &prefix)?;
    let (txn, pinned) = open_state(engine, snapshots, resume.as_ref())?;
    let list_rv = engine::read_rv(&txn.open_table(META).map_err(db_err)?)?;
    let (start, exclusive_start) = match &resume {
        Some(r) => (r.key.clone(), true),
        None => (prefix.clone(), false),
    };
    let page = scan_page(
        &txn,
        &start,
        exclusive_start,
        &prefix_end(&prefix),
        opts,
        emit,
    )?;

    let mut metadata = Map::new();
    metadata.insert("resourceVersion".into(), json!(list_rv.to_string()));
    if pinned && !page.more {
        // The last page of a pagination.
        snapshots.release(list_rv);
    }
    if page.more
        && let Some(k) = page.last_key
    {
        if !pinned {
            snapshots.pin(list_rv, txn);
        }
        metadata.insert(
            "continue".into(),
            json!(encode_continue(list_rv as i64, &k)),
        );
        if !is_filtered(opts) {
            metadata.insert("remainingItemCount".into(), json!(page.remaining));
        }
    }
    Ok(metadata)
}

fn is_filtered(opts: &ListOptions) -> bool {
    !opts.labels.is_empty() || !opts.fields.is_empty()
}

/// The decoded continue token of the request, if it has one; it must belong to the list
/// whose keys start with `prefix`.
fn resume_point(opts: &ListOptions, prefix: &str) -> Result<Option<Resume>, StatusError> {
    let Some(t) = opts.continue_token.as_deref().filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    let (rv, key) = decode_continue(t)?;
    if !key.starts_with(prefix) {
        return Err(StatusError::bad_request(
            "continue key is not valid: the continue token does not belong to this list",
        ));
    }
    Ok(Some(Resume { rv, key }))
}

/// The state a page is read from: the pinned snapshot of a pagination (`true`), or the
/// latest state. `Err` 410 `Expired` when the snapshot is gone and writes happened since.
fn open_state(
    engine: &Engine,
    snapshots: &Snapshots,
    resume: Option<&Resume>,
) -> Result<(Arc<ReadTransaction>, bool), StatusError> {
    let Some(r) = resume.filter(|r| r.rv != LATEST) else {
        return Ok((Arc::new(engine.begin_read()?), false));
    };
    if let Some(txn) = snapshots.snapshot(r.rv) {
        return Ok((txn, true));
    }
    let txn = Arc::new(engine.begin_read()?);
    let meta = txn.open_table(META).map_err(db_err)?;
    // Nothing written since the first page: the current state is its snapshot.
    if u64::try_from(r.rv).ok() != Some(engine::read_rv(&meta)?) {
        return Err(StatusError::continue_expired(encode_continue(
            LATEST, &r.key,
        )));
    }
    Ok((txn, false))
}

/// Emits the items from `start` (excluded when `exclusive_start`) up to `end` that match
/// the selectors, at most `opts.limit` of them.
fn scan_page(
    txn: &ReadTransaction,
    start: &str,
    exclusive_start: bool,
    end: &str,
    opts: &ListOptions,
    emit: &mut EmitItem<'_>,
) -> Result<Page, StatusError> {
    let objects = txn.open_table(OBJECTS).map_err(db_err)?;
    let limit = opts.limit.filter(|&l| l > 0);
    let filtered = is_filtered(opts);
    let mut count = 0usize;
    let mut page = Page::default();
    for entry in objects.range::<&str>(start..end).map_err(db_err)? {
        let (k, v) = entry.map_err(db_err)?;
        let key = k.value();
        if exclusive_start && key == start {
            continue;
        }
        let full = limit.is_some_and(|l| count >= l);
        if full && !filtered {
            // Unfiltered: every remaining key is an item.
            page.more = true;
            page.remaining += 1;
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
            page.more = true;
            break;
        }
        page.last_key = Some(key.to_string());
        count += 1;
        emit(v.value(), parsed)?;
    }
    Ok(page)
}
