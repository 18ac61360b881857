//! The API's one error type. Every failure becomes an RFC 9457
//! `application/problem+json` response; 5xx bodies stay generic and the cause is
//! logged once, here.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use hosting_api::{Problem, PROBLEM_JSON};

use crate::actions::ActionError;
use crate::blobs::BlobError;
use crate::domain::quota::QuotaExceeded;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("missing or invalid API token")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    Unprocessable(String),
    #[error("{0}")]
    TooManyRequests(String),
    #[error("{0}")]
    ServiceUnavailable(String),
    /// A per-user quota refused the request: 403 `/problems/quota-exceeded` with the
    /// extension members `quota`, `limit` and `used`.
    #[error("{0}")]
    QuotaExceeded(QuotaExceeded),
    /// A failure of ours: the body stays generic, the cause and its chain are logged.
    #[error("internal error: {context}")]
    Internal {
        context: String,
        #[source]
        source: Option<BoxError>,
    },
}

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::ServiceUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::QuotaExceeded(_) => StatusCode::FORBIDDEN,
            ApiError::Internal { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The problem type: a stable, documented slug per class.
    fn slug(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "bad-request",
            ApiError::Unauthorized => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not-found",
            ApiError::Conflict(_) => "conflict",
            ApiError::PayloadTooLarge(_) => "payload-too-large",
            ApiError::UnsupportedMediaType(_) => "unsupported-media-type",
            ApiError::Unprocessable(_) => "unprocessable",
            ApiError::TooManyRequests(_) => "too-many-requests",
            ApiError::ServiceUnavailable(_) => "service-unavailable",
            ApiError::QuotaExceeded(_) => "quota-exceeded",
            ApiError::Internal { .. } => "internal",
        }
    }

    pub fn not_found(what: impl std::fmt::Display) -> ApiError {
        ApiError::NotFound(format!("{what} not found"))
    }

    /// A failure of ours, caused by `source`.
    pub fn internal(context: impl Into<String>, source: impl Into<BoxError>) -> ApiError {
        ApiError::Internal {
            context: context.into(),
            source: Some(source.into()),
        }
    }

    /// A state our own code should never reach (no underlying error to keep).
    pub fn bug(context: impl Into<String>) -> ApiError {
        ApiError::Internal {
            context: context.into(),
            source: None,
        }
    }

    /// Logs a failure of ours or of a backing service, with its chain of causes: the
    /// one place they are logged, whichever way (problem+json or a dashboard page) the
    /// error is answered. Client errors are not logged.
    pub fn log(&self) {
        match self {
            ApiError::Internal { .. } => {
                tracing::error!(error = %chain(self), "request failed");
            }
            ApiError::ServiceUnavailable(cause) => {
                tracing::warn!(error = %cause, "dependency unavailable");
            }
            _ => {}
        }
    }
}

/// `error: cause: cause of the cause...`, for the log.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Renders any status and detail as a problem document.
pub fn problem_response(status: StatusCode, kind: &str, detail: Option<String>) -> Response {
    let problem = Problem {
        kind: format!("/problems/{kind}"),
        title: status.canonical_reason().unwrap_or("Error").to_owned(),
        status: status.as_u16(),
        detail,
        instance: None,
    };
    problem_json(status, &problem)
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::QuotaExceeded(exceeded) = self {
            return quota_problem(&exceeded);
        }
        self.log();
        let status = self.status();
        let detail = match &self {
            ApiError::Internal { .. } => {
                Some("the server failed to handle this request; it has been logged".to_owned())
            }
            ApiError::ServiceUnavailable(_) => {
                Some("a backing service is unavailable; retry shortly".to_owned())
            }
            ApiError::Unauthorized => {
                Some("send `Authorization: Bearer <token>` with a valid API token".to_owned())
            }
            other => Some(other.to_string()),
        };
        let mut response = problem_response(status, self.slug(), detail);
        if matches!(self, ApiError::Unauthorized) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if matches!(self, ApiError::ServiceUnavailable(_)) {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        response
    }
}

