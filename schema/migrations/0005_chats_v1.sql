-- Read model of the chats projection, version 1: chats and who is in them.
CREATE TABLE chats_v1 (
    chat_id          uuid        PRIMARY KEY,
    kind             text        NOT NULL CHECK (kind IN ('direct', 'group')),
    name             text,
    created_at       timestamptz NOT NULL,
    last_activity_at timestamptz NOT NULL,
    last_sequence    bigint      NOT NULL
);

-- Current and former members; a former member keeps a row with left_at set.
CREATE TABLE chat_members_v1 (
    chat_id   uuid        NOT NULL,
    user_id   uuid        NOT NULL,
    admin     boolean     NOT NULL DEFAULT false,
    joined_at timestamptz NOT NULL,
    left_at   timestamptz,
    PRIMARY KEY (chat_id, user_id)
);
CREATE INDEX chat_members_v1_user ON chat_members_v1 (user_id) WHERE left_at IS NULL;
