//! Chats and their members, for the chat list and membership checks of queries.
//!
//! - `chat_members_v1` keeps one stay per member: the sequences at which they joined and
//!   left (`joined_sequence`, `left_sequence`). History shows a member the messages in
//!   that range and nothing after; one who rejoins sees history from the new join only.
//! - `chats_v1` keeps each chat's last message, so the chat list reads one row per chat;
//!   only where the caller deleted that message for themselves is an older one looked up.
//!   The member rows name a direct chat's other member (`peer_id`) and the highest
//!   sequence the member deleted for themselves (`hidden_up_to`), so the chat list needs
//!   no lookup per chat to tell either.
//! - A read or delivered marker counts up to its own place in the log at most: an `up_to`
//!   beyond it is cut, so a wild value cannot mark future messages read.
//! - Stars, deletes for oneself and pins are events on the chat's message subject; the
//!   projection keeps a chat's three latest pins.

use natter_domain::chat::{
    ChatEvent, MAX_PINNED_MESSAGES, MESSAGES_KIND, MemberLeft, MemberRemoved, MessageEvent,
};
use natter_domain::prefs::PrefsEvent;
use natter_eventlog::StoredEvent;
use std::sync::LazyLock;

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
    const TABLES: &'static [&'static str] = &[
        "chats_v1",
        "chat_members_v1",
        "messages_v1",
        "message_reactions_v1",
        "message_stars_v1",
        "message_hidden_v1",
        "chat_pins_v1",
    ];
    const KINDS: &'static [&'static str] = &["chat", MESSAGES_KIND, "chatprefs"];
    // Messages and chats are most of the log.
    const WHOLE_LOG_TO_CATCH_UP: bool = true;
    type Event = (ChatsEvent, OffsetDateTime);

    fn decode(
        &self,
        stored: &StoredEvent,
    ) -> Result<Option<Self::Event>, natter_schema::SchemaError> {
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
            _ => return Ok(None),
        };
        decoded.map(|event| Some((event, envelope.occurred_at)))
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
            let (event, at) = &decoded.event;
            if let ChatsEvent::Message(MessageEvent::MessageSent(sent)) = event {
                sends.push(sequence, sent);
                continue;
            }
            sends.flush(connection).await?;
            match event {
                ChatsEvent::Chat(event) => apply_chat(connection, event, *at, sequence).await?,
                ChatsEvent::Message(event) => apply_message(connection, event, sequence).await?,
                ChatsEvent::Prefs(event) => apply_prefs(connection, event).await?,
            }
        }
        sends.flush(connection).await
    }
}

fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

async fn apply_prefs(connection: &mut PgConnection, event: &PrefsEvent) -> Result<(), sqlx::Error> {
    let query = match event {
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
        PrefsEvent::ChatPreviewsSet(e) => sqlx::query(
            "UPDATE chat_members_v1 SET push_previews = $3 WHERE chat_id = $1 AND user_id = $2",
        )
        .bind(e.chat_id)
        .bind(e.user)
        .bind(e.previews),
    };
    query.execute(connection).await?;
    Ok(())
}

