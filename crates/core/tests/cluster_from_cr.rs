//! RayCluster -> API, rule by rule (docs/contract/conversion.md#raycluster-to-cluster), including
//! objects this server did not build.

mod common;

use common::*;
use kuberay_api::proto::{
    self, AutoscalerOptions, Capabilities, Cluster, ClusterEvent, EnvironmentVariables,
    HeadGroupSpec, SecurityContext, Volume, WorkerGroupSpec,
};
use kuberay_core::cluster::{
    ClusterView, cluster_spec_to_api, from_ray_cluster, service_endpoints,
};
use kuberay_core::crd::{RayCluster, RayClusterSpec, RayClusterStatus};
use serde_json::{Value, json};

fn container(name: &str) -> Value {
    json!({"name": name, "image": "img"})
}

fn group_template(containers: Vec<Value>) -> Value {
    json!({"spec": {"containers": containers}})
}

/// A minimal object as another client might have written it.
fn object(spec: Value) -> RayCluster {
    serde_json::from_value(json!({
        "apiVersion": "ray.io/v1",
        "kind": "RayCluster",
        "metadata": {
            "name": "c",
            "namespace": "ns",
            "creationTimestamp": "2024-07-25T00:00:00Z",
            "labels": {"ray.io/cluster-name": "c", "ray.io/user": "u"}
        },
        "spec": spec
    }))
    .unwrap()
}

fn head_only(template: Value) -> Value {
    json!({"headGroupSpec": {"rayStartParams": {}, "template": template}})
}

fn read(cluster: &RayCluster) -> Cluster {
    from_ray_cluster(cluster, Vec::new()).unwrap()
}

fn read_head(template: Value) -> HeadGroupSpec {
    read(&object(head_only(template)))
        .cluster_spec
        .unwrap()
        .head_group_spec
        .unwrap()
}

fn read_spec(spec: Value) -> proto::ClusterSpec {
    let spec: RayClusterSpec = serde_json::from_value(spec).unwrap();
    cluster_spec_to_api(&spec).unwrap()
}

fn read_error(spec: Value) -> String {
    data_error(from_ray_cluster(&object(spec), Vec::new()))
}

#[test]
fn object_level_fields() {
    let mut cluster = object(head_only(group_template(vec![container("ray-head")])));
    let metadata = &mut cluster.metadata;
    metadata.labels.as_mut().unwrap().extend(map(&[
        ("ray.io/version", "2.9.0"),
        ("ray.io/environment", "STAGING"),
    ]));
    metadata.annotations = Some(map(&[("a", "1"), ("ray.io/creation-timestamp", "t")]));
    cluster.spec.ray_version = Some("ignored".into());
    cluster.status = Some(RayClusterStatus {
        state: Some("ready".into()),
        endpoints: Some(map(&[("dashboard", "8265"), ("head", "10001")])),
        ..Default::default()
    });
    let api = read(&cluster);
    assert_eq!(api.name, "c");
    assert_eq!(api.namespace, "ns");
    assert_eq!(api.user, "u");
    assert_eq!(api.version, "2.9.0");
    assert_eq!(api.environment, 2);
    assert_eq!(api.cluster_state, "ready");
    assert_eq!(
        api.annotations,
        map(&[("a", "1"), ("ray.io/creation-timestamp", "t")])
    );
    assert_eq!(
        api.service_endpoint,
        map(&[("dashboard", "8265"), ("head", "10001")])
    );
    assert_eq!(
        api.created_at,
        Some(kuberay_api::Timestamp {
            seconds: 1_721_865_600,
            nanos: 0
        })
    );
    assert_eq!(api.envs, None);
    assert_eq!(api.deleted_at, None);
    assert!(api.events.is_empty());
}

#[test]
fn unknown_environment_labels_read_as_dev() {
    for label in ["7", "dev", ""] {
        let mut cluster = object(head_only(group_template(vec![container("ray-head")])));
        cluster
            .metadata
            .labels
            .as_mut()
            .unwrap()
            .insert("ray.io/environment".into(), label.into());
        assert_eq!(read(&cluster).environment, 0, "{label:?}");
    }
}

