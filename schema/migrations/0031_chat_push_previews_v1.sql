-- Push previews per chat (projection chats, version 1): whether a member's pushes for
-- the chat's messages show who sent what. No earlier event turned them off, so existing
-- rows are right as they are.
ALTER TABLE chat_members_v1 ADD COLUMN push_previews boolean NOT NULL DEFAULT true;
