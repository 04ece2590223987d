//! How a request body becomes the object to store: its type and namespace checked
//! against the request, the metadata only the server sets, the defaults of the kind,
//! the checks of an update against the stored object, and validation.

use serde_json::{Map, Value, json};

use super::kinds::{apply_kind_defaults, validate_event_namespace};
use super::meta::MetaView;
use super::{Target, now_rfc3339, str_at};
use crate::crd_schema::{self, Crd};
use crate::field::{self, FieldError};
use crate::resources::{self, ResourceDef};
use crate::status::StatusError;
use crate::validation;

/// Checks and fills apiVersion/kind of a request body.
fn check_type(def: &ResourceDef, obj: &mut Value) -> Result<(), StatusError> {
    let Some(map) = obj.as_object_mut() else {
        return Err(StatusError::bad_request(
            "the body of the request is not a JSON object",
        ));
    };
    let want_av = def.api_version();
    match map.get("apiVersion").and_then(Value::as_str) {
        None | Some("") => {
            map.insert("apiVersion".into(), json!(want_av));
        }
        Some(av) if av == want_av => {}
        Some(av) => {
            return Err(StatusError::bad_request(format!(
                "the API version in the data ({av}) does not match the expected API version ({want_av})"
            )));
        }
    }
    match map.get("kind").and_then(Value::as_str) {
        None | Some("") => {
            map.insert("kind".into(), json!(def.kind));
        }
        Some(k) if k == def.kind => {}
        Some(k) if def.custom => {
            // The custom resource validator's `ValidateTypeMeta`.
            let name = map
                .get("metadata")
                .and_then(|m| m.get("name"))
                .and_then(Value::as_str)
                .unwrap_or("");
            let e = FieldError::invalid(
                "kind",
                field::BadValue::str(k),
                format!("must be {}", def.kind),
            );
            return Err(field::invalid_as(def.group, k, name, &[e]));
        }
        Some(k) => {
            return Err(StatusError::bad_request(format!(
                "the kind in the data ({k}) does not match the expected kind ({})",
                def.kind
            )));
        }
    }
    match map.get("metadata") {
        None | Some(Value::Null) => {
            map.insert("metadata".into(), json!({}));
        }
        Some(Value::Object(_)) => {}
        Some(_) => return Err(StatusError::bad_request("metadata must be an object")),
    }
    Ok(())
}

