//! TLS on both ports (`--tls-cert-file`, `--tls-key-file`), optionally with client certificates
//! signed by `--tls-client-ca-file` (mutual TLS).
//!
//! A client certificate is then a credential: the handshake verifies one when it is presented
//! (a certificate from another CA ends the handshake) but does not demand one, so health checks
//! and probes keep working without; the API calls of a connection without a certificate need
//! another credential or are refused (see `auth`). The certificate names its caller as
//! Kubernetes reads client certificates: the subject's common name is the user, its
//! organizations are the groups ([`ClientCertificate`]).
//!
//! The files are read at start (a bad file stops the server there) and watched afterwards: when
//! any of them changes (a rotated Kubernetes Secret, cert-manager renewing), new connections get
//! the new certificate, key and client CA within [`RELOAD_INTERVAL`]; connections already open
//! keep theirs. A change that does not load (a half-written file, a key that does not match) is
//! logged and the previous configuration stays in use.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use anyhow::Context;
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio_util::sync::CancellationToken;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::access::Identity;

/// How often the files are checked for changes.
pub const RELOAD_INTERVAL: Duration = Duration::from_secs(5);

/// The files of the TLS configuration.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_ca: Option<PathBuf>,
}

/// What a listener hands each new connection: the current configuration for its protocols.
#[derive(Clone)]
pub struct Acceptor {
    current: Arc<RwLock<Arc<ServerConfig>>>,
}

impl Acceptor {
    /// The configuration for the next connection.
    pub fn config(&self) -> Arc<ServerConfig> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// The acceptors of both ports, kept up to date with the files.
pub struct Tls {
    files: TlsFiles,
    http: Acceptor,
    grpc: Acceptor,
}

/// ALPN of the HTTP port (HTTP/2 and HTTP/1.1) and of the gRPC port (HTTP/2 only).
const HTTP_ALPN: &[&[u8]] = &[b"h2", b"http/1.1"];
const GRPC_ALPN: &[&[u8]] = &[b"h2"];

impl Tls {
    /// Loads the files; `None` when no certificate is configured.
    pub fn load(files: Option<TlsFiles>) -> anyhow::Result<Option<Self>> {
        let Some(files) = files else {
            return Ok(None);
        };
        let acceptor = |alpn| -> anyhow::Result<Acceptor> {
            Ok(Acceptor {
                current: Arc::new(RwLock::new(Arc::new(server_config(&files, alpn)?))),
            })
        };
        Ok(Some(Self {
            http: acceptor(HTTP_ALPN)?,
            grpc: acceptor(GRPC_ALPN)?,
            files,
        }))
    }

    pub fn http(&self) -> Acceptor {
        self.http.clone()
    }

    pub fn grpc(&self) -> Acceptor {
        self.grpc.clone()
    }

    /// Watches the files until `stop`, replacing the configuration when they change.
    pub fn watch(self, stop: CancellationToken) {
        tokio::spawn(async move {
            let mut seen = stamps(&self.files);
            loop {
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(RELOAD_INTERVAL) => {}
                }
                let now = stamps(&self.files);
                if now == seen {
                    continue;
                }
                match self.reload() {
                    Ok(()) => {
                        seen = now;
                        tracing::info!(
                            "TLS certificate reloaded from {}",
                            self.files.cert.display()
                        );
                    }
                    // Tried again at the next tick: the files may be in the middle of an update.
                    Err(error) => tracing::warn!(
                        "TLS files changed but do not load, keeping the previous ones: {error:#}"
                    ),
                }
            }
        });
    }

    fn reload(&self) -> anyhow::Result<()> {
        let http = server_config(&self.files, HTTP_ALPN)?;
        let grpc = server_config(&self.files, GRPC_ALPN)?;
        *self.http.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(http);
        *self.grpc.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(grpc);
        Ok(())
    }
}

/// Modification time and length of each file, the change a reload looks for (a Secret volume
/// swaps a symlink, so the files' metadata is read through it).
fn stamps(files: &TlsFiles) -> Vec<Option<(SystemTime, u64)>> {
    [
        Some(&files.cert),
        Some(&files.key),
        files.client_ca.as_ref(),
    ]
    .into_iter()
    .flatten()
    .map(|path| stamp(path))
    .collect()
}

/// Modification time and length of a file (through symlinks), `None` while it cannot be read.
pub fn stamp(path: &Path) -> Option<(SystemTime, u64)> {
    std::fs::metadata(path)
        .ok()
        .and_then(|m| Some((m.modified().ok()?, m.len())))
}

/// The verified client certificate of a connection, as each of its requests carries it: the
/// caller it names, or `None` when its subject has no common name (such a certificate
/// authenticates nobody).
#[derive(Clone, Debug)]
pub struct ClientCertificate(pub Option<Arc<Identity>>);

impl ClientCertificate {
    /// The connection's certificate (the first of the chain the client sent), if any.
    pub fn of(chain: Option<&[CertificateDer<'_>]>) -> Option<Self> {
        let leaf = chain?.first()?;
        Some(Self(certificate_identity(leaf).map(Arc::new)))
    }
}

/// User (common name) and groups (organizations) of a certificate; `None` without a common name.
fn certificate_identity(certificate: &CertificateDer<'_>) -> Option<Identity> {
    let (_, parsed) = X509Certificate::from_der(certificate).ok()?;
    let subject = parsed.subject();
    let user = subject
        .iter_common_name()
        .next()
        .and_then(|name| name.as_str().ok())
        .filter(|name| !name.is_empty())?
        .to_string();
    let mut groups: Vec<String> = subject
        .iter_organization()
        .filter_map(|name| name.as_str().ok())
        .map(str::to_string)
        .collect();
    // Kubernetes adds this group to every authenticated caller.
    groups.push("system:authenticated".to_string());
    Some(Identity {
        user,
        groups,
        ..Default::default()
    })
}

fn server_config(files: &TlsFiles, alpn: &[&[u8]]) -> anyhow::Result<ServerConfig> {
    let chain = certificates(&files.cert)?;
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .with_context(|| format!("reading the TLS key {}", files.key.display()))?;
    let builder = ServerConfig::builder();
    let builder = match &files.client_ca {
        Some(path) => {
            let mut roots = rustls::RootCertStore::empty();
            for certificate in certificates(path)? {
                roots
                    .add(certificate)
                    .with_context(|| format!("adding a client CA from {}", path.display()))?;
            }
            let verifier = WebPkiClientVerifier::builder(Arc::new(roots))
                .allow_unauthenticated()
                .build()
                .with_context(|| format!("the client CA {}", path.display()))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(chain, key).with_context(|| {
        format!(
            "the TLS certificate {} with the key {}",
            files.cert.display(),
            files.key.display()
        )
    })?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(config)
}

fn certificates(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certificates = CertificateDer::pem_file_iter(path)
        .and_then(|items| items.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("reading certificates from {}", path.display()))?;
    anyhow::ensure!(
        !certificates.is_empty(),
        "{} holds no PEM certificate",
        path.display()
    );
    Ok(certificates)
}
