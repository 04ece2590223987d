//! The namespaces a server may touch: all of them, or one (`--namespace`, the Helm chart's
//! `singleNamespaceInstall`, where the server's Kubernetes rights cover that namespace only).
//!
//! A restricted server refuses every request for another namespace before calling Kubernetes,
//! and answers its list-all calls from its own namespace.

use std::fmt;
use std::sync::Arc;

/// All namespaces, or exactly one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NamespaceScope {
    only: Option<Arc<str>>,
}

/// A request for a namespace outside the scope (or for all namespaces, from a restricted server).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutOfScope {
    /// The namespace asked for; `None` for all namespaces.
    pub asked: Option<String>,
    /// The one namespace served.
    pub served: Arc<str>,
}

impl fmt::Display for OutOfScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.asked {
            Some(namespace) => write!(
                f,
                "namespace {} is outside this API server's scope: it serves namespace {:?} only",
                crate::names::quote_bounded(namespace),
                self.served
            ),
            None => write!(
                f,
                "requests across all namespaces are outside this API server's scope: it serves namespace {:?} only",
                self.served
            ),
        }
    }
}

impl std::error::Error for OutOfScope {}

impl NamespaceScope {
    /// Every namespace.
    pub fn all() -> Self {
        Self::default()
    }

    /// One namespace only.
    pub fn only(namespace: impl Into<Arc<str>>) -> Self {
        Self {
            only: Some(namespace.into()),
        }
    }

    /// The one namespace served, if restricted.
    pub fn served(&self) -> Option<&str> {
        self.only.as_deref()
    }

    /// Whether a request for `namespace` may go ahead.
    pub fn check(&self, namespace: &str) -> Result<(), OutOfScope> {
        match &self.only {
            Some(served) if **served != *namespace => Err(OutOfScope {
                asked: Some(namespace.to_owned()),
                served: served.clone(),
            }),
            _ => Ok(()),
        }
    }

    /// Whether a request across all namespaces may go ahead (only when unrestricted).
    pub fn check_all(&self) -> Result<(), OutOfScope> {
        match &self.only {
            Some(served) => Err(OutOfScope {
                asked: None,
                served: served.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Where a list-all call lists: every namespace (`None`) or the one served.
    pub fn list_all_namespace(&self) -> Option<&str> {
        self.served()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unrestricted_allows_everything() {
        let scope = NamespaceScope::all();
        assert_eq!(scope.check("anything"), Ok(()));
        assert_eq!(scope.check_all(), Ok(()));
        assert_eq!(scope.list_all_namespace(), None);
    }

    #[test]
    fn restricted_allows_its_namespace_only() {
        let scope = NamespaceScope::only("ray-system");
        assert_eq!(scope.check("ray-system"), Ok(()));
        assert_eq!(scope.list_all_namespace(), Some("ray-system"));
        let refused = scope.check("default").unwrap_err();
        assert_eq!(
            refused.to_string(),
            "namespace \"default\" is outside this API server's scope: it serves namespace \"ray-system\" only"
        );
        // Near misses are other namespaces.
        for other in ["ray-system ", "Ray-system", "ray-system/x", ""] {
            assert!(scope.check(other).is_err(), "{other:?}");
        }
        assert_eq!(
            scope.check_all().unwrap_err().to_string(),
            "requests across all namespaces are outside this API server's scope: it serves namespace \"ray-system\" only"
        );
    }

    #[test]
    fn long_namespaces_are_echoed_bounded() {
        let scope = NamespaceScope::only("ray-system");
        let text = scope.check(&"x".repeat(10_000)).unwrap_err().to_string();
        assert!(text.len() < 200, "{text}");
    }
}
