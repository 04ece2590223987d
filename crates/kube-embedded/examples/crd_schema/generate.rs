//! Extracts the structural facts of the KubeRay CRDs' OpenAPI schemas (types, properties,
//! items, required, defaults, value validations, the `x-kubernetes-*` extensions, CEL rules)
//! into the compact JSON that `src/crd_schema` loads. Descriptions and everything else a
//! kube-apiserver does not use for pruning, defaulting or validation are left out; identical
//! subtrees are stored once (the pod template appears many times in every CRD).
//!
//! Used by the `crd_schema` example (which writes the file) and by `tests/crd_schema.rs`
//! (which checks that the committed file is what the CRDs of the pinned module give).
//!
//! Anything the embedded store would not enforce like kube-apiserver does (a format it does
//! not know, `oneOf`, `multipleOf`, a CEL `messageExpression`, ...) is an error here, so
//! that a newer CRD version cannot be taken in silently.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde_json::{Map, Value, json};

/// The kinds served by the embedded store: (kind, file in `config/crd/bases`).
pub const KINDS: &[(&str, &str)] = &[
    ("RayCluster", "ray.io_rayclusters.yaml"),
    ("RayJob", "ray.io_rayjobs.yaml"),
    ("RayService", "ray.io_rayservices.yaml"),
];
pub const GROUP: &str = "ray.io";
pub const VERSION: &str = "v1";
/// The Go module the CRDs come from (its version is in `e2e/kuberay/go.mod`).
pub const MODULE: &str = "github.com/ray-project/kuberay/ray-operator";

/// Formats kube-apiserver 1.34 validates (after go-openapi's normalisation: dashes removed);
/// every other format is ignored by it, and dropped here.
const KNOWN_FORMATS: &[&str] = &[
    "bsonobjectid",
    "uri",
    "email",
    "hostname",
    "ipv4",
    "ipv6",
    "cidr",
    "mac",
    "uuid",
    "uuid3",
    "uuid4",
    "uuid5",
    "isbn",
    "isbn10",
    "isbn13",
    "creditcard",
    "ssn",
    "hexcolor",
    "rgbcolor",
    "byte",
    "password",
    "date",
    "duration",
    "datetime",
    "k8sshortname",
    "k8slongname",
];

/// Keys copied as they are.
const COPIED: &[&str] = &[
    "type",
    "required",
    "nullable",
    "enum",
    "default",
    "pattern",
    "maxLength",
    "minLength",
    "maximum",
    "minimum",
    "exclusiveMaximum",
    "exclusiveMinimum",
    "maxItems",
    "minItems",
    "maxProperties",
    "minProperties",
    "x-kubernetes-int-or-string",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-embedded-resource",
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
];

/// Keys that change nothing a kube-apiserver enforces.
const IGNORED: &[&str] = &[
    "description",
    "example",
    "title",
    "externalDocs",
    "x-kubernetes-map-type",
];

struct Interner {
    nodes: Vec<String>,
    index: HashMap<String, usize>,
}

impl Interner {
    fn add(&mut self, node: &Map<String, Value>) -> usize {
        let text = serde_json::to_string(node).expect("serialisable");
        if let Some(&i) = self.index.get(&text) {
            return i;
        }
        self.nodes.push(text.clone());
        self.index.insert(text, self.nodes.len() - 1);
        self.nodes.len() - 1
    }
}

/// Converts the schema `s` (at `path`, for error messages) to its structural facts, interns
/// the resulting node (and, recursively, its subschemas) in `out` and returns its index.
fn convert(s: &Value, path: &str, out: &mut Interner) -> Result<usize, String> {
    let s = s
        .as_object()
        .ok_or_else(|| format!("{path}: a schema must be an object"))?;
    let mut node = Map::new();
    for (k, v) in s {
        let at = format!("{path}.{k}");
        match k.as_str() {
            k if IGNORED.contains(&k) => {}
            k if COPIED.contains(&k) => {
                node.insert(k.to_string(), v.clone());
            }
            "format" => {
                if let Some(format) = convert_format(v, &at)? {
                    node.insert("format".into(), format);
                }
            }
            "properties" => {
                node.insert("properties".into(), convert_properties(v, &at, out)?);
            }
            "items" | "additionalProperties" => {
                if !v.is_object() {
                    return Err(format!(
                        "{at}: only a schema is supported here (not {v}): structural schemas allow nothing else"
                    ));
                }
                node.insert(k.to_string(), json!(convert(v, &at, out)?));
            }
            "anyOf" => check_any_of(s, v, &at)?,
            "x-kubernetes-validations" => {
                node.insert(k.to_string(), convert_validations(v, &at)?);
            }
            other => {
                return Err(format!(
                    "{at}: schema keyword {other:?} is not supported by the embedded store"
                ));
            }
        }
    }
    Ok(out.add(&node))
}

