//! Chats: direct chats, groups, membership, roles, group info, invite links and each
//! member's own settings.

use axum::extract::State;
use axum::http::StatusCode;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use natter_commands::chats::{ChatOutcome, ChatsError};
use natter_domain::chat::{ChatCommand, ChatError, Description, GroupEdit, GroupName, InviteCode};
use natter_projections::reads::chats;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{Consistency, SequenceResponse, metadata};
use crate::extract::{ApiJson, ApiPath, ApiQuery, Caller, wait_for};
use crate::{ApiError, ApiState};

/// The chats read model, whose checkpoint a consistency token waits for.
pub(crate) const CHATS: (&str, i32) = (
    <natter_projections::Chats as natter_projections::Projection>::NAME,
    <natter_projections::Chats as natter_projections::Projection>::VERSION,
);

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
        (status = 403, description = "One of the two has blocked the other"),
        (status = 409, description = "Concurrent change; try again"),
        (status = 422, description = "No such user, or oneself"),
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
        (status = 409, description = "Concurrent change; try again"),
        (status = 422, description = "Unknown users, too many, or an Idempotency-Key reused for another request"),
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
    /// What the message carries besides its text, for a preview such as "Photo" when it
    /// has no caption: a media item's kind (`image`, `voice`, `video`, `document`),
    /// `location` or `contact`; absent for text alone and for a deleted message.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "image")]
    pub attachment: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ChatSummary {
    pub chat_id: Uuid,
    /// `direct` or `group`.
    pub kind: String,
    /// The group's name; for a direct chat, absent.
    pub name: Option<String>,
    /// For a direct chat, the other member; null for a group.
    pub peer_id: Option<Uuid>,
    #[serde(with = "time::serde::rfc3339")]
    pub last_activity_at: OffsetDateTime,
    pub last_message: Option<LastMessage>,
    /// The group's avatar, a media id.
    pub avatar_media_id: Option<Uuid>,
    /// Messages from others after the caller's read marker (not counting messages
    /// deleted for everyone, or by the caller for themselves).
    pub unread_count: u64,
    /// An unread message mentions the caller.
    pub mentioned: bool,
    /// The caller's own settings for this chat.
    pub pinned: bool,
    pub archived: bool,
    #[serde(with = "time::serde::rfc3339::option")]
    pub muted_until: Option<OffsetDateTime>,
    /// Pushes for this chat's messages show who sent what.
    pub previews: bool,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"items": [{"chat_id": "0190f3a1-7b2c-7d3e-8f40-5a6b7c8d9e0f", "kind": "group", "name": "Climbing", "peer_id": null, "last_activity_at": "2026-11-26T12:00:00Z", "last_message": {"sequence": 1043, "sender": "0190f3a1-0000-7000-8000-000000000001", "preview": "See you at 8?", "sent_at": "2026-11-26T12:00:00Z"}, "unread_count": 2}]}))]
pub struct ChatList {
    pub items: Vec<ChatSummary>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// The largest page of the chat list.
const MAX_CHAT_PAGE: u32 = 1_000;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ChatListQuery {
    /// Page size, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Wait for the read model to reach this sequence.
    #[param(minimum = 0, maximum = 9_223_372_036_854_775_807_i64)]
    pub min_sequence: Option<u64>,
}

/// A page's end as a cursor: `<pinned 0|1>.<last activity, Unix nanoseconds>.<chat id>`,
/// base64url. Opaque to clients.
fn chat_cursor(place: chats::ChatListPlace) -> String {
    let text = format!(
        "{}.{}.{}",
        u8::from(place.pinned),
        place.last_activity_at.unix_timestamp_nanos(),
        place.chat_id
    );
    URL_SAFE_NO_PAD.encode(text)
}

fn chat_place(cursor: &str) -> Result<chats::ChatListPlace, ApiError> {
    let invalid = || ApiError::bad_request("invalid_cursor", "not a cursor from this API");
    let text = URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(invalid)?;
    let mut parts = text.splitn(3, '.');
    let (Some(pinned), Some(nanos), Some(chat_id)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid());
    };
    Ok(chats::ChatListPlace {
        pinned: match pinned {
            "0" => false,
            "1" => true,
            _ => return Err(invalid()),
        },
        last_activity_at: nanos
            .parse::<i128>()
            .ok()
            .and_then(|nanos| OffsetDateTime::from_unix_timestamp_nanos(nanos).ok())
            .ok_or_else(invalid)?,
        chat_id: chat_id.parse().map_err(|_| invalid())?,
    })
}

