//! Every RPC of the API, declared once.
//!
//! The table below names, for each served method, its service, the tonic trait method, its
//! request and answer types and the service-layer handler. From it come the gRPC services (the
//! tonic traits implemented on [`GrpcApi`]), the HTTP gateway's calls ([`call_json`]; the HTTP
//! routes themselves come from the protos' `google.api.http` options) and the metrics series
//! ([`RPCS`]). Every call, either way, runs through [`Calls`] (deadline, metrics, logging).

use std::future::Future;

use kuberay_api::proto::*;
use pbjson_types::Empty;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tonic::{Code, Request, Response, Status};

use crate::calls::Calls;
use crate::error::ApiError;
use crate::grpc::GrpcApi;
use crate::services::{
    CLUSTER_SERVICE, COMPUTE_TEMPLATE_SERVICE, RAY_JOB_SERVICE, RAY_JOB_SUBMISSION_SERVICE,
    RAY_SERVE_SERVICE, Services, not_yet_implemented,
};

macro_rules! rpcs {
    ($(
        $service:ident: $server:ident::$tonic_trait:ident => $field:ident {
            $( $method:literal: $tonic_fn:ident($request:ty) -> $answer:ty = $handler:ident; )*
        }
    )*) => {
        $(
            #[tonic::async_trait]
            impl $server::$tonic_trait for GrpcApi {
                $(
                    async fn $tonic_fn(
                        &self,
                        request: Request<$request>,
                    ) -> Result<Response<$answer>, Status> {
                        let services = self.services();
                        let answer = self
                            .calls()
                            .run(
                                $service,
                                $method,
                                services.$field.$handler(request.into_inner()),
                            )
                            .await?;
                        Ok(Response::new(answer))
                    }
                )*
            }
        )*

        /// (service, method) of every served RPC, in declaration order.
        pub const RPCS: &[(&str, &str)] = &[$($(($service, $method),)*)*];

        /// Runs the RPC `method` of `service` on a request message in proto3 JSON and answers
        /// the reply in proto3 JSON (the HTTP gateway's call).
        pub async fn call_json(
            services: &Services,
            calls: &Calls,
            service: &'static str,
            method: &'static str,
            message: Value,
        ) -> Result<Vec<u8>, ApiError> {
            match (service, method) {
                $($(
                    ($service, $method) => {
                        json(calls, service, method, message, |request: $request| {
                            services.$field.$handler(request)
                        })
                        .await
                    }
                )*)*
                _ => {
                    calls
                        .run(service, method, async {
                            Err::<(), _>(not_yet_implemented(service, method))
                        })
                        .await?;
                    unreachable!("an unimplemented call always fails")
                }
            }
        }
    };
}

rpcs! {
    COMPUTE_TEMPLATE_SERVICE: compute_template_service_server::ComputeTemplateService
        => compute_templates {
        "CreateComputeTemplate":
            create_compute_template(CreateComputeTemplateRequest) -> ComputeTemplate = create;
        "GetComputeTemplate": get_compute_template(GetComputeTemplateRequest) -> ComputeTemplate = get;
        "ListComputeTemplates":
            list_compute_templates(ListComputeTemplatesRequest) -> ListComputeTemplatesResponse = list;
        "ListAllComputeTemplates":
            list_all_compute_templates(ListAllComputeTemplatesRequest)
                -> ListAllComputeTemplatesResponse = list_all;
        "DeleteComputeTemplate": delete_compute_template(DeleteComputeTemplateRequest) -> Empty = delete;
    }
    CLUSTER_SERVICE: cluster_service_server::ClusterService => clusters {
        "CreateCluster": create_cluster(CreateClusterRequest) -> Cluster = create;
        "GetCluster": get_cluster(GetClusterRequest) -> Cluster = get;
        "ListCluster": list_cluster(ListClustersRequest) -> ListClustersResponse = list;
        "ListAllClusters": list_all_clusters(ListAllClustersRequest) -> ListAllClustersResponse = list_all;
        "DeleteCluster": delete_cluster(DeleteClusterRequest) -> Empty = delete;
    }
    RAY_JOB_SERVICE: ray_job_service_server::RayJobService => jobs {
        "CreateRayJob": create_ray_job(CreateRayJobRequest) -> RayJob = create;
        "GetRayJob": get_ray_job(GetRayJobRequest) -> RayJob = get;
        "ListRayJobs": list_ray_jobs(ListRayJobsRequest) -> ListRayJobsResponse = list;
        "ListAllRayJobs": list_all_ray_jobs(ListAllRayJobsRequest) -> ListAllRayJobsResponse = list_all;
        "DeleteRayJob": delete_ray_job(DeleteRayJobRequest) -> Empty = delete;
    }
    RAY_SERVE_SERVICE: ray_serve_service_server::RayServeService => serve {
        "CreateRayService": create_ray_service(CreateRayServiceRequest) -> RayService = create;
        "UpdateRayService": update_ray_service(UpdateRayServiceRequest) -> RayService = update;
        "GetRayService": get_ray_service(GetRayServiceRequest) -> RayService = get;
        "ListRayServices": list_ray_services(ListRayServicesRequest) -> ListRayServicesResponse = list;
        "ListAllRayServices":
            list_all_ray_services(ListAllRayServicesRequest) -> ListAllRayServicesResponse = list_all;
        "DeleteRayService": delete_ray_service(DeleteRayServiceRequest) -> Empty = delete;
    }
    RAY_JOB_SUBMISSION_SERVICE: ray_job_submission_service_server::RayJobSubmissionService
        => job_submissions {
        "SubmitRayJob": submit_ray_job(SubmitRayJobRequest) -> SubmitRayJobReply = submit;
        "GetJobDetails": get_job_details(GetJobDetailsRequest) -> JobSubmissionInfo = get;
        "GetJobLog": get_job_log(GetJobLogRequest) -> GetJobLogReply = log;
        "ListJobDetails": list_job_details(ListJobDetailsRequest) -> ListJobSubmissionInfo = list;
        "StopRayJob": stop_ray_job(StopRayJobSubmissionRequest) -> Empty = stop;
        "DeleteRayJob": delete_ray_job(DeleteRayJobSubmissionRequest) -> Empty = delete;
    }
}

/// Decodes the request from proto3 JSON, runs the handler through [`Calls`] and encodes the
/// answer.
async fn json<Req, Resp, F, Fut>(
    calls: &Calls,
    service: &'static str,
    method: &'static str,
    message: Value,
    handler: F,
) -> Result<Vec<u8>, ApiError>
where
    Req: DeserializeOwned,
    Resp: Serialize,
    F: FnOnce(Req) -> Fut,
    Fut: Future<Output = Result<Resp, ApiError>>,
{
    let request: Req = serde_json::from_value(message)
        .map_err(|e| ApiError::with_code(Code::InvalidArgument, e.to_string()))?;
    let answer = calls.run(service, method, handler(request)).await?;
    Ok(serde_json::to_vec(&answer).expect("API messages always serialise"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every RPC with an HTTP binding in the protos is in the table, and the other way round
    /// (each service's methods are listed once).
    #[test]
    fn the_table_covers_the_http_routes() {
        use std::collections::BTreeSet;
        let table: BTreeSet<_> = RPCS.iter().copied().collect();
        assert_eq!(table.len(), RPCS.len(), "an RPC is declared twice");
        let routed: BTreeSet<_> = kuberay_api::routes::ROUTES
            .iter()
            .filter(|r| crate::services::SERVED_SERVICES.contains(&r.service))
            .map(|r| (r.service, r.method))
            .collect();
        assert_eq!(table, routed);
    }
}
