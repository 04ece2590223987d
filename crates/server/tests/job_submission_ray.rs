//! RayJobSubmissionService against a real Ray head (`ray[default]` from PyPI).
//!
//! One head serves the whole file, so everything runs as one test, scenario after scenario. The
//! first run installs Ray into a cache outside the repository (minutes); later runs reuse it
//! (see `ray/mod.rs`). The head enforces token authentication, so every call below also proves
//! that the server sends the token the way Ray expects it.

mod ray;
mod support;

use std::time::{Duration, Instant};

use axum::extract::{Path, Request, State};
use axum::response::{IntoResponse, Response};
use kuberay_api::proto::ray_job_submission_service_client::RayJobSubmissionServiceClient;
use kuberay_api::proto::{
    GetJobDetailsRequest, ListJobDetailsRequest, RayJobSubmission, SubmitRayJobRequest,
};
use kuberay_apiserver::dashboard::{Access, Dashboards};
use ray::RayHead;
use ray::fixtures::{call, create_cluster};
use serde_json::{Value, json};
use support::{TestServer, http_client};
use tonic::Code;

const CLUSTER: &str = "raycluster-test";

struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    fn new(server: &TestServer, ns: &str, cluster: &str) -> Self {
        Self {
            http: http_client(),
            base: server.url(&format!(
                "/apis/v1/namespaces/{ns}/jobsubmissions/{cluster}"
            )),
        }
    }
    async fn submit(&self, body: Value) -> (u16, Value) {
        call(self.http.post(&self.base).body(body.to_string())).await
    }
    async fn get(&self, id: &str) -> (u16, Value) {
        call(self.http.get(format!("{}/{id}", self.base))).await
    }
    async fn log(&self, id: &str) -> (u16, Value) {
        call(self.http.get(format!("{}/log/{id}", self.base))).await
    }
    async fn list(&self) -> (u16, Value) {
        call(self.http.get(&self.base)).await
    }
    async fn stop(&self, id: &str) -> (u16, Value) {
        call(self.http.post(format!("{}/{id}", self.base))).await
    }
    async fn delete(&self, id: &str) -> (u16, Value) {
        call(self.http.delete(format!("{}/{id}", self.base))).await
    }

    /// Polls GetJobDetails until the job reaches one of `states`.
    async fn wait_for(&self, id: &str, states: &[&str]) -> Value {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let (status, body) = self.get(id).await;
            assert_eq!(status, 200, "{body}");
            if states.contains(&body["status"].as_str().unwrap_or_default()) {
                return body;
            }
            assert!(
                Instant::now() < deadline,
                "job {id} did not reach {states:?}: {body}"
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
}

fn assert_error(answer: &(u16, Value), status: u16, code: Code, text: &str) {
    let (got, body) = answer;
    assert_eq!(*got, status, "{body}");
    assert_eq!(body["code"], code as i32, "{body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(message.contains(text), "{message:?} lacks {text:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "starts a real Ray head (installed from PyPI on first use); run with --ignored, as .ci/run does"]
async fn job_submission_against_a_real_ray_head() {
    let begin = Instant::now();
    let head = RayHead::start()
        .await
        .unwrap_or_else(|error| panic!("could not start a Ray head: {error}"));
    eprintln!("Ray head ready after {:?}", begin.elapsed());

    let template = format!("--dashboard-url-template={}", head.dashboard_url);
    let token = format!("--ray-auth-token={}", head.token);
    // The default 2 s per dashboard call is the Go server's; the test machine is shared with
    // builds, so give the head more room here.
    let timeout = "--dashboard-timeout=15s";
    let mut server = TestServer::start_with(&[&template, &token, timeout]).await;
    let ns = server.namespace("jobsub").await;
    create_cluster(server.kube(), &ns, CLUSTER, Some("ready")).await;
    let api = Api::new(&server, &ns, CLUSTER);

    // Submit with everything the API takes; the runtime environment is YAML.
    let (status, body) = api
        .submit(json!({
            "entrypoint": "echo \"$GREETING from the job\"",
            "submissionId": "kuberay-hello",
            "metadata": {"owner": "tests"},
            "runtimeEnv": "env_vars:\n  GREETING: hello-kuberay\n",
            "entrypointNumCpus": 0.5,
            "entrypointResources": {"kuberay_test": "1"}
        }))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"submissionId": "kuberay-hello"}));

    let done = api
        .wait_for("kuberay-hello", &["SUCCEEDED", "FAILED"])
        .await;
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    assert_eq!(done["entrypoint"], "echo \"$GREETING from the job\"");
    assert_eq!(done["submissionId"], "kuberay-hello");
    assert_eq!(done["metadata"], json!({"owner": "tests"}));
    assert_eq!(
        done["runtimeEnv"]["env_vars"], "map[GREETING:hello-kuberay]",
        "{done}"
    );
    let start: u64 = done["startTime"]
        .as_str()
        .expect("uint64 as a string")
        .parse()
        .unwrap();
    let end: u64 = done["endTime"]
        .as_str()
        .expect("uint64 as a string")
        .parse()
        .unwrap();
    assert!(start > 1_600_000_000_000 && end >= start, "{done}");

    let (status, body) = api.log("kuberay-hello").await;
    assert_eq!(status, 200, "{body}");
    let log = body["log"].as_str().unwrap_or_default();
    assert!(log.contains("hello-kuberay from the job"), "{log}");

    let (status, body) = api.list().await;
    assert_eq!(status, 200, "{body}");
    let listed: Vec<&str> = body["submissions"]
        .as_array()
        .expect("submissions")
        .iter()
        .filter_map(|s| s["submissionId"].as_str())
        .collect();
    assert!(listed.contains(&"kuberay-hello"), "{body}");

    // The same id again: the reference's text, as ALREADY_EXISTS (the reference says 500).
    let answer = api
        .submit(json!({"entrypoint": "true", "submissionId": "kuberay-hello"}))
        .await;
    assert_error(
        &answer,
        409,
        Code::AlreadyExists,
        "submission ID 'kuberay-hello' already used, Please use a different submission_id",
    );

    // Over gRPC: no submission id, so the dashboard makes one.
    let mut grpc = RayJobSubmissionServiceClient::connect(server.grpc.clone())
        .await
        .expect("gRPC connects");
    let reply = grpc
        .submit_ray_job(SubmitRayJobRequest {
            namespace: ns.clone(),
            clustername: CLUSTER.into(),
            jobsubmission: Some(RayJobSubmission {
                entrypoint: "echo grpc".into(),
                ..Default::default()
            }),
        })
        .await
        .expect("submitted over gRPC")
        .into_inner();
    assert!(
        reply.submission_id.starts_with("raysubmit_"),
        "{}",
        reply.submission_id
    );
    let info = grpc
        .get_job_details(GetJobDetailsRequest {
            namespace: ns.clone(),
            clustername: CLUSTER.into(),
            submissionid: reply.submission_id.clone(),
        })
        .await
        .expect("details over gRPC")
        .into_inner();
    assert_eq!(info.submission_id, reply.submission_id);
    assert_eq!(info.entrypoint, "echo grpc");
    let listed = grpc
        .list_job_details(ListJobDetailsRequest {
            namespace: ns.clone(),
            clustername: CLUSTER.into(),
        })
        .await
        .expect("list over gRPC")
        .into_inner();
    assert!(
        listed
            .submissions
            .iter()
            .any(|s| s.submission_id == reply.submission_id)
    );

    // Stop a long job.
    let (status, body) = api
        .submit(json!({"entrypoint": "sleep 600", "submissionId": "kuberay-long"}))
        .await;
    assert_eq!(status, 200, "{body}");
    api.wait_for("kuberay-long", &["RUNNING"]).await;
    let (status, body) = api.stop("kuberay-long").await;
    assert_eq!((status, &body), (200, &json!({})));
    let stopped = api.wait_for("kuberay-long", &["STOPPED"]).await;
    assert_eq!(stopped["status"], "STOPPED");
    // Stopping a job that has ended is fine too.
    let (status, body) = api.stop("kuberay-long").await;
    assert_eq!((status, &body), (200, &json!({})));

    // Delete, then it is gone.
    let (status, body) = api.delete("kuberay-long").await;
    assert_eq!((status, &body), (200, &json!({})));
    assert_error(
        &api.get("kuberay-long").await,
        404,
        Code::NotFound,
        "Job kuberay-long does not exist on the cluster",
    );

    // Unknown ids.
    assert_error(
        &api.get("no-such-job").await,
        404,
        Code::NotFound,
        "Job no-such-job does not exist on the cluster",
    );
    assert_error(
        &api.log("no-such-job").await,
        404,
        Code::NotFound,
        "JobSubmission.RayJob \"no-such-job\" not found",
    );
    assert_error(
        &api.stop("no-such-job").await,
        404,
        Code::NotFound,
        "Job no-such-job does not exist on the cluster",
    );
    assert_error(
        &api.delete("no-such-job").await,
        404,
        Code::NotFound,
        "Job no-such-job does not exist on the cluster",
    );

    // A job that is not a submission (a driver run directly against the head): the dashboard
    // answers 400 to a log request.
    let driver = {
        let head_ref = &head;
        tokio::task::block_in_place(|| head_ref.run_driver()).expect("a Ray driver runs")
    };
    let (status, body) = api.get(&driver).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["jobId"], driver.as_str(), "{body}");
    assert!(body.get("submissionId").is_none(), "{body}");
    assert_error(
        &api.log(&driver).await,
        400,
        Code::InvalidArgument,
        "Can only get logs of submission type jobs",
    );
    assert_error(
        &api.stop(&driver).await,
        400,
        Code::InvalidArgument,
        "Can only stop submission type jobs",
    );

    // Cluster checks come first.
    create_cluster(server.kube(), &ns, "not-ready", Some("suspended")).await;
    create_cluster(server.kube(), &ns, "no-status", None).await;
    for cluster in ["not-ready", "no-status"] {
        let other = Api::new(&server, &ns, cluster);
        assert_error(
            &other.list().await,
            400,
            Code::FailedPrecondition,
            "cluster is not ready",
        );
        assert_error(
            &other.submit(json!({"entrypoint": "true"})).await,
            400,
            Code::FailedPrecondition,
            "cluster is not ready",
        );
    }
    assert_error(
        &Api::new(&server, &ns, "missing").get("x").await,
        404,
        Code::NotFound,
        "Cluster missing not found: Get cluster failed.",
    );

    // The Kubernetes API server's service proxy route, against the same head: a stand-in API
    // server forwards `.../services/<cluster>-head-svc:dashboard/proxy/...` to the dashboard.
    proxy_route(&head, &ns).await;

    // Without the token the head refuses, and says so.
    let mut no_token = TestServer::start_with(&[&template, timeout]).await;
    let other_ns = no_token.namespace("jobsub").await;
    create_cluster(no_token.kube(), &other_ns, CLUSTER, Some("ready")).await;
    assert_error(
        &Api::new(&no_token, &other_ns, CLUSTER).list().await,
        500,
        Code::Internal,
        "set --ray-auth-token",
    );
    no_token.stop().await;

    server.stop().await;
    drop(head);
    eprintln!("real-Ray scenarios done after {:?}", begin.elapsed());
}

