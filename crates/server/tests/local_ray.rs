//! The embedded backend's local Ray runtime against real Ray (`ray[default,serve]` from PyPI, cached
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

use kuberay_local_ray::process::{marker_of, processes};
use ray::fixtures::call;
use serde_json::{Value, json};
use support::{TestServer, http_client};

const CLUSTER: &str = "local";

/// Pids of live processes whose local-runtime marker names `namespace`/`cluster` (and contains
/// `part`, when given).
fn processes_of(namespace: &str, cluster: &str, part: &str) -> BTreeSet<u32> {
    let needle = format!("/{namespace}/{cluster}/");
    processes()
        .into_iter()
        .filter(|p| !p.zombie)
        .filter(|p| {
            marker_of(p.pid).is_some_and(|marker| marker.contains(&needle) && marker.contains(part))
        })
        .map(|p| p.pid)
        .collect()
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
    let Some(ray_flag) = local_ray_flag().await else {
        return;
    };
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

/// Polls `url` until `check` accepts its JSON; panics after `limit` with the last answer.
async fn poll(
    http: &reqwest::Client,
    url: &str,
    what: &str,
    limit: Duration,
    check: impl Fn(u16, &Value) -> bool,
) -> Value {
    let deadline = Instant::now() + limit;
    loop {
        let (code, body) = call(http.get(url)).await;
        if check(code, &body) {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not within {limit:?}; last answer {code}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The text of `url` as headless Chromium renders it (scripts run for up to 20 s of virtual
/// time). `None` when there is no Chromium and `KUBERAY_TEST_REQUIRE_BROWSER` is not set.
async fn browser_text(url: &str) -> Option<String> {
    let chromium = ["chromium", "chromium-browser"].into_iter().find(|name| {
        std::process::Command::new(name)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    });
    let Some(chromium) = chromium else {
        assert!(
            std::env::var_os("KUBERAY_TEST_REQUIRE_BROWSER").is_none(),
            "no Chromium (apt-get install chromium)"
        );
        eprintln!("SKIPPED: no Chromium, the dashboard page is not rendered");
        return None;
    };
    let profile = tempfile::tempdir().expect("a browser profile directory");
    let output = tokio::process::Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--virtual-time-budget=20000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(url)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(120), output)
        .await
        .expect("Chromium finishes within 2 minutes")
        .expect("Chromium runs");
    assert!(
        output.status.success(),
        "Chromium failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let dom = String::from_utf8_lossy(&output.stdout);
    // Tags out, whitespace folded: the page's text.
    let mut text = String::new();
    let mut in_tag = false;
    for c in dom.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                text.push(' ');
            }
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    Some(text.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// `--local-ray=<the cached virtualenv's ray>`, installing Ray on first use; `None` (the test
/// is skipped, loudly) when it cannot be installed.
async fn local_ray_flag() -> Option<String> {
    match tokio::task::spawn_blocking(ray::ensure_installed)
        .await
        .expect("the installer ran")
    {
        Ok(venv) => Some(format!("--local-ray={}", venv.join("bin/ray").display())),
        Err(error) => {
            eprintln!("SKIPPED: Ray could not be installed, so no local cluster can run: {error}");
            None
        }
    }
}

/// A one-CPU node group of the V1 API.
fn tiny_group(params: &Value) -> Value {
    json!({"computeTemplate": "tiny", "image": "rayproject/ray:2.60.0", "rayStartParams": params})
}

/// The Serve application the RayService deploys, in a module on the head's `PYTHONPATH`.
const SERVE_APP: &str = "\
from ray import serve


@serve.deployment(num_replicas=1, ray_actor_options={\"num_cpus\": 0})
class Greeter:
    def __init__(self, greeting: str):
        self.greeting = greeting

    def __call__(self, request):
        return f\"{self.greeting} from a local RayService\"


def build(args):
    return Greeter.bind(args.get(\"greeting\", \"hello\"))
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "runs real Ray clusters (installed from PyPI on first use); run with --ignored, as .ci/run does"]
async fn jobs_and_services_run_on_local_clusters() {
    let Some(ray_flag) = local_ray_flag().await else {
        return;
    };
    let flags = [ray_flag.as_str(), "--dashboard-timeout=15s"];
    let data = tempfile::tempdir().expect("a data directory");
    let mut server = TestServer::start_in(data.path(), &flags).await;
    let ns = server.namespace("localjobs").await;
    let s = Scene {
        http: http_client(),
        base: server.http.clone(),
        ns: ns.clone(),
        params: json!({"object-store-memory": "80000000"}),
        kube: server.kube(),
    };
    let (status, body) = call(
        s.http
            .post(s.url(&format!("/apis/v1/namespaces/{ns}/compute_templates")))
            .body(json!({"name": "tiny", "namespace": ns, "cpu": 1, "memory": 1}).to_string()),
    )
    .await;
    assert_eq!(status, 200, "{body}");

    v1_ray_job_runs_and_its_cluster_goes(&s).await;
    a_job_past_its_deadline_fails(&s).await;
    a_suspended_job_waits_then_runs(&s).await;
    a_ray_service_serves_through_the_proxy(&s).await;
    server.stop().await;
}

/// What the steps of the jobs and services scenario share.
struct Scene {
    http: reqwest::Client,
    /// The server's HTTP address.
    base: String,
    ns: String,
    /// `rayStartParams` of every node: a small object store.
    params: Value,
    kube: kube::Client,
}

impl Scene {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A head-only `rayClusterSpec` of one CPU.
    fn head_only(&self) -> Value {
        json!({"headGroupSpec": {"rayStartParams": self.params,
            "template": {"spec": {"containers": [{"name": "ray-head", "image": "rayproject/ray:2.60.0",
                "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}]}}}})
    }
}

/// A RayJob through V1: its cluster comes up, the entrypoint runs to SUCCEEDED, and the
/// cluster is deleted once the job is done.
async fn v1_ray_job_runs_and_its_cluster_goes(s: &Scene) {
    let (http, ns, params) = (&s.http, &s.ns, &s.params);
    let url = |path: &str| s.url(path);
    // A RayJob through V1: its cluster comes up, the entrypoint runs to SUCCEEDED, and the
    // cluster is deleted once the job is done.
    let (status, body) = call(
        http.post(url(&format!("/apis/v1/namespaces/{ns}/jobs"))).body(
            json!({
                "name": "count", "namespace": ns, "user": "tests",
                "entrypoint": "python -c \"import ray; ray.init(); print('counted', ray.get(ray.remote(lambda: 42).remote()))\"",
                "shutdownAfterJobFinishes": true, "ttlSecondsAfterFinished": 1,
                "clusterSpec": {"headGroupSpec": tiny_group(params)},
            })
            .to_string(),
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let job_url = url(&format!("/apis/ray.io/v1/namespaces/{ns}/rayjobs/count"));
    let begin = Instant::now();
    let job = poll(
        http,
        &job_url,
        "the RayJob complete",
        Duration::from_secs(240),
        |_, job| {
            let status = &job["status"]["jobDeploymentStatus"];
            assert!(
                status != "Failed" && status != "ValidationFailed",
                "the RayJob failed: {job}"
            );
            status == "Complete"
        },
    )
    .await;
    eprintln!("RayJob complete after {:?}", begin.elapsed());
    let status = &job["status"];
    assert_eq!(status["jobStatus"], "SUCCEEDED", "{status}");
    assert_eq!(status["succeeded"], 1, "{status}");
    let cluster = status["rayClusterName"]
        .as_str()
        .expect("a cluster name")
        .to_string();
    assert!(cluster.starts_with("count-"), "{status}");
    assert!(
        status["jobId"]
            .as_str()
            .is_some_and(|id| id.starts_with("count-")),
        "{status}"
    );
    for time in ["startTime", "endTime"] {
        assert!(status[time].is_string(), "{time}: {status}");
    }
    assert!(
        status["dashboardURL"]
            .as_str()
            .is_some_and(|u| u.starts_with("127.0.0.1:")),
        "{status}"
    );
    // V1 reads the same.
    let (code, v1) = call(http.get(url(&format!("/apis/v1/namespaces/{ns}/jobs/count")))).await;
    assert_eq!(code, 200, "{v1}");
    assert_eq!(v1["jobStatus"], "SUCCEEDED", "{v1}");
    assert_eq!(v1["jobDeploymentStatus"], "Complete", "{v1}");
    // The job's output is in its log on the head while the cluster lives; once the TTL has
    // passed the cluster and its processes are gone.
    let cluster_url = url(&format!(
        "/apis/ray.io/v1/namespaces/{ns}/rayclusters/{cluster}"
    ));
    poll(
        http,
        &cluster_url,
        "the job's cluster deleted",
        Duration::from_secs(90),
        |code, _| code == 404,
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !processes_of(ns, &cluster, "").is_empty() {
        assert!(
            Instant::now() < deadline,
            "processes of the job's cluster left"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// `activeDeadlineSeconds`: a job that runs too long fails; deleting it deletes its cluster.
async fn a_job_past_its_deadline_fails(s: &Scene) {
    let (http, ns) = (&s.http, &s.ns);
    let url = |path: &str| s.url(path);
    // activeDeadlineSeconds: a job that runs too long fails, and deleting it deletes its cluster.
    let rayjobs = url(&format!("/apis/ray.io/v1/namespaces/{ns}/rayjobs"));
    let head_only = s.head_only();
    let late = json!({
        "apiVersion": "ray.io/v1", "kind": "RayJob",
        "metadata": {"name": "late", "namespace": ns},
        "spec": {"entrypoint": "sleep 600", "activeDeadlineSeconds": 5, "rayClusterSpec": head_only},
    });
    let (code, body) = call(
        http.post(&rayjobs)
            .header("content-type", "application/json")
            .body(late.to_string()),
    )
    .await;
    assert_eq!(code, 201, "{body}");
    let failed = poll(
        http,
        &format!("{rayjobs}/late"),
        "the late job failed",
        Duration::from_secs(120),
        |_, j| j["status"]["jobDeploymentStatus"] == "Failed",
    )
    .await;
    let status = &failed["status"];
    assert_eq!(status["reason"], "DeadlineExceeded", "{status}");
    assert!(
        status["message"]
            .as_str()
            .is_some_and(|m| m.contains("ActiveDeadlineSeconds: 5")),
        "{status}"
    );
    assert_eq!(status["failed"], 1, "{status}");
    let late_cluster = status["rayClusterName"]
        .as_str()
        .expect("a cluster name")
        .to_string();
    let (code, body) = call(http.delete(format!("{rayjobs}/late"))).await;
    assert_eq!(code, 200, "{body}");
    poll(
        http,
        &format!("{rayjobs}/late"),
        "the late job deleted",
        Duration::from_secs(60),
        |code, _| code == 404,
    )
    .await;
    poll(
        http,
        &url(&format!(
            "/apis/ray.io/v1/namespaces/{ns}/rayclusters/{late_cluster}"
        )),
        "the late job's cluster deleted",
        Duration::from_secs(60),
        |code, _| code == 404,
    )
    .await;
}

/// `suspend`: a job created suspended makes no cluster; resumed, it runs.
async fn a_suspended_job_waits_then_runs(s: &Scene) {
    let (http, ns) = (&s.http, &s.ns);
    let url = |path: &str| s.url(path);
    let rayjobs = url(&format!("/apis/ray.io/v1/namespaces/{ns}/rayjobs"));
    let head_only = s.head_only();
    // suspend: a job created suspended makes no cluster; resumed, it runs.
    let parked = json!({
        "apiVersion": "ray.io/v1", "kind": "RayJob",
        "metadata": {"name": "parked", "namespace": ns},
        "spec": {"entrypoint": "echo resumed", "suspend": true, "shutdownAfterJobFinishes": true,
                 "rayClusterSpec": head_only},
    });
    let (code, body) = call(
        http.post(&rayjobs)
            .header("content-type", "application/json")
            .body(parked.to_string()),
    )
    .await;
    assert_eq!(code, 201, "{body}");
    let suspended = poll(
        http,
        &format!("{rayjobs}/parked"),
        "the job suspended",
        Duration::from_secs(30),
        |_, j| j["status"]["jobDeploymentStatus"] == "Suspended",
    )
    .await;
    assert!(
        suspended["status"]["rayClusterName"].is_null(),
        "{suspended}"
    );
    let (code, body) = call(
        http.patch(format!("{rayjobs}/parked"))
            .header("content-type", "application/merge-patch+json")
            .body(json!({"spec": {"suspend": false}}).to_string()),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    let resumed = poll(
        http,
        &format!("{rayjobs}/parked"),
        "the resumed job complete",
        Duration::from_secs(180),
        |_, j| j["status"]["jobDeploymentStatus"] == "Complete",
    )
    .await;
    assert_eq!(resumed["status"]["jobStatus"], "SUCCEEDED", "{resumed}");
}

/// A RayService: its application answers through the service proxy, a changed config is
/// deployed in place, and deleting it leaves nothing behind.
async fn a_ray_service_serves_through_the_proxy(s: &Scene) {
    let (http, ns, params) = (&s.http, &s.ns, &s.params);
    let url = |path: &str| s.url(path);
    // A RayService: the application deployed from serveConfigV2 answers over HTTP, through the
    // Service the runtime writes and the Kubernetes service proxy.
    let app_dir = tempfile::tempdir().expect("a directory for the application");
    std::fs::write(app_dir.path().join("greeter.py"), SERVE_APP).expect("the module written");
    let serve_config = "applications:\n  - name: greeter\n    import_path: greeter:build\n    route_prefix: /\n    args:\n      greeting: hello\n";
    let head_container = json!({
        "name": "ray-head", "image": "rayproject/ray:2.60.0",
        "resources": {"limits": {"cpu": "1", "memory": "1Gi"}},
        "env": [{"name": "PYTHONPATH", "value": app_dir.path().display().to_string()}],
    });
    let service = json!({
        "apiVersion": "ray.io/v1", "kind": "RayService",
        "metadata": {"name": "greeter", "namespace": ns,
            "labels": {"app.kubernetes.io/managed-by": "kuberay-apiserver", "ray.io/user": "tests"}},
        "spec": {
            "serveConfigV2": serve_config,
            "rayClusterConfig": {"headGroupSpec": {"rayStartParams": params,
                "template": {"spec": {"containers": [head_container]}}}},
        },
    });
    let services = url(&format!("/apis/ray.io/v1/namespaces/{ns}/rayservices"));
    let (code, body) = call(
        http.post(&services)
            .header("content-type", "application/json")
            .body(service.to_string()),
    )
    .await;
    assert_eq!(code, 201, "{body}");
    let begin = Instant::now();
    let running = poll(
        http,
        &format!("{services}/greeter"),
        "the RayService running",
        Duration::from_secs(300),
        |_, s| s["status"]["serviceStatus"] == "Running",
    )
    .await;
    eprintln!("RayService running after {:?}", begin.elapsed());
    let active = &running["status"]["activeServiceStatus"];
    assert_eq!(
        active["applicationStatuses"]["greeter"]["status"], "RUNNING",
        "{active}"
    );
    assert_eq!(
        active["applicationStatuses"]["greeter"]["serveDeploymentStatuses"]["Greeter"]["status"],
        "HEALTHY",
        "{active}"
    );
    assert_eq!(running["status"]["numServeEndpoints"], 1, "{running}");
    assert!(
        running["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["type"] == "Ready"
                && c["status"] == "True"
                && c["reason"] == "NonZeroServeEndpoints"),
        "{running}"
    );
    let service_cluster = active["rayClusterName"]
        .as_str()
        .expect("the active cluster")
        .to_string();
    let serve_proxy = url(&format!(
        "/api/v1/namespaces/{ns}/services/greeter-serve-svc:serve/proxy/"
    ));
    let answer = poll(
        http,
        &serve_proxy,
        "the application through the proxy",
        Duration::from_secs(60),
        |code, _| code == 200,
    )
    .await;
    assert_eq!(answer, json!("hello from a local RayService"));
    // The head Service opens the Ray dashboard through the same proxy.
    let dashboard = url(&format!(
        "/api/v1/namespaces/{ns}/services/{service_cluster}-head-svc:dashboard/proxy/api/version"
    ));
    let (code, version) = call(http.get(&dashboard)).await;
    assert_eq!(code, 200, "{version}");
    assert_eq!(version["ray_version"], ray::RAY_VERSION);
    // A real browser renders the dashboard's page through the proxy (its scripts and API calls
    // all go through it).
    let page = url(&format!(
        "/api/v1/namespaces/{ns}/services/{service_cluster}-head-svc:dashboard/proxy/"
    ));
    if let Some(text) = browser_text(&page).await {
        for part in [
            "Ray Dashboard",
            "Overview",
            "Jobs",
            "Serve",
            "Cluster",
            "Node Status",
        ] {
            assert!(
                text.contains(part),
                "{part:?} not on the rendered page: {text}"
            );
        }
    }
    // V1 reads the service and its application.
    let (code, v1) =
        call(http.get(url(&format!("/apis/v1/namespaces/{ns}/services/greeter")))).await;
    assert_eq!(code, 200, "{v1}");
    assert_eq!(
        v1["rayServiceStatus"]["rayClusterName"], service_cluster,
        "{v1}"
    );

    // A changed config is deployed in place.
    let (code, body) = call(
        http.patch(format!("{services}/greeter"))
            .header("content-type", "application/merge-patch+json")
            .body(json!({"spec": {"serveConfigV2": serve_config.replace("greeting: hello", "greeting: hi")}}).to_string()),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    poll(
        http,
        &serve_proxy,
        "the new greeting",
        Duration::from_secs(120),
        |code, body| code == 200 && *body == json!("hi from a local RayService"),
    )
    .await;
    let (_, after) = call(http.get(format!("{services}/greeter"))).await;
    assert_eq!(
        after["status"]["activeServiceStatus"]["rayClusterName"], service_cluster,
        "{after}"
    );

    // Deleting the RayService deletes its cluster, its Services and its processes.
    let (code, body) = call(http.delete(format!("{services}/greeter"))).await;
    assert_eq!(code, 200, "{body}");
    poll(
        http,
        &format!("{services}/greeter"),
        "the RayService deleted",
        Duration::from_secs(90),
        |code, _| code == 404,
    )
    .await;
    poll(
        http,
        &url(&format!(
            "/apis/ray.io/v1/namespaces/{ns}/rayclusters/{service_cluster}"
        )),
        "the service's cluster deleted",
        Duration::from_secs(90),
        |code, _| code == 404,
    )
    .await;
    let services_api: kube::Api<k8s_openapi::api::core::v1::Service> =
        kube::Api::namespaced(s.kube.clone(), ns);
    let endpoints_api: kube::Api<k8s_openapi::api::core::v1::Endpoints> =
        kube::Api::namespaced(s.kube.clone(), ns);
    for name in [
        "greeter-serve-svc".to_string(),
        "greeter-head-svc".to_string(),
        format!("{service_cluster}-head-svc"),
    ] {
        let service = services_api
            .get_opt(&name)
            .await
            .expect("the store answers");
        assert!(service.is_none(), "Service {name} left: {service:?}");
        let endpoints = endpoints_api
            .get_opt(&name)
            .await
            .expect("the store answers");
        assert!(endpoints.is_none(), "Endpoints {name} left: {endpoints:?}");
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while !processes_of(ns, &service_cluster, "").is_empty() {
        assert!(
            Instant::now() < deadline,
            "processes of the service's cluster left"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The `ray start --block` processes (one per node) of `namespace`/`cluster`.
fn node_leaders(namespace: &str, cluster: &str) -> BTreeSet<u32> {
    let leaders: BTreeSet<u32> = processes()
        .into_iter()
        .filter(|p| p.pid == p.pgid)
        .filter(|p| {
            std::fs::read(format!("/proc/{}/cmdline", p.pid))
                .is_ok_and(|c| c.split(|b| *b == 0).any(|w| w == b"--block"))
        })
        .map(|p| p.pid)
        .collect();
    processes_of(namespace, cluster, "")
        .intersection(&leaders)
        .copied()
        .collect()
}

/// The server binary on loopback ports with its data in `data`, the local Ray runtime on.
struct ServerProcess {
    child: std::process::Child,
    http: String,
}

impl ServerProcess {
    async fn start(data: &std::path::Path, ray_flag: &str) -> ServerProcess {
        let port = || {
            std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free port")
                .port()
        };
        let (http, grpc) = (port(), port());
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_kuberay-apiserver"))
            .arg(format!("--httpPortFlag=127.0.0.1:{http}"))
            .arg(format!("--rpcPortFlag=127.0.0.1:{grpc}"))
            .args(["--backend=embedded", "--dashboard-timeout=15s", ray_flag])
            .arg(format!("--data-dir={}", data.join("store").display()))
            .arg(format!(
                "-logFilePath={}",
                data.join("server.log").display()
            ))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("the server starts");
        let server = ServerProcess {
            child,
            http: format!("http://127.0.0.1:{http}"),
        };
        let client = http_client();
        let deadline = Instant::now() + Duration::from_secs(60);
        while !client
            .get(format!("{}/healthz", server.http))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            assert!(Instant::now() < deadline, "the server did not come up");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        server
    }
}

impl ServerProcess {
    /// SIGKILL, as a crash would end the server: nothing of it runs afterwards.
    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits up to a minute for the server to stop; true when it did.
    fn terminate(&mut self) -> bool {
        let _ = rustix::process::kill_process(
            rustix::process::Pid::from_child(&self.child),
            rustix::process::Signal::TERM,
        );
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        false
    }
}

impl Drop for ServerProcess {
    /// A test that fails still stops the server cleanly, so it stops its Ray nodes.
    fn drop(&mut self) {
        if !self.terminate() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "runs real Ray clusters (installed from PyPI on first use); run with --ignored, as .ci/run does"]
async fn a_killed_server_takes_its_running_nodes_over() {
    let Some(ray_flag) = local_ray_flag().await else {
        return;
    };
    let data = tempfile::tempdir().expect("a data directory");
    let server = ServerProcess::start(data.path(), &ray_flag).await;
    let http = http_client();
    let ns = "default";
    let jobs = format!("{}/apis/ray.io/v1/namespaces/{ns}/rayjobs", server.http);
    let job = json!({
        "apiVersion": "ray.io/v1", "kind": "RayJob",
        "metadata": {"name": "nap", "namespace": ns, "labels": {
            "app.kubernetes.io/managed-by": "kuberay-apiserver", "ray.io/user": "tests"}},
        "spec": {
            "entrypoint": "python -c \"import time; time.sleep(20); print('woke up')\"",
            "rayClusterSpec": {"headGroupSpec": {
                "rayStartParams": {"object-store-memory": "80000000"},
                "template": {"spec": {"containers": [{"name": "ray-head", "image": "rayproject/ray:2.60.0",
                    "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}]}}}},
        },
    });
    let (code, body) = call(
        http.post(&jobs)
            .header("content-type", "application/json")
            .body(job.to_string()),
    )
    .await;
    assert_eq!(code, 201, "{body}");
    let running = poll(
        &http,
        &format!("{jobs}/nap"),
        "the job running",
        Duration::from_secs(180),
        |_, j| j["status"]["jobStatus"] == "RUNNING",
    )
    .await;
    let cluster = running["status"]["rayClusterName"]
        .as_str()
        .expect("a cluster")
        .to_string();
    let job_id = running["status"]["jobId"]
        .as_str()
        .expect("a job id")
        .to_string();
    let before = node_leaders(ns, &cluster);
    assert_eq!(before.len(), 1, "the head runs: {before:?}");

    // The server is killed: its nodes keep running, the job with them.
    server.kill();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        node_leaders(ns, &cluster),
        before,
        "the head outlives the server"
    );

    // The next server takes the nodes over: the same processes, the job finishes once.
    let server = ServerProcess::start(data.path(), &ray_flag).await;
    let jobs = format!("{}/apis/ray.io/v1/namespaces/{ns}/rayjobs", server.http);
    let done = poll(
        &http,
        &format!("{jobs}/nap"),
        "the job complete",
        Duration::from_secs(120),
        |_, j| {
            let status = &j["status"]["jobDeploymentStatus"];
            assert!(status != "Failed", "the RayJob failed: {j}");
            status == "Complete"
        },
    )
    .await;
    assert_eq!(done["status"]["jobStatus"], "SUCCEEDED", "{done}");
    assert_eq!(done["status"]["jobId"], job_id.as_str(), "{done}");
    assert_eq!(
        node_leaders(ns, &cluster),
        before,
        "the same head, not started again"
    );
    let log = format!(
        "{}/apis/v1/namespaces/{ns}/jobsubmissions/{cluster}/log/{job_id}",
        server.http
    );
    let (code, body) = call(http.get(&log)).await;
    assert_eq!(code, 200, "{body}");
    let text = body["log"].as_str().unwrap_or_default();
    assert_eq!(
        text.lines().filter(|l| *l == "woke up").count(),
        1,
        "{text}"
    );

    // A clean stop leaves nothing running.
    let mut server = server;
    assert!(server.terminate(), "the server did not stop on SIGTERM");
    let left = processes_of(ns, &cluster, "");
    assert!(
        left.is_empty(),
        "processes left after a clean stop: {left:?}"
    );
}