#[test]
fn creation_time_is_whole_seconds_or_go_zero() {
    let mut cluster = object(head_only(group_template(vec![container("ray-head")])));
    cluster.metadata.creation_timestamp =
        Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            "2024-07-25T00:00:00.75Z".parse().unwrap(),
        ));
    assert_eq!(read(&cluster).created_at.unwrap().seconds, 1_721_865_600);
    assert_eq!(read(&cluster).created_at.unwrap().nanos, 0);
    cluster.metadata.creation_timestamp = None;
    assert_eq!(read(&cluster).created_at.unwrap().seconds, -62_135_596_800);
}

#[test]
fn events_are_named_after_the_cluster_name_label() {
    let mut cluster = object(head_only(group_template(vec![container("ray-head")])));
    let event = ClusterEvent {
        id: "test-cluster.178817bd10374138".into(),
        name: "test-cluster.178817bd10374138".into(),
        reason: "Created".into(),
        ..Default::default()
    };
    cluster
        .metadata
        .labels
        .as_mut()
        .unwrap()
        .insert("ray.io/cluster-name".into(), "test-cluster".into());
    let api = from_ray_cluster(&cluster, vec![event.clone()]).unwrap();
    assert_eq!(
        api.events,
        vec![ClusterEvent {
            name: "test-cluster-test-cluster.178817bd10374138".into(),
            ..event.clone()
        }]
    );
    // Without the label, the prefix is empty (as in the Go server).
    cluster.metadata.labels = None;
    let api = from_ray_cluster(&cluster, vec![event]).unwrap();
    assert_eq!(api.events[0].name, "-test-cluster.178817bd10374138");
}

#[test]
fn a_view_answers_with_each_reads_events_only() {
    let mut cluster = object(head_only(group_template(vec![container("ray-head")])));
    cluster
        .metadata
        .labels
        .get_or_insert_default()
        .insert("ray.io/cluster-name".into(), "c".into());
    cluster.status = Some(RayClusterStatus {
        state: Some("ready".into()),
        ..Default::default()
    });
    let view = ClusterView::of(&cluster).unwrap();
    assert_eq!(view.state(), "ready");
    let event = |id: &str| ClusterEvent {
        id: id.into(),
        ..Default::default()
    };
    let first = view.with_events(vec![event("e1"), event("e2")]);
    let second = view.with_events(vec![event("e3")]);
    let names = |cluster: &kuberay_api::proto::Cluster| {
        cluster
            .events
            .iter()
            .map(|e| e.name.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&first), ["c-e1", "c-e2"]);
    assert_eq!(names(&second), ["c-e3"]);
    assert!(view.with_events(Vec::new()).events.is_empty());
    // Apart from events, the answer is the conversion of the object.
    assert_eq!(
        second,
        from_ray_cluster(&cluster, vec![event("e3")]).unwrap()
    );
    // An object that cannot be shown has no view, with the same error as a read.
    let broken = object(head_only(group_template(Vec::new())));
    assert_eq!(
        ClusterView::of(&broken).unwrap_err(),
        from_ray_cluster(&broken, Vec::new()).unwrap_err()
    );
}

#[test]
fn service_endpoints_copy_the_status() {
    assert!(service_endpoints(None).is_empty());
    assert!(service_endpoints(Some(&RayClusterStatus::default())).is_empty());
    let status = RayClusterStatus {
        endpoints: Some(map(&[("dashboard", "31476"), ("redis", "30736")])),
        ..Default::default()
    };
    assert_eq!(
        service_endpoints(Some(&status)),
        map(&[("dashboard", "31476"), ("redis", "30736")])
    );
}

