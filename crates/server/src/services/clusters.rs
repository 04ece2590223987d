//! ClusterService: Ray clusters as `ray.io/v1` RayCluster objects.

use pbjson_types::Empty;
use std::collections::BTreeMap;
use std::sync::Arc;

use kuberay_api::proto::{
    Cluster, CreateClusterRequest, DeleteClusterRequest, GetClusterRequest, ListAllClustersRequest,
    ListAllClustersResponse, ListClustersRequest, ListClustersResponse,
};
use kuberay_core::cluster::ClusterView;
use kuberay_core::crd::RayCluster;
use kuberay_core::{CoreError, cluster, events};

use super::kind::{ObjectKind, ObjectService};
use super::objects;
use crate::error::ApiError;

const KIND: &str = "RayCluster";

impl ObjectKind for RayCluster {
    type Object = RayCluster;
    type Converted = Cluster;
    const NAMING: objects::Naming = objects::Naming {
        field: "Cluster name",
        empty_name: "Cluster name is empty. Please specify a valid value.",
        empty_namespace: "Namespace is empty. Please specify a valid value.",
    };
    const TEXTS: objects::ObjectTexts = objects::ObjectTexts {
        kind: KIND,
        not_managed_kind: KIND,
        noun: "Cluster",
        get_failed: "Get Cluster failed",
        delete_wrap: "Get cluster failure",
        delete_failed: "Failed to delete cluster",
    };

    /// A new object has no events yet.
    fn convert(object: &RayCluster) -> Result<Cluster, CoreError> {
        cluster::from_ray_cluster(object, events::cluster_events(&[]))
    }
}

/// ClusterService.
pub type Clusters = ObjectService<RayCluster>;

impl Clusters {
    pub async fn create(&self, request: CreateClusterRequest) -> Result<Cluster, ApiError> {
        const WRAP: &str = "Create Cluster failed.";
        let CreateClusterRequest {
            cluster: body,
            namespace,
        } = request;
        let (cluster, spec) = cluster::validate_create(&namespace, body.as_ref())
            .map_err(|e| invalid(e).wrap("Validate create cluster request failed."))?;
        objects::in_scope(&self.scope, &namespace)?;
        let owner = format!("{namespace}/{}", cluster.name);
        let templates = self.templates(&namespace, Some(spec), &owner, WRAP).await?;
        let created_at = cluster::go_time_string(std::time::SystemTime::now());
        let object = cluster::to_ray_cluster(cluster, &templates, &created_at)
            .map_err(|e| build_error(e, "Failed to create a Ray cluster").wrap(WRAP))?;
        drop(body);
        let failed = format!("Failed to create a cluster for ({owner})");
        self.create_object(&namespace, object, &failed, WRAP).await
    }

    pub async fn get(&self, request: GetClusterRequest) -> Result<Cluster, ApiError> {
        let GetClusterRequest { name, namespace } = request;
        let cluster = self
            .checked_read(&name, &namespace, "Get cluster failed.")
            .await?;
        let events = self.io.object_events(&namespace, KIND, &name).await;
        Ok(cluster.view.with_events(events::cluster_events(&events)))
    }

    pub async fn list(
        &self,
        request: ListClustersRequest,
    ) -> Result<ListClustersResponse, ApiError> {
        let ListClustersRequest {
            namespace,
            r#continue,
            limit,
        } = request;
        self.check_namespace(&namespace)?;
        let (clusters, next) = self
            .list_in(Some(&namespace), limit, &r#continue)
            .await
            .map_err(|error| {
                ApiError::from_kube(&error, |text| {
                    ApiError::plain(format!("List RayCluster failed in {namespace}: {text}"))
                })
                .wrap("List clusters failed.")
            })?;
        Ok(ListClustersResponse {
            clusters,
            r#continue: next,
        })
    }

    pub async fn list_all(
        &self,
        request: ListAllClustersRequest,
    ) -> Result<ListAllClustersResponse, ApiError> {
        let ListAllClustersRequest { r#continue, limit } = request;
        let (clusters, next) = self
            .list_in(self.scope.list_all_namespace(), limit, &r#continue)
            .await
            .map_err(|error| {
                ApiError::from_kube(&error, |text| {
                    ApiError::plain(format!("List RayCluster failed in : {text}"))
                })
                .wrap("List clusters from all namespaces failed.")
            })?;
        Ok(ListAllClustersResponse {
            clusters,
            r#continue: next,
        })
    }

    pub async fn delete(&self, request: DeleteClusterRequest) -> Result<Empty, ApiError> {
        self.checked_delete(&request.name, &request.namespace).await
    }

    /// One page of managed clusters with their events (one events query for the whole page).
    async fn list_in(
        &self,
        namespace: Option<&str>,
        limit: i64,
        continue_token: &str,
    ) -> Result<(Vec<Cluster>, String), kube::Error> {
        let (items, next) = self.page(namespace, limit, continue_token).await?;
        let mut events = if items.is_empty() {
            BTreeMap::new()
        } else {
            self.io.kind_events(namespace, KIND).await
        };
        let clusters = items
            .iter()
            .map(|view| {
                let key = (view.namespace().to_string(), view.name().to_string());
                let item_events = events.remove(&key).unwrap_or_default();
                view.with_events(events::cluster_events(&item_events))
            })
            .collect();
        Ok((clusters, next))
    }

    /// The cluster as the job-submission service needs it: read with the GetCluster checks.
    pub async fn get_view(
        &self,
        name: &str,
        namespace: &str,
    ) -> Result<Arc<ClusterView>, ApiError> {
        self.checked_read(name, namespace, "Get cluster failed.")
            .await
            .map(|cluster| cluster.view)
    }
}

/// A validation failure as the Go server reports it.
pub(crate) fn invalid(error: CoreError) -> ApiError {
    match error {
        CoreError::InvalidInput(text) | CoreError::InvalidData(text) => {
            ApiError::invalid_input(text)
        }
    }
}

/// A failure to build an object from a valid request: bad input is INVALID_ARGUMENT with the
/// Go server's layering, a data problem (a stored template that cannot be used) INTERNAL.
pub(crate) fn build_error(error: CoreError, context: &str) -> ApiError {
    match error {
        CoreError::InvalidInput(cause) => ApiError::invalid_input_with_details(cause, context),
        CoreError::InvalidData(cause) => ApiError::internal(cause, context),
    }
}
