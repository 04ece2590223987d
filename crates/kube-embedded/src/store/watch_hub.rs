//! The watch hub: the events of committed writes, fanned out to every watcher, and the
//! recent history a watch resumes from.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::sync::broadcast;

use crate::resources::ResourceDef;
use crate::status::StatusError;

/// Watch events kept in memory for resuming watches.
const HISTORY_LEN: usize = 20_000;
/// Events buffered per watcher before it lags.
const CHANNEL_LEN: usize = 4096;

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

/// Outcome of a watch subscription.
pub struct Subscription {
    pub backlog: Vec<Arc<Event>>,
    pub rx: broadcast::Receiver<Arc<Event>>,
}

struct History {
    events: VecDeque<Arc<Event>>,
    /// Events with rv > `floor` are all in `events` (or the store had none).
    floor: u64,
    tx: broadcast::Sender<Arc<Event>>,
}

pub(super) struct WatchHub {
    inner: Mutex<History>,
}

impl WatchHub {
    /// A hub for a store whose latest resourceVersion is `rv` (no history before it).
    pub(super) fn new(rv: u64) -> WatchHub {
        let (tx, _) = broadcast::channel(CHANNEL_LEN);
        WatchHub {
            inner: Mutex::new(History {
                events: VecDeque::new(),
                floor: rv,
                tx,
            }),
        }
    }

    /// Records and sends the events of one committed batch, in commit order.
    pub(super) fn publish(&self, events: Vec<Event>) {
        if events.is_empty() {
            return;
        }
        let mut hub = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        for e in events {
            let e = Arc::new(e);
            hub.events.push_back(e.clone());
            if hub.events.len() > HISTORY_LEN
                && let Some(old) = hub.events.pop_front()
            {
                hub.floor = old.rv;
            }
            let _ = hub.tx.send(e);
        }
    }

    /// Subscribes to changes after `after_rv`; `Err` 410 when that point is no longer in memory.
    pub(super) fn subscribe(&self, after_rv: u64) -> Result<Subscription, StatusError> {
        let hub = self.inner.lock().expect("hub lock");
        if after_rv < hub.floor {
            return Err(StatusError::gone(format!(
                "too old resource version: {} ({})",
                after_rv,
                hub.floor + 1
            )));
        }
        let backlog = hub
            .events
            .iter()
            .filter(|e| e.rv > after_rv)
            .cloned()
            .collect();
        Ok(Subscription {
            backlog,
            rx: hub.tx.subscribe(),
        })
    }
}
