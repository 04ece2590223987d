//! API -> RayCluster -> API for every field, asserting the documented asymmetries
//! (docs/contract/conversion.md#what-does-not-round-trip) explicitly.

mod common;

use common::*;
use kuberay_api::proto::{
    AutoscalerOptions, Capabilities, Cluster, ClusterSpec, EnvironmentVariables, HeadGroupSpec,
    SecurityContext, Volume, WorkerGroupSpec,
};
use kuberay_core::cluster::{
    self, ClusterSpecOptions, build_cluster_spec, cluster_spec_to_api, from_ray_cluster,
};

fn round_trip(cluster: &Cluster) -> Cluster {
    let object = build_object(cluster);
    // Through JSON, as it is stored and read back.
    let stored = serde_json::from_value(serde_json::to_value(&object).unwrap()).unwrap();
    from_ray_cluster(&stored, Vec::new()).unwrap()
}

fn volume(name: &str, volume_type: i32) -> Volume {
    Volume {
        name: name.into(),
        mount_path: format!("/mnt/{name}"),
        volume_type,
        ..Default::default()
    }
}

/// One volume of each type, with every field its type keeps.
fn symmetric_volumes() -> Vec<Volume> {
    let mut pvc = volume("pvc", 0);
    pvc.source = "claim".into();
    pvc.read_only = true;
    pvc.mount_propagation_mode = 2;
    let mut host = volume("host", 1);
    host.source = "/opt".into();
    host.host_path_type = 1;
    host.mount_propagation_mode = 1;
    let mut eph = volume("eph", 2);
    eph.storage = "10Gi".into();
    eph.storage_class_name = "fast".into();
    eph.access_mode = 1;
    eph.mount_propagation_mode = 1;
    let mut cm = volume("cm", 3);
    cm.source = "config".into();
    cm.items = map(&[("k", "p")]);
    let mut secret = volume("secret", 4);
    secret.source = "creds".into();
    secret.items = map(&[("password", "pw")]);
    let mut empty = volume("empty", 5);
    empty.storage = "1Gi".into();
    vec![pvc, host, eph, cm, secret, empty]
}

/// Autoscaler options using every field.
fn symmetric_autoscaler() -> AutoscalerOptions {
    let mut autoscaler_volume = volume("scratch", 0);
    autoscaler_volume.read_only = true;
    autoscaler_volume.mount_propagation_mode = 1;
    AutoscalerOptions {
        idle_timeout_seconds: 30,
        upscaling_mode: "Default".into(),
        image: "my/autoscaler".into(),
        image_pull_policy: "Always".into(),
        cpu: "300m".into(),
        memory: "1Gi".into(),
        envs: Some(envs(
            &[("AWS_KEY", "123")],
            &[
                ("REDIS_PASSWORD", env_from(1, "redis", "password")),
                ("CONFIG", env_from(0, "config", "k")),
                ("RES", env_from(2, "autoscaler", "limits.cpu")),
                ("FIELD", env_from(3, "", "metadata.name")),
            ],
        )),
        volumes: vec![autoscaler_volume],
    }
}

/// A request using every field, with values that read back unchanged.
fn symmetric_cluster() -> Cluster {
    let security_context = SecurityContext {
        capabilities: Some(Capabilities {
            add: vec!["SYS_PTRACE".into()],
            drop: vec!["ALL".into()],
        }),
        privileged: Some(true),
    };
    let head = HeadGroupSpec {
        compute_template: "t".into(),
        image: "my/ray:1".into(),
        service_type: "NodePort".into(),
        enable_ingress: true,
        ray_start_params: map(&[("num-cpus", "0"), ("dashboard-host", "0.0.0.0")]),
        volumes: symmetric_volumes(),
        service_account: "account".into(),
        image_pull_secret: "pull".into(),
        environment: Some(envs(
            &[("A", "1")],
            &[
                ("C", env_from(0, "cm", "key")),
                ("F", env_from(3, "", "metadata.name")),
                ("R", env_from(2, "ray-head", "limits.cpu")),
                ("S", env_from(1, "secret", "key")),
            ],
        )),
        annotations: map(&[("note", "x")]),
        labels: map(&[("team", "ml")]),
        image_pull_policy: "Always".into(),
        security_context: Some(security_context.clone()),
    };
    let worker = WorkerGroupSpec {
        group_name: "wg".into(),
        compute_template: "t".into(),
        image: "my/ray:1".into(),
        replicas: 2,
        min_replicas: 1,
        max_replicas: 5,
        ray_start_params: map(&[("node-ip-address", "$MY_POD_IP")]),
        volumes: vec![volume("pvc-2", 0)],
        service_account: "account".into(),
        image_pull_secret: "pull".into(),
        environment: Some(envs(&[("W", "1")], &[("WS", env_from(1, "s", "k"))])),
        annotations: map(&[("note", "y")]),
        labels: map(&[("team", "ml")]),
        image_pull_policy: "Always".into(),
        security_context: Some(security_context),
    };
    let spec = ClusterSpec {
        head_group_spec: Some(head),
        worker_group_spec: vec![worker],
        enable_in_tree_autoscaling: true,
        autoscaler_options: Some(symmetric_autoscaler()),
        head_service_annotations: map(&[("svc", "annotation")]),
    };
    Cluster {
        name: "c".into(),
        namespace: "ns".into(),
        user: "u".into(),
        version: "2.9.0".into(),
        environment: 2,
        cluster_spec: Some(spec),
        annotations: map(&[("ray.io/ft-enabled", "true")]),
        ..Default::default()
    }
}

