//! The gRPC transport: thin tonic adapters over the service layer, plus reflection and health.

use std::time::Duration;

use axum::body::Body;
use kuberay_api::proto::{
    cluster_service_server, compute_template_service_server, ray_job_service_server,
    ray_job_submission_service_server, ray_serve_service_server,
};
use tonic::Status;
use tower::ServiceExt;
use tower::util::BoxCloneSyncService;

use crate::auth::{self, Authenticator};
use crate::listen::{self, HttpService};

use crate::call_policy::CallPolicy;
use crate::services::Services;

/// Largest message sent, like the Go server (grpc-go's default, math.MaxInt32). Answers are
/// bounded by what the Kubernetes API returns; the receive limit is `--grpc-max-receive-bytes`.
pub const MAX_SEND_BYTES: usize = i32::MAX as usize;

/// Implements every generated service trait by delegating to [`Services`] through [`CallPolicy`]
/// (the implementations come from the table in [`crate::rpcs`]).
#[derive(Clone)]
pub struct GrpcApi {
    services: Services,
    call_policy: CallPolicy,
}

impl GrpcApi {
    pub fn new(services: Services, call_policy: CallPolicy) -> Self {
        Self {
            services,
            call_policy,
        }
    }

    pub(crate) fn services(&self) -> &Services {
        &self.services
    }

    pub(crate) fn call_policy(&self) -> &CallPolicy {
        &self.call_policy
    }
}

/// Builds the tonic router: the five API services (receiving messages up to
/// `max_receive_bytes`), reflection v1 and v1alpha, and `grpc.health.v1`.
pub fn router(
    api: GrpcApi,
    max_receive_bytes: usize,
) -> anyhow::Result<(tonic::service::Routes, tonic_health::server::HealthReporter)> {
    let (health_reporter, health) = tonic_health::server::health_reporter();
    use cluster_service_server::ClusterServiceServer;
    use compute_template_service_server::ComputeTemplateServiceServer;
    use ray_job_service_server::RayJobServiceServer;
    use ray_job_submission_service_server::RayJobSubmissionServiceServer;
    use ray_serve_service_server::RayServeServiceServer;

    let mut reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(kuberay_api::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET);
    let mut reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(kuberay_api::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET);
    for name in crate::services::SERVED_SERVICES.into_iter().chain([
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
    ]) {
        reflection_v1 = reflection_v1.with_service_name(name);
        reflection_v1alpha = reflection_v1alpha.with_service_name(name);
    }
    let reflection_v1 = reflection_v1.build_v1()?;
    let reflection_v1alpha = reflection_v1alpha.build_v1alpha()?;

    let routes = tonic::service::Routes::new(health)
        .add_service(
            ClusterServiceServer::new(api.clone())
                .max_decoding_message_size(max_receive_bytes)
                .max_encoding_message_size(MAX_SEND_BYTES),
        )
        .add_service(
            ComputeTemplateServiceServer::new(api.clone())
                .max_decoding_message_size(max_receive_bytes)
                .max_encoding_message_size(MAX_SEND_BYTES),
        )
        .add_service(
            RayJobServiceServer::new(api.clone())
                .max_decoding_message_size(max_receive_bytes)
                .max_encoding_message_size(MAX_SEND_BYTES),
        )
        .add_service(
            RayServeServiceServer::new(api.clone())
                .max_decoding_message_size(max_receive_bytes)
                .max_encoding_message_size(MAX_SEND_BYTES),
        )
        .add_service(
            RayJobSubmissionServiceServer::new(api)
                .max_decoding_message_size(max_receive_bytes)
                .max_encoding_message_size(MAX_SEND_BYTES),
        )
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha);
    Ok((routes, health_reporter))
}

