-- What the chat's last message carries besides its text (projection chats, version 1):
-- a media item's kind (`image`, `voice`, `video`, `document`), `location` or `contact`;
-- null for text alone, and for a message deleted for everyone. The chat list shows a
-- photo sent without a caption as a photo rather than as nothing.
ALTER TABLE chats_v1 ADD COLUMN last_message_attachment text;

UPDATE chats_v1 c
SET last_message_attachment = CASE m.attachment ->> 'type'
                                  WHEN 'media' THEN m.attachment ->> 'kind'
                                  ELSE m.attachment ->> 'type' END
FROM messages_v1 m
WHERE m.chat_id = c.chat_id AND m.sequence = c.last_message_sequence
  AND m.attachment IS NOT NULL;