/// A problem document (with any extension members) as an uncacheable
/// `application/problem+json` response.
fn problem_json(status: StatusCode, problem: &impl serde::Serialize) -> Response {
    let body = serde_json::to_vec(problem).unwrap_or_default();
    let mut response = (status, body).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The quota problem: the RFC 9457 members plus `quota`, `limit` and `used`, so clients
/// can tell which limit was hit without parsing the detail.
fn quota_problem(exceeded: &QuotaExceeded) -> Response {
    let status = StatusCode::FORBIDDEN;
    let problem = hosting_api::QuotaProblem {
        problem: Problem {
            kind: "/problems/quota-exceeded".into(),
            title: "Quota exceeded".into(),
            status: status.as_u16(),
            detail: Some(exceeded.to_string()),
            instance: None,
        },
        quota: exceeded.kind,
        limit: exceeded.limit,
        used: exceeded.used,
    };
    problem_json(status, &problem)
}

impl From<QuotaExceeded> for ApiError {
    fn from(e: QuotaExceeded) -> ApiError {
        ApiError::QuotaExceeded(e)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::QuotaExceeded(exceeded) => ApiError::QuotaExceeded(exceeded),
            StoreError::Conflict(what) => ApiError::Conflict(format!("{what} already exists")),
            StoreError::Gone(what) => {
                ApiError::Conflict(format!("{what} no longer exists (deleted meanwhile)"))
            }
            StoreError::Unavailable(cause) => ApiError::ServiceUnavailable(cause.to_string()),
            other => ApiError::internal("the store failed", other),
        }
    }
}

impl From<BlobError> for ApiError {
    fn from(e: BlobError) -> ApiError {
        match e {
            BlobError::DigestMismatch { .. } => ApiError::Unprocessable(e.to_string()),
            BlobError::TooLarge { .. } => ApiError::PayloadTooLarge(e.to_string()),
            BlobError::Io(_) => ApiError::internal("blob storage", e),
            BlobError::Unavailable(cause) => {
                ApiError::ServiceUnavailable(format!("blob storage: {cause}"))
            }
        }
    }
}

impl From<ActionError> for ApiError {
    fn from(e: ActionError) -> ApiError {
        match e {
            ActionError::NotFound(_) => ApiError::NotFound(e.to_string()),
            ActionError::Invalid(message) => ApiError::Unprocessable(message),
            ActionError::OtherSite { .. } => ApiError::Unprocessable(e.to_string()),
            ActionError::Malformed(message) => ApiError::BadRequest(message),
            ActionError::TooLarge(message) => ApiError::PayloadTooLarge(message),
            ActionError::Conflict(message) => ApiError::Conflict(message),
            // The authenticated user vanished meanwhile: as if the token were invalid.
            ActionError::UnknownUser => ApiError::Unauthorized,
            ActionError::Quota(exceeded) => ApiError::QuotaExceeded(exceeded),
            ActionError::Store(e) => e.into(),
            ActionError::Blob(e) => e.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    #[test]
    fn an_internal_error_keeps_its_cause_and_logs_the_whole_chain() {
        let io = std::io::Error::other("disk full");
        let error = ApiError::from(BlobError::Io(io));
        assert_eq!(error.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let source = error
            .source()
            .expect("the blob error is kept as the source");
        assert!(source.downcast_ref::<BlobError>().is_some());
        // BlobError's own message repeats its io::Error, which is also its source.
        assert_eq!(
            chain(&error),
            "internal error: blob storage: blob storage failed: disk full: disk full"
        );
    }

    #[test]
    fn action_errors_keep_their_status_and_message() {
        let cases = [
            (
                ActionError::not_found("site \"blog\""),
                StatusCode::NOT_FOUND,
                "site \"blog\" not found",
            ),
            (
                ActionError::OtherSite {
                    deploy: "d1".into(),
                },
                StatusCode::UNPROCESSABLE_ENTITY,
                "deploy d1 belongs to another site",
            ),
            (
                ActionError::Malformed("bad".into()),
                StatusCode::BAD_REQUEST,
                "bad",
            ),
            (
                ActionError::TooLarge("big".into()),
                StatusCode::PAYLOAD_TOO_LARGE,
                "big",
            ),
            (
                ActionError::Store(StoreError::Conflict("site")),
                StatusCode::CONFLICT,
                "site already exists",
            ),
        ];
        for (action, status, message) in cases {
            let error = ApiError::from(action);
            assert_eq!(error.status(), status);
            assert_eq!(error.to_string(), message);
        }
        let gone = ApiError::from(ActionError::UnknownUser);
        assert_eq!(gone.status(), StatusCode::UNAUTHORIZED);
    }
}
