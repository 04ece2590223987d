//! Discovery documents (`/version`, `/api`, `/apis`, ...), health endpoints and
//! the `Table` rendering kubectl asks for.
//!
//! Only the plain (non-aggregated) discovery forms are served: a request for
//! aggregated discovery (`Accept: ...;as=APIGroupDiscoveryList`) is answered with
//! the plain document and `Content-Type: application/json`, which clients treat
//! as "aggregated discovery not supported" and fall back.

use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::api::json_response;
use crate::resources::{self, RESOURCES, ResourceDef};
use crate::status::StatusError;
use crate::store::str_at;

const VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

fn resource_list(group: &str, version: &str) -> Value {
    let mut out = Vec::new();
    for r in RESOURCES
        .iter()
        .filter(|r| r.group == group && r.version == version)
    {
        let mut e = json!({
            "name": r.plural,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": VERBS,
        });
        if !r.short_names.is_empty() {
            e["shortNames"] = json!(r.short_names);
        }
        if r.custom {
            e["categories"] = json!(["all"]);
        }
        out.push(e);
        if r.has_status_subresource {
            out.push(json!({
                "name": format!("{}/status", r.plural),
                "singularName": "",
                "namespaced": r.namespaced,
                "kind": r.kind,
                "verbs": ["get", "patch", "update"],
            }));
        }
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": gv,
        "resources": out,
    })
}

fn api_group(group: &str) -> Value {
    let versions: Vec<Value> = resources::group_versions()
        .into_iter()
        .filter(|(g, _)| *g == group)
        .map(|(g, v)| json!({"groupVersion": format!("{g}/{v}"), "version": v}))
        .collect();
    json!({
        "name": group,
        "versions": versions,
        "preferredVersion": versions.first().cloned().unwrap_or(Value::Null),
    })
}

fn group_exists(group: &str) -> bool {
    !group.is_empty() && RESOURCES.iter().any(|r| r.group == group)
}

fn version_exists(group: &str, version: &str) -> bool {
    RESOURCES
        .iter()
        .any(|r| r.group == group && r.version == version)
}

