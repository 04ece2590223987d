//! HTTP layer: URL routing, request decoding, responses.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::discovery;
use crate::patch;
use crate::proxy;
use crate::resources::{self, ResourceDef};
use crate::selectors::{FieldSelector, LabelSelector};
use crate::status::StatusError;
use crate::store::{Deleted, ListOptions, Store, Target, str_at};
use crate::watch;

pub type Shared = Arc<Store>;

#[derive(Clone)]
pub struct App {
    store: Shared,
    /// Largest request body; larger ones are answered 413.
    max_body_bytes: usize,
    /// Reaches the upstreams of the Service proxy.
    upstream: proxy::UpstreamClient,
}

pub fn router(store: Shared, max_body_bytes: usize) -> axum::Router {
    axum::Router::new().fallback(handle).with_state(App {
        store,
        max_body_bytes,
        upstream: proxy::client(),
    })
}

/// Reads the request body, up to `limit` bytes (413 `RequestEntityTooLarge` beyond, like the
/// kube-apiserver).
pub(crate) async fn read_body(body: axum::body::Body, limit: usize) -> Result<Bytes, StatusError> {
    use http_body_util::BodyExt;
    match http_body_util::Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(StatusError::too_large(limit)),
        Err(e) => Err(StatusError::bad_request(format!(
            "the body of the request could not be read: {e}"
        ))),
    }
}

pub fn json_response(code: StatusCode, v: &Value) -> Response {
    let body = serde_json::to_vec(v).unwrap_or_default();
    (code, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

impl IntoResponse for StatusError {
    fn into_response(self) -> Response {
        let code = StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        json_response(code, &self.to_json())
    }
}

/// What a resource URL addresses.
pub struct ResourcePath {
    pub def: &'static ResourceDef,
    /// Namespace from the path (`None` for all namespaces / cluster-scoped).
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub subresource: Option<String>,
}

fn decode_segment(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// Parses `/api/v1/...` and `/apis/{g}/{v}/...` resource paths.
fn parse_resource_path(segs: &[String]) -> Option<ResourcePath> {
    let (group, version, rest) = match segs {
        [api, v, rest @ ..] if api == "api" => ("", v.as_str(), rest),
        [apis, g, v, rest @ ..] if apis == "apis" => (g.as_str(), v.as_str(), rest),
        _ => return None,
    };
    if rest.is_empty() {
        return None;
    }
    // /namespaces/{ns}/{plural}[/{name}[/{sub}]]
    if rest.len() >= 3
        && rest[0] == "namespaces"
        && let Some(def) = resources::find(group, version, &rest[2])
        && def.namespaced
    {
        if rest.len() > 5 {
            return None;
        }
        return Some(ResourcePath {
            def,
            namespace: Some(rest[1].clone()),
            name: rest.get(3).cloned(),
            subresource: rest.get(4).cloned(),
        });
    }
    // /{plural}[/{name}[/{sub}]]
    let def = resources::find(group, version, &rest[0])?;
    if rest.len() > 3 || (def.namespaced && rest.len() > 1) {
        return None;
    }
    Some(ResourcePath {
        def,
        namespace: None,
        name: rest.get(1).cloned(),
        subresource: rest.get(2).cloned(),
    })
}

/// The query parameters (`application/x-www-form-urlencoded`); the last of repeated keys wins.
pub fn parse_query(uri: &Uri) -> HashMap<String, String> {
    form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

/// Runs blocking storage work off the async runtime.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StatusError> + Send + 'static,
) -> Result<T, StatusError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StatusError::internal(format!("storage task failed: {e}")))?
}

/// Decodes a POST/PUT body: JSON, or protobuf for the few kinds kubectl sends that way.
fn decode_body(def: &ResourceDef, headers: &HeaderMap, body: &Bytes) -> Result<Value, StatusError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match mime.as_str() {
        "" | "application/json" | "*/*" => parse_body(body),
        "application/vnd.kubernetes.protobuf" if def.group.is_empty() => {
            crate::protobuf::decode(def.kind, body).map_err(|e| StatusError {
                code: 415,
                reason: "UnsupportedMediaType",
                message: format!("the body of the request could not be decoded as protobuf: {e}"),
                details: None,
                list_meta: None,
            })
        }
        _ => Err(StatusError {
            code: 415,
            reason: "UnsupportedMediaType",
            message: format!(
                "the body of the request was in an unknown format - accepted media types include: application/json (got {ct:?})"
            ),
            details: None,
            list_meta: None,
        }),
    }
}