#[test]
fn spec_level_fields() {
    let template = group_template(vec![container("ray-head")]);
    let spec = read_spec(json!({
        "headGroupSpec": {"template": template, "serviceType": "NodePort", "enableIngress": false},
        "headServiceAnnotations": {"a": "b"},
        "enableInTreeAutoscaling": false,
        "autoscalerOptions": {"idleTimeoutSeconds": 5}
    }));
    assert!(!spec.enable_in_tree_autoscaling);
    assert_eq!(spec.autoscaler_options, None);
    assert_eq!(spec.head_service_annotations, map(&[("a", "b")]));
    let head = spec.head_group_spec.unwrap();
    assert_eq!(head.service_type, "NodePort");
    assert!(!head.enable_ingress);
    assert!(head.ray_start_params.is_empty());
    assert!(spec.worker_group_spec.is_empty());

    let spec = read_spec(json!({
        "headGroupSpec": {"template": group_template(vec![container("ray-head")]), "enableIngress": true},
        "enableInTreeAutoscaling": true
    }));
    assert!(spec.enable_in_tree_autoscaling);
    assert_eq!(spec.autoscaler_options, None);
    assert!(spec.head_group_spec.unwrap().enable_ingress);
}

#[test]
fn hidden_annotations_and_labels() {
    let head = read_head(json!({
        "metadata": {
            "annotations": {
                "ray.io/compute-image": "img",
                "ray.io/compute-template": "t",
                "openshift.io/scc": "x",
                "cni.projectcalico.org/podIP": "x",
                "cni.projectcalico.org/podIPs": "x",
                "cni.projectcalico.org/containerID": "x",
                "ray.io/health-state": "x",
                "ray.io/ft-enabled": "true",
                "k8s.v1.cni.cncf.io/network-status": "x",
                "k8s.v1.cni.cncf.io/networks-status": "x",
                "custom": "value"
            },
            "labels": {
                "app.kubernetes.io/created-by": "kuberay-operator",
                "app.kubernetes.io/name": "kuberay",
                "ray.io/cluster": "c",
                "ray.io/cluster-dashboard": "c-dashboard",
                "ray.io/group": "headgroup",
                "ray.io/identifier": "c-head",
                "ray.io/is-ray-node": "yes",
                "ray.io/node-type": "head",
                "test": "value"
            }
        },
        "spec": {"containers": [container("ray-head")]}
    }));
    assert_eq!(head.image, "img");
    assert_eq!(head.compute_template, "t");
    assert_eq!(head.annotations, map(&[("custom", "value")]));
    assert_eq!(head.labels, map(&[("test", "value")]));

    let head = read_head(json!({
        "metadata": {"annotations": {"ray.io/compute-template": "t"}, "labels": {"ray.io/node-type": "head"}},
        "spec": {"containers": [container("ray-head")]}
    }));
    assert!(head.annotations.is_empty());
    assert!(head.labels.is_empty());
    assert_eq!(head.image, "");
}

