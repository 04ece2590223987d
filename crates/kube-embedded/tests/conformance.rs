//! Conformance suite: behaviour of the API as seen through `kube::Client`.
//! Runs against the embedded store, or a real cluster with KUBECONFIG_CONFORMANCE.

mod common;

use std::collections::BTreeMap;

use common::*;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

fn cm(name: &str, labels: &[(&str, &str)]) -> ConfigMap {
    let labels: BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": labels},
        "data": {"k": "v"},
    }))
    .unwrap()
}

fn raycluster(name: &str, replicas: i64) -> DynamicObject {
    DynamicObject::new(name, &ray_resource("RayCluster")).data(json!({
        "spec": {
            "rayVersion": "2.9.0",
            // The smallest spec the KubeRay CRD's schema accepts.
            "headGroupSpec": {"rayStartParams": {}, "template": {"spec": {"containers": [
                {"name": "ray-head", "image": "rayproject/ray:2.9.0"}
            ]}}},
            "workerGroupSpecs": [{
                "groupName": "g",
                "replicas": replicas,
                "rayStartParams": {},
                "template": {"spec": {"containers": [
                    {"name": "ray-worker", "image": "rayproject/ray:2.9.0"}
                ]}},
            }],
        },
        "status": {"state": "ready"},
    }))
}

async fn raw(
    client: &kube::Client,
    method: &str,
    uri: &str,
    body: Value,
) -> Result<Value, kube::Error> {
    let req = http::Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json")
        .body(if body.is_null() {
            vec![]
        } else {
            serde_json::to_vec(&body).unwrap()
        })
        .unwrap();
    client.request::<Value>(req).await
}

async fn raw_text(
    client: &kube::Client,
    method: &str,
    uri: &str,
    body: &[u8],
) -> Result<String, kube::Error> {
    let req = http::Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json")
        .body(body.to_vec())
        .unwrap();
    client.request_text(req).await
}

/// Whether a ConfigMap is one a test made (a real cluster adds `kube-root-ca.crt` to
/// every namespace).
fn is_ours(c: &ConfigMap) -> bool {
    c.metadata.name.as_deref() != Some("kube-root-ca.crt")
}

/// Names of the test's own ConfigMaps in a list.
fn ours(list: &kube::api::ObjectList<ConfigMap>) -> Vec<String> {
    list.items
        .iter()
        .filter(|c| is_ours(c))
        .map(|c| c.metadata.name.clone().unwrap())
        .collect()
}

fn names(list: &kube::api::ObjectList<ConfigMap>) -> Vec<String> {
    ours(list)
}

// ---------------------------------------------------------------- create

#[tokio::test]
async fn create_fills_server_fields() {
    let mut env = env().await;
    let ns = env.namespace("create").await;
    let api: Api<ConfigMap> = Api::namespaced(env.client.clone(), &ns);
    let created = api
        .create(&PostParams::default(), &cm("a", &[]))
        .await
        .unwrap();
    let m = &created.metadata;
    assert_eq!(m.namespace.as_deref(), Some(ns.as_str()));
    let uid = m.uid.as_deref().unwrap();
    assert_eq!(uid.len(), 36, "uid {uid}");
    assert_eq!(uid.matches('-').count(), 4);
    let rv: u64 = m.resource_version.as_deref().unwrap().parse().unwrap();
    assert!(rv > 0);
    assert!(m.creation_timestamp.is_some());
    assert_eq!(m.generation, None);

    // raw JSON: timestamp format and apiVersion/kind
    let v = raw(
        &env.client,
        "GET",
        &format!("/api/v1/namespaces/{ns}/configmaps/a"),
        Value::Null,
    )
    .await
    .unwrap();
    let ts = v["metadata"]["creationTimestamp"].as_str().unwrap();
    assert_eq!(ts.len(), 20, "{ts}");
    assert!(ts.ends_with('Z') && ts.as_bytes()[10] == b'T', "{ts}");
    assert_eq!(v["apiVersion"], "v1");
    assert_eq!(v["kind"], "ConfigMap");

    let got = api.get("a").await.unwrap();
    assert_eq!(got.metadata.uid, created.metadata.uid);
    assert_eq!(got.data, created.data);

    // a second object gets a greater resourceVersion
    let b = api
        .create(&PostParams::default(), &cm("b", &[]))
        .await
        .unwrap();
    let rv_b: u64 = b.metadata.resource_version.unwrap().parse().unwrap();
    assert!(rv_b > rv);
    env.cleanup().await;
}

#[tokio::test]
async fn create_generate_name() {
    let mut env = env().await;
    let ns = env.namespace("genname").await;
    let api: Api<ConfigMap> = Api::namespaced(env.client.clone(), &ns);
    let mut c = cm("", &[]);
    c.metadata.name = None;
    c.metadata.generate_name = Some("job-".into());
    let a = api.create(&PostParams::default(), &c).await.unwrap();
    let b = api.create(&PostParams::default(), &c).await.unwrap();
    let an = a.metadata.name.unwrap();
    assert!(an.starts_with("job-") && an.len() == 9, "{an}");
    assert_ne!(Some(an), b.metadata.name);

    // neither name nor generateName: 422
    let mut c = cm("", &[]);
    c.metadata.name = None;
    let s = status(api.create(&PostParams::default(), &c).await.unwrap_err());
    assert_eq!(s.code, 422);
    assert_eq!(s.reason, "Invalid");
    env.cleanup().await;
}

#[tokio::test]
async fn create_rejects_namespace_mismatch() {
    let mut env = env().await;
    let ns = env.namespace("mismatch").await;
    let api: Api<ConfigMap> = Api::namespaced(env.client.clone(), &ns);
    let mut c = cm("a", &[]);
    c.metadata.namespace = Some("other".into());
    let s = status(api.create(&PostParams::default(), &c).await.unwrap_err());
    assert_eq!(s.code, 400);
    assert_eq!(s.reason, "BadRequest");
    assert_eq!(
        s.message,
        "the namespace of the provided object does not match the namespace sent on the request"
    );
    env.cleanup().await;
}

#[tokio::test]
async fn create_validates_name() {
    let mut env = env().await;
    let ns = env.namespace("badname").await;
    let api: Api<ConfigMap> = Api::namespaced(env.client.clone(), &ns);
    let s = status(
        api.create(&PostParams::default(), &cm("Bad_Name", &[]))
            .await
            .unwrap_err(),
    );
    assert_eq!(s.code, 422);
    assert_eq!(s.reason, "Invalid");
    assert!(
        s.message.starts_with(
            "ConfigMap \"Bad_Name\" is invalid: metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain must consist of"
        ),
        "{}",
        s.message
    );
    let d = s.details.unwrap();
    assert_eq!(d.kind, "ConfigMap");
    assert_eq!(d.name, "Bad_Name");

    // namespaces are RFC 1123 labels: dots are refused
    let nsapi: Api<Namespace> = Api::all(env.client.clone());
    let n: Namespace = serde_json::from_value(json!({"metadata": {"name": "a.b"}})).unwrap();
    assert_eq!(code(nsapi.create(&PostParams::default(), &n).await), 422);
    env.cleanup().await;
}

#[tokio::test]
async fn create_already_exists() {
    let mut env = env().await;
    let ns = env.namespace("exists").await;
    let api: Api<ConfigMap> = Api::namespaced(env.client.clone(), &ns);
    api.create(&PostParams::default(), &cm("a", &[]))
        .await
        .unwrap();
    let s = status(
        api.create(&PostParams::default(), &cm("a", &[]))
            .await
            .unwrap_err(),
    );
    assert_eq!(s.code, 409);
    assert_eq!(s.reason, "AlreadyExists");
    assert_eq!(s.message, "configmaps \"a\" already exists");
    let d = s.details.unwrap();
    assert_eq!(
        (d.name.as_str(), d.group.as_str(), d.kind.as_str()),
        ("a", "", "configmaps")
    );

    let rc = rayclusters(&env.client, &ns);
    rc.create(&PostParams::default(), &raycluster("r", 1))
        .await
        .unwrap();
    let s = status(
        rc.create(&PostParams::default(), &raycluster("r", 1))
            .await
            .unwrap_err(),
    );
    assert_eq!(s.code, 409);
    assert_eq!(s.message, "rayclusters.ray.io \"r\" already exists");
    let d = s.details.unwrap();
    assert_eq!(
        (d.group.as_str(), d.kind.as_str()),
        ("ray.io", "rayclusters")
    );
    env.cleanup().await;
}

