//! Messages: sending (with replies, mentions and forwards), history, receipts, edits,
//! deletes, reactions, stars and pins.

use axum::extract::State;
use axum::http::StatusCode;
use natter_commands::chats::ChatsError;
use natter_commands::messages::{EarlierSend, NewMessage, earlier_send_in};
use natter_domain::chat::{Attachment, MessageAction};
use natter_projections::reads::{chats, messages};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use super::chats::CHATS;
use super::{SequenceResponse, metadata};
use crate::extract::{ApiJson, ApiPath, ApiQuery, Caller, wait_for};
use crate::{ApiError, ApiState};

#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"client_id": "019af3a1-7b2c-7d3e-8f40-5a6b7c8d9e10", "body": "See you at 8, @Bo?", "reply_to": 1040, "mentions": ["0190f3a1-0000-7000-8000-000000000002"]}))]
pub struct SendRequest {
    /// The client's id for this send (1 to 64 printable ASCII characters): a retry with
    /// the same id is stored once, however much later it comes. A UUIDv7 made when the
    /// message was written is the fastest (a retry within the event log's deduplication
    /// window is then answered without a database lookup); one dated more than 30 s
    /// ahead of the server's clock is refused (`client_id_ahead`).
    #[schema(min_length = 1, max_length = 64)]
    pub client_id: String,
    /// The text: not blank, at most 64 KiB of UTF-8. Required unless forwarding or
    /// sending an attachment, whose caption it then is (and may be empty).
    #[schema(max_length = 65536)]
    pub body: Option<String>,
    /// The sequence of the message this one replies to, in the same chat.
    #[schema(minimum = 0)]
    pub reply_to: Option<u64>,
    /// Members this message mentions (up to 64); others are dropped.
    #[serde(default)]
    #[schema(max_items = 64)]
    pub mentions: Vec<Uuid>,
    /// Forwards a message the caller can see, instead of sending a body.
    pub forward: Option<ForwardSource>,
    /// A media item the caller uploaded, a place, or a contact card.
    pub attachment: Option<AttachmentRequest>,
}

/// What a message may carry besides its text.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum AttachmentRequest {
    /// A media item the caller uploaded (`POST /v1/media`).
    Media { media_id: Uuid },
    /// A place: degrees north and east, and an optional name (at most 100 characters).
    Location {
        #[schema(minimum = -90, maximum = 90)]
        latitude: f64,
        #[schema(minimum = -180, maximum = 180)]
        longitude: f64,
        #[schema(max_length = 100)]
        name: Option<String>,
    },
    /// A contact card: a name (1 to 100 characters) and a phone number (digits, spaces,
    /// `+ - ( )`, at most 32), a Natter user, or both.
    Contact {
        #[schema(min_length = 1, max_length = 100)]
        name: String,
        #[schema(max_length = 32)]
        phone: Option<String>,
        user_id: Option<Uuid>,
    },
}

/// What a message carries besides its text, as answers show it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
#[allow(dead_code)] // The shape of the stored JSON, for the document only.
pub enum AttachmentView {
    /// A media item; its details at `/v1/media/{media_id}`, its bytes at
    /// `/v1/media/{media_id}/content`.
    Media {
        media_id: Uuid,
        /// `image`, `voice`, `video` or `document`.
        kind: String,
        content_type: String,
    },
    /// A place, in ten-millionths of a degree.
    Location {
        latitude_e7: i32,
        longitude_e7: i32,
        name: Option<String>,
    },
    /// A contact card.
    Contact {
        name: String,
        phone: Option<String>,
        user_id: Option<Uuid>,
    },
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct ForwardSource {
    pub chat_id: Uuid,
    #[schema(minimum = 0)]
    pub sequence: u64,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"message_id": "0190f3a1-7b2c-7d3e-8f40-5a6b7c8d9e10", "sequence": 1043}))]
pub struct SentResponse {
    pub message_id: Uuid,
    /// The message's stream sequence: its place in the chat, and a consistency token.
    pub sequence: u64,
}

