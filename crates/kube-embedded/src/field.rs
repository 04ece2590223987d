//! Field errors, and the 422 `Invalid` status made of them, rendered exactly as
//! k8s.io/apimachinery renders them (`field.Error`, `field.ErrorList.ToAggregate`,
//! `errors.NewInvalid`).

use serde_json::{Map, Value, json};

use crate::resources::ResourceDef;
use crate::status::StatusError;

/// `field.ErrorType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorType {
    Required,
    Duplicate,
    Invalid,
    NotSupported,
    Forbidden,
    TooLong,
    TooMany,
    TypeInvalid,
}

impl ErrorType {
    /// The cause's `reason`.
    pub fn reason(self) -> &'static str {
        match self {
            ErrorType::Required => "FieldValueRequired",
            ErrorType::Duplicate => "FieldValueDuplicate",
            ErrorType::Invalid => "FieldValueInvalid",
            ErrorType::NotSupported => "FieldValueNotSupported",
            ErrorType::Forbidden => "FieldValueForbidden",
            ErrorType::TooLong => "FieldValueTooLong",
            ErrorType::TooMany => "FieldValueTooMany",
            ErrorType::TypeInvalid => "FieldValueTypeInvalid",
        }
    }

    fn text(self) -> &'static str {
        match self {
            ErrorType::Required => "Required value",
            ErrorType::Duplicate => "Duplicate value",
            ErrorType::Invalid | ErrorType::TypeInvalid => "Invalid value",
            ErrorType::NotSupported => "Unsupported value",
            ErrorType::Forbidden => "Forbidden",
            ErrorType::TooLong => "Too long",
            ErrorType::TooMany => "Too many",
        }
    }

    /// Whether kube-apiserver skips CEL rules after such an error (`hasBlockingErr`).
    pub fn blocks_rules(self) -> bool {
        matches!(
            self,
            ErrorType::NotSupported
                | ErrorType::Required
                | ErrorType::TooLong
                | ErrorType::TooMany
                | ErrorType::TypeInvalid
        )
    }
}

/// The offending value as Go would hold it (an unstructured JSON value).
#[derive(Debug, Clone, PartialEq)]
pub enum BadValue {
    /// Not shown (`Required`, `TooLong`, ...).
    Omit,
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    /// null, objects and arrays: shown as JSON.
    Json(Value),
}

impl BadValue {
    pub fn of(v: &Value) -> BadValue {
        match v {
            Value::String(s) => BadValue::Str(s.clone()),
            Value::Bool(b) => BadValue::Bool(*b),
            Value::Number(n) => match n.as_i64() {
                Some(i) => BadValue::Int(i),
                None => BadValue::Float(n.as_f64().unwrap_or(0.0)),
            },
            other => BadValue::Json(other.clone()),
        }
    }

    pub fn str(s: impl Into<String>) -> BadValue {
        BadValue::Str(s.into())
    }
}

/// One `field.Error`.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    pub kind: ErrorType,
    pub field: String,
    pub value: BadValue,
    pub detail: String,
}

impl FieldError {
    pub fn new(kind: ErrorType, field: &str, value: BadValue, detail: impl Into<String>) -> Self {
        FieldError {
            kind,
            field: field.to_string(),
            value,
            detail: detail.into(),
        }
    }

    pub fn required(field: &str, detail: impl Into<String>) -> Self {
        Self::new(ErrorType::Required, field, BadValue::Omit, detail)
    }

    pub fn invalid(field: &str, value: BadValue, detail: impl Into<String>) -> Self {
        Self::new(ErrorType::Invalid, field, value, detail)
    }

    pub fn type_invalid(field: &str, value: BadValue, detail: impl Into<String>) -> Self {
        Self::new(ErrorType::TypeInvalid, field, value, detail)
    }

    pub fn duplicate(field: &str, value: BadValue) -> Self {
        Self::new(ErrorType::Duplicate, field, value, "")
    }

