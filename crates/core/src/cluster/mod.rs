//! Clusters: validation of `Cluster` requests and the two-way conversion between the API's
//! `Cluster`/`ClusterSpec` and the `ray.io/v1` RayCluster
//! (docs/contract/conversion.md#cluster-to-raycluster, #raycluster-to-cluster, and for what a
//! create followed by a get does not give back, #what-does-not-round-trip).
//!
//! The embedded-spec functions ([`build_cluster_spec`], [`cluster_spec_to_api`]) are shared with
//! RayJob (`spec.rayClusterSpec`) and RayService (`spec.rayClusterConfig`).
//!
//! Differences from the Go server, on purpose: maps the Go server iterates in random order
//! (environment variables, volume items) are written sorted by name; Secret volumes with `items`
//! convert both ways; autoscaler `envs.valuesFrom` become per-variable `valueFrom` entries
//! instead of whole-object `envFrom` imports; malformed objects give errors instead of panics.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use k8s_openapi::jiff;
use kuberay_api::proto;

use crate::crd;

mod env;
mod from_cr;
mod to_cr;
mod validate;
mod volumes;

pub use from_cr::{ClusterView, cluster_spec_to_api, from_ray_cluster};
pub use to_cr::{build_cluster_spec, to_ray_cluster};
pub use validate::{compute_template_names, validate_cluster_spec, validate_create};

/// Repository of the image used when a group names none (`rayproject/ray:<version>`).
pub const DEFAULT_IMAGE_REPOSITORY: &str = "rayproject/ray";
/// Resource name of a template's GPUs when it names no accelerator.
pub const DEFAULT_GPU_RESOURCE: &str = "nvidia.com/gpu";
/// Name of the ray container of the head group.
pub const HEAD_CONTAINER: &str = "ray-head";
/// Name of the ray container of each worker group.
pub const WORKER_CONTAINER: &str = "ray-worker";

/// What differs between the cluster specs of a Cluster, a RayJob and a RayService.
#[derive(Clone, Copy, Debug, Default)]
pub struct ClusterSpecOptions<'a> {
    /// Cluster-wide variables added to every ray container (Clusters only).
    pub cluster_envs: Option<&'a proto::EnvironmentVariables>,
    /// Adds the `dashboard-agent` (52365) and `serve` (8000) ports to the head container
    /// (RayServices always; Clusters annotated `ray.io/enable-serve-service: "true"`).
    pub serve_ports: bool,
}

/// `serviceEndpoint` of a response (docs/contract/conversion.md#service-endpoints): a copy of the
/// cluster status' `endpoints`.
/// For a RayService, pass `status.activeServiceStatus.rayClusterStatus`.
pub fn service_endpoints(status: Option<&crd::RayClusterStatus>) -> BTreeMap<String, String> {
    status
        .and_then(|status| status.endpoints.clone())
        .unwrap_or_default()
}

/// Go's zero `time.Time` (`0001-01-01T00:00:00Z`), which the Go server returns for unset times.
pub(crate) fn go_zero_time() -> kuberay_api::Timestamp {
    kuberay_api::Timestamp {
        seconds: -62_135_596_800,
        nanos: 0,
    }
}

/// Go's `time.Time.String()` of a UTC instant: `"2023-09-25 10:48:35.766443417 +0000 UTC"`
/// (trailing zeros of the fraction trimmed, no fraction when 0).
pub fn go_time_string(time: SystemTime) -> String {
    let time = jiff::Timestamp::try_from(time).unwrap_or(if time < UNIX_EPOCH {
        jiff::Timestamp::MIN
    } else {
        jiff::Timestamp::MAX
    });
    time.strftime("%Y-%m-%d %H:%M:%S%.f +0000 UTC").to_string()
}
