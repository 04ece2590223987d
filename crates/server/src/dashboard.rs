//! Client of a Ray cluster's dashboard job API (`/api/jobs/`), used by RayJobSubmissionService.
//!
//! The protocol is the one the Go server speaks (Ray's job REST API); what differs is how the
//! dashboard is reached ([`Access`]) and how failures are reported: the dashboard's 404 is
//! NOT_FOUND, its 400 INVALID_ARGUMENT, an unreachable dashboard UNAVAILABLE and a call that
//! outlives `--dashboard-timeout` DEADLINE_EXCEEDED. Everything else keeps the Go server's
//! texts and its UNKNOWN code.
//!
//! Requests never carry the markers that make the dashboard treat a request as coming from a
//! browser (a `Mozilla` User-Agent, `Origin`, `Referer`, `Sec-Fetch-*`): the dashboard refuses
//! such POST and DELETE requests, and redacts runtime environments in answers to them.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Method, StatusCode, header};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;
use serde_json::Value;
use tonic::Code;

use crate::backend::KubeAccess;
use crate::config::Config;
use crate::error::ApiError;
use kuberay_core::job_submission::JobInfo;

/// Port of the dashboard on a head Service (fixed, as in the Go server).
pub const DASHBOARD_PORT: u16 = 8265;
/// Name of the head Service port of the dashboard, as the KubeRay operator creates it.
pub const DASHBOARD_PORT_NAME: &str = "dashboard";
/// Header carrying the Ray auth token. Ray accepts `Authorization` too, but that one is consumed
/// by the Kubernetes API server on the proxy route, so we use the header KubeRay uses.
pub const AUTH_HEADER: &str = "x-ray-authorization";
/// Our User-Agent: anything not starting with `Mozilla` is treated as a programmatic client.
pub const USER_AGENT: &str = concat!("kuberay-apiserver/", env!("CARGO_PKG_VERSION"));

const JOBS_PATH: &str = "/api/jobs/";

/// Characters escaped in a submission id used as a path segment.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// How the dashboards of clusters are reached.
#[derive(Clone)]
pub enum Access {
    /// `--dashboard-url-template`: a base URL with `{name}` and `{namespace}` placeholders.
    Template(String),
    /// `http://<cluster>-head-svc.<namespace>.svc.cluster.local:8265`, for a server running in
    /// the cluster (the Go server's only way).
    ClusterDns,
    /// The Kubernetes API server's service proxy, with the server's own credentials. The client
    /// should not retry on its own (`default_retry = false`).
    KubeProxy(kube::Client),
    /// The embedded backend's local Ray runtime: the head the cluster's status names
    /// (`status.head.podIP` and `status.endpoints.dashboard`), read with this client.
    LocalStatus(kube::Client),
}

impl Access {
    /// The access a server configured like `config` uses, and why. `kubernetes` is how the
    /// backend reaches a real cluster (`None` on the embedded store); the proxy route gets a
    /// client of its own built from it, but without kube's automatic retries: a job submission
    /// must never be sent twice.
    ///
    /// `local` is the client of the embedded store when its local Ray runtime runs clusters:
    /// their dashboards are then found from their status unless the template is set.
    pub fn choose(
        config: &Config,
        kubernetes: Option<&KubeAccess>,
        local: Option<kube::Client>,
    ) -> anyhow::Result<(Access, String)> {
        if let Some(template) = config
            .dashboard_url_template
            .as_deref()
            .filter(|t| !t.trim().is_empty())
        {
            return Ok((
                Access::Template(template.trim().to_string()),
                "--dashboard-url-template is set".into(),
            ));
        }
        let Some(kubernetes) = kubernetes else {
            if let Some(client) = local {
                return Ok((
                    Access::LocalStatus(client),
                    "the local Ray runtime runs the clusters of the embedded backend".into(),
                ));
            }
            return Ok((
                Access::ClusterDns,
                "the embedded backend has no service proxy; set --dashboard-url-template to reach heads outside a cluster".into(),
            ));
        };
        if kubernetes.in_cluster() {
            return Ok((
                Access::ClusterDns,
                "running in a pod with the in-cluster configuration".into(),
            ));
        }
        Ok((
            Access::KubeProxy(kubernetes.client_without_retries()?),
            "not in a pod with the in-cluster configuration".into(),
        ))
    }