/// Sends a message to a chat the caller is in: a text (optionally replying to a
/// message of the chat and mentioning members), or a forward of a message the caller
/// can see elsewhere, marked as forwarded with its hop count.
#[utoipa::path(
    post, path = "/v1/chats/{chat_id}/messages", tag = "messages", security(("bearer" = [])),
    params(("chat_id" = Uuid, Path, description = "The chat")),
    request_body = SendRequest,
    responses(
        (status = 201, description = "Sent", body = SentResponse),
        (status = 200, description = "Sent before with this client id", body = SentResponse),
        (status = 403, description = "Blocked"),
        (status = 404, description = "No such chat (or message to forward), or not a member"),
        (status = 409, description = "The message to forward was deleted, or the chat kept changing"),
        (status = 422, description = "The client id was used for another message (`client_id_reused`), is a UUIDv7 dated more than 30 s ahead of the server's clock (`client_id_ahead`), or the reply is not in this chat"),
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
    if request.mentions.len() > natter_domain::chat::MAX_MENTIONS {
        return Err(ApiError::bad_request(
            "too_many_mentions",
            "a message mentions at most 64 members",
        ));
    }
    let (body, forwarded, attachment) = match (&request.body, &request.forward, &request.attachment)
    {
        (body, None, Some(attachment)) => (
            body.clone().unwrap_or_default(),
            0,
            Some(attachment_of(&state, caller.user_id, chat_id, attachment).await?),
        ),
        (Some(body), None, None) => (body.clone(), 0, None),
        (None, Some(source), None) if request.reply_to.is_none() => {
            forward_source(&state, caller.user_id, source).await?
        }
        _ => {
            return Err(ApiError::bad_request(
                "invalid_message",
                "send a body, an attachment (with an optional caption), or forward a \
                     message (without a reply)",
            ));
        }
    };
    let body = if attachment.is_some() {
        natter_domain::chat::MessageBody::caption(&body)
    } else {
        natter_domain::chat::MessageBody::parse(&body)
    }
    .map_err(|e| ApiError::bad_request("invalid_body_text", e))?;
    let message = NewMessage {
        client_id,
        body,
        reply_to: request.reply_to,
        mentions: request.mentions,
        forwarded,
        attachment,
    };
    if let Some(reply_to) = message.reply_to {
        // A reply to what the caller cannot see is a reply to nothing in the chat.
        if messages::seen_by(&state.pool, chat_id, caller.user_id, reply_to)
            .await
            .map_err(ApiError::internal)?
            .is_none()
        {
            return Err(ChatsError::Chat(natter_domain::chat::ChatError::ReplyNotInChat).into());
        }
    }
    let look_up = earlier_send_in(
        &message.client_id,
        state.log.config().duplicate_window,
        std::time::SystemTime::now(),
    )? == EarlierSend::LookUp;
    if look_up
        && let Some(earlier) = earlier_send(&state, chat_id, caller.user_id, &message).await?
    {
        return Ok((StatusCode::OK, axum::Json(earlier)));
    }
    let sent = state
        .messages
        .send(
            chat_id,
            caller.user_id,
            message,
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

/// What `request` attaches, checked: a media item must be the caller's own upload, and
/// its share to `chat_id` is recorded.
async fn attachment_of(
    state: &ApiState,
    user: Uuid,
    chat_id: Uuid,
    request: &AttachmentRequest,
) -> Result<Attachment, ApiError> {
    let invalid = |detail: &str| ApiError::bad_request("invalid_attachment", detail);
    let text = |value: &str, max: usize| {
        let value = value.trim();
        (value.chars().count() <= max && !value.chars().any(char::is_control))
            .then(|| value.to_owned())
    };
    match request {
        AttachmentRequest::Media { media_id } => {
            let shared = state.media.attach(*media_id, user, Some(chat_id)).await?;
            let item = shared.ok_or_else(|| {
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "unknown_media",
                    "no media item of the caller's has this id; upload it first",
                )
            })?;
            Ok(Attachment::Media {
                media_id: item.media_id,
                kind: item.kind,
                content_type: item.content_type,
            })
        }
        AttachmentRequest::Location {
            latitude,
            longitude,
            name,
        } => {
            if !(latitude.is_finite()
                && longitude.is_finite()
                && (-90.0..=90.0).contains(latitude)
                && (-180.0..=180.0).contains(longitude))
            {
                return Err(invalid(
                    "latitude is within ±90 degrees, longitude within ±180",
                ));
            }
            let name = match name {
                Some(name) => Some(
                    text(name, 100)
                        .ok_or_else(|| invalid("a place's name has at most 100 characters"))?,
                ),
                None => None,
            }
            .filter(|name| !name.is_empty());
            // Exact: |latitude| * 1e7 fits an i32, and rounding keeps a centimetre.
            #[allow(clippy::cast_possible_truncation)]
            let e7 = |degrees: f64| (degrees * 1e7).round() as i32;
            Ok(Attachment::Location {
                latitude_e7: e7(*latitude),
                longitude_e7: e7(*longitude),
                name,
            })
        }
        AttachmentRequest::Contact {
            name,
            phone,
            user_id,
        } => {
            let name = text(name, 100)
                .filter(|name| !name.is_empty())
                .ok_or_else(|| invalid("a contact's name has 1 to 100 characters"))?;
            let phone = match phone {
                Some(phone) => {
                    let phone = phone.trim();
                    let plausible = (1..=32).contains(&phone.len())
                        && phone.chars().any(|c| c.is_ascii_digit())
                        && phone
                            .chars()
                            .all(|c| c.is_ascii_digit() || " +-()".contains(c));
                    if !plausible {
                        return Err(invalid(
                            "a phone number has digits, spaces and + - ( ), at most 32",
                        ));
                    }
                    Some(phone.to_owned())
                }
                None => None,
            };
            if phone.is_none() && user_id.is_none() {
                return Err(invalid(
                    "a contact card has a phone number, a user, or both",
                ));
            }
            Ok(Attachment::Contact {
                name,
                phone,
                user_id: *user_id,
            })
        }
    }
}

/// The body, hop count and attachment of a message the caller can see, to forward it.
async fn forward_source(
    state: &ApiState,
    user: Uuid,
    source: &ForwardSource,
) -> Result<(String, u32, Option<Attachment>), ApiError> {
    let message = messages::visible(&state.pool, user, source.chat_id, source.sequence)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(ApiError::not_found)?;
    if message.deleted {
        return Err(ChatsError::Chat(natter_domain::chat::ChatError::MessageDeleted).into());
    }
    let attachment = message
        .attachment
        .map(serde_json::from_value::<Attachment>)
        .transpose()
        .map_err(ApiError::internal)?;
    Ok((
        message.body,
        message.forwarded.saturating_add(1),
        attachment,
    ))
}

/// A retry perhaps later than the log's deduplication window: the read model has the
/// first.
async fn earlier_send(
    state: &ApiState,
    chat_id: Uuid,
    sender: Uuid,
    message: &NewMessage,
) -> Result<Option<SentResponse>, ApiError> {
    let earlier = state
        .sent_lookup
        .find(chat_id, sender, message.client_id.as_str())
        .await
        .map_err(ApiError::internal)?;
    let Some(earlier) = earlier else {
        return Ok(None);
    };
    // A deleted message's body is gone: its id alone says it is the same send.
    let same = earlier.deleted || message.same_send(&earlier.body, earlier.reply_to);
    if !same {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "client_id_reused",
            "this client id was used for a different message",
        ));
    }
    Ok(Some(SentResponse {
        message_id: earlier.message_id,
        sequence: earlier.sequence,
    }))
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
    /// Only the messages on one shelf of the chat's gallery.
    pub shelf: Option<Shelf>,
}

