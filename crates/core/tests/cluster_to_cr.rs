//! API -> RayCluster, rule by rule (docs/contract/conversion.md#cluster-to-raycluster).

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, UNIX_EPOCH};

use common::*;
use kuberay_api::proto::{
    AutoscalerOptions, Capabilities, ClusterSpec, ComputeTemplate, PodToleration, SecurityContext,
    Volume,
};
use kuberay_core::cluster::{self, ClusterSpecOptions, go_time_string};
use serde_json::{Value, json};

const CONFIGMAP: i32 = 0;
const SECRET: i32 = 1;
const RESOURCEFIELD: i32 = 2;
const FIELD: i32 = 3;

// ---- metadata -------------------------------------------------------------------------------

#[test]
fn object_metadata_labels_and_annotations() {
    let mut c = cluster(spec(head(), vec![]));
    c.annotations = map(&[("kubernetes.io/ingress.class", "nginx")]);
    let object = serde_json::to_value(build_object(&c)).unwrap();
    assert_eq!(object["apiVersion"], "ray.io/v1");
    assert_eq!(object["kind"], "RayCluster");
    assert_eq!(
        object["metadata"],
        json!({
            "name": "c",
            "namespace": "ns",
            "labels": {
                "ray.io/cluster-name": "c",
                "ray.io/user": "u",
                "ray.io/version": "2.9.0",
                "ray.io/environment": "DEV",
                "app.kubernetes.io/name": "kuberay",
                "app.kubernetes.io/managed-by": "kuberay-apiserver"
            },
            "annotations": {
                "kubernetes.io/ingress.class": "nginx",
                "ray.io/creation-timestamp": CREATED_AT
            }
        })
    );
    assert!(object.get("status").is_none());
}

#[test]
fn environment_label_is_the_enum_name_or_the_number() {
    for (number, label) in [
        (0, "DEV"),
        (1, "TESTING"),
        (2, "STAGING"),
        (3, "PRODUCTION"),
        (7, "7"),
    ] {
        let mut c = cluster(spec(head(), vec![]));
        c.environment = number;
        let labels = build_object(&c).metadata.labels.unwrap();
        assert_eq!(labels["ray.io/environment"], label);
    }
}

#[test]
fn empty_version_is_kept_in_the_label_and_the_default_image() {
    let mut c = cluster(spec(head(), vec![worker("wg")]));
    c.version.clear();
    let object = build_object(&c);
    assert_eq!(
        object.metadata.labels.as_ref().unwrap()["ray.io/version"],
        ""
    );
    let spec = serde_json::to_value(&object.spec).unwrap();
    assert!(spec.get("rayVersion").is_none());
    assert_eq!(head_container(&spec)["image"], "rayproject/ray:");
    assert_eq!(worker_container(&spec, 0)["image"], "rayproject/ray:");
}

#[test]
fn creation_timestamp_wins_over_a_user_annotation_of_the_same_key() {
    let mut c = cluster(spec(head(), vec![]));
    c.annotations = map(&[("ray.io/creation-timestamp", "user")]);
    let annotations = build_object(&c).metadata.annotations.unwrap();
    assert_eq!(
        annotations,
        map(&[("ray.io/creation-timestamp", CREATED_AT)])
    );
}

#[test]
fn go_time_strings() {
    let at = |secs: u64, nanos: u32| go_time_string(UNIX_EPOCH + Duration::new(secs, nanos));
    assert_eq!(
        at(1_695_638_915, 766_443_417),
        "2023-09-25 10:48:35.766443417 +0000 UTC"
    );
    assert_eq!(
        at(1_695_638_915, 500_000_000),
        "2023-09-25 10:48:35.5 +0000 UTC"
    );
    assert_eq!(
        at(1_695_638_915, 120),
        "2023-09-25 10:48:35.00000012 +0000 UTC"
    );
    assert_eq!(at(1_695_638_915, 0), "2023-09-25 10:48:35 +0000 UTC");
    assert_eq!(at(0, 0), "1970-01-01 00:00:00 +0000 UTC");
    assert_eq!(at(951_782_400, 0), "2000-02-29 00:00:00 +0000 UTC");
    assert_eq!(
        go_time_string(UNIX_EPOCH - Duration::new(1, 500_000_000)),
        "1969-12-31 23:59:58.5 +0000 UTC"
    );
}

// ---- spec level -----------------------------------------------------------------------------

