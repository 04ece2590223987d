//! The HTTP listener: the V1 gateway, the V2 proxy (when enabled), plus `/healthz`, `/readyz`,
//! `/metrics`, `/swagger/` and `/swagger-ui/`.

mod cors;
mod gateway;

pub use gateway::Gateway;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, any, get};
use http::{HeaderValue, Method, StatusCode, header};
use tonic::Code;
use tower_http::catch_panic::CatchPanicLayer;

use crate::auth::Authenticator;
use crate::error::error_response;
use crate::readiness::Readiness;
use crate::v2::V2;
use prometheus_client::registry::Registry;

/// What the HTTP side needs besides the gateway.
#[derive(Clone)]
pub struct HttpState {
    /// What `/metrics` exposes.
    pub registry: Arc<Registry>,
    /// Set once shutdown has begun; `/healthz` and `/readyz` then answer 503.
    pub shutting_down: Arc<AtomicBool>,
    /// Whether the Kubernetes API answers, for `/readyz`.
    pub readiness: Arc<Readiness>,
    /// Directory that overrides the built-in Swagger documents.
    pub local_swagger_path: Option<PathBuf>,
    /// API calls must present a token: the Swagger documents say so, so that Swagger UI offers
    /// to send one.
    pub token_required: bool,
}

/// Assembles the HTTP router. With `v2`, V2 paths are served by the proxy before the V1 gateway
/// sees the request; both share the CORS handling, and neither has a router-level timeout.
pub fn router(
    state: HttpState,
    gateway: Gateway,
    v2: Option<V2>,
    cors_allow_origin: Option<&str>,
    auth: Option<Authenticator>,
    protect_metrics: bool,
) -> Router {
    let metrics_route = with_credentials(any(metrics), auth.clone().filter(|_| protect_metrics));
    // Changing what is logged needs a credential whenever calls do.
    let log_level_route = with_credentials(get(log_level).put(set_log_level), auth.clone());
    let api = api_router(gateway, v2, cors_allow_origin, auth);
    Router::new()
        .route("/healthz", any(healthz))
        .route("/readyz", any(readyz))
        .route("/metrics", metrics_route)
        .route("/debug/log-level", log_level_route)
        .merge(swagger_routes())
        .with_state(state)
        .merge(api)
        .layer(middleware::from_fn(canonical_paths))
        .layer(CatchPanicLayer::custom(|_| {
            error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                Code::Internal,
                "Internal Server Error",
            )
        }))
}

/// `route`, asking for a credential when `auth` is given (on a V1 path's terms).
fn with_credentials(
    route: MethodRouter<HttpState>,
    auth: Option<Authenticator>,
) -> MethodRouter<HttpState> {
    match auth {
        Some(auth) => route.layer(middleware::from_fn_with_state((auth, false), authenticate)),
        None => route,
    }
}

/// The API calls: V2 paths to the proxy (when enabled), everything else to the V1 gateway;
/// authenticated when `auth` is given, with CORS when an origin is allowed.
fn api_router(
    gateway: Gateway,
    v2: Option<V2>,
    cors_allow_origin: Option<&str>,
    auth: Option<Authenticator>,
) -> Router {
    let v2_enabled = v2.is_some();
    let with_token = auth.is_some();
    let mut api = Router::new().fallback(any(move |request: Request| {
        let gateway = gateway.clone();
        let v2 = v2.clone();
        async move {
            let request = match v2 {
                Some(v2) => match v2.handle(request).await {
                    Ok(response) => return response,
                    Err(request) => request,
                },
                None => request,
            };
            gateway.handle(request).await
        }
    }));
    // Inside CORS: a browser's preflight carries no credentials and is answered before this.
    if let Some(auth) = auth {
        api = api.layer(middleware::from_fn_with_state(
            (auth, v2_enabled),
            authenticate,
        ));
    }
    if let Some(origin) = cors_allow_origin.filter(|o| !o.is_empty()) {
        api = api.layer(middleware::from_fn_with_state(
            (cors::AllowedOrigin::parse(origin), with_token),
            cors::cors,
        ));
    }
    api
}

