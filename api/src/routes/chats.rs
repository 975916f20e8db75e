//! Chats: direct chats, groups, membership and roles.

use axum::extract::State;
use axum::http::StatusCode;
use natter_commands::chats::{ChatOutcome, ChatsError};
use natter_domain::chat::{ChatCommand, ChatError, GroupName};
use serde::{Deserialize, Serialize};
use sqlx::Row as _;
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{Consistency, SequenceResponse, metadata};
use crate::extract::{ApiJson, ApiPath, ApiQuery, Caller, wait_for};
use crate::{ApiError, ApiState, Problem};

const CHATS: (&str, i32) = ("chats", 1);

impl From<ChatsError> for ApiError {
    fn from(error: ChatsError) -> Self {
        use StatusCode as S;
        let (status, code) = match &error {
            // A chat one is not in does not exist, as far as one can tell.
            ChatsError::Chat(ChatError::NotFound | ChatError::NotMember) => {
                (S::NOT_FOUND, "not_found")
            }
            ChatsError::Chat(ChatError::NotAdmin) => (S::FORBIDDEN, "not_admin"),
            ChatsError::Chat(ChatError::Blocked) => (S::FORBIDDEN, "blocked"),
            ChatsError::Chat(ChatError::AlreadyExists) => (S::CONFLICT, "already_exists"),
            ChatsError::Chat(ChatError::LastAdmin) => (S::CONFLICT, "last_admin"),
            ChatsError::Chat(ChatError::CannotChatWithSelf) => {
                (S::UNPROCESSABLE_ENTITY, "cannot_chat_with_self")
            }
            ChatsError::Chat(ChatError::TooManyMembers) => {
                (S::UNPROCESSABLE_ENTITY, "too_many_members")
            }
            ChatsError::Chat(ChatError::NotAGroup) => (S::UNPROCESSABLE_ENTITY, "not_a_group"),
            ChatsError::Chat(ChatError::CannotRemoveSelf) => {
                (S::UNPROCESSABLE_ENTITY, "cannot_remove_self")
            }
            ChatsError::Chat(ChatError::NoActor) => return Self::internal(error),
            ChatsError::UnknownUser => (S::UNPROCESSABLE_ENTITY, "unknown_user"),
            ChatsError::Conflict => (S::CONFLICT, "conflict"),
            ChatsError::Internal(reason) => return Self::internal(reason),
        };
        Self::new(status, code, error.to_string())
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"chat_id": "0190f3a1-7b2c-7d3e-8f40-5a6b7c8d9e0f", "sequence": 57}))]
pub struct ChatCreated {
    pub chat_id: Uuid,
    pub sequence: u64,
}

fn created(outcome: ChatOutcome) -> (StatusCode, axum::Json<ChatCreated>) {
    let status = if outcome.existed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    (
        status,
        axum::Json(ChatCreated {
            chat_id: outcome.chat_id,
            sequence: outcome.last_sequence,
        }),
    )
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"user_id": "0190f3a1-0000-7000-8000-000000000002"}))]
pub struct DirectChatRequest {
    pub user_id: Uuid,
}

/// Opens the direct chat with another user, or returns the one that exists (200):
/// two users opening a chat with each other at once get the same chat.
#[utoipa::path(
    post, path = "/v1/chats/direct", tag = "chats", security(("bearer" = [])),
    request_body = DirectChatRequest,
    responses(
        (status = 201, description = "Opened", body = ChatCreated),
        (status = 200, description = "It existed already", body = ChatCreated),
        (status = 403, description = "One of the two has blocked the other", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Concurrent change; try again", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "No such user, or oneself", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn open_direct(
    State(state): State<ApiState>,
    caller: Caller,
    ApiJson(request): ApiJson<DirectChatRequest>,
) -> Result<(StatusCode, axum::Json<ChatCreated>), ApiError> {
    let outcome = state
        .chats
        .open_direct(
            caller.user_id,
            request.user_id,
            metadata(Some(caller.user_id)),
        )
        .await?;
    Ok(created(outcome))
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"name": "Climbing", "members": ["0190f3a1-0000-7000-8000-000000000002"]}))]
pub struct GroupRequest {
    /// 1 to 100 characters.
    #[schema(min_length = 1, max_length = 400)]
    pub name: String,
    /// Up to 1,023 other users.
    #[schema(max_items = 1023)]
    pub members: Vec<Uuid>,
}

