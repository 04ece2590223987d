//! The parts of a local head's dashboard HTTP API the runtime uses: job submission (for
//! RayJobs) and Serve applications (for RayServices).

use std::time::Duration;

use kuberay_core::crd::RayCluster;
use kuberay_core::job_submission::JobInfo;
use serde_json::Value;

const TIMEOUT: Duration = Duration::from_secs(10);

/// The dashboard of a local head.
pub struct HeadApi<'a> {
    http: &'a reqwest::Client,
    base: String,
}

impl<'a> HeadApi<'a> {
    /// The dashboard of `cluster` from its status (`endpoints.dashboard`), once it has one.
    pub fn of(http: &'a reqwest::Client, cluster: &RayCluster) -> Option<HeadApi<'a>> {
        let port = dashboard_port(cluster)?;
        Some(HeadApi {
            http,
            base: format!("http://127.0.0.1:{port}"),
        })
    }

    /// `host:port` of the dashboard, as a RayJob's `dashboardURL`.
    pub fn address(&self) -> &str {
        self.base.trim_start_matches("http://")
    }

    /// Submits a job; a job of the same submission id already there counts as submitted (the
    /// runtime may have stopped between submitting and recording it).
    pub async fn submit(&self, request: &Value) -> Result<(), String> {
        let reply = self
            .http
            .post(format!("{}/api/jobs/", self.base))
            .json(request)
            .timeout(TIMEOUT)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = reply.status();
        let text = reply.text().await.unwrap_or_default();
        if status.is_success() || text.contains("already exists") {
            Ok(())
        } else {
            Err(format!("the dashboard answered {status}: {}", text.trim()))
        }
    }

    /// The job `id`; `None` when the head does not know it.
    pub async fn job(&self, id: &str) -> Result<Option<JobInfo>, String> {
        let reply = self
            .http
            .get(format!("{}/api/jobs/{id}", self.base))
            .timeout(TIMEOUT)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        match reply.status() {
            reqwest::StatusCode::NOT_FOUND => Ok(None),
            status if status.is_success() => {
                reply.json().await.map(Some).map_err(|e| e.to_string())
            }
            status => Err(format!("the dashboard answered {status}")),
        }
    }

    /// Asks the head to stop the job `id`.
    pub async fn stop(&self, id: &str) -> Result<(), String> {
        let reply = self
            .http
            .post(format!("{}/api/jobs/{id}/stop", self.base))
            .timeout(TIMEOUT)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if reply.status().is_success() || reply.status() == reqwest::StatusCode::NOT_FOUND {
            Ok(())
        } else {
            Err(format!("the dashboard answered {}", reply.status()))
        }
    }

    /// Deploys a Serve config (`PUT /api/serve/applications/`).
    pub async fn deploy(&self, config: &Value) -> Result<(), String> {
        let reply = self
            .http
            .put(format!("{}/api/serve/applications/", self.base))
            .json(config)
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = reply.status();
        if status.is_success() {
            Ok(())
        } else {
            let text = reply.text().await.unwrap_or_default();
            Err(format!("the dashboard answered {status}: {}", text.trim()))
        }
    }

    /// The Serve applications' details (`GET /api/serve/applications/`).
    pub async fn applications(&self) -> Result<Value, String> {
        let reply = self
            .http
            .get(format!("{}/api/serve/applications/", self.base))
            .timeout(TIMEOUT)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !reply.status().is_success() {
            return Err(format!("the dashboard answered {}", reply.status()));
        }
        reply.json().await.map_err(|e| e.to_string())
    }
}

/// The local dashboard port in a cluster's status.
pub fn dashboard_port(cluster: &RayCluster) -> Option<u16> {
    status_port(cluster, "dashboard")
}

/// A port of `status.endpoints`.
pub fn status_port(cluster: &RayCluster, name: &str) -> Option<u16> {
    cluster
        .status
        .as_ref()?
        .endpoints
        .as_ref()?
        .get(name)?
        .parse()
        .ok()
}

/// Whether the cluster's state is `ready`.
pub fn is_ready(cluster: &RayCluster) -> bool {
    cluster.status.as_ref().and_then(|s| s.state.as_deref()) == Some("ready")
}
