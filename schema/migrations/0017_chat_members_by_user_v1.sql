-- The gateway reads all of a user's member rows, former ones included, when a
-- connection resumes (projection chats, version 1).
CREATE INDEX chat_members_v1_user_all ON chat_members_v1 (user_id);
