-- How far each member's devices have received the chat (projection chats, version 1),
-- for the sender's "delivered" state.
ALTER TABLE chat_members_v1 ADD COLUMN delivered_up_to bigint NOT NULL DEFAULT 0;
