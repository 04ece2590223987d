//! Authentication: who makes an API call, and whether they may.
//!
//! Off unless configured. A caller proves who they are with one credential ([`Credential`]):
//! * a shared token (`--auth-token`, `--auth-token-file`): the check of KubeRay's security-proxy
//!   sidecar, built in;
//! * a token of the access policy (`--auth-policy-file`, [`crate::access_policy`]);
//! * a Kubernetes token, reviewed by the cluster (`--kubernetes-auth`, [`crate::access`]);
//!
//! and, with `--tls-client-ca-file`, with a client certificate signed by that CA
//! ([`ClientCertificate`]), which is looked at first, as Kubernetes does.
//!
//! Tokens travel in `Authorization` (gRPC: the `authorization` metadata), as the sidecar takes
//! them (`Authorization: <token>`) or as bearer tokens (`Authorization: Bearer <token>`). Every API
//! call, V1 and V2, over HTTP and gRPC, needs a credential; health, readiness, metrics, the
//! Swagger documents and UI, gRPC health and reflection stay open. A call without one is refused
//! before anything else happens: HTTP 401 (`{"code":16,...}` on V1, a Kubernetes `Status` on V2),
//! gRPC `UNAUTHENTICATED`. Who may do what is then the [`Authorizer`]'s to say (with the policy or
//! the Kubernetes mode; a shared token or a certificate alone allows everything).

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use http::HeaderValue;
use subtle::ConstantTimeEq;
use tonic::Code;

use crate::access::{Identity, KubernetesAccess, Rule};
use crate::access_policy::Policy;
use crate::config::Config;
use crate::error::ApiError;
use crate::tls::ClientCertificate;

/// What a refused call is told (the sidecar's gRPC text).
pub const REFUSED: &str = "Request unauthorized";

/// The token API calls must present.
#[derive(Clone)]
pub struct SharedToken(Arc<[u8]>);

impl std::fmt::Debug for SharedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedToken(..)")
    }
}

impl SharedToken {
    /// A token; surrounding whitespace is not part of it, and it may not be empty or hold
    /// characters an HTTP header cannot carry.
    pub fn new(token: &str) -> anyhow::Result<Self> {
        let token = token.trim();
        anyhow::ensure!(!token.is_empty(), "the authentication token is empty");
        anyhow::ensure!(
            HeaderValue::from_str(token).is_ok(),
            "the authentication token holds characters an HTTP header cannot carry"
        );
        Ok(Self(token.as_bytes().into()))
    }

    /// The token of `--auth-token` or of the file `--auth-token-file`, if either is set.
    pub fn configured(token: Option<&str>, file: Option<&Path>) -> anyhow::Result<Option<Self>> {
        match (token, file) {
            (Some(token), _) => Self::new(token).map(Some),
            (None, Some(file)) => {
                let text = std::fs::read_to_string(file).with_context(|| {
                    format!("reading the authentication token file {}", file.display())
                })?;
                Self::new(&text)
                    .with_context(|| format!("in {}", file.display()))
                    .map(Some)
            }
            (None, None) => Ok(None),
        }
    }

    /// Whether an `Authorization` value presents this token: the token itself, or
    /// `Bearer <token>` (the scheme in any case). Compared in constant time.
    pub fn accepts(&self, authorization: Option<&HeaderValue>) -> bool {
        let Some(value) = authorization else {
            return false;
        };
        let value = value.as_bytes();
        let matches = |presented: &[u8]| bool::from(presented.ct_eq(&self.0));
        matches(value) | bearer(value).is_some_and(matches)
    }
}

/// The token of an `Authorization: Bearer <token>` value (the scheme in any case, spaces after
/// it skipped); `None` for another scheme or none.
pub fn bearer(authorization: &[u8]) -> Option<&[u8]> {
    authorization
        .get(..7)
        .filter(|scheme| scheme.eq_ignore_ascii_case(b"bearer "))
        .map(|_| authorization[7..].trim_ascii())
}

