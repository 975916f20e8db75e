-- Read model of the user_directory projection, version 1. Owned by that projection only.
-- last_sequence makes each row's updates idempotent and order-safe.
CREATE TABLE user_directory_v1 (
    user_id       uuid        PRIMARY KEY,
    handle        text        NOT NULL UNIQUE,
    display_name  text        NOT NULL,
    about         text        NOT NULL DEFAULT '',
    created_at    timestamptz NOT NULL,
    last_sequence bigint      NOT NULL
);
CREATE INDEX user_directory_v1_handle_prefix ON user_directory_v1 (handle text_pattern_ops);
CREATE INDEX user_directory_v1_name_prefix ON user_directory_v1 (lower(display_name) text_pattern_ops);
