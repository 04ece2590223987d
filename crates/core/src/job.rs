//! RayJob: validation and the `proto::RayJob` <-> `ray.io/v1` RayJob conversions.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, PodSpec, PodTemplateSpec, ResourceRequirements};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity as KubeQuantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kuberay_api::proto::{self, ComputeTemplate};

use crate::cluster::{self, ClusterSpecOptions};
use crate::omit::{non_empty, non_empty_map};
use crate::quantity::Quantity;
use crate::{CoreError, crd, labels, names};

/// Container name of the submitter pod.
pub const SUBMITTER_CONTAINER: &str = "ray-job-submitter";
const DEFAULT_SUBMITTER_CPU: &str = "1";
const DEFAULT_SUBMITTER_MEMORY: &str = "1Gi";

/// The Go server's create checks, in its order. With a non-empty cluster selector the cluster
/// spec is not validated, except that a present spec must have a head group (the Go server
/// crashes there). Answers the valid job.
pub fn validate_create<'a>(
    namespace: &str,
    job: Option<&'a proto::RayJob>,
) -> Result<&'a proto::RayJob, CoreError> {
    let invalid = |text: &str| Err(CoreError::InvalidInput(text.to_string()));
    if namespace.is_empty() {
        return invalid("Namespace is empty. Please specify a valid value.");
    }
    let job = match job {
        Some(job) if job.namespace == namespace => job,
        _ => {
            return invalid(
                "The namespace in the request is different from the namespace in the job definition.",
            );
        }
    };
    if job.name.is_empty() {
        return invalid("Job name is empty. Please specify a valid value.");
    }
    if job.user.is_empty() {
        return invalid("User who create the job is empty. Please specify a valid value.");
    }
    if job.cluster_selector.is_empty() {
        cluster::validate_cluster_spec(job.cluster_spec.as_ref())?;
    } else if let Some(spec) = &job.cluster_spec
        && spec.head_group_spec.is_none()
    {
        return invalid(
            "Cluster Spec Object requires HeadGroupSpec to be populated. Please specify one.",
        );
    }
    names::check_namespace(namespace)?;
    names::check_object_name("Job name", &job.name)?;
    Ok(job)
}

/// Builds the RayJob object (docs/contract/conversion.md#job-to-rayjob). `entrypointNumGpus` is
/// stored, fixing the Go server's loss.
pub fn to_ray_job(
    job: &proto::RayJob,
    templates: &BTreeMap<String, ComputeTemplate>,
) -> Result<crd::RayJob, CoreError> {
    // The cluster spec's problems come before the submitter's.
    let ray_cluster_spec = job
        .cluster_spec
        .as_ref()
        .map(|spec| {
            cluster::build_cluster_spec(
                spec,
                templates,
                &job.version,
                ClusterSpecOptions {
                    cluster_envs: None,
                    serve_ports: false,
                },
            )
        })
        .transpose()?;
    let submitter_pod_template = job
        .job_submitter
        .as_ref()
        .map(submitter_template)
        .transpose()?;
    Ok(crd::RayJob {
        api_version: "ray.io/v1".to_string(),
        kind: "RayJob".to_string(),
        metadata: job_metadata(job),
        spec: job_spec(job, ray_cluster_spec, submitter_pod_template),
        status: None,
    })
}

/// The RayJob's name, namespace, labels, and the job's metadata as annotations.
fn job_metadata(job: &proto::RayJob) -> ObjectMeta {
    ObjectMeta {
        name: Some(job.name.clone()),
        namespace: Some(job.namespace.clone()),
        labels: Some(labels::object_labels([
            (labels::CLUSTER_NAME, job.name.clone()),
            (labels::USER, job.user.clone()),
        ])),
        annotations: non_empty_map(&job.metadata),
        ..ObjectMeta::default()
    }
}