#[tokio::test]
async fn create_in_missing_namespace() {
    let env = env().await;
    let missing = unique("missing");
    let api: Api<ConfigMap> = Api::namespaced(env.client.clone(), &missing);
    let s = status(
        api.create(&PostParams::default(), &cm("a", &[]))
            .await
            .unwrap_err(),
    );
    assert_eq!(s.code, 404);
    assert_eq!(s.reason, "NotFound");
    assert_eq!(s.message, format!("namespaces \"{missing}\" not found"));
    // listing a missing namespace is just empty
    assert!(
        api.list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

#[tokio::test]
async fn custom_resource_create_sets_generation_and_drops_status() {
    let mut env = env().await;
    let ns = env.namespace("crcreate").await;
    let rc = rayclusters(&env.client, &ns);
    let r = rc
        .create(&PostParams::default(), &raycluster("r", 1))
        .await
        .unwrap();
    assert_eq!(r.metadata.generation, Some(1));
    assert!(r.data.get("status").is_none(), "{:?}", r.data);
    let t = r.types.unwrap();
    assert_eq!(
        (t.api_version.as_str(), t.kind.as_str()),
        ("ray.io/v1", "RayCluster")
    );
    env.cleanup().await;
}

// ---------------------------------------------------------------- get / list

#[tokio::test]
async fn get_not_found() {
    let mut env = env().await;
    let ns = env.namespace("notfound").await;
    let api: Api<ConfigMap> = Api::namespaced(env.client.clone(), &ns);
    let s = status(api.get("x").await.unwrap_err());
    assert_eq!((s.code, s.reason.as_str()), (404, "NotFound"));
    assert_eq!(s.message, "configmaps \"x\" not found");
    let d = s.details.unwrap();
    assert_eq!((d.name.as_str(), d.kind.as_str()), ("x", "configmaps"));
    assert!(api.get_opt("x").await.unwrap().is_none());

    let s = status(rayclusters(&env.client, &ns).get("x").await.unwrap_err());
    assert_eq!(s.message, "rayclusters.ray.io \"x\" not found");
    assert_eq!(s.details.unwrap().group, "ray.io");
    env.cleanup().await;
}

#[tokio::test]
async fn list_namespace_and_all_namespaces() {
    let mut env = env().await;
    let ns1 = env.namespace("lista").await;
    let ns2 = env.namespace("listb").await;
    for (ns, n) in [(&ns2, "b"), (&ns1, "c"), (&ns1, "a"), (&ns2, "a")] {
        let api: Api<ConfigMap> = Api::namespaced(env.client.clone(), ns);
        api.create(&PostParams::default(), &cm(n, &[("suite", &ns1)]))
            .await
            .unwrap();
    }
    let api: Api<ConfigMap> = Api::namespaced(env.client.clone(), &ns1);
    let l = api.list(&ListParams::default()).await.unwrap();
    assert_eq!(names(&l), ["a", "c"]);
    let rv: u64 = l
        .metadata
        .resource_version
        .clone()
        .unwrap()
        .parse()
        .unwrap();
    assert!(rv > 0);

    let all: Api<ConfigMap> = Api::all(env.client.clone());
    let l = all
        .list(&ListParams::default().labels(&format!("suite={ns1}")))
        .await
        .unwrap();
    let got: Vec<(String, String)> = l
        .items
        .iter()
        .map(|c| {
            (
                c.metadata.namespace.clone().unwrap(),
                c.metadata.name.clone().unwrap(),
            )
        })
        .collect();
    let mut want = vec![
        (ns1.clone(), "a".to_string()),
        (ns1.clone(), "c".into()),
        (ns2.clone(), "a".into()),
        (ns2.clone(), "b".into()),
    ];
    want.sort();
    assert_eq!(got, want);

    // raw shape
    let v = raw(
        &env.client,
        "GET",
        &format!("/api/v1/namespaces/{ns1}/configmaps"),
        Value::Null,
    )
    .await
    .unwrap();
    assert_eq!(v["kind"], "ConfigMapList");
    assert_eq!(v["apiVersion"], "v1");
    assert!(v["metadata"]["resourceVersion"].is_string());
    env.cleanup().await;
}

#[tokio::test]
async fn list_label_selectors() {
    let mut env = env().await;
    let ns = env.namespace("labels").await;
    let api: Api<ConfigMap> = Api::namespaced(env.client.clone(), &ns);
    api.create(
        &PostParams::default(),
        &cm("a", &[("app", "web"), ("tier", "front")]),
    )
    .await
    .unwrap();
    api.create(
        &PostParams::default(),
        &cm("b", &[("app", "db"), ("tier", "back")]),
    )
    .await
    .unwrap();
    api.create(&PostParams::default(), &cm("c", &[("app", "cache")]))
        .await
        .unwrap();
    api.create(&PostParams::default(), &cm("d", &[]))
        .await
        .unwrap();
    let cases: &[(&str, &[&str])] = &[
        ("app=web", &["a"]),
        ("app==web", &["a"]),
        ("app!=web", &["b", "c", "d"]),
        ("app in (web,db)", &["a", "b"]),
        ("app notin (web, db)", &["c", "d"]),
        ("tier", &["a", "b"]),
        ("!tier", &["c", "d"]),
        ("app,!tier", &["c"]),
        ("app in (web,db),tier=back", &["b"]),
        ("app=nothing", &[]),
    ];
    for (sel, want) in cases {
        let l = api.list(&ListParams::default().labels(sel)).await.unwrap();
        assert_eq!(names(&l), *want, "selector {sel}");
    }
    let s = status(
        api.list(&ListParams::default().labels("app in (web"))
            .await
            .unwrap_err(),
    );
    assert_eq!((s.code, s.reason.as_str()), (400, "BadRequest"));
    env.cleanup().await;
}

#[tokio::test]
async fn list_field_selectors() {
    let mut env = env().await;
    let ns = env.namespace("fields").await;
    let api: Api<ConfigMap> = Api::namespaced(env.client.clone(), &ns);
    for n in ["a", "b", "c"] {
        api.create(&PostParams::default(), &cm(n, &[]))
            .await
            .unwrap();
    }
    let l = api
        .list(&ListParams::default().fields("metadata.name=b"))
        .await
        .unwrap();
    assert_eq!(names(&l), ["b"]);
    let l = api
        .list(&ListParams::default().fields("metadata.name==b"))
        .await
        .unwrap();
    assert_eq!(names(&l), ["b"]);
    let l = api
        .list(&ListParams::default().fields("metadata.name!=b"))
        .await
        .unwrap();
    assert_eq!(names(&l), ["a", "c"]);
    let all: Api<ConfigMap> = Api::all(env.client.clone());
    let l = all
        .list(&ListParams::default().fields(&format!("metadata.namespace={ns},metadata.name!=a")))
        .await
        .unwrap();
    assert_eq!(names(&l), ["b", "c"]);
    assert_eq!(
        code(api.list(&ListParams::default().fields("data.k=v")).await),
        400
    );

    // events: involvedObject.* (core) and regarding.* (events.k8s.io)
    let ev: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(env.client.clone(), &ns);
    for (name, target, reason) in [("e1", "pod-a", "Started"), ("e2", "pod-b", "Failed")] {
        let e = serde_json::from_value(json!({
            "metadata": {"name": name},
            "involvedObject": {"kind": "Pod", "name": target, "namespace": ns},
            "reason": reason, "type": "Normal",
        }))
        .unwrap();
        ev.create(&PostParams::default(), &e).await.unwrap();
    }
    let l = ev
        .list(&ListParams::default().fields("involvedObject.name=pod-b,involvedObject.kind=Pod"))
        .await
        .unwrap();
    assert_eq!(l.items.len(), 1);
    assert_eq!(l.items[0].metadata.name.as_deref(), Some("e2"));
    let l = ev
        .list(&ListParams::default().fields("reason=Started,type=Normal"))
        .await
        .unwrap();
    assert_eq!(l.items[0].metadata.name.as_deref(), Some("e1"));

    let ev2: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(env.client.clone(), &ns);
    let e = serde_json::from_value(json!({
        "metadata": {"name": "n1"},
        "eventTime": "2024-01-01T00:00:00.000000Z",
        "reportingController": "c", "reportingInstance": "i", "action": "A",
        "regarding": {"kind": "RayCluster", "name": "rc1", "namespace": ns},
        "reason": "Created", "type": "Normal",
    }))
    .unwrap();
    ev2.create(&PostParams::default(), &e).await.unwrap();
    let l = ev2
        .list(&ListParams::default().fields("regarding.name=rc1,regarding.kind=RayCluster"))
        .await
        .unwrap();
    assert_eq!(l.items.len(), 1);
    let l = ev2
        .list(&ListParams::default().fields("regarding.name=zz"))
        .await
        .unwrap();
    assert!(l.items.is_empty());
    env.cleanup().await;
}

#[tokio::test]
async fn events_live_in_the_namespace_of_their_object() {
    let mut env = env().await;
    let ns = env.namespace("event-ns").await;
    let new_style: Api<k8s_openapi::api::events::v1::Event> =
        Api::namespaced(env.client.clone(), &ns);
    let event = |name: &str, regarding: serde_json::Value| {
        serde_json::from_value::<k8s_openapi::api::events::v1::Event>(json!({
            "metadata": {"name": name},
            "eventTime": "2024-01-01T00:00:00.000000Z",
            "reportingController": "c", "reportingInstance": "i", "action": "A",
            "regarding": regarding, "reason": "R", "type": "Normal",
        }))
        .unwrap()
    };
    // No namespace on the object, outside default/kube-system: refused.
    let err = status(
        new_style
            .create(
                &PostParams::default(),
                &event("a", json!({"kind": "RayCluster", "name": "x"})),
            )
            .await
            .unwrap_err(),
    );
    assert_eq!(err.code, 422);
    assert_eq!(err.reason, "Invalid");
    assert!(
        err.message.ends_with(
            "involvedObject.namespace: Invalid value: \"\": does not match event.namespace"
        ),
        "{}",
        err.message
    );
    new_style
        .create(
            &PostParams::default(),
            &event(
                "b",
                json!({"kind": "RayCluster", "name": "x", "namespace": ns}),
            ),
        )
        .await
        .unwrap();

    // Core events without an event time must match exactly.
    let core: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(env.client.clone(), &ns);
    let legacy = serde_json::from_value(json!({
        "metadata": {"name": "c"},
        "involvedObject": {"kind": "Pod", "name": "p", "namespace": "elsewhere"},
        "reason": "R", "type": "Normal",
    }))
    .unwrap();
    assert_eq!(
        code(core.create(&PostParams::default(), &legacy).await),
        422
    );
    env.cleanup().await;
}

#[tokio::test]
async fn list_pagination() {
    let mut env = env().await;
    let ns = env.namespace("pages").await;
    let api: Api<ConfigMap> = Api::namespaced(env.client.clone(), &ns);
    let mut want = Vec::new();
    for i in 0..7 {
        let n = format!("cm-{i}");
        let labels: &[(&str, &str)] = if i % 2 == 0 { &[("even", "true")] } else { &[] };
        api.create(&PostParams::default(), &cm(&n, labels))
            .await
            .unwrap();
        want.push(n);
    }
    // 7, and on a real cluster also its kube-root-ca.crt
    let total = api.list(&ListParams::default()).await.unwrap().items.len();
    for limit in [1u32, 2, 3, 7, 10] {
        let mut got = Vec::new();
        let mut token: Option<String> = None;
        let mut pages = 0;
        loop {
            let mut lp = ListParams::default().limit(limit);
            if let Some(t) = &token {
                lp = lp.continue_token(t);
            }
            let page = api.list(&lp).await.unwrap();
            assert!(page.items.len() <= limit as usize);
            got.extend(names(&page));
            pages += 1;
            match page.metadata.continue_.filter(|c| !c.is_empty()) {
                Some(c) => token = Some(c),
                None => break,
            }
            assert!(pages < 20);
        }
        assert_eq!(got, want, "limit {limit}");
        assert_eq!(pages, total.div_ceil(limit as usize), "limit {limit}");
    }
    // with a selector
    let mut got = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut lp = ListParams::default().limit(2).labels("even=true");
        if let Some(t) = &token {
            lp = lp.continue_token(t);
        }
        let page = api.list(&lp).await.unwrap();
        got.extend(names(&page));
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(c) => token = Some(c),
            None => break,
        }
    }
    assert_eq!(got, ["cm-0", "cm-2", "cm-4", "cm-6"]);

    let s = status(
        api.list(
            &ListParams::default()
                .limit(2)
                .continue_token("not-a-token!"),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!((s.code, s.reason.as_str()), (400, "BadRequest"));
    env.cleanup().await;
}

/// Pages after the first show the state at the first page's resourceVersion.
#[tokio::test]
async fn list_pages_are_a_consistent_snapshot() {
    let mut env = env().await;
    let ns = env.namespace("snapshot").await;
    let api: Api<ConfigMap> = Api::namespaced(env.client.clone(), &ns);
    for i in 1..=6 {
        api.create(
            &PostParams::default(),
            &cm(&format!("cm-{i}"), &[("s", "1")]),
        )
        .await
        .unwrap();
    }
    let first = api.list(&ListParams::default().limit(2)).await.unwrap();
    assert_eq!(names(&first), ["cm-1", "cm-2"]);
    let rv = first.metadata.resource_version.clone().unwrap();
    let mut token = first.metadata.continue_.clone().filter(|c| !c.is_empty());
    assert!(token.is_some());

    // Changes after the first page: before, inside and after the remaining range.
    for n in ["cm-0", "cm-35", "cm-7"] {
        api.create(&PostParams::default(), &cm(n, &[("s", "1")]))
            .await
            .unwrap();
    }
    api.delete("cm-4", &DeleteParams::default()).await.unwrap();
    api.delete("cm-2", &DeleteParams::default()).await.unwrap();
    api.patch(
        "cm-5",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"k": "changed"}})),
    )
    .await
    .unwrap();

    let mut got = Vec::new();
    while let Some(t) = token {
        let page = api
            .list(&ListParams::default().limit(2).continue_token(&t))
            .await
            .unwrap();
        assert_eq!(page.metadata.resource_version.as_deref(), Some(rv.as_str()));
        for c in page.items.iter().filter(|c| is_ours(c)) {
            got.push((
                c.metadata.name.clone().unwrap(),
                c.data.as_ref().unwrap()["k"].clone(),
            ));
        }
        token = page.metadata.continue_.filter(|c| !c.is_empty());
    }
    let v = |n: &str| (n.to_string(), "v".to_string());
    assert_eq!(got, [v("cm-3"), v("cm-4"), v("cm-5"), v("cm-6")]);

    // The same with a selector (items are filtered after the snapshot is read).
    let first = api
        .list(&ListParams::default().limit(2).labels("s=1"))
        .await
        .unwrap();
    let rv2 = first.metadata.resource_version.clone().unwrap();
    let t = first.metadata.continue_.clone().unwrap();
    api.delete("cm-6", &DeleteParams::default()).await.unwrap();
    let page = api
        .list(
            &ListParams::default()
                .limit(10)
                .labels("s=1")
                .continue_token(&t),
        )
        .await
        .unwrap();
    assert_eq!(page.metadata.resource_version, Some(rv2));
    assert_eq!(ours(&page), ["cm-3", "cm-35", "cm-5", "cm-6", "cm-7"]);

    // Two paginations side by side: finishing one does not disturb the other.
    let lp = ListParams::default().limit(3);
    let a = api.list(&lp).await.unwrap().metadata.continue_.unwrap();
    let b = api.list(&lp).await.unwrap().metadata.continue_.unwrap();
    let rest_a = api
        .list(&ListParams::default().continue_token(&a))
        .await
        .unwrap();
    assert_eq!(ours(&rest_a), ["cm-35", "cm-5", "cm-7"]);
    api.create(&PostParams::default(), &cm("cm-4", &[("s", "1")]))
        .await
        .unwrap();
    let rest_b = api
        .list(&ListParams::default().continue_token(&b))
        .await
        .unwrap();
    assert_eq!(ours(&rest_b), ["cm-35", "cm-5", "cm-7"]);
    api.delete("cm-4", &DeleteParams::default()).await.unwrap();

    // A new list sees the current state.
    let now = api.list(&ListParams::default()).await.unwrap();
    assert_eq!(
        ours(&now),
        ["cm-0", "cm-1", "cm-3", "cm-35", "cm-5", "cm-7"]
    );
    let cm5 = now
        .items
        .iter()
        .find(|c| c.metadata.name.as_deref() == Some("cm-5"));
    assert_eq!(cm5.unwrap().data.as_ref().unwrap()["k"], "changed");
    env.cleanup().await;
}

