//! The service layer: one implementation of every RPC, called in-process by both the gRPC server
//! and the HTTP/JSON gateway. It validates and converts through `kuberay_core` and talks to
//! Kubernetes only through [`objects::KubeIo`].

mod clusters;
mod compute_templates;
mod job_submissions;
mod jobs;
mod kind;
mod objects;
mod ray_services;

pub use clusters::Clusters;
pub use compute_templates::ComputeTemplates;
pub use job_submissions::JobSubmissions;
pub use jobs::Jobs;
pub use objects::{KubeIo, LeftOut};
pub use ray_services::RayServices;

use tonic::Code;

use crate::error::ApiError;

/// gRPC service names, as clients address them.
pub const CLUSTER_SERVICE: &str = "proto.ClusterService";
pub const COMPUTE_TEMPLATE_SERVICE: &str = "proto.ComputeTemplateService";
pub const RAY_JOB_SERVICE: &str = "proto.RayJobService";
pub const RAY_SERVE_SERVICE: &str = "proto.RayServeService";
pub const RAY_JOB_SUBMISSION_SERVICE: &str = "proto.RayJobSubmissionService";

/// The five served services (ImageTemplateService is defined in the protos but not served).
pub const SERVED_SERVICES: [&str; 5] = [
    CLUSTER_SERVICE,
    COMPUTE_TEMPLATE_SERVICE,
    RAY_JOB_SERVICE,
    RAY_SERVE_SERVICE,
    RAY_JOB_SUBMISSION_SERVICE,
];

/// Every service implementation, sharing one Kubernetes client.
#[derive(Clone)]
pub struct Services {
    pub clusters: Clusters,
    pub compute_templates: ComputeTemplates,
    pub jobs: Jobs,
    pub job_submissions: JobSubmissions,
    pub ray_services: RayServices,
}

impl Services {
    pub fn new(
        io: KubeIo,
        dashboards: crate::dashboard::Dashboards,
        scope: kuberay_core::scope::NamespaceScope,
    ) -> Self {
        let clusters = Clusters::new(io.clone(), scope.clone());
        Self {
            job_submissions: JobSubmissions::new(clusters.clone(), dashboards),
            clusters,
            compute_templates: ComputeTemplates::new(io.clone(), scope.clone()),
            jobs: Jobs::new(io.clone(), scope.clone()),
            ray_services: RayServices::new(io, scope),
        }
    }
}

/// The answer of an RPC whose implementation has not landed yet.
pub fn not_yet_implemented(service: &str, method: &str) -> ApiError {
    ApiError::with_code(
        Code::Unimplemented,
        format!("method {method} of service {service} is not implemented by this server yet"),
    )
}