#[test]
fn spec_level_fields() {
    let built = build(&spec(head(), vec![]));
    assert_eq!(built["rayVersion"], "2.9.0");
    for absent in [
        "workerGroupSpecs",
        "enableInTreeAutoscaling",
        "autoscalerOptions",
        "headServiceAnnotations",
    ] {
        assert!(built.get(absent).is_none(), "{absent}");
    }
    let head = &built["headGroupSpec"];
    assert!(head.get("enableIngress").is_none());
    assert!(head.get("serviceType").is_none());
    assert_eq!(head["rayStartParams"], json!({"num-cpus": "0"}));

    let mut h = common::head();
    h.enable_ingress = true;
    h.service_type = "NodePort".into();
    let mut s = spec(h, vec![]);
    s.head_service_annotations = map(&[("a", "b")]);
    let built = build(&s);
    assert_eq!(built["headGroupSpec"]["enableIngress"], true);
    assert_eq!(built["headGroupSpec"]["serviceType"], "NodePort");
    assert_eq!(built["headServiceAnnotations"], json!({"a": "b"}));
}

#[test]
fn worker_replicas_defaults() {
    let mut defaulted = worker("a");
    defaulted.replicas = 3;
    defaulted.min_replicas = 0;
    defaulted.max_replicas = 0;
    let mut zero = worker("b");
    zero.replicas = 0;
    zero.min_replicas = 0;
    zero.max_replicas = 5;
    let mut given = worker("c");
    given.replicas = 1;
    given.min_replicas = 0;
    given.max_replicas = 5;
    let built = build(&spec(head(), vec![defaulted, zero, given]));
    let groups = &built["workerGroupSpecs"];
    let replicas = |i: usize| {
        (
            groups[i]["replicas"].clone(),
            groups[i]["minReplicas"].clone(),
            groups[i]["maxReplicas"].clone(),
        )
    };
    assert_eq!(replicas(0), (json!(3), json!(3), json!(3)));
    assert_eq!(replicas(1), (json!(0), json!(0), json!(5)));
    assert_eq!(replicas(2), (json!(1), json!(1), json!(5)));
    assert_eq!(groups[0]["groupName"], "a");
    assert_eq!(groups[0]["rayStartParams"], Value::Null);
    assert_eq!(groups[0]["scaleStrategy"], json!({}));
}

#[test]
fn worker_ray_start_params_pass_through() {
    let mut w = worker("wg");
    w.ray_start_params = map(&[("node-ip-address", "$MY_POD_IP")]);
    let built = build(&spec(head(), vec![w]));
    assert_eq!(
        built["workerGroupSpecs"][0]["rayStartParams"],
        json!({"node-ip-address": "$MY_POD_IP"})
    );
}

// ---- containers -----------------------------------------------------------------------------

