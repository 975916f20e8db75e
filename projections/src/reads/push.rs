//! What the push notifier reads: who of a chat's members takes pushes for a message, and
//! how the chat and its sender are named in one.

use std::sync::LazyLock;

use sqlx::PgPool;
use uuid::Uuid;

use super::table;
use crate::{Chats, Sessions, UserDirectory};

/// A live session of a member that takes pushes, with what decides whether it gets one.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PushRecipient {
    pub session_id: Uuid,
    pub user_id: Uuid,
    pub endpoint: String,
    pub p256dh: String,
    pub auth: String,
    /// Whether the device, and the member for this chat, take message text.
    pub previews: bool,
    /// The member muted the chat (until a time still ahead).
    pub muted: bool,
    /// The member blocked the sender.
    pub blocked_sender: bool,
}

static RECIPIENTS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT s.session_id, s.user_id, s.push_endpoint AS endpoint, s.push_p256dh AS p256dh,
                s.push_auth AS auth, s.push_previews AND m.push_previews AS previews,
                (m.muted_until IS NOT NULL AND m.muted_until > now()) AS muted,
                EXISTS (SELECT 1 FROM {blocks} b
                        WHERE b.user_id = m.user_id AND b.blocked_user_id = $2) AS blocked_sender
         FROM {members} m JOIN {sessions} s ON s.user_id = m.user_id
         WHERE m.chat_id = $1 AND m.user_id <> $2
           AND m.joined_sequence <= $3 AND (m.left_sequence IS NULL OR m.left_sequence > $3)
           AND s.push_endpoint IS NOT NULL AND s.ended_at IS NULL AND s.expires_at > now()",
        blocks = table::<UserDirectory>("user_blocks"),
        members = table::<Chats>("chat_members"),
        sessions = table::<Sessions>("sessions"),
    )
});

/// The sessions that take pushes of the members of `chat_id` at `sequence` (who were
/// members when the message was stored), but the sender's.
pub async fn recipients(
    pool: &PgPool,
    chat_id: Uuid,
    sender: Uuid,
    sequence: u64,
) -> Result<Vec<PushRecipient>, sqlx::Error> {
    sqlx::query_as(&RECIPIENTS)
        .bind(chat_id)
        .bind(sender)
        .bind(i64::try_from(sequence).unwrap_or(i64::MAX))
        .fetch_all(pool)
        .await
}

/// How a push names its chat and sender.
#[derive(Debug, Clone, Default, sqlx::FromRow)]
pub struct PushNames {
    /// `direct` or `group`.
    pub kind: String,
    /// A group's name.
    pub chat_name: Option<String>,
    pub sender_name: Option<String>,
}

static NAMES: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT c.kind, c.name AS chat_name,
                (SELECT d.display_name FROM {directory} d WHERE d.user_id = $2) AS sender_name
         FROM {chats} c WHERE c.chat_id = $1",
        directory = table::<UserDirectory>("user_directory"),
        chats = table::<Chats>("chats"),
    )
});

/// The chat's kind and name, and the sender's display name.
pub async fn names(pool: &PgPool, chat_id: Uuid, sender: Uuid) -> Result<PushNames, sqlx::Error> {
    let names: Option<PushNames> = sqlx::query_as(&NAMES)
        .bind(chat_id)
        .bind(sender)
        .fetch_optional(pool)
        .await?;
    Ok(names.unwrap_or_default())
}
