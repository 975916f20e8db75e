-- Read model of the sessions projection, version 1: each account's sessions.
CREATE TABLE sessions_v1 (
    session_id    uuid        PRIMARY KEY,
    user_id       uuid        NOT NULL,
    device_name   text        NOT NULL,
    epoch         integer     NOT NULL,
    created_at    timestamptz NOT NULL,
    last_used_at  timestamptz NOT NULL,
    expires_at    timestamptz NOT NULL,
    ended_at      timestamptz,
    end_reason    text,
    last_sequence bigint      NOT NULL
);
CREATE INDEX sessions_v1_user ON sessions_v1 (user_id, created_at DESC);