    fn describe(&self) -> String {
        match self {
            Access::Template(template) => {
                format!("{}{JOBS_PATH}", template.trim_end_matches('/'))
            }
            Access::ClusterDns => format!(
                "http://{{name}}-head-svc.{{namespace}}.svc.cluster.local:{DASHBOARD_PORT}{JOBS_PATH}"
            ),
            Access::KubeProxy(_) => format!(
                "the Kubernetes API server's proxy /api/v1/namespaces/{{namespace}}/services/{{name}}-head-svc:{DASHBOARD_PORT_NAME}/proxy{JOBS_PATH}"
            ),
            Access::LocalStatus(_) => format!(
                "http://{{status.head.podIP}}:{{status.endpoints.dashboard}}{JOBS_PATH} of each local cluster"
            ),
        }
    }
}

/// Access to the dashboards of all clusters: how to reach them, the timeout and the token.
#[derive(Clone)]
pub struct Dashboards {
    inner: Arc<Inner>,
}

struct Inner {
    access: Access,
    http: reqwest::Client,
    timeout: Duration,
    token: Option<HeaderValue>,
}

impl Dashboards {
    /// Needs the process-wide rustls crypto provider installed (the binary installs ring at
    /// its start): reqwest is built without a default one.
    pub fn new(access: Access, timeout: Duration, token: Option<&str>) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .no_proxy()
            .build()?;
        let token = match token.map(str::trim).filter(|t| !t.is_empty()) {
            Some(token) => {
                let mut value =
                    HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
                        anyhow::anyhow!("the Ray auth token is not a valid header value")
                    })?;
                value.set_sensitive(true);
                Some(value)
            }
            None => None,
        };
        Ok(Self {
            inner: Arc::new(Inner {
                access,
                http,
                timeout,
                token,
            }),
        })
    }

    /// The dashboards of a server configured like `config`; the choice is logged.
    pub fn from_config(
        config: &Config,
        kubernetes: Option<&KubeAccess>,
        local: Option<kube::Client>,
    ) -> anyhow::Result<Self> {
        let (access, reason) = Access::choose(config, kubernetes, local)
            .map_err(|e| e.context("preparing the Kubernetes client of the dashboard proxy"))?;
        let dashboards = Self::new(
            access,
            config.dashboard_timeout,
            config.ray_auth_token.as_deref(),
        )?;
        tracing::info!(
            "Ray dashboards: {} ({reason}; timeout {:?}{})",
            dashboards.inner.access.describe(),
            dashboards.inner.timeout,
            if dashboards.inner.token.is_some() {
                ", with the Ray auth token"
            } else {
                ""
            }
        );
        Ok(dashboards)
    }

    /// The dashboard of one cluster.
    pub fn of(&self, name: &str, namespace: &str) -> Dashboard {
        Dashboard {
            inner: self.inner.clone(),
            name: name.to_string(),
            namespace: namespace.to_string(),
        }
    }
}

/// The text of a job the dashboard does not know.
fn not_on_cluster(id: &str) -> String {
    format!("Job {id} does not exist on the cluster")
}

/// One answer of a dashboard.
struct Reply {
    status: StatusCode,
    body: Bytes,
}