/// Creates a group; the caller is its first admin.
#[utoipa::path(
    post, path = "/v1/chats/groups", tag = "chats", security(("bearer" = [])),
    request_body = GroupRequest,
    responses(
        (status = 201, body = ChatCreated),
        (status = 409, description = "Concurrent change; try again", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unknown users, or too many", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn create_group(
    State(state): State<ApiState>,
    caller: Caller,
    ApiJson(request): ApiJson<GroupRequest>,
) -> Result<(StatusCode, axum::Json<ChatCreated>), ApiError> {
    let name =
        GroupName::parse(&request.name).map_err(|e| ApiError::bad_request("invalid_name", e))?;
    let outcome = state
        .chats
        .create_group(
            caller.user_id,
            name,
            request.members,
            metadata(Some(caller.user_id)),
        )
        .await?;
    Ok(created(outcome))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ChatSummary {
    pub chat_id: Uuid,
    /// `direct` or `group`.
    pub kind: String,
    /// The group's name; for a direct chat, absent.
    pub name: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub last_activity_at: OffsetDateTime,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"items": [{"chat_id": "0190f3a1-7b2c-7d3e-8f40-5a6b7c8d9e0f", "kind": "group", "name": "Climbing", "last_activity_at": "2026-11-26T12:00:00Z"}]}))]
pub struct ChatList {
    pub items: Vec<ChatSummary>,
}

