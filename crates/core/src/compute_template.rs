//! Compute templates: validation, and the two-way mapping to the ConfigMap that stores each one.
//!
//! The ConfigMap layout (name, labels, data keys and value formats) is the one the Go server
//! writes, so both servers can share the templates of a cluster.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kuberay_api::proto::{ComputeTemplate, PodToleration};
use serde::Serialize;

use crate::CoreError;
use crate::quantity::Quantity;
use crate::{labels, names};

/// Memory unit written when a template is created without one.
pub const DEFAULT_MEMORY_UNIT: &str = "Gi";

/// Checks a create request: the namespace from the path, and the template from the body.
///
/// The checks and their texts are the Go server's, in its order, followed by our check that the
/// memory unit forms a valid Kubernetes quantity (the Go server stores such a template and fails
/// later, when a cluster uses it). Answers the valid template.
pub fn validate_create<'a>(
    namespace: &str,
    template: Option<&'a ComputeTemplate>,
) -> Result<&'a ComputeTemplate, CoreError> {
    let invalid = |text: &str| Err(CoreError::InvalidInput(text.to_string()));
    if namespace.is_empty() {
        return invalid("Namespace is empty. Please specify a valid value.");
    }
    let template = match template {
        Some(t) if t.namespace == namespace => t,
        _ => {
            return invalid(
                "The namespace in the request is different from the namespace defined in the compute template.",
            );
        }
    };
    if template.name.is_empty() {
        return invalid("Compute template name is empty. Please specify a valid value.");
    }
    if template.cpu == 0 {
        return invalid("Cpu amount is zero. Please specify a valid value.");
    }
    if template.memory == 0 {
        return invalid("Memory amount is zero. Please specify a valid value.");
    }
    let unit = memory_unit_or_default(&template.memory_unit);
    let quantity = format!("{}{}", template.memory, unit);
    if let Err(error) = Quantity::parse(&quantity) {
        return Err(CoreError::InvalidInput(format!(
            "Memory unit {unit} is not a valid Kubernetes quantity suffix (invalid memory quantity \"{quantity}\": {error}). Please specify a valid value such as Mi or Gi."
        )));
    }
    names::check_namespace(namespace)?;
    names::check_object_name("Compute template name", &template.name)?;
    Ok(template)
}

fn memory_unit_or_default(unit: &str) -> &str {
    if unit.is_empty() {
        DEFAULT_MEMORY_UNIT
    } else {
        unit
    }
}

/// One toleration as the Go server stores it inside the ConfigMap (`omitempty` on every key).
#[derive(Serialize)]
struct StoredToleration<'a> {
    #[serde(skip_serializing_if = "str::is_empty")]
    key: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    operator: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    value: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    effect: &'a str,
}

/// Builds the ConfigMap that stores `template` (validated by [`validate_create`]).
pub fn to_config_map(template: &ComputeTemplate) -> ConfigMap {
    let ComputeTemplate {
        name,
        namespace,
        cpu,
        memory,
        gpu,
        gpu_accelerator,
        tolerations,
        extended_resources,
        memory_unit,
    } = template;

    let mut data = BTreeMap::new();
    data.insert("name".to_string(), name.clone());
    data.insert("namespace".to_string(), namespace.clone());
    data.insert("cpu".to_string(), cpu.to_string());
    data.insert("memory".to_string(), memory.to_string());
    data.insert(
        "memory_unit".to_string(),
        memory_unit_or_default(memory_unit).to_string(),
    );
    data.insert("gpu".to_string(), gpu.to_string());
    data.insert("gpu_accelerator".to_string(), gpu_accelerator.clone());
    let extended = if extended_resources.is_empty() {
        "null".to_string()
    } else {
        // A BTreeMap serialises with sorted keys, as Go's encoding/json does for maps.
        serde_json::to_string(extended_resources).expect("a string -> u32 map always serialises")
    };
    data.insert("extended_resources".to_string(), extended);
    if !tolerations.is_empty() {
        let stored: Vec<StoredToleration<'_>> = tolerations
            .iter()
            .map(|t| StoredToleration {
                key: &t.key,
                operator: &t.operator,
                value: &t.value,
                effect: &t.effect,
            })
            .collect();
        data.insert(
            "tolerations".to_string(),
            serde_json::to_string(&stored).expect("tolerations always serialise"),
        );
    }

    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: Some(namespace.clone()),
            labels: Some(BTreeMap::from([
                (
                    labels::CONFIG_TYPE.to_string(),
                    labels::CONFIG_TYPE_COMPUTE_TEMPLATE.to_string(),
                ),
                (labels::COMPUTE_TEMPLATE.to_string(), name.clone()),
            ])),
            ..ObjectMeta::default()
        },
        data: Some(data),
        ..ConfigMap::default()
    }
}

