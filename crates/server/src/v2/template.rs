//! Request bodies of the V2 API's compute-template injection: decoded by their `Content-Type`
//! (the injection itself is `kuberay_core::template_injection`).

use serde_json::Value;

/// Why a body could not be decoded (the middleware answers 400 with this text).
pub const DECODE_ERROR: &str = "Failed to convert request body to Golang map object";

/// Decodes a request body by its `Content-Type`: JSON, YAML, or an error for anything else.
///
/// The top level must be a map (or empty/null, which decodes to `Value::Null`).
pub fn decode(content_type: &str, body: &[u8]) -> Result<Value, &'static str> {
    let value = if content_type.contains("application/json") {
        serde_json::from_slice::<Value>(body).map_err(|_| DECODE_ERROR)?
    } else if content_type.contains("application/yaml") {
        let text = std::str::from_utf8(body).map_err(|_| DECODE_ERROR)?;
        serde_saphyr::from_str::<Option<Value>>(text)
            .map_err(|_| DECODE_ERROR)?
            .unwrap_or(Value::Null)
    } else {
        return Err(DECODE_ERROR);
    };
    match value {
        Value::Object(_) | Value::Null => Ok(value),
        _ => Err(DECODE_ERROR),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kuberay_core::template_injection::{applies, template_names};

    #[test]
    fn bodies_decode_by_content_type() {
        assert!(!applies(&decode("application/json", b"null").unwrap()));
        assert!(!applies(
            &decode("application/json", br#"{"spec": 1}"#).unwrap()
        ));
        assert_eq!(decode("application/json", b"[1]"), Err(DECODE_ERROR));
        assert_eq!(decode("application/json", b"{"), Err(DECODE_ERROR));
        assert_eq!(
            decode("application/vnd.kubernetes.protobuf", b"{}"),
            Err(DECODE_ERROR)
        );
        let yaml = "spec:\n  headGroupSpec:\n    computeTemplate: t\n";
        let body = decode("application/yaml; charset=utf-8", yaml.as_bytes()).unwrap();
        assert!(applies(&body));
        assert_eq!(template_names(&body), ["t"]);
        assert_eq!(decode("application/yaml", b"").unwrap(), Value::Null);
    }
}
