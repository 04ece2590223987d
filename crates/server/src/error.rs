//! The service layer's error: a gRPC code and a message layered the way the Go server layers it.
//!
//! The Go server distinguishes *user errors* (a code, an external message shown first, and an
//! internal chain of wrap texts) from *plain errors* (code UNKNOWN, just a text). Clients read the
//! resulting `message`, so we reproduce its composition exactly:
//! `external + ": " + chain` for user errors, the chain alone for plain ones. The error is mapped
//! once to a `tonic::Status` and once to the HTTP error body of the gateway.

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use tonic::Code;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    code: Code,
    /// The external message of a user error; `None` for plain errors.
    external: Option<String>,
    /// The internal chain (user errors) or the whole text (plain errors).
    chain: String,
}

impl ApiError {
    /// A request that fails validation (INVALID_ARGUMENT).
    pub fn invalid_input(message: impl Into<String>) -> Self {
        let message = message.into();
        Self::user(
            Code::InvalidArgument,
            &message,
            format!("Invalid input error: {message}"),
        )
    }

    /// Invalid input found while building an object, with the underlying cause.
    pub fn invalid_input_with_details(cause: impl std::fmt::Display, message: &str) -> Self {
        Self::user(
            Code::InvalidArgument,
            message,
            format!("InvalidInputError: {message}: {cause}"),
        )
    }

    /// A missing object (NOT_FOUND).
    pub fn not_found(cause: impl std::fmt::Display, message: &str) -> Self {
        Self::user(
            Code::NotFound,
            message,
            format!("NotFoundError: {message}: {cause}"),
        )
    }

    /// An object that exists already (ALREADY_EXISTS).
    pub fn already_exists(message: &str) -> Self {
        Self::user(
            Code::AlreadyExists,
            message,
            format!("Already exist error: {message}"),
        )
    }

    /// A request that cannot be served in the current state of the cluster (FAILED_PRECONDITION).
    pub fn failed_precondition(message: &str, chain: String) -> Self {
        Self::user(Code::FailedPrecondition, message, chain)
    }

    /// A server-side failure (INTERNAL); the external text is `Internal Server Error`.
    pub fn internal(cause: impl std::fmt::Display, message: &str) -> Self {
        Self::user(
            Code::Internal,
            "Internal Server Error",
            format!("InternalServerError: {message}: {cause}"),
        )
    }

    /// A plain error: code UNKNOWN, the text as the whole message.
    pub fn plain(text: impl Into<String>) -> Self {
        Self {
            code: Code::Unknown,
            external: None,
            chain: text.into(),
        }
    }

    /// An error with an explicit code and message and no layering (our own additions).
    pub fn with_code(code: Code, message: impl Into<String>) -> Self {
        Self {
            code,
            external: None,
            chain: message.into(),
        }
    }

    /// Prefixes the chain with a context text, keeping the code and the external message.
    pub fn wrap(mut self, context: &str) -> Self {
        self.chain = format!("{context}: {}", self.chain);
        self
    }

    pub fn code(&self) -> Code {
        self.code
    }

    /// The text clients see.
    pub fn message(&self) -> String {
        match &self.external {
            Some(external) => format!("{external}: {}", self.chain),
            None => self.chain.clone(),
        }
    }

    /// The error of a failed Kubernetes call: `build` words it as the RPC does, from the client
    /// error's text; the code then says whose fault it was where that does not depend on the
    /// RPC ([`kube_code`]), so that clients know whether to fix the request or retry.
    pub fn from_kube(error: &kube::Error, build: impl FnOnce(String) -> ApiError) -> Self {
        let mut built = build(kube_text(error));
        if let Some(code) = kube_code(error) {
            built.code = code;
        }
        built
    }

    fn user(code: Code, external: &str, chain: String) -> Self {
        Self {
            code,
            external: Some(external.to_string()),
            chain,
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message())
    }
}

impl std::error::Error for ApiError {}

/// Longest message sent to a client. Messages repeat parts of the request (names, values, the
/// Kubernetes API server's texts); a longer one is cut, so no input makes an answer or a
/// `grpc-message` header grow with it.
pub const MAX_MESSAGE_BYTES: usize = 4096;

/// `message` cut to at most [`MAX_MESSAGE_BYTES`] at a character boundary, saying so.
fn bounded(mut message: String) -> String {
    if message.len() > MAX_MESSAGE_BYTES {
        let note = format!("... (message cut, {} bytes)", message.len());
        let mut end = MAX_MESSAGE_BYTES - note.len();
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
        message.push_str(&note);
    }
    message
}

impl From<ApiError> for tonic::Status {
    fn from(error: ApiError) -> Self {
        tonic::Status::new(error.code, bounded(error.message()))
    }
}

