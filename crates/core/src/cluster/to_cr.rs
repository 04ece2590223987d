//! API -> CR: the embedded cluster spec and the RayCluster object
//! (docs/contract/conversion.md#cluster-to-raycluster).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Capabilities, Container, ContainerPort, EnvVar, ExecAction, Lifecycle, LifecycleHandler,
    LocalObjectReference, PodSpec, PodTemplateSpec, ResourceRequirements, SecurityContext,
    Toleration,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity as K8sQuantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kuberay_api::proto;

use super::{
    ClusterSpecOptions, DEFAULT_GPU_RESOURCE, DEFAULT_IMAGE_REPOSITORY, HEAD_CONTAINER,
    WORKER_CONTAINER, env, volumes,
};
use crate::CoreError;
use crate::crd;
use crate::labels;
use crate::omit::{non_empty, non_empty_map};
use crate::quantity::canonicalize;

/// The embedded cluster spec (also used for RayJob.spec.rayClusterSpec /
/// RayService.spec.rayClusterConfig).
///
/// Input problems (volume storage, autoscaler quantities) -> `InvalidInput` with the Go server's
/// cause text (listed in docs/contract/conversion.md#conversion-errors); a template whose stored
/// memory unit does not parse, or a missing template -> `InvalidData(text naming the template)`.
/// Problems are reported in the Go server's order: head group, then each worker group, then the
/// autoscaler options.
pub fn build_cluster_spec(
    spec: &proto::ClusterSpec,
    templates: &BTreeMap<String, proto::ComputeTemplate>,
    version: &str,
    options: ClusterSpecOptions<'_>,
) -> Result<crd::RayClusterSpec, CoreError> {
    let proto::ClusterSpec {
        head_group_spec,
        worker_group_spec,
        enable_in_tree_autoscaling,
        autoscaler_options,
        head_service_annotations,
    } = spec;
    let head = head_group_spec.as_ref().ok_or_else(|| {
        CoreError::InvalidInput(
            "Cluster Spec Object requires HeadGroupSpec to be populated. Please specify one."
                .into(),
        )
    })?;
    let head_group_spec = build_head_group(head, templates, version, options)?;
    let mut workers = Vec::with_capacity(worker_group_spec.len());
    for worker in worker_group_spec {
        workers.push(build_worker_group(worker, templates, version, options)?);
    }
    let autoscaler_options = if *enable_in_tree_autoscaling {
        autoscaler_options
            .as_ref()
            .map(build_autoscaler_options)
            .transpose()?
    } else {
        None
    };
    Ok(crd::RayClusterSpec {
        autoscaler_options,
        head_service_annotations: non_empty_map(head_service_annotations),
        enable_in_tree_autoscaling: enable_in_tree_autoscaling.then_some(true),
        head_group_spec,
        ray_version: non_empty(version),
        worker_group_specs: (!workers.is_empty()).then_some(workers),
        ..Default::default()
    })
}

/// The whole RayCluster object: the six labels and the request's annotations plus
/// `ray.io/creation-timestamp` with `created_at` as its value
/// (docs/contract/conversion.md#object-metadata).
pub fn to_ray_cluster(
    cluster: &proto::Cluster,
    templates: &BTreeMap<String, proto::ComputeTemplate>,
    created_at: &str,
) -> Result<crd::RayCluster, CoreError> {
    let proto::Cluster {
        name,
        namespace,
        user,
        version,
        environment,
        cluster_spec,
        annotations,
        envs,
        // Output-only fields, ignored on input.
        created_at: _,
        deleted_at: _,
        cluster_state: _,
        events: _,
        service_endpoint: _,
    } = cluster;
    let spec = cluster_spec.as_ref().ok_or_else(|| {
        CoreError::InvalidInput("A ClusterSpec object is required. Please specify one.".into())
    })?;
    let serve_ports = annotations
        .get(labels::ENABLE_SERVE_SERVICE)
        .is_some_and(|value| value == labels::ENABLE_SERVE_SERVICE_VALUE);
    let spec = build_cluster_spec(
        spec,
        templates,
        version,
        ClusterSpecOptions {
            cluster_envs: envs.as_ref(),
            serve_ports,
        },
    )?;

    let environment = match proto::cluster::Environment::try_from(*environment) {
        Ok(known) => known.as_str_name().to_string(),
        Err(_) => environment.to_string(),
    };
    let object_labels = labels::object_labels([
        (labels::CLUSTER_NAME, name.clone()),
        (labels::USER, user.clone()),
        (labels::VERSION, version.clone()),
        (labels::ENVIRONMENT, environment),
    ]);
    let mut object_annotations = annotations.clone();
    object_annotations.insert(
        labels::CREATION_TIMESTAMP.to_string(),
        created_at.to_string(),
    );
    Ok(crd::RayCluster {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: Some(namespace.clone()),
            labels: Some(object_labels),
            annotations: Some(object_annotations),
            ..Default::default()
        },
        spec,
        ..Default::default()
    })
}

