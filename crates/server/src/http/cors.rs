//! CORS for the API routes, with the behaviour of the Go server's CORS handler: one allowed origin
//! (`*` for any, or a pattern with one `*`), methods GET/POST/PUT/PATCH/DELETE/OPTIONS, the simple
//! request headers (and `Authorization` when calls must present a token), preflights answered 204
//! without reaching the API.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};

const ALLOWED_METHODS: [&str; 6] = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];
const ALLOWED_HEADERS: [&str; 4] = ["origin", "accept", "content-type", "x-requested-with"];

/// The allowed origin, as configured by `--cors-allow-origin`.
#[derive(Clone, Debug)]
pub enum AllowedOrigin {
    Any,
    Exact(String),
    Wildcard { prefix: String, suffix: String },
}

impl AllowedOrigin {
    pub fn parse(value: &str) -> Self {
        let value = value.to_ascii_lowercase();
        if value == "*" {
            return AllowedOrigin::Any;
        }
        match value.split_once('*') {
            Some((prefix, suffix)) => AllowedOrigin::Wildcard {
                prefix: prefix.to_string(),
                suffix: suffix.to_string(),
            },
            None => AllowedOrigin::Exact(value),
        }
    }

    fn allows(&self, origin: &str) -> bool {
        let origin = origin.to_ascii_lowercase();
        match self {
            AllowedOrigin::Any => true,
            AllowedOrigin::Exact(allowed) => *allowed == origin,
            AllowedOrigin::Wildcard { prefix, suffix } => {
                origin.len() >= prefix.len() + suffix.len()
                    && origin.starts_with(prefix.as_str())
                    && origin.ends_with(suffix.as_str())
            }
        }
    }

    fn allow_origin_value(&self, origin: &str) -> HeaderValue {
        match self {
            AllowedOrigin::Any => HeaderValue::from_static("*"),
            _ => HeaderValue::from_str(origin).unwrap_or_else(|_| HeaderValue::from_static("null")),
        }
    }
}

/// `with_authorization`: calls must present a token, so browsers may send `Authorization`.
pub async fn cors(
    State((allowed, with_authorization)): State<(AllowedOrigin, bool)>,
    request: Request,
    next: Next,
) -> Response {
    let origin = header_text(request.headers(), header::ORIGIN);
    let requested_method = header_text(request.headers(), header::ACCESS_CONTROL_REQUEST_METHOD);

    if request.method() == Method::OPTIONS && requested_method.is_some() {
        let mut response = StatusCode::NO_CONTENT.into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::VARY,
            HeaderValue::from_static(
                "Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
            ),
        );
        let method = requested_method.unwrap_or_default().to_ascii_uppercase();
        let requested_headers =
            header_text(request.headers(), header::ACCESS_CONTROL_REQUEST_HEADERS);
        let headers_ok = requested_headers.as_deref().is_none_or(|list| {
            list.split(',')
                .map(|h| h.trim().to_ascii_lowercase())
                .filter(|h| !h.is_empty())
                .all(|h| {
                    ALLOWED_HEADERS.contains(&h.as_str())
                        || (with_authorization && h == "authorization")
                })
        });
        if let Some(origin) = origin.filter(|o| allowed.allows(o))
            && ALLOWED_METHODS.contains(&method.as_str())
            && headers_ok
        {
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_ORIGIN,
                allowed.allow_origin_value(&origin),
            );
            if let Ok(value) = HeaderValue::from_str(&method) {
                headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, value);
            }
            if let Some(list) = requested_headers.filter(|l| !l.trim().is_empty())
                && let Ok(value) = HeaderValue::from_str(&list)
            {
                headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, value);
            }
        }
        return response;
    }

    let method_ok = ALLOWED_METHODS.contains(&request.method().as_str());
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.append(header::VARY, HeaderValue::from_static("Origin"));
    if let Some(origin) = origin.filter(|o| method_ok && allowed.allows(o)) {
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            allowed.allow_origin_value(&origin),
        );
    }
    response
}

fn header_text(headers: &HeaderMap, name: header::HeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_match_case_insensitively_and_by_pattern() {
        let exact = AllowedOrigin::parse("https://UI.example.com");
        assert!(exact.allows("https://ui.example.com"));
        assert!(!exact.allows("https://other.example.com"));
        let pattern = AllowedOrigin::parse("https://*.example.com");
        assert!(pattern.allows("https://ui.example.com"));
        assert!(!pattern.allows("https://example.org"));
        assert!(AllowedOrigin::parse("*").allows("http://anything"));
        // One origin, not a list.
        assert!(!AllowedOrigin::parse("https://a.com,https://b.com").allows("https://a.com"));
    }
}