#[test]
fn every_symmetric_field_comes_back_unchanged() {
    let request = symmetric_cluster();
    let response = round_trip(&request);
    let mut expected = request.clone();
    // Server-added and output-only fields.
    expected
        .annotations
        .insert("ray.io/creation-timestamp".into(), CREATED_AT.into());
    expected.created_at = response.created_at;
    // With our fix, autoscaler references come back by variable name (the Go server reads back
    // envFrom entries keyed "0", "1", ... and loses RESOURCEFIELD/FIELD).
    assert_eq!(response, expected);
}

#[test]
fn embedded_spec_round_trips_for_jobs_and_services() {
    let spec = symmetric_cluster().cluster_spec.unwrap();
    for serve_ports in [false, true] {
        let built = build_cluster_spec(
            &spec,
            &templates(&[template("t")]),
            "2.9.0",
            ClusterSpecOptions {
                cluster_envs: None,
                serve_ports,
            },
        )
        .unwrap();
        assert_eq!(built.ray_version.as_deref(), Some("2.9.0"));
        assert_eq!(cluster_spec_to_api(&built).unwrap(), spec);
    }
}

/// A request whose values do not all read back as sent (the comments say how each changes).
fn asymmetric_request() -> Cluster {
    let mut request = cluster(spec(head(), vec![]));
    // cluster.envs: merged into each group's environment, never returned as envs.
    request.envs = Some(envs(
        &[("CLUSTER", "1")],
        &[("TOKEN", env_from(1, "s", "k"))],
    ));
    let spec = request.cluster_spec.as_mut().unwrap();
    spec.worker_group_spec = vec![WorkerGroupSpec {
        // minReplicas 0 with replicas N reads back as N; image omitted reads back empty.
        replicas: 3,
        min_replicas: 0,
        max_replicas: 5,
        // A user REDIS_PASSWORD on a worker is hidden.
        environment: Some(envs(&[("REDIS_PASSWORD", "pw"), ("KEEP", "1")], &[])),
        // One-character service account and pull secret are dropped when written.
        service_account: "a".into(),
        image_pull_secret: "p".into(),
        // IfNotPresent is not echoed.
        image_pull_policy: "IfNotPresent".into(),
        ..worker("wg")
    }];
    let head = spec.head_group_spec.as_mut().unwrap();
    // Volume readOnly is lost except for PVCs; propagation is lost for configMap/secret/emptyDir.
    let mut cm = volume("cm", 3);
    cm.read_only = true;
    cm.mount_propagation_mode = 1;
    cm.source = "config".into();
    let mut secret = volume("secret", 4);
    secret.read_only = true;
    secret.mount_propagation_mode = 2;
    secret.source = "creds".into();
    let mut empty = volume("empty", 5);
    empty.read_only = true;
    empty.mount_propagation_mode = 1;
    // Quantities come back in canonical form.
    empty.storage = "1024Mi".into();
    let mut host = volume("host", 1);
    host.read_only = true;
    host.source = "/opt".into();
    let mut eph = volume("eph", 2);
    eph.read_only = true;
    eph.storage = "0.5Gi".into();
    // Fields that do not belong to the volume type are dropped.
    let mut pvc = volume("pvc", 0);
    pvc.source = "claim".into();
    pvc.storage = "1Gi".into();
    pvc.items = map(&[("k", "p")]);
    head.volumes = vec![cm, secret, empty, host, eph, pvc];
    head.service_account = "s".into();
    spec.enable_in_tree_autoscaling = true;
    spec.autoscaler_options = Some(AutoscalerOptions {
        // IfNotPresent is dropped; quantities canonical, the missing one defaulted.
        image_pull_policy: "IfNotPresent".into(),
        cpu: "0.5".into(),
        // Volumes come back as mounts only (no type or source).
        volumes: vec![Volume {
            source: "claim".into(),
            volume_type: 3,
            ..volume("v", 3)
        }],
        ..Default::default()
    });
    request
}

