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
use kuberay_api::routes::ROUTES;
use reqwest::Method;
use serde_json::{Value, json};
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

    // Every RPC over HTTP: bob is refused in alice's namespace and, like alice, across all
    // namespaces; alice gets past authorization in hers (whatever the call then answers).
    for route in ROUTES
        .iter()
        .filter(|r| kuberay_apiserver::services::SERVED_SERVICES.contains(&r.service))
    {
        let across_all = !route.pattern.contains("{namespace}");
        let path = |ns: &str| {
            route
                .pattern
                .replace("{namespace}", ns)
                .split('/')
                .map(|segment| {
                    if segment.starts_with('{') {
                        "x"
                    } else {
                        segment
                    }
                    .to_string()
                })
                .collect::<Vec<_>>()
                .join("/")
        };
        let method = Method::from_bytes(route.http_method.as_bytes()).unwrap();
        let body = route.body.map(|_| json!({}));
        let (status, answer) = call(
            &server,
            method.clone(),
            &path(&ns_a),
            Some(&bob),
            body.clone(),
        )
        .await;
        assert_eq!(
            status, 403,
            "bob: {} {}: {answer}",
            route.http_method, route.pattern
        );
        let (status, answer) = call(
            &server,
            method.clone(),
            &path(&ns_a),
            Some(&alice),
            body.clone(),
        )
        .await;
        if across_all {
            assert_eq!(status, 403, "alice: {}: {answer}", route.pattern);
        } else {
            assert_ne!(
                status, 403,
                "alice: {} {}: {answer}",
                route.http_method, route.pattern
            );
            assert_ne!(status, 401, "alice: {}: {answer}", route.pattern);
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
    server.stop().await;
}
