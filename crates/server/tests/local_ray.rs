//! The embedded backend's local Ray runtime against real Ray (`ray[default]` from PyPI, cached
//! outside the repository: see `ray/mod.rs`).
//!
//! One scenario, as a user would go through it: a cluster created through V1 comes up with a
//! head and a worker, takes a job through V1 job submissions (no dashboard flag), scales through
//! V2, survives a server restart (its processes are stopped with the server and started again),
//! and once deleted leaves no process behind. Ray is kept small for a two-core machine: one CPU
//! and an 80 MB object store per node.

mod ray;
mod support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use ray::fixtures::call;
use serde_json::{Value, json};
use support::{TestServer, http_client};

const CLUSTER: &str = "local";

/// Pids of live processes whose local-runtime marker names `namespace`/`cluster` (and contains
/// `part`, when given).
fn processes_of(namespace: &str, cluster: &str, part: &str) -> BTreeSet<u32> {
    let needle = format!("/{namespace}/{cluster}/");
    let mut found = BTreeSet::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let zombie = std::fs::read_to_string(entry.path().join("stat"))
            .ok()
            .and_then(|stat| {
                stat.rfind(')')
                    .map(|i| stat[i + 1..].trim_start().starts_with('Z'))
            })
            .unwrap_or(true);
        if zombie {
            continue;
        }
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else {
            continue;
        };
        let marked = environ.split(|b| *b == 0).any(|var| {
            let var = String::from_utf8_lossy(var);
            var.strip_prefix(&format!("{}=", kuberay_local_ray::MARKER_VAR))
                .is_some_and(|value| value.contains(&needle) && value.contains(part))
        });
        if marked {
            found.insert(pid);
        }
    }
    found
}

struct Api {
    http: reqwest::Client,
    server: String,
    ns: String,
}

