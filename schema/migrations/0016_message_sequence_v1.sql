-- Messages by stream sequence (projection chats, version 1). Search intersects it with
-- the text index to read only the matches in a recent band of history. (A BRIN index
-- was tried: its page ranges made every row of the band be rechecked against the
-- query, which cost more than the band saved.)
CREATE INDEX messages_v1_sequence ON messages_v1 (sequence);
