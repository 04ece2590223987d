//! The V2 API: a Kubernetes-style proxy for `ray.io/v1` on the HTTP port (Go `apiserversdk`).
//!
//! Requests are forwarded through the server's [`kube::Client`], which applies the cluster URL
//! and credentials (on the embedded backend it serves the embedded store in-process). On the way:
//! compute templates are injected into created and replaced RayClusters, RayJobs and RayServices
//! ([`template`]), event lists are restricted to `ray.io/v1` objects ([`events`]), and the
//! Kubernetes service proxy is only open to KubeRay's Services ([`service_proxy`]).
//!
//! Retryable answers (408, 429, 500, 502, 503, 504) are retried up to three times with
//! exponential backoff, replaying the buffered request body. Every other answer is streamed back
//! as it arrives.
//!
//! Every request except watches (`watch` query parameter true, or a `/watch/` path) has a
//! deadline, `--v2-timeout` (default 60 s, kube-apiserver's own `--request-timeout`), covering
//! template lookups, every attempt and backoff, and the streaming of the answer: past it the
//! request answers 504 with a Kubernetes `Status` (or, once the answer has begun, is cut). A
//! watch has no deadline and ends when its client goes away: dropping the answer drops the
//! upstream request. A Kubernetes API that cannot be reached answers 503 with a Kubernetes
//! `Status` (reason `ServiceUnavailable`).

pub mod events;
pub mod service_proxy;
pub mod template;

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, HttpBody};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, StatusCode, Uri, header};
use http_body::{Frame, SizeHint};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use kuberay_core::scope::{NamespaceScope, OutOfScope};
use kuberay_core::{compute_template, names, template_injection};

use tracing::Instrument;

use crate::access::Identity;
use crate::auth::Authorizer;
use crate::error::kube_text;
use crate::json_walk;
use crate::services::KubeIo;

/// Kinds whose create (POST) and replace (PUT) go through the compute-template middleware.
const TEMPLATE_KINDS: [&str; 3] = ["rayclusters", "rayjobs", "rayservices"];

/// Statuses that are retried, how often, and the backoff.
const RETRYABLE: [u16; 6] = [408, 429, 500, 502, 503, 504];
const MAX_RETRIES: u32 = 3;
const INITIAL_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// Headers that belong to one connection and are not forwarded, plus the client's own
/// credentials (the server's are used). `Impersonate-*` headers are dropped too
/// ([`strip_client_identity`]).
const NOT_FORWARDED: [&str; 10] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "authorization",
];

/// The V2 API handler. Cheap to clone.
#[derive(Clone)]
pub struct V2 {
    inner: Arc<Inner>,
}

struct Inner {
    client: kube::Client,
    /// Compute templates for injection (from the watch cache when it answers).
    io: KubeIo,
    max_body_bytes: usize,
    timeout: Duration,
    scope: NamespaceScope,
    /// How callers are authorized, when they are.
    access: Option<Authorizer>,
}

/// What a V2 path is.
#[derive(Debug, PartialEq, Eq)]
enum Route {
    /// POST/PUT of a Ray resource: compute-template middleware, then forward.
    Template { namespace: String },
    /// GET of namespaced `events.k8s.io/v1` events: restricted to `ray.io/v1`, then forward.
    Events,
    /// The Kubernetes service proxy: guarded, then forwarded.
    ServiceProxy { namespace: String, service: String },
    /// Anything else under `/apis/ray.io/v1/`: forwarded unchanged.
    Forward,
}

fn decode(segment: &str) -> String {
    percent_encoding::percent_decode_str(segment)
        .decode_utf8_lossy()
        .into_owned()
}

/// Whether `path` is one V2 serves (for any method).
pub(crate) fn serves(path: &str) -> bool {
    route(&Method::GET, path).is_some()
}

