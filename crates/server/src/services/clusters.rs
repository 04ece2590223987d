//! ClusterService: Ray clusters as `ray.io/v1` RayCluster objects.

use pbjson_types::Empty;
use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::events::v1::Event;
use kuberay_api::proto::{
    Cluster, CreateClusterRequest, DeleteClusterRequest, GetClusterRequest, ListAllClustersRequest,
    ListAllClustersResponse, ListClustersRequest, ListClustersResponse,
};
use kuberay_core::cluster::ClusterView;
use kuberay_core::crd::RayCluster;
use kuberay_core::{CoreError, cluster, events};

use kuberay_core::scope::NamespaceScope;

use super::objects::{self, Held};
use crate::error::{ApiError, is_already_exists, kube_text};

const NAMING: objects::Naming = objects::Naming {
    field: "Cluster name",
    empty_name: "Cluster name is empty. Please specify a valid value.",
    empty_namespace: "Namespace is empty. Please specify a valid value.",
};
const KIND: &str = "RayCluster";
const TEXTS: objects::ObjectTexts = objects::ObjectTexts {
    kind: KIND,
    not_managed_kind: KIND,
    noun: "Cluster",
    get_failed: "Get Cluster failed",
    delete_wrap: "Get cluster failure",
    delete_failed: "Failed to delete cluster",
};

#[derive(Clone)]
pub struct Clusters {
    io: objects::KubeIo,
    scope: NamespaceScope,
}

impl Clusters {
    pub fn new(io: objects::KubeIo, scope: NamespaceScope) -> Self {
        Self { io, scope }
    }

    pub async fn create(&self, request: CreateClusterRequest) -> Result<Cluster, ApiError> {
        const WRAP: &str = "Create Cluster failed.";
        let CreateClusterRequest {
            cluster: body,
            namespace,
        } = request;
        let (cluster, spec) = cluster::validate_create(&namespace, body.as_ref())
            .map_err(|e| invalid(e).wrap("Validate create cluster request failed."))?;
        objects::in_scope(&self.scope, &namespace)?;
        let name = cluster.name.clone();

        let templates = self
            .io
            .compute_templates(
                &namespace,
                &cluster::compute_template_names(spec),
                &format!("{namespace}/{name}"),
                WRAP,
            )
            .await?;
        let created_at = cluster::go_time_string(std::time::SystemTime::now());
        let object = cluster::to_ray_cluster(cluster, &templates, &created_at)
            .map_err(|e| build_error(e, "Failed to create a Ray cluster").wrap(WRAP))?;
        drop(body);

        let created = self.io.create(&namespace, object).await.map_err(|error| {
            let text = format!("Failed to create a cluster for ({namespace}/{name})");
            if is_already_exists(&error) {
                ApiError::already_exists(&format!("{text}: {}", kube_text(&error)))
            } else {
                ApiError::from_kube(&error, |cause| ApiError::internal(cause, &text))
            }
            .wrap(WRAP)
        })?;
        // A new object has no events yet.
        to_api(&created, Vec::new())
    }

    pub async fn get(&self, request: GetClusterRequest) -> Result<Cluster, ApiError> {
        let GetClusterRequest { name, namespace } = request;
        NAMING.check(&self.scope, &name, &namespace)?;
        let cluster = self
            .read(&name, &namespace)
            .await
            .map_err(|e| e.wrap("Get cluster failed."))?;
        let events = self.events_of(&namespace, &name).await;
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
        NAMING.check_namespace(&self.scope, &namespace)?;
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
        let DeleteClusterRequest { name, namespace } = request;
        NAMING.check(&self.scope, &name, &namespace)?;
        self.io
            .delete_managed::<RayCluster>(&namespace, &name, &TEXTS)
            .await
            .map(|()| Empty {})
    }

    /// One page of managed clusters with their events (one events query for the whole page).
    async fn list_in(
        &self,
        namespace: Option<&str>,
        limit: i64,
        continue_token: &str,
    ) -> Result<(Vec<Cluster>, String), kube::Error> {
        let (items, next) = self
            .io
            .list_page::<RayCluster>(namespace, limit, continue_token)
            .await?;
        let mut events = if items.is_empty() {
            BTreeMap::new()
        } else {
            self.io
                .events(namespace, KIND, None)
                .await
                .unwrap_or_else(|error| {
                    tracing::warn!("listing RayCluster events failed: {}", kube_text(&error));
                    BTreeMap::new()
                })
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

    async fn read(&self, name: &str, namespace: &str) -> Result<Held<ClusterView>, ApiError> {
        self.io.read::<RayCluster>(namespace, name, &TEXTS).await
    }

    /// Events of one cluster; failures are logged, never returned (as the Go server does).
    async fn events_of(&self, namespace: &str, name: &str) -> Vec<Event> {
        match self.io.events(Some(namespace), KIND, Some(name)).await {
            Ok(mut grouped) => grouped
                .remove(&(namespace.to_string(), name.to_string()))
                .unwrap_or_default(),
            Err(error) => {
                tracing::warn!(
                    "listing events of RayCluster {namespace}/{name} failed: {}",
                    kube_text(&error)
                );
                Vec::new()
            }
        }
    }

    /// The cluster as the job-submission service needs it: read with the GetCluster checks.
    pub async fn get_view(
        &self,
        name: &str,
        namespace: &str,
    ) -> Result<Arc<ClusterView>, ApiError> {
        NAMING.check(&self.scope, name, namespace)?;
        self.read(name, namespace)
            .await
            .map(|cluster| cluster.view)
            .map_err(|e| e.wrap("Get cluster failed."))
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

fn to_api(object: &RayCluster, events: Vec<Event>) -> Result<Cluster, ApiError> {
    cluster::from_ray_cluster(object, events::cluster_events(&events)).map_err(|error| {
        let name = object.metadata.name.as_deref().unwrap_or_default();
        let namespace = object.metadata.namespace.as_deref().unwrap_or_default();
        objects::unconvertible(KIND, namespace, name, error)
    })
}
