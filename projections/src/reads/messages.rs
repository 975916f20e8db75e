//! What the chats read model says of messages as a member sees them: a page of history,
//! one message by its sequence or its sender's client id, a user's stars, and the other
//! members' markers that make a message's receipt.

use std::sync::LazyLock;

use sqlx::{PgPool, Row as _};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{bound, sequence, table};
use crate::{Chats, UserDirectory};

/// A message a member can see, to forward it.
#[derive(Debug, Clone, PartialEq)]
pub struct VisibleMessage {
    pub body: String,
    /// Deleted for everyone.
    pub deleted: bool,
    /// 0 for an original; for a forward, how many hops it has come.
    pub forwarded: u32,
    /// As the log recorded it (`natter_domain::chat::Attachment`).
    pub attachment: Option<serde_json::Value>,
}

static VISIBLE: LazyLock<String> = LazyLock::new(|| {
    let (messages, members) = (table::<Chats>("messages"), table::<Chats>("chat_members"));
    let hidden = table::<Chats>("message_hidden");
    format!(
        "SELECT m.body, m.deleted, m.forwarded, m.attachment FROM {messages} m
         JOIN {members} cm ON cm.chat_id = m.chat_id AND cm.user_id = $3
         WHERE m.chat_id = $1 AND m.sequence = $2 AND m.sequence >= cm.joined_sequence
           AND (cm.left_sequence IS NULL OR m.sequence < cm.left_sequence)
           AND NOT EXISTS (SELECT 1 FROM {hidden} h
                           WHERE h.user_id = $3 AND h.chat_id = m.chat_id AND h.sequence = m.sequence)"
    )
});

/// The message at `sequence` in the chat, if `viewer` can see it: sent while they were
/// a member, and not deleted by them for themselves. A message deleted for everyone is
/// returned, as `deleted`.
pub async fn visible(
    pool: &PgPool,
    viewer: Uuid,
    chat_id: Uuid,
    sequence: u64,
) -> Result<Option<VisibleMessage>, sqlx::Error> {
    let row = sqlx::query(&VISIBLE)
        .bind(chat_id)
        .bind(bound(sequence))
        .bind(viewer)
        .fetch_optional(pool)
        .await?;
    row.map(|row| {
        Ok(VisibleMessage {
            body: row.try_get("body")?,
            deleted: row.try_get("deleted")?,
            forwarded: u32::try_from(row.try_get::<i32, _>("forwarded")?).unwrap_or(0),
            attachment: row.try_get("attachment")?,
        })
    })
    .transpose()
}

/// A message as its sender's client id finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    pub message_id: Uuid,
    pub sequence: u64,
    /// Empty once deleted for everyone.
    pub body: String,
    pub reply_to: Option<u64>,
    pub deleted: bool,
}

/// Sends looked up by client id, concurrent lookups sharing one query: a send looks its
/// client id up before it is stored (a retry later than the log's deduplication window
/// finds the first send here), and at thousands of sends a second one query each took a
/// fifth of the API's CPU (issue 18). A lookup takes what is waiting, up to
/// [`LOOKUP_BATCH`] keys, with at most [`LOOKUPS_IN_FLIGHT`] queries at once; alone, it
/// goes at once.
#[derive(Debug, Clone)]
pub struct SentLookup {
    requests: tokio::sync::mpsc::Sender<Lookup>,
}

/// The most keys of one batched lookup.
pub const LOOKUP_BATCH: usize = 256;
/// The most batched lookups at once.
pub const LOOKUPS_IN_FLIGHT: usize = 4;

type LookupAnswer = Result<Option<Sent>, std::sync::Arc<sqlx::Error>>;

#[derive(Debug)]
struct Lookup {
    chat_id: Uuid,
    sender: Uuid,
    client_id: String,
    answer: tokio::sync::oneshot::Sender<LookupAnswer>,
}

static BY_CLIENT_ID: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT 1::bigint AS i, message_id, sequence, body, reply_to_sequence, deleted FROM {}
         WHERE chat_id = $1 AND sender = $2 AND client_id = $3",
        table::<Chats>("messages")
    )
});

