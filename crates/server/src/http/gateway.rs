//! The V1 HTTP/JSON gateway, behaving like the Go server's grpc-gateway.
//!
//! Routes come from the `google.api.http` annotations of our protos (`kuberay_api::routes`). A
//! request is matched on the percent-decoded path split at `/`, where a `{variable}` matches one
//! segment, even an empty one (so a trailing slash reaches the RPC with an empty name, which it
//! rejects). The request message is assembled as JSON (query fields, then path fields, then the
//! body under its field), decoded with the proto3 JSON mapping, and handed to the same service
//! implementation the gRPC server uses.

use std::future::Future;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, Method, Request, StatusCode, header};
use kuberay_api::proto::*;
use kuberay_api::routes::{HttpRoute, ROUTES};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use tonic::Code;

use crate::calls::Calls;
use crate::error::{ApiError, error_response};
use crate::json_walk;
use crate::services::{
    CLUSTER_SERVICE, COMPUTE_TEMPLATE_SERVICE, RAY_JOB_SERVICE, RAY_SERVE_SERVICE, SERVED_SERVICES,
    Services, not_yet_implemented,
};

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
    calls: Calls,
    routes: Vec<Route>,
    max_body_bytes: usize,
}

impl Gateway {
    pub fn new(services: Services, calls: Calls, max_body_bytes: usize) -> Self {
        let routes = ROUTES
            .iter()
            .filter(|r| SERVED_SERVICES.contains(&r.service))
            .map(Route::new)
            .collect();
        Self {
            inner: std::sync::Arc::new(GatewayInner {
                services,
                calls,
                routes,
                max_body_bytes,
            }),
        }
    }

    /// The served routes as `(service, method)`, for coverage checks.
    pub fn served_methods(&self) -> Vec<(&'static str, &'static str)> {
        self.inner
            .routes
            .iter()
            .map(|r| (r.spec.service, r.spec.method))
            .collect()
    }

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

        let message = match self.assemble(route, &variables, request).await {
            Ok(message) => message,
            Err(response) => return response,
        };
        match self.dispatch(route.spec, message).await {
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
    ) -> Result<Vec<u8>, ApiError> {
        let services = &self.inner.services;
        let templates = &services.compute_templates;
        let clusters = &services.clusters;
        let jobs = &services.jobs;
        let serve = &services.serve;
        match (route.service, route.method) {
            (RAY_JOB_SERVICE, "CreateRayJob") => {
                self.rpc(route, message, |r: CreateRayJobRequest| jobs.create(r))
                    .await
            }
            (RAY_JOB_SERVICE, "GetRayJob") => {
                self.rpc(route, message, |r: GetRayJobRequest| jobs.get(r))
                    .await
            }
            (RAY_JOB_SERVICE, "ListRayJobs") => {
                self.rpc(route, message, |r: ListRayJobsRequest| jobs.list(r))
                    .await
            }
            (RAY_JOB_SERVICE, "ListAllRayJobs") => {
                self.rpc(route, message, |r: ListAllRayJobsRequest| jobs.list_all(r))
                    .await
            }
            (RAY_JOB_SERVICE, "DeleteRayJob") => {
                self.rpc(route, message, |r: DeleteRayJobRequest| async move {
                    jobs.delete(r).await.map(|()| pbjson_types::Empty {})
                })
                .await
            }
            (RAY_SERVE_SERVICE, "CreateRayService") => {
                self.rpc(route, message, |r: CreateRayServiceRequest| serve.create(r))
                    .await
            }
            (RAY_SERVE_SERVICE, "UpdateRayService") => {
                self.rpc(route, message, |r: UpdateRayServiceRequest| serve.update(r))
                    .await
            }
            (RAY_SERVE_SERVICE, "GetRayService") => {
                self.rpc(route, message, |r: GetRayServiceRequest| serve.get(r))
                    .await
            }
            (RAY_SERVE_SERVICE, "ListRayServices") => {
                self.rpc(route, message, |r: ListRayServicesRequest| serve.list(r))
                    .await
            }
            (RAY_SERVE_SERVICE, "ListAllRayServices") => {
                self.rpc(route, message, |r: ListAllRayServicesRequest| {
                    serve.list_all(r)
                })
                .await
            }
            (RAY_SERVE_SERVICE, "DeleteRayService") => {
                self.rpc(route, message, |r: DeleteRayServiceRequest| async move {
                    serve.delete(r).await.map(|()| pbjson_types::Empty {})
                })
                .await
            }
            (CLUSTER_SERVICE, "CreateCluster") => {
                self.rpc(route, message, |r: CreateClusterRequest| clusters.create(r))
                    .await
            }
            (CLUSTER_SERVICE, "GetCluster") => {
                self.rpc(route, message, |r: GetClusterRequest| clusters.get(r))
                    .await
            }
            (CLUSTER_SERVICE, "ListCluster") => {
                self.rpc(route, message, |r: ListClustersRequest| clusters.list(r))
                    .await
            }
            (CLUSTER_SERVICE, "ListAllClusters") => {
                self.rpc(route, message, |r: ListAllClustersRequest| {
                    clusters.list_all(r)
                })
                .await
            }
            (CLUSTER_SERVICE, "DeleteCluster") => {
                self.rpc(route, message, |r: DeleteClusterRequest| async move {
                    clusters.delete(r).await.map(|()| pbjson_types::Empty {})
                })
                .await
            }
            (COMPUTE_TEMPLATE_SERVICE, "CreateComputeTemplate") => {
                self.rpc(route, message, |r: CreateComputeTemplateRequest| {
                    templates.create(r)
                })
                .await
            }
            (COMPUTE_TEMPLATE_SERVICE, "GetComputeTemplate") => {
                self.rpc(route, message, |r: GetComputeTemplateRequest| {
                    templates.get(r)
                })
                .await
            }
            (COMPUTE_TEMPLATE_SERVICE, "ListComputeTemplates") => {
                self.rpc(route, message, |r: ListComputeTemplatesRequest| {
                    templates.list(r)
                })
                .await
            }
            (COMPUTE_TEMPLATE_SERVICE, "ListAllComputeTemplates") => {
                self.rpc(route, message, |r: ListAllComputeTemplatesRequest| {
                    templates.list_all(r)
                })
                .await
            }
            (COMPUTE_TEMPLATE_SERVICE, "DeleteComputeTemplate") => {
                self.rpc(
                    route,
                    message,
                    |r: DeleteComputeTemplateRequest| async move {
                        templates.delete(r).await.map(|()| pbjson_types::Empty {})
                    },
                )
                .await
            }
            (crate::services::RAY_JOB_SUBMISSION_SERVICE, method) => {
                self.job_submission(route, method, message).await
            }
            (service, method) => {
                self.inner
                    .calls
                    .run(service, method, async {
                        Err::<(), _>(not_yet_implemented(service, method))
                    })
                    .await?;
                unreachable!("an unimplemented call always fails")
            }
        }
    }