/// The caller's chats, most recently active first.
#[utoipa::path(
    get, path = "/v1/chats", tag = "chats", security(("bearer" = [])),
    params(Consistency),
    responses((status = 200, body = ChatList))
)]
pub async fn list(
    State(state): State<ApiState>,
    caller: Caller,
    ApiQuery(consistency): ApiQuery<Consistency>,
) -> Result<axum::Json<ChatList>, ApiError> {
    wait_for(&state, CHATS.0, CHATS.1, consistency.min_sequence).await?;
    let rows = sqlx::query(
        "SELECT c.chat_id, c.kind, c.name, c.last_activity_at
         FROM chat_members_v1 m JOIN chats_v1 c USING (chat_id)
         WHERE m.user_id = $1 AND m.left_at IS NULL
         ORDER BY c.last_activity_at DESC, c.chat_id LIMIT 1000",
    )
    .bind(caller.user_id)
    .fetch_all(&state.pool)
    .await
    .map_err(ApiError::internal)?;
    let items = rows
        .iter()
        .map(|row| {
            Ok(ChatSummary {
                chat_id: row.try_get("chat_id")?,
                kind: row.try_get("kind")?,
                name: row.try_get("name")?,
                last_activity_at: row.try_get("last_activity_at")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(ApiError::internal)?;
    Ok(axum::Json(ChatList { items }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ChatMember {
    pub user_id: Uuid,
    pub admin: bool,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"chat_id": "0190f3a1-7b2c-7d3e-8f40-5a6b7c8d9e0f", "kind": "group", "name": "Climbing", "members": [{"user_id": "0190f3a1-0000-7000-8000-000000000001", "admin": true}]}))]
pub struct ChatDetails {
    pub chat_id: Uuid,
    pub kind: String,
    pub name: Option<String>,
    pub members: Vec<ChatMember>,
}

/// One chat, for its members only (others get 404).
#[utoipa::path(
    get, path = "/v1/chats/{chat_id}", tag = "chats", security(("bearer" = [])),
    params(("chat_id" = Uuid, Path, description = "The chat"), Consistency),
    responses(
        (status = 200, body = ChatDetails),
        (status = 404, description = "No such chat, or not a member", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn details(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath(chat_id): ApiPath<Uuid>,
    ApiQuery(consistency): ApiQuery<Consistency>,
) -> Result<axum::Json<ChatDetails>, ApiError> {
    wait_for(&state, CHATS.0, CHATS.1, consistency.min_sequence).await?;
    let rows = sqlx::query(
        "SELECT c.kind, c.name, m.user_id, m.admin FROM chats_v1 c
         JOIN chat_members_v1 m USING (chat_id)
         WHERE c.chat_id = $1 AND m.left_at IS NULL ORDER BY m.joined_at, m.user_id",
    )
    .bind(chat_id)
    .fetch_all(&state.pool)
    .await
    .map_err(ApiError::internal)?;
    let members = rows
        .iter()
        .map(|row| {
            Ok(ChatMember {
                user_id: row.try_get("user_id")?,
                admin: row.try_get("admin")?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()
        .map_err(ApiError::internal)?;
    if !members.iter().any(|m| m.user_id == caller.user_id) {
        return Err(ApiError::not_found());
    }
    let first = rows.first().ok_or_else(ApiError::not_found)?;
    Ok(axum::Json(ChatDetails {
        chat_id,
        kind: first.try_get("kind").map_err(ApiError::internal)?,
        name: first.try_get("name").map_err(ApiError::internal)?,
        members,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"user_ids": ["0190f3a1-0000-7000-8000-000000000003"]}))]
pub struct AddMembersRequest {
    #[schema(max_items = 1023)]
    pub user_ids: Vec<Uuid>,
}

/// Adds members to a group (admins only).
#[utoipa::path(
    post, path = "/v1/chats/{chat_id}/members", tag = "chats", security(("bearer" = [])),
    params(("chat_id" = Uuid, Path, description = "The group")),
    request_body = AddMembersRequest,
    responses(
        (status = 200, body = SequenceResponse),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such chat, or not a member", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Concurrent change; try again", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unknown users, too many, or not a group", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn add_members(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath(chat_id): ApiPath<Uuid>,
    ApiJson(request): ApiJson<AddMembersRequest>,
) -> Result<axum::Json<SequenceResponse>, ApiError> {
    let command = ChatCommand::AddMembers {
        users: request.user_ids,
    };
    change(&state, caller, chat_id, command).await
}

/// Removes a member (admins only); removing oneself is leaving, which anyone may do.
/// When the last admin leaves, the oldest member becomes admin.
#[utoipa::path(
    delete, path = "/v1/chats/{chat_id}/members/{user_id}", tag = "chats", security(("bearer" = [])),
    params(("chat_id" = Uuid, Path, description = "The group"), ("user_id" = Uuid, Path, description = "The member")),
    responses(
        (status = 200, body = SequenceResponse),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such chat, or not a member", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Concurrent change; try again", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not a group", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn remove_member(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath((chat_id, user_id)): ApiPath<(Uuid, Uuid)>,
) -> Result<axum::Json<SequenceResponse>, ApiError> {
    let command = if user_id == caller.user_id {
        ChatCommand::Leave
    } else {
        ChatCommand::RemoveMember { user: user_id }
    };
    change(&state, caller, chat_id, command).await
}

/// Makes a member an admin (admins only).
#[utoipa::path(
    put, path = "/v1/chats/{chat_id}/admins/{user_id}", tag = "chats", security(("bearer" = [])),
    params(("chat_id" = Uuid, Path, description = "The group"), ("user_id" = Uuid, Path, description = "The member")),
    responses(
        (status = 200, body = SequenceResponse),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such chat or member", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Concurrent change; try again", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not a group", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn promote(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath((chat_id, user_id)): ApiPath<(Uuid, Uuid)>,
) -> Result<axum::Json<SequenceResponse>, ApiError> {
    change(
        &state,
        caller,
        chat_id,
        ChatCommand::SetAdmin {
            user: user_id,
            admin: true,
        },
    )
    .await
}

/// Takes admin rights away (admins only); a group keeps at least one admin.
#[utoipa::path(
    delete, path = "/v1/chats/{chat_id}/admins/{user_id}", tag = "chats", security(("bearer" = [])),
    params(("chat_id" = Uuid, Path, description = "The group"), ("user_id" = Uuid, Path, description = "The member")),
    responses(
        (status = 200, body = SequenceResponse),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such chat or member", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The last admin, or a concurrent change", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not a group", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn demote(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath((chat_id, user_id)): ApiPath<(Uuid, Uuid)>,
) -> Result<axum::Json<SequenceResponse>, ApiError> {
    change(
        &state,
        caller,
        chat_id,
        ChatCommand::SetAdmin {
            user: user_id,
            admin: false,
        },
    )
    .await
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"name": "Bouldering"}))]
pub struct RenameRequest {
    #[schema(min_length = 1, max_length = 400)]
    pub name: String,
}

/// Renames a group (admins only).
#[utoipa::path(
    patch, path = "/v1/chats/{chat_id}", tag = "chats", security(("bearer" = [])),
    params(("chat_id" = Uuid, Path, description = "The group")),
    request_body = RenameRequest,
    responses(
        (status = 200, body = SequenceResponse),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such chat, or not a member", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Concurrent change; try again", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not a group", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn rename(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath(chat_id): ApiPath<Uuid>,
    ApiJson(request): ApiJson<RenameRequest>,
) -> Result<axum::Json<SequenceResponse>, ApiError> {
    let name =
        GroupName::parse(&request.name).map_err(|e| ApiError::bad_request("invalid_name", e))?;
    change(&state, caller, chat_id, ChatCommand::Rename { name }).await
}

async fn change(
    state: &ApiState,
    caller: Caller,
    chat_id: Uuid,
    command: ChatCommand,
) -> Result<axum::Json<SequenceResponse>, ApiError> {
    let sequence = state
        .chats
        .change(
            chat_id,
            caller.user_id,
            command,
            metadata(Some(caller.user_id)),
        )
        .await?;
    Ok(axum::Json(SequenceResponse { sequence }))
}
