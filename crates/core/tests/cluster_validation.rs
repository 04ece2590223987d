//! Validation of CreateCluster requests and cluster specs: every text, in the Go server's order.

mod common;

use common::*;
use kuberay_api::proto::{Cluster, ClusterSpec};
use kuberay_core::cluster::{compute_template_names, validate_cluster_spec, validate_create};

fn valid() -> Cluster {
    cluster(spec(head(), vec![worker("wg")]))
}

fn create_error(namespace: &str, cluster: Option<&Cluster>) -> String {
    input_error(validate_create(namespace, cluster))
}

fn spec_error(spec: &ClusterSpec) -> String {
    input_error(validate_cluster_spec(Some(spec)))
}

#[test]
fn a_valid_request_passes() {
    let cluster = valid();
    let spec = cluster.cluster_spec.as_ref().unwrap();
    assert_eq!(validate_create("ns", Some(&cluster)), Ok((&cluster, spec)));
}

#[test]
fn request_checks_in_order() {
    let ok = valid();
    assert_eq!(
        create_error("", Some(&ok)),
        "Namespace is empty. Please specify a valid value."
    );
    // Also when everything else is wrong.
    assert_eq!(
        create_error("", None),
        "Namespace is empty. Please specify a valid value."
    );
    let mismatch =
        "The namespace in the request is different from the namespace in the cluster definition.";
    assert_eq!(create_error("ns", None), mismatch);
    assert_eq!(create_error("other", Some(&ok)), mismatch);
    assert_eq!(create_error("ns", Some(&Cluster::default())), mismatch);

    let no_name = Cluster {
        name: String::new(),
        user: String::new(),
        cluster_spec: None,
        ..ok.clone()
    };
    assert_eq!(
        create_error("ns", Some(&no_name)),
        "Cluster name is empty. Please specify a valid value."
    );
    let no_user = Cluster {
        user: String::new(),
        cluster_spec: None,
        ..ok.clone()
    };
    assert_eq!(
        create_error("ns", Some(&no_user)),
        "User who create the cluster is empty. Please specify a valid value."
    );
    let no_spec = Cluster {
        cluster_spec: None,
        ..ok.clone()
    };
    assert_eq!(
        create_error("ns", Some(&no_spec)),
        "A ClusterSpec object is required. Please specify one."
    );
}

#[test]
fn spec_checks_in_order() {
    assert_eq!(
        input_error(validate_cluster_spec(None)),
        "A ClusterSpec object is required. Please specify one."
    );
    assert_eq!(
        spec_error(&ClusterSpec::default()),
        "Cluster Spec Object requires HeadGroupSpec to be populated. Please specify one."
    );
    let mut h = head();
    h.compute_template.clear();
    h.ray_start_params.clear();
    assert_eq!(
        spec_error(&spec(h, vec![])),
        "HeadGroupSpec compute template is empty. Please specify a valid value."
    );
    let mut h = head();
    h.ray_start_params.clear();
    h.image_pull_policy = "Never".into();
    assert_eq!(
        spec_error(&spec(h, vec![])),
        "HeadGroupSpec RayStartParams is empty. Please specify values."
    );
    let head_policy = "HeadGroupSpec unsupported value for Image pull policy. Please specify Always or IfNotPresent";
    for policy in ["Never", "always", "ifNotPresent", " Always"] {
        let mut h = head();
        h.image_pull_policy = policy.into();
        assert_eq!(spec_error(&spec(h, vec![])), head_policy, "{policy:?}");
    }
    for policy in ["", "Always", "IfNotPresent"] {
        let mut h = head();
        h.image_pull_policy = policy.into();
        let valid = spec(h, vec![]);
        assert_eq!(validate_cluster_spec(Some(&valid)), Ok(&valid));
    }
    // Head problems come before worker problems.
    let mut h = head();
    h.image_pull_policy = "Never".into();
    let mut w = worker("");
    w.compute_template.clear();
    assert_eq!(spec_error(&spec(h, vec![w])), head_policy);
}

#[test]
fn worker_checks_in_order_per_worker() {
    let check = |w| spec_error(&spec(head(), vec![worker("ok"), w]));
    let mut w = worker("");
    w.compute_template.clear();
    w.max_replicas = 0;
    assert_eq!(
        check(w),
        "WorkerNodeSpec 1 group name is empty. Please specify a valid value."
    );
    let mut w = worker("wg");
    w.compute_template.clear();
    w.max_replicas = 0;
    assert_eq!(
        check(w),
        "WorkerNodeSpec 1 compute template is empty. Please specify a valid value."
    );
    let mut w = worker("wg");
    w.max_replicas = 0;
    w.min_replicas = 3;
    assert_eq!(
        check(w),
        "WorkerNodeSpec 1 MaxReplicas can not be 0. Please specify a valid value."
    );
    let mut w = worker("wg");
    w.min_replicas = 3;
    w.max_replicas = 2;
    w.image_pull_policy = "Never".into();
    assert_eq!(
        check(w),
        "WorkerNodeSpec 1 MinReplica > MaxReplicas. Please specify a valid value."
    );
    let mut w = worker("wg");
    w.image_pull_policy = "never".into();
    assert_eq!(
        check(w),
        "Worker GroupSpec unsupported value for Image pull policy. Please specify Always or IfNotPresent"
    );
    // All checks of worker 0 run before any check of worker 1.
    let mut first = worker("wg");
    first.image_pull_policy = "Never".into();
    assert_eq!(
        spec_error(&spec(head(), vec![first, worker("")])),
        "Worker GroupSpec unsupported value for Image pull policy. Please specify Always or IfNotPresent"
    );
}

#[test]
fn what_is_not_validated() {
    let mut w = worker("wg");
    w.ray_start_params.clear();
    w.replicas = -7;
    w.min_replicas = -3;
    w.max_replicas = -1;
    let mut h = head();
    h.service_type = "Bogus".into();
    h.image = "not an image".into();
    let mut c = cluster(spec(h, vec![w]));
    c.version.clear();
    c.environment = 42;
    assert!(validate_create("ns", Some(&c)).is_ok());
}

#[test]
fn template_names_head_first_distinct_in_order() {
    let mut h = head();
    h.compute_template = "b".into();
    let mut w1 = worker("1");
    w1.compute_template = "a".into();
    let mut w2 = worker("2");
    w2.compute_template = "b".into();
    let mut w3 = worker("3");
    w3.compute_template = "c".into();
    let mut w4 = worker("4");
    w4.compute_template = "a".into();
    assert_eq!(
        compute_template_names(&spec(h, vec![w1, w2, w3, w4])),
        vec!["b", "a", "c"]
    );
    assert_eq!(
        compute_template_names(&ClusterSpec::default()),
        Vec::<String>::new()
    );
}
