//! Chats and their members, for the chat list and membership checks of queries.

use natter_domain::chat::{ChatEvent, MESSAGES_KIND, MessageEvent};
use natter_domain::prefs::PrefsEvent;
use natter_eventlog::StoredEvent;
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{Decoded, Projection};

/// Projects chat and message events into `chats_v1`, `chat_members_v1` and
/// `messages_v1`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Chats;

#[derive(Debug, Clone)]
pub enum ChatsEvent {
    Chat(ChatEvent),
    Message(MessageEvent),
    Prefs(PrefsEvent),
}

impl Projection for Chats {
    const NAME: &'static str = "chats";
    const VERSION: i32 = 1;
    type Event = (ChatsEvent, OffsetDateTime);

    fn decode(&self, stored: &StoredEvent) -> Option<Self::Event> {
        let envelope = &stored.envelope;
        let (kind, version, payload) = (
            &envelope.event_type,
            envelope.schema_version,
            &envelope.payload,
        );
        let decoded = match envelope.aggregate_type.as_str() {
            "chat" => natter_schema::decode(kind, version, payload).map(ChatsEvent::Chat),
            MESSAGES_KIND => natter_schema::decode(kind, version, payload).map(ChatsEvent::Message),
            "chatprefs" => natter_schema::decode(kind, version, payload).map(ChatsEvent::Prefs),
            _ => return None,
        };
        decoded
            .map(|event| (event, envelope.occurred_at))
            .map_err(|error| tracing::error!(sequence = stored.sequence, %error, "chat event not readable; skipped"))
            .ok()
    }