/// The gRPC port's handler: `routes` behind what tonic's own server would add (the client's
/// `grpc-timeout`), the body deadline of [`listen::body_deadline`] (reflection streams, which
/// stay open between requests, are exempt) and grpc-go's code for messages over the limit.
pub fn service(
    routes: tonic::service::Routes,
    call_timeout: Duration,
    auth: Option<Authenticator>,
) -> HttpService {
    let inner: HttpService =
        BoxCloneSyncService::new(ServiceExt::<http::Request<Body>>::map_response(
            routes,
            |response: http::Response<tonic::body::Body>| response.map(Body::new),
        ));
    let inner = BoxCloneSyncService::new(tower::service_fn(move |request: http::Request<Body>| {
        let inner = inner.clone();
        let auth = auth.clone();
        async move {
            let mut request = request;
            if let Some(auth) = auth
                && !auth::open_grpc_path(request.uri().path())
            {
                match auth
                    .check(
                        request.headers().get(http::header::AUTHORIZATION),
                        request.extensions().get(),
                    )
                    .await
                {
                    Ok(Some(identity)) => {
                        request.extensions_mut().insert(identity);
                    }
                    Ok(None) => {}
                    Err(error) => {
                        return Ok(Status::new(error.code(), error.message()).into_http::<Body>());
                    }
                }
            }
            let response = match client_timeout(request.headers()) {
                // Like tonic's server: the client's deadline ends the call.
                Some(timeout) => {
                    match tokio::time::timeout(timeout, inner.oneshot(request)).await {
                        Ok(response) => response?,
                        Err(_) => Status::cancelled("Timeout expired").into_http(),
                    }
                }
                None => inner.oneshot(request).await?,
            };
            Ok(resource_exhausted(response))
        }
    }));
    listen::body_deadline(
        inner,
        call_timeout,
        |request| request.uri().path().starts_with("/grpc.reflection."),
        |timeout| {
            Status::deadline_exceeded(format!(
                "request message not received within {}s",
                timeout.as_secs_f64()
            ))
            .into_http()
        },
    )
}

/// The `grpc-timeout` header: digits and a unit (`H`, `M`, `S`, `m`, `u`, `n`).
fn client_timeout(headers: &http::HeaderMap) -> Option<Duration> {
    let text = headers.get("grpc-timeout")?.to_str().ok()?;
    if text.len() < 2 || text.len() > 9 {
        return None;
    }
    let (digits, unit) = text.split_at(text.len() - 1);
    let value: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(value * 3600),
        "M" => Duration::from_secs(value * 60),
        "S" => Duration::from_secs(value),
        "m" => Duration::from_millis(value),
        "u" => Duration::from_micros(value),
        "n" => Duration::from_nanos(value),
        _ => return None,
    })
}

/// tonic refuses a message over the receive limit with OUT_OF_RANGE; grpc-go (the Go server)
/// says RESOURCE_EXHAUSTED `grpc: received message larger than max (N vs. M)`.
fn resource_exhausted(response: http::Response<Body>) -> http::Response<Body> {
    const TONIC_TEXT: &str = "Error, decoded message length too large: found ";
    let headers = response.headers();
    if headers.get("grpc-status").map(|v| v.as_bytes()) != Some(b"11") {
        return response;
    }
    let Some(message) = headers
        .get("grpc-message")
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            percent_encoding::percent_decode_str(v)
                .decode_utf8_lossy()
                .into_owned()
        })
    else {
        return response;
    };
    let Some(rest) = message.strip_prefix(TONIC_TEXT) else {
        return response;
    };
    let numbers: Vec<&str> = rest
        .split(|c: char| !c.is_ascii_digit())
        .filter(|part| !part.is_empty())
        .collect();
    let text = match numbers.as_slice() {
        [found, limit] => format!("grpc: received message larger than max ({found} vs. {limit})"),
        _ => "grpc: received message larger than max".to_string(),
    };
    Status::resource_exhausted(text).into_http()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeouts_parse() {
        let parse = |text: &str| {
            let mut headers = http::HeaderMap::new();
            headers.insert("grpc-timeout", text.parse().unwrap());
            client_timeout(&headers)
        };
        assert_eq!(parse("5S"), Some(Duration::from_secs(5)));
        assert_eq!(parse("250m"), Some(Duration::from_millis(250)));
        assert_eq!(parse("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse("S"), None);
        assert_eq!(parse("123456789S"), None);
        assert_eq!(parse("5x"), None);
    }

    #[test]
    fn oversized_messages_are_resource_exhausted() {
        let tonic: http::Response<Body> = Status::out_of_range(
            "Error, decoded message length too large: found 5242885 bytes, the limit is: 4194304 bytes",
        )
        .into_http();
        let response = resource_exhausted(tonic);
        assert_eq!(response.headers()["grpc-status"], "8");
        let message = response.headers()["grpc-message"].to_str().unwrap();
        let message = percent_encoding::percent_decode_str(message).decode_utf8_lossy();
        assert_eq!(
            message,
            "grpc: received message larger than max (5242885 vs. 4194304)"
        );
        let other: http::Response<Body> = Status::out_of_range("page out of range").into_http();
        assert_eq!(resource_exhausted(other).headers()["grpc-status"], "11");
    }
}