impl Reply {
    /// Go's `resp.Status`: `404 Not Found`.
    fn status_line(&self) -> String {
        match self.status.canonical_reason() {
            Some(reason) => format!("{} {reason}", self.status.as_u16()),
            None => self.status.as_u16().to_string(),
        }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The refusals of a call about one job: 404 is NOT_FOUND with `missing`, 400 is
    /// INVALID_ARGUMENT with what `invalid` makes of the reply; other answers pass.
    fn refusal(
        &self,
        missing: impl FnOnce() -> String,
        invalid: impl FnOnce(&Self) -> String,
    ) -> Result<(), ApiError> {
        match self.status {
            StatusCode::NOT_FOUND => Err(ApiError::with_code(Code::NotFound, missing())),
            StatusCode::BAD_REQUEST => {
                Err(ApiError::with_code(Code::InvalidArgument, invalid(self)))
            }
            _ => Ok(()),
        }
    }

    fn json<T: serde::de::DeserializeOwned + Default>(&self) -> Result<T, serde_json::Error> {
        let value: Option<T> = serde_json::from_slice(&self.body)?;
        Ok(value.unwrap_or_default())
    }
}

#[derive(Default, Deserialize)]
struct SubmitReply {
    #[serde(default)]
    job_id: Option<String>,
}

#[derive(Default, Deserialize)]
struct LogsReply {
    #[serde(default)]
    logs: Option<String>,
}

#[derive(Default, Deserialize)]
struct StopReply {
    #[serde(default)]
    stopped: Option<bool>,
}

/// The dashboard of one cluster.
pub struct Dashboard {
    inner: Arc<Inner>,
    name: String,
    namespace: String,
}

impl Dashboard {
    /// `POST /api/jobs/` with the request object; the dashboard's job id.
    pub async fn submit_job(
        &self,
        request: &Value,
        submission_id: &str,
    ) -> Result<String, ApiError> {
        let body = serde_json::to_vec(request).expect("a JSON value always serialises");
        let reply = self.call(Method::POST, "", Some(body)).await?;
        if !reply.status.is_success() {
            let text = reply.text();
            if reply.status == StatusCode::INTERNAL_SERVER_ERROR
                && text.contains("Please use a different submission_id")
            {
                return Err(ApiError::with_code(
                    Code::AlreadyExists,
                    format!(
                        "submission ID '{submission_id}' already used, Please use a different submission_id"
                    ),
                ));
            }
            let message = format!("SubmitJob fail: {} {text}", reply.status_line());
            return Err(by_status(reply.status, message));
        }
        let decoded: SubmitReply = reply
            .json()
            .map_err(|_| ApiError::plain(format!("SubmitJob fail: {}", reply.text())))?;
        Ok(decoded.job_id.unwrap_or_default())
    }

    /// `GET /api/jobs/<id>`.
    pub async fn job_info(&self, id: &str) -> Result<JobInfo, ApiError> {
        let reply = self.call(Method::GET, &segment(id), None).await?;
        reply.refusal(
            || not_on_cluster(id),
            |reply| format!("GetJobInfo fail: {}", reply.text()),
        )?;
        reply
            .json()
            .map_err(|_| ApiError::plain(format!("GetJobInfo fail: {}", reply.text())))
    }

    /// `GET /api/jobs/<id>/logs`: the whole log.
    pub async fn job_logs(&self, id: &str) -> Result<String, ApiError> {
        let reply = self
            .call(Method::GET, &format!("{}/logs", segment(id)), None)
            .await?;
        reply.refusal(
            || format!("JobSubmission.RayJob \"{id}\" not found"),
            |reply| format!("GetJobLog fail: {}", reply.text()),
        )?;
        reply
            .json::<LogsReply>()
            .map(|r| r.logs.unwrap_or_default())
            .map_err(|_| ApiError::plain(format!("GetJobLog fail: {}", reply.text())))
    }

    /// `GET /api/jobs/`: every job the dashboard knows, in its order; none on a 404.
    pub async fn list_jobs(&self) -> Result<Vec<JobInfo>, ApiError> {
        let reply = self.call(Method::GET, "", None).await?;
        match reply.status {
            StatusCode::NOT_FOUND => Ok(Vec::new()),
            StatusCode::BAD_REQUEST => Err(ApiError::with_code(
                Code::InvalidArgument,
                format!("GetJobInfo fail: {}", reply.text()),
            )),
            _ => reply
                .json()
                .map_err(|_| ApiError::plain(format!("GetJobInfo fail: {}", reply.text()))),
        }
    }

