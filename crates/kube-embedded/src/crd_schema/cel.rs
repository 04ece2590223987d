//! The CEL rules (`x-kubernetes-validations`) of the KubeRay CRDs: the small part of CEL they
//! use, parsed when the schema is loaded (a rule outside it fails the load, and so the unit
//! tests, when the schema is regenerated from a newer CRD):
//!
//! ```text
//! expr    := and ('||' and)*
//! and     := unary ('&&' unary)*
//! unary   := '!' unary | operand (('==' | '!=') operand | 'in' '[' string, ... ']')?
//! operand := '(' expr ')' | 'has(' self.field... ')' | self[.field...] | oldSelf[.field...]
//!          | 'string' | "string" | true | false
//! ```
//!
//! Evaluated as apiextensions-apiserver does: on every value that has rules, errors
//! `<path>: Invalid value: "<schema type>": <message>`; rules using `oldSelf` (transition
//! rules) only on updates where the old value is correlated; with ratcheting (values equal to
//! the old ones are not checked).

use serde_json::Value;

use super::{Schemas, correlate_item};
use crate::field::{BadValue, FieldError};

#[derive(Debug)]
pub struct Rule {
    expr: Expr,
    message: String,
    pub uses_old_self: bool,
}

#[derive(Debug)]
enum Expr {
    Or(Box<Expr>, Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Has(Vec<String>),
    Eq(Operand, Operand, bool),
    In(Operand, Vec<String>),
    Operand(Operand),
}

#[derive(Debug)]
enum Operand {
    SelfPath(Vec<String>),
    OldSelfPath(Vec<String>),
    Str(String),
    Bool(bool),
    Group(Box<Expr>),
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    Str(String),
    Sym(&'static str),
}

fn tokenize(s: &str) -> Result<Vec<Token>, String> {
    let mut out = Vec::new();
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push(Token::Ident(chars[start..i].iter().collect()));
        } else if c == '\'' || c == '"' {
            let mut v = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err("unterminated string".into()),
                    Some(&q) if q == c => break,
                    Some('\\') => {
                        let e = chars.get(i + 1).ok_or("unterminated escape")?;
                        v.push(match e {
                            'n' => '\n',
                            't' => '\t',
                            other => *other,
                        });
                        i += 2;
                    }
                    Some(&ch) => {
                        v.push(ch);
                        i += 1;
                    }
                }
            }
            i += 1;
            out.push(Token::Str(v));
        } else {
            let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
            let sym = ["&&", "||", "==", "!="]
                .into_iter()
                .find(|s| *s == two)
                .or_else(|| {
                    ["(", ")", "[", "]", ",", ".", "!"]
                        .into_iter()
                        .find(|s| s.starts_with(c))
                })
                .ok_or_else(|| format!("unexpected character {c:?}"))?;
            i += sym.len();
            out.push(Token::Sym(sym));
        }
    }
    Ok(out)
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    uses_old_self: bool,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn eat_sym(&mut self, s: &str) -> bool {
        if matches!(self.peek(), Some(Token::Sym(t)) if *t == s) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect_sym(&mut self, s: &str) -> Result<(), String> {
        if self.eat_sym(s) {
            Ok(())
        } else {
            Err(format!("expected {s:?} at token {}", self.pos))
        }
    }

    fn ident(&mut self) -> Result<String, String> {
        match self.peek() {
            Some(Token::Ident(s)) => {
                let s = s.clone();
                self.pos += 1;
                Ok(s)
            }
            other => Err(format!("expected a name, got {other:?}")),
        }
    }

    fn expr(&mut self) -> Result<Expr, String> {
        let mut left = self.and()?;
        while self.eat_sym("||") {
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, String> {
        let mut left = self.unary()?;
        while self.eat_sym("&&") {
            left = Expr::And(Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, String> {
        if self.eat_sym("!") {
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        let left = self.operand()?;
        if self.eat_sym("==") {
            return Ok(Expr::Eq(left, self.operand()?, true));
        }
        if self.eat_sym("!=") {
            return Ok(Expr::Eq(left, self.operand()?, false));
        }
        if self.peek() == Some(&Token::Ident("in".into())) {
            self.pos += 1;
            self.expect_sym("[")?;
            let mut list = Vec::new();
            loop {
                match self.peek() {
                    Some(Token::Str(s)) => {
                        list.push(s.clone());
                        self.pos += 1;
                    }
                    other => return Err(format!("expected a string, got {other:?}")),
                }
                if !self.eat_sym(",") {
                    break;
                }
            }
            self.expect_sym("]")?;
            return Ok(Expr::In(left, list));
        }
        Ok(Expr::Operand(left))
    }

    fn path(&mut self) -> Result<Vec<String>, String> {
        let mut fields = Vec::new();
        while self.eat_sym(".") {
            fields.push(self.ident()?);
        }
        Ok(fields)
    }

    fn operand(&mut self) -> Result<Operand, String> {
        if self.eat_sym("(") {
            let e = self.expr()?;
            self.expect_sym(")")?;
            return Ok(Operand::Group(Box::new(e)));
        }
        match self.peek().cloned() {
            Some(Token::Str(s)) => {
                self.pos += 1;
                Ok(Operand::Str(s))
            }
            Some(Token::Ident(id)) => {
                self.pos += 1;
                match id.as_str() {
                    "true" => Ok(Operand::Bool(true)),
                    "false" => Ok(Operand::Bool(false)),
                    "self" => Ok(Operand::SelfPath(self.path()?)),
                    "oldSelf" => {
                        self.uses_old_self = true;
                        Ok(Operand::OldSelfPath(self.path()?))
                    }
                    "has" => {
                        self.expect_sym("(")?;
                        if self.ident()? != "self" {
                            return Err("has() of something else than a field of self".into());
                        }
                        let fields = self.path()?;
                        if fields.is_empty() {
                            return Err("has() needs a field".into());
                        }
                        self.expect_sym(")")?;
                        Ok(Operand::Group(Box::new(Expr::Has(fields))))
                    }
                    other => Err(format!("unsupported name {other:?}")),
                }
            }
            other => Err(format!("unexpected {other:?}")),
        }
    }
}

/// The value at `path` under `v` (`None`: a field that is not there, which is an error in CEL:
/// the rule fails).
fn lookup<'a>(mut v: &'a Value, path: &[String]) -> Option<&'a Value> {
    for f in path {
        v = v.get(f)?;
    }
    Some(v)
}

impl Rule {
    pub fn parse(rule: &str, message: &str) -> Result<Rule, String> {
        let mut p = Parser {
            tokens: tokenize(rule)?,
            pos: 0,
            uses_old_self: false,
        };
        let expr = p.expr()?;
        if p.pos != p.tokens.len() {
            return Err(format!("unexpected {:?}", p.tokens[p.pos]));
        }
        // `ruleMessageOrDefault`
        let message = if message.trim().is_empty() {
            format!("failed rule: {}", rule.trim())
        } else {
            message.trim().to_string()
        };
        Ok(Rule {
            expr,
            message,
            uses_old_self: p.uses_old_self,
        })
    }

    fn holds(&self, v: &Value, old: Option<&Value>) -> bool {
        eval(&self.expr, v, old)
    }
}

fn eval(e: &Expr, v: &Value, old: Option<&Value>) -> bool {
    match e {
        Expr::Or(a, b) => eval(a, v, old) || eval(b, v, old),
        Expr::And(a, b) => eval(a, v, old) && eval(b, v, old),
        Expr::Not(a) => !eval(a, v, old),
        Expr::Has(path) => lookup(v, path).is_some(),
        Expr::Eq(a, b, eq) => match (operand(a, v, old), operand(b, v, old)) {
            (Some(a), Some(b)) => (a == b) == *eq,
            _ => false,
        },
        Expr::In(a, list) => match operand(a, v, old) {
            Some(Value::String(s)) => list.contains(&s),
            _ => false,
        },
        Expr::Operand(o) => operand(o, v, old) == Some(Value::Bool(true)),
    }
}

fn operand(o: &Operand, v: &Value, old: Option<&Value>) -> Option<Value> {
    match o {
        Operand::SelfPath(p) => lookup(v, p).cloned(),
        Operand::OldSelfPath(p) => lookup(old?, p).cloned(),
        Operand::Str(s) => Some(Value::String(s.clone())),
        Operand::Bool(b) => Some(Value::Bool(*b)),
        Operand::Group(e) => Some(Value::Bool(eval(e, v, old))),
    }
}

/// Runs every rule of the schema of kind root `root` on `obj` (`old`: the stored object of an
/// update), adding the failures to `errs`.
pub fn validate(
    schemas: &Schemas,
    root: usize,
    obj: &Value,
    old: Option<&Value>,
    errs: &mut Vec<FieldError>,
) {
    walk(schemas, root, obj, old, "", errs);
}

fn walk(
    schemas: &Schemas,
    i: usize,
    v: &Value,
    old: Option<&Value>,
    path: &str,
    errs: &mut Vec<FieldError>,
) {
    if v.is_null() || old.is_some_and(|o| o == v) {
        // Ratcheting: an unchanged value is not checked again (its transition rules hold).
        return;
    }
    let n = &schemas.nodes[i];
    for rule in &n.rules {
        if rule.uses_old_self && old.is_none() {
            continue;
        }
        if !rule.holds(v, old) {
            let field = if path.is_empty() { "<nil>" } else { path };
            errs.push(FieldError::invalid(
                field,
                BadValue::str(n.type_.clone().unwrap_or_default()),
                rule.message.clone(),
            ));
        }
    }
    match v {
        Value::Array(items) => {
            if let Some(it) = n.items {
                for (idx, item) in items.iter().enumerate() {
                    let old_item = correlate_item(n, item, old);
                    walk(schemas, it, item, old_item, &format!("{path}[{idx}]"), errs);
                }
            }
        }
        Value::Object(m) => {
            for (k, child) in m {
                let c = match n.properties.get(k) {
                    Some(&p) => Some(p),
                    None => n.additional_properties,
                };
                if let Some(c) = c {
                    let p = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    walk(schemas, c, child, old.and_then(|o| o.get(k)), &p, errs);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_kuberay_rules() {
        let r = Rule::parse("self == oldSelf", "immutable").unwrap();
        assert!(r.uses_old_self);
        assert!(r.holds(&json!("a"), Some(&json!("a"))));
        assert!(!r.holds(&json!("a"), Some(&json!("b"))));

        let r = Rule::parse(
            "self in ['ray.io/kuberay-operator', 'kueue.x-k8s.io/multikueue']",
            "m",
        )
        .unwrap();
        assert!(!r.uses_old_self);
        assert!(r.holds(&json!("kueue.x-k8s.io/multikueue"), None));
        assert!(!r.holds(&json!("other"), None));

        let r = Rule::parse(
            "!((has(self.onSuccess) || has(self.onFailure)) && has(self.deletionRules))",
            "",
        )
        .unwrap();
        assert!(r.message.starts_with("failed rule: !((has"));
        assert!(r.holds(&json!({"onSuccess": {}}), None));
        assert!(!r.holds(&json!({"onFailure": {}, "deletionRules": []}), None));

        let r = Rule::parse(
            "((has(self.onSuccess) && has(self.onFailure)) || has(self.deletionRules))",
            "m",
        )
        .unwrap();
        assert!(r.holds(&json!({"onSuccess": {}, "onFailure": {}}), None));
        assert!(!r.holds(&json!({"onSuccess": {}}), None));
        assert!(r.holds(&json!({"deletionRules": []}), None));

        assert!(Rule::parse("self.size() > 1", "m").is_err());
        assert!(Rule::parse("self.x == 'a' &&", "m").is_err());
    }
}
