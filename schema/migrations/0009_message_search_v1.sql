-- Full-text search over messages (projection chats, version 1). The 'simple'
-- configuration neither stems nor drops stop words, so it serves every language alike.
-- A message deleted for everyone has an empty body and so matches nothing.
ALTER TABLE messages_v1
    ADD COLUMN search tsvector GENERATED ALWAYS AS (to_tsvector('simple', body)) STORED;
CREATE INDEX messages_v1_search ON messages_v1 USING gin (search);
