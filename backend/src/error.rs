//! One error type for every request path, rendered as the JSON error of SPEC §7.
use crate::domain::Refusal;
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use sea_orm::DbErr;
use serde_json::json;

/// Everything a request can fail with, each with its HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// 400: the body or query could not be parsed.
    #[error("{0}")]
    Malformed(String),
    /// 401: no valid token or session.
    #[error("sign in first: send `Authorization: Bearer <token>`")]
    Unauthorized,
    /// 401: a signed request (Slack, EasyPost) whose signature or timestamp does not hold.
    #[error("{0}")]
    BadSignature(String),
    /// 403: the role may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// 404: no such thing, or not visible to this user.
    #[error("{0}")]
    NotFound(String),
    /// 405: the path exists but does not take this method.
    #[error("{0}")]
    MethodNotAllowed(String),
    /// 409: the RMA changed since it was read.
    #[error("{0}")]
    VersionConflict(String),
    /// 409: the transition is not in the table from the current status, or a unit is already taken.
    #[error("{0}")]
    Conflict(String),
    /// 413: the body is larger than the limit.
    #[error("the request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    /// 415: an upload of a type that is not accepted.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 429: too many failed sign-ins.
    #[error("{0}")]
    TooManyRequests(String),
    /// 422: fields missing or invalid, or a policy breach.
    #[error("{message}")]
    Unprocessable { code: &'static str, message: String },
    /// 503: the database is unavailable (locked, read-only or full); nothing was written.
    #[error("{0}")]
    Unavailable(String),
    /// 500: a bug or an unexpected failure; details go to the log only.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl AppError {
    /// A refusal the user can act on (403, 409, 422), as opposed to a fault of the system.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            AppError::Forbidden(_)
                | AppError::Conflict(_)
                | AppError::VersionConflict(_)
                | AppError::Unprocessable { .. }
        )
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        AppError::Unprocessable {
            code: "invalid_field",
            message: message.into(),
        }
    }

    pub fn not_found(what: impl Into<String>) -> Self {
        AppError::NotFound(what.into())
    }

    pub fn status(&self) -> StatusCode {
        match self {
            AppError::Malformed(_) => StatusCode::BAD_REQUEST,
            AppError::Unauthorized | AppError::BadSignature(_) => StatusCode::UNAUTHORIZED,
            AppError::Forbidden(_) => StatusCode::FORBIDDEN,
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            AppError::VersionConflict(_) | AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            AppError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            AppError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The machine-readable `code` of the error body.
    pub fn code(&self) -> &'static str {
        match self {
            AppError::Malformed(_) => "malformed",
            AppError::Unauthorized => "unauthorized",
            AppError::BadSignature(_) => "bad_signature",
            AppError::Forbidden(_) => "forbidden",
            AppError::NotFound(_) => "not_found",
            AppError::MethodNotAllowed(_) => "method_not_allowed",
            AppError::VersionConflict(_) => "version_conflict",
            AppError::Conflict(_) => "conflict",
            AppError::PayloadTooLarge(_) => "payload_too_large",
            AppError::Unprocessable { code, .. } => code,
            AppError::TooManyRequests(_) => "too_many_requests",
            AppError::UnsupportedMediaType(_) => "unsupported_media_type",
            AppError::Unavailable(_) => "unavailable",
            AppError::Internal(_) => "internal",
        }
    }
}

impl AppError {
    /// The error for an answer that something other than depot's handlers gave (the router, an
    /// extractor of axum's own): the variant of its status, with its text as the message.
    pub fn from_status(status: StatusCode, message: String) -> AppError {
        match status.as_u16() {
            401 => AppError::Unauthorized,
            403 => AppError::Forbidden(message),
            404 => AppError::NotFound(message),
            405 => AppError::MethodNotAllowed(message),
            409 => AppError::Conflict(message),
            413 => AppError::PayloadTooLarge(crate::web::extract::JSON_LIMIT),
            415 => AppError::UnsupportedMediaType(message),
            422 => AppError::invalid(message),
            429 => AppError::TooManyRequests(message),
            503 => AppError::Unavailable(message),
            400..=499 => AppError::Malformed(message),
            _ => AppError::Internal(anyhow::anyhow!("{status}: {message}")),
        }
    }
}

impl From<Refusal> for AppError {
    fn from(refusal: Refusal) -> Self {
        let message = refusal.to_string();
        match refusal {
            Refusal::NotAllowed { .. } | Refusal::DoesNotApply(_) => AppError::Conflict(message),
            Refusal::Stale(_) => AppError::VersionConflict(message),
            Refusal::RoleMayNot { .. } | Refusal::Forbidden(_) => AppError::Forbidden(message),
            Refusal::MissingFields(_) => AppError::Unprocessable {
                code: "missing_field",
                message,
            },
            Refusal::Invalid(_) => AppError::Unprocessable {
                code: "invalid_field",
                message,
            },
        }
    }
}

impl From<DbErr> for AppError {
    /// The one place where database failures are translated: constraint violations become
    /// conflicts or invalid input, an unavailable database becomes 503, the rest is a bug.
    fn from(err: DbErr) -> Self {
        use sea_orm::SqlErr;
        // The SQLite writer's errors carry SQLite's code in their text (`db::constraint`).
        match err.sql_err().or_else(|| crate::db::constraint(&err)) {
            Some(SqlErr::UniqueConstraintViolation(detail)) => {
                return AppError::Conflict(format!("already exists: {detail}"));
            }
            Some(SqlErr::ForeignKeyConstraintViolation(detail)) => {
                return AppError::invalid(format!("refers to something that does not exist: {detail}"));
            }
            _ => {}
        }
        let text = err.to_string().to_lowercase();
        let unavailable = [
            "database is locked",
            "readonly database",
            "unable to open database file",
            "disk i/o error",
            // PostgreSQL picked this transaction to undo; the same request again will go through.
            "deadlock detected",
            "could not serialize access",
            "read-only",
            "disk is full",
            "database or disk is full",
            "pool timed out",
            "connection refused",
            "no space left",
            // PostgreSQL ended the session (restart, failover, an administrator) or is not
            // accepting sessions yet; the socket itself failed. The pool replaces the connection.
            "terminating connection",
            "the database system is",
            "error communicating with database",
        ];
        if unavailable.iter().any(|needle| text.contains(needle)) {
            tracing::error!(error = %err, "database unavailable");
            return AppError::Unavailable(
                "the database is unavailable right now; nothing was changed, try again".into(),
            );
        }
        AppError::Internal(err.into())
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = match &self {
            AppError::Internal(err) => {
                tracing::error!(error = ?err, "internal error");
                "something went wrong on our side; it has been logged".to_string()
            }
            other => other.to_string(),
        };
        let body = Json(json!({ "error": { "code": self.code(), "message": message } }));
        (status, body).into_response()
    }
}

/// Shorthand for handler and service results.
pub type AppResult<T> = Result<T, AppError>;