/// The `format` to keep for the format `v` (at `at`): `date-time` for a date-time, none for a
/// format kube-apiserver ignores; an error for one it validates and the embedded store does not.
fn convert_format(v: &Value, at: &str) -> Result<Option<Value>, String> {
    let f = v.as_str().ok_or_else(|| format!("{at}: not a string"))?;
    let normalized = f.replace('-', "");
    if normalized == "datetime" {
        return Ok(Some(json!("date-time")));
    }
    if KNOWN_FORMATS.contains(&normalized.as_str()) {
        return Err(format!(
            "{at}: kube-apiserver validates format {f:?}, the embedded store does not: teach src/crd_schema about it"
        ));
    }
    // Any other format (int32, int64, ...) is ignored by kube-apiserver.
    Ok(None)
}

/// The `properties` object `v` (at `at`) with each property's schema converted to its node
/// index in `out`.
fn convert_properties(v: &Value, at: &str, out: &mut Interner) -> Result<Value, String> {
    let props = v
        .as_object()
        .ok_or_else(|| format!("{at}: not an object"))?;
    let mut m = Map::new();
    // serde_json's map is ordered by key: the output does not depend on the input order.
    for (name, p) in props {
        m.insert(
            name.clone(),
            json!(convert(p, &format!("{at}.{name}"), out)?),
        );
    }
    Ok(Value::Object(m))
}

/// Checks that the `anyOf` `v` (at `at`) of the schema `s` is the int-or-string pair; it adds
/// nothing to the node.
fn check_any_of(s: &Map<String, Value>, v: &Value, at: &str) -> Result<(), String> {
    // Structural schemas allow anyOf only as the int-or-string pair, which the
    // validator implies from x-kubernetes-int-or-string.
    let stripped: Vec<Value> = v
        .as_array()
        .ok_or_else(|| format!("{at}: not a list"))?
        .iter()
        .map(|b| json!({"type": b.get("type")}))
        .collect();
    let int_or_string = s.get("x-kubernetes-int-or-string") == Some(&json!(true));
    if !int_or_string
        || stripped != vec![json!({"type": "integer"}), json!({"type": "string"})]
        || v.as_array().is_some_and(|a| {
            a.iter().any(|b| {
                b.as_object()
                    .is_some_and(|b| b.keys().any(|k| k != "type" && k != "description"))
            })
        })
    {
        return Err(format!(
            "{at}: only the int-or-string anyOf ([integer, string] with x-kubernetes-int-or-string) is supported"
        ));
    }
    Ok(())
}

/// The CEL rules `v` (at `at`, `x-kubernetes-validations`) reduced to their `rule` and
/// `message`; an error for any other rule field.
fn convert_validations(v: &Value, at: &str) -> Result<Value, String> {
    let rules = v.as_array().ok_or_else(|| format!("{at}: not a list"))?;
    let mut kept = Vec::new();
    for r in rules {
        let r = r
            .as_object()
            .ok_or_else(|| format!("{at}: not an object"))?;
        if let Some(extra) = r.keys().find(|k| *k != "rule" && *k != "message") {
            return Err(format!(
                "{at}: validation rule field {extra:?} is not supported by the embedded store"
            ));
        }
        kept.push(json!({"rule": r.get("rule"), "message": r.get("message")}));
    }
    Ok(Value::Array(kept))
}

