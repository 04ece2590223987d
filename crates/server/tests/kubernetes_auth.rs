//! `--kubernetes-auth` on a real control plane: callers authenticated by TokenReview, every V1
//! call authorized by SubjectAccessReview as the caller, V2 forwarded as the caller. Two users
//! (ServiceAccounts), each allowed in their own namespace by a Role. Runs only against a real
//! cluster (`KUBERAY_TEST_KUBECONFIG`): the embedded store has no TokenReview.

mod support;

use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use kube::Api;
use kube::api::PostParams;
use kuberay_api::proto::compute_template_service_client::ComputeTemplateServiceClient;
use kuberay_api::proto::{ComputeTemplate, CreateComputeTemplateRequest};
use reqwest::Method;
use serde_json::{Value, json};
use support::access::{ApiCall, Ca, every_call, https};
use support::{TestServer, http_client};
use tonic::Code;
use tonic::metadata::MetadataValue;

/// A ServiceAccount in `ns` allowed everything this server maps its RPCs to, in `ns` only; its
/// token.
async fn user(server: &TestServer, ns: &str, name: &str) -> String {
    let client = server.kube();
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), ns);
    let account = ServiceAccount {
        metadata: kube::core::ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        ..Default::default()
    };
    accounts
        .create(&PostParams::default(), &account)
        .await
        .unwrap();
    let rule = |groups: &[&str], resources: &[&str], verbs: &[&str]| PolicyRule {
        api_groups: Some(groups.iter().map(|s| s.to_string()).collect()),
        resources: Some(resources.iter().map(|s| s.to_string()).collect()),
        verbs: verbs.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    };
    let role = Role {
        metadata: kube::core::ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        rules: Some(vec![
            rule(&[""], &["configmaps"], &["*"]),
            rule(
                &["ray.io"],
                &["rayclusters", "rayjobs", "rayservices", "rayclusters/proxy"],
                &["*"],
            ),
        ]),
    };
    Api::<Role>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &role)
        .await
        .unwrap();
    let binding = RoleBinding {
        metadata: kube::core::ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".into(),
            kind: "Role".into(),
            name: name.into(),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".into(),
            name: name.into(),
            namespace: Some(ns.into()),
            ..Default::default()
        }]),
    };
    Api::<RoleBinding>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &binding)
        .await
        .unwrap();
    let request = TokenRequest {
        spec: TokenRequestSpec {
            audiences: vec![],
            expiration_seconds: Some(3600),
            ..Default::default()
        },
        ..Default::default()
    };
    let answer: TokenRequest = accounts
        .create_subresource("token", name, &PostParams::default(), &request)
        .await
        .unwrap();
    answer.status.unwrap().token
}

/// A call as the holder of `token`.
async fn send(server: &TestServer, request: &ApiCall, token: Option<&str>) -> (u16, Value) {
    let authorization = token.map(|token| format!("Bearer {token}"));
    support::access::send(&server.http, request, authorization.as_deref()).await
}

/// A call as the holder of `token`.
async fn call(
    server: &TestServer,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let authorization = token.map(|token| format!("Bearer {token}"));
    let (status, body) = support::send_as(
        &http_client(),
        method,
        server.url(path),
        authorization.as_deref(),
        body,
    )
    .await;
    (status.as_u16(), body)
}