/// The caller's chats, a page at a time: pinned ones first, then the most recently
/// active, each with its last message, the count of unread messages and the caller's
/// settings. A chat that moves up while a client pages (a new message) is told by its
/// live event.
#[utoipa::path(
    get, path = "/v1/chats", tag = "chats", operation_id = "list_chats", security(("bearer" = [])),
    params(ChatListQuery),
    responses(
        (status = 200, body = ChatList),
        (status = 400, description = "A limit out of range (`invalid_query`) or a cursor not from this API (`invalid_cursor`)"),
    )
)]
pub async fn list(
    State(state): State<ApiState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<ChatListQuery>,
) -> Result<axum::Json<ChatList>, ApiError> {
    let limit = query.limit.unwrap_or(100);
    if !(1..=MAX_CHAT_PAGE).contains(&limit) {
        return Err(ApiError::bad_request("invalid_query", "limit is 1 to 1000"));
    }
    let after = query.cursor.as_deref().map(chat_place).transpose()?;
    wait_for(&state, CHATS.0, CHATS.1, query.min_sequence).await?;
    let mut found = chats::chat_list(&state.pool, caller.user_id, after, limit + 1)
        .await
        .map_err(ApiError::internal)?;
    let next_cursor = if found.len() > limit as usize {
        found.truncate(limit as usize);
        found.last().map(|last| chat_cursor(last.place()))
    } else {
        None
    };
    let items = found
        .into_iter()
        .map(|item| ChatSummary {
            chat_id: item.chat_id,
            kind: item.kind,
            name: item.name,
            peer_id: item.peer_id,
            last_activity_at: item.last_activity_at,
            last_message: item.last_message.map(|last| LastMessage {
                sequence: last.sequence,
                sender: last.sender,
                preview: last.preview,
                deleted: last.deleted,
                sent_at: last.sent_at,
                attachment: last.attachment,
            }),
            unread_count: item.unread,
            mentioned: item.mentioned,
            avatar_media_id: item.avatar_media_id,
            pinned: item.pinned,
            archived: item.archived,
            muted_until: item.muted_until,
            previews: item.previews,
        })
        .collect();
    Ok(axum::Json(ChatList { items, next_cursor }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ChatMember {
    pub user_id: Uuid,
    pub admin: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PinnedMessage {
    pub sequence: u64,
    pub pinned_by: Uuid,
    #[serde(with = "time::serde::rfc3339")]
    pub pinned_at: OffsetDateTime,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"chat_id": "0190f3a1-7b2c-7d3e-8f40-5a6b7c8d9e0f", "kind": "group", "name": "Climbing", "description": "Tuesdays at the wall", "avatar_media_id": null, "members_can_edit_info": false, "members": [{"user_id": "0190f3a1-0000-7000-8000-000000000001", "admin": true}], "pinned_messages": [{"sequence": 1043, "pinned_by": "0190f3a1-0000-7000-8000-000000000001", "pinned_at": "2026-11-26T12:00:00Z"}]}))]
pub struct ChatDetails {
    pub chat_id: Uuid,
    pub kind: String,
    pub name: Option<String>,
    /// Empty when there is none.
    pub description: String,
    pub avatar_media_id: Option<Uuid>,
    /// Whether members who are not admins may edit the name, description and avatar.
    pub members_can_edit_info: bool,
    pub members: Vec<ChatMember>,
    /// Up to three, most recently pinned first.
    pub pinned_messages: Vec<PinnedMessage>,
}

/// One chat, for its members only (others get 404).
#[utoipa::path(
    get, path = "/v1/chats/{chat_id}", tag = "chats", operation_id = "chat_details", security(("bearer" = [])),
    params(("chat_id" = Uuid, Path, description = "The chat"), Consistency),
    responses(
        (status = 200, body = ChatDetails),
        (status = 404, description = "No such chat, or not a member"),
    )
)]
pub async fn details(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath(chat_id): ApiPath<Uuid>,
    ApiQuery(consistency): ApiQuery<Consistency>,
) -> Result<axum::Json<ChatDetails>, ApiError> {
    wait_for(&state, CHATS.0, CHATS.1, consistency.min_sequence).await?;
    let members: Vec<ChatMember> = chats::members(&state.pool, chat_id)
        .await
        .map_err(ApiError::internal)?
        .into_iter()
        .map(|member| ChatMember {
            user_id: member.user_id,
            admin: member.admin,
        })
        .collect();
    if !members.iter().any(|m| m.user_id == caller.user_id) {
        return Err(ApiError::not_found());
    }
    let chat = chats::info(&state.pool, chat_id)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(ApiError::not_found)?;
    let pinned_messages = chats::pins(&state.pool, chat_id)
        .await
        .map_err(ApiError::internal)?
        .into_iter()
        .map(|pin| PinnedMessage {
            sequence: pin.sequence,
            pinned_by: pin.pinned_by,
            pinned_at: pin.pinned_at,
        })
        .collect();
    let details = ChatDetails {
        chat_id,
        kind: chat.kind,
        name: chat.name,
        description: chat.description,
        avatar_media_id: chat.avatar_media_id,
        members_can_edit_info: chat.members_edit_info,
        members,
        pinned_messages,
    };
    Ok(axum::Json(details))
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
        (status = 403, description = "Not an admin"),
        (status = 404, description = "No such chat, or not a member"),
        (status = 409, description = "Concurrent change; try again"),
        (status = 422, description = "Unknown users, too many, or not a group"),
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
        (status = 403, description = "Not an admin"),
        (status = 404, description = "No such chat, or not a member"),
        (status = 409, description = "Concurrent change; try again"),
        (status = 422, description = "Not a group"),
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
        (status = 403, description = "Not an admin"),
        (status = 404, description = "No such chat or member"),
        (status = 409, description = "Concurrent change; try again"),
        (status = 422, description = "Not a group"),
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
        (status = 403, description = "Not an admin"),
        (status = 404, description = "No such chat or member"),
        (status = 409, description = "The last admin, or a concurrent change"),
        (status = 422, description = "Not a group"),
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
#[schema(example = json!({"name": "Bouldering", "description": "Tuesdays and Thursdays", "avatar_media_id": null, "members_can_edit_info": true}))]
pub struct EditGroupRequest {
    /// 1 to 100 characters.
    #[schema(min_length = 1, max_length = 400)]
    pub name: Option<String>,
    /// Up to 500 characters; empty removes it.
    #[schema(max_length = 2000)]
    pub description: Option<String>,
    /// The media id of the avatar image; `null` removes it, absent leaves it.
    #[serde(default, deserialize_with = "super::present")]
    #[schema(value_type = Option<Uuid>)]
    pub avatar_media_id: Option<Option<Uuid>>,
    /// Whether members who are not admins may change the name, description and
    /// avatar. Only admins may change this.
    pub members_can_edit_info: Option<bool>,
}

/// Edits a group's info: its name, description and avatar (admins, or every member
/// if the group allows it), and who may edit them (admins only). Fields left out stay
/// as they are.
#[utoipa::path(
    patch, path = "/v1/chats/{chat_id}", tag = "chats", security(("bearer" = [])),
    params(("chat_id" = Uuid, Path, description = "The group")),
    request_body = EditGroupRequest,
    responses(
        (status = 200, body = SequenceResponse),
        (status = 403, description = "Not allowed to edit the group's info"),
        (status = 404, description = "No such chat, or not a member"),
        (status = 409, description = "Concurrent change; try again"),
        (status = 422, description = "Not a group, or an avatar that is not an image the caller uploaded"),
    )
)]
pub async fn edit(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath(chat_id): ApiPath<Uuid>,
    ApiJson(request): ApiJson<EditGroupRequest>,
) -> Result<axum::Json<SequenceResponse>, ApiError> {
    if let Some(Some(avatar)) = request.avatar_media_id {
        // An avatar is an image the editor uploaded; members then may download it.
        let image = state
            .media
            .attach(avatar, caller.user_id, Some(chat_id))
            .await?;
        if image.is_none_or(|item| item.kind != "image") {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_avatar",
                "an avatar is an image the caller uploaded (POST /v1/media?kind=image)",
            ));
        }
    }
    let edit = GroupEdit {
        name: request
            .name
            .as_deref()
            .map(GroupName::parse)
            .transpose()
            .map_err(|e| ApiError::bad_request("invalid_name", e))?,
        description: request
            .description
            .as_deref()
            .map(Description::parse)
            .transpose()
            .map_err(|e| ApiError::bad_request("invalid_description", e))?,
        avatar: request.avatar_media_id,
        members_edit_info: request.members_can_edit_info,
    };
    change(&state, caller, chat_id, ChatCommand::Edit(edit)).await
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"code": "3f6c1a9e0b7d4e2f8a5c6b1d0e9f7a3c", "sequence": 1050}))]
pub struct InviteCreatedResponse {
    /// The invite link's secret: anyone who has it may join until it is revoked.
    pub code: String,
    pub sequence: u64,
}

