//! RayJobService: Ray jobs as `ray.io/v1` RayJob objects.

use pbjson_types::Empty;

use kuberay_api::proto::{
    CreateRayJobRequest, DeleteRayJobRequest, GetRayJobRequest, ListAllRayJobsRequest,
    ListAllRayJobsResponse, ListRayJobsRequest, ListRayJobsResponse, RayJob,
};
use kuberay_core::{CoreError, crd, job};

use super::clusters::{build_error, invalid};
use super::kind::{ObjectKind, ObjectService};
use super::objects;
use crate::error::ApiError;

impl ObjectKind for crd::RayJob {
    type Object = crd::RayJob;
    type Converted = RayJob;
    const NAMING: objects::Naming = objects::Naming {
        field: "Job name",
        empty_name: "job name is empty. Please specify a valid value.",
        empty_namespace: "job namespace is empty. Please specify a valid value.",
    };
    const TEXTS: objects::ObjectTexts = objects::ObjectTexts {
        kind: "RayJob",
        // The Go server's wording says RayCluster here too.
        not_managed_kind: "RayCluster",
        noun: "Job",
        get_failed: "Get Job failed",
        delete_wrap: "Get job failure",
        delete_failed: "Failed to delete cluster",
    };

    fn convert(object: &crd::RayJob) -> Result<RayJob, CoreError> {
        job::from_ray_job(object)
    }
}

/// RayJobService.
pub type Jobs = ObjectService<crd::RayJob>;

impl Jobs {
    pub async fn create(&self, request: CreateRayJobRequest) -> Result<RayJob, ApiError> {
        const WRAP: &str = "Create Job failed.";
        let CreateRayJobRequest {
            job: body,
            namespace,
        } = request;
        let job = job::validate_create(&namespace, body.as_ref())
            .map_err(|e| invalid(e).wrap("Validate job request failed."))?;
        objects::in_scope(&self.scope, &namespace)?;
        // The Go server names the job by its (usually empty) job_id in these texts.
        let owner = format!("{namespace}/{}", job.job_id);
        let templates = self
            .templates(&namespace, job.cluster_spec.as_ref(), &owner, WRAP)
            .await?;
        let object = job::to_ray_job(job, &templates)
            .map_err(|e| build_error(e, "Failed to create a Ray Job").wrap(WRAP))?;
        drop(body);
        let failed = format!("Failed to create a job for ({owner})");
        self.create_object(&namespace, object, &failed, WRAP).await
    }

    pub async fn get(&self, request: GetRayJobRequest) -> Result<RayJob, ApiError> {
        let GetRayJobRequest { name, namespace } = request;
        let job = self
            .checked_read(&name, &namespace, "Get cluster failed.")
            .await?;
        Ok(job.view.unpack())
    }

    pub async fn list(&self, request: ListRayJobsRequest) -> Result<ListRayJobsResponse, ApiError> {
        let ListRayJobsRequest {
            namespace,
            r#continue,
            limit,
        } = request;
        self.check_namespace(&namespace)?;
        let (jobs, next) = self.list_in(Some(&namespace), limit, &r#continue).await?;
        Ok(ListRayJobsResponse {
            jobs,
            r#continue: next,
        })
    }

    pub async fn list_all(
        &self,
        request: ListAllRayJobsRequest,
    ) -> Result<ListAllRayJobsResponse, ApiError> {
        let ListAllRayJobsRequest { r#continue, limit } = request;
        let (jobs, next) = self
            .list_in(self.scope.list_all_namespace(), limit, &r#continue)
            .await?;
        Ok(ListAllRayJobsResponse {
            jobs,
            r#continue: next,
        })
    }

    pub async fn delete(&self, request: DeleteRayJobRequest) -> Result<Empty, ApiError> {
        self.checked_delete(&request.name, &request.namespace).await
    }

    async fn list_in(
        &self,
        namespace: Option<&str>,
        limit: i64,
        continue_token: &str,
    ) -> Result<(Vec<RayJob>, String), ApiError> {
        let (items, next) = self
            .page(namespace, limit, continue_token)
            .await
            .map_err(|error| {
                ApiError::from_kube(&error, |text| {
                    ApiError::plain(format!(
                        "List RayCluster failed in {} with Limit {limit} and ContinueToken {continue_token}: {text}",
                        namespace.unwrap_or_default(),
                    ))
                })
                .wrap("List jobs failed.")
            })?;
        let jobs = items.iter().map(|job| job.unpack()).collect();
        Ok((jobs, next))
    }
}