/// A shelf of a chat's gallery. Messages deleted for everyone are on none.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Shelf {
    /// Photos and videos.
    Media,
    /// Documents.
    Documents,
    /// Messages whose text holds a web address (`http://` or `https://`).
    Links,
}

impl From<Shelf> for messages::Shelf {
    fn from(shelf: Shelf) -> Self {
        match shelf {
            Shelf::Media => Self::Media,
            Shelf::Documents => Self::Documents,
            Shelf::Links => Self::Links,
        }
    }
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
    /// The sequence of the message this one replies to.
    pub reply_to: Option<u64>,
    /// The members this message mentions.
    pub mentions: Vec<Uuid>,
    /// 0 for an original; for a forward, how many hops it has come.
    pub forwarded: u32,
    #[serde(with = "time::serde::rfc3339")]
    pub sent_at: OffsetDateTime,
    pub edited: bool,
    /// Deleted for everyone: a tombstone.
    pub deleted: bool,
    /// Starred by the caller.
    pub starred: bool,
    /// Pinned in the chat.
    pub pinned: bool,
    /// Each reaction with how many members chose it, most chosen first.
    pub reactions: Vec<ReactionCount>,
    /// A media item (`{"type": "media", "media_id", "kind", "content_type"}`; its bytes
    /// at `/v1/media/{media_id}/content`), a place (`{"type": "location",
    /// "latitude_e7", "longitude_e7", "name"}`, in ten-millionths of a degree) or a
    /// contact card (`{"type": "contact", "name", "phone", "user_id"}`).
    #[schema(value_type = Option<AttachmentView>)]
    pub attachment: Option<serde_json::Value>,
    /// For the caller's own messages: `sent`, `delivered` (to every other member) or
    /// `read` (by every other member). Members who turned read receipts off never
    /// count as having read.
    pub receipt: Option<String>,
}

