//! Access control with the cluster's own identities and RBAC (`--kubernetes-auth`).
//!
//! * **Who**: a caller presents a Kubernetes token (`Authorization: Bearer <token>`: a
//!   ServiceAccount token, or whatever else the cluster's TokenReview accepts); a TokenReview
//!   says whose it is. Answers are kept a while (`--kubernetes-auth-token-ttl`, 10 s; refusals
//!   at most [`REFUSAL_TTL`]).
//! * **What**: every V1 call is checked with a SubjectAccessReview as the caller, for the verb and
//!   resource its RPC maps to ([`Rule`], declared with the RPC in `rpcs.rs`) in the namespace of
//!   the request (all namespaces for the list-all calls); decisions are kept a while
//!   (`--kubernetes-auth-decision-ttl`, 5 s). V2
//!   calls go to Kubernetes as the caller (impersonation), so Kubernetes decides them itself.
//!
//! A review that cannot be made (the API server is unreachable) refuses the call with
//! `UNAVAILABLE`, never lets it through.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::HeaderValue;
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use kube::Api;
use kube::api::PostParams;
use tonic::Code;

use crate::error::{ApiError, kube_text};

/// How long a refused token stays refused without asking again, at most.
pub const REFUSAL_TTL: Duration = Duration::from_secs(2);
/// Entries kept at most per cache (it is emptied when full).
const CACHE_ENTRIES: usize = 8192;

/// A caller, as the cluster's TokenReview describes them (or a client certificate, or the access
/// policy).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Identity {
    pub user: String,
    pub uid: String,
    pub groups: Vec<String>,
    pub extra: BTreeMap<String, Vec<String>>,
}

/// What an RPC needs, in Kubernetes RBAC terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rule {
    pub verb: &'static str,
    pub group: &'static str,
    pub resource: &'static str,
    pub subresource: &'static str,
}

impl Rule {
    pub const fn new(verb: &'static str, group: &'static str, resource: &'static str) -> Self {
        Self {
            verb,
            group,
            resource,
            subresource: "",
        }
    }

    pub const fn sub(self, subresource: &'static str) -> Self {
        Self {
            subresource,
            ..self
        }
    }

    /// `create rayclusters.ray.io`, `get rayclusters.ray.io/proxy`, `list configmaps`.
    pub(crate) fn describe(&self) -> String {
        let mut text = format!("{} {}", self.verb, self.resource);
        if !self.group.is_empty() {
            text.push('.');
            text.push_str(self.group);
        }
        if !self.subresource.is_empty() {
            text.push('/');
            text.push_str(self.subresource);
        }
        text
    }
}

/// Reviewed tokens: when, and whose (`None`: refused).
type Tokens = HashMap<String, (Instant, Option<Arc<Identity>>)>;
/// Decisions: when, and allowed or why not.
type Decisions = HashMap<(Arc<Identity>, Rule, String), (Instant, Result<(), String>)>;

/// Authentication by TokenReview and authorization by SubjectAccessReview.
pub struct KubernetesAccess {
    client: kube::Client,
    token_ttl: Duration,
    decision_ttl: Duration,
    tokens: Mutex<Tokens>,
    decisions: Mutex<Decisions>,
}

impl KubernetesAccess {
    /// Reviews with `client`; callers are kept `token_ttl`, decisions `decision_ttl`.
    pub fn new(client: kube::Client, token_ttl: Duration, decision_ttl: Duration) -> Self {
        Self {
            client,
            token_ttl,
            decision_ttl,
            tokens: Mutex::new(HashMap::new()),
            decisions: Mutex::new(HashMap::new()),
        }
    }

    /// The caller presenting `authorization` (`Bearer <token>`), or why not: UNAUTHENTICATED
    /// for no or a refused token, UNAVAILABLE when the review cannot be made.
    pub async fn authenticate(
        &self,
        authorization: Option<&HeaderValue>,
    ) -> Result<Arc<Identity>, ApiError> {
        let unauthenticated = || ApiError::with_code(Code::Unauthenticated, crate::auth::REFUSED);
        let token = authorization
            .and_then(|value| crate::auth::bearer(value.as_bytes()))
            .and_then(|token| std::str::from_utf8(token).ok())
            .filter(|token| !token.is_empty())
            .ok_or_else(unauthenticated)?;
        if let Some((at, identity)) = self
            .tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(token)
        {
            let ttl = if identity.is_some() {
                self.token_ttl
            } else {
                REFUSAL_TTL.min(self.token_ttl)
            };
            if at.elapsed() < ttl {
                return identity.clone().ok_or_else(unauthenticated);
            }
        }
        let review = TokenReview {
            spec: TokenReviewSpec {
                token: Some(token.to_string()),
                audiences: None,
            },
            ..Default::default()
        };
        let answer = Api::<TokenReview>::all(self.client.clone())
            .create(&PostParams::default(), &review)
            .await
            .map_err(|error| {
                ApiError::with_code(
                    Code::Unavailable,
                    format!(
                        "the caller's token could not be reviewed: {}",
                        kube_text(&error)
                    ),
                )
            })?;
        let identity = answer
            .status
            .filter(|status| status.authenticated == Some(true))
            .and_then(|status| status.user)
            .map(|user| {
                Arc::new(Identity {
                    user: user.username.unwrap_or_default(),
                    uid: user.uid.unwrap_or_default(),
                    groups: user.groups.unwrap_or_default(),
                    extra: user.extra.unwrap_or_default(),
                })
            });
        if !self.token_ttl.is_zero() {
            let mut tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
            if tokens.len() >= CACHE_ENTRIES {
                tokens.clear();
            }
            tokens.insert(token.to_string(), (Instant::now(), identity.clone()));
        }
        identity.ok_or_else(unauthenticated)
    }

