//! Value validation against a structural schema as kube-apiserver 1.34 does it:
//! k8s.io/kube-openapi's `validate.SchemaValidator` (the checks, their order and their texts,
//! e.g. `spec.x in body must be of type object: "string"`), turned into field errors by
//! apiextensions-apiserver's `kubeOpenAPIResultToFieldErrors`, with CRD validation
//! ratcheting (an update may keep a value that is invalid if it does not change it); and
//! `structurallisttype.ValidateListSetsAndMaps` (unique items of `set` lists, unique keys of
//! `map` lists).
//!
//! Go iterates maps in random order, so when several properties are invalid the real order
//! of the errors varies; here properties are visited in key order.

use serde_json::Value;

use super::{Node, Schemas, correlate_item};
use crate::field::{BadValue, FieldError, go_float, go_quote};

pub struct Validator<'a> {
    schemas: &'a Schemas,
    /// The field path of the validated value (`status` for the status subresource; `None`:
    /// the whole object).
    prefix: Option<&'static str>,
    pub errs: Vec<FieldError>,
}

/// The JSON type of a value as go-openapi names it, with the Go format of numbers.
fn json_type(v: &Value) -> (&'static str, &'static str) {
    match v {
        Value::Null => ("null", ""),
        Value::Bool(_) => ("boolean", ""),
        Value::String(_) => ("string", ""),
        // The decoder keeps integers that fit an int64, anything else is a float64.
        Value::Number(n) if n.is_i64() => ("integer", "int64"),
        Value::Number(_) => ("number", "float64"),
        Value::Array(_) => ("array", ""),
        Value::Object(_) => ("object", ""),
    }
}

/// The types a schema allows (int-or-string: integer and string).
fn schema_types(n: &Node) -> Vec<&str> {
    if n.int_or_string {
        vec!["integer", "string"]
    } else {
        n.type_.as_deref().into_iter().collect()
    }
}

/// `swag.IsFloat64AJSONInteger`.
fn is_json_integer(v: &Value) -> bool {
    match v.as_f64() {
        Some(f) => f.is_finite() && f.abs() <= (1u64 << 53) as f64 && f.fract() == 0.0,
        None => false,
    }
}

impl<'a> Validator<'a> {
    pub fn new(schemas: &'a Schemas, prefix: Option<&'static str>) -> Self {
        Validator {
            schemas,
            prefix,
            errs: Vec::new(),
        }
    }

    /// The field path of an error of go-openapi's value at `name` (`errPath` of
    /// `kubeOpenAPIResultToFieldErrors`).
    fn field(&self, name: &str) -> String {
        let name = if name == "." {
            ""
        } else {
            name.strip_prefix('.').unwrap_or(name)
        };
        match (self.prefix, name.is_empty()) {
            (None, true) => "<nil>".to_string(),
            (Some(p), true) => p.to_string(),
            (None, false) => name.to_string(),
            (Some(p), false) => format!("{p}.{name}"),
        }
    }

    /// go-openapi's `InvalidType` error (`field.TypeInvalid`).
    fn invalid_type(&mut self, path: &str, type_name: &str, value: &str) {
        let detail = format!(
            "{path} in body must be of type {type_name}: {}",
            go_quote(value)
        );
        let e = FieldError::type_invalid(&self.field(path), BadValue::str(value), detail);
        self.push(e);
    }

    /// Adds an error unless the same text is there already (go-openapi's `Result.AddErrors`).
    fn push(&mut self, e: FieldError) {
        if !self.errs.contains(&e) {
            self.errs.push(e);
        }
    }

