//! Name, label and annotation validation as in k8s.io/apimachinery/pkg/util/validation and
//! k8s.io/apimachinery/pkg/api/validation (`ValidateObjectMeta`).

use serde_json::Value;

use crate::field::{BadValue, FieldError};
use crate::resources::{NameRule, ResourceDef};
use crate::status::StatusError;

fn is_alnum_lower(c: u8) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63 characters.
pub fn is_dns1123_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && is_alnum_lower(b[0])
        && is_alnum_lower(b[b.len() - 1])
        && b.iter().all(|&c| is_alnum_lower(c) || c == b'-')
}

/// Dot-separated RFC 1123 labels, at most 253 characters.
pub fn is_dns1123_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(is_dns1123_label)
}

/// The errors of `metadata.generateName` and `metadata.name` (the name generated from it, if
/// so), as `ValidateObjectMetaAccessor` reports them.
pub fn name_errors(rule: NameRule, generate_name: &str, name: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if !generate_name.is_empty() {
        for msg in name_rule_errors(rule, generate_name, true) {
            errs.push(FieldError::invalid(
                "metadata.generateName",
                BadValue::str(generate_name),
                msg,
            ));
        }
    }
    for msg in name_rule_errors(rule, name, false) {
        errs.push(FieldError::invalid(
            "metadata.name",
            BadValue::str(name),
            msg,
        ));
    }
    errs
}

const LABEL_NAME_ERR: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const LABEL1035_NAME_ERR: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";

/// `NameIsDNSSubdomain` / `NameIsDNSLabel` / `NameIsDNS1035Label` (with `prefix`: of a
/// `generateName`, whose trailing dash is masked as Go's `maskTrailingDash` does).
fn name_rule_errors(rule: NameRule, name: &str, prefix: bool) -> Vec<String> {
    let masked;
    let name = if prefix && name.len() > 1 && name.ends_with('-') {
        // Go: name[:len(name)-2] + "a"
        masked = format!("{}a", &name[..name.len() - 2]);
        masked.as_str()
    } else {
        name
    };
    let mut errs = Vec::new();
    match rule {
        NameRule::Subdomain => {
            if name.len() > 253 {
                errs.push(max_len_error(253));
            }
            if !is_dns1123_subdomain_chars(name) {
                errs.push(SUBDOMAIN_ERR.to_string());
            }
        }
        NameRule::Label | NameRule::Label1035 => {
            if name.len() > 63 {
                errs.push(max_len_error(63));
            }
            let label_chars = |s: &str| {
                let b = s.as_bytes();
                !b.is_empty()
                    && is_alnum_lower(b[0])
                    && is_alnum_lower(b[b.len() - 1])
                    && b.iter().all(|&c| is_alnum_lower(c) || c == b'-')
            };
            if rule == NameRule::Label {
                if !label_chars(name) {
                    errs.push(if is_dns1123_subdomain_chars(name) {
                        "must not contain dots".to_string()
                    } else {
                        LABEL_NAME_ERR.to_string()
                    });
                }
            } else if !(label_chars(name) && name.as_bytes()[0].is_ascii_lowercase()) {
                errs.push(LABEL1035_NAME_ERR.to_string());
            }
        }
    }
    errs
}

fn max_len_error(max: usize) -> String {
    format!("must be no more than {max} characters")
}

