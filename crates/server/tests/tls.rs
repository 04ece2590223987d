//! TLS on both ports with certificates made here (a test CA): HTTPS and gRPC over TLS, client
//! certificates of the CA as credentials (none or another CA's refused, health open), and a
//! certificate rotated while a client stays connected.

mod support;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kuberay_api::proto::ListAllComputeTemplatesRequest;
use kuberay_api::proto::compute_template_service_client::ComputeTemplateServiceClient;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use support::TestServer;
use support::access::{Ca, https};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// The certificate the server presents to a new connection on `address` (`host:port`).
async fn served_certificate(ca: &Ca, address: &str) -> CertificateDer<'static> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca.pem.as_bytes()).unwrap())
        .unwrap();
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), stream)
        .await
        .unwrap();
    tls.get_ref().1.peer_certificates().unwrap()[0]
        .clone()
        .into_owned()
}

#[tokio::test]
async fn both_ports_serve_tls_and_a_rotated_certificate_is_used_without_a_restart() {
    let ca = Ca::new();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = ca.sign(&["localhost"]);
    let cert_file = write(dir.path(), "tls.crt", &cert);
    let key_file = write(dir.path(), "tls.key", &key);
    let cert_flag = format!("--tls-cert-file={}", cert_file.display());
    let key_flag = format!("--tls-key-file={}", key_file.display());
    let server = TestServer::start_with(&[&cert_flag, &key_flag]).await;

    // HTTPS, verified against the CA.
    let client = ca.https_client(None);
    let templates = format!("{}/apis/v1/compute_templates", https(&server.http));
    let response = client.get(&templates).send().await.unwrap();
    assert_eq!(response.status(), 200);
    // Plain HTTP is not served.
    assert!(
        reqwest::get(server.url("/healthz"))
            .await
            .map(|r| r.status() != 200)
            .unwrap_or(true)
    );

    // gRPC over TLS.
    let channel = Channel::from_shared(https(&server.grpc))
        .unwrap()
        .tls_config(
            ClientTlsConfig::new()
                .ca_certificate(Certificate::from_pem(&ca.pem))
                .domain_name("localhost"),
        )
        .unwrap()
        .connect()
        .await
        .unwrap();
    ComputeTemplateServiceClient::new(channel)
        .list_all_compute_templates(ListAllComputeTemplatesRequest {})
        .await
        .unwrap();

    // Rotation: new files (written whole, then renamed in place, as a Secret volume updates);
    // new connections get the new certificate, the open connection keeps working.
    let http_address = server.http.trim_start_matches("http://").to_string();
    let grpc_address = server.grpc.trim_start_matches("http://").to_string();
    let old = served_certificate(&ca, &http_address).await;
    let (new_cert, new_key) = ca.sign(&["localhost"]);
    let staged_cert = write(dir.path(), "tls.crt.new", &new_cert);
    let staged_key = write(dir.path(), "tls.key.new", &new_key);
    std::fs::rename(staged_key, &key_file).unwrap();
    std::fs::rename(staged_cert, &cert_file).unwrap();
    let expected = CertificateDer::from_pem_slice(new_cert.as_bytes()).unwrap();
    assert_ne!(old, expected);
    let deadline = Instant::now() + Duration::from_secs(20);
    while served_certificate(&ca, &http_address).await != expected {
        assert!(
            Instant::now() < deadline,
            "the new certificate was not served within 20 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(served_certificate(&ca, &grpc_address).await, expected);
    let response = client.get(&templates).send().await.unwrap();
    assert_eq!(
        response.status(),
        200,
        "the connection open across the rotation"
    );

    // A broken update (a key that does not match) keeps the current certificate.
    let (_, other_key) = ca.sign(&["localhost"]);
    std::fs::write(&key_file, other_key).unwrap();
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(served_certificate(&ca, &http_address).await, expected);
    server.stop().await;
}

#[tokio::test]
async fn client_certificates_of_the_ca_are_credentials() {
    let ca = Ca::new();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = ca.sign(&["localhost"]);
    let cert_flag = format!(
        "--tls-cert-file={}",
        write(dir.path(), "tls.crt", &cert).display()
    );
    let key_flag = format!(
        "--tls-key-file={}",
        write(dir.path(), "tls.key", &key).display()
    );
    let ca_flag = format!(
        "--tls-client-ca-file={}",
        write(dir.path(), "ca.crt", &ca.pem).display()
    );
    let server = TestServer::start_with(&[&cert_flag, &key_flag, &ca_flag]).await;
    let templates = format!("{}/apis/v1/compute_templates", https(&server.http));

    // Without a certificate: health answers (probes present none), API calls are refused.
    let anonymous = ca.https_client(None);
    let health = anonymous
        .get(format!("{}/healthz", https(&server.http)))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let refused = anonymous.get(&templates).send().await.unwrap();
    assert_eq!(refused.status(), 401);
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["code"], 16, "{body}");
    // A certificate of another CA ends the handshake.
    let other = Ca::new();
    let (stranger_cert, stranger_key) = other.client(Some("stranger"), &[]);
    assert!(
        ca.https_client(Some((&stranger_cert, &stranger_key)))
            .get(&templates)
            .send()
            .await
            .is_err()
    );
    // A certificate of the CA naming nobody (no common name) is no credential.
    let (nameless_cert, nameless_key) = ca.client(None, &["team"]);
    let response = ca
        .https_client(Some((&nameless_cert, &nameless_key)))
        .get(&templates)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let (client_cert, client_key) = ca.client(Some("client"), &[]);
    let response = ca
        .https_client(Some((&client_cert, &client_key)))
        .get(&templates)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    // gRPC the same.
    let grpc_url = https(&server.grpc);
    let connect = |identity: Option<Identity>| {
        let mut tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&ca.pem))
            .domain_name("localhost");
        if let Some(identity) = identity {
            tls = tls.identity(identity);
        }
        let endpoint = Channel::from_shared(grpc_url.clone())
            .unwrap()
            .tls_config(tls)
            .unwrap();
        async move { endpoint.connect().await.unwrap() }
    };
    let refused = ComputeTemplateServiceClient::new(connect(None).await)
        .list_all_compute_templates(ListAllComputeTemplatesRequest {})
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{refused:?}");
    let channel = connect(Some(Identity::from_pem(client_cert, client_key))).await;
    ComputeTemplateServiceClient::new(channel)
        .list_all_compute_templates(ListAllComputeTemplatesRequest {})
        .await
        .unwrap();
    server.stop().await;
}

#[test]
fn half_a_tls_configuration_is_refused() {
    let config = support::config(Path::new("/tmp"), &["--tls-cert-file=/x.crt"]);
    assert!(config.tls_files().is_err());
    let config = support::config(Path::new("/tmp"), &["--tls-client-ca-file=/ca.crt"]);
    assert!(config.tls_files().is_err());
}