    fn node(&self, i: usize) -> &'a Node {
        &self.schemas.nodes[i]
    }

    /// Validates `v` at go-openapi path `path` against `n`; `old` is the correlated old value
    /// (ratcheting) on updates. The checks run in go-openapi's validator order.
    pub fn value(&mut self, n: &'a Node, v: &Value, old: Option<&Value>, path: &str) {
        if old.is_some_and(|o| o == v) {
            // Unchanged: its errors are only warnings (ratcheting).
            return;
        }
        let types = schema_types(n);
        let format = n.format.as_deref().unwrap_or("");
        if v.is_null() {
            self.check_null(n, &types, path);
            return;
        }
        self.check_type(&types, format, v, path);
        if n.int_or_string {
            self.check_int_or_string(v, path);
        }
        if let Value::String(s) = v {
            self.check_string(n, s, path);
            self.check_string_format(format, s, path);
        }
        if v.is_number() {
            self.check_number(n, v, path);
        }
        if let Value::Array(a) = v {
            self.check_array(n, a, old, path);
        }
        // basicCommonValidator
        self.check_enum(n, v, path);
        if let Value::Object(m) = v {
            self.check_object(n, m, old, path);
        }
    }

    /// A null value: only the type and enum validators look at it.
    fn check_null(&mut self, n: &Node, types: &[&str], path: &str) {
        if !types.is_empty() && !n.nullable {
            self.invalid_type(path, &types.join(","), "null");
        }
        self.check_enum(n, &Value::Null, path);
    }

    /// go-openapi's `typeValidator` of a non-null value.
    fn check_type(&mut self, types: &[&str], format: &str, v: &Value, path: &str) {
        if types.is_empty() && format.is_empty() {
            return;
        }
        let (sch, value_format) = json_type(v);
        let is_float_int = sch == "number" && is_json_integer(v) && types.contains(&"integer");
        let is_int_float = sch == "integer" && types.contains(&"number");
        let scalar = !(v.is_string() || v.is_array());
        let type_ok = types.contains(&sch) || is_float_int || is_int_float;
        if scalar && !format.is_empty() && !(type_ok || value_format == format) {
            // A format on a non-string value that does not have it.
            self.invalid_type(path, format, value_format);
        } else if format.is_empty()
            || scalar
            || types.iter().any(|t| *t == "number" || *t == "integer")
        {
            // (A string or list with a format, in a schema that is not numeric, passes.)
            if !type_ok {
                self.invalid_type(path, &types.join(","), sch);
            }
        }
    }

    /// `schemaPropsValidator`: the anyOf of int-or-string, [{type: integer}, {type: string}].
    fn check_int_or_string(&mut self, v: &Value, path: &str) {
        let (sch, _) = json_type(v);
        let integer = sch == "integer" || (sch == "number" && is_json_integer(v));
        if integer || v.is_string() {
            return;
        }
        let e = FieldError::invalid(
            &self.field(""),
            BadValue::str(""),
            format!(
                "{} must validate at least one schema (anyOf)",
                go_quote(path)
            ),
        );
        self.push(e);
        // The best failure of the alternatives: the first one (integer).
        self.invalid_type(path, "integer", sch);
    }

    /// `formatValidator` of a string (only `date-time` is checked).
    fn check_string_format(&mut self, format: &str, s: &str, path: &str) {
        if format == "date-time" && !is_date_time(s) {
            self.invalid_type(path, format, s);
        }
    }

    /// `sliceValidator`: each item against `items`, then the item count.
    fn check_array(&mut self, n: &'a Node, a: &[Value], old: Option<&Value>, path: &str) {
        if let Some(i) = n.items {
            let items = self.node(i);
            for (idx, item) in a.iter().enumerate() {
                let old_item = correlate_item(n, item, old);
                self.value(items, item, old_item, &format!("{path}[{idx}]"));
            }
        }
        self.check_size(path, a.len(), n.min_items, n.max_items, "items");
    }

    /// `objectValidator`: the property count, additional properties, declared properties, then
    /// required properties.
    fn check_object(
        &mut self,
        n: &'a Node,
        m: &serde_json::Map<String, Value>,
        old: Option<&Value>,
        path: &str,
    ) {
        self.check_size(
            path,
            m.len(),
            n.min_properties,
            n.max_properties,
            "properties",
        );
        if let Some(a) = n.additional_properties {
            let schema = self.node(a);
            for (k, extra) in m.iter().filter(|(k, _)| !n.properties.contains_key(*k)) {
                let old_extra = old.and_then(|o| o.get(k));
                self.value(schema, extra, old_extra, &format!("{path}.{k}"));
            }
        }
        for (k, &p) in &n.properties {
            if let Some(child_value) = m.get(k) {
                let old_child = old.and_then(|o| o.get(k));
                self.value(self.node(p), child_value, old_child, &child(path, k));
            }
        }
        for k in &n.required {
            if !m.contains_key(k) {
                let e = FieldError::required(&self.field(&format!("{path}.{k}")), "");
                self.push(e);
            }
        }
    }

    /// The `minItems`/`maxItems` (or `minProperties`/`maxProperties`) checks of a list (or
    /// object) of `size` entries; `what` names the entries in the error text.
    fn check_size(
        &mut self,
        path: &str,
        size: usize,
        min: Option<i64>,
        max: Option<i64>,
        what: &str,
    ) {
        let size = size as i64;
        if let Some(min) = min
            && size < min
        {
            let e = FieldError::invalid(
                &self.field(path),
                BadValue::Int(size),
                format!("{path} in body should have at least {min} {what}"),
            );
            self.push(e);
        }
        if let Some(max) = max
            && size > max
        {
            let e = FieldError::too_many(&self.field(path), size, max);
            self.push(e);
        }
    }

    fn check_string(&mut self, n: &Node, s: &str, path: &str) {
        let len = s.chars().count() as i64;
        if let Some(max) = n.max_length
            && len > max
        {
            let e = FieldError::too_long(&self.field(path), max);
            self.push(e);
            return;
        }
        if let Some(min) = n.min_length
            && len < min
        {
            let e = FieldError::invalid(
                &self.field(path),
                BadValue::str(s),
                format!("{path} in body should be at least {min} chars long"),
            );
            self.push(e);
            return;
        }
        if let (Some(re), Some(p)) = (&n.pattern_re, &n.pattern)
            && !re.is_match(s)
        {
            let e = FieldError::invalid(
                &self.field(path),
                BadValue::str(s),
                format!("{path} in body should match '{p}'"),
            );
            self.push(e);
        }
    }

    fn check_number(&mut self, n: &Node, v: &Value, path: &str) {
        // MinimumNativeType / MaximumNativeType: integers compare as int64, the rest as float64.
        let bound = |b: f64| match v.as_i64() {
            Some(_) => format!("{}", b as i64),
            None => go_float(b),
        };
        let x = v.as_f64().unwrap_or(0.0);
        if let Some(min) = n.minimum {
            let fails = match v.as_i64() {
                Some(i) => {
                    let m = min as i64;
                    if n.exclusive_minimum { i <= m } else { i < m }
                }
                None => {
                    if n.exclusive_minimum {
                        x <= min
                    } else {
                        x < min
                    }
                }
            };
            if fails {
                let op = if n.exclusive_minimum {
                    "greater than"
                } else {
                    "greater than or equal to"
                };
                let e = FieldError::invalid(
                    &self.field(path),
                    BadValue::of(v),
                    format!("{path} in body should be {op} {}", bound(min)),
                );
                self.push(e);
            }
        }
        if let Some(max) = n.maximum {
            let fails = match v.as_i64() {
                Some(i) => {
                    let m = max as i64;
                    if n.exclusive_maximum { i >= m } else { i > m }
                }
                None => {
                    if n.exclusive_maximum {
                        x >= max
                    } else {
                        x > max
                    }
                }
            };
            if fails {
                let op = if n.exclusive_maximum {
                    "less than"
                } else {
                    "less than or equal to"
                };
                let e = FieldError::invalid(
                    &self.field(path),
                    BadValue::of(v),
                    format!("{path} in body should be {op} {}", bound(max)),
                );
                self.push(e);
            }
        }
    }

    fn check_enum(&mut self, n: &Node, v: &Value, path: &str) {
        let Some(values) = n.enum_.as_ref().filter(|e| !e.is_empty()) else {
            return;
        };
        let matches =
            |e: &Value| e == v || matches!((e.as_f64(), v.as_f64()), (Some(a), Some(b)) if a == b);
        if values.iter().any(matches) {
            return;
        }
        let supported: Vec<String> = values
            .iter()
            .map(|e| match e {
                Value::String(s) => s.clone(),
                other => crate::field::go_json(other),
            })
            .collect();
        let e = FieldError::not_supported(&self.field(path), BadValue::of(v), &supported);
        self.push(e);
    }
}

