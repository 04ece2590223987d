//! Static tokens with a small access policy (`--auth-policy-file`): per-caller access without a
//! Kubernetes identity system, for the embedded store (or any backend).
//!
//! The file names each caller, the token they present (or, with `--tls-client-ca-file`, the
//! common name of their client certificate: the caller's name), the namespaces they may use and
//! whether they may change anything:
//!
//! ```yaml
//! users:
//! - name: alice
//!   token: "alice's token"       # or tokenFile: /path/to/a/file
//!   namespaces: [team-a]         # "*": every namespace, and the calls across all of them
//!   access: read-write           # or read-only (the default)
//! ```
//!
//! Reading calls (RBAC verbs `get`, `list`, `watch`; on V2 the methods GET and HEAD) need
//! `read-only` or `read-write`; every other call needs `read-write`. A call is checked against
//! the namespace it names; calls across all namespaces need `"*"`. The file is read again when it
//! changes (checked every [`crate::tls::RELOAD_INTERVAL`]); a broken update is logged and the
//! previous policy kept.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use anyhow::{Context, bail, ensure};
use http::HeaderValue;
use serde::Deserialize;
use subtle::ConstantTimeEq;
use tokio_util::sync::CancellationToken;
use tonic::Code;

use crate::access::{Identity, Rule};
use crate::error::ApiError;

/// The policy file, as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    users: Vec<UserEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct UserEntry {
    name: String,
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    token_file: Option<PathBuf>,
    namespaces: Vec<String>,
    #[serde(default)]
    access: Access,
}

#[derive(Deserialize, Default, Clone, Copy, PartialEq, Eq, Debug)]
#[serde(rename_all = "kebab-case")]
enum Access {
    #[default]
    ReadOnly,
    ReadWrite,
}

/// What one caller may do.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Grant {
    /// `None`: every namespace.
    namespaces: Option<BTreeSet<String>>,
    access: Access,
}

/// A loaded policy: tokens and what each caller may do.
#[derive(Debug, Default)]
struct Rules {
    /// (token, caller) pairs, searched in constant time per token.
    tokens: Vec<(Box<[u8]>, Arc<Identity>)>,
    grants: HashMap<String, Grant>,
}

/// Whether a call only reads.
fn reads(verb: &str) -> bool {
    matches!(verb, "get" | "list" | "watch")
}

impl Rules {
    fn parse(text: &str, base: &Path) -> anyhow::Result<Self> {
        let file: PolicyFile = serde_saphyr::from_str(text)?;
        let mut rules = Rules::default();
        for entry in file.users {
            let name = entry.name.trim().to_string();
            ensure!(!name.is_empty(), "a user has an empty name");
            let context = || format!("user {name}");
            let token = match (entry.token, entry.token_file) {
                (Some(_), Some(_)) => bail!("user {name}: both token and tokenFile are set"),
                (Some(token), None) => Some(token),
                (None, Some(path)) => {
                    let path = base.join(path);
                    Some(std::fs::read_to_string(&path).with_context(|| {
                        format!("user {name}: reading the token file {}", path.display())
                    })?)
                }
                (None, None) => None,
            };
            if let Some(token) = token {
                let token = token.trim();
                ensure!(!token.is_empty(), "user {name}: the token is empty");
                ensure!(
                    HeaderValue::from_str(token).is_ok(),
                    "user {name}: the token holds characters an HTTP header cannot carry"
                );
                ensure!(
                    !rules
                        .tokens
                        .iter()
                        .any(|(other, _)| **other == *token.as_bytes()),
                    "user {name}: the same token is given to another user"
                );
                rules.tokens.push((
                    token.as_bytes().into(),
                    Arc::new(Identity {
                        user: name.clone(),
                        ..Default::default()
                    }),
                ));
            }
            ensure!(
                !entry.namespaces.is_empty(),
                "user {name}: no namespaces (use \"*\" for every namespace)"
            );
            let mut namespaces = BTreeSet::new();
            let mut every = false;
            for namespace in entry.namespaces {
                if namespace == "*" {
                    every = true;
                } else {
                    kuberay_core::names::check_namespace(&namespace)
                        .map_err(|error| anyhow::anyhow!("{error}"))
                        .with_context(context)?;
                    namespaces.insert(namespace);
                }
            }
            let grant = Grant {
                namespaces: (!every).then_some(namespaces),
                access: entry.access,
            };
            ensure!(
                rules.grants.insert(name.clone(), grant).is_none(),
                "user {name} is listed twice"
            );
        }
        Ok(rules)
    }

