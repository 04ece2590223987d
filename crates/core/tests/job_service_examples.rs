//! The reference's RayJob and RayService examples (docs/contract/conversion.md#examples, numbers
//! 12, 14, 17 and 18), both directions.

use std::collections::BTreeMap;

use k8s_openapi::api::events::v1::Event;
use kuberay_api::proto::{self, ComputeTemplate};
use kuberay_core::{crd, events, job, labels, service};
use serde_json::json;

fn templates() -> BTreeMap<String, ComputeTemplate> {
    BTreeMap::from([(
        "t".to_string(),
        ComputeTemplate {
            name: "t".into(),
            namespace: "ns".into(),
            cpu: 2,
            memory: 4,
            memory_unit: "Gi".into(),
            ..Default::default()
        },
    )])
}

fn cluster_spec() -> proto::ClusterSpec {
    serde_json::from_value(json!({
        "headGroupSpec": {"computeTemplate": "t", "rayStartParams": {"dashboard-host": "0.0.0.0"}},
        "workerGroupSpec": [{"groupName": "small", "computeTemplate": "t", "replicas": 1,
                             "minReplicas": 0, "maxReplicas": 3, "rayStartParams": {"node-ip-address": "$MY_POD_IP"}}]
    }))
    .unwrap()
}

/// Example 12: a job with its own cluster.
#[test]
fn job_with_cluster_spec() {
    let request = proto::RayJob {
        name: "test".into(),
        namespace: "ns".into(),
        user: "test".into(),
        version: "2.9.0".into(),
        entrypoint: "python /home/ray/samples/sample_code.py".into(),
        metadata: BTreeMap::from([("job_submission_id".into(), "123".into())]),
        runtime_env: "pip:\n  - requests==2.26.0\n  - pendulum==2.1.2\nenv_vars:\n  counter_name: test_counter\n".into(),
        shutdown_after_job_finishes: true,
        cluster_spec: Some(cluster_spec()),
        active_deadline_seconds: 120,
        ..Default::default()
    };
    let object = job::to_ray_job(&request, &templates()).unwrap();
    let json = serde_json::to_value(&object).unwrap();
    assert_eq!(
        json["metadata"]["labels"],
        json!({"ray.io/cluster-name": "test", "ray.io/user": "test",
               "app.kubernetes.io/name": "kuberay", "app.kubernetes.io/managed-by": "kuberay-apiserver"})
    );
    assert_eq!(
        json["metadata"]["annotations"],
        json!({"job_submission_id": "123"})
    );
    let spec = &json["spec"];
    assert_eq!(spec["metadata"], json!({"job_submission_id": "123"}));
    assert_eq!(spec["runtimeEnvYAML"], request.runtime_env.as_str());
    assert_eq!(spec["activeDeadlineSeconds"], 120);
    assert_eq!(spec["shutdownAfterJobFinishes"], true);
    assert!(spec.get("clusterSelector").is_none());
    assert!(spec.get("submitterPodTemplate").is_none());
    assert_eq!(spec["rayClusterSpec"]["rayVersion"], "2.9.0");
    let head = &spec["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]["containers"][0];
    assert_eq!(head["name"], "ray-head");
    assert_eq!(head["image"], "rayproject/ray:2.9.0");
    let ports: Vec<&str> = head["ports"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(
        ports,
        ["redis", "head", "dashboard", "metrics"],
        "no serve ports for jobs"
    );

    // And back: the cluster spec reads back with the documented asymmetries.
    let back = job::from_ray_job(&object).unwrap();
    assert_eq!(back.version, "2.9.0");
    assert_eq!(back.active_deadline_seconds, 0, "not read back");
    let worker = &back.cluster_spec.as_ref().unwrap().worker_group_spec[0];
    assert_eq!(
        worker.min_replicas, 1,
        "minReplicas 0 reads back as replicas"
    );
    assert_eq!(
        back.cluster_spec
            .as_ref()
            .unwrap()
            .head_group_spec
            .as_ref()
            .unwrap()
            .environment,
        Some(proto::EnvironmentVariables::default()),
        "an API-built group always returns an environment"
    );
}

/// Example 17: a RayJob with status, read back.
#[test]
fn job_status_is_read_back() {
    let object: crd::RayJob = serde_json::from_value(json!({
        "apiVersion": "ray.io/v1", "kind": "RayJob",
        "metadata": {"name": "job", "namespace": "ns", "creationTimestamp": "2024-07-24T23:59:00Z",
                     "labels": {"ray.io/user": "user"}},
        "spec": {
            "entrypoint": "python x.py",
            "clusterSelector": {"ray.io/cluster": "c"},
            "submitterPodTemplate": {"spec": {"containers": [{"name": "ray-job-submitter", "image": "image",
                "resources": {"limits": {"cpu": "2", "memory": "1Gi"}, "requests": {"cpu": "2", "memory": "1Gi"}}}],
                "restartPolicy": "Never"}}
        },
        "status": {"jobId": "raysubmit_1", "jobStatus": "RUNNING", "jobDeploymentStatus": "Initializing",
                   "message": "Job is currently running", "rayClusterName": "raycluster-sample-xxxxx",
                   "startTime": "2024-07-25T00:00:00Z"}
    }))
    .unwrap();
    let back = job::from_ray_job(&object).unwrap();
    assert_eq!(
        serde_json::to_value(&back).unwrap(),
        json!({
            "name": "job", "namespace": "ns", "user": "user", "entrypoint": "python x.py",
            "jobId": "raysubmit_1",
            "clusterSelector": {"ray.io/cluster": "c"},
            "jobSubmitter": {"image": "image", "cpu": "2"},
            "createdAt": "2024-07-24T23:59:00Z",
            "jobStatus": "RUNNING", "jobDeploymentStatus": "Initializing",
            "message": "Job is currently running",
            "startTime": "2024-07-25T00:00:00Z",
            "rayClusterName": "raycluster-sample-xxxxx"
        })
    );
}

/// Example 14: serve config required; only the given threshold is written.
#[test]
fn service_thresholds_and_serve_config() {
    let mut request: proto::RayService = serde_json::from_value(json!({
        "name": "svc", "namespace": "ns", "user": "u", "version": "2.9.0",
        "serveConfigV2": "Fake Yaml file", "serviceUnhealthySecondThreshold": 100
    }))
    .unwrap();
    request.cluster_spec = Some(cluster_spec());
    let object =
        service::to_ray_service(&request, &templates(), (labels::CREATION_TIMESTAMP, "t")).unwrap();
    let json = serde_json::to_value(&object).unwrap();
    assert_eq!(json["spec"]["serveConfigV2"], "Fake Yaml file");
    assert_eq!(json["spec"]["serviceUnhealthySecondThreshold"], 100);
    assert!(
        json["spec"]
            .get("deploymentUnhealthySecondThreshold")
            .is_none()
    );
    assert_eq!(
        json["metadata"]["labels"],
        json!({"ray.io/user": "u", "app.kubernetes.io/name": "kuberay",
               "app.kubernetes.io/managed-by": "kuberay-apiserver"})
    );
}

/// Example 18: a live service's status and events.
#[test]
fn service_status_and_events_are_read_back() {
    let object: crd::RayService = serde_json::from_value(json!({
        "apiVersion": "ray.io/v1", "kind": "RayService",
        "metadata": {"name": "svc0", "namespace": "ns", "creationTimestamp": "2024-07-24T23:59:00Z",
                     "labels": {"ray.io/user": "u"}},
        "spec": {"serveConfigV2": "applications: []", "rayClusterConfig": {
            "rayVersion": "2.9.0",
            "headGroupSpec": {"rayStartParams": {}, "template": {
                "metadata": {"annotations": {"ray.io/compute-template": "t"}},
                "spec": {"containers": [{"name": "ray-head", "image": "rayproject/ray:2.9.0"}]}}}}},
        "status": {"activeServiceStatus": {
            "rayClusterName": "svc0-raycluster-abc",
            "rayClusterStatus": {"state": "ready", "endpoints": {"dashboard": "8265", "serve": "8000"}},
            "applicationStatuses": {
                "b-app": {"status": "RUNNING", "serveDeploymentStatuses": {
                    "z": {"status": "HEALTHY"}, "a": {"status": "UPDATING", "message": "scaling"}}},
                "a-app": {"status": "DEPLOYING", "message": "starting"}
            }}}
    }))
    .unwrap();
    let event: Event = serde_json::from_value(json!({
        "metadata": {"name": "test", "namespace": "ns", "creationTimestamp": "2024-07-25T00:00:00Z"},
        "eventTime": null, "reason": "test", "note": "test", "type": "Normal", "deprecatedCount": 2,
        "regarding": {"kind": "RayService", "name": "svc0", "namespace": "ns"}
    }))
    .unwrap();
    assert_eq!(
        service::active_cluster_name(&object).as_deref(),
        Some("svc0-raycluster-abc")
    );
    let back =
        service::from_ray_service(&object, events::service_events("svc0", &[event])).unwrap();
    let json = serde_json::to_value(&back).unwrap();
    assert_eq!(json["deleteAt"], "1969-12-31T23:59:59Z");
    assert_eq!(json["createdAt"], "2024-07-24T23:59:00Z");
    let status = &json["rayServiceStatus"];
    assert_eq!(status["rayClusterName"], "svc0-raycluster-abc");
    assert_eq!(status["rayClusterState"], "ready");
    assert_eq!(
        status["serviceEndpoint"],
        json!({"dashboard": "8265", "serve": "8000"})
    );
    assert_eq!(status["rayServiceEvents"][0]["id"], "test");
    assert_eq!(status["rayServiceEvents"][0]["name"], "svc0-test");
    assert_eq!(status["rayServiceEvents"][0]["message"], "test");
    assert_eq!(status["rayServiceEvents"][0]["count"], 2);
    // Applications and deployments sorted by name (random map order in the Go server).
    let apps: Vec<&str> = status["serveApplicationStatus"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(apps, ["a-app", "b-app"]);
    assert_eq!(status["serveApplicationStatus"][0]["message"], "starting");
    let deployments = &status["serveApplicationStatus"][1]["serveDeploymentStatus"];
    assert_eq!(
        deployments,
        &json!([{"deploymentName": "a", "status": "UPDATING", "message": "scaling"},
                {"deploymentName": "z", "status": "HEALTHY"}])
    );
}