fn find_version<'a>(crd: &'a Value, kind: &str) -> Result<&'a Value, String> {
    let spec = &crd["spec"];
    if spec["group"] != GROUP || spec["names"]["kind"] != kind {
        return Err(format!(
            "expected the CRD of {kind}.{GROUP}, found {}.{}",
            spec["names"]["kind"], spec["group"]
        ));
    }
    let version = spec["versions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|v| v["name"] == VERSION)
        .ok_or_else(|| format!("{kind}: no version {VERSION}"))?;
    if version["subresources"]["status"].is_null() {
        return Err(format!(
            "{kind}: the embedded store serves /status, the CRD has none"
        ));
    }
    if version["subresources"]
        .as_object()
        .is_some_and(|s| s.len() != 1)
    {
        return Err(format!(
            "{kind}: subresources other than status are not supported by the embedded store"
        ));
    }
    Ok(&version["schema"]["openAPIV3Schema"])
}

/// The schema file for the CRDs in `crd_dir` (a module's `config/crd/bases`); `source` names
/// them (`module@version`).
pub fn generate(crd_dir: &Path, source: &str) -> Result<String, String> {
    let mut out = Interner {
        nodes: Vec::new(),
        index: HashMap::new(),
    };
    let mut kinds = BTreeMap::new();
    for (kind, file) in KINDS {
        let path = crd_dir.join(file);
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("reading {}: {e}", path.display()))?;
        let crd: Value = serde_saphyr::from_str(&text)
            .map_err(|e| format!("parsing {}: {e}", path.display()))?;
        let schema = find_version(&crd, kind)?;
        kinds.insert(kind.to_string(), convert(schema, kind, &mut out)?);
    }
    let mut text = String::new();
    text.push_str("{\n");
    text.push_str(&format!(
        "  \"source\": {},\n",
        json!(format!(
            "{source} config/crd/bases, version {VERSION}; structural facts only"
        ))
    ));
    text.push_str(&format!(
        "  \"generator\": {},\n",
        json!(
            "crates/kube-embedded/examples/crd_schema (cargo run -p kube-embedded --example crd_schema -- --write)"
        )
    ));
    text.push_str(&format!(
        "  \"kinds\": {},\n",
        serde_json::to_string(&kinds).expect("serialisable")
    ));
    text.push_str("  \"nodes\": [\n");
    for (i, n) in out.nodes.iter().enumerate() {
        let sep = if i + 1 < out.nodes.len() { "," } else { "" };
        text.push_str(&format!("    {n}{sep}\n"));
    }
    text.push_str("  ]\n}\n");
    Ok(text)
}

/// The version of the KubeRay operator module that `e2e/kuberay/go.mod` pins.
pub fn pinned_version(repo: &Path) -> Result<String, String> {
    let go_mod = repo.join("e2e/kuberay/go.mod");
    let text = std::fs::read_to_string(&go_mod)
        .map_err(|e| format!("reading {}: {e}", go_mod.display()))?;
    text.lines()
        .filter(|l| !l.contains("=>"))
        .find_map(|l| {
            let mut words = l.split_whitespace();
            let mut w = words.next()?;
            if w == "require" {
                w = words.next()?;
            }
            (w == MODULE).then(|| words.next().map(str::to_string))?
        })
        .ok_or_else(|| format!("{} does not require {MODULE}", go_mod.display()))
}

/// `config/crd/bases` of the module at `version`, downloaded with `go mod download` (Go and
/// the Go module proxy are needed; the e2e harness needs them anyway).
pub fn download_crds(repo: &Path, version: &str) -> Result<std::path::PathBuf, String> {
    let out = std::process::Command::new("go")
        .args(["mod", "download", "-json", &format!("{MODULE}@{version}")])
        .current_dir(repo.join("e2e/kuberay"))
        .output()
        .map_err(|e| format!("running go mod download (is Go installed?): {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "go mod download failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let info: Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("go mod download -json printed no JSON: {e}"))?;
    let dir = info["Dir"]
        .as_str()
        .ok_or_else(|| format!("go mod download -json gave no Dir: {info}"))?;
    Ok(Path::new(dir).join("config/crd/bases"))
}

/// Where the schema file lives in the repository.
pub const SCHEMA_FILE: &str = "crates/kube-embedded/src/crd_schema/kuberay.json";
