//! What the access-control tests share: every API call a caller can make, and a test CA.

use kuberay_api::routes::ROUTES;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
};
use reqwest::Method;
use serde_json::{Value, json};

/// One API request: what it is, and what it touches.
#[derive(Debug, Clone)]
pub struct ApiCall {
    pub method: Method,
    pub path: String,
    pub body: Option<Value>,
    /// It names no namespace (a call across all of them).
    pub across_all: bool,
    /// A V2 request (refused as Kubernetes refuses), not a V1 call.
    pub v2: bool,
}

impl ApiCall {
    /// Whether it only reads.
    pub fn reads(&self) -> bool {
        self.method == Method::GET
    }
}

impl std::fmt::Display for ApiCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.method, self.path)
    }
}

/// Every V1 call and V2 verb in `ns` ([`v1_calls`], [`v2_calls`]).
pub fn every_call(ns: &str) -> Vec<ApiCall> {
    let mut calls = v1_calls(ns);
    calls.extend(v2_calls(ns));
    calls
}

impl ApiCall {
    /// Asserts that `who` was refused this call: 403 in the V1 gateway's shape (code 7) or, on
    /// V2, as Kubernetes refuses (reason `Forbidden`).
    pub fn assert_refused(&self, (status, body): &(u16, Value), who: &str) {
        assert_eq!(*status, 403, "{who}: {self}: {body}");
        if self.v2 {
            assert_eq!(body["reason"], "Forbidden", "{who}: {self}: {body}");
        } else {
            assert_eq!(body["code"], 7, "{who}: {self}: {body}");
        }
    }

    /// Asserts that `who` got past authentication and authorization (whatever the call then
    /// answered).
    pub fn assert_passed(&self, (status, body): &(u16, Value), who: &str) {
        assert!(
            *status != 401 && *status != 403,
            "{who}: {self}: {status} {body}"
        );
    }
}

/// Sends `call` to `base` (`http://host:port`) with `authorization`; its answer's status and body
/// (JSON, or the text as a JSON string). A body goes as JSON (a merge patch for PATCH).
pub async fn send(base: &str, call: &ApiCall, authorization: Option<&str>) -> (u16, Value) {
    let mut request =
        super::http_client().request(call.method.clone(), format!("{base}{}", call.path));
    if let Some(value) = authorization {
        request = request.header(reqwest::header::AUTHORIZATION, value);
    }
    if let Some(body) = &call.body {
        let content_type = if call.method == Method::PATCH {
            "application/merge-patch+json"
        } else {
            "application/json"
        };
        request = request
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body.to_string());
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// Every HTTP route of the five V1 services, in `ns` (other path parameters `x`, bodies `{}`).
pub fn v1_calls(ns: &str) -> Vec<ApiCall> {
    ROUTES
        .iter()
        .filter(|r| kuberay_apiserver::services::SERVED_SERVICES.contains(&r.service))
        .map(|route| ApiCall {
            method: Method::from_bytes(route.http_method.as_bytes()).unwrap(),
            path: route
                .pattern
                .replace("{namespace}", ns)
                .split('/')
                .map(|segment| {
                    if segment.starts_with('{') {
                        "x"
                    } else {
                        segment
                    }
                })
                .collect::<Vec<_>>()
                .join("/"),
            body: route.body.map(|_| json!({})),
            across_all: !route.pattern.contains("{namespace}"),
            v2: false,
        })
        .collect()
}

/// One V2 request per Kubernetes verb on RayClusters in `ns` (list, get, watch, create, update,
/// patch, delete, deletecollection), and a list across all namespaces.
pub fn v2_calls(ns: &str) -> Vec<ApiCall> {
    let collection = format!("/apis/ray.io/v1/namespaces/{ns}/rayclusters");
    let object = format!("{collection}/v2-x");
    let cluster = json!({
        "apiVersion": "ray.io/v1",
        "kind": "RayCluster",
        "metadata": {"name": "v2-x", "namespace": ns},
        "spec": {"headGroupSpec": {"rayStartParams": {}, "template": {"spec": {"containers": [
            {"name": "ray-head", "image": "rayproject/ray:2.46.0"}
        ]}}}}
    });
    let call = |method: Method, path: &str, body: Option<Value>| ApiCall {
        method,
        path: path.to_string(),
        body,
        across_all: false,
        v2: true,
    };
    vec![
        call(Method::GET, &collection, None),
        call(Method::GET, &object, None),
        call(
            Method::GET,
            &format!("{collection}?watch=1&timeoutSeconds=1"),
            None,
        ),
        call(Method::POST, &collection, Some(cluster.clone())),
        call(Method::PUT, &object, Some(cluster)),
        call(
            Method::PATCH,
            &object,
            Some(json!({"metadata": {"labels": {"a": "b"}}})),
        ),
        call(Method::DELETE, &object, None),
        call(Method::DELETE, &collection, None),
        ApiCall {
            across_all: true,
            ..call(Method::GET, "/apis/ray.io/v1/rayclusters", None)
        },
    ]
}

/// A test CA and what it signs.
pub struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pub pem: String,
}

impl Ca {
    pub fn new() -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "kuberay-apiserver test CA");
        let key = KeyPair::generate().unwrap();
        let pem = params.self_signed(&key).unwrap().pem();
        Self {
            issuer: Issuer::new(params, key),
            pem,
        }
    }

    /// A server certificate for `names` (and 127.0.0.1): its PEM and its key's PEM.
    pub fn sign(&self, names: &[&str]) -> (String, String) {
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

    /// A client certificate whose subject is `common_name` (none when `None`) and the
    /// organizations `groups`: its PEM and its key's PEM.
    pub fn client(&self, common_name: Option<&str>, groups: &[&str]) -> (String, String) {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        let mut subject = DistinguishedName::new();
        if let Some(name) = common_name {
            subject.push(DnType::CommonName, name);
        }
        for group in groups {
            subject.push(DnType::OrganizationName, *group);
        }
        params.distinguished_name = subject;
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    /// An HTTPS client trusting this CA, presenting `identity` (certificate and key PEM).
    pub fn https_client(&self, identity: Option<(&str, &str)>) -> reqwest::Client {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(self.pem.as_bytes()).unwrap()]);
        if let Some((cert, key)) = identity {
            builder = builder
                .identity(reqwest::Identity::from_pem(format!("{cert}{key}").as_bytes()).unwrap());
        }
        builder.build().unwrap()
    }
}

/// `http://host:port` as `https://host:port`.
pub fn https(address: &str) -> String {
    address.replace("http://", "https://")
}