/// Reads a template back from its ConfigMap.
///
/// Like the Go server, this never fails: numbers that do not parse read as 0, numbers above
/// `u32::MAX` as `u32::MAX`, and JSON that does not decode leaves the field (or the single
/// mistyped value) empty.
pub fn from_config_map(config_map: &ConfigMap) -> ComputeTemplate {
    let empty = BTreeMap::new();
    let data = config_map.data.as_ref().unwrap_or(&empty);
    let text = |key: &str| data.get(key).cloned().unwrap_or_default();
    let number = |key: &str| data.get(key).map_or(0, |v| parse_u32_saturating(v));

    ComputeTemplate {
        name: config_map.metadata.name.clone().unwrap_or_default(),
        namespace: config_map.metadata.namespace.clone().unwrap_or_default(),
        cpu: number("cpu"),
        memory: number("memory"),
        gpu: number("gpu"),
        gpu_accelerator: text("gpu_accelerator"),
        tolerations: data
            .get("tolerations")
            .map(|v| decode_tolerations(v))
            .unwrap_or_default(),
        extended_resources: data
            .get("extended_resources")
            .map(|v| decode_extended_resources(v))
            .unwrap_or_default(),
        memory_unit: text("memory_unit"),
    }
}

/// Base-10 unsigned parse with Go's `ParseUint(s, 10, 32)` outcomes: digits only, saturating.
fn parse_u32_saturating(text: &str) -> u32 {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return 0;
    }
    text.parse().unwrap_or(u32::MAX)
}

fn decode_tolerations(text: &str) -> Vec<PodToleration> {
    let Ok(serde_json::Value::Array(items)) = serde_json::from_str::<serde_json::Value>(text)
    else {
        return Vec::new();
    };
    items
        .iter()
        .map(|item| {
            let field = |key: &str| {
                item.get(key)
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or_default()
                    .to_string()
            };
            PodToleration {
                key: field("key"),
                operator: field("operator"),
                value: field("value"),
                effect: field("effect"),
            }
        })
        .collect()
}