/// How the server is secured, from its configuration.
pub struct Security {
    /// `None`: API calls need no credential.
    pub authenticator: Option<Authenticator>,
    /// `None`: an authenticated caller may do everything.
    pub authorizer: Option<Authorizer>,
    /// The access policy, to be kept current with its file.
    pub policy: Option<Arc<Policy>>,
}

impl Security {
    /// Reads the token or policy files of `config` (an unreadable or invalid file is an error);
    /// Kubernetes reviews are made with `client`.
    pub fn from_config(config: &Config, client: &kube::Client) -> anyhow::Result<Self> {
        let token = SharedToken::configured(
            config.auth_token.as_deref(),
            config.auth_token_file.as_deref(),
        )?;
        let policy = config
            .auth_policy_file
            .as_deref()
            .map(Policy::load)
            .transpose()?
            .map(Arc::new);
        let kubernetes = config.kubernetes_auth.then(|| {
            Arc::new(KubernetesAccess::new(
                client.clone(),
                config.kubernetes_auth_token_ttl,
                config.kubernetes_auth_decision_ttl,
            ))
        });
        let (credential, authorizer) = match (token, &policy, kubernetes) {
            (Some(token), None, None) => {
                tracing::info!("API calls must present the authentication token");
                (Some(Credential::Token(token)), None)
            }
            (None, Some(policy), None) => {
                tracing::info!("API calls are authorized by the access policy");
                (
                    Some(Credential::Policy(policy.clone())),
                    Some(Authorizer::Policy(policy.clone())),
                )
            }
            (None, None, Some(access)) => {
                tracing::info!(
                    "API calls are authenticated with TokenReview and authorized with SubjectAccessReview"
                );
                (
                    Some(Credential::Kubernetes(access.clone())),
                    Some(Authorizer::Kubernetes(access)),
                )
            }
            (None, None, None) => (None, None),
            _ => anyhow::bail!(
                "choose one of --auth-token (--auth-token-file), --auth-policy-file and --kubernetes-auth"
            ),
        };
        let prefix = match (&config.auth_path_prefix, &credential) {
            (None, _) => None,
            (Some(prefix), Some(Credential::Token(_))) => {
                anyhow::ensure!(
                    prefix.starts_with('/'),
                    "--auth-path-prefix must start with /"
                );
                Some(prefix.clone())
            }
            (Some(_), _) => anyhow::bail!("--auth-path-prefix goes with --auth-token only"),
        };
        let certificates = config.tls_client_ca_file.is_some();
        if certificates {
            tracing::info!("client certificates signed by the client CA are credentials");
        }
        let authenticator =
            Authenticator::new(credential, certificates).map(|mut authenticator| {
                authenticator.http_prefix = prefix;
                authenticator
            });
        Ok(Self {
            authenticator,
            authorizer,
            policy,
        })
    }
}

/// The token a caller presents, and what checks it.
#[derive(Clone)]
pub enum Credential {
    /// One token for everyone.
    Token(SharedToken),
    /// A token per caller, from the access policy.
    Policy(Arc<Policy>),
    /// A Kubernetes token, reviewed by the cluster.
    Kubernetes(Arc<KubernetesAccess>),
}

/// How calls are authenticated: a token ([`Credential`]), a verified client certificate, or
/// either.
#[derive(Clone)]
pub struct Authenticator {
    credential: Option<Credential>,
    certificates: bool,
    /// Only HTTP paths with this prefix need a credential (`--auth-path-prefix`).
    http_prefix: Option<String>,
}

impl Authenticator {
    /// `None` when calls need no credential: no token configured and `certificates` (verified
    /// client certificates are credentials: a client CA is configured) false.
    pub fn new(credential: Option<Credential>, certificates: bool) -> Option<Self> {
        (credential.is_some() || certificates).then_some(Self {
            credential,
            certificates,
            http_prefix: None,
        })
    }

    /// Whether an HTTP request for `path` needs a credential.
    pub fn protects(&self, path: &str) -> bool {
        self.http_prefix
            .as_deref()
            .is_none_or(|prefix| path.starts_with(prefix))
    }

