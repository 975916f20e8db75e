-- Resumable uploads in progress (tus 1.0). Not a read model: nothing in the log is
-- derived from them until an upload completes and its item is recorded (MediaUploaded).
-- Rows live until the upload expires; the collector of unreferenced media deletes them
-- and their parts.
CREATE TABLE media_uploads (
    upload_id    uuid        PRIMARY KEY,
    owner        uuid        NOT NULL,
    kind         text        NOT NULL,
    length       bigint      NOT NULL CHECK (length > 0),
    received     bigint      NOT NULL DEFAULT 0 CHECK (received BETWEEN 0 AND length),
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    media_id     uuid
);
CREATE INDEX media_uploads_owner ON media_uploads (owner) WHERE media_id IS NULL;
CREATE INDEX media_uploads_expiry ON media_uploads (expires_at);

-- The parts of an upload, each a blob. A part is listed before its bytes are stored and
-- marked received once the upload's offset moved past it, so that a crash leaves no
-- blob unlisted.
CREATE TABLE media_upload_parts (
    key       text    PRIMARY KEY,
    upload_id uuid    NOT NULL REFERENCES media_uploads ON DELETE CASCADE,
    "offset"  bigint  NOT NULL,
    length    bigint  NOT NULL DEFAULT 0,
    received  boolean NOT NULL DEFAULT false
);
CREATE INDEX media_upload_parts_upload ON media_upload_parts (upload_id, "offset");
