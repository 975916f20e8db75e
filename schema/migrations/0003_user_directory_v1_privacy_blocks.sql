-- The user directory (projection user_directory, version 1) learns phone numbers and
-- privacy settings, and keeps the blocks. Events that fill these columns did not exist
-- before this migration, so the defaults are what a rebuild would produce.
ALTER TABLE user_directory_v1
    ADD COLUMN phone                text,
    ADD COLUMN last_seen_visibility text    NOT NULL DEFAULT 'everyone',
    ADD COLUMN photo_visibility     text    NOT NULL DEFAULT 'everyone',
    ADD COLUMN about_visibility     text    NOT NULL DEFAULT 'everyone',
    ADD COLUMN read_receipts        boolean NOT NULL DEFAULT true;

CREATE TABLE user_blocks_v1 (
    user_id         uuid        NOT NULL,
    blocked_user_id uuid        NOT NULL,
    blocked_at      timestamptz NOT NULL,
    PRIMARY KEY (user_id, blocked_user_id)
);
