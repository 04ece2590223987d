//! Names of Kubernetes objects, checked by the rules the Kubernetes API server applies, before
//! any of them is put into a request path.
//!
//! A name that passes these checks has only `a-z`, `0-9`, `-` and `.`, so it can never change
//! which object, verb or query a Kubernetes request reaches. Texts follow the API server's own
//! (`k8s.io/apimachinery/pkg/util/validation`), so users see the same reasons either way.

use crate::CoreError;

/// Longest text of a client's input that an error message repeats.
pub const MAX_ECHO_CHARS: usize = 64;

/// Which Kubernetes name rule a kind of object follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameRule {
    /// RFC 1123 label, at most 63 characters: namespaces.
    Label,
    /// RFC 1123 subdomain, at most 253 characters: ConfigMaps and custom resources such as
    /// RayClusters, RayJobs and RayServices.
    Subdomain,
}

const LABEL_MAX: usize = 63;
const SUBDOMAIN_MAX: usize = 253;
const LABEL_TEXT: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const SUBDOMAIN_TEXT: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";

impl NameRule {
    /// The reasons `value` breaks the rule, in the API server's words; empty when it is valid.
    pub fn violations(self, value: &str) -> Vec<String> {
        let (max, text, valid) = match self {
            NameRule::Label => (LABEL_MAX, LABEL_TEXT, is_label(value)),
            NameRule::Subdomain => (
                SUBDOMAIN_MAX,
                SUBDOMAIN_TEXT,
                value.split('.').all(is_label),
            ),
        };
        let mut reasons = Vec::new();
        if value.len() > max {
            reasons.push(format!("must be no more than {max} characters"));
        }
        if !valid {
            reasons.push(text.to_string());
        }
        reasons
    }

    /// Checks `value`, the `field` of a request; the error names the field and repeats at most
    /// [`MAX_ECHO_CHARS`] characters of the value.
    pub fn check(self, field: &str, value: &str) -> Result<(), CoreError> {
        let reasons = self.violations(value);
        if reasons.is_empty() {
            return Ok(());
        }
        Err(CoreError::InvalidInput(format!(
            "{field} {} is not a valid name: {}",
            quote_bounded(value),
            reasons.join(", ")
        )))
    }
}

/// Checks a namespace (a label).
pub fn check_namespace(namespace: &str) -> Result<(), CoreError> {
    NameRule::Label.check("namespace", namespace)
}

/// Checks the name of a ConfigMap or a Ray custom resource (a subdomain).
pub fn check_object_name(field: &str, name: &str) -> Result<(), CoreError> {
    NameRule::Subdomain.check(field, name)
}

/// Longest submission id accepted (Ray itself sets no limit; its own ids are about 30 bytes).
pub const SUBMISSION_ID_MAX: usize = 253;

/// Checks a job-submission id, which becomes one path segment of a Ray dashboard URL: not empty,
/// at most [`SUBMISSION_ID_MAX`] bytes, no `/`, no control characters, not `.` or `..`.
pub fn check_submission_id(id: &str) -> Result<(), CoreError> {
    let reason = if id.is_empty() {
        return Err(CoreError::InvalidInput(
            "Submission id is empty. Please specify a valid value.".to_string(),
        ));
    } else if id.len() > SUBMISSION_ID_MAX {
        format!("must be no more than {SUBMISSION_ID_MAX} bytes")
    } else if id == "." || id == ".." {
        "must not be '.' or '..'".to_string()
    } else if id.chars().any(|c| c == '/' || c.is_control()) {
        "must not contain '/' or control characters".to_string()
    } else {
        return Ok(());
    };
    Err(CoreError::InvalidInput(format!(
        "submission id {} is not valid: {reason}",
        quote_bounded(id)
    )))
}

fn is_label(part: &str) -> bool {
    let bytes = part.as_bytes();
    let edge = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) => {
            edge(first) && edge(last) && bytes.iter().all(|b| edge(b) || *b == b'-')
        }
        _ => false,
    }
}

/// A client's text quoted for an error message, cut after [`MAX_ECHO_CHARS`] characters with a
/// note of its full length, and with control characters escaped.
pub fn quote_bounded(value: &str) -> String {
    let shown: String = value.chars().take(MAX_ECHO_CHARS).collect();
    let quoted = format!("{shown:?}");
    if shown.len() == value.len() {
        quoted
    } else {
        format!("{quoted}... ({} bytes)", value.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_follow_rfc_1123() {
        for ok in ["a", "ray-system", "0", "a1-b2", &"x".repeat(63)] {
            assert!(NameRule::Label.violations(ok).is_empty(), "{ok}");
        }
        for bad in [
            "", "A", "-a", "a-", "a.b", "a_b", "a b", "a#b", "a?b", "a/b", "é",
        ] {
            assert_eq!(NameRule::Label.violations(bad), vec![LABEL_TEXT], "{bad}");
        }
        assert_eq!(
            NameRule::Label.violations(&"x".repeat(64)),
            vec!["must be no more than 63 characters"]
        );
    }

    #[test]
    fn subdomains_are_dot_separated_labels() {
        for ok in ["a", "a.b", "default-template", "x.y-z.0", &"a".repeat(253)] {
            assert!(NameRule::Subdomain.violations(ok).is_empty(), "{ok}");
        }
        for bad in [
            "",
            ".a",
            "a.",
            "a..b",
            "base#zzz",
            "%3Fwatch=true",
            "a b",
            "a\nb",
            "A.b",
        ] {
            assert_eq!(
                NameRule::Subdomain.violations(bad),
                vec![SUBDOMAIN_TEXT],
                "{bad}"
            );
        }
        assert_eq!(
            NameRule::Subdomain.violations(&"a".repeat(254)),
            vec!["must be no more than 253 characters"]
        );
        assert_eq!(NameRule::Subdomain.violations(&"A".repeat(254)).len(), 2);
    }

    #[test]
    fn errors_name_the_field_and_repeat_little_of_the_value() {
        let error = check_object_name("compute template name", "base#zzz").unwrap_err();
        assert_eq!(
            error.to_string(),
            format!("compute template name \"base#zzz\" is not a valid name: {SUBDOMAIN_TEXT}")
        );
        let long = "N".repeat(3_000_000);
        let text = check_namespace(&long).unwrap_err().to_string();
        assert!(text.len() < 600, "{}", text.len());
        assert!(text.contains("... (3000000 bytes)"), "{text}");
        assert!(text.contains("must be no more than 63 characters"));
        assert_eq!(quote_bounded("a\u{0}b"), "\"a\\0b\"");
    }

    #[test]
    fn submission_ids_stay_one_path_segment() {
        for ok in ["raysubmit_AbC123", "hello-1", "a b", "x%2Fy", "日本"] {
            assert_eq!(check_submission_id(ok), Ok(()), "{ok}");
        }
        for bad in ["", ".", "..", "a/b", "a\nb", "a\u{7f}"] {
            assert!(check_submission_id(bad).is_err(), "{bad:?}");
        }
        assert!(check_submission_id(&"x".repeat(254)).is_err());
        assert_eq!(
            check_submission_id("a/b").unwrap_err().to_string(),
            "submission id \"a/b\" is not valid: must not contain '/' or control characters"
        );
    }
}