// ---------------------------------------------------------------- update

#[tokio::test]
async fn update_optimistic_concurrency() {
    let mut env = env().await;
    let ns = env.namespace("update").await;
    let api: Api<ConfigMap> = Api::namespaced(env.client.clone(), &ns);
    let orig = api
        .create(&PostParams::default(), &cm("a", &[]))
        .await
        .unwrap();

    let mut v1 = orig.clone();
    v1.data = Some([("k".to_string(), "v1".to_string())].into());
    let after = api.replace("a", &PostParams::default(), &v1).await.unwrap();
    assert_ne!(
        after.metadata.resource_version,
        orig.metadata.resource_version
    );
    assert_eq!(after.metadata.uid, orig.metadata.uid);
    assert_eq!(
        after.metadata.creation_timestamp,
        orig.metadata.creation_timestamp
    );

    // stale resourceVersion
    let s = status(
        api.replace("a", &PostParams::default(), &v1)
            .await
            .unwrap_err(),
    );
    assert_eq!((s.code, s.reason.as_str()), (409, "Conflict"));
    assert_eq!(
        s.message,
        "Operation cannot be fulfilled on configmaps \"a\": the object has been modified; please apply your changes to the latest version and try again"
    );

    // no resourceVersion: unconditional; server-set fields are kept
    let mut v2 = cm("a", &[]);
    v2.data = Some([("k".to_string(), "v2".to_string())].into());
    let after2 = api.replace("a", &PostParams::default(), &v2).await.unwrap();
    assert_eq!(after2.data.unwrap()["k"], "v2");
    assert_eq!(after2.metadata.uid, orig.metadata.uid);
    assert_eq!(
        after2.metadata.creation_timestamp,
        orig.metadata.creation_timestamp
    );

    // missing object
    let s = status(
        api.replace("zz", &PostParams::default(), &cm("zz", &[]))
            .await
            .unwrap_err(),
    );
    assert_eq!(s.code, 404);

    // name mismatch between URL and body
    assert_eq!(
        code(
            api.replace("a", &PostParams::default(), &cm("b", &[]))
                .await
        ),
        400
    );
    env.cleanup().await;
}

#[tokio::test]
async fn update_custom_resource_generation_and_status() {
    let mut env = env().await;
    let ns = env.namespace("crupdate").await;
    let rc = rayclusters(&env.client, &ns);
    let created = rc
        .create(&PostParams::default(), &raycluster("r", 1))
        .await
        .unwrap();

    // status via /status
    let mut with_status = created.clone();
    with_status.data["status"] = json!({"state": "ready"});
    with_status.metadata.labels = Some([("ignored".to_string(), "x".to_string())].into());
    let s1 = rc
        .replace_status("r", &PostParams::default(), &with_status)
        .await
        .unwrap();
    assert_eq!(s1.data["status"]["state"], "ready");
    assert_eq!(s1.metadata.generation, Some(1));
    assert!(
        s1.metadata.labels.is_none(),
        "status update must not change labels"
    );

    // main resource: status in body is ignored, label change does not bump generation
    let mut m = s1.clone();
    m.data["status"] = json!({"state": "failed"});
    m.metadata.labels = Some([("l".to_string(), "1".to_string())].into());
    let m1 = rc.replace("r", &PostParams::default(), &m).await.unwrap();
    assert_eq!(m1.data["status"]["state"], "ready");
    assert_eq!(m1.metadata.generation, Some(1));
    assert_eq!(m1.metadata.labels.as_ref().unwrap()["l"], "1");

    // spec change bumps generation
    let mut m = m1.clone();
    m.data["spec"]["workerGroupSpecs"][0]["replicas"] = json!(3);
    let m2 = rc.replace("r", &PostParams::default(), &m).await.unwrap();
    assert_eq!(m2.metadata.generation, Some(2));

    // custom resources refuse unconditional updates
    let mut m = m2.clone();
    m.metadata.resource_version = None;
    let s = status(
        rc.replace("r", &PostParams::default(), &m)
            .await
            .unwrap_err(),
    );
    assert_eq!((s.code, s.reason.as_str()), (422, "Invalid"));

    // status patch, generation unchanged
    let p = rc
        .patch_status(
            "r",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"state": "suspended"}})),
        )
        .await
        .unwrap();
    assert_eq!(p.data["status"]["state"], "suspended");
    assert_eq!(p.metadata.generation, Some(2));
    let g = rc.get_status("r").await.unwrap();
    assert_eq!(g.data["status"]["state"], "suspended");
    env.cleanup().await;
}

