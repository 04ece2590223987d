//! The gRPC transport: thin tonic adapters over the service layer, plus reflection and health.

use kuberay_api::proto::*;
use pbjson_types::Empty;
use tonic::{Request, Response, Status};

use crate::calls::Calls;
use crate::services::{
    CLUSTER_SERVICE, COMPUTE_TEMPLATE_SERVICE, RAY_JOB_SERVICE, RAY_JOB_SUBMISSION_SERVICE,
    RAY_SERVE_SERVICE, Services,
};

/// Largest message accepted or sent, like the Go server (math.MaxInt32).
pub const MAX_MESSAGE_BYTES: usize = i32::MAX as usize;

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

/// Builds the tonic router: the five API services (with the Go server's message-size limit),
/// reflection v1 and v1alpha, and `grpc.health.v1`.
pub fn router(
    api: GrpcApi,
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
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES),
        )
        .add_service(
            ComputeTemplateServiceServer::new(api.clone())
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES),
        )
        .add_service(
            RayJobServiceServer::new(api.clone())
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES),
        )
        .add_service(
            RayServeServiceServer::new(api.clone())
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES),
        )
        .add_service(
            RayJobSubmissionServiceServer::new(api)
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES),
        )
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha);
    Ok((routes, health_reporter))
}