fn receipt(sequence: u64, recipients: &[messages::Recipient]) -> &'static str {
    let concerned: Vec<&messages::Recipient> =
        recipients.iter().filter(|r| r.joined < sequence).collect();
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
/// to page back, `after` to page forward; with `shelf`, only that shelf of the chat's
/// gallery. A former member sees what was sent while they were in the chat, and nothing
/// after.
#[utoipa::path(
    get, path = "/v1/chats/{chat_id}/messages", tag = "messages", security(("bearer" = [])),
    params(("chat_id" = Uuid, Path, description = "The chat"), HistoryQuery),
    responses(
        (status = 200, body = MessagePage),
        (status = 404, description = "No such chat, or never a member"),
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
    let page = match (query.before, query.after) {
        (_, Some(after)) => messages::Page::After(after),
        (Some(before), None) => messages::Page::Before(before),
        (None, None) => messages::Page::Latest,
    };
    let shelf = query.shelf.map_or(messages::Shelf::All, Into::into);
    let rows = messages::history(
        &state.pool,
        chat_id,
        caller.user_id,
        (page, shelf),
        limit + 1,
    )
    .await
    .map_err(ApiError::internal)?
    .ok_or_else(ApiError::not_found)?;
    let recipients = messages::recipients(&state.pool, chat_id, caller.user_id)
        .await
        .map_err(ApiError::internal)?;
    let has_more = rows.len() > limit as usize;
    let mut items: Vec<Message> = rows
        .into_iter()
        .take(limit as usize)
        .map(|message| Message {
            message_id: message.message_id,
            sequence: message.sequence,
            sender: message.sender,
            body: message.body,
            reply_to: message.reply_to,
            mentions: message.mentions,
            forwarded: message.forwarded,
            sent_at: message.sent_at,
            edited: message.edited,
            deleted: message.deleted,
            starred: message.starred,
            pinned: message.pinned,
            reactions: message
                .reactions
                .into_iter()
                .map(|reaction| ReactionCount {
                    reaction: reaction.reaction,
                    count: reaction.count,
                })
                .collect(),
            attachment: message.attachment,
            receipt: (message.sender == caller.user_id)
                .then(|| receipt(message.sequence, &recipients).to_owned()),
        })
        .collect();
    if !matches!(page, messages::Page::After(_)) {
        items.reverse();
    }
    Ok(axum::Json(MessagePage { items, has_more }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"up_to": 1043}))]
pub struct ReadRequest {
    /// The sequence of the newest message read.
    #[schema(minimum = 0, maximum = 9_223_372_036_854_775_807_i64)]
    pub up_to: u64,
}

