-- Edits, deletes for everyone and reactions (projection chats, version 1). A message
-- deleted for everyone keeps its row as a tombstone, with its body gone.
ALTER TABLE messages_v1
    ADD COLUMN edited  boolean NOT NULL DEFAULT false,
    ADD COLUMN deleted boolean NOT NULL DEFAULT false;

CREATE TABLE message_reactions_v1 (
    message_id uuid NOT NULL,
    user_id    uuid NOT NULL,
    reaction   text NOT NULL,
    PRIMARY KEY (message_id, user_id)
);
