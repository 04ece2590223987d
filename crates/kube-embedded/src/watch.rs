//! `?watch=true`: a stream of newline-delimited `{"type":..,"object":..}` events.
//!
//! * no `resourceVersion`, `"0"`, or `sendInitialEvents=true`: synthetic `ADDED`
//!   events for the current state first, then changes;
//! * `resourceVersion=N`: every change after N, as long as it is still kept in
//!   memory (the last 20 000 changes since the store was opened); otherwise one
//!   `ERROR` event with a 410 `Expired` Status, as the kube-apiserver's watch cache does;
//! * `allowWatchBookmarks=true`: periodic `BOOKMARK` events, and the
//!   `k8s.io/initial-events-end` bookmark after initial events when
//!   `sendInitialEvents=true`.
//!
//! Objects that start or stop matching a selector are reported as `ADDED` / `DELETED`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use crate::api::Shared;
use crate::resources::ResourceDef;
use crate::status::StatusError;
use crate::store::{Event, ListOptions, Subscription};

const BOOKMARK_EVERY: Duration = Duration::from_secs(10);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1800);

fn line(kind: &str, object: &Value) -> Bytes {
    let mut v = serde_json::to_vec(&json!({"type": kind, "object": object})).unwrap_or_default();
    v.push(b'\n');
    Bytes::from(v)
}

fn bookmark(def: &ResourceDef, rv: u64, initial_end: bool) -> Bytes {
    let mut meta = json!({"resourceVersion": rv.to_string()});
    if initial_end {
        meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    line(
        "BOOKMARK",
        &json!({"kind": def.kind, "apiVersion": def.api_version(), "metadata": meta}),
    )
}

struct Filter {
    def: &'static ResourceDef,
    namespace: Option<String>,
    opts: ListOptions,
}

impl Filter {
    fn matches(&self, obj: &Value) -> bool {
        self.opts.labels.matches(obj) && self.opts.fields.matches(obj)
    }

    /// The event type to send for `ev`, if any.
    fn translate(&self, ev: &Event) -> Option<&'static str> {
        if !std::ptr::eq(ev.def, self.def) {
            return None;
        }
        if let Some(ns) = &self.namespace
            && self.def.namespaced
            && &ev.namespace != ns
        {
            return None;
        }
        let now = self.matches(&ev.object);
        match ev.kind {
            "MODIFIED" => {
                let before = ev.prev.as_ref().map_or(now, |p| self.matches(p));
                match (before, now) {
                    (true, true) => Some("MODIFIED"),
                    (false, true) => Some("ADDED"),
                    (true, false) => Some("DELETED"),
                    (false, false) => None,
                }
            }
            k => now.then_some(k),
        }
    }
}

/// What the query parameters ask of a watch.
struct WatchParams {
    /// `resourceVersion` ("" when absent).
    rv: String,
    send_initial: Option<String>,
    bookmarks: bool,
    timeout: Duration,
}

impl WatchParams {
    fn parse(q: &HashMap<String, String>) -> Self {
        WatchParams {
            rv: q.get("resourceVersion").cloned().unwrap_or_default(),
            send_initial: q.get("sendInitialEvents").cloned(),
            bookmarks: q.get("allowWatchBookmarks").map(String::as_str) == Some("true"),
            timeout: q
                .get("timeoutSeconds")
                .and_then(|s| s.parse::<u64>().ok())
                .filter(|&s| s > 0)
                .map_or(DEFAULT_TIMEOUT, Duration::from_secs),
        }
    }

    /// No `resourceVersion`, or `"0"`.
    fn rv_unset(&self) -> bool {
        self.rv.is_empty() || self.rv == "0"
    }

    /// Whether synthetic `ADDED` events for the current state come first.
    fn initial_wanted(&self) -> bool {
        match self.send_initial.as_deref() {
            Some("true") => true,
            Some("false") => false,
            _ => self.rv_unset(),
        }
    }

    /// Whether the `k8s.io/initial-events-end` bookmark follows the initial events.
    fn initial_end_bookmark(&self) -> bool {
        self.bookmarks && self.send_initial.as_deref() == Some("true")
    }
}

/// Where a watch starts: the objects to announce first, and the resourceVersion after
/// which changes are sent.
struct Start {
    initial: Vec<Value>,
    rv: u64,
}

/// Resolves the starting point of a watch from its parameters.
async fn resolve_start(
    store: &Shared,
    filter: &Filter,
    params: &WatchParams,
) -> Result<Start, StatusError> {
    if params.initial_wanted() {
        return list_initial(store, filter).await;
    }
    let rv = if params.rv_unset() {
        store.current_rv()?
    } else {
        params.rv.parse::<u64>().map_err(|_| {
            StatusError::bad_request(format!("invalid resource version: {:?}", params.rv))
        })?
    };
    Ok(Start {
        initial: Vec::new(),
        rv,
    })
}

/// Lists the matching objects (all of them, ignoring `limit`) and the list's resourceVersion.
async fn list_initial(store: &Shared, filter: &Filter) -> Result<Start, StatusError> {
    let store = store.clone();
    let def = filter.def;
    let ns = filter.namespace.clone();
    let list_opts = ListOptions {
        labels: filter.opts.labels.clone(),
        fields: filter.opts.fields.clone(),
        ..Default::default()
    };
    let list = tokio::task::spawn_blocking(move || store.list(def, ns.as_deref(), &list_opts))
        .await
        .map_err(|e| StatusError::internal(e.to_string()))??;
    let rv = list["metadata"]["resourceVersion"]
        .as_str()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(0);
    let initial = list["items"].as_array().cloned().unwrap_or_default();
    Ok(Start { initial, rv })
}