    fn caller(&self, token: &[u8]) -> Option<Arc<Identity>> {
        // Every entry is compared, so the time taken does not say which one matched.
        let mut found = None;
        for (candidate, identity) in &self.tokens {
            if bool::from(candidate.ct_eq(token)) {
                found = Some(identity.clone());
            }
        }
        found
    }

    fn allows(&self, user: &str, reading: bool, namespace: Option<&str>) -> bool {
        let Some(grant) = self.grants.get(user) else {
            return false;
        };
        let place = match (&grant.namespaces, namespace) {
            (None, _) => true,
            (Some(namespaces), Some(namespace)) => namespaces.contains(namespace),
            (Some(_), None) => false,
        };
        place && (reading || grant.access == Access::ReadWrite)
    }
}

/// The policy of `--auth-policy-file`, kept current with the file.
pub struct Policy {
    path: PathBuf,
    rules: RwLock<Arc<Rules>>,
}

impl std::fmt::Debug for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Policy").field("path", &self.path).finish()
    }
}

impl Policy {
    /// Reads the policy file; an unreadable or invalid file is an error.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        Ok(Self {
            path: path.to_path_buf(),
            rules: RwLock::new(Arc::new(read(path)?)),
        })
    }

    fn rules(&self) -> Arc<Rules> {
        self.rules.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The caller presenting `authorization` (the token itself or `Bearer <token>`), or
    /// UNAUTHENTICATED.
    pub fn authenticate(
        &self,
        authorization: Option<&HeaderValue>,
    ) -> Result<Arc<Identity>, ApiError> {
        let rules = self.rules();
        authorization
            .and_then(|value| {
                let value = value.as_bytes();
                crate::auth::bearer(value)
                    .and_then(|token| rules.caller(token))
                    .or_else(|| rules.caller(value))
            })
            .ok_or_else(|| ApiError::with_code(Code::Unauthenticated, crate::auth::REFUSED))
    }

    /// Whether `identity` may make a V1 call that needs `rule` in `namespace` (empty: across
    /// all namespaces): PERMISSION_DENIED naming what is missing when not.
    pub fn authorize(
        &self,
        identity: &Identity,
        rule: Rule,
        namespace: &str,
    ) -> Result<(), ApiError> {
        let namespace = (!namespace.is_empty()).then_some(namespace);
        if self
            .rules()
            .allows(&identity.user, reads(rule.verb), namespace)
        {
            Ok(())
        } else {
            Err(crate::access::denied(identity, &rule.describe(), namespace))
        }
    }

    /// Whether `identity` may make a V2 request with `method` on a path naming `namespace`
    /// (`None`: across all namespaces).
    pub fn authorize_v2(
        &self,
        identity: &Identity,
        method: &http::Method,
        namespace: Option<&str>,
    ) -> Result<(), ApiError> {
        let reading = matches!(*method, http::Method::GET | http::Method::HEAD);
        if self.rules().allows(&identity.user, reading, namespace) {
            Ok(())
        } else {
            let what = if reading { "read" } else { "change" };
            Err(crate::access::denied(identity, what, namespace))
        }
    }

    /// Reads the file again whenever it changes, until `stop`.
    pub fn watch(self: Arc<Self>, stop: CancellationToken) {
        tokio::spawn(async move {
            let mut seen = crate::tls::stamp(&self.path);
            loop {
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(crate::tls::RELOAD_INTERVAL) => {}
                }
                let now = crate::tls::stamp(&self.path);
                if now == seen {
                    continue;
                }
                seen = now;
                match read(&self.path) {
                    Ok(rules) => {
                        *self.rules.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(rules);
                        tracing::info!("access policy {} reloaded", self.path.display());
                    }
                    Err(error) => tracing::error!(
                        "access policy {} not reloaded, the previous one stays: {error:#}",
                        self.path.display()
                    ),
                }
            }
        });
    }
}