impl Api {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server)
    }

    fn v2(&self) -> String {
        self.url(&format!(
            "/apis/ray.io/v1/namespaces/{}/rayclusters/{CLUSTER}",
            self.ns
        ))
    }

    async fn v1_cluster(&self) -> (u16, Value) {
        call(self.http.get(self.url(&format!(
            "/apis/v1/namespaces/{}/clusters/{CLUSTER}",
            self.ns
        ))))
        .await
    }

    async fn object(&self) -> (u16, Value) {
        call(self.http.get(self.v2())).await
    }

    /// Polls the RayCluster until `check` accepts it; panics after `limit`.
    async fn wait_for(&self, what: &str, limit: Duration, check: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + limit;
        loop {
            let (status, body) = self.object().await;
            if status == 200 && check(&body) {
                return body;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: not within {limit:?}; the RayCluster: {body}"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Replaces the worker group's replicas with a PUT of the whole object.
    async fn put_replicas(&self, replicas: i64) {
        let (_, mut object) = self.object().await;
        object["spec"]["workerGroupSpecs"][0]["replicas"] = json!(replicas);
        if let Some(meta) = object["metadata"].as_object_mut() {
            meta.remove("managedFields");
        }
        let (status, body) = call(
            self.http
                .put(self.v2())
                .header("content-type", "application/json")
                .body(object.to_string()),
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }

    /// Sets the worker group's replicas and minimum with a JSON merge patch (which replaces the
    /// list).
    async fn patch_replicas(&self, replicas: i64) {
        let (_, object) = self.object().await;
        let mut groups = object["spec"]["workerGroupSpecs"].clone();
        groups[0]["replicas"] = json!(replicas);
        groups[0]["minReplicas"] = json!(replicas);
        let (status, body) = call(
            self.http
                .patch(self.v2())
                .header("content-type", "application/merge-patch+json")
                .body(json!({"spec": {"workerGroupSpecs": groups}}).to_string()),
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }
}

fn workers(status: &Value, field: &str) -> i64 {
    status["status"][field].as_i64().unwrap_or(-1)
}

fn is_ready(object: &Value, workers_wanted: i64) -> bool {
    object["status"]["state"] == "ready"
        && workers(object, "readyWorkerReplicas") == workers_wanted
        && workers(object, "desiredWorkerReplicas") == workers_wanted
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "runs real Ray clusters (installed from PyPI on first use); run with --ignored, as .ci/run does"]
async fn clusters_run_as_local_ray_processes() {
    let venv = match tokio::task::spawn_blocking(ray::ensure_installed)
        .await
        .expect("the installer ran")
    {
        Ok(venv) => venv,
        Err(error) => {
            eprintln!("SKIPPED: Ray could not be installed, so no local cluster can run: {error}");
            return;
        }
    };
    let ray_flag = format!("--local-ray={}", venv.join("bin/ray").display());
    // The default 2 s per dashboard call is the Go server's; the machine is shared with builds.
    let flags = [ray_flag.as_str(), "--dashboard-timeout=15s"];
    let data = tempfile::tempdir().expect("a data directory");
    let mut server = TestServer::start_in(data.path(), &flags).await;
    let ns = server.namespace("localray").await;
    let api = Api {
        http: http_client(),
        server: server.http.clone(),
        ns: ns.clone(),
    };

    // A cluster through V1: one CPU per node, a small object store, one worker.
    let (status, body) = call(
        api.http
            .post(api.url(&format!("/apis/v1/namespaces/{ns}/compute_templates")))
            .body(json!({"name": "tiny", "namespace": ns, "cpu": 1, "memory": 1}).to_string()),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let params = json!({"object-store-memory": "80000000", "dashboard-host": "0.0.0.0"});
    let (status, body) = call(
        api.http
            .post(api.url(&format!("/apis/v1/namespaces/{ns}/clusters")))
            .body(
                json!({
                    "name": CLUSTER, "namespace": ns, "user": "tests", "version": "2.60.0",
                    "clusterSpec": {
                        "headGroupSpec": {"computeTemplate": "tiny", "image": "rayproject/ray:2.60.0",
                                          "rayStartParams": params},
                        "workerGroupSpec": [{"groupName": "small", "computeTemplate": "tiny",
                            "image": "rayproject/ray:2.60.0", "replicas": 1, "minReplicas": 0,
                            "maxReplicas": 3, "rayStartParams": params}]
                    }
                })
                .to_string(),
            ),
    )
    .await;
    assert_eq!(status, 200, "{body}");

    let begin = Instant::now();
    let ready = api
        .wait_for("ready with one worker", Duration::from_secs(180), |o| {
            is_ready(o, 1)
        })
        .await;
    eprintln!("cluster ready after {:?}", begin.elapsed());
    let status = &ready["status"];
    assert_eq!(status["head"]["podIP"], "127.0.0.1", "{status}");
    assert_eq!(status["head"]["serviceIP"], "127.0.0.1", "{status}");
    assert_eq!(status["availableWorkerReplicas"], 1, "{status}");
    let group = &ready["spec"]["workerGroupSpecs"][0];
    assert_eq!(
        status["minWorkerReplicas"], group["minReplicas"],
        "{status}"
    );
    assert_eq!(
        status["maxWorkerReplicas"], group["maxReplicas"],
        "{status}"
    );
    assert_eq!(status["desiredCPU"], "2", "{status}");
    assert_eq!(status["desiredMemory"], "2Gi", "{status}");
    assert!(status["observedGeneration"].as_i64().is_some(), "{status}");
    assert!(status["lastUpdateTime"].is_string(), "{status}");
    let conditions = status["conditions"].as_array().expect("conditions");
    for kind in ["HeadPodReady", "RayClusterProvisioned"] {
        assert!(
            conditions
                .iter()
                .any(|c| c["type"] == kind && c["status"] == "True"),
            "{kind}: {status}"
        );
    }
    let endpoints = &status["endpoints"];
    for name in ["client", "dashboard", "gcs-server", "metrics"] {
        let port: u16 = endpoints[name]
            .as_str()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("endpoint {name}: {endpoints}"));
        assert!(port > 0);
    }
    assert!(
        ready["metadata"]["finalizers"]
            .as_array()
            .is_some_and(|f| f.iter().any(|f| f == kuberay_local_ray::FINALIZER)),
        "{}",
        ready["metadata"]
    );
    // The dashboard really is there, on loopback only.
    let dashboard = format!(
        "http://127.0.0.1:{}",
        endpoints["dashboard"].as_str().unwrap()
    );
    let (code, version) = call(api.http.get(format!("{dashboard}/api/version"))).await;
    assert_eq!(code, 200, "{version}");
    assert_eq!(version["ray_version"], ray::RAY_VERSION);

    // V1 shows the state, the endpoints and the events.
    let (code, cluster) = api.v1_cluster().await;
    assert_eq!(code, 200, "{cluster}");
    assert_eq!(cluster["clusterState"], "ready", "{cluster}");
    assert_eq!(cluster["serviceEndpoint"], *endpoints, "{cluster}");
    let reasons: Vec<&str> = cluster["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["reason"].as_str())
        .collect();
    assert!(reasons.contains(&"CreatedHeadPod"), "{cluster}");
    assert!(reasons.contains(&"CreatedWorkerPod"), "{cluster}");

    // A job through V1 job submissions, with no dashboard flag.
    let jobs = api.url(&format!(
        "/apis/v1/namespaces/{ns}/jobsubmissions/{CLUSTER}"
    ));
    let (code, body) = call(
        api.http.post(&jobs).body(
            json!({"entrypoint": "echo \"$GREETING from a local cluster\"", "submissionId": "local-1",
                   "runtimeEnv": "env_vars:\n  GREETING: hello\n"})
            .to_string(),
        ),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (code, body) = call(api.http.get(format!("{jobs}/local-1"))).await;
        assert_eq!(code, 200, "{body}");
        match body["status"].as_str() {
            Some("SUCCEEDED") => break,
            Some("FAILED" | "STOPPED") => panic!("the job did not succeed: {body}"),
            _ => {}
        }
        assert!(Instant::now() < deadline, "the job did not finish: {body}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let (code, body) = call(api.http.get(format!("{jobs}/log/local-1"))).await;
    assert_eq!(code, 200, "{body}");
    assert!(
        body["log"]
            .as_str()
            .unwrap_or_default()
            .contains("hello from a local cluster"),
        "{body}"
    );

    // Scale through V2: 1 -> 2 (PUT), 2 -> 0 (merge patch).
    api.put_replicas(2).await;
    api.wait_for("two workers ready", Duration::from_secs(120), |o| {
        is_ready(o, 2) && workers(o, "availableWorkerReplicas") == 2
    })
    .await;
    assert!(!processes_of(&ns, CLUSTER, "-small-worker-").is_empty());
    api.patch_replicas(0).await;
    api.wait_for("no worker", Duration::from_secs(60), |o| {
        workers(o, "desiredWorkerReplicas") == 0
            && workers(o, "availableWorkerReplicas") == 0
            && workers(o, "readyWorkerReplicas") == 0
    })
    .await;
    let deadline = Instant::now() + Duration::from_secs(40);
    while !processes_of(&ns, CLUSTER, "-small-worker-").is_empty() {
        assert!(
            Instant::now() < deadline,
            "worker processes left after scaling to 0"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let (_, cluster) = api.v1_cluster().await;
    assert!(
        cluster["events"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|e| e["reason"] == "DeletedWorkerPod"),
        "{cluster}"
    );

    // A clean shutdown stops every process; the next server starts the cluster again.
    let head = processes_of(&ns, CLUSTER, "");
    assert!(!head.is_empty(), "the head runs");
    let begin = Instant::now();
    server.shutdown();
    server.wait().await;
    eprintln!("server stopped after {:?}", begin.elapsed());
    let left = processes_of(&ns, CLUSTER, "");
    assert!(left.is_empty(), "processes left after shutdown: {left:?}");

    let server = TestServer::start_in(data.path(), &flags).await;
    let api = Api {
        http: http_client(),
        server: server.http.clone(),
        ns: ns.clone(),
    };
    let restarted = api
        .wait_for("the head again", Duration::from_secs(180), |o| {
            o["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "HeadPodReady" && c["status"] == "True")
                && !processes_of(&ns, CLUSTER, "").is_empty()
        })
        .await;
    assert_eq!(restarted["status"]["state"], "ready", "{restarted}");
    let running = processes_of(&ns, CLUSTER, "");
    assert!(running.is_disjoint(&head), "the old processes are gone");

    // Delete through V1: the object goes once its processes have stopped.
    let (code, body) = call(
        api.http
            .delete(api.url(&format!("/apis/v1/namespaces/{ns}/clusters/{CLUSTER}"))),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (code, body) = api.object().await;
        if code == 404 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the RayCluster was not deleted: {body}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let left = processes_of(&ns, CLUSTER, "");
    assert!(left.is_empty(), "processes left after the delete: {left:?}");
    for pid in running {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists()
                || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    .is_ok_and(|s| s.contains(") Z")),
            "process {pid} of the cluster still runs"
        );
    }
    server.stop().await;
}