    /// `POST /api/jobs/<id>/stop`; when the dashboard did not stop the job, succeeds only if
    /// the job has ended anyway.
    pub async fn stop_job(&self, id: &str) -> Result<(), ApiError> {
        let reply = self
            .call(Method::POST, &format!("{}/stop", segment(id)), None)
            .await?;
        reply.refusal(
            || not_on_cluster(id),
            |reply| format!("StopJob fail: {} {}", reply.status_line(), reply.text()),
        )?;
        let stopped = reply
            .json::<StopReply>()
            .map_err(|error| ApiError::plain(error.to_string()))?
            .stopped
            .unwrap_or(false);
        if !stopped {
            let info = self.job_info(id).await?;
            if !info.is_terminal() {
                return Err(ApiError::plain(format!(
                    "failed to stop job: {}",
                    info.go_text()
                )));
            }
        }
        Ok(())
    }

    /// `DELETE /api/jobs/<id>`: other answers than 404 and 400 are ignored, like the Go server.
    pub async fn delete_job(&self, id: &str) -> Result<(), ApiError> {
        let reply = self.call(Method::DELETE, &segment(id), None).await?;
        reply.refusal(
            || not_on_cluster(id),
            |reply| format!("DeleteJob fail: {} {}", reply.status_line(), reply.text()),
        )
    }

    /// One call, `path` relative to `/api/jobs/`, bounded by the dashboard timeout. A refusal
    /// for want of the right token is an error whatever the call.
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Reply, ApiError> {
        // Go's error texts name the method like this.
        let verb = match method {
            Method::GET => "Get",
            Method::POST => "Post",
            Method::DELETE => "Delete",
            _ => method.as_str(),
        }
        .to_string();
        let (reply, target) = match &self.inner.access {
            Access::Template(template) => {
                let base = template
                    .replace("{name}", &self.name)
                    .replace("{namespace}", &self.namespace);
                let url = format!("{}{JOBS_PATH}{path}", base.trim_end_matches('/'));
                (self.direct(method, &verb, &url, body).await?, url)
            }
            Access::ClusterDns => {
                let url = format!(
                    "http://{}-head-svc.{}.svc.cluster.local:{DASHBOARD_PORT}{JOBS_PATH}{path}",
                    self.name, self.namespace
                );
                (self.direct(method, &verb, &url, body).await?, url)
            }
            Access::LocalStatus(client) => {
                let base = self.local_base(client, &verb).await?;
                let url = format!("{base}{JOBS_PATH}{path}");
                (self.direct(method, &verb, &url, body).await?, url)
            }
            Access::KubeProxy(client) => {
                let uri = format!(
                    "/api/v1/namespaces/{}/services/{}-head-svc:{DASHBOARD_PORT_NAME}/proxy{JOBS_PATH}{path}",
                    self.namespace, self.name
                );
                (self.proxied(client, method, &verb, &uri, body).await?, uri)
            }
        };
        if matches!(
            reply.status,
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN
        ) {
            let hint = if self.inner.token.is_some() {
                "check --ray-auth-token"
            } else {
                "the cluster requires a token: set --ray-auth-token"
            };
            return Err(ApiError::with_code(
                Code::Internal,
                format!(
                    "{verb} \"{target}\": the Ray dashboard refused the request: {} {} ({hint})",
                    reply.status_line(),
                    reply.text()
                ),
            ));
        }
        Ok(reply)
    }

    /// `http://<podIP>:<dashboard port>` of a cluster run by the local Ray runtime, from its
    /// status.
    async fn local_base(&self, client: &kube::Client, verb: &str) -> Result<String, ApiError> {
        let api: kube::Api<kuberay_core::crd::RayCluster> =
            kube::Api::namespaced(client.clone(), &self.namespace);
        let target = format!("RayCluster {}/{}", self.namespace, self.name);
        let cluster = match tokio::time::timeout(self.inner.timeout, api.get(&self.name)).await {
            Ok(Ok(cluster)) => cluster,
            Ok(Err(kube::Error::Api(status))) if status.code == 404 => {
                return Err(ApiError::with_code(
                    Code::NotFound,
                    format!("{target} not found"),
                ));
            }
            Ok(Err(error)) => return Err(unreachable(verb, &target, &error_chain(&error))),
            Err(_) => return Err(timed_out(verb, &target, self.inner.timeout)),
        };
        let status = cluster.status.unwrap_or_default();
        let ip = status.head.and_then(|head| head.pod_ip);
        let port = status
            .endpoints
            .and_then(|endpoints| endpoints.get(DASHBOARD_PORT_NAME).cloned());
        match (ip, port) {
            (Some(ip), Some(port)) => Ok(format!("http://{ip}:{port}")),
            _ => Err(ApiError::with_code(
                Code::Unavailable,
                format!(
                    "{verb} \"{target}\": the cluster's status names no dashboard (status.head.podIP and status.endpoints.dashboard) yet"
                ),
            )),
        }
    }