/// Marks the chat read up to a message: the caller's unread count clears up to there.
///
/// A marker at or below the caller's changes nothing: it is stored and sent to no one.
#[utoipa::path(
    post, path = "/v1/chats/{chat_id}/read", tag = "messages", security(("bearer" = [])),
    params(("chat_id" = Uuid, Path, description = "The chat")),
    request_body = ReadRequest,
    responses(
        (status = 200, description = "The marker's sequence; for a marker that did not move, the chat's current sequence", body = SequenceResponse),
        (status = 404, description = "No such chat, or not a member"),
        (status = 409, description = "The chat kept changing; try again"),
        (status = 429, description = MARKERS_LIMITED),
    )
)]
pub async fn mark_read(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath(chat_id): ApiPath<Uuid>,
    ApiJson(request): ApiJson<ReadRequest>,
) -> Result<axum::Json<SequenceResponse>, ApiError> {
    let up_to = super::check_up_to(request.up_to)?;
    check_marker_limit(&state, caller.user_id)?;
    let known = chats::markers(&state.pool, chat_id, caller.user_id)
        .await
        .map_err(ApiError::internal)?;
    let sequence = state
        .messages
        .advance_read(
            chat_id,
            caller.user_id,
            up_to,
            known.read,
            metadata(Some(caller.user_id)),
        )
        .await?;
    Ok(axum::Json(SequenceResponse { sequence }))
}

const MARKERS_LIMITED: &str = "Too many read and delivered markers from this user (120 a \
    minute by default, in bursts of up to as many); retry after Retry-After";

/// Every marker goes to every member of the chat, so a user's markers (read and
/// delivered together) are limited.
fn check_marker_limit(state: &ApiState, user: Uuid) -> Result<(), ApiError> {
    state
        .limiter
        .check(
            &format!("markers:user:{user}"),
            state.config.markers_per_user,
        )
        .map_err(|wait| ApiError::too_many_requests(wait.as_secs() + 1))
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
        (status = 403, description = "Not the author"),
        (status = 404, description = "No such chat or message, or not a member"),
        (status = 409, description = "The edit window has closed, or a concurrent change"),
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
    act(&state, caller, chat_id, sequence, MessageAction::Edit(body)).await
}

#[derive(Debug, Clone, Copy, Default, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeleteScope {
    /// For every member: the author, or a group admin. A tombstone stays.
    #[default]
    Everyone,
    /// From the caller's own history, search and stars only.
    Me,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeleteQuery {
    /// `everyone` (the default) or `me`.
    pub scope: Option<DeleteScope>,
}

/// Deletes a message: for everyone (its author, or a group admin; a tombstone stays),
/// or with `scope=me` for the caller alone (any message they can see).
#[utoipa::path(
    delete, path = "/v1/chats/{chat_id}/messages/{sequence}", tag = "messages", security(("bearer" = [])),
    params(("chat_id" = Uuid, Path, description = "The chat"), ("sequence" = u64, Path, description = "The message's sequence"), DeleteQuery),
    responses(
        (status = 200, body = SequenceResponse),
        (status = 403, description = "Neither author nor admin"),
        (status = 404, description = "No such chat or message, or not a member"),
        (status = 409, description = "Concurrent change; try again"),
    )
)]
pub async fn delete_message(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath((chat_id, sequence)): ApiPath<(Uuid, u64)>,
    ApiQuery(query): ApiQuery<DeleteQuery>,
) -> Result<axum::Json<SequenceResponse>, ApiError> {
    let action = match query.scope.unwrap_or_default() {
        DeleteScope::Everyone => MessageAction::DeleteForEveryone,
        DeleteScope::Me => MessageAction::DeleteForMe,
    };
    act(&state, caller, chat_id, sequence, action).await
}

