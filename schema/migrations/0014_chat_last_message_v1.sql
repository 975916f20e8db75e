-- Each chat's last message, kept on the chat (projection chats, version 1), so that a
-- chat list of a thousand chats reads one row per chat instead of searching each
-- chat's messages. A member who deleted that message for themselves is the exception,
-- and the chat list looks further back for them alone.
ALTER TABLE chats_v1
    ADD COLUMN last_message_sequence bigint,
    ADD COLUMN last_message_sender   uuid,
    ADD COLUMN last_message_preview  text,
    ADD COLUMN last_message_deleted  boolean NOT NULL DEFAULT false,
    ADD COLUMN last_message_sent_at  timestamptz;

UPDATE chats_v1 c SET last_message_sequence = m.sequence, last_message_sender = m.sender,
       last_message_preview = left(m.body, 100), last_message_deleted = m.deleted,
       last_message_sent_at = m.sent_at
FROM (SELECT DISTINCT ON (chat_id) chat_id, sequence, sender, body, deleted, sent_at
      FROM messages_v1 ORDER BY chat_id, sequence DESC) m
WHERE c.chat_id = m.chat_id;
