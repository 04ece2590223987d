//! Label, annotation and data keys shared with the Go server, so both can manage the same objects.

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
