//! Full-text search over the messages the caller can see.
//!
//! Across all chats, a search ranks within recency bands: it first counts matches in the
//! newest 16,384 sequences, and widens the band fourfold until it holds 200 matches or
//! reaches the beginning; the band's matches are ranked, and the cursor then moves into
//! the next older band. An index on `sequence` intersected with the text index means only
//! matches in the band are read, so a common word costs what a rare one does. A search in
//! one chat ranks all that chat's matches, with no band bounds (with them Postgres
//! intersected the text index with the chat's whole key range). Deletes for oneself are
//! left out.

use axum::extract::State;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use natter_projections::reads;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::extract::{ApiQuery, Caller, wait_for};
use crate::{ApiError, ApiState};

/// How deep a search may page within one band.
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

/// The newest band searched first, in stream sequences; each older band is four times
/// the one before.
const FIRST_BAND: i64 = 16_384;
/// A band is widened (towards the past) until it holds this many matches, so that
/// ranking has something to choose from.
const CANDIDATES: i64 = 200;

/// Where a search stands: the band of sequences `[floor, ceiling)` being ranked, and
/// how far into its ranking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cursor {
    ceiling: i64,
    floor: i64,
    offset: u64,
}

impl Cursor {
    fn encode(self) -> String {
        URL_SAFE_NO_PAD.encode(format!("{}.{}.{}", self.ceiling, self.floor, self.offset))
    }

    fn decode(text: &str) -> Option<Self> {
        let text = String::from_utf8(URL_SAFE_NO_PAD.decode(text).ok()?).ok()?;
        let mut parts = text.split('.');
        let cursor = Self {
            ceiling: parts.next()?.parse().ok()?,
            floor: parts.next()?.parse().ok()?,
            offset: parts.next()?.parse().ok()?,
        };
        let valid = parts.next().is_none()
            && 0 <= cursor.floor
            && cursor.floor < cursor.ceiling
            && cursor.offset <= MAX_OFFSET;
        valid.then_some(cursor)
    }
}

/// Searches the messages the caller can see: in chats they are in, and in chats they
/// left, up to when they left. Messages deleted for everyone, or by the caller for
/// themselves, are not found. Results come newest band first, ranked by relevance
/// within a band: a band is a stretch of recent history widened until it holds enough
/// matches, so a common word costs no more than a rare one. Follow `next_cursor` into
/// older bands. A search in one chat ranks all its matches at once.
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
    super::check_text_query(text, 200)?;
    let limit = query.limit.unwrap_or(20);
    if !(1..=50).contains(&limit) {
        return Err(ApiError::bad_request("invalid_query", "limit is 1 to 50"));
    }
    let cursor = match &query.cursor {
        None => None,
        Some(text) => Some(Cursor::decode(text).ok_or_else(|| {
            ApiError::bad_request("invalid_cursor", "not a cursor from this API")
        })?),
    };
    let (chats, version) = super::chats::CHATS;
    wait_for(&state, chats, version, query.min_sequence).await?;
    let search = Search {
        state: &state,
        search: reads::search::Search {
            user: caller.user_id,
            text,
            chat_id: query.chat_id,
        },
    };
    let cursor = match cursor {
        Some(cursor) => cursor,
        None => {
            let top = reads::search::first_ceiling(&state.pool)
                .await
                .map_err(ApiError::internal)?;
            search.band(top).await?
        }
    };
    let mut items = search.page(cursor, limit).await?;
    let offset = cursor.offset + u64::from(limit);
    let more_here = items.len() > limit as usize;
    items.truncate(limit as usize);
    let next_cursor = if more_here && offset <= MAX_OFFSET {
        Some(Cursor { offset, ..cursor }.encode())
    } else if cursor.floor > 0 {
        // This band is done: on to the next older one.
        Some(search.band(cursor.floor).await?.encode())
    } else {
        None
    };
    Ok(axum::Json(SearchPage { items, next_cursor }))
}

/// One caller's search.
struct Search<'a> {
    state: &'a ApiState,
    search: reads::search::Search<'a>,
}

impl Search<'_> {
    /// The band below `ceiling`: widened until it holds enough matches or reaches the
    /// beginning of the log.
    async fn band(&self, ceiling: i64) -> Result<Cursor, ApiError> {
        // One chat's matches are few enough to rank them all.
        let mut width = if self.search.chat_id.is_some() {
            ceiling
        } else {
            FIRST_BAND
        };
        loop {
            let floor = (ceiling - width).max(0);
            if floor == 0 {
                return Ok(Cursor {
                    ceiling,
                    floor,
                    offset: 0,
                });
            }
            let band = reads::search::Band { floor, ceiling };
            let found = reads::search::count(&self.state.pool, &self.search, band, CANDIDATES)
                .await
                .map_err(ApiError::internal)?;
            if found >= CANDIDATES {
                return Ok(Cursor {
                    ceiling,
                    floor,
                    offset: 0,
                });
            }
            width = width.saturating_mul(4);
        }
    }

    /// Up to `limit + 1` matches of the cursor's band, best first, from its offset.
    async fn page(&self, cursor: Cursor, limit: u32) -> Result<Vec<SearchHit>, ApiError> {
        let band = reads::search::Band {
            floor: cursor.floor,
            ceiling: cursor.ceiling,
        };
        let hits = reads::search::page(
            &self.state.pool,
            &self.search,
            band,
            cursor.offset,
            limit + 1,
        )
        .await
        .map_err(ApiError::internal)?;
        Ok(hits
            .into_iter()
            .map(|hit| SearchHit {
                chat_id: hit.chat_id,
                message_id: hit.message_id,
                sequence: hit.sequence,
                sender: hit.sender,
                snippet: hit.snippet,
                sent_at: hit.sent_at,
            })
            .collect())
    }
}