fn route(method: &Method, path: &str) -> Option<Route> {
    let segments: Vec<&str> = path.strip_prefix('/')?.split('/').collect();
    match segments.as_slice() {
        ["apis", "ray.io", "v1", rest @ ..] if !rest.is_empty() => Some(match rest {
            ["namespaces", namespace, kind]
                if *method == Method::POST
                    && !namespace.is_empty()
                    && TEMPLATE_KINDS.contains(kind) =>
            {
                Route::Template {
                    namespace: decode(namespace),
                }
            }
            ["namespaces", namespace, kind, name]
                if *method == Method::PUT
                    && !namespace.is_empty()
                    && !name.is_empty()
                    && TEMPLATE_KINDS.contains(kind) =>
            {
                Route::Template {
                    namespace: decode(namespace),
                }
            }
            _ => Route::Forward,
        }),
        [
            "apis",
            "events.k8s.io",
            "v1",
            "namespaces",
            namespace,
            "events",
        ] if matches!(*method, Method::GET | Method::HEAD) && !namespace.is_empty() => {
            Some(Route::Events)
        }
        [
            "api",
            "v1",
            "namespaces",
            namespace,
            "services",
            service,
            "proxy",
            ..,
        ] if !namespace.is_empty() && !service.is_empty() => Some(Route::ServiceProxy {
            namespace: decode(namespace),
            service: decode(service),
        }),
        _ => None,
    }
}

/// The namespace a V2 path names (`.../namespaces/{namespace}/...`, watches included), decoded;
/// `None` for a path across all namespaces (`/apis/ray.io/v1/rayclusters`).
fn namespace_of(path: &str) -> Option<String> {
    let segments: Vec<&str> = path.strip_prefix('/')?.split('/').collect();
    match segments.as_slice() {
        ["apis", _, _, "namespaces", namespace, _, ..]
        | ["apis", _, _, "watch", "namespaces", namespace, _, ..]
        | ["api", _, "namespaces", namespace, _, ..] => Some(decode(namespace)),
        _ => None,
    }
}

/// The object a V2 path names (`.../namespaces/{namespace}/{kind}/{name}[/...]`), decoded; empty
/// for collections.
fn object_name(path: &str) -> String {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match segments.as_slice() {
        ["apis", _, _, "namespaces", _, _, name, ..] | ["api", _, "namespaces", _, _, name, ..] => {
            decode(name)
        }
        _ => String::new(),
    }
}

/// Whether a V2 path is inside the server's namespace scope (`--namespace`).
fn check_scope(scope: &NamespaceScope, path: &str) -> Result<(), OutOfScope> {
    if scope.served().is_none() {
        return Ok(());
    }
    match namespace_of(path) {
        Some(namespace) => scope.check(&namespace),
        None => scope.check_all(),
    }
}

/// A plain-text error like Go's `http.Error`.
fn plain_error(status: StatusCode, text: &str) -> Response {
    let mut response = (status, format!("{text}\n")).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

fn strip_connection_headers(headers: &mut HeaderMap) {
    // Headers named by `Connection` are hop-by-hop too.
    let named: Vec<String> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(',').map(|h| h.trim().to_ascii_lowercase()))
        .filter(|h| !h.is_empty())
        .collect();
    for name in named.iter().map(String::as_str).chain(NOT_FORWARDED) {
        headers.remove(name);
    }
}

/// Drops what would make Kubernetes act as someone else than the server: the client's
/// `Authorization` (also in [`NOT_FORWARDED`]) and every `Impersonate-*` header
/// (`Impersonate-User`, `-Group`, `-Uid`, `-Extra-*`), which the server's credentials could
/// otherwise be allowed to honour.
fn strip_client_identity(headers: &mut HeaderMap) {
    headers.remove(header::AUTHORIZATION);
    let impersonation: Vec<http::HeaderName> = headers
        .keys()
        .filter(|name| name.as_str().starts_with("impersonate-"))
        .cloned()
        .collect();
    for name in impersonation {
        headers.remove(name);
    }
}

/// Whether a request is a watch, which has no deadline: a `watch` query parameter that
/// Kubernetes reads as true (anything but `0` or `false`), or a `/watch/` path.
fn is_watch(uri: &Uri) -> bool {
    let segments: Vec<&str> = uri.path().split('/').collect();
    let watch_path = matches!(
        segments.as_slice(),
        ["", "apis", _, _, "watch", ..] | ["", "api", _, "watch", ..]
    );
    let watch_query = uri.query().is_some_and(|query| {
        form_urlencoded::parse(query.as_bytes())
            .find(|(key, _)| key == "watch")
            .is_some_and(|(_, value)| value != "0" && !value.eq_ignore_ascii_case("false"))
    });
    watch_path || watch_query
}

