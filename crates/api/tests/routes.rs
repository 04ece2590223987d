//! The route table generated from the `google.api.http` options
//! (docs/contract/api.md#services-and-routes).

use std::collections::BTreeSet;

use kuberay_api::routes::{HttpRoute, ROUTES};

/// (service, method, verb, pattern, body) of the 27 served RPCs
/// (docs/contract/api.md#served-rpcs).
const SERVED: &[(&str, &str, &str, &str, Option<&str>)] = &[
    (
        "proto.ClusterService",
        "CreateCluster",
        "POST",
        "/apis/v1/namespaces/{namespace}/clusters",
        Some("cluster"),
    ),
    (
        "proto.ClusterService",
        "GetCluster",
        "GET",
        "/apis/v1/namespaces/{namespace}/clusters/{name}",
        None,
    ),
    (
        "proto.ClusterService",
        "ListCluster",
        "GET",
        "/apis/v1/namespaces/{namespace}/clusters",
        None,
    ),
    (
        "proto.ClusterService",
        "ListAllClusters",
        "GET",
        "/apis/v1/clusters",
        None,
    ),
    (
        "proto.ClusterService",
        "DeleteCluster",
        "DELETE",
        "/apis/v1/namespaces/{namespace}/clusters/{name}",
        None,
    ),
    (
        "proto.ComputeTemplateService",
        "CreateComputeTemplate",
        "POST",
        "/apis/v1/namespaces/{namespace}/compute_templates",
        Some("compute_template"),
    ),
    (
        "proto.ComputeTemplateService",
        "GetComputeTemplate",
        "GET",
        "/apis/v1/namespaces/{namespace}/compute_templates/{name}",
        None,
    ),
    (
        "proto.ComputeTemplateService",
        "ListComputeTemplates",
        "GET",
        "/apis/v1/namespaces/{namespace}/compute_templates",
        None,
    ),
    (
        "proto.ComputeTemplateService",
        "ListAllComputeTemplates",
        "GET",
        "/apis/v1/compute_templates",
        None,
    ),
    (
        "proto.ComputeTemplateService",
        "DeleteComputeTemplate",
        "DELETE",
        "/apis/v1/namespaces/{namespace}/compute_templates/{name}",
        None,
    ),
    (
        "proto.RayJobService",
        "CreateRayJob",
        "POST",
        "/apis/v1/namespaces/{namespace}/jobs",
        Some("job"),
    ),
    (
        "proto.RayJobService",
        "GetRayJob",
        "GET",
        "/apis/v1/namespaces/{namespace}/jobs/{name}",
        None,
    ),
    (
        "proto.RayJobService",
        "ListRayJobs",
        "GET",
        "/apis/v1/namespaces/{namespace}/jobs",
        None,
    ),
    (
        "proto.RayJobService",
        "ListAllRayJobs",
        "GET",
        "/apis/v1/jobs",
        None,
    ),
    (
        "proto.RayJobService",
        "DeleteRayJob",
        "DELETE",
        "/apis/v1/namespaces/{namespace}/jobs/{name}",
        None,
    ),
    (
        "proto.RayServeService",
        "CreateRayService",
        "POST",
        "/apis/v1/namespaces/{namespace}/services",
        Some("service"),
    ),
    (
        "proto.RayServeService",
        "UpdateRayService",
        "PUT",
        "/apis/v1/namespaces/{namespace}/services/{name}",
        Some("service"),
    ),
    (
        "proto.RayServeService",
        "GetRayService",
        "GET",
        "/apis/v1/namespaces/{namespace}/services/{name}",
        None,
    ),
    (
        "proto.RayServeService",
        "ListRayServices",
        "GET",
        "/apis/v1/namespaces/{namespace}/services",
        None,
    ),
    (
        "proto.RayServeService",
        "ListAllRayServices",
        "GET",
        "/apis/v1/services",
        None,
    ),
    (
        "proto.RayServeService",
        "DeleteRayService",
        "DELETE",
        "/apis/v1/namespaces/{namespace}/services/{name}",
        None,
    ),
    (
        "proto.RayJobSubmissionService",
        "SubmitRayJob",
        "POST",
        "/apis/v1/namespaces/{namespace}/jobsubmissions/{clustername}",
        Some("jobsubmission"),
    ),
    (
        "proto.RayJobSubmissionService",
        "GetJobDetails",
        "GET",
        "/apis/v1/namespaces/{namespace}/jobsubmissions/{clustername}/{submissionid}",
        None,
    ),
    (
        "proto.RayJobSubmissionService",
        "GetJobLog",
        "GET",
        "/apis/v1/namespaces/{namespace}/jobsubmissions/{clustername}/log/{submissionid}",
        None,
    ),
    (
        "proto.RayJobSubmissionService",
        "ListJobDetails",
        "GET",
        "/apis/v1/namespaces/{namespace}/jobsubmissions/{clustername}",
        None,
    ),
    (
        "proto.RayJobSubmissionService",
        "StopRayJob",
        "POST",
        "/apis/v1/namespaces/{namespace}/jobsubmissions/{clustername}/{submissionid}",
        None,
    ),
    (
        "proto.RayJobSubmissionService",
        "DeleteRayJob",
        "DELETE",
        "/apis/v1/namespaces/{namespace}/jobsubmissions/{clustername}/{submissionid}",
        None,
    ),
];

