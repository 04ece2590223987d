//! Environment variables: `EnvironmentVariables` <-> container `env`
//! (docs/contract/conversion.md#environment-variables and #group-specs-back).

use k8s_openapi::api::core::v1::{
    ConfigMapKeySelector, EnvVar, EnvVarSource, ObjectFieldSelector, ResourceFieldSelector,
    SecretKeySelector,
};
use kuberay_api::proto::{self, env_value_from::Source};

/// Env names the head container carries for the server or the operator, hidden on read-back.
pub(crate) const HEAD_RESERVED: [&str; 5] = [
    "MY_POD_IP",
    "RAY_CLUSTER_NAME",
    "RAY_PORT",
    "RAY_ADDRESS",
    "RAY_USAGE_STATS_KUBERAY_IN_USE",
];

/// Env names the worker container carries for the server or the operator, hidden on read-back.
pub(crate) const WORKER_RESERVED: [&str; 15] = [
    "RAY_DISABLE_DOCKER_CPU_WARNING",
    "TYPE",
    "CPU_REQUEST",
    "CPU_LIMITS",
    "MEMORY_REQUESTS",
    "MEMORY_LIMITS",
    "MY_POD_NAME",
    "MY_POD_IP",
    "FQ_RAY_IP",
    "RAY_IP",
    "RAY_CLUSTER_NAME",
    "RAY_PORT",
    "RAY_ADDRESS",
    "RAY_USAGE_STATS_KUBERAY_IN_USE",
    "REDIS_PASSWORD",
];

/// A plain `name=value` variable (an empty value is left out, as Go's `omitempty` does).
pub(crate) fn plain(name: &str, value: &str) -> EnvVar {
    EnvVar {
        name: name.to_string(),
        value: (!value.is_empty()).then(|| value.to_string()),
        value_from: None,
    }
}

/// A variable read from a pod field (`status.podIP`, `metadata.name`, ...).
pub(crate) fn field_ref(name: &str, field_path: &str) -> EnvVar {
    from_source(
        name,
        EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: field_path.to_string(),
                api_version: None,
            }),
            ..Default::default()
        },
    )
}

/// A variable read from a container resource (`requests.cpu`, ...).
pub(crate) fn resource_ref(name: &str, container: &str, resource: &str) -> EnvVar {
    from_source(
        name,
        EnvVarSource {
            resource_field_ref: Some(ResourceFieldSelector {
                container_name: Some(container.to_string()),
                resource: resource.to_string(),
                divisor: None,
            }),
            ..Default::default()
        },
    )
}

fn from_source(name: &str, source: EnvVarSource) -> EnvVar {
    EnvVar {
        name: name.to_string(),
        value: None,
        value_from: Some(source),
    }
}

/// The container variables of `envs`: all `values`, then all `valuesFrom`, each sorted by name.
pub(crate) fn to_env_vars(envs: Option<&proto::EnvironmentVariables>) -> Vec<EnvVar> {
    let Some(proto::EnvironmentVariables {
        values,
        values_from,
    }) = envs
    else {
        return Vec::new();
    };
    let mut converted: Vec<EnvVar> = values
        .iter()
        .map(|(name, value)| plain(name, value))
        .collect();
    converted.extend(
        values_from
            .iter()
            .map(|(name, from)| value_from(name, from)),
    );
    converted
}

fn value_from(name: &str, from: &proto::EnvValueFrom) -> EnvVar {
    let proto::EnvValueFrom {
        source,
        name: object,
        key,
    } = from;
    let source = match Source::try_from(*source) {
        Ok(Source::Configmap) => EnvVarSource {
            config_map_key_ref: Some(ConfigMapKeySelector {
                name: object.clone(),
                key: key.clone(),
                optional: None,
            }),
            ..Default::default()
        },
        Ok(Source::Secret) => EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: object.clone(),
                key: key.clone(),
                optional: None,
            }),
            ..Default::default()
        },
        Ok(Source::Resourcefield) => EnvVarSource {
            resource_field_ref: Some(ResourceFieldSelector {
                container_name: Some(object.clone()),
                resource: key.clone(),
                divisor: None,
            }),
            ..Default::default()
        },
        // FIELD and any unknown number: the name is not used.
        Ok(Source::Field) | Err(_) => EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: key.clone(),
                api_version: None,
            }),
            ..Default::default()
        },
    };
    from_source(name, source)
}

/// Reads container variables back, skipping `reserved` names: plain values to `values`,
/// references to `valuesFrom`; a reference of any other kind is dropped.
pub(crate) fn from_env_vars(env: &[EnvVar], reserved: &[&str]) -> proto::EnvironmentVariables {
    let mut result = proto::EnvironmentVariables::default();
    for var in env {
        if reserved.contains(&var.name.as_str()) {
            continue;
        }
        match &var.value_from {
            None => {
                result
                    .values
                    .insert(var.name.clone(), var.value.clone().unwrap_or_default());
            }
            Some(source) => {
                if let Some(from) = env_value_from(source) {
                    result.values_from.insert(var.name.clone(), from);
                }
            }
        }
    }
    result
}

fn env_value_from(source: &EnvVarSource) -> Option<proto::EnvValueFrom> {
    let EnvVarSource {
        config_map_key_ref,
        field_ref,
        resource_field_ref,
        secret_key_ref,
    } = source;
    if let Some(selector) = config_map_key_ref {
        return Some(proto::EnvValueFrom {
            source: Source::Configmap as i32,
            name: selector.name.clone(),
            key: selector.key.clone(),
        });
    }
    if let Some(selector) = secret_key_ref {
        return Some(proto::EnvValueFrom {
            source: Source::Secret as i32,
            name: selector.name.clone(),
            key: selector.key.clone(),
        });
    }
    if let Some(selector) = resource_field_ref {
        return Some(proto::EnvValueFrom {
            source: Source::Resourcefield as i32,
            name: selector.container_name.clone().unwrap_or_default(),
            key: selector.resource.clone(),
        });
    }
    if let Some(selector) = field_ref {
        return Some(proto::EnvValueFrom {
            source: Source::Field as i32,
            name: String::new(),
            key: selector.field_path.clone(),
        });
    }
    None
}
