//! The gRPC transport: thin tonic adapters over the service layer, plus reflection and health.

use std::time::Duration;

use axum::body::Body;
use kuberay_api::proto::*;
use pbjson_types::Empty;
use tonic::{Request, Response, Status};
use tower::ServiceExt;
use tower::util::BoxCloneSyncService;

use crate::listen::{self, HttpService};

use crate::calls::Calls;
use crate::services::{
    CLUSTER_SERVICE, COMPUTE_TEMPLATE_SERVICE, RAY_JOB_SERVICE, RAY_JOB_SUBMISSION_SERVICE,
    RAY_SERVE_SERVICE, Services,
};

/// Largest message sent, like the Go server (grpc-go's default, math.MaxInt32). Answers are
/// bounded by what the Kubernetes API returns; the receive limit is `--grpc-max-receive-bytes`.
pub const MAX_SEND_BYTES: usize = i32::MAX as usize;

/// Implements every generated service trait by delegating to [`Services`] through [`Calls`].
#[derive(Clone)]
pub struct GrpcApi {
    services: Services,
    calls: Calls,
}

impl GrpcApi {
    pub fn new(services: Services, calls: Calls) -> Self {
        Self { services, calls }
    }
}

type Reply<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl compute_template_service_server::ComputeTemplateService for GrpcApi {
    async fn create_compute_template(
        &self,
        request: Request<CreateComputeTemplateRequest>,
    ) -> Reply<ComputeTemplate> {
        let svc = &self.services.compute_templates;
        let out = self
            .calls
            .run(
                COMPUTE_TEMPLATE_SERVICE,
                "CreateComputeTemplate",
                svc.create(request.into_inner()),
            )
            .await?;
        Ok(Response::new(out))
    }

    async fn get_compute_template(
        &self,
        request: Request<GetComputeTemplateRequest>,
    ) -> Reply<ComputeTemplate> {
        let svc = &self.services.compute_templates;
        let out = self
            .calls
            .run(
                COMPUTE_TEMPLATE_SERVICE,
                "GetComputeTemplate",
                svc.get(request.into_inner()),
            )
            .await?;
        Ok(Response::new(out))
    }

    async fn list_compute_templates(
        &self,
        request: Request<ListComputeTemplatesRequest>,
    ) -> Reply<ListComputeTemplatesResponse> {
        let svc = &self.services.compute_templates;
        let out = self
            .calls
            .run(
                COMPUTE_TEMPLATE_SERVICE,
                "ListComputeTemplates",
                svc.list(request.into_inner()),
            )
            .await?;
        Ok(Response::new(out))
    }

    async fn list_all_compute_templates(
        &self,
        request: Request<ListAllComputeTemplatesRequest>,
    ) -> Reply<ListAllComputeTemplatesResponse> {
        let svc = &self.services.compute_templates;
        let out = self
            .calls
            .run(
                COMPUTE_TEMPLATE_SERVICE,
                "ListAllComputeTemplates",
                svc.list_all(request.into_inner()),
            )
            .await?;
        Ok(Response::new(out))
    }

    async fn delete_compute_template(
        &self,
        request: Request<DeleteComputeTemplateRequest>,
    ) -> Reply<Empty> {
        let svc = &self.services.compute_templates;
        self.calls
            .run(
                COMPUTE_TEMPLATE_SERVICE,
                "DeleteComputeTemplate",
                svc.delete(request.into_inner()),
            )
            .await?;
        Ok(Response::new(Empty {}))
    }
}

