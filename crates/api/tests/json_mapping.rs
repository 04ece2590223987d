//! Pins the proto3-JSON mapping the HTTP gateway relies on (docs/contract/api.md#json-mapping).
//! Where the generated `pbjson` code differs from the reference gateway (protobuf-go `protojson`),
//! the test is named `deviation_*` and asserts the actual behaviour.

use std::collections::BTreeMap;

use kuberay_api::Timestamp;
use kuberay_api::proto::{
    Capabilities, Cluster, ClusterSpec, ComputeTemplate, CreateComputeTemplateRequest,
    EnvValueFrom, EnvironmentVariables, GetJobLogReply, HeadGroupSpec, JobSubmissionInfo,
    ListAllComputeTemplatesRequest, ListClustersRequest, ListClustersResponse,
    ListRayServicesRequest, ListRayServicesResponse, PodToleration, RayJob, RayJobSubmission,
    RayService, RayServiceStatus, SecurityContext, SubmitRayJobReply, SubmitRayJobRequest, Volume,
    WorkerGroupSpec, cluster, env_value_from, volume,
};
use pbjson_types::Empty;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

fn to_json<T: Serialize>(msg: &T) -> String {
    serde_json::to_string(msg).expect("serialize")
}

fn to_value<T: Serialize>(msg: &T) -> Value {
    serde_json::to_value(msg).expect("serialize")
}

fn parse<T: DeserializeOwned>(text: &str) -> T {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{text} should parse: {e}"))
}

fn parse_err<T: DeserializeOwned + std::fmt::Debug>(text: &str) -> String {
    match serde_json::from_str::<T>(text) {
        Ok(v) => panic!("{text} should be rejected, got {v:?}"),
        Err(e) => e.to_string(),
    }
}

fn full_compute_template() -> ComputeTemplate {
    ComputeTemplate {
        name: "t".into(),
        namespace: "ns".into(),
        cpu: 2,
        memory: 4,
        gpu: 1,
        gpu_accelerator: "nvidia.com/gpu".into(),
        tolerations: vec![PodToleration {
            key: "k".into(),
            operator: "Exists".into(),
            value: String::new(),
            effect: "NoSchedule".into(),
        }],
        extended_resources: BTreeMap::from([("b".into(), 2), ("a".into(), 1)]),
        memory_unit: "Gi".into(),
    }
}

// ---- output -------------------------------------------------------------------------------

#[test]
fn full_compute_template_renders_exactly() {
    assert_eq!(
        to_json(&full_compute_template()),
        r#"{"name":"t","namespace":"ns","cpu":2,"memory":4,"gpu":1,"gpuAccelerator":"nvidia.com/gpu","tolerations":[{"key":"k","operator":"Exists","effect":"NoSchedule"}],"extendedResources":{"a":1,"b":2},"memoryUnit":"Gi"}"#
    );
}