/// Stars a message for the caller.
#[utoipa::path(
    put, path = "/v1/chats/{chat_id}/messages/{sequence}/star", tag = "messages", security(("bearer" = [])),
    params(("chat_id" = Uuid, Path, description = "The chat"), ("sequence" = u64, Path, description = "The message's sequence")),
    responses(
        (status = 200, body = SequenceResponse),
        (status = 404, description = "No such chat or message, or not a member"),
        (status = 409, description = "Concurrent change; try again"),
    )
)]
pub async fn star(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath((chat_id, sequence)): ApiPath<(Uuid, u64)>,
) -> Result<axum::Json<SequenceResponse>, ApiError> {
    act(&state, caller, chat_id, sequence, MessageAction::Star(true)).await
}

/// Unstars a message.
#[utoipa::path(
    delete, path = "/v1/chats/{chat_id}/messages/{sequence}/star", tag = "messages", security(("bearer" = [])),
    params(("chat_id" = Uuid, Path, description = "The chat"), ("sequence" = u64, Path, description = "The message's sequence")),
    responses(
        (status = 200, body = SequenceResponse),
        (status = 404, description = "No such chat or message, or not a member"),
        (status = 409, description = "Concurrent change; try again"),
    )
)]
pub async fn unstar(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath((chat_id, sequence)): ApiPath<(Uuid, u64)>,
) -> Result<axum::Json<SequenceResponse>, ApiError> {
    act(
        &state,
        caller,
        chat_id,
        sequence,
        MessageAction::Star(false),
    )
    .await
}

/// Pins a message at the top of the chat (admins in groups, either member in a direct
/// chat). A chat shows its three latest pins; a fourth pushes the oldest out.
#[utoipa::path(
    put, path = "/v1/chats/{chat_id}/messages/{sequence}/pin", tag = "messages", security(("bearer" = [])),
    params(("chat_id" = Uuid, Path, description = "The chat"), ("sequence" = u64, Path, description = "The message's sequence")),
    responses(
        (status = 200, body = SequenceResponse),
        (status = 403, description = "Not an admin of the group"),
        (status = 404, description = "No such chat or message, or not a member"),
        (status = 409, description = "Concurrent change; try again"),
    )
)]
pub async fn pin(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath((chat_id, sequence)): ApiPath<(Uuid, u64)>,
) -> Result<axum::Json<SequenceResponse>, ApiError> {
    act(&state, caller, chat_id, sequence, MessageAction::Pin(true)).await
}

/// Unpins a message (admins in groups, either member in a direct chat).
#[utoipa::path(
    delete, path = "/v1/chats/{chat_id}/messages/{sequence}/pin", tag = "messages", security(("bearer" = [])),
    params(("chat_id" = Uuid, Path, description = "The chat"), ("sequence" = u64, Path, description = "The message's sequence")),
    responses(
        (status = 200, body = SequenceResponse),
        (status = 403, description = "Not an admin of the group"),
        (status = 404, description = "No such chat or message, or not a member"),
        (status = 409, description = "Concurrent change; try again"),
    )
)]
pub async fn unpin(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath((chat_id, sequence)): ApiPath<(Uuid, u64)>,
) -> Result<axum::Json<SequenceResponse>, ApiError> {
    act(&state, caller, chat_id, sequence, MessageAction::Pin(false)).await
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StarredQuery {
    /// Stars older than this time (exclusive): the `starred_at` of the last item of
    /// the previous page.
    #[param(value_type = Option<String>, format = DateTime)]
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub before: Option<OffsetDateTime>,
    /// Page size, 1 to 100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// Wait for the read model to reach this sequence.
    #[param(minimum = 0, maximum = 9_223_372_036_854_775_807_i64)]
    pub min_sequence: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StarredMessage {
    pub chat_id: Uuid,
    pub sequence: u64,
    pub message_id: Uuid,
    pub sender: Uuid,
    pub body: String,
    #[serde(with = "time::serde::rfc3339")]
    pub sent_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub starred_at: OffsetDateTime,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"items": [{"chat_id": "0190f3a1-7b2c-7d3e-8f40-5a6b7c8d9e0f", "sequence": 1043, "message_id": "0190f3a1-7b2c-7d3e-8f40-5a6b7c8d9e10", "sender": "0190f3a1-0000-7000-8000-000000000001", "body": "The code is 4711", "sent_at": "2026-11-26T12:00:00Z", "starred_at": "2026-11-26T12:05:00Z"}], "has_more": false}))]
