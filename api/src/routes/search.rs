//! Full-text search over the messages the caller can see.

use axum::extract::State;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sqlx::Row as _;
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::extract::{ApiQuery, Caller, wait_for};
use crate::{ApiError, ApiState};

/// How deep a search may page.
const MAX_OFFSET: u64 = 1_000;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// Words to find (web-search syntax: `"a phrase"`, `-not`, `or`); 1 to 200 characters.
    #[param(min_length = 1, max_length = 200)]
    pub q: String,
    /// Search one chat only.
    pub chat_id: Option<Uuid>,
    /// Page size, 1 to 50 (default 20).
    #[param(minimum = 1, maximum = 50)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Wait for the read model to reach this sequence.
    #[param(minimum = 0, maximum = 9_223_372_036_854_775_807_i64)]
    pub min_sequence: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SearchHit {
    pub chat_id: Uuid,
    pub message_id: Uuid,
    pub sequence: u64,
    pub sender: Uuid,
    /// The matching part of the message, matches between `<b>` and `</b>`.
    pub snippet: String,
    #[serde(with = "time::serde::rfc3339")]
    pub sent_at: OffsetDateTime,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"items": [{"chat_id": "0190f3a1-7b2c-7d3e-8f40-5a6b7c8d9e0f", "message_id": "0190f3a1-7b2c-7d3e-8f40-5a6b7c8d9e10", "sequence": 1043, "sender": "0190f3a1-0000-7000-8000-000000000001", "snippet": "see you at the <b>climbing</b> wall", "sent_at": "2026-11-26T12:00:00Z"}], "next_cursor": null}))]
pub struct SearchPage {
    /// Best match first.
    pub items: Vec<SearchHit>,
    pub next_cursor: Option<String>,
}

/// Searches the messages the caller can see: in chats they are in, and in chats they
/// left, up to when they left. Messages deleted for everyone, or by the caller for
/// themselves, are not found.
#[utoipa::path(
    get, path = "/v1/search/messages", tag = "messages", security(("bearer" = [])),
    params(SearchQuery),
    responses((status = 200, body = SearchPage))
)]
pub async fn search_messages(
    State(state): State<ApiState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<SearchQuery>,
) -> Result<axum::Json<SearchPage>, ApiError> {
    let text = query.q.trim();
    if text.is_empty() || text.chars().count() > 200 || text.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            "invalid_query",
            "q is 1 to 200 characters",
        ));
    }
    let limit = query.limit.unwrap_or(20);
    if !(1..=50).contains(&limit) {
        return Err(ApiError::bad_request("invalid_query", "limit is 1 to 50"));
    }
    let offset = match &query.cursor {
        None => 0,
        Some(cursor) => URL_SAFE_NO_PAD
            .decode(cursor)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .and_then(|text| text.parse::<u64>().ok())
            .filter(|offset| *offset <= MAX_OFFSET)
            .ok_or_else(|| ApiError::bad_request("invalid_cursor", "not a cursor from this API"))?,
    };
    wait_for(&state, "chats", 1, query.min_sequence).await?;
    let rows = sqlx::query(
        "WITH q AS (SELECT websearch_to_tsquery('simple', $2) AS query)
         SELECT m.chat_id, m.message_id, m.sequence, m.sender, m.sent_at,
                ts_headline('simple', m.body, q.query, 'StartSel=<b>, StopSel=</b>, MaxFragments=2, MaxWords=20, MinWords=5') AS snippet
         FROM q, messages_v1 m
         JOIN chat_members_v1 cm ON cm.chat_id = m.chat_id AND cm.user_id = $1
         WHERE m.search @@ q.query
           AND m.sequence >= cm.joined_sequence
           AND (cm.left_sequence IS NULL OR m.sequence < cm.left_sequence)
           AND ($3::uuid IS NULL OR m.chat_id = $3)
           AND NOT EXISTS (SELECT 1 FROM message_hidden_v1 h
                           WHERE h.user_id = $1 AND h.chat_id = m.chat_id AND h.sequence = m.sequence)
         ORDER BY ts_rank(m.search, q.query) DESC, m.sequence DESC
         LIMIT $4 OFFSET $5",
    )
    .bind(caller.user_id)
    .bind(text)
    .bind(query.chat_id)
    .bind(i64::from(limit) + 1)
    .bind(i64::try_from(offset).unwrap_or(0))
    .fetch_all(&state.pool)
    .await
    .map_err(ApiError::internal)?;
    let mut items = rows
        .iter()
        .map(|row| {
            let sequence: i64 = row.try_get("sequence")?;
            Ok(SearchHit {
                chat_id: row.try_get("chat_id")?,
                message_id: row.try_get("message_id")?,
                sequence: u64::try_from(sequence).unwrap_or(0),
                sender: row.try_get("sender")?,
                snippet: row.try_get("snippet")?,
                sent_at: row.try_get("sent_at")?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()
        .map_err(ApiError::internal)?;
    let next_offset = offset + u64::from(limit);
    let next_cursor = if items.len() > limit as usize && next_offset <= MAX_OFFSET {
        items.truncate(limit as usize);
        Some(URL_SAFE_NO_PAD.encode(next_offset.to_string()))
    } else {
        items.truncate(limit as usize);
        None
    };
    Ok(axum::Json(SearchPage { items, next_cursor }))
}
