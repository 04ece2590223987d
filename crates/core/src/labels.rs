//! Label, annotation and data keys shared with the Go server, so both can manage the same objects.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// ConfigMap label that marks a compute template.
pub const CONFIG_TYPE: &str = "ray.io/config-type";
/// Value of [`CONFIG_TYPE`] for compute templates.
pub const CONFIG_TYPE_COMPUTE_TEMPLATE: &str = "compute-template";
/// ConfigMap label holding the template name.
pub const COMPUTE_TEMPLATE: &str = "ray.io/compute-template";
/// Label selector that finds compute templates.
pub const COMPUTE_TEMPLATE_SELECTOR: &str = "ray.io/config-type=compute-template";

pub const CLUSTER_NAME: &str = "ray.io/cluster-name";
pub const USER: &str = "ray.io/user";
pub const VERSION: &str = "ray.io/version";
pub const ENVIRONMENT: &str = "ray.io/environment";
pub const APP_NAME: &str = "app.kubernetes.io/name";
pub const APP_NAME_VALUE: &str = "kuberay";
pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
pub const MANAGED_BY_VALUE: &str = "kuberay-apiserver";
/// Label selector that finds the objects this server manages.
pub const MANAGED_BY_SELECTOR: &str = "app.kubernetes.io/managed-by=kuberay-apiserver";

/// Annotation with the creation time (Go `Time.String()` form) on RayClusters and RayServices.
pub const CREATION_TIMESTAMP: &str = "ray.io/creation-timestamp";
/// Annotation with the update time on updated RayServices.
pub const UPDATE_TIMESTAMP: &str = "ray.io/update-timestamp";

/// Pod-template annotation naming the compute template of a group.
pub const COMPUTE_TEMPLATE_ANNOTATION: &str = "ray.io/compute-template";
/// Pod-template annotation holding the image the client asked for (may be empty).
pub const COMPUTE_IMAGE_ANNOTATION: &str = "ray.io/compute-image";
/// Cluster annotation that, set to exactly `true`, adds the serve ports to the head container.
pub const ENABLE_SERVE_SERVICE: &str = "ray.io/enable-serve-service";
/// Value of [`ENABLE_SERVE_SERVICE`] that enables the serve ports.
pub const ENABLE_SERVE_SERVICE_VALUE: &str = "true";

/// The labels of an object the server creates: its `own` labels plus [`APP_NAME`] and
/// [`MANAGED_BY`].
pub(crate) fn object_labels<const N: usize>(own: [(&str, String); N]) -> BTreeMap<String, String> {
    own.into_iter()
        .chain([
            (APP_NAME, APP_NAME_VALUE.to_string()),
            (MANAGED_BY, MANAGED_BY_VALUE.to_string()),
        ])
        .map(|(key, value)| (key.to_string(), value))
        .collect()
}

/// The value of an object's label `key`, empty when it has none.
pub(crate) fn label_value(metadata: &ObjectMeta, key: &str) -> String {
    metadata
        .labels
        .as_ref()
        .and_then(|labels| labels.get(key))
        .cloned()
        .unwrap_or_default()
}