#[test]
fn documented_asymmetries() {
    let request = asymmetric_request();
    let response = round_trip(&request);
    assert_eq!(response.envs, None);
    assert_eq!(response.deleted_at, None);
    let spec = response.cluster_spec.unwrap();
    let head = spec.head_group_spec.unwrap();
    assert_eq!(head.image, "");
    assert_eq!(head.service_account, "");
    assert_eq!(head.image_pull_policy, "");
    assert_eq!(
        head.environment,
        Some(envs(
            &[("CLUSTER", "1")],
            &[("TOKEN", env_from(1, "s", "k"))]
        ))
    );
    assert_eq!(
        head.volumes,
        vec![
            Volume {
                source: "config".into(),
                ..volume("cm", 3)
            },
            Volume {
                source: "creds".into(),
                ..volume("secret", 4)
            },
            Volume {
                storage: "1Gi".into(),
                ..volume("empty", 5)
            },
            Volume {
                source: "/opt".into(),
                ..volume("host", 1)
            },
            Volume {
                storage: "512Mi".into(),
                ..volume("eph", 2)
            },
            Volume {
                source: "claim".into(),
                ..volume("pvc", 0)
            },
        ]
    );
    let worker = &spec.worker_group_spec[0];
    assert_eq!(worker.image, "");
    assert_eq!(
        (worker.replicas, worker.min_replicas, worker.max_replicas),
        (3, 3, 5)
    );
    assert_eq!(
        worker.environment,
        Some(envs(
            &[("CLUSTER", "1"), ("KEEP", "1")],
            &[("TOKEN", env_from(1, "s", "k"))]
        ))
    );
    assert_eq!(worker.service_account, "");
    assert_eq!(worker.image_pull_secret, "");
    assert_eq!(worker.image_pull_policy, "");
    assert_eq!(
        spec.autoscaler_options,
        Some(AutoscalerOptions {
            cpu: "500m".into(),
            memory: "512Mi".into(),
            volumes: vec![Volume {
                name: "v".into(),
                mount_path: "/mnt/v".into(),
                ..Default::default()
            }],
            ..Default::default()
        })
    );
}

#[test]
fn version_comes_from_the_label_and_the_pull_secret_is_read_whatever_its_length() {
    let mut object = build_object(&cluster(spec(head(), vec![])));
    object.spec.ray_version = Some("3.0.0".into());
    let pod = object.spec.head_group_spec.template.spec.as_mut().unwrap();
    pod.image_pull_secrets = Some(vec![k8s_openapi::api::core::v1::LocalObjectReference {
        name: "p".into(),
    }]);
    let response = from_ray_cluster(&object, Vec::new()).unwrap();
    assert_eq!(response.version, "2.9.0");
    let head = response.cluster_spec.unwrap().head_group_spec.unwrap();
    assert_eq!(head.image_pull_secret, "p");
    // API-built groups always carry fixed variables, so the environment is at least {}.
    assert_eq!(head.environment, Some(EnvironmentVariables::default()));
}

#[test]
fn stored_objects_keep_unknown_fields_through_read_modify_write() {
    let object = build_object(&cluster(spec(head(), vec![worker("wg")])));
    let mut json = serde_json::to_value(&object).unwrap();
    json["spec"]["gcsFaultToleranceOptions"] = serde_json::json!({"redisAddress": "r:6379"});
    json["spec"]["workerGroupSpecs"][0]["numOfHosts"] = serde_json::json!(2);
    json["status"] = serde_json::json!({"state": "ready", "desiredCPU": "4"});
    let read: kuberay_core::crd::RayCluster = serde_json::from_value(json.clone()).unwrap();
    assert_eq!(serde_json::to_value(&read).unwrap(), json);
    // And they do not disturb the conversion.
    assert_eq!(
        cluster::from_ray_cluster(&read, Vec::new())
            .unwrap()
            .cluster_spec,
        cluster::from_ray_cluster(&object, Vec::new())
            .unwrap()
            .cluster_spec
    );
}