/// `/swagger/` (the API documents) and `/swagger-ui/` (Swagger UI showing them).
fn swagger_routes() -> Router<HttpState> {
    let swagger_ui = Arc::new(utoipa_swagger_ui::Config::new(
        std::iter::once("/swagger/kuberay_api.swagger.json".to_string()).chain(
            kuberay_api::swagger::FILES
                .iter()
                .filter(|(name, _)| *name != "kuberay_api.swagger.json")
                .map(|(name, _)| format!("/swagger/{name}")),
        ),
    ));
    Router::new()
        .route("/swagger/{*path}", get(swagger_file))
        .route("/swagger-ui", any(|| async { redirect("/swagger-ui/") }))
        .route(
            "/swagger-ui/",
            get({
                let config = swagger_ui.clone();
                move || swagger_ui_file(String::new(), config)
            }),
        )
        .route(
            "/swagger-ui/{*tail}",
            get(move |Path(tail): Path<String>| swagger_ui_file(tail, swagger_ui.clone())),
        )
}

/// Authenticates an API call, passing the caller on in the request's extensions, or refuses it:
/// 401 (503 when the caller cannot be reviewed), in the V1 gateway's shape or, on a V2 path, as
/// kube-apiserver refuses a call.
async fn authenticate(
    State((auth, v2_enabled)): State<(Authenticator, bool)>,
    mut request: Request,
    next: Next,
) -> Response {
    if !auth.protects(request.uri().path()) {
        return next.run(request).await;
    }
    match auth
        .check(
            request.headers().get(header::AUTHORIZATION),
            request.extensions().get(),
        )
        .await
    {
        Ok(identity) => {
            if let Some(identity) = identity {
                request.extensions_mut().insert(identity);
            }
            next.run(request).await
        }
        Err(error) => {
            let status = crate::error::http_status(error.code());
            if v2_enabled && crate::v2::serves(request.uri().path()) {
                let reason = if error.code() == Code::Unauthenticated {
                    "Unauthorized"
                } else {
                    "ServiceUnavailable"
                };
                crate::v2::kube_status(status, reason, &error.message())
            } else {
                error_response(status, error.code(), &error.message())
            }
        }
    }
}

/// `GET /debug/log-level`: the log filter in force (`RUST_LOG` syntax).
async fn log_level() -> Response {
    match crate::logging::filter() {
        Some(filter) => plain(StatusCode::OK, format!("{filter}\n")),
        None => plain(
            StatusCode::NOT_FOUND,
            "this process did not install the logger\n".into(),
        ),
    }
}

/// `PUT /debug/log-level` with a filter in `RUST_LOG` syntax as the body (`debug`,
/// `info,kuberay_apiserver=debug`): replaces the log filter until the next change or restart.
async fn set_log_level(body: String) -> Response {
    match crate::logging::set_filter(&body) {
        Ok(filter) => plain(StatusCode::OK, format!("{filter}\n")),
        Err(reason) => plain(StatusCode::BAD_REQUEST, format!("{reason}\n")),
    }
}