fn decode_extended_resources(text: &str) -> BTreeMap<String, u32> {
    let Ok(serde_json::Value::Object(entries)) = serde_json::from_str::<serde_json::Value>(text)
    else {
        return BTreeMap::new();
    };
    entries
        .into_iter()
        .map(|(name, value)| {
            let count = value
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .unwrap_or(0);
            (name, count)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full_template() -> ComputeTemplate {
        ComputeTemplate {
            name: "gpu-template".into(),
            namespace: "ray-system".into(),
            cpu: 8,
            memory: 16,
            gpu: 2,
            gpu_accelerator: "nvidia.com/gpu".into(),
            tolerations: vec![
                PodToleration {
                    key: "blah1".into(),
                    operator: "Exists".into(),
                    value: String::new(),
                    effect: "NoExecute".into(),
                },
                PodToleration {
                    key: "dedicated".into(),
                    operator: "Equal".into(),
                    value: "ray".into(),
                    effect: "NoSchedule".into(),
                },
            ],
            extended_resources: BTreeMap::from([
                ("vpc.amazonaws.com/efa".to_string(), 32),
                ("example.com/fpga".to_string(), 1),
            ]),
            memory_unit: "Mi".into(),
        }
    }

    #[test]
    fn config_map_has_the_go_server_layout() {
        let cm = to_config_map(&full_template());
        let json = serde_json::to_value(&cm).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {
                    "name": "gpu-template",
                    "namespace": "ray-system",
                    "labels": {
                        "ray.io/config-type": "compute-template",
                        "ray.io/compute-template": "gpu-template"
                    }
                },
                "data": {
                    "name": "gpu-template",
                    "namespace": "ray-system",
                    "cpu": "8",
                    "memory": "16",
                    "memory_unit": "Mi",
                    "gpu": "2",
                    "gpu_accelerator": "nvidia.com/gpu",
                    "extended_resources": "{\"example.com/fpga\":1,\"vpc.amazonaws.com/efa\":32}",
                    "tolerations": "[{\"key\":\"blah1\",\"operator\":\"Exists\",\"effect\":\"NoExecute\"},{\"key\":\"dedicated\",\"operator\":\"Equal\",\"value\":\"ray\",\"effect\":\"NoSchedule\"}]"
                }
            })
        );
    }

    #[test]
    fn minimal_template_gets_defaults_and_null_resources() {
        let template = ComputeTemplate {
            name: "t".into(),
            namespace: "ns".into(),
            cpu: 2,
            memory: 4,
            ..Default::default()
        };
        let data = to_config_map(&template).data.unwrap();
        assert_eq!(data["memory_unit"], "Gi");
        assert_eq!(data["gpu"], "0");
        assert_eq!(data["gpu_accelerator"], "");
        assert_eq!(data["extended_resources"], "null");
        assert!(!data.contains_key("tolerations"));
        let back = from_config_map(&to_config_map(&template));
        assert_eq!(
            back,
            ComputeTemplate {
                memory_unit: "Gi".into(),
                ..template
            }
        );
    }

    #[test]
    fn every_field_round_trips() {
        let template = full_template();
        assert_eq!(from_config_map(&to_config_map(&template)), template);
    }

    #[test]
    fn reading_is_lenient_like_the_go_server() {
        let cm = ConfigMap {
            metadata: ObjectMeta {
                name: Some("hand-made".into()),
                namespace: Some("ns".into()),
                ..Default::default()
            },
            data: Some(BTreeMap::from([
                ("name".to_string(), "ignored".to_string()),
                ("cpu".to_string(), "two".to_string()),
                ("memory".to_string(), "99999999999".to_string()),
                ("gpu".to_string(), "-1".to_string()),
                (
                    "extended_resources".to_string(),
                    "{\"a\":-1,\"b\":1.5,\"c\":3}".to_string(),
                ),
                (
                    "tolerations".to_string(),
                    "[{\"key\":5,\"operator\":\"Exists\"}]".to_string(),
                ),
            ])),
            ..Default::default()
        };
        let t = from_config_map(&cm);
        assert_eq!(t.name, "hand-made");
        assert_eq!(t.cpu, 0);
        assert_eq!(t.memory, u32::MAX);
        assert_eq!(t.gpu, 0);
        assert_eq!(t.memory_unit, "");
        assert_eq!(
            t.extended_resources,
            BTreeMap::from([("a".into(), 0), ("b".into(), 0), ("c".into(), 3)])
        );
        assert_eq!(
            t.tolerations,
            vec![PodToleration {
                operator: "Exists".into(),
                ..Default::default()
            }]
        );

        let broken = ConfigMap {
            data: Some(BTreeMap::from([
                ("extended_resources".to_string(), "{not json".to_string()),
                ("tolerations".to_string(), "{}".to_string()),
            ])),
            ..Default::default()
        };
        let t = from_config_map(&broken);
        assert!(t.extended_resources.is_empty());
        assert!(t.tolerations.is_empty());
    }

    #[test]
    fn validation_order_and_texts() {
        let ok = ComputeTemplate {
            name: "t".into(),
            namespace: "ns".into(),
            cpu: 1,
            memory: 1,
            ..Default::default()
        };
        let err = |ns: &str, t: Option<&ComputeTemplate>| match validate_create(ns, t) {
            Err(CoreError::InvalidInput(text)) => text,
            other => panic!("expected an invalid-input error, got {other:?}"),
        };
        assert_eq!(validate_create("ns", Some(&ok)), Ok(&ok));
        assert_eq!(
            err("", Some(&ok)),
            "Namespace is empty. Please specify a valid value."
        );
        assert_eq!(
            err("ns", None),
            "The namespace in the request is different from the namespace defined in the compute template."
        );
        assert_eq!(
            err("other", Some(&ok)),
            "The namespace in the request is different from the namespace defined in the compute template."
        );
        let no_name = ComputeTemplate {
            name: String::new(),
            cpu: 0,
            ..ok.clone()
        };
        assert_eq!(
            err("ns", Some(&no_name)),
            "Compute template name is empty. Please specify a valid value."
        );
        let no_cpu = ComputeTemplate {
            cpu: 0,
            memory: 0,
            ..ok.clone()
        };
        assert_eq!(
            err("ns", Some(&no_cpu)),
            "Cpu amount is zero. Please specify a valid value."
        );
        let no_memory = ComputeTemplate {
            memory: 0,
            ..ok.clone()
        };
        assert_eq!(
            err("ns", Some(&no_memory)),
            "Memory amount is zero. Please specify a valid value."
        );
    }

    #[test]
    fn memory_units_must_be_quantity_suffixes() {
        for unit in ["", "Gi", "Mi", "Ki", "G", "M", "k", "m", "e3", "E"] {
            let t = ComputeTemplate {
                name: "t".into(),
                namespace: "ns".into(),
                cpu: 1,
                memory: 4,
                memory_unit: unit.into(),
                ..Default::default()
            };
            assert_eq!(validate_create("ns", Some(&t)), Ok(&t), "unit {unit:?}");
        }
        for unit in ["GB", "gi", "Gib", " Gi", "e", "G i"] {
            let t = ComputeTemplate {
                name: "t".into(),
                namespace: "ns".into(),
                cpu: 1,
                memory: 4,
                memory_unit: unit.into(),
                ..Default::default()
            };
            match validate_create("ns", Some(&t)) {
                Err(CoreError::InvalidInput(text)) => {
                    assert!(text.starts_with(&format!("Memory unit {unit} is not a valid")))
                }
                other => panic!("unit {unit:?}: {other:?}"),
            }
        }
    }
}
