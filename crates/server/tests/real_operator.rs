//! Fidelity against the real KubeRay CRDs and operator: what our V1 API writes must pass the
//! CRD schemas and be reconciled by the operator without errors.
//!
//! Needs the cluster of `e2e/up`; `e2e/run-suites` runs it with `--ignored` and sets
//! `KUBERAY_TEST_KUBECONFIG` (and `KUBERAY_TEST_OPERATOR_LOG`, the operator's log file).

mod support;

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Pod, Service, ServiceAccount};
use k8s_openapi::api::events::v1::Event;
use kube::Api;
use kube::api::{DynamicObject, GroupVersionKind, ListParams};
use kube::discovery::ApiResource;
use reqwest::StatusCode;
use serde_json::{Value, json};
use support::{TestServer, http_client};

const TESTDATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../core/testdata");

fn ray(server: &TestServer, ns: &str, kind: &str, plural: &str) -> Api<DynamicObject> {
    let resource =
        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("ray.io", "v1", kind), plural);
    Api::namespaced_with(server.kube(), ns, &resource)
}

async fn post(client: &reqwest::Client, url: String, body: &Value) -> Value {
    let response = client
        .post(url)
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}\n-> {text}");
    serde_json::from_str(&text).unwrap()
}

/// Polls `check` until it returns `Some`, for at most a minute.
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Warning events about the Ray objects (the operator's reports; storage provisioning and
/// scheduling warnings of this kubelet-less cluster are not about what we wrote).
async fn warnings(server: &TestServer, ns: &str) -> Vec<String> {
    Api::<Event>::namespaced(server.kube(), ns)
        .list(&ListParams::default().fields("type=Warning"))
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| {
            e.regarding
                .as_ref()
                .and_then(|r| r.kind.as_deref())
                .is_some_and(|kind| kind.starts_with("Ray"))
        })
        .map(|e| {
            format!(
                "{} {}: {}",
                e.regarding.and_then(|r| r.name).unwrap_or_default(),
                e.reason.unwrap_or_default(),
                e.note.unwrap_or_default()
            )
        })
        .collect()
}

/// Waits until the operator's log (`KUBERAY_TEST_OPERATOR_LOG`) has had no new line about
/// namespace `ns` for 5 s, for at most 30 s; without the log, waits 10 s.
async fn settle(ns: &str) {
    let Ok(path) = std::env::var("KUBERAY_TEST_OPERATOR_LOG") else {
        tokio::time::sleep(Duration::from_secs(10)).await;
        return;
    };
    let lines_about = || {
        std::fs::read_to_string(&path)
            .unwrap_or_default()
            .lines()
            .filter(|line| line.contains(ns))
            .count()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = lines_about();
    let mut quiet_since = Instant::now();
    while Instant::now() < deadline && quiet_since.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = lines_about();
        if now != seen {
            seen = now;
            quiet_since = Instant::now();
        }
    }
}