fn read(path: &Path) -> anyhow::Result<Rules> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the access policy {}", path.display()))?;
    let base = path.parent().unwrap_or(Path::new("."));
    Rules::parse(&text, base).with_context(|| format!("in the access policy {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: &str = r#"
users:
- name: alice
  token: alice-token
  namespaces: [team-a]
  access: read-write
- name: auditor
  token: audit-token
  namespaces: ["*"]
- name: carol
  namespaces: [team-c, team-d]
  access: read-write
"#;

    fn policy(text: &str) -> anyhow::Result<Rules> {
        Rules::parse(text, Path::new("."))
    }

    fn header(value: &str) -> HeaderValue {
        HeaderValue::from_str(value).unwrap()
    }

    #[test]
    fn tokens_name_their_caller_in_either_form() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("policy.yaml");
        std::fs::write(&path, POLICY).unwrap();
        let policy = Policy::load(&path).unwrap();
        for presented in ["alice-token", "Bearer alice-token", "bearer  alice-token"] {
            let caller = policy.authenticate(Some(&header(presented))).unwrap();
            assert_eq!(caller.user, "alice", "{presented}");
        }
        for refused in [
            "",
            "alice",
            "Bearer audit",
            "Basic alice-token",
            "ALICE-TOKEN",
        ] {
            let error = policy.authenticate(Some(&header(refused))).unwrap_err();
            assert_eq!(error.code(), Code::Unauthenticated, "{refused}");
        }
        assert!(policy.authenticate(None).is_err());
    }

    #[test]
    fn namespaces_and_access_decide() {
        let rules = policy(POLICY).unwrap();
        // alice: read-write in team-a only.
        assert!(rules.allows("alice", false, Some("team-a")));
        assert!(rules.allows("alice", true, Some("team-a")));
        assert!(!rules.allows("alice", true, Some("team-b")));
        assert!(!rules.allows("alice", true, None));
        // auditor: reads everywhere, changes nothing.
        assert!(rules.allows("auditor", true, Some("team-b")));
        assert!(rules.allows("auditor", true, None));
        assert!(!rules.allows("auditor", false, Some("team-b")));
        // carol (certificate only): her two namespaces.
        assert!(rules.allows("carol", false, Some("team-d")));
        assert!(!rules.allows("carol", false, Some("team-a")));
        // Someone not in the policy: nothing.
        assert!(!rules.allows("mallory", true, Some("team-a")));
    }

    #[test]
    fn refusals_name_the_caller_and_what_was_missing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("policy.yaml");
        std::fs::write(&path, POLICY).unwrap();
        let policy = Policy::load(&path).unwrap();
        let alice = Identity {
            user: "alice".into(),
            ..Default::default()
        };
        let create = Rule::new("create", "ray.io", "rayclusters");
        assert!(policy.authorize(&alice, create, "team-a").is_ok());
        let error = policy.authorize(&alice, create, "team-b").unwrap_err();
        assert_eq!(error.code(), Code::PermissionDenied);
        assert_eq!(
            error.message(),
            "alice may not create rayclusters.ray.io in namespace team-b"
        );
        let list = Rule::new("list", "ray.io", "rayclusters");
        assert_eq!(
            policy.authorize(&alice, list, "").unwrap_err().message(),
            "alice may not list rayclusters.ray.io in all namespaces"
        );
        assert_eq!(
            policy
                .authorize_v2(&alice, &http::Method::DELETE, Some("team-b"))
                .unwrap_err()
                .message(),
            "alice may not change in namespace team-b"
        );
        assert!(
            policy
                .authorize_v2(&alice, &http::Method::GET, Some("team-a"))
                .is_ok()
        );
    }

    #[test]
    fn token_files_are_read_relative_to_the_policy() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("bob.token"), "bob-token\n").unwrap();
        let rules = Rules::parse(
            "users:\n- name: bob\n  tokenFile: bob.token\n  namespaces: [b]\n",
            dir.path(),
        )
        .unwrap();
        assert_eq!(rules.caller(b"bob-token").unwrap().user, "bob");
    }

    #[test]
    fn mistakes_in_the_file_are_refused_with_their_place() {
        for (text, expected) in [
            (
                "users:\n- name: a\n  namespaces: []\n",
                "user a: no namespaces",
            ),
            (
                "users:\n- name: a\n  token: t\n  namespaces: [x]\n- name: b\n  token: t\n  namespaces: [x]\n",
                "user b: the same token is given to another user",
            ),
            (
                "users:\n- name: a\n  namespaces: [x]\n- name: a\n  namespaces: [y]\n",
                "user a is listed twice",
            ),
            ("users:\n- name: a\n  namespaces: [Bad_NS]\n", "user a"),
            (
                "users:\n- name: a\n  namespaces: [x]\n  acess: read-write\n",
                "acess",
            ),
            (
                "users:\n- name: a\n  namespaces: [x]\n  access: admin\n",
                "admin",
            ),
            ("users:\n- name: ' '\n  namespaces: [x]\n", "empty name"),
            (
                "users:\n- name: a\n  token: t\n  tokenFile: f\n  namespaces: [x]\n",
                "both token and tokenFile",
            ),
        ] {
            let error = format!("{:#}", policy(text).unwrap_err());
            assert!(error.contains(expected), "{text}: {error}");
        }
    }
}