fn template_of<'a>(
    templates: &'a BTreeMap<String, proto::ComputeTemplate>,
    name: &str,
) -> Result<&'a proto::ComputeTemplate, CoreError> {
    templates
        .get(name)
        .ok_or_else(|| CoreError::InvalidData(format!("Compute template {name} was not resolved")))
}

/// What the head and worker pod templates share, taken from either group message.
struct GroupInput<'a> {
    image: &'a str,
    image_pull_policy: &'a str,
    volumes: &'a [proto::Volume],
    service_account: &'a str,
    image_pull_secret: &'a str,
    environment: Option<&'a proto::EnvironmentVariables>,
    annotations: &'a BTreeMap<String, String>,
    labels: &'a BTreeMap<String, String>,
    security_context: Option<&'a proto::SecurityContext>,
}

/// `split_group!(let input, proto::HeadGroupSpec { own fields } = head)` binds the group
/// message's own fields, and `input`: the [`GroupInput`] of the fields head and worker messages
/// share (two generated types with the same field names). The pattern stays exhaustive, so a
/// field added to either message has to be placed here or among its own.
macro_rules! split_group {
    (let $input:ident, $message:path { $($own:ident),* $(,)? } = $group:expr) => {
        let $message {
            image,
            image_pull_policy,
            volumes,
            service_account,
            image_pull_secret,
            environment,
            annotations,
            labels,
            security_context,
            $($own),*
        } = $group;
        let $input = GroupInput {
            image,
            image_pull_policy,
            volumes,
            service_account,
            image_pull_secret,
            environment: environment.as_ref(),
            annotations,
            labels,
            security_context: security_context.as_ref(),
        };
    };
}

fn build_head_group(
    head: &proto::HeadGroupSpec,
    templates: &BTreeMap<String, proto::ComputeTemplate>,
    version: &str,
    options: ClusterSpecOptions<'_>,
) -> Result<crd::HeadGroupSpec, CoreError> {
    split_group!(let input, proto::HeadGroupSpec {
        compute_template,
        service_type,
        enable_ingress,
        ray_start_params,
    } = head);
    let template = template_of(templates, compute_template)?;
    let mut fixed_env = vec![env::field_ref("MY_POD_IP", "status.podIP")];
    fixed_env.extend(env::to_env_vars(options.cluster_envs));
    let mut ports = vec![
        named_port("redis", 6379),
        named_port("head", 10001),
        named_port("dashboard", 8265),
        named_port("metrics", 8080),
    ];
    if options.serve_ports {
        ports.push(named_port("dashboard-agent", 52365));
        ports.push(named_port("serve", 8000));
    }
    let container = Container {
        name: HEAD_CONTAINER.to_string(),
        ports: Some(ports),
        ..Default::default()
    };
    let pod_template = build_pod_template(&input, template, version, container, fixed_env)?;
    Ok(crd::HeadGroupSpec {
        template: pod_template,
        enable_ingress: enable_ingress.then_some(true),
        ray_start_params: non_empty_map(ray_start_params),
        service_type: non_empty(service_type),
        ..Default::default()
    })
}

