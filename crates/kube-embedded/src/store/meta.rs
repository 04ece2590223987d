//! A typed view of the object metadata the write rules read.

use serde_json::Value;

/// The metadata fields of a stored object, read once. Absent or non-string fields read
/// as empty strings, as with [`super::str_at`].
pub(super) struct MetaView<'a> {
    pub name: &'a str,
    pub namespace: &'a str,
    pub uid: &'a str,
    pub resource_version: &'a str,
    /// `metadata.generation`, 0 when absent.
    pub generation: i64,
    /// Whether `metadata.deletionTimestamp` is present (the object is being deleted).
    pub deleting: bool,
    /// `metadata.finalizers`, when it is an array.
    pub finalizers: Option<&'a Vec<Value>>,
}

impl<'a> MetaView<'a> {
    pub fn of(obj: &'a Value) -> MetaView<'a> {
        let meta = obj.get("metadata");
        let field = |f: &str| meta.and_then(|m| m.get(f));
        let text = |f: &str| field(f).and_then(Value::as_str).unwrap_or("");
        MetaView {
            name: text("name"),
            namespace: text("namespace"),
            uid: text("uid"),
            resource_version: text("resourceVersion"),
            generation: field("generation").and_then(Value::as_i64).unwrap_or(0),
            deleting: field("deletionTimestamp").is_some(),
            finalizers: field("finalizers").and_then(Value::as_array),
        }
    }

    /// Whether finalizers are pending.
    pub fn has_finalizers(&self) -> bool {
        self.finalizers.is_some_and(|f| !f.is_empty())
    }
}
