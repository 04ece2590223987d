//! The proto definitions keep the reference's message names, field numbers, JSON names and
//! declaration order (docs/contract/api.md#messages), and the descriptor set is usable for gRPC
//! reflection.

use kuberay_api::FILE_DESCRIPTOR_SET;
use prost::Message as _;
use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{DescriptorProto, FileDescriptorProto, FileDescriptorSet};

fn fds() -> FileDescriptorSet {
    FileDescriptorSet::decode(FILE_DESCRIPTOR_SET).expect("descriptor set decodes")
}

fn file(set: &FileDescriptorSet, name: &str) -> FileDescriptorProto {
    set.file
        .iter()
        .find(|f| f.name() == name)
        .unwrap_or_else(|| panic!("{name} missing"))
        .clone()
}

fn message(set: &FileDescriptorSet, name: &str) -> DescriptorProto {
    set.file
        .iter()
        .filter(|f| f.package() == "proto")
        .flat_map(|f| f.message_type.iter())
        .find(|m| m.name() == name)
        .unwrap_or_else(|| panic!("message {name} missing"))
        .clone()
}

/// (proto name, number, json name) in declaration order.
fn fields(m: &DescriptorProto) -> Vec<(String, i32, String)> {
    m.field
        .iter()
        .map(|f| (f.name().to_owned(), f.number(), f.json_name().to_owned()))
        .collect()
}

#[test]
fn files_packages_and_message_count() {
    let set = fds();
    let ours = [
        "cluster.proto",
        "config.proto",
        "error.proto",
        "job.proto",
        "job_submission.proto",
        "serve.proto",
    ];
    let mut count = 0;
    for name in ours {
        let f = file(&set, name);
        assert_eq!(f.package(), "proto");
        assert_eq!(f.syntax(), "proto3");
        count += f.message_type.len();
    }
    assert_eq!(count, 70);
    for dep in [
        "google/protobuf/empty.proto",
        "google/protobuf/timestamp.proto",
        "google/protobuf/any.proto",
        "google/protobuf/descriptor.proto",
        "google/api/annotations.proto",
        "google/api/http.proto",
        "google/api/field_behavior.proto",
    ] {
        file(&set, dep);
    }
}

#[test]
fn services_and_methods() {
    let set = fds();
    let services: Vec<(String, Vec<String>)> = set
        .file
        .iter()
        .filter(|f| f.package() == "proto")
        .flat_map(|f| f.service.iter())
        .map(|s| {
            (
                s.name().to_owned(),
                s.method.iter().map(|m| m.name().to_owned()).collect(),
            )
        })
        .collect();
    let expect = |name: &str, methods: &[&str]| {
        let (_, actual) = services
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("{name} missing"));
        assert_eq!(actual, methods, "{name}");
    };
    assert_eq!(services.len(), 6);
    expect(
        "ClusterService",
        &[
            "CreateCluster",
            "GetCluster",
            "ListCluster",
            "ListAllClusters",
            "DeleteCluster",
        ],
    );
    expect(
        "ComputeTemplateService",
        &[
            "CreateComputeTemplate",
            "GetComputeTemplate",
            "ListComputeTemplates",
            "ListAllComputeTemplates",
            "DeleteComputeTemplate",
        ],
    );
    expect(
        "ImageTemplateService",
        &[
            "CreateImageTemplate",
            "GetImageTemplate",
            "ListImageTemplates",
            "DeleteImageTemplate",
        ],
    );
    expect(
        "RayJobService",
        &[
            "CreateRayJob",
            "GetRayJob",
            "ListRayJobs",
            "ListAllRayJobs",
            "DeleteRayJob",
        ],
    );
    expect(
        "RayServeService",
        &[
            "CreateRayService",
            "UpdateRayService",
            "GetRayService",
            "ListRayServices",
            "ListAllRayServices",
            "DeleteRayService",
        ],
    );
    expect(
        "RayJobSubmissionService",
        &[
            "SubmitRayJob",
            "GetJobDetails",
            "GetJobLog",
            "ListJobDetails",
            "StopRayJob",
            "DeleteRayJob",
        ],
    );
    let stop = set
        .file
        .iter()
        .flat_map(|f| f.service.iter())
        .flat_map(|s| s.method.iter())
        .find(|m| m.name() == "StopRayJob")
        .unwrap();
    assert_eq!(stop.input_type(), ".proto.StopRayJobSubmissionRequest");
    assert_eq!(stop.output_type(), ".google.protobuf.Empty");
}