/// A Kubernetes `Status` answer, as kube-apiserver writes its own failures.
pub(crate) fn kube_status(status: StatusCode, reason: &str, message: &str) -> Response {
    let body = serde_json::json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": status.as_u16(),
    });
    let mut response = (status, body.to_string()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// 503 `ServiceUnavailable`: the Kubernetes API could not be reached.
fn unavailable(error: &impl std::fmt::Display) -> Response {
    kube_status(
        StatusCode::SERVICE_UNAVAILABLE,
        "ServiceUnavailable",
        &format!("the Kubernetes API cannot be reached: {error}"),
    )
}

/// 504 `Timeout`: the request did not complete within `--v2-timeout`.
fn timed_out(timeout: Duration) -> Response {
    kube_status(
        StatusCode::GATEWAY_TIMEOUT,
        "Timeout",
        &format!(
            "Timeout: request did not complete within {}s",
            timeout.as_secs_f64()
        ),
    )
}

/// Whether a client error means that the Kubernetes API did not answer at all.
fn is_unreachable(error: &kube::Error) -> bool {
    matches!(error, kube::Error::HyperError(_) | kube::Error::Service(_))
}

/// The wait before retry number `attempt + 1`: 500 ms · 2^attempt, at most 10 s.
fn backoff(attempt: u32) -> Duration {
    INITIAL_BACKOFF
        .saturating_mul(2u32.saturating_pow(attempt))
        .min(MAX_BACKOFF)
}

impl V2 {
    /// `timeout` is the deadline of every request except watches.
    /// `scope` refuses requests for namespaces the server does not serve; `access` authorizes
    /// callers (the policy decides before forwarding; with `--kubernetes-auth` the caller is
    /// impersonated and Kubernetes decides).
    pub fn new(
        client: kube::Client,
        io: KubeIo,
        max_body_bytes: usize,
        timeout: Duration,
        scope: NamespaceScope,
        access: Option<Authorizer>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                client,
                io,
                max_body_bytes,
                timeout,
                scope,
                access,
            }),
        }
    }

    /// Serves a V2 request; a request that is not for the V2 API is handed back.
    pub async fn handle(&self, request: Request<Body>) -> Result<Response, Request<Body>> {
        let Some(route) = route(request.method(), request.uri().path()) else {
            return Err(request);
        };
        let path = request.uri().path();
        let span = tracing::info_span!(
            "v2",
            namespace = namespace_of(path).as_deref().unwrap_or(""),
            object = object_name(path),
        );
        Ok(self.handle_route(route, request).instrument(span).await)
    }

    async fn handle_route(&self, route: Route, request: Request<Body>) -> Response {
        if let Err(refused) = check_scope(&self.inner.scope, request.uri().path()) {
            return kube_status(StatusCode::FORBIDDEN, "Forbidden", &refused.to_string());
        }
        match self.refusal(&request) {
            None => self.serve(route, request).await,
            Some(refused) => refused,
        }
    }

    /// With an access policy, the answer to a request the caller may not make (with
    /// `--kubernetes-auth` Kubernetes decides, as the caller).
    fn refusal(&self, request: &Request<Body>) -> Option<Response> {
        let Some(Authorizer::Policy(policy)) = &self.inner.access else {
            return None;
        };
        let Some(identity) = request.extensions().get::<Arc<Identity>>() else {
            return Some(kube_status(
                StatusCode::UNAUTHORIZED,
                "Unauthorized",
                crate::auth::REFUSED,
            ));
        };
        policy
            .authorize_v2(
                identity,
                request.method(),
                namespace_of(request.uri().path()).as_deref(),
            )
            .err()
            .map(|refused| kube_status(StatusCode::FORBIDDEN, "Forbidden", &refused.message()))
    }

    async fn serve(&self, route: Route, request: Request<Body>) -> Response {
        if is_watch(request.uri()) {
            return self.exchange(route, request, None).await;
        }
        let timeout = self.inner.timeout;
        let deadline = tokio::time::Instant::now() + timeout;
        match tokio::time::timeout_at(deadline, self.exchange(route, request, Some(deadline))).await
        {
            Ok(response) => response,
            Err(_) => timed_out(timeout),
        }
    }

    /// Reads, rewrites and forwards one request; `deadline` also bounds the answer's body.
    async fn exchange(
        &self,
        route: Route,
        request: Request<Body>,
        deadline: Option<tokio::time::Instant>,
    ) -> Response {
        let (parts, body) = request.into_parts();
        let mut body = match self.read_body(body).await {
            Ok(body) => body,
            Err(response) => return response,
        };
        let mut headers = parts.headers;
        strip_connection_headers(&mut headers);
        strip_client_identity(&mut headers);
        // With --kubernetes-auth, Kubernetes acts as the caller and applies its own RBAC.
        if let Some(Authorizer::Kubernetes(_)) = &self.inner.access
            && let Some(identity) = parts.extensions.get::<Arc<Identity>>()
        {
            for (name, value) in crate::access::impersonation(identity) {
                headers.append(name, value);
            }
        }
        let path = parts.uri.path();
        let mut target = parts
            .uri
            .path_and_query()
            .map_or(path, |pq| pq.as_str())
            .to_string();

        match route {
            Route::Template { namespace } => {
                match self.inject_templates(&namespace, &headers, &body).await {
                    Ok(Some(rewritten)) => {
                        body = rewritten;
                        headers.insert(
                            header::CONTENT_TYPE,
                            HeaderValue::from_static("application/json"),
                        );
                    }
                    Ok(None) => {}
                    Err(response) => return response,
                }
            }
            Route::Events => {
                target = format!("{path}?{}", events::restrict_query(parts.uri.query()));
            }
            Route::ServiceProxy { namespace, service } => {
                if let Err(refusal) =
                    service_proxy::check(&self.inner.client, &namespace, &service).await
                {
                    return match refusal {
                        service_proxy::Refusal::Unreachable(error) => unavailable(&error),
                        service_proxy::Refusal::Text(status, text) => plain_error(status, &text),
                    };
                }
            }
            Route::Forward => {}
        }

        headers.remove(header::CONTENT_LENGTH);
        if !body.is_empty() {
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
        }
        self.forward(parts.method, &target, headers, body, deadline)
            .await
    }

    /// The whole request body, or the answer for one too large or unreadable.
    async fn read_body(&self, body: Body) -> Result<Bytes, Response> {
        match Limited::new(body, self.inner.max_body_bytes)
            .collect()
            .await
        {
            Ok(collected) => Ok(collected.to_bytes()),
            Err(error) if error.downcast_ref::<LengthLimitError>().is_some() => Err(plain_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!(
                    "request body larger than {} bytes",
                    self.inner.max_body_bytes
                ),
            )),
            Err(_) => Err(plain_error(
                StatusCode::BAD_REQUEST,
                "Failed to read request body",
            )),
        }
    }

    /// Applies the compute templates a body names; `None` forwards the original body.
    async fn inject_templates(
        &self,
        namespace: &str,
        headers: &HeaderMap,
        body: &Bytes,
    ) -> Result<Option<Bytes>, Response> {
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        // A JSON body of tiny values would take ten times its size once decoded: bounded by
        // the body limit, as V1 bodies are. (Repeated members are Kubernetes' to judge.)
        if content_type.contains("application/json")
            && let Err(refused @ json_walk::Refused::TooManyValues { .. }) =
                json_walk::check(body, json_walk::max_values(self.inner.max_body_bytes))
        {
            return Err(plain_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                &refused.to_string(),
            ));
        }
        let mut value = template::decode(content_type, body)
            .map_err(|text| plain_error(StatusCode::BAD_REQUEST, text))?;
        // A namespace that is not a valid name has no templates: the request goes on unchanged
        // and Kubernetes answers it.
        if !template_injection::applies(&value) || names::check_namespace(namespace).is_err() {
            return Ok(None);
        }
        let mut templates = BTreeMap::new();
        for name in template_injection::template_names(&value) {
            if templates.contains_key(&name) {
                continue;
            }
            if let Err(error) = names::check_object_name("compute template name", &name) {
                return Err(plain_error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    &format!(
                        "Cannot get compute template for name {} in namespace '{namespace}', error: {error}",
                        names::quote_bounded(&name)
                    ),
                ));
            }
            let config_map = self.inner.io.config_map(namespace, &name).await.map_err(|error| {
                if is_unreachable(&error) {
                    return unavailable(&error);
                }
                plain_error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    &format!(
                        "Cannot get compute template for name '{name}' in namespace '{namespace}', error: {}",
                        kube_text(&error)
                    ),
                )
            })?;
            templates.insert(name, compute_template::from_config_map(&config_map));
        }
        template_injection::apply(&mut value, &templates);
        serde_json::to_vec(&value)
            .map(|bytes| Some(Bytes::from(bytes)))
            .map_err(|_| {
                plain_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Failed to process request",
                )
            })
    }

    /// Sends the request, retrying retryable statuses while the deadline allows, and streams the
    /// answer back (cut at the deadline).
    async fn forward(
        &self,
        method: Method,
        target: &str,
        headers: HeaderMap,
        body: Bytes,
        deadline: Option<tokio::time::Instant>,
    ) -> Response {
        let mut attempt = 0;
        loop {
            let mut request = match Request::builder()
                .method(method.clone())
                .uri(target)
                .body(kube::client::Body::from(body.clone()))
            {
                Ok(request) => request,
                Err(error) => {
                    return plain_error(StatusCode::BAD_REQUEST, &error.to_string());
                }
            };
            *request.headers_mut() = headers.clone();
            let response = match self.inner.client.send(request).await {
                Ok(response) => response,
                Err(error) => {
                    tracing::warn!("V2 proxy: {method} {target}: {error}");
                    return unavailable(&error);
                }
            };
            let status = response.status();
            let wait = backoff(attempt);
            let time_left =
                deadline.is_none_or(|deadline| tokio::time::Instant::now() + wait < deadline);
            if RETRYABLE.contains(&status.as_u16()) && attempt < MAX_RETRIES && time_left {
                drop(response);
                tracing::debug!(
                    "V2 proxy: {method} {target} answered {status}; retrying in {wait:?}"
                );
                tokio::time::sleep(wait).await;
                attempt += 1;
                continue;
            }
            let (mut parts, body) = response.into_parts();
            strip_connection_headers(&mut parts.headers);
            let body = Body::new(body);
            return match deadline {
                Some(deadline) => Response::from_parts(
                    parts,
                    Body::new(Deadline {
                        inner: body,
                        sleep: Box::pin(tokio::time::sleep_until(deadline)),
                    }),
                ),
                None => Response::from_parts(parts, body),
            };
        }
    }
}

