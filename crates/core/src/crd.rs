//! Typed `ray.io/v1` custom resources: RayCluster, RayJob and RayService.
//!
//! Hand-written, thin structs over the k8s-openapi pod types. They type the fields this server
//! reads or writes and keep everything else in a flattened `extra` map, so a read-modify-write
//! never drops a field that a newer operator added. Optional fields follow the JSON tags of the
//! operator's Go types: a field tagged `omitempty` is an `Option` left out when `None`
//! (`#[skip_serializing_none]` on every struct), a field without it (the groups'
//! `rayStartParams`, marked `#[serialize_always]`) is always written, as `null` when `None`.
//!
//! Each resource implements `k8s_openapi::Resource`, `ListableResource` and `Metadata`, which
//! makes it a `kube::Resource` through kube-core's blanket implementation, so `kube::Api<K>`
//! works with these types directly.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    EnvFromSource, EnvVar, PodTemplateSpec, ResourceRequirements, SecurityContext, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, ObjectMeta, Time};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_with::skip_serializing_none;

/// API group of the Ray resources.
pub const GROUP: &str = "ray.io";
/// API version (within [`GROUP`]) of the Ray resources.
pub const VERSION: &str = "v1";
/// `apiVersion` of the Ray resources.
pub const API_VERSION: &str = "ray.io/v1";

/// Fields that this server does not type, kept as they were read.
pub type Extra = BTreeMap<String, Value>;

macro_rules! ray_resource {
    ($ty:ident, $kind:literal, $plural:literal, $list:literal) => {
        impl $ty {
            /// The `kind` of this resource.
            pub const KIND: &'static str = $kind;

            fn default_api_version() -> String {
                API_VERSION.to_string()
            }

            fn default_kind() -> String {
                $kind.to_string()
            }
        }

        impl Default for $ty {
            fn default() -> Self {
                $ty {
                    api_version: API_VERSION.to_string(),
                    kind: $kind.to_string(),
                    metadata: ObjectMeta::default(),
                    spec: Default::default(),
                    status: None,
                }
            }
        }

        impl k8s_openapi::Resource for $ty {
            const API_VERSION: &'static str = API_VERSION;
            const GROUP: &'static str = GROUP;
            const KIND: &'static str = $kind;
            const VERSION: &'static str = VERSION;
            const URL_PATH_SEGMENT: &'static str = $plural;
            type Scope = k8s_openapi::NamespaceResourceScope;
        }

        impl k8s_openapi::ListableResource for $ty {
            const LIST_KIND: &'static str = $list;
        }

        impl k8s_openapi::Metadata for $ty {
            type Ty = ObjectMeta;

            fn metadata(&self) -> &ObjectMeta {
                &self.metadata
            }

            fn metadata_mut(&mut self) -> &mut ObjectMeta {
                &mut self.metadata
            }
        }
    };
}

// ---------------------------------------------------------------------------------------------
// RayCluster
// ---------------------------------------------------------------------------------------------

/// A `ray.io/v1` RayCluster.
#[skip_serializing_none]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RayCluster {
    #[serde(default = "RayCluster::default_api_version")]
    pub api_version: String,
    #[serde(default = "RayCluster::default_kind")]
    pub kind: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: RayClusterSpec,
    pub status: Option<RayClusterStatus>,
}

ray_resource!(RayCluster, "RayCluster", "rayclusters", "RayClusterList");

/// `RayCluster.spec`, also embedded as `RayJob.spec.rayClusterSpec` and
/// `RayService.spec.rayClusterConfig`.
#[skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RayClusterSpec {
    pub suspend: Option<bool>,
    pub autoscaler_options: Option<AutoscalerOptions>,
    pub head_service_annotations: Option<BTreeMap<String, String>>,
    pub enable_in_tree_autoscaling: Option<bool>,
    #[serde(default)]
    pub head_group_spec: HeadGroupSpec,
    pub ray_version: Option<String>,
    pub worker_group_specs: Option<Vec<WorkerGroupSpec>>,
    /// Other fields (`gcsFaultToleranceOptions`, `authOptions`, `managedBy`, ...).
    #[serde(flatten)]
    pub extra: Extra,
}