/// strfmt's `IsDateTime`: `<date>T<hh>:<mm>:<ss>[.frac](Z|±hh:mm)`, case-insensitive.
fn is_date_time(s: &str) -> bool {
    static TIME: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(
            r"^([0-9]{2}):([0-9]{2}):([0-9]{2})(.[0-9]+)?(z|([+-][0-9]{2}:[0-9]{2}))$",
        )
        .expect("valid regex")
    });
    if s.len() < 4 {
        return false;
    }
    let lower = s.to_lowercase();
    let parts: Vec<&str> = lower.split('t').collect();
    if parts.len() < 2 || !is_date(parts[0]) {
        return false;
    }
    match TIME.captures(parts[1]) {
        Some(m) => &m[1] <= "23" && &m[2] <= "59" && &m[3] <= "59",
        None => false,
    }
}

/// `time.Parse("2006-01-02", s)`.
fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return false;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        b[r].iter().try_fold(0u32, |acc, c| {
            c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
        })
    };
    let (Some(y), Some(m), Some(d)) = (num(0..4), num(5..7), num(8..10)) else {
        return false;
    };
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&d)
}

/// A `field.Path` rendering: `a.b`, `a[0]`, `a[key]`.
fn child(path: &str, k: &str) -> String {
    if path.is_empty() {
        k.to_string()
    } else {
        format!("{path}.{k}")
    }
}

/// `structurallisttype.ValidateListSetsAndMaps` of a whole object.
pub fn list_errors(schemas: &Schemas, root: usize, obj: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if let Value::Object(_) = obj {
        lists_in(schemas, &schemas.nodes[root], obj, "", &mut errs);
    }
    errs
}