#[tokio::test]
async fn update_uid_precondition() {
    let mut env = env().await;
    let ns = env.namespace("uid").await;
    let api: Api<ConfigMap> = Api::namespaced(env.client.clone(), &ns);
    let a = api
        .create(&PostParams::default(), &cm("a", &[]))
        .await
        .unwrap();
    api.delete("a", &DeleteParams::default()).await.unwrap();
    api.create(&PostParams::default(), &cm("a", &[]))
        .await
        .unwrap();
    let mut stale = a.clone();
    stale.metadata.resource_version = None;
    assert_eq!(
        code(api.replace("a", &PostParams::default(), &stale).await),
        409
    );
    env.cleanup().await;
}

// ---------------------------------------------------------------- delete

#[tokio::test]
async fn delete_returns_status_and_404s() {
    let mut env = env().await;
    let ns = env.namespace("delete").await;
    let api: Api<ConfigMap> = Api::namespaced(env.client.clone(), &ns);
    let a = api
        .create(&PostParams::default(), &cm("a", &[]))
        .await
        .unwrap();
    let r = api.delete("a", &DeleteParams::default()).await.unwrap();
    let s = r.right().expect("configmap delete answers a Status");
    let d = s.details.unwrap();
    assert_eq!(d.name, "a");
    assert_eq!(d.kind, "configmaps");
    assert_eq!(Some(d.uid), a.metadata.uid);
    let s = status(api.get("a").await.unwrap_err());
    assert_eq!(s.code, 404);
    let s = status(api.delete("a", &DeleteParams::default()).await.unwrap_err());
    assert_eq!(s.code, 404);
    assert_eq!(s.message, "configmaps \"a\" not found");

    // custom resources too
    let rc = rayclusters(&env.client, &ns);
    rc.create(&PostParams::default(), &raycluster("r", 1))
        .await
        .unwrap();
    let r = rc.delete("r", &DeleteParams::default()).await.unwrap();
    assert!(r.is_right());
    assert_eq!(code(rc.get("r").await), 404);
    env.cleanup().await;
}

#[tokio::test]
async fn delete_with_finalizers() {
    let mut env = env().await;
    let ns = env.namespace("finalize").await;
    let rc = rayclusters(&env.client, &ns);
    let mut obj = raycluster("r", 1);
    obj.metadata.finalizers = Some(vec!["example.com/keep".into()]);
    rc.create(&PostParams::default(), &obj).await.unwrap();
    let r = rc.delete("r", &DeleteParams::default()).await.unwrap();
    let pending = r.left().expect("object still present");
    assert!(pending.metadata.deletion_timestamp.is_some());
    let got = rc.get("r").await.unwrap();
    assert!(got.metadata.deletion_timestamp.is_some());
    assert_eq!(got.metadata.deletion_grace_period_seconds, Some(0));

    // deleting again keeps it
    assert!(
        rc.delete("r", &DeleteParams::default())
            .await
            .unwrap()
            .is_left()
    );

    // removing the last finalizer removes the object
    rc.patch(
        "r",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    assert_eq!(code(rc.get("r").await), 404);
    env.cleanup().await;
}

#[tokio::test]
async fn delete_namespace_removes_contents() {
    let env = env().await;
    let ns = unique("nsdel");
    let nsapi: Api<Namespace> = Api::all(env.client.clone());
    let n: Namespace = serde_json::from_value(json!({"metadata": {"name": ns}})).unwrap();
    let created = nsapi.create(&PostParams::default(), &n).await.unwrap();
    assert_eq!(created.status.unwrap().phase.as_deref(), Some("Active"));
    let api: Api<ConfigMap> = Api::namespaced(env.client.clone(), &ns);
    api.create(&PostParams::default(), &cm("a", &[]))
        .await
        .unwrap();
    rayclusters(&env.client, &ns)
        .create(&PostParams::default(), &raycluster("r", 1))
        .await
        .unwrap();
    let r = nsapi.delete(&ns, &DeleteParams::default()).await.unwrap();
    let terminating = r.left().expect("namespace delete answers the namespace");
    assert!(terminating.metadata.deletion_timestamp.is_some());
    // eventually gone, with everything in it
    for _ in 0..600 {
        if nsapi.get_opt(&ns).await.unwrap().is_none() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(nsapi.get_opt(&ns).await.unwrap().is_none());
    assert!(api.get_opt("a").await.unwrap().is_none());
    assert!(
        rayclusters(&env.client, &ns)
            .get_opt("r")
            .await
            .unwrap()
            .is_none()
    );
}

// ---------------------------------------------------------------- patch

#[tokio::test]
async fn patch_merge_json_and_strategic() {
    let mut env = env().await;
    let ns = env.namespace("patch").await;
    let api: Api<ConfigMap> = Api::namespaced(env.client.clone(), &ns);
    api.create(&PostParams::default(), &cm("a", &[("x", "1")]))
        .await
        .unwrap();
    let p = api
        .patch(
            "a",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"data": {"n": "2", "k": null}, "metadata": {"labels": {"y": "2"}}}),
            ),
        )
        .await
        .unwrap();
    let data = p.data.unwrap();
    assert_eq!(data.get("n").map(String::as_str), Some("2"));
    assert!(!data.contains_key("k"));
    assert_eq!(p.metadata.labels.unwrap().len(), 2);

    let p = json_patch(
        &env.client,
        &format!("/api/v1/namespaces/{ns}/configmaps/a"),
        json!([
            {"op": "add", "path": "/data/j", "value": "3"},
            {"op": "remove", "path": "/metadata/labels/x"}
        ]),
    )
    .await
    .unwrap();
    assert_eq!(p["data"]["j"], "3");
    assert_eq!(p["metadata"]["labels"].as_object().unwrap().len(), 1);

    let p = api
        .patch(
            "a",
            &PatchParams::default(),
            &Patch::Strategic(json!({"data": {"s": "4"}})),
        )
        .await
        .unwrap();
    assert_eq!(p.data.unwrap()["s"], "4");

    // a failing JSON patch test operation is refused
    let e = json_patch(
        &env.client,
        &format!("/api/v1/namespaces/{ns}/configmaps/a"),
        json!([{"op": "test", "path": "/data/j", "value": "nope"}]),
    )
    .await;
    assert_eq!(code(e), 422);

    // stale resourceVersion in a merge patch conflicts
    let e = api
        .patch(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"resourceVersion": "1"}, "data": {"z": "1"}})),
        )
        .await;
    assert_eq!(code(e), 409);
    // missing object
    let e = api
        .patch("zz", &PatchParams::default(), &Patch::Merge(json!({})))
        .await;
    assert_eq!(code(e), 404);
    env.cleanup().await;
}

async fn json_patch(client: &kube::Client, uri: &str, ops: Value) -> Result<Value, kube::Error> {
    let req = http::Request::builder()
        .method("PATCH")
        .uri(uri)
        .header("content-type", "application/json-patch+json")
        .body(serde_json::to_vec(&ops).unwrap())
        .unwrap();
    client.request::<Value>(req).await
}

// ---------------------------------------------------------------- errors

#[tokio::test]
async fn unknown_paths_and_bad_bodies() {
    let mut env = env().await;
    let ns = env.namespace("errors").await;
    let s = status(
        raw(
            &env.client,
            "GET",
            "/api/v1/namespaces/x/widgets",
            Value::Null,
        )
        .await
        .unwrap_err(),
    );
    assert_eq!((s.code, s.reason.as_str()), (404, "NotFound"));
    assert_eq!(
        s.message,
        "the server could not find the requested resource"
    );
    let s = status(
        raw(&env.client, "GET", "/apis/nope.io/v1/things", Value::Null)
            .await
            .unwrap_err(),
    );
    assert_eq!(s.code, 404);

    let e = raw_text(
        &env.client,
        "POST",
        &format!("/api/v1/namespaces/{ns}/configmaps"),
        b"{not json",
    )
    .await;
    let s = status(e.unwrap_err());
    assert_eq!((s.code, s.reason.as_str()), (400, "BadRequest"));

    // the raw Status document
    let e = raw(
        &env.client,
        "GET",
        &format!("/api/v1/namespaces/{ns}/configmaps/nope"),
        Value::Null,
    )
    .await;
    let s = status(e.unwrap_err());
    assert_eq!(s.status, Some(kube::core::response::StatusSummary::Failure));
    env.cleanup().await;
}

