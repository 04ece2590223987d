//! `--auth-policy-file`: static tokens, each allowed read-only or read-write access to some
//! namespaces, on every V1 route, gRPC and every V2 verb; client certificates naming a policy's
//! caller; the policy read again when its file changes.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use clap::Parser as _;
use kuberay_api::proto::compute_template_service_client::ComputeTemplateServiceClient;
use kuberay_api::proto::{ComputeTemplate, CreateComputeTemplateRequest};
use reqwest::Method;
use serde_json::{Value, json};
use support::access::{ApiCall, Ca, every_call, https, v2_calls};
use support::{TestServer, unique_name};
use tonic::Code;
use tonic::metadata::MetadataValue;

const ALICE: &str = "alice-7d1f0c";
const BOB: &str = "Bob.token/2";
const AUDITOR: &str = "auditor-93be";

fn policy(ns_a: &str, ns_b: &str) -> String {
    format!(
        "users:
- name: alice
  token: {ALICE}
  namespaces: [{ns_a}]
  access: read-write
- name: bob
  token: {BOB}
  namespaces: [{ns_b}]
  access: read-write
- name: auditor
  token: {AUDITOR}
  namespaces: ['*']
- name: carol
  namespaces: [{ns_b}]
  access: read-write
"
    )
}

async fn call(server: &TestServer, call: &ApiCall, token: Option<&str>) -> (u16, Value) {
    support::access::send(&server.http, call, token).await
}

async fn start(dir: &Path, policy_text: &str, extra: &[&str]) -> TestServer {
    let file = dir.join("policy.yaml");
    std::fs::write(&file, policy_text).unwrap();
    let flag = format!("--auth-policy-file={}", file.display());
    let mut args = vec![flag.as_str()];
    args.extend_from_slice(extra);
    TestServer::start_with(&args).await
}

#[tokio::test]
async fn each_token_reaches_its_namespaces_with_its_access() {
    let dir = tempfile::tempdir().unwrap();
    let ns_a = unique_name("policy-a");
    let ns_b = unique_name("policy-b");
    let mut server = start(dir.path(), &policy(&ns_a, &ns_b), &[]).await;
    server.create_namespace(&ns_a).await;
    server.create_namespace(&ns_b).await;
    let bearer = |token: &str| format!("Bearer {token}");

    // No token, or one the policy does not hold: 401, on V1 and V2.
    let templates_a = ApiCall {
        method: Method::GET,
        path: format!("/apis/v1/namespaces/{ns_a}/compute_templates"),
        body: None,
        across_all: false,
        v2: false,
    };
    for token in [None, Some("Bearer nobody"), Some("alice")] {
        let (status, body) = call(&server, &templates_a, token).await;
        assert_eq!(status, 401, "{token:?}: {body}");
        assert_eq!(body["code"], 16);
        let (status, body) = call(&server, &v2_calls(&ns_a)[0], token).await;
        assert_eq!(status, 401, "{token:?}: {body}");
        assert_eq!(body["reason"], "Unauthorized");
    }

    // Alice writes in her namespace (the token alone, as KubeRay's sidecar takes it); bob and
    // the read-only auditor may not delete there, and their refusals change nothing.
    let create = ApiCall {
        method: Method::POST,
        body: Some(json!({"name": "base", "namespace": ns_a, "cpu": 1, "memory": 1})),
        ..templates_a.clone()
    };
    let (status, body) = call(&server, &create, Some(ALICE)).await;
    assert_eq!(status, 200, "{body}");
    let delete = ApiCall {
        method: Method::DELETE,
        path: format!("{}/base", templates_a.path),
        ..templates_a.clone()
    };
    for (token, name) in [(BOB, "bob"), (AUDITOR, "auditor")] {
        let (status, body) = call(&server, &delete, Some(&bearer(token))).await;
        assert_eq!(status, 403, "{body}");
        assert_eq!(body["code"], 7);
        assert_eq!(
            body["message"],
            format!("{name} may not delete configmaps in namespace {ns_a}")
        );
    }
    let get = ApiCall {
        method: Method::GET,
        ..delete.clone()
    };
    let (status, body) = call(&server, &get, Some(AUDITOR)).await;
    assert_eq!(status, 200, "the refused deletes deleted nothing: {body}");

    // Every V1 route and every V2 verb. In alice's namespace: bob is refused everything; alice
    // gets past authorization (whatever the call then answers) except across all namespaces;
    // the auditor reads everywhere and changes nothing.
    for request in &every_call(&ns_a) {
        let answer = call(&server, request, None).await;
        assert_eq!(answer.0, 401, "anonymous: {request}: {}", answer.1);
        let answer = call(&server, request, Some(&bearer(BOB))).await;
        request.assert_refused(&answer, "bob");
        assert!(
            answer.1["message"]
                .as_str()
                .unwrap()
                .starts_with("bob may not"),
            "{request}: {}",
            answer.1
        );
        let answer = call(&server, request, Some(&bearer(ALICE))).await;
        if request.across_all {
            request.assert_refused(&answer, "alice");
        } else {
            request.assert_passed(&answer, "alice");
        }
        let answer = call(&server, request, Some(AUDITOR)).await;
        if request.reads() {
            request.assert_passed(&answer, "auditor");
        } else {
            request.assert_refused(&answer, "auditor");
        }
    }

    // gRPC: the same decisions.
    let mut client = ComputeTemplateServiceClient::connect(server.grpc.clone())
        .await
        .unwrap();
    let create = |token: Option<&str>, ns: &str| {
        let mut request = tonic::Request::new(CreateComputeTemplateRequest {
            compute_template: Some(ComputeTemplate {
                name: "grpc".into(),
                namespace: ns.into(),
                cpu: 1,
                memory: 1,
                ..Default::default()
            }),
            namespace: ns.into(),
        });
        if let Some(token) = token {
            request
                .metadata_mut()
                .insert("authorization", MetadataValue::try_from(token).unwrap());
        }
        request
    };
    let refused = client
        .create_compute_template(create(None, &ns_b))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");
    let refused = client
        .create_compute_template(create(Some(ALICE), &ns_b))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    assert_eq!(
        refused.message(),
        format!("alice may not create configmaps in namespace {ns_b}")
    );
    client
        .create_compute_template(create(Some(&bearer(BOB)), &ns_b))
        .await
        .unwrap();

    // The file changes: a new caller is let in, a removed one is refused, without a restart.
    let changed = policy(&ns_a, &ns_b).replace(
        &format!("- name: alice\n  token: {ALICE}\n"),
        "- name: dave\n  token: dave-token\n",
    );
    let staged = dir.path().join("policy.yaml.new");
    std::fs::write(&staged, changed).unwrap();
    std::fs::rename(&staged, dir.path().join("policy.yaml")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, _) = call(&server, &templates_a, Some("dave-token")).await;
        if status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the changed policy was not read within 20 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (status, _) = call(&server, &templates_a, Some(ALICE)).await;
    assert_eq!(status, 401, "alice's token was removed");
    // A broken file keeps the policy in force.
    std::fs::write(dir.path().join("policy.yaml"), "users: [{name: x}]\n").unwrap();
    tokio::time::sleep(Duration::from_secs(6)).await;
    let (status, _) = call(&server, &templates_a, Some("dave-token")).await;
    assert_eq!(status, 200, "a broken policy file replaced the policy");
    server.stop().await;
}

