//! The V2 service proxy guard: `/api/v1/namespaces/{ns}/services/{service}/proxy[/...]` is only
//! forwarded for Services the KubeRay operator created (label `app.kubernetes.io/name=kuberay`).

use http::StatusCode;
use k8s_openapi::api::core::v1::Service;
use kube::Api;
use kube::api::ListParams;

/// The label the operator puts on the Services it creates.
pub const KUBERAY_SERVICE_SELECTOR: &str = "app.kubernetes.io/name=kuberay";

/// Splits `[scheme:]name[:port]` like client-go's `SplitSchemeNamePort`: one to three parts, the
/// scheme empty, `http` or `https`, the name non-empty. Returns the name.
pub fn service_name(id: &str) -> Option<&str> {
    let parts: Vec<&str> = id.split(':').collect();
    let (scheme, name) = match parts.as_slice() {
        [name] | [name, _] => ("", *name),
        [scheme, name, _] => (*scheme, *name),
        _ => return None,
    };
    (!name.is_empty() && matches!(scheme, "" | "http" | "https")).then_some(name)
}

/// Why a service proxy request is not forwarded.
pub enum Refusal {
    /// The status and plain text to answer.
    Text(StatusCode, String),
    /// The Kubernetes API could not be reached.
    Unreachable(kube::Error),
}

/// Checks the Service; `Err` is what to answer instead of forwarding.
pub async fn check(client: &kube::Client, namespace: &str, service: &str) -> Result<(), Refusal> {
    let Some(name) = service_name(service) else {
        return Err(Refusal::Text(
            StatusCode::BAD_REQUEST,
            format!("invalid service format: {service}"),
        ));
    };
    let api: Api<Service> = Api::namespaced(client.clone(), namespace);
    let params = ListParams::default()
        .fields(&format!("metadata.name={name}"))
        .labels(KUBERAY_SERVICE_SELECTOR);
    match api.list(&params).await {
        Err(error @ (kube::Error::HyperError(_) | kube::Error::Service(_))) => {
            tracing::warn!("listing kuberay services in {namespace}: {error}");
            Err(Refusal::Unreachable(error))
        }
        Err(error) => {
            tracing::warn!("listing kuberay services in {namespace}: {error}");
            Err(Refusal::Text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "failed to list kuberay services".into(),
            ))
        }
        Ok(list) if list.items.is_empty() => Err(Refusal::Text(
            StatusCode::NOT_FOUND,
            "kuberay service not found".into(),
        )),
        Ok(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::service_name;

    #[test]
    fn service_ids_split_like_client_go() {
        assert_eq!(service_name("head-svc"), Some("head-svc"));
        assert_eq!(service_name("head-svc:8265"), Some("head-svc"));
        assert_eq!(service_name("head-svc:dashboard"), Some("head-svc"));
        assert_eq!(service_name("http:head-svc:80"), Some("head-svc"));
        assert_eq!(service_name("https:head-svc:"), Some("head-svc"));
        assert_eq!(service_name("ftp:head-svc:80"), None);
        assert_eq!(service_name(":80"), None);
        assert_eq!(service_name(""), None);
        assert_eq!(service_name("a:b:c:d"), None);
    }
}