    /// `field.NotSupported`: the detail lists the supported values.
    pub fn not_supported(field: &str, value: BadValue, supported: &[String]) -> Self {
        let detail = if supported.is_empty() {
            String::new()
        } else {
            let quoted: Vec<String> = supported.iter().map(|s| go_quote(s)).collect();
            format!("supported values: {}", quoted.join(", "))
        };
        Self::new(ErrorType::NotSupported, field, value, detail)
    }

    /// `field.TooLong` (the value is never shown).
    pub fn too_long(field: &str, max: i64) -> Self {
        let detail = if max >= 0 {
            format!(
                "may not be more than {max} {}",
                if max == 1 { "byte" } else { "bytes" }
            )
        } else {
            "value is too long".to_string()
        };
        Self::new(ErrorType::TooLong, field, BadValue::Omit, detail)
    }

    /// `field.TooMany`.
    pub fn too_many(field: &str, actual: i64, max: i64) -> Self {
        let detail = if max >= 0 {
            format!(
                "must have at most {max} {}",
                if max == 1 { "item" } else { "items" }
            )
        } else {
            "has too many items".to_string()
        };
        let value = if actual >= 0 {
            BadValue::Int(actual)
        } else {
            BadValue::Omit
        };
        Self::new(ErrorType::TooMany, field, value, detail)
    }

    /// `field.Error.ErrorBody`.
    pub fn body(&self) -> String {
        let mut s = match (self.kind, &self.value) {
            (
                ErrorType::Required
                | ErrorType::Forbidden
                | ErrorType::TooLong
                | ErrorType::TooMany
                | ErrorType::Invalid
                | ErrorType::TypeInvalid
                | ErrorType::NotSupported
                | ErrorType::Duplicate,
                BadValue::Omit,
            )
            | (ErrorType::Required | ErrorType::Forbidden | ErrorType::TooLong, _) => {
                self.kind.text().to_string()
            }
            (_, BadValue::Str(v)) => format!("{}: {}", self.kind.text(), go_quote(v)),
            (_, BadValue::Int(i)) => format!("{}: {i}", self.kind.text()),
            (_, BadValue::Float(f)) => format!("{}: {}", self.kind.text(), go_float(*f)),
            (_, BadValue::Bool(b)) => format!("{}: {b}", self.kind.text()),
            (_, BadValue::Json(v)) => format!("{}: {}", self.kind.text(), go_json(v)),
        };
        if !self.detail.is_empty() {
            s.push_str(": ");
            s.push_str(&self.detail);
        }
        s
    }

    /// `field.Error.Error`: `<field>: <body>`.
    pub fn message(&self) -> String {
        format!("{}: {}", self.field, self.body())
    }
}

/// `field.ErrorList.ToAggregate().Error()`: duplicates dropped, one error as it is, several in
/// brackets.
pub fn aggregate(errs: &[FieldError]) -> String {
    let mut seen: Vec<String> = Vec::new();
    for e in errs {
        let m = e.message();
        if !seen.contains(&m) {
            seen.push(m);
        }
    }
    match seen.len() {
        1 => seen.remove(0),
        _ => format!("[{}]", seen.join(", ")),
    }
}

/// `errors.NewInvalid`: 422 `Invalid` with every error as a cause.
pub fn invalid(def: &ResourceDef, name: &str, errs: &[FieldError]) -> StatusError {
    invalid_as(def.error_group(), def.kind, name, errs)
}

/// [`invalid`] for the group and kind `group`/`kind`.
pub fn invalid_as(group: &str, kind: &str, name: &str, errs: &[FieldError]) -> StatusError {
    let mut details = Map::new();
    if !name.is_empty() {
        details.insert("name".into(), json!(name));
    }
    if !group.is_empty() {
        details.insert("group".into(), json!(group));
    }
    details.insert("kind".into(), json!(kind));
    let causes: Vec<Value> = errs
        .iter()
        .map(|e| {
            let mut c = Map::new();
            c.insert("reason".into(), json!(e.kind.reason()));
            c.insert("message".into(), json!(e.body()));
            if !e.field.is_empty() {
                c.insert("field".into(), json!(e.field));
            }
            Value::Object(c)
        })
        .collect();
    details.insert("causes".into(), Value::Array(causes));
    let kind = if group.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}.{group}")
    };
    let message = if errs.is_empty() {
        format!("{kind} {} is invalid", go_quote(name))
    } else {
        format!("{kind} {} is invalid: {}", go_quote(name), aggregate(errs))
    };
    StatusError {
        code: 422,
        reason: "Invalid",
        message,
        details: Some(Value::Object(details)),
        list_meta: None,
    }
}

