//! Label and field selectors with the kube-apiserver syntax.

use serde_json::Value;

use crate::resources::ResourceDef;

#[derive(Debug, Clone, PartialEq)]
enum Op {
    Eq(String),
    NotEq(String),
    In(Vec<String>),
    NotIn(Vec<String>),
    Exists,
    DoesNotExist,
    Gt(i64),
    Lt(i64),
}

#[derive(Debug, Clone, PartialEq)]
struct Requirement {
    key: String,
    op: Op,
}

/// A parsed label selector (all requirements must hold).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LabelSelector {
    reqs: Vec<Requirement>,
}

struct Lexer<'a> {
    s: &'a [u8],
    pos: usize,
}

impl<'a> Lexer<'a> {
    fn skip_ws(&mut self) {
        while self.pos < self.s.len() && self.s[self.pos].is_ascii_whitespace() {
            self.pos += 1;
        }
    }
    fn peek(&mut self) -> Option<u8> {
        self.skip_ws();
        self.s.get(self.pos).copied()
    }
    fn eat(&mut self, t: &str) -> bool {
        self.skip_ws();
        if self.s[self.pos..].starts_with(t.as_bytes()) {
            self.pos += t.len();
            true
        } else {
            false
        }
    }
    /// A run of identifier characters (label keys and values).
    fn word(&mut self) -> String {
        self.skip_ws();
        let start = self.pos;
        while self.pos < self.s.len() {
            let c = self.s[self.pos];
            if c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b'/') {
                self.pos += 1;
            } else {
                break;
            }
        }
        String::from_utf8_lossy(&self.s[start..self.pos]).into_owned()
    }
    /// `in`/`notin` keyword followed by whitespace or `(`.
    fn keyword(&mut self, kw: &str) -> bool {
        self.skip_ws();
        let rest = &self.s[self.pos..];
        if rest.starts_with(kw.as_bytes()) {
            let next = rest.get(kw.len()).copied();
            if matches!(next, Some(b'(') | Some(b' ') | Some(b'\t')) {
                self.pos += kw.len();
                return true;
            }
        }
        false
    }
}

fn valid_label_value(v: &str) -> bool {
    if v.is_empty() {
        return true;
    }
    v.len() <= 63
        && v.bytes().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && v.bytes().last().is_some_and(|c| c.is_ascii_alphanumeric())
        && v.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

fn valid_label_key(k: &str) -> bool {
    let (prefix, name) = match k.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, k),
    };
    if let Some(p) = prefix
        && (p.is_empty() || p.len() > 253 || !crate::validation::is_dns1123_subdomain(p))
    {
        return false;
    }
    !name.is_empty() && valid_label_value(name)
}

impl LabelSelector {
    /// Parses `a=b,c!=d,e in (f,g),h notin (i),j,!k`.
    pub fn parse(input: &str) -> Result<LabelSelector, String> {
        let mut lx = Lexer {
            s: input.as_bytes(),
            pos: 0,
        };
        let mut reqs = Vec::new();
        if lx.peek().is_none() {
            return Ok(LabelSelector { reqs });
        }
        loop {
            let negated = lx.eat("!");
            let key = lx.word();
            if key.is_empty() {
                return Err(format!(
                    "unable to parse requirement: found '{}', expected: identifier",
                    String::from_utf8_lossy(&lx.s[lx.pos..])
                ));
            }
            if !valid_label_key(&key) {
                return Err(format!(
                    "unable to parse requirement: invalid label key \"{key}\""
                ));
            }
            let op = if negated {
                Op::DoesNotExist
            } else if lx.eat("==") || lx.eat("=") {
                Op::Eq(value(&mut lx)?)
            } else if lx.eat("!=") {
                Op::NotEq(value(&mut lx)?)
            } else if lx.eat(">") {
                Op::Gt(int_value(&mut lx)?)
            } else if lx.eat("<") {
                Op::Lt(int_value(&mut lx)?)
            } else if lx.keyword("notin") {
                Op::NotIn(set(&mut lx)?)
            } else if lx.keyword("in") {
                Op::In(set(&mut lx)?)
            } else {
                Op::Exists
            };
            reqs.push(Requirement { key, op });
            match lx.peek() {
                None => break,
                Some(b',') => {
                    lx.pos += 1;
                }
                Some(c) => {
                    return Err(format!(
                        "unable to parse requirement: found '{}', expected: ',' or end of string",
                        c as char
                    ));
                }
            }
        }
        Ok(LabelSelector { reqs })
    }

    pub fn is_empty(&self) -> bool {
        self.reqs.is_empty()
    }

    /// Matches against `metadata.labels` of an object.
    pub fn matches(&self, obj: &Value) -> bool {
        let labels = obj.pointer("/metadata/labels").and_then(Value::as_object);
        let get = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
        self.reqs.iter().all(|r| {
            let v = get(&r.key);
            match &r.op {
                Op::Eq(x) => v == Some(x.as_str()),
                Op::NotEq(x) => v != Some(x.as_str()),
                Op::In(set) => v.is_some_and(|v| set.iter().any(|s| s == v)),
                Op::NotIn(set) => !v.is_some_and(|v| set.iter().any(|s| s == v)),
                Op::Exists => v.is_some(),
                Op::DoesNotExist => v.is_none(),
                Op::Gt(n) => v
                    .and_then(|v| v.parse::<i64>().ok())
                    .is_some_and(|v| v > *n),
                Op::Lt(n) => v
                    .and_then(|v| v.parse::<i64>().ok())
                    .is_some_and(|v| v < *n),
            }
        })
    }
}

