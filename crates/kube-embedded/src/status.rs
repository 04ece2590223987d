//! `Status` failures in the exact JSON shape of the kube-apiserver.

use serde_json::{Map, Value, json};

use crate::resources::ResourceDef;

/// An API failure, rendered as a `metav1.Status` object.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    /// `details` object; `None` omits the field.
    pub details: Option<Value>,
    /// `metadata` (a `ListMeta`, e.g. `{"continue": ..}`); `None` renders `{}`.
    pub list_meta: Option<Value>,
}

fn details(name: &str, group: &str, kind: &str) -> Value {
    let mut m = Map::new();
    m.insert("name".into(), Value::String(name.into()));
    if !group.is_empty() {
        m.insert("group".into(), Value::String(group.into()));
    }
    m.insert("kind".into(), Value::String(kind.into()));
    Value::Object(m)
}

impl StatusError {
    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": self.list_meta.clone().unwrap_or_else(|| json!({})),
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
        });
        if let Some(d) = &self.details {
            v["details"] = d.clone();
        }
        v["code"] = json!(self.code);
        v
    }

    pub fn not_found(def: &ResourceDef, name: &str) -> Self {
        StatusError {
            code: 404,
            reason: "NotFound",
            message: format!("{} \"{}\" not found", def.qualified_plural(), name),
            details: Some(details(name, def.group, def.plural)),
            list_meta: None,
        }
    }

    pub fn namespace_not_found(ns: &str) -> Self {
        Self::not_found(crate::resources::namespaces(), ns)
    }

    pub fn unknown_path() -> Self {
        StatusError {
            code: 404,
            reason: "NotFound",
            message: "the server could not find the requested resource".into(),
            details: Some(json!({})),
            list_meta: None,
        }
    }

    pub fn already_exists(def: &ResourceDef, name: &str) -> Self {
        StatusError {
            code: 409,
            reason: "AlreadyExists",
            message: format!("{} \"{}\" already exists", def.qualified_plural(), name),
            details: Some(details(name, def.group, def.plural)),
            list_meta: None,
        }
    }

    pub fn conflict(def: &ResourceDef, name: &str, why: &str) -> Self {
        StatusError {
            code: 409,
            reason: "Conflict",
            message: format!(
                "Operation cannot be fulfilled on {} \"{}\": {}",
                def.qualified_plural(),
                name,
                why
            ),
            details: Some(details(name, def.group, def.plural)),
            list_meta: None,
        }
    }

    pub fn modified(def: &ResourceDef, name: &str) -> Self {
        Self::conflict(
            def,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    /// 422 Invalid with one field cause.
    pub fn invalid(def: &ResourceDef, name: &str, field: &str, cause: &str) -> Self {
        let mut d = details(name, def.error_group(), def.kind);
        d["causes"] = json!([{ "reason": "FieldValueInvalid", "message": cause, "field": field }]);
        StatusError {
            code: 422,
            reason: "Invalid",
            message: format!(
                "{} {} is invalid: {}: {}",
                def.qualified_kind(),
                crate::field::go_quote(name),
                field,
                cause
            ),
            details: Some(d),
            list_meta: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        StatusError {
            code: 400,
            reason: "BadRequest",
            message: message.into(),
            details: None,
            list_meta: None,
        }
    }

    /// 413, as the kube-apiserver answers a request body over its limit.
    pub fn too_large(limit: usize) -> Self {
        StatusError {
            code: 413,
            reason: "RequestEntityTooLarge",
            message: format!("Request entity too large: limit is {limit}"),
            details: None,
            list_meta: None,
        }
    }

    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        StatusError {
            code: 405,
            reason: "MethodNotAllowed",
            message: message.into(),
            details: Some(json!({})),
            list_meta: None,
        }
    }

    pub fn unsupported_media_type(content_type: &str) -> Self {
        StatusError {
            code: 415,
            reason: "UnsupportedMediaType",
            message: format!(
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got {content_type:?})"
            ),
            details: None,
            list_meta: None,
        }
    }

    pub fn gone(message: impl Into<String>) -> Self {
        StatusError {
            code: 410,
            reason: "Expired",
            message: message.into(),
            details: None,
            list_meta: None,
        }
    }

    /// 410 for a continue token whose snapshot is gone, as the kube-apiserver answers when
    /// etcd has compacted the list's revision; `token` continues at the latest state.
    pub fn continue_expired(token: String) -> Self {
        StatusError {
            code: 410,
            reason: "Expired",
            message: "The provided continue parameter is too old to display a consistent list \
                      result. You can start a new list without the continue parameter, or use the \
                      continue token in this response to retrieve the remainder of the results. \
                      Continuing with the provided token results in an inconsistent list - objects \
                      that were created, modified, or deleted between the time the first chunk was \
                      returned and now may show up in the list."
                .into(),
            details: None,
            list_meta: Some(json!({ "continue": token })),
        }
    }

    pub fn internal(message: impl Into<String>) -> Self {
        StatusError {
            code: 500,
            reason: "InternalError",
            message: message.into(),
            details: None,
            list_meta: None,
        }
    }
}