#[test]
fn head_environment_skips_reserved_names() {
    let mut ray_head = container("ray-head");
    ray_head["env"] = json!([
        {"name": "MY_POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "RAY_CLUSTER_NAME", "value": "x"},
        {"name": "RAY_PORT", "value": "x"},
        {"name": "RAY_ADDRESS", "value": "x"},
        {"name": "RAY_USAGE_STATS_KUBERAY_IN_USE", "value": "1"},
        {"name": "REDIS_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
        {"name": "PLAIN", "value": "v"},
        {"name": "NO_VALUE"},
        {"name": "CM", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "k"}}},
        {"name": "RES", "valueFrom": {"resourceFieldRef": {"containerName": "ray-head", "resource": "limits.cpu"}}},
        {"name": "FIELD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "OTHER", "valueFrom": {}}
    ]);
    let head = read_head(group_template(vec![ray_head]));
    assert_eq!(
        head.environment,
        Some(envs(
            &[("PLAIN", "v"), ("NO_VALUE", "")],
            &[
                ("REDIS_PASSWORD", env_from(1, "s", "k")),
                ("CM", env_from(0, "cm", "k")),
                ("RES", env_from(2, "ray-head", "limits.cpu")),
                ("FIELD", env_from(3, "", "metadata.name")),
            ],
        ))
    );
}

#[test]
fn environment_presence() {
    // No env at all: absent. Only reserved names: present and empty.
    assert_eq!(
        read_head(group_template(vec![container("ray-head")])).environment,
        None
    );
    let mut ray_head = container("ray-head");
    ray_head["env"] = json!([{"name": "MY_POD_IP", "value": "x"}]);
    assert_eq!(
        read_head(group_template(vec![ray_head])).environment,
        Some(EnvironmentVariables::default())
    );
    // Only the container named ray-head counts.
    let mut sidecar = container("sidecar");
    sidecar["env"] = json!([{"name": "SIDE", "value": "x"}]);
    sidecar["imagePullPolicy"] = json!("Always");
    sidecar["securityContext"] = json!({"privileged": true});
    let mut ray_head = container("ray-head");
    ray_head["env"] = json!([{"name": "MINE", "value": "y"}]);
    let head = read_head(group_template(vec![sidecar, ray_head]));
    assert_eq!(head.environment, Some(envs(&[("MINE", "y")], &[])));
    assert_eq!(head.security_context, None);
    // imagePullPolicy comes from the first container, whatever its name.
    assert_eq!(head.image_pull_policy, "Always");
}

#[test]
fn worker_environment_hides_redis_password_and_fixed_variables() {
    let mut ray_worker = container("ray-worker");
    let reserved = [
        "RAY_DISABLE_DOCKER_CPU_WARNING",
        "TYPE",
        "CPU_REQUEST",
        "CPU_LIMITS",
        "MEMORY_REQUESTS",
        "MEMORY_LIMITS",
        "MY_POD_NAME",
        "MY_POD_IP",
        "FQ_RAY_IP",
        "RAY_IP",
        "RAY_CLUSTER_NAME",
        "RAY_PORT",
        "RAY_ADDRESS",
        "RAY_USAGE_STATS_KUBERAY_IN_USE",
        "REDIS_PASSWORD",
    ];
    let mut vars: Vec<Value> = reserved
        .iter()
        .map(|name| json!({"name": name, "value": "x"}))
        .collect();
    vars.push(json!({"name": "AWS_KEY", "value": "123"}));
    vars.push(json!({"name": "AWS_SECRET", "value": "1234"}));
    ray_worker["env"] = Value::Array(vars);
    let spec = read_spec(json!({
        "headGroupSpec": {"template": group_template(vec![container("ray-head")])},
        "workerGroupSpecs": [{
            "groupName": "wg", "replicas": 1, "minReplicas": 0, "maxReplicas": 5,
            "template": group_template(vec![ray_worker])
        }]
    }));
    let worker = &spec.worker_group_spec[0];
    assert_eq!(
        worker.environment,
        Some(envs(&[("AWS_KEY", "123"), ("AWS_SECRET", "1234")], &[]))
    );
    assert_eq!(
        (worker.replicas, worker.min_replicas, worker.max_replicas),
        (1, 0, 5)
    );
    assert_eq!(worker.group_name, "wg");
}

#[test]
fn pod_level_fields() {
    let mut ray_head = container("ray-head");
    ray_head["imagePullPolicy"] = json!("IfNotPresent");
    ray_head["securityContext"] = json!({"privileged": false});
    let head = read_head(json!({"spec": {
        "serviceAccountName": "x",
        "imagePullSecrets": [{"name": "y"}, {"name": "second"}],
        "containers": [ray_head]
    }}));
    assert_eq!(head.service_account, "");
    assert_eq!(head.image_pull_secret, "y");
    assert_eq!(head.image_pull_policy, "");
    assert_eq!(
        head.security_context,
        Some(SecurityContext {
            capabilities: Some(Capabilities::default()),
            privileged: Some(false),
        })
    );

    let mut ray_head = container("ray-head");
    ray_head["imagePullPolicy"] = json!("Always");
    ray_head["securityContext"] = json!({"capabilities": {"add": ["SYS_PTRACE"], "drop": ["ALL"]}});
    let head = read_head(json!({"spec": {
        "serviceAccountName": "account",
        "containers": [ray_head]
    }}));
    assert_eq!(head.service_account, "account");
    assert_eq!(head.image_pull_secret, "");
    assert_eq!(head.image_pull_policy, "Always");
    assert_eq!(
        head.security_context,
        Some(SecurityContext {
            capabilities: Some(Capabilities {
                add: vec!["SYS_PTRACE".into()],
                drop: vec!["ALL".into()],
            }),
            privileged: None,
        })
    );
}

/// A head pod template with a volume of every kind and option, one the API cannot express
/// (`downward`), and a sidecar mounting some of them.
fn every_volume_template() -> Value {
    let mut ray_head = container("ray-head");
    ray_head["volumeMounts"] = json!([
        {"name": "cm", "mountPath": "/cm", "readOnly": true, "mountPropagation": "HostToContainer"},
        {"name": "secret", "mountPath": "/secret"},
        {"name": "empty", "mountPath": "/empty"},
        {"name": "sized", "mountPath": "/sized"},
        {"name": "host", "mountPath": "/host", "readOnly": true, "mountPropagation": "Bidirectional"},
        {"name": "host-file", "mountPath": "/file", "mountPropagation": "None"},
        {"name": "host-other", "mountPath": "/other"},
        {"name": "pvc", "mountPath": "/pvc", "mountPropagation": "HostToContainer"},
        {"name": "eph", "mountPath": "/eph"},
        {"name": "eph-rox", "mountPath": "/eph-rox"}
    ]);
    let mut sidecar = container("sidecar");
    sidecar["volumeMounts"] = json!([
        {"name": "eph-bare", "mountPath": "/bare"},
        {"name": "cm", "mountPath": "/not-first"}
    ]);
    json!({"spec": {
        "containers": [ray_head, sidecar],
        "volumes": [
            {"name": "cm", "configMap": {"name": "config", "items": [{"key": "b", "path": "pb"}, {"key": "a", "path": "pa"}]}},
            {"name": "secret", "secret": {"secretName": "creds", "items": [{"key": "password", "path": "pw"}]}},
            {"name": "empty", "emptyDir": {}},
            {"name": "sized", "emptyDir": {"sizeLimit": "1024Mi"}},
            {"name": "host", "hostPath": {"path": "/opt"}},
            {"name": "host-file", "hostPath": {"path": "/etc/hosts", "type": "File"}},
            {"name": "host-other", "hostPath": {"path": "/dev/sda", "type": "BlockDevice"}},
            {"name": "pvc", "persistentVolumeClaim": {"claimName": "claim", "readOnly": true}},
            {"name": "eph", "ephemeral": {"volumeClaimTemplate": {"spec": {
                "accessModes": ["ReadWriteMany"], "storageClassName": "fast",
                "resources": {"requests": {"storage": "0.5Gi"}}
            }}}},
            {"name": "eph-rox", "ephemeral": {"volumeClaimTemplate": {"spec": {
                "accessModes": ["ReadOnlyMany", "ReadWriteOnce"],
                "resources": {"requests": {"storage": "5Gi"}}
            }}}},
            {"name": "eph-bare", "ephemeral": {"volumeClaimTemplate": {"spec": {}}}},
            {"name": "downward", "downwardAPI": {}}
        ]
    }})
}

#[test]
fn volumes_back() {
    let head = read_head(every_volume_template());
    let v = |name: &str, mount_path: &str, volume_type: i32| Volume {
        name: name.into(),
        mount_path: mount_path.into(),
        volume_type,
        ..Default::default()
    };
    assert_eq!(
        head.volumes,
        vec![
            Volume {
                source: "config".into(),
                items: map(&[("a", "pa"), ("b", "pb")]),
                ..v("cm", "/cm", 3)
            },
            Volume {
                source: "creds".into(),
                items: map(&[("password", "pw")]),
                ..v("secret", "/secret", 4)
            },
            v("empty", "/empty", 5),
            Volume {
                storage: "1Gi".into(),
                ..v("sized", "/sized", 5)
            },
            Volume {
                source: "/opt".into(),
                mount_propagation_mode: 2,
                ..v("host", "/host", 1)
            },
            Volume {
                source: "/etc/hosts".into(),
                host_path_type: 1,
                ..v("host-file", "/file", 1)
            },
            Volume {
                source: "/dev/sda".into(),
                ..v("host-other", "/other", 1)
            },
            Volume {
                source: "claim".into(),
                read_only: true,
                mount_propagation_mode: 1,
                ..v("pvc", "/pvc", 0)
            },
            Volume {
                access_mode: 2,
                storage: "512Mi".into(),
                storage_class_name: "fast".into(),
                ..v("eph", "/eph", 2)
            },
            Volume {
                access_mode: 1,
                storage: "5Gi".into(),
                ..v("eph-rox", "/eph-rox", 2)
            },
            Volume {
                storage: "0".into(),
                ..v("eph-bare", "/bare", 2)
            },
        ]
    );
}

#[test]
fn autoscaler_options_back() {
    let spec = read_spec(json!({
        "headGroupSpec": {"template": group_template(vec![container("ray-head")])},
        "enableInTreeAutoscaling": true,
        "autoscalerOptions": {
            "idleTimeoutSeconds": 60,
            "upscalingMode": "Aggressive",
            "image": "my/autoscaler",
            "imagePullPolicy": "IfNotPresent",
            "env": [
                {"name": "PLAIN", "value": "v"},
                {"name": "REF", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}
            ],
            "envFrom": [
                {"configMapRef": {"name": "cm"}},
                {"secretRef": {"name": "secret"}}
            ],
            "volumeMounts": [
                {"name": "v", "mountPath": "/v", "readOnly": true, "mountPropagation": "Bidirectional"}
            ],
            "resources": {"limits": {"cpu": "0.5"}, "requests": {"cpu": "1", "memory": "1Gi"}}
        }
    }));
    assert_eq!(
        spec.autoscaler_options,
        Some(AutoscalerOptions {
            idle_timeout_seconds: 60,
            upscaling_mode: "Aggressive".into(),
            image: "my/autoscaler".into(),
            image_pull_policy: "IfNotPresent".into(),
            cpu: "500m".into(),
            memory: "0".into(),
            envs: Some(envs(
                &[("PLAIN", "v")],
                &[
                    ("REF", env_from(1, "s", "k")),
                    ("0", env_from(0, "cm", "")),
                    ("1", env_from(1, "secret", "")),
                ],
            )),
            volumes: vec![Volume {
                name: "v".into(),
                mount_path: "/v".into(),
                read_only: true,
                mount_propagation_mode: 2,
                ..Default::default()
            }],
        })
    );

    // Empty limits: the requests are read.
    let spec = read_spec(json!({
        "headGroupSpec": {"template": group_template(vec![container("ray-head")])},
        "enableInTreeAutoscaling": true,
        "autoscalerOptions": {"resources": {"limits": {}, "requests": {"cpu": "1", "memory": "1024Mi"}}}
    }));
    let options = spec.autoscaler_options.unwrap();
    assert_eq!(
        (options.cpu.as_str(), options.memory.as_str()),
        ("1", "1Gi")
    );
    assert_eq!(options.envs, None);
}

// ---- objects the Go server would crash on -------------------------------------------------------

fn worker_json(fields: Value) -> Value {
    let mut worker = json!({
        "groupName": "wg", "replicas": 1, "minReplicas": 1, "maxReplicas": 1,
        "template": group_template(vec![container("ray-worker")])
    });
    for (k, v) in fields.as_object().unwrap() {
        if v.is_null() {
            worker.as_object_mut().unwrap().remove(k);
        } else {
            worker[k] = v.clone();
        }
    }
    worker
}

fn with_worker(worker: Value) -> Value {
    json!({
        "headGroupSpec": {"template": group_template(vec![container("ray-head")])},
        "workerGroupSpecs": [worker]
    })
}

#[test]
fn missing_worker_replicas_are_data_errors_naming_the_object() {
    for field in ["replicas", "minReplicas", "maxReplicas"] {
        let text = read_error(with_worker(worker_json(json!({field: null}))));
        assert!(text.starts_with("RayCluster ns/c: "), "{text}");
        assert!(text.contains(field), "{text}");
        assert!(text.contains("\"wg\""), "{text}");
    }
}

#[test]
fn a_pod_template_without_containers_is_a_data_error() {
    let text = read_error(head_only(json!({})));
    assert!(
        text.contains("head group pod template has no containers"),
        "{text}"
    );
    let text = read_error(with_worker(worker_json(
        json!({"template": {"spec": {"containers": []}}}),
    )));
    assert!(text.contains("has no containers"), "{text}");
}

#[test]
fn a_volume_without_mount_is_a_data_error_unless_its_kind_is_skipped() {
    let text = read_error(head_only(json!({"spec": {
        "containers": [container("ray-head")],
        "volumes": [{"name": "orphan", "emptyDir": {}}]
    }})));
    assert!(text.contains("orphan"), "{text}");
    // A kind the API cannot express is skipped before its mount is looked up.
    let head = read_head(json!({"spec": {
        "containers": [container("ray-head")],
        "volumes": [{"name": "downward", "downwardAPI": {}}]
    }}));
    assert!(head.volumes.is_empty());
}

#[test]
fn an_ephemeral_volume_without_claim_template_is_a_data_error() {
    let mut ray_head = container("ray-head");
    ray_head["volumeMounts"] = json!([{"name": "eph", "mountPath": "/eph"}]);
    let text = read_error(head_only(json!({"spec": {
        "containers": [ray_head],
        "volumes": [{"name": "eph", "ephemeral": {}}]
    }})));
    assert!(text.contains("eph"), "{text}");
}

#[test]
fn an_autoscaler_import_of_unknown_kind_is_a_data_error() {
    let text = read_error(json!({
        "headGroupSpec": {"template": group_template(vec![container("ray-head")])},
        "enableInTreeAutoscaling": true,
        "autoscalerOptions": {"envFrom": [{"configMapRef": {"name": "ok"}}, {"prefix": "X_"}]}
    }));
    assert!(text.contains("envFrom[1]"), "{text}");
}

#[test]
fn group_specs_read_the_same_for_workers() {
    let mut ray_worker = container("ray-worker");
    ray_worker["imagePullPolicy"] = json!("Always");
    ray_worker["env"] = json!([{"name": "TYPE", "value": "worker"}]);
    ray_worker["volumeMounts"] = json!([{"name": "pvc", "mountPath": "/pvc"}]);
    let spec = read_spec(with_worker(worker_json(json!({
        "rayStartParams": {"node-ip-address": "$MY_POD_IP"},
        "template": {
            "metadata": {
                "annotations": {"ray.io/compute-template": "t", "ray.io/compute-image": "img", "x": "y"},
                "labels": {"ray.io/group": "wg", "team": "ml"}
            },
            "spec": {
                "serviceAccountName": "sa",
                "imagePullSecrets": [{"name": "p"}],
                "containers": [ray_worker],
                "volumes": [{"name": "pvc", "persistentVolumeClaim": {"claimName": "claim"}}]
            }
        }
    }))));
    assert_eq!(
        spec.worker_group_spec,
        vec![WorkerGroupSpec {
            group_name: "wg".into(),
            compute_template: "t".into(),
            image: "img".into(),
            replicas: 1,
            min_replicas: 1,
            max_replicas: 1,
            ray_start_params: map(&[("node-ip-address", "$MY_POD_IP")]),
            volumes: vec![Volume {
                name: "pvc".into(),
                mount_path: "/pvc".into(),
                source: "claim".into(),
                ..Default::default()
            }],
            service_account: "sa".into(),
            image_pull_secret: "p".into(),
            environment: Some(EnvironmentVariables::default()),
            annotations: map(&[("x", "y")]),
            labels: map(&[("team", "ml")]),
            image_pull_policy: "Always".into(),
            security_context: None,
        }]
    );
}