/// Encodes events as plain objects, or as Table rows (what kubectl asks for); column
/// definitions come with the first row only.
struct Renderer {
    def: &'static ResourceDef,
    table: bool,
    first_row: bool,
}

impl Renderer {
    fn render(&mut self, kind: &str, obj: &Value) -> Bytes {
        if !self.table {
            return line(kind, obj);
        }
        let mut t = crate::discovery::to_table(self.def, json!({"metadata": {}, "items": [obj]}));
        t["metadata"] = json!({"resourceVersion": obj["metadata"]["resourceVersion"].clone()});
        if !self.first_row {
            t["columnDefinitions"] = json!([]);
        }
        self.first_row = false;
        line(kind, &t)
    }
}

/// The sending side of one watch, run as a task feeding the response body.
struct Watcher {
    tx: mpsc::Sender<Bytes>,
    filter: Filter,
    renderer: Renderer,
    params: WatchParams,
}

impl Watcher {
    async fn run(mut self, subscription: Result<Subscription, StatusError>, start: Start) {
        let mut sub = match subscription {
            Ok(s) => s,
            Err(e) => {
                let _ = self.tx.send(line("ERROR", &e.to_json())).await;
                return;
            }
        };
        if !self.send_initial(&start).await {
            return;
        }
        let backlog = std::mem::take(&mut sub.backlog);
        let Some(last_rv) = self.replay(backlog, start.rv).await else {
            return;
        };
        self.follow(sub.rx, last_rv).await;
    }

    /// Sends `ev` if it concerns this watch; false once the client is gone.
    async fn send_event(&mut self, ev: &Event) -> bool {
        match self.filter.translate(ev) {
            Some(kind) => self
                .tx
                .send(self.renderer.render(kind, &ev.object))
                .await
                .is_ok(),
            None => true,
        }
    }

    /// The initial `ADDED` events and the initial-events-end bookmark; false once the
    /// client is gone.
    async fn send_initial(&mut self, start: &Start) -> bool {
        for obj in &start.initial {
            if self
                .tx
                .send(self.renderer.render("ADDED", obj))
                .await
                .is_err()
            {
                return false;
            }
        }
        if self.params.initial_end_bookmark() {
            let _ = self
                .tx
                .send(bookmark(self.filter.def, start.rv, true))
                .await;
        }
        true
    }

    /// Sends the changes kept since the starting point; the last resourceVersion seen, or
    /// `None` once the client is gone.
    async fn replay(&mut self, backlog: Vec<Arc<Event>>, mut last_rv: u64) -> Option<u64> {
        for ev in backlog {
            last_rv = last_rv.max(ev.rv);
            if !self.send_event(&ev).await {
                return None;
            }
        }
        Some(last_rv)
    }

    /// Sends live changes and periodic bookmarks until the timeout, the client leaves, or
    /// the watcher falls behind.
    async fn follow(&mut self, mut rx: broadcast::Receiver<Arc<Event>>, mut last_rv: u64) {
        let deadline = tokio::time::sleep(self.params.timeout);
        tokio::pin!(deadline);
        let mut tick = tokio::time::interval(BOOKMARK_EVERY);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = &mut deadline => break,
                _ = self.tx.closed() => break,
                _ = tick.tick(), if self.params.bookmarks => {
                    if self.tx.send(bookmark(self.filter.def, last_rv, false)).await.is_err() {
                        break;
                    }
                }
                r = rx.recv() => match r {
                    Ok(ev) => {
                        if ev.rv <= last_rv {
                            continue;
                        }
                        last_rv = ev.rv;
                        if !self.send_event(&ev).await {
                            break;
                        }
                    }
                    // A watcher that fell behind is closed; the client resumes from
                    // the last resourceVersion it saw.
                    Err(broadcast::error::RecvError::Lagged(_)) => break,
                    Err(broadcast::error::RecvError::Closed) => break,
                },
            }
        }
    }
}

/// A 200 response whose body is what arrives on `rx`.
fn stream_response(rx: mpsc::Receiver<Bytes>) -> Response {
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<Bytes, std::convert::Infallible>(b), rx))
    });
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(stream),
    )
        .into_response()
}

pub async fn serve(
    store: Shared,
    def: &'static ResourceDef,
    namespace: Option<String>,
    opts: ListOptions,
    q: &HashMap<String, String>,
    table: bool,
) -> Result<Response, StatusError> {
    let params = WatchParams::parse(q);
    let filter = Filter {
        def,
        namespace,
        opts: ListOptions {
            limit: None,
            continue_token: None,
            ..opts
        },
    };
    let start = resolve_start(&store, &filter, &params).await?;
    let (tx, rx) = mpsc::channel::<Bytes>(256);
    let subscription = store.subscribe(start.rv);
    let watcher = Watcher {
        tx,
        filter,
        renderer: Renderer {
            def,
            table,
            first_row: true,
        },
        params,
    };
    tokio::spawn(watcher.run(subscription, start));
    Ok(stream_response(rx))
}
