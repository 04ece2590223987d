//! RayJobSubmissionService paths a real Ray head cannot be made to produce (or that need no
//! head), against a small stand-in dashboard: what exactly is sent, a dashboard 400 on submit,
//! timeouts, odd answers, an unreachable dashboard and the checks made before any call. The
//! main flow runs against a real head in `job_submission_ray.rs`.

mod ray;
mod support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use kuberay_api::proto::ray_job_submission_service_client::RayJobSubmissionServiceClient;
use kuberay_api::proto::{GetJobDetailsRequest, SubmitRayJobRequest};
use ray::fixtures::{call, create_cluster};
use serde_json::{Value, json};
use support::{TestServer, http_client};
use tonic::Code;

/// One request the stand-in dashboard received.
#[derive(Debug, Clone)]
struct Seen {
    method: Method,
    path: String,
    headers: HeaderMap,
    body: Vec<u8>,
}

#[derive(Clone)]
struct Canned {
    status: u16,
    body: String,
    delay: Duration,
}

#[derive(Clone, Default)]
struct Mock {
    seen: Arc<Mutex<Vec<Seen>>>,
    answers: Arc<Mutex<BTreeMap<(String, String), Canned>>>,
}

impl Mock {
    /// Answers `method path` (path after the template's base) with `status` and `body`.
    fn answer(&self, method: &str, path: &str, status: u16, body: &str) {
        self.answer_after(method, path, status, body, Duration::ZERO);
    }