#[tokio::test]
async fn a_client_certificate_acts_as_the_policy_caller_it_names() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new();
    let (cert, key) = ca.sign(&["localhost"]);
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    let tls = [
        format!("--tls-cert-file={}", write("tls.crt", &cert)),
        format!("--tls-key-file={}", write("tls.key", &key)),
        format!("--tls-client-ca-file={}", write("ca.crt", &ca.pem)),
    ];
    let ns_a = unique_name("policy-cert-a");
    let ns_b = unique_name("policy-cert-b");
    let tls: Vec<&str> = tls.iter().map(String::as_str).collect();
    let mut server = start(dir.path(), &policy(&ns_a, &ns_b), &tls).await;
    server.create_namespace(&ns_a).await;
    server.create_namespace(&ns_b).await;

    let (carol_cert, carol_key) = ca.client(Some("carol"), &["ray-users"]);
    let carol = ca.https_client(Some((&carol_cert, &carol_key)));
    let templates = |ns: &str| {
        format!(
            "{}/apis/v1/namespaces/{ns}/compute_templates",
            https(&server.http)
        )
    };
    let template = |ns: &str| json!({"name": "base", "namespace": ns, "cpu": 1, "memory": 1});
    let created = carol
        .post(templates(&ns_b))
        .body(template(&ns_b).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 200);
    let refused = carol
        .post(templates(&ns_a))
        .body(template(&ns_a).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(
        body["message"],
        format!("carol may not create configmaps in namespace {ns_a}")
    );
    // A certificate naming someone the policy does not know may do nothing.
    let (cert, key) = ca.client(Some("mallory"), &[]);
    let response = ca
        .https_client(Some((&cert, &key)))
        .get(templates(&ns_b))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    // Without a certificate, the policy's tokens still work.
    let response = ca
        .https_client(None)
        .get(templates(&ns_a))
        .header("authorization", ALICE)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    server.stop().await;
}

#[test]
fn one_way_to_authenticate_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("policy.yaml");
    std::fs::write(&file, "users: []\n").unwrap();
    let policy_flag = format!("--auth-policy-file={}", file.display());
    let parsed = kuberay_apiserver::Config::try_parse_from([
        "kuberay-apiserver",
        policy_flag.as_str(),
        "--auth-token=t",
    ]);
    assert!(parsed.is_err(), "a policy and a shared token together");
}
