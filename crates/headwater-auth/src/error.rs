use thiserror::Error;

/// Why a sign-in or the `[auth]` config was refused.
#[derive(Debug, Error)]
pub enum AuthError {
    /// Wrong password, unknown user or a failed proof: deliberately one error, so a caller
    /// cannot tell which user names exist.
    #[error("authentication of user '{user}' failed: unknown user or wrong password")]
    BadCredentials {
        /// The user name the caller gave.
        user: String,
    },
    /// A SASL message that does not follow its mechanism's format; what is wrong.
    #[error("malformed authentication message: {0}")]
    Malformed(String),
    /// An `[auth]` config that cannot be used; what to change.
    #[error("[auth] config: {0}")]
    Config(String),
}