// ---------------------------------------------------------------- concurrency

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_creates_one_wins() {
    let mut env = env().await;
    let ns = env.namespace("race").await;
    let mut tasks = Vec::new();
    for i in 0..16 {
        let api: Api<ConfigMap> = Api::namespaced(env.client.clone(), &ns);
        tasks.push(tokio::spawn(async move {
            let mut c = cm("same", &[]);
            c.data = Some([("writer".to_string(), i.to_string())].into());
            api.create(&PostParams::default(), &c).await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(e) => assert_eq!(status(e).reason, "AlreadyExists"),
        }
    }
    assert_eq!(ok, 1);

    // concurrent conditional updates from the same version: one wins
    let api: Api<ConfigMap> = Api::namespaced(env.client.clone(), &ns);
    let base = api.get("same").await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..8 {
        let api = api.clone();
        let mut c = base.clone();
        c.data = Some([("writer".to_string(), format!("u{i}"))].into());
        tasks.push(tokio::spawn(async move {
            api.replace("same", &PostParams::default(), &c).await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(e) => assert_eq!(status(e).code, 409),
        }
    }
    assert_eq!(ok, 1);
    env.cleanup().await;
}

/// Many concurrent writes (which the embedded store commits in groups): each is judged on
/// its own, resourceVersions are unique, and a watch sees every change once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writes_are_ordered_and_independent() {
    use futures::{StreamExt, TryStreamExt};
    use kube::api::{WatchEvent, WatchParams};
    let mut env = env().await;
    let ns = env.namespace("group").await;
    let api: Api<ConfigMap> = Api::namespaced(env.client.clone(), &ns);
    let start_rv = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let mut stream = api
        .watch(&WatchParams::default().timeout(30), &start_rv)
        .await
        .unwrap()
        .boxed();

    let missing = unique("missing");
    let mut tasks = Vec::new();
    for i in 0..60 {
        let client = env.client.clone();
        let (ns, missing) = (ns.clone(), missing.clone());
        tasks.push(tokio::spawn(async move {
            let (target_ns, name) = match i % 6 {
                // a namespace that does not exist: 404, the others are unaffected
                0 => (missing, format!("x-{i}")),
                // the same name from several writers: exactly one wins
                1 => (ns, "dup".to_string()),
                _ => (ns, format!("cm-{i}")),
            };
            let api: Api<ConfigMap> = Api::namespaced(client, &target_ns);
            (i, api.create(&PostParams::default(), &cm(&name, &[])).await)
        }));
    }
    let mut created = BTreeMap::new();
    let (mut not_found, mut conflicts) = (0, 0);
    for t in tasks {
        let (i, r) = t.await.unwrap();
        match r {
            Ok(c) => {
                let rv: u64 = c.metadata.resource_version.unwrap().parse().unwrap();
                let prev = created.insert(rv, c.metadata.name.unwrap());
                assert!(prev.is_none(), "resourceVersion {rv} given twice");
            }
            Err(e) => {
                let s = status(e);
                match i % 6 {
                    0 => {
                        assert_eq!(s.code, 404);
                        not_found += 1;
                    }
                    1 => {
                        assert_eq!(s.reason, "AlreadyExists");
                        conflicts += 1;
                    }
                    _ => panic!("create {i} failed: {s:?}"),
                }
            }
        }
    }
    assert_eq!((not_found, conflicts), (10, 9));
    assert_eq!(created.len(), 41);

    // The watch reports each create once, in resourceVersion order.
    let mut seen = Vec::new();
    while seen.len() < created.len() {
        let ev = tokio::time::timeout(std::time::Duration::from_secs(10), stream.try_next())
            .await
            .expect("event in time")
            .unwrap()
            .expect("stream open");
        match ev {
            WatchEvent::Added(c) if is_ours(&c) => seen.push((
                c.metadata.resource_version.unwrap().parse::<u64>().unwrap(),
                c.metadata.name.unwrap(),
            )),
            WatchEvent::Added(_) => {}
            WatchEvent::Bookmark(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    let want: Vec<(u64, String)> = created.into_iter().collect();
    assert_eq!(seen, want);
    env.cleanup().await;
}

// ---------------------------------------------------------------- secrets

#[tokio::test]
async fn secret_string_data_and_type() {
    let mut env = env().await;
    let ns = env.namespace("secret").await;
    let api: Api<Secret> = Api::namespaced(env.client.clone(), &ns);
    let s: Secret = serde_json::from_value(json!({
        "metadata": {"name": "s"},
        "stringData": {"password": "hunter2"},
    }))
    .unwrap();
    let got = api.create(&PostParams::default(), &s).await.unwrap();
    assert_eq!(got.type_.as_deref(), Some("Opaque"));
    assert_eq!(got.data.unwrap()["password"].0, b"hunter2");
    assert!(got.string_data.is_none());
    env.cleanup().await;
}

// ---------------------------------------------------------------- watch

#[tokio::test]
async fn watch_events_and_resume() {
    use futures::{StreamExt, TryStreamExt};
    use kube::api::{WatchEvent, WatchParams};
    let mut env = env().await;
    let ns = env.namespace("watch").await;
    let api: Api<ConfigMap> = Api::namespaced(env.client.clone(), &ns);
    let a = api
        .create(&PostParams::default(), &cm("a", &[("w", "1")]))
        .await
        .unwrap();
    let rv0 = a.metadata.resource_version.clone().unwrap();

    let wp = WatchParams::default().labels("w=1").timeout(10);
    let mut stream = api.watch(&wp, &rv0).await.unwrap().boxed();
    api.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"k": "2"}})),
    )
    .await
    .unwrap();
    api.create(&PostParams::default(), &cm("b", &[("w", "1")]))
        .await
        .unwrap();
    api.create(&PostParams::default(), &cm("other", &[]))
        .await
        .unwrap();
    // b stops matching: DELETED for this watch
    api.patch(
        "b",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"w": "2"}}})),
    )
    .await
    .unwrap();
    api.delete("a", &DeleteParams::default()).await.unwrap();

    let mut seen = Vec::new();
    while seen.len() < 4 {
        let ev = tokio::time::timeout(std::time::Duration::from_secs(10), stream.try_next())
            .await
            .expect("event in time")
            .unwrap()
            .expect("stream open");
        match ev {
            WatchEvent::Added(c) => seen.push(("ADDED", c.metadata.name.unwrap())),
            WatchEvent::Modified(c) => seen.push(("MODIFIED", c.metadata.name.unwrap())),
            WatchEvent::Deleted(c) => seen.push(("DELETED", c.metadata.name.unwrap())),
            WatchEvent::Bookmark(_) => {}
            WatchEvent::Error(e) => panic!("{e:?}"),
        }
    }
    assert_eq!(
        seen,
        [
            ("MODIFIED", "a".to_string()),
            ("ADDED", "b".into()),
            ("DELETED", "b".into()),
            ("DELETED", "a".into())
        ]
    );

    // resume from the middle: only later changes
    let mut stream = api
        .watch(&WatchParams::default().timeout(5), &rv0)
        .await
        .unwrap()
        .boxed();
    let first = stream.try_next().await.unwrap().unwrap();
    assert!(
        matches!(first, WatchEvent::Modified(ref c) if c.metadata.name.as_deref() == Some("a"))
    );
    env.cleanup().await;
}

#[tokio::test]
async fn watch_initial_events_and_bookmarks() {
    use futures::{StreamExt, TryStreamExt};
    use kube::api::{WatchEvent, WatchParams};
    let mut env = env().await;
    let ns = env.namespace("watchinit").await;
    let api: Api<ConfigMap> = Api::namespaced(env.client.clone(), &ns);
    api.create(&PostParams::default(), &cm("a", &[("t", "w")]))
        .await
        .unwrap();
    let wp = WatchParams::streaming_lists().timeout(5).labels("t=w");
    let mut stream = api.watch(&wp, "").await.unwrap().boxed();
    let first = stream.try_next().await.unwrap().unwrap();
    assert!(matches!(first, WatchEvent::Added(ref c) if c.metadata.name.as_deref() == Some("a")));
    let second = stream.try_next().await.unwrap().unwrap();
    match second {
        WatchEvent::Bookmark(b) => {
            assert_eq!(
                b.metadata
                    .annotations
                    .get("k8s.io/initial-events-end")
                    .map(String::as_str),
                Some("true")
            );
        }
        other => panic!("expected bookmark, got {other:?}"),
    }
    env.cleanup().await;
}