/// Every message event but sends, which go in batches. A marker counts up to its own
/// place in the log at most: nobody has read what was sent after they said so.
async fn apply_message(
    connection: &mut PgConnection,
    event: &MessageEvent,
    sequence: i64,
) -> Result<(), sqlx::Error> {
    let marker = |up_to: u64| to_i64(up_to).min(sequence - 1);
    let query = match event {
        MessageEvent::MessageSent(_) => return Ok(()),
        // An edit never brings a deleted message back.
        MessageEvent::MessageEdited(e) => sqlx::query(
            "WITH edited AS (
                 UPDATE messages_v1 SET body = $2, edited = true WHERE message_id = $1 AND NOT deleted
                 RETURNING chat_id, sequence
             )
             UPDATE chats_v1 c SET last_message_preview = left($2, 100) FROM edited
             WHERE c.chat_id = edited.chat_id AND c.last_message_sequence = edited.sequence",
        )
        .bind(e.message_id)
        .bind(e.body.as_str()),
        // The body goes from every read model; the row stays as a tombstone.
        MessageEvent::MessageDeleted(e) => sqlx::query(
            "WITH tombstone AS (
                 UPDATE messages_v1 SET body = '', attachment = NULL, deleted = true WHERE message_id = $1
             ), reactions AS (
                 DELETE FROM message_reactions_v1 WHERE message_id = $1
             ), stars AS (
                 DELETE FROM message_stars_v1 WHERE chat_id = $2 AND sequence = $3
             ), pins AS (
                 DELETE FROM chat_pins_v1 WHERE chat_id = $2 AND sequence = $3
             )
             UPDATE chats_v1 SET last_message_preview = '', last_message_deleted = true,
                                 last_message_attachment = NULL
             WHERE chat_id = $2 AND last_message_sequence = $3",
        )
        .bind(e.message_id)
        .bind(e.chat_id)
        .bind(to_i64(e.sequence)),
        MessageEvent::ReactionSet(e) => match &e.reaction {
            Some(reaction) => sqlx::query(
                "INSERT INTO message_reactions_v1 (message_id, user_id, reaction)
                 SELECT $1, $2, $3 WHERE NOT EXISTS
                     (SELECT 1 FROM messages_v1 WHERE message_id = $1 AND deleted)
                 ON CONFLICT (message_id, user_id) DO UPDATE SET reaction = EXCLUDED.reaction",
            )
            .bind(e.message_id)
            .bind(e.user)
            .bind(reaction.as_str()),
            None => sqlx::query(
                "DELETE FROM message_reactions_v1 WHERE message_id = $1 AND user_id = $2",
            )
            .bind(e.message_id)
            .bind(e.user),
        },
        MessageEvent::MessageStarred(e) if e.starred => sqlx::query(
            "INSERT INTO message_stars_v1 (user_id, chat_id, sequence, starred_at)
             SELECT $1, $2, $3, $4 WHERE NOT EXISTS
                 (SELECT 1 FROM messages_v1 WHERE chat_id = $2 AND sequence = $3 AND deleted)
             ON CONFLICT DO NOTHING",
        )
        .bind(e.user)
        .bind(e.chat_id)
        .bind(to_i64(e.sequence))
        .bind(e.at),
        MessageEvent::MessageStarred(e) => sqlx::query(
            "DELETE FROM message_stars_v1 WHERE user_id = $1 AND chat_id = $2 AND sequence = $3",
        )
        .bind(e.user)
        .bind(e.chat_id)
        .bind(to_i64(e.sequence)),
        // A chat shows its latest pins; one more pushes the oldest out.
        MessageEvent::MessagePinned(e) if e.pinned => sqlx::query(
            "WITH pinned AS (
                 INSERT INTO chat_pins_v1 (chat_id, sequence, pinned_by, pinned_at)
                 SELECT $1, $2, $3, $4 WHERE NOT EXISTS
                     (SELECT 1 FROM messages_v1 WHERE chat_id = $1 AND sequence = $2 AND deleted)
                 ON CONFLICT (chat_id, sequence) DO UPDATE SET pinned_by = $3, pinned_at = $4
                 RETURNING sequence
             )
             DELETE FROM chat_pins_v1 WHERE chat_id = $1 AND EXISTS (SELECT 1 FROM pinned)
                 AND sequence NOT IN (SELECT sequence FROM pinned) AND sequence IN (
                     SELECT sequence FROM chat_pins_v1 WHERE chat_id = $1 AND sequence <> $2
                     ORDER BY pinned_at DESC, sequence DESC OFFSET $5)",
        )
        .bind(e.chat_id)
        .bind(to_i64(e.sequence))
        .bind(e.by)
        .bind(e.at)
        .bind(i64::try_from(MAX_PINNED_MESSAGES - 1).unwrap_or(0)),
        MessageEvent::MessagePinned(e) => {
            sqlx::query("DELETE FROM chat_pins_v1 WHERE chat_id = $1 AND sequence = $2")
                .bind(e.chat_id)
                .bind(to_i64(e.sequence))
        }
        MessageEvent::MessageHidden(e) => sqlx::query(
            "WITH hidden AS (
                 INSERT INTO message_hidden_v1 (user_id, chat_id, sequence) VALUES ($1, $2, $3)
                 ON CONFLICT DO NOTHING)
             UPDATE chat_members_v1 SET hidden_up_to = GREATEST(hidden_up_to, $3)
             WHERE chat_id = $2 AND user_id = $1",
        )
        .bind(e.user)
        .bind(e.chat_id)
        .bind(to_i64(e.sequence)),
        MessageEvent::DeliveredMarked(e) => sqlx::query(
            "UPDATE chat_members_v1 SET delivered_up_to = GREATEST(delivered_up_to, $3)
             WHERE chat_id = $1 AND user_id = $2",
        )
        .bind(e.chat_id)
        .bind(e.user)
        .bind(marker(e.up_to)),
        // Reading implies having received.
        MessageEvent::ReadMarked(e) => sqlx::query(
            "UPDATE chat_members_v1 SET read_up_to = GREATEST(read_up_to, $3),
                 delivered_up_to = GREATEST(delivered_up_to, $3)
             WHERE chat_id = $1 AND user_id = $2",
        )
        .bind(e.chat_id)
        .bind(e.user)
        .bind(marker(e.up_to)),
    };
    query.execute(connection).await?;
    Ok(())
}

