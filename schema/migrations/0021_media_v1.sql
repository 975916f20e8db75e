-- Media items (projection media, version 1): what was uploaded, by whom and when, where
-- its bytes are, and whether it has been collected. The collector of unreferenced
-- uploads reads it.
CREATE TABLE media_v1 (
    media_id      uuid        PRIMARY KEY,
    owner         uuid        NOT NULL,
    kind          text        NOT NULL,
    key           text        NOT NULL,
    thumbnail_key text,
    uploaded_at   timestamptz NOT NULL,
    collected     boolean     NOT NULL DEFAULT false
);
CREATE INDEX media_v1_uncollected ON media_v1 (uploaded_at) WHERE NOT collected;