/// ImageTemplateService: declared with HTTP options but served on neither port
/// (docs/contract/api.md#unserved-imagetemplateservice).
const IMAGE_TEMPLATES: &[(&str, &str, &str, &str, Option<&str>)] = &[
    (
        "proto.ImageTemplateService",
        "CreateImageTemplate",
        "POST",
        "/apis/v1/image_templates",
        Some("image_template"),
    ),
    (
        "proto.ImageTemplateService",
        "GetImageTemplate",
        "GET",
        "/apis/v1/namespaces/{namespace}/image_templates/{name}",
        None,
    ),
    (
        "proto.ImageTemplateService",
        "ListImageTemplates",
        "GET",
        "/apis/v1/namespaces/{namespace}/image_templates",
        None,
    ),
    (
        "proto.ImageTemplateService",
        "DeleteImageTemplate",
        "DELETE",
        "/apis/v1/namespaces/{namespace}/image_templates/{name}",
        None,
    ),
];

fn as_tuple(r: &HttpRoute) -> (&str, &str, &str, &str, Option<&str>) {
    (r.service, r.method, r.http_method, r.pattern, r.body)
}

#[test]
fn routes_are_exactly_the_served_and_image_template_rpcs() {
    assert_eq!(ROUTES.len(), 31);
    let actual: BTreeSet<_> = ROUTES.iter().map(as_tuple).collect();
    let expected: BTreeSet<_> = SERVED.iter().chain(IMAGE_TEMPLATES).copied().collect();
    assert_eq!(actual, expected);
    let served = ROUTES
        .iter()
        .filter(|r| r.service != "proto.ImageTemplateService")
        .count();
    assert_eq!(served, 27);
}

#[test]
fn spot_checks() {
    let find = |service: &str, method: &str| {
        ROUTES
            .iter()
            .find(|r| r.service == service && r.method == method)
            .unwrap_or_else(|| panic!("{service}/{method} missing"))
    };
    let create = find("proto.ComputeTemplateService", "CreateComputeTemplate");
    assert_eq!(create.http_method, "POST");
    assert_eq!(
        create.pattern,
        "/apis/v1/namespaces/{namespace}/compute_templates"
    );
    assert_eq!(create.body, Some("compute_template"));
    assert_eq!(
        create.grpc_path(),
        "/proto.ComputeTemplateService/CreateComputeTemplate"
    );

    let stop = find("proto.RayJobSubmissionService", "StopRayJob");
    assert_eq!(stop.http_method, "POST");
    assert_eq!(stop.body, None);
    assert_eq!(
        stop.path_variables().collect::<Vec<_>>(),
        ["namespace", "clustername", "submissionid"]
    );

    let log = find("proto.RayJobSubmissionService", "GetJobLog");
    assert_eq!(
        log.pattern,
        "/apis/v1/namespaces/{namespace}/jobsubmissions/{clustername}/log/{submissionid}"
    );

    let update = find("proto.RayServeService", "UpdateRayService");
    assert_eq!(update.http_method, "PUT");
    assert_eq!(update.body, Some("service"));

    let list = find("proto.ClusterService", "ListCluster");
    assert_eq!(list.http_method, "GET");
    assert_eq!(list.body, None);
    assert_eq!(list.path_variables().collect::<Vec<_>>(), ["namespace"]);

    let all = find("proto.ClusterService", "ListAllClusters");
    assert_eq!(all.pattern, "/apis/v1/clusters");
    assert_eq!(all.path_variables().count(), 0);

    // Two different RPCs named DeleteRayJob.
    assert_eq!(
        ROUTES.iter().filter(|r| r.method == "DeleteRayJob").count(),
        2
    );
}

#[test]
fn no_two_routes_share_verb_and_pattern() {
    let mut seen = BTreeSet::new();
    for r in ROUTES {
        assert!(seen.insert((r.http_method, r.pattern)), "{r:?} duplicated");
    }
}