/// DeleteOptions: JSON; a protobuf body (preconditions ignored) counts as empty options.
fn decode_delete_options(headers: &HeaderMap, body: &Bytes) -> Result<Value, StatusError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if ct.starts_with("application/vnd.kubernetes.protobuf") {
        return Ok(json!({}));
    }
    parse_body(body)
}

fn parse_body(body: &Bytes) -> Result<Value, StatusError> {
    serde_json::from_slice(body).map_err(|e| {
        StatusError::bad_request(format!(
            "the body of the request could not be decoded as JSON: {e}"
        ))
    })
}

async fn handle(
    State(app): State<App>,
    method: Method,
    uri: Uri,
    OriginalUri(original_uri): OriginalUri,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    // The Service proxy takes the rest of its path as is (any depth, trailing slash kept).
    if let Some(path) = proxy::parse_path(uri.path()) {
        let req = proxy::ProxyRequest {
            method,
            uri: uri.clone(),
            original_uri,
            headers,
        };
        return proxy::serve(
            app.store,
            &app.upstream,
            app.max_body_bytes,
            path,
            req,
            body,
        )
        .await;
    }
    let store = app.store;
    let segs: Vec<String> = uri
        .path()
        .split('/')
        .filter(|s| !s.is_empty())
        .map(decode_segment)
        .collect();
    if let Some(resp) = discovery::handle(&method, &segs, &headers) {
        return resp;
    }
    let mut query = parse_query(&uri);
    // Deprecated `/api/v1/watch/...` and `/apis/{g}/{v}/watch/...` forms.
    let mut segs = segs;
    let watch_at = if segs.first().map(String::as_str) == Some("api") {
        2
    } else {
        3
    };
    let legacy_watch =
        segs.get(watch_at).map(String::as_str) == Some("watch") && method == Method::GET;
    if legacy_watch {
        segs.remove(watch_at);
        query.insert("watch".into(), "true".into());
    }
    let Some(mut target) = parse_resource_path(&segs) else {
        return StatusError::unknown_path().into_response();
    };
    if legacy_watch && let Some(name) = target.name.take() {
        let sel = match query.get("fieldSelector").filter(|s| !s.is_empty()) {
            Some(s) => format!("{s},metadata.name={name}"),
            None => format!("metadata.name={name}"),
        };
        query.insert("fieldSelector".into(), sel);
    }
    let body = match read_body(body, app.max_body_bytes).await {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    match dispatch(store, method, target, query, headers, body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

fn list_options(
    def: &ResourceDef,
    q: &HashMap<String, String>,
) -> Result<ListOptions, StatusError> {
    let labels = LabelSelector::parse(q.get("labelSelector").map(String::as_str).unwrap_or(""))
        .map_err(StatusError::bad_request)?;
    let fields = FieldSelector::parse(
        q.get("fieldSelector").map(String::as_str).unwrap_or(""),
        def,
    )
    .map_err(StatusError::bad_request)?;
    let limit = match q.get("limit").filter(|s| !s.is_empty()) {
        Some(l) => Some(
            l.parse::<i64>()
                .map_err(|_| StatusError::bad_request(format!("invalid limit {l:?}")))?
                .max(0) as usize,
        ),
        None => None,
    };
    Ok(ListOptions {
        labels,
        fields,
        limit,
        continue_token: q.get("continue").cloned(),
    })
}

fn is_dry_run(q: &HashMap<String, String>) -> Result<bool, StatusError> {
    match q.get("dryRun").map(String::as_str) {
        None | Some("") => Ok(false),
        Some("All") => Ok(true),
        Some(other) => Err(StatusError::bad_request(format!(
            "Invalid dryRun value {other:?}: only \"All\" is supported"
        ))),
    }
}

fn wants_table(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("as=Table"))
}

fn method_not_allowed() -> StatusError {
    StatusError::method_not_allowed(
        "the server does not allow this method on the requested resource",
    )
}

/// Routes a resource request to its handler by verb and by whether it names one object.
async fn dispatch(
    store: Shared,
    method: Method,
    t: ResourcePath,
    q: HashMap<String, String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, StatusError> {
    let def = t.def;
    let dry_run = is_dry_run(&q)?;
    let target = match t.subresource.as_deref() {
        None => Target::Main,
        Some("status") if def.has_status_subresource => Target::Status,
        Some(_) => return Err(StatusError::unknown_path()),
    };
    // Object namespace: "" for cluster-scoped kinds.
    let ns = t.namespace.clone().unwrap_or_default();

    match (&method, &t.name) {
        (&Method::GET, None) => list_or_watch(store, def, t.namespace, &q, &headers).await,
        (&Method::GET, Some(name)) => get_object(store, def, ns, name.clone(), &headers).await,
        (&Method::POST, None) => {
            create_object(store, def, t.namespace, dry_run, &headers, &body).await
        }
        (&Method::PUT, Some(name)) => {
            let obj = decode_body(def, &headers, &body)?;
            let updated = store
                .update(def, &ns, name, target, dry_run, false, move |_| Ok(obj))
                .await?;
            Ok(json_response(StatusCode::OK, &updated))
        }
        (&Method::PATCH, Some(name)) => {
            patch_object(
                store,
                def,
                ns,
                name.clone(),
                target,
                dry_run,
                &headers,
                body,
            )
            .await
        }
        (&Method::DELETE, Some(_)) if target == Target::Status => Err(method_not_allowed()),
        (&Method::DELETE, Some(name)) => {
            delete_object(store, def, &ns, name, dry_run, &headers, &body).await
        }
        (&Method::DELETE, None) => delete_collection(store, def, t.namespace, &q, dry_run).await,
        _ => Err(method_not_allowed()),
    }
}

/// GET on a collection: a watch (`?watch=true`), a Table, or a JSON list.
async fn list_or_watch(
    store: Shared,
    def: &'static ResourceDef,
    namespace: Option<String>,
    q: &HashMap<String, String>,
    headers: &HeaderMap,
) -> Result<Response, StatusError> {
    let watching = matches!(q.get("watch").map(String::as_str), Some("true" | "1"));
    let opts = list_options(def, q)?;
    if watching {
        let table = wants_table(headers);
        return watch::serve(store, def, namespace, opts, q, table).await;
    }
    if wants_table(headers) {
        let list = blocking(move || store.list(def, namespace.as_deref(), &opts)).await?;
        return Ok(json_response(
            StatusCode::OK,
            &discovery::to_table(def, list),
        ));
    }
    let body = blocking(move || store.list_json(def, namespace.as_deref(), &opts)).await?;
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response())
}

/// GET on one object: as stored, or as a Table.
async fn get_object(
    store: Shared,
    def: &'static ResourceDef,
    ns: String,
    name: String,
    headers: &HeaderMap,
) -> Result<Response, StatusError> {
    let raw = blocking(move || store.get_json(def, &ns, &name)).await?;
    if wants_table(headers) {
        let obj: Value = serde_json::from_slice(&raw)
            .map_err(|e| StatusError::internal(format!("stored object: {e}")))?;
        let table = discovery::to_table(def, json!({"metadata": {}, "items": [obj]}));
        return Ok(json_response(StatusCode::OK, &table));
    }
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        raw,
    )
        .into_response())
}

