//! The one shape of every error answer: `{"error_code": N, "message": "...", "error": "..."}`.
//!
//! `error_code` and `message` are what the Confluent Schema Registry answers, so its clients
//! and serializers read refusals from any route; `error` carries the same text for Headwater's
//! own clients and scripts, which have always read that key. `error_code` is the registry's
//! five-digit code on registry routes and the HTTP status elsewhere.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An error answer: the status, its code and what to do about it.
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    status: StatusCode,
    code: u32,
    message: String,
    content_type: &'static str,
}

impl ApiError {
    /// An error with `status`, whose code is the status itself.
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code: u32::from(status.as_u16()),
            message: message.into(),
            content_type: "application/json",
        }
    }

    /// An error with a code of its own (the registry's `40401` and the like).
    pub(crate) fn with_code(mut self, code: u32) -> ApiError {
        self.code = code;
        self
    }

    /// Sent with another content type (the registry's `application/vnd.schemaregistry.v1+json`).
    pub(crate) fn with_content_type(mut self, content_type: &'static str) -> ApiError {
        self.content_type = content_type;
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({
            "error_code": self.code,
            "message": self.message,
            "error": self.message,
        });
        (
            self.status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(self.content_type),
            )],
            body.to_string(),
        )
            .into_response()
    }
}

/// The answer with `status` and `message` (the common case).
pub(crate) fn error(status: StatusCode, message: impl Into<String>) -> Response {
    ApiError::new(status, message).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_has_code_message_and_error() {
        let r = ApiError::new(StatusCode::NOT_FOUND, "no such view")
            .with_code(40401)
            .into_response();
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        assert_eq!(
            r.headers().get(header::CONTENT_TYPE).map(|v| v.as_bytes()),
            Some(&b"application/json"[..])
        );
    }
}