/// Fills or checks `metadata.namespace` against the request path.
fn check_namespace(
    def: &ResourceDef,
    path_ns: Option<&str>,
    obj: &mut Value,
) -> Result<(), StatusError> {
    let meta = metadata_mut(obj)?;
    if !def.namespaced {
        meta.remove("namespace");
        return Ok(());
    }
    let path_ns = path_ns.unwrap_or("");
    match meta.get("namespace").and_then(Value::as_str) {
        None | Some("") => {
            meta.insert("namespace".into(), json!(path_ns));
        }
        Some(ns) if ns == path_ns => {}
        Some(_) => {
            return Err(StatusError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
    }
    Ok(())
}

const NAME_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

fn random_suffix() -> String {
    let bytes = uuid::Uuid::new_v4().into_bytes();
    bytes[..5]
        .iter()
        .map(|b| NAME_ALPHABET[*b as usize % NAME_ALPHABET.len()] as char)
        .collect()
}

/// The object a create of `obj` (in the namespace of the request path) stores (without
/// its resourceVersion): checked, named, with the metadata only the server sets and the
/// kind's defaults, validated.
pub(super) fn prepare_create(
    def: &'static ResourceDef,
    path_ns: Option<&str>,
    mut obj: Value,
) -> Result<Value, StatusError> {
    check_type(def, &mut obj)?;
    check_namespace(def, path_ns, &mut obj)?;
    let crd = crd_schema::for_def(def);
    if let Some(crd) = crd {
        crd.coerce(&mut obj);
    }
    let name = fill_name(def, metadata_mut(&mut obj)?)?;
    // ValidateObjectMeta: the name, labels and annotations (all reported together).
    let generate_name = str_at(&obj, "/metadata/generateName").to_string();
    let mut errs = validation::name_errors(def.name_rule, &generate_name, &name);
    errs.extend(validation::labels_and_annotations(
        def,
        &mut obj["metadata"],
    )?);
    let meta = metadata_mut(&mut obj)?;
    if meta
        .get("resourceVersion")
        .and_then(Value::as_str)
        .is_some_and(|s| !s.is_empty())
    {
        return Err(StatusError::internal(
            "resourceVersion should not be set on objects to be created",
        ));
    }
    set_create_metadata(def, meta);
    if def.has_status_subresource
        && def.custom
        && let Some(map) = obj.as_object_mut()
    {
        map.remove("status");
    }
    apply_kind_defaults(def, &mut obj, true)?;
    if let Some(crd) = crd {
        crd.validate(&obj, None, &mut errs);
        crd.encode(&mut obj);
    }
    if !errs.is_empty() {
        return Err(field::invalid(def, &name, &errs));
    }
    validate_event_namespace(def, &obj)?;
    Ok(obj)
}

/// The object's name: `metadata.name`, or else one made from `metadata.generateName`.
fn fill_name(def: &ResourceDef, meta: &mut Map<String, Value>) -> Result<String, StatusError> {
    let name = meta.get("name").and_then(Value::as_str).unwrap_or("");
    if !name.is_empty() {
        return Ok(name.to_string());
    }
    let gen_name = meta
        .get("generateName")
        .and_then(Value::as_str)
        .unwrap_or("");
    if gen_name.is_empty() {
        let mut e = StatusError::invalid(
            def,
            "",
            "metadata.name",
            "Required value: name or generateName is required",
        );
        if let Some(details) = e.details.as_mut() {
            details["causes"][0]["reason"] = json!("FieldValueRequired");
        }
        return Err(e);
    }
    let name = format!("{gen_name}{}", random_suffix());
    meta.insert("name".into(), json!(name));
    Ok(name)
}

/// The metadata a create sets, whatever the body says: uid, creation time, generation.
fn set_create_metadata(def: &ResourceDef, meta: &mut Map<String, Value>) {
    meta.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
    meta.insert("creationTimestamp".into(), json!(now_rfc3339()));
    meta.remove("deletionTimestamp");
    meta.remove("deletionGracePeriodSeconds");
    meta.remove("selfLink");
    meta.remove("managedFields");
    if def.custom {
        meta.insert("generation".into(), json!(1));
    } else {
        meta.remove("generation");
    }
}

/// Everything that counts towards `generation` of a custom resource.
fn generation_content(def: &ResourceDef, v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(m) = v.as_object_mut() {
        m.remove("metadata");
        m.remove("apiVersion");
        m.remove("kind");
        if def.has_status_subresource {
            m.remove("status");
        }
    }
    v
}

/// The object an update of `old` to `new` stores (without its new resourceVersion):
/// `new` checked against the request and `old`, merged with what the client may not
/// change, validated.
pub(super) fn prepare_update(
    def: &'static ResourceDef,
    ns: &str,
    name: &str,
    old: &Value,
    mut new: Value,
    target: Target,
    is_patch: bool,
) -> Result<Value, StatusError> {
    let crd = crd_schema::for_def(def);
    check_update_request(def, ns, name, crd, &mut new)?;
    let old_meta = MetaView::of(old);
    check_body_preconditions(def, name, &new, &old_meta, is_patch)?;
    let mut out = match target {
        Target::Status => merge_status(old, &new),
        Target::Main => merge_main(def, name, old, new)?,
    };
    out["metadata"]["resourceVersion"] = json!(old_meta.resource_version);
    validate_update(def, name, old, target, crd, &mut out)?;
    if let Some(crd) = crd {
        crd.encode(&mut out);
    }
    Ok(out)
}

/// The checks of the type, namespace and name of an update's body against the request.
fn check_update_request(
    def: &ResourceDef,
    ns: &str,
    name: &str,
    crd: Option<Crd>,
    new: &mut Value,
) -> Result<(), StatusError> {
    check_type(def, new)?;
    check_namespace(def, Some(ns), new)?;
    if let Some(crd) = crd {
        crd.coerce(new);
    }
    let body_name = str_at(new, "/metadata/name");
    if body_name != name {
        return Err(StatusError::bad_request(format!(
            "the name of the object ({body_name}) does not match the name on the URL ({name})"
        )));
    }
    Ok(())
}

/// Preconditions carried by the body: uid and resourceVersion (required by custom
/// resources on PUT).
fn check_body_preconditions(
    def: &ResourceDef,
    name: &str,
    new: &Value,
    old_meta: &MetaView<'_>,
    is_patch: bool,
) -> Result<(), StatusError> {
    let body_uid = str_at(new, "/metadata/uid");
    let old_uid = old_meta.uid;
    if !body_uid.is_empty() && body_uid != old_uid {
        return Err(StatusError::conflict(
            def,
            name,
            &format!(
                "Precondition failed: UID in precondition: {body_uid}, UID in object meta: {old_uid}"
            ),
        ));
    }
    let body_rv = str_at(new, "/metadata/resourceVersion");
    if body_rv.is_empty() {
        if def.custom && !is_patch {
            return Err(StatusError::invalid(
                def,
                name,
                "metadata.resourceVersion",
                "Invalid value: 0x0: must be specified for an update",
            ));
        }
    } else if body_rv != old_meta.resource_version {
        return Err(StatusError::modified(def, name));
    }
    Ok(())
}

/// A status update: `old` with the status of `new`.
fn merge_status(old: &Value, new: &Value) -> Value {
    let mut out = old.clone();
    match new.get("status") {
        Some(s) => out["status"] = s.clone(),
        None => {
            if let Some(map) = out.as_object_mut() {
                map.remove("status");
            }
        }
    }
    out
}

/// A main-resource update: `new`, keeping what only the server sets, with the kind's
/// defaults, the finalizer rule of objects being deleted, and the generation bumped
/// when a custom resource's content changed.
fn merge_main(
    def: &ResourceDef,
    name: &str,
    old: &Value,
    new: Value,
) -> Result<Value, StatusError> {
    let mut out = new;
    keep_server_fields(def, old, &mut out)?;
    apply_kind_defaults(def, &mut out, false)?;
    let old_meta = MetaView::of(old);
    if old_meta.deleting {
        check_no_new_finalizers(def, name, &old_meta, &out)?;
    }
    if def.custom && generation_content(def, &out) != generation_content(def, old) {
        out["metadata"]["generation"] = json!(old_meta.generation + 1);
    }
    Ok(out)
}

/// Copies from `old` into `out` what a main-resource update cannot change: the status
/// (and a namespace's spec) behind a status subresource, and the server-set metadata.
fn keep_server_fields(def: &ResourceDef, old: &Value, out: &mut Value) -> Result<(), StatusError> {
    if def.has_status_subresource {
        let map = object_mut(out)?;
        keep_field(map, old.as_object(), "status");
        if std::ptr::eq(def, resources::namespaces()) {
            keep_field(map, old.as_object(), "spec");
        }
    }
    let old_meta = old["metadata"].as_object();
    let meta = metadata_mut(out)?;
    for f in [
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "generation",
    ] {
        keep_field(meta, old_meta, f);
    }
    meta.remove("selfLink");
    meta.remove("managedFields");
    Ok(())
}

/// The object's map (request bodies are checked to be objects before they get here).
fn object_mut(obj: &mut Value) -> Result<&mut Map<String, Value>, StatusError> {
    obj.as_object_mut()
        .ok_or_else(|| StatusError::internal("the object is not a JSON object"))
}

/// The object's metadata map (checked to be one before it gets here).
fn metadata_mut(obj: &mut Value) -> Result<&mut Map<String, Value>, StatusError> {
    object_mut(obj)?
        .get_mut("metadata")
        .and_then(Value::as_object_mut)
        .ok_or_else(|| StatusError::internal("the object has no metadata"))
}

/// Sets `to[f]` to `from[f]`, or removes it when `from` has none.
fn keep_field(to: &mut Map<String, Value>, from: Option<&Map<String, Value>>, f: &str) {
    match from.and_then(|m| m.get(f)) {
        Some(v) => {
            to.insert(f.into(), v.clone());
        }
        None => {
            to.remove(f);
        }
    }
}

/// No finalizer can be added to an object being deleted.
fn check_no_new_finalizers(
    def: &ResourceDef,
    name: &str,
    old_meta: &MetaView<'_>,
    out: &Value,
) -> Result<(), StatusError> {
    let old_f: Vec<&Value> = old_meta
        .finalizers
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    let added = MetaView::of(out)
        .finalizers
        .is_some_and(|a| a.iter().any(|f| !old_f.contains(&f)));
    if !added {
        return Ok(());
    }
    Err(field::invalid(
        def,
        name,
        &[FieldError::new(
            field::ErrorType::Forbidden,
            "metadata.finalizers",
            field::BadValue::Omit,
            "no new finalizers can be added if the object is being deleted",
        )],
    ))
}

/// Validates the metadata (main resource) and the custom resource schema of `out`.
fn validate_update(
    def: &ResourceDef,
    name: &str,
    old: &Value,
    target: Target,
    crd: Option<Crd>,
    out: &mut Value,
) -> Result<(), StatusError> {
    let mut errs = Vec::new();
    match target {
        Target::Main => {
            let meta_errs = validation::labels_and_annotations(def, &mut out["metadata"])?;
            for _ in 0..def.meta_checks_on_update {
                errs.extend(meta_errs.iter().cloned());
            }
            if let Some(crd) = crd {
                crd.validate(out, Some(old), &mut errs);
            }
        }
        Target::Status => {
            if let Some(crd) = crd {
                crd.validate_status(out, old, &mut errs);
            }
        }
    }
    if !errs.is_empty() {
        return Err(field::invalid(def, name, &errs));
    }
    Ok(())
}