/// The RayJob spec: the converted cluster spec and submitter, and the job's own fields with the
/// unset (empty, zero) ones left out.
fn job_spec(
    job: &proto::RayJob,
    ray_cluster_spec: Option<crd::RayClusterSpec>,
    submitter_pod_template: Option<PodTemplateSpec>,
) -> crd::RayJobSpec {
    let proto::RayJob {
        entrypoint,
        metadata,
        runtime_env,
        job_id,
        shutdown_after_job_finishes,
        cluster_selector,
        ttl_seconds_after_finished,
        entrypoint_num_cpus,
        entrypoint_num_gpus,
        entrypoint_resources,
        active_deadline_seconds,
        // In `job_metadata` and `to_ray_job`.
        name: _,
        namespace: _,
        user: _,
        version: _,
        cluster_spec: _,
        job_submitter: _,
        // Output only.
        created_at: _,
        delete_at: _,
        job_status: _,
        job_deployment_status: _,
        message: _,
        start_time: _,
        end_time: _,
        ray_cluster_name: _,
    } = job;
    crd::RayJobSpec {
        active_deadline_seconds: (*active_deadline_seconds > 0).then_some(*active_deadline_seconds),
        ray_cluster_spec,
        submitter_pod_template,
        metadata: non_empty_map(metadata),
        cluster_selector: non_empty_map(cluster_selector),
        entrypoint: Some(entrypoint.clone()),
        runtime_env_yaml: non_empty(runtime_env),
        job_id: non_empty(job_id),
        entrypoint_resources: non_empty(entrypoint_resources),
        entrypoint_num_cpus: (*entrypoint_num_cpus > 0.0).then_some(*entrypoint_num_cpus),
        entrypoint_num_gpus: (*entrypoint_num_gpus > 0.0).then_some(*entrypoint_num_gpus),
        ttl_seconds_after_finished: (*ttl_seconds_after_finished != 0)
            .then_some(*ttl_seconds_after_finished),
        shutdown_after_job_finishes: shutdown_after_job_finishes.then_some(true),
        ..crd::RayJobSpec::default()
    }
}

/// The submitter pod template: one container with requests = limits, `restartPolicy: Never`.
fn submitter_template(submitter: &proto::RayJobSubmitter) -> Result<PodTemplateSpec, CoreError> {
    let proto::RayJobSubmitter { image, cpu, memory } = submitter;
    let quantity = |value: &str, default: &str, what: &str| -> Result<KubeQuantity, CoreError> {
        let text = if value.is_empty() { default } else { value };
        Quantity::parse(text)
            .map(|q| KubeQuantity(q.canonical()))
            .map_err(|error| {
                CoreError::InvalidInput(format!(
                    "{what} for ray job submitter {text} is not specified correctly: {error}"
                ))
            })
    };
    let resources = BTreeMap::from([
        (
            "cpu".to_string(),
            quantity(cpu, DEFAULT_SUBMITTER_CPU, "cpu")?,
        ),
        (
            "memory".to_string(),
            quantity(memory, DEFAULT_SUBMITTER_MEMORY, "memory")?,
        ),
    ]);
    Ok(PodTemplateSpec {
        metadata: None,
        spec: Some(PodSpec {
            containers: vec![Container {
                name: SUBMITTER_CONTAINER.to_string(),
                image: Some(image.clone()),
                resources: Some(ResourceRequirements {
                    limits: Some(resources.clone()),
                    requests: Some(resources),
                    ..ResourceRequirements::default()
                }),
                ..Container::default()
            }],
            restart_policy: Some("Never".to_string()),
            ..PodSpec::default()
        }),
    })
}