    async fn direct(
        &self,
        method: Method,
        verb: &str,
        url: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Reply, ApiError> {
        let timeout = self.inner.timeout;
        let content_type = method != Method::GET;
        let mut request = self.inner.http.request(method, url);
        if content_type {
            request = request.header(header::CONTENT_TYPE, "application/json");
        }
        if let Some(token) = &self.inner.token {
            request = request.header(AUTH_HEADER, token.clone());
        }
        if let Some(body) = body {
            request = request.body(body);
        }
        let exchange = async {
            let response = request.send().await?;
            let status = response.status();
            let body = response.bytes().await?;
            Ok::<_, reqwest::Error>(Reply { status, body })
        };
        match tokio::time::timeout(timeout, exchange).await {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(error)) => Err(unreachable(verb, url, &error_chain(&error))),
            Err(_) => Err(timed_out(verb, url, timeout)),
        }
    }

    async fn proxied(
        &self,
        client: &kube::Client,
        method: Method,
        verb: &str,
        uri: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Reply, ApiError> {
        let timeout = self.inner.timeout;
        let content_type = method != Method::GET;
        let mut builder = http::Request::builder()
            .method(method)
            .uri(uri)
            .header(header::USER_AGENT, USER_AGENT);
        if content_type {
            builder = builder.header(header::CONTENT_TYPE, "application/json");
        }
        if let Some(token) = &self.inner.token {
            builder = builder.header(AUTH_HEADER, token.clone());
        }
        let request = builder
            .body(kube::client::Body::from(body.unwrap_or_default()))
            .map_err(|e| ApiError::plain(format!("{verb} \"{uri}\": {e}")))?;
        let exchange = async {
            let response = client.send(request).await?;
            let status = response.status();
            let is_json = response
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("application/json"));
            let body = response.into_body().collect_bytes().await?;
            Ok::<_, kube::Error>((Reply { status, body }, is_json))
        };
        let (reply, is_json) = match tokio::time::timeout(timeout, exchange).await {
            Ok(Ok(done)) => done,
            Ok(Err(error)) => return Err(unreachable(verb, uri, &error_chain(&error))),
            Err(_) => return Err(timed_out(verb, uri, timeout)),
        };
        // A failure of the API server itself (no such Service, no ready endpoint, the pod did not
        // answer, no permission to proxy) is a Kubernetes Status, which a dashboard never sends.
        if !reply.status.is_success()
            && is_json
            && let Ok(status) = serde_json::from_slice::<KubeStatus>(&reply.body)
            && status.kind == "Status"
        {
            let text = format!(
                "{verb} \"{uri}\": the Kubernetes API server answered {}: {}",
                reply.status_line(),
                status.message
            );
            return Err(match reply.status {
                StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                    ApiError::with_code(Code::Internal, text)
                }
                _ => ApiError::with_code(Code::Unavailable, text),
            });
        }
        Ok(reply)
    }
}

#[derive(Deserialize)]
struct KubeStatus {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    message: String,
}

/// A dashboard answer other than success: 404 NOT_FOUND, 400 INVALID_ARGUMENT, else UNKNOWN.
fn by_status(status: StatusCode, message: String) -> ApiError {
    match status {
        StatusCode::NOT_FOUND => ApiError::with_code(Code::NotFound, message),
        StatusCode::BAD_REQUEST => ApiError::with_code(Code::InvalidArgument, message),
        _ => ApiError::plain(message),
    }
}

