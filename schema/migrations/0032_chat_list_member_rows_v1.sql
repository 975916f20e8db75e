-- The chat list reads one member row and one chat row per chat (projection chats,
-- version 1). A direct chat's member row names the other member (`peer_id`), and every
-- member row keeps the highest sequence the member deleted for themselves in the chat
-- (`hidden_up_to`): the chat's last message is one of those exactly when it is not past
-- it, which needs no lookup of the member's deletions.
ALTER TABLE chat_members_v1
    ADD COLUMN peer_id      uuid,
    ADD COLUMN hidden_up_to bigint NOT NULL DEFAULT 0;

UPDATE chat_members_v1 m SET peer_id = p.user_id
FROM chats_v1 c, chat_members_v1 p
WHERE c.chat_id = m.chat_id AND c.kind = 'direct'
  AND p.chat_id = m.chat_id AND p.user_id <> m.user_id;

UPDATE chat_members_v1 m SET hidden_up_to = h.up_to
FROM (SELECT user_id, chat_id, max(sequence) AS up_to FROM message_hidden_v1
      GROUP BY user_id, chat_id) h
WHERE m.user_id = h.user_id AND m.chat_id = h.chat_id;