static BY_CLIENT_IDS: LazyLock<String> = LazyLock::new(|| {
    format!(
        // One index probe per key: `LIMIT 1` keeps the planner from turning the lateral
        // lookup into a join over the whole table (it guesses 100 keys for any array).
        "SELECT k.i, m.message_id, m.sequence, m.body, m.reply_to_sequence, m.deleted
         FROM unnest($1::uuid[], $2::uuid[], $3::text[]) WITH ORDINALITY AS k(chat_id, sender, client_id, i)
         CROSS JOIN LATERAL (SELECT * FROM {} m
                             WHERE m.chat_id = k.chat_id AND m.sender = k.sender AND m.client_id = k.client_id
                             LIMIT 1) m",
        table::<Chats>("messages")
    )
});

impl SentLookup {
    /// Starts the lookups' task on the current runtime; it ends with the last handle.
    pub fn spawn(pool: PgPool) -> Self {
        let (requests, mut waiting) = tokio::sync::mpsc::channel::<Lookup>(LOOKUP_BATCH * 16);
        let permits = std::sync::Arc::new(tokio::sync::Semaphore::new(LOOKUPS_IN_FLIGHT));
        tokio::spawn(async move {
            loop {
                let Ok(permit) = std::sync::Arc::clone(&permits).acquire_owned().await else {
                    return;
                };
                let Some(first) = waiting.recv().await else {
                    return;
                };
                let mut batch = vec![first];
                while batch.len() < LOOKUP_BATCH {
                    match waiting.try_recv() {
                        Ok(next) => batch.push(next),
                        Err(_) => break,
                    }
                }
                let pool = pool.clone();
                tokio::spawn(async move {
                    answer_all(&pool, batch).await;
                    drop(permit);
                });
            }
        });
        Self { requests }
    }

    /// The message `sender` sent to the chat with `client_id`, if the read model has it.
    pub async fn find(
        &self,
        chat_id: Uuid,
        sender: Uuid,
        client_id: &str,
    ) -> Result<Option<Sent>, std::sync::Arc<sqlx::Error>> {
        let (answer, answered) = tokio::sync::oneshot::channel();
        let lookup = Lookup {
            chat_id,
            sender,
            client_id: client_id.to_owned(),
            answer,
        };
        let gone = || std::sync::Arc::new(sqlx::Error::PoolClosed);
        self.requests.send(lookup).await.map_err(|_| gone())?;
        answered.await.map_err(|_| gone())?
    }
}

async fn answer_all(pool: &PgPool, batch: Vec<Lookup>) {
    // A lookup alone takes the plain query, which plans and runs faster.
    let rows = if let [alone] = &batch[..] {
        sqlx::query(&BY_CLIENT_ID)
            .bind(alone.chat_id)
            .bind(alone.sender)
            .bind(&alone.client_id)
            .fetch_all(pool)
            .await
    } else {
        let chats: Vec<Uuid> = batch.iter().map(|l| l.chat_id).collect();
        let senders: Vec<Uuid> = batch.iter().map(|l| l.sender).collect();
        let client_ids: Vec<&str> = batch.iter().map(|l| l.client_id.as_str()).collect();
        sqlx::query(&BY_CLIENT_IDS)
            .bind(&chats)
            .bind(&senders)
            .bind(&client_ids)
            .fetch_all(pool)
            .await
    };
    let mut found: Vec<Option<Sent>> = (0..batch.len()).map(|_| None).collect();
    let outcome = rows.and_then(|rows| {
        for row in rows {
            let i: i64 = row.try_get("i")?;
            let reply_to: Option<i64> = row.try_get("reply_to_sequence")?;
            let sent = Sent {
                message_id: row.try_get("message_id")?,
                sequence: sequence(row.try_get("sequence")?),
                body: row.try_get("body")?,
                reply_to: reply_to.and_then(|r| u64::try_from(r).ok()),
                deleted: row.try_get("deleted")?,
            };
            // Ordinality counts from 1.
            if let Some(slot) = usize::try_from(i - 1).ok().and_then(|i| found.get_mut(i)) {
                *slot = Some(sent);
            }
        }
        Ok(())
    });
    match outcome {
        Ok(()) => {
            for (lookup, sent) in batch.into_iter().zip(found) {
                let _ = lookup.answer.send(Ok(sent));
            }
        }
        Err(error) => {
            let error = std::sync::Arc::new(error);
            for lookup in batch {
                let _ = lookup.answer.send(Err(std::sync::Arc::clone(&error)));
            }
        }
    }
}

/// Where a page of history starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    /// The latest messages.
    Latest,
    /// Messages before this sequence (exclusive): paging back.
    Before(u64),
    /// Messages after this sequence (exclusive): paging forward.
    After(u64),
}