fn segment(id: &str) -> String {
    utf8_percent_encode(id, SEGMENT).to_string()
}

fn unreachable(verb: &str, url: &str, cause: &str) -> ApiError {
    ApiError::with_code(Code::Unavailable, format!("{verb} \"{url}\": {cause}"))
}

fn timed_out(verb: &str, url: &str, timeout: Duration) -> ApiError {
    ApiError::with_code(
        Code::DeadlineExceeded,
        format!("{verb} \"{url}\": the Ray dashboard did not answer within {timeout:?}"),
    )
}

/// The causes of an error, outermost first, without the outermost text when it has causes
/// (reqwest's repeats the URL).
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = Vec::new();
    let mut next = error.source();
    while let Some(cause) = next {
        let text = cause.to_string();
        if parts.last() != Some(&text) {
            parts.push(text);
        }
        next = cause.source();
    }
    if parts.is_empty() {
        error.to_string()
    } else {
        parts.join(": ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(args: &[&str]) -> Config {
        let mut all = vec!["kuberay-apiserver"];
        all.extend(args);
        <Config as clap::Parser>::parse_from(all)
    }

    fn kube_access(in_cluster: bool) -> KubeAccess {
        let url = "https://127.0.0.1:6443".parse().unwrap();
        KubeAccess::new(kube::Config::new(url), in_cluster)
    }

    #[tokio::test]
    async fn a_real_cluster_is_reached_by_service_dns_in_a_pod_and_by_the_proxy_outside() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let (access, reason) =
            Access::choose(&config(&[]), Some(&kube_access(true)), None).unwrap();
        assert!(matches!(access, Access::ClusterDns));
        assert_eq!(reason, "running in a pod with the in-cluster configuration");
        let (access, reason) =
            Access::choose(&config(&[]), Some(&kube_access(false)), None).unwrap();
        assert!(matches!(access, Access::KubeProxy(_)));
        assert_eq!(reason, "not in a pod with the in-cluster configuration");
    }

    #[tokio::test]
    async fn the_template_wins_and_the_embedded_backend_dials_the_service_name() {
        let (access, reason) = Access::choose(
            &config(&[
                "--dashboard-url-template",
                "http://{name}.{namespace}:8265/",
            ]),
            Some(&kube_access(false)),
            None,
        )
        .unwrap();
        assert!(matches!(&access, Access::Template(t) if t == "http://{name}.{namespace}:8265/"));
        assert_eq!(
            access.describe(),
            "http://{name}.{namespace}:8265/api/jobs/"
        );
        assert_eq!(reason, "--dashboard-url-template is set");

        let (access, _) = Access::choose(&config(&[]), None, None).unwrap();
        assert!(matches!(access, Access::ClusterDns));
        assert_eq!(
            access.describe(),
            "http://{name}-head-svc.{namespace}.svc.cluster.local:8265/api/jobs/"
        );
        assert_eq!(config(&[]).dashboard_timeout, Duration::from_secs(2));
    }

    #[tokio::test]
    async fn local_clusters_name_their_dashboard_unless_the_template_is_set() {
        let dir = tempfile::tempdir().unwrap();
        let store = kube_embedded::EmbeddedKube::open(dir.path()).unwrap();
        let template = config(&["--dashboard-url-template", "http://127.0.0.1:8265"]);
        let (access, _) = Access::choose(&template, None, Some(store.client())).unwrap();
        assert!(matches!(access, Access::Template(_)));
        let (access, reason) = Access::choose(&config(&[]), None, Some(store.client())).unwrap();
        assert!(matches!(access, Access::LocalStatus(_)));
        assert!(reason.contains("local Ray runtime"), "{reason}");
    }

    #[test]
    fn submission_ids_are_one_path_segment() {
        assert_eq!(segment("raysubmit_AbC-1.2~"), "raysubmit_AbC-1.2~");
        assert_eq!(segment("a/b?c d"), "a%2Fb%3Fc%20d");
    }
}
