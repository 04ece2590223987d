//! Clusters: validation of `Cluster` requests and the two-way conversion between the API's
//! `Cluster`/`ClusterSpec` and the `ray.io/v1` RayCluster (v1-conversion §2, §4.1–4.6, §4.10).
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

use kuberay_api::proto;

use crate::crd;

mod env;
mod from_cr;
mod to_cr;
mod validate;
mod volumes;

pub use from_cr::{cluster_spec_to_api, from_ray_cluster};
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

/// `serviceEndpoint` of a response (§4.6): a copy of the cluster status' `endpoints`.
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
    let (seconds, nanos) = match time.duration_since(UNIX_EPOCH) {
        Ok(after) => (after.as_secs() as i64, after.subsec_nanos()),
        Err(before) => {
            let before = before.duration();
            let mut seconds = -(before.as_secs() as i64);
            let mut nanos = before.subsec_nanos();
            if nanos > 0 {
                seconds -= 1;
                nanos = 1_000_000_000 - nanos;
            }
            (seconds, nanos)
        }
    };
    let days = seconds.div_euclid(86_400);
    let second_of_day = seconds.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    let mut text = format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        second_of_day / 3600,
        second_of_day % 3600 / 60,
        second_of_day % 60
    );
    if nanos != 0 {
        let fraction = format!("{nanos:09}");
        text.push('.');
        text.push_str(fraction.trim_end_matches('0'));
    }
    text.push_str(" +0000 UTC");
    text
}

/// The proleptic Gregorian date of a day count since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}
