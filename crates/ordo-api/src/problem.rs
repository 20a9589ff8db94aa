//! Errors as `application/problem+json` (RFC 9457), each with a stable `code` from one
//! catalogue, so clients branch on the code and people read the detail.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// The catalogue of error codes the API answers with. Stable: clients depend on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Code {
    /// No credentials, or credentials that are unknown, expired or revoked.
    Unauthenticated,
    /// Authenticated, but the role lacks the route's permission.
    Forbidden,
    /// A session-authenticated change without the session's `X-CSRF-Token`.
    CsrfFailed,
    /// Too many failed logins for this user lately; `Retry-After` says when to try again.
    TooManyRequests,
    NotFound,
    /// The body is not valid JSON of the expected shape; `errors` says where.
    InvalidBody,
    /// A query parameter is malformed.
    InvalidParameter,
    /// The command was understood and refused by a business rule; nothing changed.
    Rejected,
    /// The idempotency key was used before with a different request.
    IdempotencyKeyReused,
    /// A request with the same idempotency key is still being processed.
    IdempotencyKeyInFlight,
    PayloadTooLarge,
    /// The store refused or failed the commit; nothing changed.
    Unavailable,
}

impl Code {
    pub const ALL: [Code; 12] = [
        Code::Unauthenticated,
        Code::Forbidden,
        Code::CsrfFailed,
        Code::TooManyRequests,
        Code::NotFound,
        Code::InvalidBody,
        Code::InvalidParameter,
        Code::Rejected,
        Code::IdempotencyKeyReused,
        Code::IdempotencyKeyInFlight,
        Code::PayloadTooLarge,
        Code::Unavailable,
    ];

    pub fn status(self) -> StatusCode {
        match self {
            Code::Unauthenticated => StatusCode::UNAUTHORIZED,
            Code::Forbidden | Code::CsrfFailed => StatusCode::FORBIDDEN,
            Code::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            Code::NotFound => StatusCode::NOT_FOUND,
            Code::InvalidBody | Code::InvalidParameter => StatusCode::BAD_REQUEST,
            Code::Rejected | Code::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            Code::IdempotencyKeyInFlight => StatusCode::CONFLICT,
            Code::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Code::Unauthenticated => "unauthenticated",
            Code::Forbidden => "forbidden",
            Code::CsrfFailed => "csrf_failed",
            Code::TooManyRequests => "too_many_requests",
            Code::NotFound => "not_found",
            Code::InvalidBody => "invalid_body",
            Code::InvalidParameter => "invalid_parameter",
            Code::Rejected => "rejected",
            Code::IdempotencyKeyReused => "idempotency_key_reused",
            Code::IdempotencyKeyInFlight => "idempotency_key_in_flight",
            Code::PayloadTooLarge => "payload_too_large",
            Code::Unavailable => "unavailable",
        }
    }
}

/// Where in the input a problem is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// A field name or JSON path, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<usize>,
    pub message: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: &'static str,
    pub status: u16,
    pub code: Code,
    pub detail: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

impl Problem {
    pub fn new(code: Code, detail: impl Into<String>) -> Self {
        let title = match code {
            Code::Unauthenticated => "Authentication required",
            Code::Forbidden => "Not allowed for this role",
            Code::CsrfFailed => "CSRF token missing or wrong",
            Code::TooManyRequests => "Too many attempts",
            Code::NotFound => "Not found",
            Code::InvalidBody => "Invalid request body",
            Code::InvalidParameter => "Invalid parameter",
            Code::Rejected => "Refused by a business rule",
            Code::IdempotencyKeyReused => "Idempotency key reused",
            Code::IdempotencyKeyInFlight => "Request with this idempotency key in progress",
            Code::PayloadTooLarge => "Payload too large",
            Code::Unavailable => "Service unavailable",
        };
        Self {
            kind: format!("https://ordo.dev/problems/{}", code.as_str()),
            title,
            status: code.status().as_u16(),
            code,
            detail: detail.into(),
            errors: Vec::new(),
        }
    }

    /// A JSON body that did not parse: the field's path (`lines[0].quantity`), serde's message,
    /// and where in the body it went wrong.
    pub fn invalid_json(e: &serde_path_to_error::Error<serde_json::Error>) -> Self {
        let inner = e.inner();
        let path = e.path().to_string();
        let field = (path != ".").then_some(path);
        let message = inner.to_string();
        let detail = match &field {
            Some(f) => format!("the body is not a valid request: {f}: {message}"),
            None => format!("the body is not a valid request: {message}"),
        };
        let mut p = Self::new(Code::InvalidBody, detail);
        // A body re-read from a JSON value has no position (line 0).
        let (line, column) = if inner.line() > 0 { (Some(inner.line()), Some(inner.column())) } else { (None, None) };
        p.errors.push(FieldError { field, line, column, message });
        p
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = self.code.status();
        let mut response = (status, axum::Json(&self)).into_response();
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if self.code == Code::Unauthenticated {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}
