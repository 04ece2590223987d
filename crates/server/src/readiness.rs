//! `/readyz`: whether the Kubernetes API (or the embedded store) answers, and the watch caches
//! have their initial lists.
//!
//! The check is one `GET /readyz` of the API server through the server's own [`kube::Client`]
//! (the embedded store answers it in-process). Any answer below 500 counts as reachable (a 401 or
//! 403 still proves the API server answers); a 5xx, a transport error or no answer within
//! [`CHECK_TIMEOUT`] does not. The outcome is reused for [`CACHE_FOR`], so probes cost the API
//! server at most one request per that period, and concurrent probes share one check: a probe
//! never waits longer than about [`CHECK_TIMEOUT`].

use std::sync::Arc;
use std::time::Duration;

use crate::cache::Caches;

use tokio::sync::Mutex;
use tokio::time::Instant;

/// How long one check may take before the API counts as unreachable. Well under kubelet's
/// default probe timeout (1 s).
pub const CHECK_TIMEOUT: Duration = Duration::from_millis(500);

/// How long a check's outcome is reused.
pub const CACHE_FOR: Duration = Duration::from_secs(2);

/// The cached readiness of the backend.
pub struct Readiness {
    client: kube::Client,
    caches: Option<Arc<Caches>>,
    last: Mutex<Option<(Instant, Result<(), String>)>>,
}

impl Readiness {
    pub fn new(client: kube::Client, caches: Option<Arc<Caches>>) -> Self {
        Self {
            client,
            caches,
            last: Mutex::new(None),
        }
    }

    /// `Ok` when the backend answered within the last [`CACHE_FOR`] and every watch cache has
    /// its initial list; else the reason.
    pub async fn check(&self) -> Result<(), String> {
        if let Some(caches) = &self.caches {
            let pending = caches.pending();
            if !pending.is_empty() {
                return Err(format!(
                    "watch caches not synced yet: {}",
                    pending.join(", ")
                ));
            }
        }
        let mut last = self.last.lock().await;
        if let Some((at, outcome)) = &*last
            && at.elapsed() < CACHE_FOR
        {
            return outcome.clone();
        }
        let outcome = self.probe().await;
        if let Err(reason) = &outcome {
            tracing::warn!("not ready: {reason}");
        }
        *last = Some((Instant::now(), outcome.clone()));
        outcome
    }

    async fn probe(&self) -> Result<(), String> {
        let request = http::Request::get("/readyz")
            .body(Vec::new())
            .map_err(|error| error.to_string())?;
        match tokio::time::timeout(CHECK_TIMEOUT, self.client.send(request.map(Into::into))).await {
            Err(_) => Err(format!(
                "the Kubernetes API did not answer within {}ms",
                CHECK_TIMEOUT.as_millis()
            )),
            Ok(Err(error)) => Err(format!("the Kubernetes API cannot be reached: {error}")),
            Ok(Ok(response)) if response.status().is_server_error() => Err(format!(
                "the Kubernetes API is not ready: /readyz answered {}",
                response.status()
            )),
            Ok(Ok(_)) => Ok(()),
        }
    }
}