#[tokio::test]
async fn every_call_is_authorized_as_the_caller() {
    if support::real_cluster().is_none() {
        eprintln!("skipped: needs a real cluster (KUBERAY_TEST_KUBECONFIG)");
        return;
    }
    let mut server = TestServer::start_with(&["--kubernetes-auth"]).await;
    let ns_a = server.namespace("authz-a").await;
    let ns_b = server.namespace("authz-b").await;
    let alice = user(&server, &ns_a, "alice").await;
    let bob = user(&server, &ns_b, "bob").await;

    // Unauthenticated: no token, or one the cluster does not know.
    let templates_a = format!("/apis/v1/namespaces/{ns_a}/compute_templates");
    for token in [None, Some("not-a-token")] {
        let (status, body) = call(&server, Method::GET, &templates_a, token, None).await;
        assert_eq!(status, 401, "{body}");
        assert_eq!(body["code"], 16);
    }

    // Alice in her namespace: allowed; the server writes with its own rights.
    let template = |ns: &str| json!({"name": "base", "namespace": ns, "cpu": 1, "memory": 1});
    let (status, body) = call(
        &server,
        Method::POST,
        &templates_a,
        Some(&alice),
        Some(template(&ns_a)),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // Bob there: refused, naming what he lacks, and nothing changes.
    let (status, body) = call(
        &server,
        Method::DELETE,
        &format!("{templates_a}/base"),
        Some(&bob),
        None,
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["code"], 7);
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains(&format!(
            "system:serviceaccount:{ns_b}:bob may not delete configmaps in namespace {ns_a}"
        )),
        "{message}"
    );
    let (status, _) = call(
        &server,
        Method::GET,
        &format!("{templates_a}/base"),
        Some(&alice),
        None,
    )
    .await;
    assert_eq!(status, 200, "bob's refused delete deleted nothing");

    // Every RPC over HTTP and every V2 verb. In alice's namespace bob is refused everything
    // (by this server on V1, by Kubernetes as bob on V2); alice gets past authorization
    // (whatever the call then answers) except across all namespaces.
    for request in &every_call(&ns_a) {
        let answer = send(&server, request, None).await;
        assert_eq!(answer.0, 401, "anonymous: {request}: {}", answer.1);
        request.assert_refused(&send(&server, request, Some(&bob)).await, "bob");
        let answer = send(&server, request, Some(&alice)).await;
        if request.across_all {
            request.assert_refused(&answer, "alice");
        } else {
            request.assert_passed(&answer, "alice");
        }
    }

    // gRPC: the same decisions.
    let mut client = ComputeTemplateServiceClient::connect(server.grpc.clone())
        .await
        .unwrap();
    let create = |token: &str, ns: &str| {
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
        request.metadata_mut().insert(
            "authorization",
            MetadataValue::try_from(format!("Bearer {token}")).unwrap(),
        );
        request
    };
    let refused = client
        .create_compute_template(create(&alice, &ns_b))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    client
        .create_compute_template(create(&bob, &ns_b))
        .await
        .unwrap();

    // V2: Kubernetes decides, as the caller.
    let clusters = |ns: &str| format!("/apis/ray.io/v1/namespaces/{ns}/rayclusters");
    let (status, body) = call(&server, Method::GET, &clusters(&ns_a), Some(&alice), None).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = call(&server, Method::GET, &clusters(&ns_b), Some(&alice), None).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["reason"], "Forbidden");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains(&format!("system:serviceaccount:{ns_a}:alice")),
        "{body}"
    );
    let (status, body) = call(&server, Method::DELETE, &clusters(&ns_a), Some(&bob), None).await;
    assert_eq!(status, 403, "{body}");

    // A client certificate names the caller as Kubernetes reads one (common name: user,
    // organizations: groups): authorized and impersonated as that user.
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new();
    let (cert, key) = ca.sign(&["localhost"]);
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    let flags = [
        "--kubernetes-auth".to_string(),
        format!("--tls-cert-file={}", write("tls.crt", &cert)),
        format!("--tls-key-file={}", write("tls.key", &key)),
        format!("--tls-client-ca-file={}", write("ca.crt", &ca.pem)),
    ];
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let tls_server = TestServer::start_with(&flags).await;
    let alice_name = format!("system:serviceaccount:{ns_a}:alice");
    let (cert, key) = ca.client(
        Some(&alice_name),
        &[
            "system:serviceaccounts",
            &format!("system:serviceaccounts:{ns_a}"),
        ],
    );
    let alice_by_certificate = ca.https_client(Some((&cert, &key)));
    let get = |path: String| {
        let request = alice_by_certificate.get(format!("{}{path}", https(&tls_server.http)));
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (
                status,
                response.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    let (status, body) = get(format!("/apis/v1/namespaces/{ns_a}/compute_templates")).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = get(format!("/apis/v1/namespaces/{ns_b}/compute_templates")).await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["message"].as_str().unwrap().starts_with(&format!(
            "{alice_name} may not list configmaps in namespace {ns_b}"
        )),
        "{body}"
    );
    let (status, body) = get(clusters(&ns_a)).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = get(clusters(&ns_b)).await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains(&alice_name),
        "{body}"
    );
    tls_server.stop().await;
    server.stop().await;
}