async fn apply_chat(
    connection: &mut PgConnection,
    event: &ChatEvent,
    at: OffsetDateTime,
    sequence: i64,
) -> Result<(), sqlx::Error> {
    match event {
        ChatEvent::DirectChatCreated(created) => {
            insert_chat(connection, created.chat_id, "direct", None, at, sequence).await?;
            join(
                connection,
                created.chat_id,
                &created.members,
                false,
                at,
                sequence,
            )
            .await?;
            // Each member's row names the other, for the chat list.
            let [one, other] = created.members;
            sqlx::query(
                "UPDATE chat_members_v1 SET peer_id = CASE user_id WHEN $2 THEN $3 ELSE $2 END
                 WHERE chat_id = $1 AND $2 <> $3",
            )
            .bind(created.chat_id)
            .bind(one)
            .bind(other)
            .execute(&mut *connection)
            .await?;
        }
        ChatEvent::GroupCreated(created) => {
            let name = Some(created.name.as_str());
            insert_chat(connection, created.chat_id, "group", name, at, sequence).await?;
            join(
                connection,
                created.chat_id,
                &[created.creator],
                true,
                at,
                sequence,
            )
            .await?;
            join(
                connection,
                created.chat_id,
                &created.members,
                false,
                at,
                sequence,
            )
            .await?;
        }
        ChatEvent::MembersAdded(added) => {
            join(connection, added.chat_id, &added.users, false, at, sequence).await?;
            touch(connection, added.chat_id, at, sequence).await?;
        }
        ChatEvent::MemberJoined(joined) => {
            join(
                connection,
                joined.chat_id,
                &[joined.user],
                false,
                at,
                sequence,
            )
            .await?;
            touch(connection, joined.chat_id, at, sequence).await?;
        }
        ChatEvent::MemberRemoved(MemberRemoved { chat_id, user, .. })
        | ChatEvent::MemberLeft(MemberLeft { chat_id, user, .. }) => {
            leave(connection, *chat_id, *user, at, sequence).await?;
            touch(connection, *chat_id, at, sequence).await?;
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
            touch(connection, renamed.chat_id, at, sequence).await?;
        }
        ChatEvent::GroupDescribed(described) => {
            sqlx::query("UPDATE chats_v1 SET description = $2 WHERE chat_id = $1")
                .bind(described.chat_id)
                .bind(described.description.as_str())
                .execute(&mut *connection)
                .await?;
        }
        ChatEvent::GroupAvatarChanged(changed) => {
            sqlx::query("UPDATE chats_v1 SET avatar_media_id = $2 WHERE chat_id = $1")
                .bind(changed.chat_id)
                .bind(changed.avatar)
                .execute(&mut *connection)
                .await?;
        }
        ChatEvent::GroupPermissionsChanged(changed) => {
            sqlx::query("UPDATE chats_v1 SET members_edit_info = $2 WHERE chat_id = $1")
                .bind(changed.chat_id)
                .bind(changed.members_edit_info)
                .execute(&mut *connection)
                .await?;
        }
        // Open invites are read from the chat itself, exactly; blocks from the users'.
        ChatEvent::InviteCreated(_)
        | ChatEvent::InviteRevoked(_)
        | ChatEvent::DirectChatBlockChanged(_) => {}
    }
    Ok(())
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

/// Writes a run of sends in one statement: the rows, then each chat's newest message of
/// the run as its last message (rows already there from an earlier run change nothing).
/// The last activity is the latest send time of the whole run: sends decided on two
/// processes may be stored in the other order than their times, and a batch's bounds
/// must not change the result.
static SENDS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH inserted AS (
             INSERT INTO messages_v1 (chat_id, sequence, message_id, sender, client_id, body, reply_to,
                                      sent_at, reply_to_sequence, mentions, forwarded, attachment)
             SELECT c, s, i, f, k, b, r, t, rs, m::uuid[], fw, a::jsonb
             FROM UNNEST($1::uuid[], $2::bigint[], $3::uuid[], $4::uuid[], $5::text[], $6::text[],
                         $7::uuid[], $8::timestamptz[], $9::bigint[], $10::text[], $11::int[], $12::text[])
                  AS u(c, s, i, f, k, b, r, t, rs, m, fw, a)
             ON CONFLICT DO NOTHING
             RETURNING chat_id, sequence, sender, body, sent_at, attachment
         ), newest AS (
             SELECT DISTINCT ON (chat_id) *, max(sent_at) OVER (PARTITION BY chat_id) AS latest
             FROM inserted ORDER BY chat_id, sequence DESC
         )
         UPDATE chats_v1 AS c SET last_activity_at = GREATEST(c.last_activity_at, n.latest),
             last_sequence = GREATEST(c.last_sequence, n.sequence),
             last_message_sequence = n.sequence, last_message_sender = n.sender,
             last_message_preview = left(n.body, 100), last_message_deleted = false,
             last_message_sent_at = n.sent_at, last_message_attachment = {attachment}
         FROM newest n
         WHERE c.chat_id = n.chat_id AND COALESCE(c.last_message_sequence, 0) < n.sequence",
        attachment = attachment_kind("n.attachment")
    )
});

