//! The V1 HTTP/JSON gateway, behaving like the Go server's grpc-gateway.
//!
//! Routes come from the `google.api.http` annotations of our protos (`kuberay_api::routes`). A
//! request is matched on the percent-decoded path split at `/`, where a `{variable}` matches one
//! segment, even an empty one (so a trailing slash reaches the RPC with an empty name, which it
//! rejects). The request message is assembled as JSON (query fields, then path fields, then the
//! body under its field), decoded with the proto3 JSON mapping, and handed to the same service
//! implementation the gRPC server uses.

use std::sync::Arc;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, Method, Request, StatusCode, header};
use kuberay_api::routes::{HttpRoute, ROUTES};
use serde_json::{Map, Value};
use tonic::Code;

use crate::access::Identity;
use crate::call_policy::CallPolicy;
use crate::error::{ApiError, error_response};
use crate::json_walk;
use crate::services::{SERVED_SERVICES, Services};

enum Segment {
    Literal(&'static str),
    Variable(&'static str),
}

struct Route {
    spec: &'static HttpRoute,
    method: Method,
    segments: Vec<Segment>,
}

impl Route {
    fn new(spec: &'static HttpRoute) -> Self {
        let segments = spec
            .pattern
            .trim_start_matches('/')
            .split('/')
            .map(
                |s| match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                    Some(name) => Segment::Variable(name),
                    None => Segment::Literal(s),
                },
            )
            .collect();
        Self {
            spec,
            method: Method::from_bytes(spec.http_method.as_bytes())
                .expect("annotated methods are valid"),
            segments,
        }
    }

    /// The path variables when `segments` matches this route's pattern.
    fn matches<'a>(&self, segments: &[&'a str]) -> Option<Vec<(&'static str, &'a str)>> {
        if segments.len() != self.segments.len() {
            return None;
        }
        let mut variables = Vec::new();
        for (pattern, actual) in self.segments.iter().zip(segments) {
            match pattern {
                Segment::Literal(literal) if literal == actual => {}
                Segment::Literal(_) => return None,
                Segment::Variable(name) => variables.push((*name, *actual)),
            }
        }
        Some(variables)
    }
}

/// Query fields that list RPCs accept, by proto name and JSON name.
const QUERY_FIELDS: [&str; 6] = [
    "continue",
    "limit",
    "page_token",
    "pageToken",
    "page_size",
    "pageSize",
];

#[derive(Clone)]
pub struct Gateway {
    inner: std::sync::Arc<GatewayInner>,
}

struct GatewayInner {
    services: Services,
    call_policy: CallPolicy,
    routes: Vec<Route>,
    max_body_bytes: usize,
}

impl Gateway {
    pub fn new(services: Services, call_policy: CallPolicy, max_body_bytes: usize) -> Self {
        let routes = ROUTES
            .iter()
            .filter(|r| SERVED_SERVICES.contains(&r.service))
            .map(Route::new)
            .collect();
        Self {
            inner: std::sync::Arc::new(GatewayInner {
                services,
                call_policy,
                routes,
                max_body_bytes,
            }),
        }
    }

