//! JSON merge patch (RFC 7386) and JSON patch (RFC 6902), applied with the `json-patch` crate.
//! Strategic merge patches are applied as merge patches by the caller (no hand-written
//! strategic merge here).

use json_patch::{Patch, PatchErrorKind};
use serde::Deserialize;
use serde_json::Value;

/// Applies an RFC 7386 merge patch to `target`.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    json_patch::merge(target, patch);
}

/// Applies an RFC 6902 JSON patch (an array of operations) to `doc`. On error `doc` may be
/// partly patched: callers patch a copy and drop it.
pub fn json_patch(doc: &mut Value, patch: &Value) -> Result<(), String> {
    let operations = Patch::deserialize(patch).map_err(|e| e.to_string())?;
    json_patch::patch_unsafe(doc, &operations).map_err(|e| match e.kind {
        // Kubernetes' words for a failed `test` (it adds ": test failed").
        PatchErrorKind::TestFailed => format!("testing value {} failed", e.path),
        _ => e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge() {
        let mut t = json!({"a": {"b": 1, "c": 2}, "l": [1, 2]});
        merge_patch(&mut t, &json!({"a": {"b": null, "d": 3}, "l": [3]}));
        assert_eq!(t, json!({"a": {"c": 2, "d": 3}, "l": [3]}));
    }

    #[test]
    fn json_ops() {
        let mut d = json!({"a": [1, 2], "b": {"c": 1}});
        json_patch(
            &mut d,
            &json!([
                {"op": "add", "path": "/a/-", "value": 3},
                {"op": "add", "path": "/a/0", "value": 0},
                {"op": "replace", "path": "/b/c", "value": 2},
                {"op": "copy", "from": "/b", "path": "/e"},
                {"op": "move", "from": "/e/c", "path": "/f"},
                {"op": "remove", "path": "/a/1"},
                {"op": "test", "path": "/f", "value": 2}
            ]),
        )
        .unwrap();
        assert_eq!(d, json!({"a": [0, 2, 3], "b": {"c": 2}, "e": {}, "f": 2}));
        assert!(json_patch(&mut d, &json!([{"op": "test", "path": "/f", "value": 1}])).is_err());
        assert!(json_patch(&mut d, &json!([{"op": "remove", "path": "/zz"}])).is_err());
    }
}
