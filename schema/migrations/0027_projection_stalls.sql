-- A projection that stopped at an event it needs and cannot read (fail closed) records
-- where and why, for /readyz and `natter projections status`; cleared when it moves on.
ALTER TABLE projection_checkpoints
    ADD COLUMN stalled_at bigint,
    ADD COLUMN stalled_reason text;