/// Which of a chat's messages a page holds: all, or those of one shelf of the chat's
/// gallery. Messages deleted for everyone are on no shelf.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Shelf {
    #[default]
    All,
    /// Photos and videos.
    Media,
    /// Documents.
    Documents,
    /// Messages whose text holds a web address.
    Links,
}

impl Shelf {
    /// In the order of their discriminants, which index [`HISTORY`].
    const EVERY: [Self; 4] = [Self::All, Self::Media, Self::Documents, Self::Links];

    fn condition(self) -> &'static str {
        match self {
            Self::All => "TRUE",
            Self::Media => {
                "NOT m.deleted AND m.attachment ->> 'type' = 'media'
                 AND m.attachment ->> 'kind' IN ('image', 'video')"
            }
            Self::Documents => {
                "NOT m.deleted AND m.attachment ->> 'type' = 'media'
                 AND m.attachment ->> 'kind' = 'document'"
            }
            Self::Links => "NOT m.deleted AND m.body ~* 'https?://'",
        }
    }
}

/// A message of a chat's history, as one member sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryMessage {
    pub message_id: Uuid,
    pub sequence: u64,
    pub sender: Uuid,
    /// Empty for a message deleted for everyone.
    pub body: String,
    /// The sequence of the message this one replies to.
    pub reply_to: Option<u64>,
    pub mentions: Vec<Uuid>,
    /// 0 for an original; for a forward, how many hops it has come.
    pub forwarded: u32,
    pub sent_at: OffsetDateTime,
    pub edited: bool,
    /// Deleted for everyone: a tombstone.
    pub deleted: bool,
    /// Starred by the member.
    pub starred: bool,
    /// Pinned in the chat.
    pub pinned: bool,
    /// Each reaction with how many members chose it, most chosen first.
    pub reactions: Vec<Reaction>,
    /// As the log recorded it (`natter_domain::chat::Attachment`).
    pub attachment: Option<serde_json::Value>,
}

/// A reaction to a message and how many members chose it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reaction {
    pub reaction: String,
    pub count: u64,
}

static STAY: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT joined_sequence, left_sequence FROM {} WHERE chat_id = $1 AND user_id = $2",
        table::<Chats>("chat_members")
    )
});

/// A page of history, `$2` its bound, `[$3, $4)` the member's stay, `$5` its size and
/// `$6` the member: for each shelf, forward (oldest first) and back (newest first).
static HISTORY: LazyLock<[[String; 2]; 4]> = LazyLock::new(|| {
    let (messages, hidden) = (table::<Chats>("messages"), table::<Chats>("message_hidden"));
    let (stars, pins) = (table::<Chats>("message_stars"), table::<Chats>("chat_pins"));
    let reactions = table::<Chats>("message_reactions");
    let columns = format!(
        "SELECT m.message_id, m.sequence, m.sender, m.body, m.reply_to_sequence, m.mentions, m.attachment,
            m.forwarded, m.sent_at, m.edited, m.deleted,
            EXISTS (SELECT 1 FROM {stars} s
                    WHERE s.user_id = $6 AND s.chat_id = m.chat_id AND s.sequence = m.sequence) AS starred,
            EXISTS (SELECT 1 FROM {pins} p WHERE p.chat_id = m.chat_id AND p.sequence = m.sequence) AS pinned,
            COALESCE((SELECT json_agg(json_build_object('reaction', r.reaction, 'count', r.n) ORDER BY r.n DESC, r.reaction)
                      FROM (SELECT reaction, count(*) AS n FROM {reactions}
                            WHERE message_id = m.message_id GROUP BY reaction) r), '[]'::json) AS reactions
         FROM {messages} m"
    );
    let visible = format!(
        "m.chat_id = $1 AND m.sequence >= $3 AND m.sequence < $4
         AND NOT EXISTS (SELECT 1 FROM {hidden} h
                         WHERE h.user_id = $6 AND h.chat_id = m.chat_id AND h.sequence = m.sequence)"
    );
    Shelf::EVERY.map(|shelf| {
        let only = shelf.condition();
        [
            format!("{columns} WHERE {visible} AND ({only}) AND m.sequence > $2 ORDER BY m.sequence ASC LIMIT $5"),
            format!("{columns} WHERE {visible} AND ({only}) AND m.sequence < $2 ORDER BY m.sequence DESC LIMIT $5"),
        ]
    })
});

