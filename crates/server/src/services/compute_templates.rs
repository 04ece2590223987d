//! ComputeTemplateService: templates stored as labelled ConfigMaps.

use pbjson_types::Empty;
use std::sync::Arc;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::Resource;
use kuberay_api::proto::{
    ComputeTemplate, CreateComputeTemplateRequest, DeleteComputeTemplateRequest,
    GetComputeTemplateRequest, ListAllComputeTemplatesRequest, ListAllComputeTemplatesResponse,
    ListComputeTemplatesRequest, ListComputeTemplatesResponse,
};
use kuberay_core::{CoreError, compute_template};

use kuberay_core::scope::NamespaceScope;

use super::objects;
use crate::error::{ApiError, is_already_exists, is_not_found, kube_text};

const NAMING: objects::Naming = objects::Naming {
    field: "Compute template name",
    empty_name: "Compute template name is empty. Please specify a valid value.",
    empty_namespace: "Namespace is empty. Please specify a valid value.",
};

#[derive(Clone)]
pub struct ComputeTemplates {
    io: objects::KubeIo,
    scope: NamespaceScope,
}

impl ComputeTemplates {
    pub fn new(io: objects::KubeIo, scope: NamespaceScope) -> Self {
        Self { io, scope }
    }

    pub async fn create(
        &self,
        request: CreateComputeTemplateRequest,
    ) -> Result<ComputeTemplate, ApiError> {
        const WRAP: &str = "Validate compute template runtime request failed.";
        let CreateComputeTemplateRequest {
            compute_template: template,
            namespace,
        } = request;
        let template = compute_template::validate_create(&namespace, template.as_ref()).map_err(
            |e| match e {
                CoreError::InvalidInput(text) | CoreError::InvalidData(text) => {
                    ApiError::invalid_input(text).wrap(WRAP)
                }
            },
        )?;
        objects::in_scope(&self.scope, &namespace)?;
        let name = &template.name;

        // Any ConfigMap of that name blocks the create, template or not, like the Go server.
        let exists_text =
            format!("Compute template with name {name} already exists in namespace {namespace}");
        if self.io.config_map(&namespace, name).await.is_ok() {
            return Err(
                ApiError::already_exists(&exists_text).wrap("Create compute template failed.")
            );
        }
        let created = self
            .io
            .create(&namespace, compute_template::to_config_map(template))
            .await
            .map_err(|error| {
                if is_already_exists(&error) {
                    ApiError::already_exists(&exists_text)
                } else {
                    ApiError::from_kube(&error, |text| {
                        ApiError::internal(
                            text,
                            &format!("Failed to create a compute runtime for ({namespace}/{name})"),
                        )
                    })
                }
                .wrap("Create compute template failed.")
            })?;
        Ok(compute_template::from_config_map(&created))
    }

    pub async fn get(
        &self,
        request: GetComputeTemplateRequest,
    ) -> Result<ComputeTemplate, ApiError> {
        let GetComputeTemplateRequest { name, namespace } = request;
        NAMING.check(&self.scope, &name, &namespace)?;
        let config_map = self
            .read(&name, &namespace)
            .await
            .map_err(|e| e.wrap("Get compute template failed."))?;
        Ok(compute_template::from_config_map(&config_map))
    }

    pub async fn list(
        &self,
        request: ListComputeTemplatesRequest,
    ) -> Result<ListComputeTemplatesResponse, ApiError> {
        let ListComputeTemplatesRequest { namespace } = request;
        NAMING.check_namespace(&self.scope, &namespace)?;
        let items = self
            .io
            .template_config_maps(Some(&namespace))
            .await
            .map_err(|error| {
                ApiError::from_kube(&error, |text| {
                    ApiError::plain(format!("List compute templates failed: {text}"))
                })
                .wrap(&format!(
                    "List compute templates in namespace {namespace} failed."
                ))
            })?;
        Ok(ListComputeTemplatesResponse {
            compute_templates: items
                .iter()
                .map(|config_map| compute_template::from_config_map(config_map))
                .collect(),
        })
    }

    /// Lists the templates of every namespace with one cluster-wide list call (of the one
    /// namespace served, with `--namespace`); the result is in namespace-then-name order, the
    /// order the Go server's per-namespace loop produces.
    pub async fn list_all(
        &self,
        request: ListAllComputeTemplatesRequest,
    ) -> Result<ListAllComputeTemplatesResponse, ApiError> {
        let ListAllComputeTemplatesRequest {} = request;
        let mut items = self
            .io
            .template_config_maps(self.scope.list_all_namespace())
            .await
            .map_err(|error| {
                ApiError::from_kube(&error, |text| {
                    ApiError::plain(format!(
                        "List compute templates failed in all namespaces: {text}"
                    ))
                })
                .wrap("List all compute templates from all namespaces failed.")
            })?;
        items.sort_by(|a, b| {
            (&a.metadata.namespace, &a.metadata.name)
                .cmp(&(&b.metadata.namespace, &b.metadata.name))
        });
        Ok(ListAllComputeTemplatesResponse {
            compute_templates: items
                .iter()
                .map(|config_map| compute_template::from_config_map(config_map))
                .collect(),
        })
    }

    pub async fn delete(&self, request: DeleteComputeTemplateRequest) -> Result<Empty, ApiError> {
        let DeleteComputeTemplateRequest { name, namespace } = request;
        NAMING.check(&self.scope, &name, &namespace)?;
        let config_map = self
            .read(&name, &namespace)
            .await
            .map_err(|e| e.wrap("Get compute template failure"))?;
        self.io
            .delete::<ConfigMap>(
                &namespace,
                &name,
                config_map.meta().uid.as_deref(),
                &format!("failed to delete compute template {name}."),
                |text| {
                    ApiError::not_found(text, &format!("Compute template {name} not found"))
                        .wrap("Get compute template failure")
                },
            )
            .await
            .map(|()| Empty {})
    }

    async fn read(&self, name: &str, namespace: &str) -> Result<Arc<ConfigMap>, ApiError> {
        self.io.config_map(namespace, name).await.map_err(|error| {
            if is_not_found(&error) {
                ApiError::not_found(
                    kube_text(&error),
                    &format!("Compute template {name} not found"),
                )
            } else {
                ApiError::from_kube(&error, |text| {
                    ApiError::plain(format!("Get compute template failed: {text}"))
                })
            }
        })
    }
}
