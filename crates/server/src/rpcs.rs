//! Every RPC of the API, declared once.
//!
//! The table below names, for each served method, its service, the tonic trait method, its
//! request and answer types, the service-layer handler and what it needs in Kubernetes RBAC terms
//! ([`Rule`]: verb and resource, in the request's namespace). From it come the gRPC services (the
//! tonic traits implemented on [`GrpcApi`]), the HTTP gateway's calls ([`call_json`]; the HTTP
//! routes themselves come from the protos' `google.api.http` options), the metrics series
//! ([`RPCS`]) and the authorization of each call (`--kubernetes-auth`). Every call, either way,
//! runs through [`CallPolicy`] (authorization, deadline, metrics, logging).

use std::future::Future;

use kuberay_api::proto::*;
use pbjson_types::Empty;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tonic::{Code, Request, Response, Status};

use std::sync::Arc;

use crate::access::{Identity, Rule};
use crate::call_policy::CallPolicy;
use crate::error::ApiError;
use crate::grpc::GrpcApi;
use crate::services::{
    CLUSTER_SERVICE, COMPUTE_TEMPLATE_SERVICE, RAY_JOB_SERVICE, RAY_JOB_SUBMISSION_SERVICE,
    RAY_SERVE_SERVICE, Services, not_yet_implemented,
};

macro_rules! rpcs {
    ($(
        $service:ident: $server:ident::$tonic_trait:ident => $field:ident {
            $( $method:literal: $tonic_fn:ident($request:ty) -> $answer:ty = $handler:ident, $rule:expr; )*
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
                        let identity = request.extensions().get::<Arc<Identity>>().cloned();
                        let request = request.into_inner();
                        let services = self.services();
                        let call_policy = self.call_policy();
                        // Boxed: the handlers' futures are large, and every layer above
                        // would otherwise hold them inline.
                        let span = CallPolicy::span($service, $method, request.target());
                        let answer = call_policy
                            .run($service, $method, span, Box::pin(async {
                                call_policy
                                    .authorize(identity.as_ref(), $rule, request.target().0)
                                    .await?;
                                services.$field.$handler(request).await
                            }))
                            .await?;
                        Ok(Response::new(answer))
                    }
                )*
            }
        )*

        /// (service, method) of every served RPC, in declaration order.
        pub const RPCS: &[(&str, &str)] = &[$($(($service, $method),)*)*];

        /// (service, method, rule) of every served RPC.
        pub const RULES: &[(&str, &str, Rule)] = &[$($(($service, $method, $rule),)*)*];

        /// Runs the RPC `method` of `service` on a request message in proto3 JSON and answers
        /// the reply in proto3 JSON (the HTTP gateway's call).
        pub async fn call_json(
            services: &Services,
            call_policy: &CallPolicy,
            service: &'static str,
            method: &'static str,
            message: Value,
            identity: Option<Arc<Identity>>,
        ) -> Result<Vec<u8>, ApiError> {
            match (service, method) {
                $($(
                    ($service, $method) => {
                        json(call_policy, service, method, message, |request: $request| {
                            Box::pin(async move {
                                call_policy
                                    .authorize(identity.as_ref(), $rule, request.target().0)
                                    .await?;
                                services.$field.$handler(request).await
                            })
                        })
                        .await
                    }
                )*)*
                _ => {
                    call_policy
                        .run(service, method, CallPolicy::span(service, method, ("", "")), async {
                            Err::<(), _>(not_yet_implemented(service, method))
                        })
                        .await?;
                    unreachable!("an unimplemented call always fails")
                }
            }
        }
    };
}

/// Compute templates are ConfigMaps; clusters, jobs and services their ray.io kinds; job
/// submissions go through a cluster's dashboard, so they are verbs on `rayclusters/proxy`.
const CONFIGMAPS: (&str, &str) = ("", "configmaps");
const CLUSTERS: (&str, &str) = ("ray.io", "rayclusters");
const JOBS: (&str, &str) = ("ray.io", "rayjobs");
const SERVICES: (&str, &str) = ("ray.io", "rayservices");