    /// Whether `identity` may do what `rule` says in `namespace` (empty: in all namespaces):
    /// PERMISSION_DENIED naming what is missing when not, UNAVAILABLE when the review cannot be
    /// made.
    pub async fn authorize(
        &self,
        identity: &Arc<Identity>,
        rule: Rule,
        namespace: &str,
    ) -> Result<(), ApiError> {
        let key = (identity.clone(), rule, namespace.to_string());
        let cached = self
            .decisions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
            .filter(|(at, _)| at.elapsed() < self.decision_ttl)
            .map(|(_, decision)| decision.clone());
        let decision = match cached {
            Some(decision) => decision,
            None => {
                let decision = self.review(identity, rule, namespace).await?;
                if !self.decision_ttl.is_zero() {
                    let mut decisions = self.decisions.lock().unwrap_or_else(|e| e.into_inner());
                    if decisions.len() >= CACHE_ENTRIES {
                        decisions.clear();
                    }
                    decisions.insert(key, (Instant::now(), decision.clone()));
                }
                decision
            }
        };
        decision.map_err(|reason| {
            let mut error = denied(
                identity,
                &rule.describe(),
                (!namespace.is_empty()).then_some(namespace),
            );
            if !reason.is_empty() {
                error = ApiError::with_code(
                    Code::PermissionDenied,
                    format!("{}: {reason}", error.message()),
                );
            }
            error
        })
    }

    async fn review(
        &self,
        identity: &Identity,
        rule: Rule,
        namespace: &str,
    ) -> Result<Result<(), String>, ApiError> {
        let non_empty = |text: &str| (!text.is_empty()).then(|| text.to_string());
        let review = SubjectAccessReview {
            spec: SubjectAccessReviewSpec {
                user: Some(identity.user.clone()),
                uid: non_empty(&identity.uid),
                groups: Some(identity.groups.clone()),
                extra: (!identity.extra.is_empty()).then(|| identity.extra.clone()),
                resource_attributes: Some(ResourceAttributes {
                    namespace: non_empty(namespace),
                    verb: Some(rule.verb.to_string()),
                    group: Some(rule.group.to_string()),
                    resource: Some(rule.resource.to_string()),
                    subresource: non_empty(rule.subresource),
                    ..Default::default()
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        let answer = Api::<SubjectAccessReview>::all(self.client.clone())
            .create(&PostParams::default(), &review)
            .await
            .map_err(|error| {
                ApiError::with_code(
                    Code::Unavailable,
                    format!("the call could not be authorized: {}", kube_text(&error)),
                )
            })?;
        let status = answer.status.unwrap_or_default();
        Ok(if status.allowed {
            Ok(())
        } else {
            Err(status.reason.unwrap_or_default())
        })
    }
}

/// PERMISSION_DENIED: "USER may not WHAT in namespace NS" (`None`: "in all namespaces").
pub(crate) fn denied(identity: &Identity, what: &str, namespace: Option<&str>) -> ApiError {
    let place = match namespace {
        Some(namespace) => format!("in namespace {namespace}"),
        None => "in all namespaces".to_string(),
    };
    ApiError::with_code(
        Code::PermissionDenied,
        format!("{} may not {what} {place}", identity.user),
    )
}

/// What is encoded in an `Impersonate-Extra-` key: all but letters, digits and `-._~`.
const EXTRA_KEY: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Impersonation headers that make Kubernetes act as `identity` (V2 calls).
pub fn impersonation(identity: &Identity) -> Vec<(http::HeaderName, HeaderValue)> {
    let mut headers = Vec::new();
    let mut add = |name: &str, value: &str| {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            headers.push((name, value));
        }
    };
    add("impersonate-user", &identity.user);
    if !identity.uid.is_empty() {
        add("impersonate-uid", &identity.uid);
    }
    for group in &identity.groups {
        add("impersonate-group", group);
    }
    for (key, values) in &identity.extra {
        // Kubernetes percent-decodes the key; `/` and other characters a header name cannot
        // hold are encoded (header names are lower case, so the hex digits are too).
        let key = percent_encoding::utf8_percent_encode(key, EXTRA_KEY);
        for value in values {
            add(&format!("impersonate-extra-{key}"), value);
        }
    }
    headers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_describe_themselves_as_rbac_does() {
        assert_eq!(
            Rule::new("create", "ray.io", "rayclusters").describe(),
            "create rayclusters.ray.io"
        );
        assert_eq!(
            Rule::new("list", "", "configmaps").describe(),
            "list configmaps"
        );
        assert_eq!(
            Rule::new("get", "ray.io", "rayclusters")
                .sub("proxy")
                .describe(),
            "get rayclusters.ray.io/proxy"
        );
    }

    #[test]
    fn impersonation_names_user_uid_groups_and_extra() {
        let identity = Identity {
            user: "system:serviceaccount:a:alice".into(),
            uid: "u-1".into(),
            groups: vec![
                "system:serviceaccounts".into(),
                "system:authenticated".into(),
            ],
            extra: BTreeMap::from([(
                "authentication.kubernetes.io/pod-name".to_string(),
                vec!["p".to_string()],
            )]),
        };
        let headers: Vec<(String, String)> = impersonation(&identity)
            .into_iter()
            .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_string()))
            .collect();
        assert_eq!(
            headers,
            [
                ("impersonate-user", "system:serviceaccount:a:alice"),
                ("impersonate-uid", "u-1"),
                ("impersonate-group", "system:serviceaccounts"),
                ("impersonate-group", "system:authenticated"),
                (
                    "impersonate-extra-authentication.kubernetes.io%2fpod-name",
                    "p"
                ),
            ]
            .map(|(n, v)| (n.to_string(), v.to_string()))
        );
    }
}