/// The HTTP status grpc-gateway uses for each gRPC code.
pub fn http_status(code: Code) -> StatusCode {
    match code {
        Code::Ok => StatusCode::OK,
        Code::Cancelled => StatusCode::from_u16(499).expect("499 is a valid status"),
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => {
            StatusCode::BAD_REQUEST
        }
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::Unknown | Code::Internal | Code::DataLoss => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The gateway's error body: the JSON form of `google.rpc.Status` without `details`.
pub fn error_body(code: Code, message: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({ "code": code as i32, "message": message }))
        .expect("a JSON object always serialises")
}

/// An HTTP error response in the gateway's shape with an explicit HTTP status.
pub fn error_response(status: StatusCode, code: Code, message: &str) -> Response {
    let mut response = (status, error_body(code, message)).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if code == Code::Unauthenticated
        && let Ok(value) = HeaderValue::from_str(message)
    {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
    response
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        error_response(http_status(self.code), self.code, &bounded(self.message()))
    }
}

/// The text of a Kubernetes client error as the Go client prints it: the API server's message
/// for API errors, the error itself otherwise.
pub fn kube_text(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) => status.message.clone(),
        other => other.to_string(),
    }
}

/// The code of a Kubernetes failure that is the same whatever the RPC: the API server refused
/// the request as invalid (400, 410 for an expired continue token, 413 for an object too large
/// to store, 422) → INVALID_ARGUMENT; it
/// could not be reached, was overloaded or failed (429, 5xx, transport errors) → UNAVAILABLE, so
/// clients retry; it timed out (504) → DEADLINE_EXCEEDED. `None` leaves the RPC's own code (for
/// 404, 409 and what the server itself got wrong, such as a response it cannot read).
pub fn kube_code(error: &kube::Error) -> Option<Code> {
    match error {
        kube::Error::Api(status) => match status.code {
            400 | 410 | 413 | 422 => Some(Code::InvalidArgument),
            504 => Some(Code::DeadlineExceeded),
            429 | 500..=599 => Some(Code::Unavailable),
            _ => None,
        },
        kube::Error::HyperError(_) | kube::Error::Service(_) | kube::Error::ReadEvents(_) => {
            Some(Code::Unavailable)
        }
        // Names are checked first, so only a client's value (a 3 MB continue token) can make a
        // request that cannot be built.
        kube::Error::BuildRequest(_) => Some(Code::InvalidArgument),
        _ => None,
    }
}

/// Whether a Kubernetes client error is a 404 from the API server.
pub fn is_not_found(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 404)
}

/// Whether a Kubernetes client error is a 409 Conflict (stale resourceVersion) from the API server.
pub fn is_conflict(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 409 && status.reason == "Conflict")
}

/// Whether a Kubernetes client error is a 409 AlreadyExists from the API server.
pub fn is_already_exists(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 409 && status.reason == "AlreadyExists")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_layered_like_the_go_server() {
        let e = ApiError::invalid_input("Cluster name is empty. Please specify a valid value.");
        assert_eq!(
            e.message(),
            "Cluster name is empty. Please specify a valid value.: Invalid input error: Cluster name is empty. Please specify a valid value."
        );
        let e = ApiError::invalid_input("E").wrap("W");
        assert_eq!(e.message(), "E: W: Invalid input error: E");
        assert_eq!(e.code(), Code::InvalidArgument);

        let e = ApiError::not_found("configmaps \"t\" not found", "Compute template t not found")
            .wrap("Get compute template failed.");
        assert_eq!(
            e.message(),
            "Compute template t not found: Get compute template failed.: NotFoundError: Compute template t not found: configmaps \"t\" not found"
        );

        let e = ApiError::internal("boom", "Failed to create a compute runtime for (ns/t)")
            .wrap("Create compute template failed.");
        assert_eq!(
            e.message(),
            "Internal Server Error: Create compute template failed.: InternalServerError: Failed to create a compute runtime for (ns/t): boom"
        );
        assert_eq!(e.code(), Code::Internal);

        let e = ApiError::plain("List compute templates failed: x")
            .wrap("List compute templates in namespace ns failed.");
        assert_eq!(
            e.message(),
            "List compute templates in namespace ns failed.: List compute templates failed: x"
        );
        assert_eq!(e.code(), Code::Unknown);
    }

    #[test]
    fn http_status_table_is_grpc_gateways() {
        let table = [
            (Code::Ok, 200),
            (Code::Cancelled, 499),
            (Code::Unknown, 500),
            (Code::InvalidArgument, 400),
            (Code::DeadlineExceeded, 504),
            (Code::NotFound, 404),
            (Code::AlreadyExists, 409),
            (Code::PermissionDenied, 403),
            (Code::ResourceExhausted, 429),
            (Code::FailedPrecondition, 400),
            (Code::Aborted, 409),
            (Code::OutOfRange, 400),
            (Code::Unimplemented, 501),
            (Code::Internal, 500),
            (Code::Unavailable, 503),
            (Code::DataLoss, 500),
            (Code::Unauthenticated, 401),
        ];
        for (code, status) in table {
            assert_eq!(http_status(code).as_u16(), status, "{code:?}");
        }
    }

    #[test]
    fn long_messages_are_cut_to_the_limit() {
        let status = tonic::Status::from(ApiError::plain("é".repeat(5000)));
        assert!(status.message().len() <= MAX_MESSAGE_BYTES);
        assert!(status.message().ends_with("... (message cut, 10000 bytes)"));
        assert_eq!(bounded("short".into()), "short");
    }

    #[test]
    fn error_body_has_code_and_message_only() {
        assert_eq!(
            error_body(Code::NotFound, "Not Found"),
            br#"{"code":5,"message":"Not Found"}"#
        );
    }
}
