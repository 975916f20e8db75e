//! What the chats read model says of chats and their members: a member's chat list, one
//! chat's members, info and pins, a member's markers, and a user's memberships.

use std::sync::LazyLock;

use sqlx::{PgPool, Row as _};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{sequence, table};
use crate::{Chats, Projection};

/// One chat of a member's chat list, with the member's own settings for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatListItem {
    pub chat_id: Uuid,
    /// `direct` or `group`.
    pub kind: String,
    pub name: Option<String>,
    /// For a direct chat, the other member.
    pub peer_id: Option<Uuid>,
    pub last_activity_at: OffsetDateTime,
    /// The last message the member can see, if any.
    pub last_message: Option<LastMessage>,
    pub avatar_media_id: Option<Uuid>,
    /// Messages from others after the member's read marker, not counting messages
    /// deleted for everyone, or by the member for themselves.
    pub unread: u64,
    /// An unread message mentions the member.
    pub mentioned: bool,
    pub pinned: bool,
    pub archived: bool,
    pub muted_until: Option<OffsetDateTime>,
    /// The member's pushes for the chat show who sent what.
    pub previews: bool,
}

/// The last message of a chat in the chat list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastMessage {
    pub sequence: u64,
    pub sender: Uuid,
    /// The first 100 characters.
    pub preview: String,
    pub deleted: bool,
    pub sent_at: OffsetDateTime,
    /// What it carries besides its text: a media item's kind (`image`, `voice`, `video`,
    /// `document`), `location` or `contact`.
    pub attachment: Option<String>,
}

static CHAT_LIST: LazyLock<String> = LazyLock::new(|| {
    let (chats, members) = (table::<Chats>("chats"), table::<Chats>("chat_members"));
    let (messages, hidden) = (table::<Chats>("messages"), table::<Chats>("message_hidden"));
    let not_hidden = format!(
        "NOT EXISTS (SELECT 1 FROM {hidden} h
                     WHERE h.user_id = m.user_id AND h.chat_id = x.chat_id AND h.sequence = x.sequence)"
    );
    // Where the member cannot see the chat's last message (they deleted it for
    // themselves, or it predates their joining), the one before it they can see. Rare,
    // and asked only then: a subquery in a CASE runs only when its branch is taken.
    let look_back = "(m.hidden_up_to >= c.last_message_sequence
                      OR c.last_message_sequence < m.joined_sequence)";
    let last = |column: &str, kept: &str| {
        format!(
            "CASE WHEN {look_back} THEN (
                 SELECT {column} FROM {messages} x
                 WHERE x.chat_id = c.chat_id AND x.sequence >= m.joined_sequence AND {not_hidden}
                 ORDER BY x.sequence DESC LIMIT 1)
             ELSE c.{kept} END"
        )
    };
    let read_from = "GREATEST(m.read_up_to, m.joined_sequence)";
    format!(
        "SELECT c.chat_id, c.kind, c.name, c.avatar_media_id, c.last_activity_at,
                m.pinned, m.archived, m.muted_until, m.push_previews, m.peer_id,
                {} AS last_sequence, {} AS last_sender, {} AS preview,
                {} AS last_deleted, {} AS last_sent_at, {} AS last_attachment,
                CASE WHEN c.last_message_sequence > {read_from} THEN (
                    SELECT ARRAY[count(*), count(*) FILTER (WHERE x.mentions @> ARRAY[m.user_id])]
                    FROM {messages} x
                    WHERE x.chat_id = c.chat_id AND x.sequence > {read_from}
                      AND x.sender <> m.user_id AND NOT x.deleted AND {not_hidden})
                END AS unread
         FROM {members} m JOIN {chats} c USING (chat_id)
         WHERE m.user_id = $1 AND m.left_at IS NULL
           AND ($2::boolean IS NULL OR m.pinned < $2 OR (m.pinned = $2 AND (
                c.last_activity_at < $3 OR (c.last_activity_at = $3 AND c.chat_id > $4))))
         ORDER BY m.pinned DESC, c.last_activity_at DESC, c.chat_id LIMIT $5",
        last("x.sequence", "last_message_sequence"),
        last("x.sender", "last_message_sender"),
        last("left(x.body, 100)", "last_message_preview"),
        last("x.deleted", "last_message_deleted"),
        last("x.sent_at", "last_message_sent_at"),
        last(
            &crate::chats::attachment_kind("x.attachment"),
            "last_message_attachment"
        ),
    )
});