/// Answers non-resource paths; `None` for resource paths.
pub fn handle(method: &Method, segs: &[String], _headers: &HeaderMap) -> Option<Response> {
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    let doc = match s.as_slice() {
        ["healthz" | "livez" | "readyz", ..] => {
            return Some(
                (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain")], "ok").into_response(),
            );
        }
        ["version"] => json!({
            "major": "1",
            "minor": "33",
            "gitVersion": "v1.33.0-kube-embedded",
            "gitCommit": "0000000000000000000000000000000000000000",
            "gitTreeState": "clean",
            "buildDate": "2025-01-01T00:00:00Z",
            "goVersion": "go1.24",
            "compiler": "gc",
            "platform": format!("{}/{}", std::env::consts::OS, if std::env::consts::ARCH == "x86_64" { "amd64" } else if std::env::consts::ARCH == "aarch64" { "arm64" } else { std::env::consts::ARCH }),
        }),
        ["api"] => json!({
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1:6443"}],
        }),
        ["api", "v1"] => resource_list("", "v1"),
        ["apis"] => {
            let mut groups: Vec<&str> = Vec::new();
            for (g, _) in resources::group_versions() {
                if !g.is_empty() && !groups.contains(&g) {
                    groups.push(g);
                }
            }
            json!({
                "kind": "APIGroupList",
                "apiVersion": "v1",
                "groups": groups.iter().map(|g| api_group(g)).collect::<Vec<_>>(),
            })
        }
        ["apis", g] if group_exists(g) => {
            let mut v = api_group(g);
            v["kind"] = json!("APIGroup");
            v["apiVersion"] = json!("v1");
            v
        }
        ["apis", g, v] if version_exists(g, v) => resource_list(g, v),
        ["openapi", "v3"] => openapi_root(),
        ["openapi", "v3", "api", "v1"] => openapi_gv("", "v1"),
        ["openapi", "v3", "apis", g, v] if version_exists(g, v) => openapi_gv(g, v),
        _ => return None,
    };
    if method != Method::GET && method != Method::HEAD {
        return Some(
            StatusError::method_not_allowed(
                "the server does not allow this method on the requested resource",
            )
            .into_response(),
        );
    }
    Some(json_response(StatusCode::OK, &doc))
}

/// `/openapi/v3`: one document per served group-version.
fn openapi_root() -> Value {
    let mut paths = serde_json::Map::new();
    for (g, v) in resources::group_versions() {
        let p = if g.is_empty() {
            format!("api/{v}")
        } else {
            format!("apis/{g}/{v}")
        };
        paths.insert(
            p.clone(),
            json!({"serverRelativeURL": format!("/openapi/v3/{p}?hash=kube-embedded-1")}),
        );
    }
    json!({"paths": paths})
}

/// A minimal OpenAPI v3 document for one group-version: only the PATCH
/// operations with their `x-kubernetes-group-version-kind` and the
/// `fieldValidation` parameter, which is what kubectl looks for to decide that
/// the server validates fields itself (it then skips client-side schema validation).
/// No schemas are published (`kubectl explain` does not work).
fn openapi_gv(group: &str, version: &str) -> Value {
    let mut paths = serde_json::Map::new();
    for r in RESOURCES
        .iter()
        .filter(|r| r.group == group && r.version == version)
    {
        let base = if group.is_empty() {
            format!("/api/{version}")
        } else {
            format!("/apis/{group}/{version}")
        };
        let path = if r.namespaced {
            format!("{base}/namespaces/{{namespace}}/{}/{{name}}", r.plural)
        } else {
            format!("{base}/{}/{{name}}", r.plural)
        };
        let param = |n: &str| json!({"name": n, "in": "query", "schema": {"type": "string", "uniqueItems": true}});
        paths.insert(
            path,
            json!({
                "patch": {
                    "operationId": format!("patch{}", r.kind),
                    "parameters": [param("dryRun"), param("fieldManager"), param("fieldValidation"), param("force")],
                    "responses": {"200": {"description": "OK"}},
                    "x-kubernetes-action": "patch",
                    "x-kubernetes-group-version-kind": {"group": group, "version": version, "kind": r.kind},
                }
            }),
        );
    }
    json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.33.0"},
        "paths": paths,
        "components": {"schemas": {}},
    })
}

/// kubectl's short age format (k8s.io/apimachinery/pkg/util/duration.HumanDuration).
pub fn human_duration(secs: i64) -> String {
    if secs < -1 {
        return "<invalid>".into();
    }
    let secs = secs.max(0);
    let (m, h, d) = (secs / 60, secs / 3600, secs / 86400);
    if secs < 120 {
        format!("{secs}s")
    } else if m < 10 {
        let s = secs % 60;
        if s == 0 {
            format!("{m}m")
        } else {
            format!("{m}m{s}s")
        }
    } else if m < 180 {
        format!("{m}m")
    } else if h < 8 {
        let mm = m % 60;
        if mm == 0 {
            format!("{h}h")
        } else {
            format!("{h}h{mm}m")
        }
    } else if h < 48 {
        format!("{h}h")
    } else if h < 192 {
        let hh = h % 24;
        if hh == 0 {
            format!("{d}d")
        } else {
            format!("{d}d{hh}h")
        }
    } else if d < 365 * 2 {
        format!("{d}d")
    } else if d < 365 * 8 {
        let dd = d % 365;
        if dd == 0 {
            format!("{}y", d / 365)
        } else {
            format!("{}y{dd}d", d / 365)
        }
    } else {
        format!("{}y", d / 365)
    }
}

