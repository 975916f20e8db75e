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
            ChatsError::Chat(ChatError::NotAuthor) => (S::FORBIDDEN, "not_author"),
            ChatsError::Chat(ChatError::CannotDelete) => (S::FORBIDDEN, "cannot_delete"),
            ChatsError::Chat(ChatError::EditWindowClosed) => (S::CONFLICT, "edit_window_closed"),
            ChatsError::Chat(ChatError::NoActor) => return Self::internal(error),
            ChatsError::UnknownUser => (S::UNPROCESSABLE_ENTITY, "unknown_user"),
            ChatsError::Conflict => (S::CONFLICT, "conflict"),
            ChatsError::IdempotencyKeyReused => (S::UNPROCESSABLE_ENTITY, "idempotency_key_reused"),
            ChatsError::Prefs(natter_domain::prefs::PrefsError::TooManyPinned) => {
                (S::CONFLICT, "too_many_pinned")
            }
            ChatsError::Prefs(natter_domain::prefs::PrefsError::NoActor) => {
                return Self::internal(error);
            }
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

/// Creates a group; the caller is its first admin. Send an `Idempotency-Key` to make a
/// retry safe: the same key with the same request answers with the first group (200).
#[utoipa::path(
    post, path = "/v1/chats/groups", tag = "chats", security(("bearer" = [])),
    request_body = GroupRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "1 to 255 printable ASCII characters")),
    responses(
        (status = 201, body = ChatCreated),
        (status = 200, description = "Created before with this Idempotency-Key", body = ChatCreated),
        (status = 409, description = "Concurrent change; try again", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unknown users, too many, or an Idempotency-Key reused for another request", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn create_group(
    State(state): State<ApiState>,
    caller: Caller,
    headers: axum::http::HeaderMap,
    ApiJson(request): ApiJson<GroupRequest>,
) -> Result<(StatusCode, axum::Json<ChatCreated>), ApiError> {
    let name =
        GroupName::parse(&request.name).map_err(|e| ApiError::bad_request("invalid_name", e))?;
    let scope = format!("POST /v1/chats/groups\n{}", caller.user_id);
    let idempotency = super::idempotency_key(&headers, &scope, || {
        let mut members: Vec<String> = request.members.iter().map(Uuid::to_string).collect();
        members.sort();
        natter_commands::tokens::hex_digest(
            format!("{}\n{}", name.as_str(), members.join(",")).as_bytes(),
        )
    })?;
    let outcome = state
        .chats
        .create_group(
            caller.user_id,
            name,
            request.members,
            idempotency,
            metadata(Some(caller.user_id)),
        )
        .await?;
    Ok(created(outcome))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LastMessage {
    pub sequence: u64,
    pub sender: Uuid,
    /// The first 100 characters; empty when the message was deleted for everyone.
    pub preview: String,
    pub deleted: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub sent_at: OffsetDateTime,
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
    pub last_message: Option<LastMessage>,
    /// Messages from others after the caller's read marker.
    pub unread_count: u64,
    /// The caller's own settings for this chat.
    pub pinned: bool,
    pub archived: bool,
    #[serde(with = "time::serde::rfc3339::option")]
    pub muted_until: Option<OffsetDateTime>,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"items": [{"chat_id": "0190f3a1-7b2c-7d3e-8f40-5a6b7c8d9e0f", "kind": "group", "name": "Climbing", "last_activity_at": "2026-11-26T12:00:00Z", "last_message": {"sequence": 1043, "sender": "0190f3a1-0000-7000-8000-000000000001", "preview": "See you at 8?", "sent_at": "2026-11-26T12:00:00Z"}, "unread_count": 2}]}))]
pub struct ChatList {
    pub items: Vec<ChatSummary>,
}

