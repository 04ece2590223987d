//! Per-kind rules of the built-in kinds served here: the defaults the real API server
//! fills in, and the namespace rule of events.

use base64::Engine as _;
use serde_json::{Value, json};

use super::str_at;
use crate::resources::ResourceDef;
use crate::status::StatusError;

/// The kube-apiserver's rule that an event lives in the namespace of the object it is about
/// (`regarding` in events.k8s.io/v1, `involvedObject` in core v1). Events with an `eventTime`
/// ("new" clients) only need a namespace on the object unless they are in `default` or
/// `kube-system`; older events must match exactly (an object without one: `default` only).
pub(super) fn validate_event_namespace(def: &ResourceDef, obj: &Value) -> Result<(), StatusError> {
    let about = match (def.group, def.plural) {
        ("", "events") => "/involvedObject/namespace",
        ("events.k8s.io", "events") => "/regarding/namespace",
        _ => return Ok(()),
    };
    let event_namespace = str_at(obj, "/metadata/namespace");
    let object_namespace = str_at(obj, about);
    let new_style = obj.get("eventTime").is_some_and(|t| !t.is_null());
    let valid = if new_style {
        !object_namespace.is_empty() || matches!(event_namespace, "default" | "kube-system")
    } else if object_namespace.is_empty() {
        matches!(event_namespace, "" | "default")
    } else {
        object_namespace == event_namespace
    };
    if valid {
        return Ok(());
    }
    Err(StatusError::invalid(
        def,
        str_at(obj, "/metadata/name"),
        "involvedObject.namespace",
        &format!("Invalid value: \"{object_namespace}\": does not match event.namespace"),
    ))
}

/// Per-kind defaulting the real API server does for the built-in kinds served here.
pub(super) fn apply_kind_defaults(
    def: &ResourceDef,
    obj: &mut Value,
    create: bool,
) -> Result<(), StatusError> {
    match (def.group, def.plural) {
        ("", "namespaces") if create => {
            let name = str_at(obj, "/metadata/name").to_string();
            if let Some(meta) = obj["metadata"].as_object_mut() {
                let labels = meta.entry("labels").or_insert_with(|| json!({}));
                if let Some(l) = labels.as_object_mut() {
                    l.insert("kubernetes.io/metadata.name".into(), json!(name));
                }
            }
            obj["spec"] = json!({"finalizers": ["kubernetes"]});
            obj["status"] = json!({"phase": "Active"});
        }
        ("", "pods") if create => {
            obj["status"] = json!({"phase": "Pending"});
        }
        ("", "services") if create => {
            obj["status"] = json!({"loadBalancer": {}});
        }
        ("", "endpoints") => default_endpoint_protocols(obj),
        ("", "secrets") => {
            let Some(map) = obj.as_object_mut() else {
                return Err(StatusError::internal("the object is not a JSON object"));
            };
            if map
                .get("type")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
            {
                map.insert("type".into(), json!("Opaque"));
            }
            if let Some(Value::Object(sd)) = map.remove("stringData") {
                let data = map.entry("data").or_insert_with(|| json!({}));
                if !data.is_object() {
                    *data = json!({});
                }
                for (k, v) in sd {
                    let s = v.as_str().ok_or_else(|| {
                        StatusError::bad_request(format!("stringData[{k}] must be a string"))
                    })?;
                    data[k.as_str()] =
                        json!(base64::engine::general_purpose::STANDARD.encode(s.as_bytes()));
                }
            }
        }
        _ => {}
    }
    Ok(())
}

/// `SetDefaults_EndpointPort`: a port of an Endpoints subset without a protocol is TCP.
fn default_endpoint_protocols(obj: &mut Value) {
    let Some(subsets) = obj.get_mut("subsets").and_then(Value::as_array_mut) else {
        return;
    };
    let ports = subsets
        .iter_mut()
        .filter_map(|s| s.get_mut("ports").and_then(Value::as_array_mut))
        .flatten()
        .filter_map(Value::as_object_mut);
    for port in ports {
        if port
            .get("protocol")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            port.insert("protocol".into(), json!("TCP"));
        }
    }
}
