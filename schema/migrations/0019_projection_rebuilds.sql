-- Every rebuild that switched a projection's tables in: when, why, and the checkpoint the
-- new tables went live at. `resumed_from` is the staged checkpoint an interrupted rebuild
-- went on from (0 for a rebuild from the first event).
CREATE TABLE projection_rebuilds (
    id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name         text        NOT NULL,
    version      integer     NOT NULL,
    reason       text        NOT NULL CHECK (reason IN ('manual', 'automatic')),
    started_at   timestamptz NOT NULL,
    finished_at  timestamptz NOT NULL DEFAULT now(),
    resumed_from bigint      NOT NULL CHECK (resumed_from >= 0),
    through      bigint      NOT NULL CHECK (through >= 0)
);
CREATE INDEX projection_rebuilds_latest ON projection_rebuilds (name, version, finished_at DESC);