    fn answer_after(&self, method: &str, path: &str, status: u16, body: &str, delay: Duration) {
        self.answers.lock().unwrap().insert(
            (method.to_string(), path.to_string()),
            Canned {
                status,
                body: body.to_string(),
                delay,
            },
        );
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn clear(&self) {
        self.seen.lock().unwrap().clear();
    }
}

/// The stand-in dashboard lives under `/dash/<namespace>/<cluster>`, so the template's
/// placeholders are checked too.
async fn dashboard(State(mock): State<Mock>, request: Request) -> Response {
    let method = request.method().clone();
    let full = request.uri().path().to_string();
    let headers = request.headers().clone();
    let body = axum::body::to_bytes(request.into_body(), usize::MAX)
        .await
        .unwrap_or_default()
        .to_vec();
    let path = full
        .splitn(5, '/')
        .nth(4)
        .map(|p| format!("/{p}"))
        .unwrap_or_default();
    mock.seen.lock().unwrap().push(Seen {
        method: method.clone(),
        path: full.clone(),
        headers,
        body,
    });
    let canned = mock
        .answers
        .lock()
        .unwrap()
        .get(&(method.to_string(), path.clone()))
        .cloned();
    match canned {
        Some(canned) => {
            tokio::time::sleep(canned.delay).await;
            (
                StatusCode::from_u16(canned.status).unwrap(),
                [("content-type", "application/json")],
                canned.body,
            )
                .into_response()
        }
        None => (
            StatusCode::NOT_FOUND,
            format!("no answer for {method} {path}"),
        )
            .into_response(),
    }
}

async fn start_mock() -> (Mock, String) {
    let mock = Mock::default();
    let app = axum::Router::new()
        .fallback(dashboard)
        .with_state(mock.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (
        mock,
        format!("http://{address}/dash/{{namespace}}/{{name}}"),
    )
}

struct Fixture {
    server: TestServer,
    mock: Mock,
    base: String,
    ns: String,
    http: reqwest::Client,
}

async fn fixture(extra: &[&str]) -> Fixture {
    let (mock, template) = start_mock().await;
    let mut args = vec![
        format!("--dashboard-url-template={template}"),
        "--ray-auth-token=t0k3n".to_string(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut server = TestServer::start_with(&args).await;
    let ns = server.namespace("jobsub").await;
    create_cluster(server.kube(), &ns, "c1", Some("Ready")).await;
    let base = server.url(&format!("/apis/v1/namespaces/{ns}/jobsubmissions/c1"));
    Fixture {
        server,
        mock,
        base,
        ns,
        http: http_client(),
    }
}

fn assert_error(answer: &(u16, Value), status: u16, code: Code, text: &str) {
    let (got, body) = answer;
    assert_eq!(*got, status, "{body}");
    assert_eq!(body["code"], code as i32, "{body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(message.contains(text), "{message:?} lacks {text:?}");
}

#[tokio::test]
async fn submit_sends_what_the_go_server_sends_and_nothing_a_browser_would() {
    let f = fixture(&[]).await;
    f.mock.answer(
        "POST",
        "/api/jobs/",
        200,
        r#"{"job_id": "raysubmit_1", "submission_id": "raysubmit_1"}"#,
    );
    let answer = call(
        f.http
            .post(&f.base)
            // A browser's markers on the way in never reach the dashboard.
            .header("Origin", "http://ui.example")
            .header("Referer", "http://ui.example/jobs")
            .header("Sec-Fetch-Mode", "cors")
            .header("User-Agent", "Mozilla/5.0")
            .body(
                json!({
                    "entrypoint": "python job.py",
                    "submission_id": "mine",
                    "metadata": {"owner": "ann"},
                    "runtimeEnv": "pip:\n  - requests==2.26.0\nenv_vars:\n  N: 1.0\nworking_dir: /tmp/w\n",
                    "entrypointNumCpus": 1.5,
                    "entrypointNumGpus": 0,
                    "entrypointResources": {"custom": "2", "half": "0.5"},
                    "numCpus": 3
                })
                .to_string(),
            ),
    )
    .await;
    assert_eq!(answer, (200, json!({"submissionId": "raysubmit_1"})));

    let seen = f.mock.seen();
    assert_eq!(seen.len(), 1);
    let request = &seen[0];
    assert_eq!(request.method, Method::POST);
    assert_eq!(request.path, format!("/dash/{}/c1/api/jobs/", f.ns));
    let header = |name: &str| {
        request
            .headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
    };
    assert_eq!(header("content-type").as_deref(), Some("application/json"));
    assert_eq!(
        header("x-ray-authorization").as_deref(),
        Some("Bearer t0k3n")
    );
    let agent = header("user-agent").unwrap_or_default();
    assert!(agent.starts_with("kuberay-apiserver/"), "{agent}");
    for name in ["origin", "referer", "sec-fetch-mode", "authorization"] {
        assert!(header(name).is_none(), "{name} was sent");
    }
    let body: Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(
        body,
        json!({
            "entrypoint": "python job.py",
            "submission_id": "mine",
            "metadata": {"owner": "ann"},
            "runtime_env": {"pip": ["requests==2.26.0"], "env_vars": {"N": 1}, "working_dir": "/tmp/w"},
            "entrypoint_num_cpus": 1.5,
            "entrypoint_resources": {"custom": 2, "half": 0.5}
        })
    );
    f.server.stop().await;
}

#[tokio::test]
async fn submit_errors() {
    let f = fixture(&[]).await;
    let submit = |body: Value| call(f.http.post(&f.base).body(body.to_string()));

    // Checked before the dashboard is called: client errors (the Go server answers 500).
    assert_error(
        &submit(json!({"entrypoint": "x", "runtimeEnv": "- a\n- b\n"})).await,
        400,
        Code::InvalidArgument,
        "json: cannot unmarshal array into Go value of type map[string]interface {}",
    );
    assert_error(
        &submit(json!({"entrypoint": "x", "runtimeEnv": "a: [1, 2\nb: c: d"})).await,
        400,
        Code::InvalidArgument,
        "error converting YAML to JSON: ",
    );
    assert_error(
        &submit(json!({"entrypoint": "x", "entrypointResources": {"custom": "lots"}})).await,
        400,
        Code::InvalidArgument,
        "strconv.ParseFloat: parsing \"lots\": invalid syntax",
    );
    assert!(f.mock.seen().is_empty());

    // The dashboard refuses the request: INVALID_ARGUMENT, with the Go server's text.
    f.mock.answer(
        "POST",
        "/api/jobs/",
        400,
        "TypeError: entrypoint must be a string",
    );
    assert_error(
        &submit(json!({"entrypoint": "x"})).await,
        400,
        Code::InvalidArgument,
        "SubmitJob fail: 400 Bad Request TypeError: entrypoint must be a string",
    );
    // Other failures keep the Go server's code.
    f.mock.answer(
        "POST",
        "/api/jobs/",
        500,
        "No available agent to submit job",
    );
    assert_error(
        &submit(json!({"entrypoint": "x"})).await,
        500,
        Code::Unknown,
        "SubmitJob fail: 500 Internal Server Error No available agent to submit job",
    );
    f.mock.answer(
        "POST",
        "/api/jobs/",
        500,
        "RuntimeError: ... Please use a different submission_id.",
    );
    assert_error(
        &submit(json!({"entrypoint": "x", "submissionId": "dup"})).await,
        409,
        Code::AlreadyExists,
        "submission ID 'dup' already used, Please use a different submission_id",
    );
    f.mock.answer("POST", "/api/jobs/", 200, "not json");
    assert_error(
        &submit(json!({"entrypoint": "x"})).await,
        500,
        Code::Unknown,
        "SubmitJob fail: not json",
    );

    // A gRPC request without a submission is an empty submission.
    f.mock.clear();
    f.mock
        .answer("POST", "/api/jobs/", 200, r#"{"job_id": "raysubmit_2"}"#);
    let mut grpc = RayJobSubmissionServiceClient::connect(f.server.grpc.clone())
        .await
        .unwrap();
    let reply = grpc
        .submit_ray_job(SubmitRayJobRequest {
            namespace: f.ns.clone(),
            clustername: "c1".into(),
            jobsubmission: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reply.submission_id, "raysubmit_2");
    let body: Value = serde_json::from_slice(&f.mock.seen()[0].body).unwrap();
    assert_eq!(body, json!({"entrypoint": ""}));
    f.server.stop().await;
}

#[tokio::test]
async fn reads_convert_like_the_go_server() {
    let f = fixture(&[]).await;
    f.mock.answer(
        "GET",
        "/api/jobs/j1",
        200,
        &json!({
            "type": "SUBMISSION", "job_id": "02000000", "submission_id": "j1",
            "driver_info": null, "status": "FAILED", "entrypoint": "python x.py",
            "message": "boom", "error_type": "JOB_SUPERVISOR_ACTOR_START_FAILURE",
            "start_time": 1700000000000u64, "end_time": 1700000005000u64, "metadata": null,
            "runtime_env": {
                "working_dir": "/tmp/workdir", "pip": ["numpy", "pandas"],
                "env_vars": {"B": "2", "A": "1"}, "config": {"setup_timeout_seconds": 600},
                "flag": true, "nothing": null, "ratio": 0.5, "big": 1000000.0, "count": 3
            }
        })
        .to_string(),
    );
    let (status, body) = call(f.http.get(format!("{}/j1", f.base))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({
            "entrypoint": "python x.py",
            "jobId": "02000000",
            "submissionId": "j1",
            "status": "FAILED",
            "message": "boom",
            "errorType": "JOB_SUPERVISOR_ACTOR_START_FAILURE",
            "startTime": "1700000000000",
            "endTime": "1700000005000",
            "runtimeEnv": {
                "big": "1e+06",
                "config": "map[setup_timeout_seconds:600]",
                "count": "3",
                "env_vars": "map[A:1 B:2]",
                "flag": "true",
                "nothing": "<nil>",
                "pip": "[numpy pandas]",
                "ratio": "0.5",
                "working_dir": "/tmp/workdir"
            }
        })
    );

    // A body that is not a job.
    f.mock.answer("GET", "/api/jobs/j2", 500, "Traceback: oops");
    assert_error(
        &call(f.http.get(format!("{}/j2", f.base))).await,
        500,
        Code::Unknown,
        "GetJobInfo fail: Traceback: oops",
    );

    // Logs: empty is `{}`; a 404 is NOT_FOUND with the Go server's text.
    f.mock
        .answer("GET", "/api/jobs/j1/logs", 200, r#"{"logs": ""}"#);
    assert_eq!(
        call(f.http.get(format!("{}/log/j1", f.base))).await,
        (200, json!({}))
    );
    assert_error(
        &call(f.http.get(format!("{}/log/j9", f.base))).await,
        404,
        Code::NotFound,
        "JobSubmission.RayJob \"j9\" not found",
    );

    // Lists: a dashboard without the job API (404) is an empty list, like an empty one.
    assert_eq!(call(f.http.get(&f.base)).await, (200, json!({})));
    f.mock.answer("GET", "/api/jobs/", 200, "[]");
    assert_eq!(call(f.http.get(&f.base)).await, (200, json!({})));
    f.mock.answer(
        "GET",
        "/api/jobs/",
        200,
        r#"[{"submission_id": "b", "status": "RUNNING"}, {"job_id": "01000000", "type": "DRIVER", "submission_id": null}]"#,
    );
    assert_eq!(
        call(f.http.get(&f.base)).await,
        (
            200,
            json!({"submissions": [
                {"submissionId": "b", "status": "RUNNING"},
                {"jobId": "01000000"}
            ]})
        )
    );
    f.server.stop().await;
}

#[tokio::test]
async fn stop_and_delete() {
    let f = fixture(&[]).await;
    let stop = |id: &str| call(f.http.post(format!("{}/{id}", f.base)));
    let delete = |id: &str| call(f.http.delete(format!("{}/{id}", f.base)));

    f.mock
        .answer("POST", "/api/jobs/a/stop", 200, r#"{"stopped": true}"#);
    assert_eq!(stop("a").await, (200, json!({})));

    // Not stopped, but over anyway.
    f.mock
        .answer("POST", "/api/jobs/b/stop", 200, r#"{"stopped": false}"#);
    f.mock.answer(
        "GET",
        "/api/jobs/b",
        200,
        r#"{"status": "SUCCEEDED", "submission_id": "b"}"#,
    );
    assert_eq!(stop("b").await, (200, json!({})));

    // Not stopped and still running.
    f.mock
        .answer("POST", "/api/jobs/c/stop", 200, r#"{"stopped": false}"#);
    f.mock.answer(
        "GET",
        "/api/jobs/c",
        200,
        r#"{"status": "RUNNING", "submission_id": "c", "entrypoint": "sleep 9", "metadata": {"k": "v"}, "start_time": 5}"#,
    );
    assert_error(
        &stop("c").await,
        500,
        Code::Unknown,
        "failed to stop job: &{<nil> map[k:v] map[] RUNNING sleep 9  c  5 0}",
    );
    assert_error(
        &stop("d").await,
        404,
        Code::NotFound,
        "Job d does not exist on the cluster",
    );

    // Delete ignores what the dashboard says, except that the job is unknown or refused.
    f.mock
        .answer("DELETE", "/api/jobs/a", 200, r#"{"deleted": true}"#);
    assert_eq!(delete("a").await, (200, json!({})));
    f.mock
        .answer("DELETE", "/api/jobs/b", 500, "Attempted to delete job 'b'");
    assert_eq!(delete("b").await, (200, json!({})));
    f.mock.answer(
        "DELETE",
        "/api/jobs/c",
        400,
        "Can only delete submission type jobs",
    );
    assert_error(
        &delete("c").await,
        400,
        Code::InvalidArgument,
        "DeleteJob fail: 400 Bad Request Can only delete submission type jobs",
    );
    assert_error(
        &delete("d").await,
        404,
        Code::NotFound,
        "Job d does not exist on the cluster",
    );
    let methods: Vec<String> = f
        .mock
        .seen()
        .iter()
        .filter(|s| s.method == Method::DELETE)
        .map(|s| {
            s.headers
                .get("content-type")
                .map(|v| v.to_str().unwrap().to_string())
                .unwrap_or_default()
        })
        .collect();
    assert!(
        methods.iter().all(|c| c == "application/json"),
        "{methods:?}"
    );
    f.server.stop().await;
}

#[tokio::test]
async fn a_slow_dashboard_is_deadline_exceeded() {
    let f = fixture(&["--dashboard-timeout=300ms"]).await;
    f.mock
        .answer_after("GET", "/api/jobs/slow", 200, "{}", Duration::from_secs(5));
    let began = std::time::Instant::now();
    assert_error(
        &call(f.http.get(format!("{}/slow", f.base))).await,
        504,
        Code::DeadlineExceeded,
        "the Ray dashboard did not answer within 300ms",
    );
    assert!(began.elapsed() < Duration::from_secs(3));
    f.server.stop().await;
}

#[tokio::test]
async fn an_unreachable_dashboard_is_unavailable() {
    // A port that was free a moment ago and is closed now.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server =
        TestServer::start_with(&[&format!("--dashboard-url-template=http://127.0.0.1:{port}")])
            .await;
    let ns = server.namespace("jobsub").await;
    create_cluster(server.kube(), &ns, "c1", Some("ready")).await;
    let http = http_client();
    let base = server.url(&format!("/apis/v1/namespaces/{ns}/jobsubmissions/c1"));
    assert_error(
        &call(http.get(&base)).await,
        503,
        Code::Unavailable,
        &format!("Get \"http://127.0.0.1:{port}/api/jobs/\": "),
    );
    assert_error(
        &call(http.post(&base).body(r#"{"entrypoint": "true"}"#)).await,
        503,
        Code::Unavailable,
        &format!("Post \"http://127.0.0.1:{port}/api/jobs/\": "),
    );
    assert_error(
        &call(http.delete(format!("{base}/x"))).await,
        503,
        Code::Unavailable,
        "Delete \"",
    );
    server.stop().await;
}

#[tokio::test]
async fn the_cluster_is_checked_first() {
    let f = fixture(&[]).await;
    create_cluster(f.server.kube(), &f.ns, "suspended", Some("suspended")).await;
    create_cluster(f.server.kube(), &f.ns, "new", None).await;
    let url = |cluster: &str, rest: &str| {
        f.server.url(&format!(
            "/apis/v1/namespaces/{}/jobsubmissions/{cluster}{rest}",
            f.ns
        ))
    };
    for cluster in ["suspended", "new"] {
        for answer in [
            call(f.http.get(url(cluster, ""))).await,
            call(f.http.get(url(cluster, "/j"))).await,
            call(f.http.get(url(cluster, "/log/j"))).await,
            call(f.http.post(url(cluster, "/j"))).await,
            call(f.http.delete(url(cluster, "/j"))).await,
            call(f.http.post(url(cluster, "")).body(r#"{"entrypoint":"x"}"#)).await,
        ] {
            assert_error(
                &answer,
                400,
                Code::FailedPrecondition,
                "cluster is not ready",
            );
        }
    }
    assert_error(
        &call(f.http.get(url("nope", "/j"))).await,
        404,
        Code::NotFound,
        "Cluster nope not found: Get cluster failed.: NotFoundError: Cluster nope not found: ",
    );
    assert!(f.mock.seen().is_empty());

    let mut grpc = RayJobSubmissionServiceClient::connect(f.server.grpc.clone())
        .await
        .unwrap();
    let status = grpc
        .get_job_details(GetJobDetailsRequest {
            namespace: f.ns.clone(),
            clustername: String::new(),
            submissionid: "j".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(
        status.message(),
        "Cluster name is empty. Please specify a valid value.: Invalid input error: Cluster name is empty. Please specify a valid value."
    );
    let status = grpc
        .get_job_details(GetJobDetailsRequest {
            namespace: f.ns.clone(),
            clustername: "suspended".into(),
            submissionid: "j".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(status.message(), "cluster is not ready");
    f.server.stop().await;
}
