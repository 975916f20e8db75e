-- Each member's own settings for a chat (projection chats, version 1).
ALTER TABLE chat_members_v1
    ADD COLUMN pinned      boolean NOT NULL DEFAULT false,
    ADD COLUMN archived    boolean NOT NULL DEFAULT false,
    ADD COLUMN muted_until timestamptz;
