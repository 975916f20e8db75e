-- Group info, replies by sequence, mentions, forwards, stars, pinned messages and
-- deletes for oneself (projection chats, version 1).
ALTER TABLE chats_v1
    ADD COLUMN description       text    NOT NULL DEFAULT '',
    ADD COLUMN avatar_media_id   uuid,
    ADD COLUMN members_edit_info boolean NOT NULL DEFAULT false;

ALTER TABLE messages_v1
    ADD COLUMN reply_to_sequence bigint,
    ADD COLUMN mentions          uuid[]  NOT NULL DEFAULT '{}',
    ADD COLUMN forwarded         integer NOT NULL DEFAULT 0;

-- Each user's starred messages, newest first.
CREATE TABLE message_stars_v1 (
    user_id    uuid        NOT NULL,
    chat_id    uuid        NOT NULL,
    sequence   bigint      NOT NULL,
    starred_at timestamptz NOT NULL,
    PRIMARY KEY (user_id, chat_id, sequence)
);
CREATE INDEX message_stars_v1_recent ON message_stars_v1 (user_id, starred_at DESC);

-- The messages a user deleted for themselves only.
CREATE TABLE message_hidden_v1 (
    user_id  uuid   NOT NULL,
    chat_id  uuid   NOT NULL,
    sequence bigint NOT NULL,
    PRIMARY KEY (user_id, chat_id, sequence)
);

-- Messages pinned in a chat: the three latest pins.
CREATE TABLE chat_pins_v1 (
    chat_id   uuid        NOT NULL,
    sequence  bigint      NOT NULL,
    pinned_by uuid        NOT NULL,
    pinned_at timestamptz NOT NULL,
    PRIMARY KEY (chat_id, sequence)
);