#[tokio::test]
async fn runtime_watcher_sees_changes() {
    use futures::{StreamExt, TryStreamExt};
    use kube::runtime::{WatchStreamExt, watcher};
    let mut env = env().await;
    let ns = env.namespace("watcher").await;
    let api: Api<ConfigMap> = Api::namespaced(env.client.clone(), &ns);
    api.create(&PostParams::default(), &cm("a", &[("t", "w")]))
        .await
        .unwrap();
    let mut stream = watcher::watcher(api.clone(), watcher::Config::default().labels("t=w"))
        .applied_objects()
        .boxed();
    let first = stream.try_next().await.unwrap().unwrap();
    assert_eq!(first.metadata.name.as_deref(), Some("a"));
    api.create(&PostParams::default(), &cm("b", &[("t", "w")]))
        .await
        .unwrap();
    let next = tokio::time::timeout(std::time::Duration::from_secs(10), stream.try_next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(next.metadata.name.as_deref(), Some("b"));
    env.cleanup().await;
}

// ---------------------------------------------------------------- discovery

#[tokio::test]
async fn discovery_documents() {
    let env = env().await;
    let v = env.client.apiserver_version().await.unwrap();
    assert_eq!(v.major, "1");
    let api = raw(&env.client, "GET", "/api", Value::Null).await.unwrap();
    assert_eq!(api["kind"], "APIVersions");
    assert!(api["versions"].as_array().unwrap().contains(&json!("v1")));
    let core = raw(&env.client, "GET", "/api/v1", Value::Null)
        .await
        .unwrap();
    assert_eq!(core["kind"], "APIResourceList");
    let cms = core["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "configmaps")
        .unwrap();
    assert_eq!(cms["kind"], "ConfigMap");
    assert_eq!(cms["namespaced"], true);
    assert!(cms["shortNames"].as_array().unwrap().contains(&json!("cm")));
    assert!(cms["verbs"].as_array().unwrap().contains(&json!("watch")));
    let groups = raw(&env.client, "GET", "/apis", Value::Null).await.unwrap();
    assert_eq!(groups["kind"], "APIGroupList");
    let names: Vec<&str> = groups["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"ray.io") && names.contains(&"events.k8s.io"));
    let ray = raw(&env.client, "GET", "/apis/ray.io/v1", Value::Null)
        .await
        .unwrap();
    let rnames: Vec<&str> = ray["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    for n in [
        "rayclusters",
        "rayclusters/status",
        "rayjobs",
        "rayjobs/status",
        "rayservices",
    ] {
        assert!(rnames.contains(&n), "{n} in {rnames:?}");
    }
    // kube's own discovery works on it
    let d = kube::Discovery::new(env.client.clone())
        .run()
        .await
        .unwrap();
    assert!(d.has_group("ray.io"));
}

#[tokio::test]
async fn table_rendering_for_kubectl() {
    let mut env = env().await;
    let ns = env.namespace("table").await;
    let api: Api<ConfigMap> = Api::namespaced(env.client.clone(), &ns);
    api.create(&PostParams::default(), &cm("a", &[]))
        .await
        .unwrap();
    let req = http::Request::builder()
        .uri(format!("/api/v1/namespaces/{ns}/configmaps"))
        .header(
            "accept",
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json",
        )
        .body(vec![])
        .unwrap();
    let t: Value = env.client.request(req).await.unwrap();
    assert_eq!(t["kind"], "Table");
    assert_eq!(t["columnDefinitions"][0]["name"], "Name");
    assert_eq!(t["rows"][0]["cells"][0], "a");
    assert_eq!(t["rows"][0]["object"]["metadata"]["name"], "a");
    env.cleanup().await;
}

// ---------------------------------------------------------------- misc write options

#[tokio::test]
async fn dry_run_and_delete_preconditions_and_collections() {
    let mut env = env().await;
    let ns = env.namespace("options").await;
    let api: Api<ConfigMap> = Api::namespaced(env.client.clone(), &ns);
    let pp = PostParams {
        dry_run: true,
        ..Default::default()
    };
    let dry = api.create(&pp, &cm("dry", &[])).await.unwrap();
    assert_eq!(dry.metadata.name.as_deref(), Some("dry"));
    assert!(api.get_opt("dry").await.unwrap().is_none());

    let a = api
        .create(&PostParams::default(), &cm("a", &[("del", "yes")]))
        .await
        .unwrap();
    api.create(&PostParams::default(), &cm("b", &[("del", "yes")]))
        .await
        .unwrap();
    api.create(&PostParams::default(), &cm("c", &[]))
        .await
        .unwrap();

    let dp = DeleteParams::default().preconditions(kube::api::Preconditions {
        resource_version: Some("1".into()),
        uid: None,
    });
    assert_eq!(code(api.delete("a", &dp).await), 409);
    let dp = DeleteParams::default().preconditions(kube::api::Preconditions {
        resource_version: a.metadata.resource_version.clone(),
        uid: a.metadata.uid.clone(),
    });
    assert!(api.delete("a", &dp).await.is_ok());

    api.delete_collection(
        &DeleteParams::default(),
        &ListParams::default().labels("del=yes"),
    )
    .await
    .unwrap();
    let left = api.list(&ListParams::default()).await.unwrap();
    assert_eq!(names(&left), ["c"]);
    env.cleanup().await;
}

#[tokio::test]
async fn pods_and_services_delete_return_the_object() {
    use k8s_openapi::api::core::v1::{Pod, Service};
    let mut env = env().await;
    let ns = env.namespace("podsvc").await;
    let pods: Api<Pod> = Api::namespaced(env.client.clone(), &ns);
    let p: Pod = serde_json::from_value(json!({
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]},
    }))
    .unwrap();
    pods.create(&PostParams::default(), &p).await.unwrap();
    let r = pods.delete("p", &DeleteParams::default()).await.unwrap();
    assert!(r.is_left());
    let svcs: Api<Service> = Api::namespaced(env.client.clone(), &ns);
    let s: Service = serde_json::from_value(json!({
        "metadata": {"name": "s"},
        "spec": {"ports": [{"port": 80}], "selector": {"app": "x"}},
    }))
    .unwrap();
    svcs.create(&PostParams::default(), &s).await.unwrap();
    // status of pods via the subresource. Another name: where a kubelet runs, "p" is still
    // terminating (graceful deletion) and its name is taken until the kubelet lets it go.
    let mut q = p.clone();
    q.metadata.name = Some("q".into());
    pods.create(&PostParams::default(), &q).await.unwrap();
    let st = pods
        .patch_status(
            "q",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": "Running"}})),
        )
        .await
        .unwrap();
    assert_eq!(st.status.unwrap().phase.as_deref(), Some("Running"));
    assert!(
        svcs.delete("s", &DeleteParams::default())
            .await
            .unwrap()
            .is_left()
    );
    env.cleanup().await;
}

// ---------------------------------------------------------------- ray.io schemas (CRD validation)

/// `spec.managedBy` of objects that a running KubeRay operator must leave alone (it does not
/// reconcile what MultiKueue manages), so that a test can compare them over time.
const MULTIKUEUE: &str = "kueue.x-k8s.io/multikueue";

/// The smallest RayCluster spec the CRD's schema accepts.
fn head_spec() -> Value {
    json!({"rayStartParams": {}, "template": {"spec": {"containers": [
        {"name": "ray-head", "image": "rayproject/ray:2.9.0"}
    ]}}})
}

fn rc_body(name: &str, spec: Value) -> Value {
    json!({
        "apiVersion": "ray.io/v1",
        "kind": "RayCluster",
        "metadata": {"name": name},
        "spec": spec,
    })
}

/// The causes of a 422 as (field, reason, message).
fn causes(s: &kube::core::Status) -> Vec<(String, String, String)> {
    s.details
        .as_ref()
        .map(|d| {
            d.causes
                .iter()
                .map(|c| (c.field.clone(), c.reason.clone(), c.message.clone()))
                .collect()
        })
        .unwrap_or_default()
}

/// kube-apiserver's addition when CEL rules were skipped because of a type, required, enum,
/// length or count error.
const RULES_NOT_CHECKED: &str = "<nil>: Invalid value: null: some validation rules were not checked because the object was invalid; correct the existing errors to complete validation";

/// POSTs `body` to `plural` in `ns`, expects 422 Invalid for `kind`/`name`, and checks that
/// nothing was stored.
async fn refused_create(
    client: &kube::Client,
    ns: &str,
    plural: &str,
    kind: &str,
    name: &str,
    body: Value,
) -> Box<kube::core::Status> {
    let s = status(
        raw(
            client,
            "POST",
            &format!("/apis/ray.io/v1/namespaces/{ns}/{plural}"),
            body,
        )
        .await
        .expect_err("the create must be refused"),
    );
    assert_eq!((s.code, s.reason.as_str()), (422, "Invalid"), "{s:?}");
    let d = s.details.as_ref().unwrap();
    assert_eq!(
        (d.name.as_str(), d.group.as_str(), d.kind.as_str()),
        (name, "ray.io", kind)
    );
    assert!(
        s.message
            .starts_with(&format!("{kind}.ray.io \"{name}\" is invalid: ")),
        "{}",
        s.message
    );
    let got = raw(
        client,
        "GET",
        &format!("/apis/ray.io/v1/namespaces/{ns}/{plural}/{name}"),
        Value::Null,
    )
    .await;
    assert_eq!(code(got), 404, "nothing is stored");
    s
}

#[tokio::test]
async fn ray_objects_whose_fields_do_not_fit_the_crd_types_are_refused() {
    let mut env = env().await;
    let ns = env.namespace("crdtypes").await;
    let c = &env.client;

    // an object where the schema has an object
    let s = refused_create(
        c,
        &ns,
        "rayclusters",
        "RayCluster",
        "head-string",
        rc_body("head-string", json!({"headGroupSpec": "x"})),
    )
    .await;
    let head = "spec.headGroupSpec: Invalid value: \"string\": spec.headGroupSpec in body must be of type object: \"string\"";
    assert_eq!(
        s.message,
        format!("RayCluster.ray.io \"head-string\" is invalid: [{head}, {RULES_NOT_CHECKED}]")
    );
    assert_eq!(
        causes(&s)[0],
        (
            "spec.headGroupSpec".to_string(),
            "FieldValueTypeInvalid".to_string(),
            "Invalid value: \"string\": spec.headGroupSpec in body must be of type object: \"string\"".to_string()
        )
    );
    assert_eq!(
        causes(&s)[1],
        (
            "<nil>".to_string(),
            "FieldValueInvalid".to_string(),
            "Invalid value: null: some validation rules were not checked because the object was invalid; correct the existing errors to complete validation".to_string()
        )
    );

    // an object where the schema has a list, and a string in a list of objects
    let containers = "spec.headGroupSpec.template.spec.containers";
    for (name, value, field, want) in [
        (
            "containers-object",
            json!({}),
            containers.to_string(),
            "array: \"object\"",
        ),
        (
            "containers-strings",
            json!(["x"]),
            format!("{containers}[0]"),
            "object: \"string\"",
        ),
    ] {
        let mut spec = json!({"headGroupSpec": head_spec()});
        spec["headGroupSpec"]["template"]["spec"]["containers"] = value;
        let s = refused_create(
            c,
            &ns,
            "rayclusters",
            "RayCluster",
            name,
            rc_body(name, spec),
        )
        .await;
        let (got, _) = want.split_once(':').unwrap();
        let typ = want.split('"').nth(1).unwrap();
        assert_eq!(
            causes(&s)[0],
            (
                field.clone(),
                "FieldValueTypeInvalid".to_string(),
                format!(
                    "Invalid value: \"{typ}\": {field} in body must be of type {got}: \"{typ}\""
                )
            ),
            "{name}"
        );
    }

    // a number where the schema has a string, a string where it has an integer
    let mut spec = json!({"rayVersion": 5, "headGroupSpec": head_spec(),
        "workerGroupSpecs": [{"groupName": "g", "replicas": "three", "minReplicas": 0,
                              "maxReplicas": 3, "rayStartParams": {}, "template": {}}]});
    spec["headGroupSpec"]["template"]["spec"]["containers"][0]["image"] = json!(true);
    let s = refused_create(
        c,
        &ns,
        "rayclusters",
        "RayCluster",
        "numbers",
        rc_body("numbers", spec),
    )
    .await;
    let got = causes(&s);
    for (field, typ, want) in [
        ("spec.rayVersion", "integer", "string"),
        ("spec.workerGroupSpecs[0].replicas", "string", "integer"),
        (
            "spec.headGroupSpec.template.spec.containers[0].image",
            "boolean",
            "string",
        ),
    ] {
        let cause = (
            field.to_string(),
            "FieldValueTypeInvalid".to_string(),
            format!("Invalid value: \"{typ}\": {field} in body must be of type {want}: \"{typ}\""),
        );
        assert!(got.contains(&cause), "{cause:?} in {got:?}");
    }
    assert_eq!(got.len(), 4, "{got:?}");

    // required fields missing
    let s = refused_create(
        c,
        &ns,
        "rayclusters",
        "RayCluster",
        "no-head",
        rc_body("no-head", json!({"rayVersion": "2.9.0"})),
    )
    .await;
    assert_eq!(
        s.message,
        format!(
            "RayCluster.ray.io \"no-head\" is invalid: [spec.headGroupSpec: Required value, {RULES_NOT_CHECKED}]"
        )
    );
    assert_eq!(
        causes(&s)[0],
        (
            "spec.headGroupSpec".to_string(),
            "FieldValueRequired".to_string(),
            "Required value".to_string()
        )
    );
    let mut spec = json!({"headGroupSpec": head_spec()});
    spec["headGroupSpec"]["template"]["spec"]["containers"][0] = json!({"image": "i"});
    let s = refused_create(
        c,
        &ns,
        "rayclusters",
        "RayCluster",
        "no-name",
        rc_body("no-name", spec),
    )
    .await;
    assert_eq!(
        causes(&s)[0].0,
        "spec.headGroupSpec.template.spec.containers[0].name"
    );

    // a value outside an enum; a quantity that does not match its pattern
    let spec = json!({"headGroupSpec": head_spec(), "upgradeStrategy": {"type": "Sometimes"}});
    let s = refused_create(
        c,
        &ns,
        "rayclusters",
        "RayCluster",
        "enum",
        rc_body("enum", spec),
    )
    .await;
    assert_eq!(
        causes(&s)[0],
        (
            "spec.upgradeStrategy.type".to_string(),
            "FieldValueNotSupported".to_string(),
            "Unsupported value: \"Sometimes\": supported values: \"Recreate\", \"None\""
                .to_string()
        )
    );
    let mut spec = json!({"headGroupSpec": head_spec()});
    spec["headGroupSpec"]["template"]["spec"]["containers"][0]["resources"] =
        json!({"limits": {"cpu": "lots"}});
    let s = refused_create(
        c,
        &ns,
        "rayclusters",
        "RayCluster",
        "quantity",
        rc_body("quantity", spec),
    )
    .await;
    let field = "spec.headGroupSpec.template.spec.containers[0].resources.limits.cpu";
    let pattern = r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$";
    assert_eq!(
        s.message,
        format!(
            "RayCluster.ray.io \"quantity\" is invalid: {field}: Invalid value: \"lots\": {field} in body should match '{pattern}'"
        )
    );

    // duplicate keys of a list of type map
    let mut spec = json!({"headGroupSpec": head_spec()});
    spec["headGroupSpec"]["template"]["spec"]["containers"] = json!([
        {"name": "ray-head", "image": "a"}, {"name": "ray-head", "image": "b"}
    ]);
    let s = refused_create(
        c,
        &ns,
        "rayclusters",
        "RayCluster",
        "dup",
        rc_body("dup", spec),
    )
    .await;
    assert_eq!(
        s.message,
        "RayCluster.ray.io \"dup\" is invalid: spec.headGroupSpec.template.spec.containers[1]: Duplicate value: {\"name\":\"ray-head\"}"
    );

    // a CEL rule of the CRD
    let spec = json!({"headGroupSpec": head_spec(), "managedBy": "someone"});
    let s = refused_create(
        c,
        &ns,
        "rayclusters",
        "RayCluster",
        "managed",
        rc_body("managed", spec),
    )
    .await;
    assert_eq!(
        s.message,
        "RayCluster.ray.io \"managed\" is invalid: spec.managedBy: Invalid value: \"string\": the managedBy field value must be either 'ray.io/kuberay-operator' or 'kueue.x-k8s.io/multikueue'"
    );

    // a minimum (RayService), and the RayJob's deletion strategy rules
    let s = refused_create(
        c,
        &ns,
        "rayservices",
        "RayService",
        "delay",
        json!({"apiVersion": "ray.io/v1", "kind": "RayService", "metadata": {"name": "delay"},
               "spec": {"rayClusterConfig": {"headGroupSpec": head_spec()},
                        "rayClusterDeletionDelaySeconds": -1}}),
    )
    .await;
    assert_eq!(
        s.message,
        "RayService.ray.io \"delay\" is invalid: spec.rayClusterDeletionDelaySeconds: Invalid value: -1: spec.rayClusterDeletionDelaySeconds in body should be greater than or equal to 0"
    );
    let s = refused_create(
        c,
        &ns,
        "rayjobs",
        "RayJob",
        "deletion",
        json!({"apiVersion": "ray.io/v1", "kind": "RayJob", "metadata": {"name": "deletion"},
               "spec": {"entrypoint": "true", "deletionStrategy": {"onSuccess": {"policy": "DeleteCluster"}}}}),
    )
    .await;
    assert_eq!(
        s.message,
        "RayJob.ray.io \"deletion\" is invalid: spec.deletionStrategy: Invalid value: \"object\": deletionStrategy requires either BOTH onSuccess and onFailure, OR the deletionRules field (cannot be empty)"
    );
    env.cleanup().await;
}

#[tokio::test]
async fn ray_object_updates_are_validated_against_the_crd() {
    let mut env = env().await;
    let ns = env.namespace("crdupdate").await;
    let rc = rayclusters(&env.client, &ns);
    let uri = format!("/apis/ray.io/v1/namespaces/{ns}/rayclusters/r");
    // Managed by another controller (MultiKueue), so that a running KubeRay operator leaves it
    // alone while the test compares it.
    let spec = json!({"headGroupSpec": head_spec(), "managedBy": MULTIKUEUE});
    raw(
        &env.client,
        "POST",
        &format!("/apis/ray.io/v1/namespaces/{ns}/rayclusters"),
        rc_body("r", spec),
    )
    .await
    .unwrap();
    let before = raw(&env.client, "GET", &uri, Value::Null).await.unwrap();

    // PUT with a bad type
    let mut bad = before.clone();
    bad["spec"]["headGroupSpec"]["template"]["spec"]["containers"] = json!({});
    let s = status(raw(&env.client, "PUT", &uri, bad).await.unwrap_err());
    assert_eq!((s.code, s.reason.as_str()), (422, "Invalid"));
    assert_eq!(
        causes(&s)[0].0,
        "spec.headGroupSpec.template.spec.containers"
    );

    // merge patch: a required field removed, a transition rule broken
    let s = status(
        rc.patch(
            "r",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"headGroupSpec": null}})),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(
        s.message,
        format!(
            "RayCluster.ray.io \"r\" is invalid: [spec.headGroupSpec: Required value, {RULES_NOT_CHECKED}]"
        )
    );
    let s = status(
        rc.patch(
            "r",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"managedBy": "ray.io/kuberay-operator"}})),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(
        s.message,
        "RayCluster.ray.io \"r\" is invalid: spec.managedBy: Invalid value: \"string\": the managedBy field is immutable"
    );

    // a bad label: reported three times (generic metadata checks twice, the CRD's once)
    let s = status(
        rc.patch(
            "r",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"bad key!": "v"}}})),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(causes(&s).len(), 3, "{:?}", causes(&s));
    assert!(causes(&s).iter().all(|c| c.0 == "metadata.labels"));

    let after = raw(&env.client, "GET", &uri, Value::Null).await.unwrap();
    assert_eq!(after, before, "refused updates change nothing");
    env.cleanup().await;
}