/// The chat list's query, whose parameters are the user, the place after which the page
/// starts (three nulls for the first) and the page size: for `EXPLAIN` (`natter bench
/// queries --explain`).
pub fn chat_list_query() -> &'static str {
    &CHAT_LIST
}

/// Where a page of the chat list ends: the next page starts after this chat, in the
/// list's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChatListPlace {
    pub pinned: bool,
    pub last_activity_at: OffsetDateTime,
    pub chat_id: Uuid,
}

impl ChatListItem {
    /// Where a page ending with this chat ends.
    pub fn place(&self) -> ChatListPlace {
        ChatListPlace {
            pinned: self.pinned,
            last_activity_at: self.last_activity_at,
            chat_id: self.chat_id,
        }
    }
}

/// Up to `limit` of the chats `user` is in, after `after` (from the first without it):
/// pinned ones first, then the most recently active, each with its last message, the
/// count of unread messages and the user's settings.
///
/// Only the page's chats have their last message looked back for and their unread
/// messages counted: the planner puts those subqueries after the limit.
///
/// One member row and one chat row per chat: the last message is kept on the chat, and
/// looked up further back only where the member deleted it for themselves or it
/// predates their joining; the other member of a direct chat is on the member row;
/// unread messages are counted only in chats with messages after the member's read
/// marker.
pub async fn chat_list(
    pool: &PgPool,
    user: Uuid,
    after: Option<ChatListPlace>,
    limit: u32,
) -> Result<Vec<ChatListItem>, sqlx::Error> {
    let rows = sqlx::query(&CHAT_LIST)
        .bind(user)
        .bind(after.map(|place| place.pinned))
        .bind(after.map(|place| place.last_activity_at))
        .bind(after.map(|place| place.chat_id))
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await?;
    rows.iter()
        .map(|row| {
            let last_sequence: Option<i64> = row.try_get("last_sequence")?;
            let last_message = match last_sequence {
                Some(last) => Some(LastMessage {
                    sequence: sequence(last),
                    sender: row.try_get("last_sender")?,
                    preview: row.try_get("preview")?,
                    deleted: row.try_get("last_deleted")?,
                    sent_at: row.try_get("last_sent_at")?,
                    attachment: row.try_get("last_attachment")?,
                }),
                None => None,
            };
            // Messages unread, and of them those that mention the member: counted only
            // in chats with a message after the member's read marker.
            let unread = row
                .try_get::<Option<Vec<i64>>, _>("unread")?
                .unwrap_or_default();
            let unread = [0, 1].map(|i| unread.get(i).copied().unwrap_or(0));
            Ok(ChatListItem {
                chat_id: row.try_get("chat_id")?,
                kind: row.try_get("kind")?,
                name: row.try_get("name")?,
                peer_id: row.try_get("peer_id")?,
                last_activity_at: row.try_get("last_activity_at")?,
                last_message,
                avatar_media_id: row.try_get("avatar_media_id")?,
                unread: u64::try_from(unread[0]).unwrap_or(0),
                mentioned: unread[1] > 0,
                pinned: row.try_get("pinned")?,
                archived: row.try_get("archived")?,
                muted_until: row.try_get("muted_until")?,
                previews: row.try_get("push_previews")?,
            })
        })
        .collect()
}

/// A current member of a chat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member {
    pub user_id: Uuid,
    pub admin: bool,
}

static MEMBERS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT user_id, admin FROM {}
         WHERE chat_id = $1 AND left_at IS NULL ORDER BY joined_sequence, user_id",
        table::<Chats>("chat_members")
    )
});

/// The chat's current members, in the order they joined.
pub async fn members(pool: &PgPool, chat_id: Uuid) -> Result<Vec<Member>, sqlx::Error> {
    let rows = sqlx::query(&MEMBERS).bind(chat_id).fetch_all(pool).await?;
    rows.iter()
        .map(|row| {
            Ok(Member {
                user_id: row.try_get("user_id")?,
                admin: row.try_get("admin")?,
            })
        })
        .collect()
}

/// A chat's own info.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatInfo {
    /// `direct` or `group`.
    pub kind: String,
    pub name: Option<String>,
    /// Empty when there is none.
    pub description: String,
    pub avatar_media_id: Option<Uuid>,
    /// Whether members who are not admins may edit the name, description and avatar.
    pub members_edit_info: bool,
}

