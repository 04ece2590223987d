//! TLS on both ports with certificates made here (a test CA): HTTPS and gRPC over TLS, mutual
//! TLS refusing clients without a certificate of the CA, and a certificate rotated while a
//! client stays connected.

mod support;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kuberay_api::proto::ListAllComputeTemplatesRequest;
use kuberay_api::proto::compute_template_service_client::ComputeTemplateServiceClient;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use support::TestServer;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

/// A test CA and what it signs.
struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

impl Ca {
    fn new() -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "kuberay-apiserver test CA");
        let key = KeyPair::generate().unwrap();
        let pem = params.self_signed(&key).unwrap().pem();
        Self {
            issuer: Issuer::new(params, key),
            pem,
        }
    }

    /// A certificate for `names` (and 127.0.0.1): its PEM and its key's PEM.
    fn sign(&self, names: &[&str]) -> (String, String) {
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        params
            .subject_alt_names
            .push(rcgen::SanType::IpAddress("127.0.0.1".parse().unwrap()));
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn https_client(ca: &Ca, identity: Option<(&str, &str)>) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(ca.pem.as_bytes()).unwrap()]);
    if let Some((cert, key)) = identity {
        builder = builder
            .identity(reqwest::Identity::from_pem(format!("{cert}{key}").as_bytes()).unwrap());
    }
    builder.build().unwrap()
}

fn https(address: &str) -> String {
    address.replace("http://", "https://")
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
    let client = https_client(&ca, None);
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
async fn mutual_tls_refuses_clients_without_a_certificate_of_the_ca() {
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

    assert!(
        https_client(&ca, None)
            .get(&templates)
            .send()
            .await
            .is_err()
    );
    let other = Ca::new();
    let (stranger_cert, stranger_key) = other.sign(&["stranger"]);
    assert!(
        https_client(&ca, Some((&stranger_cert, &stranger_key)))
            .get(&templates)
            .send()
            .await
            .is_err()
    );
    let (client_cert, client_key) = ca.sign(&["client"]);
    let response = https_client(&ca, Some((&client_cert, &client_key)))
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
        async move { endpoint.connect().await }
    };
    let refused = match connect(None).await {
        Err(_) => true,
        Ok(channel) => ComputeTemplateServiceClient::new(channel)
            .list_all_compute_templates(ListAllComputeTemplatesRequest {})
            .await
            .is_err(),
    };
    assert!(refused, "a gRPC client without a certificate was served");
    let channel = connect(Some(Identity::from_pem(client_cert, client_key)))
        .await
        .unwrap();
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