/// An answer body cut (with an error, so the client sees it incomplete) at the deadline.
struct Deadline {
    inner: Body,
    sleep: Pin<Box<tokio::time::Sleep>>,
}

impl HttpBody for Deadline {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame);
        }
        match self.sleep.as_mut().poll(cx) {
            Poll::Ready(()) => {
                Poll::Ready(Some(Err(axum::Error::new("V2 request deadline exceeded"))))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watches_are_recognised() {
        let watch = |uri: &str| is_watch(&uri.parse().unwrap());
        assert!(watch("/apis/ray.io/v1/rayclusters?watch=true"));
        assert!(watch(
            "/apis/ray.io/v1/namespaces/ns/rayclusters?limit=5&watch=1"
        ));
        assert!(watch("/apis/ray.io/v1/rayclusters?watch=True"));
        assert!(watch("/apis/ray.io/v1/watch/namespaces/ns/rayclusters"));
        assert!(watch(
            "/apis/events.k8s.io/v1/namespaces/ns/events?watch=true"
        ));
        assert!(!watch("/apis/ray.io/v1/rayclusters?watch=false"));
        assert!(!watch("/apis/ray.io/v1/rayclusters?watch=0"));
        assert!(!watch("/apis/ray.io/v1/rayclusters"));
        assert!(!watch("/apis/ray.io/v1/namespaces/ns/rayclusters/watch"));
        assert!(!watch("/apis/ray.io/v1/rayclusters?resourceVersion=watch"));
    }

    #[test]
    fn client_identity_is_not_forwarded() {
        let mut headers = HeaderMap::new();
        for name in [
            "authorization",
            "impersonate-user",
            "Impersonate-Group",
            "impersonate-uid",
            "impersonate-extra-scopes",
            "accept",
        ] {
            headers.append(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_static("x"),
            );
        }
        headers.append("impersonate-group", HeaderValue::from_static("y"));
        strip_client_identity(&mut headers);
        let left: Vec<&str> = headers.keys().map(|name| name.as_str()).collect();
        assert_eq!(left, ["accept"]);
    }

    #[test]
    fn paths_name_their_namespace() {
        assert_eq!(
            object_name("/apis/ray.io/v1/namespaces/ns/rayclusters/c/status"),
            "c"
        );
        assert_eq!(
            object_name("/api/v1/namespaces/ns/services/s:8265/proxy/"),
            "s:8265"
        );
        assert_eq!(object_name("/apis/ray.io/v1/namespaces/ns/rayclusters"), "");
        assert_eq!(object_name("/apis/ray.io/v1/rayclusters"), "");
        for (path, namespace) in [
            ("/apis/ray.io/v1/namespaces/ns/rayclusters", Some("ns")),
            (
                "/apis/ray.io/v1/namespaces/ns/rayclusters/c/status",
                Some("ns"),
            ),
            ("/apis/ray.io/v1/watch/namespaces/ns/rayjobs", Some("ns")),
            ("/apis/ray.io/v1/namespaces/n%73/rayclusters", Some("ns")),
            ("/apis/events.k8s.io/v1/namespaces/ns/events", Some("ns")),
            ("/api/v1/namespaces/ns/services/s:8265/proxy/", Some("ns")),
            ("/apis/ray.io/v1/rayclusters", None),
            ("/apis/ray.io/v1/watch/rayclusters", None),
            ("/apis/ray.io/v1/namespaces", None),
            ("/apis/ray.io/v1/namespaces/ns", None),
        ] {
            assert_eq!(namespace_of(path).as_deref(), namespace, "{path}");
        }
        let scope = NamespaceScope::only("ns");
        assert!(check_scope(&scope, "/apis/ray.io/v1/namespaces/ns/rayclusters").is_ok());
        assert!(check_scope(&scope, "/apis/ray.io/v1/namespaces/other/rayclusters").is_err());
        assert!(check_scope(&scope, "/apis/ray.io/v1/rayclusters").is_err());
        assert!(check_scope(&NamespaceScope::all(), "/apis/ray.io/v1/rayclusters").is_ok());
    }

    #[test]
    fn routes_are_recognised() {
        let template = |ns: &str| {
            Some(Route::Template {
                namespace: ns.into(),
            })
        };
        assert_eq!(
            route(&Method::POST, "/apis/ray.io/v1/namespaces/ns/rayclusters"),
            template("ns")
        );
        assert_eq!(
            route(&Method::PUT, "/apis/ray.io/v1/namespaces/ns/rayjobs/x"),
            template("ns")
        );
        assert_eq!(
            route(&Method::POST, "/apis/ray.io/v1/namespaces/ns/rayservices"),
            template("ns")
        );
        assert_eq!(
            route(&Method::PUT, "/apis/ray.io/v1/namespaces/ns/rayclusters"),
            Some(Route::Forward)
        );
        assert_eq!(
            route(&Method::POST, "/apis/ray.io/v1/namespaces/ns/raycronjobs"),
            Some(Route::Forward)
        );
        assert_eq!(
            route(
                &Method::PUT,
                "/apis/ray.io/v1/namespaces/ns/rayclusters/x/status"
            ),
            Some(Route::Forward)
        );
        assert_eq!(
            route(&Method::GET, "/apis/ray.io/v1/"),
            Some(Route::Forward)
        );
        assert_eq!(route(&Method::GET, "/apis/ray.io/v1"), None);
        assert_eq!(
            route(&Method::GET, "/apis/events.k8s.io/v1/namespaces/ns/events"),
            Some(Route::Events)
        );
        assert_eq!(
            route(&Method::POST, "/apis/events.k8s.io/v1/namespaces/ns/events"),
            None
        );
        assert_eq!(route(&Method::GET, "/api/v1/namespaces/ns/events"), None);
        let proxy = Some(Route::ServiceProxy {
            namespace: "ns".into(),
            service: "http:svc:80".into(),
        });
        assert_eq!(
            route(
                &Method::POST,
                "/api/v1/namespaces/ns/services/http:svc:80/proxy"
            ),
            proxy
        );
        assert_eq!(
            route(
                &Method::GET,
                "/api/v1/namespaces/ns/services/http%3Asvc%3A80/proxy/a/b"
            ),
            proxy
        );
        assert_eq!(
            route(&Method::GET, "/api/v1/namespaces/ns/services/svc"),
            None
        );
        assert_eq!(route(&Method::GET, "/apis/v1/namespaces/ns/clusters"), None);
    }

    #[test]
    fn backoff_doubles_up_to_the_maximum() {
        assert_eq!(backoff(0), Duration::from_millis(500));
        assert_eq!(backoff(1), Duration::from_secs(1));
        assert_eq!(backoff(2), Duration::from_secs(2));
        assert_eq!(backoff(10), MAX_BACKOFF);
        assert_eq!(backoff(40), MAX_BACKOFF);
    }
}