#[test]
fn declaration_order_and_numbers() {
    let set = fds();
    let job = fields(&message(&set, "RayJob"));
    let numbers: Vec<i32> = job.iter().map(|f| f.1).collect();
    assert_eq!(
        numbers,
        [
            1, 2, 3, 21, 4, 5, 6, 7, 8, 9, 10, 11, 17, 18, 19, 20, 25, 12, 13, 14, 15, 16, 22, 23,
            24
        ]
    );
    let svc = fields(&message(&set, "RayService"));
    assert_eq!(
        svc.iter().map(|f| f.1).collect::<Vec<_>>(),
        [1, 2, 3, 12, 9, 10, 11, 5, 6, 7, 8]
    );
    assert_eq!(
        svc[4],
        ("serve_config_V2".to_owned(), 9, "serveConfigV2".to_owned())
    );
    let spec = fields(&message(&set, "ClusterSpec"));
    assert_eq!(
        spec.iter().map(|f| f.0.as_str()).collect::<Vec<_>>(),
        [
            "head_group_spec",
            "worker_group_spec",
            "enableInTreeAutoscaling",
            "autoscalerOptions",
            "headServiceAnnotations"
        ]
    );
    let ct = fields(&message(&set, "ComputeTemplate"));
    assert_eq!(
        ct.iter().map(|f| f.2.as_str()).collect::<Vec<_>>(),
        [
            "name",
            "namespace",
            "cpu",
            "memory",
            "gpu",
            "gpuAccelerator",
            "tolerations",
            "extendedResources",
            "memoryUnit"
        ]
    );
}

#[test]
fn json_names_match_the_spec() {
    let set = fds();
    let check = |msg: &str, field: &str, json: &str| {
        let m = message(&set, msg);
        let f = m
            .field
            .iter()
            .find(|f| f.name() == field)
            .unwrap_or_else(|| panic!("{msg}.{field} missing"));
        assert_eq!(f.json_name(), json, "{msg}.{field}");
    };
    check("ListClustersRequest", "continue", "continue");
    check("SubmitRayJobRequest", "clustername", "clustername");
    check("SubmitRayJobRequest", "jobsubmission", "jobsubmission");
    check("GetJobDetailsRequest", "submissionid", "submissionid");
    check("SubmitRayJobReply", "submission_id", "submissionId");
    check("RayJob", "jobSubmitter", "jobSubmitter");
    check("RayJob", "entrypointNumCpus", "entrypointNumCpus");
    check("Volume", "storageClassName", "storageClassName");
    check("Volume", "accessMode", "accessMode");
    check("Volume", "mount_propagation_mode", "mountPropagationMode");
    check("EnvironmentVariables", "valuesFrom", "valuesFrom");
    check("HeadGroupSpec", "imagePullPolicy", "imagePullPolicy");
    check("HeadGroupSpec", "ray_start_params", "rayStartParams");
    check(
        "ListRayServicesResponse",
        "next_page_token",
        "nextPageToken",
    );
    check(
        "RayServiceStatus",
        "serve_application_status",
        "serveApplicationStatus",
    );
    check("JobSubmissionInfo", "start_time", "startTime");
}