fn age(obj: &Value) -> String {
    let ts = str_at(obj, "/metadata/creationTimestamp");
    match ts.parse::<k8s_openapi::jiff::Timestamp>() {
        Ok(t) => {
            let now = k8s_openapi::jiff::Timestamp::now();
            human_duration(now.as_second() - t.as_second())
        }
        Err(_) => "<unknown>".into(),
    }
}

fn column(name: &str, ty: &str, format: &str) -> Value {
    json!({"name": name, "type": ty, "format": format, "description": "", "priority": 0})
}

fn count(v: Option<&Value>) -> usize {
    v.and_then(Value::as_object).map_or(0, |m| m.len())
}

/// The `ENDPOINTS` column of `kubectl get endpoints` (the printer's `formatEndpoints`): up to
/// three `ip:port` (or bare ip for a subset without ports), then ` + N more...`.
fn format_endpoints(obj: &Value) -> String {
    let Some(subsets) = obj
        .get("subsets")
        .and_then(Value::as_array)
        .filter(|s| !s.is_empty())
    else {
        return "<none>".into();
    };
    const MAX: usize = 3;
    let mut list: Vec<String> = Vec::new();
    let mut count = 0;
    let empty = Vec::new();
    for ss in subsets {
        let addresses = ss
            .get("addresses")
            .and_then(Value::as_array)
            .unwrap_or(&empty);
        let ips = addresses.iter().map(|a| str_at(a, "/ip"));
        let ports = ss.get("ports").and_then(Value::as_array).unwrap_or(&empty);
        if ports.is_empty() {
            count += addresses.len();
            list.extend(ips.map(str::to_string));
            continue;
        }
        for port in ports {
            let number = port.get("port").and_then(Value::as_i64).unwrap_or(0);
            count += addresses.len();
            list.extend(ips.clone().map(|ip| {
                if ip.contains(':') {
                    format!("[{ip}]:{number}")
                } else {
                    format!("{ip}:{number}")
                }
            }));
        }
    }
    if count > MAX {
        list.truncate(MAX);
        return format!("{} + {} more...", list.join(","), count - MAX);
    }
    list.join(",")
}

/// Renders a list document as a `meta.k8s.io/v1` `Table`.
pub fn to_table(def: &ResourceDef, list: Value) -> Value {
    let mut cols = vec![column("Name", "string", "name")];
    match def.plural {
        "configmaps" => cols.push(column("Data", "integer", "")),
        "secrets" => {
            cols.push(column("Type", "string", ""));
            cols.push(column("Data", "integer", ""));
        }
        "namespaces" | "pods" => cols.push(column("Status", "string", "")),
        "endpoints" => cols.push(column("Endpoints", "string", "")),
        "events" => {
            cols.push(column("Type", "string", ""));
            cols.push(column("Reason", "string", ""));
        }
        _ => {}
    }
    cols.push(column("Age", "string", ""));
    let rows: Vec<Value> = list["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|o| {
                    let mut cells = vec![json!(str_at(o, "/metadata/name"))];
                    match def.plural {
                        "configmaps" => {
                            cells.push(json!(count(o.get("data")) + count(o.get("binaryData"))))
                        }
                        "secrets" => {
                            cells.push(json!(str_at(o, "/type")));
                            cells.push(json!(count(o.get("data"))));
                        }
                        "namespaces" | "pods" => cells.push(json!(str_at(o, "/status/phase"))),
                        "endpoints" => cells.push(json!(format_endpoints(o))),
                        "events" => {
                            cells.push(json!(str_at(o, "/type")));
                            cells.push(json!(str_at(o, "/reason")));
                        }
                        _ => {}
                    }
                    cells.push(json!(age(o)));
                    json!({
                        "cells": cells,
                        "object": {
                            "kind": "PartialObjectMetadata",
                            "apiVersion": "meta.k8s.io/v1",
                            "metadata": o.get("metadata").cloned().unwrap_or(json!({})),
                        },
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list.get("metadata").cloned().unwrap_or(json!({})),
        "columnDefinitions": cols,
        "rows": rows,
    })
}
