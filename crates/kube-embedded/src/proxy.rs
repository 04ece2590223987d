//! The Service proxy subresource: `/api/v1/namespaces/{ns}/services/{id}/proxy[/{path}]`.
//!
//! As the kube-apiserver serves it (`ResourceLocation` of the service registry and the
//! upgrade-aware proxy handler): `{id}` is `name`, `name:port` or `scheme:name:port`; the port
//! (a Service port name or number) selects an address and port of the Endpoints object of the
//! same name; the request (method, path remainder, query, headers, body) is forwarded there and
//! the upstream's answer is streamed back.
//!
//! Differences from the kube-apiserver: the Service is always looked up (a missing one is
//! `services "x" not found`, where the kube-apiserver answers `endpoints "x" not found` unless a
//! port number was given); a missing Endpoints object is 503 `no endpoints available`; with the
//! port omitted a single-port Service uses that port; the address is the first one that fits
//! (not a random one) and need not belong to a Pod; plain HTTP upstreams only (`https:` is a
//! 503); no upgrades (websockets), no rewriting of HTML links or of `Location` headers, CORS
//! headers are kept.

use std::error::Error as StdError;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use serde_json::Value;

use crate::api::{Shared, blocking, read_body};
use crate::resources;
use crate::status::StatusError;
use crate::store::str_at;

/// The HTTP client that reaches the upstreams (connections are pooled per upstream).
pub type UpstreamClient = Client<HttpConnector, Full<Bytes>>;

/// A new upstream client: plain HTTP/1.1, 30 s to connect (the kube-apiserver's proxy dialer).
pub fn client() -> UpstreamClient {
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(Duration::from_secs(30)));
    connector.set_nodelay(true);
    Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .build(connector)
}

/// A request path addressing the proxy subresource of a Service.
#[derive(Debug, PartialEq, Eq)]
pub struct ProxyPath<'a> {
    pub namespace: String,
    /// `name`, `name:port` or `scheme:name:port`, percent-decoded.
    pub id: String,
    /// What follows `/proxy`, as received: "" or starts with `/`.
    pub rest: &'a str,
}

/// Recognises `/api/v1/namespaces/{ns}/services/{id}/proxy[/{path...}]`.
pub fn parse_path(path: &str) -> Option<ProxyPath<'_>> {
    let rest = path.strip_prefix("/api/v1/namespaces/")?;
    let (namespace, rest) = rest.split_once('/')?;
    let rest = rest.strip_prefix("services/")?;
    let (id, rest) = rest.split_once('/')?;
    let rest = rest.strip_prefix("proxy")?;
    if namespace.is_empty() || id.is_empty() || !(rest.is_empty() || rest.starts_with('/')) {
        return None;
    }
    Some(ProxyPath {
        namespace: decode(namespace),
        id: decode(id),
        rest,
    })
}

fn decode(segment: &str) -> String {
    percent_encoding::percent_decode_str(segment)
        .decode_utf8_lossy()
        .into_owned()
}

/// The methods the kube-apiserver proxies (its `proxy` verbs).
const PROXIED_METHODS: &[Method] = &[
    Method::GET,
    Method::HEAD,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
    Method::OPTIONS,
];

/// Everything one proxied request needs besides its path.
pub struct ProxyRequest {
    pub method: Method,
    pub uri: Uri,
    /// The URI as the client sent it (before any nesting of the router): for redirects.
    pub original_uri: Uri,
    pub headers: HeaderMap,
}