fn lists_in(schemas: &Schemas, n: &Node, v: &Value, path: &str, errs: &mut Vec<FieldError>) {
    match v {
        Value::Object(m) => {
            if let Some(a) = n.additional_properties {
                for (k, child_v) in m {
                    let p = format!("{path}[{k}]");
                    lists_in(schemas, &schemas.nodes[a], child_v, &p, errs);
                }
            }
            for (k, child_v) in m {
                if let Some(&p) = n.properties.get(k) {
                    lists_in(schemas, &schemas.nodes[p], child_v, &child(path, k), errs);
                }
            }
        }
        Value::Array(items) => {
            match n.list_type.as_deref() {
                Some("set") => {
                    for i in duplicates(items.iter().map(Key::of)) {
                        errs.push(FieldError::duplicate(
                            &format!("{path}[{i}]"),
                            BadValue::of(&items[i]),
                        ));
                    }
                }
                Some("map") => list_map_errors(n, items, path, errs),
                _ => {}
            }
            if let Some(i) = n.items {
                for (idx, item) in items.iter().enumerate() {
                    lists_in(
                        schemas,
                        &schemas.nodes[i],
                        item,
                        &format!("{path}[{idx}]"),
                        errs,
                    );
                }
            }
        }
        _ => {}
    }
}

/// How `validateListSet` compares items: scalars by Go value (an int64 is not a float64),
/// objects and arrays by their JSON.
#[derive(PartialEq)]
enum Key {
    Unspecified,
    Scalar(&'static str, String),
    Compound(String),
}

impl Key {
    fn of(v: &Value) -> Key {
        match v {
            Value::Object(_) | Value::Array(_) => Key::Compound(v.to_string()),
            other => Key::Scalar(json_type(other).1, other.to_string()),
        }
    }
}

/// The index of every second occurrence of a value.
fn duplicates(keys: impl Iterator<Item = Key>) -> Vec<usize> {
    let mut seen: Vec<(Key, usize)> = Vec::new();
    let mut out = Vec::new();
    for (i, k) in keys.enumerate() {
        match seen.iter_mut().find(|(s, _)| *s == k) {
            Some((_, times)) => {
                if *times == 1 {
                    out.push(i);
                }
                *times += 1;
            }
            None => seen.push((k, 1)),
        }
    }
    out
}

fn list_map_errors(n: &Node, items: &[Value], path: &str, errs: &mut Vec<FieldError>) {
    for (i, x) in items.iter().enumerate() {
        if !x.is_null() && !x.is_object() {
            errs.push(FieldError::invalid(
                &format!("{path}[{i}]"),
                BadValue::of(x),
                "must be an object for an array of list-type map",
            ));
            return;
        }
    }
    if items.len() <= 1 {
        return;
    }
    if let [key] = n.list_map_keys.as_slice() {
        let keys: Vec<Option<&Value>> = items.iter().map(|x| x.get(key)).collect();
        let dups = duplicates(keys.iter().map(|k| match k {
            None => Key::Unspecified,
            Some(v) => Key::of(v),
        }));
        for i in dups {
            let value = match keys[i] {
                None => serde_json::json!({}),
                Some(k) => serde_json::json!({ key.as_str(): k }),
            };
            errs.push(FieldError::duplicate(
                &format!("{path}[{i}]"),
                BadValue::Json(value),
            ));
        }
        return;
    }
    let keys: Vec<Value> = items
        .iter()
        .map(|x| {
            let mut key = serde_json::Map::new();
            for k in &n.list_map_keys {
                if let Some(v) = x.get(k) {
                    key.insert(k.clone(), v.clone());
                }
            }
            Value::Object(key)
        })
        .collect();
    for i in duplicates(keys.iter().map(Key::of)) {
        errs.push(FieldError::duplicate(
            &format!("{path}[{i}]"),
            BadValue::Json(keys[i].clone()),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date_times() {
        for ok in [
            "2024-01-02T03:04:05Z",
            "2024-01-02t03:04:05.123456789+01:00",
            "2024-02-29T23:59:59-00:00",
        ] {
            assert!(is_date_time(ok), "{ok}");
        }
        for bad in [
            "",
            "garbage",
            "2024-01-02",
            "2024-13-02T03:04:05Z",
            "2023-02-29T03:04:05Z",
            "2024-01-02T24:04:05Z",
            "2024-01-02T03:04:05",
            "2024-01-02T03:04:05+0100",
        ] {
            assert!(!is_date_time(bad), "{bad}");
        }
    }

    #[test]
    fn duplicate_indices() {
        let keys = ["a", "b", "a", "a", "b"]
            .iter()
            .map(|s| Key::of(&Value::String(s.to_string())));
        assert_eq!(duplicates(keys), vec![2, 4]);
        let mixed = [serde_json::json!(1), serde_json::json!(1.0)];
        assert!(duplicates(mixed.iter().map(Key::of)).is_empty());
    }
}
