//! The one error type of the domain layer.

/// What can go wrong in validation or conversion.
///
/// The service layer decides how each variant travels (gRPC code, message layering); the
/// variants carry the user-facing text only.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CoreError {
    /// The request is invalid; the text is shown to the user as is.
    #[error("{0}")]
    InvalidInput(String),
    /// Stored data cannot be converted (for example an object not written by this server).
    #[error("{0}")]
    InvalidData(String),
}