    /// The RayJobSubmissionService routes.
    async fn job_submission(
        &self,
        route: &'static HttpRoute,
        method: &str,
        message: Value,
    ) -> Result<Vec<u8>, ApiError> {
        let submissions = &self.inner.services.job_submissions;
        match method {
            "SubmitRayJob" => {
                self.rpc(route, message, |r: SubmitRayJobRequest| {
                    submissions.submit(r)
                })
                .await
            }
            "GetJobDetails" => {
                self.rpc(route, message, |r: GetJobDetailsRequest| submissions.get(r))
                    .await
            }
            "GetJobLog" => {
                self.rpc(route, message, |r: GetJobLogRequest| submissions.log(r))
                    .await
            }
            "ListJobDetails" => {
                self.rpc(route, message, |r: ListJobDetailsRequest| {
                    submissions.list(r)
                })
                .await
            }
            "StopRayJob" => {
                self.rpc(
                    route,
                    message,
                    |r: StopRayJobSubmissionRequest| async move {
                        submissions.stop(r).await.map(|()| pbjson_types::Empty {})
                    },
                )
                .await
            }
            "DeleteRayJob" => {
                self.rpc(
                    route,
                    message,
                    |r: DeleteRayJobSubmissionRequest| async move {
                        submissions.delete(r).await.map(|()| pbjson_types::Empty {})
                    },
                )
                .await
            }
            other => unreachable!("no RayJobSubmissionService route for {other}"),
        }
    }

    async fn rpc<Req, Resp, F, Fut>(
        &self,
        route: &'static HttpRoute,
        message: Value,
        call: F,
    ) -> Result<Vec<u8>, ApiError>
    where
        Req: DeserializeOwned,
        Resp: Serialize,
        F: FnOnce(Req) -> Fut,
        Fut: Future<Output = Result<Resp, ApiError>>,
    {
        let request: Req = serde_json::from_value(message)
            .map_err(|e| ApiError::with_code(Code::InvalidArgument, e.to_string()))?;
        let response = self
            .inner
            .calls
            .run(route.service, route.method, call(request))
            .await?;
        Ok(serde_json::to_vec(&response).expect("API messages always serialise"))
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
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let (key, value) = (form_decode(key), form_decode(value));
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

/// Decodes `application/x-www-form-urlencoded` text (`+` is a space).
fn form_decode(text: &str) -> String {
    let spaced = text.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8_lossy()
        .into_owned()
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