#[test]
fn head_container_defaults() {
    let built = build(&spec(head(), vec![]));
    let template = &built["headGroupSpec"]["template"];
    assert_eq!(
        template["metadata"],
        json!({"annotations": {"ray.io/compute-template": "t", "ray.io/compute-image": ""}})
    );
    let pod = &template["spec"];
    for absent in [
        "tolerations",
        "serviceAccountName",
        "imagePullSecrets",
        "volumes",
    ] {
        assert!(pod.get(absent).is_none(), "{absent}");
    }
    assert_eq!(pod["containers"].as_array().unwrap().len(), 1);
    assert_eq!(
        head_container(&built),
        &json!({
            "name": "ray-head",
            "image": "rayproject/ray:2.9.0",
            "imagePullPolicy": "IfNotPresent",
            "env": [{"name": "MY_POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}],
            "ports": [
                {"name": "redis", "containerPort": 6379},
                {"name": "head", "containerPort": 10001},
                {"name": "dashboard", "containerPort": 8265},
                {"name": "metrics", "containerPort": 8080}
            ],
            "resources": {
                "limits": {"cpu": "2", "memory": "4Gi"},
                "requests": {"cpu": "2", "memory": "4Gi"}
            }
        })
    );
}

#[test]
fn worker_container_defaults() {
    let built = build(&spec(head(), vec![worker("wg")]));
    let container = worker_container(&built, 0);
    assert_eq!(container["name"], "ray-worker");
    assert_eq!(container["image"], "rayproject/ray:2.9.0");
    assert_eq!(container["imagePullPolicy"], "IfNotPresent");
    assert_eq!(container["ports"], json!([{"containerPort": 80}]));
    assert_eq!(
        container["lifecycle"],
        json!({"preStop": {"exec": {"command": ["/bin/sh", "-c", "ray stop"]}}})
    );
    assert_eq!(
        container["env"],
        json!([
            {"name": "RAY_DISABLE_DOCKER_CPU_WARNING", "value": "1"},
            {"name": "TYPE", "value": "worker"},
            {"name": "CPU_REQUEST", "valueFrom": {"resourceFieldRef": {"containerName": "ray-worker", "resource": "requests.cpu"}}},
            {"name": "CPU_LIMITS", "valueFrom": {"resourceFieldRef": {"containerName": "ray-worker", "resource": "limits.cpu"}}},
            {"name": "MEMORY_REQUESTS", "valueFrom": {"resourceFieldRef": {"containerName": "ray-worker", "resource": "requests.memory"}}},
            {"name": "MEMORY_LIMITS", "valueFrom": {"resourceFieldRef": {"containerName": "ray-worker", "resource": "limits.memory"}}},
            {"name": "MY_POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "MY_POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}
        ])
    );
    assert!(container.get("securityContext").is_none());
    assert!(container.get("volumeMounts").is_none());
}

#[test]
fn image_and_its_annotation() {
    let mut h = head();
    h.image = "my/ray:1".into();
    let mut w = worker("wg");
    w.image = "my/worker:1".into();
    let built = build(&spec(h, vec![w, worker("default")]));
    assert_eq!(head_container(&built)["image"], "my/ray:1");
    assert_eq!(
        built["headGroupSpec"]["template"]["metadata"]["annotations"]["ray.io/compute-image"],
        "my/ray:1"
    );
    assert_eq!(worker_container(&built, 0)["image"], "my/worker:1");
    assert_eq!(worker_container(&built, 1)["image"], "rayproject/ray:2.9.0");
    assert_eq!(
        built["workerGroupSpecs"][1]["template"]["metadata"]["annotations"]["ray.io/compute-image"],
        ""
    );
}

#[test]
fn pull_policy_is_always_written() {
    for (given, written) in [
        ("", "IfNotPresent"),
        ("IfNotPresent", "IfNotPresent"),
        ("Never", "IfNotPresent"),
        ("Always", "Always"),
        ("always", "Always"),
        ("ALWAYS", "Always"),
    ] {
        let mut h = head();
        h.image_pull_policy = given.into();
        let mut w = worker("wg");
        w.image_pull_policy = given.into();
        let built = build(&spec(h, vec![w]));
        assert_eq!(
            head_container(&built)["imagePullPolicy"],
            written,
            "{given:?}"
        );
        assert_eq!(
            worker_container(&built, 0)["imagePullPolicy"],
            written,
            "{given:?}"
        );
    }
}

#[test]
fn service_account_and_pull_secret_need_two_characters() {
    for (value, applied) in [("", false), ("a", false), ("ab", true), ("account", true)] {
        let mut h = head();
        h.service_account = value.into();
        h.image_pull_secret = value.into();
        let mut w = worker("wg");
        w.service_account = value.into();
        w.image_pull_secret = value.into();
        let built = build(&spec(h, vec![w]));
        for pod in [
            &built["headGroupSpec"]["template"]["spec"],
            &built["workerGroupSpecs"][0]["template"]["spec"],
        ] {
            if applied {
                assert_eq!(pod["serviceAccountName"], value);
                assert_eq!(pod["imagePullSecrets"], json!([{"name": value}]));
            } else {
                assert!(pod.get("serviceAccountName").is_none(), "{value:?}");
                assert!(pod.get("imagePullSecrets").is_none(), "{value:?}");
            }
        }
    }
}

#[test]
fn group_annotations_and_labels() {
    let mut h = head();
    h.annotations = map(&[("ray.io/compute-template", "overridden"), ("a", "1")]);
    h.labels = map(&[("team", "ml")]);
    let mut w = worker("wg");
    w.annotations = map(&[("ray.io/compute-image", "claimed")]);
    let built = build(&spec(h, vec![w]));
    assert_eq!(
        built["headGroupSpec"]["template"]["metadata"],
        json!({
            "annotations": {"ray.io/compute-template": "overridden", "ray.io/compute-image": "", "a": "1"},
            "labels": {"team": "ml"}
        })
    );
    assert_eq!(
        built["workerGroupSpecs"][0]["template"]["metadata"],
        json!({"annotations": {"ray.io/compute-template": "t", "ray.io/compute-image": "claimed"}})
    );
}

#[test]
fn security_context() {
    let mut h = head();
    h.security_context = Some(SecurityContext::default());
    let mut w1 = worker("a");
    w1.security_context = Some(SecurityContext {
        privileged: Some(true),
        capabilities: Some(Capabilities {
            add: vec!["SYS_PTRACE".into(), "NET_ADMIN".into()],
            drop: vec!["ALL".into()],
        }),
    });
    let mut w2 = worker("b");
    w2.security_context = Some(SecurityContext {
        privileged: Some(false),
        capabilities: Some(Capabilities::default()),
    });
    let built = build(&spec(h, vec![w1, w2, worker("c")]));
    assert_eq!(
        head_container(&built)["securityContext"],
        json!({"capabilities": {}})
    );
    assert_eq!(
        worker_container(&built, 0)["securityContext"],
        json!({"privileged": true, "capabilities": {"add": ["SYS_PTRACE", "NET_ADMIN"], "drop": ["ALL"]}})
    );
    assert_eq!(
        worker_container(&built, 1)["securityContext"],
        json!({"privileged": false, "capabilities": {}})
    );
    assert!(worker_container(&built, 2).get("securityContext").is_none());
}

// ---- environment variables ------------------------------------------------------------------

#[test]
fn environment_values_then_references_each_sorted() {
    let mut h = head();
    h.environment = Some(envs(
        &[("ZED", "1"), ("ALPHA", "2"), ("EMPTY", "")],
        &[
            ("S", env_from(SECRET, "secret", "password")),
            ("C", env_from(CONFIGMAP, "config", "special.how")),
            ("R", env_from(RESOURCEFIELD, "my-container", "requests.cpu")),
            ("F", env_from(FIELD, "ignored", "metadata.namespace")),
            ("U", env_from(9, "ignored", "spec.nodeName")),
        ],
    ));
    let built = build(&spec(h, vec![]));
    assert_eq!(
        head_container(&built)["env"],
        json!([
            {"name": "MY_POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "ALPHA", "value": "2"},
            {"name": "EMPTY"},
            {"name": "ZED", "value": "1"},
            {"name": "C", "valueFrom": {"configMapKeyRef": {"name": "config", "key": "special.how"}}},
            {"name": "F", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
            {"name": "R", "valueFrom": {"resourceFieldRef": {"containerName": "my-container", "resource": "requests.cpu"}}},
            {"name": "S", "valueFrom": {"secretKeyRef": {"name": "secret", "key": "password"}}},
            {"name": "U", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}
        ])
    );
}

#[test]
fn cluster_envs_go_between_the_fixed_and_the_group_variables() {
    let cluster_envs = envs(
        &[("CLUSTER", "1")],
        &[("TOKEN", env_from(SECRET, "s", "k"))],
    );
    let mut h = head();
    h.environment = Some(envs(&[("HEAD", "1")], &[]));
    let mut w = worker("wg");
    w.environment = Some(envs(&[("WORKER", "1")], &[]));
    let s = spec(h, vec![w]);
    let built = build_with(
        &s,
        &templates(&[template("t")]),
        ClusterSpecOptions {
            cluster_envs: Some(&cluster_envs),
            serve_ports: false,
        },
    )
    .unwrap();
    assert_eq!(
        env_names(head_container(&built)),
        ["MY_POD_IP", "CLUSTER", "TOKEN", "HEAD"]
    );
    let worker_names = env_names(worker_container(&built, 0));
    assert_eq!(worker_names.len(), 11);
    assert_eq!(
        worker_names[7..],
        ["MY_POD_IP", "CLUSTER", "TOKEN", "WORKER"]
    );

    // to_ray_cluster passes the cluster's envs.
    let mut c = cluster(s);
    c.envs = Some(cluster_envs.clone());
    let object = serde_json::to_value(build_object(&c).spec).unwrap();
    assert_eq!(object, built);
}

// ---- serve ports ----------------------------------------------------------------------------

fn port_names(container: &Value) -> Vec<String> {
    container["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn serve_ports_follow_the_annotation_or_the_option() {
    let four = ["redis", "head", "dashboard", "metrics"];
    let six = [
        "redis",
        "head",
        "dashboard",
        "metrics",
        "dashboard-agent",
        "serve",
    ];
    for (annotation, expected) in [
        (None, &four[..]),
        (Some("true"), &six[..]),
        (Some("True"), &four[..]),
        (Some("false"), &four[..]),
    ] {
        let mut c = cluster(spec(head(), vec![worker("wg")]));
        if let Some(value) = annotation {
            c.annotations = map(&[("ray.io/enable-serve-service", value)]);
        }
        let built = serde_json::to_value(build_object(&c).spec).unwrap();
        assert_eq!(
            port_names(head_container(&built)),
            expected,
            "{annotation:?}"
        );
        assert_eq!(
            worker_container(&built, 0)["ports"],
            json!([{"containerPort": 80}])
        );
    }
    let built = build_with(
        &spec(head(), vec![]),
        &templates(&[template("t")]),
        ClusterSpecOptions {
            cluster_envs: None,
            serve_ports: true,
        },
    )
    .unwrap();
    let ports = &head_container(&built)["ports"];
    assert_eq!(
        ports[4],
        json!({"name": "dashboard-agent", "containerPort": 52365})
    );
    assert_eq!(ports[5], json!({"name": "serve", "containerPort": 8000}));
}

// ---- compute templates ----------------------------------------------------------------------

fn resources_of(template: ComputeTemplate) -> Value {
    let s = spec(head(), vec![]);
    let built = build_with(&s, &templates(&[template]), ClusterSpecOptions::default()).unwrap();
    let resources = head_container(&built)["resources"].clone();
    assert_eq!(resources["limits"], resources["requests"]);
    resources["limits"].clone()
}

#[test]
fn template_resources_in_canonical_form() {
    let mut t = template("t");
    t.cpu = 1000;
    t.memory = 8192;
    t.memory_unit = "Mi".into();
    t.gpu = 4;
    t.extended_resources = BTreeMap::from([
        ("vpc.amazonaws.com/efa".to_string(), 32),
        ("example.com/zero".to_string(), 0),
        ("example.com/many".to_string(), 2000),
    ]);
    assert_eq!(
        resources_of(t),
        json!({
            "cpu": "1k",
            "memory": "8Gi",
            "nvidia.com/gpu": "4",
            "vpc.amazonaws.com/efa": "32",
            "example.com/many": "2k"
        })
    );

    let mut t = template("t");
    t.memory = 1536;
    t.memory_unit = "Mi".into();
    t.gpu = 1;
    t.gpu_accelerator = "amd.com/gpu".into();
    assert_eq!(
        resources_of(t),
        json!({"cpu": "2", "memory": "1536Mi", "amd.com/gpu": "1"})
    );

    let mut t = template("t");
    t.memory = 2000;
    t.memory_unit = "M".into();
    assert_eq!(resources_of(t), json!({"cpu": "2", "memory": "2G"}));
}

#[test]
fn memory_uses_the_raw_stored_unit() {
    // A hand-made ConfigMap without a unit: 8 bytes.
    let mut t = template("t");
    t.memory = 8;
    t.memory_unit.clear();
    assert_eq!(resources_of(t), json!({"cpu": "2", "memory": "8"}));
}

#[test]
fn an_unparsable_memory_unit_is_a_data_error_naming_the_template() {
    let mut t = template("bad-unit");
    t.memory_unit = "GB".into();
    let mut h = head();
    h.compute_template = "bad-unit".into();
    let text = data_error(cluster::build_cluster_spec(
        &spec(h, vec![]),
        &templates(&[t]),
        "v",
        ClusterSpecOptions::default(),
    ));
    assert!(text.contains("bad-unit"), "{text}");
    assert!(text.contains("4GB"), "{text}");
}

#[test]
fn a_missing_template_is_a_data_error_naming_it() {
    let mut w = worker("wg");
    w.compute_template = "absent".into();
    let text = data_error(cluster::build_cluster_spec(
        &spec(head(), vec![w]),
        &templates(&[template("t")]),
        "v",
        ClusterSpecOptions::default(),
    ));
    assert!(text.contains("absent"), "{text}");
}

#[test]
fn tolerations_are_rewritten() {
    let toleration = |key: &str, operator: &str, value: &str, effect: &str| PodToleration {
        key: key.into(),
        operator: operator.into(),
        value: value.into(),
        effect: effect.into(),
    };
    let mut t = template("t");
    t.tolerations = vec![
        toleration("a", "Exists", "", "NoExecute"),
        toleration("b", "Equal", "v", "NoSchedule"),
        toleration("c", "exists", "v", "noschedule"),
        toleration("", "", "", ""),
        toleration("e", "Other", "", "PreferNoSchedule"),
    ];
    let built = build_with(
        &spec(head(), vec![worker("wg")]),
        &templates(&[t]),
        ClusterSpecOptions::default(),
    )
    .unwrap();
    let expected = json!([
        {"key": "a", "operator": "Exists", "effect": "NoExecute"},
        {"key": "b", "operator": "Equal", "value": "v", "effect": "NoSchedule"},
        {"key": "c", "operator": "Equal", "value": "v", "effect": "PreferNoSchedule"},
        {"operator": "Equal", "effect": "PreferNoSchedule"},
        {"key": "e", "operator": "Equal", "effect": "PreferNoSchedule"}
    ]);
    assert_eq!(
        built["headGroupSpec"]["template"]["spec"]["tolerations"],
        expected
    );
    assert_eq!(
        built["workerGroupSpecs"][0]["template"]["spec"]["tolerations"],
        expected
    );
}

#[test]
fn each_group_uses_its_own_template() {
    let mut big = template("big");
    big.cpu = 8;
    big.memory = 32;
    let mut w = worker("wg");
    w.compute_template = "big".into();
    let built = build_with(
        &spec(head(), vec![w]),
        &templates(&[template("t"), big]),
        ClusterSpecOptions::default(),
    )
    .unwrap();
    assert_eq!(head_container(&built)["resources"]["limits"]["cpu"], "2");
    assert_eq!(
        worker_container(&built, 0)["resources"]["limits"]["cpu"],
        "8"
    );
    assert_eq!(
        worker_container(&built, 0)["resources"]["requests"]["memory"],
        "32Gi"
    );
    assert_eq!(
        built["workerGroupSpecs"][0]["template"]["metadata"]["annotations"]["ray.io/compute-template"],
        "big"
    );
}

// ---- volumes --------------------------------------------------------------------------------

fn volume(name: &str, volume_type: i32) -> Volume {
    Volume {
        name: name.into(),
        mount_path: format!("/mnt/{name}"),
        volume_type,
        ..Default::default()
    }
}

fn head_with_volumes(volumes: Vec<Volume>) -> ClusterSpec {
    let mut h = head();
    h.volumes = volumes;
    spec(h, vec![])
}

fn build_volumes(volumes: Vec<Volume>) -> (Value, Value) {
    let built = build(&head_with_volumes(volumes));
    (
        built["headGroupSpec"]["template"]["spec"]["volumes"].clone(),
        head_container(&built)["volumeMounts"].clone(),
    )
}

#[test]
fn mounts_carry_read_only_and_propagation() {
    let mut none = volume("a", 0);
    none.read_only = true;
    let mut to_container = volume("b", 3);
    to_container.mount_propagation_mode = 1;
    let mut bidirectional = volume("c", 5);
    bidirectional.mount_propagation_mode = 2;
    let mut unknown = volume("d", 4);
    unknown.mount_propagation_mode = 7;
    let (_, mounts) = build_volumes(vec![none, to_container, bidirectional, unknown]);
    assert_eq!(
        mounts,
        json!([
            {"name": "a", "mountPath": "/mnt/a", "readOnly": true},
            {"name": "b", "mountPath": "/mnt/b", "mountPropagation": "HostToContainer"},
            {"name": "c", "mountPath": "/mnt/c", "mountPropagation": "Bidirectional"},
            {"name": "d", "mountPath": "/mnt/d"}
        ])
    );
}

/// API volumes of every type and option, and one of an unknown type, in this order.
fn every_volume() -> Vec<Volume> {
    let mut pvc = volume("pvc", 0);
    pvc.source = "claim".into();
    let mut pvc_ro = volume("pvc-ro", 0);
    pvc_ro.source = "claim".into();
    pvc_ro.read_only = true;
    let mut dir = volume("dir", 1);
    dir.source = "/opt".into();
    let mut file = volume("file", 1);
    file.source = "/etc/hosts".into();
    file.host_path_type = 1;
    let mut odd_type = volume("odd", 1);
    odd_type.source = "/x".into();
    odd_type.host_path_type = 5;
    let mut eph = volume("eph", 2);
    eph.storage = "5Gi".into();
    let mut eph_rox = volume("eph-rox", 2);
    eph_rox.storage = "1024Mi".into();
    eph_rox.access_mode = 1;
    eph_rox.storage_class_name = "fast".into();
    let mut eph_rwx = volume("eph-rwx", 2);
    eph_rwx.storage = "1".into();
    eph_rwx.access_mode = 2;
    let mut eph_odd = volume("eph-odd", 2);
    eph_odd.storage = "1".into();
    eph_odd.access_mode = 9;
    let mut cm = volume("cm", 3);
    cm.source = "config".into();
    let mut cm_items = volume("cm-items", 3);
    cm_items.source = "config".into();
    cm_items.items = map(&[("b", "path/b"), ("a", "path/a")]);
    let mut secret = volume("secret", 4);
    secret.source = "creds".into();
    let mut secret_items = volume("secret-items", 4);
    secret_items.source = "creds".into();
    secret_items.items = map(&[("password", "pw")]);
    let empty = volume("empty", 5);
    let mut sized = volume("sized", 5);
    sized.storage = "0.5Gi".into();
    let unknown = volume("unknown", 6);
    vec![
        pvc,
        pvc_ro,
        dir,
        file,
        odd_type,
        eph,
        eph_rox,
        eph_rwx,
        eph_odd,
        cm,
        cm_items,
        secret,
        secret_items,
        empty,
        sized,
        unknown,
    ]
}

#[test]
fn every_volume_type() {
    let (volumes, mounts) = build_volumes(every_volume());
    let claim = |mode: &str, storage: &str, class: Option<&str>| {
        let mut spec =
            json!({"accessModes": [mode], "resources": {"requests": {"storage": storage}}});
        if let Some(class) = class {
            spec["storageClassName"] = json!(class);
        }
        json!({"volumeClaimTemplate": {
            "metadata": {"labels": {"app.kubernetes.io/managed-by": "kuberay-apiserver"}},
            "spec": spec
        }})
    };
    assert_eq!(
        volumes,
        json!([
            {"name": "pvc", "persistentVolumeClaim": {"claimName": "claim"}},
            {"name": "pvc-ro", "persistentVolumeClaim": {"claimName": "claim", "readOnly": true}},
            {"name": "dir", "hostPath": {"path": "/opt", "type": "Directory"}},
            {"name": "file", "hostPath": {"path": "/etc/hosts", "type": "File"}},
            {"name": "odd", "hostPath": {"path": "/x", "type": "Directory"}},
            {"name": "eph", "ephemeral": claim("ReadWriteOnce", "5Gi", None)},
            {"name": "eph-rox", "ephemeral": claim("ReadOnlyMany", "1Gi", Some("fast"))},
            {"name": "eph-rwx", "ephemeral": claim("ReadWriteMany", "1", None)},
            {"name": "eph-odd", "ephemeral": claim("ReadWriteOnce", "1", None)},
            {"name": "cm", "configMap": {"name": "config"}},
            {"name": "cm-items", "configMap": {"name": "config", "items": [
                {"key": "a", "path": "path/a"}, {"key": "b", "path": "path/b"}
            ]}},
            {"name": "secret", "secret": {"secretName": "creds"}},
            {"name": "secret-items", "secret": {"secretName": "creds", "items": [
                {"key": "password", "path": "pw"}
            ]}},
            {"name": "empty", "emptyDir": {}},
            {"name": "sized", "emptyDir": {"sizeLimit": "512Mi"}}
        ])
    );
    // One mount per API volume, including the unknown type that has no pod volume.
    assert_eq!(mounts.as_array().unwrap().len(), 16);
    assert_eq!(
        mounts[15],
        json!({"name": "unknown", "mountPath": "/mnt/unknown"})
    );
}

#[test]
fn volume_storage_errors() {
    let check = |v: Volume| {
        input_error(cluster::build_cluster_spec(
            &head_with_volumes(vec![v]),
            &templates(&[template("t")]),
            "v",
            ClusterSpecOptions::default(),
        ))
    };
    assert_eq!(
        check(volume("e", 2)),
        "storage for ephemeral volume is empty"
    );
    let mut bad = volume("e", 2);
    bad.storage = "5 Gi".into();
    assert_eq!(
        check(bad),
        "storage for ephemeral volume is not specified correctly"
    );
    let mut bad = volume("d", 5);
    bad.storage = "lots".into();
    assert_eq!(
        check(bad),
        "storage for empty dir volume is not specified correctly"
    );
}

#[test]
fn errors_come_in_the_go_server_order() {
    let ephemeral_without_storage = volume("e", 2);
    let mut bad_dir = volume("d", 5);
    bad_dir.storage = "x".into();
    let bad_autoscaler = AutoscalerOptions {
        cpu: "lots".into(),
        ..Default::default()
    };
    let mut bad_unit = template("t");
    bad_unit.memory_unit = "XB".into();

    let run = |head_volumes: Vec<Volume>, worker_volumes: Vec<Volume>, t: &ComputeTemplate| {
        let mut h = head();
        h.volumes = head_volumes;
        let mut w = worker("wg");
        w.volumes = worker_volumes;
        let mut s = spec(h, vec![w]);
        s.enable_in_tree_autoscaling = true;
        s.autoscaler_options = Some(bad_autoscaler.clone());
        cluster::build_cluster_spec(
            &s,
            &templates(std::slice::from_ref(t)),
            "v",
            ClusterSpecOptions::default(),
        )
    };
    let good = template("t");
    // Head volumes, then worker volumes, then autoscaler options.
    assert_eq!(
        input_error(run(
            vec![bad_dir.clone()],
            vec![ephemeral_without_storage.clone()],
            &good
        )),
        "storage for empty dir volume is not specified correctly"
    );
    assert_eq!(
        input_error(run(vec![], vec![ephemeral_without_storage.clone()], &good)),
        "storage for ephemeral volume is empty"
    );
    assert_eq!(
        input_error(run(vec![], vec![], &good)),
        "cpu for autoscaler is not specified correctly"
    );
    // A group's volumes are checked before its template's memory.
    assert_eq!(
        input_error(run(vec![bad_dir], vec![], &bad_unit)),
        "storage for empty dir volume is not specified correctly"
    );
    data_error(run(vec![], vec![ephemeral_without_storage], &bad_unit));
}

// ---- autoscaler -----------------------------------------------------------------------------

fn autoscaler(enable: bool, options: Option<AutoscalerOptions>) -> Value {
    let mut s = spec(head(), vec![]);
    s.enable_in_tree_autoscaling = enable;
    s.autoscaler_options = options;
    build(&s)
}

#[test]
fn autoscaler_options_only_with_autoscaling() {
    let options = AutoscalerOptions {
        idle_timeout_seconds: 120,
        ..Default::default()
    };
    let built = autoscaler(false, Some(options.clone()));
    assert!(built.get("enableInTreeAutoscaling").is_none());
    assert!(built.get("autoscalerOptions").is_none());
    let built = autoscaler(true, None);
    assert_eq!(built["enableInTreeAutoscaling"], true);
    assert!(built.get("autoscalerOptions").is_none());
    assert_eq!(
        autoscaler(true, Some(AutoscalerOptions::default()))["autoscalerOptions"],
        json!({})
    );
}

#[test]
fn autoscaler_scalar_options() {
    let built = autoscaler(
        true,
        Some(AutoscalerOptions {
            upscaling_mode: "Default".into(),
            idle_timeout_seconds: 120,
            image_pull_policy: "IfNotPresent".into(),
            ..Default::default()
        }),
    );
    assert_eq!(
        built["autoscalerOptions"],
        json!({"idleTimeoutSeconds": 120, "upscalingMode": "Default"})
    );
    let built = autoscaler(
        true,
        Some(AutoscalerOptions {
            idle_timeout_seconds: -5,
            image: "my/autoscaler".into(),
            image_pull_policy: "always".into(),
            ..Default::default()
        }),
    );
    assert_eq!(
        built["autoscalerOptions"],
        json!({"image": "my/autoscaler", "imagePullPolicy": "Always"})
    );
}

#[test]
fn autoscaler_resources_default_the_missing_half() {
    let resources = |cpu: &str, memory: &str| {
        autoscaler(
            true,
            Some(AutoscalerOptions {
                cpu: cpu.into(),
                memory: memory.into(),
                ..Default::default()
            }),
        )["autoscalerOptions"]
            .get("resources")
            .cloned()
    };
    assert_eq!(resources("", ""), None);
    let both = |cpu: &str, memory: &str| {
        Some(
            json!({"limits": {"cpu": cpu, "memory": memory}, "requests": {"cpu": cpu, "memory": memory}}),
        )
    };
    assert_eq!(resources("300m", ""), both("300m", "512Mi"));
    assert_eq!(resources("", "1Gi"), both("500m", "1Gi"));
    assert_eq!(resources("0.5", "1024Mi"), both("500m", "1Gi"));
    assert_eq!(resources("1000m", "2000M"), both("1", "2G"));
}

#[test]
fn autoscaler_quantity_errors() {
    let error = |cpu: &str, memory: &str| {
        let mut s = spec(head(), vec![]);
        s.enable_in_tree_autoscaling = true;
        s.autoscaler_options = Some(AutoscalerOptions {
            cpu: cpu.into(),
            memory: memory.into(),
            ..Default::default()
        });
        input_error(cluster::build_cluster_spec(
            &s,
            &templates(&[template("t")]),
            "v",
            ClusterSpecOptions::default(),
        ))
    };
    assert_eq!(
        error("x", "y"),
        "cpu for autoscaler is not specified correctly"
    );
    assert_eq!(
        error("1", "512MB"),
        "memory for autoscaler is not specified correctly"
    );
    assert_eq!(
        error("", "512MB"),
        "memory for autoscaler is not specified correctly"
    );
}

#[test]
fn autoscaler_envs_are_per_variable_references_and_volumes_only_mounts() {
    let mut secret = volume("secret", 4);
    secret.read_only = true;
    secret.mount_propagation_mode = 1;
    let built = autoscaler(
        true,
        Some(AutoscalerOptions {
            envs: Some(envs(
                &[("AWS_KEY", "123")],
                &[
                    (
                        "REDIS_PASSWORD",
                        env_from(SECRET, "redis-password-secret", "password"),
                    ),
                    (
                        "CONFIGMAP",
                        env_from(CONFIGMAP, "special-config", "special.how"),
                    ),
                    (
                        "ResourceFieldRef",
                        env_from(RESOURCEFIELD, "my-container", "resource"),
                    ),
                    ("FieldRef", env_from(FIELD, "", "metadata.name")),
                ],
            )),
            volumes: vec![volume("cm", 3), secret],
            ..Default::default()
        }),
    );
    let options = &built["autoscalerOptions"];
    assert!(options.get("envFrom").is_none());
    assert_eq!(
        options["env"],
        json!([
            {"name": "AWS_KEY", "value": "123"},
            {"name": "CONFIGMAP", "valueFrom": {"configMapKeyRef": {"name": "special-config", "key": "special.how"}}},
            {"name": "FieldRef", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "REDIS_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "redis-password-secret", "key": "password"}}},
            {"name": "ResourceFieldRef", "valueFrom": {"resourceFieldRef": {"containerName": "my-container", "resource": "resource"}}}
        ])
    );
    assert_eq!(
        options["volumeMounts"],
        json!([
            {"name": "cm", "mountPath": "/mnt/cm"},
            {"name": "secret", "mountPath": "/mnt/secret", "readOnly": true, "mountPropagation": "HostToContainer"}
        ])
    );
    // The autoscaler's volumes add no pod volumes.
    assert!(
        built["headGroupSpec"]["template"]["spec"]
            .get("volumes")
            .is_none()
    );
}

#[test]
fn a_spec_without_head_is_rejected_not_a_panic() {
    let text = input_error(cluster::build_cluster_spec(
        &ClusterSpec::default(),
        &templates(&[template("t")]),
        "v",
        ClusterSpecOptions::default(),
    ));
    assert_eq!(
        text,
        "Cluster Spec Object requires HeadGroupSpec to be populated. Please specify one."
    );
    let mut c = cluster(spec(head(), vec![]));
    c.cluster_spec = None;
    input_error(cluster::to_ray_cluster(&c, &templates(&[]), CREATED_AT));
}