/// The caller's chats: pinned ones first, then the most recently active, each with
/// its last message, the count of unread messages and the caller's settings.
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
        "SELECT c.chat_id, c.kind, c.name, c.last_activity_at, m.pinned, m.archived, m.muted_until,
                lm.sequence AS last_sequence, lm.sender AS last_sender, left(lm.body, 100) AS preview,
                lm.deleted AS last_deleted,
                lm.sent_at AS last_sent_at,
                (SELECT count(*) FROM messages_v1 x
                 WHERE x.chat_id = c.chat_id AND x.sequence > GREATEST(m.read_up_to, m.joined_sequence)
                   AND x.sender <> m.user_id) AS unread
         FROM chat_members_v1 m JOIN chats_v1 c USING (chat_id)
         LEFT JOIN LATERAL (
             SELECT sequence, sender, body, sent_at, deleted FROM messages_v1
             WHERE chat_id = c.chat_id ORDER BY sequence DESC LIMIT 1
         ) lm ON true
         WHERE m.user_id = $1 AND m.left_at IS NULL
         ORDER BY m.pinned DESC, c.last_activity_at DESC, c.chat_id LIMIT 1000",
    )
    .bind(caller.user_id)
    .fetch_all(&state.pool)
    .await
    .map_err(ApiError::internal)?;
    let items = rows
        .iter()
        .map(|row| {
            let last_sequence: Option<i64> = row.try_get("last_sequence")?;
            let last_message = match last_sequence {
                Some(sequence) => Some(LastMessage {
                    sequence: u64::try_from(sequence).unwrap_or(0),
                    sender: row.try_get("last_sender")?,
                    preview: row.try_get("preview")?,
                    deleted: row.try_get("last_deleted")?,
                    sent_at: row.try_get("last_sent_at")?,
                }),
                None => None,
            };
            let unread: i64 = row.try_get("unread")?;
            Ok(ChatSummary {
                chat_id: row.try_get("chat_id")?,
                kind: row.try_get("kind")?,
                name: row.try_get("name")?,
                last_activity_at: row.try_get("last_activity_at")?,
                last_message,
                unread_count: u64::try_from(unread).unwrap_or(0),
                pinned: row.try_get("pinned")?,
                archived: row.try_get("archived")?,
                muted_until: row.try_get("muted_until")?,
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

impl From<natter_commands::messages::MessagesError> for ApiError {
    fn from(error: natter_commands::messages::MessagesError) -> Self {
        use natter_commands::messages::MessagesError as E;
        match error {
            E::Chat(chat) => ChatsError::Chat(chat).into(),
            E::ClientIdReused => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "client_id_reused",
                error.to_string(),
            ),
            E::Conflict => Self::new(StatusCode::CONFLICT, "conflict", error.to_string()),
            E::Internal(reason) => Self::internal(reason),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"client_id": "b7c1e0d2-1", "body": "See you at 8?", "reply_to": null}))]
pub struct SendRequest {
    /// The client's id for this send (1 to 64 printable ASCII characters): a retry with
    /// the same id is stored once, however much later it comes.
    #[schema(min_length = 1, max_length = 64)]
    pub client_id: String,
    /// The text: not blank, at most 64 KiB of UTF-8.
    #[schema(min_length = 1, max_length = 65536)]
    pub body: String,
    /// The message this one replies to.
    pub reply_to: Option<Uuid>,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"message_id": "0190f3a1-7b2c-7d3e-8f40-5a6b7c8d9e10", "sequence": 1043}))]
pub struct SentResponse {
    pub message_id: Uuid,
    /// The message's stream sequence: its place in the chat, and a consistency token.
    pub sequence: u64,
}