fn plain(status: StatusCode, text: String) -> Response {
    let mut response = (status, text).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

async fn healthz(State(state): State<HttpState>) -> Response {
    if state.shutting_down.load(Ordering::SeqCst) {
        StatusCode::SERVICE_UNAVAILABLE.into_response()
    } else {
        StatusCode::OK.into_response()
    }
}

/// 200 `ok` while the Kubernetes API (or the embedded store) answers; 503 with the reason when it
/// cannot be reached or shutdown has begun. `/healthz` stays the liveness answer: a backend
/// outage must not make Kubernetes restart every replica.
async fn readyz(State(state): State<HttpState>) -> Response {
    let outcome = if state.shutting_down.load(Ordering::SeqCst) {
        Err("shutting down".to_string())
    } else {
        state.readiness.check().await
    };
    let (status, text) = match outcome {
        Ok(()) => (StatusCode::OK, "ok\n".to_string()),
        Err(reason) => (StatusCode::SERVICE_UNAVAILABLE, format!("{reason}\n")),
    };
    let mut response = (status, text).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// The answer to a request whose body did not arrive within the call deadline (see
/// [`crate::listen::body_deadline`]): 408 with the gateway's error body; the connection closes.
pub fn body_timeout(timeout: Duration) -> Response {
    let mut response = error_response(
        StatusCode::REQUEST_TIMEOUT,
        Code::DeadlineExceeded,
        &format!(
            "request body not received within {}s",
            timeout.as_secs_f64()
        ),
    );
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

async fn metrics(State(state): State<HttpState>) -> Response {
    let mut response = crate::metrics::render(&state.registry).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    response
}

fn not_found_text() -> Response {
    (StatusCode::NOT_FOUND, "404 page not found\n").into_response()
}

async fn swagger_file(State(state): State<HttpState>, Path(path): Path<String>) -> Response {
    if !path.ends_with("swagger.json") {
        return not_found_text();
    }
    let body = match &state.local_swagger_path {
        Some(dir) => {
            if path.split('/').any(|part| part == ".." || part.is_empty()) {
                return not_found_text();
            }
            match tokio::fs::read(dir.join(&path)).await {
                Ok(bytes) => bytes,
                Err(_) => return not_found_text(),
            }
        }
        None => match kuberay_api::swagger::FILES
            .iter()
            .find(|(name, _)| *name == path)
        {
            Some((_, text)) => text.as_bytes().to_vec(),
            None => return not_found_text(),
        },
    };
    let body = if state.token_required {
        with_token_security(body)
    } else {
        body
    };
    let mut response = body.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// A Swagger 2.0 document that declares the token in `Authorization` for every operation (Swagger
/// UI then shows "Authorize"); a document that is not a JSON object is left as it is.
fn with_token_security(document: Vec<u8>) -> Vec<u8> {
    let Ok(serde_json::Value::Object(mut object)) = serde_json::from_slice(&document) else {
        return document;
    };
    object.insert(
        "securityDefinitions".into(),
        serde_json::json!({"token": {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "The server's token (--auth-token), as it is or as `Bearer <token>`; with --kubernetes-auth, `Bearer <a Kubernetes token>`.",
        }}),
    );
    object.insert("security".into(), serde_json::json!([{"token": []}]));
    serde_json::to_vec(&object).unwrap_or(document)
}

async fn swagger_ui_file(
    tail: String,
    config: Arc<utoipa_swagger_ui::Config<'static>>,
) -> Response {
    match utoipa_swagger_ui::serve(&tail, config) {
        Ok(Some(file)) => {
            let mut response = file.bytes.into_owned().into_response();
            if let Ok(value) = HeaderValue::from_str(&file.content_type) {
                response.headers_mut().insert(header::CONTENT_TYPE, value);
            }
            if file.gzpipped {
                response
                    .headers_mut()
                    .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            }
            response
        }
        Ok(None) => not_found_text(),
        Err(error) => (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()).into_response(),
    }
}

/// 307, as Go 1.26's ServeMux answers both its redirects (clean paths and the subtree's
/// trailing slash): unlike 301, clients keep the method and body when they follow it.
fn redirect(location: &str) -> Response {
    let mut response = StatusCode::TEMPORARY_REDIRECT.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// Like Go's ServeMux: a path with `//`, `.` or `..` segments is redirected (307, keeping the
/// query) to its clean form before any routing.
async fn canonical_paths(request: Request, next: Next) -> Response {
    let path = request.uri().path();
    let clean = clean_path(path);
    if clean != path {
        let location = match request.uri().query() {
            Some(query) => format!("{clean}?{query}"),
            None => clean,
        };
        let mut response = redirect(&location);
        if matches!(*request.method(), Method::GET | Method::HEAD) {
            *response.body_mut() = Body::from(format!(
                "<a href=\"{}\">Temporary Redirect</a>.\n\n",
                html_escape(&location)
            ));
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
        }
        return response;
    }
    next.run(request).await
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&#34;")
}

/// Collapses repeated slashes and resolves `.` and `..`, keeping a trailing slash.
fn clean_path(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    let mut clean = format!("/{}", parts.join("/"));
    let trailing = path.ends_with('/') || path.ends_with("/.") || path.ends_with("/..");
    if trailing && clean != "/" {
        clean.push('/');
    }
    clean
}

#[cfg(test)]
mod tests {
    use super::clean_path;

    #[test]
    fn paths_are_cleaned_like_go() {
        assert_eq!(
            clean_path("/apis/v1/namespaces//clusters"),
            "/apis/v1/namespaces/clusters"
        );
        assert_eq!(clean_path("/a/./b/../c"), "/a/c");
        assert_eq!(clean_path("/a/b/"), "/a/b/");
        assert_eq!(clean_path("/"), "/");
        assert_eq!(clean_path("/healthz"), "/healthz");
    }
}