const QUALIFIED_NAME_ERR: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const LABEL_VALUE_ERR: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";
const SUBDOMAIN_ERR: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
/// `TotalAnnotationSizeLimitB`: keys and values of all annotations together.
pub const TOTAL_ANNOTATION_SIZE: usize = 256 * 1024;

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`
fn is_qualified_name_part(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

/// `IsQualifiedName`: an optional DNS subdomain prefix and '/', then a name of at most 63
/// characters. The explanations of what is wrong (none when valid).
pub fn qualified_name_errors(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let parts: Vec<&str> = value.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errs.push("prefix part must be non-empty".to_string());
            } else {
                if prefix.len() > 253 {
                    errs.push(format!("prefix part {}", max_len_error(253)));
                }
                if !is_dns1123_subdomain_chars(prefix) {
                    errs.push(format!("prefix part {SUBDOMAIN_ERR}"));
                }
            }
            name
        }
        _ => {
            return vec![format!(
                "a qualified name {QUALIFIED_NAME_ERR} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
            )];
        }
    };
    if name.is_empty() {
        errs.push("name part must be non-empty".to_string());
    } else if name.len() > 63 {
        errs.push(format!("name part {}", max_len_error(63)));
    }
    if !is_qualified_name_part(name) {
        errs.push(format!("name part {QUALIFIED_NAME_ERR}"));
    }
    errs
}

/// The subdomain regex alone (without the length limit).
fn is_dns1123_subdomain_chars(s: &str) -> bool {
    !s.is_empty()
        && s.split('.').all(|l| {
            let b = l.as_bytes();
            !b.is_empty()
                && is_alnum_lower(b[0])
                && is_alnum_lower(b[b.len() - 1])
                && b.iter().all(|&c| is_alnum_lower(c) || c == b'-')
        })
}

/// `IsValidLabelValue`.
pub fn label_value_errors(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > 63 {
        errs.push(max_len_error(63));
    }
    if !value.is_empty() && !is_qualified_name_part(value) {
        errs.push(LABEL_VALUE_ERR.to_string());
    }
    errs
}

/// A map of strings in metadata (`labels`, `annotations`), its null values made "" as Go's
/// decoder makes them; 400 like the kube-apiserver's decoder when it is not one.
fn string_map<'a>(
    def: &ResourceDef,
    meta: &'a mut Value,
    key: &str,
) -> Result<Vec<(&'a str, &'a str)>, StatusError> {
    let undecodable = |what: &Value, into: &str| {
        // Custom resources decode `metadata` on its own, the built-in kinds as part of the object.
        let field = if def.custom {
            key.to_string()
        } else {
            format!("metadata.{key}")
        };
        StatusError::bad_request(format!(
            "{kind} in version \"{version}\" cannot be handled as a {kind}: json: cannot unmarshal {} into Go struct field ObjectMeta.{field} of type {into}",
            go_json_type(what),
            kind = def.kind,
            version = def.version,
        ))
    };
    match meta.get_mut(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Object(m)) => {
            for v in m.values_mut() {
                match v {
                    Value::String(_) => {}
                    Value::Null => *v = Value::String(String::new()),
                    other => return Err(undecodable(other, "string")),
                }
            }
            Ok(m.iter()
                .map(|(k, v)| (k.as_str(), v.as_str().unwrap_or("")))
                .collect())
        }
        Some(other) => Err(undecodable(other, "map[string]string")),
    }
}

fn go_json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// `ValidateLabels` and `ValidateAnnotations` of an object's metadata: the errors, in the
/// order of the keys; `Err` (400) when they are not maps of strings.
pub fn labels_and_annotations(
    def: &ResourceDef,
    meta: &mut Value,
) -> Result<Vec<FieldError>, StatusError> {
    let mut errs = Vec::new();
    for (k, v) in string_map(def, meta, "labels")? {
        for msg in qualified_name_errors(k) {
            errs.push(FieldError::invalid(
                "metadata.labels",
                BadValue::str(k),
                msg,
            ));
        }
        for msg in label_value_errors(v) {
            errs.push(FieldError::invalid(
                "metadata.labels",
                BadValue::str(v),
                msg,
            ));
        }
    }
    let annotations = string_map(def, meta, "annotations")?;
    for (k, _) in &annotations {
        // The rule is QualifiedName except that case does not matter.
        for msg in qualified_name_errors(&k.to_lowercase()) {
            errs.push(FieldError::invalid(
                "metadata.annotations",
                BadValue::str(*k),
                msg,
            ));
        }
    }
    let size: usize = annotations.iter().map(|(k, v)| k.len() + v.len()).sum();
    if size > TOTAL_ANNOTATION_SIZE {
        errs.push(FieldError::too_long(
            "metadata.annotations",
            TOTAL_ANNOTATION_SIZE as i64,
        ));
    }
    Ok(errs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(is_dns1123_subdomain("a.b-c.d1"));
        assert!(!is_dns1123_subdomain("A"));
        assert!(!is_dns1123_subdomain("a..b"));
        assert!(!is_dns1123_subdomain("-a"));
        assert!(is_dns1123_label("0abc"));
        assert!(!is_dns1123_label("a.b"));
        assert!(name_rule_errors(NameRule::Subdomain, "ok", false).is_empty());
        assert_eq!(
            name_rule_errors(NameRule::Subdomain, &"a".repeat(254), false),
            vec![max_len_error(253)]
        );
        assert_eq!(
            name_rule_errors(NameRule::Subdomain, &format!("A{}", "a".repeat(253)), false).len(),
            2
        );
        assert_eq!(
            name_rule_errors(NameRule::Label, "a.b", false),
            vec!["must not contain dots".to_string()]
        );
        assert_eq!(
            name_rule_errors(NameRule::Label1035, "0abc", false),
            vec![LABEL1035_NAME_ERR.to_string()]
        );
        // generateName: the trailing dash is masked (Go's maskTrailingDash drops two characters)
        assert!(name_rule_errors(NameRule::Subdomain, "job-", true).is_empty());
        assert_eq!(name_rule_errors(NameRule::Subdomain, "ok.", true).len(), 1);
        assert_eq!(
            name_errors(NameRule::Subdomain, "Bad-", "Bad-xyz12").len(),
            2
        );
    }

    #[test]
    fn qualified_names() {
        for ok in [
            "a",
            "A-b_c.d",
            "example.com/MyName",
            "a.b/c",
            &"x".repeat(63),
        ] {
            assert!(qualified_name_errors(ok).is_empty(), "{ok}");
        }
        assert_eq!(
            qualified_name_errors("bad key!"),
            vec![format!("name part {QUALIFIED_NAME_ERR}")]
        );
        assert_eq!(
            qualified_name_errors("/a"),
            vec!["prefix part must be non-empty".to_string()]
        );
        assert_eq!(
            qualified_name_errors("Ex.com/a"),
            vec![format!("prefix part {SUBDOMAIN_ERR}")]
        );
        assert_eq!(qualified_name_errors("a/b/c").len(), 1);
        assert_eq!(
            qualified_name_errors(&"x".repeat(64)),
            vec!["name part must be no more than 63 characters".to_string()]
        );
        assert_eq!(
            qualified_name_errors("a/"),
            vec![
                "name part must be non-empty".to_string(),
                format!("name part {QUALIFIED_NAME_ERR}")
            ]
        );
        assert!(label_value_errors("").is_empty());
        assert_eq!(label_value_errors("-a").len(), 1);
        assert_eq!(label_value_errors(&"-".repeat(64)).len(), 2);
    }

    #[test]
    fn labels_and_annotations_are_checked() {
        let cm = crate::resources::find("", "v1", "configmaps").unwrap();
        let mut meta = serde_json::json!({
            "labels": {"ok": "fine", "bad key!": "v", "k": "bad value!"},
            "annotations": {"UPPER/ok": "x", "a_b/c": "x"},
        });
        let errs = labels_and_annotations(cm, &mut meta).unwrap();
        let fields: Vec<(&str, &BadValue)> =
            errs.iter().map(|e| (e.field.as_str(), &e.value)).collect();
        assert_eq!(
            fields,
            vec![
                ("metadata.labels", &BadValue::str("bad key!")),
                ("metadata.labels", &BadValue::str("bad value!")),
                ("metadata.annotations", &BadValue::str("a_b/c")),
            ]
        );
        let mut big = serde_json::json!({"annotations": {"a": "x".repeat(TOTAL_ANNOTATION_SIZE)}});
        let errs = labels_and_annotations(cm, &mut big).unwrap();
        assert_eq!(
            errs[0].message(),
            "metadata.annotations: Too long: may not be more than 262144 bytes"
        );
        let mut bad = serde_json::json!({"labels": {"a": 1}});
        let e = labels_and_annotations(cm, &mut bad).unwrap_err();
        assert_eq!(
            (e.code, e.message.as_str()),
            (
                400,
                "ConfigMap in version \"v1\" cannot be handled as a ConfigMap: json: cannot unmarshal number into Go struct field ObjectMeta.metadata.labels of type string"
            )
        );
        let mut nulls = serde_json::json!({"labels": {"a": null}});
        assert!(labels_and_annotations(cm, &mut nulls).unwrap().is_empty());
        assert_eq!(nulls, serde_json::json!({"labels": {"a": ""}}));
    }
}