/// Sends a text message to a chat the caller is in.
#[utoipa::path(
    post, path = "/v1/chats/{chat_id}/messages", tag = "messages", security(("bearer" = [])),
    params(("chat_id" = Uuid, Path, description = "The chat")),
    request_body = SendRequest,
    responses(
        (status = 201, description = "Sent", body = SentResponse),
        (status = 200, description = "Sent before with this client id", body = SentResponse),
        (status = 403, description = "Blocked", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such chat, or not a member", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The chat kept changing; try again", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The client id was used for another message", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn send_message(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath(chat_id): ApiPath<Uuid>,
    ApiJson(request): ApiJson<SendRequest>,
) -> Result<(StatusCode, axum::Json<SentResponse>), ApiError> {
    let client_id = natter_domain::chat::ClientId::parse(&request.client_id)
        .map_err(|e| ApiError::bad_request("invalid_client_id", e))?;
    let body = natter_domain::chat::MessageBody::parse(&request.body)
        .map_err(|e| ApiError::bad_request("invalid_body_text", e))?;
    // A retry later than the log's deduplication window: the read model has the first.
    let earlier = sqlx::query(
        "SELECT message_id, sequence, body, reply_to, deleted FROM messages_v1
         WHERE chat_id = $1 AND sender = $2 AND client_id = $3",
    )
    .bind(chat_id)
    .bind(caller.user_id)
    .bind(client_id.as_str())
    .fetch_optional(&state.pool)
    .await
    .map_err(ApiError::internal)?;
    if let Some(row) = earlier {
        let stored_body: String = row.try_get("body").map_err(ApiError::internal)?;
        let deleted: bool = row.try_get("deleted").map_err(ApiError::internal)?;
        let stored_reply: Option<Uuid> = row.try_get("reply_to").map_err(ApiError::internal)?;
        let same = deleted || (stored_body == body.as_str() && stored_reply == request.reply_to);
        if !same {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "client_id_reused",
                "this client id was used for a different message",
            ));
        }
        let sequence: i64 = row.try_get("sequence").map_err(ApiError::internal)?;
        return Ok((
            StatusCode::OK,
            axum::Json(SentResponse {
                message_id: row.try_get("message_id").map_err(ApiError::internal)?,
                sequence: u64::try_from(sequence).unwrap_or(0),
            }),
        ));
    }
    let sent = state
        .messages
        .send(
            chat_id,
            caller.user_id,
            client_id,
            body,
            request.reply_to,
            metadata(Some(caller.user_id)),
        )
        .await?;
    let status = if sent.replayed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((
        status,
        axum::Json(SentResponse {
            message_id: sent.message_id,
            sequence: sent.sequence,
        }),
    ))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// Messages before this sequence (exclusive): paging back.
    #[param(minimum = 0)]
    pub before: Option<u64>,
    /// Messages after this sequence (exclusive): paging forward.
    #[param(minimum = 0)]
    pub after: Option<u64>,
    /// Page size, 1 to 100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// Wait for the read model to reach this sequence.
    #[param(minimum = 0, maximum = 9_223_372_036_854_775_807_i64)]
    pub min_sequence: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReactionCount {
    pub reaction: String,
    pub count: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Message {
    pub message_id: Uuid,
    pub sequence: u64,
    pub sender: Uuid,
    /// Empty for a message deleted for everyone.
    pub body: String,
    pub reply_to: Option<Uuid>,
    #[serde(with = "time::serde::rfc3339")]
    pub sent_at: OffsetDateTime,
    pub edited: bool,
    /// Deleted for everyone: a tombstone.
    pub deleted: bool,
    /// Each reaction with how many members chose it, most chosen first.
    pub reactions: Vec<ReactionCount>,
    /// For the caller's own messages: `sent`, `delivered` (to every other member) or
    /// `read` (by every other member). Members who turned read receipts off never
    /// count as having read.
    pub receipt: Option<String>,
}

/// Another member's markers, for the receipts of the caller's messages.
struct Recipient {
    joined: i64,
    delivered: i64,
    read: Option<i64>,
}

fn receipt(sequence: i64, recipients: &[Recipient]) -> &'static str {
    let concerned: Vec<&Recipient> = recipients.iter().filter(|r| r.joined < sequence).collect();
    if concerned
        .iter()
        .all(|r| r.read.is_some_and(|read| read >= sequence))
    {
        "read"
    } else if concerned.iter().all(|r| r.delivered >= sequence) {
        "delivered"
    } else {
        "sent"
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"items": [{"message_id": "0190f3a1-7b2c-7d3e-8f40-5a6b7c8d9e10", "sequence": 1043, "sender": "0190f3a1-0000-7000-8000-000000000001", "body": "See you at 8?", "reply_to": null, "sent_at": "2026-11-26T12:00:00Z"}], "has_more": false}))]
pub struct MessagePage {
    /// Oldest first.
    pub items: Vec<Message>,
    /// More messages lie beyond this page, in the direction asked for.
    pub has_more: bool,
}