/// Reads a RayJob back (docs/contract/conversion.md#rayjob-to-job). Malformed objects are
/// reported, never a panic.
pub fn from_ray_job(job: &crd::RayJob) -> Result<proto::RayJob, CoreError> {
    let metadata = &job.metadata;
    let spec = &job.spec;
    let status = job.status.clone().unwrap_or_default();
    let name = metadata.name.clone().unwrap_or_default();
    let namespace = metadata.namespace.clone().unwrap_or_default();
    let cluster_spec = spec
        .ray_cluster_spec
        .as_ref()
        .map(cluster::cluster_spec_to_api)
        .transpose()
        .map_err(|error| CoreError::InvalidData(format!("RayJob {namespace}/{name}: {error}")))?;
    let seconds = |time: &Option<Time>| {
        time.as_ref().map(|t| kuberay_api::Timestamp {
            seconds: t.0.as_second(),
            nanos: t.0.subsec_nanosecond(),
        })
    };
    Ok(proto::RayJob {
        user: labels::label_value(metadata, labels::USER),
        version: spec
            .ray_cluster_spec
            .as_ref()
            .and_then(|s| s.ray_version.clone())
            .unwrap_or_default(),
        entrypoint: spec.entrypoint.clone().unwrap_or_default(),
        metadata: spec.metadata.clone().unwrap_or_default(),
        runtime_env: spec.runtime_env_yaml.clone().unwrap_or_default(),
        job_id: status.job_id.clone().unwrap_or_default(),
        shutdown_after_job_finishes: spec.shutdown_after_job_finishes.unwrap_or_default(),
        cluster_selector: spec.cluster_selector.clone().unwrap_or_default(),
        cluster_spec,
        ttl_seconds_after_finished: spec.ttl_seconds_after_finished.unwrap_or_default(),
        job_submitter: spec.submitter_pod_template.as_ref().map(submitter_to_api),
        entrypoint_num_cpus: spec
            .entrypoint_num_cpus
            .filter(|v| *v > 0.0)
            .unwrap_or_default(),
        entrypoint_num_gpus: spec
            .entrypoint_num_gpus
            .filter(|v| *v > 0.0)
            .unwrap_or_default(),
        entrypoint_resources: spec.entrypoint_resources.clone().unwrap_or_default(),
        // Not read back, like the Go server.
        active_deadline_seconds: 0,
        created_at: metadata.creation_timestamp.as_ref().map(whole_seconds),
        delete_at: metadata.deletion_timestamp.as_ref().map(whole_seconds),
        job_status: status.job_status.clone().unwrap_or_default(),
        job_deployment_status: status.job_deployment_status.clone().unwrap_or_default(),
        message: status.message.clone().unwrap_or_default(),
        start_time: seconds(&status.start_time),
        end_time: seconds(&status.end_time),
        ray_cluster_name: status.ray_cluster_name.clone().unwrap_or_default(),
        name,
        namespace,
    })
}

/// A time to the second (the fraction dropped).
fn whole_seconds(time: &Time) -> kuberay_api::Timestamp {
    kuberay_api::Timestamp::from_seconds(time.0.as_second())
}