fn build_worker_group(
    worker: &proto::WorkerGroupSpec,
    templates: &BTreeMap<String, proto::ComputeTemplate>,
    version: &str,
    options: ClusterSpecOptions<'_>,
) -> Result<crd::WorkerGroupSpec, CoreError> {
    split_group!(let input, proto::WorkerGroupSpec {
        group_name,
        compute_template,
        replicas,
        min_replicas,
        max_replicas,
        ray_start_params,
    } = worker);
    let template = template_of(templates, compute_template)?;
    let mut fixed_env = vec![
        env::plain("RAY_DISABLE_DOCKER_CPU_WARNING", "1"),
        env::plain("TYPE", "worker"),
        env::resource_ref("CPU_REQUEST", WORKER_CONTAINER, "requests.cpu"),
        env::resource_ref("CPU_LIMITS", WORKER_CONTAINER, "limits.cpu"),
        env::resource_ref("MEMORY_REQUESTS", WORKER_CONTAINER, "requests.memory"),
        env::resource_ref("MEMORY_LIMITS", WORKER_CONTAINER, "limits.memory"),
        env::field_ref("MY_POD_NAME", "metadata.name"),
        env::field_ref("MY_POD_IP", "status.podIP"),
    ];
    fixed_env.extend(env::to_env_vars(options.cluster_envs));
    let container = Container {
        name: WORKER_CONTAINER.to_string(),
        ports: Some(vec![ContainerPort {
            container_port: 80,
            ..Default::default()
        }]),
        lifecycle: Some(Lifecycle {
            pre_stop: Some(LifecycleHandler {
                exec: Some(ExecAction {
                    command: Some(vec!["/bin/sh".into(), "-c".into(), "ray stop".into()]),
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let pod_template = build_pod_template(&input, template, version, container, fixed_env)?;
    let or_replicas = |value: i32| if value != 0 { value } else { *replicas };
    Ok(crd::WorkerGroupSpec {
        group_name: group_name.clone(),
        replicas: Some(*replicas),
        min_replicas: Some(or_replicas(*min_replicas)),
        max_replicas: Some(or_replicas(*max_replicas)),
        ray_start_params: non_empty_map(ray_start_params),
        template: pod_template,
        scale_strategy: Some(crd::ScaleStrategy::default()),
        ..Default::default()
    })
}

fn named_port(name: &str, port: i32) -> ContainerPort {
    ContainerPort {
        name: Some(name.to_string()),
        container_port: port,
        ..Default::default()
    }
}

/// Completes `container` (name, ports, lifecycle already set) and wraps it in the pod template.
fn build_pod_template(
    input: &GroupInput<'_>,
    template: &proto::ComputeTemplate,
    version: &str,
    mut container: Container,
    fixed_env: Vec<EnvVar>,
) -> Result<PodTemplateSpec, CoreError> {
    // The Go server builds the volumes before it parses the template's quantities.
    let mounts = volumes::to_mounts(input.volumes);
    let pod_volumes = volumes::to_pod_volumes(input.volumes)?;
    let resources = template_resources(template)?;

    container.image = Some(if input.image.is_empty() {
        format!("{DEFAULT_IMAGE_REPOSITORY}:{version}")
    } else {
        input.image.to_string()
    });
    container.image_pull_policy = Some(container_pull_policy(input.image_pull_policy).to_string());
    let mut env_vars = fixed_env;
    env_vars.extend(env::to_env_vars(input.environment));
    container.env = Some(env_vars);
    container.resources = Some(ResourceRequirements {
        limits: Some(resources.clone()),
        requests: Some(resources),
        ..Default::default()
    });
    container.volume_mounts = (!mounts.is_empty()).then_some(mounts);
    container.security_context = input.security_context.map(security_context);

    let mut annotations = BTreeMap::from([
        (
            labels::COMPUTE_TEMPLATE_ANNOTATION.to_string(),
            template.name.clone(),
        ),
        (
            labels::COMPUTE_IMAGE_ANNOTATION.to_string(),
            input.image.to_string(),
        ),
    ]);
    annotations.extend(
        input
            .annotations
            .iter()
            .map(|(k, v)| (k.clone(), v.clone())),
    );
    let tolerations: Vec<Toleration> = template.tolerations.iter().map(toleration).collect();

    Ok(PodTemplateSpec {
        metadata: Some(ObjectMeta {
            annotations: Some(annotations),
            labels: non_empty_map(input.labels),
            ..Default::default()
        }),
        spec: Some(PodSpec {
            containers: vec![container],
            tolerations: (!tolerations.is_empty()).then_some(tolerations),
            service_account_name: (input.service_account.len() > 1)
                .then(|| input.service_account.to_string()),
            image_pull_secrets: (input.image_pull_secret.len() > 1).then(|| {
                vec![LocalObjectReference {
                    name: input.image_pull_secret.to_string(),
                }]
            }),
            volumes: (!pod_volumes.is_empty()).then_some(pod_volumes),
            ..Default::default()
        }),
    })
}

/// `Always` when the value is `always` in any case, otherwise `IfNotPresent`.
fn container_pull_policy(policy: &str) -> &'static str {
    if policy.eq_ignore_ascii_case("always") {
        "Always"
    } else {
        "IfNotPresent"
    }
}

/// Requests (= limits) of a group's ray container from its compute template
/// (docs/contract/conversion.md#resources-and-tolerations).
fn template_resources(
    template: &proto::ComputeTemplate,
) -> Result<BTreeMap<String, K8sQuantity>, CoreError> {
    let proto::ComputeTemplate {
        name,
        namespace: _,
        cpu,
        memory,
        gpu,
        gpu_accelerator,
        tolerations: _,
        extended_resources,
        memory_unit,
    } = template;
    // A decimal count always parses; its canonical form may differ (`1000` -> `1k`).
    let count = |value: u32| {
        let text = value.to_string();
        K8sQuantity(canonicalize(&text).unwrap_or(text))
    };
    let memory_text = format!("{memory}{memory_unit}");
    let memory = canonicalize(&memory_text).map_err(|error| {
        CoreError::InvalidData(format!(
            "Compute template {name} has an invalid memory quantity \"{memory_text}\": {error}"
        ))
    })?;
    let mut resources = BTreeMap::from([
        ("cpu".to_string(), count(*cpu)),
        ("memory".to_string(), K8sQuantity(memory)),
    ]);
    if *gpu != 0 {
        let accelerator = if gpu_accelerator.is_empty() {
            DEFAULT_GPU_RESOURCE
        } else {
            gpu_accelerator
        };
        resources.insert(accelerator.to_string(), count(*gpu));
    }
    for (resource, value) in extended_resources {
        if *value != 0 {
            resources.insert(resource.clone(), count(*value));
        }
    }
    Ok(resources)
}

/// A template toleration as written to the pod: operator `Exists` or else `Equal`, effect
/// `NoExecute`, `NoSchedule` or else `PreferNoSchedule`.
fn toleration(toleration: &proto::PodToleration) -> Toleration {
    let proto::PodToleration {
        key,
        operator,
        value,
        effect,
    } = toleration;
    let operator = if operator == "Exists" {
        "Exists"
    } else {
        "Equal"
    };
    let effect = match effect.as_str() {
        "NoExecute" => "NoExecute",
        "NoSchedule" => "NoSchedule",
        _ => "PreferNoSchedule",
    };
    Toleration {
        key: non_empty(key),
        operator: Some(operator.to_string()),
        value: non_empty(value),
        effect: Some(effect.to_string()),
        toleration_seconds: None,
    }
}

/// The container security context (docs/contract/conversion.md#security-context):
/// `capabilities` always written.
fn security_context(context: &proto::SecurityContext) -> SecurityContext {
    let proto::SecurityContext {
        capabilities,
        privileged,
    } = context;
    let (add, drop) = match capabilities {
        Some(proto::Capabilities { add, drop }) => (add.clone(), drop.clone()),
        None => (Vec::new(), Vec::new()),
    };
    SecurityContext {
        privileged: *privileged,
        capabilities: Some(Capabilities {
            add: (!add.is_empty()).then_some(add),
            drop: (!drop.is_empty()).then_some(drop),
        }),
        ..Default::default()
    }
}

/// `autoscalerOptions` (docs/contract/conversion.md#autoscaler-options), with our fix:
/// `envs.valuesFrom` become per-variable `valueFrom` entries of `env` (like group environments),
/// not whole-object `envFrom` imports.
fn build_autoscaler_options(
    options: &proto::AutoscalerOptions,
) -> Result<crd::AutoscalerOptions, CoreError> {
    let proto::AutoscalerOptions {
        idle_timeout_seconds,
        upscaling_mode,
        image,
        image_pull_policy,
        cpu,
        memory,
        envs,
        volumes,
    } = options;
    let env_vars = env::to_env_vars(envs.as_ref());
    let mounts = volumes::to_mounts(volumes);
    let resources = if cpu.is_empty() && memory.is_empty() {
        None
    } else {
        let cpu = canonicalize(if cpu.is_empty() { "500m" } else { cpu }).map_err(|_| {
            CoreError::InvalidInput("cpu for autoscaler is not specified correctly".into())
        })?;
        let memory =
            canonicalize(if memory.is_empty() { "512Mi" } else { memory }).map_err(|_| {
                CoreError::InvalidInput("memory for autoscaler is not specified correctly".into())
            })?;
        let list = BTreeMap::from([
            ("cpu".to_string(), K8sQuantity(cpu)),
            ("memory".to_string(), K8sQuantity(memory)),
        ]);
        Some(ResourceRequirements {
            limits: Some(list.clone()),
            requests: Some(list),
            ..Default::default()
        })
    };
    Ok(crd::AutoscalerOptions {
        resources,
        image: non_empty(image),
        image_pull_policy: image_pull_policy
            .eq_ignore_ascii_case("always")
            .then(|| "Always".to_string()),
        idle_timeout_seconds: (*idle_timeout_seconds > 0).then_some(*idle_timeout_seconds),
        upscaling_mode: non_empty(upscaling_mode),
        env: (!env_vars.is_empty()).then_some(env_vars),
        volume_mounts: (!mounts.is_empty()).then_some(mounts),
        ..Default::default()
    })
}