#[derive(Clone)]
struct Forward {
    dashboard: String,
    http: reqwest::Client,
}

/// A stand-in for the Kubernetes API server's service proxy.
async fn forward(
    State(forward): State<Forward>,
    Path((ns, service, rest)): Path<(String, String, String)>,
    request: Request,
) -> Response {
    // The API server authenticates the caller with `Authorization` and does not pass it on.
    let authorized = request
        .headers()
        .get("authorization")
        .is_some_and(|v| v == "Bearer kube-token");
    if !authorized || !service.ends_with("-head-svc:dashboard") || ns.is_empty() {
        let status = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
            "message": format!("services \"{service}\" is forbidden"), "code": 403});
        return (
            axum::http::StatusCode::FORBIDDEN,
            [("content-type", "application/json")],
            status.to_string(),
        )
            .into_response();
    }
    let method = request.method().clone();
    let mut outgoing = forward
        .http
        .request(method, format!("{}/{rest}", forward.dashboard));
    for name in ["content-type", "x-ray-authorization", "user-agent"] {
        if let Some(value) = request.headers().get(name) {
            outgoing = outgoing.header(name, value.clone());
        }
    }
    let body = axum::body::to_bytes(request.into_body(), usize::MAX)
        .await
        .unwrap_or_default();
    let answer = outgoing
        .body(body)
        .send()
        .await
        .expect("the dashboard answers");
    let status = answer.status();
    let bytes = answer.bytes().await.unwrap_or_default();
    (status, bytes).into_response()
}

