//! The flow the three object services share (ClusterService, RayJobService, RayServeService):
//! name checks, reads, creates, pages and deletes of one kind of managed object, which differ
//! between the services only by the kind's texts and conversion ([`ObjectKind`]). Each service
//! is an [`ObjectService`] of its kind, with its RPCs in its own module.

use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::sync::Arc;

use kuberay_api::proto::{ClusterSpec, ComputeTemplate};
use kuberay_core::scope::NamespaceScope;
use kuberay_core::{CoreError, cluster};
use pbjson_types::Empty;

use super::objects::{self, Held, KubeIo, Naming, ObjectTexts};
use crate::cache::Cached;
use crate::error::{ApiError, is_already_exists, kube_text};

/// One kind of managed object a service keeps: its Kubernetes type, its texts, and how an
/// object as written converts to the service's answer.
pub trait ObjectKind {
    /// The Kubernetes object.
    type Object: Cached;
    /// What an object as written converts to ([`Self::convert`]).
    type Converted;
    /// The texts of the name checks.
    const NAMING: Naming;
    /// The texts of reads and deletes (its `kind` also names objects that cannot be converted).
    const TEXTS: ObjectTexts;

    /// The answer for an object as the API server returned it from a write.
    fn convert(object: &Self::Object) -> Result<Self::Converted, CoreError>;
}

/// The service of one kind `K`: the Kubernetes seam and the served namespaces.
pub struct ObjectService<K> {
    pub(super) io: KubeIo,
    pub(super) scope: NamespaceScope,
    kind: PhantomData<fn() -> K>,
}

impl<K> Clone for ObjectService<K> {
    fn clone(&self) -> Self {
        Self {
            io: self.io.clone(),
            scope: self.scope.clone(),
            kind: PhantomData,
        }
    }
}

/// The view reads of kind `K` answer with.
type View<K> = <<K as ObjectKind>::Object as Cached>::View;

impl<K: ObjectKind> ObjectService<K> {
    pub fn new(io: KubeIo, scope: NamespaceScope) -> Self {
        Self {
            io,
            scope,
            kind: PhantomData,
        }
    }

    /// The name checks of a get, then the managed object's view; read failures wrapped in
    /// `wrap`.
    pub(super) async fn checked_read(
        &self,
        name: &str,
        namespace: &str,
        wrap: &str,
    ) -> Result<Held<View<K>>, ApiError> {
        K::NAMING.check(&self.scope, name, namespace)?;
        self.io
            .read::<K::Object>(namespace, name, &K::TEXTS)
            .await
            .map_err(|e| e.wrap(wrap))
    }

    /// The name checks of a delete, then the delete of the managed object.
    pub(super) async fn checked_delete(
        &self,
        name: &str,
        namespace: &str,
    ) -> Result<Empty, ApiError> {
        K::NAMING.check(&self.scope, name, namespace)?;
        self.io
            .delete_managed::<K::Object>(namespace, name, &K::TEXTS)
            .await
            .map(|()| Empty {})
    }

    /// The checks of a list in one namespace.
    pub(super) fn check_namespace(&self, namespace: &str) -> Result<(), ApiError> {
        K::NAMING.check_namespace(&self.scope, namespace)
    }

    /// One page of the managed objects' views, in `namespace` or in all served namespaces
    /// (`None`); see [`KubeIo::list_page`].
    pub(super) async fn page(
        &self,
        namespace: Option<&str>,
        limit: i64,
        continue_token: &str,
    ) -> Result<(Vec<Arc<View<K>>>, String), kube::Error> {
        self.io
            .list_page::<K::Object>(namespace, limit, continue_token)
            .await
    }

    /// The compute templates a create of `owner` (`<namespace>/<name>`) needs: those named by
    /// its cluster spec, none without one.
    pub(super) async fn templates(
        &self,
        namespace: &str,
        spec: Option<&ClusterSpec>,
        owner: &str,
        wrap: &str,
    ) -> Result<BTreeMap<String, ComputeTemplate>, ApiError> {
        match spec {
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

    /// Creates `object` and converts the stored object. `failed` is the context of a failure
    /// (an existing object of the name is ALREADY_EXISTS), wrapped in `wrap`.
    pub(super) async fn create_object(
        &self,
        namespace: &str,
        object: K::Object,
        failed: &str,
        wrap: &str,
    ) -> Result<K::Converted, ApiError> {
        let created = self.io.create(namespace, object).await.map_err(|error| {
            if is_already_exists(&error) {
                ApiError::already_exists(&format!("{failed}: {}", kube_text(&error)))
            } else {
                ApiError::from_kube(&error, |cause| ApiError::internal(cause, failed))
            }
            .wrap(wrap)
        })?;
        Self::converted(&created)
    }

    /// [`ObjectKind::convert`], a failure INTERNAL naming the object.
    pub(super) fn converted(object: &K::Object) -> Result<K::Converted, ApiError> {
        use kube::Resource;
        K::convert(object).map_err(|error| {
            let meta = object.meta();
            let name = meta.name.as_deref().unwrap_or_default();
            let namespace = meta.namespace.as_deref().unwrap_or_default();
            objects::unconvertible(K::TEXTS.kind, namespace, name, error)
        })
    }
}
