//! Go's `omitempty` on the objects the server writes: empty values are left out.

use std::collections::BTreeMap;

/// `Some(text)` unless it is empty.
pub(crate) fn non_empty(text: &str) -> Option<String> {
    (!text.is_empty()).then(|| text.to_string())
}

/// `Some(map)` unless it is empty.
pub(crate) fn non_empty_map<V: Clone>(map: &BTreeMap<String, V>) -> Option<BTreeMap<String, V>> {
    (!map.is_empty()).then(|| map.clone())
}