/// POST on a collection; namespaced kinds need the namespace in the path.
async fn create_object(
    store: Shared,
    def: &'static ResourceDef,
    namespace: Option<String>,
    dry_run: bool,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Response, StatusError> {
    if def.namespaced && namespace.is_none() {
        return Err(method_not_allowed());
    }
    let obj = decode_body(def, headers, body)?;
    let created = store
        .create(def, namespace.as_deref(), obj, dry_run)
        .await?;
    Ok(json_response(StatusCode::CREATED, &created))
}

/// DELETE on one object, with optional DeleteOptions (preconditions) in the body.
async fn delete_object(
    store: Shared,
    def: &'static ResourceDef,
    ns: &str,
    name: &str,
    dry_run: bool,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Response, StatusError> {
    let opts = if body.is_empty() {
        json!({})
    } else {
        decode_delete_options(headers, body)?
    };
    let pre = opts.get("preconditions").cloned().unwrap_or(json!({}));
    let out = store.delete(def, ns, name, pre, dry_run).await?;
    let v = match out {
        Deleted::Pending(obj) => obj,
        Deleted::Gone(obj) if def.return_deleted_object => obj,
        Deleted::Gone(obj) => deleted_status(def, &obj),
    };
    Ok(json_response(StatusCode::OK, &v))
}

/// The `Success` Status answered for a deleted object of a kind that does not return it.
fn deleted_status(def: &ResourceDef, obj: &Value) -> Value {
    let mut details = serde_json::Map::new();
    details.insert("name".into(), json!(str_at(obj, "/metadata/name")));
    if !def.group.is_empty() {
        details.insert("group".into(), json!(def.group));
    }
    details.insert("kind".into(), json!(def.plural));
    details.insert("uid".into(), json!(str_at(obj, "/metadata/uid")));
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": details,
    })
}

