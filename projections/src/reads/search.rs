//! Full-text search over the messages a member can see, in the chats read model: the
//! matches in a band of sequences, counted or ranked. Deletes for oneself are left out.
//!
//! The queries are not prepared: each is planned for its own values. A prepared one
//! soon runs a generic plan, which guesses one chat for any member and knows no chat in
//! `$3 IS NULL OR chat_id = $3`. Once Postgres had statistics of a million messages, that
//! plan probed the text index once per chat of the member: 200 to 600 ms a search where
//! a plan for the values takes tens of milliseconds (`natter bench queries`, issue 18).

use std::sync::LazyLock;

use sqlx::{PgPool, Row as _};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{sequence, table};
use crate::{Chats, Projection};

/// One user's search.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Search<'a> {
    pub user: Uuid,
    /// Words to find, in web-search syntax.
    pub text: &'a str,
    /// One chat only.
    pub chat_id: Option<Uuid>,
}

/// A band of stream sequences, `[floor, ceiling)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Band {
    pub floor: i64,
    pub ceiling: i64,
}

/// A message found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    pub chat_id: Uuid,
    pub message_id: Uuid,
    pub sequence: u64,
    pub sender: Uuid,
    /// The matching part of the message, matches between `<b>` and `</b>`.
    pub snippet: String,
    pub sent_at: OffsetDateTime,
}

/// The matches the caller can see, in the band `[$5, $6)` when `banded`. A search in
/// one chat ranks the whole chat and leaves the bounds out: with them, Postgres
/// intersects the text index with the chat's whole key range.
fn visible_matches(banded: bool) -> String {
    let band = if banded {
        "m.sequence >= $5 AND m.sequence < $6"
    } else {
        "$5::bigint IS NOT NULL AND $6::bigint IS NOT NULL"
    };
    let (messages, members) = (table::<Chats>("messages"), table::<Chats>("chat_members"));
    let hidden = table::<Chats>("message_hidden");
    format!(
        "FROM q, {messages} m
         JOIN {members} cm ON cm.chat_id = m.chat_id AND cm.user_id = $1
         WHERE m.search @@ q.query
           AND {band}
           AND m.sequence >= cm.joined_sequence
           AND (cm.left_sequence IS NULL OR m.sequence < cm.left_sequence)
           AND ($3::uuid IS NULL OR m.chat_id = $3)
           AND NOT EXISTS (SELECT 1 FROM {hidden} h
                           WHERE h.user_id = $1 AND h.chat_id = m.chat_id AND h.sequence = m.sequence)"
    )
}

static COUNT: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH q AS (SELECT websearch_to_tsquery('simple', $2) AS query)
                 SELECT count(*) FROM (SELECT 1 {} LIMIT $4) AS found",
        visible_matches(true)
    )
});

/// The ranked page, in a band (across all chats) or in the whole chat.
fn page_sql(banded: bool) -> String {
    let matches = visible_matches(banded);
    format!(
        "WITH q AS (SELECT websearch_to_tsquery('simple', $2) AS query)
             SELECT m.chat_id, m.message_id, m.sequence, m.sender, m.sent_at,
                    ts_headline('simple', m.body, q.query, 'StartSel=<b>, StopSel=</b>, MaxFragments=2, MaxWords=20, MinWords=5') AS snippet
             {matches}
             ORDER BY ts_rank(m.search, q.query) DESC, m.sequence DESC
             LIMIT $4 OFFSET $7"
    )
}

static PAGE_IN_BAND: LazyLock<String> = LazyLock::new(|| page_sql(true));
static PAGE_IN_CHAT: LazyLock<String> = LazyLock::new(|| page_sql(false));

/// One past the newest sequence the chats read model has reached: the ceiling of a
/// search's first band.
pub async fn first_ceiling(pool: &PgPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT COALESCE(max(sequence), 0) + 1 FROM projection_checkpoints WHERE name = $1",
    )
    .bind(Chats::NAME)
    .fetch_one(pool)
    .await
}

/// How many of the search's matches lie in `band`, counting up to `at_most`.
pub async fn count(
    pool: &PgPool,
    search: &Search<'_>,
    band: Band,
    at_most: i64,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(&COUNT)
        .persistent(false)
        .bind(search.user)
        .bind(search.text)
        .bind(search.chat_id)
        .bind(at_most)
        .bind(band.floor)
        .bind(band.ceiling)
        .fetch_one(pool)
        .await
}

/// Up to `count` of the search's matches, best first, from `offset` in their ranking:
/// in `band` across all chats; in one chat, all its matches (the band is not applied).
pub async fn page(
    pool: &PgPool,
    search: &Search<'_>,
    band: Band,
    offset: u64,
    count: u32,
) -> Result<Vec<Hit>, sqlx::Error> {
    let sql = if search.chat_id.is_none() {
        &PAGE_IN_BAND
    } else {
        &PAGE_IN_CHAT
    };
    let rows = sqlx::query(sql)
        .persistent(false)
        .bind(search.user)
        .bind(search.text)
        .bind(search.chat_id)
        .bind(i64::from(count))
        .bind(band.floor)
        .bind(band.ceiling)
        .bind(i64::try_from(offset).unwrap_or(0))
        .fetch_all(pool)
        .await?;
    rows.iter()
        .map(|row| {
            Ok(Hit {
                chat_id: row.try_get("chat_id")?,
                message_id: row.try_get("message_id")?,
                sequence: sequence(row.try_get("sequence")?),
                sender: row.try_get("sender")?,
                snippet: row.try_get("snippet")?,
                sent_at: row.try_get("sent_at")?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_search_across_chats_is_bounded_by_its_band() {
        assert!(COUNT.contains("m.sequence >= $5 AND m.sequence < $6"));
        assert!(PAGE_IN_BAND.contains("m.sequence >= $5 AND m.sequence < $6"));
        assert!(!PAGE_IN_CHAT.contains("m.sequence >= $5"));
    }
}