/// Opens a new invite link to a group (admins only; at most ten open at once).
#[utoipa::path(
    post, path = "/v1/chats/{chat_id}/invites", tag = "chats", security(("bearer" = [])),
    params(("chat_id" = Uuid, Path, description = "The group")),
    responses(
        (status = 201, body = InviteCreatedResponse),
        (status = 403, description = "Not an admin"),
        (status = 404, description = "No such chat, or not a member"),
        (status = 409, description = "Ten links are open already, or a concurrent change"),
        (status = 422, description = "Not a group"),
    )
)]
pub async fn create_invite(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath(chat_id): ApiPath<Uuid>,
) -> Result<(StatusCode, axum::Json<InviteCreatedResponse>), ApiError> {
    let (code, sequence) = state
        .chats
        .create_invite(chat_id, caller.user_id, metadata(Some(caller.user_id)))
        .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(InviteCreatedResponse {
            code: code.into(),
            sequence,
        }),
    ))
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"codes": ["3f6c1a9e0b7d4e2f8a5c6b1d0e9f7a3c"]}))]
pub struct InviteList {
    /// The open invite codes, oldest first.
    pub codes: Vec<String>,
}

/// The group's open invite links (admins only).
#[utoipa::path(
    get, path = "/v1/chats/{chat_id}/invites", tag = "chats", security(("bearer" = [])),
    params(("chat_id" = Uuid, Path, description = "The group")),
    responses(
        (status = 200, body = InviteList),
        (status = 403, description = "Not an admin"),
        (status = 404, description = "No such chat, or not a member"),
        (status = 422, description = "Not a group"),
    )
)]
pub async fn invites(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath(chat_id): ApiPath<Uuid>,
) -> Result<axum::Json<InviteList>, ApiError> {
    let codes = state.chats.invites(chat_id, caller.user_id).await?;
    Ok(axum::Json(InviteList {
        codes: codes.into_iter().map(String::from).collect(),
    }))
}

