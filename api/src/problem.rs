//! RFC 9457 problem details: the one error shape of the API, and every conversion of a
//! lower layer's error into it (the codes are the errors' own; the statuses are the
//! API's).

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use natter_commands::accounts::AccountError;
use natter_commands::chats::ChatsError;
use natter_domain::chat::ChatError;
use natter_domain::session::SessionError;
use natter_domain::user::UserError;
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::TokenError;

/// The body of every error response.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({"type": "about:blank", "code": "handle_taken", "title": "Conflict", "status": 409, "detail": "the handle is taken"}))]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// A stable, machine-readable code, such as `handle_taken`.
    pub code: &'static str,
    pub title: &'static str,
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// The API's one error type. 4xx errors say what was wrong with the request; 5xx errors
/// are logged once, here, and reveal nothing to the client.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    detail: Option<String>,
    retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            code,
            detail: Some(detail.into()),
            retry_after: None,
        }
    }

    pub fn bad_request(code: &'static str, detail: impl std::fmt::Display) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, detail.to_string())
    }

    pub fn unauthorized(code: &'static str, detail: impl std::fmt::Display) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code, detail.to_string())
    }

    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "no such resource")
    }

    pub fn unavailable(code: &'static str, detail: impl Into<String>, retry_after: u64) -> Self {
        Self {
            retry_after: Some(retry_after),
            ..Self::new(StatusCode::SERVICE_UNAVAILABLE, code, detail)
        }
    }

    pub fn too_many_requests(retry_after: u64) -> Self {
        Self {
            retry_after: Some(retry_after.max(1)),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "too many attempts; see Retry-After",
            )
        }
    }

    /// A failure that is not the request's: 500, unless it is a store that cannot be
    /// reached now (the read models' database, or the log), which is 503 `unavailable`
    /// with `Retry-After`, since trying again shortly is the remedy.
    pub fn internal<E: std::fmt::Display + 'static>(reason: E) -> Self {
        if let Some(store) = unreachable_store(&reason) {
            tracing::warn!(%reason, "{store} unreachable");
            return Self::unavailable(
                "unavailable",
                format!("the {store} cannot be reached now; try again shortly"),
                1,
            );
        }
        tracing::error!(%reason, "request failed");
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "internal",
            detail: None,
            retry_after: None,
        }
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn code(&self) -> &'static str {
        self.code
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let problem = Problem {
            kind: "about:blank",
            code: self.code,
            title: self.status.canonical_reason().unwrap_or("Error"),
            status: self.status.as_u16(),
            detail: self.detail,
        };
        let mut response = (
            self.status,
            [(header::CONTENT_TYPE, "application/problem+json")],
            Json(problem),
        )
            .into_response();
        if let Some(seconds) = self.retry_after
            && let Ok(value) = HeaderValue::from_str(&seconds.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }
}

impl From<TokenError> for ApiError {
    fn from(error: TokenError) -> Self {
        Self::unauthorized(error.code(), error)
    }
}

impl From<AccountError> for ApiError {
    fn from(error: AccountError) -> Self {
        use StatusCode as S;
        let (status, code) = match &error {
            AccountError::HandleTaken => (S::CONFLICT, "handle_taken"),
            AccountError::InvalidCredentials => (S::UNAUTHORIZED, "invalid_credentials"),
            AccountError::InvalidRefreshToken => (S::UNAUTHORIZED, "invalid_refresh_token"),
            AccountError::RefreshTokenReused => (S::UNAUTHORIZED, "refresh_token_reused"),
            AccountError::User(UserError::AlreadyRegistered) => (S::CONFLICT, "already_registered"),
            AccountError::User(UserError::NotFound) => (S::NOT_FOUND, "not_found"),
            AccountError::User(UserError::CannotBlockSelf) => {
                (S::UNPROCESSABLE_ENTITY, "cannot_block_self")
            }
            AccountError::User(UserError::TooManyBlocked) => {
                (S::UNPROCESSABLE_ENTITY, "too_many_blocked")
            }
            AccountError::Session(SessionError::NotFound) => (S::NOT_FOUND, "not_found"),
            AccountError::Session(SessionError::AlreadyOpen) => (S::CONFLICT, "conflict"),
            AccountError::Session(SessionError::Ended) => (S::UNAUTHORIZED, "session_ended"),
            AccountError::Session(SessionError::InvalidToken) => {
                (S::UNAUTHORIZED, "invalid_refresh_token")
            }
            AccountError::Session(SessionError::RefreshRace) => (S::CONFLICT, "refresh_race"),
            AccountError::IdempotencyKeyReused => {
                (S::UNPROCESSABLE_ENTITY, "idempotency_key_reused")
            }
            AccountError::Busy => return Self::unavailable("busy", error.to_string(), 1),
            AccountError::Conflict => (S::CONFLICT, "conflict"),
            AccountError::Interrupted(interrupted) => return (*interrupted).into(),
            AccountError::Internal(reason) => return Self::internal(reason.clone()),
        };
        Self::new(status, code, error.to_string())
    }
}

