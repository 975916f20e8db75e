//! What the read models say of media items: who may see one, and what the collector of
//! unreferenced uploads collects, restores and purges.

use std::sync::LazyLock;

use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

use super::table;
use crate::{Chats, Media, UserDirectory};

static SHARED_WITH: LazyLock<String> = LazyLock::new(|| {
    let (messages, members) = (table::<Chats>("messages"), table::<Chats>("chat_members"));
    let (chats, directory) = (
        table::<Chats>("chats"),
        table::<UserDirectory>("user_directory"),
    );
    let blocks = table::<UserDirectory>("user_blocks");
    format!(
        "SELECT EXISTS (
             SELECT 1 FROM {messages} m
             JOIN {members} cm ON cm.chat_id = m.chat_id AND cm.user_id = $2
             WHERE m.attachment IS NOT NULL AND m.attachment ->> 'media_id' = $1::text
               AND NOT m.deleted AND m.sequence >= cm.joined_sequence
               AND (cm.left_sequence IS NULL OR m.sequence < cm.left_sequence))
         OR EXISTS (
             SELECT 1 FROM {chats} c
             JOIN {members} cm ON cm.chat_id = c.chat_id AND cm.user_id = $2
             WHERE c.avatar_media_id = $1::uuid AND cm.left_at IS NULL)
         OR EXISTS (
             SELECT 1 FROM {directory} d
             WHERE d.photo_media_id = $1::uuid AND d.photo_visibility = 'everyone'
               AND NOT EXISTS (SELECT 1 FROM {blocks} b
                               WHERE b.user_id = d.user_id AND b.blocked_user_id = $2))"
    )
});

/// Whether a message `user` could see in one of their chats (sent while they were a
/// member, not deleted for everyone) shares the item, or it is the avatar of a group
/// they are in, or the profile photo of someone who shows it to them (as
/// [`super::users::profile`] does).
pub async fn shared_with(pool: &PgPool, user: Uuid, media_id: Uuid) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(&SHARED_WITH)
        .bind(media_id.to_string())
        .bind(user)
        .fetch_one(pool)
        .await
}

/// Whether something refers to the item `m.media_id`: a message not deleted for
/// everyone, a group avatar or a profile photo.
fn referenced() -> String {
    let (messages, chats) = (table::<Chats>("messages"), table::<Chats>("chats"));
    let directory = table::<UserDirectory>("user_directory");
    format!(
        "(EXISTS (SELECT 1 FROM {messages} x
                 WHERE x.attachment IS NOT NULL AND x.attachment ->> 'media_id' = m.media_id::text)
         OR EXISTS (SELECT 1 FROM {chats} c WHERE c.avatar_media_id = m.media_id)
         OR EXISTS (SELECT 1 FROM {directory} d WHERE d.photo_media_id = m.media_id))"
    )
}

static UNREFERENCED: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT m.media_id FROM {} m
         WHERE NOT m.collected AND m.uploaded_at < $1 AND NOT {}
         ORDER BY m.uploaded_at LIMIT 1000",
        table::<Media>("media"),
        referenced()
    )
});

/// Items not collected, uploaded before `uploaded_before`, that nothing refers to:
/// the oldest 1,000.
pub async fn unreferenced(
    pool: &PgPool,
    uploaded_before: OffsetDateTime,
) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar(&UNREFERENCED)
        .bind(uploaded_before)
        .fetch_all(pool)
        .await
}

/// A collected item, and whether something refers to it now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Collected {
    pub media_id: Uuid,
    pub referenced: bool,
}

static COLLECTED: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT m.media_id, {} FROM {} m
         WHERE m.collected AND NOT m.purged AND m.collected_at < $1
         ORDER BY m.collected_at LIMIT 1000",
        referenced(),
        table::<Media>("media")
    )
});

/// Items collected before `collected_before` and not purged: the 1,000 collected
/// first.
pub async fn collected(
    pool: &PgPool,
    collected_before: OffsetDateTime,
) -> Result<Vec<Collected>, sqlx::Error> {
    let rows: Vec<(Uuid, bool)> = sqlx::query_as(&COLLECTED)
        .bind(collected_before)
        .fetch_all(pool)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(media_id, referenced)| Collected {
            media_id,
            referenced,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_name_the_media_chats_and_directory_tables() {
        for sql in [&SHARED_WITH, &UNREFERENCED, &COLLECTED] {
            assert!(!LazyLock::force(sql).is_empty());
        }
    }
}