/// Up to `count` messages of the chat on `shelf` from `page` on, in the order of
/// paging: oldest first after [`Page::After`], newest first otherwise. A former member
/// sees what was sent while they were in the chat, and nothing after; nobody sees what
/// they deleted for themselves. `None` if `viewer` was never a member.
pub async fn history(
    pool: &PgPool,
    chat_id: Uuid,
    viewer: Uuid,
    (page, shelf): (Page, Shelf),
    count: u32,
) -> Result<Option<Vec<HistoryMessage>>, sqlx::Error> {
    let stay = sqlx::query(&STAY)
        .bind(chat_id)
        .bind(viewer)
        .fetch_optional(pool)
        .await?;
    let Some(stay) = stay else {
        return Ok(None);
    };
    let joined: i64 = stay.try_get("joined_sequence")?;
    let left: Option<i64> = stay.try_get("left_sequence")?;
    let queries = &HISTORY[shelf as usize];
    let (sql, from) = match page {
        Page::After(after) => (&queries[0], bound(after)),
        Page::Before(before) => (&queries[1], bound(before)),
        Page::Latest => (&queries[1], i64::MAX),
    };
    let rows = sqlx::query(sql)
        .bind(chat_id)
        .bind(from)
        .bind(joined)
        .bind(left.unwrap_or(i64::MAX))
        .bind(i64::from(count))
        .bind(viewer)
        .fetch_all(pool)
        .await?;
    let messages = rows
        .iter()
        .map(|row| {
            let reply_to: Option<i64> = row.try_get("reply_to_sequence")?;
            Ok(HistoryMessage {
                message_id: row.try_get("message_id")?,
                sequence: sequence(row.try_get("sequence")?),
                sender: row.try_get("sender")?,
                body: row.try_get("body")?,
                reply_to: reply_to.and_then(|r| u64::try_from(r).ok()),
                mentions: row.try_get("mentions")?,
                forwarded: u32::try_from(row.try_get::<i32, _>("forwarded")?).unwrap_or(0),
                sent_at: row.try_get("sent_at")?,
                edited: row.try_get("edited")?,
                deleted: row.try_get("deleted")?,
                starred: row.try_get("starred")?,
                pinned: row.try_get("pinned")?,
                reactions: reactions(&row.try_get("reactions")?),
                attachment: row.try_get("attachment")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()?;
    Ok(Some(messages))
}

fn reactions(json: &serde_json::Value) -> Vec<Reaction> {
    json.as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|item| {
                    Some(Reaction {
                        reaction: item["reaction"].as_str()?.to_owned(),
                        count: item["count"].as_u64()?,
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Another member's markers, for the receipts of a member's messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recipient {
    pub joined: u64,
    pub delivered: u64,
    /// `None` for a member who turned read receipts off: they never count as having
    /// read.
    pub read: Option<u64>,
}

static RECIPIENTS: LazyLock<String> = LazyLock::new(|| {
    let (members, directory) = (
        table::<Chats>("chat_members"),
        table::<UserDirectory>("user_directory"),
    );
    format!(
        "SELECT cm.joined_sequence, cm.delivered_up_to, cm.read_up_to, COALESCE(d.read_receipts, true) AS receipts
         FROM {members} cm LEFT JOIN {directory} d USING (user_id)
         WHERE cm.chat_id = $1 AND cm.left_at IS NULL AND cm.user_id <> $2"
    )
});

/// The chat's current members other than `sender`, with their markers.
pub async fn recipients(
    pool: &PgPool,
    chat_id: Uuid,
    sender: Uuid,
) -> Result<Vec<Recipient>, sqlx::Error> {
    let rows = sqlx::query(&RECIPIENTS)
        .bind(chat_id)
        .bind(sender)
        .fetch_all(pool)
        .await?;
    rows.iter()
        .map(|row| {
            let receipts: bool = row.try_get("receipts")?;
            Ok(Recipient {
                joined: sequence(row.try_get("joined_sequence")?),
                delivered: sequence(row.try_get("delivered_up_to")?),
                read: if receipts {
                    Some(sequence(row.try_get("read_up_to")?))
                } else {
                    None
                },
            })
        })
        .collect()
}

/// What the read model knows of a message as a member sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    /// Deleted for everyone.
    pub deleted: bool,
}

static SEEN: LazyLock<String> = LazyLock::new(|| {
    let (members, messages) = (table::<Chats>("chat_members"), table::<Chats>("messages"));
    format!(
        "SELECT cm.joined_sequence, COALESCE(m.deleted, false) AS deleted
         FROM {members} cm
         LEFT JOIN {messages} m ON m.chat_id = cm.chat_id AND m.sequence = $3
         WHERE cm.chat_id = $1 AND cm.user_id = $2 AND cm.left_at IS NULL"
    )
});

/// `None` for a message sent before the caller's current membership began, which their
/// history does not show them. The log decides the rest: whether they are a member,
/// whether the message is in the chat. A member or message the read model has not
/// caught up with yet passes here.
pub async fn seen_by(
    pool: &PgPool,
    chat_id: Uuid,
    user: Uuid,
    sequence: u64,
) -> Result<Option<Seen>, sqlx::Error> {
    let row = sqlx::query(&SEEN)
        .bind(chat_id)
        .bind(user)
        .bind(bound(sequence))
        .fetch_optional(pool)
        .await?;
    let Some(row) = row else {
        return Ok(Some(Seen { deleted: false }));
    };
    let joined: i64 = row.try_get("joined_sequence")?;
    if bound(sequence) < joined {
        return Ok(None);
    }
    Ok(Some(Seen {
        deleted: row.try_get("deleted")?,
    }))
}

/// A message a user starred.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Star {
    pub chat_id: Uuid,
    pub sequence: u64,
    pub message_id: Uuid,
    pub sender: Uuid,
    pub body: String,
    pub sent_at: OffsetDateTime,
    pub starred_at: OffsetDateTime,
}

static STARRED: LazyLock<String> = LazyLock::new(|| {
    let (stars, messages) = (table::<Chats>("message_stars"), table::<Chats>("messages"));
    let (members, hidden) = (
        table::<Chats>("chat_members"),
        table::<Chats>("message_hidden"),
    );
    format!(
        "SELECT s.chat_id, s.sequence, s.starred_at, m.message_id, m.sender, m.body, m.sent_at
         FROM {stars} s
         JOIN {messages} m ON m.chat_id = s.chat_id AND m.sequence = s.sequence
         JOIN {members} cm ON cm.chat_id = s.chat_id AND cm.user_id = s.user_id
         WHERE s.user_id = $1 AND ($2::timestamptz IS NULL OR s.starred_at < $2)
           AND s.sequence >= cm.joined_sequence
           AND (cm.left_sequence IS NULL OR s.sequence < cm.left_sequence)
           AND NOT EXISTS (SELECT 1 FROM {hidden} h
                           WHERE h.user_id = $1 AND h.chat_id = s.chat_id AND h.sequence = s.sequence)
         ORDER BY s.starred_at DESC, s.chat_id, s.sequence LIMIT $3"
    )
});

/// Up to `count` of `user`'s starred messages, starred before `before` if given, most
/// recently starred first, from chats they can still see them in: sent while they were
/// a member, and not deleted by them for themselves.
pub async fn starred(
    pool: &PgPool,
    user: Uuid,
    before: Option<OffsetDateTime>,
    count: u32,
) -> Result<Vec<Star>, sqlx::Error> {
    let rows = sqlx::query(&STARRED)
        .bind(user)
        .bind(before)
        .bind(i64::from(count))
        .fetch_all(pool)
        .await?;
    rows.iter()
        .map(|row| {
            Ok(Star {
                chat_id: row.try_get("chat_id")?,
                sequence: sequence(row.try_get("sequence")?),
                message_id: row.try_get("message_id")?,
                sender: row.try_get("sender")?,
                body: row.try_get("body")?,
                sent_at: row.try_get("sent_at")?,
                starred_at: row.try_get("starred_at")?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_name_the_chats_and_directory_tables() {
        for sql in [
            &VISIBLE,
            &BY_CLIENT_IDS,
            &STAY,
            &RECIPIENTS,
            &SEEN,
            &STARRED,
        ] {
            assert!(!LazyLock::force(sql).is_empty());
        }
        assert!(HISTORY.iter().flatten().all(|sql| sql.contains("LIMIT $5")));
    }

    #[test]
    fn reactions_are_read_in_order_and_malformed_ones_dropped() {
        let json = serde_json::json!([
            {"reaction": "👍", "count": 2},
            {"reaction": 1, "count": 1},
            {"reaction": "🎉", "count": 1},
        ]);
        let read = reactions(&json);
        assert_eq!(
            read,
            [
                Reaction {
                    reaction: "👍".into(),
                    count: 2
                },
                Reaction {
                    reaction: "🎉".into(),
                    count: 1
                },
            ]
        );
        assert!(reactions(&serde_json::json!(null)).is_empty());
    }
}
