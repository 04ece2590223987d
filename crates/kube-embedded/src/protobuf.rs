//! Decoding of Kubernetes protobuf request bodies for a few core kinds.
//!
//! kubectl's typed commands (`kubectl create namespace|configmap|secret`) send
//! `application/vnd.kubernetes.protobuf` and do not fall back to JSON. This
//! decodes exactly those kinds (field numbers from k8s.io/api generated.proto)
//! into the JSON form; other kinds answer 415.

use base64::Engine;
use serde_json::{Map, Value, json};

const MAGIC: &[u8] = b"k8s\0";

enum Field<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Other,
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut out = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self.buf.get(self.pos).ok_or("truncated varint")?;
            self.pos += 1;
            out |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(out);
            }
        }
        Err("varint too long".into())
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.pos.checked_add(n).ok_or("length overflow")?;
        let s = self.buf.get(self.pos..end).ok_or("truncated field")?;
        self.pos = end;
        Ok(s)
    }

    fn next(&mut self) -> Result<Option<(u64, Field<'a>)>, String> {
        if self.pos >= self.buf.len() {
            return Ok(None);
        }
        let key = self.varint()?;
        let field = key >> 3;
        let value = match key & 7 {
            0 => Field::Varint(self.varint()?),
            1 => {
                self.take(8)?;
                Field::Other
            }
            2 => {
                let n = usize::try_from(self.varint()?).map_err(|_| "length overflow")?;
                Field::Bytes(self.take(n)?)
            }
            5 => {
                self.take(4)?;
                Field::Other
            }
            w => return Err(format!("unsupported wire type {w}")),
        };
        Ok(Some((field, value)))
    }
}

fn string(b: &[u8]) -> Result<String, String> {
    String::from_utf8(b.to_vec()).map_err(|_| "invalid UTF-8 string".to_string())
}

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// A map entry message: key = 1, value = 2.
fn map_entry(b: &[u8], bytes_value: bool) -> Result<(String, Value), String> {
    let mut r = Reader::new(b);
    let (mut k, mut v) = (String::new(), Value::String(String::new()));
    while let Some((f, val)) = r.next()? {
        match (f, val) {
            (1, Field::Bytes(x)) => k = string(x)?,
            (2, Field::Bytes(x)) if bytes_value => v = json!(b64(x)),
            (2, Field::Bytes(x)) => v = json!(string(x)?),
            _ => {}
        }
    }
    Ok((k, v))
}

fn insert_entry(obj: &mut Map<String, Value>, field: &str, entry: (String, Value)) {
    let m = obj.entry(field).or_insert_with(|| json!({}));
    m[entry.0.as_str()] = entry.1;
}

fn push(obj: &mut Map<String, Value>, field: &str, v: Value) {
    let a = obj.entry(field).or_insert_with(|| json!([]));
    if let Some(a) = a.as_array_mut() {
        a.push(v);
    }
}

fn owner_reference(b: &[u8]) -> Result<Value, String> {
    let mut r = Reader::new(b);
    let mut o = Map::new();
    while let Some((f, val)) = r.next()? {
        match (f, val) {
            (1, Field::Bytes(x)) => drop(o.insert("kind".into(), json!(string(x)?))),
            (3, Field::Bytes(x)) => drop(o.insert("name".into(), json!(string(x)?))),
            (4, Field::Bytes(x)) => drop(o.insert("uid".into(), json!(string(x)?))),
            (5, Field::Bytes(x)) => drop(o.insert("apiVersion".into(), json!(string(x)?))),
            (6, Field::Varint(x)) => drop(o.insert("controller".into(), json!(x != 0))),
            (7, Field::Varint(x)) => drop(o.insert("blockOwnerDeletion".into(), json!(x != 0))),
            _ => {}
        }
    }
    Ok(Value::Object(o))
}

fn object_meta(b: &[u8]) -> Result<Value, String> {
    let mut r = Reader::new(b);
    let mut m = Map::new();
    while let Some((f, val)) = r.next()? {
        match (f, val) {
            (1, Field::Bytes(x)) => drop(m.insert("name".into(), json!(string(x)?))),
            (2, Field::Bytes(x)) => drop(m.insert("generateName".into(), json!(string(x)?))),
            (3, Field::Bytes(x)) => drop(m.insert("namespace".into(), json!(string(x)?))),
            (5, Field::Bytes(x)) => drop(m.insert("uid".into(), json!(string(x)?))),
            (6, Field::Bytes(x)) => drop(m.insert("resourceVersion".into(), json!(string(x)?))),
            (11, Field::Bytes(x)) => insert_entry(&mut m, "labels", map_entry(x, false)?),
            (12, Field::Bytes(x)) => insert_entry(&mut m, "annotations", map_entry(x, false)?),
            (13, Field::Bytes(x)) => push(&mut m, "ownerReferences", owner_reference(x)?),
            (14, Field::Bytes(x)) => push(&mut m, "finalizers", json!(string(x)?)),
            _ => {}
        }
    }
    // proto3 encodes empty strings as absent; drop explicit empties anyway.
    m.retain(|_, v| v.as_str() != Some(""));
    Ok(Value::Object(m))
}