/// The first example cluster (folders are read in name order).
fn clusters_first_name() -> String {
    let mut names: Vec<String> = std::fs::read_dir(format!("{TESTDATA}/clusters"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names.remove(0)
}

#[tokio::test]
#[ignore = "needs the real cluster and operator of e2e/up (run by e2e/run-suites)"]
async fn examples_are_accepted_and_reconciled_by_the_operator() {
    assert!(
        support::real_cluster().is_some(),
        "set KUBERAY_TEST_KUBECONFIG to the kubeconfig of e2e/up"
    );
    let mut server = TestServer::start().await;
    let ns = server.namespace("operator").await;
    let client = http_client();

    let templates: Vec<Value> = serde_json::from_str(
        &std::fs::read_to_string(format!("{TESTDATA}/templates.json")).unwrap(),
    )
    .unwrap();
    for mut template in templates {
        template["namespace"] = json!(ns);
        post(
            &client,
            server.url(&format!("/apis/v1/namespaces/{ns}/compute_templates")),
            &template,
        )
        .await;
    }

    // Every example cluster of the conversion tests.
    let mut clusters = Vec::new();
    let mut examples: Vec<_> = std::fs::read_dir(format!("{TESTDATA}/clusters"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    examples.sort();
    let mut head_spec = None;
    for dir in examples {
        let mut request: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("request.json")).unwrap())
                .unwrap();
        request["namespace"] = json!(ns);
        // Examples may share a name; the folder names are unique.
        request["name"] = json!(dir.file_name().unwrap().to_str().unwrap());
        if head_spec.is_none() {
            head_spec = Some(request["clusterSpec"].clone());
        }
        // The operator requires service accounts a cluster names to exist, as a user would.
        let spec = &request["clusterSpec"];
        let groups = std::iter::once(&spec["headGroupSpec"])
            .chain(spec["workerGroupSpec"].as_array().into_iter().flatten());
        for account in groups.filter_map(|g| g["serviceAccount"].as_str()) {
            let account: ServiceAccount =
                serde_json::from_value(json!({"metadata": {"name": account}})).unwrap();
            let _ = Api::<ServiceAccount>::namespaced(server.kube(), &ns)
                .create(&Default::default(), &account)
                .await;
        }
        let created = post(
            &client,
            server.url(&format!("/apis/v1/namespaces/{ns}/clusters")),
            &request,
        )
        .await;
        clusters.push(created["name"].as_str().unwrap().to_string());
    }

    // A job with its own cluster, and a service.
    let cluster_spec = head_spec.expect("at least one example");
    let job = json!({"name": "fidelity-job", "namespace": ns, "user": "e2e", "version": "2.41.0",
        "entrypoint": "python -c 'print(42)'", "clusterSpec": cluster_spec,
        "shutdownAfterJobFinishes": true, "jobSubmitter": {"image": "rayproject/ray:2.41.0"}});
    post(
        &client,
        server.url(&format!("/apis/v1/namespaces/{ns}/jobs")),
        &job,
    )
    .await;
    // A job on an existing cluster, chosen by selector, with its own submitter.
    let selector_job = json!({"name": "fidelity-selector-job", "namespace": ns, "user": "e2e",
        "entrypoint": "python -c 'print(42)'",
        "clusterSelector": {"ray.io/cluster": clusters_first_name()},
        "jobSubmitter": {"image": "rayproject/ray:2.41.0", "cpu": "400m", "memory": "150Mi"},
        "entrypointNumCpus": 1});
    post(
        &client,
        server.url(&format!("/apis/v1/namespaces/{ns}/jobs")),
        &selector_job,
    )
    .await;
    let service = json!({"name": "fidelity-svc", "namespace": ns, "user": "e2e", "version": "2.41.0",
        "serveConfigV2": "applications:\n  - name: app\n    import_path: app:main\n    route_prefix: /\n",
        "clusterSpec": cluster_spec});
    post(
        &client,
        server.url(&format!("/apis/v1/namespaces/{ns}/services")),
        &service,
    )
    .await;

    // The operator reconciles each cluster: head Service, head Pod, status.
    let services: Api<Service> = Api::namespaced(server.kube(), &ns);
    let pods: Api<Pod> = Api::namespaced(server.kube(), &ns);
    let ray_clusters = ray(&server, &ns, "RayCluster", "rayclusters");
    for name in &clusters {
        eventually(&format!("head Service of {name}"), || async {
            services.get_opt(&format!("{name}-head-svc")).await.unwrap()
        })
        .await;
        eventually(&format!("head Pod of {name}"), || async {
            let selector = format!("ray.io/cluster={name},ray.io/node-type=head");
            let list = pods
                .list(&ListParams::default().labels(&selector))
                .await
                .unwrap();
            list.items.into_iter().next()
        })
        .await;
        eventually(&format!("status of {name}"), || async {
            let object = ray_clusters.get(name).await.unwrap();
            object
                .data
                .get("status")
                .filter(|s| s.as_object().is_some_and(|o| !o.is_empty()))
                .cloned()
        })
        .await;
    }
    let jobs = ray(&server, &ns, "RayJob", "rayjobs");
    eventually("the RayJob's cluster", || async {
        let job = jobs.get("fidelity-job").await.unwrap();
        job.data["status"]["rayClusterName"]
            .as_str()
            .filter(|n| !n.is_empty())
            .map(str::to_string)
    })
    .await;
    eventually("the selector job's deployment status", || async {
        let job = jobs.get("fidelity-selector-job").await.unwrap();
        job.data["status"]["jobDeploymentStatus"]
            .as_str()
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    })
    .await;
    let ray_services = ray(&server, &ns, "RayService", "rayservices");
    eventually("the RayService's cluster", || async {
        let svc = ray_services.get("fidelity-svc").await.unwrap();
        let status = &svc.data["status"];
        ["pendingServiceStatus", "activeServiceStatus"]
            .iter()
            .find_map(|key| status[key]["rayClusterName"].as_str())
            .filter(|n| !n.is_empty())
            .map(str::to_string)
    })
    .await;

    // The API reads back what the operator wrote.
    let response = client
        .get(server.url(&format!("/apis/v1/namespaces/{ns}/clusters")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let listed: Value = response.json().await.unwrap();
    let names: Vec<&str> = listed["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    for name in &clusters {
        assert!(
            names.contains(&name.as_str()),
            "{name} missing from {names:?}"
        );
    }

    // Let the operator settle (a warning it emits seconds after the objects look reconciled
    // counts too): until it has written nothing about the namespace for 5 s, or 30 s at most.
    settle(&ns).await;

    // No warning events and no operator errors about anything in the namespace.
    let warnings: Vec<String> = warnings(&server, &ns)
        .await
        .into_iter()
        // The operator's RayService controller can create the cluster it named a second time
        // before its cache has the first (a loaded machine); the create is refused and it
        // carries on with the cluster that exists. Not about our objects.
        .filter(|w| !(w.contains("FailedToCreateRayCluster") && w.contains("already exists")))
        .collect();
    assert!(warnings.is_empty(), "warning events: {warnings:#?}");
    if let Ok(path) = std::env::var("KUBERAY_TEST_OPERATOR_LOG") {
        let log = std::fs::read_to_string(&path).unwrap_or_default();
        let errors: Vec<&str> = log
            .lines()
            .filter(|line| line.contains("\"level\":\"error\"") && line.contains(&ns))
            // The operator's own write conflicts are retried by its controller; not about us.
            .filter(|line| !line.contains("the object has been modified"))
            // Its RayService controller can look for the head pod before the RayCluster
            // controller has created it (a loaded machine); it retries. Whether head pods are
            // created at all is checked above for every cluster.
            .filter(|line| !line.contains("found 0 head"))
            // The same stale-cache create as above.
            .filter(|line| !line.contains("already exists"))
            .collect();
        assert!(errors.is_empty(), "operator errors: {errors:#?}");
    }
    server.stop().await;
}
