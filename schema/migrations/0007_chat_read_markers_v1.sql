-- How far each member has read (projection chats, version 1), for unread counts.
ALTER TABLE chat_members_v1 ADD COLUMN read_up_to bigint NOT NULL DEFAULT 0;
