//! Chats and their members, for the chat list and membership checks of queries.

use natter_domain::chat::ChatEvent;
use natter_eventlog::StoredEvent;
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{Decoded, Projection};

/// Projects chat events into `chats_v1` and `chat_members_v1`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Chats;

impl Projection for Chats {
    const NAME: &'static str = "chats";
    const VERSION: i32 = 1;
    type Event = (ChatEvent, OffsetDateTime);

    fn decode(&self, stored: &StoredEvent) -> Option<Self::Event> {
        let envelope = &stored.envelope;
        if envelope.aggregate_type != "chat" {
            return None;
        }
        natter_schema::decode(&envelope.event_type, envelope.schema_version, &envelope.payload)
            .map(|event| (event, envelope.occurred_at))
            .map_err(|error| tracing::error!(sequence = stored.sequence, %error, "chat event not readable; skipped"))
            .ok()
    }

    async fn apply(
        &self,
        connection: &mut PgConnection,
        events: &[Decoded<Self::Event>],
    ) -> Result<(), sqlx::Error> {
        for decoded in events {
            let sequence = i64::try_from(decoded.sequence).unwrap_or(i64::MAX);
            let (event, at) = &decoded.event;
            match event {
                ChatEvent::DirectChatCreated(created) => {
                    insert_chat(connection, created.chat_id, "direct", None, *at, sequence).await?;
                    join(connection, created.chat_id, &created.members, false, *at).await?;
                }
                ChatEvent::GroupCreated(created) => {
                    insert_chat(
                        connection,
                        created.chat_id,
                        "group",
                        Some(created.name.as_str()),
                        *at,
                        sequence,
                    )
                    .await?;
                    join(connection, created.chat_id, &[created.creator], true, *at).await?;
                    join(connection, created.chat_id, &created.members, false, *at).await?;
                }
                ChatEvent::MembersAdded(added) => {
                    join(connection, added.chat_id, &added.users, false, *at).await?;
                    touch(connection, added.chat_id, *at, sequence).await?;
                }
                ChatEvent::MemberRemoved(removed) => {
                    leave(connection, removed.chat_id, removed.user, *at).await?;
                    touch(connection, removed.chat_id, *at, sequence).await?;
                }
                ChatEvent::MemberLeft(left) => {
                    leave(connection, left.chat_id, left.user, *at).await?;
                    touch(connection, left.chat_id, *at, sequence).await?;
                }
                ChatEvent::AdminChanged(changed) => {
                    sqlx::query(
                        "UPDATE chat_members_v1 SET admin = $3 WHERE chat_id = $1 AND user_id = $2",
                    )
                    .bind(changed.chat_id)
                    .bind(changed.user)
                    .bind(changed.admin)
                    .execute(&mut *connection)
                    .await?;
                }
                ChatEvent::GroupRenamed(renamed) => {
                    sqlx::query("UPDATE chats_v1 SET name = $2 WHERE chat_id = $1")
                        .bind(renamed.chat_id)
                        .bind(renamed.name.as_str())
                        .execute(&mut *connection)
                        .await?;
                    touch(connection, renamed.chat_id, *at, sequence).await?;
                }
            }
        }
        Ok(())
    }

    async fn reset(&self, connection: &mut PgConnection) -> Result<(), sqlx::Error> {
        sqlx::query("TRUNCATE chats_v1, chat_members_v1")
            .execute(connection)
            .await?;
        Ok(())
    }
}

async fn insert_chat(
    connection: &mut PgConnection,
    chat_id: Uuid,
    kind: &str,
    name: Option<&str>,
    at: OffsetDateTime,
    sequence: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO chats_v1 (chat_id, kind, name, created_at, last_activity_at, last_sequence)
         VALUES ($1, $2, $3, $4, $4, $5) ON CONFLICT (chat_id) DO NOTHING",
    )
    .bind(chat_id)
    .bind(kind)
    .bind(name)
    .bind(at)
    .bind(sequence)
    .execute(connection)
    .await?;
    Ok(())
}

/// (Re)joins users; a returning member's row is reopened.
async fn join(
    connection: &mut PgConnection,
    chat_id: Uuid,
    users: &[Uuid],
    admin: bool,
    at: OffsetDateTime,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO chat_members_v1 (chat_id, user_id, admin, joined_at)
         SELECT $1, u, $3, $4 FROM UNNEST($2::uuid[]) AS u
         ON CONFLICT (chat_id, user_id) DO UPDATE SET admin = EXCLUDED.admin, joined_at = EXCLUDED.joined_at, left_at = NULL
         WHERE chat_members_v1.left_at IS NOT NULL",
    )
    .bind(chat_id)
    .bind(users)
    .bind(admin)
    .bind(at)
    .execute(connection)
    .await?;
    Ok(())
}

async fn leave(
    connection: &mut PgConnection,
    chat_id: Uuid,
    user: Uuid,
    at: OffsetDateTime,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE chat_members_v1 SET left_at = $3, admin = false WHERE chat_id = $1 AND user_id = $2 AND left_at IS NULL")
        .bind(chat_id)
        .bind(user)
        .bind(at)
        .execute(connection)
        .await?;
    Ok(())
}

async fn touch(
    connection: &mut PgConnection,
    chat_id: Uuid,
    at: OffsetDateTime,
    sequence: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE chats_v1 SET last_activity_at = GREATEST(last_activity_at, $2), last_sequence = $3
         WHERE chat_id = $1 AND last_sequence < $3",
    )
    .bind(chat_id)
    .bind(at)
    .bind(sequence)
    .execute(connection)
    .await?;
    Ok(())
}