/// Serves one request to the proxy subresource.
pub async fn serve(
    store: Shared,
    client: &UpstreamClient,
    max_body_bytes: usize,
    path: ProxyPath<'_>,
    req: ProxyRequest,
    body: Body,
) -> Response {
    match forward(store, client, max_body_bytes, path, req, body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn forward(
    store: Shared,
    client: &UpstreamClient,
    max_body_bytes: usize,
    path: ProxyPath<'_>,
    req: ProxyRequest,
    body: Body,
) -> Result<Response, StatusError> {
    if !PROXIED_METHODS.contains(&req.method) {
        return Err(StatusError::method_not_allowed(
            "the server does not allow this method on the requested resource",
        ));
    }
    let target = resolve(store, &path.namespace, &path.id).await?;
    // The kube-apiserver redirects `.../proxy` to `.../proxy/` for GET and HEAD (issue 4958),
    // so that relative links of the page resolve under the proxy.
    if path.rest.is_empty() && (req.method == Method::GET || req.method == Method::HEAD) {
        return Ok(redirect_to_slash(&req.original_uri));
    }
    if target.scheme == "https" {
        return Err(service_unavailable(format!(
            "error trying to reach service: https upstreams are not supported by the embedded \
             API's service proxy (service {:?}); use http",
            target.service
        )));
    }
    let body = read_body(body, max_body_bytes).await?;
    let upstream = upstream_request(&target, &path, &req, body)?;
    let answer = client.request(upstream).await.map_err(|e| {
        service_unavailable(format!(
            "error trying to reach service: {}",
            reach_error(&e, &target)
        ))
    })?;
    let (parts, body) = answer.into_parts();
    let mut response = Response::new(Body::new(body));
    *response.status_mut() = parts.status;
    *response.headers_mut() = without_hop_by_hop(parts.headers);
    Ok(response)
}

/// Where a proxied request goes.
struct Target {
    service: String,
    scheme: String,
    host: String,
    port: u16,
}

impl Target {
    /// `host:port`, an IPv6 host in brackets.
    fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// The kube-apiserver's `ResourceLocation` of a Service: the Service, its port, then an address
/// and port of the Endpoints object of the same name.
async fn resolve(store: Shared, namespace: &str, id: &str) -> Result<Target, StatusError> {
    let (scheme, name, port) = split_scheme_name_port(id)
        .ok_or_else(|| StatusError::bad_request(format!("invalid service request {id:?}")))?;
    let service = get(store.clone(), resources::services(), namespace, name).await?;
    let port = service_port(&service, name, port)?;
    let no_endpoints =
        || service_unavailable(format!("no endpoints available for service {name:?}"));
    let endpoints = match get(store, resources::endpoints(), namespace, name).await {
        Ok(e) => e,
        Err(e) if e.code == 404 => return Err(no_endpoints()),
        Err(e) => return Err(e),
    };
    let (host, port) = endpoint_address(&endpoints, &port).ok_or_else(no_endpoints)?;
    Ok(Target {
        service: name.to_string(),
        scheme: scheme.to_string(),
        host,
        port,
    })
}

/// `utilnet.SplitSchemeNamePort`: `name`, `name:port` or `scheme:name:port`, with a non-empty
/// name and a scheme of "", `http` or `https`.
fn split_scheme_name_port(id: &str) -> Option<(&str, &str, &str)> {
    let parts: Vec<&str> = id.split(':').collect();
    let (scheme, name, port) = match parts.as_slice() {
        [name] => ("", *name, ""),
        [name, port] => ("", *name, *port),
        [scheme, name, port] => (*scheme, *name, *port),
        _ => return None,
    };
    (!name.is_empty() && matches!(scheme, "" | "http" | "https")).then_some((scheme, name, port))
}

async fn get(
    store: Shared,
    def: &'static resources::ResourceDef,
    namespace: &str,
    name: &str,
) -> Result<Value, StatusError> {
    let (namespace, name) = (namespace.to_string(), name.to_string());
    let raw = blocking(move || store.get_json(def, &namespace, &name)).await?;
    serde_json::from_slice(&raw).map_err(|e| StatusError::internal(format!("stored object: {e}")))
}

/// The Service port a request addresses, by the name its Endpoints port has.
#[derive(Debug, PartialEq, Eq)]
struct PortChoice {
    name: String,
    /// The Service's only port, unnamed: a subset's only port fits it whatever its name.
    only_unnamed: bool,
}

/// The Service port the request addresses: a port number is looked up among the Service's
/// ports (503 when it has none such, as the kube-apiserver answers); no port means the only
/// port of a single-port Service, else the unnamed port (the kube-apiserver's rule); a name is
/// taken as is.
fn service_port(service: &Value, name: &str, port: &str) -> Result<PortChoice, StatusError> {
    let ports: &[Value] = service
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice);
    let only_unnamed = matches!(ports, [only] if str_at(only, "/name").is_empty());
    let choice = |name: &str| PortChoice {
        name: name.to_string(),
        only_unnamed: only_unnamed && name.is_empty(),
    };
    if port.is_empty() {
        return Ok(match ports {
            [only] => choice(str_at(only, "/name")),
            _ => PortChoice {
                name: String::new(),
                only_unnamed: false,
            },
        });
    }
    let Ok(number) = port.parse::<i64>() else {
        return Ok(choice(port));
    };
    ports
        .iter()
        .find(|p| p.get("port").and_then(Value::as_i64) == Some(number))
        .map(|p| choice(str_at(p, "/name")))
        .ok_or_else(|| {
            service_unavailable(format!(
                "no service port {number} found for service {name:?}"
            ))
        })
}

/// The first address of a subset that has the chosen port (by name; for the only, unnamed port
/// of a Service, a subset's only port too), with that port's number.
fn endpoint_address(endpoints: &Value, port: &PortChoice) -> Option<(String, u16)> {
    let subsets = endpoints.get("subsets")?.as_array()?;
    subsets.iter().find_map(|subset| {
        let ip = subset
            .get("addresses")?
            .as_array()?
            .iter()
            .map(|a| str_at(a, "/ip"))
            .find(|ip| !ip.is_empty())?;
        let ports = subset.get("ports")?.as_array()?;
        let found =
            ports
                .iter()
                .find(|p| str_at(p, "/name") == port.name)
                .or(match ports.as_slice() {
                    [only] if port.only_unnamed => Some(only),
                    _ => None,
                })?;
        let number = found.get("port")?.as_u64()?;
        let number = u16::try_from(number).ok().filter(|n| *n != 0)?;
        Some((ip.to_string(), number))
    })
}

/// 301 to the same URL with a `/` after `proxy` (query kept), as the kube-apiserver answers.
fn redirect_to_slash(original: &Uri) -> Response {
    let location = match original.query().filter(|q| !q.is_empty()) {
        Some(q) => format!("{}/?{q}", original.path()),
        None => format!("{}/", original.path()),
    };
    match HeaderValue::from_str(&location) {
        Ok(v) => (StatusCode::MOVED_PERMANENTLY, [(header::LOCATION, v)]).into_response(),
        Err(e) => StatusError::internal(format!("redirect location: {e}")).into_response(),
    }
}

/// The request sent upstream: the path after `/proxy` (`/` when there is none), the query, the
/// client's headers without the hop-by-hop ones, `Authorization` (the credentials were for this
/// API) and `Host` (the upstream's is set), and the body.
fn upstream_request(
    target: &Target,
    path: &ProxyPath<'_>,
    req: &ProxyRequest,
    body: Bytes,
) -> Result<Request<Full<Bytes>>, StatusError> {
    let authority = target.authority();
    let rest = if path.rest.is_empty() { "/" } else { path.rest };
    let url = match req.uri.query() {
        Some(q) => format!("http://{authority}{rest}?{q}"),
        None => format!("http://{authority}{rest}"),
    };
    let url: Uri = url.parse().map_err(|e| {
        service_unavailable(format!(
            "error trying to reach service: invalid endpoint address {authority}: {e}"
        ))
    })?;
    let mut forwarded = without_hop_by_hop(req.headers.clone());
    for name in [
        header::AUTHORIZATION,
        header::HOST,
        header::CONTENT_LENGTH,
        header::EXPECT,
    ] {
        forwarded.remove(name);
    }
    // As the kube-apiserver's proxy transport: the URI the client asked for.
    if let Ok(v) = HeaderValue::from_str(req.original_uri.path()) {
        forwarded.insert(HeaderName::from_static("x-forwarded-uri"), v);
    }
    let mut request = Request::new(Full::new(body));
    *request.method_mut() = req.method.clone();
    *request.uri_mut() = url;
    *request.headers_mut() = forwarded;
    Ok(request)
}

/// Headers that apply to one connection only (RFC 9110 section 7.6.1, as Go's reverse proxy
/// lists them), and those the `Connection` header names.
fn without_hop_by_hop(mut headers: HeaderMap) -> HeaderMap {
    let named: Vec<String> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .collect();
    for name in named {
        headers.remove(name.as_str());
    }
    for name in [
        "connection",
        "proxy-connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    ] {
        headers.remove(name);
    }
    headers
}

/// 503 ServiceUnavailable (`errors.NewServiceUnavailable`).
fn service_unavailable(message: String) -> StatusError {
    StatusError {
        code: 503,
        reason: "ServiceUnavailable",
        message,
        details: None,
        list_meta: None,
    }
}

/// Why the upstream could not be reached: a failed connection as Go words it (`dial tcp
/// 127.0.0.1:8265: connect: ...`), else the client's error with its causes.
fn reach_error(e: &hyper_util::client::legacy::Error, target: &Target) -> String {
    let mut io = None;
    let mut source = e.source();
    while let Some(s) = source {
        io = s.downcast_ref::<std::io::Error>().or(io);
        source = s.source();
    }
    match io {
        Some(io) if e.is_connect() => {
            format!("dial tcp {}: connect: {io}", target.authority())
        }
        _ => error_chain(e),
    }
}

/// An error with its causes, `a: b: c` (the client's own message names only the stage).
fn error_chain(e: &(dyn StdError + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn proxy_paths() {
        let p = parse_path("/api/v1/namespaces/ns/services/web%3Adashboard/proxy/api/x/").unwrap();
        assert_eq!(
            p,
            ProxyPath {
                namespace: "ns".into(),
                id: "web:dashboard".into(),
                rest: "/api/x/"
            }
        );
        assert_eq!(
            parse_path("/api/v1/namespaces/ns/services/web/proxy")
                .unwrap()
                .rest,
            ""
        );
        for no in [
            "/api/v1/namespaces/ns/services/web",
            "/api/v1/namespaces/ns/services/web/proxyx",
            "/api/v1/namespaces/ns/services/web/status",
            "/api/v1/namespaces/ns/pods/web/proxy",
            "/api/v1/namespaces//services/web/proxy",
            "/apis/v1/namespaces/ns/services/web/proxy",
        ] {
            assert_eq!(parse_path(no), None, "{no}");
        }
    }

    #[test]
    fn ids() {
        assert_eq!(split_scheme_name_port("a"), Some(("", "a", "")));
        assert_eq!(split_scheme_name_port("a:80"), Some(("", "a", "80")));
        assert_eq!(
            split_scheme_name_port("http:a:web"),
            Some(("http", "a", "web"))
        );
        assert_eq!(split_scheme_name_port("https:a:"), Some(("https", "a", "")));
        assert_eq!(split_scheme_name_port(":80"), None);
        assert_eq!(split_scheme_name_port("ftp:a:80"), None);
        assert_eq!(split_scheme_name_port("a:b:c:d"), None);
    }

    #[test]
    fn ports_and_addresses() {
        let named = |n: &str| PortChoice {
            name: n.into(),
            only_unnamed: false,
        };
        let svc = json!({"spec": {"ports": [{"name": "dashboard", "port": 8265}, {"name": "serve", "port": 8000}]}});
        assert_eq!(service_port(&svc, "s", "8265").unwrap(), named("dashboard"));
        assert_eq!(service_port(&svc, "s", "serve").unwrap(), named("serve"));
        assert_eq!(service_port(&svc, "s", "").unwrap(), named(""));
        let e = service_port(&svc, "s", "1").unwrap_err();
        assert_eq!(
            (e.code, e.message.as_str()),
            (503, "no service port 1 found for service \"s\"")
        );
        let single = json!({"spec": {"ports": [{"name": "http", "port": 80}]}});
        assert_eq!(service_port(&single, "s", "").unwrap(), named("http"));
        let unnamed = json!({"spec": {"ports": [{"port": 80}]}});
        let only = PortChoice {
            name: String::new(),
            only_unnamed: true,
        };
        assert_eq!(service_port(&unnamed, "s", "").unwrap(), only);
        assert_eq!(service_port(&unnamed, "s", "80").unwrap(), only);

        let eps = json!({"subsets": [
            {"addresses": [], "ports": [{"name": "dashboard", "port": 1}]},
            {"addresses": [{"ip": "10.0.0.1"}], "ports": [{"name": "dashboard", "port": 8265}]},
        ]});
        let found = Some(("10.0.0.1".to_string(), 8265));
        assert_eq!(endpoint_address(&eps, &named("dashboard")), found);
        assert_eq!(endpoint_address(&eps, &named("serve")), None);
        assert_eq!(endpoint_address(&eps, &named("")), None);
        assert_eq!(endpoint_address(&eps, &only), found);
        assert_eq!(endpoint_address(&json!({}), &only), None);
    }

    #[test]
    fn hop_by_hop_headers_are_dropped() {
        let mut h = HeaderMap::new();
        h.insert("connection", HeaderValue::from_static("close, x-private"));
        h.insert("x-private", HeaderValue::from_static("1"));
        h.insert("transfer-encoding", HeaderValue::from_static("chunked"));
        h.insert("x-kept", HeaderValue::from_static("1"));
        let h = without_hop_by_hop(h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("x-kept"));
    }
}
