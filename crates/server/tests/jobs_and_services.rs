//! RayJobService and RayServeService over HTTP and gRPC, through the real router and services.

mod support;

use kube::Api;
use kube::api::{DynamicObject, GroupVersionKind};
use kube::discovery::ApiResource;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::{TestServer, http_client, send};
use tonic::Code;

fn objects(server: &TestServer, ns: &str, kind: &str, plural: &str) -> Api<DynamicObject> {
    let resource =
        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("ray.io", "v1", kind), plural);
    Api::namespaced_with(server.kube(), ns, &resource)
}

/// Waits until a GET answers 404: on a real cluster the operator's finalizers keep a deleted
/// object visible (with `deleteAt`) for a moment.
async fn wait_gone(client: &reqwest::Client, url: &str) -> Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let (status, body) = send(client, Method::GET, url.to_string(), None).await;
        if status == StatusCode::NOT_FOUND {
            return body;
        }
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(
            std::time::Instant::now() < deadline,
            "{url} is still there: {body}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

async fn template(client: &reqwest::Client, server: &TestServer, ns: &str) {
    let (status, _) = send(
        client,
        Method::POST,
        server.url(&format!("/apis/v1/namespaces/{ns}/compute_templates")),
        Some(json!({"name": "t", "namespace": ns, "cpu": 1, "memory": 2})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

fn cluster_spec() -> Value {
    json!({
        "headGroupSpec": {"computeTemplate": "t", "rayStartParams": {"dashboard-host": "0.0.0.0"}},
        "workerGroupSpec": [{"groupName": "w", "computeTemplate": "t", "replicas": 1, "maxReplicas": 2,
                             "rayStartParams": {"node-ip-address": "$MY_POD_IP"}}]
    })
}

fn job(ns: &str, name: &str) -> Value {
    json!({
        "name": name, "namespace": ns, "user": "bob", "version": "2.41.0",
        "entrypoint": "python -c 'print(1)'",
        "metadata": {"team": "ml"},
        "runtimeEnv": "pip:\n  - requests==2.26.0\n",
        "shutdownAfterJobFinishes": true,
        "ttlSecondsAfterFinished": 60,
        "clusterSpec": cluster_spec(),
        "jobSubmitter": {"image": "rayproject/ray:2.41.0", "cpu": "500m"},
        "entrypointNumCpus": 1.5,
        "entrypointNumGpus": 1,
        "entrypointResources": "{\"custom\": 1}",
        "activeDeadlineSeconds": 600
    })
}

#[tokio::test]
async fn job_lifecycle() {
    let mut server = TestServer::start().await;
    let ns = server.namespace("jobs").await;
    let client = http_client();
    template(&client, &server, &ns).await;
    let collection = server.url(&format!("/apis/v1/namespaces/{ns}/jobs"));

    let (status, created) = send(
        &client,
        Method::POST,
        collection.clone(),
        Some(job(&ns, "j1")),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    assert_eq!(created["name"], "j1");
    assert_eq!(created["user"], "bob");
    assert_eq!(created["version"], "2.41.0");
    assert_eq!(created["runtimeEnv"], "pip:\n  - requests==2.26.0\n");
    assert_eq!(
        created["jobSubmitter"],
        json!({"image": "rayproject/ray:2.41.0", "cpu": "500m"})
    );
    assert_eq!(created["entrypointNumCpus"], 1.5);
    assert_eq!(
        created["entrypointNumGpus"], 1.0,
        "stored, unlike the Go server"
    );
    assert!(
        created.get("activeDeadlineSeconds").is_none(),
        "not read back"
    );
    assert!(
        created.get("jobId").is_none(),
        "jobId comes from the status"
    );
    assert_eq!(
        created["clusterSpec"]["workerGroupSpec"][0]["minReplicas"],
        1
    );

    let object = objects(&server, &ns, "RayJob", "rayjobs")
        .get("j1")
        .await
        .unwrap();
    assert_eq!(object.metadata.annotations.clone().unwrap()["team"], "ml");
    assert_eq!(object.data["spec"]["entrypointNumGpus"], 1.0);
    assert_eq!(object.data["spec"]["activeDeadlineSeconds"], 600);
    assert_eq!(
        object.data["spec"]["submitterPodTemplate"]["spec"]["containers"][0]["resources"]["limits"],
        json!({"cpu": "500m", "memory": "1Gi"})
    );

    // A selector job needs no cluster spec.
    let selector = json!({"name": "j2", "namespace": ns, "user": "bob", "entrypoint": "echo hi",
                          "clusterSelector": {"ray.io/cluster": "shared"}});
    let (status, body) = send(&client, Method::POST, collection.clone(), Some(selector)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["clusterSelector"]["ray.io/cluster"], "shared");

    // Paging over both.
    let (status, page) = send(&client, Method::GET, format!("{collection}?limit=1"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["jobs"].as_array().unwrap().len(), 1);
    let token = page["continue"].as_str().unwrap().to_string();
    let (_, rest) = send(
        &client,
        Method::GET,
        format!("{collection}?limit=1&continue={token}"),
        None,
    )
    .await;
    assert_eq!(rest["jobs"][0]["name"], "j2");
    let (_, all) = send(&client, Method::GET, server.url("/apis/v1/jobs"), None).await;
    assert!(all["jobs"].as_array().unwrap().len() >= 2);

    // Errors.
    let (status, error) = send(
        &client,
        Method::POST,
        collection.clone(),
        Some(job(&ns, "j1")),
    )
    .await;
    assert_eq!(
        (status, error["code"].clone()),
        (StatusCode::CONFLICT, json!(6))
    );
    let mut no_user = job(&ns, "j3");
    no_user["user"] = json!("");
    let (status, error) = send(&client, Method::POST, collection.clone(), Some(no_user)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        error["message"],
        "User who create the job is empty. Please specify a valid value.: Validate job request failed.: Invalid input error: User who create the job is empty. Please specify a valid value."
    );
    let mut bad_submitter = job(&ns, "j4");
    bad_submitter["jobSubmitter"]["memory"] = json!("1GB");
    let (status, error) = send(
        &client,
        Method::POST,
        collection.clone(),
        Some(bad_submitter),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(error["message"].as_str().unwrap().starts_with(
        "Failed to create a Ray Job: Create Job failed.: InvalidInputError: Failed to create a Ray Job: memory for ray job submitter 1GB is not specified correctly"
    ), "{error}");
    let mut selector_without_head = json!({"name": "j5", "namespace": ns, "user": "bob",
        "clusterSelector": {"a": "b"}, "clusterSpec": {}});
    selector_without_head["entrypoint"] = json!("x");
    let (status, _) = send(
        &client,
        Method::POST,
        collection.clone(),
        Some(selector_without_head),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "the Go server crashes here"
    );

    // Get, delete, 404.
    let (status, got) = send(&client, Method::GET, format!("{collection}/j1"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got["entrypoint"], "python -c 'print(1)'");
    let (status, _) = send(&client, Method::DELETE, format!("{collection}/j1"), None).await;
    assert_eq!(status, StatusCode::OK);
    let error = wait_gone(&client, &format!("{collection}/j1")).await;
    assert_eq!(
        error["message"],
        "Job j1 not found: Get cluster failed.: NotFoundError: Job j1 not found: rayjobs.ray.io \"j1\" not found"
    );
    let (status, error) = send(&client, Method::GET, format!("{collection}/"), None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .starts_with("job name is empty.")
    );
    server.stop().await;
}

fn service(ns: &str, name: &str, config: &str) -> Value {
    json!({
        "name": name, "namespace": ns, "user": "carol", "version": "2.41.0",
        "serveConfigV2": config,
        "serviceUnhealthySecondThreshold": 90,
        "clusterSpec": cluster_spec()
    })
}

#[tokio::test]
async fn service_lifecycle() {
    let mut server = TestServer::start().await;
    let ns = server.namespace("services").await;
    let client = http_client();
    template(&client, &server, &ns).await;
    let collection = server.url(&format!("/apis/v1/namespaces/{ns}/services"));

    let (status, created) = send(
        &client,
        Method::POST,
        collection.clone(),
        Some(service(&ns, "s1", "applications:\n  - name: a\n")),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    assert_eq!(created["serveConfigV2"], "applications:\n  - name: a\n");
    assert_eq!(created["serviceUnhealthySecondThreshold"], 90);
    assert_eq!(created["rayServiceStatus"], json!({}));
    assert_eq!(created["deleteAt"], "1969-12-31T23:59:59Z");
    let object = objects(&server, &ns, "RayService", "rayservices")
        .get("s1")
        .await
        .unwrap();
    assert!(
        object
            .metadata
            .annotations
            .clone()
            .unwrap()
            .contains_key("ray.io/creation-timestamp")
    );

    // Update replaces the object named in the body; the path name is only checked for presence.
    let (status, updated) = send(
        &client,
        Method::PUT,
        format!("{collection}/anything"),
        Some(service(&ns, "s1", "applications:\n  - name: b\n")),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["serveConfigV2"], "applications:\n  - name: b\n");
    let object = objects(&server, &ns, "RayService", "rayservices")
        .get("s1")
        .await
        .unwrap();
    let annotations = object.metadata.annotations.clone().unwrap();
    assert!(annotations.contains_key("ray.io/update-timestamp"));
    assert!(!annotations.contains_key("ray.io/creation-timestamp"));

    let (status, error) = send(
        &client,
        Method::PUT,
        format!("{collection}/s9"),
        Some(service(&ns, "s9", "x: 1\n")),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        error["message"],
        "Service s9 not found: Update ray service failed.: Update service fail, no service named: s9 : NotFoundError: Service s9 not found: rayservices.ray.io \"s9\" not found"
    );
    let (status, error) = send(
        &client,
        Method::POST,
        collection.clone(),
        Some(service(&ns, "s2", "")),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        error["message"],
        "Failed to create a Ray Service: Create ray service failed.: InvalidInputError: Failed to create a Ray Service: serve configuration is not defined"
    );

    // Paging with page_size / page_token.
    let (status, _) = send(
        &client,
        Method::POST,
        collection.clone(),
        Some(service(&ns, "s2", "x: 1\n")),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, page) = send(
        &client,
        Method::GET,
        format!("{collection}?pageSize=1"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["services"].as_array().unwrap().len(), 1);
    assert!(page.get("totalSize").is_none());
    let token = page["nextPageToken"].as_str().unwrap().to_string();
    let (_, rest) = send(
        &client,
        Method::GET,
        format!("{collection}?page_size=1&page_token={token}"),
        None,
    )
    .await;
    assert_eq!(rest["services"][0]["name"], "s2");

    let (status, _) = send(&client, Method::DELETE, format!("{collection}/s1"), None).await;
    assert_eq!(status, StatusCode::OK);
    wait_gone(&client, &format!("{collection}/s1")).await;
    let (status, error) = send(&client, Method::DELETE, format!("{collection}/s1"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .starts_with("Service s1 not found: delete ray service failure")
    );
    server.stop().await;
}

#[tokio::test]
async fn jobs_and_services_over_grpc() {
    use kuberay_api::proto::ray_job_service_client::RayJobServiceClient;
    use kuberay_api::proto::ray_serve_service_client::RayServeServiceClient;
    use kuberay_api::proto::*;

    let mut server = TestServer::start().await;
    let ns = server.namespace("grpc-js").await;
    let client = http_client();
    template(&client, &server, &ns).await;

    let mut jobs = RayJobServiceClient::connect(server.grpc.clone())
        .await
        .unwrap();
    let err = jobs
        .create_ray_job(CreateRayJobRequest {
            job: None,
            namespace: ns.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let job: RayJob = serde_json::from_value(job(&ns, "gj")).unwrap();
    let created = jobs
        .create_ray_job(CreateRayJobRequest {
            job: Some(job),
            namespace: ns.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(created.entrypoint_num_gpus, 1.0);
    let listed = jobs
        .list_ray_jobs(ListRayJobsRequest {
            namespace: ns.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.jobs.len(), 1);

    let mut services = RayServeServiceClient::connect(server.grpc.clone())
        .await
        .unwrap();
    let err = services
        .create_ray_service(CreateRayServiceRequest {
            service: None,
            namespace: ns.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message()
            .starts_with("Service is empty, please input a valid payload.")
    );
    let svc: RayService = serde_json::from_value(service(&ns, "gs", "x: 1\n")).unwrap();
    services
        .create_ray_service(CreateRayServiceRequest {
            service: Some(svc),
            namespace: ns.clone(),
        })
        .await
        .unwrap();
    let got = services
        .get_ray_service(GetRayServiceRequest {
            name: "gs".into(),
            namespace: ns.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        got.delete_at,
        Some(kuberay_api::Timestamp::from_seconds(-1))
    );
    services
        .delete_ray_service(DeleteRayServiceRequest {
            name: "gs".into(),
            namespace: ns.clone(),
        })
        .await
        .unwrap();
    server.stop().await;
}
