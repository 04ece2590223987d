//! RayServeService: Ray Serve services as `ray.io/v1` RayService objects.

use pbjson_types::Empty;
use std::collections::BTreeMap;

use kuberay_api::proto::{
    CreateRayServiceRequest, DeleteRayServiceRequest, GetRayServiceRequest,
    ListAllRayServicesRequest, ListAllRayServicesResponse, ListRayServicesRequest,
    ListRayServicesResponse, RayService, UpdateRayServiceRequest,
};
use kuberay_core::service::ServiceView;
use kuberay_core::{CoreError, cluster, crd, events, labels, service};
use tonic::Code;

use super::clusters::{build_error, invalid};
use super::kind::{ObjectKind, ObjectService};
use super::objects;
use crate::error::{ApiError, is_conflict};

const KIND: &str = "RayService";
/// How often an update is retried after a write conflict.
const UPDATE_ATTEMPTS: usize = 5;

impl ObjectKind for crd::RayService {
    type Object = crd::RayService;
    /// The view: answers add the events to it (`RayServices::answer`).
    type Converted = ServiceView;
    const NAMING: objects::Naming = objects::Naming {
        field: "Service name",
        empty_name: "ray service name is empty. Please specify a valid value.",
        empty_namespace: "ray service namespace is empty. Please specify a valid value.",
    };
    const TEXTS: objects::ObjectTexts = objects::ObjectTexts {
        kind: KIND,
        not_managed_kind: KIND,
        noun: "Service",
        get_failed: "get service failed",
        delete_wrap: "delete ray service failure",
        delete_failed: "failed to delete ray service",
    };

    fn convert(object: &crd::RayService) -> Result<ServiceView, CoreError> {
        ServiceView::of(object)
    }
}

/// RayServeService.
pub type RayServices = ObjectService<crd::RayService>;

impl RayServices {
    pub async fn create(&self, request: CreateRayServiceRequest) -> Result<RayService, ApiError> {
        const WRAP: &str = "Create ray service failed.";
        let CreateRayServiceRequest {
            service: body,
            namespace,
        } = request;
        let service = service::validate_create(&namespace, body.as_ref())
            .map_err(|e| invalid(e).wrap("Validate create service request failed."))?;
        objects::in_scope(&self.scope, &namespace)?;
        let owner = format!("{namespace}/{}", service.name);
        let templates = self
            .templates(&namespace, service.cluster_spec.as_ref(), &owner, WRAP)
            .await?;
        let timestamp = cluster::go_time_string(std::time::SystemTime::now());
        let object = service::to_ray_service(
            service,
            &templates,
            (labels::CREATION_TIMESTAMP, &timestamp),
        )
        .map_err(|e| build_error(e, "Failed to create a Ray Service").wrap(WRAP))?;
        drop(body);
        let failed = format!("Failed to create service for ({owner})");
        let created = self
            .create_object(&namespace, object, &failed, WRAP)
            .await?;
        // A new object has no events yet.
        Ok(created.with_events(Vec::new()))
    }

    /// A full replacement of the service named in the body (the path name is only checked for
    /// being non-empty, as the Go server does).
    pub async fn update(&self, request: UpdateRayServiceRequest) -> Result<RayService, ApiError> {
        const WRAP: &str = "Update ray service failed.";
        let UpdateRayServiceRequest {
            service,
            namespace,
            name: path_name,
        } = request;
        let service = service::validate_update(&path_name, &namespace, service.as_ref())
            .map_err(|e| invalid(e).wrap("Validate update service request failed."))?;
        objects::in_scope(&self.scope, &namespace)?;
        let name = service.name.clone();
        let context = format!("Update service fail, no service named: {name} ");
        let read = || async {
            self.io
                .get_managed_live::<crd::RayService>(&namespace, &name)
                .await
                .map_err(|error| {
                    error
                        .into_api(&<crd::RayService as ObjectKind>::TEXTS, &namespace, &name)
                        .wrap(&context)
                        .wrap(WRAP)
                })
        };
        let mut existing = read().await?;
        let templates = self
            .templates(
                &namespace,
                service.cluster_spec.as_ref(),
                &format!("{namespace}/{name}"),
                WRAP,
            )
            .await?;
        let timestamp = cluster::go_time_string(std::time::SystemTime::now());
        let built =
            service::to_ray_service(service, &templates, (labels::UPDATE_TIMESTAMP, &timestamp))
                .map_err(|error| {
                    // The Go server's unlayered text; a request it cannot build from is the
                    // client's mistake (the Go server answers UNKNOWN).
                    match error {
                        CoreError::InvalidInput(text) => {
                            ApiError::with_code(Code::InvalidArgument, text)
                        }
                        CoreError::InvalidData(text) => ApiError::plain(text),
                    }
                    .wrap(WRAP)
                })?;
        // The operator writes the same object (finalizer, status) concurrently: a stale
        // resourceVersion is retried against a fresh read instead of failing the call.
        let mut attempts = 0;
        let updated = loop {
            let mut object = built.clone();
            object.metadata.resource_version = existing.metadata.resource_version.clone();
            // Keep the finalizers other controllers put on the object; everything else is replaced.
            object.metadata.finalizers = existing.metadata.finalizers.clone();
            match self.io.replace(&namespace, &name, &object).await {
                Ok(updated) => break updated,
                Err(error) if is_conflict(&error) && attempts < UPDATE_ATTEMPTS => {
                    attempts += 1;
                    existing = read().await?;
                }
                Err(error) => {
                    return Err(ApiError::from_kube(&error, |text| {
                        ApiError::internal(
                            text,
                            &format!("Failed to update service for ({namespace}/{name})"),
                        )
                    })
                    .wrap(WRAP));
                }
            }
        };
        self.to_api(&updated).await
    }