    async fn apply(
        &self,
        connection: &mut PgConnection,
        events: &[Decoded<Self::Event>],
    ) -> Result<(), sqlx::Error> {
        // Sends (nearly all events) are gathered and written with one statement per run;
        // any other event first writes the sends before it, so stream order holds.
        let mut sends = Sends::default();
        for decoded in events {
            let sequence = i64::try_from(decoded.sequence).unwrap_or(i64::MAX);
            if !matches!(
                decoded.event.0,
                ChatsEvent::Message(MessageEvent::MessageSent(_))
            ) {
                sends.flush(connection).await?;
            }
            let (event, at) = &decoded.event;
            let event = match event {
                ChatsEvent::Chat(event) => event,
                ChatsEvent::Prefs(prefs) => {
                    let query = match prefs {
                        PrefsEvent::ChatPinned(e) => sqlx::query(
                            "UPDATE chat_members_v1 SET pinned = $3 WHERE chat_id = $1 AND user_id = $2",
                        )
                        .bind(e.chat_id)
                        .bind(e.user)
                        .bind(e.pinned),
                        PrefsEvent::ChatArchived(e) => sqlx::query(
                            "UPDATE chat_members_v1 SET archived = $3 WHERE chat_id = $1 AND user_id = $2",
                        )
                        .bind(e.chat_id)
                        .bind(e.user)
                        .bind(e.archived),
                        PrefsEvent::ChatMuted(e) => sqlx::query(
                            "UPDATE chat_members_v1 SET muted_until = $3 WHERE chat_id = $1 AND user_id = $2",
                        )
                        .bind(e.chat_id)
                        .bind(e.user)
                        .bind(e.until),
                    };
                    query.execute(&mut *connection).await?;
                    continue;
                }
                ChatsEvent::Message(MessageEvent::MessageSent(sent)) => {
                    sends.push(sequence, sent, *at);
                    continue;
                }
                ChatsEvent::Message(MessageEvent::MessageEdited(edited)) => {
                    // An edit never brings a deleted message back.
                    sqlx::query(
                        "UPDATE messages_v1 SET body = $2, edited = true WHERE message_id = $1 AND NOT deleted",
                    )
                    .bind(edited.message_id)
                    .bind(edited.body.as_str())
                    .execute(&mut *connection)
                    .await?;
                    continue;
                }
                ChatsEvent::Message(MessageEvent::MessageDeleted(deleted)) => {
                    sqlx::query(
                        "UPDATE messages_v1 SET body = '', deleted = true WHERE message_id = $1",
                    )
                    .bind(deleted.message_id)
                    .execute(&mut *connection)
                    .await?;
                    sqlx::query("DELETE FROM message_reactions_v1 WHERE message_id = $1")
                        .bind(deleted.message_id)
                        .execute(&mut *connection)
                        .await?;
                    continue;
                }
                ChatsEvent::Message(MessageEvent::ReactionSet(set)) => {
                    match &set.reaction {
                        Some(reaction) => {
                            sqlx::query(
                                "INSERT INTO message_reactions_v1 (message_id, user_id, reaction)
                                 SELECT $1, $2, $3 WHERE NOT EXISTS
                                     (SELECT 1 FROM messages_v1 WHERE message_id = $1 AND deleted)
                                 ON CONFLICT (message_id, user_id) DO UPDATE SET reaction = EXCLUDED.reaction",
                            )
                            .bind(set.message_id)
                            .bind(set.user)
                            .bind(reaction.as_str())
                            .execute(&mut *connection)
                            .await?;
                        }
                        None => {
                            sqlx::query("DELETE FROM message_reactions_v1 WHERE message_id = $1 AND user_id = $2")
                                .bind(set.message_id)
                                .bind(set.user)
                                .execute(&mut *connection)
                                .await?;
                        }
                    }
                    continue;
                }
                ChatsEvent::Message(MessageEvent::DeliveredMarked(marked)) => {
                    sqlx::query(
                        "UPDATE chat_members_v1 SET delivered_up_to = GREATEST(delivered_up_to, $3)
                         WHERE chat_id = $1 AND user_id = $2",
                    )
                    .bind(marked.chat_id)
                    .bind(marked.user)
                    .bind(i64::try_from(marked.up_to).unwrap_or(i64::MAX))
                    .execute(&mut *connection)
                    .await?;
                    continue;
                }
                // Reading implies having received.
                ChatsEvent::Message(MessageEvent::ReadMarked(marked)) => {
                    sqlx::query(
                        "UPDATE chat_members_v1 SET read_up_to = GREATEST(read_up_to, $3),
                             delivered_up_to = GREATEST(delivered_up_to, $3)
                         WHERE chat_id = $1 AND user_id = $2",
                    )
                    .bind(marked.chat_id)
                    .bind(marked.user)
                    .bind(i64::try_from(marked.up_to).unwrap_or(i64::MAX))
                    .execute(&mut *connection)
                    .await?;
                    continue;
                }
            };
            match event {
                ChatEvent::DirectChatCreated(created) => {
                    insert_chat(connection, created.chat_id, "direct", None, *at, sequence).await?;
                    join(
                        connection,
                        created.chat_id,
                        &created.members,
                        false,
                        *at,
                        sequence,
                    )
                    .await?;
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
                    join(
                        connection,
                        created.chat_id,
                        &[created.creator],
                        true,
                        *at,
                        sequence,
                    )
                    .await?;
                    join(
                        connection,
                        created.chat_id,
                        &created.members,
                        false,
                        *at,
                        sequence,
                    )
                    .await?;
                }
                ChatEvent::MembersAdded(added) => {
                    join(
                        connection,
                        added.chat_id,
                        &added.users,
                        false,
                        *at,
                        sequence,
                    )
                    .await?;
                    touch(connection, added.chat_id, *at, sequence).await?;
                }
                ChatEvent::MemberRemoved(removed) => {
                    leave(connection, removed.chat_id, removed.user, *at, sequence).await?;
                    touch(connection, removed.chat_id, *at, sequence).await?;
                }
                ChatEvent::MemberLeft(left) => {
                    leave(connection, left.chat_id, left.user, *at, sequence).await?;
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
        sends.flush(connection).await
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

/// (Re)joins users; a returning member's row is reopened from this sequence on.
async fn join(
    connection: &mut PgConnection,
    chat_id: Uuid,
    users: &[Uuid],
    admin: bool,
    at: OffsetDateTime,
    sequence: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO chat_members_v1 (chat_id, user_id, admin, joined_at, joined_sequence)
         SELECT $1, u, $3, $4, $5 FROM UNNEST($2::uuid[]) AS u
         ON CONFLICT (chat_id, user_id) DO UPDATE SET admin = EXCLUDED.admin, joined_at = EXCLUDED.joined_at,
             joined_sequence = EXCLUDED.joined_sequence, left_at = NULL, left_sequence = NULL
         WHERE chat_members_v1.left_sequence < EXCLUDED.joined_sequence",
    )
    .bind(chat_id)
    .bind(users)
    .bind(admin)
    .bind(at)
    .bind(sequence)
    .execute(connection)
    .await?;
    Ok(())
}

async fn leave(
    connection: &mut PgConnection,
    chat_id: Uuid,
    user: Uuid,
    at: OffsetDateTime,
    sequence: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE chat_members_v1 SET left_at = $3, left_sequence = $4, admin = false
         WHERE chat_id = $1 AND user_id = $2 AND left_at IS NULL AND joined_sequence < $4",
    )
    .bind(chat_id)
    .bind(user)
    .bind(at)
    .bind(sequence)
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

/// Messages sent, as the column arrays that `UNNEST` takes.
#[derive(Default)]
struct Sends {
    chats: Vec<Uuid>,
    sequences: Vec<i64>,
    ids: Vec<Uuid>,
    senders: Vec<Uuid>,
    client_ids: Vec<String>,
    bodies: Vec<String>,
    replies: Vec<Option<Uuid>>,
    sent: Vec<OffsetDateTime>,
    at: Vec<OffsetDateTime>,
}

impl Sends {
    fn push(&mut self, sequence: i64, sent: &natter_domain::chat::MessageSent, at: OffsetDateTime) {
        self.chats.push(sent.chat_id);
        self.sequences.push(sequence);
        self.ids.push(sent.message_id);
        self.senders.push(sent.sender);
        self.client_ids.push(sent.client_id.as_str().to_owned());
        self.bodies.push(sent.body.as_str().to_owned());
        self.replies.push(sent.reply_to);
        self.sent.push(sent.sent_at);
        self.at.push(at);
    }

    async fn flush(&mut self, connection: &mut PgConnection) -> Result<(), sqlx::Error> {
        if self.chats.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(self);
        sqlx::query(
            "INSERT INTO messages_v1 (chat_id, sequence, message_id, sender, client_id, body, reply_to, sent_at)
             SELECT * FROM UNNEST($1::uuid[], $2::bigint[], $3::uuid[], $4::uuid[], $5::text[], $6::text[],
                                  $7::uuid[], $8::timestamptz[])
             ON CONFLICT DO NOTHING",
        )
        .bind(&batch.chats)
        .bind(&batch.sequences)
        .bind(&batch.ids)
        .bind(&batch.senders)
        .bind(&batch.client_ids)
        .bind(&batch.bodies)
        .bind(&batch.replies)
        .bind(&batch.sent)
        .execute(&mut *connection)
        .await?;
        // Each chat's activity moves to its newest send of the run.
        sqlx::query(
            "UPDATE chats_v1 AS c SET last_activity_at = GREATEST(c.last_activity_at, n.at), last_sequence = n.seq
             FROM (SELECT chat_id, max(at) AS at, max(seq) AS seq
                   FROM UNNEST($1::uuid[], $2::timestamptz[], $3::bigint[]) AS u(chat_id, at, seq)
                   GROUP BY chat_id) AS n
             WHERE c.chat_id = n.chat_id AND c.last_sequence < n.seq",
        )
        .bind(&batch.chats)
        .bind(&batch.at)
        .bind(&batch.sequences)
        .execute(&mut *connection)
        .await?;
        Ok(())
    }
}
