-- Messages (projection chats, version 1), and the stream sequences at which members
-- joined and left, so that a former member keeps what they saw and nothing after.
ALTER TABLE chat_members_v1
    ADD COLUMN joined_sequence bigint NOT NULL DEFAULT 0,
    ADD COLUMN left_sequence   bigint;

CREATE TABLE messages_v1 (
    chat_id    uuid        NOT NULL,
    sequence   bigint      NOT NULL,
    message_id uuid        NOT NULL UNIQUE,
    sender     uuid        NOT NULL,
    client_id  text        NOT NULL,
    body       text        NOT NULL,
    reply_to   uuid,
    sent_at    timestamptz NOT NULL,
    PRIMARY KEY (chat_id, sequence)
);