const fn may(verb: &'static str, (group, resource): (&'static str, &'static str)) -> Rule {
    Rule::new(verb, group, resource)
}

const fn dashboard(verb: &'static str) -> Rule {
    may(verb, CLUSTERS).sub("proxy")
}

rpcs! {
    COMPUTE_TEMPLATE_SERVICE: compute_template_service_server::ComputeTemplateService
        => compute_templates {
        "CreateComputeTemplate":
            create_compute_template(CreateComputeTemplateRequest) -> ComputeTemplate = create,
            may("create", CONFIGMAPS);
        "GetComputeTemplate": get_compute_template(GetComputeTemplateRequest) -> ComputeTemplate = get,
            may("get", CONFIGMAPS);
        "ListComputeTemplates":
            list_compute_templates(ListComputeTemplatesRequest) -> ListComputeTemplatesResponse = list,
            may("list", CONFIGMAPS);
        "ListAllComputeTemplates":
            list_all_compute_templates(ListAllComputeTemplatesRequest)
                -> ListAllComputeTemplatesResponse = list_all, may("list", CONFIGMAPS);
        "DeleteComputeTemplate": delete_compute_template(DeleteComputeTemplateRequest) -> Empty = delete,
            may("delete", CONFIGMAPS);
    }
    CLUSTER_SERVICE: cluster_service_server::ClusterService => clusters {
        "CreateCluster": create_cluster(CreateClusterRequest) -> Cluster = create, may("create", CLUSTERS);
        "GetCluster": get_cluster(GetClusterRequest) -> Cluster = get, may("get", CLUSTERS);
        "ListCluster": list_cluster(ListClustersRequest) -> ListClustersResponse = list, may("list", CLUSTERS);
        "ListAllClusters": list_all_clusters(ListAllClustersRequest) -> ListAllClustersResponse = list_all,
            may("list", CLUSTERS);
        "DeleteCluster": delete_cluster(DeleteClusterRequest) -> Empty = delete, may("delete", CLUSTERS);
    }
    RAY_JOB_SERVICE: ray_job_service_server::RayJobService => jobs {
        "CreateRayJob": create_ray_job(CreateRayJobRequest) -> RayJob = create, may("create", JOBS);
        "GetRayJob": get_ray_job(GetRayJobRequest) -> RayJob = get, may("get", JOBS);
        "ListRayJobs": list_ray_jobs(ListRayJobsRequest) -> ListRayJobsResponse = list, may("list", JOBS);
        "ListAllRayJobs": list_all_ray_jobs(ListAllRayJobsRequest) -> ListAllRayJobsResponse = list_all,
            may("list", JOBS);
        "DeleteRayJob": delete_ray_job(DeleteRayJobRequest) -> Empty = delete, may("delete", JOBS);
    }
    RAY_SERVE_SERVICE: ray_serve_service_server::RayServeService => ray_services {
        "CreateRayService": create_ray_service(CreateRayServiceRequest) -> RayService = create,
            may("create", SERVICES);
        "UpdateRayService": update_ray_service(UpdateRayServiceRequest) -> RayService = update,
            may("update", SERVICES);
        "GetRayService": get_ray_service(GetRayServiceRequest) -> RayService = get, may("get", SERVICES);
        "ListRayServices": list_ray_services(ListRayServicesRequest) -> ListRayServicesResponse = list,
            may("list", SERVICES);
        "ListAllRayServices":
            list_all_ray_services(ListAllRayServicesRequest) -> ListAllRayServicesResponse = list_all,
            may("list", SERVICES);
        "DeleteRayService": delete_ray_service(DeleteRayServiceRequest) -> Empty = delete,
            may("delete", SERVICES);
    }
    RAY_JOB_SUBMISSION_SERVICE: ray_job_submission_service_server::RayJobSubmissionService
        => job_submissions {
        "SubmitRayJob": submit_ray_job(SubmitRayJobRequest) -> SubmitRayJobReply = submit,
            dashboard("create");
        "GetJobDetails": get_job_details(GetJobDetailsRequest) -> JobSubmissionInfo = get,
            dashboard("get");
        "GetJobLog": get_job_log(GetJobLogRequest) -> GetJobLogReply = log, dashboard("get");
        "ListJobDetails": list_job_details(ListJobDetailsRequest) -> ListJobSubmissionInfo = list,
            dashboard("get");
        "StopRayJob": stop_ray_job(StopRayJobSubmissionRequest) -> Empty = stop, dashboard("update");
        "DeleteRayJob": delete_ray_job(DeleteRayJobSubmissionRequest) -> Empty = delete,
            dashboard("delete");
    }
}