/// Go's `%q` (`strconv.Quote`) of a string.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if c.is_control() || c == '\u{2028}' || c == '\u{2029}' || c == '\u{feff}' => {
                if (c as u32) < 0x10000 {
                    out.push_str(&format!("\\u{:04x}", c as u32));
                } else {
                    out.push_str(&format!("\\U{:08x}", c as u32));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Go's `%v` of a float64: `%g` with the shortest representation, in exponent form when the
/// decimal exponent is below -4 or at least 6 (`1.5`, `123456`, `1.234567e+06`, `3e+09`,
/// `1e-05`).
pub fn go_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    if f == 0.0 {
        return if f.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    // Rust: shortest digits, e.g. 3e9, 1.234567e6, 1.5e-5.
    let s = format!("{f:e}");
    let (mantissa, exp) = s.split_once('e').expect("exponent form");
    let exp: i32 = exp.parse().expect("exponent");
    if !(-4..6).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{mantissa}e{sign}{:02}", exp.abs());
    }
    format!("{f}")
}

/// Go's `json.Marshal` of an unstructured value (keys sorted, HTML characters escaped).
pub fn go_json(v: &Value) -> String {
    let s = serde_json::to_string(v).unwrap_or_default();
    s.replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_as_go_renders_them() {
        let e = FieldError::type_invalid(
            "spec.headGroupSpec",
            BadValue::str("string"),
            "spec.headGroupSpec in body must be of type object: \"string\"",
        );
        assert_eq!(
            e.message(),
            "spec.headGroupSpec: Invalid value: \"string\": spec.headGroupSpec in body must be of type object: \"string\""
        );
        assert_eq!(
            FieldError::required("spec.x", "").message(),
            "spec.x: Required value"
        );
        assert_eq!(
            FieldError::too_long("metadata.annotations", 262144).body(),
            "Too long: may not be more than 262144 bytes"
        );
        assert_eq!(
            FieldError::too_many("spec.x", 3, 2).body(),
            "Too many: 3: must have at most 2 items"
        );
        assert_eq!(
            FieldError::not_supported("spec.x", BadValue::str("c"), &["a".into(), "b".into()])
                .body(),
            "Unsupported value: \"c\": supported values: \"a\", \"b\""
        );
        assert_eq!(
            FieldError::duplicate("x[1]", BadValue::Json(json!({"name": "a"}))).body(),
            "Duplicate value: {\"name\":\"a\"}"
        );
        assert_eq!(
            FieldError::invalid("<nil>", BadValue::Json(Value::Null), "d").body(),
            "Invalid value: null: d"
        );
        assert_eq!(
            aggregate(&[
                FieldError::required("a", ""),
                FieldError::required("a", ""),
                FieldError::required("b", "")
            ]),
            "[a: Required value, b: Required value]"
        );
    }

    #[test]
    fn go_formatting() {
        assert_eq!(go_quote("a\"b\\\n\u{1}é"), "\"a\\\"b\\\\\\n\\x01é\"");
        // What Go 1.25 prints with %v.
        for (f, go) in [
            (3e9, "3e+09"),
            (1234567.0, "1.234567e+06"),
            (123456.0, "123456"),
            (100000.0, "100000"),
            (1e6, "1e+06"),
            (1.5, "1.5"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1e20, "1e+20"),
            (1e21, "1e+21"),
            (2.5e-5, "2.5e-05"),
            (123456789.5, "1.234567895e+08"),
            (-1e7, "-1e+07"),
            (0.0, "0"),
            (-2.0, "-2"),
        ] {
            assert_eq!(go_float(f), go, "{f}");
        }
        assert_eq!(
            go_json(&json!({"b": "<", "a": 1})),
            "{\"a\":1,\"b\":\"\\u003c\"}"
        );
    }
}