/// A page of a chat's history, oldest first: the latest messages by default, `before`
/// to page back, `after` to page forward. A former member sees what was sent while they
/// were in the chat, and nothing after.
#[utoipa::path(
    get, path = "/v1/chats/{chat_id}/messages", tag = "messages", security(("bearer" = [])),
    params(("chat_id" = Uuid, Path, description = "The chat"), HistoryQuery),
    responses(
        (status = 200, body = MessagePage),
        (status = 404, description = "No such chat, or never a member", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn history(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath(chat_id): ApiPath<Uuid>,
    ApiQuery(query): ApiQuery<HistoryQuery>,
) -> Result<axum::Json<MessagePage>, ApiError> {
    let limit = query.limit.unwrap_or(50);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::bad_request("invalid_query", "limit is 1 to 100"));
    }
    if query.before.is_some() && query.after.is_some() {
        return Err(ApiError::bad_request(
            "invalid_query",
            "give before or after, not both",
        ));
    }
    wait_for(&state, CHATS.0, CHATS.1, query.min_sequence).await?;
    let to_i64 = |value: u64| i64::try_from(value).unwrap_or(i64::MAX);
    let member = sqlx::query("SELECT joined_sequence, left_sequence FROM chat_members_v1 WHERE chat_id = $1 AND user_id = $2")
        .bind(chat_id)
        .bind(caller.user_id)
        .fetch_optional(&state.pool)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(ApiError::not_found)?;
    let joined: i64 = member
        .try_get("joined_sequence")
        .map_err(ApiError::internal)?;
    let left: Option<i64> = member
        .try_get("left_sequence")
        .map_err(ApiError::internal)?;
    let (forward, bound) = match (query.before, query.after) {
        (_, Some(after)) => (true, to_i64(after)),
        (Some(before), None) => (false, to_i64(before)),
        (None, None) => (false, i64::MAX),
    };
    const COLUMNS: &str = "SELECT m.message_id, m.sequence, m.sender, m.body, m.reply_to, m.sent_at, m.edited, m.deleted,
            COALESCE((SELECT json_agg(json_build_object('reaction', r.reaction, 'count', r.n) ORDER BY r.n DESC, r.reaction)
                      FROM (SELECT reaction, count(*) AS n FROM message_reactions_v1
                            WHERE message_id = m.message_id GROUP BY reaction) r), '[]'::json) AS reactions
         FROM messages_v1 m";
    let sql = if forward {
        format!(
            "{COLUMNS} WHERE m.chat_id = $1 AND m.sequence > $2 AND m.sequence >= $3 AND m.sequence < $4
             ORDER BY m.sequence ASC LIMIT $5"
        )
    } else {
        format!(
            "{COLUMNS} WHERE m.chat_id = $1 AND m.sequence < $2 AND m.sequence >= $3 AND m.sequence < $4
             ORDER BY m.sequence DESC LIMIT $5"
        )
    };
    let rows = sqlx::query(&sql)
        .bind(chat_id)
        .bind(bound)
        .bind(joined)
        .bind(left.unwrap_or(i64::MAX))
        .bind(i64::from(limit) + 1)
        .fetch_all(&state.pool)
        .await
        .map_err(ApiError::internal)?;
    let recipients: Vec<Recipient> = sqlx::query(
        "SELECT cm.joined_sequence, cm.delivered_up_to, cm.read_up_to, COALESCE(d.read_receipts, true) AS receipts
         FROM chat_members_v1 cm LEFT JOIN user_directory_v1 d USING (user_id)
         WHERE cm.chat_id = $1 AND cm.left_at IS NULL AND cm.user_id <> $2",
    )
    .bind(chat_id)
    .bind(caller.user_id)
    .fetch_all(&state.pool)
    .await
    .map_err(ApiError::internal)?
    .iter()
    .map(|row| {
        let receipts: bool = row.try_get("receipts")?;
        Ok(Recipient {
            joined: row.try_get("joined_sequence")?,
            delivered: row.try_get("delivered_up_to")?,
            read: if receipts { Some(row.try_get("read_up_to")?) } else { None },
        })
    })
    .collect::<Result<_, sqlx::Error>>()
    .map_err(ApiError::internal)?;
    let has_more = rows.len() > limit as usize;
    let mut items = rows
        .iter()
        .take(limit as usize)
        .map(|row| {
            let sequence: i64 = row.try_get("sequence")?;
            let sender: Uuid = row.try_get("sender")?;
            Ok(Message {
                message_id: row.try_get("message_id")?,
                sequence: u64::try_from(sequence).unwrap_or(0),
                sender,
                body: row.try_get("body")?,
                reply_to: row.try_get("reply_to")?,
                sent_at: row.try_get("sent_at")?,
                edited: row.try_get("edited")?,
                deleted: row.try_get("deleted")?,
                reactions: reactions(row.try_get("reactions")?),
                receipt: (sender == caller.user_id)
                    .then(|| receipt(sequence, &recipients).to_owned()),
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()
        .map_err(ApiError::internal)?;
    if !forward {
        items.reverse();
    }
    Ok(axum::Json(MessagePage { items, has_more }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"up_to": 1043}))]
pub struct ReadRequest {
    /// The sequence of the newest message read.
    #[schema(minimum = 0)]
    pub up_to: u64,
}

/// Marks the chat read up to a message: the caller's unread count clears up to there.
#[utoipa::path(
    post, path = "/v1/chats/{chat_id}/read", tag = "messages", security(("bearer" = [])),
    params(("chat_id" = Uuid, Path, description = "The chat")),
    request_body = ReadRequest,
    responses(
        (status = 200, body = SequenceResponse),
        (status = 404, description = "No such chat, or not a member", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The chat kept changing; try again", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn mark_read(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath(chat_id): ApiPath<Uuid>,
    ApiJson(request): ApiJson<ReadRequest>,
) -> Result<axum::Json<SequenceResponse>, ApiError> {
    let sequence = state
        .messages
        .mark_read(
            chat_id,
            caller.user_id,
            request.up_to,
            metadata(Some(caller.user_id)),
        )
        .await?;
    Ok(axum::Json(SequenceResponse { sequence }))
}

fn reactions(json: serde_json::Value) -> Vec<ReactionCount> {
    json.as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|item| {
                    Some(ReactionCount {
                        reaction: item["reaction"].as_str()?.to_owned(),
                        count: item["count"].as_u64()?,
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"body": "See you at 9?"}))]
pub struct EditRequest {
    #[schema(min_length = 1, max_length = 65536)]
    pub body: String,
}

/// Edits a message: its author only, within 15 minutes of sending. Earlier versions
/// stay in the log.
#[utoipa::path(
    patch, path = "/v1/chats/{chat_id}/messages/{sequence}", tag = "messages", security(("bearer" = [])),
    params(("chat_id" = Uuid, Path, description = "The chat"), ("sequence" = u64, Path, description = "The message's sequence")),
    request_body = EditRequest,
    responses(
        (status = 200, body = SequenceResponse),
        (status = 403, description = "Not the author", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such chat or message, or not a member", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The edit window has closed, or a concurrent change", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn edit_message(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath((chat_id, sequence)): ApiPath<(Uuid, u64)>,
    ApiJson(request): ApiJson<EditRequest>,
) -> Result<axum::Json<SequenceResponse>, ApiError> {
    let body = natter_domain::chat::MessageBody::parse(&request.body)
        .map_err(|e| ApiError::bad_request("invalid_body_text", e))?;
    act(
        &state,
        caller,
        chat_id,
        sequence,
        natter_domain::chat::MessageAction::Edit(body),
    )
    .await
}

/// Deletes a message for everyone: its author, or a group admin. A tombstone stays.
#[utoipa::path(
    delete, path = "/v1/chats/{chat_id}/messages/{sequence}", tag = "messages", security(("bearer" = [])),
    params(("chat_id" = Uuid, Path, description = "The chat"), ("sequence" = u64, Path, description = "The message's sequence")),
    responses(
        (status = 200, body = SequenceResponse),
        (status = 403, description = "Neither author nor admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such chat or message, or not a member", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Concurrent change; try again", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn delete_message(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath((chat_id, sequence)): ApiPath<(Uuid, u64)>,
) -> Result<axum::Json<SequenceResponse>, ApiError> {
    act(
        &state,
        caller,
        chat_id,
        sequence,
        natter_domain::chat::MessageAction::DeleteForEveryone,
    )
    .await
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"reaction": "👍"}))]
pub struct ReactRequest {
    /// One emoji or short token: 1 to 32 bytes, no spaces.
    #[schema(min_length = 1, max_length = 32)]
    pub reaction: String,
}

/// Sets the caller's one reaction to a message, replacing any earlier one.
#[utoipa::path(
    put, path = "/v1/chats/{chat_id}/messages/{sequence}/reaction", tag = "messages", security(("bearer" = [])),
    params(("chat_id" = Uuid, Path, description = "The chat"), ("sequence" = u64, Path, description = "The message's sequence")),
    request_body = ReactRequest,
    responses(
        (status = 200, body = SequenceResponse),
        (status = 404, description = "No such chat or message, or not a member", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Concurrent change; try again", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn react(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath((chat_id, sequence)): ApiPath<(Uuid, u64)>,
    ApiJson(request): ApiJson<ReactRequest>,
) -> Result<axum::Json<SequenceResponse>, ApiError> {
    let reaction = natter_domain::chat::Reaction::parse(&request.reaction)
        .map_err(|e| ApiError::bad_request("invalid_reaction", e))?;
    act(
        &state,
        caller,
        chat_id,
        sequence,
        natter_domain::chat::MessageAction::React(Some(reaction)),
    )
    .await
}

/// Removes the caller's reaction to a message.
#[utoipa::path(
    delete, path = "/v1/chats/{chat_id}/messages/{sequence}/reaction", tag = "messages", security(("bearer" = [])),
    params(("chat_id" = Uuid, Path, description = "The chat"), ("sequence" = u64, Path, description = "The message's sequence")),
    responses(
        (status = 200, body = SequenceResponse),
        (status = 404, description = "No such chat or message, or not a member", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Concurrent change; try again", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn unreact(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath((chat_id, sequence)): ApiPath<(Uuid, u64)>,
) -> Result<axum::Json<SequenceResponse>, ApiError> {
    act(
        &state,
        caller,
        chat_id,
        sequence,
        natter_domain::chat::MessageAction::React(None),
    )
    .await
}

async fn act(
    state: &ApiState,
    caller: Caller,
    chat_id: Uuid,
    sequence: u64,
    action: natter_domain::chat::MessageAction,
) -> Result<axum::Json<SequenceResponse>, ApiError> {
    let sequence = state
        .messages
        .act(
            chat_id,
            caller.user_id,
            sequence,
            action,
            metadata(Some(caller.user_id)),
        )
        .await?;
    Ok(axum::Json(SequenceResponse { sequence }))
}

/// Marks the chat received by the caller's devices up to a message: it drives the
/// sender's "delivered" state. Send one marker for many messages, not one each.
#[utoipa::path(
    post, path = "/v1/chats/{chat_id}/delivered", tag = "messages", security(("bearer" = [])),
    params(("chat_id" = Uuid, Path, description = "The chat")),
    request_body = ReadRequest,
    responses(
        (status = 200, body = SequenceResponse),
        (status = 404, description = "No such chat, or not a member", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The chat kept changing; try again", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn mark_delivered(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath(chat_id): ApiPath<Uuid>,
    ApiJson(request): ApiJson<ReadRequest>,
) -> Result<axum::Json<SequenceResponse>, ApiError> {
    let sequence = state
        .messages
        .mark_delivered(
            chat_id,
            caller.user_id,
            request.up_to,
            metadata(Some(caller.user_id)),
        )
        .await?;
    Ok(axum::Json(SequenceResponse { sequence }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"pinned": true, "archived": false, "muted_until": "2026-11-27T08:00:00Z"}))]
pub struct SettingsRequest {
    /// At most three chats can be pinned.
    pub pinned: Option<bool>,
    pub archived: Option<bool>,
    /// Mute until this time; `null` unmutes; absent leaves it as it is.
    #[serde(default, deserialize_with = "present_time")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub muted_until: Option<Option<OffsetDateTime>>,
}

/// Tells a field sent as `null` (`Some(None)`) from one left out (`None`).
fn present_time<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Option<OffsetDateTime>>, D::Error> {
    let text = Option::<String>::deserialize(deserializer)?;
    match text {
        None => Ok(Some(None)),
        Some(text) => OffsetDateTime::parse(&text, &time::format_description::well_known::Rfc3339)
            .map(|time| Some(Some(time)))
            .map_err(serde::de::Error::custom),
    }
}

/// Changes the caller's own settings for a chat: pin, archive, mute.
#[utoipa::path(
    put, path = "/v1/chats/{chat_id}/settings", tag = "chats", security(("bearer" = [])),
    params(("chat_id" = Uuid, Path, description = "The chat")),
    request_body = SettingsRequest,
    responses(
        (status = 200, body = SequenceResponse),
        (status = 404, description = "No such chat, or not a member", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Three chats are pinned already, or a concurrent change", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn change_settings(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath(chat_id): ApiPath<Uuid>,
    ApiJson(request): ApiJson<SettingsRequest>,
) -> Result<axum::Json<SequenceResponse>, ApiError> {
    let change = natter_domain::prefs::ChangeChatSettings {
        chat_id,
        pinned: request.pinned,
        archived: request.archived,
        muted_until: request.muted_until,
    };
    let sequence = state
        .chats
        .change_settings(caller.user_id, change, metadata(Some(caller.user_id)))
        .await?;
    Ok(axum::Json(SequenceResponse { sequence }))
}
