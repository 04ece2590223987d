//! Authentication by a shared token: the check of KubeRay's security-proxy sidecar, built in.
//!
//! Off unless a token is configured (`--auth-token`, `--auth-token-file`). Then every API call,
//! V1 and V2, over HTTP and gRPC, must carry it in `Authorization` (gRPC: the `authorization`
//! metadata), as the sidecar takes it (`Authorization: <token>`) or as a bearer token
//! (`Authorization: Bearer <token>`). Health, readiness, metrics, the Swagger documents and UI,
//! gRPC health and reflection stay open. A call without the token is refused before anything
//! else happens: HTTP 401 (`{"code":16,...}` on V1, a Kubernetes `Status` on V2), gRPC
//! `UNAUTHENTICATED`.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use http::HeaderValue;
use subtle::ConstantTimeEq;
use tonic::Code;

use crate::access::{Identity, KubernetesAccess};
use crate::error::ApiError;

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
        let bearer = value
            .get(..7)
            .filter(|scheme| scheme.eq_ignore_ascii_case(b"bearer "))
            .map(|_| value[7..].trim_ascii_start());
        let matches = |presented: &[u8]| bool::from(presented.ct_eq(&self.0));
        matches(value) | bearer.is_some_and(matches)
    }
}

/// How calls are authenticated: a shared token, or the cluster's TokenReview (then every call
/// also carries the caller's [`Identity`] for authorization).
#[derive(Clone)]
pub enum Authenticator {
    Token(SharedToken),
    Kubernetes(Arc<KubernetesAccess>),
}

impl Authenticator {
    /// Checks a call's `Authorization`: `Ok` with the caller in the Kubernetes mode, an
    /// UNAUTHENTICATED (or, when the review cannot be made, UNAVAILABLE) error otherwise.
    pub async fn check(
        &self,
        authorization: Option<&HeaderValue>,
    ) -> Result<Option<Arc<Identity>>, ApiError> {
        match self {
            Authenticator::Token(token) if token.accepts(authorization) => Ok(None),
            Authenticator::Token(_) => Err(ApiError::with_code(Code::Unauthenticated, REFUSED)),
            Authenticator::Kubernetes(access) => access.authenticate(authorization).await.map(Some),
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