fn decode_kind(kind: &str, raw: &[u8]) -> Result<Value, String> {
    let mut r = Reader::new(raw);
    let mut o = Map::new();
    o.insert("apiVersion".into(), json!("v1"));
    o.insert("kind".into(), json!(kind));
    while let Some((f, val)) = r.next()? {
        let x = match val {
            Field::Bytes(x) => x,
            Field::Varint(v) => {
                if matches!((kind, f), ("ConfigMap", 4) | ("Secret", 5)) {
                    o.insert("immutable".into(), json!(v != 0));
                }
                continue;
            }
            Field::Other => continue,
        };
        match (kind, f) {
            (_, 1) => drop(o.insert("metadata".into(), object_meta(x)?)),
            ("ConfigMap", 2) => insert_entry(&mut o, "data", map_entry(x, false)?),
            ("ConfigMap", 3) => insert_entry(&mut o, "binaryData", map_entry(x, true)?),
            ("Secret", 2) => insert_entry(&mut o, "data", map_entry(x, true)?),
            ("Secret", 3) => drop(o.insert("type".into(), json!(string(x)?))),
            ("Secret", 4) => insert_entry(&mut o, "stringData", map_entry(x, false)?),
            ("Namespace", 2) => {
                let mut spec = Map::new();
                let mut rs = Reader::new(x);
                while let Some((sf, sv)) = rs.next()? {
                    if let (1, Field::Bytes(s)) = (sf, sv) {
                        push(&mut spec, "finalizers", json!(string(s)?));
                    }
                }
                o.insert("spec".into(), Value::Object(spec));
            }
            _ => {}
        }
    }
    Ok(Value::Object(o))
}

/// Decodes a protobuf body (`k8s\0` + runtime.Unknown) of an expected core kind.
pub fn decode(expected_kind: &str, body: &[u8]) -> Result<Value, String> {
    if !matches!(expected_kind, "ConfigMap" | "Secret" | "Namespace") {
        return Err(format!(
            "protobuf bodies are not supported for {expected_kind}"
        ));
    }
    let rest = body
        .strip_prefix(MAGIC)
        .ok_or("missing the protobuf envelope prefix")?;
    let mut r = Reader::new(rest);
    let (mut kind, mut raw, mut api_version) = (String::new(), None, String::new());
    while let Some((f, val)) = r.next()? {
        match (f, val) {
            (1, Field::Bytes(tm)) => {
                let mut t = Reader::new(tm);
                while let Some((tf, tv)) = t.next()? {
                    match (tf, tv) {
                        (1, Field::Bytes(x)) => api_version = string(x)?,
                        (2, Field::Bytes(x)) => kind = string(x)?,
                        _ => {}
                    }
                }
            }
            (2, Field::Bytes(x)) => raw = Some(x),
            _ => {}
        }
    }
    if kind != expected_kind || api_version != "v1" {
        return Err(format!(
            "protobuf body holds {api_version}/{kind}, expected v1/{expected_kind}"
        ));
    }
    decode_kind(&kind, raw.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ld(field: u8, b: &[u8]) -> Vec<u8> {
        let mut v = vec![(field << 3) | 2, b.len() as u8];
        v.extend_from_slice(b);
        v
    }

    #[test]
    fn configmap() {
        let meta = [
            ld(1, b"cm1"),
            ld(11, &[ld(1, b"app"), ld(2, b"web")].concat()),
        ]
        .concat();
        let data = [ld(1, b"k"), ld(2, b"v")].concat();
        let raw = [ld(1, &meta), ld(2, &data), vec![4 << 3, 1]].concat();
        let tm = [ld(1, b"v1"), ld(2, b"ConfigMap")].concat();
        let body = [MAGIC.to_vec(), ld(1, &tm), ld(2, &raw)].concat();
        let v = decode("ConfigMap", &body).unwrap();
        assert_eq!(
            v,
            json!({"apiVersion": "v1", "kind": "ConfigMap", "immutable": true,
                   "metadata": {"name": "cm1", "labels": {"app": "web"}}, "data": {"k": "v"}})
        );
        assert!(decode("Namespace", &body).is_err());
        assert!(decode("Pod", &body).is_err());
        assert!(decode("ConfigMap", b"junk").is_err());
    }
}