/// What a request acts on: its namespace (empty for the calls across all namespaces) and the
/// object's name (empty for lists; a job submission's cluster).
trait Target {
    fn target(&self) -> (&str, &str);
}

macro_rules! targets {
    ($($request:ty => |$r:ident| $target:expr;)*) => {
        $(impl Target for $request {
            fn target(&self) -> (&str, &str) {
                let $r = self;
                $target
            }
        })*
    };
}

fn name_of<T>(object: &Option<T>, name: impl Fn(&T) -> &str) -> &str {
    object.as_ref().map_or("", name)
}

targets! {
    CreateComputeTemplateRequest => |r| (&r.namespace, name_of(&r.compute_template, |t| &t.name));
    GetComputeTemplateRequest => |r| (&r.namespace, &r.name);
    ListComputeTemplatesRequest => |r| (&r.namespace, "");
    ListAllComputeTemplatesRequest => |_r| ("", "");
    DeleteComputeTemplateRequest => |r| (&r.namespace, &r.name);
    CreateClusterRequest => |r| (&r.namespace, name_of(&r.cluster, |c| &c.name));
    GetClusterRequest => |r| (&r.namespace, &r.name);
    ListClustersRequest => |r| (&r.namespace, "");
    ListAllClustersRequest => |_r| ("", "");
    DeleteClusterRequest => |r| (&r.namespace, &r.name);
    CreateRayJobRequest => |r| (&r.namespace, name_of(&r.job, |j| &j.name));
    GetRayJobRequest => |r| (&r.namespace, &r.name);
    ListRayJobsRequest => |r| (&r.namespace, "");
    ListAllRayJobsRequest => |_r| ("", "");
    DeleteRayJobRequest => |r| (&r.namespace, &r.name);
    CreateRayServiceRequest => |r| (&r.namespace, name_of(&r.service, |s| &s.name));
    UpdateRayServiceRequest => |r| (&r.namespace, &r.name);
    GetRayServiceRequest => |r| (&r.namespace, &r.name);
    ListRayServicesRequest => |r| (&r.namespace, "");
    ListAllRayServicesRequest => |_r| ("", "");
    DeleteRayServiceRequest => |r| (&r.namespace, &r.name);
    SubmitRayJobRequest => |r| (&r.namespace, &r.clustername);
    GetJobDetailsRequest => |r| (&r.namespace, &r.clustername);
    GetJobLogRequest => |r| (&r.namespace, &r.clustername);
    ListJobDetailsRequest => |r| (&r.namespace, &r.clustername);
    StopRayJobSubmissionRequest => |r| (&r.namespace, &r.clustername);
    DeleteRayJobSubmissionRequest => |r| (&r.namespace, &r.clustername);
}

/// Decodes the request from proto3 JSON, runs the handler through [`CallPolicy`] and encodes the
/// answer.
async fn json<Req, Resp, F, Fut>(
    call_policy: &CallPolicy,
    service: &'static str,
    method: &'static str,
    message: Value,
    handler: F,
) -> Result<Vec<u8>, ApiError>
where
    Req: DeserializeOwned + Target,
    Resp: Serialize,
    F: FnOnce(Req) -> Fut,
    Fut: Future<Output = Result<Resp, ApiError>>,
{
    let request: Req = serde_json::from_value(message)
        .map_err(|e| ApiError::with_code(Code::InvalidArgument, e.to_string()))?;
    let span = CallPolicy::span(service, method, request.target());
    let answer = call_policy
        .run(service, method, span, handler(request))
        .await?;
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