#[test]
fn special_fields() {
    let set = fds();
    let sc = message(&set, "SecurityContext");
    let privileged = &sc.field[1];
    assert_eq!(privileged.name(), "privileged");
    assert!(privileged.proto3_optional());
    assert_eq!(privileged.label(), Label::Optional);
    assert_eq!(privileged.r#type(), Type::Bool);

    let svc = message(&set, "RayService");
    for name in [
        "service_unhealthy_second_threshold",
        "deployment_unhealthy_second_threshold",
    ] {
        let f = svc.field.iter().find(|f| f.name() == name).unwrap();
        assert!(f.options.as_ref().is_some_and(|o| o.deprecated()), "{name}");
    }

    let info = message(&set, "JobSubmissionInfo");
    assert_eq!(info.field[6].r#type(), Type::Uint64);
    let list = message(&set, "ListClustersRequest");
    assert_eq!(list.field[2].r#type(), Type::Int64);
    let ct = message(&set, "ComputeTemplate");
    assert_eq!(ct.field[2].r#type(), Type::Uint32);
}

#[test]
fn nested_enums() {
    let set = fds();
    let values = |msg: &str, en: &str| -> Vec<(String, i32)> {
        message(&set, msg)
            .enum_type
            .iter()
            .find(|e| e.name() == en)
            .unwrap_or_else(|| panic!("{msg}.{en} missing"))
            .value
            .iter()
            .map(|v| (v.name().to_owned(), v.number()))
            .collect()
    };
    let names = |v: Vec<(String, i32)>| -> Vec<String> {
        v.iter()
            .enumerate()
            .map(|(i, (n, num))| {
                assert_eq!(*num, i as i32);
                n.clone()
            })
            .collect()
    };
    assert_eq!(
        names(values("Cluster", "Environment")),
        ["DEV", "TESTING", "STAGING", "PRODUCTION"]
    );
    assert_eq!(
        names(values("EnvValueFrom", "Source")),
        ["CONFIGMAP", "SECRET", "RESOURCEFIELD", "FIELD"]
    );
    assert_eq!(
        names(values("Volume", "VolumeType")),
        [
            "PERSISTENT_VOLUME_CLAIM",
            "HOST_PATH",
            "EPHEMERAL",
            "CONFIGMAP",
            "SECRET",
            "EMPTY_DIR"
        ]
    );
    assert_eq!(
        names(values("Volume", "HostPathType")),
        ["DIRECTORY", "FILE"]
    );
    assert_eq!(
        names(values("Volume", "MountPropagationMode")),
        ["NONE", "HOSTTOCONTAINER", "BIDIRECTIONAL"]
    );
    assert_eq!(names(values("Volume", "AccessMode")), ["RWO", "ROX", "RWX"]);
}

#[test]
fn descriptor_set_registers_with_tonic_reflection() {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
        .build_v1()
        .expect("v1 reflection service");
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
        .build_v1alpha()
        .expect("v1alpha reflection service");
}

#[test]
fn generated_services_exist() {
    // Compile-time check of the public paths the server uses.
    use kuberay_api::proto::{
        cluster_service_client::ClusterServiceClient, cluster_service_server::ClusterServiceServer,
        compute_template_service_client::ComputeTemplateServiceClient,
        compute_template_service_server::ComputeTemplateServiceServer,
        image_template_service_server::ImageTemplateServiceServer,
        ray_job_service_server::RayJobServiceServer,
        ray_job_submission_service_server::RayJobSubmissionServiceServer,
        ray_serve_service_server::RayServeServiceServer,
    };
    assert_eq!(
        <ClusterServiceServer<()> as tonic::server::NamedService>::NAME,
        "proto.ClusterService"
    );
    assert_eq!(
        <RayJobSubmissionServiceServer<()> as tonic::server::NamedService>::NAME,
        "proto.RayJobSubmissionService"
    );
    let _ = std::any::type_name::<ClusterServiceClient<()>>();
    let _ = std::any::type_name::<ComputeTemplateServiceClient<()>>();
    let _ = std::any::type_name::<ComputeTemplateServiceServer<()>>();
    let _ = std::any::type_name::<ImageTemplateServiceServer<()>>();
    let _ = std::any::type_name::<RayJobServiceServer<()>>();
    let _ = std::any::type_name::<RayServeServiceServer<()>>();
}