    /// Checks a call's client certificate, then its `Authorization`: `Ok` with the caller when
    /// the credential names one (a certificate, the policy, the Kubernetes mode), an
    /// UNAUTHENTICATED (or, when the cluster cannot review a token, UNAVAILABLE) error
    /// otherwise.
    pub async fn check(
        &self,
        authorization: Option<&HeaderValue>,
        certificate: Option<&ClientCertificate>,
    ) -> Result<Option<Arc<Identity>>, ApiError> {
        if self.certificates
            && let Some(ClientCertificate(Some(identity))) = certificate
        {
            return Ok(Some(identity.clone()));
        }
        match &self.credential {
            Some(Credential::Token(token)) if token.accepts(authorization) => Ok(None),
            Some(Credential::Policy(policy)) => policy.authenticate(authorization).map(Some),
            Some(Credential::Kubernetes(access)) => {
                access.authenticate(authorization).await.map(Some)
            }
            _ => Err(ApiError::with_code(Code::Unauthenticated, REFUSED)),
        }
    }
}

/// Who decides what an authenticated caller may do: the access policy, or the cluster's RBAC
/// (SubjectAccessReview as the caller; V2 requests go to Kubernetes as the caller).
#[derive(Clone)]
pub enum Authorizer {
    Policy(Arc<Policy>),
    Kubernetes(Arc<KubernetesAccess>),
}

impl Authorizer {
    /// Whether `identity` may make a V1 call that needs `rule` in `namespace` (empty: across
    /// all namespaces).
    pub async fn authorize(
        &self,
        identity: &Arc<Identity>,
        rule: Rule,
        namespace: &str,
    ) -> Result<(), ApiError> {
        match self {
            Authorizer::Policy(policy) => policy.authorize(identity, rule, namespace),
            Authorizer::Kubernetes(access) => access.authorize(identity, rule, namespace).await,
        }
    }
}

/// Whether a gRPC method stays open: health checks and reflection.
pub fn open_grpc_path(path: &str) -> bool {
    path.starts_with("/grpc.health.v1.Health/") || path.starts_with("/grpc.reflection.")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(value: &str) -> HeaderValue {
        HeaderValue::from_str(value).unwrap()
    }

    #[test]
    fn the_token_is_accepted_as_the_sidecar_and_as_a_bearer_token_take_it() {
        let token = SharedToken::new("s3cret-Token").unwrap();
        assert!(token.accepts(Some(&header("s3cret-Token"))));
        assert!(token.accepts(Some(&header("Bearer s3cret-Token"))));
        assert!(token.accepts(Some(&header("bearer s3cret-Token"))));
        assert!(token.accepts(Some(&header("Bearer   s3cret-Token"))));
        for refused in [
            "",
            "s3cret",
            "s3cret-token",
            "Bearer s3cret",
            "Basic s3cret-Token",
        ] {
            assert!(!token.accepts(Some(&header(refused))), "{refused:?}");
        }
        assert!(!token.accepts(None));
    }

    #[test]
    fn a_token_is_trimmed_and_never_empty() {
        let token = SharedToken::new(" t0k\n").unwrap();
        assert!(token.accepts(Some(&header("t0k"))));
        assert!(SharedToken::new(" \n").is_err());
        assert!(SharedToken::new("a\u{1}b").is_err());
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "from-file\n").unwrap();
        let token = SharedToken::configured(None, Some(&file)).unwrap().unwrap();
        assert!(token.accepts(Some(&header("Bearer from-file"))));
        assert!(SharedToken::configured(None, None).unwrap().is_none());
        assert!(SharedToken::configured(None, Some(&dir.path().join("missing"))).is_err());
    }

    #[test]
    fn only_health_and_reflection_are_open_on_grpc() {
        assert!(open_grpc_path("/grpc.health.v1.Health/Check"));
        assert!(open_grpc_path(
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"
        ));
        assert!(!open_grpc_path("/proto.ClusterService/ListCluster"));
    }
}