#[tokio::test]
async fn ray_object_unknown_fields_are_pruned_and_defaults_applied() {
    let mut env = env().await;
    let ns = env.namespace("crdprune").await;
    let rc = rayclusters(&env.client, &ns);
    let mut head = head_spec();
    head["bogus"] = json!("head");
    head["rayStartParams"] = json!({"num-cpus": "1", "anything": "kept"});
    head["template"]["metadata"] = json!({"labels": {"app": "x"}, "annotations": {"a": "b"},
                                           "generateName": "pruned-", "bogus": 1});
    head["template"]["spec"]["containers"][0]["bogus"] = json!({"deep": true});
    head["template"]["spec"]["containers"][0]["ports"] = json!([{"containerPort": 8265}]);
    let mut body = rc_body(
        "p",
        json!({"headGroupSpec": head, "bogus": [1, 2], "managedBy": MULTIKUEUE,
               "workerGroupSpecs": [{"groupName": "g", "rayStartParams": {}, "template": {}}]}),
    );
    body["bogus"] = json!({"top": "level"});
    body["metadata"]["labels"] = json!({"keep": "me"});
    let created = raw(
        &env.client,
        "POST",
        &format!("/apis/ray.io/v1/namespaces/{ns}/rayclusters"),
        body,
    )
    .await
    .unwrap();
    let got = raw(
        &env.client,
        "GET",
        &format!("/apis/ray.io/v1/namespaces/{ns}/rayclusters/p"),
        Value::Null,
    )
    .await
    .unwrap();
    for v in [&created, &got] {
        assert!(v.get("bogus").is_none(), "{v}");
        assert!(v["spec"].get("bogus").is_none());
        let head = &v["spec"]["headGroupSpec"];
        assert!(head.get("bogus").is_none());
        assert_eq!(
            head["rayStartParams"],
            json!({"num-cpus": "1", "anything": "kept"})
        );
        assert_eq!(
            head["template"]["metadata"],
            json!({"labels": {"app": "x"}, "annotations": {"a": "b"}})
        );
        let container = &head["template"]["spec"]["containers"][0];
        assert_eq!(
            container,
            &json!({"name": "ray-head", "image": "rayproject/ray:2.9.0",
                    "ports": [{"containerPort": 8265, "protocol": "TCP"}]})
        );
        assert_eq!(v["metadata"]["labels"], json!({"keep": "me"}));
        let worker = &v["spec"]["workerGroupSpecs"][0];
        assert_eq!(
            (
                &worker["minReplicas"],
                &worker["maxReplicas"],
                &worker["numOfHosts"],
                &worker["replicas"]
            ),
            (&json!(0), &json!(2147483647), &json!(1), &json!(0))
        );
    }

    // a patch that only adds unknown fields changes nothing
    let rv = got["metadata"]["resourceVersion"].clone();
    let patched = rc
        .patch(
            "p",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"bogus": 1, "headGroupSpec": {"bogus": 2}}})),
        )
        .await
        .unwrap();
    assert!(patched.data["spec"].get("bogus").is_none());
    assert!(patched.data["spec"]["headGroupSpec"].get("bogus").is_none());
    assert_eq!(json!(patched.metadata.resource_version), rv);

    // status: unknown fields pruned there too
    let st = rc
        .patch_status(
            "p",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"state": "ready", "bogus": 1}})),
        )
        .await
        .unwrap();
    assert_eq!(st.data["status"], json!({"state": "ready"}));
    env.cleanup().await;
}

