//! ComputeTemplateService over gRPC with a tonic client, against the same server.

mod support;

use kuberay_api::proto::compute_template_service_client::ComputeTemplateServiceClient;
use kuberay_api::proto::{
    ComputeTemplate, CreateComputeTemplateRequest, DeleteComputeTemplateRequest,
    GetComputeTemplateRequest, ListAllComputeTemplatesRequest, ListComputeTemplatesRequest,
    PodToleration,
};
use std::collections::BTreeMap;
use support::TestServer;
use tonic::Code;
use tonic::transport::Channel;

async fn client(server: &TestServer) -> ComputeTemplateServiceClient<Channel> {
    ComputeTemplateServiceClient::connect(server.grpc.clone())
        .await
        .expect("gRPC connects")
}

fn template(ns: &str) -> ComputeTemplate {
    ComputeTemplate {
        name: "grpc-template".into(),
        namespace: ns.into(),
        cpu: 4,
        memory: 8192,
        gpu: 1,
        gpu_accelerator: "example.com/tpu".into(),
        tolerations: vec![PodToleration {
            key: "k".into(),
            operator: "Equal".into(),
            value: "v".into(),
            effect: "NoSchedule".into(),
        }],
        extended_resources: BTreeMap::from([("example.com/fpga".to_string(), 2)]),
        memory_unit: "Mi".into(),
    }
}

#[tokio::test]
async fn lifecycle_over_grpc() {
    let mut server = TestServer::start().await;
    let ns = server.namespace("grpc").await;
    let mut grpc = client(&server).await;

    let created = grpc
        .create_compute_template(CreateComputeTemplateRequest {
            compute_template: Some(template(&ns)),
            namespace: ns.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(created, template(&ns));

    let got = grpc
        .get_compute_template(GetComputeTemplateRequest {
            name: "grpc-template".into(),
            namespace: ns.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got, template(&ns));

    let listed = grpc
        .list_compute_templates(ListComputeTemplatesRequest {
            namespace: ns.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.compute_templates, vec![template(&ns)]);

    let all = grpc
        .list_all_compute_templates(ListAllComputeTemplatesRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(all.compute_templates.contains(&template(&ns)));

    // Visible over HTTP too: one store, two transports.
    let http = support::http_client();
    let response = http
        .get(server.url(&format!(
            "/apis/v1/namespaces/{ns}/compute_templates/grpc-template"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    grpc.delete_compute_template(DeleteComputeTemplateRequest {
        name: "grpc-template".into(),
        namespace: ns.clone(),
    })
    .await
    .unwrap();
    let missing = grpc
        .get_compute_template(GetComputeTemplateRequest {
            name: "grpc-template".into(),
            namespace: ns.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    assert!(
        missing
            .message()
            .starts_with("Compute template grpc-template not found: Get compute template failed.")
    );
    server.stop().await;
}

#[tokio::test]
async fn grpc_errors_and_codes() {
    let mut server = TestServer::start().await;
    let ns = server.namespace("grpc-err").await;
    let mut grpc = client(&server).await;

    // A missing template over gRPC is invalid input, never a crash.
    let err = grpc
        .create_compute_template(CreateComputeTemplateRequest {
            compute_template: None,
            namespace: ns.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().starts_with(
        "The namespace in the request is different from the namespace defined in the compute template."
    ));

    let err = grpc
        .create_compute_template(CreateComputeTemplateRequest {
            compute_template: Some(template(&ns)),
            namespace: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message()
            .starts_with("Namespace is empty. Please specify a valid value.")
    );

    let err = grpc
        .get_compute_template(GetComputeTemplateRequest {
            name: "x".into(),
            namespace: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(
        err.message(),
        "Namespace is empty. Please specify a valid value.: Invalid input error: Namespace is empty. Please specify a valid value."
    );

    let err = grpc
        .list_compute_templates(ListComputeTemplatesRequest {
            namespace: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);

    grpc.create_compute_template(CreateComputeTemplateRequest {
        compute_template: Some(template(&ns)),
        namespace: ns.clone(),
    })
    .await
    .unwrap();
    let err = grpc
        .create_compute_template(CreateComputeTemplateRequest {
            compute_template: Some(template(&ns)),
            namespace: ns.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists);

    let bad_unit = ComputeTemplate {
        name: "bad-unit".into(),
        memory_unit: "gigs".into(),
        ..template(&ns)
    };
    let err = grpc
        .create_compute_template(CreateComputeTemplateRequest {
            compute_template: Some(bad_unit),
            namespace: ns.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let err = grpc
        .get_compute_template(GetComputeTemplateRequest {
            name: "bad-unit".into(),
            namespace: ns.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "nothing was stored");

    server.stop().await;
}
