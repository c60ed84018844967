use thiserror::Error;

#[derive(Debug, Error)]
pub enum AuthError {
    /// Wrong password, unknown user or a failed proof: deliberately one error, so a caller
    /// cannot tell which user names exist.
    #[error("authentication of user '{user}' failed: unknown user or wrong password")]
    BadCredentials { user: String },
    #[error("malformed authentication message: {0}")]
    Malformed(String),
    #[error("[auth] config: {0}")]
    Config(String),
}
