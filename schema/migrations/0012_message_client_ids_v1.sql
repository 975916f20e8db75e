-- A client id names one message of its sender in a chat (projection chats, version 1):
-- a retry later than the log's deduplication window is recognised here.
CREATE UNIQUE INDEX messages_v1_client_id ON messages_v1 (chat_id, sender, client_id);