/// The submitter back: image, and cpu/memory only when they differ from the defaults.
fn submitter_to_api(template: &PodTemplateSpec) -> proto::RayJobSubmitter {
    let container = template.spec.as_ref().and_then(|s| s.containers.first());
    let limit = |name: &str, default: &str| -> String {
        let value = container
            .and_then(|c| c.resources.as_ref())
            .and_then(|r| r.limits.as_ref())
            .and_then(|l| l.get(name))
            .map(|q| crate::quantity::canonicalize(&q.0).unwrap_or_else(|_| q.0.clone()))
            .unwrap_or_else(|| "0".to_string());
        if value == default {
            String::new()
        } else {
            value
        }
    };
    proto::RayJobSubmitter {
        image: container.and_then(|c| c.image.clone()).unwrap_or_default(),
        cpu: limit("cpu", DEFAULT_SUBMITTER_CPU),
        memory: limit("memory", DEFAULT_SUBMITTER_MEMORY),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn selector_job() -> proto::RayJob {
        proto::RayJob {
            name: "test".into(),
            namespace: "ns".into(),
            user: "test".into(),
            entrypoint: "python /home/ray/samples/sample_code.py".into(),
            metadata: BTreeMap::from([("job_submission_id".into(), "123".into())]),
            runtime_env: "pip:\n  - requests==2.26.0\n".into(),
            cluster_selector: BTreeMap::from([("ray.io/user".into(), "test".into())]),
            job_submitter: Some(proto::RayJobSubmitter {
                image: "image".into(),
                cpu: "400m".into(),
                memory: "150Mi".into(),
            }),
            entrypoint_num_cpus: 2.0,
            entrypoint_num_gpus: 1.0,
            active_deadline_seconds: 120,
            shutdown_after_job_finishes: true,
            ..Default::default()
        }
    }

    #[test]
    fn selector_job_becomes_the_go_servers_object() {
        let object = to_ray_job(&selector_job(), &BTreeMap::new()).unwrap();
        let json = serde_json::to_value(&object).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "apiVersion": "ray.io/v1",
                "kind": "RayJob",
                "metadata": {
                    "name": "test",
                    "namespace": "ns",
                    "labels": {
                        "ray.io/cluster-name": "test",
                        "ray.io/user": "test",
                        "app.kubernetes.io/name": "kuberay",
                        "app.kubernetes.io/managed-by": "kuberay-apiserver"
                    },
                    "annotations": {"job_submission_id": "123"}
                },
                "spec": {
                    "activeDeadlineSeconds": 120,
                    "submitterPodTemplate": {
                        "spec": {
                            "containers": [{
                                "name": "ray-job-submitter",
                                "image": "image",
                                "resources": {
                                    "limits": {"cpu": "400m", "memory": "150Mi"},
                                    "requests": {"cpu": "400m", "memory": "150Mi"}
                                }
                            }],
                            "restartPolicy": "Never"
                        }
                    },
                    "metadata": {"job_submission_id": "123"},
                    "clusterSelector": {"ray.io/user": "test"},
                    "entrypoint": "python /home/ray/samples/sample_code.py",
                    "runtimeEnvYAML": "pip:\n  - requests==2.26.0\n",
                    "entrypointNumCpus": 2.0,
                    "entrypointNumGpus": 1.0,
                    "shutdownAfterJobFinishes": true
                }
            })
        );
    }

    #[test]
    fn submitter_quantities_are_checked_and_defaulted() {
        let mut job = selector_job();
        job.job_submitter = Some(proto::RayJobSubmitter {
            image: "image".into(),
            memory: "1GB".into(),
            ..Default::default()
        });
        match to_ray_job(&job, &BTreeMap::new()) {
            Err(CoreError::InvalidInput(text)) => assert!(
                text.starts_with("memory for ray job submitter 1GB is not specified correctly: "),
                "{text}"
            ),
            other => panic!("{other:?}"),
        }
        job.job_submitter = Some(proto::RayJobSubmitter {
            image: "image".into(),
            ..Default::default()
        });
        let object = to_ray_job(&job, &BTreeMap::new()).unwrap();
        let back = from_ray_job(&object).unwrap();
        assert_eq!(
            back.job_submitter,
            Some(proto::RayJobSubmitter {
                image: "image".into(),
                ..Default::default()
            }),
            "default cpu 1 and memory 1Gi are not echoed"
        );
    }

    #[test]
    fn round_trip_keeps_fields_and_documented_asymmetries() {
        let job = selector_job();
        let back = from_ray_job(&to_ray_job(&job, &BTreeMap::new()).unwrap()).unwrap();
        assert_eq!(
            back,
            proto::RayJob {
                active_deadline_seconds: 0,
                ..job
            }
        );
    }

    #[test]
    fn validation_texts() {
        let err = |job: Option<&proto::RayJob>| match validate_create("ns", job) {
            Err(CoreError::InvalidInput(text)) => text,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            err(None),
            "The namespace in the request is different from the namespace in the job definition."
        );
        let mut job = selector_job();
        job.user.clear();
        assert_eq!(
            err(Some(&job)),
            "User who create the job is empty. Please specify a valid value."
        );
        let mut job = selector_job();
        job.cluster_spec = Some(proto::ClusterSpec::default());
        assert_eq!(
            err(Some(&job)),
            "Cluster Spec Object requires HeadGroupSpec to be populated. Please specify one."
        );
        let mut job = selector_job();
        job.cluster_selector.clear();
        assert_eq!(
            err(Some(&job)),
            "A ClusterSpec object is required. Please specify one."
        );
        let job = selector_job();
        assert_eq!(validate_create("ns", Some(&job)), Ok(&job));
    }
}