/// What the chat list shows of an attachment (a `messages_v1.attachment` value in
/// `column`): a media item's kind (`image`, `voice`, `video`, `document`), `location`
/// or `contact`.
pub(crate) fn attachment_kind(column: &str) -> String {
    format!(
        "CASE {column} ->> 'type' WHEN 'media' THEN {column} ->> 'kind' ELSE {column} ->> 'type' END"
    )
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
    reply_sequences: Vec<Option<i64>>,
    /// Postgres array literals, since `UNNEST` cannot take a ragged `uuid[][]`.
    mentions: Vec<String>,
    forwarded: Vec<i32>,
    sent: Vec<OffsetDateTime>,
    /// As JSON text, since `UNNEST` of a `jsonb[]` bind is no simpler.
    attachments: Vec<Option<String>>,
}

impl Sends {
    fn push(&mut self, sequence: i64, sent: &natter_domain::chat::MessageSent) {
        self.chats.push(sent.chat_id);
        self.sequences.push(sequence);
        self.ids.push(sent.message_id);
        self.senders.push(sent.sender);
        self.client_ids.push(sent.client_id.as_str().to_owned());
        self.bodies.push(sent.body.as_str().to_owned());
        self.replies.push(sent.reply_to);
        self.reply_sequences
            .push(sent.reply_to_sequence.map(to_i64));
        let mentions: Vec<String> = sent.mentions.iter().map(Uuid::to_string).collect();
        self.mentions.push(format!("{{{}}}", mentions.join(",")));
        self.forwarded
            .push(i32::try_from(sent.forwarded).unwrap_or(i32::MAX));
        self.sent.push(sent.sent_at);
        self.attachments.push(
            sent.attachment
                .as_ref()
                .and_then(|attachment| serde_json::to_string(attachment).ok()),
        );
    }

    async fn flush(&mut self, connection: &mut PgConnection) -> Result<(), sqlx::Error> {
        if self.chats.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(self);
        sqlx::query(&SENDS)
            .bind(&batch.chats)
            .bind(&batch.sequences)
            .bind(&batch.ids)
            .bind(&batch.senders)
            .bind(&batch.client_ids)
            .bind(&batch.bodies)
            .bind(&batch.replies)
            .bind(&batch.sent)
            .bind(&batch.reply_sequences)
            .bind(&batch.mentions)
            .bind(&batch.forwarded)
            .bind(&batch.attachments)
            .execute(&mut *connection)
            .await?;
        Ok(())
    }
}
