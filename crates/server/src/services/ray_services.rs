//! RayServeService: Ray Serve services as `ray.io/v1` RayService objects.

use pbjson_types::Empty;
use std::collections::BTreeMap;

use k8s_openapi::api::events::v1::Event;
use kuberay_api::proto::{
    CreateRayServiceRequest, DeleteRayServiceRequest, GetRayServiceRequest,
    ListAllRayServicesRequest, ListAllRayServicesResponse, ListRayServicesRequest,
    ListRayServicesResponse, RayService, UpdateRayServiceRequest,
};
use kuberay_core::service::ServiceView;
use kuberay_core::{CoreError, cluster, crd, events, labels, service};
use tonic::Code;

use kuberay_core::scope::NamespaceScope;

use super::clusters::{build_error, invalid};
use super::objects::{self, Held};
use crate::error::{ApiError, is_already_exists, is_conflict, kube_text};

const NAMING: objects::Naming = objects::Naming {
    field: "Service name",
    empty_name: "ray service name is empty. Please specify a valid value.",
    empty_namespace: "ray service namespace is empty. Please specify a valid value.",
};
const KIND: &str = "RayService";
const TEXTS: objects::ObjectTexts = objects::ObjectTexts {
    kind: KIND,
    not_managed_kind: KIND,
    noun: "Service",
    get_failed: "get service failed",
    delete_wrap: "delete ray service failure",
    delete_failed: "failed to delete ray service",
};
/// How often an update is retried after a write conflict.
const UPDATE_ATTEMPTS: usize = 5;

#[derive(Clone)]
pub struct RayServices {
    io: objects::KubeIo,
    scope: NamespaceScope,
}

impl RayServices {
    pub fn new(io: objects::KubeIo, scope: NamespaceScope) -> Self {
        Self { io, scope }
    }

    pub async fn create(&self, request: CreateRayServiceRequest) -> Result<RayService, ApiError> {
        const WRAP: &str = "Create ray service failed.";
        let CreateRayServiceRequest {
            service: body,
            namespace,
        } = request;
        let service = service::validate_create(&namespace, body.as_ref())
            .map_err(|e| invalid(e).wrap("Validate create service request failed."))?;
        objects::in_scope(&self.scope, &namespace)?;
        let name = service.name.clone();
        let templates = self
            .templates(service, &namespace, &format!("{namespace}/{name}"), WRAP)
            .await?;
        let timestamp = cluster::go_time_string(std::time::SystemTime::now());
        let object = service::to_ray_service(
            service,
            &templates,
            (labels::CREATION_TIMESTAMP, &timestamp),
        )
        .map_err(|e| build_error(e, "Failed to create a Ray Service").wrap(WRAP))?;
        drop(body);
        let created = self.io.create(&namespace, object).await.map_err(|error| {
            let text = format!("Failed to create service for ({namespace}/{name})");
            if is_already_exists(&error) {
                ApiError::already_exists(&format!("{text}: {}", kube_text(&error)))
            } else {
                ApiError::from_kube(&error, |cause| ApiError::internal(cause, &text))
            }
            .wrap(WRAP)
        })?;
        // A new object has no events yet.
        view_of(&created).map(|view| view.with_events(Vec::new()))
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
                        .into_api(&TEXTS, &namespace, &name)
                        .wrap(&context)
                        .wrap(WRAP)
                })
        };
        let mut existing = read().await?;
        let templates = self
            .templates(service, &namespace, &format!("{namespace}/{name}"), WRAP)
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
        NAMING.check(&self.scope, &name, &namespace)?;
        let service = self
            .read(&name, &namespace)
            .await
            .map_err(|e| e.wrap("get ray service failed"))?;
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
        NAMING.check_namespace(&self.scope, &namespace)?;
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
        let DeleteRayServiceRequest { name, namespace } = request;
        NAMING.check(&self.scope, &name, &namespace)?;
        self.io
            .delete_managed::<crd::RayService>(&namespace, &name, &TEXTS)
            .await
            .map(|()| Empty {})
    }

    async fn templates(
        &self,
        service: &RayService,
        namespace: &str,
        owner: &str,
        wrap: &str,
    ) -> Result<BTreeMap<String, kuberay_api::proto::ComputeTemplate>, ApiError> {
        match &service.cluster_spec {
            Some(spec) => {
                self.io
                    .compute_templates(
                        namespace,
                        &cluster::compute_template_names(spec),
                        owner,
                        wrap,
                    )
                    .await
            }
            None => Ok(BTreeMap::new()),
        }
    }

    async fn list_in(
        &self,
        namespace: Option<&str>,
        page_size: i32,
        page_token: &str,
    ) -> Result<(Vec<RayService>, String), ApiError> {
        let (items, next) = self
            .io
            .list_page::<crd::RayService>(namespace, i64::from(page_size), page_token)
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
            own = self.events_in(namespace, KIND).await;
            clusters = self.events_in(namespace, "RayCluster").await;
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

    async fn read(&self, name: &str, namespace: &str) -> Result<Held<ServiceView>, ApiError> {
        self.io
            .read::<crd::RayService>(namespace, name, &TEXTS)
            .await
    }

    /// Converts with the service's events, then those of its active cluster; event failures are
    /// only logged, as the Go server does.
    /// The answer for a service as just written.
    async fn to_api(&self, object: &crd::RayService) -> Result<RayService, ApiError> {
        Ok(self.answer(&view_of(object)?).await)
    }

    /// The answer for a service: its view with its own events and its active cluster's.
    async fn answer(&self, view: &ServiceView) -> RayService {
        let (name, namespace) = (view.name(), view.namespace());
        let mut events = self.events(namespace, KIND, name).await;
        if let Some(cluster) = view.active_cluster() {
            events.extend(self.events(namespace, "RayCluster", cluster).await);
        }
        view.with_events(events::service_events(name, &events))
    }

    async fn events(&self, namespace: &str, kind: &str, name: &str) -> Vec<Event> {
        match self.io.events(Some(namespace), kind, Some(name)).await {
            Ok(mut grouped) => grouped
                .remove(&(namespace.to_string(), name.to_string()))
                .unwrap_or_default(),
            Err(error) => {
                tracing::warn!(
                    "listing events of {kind} {namespace}/{name} failed: {}",
                    kube_text(&error)
                );
                Vec::new()
            }
        }
    }

    /// Events about objects of `kind` in one namespace or all; failures are only logged.
    async fn events_in(
        &self,
        namespace: Option<&str>,
        kind: &str,
    ) -> BTreeMap<(String, String), Vec<Event>> {
        self.io
            .events(namespace, kind, None)
            .await
            .unwrap_or_else(|error| {
                tracing::warn!("listing {kind} events failed: {}", kube_text(&error));
                BTreeMap::new()
            })
    }
}

fn view_of(object: &crd::RayService) -> Result<ServiceView, ApiError> {
    ServiceView::of(object).map_err(|error| {
        let name = object.metadata.name.as_deref().unwrap_or_default();
        let namespace = object.metadata.namespace.as_deref().unwrap_or_default();
        objects::unconvertible(KIND, namespace, name, error)
    })
}