static INFO: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT kind, name, description, avatar_media_id, members_edit_info FROM {} WHERE chat_id = $1",
        table::<Chats>("chats")
    )
});

/// The chat's info; `None` if there is no such chat.
pub async fn info(pool: &PgPool, chat_id: Uuid) -> Result<Option<ChatInfo>, sqlx::Error> {
    let row = sqlx::query(&INFO)
        .bind(chat_id)
        .fetch_optional(pool)
        .await?;
    row.map(|row| {
        Ok(ChatInfo {
            kind: row.try_get("kind")?,
            name: row.try_get("name")?,
            description: row.try_get("description")?,
            avatar_media_id: row.try_get("avatar_media_id")?,
            members_edit_info: row.try_get("members_edit_info")?,
        })
    })
    .transpose()
}

/// A pinned message of a chat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pin {
    pub sequence: u64,
    pub pinned_by: Uuid,
    pub pinned_at: OffsetDateTime,
}

static PINS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT sequence, pinned_by, pinned_at FROM {} WHERE chat_id = $1
         ORDER BY pinned_at DESC, sequence DESC LIMIT 3",
        table::<Chats>("chat_pins")
    )
});

/// The chat's pinned messages: up to three, most recently pinned first.
pub async fn pins(pool: &PgPool, chat_id: Uuid) -> Result<Vec<Pin>, sqlx::Error> {
    let rows = sqlx::query(&PINS).bind(chat_id).fetch_all(pool).await?;
    rows.iter()
        .map(|row| {
            Ok(Pin {
                sequence: sequence(row.try_get("sequence")?),
                pinned_by: row.try_get("pinned_by")?,
                pinned_at: row.try_get("pinned_at")?,
            })
        })
        .collect()
}

/// Where a member's markers are as the read model has them: it applies each marker
/// with the greatest so far, so they only grow, and a marker at or below them would
/// not move. Zero for a chat or member it does not know (yet).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Markers {
    pub read: u64,
    pub delivered: u64,
}

static MARKERS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT read_up_to, delivered_up_to FROM {}
         WHERE chat_id = $1 AND user_id = $2",
        table::<Chats>("chat_members")
    )
});

/// `user`'s markers in the chat.
pub async fn markers(pool: &PgPool, chat_id: Uuid, user: Uuid) -> Result<Markers, sqlx::Error> {
    let row = sqlx::query(&MARKERS)
        .bind(chat_id)
        .bind(user)
        .fetch_optional(pool)
        .await?;
    let Some(row) = row else {
        return Ok(Markers::default());
    };
    Ok(Markers {
        read: sequence(row.try_get("read_up_to")?),
        delivered: sequence(row.try_get("delivered_up_to")?),
    })
}

/// One membership of a user, as the chats read model holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Membership {
    pub chat_id: Uuid,
    pub joined_sequence: u64,
    pub left_sequence: Option<u64>,
}

static MEMBERSHIPS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT chat_id, joined_sequence, left_sequence FROM {} WHERE user_id = $1",
        table::<Chats>("chat_members")
    )
});

/// Every chat `user` is or was a member of, and the chats projection's checkpoint they
/// are exact at, read in one snapshot.
pub async fn memberships(pool: &PgPool, user: Uuid) -> Result<(u64, Vec<Membership>), sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await?;
    let checkpoint: Option<i64> = sqlx::query_scalar(
        "SELECT sequence FROM projection_checkpoints WHERE name = $1 AND version = $2",
    )
    .bind(Chats::NAME)
    .bind(Chats::VERSION)
    .fetch_optional(&mut *tx)
    .await?;
    let rows: Vec<(Uuid, i64, Option<i64>)> = sqlx::query_as(&MEMBERSHIPS)
        .bind(user)
        .fetch_all(&mut *tx)
        .await?;
    tx.commit().await?;
    let rows = rows
        .into_iter()
        .map(|(chat_id, joined, left)| Membership {
            chat_id,
            joined_sequence: sequence(joined),
            left_sequence: left.map(sequence),
        })
        .collect();
    Ok((checkpoint.map_or(0, sequence), rows))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_name_the_chats_tables() {
        for sql in [&CHAT_LIST, &MEMBERS, &INFO, &PINS, &MARKERS, &MEMBERSHIPS] {
            assert!(!LazyLock::force(sql).is_empty());
        }
    }
}
