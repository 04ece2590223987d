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
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use crate::api::Shared;
use crate::resources::ResourceDef;
use crate::status::StatusError;
use crate::store::{Event, ListOptions};

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

pub async fn serve(
    store: Shared,
    def: &'static ResourceDef,
    namespace: Option<String>,
    opts: ListOptions,
    q: &HashMap<String, String>,
    table: bool,
) -> Result<Response, StatusError> {
    let rv_param = q.get("resourceVersion").cloned().unwrap_or_default();
    let send_initial_param = q.get("sendInitialEvents").cloned();
    let bookmarks = q.get("allowWatchBookmarks").map(String::as_str) == Some("true");
    let timeout = q
        .get("timeoutSeconds")
        .and_then(|s| s.parse::<u64>().ok())
        .filter(|&s| s > 0)
        .map_or(DEFAULT_TIMEOUT, Duration::from_secs);

    let filter = Filter {
        def,
        namespace,
        opts: ListOptions {
            limit: None,
            continue_token: None,
            ..opts
        },
    };
    let initial_end_bookmark = bookmarks && send_initial_param.as_deref() == Some("true");
    let initial_wanted = match send_initial_param.as_deref() {
        Some("true") => true,
        Some("false") => false,
        _ => rv_param.is_empty() || rv_param == "0",
    };
    let (initial, after_rv) = if initial_wanted {
        let store2 = store.clone();
        let ns = filter.namespace.clone();
        let list_opts = ListOptions {
            labels: filter.opts.labels.clone(),
            fields: filter.opts.fields.clone(),
            ..Default::default()
        };
        let list = tokio::task::spawn_blocking(move || store2.list(def, ns.as_deref(), &list_opts))
            .await
            .map_err(|e| StatusError::internal(e.to_string()))??;
        let rv = list["metadata"]["resourceVersion"]
            .as_str()
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(0);
        let items = list["items"].as_array().cloned().unwrap_or_default();
        (items, rv)
    } else if rv_param.is_empty() || rv_param == "0" {
        (Vec::new(), store.current_rv()?)
    } else {
        let rv = rv_param.parse::<u64>().map_err(|_| {
            StatusError::bad_request(format!("invalid resource version: {rv_param:?}"))
        })?;
        (Vec::new(), rv)
    };

    // kubectl asks for Table rows; column definitions come with the first row only.
    let mut first_row = true;
    let mut render = move |kind: &str, obj: &Value| -> Bytes {
        if !table {
            return line(kind, obj);
        }
        let mut t = crate::discovery::to_table(def, json!({"metadata": {}, "items": [obj]}));
        t["metadata"] = json!({"resourceVersion": obj["metadata"]["resourceVersion"].clone()});
        if !first_row {
            t["columnDefinitions"] = json!([]);
        }
        first_row = false;
        line(kind, &t)
    };
    let (tx, rx) = mpsc::channel::<Bytes>(256);
    let subscription = store.subscribe(after_rv);
    tokio::spawn(async move {
        let mut sub = match subscription {
            Ok(s) => s,
            Err(e) => {
                let _ = tx.send(line("ERROR", &e.to_json())).await;
                return;
            }
        };
        for obj in &initial {
            if tx.send(render("ADDED", obj)).await.is_err() {
                return;
            }
        }
        if initial_end_bookmark {
            let _ = tx.send(bookmark(def, after_rv, true)).await;
        }
        let mut last_rv = after_rv;
        for ev in std::mem::take(&mut sub.backlog) {
            last_rv = last_rv.max(ev.rv);
            if let Some(kind) = filter.translate(&ev)
                && tx.send(render(kind, &ev.object)).await.is_err()
            {
                return;
            }
        }
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let mut tick = tokio::time::interval(BOOKMARK_EVERY);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = &mut deadline => break,
                _ = tx.closed() => break,
                _ = tick.tick(), if bookmarks => {
                    if tx.send(bookmark(def, last_rv, false)).await.is_err() {
                        break;
                    }
                }
                r = sub.rx.recv() => match r {
                    Ok(ev) => {
                        if ev.rv <= last_rv {
                            continue;
                        }
                        last_rv = ev.rv;
                        if let Some(kind) = filter.translate(&ev)
                            && tx.send(render(kind, &ev.object)).await.is_err()
                        {
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
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<Bytes, std::convert::Infallible>(b), rx))
    });
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(stream),
    )
        .into_response())
}
