//! The Kubernetes write rules run inside the writer's transaction: what a create, update
//! or delete checks against the stored state (namespace, existence, preconditions) and
//! changes (resourceVersion, finalizers, deletion and the cascade of a namespace's
//! deletion). The request body is made into the object to store by [`super::prepare`].

use serde_json::{Value, json};

use super::engine::{Tx, WriteResult};
use super::meta::MetaView;
use super::prepare::prepare_update;
use super::watch_hub::Event;
use super::{Deleted, Target, now_rfc3339};
use crate::resources::{self, ResourceDef};
use crate::status::StatusError;

/// Stores `obj` (prepared by [`super::prepare::prepare_create`]) at resourceVersion `rv`: its namespace
/// must exist and not be terminating, and its name must be free.
pub(super) fn create_in(
    tx: &Tx<'_, '_>,
    rv: u64,
    def: &'static ResourceDef,
    mut obj: Value,
) -> WriteResult<Value> {
    let meta = MetaView::of(&obj);
    let (ns, name) = (meta.namespace.to_string(), meta.name.to_string());
    if def.namespaced {
        let ns_key = resources::namespaces().key("", &ns);
        match tx.get(&ns_key)? {
            None => return Err(StatusError::namespace_not_found(&ns)),
            Some(nso) => {
                if MetaView::of(&nso).deleting {
                    return Err(StatusError {
                        code: 403,
                        reason: "Forbidden",
                        message: format!(
                            "{} \"{}\" is forbidden: unable to create new content in namespace {} because it is being terminated",
                            def.qualified_plural(),
                            name,
                            ns
                        ),
                        details: Some(json!({"name": name, "kind": def.plural})),
                        list_meta: None,
                    });
                }
            }
        }
    }
    if tx.contains(&def.key(&ns, &name))? {
        return Err(StatusError::already_exists(def, &name));
    }
    obj["metadata"]["resourceVersion"] = json!(rv.to_string());
    let ev = Event {
        rv,
        kind: "ADDED",
        def,
        namespace: ns,
        object: obj.clone(),
        prev: None,
    };
    Ok((obj, vec![ev]))
}

/// Replaces the object `ns`/`name` with what `build` makes of it, at resourceVersion `rv`
/// (see [`prepare_update`]). A change that leaves the object as it was writes nothing;
/// one that removes the last finalizer of an object being deleted deletes it.
#[allow(clippy::too_many_arguments)]
pub(super) fn update_in(
    tx: &Tx<'_, '_>,
    rv: u64,
    def: &'static ResourceDef,
    ns: String,
    name: &str,
    target: Target,
    is_patch: bool,
    build: impl FnOnce(&Value) -> Result<Value, StatusError>,
) -> WriteResult<Value> {
    let Some(old) = tx.get(&def.key(&ns, name))? else {
        return Err(StatusError::not_found(def, name));
    };
    let new = build(&old)?;
    let mut merged = prepare_update(def, &ns, name, &old, new, target, is_patch)?;
    if without_rv(&merged) == without_rv(&old) {
        // No-op update: nothing is written, the resourceVersion stays.
        return Ok((old, vec![]));
    }
    merged["metadata"]["resourceVersion"] = json!(rv.to_string());
    let meta = MetaView::of(&merged);
    let finalized = meta.deleting && !meta.has_finalizers();
    let ev = Event {
        rv,
        kind: if finalized { "DELETED" } else { "MODIFIED" },
        def,
        namespace: ns,
        object: merged.clone(),
        prev: Some(old),
    };
    Ok((merged, vec![ev]))
}

/// Deletes the object `ns`/`name` at resourceVersion `rv` (and on): removed at once
/// without finalizers, else marked as being deleted. Deleting a namespace removes every
/// object in it first.
pub(super) fn delete_in(
    tx: &Tx<'_, '_>,
    rv: u64,
    def: &'static ResourceDef,
    ns: String,
    name: &str,
    preconditions: &Value,
) -> WriteResult<Deleted> {
    let Some(mut obj) = tx.get(&def.key(&ns, name))? else {
        return Err(StatusError::not_found(def, name));
    };
    check_preconditions(def, name, &obj, preconditions)?;
    let mut events = Vec::new();
    let mut rv = rv;
    let is_namespace = std::ptr::eq(def, resources::namespaces());
    if is_namespace {
        rv = cascade_namespace(tx, rv, name, &mut events)?;
        if !MetaView::of(&obj).deleting {
            obj["metadata"]["deletionTimestamp"] = json!(now_rfc3339());
        }
        obj["status"] = json!({"phase": "Terminating"});
    }
    let (deleting, finalizers) = {
        let meta = MetaView::of(&obj);
        (meta.deleting, meta.has_finalizers())
    };
    if finalizers {
        if deleting && !is_namespace {
            // Already being deleted: nothing changes.
            return Ok((Deleted::Pending(obj), events));
        }
        if !deleting {
            obj["metadata"]["deletionTimestamp"] = json!(now_rfc3339());
        }
        obj["metadata"]["deletionGracePeriodSeconds"] = json!(0);
        obj["metadata"]["resourceVersion"] = json!(rv.to_string());
        events.push(Event {
            rv,
            kind: "MODIFIED",
            def,
            namespace: ns,
            object: obj.clone(),
            prev: None,
        });
        return Ok((Deleted::Pending(obj), events));
    }
    obj["metadata"]["resourceVersion"] = json!(rv.to_string());
    events.push(Event {
        rv,
        kind: "DELETED",
        def,
        namespace: ns,
        object: obj.clone(),
        prev: None,
    });
    Ok((Deleted::Gone(obj), events))
}

/// Namespace deletion removes every object in it right away (no namespace controller
/// runs here), ignoring their finalizers: adds their `DELETED` events from `rv` on and
/// returns the next free resourceVersion.
fn cascade_namespace(
    tx: &Tx<'_, '_>,
    mut rv: u64,
    namespace: &str,
    events: &mut Vec<Event>,
) -> Result<u64, StatusError> {
    for r in resources::RESOURCES.iter().filter(|r| r.namespaced) {
        for mut o in tx.scan(&format!("{}{}\0", r.key_prefix(), namespace))? {
            o["metadata"]["resourceVersion"] = json!(rv.to_string());
            events.push(Event {
                rv,
                kind: "DELETED",
                def: r,
                namespace: namespace.to_string(),
                object: o,
                prev: None,
            });
            rv += 1;
        }
    }
    Ok(rv)
}

/// The preconditions of a DELETE (uid and resourceVersion).
fn check_preconditions(
    def: &ResourceDef,
    name: &str,
    obj: &Value,
    pre: &Value,
) -> Result<(), StatusError> {
    if let Some(uid) = pre.get("uid").and_then(Value::as_str) {
        let have = MetaView::of(obj).uid;
        if uid != have {
            return Err(StatusError::conflict(
                def,
                name,
                &format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {have}"
                ),
            ));
        }
    }
    if let Some(rv) = pre.get("resourceVersion").and_then(Value::as_str) {
        let have = MetaView::of(obj).resource_version;
        if rv != have {
            return Err(StatusError::conflict(
                def,
                name,
                &format!(
                    "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {have}"
                ),
            ));
        }
    }
    Ok(())
}

/// `v` without its resourceVersion (to tell a no-op update).
fn without_rv(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("resourceVersion");
    }
    v
}