async fn delete_collection(
    store: Shared,
    def: &'static ResourceDef,
    namespace: Option<String>,
    q: &HashMap<String, String>,
    dry_run: bool,
) -> Result<Response, StatusError> {
    let mut opts = list_options(def, q)?;
    opts.limit = None;
    opts.continue_token = None;
    let store2 = store.clone();
    let list = blocking(move || store2.list(def, namespace.as_deref(), &opts)).await?;
    // All deletes are handed to the writer at once: they share one commit.
    let deletes = list["items"].as_array().into_iter().flatten().map(|item| {
        let ns = str_at(item, "/metadata/namespace").to_string();
        let name = str_at(item, "/metadata/name").to_string();
        let store = store.clone();
        async move { store.delete(def, &ns, &name, json!({}), dry_run).await }
    });
    let mut deleted = Vec::new();
    for r in futures::future::join_all(deletes).await {
        match r {
            Ok(Deleted::Gone(o) | Deleted::Pending(o)) => deleted.push(o),
            Err(e) if e.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    let list = json!({
        "kind": format!("{}List", def.kind),
        "apiVersion": def.api_version(),
        "metadata": {"resourceVersion": list["metadata"]["resourceVersion"].clone()},
        "items": deleted,
    });
    Ok(json_response(StatusCode::OK, &list))
}

#[allow(clippy::too_many_arguments)]
async fn patch_object(
    store: Shared,
    def: &'static ResourceDef,
    ns: String,
    name: String,
    target: Target,
    dry_run: bool,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Response, StatusError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    #[derive(Clone, Copy)]
    enum Kind {
        Merge,
        Json,
        Apply,
    }
    let kind = match ct.as_str() {
        "application/merge-patch+json" | "application/strategic-merge-patch+json" => Kind::Merge,
        "application/json-patch+json" => Kind::Json,
        "application/apply-patch+yaml" | "application/apply-patch+json" => Kind::Apply,
        other => return Err(StatusError::unsupported_media_type(other)),
    };
    let patch_doc = parse_body(&body)?;
    if matches!(kind, Kind::Merge | Kind::Apply) && !patch_doc.is_object() {
        return Err(StatusError::bad_request(
            "the body of the request was not a JSON object",
        ));
    }
    let doc2 = patch_doc.clone();
    let result = store
        .update(def, &ns, &name, target, dry_run, true, move |old| {
            let mut obj = old.clone();
            match kind {
                Kind::Merge | Kind::Apply => patch::merge_patch(&mut obj, &doc2),
                Kind::Json => patch::json_patch(&mut obj, &doc2).map_err(|e| StatusError {
                    code: 422,
                    reason: "Invalid",
                    message: format!(
                        "the server rejected our request due to an error in our request: {e}"
                    ),
                    details: None,
                    list_meta: None,
                })?,
            }
            Ok(obj)
        })
        .await;
    match result {
        Err(e) if e.code == 404 && matches!(kind, Kind::Apply) && target == Target::Main => {
            // Server-side apply of a missing object creates it.
            let mut obj = patch_doc;
            if obj.get("metadata").is_none() {
                obj["metadata"] = json!({});
            }
            obj["metadata"]["name"] = json!(name);
            let ns_opt = def.namespaced.then_some(ns);
            let created = store.create(def, ns_opt.as_deref(), obj, dry_run).await?;
            Ok(json_response(StatusCode::CREATED, &created))
        }
        Err(e) => Err(e),
        Ok(v) => Ok(json_response(StatusCode::OK, &v)),
    }
}