/// `headGroupSpec` of a cluster spec.
#[skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HeadGroupSpec {
    #[serde(default)]
    pub template: PodTemplateSpec,
    pub enable_ingress: Option<bool>,
    /// Always written (the Go type has no `omitempty`): `null` when `None`.
    #[serialize_always]
    pub ray_start_params: Option<BTreeMap<String, String>>,
    pub service_type: Option<String>,
    /// Other fields (`headService`, `ingressOptions`, `resources`, `labels`, ...).
    #[serde(flatten)]
    pub extra: Extra,
}

/// One entry of `workerGroupSpecs`.
#[skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkerGroupSpec {
    #[serde(default)]
    pub group_name: String,
    pub replicas: Option<i32>,
    pub min_replicas: Option<i32>,
    pub max_replicas: Option<i32>,
    /// Always written (the Go type has no `omitempty`): `null` when `None`.
    #[serialize_always]
    pub ray_start_params: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub template: PodTemplateSpec,
    /// The Go server always writes this (as `{}`): `omitempty` has no effect on a struct.
    pub scale_strategy: Option<ScaleStrategy>,
    /// Other fields (`suspend`, `idleTimeoutSeconds`, `numOfHosts`, `resources`, ...).
    #[serde(flatten)]
    pub extra: Extra,
}

/// `scaleStrategy` of a worker group.
#[skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScaleStrategy {
    pub workers_to_delete: Option<Vec<String>>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// `autoscalerOptions` of a cluster spec.
#[skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AutoscalerOptions {
    pub resources: Option<ResourceRequirements>,
    pub image: Option<String>,
    pub image_pull_policy: Option<String>,
    pub security_context: Option<SecurityContext>,
    pub idle_timeout_seconds: Option<i32>,
    pub upscaling_mode: Option<String>,
    pub version: Option<String>,
    pub env: Option<Vec<EnvVar>>,
    pub env_from: Option<Vec<EnvFromSource>>,
    pub volume_mounts: Option<Vec<VolumeMount>>,
    pub command: Option<Vec<String>>,
    pub args: Option<Vec<String>>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// `RayCluster.status` (also embedded in RayJob and RayService statuses).
#[skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RayClusterStatus {
    /// `ready`, `failed`, `suspended`, or absent.
    pub state: Option<String>,
    pub reason: Option<String>,
    /// Head Service port name -> node port or target port (filled by the operator).
    pub endpoints: Option<BTreeMap<String, String>>,
    pub head: Option<HeadInfo>,
    pub last_update_time: Option<Time>,
    pub conditions: Option<Vec<Condition>>,
    pub observed_generation: Option<i64>,
    /// Other fields (`desiredCPU`, `readyWorkerReplicas`, `stateTransitionTimes`, ...).
    #[serde(flatten)]
    pub extra: Extra,
}

/// `status.head` of a RayCluster.
#[skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HeadInfo {
    #[serde(rename = "podIP")]
    pub pod_ip: Option<String>,
    #[serde(rename = "serviceIP")]
    pub service_ip: Option<String>,
    pub pod_name: Option<String>,
    pub service_name: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

// ---------------------------------------------------------------------------------------------
// RayJob
// ---------------------------------------------------------------------------------------------

/// A `ray.io/v1` RayJob.
#[skip_serializing_none]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RayJob {
    #[serde(default = "RayJob::default_api_version")]
    pub api_version: String,
    #[serde(default = "RayJob::default_kind")]
    pub kind: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: RayJobSpec,
    pub status: Option<RayJobStatus>,
}

ray_resource!(RayJob, "RayJob", "rayjobs", "RayJobList");

/// `RayJob.spec`.
#[skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RayJobSpec {
    pub active_deadline_seconds: Option<i32>,
    pub backoff_limit: Option<i32>,
    pub ray_cluster_spec: Option<RayClusterSpec>,
    pub submitter_pod_template: Option<PodTemplateSpec>,
    pub metadata: Option<BTreeMap<String, String>>,
    pub cluster_selector: Option<BTreeMap<String, String>>,
    pub entrypoint: Option<String>,
    #[serde(rename = "runtimeEnvYAML")]
    pub runtime_env_yaml: Option<String>,
    pub job_id: Option<String>,
    pub submission_mode: Option<String>,
    /// A JSON object as text (the operator passes it to `ray job submit`).
    pub entrypoint_resources: Option<String>,
    pub entrypoint_num_cpus: Option<f32>,
    pub entrypoint_num_gpus: Option<f32>,
    pub ttl_seconds_after_finished: Option<i32>,
    pub shutdown_after_job_finishes: Option<bool>,
    pub suspend: Option<bool>,
    /// Other fields (`submitterConfig`, `deletionStrategy`, `managedBy`, ...).
    #[serde(flatten)]
    pub extra: Extra,
}

