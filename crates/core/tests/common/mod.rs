//! Builders shared by the cluster tests.
#![allow(dead_code)]

use std::collections::BTreeMap;

use kuberay_api::proto::{
    Cluster, ClusterSpec, ComputeTemplate, EnvValueFrom, EnvironmentVariables, HeadGroupSpec,
    WorkerGroupSpec,
};
use kuberay_core::cluster::{self, ClusterSpecOptions};
use kuberay_core::{CoreError, crd};
use serde_json::Value;

pub const CREATED_AT: &str = "2023-09-25 10:48:35.766443417 +0000 UTC";

pub fn map(entries: &[(&str, &str)]) -> BTreeMap<String, String> {
    entries
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub fn template(name: &str) -> ComputeTemplate {
    ComputeTemplate {
        name: name.into(),
        namespace: "ns".into(),
        cpu: 2,
        memory: 4,
        memory_unit: "Gi".into(),
        ..Default::default()
    }
}

pub fn templates(list: &[ComputeTemplate]) -> BTreeMap<String, ComputeTemplate> {
    list.iter().map(|t| (t.name.clone(), t.clone())).collect()
}

pub fn head() -> HeadGroupSpec {
    HeadGroupSpec {
        compute_template: "t".into(),
        ray_start_params: map(&[("num-cpus", "0")]),
        ..Default::default()
    }
}

pub fn worker(name: &str) -> WorkerGroupSpec {
    WorkerGroupSpec {
        group_name: name.into(),
        compute_template: "t".into(),
        replicas: 1,
        min_replicas: 1,
        max_replicas: 1,
        ..Default::default()
    }
}

pub fn spec(head: HeadGroupSpec, workers: Vec<WorkerGroupSpec>) -> ClusterSpec {
    ClusterSpec {
        head_group_spec: Some(head),
        worker_group_spec: workers,
        ..Default::default()
    }
}

pub fn cluster(spec: ClusterSpec) -> Cluster {
    Cluster {
        name: "c".into(),
        namespace: "ns".into(),
        user: "u".into(),
        version: "2.9.0".into(),
        cluster_spec: Some(spec),
        ..Default::default()
    }
}

pub fn env_from(source: i32, name: &str, key: &str) -> EnvValueFrom {
    EnvValueFrom {
        source,
        name: name.into(),
        key: key.into(),
    }
}

pub fn envs(values: &[(&str, &str)], values_from: &[(&str, EnvValueFrom)]) -> EnvironmentVariables {
    EnvironmentVariables {
        values: map(values),
        values_from: values_from
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
    }
}

/// The built spec of `spec` with template `t`, as JSON.
pub fn build_with(
    spec: &ClusterSpec,
    templates: &BTreeMap<String, ComputeTemplate>,
    options: ClusterSpecOptions<'_>,
) -> Result<Value, CoreError> {
    cluster::build_cluster_spec(spec, templates, "2.9.0", options)
        .map(|built| serde_json::to_value(built).unwrap())
}

pub fn build(spec: &ClusterSpec) -> Value {
    build_with(
        spec,
        &templates(&[template("t")]),
        ClusterSpecOptions::default(),
    )
    .unwrap()
}

pub fn build_object(cluster: &Cluster) -> crd::RayCluster {
    cluster::to_ray_cluster(cluster, &templates(&[template("t")]), CREATED_AT).unwrap()
}

pub fn head_container(spec: &Value) -> &Value {
    &spec["headGroupSpec"]["template"]["spec"]["containers"][0]
}

pub fn worker_container(spec: &Value, index: usize) -> &Value {
    &spec["workerGroupSpecs"][index]["template"]["spec"]["containers"][0]
}

pub fn env_names(container: &Value) -> Vec<String> {
    container["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_string())
        .collect()
}

pub fn input_error(result: Result<impl std::fmt::Debug, CoreError>) -> String {
    match result {
        Err(CoreError::InvalidInput(text)) => text,
        other => panic!("expected an invalid-input error, got {other:?}"),
    }
}

pub fn data_error(result: Result<impl std::fmt::Debug, CoreError>) -> String {
    match result {
        Err(CoreError::InvalidData(text)) => text,
        other => panic!("expected an invalid-data error, got {other:?}"),
    }
}