    /// The served routes as `(service, method)`, for coverage checks.
    pub async fn handle(&self, request: Request<Body>) -> Response {
        let inner = &self.inner;
        let decoded_path = percent_encoding::percent_decode_str(request.uri().path())
            .decode_utf8_lossy()
            .into_owned();
        let segments: Vec<&str> = decoded_path.trim_start_matches('/').split('/').collect();

        let mut allowed: Vec<&Method> = Vec::new();
        let mut found = None;
        for route in &inner.routes {
            if let Some(variables) = route.matches(&segments) {
                if route.method == request.method() {
                    found = Some((route, variables));
                    break;
                }
                allowed.push(&route.method);
            }
        }
        let Some((route, variables)) = found else {
            if allowed.is_empty() {
                return error_response(StatusCode::NOT_FOUND, Code::NotFound, "Not Found");
            }
            let mut response = error_response(
                StatusCode::METHOD_NOT_ALLOWED,
                Code::Unimplemented,
                "Method Not Allowed",
            );
            let allow = allowed
                .iter()
                .map(|m| m.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            if let Ok(value) = HeaderValue::from_str(&allow) {
                response.headers_mut().insert(header::ALLOW, value);
            }
            return response;
        };

        let identity = request.extensions().get::<Arc<Identity>>().cloned();
        let message = match self.assemble(route, &variables, request).await {
            Ok(message) => message,
            Err(response) => return response,
        };
        match self.dispatch(route.spec, message, identity).await {
            Ok(body) => {
                let mut response = (StatusCode::OK, body).into_response();
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                response
            }
            Err(error) => error.into_response(),
        }
    }

    /// Builds the request message as proto3 JSON: query fields, path variables, then the body.
    async fn assemble(
        &self,
        route: &Route,
        variables: &[(&'static str, &str)],
        request: Request<Body>,
    ) -> Result<Value, Response> {
        let mut message = Map::new();
        match route.spec.body {
            None => {
                if let Some(query) = request.uri().query() {
                    read_query(query, &mut message).map_err(|e| e.into_response())?;
                }
            }
            Some(field) => {
                let limit = self.inner.max_body_bytes;
                let bytes = axum::body::to_bytes(request.into_body(), limit)
                    .await
                    .map_err(|_| {
                        error_response(
                            StatusCode::PAYLOAD_TOO_LARGE,
                            Code::ResourceExhausted,
                            &format!("request body is larger than the limit of {limit} bytes"),
                        )
                    })?;
                // Checked first, without keeping anything: repeated members and the number of
                // values (which bounds the memory the decoded body takes).
                json_walk::check(&bytes, json_walk::max_values(limit)).map_err(|refused| {
                    match refused {
                        json_walk::Refused::TooManyValues { .. } => error_response(
                            StatusCode::PAYLOAD_TOO_LARGE,
                            Code::ResourceExhausted,
                            &refused.to_string(),
                        ),
                        json_walk::Refused::Invalid(text) => {
                            ApiError::with_code(Code::InvalidArgument, text).into_response()
                        }
                    }
                })?;
                let body = parse_body(&bytes).map_err(|e| e.into_response())?;
                message.insert(field.to_string(), body);
            }
        }
        for (name, value) in variables {
            message.insert((*name).to_string(), Value::String((*value).to_string()));
        }
        Ok(Value::Object(message))
    }

    async fn dispatch(
        &self,
        route: &'static HttpRoute,
        message: Value,
        identity: Option<Arc<Identity>>,
    ) -> Result<Vec<u8>, ApiError> {
        crate::rpcs::call_json(
            &self.inner.services,
            &self.inner.call_policy,
            route.service,
            route.method,
            message,
            identity,
        )
        .await
    }
}

/// Reads the first JSON value of a body (checked by [`json_walk::check`] first); an empty body is
/// an empty message, bytes after the first value are ignored, `null` members mean "not set".
fn parse_body(bytes: &[u8]) -> Result<Value, ApiError> {
    let invalid = |text: String| ApiError::with_code(Code::InvalidArgument, text);
    let mut values = serde_json::Deserializer::from_slice(bytes).into_iter::<Value>();
    match values.next() {
        None => Ok(Value::Object(Map::new())),
        Some(Err(error)) => Err(invalid(error.to_string())),
        Some(Ok(Value::Object(mut object))) => {
            strip_nulls(&mut object);
            Ok(Value::Object(object))
        }
        Some(Ok(other)) => {
            let token = match other {
                Value::Null => "null".to_string(),
                Value::Array(_) => "[".to_string(),
                other => other.to_string(),
            };
            Err(invalid(format!(
                "unexpected token {token}: the body must be a JSON object"
            )))
        }
    }
}

fn strip_nulls(object: &mut Map<String, Value>) {
    object.retain(|_, v| !v.is_null());
    for value in object.values_mut() {
        match value {
            Value::Object(inner) => strip_nulls(inner),
            Value::Array(items) => {
                for item in items {
                    if let Value::Object(inner) = item {
                        strip_nulls(inner);
                    }
                }
            }
            _ => {}
        }
    }
}

/// Reads the query fields of a list RPC, with the gateway's errors for bad numbers and repeats.
fn read_query(query: &str, message: &mut Map<String, Value>) -> Result<(), ApiError> {
    let invalid = |text: String| ApiError::with_code(Code::InvalidArgument, text);
    let mut seen: Vec<(String, Vec<String>)> = Vec::new();
    for (key, value) in form_urlencoded::parse(query.as_bytes()).into_owned() {
        if !QUERY_FIELDS.contains(&key.as_str()) {
            continue;
        }
        match seen.iter_mut().find(|(k, _)| *k == key) {
            Some((_, values)) => values.push(value),
            None => seen.push((key, vec![value])),
        }
    }
    for (key, values) in seen {
        if values.len() > 1 {
            return Err(invalid(format!(
                "too many values for field \"{key}\": {}",
                values.join(", ")
            )));
        }
        let value = values.into_iter().next().unwrap_or_default();
        match key.as_str() {
            "limit" => {
                value.parse::<i64>().map_err(|e| {
                    invalid(format!(
                        "parsing field \"{key}\": strconv.ParseInt: parsing \"{value}\": {}",
                        number_error(&e)
                    ))
                })?;
            }
            "page_size" | "pageSize" => {
                value.parse::<i32>().map_err(|e| {
                    invalid(format!(
                        "parsing field \"{key}\": strconv.ParseInt: parsing \"{value}\": {}",
                        number_error(&e)
                    ))
                })?;
            }
            _ => {}
        }
        message.insert(key, Value::String(value));
    }
    Ok(())
}

fn number_error(error: &std::num::ParseIntError) -> &'static str {
    match error.kind() {
        std::num::IntErrorKind::PosOverflow | std::num::IntErrorKind::NegOverflow => {
            "value out of range"
        }
        _ => "invalid syntax",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_match_empty_segments() {
        let spec = ROUTES
            .iter()
            .find(|r| r.method == "GetComputeTemplate")
            .expect("route exists");
        let route = Route::new(spec);
        let path = "apis/v1/namespaces/ns/compute_templates/";
        let segments: Vec<&str> = path.split('/').collect();
        assert_eq!(
            route.matches(&segments),
            Some(vec![("namespace", "ns"), ("name", "")])
        );
        let segments: Vec<&str> = "apis/v1/namespaces/ns/clusters/x".split('/').collect();
        assert_eq!(route.matches(&segments), None);
    }

    #[test]
    fn query_values_are_checked_like_the_gateway() {
        let mut message = Map::new();
        read_query("limit=10&continue=abc&unknown=1", &mut message).unwrap();
        assert_eq!(message["limit"], "10");
        assert_eq!(message["continue"], "abc");
        assert!(!message.contains_key("unknown"));

        let err = read_query("limit=abc", &mut Map::new()).unwrap_err();
        assert_eq!(
            err.message(),
            "parsing field \"limit\": strconv.ParseInt: parsing \"abc\": invalid syntax"
        );
        let err = read_query("limit=1&limit=2", &mut Map::new()).unwrap_err();
        assert_eq!(err.message(), "too many values for field \"limit\": 1, 2");
        let err = read_query("pageSize=99999999999", &mut Map::new()).unwrap_err();
        assert!(err.message().ends_with("value out of range"));
    }

    #[test]
    fn bodies_are_read_like_the_gateway() {
        assert_eq!(parse_body(b"").unwrap(), serde_json::json!({}));
        assert_eq!(parse_body(b"  \n").unwrap(), serde_json::json!({}));
        assert_eq!(
            parse_body(br#"{"name":"a","gpu":null,"x":{"y":null}} trailing"#).unwrap(),
            serde_json::json!({"name": "a", "x": {}})
        );
        assert_eq!(
            parse_body(b"null").unwrap_err().code(),
            Code::InvalidArgument
        );
        assert_eq!(
            parse_body(b"[1]").unwrap_err().code(),
            Code::InvalidArgument
        );
        assert_eq!(
            parse_body(b"{\"a\":").unwrap_err().code(),
            Code::InvalidArgument
        );
    }

    #[test]
    fn repeated_members_are_refused_at_any_depth() {
        for body in [
            &br#"{"name":"a","name":"b"}"#[..],
            br#"{"cluster":{"spec":[{"x":1,"x":2}]}}"#,
            br#"{"labels":{"k":"1","k":"1"}}"#,
        ] {
            let error = json_walk::check(body, 100).unwrap_err().to_string();
            assert!(error.starts_with("duplicate field"), "{error}");
        }
        assert!(json_walk::check(br#"{"a":{"k":1},"b":{"k":1}}"#, 100).is_ok());
        assert!(json_walk::check(br#"{"a":1} {"a":1,"a":2}"#, 100).is_ok());
    }
}