/// `RayJob.status`.
#[skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RayJobStatus {
    pub job_id: Option<String>,
    pub ray_cluster_name: Option<String>,
    #[serde(rename = "dashboardURL")]
    pub dashboard_url: Option<String>,
    /// `PENDING`, `RUNNING`, `STOPPED`, `SUCCEEDED`, `FAILED`, ...
    pub job_status: Option<String>,
    /// `Initializing`, `Running`, `Complete`, `Failed`, ...
    pub job_deployment_status: Option<String>,
    pub reason: Option<String>,
    pub message: Option<String>,
    pub start_time: Option<Time>,
    pub end_time: Option<Time>,
    pub succeeded: Option<i32>,
    pub failed: Option<i32>,
    pub ray_cluster_status: Option<RayClusterStatus>,
    pub observed_generation: Option<i64>,
    /// Other fields (`rayJobInfo`, `jobStatusCheckFailureStartTime`, ...).
    #[serde(flatten)]
    pub extra: Extra,
}

// ---------------------------------------------------------------------------------------------
// RayService
// ---------------------------------------------------------------------------------------------

/// A `ray.io/v1` RayService.
#[skip_serializing_none]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RayService {
    #[serde(default = "RayService::default_api_version")]
    pub api_version: String,
    #[serde(default = "RayService::default_kind")]
    pub kind: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: RayServiceSpec,
    pub status: Option<RayServiceStatuses>,
}

ray_resource!(RayService, "RayService", "rayservices", "RayServiceList");

/// `RayService.spec`.
#[skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RayServiceSpec {
    pub service_unhealthy_second_threshold: Option<i32>,
    pub deployment_unhealthy_second_threshold: Option<i32>,
    #[serde(rename = "serveConfigV2")]
    pub serve_config_v2: Option<String>,
    /// The embedded cluster spec (JSON name `rayClusterConfig`, always written).
    #[serde(default, rename = "rayClusterConfig")]
    pub ray_cluster_config: RayClusterSpec,
    pub exclude_head_pod_from_serve_svc: Option<bool>,
    pub suspend: Option<bool>,
    /// Other fields (`serveService`, `upgradeStrategy`, `rayClusterDeletionDelaySeconds`, ...).
    #[serde(flatten)]
    pub extra: Extra,
}

/// `RayService.status` (Go type `RayServiceStatuses`).
#[skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RayServiceStatuses {
    pub conditions: Option<Vec<Condition>>,
    pub last_update_time: Option<Time>,
    pub service_status: Option<String>,
    pub active_service_status: Option<RayServiceStatus>,
    pub pending_service_status: Option<RayServiceStatus>,
    pub num_serve_endpoints: Option<i32>,
    pub observed_generation: Option<i64>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// The active or pending cluster of a RayService (Go type `RayServiceStatus`).
#[skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RayServiceStatus {
    /// Serve application name -> status.
    #[serde(rename = "applicationStatuses")]
    pub applications: Option<BTreeMap<String, AppStatus>>,
    pub ray_cluster_name: Option<String>,
    pub ray_cluster_status: Option<RayClusterStatus>,
    /// Other fields (`targetCapacity`, `trafficRoutedPercent`, ...).
    #[serde(flatten)]
    pub extra: Extra,
}

/// Status of one Serve application.
#[skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppStatus {
    /// Deployment name -> status.
    #[serde(rename = "serveDeploymentStatuses")]
    pub deployments: Option<BTreeMap<String, ServeDeploymentStatus>>,
    pub status: Option<String>,
    pub message: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// Status of one Serve deployment.