impl From<natter_commands::Interrupted> for ApiError {
    fn from(error: natter_commands::Interrupted) -> Self {
        Self::unavailable(error.code(), error.to_string(), 1)
    }
}

/// Which store `error` failed to reach, if it is a connection failure of Postgres
/// (refused, reset, timed out, pool closed) or of the log.
fn unreachable_store(error: &dyn std::any::Any) -> Option<&'static str> {
    // One failure of a query shared by several requests (`SentLookup`) reaches each.
    let shared = error
        .downcast_ref::<std::sync::Arc<sqlx::Error>>()
        .map(|error| &**error);
    if let Some(error) = shared.or_else(|| error.downcast_ref::<sqlx::Error>()) {
        return matches!(
            error,
            sqlx::Error::Io(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::WorkerCrashed
                | sqlx::Error::Protocol(_)
        )
        .then_some("database");
    }
    if let Some(error) = error.downcast_ref::<natter_eventlog::LogError>() {
        return natter_commands::Interrupted::of_log(error).map(|_| "event log");
    }
    None
}

impl From<ChatsError> for ApiError {
    fn from(error: ChatsError) -> Self {
        use StatusCode as S;
        let status = match &error {
            ChatsError::Chat(chat) => chat_status(chat),
            ChatsError::UnknownUser | ChatsError::IdempotencyKeyReused => S::UNPROCESSABLE_ENTITY,
            ChatsError::Conflict => S::CONFLICT,
            ChatsError::Prefs(natter_domain::prefs::PrefsError::TooManyPinned) => S::CONFLICT,
            ChatsError::Prefs(natter_domain::prefs::PrefsError::NoActor) => {
                S::INTERNAL_SERVER_ERROR
            }
            ChatsError::Interrupted(interrupted) => return (*interrupted).into(),
            ChatsError::Internal(reason) => return Self::internal(reason.clone()),
        };
        if status == S::INTERNAL_SERVER_ERROR {
            return Self::internal(error.to_string());
        }
        Self::new(status, error.code(), error.to_string())
    }
}

/// The status of a chat's refusal (its code is [`natter_commands::chats::chat_error_code`]).
pub(crate) fn chat_status(error: &ChatError) -> StatusCode {
    use StatusCode as S;
    match error {
        // A chat one is not in does not exist, as far as one can tell.
        ChatError::NotFound | ChatError::NotMember | ChatError::InviteInvalid => S::NOT_FOUND,
        ChatError::NotAdmin
        | ChatError::Blocked
        | ChatError::NotAuthor
        | ChatError::CannotDelete => S::FORBIDDEN,
        ChatError::AlreadyExists
        | ChatError::LastAdmin
        | ChatError::EditWindowClosed
        | ChatError::TooManyInvites
        | ChatError::MessageDeleted => S::CONFLICT,
        ChatError::CannotChatWithSelf
        | ChatError::TooManyMembers
        | ChatError::NotAGroup
        | ChatError::CannotRemoveSelf
        | ChatError::ReplyNotInChat => S::UNPROCESSABLE_ENTITY,
        ChatError::NoActor => S::INTERNAL_SERVER_ERROR,
    }
}

impl From<natter_commands::messages::MessagesError> for ApiError {
    fn from(error: natter_commands::messages::MessagesError) -> Self {
        use natter_commands::messages::MessagesError as E;
        match error {
            E::Chat(chat) => ChatsError::Chat(chat).into(),
            E::ClientIdReused | E::ClientIdAhead => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                error.code(),
                error.to_string(),
            ),
            E::Conflict => Self::new(StatusCode::CONFLICT, error.code(), error.to_string()),
            E::Interrupted(interrupted) => interrupted.into(),
            E::Internal(reason) => Self::internal(reason),
        }
    }
}

/// A known path asked with a method it does not have: a problem like every other
/// answer (axum adds the `Allow` header).
pub(crate) async fn method_not_allowed() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this resource does not take that method; see the Allow header",
    )
}