fn invite_code(code: &str) -> Result<InviteCode, ApiError> {
    // A malformed code opens nothing, like a revoked one.
    InviteCode::parse(code).map_err(|_| ChatsError::Chat(ChatError::InviteInvalid).into())
}

/// Revokes an invite link (admins only): it lets nobody in any more.
#[utoipa::path(
    delete, path = "/v1/chats/{chat_id}/invites/{code}", tag = "chats", security(("bearer" = [])),
    params(("chat_id" = Uuid, Path, description = "The group"), ("code" = String, Path, description = "The invite code")),
    responses(
        (status = 200, body = SequenceResponse),
        (status = 403, description = "Not an admin"),
        (status = 404, description = "No such chat, or not a member"),
        (status = 409, description = "Concurrent change; try again"),
        (status = 422, description = "Not a group"),
    )
)]
pub async fn revoke_invite(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath((chat_id, code)): ApiPath<(Uuid, String)>,
) -> Result<axum::Json<SequenceResponse>, ApiError> {
    let code = invite_code(&code)?;
    change(&state, caller, chat_id, ChatCommand::RevokeInvite { code }).await
}

/// Joins the group an invite link opens. Joining a group one is in changes nothing.
#[utoipa::path(
    post, path = "/v1/invites/{code}", tag = "chats", security(("bearer" = [])),
    params(("code" = String, Path, description = "The invite code")),
    responses(
        (status = 200, description = "Joined (or a member already)", body = ChatCreated),
        (status = 404, description = "No such invite, or revoked"),
        (status = 409, description = "Concurrent change; try again"),
        (status = 422, description = "The group is full"),
    )
)]
pub async fn join_by_invite(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath(code): ApiPath<String>,
) -> Result<axum::Json<ChatCreated>, ApiError> {
    let code = invite_code(&code)?;
    let outcome = state
        .chats
        .join_by_invite(caller.user_id, code, metadata(Some(caller.user_id)))
        .await?;
    Ok(axum::Json(ChatCreated {
        chat_id: outcome.chat_id,
        sequence: outcome.last_sequence,
    }))
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

#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"pinned": true, "archived": false, "muted_until": "2026-11-27T08:00:00Z"}))]
pub struct SettingsRequest {
    /// At most three chats can be pinned.
    pub pinned: Option<bool>,
    pub archived: Option<bool>,
    /// Mute until this time; `null` unmutes; absent leaves it as it is.
    #[serde(default, deserialize_with = "super::present_time")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub muted_until: Option<Option<OffsetDateTime>>,
    /// Whether pushes for this chat's messages show who sent what (the device's own
    /// setting must allow it too). On at first.
    pub previews: Option<bool>,
}

/// Changes the caller's own settings for a chat: pin, archive, mute, push previews.
#[utoipa::path(
    put, path = "/v1/chats/{chat_id}/settings", tag = "chats", security(("bearer" = [])),
    params(("chat_id" = Uuid, Path, description = "The chat")),
    request_body = SettingsRequest,
    responses(
        (status = 200, body = SequenceResponse),
        (status = 404, description = "No such chat, or not a member"),
        (status = 409, description = "Three chats are pinned already, or a concurrent change"),
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
        previews: request.previews,
    };
    let sequence = state
        .chats
        .change_settings(caller.user_id, change, metadata(Some(caller.user_id)))
        .await?;
    Ok(axum::Json(SequenceResponse { sequence }))
}