#[test]
fn output_uses_lower_camel_json_names() {
    let mut req = CreateComputeTemplateRequest {
        compute_template: Some(full_compute_template()),
        namespace: "ns".into(),
    };
    let v = to_value(&req);
    assert!(v.get("computeTemplate").is_some());
    assert!(v.get("compute_template").is_none());
    req.compute_template = None;
    assert_eq!(to_json(&req), r#"{"namespace":"ns"}"#);

    let svc = RayService {
        serve_config_v2: "applications: []".into(),
        cluster_spec: Some(ClusterSpec {
            enable_in_tree_autoscaling: true,
            head_service_annotations: BTreeMap::from([("a".into(), "b".into())]),
            ..Default::default()
        }),
        ..Default::default()
    };
    assert_eq!(
        to_json(&svc),
        r#"{"serveConfigV2":"applications: []","clusterSpec":{"enableInTreeAutoscaling":true,"headServiceAnnotations":{"a":"b"}}}"#
    );

    let list = ListRayServicesResponse {
        next_page_token: "tok".into(),
        ..Default::default()
    };
    assert_eq!(to_json(&list), r#"{"nextPageToken":"tok"}"#);

    let clusters = ListClustersResponse {
        clusters: vec![],
        r#continue: "c".into(),
    };
    assert_eq!(to_json(&clusters), r#"{"continue":"c"}"#);

    let submit = SubmitRayJobRequest {
        namespace: "ns".into(),
        clustername: "c".into(),
        jobsubmission: Some(Default::default()),
    };
    assert_eq!(
        to_json(&submit),
        r#"{"namespace":"ns","clustername":"c","jobsubmission":{}}"#
    );
}

#[test]
fn output_follows_declaration_order_not_field_numbers() {
    let job = RayJob {
        name: "j".into(),
        namespace: "ns".into(),
        user: "u".into(),
        version: "2.9.0".into(),
        entrypoint: "python x.py".into(),
        active_deadline_seconds: 5,
        created_at: Some(Timestamp {
            seconds: 1,
            nanos: 0,
        }),
        ray_cluster_name: "rc".into(),
        ..Default::default()
    };
    let text = to_json(&job);
    let keys: Vec<String> = parse::<serde_json::Map<String, Value>>(&text)
        .keys()
        .cloned()
        .collect();
    // serde_json's Map is sorted here, so check positions in the text instead.
    let pos = |k: &str| text.find(&format!("\"{k}\"")).unwrap();
    assert!(pos("user") < pos("version"));
    assert!(pos("version") < pos("entrypoint"));
    assert!(pos("activeDeadlineSeconds") < pos("createdAt"));
    assert!(pos("createdAt") < pos("rayClusterName"));
    assert_eq!(keys.len(), 8);

    let svc = RayService {
        name: "s".into(),
        user: "u".into(),
        version: "v".into(),
        serve_config_v2: "x".into(),
        cluster_spec: Some(ClusterSpec::default()),
        ray_service_status: Some(RayServiceStatus::default()),
        ..Default::default()
    };
    assert_eq!(
        to_json(&svc),
        r#"{"name":"s","user":"u","version":"v","serveConfigV2":"x","clusterSpec":{},"rayServiceStatus":{}}"#
    );
}

#[test]
fn enums_render_as_numbers() {
    let c = Cluster {
        name: "c".into(),
        environment: cluster::Environment::Testing as i32,
        ..Default::default()
    };
    assert_eq!(to_json(&c), r#"{"name":"c","environment":1}"#);

    let v = Volume {
        volume_type: volume::VolumeType::Configmap as i32,
        host_path_type: volume::HostPathType::File as i32,
        mount_propagation_mode: volume::MountPropagationMode::Bidirectional as i32,
        access_mode: volume::AccessMode::Rwx as i32,
        ..Default::default()
    };
    assert_eq!(
        to_json(&v),
        r#"{"volumeType":3,"hostPathType":1,"mountPropagationMode":2,"accessMode":2}"#
    );

    let e = EnvValueFrom {
        source: env_value_from::Source::Secret as i32,
        name: "s".into(),
        key: "k".into(),
    };
    assert_eq!(to_json(&e), r#"{"source":1,"name":"s","key":"k"}"#);
}

#[test]
fn enum_zero_values_are_omitted() {
    let v = Volume {
        name: "v".into(),
        volume_type: volume::VolumeType::PersistentVolumeClaim as i32,
        ..Default::default()
    };
    assert_eq!(to_json(&v), r#"{"name":"v"}"#);
    let c = Cluster {
        environment: cluster::Environment::Dev as i32,
        ..Default::default()
    };
    assert_eq!(to_json(&c), "{}");
}

#[test]
fn sixty_four_bit_integers_render_as_strings() {
    let info = JobSubmissionInfo {
        submission_id: "raysubmit_1".into(),
        start_time: 1_700_000_000_123,
        end_time: u64::MAX,
        ..Default::default()
    };
    assert_eq!(
        to_json(&info),
        r#"{"submissionId":"raysubmit_1","startTime":"1700000000123","endTime":"18446744073709551615"}"#
    );
    let req = ListClustersRequest {
        namespace: "ns".into(),
        r#continue: String::new(),
        limit: -5,
    };
    assert_eq!(to_json(&req), r#"{"namespace":"ns","limit":"-5"}"#);
}

#[test]
fn thirty_two_bit_integers_render_as_numbers() {
    let w = WorkerGroupSpec {
        replicas: 3,
        min_replicas: -1,
        ..Default::default()
    };
    assert_eq!(to_json(&w), r#"{"replicas":3,"minReplicas":-1}"#);
    let req = ListRayServicesRequest {
        page_size: 10,
        ..Default::default()
    };
    assert_eq!(to_json(&req), r#"{"pageSize":10}"#);
}

#[test]
fn zero_values_and_empty_collections_are_omitted() {
    assert_eq!(to_json(&Cluster::default()), "{}");
    assert_eq!(to_json(&ListClustersResponse::default()), "{}");
    assert_eq!(to_json(&GetJobLogReply::default()), "{}");
    assert_eq!(to_json(&SubmitRayJobReply::default()), "{}");
    assert_eq!(to_json(&ListRayServicesResponse::default()), "{}");
    assert_eq!(to_json(&ListAllComputeTemplatesRequest::default()), "{}");
    let h = HeadGroupSpec {
        compute_template: "t".into(),
        enable_ingress: false,
        ray_start_params: BTreeMap::new(),
        volumes: vec![],
        ..Default::default()
    };
    assert_eq!(to_json(&h), r#"{"computeTemplate":"t"}"#);
}

#[test]
fn set_but_empty_sub_messages_render_as_empty_objects() {
    let h = HeadGroupSpec {
        environment: Some(EnvironmentVariables::default()),
        security_context: Some(SecurityContext {
            capabilities: Some(Capabilities::default()),
            privileged: None,
        }),
        ..Default::default()
    };
    assert_eq!(
        to_json(&h),
        r#"{"environment":{},"securityContext":{"capabilities":{}}}"#
    );
}

#[test]
fn optional_bool_renders_when_set_even_if_false() {
    let mut sc = SecurityContext {
        capabilities: None,
        privileged: Some(false),
    };
    assert_eq!(to_json(&sc), r#"{"privileged":false}"#);
    sc.privileged = Some(true);
    assert_eq!(to_json(&sc), r#"{"privileged":true}"#);
    sc.privileged = None;
    assert_eq!(to_json(&sc), "{}");
    // And it keeps presence on input.
    assert_eq!(
        parse::<SecurityContext>(r#"{"privileged":false}"#).privileged,
        Some(false)
    );
    assert_eq!(parse::<SecurityContext>("{}").privileged, None);
}

#[test]
fn maps_render_sorted_and_message_values_as_objects() {
    let env = EnvironmentVariables {
        values: BTreeMap::from([("Z".into(), "1".into()), ("A".into(), "2".into())]),
        values_from: BTreeMap::from([(
            "X".into(),
            EnvValueFrom {
                source: env_value_from::Source::Field as i32,
                name: String::new(),
                key: "metadata.name".into(),
            },
        )]),
    };
    assert_eq!(
        to_json(&env),
        r#"{"values":{"A":"2","Z":"1"},"valuesFrom":{"X":{"source":3,"key":"metadata.name"}}}"#
    );
}

#[test]
fn timestamp_parses_rfc3339_input() {
    let c: Cluster = parse(r#"{"createdAt":"2023-09-25T10:48:35Z"}"#);
    assert_eq!(
        c.created_at,
        Some(Timestamp {
            seconds: 1_695_638_915,
            nanos: 0
        })
    );
    assert!(parse_err::<Cluster>(r#"{"createdAt":"yesterday"}"#).contains("Timestamp"));
}

/// Timestamps render as protojson does: UTC with `Z`, a fraction only when non-zero.
#[test]
fn timestamps_render_with_z() {
    let ts = |seconds| Cluster {
        created_at: Some(Timestamp { seconds, nanos: 0 }),
        ..Default::default()
    };
    assert_eq!(
        to_json(&ts(1_695_638_915)),
        r#"{"createdAt":"2023-09-25T10:48:35Z"}"#
    );
    assert_eq!(
        to_json(&ts(-62_135_596_800)),
        r#"{"createdAt":"0001-01-01T00:00:00Z"}"#
    );
    assert_eq!(to_json(&ts(-1)), r#"{"createdAt":"1969-12-31T23:59:59Z"}"#);
    let frac = Cluster {
        created_at: Some(Timestamp {
            seconds: 1,
            nanos: 500_000_000,
        }),
        ..Default::default()
    };
    assert_eq!(
        to_json(&frac),
        r#"{"createdAt":"1970-01-01T00:00:01.500Z"}"#
    );
}

#[test]
fn empty_renders_as_empty_object() {
    assert_eq!(to_json(&Empty {}), "{}");
    let _: Empty = parse("{}");
}

#[test]
fn floats_render_as_numbers() {
    let job = RayJob {
        entrypoint_num_cpus: 0.5,
        entrypoint_num_gpus: 2.5,
        ..Default::default()
    };
    assert_eq!(
        to_json(&job),
        r#"{"entrypointNumCpus":0.5,"entrypointNumGpus":2.5}"#
    );
}

/// DEVIATION (docs/contract/api.md#json-output): protojson writes the shortest form (`1`) and
/// `"NaN"`/`"Infinity"`; serde_json writes integral floats as `1.0` (same number once parsed) and
/// non-finite floats as `null`.
#[test]
fn deviation_float_rendering() {
    let mut job = RayJob {
        entrypoint_num_cpus: 1.0,
        ..Default::default()
    };
    assert_eq!(to_json(&job), r#"{"entrypointNumCpus":1.0}"#);
    assert_eq!(to_value(&job), json!({"entrypointNumCpus": 1.0}));
    job.entrypoint_num_cpus = f32::NAN;
    assert_eq!(to_json(&job), r#"{"entrypointNumCpus":null}"#);
    job.entrypoint_num_cpus = f32::INFINITY;
    assert_eq!(to_json(&job), r#"{"entrypointNumCpus":null}"#);
}

// ---- input --------------------------------------------------------------------------------

#[test]
fn input_accepts_json_and_proto_names() {
    let by_json: CreateComputeTemplateRequest =
        parse(r#"{"computeTemplate":{"name":"t","gpuAccelerator":"g","memoryUnit":"Mi"}}"#);
    let by_proto: CreateComputeTemplateRequest =
        parse(r#"{"compute_template":{"name":"t","gpu_accelerator":"g","memory_unit":"Mi"}}"#);
    assert_eq!(by_json, by_proto);
    assert_eq!(by_json.compute_template.as_ref().unwrap().memory_unit, "Mi");

    let svc: RayService = parse(
        r#"{"serve_config_V2":"a","cluster_spec":{"head_group_spec":{"ray_start_params":{"x":"y"}}}}"#,
    );
    assert_eq!(svc.serve_config_v2, "a");
    let svc2: RayService = parse(
        r#"{"serveConfigV2":"a","clusterSpec":{"headGroupSpec":{"rayStartParams":{"x":"y"}}}}"#,
    );
    assert_eq!(svc, svc2);

    let req: ListRayServicesRequest = parse(r#"{"page_token":"p","pageSize":3}"#);
    assert_eq!(req.page_token, "p");
    assert_eq!(req.page_size, 3);
}

#[test]
fn both_spellings_of_one_field_are_rejected() {
    let err = parse_err::<CreateComputeTemplateRequest>(
        r#"{"computeTemplate":{},"compute_template":{}}"#,
    );
    assert!(err.contains("duplicate field"), "{err}");
    let err = parse_err::<ComputeTemplate>(r#"{"memoryUnit":"Gi","memory_unit":"Mi"}"#);
    assert!(err.contains("duplicate field"), "{err}");
    let err = parse_err::<ComputeTemplate>(r#"{"name":"a","name":"b"}"#);
    assert!(err.contains("duplicate field"), "{err}");
}

#[test]
fn enums_accept_names_or_numbers() {
    assert_eq!(
        parse::<Cluster>(r#"{"environment":"TESTING"}"#).environment,
        cluster::Environment::Testing as i32
    );
    assert_eq!(
        parse::<Cluster>(r#"{"environment":3}"#).environment,
        cluster::Environment::Production as i32
    );
    let v: Volume = parse(r#"{"volume_type":"HOST_PATH","accessMode":"ROX","hostPathType":1}"#);
    assert_eq!(v.volume_type, volume::VolumeType::HostPath as i32);
    assert_eq!(v.access_mode, volume::AccessMode::Rox as i32);
    assert_eq!(v.host_path_type, volume::HostPathType::File as i32);
}

#[test]
fn unknown_enum_name_is_ignored() {
    // Matches protojson with DiscardUnknown: the field stays 0.
    let c: Cluster = parse(r#"{"name":"c","environment":"NOT_AN_ENV"}"#);
    assert_eq!(c.name, "c");
    assert_eq!(c.environment, 0);
}

/// DEVIATION (docs/contract/api.md#json-input): protojson keeps an unknown enum *number* as is
/// (open enums); the generated code maps it to the default value 0. An unknown number that is set
/// on a message by code cannot be serialized at all.
#[test]
fn deviation_unknown_enum_number_becomes_zero() {
    let c: Cluster = parse(r#"{"environment":7}"#);
    assert_eq!(c.environment, 0);
    let bad = Cluster {
        environment: 7,
        ..Default::default()
    };
    let err = serde_json::to_string(&bad).unwrap_err().to_string();
    assert!(err.contains("Invalid variant 7"), "{err}");
}

#[test]
fn sixty_four_bit_integers_accept_numbers_or_strings() {
    assert_eq!(parse::<ListClustersRequest>(r#"{"limit":5}"#).limit, 5);
    assert_eq!(parse::<ListClustersRequest>(r#"{"limit":"5"}"#).limit, 5);
    assert_eq!(
        parse::<ListClustersRequest>(r#"{"limit":"9223372036854775807"}"#).limit,
        i64::MAX
    );
    assert_eq!(
        parse::<JobSubmissionInfo>(r#"{"startTime":1700000000123,"end_time":"1700000000124"}"#)
            .end_time,
        1_700_000_000_124
    );
    parse_err::<ListClustersRequest>(r#"{"limit":"abc"}"#);
    parse_err::<ListClustersRequest>(r#"{"limit":"9223372036854775808"}"#);
}

#[test]
fn thirty_two_bit_integers_accept_numbers_or_strings_and_check_range() {
    assert_eq!(parse::<ComputeTemplate>(r#"{"cpu":2}"#).cpu, 2);
    assert_eq!(parse::<ComputeTemplate>(r#"{"cpu":"5"}"#).cpu, 5);
    assert_eq!(
        parse::<ComputeTemplate>(r#"{"extendedResources":{"a":"3","b":4}}"#).extended_resources,
        BTreeMap::from([("a".into(), 3), ("b".into(), 4)])
    );
    parse_err::<ComputeTemplate>(r#"{"cpu":1.5}"#);
    parse_err::<ComputeTemplate>(r#"{"cpu":-1}"#);
    parse_err::<ComputeTemplate>(r#"{"cpu":4294967296}"#);
    parse_err::<WorkerGroupSpec>(r#"{"replicas":2147483648}"#);
}

/// DEVIATION (docs/contract/api.md#json-input): protojson accepts integral numbers written with a
/// fraction or an exponent (`2.0`, `1e1`); the generated code rejects them.
#[test]
fn deviation_integral_float_forms_rejected() {
    parse_err::<ComputeTemplate>(r#"{"cpu":2.0}"#);
    parse_err::<ComputeTemplate>(r#"{"cpu":1e1}"#);
    parse_err::<ListClustersRequest>(r#"{"limit":1e3}"#);
}

#[test]
fn floats_accept_numbers_strings_and_special_values() {
    let j: RayJob = parse(r#"{"entrypointNumCpus":2,"entrypointNumGpus":"0.5"}"#);
    assert_eq!(j.entrypoint_num_cpus, 2.0);
    assert_eq!(j.entrypoint_num_gpus, 0.5);
    assert!(
        parse::<RayJob>(r#"{"entrypointNumCpus":"NaN"}"#)
            .entrypoint_num_cpus
            .is_nan()
    );
    assert_eq!(
        parse::<RayJob>(r#"{"entrypointNumCpus":"Infinity"}"#).entrypoint_num_cpus,
        f32::INFINITY
    );
    assert_eq!(
        parse::<RayJobSubmission>(r#"{"entrypoint_num_cpus":"-Infinity"}"#).entrypoint_num_cpus,
        f32::NEG_INFINITY
    );
    // RayJob's proto name is already camelCase, so the snake_case spelling is an unknown key.
    assert_eq!(
        parse::<RayJob>(r#"{"entrypoint_num_cpus":1}"#).entrypoint_num_cpus,
        0.0
    );
}

#[test]
fn strict_scalar_types() {
    parse_err::<HeadGroupSpec>(r#"{"enableIngress":"true"}"#);
    parse_err::<HeadGroupSpec>(r#"{"labels":{"a":1}}"#);
    parse_err::<Cluster>(r#"{"name":5}"#);
}

#[test]
fn unknown_fields_are_ignored_at_any_depth() {
    let c: Cluster = parse(
        r#"{
            "name": "c",
            "numCpus": 4,
            "resources": {"deep": [1, 2, {"x": null}]},
            "clusterSpec": {
                "headGroupSpec": {
                    "computeTemplate": "t",
                    "gpu accelerator": "nvidia",
                    "securityContext": {"privileged": true, "runAsRoot": true}
                },
                "workerGroupSpec": [{"groupName": "g", "bogus": {"a": 1}}]
            }
        }"#,
    );
    assert_eq!(c.name, "c");
    let spec = c.cluster_spec.unwrap();
    let head = spec.head_group_spec.unwrap();
    assert_eq!(head.compute_template, "t");
    assert_eq!(head.security_context.unwrap().privileged, Some(true));
    assert_eq!(spec.worker_group_spec[0].group_name, "g");

    let _: ListAllComputeTemplatesRequest = parse(r#"{"anything":"goes"}"#);
}

#[test]
fn null_means_unset_for_messages_and_optional_fields() {
    let c: Cluster = parse(r#"{"name":"c","clusterSpec":null,"envs":null}"#);
    assert_eq!(c.cluster_spec, None);
    assert_eq!(c.envs, None);
    assert_eq!(
        parse::<SecurityContext>(r#"{"privileged":null}"#).privileged,
        None
    );
}

/// DEVIATION (docs/contract/api.md#json-input): protojson reads `null` for any field as "not set";
/// the generated code rejects `null` for string, number, bool, enum, repeated and map fields.
#[test]
fn deviation_null_rejected_for_scalars_lists_and_maps() {
    parse_err::<Cluster>(r#"{"name":null}"#);
    parse_err::<Cluster>(r#"{"environment":null}"#);
    parse_err::<Cluster>(r#"{"annotations":null}"#);
    parse_err::<Cluster>(r#"{"events":null}"#);
    parse_err::<ComputeTemplate>(r#"{"cpu":null}"#);
    parse_err::<HeadGroupSpec>(r#"{"enableIngress":null}"#);
}

#[test]
fn non_object_bodies_are_rejected() {
    parse_err::<Cluster>("null");
    parse_err::<Cluster>("[]");
    parse_err::<Cluster>("5");
    parse_err::<Cluster>(r#"{"name":"c""#);
}

#[test]
fn round_trip_of_a_nested_cluster() {
    let c = Cluster {
        name: "c".into(),
        namespace: "ns".into(),
        user: "u".into(),
        version: "2.9.0".into(),
        environment: cluster::Environment::Staging as i32,
        cluster_spec: Some(ClusterSpec {
            head_group_spec: Some(HeadGroupSpec {
                compute_template: "t".into(),
                ray_start_params: BTreeMap::from([("dashboard-host".into(), "0.0.0.0".into())]),
                volumes: vec![Volume {
                    mount_path: "/data".into(),
                    volume_type: volume::VolumeType::HostPath as i32,
                    name: "d".into(),
                    source: "/mnt".into(),
                    read_only: true,
                    ..Default::default()
                }],
                ..Default::default()
            }),
            worker_group_spec: vec![WorkerGroupSpec {
                group_name: "w".into(),
                compute_template: "t".into(),
                replicas: 1,
                max_replicas: 3,
                ..Default::default()
            }],
            ..Default::default()
        }),
        annotations: BTreeMap::from([("a".into(), "b".into())]),
        created_at: Some(Timestamp {
            seconds: 1_695_638_915,
            nanos: 0,
        }),
        ..Default::default()
    };
    let text = to_json(&c);
    let back: Cluster = parse(&text);
    assert_eq!(back, c);
    assert_eq!(
        to_value(&c)["clusterSpec"]["headGroupSpec"]["volumes"][0],
        json!({"mountPath": "/data", "volumeType": 1, "name": "d", "source": "/mnt", "readOnly": true})
    );
}
