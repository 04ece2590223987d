//! Golden tests: the reference's example requests (docs/contract/conversion.md#examples) -> the
//! RayCluster objects we write (hand-written expected JSON under
//! `testdata/clusters/<case>/raycluster.json`), and those objects read back as API clusters
//! (`response.json`).

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kuberay_api::proto::{Cluster, ComputeTemplate};
use kuberay_core::cluster;
use kuberay_core::compute_template::{from_config_map, to_config_map};
use kuberay_core::crd::RayCluster;
use serde_json::Value;

const CREATED_AT: &str = "2024-01-02 03:04:05.5 +0000 UTC";
const CREATION_TIMESTAMP: &str = "2024-01-02T03:04:05Z";

fn testdata(path: &str) -> String {
    let file = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(path);
    fs::read_to_string(&file).unwrap_or_else(|e| panic!("reading {}: {e}", file.display()))
}

/// The templates as the server reads them: stored as ConfigMaps, then decoded.
fn templates() -> BTreeMap<String, ComputeTemplate> {
    let templates: Vec<ComputeTemplate> =
        serde_json::from_str(&testdata("templates.json")).unwrap();
    templates
        .iter()
        .map(|t| (t.name.clone(), from_config_map(&to_config_map(t))))
        .collect()
}

fn assert_json_eq(actual: &Value, expected: &Value, what: &str) {
    if actual != expected {
        panic!(
            "{what} differs\n--- actual ---\n{}\n--- expected ---\n{}",
            serde_json::to_string_pretty(actual).unwrap(),
            serde_json::to_string_pretty(expected).unwrap()
        );
    }
}

fn check_case(case: &str) {
    let request: Cluster =
        serde_json::from_str(&testdata(&format!("clusters/{case}/request.json"))).unwrap();
    cluster::validate_create(&request.namespace, Some(&request))
        .unwrap_or_else(|e| panic!("{case}: the example request must be valid: {e}"));

    // API -> CR
    let object = cluster::to_ray_cluster(&request, &templates(), CREATED_AT).unwrap();
    let expected: Value =
        serde_json::from_str(&testdata(&format!("clusters/{case}/raycluster.json"))).unwrap();
    assert_json_eq(
        &serde_json::to_value(&object).unwrap(),
        &expected,
        &format!("{case}: RayCluster"),
    );

    // The typed object reads and writes the golden JSON unchanged.
    let mut stored: RayCluster = serde_json::from_value(expected.clone()).unwrap();
    assert_eq!(stored, object, "{case}: typed object");
    assert_json_eq(
        &serde_json::to_value(&stored).unwrap(),
        &expected,
        &format!("{case}: typed round trip"),
    );

    // CR (as the API server returns it) -> API
    stored.metadata.creation_timestamp = Some(Time(CREATION_TIMESTAMP.parse().unwrap()));
    let response = cluster::from_ray_cluster(&stored, Vec::new()).unwrap();
    let expected: Cluster =
        serde_json::from_str(&testdata(&format!("clusters/{case}/response.json"))).unwrap();
    if response != expected {
        panic!(
            "{case}: Cluster differs\n--- actual ---\n{}\n--- expected ---\n{}",
            serde_json::to_string_pretty(&response).unwrap(),
            serde_json::to_string_pretty(&expected).unwrap()
        );
    }
}

#[test]
fn autoscaling_cluster() {
    check_case("autoscaling");
}

#[test]
fn ha_cluster_with_gcs_fault_tolerance() {
    check_case("ha");
}

#[test]
fn job_submission_cluster() {
    check_case("job-submission");
}

#[test]
fn every_volume_type() {
    check_case("volumes");
}

#[test]
fn every_field() {
    check_case("full");
}
