-- Where each projection (by name and version) has got to in the log. A projection
-- writes its read model and its row here in one transaction.
CREATE TABLE projection_checkpoints (
    name        text        NOT NULL,
    version     integer     NOT NULL,
    sequence    bigint      NOT NULL DEFAULT 0 CHECK (sequence >= 0),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (name, version)
);