#[tonic::async_trait]
impl cluster_service_server::ClusterService for GrpcApi {
    async fn create_cluster(&self, request: Request<CreateClusterRequest>) -> Reply<Cluster> {
        let svc = &self.services.clusters;
        let out = self
            .calls
            .run(
                CLUSTER_SERVICE,
                "CreateCluster",
                svc.create(request.into_inner()),
            )
            .await?;
        Ok(Response::new(out))
    }
    async fn get_cluster(&self, request: Request<GetClusterRequest>) -> Reply<Cluster> {
        let svc = &self.services.clusters;
        let out = self
            .calls
            .run(CLUSTER_SERVICE, "GetCluster", svc.get(request.into_inner()))
            .await?;
        Ok(Response::new(out))
    }
    async fn list_cluster(
        &self,
        request: Request<ListClustersRequest>,
    ) -> Reply<ListClustersResponse> {
        let svc = &self.services.clusters;
        let out = self
            .calls
            .run(
                CLUSTER_SERVICE,
                "ListCluster",
                svc.list(request.into_inner()),
            )
            .await?;
        Ok(Response::new(out))
    }
    async fn list_all_clusters(
        &self,
        request: Request<ListAllClustersRequest>,
    ) -> Reply<ListAllClustersResponse> {
        let svc = &self.services.clusters;
        let out = self
            .calls
            .run(
                CLUSTER_SERVICE,
                "ListAllClusters",
                svc.list_all(request.into_inner()),
            )
            .await?;
        Ok(Response::new(out))
    }
    async fn delete_cluster(&self, request: Request<DeleteClusterRequest>) -> Reply<Empty> {
        let svc = &self.services.clusters;
        self.calls
            .run(
                CLUSTER_SERVICE,
                "DeleteCluster",
                svc.delete(request.into_inner()),
            )
            .await?;
        Ok(Response::new(Empty {}))
    }
}

#[tonic::async_trait]
impl ray_job_service_server::RayJobService for GrpcApi {
    async fn create_ray_job(&self, request: Request<CreateRayJobRequest>) -> Reply<RayJob> {
        let svc = &self.services.jobs;
        let out = self
            .calls
            .run(
                RAY_JOB_SERVICE,
                "CreateRayJob",
                svc.create(request.into_inner()),
            )
            .await?;
        Ok(Response::new(out))
    }
    async fn get_ray_job(&self, request: Request<GetRayJobRequest>) -> Reply<RayJob> {
        let svc = &self.services.jobs;
        let out = self
            .calls
            .run(RAY_JOB_SERVICE, "GetRayJob", svc.get(request.into_inner()))
            .await?;
        Ok(Response::new(out))
    }
    async fn list_ray_jobs(
        &self,
        request: Request<ListRayJobsRequest>,
    ) -> Reply<ListRayJobsResponse> {
        let svc = &self.services.jobs;
        let out = self
            .calls
            .run(
                RAY_JOB_SERVICE,
                "ListRayJobs",
                svc.list(request.into_inner()),
            )
            .await?;
        Ok(Response::new(out))
    }
    async fn list_all_ray_jobs(
        &self,
        request: Request<ListAllRayJobsRequest>,
    ) -> Reply<ListAllRayJobsResponse> {
        let svc = &self.services.jobs;
        let out = self
            .calls
            .run(
                RAY_JOB_SERVICE,
                "ListAllRayJobs",
                svc.list_all(request.into_inner()),
            )
            .await?;
        Ok(Response::new(out))
    }
    async fn delete_ray_job(&self, request: Request<DeleteRayJobRequest>) -> Reply<Empty> {
        let svc = &self.services.jobs;
        self.calls
            .run(
                RAY_JOB_SERVICE,
                "DeleteRayJob",
                svc.delete(request.into_inner()),
            )
            .await?;
        Ok(Response::new(Empty {}))
    }
}