    pub async fn get(&self, request: GetRayServiceRequest) -> Result<RayService, ApiError> {
        let GetRayServiceRequest { name, namespace } = request;
        let service = self
            .checked_read(&name, &namespace, "get ray service failed")
            .await?;
        Ok(self.answer(&service.view).await)
    }

    pub async fn list(
        &self,
        request: ListRayServicesRequest,
    ) -> Result<ListRayServicesResponse, ApiError> {
        let ListRayServicesRequest {
            namespace,
            page_token,
            page_size,
        } = request;
        self.check_namespace(&namespace)?;
        let (services, next_page_token) = self
            .list_in(Some(&namespace), page_size, &page_token)
            .await
            .map_err(|e| e.wrap("failed to list rayservice."))?;
        Ok(ListRayServicesResponse {
            services,
            total_size: 0,
            next_page_token,
        })
    }

    pub async fn list_all(
        &self,
        request: ListAllRayServicesRequest,
    ) -> Result<ListAllRayServicesResponse, ApiError> {
        let ListAllRayServicesRequest {
            page_token,
            page_size,
        } = request;
        let (services, next_page_token) = self
            .list_in(self.scope.list_all_namespace(), page_size, &page_token)
            .await
            .map_err(|e| e.wrap("list all services failed."))?;
        Ok(ListAllRayServicesResponse {
            services,
            total_size: 0,
            next_page_token,
        })
    }

    pub async fn delete(&self, request: DeleteRayServiceRequest) -> Result<Empty, ApiError> {
        self.checked_delete(&request.name, &request.namespace).await
    }

    async fn list_in(
        &self,
        namespace: Option<&str>,
        page_size: i32,
        page_token: &str,
    ) -> Result<(Vec<RayService>, String), ApiError> {
        let (items, next) = self
            .page(namespace, i64::from(page_size), page_token)
            .await
            .map_err(|error| {
                ApiError::from_kube(&error, |text| {
                    ApiError::plain(format!(
                        "List RayService failed in {} with next page token {page_token} and page limit {page_size}: {text}",
                        namespace.unwrap_or_default(),
                    ))
                })
            })?;
        // The events of the whole page: the services' own and their active clusters', one query
        // of each kind.
        let mut own = BTreeMap::new();
        let mut clusters = BTreeMap::new();
        if !items.is_empty() {
            own = self.io.kind_events(namespace, KIND).await;
            clusters = self.io.kind_events(namespace, "RayCluster").await;
        }
        let services = items
            .iter()
            .map(|view| {
                let key = |name: &str| (view.namespace().to_string(), name.to_string());
                let mut events = own.get(&key(view.name())).cloned().unwrap_or_default();
                if let Some(cluster) = view.active_cluster() {
                    events.extend(clusters.get(&key(cluster)).cloned().unwrap_or_default());
                }
                view.with_events(events::service_events(view.name(), &events))
            })
            .collect();
        Ok((services, next))
    }

    /// The answer for a service as just written: its view with its own events, then those of
    /// its active cluster (event failures are only logged, as the Go server does).
    async fn to_api(&self, object: &crd::RayService) -> Result<RayService, ApiError> {
        Ok(self.answer(&Self::converted(object)?).await)
    }

    /// The answer for a service: its view with its own events and its active cluster's.
    async fn answer(&self, view: &ServiceView) -> RayService {
        let (name, namespace) = (view.name(), view.namespace());
        let mut events = self.io.object_events(namespace, KIND, name).await;
        if let Some(cluster) = view.active_cluster() {
            events.extend(
                self.io
                    .object_events(namespace, "RayCluster", cluster)
                    .await,
            );
        }
        view.with_events(events::service_events(name, &events))
    }
}
