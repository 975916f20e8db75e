-- Messages by stream sequence, as a BRIN index (projection chats, version 1): rows are
-- written in sequence order, so a few kilobytes cover a million rows. Search combines
-- it with the text index to read only a recent band of the table.
CREATE INDEX messages_v1_sequence_brin ON messages_v1 USING brin (sequence) WITH (pages_per_range = 16);