#[tonic::async_trait]
impl ray_serve_service_server::RayServeService for GrpcApi {
    async fn create_ray_service(
        &self,
        request: Request<CreateRayServiceRequest>,
    ) -> Reply<RayService> {
        let svc = &self.services.serve;
        let out = self
            .calls
            .run(
                RAY_SERVE_SERVICE,
                "CreateRayService",
                svc.create(request.into_inner()),
            )
            .await?;
        Ok(Response::new(out))
    }
    async fn update_ray_service(
        &self,
        request: Request<UpdateRayServiceRequest>,
    ) -> Reply<RayService> {
        let svc = &self.services.serve;
        let out = self
            .calls
            .run(
                RAY_SERVE_SERVICE,
                "UpdateRayService",
                svc.update(request.into_inner()),
            )
            .await?;
        Ok(Response::new(out))
    }
    async fn get_ray_service(&self, request: Request<GetRayServiceRequest>) -> Reply<RayService> {
        let svc = &self.services.serve;
        let out = self
            .calls
            .run(
                RAY_SERVE_SERVICE,
                "GetRayService",
                svc.get(request.into_inner()),
            )
            .await?;
        Ok(Response::new(out))
    }
    async fn list_ray_services(
        &self,
        request: Request<ListRayServicesRequest>,
    ) -> Reply<ListRayServicesResponse> {
        let svc = &self.services.serve;
        let out = self
            .calls
            .run(
                RAY_SERVE_SERVICE,
                "ListRayServices",
                svc.list(request.into_inner()),
            )
            .await?;
        Ok(Response::new(out))
    }
    async fn list_all_ray_services(
        &self,
        request: Request<ListAllRayServicesRequest>,
    ) -> Reply<ListAllRayServicesResponse> {
        let svc = &self.services.serve;
        let out = self
            .calls
            .run(
                RAY_SERVE_SERVICE,
                "ListAllRayServices",
                svc.list_all(request.into_inner()),
            )
            .await?;
        Ok(Response::new(out))
    }
    async fn delete_ray_service(&self, request: Request<DeleteRayServiceRequest>) -> Reply<Empty> {
        let svc = &self.services.serve;
        self.calls
            .run(
                RAY_SERVE_SERVICE,
                "DeleteRayService",
                svc.delete(request.into_inner()),
            )
            .await?;
        Ok(Response::new(Empty {}))
    }
}

#[tonic::async_trait]
impl ray_job_submission_service_server::RayJobSubmissionService for GrpcApi {
    async fn submit_ray_job(
        &self,
        request: Request<SubmitRayJobRequest>,
    ) -> Reply<SubmitRayJobReply> {
        let svc = &self.services.job_submissions;
        let out = self
            .calls
            .run(
                RAY_JOB_SUBMISSION_SERVICE,
                "SubmitRayJob",
                svc.submit(request.into_inner()),
            )
            .await?;
        Ok(Response::new(out))
    }
    async fn get_job_details(
        &self,
        request: Request<GetJobDetailsRequest>,
    ) -> Reply<JobSubmissionInfo> {
        let svc = &self.services.job_submissions;
        let out = self
            .calls
            .run(
                RAY_JOB_SUBMISSION_SERVICE,
                "GetJobDetails",
                svc.get(request.into_inner()),
            )
            .await?;
        Ok(Response::new(out))
    }
    async fn get_job_log(&self, request: Request<GetJobLogRequest>) -> Reply<GetJobLogReply> {
        let svc = &self.services.job_submissions;
        let out = self
            .calls
            .run(
                RAY_JOB_SUBMISSION_SERVICE,
                "GetJobLog",
                svc.log(request.into_inner()),
            )
            .await?;
        Ok(Response::new(out))
    }
    async fn list_job_details(
        &self,
        request: Request<ListJobDetailsRequest>,
    ) -> Reply<ListJobSubmissionInfo> {
        let svc = &self.services.job_submissions;
        let out = self
            .calls
            .run(
                RAY_JOB_SUBMISSION_SERVICE,
                "ListJobDetails",
                svc.list(request.into_inner()),
            )
            .await?;
        Ok(Response::new(out))
    }
    async fn stop_ray_job(&self, request: Request<StopRayJobSubmissionRequest>) -> Reply<Empty> {
        let svc = &self.services.job_submissions;
        self.calls
            .run(
                RAY_JOB_SUBMISSION_SERVICE,
                "StopRayJob",
                svc.stop(request.into_inner()),
            )
            .await?;
        Ok(Response::new(Empty {}))
    }
    async fn delete_ray_job(
        &self,
        request: Request<DeleteRayJobSubmissionRequest>,
    ) -> Reply<Empty> {
        let svc = &self.services.job_submissions;
        self.calls
            .run(
                RAY_JOB_SUBMISSION_SERVICE,
                "DeleteRayJob",
                svc.delete(request.into_inner()),
            )
            .await?;
        Ok(Response::new(Empty {}))
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
pub fn service(routes: tonic::service::Routes, call_timeout: Duration) -> HttpService {
    let inner: HttpService =
        BoxCloneSyncService::new(ServiceExt::<http::Request<Body>>::map_response(
            routes,
            |response: http::Response<tonic::body::Body>| response.map(Body::new),
        ));
    let inner = BoxCloneSyncService::new(tower::service_fn(move |request: http::Request<Body>| {
        let inner = inner.clone();
        async move {
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