#[skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServeDeploymentStatus {
    pub status: Option<String>,
    pub message: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn resource_identity() {
        use k8s_openapi::Resource;
        assert_eq!(RayCluster::API_VERSION, "ray.io/v1");
        assert_eq!(RayCluster::URL_PATH_SEGMENT, "rayclusters");
        assert_eq!(RayJob::URL_PATH_SEGMENT, "rayjobs");
        assert_eq!(RayService::URL_PATH_SEGMENT, "rayservices");
        assert_eq!(<RayService as Resource>::KIND, "RayService");
        let json = serde_json::to_value(RayJob::default()).unwrap();
        assert_eq!(json["apiVersion"], "ray.io/v1");
        assert_eq!(json["kind"], "RayJob");
    }

    #[test]
    fn unknown_fields_survive_a_round_trip() {
        let input = json!({
            "apiVersion": "ray.io/v1",
            "kind": "RayCluster",
            "metadata": {"name": "c", "namespace": "ns"},
            "spec": {
                "rayVersion": "2.46.0",
                "gcsFaultToleranceOptions": {"redisAddress": "redis:6379"},
                "headGroupSpec": {
                    "rayStartParams": {"num-cpus": "0"},
                    "headService": {"metadata": {"name": "h"}},
                    "template": {"spec": {"containers": [{"name": "ray-head", "image": "i"}]}}
                },
                "workerGroupSpecs": [{
                    "groupName": "wg",
                    "replicas": 1,
                    "minReplicas": 0,
                    "maxReplicas": 3,
                    "numOfHosts": 2,
                    "rayStartParams": {},
                    "scaleStrategy": {"workersToDelete": ["p"], "future": true},
                    "template": {"spec": {"containers": [{"name": "ray-worker", "image": "i"}]}}
                }],
                "autoscalerOptions": {"version": "v2", "futureField": 1}
            },
            "status": {
                "state": "ready",
                "desiredCPU": "2",
                "endpoints": {"dashboard": "8265"},
                "head": {"podIP": "10.0.0.1", "serviceIP": "10.0.0.2"}
            }
        });
        let cluster: RayCluster = serde_json::from_value(input.clone()).unwrap();
        assert_eq!(
            cluster.spec.extra["gcsFaultToleranceOptions"],
            json!({"redisAddress": "redis:6379"})
        );
        let status = cluster.status.as_ref().unwrap();
        assert_eq!(status.state.as_deref(), Some("ready"));
        assert_eq!(status.extra["desiredCPU"], json!("2"));
        assert_eq!(
            status.head.as_ref().unwrap().pod_ip.as_deref(),
            Some("10.0.0.1")
        );
        assert_eq!(serde_json::to_value(&cluster).unwrap(), input);
    }

    #[test]
    fn absent_ray_start_params_are_written_as_null() {
        let group = WorkerGroupSpec {
            group_name: "wg".into(),
            ..Default::default()
        };
        let json = serde_json::to_value(&group).unwrap();
        assert_eq!(json["rayStartParams"], Value::Null);
        assert!(json.as_object().unwrap().contains_key("rayStartParams"));
        assert!(!json.as_object().unwrap().contains_key("replicas"));
        let back: WorkerGroupSpec = serde_json::from_value(json).unwrap();
        assert_eq!(back.ray_start_params, None);
    }

    #[test]
    fn job_and_service_field_names() {
        let job = RayJob {
            spec: RayJobSpec {
                runtime_env_yaml: Some("pip: []".into()),
                entrypoint_num_cpus: Some(2.0),
                ..Default::default()
            },
            status: Some(RayJobStatus {
                dashboard_url: Some("d".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let json = serde_json::to_value(&job).unwrap();
        assert_eq!(json["spec"]["runtimeEnvYAML"], "pip: []");
        assert_eq!(json["spec"]["entrypointNumCpus"], 2.0);
        assert_eq!(json["status"]["dashboardURL"], "d");

        let service: RayService = serde_json::from_value(json!({
            "spec": {"serveConfigV2": "x", "rayClusterConfig": {"headGroupSpec": {"template": {}}}},
            "status": {"activeServiceStatus": {
                "rayClusterName": "c",
                "applicationStatuses": {"app": {"status": "RUNNING",
                    "serveDeploymentStatuses": {"d": {"status": "HEALTHY"}}}}
            }}
        }))
        .unwrap();
        assert_eq!(service.spec.serve_config_v2.as_deref(), Some("x"));
        let active = service.status.unwrap().active_service_status.unwrap();
        let apps = active.applications.unwrap();
        assert_eq!(
            apps["app"].deployments.as_ref().unwrap()["d"]
                .status
                .as_deref(),
            Some("HEALTHY")
        );
    }
}
