//! RFC 9457 problem details: the one error shape of the API.

use axum::Json;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// The body of every error response.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    /// A stable, machine-readable code, such as `not_found`.
    pub code: &'static str,
    pub title: &'static str,
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// The API's one error type. 4xx errors say what was wrong with the request; 5xx errors
/// are logged once here and reveal nothing to the client.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("not found")]
    NotFound,
    #[error("not ready: {0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    fn problem(&self) -> Problem {
        let (status, code, title, detail) = match self {
            Self::NotFound => (StatusCode::NOT_FOUND, "not_found", "No such resource", None),
            Self::Unavailable(reason) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "The service is not ready",
                Some(reason.clone()),
            ),
            Self::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Something went wrong on our side",
                None,
            ),
        };
        Problem {
            code,
            title,
            status: status.as_u16(),
            detail,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Self::Internal(reason) = &self {
            tracing::error!(%reason, "request failed");
        }
        let problem = self.problem();
        let status =
            StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (
            status,
            [(header::CONTENT_TYPE, "application/problem+json")],
            Json(problem),
        )
            .into_response()
    }
}

pub(crate) async fn not_found() -> ApiError {
    ApiError::NotFound
}