#[tokio::test]
async fn ray_object_status_writes_are_validated() {
    let mut env = env().await;
    let ns = env.namespace("crdstatus").await;
    let rc = rayclusters(&env.client, &ns);
    raw(
        &env.client,
        "POST",
        &format!("/apis/ray.io/v1/namespaces/{ns}/rayclusters"),
        rc_body(
            "s",
            json!({"headGroupSpec": head_spec(), "managedBy": MULTIKUEUE}),
        ),
    )
    .await
    .unwrap();
    let ok = rc
        .patch_status(
            "s",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"status": {"state": "ready", "lastUpdateTime": "2024-01-02T03:04:05Z"}}),
            ),
        )
        .await
        .unwrap();
    let before = serde_json::to_value(&ok).unwrap();
    for (new_status, field, message) in [
        (
            json!({"lastUpdateTime": "garbage"}),
            "status.lastUpdateTime",
            "Invalid value: \"garbage\": lastUpdateTime in body must be of type date-time: \"garbage\"",
        ),
        (
            json!({"state": 5}),
            "status.state",
            "Invalid value: \"integer\": state in body must be of type string: \"integer\"",
        ),
        (
            json!({"readyWorkerReplicas": "x"}),
            "status.readyWorkerReplicas",
            "Invalid value: \"string\": readyWorkerReplicas in body must be of type integer: \"string\"",
        ),
    ] {
        let s = status(
            rc.patch_status(
                "s",
                &PatchParams::default(),
                &Patch::Merge(json!({ "status": new_status })),
            )
            .await
            .unwrap_err(),
        );
        assert_eq!((s.code, s.reason.as_str()), (422, "Invalid"), "{s:?}");
        assert_eq!(
            causes(&s)[0],
            (
                field.to_string(),
                "FieldValueTypeInvalid".to_string(),
                message.to_string()
            )
        );
    }
    let after = serde_json::to_value(rc.get("s").await.unwrap()).unwrap();
    assert_eq!(after, before, "refused status writes change nothing");
    env.cleanup().await;
}

#[tokio::test]
async fn labels_and_annotations_are_validated() {
    let mut env = env().await;
    let ns = env.namespace("labels").await;
    let api: Api<ConfigMap> = Api::namespaced(env.client.clone(), &ns);
    const NAME_PART: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
    const VALUE: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";
    let long = "v".repeat(64);
    let cases: Vec<(Value, String)> = vec![
        (
            json!({"labels": {"bad key!": "v"}}),
            format!("metadata.labels: Invalid value: \"bad key!\": {NAME_PART}"),
        ),
        (
            json!({"labels": {"k": "bad value!"}}),
            format!("metadata.labels: Invalid value: \"bad value!\": {VALUE}"),
        ),
        (
            json!({"labels": {"k": long}}),
            format!("metadata.labels: Invalid value: \"{long}\": must be no more than 63 characters"),
        ),
        (
            json!({"labels": {"/k": "v"}}),
            "metadata.labels: Invalid value: \"/k\": prefix part must be non-empty".to_string(),
        ),
        (
            json!({"annotations": {"bad key!": "v"}}),
            format!("metadata.annotations: Invalid value: \"bad key!\": {NAME_PART}"),
        ),
        (
            json!({"annotations": {"a_b/c": "v"}}),
            "metadata.annotations: Invalid value: \"a_b/c\": prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')".to_string(),
        ),
        (
            json!({"annotations": {"big": "x".repeat(256 * 1024)}}),
            "metadata.annotations: Too long: may not be more than 262144 bytes".to_string(),
        ),
    ];
    for (i, (meta, want)) in cases.iter().enumerate() {
        let name = format!("c{i}");
        let mut m = meta.clone();
        m["name"] = json!(name);
        let c: ConfigMap = serde_json::from_value(json!({"metadata": m})).unwrap();
        let s = status(api.create(&PostParams::default(), &c).await.unwrap_err());
        assert_eq!((s.code, s.reason.as_str()), (422, "Invalid"), "{want}");
        assert_eq!(
            s.message,
            format!("ConfigMap \"{name}\" is invalid: {want}")
        );
        let d = s.details.as_ref().unwrap();
        assert_eq!(
            (d.kind.as_str(), d.name.as_str()),
            ("ConfigMap", name.as_str())
        );
        let field = want.split(':').next().unwrap();
        assert_eq!(d.causes[0].field, field);
        assert!(
            api.get_opt(&name).await.unwrap().is_none(),
            "nothing stored"
        );
    }

    // valid keys and values, then an update that adds a bad one
    let good: ConfigMap = serde_json::from_value(json!({"metadata": {
        "name": "good",
        "labels": {"example.com/MyName": "", "a.b_c-d": "x.Y_z-1"},
        "annotations": {"Example.COM/Any": "anything goes: {}"},
    }}))
    .unwrap();
    api.create(&PostParams::default(), &good).await.unwrap();
    let s = status(
        api.patch(
            "good",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"bad key!": "v"}}})),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(
        s.message,
        format!(
            "ConfigMap \"good\" is invalid: metadata.labels: Invalid value: \"bad key!\": {NAME_PART}"
        )
    );
    // The kube-apiserver checks the metadata of a ConfigMap update four times over (generic
    // checks twice, ValidateConfigMapUpdate twice), each adding its cause.
    assert_eq!(causes(&s).len(), 4, "{:?}", causes(&s));
    let got = api.get("good").await.unwrap();
    assert!(!got.metadata.labels.unwrap().contains_key("bad key!"));

    // a name and a label wrong at once: both reported
    let c: ConfigMap = serde_json::from_value(
        json!({"metadata": {"name": "Bad_Name", "labels": {"bad key!": "v"}}}),
    )
    .unwrap();
    let s = status(api.create(&PostParams::default(), &c).await.unwrap_err());
    assert!(
        s.message.starts_with("ConfigMap \"Bad_Name\" is invalid: [metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain"),
        "{}",
        s.message
    );
    assert!(
        s.message.ends_with(&format!(
            ", metadata.labels: Invalid value: \"bad key!\": {NAME_PART}]"
        )),
        "{}",
        s.message
    );

    // the same on a custom resource and on a namespace
    let mut body = rc_body("labelled", json!({"headGroupSpec": head_spec()}));
    body["metadata"]["annotations"] = json!({"bad key!": "v"});
    let s = refused_create(
        &env.client,
        &ns,
        "rayclusters",
        "RayCluster",
        "labelled",
        body,
    )
    .await;
    assert_eq!(
        s.message,
        format!(
            "RayCluster.ray.io \"labelled\" is invalid: metadata.annotations: Invalid value: \"bad key!\": {NAME_PART}"
        )
    );
    let nsapi: Api<Namespace> = Api::all(env.client.clone());
    let bad_ns = unique("badlabel");
    let n: Namespace = serde_json::from_value(
        json!({"metadata": {"name": bad_ns, "labels": {"k": "bad value!"}}}),
    )
    .unwrap();
    let s = status(nsapi.create(&PostParams::default(), &n).await.unwrap_err());
    assert_eq!(
        s.message,
        format!(
            "Namespace \"{bad_ns}\" is invalid: metadata.labels: Invalid value: \"bad value!\": {VALUE}"
        )
    );
    env.cleanup().await;
}

#[tokio::test]
async fn request_bodies_over_the_limit_are_refused() {
    let mut env = env().await;
    let ns = env.namespace("toolarge").await;
    // Over the kube-apiserver's default limit, 3 MiB (the embedded store's default too).
    let body = json!({"metadata": {"name": "big"}, "data": {"k": "x".repeat(3 * 1024 * 1024)}});
    let s = status(
        raw(
            &env.client,
            "POST",
            &format!("/api/v1/namespaces/{ns}/configmaps"),
            body,
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(
        (s.code, s.reason.as_str(), s.message.as_str()),
        (
            413,
            "RequestEntityTooLarge",
            "Request entity too large: limit is 3145728"
        )
    );
    env.cleanup().await;
}