fn value(lx: &mut Lexer) -> Result<String, String> {
    let v = lx.word();
    if !valid_label_value(&v) {
        return Err(format!(
            "unable to parse requirement: invalid label value: \"{v}\""
        ));
    }
    Ok(v)
}

fn int_value(lx: &mut Lexer) -> Result<i64, String> {
    let v = lx.word();
    v.parse::<i64>().map_err(|_| {
        format!("unable to parse requirement: for 'Gt', 'Lt' operators, the value must be an integer, got \"{v}\"")
    })
}

fn set(lx: &mut Lexer) -> Result<Vec<String>, String> {
    if !lx.eat("(") {
        return Err("unable to parse requirement: found '', expected: '('".into());
    }
    let mut out = Vec::new();
    loop {
        if lx.eat(")") {
            break;
        }
        out.push(value(lx)?);
        if lx.eat(",") {
            continue;
        }
        if lx.eat(")") {
            break;
        }
        return Err("unable to parse requirement: found '', expected: ',', ')'".into());
    }
    Ok(out)
}

#[derive(Debug, Clone, PartialEq)]
struct FieldReq {
    path: String,
    value: String,
    equal: bool,
}

/// A parsed field selector.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FieldSelector {
    reqs: Vec<FieldReq>,
}

fn unescape_field_value(v: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some(n @ ('\\' | ',' | '=')) => out.push(n),
                _ => {
                    return Err(format!(
                        "invalid field selector: invalid escape sequence in {v:?}"
                    ));
                }
            }
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

/// Splits on commas that are not escaped with a backslash.
fn split_unescaped(s: &str, sep: char) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut escaped = false;
    for c in s.chars() {
        if escaped {
            cur.push(c);
            escaped = false;
        } else if c == '\\' {
            cur.push(c);
            escaped = true;
        } else if c == sep {
            out.push(std::mem::take(&mut cur));
        } else {
            cur.push(c);
        }
    }
    out.push(cur);
    out
}

impl FieldSelector {
    /// Parses `metadata.name=x,type!=Normal`; keys are checked against the resource.
    pub fn parse(input: &str, def: &ResourceDef) -> Result<FieldSelector, String> {
        let mut reqs = Vec::new();
        if input.trim().is_empty() {
            return Ok(FieldSelector { reqs });
        }
        for part in split_unescaped(input, ',') {
            let (key, val, equal) = if let Some(i) = part.find("!=") {
                (&part[..i], &part[i + 2..], false)
            } else if let Some(i) = part.find("==") {
                (&part[..i], &part[i + 2..], true)
            } else if let Some(i) = part.find('=') {
                (&part[..i], &part[i + 1..], true)
            } else {
                return Err(format!(
                    "invalid selector: '{input}'; can't understand '{part}'"
                ));
            };
            let key = key.trim();
            if !def.supports_field(key) {
                return Err(format!("field label not supported: {key}"));
            }
            reqs.push(FieldReq {
                path: key.to_string(),
                value: unescape_field_value(val)?,
                equal,
            });
        }
        Ok(FieldSelector { reqs })
    }

    pub fn is_empty(&self) -> bool {
        self.reqs.is_empty()
    }

    pub fn matches(&self, obj: &Value) -> bool {
        self.reqs.iter().all(|r| {
            let actual = field_value(obj, &r.path);
            (actual == r.value) == r.equal
        })
    }
}

/// The string value of a field path; missing fields are "".
fn field_value(obj: &Value, path: &str) -> String {
    // `source` of core events is `source.component`.
    let path = if path == "source" {
        "source.component"
    } else {
        path
    };
    let mut cur = obj;
    for seg in path.split('.') {
        match cur.get(seg) {
            Some(v) => cur = v,
            None => return String::new(),
        }
    }
    match cur {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(labels: Value) -> Value {
        json!({"metadata": {"name": "n", "labels": labels}})
    }

    #[test]
    fn label_selector_syntax() {
        let o = obj(json!({"app": "web", "tier": "front", "n": "5"}));
        let t = |s: &str| LabelSelector::parse(s).unwrap().matches(&o);
        assert!(t(""));
        assert!(t("app=web"));
        assert!(t("app==web"));
        assert!(!t("app!=web"));
        assert!(t("missing!=x"));
        assert!(t("app in (web, db)"));
        assert!(!t("app notin (web,db)"));
        assert!(t("missing notin (web)"));
        assert!(!t("missing in (web)"));
        assert!(t("app"));
        assert!(!t("!app"));
        assert!(t("!missing"));
        assert!(t("app=web,tier in (front),!missing"));
        assert!(!t("app=web,tier=back"));
        assert!(t("n>4"));
        assert!(!t("n<4"));
        assert!(t("app in (web),tier"));
        assert!(LabelSelector::parse("app=(").is_err());
        assert!(LabelSelector::parse("app in web").is_err());
        assert!(LabelSelector::parse("=x").is_err());
        assert!(LabelSelector::parse("a b").is_err());
    }
}
