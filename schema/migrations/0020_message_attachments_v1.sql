-- Attachments of messages (projection chats, version 1): a media item, a place or a
-- contact card, as the MessageSent event (version 3) carries it. Messages sent before
-- had none, so the column is filled as the projection goes; a message deleted for
-- everyone loses it. The index finds the messages that share a media item, for
-- authorizing its download.
ALTER TABLE messages_v1 ADD COLUMN attachment jsonb;
CREATE INDEX messages_v1_media ON messages_v1 ((attachment ->> 'media_id')) WHERE attachment IS NOT NULL;