pub struct StarredPage {
    /// Most recently starred first.
    pub items: Vec<StarredMessage>,
    pub has_more: bool,
}

/// The caller's starred messages, most recently starred first, from chats they can
/// still see them in.
#[utoipa::path(
    get, path = "/v1/starred", tag = "messages", security(("bearer" = [])),
    params(StarredQuery),
    responses((status = 200, body = StarredPage))
)]
pub async fn starred(
    State(state): State<ApiState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<StarredQuery>,
) -> Result<axum::Json<StarredPage>, ApiError> {
    let limit = query.limit.unwrap_or(50);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::bad_request("invalid_query", "limit is 1 to 100"));
    }
    wait_for(&state, CHATS.0, CHATS.1, query.min_sequence).await?;
    let rows = messages::starred(&state.pool, caller.user_id, query.before, limit + 1)
        .await
        .map_err(ApiError::internal)?;
    let has_more = rows.len() > limit as usize;
    let items = rows
        .into_iter()
        .take(limit as usize)
        .map(|star| StarredMessage {
            chat_id: star.chat_id,
            sequence: star.sequence,
            message_id: star.message_id,
            sender: star.sender,
            body: star.body,
            sent_at: star.sent_at,
            starred_at: star.starred_at,
        })
        .collect();
    Ok(axum::Json(StarredPage { items, has_more }))
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
        (status = 404, description = "No such chat or message, or not a member"),
        (status = 409, description = "Concurrent change; try again"),
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
        MessageAction::React(Some(reaction)),
    )
    .await
}

/// Removes the caller's reaction to a message.
#[utoipa::path(
    delete, path = "/v1/chats/{chat_id}/messages/{sequence}/reaction", tag = "messages", security(("bearer" = [])),
    params(("chat_id" = Uuid, Path, description = "The chat"), ("sequence" = u64, Path, description = "The message's sequence")),
    responses(
        (status = 200, body = SequenceResponse),
        (status = 404, description = "No such chat or message, or not a member"),
        (status = 409, description = "Concurrent change; try again"),
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
        MessageAction::React(None),
    )
    .await
}

async fn act(
    state: &ApiState,
    caller: Caller,
    chat_id: Uuid,
    sequence: u64,
    action: MessageAction,
) -> Result<axum::Json<SequenceResponse>, ApiError> {
    let seen = messages::seen_by(&state.pool, chat_id, caller.user_id, sequence)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(ApiError::not_found)?;
    if action.adds() && seen.deleted {
        return Err(ChatsError::Chat(natter_domain::chat::ChatError::MessageDeleted).into());
    }
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
///
/// A marker at or below the caller's (a read marker counts) changes nothing: it is
/// stored and sent to no one.
#[utoipa::path(
    post, path = "/v1/chats/{chat_id}/delivered", tag = "messages", security(("bearer" = [])),
    params(("chat_id" = Uuid, Path, description = "The chat")),
    request_body = ReadRequest,
    responses(
        (status = 200, description = "The marker's sequence; for a marker that did not move, the chat's current sequence", body = SequenceResponse),
        (status = 404, description = "No such chat, or not a member"),
        (status = 409, description = "The chat kept changing; try again"),
        (status = 429, description = MARKERS_LIMITED),
    )
)]
pub async fn mark_delivered(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath(chat_id): ApiPath<Uuid>,
    ApiJson(request): ApiJson<ReadRequest>,
) -> Result<axum::Json<SequenceResponse>, ApiError> {
    let up_to = super::check_up_to(request.up_to)?;
    check_marker_limit(&state, caller.user_id)?;
    let known = chats::markers(&state.pool, chat_id, caller.user_id)
        .await
        .map_err(ApiError::internal)?;
    let sequence = state
        .messages
        .advance_delivered(
            chat_id,
            caller.user_id,
            up_to,
            known.delivered,
            metadata(Some(caller.user_id)),
        )
        .await?;
    Ok(axum::Json(SequenceResponse { sequence }))
}
