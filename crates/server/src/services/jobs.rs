//! RayJobService: Ray jobs as `ray.io/v1` RayJob objects.

use pbjson_types::Empty;

use kuberay_api::proto::{
    CreateRayJobRequest, DeleteRayJobRequest, GetRayJobRequest, ListAllRayJobsRequest,
    ListAllRayJobsResponse, ListRayJobsRequest, ListRayJobsResponse, RayJob,
};
use kuberay_core::crd;
use kuberay_core::packed::Packed;
use kuberay_core::{cluster, job};

use kuberay_core::scope::NamespaceScope;

use super::clusters::{build_error, invalid};
use super::objects::{self, Held};
use crate::error::{ApiError, is_already_exists, kube_text};

const NAMING: objects::Naming = objects::Naming {
    field: "Job name",
    empty_name: "job name is empty. Please specify a valid value.",
    empty_namespace: "job namespace is empty. Please specify a valid value.",
};
const KIND: &str = "RayJob";
const TEXTS: objects::ObjectTexts = objects::ObjectTexts {
    kind: KIND,
    // The Go server's wording says RayCluster here too.
    not_managed_kind: "RayCluster",
    noun: "Job",
    get_failed: "Get Job failed",
    delete_wrap: "Get job failure",
    delete_failed: "Failed to delete cluster",
};

#[derive(Clone)]
pub struct Jobs {
    io: objects::KubeIo,
    scope: NamespaceScope,
}

impl Jobs {
    pub fn new(io: objects::KubeIo, scope: NamespaceScope) -> Self {
        Self { io, scope }
    }

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
        let templates = match &job.cluster_spec {
            Some(spec) => {
                self.io
                    .compute_templates(
                        &namespace,
                        &cluster::compute_template_names(spec),
                        &owner,
                        WRAP,
                    )
                    .await?
            }
            None => Default::default(),
        };
        let object = job::to_ray_job(job, &templates)
            .map_err(|e| build_error(e, "Failed to create a Ray Job").wrap(WRAP))?;
        drop(body);
        let created = self.io.create(&namespace, object).await.map_err(|error| {
            let text = format!("Failed to create a job for ({owner})");
            if is_already_exists(&error) {
                ApiError::already_exists(&format!("{text}: {}", kube_text(&error)))
            } else {
                ApiError::from_kube(&error, |cause| ApiError::internal(cause, &text))
            }
            .wrap(WRAP)
        })?;
        to_api(&created)
    }

    pub async fn get(&self, request: GetRayJobRequest) -> Result<RayJob, ApiError> {
        let GetRayJobRequest { name, namespace } = request;
        NAMING.check(&self.scope, &name, &namespace)?;
        let job = self
            .read(&name, &namespace)
            .await
            .map_err(|e| e.wrap("Get cluster failed."))?;
        Ok(job.view.unpack())
    }

    pub async fn list(&self, request: ListRayJobsRequest) -> Result<ListRayJobsResponse, ApiError> {
        let ListRayJobsRequest {
            namespace,
            r#continue,
            limit,
        } = request;
        NAMING.check_namespace(&self.scope, &namespace)?;
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
        let DeleteRayJobRequest { name, namespace } = request;
        NAMING.check(&self.scope, &name, &namespace)?;
        self.io
            .delete_managed::<crd::RayJob>(&namespace, &name, &TEXTS)
            .await
            .map(|()| Empty {})
    }

    async fn list_in(
        &self,
        namespace: Option<&str>,
        limit: i64,
        continue_token: &str,
    ) -> Result<(Vec<RayJob>, String), ApiError> {
        let (items, next) = self
            .io
            .list_page::<crd::RayJob>(namespace, limit, continue_token)
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

    async fn read(&self, name: &str, namespace: &str) -> Result<Held<Packed<RayJob>>, ApiError> {
        self.io.read::<crd::RayJob>(namespace, name, &TEXTS).await
    }
}

fn to_api(object: &crd::RayJob) -> Result<RayJob, ApiError> {
    job::from_ray_job(object).map_err(|error| {
        let name = object.metadata.name.as_deref().unwrap_or_default();
        let namespace = object.metadata.namespace.as_deref().unwrap_or_default();
        objects::unconvertible(KIND, namespace, name, error)
    })
}