async fn proxy_route(head: &RayHead, ns: &str) {
    let state = Forward {
        dashboard: head.dashboard_url.clone(),
        http: reqwest::Client::new(),
    };
    let app = axum::Router::new()
        .route(
            "/api/v1/namespaces/{ns}/services/{service}/proxy/{*rest}",
            axum::routing::any(forward),
        )
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let serving = tokio::spawn(async move { axum::serve(listener, app).await });

    let mut config = kube::Config::new(format!("http://{address}").parse().unwrap());
    config.default_retry = false;
    config.headers.push((
        axum::http::header::AUTHORIZATION,
        axum::http::HeaderValue::from_static("Bearer kube-token"),
    ));
    let client = kube::Client::try_from(config).expect("a Kubernetes client");
    let dashboards = Dashboards::new(
        Access::KubeProxy(client),
        Duration::from_secs(10),
        Some(&head.token),
    )
    .expect("dashboards");
    let dashboard = dashboards.of(CLUSTER, ns);

    let id = dashboard
        .submit_job(&json!({"entrypoint": "echo through-the-proxy"}), "")
        .await
        .expect("submitted through the proxy");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let info = dashboard
            .job_info(&id)
            .await
            .expect("details through the proxy");
        if info.status.as_deref() == Some("SUCCEEDED") {
            break;
        }
        assert!(Instant::now() < deadline, "{info:?}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let log = dashboard
        .job_logs(&id)
        .await
        .expect("log through the proxy");
    assert!(log.contains("through-the-proxy"), "{log}");
    let jobs = dashboard.list_jobs().await.expect("list through the proxy");
    assert!(
        jobs.iter()
            .any(|j| j.submission_id.as_deref() == Some(id.as_str()))
    );
    let missing = dashboard.job_info("no-such-job").await.unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    dashboard
        .delete_job(&id)
        .await
        .expect("deleted through the proxy");

    // A failure of the API server itself (here: credentials it refuses) is not taken for the
    // dashboard's answer.
    let mut config = kube::Config::new(format!("http://{address}").parse().unwrap());
    config.default_retry = false;
    let anonymous = kube::Client::try_from(config).expect("a Kubernetes client");
    let refused = Dashboards::new(
        Access::KubeProxy(anonymous),
        Duration::from_secs(10),
        Some(&head.token),
    )
    .expect("dashboards");
    let error = refused.of(CLUSTER, ns).list_jobs().await.unwrap_err();
    assert_eq!(error.code(), Code::Internal, "{error}");
    assert!(error.message().contains("is forbidden"), "{error}");
    serving.abort();
}
